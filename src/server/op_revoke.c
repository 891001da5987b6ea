/*
 * Revocation requests (rr): a certificate revoked at the request of its
 * holder (signed with it) or of an authorised RA (signed with the RA's own
 * key, RFC 9483 5.3.2); removeFromCRL releases a certificate on hold
 * (RFC 5280 5.3.1). The CRL is regenerated in the same store transaction.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"

#include <openssl/err.h>
#include <string.h>

/* Reads the reasonCode entry extension, -1 if absent, -2 if malformed. */
static int srv_rr_reason(const CMP_REVDETAILS *rd)
{
    ASN1_ENUMERATED *e;
    int64_t v = -1;

    e = X509V3_get_d2i(rd->crlEntryDetails, NID_crl_reason, NULL, NULL);
    if (e != NULL && (!ASN1_ENUMERATED_get_int64(&v, e) || v < 0 || v > 10))
        v = -2;
    ASN1_ENUMERATED_free(e);
    ERR_clear_error();
    return (int)v;
}

enum cmp_reason srv_revoke(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    STACK_OF(CMP_REVDETAILS) *rds = ctx->req->body->value.rr;
    const struct srv_mode *m = ctx->mode;
    const CMP_REVDETAILS *rd;
    STORE_TX *tx = NULL;
    char err[256];
    enum store_rc rc;
    enum cmp_reason r;
    int reason, held, dev_to;

    if ((r = m->verify(ctx)) != CMP_R_OK)
        return r;
    if (sk_CMP_REVDETAILS_num(rds) != 1)
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "exactly one RevDetails expected");
    rd = sk_CMP_REVDETAILS_value(rds, 0);
    ctx->rr_serial = OSSL_CRMF_CERTTEMPLATE_get0_serialNumber(rd->certDetails);
    ctx->rr_issuer = OSSL_CRMF_CERTTEMPLATE_get0_issuer(rd->certDetails);
    if (ctx->rr_serial == NULL || ctx->rr_issuer == NULL)
        return srv_fail(ctx, CMP_R_BAD_REQUEST,
                        "certDetails needs issuer and serialNumber");
    if ((reason = srv_rr_reason(rd)) == -2 || reason == 7)
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "reasonCode is no CRLReason "
                        "(RFC 5280 5.3.1: 0-6, 8-10)");
    if ((r = m->authenticate(ctx, SRV_OP_RR)) != CMP_R_OK)
        return r;
    if (X509_NAME_cmp(ctx->rr_issuer,
                      X509_get_subject_name(ca_get0_cert(ctx->alias->ca))) != 0)
        return srv_reject(ctx, CMP_R_BAD_CERT_ID, "the rr names a "
                          "certificate of another CA than CA %s of alias %s",
                          ca_get0_name(ctx->alias->ca), ctx->alias->name);
    if ((r = m->authorise(ctx, SRV_OP_RR)) != CMP_R_OK)
        return r;
    /* ctx->old_cert is the certificate named; ca_revoke re-reads it under
     * the write lock and refuses it if a concurrent rr changed it. A
     * certificate on hold may be released (removeFromCRL) or revoked for
     * good (another reason); a valid one cannot be released. */
    held = ctx->old_cert->status == STORE_CERT_REVOKED
        && ctx->old_cert->reason == CA_REASON_HOLD;
    if (reason == CA_REASON_REMOVE
        && ctx->old_cert->status != STORE_CERT_REVOKED)
        return srv_reject(ctx, CMP_R_BAD_REQUEST, "removeFromCRL: the "
                          "certificate is not on hold (it is valid)");
    if (ctx->old_cert->status == STORE_CERT_REVOKED && !held)
        return srv_reject(ctx, CMP_R_CERT_REVOKED, "the certificate is "
                          "already revoked (%s)",
                          ca_reason_str(ctx->old_cert->reason) != NULL
                          ? ca_reason_str(ctx->old_cert->reason)
                          : "no reason");
    if (held && reason == CA_REASON_HOLD)
        return srv_reject(ctx, CMP_R_CERT_REVOKED, "the certificate is "
                          "already on hold");
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((r = srv_txn_open(ctx, tx, STORE_CMP_CLOSED, 0, ctx->old_cert->id, 0,
                          NULL)) != CMP_R_OK)
        goto end;
    if (!srv_revoke_in_tx(ctx, tx, ctx->old_cert->id, reason,
                          "revocation request")) {
        r = ctx->reason;
        goto end;
    }
    /* the device's current certificate: revoked (held) or valid again */
    dev_to = reason == CA_REASON_REMOVE ? STORE_DEV_ENROLLED
                                        : STORE_DEV_REVOKED;
    if (ctx->device != NULL && ctx->old_cert->id == ctx->device->cert_id
        && (reason != CA_REASON_REMOVE
            || ctx->device->state == STORE_DEV_REVOKED)
        && ctx->device->state != dev_to
        && (rc = store_device_set_state(tx, ctx->device->id, ctx->device->state,
                                        dev_to, STORE_KEEP_CERT))
           != STORE_OK) {
        r = srv_store_reason(ctx, rc, "device state");
        goto end;
    }
    if (!ca_crl_generate(ctx->alias->ca, tx, ctx->now, NULL, err, sizeof(err))) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "CRL: %s", err);
        goto end;
    }
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK) {
        r = srv_store_reason(ctx, rc, "commit");
        goto end;
    }
    if ((*rsp = srv_rsp_new(ctx, CMP_BODY_RP)) == NULL
        || !cmp_body_set_rp(*rsp, cmp_pkisi_new(CMP_STATUS_ACCEPTED, -1, NULL))) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response");
        goto end;
    }
    r = CMP_R_OK;
 end:
    store_rollback(tx);
    return r;
}
