/*
 * Certificate confirmation: certConf (accept or reject), an error message
 * from the client, and the sweep that expires transactions whose certConf
 * never came. Every outcome is one durable store transaction; replays of a
 * finished confirmation get the same answer and change nothing.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/x509_der.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

#define SRV_REASON_CESSATION 5   /* RFC 5280 cessationOfOperation */
#define SRV_REASON_SUPERSEDED 4

/* certHash with the hashAlg a pvno 3 certConf names (RFC 9480 2.10): only
 * SHA-2 is accepted. Returns 1 if it matches. */
static int srv_certhash_with_alg(const struct store_cert *rec,
                                const CMP_CERTSTATUS *st)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int nid = OBJ_obj2nid(st->hashAlg->algorithm);

    if (nid != NID_sha256 && nid != NID_sha384 && nid != NID_sha512)
        return 0;
    if (!EVP_Digest(rec->der, rec->der_len, md, &mdlen,
                    EVP_get_digestbynid(nid), NULL))
        return 0;
    return (size_t)ASN1_STRING_length(st->certHash) == mdlen
        && CRYPTO_memcmp(md, ASN1_STRING_get0_data(st->certHash), mdlen) == 0;
}

/* Reads the single CertStatus: returns 1 (accepted), 0 (rejected) or -1
 * (refused, reason set). */
static int srv_confirm_verdict(struct srv_ctx *ctx, STORE_TX *tx,
                              const struct store_cmp_txn *txn)
{
    STACK_OF(CMP_CERTSTATUS) *sts = ctx->req->body->value.certConf;
    const CMP_CERTSTATUS *st;
    struct store_cert *rec = NULL;
    int64_t id;
    int status, verdict = -1;
    enum store_rc rc;

    if (sk_CMP_CERTSTATUS_num(sts) == 0)
        return 0; /* empty content: the client rejects all */
    if (sk_CMP_CERTSTATUS_num(sts) != 1) {
        srv_fail(ctx, CMP_R_BAD_REQUEST, "exactly one CertStatus expected");
        return -1;
    }
    st = sk_CMP_CERTSTATUS_value(sts, 0);
    if (!ASN1_INTEGER_get_int64(&id, st->certReqId) || id != txn->cert_req_id) {
        ERR_clear_error();
        srv_fail(ctx, CMP_R_BAD_CERT_REQ_ID, "certReqId is not %d, the one "
                 "the certificate was issued for", txn->cert_req_id);
        return -1;
    }
    if ((rc = store_cert_get(tx, txn->cert_id, &rec)) != STORE_OK) {
        srv_store_reason(ctx, rc, "certificate lookup");
        return -1;
    }
    /* from the stored DER: no certificate (public key) decoding needed */
    if (st->hashAlg != NULL ? !srv_certhash_with_alg(rec, st)
        : !cmp_certhash_matches_der(rec->der, rec->der_len,
                                    ASN1_STRING_get0_data(st->certHash),
                                    (size_t)ASN1_STRING_length(st->certHash))) {
        srv_fail(ctx, CMP_R_BAD_CERT_ID, "certHash does not match");
        goto end;
    }
    status = st->statusInfo == NULL ? CMP_STATUS_ACCEPTED
                                    : cmp_pkisi_get_status(st->statusInfo);
    if (status < 0) {
        srv_fail(ctx, CMP_R_BAD_REQUEST, "bad status in CertStatus");
        goto end;
    }
    if ((status == CMP_STATUS_ACCEPTED || status == CMP_STATUS_GRANTED_WITH_MODS)
        && st->statusInfo != NULL && st->statusInfo->failInfo != NULL) {
        srv_fail(ctx, CMP_R_BAD_REQUEST,
                 "an accepting CertStatus carries a failInfo");
        goto end;
    }
    verdict = status == CMP_STATUS_ACCEPTED
        || status == CMP_STATUS_GRANTED_WITH_MODS;
 end:
    store_cert_free(rec);
    ERR_clear_error();
    return verdict;
}

