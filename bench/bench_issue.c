/*
 * Issuance benchmark: certificates per second from ca_issue() (X509) and
 * ca_issue_der() (DER) alone and with a durable SQLite store: one commit per
 * certificate; 64 per commit signed inside the write transaction; and 64
 * per commit signed outside it, as the CMP server does, so that the group
 * commit overlaps one thread's fsync with the others' signing. P-256 and
 * RSA-2048 CA keys, 1, 2 and 4 threads, next to the raw signing rate of the
 * same key with the same number of threads, measured in-process (a
 * DigestSign over TBS-sized data, as issuance does) and by `openssl speed`
 * (a bare sign of a ready digest). Prints a Markdown table.
 */
#include "ca/ca.h"
#include "util/pkey_md.h"
#include "ca/ca_key.h"
#include "conf/conf.h"
#include "store/store.h"
#include "util/log.h"
#include "../tests/lib/testutil.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double bench_secs = 1.5;
/* Ascending part of the M_ROWS_SEQ serials. */
static uint64_t bench_seq;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum mode { M_RAW, M_ISSUE, M_DER, M_STORE1, M_STOREB, M_PIPE, M_ROWS_RAND,
            M_ROWS_SEQ };

#define BENCH_BATCH 64

struct job {
    enum mode mode;
    EVP_PKEY *cakey;
    CA *ca;
    CA_PROFILE *prof;
    EVP_PKEY *devkey;
    X509_PUBKEY *spki;
    STORE *st;
    double deadline;
    long count;
    int failed;
};

static const char *bench_vars(void *arg, const char *name)
{
    return strcmp(name, "device.id") == 0 ? "device-000042" : NULL;
}

/* Ends the write transaction |tx| of |n| certificates: rolled back if
 * something failed, else committed and counted. */
static void bench_end(struct job *j, STORE_TX *tx, long n)
{
    if (j->failed)
        store_rollback(tx);
    else if (store_commit(tx) != STORE_OK)
        j->failed = 1;
    else
        j->count += n;
}

/* Gives |r| a fresh 20-octet positive serial: random as issued, or with
 * |ascending| a fixed first octet and a counter, so that keys arrive in
 * order (what the (ca_id, serial) index would cost then). */
static int bench_serial(struct store_cert *r, int ascending)
{
    uint64_t n;
    int b;

    if (RAND_bytes(r->serial, 20) != 1)
        return 0;
    r->serial[0] = (unsigned char)((r->serial[0] & 0x7f) | 0x01);
    r->serial_len = 20;
    if (ascending) {
        n = __atomic_add_fetch(&bench_seq, 1, __ATOMIC_RELAXED);
        r->serial[0] = 0x01;
        for (b = 0; b < 8; b++)
            r->serial[1 + b] = (unsigned char)(n >> (56 - 8 * b));
    }
    return 1;
}

static void *bench_thread(void *arg)
{
    struct job *j = arg;
    unsigned char tbs[300], sig[1024];
    struct ca_issue_req req;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *md = pkey_default_md(j->cakey);
    char err[256];
    size_t siglen;
    int batch = j->mode == M_STORE1 ? 1 : BENCH_BATCH, i;
    struct store_cert recs[BENCH_BATCH], row;

    memset(tbs, 0x5a, sizeof(tbs));
    memset(&req, 0, sizeof(req));
    memset(&row, 0, sizeof(row));
    req.pubkey = j->devkey;
    req.spki = j->spki;
    req.vars = bench_vars;
    if ((j->mode == M_ROWS_RAND || j->mode == M_ROWS_SEQ)
        && ca_issue_der(j->ca, j->prof, &req, 0, &row, err, sizeof(err))
           != CA_ISSUE_OK)
        j->failed = 1;
    while (now_s() < j->deadline) {
        STORE_TX *tx = NULL;

        switch (j->mode) {
        case M_RAW:
            siglen = sizeof(sig);
            if (!EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, j->cakey, NULL)
                || !EVP_DigestSign(ctx, sig, &siglen, tbs, sizeof(tbs)))
                j->failed = 1;
            j->count++;
            break;
        case M_ISSUE: {
            X509 *x = NULL;

            if (ca_issue(j->ca, j->prof, &req, &x, err, sizeof(err))
                != CA_ISSUE_OK)
                j->failed = 1;
            X509_free(x);
            j->count++;
            break;
        }
        case M_DER: {
            struct store_cert rec;

            if (ca_issue_der(j->ca, j->prof, &req, 0, &rec, err, sizeof(err))
                != CA_ISSUE_OK)
                j->failed = 1;
            ca_store_cert_clear(&rec);
            j->count++;
            break;
        }
        case M_PIPE:
            /* as the CMP server does it: sign outside the transaction,
             * then insert; the store's group commit lets one thread's
             * fsync overlap the others' signing */
            for (i = 0; i < batch; i++)
                if (ca_issue_der(j->ca, j->prof, &req, 0, &recs[i], err,
                                 sizeof(err)) != CA_ISSUE_OK) {
                    j->failed = 1;
                    batch = i;
                }
            if (!j->failed && store_begin(j->st, &tx) == STORE_OK) {
                for (i = 0; i < batch; i++)
                    if (store_cert_insert(tx, &recs[i], NULL) != STORE_OK)
                        j->failed = 1;
                bench_end(j, tx, batch);
            } else {
                j->failed = 1;
            }
            for (i = 0; i < batch; i++)
                ca_store_cert_clear(&recs[i]);
            break;
        case M_ROWS_RAND:
        case M_ROWS_SEQ:
            /* the store alone: one certificate's row inserted 64 times per
             * commit under fresh serials */
            if (!j->failed && store_begin(j->st, &tx) == STORE_OK) {
                for (i = 0; i < BENCH_BATCH && !j->failed; i++)
                    if (!bench_serial(&row, j->mode == M_ROWS_SEQ)
                        || store_cert_insert(tx, &row, NULL) != STORE_OK)
                        j->failed = 1;
                bench_end(j, tx, BENCH_BATCH);
            } else {
                j->failed = 1;
            }
            break;
        default:
            /* signed inside the write transaction */
            if (store_begin(j->st, &tx) != STORE_OK) {
                j->failed = 1;
                break;
            }
            for (i = 0; i < batch; i++)
                if (ca_issue_store_der(j->ca, j->prof, &req, tx, 0, NULL, NULL,
                                       err, sizeof(err)) != CA_ISSUE_OK)
                    j->failed = 1;
            bench_end(j, tx, batch);
            break;
        }
        if (j->failed)
            break;
    }
    ca_store_cert_clear(&row);
    EVP_MD_CTX_free(ctx);
    return NULL;
}

