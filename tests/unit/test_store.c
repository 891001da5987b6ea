/*
 * Unit tests of the store on a real SQLite file in a temp dir: migrations,
 * unique constraints, conditional updates, rollback, the audit hash chain
 * (tampered with through raw sqlite3), several handles and threads.
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
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fx {
    char *dir;
    char path[512];
    STORE *st;
};

static STORE *open_store(const char *path)
{
    struct store_conf sc;
    STORE *st = NULL;
    char err[256];

    store_conf_init(&sc);
    sc.path = path;
    assert_int_equal(store_open(&sc, &st, err, sizeof(err)), STORE_OK);
    return st;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    f->dir = testutil_mkdtemp("test_store");
    snprintf(f->path, sizeof(f->path), "%s/cmpca.db", f->dir);
    f->st = open_store(f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[600];

    store_close(f->st);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    unlink(f->path);
    rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Runs raw SQL on the database file, as an attacker or a test would. */
static void raw_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("raw sql failed: %s", msg);
    sqlite3_close(db);
}


#define STORE_TEST_WHERE(f) ((f)->path)
#define STORE_TEST_FAULT(n) store_sqlite_fault(n)
#define STORE_TEST_TXN_STATEMENTS 7
#include "store_tests_common.h"

/* |commits| write transactions of |rows| audit rows of 3.8 kB each (about
 * a WAL page a row); with |wal| (may be NULL) the WAL file's largest size
 * seen after a commit. */
static void bulk_commits(STORE *st, int commits, int rows, const char *wal,
                         off_t *wal_max)
{
    static char details[3801];
    struct stat wst;
    STORE_TX *tx;
    int i, j;

    memset(details, 'x', 3800);
    for (i = 0; i < commits; i++) {
        assert_int_equal(store_begin(st, &tx), STORE_OK);
        for (j = 0; j < rows; j++)
            assert_int_equal(store_audit_append(tx, "test", "bulk", NULL,
                                                details), STORE_OK);
        assert_int_equal(store_commit(tx), STORE_OK);
        if (wal != NULL && stat(wal, &wst) == 0 && wst.st_size > *wal_max)
            *wal_max = wst.st_size;
    }
}

/* Commits only append to the WAL; the background checkpointer copies it
 * into the database while writers go on, so the WAL stays bounded and the
 * database file grows during the run (not only at close). */
static void test_wal_checkpointed(void **state)
{
    struct fx *f = *state;
    char walpath[600];
    struct stat dst;
    off_t wal_max = 0;

    snprintf(walpath, sizeof(walpath), "%s-wal", f->path);
    bulk_commits(f->st, 100, 100, walpath, &wal_max);
    assert_int_equal(stat(f->path, &dst), 0);
    /* 38 MB written: the database holds most of it already, the WAL never
     * held more than a few checkpoint intervals */
    assert_true(dst.st_size > 20 * 1024 * 1024);
    assert_true(wal_max < 20 * 1024 * 1024);
}

/* The checkpointer makes one pass per SQ_CKPT_FRAMES (1000) new WAL
 * frames, not one per commit once the WAL is long: each pass costs two
 * fsyncs that the commits' own fsyncs queue behind. */
static void test_checkpoint_passes_bounded(void **state)
{
    struct fx *f = *state;
    unsigned long passes;

    bulk_commits(f->st, 400, 10, NULL, NULL);   /* ~5,000 WAL frames */
    passes = store_sqlite_checkpoints(f->st);
    print_message("checkpoint passes: %lu for 400 commits\n", passes);
    assert_true(passes >= 2);
    assert_true(passes <= 24);
}

/* A long reader pins the WAL (its snapshot needs the frames): checkpoint
 * passes cannot copy them, so commits must not each wait for one (the
 * back-pressure only helps a WAL that can be reset), and the checkpointer
 * keeps its cadence. Once the reader is gone the WAL is copied again. */
static void test_checkpoint_pinned_reader(void **state)
{
    struct fx *f = *state;
    STORE_TX *rtx;
    int64_t n = 0, seq = 0;
    unsigned long passes;

    /* the reader's snapshot is taken by its first read */
    assert_int_equal(store_begin_read(f->st, &rtx), STORE_OK);
    assert_int_equal(store_audit_count(rtx, &n, &seq), STORE_OK);
    bulk_commits(f->st, 400, 10, NULL, NULL);   /* ~5,000 WAL frames */
    passes = store_sqlite_checkpoints(f->st);
    print_message("checkpoint passes with a pinned WAL: %lu\n", passes);
    assert_true(passes <= 24);
    /* the reader still sees its snapshot */
    assert_int_equal(store_audit_count(rtx, &n, &seq), STORE_OK);
    assert_int_equal(n, 0);
    store_rollback(rtx);
    /* reader gone: the next passes copy the WAL again */
    bulk_commits(f->st, 150, 10, NULL, NULL);
    assert_true(store_sqlite_checkpoints(f->st) > passes);
}

