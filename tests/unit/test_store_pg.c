/*
 * Unit tests of the store's PostgreSQL backend (the semantic checks of
 * test_store.c) against the server named by $CMPCA_TEST_PG, each test in a
 * schema of its own; skipped (one TAP skip line) when the variable is unset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"
#include "store/store_int.h"
#include "conf/conf.h"
#include "../lib/testutil.h"

#include <pthread.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

struct fx {
    char conninfo[1200];
    char schema[64];
    STORE *st;
};

/* From $CMPCA_TEST_PG: the conninfo without its password, and the
 * password (if any) exported as $CMPCA_TEST_PGPASS for "env:" */
static char pg_base[1024];
static int pg_has_password;
static int pg_seq;

/* Appends keyword='value' (quoted for conninfo) to |buf|. */
static void ci_append(char *buf, size_t len, const char *k, const char *v)
{
    size_t off = strlen(buf);

    off += (size_t)snprintf(buf + off, len - off, "%s%s='", off ? " " : "",
                            k);
    for (; *v != '\0' && off + 3 < len; v++) {
        if (*v == '\'' || *v == '\\')
            buf[off++] = '\\';
        buf[off++] = *v;
    }
    if (off + 2 <= len) {
        buf[off++] = '\'';
        buf[off] = '\0';
    }
}

/* Parses $CMPCA_TEST_PG; returns 0 if it is not set. */
static int pg_env_init(void)
{
    const char *env = getenv("CMPCA_TEST_PG");
    PQconninfoOption *opts, *o;
    char *msg = NULL;

    if (env == NULL || *env == '\0')
        return 0;
    if ((opts = PQconninfoParse(env, &msg)) == NULL) {
        fprintf(stderr, "CMPCA_TEST_PG: %s\n", msg ? msg : "bad");
        exit(1);
    }
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || *o->val == '\0'
            || strcmp(o->keyword, "options") == 0)
            continue;
        if (strcmp(o->keyword, "password") == 0) {
            setenv("CMPCA_TEST_PGPASS", o->val, 1);
            pg_has_password = 1;
            continue;
        }
        ci_append(pg_base, sizeof(pg_base), o->keyword, o->val);
    }
    PQconninfoFree(opts);
    PQfreemem(msg);
    return 1;
}

/* Opens a store on |conninfo|; |busy_ms| > 0 sets how long a writer waits
 * for a lock (else the default). */
static STORE *open_store_busy(const char *conninfo, long busy_ms)
{
    struct store_conf sc;
    STORE *st = NULL;
    char err[256] = "";

    store_conf_init(&sc);
    sc.backend = "postgresql";
    sc.conninfo = conninfo;
    sc.password = pg_has_password ? "env:CMPCA_TEST_PGPASS" : NULL;
    if (busy_ms > 0)
        sc.busy_timeout_ms = busy_ms;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK)
        fail_msg("store_open: %s", err);
    return st;
}

static STORE *open_store(const char *conninfo)
{
    return open_store_busy(conninfo, 0);
}

/* Runs raw SQL in the test's schema, as an attacker or a test would. */
static void raw_sql(const char *conninfo, const char *sql)
{
    const char *keys[3] = { "dbname", "password", NULL };
    const char *vals[3] = { conninfo, getenv("CMPCA_TEST_PGPASS"), NULL };
    PGconn *db;
    PGresult *res;

    if (vals[1] == NULL)
        keys[1] = NULL;
    db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("raw connect failed: %s", PQerrorMessage(db));
    res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("raw sql failed: %s", PQerrorMessage(db));
    PQclear(res);
    PQfinish(db);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char sql[256], opt[128];

    snprintf(f->schema, sizeof(f->schema), "cmpca_t%ld_%d", (long)getpid(),
             ++pg_seq);
    snprintf(f->conninfo, sizeof(f->conninfo), "%s", pg_base);
    raw_sql(f->conninfo, "SET client_min_messages = warning");
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
             f->schema, f->schema);
    raw_sql(f->conninfo, sql);
    snprintf(opt, sizeof(opt), "-c search_path=%s", f->schema);
    ci_append(f->conninfo, sizeof(f->conninfo), "options", opt);
    ci_append(f->conninfo, sizeof(f->conninfo), "application_name",
              f->schema);
    f->st = open_store(f->conninfo);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char sql[512];

    store_close(f->st);
    /* A test that failed inside a transaction leaves its session (and its
     * locks) behind: end it, and bound the wait, so that the DROP fails
     * rather than hangs. */
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             "SET lock_timeout = '20s';"
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = '%s' AND pid <> pg_backend_pid();"
             "DROP SCHEMA IF EXISTS %s CASCADE", f->schema, f->schema);
    raw_sql(pg_base, sql);
    free(f);
    return 0;
}


