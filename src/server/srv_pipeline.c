/*
 * The request pipeline of the CMP server: decode, check the header, hand
 * the message to the operation handler (which asks the alias's mode to
 * verify, authenticate and authorise), and turn every outcome - success or
 * refusal - into a protected response: a refusal of a certificate
 * request's content in the response of its type with status rejection
 * (RFC 9483 3.6.4), every other refusal as an error message, the failInfo
 * from the one reason table. Also builds the server from the configuration
 * and writes one log line and the metrics for every message.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "conf/conf.h"
#include "util/log.h"
#include "util/metrics.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void server_set0_vendor_crl(SERVER *srv, struct vendor_crl *vc)
{
    srv->vcrl = vc;
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
    long retention, nested;
    size_t n = 0;
    long max_body;

    if (srv == NULL)
        return NULL;
    srv->store = store;
    server = conf_find(conf, "server", "");
    if (!conf_get_duration(conf, server, "txn_retention", 7 * 86400, 0,
                           3650L * 86400, &retention, err, errlen)
        || !conf_get_long(conf, server, "max_nested", 8, 1, 64, &nested, err,
                          errlen)
        || !srv_log_limits_load(srv, conf, server, err, errlen))
        goto err;
    srv->txn_retention = retention;
    srv->max_nested = (int)nested;
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

/* The operation a body type asks for. */
static enum srv_op srv_op_of(int type)
{
    switch (type) {
    case CMP_BODY_IR: return SRV_OP_IR;
    case CMP_BODY_CR: return SRV_OP_CR;
    case CMP_BODY_KUR: return SRV_OP_KUR;
    case CMP_BODY_P10CR: return SRV_OP_P10CR;
    case CMP_BODY_RR: return SRV_OP_RR;
    case CMP_BODY_CERTCONF: return SRV_OP_CERTCONF;
    case CMP_BODY_ERROR: return SRV_OP_ERROR;
    case CMP_BODY_GENM: return SRV_OP_GENM;
    case CMP_BODY_POLLREQ: return SRV_OP_POLL;
    case CMP_BODY_NESTED: return SRV_OP_NESTED;
    default: return SRV_OP_NONE;
    }
}

static int srv_handle_inner(struct srv_ctx *outer, const CMP_MSG *msg,
                            unsigned char **der, size_t *len);

/* Runs the handler for the operation. */
static enum cmp_reason srv_dispatch(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    if (ctx->mode->handle != NULL)    /* upstream: policy, then forward */
        return ctx->mode->handle(ctx, rsp);
    switch (ctx->op) {
    case SRV_OP_IR:
    case SRV_OP_CR:
    case SRV_OP_KUR:
    case SRV_OP_P10CR:
        return srv_enroll(ctx, rsp);
    case SRV_OP_CERTCONF:
        return srv_confirm(ctx, rsp);
    case SRV_OP_RR:
        return srv_revoke(ctx, rsp);
    case SRV_OP_GENM:
        return srv_genm(ctx, rsp);
    case SRV_OP_ERROR:
        return srv_client_error(ctx, rsp);
    case SRV_OP_NESTED:
        return srv_nested(ctx, srv_handle_inner, rsp);
    case SRV_OP_POLL:
        return srv_poll(ctx, rsp);
    default:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY, "%s",
                        cmp_body_type_name(ctx->req->body->type));
    }
}

/* The answer to a refused request: a certificate request or rr refused
 * for its content gets the response of its type with status rejection,
 * everything else an error message. */
static CMP_MSG *srv_refusal(struct srv_ctx *ctx)
{
    const char *text = ctx->detail[0] != '\0' ? ctx->detail
                                              : cmp_reason_text(ctx->reason);
    int type = ctx->req != NULL ? ctx->req->body->type : -1;
    int rsp_type = type == CMP_BODY_IR ? CMP_BODY_IP
        : type == CMP_BODY_CR || type == CMP_BODY_P10CR ? CMP_BODY_CP
        : type == CMP_BODY_KUR ? CMP_BODY_KUP
        : type == CMP_BODY_RR ? CMP_BODY_RP : -1;
    CMP_MSG *out;
    int ok;

    if (!ctx->in_body || rsp_type < 0)
        rsp_type = CMP_BODY_ERROR;
    if ((out = srv_rsp_new(ctx, rsp_type)) == NULL)
        return NULL;
    if (rsp_type == CMP_BODY_ERROR)
        ok = cmp_body_set_error(out, ctx->reason, ctx->detail);
    else if (rsp_type == CMP_BODY_RP)
        ok = cmp_body_set_rp(out, cmp_pkisi_new(CMP_STATUS_REJECTION,
                                                cmp_reason_fail_bit(ctx->reason),
                                                text));
    else
        ok = cmp_body_set_certrep(out, ctx->cert_req_id,
                                  cmp_pkisi_new(CMP_STATUS_REJECTION,
                                                cmp_reason_fail_bit(ctx->reason),
                                                text), NULL, 0, NULL);
    if (!ok) {
        CMP_MSG_free(out);
        return NULL;
    }
    return out;
}

