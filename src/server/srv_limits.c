/*
 * Per-requester enrollment limits (outstanding unconfirmed transactions,
 * enrollments per time window), read per alias with [server] defaults and
 * checked before a certificate is issued; and the rate limit of the log
 * lines of repeated identical refusals.
 */
#include "server/srv_int.h"

#include "conf/conf.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

/* Reads one limit: the alias's value, else [server]'s, else |def|. */
static int srv_limit_get(const struct conf *conf,
                         const struct conf_section *alias,
                         const struct conf_section *server, const char *key,
                         int duration, long def, long min, long max,
                         long *out, char *err, size_t errlen)
{
    long sdef;

    if (duration)
        return conf_get_duration(conf, server, key, def, min, max, &sdef, err,
                                 errlen)
            && conf_get_duration(conf, alias, key, sdef, min, max, out, err,
                                 errlen);
    return conf_get_long(conf, server, key, def, min, max, &sdef, err, errlen)
        && conf_get_long(conf, alias, key, sdef, min, max, out, err, errlen);
}

int srv_limits_load(struct srv_enroll_limits *l, const struct conf *conf,
                    const struct conf_section *sec, char *err, size_t errlen)
{
    const struct conf_section *server = conf_find(conf, "server", "");

    memset(l, 0, sizeof(*l));
    return srv_limit_get(conf, sec, server, "enroll_max_pending", 0,
                         SRV_DEFAULT_MAX_PENDING, 0, 1000000, &l->max_pending,
                         err, errlen)
        && srv_limit_get(conf, sec, server, "enroll_max_per_window", 0,
                         SRV_DEFAULT_MAX_PER_WINDOW, 0, 100000000,
                         &l->max_per_window, err, errlen)
        && srv_limit_get(conf, sec, server, "enroll_window", 1,
                         SRV_DEFAULT_WINDOW, 1, 366L * 86400, &l->window, err,
                         errlen);
}

enum cmp_reason srv_limits_check(struct srv_ctx *ctx)
{
    const struct srv_enroll_limits *l = &ctx->alias->enroll;
    int64_t waiting = 0, recent = 0;
    STORE_TX *tx = NULL;
    enum store_rc rc;

    /* an RA signing for many devices is not one requester; the devices
     * inside its nested wrappers are, each with its own id */
    if (ctx->rq.kind == SRV_RQ_RA)
        return CMP_R_OK;
    if (l->max_pending == 0 && l->max_per_window == 0)
        return CMP_R_OK;
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_cmp_txn_count_requester(tx, ctx->rq.id,
                                       (int64_t)ctx->now - l->window,
                                       &waiting, &recent);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "requester's transactions");
    if (l->max_pending > 0 && waiting >= l->max_pending)
        return srv_fail(ctx, CMP_R_ENROLL_LIMIT,
                        "%lld enrollments await certConf or approval "
                        "(enroll_max_pending = %ld)", (long long)waiting, l->max_pending);
    if (l->max_per_window > 0 && recent >= l->max_per_window)
        return srv_fail(ctx, CMP_R_ENROLL_LIMIT,
                        "%lld enrollments in the last %lds"
                        " (enroll_max_per_window = %ld)", (long long)recent,
                        l->window, l->max_per_window);
    return CMP_R_OK;
}

int srv_log_limits_load(SERVER *srv, const struct conf *conf,
                        const struct conf_section *server, char *err,
                        size_t errlen)
{
    long n;

    if (!conf_get_long(conf, server, "log_repeat_per_sec",
                       SRV_DEFAULT_LOG_REPEAT, 0, 1000000, &n, err, errlen))
        return 0;
    srv->log_repeat = (unsigned)n;
    return 1;
}

int srv_log_admit(const struct srv_ctx *ctx, const char *peer,
                  unsigned long *suppressed)
{
    char key[200];
    const char *colon = peer != NULL ? strrchr(peer, ':') : NULL;
    int plen = peer == NULL ? 1 : colon != NULL ? (int)(colon - peer)
                                                : (int)strlen(peer);

    *suppressed = 0;
    if (ctx->reason == CMP_R_OK || ctx->srv->log_repeat == 0)
        return 1;
    /* one key per (alias, failInfo, peer address without the port) */
    snprintf(key, sizeof(key), "alias=%s failInfo=%s peer=%.*s",
             ctx->alias->name, cmp_reason_fail_name(ctx->reason),
             plen > 80 ? 80 : plen, peer != NULL ? peer : "-");
    return log_admit(key, ctx->srv->log_repeat, suppressed);
}