/* The device of |txn| as read in |tx|: ctx->device when the request loaded
 * it already, else read now into *own (the caller frees it). */
static enum store_rc srv_txn_device(struct srv_ctx *ctx, STORE_TX *tx,
                                   const struct store_cmp_txn *txn,
                                   struct store_device **own,
                                   const struct store_device **dev)
{
    enum store_rc rc = STORE_OK;

    *own = NULL;
    *dev = ctx->device;
    if (*dev == NULL || (*dev)->id != txn->device_id) {
        rc = store_device_get(tx, txn->device_id, own);
        *dev = *own;
    }
    return rc;
}

/* The audit row of an accepted certificate: object = its serial, as in
 * the cert.issue and cert.revoke rows; details name device and RA. */
static enum store_rc srv_audit_confirm(struct srv_ctx *ctx, STORE_TX *tx,
                                       const struct store_cmp_txn *txn)
{
    struct issuer_audit a;
    struct store_cert *rec = NULL;
    char actor[300], tid[140], serial[2 * STORE_SERIAL_MAX + 1], *details;
    json_t *j;
    enum store_rc rc;

    if ((rc = store_cert_get(tx, txn->cert_id, &rec)) != STORE_OK)
        return rc;
    srv_audit_fill(ctx, &a, actor, sizeof(actor), tid, sizeof(tid));
    j = json_pack("{s:s, s:s, s:s}", "alias", a.alias, "device", a.device,
                  "transactionID", a.tid_hex);
    if (j != NULL && a.ra != NULL)
        json_object_set_new(j, "ra", json_string(a.ra));
    details = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rc = store_audit_append(tx, a.actor, "cert.confirm",
                            ca_serial_hex(rec->serial, rec->serial_len, serial,
                                          sizeof(serial)), details);
    free(details);
    json_decref(j);
    store_cert_free(rec);
    return rc;
}

/* Names a certificate that belongs to no registered device (an RA's
 * request) by its subject, for the log and the audit rows. */
static void srv_confirm_label(struct srv_ctx *ctx, STORE_TX *tx,
                              int64_t cert_id)
{
    struct store_cert *rec = NULL;
    X509 *x = NULL;

    if (store_cert_get(tx, cert_id, &rec) == STORE_OK
        && (x = x509_der_get1(rec->der, rec->der_len)) != NULL)
        srv_label_from_name(ctx, X509_get_subject_name(x));
    X509_free(x);
    store_cert_free(rec);
}

/* Applies "accepted" to a waiting transaction in |tx|. */
static enum cmp_reason srv_confirm_accept(struct srv_ctx *ctx, STORE_TX *tx,
                                         const struct store_cmp_txn *txn)
{
    struct store_device *own = NULL;
    const struct store_device *dev;
    enum store_rc rc = STORE_OK;
    enum cmp_reason r = CMP_R_OK;

    if (txn->device_id != 0 && txn->type != STORE_CMP_CR) {
        if ((rc = srv_txn_device(ctx, tx, txn, &own, &dev)) != STORE_OK)
            return srv_store_reason(ctx, rc, "device lookup");
        /* the operator disabled the device meanwhile: refused (and, as any
         * refused certConf, the certificate revoked) */
        if (dev->state == STORE_DEV_DISABLED) {
            r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s was disabled",
                         dev->identifier);
            store_device_free(own);
            return r;
        }
        /* the new certificate becomes the device's main one, unless a kur
         * renewed some other (cr-issued) certificate of a device whose main
         * certificate is still in use */
        rc = store_device_set_state(tx, dev->id, dev->state,
                                    STORE_DEV_ENROLLED,
                                    txn->type == STORE_CMP_KUR
                                        && dev->cert_id != txn->old_cert_id
                                        && dev->state == STORE_DEV_ENROLLED
                                        ? STORE_KEEP_CERT : txn->cert_id);
        store_device_free(own);
        if (rc != STORE_OK)
            return srv_store_reason(ctx, rc, "device state");
    }
    if (txn->type == STORE_CMP_KUR && txn->old_cert_id != 0
        && ctx->alias->revoke_on_kur
        && !srv_revoke_in_tx(ctx, tx, txn->old_cert_id, SRV_REASON_SUPERSEDED,
                            "superseded by key update"))
        return ctx->reason;
    if ((rc = srv_audit_confirm(ctx, tx, txn)) != STORE_OK)
        return srv_store_reason(ctx, rc, "audit");
    if (ctx->mode->finalised != NULL)
        r = ctx->mode->finalised(ctx, tx, txn);
    return r;
}