/* Sign operations per second of `openssl speed` for |alg| (ecdsap256,
 * rsa2048) in |nproc| processes, from its machine-readable summary line
 * (+F2 for RSA, +F4 for ECDSA: index, bits, sign/s, verify/s); 0 if the
 * command is not available. */
static double speed_sign(const char *alg, int nproc)
{
    char cmd[128], line[256];
    double sign = 0, v, verify;
    int f, idx, bits;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "openssl speed -seconds 1 -mr -multi %d %s "
             "2>/dev/null", nproc, alg);
    if ((p = popen(cmd, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), p) != NULL)
        if (sscanf(line, "+F%d:%d:%d:%lf:%lf", &f, &idx, &bits, &v,
                   &verify) == 5 && (f == 2 || f == 4))
            sign = v;   /* with -multi the sum comes last */
    if (pclose(p) != 0)
        return 0;
    return sign;
}

/* Runs |mode| on |nthreads| threads; returns operations per second. */
static X509_PUBKEY *bench_spki;

static double bench_run(enum mode mode, int nthreads, EVP_PKEY *cakey, CA *ca,
                        CA_PROFILE *prof, EVP_PKEY *devkey, STORE *st)
{
    struct job j[8];
    pthread_t th[8];
    double t0 = now_s(), t1;
    long total = 0;
    int i;

    for (i = 0; i < nthreads; i++) {
        memset(&j[i], 0, sizeof(j[i]));
        j[i].mode = mode;
        j[i].cakey = cakey;
        j[i].ca = ca;
        j[i].prof = prof;
        j[i].devkey = devkey;
        j[i].spki = bench_spki;
        j[i].st = st;
        j[i].deadline = t0 + bench_secs;
        pthread_create(&th[i], NULL, bench_thread, &j[i]);
    }
    for (i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        if (j[i].failed) {
            fprintf(stderr, "bench_issue: mode %d failed\n", mode);
            exit(1);
        }
        total += j[i].count;
    }
    t1 = now_s();
    return (double)total / (t1 - t0);
}

