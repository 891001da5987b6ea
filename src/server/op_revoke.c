/*
 * Revocation requests (rr): a device revokes its own certificate, signed
 * with a certificate of the same device. The CRL is regenerated in the same
 * store transaction.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "util/metrics.h"

#include <openssl/err.h>
#include <string.h>

/* Reads the reasonCode entry extension, -1 if absent. */
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

int srv_revoke_in_tx(struct srv_ctx *ctx, STORE_TX *tx, int64_t cert_id,
                    int reason, const char *why)
{
    char actor[300], err[256];
    enum ca_revoke_rc rc;

    rc = ca_revoke(ctx->alias->ca, tx, cert_id, reason, (int64_t)ctx->now,
                   srv_actor(ctx, actor, sizeof(actor)), err, sizeof(err));
    switch (rc) {
    case CA_REVOKE_OK:
        ctx->revoked++;
        return 1;
    case CA_REVOKE_ALREADY:
        srv_fail(ctx, CMP_R_CERT_REVOKED, "%s", why);
        return 0;
    case CA_REVOKE_NOTFOUND:
        srv_fail(ctx, CMP_R_BAD_CERT_ID, "%s", why);
        return 0;
    default:
        srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "revoke: %s", err);
        return 0;
    }
}

enum cmp_reason srv_revoke(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    STACK_OF(CMP_REVDETAILS) *rds = ctx->req->body->value.rr;
    const CMP_REVDETAILS *rd;
    const ASN1_INTEGER *sn;
    const X509_NAME *issuer;
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    struct store_cmp_txn txn;
    STORE_TX *tx = NULL;
    char err[256];
    enum store_rc rc;
    enum cmp_reason r;
    int reason;

    if ((r = srv_auth_signature(ctx)) != CMP_R_OK)
        return r;
    r = srv_auth_operator_cert(ctx);
    if (sk_CMP_REVDETAILS_num(rds) != 1)
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "exactly one RevDetails expected");
    rd = sk_CMP_REVDETAILS_value(rds, 0);
    sn = OSSL_CRMF_CERTTEMPLATE_get0_serialNumber(rd->certDetails);
    issuer = OSSL_CRMF_CERTTEMPLATE_get0_issuer(rd->certDetails);
    if (sn == NULL || issuer == NULL)
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "certDetails needs issuer and serialNumber");
    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca_get0_cert(ctx->alias->ca))) != 0)
        return srv_fail(ctx, CMP_R_BAD_CERT_ID, "issuer is not this CA");
    if ((reason = srv_rr_reason(rd)) == -2)
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "bad reasonCode");
    /* The rr must be signed by the certificate it revokes (RA-signed
     * revocation comes with the ra mode). A certificate revoked already can
     * still sign its own rr, to learn that it is revoked. */
    if (ctx->signer_cert == NULL
        || X509_NAME_cmp(issuer, X509_get_issuer_name(ctx->signer)) != 0
        || ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(ctx->signer)) != 0) {
        if (r != CMP_R_OK)
            return r;
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                       "an rr must be signed by the certificate it revokes");
    }
    if (ctx->signer_cert->status == STORE_CERT_REVOKED)
        return srv_fail(ctx, CMP_R_CERT_REVOKED, "already revoked");
    if (r != CMP_R_OK)
        return r;
    /* the certificate is ctx->signer_cert; ca_revoke re-reads it under the
     * write lock and refuses it if a concurrent rr revoked it meanwhile */
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    memset(&txn, 0, sizeof(txn));
    memcpy(txn.tid, ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid));
    txn.tid_len = (size_t)ASN1_STRING_length(tid);
    txn.alias = ctx->alias->name;
    txn.type = STORE_CMP_RR;
    txn.state = STORE_CMP_CLOSED;
    txn.created = ctx->now;
    txn.deadline = ctx->now;
    memcpy(txn.requester_sha256, ctx->signer_sha256, 32);
    txn.has_requester = 1;
    txn.cert_id = ctx->signer_cert->id;
    txn.device_id = ctx->device->id;
    if ((rc = store_cmp_txn_insert(tx, &txn)) != STORE_OK) {
        r = rc == STORE_EXISTS ? srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE, NULL)
                               : srv_store_reason(ctx, rc, "transaction");
        goto end;
    }
    if (!srv_revoke_in_tx(ctx, tx, ctx->signer_cert->id, reason,
                         "revocation request")) {
        r = ctx->reason;
        goto end;
    }
    if (ctx->signer_cert->id == ctx->device->cert_id
        && (rc = store_device_set_state(tx, ctx->device->id, ctx->device->state,
                                        STORE_DEV_REVOKED, STORE_KEEP_CERT))
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