/* Applies "rejected" (or expired): revoke the new certificate and return
 * the device to where it was before. */
enum cmp_reason srv_confirm_reject(struct srv_ctx *ctx, STORE_TX *tx,
                                         const struct store_cmp_txn *txn,
                                         const char *why)
{
    struct store_device *own = NULL;
    const struct store_device *dev;
    enum store_rc rc;

    if (!srv_revoke_in_tx(ctx, tx, txn->cert_id, SRV_REASON_CESSATION, why))
        return ctx->reason;
    if (txn->device_id != 0
        && (txn->type == STORE_CMP_IR || txn->type == STORE_CMP_P10CR)) {
        if ((rc = srv_txn_device(ctx, tx, txn, &own, &dev)) != STORE_OK)
            return srv_store_reason(ctx, rc, "device lookup");
        /* a pending device goes back to "registered" unless it holds an
         * earlier certificate; one the operator disabled meanwhile stays */
        rc = dev->state != STORE_DEV_PENDING ? STORE_OK
            : store_device_set_state(tx, dev->id, dev->state,
                                     dev->cert_id != 0 ? STORE_DEV_ENROLLED
                                                       : STORE_DEV_REGISTERED,
                                     STORE_KEEP_CERT);
        store_device_free(own);
        if (rc != STORE_OK)
            return srv_store_reason(ctx, rc, "device state");
    }
    return CMP_R_OK;
}

/* Builds the pkiConf answer. */
static enum cmp_reason srv_pkiconf(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    if ((*rsp = srv_rsp_new(ctx, CMP_BODY_PKICONF)) == NULL)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response");
    return CMP_R_OK;
}

/* Ends the waiting transaction |txn| as rejected because its certConf was
 * refused (ctx's reason): the certificate is revoked at once, and the
 * refusal is what the client gets. Commits or rolls back |tx|. */
