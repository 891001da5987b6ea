/*
 * The CMP transaction record and its state machine. This file alone
 * writes cmp_txn rows: it opens a transaction, moves it between states
 * (open -> waiting -> issued -> confirmed | rejected | expired; closed for
 * exchanges without confirmation) and purges finished ones after the
 * configured retention.
 */
#include "server/srv_int.h"

#include "util/log.h"

#include <openssl/crypto.h>
#include <string.h>

/* May a transaction go from |from| to |to|? */
static int srv_txn_allowed(int from, int to)
{
    switch (from) {
    case STORE_CMP_OPEN:
        return to == STORE_CMP_WAITING || to == STORE_CMP_WAITING_CONFIRM
            || to == STORE_CMP_CONFIRMED || to == STORE_CMP_REJECTED
            || to == STORE_CMP_CLOSED || to == STORE_CMP_EXPIRED;
    case STORE_CMP_WAITING:
        return to == STORE_CMP_WAITING_CONFIRM || to == STORE_CMP_CONFIRMED
            || to == STORE_CMP_REJECTED || to == STORE_CMP_EXPIRED;
    case STORE_CMP_WAITING_CONFIRM:
        return to == STORE_CMP_CONFIRMED || to == STORE_CMP_REJECTED
            || to == STORE_CMP_EXPIRED;
    default:
        return 0;                      /* finished states are final */
    }
}

/* The store's transaction type of a request body type. */
static int srv_txn_type(int body_type)
{
    switch (body_type) {
    case CMP_BODY_IR: return STORE_CMP_IR;
    case CMP_BODY_CR: return STORE_CMP_CR;
    case CMP_BODY_KUR: return STORE_CMP_KUR;
    case CMP_BODY_P10CR: return STORE_CMP_P10CR;
    case CMP_BODY_RR: return STORE_CMP_RR;
    default: return STORE_CMP_GENM;
    }
}

enum cmp_reason srv_txn_check_unused(struct srv_ctx *ctx)
{
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    struct store_cmp_txn *txn = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_cmp_txn_get(tx, ASN1_STRING_get0_data(tid),
                           (size_t)ASN1_STRING_length(tid), &txn);
    store_cmp_txn_free(txn);
    if (rc == STORE_OK)
        return srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE, NULL);
    if (rc != STORE_NOTFOUND)
        return srv_store_reason(ctx, rc, "transaction lookup");
    return CMP_R_OK;
}

enum cmp_reason srv_txn_open(struct srv_ctx *ctx, STORE_TX *tx, int state,
                             long cert_req_id, int64_t cert_id,
                             int64_t old_cert_id,
                             const ASN1_OCTET_STRING *nonce)
{
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID, *sn;
    struct store_cmp_txn txn;
    enum store_rc rc;

    if (state == STORE_CMP_REJECTED || state == STORE_CMP_EXPIRED)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "transaction state");
    memset(&txn, 0, sizeof(txn));
    memcpy(txn.tid, ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid));
    txn.tid_len = (size_t)ASN1_STRING_length(tid);
    txn.alias = ctx->alias->name;
    txn.type = srv_txn_type(ctx->req->body->type);
    txn.state = state;
    txn.cert_req_id = (int)cert_req_id;
    txn.created = ctx->now;
    txn.deadline = state == STORE_CMP_WAITING_CONFIRM
        ? ctx->now + ctx->alias->confirm_wait : ctx->now;
    memcpy(txn.requester_sha256, ctx->rq.id, sizeof(txn.requester_sha256));
    txn.has_requester = 1;
    if (nonce != NULL) {
        memcpy(txn.sender_nonce, ASN1_STRING_get0_data(nonce),
               (size_t)ASN1_STRING_length(nonce));
        txn.sender_nonce_len = (size_t)ASN1_STRING_length(nonce);
    }
    sn = ctx->req->header->senderNonce;  /* 16..64 octets, checked */
    if (sn != NULL && (size_t)ASN1_STRING_length(sn) <= sizeof(txn.req_nonce)) {
        memcpy(txn.req_nonce, ASN1_STRING_get0_data(sn),
               (size_t)ASN1_STRING_length(sn));
        txn.req_nonce_len = (size_t)ASN1_STRING_length(sn);
    }
    txn.cert_id = cert_id;
    txn.old_cert_id = old_cert_id;
    txn.device_id = ctx->device != NULL ? ctx->device->id : 0;
    rc = store_cmp_txn_insert(tx, &txn);
    if (rc == STORE_EXISTS)
        return srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE, NULL);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "record transaction");
    return CMP_R_OK;
}

