/*
 * The server's periodic work: transactions whose certConf did not arrive
 * in time are expired (their certificates revoked), requests held for
 * approval that nobody decided on in time are expired, CRLs of CAs that
 * revoked outside an rr are refreshed, finished transactions are purged
 * after the retention, and vendor anchors are reloaded.
 */
#include "server/srv_int.h"

#include "util/log.h"
#include "util/metrics.h"

#include <stdio.h>
#include <string.h>

/* Issues a new CRL for the CA of every alias that revoked certificates
 * outside an rr since the last one (once per CA). */
static void srv_refresh_crls(SERVER *srv, time_t now)
{
    STORE_TX *tx = NULL;
    char err[256];
    size_t i, j;

    for (i = 0; i < srv->naliases; i++) {
        struct srv_alias *a = &srv->aliases[i];

        if (a->ca == NULL || !atomic_exchange(&a->crl_dirty, 0))
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
        ctx.mode = a->mode;
        ctx.now = now;
        snprintf(ctx.device_label, sizeof(ctx.device_label), "sweeper");
        if (store_begin(srv->store, &tx) != STORE_OK)
            break;
        /* the conditional update makes concurrent sweepers harmless */
        if (srv_txn_move_tx(tx, list[i], STORE_CMP_WAITING_CONFIRM,
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
    /* held requests nobody decided on in time */
    srv_poll_sweep(srv, now);
    srv_refresh_crls(srv, now);
    srv_txn_purge(srv, now);
    /* counts of refusal lines a burst that ended left suppressed */
    log_flush_suppressed();
    /* vendors registered or removed meanwhile (cmpca vendor ...) */
    server_reload_vendors(srv);
    return done;
}