/* Frees what the handlers left in |ctx|. */
static void srv_ctx_clear(struct srv_ctx *ctx)
{
    srv_read_end(ctx);
    store_device_free(ctx->device);
    store_cert_free(ctx->old_cert);
    X509_free(ctx->old_x509);
    srv_requester_clear(&ctx->rq);
    OPENSSL_free(ctx->out_der);
    srv_mac_ctx_clear(ctx);
    ctx->device = NULL;
    ctx->old_cert = NULL;
    ctx->old_x509 = NULL;
    ctx->out_der = NULL;
}

/*
 * Handles the decoded message |msg| (NULL when it did not decode: then
 * ctx->reason says why) in |ctx| (srv, alias, mode, now, via set) and
 * writes the protected answer into *der, *len (OPENSSL_malloc'ed; NULL if
 * none could be built). Logs one line. Returns the HTTP status.
 */
static int srv_handle_msg(struct srv_ctx *ctx, const CMP_MSG *msg,
                          unsigned char **der, size_t *len)
{
    const char *peer = ctx->peer;
    struct timespec t0;
    CMP_MSG *out = NULL;
    const char *type = "invalid", *outcome, *ra;
    char tid[40], dev[128], detail[240], rabuf[80], held[40];
    unsigned long suppressed = 0;
    int status;
    long us;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    *der = NULL;
    *len = 0;
    tid[0] = '\0';
    ctx->req = msg;
    if (msg != NULL) {
        type = cmp_body_type_name(msg->body->type);
        ctx->op = srv_op_of(msg->body->type);
        cmp_hex(msg->header->transactionID, tid, sizeof(tid));
        /* inside an RA's nested wrapper only the wrapper's messageTime
         * counts: the RA may have held the messages (RFC 9483 5.2.2.1,
         * its upstream away), and a replay is refused by transactionID */
        ctx->reason = cmp_msg_check_request(msg, ctx->now,
                                            ctx->via != NULL ? 0
                                            : ctx->alias->time_tolerance);
        if (ctx->reason == CMP_R_OK)
            ctx->reason = srv_dispatch(ctx, &out);
    }
    if (ctx->reason == CMP_R_OK && ctx->out_der != NULL) {
        /* answered and protected already (a single nested message) */
        *der = ctx->out_der;
        *len = ctx->out_len;
        ctx->out_der = NULL;
    } else {
        if (ctx->reason != CMP_R_OK || out == NULL) {
            if (ctx->reason == CMP_R_OK)
                srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "no response");
            CMP_MSG_free(out);
            out = srv_refusal(ctx);
        }
        if (out != NULL)
            srv_protect(ctx, out, der, len);
    }
    status = *der == NULL ? 500
        : ctx->reason == CMP_R_OK || ctx->in_body
        ? 200 : cmp_reason_http_status(ctx->reason);
    if (*der != NULL && ctx->reason == CMP_R_OK && ctx->out_http > 0)
        status = ctx->out_http;     /* relayed with the upstream's status */
    us = srv_usec_since(&t0);
    outcome = ctx->reason == CMP_R_OK ? "accepted"
        : ctx->reason == CMP_R_SYSTEM_FAILURE || ctx->reason == CMP_R_SYSTEM_UNAVAIL
        ? "error" : "rejected";
    ra = srv_ra_name(ctx);
    if (ra != NULL)
        snprintf(rabuf, sizeof(rabuf), " ra=\"%s\"%s",
                 srv_log_clean(ra, detail, 64), ctx->depth > 0 ? " nested=1" : "");
    else
        rabuf[0] = '\0';
    /* repeated identical refusals are logged at most log_repeat_per_sec
     * times a second, the next line admitted tells how many were not */
    if (srv_log_admit(ctx, peer, &suppressed)) {
    if (suppressed > 0)
        snprintf(held, sizeof(held), " suppressed=%lu", suppressed);
    else
        held[0] = '\0';
    log_msg(ctx->reason == CMP_R_OK ? LOG_INFO
            : !strcmp(outcome, "error") ? LOG_ERROR : LOG_WARN,
            "alias=%s type=%s tid=%s device=\"%s\"%s outcome=%s failInfo=%s "
            "http=%d us=%ld peer=%s%s%s%s%s", ctx->alias->name, type,
            tid[0] != '\0' ? tid : "-",
            srv_log_clean(ctx->device_label, dev, sizeof(dev)), rabuf, outcome,
            ctx->reason == CMP_R_OK ? "-" : cmp_reason_fail_name(ctx->reason),
            status, us, peer != NULL ? peer : "-",
            ctx->reason != CMP_R_OK ? " reason=\"" : "",
            ctx->reason != CMP_R_OK
                ? srv_log_clean(ctx->detail[0] != '\0' ? ctx->detail
                                : cmp_reason_text(ctx->reason), detail,
                                sizeof(detail)) : "",
            ctx->reason != CMP_R_OK ? "\"" : "", held);
    }
    srv_read_end(ctx);
    metrics_observe_cmp(ctx->alias->name, type, outcome, us / 1e6);
    /* an rr issues its CRL in its own transaction; other revocations
     * (kur, rejected or superseded enrollments) leave it to the sweeper */
    if (ctx->revoked > 0 && (msg == NULL || msg->body->type != CMP_BODY_RR))
        atomic_store(&ctx->alias->crl_dirty, 1);
    for (; ctx->revoked > 0; ctx->revoked--)
        metrics_cert_revoked(ctx->alias->name);
    CMP_MSG_free(out);
    srv_ctx_clear(ctx);
    ERR_clear_error();
    return status;
}

