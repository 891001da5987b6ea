/*
 * Checks the modes share: the message signature (with the requester id),
 * the 3GPP vendor certificate path to a registered vendor CA with the
 * device allow-list, and certificates the alias CA issued (the signer of a
 * kur/rr, or the certificate an RA names).
 */
#include "server/srv_int.h"

#include "ocsp/vendor_crl.h"
#include "util/log.h"
#include "util/x509_der.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>

enum cmp_reason srv_auth_signature(struct srv_ctx *ctx)
{
    const CMP_MSG *req = ctx->req;
    struct srv_requester *rq = &ctx->rq;
    unsigned int len = 0;
    enum cmp_reason r;

    if (req->protection == NULL || req->header->protectionAlg == NULL)
        return srv_fail(ctx, CMP_R_UNPROTECTED, NULL);
    if (cmp_protect_is_mac(req))
        return srv_fail(ctx, CMP_R_MAC_NOT_ALLOWED, "alias %s (%s mode)",
                        ctx->alias->name, ctx->mode->name);
    if ((r = cmp_protect_find_request_signer(req, &rq->cert)) != CMP_R_OK)
        return srv_fail(ctx, r, NULL);
    if ((r = cmp_protect_verify_sig(req, rq->cert)) != CMP_R_OK)
        return srv_fail(ctx, r, NULL);
    if (!X509_digest(rq->cert, EVP_sha256(), rq->cert_sha256, &len))
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
    if (rq->kind == SRV_RQ_NONE)
        rq->kind = SRV_RQ_SIGNER;
    /* inside an RA's wrapper the transaction belongs to both */
    if (ctx->via == NULL) {
        memcpy(rq->id, rq->cert_sha256, sizeof(rq->id));
    } else {
        unsigned char both[64];

        memcpy(both, ctx->via->id, 32);
        memcpy(both + 32, rq->cert_sha256, 32);
        if (!EVP_Digest(both, sizeof(both), rq->id, &len, EVP_sha256(), NULL))
            return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
    }
    return CMP_R_OK;
}

/* Validates the request signer against the vendor anchors of the alias.
 * Sets *vendor_id to the vendor owning the anchor the path ends in. */
enum cmp_reason srv_auth_vendor_path(struct srv_ctx *ctx, int64_t *vendor_id)
{
    struct srv_vendor_trust *vt = srv_alias_get1_vendor_trust(ctx->alias);
    X509_STORE_CTX *sctx = NULL;
    STACK_OF(X509) *chain;
    unsigned char sha[32];
    unsigned int len = 0;
    enum cmp_reason r = CMP_R_SIGNER_NOT_TRUSTED;
    size_t i;
    int k;

    *vendor_id = 0;
    if (vt == NULL || vt->nanchors == 0) {
        srv_fail(ctx, r, "no vendor CA registered for alias %s", ctx->alias->name);
        goto end;
    }
    if ((sctx = X509_STORE_CTX_new()) == NULL
        || !X509_STORE_CTX_init(sctx, vt->store, ctx->rq.cert,
                                ctx->req->extraCerts)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "verify context");
        goto end;
    }
    if (X509_verify_cert(sctx) <= 0) {
        srv_fail(ctx, r, "vendor certificate: %s",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        goto end;
    }
    /* With partial chains the anchor may sit below the root: walk the
     * path from its top down to the first registered vendor certificate. */
    chain = X509_STORE_CTX_get0_chain(sctx);
    for (k = sk_X509_num(chain) - 1; k >= 0 && *vendor_id == 0; k--) {
        if (!X509_digest(sk_X509_value(chain, k), EVP_sha256(), sha, &len)) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
            goto end;
        }
        for (i = 0; i < vt->nanchors && *vendor_id == 0; i++)
            if (memcmp(vt->anchors[i].sha256, sha, sizeof(sha)) == 0)
                *vendor_id = vt->anchors[i].vendor_id;
    }
    if (*vendor_id == 0) {
        srv_fail(ctx, r, "vendor CA not registered");
        goto end;
    }
    /* validated: these certificates may stay decoded for later requests */
    for (k = 0; k < sk_X509_num(chain); k++)
        (void)cmp_cert_cache_keep(sk_X509_value(chain, k));
    r = CMP_R_OK;
 end:
    X509_STORE_CTX_free(sctx);
    srv_vendor_trust_free(vt);
    ERR_clear_error();
    return r;
}