#define STORE_TEST_WHERE(f) ((f)->conninfo)
#define STORE_TEST_FAULT(n) store_pg_fault(n)
/* BEGIN, 3 record statements, the audit head lock, the audit row, and
 * COMMIT (which also writes the audit head) */
#define STORE_TEST_TXN_STATEMENTS 7
#include "store_tests_common.h"

static void test_migrations_idempotent(void **state)
{
    struct fx *f = *state;
    STORE *st2;
    int i, latest = store_schema_version(f->st);

    assert_true(latest >= 1);
    for (i = 0; i < 3; i++) {
        st2 = open_store(f->conninfo);
        assert_int_equal(store_schema_version(st2), latest);
        store_close(st2);
    }
    /* a database from the future is refused */
    raw_sql(f->conninfo, "UPDATE schema_version SET version = 99");
    {
        struct store_conf sc;
        char err[256];

        store_conf_init(&sc);
        sc.backend = "postgresql";
        sc.conninfo = f->conninfo;
        sc.password = pg_has_password ? "env:CMPCA_TEST_PGPASS" : NULL;
        assert_int_not_equal(store_open(&sc, &st2, err, sizeof(err)),
                             STORE_OK);
        assert_non_null(strstr(err, "newer"));
    }
    raw_sql(f->conninfo, "UPDATE schema_version SET version = 1");
}

