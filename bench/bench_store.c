/*
 * Store benchmark of the CMP server's write pattern: per enrollment one
 * transaction for the ir (device -> pending, certificate, CMP transaction,
 * audit row) and one for the certConf (transaction -> confirmed, device ->
 * enrolled, audit row), from several threads, with durable commits.
 * Usage: bench_store [-n ENROLLMENTS] [-t THREADS] [-s normal] [-d DIR]
 */
#include "store/store.h"
#include "../tests/lib/testutil.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bench {
    STORE *st;
    int64_t vendor, ca;
    long per_thread;
    int idx;
    long busy, errors;
};

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One enrollment of device |dev|; returns 1 on success. */
static int bench_enroll(struct bench *b, int64_t dev)
{
    struct store_cert c;
    struct store_cmp_txn t;
    unsigned char der[600];
    STORE_TX *tx = NULL;
    int64_t cert_id = 0;
    char obj[64];
    enum store_rc rc;

    memset(&c, 0, sizeof(c));
    memset(&t, 0, sizeof(t));
    RAND_bytes(der, sizeof(der));
    der[0] = 0x30;
    c.ca_id = b->ca;
    RAND_bytes(c.serial, 20);
    c.serial[0] &= 0x7f;
    c.serial_len = 20;
    c.subject = "CN=device,O=Bench";
    c.not_before = time(NULL);
    c.not_after = c.not_before + 365 * 86400;
    c.der = der;
    c.der_len = sizeof(der);
    c.reason = -1;
    c.device_id = dev;
    c.profile = "device";
    RAND_bytes(t.tid, 16);
    t.tid_len = 16;
    t.type = STORE_CMP_IR;
    t.state = STORE_CMP_WAITING_CONFIRM;
    t.deadline = time(NULL) + 60;
    RAND_bytes(t.sender_nonce, 16);
    t.sender_nonce_len = 16;
    t.has_requester = 1;
    t.device_id = dev;
    snprintf(obj, sizeof(obj), "device:%lld", (long long)dev);

    /* ir */
    while ((rc = store_begin(b->st, &tx)) == STORE_BUSY)
        b->busy++;
    if (rc != STORE_OK)
        return 0;
    if (store_device_set_state(tx, dev, STORE_DEV_REGISTERED,
                               STORE_DEV_PENDING, STORE_KEEP_CERT) != STORE_OK
        || store_cert_insert(tx, &c, &cert_id) != STORE_OK)
        goto err;
    t.cert_id = cert_id;
    if (store_cmp_txn_insert(tx, &t) != STORE_OK
        || store_audit_append(tx, "cmp:bench", "cert.issue", obj, NULL)
        != STORE_OK)
        goto err;
    if (store_commit(tx) != STORE_OK)
        return 0;
    /* certConf */
    while ((rc = store_begin(b->st, &tx)) == STORE_BUSY)
        b->busy++;
    if (rc != STORE_OK)
        return 0;
    if (store_cmp_txn_set_state(tx, t.tid, t.tid_len,
                                STORE_CMP_WAITING_CONFIRM,
                                STORE_CMP_CONFIRMED) != STORE_OK
        || store_device_set_state(tx, dev, STORE_DEV_PENDING,
                                  STORE_DEV_ENROLLED, cert_id) != STORE_OK
        || store_audit_append(tx, "cmp:bench", "cert.confirm", obj, NULL)
        != STORE_OK)
        goto err;
    return store_commit(tx) == STORE_OK;
 err:
    store_rollback(tx);
    return 0;
}

static void *bench_thread(void *arg)
{
    struct bench *b = arg;
    long i;

    for (i = 0; i < b->per_thread; i++)
        if (!bench_enroll(b, 1 + b->idx * b->per_thread + i))
            b->errors++;
    return NULL;
}

struct ids {
    long i, n;
    char buf[32];
};

static int ids_next(void *arg, const char **ident, size_t *len)
{
    struct ids *it = arg;

    if (it->i == it->n)
        return 0;
    *len = (size_t)snprintf(it->buf, sizeof(it->buf), "D%09ld", it->i++);
    *ident = it->buf;
    return 1;
}

int main(int argc, char **argv)
{
    struct store_conf sc;
    struct store_vendor v;
    struct store_ca ca;
    struct store_der vc;
    struct bench b[64];
    pthread_t th[64];
    struct ids it;
    unsigned char vder[] = { 0x30, 0x00 };
    const char *dir = NULL;
    char path[512], err[256];
    STORE *st = NULL;
    STORE_TX *tx;
    long n = 20000, errors = 0, busy = 0;
    int64_t bad = 0;
    int threads = 4, sync_full = 1, c, i;
    double t0, t1;
    char *tmp = NULL;

    while ((c = getopt(argc, argv, "n:t:s:d:")) != -1) {
        switch (c) {
        case 'n': n = atol(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 's': sync_full = strcmp(optarg, "normal") != 0; break;
        case 'd': dir = optarg; break;
        default:
            fprintf(stderr, "usage: bench_store [-n N] [-t THREADS] "
                    "[-s full|normal] [-d DIR]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || n < threads)
        return 2;
    if (dir == NULL)
        dir = tmp = testutil_mkdtemp("bench_store");
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    store_conf_init(&sc);
    sc.path = path;
    sc.synchronous_full = sync_full;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    memset(&v, 0, sizeof(v));
    memset(&ca, 0, sizeof(ca));
    vc.der = vder;
    vc.len = sizeof(vder);
    v.name = "bench";
    v.certs = &vc;
    v.ncerts = 1;
    ca.name = "bench-ca";
    ca.cert_der = vder;
    ca.cert_len = sizeof(vder);
    ca.key_ref = "none";
    memset(b, 0, sizeof(b));
    if (store_begin(st, &tx) != STORE_OK
        || store_vendor_insert(tx, &v, &b[0].vendor) != STORE_OK
        || store_ca_insert(tx, &ca, &b[0].ca) != STORE_OK)
        return 1;
    it.i = 0;
    it.n = n;
    if (store_device_import(tx, b[0].vendor, ids_next, &it, NULL) != STORE_OK
        || store_commit(tx) != STORE_OK)
        return 1;
    t0 = bench_now();
    for (i = 0; i < threads; i++) {
        b[i].st = st;
        b[i].vendor = b[0].vendor;
        b[i].ca = b[0].ca;
        b[i].idx = i;
        b[i].per_thread = n / threads;
        pthread_create(&th[i], NULL, bench_thread, &b[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        errors += b[i].errors;
        busy += b[i].busy;
    }
    t1 = bench_now();
    n = (n / threads) * threads;
    printf("store bench: %ld enrollments (%ld write transactions), %d "
           "threads, synchronous=%s\n", n, 2 * n, threads,
           sync_full ? "FULL" : "NORMAL");
    printf("  %.2f s, %.0f enrollments/s, %.0f commits/s, %.1f us/commit, "
           "errors %ld, busy %ld\n", t1 - t0, n / (t1 - t0),
           2 * n / (t1 - t0), (t1 - t0) * 1e6 / (2 * n), errors, busy);
    if (!store_audit_verify(st, &bad, err, sizeof(err)))
        printf("  audit verify FAILED: %s\n", err);
    else
        printf("  audit verify: %s\n", err);
    store_close(st);
    if (tmp != NULL) {
        char p[600];

        snprintf(p, sizeof(p), "rm -rf '%s'", tmp);
        if (system(p) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
        free(tmp);
    }
    return errors == 0 ? 0 : 1;
}