static void test_migrations_idempotent(void **state)
{
    struct fx *f = *state;
    STORE *st2;
    int i, latest = store_schema_version(f->st);

    assert_true(latest >= 1);
    for (i = 0; i < 3; i++) {
        st2 = open_store(f->path);
        assert_int_equal(store_schema_version(st2), latest);
        store_close(st2);
    }
    /* a database from the future is refused */
    raw_sql(f->path, "UPDATE schema_version SET version = 99");
    {
        struct store_conf sc;
        char err[256];

        store_conf_init(&sc);
        sc.path = f->path;
        assert_int_not_equal(store_open(&sc, &st2, err, sizeof(err)),
                             STORE_OK);
        assert_non_null(strstr(err, "newer"));
    }
    raw_sql(f->path, "UPDATE schema_version SET version = 1");
}

/* An RA registered before the registry had profiles, operations and the
 * disabled flag (schema 3) keeps working: every operation, no raVerified,
 * enabled, updated = created. */
static void test_ra_migration(void **state)
{
    struct fx *f = *state;
    struct store_ra *ra = NULL;
    STORE_TX *tx;
    STORE *st2;

    store_close(f->st);
    f->st = NULL;
    raw_sql(f->path, "DROP TABLE ra_profile;"
            "ALTER TABLE ra DROP COLUMN ops;"
            "ALTER TABLE ra DROP COLUMN ra_verified;"
            "ALTER TABLE ra DROP COLUMN disabled;"
            "ALTER TABLE ra DROP COLUMN updated;"
            /* and what migrations after 4 add */
            "DROP INDEX cert_vendor;"
            "DROP INDEX cert_valid_expiry;"
            "ALTER TABLE cert DROP COLUMN vendor_sha256;"
            "ALTER TABLE cert DROP COLUMN vendor_serial;"
            "ALTER TABLE vendor DROP COLUMN disabled;"
            "DROP TABLE vendor_crl;"
            "ALTER TABLE cmp_txn DROP COLUMN req_nonce;"
            "DROP TABLE ca_rollover;"
            "DROP TABLE device_secret;"
            "DROP TABLE cmp_pending;"
            "DROP TABLE cmp_txn_reply;"
            "INSERT INTO ra(id,name,cert,sha256,created) VALUES(7,'old',"
            "x'300105',zeroblob(32),1234);"
            "INSERT INTO ra_alias(ra_id,alias) VALUES(7,'lab');"
            "UPDATE schema_version SET version = 3");
    st2 = open_store(f->path);
    f->st = st2;
    assert_int_equal(store_begin_read(st2, &tx), STORE_OK);
    assert_int_equal(store_ra_get_by_name(tx, "old", &ra), STORE_OK);
    assert_int_equal(ra->ops, STORE_RA_OP_ALL);
    assert_int_equal(ra->ra_verified, 0);
    assert_int_equal(ra->disabled, 0);
    assert_int_equal(ra->updated, 1234);
    assert_int_equal(ra->nprofiles, 0);
    assert_int_equal(ra->naliases, 1);
    assert_int_equal(store_ra_check(ra, "lab", "any", STORE_RA_OP_KUR),
                     STORE_RA_ALLOWED);
    store_ra_free(ra);
    store_rollback(tx);
}

static void test_query_plans(void **state)
{
    struct fx *f = *state;
    char err[1200] = "";

    if (!store_sqlite_plan_check(f->st, err, sizeof(err)))
        fail_msg("%s", err);
    /* the check notices a missing index */
    raw_sql(f->path, "DROP INDEX cmp_txn_device_waiting");
    {
        STORE *st2 = open_store(f->path);

        assert_int_equal(store_sqlite_plan_check(st2, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "cmp_txn"));
        store_close(st2);
    }
}

static void test_conf(void **state)
{
    struct conf *conf = NULL;
    struct store_conf sc;
    char err[256];

    store_conf_init(&sc);
    assert_int_equal(conf_load_string("/etc/cmpca/x.conf",
                                      "[store]\npath = cmpca.db\n"
                                      "synchronous = normal\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 1);
    assert_string_equal(sc.backend, "sqlite");
    assert_int_equal(sc.synchronous_full, 0);
    assert_string_equal(sc.path, "/etc/cmpca/cmpca.db");
    store_conf_clear(&sc);
    conf_free(conf);

    assert_int_equal(conf_load_string("x.conf", "[store]\npath = a.db\n"
                                      "colour = blue\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "colour"));
    conf_free(conf);

    assert_int_equal(conf_load_string("x.conf", "[server]\n", &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(store_conf_load(conf, &sc, err, sizeof(err)), 0);
    conf_free(conf);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup,
                                        teardown),
        cmocka_unit_test(test_conf),
        cmocka_unit_test_setup_teardown(test_ra_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_passes_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_pinned_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wal_checkpointed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_query_plans, setup, teardown),
        STORE_COMMON_TESTS,
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
