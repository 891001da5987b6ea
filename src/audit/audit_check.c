/*
 * audit_verify: the audit chain against its head and exported checkpoints,
 * then certificate status against the cert.revoke and cert.unhold events
 * (a hold released, a hold made a revocation for good), all in one read
 * snapshot (a running server cannot make the two disagree).
 */
#include "audit/audit.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One cert.revoke or cert.unhold event of the chain. */
struct audit_rev {
    int unhold;              /* cert.unhold: released from hold */
    int64_t ca_id;
    unsigned char serial[STORE_SERIAL_MAX];
    size_t serial_len;
    int reason;
    int64_t time;
    int64_t seq;             /* the audit row */
    int seen;                /* found revoked in the store */
};

struct audit_check {
    struct audit_rev *rev;
    size_t nrev, caprev;
    audit_problem_fn problem;
    void *arg;
    size_t problems;
    int failed;              /* out of memory */
    int64_t ca_id;           /* CA whose revoked certificates are walked */
    int64_t revoked;         /* revoked certificates seen */
};

/* Reports one problem. */
static void audit_report(struct audit_check *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void audit_report(struct audit_check *k, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    k->problems++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (k->problem != NULL)
        k->problem(k->arg, msg);
}

/* Serial octets as uppercase hex (as the audit rows write them). */
static void audit_serial_hex(const unsigned char *s, size_t len, char *out)
{
    size_t i;

    for (i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02X", s[i]);
    out[2 * len] = '\0';
}

/* Parses a hex serial (either case) into |out|; 1 or 0. */
static int audit_serial_parse(const char *hex, unsigned char *out,
                              size_t *len)
{
    size_t n = hex != NULL ? strlen(hex) : 0, i;
    unsigned int b;

    if (n == 0 || n % 2 != 0 || n / 2 > STORE_SERIAL_MAX
        || strspn(hex, "0123456789abcdefABCDEF") != n)
        return 0;
    for (i = 0; i < n / 2; i++) {
        if (sscanf(hex + 2 * i, "%2x", &b) != 1)
            return 0;
        out[i] = (unsigned char)b;
    }
    *len = n / 2;
    return 1;
}

/* Collects the cert.revoke / cert.unhold events while the chain is
 * verified. */
static int audit_collect(void *arg, const struct store_audit_row *row)
{
    struct audit_check *k = arg;
    struct audit_rev *r, *nv;
    json_t *d = NULL, *ca, *reason, *t;

    int unhold;

    if (row->action == NULL)
        return 1;
    unhold = strcmp(row->action, "cert.unhold") == 0;
    if (!unhold && strcmp(row->action, "cert.revoke") != 0)
        return 1;
    if (k->nrev == k->caprev) {
        k->caprev = k->caprev ? k->caprev * 2 : 64;
        if ((nv = realloc(k->rev, k->caprev * sizeof(*nv))) == NULL) {
            k->failed = 1;
            return 0;
        }
        k->rev = nv;
    }
    r = &k->rev[k->nrev];
    memset(r, 0, sizeof(*r));
    r->seq = row->seq;
    r->unhold = unhold;
    if (row->details != NULL)
        d = json_loads(row->details, 0, NULL);
    ca = json_object_get(d, "ca");
    reason = json_object_get(d, "reason");
    t = json_object_get(d, "time");
    if (!audit_serial_parse(row->object, r->serial, &r->serial_len)
        || !json_is_integer(ca) || !json_is_integer(reason)
        || !json_is_integer(t)) {
        audit_report(k, "audit row %lld: %s event without a "
                     "readable serial, CA, reason and time",
                     (long long)row->seq, row->action);
        json_decref(d);
        return 1;
    }
    r->ca_id = (int64_t)json_integer_value(ca);
    r->reason = (int)json_integer_value(reason);
    r->time = (int64_t)json_integer_value(t);
    json_decref(d);
    k->nrev++;
    return 1;
}

static int audit_rev_cmp(const void *a, const void *b)
{
    const struct audit_rev *x = a, *y = b;
    int c;

    if (x->ca_id != y->ca_id)
        return x->ca_id < y->ca_id ? -1 : 1;
    if (x->serial_len != y->serial_len)
        return x->serial_len < y->serial_len ? -1 : 1;
    if ((c = memcmp(x->serial, y->serial, x->serial_len)) != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The first event for (ca_id, serial), or NULL (events sorted). */
static struct audit_rev *audit_rev_find(struct audit_check *k, int64_t ca_id,
                                        const unsigned char *serial,
                                        size_t len)
{
    size_t lo = 0, hi = k->nrev, mid;
    struct audit_rev key;
    int c;

    memset(&key, 0, sizeof(key));
    key.ca_id = ca_id;
    key.serial_len = len;
    memcpy(key.serial, serial, len);
    key.seq = -1;             /* sorts before every event of that cert */
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if ((c = audit_rev_cmp(&k->rev[mid], &key)) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < k->nrev && k->rev[lo].ca_id == ca_id
        && k->rev[lo].serial_len == len
        && memcmp(k->rev[lo].serial, serial, len) == 0)
        return &k->rev[lo];
    return NULL;
}

/* Is |b| an event of the same certificate as |a|? */
static int audit_rev_same(const struct audit_rev *a, const struct audit_rev *b)
{
    return a->ca_id == b->ca_id && a->serial_len == b->serial_len
        && memcmp(a->serial, b->serial, a->serial_len) == 0;
}

/* The last event of the certificate whose first event is |e|. */
static struct audit_rev *audit_rev_last(struct audit_check *k,
                                        struct audit_rev *e)
{
    while (e + 1 < k->rev + k->nrev && audit_rev_same(e, e + 1))
        e++;
    return e;
}

/* Checks one certificate revoked in the store against its event. */
static int audit_check_revoked(void *arg, const struct store_revoked *r)
{
    struct audit_check *k = arg;
    struct audit_rev *e;
    char hex[2 * STORE_SERIAL_MAX + 1];

    k->revoked++;
    if (r->serial_len == 0 || r->serial_len > STORE_SERIAL_MAX)
        return 1;
    audit_serial_hex(r->serial, r->serial_len, hex);
    if ((e = audit_rev_find(k, k->ca_id, r->serial, r->serial_len)) == NULL) {
        audit_report(k, "certificate %s of CA %lld is revoked in the store "
                     "but no audit event revoked it (revoked directly in "
                     "the table?)", hex, (long long)k->ca_id);
        return 1;
    }
    e = audit_rev_last(k, e);     /* the state the events leave */
    e->seen = 1;
    if (e->unhold)
        audit_report(k, "certificate %s of CA %lld is revoked in the store, "
                     "but audit row %lld released it from hold", hex,
                     (long long)k->ca_id, (long long)e->seq);
    else if (e->reason != r->reason || e->time != r->revoked_at)
        audit_report(k, "certificate %s of CA %lld: revocation reason %d at "
                     "%lld in the store, but %d at %lld in audit row %lld",
                     hex, (long long)k->ca_id, r->reason,
                     (long long)r->revoked_at, e->reason, (long long)e->time,
                     (long long)e->seq);
    return 1;
}

/* Reports events without their state: a certificate valid or missing, or
 * revoked twice. Returns 0 on a database error. */
static int audit_check_events(struct audit_check *k, STORE_TX *tx)
{
    struct store_cert *c;
    char hex[2 * STORE_SERIAL_MAX + 1];
    enum store_rc rc;
    size_t i;

    for (i = 0; i < k->nrev; i++) {
        const struct audit_rev *e = &k->rev[i];

        const struct audit_rev *p = i > 0 && audit_rev_same(&k->rev[i - 1], e)
            ? &k->rev[i - 1] : NULL;

        audit_serial_hex(e->serial, e->serial_len, hex);
        /* valid -> revoked; on hold (6) -> released, or revoked for good */
        if (e->unhold && (p == NULL || p->unhold || p->reason != 6))
            audit_report(k, "audit row %lld released certificate %s of CA "
                         "%lld from hold, but it was not on hold",
                         (long long)e->seq, hex, (long long)e->ca_id);
        else if (!e->unhold && p != NULL && !p->unhold
                 && (p->reason != 6 || e->reason == 6))
            audit_report(k, "certificate %s of CA %lld has a second "
                         "revocation event (audit rows %lld and %lld)", hex,
                         (long long)e->ca_id, (long long)p->seq,
                         (long long)e->seq);
        if (i + 1 < k->nrev && audit_rev_same(e, &k->rev[i + 1]))
            continue;             /* only the last event says the state */
        if (e->seen || e->unhold)
            continue;
        c = NULL;
        rc = store_cert_get_by_serial(tx, e->ca_id, e->serial,
                                      e->serial_len, &c);
        if (rc == STORE_NOTFOUND)
            audit_report(k, "audit row %lld revoked certificate %s of CA "
                         "%lld, which is not in the store (row deleted?)",
                         (long long)e->seq, hex, (long long)e->ca_id);
        else if (rc != STORE_OK)
            return 0;
        else if (c->status != STORE_CERT_REVOKED)
            audit_report(k, "audit row %lld revoked certificate %s of CA "
                         "%lld, but it is valid in the store (un-revoked in "
                         "the table?)", (long long)e->seq, hex,
                         (long long)e->ca_id);
        store_cert_free(c);
    }
    return 1;
}

static int audit_anchor_cmp(const void *a, const void *b)
{
    const struct store_audit_anchor *x = a, *y = b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

enum audit_rc audit_verify(STORE *st, const struct audit_ckpt *anchors,
                           size_t n, unsigned flags, audit_problem_fn problem,
                           void *arg,
                           struct audit_report *rep, char *err,
                           size_t errlen)
{
    struct store_audit_anchor *a = NULL;
    struct audit_check k;
    struct store_ca **cas = NULL;
    STORE_TX *tx = NULL;
    char why[300];
    size_t i, ncas = 0;
    enum store_rc rc;
    enum audit_rc ret = AUDIT_ERROR;

    memset(rep, 0, sizeof(*rep));
    memset(&k, 0, sizeof(k));
    k.problem = problem;
    k.arg = arg;
    if (n > 0 && (a = calloc(n, sizeof(*a))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return AUDIT_ERROR;
    }
    for (i = 0; i < n; i++) {
        a[i].seq = anchors[i].seq;
        memcpy(a[i].hash, anchors[i].hash, STORE_SHA256_LEN);
    }
    if (n > 1)
        qsort(a, n, sizeof(*a), audit_anchor_cmp);
    if ((rc = store_begin_read(st, &tx)) != STORE_OK) {
        snprintf(err, errlen, "cannot read the store: %s", store_rc_str(rc));
        goto end;
    }
    rep->chain = store_audit_walk(tx, a, n,
                                  (flags & AUDIT_VERIFY_NO_STATUS) != 0
                                  ? NULL : audit_collect, &k, &rep->walk,
                                  why, sizeof(why));
    if (rep->chain == STORE_AUDIT_ERROR || k.failed) {
        snprintf(err, errlen, "%s", k.failed ? "out of memory" : why);
        goto end;
    }
    if (rep->chain == STORE_AUDIT_BROKEN) {
        snprintf(err, errlen, "%s", why);
        ret = AUDIT_TAMPERED;
        goto end;
    }
    if ((flags & AUDIT_VERIFY_NO_STATUS) != 0) {
        snprintf(err, errlen, "%s, %zu checkpoint%s matched (certificate "
                 "status not checked)", why, rep->walk.anchors_matched,
                 rep->walk.anchors_matched == 1 ? "" : "s");
        ret = AUDIT_OK;
        goto end;
    }
    if (k.nrev > 1)
        qsort(k.rev, k.nrev, sizeof(*k.rev), audit_rev_cmp);
    if ((rc = store_ca_list(tx, &cas, &ncas)) != STORE_OK) {
        snprintf(err, errlen, "cannot list the CAs: %s", store_tx_errmsg(tx));
        goto end;
    }
    for (i = 0; i < ncas; i++) {
        k.ca_id = cas[i]->id;
        if ((rc = store_cert_foreach_revoked(tx, k.ca_id, 0,
                                             audit_check_revoked, &k))
            != STORE_OK) {
            snprintf(err, errlen, "cannot read revoked certificates: %s",
                     store_tx_errmsg(tx));
            goto end;
        }
    }
    if (!audit_check_events(&k, tx)) {
        snprintf(err, errlen, "cannot read certificates: %s",
                 store_tx_errmsg(tx));
        goto end;
    }
    rep->revocation_events = (int64_t)k.nrev;
    rep->revoked_certs = k.revoked;
    rep->status_problems = k.problems;
    if (k.problems > 0) {
        snprintf(err, errlen, "%s; %zu certificate status problem%s", why,
                 k.problems, k.problems == 1 ? "" : "s");
        ret = AUDIT_TAMPERED;
        goto end;
    }
    snprintf(err, errlen, "%s, %zu checkpoint%s matched, %lld revoked "
             "certificates agree with %lld revocation events", why,
             rep->walk.anchors_matched,
             rep->walk.anchors_matched == 1 ? "" : "s",
             (long long)k.revoked, (long long)k.nrev);
    ret = AUDIT_OK;
 end:
    store_ca_list_free(cas, ncas);
    store_rollback(tx);
    free(k.rev);
    free(a);
    return ret;
}