enum cmp_reason srv_auth_vendor_device(struct srv_ctx *ctx)
{
    struct srv_alias *a = ctx->alias;
    char ident[256];
    int64_t vendor_id;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;

    if ((r = srv_auth_vendor_path(ctx, &vendor_id)) != CMP_R_OK)
        return r;
    if (ctx->srv->vcrl != NULL) {
        switch (vendor_crl_check(ctx->srv->vcrl, ctx->rq.cert, vendor_id,
                                 ctx->now)) {
        case VENDOR_REV_REVOKED:
            return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                            "vendor certificate is revoked (vendor CRL)");
        case VENDOR_REV_NO_CRL:
            return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                            "no current CRL of the vendor CA (policy: hard)");
        case VENDOR_REV_ERROR:
            return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "vendor CRL check");
        default:
            break;      /* good, or unchecked under a soft policy */
        }
    }
    ctx->vendor_cert = ctx->rq.cert;
    ctx->rq.kind = SRV_RQ_VENDOR_DEVICE;
    if (!srv_name_attr(X509_get_subject_name(ctx->rq.cert), a->device_id_nid,
                      ident, sizeof(ident)))
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                       "vendor certificate subject has no %s",
                       OBJ_nid2sn(a->device_id_nid));
    snprintf(ctx->device_label, sizeof(ctx->device_label), "%s", ident);
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_device_get_by_ident(tx, vendor_id, ident, &ctx->device);
    if (rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is not registered",
                       ident);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "device lookup");
    switch (ctx->device->state) {
    case STORE_DEV_REGISTERED:
        return CMP_R_OK;
    case STORE_DEV_ENROLLED:
    case STORE_DEV_REVOKED:
        if (a->allow_reenroll)
            return CMP_R_OK;
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is already %s",
                       ident, store_device_state_str(ctx->device->state));
    case STORE_DEV_PENDING:
        /* An earlier ip never got its certConf (lost on the way, device
         * restarted): the new ir supersedes it; srv_enroll revokes the
         * unconfirmed certificate in the same transaction. */
        if (ctx->device->cert_id != 0 && !a->allow_reenroll)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                           "device %s is already enrolled", ident);
        return CMP_R_OK;
    default:
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is disabled",
                       ident);
    }
}

/* Looks up certificate |serial| of the alias CA in the request's read
 * transaction into ctx->old_cert, with its device; |what| names it in
 * refusals. A certificate the CA never issued (or that is not in this
 * store) is signerNotTrusted when it protects the request (|signing|),
 * else badCertId. */
static enum cmp_reason srv_auth_cert_record(struct srv_ctx *ctx,
                                            const ASN1_INTEGER *sn,
                                            int signing, const char *what)
{
    struct srv_alias *a = ctx->alias;
    enum cmp_reason unknown = signing ? CMP_R_SIGNER_NOT_TRUSTED
                                      : CMP_R_BAD_CERT_ID;
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = ASN1_STRING_type(sn) == V_ASN1_INTEGER
        ? store_cert_get_by_serial(tx, ca_get_id(a->ca),
                                   ASN1_STRING_get0_data(sn),
                                   (size_t)ASN1_STRING_length(sn),
                                   &ctx->old_cert)
        : STORE_NOTFOUND;
    if (rc == STORE_NOTFOUND && signing) {
        /* say which: made with the CA key (but not recorded here), or only
         * naming the CA as issuer */
        EVP_PKEY *cak = X509_get0_pubkey(ca_get0_cert(a->ca));
        int by_ca = cak != NULL && X509_verify(ctx->rq.cert, cak) == 1;

        ERR_clear_error();
        return srv_fail(ctx, unknown, by_ca
                        ? "%s was issued by CA %s but is not in this store"
                        : "%s names CA %s as its issuer but is not signed "
                          "by it", what, ca_get0_name(a->ca));
    }
    if (rc == STORE_NOTFOUND)
        return srv_reject(ctx, unknown, "%s: no certificate of CA %s with "
                          "that serial number is in this store", what,
                          ca_get0_name(a->ca));
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "certificate lookup");
    if (ctx->old_cert->device_id != 0
        && (rc = store_device_get(tx, ctx->old_cert->device_id, &ctx->device))
           != STORE_OK && rc != STORE_NOTFOUND)
        return srv_store_reason(ctx, rc, "device lookup");
    if (ctx->device != NULL)
        snprintf(ctx->device_label, sizeof(ctx->device_label), "%s",
                 ctx->device->identifier);
    return CMP_R_OK;
}