/* srv_inner_fn: a message inside a nested wrapper, handled as if it came
 * alone, vouched for by the wrapper's requester. */
static int srv_handle_inner(struct srv_ctx *outer, const CMP_MSG *msg,
                            unsigned char **der, size_t *len)
{
    struct srv_ctx ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.srv = outer->srv;
    ctx.alias = outer->alias;
    ctx.mode = outer->mode;
    ctx.now = outer->now;
    ctx.via = &outer->rq;
    ctx.depth = outer->depth + 1;
    ctx.peer = outer->peer;
    srv_handle_msg(&ctx, msg, der, len);
    if (ctx.reason != CMP_R_OK)
        outer->inner_refused = 1;
    return *der != NULL;
}

void server_handle(SERVER *srv, const struct server_request *req,
                   struct server_response *rsp)
{
    struct srv_ctx ctx;
    CMP_MSG *msg = NULL;
    unsigned char *der = NULL;
    size_t len = 0;

    memset(&ctx, 0, sizeof(ctx));
    memset(rsp, 0, sizeof(*rsp));
    ctx.srv = srv;
    ctx.now = time(NULL);
    if ((ctx.alias = srv_alias_find(srv, req->alias)) == NULL) {
        rsp->http_status = 404;
        return;
    }
    ctx.mode = ctx.alias->mode;
    ctx.peer = req->peer;
    ctx.req_der = req->der;
    ctx.req_len = req->len;
    if (req->reject_status != 0)
        srv_fail(&ctx, req->reject_status == 413 ? CMP_R_BODY_TOO_LARGE
                                                 : CMP_R_BAD_CONTENT_TYPE, NULL);
    else
        ctx.reason = cmp_msg_decode(req->der, req->len, &srv->limits, &msg);
    /* a byte-identical repeat of a request answered before: the same
     * answer, nothing done twice */
    if (ctx.alias->answer_repeats && msg != NULL && ctx.reason == CMP_R_OK
        && srv_repeat_lookup(&ctx, req->der, req->len, &rsp->der, &rsp->len,
                             NULL)) {
        char tid[40];

        log_msg(LOG_INFO, "alias=%s type=%s tid=%s outcome=repeat http=200 "
                "peer=%s", ctx.alias->name, cmp_body_type_name(msg->body->type),
                cmp_hex(msg->header->transactionID, tid, sizeof(tid)),
                req->peer != NULL ? req->peer : "-");
        rsp->http_status = 200;
        CMP_MSG_free(msg);
        return;
    }
    rsp->http_status = srv_handle_msg(&ctx, msg, &der, &len);
    /* only accepted requests: a refusal changed nothing and is answered
     * alike when it comes again */
    if (ctx.alias->answer_repeats && msg != NULL && ctx.reason == CMP_R_OK
        && !ctx.inner_refused && der != NULL && rsp->http_status == 200)
        (void)srv_repeat_store(&ctx, req->der, req->len, der, len, 0, 200,
                               NULL, NULL);
    if (der != NULL && (rsp->der = malloc(len)) != NULL) {
        memcpy(rsp->der, der, len);
        rsp->len = len;
    } else {
        rsp->http_status = 500;
    }
    OPENSSL_free(der);
    CMP_MSG_free(msg);
}
