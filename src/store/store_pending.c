/*
 * Store front end of the requests that wait for an operator's decision
 * (delayed delivery, table cmp_pending): record checks and dispatch to the
 * backend; the state machine itself is the server's (op_poll.c) and the
 * CLI's (cmd_request.c).
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#define OPS(tx) ((tx)->st->ops)
#define STORE_PENDING_NEED_WRITE(tx)                                        \
    do {                                                                    \
        if (!(tx)->write)                                                   \
            return store_tx_fail((tx), STORE_ERROR,                         \
                                 "write in a read-only transaction");       \
    } while (0)

static const char *const store_pending_states[] = {
    "pending", "approved", "rejected", "expired", "delivered"
};

const char *store_pending_state_str(int state)
{
    if (state < 0 || (size_t)state >= sizeof(store_pending_states)
                                       / sizeof(store_pending_states[0]))
        return NULL;
    return store_pending_states[state];
}

int store_pending_state_find(const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < sizeof(store_pending_states)
                                    / sizeof(store_pending_states[0]); i++)
        if (strcmp(name, store_pending_states[i]) == 0)
            return (int)i;
    return -1;
}

void store_pending_free(struct store_pending *p)
{
    if (p == NULL)
        return;
    free(p->alias);
    free(p->requester);
    free(p->device);
    free(p->profile);
    free(p->subject);
    free(p->request);
    free(p->vendor_cert);
    free(p->decided_by);
    free(p->reason);
    free(p);
}

void store_pending_list_free(struct store_pending **v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        store_pending_free(v[i]);
    free(v);
}

static int store_pending_tid_ok(const unsigned char *tid, size_t len)
{
    return tid != NULL && len >= 1 && len <= STORE_TID_MAX;
}

enum store_rc store_pending_insert(STORE_TX *tx, const struct store_pending *p)
{
    STORE_PENDING_NEED_WRITE(tx);
    if (!store_pending_tid_ok(p->tid, p->tid_len) || p->alias == NULL
        || p->request == NULL || p->request_len == 0
        || store_cmp_type_str(p->type) == NULL
        || store_pending_state_str(p->state) == NULL)
        return store_tx_fail(tx, STORE_ERROR, "pending_insert: bad record");
    return OPS(tx)->pending_insert(tx, p);
}

enum store_rc store_pending_get(STORE_TX *tx, const unsigned char *tid,
                                size_t tid_len, struct store_pending **out)
{
    *out = NULL;
    if (!store_pending_tid_ok(tid, tid_len))
        return STORE_NOTFOUND;
    return OPS(tx)->pending_get(tx, tid, tid_len, out);
}

enum store_rc store_pending_set_state(STORE_TX *tx, const unsigned char *tid,
                                      size_t tid_len, int from, int to,
                                      const char *decided_by,
                                      const char *reason)
{
    STORE_PENDING_NEED_WRITE(tx);
    if (!store_pending_tid_ok(tid, tid_len))
        return STORE_NOTFOUND;
    if (store_pending_state_str(to) == NULL)
        return store_tx_fail(tx, STORE_ERROR, "bad pending state %d", to);
    return OPS(tx)->pending_set_state(tx, tid, tid_len, from, to, decided_by,
                                      reason);
}

enum store_rc store_pending_list(STORE_TX *tx,
                                 const struct store_pending_filter *f,
                                 struct store_pending ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return OPS(tx)->pending_list(tx, f, out, n);
}

enum store_rc store_pending_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    if (n != NULL)
        *n = 0;
    STORE_PENDING_NEED_WRITE(tx);
    return OPS(tx)->pending_purge(tx, before, n);
}

enum store_rc store_pending_list_expired(STORE_TX *tx, int64_t now,
                                         long limit,
                                         struct store_pending ***out,
                                         size_t *n)
{
    *out = NULL;
    *n = 0;
    return OPS(tx)->pending_list_expired(tx, now, limit, out, n);
}

enum store_rc store_pending_list_stale(STORE_TX *tx, int64_t now, long limit,
                                       struct store_pending ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return OPS(tx)->pending_list_stale(tx, now, limit, out, n);
}
