/*
 * The "3gpp" mode (TS 33.310 clause 9): every message signature-protected;
 * a first enrollment (ir, p10cr) signed with the device's vendor
 * certificate, which must chain to a vendor CA registered for the alias and
 * name a device on its allow-list; cr, kur and rr signed with the device's
 * current operator certificate; never raVerified, never implicitConfirm.
 */
#include "server/srv_int.h"

#include <string.h>

static enum cmp_reason mode_3gpp_authenticate(struct srv_ctx *ctx,
                                              enum srv_op op)
{
    int64_t vendor_id;
    enum cmp_reason r;

    switch (op) {
    case SRV_OP_IR:
    case SRV_OP_P10CR:
        return srv_auth_vendor_device(ctx);
    case SRV_OP_CR:
    case SRV_OP_KUR:
        return srv_auth_operator_cert(ctx);
    case SRV_OP_RR:
        r = srv_auth_operator_cert(ctx);
        /* a revoked certificate may still ask, to learn that it is (the
         * handler answers certRevoked once the rr names it), and one on
         * hold may ask to be released (removeFromCRL) */
        if (r == CMP_R_CERT_REVOKED && ctx->old_cert != NULL
            && ctx->device != NULL
            && ctx->old_cert->status == STORE_CERT_REVOKED
            && memcmp(ctx->old_cert->sha256, ctx->rq.cert_sha256, 32) == 0) {
            ctx->reason = CMP_R_OK;
            ctx->in_body = 0;
            ctx->detail[0] = '\0';
            ctx->rq.kind = SRV_RQ_OPERATOR_DEVICE;
            return CMP_R_OK;
        }
        return r;
    case SRV_OP_GENM:
        /* any operator certificate of ours, or any registered vendor
         * device; only "not ours" falls back to the vendor path, a store
         * error stays */
        if ((r = srv_auth_operator_cert(ctx)) == CMP_R_OK)
            return r;
        if (r != CMP_R_SIGNER_NOT_TRUSTED && r != CMP_R_NOT_AUTHORIZED
            && r != CMP_R_CERT_REVOKED)
            return r;
        store_cert_free(ctx->old_cert);
        ctx->old_cert = NULL;
        X509_free(ctx->old_x509);
        ctx->old_x509 = NULL;
        store_device_free(ctx->device);
        ctx->device = NULL;
        ctx->reason = CMP_R_OK;
        ctx->in_body = 0;
        ctx->detail[0] = '\0';
        if ((r = srv_auth_vendor_path(ctx, &vendor_id)) != CMP_R_OK)
            return r;
        X509_NAME_oneline(X509_get_subject_name(ctx->rq.cert),
                          ctx->device_label, sizeof(ctx->device_label));
        return CMP_R_OK;
    default:
        /* certConf and error: the transaction names its requester */
        return CMP_R_OK;
    }
}

static enum cmp_reason mode_3gpp_authorise(struct srv_ctx *ctx, enum srv_op op)
{
    switch (op) {
    case SRV_OP_CR:
        if (ctx->device->state != STORE_DEV_ENROLLED)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                            "device %s is not enrolled", ctx->device_label);
        return CMP_R_OK;
    case SRV_OP_RR:
        /* a device revokes the certificate that signs the rr */
        if (ASN1_INTEGER_cmp(ctx->rr_serial,
                             X509_get0_serialNumber(ctx->rq.cert)) != 0
            || X509_NAME_cmp(ctx->rr_issuer,
                             X509_get_issuer_name(ctx->rq.cert)) != 0)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                            "the rr names another certificate than the one "
                            "that signs it (on alias %s, in 3gpp mode, a "
                            "device revokes only its own certificate)",
                            ctx->alias->name);
        return CMP_R_OK;
    case SRV_OP_NESTED:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY,
                        "nested messages are for aliases in ra mode");
    default:
        return CMP_R_OK;
    }
}

static enum cmp_reason mode_3gpp_ra_verified(struct srv_ctx *ctx)
{
    return srv_reject(ctx, CMP_R_BAD_POP,
                      "raVerified is accepted only from an authorised RA");
}

static int mode_3gpp_implicit_confirm(const struct srv_ctx *ctx)
{
    return 0;      /* TS 33.310 does not allow skipping confirmation */
}

const struct srv_mode srv_mode_3gpp = {
    "3gpp", srv_auth_signature, mode_3gpp_authenticate, mode_3gpp_authorise,
    mode_3gpp_ra_verified, mode_3gpp_implicit_confirm, NULL, NULL, NULL,
};
