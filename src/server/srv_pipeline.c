/*
 * The request pipeline of the CMP server: decode, check the header,
 * dispatch by body type, and turn every outcome - success or refusal - into
 * a protected response with the failInfo from the one reason table. Also
 * builds the server from the configuration and writes one log line and the
 * metrics for every message.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "conf/conf.h"
#include "util/log.h"
#include "util/metrics.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum cmp_reason srv_fail(struct srv_ctx *ctx, enum cmp_reason r,
                        const char *fmt, ...)
{
    va_list ap;

    ctx->reason = r;
    ctx->detail[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(ctx->detail, sizeof(ctx->detail), fmt, ap);
        va_end(ap);
    }
    return r;
}

enum cmp_reason srv_store_reason(struct srv_ctx *ctx, enum store_rc rc,
                                const char *what)
{
    log_msg(LOG_ERROR, "alias=%s store error in %s: %s",
            ctx->alias != NULL ? ctx->alias->name : "-", what, store_rc_str(rc));
    if (rc == STORE_BUSY || rc == STORE_ERROR)
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s", what);
    return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "%s: %s", what, store_rc_str(rc));
}

const char *srv_actor(const struct srv_ctx *ctx, char *buf, size_t len)
{
    snprintf(buf, len, "cmp:%s:%s", ctx->alias->name,
             ctx->device_label[0] != '\0' ? ctx->device_label : "-");
    return buf;
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
    /* sender and recipient are lent by srv_finish for the encoding */
    return cmp_rsp_new_ex(ctx->req, type, ctx->alias->rsp_cert, ctx->now, 0);
}

static struct srv_alias *srv_alias_find(const SERVER *srv, const char *name)
{
    size_t i;

    if (name == NULL)
        name = srv->default_alias;
    if (name == NULL)
        return NULL;
    for (i = 0; i < srv->naliases; i++)
        if (strcmp(srv->aliases[i].name, name) == 0)
            return &srv->aliases[i];
    return NULL;
}

int server_has_alias(const SERVER *srv, const char *alias)
{
    return srv_alias_find(srv, alias) != NULL;
}

const char *server_default_alias(const SERVER *srv)
{
    return srv->default_alias;
}

SERVER *server_new(const struct conf *conf, STORE *store, char *err,
                         size_t errlen)
{
    const struct conf_section *sec, *server;
    SERVER *srv = calloc(1, sizeof(*srv));
    const char *def;
    size_t n = 0;
    long max_body;

    if (srv == NULL)
        return NULL;
    srv->store = store;
    for (sec = conf_next(conf, "alias", NULL); sec != NULL;
         sec = conf_next(conf, "alias", sec))
        n++;
    if (n == 0) {
        snprintf(err, errlen, "%s: no [alias NAME] section", conf->path);
        goto err;
    }
    if ((srv->aliases = calloc(n, sizeof(*srv->aliases))) == NULL)
        goto err;
    for (sec = conf_next(conf, "alias", NULL); sec != NULL;
         sec = conf_next(conf, "alias", sec)) {
        if (!srv_alias_load(&srv->aliases[srv->naliases++], conf, sec, store,
                           err, errlen))
            goto err;
    }
    server = conf_find(conf, "server", "");
    /* the decoder's message limit follows the HTTP body limit, so that
     * [server] max_body above 64 KiB is honoured end to end */
    if (!conf_get_size(conf, server, "max_body", CMP_DEFAULT_MAX_MSG_LEN,
                       1024, 16L << 20, &max_body, err, errlen))
        goto err;
    srv->limits.max_msg_len = (size_t)max_body;
    def = conf_get(server, "default_alias");
    if (def == NULL && n == 1)
        def = srv->aliases[0].name;
    if (def != NULL) {
        if (srv_alias_find(srv, def) == NULL) {
            conf_err(conf, server != NULL ? server->line : 0, err, errlen,
                     "default_alias '%s' is not an [alias]", def);
            goto err;
        }
        if ((srv->default_alias = strdup(def)) == NULL)
            goto err;
    }
    return srv;
 err:
    server_free(srv);
    return NULL;
}

