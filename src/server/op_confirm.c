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

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <string.h>

#define SRV_REASON_CESSATION 5   /* RFC 5280 cessationOfOperation */
#define SRV_REASON_SUPERSEDED 4

/* Loads the transaction of the request's transactionID in |tx|. */
static enum cmp_reason srv_txn_load(struct srv_ctx *ctx, STORE_TX *tx,
                                   struct store_cmp_txn **txn)
{
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    enum store_rc rc;

    rc = store_cmp_txn_get(tx, ASN1_STRING_get0_data(tid),
                           (size_t)ASN1_STRING_length(tid), txn);
    if (rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_UNKNOWN_TRANSACTION, NULL);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "transaction lookup");
    if ((*txn)->alias == NULL || strcmp((*txn)->alias, ctx->alias->name) != 0)
        return srv_fail(ctx, CMP_R_UNKNOWN_TRANSACTION,
                       "transaction belongs to another alias");
    return CMP_R_OK;
}

/* The certConf must come from whoever made the request, answer our nonce,
 * and name the certificate we issued. */
static enum cmp_reason srv_confirm_check(struct srv_ctx *ctx,
                                        const struct store_cmp_txn *txn)
{
    const ASN1_OCTET_STRING *rn = ctx->req->header->recipNonce;

    if (CRYPTO_memcmp(txn->requester_sha256, ctx->signer_sha256, 32) != 0
        || !txn->has_requester)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                       "certConf must be protected like the request");
    if (rn == NULL || (size_t)ASN1_STRING_length(rn) != txn->sender_nonce_len
        || memcmp(ASN1_STRING_get0_data(rn), txn->sender_nonce,
                  txn->sender_nonce_len) != 0)
        return srv_fail(ctx, CMP_R_BAD_RECIP_NONCE, NULL);
    return CMP_R_OK;
}

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
        srv_fail(ctx, CMP_R_BAD_CERT_REQ_ID, "certReqId does not match");
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