static void test_conf(void **state)
{
    struct conf *conf = NULL;
    struct store_conf sc;
    STORE *st = NULL;
    char err[256];

    store_conf_init(&sc);
    assert_int_equal(conf_load_string("/etc/cmpca/x.conf",
                                      "[store]\nbackend = postgresql\n"
                                      "conninfo = host=db dbname=cmpca\n"
                                      "password = env:PGPW\n"
                                      "busy_timeout = 2s\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 1);
    assert_string_equal(sc.backend, "postgresql");
    assert_string_equal(sc.conninfo, "host=db dbname=cmpca");
    assert_string_equal(sc.password, "env:PGPW");
    assert_int_equal(sc.busy_timeout_ms, 2000);
    store_conf_clear(&sc);
    conf_free(conf);

    /* conninfo is required; the password is a file: or env: spec */
    assert_int_equal(conf_load_string("x.conf", "[store]\nbackend = "
                                      "postgresql\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "conninfo"));
    conf_free(conf);
    assert_int_equal(conf_load_string("x.conf", "[store]\nbackend = "
                                      "postgresql\nconninfo = dbname=x\n"
                                      "password = hunter2\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "password"));
    conf_free(conf);
    /* sqlite keys are not postgresql keys */
    assert_int_equal(conf_load_string("x.conf", "[store]\nbackend = "
                                      "postgresql\nconninfo = dbname=x\n"
                                      "path = a.db\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "path"));
    conf_free(conf);

    /* a password inside the conninfo is refused at open */
    store_conf_init(&sc);
    sc.backend = "postgresql";
    sc.conninfo = "host=127.0.0.1 dbname=x password=secret";
    assert_int_not_equal(store_open(&sc, &st, err, sizeof(err)), STORE_OK);
    assert_null(st);
    assert_non_null(strstr(err, "password"));
    /* an unreachable server is an error, not a hang */
    sc.conninfo = "host=127.0.0.1 port=1 dbname=x connect_timeout=2";
    assert_int_not_equal(store_open(&sc, &st, err, sizeof(err)), STORE_OK);
    assert_null(st);
}


/* PostgreSQL specifics ------------------------------------------------ */

/* Several processes opening a fresh database at once: the migration runs
 * once (advisory lock), every open succeeds. */
static void test_concurrent_open(void **state)
{
    struct fx *f = *state;
    char ci[1400], opt[160], sql[256];
    pid_t pid[4];
    int p, status;
    STORE *st;

    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             "DROP SCHEMA IF EXISTS %s_c CASCADE; CREATE SCHEMA %s_c",
             f->schema, f->schema);
    raw_sql(pg_base, sql);
    snprintf(ci, sizeof(ci), "%s", pg_base);
    snprintf(opt, sizeof(opt), "-c search_path=%s_c", f->schema);
    ci_append(ci, sizeof(ci), "options", opt);
    for (p = 0; p < 4; p++) {
        pid[p] = fork();
        assert_true(pid[p] >= 0);
        if (pid[p] == 0) {
            struct store_conf sc;
            char err[256];
            STORE *cst = NULL;
            int rc;

            store_conf_init(&sc);
            sc.backend = "postgresql";
            sc.conninfo = ci;
            sc.password = pg_has_password ? "env:CMPCA_TEST_PGPASS" : NULL;
            rc = store_open(&sc, &cst, err, sizeof(err));
            store_close(cst);
            _exit(rc == STORE_OK ? 0 : 1);
        }
    }
    for (p = 0; p < 4; p++) {
        assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    st = open_store(ci);
    assert_int_equal(store_schema_version(st), store_schema_version(f->st));
    store_close(st);
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             "DROP SCHEMA %s_c CASCADE", f->schema);
    raw_sql(pg_base, sql);
}

/* A statement the server rejects aborts the transaction: the commit
 * reports it and nothing of the transaction is kept. */
static void test_failed_statement(void **state)
{
    struct fx *f = *state;
    struct store_device *d = NULL;
    STORE_TX *tx;
    int64_t v = add_vendor(f->st, "acme");

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "GOOD", NULL), STORE_OK);
    /* not UTF-8: the server refuses it */
    assert_int_equal(store_device_insert(tx, v, "\xff\xfe", NULL),
                     STORE_ERROR);
    assert_true(strlen(store_tx_errmsg(tx)) > 0);
    assert_int_equal(store_commit(tx), STORE_ERROR);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_get_by_ident(tx, v, "GOOD", &d),
                     STORE_NOTFOUND);
    store_rollback(tx);
    /* the pooled connection is usable again */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "GOOD", NULL), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* PostgreSQL has no cheap change token: callers (the OCSP cache) are told
 * so and read the rows they depend on. */
static void test_change_token_unsupported(void **state)
{
    struct fx *f = *state;
    uint64_t tok = 99;

    assert_int_equal(store_change_token(f->st, &tok), STORE_NOTFOUND);
    assert_true(tok == 0);
}

/* Pooled connections the server closed are reconnected at the next
 * begin. */
static void test_reconnect(void **state)
{
    struct fx *f = *state;
    struct store_vendor *v = NULL;
    STORE_TX *tx, *tx2;
    char sql[256];
    int64_t vid = add_vendor(f->st, "acme");

    /* two connections in the pool */
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_begin_read(f->st, &tx2), STORE_OK);
    store_rollback(tx2);
    store_rollback(tx);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(pid) FROM "
             "pg_stat_activity WHERE application_name = '%s'", f->schema);
    raw_sql(pg_base, sql);
    usleep(100000);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_begin(f->st, &tx2), STORE_OK);
    assert_int_equal(store_vendor_get(tx, vid, &v), STORE_OK);
    store_vendor_free(v);
    assert_int_equal(store_device_insert(tx2, vid, "AFTER", NULL), STORE_OK);
    assert_int_equal(store_commit(tx2), STORE_OK);
    store_rollback(tx);
}

/* A row lock held longer than busy_timeout gives STORE_BUSY. */
static void test_lock_timeout(void **state)
{
    struct fx *f = *state;
    STORE *st2 = NULL;
    STORE_TX *tx, *tx2;
    int64_t v = add_vendor(f->st, "acme"), dev = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "L", &dev), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    st2 = open_store_busy(f->conninfo, 300);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_set_state(tx, dev, STORE_DEV_REGISTERED,
                                            STORE_DEV_PENDING,
                                            STORE_KEEP_CERT), STORE_OK);
    assert_int_equal(store_begin(st2, &tx2), STORE_OK);
    assert_int_equal(store_device_set_state(tx2, dev, STORE_DEV_REGISTERED,
                                            STORE_DEV_PENDING,
                                            STORE_KEEP_CERT), STORE_BUSY);
    store_rollback(tx2);
    assert_int_equal(store_commit(tx), STORE_OK);
    /* once the first committed, the second finds the state changed */
    assert_int_equal(store_begin(st2, &tx2), STORE_OK);
    assert_int_equal(store_device_set_state(tx2, dev, STORE_DEV_REGISTERED,
                                            STORE_DEV_PENDING,
                                            STORE_KEEP_CERT), STORE_CONFLICT);
    assert_int_equal(store_commit(tx2), STORE_OK);
    store_close(st2);
}