int main(int argc, char **argv)
{
    static const char *const types[] = { "ec:P-256", "rsa:2048" };
    static const char *const speed_alg[] = { "ecdsap256", "rsa2048" };
    char *dir = testutil_mkdtemp("bench_issue");
    struct conf *conf = NULL;
    CA_PROFILE *prof = NULL;
    EVP_PKEY *devkey = NULL;
    char err[512], path[600], keypath[600];
    size_t t;
    int threads;
    double rows_rand = 0, rows_seq = 0;
    int64_t rows_held = 0;

    if (argc > 1)
        bench_secs = atof(argv[1]);
    log_set_level(LOG_WARN);
    if (dir == NULL
        || !conf_load_string("bench", "[profile device]\nvalidity = 365d\n"
                             "subject = CN=${device.id},O=Operator\n"
                             "key_usage = digitalSignature\n"
                             "ext_key_usage = clientAuth\n"
                             "crl_url = http://crl.example/ca.crl\n",
                             &conf, err, sizeof(err))
        || !ca_profile_load(conf, "device", &prof, err, sizeof(err))
        || !ca_key_generate("ec:P-256", &devkey, err, sizeof(err))
        || !X509_PUBKEY_set(&bench_spki, devkey)) {
        fprintf(stderr, "bench_issue: setup: %s\n", err);
        return 1;
    }
    printf("Issuance benchmark (%.1f s per cell; store: SQLite WAL, "
           "synchronous=FULL)\n\n", bench_secs);
    printf("| CA key | threads | openssl speed sign/s | raw sign/s "
           "| ca_issue/s (X509) | ca_issue_der/s | vs raw "
           "| durable, commit each /s "
           "| durable, signed in the tx, 64 per commit /s "
           "| durable, signed outside, 64 per commit /s | vs raw "
           "| vs openssl speed |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        EVP_PKEY *k = NULL;
        CA_SIGNER *s;
        X509_NAME *n = NULL;
        X509 *c;
        CA *ca;
        STORE *st = NULL;
        STORE_TX *tx = NULL;
        struct store_conf sc;
        int64_t id;

        if (!ca_key_generate(types[t], &k, err, sizeof(err))
            || (s = ca_signer_new_pkey(k, NULL)) == NULL
            || !ca_name_parse("/O=Bench/CN=Bench CA", &n, err, sizeof(err))
            || (c = ca_make_ca_cert(n, k, 3650, NULL, s, -1, err,
                                    sizeof(err))) == NULL) {
            fprintf(stderr, "bench_issue: CA: %s\n", err);
            return 1;
        }
        snprintf(path, sizeof(path), "%s/bench%zu.db", dir, t);
        snprintf(keypath, sizeof(keypath), "%s/bench%zu.key", dir, t);
        store_conf_init(&sc);
        sc.path = path;
        sc.synchronous_full = 1;
        if (!ca_key_write(keypath, k, NULL, err, sizeof(err))
            || store_open(&sc, &st, err, sizeof(err)) != STORE_OK
            || store_begin(st, &tx) != STORE_OK
            || ca_record_insert(tx, "bench", c, NULL, keypath, "bench", &id)
               != STORE_OK
            || store_commit(tx) != STORE_OK
            || !ca_load(NULL, st, "bench", &ca, err, sizeof(err))) {
            fprintf(stderr, "bench_issue: store/CA: %s\n", err);
            return 1;
        }
        for (threads = 1; threads <= 4; threads *= 2) {
            double spd = speed_sign(speed_alg[t], threads);
            double raw = bench_run(M_RAW, threads, k, ca, prof, devkey, st);
            double iss = bench_run(M_ISSUE, threads, k, ca, prof, devkey, st);
            double der = bench_run(M_DER, threads, k, ca, prof, devkey, st);
            double s1 = bench_run(M_STORE1, threads, k, ca, prof, devkey, st);
            double sb = bench_run(M_STOREB, threads, k, ca, prof, devkey, st);
            double sp = bench_run(M_PIPE, threads, k, ca, prof, devkey, st);

            printf("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f%% | %.0f "
                   "| %.0f | %.0f | %.0f%% | %.0f%% |\n", types[t], threads,
                   spd, raw, iss, der, 100.0 * der / raw, s1, sb, sp,
                   100.0 * sp / raw, spd > 0 ? 100.0 * sp / spd : 0.0);
            fflush(stdout);
        }
        if (t == 0) {
            struct store_cert_filter f;

            memset(&f, 0, sizeof(f));
            f.status = -1;
            rows_rand = bench_run(M_ROWS_RAND, 1, k, ca, prof, devkey, st);
            rows_seq = bench_run(M_ROWS_SEQ, 1, k, ca, prof, devkey, st);
            if (store_begin_read(st, &tx) != STORE_OK
                || store_cert_count(tx, &f, &rows_held) != STORE_OK)
                rows_held = -1;
            store_rollback(tx);
        }
        ca_free(ca);
        store_close(st);
        X509_free(c);
        X509_NAME_free(n);
        ca_signer_free(s);
        EVP_PKEY_free(k);
    }
    printf("\nThe store alone (one thread, one certificate's row inserted 64 "
           "times per commit, durable; the P-256 store then held %lld "
           "certificates): random 20-octet serials %.0f rows/s (%.1f us "
           "each), ascending serials %.0f rows/s (%.1f us each). The "
           "difference is the (ca_id, serial) index: random keys dirty about "
           "one index page per row.\n", (long long)rows_held, rows_rand,
           rows_rand > 0 ? 1e6 / rows_rand : 0.0, rows_seq,
           rows_seq > 0 ? 1e6 / rows_seq : 0.0);
    ca_profile_free(prof);
    conf_free(conf);
    EVP_PKEY_free(devkey);
    X509_PUBKEY_free(bench_spki);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    if (system(path) != 0)
        return 1;
    free(dir);
    return 0;
}