static enum cmp_reason srv_confirm_refused(struct srv_ctx *ctx, STORE_TX *tx,
                                          const struct store_cmp_txn *txn)
{
    enum cmp_reason refusal = ctx->reason, r;
    char detail[sizeof(ctx->detail)];
    enum store_rc rc;

    memcpy(detail, ctx->detail, sizeof(detail));
    if ((r = srv_confirm_reject(ctx, tx, txn, "certConf refused")) != CMP_R_OK
        || (r = srv_txn_move(ctx, tx, txn, STORE_CMP_WAITING_CONFIRM,
                             STORE_CMP_REJECTED)) != CMP_R_OK) {
        store_rollback(tx);
        return r;
    }
    if ((rc = store_commit(tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "commit");
    srv_fail(ctx, refusal, "%s; the certificate was revoked", detail);
    return refusal;
}

/* Shared by certConf and a client's error message: |verdict| 1 accept,
 * 0 reject, -2 decide from the certConf content. */
static enum cmp_reason srv_confirm_txn(struct srv_ctx *ctx, CMP_MSG **rsp,
                                       int verdict)
{
    const struct srv_mode *m = ctx->mode;
    struct store_cmp_txn *txn = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;
    int to_state;

    if ((r = m->verify(ctx)) != CMP_R_OK
        || (r = m->authenticate(ctx, ctx->op)) != CMP_R_OK)
        return r;
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((r = srv_txn_load(ctx, tx, &txn)) != CMP_R_OK
        || (r = srv_txn_check_requester(ctx, txn)) != CMP_R_OK)
        goto end;
    /* the device, read once for the log label and the state change */
    if (txn->device_id != 0 && ctx->device == NULL
        && store_device_get(tx, txn->device_id, &ctx->device) == STORE_OK)
        snprintf(ctx->device_label, sizeof(ctx->device_label), "%s",
                 ctx->device->identifier);
    else if (txn->device_id == 0 && txn->cert_id != 0)
        srv_confirm_label(ctx, tx, txn->cert_id);
    if ((r = srv_txn_check_nonce(ctx, txn)) != CMP_R_OK) {
        if (txn->state == STORE_CMP_WAITING_CONFIRM) {
            r = srv_confirm_refused(ctx, tx, txn);
            tx = NULL;
        }
        goto end;
    }
    if (txn->state == STORE_CMP_CONFIRMED || txn->state == STORE_CMP_REJECTED) {
        /* A replay of a finished confirmation: same answer, no change. */
        if (verdict == -2
            && (verdict = srv_confirm_verdict(ctx, tx, txn)) < 0) {
            r = ctx->reason;
            goto end;
        }
        if ((verdict == 1) != (txn->state == STORE_CMP_CONFIRMED)) {
            r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY,
                         "transaction already %s",
                         store_cmp_state_str(txn->state));
            goto end;
        }
        r = srv_pkiconf(ctx, rsp);
        goto end;
    }
    if (txn->state != STORE_CMP_WAITING_CONFIRM) {
        r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "transaction %s",
                     store_cmp_state_str(txn->state));
        goto end;
    }
    if (txn->deadline < (int64_t)ctx->now) {
        /* too late: the certificate counts as rejected */
        if ((r = srv_confirm_reject(ctx, tx, txn, "certConf too late"))
                != CMP_R_OK
            || (r = srv_txn_move(ctx, tx, txn, STORE_CMP_WAITING_CONFIRM,
                                 STORE_CMP_EXPIRED)) != CMP_R_OK)
            goto end;
        rc = store_commit(tx);
        tx = NULL;
        if (rc != STORE_OK) {
            r = srv_store_reason(ctx, rc, "commit");
            goto end;
        }
        r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY,
                     "confirmWaitTime passed; the certificate was revoked");
        goto end;
    }
    if (verdict == -2 && (verdict = srv_confirm_verdict(ctx, tx, txn)) < 0) {
        /* a refused certConf ends the transaction: revoked at once */
        r = srv_confirm_refused(ctx, tx, txn);
        tx = NULL;
        goto end;
    }
    r = verdict ? srv_confirm_accept(ctx, tx, txn)
                : srv_confirm_reject(ctx, tx, txn, "rejected by the client");
    if (r != CMP_R_OK && r != CMP_R_SYSTEM_UNAVAIL && r != CMP_R_SYSTEM_FAILURE) {
        /* refused while accepting: ends the transaction like any refusal */
        store_rollback(tx);
        tx = NULL;
        if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK) {
            r = srv_store_reason(ctx, rc, "begin");
            goto end;
        }
        r = srv_confirm_refused(ctx, tx, txn);
        tx = NULL;
        goto end;
    }
    if (r != CMP_R_OK)
        goto end;
    to_state = verdict ? STORE_CMP_CONFIRMED : STORE_CMP_REJECTED;
    if ((r = srv_txn_move(ctx, tx, txn, STORE_CMP_WAITING_CONFIRM, to_state))
        != CMP_R_OK)
        goto end;
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK) {
        r = srv_store_reason(ctx, rc, "commit");
        goto end;
    }
    r = srv_pkiconf(ctx, rsp);
 end:
    store_rollback(tx);
    store_cmp_txn_free(txn);
    return r;
}

enum cmp_reason srv_confirm(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    return srv_confirm_txn(ctx, rsp, -2);
}

enum cmp_reason srv_client_error(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    /* RFC 9810 5.3.21: the client gives up; if it was waiting for a
     * certConf, that is a rejection. Answer pkiConf. */
    return srv_confirm_txn(ctx, rsp, 0);
}