enum cmp_reason srv_auth_operator_cert(struct srv_ctx *ctx)
{
    struct srv_alias *a = ctx->alias;
    enum cmp_reason r;

    /* The signer must be a certificate this CA issued: our record under its
     * serial number must be this very DER (SHA-256), which proves it more
     * strongly than a path check. */
    if (X509_NAME_cmp(X509_get_issuer_name(ctx->rq.cert),
                      X509_get_subject_name(ca_get0_cert(a->ca))) != 0)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "the signer certificate's issuer is another CA than "
                        "CA %s of alias %s", ca_get0_name(a->ca), a->name);
    if ((r = srv_auth_cert_record(ctx, X509_get0_serialNumber(ctx->rq.cert), 1,
                                  "the signer certificate")) != CMP_R_OK)
        return r;
    if (CRYPTO_memcmp(ctx->old_cert->sha256, ctx->rq.cert_sha256,
                      STORE_SHA256_LEN) != 0)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "the signer certificate differs from the one CA %s "
                        "issued under its serial number", ca_get0_name(a->ca));
    /* RFC 9483 4.1.3 (kur) and 4.2 (rr): the certificate must not be
     * revoked; the refusal is of the request (kup/rp rejection) with
     * certRevoked */
    if (ctx->old_cert->status == STORE_CERT_REVOKED)
        return srv_reject(ctx, CMP_R_CERT_REVOKED,
                          "the signer certificate is %s",
                          ctx->old_cert->reason == 6 ? "on hold"
                                                     : "revoked");
    if (ctx->old_cert->not_after < (int64_t)ctx->now)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "the signer certificate has expired");
    if (ctx->old_cert->not_before > (int64_t)ctx->now)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "the signer certificate is not valid yet");
    if (ctx->device == NULL)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "the signer certificate belongs to no device");
    if (ctx->device->state == STORE_DEV_DISABLED)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is disabled",
                        ctx->device->identifier);
    if (!X509_up_ref(ctx->rq.cert))
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "reference");
    ctx->old_x509 = ctx->rq.cert;
    (void)cmp_cert_cache_keep(ctx->rq.cert);   /* ours, valid: keep it */
    ctx->rq.kind = SRV_RQ_OPERATOR_DEVICE;
    return CMP_R_OK;
}

enum cmp_reason srv_auth_load_cert(struct srv_ctx *ctx, const X509_NAME *issuer,
                                   const ASN1_INTEGER *serial)
{
    enum cmp_reason r;

    if (issuer == NULL || serial == NULL)
        return srv_reject(ctx, CMP_R_BAD_CERT_ID,
                          "the certificate needs issuer and serialNumber");
    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca_get0_cert(ctx->alias->ca)))
        != 0)
        return srv_reject(ctx, CMP_R_BAD_CERT_ID, "the certificate's issuer "
                          "is another CA than CA %s of alias %s",
                          ca_get0_name(ctx->alias->ca), ctx->alias->name);
    if ((r = srv_auth_cert_record(ctx, serial, 0, "the named certificate"))
        != CMP_R_OK)
        return r;
    if ((ctx->old_x509 = x509_der_get1(ctx->old_cert->der,
                                       ctx->old_cert->der_len)) == NULL)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "stored certificate");
    return CMP_R_OK;
}
