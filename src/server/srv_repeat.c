/*
 * Byte-identical repeats: a request answered before is answered again with
 * the stored reply, without doing anything twice. An RA that timed out
 * waiting for the answer and sends the same bytes again (upstream_retries)
 * so never makes the CA issue a second certificate. Keyed by the SHA-256
 * of the request's DER (which covers its transactionID, nonces and
 * protection), on aliases with answer_repeats; an RA in upstream mode
 * records every message it relayed the same way.
 */
#include "server/srv_int.h"

#include "util/log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int srv_repeat_hash(const unsigned char *der, size_t len,
                           unsigned char out[STORE_SHA256_LEN])
{
    unsigned int n = 0;

    return EVP_Digest(der, len, out, &n, EVP_sha256(), NULL) && n == 32;
}

int srv_repeat_lookup(struct srv_ctx *ctx, const unsigned char *der,
                      size_t len, unsigned char **reply, size_t *reply_len,
                      int *http)
{
    unsigned char sha[STORE_SHA256_LEN];
    struct store_txn_reply *r = NULL;
    STORE_TX *tx = NULL;
    int hit = 0;

    *reply = NULL;
    *reply_len = 0;
    if (der == NULL || len == 0 || !srv_repeat_hash(der, len, sha))
        return 0;
    if (srv_read_tx(ctx, &tx) != STORE_OK)
        goto end;
    if (store_txn_reply_get(tx, sha, &r) != STORE_OK)
        goto end;
    if (strcmp(r->alias, ctx->alias->name) != 0 || r->reply_len == 0)
        goto end;
    if ((*reply = malloc(r->reply_len)) == NULL)
        goto end;
    memcpy(*reply, r->reply, r->reply_len);
    *reply_len = r->reply_len;
    if (http != NULL)
        *http = r->http_status;
    hit = 1;
 end:
    store_txn_reply_free(r);
    srv_read_end(ctx);
    return hit;
}

int srv_repeat_store(struct srv_ctx *ctx, const unsigned char *der,
                     size_t len, const unsigned char *reply,
                     size_t reply_len, int upstream, int http_status,
                     const char *audit_action, const char *audit_details)
{
    struct store_txn_reply r;
    const ASN1_OCTET_STRING *tid = ctx->req != NULL
        ? ctx->req->header->transactionID : NULL;
    char actor[400], obj[80];
    STORE_TX *tx = NULL;
    enum store_rc rc = STORE_ERROR;
    int ok = 0;

    memset(&r, 0, sizeof(r));
    if (der == NULL || reply == NULL || !srv_repeat_hash(der, len, r.req_sha256))
        return 0;
    r.alias = ctx->alias->name;
    if (tid != NULL) {
        r.tid = (unsigned char *)ASN1_STRING_get0_data(tid);
        r.tid_len = (size_t)ASN1_STRING_length(tid);
    }
    r.upstream = upstream;
    r.http_status = http_status;
    r.created = (int64_t)ctx->now;
    r.reply = (unsigned char *)reply;
    r.reply_len = reply_len;
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        goto end;
    if ((rc = store_txn_reply_put(tx, &r)) != STORE_OK)
        goto end;
    if (audit_action != NULL
        && (rc = store_audit_append(tx, srv_actor(ctx, actor, sizeof(actor)),
                                    audit_action,
                                    cmp_hex(tid, obj, sizeof(obj)),
                                    audit_details)) != STORE_OK)
        goto end;
    rc = store_commit_clear(&tx);
    ok = rc == STORE_OK;
 end:
    store_rollback(tx);
    if (!ok)
        log_msg(LOG_WARN, "alias=%s the reply could not be stored (%s)",
                ctx->alias->name, store_rc_str(rc));
    return ok;
}