void server_free(SERVER *srv)
{
    size_t i;

    if (srv == NULL)
        return;
    for (i = 0; i < srv->naliases; i++)
        srv_alias_clear(&srv->aliases[i]);
    free(srv->aliases);
    free(srv->default_alias);
    free(srv);
}

int server_reload_vendors(SERVER *srv)
{
    size_t i;
    int ok = 1;

    for (i = 0; i < srv->naliases; i++)
        ok &= srv_alias_reload_vendors(&srv->aliases[i], srv->store);
    return ok;
}

static int srv_sign_buf_fn(void *arg, const unsigned char *tbs, size_t tbslen,
                          unsigned char *sig, size_t *siglen)
{
    return ca_signer_sign_buf(arg, tbs, tbslen, sig, siglen);
}

/* Signs |msg| with the alias's response signer and encodes it, with the
 * alias's extraCerts (signer, its chain up to the root, then the CA chain
 * of issued certificates), into a malloc'ed buffer. */
static int srv_finish(struct srv_ctx *ctx, CMP_MSG *msg, struct server_response *out)
{
    const struct srv_alias *a = ctx->alias;
    const CMP_HDR *rh = ctx->req != NULL ? ctx->req->header : NULL;
    CMP_HDR *h = msg->header;
    GENERAL_NAME *sender = h->sender, *recipient = h->recipient;
    const unsigned char *alg = NULL;
    unsigned char *der = NULL;
    size_t alg_len = 0, len = 0;
    int ok;

    /* The names are lent for the encoding and the placeholders put back
     * before anything else sees the message: the sender is the alias's
     * (made once), the recipient the request's sender (NULL-DN if none). */
    h->sender = a->rsp_sender;
    h->recipient = rh != NULL && rh->sender != NULL ? rh->sender
                                                    : a->rsp_nobody;
    ok = ca_signer_get0_sigalg_der(a->rsp_signer, &alg, &alg_len)
        && cmp_protect_sign_encode(msg, alg, alg_len, srv_sign_buf_fn,
                                   (void *)a->rsp_signer,
                                   ca_signer_max_sig_len(a->rsp_signer),
                                   a->rsp_extra, a->rsp_extra_len, &der, &len);
    h->sender = sender;
    h->recipient = recipient;
    if (!ok)
        goto err;
    if ((out->der = malloc(len)) == NULL)
        goto err;
    memcpy(out->der, der, len);
    out->len = len;
    OPENSSL_free(der);
    return 1;
 err:
    OPENSSL_free(der);
    log_ossl(LOG_ERROR, "cannot build response");
    return 0;
}

