/*
 * Helpers every handler of the server core uses: refusal reasons, the
 * request's store transactions, new responses, audit actors and
 * revocation through the alias's issuer. They live apart from the
 * dispatcher so that handlers depend on this file, never on the pipeline.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "util/log.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum cmp_reason __attribute__((format(printf, 3, 0)))
srv_vfail(struct srv_ctx *ctx, enum cmp_reason r,
                                 const char *fmt, va_list ap)
{
    ctx->reason = r;
    ctx->detail[0] = '\0';
    if (fmt != NULL)
        vsnprintf(ctx->detail, sizeof(ctx->detail), fmt, ap);
    return r;
}

enum cmp_reason srv_fail(struct srv_ctx *ctx, enum cmp_reason r,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    srv_vfail(ctx, r, fmt, ap);
    va_end(ap);
    ctx->in_body = 0;
    return r;
}

enum cmp_reason srv_reject(struct srv_ctx *ctx, enum cmp_reason r,
                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    srv_vfail(ctx, r, fmt, ap);
    va_end(ap);
    ctx->in_body = 1;
    return r;
}

enum cmp_reason srv_store_reason(struct srv_ctx *ctx, enum store_rc rc,
                                 const char *what)
{
    log_msg(LOG_ERROR, "alias=%s store error in %s: %s",
            ctx->alias != NULL ? ctx->alias->name : "-", what,
            store_rc_str(rc));
    if (rc == STORE_BUSY || rc == STORE_ERROR)
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s", what);
    return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "%s: %s", what,
                    store_rc_str(rc));
}

enum store_rc srv_read_tx(struct srv_ctx *ctx, STORE_TX **tx)
{
    enum store_rc rc = STORE_OK;

    if (ctx->rtx == NULL)
        rc = store_begin_read(ctx->srv->store, &ctx->rtx);
    *tx = rc == STORE_OK ? ctx->rtx : NULL;
    return rc;
}

void srv_read_end(struct srv_ctx *ctx)
{
    store_rollback(ctx->rtx);
    ctx->rtx = NULL;
}

enum store_rc srv_write_begin(struct srv_ctx *ctx, STORE_TX **tx)
{
    srv_read_end(ctx);
    return store_begin(ctx->srv->store, tx);
}

CMP_MSG *srv_rsp_new(struct srv_ctx *ctx, int type)
{
    /* sender and recipient are lent by srv_protect for the encoding */
    return cmp_rsp_new_ex(ctx->req, type, ctx->alias->rsp_cert, ctx->now, 0);
}

const char *srv_ra_name(const struct srv_ctx *ctx)
{
    if (ctx->rq.kind == SRV_RQ_RA && ctx->rq.ra != NULL)
        return ctx->rq.ra->name;
    if (ctx->via != NULL && ctx->via->ra != NULL)
        return ctx->via->ra->name;
    return NULL;
}

const char *srv_actor(const struct srv_ctx *ctx, char *buf, size_t len)
{
    const char *ra = srv_ra_name(ctx);

    snprintf(buf, len, "cmp:%s:%s%s%s", ctx->alias->name,
             ra != NULL ? "ra=" : "", ra != NULL ? ra : "",
             ra != NULL ? ":" : "");
    snprintf(buf + strlen(buf), len - strlen(buf), "%s",
             ctx->device_label[0] != '\0' ? ctx->device_label : "-");
    return buf;
}

void srv_audit_fill(const struct srv_ctx *ctx, struct issuer_audit *a,
                    char *actor, size_t actor_len, char *tid, size_t tid_len)
{
    memset(a, 0, sizeof(*a));
    a->actor = srv_actor(ctx, actor, actor_len);
    a->alias = ctx->alias->name;
    a->request = ctx->req != NULL ? cmp_body_type_name(ctx->req->body->type)
                                  : "-";
    a->device = ctx->device_label;
    a->ra = srv_ra_name(ctx);
    tid[0] = '\0';
    a->tid_hex = ctx->req != NULL
        ? cmp_hex(ctx->req->header->transactionID, tid, tid_len) : tid;
}

int srv_revoke_in_tx(struct srv_ctx *ctx, STORE_TX *tx, int64_t cert_id,
                     int reason, const char *why)
{
    char actor[300], err[256];
    enum ca_revoke_rc rc;

    rc = issuer_revoke(ctx->alias->issuer, tx, cert_id, reason,
                       (int64_t)ctx->now, srv_actor(ctx, actor, sizeof(actor)),
                       err, sizeof(err));
    switch (rc) {
    case CA_REVOKE_OK:
        if (reason != CA_REASON_REMOVE)    /* a released hold is none */
            ctx->revoked++;
        return 1;
    case CA_REVOKE_ALREADY:
        srv_reject(ctx, CMP_R_CERT_REVOKED, "%s: %s", why, err);
        return 0;
    case CA_REVOKE_NOT_HELD:
        srv_reject(ctx, CMP_R_BAD_REQUEST, "%s: %s", why, err);
        return 0;
    case CA_REVOKE_NOTFOUND:
        srv_reject(ctx, CMP_R_BAD_CERT_ID, "%s: %s", why, err);
        return 0;
    default:
        srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "revoke: %s", err);
        return 0;
    }
}

int srv_name_attr(const X509_NAME *name, int nid, char *buf, size_t len)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int idx, n;

    if (name == NULL || (idx = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
        return 0;
    e = X509_NAME_get_entry(name, idx);
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n <= 0 || (size_t)n >= len || memchr(utf8, '\0', (size_t)n) != NULL) {
        OPENSSL_free(utf8);
        ERR_clear_error();
        return 0;
    }
    memcpy(buf, utf8, (size_t)n);
    buf[n] = '\0';
    OPENSSL_free(utf8);
    return 1;
}

void srv_label_from_name(struct srv_ctx *ctx, const X509_NAME *name)
{
    if (name == NULL)
        return;
    if (!srv_name_attr(name, ctx->alias->device_id_nid, ctx->device_label,
                       sizeof(ctx->device_label))
        && !srv_name_attr(name, NID_commonName, ctx->device_label,
                          sizeof(ctx->device_label)))
        X509_NAME_oneline(name, ctx->device_label, sizeof(ctx->device_label));
}

void srv_requester_clear(struct srv_requester *rq)
{
    store_ra_free(rq->ra);
    memset(rq, 0, sizeof(*rq));
}