/* Applies "accepted" to a waiting transaction in |tx|. */
static enum cmp_reason srv_confirm_accept(struct srv_ctx *ctx, STORE_TX *tx,
                                         const struct store_cmp_txn *txn)
{
    struct store_device *own = NULL;
    const struct store_device *dev;
    enum store_rc rc = STORE_OK;
    enum cmp_reason r = CMP_R_OK;
    char actor[300];

    if (txn->device_id != 0 && txn->type != STORE_CMP_CR) {
        if ((rc = srv_txn_device(ctx, tx, txn, &own, &dev)) != STORE_OK)
            return srv_store_reason(ctx, rc, "device lookup");
        /* the new certificate becomes the device's main one, unless a kur
         * renewed some other (cr-issued) certificate of the device */
        rc = store_device_set_state(tx, dev->id, dev->state,
                                    STORE_DEV_ENROLLED,
                                    txn->type == STORE_CMP_KUR
                                        && dev->cert_id != txn->old_cert_id
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
    if ((rc = store_audit_append(tx, srv_actor(ctx, actor, sizeof(actor)),
                                 "cert.confirm", ctx->device_label, NULL))
        != STORE_OK)
        r = srv_store_reason(ctx, rc, "audit");
    return r;
}

/* Applies "rejected" (or expired): revoke the new certificate and return
 * the device to where it was before. */
static enum cmp_reason srv_confirm_reject(struct srv_ctx *ctx, STORE_TX *tx,
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
        /* back to "registered" unless it holds an earlier certificate */
        rc = store_device_set_state(tx, dev->id, dev->state,
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

/* Shared by certConf and a client's error message: |verdict| 1 accept,
 * 0 reject, -2 decide from the certConf content. */
static enum cmp_reason srv_confirm_txn(struct srv_ctx *ctx, CMP_MSG **rsp,
                                      int verdict)
{
    struct store_cmp_txn *txn = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;
    int to_state;

    if ((r = srv_auth_signature(ctx)) != CMP_R_OK)
        return r;
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((r = srv_txn_load(ctx, tx, &txn)) != CMP_R_OK
        || (r = srv_confirm_check(ctx, txn)) != CMP_R_OK)
        goto end;
    /* the device, read once for the log label and the state change */
    if (txn->device_id != 0 && ctx->device == NULL
        && store_device_get(tx, txn->device_id, &ctx->device) == STORE_OK)
        snprintf(ctx->device_label, sizeof(ctx->device_label), "%s",
                 ctx->device->identifier);
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
        if ((r = srv_confirm_reject(ctx, tx, txn, "certConf too late")) != CMP_R_OK)
            goto end;
        rc = store_cmp_txn_set_state(tx, txn->tid, txn->tid_len,
                                     STORE_CMP_WAITING_CONFIRM,
                                     STORE_CMP_EXPIRED);
        if (rc != STORE_OK) {
            r = srv_store_reason(ctx, rc, "expire");
            goto end;
        }
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
        r = ctx->reason;
        goto end;
    }
    r = verdict ? srv_confirm_accept(ctx, tx, txn)
                : srv_confirm_reject(ctx, tx, txn, "rejected by the client");
    if (r != CMP_R_OK)
        goto end;
    to_state = verdict ? STORE_CMP_CONFIRMED : STORE_CMP_REJECTED;
    rc = store_cmp_txn_set_state(tx, txn->tid, txn->tid_len,
                                 STORE_CMP_WAITING_CONFIRM, to_state);
    if (rc != STORE_OK) {
        r = srv_store_reason(ctx, rc, "transaction state");
        goto end;
    }
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

/* Issues a new CRL for the CA of every alias that revoked certificates
 * outside an rr since the last one (once per CA). */
static void server_refresh_crls(SERVER *srv, time_t now)
{
    STORE_TX *tx = NULL;
    char err[256];
    size_t i, j;

    for (i = 0; i < srv->naliases; i++) {
        struct srv_alias *a = &srv->aliases[i];

        if (!atomic_exchange(&a->crl_dirty, 0))
            continue;
        for (j = 0; j < i; j++)         /* the CA's CRL is done already */
            if (srv->aliases[j].ca == a->ca)
                break;
        if (j < i)
            continue;
        if (store_begin(srv->store, &tx) != STORE_OK
            || !ca_crl_generate(a->ca, tx, now, NULL, err, sizeof(err))
            || store_commit_clear(&tx) != STORE_OK) {
            store_rollback(tx);
            tx = NULL;
            atomic_store(&a->crl_dirty, 1);     /* next sweep tries again */
            log_msg(LOG_WARN, "alias=%s sweep: new CRL failed", a->name);
        }
    }
}

int server_sweep(SERVER *srv, time_t now)
{
    struct store_cmp_txn **list = NULL;
    size_t n = 0, i, j;
    STORE_TX *tx = NULL;
    int done = 0;

    if (store_begin_read(srv->store, &tx) != STORE_OK)
        return -1;
    if (store_cmp_txn_list_expired(tx, (int64_t)now, 256, &list, &n) != STORE_OK) {
        store_rollback(tx);
        return -1;
    }
    store_rollback(tx);
    tx = NULL;
    for (i = 0; i < n; i++) {
        struct srv_ctx ctx;
        struct srv_alias *a = NULL;

        for (j = 0; j < srv->naliases; j++)
            if (list[i]->alias != NULL
                && strcmp(srv->aliases[j].name, list[i]->alias) == 0)
                a = &srv->aliases[j];
        if (a == NULL)
            continue; /* alias no longer configured here */
        memset(&ctx, 0, sizeof(ctx));
        ctx.srv = srv;
        ctx.alias = a;
        ctx.now = now;
        snprintf(ctx.device_label, sizeof(ctx.device_label), "sweeper");
        if (store_begin(srv->store, &tx) != STORE_OK)
            break;
        /* the conditional update makes concurrent sweepers harmless */
        if (store_cmp_txn_set_state(tx, list[i]->tid, list[i]->tid_len,
                                    STORE_CMP_WAITING_CONFIRM,
                                    STORE_CMP_EXPIRED) != STORE_OK
            || srv_confirm_reject(&ctx, tx, list[i], "no certConf in time")
               != CMP_R_OK
            || store_commit_clear(&tx) != STORE_OK) {
            store_rollback(tx);
            tx = NULL;
            continue;
        }
        done++;
        atomic_store(&a->crl_dirty, 1);
        metrics_cert_revoked(a->name);
        log_msg(LOG_INFO, "alias=%s sweep: certificate %lld revoked, no certConf "
                "before the deadline", a->name, (long long)list[i]->cert_id);
    }
    store_cmp_txn_list_free(list, n);
    server_refresh_crls(srv, now);
    /* vendors registered or removed meanwhile (cmpca vendor ...) */
    server_reload_vendors(srv);
    return done;
}