/* Filters, ordering and paging of the listings built at run time. */
static void test_lists(void **state)
{
    struct fx *f = *state;
    static const char *const ids[] = { "b", "a", "C", "c" };
    struct store_device_filter df;
    struct store_cert_filter cf;
    struct store_device **devs = NULL;
    struct store_cert c, **certs = NULL;
    unsigned char der[4][32];
    STORE_TX *tx;
    size_t n = 0, i;
    int64_t v = add_vendor(f->st, "acme"), ca = add_ca(f->st, "ca");
    int64_t did = 0, cid[4], cnt = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    for (i = 0; i < 4; i++) {
        assert_int_equal(store_device_insert(tx, v, ids[i], &did), STORE_OK);
        fake_cert(&c, ca, (unsigned char)(0x40 + i), der[i], sizeof(der[i]));
        c.not_after = 1000 + (int64_t)i;
        c.device_id = i < 2 ? did : 0;
        assert_int_equal(store_cert_insert(tx, &c, &cid[i]), STORE_OK);
    }
    assert_int_equal(store_device_set_state(tx, did, STORE_DEV_REGISTERED,
                                            STORE_DEV_ENROLLED, cid[3]),
                     STORE_OK);
    assert_int_equal(store_cert_revoke(tx, cid[0], -1, 0), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    store_device_filter_init(&df);
    assert_int_equal(store_device_list(tx, &df, &devs, &n), STORE_OK);
    assert_int_equal(n, 4);     /* byte order: C a b c */
    assert_string_equal(devs[0]->identifier, "C");
    assert_string_equal(devs[1]->identifier, "a");
    assert_string_equal(devs[3]->identifier, "c");
    assert_int_equal(devs[3]->state, STORE_DEV_ENROLLED);
    assert_int_equal(devs[3]->cert_id, cid[3]);
    store_device_list_free(devs, n);
    df.limit = 2;
    df.offset = 1;
    assert_int_equal(store_device_list(tx, &df, &devs, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(devs[0]->identifier, "a");
    store_device_list_free(devs, n);
    store_device_filter_init(&df);
    df.state = STORE_DEV_ENROLLED;
    assert_int_equal(store_device_count(tx, &df, &cnt), STORE_OK);
    assert_int_equal(cnt, 1);
    df.vendor_id = v + 1;
    df.state = -1;
    assert_int_equal(store_device_count(tx, &df, &cnt), STORE_OK);
    assert_int_equal(cnt, 0);

    store_cert_filter_init(&cf);
    cf.status = STORE_CERT_VALID;
    assert_int_equal(store_cert_count(tx, &cf, &cnt), STORE_OK);
    assert_int_equal(cnt, 3);
    cf.status = -1;
    cf.expires_before = 1002;
    assert_int_equal(store_cert_list(tx, &cf, &certs, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(certs[0]->id, cid[1]);     /* newest first */
    assert_int_equal(certs[1]->status, STORE_CERT_REVOKED);
    assert_int_equal(certs[1]->reason, -1);
    assert_true(certs[1]->revoked_at > 0);
    assert_int_equal(certs[0]->der_len, 32);
    store_cert_list_free(certs, n);
    store_cert_filter_init(&cf);
    cf.limit = 1;
    cf.offset = 3;
    assert_int_equal(store_cert_list(tx, &cf, &certs, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(certs[0]->id, cid[0]);
    store_cert_list_free(certs, n);
    store_rollback(tx);
}

/* Audit appends and streams -------------------------------------------- */

struct aud_thr {
    STORE *st;
    int idx, ntx;
    int appended;                /* rows committed */
    pthread_barrier_t *go;
};

/* Transactions of 1..3 appends each; every 5th one rolls back (its rows
 * and its head move must vanish). The row lock is held a moment before
 * the commit so that the other thread's appends wait for it. */
static void *aud_thread(void *p)
{
    struct aud_thr *a = p;
    STORE_TX *tx;
    char obj[48];
    int i, k, n;

    pthread_barrier_wait(a->go);
    for (i = 0; i < a->ntx; i++) {
        n = 1 + i % 3;
        if (store_begin(a->st, &tx) != STORE_OK)
            return (void *)1;
        for (k = 0; k < n; k++) {
            snprintf(obj, sizeof(obj), "T%d-%d-%d", a->idx, i, k);
            if (store_audit_append(tx, "thread", "thing.do", obj,
                                   k % 2 ? "{\"k\":1}" : NULL) != STORE_OK) {
                store_rollback(tx);
                return (void *)1;
            }
        }
        if (i % 4 == 0)
            usleep(300);
        if (i % 5 == 4) {
            store_rollback(tx);
            continue;
        }
        if (store_commit(tx) != STORE_OK)
            return (void *)1;
        a->appended += n;
    }
    return NULL;
}

/* Two threads append at once in transactions of their own: they chain one
 * after the other on the head row, nothing is lost, the chain verifies. */
static void test_audit_two_threads(void **state)
{
    struct fx *f = *state;
    pthread_barrier_t go;
    struct aud_thr a[2];
    pthread_t th[2];
    STORE_TX *tx;
    int64_t nrows = 0, last = 0;
    void *r;
    int t;

    append_rows(f->st, 3);
    assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
    for (t = 0; t < 2; t++) {
        a[t] = (struct aud_thr){ f->st, t, 150, 0, &go };
        assert_int_equal(pthread_create(&th[t], NULL, aud_thread, &a[t]), 0);
    }
    for (t = 0; t < 2; t++) {
        assert_int_equal(pthread_join(th[t], &r), 0);
        assert_null(r);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
    store_rollback(tx);
    assert_int_equal(nrows, 3 + a[0].appended + a[1].appended);
    assert_int_equal(last, nrows);
    assert_int_equal(verify(f->st), 0);
}

/* Thousands of appends in one transaction: the transaction sees its own
 * rows, a rollback leaves the head where it was, a commit moves it. */
static void test_audit_long_tx(void **state)
{
    struct fx *f = *state;
    struct store_audit_row **rows = NULL;
    STORE_TX *tx;
    int64_t nrows = 0, last = 0;
    size_t n = 0;
    char obj[32];
    int i, round;

    append_rows(f->st, 2);
    for (round = 0; round < 2; round++) {
        assert_int_equal(store_begin(f->st, &tx), STORE_OK);
        for (i = 0; i < 3000; i++) {
            snprintf(obj, sizeof(obj), "r%d-%d", round, i);
            assert_int_equal(store_audit_append(tx, "cli:test", "bulk.do",
                                                obj, NULL), STORE_OK);
        }
        assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
        assert_int_equal(nrows, 3002);
        assert_int_equal(last, 3002);
        assert_int_equal(store_audit_list(tx, 1, &rows, &n), STORE_OK);
        assert_int_equal(n, 1);
        assert_int_equal(rows[0]->seq, 3002);
        store_audit_row_list_free(rows, n);
        if (round == 0) {
            store_rollback(tx);
            assert_int_equal(verify(f->st), 0);
        } else {
            assert_int_equal(store_commit(tx), STORE_OK);
        }
    }
    /* a chain of several FETCH chunks verifies; the next append follows */
    append_rows(f->st, 1);
    assert_int_equal(verify(f->st), 0);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
    store_rollback(tx);
    assert_int_equal(last, 3003);
    /* a bad row early in a long chain: found without reading the rest */
    raw_sql(f->conninfo, "UPDATE audit SET object = 'x' WHERE seq = 2");
    assert_int_equal(verify(f->st), 2);
}

/* A transaction that appended and then had a statement fail: the commit
 * reports it, neither the rows nor the head move, later appends chain on. */
static void test_audit_failed_tx(void **state)
{
    struct fx *f = *state;
    STORE_TX *tx;
    int64_t v = add_vendor(f->st, "acme"), nrows = 0, last = 0;

    append_rows(f->st, 2);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "a", "1", NULL),
                     STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "b", "2", NULL),
                     STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "\xff\xfe", NULL),
                     STORE_ERROR);
    assert_int_equal(store_commit(tx), STORE_ERROR);
    assert_int_equal(verify(f->st), 0);
    append_rows(f->st, 1);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
    store_rollback(tx);
    assert_int_equal(nrows, 3);
    assert_int_equal(last, 3);
    assert_int_equal(verify(f->st), 0);
}

struct stop_walk {
    long seen, stop_at;          /* stop_at 0: read everything */
    uint64_t prev;
    int order_ok;
};

/* Counts revoked entries (8-octet serials 1, 2, 3, ... in order) and
 * stops after |stop_at|. */
static int stop_walk_cb(void *arg, const struct store_revoked *r)
{
    struct stop_walk *w = arg;
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < r->serial_len; i++)
        v = (v << 8) | r->serial[i];
    if (r->serial_len != 8 || v != w->prev + 1)
        w->order_ok = 0;
    w->prev = v;
    w->seen++;
    return w->stop_at == 0 || w->seen < w->stop_at;
}

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Streams |ca|'s revoked list on |tx|; returns the seconds it took. */
static double stream_revoked(STORE_TX *tx, int64_t ca, long stop_at,
                             enum store_rc expect, long expect_seen)
{
    struct stop_walk w = { 0, stop_at, 0, 1 };
    double t0 = mono_now();

    assert_int_equal(store_cert_foreach_revoked(tx, ca, 0, stop_walk_cb, &w),
                     expect);
    t0 = mono_now() - t0;
    assert_int_equal(w.seen, expect_seen);
    assert_true(w.order_ok);
    return t0;
}


/* |n| revoked certificates of CA |ca|, inserted by one SQL statement. */
static void seed_revoked(struct fx *f, int64_t ca, int n)
{
    char sql[512];

    snprintf(sql, sizeof(sql), "INSERT INTO cert(ca_id,serial,subject,"
             "not_before,not_after,der,sha256,status,revoked_at,reason,"
             "created) SELECT %lld, int8send(g), 'CN=x', 0, 4000000000, "
             "int8send(g), sha256(int8send(g)), 1, 1000, 1, 1 FROM "
             "generate_series(1, %d) g", (long long)ca, n);
    raw_sql(f->conninfo, sql);
}
/* A callback that stops early ends the query at once: the call returns
 * long before a full read would, and the transaction goes on. */
static void test_stream_stop(void **state)
{
    struct fx *f = *state;
    struct store_cert_filter cf;
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca"), v = add_vendor(f->st, "acme");
    int64_t n = 0;
    double full, stop = 1e9, t;
    int i;

    seed_revoked(f, ca, 50000);

    /* timed in a read transaction, judged once it is closed (a failed
     * assertion inside would leave the teardown waiting for its locks) */
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    full = stream_revoked(tx, ca, 0, STORE_OK, 50000);
    for (i = 0; i < 3; i++) {
        t = stream_revoked(tx, ca, 10, STORE_ERROR, 10);
        if (t < stop)
            stop = t;
    }
    store_rollback(tx);
    print_message("# full stream of 50000 rows %.1f ms, stopped after 10 "
                  "%.2f ms\n", full * 1e3, stop * 1e3);
    assert_true(stop * 4 < full);
    /* a write transaction stays usable after a stop: a read, a write,
     * another stream, the commit */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    stream_revoked(tx, ca, 10, STORE_ERROR, 10);
    store_cert_filter_init(&cf);
    assert_int_equal(store_cert_count(tx, &cf, &n), STORE_OK);
    assert_int_equal(n, 50000);
    assert_int_equal(store_device_insert(tx, v, "AFTER-STOP", NULL),
                     STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "device.add",
                                        "AFTER-STOP", NULL), STORE_OK);
    stream_revoked(tx, ca, 1, STORE_ERROR, 1);
    stream_revoked(tx, ca, 0, STORE_OK, 50000);
    assert_int_equal(store_commit(tx), STORE_OK);
    /* the same in a read transaction, then the pooled connection again */
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    stream_revoked(tx, ca, 10, STORE_ERROR, 10);
    {
        struct store_device *d = NULL;

        assert_int_equal(store_device_get_by_ident(tx, v, "AFTER-STOP", &d),
                         STORE_OK);
        store_device_free(d);
    }
    store_rollback(tx);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    stream_revoked(tx, ca, 0, STORE_OK, 50000);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(verify(f->st), 0);
}

/* A stream that fails leaves no query running: an injected fault fails
 * the call before anything is sent (the transaction goes on); a server
 * error (lock_timeout while another session locks the table) fails the
 * transaction cleanly and the pooled connection serves the next one. */
static void test_stream_fault(void **state)
{
    struct fx *f = *state;
    struct stop_walk w = { 0, 0, 0, 1 };
    const char *keys[3] = { "dbname", "password", NULL };
    const char *vals[3] = { f->conninfo, getenv("CMPCA_TEST_PGPASS"), NULL };
    STORE *st2 = NULL;
    STORE_TX *tx;
    PGconn *db;
    PGresult *res;
    int64_t ca = add_ca(f->st, "ca");
    enum store_rc rc_stream, rc_commit;

    seed_revoked(f, ca, 2500);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    store_pg_fault(1);
    assert_int_equal(store_cert_foreach_revoked(tx, ca, 0, stop_walk_cb, &w),
                     STORE_ERROR);
    store_pg_fault(0);
    assert_int_equal(w.seen, 0);
    stream_revoked(tx, ca, 0, STORE_OK, 2500);
    store_rollback(tx);

    st2 = open_store_busy(f->conninfo, 300);
    if (vals[1] == NULL)
        keys[1] = NULL;
    db = PQconnectdbParams(keys, vals, 1);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    res = PQexec(db, "BEGIN; LOCK TABLE cert IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    /* no assertion while the lock is held (the teardown would wait) */
    w.seen = 0;
    rc_stream = store_begin(st2, &tx);
    if (rc_stream == STORE_OK) {
        rc_stream = store_cert_foreach_revoked(tx, ca, 0, stop_walk_cb, &w);
        rc_commit = store_commit(tx);
    } else {
        rc_commit = STORE_OK;
    }
    PQfinish(db);
    assert_int_equal(rc_stream, STORE_BUSY);
    assert_int_equal(rc_commit, STORE_ERROR);
    assert_int_equal(w.seen, 0);
    assert_int_equal(store_begin(st2, &tx), STORE_OK);
    stream_revoked(tx, ca, 0, STORE_OK, 2500);
    assert_int_equal(store_commit(tx), STORE_OK);
    store_close(st2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup,
                                        teardown),
        cmocka_unit_test(test_conf),
        STORE_COMMON_TESTS,
        cmocka_unit_test_setup_teardown(test_concurrent_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_statement, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_two_threads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_long_tx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_failed_tx, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stream_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_token_unsupported, setup,
                                        teardown),
    };

    if (!pg_env_init()) {
        printf("1..1\nok 1 # SKIP CMPCA_TEST_PG not set (scripts/"
               "pg-test-server.sh start DIR; . DIR/env)\n");
        return 0;
    }
    return cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
}