enum cmp_reason srv_txn_load(struct srv_ctx *ctx, STORE_TX *tx,
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

enum store_rc srv_txn_move_tx(STORE_TX *tx, const struct store_cmp_txn *txn,
                              int from, int to)
{
    if (!srv_txn_allowed(from, to))
        return STORE_CONFLICT;
    return store_cmp_txn_set_state(tx, txn->tid, txn->tid_len, from, to);
}

enum cmp_reason srv_txn_move(struct srv_ctx *ctx, STORE_TX *tx,
                             const struct store_cmp_txn *txn, int from, int to)
{
    enum store_rc rc = srv_txn_move_tx(tx, txn, from, to);

    if (rc == STORE_CONFLICT)
        return srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "transaction %s meanwhile",
                        store_cmp_state_str(txn->state));
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "transaction state");
    return CMP_R_OK;
}

long srv_txn_purge(SERVER *srv, time_t now)
{
    time_t last = __atomic_load_n(&srv->last_purge, __ATOMIC_ACQUIRE);
    STORE_TX *tx = NULL;
    int64_t n = 0, replies = 0;

    /* at most once a minute (or per retention period, if shorter) */
    if (srv->txn_retention <= 0
        || now - last < (srv->txn_retention < 60 ? srv->txn_retention : 60)
        || !__atomic_compare_exchange_n(&srv->last_purge, &last, now, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    if (store_begin(srv->store, &tx) != STORE_OK
        || store_cmp_txn_purge(tx, (int64_t)(now - srv->txn_retention), &n)
           != STORE_OK
        || store_pending_purge(tx, (int64_t)(now - srv->txn_retention), NULL)
           != STORE_OK
        /* stored replies (srv_repeat.c) live as long */
        || store_txn_reply_purge(tx, (int64_t)(now - srv->txn_retention),
                                 &replies) != STORE_OK
        || store_commit_clear(&tx) != STORE_OK) {
        store_rollback(tx);
        log_msg(LOG_WARN, "sweep: purging finished transactions failed");
        return -1;
    }
    if (n > 0)
        log_msg(LOG_INFO, "sweep: %lld finished transactions older than %lds "
                "purged", (long long)n, srv->txn_retention);
    return (long)n;
}

enum cmp_reason srv_txn_check_requester(struct srv_ctx *ctx,
                                        const struct store_cmp_txn *txn)
{
    if (!txn->has_requester
        || CRYPTO_memcmp(txn->requester_sha256, ctx->rq.id, 32) != 0)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "the %s is not protected by the requester of the "
                        "transaction",
                        cmp_body_type_name(ctx->req->body->type));
    return CMP_R_OK;
}

enum cmp_reason srv_txn_check_nonce(struct srv_ctx *ctx,
                                    const struct store_cmp_txn *txn)
{
    const ASN1_OCTET_STRING *rn = ctx->req->header->recipNonce;
    const ASN1_OCTET_STRING *sn = ctx->req->header->senderNonce;

    if (rn == NULL || (size_t)ASN1_STRING_length(rn) != txn->sender_nonce_len
        || memcmp(ASN1_STRING_get0_data(rn), txn->sender_nonce,
                  txn->sender_nonce_len) != 0)
        return srv_fail(ctx, CMP_R_BAD_RECIP_NONCE, NULL);
    if (sn != NULL && txn->req_nonce_len > 0
        && (size_t)ASN1_STRING_length(sn) == txn->req_nonce_len
        && memcmp(ASN1_STRING_get0_data(sn), txn->req_nonce,
                  txn->req_nonce_len) == 0)
        return srv_fail(ctx, CMP_R_BAD_SENDER_NONCE, "the senderNonce is the "
                        "request's: every message needs a fresh one");
    return CMP_R_OK;
}

enum cmp_reason srv_txn_answered(struct srv_ctx *ctx, STORE_TX *tx,
                                 const struct store_cmp_txn *txn, int from,
                                 int to, int64_t cert_id,
                                 const ASN1_OCTET_STRING *nonce)
{
    struct store_cmp_txn t = *txn;
    enum store_rc rc;

    if (from != to && !srv_txn_allowed(from, to))
        return srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "transaction %s",
                        store_cmp_state_str(txn->state));
    t.alias = txn->alias;
    t.state = to;
    if (cert_id != 0)
        t.cert_id = cert_id;
    t.deadline = to == STORE_CMP_WAITING_CONFIRM
        ? ctx->now + ctx->alias->confirm_wait : txn->deadline;
    t.sender_nonce_len = 0;
    if (nonce != NULL
        && (size_t)ASN1_STRING_length(nonce) <= sizeof(t.sender_nonce)) {
        memcpy(t.sender_nonce, ASN1_STRING_get0_data(nonce),
               (size_t)ASN1_STRING_length(nonce));
        t.sender_nonce_len = (size_t)ASN1_STRING_length(nonce);
    }
    rc = store_cmp_txn_update(tx, &t, from);
    if (rc == STORE_CONFLICT)
        return srv_fail(ctx, CMP_R_UNEXPECTED_BODY,
                        "transaction changed meanwhile");
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "transaction state");
    return CMP_R_OK;
}