/* Copies |s| for a log line: printable ASCII only, quotes escaped. */
static const char *srv_log_clean(const char *s, char *buf, size_t len)
{
    size_t i = 0;

    for (; s != NULL && *s != '\0' && i + 2 < len; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            buf[i++] = '\\';
        buf[i++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    buf[i] = '\0';
    return buf;
}

static long srv_usec_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000000L
        + (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

/* Runs the handler for the body type. */
static enum cmp_reason srv_dispatch(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    switch (ctx->req->body->type) {
    case CMP_BODY_IR:
    case CMP_BODY_CR:
    case CMP_BODY_KUR:
    case CMP_BODY_P10CR:
        return srv_enroll(ctx, rsp);
    case CMP_BODY_CERTCONF:
        return srv_confirm(ctx, rsp);
    case CMP_BODY_RR:
        return srv_revoke(ctx, rsp);
    case CMP_BODY_GENM:
        return srv_genm(ctx, rsp);
    case CMP_BODY_ERROR:
        return srv_client_error(ctx, rsp);
    case CMP_BODY_POLLREQ:
        return srv_fail(ctx, CMP_R_UNEXPECTED_BODY,
                       "no delayed delivery is pending");
    case CMP_BODY_NESTED:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY,
                       "nested messages are for aliases in ra mode");
    default:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY, "%s",
                       cmp_body_type_name(ctx->req->body->type));
    }
}

void server_handle(SERVER *srv, const struct server_request *req,
                      struct server_response *rsp)
{
    struct srv_ctx ctx;
    struct timespec t0;
    CMP_MSG *msg = NULL, *out = NULL;
    const char *type = "invalid", *outcome;
    char tid[40], dev[128], detail[240];
    long us;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&ctx, 0, sizeof(ctx));
    memset(rsp, 0, sizeof(*rsp));
    ctx.srv = srv;
    ctx.now = time(NULL);
    tid[0] = '\0';
    if ((ctx.alias = srv_alias_find(srv, req->alias)) == NULL) {
        rsp->http_status = 404;
        return;
    }
    if (req->reject_status != 0) {
        srv_fail(&ctx, req->reject_status == 413 ? CMP_R_BODY_TOO_LARGE
                                                : CMP_R_BAD_CONTENT_TYPE, NULL);
    } else if ((ctx.reason = cmp_msg_decode(req->der, req->len, &srv->limits,
                                            &msg)) == CMP_R_OK) {
        ctx.req = msg;
        type = cmp_body_type_name(msg->body->type);
        cmp_hex(msg->header->transactionID, tid, sizeof(tid));
        ctx.reason = cmp_hdr_check_request(msg->header, ctx.now,
                                           ctx.alias->time_tolerance);
        if (ctx.reason == CMP_R_OK)
            ctx.reason = srv_dispatch(&ctx, &out);
    }
    if (ctx.reason != CMP_R_OK || out == NULL) {
        if (ctx.reason == CMP_R_OK)
            srv_fail(&ctx, CMP_R_SYSTEM_FAILURE, "no response");
        CMP_MSG_free(out);
        if ((out = srv_rsp_new(&ctx, CMP_BODY_ERROR)) == NULL
            || !cmp_body_set_error(out, ctx.reason, ctx.detail)) {
            CMP_MSG_free(out);
            out = NULL;
        }
    }
    if (out == NULL || !srv_finish(&ctx, out, rsp)) {
        free(rsp->der);
        rsp->der = NULL;
        rsp->len = 0;
        rsp->http_status = 500;
    } else {
        rsp->http_status = ctx.reason == CMP_R_OK
            ? 200 : cmp_reason_http_status(ctx.reason);
    }
    us = srv_usec_since(&t0);
    outcome = ctx.reason == CMP_R_OK ? "accepted"
        : ctx.reason == CMP_R_SYSTEM_FAILURE || ctx.reason == CMP_R_SYSTEM_UNAVAIL
        ? "error" : "rejected";
    log_msg(ctx.reason == CMP_R_OK ? LOG_INFO
            : !strcmp(outcome, "error") ? LOG_ERROR : LOG_WARN,
            "alias=%s type=%s tid=%s device=\"%s\" outcome=%s failInfo=%s "
            "http=%d us=%ld peer=%s%s%s%s", ctx.alias->name, type,
            tid[0] != '\0' ? tid : "-",
            srv_log_clean(ctx.device_label, dev, sizeof(dev)), outcome,
            ctx.reason == CMP_R_OK ? "-" : cmp_reason_fail_name(ctx.reason),
            rsp->http_status, us, req->peer != NULL ? req->peer : "-",
            ctx.reason != CMP_R_OK ? " reason=\"" : "",
            ctx.reason != CMP_R_OK
                ? srv_log_clean(ctx.detail[0] != '\0' ? ctx.detail
                               : cmp_reason_text(ctx.reason), detail,
                               sizeof(detail)) : "",
            ctx.reason != CMP_R_OK ? "\"" : "");
    srv_read_end(&ctx);
    metrics_observe_cmp(ctx.alias->name, type, outcome, us / 1e6);
    /* an rr issues its CRL in its own transaction; other revocations
     * (kur, rejected or superseded enrollments) leave it to the sweeper */
    if (ctx.revoked > 0 && ctx.req != NULL && ctx.req->body->type != CMP_BODY_RR)
        atomic_store(&ctx.alias->crl_dirty, 1);
    for (; ctx.revoked > 0; ctx.revoked--)
        metrics_cert_revoked(ctx.alias->name);
    store_device_free(ctx.device);
    store_cert_free(ctx.signer_cert);
    CMP_MSG_free(out);
    CMP_MSG_free(msg);
    ERR_clear_error();
}
