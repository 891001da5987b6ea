/*
 * SQLite backend of the store: a pool of connections (one per concurrent
 * transaction, each with its prepared statements cached), WAL with durable
 * commits, schema migrations at open, and every record operation.
 */
#include "store/store_int.h"
#include "store/store_sqlite_schema.h"

#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Cached statements. */

#define SQ_STMTS(X)                                                         \
    X(BEGIN_W, "BEGIN IMMEDIATE")                                           \
    X(BEGIN_R, "BEGIN")                                                     \
    X(COMMIT, "COMMIT")                                                     \
    X(ROLLBACK, "ROLLBACK")                                                 \
    X(SAVEPOINT, "SAVEPOINT w")                                             \
    X(RELEASE, "RELEASE w")                                                 \
    X(ROLLBACK_TO, "ROLLBACK TO w")                                         \
    X(CA_INSERT, "INSERT INTO ca(name,cert,chain,key_ref,signer_cert,"      \
      "signer_key_ref,created) VALUES(?,?,?,?,?,?,?)")                      \
    X(CA_UPDATE, "UPDATE ca SET cert=?,chain=?,key_ref=?,signer_cert=?,"    \
      "signer_key_ref=? WHERE id=?")                                        \
    X(CA_GET_ID, "SELECT " STORE_CA_COLS " FROM ca WHERE id=?")                \
    X(CA_GET_NAME, "SELECT " STORE_CA_COLS " FROM ca WHERE name=?")            \
    X(CA_LIST, "SELECT " STORE_CA_COLS " FROM ca ORDER BY id")                 \
    X(CERT_INSERT, "INSERT INTO cert(ca_id,serial,subject,not_before,"      \
      "not_after,der,sha256,status,revoked_at,reason,device_id,profile,"    \
      "created,vendor_sha256,vendor_serial) "                               \
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")                              \
    X(CERT_GET_ID, "SELECT " STORE_CERT_COLS " FROM cert WHERE id=?")          \
    X(CERT_GET_SERIAL, "SELECT " STORE_CERT_COLS                               \
      " FROM cert WHERE ca_id=? AND serial=?")                              \
    X(CERT_REVOKE, "UPDATE cert SET status=1,revoked_at=?1,reason=?2 "      \
      "WHERE id=?3 AND (status=0 OR (status=1 AND reason=6 "                \
      "AND coalesce(?2,-1)<>6))")                                           \
    X(CERT_UNREVOKE, "UPDATE cert SET status=0,revoked_at=NULL,reason=NULL " \
      "WHERE id=? AND status=1 AND reason=6")                               \
    X(CERT_EXISTS, "SELECT 1 FROM cert WHERE id=?")                         \
    X(CERT_REVOKED, "SELECT serial,revoked_at,reason FROM cert "            \
      "WHERE ca_id=? AND status=1 AND not_after>=? ORDER BY serial")        \
    X(VENDOR_INSERT, "INSERT INTO vendor(name,certs,created) VALUES(?,?,?)") \
    X(VENDOR_UPDATE, "UPDATE vendor SET certs=? WHERE id=?")                \
    X(VENDOR_SET_DISABLED, "UPDATE vendor SET disabled=? WHERE id=?")       \
    X(VENDOR_GET_ID, "SELECT " STORE_VENDOR_COLS " FROM vendor WHERE id=?")    \
    X(VENDOR_GET_NAME, "SELECT " STORE_VENDOR_COLS " FROM vendor WHERE name=?") \
    X(VENDOR_LIST, "SELECT " STORE_VENDOR_COLS " FROM vendor ORDER BY name")   \
    X(VENDOR_HAS_DEV, "SELECT EXISTS(SELECT 1 FROM device WHERE vendor_id=?)") \
    X(VENDOR_DELETE, "DELETE FROM vendor WHERE id=?")                       \
    X(DEVICE_INSERT, "INSERT INTO device(vendor_id,identifier,state,"       \
      "cert_id,created,updated) VALUES(?1,?2,0,NULL,?3,?3)")                \
    X(DEVICE_GET_ID, "SELECT " STORE_DEVICE_COLS " FROM device WHERE id=?")    \
    X(DEVICE_GET_IDENT, "SELECT " STORE_DEVICE_COLS                            \
      " FROM device WHERE vendor_id=? AND identifier=?")                    \
    X(DEVICE_SET_STATE, "UPDATE device SET state=?1,cert_id=CASE "          \
      "WHEN ?2<0 THEN cert_id WHEN ?2=0 THEN NULL ELSE ?2 END,updated=?3 "  \
      "WHERE id=?4 AND state=?5")                                           \
    X(DEVICE_EXISTS, "SELECT 1 FROM device WHERE id=?")                     \
    X(DEVICE_DELETE, "DELETE FROM device WHERE id=?")                       \
    X(RA_INSERT, "INSERT INTO ra(name,cert,sha256,created,ops,ra_verified," \
      "disabled,updated) VALUES(?1,?2,?3,?4,?5,?6,?7,?4)")                  \
    X(RA_ALIAS_INSERT, "INSERT OR IGNORE INTO ra_alias(ra_id,alias) "       \
      "VALUES(?,?)")                                                        \
    X(RA_PROFILE_INSERT, "INSERT OR IGNORE INTO ra_profile(ra_id,profile) " \
      "VALUES(?,?)")                                                        \
    X(RA_PROFILES, "SELECT profile FROM ra_profile WHERE ra_id=? "          \
      "ORDER BY profile")                                                   \
    X(RA_SET_DISABLED, "UPDATE ra SET disabled=?1,updated=?2 "             \
      "WHERE id=?3 AND disabled<>?1")                                        \
    X(RA_EXISTS, "SELECT 1 FROM ra WHERE id=?")                             \
    X(RA_GET_ID, "SELECT " STORE_RA_COLS " FROM ra WHERE id=?")                \
    X(RA_GET_NAME, "SELECT " STORE_RA_COLS " FROM ra WHERE name=?")            \
    X(RA_GET_SHA, "SELECT " STORE_RA_COLS " FROM ra WHERE sha256=?")           \
    X(RA_LIST, "SELECT " STORE_RA_COLS " FROM ra ORDER BY name")               \
    X(RA_ALIASES, "SELECT alias FROM ra_alias WHERE ra_id=? ORDER BY alias") \
    X(RA_DELETE, "DELETE FROM ra WHERE id=?")                               \
    X(TXN_INSERT, "INSERT INTO cmp_txn(" STORE_TXN_COLS ") "                   \
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")                                \
    X(TXN_GET, "SELECT " STORE_TXN_COLS " FROM cmp_txn WHERE tid=?")           \
    X(TXN_EXISTS, "SELECT 1 FROM cmp_txn WHERE tid=?")                      \
    X(TXN_SET_STATE, "UPDATE cmp_txn SET state=?,updated=? "                \
      "WHERE tid=? AND state=?")                                            \
    X(TXN_UPDATE, "UPDATE cmp_txn SET state=?,deadline=?,sender_nonce=?,"   \
      "cert_id=?,old_cert_id=?,device_id=?,alias=?,updated=? "              \
      "WHERE tid=? AND state=?")                                            \
    X(TXN_EXPIRED, "SELECT " STORE_TXN_COLS " FROM cmp_txn WHERE state=0 "     \
      "AND deadline<? ORDER BY deadline LIMIT ?")                           \
    X(TXN_WAITING_DEV, "SELECT " STORE_TXN_COLS " FROM cmp_txn WHERE state=0 " \
      "AND device_id=? ORDER BY created LIMIT ?")                           \
    X(TXN_PURGE, "DELETE FROM cmp_txn WHERE state IN (1,2,3,4) AND updated<?")        \
    X(TXN_COUNT_RQ, "SELECT coalesce(sum(state IN (0,6)),0),"               \
      "coalesce(sum(created>=?),0) FROM cmp_txn "                           \
      "WHERE requester=? AND type IN (0,1,2,3)")                            \
    X(CRL_NEXT, "INSERT INTO crl_counter(ca_id,number) VALUES(?,1) "        \
      "ON CONFLICT(ca_id) DO UPDATE SET number=number+1 RETURNING number")  \
    X(CRL_PUT, "INSERT OR REPLACE INTO crl(ca_id,number,this_update,"       \
      "next_update,der) VALUES(?,?,?,?,?)")                                 \
    X(CRL_GET, "SELECT ca_id,number,this_update,next_update,der FROM crl "  \
      "WHERE ca_id=?")                                                      \
    X(VCRL_PUT, "INSERT OR REPLACE INTO vendor_crl(vendor_id,issuer_sha256," \
      "this_update,next_update,fetched,source,der) VALUES(?,?,?,?,?,?,?)")  \
    X(VCRL_LIST, "SELECT vendor_id,issuer_sha256,this_update,next_update,"  \
      "fetched,source,der FROM vendor_crl WHERE ?1=0 OR vendor_id=?1 "      \
      "ORDER BY vendor_id")                                                 \
    X(REPLY_PUT, "INSERT INTO cmp_txn_reply(req_sha256,alias,tid,upstream," \
      "http,created,reply) VALUES(?,?,?,?,?,?,?) "                           \
      "ON CONFLICT(req_sha256) DO NOTHING")                                 \
    X(REPLY_GET, "SELECT req_sha256,alias,tid,upstream,http,created,reply " \
      "FROM cmp_txn_reply WHERE req_sha256=?")                              \
    X(REPLY_PURGE, "DELETE FROM cmp_txn_reply WHERE created<?")             \
    X(AUDIT_HEAD, "SELECT seq,hash FROM audit_head WHERE id=1")             \
    X(AUDIT_INSERT, "INSERT INTO audit(" STORE_AUDIT_COLS ") "                 \
      "VALUES(?,?,?,?,?,?,?)")                                              \
    X(AUDIT_SET_HEAD, "INSERT INTO audit_head(id,seq,hash) VALUES(1,?,?) "  \
      "ON CONFLICT(id) DO UPDATE SET seq=excluded.seq,hash=excluded.hash")  \
    X(AUDIT_ALL, "SELECT " STORE_AUDIT_COLS " FROM audit ORDER BY seq")        \
    X(AUDIT_LAST, "SELECT * FROM (SELECT " STORE_AUDIT_COLS " FROM audit "     \
      "ORDER BY seq DESC LIMIT ?) ORDER BY seq")                            \
    X(AUDIT_COUNT, "SELECT count(*),coalesce(max(seq),0) FROM audit")      \
    X(ROLL_INSERT, "INSERT INTO ca_rollover(ca_id,old_sha256,new_sha256,"   \
      "new_with_new,new_with_old,old_with_new,created) SELECT ?1,?2,?3,?4," \
      "?5,?6,?7 WHERE EXISTS(SELECT 1 FROM ca WHERE id=?1)")                \
    X(ROLL_LIST, "SELECT id,ca_id,old_sha256,new_sha256,new_with_new,"      \
      "new_with_old,old_with_new,created FROM ca_rollover "                 \
      "WHERE ?1=0 OR ca_id=?1 ORDER BY id")                                  \
    X(SECRET_PUT, "INSERT INTO device_secret(" STORE_SECRET_COLS ") "        \
      "VALUES(?1,?2,?3,0,0,0,?4,?4) ON CONFLICT(device_id) DO UPDATE SET "  \
      "ref=excluded.ref,sealed=excluded.sealed,failures=0,locked=0,"        \
      "consumed=0,updated=excluded.updated")                                \
    X(SECRET_GET_REF, "SELECT " STORE_SECRET_COLS                              \
      " FROM device_secret WHERE ref=?")                                    \
    X(SECRET_GET_DEV, "SELECT " STORE_SECRET_COLS                              \
      " FROM device_secret WHERE device_id=?")                              \
    X(SECRET_FAIL, "UPDATE device_secret SET failures=failures+1,"          \
      "locked=CASE WHEN failures+1>=?1 THEN 1 ELSE locked END,updated=?2 "  \
      "WHERE device_id=?3 RETURNING failures,locked")                       \
    X(SECRET_UNLOCK, "UPDATE device_secret SET failures=0,locked=0,"        \
      "updated=?1 WHERE device_id=?2")                                      \
    X(SECRET_CONSUME, "UPDATE device_secret SET consumed=1,updated=?1 "     \
      "WHERE device_id=?2 AND consumed=0")                                  \
    X(PENDING_INSERT, "INSERT INTO cmp_pending(tid,alias,type,state,"       \
      "requester,device_id,device,profile,subject,request,vendor_cert,"     \
      "created,expires,updated) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")        \
    X(PENDING_GET, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "          \
      "WHERE tid=?")                                                        \
    X(PENDING_EXISTS, "SELECT 1 FROM cmp_pending WHERE tid=?")              \
    X(PENDING_SET_STATE, "UPDATE cmp_pending SET state=?1,"                 \
      "decided_by=coalesce(?2,decided_by),"                                 \
      "decided_at=CASE WHEN ?2 IS NULL THEN decided_at ELSE ?4 END,"        \
      "reason=CASE WHEN ?2 IS NULL THEN reason ELSE ?3 END,updated=?4 "     \
      "WHERE tid=?5 AND state=?6")                                          \
    X(PENDING_LIST, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "         \
      "WHERE (?1 IS NULL OR alias=?1) AND (?2<0 OR state=?2) "              \
      "ORDER BY created,tid LIMIT ?3")                                      \
    X(PENDING_EXPIRED, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "      \
      "WHERE state=0 AND expires<? ORDER BY expires LIMIT ?")               \
    X(PENDING_STALE, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "        \
      "WHERE state IN (1,2) AND decided_at<?1 "                             \
      "AND decided_at+(expires-created)<?1 AND EXISTS(SELECT 1 FROM "       \
      "cmp_txn t WHERE t.tid=cmp_pending.tid AND t.state=6) "               \
      "ORDER BY decided_at LIMIT ?2")                                       \
    X(PENDING_PURGE, "DELETE FROM cmp_pending WHERE updated<? "             \
      "AND state IN (2,3,4)")

#define SQ_ENUM(n, s) SQ_##n,
#define SQ_TEXT(n, s) s,
enum sq_stmt_id { SQ_STMTS(SQ_ENUM) SQ_NSTMT };
static const char *const sq_sql[] = { SQ_STMTS(SQ_TEXT) };

/* Longest device identifier accepted. */

struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_NSTMT];
    struct sq_conn *next;
};

/* The shared writer connection and its group-commit state (under mu). */
struct sq_writer {
    pthread_cond_t cv_free;        /* signalled (one waiter at a time) when
                                    * the writer may have become free */
    pthread_cond_t cv_done;        /* broadcast when a batch's COMMIT ended */
    struct sq_conn *conn;
    int busy;                      /* a logical write tx holds conn */
    pthread_t owner;               /* the thread holding it (when busy) */
    int committing;                /* COMMIT of the batch in progress */
    int in_tx;                     /* an SQLite transaction is open */
    int waiters;                   /* threads waiting to begin a write */
    int pending;                   /* finished txs awaiting the COMMIT */
    int members;                   /* txs ended in this batch, kept or
                                    * undone: bounds the batch even when
                                    * most of them roll back */
    uint64_t batch;                /* number of the open/last batch */
    uint64_t done_batch;           /* last batch whose COMMIT ended */
    uint64_t failed_batch;         /* last batch whose COMMIT failed */
    char commit_err[256];          /* why it failed (for every member) */
};

/* New WAL frames (since a pass was last asked for) after which the
 * checkpointer copies the log into the database (SQLite's own
 * autocheckpoint default). */
#define SQ_CKPT_FRAMES 1000
/* WAL frames after which a commit waits for the checkpointer to catch up
 * (back-pressure: writers must not outrun it, or the WAL grows forever). */
#define SQ_CKPT_FRAMES_MAX (4 * SQ_CKPT_FRAMES)

/* The background checkpointer (under its own mutex): commits only append
 * to the WAL; copying the WAL back into the database, with its fsync, runs
 * on this thread instead of inside whichever commit crossed the limit. */
struct sq_ckpt {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    pthread_cond_t done_cv;        /* broadcast after each checkpoint */
    int started, stop, want, busy;
    unsigned long runs;            /* checkpoints done */
    int wal_frames;                /* WAL length at the last commit */
    int backfilled;                /* of those, copied by the last pass */
    int asked_at;                  /* WAL length when a pass was last asked */
    int pinned;                    /* the last pass copied nothing new while
                                    * frames remained: a reader holds them */
};

struct sq_store {
    char *path;
    int sync_full;
    long busy_ms;
    struct sq_ckpt ck;
    pthread_mutex_t mu;
    struct sq_conn *idle;          /* read connections not held by a tx */
    struct sq_writer w;
    pthread_mutex_t tok_mu;        /* the change-token connection: */
    sqlite3 *tok_db;               /* never writes, so PRAGMA data_version */
    sqlite3_stmt *tok_stmt;        /* on it moves with every commit */
};

#define SQ_DB(tx) (((struct sq_conn *)(tx)->conn)->db)

static int64_t sq_now(void)
{
    return (int64_t)time(NULL);
}

/* Maps an SQLite result code to a store code and records the message. */
static enum store_rc sq_fail(STORE_TX *tx, int rc, const char *what)
{
    enum store_rc r = STORE_ERROR;

    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        r = STORE_EXISTS;
        break;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        r = STORE_NOTFOUND;
        break;
    default:
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            r = STORE_BUSY;
        break;
    }
    return store_tx_fail(tx, r, "%s: %s", what,
                         tx->conn != NULL ? sqlite3_errmsg(SQ_DB(tx))
                                          : sqlite3_errstr(rc));
}

/* Fault injection for tests (store_sqlite_fault): fail the Nth call. */
static long sq_fault_at, sq_fault_calls;

void store_sqlite_fault(long n)
{
    __atomic_store_n(&sq_fault_calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&sq_fault_at, n, __ATOMIC_SEQ_CST);
}

/* Returns the cached statement |id| of the tx's connection, reset and ready
 * to bind, or NULL (message recorded). */
static sqlite3_stmt *sq_stmt(STORE_TX *tx, enum sq_stmt_id id)
{
    struct sq_conn *c = tx->conn;
    long at = __atomic_load_n(&sq_fault_at, __ATOMIC_RELAXED);
    int rc;

    if (at > 0 && __atomic_add_fetch(&sq_fault_calls, 1, __ATOMIC_SEQ_CST)
        == at) {
        store_tx_fail(tx, STORE_ERROR, "injected fault");
        return NULL;
    }
    /* After a full disk or an I/O error SQLite rolls the transaction back
     * by itself; a further statement would run (and commit) on its own. */
    if (tx->write && id != SQ_BEGIN_W && sqlite3_get_autocommit(c->db)) {
        store_tx_fail(tx, STORE_ERROR, "transaction lost: %s",
                      sqlite3_errmsg(c->db));
        return NULL;
    }

    if (c->stmt[id] == NULL) {
        rc = sqlite3_prepare_v3(c->db, sq_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                                NULL);
        if (rc != SQLITE_OK) {
            sq_fail(tx, rc, "prepare");
            return NULL;
        }
    } else {
        sqlite3_reset(c->stmt[id]);
    }
    return c->stmt[id];
}

/* Runs a statement that returns no rows; resets it. */
static enum store_rc sq_exec_stmt(STORE_TX *tx, sqlite3_stmt *s,
                                  const char *what)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(tx, rc, what);
    return STORE_OK;
}

/* Binding helpers: a blob of length 0 with a NULL pointer binds NULL. */
static int sq_bind_blob(sqlite3_stmt *s, int i, const void *p, size_t len)
{
    if (p == NULL)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_blob64(s, i, p, len, SQLITE_STATIC);
}

static int sq_bind_text(sqlite3_stmt *s, int i, const char *t)
{
    if (t == NULL)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
}

/* Binds an id, with 0 meaning NULL. */
static int sq_bind_id(sqlite3_stmt *s, int i, int64_t id)
{
    if (id <= 0)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_int64(s, i, id);
}

/* Column helpers; they return 1 on success (NULL column = NULL/0). */
static int sq_col_text(sqlite3_stmt *s, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    *out = NULL;
    if (t == NULL)
        return sqlite3_column_type(s, i) == SQLITE_NULL;
    return (*out = strdup((const char *)t)) != NULL;
}

static int sq_col_blob(sqlite3_stmt *s, int i, unsigned char **out,
                       size_t *len)
{
    const void *p = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);

    *out = NULL;
    *len = 0;
    if (p == NULL || n <= 0)
        return 1;
    if ((*out = malloc((size_t)n)) == NULL)
        return 0;
    memcpy(*out, p, (size_t)n);
    *len = (size_t)n;
    return 1;
}

/* Copies a blob column into a fixed buffer; 1 if it fits. */
static int sq_col_fixed(sqlite3_stmt *s, int i, unsigned char *buf,
                        size_t max, size_t *len)
{
    const void *p = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);

    *len = 0;
    if (p == NULL || n <= 0)
        return 1;
    if ((size_t)n > max)
        return 0;
    memcpy(buf, p, (size_t)n);
    *len = (size_t)n;
    return 1;
}

static int64_t sq_col_id(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? 0
        : sqlite3_column_int64(s, i);
}

/* ------------------------------------------------------------------ */
/* Connections, pool, open/close                                       */

static void sq_conn_close(struct sq_conn *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < SQ_NSTMT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    free(c);
}

/* Runs |sql| (no rows expected) on a bare connection. */
static int sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/* sq_exec as a store_exec_fn for store_migrate_steps. */
static int sq_exec_fn(void *db, const char *sql, char *err, size_t errlen)
{
    return sq_exec(db, sql, err, errlen);
}

static int sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return 0;
    }
    return 1;
}

/* Opens one connection with our pragmas; |first| also switches to WAL. */
static enum store_rc sq_conn_open(struct sq_store *s, int first,
                                  struct sq_conn **out, char *err,
                                  size_t errlen)
{
    struct sq_conn *c;
    sqlite3_stmt *st = NULL;
    enum store_rc rc = STORE_ERROR;
    int r;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    r = sqlite3_open_v2(s->path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        | SQLITE_OPEN_NOMUTEX, NULL);
    if (r != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", s->path,
                 c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(r));
        goto end;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, (int)s->busy_ms);
    if (first) {
        if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st,
                               NULL) != SQLITE_OK
            || sqlite3_step(st) != SQLITE_ROW
            || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
            snprintf(err, errlen, "%s: cannot switch to WAL: %s", s->path,
                     sqlite3_errmsg(c->db));
            rc = (sqlite3_errcode(c->db) & 0xff) == SQLITE_BUSY ? STORE_BUSY
                                                                : STORE_ERROR;
            goto end;
        }
    }
    if (!sq_exec(c->db, s->sync_full ? "PRAGMA synchronous=FULL"
                                     : "PRAGMA synchronous=NORMAL", err,
                 errlen)
        || !sq_exec(c->db, "PRAGMA foreign_keys=ON;"
                    "PRAGMA cache_size=-16384;"
                    "PRAGMA temp_store=MEMORY", err, errlen))
        goto end;
    *out = c;
    c = NULL;
    rc = STORE_OK;
 end:
    sqlite3_finalize(st);
    sq_conn_close(c);
    return rc;
}

/* Brings the schema up to date inside BEGIN IMMEDIATE. */
static enum store_rc sq_migrate(struct sq_conn *c, int *version, char *err,
                                size_t errlen)
{
    const int latest = (int)(sizeof(store_sqlite_migrations)
                             / sizeof(store_sqlite_migrations[0]));
    sqlite3_stmt *st = NULL;
    int v = 0, r;
    enum store_rc rc = STORE_ERROR;

    if (!sq_exec(c->db, "BEGIN IMMEDIATE", err, errlen)) {
        if ((sqlite3_errcode(c->db) & 0xff) == SQLITE_BUSY)
            rc = STORE_BUSY;
        return rc;
    }
    if (!sq_exec(c->db, "CREATE TABLE IF NOT EXISTS schema_version "
                 "(version INTEGER NOT NULL)", err, errlen))
        goto end;
    if (sqlite3_prepare_v2(c->db, "SELECT max(version) FROM schema_version",
                           -1, &st, NULL) != SQLITE_OK
        || (r = sqlite3_step(st)) != SQLITE_ROW) {
        snprintf(err, errlen, "schema_version: %s", sqlite3_errmsg(c->db));
        goto end;
    }
    v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (v > latest) {
        store_schema_too_new(v, latest, err, errlen);
        goto end;
    }
    if (!store_migrate_steps(v, latest, store_sqlite_migrations, sq_exec_fn,
                             c->db, err, errlen)
        || !sq_exec(c->db, "COMMIT", err, errlen))
        goto end;
    *version = latest;
    rc = STORE_OK;
 end:
    sqlite3_finalize(st);
    if (rc != STORE_OK && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Records (k->mu held) what a checkpoint pass did: |nckpt| of the WAL's
 * |nlog| frames are in the database. A pass that copied nothing new while
 * frames remained means a reader pins them. Ignored if the WAL restarted
 * since (the counts are the old WAL's). */
static void sq_ckpt_note(struct sq_ckpt *k, int nlog, int nckpt)
{
    if (nckpt < 0 || nckpt > k->wal_frames)
        return;
    k->pinned = nckpt < nlog && nckpt <= k->backfilled;
    k->backfilled = nckpt;
}

/* The checkpointer thread: PASSIVE checkpoints (they neither wait for nor
 * block readers and writers) whenever the writer reports a long WAL. */
static void *sq_ckpt_main(void *arg)
{
    struct sq_store *s = arg;
    struct sq_ckpt *k = &s->ck;
    struct sq_conn *c = NULL;
    char err[256];
    int nlog, nckpt, r;

    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->want && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        k->want = 0;
        k->busy = 1;
        pthread_mutex_unlock(&k->mu);
        if (c == NULL && sq_conn_open(s, 0, &c, err, sizeof(err)) != STORE_OK)
            log_msg(LOG_WARN, "store: checkpointer: %s", err);
        nlog = nckpt = -1;
        r = c != NULL ? sqlite3_wal_checkpoint_v2(c->db, NULL,
                                                  SQLITE_CHECKPOINT_PASSIVE,
                                                  &nlog, &nckpt)
                      : SQLITE_ERROR;
        /* BUSY: another connection (or process) is checkpointing */
        if (r != SQLITE_OK && (r & 0xff) != SQLITE_BUSY && c != NULL)
            log_msg(LOG_WARN, "store: checkpoint: %s", sqlite3_errmsg(c->db));
        /* frames still uncopied (written meanwhile, or pinned by a reader)
         * wait for the next commit's wake-up: no spinning here */
        pthread_mutex_lock(&k->mu);
        if (r == SQLITE_OK)
            sq_ckpt_note(k, nlog, nckpt);
        k->busy = 0;
        k->runs++;
        pthread_cond_broadcast(&k->done_cv);
    }
    k->busy = 0;
    pthread_cond_broadcast(&k->done_cv);
    pthread_mutex_unlock(&k->mu);
    sq_conn_close(c);
    return NULL;
}

/* sqlite3_wal_hook of the writer connection: runs after each COMMIT with
 * the WAL's length in frames; wakes (or starts) the checkpointer, and past
 * SQ_CKPT_FRAMES_MAX waits for a checkpoint that began after this commit
 * (the group commit holds the writer meanwhile, so that one copies the
 * whole WAL and the next write transaction starts the WAL afresh). */
static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct sq_store *s = arg;
    struct sq_ckpt *k = &s->ck;
    unsigned long target;
    int nlog = -1, nckpt = -1, block;

    pthread_mutex_lock(&k->mu);
    if (frames < k->wal_frames) {   /* the WAL restarted from its beginning */
        k->backfilled = k->asked_at = 0;
        k->pinned = 0;
    }
    k->wal_frames = frames;
    /* Past SQ_CKPT_FRAMES_MAX the commit waits for a pass, so that one
     * copies the whole WAL and the next write restarts it; not while a
     * reader pins the frames (no pass can copy them: the WAL grows until
     * the reader ends, as SQLite's own checkpoints let it). */
    block = frames >= SQ_CKPT_FRAMES_MAX && !k->pinned;
    /* otherwise a pass per SQ_CKPT_FRAMES new frames, not one per commit
     * once the WAL is long: each pass costs two fsyncs */
    if (!block && frames - k->asked_at < SQ_CKPT_FRAMES) {
        pthread_mutex_unlock(&k->mu);
        return SQLITE_OK;
    }
    k->asked_at = frames;
    if (!k->started && !k->stop) {
        if (pthread_create(&k->th, NULL, sq_ckpt_main, s) == 0)
            k->started = 1;
        else if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           &nlog, &nckpt) == SQLITE_OK) {
            k->runs++;          /* no thread: checkpoint here, as before */
            sq_ckpt_note(k, nlog, nckpt);
        }
    }
    k->want = 1;
    pthread_cond_signal(&k->cv);
    if (block && k->started) {
        target = k->runs + (k->busy ? 2 : 1);
        while (k->runs < target && !k->stop)
            pthread_cond_wait(&k->done_cv, &k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return SQLITE_OK;
}

/* Stops the checkpointer thread, if any. */
static void sq_ckpt_stop(struct sq_store *s)
{
    struct sq_ckpt *k = &s->ck;
    int started;

    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    started = k->started;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    if (started)
        pthread_join(k->th, NULL);
}

static void sq_close(void *be)
{
    struct sq_store *s = be;
    struct sq_conn *c;

    if (s == NULL)
        return;
    sq_ckpt_stop(s);
    while ((c = s->idle) != NULL) {
        s->idle = c->next;
        sq_conn_close(c);
    }
    sq_conn_close(s->w.conn);
    sqlite3_finalize(s->tok_stmt);
    sqlite3_close(s->tok_db);
    pthread_mutex_destroy(&s->tok_mu);
    pthread_cond_destroy(&s->w.cv_free);
    pthread_cond_destroy(&s->w.cv_done);
    pthread_cond_destroy(&s->ck.cv);
    pthread_cond_destroy(&s->ck.done_cv);
    pthread_mutex_destroy(&s->ck.mu);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static enum store_rc sq_open(const struct store_conf *sc, void **be,
                             int *schema_version, char *err, size_t errlen)
{
    struct sq_store *s;
    struct sq_conn *c = NULL;
    enum store_rc rc = STORE_ERROR;

    *be = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL
        || (s->path = strdup(sc->path)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->sync_full = sc->synchronous_full;
    s->busy_ms = sc->busy_timeout_ms > 0 ? sc->busy_timeout_ms : 5000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->tok_mu, NULL);
    pthread_mutex_init(&s->ck.mu, NULL);
    pthread_cond_init(&s->ck.cv, NULL);
    pthread_cond_init(&s->ck.done_cv, NULL);
    pthread_cond_init(&s->w.cv_free, NULL);
    pthread_cond_init(&s->w.cv_done, NULL);
    if ((rc = sq_conn_open(s, 1, &c, err, errlen)) != STORE_OK)
        goto end;
    if ((rc = sq_migrate(c, schema_version, err, errlen)) != STORE_OK)
        goto end;
    s->idle = c;
    c = NULL;
    *be = s;
    s = NULL;
 end:
    sq_conn_close(c);
    sq_close(s);
    return rc;
}

/* Gives a read tx's connection back to the pool (or closes it if it is
 * still inside a transaction after a failed rollback). */
static void sq_release(STORE_TX *tx)
{
    struct sq_store *s = tx->st->be;
    struct sq_conn *c = tx->conn;

    tx->conn = NULL;
    if (c == NULL)
        return;
    if (!sqlite3_get_autocommit(c->db)) {
        sq_conn_close(c);
        return;
    }
    pthread_mutex_lock(&s->mu);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->mu);
}

/* Runs cached statement |id| on the tx's connection (no rows); returns 1
 * on success. *rc (may be NULL) gets the store code. */
static int sq_writer_exec(STORE_TX *tx, enum sq_stmt_id id, const char *what,
                          enum store_rc *rc)
{
    sqlite3_stmt *st = sq_stmt(tx, id);
    enum store_rc r = st != NULL ? sq_exec_stmt(tx, st, what) : STORE_ERROR;

    if (rc != NULL)
        *rc = r;
    return r == STORE_OK;
}

/*
 * Group commit. All write transactions of one STORE share one writer
 * connection, one at a time (as SQLite's write lock would serialise them
 * anyway). A transaction that finds the SQLite transaction already open
 * (others finished theirs but wait for the COMMIT) joins it inside a
 * SAVEPOINT, so its own rollback stays private. The last one to finish
 * while nobody else waits for the writer runs COMMIT, one fsync for the
 * whole batch, and wakes everybody; each store_commit returns only after
 * the COMMIT that made its changes durable. Called with s->mu held and no
 * logical transaction active; returns with s->mu held.
 */
static void sq_batch_commit(STORE_TX *tx, struct sq_store *s)
{
    struct sq_writer *w = &s->w;
    int ok;

    w->committing = 1;
    pthread_mutex_unlock(&s->mu);
    if (sqlite3_get_autocommit(w->conn->db)) {
        ok = 0; /* SQLite rolled the transaction back by itself (I/O error) */
        store_tx_fail(tx, STORE_ERROR, "transaction lost: %s",
                      sqlite3_errmsg(w->conn->db));
    } else {
        ok = sq_writer_exec(tx, SQ_COMMIT, "commit", NULL);
        if (!ok && !sqlite3_get_autocommit(w->conn->db)
            && sqlite3_exec(w->conn->db, "ROLLBACK", NULL, NULL, NULL)
               != SQLITE_OK
            && !sqlite3_get_autocommit(w->conn->db)) {
            /* nobody else touches the writer while committing is set */
            sq_conn_close(w->conn);     /* closing rolls back */
            w->conn = NULL;
            tx->conn = NULL;
        }
    }
    pthread_mutex_lock(&s->mu);
    w->committing = 0;
    w->in_tx = 0;
    w->pending = 0;
    w->members = 0;
    if (!ok) {
        /* the committer may be a member that rolled back or failed to
         * begin: the reason is kept for all and logged once */
        snprintf(w->commit_err, sizeof(w->commit_err), "%s", tx->errmsg);
        log_msg(LOG_ERROR, "store: group commit of batch %llu failed: %s",
                (unsigned long long)w->batch, w->commit_err);
        w->failed_batch = w->batch;
    }
    w->done_batch = w->batch;
    pthread_cond_broadcast(&w->cv_done);
    if (w->waiters > 0)
        pthread_cond_signal(&w->cv_free);
}

/* Maximum number of transactions sharing one COMMIT (bounds latency). */
#define SQ_BATCH_MAX 64

static enum store_rc sq_begin_write(STORE_TX *tx)
{
    struct sq_store *s = tx->st->be;
    struct sq_writer *w = &s->w;
    char err[256];
    enum store_rc rc = STORE_OK;

    pthread_mutex_lock(&s->mu);
    if (w->busy && pthread_equal(w->owner, pthread_self())) {
        pthread_mutex_unlock(&s->mu);
        return store_tx_fail(tx, STORE_ERROR, "this thread holds a write "
                             "transaction already");
    }
    w->waiters++;
    while (w->busy || w->committing)
        pthread_cond_wait(&w->cv_free, &s->mu);
    w->waiters--;
    w->busy = 1;
    w->owner = pthread_self();
    pthread_mutex_unlock(&s->mu);
    if (w->conn == NULL) {
        if ((rc = sq_conn_open(s, 0, &w->conn, err, sizeof(err))) != STORE_OK)
            store_tx_fail(tx, rc, "%s", err);
        else  /* replaces SQLite's autocheckpoint on this connection */
            sqlite3_wal_hook(w->conn->db, sq_wal_hook, s);
    }
    tx->conn = w->conn;
    tx->be_flags = 0;
    if (rc == STORE_OK && !w->in_tx) {
        /* First of a batch: no savepoint needed, nobody else is in it. */
        if (sq_writer_exec(tx, SQ_BEGIN_W, "begin", &rc)) {
            pthread_mutex_lock(&s->mu);
            w->in_tx = 1;
            w->batch++;
            pthread_mutex_unlock(&s->mu);
        }
    } else if (rc == STORE_OK) {
        if (sq_writer_exec(tx, SQ_SAVEPOINT, "savepoint", &rc))
            tx->be_flags = 1;
    }
    pthread_mutex_lock(&s->mu);
    tx->be_batch = w->batch;
    if (rc != STORE_OK) {
        w->busy = 0;
        if (w->in_tx && w->waiters == 0 && tx->conn != NULL)
            sq_batch_commit(tx, s);   /* others' work must not linger */
        tx->conn = NULL;
        pthread_cond_signal(&w->cv_free);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Ends a logical write transaction: |keep| 1 releases its savepoint (its
 * changes join the batch), 0 undoes them. Then commits the batch or waits
 * for whoever will. Returns the outcome for this transaction. */
static enum store_rc sq_end_write(STORE_TX *tx, int keep)
{
    struct sq_store *s = tx->st->be;
    struct sq_writer *w = &s->w;
    sqlite3 *db = w->conn->db;
    uint64_t my = tx->be_batch;
    enum store_rc rc = STORE_OK;
    int want = keep, abort_batch = 0;

    if (sqlite3_get_autocommit(db)) {
        /* SQLite rolled the whole transaction back by itself (I/O error,
         * out of memory): everything of this batch is gone. */
        rc = store_tx_fail(tx, STORE_ERROR, "transaction lost: %s",
                           sqlite3_errmsg(db));
        abort_batch = 1;
    } else if (keep && tx->be_flags
               && !sq_writer_exec(tx, SQ_RELEASE, "release savepoint", &rc)) {
        keep = 0;               /* could not keep it: undo it below */
    }
    if (!keep && !abort_batch) {
        if (!tx->be_flags) {
            abort_batch = 1;    /* first of its batch: nobody else is in it */
        } else if (!sq_writer_exec(tx, SQ_ROLLBACK_TO, "rollback to", NULL)
                   || !sq_writer_exec(tx, SQ_RELEASE, "release", NULL)) {
            /* undo this transaction only; if even that fails, the whole
             * batch goes (its members are told, none of it is kept) */
            if (sqlite3_exec(db, "ROLLBACK TO w; RELEASE w", NULL, NULL,
                             NULL) != SQLITE_OK)
                abort_batch = 1;
        }
    }
    /* Still the writer's only user (busy, and no commit runs while a
     * transaction is open): the rollback's I/O stays outside the mutex
     * that every reader takes for a connection. */
    if (abort_batch && !sqlite3_get_autocommit(db)
        && sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK
        && !sqlite3_get_autocommit(db)) {
        sq_conn_close(w->conn);         /* closing rolls back */
        w->conn = NULL;
    }
    pthread_mutex_lock(&s->mu);
    w->busy = 0;
    if (abort_batch) {
        w->in_tx = 0;
        if (w->pending > 0) {
            snprintf(w->commit_err, sizeof(w->commit_err), "%s", tx->errmsg);
            log_msg(LOG_ERROR, "store: batch %llu rolled back: %s",
                    (unsigned long long)w->batch, w->commit_err);
            w->failed_batch = w->batch;
            w->done_batch = w->batch;
            w->pending = 0;
        }
        w->members = 0;
        pthread_cond_broadcast(&w->cv_done);
        pthread_cond_signal(&w->cv_free);
        pthread_mutex_unlock(&s->mu);
        tx->conn = NULL;
        return want ? STORE_ERROR : STORE_OK;
    }
    if (keep)
        w->pending++;
    w->members++;
    if (w->waiters == 0 || w->members >= SQ_BATCH_MAX) {
        if (w->pending > 0 || w->in_tx)
            sq_batch_commit(tx, s);
    } else {
        pthread_cond_signal(&w->cv_free);  /* let a waiter join the batch */
    }
    if (keep) {
        while (w->done_batch < my)
            pthread_cond_wait(&w->cv_done, &s->mu);
        if (w->failed_batch == my)
            rc = store_tx_fail(tx, STORE_ERROR, "group commit failed%s%s",
                               *w->commit_err ? ": " : "", w->commit_err);
    }
    pthread_mutex_unlock(&s->mu);
    tx->conn = NULL;
    if (!want)
        return STORE_OK;
    return keep ? rc : (rc != STORE_OK ? rc : STORE_ERROR);
}

static enum store_rc sq_begin(STORE_TX *tx)
{
    struct sq_store *s = tx->st->be;
    struct sq_conn *c;
    sqlite3_stmt *st;
    char err[256];
    enum store_rc rc;

    if (tx->write)
        return sq_begin_write(tx);
    pthread_mutex_lock(&s->mu);
    if ((c = s->idle) != NULL)
        s->idle = c->next;
    pthread_mutex_unlock(&s->mu);
    if (c == NULL) {
        if ((rc = sq_conn_open(s, 0, &c, err, sizeof(err))) != STORE_OK)
            return store_tx_fail(tx, rc, "%s", err);
    }
    c->next = NULL;
    tx->conn = c;
    if ((st = sq_stmt(tx, SQ_BEGIN_R)) == NULL) {
        sq_release(tx);
        return STORE_ERROR;
    }
    if ((rc = sq_exec_stmt(tx, st, "begin")) != STORE_OK) {
        sq_release(tx);
        return rc;
    }
    return STORE_OK;
}

static enum store_rc sq_commit(STORE_TX *tx)
{
    if (tx->write)
        return sq_end_write(tx, 1);
    /* a read transaction: nothing to make durable */
    if (!sqlite3_get_autocommit(SQ_DB(tx)))
        sqlite3_exec(SQ_DB(tx), "COMMIT", NULL, NULL, NULL);
    sq_release(tx);
    return STORE_OK;
}

static void sq_rollback(STORE_TX *tx)
{
    sqlite3_stmt *st;

    if (tx->write) {
        sq_end_write(tx, 0);
        return;
    }
    if (!sqlite3_get_autocommit(SQ_DB(tx))
        && (st = sq_stmt(tx, SQ_ROLLBACK)) != NULL)
        sq_exec_stmt(tx, st, "rollback");
    sq_release(tx);
}

/* ------------------------------------------------------------------ */
/* Generic row collection                                              */

typedef void *(*sq_reader)(STORE_TX *tx, sqlite3_stmt *s);
typedef void (*sq_freer)(void *p);

/* Steps |s| once: STORE_OK with *out from |rd|, or NOTFOUND. Resets. */
static enum store_rc sq_get_one(STORE_TX *tx, sqlite3_stmt *s, sq_reader rd,
                                void **out, const char *what)
{
    int r = sqlite3_step(s);
    enum store_rc rc = STORE_OK;

    *out = NULL;
    if (r == SQLITE_ROW) {
        if ((*out = rd(tx, s)) == NULL)
            rc = store_tx_fail(tx, STORE_ERROR, "%s: out of memory", what);
    } else if (r == SQLITE_DONE) {
        rc = STORE_NOTFOUND;
    } else {
        rc = sq_fail(tx, r, what);
    }
    sqlite3_reset(s);
    return rc;
}

/* Collects every row of |s| through |rd| into a malloc'ed array. */
static enum store_rc sq_collect(STORE_TX *tx, sqlite3_stmt *s, sq_reader rd,
                                sq_freer fr, void ***out, size_t *n,
                                const char *what)
{
    void **v = NULL, **nv, *p;
    size_t cnt = 0, cap = 0, i;
    enum store_rc rc = STORE_ERROR;
    int r;

    *out = NULL;
    *n = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                rc = store_tx_fail(tx, STORE_ERROR, "%s: out of memory", what);
                goto end;
            }
            v = nv;
        }
        if ((p = rd(tx, s)) == NULL) {
            rc = store_tx_fail(tx, STORE_ERROR, "%s: out of memory", what);
            goto end;
        }
        v[cnt++] = p;
    }
    if (r != SQLITE_DONE) {
        rc = sq_fail(tx, r, what);
        goto end;
    }
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
    rc = STORE_OK;
 end:
    for (i = 0; i < cnt; i++)
        fr(v[i]);
    free(v);
    sqlite3_reset(s);
    return rc;
}

/* Reads one row of |by_name| (|name| bound) or, when |name| is NULL, of
 * |by_id| (|id| bound). */
static enum store_rc sq_get_id_or_name(STORE_TX *tx, enum sq_stmt_id by_id,
                                       enum sq_stmt_id by_name, int64_t id,
                                       const char *name, sq_reader rd,
                                       void **out, const char *what)
{
    sqlite3_stmt *s;

    *out = NULL;
    if ((s = sq_stmt(tx, name != NULL ? by_name : by_id)) == NULL)
        return STORE_ERROR;
    if (name != NULL)
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, id);
    return sq_get_one(tx, s, rd, out, what);
}

/* Collects every row of the parameterless statement |which|. */
static enum store_rc sq_list_all(STORE_TX *tx, enum sq_stmt_id which,
                                 sq_reader rd, sq_freer fr, void ***out,
                                 size_t *n, const char *what)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, which)) == NULL)
        return STORE_ERROR;
    return sq_collect(tx, s, rd, fr, out, n, what);
}

/* ------------------------------------------------------------------ */
/* CAs                                                                 */

static void *sq_read_ca(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_ca *ca = calloc(1, sizeof(*ca));
    const void *chain;

    if (ca == NULL)
        return NULL;
    ca->id = sqlite3_column_int64(s, 0);
    chain = sqlite3_column_blob(s, 3);
    if (!sq_col_text(s, 1, &ca->name)
        || !sq_col_blob(s, 2, &ca->cert_der, &ca->cert_len)
        || !store_der_split(chain, (size_t)sqlite3_column_bytes(s, 3),
                            &ca->chain, &ca->nchain)
        || !sq_col_text(s, 4, &ca->key_ref)
        || !sq_col_blob(s, 5, &ca->signer_cert_der, &ca->signer_cert_len)
        || !sq_col_text(s, 6, &ca->signer_key_ref)) {
        store_ca_free(ca);
        return NULL;
    }
    ca->created = sqlite3_column_int64(s, 7);
    return ca;
}

/* Binds the fields shared by CA insert and update starting at |i|:
 * cert, chain, key_ref, signer_cert, signer_key_ref. |chain| is the joined
 * chain buffer (kept alive by the caller). */
static void sq_bind_ca(sqlite3_stmt *s, int i, const struct store_ca *ca,
                       const unsigned char *chain, size_t chain_len)
{
    sq_bind_blob(s, i, ca->cert_der, ca->cert_len);
    sqlite3_bind_blob64(s, i + 1, chain, chain_len, SQLITE_STATIC);
    sq_bind_text(s, i + 2, ca->key_ref);
    sq_bind_blob(s, i + 3, ca->signer_cert_der, ca->signer_cert_len);
    sq_bind_text(s, i + 4, ca->signer_key_ref);
}

static enum store_rc sq_ca_insert(STORE_TX *tx, const struct store_ca *ca,
                                  int64_t *id)
{
    sqlite3_stmt *s;
    unsigned char *chain = NULL;
    size_t chain_len = 0;
    enum store_rc rc;

    if (id != NULL)
        *id = 0;
    if (ca->name == NULL || ca->cert_der == NULL || ca->key_ref == NULL)
        return store_tx_fail(tx, STORE_ERROR, "ca_insert: missing field");
    if (!store_der_join(ca->chain, ca->nchain, &chain, &chain_len))
        return store_tx_fail(tx, STORE_ERROR, "ca_insert: bad chain DER");
    if ((s = sq_stmt(tx, SQ_CA_INSERT)) == NULL) {
        free(chain);
        return STORE_ERROR;
    }
    sqlite3_bind_text(s, 1, ca->name, -1, SQLITE_STATIC);
    sq_bind_ca(s, 2, ca, chain, chain_len);
    sqlite3_bind_int64(s, 7, ca->created ? ca->created : sq_now());
    rc = sq_exec_stmt(tx, s, "ca_insert");
    free(chain);
    if (rc == STORE_OK && id != NULL)
        *id = sqlite3_last_insert_rowid(SQ_DB(tx));
    return rc;
}

static enum store_rc sq_ca_update(STORE_TX *tx, const struct store_ca *ca)
{
    sqlite3_stmt *s;
    unsigned char *chain = NULL;
    size_t chain_len = 0;
    enum store_rc rc;

    if (ca->cert_der == NULL || ca->key_ref == NULL)
        return store_tx_fail(tx, STORE_ERROR, "ca_update: missing field");
    if (!store_der_join(ca->chain, ca->nchain, &chain, &chain_len))
        return store_tx_fail(tx, STORE_ERROR, "ca_update: bad chain DER");
    if ((s = sq_stmt(tx, SQ_CA_UPDATE)) == NULL) {
        free(chain);
        return STORE_ERROR;
    }
    sq_bind_ca(s, 1, ca, chain, chain_len);
    sqlite3_bind_int64(s, 6, ca->id);
    rc = sq_exec_stmt(tx, s, "ca_update");
    free(chain);
    if (rc == STORE_OK && sqlite3_changes(SQ_DB(tx)) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

static enum store_rc sq_ca_get(STORE_TX *tx, int64_t id, const char *name,
                               struct store_ca **out)
{
    return sq_get_id_or_name(tx, SQ_CA_GET_ID, SQ_CA_GET_NAME, id, name,
                             sq_read_ca, (void **)out, "ca_get");
}

static enum store_rc sq_ca_list(STORE_TX *tx, struct store_ca ***out,
                                size_t *n)
{
    return sq_list_all(tx, SQ_CA_LIST, sq_read_ca, (sq_freer)store_ca_free,
                       (void ***)out, n, "ca_list");
}

/* ------------------------------------------------------------------ */
/* Certificates                                                        */

static void *sq_read_cert(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_cert *c = calloc(1, sizeof(*c));
    size_t shalen = 0;

    if (c == NULL)
        return NULL;
    c->id = sqlite3_column_int64(s, 0);
    c->ca_id = sqlite3_column_int64(s, 1);
    if (!sq_col_fixed(s, 2, c->serial, sizeof(c->serial), &c->serial_len)
        || !sq_col_text(s, 3, &c->subject)
        || !sq_col_blob(s, 6, &c->der, &c->der_len)
        || !sq_col_fixed(s, 7, c->sha256, sizeof(c->sha256), &shalen)
        || !sq_col_text(s, 12, &c->profile)) {
        store_cert_free(c);
        return NULL;
    }
    c->not_before = sqlite3_column_int64(s, 4);
    c->not_after = sqlite3_column_int64(s, 5);
    c->status = sqlite3_column_int(s, 8);
    c->revoked_at = sq_col_id(s, 9);
    c->reason = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1
        : sqlite3_column_int(s, 10);
    c->device_id = sq_col_id(s, 11);
    c->created = sqlite3_column_int64(s, 13);
    if (sqlite3_column_type(s, 14) == SQLITE_BLOB) {
        size_t vl = 0;

        if (!sq_col_fixed(s, 14, c->vendor_sha256, sizeof(c->vendor_sha256),
                          &vl)
            || !sq_col_fixed(s, 15, c->vendor_serial, sizeof(c->vendor_serial),
                             &c->vendor_serial_len)) {
            store_cert_free(c);
            return NULL;
        }
        c->has_vendor = vl == STORE_SHA256_LEN;
    }
    return c;
}

static enum store_rc sq_cert_insert(STORE_TX *tx, const struct store_cert *c,
                                    const unsigned char *sha, int64_t *id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_CERT_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, c->ca_id);
    sqlite3_bind_blob(s, 2, c->serial, (int)c->serial_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->subject != NULL ? c->subject : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, c->not_before);
    sqlite3_bind_int64(s, 5, c->not_after);
    sqlite3_bind_blob64(s, 6, c->der, c->der_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, sha, STORE_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, c->status == STORE_CERT_REVOKED ? 1 : 0);
    sq_bind_id(s, 9, c->revoked_at);
    if (c->reason < 0)
        sqlite3_bind_null(s, 10);
    else
        sqlite3_bind_int(s, 10, c->reason);
    sq_bind_id(s, 11, c->device_id);
    sq_bind_text(s, 12, c->profile);
    sqlite3_bind_int64(s, 13, c->created ? c->created : sq_now());
    if (c->has_vendor) {
        sqlite3_bind_blob(s, 14, c->vendor_sha256, STORE_SHA256_LEN,
                          SQLITE_STATIC);
        sqlite3_bind_blob(s, 15, c->vendor_serial, (int)c->vendor_serial_len,
                          SQLITE_STATIC);
    } else {
        sqlite3_bind_null(s, 14);
        sqlite3_bind_null(s, 15);
    }
    rc = sq_exec_stmt(tx, s, "cert_insert");
    if (rc == STORE_OK && id != NULL)
        *id = sqlite3_last_insert_rowid(SQ_DB(tx));
    return rc;
}

static enum store_rc sq_cert_get(STORE_TX *tx, int64_t id, int64_t ca_id,
                                 const unsigned char *serial,
                                 size_t serial_len, struct store_cert **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if (serial != NULL) {
        if ((s = sq_stmt(tx, SQ_CERT_GET_SERIAL)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, ca_id);
        sqlite3_bind_blob(s, 2, serial, (int)serial_len, SQLITE_STATIC);
    } else {
        if ((s = sq_stmt(tx, SQ_CERT_GET_ID)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, id);
    }
    return sq_get_one(tx, s, sq_read_cert, (void **)out, "cert_get");
}

/* Returns STORE_OK if the row |id| exists via statement |which|, else
 * STORE_NOTFOUND (or an error). */
static enum store_rc sq_exists(STORE_TX *tx, enum sq_stmt_id which,
                               int64_t id, const unsigned char *blob,
                               size_t blen)
{
    sqlite3_stmt *s;
    int r;

    if ((s = sq_stmt(tx, which)) == NULL)
        return STORE_ERROR;
    if (blob != NULL)
        sqlite3_bind_blob(s, 1, blob, (int)blen, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, id);
    r = sqlite3_step(s);
    sqlite3_reset(s);
    if (r == SQLITE_ROW)
        return STORE_OK;
    if (r == SQLITE_DONE)
        return STORE_NOTFOUND;
    return sq_fail(tx, r, "exists");
}

static enum store_rc sq_cert_revoke(STORE_TX *tx, int64_t id, int reason,
                                    int64_t when)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_CERT_REVOKE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, when ? when : sq_now());
    if (reason < 0)
        sqlite3_bind_null(s, 2);
    else
        sqlite3_bind_int(s, 2, reason);
    sqlite3_bind_int64(s, 3, id);
    if ((rc = sq_exec_stmt(tx, s, "cert_revoke")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    rc = sq_exists(tx, SQ_CERT_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc sq_cert_unrevoke(STORE_TX *tx, int64_t id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_CERT_UNREVOKE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if ((rc = sq_exec_stmt(tx, s, "cert_unrevoke")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    rc = sq_exists(tx, SQ_CERT_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

/* Builds the WHERE clause of a certificate filter into |sql|; binds later
 * with sq_cert_filter_bind in the same order. */
static void sq_cert_filter_sql(const struct store_cert_filter *f, char *sql,
                               size_t len)
{
    size_t off = strlen(sql);
    /* the status goes in as a literal, so that the partial indexes on
     * status (cert_revoked, cert_valid_expiry) can serve the query */
    const char *status = f->status < 0 ? ""
        : f->status == STORE_CERT_REVOKED ? " AND status=1" : " AND status=0";

    snprintf(sql + off, len - off, " WHERE 1%s%s%s%s%s%s%s",
             f->ca_id > 0 ? " AND ca_id=?" : "",
             f->device_id > 0 ? " AND device_id=?" : "",
             status,
             f->expires_before > 0 ? " AND not_after<?" : "",
             f->expires_after > 0 ? " AND not_after>=?" : "",
             f->vendor_sha256 != NULL ? " AND vendor_sha256=?" : "",
             f->vendor_id > 0 ? " AND device_id IN (SELECT id FROM device"
                                " WHERE vendor_id=?)" : "");
}

static int sq_cert_filter_bind(sqlite3_stmt *s,
                               const struct store_cert_filter *f)
{
    int i = 1;

    if (f->ca_id > 0)
        sqlite3_bind_int64(s, i++, f->ca_id);
    if (f->device_id > 0)
        sqlite3_bind_int64(s, i++, f->device_id);
    if (f->expires_before > 0)
        sqlite3_bind_int64(s, i++, f->expires_before);
    if (f->expires_after > 0)
        sqlite3_bind_int64(s, i++, f->expires_after);
    if (f->vendor_sha256 != NULL)
        sqlite3_bind_blob(s, i++, f->vendor_sha256, STORE_SHA256_LEN,
                          SQLITE_STATIC);
    if (f->vendor_id > 0)
        sqlite3_bind_int64(s, i++, f->vendor_id);
    return i;
}

static enum store_rc sq_cert_list(STORE_TX *tx,
                                  const struct store_cert_filter *f,
                                  struct store_cert ***out, size_t *n)
{
    char sql[768];
    sqlite3_stmt *s = NULL;
    enum store_rc rc;
    int i, r;

    *out = NULL;
    *n = 0;
    snprintf(sql, sizeof(sql), "SELECT id,ca_id,serial,subject,not_before,"
             "not_after,%s,sha256,status,revoked_at,reason,device_id,"
             "profile,created,vendor_sha256,vendor_serial FROM cert",
             f->skip_der ? "NULL" : "der");
    sq_cert_filter_sql(f, sql, sizeof(sql));
    strncat(sql, " ORDER BY id DESC LIMIT ? OFFSET ?",
            sizeof(sql) - strlen(sql) - 1);
    if ((r = sqlite3_prepare_v2(SQ_DB(tx), sql, -1, &s, NULL)) != SQLITE_OK)
        return sq_fail(tx, r, "cert_list");
    i = sq_cert_filter_bind(s, f);
    sqlite3_bind_int64(s, i, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(s, i + 1, f->offset > 0 ? f->offset : 0);
    rc = sq_collect(tx, s, sq_read_cert, (sq_freer)store_cert_free,
                    (void ***)out, n, "cert_list");
    sqlite3_finalize(s);
    return rc;
}

/* Runs a "SELECT count(*) ..." statement; finalizes it. */
static enum store_rc sq_count(STORE_TX *tx, sqlite3_stmt *s, int64_t *n,
                              const char *what)
{
    int r = sqlite3_step(s);
    enum store_rc rc = STORE_OK;

    if (r == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        rc = sq_fail(tx, r, what);
    sqlite3_finalize(s);
    return rc;
}

static enum store_rc sq_cert_count(STORE_TX *tx,
                                   const struct store_cert_filter *f,
                                   int64_t *n)
{
    char sql[512] = "SELECT count(*) FROM cert";
    sqlite3_stmt *s = NULL;
    int r;

    *n = 0;
    sq_cert_filter_sql(f, sql, sizeof(sql));
    if ((r = sqlite3_prepare_v2(SQ_DB(tx), sql, -1, &s, NULL)) != SQLITE_OK)
        return sq_fail(tx, r, "cert_count");
    sq_cert_filter_bind(s, f);
    return sq_count(tx, s, n, "cert_count");
}

static enum store_rc sq_cert_foreach_revoked(STORE_TX *tx, int64_t ca_id,
                                             int64_t not_after_min,
                                             store_revoked_cb cb, void *arg)
{
    sqlite3_stmt *s;
    struct store_revoked r;
    enum store_rc rc = STORE_OK;
    int x;

    if ((s = sq_stmt(tx, SQ_CERT_REVOKED)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, ca_id);
    sqlite3_bind_int64(s, 2, not_after_min);
    while ((x = sqlite3_step(s)) == SQLITE_ROW) {
        r.serial = sqlite3_column_blob(s, 0);
        r.serial_len = (size_t)sqlite3_column_bytes(s, 0);
        r.revoked_at = sq_col_id(s, 1);
        r.reason = sqlite3_column_type(s, 2) == SQLITE_NULL ? -1
            : sqlite3_column_int(s, 2);
        if (!cb(arg, &r)) {
            rc = store_tx_fail(tx, STORE_ERROR, "revoked: callback stopped");
            break;
        }
    }
    if (rc == STORE_OK && x != SQLITE_DONE)
        rc = sq_fail(tx, x, "cert_foreach_revoked");
    sqlite3_reset(s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Vendors                                                             */

static void *sq_read_vendor(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_vendor *v = calloc(1, sizeof(*v));

    if (v == NULL)
        return NULL;
    v->id = sqlite3_column_int64(s, 0);
    if (!sq_col_text(s, 1, &v->name)
        || !store_der_split(sqlite3_column_blob(s, 2),
                            (size_t)sqlite3_column_bytes(s, 2),
                            &v->certs, &v->ncerts)) {
        store_vendor_free(v);
        return NULL;
    }
    v->created = sqlite3_column_int64(s, 3);
    v->disabled = sqlite3_column_int(s, 4) != 0;
    return v;
}

static enum store_rc sq_vendor_insert(STORE_TX *tx,
                                      const struct store_vendor *v,
                                      int64_t *id)
{
    sqlite3_stmt *s;
    unsigned char *certs = NULL;
    size_t len = 0;
    enum store_rc rc;

    if (id != NULL)
        *id = 0;
    if (v->name == NULL || *v->name == '\0')
        return store_tx_fail(tx, STORE_ERROR, "vendor_insert: no name");
    if (!store_der_join(v->certs, v->ncerts, &certs, &len))
        return store_tx_fail(tx, STORE_ERROR, "vendor_insert: bad DER");
    if ((s = sq_stmt(tx, SQ_VENDOR_INSERT)) == NULL) {
        free(certs);
        return STORE_ERROR;
    }
    sqlite3_bind_text(s, 1, v->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 2, certs, len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, v->created ? v->created : sq_now());
    rc = sq_exec_stmt(tx, s, "vendor_insert");
    free(certs);
    if (rc == STORE_OK && id != NULL)
        *id = sqlite3_last_insert_rowid(SQ_DB(tx));
    return rc;
}

static enum store_rc sq_vendor_update(STORE_TX *tx,
                                      const struct store_vendor *v)
{
    sqlite3_stmt *s;
    unsigned char *certs = NULL;
    size_t len = 0;
    enum store_rc rc;

    if (!store_der_join(v->certs, v->ncerts, &certs, &len))
        return store_tx_fail(tx, STORE_ERROR, "vendor_update: bad DER");
    if ((s = sq_stmt(tx, SQ_VENDOR_UPDATE)) == NULL) {
        free(certs);
        return STORE_ERROR;
    }
    sqlite3_bind_blob64(s, 1, certs, len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v->id);
    rc = sq_exec_stmt(tx, s, "vendor_update");
    free(certs);
    if (rc == STORE_OK && sqlite3_changes(SQ_DB(tx)) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

static enum store_rc sq_vendor_set_disabled(STORE_TX *tx, int64_t id,
                                            int disabled)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_VENDOR_SET_DISABLED)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, disabled);
    sqlite3_bind_int64(s, 2, id);
    rc = sq_exec_stmt(tx, s, "vendor_set_disabled");
    if (rc == STORE_OK && sqlite3_changes(SQ_DB(tx)) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

static enum store_rc sq_vendor_get(STORE_TX *tx, int64_t id, const char *name,
                                   struct store_vendor **out)
{
    return sq_get_id_or_name(tx, SQ_VENDOR_GET_ID, SQ_VENDOR_GET_NAME, id, name,
                             sq_read_vendor, (void **)out, "vendor_get");
}

static enum store_rc sq_vendor_list(STORE_TX *tx, struct store_vendor ***out,
                                    size_t *n)
{
    return sq_list_all(tx, SQ_VENDOR_LIST, sq_read_vendor,
                       (sq_freer)store_vendor_free, (void ***)out, n,
                       "vendor_list");
}

static enum store_rc sq_vendor_delete(STORE_TX *tx, int64_t id, int force)
{
    sqlite3_stmt *s;
    enum store_rc rc;
    int r, has;

    if (!force) {
        if ((s = sq_stmt(tx, SQ_VENDOR_HAS_DEV)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, id);
        r = sqlite3_step(s);
        has = r == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
        sqlite3_reset(s);
        if (r != SQLITE_ROW)
            return sq_fail(tx, r, "vendor_delete");
        if (has)
            return store_tx_fail(tx, STORE_CONFLICT,
                                 "vendor has registered devices");
    }
    if ((s = sq_stmt(tx, SQ_VENDOR_DELETE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if ((rc = sq_exec_stmt(tx, s, "vendor_delete")) != STORE_OK)
        return rc;
    return sqlite3_changes(SQ_DB(tx)) > 0 ? STORE_OK : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */

static void *sq_read_device(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_device *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->id = sqlite3_column_int64(s, 0);
    d->vendor_id = sqlite3_column_int64(s, 1);
    if (!sq_col_text(s, 2, &d->identifier) || d->identifier == NULL) {
        store_device_free(d);
        return NULL;
    }
    d->state = sqlite3_column_int(s, 3);
    d->cert_id = sq_col_id(s, 4);
    d->created = sqlite3_column_int64(s, 5);
    d->updated = sqlite3_column_int64(s, 6);
    return d;
}

static enum store_rc sq_device_insert(STORE_TX *tx, int64_t vendor_id,
                                      const char *identifier, int64_t *id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if (id != NULL)
        *id = 0;
    if ((s = sq_stmt(tx, SQ_DEVICE_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, vendor_id);
    sqlite3_bind_text(s, 2, identifier, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, sq_now());
    rc = sq_exec_stmt(tx, s, "device_insert");
    if (rc == STORE_OK && id != NULL)
        *id = sqlite3_last_insert_rowid(SQ_DB(tx));
    return rc;
}

static enum store_rc sq_device_get(STORE_TX *tx, int64_t id,
                                   int64_t vendor_id, const char *ident,
                                   struct store_device **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if (ident != NULL) {
        if ((s = sq_stmt(tx, SQ_DEVICE_GET_IDENT)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, vendor_id);
        sqlite3_bind_text(s, 2, ident, -1, SQLITE_STATIC);
    } else {
        if ((s = sq_stmt(tx, SQ_DEVICE_GET_ID)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, id);
    }
    return sq_get_one(tx, s, sq_read_device, (void **)out, "device_get");
}

static enum store_rc sq_device_set_state(STORE_TX *tx, int64_t id, int from,
                                         int to, int64_t cert_id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_DEVICE_SET_STATE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, to);
    sqlite3_bind_int64(s, 2, cert_id < 0 ? -1 : cert_id);
    sqlite3_bind_int64(s, 3, sq_now());
    sqlite3_bind_int64(s, 4, id);
    sqlite3_bind_int(s, 5, from);
    if ((rc = sq_exec_stmt(tx, s, "device_set_state")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    rc = sq_exists(tx, SQ_DEVICE_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc sq_device_delete(STORE_TX *tx, int64_t id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_DEVICE_DELETE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if ((rc = sq_exec_stmt(tx, s, "device_delete")) != STORE_OK)
        return rc;
    return sqlite3_changes(SQ_DB(tx)) > 0 ? STORE_OK : STORE_NOTFOUND;
}

static void sq_device_filter_sql(const struct store_device_filter *f,
                                 char *sql, size_t len)
{
    size_t off = strlen(sql);

    snprintf(sql + off, len - off, " WHERE 1%s%s",
             f->vendor_id > 0 ? " AND vendor_id=?" : "",
             f->state >= 0 ? " AND state=?" : "");
}

static int sq_device_filter_bind(sqlite3_stmt *s,
                                 const struct store_device_filter *f)
{
    int i = 1;

    if (f->vendor_id > 0)
        sqlite3_bind_int64(s, i++, f->vendor_id);
    if (f->state >= 0)
        sqlite3_bind_int(s, i++, f->state);
    return i;
}

static enum store_rc sq_device_list(STORE_TX *tx,
                                    const struct store_device_filter *f,
                                    struct store_device ***out, size_t *n)
{
    char sql[256] = "SELECT " STORE_DEVICE_COLS " FROM device";
    sqlite3_stmt *s = NULL;
    enum store_rc rc;
    int i, r;

    *out = NULL;
    *n = 0;
    sq_device_filter_sql(f, sql, sizeof(sql));
    strncat(sql, " ORDER BY vendor_id,identifier LIMIT ? OFFSET ?",
            sizeof(sql) - strlen(sql) - 1);
    if ((r = sqlite3_prepare_v2(SQ_DB(tx), sql, -1, &s, NULL)) != SQLITE_OK)
        return sq_fail(tx, r, "device_list");
    i = sq_device_filter_bind(s, f);
    sqlite3_bind_int64(s, i, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(s, i + 1, f->offset > 0 ? f->offset : 0);
    rc = sq_collect(tx, s, sq_read_device, (sq_freer)store_device_free,
                    (void ***)out, n, "device_list");
    sqlite3_finalize(s);
    return rc;
}

static enum store_rc sq_device_count(STORE_TX *tx,
                                     const struct store_device_filter *f,
                                     int64_t *n)
{
    char sql[256] = "SELECT count(*) FROM device";
    sqlite3_stmt *s = NULL;
    int r;

    *n = 0;
    sq_device_filter_sql(f, sql, sizeof(sql));
    if ((r = sqlite3_prepare_v2(SQ_DB(tx), sql, -1, &s, NULL)) != SQLITE_OK)
        return sq_fail(tx, r, "device_count");
    sq_device_filter_bind(s, f);
    return sq_count(tx, s, n, "device_count");
}

static enum store_rc sq_device_import(STORE_TX *tx, int64_t vendor_id,
                                      store_ident_next_fn next, void *arg,
                                      uint64_t *count)
{
    sqlite3_stmt *s;
    const char *ident;
    size_t len;
    uint64_t cnt = 0;
    enum store_rc rc;
    int r;

    if ((rc = sq_exists(tx, SQ_VENDOR_GET_ID, vendor_id, NULL, 0))
        != STORE_OK)
        return rc == STORE_NOTFOUND
            ? store_tx_fail(tx, rc, "no vendor with id %lld",
                            (long long)vendor_id)
            : rc;
    if ((s = sq_stmt(tx, SQ_DEVICE_INSERT)) == NULL)
        return STORE_ERROR;
    /* Bindings survive sqlite3_reset: bind the constant ones once. */
    sqlite3_bind_int64(s, 1, vendor_id);
    sqlite3_bind_int64(s, 3, sq_now());
    while ((r = next(arg, &ident, &len)) == 1) {
        sqlite3_bind_text(s, 2, ident, (int)len, SQLITE_STATIC);
        r = sqlite3_step(s);
        sqlite3_reset(s);
        if (r != SQLITE_DONE) {
            sqlite3_clear_bindings(s);
            return sq_fail(tx, r, "device_import");
        }
        cnt++;
    }
    sqlite3_clear_bindings(s);
    if (r < 0)
        return store_tx_fail(tx, STORE_ERROR, "import input rejected");
    if (count != NULL)
        *count = cnt;
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* RAs                                                                 */

/* Reads the one text column of every row of cached statement |id| for
 * parameter |key| into a malloc'ed array (*v, *n). Returns 1 or 0. */
static int sq_read_strs(STORE_TX *tx, enum sq_stmt_id id, int64_t key,
                        char ***v, size_t *n)
{
    sqlite3_stmt *a;
    char **nv;
    size_t cap = 0;
    int r;

    if ((a = sq_stmt(tx, id)) == NULL)
        return 0;
    sqlite3_bind_int64(a, 1, key);
    while ((r = sqlite3_step(a)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            if ((nv = realloc(*v, cap * sizeof(*nv))) == NULL) {
                sqlite3_reset(a);
                return 0;
            }
            *v = nv;
        }
        if (!sq_col_text(a, 0, &(*v)[*n]) || (*v)[*n] == NULL) {
            sqlite3_reset(a);
            return 0;
        }
        (*n)++;
    }
    sqlite3_reset(a);
    return r == SQLITE_DONE;
}

static void *sq_read_ra(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_ra *ra = calloc(1, sizeof(*ra));
    size_t shalen = 0;

    if (ra == NULL)
        return NULL;
    ra->id = sqlite3_column_int64(s, 0);
    if (!sq_col_text(s, 1, &ra->name)
        || !sq_col_blob(s, 2, &ra->cert_der, &ra->cert_len)
        || !sq_col_fixed(s, 3, ra->sha256, sizeof(ra->sha256), &shalen))
        goto err;
    ra->created = sqlite3_column_int64(s, 4);
    ra->ops = (unsigned)sqlite3_column_int64(s, 5) & STORE_RA_OP_ALL;
    ra->ra_verified = sqlite3_column_int(s, 6) != 0;
    ra->disabled = sqlite3_column_int(s, 7) != 0;
    ra->updated = sqlite3_column_int64(s, 8);
    if (!sq_read_strs(tx, SQ_RA_ALIASES, ra->id, &ra->aliases, &ra->naliases)
        || !sq_read_strs(tx, SQ_RA_PROFILES, ra->id, &ra->profiles,
                         &ra->nprofiles))
        goto err;
    return ra;
 err:
    store_ra_free(ra);
    return NULL;
}

/* Inserts the |n| strings of |v| for RA |rid| with cached statement |id|. */
static enum store_rc sq_ra_strs_insert(STORE_TX *tx, enum sq_stmt_id id,
                                       int64_t rid, char *const *v, size_t n,
                                       const char *what)
{
    sqlite3_stmt *s;
    enum store_rc rc;
    size_t i;

    for (i = 0; i < n; i++) {
        if ((s = sq_stmt(tx, id)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, rid);
        sq_bind_text(s, 2, v[i]);
        if ((rc = sq_exec_stmt(tx, s, what)) != STORE_OK)
            return rc == STORE_EXISTS ? STORE_ERROR : rc;
    }
    return STORE_OK;
}

static enum store_rc sq_ra_insert(STORE_TX *tx, const struct store_ra *ra,
                                  const unsigned char *sha, int64_t *id)
{
    sqlite3_stmt *s;
    enum store_rc rc;
    int64_t rid;

    if (ra->name == NULL || *ra->name == '\0')
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: no name");
    if ((s = sq_stmt(tx, SQ_RA_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, ra->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 2, ra->cert_der, ra->cert_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, sha, STORE_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, ra->created ? ra->created : sq_now());
    sqlite3_bind_int64(s, 5, (int64_t)(ra->ops & STORE_RA_OP_ALL));
    sqlite3_bind_int(s, 6, ra->ra_verified ? 1 : 0);
    sqlite3_bind_int(s, 7, ra->disabled ? 1 : 0);
    if ((rc = sq_exec_stmt(tx, s, "ra_insert")) != STORE_OK)
        return rc;
    rid = sqlite3_last_insert_rowid(SQ_DB(tx));
    if ((rc = sq_ra_strs_insert(tx, SQ_RA_ALIAS_INSERT, rid, ra->aliases,
                                ra->naliases, "ra_alias_insert")) != STORE_OK
        || (rc = sq_ra_strs_insert(tx, SQ_RA_PROFILE_INSERT, rid,
                                   ra->profiles, ra->nprofiles,
                                   "ra_profile_insert")) != STORE_OK)
        return rc;
    if (id != NULL)
        *id = rid;
    return STORE_OK;
}

static enum store_rc sq_ra_set_disabled(STORE_TX *tx, int64_t id,
                                        int disabled)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_RA_SET_DISABLED)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, disabled);
    sqlite3_bind_int64(s, 2, sq_now());
    sqlite3_bind_int64(s, 3, id);
    if ((rc = sq_exec_stmt(tx, s, "ra_set_disabled")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    rc = sq_exists(tx, SQ_RA_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc sq_ra_get(STORE_TX *tx, int64_t id, const char *name,
                               const unsigned char *sha, struct store_ra **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if (name != NULL) {
        if ((s = sq_stmt(tx, SQ_RA_GET_NAME)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    } else if (sha != NULL) {
        if ((s = sq_stmt(tx, SQ_RA_GET_SHA)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_blob(s, 1, sha, STORE_SHA256_LEN, SQLITE_STATIC);
    } else {
        if ((s = sq_stmt(tx, SQ_RA_GET_ID)) == NULL)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, id);
    }
    return sq_get_one(tx, s, sq_read_ra, (void **)out, "ra_get");
}

static enum store_rc sq_ra_list(STORE_TX *tx, struct store_ra ***out,
                                size_t *n)
{
    return sq_list_all(tx, SQ_RA_LIST, sq_read_ra, (sq_freer)store_ra_free,
                       (void ***)out, n, "ra_list");
}

static enum store_rc sq_ra_delete(STORE_TX *tx, int64_t id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_RA_DELETE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if ((rc = sq_exec_stmt(tx, s, "ra_delete")) != STORE_OK)
        return rc;
    return sqlite3_changes(SQ_DB(tx)) > 0 ? STORE_OK : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* CMP transactions                                                    */

static void *sq_read_txn(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_cmp_txn *t = calloc(1, sizeof(*t));
    size_t reqlen = 0;

    if (t == NULL)
        return NULL;
    if (!sq_col_fixed(s, 0, t->tid, sizeof(t->tid), &t->tid_len)
        || !sq_col_text(s, 1, &t->alias)
        || !sq_col_fixed(s, 8, t->requester_sha256,
                         sizeof(t->requester_sha256), &reqlen)
        || !sq_col_fixed(s, 9, t->sender_nonce, sizeof(t->sender_nonce),
                         &t->sender_nonce_len)
        || !sq_col_fixed(s, 13, t->req_nonce, sizeof(t->req_nonce),
                         &t->req_nonce_len)) {
        store_cmp_txn_free(t);
        return NULL;
    }
    t->type = sqlite3_column_int(s, 2);
    t->state = sqlite3_column_int(s, 3);
    t->cert_req_id = sqlite3_column_int(s, 4);
    t->created = sqlite3_column_int64(s, 5);
    t->deadline = sqlite3_column_int64(s, 6);
    t->updated = sqlite3_column_int64(s, 7);
    t->has_requester = reqlen == STORE_SHA256_LEN;
    t->cert_id = sq_col_id(s, 10);
    t->old_cert_id = sq_col_id(s, 11);
    t->device_id = sq_col_id(s, 12);
    return t;
}

static enum store_rc sq_txn_insert(STORE_TX *tx, const struct store_cmp_txn *t)
{
    sqlite3_stmt *s;
    int64_t now = sq_now();

    if ((s = sq_stmt(tx, SQ_TXN_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_blob(s, 1, t->tid, (int)t->tid_len, SQLITE_STATIC);
    sq_bind_text(s, 2, t->alias);
    sqlite3_bind_int(s, 3, t->type);
    sqlite3_bind_int(s, 4, t->state);
    sqlite3_bind_int(s, 5, t->cert_req_id);
    sqlite3_bind_int64(s, 6, t->created ? t->created : now);
    sqlite3_bind_int64(s, 7, t->deadline);
    sqlite3_bind_int64(s, 8, t->updated ? t->updated : now);
    if (t->has_requester)
        sqlite3_bind_blob(s, 9, t->requester_sha256, STORE_SHA256_LEN,
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 9);
    if (t->sender_nonce_len > 0)
        sqlite3_bind_blob(s, 10, t->sender_nonce, (int)t->sender_nonce_len,
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 10);
    sq_bind_id(s, 11, t->cert_id);
    sq_bind_id(s, 12, t->old_cert_id);
    sq_bind_id(s, 13, t->device_id);
    if (t->req_nonce_len > 0)
        sqlite3_bind_blob(s, 14, t->req_nonce, (int)t->req_nonce_len,
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 14);
    return sq_exec_stmt(tx, s, "cmp_txn_insert");
}

static enum store_rc sq_txn_get(STORE_TX *tx, const unsigned char *tid,
                                size_t tid_len, struct store_cmp_txn **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if ((s = sq_stmt(tx, SQ_TXN_GET)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_blob(s, 1, tid, (int)tid_len, SQLITE_STATIC);
    return sq_get_one(tx, s, sq_read_txn, (void **)out, "cmp_txn_get");
}

/* After a conditional UPDATE on cmp_txn: OK, CONFLICT or NOTFOUND. */
static enum store_rc sq_txn_changed(STORE_TX *tx, const unsigned char *tid,
                                    size_t tid_len)
{
    enum store_rc rc;

    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    rc = sq_exists(tx, SQ_TXN_EXISTS, 0, tid, tid_len);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc sq_txn_set_state(STORE_TX *tx, const unsigned char *tid,
                                      size_t tid_len, int from, int to)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_TXN_SET_STATE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, to);
    sqlite3_bind_int64(s, 2, sq_now());
    sqlite3_bind_blob(s, 3, tid, (int)tid_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, from);
    if ((rc = sq_exec_stmt(tx, s, "cmp_txn_set_state")) != STORE_OK)
        return rc;
    return sq_txn_changed(tx, tid, tid_len);
}

static enum store_rc sq_txn_update(STORE_TX *tx, const struct store_cmp_txn *t,
                                   int from)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_TXN_UPDATE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, t->state);
    sqlite3_bind_int64(s, 2, t->deadline);
    if (t->sender_nonce_len > 0)
        sqlite3_bind_blob(s, 3, t->sender_nonce, (int)t->sender_nonce_len,
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 3);
    sq_bind_id(s, 4, t->cert_id);
    sq_bind_id(s, 5, t->old_cert_id);
    sq_bind_id(s, 6, t->device_id);
    sq_bind_text(s, 7, t->alias);
    sqlite3_bind_int64(s, 8, sq_now());
    sqlite3_bind_blob(s, 9, t->tid, (int)t->tid_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 10, from);
    if ((rc = sq_exec_stmt(tx, s, "cmp_txn_update")) != STORE_OK)
        return rc;
    return sq_txn_changed(tx, t->tid, t->tid_len);
}

static enum store_rc sq_txn_list_expired(STORE_TX *tx, int64_t now,
                                         long limit,
                                         struct store_cmp_txn ***out,
                                         size_t *n)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, SQ_TXN_EXPIRED)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    return sq_collect(tx, s, sq_read_txn, (sq_freer)store_cmp_txn_free,
                      (void ***)out, n, "cmp_txn_list_expired");
}

static enum store_rc sq_txn_list_waiting_device(STORE_TX *tx,
                                                int64_t device_id, long limit,
                                                struct store_cmp_txn ***out,
                                                size_t *n)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, SQ_TXN_WAITING_DEV)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, device_id);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    return sq_collect(tx, s, sq_read_txn, (sq_freer)store_cmp_txn_free,
                      (void ***)out, n, "cmp_txn_list_waiting_device");
}

static enum store_rc sq_txn_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if (n != NULL)
        *n = 0;
    if ((s = sq_stmt(tx, SQ_TXN_PURGE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, before);
    if ((rc = sq_exec_stmt(tx, s, "cmp_txn_purge")) == STORE_OK && n != NULL)
        *n = sqlite3_changes(SQ_DB(tx));
    return rc;
}

static enum store_rc sq_txn_count_requester(STORE_TX *tx,
                                            const unsigned char *requester,
                                            int64_t since, int64_t *waiting,
                                            int64_t *recent)
{
    sqlite3_stmt *s;
    int r;

    if ((s = sq_stmt(tx, SQ_TXN_COUNT_RQ)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_blob(s, 2, requester, STORE_SHA256_LEN, SQLITE_STATIC);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *waiting = sqlite3_column_int64(s, 0);
        *recent = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return r == SQLITE_ROW ? STORE_OK : sq_fail(tx, r, "cmp_txn_count_requester");
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                */

static enum store_rc sq_crl_next_number(STORE_TX *tx, int64_t ca_id,
                                        int64_t *number)
{
    sqlite3_stmt *s;
    int r;

    *number = 0;
    if ((s = sq_stmt(tx, SQ_CRL_NEXT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, ca_id);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *number = sqlite3_column_int64(s, 0);
    if (r == SQLITE_ROW)
        r = sqlite3_step(s);   /* finish the statement */
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        *number = 0;
        return sq_fail(tx, r, "crl_next_number");
    }
    return STORE_OK;
}

static enum store_rc sq_crl_put(STORE_TX *tx, const struct store_crl *crl)
{
    sqlite3_stmt *s;

    if ((s = sq_stmt(tx, SQ_CRL_PUT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, crl->ca_id);
    sqlite3_bind_int64(s, 2, crl->number);
    sqlite3_bind_int64(s, 3, crl->this_update);
    sqlite3_bind_int64(s, 4, crl->next_update);
    sqlite3_bind_blob64(s, 5, crl->der, crl->der_len, SQLITE_STATIC);
    return sq_exec_stmt(tx, s, "crl_put");
}

static void *sq_read_crl(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_crl *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->ca_id = sqlite3_column_int64(s, 0);
    c->number = sqlite3_column_int64(s, 1);
    c->this_update = sqlite3_column_int64(s, 2);
    c->next_update = sqlite3_column_int64(s, 3);
    if (!sq_col_blob(s, 4, &c->der, &c->der_len)) {
        store_crl_free(c);
        return NULL;
    }
    return c;
}

static enum store_rc sq_vendor_crl_put(STORE_TX *tx,
                                       const struct store_vendor_crl *c)
{
    sqlite3_stmt *s;

    if ((s = sq_stmt(tx, SQ_VCRL_PUT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, c->vendor_id);
    sqlite3_bind_blob(s, 2, c->issuer_sha256, STORE_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, c->this_update);
    sqlite3_bind_int64(s, 4, c->next_update);
    sqlite3_bind_int64(s, 5, c->fetched ? c->fetched : sq_now());
    sq_bind_text(s, 6, c->source);
    sqlite3_bind_blob64(s, 7, c->der, c->der_len, SQLITE_STATIC);
    return sq_exec_stmt(tx, s, "vendor_crl_put");
}

static void *sq_read_vendor_crl(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_vendor_crl *c = calloc(1, sizeof(*c));
    size_t hl = 0;

    if (c == NULL)
        return NULL;
    c->vendor_id = sqlite3_column_int64(s, 0);
    c->this_update = sqlite3_column_int64(s, 2);
    c->next_update = sqlite3_column_int64(s, 3);
    c->fetched = sqlite3_column_int64(s, 4);
    if (!sq_col_fixed(s, 1, c->issuer_sha256, sizeof(c->issuer_sha256), &hl)
        || !sq_col_text(s, 5, &c->source)
        || !sq_col_blob(s, 6, &c->der, &c->der_len)) {
        store_vendor_crl_free(c);
        return NULL;
    }
    return c;
}

static enum store_rc sq_vendor_crl_list(STORE_TX *tx, int64_t vendor_id,
                                        struct store_vendor_crl ***out,
                                        size_t *n)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, SQ_VCRL_LIST)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, vendor_id);
    return sq_collect(tx, s, sq_read_vendor_crl,
                      (sq_freer)store_vendor_crl_free, (void ***)out, n,
                      "vendor_crl_list");
}

static enum store_rc sq_crl_get_last(STORE_TX *tx, int64_t ca_id,
                                     struct store_crl **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if ((s = sq_stmt(tx, SQ_CRL_GET)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, ca_id);
    return sq_get_one(tx, s, sq_read_crl, (void **)out, "crl_get_last");
}

/* ------------------------------------------------------------------ */
/* Root CA key rollovers                                               */

static enum store_rc sq_rollover_insert(STORE_TX *tx,
                                        const struct store_rollover *r,
                                        int64_t *id)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_ROLL_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, r->ca_id);
    sqlite3_bind_blob(s, 2, r->old_sha256, STORE_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, r->new_sha256, STORE_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 4, r->new_with_new.der, r->new_with_new.len,
                        SQLITE_STATIC);
    sqlite3_bind_blob64(s, 5, r->new_with_old.der, r->new_with_old.len,
                        SQLITE_STATIC);
    sqlite3_bind_blob64(s, 6, r->old_with_new.der, r->old_with_new.len,
                        SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, r->created ? r->created : sq_now());
    if ((rc = sq_exec_stmt(tx, s, "rollover_insert")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 0)
        return store_tx_fail(tx, STORE_NOTFOUND, "no CA with id %lld",
                             (long long)r->ca_id);
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(SQ_DB(tx));
    return STORE_OK;
}

static void *sq_read_rollover(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_rollover *r = calloc(1, sizeof(*r));
    size_t l1 = 0, l2 = 0;

    (void)tx;
    if (r == NULL)
        return NULL;
    r->id = sqlite3_column_int64(s, 0);
    r->ca_id = sqlite3_column_int64(s, 1);
    r->created = sqlite3_column_int64(s, 7);
    if (!sq_col_fixed(s, 2, r->old_sha256, STORE_SHA256_LEN, &l1)
        || !sq_col_fixed(s, 3, r->new_sha256, STORE_SHA256_LEN, &l2)
        || !sq_col_blob(s, 4, &r->new_with_new.der, &r->new_with_new.len)
        || !sq_col_blob(s, 5, &r->new_with_old.der, &r->new_with_old.len)
        || !sq_col_blob(s, 6, &r->old_with_new.der, &r->old_with_new.len)) {
        store_rollover_free(r);
        return NULL;
    }
    return r;
}

static enum store_rc sq_rollover_list(STORE_TX *tx, int64_t ca_id,
                                      struct store_rollover ***out, size_t *n)
{
    sqlite3_stmt *s;

    if ((s = sq_stmt(tx, SQ_ROLL_LIST)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, ca_id);
    return sq_collect(tx, s, sq_read_rollover,
                      (sq_freer)store_rollover_free, (void ***)out, n,
                      "rollover_list");
}

/* ------------------------------------------------------------------ */
/* Stored replies                                                      */

static enum store_rc sq_reply_put(STORE_TX *tx, const struct store_txn_reply *r)
{
    sqlite3_stmt *s;

    if ((s = sq_stmt(tx, SQ_REPLY_PUT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_blob(s, 1, r->req_sha256, STORE_SHA256_LEN, SQLITE_STATIC);
    sq_bind_text(s, 2, r->alias);
    sq_bind_blob(s, 3, r->tid, r->tid_len);
    sqlite3_bind_int(s, 4, r->upstream != 0);
    sqlite3_bind_int(s, 5, r->http_status);
    sqlite3_bind_int64(s, 6, r->created ? r->created : sq_now());
    sqlite3_bind_blob64(s, 7, r->reply, r->reply_len, SQLITE_STATIC);
    return sq_exec_stmt(tx, s, "txn_reply_put");
}

static void *sq_read_reply(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_txn_reply *r = calloc(1, sizeof(*r));
    const void *h = sqlite3_column_blob(s, 0);

    if (r == NULL)
        return NULL;
    if (h == NULL || sqlite3_column_bytes(s, 0) != STORE_SHA256_LEN
        || !sq_col_text(s, 1, &r->alias) || !sq_col_blob(s, 2, &r->tid, &r->tid_len)
        || !sq_col_blob(s, 6, &r->reply, &r->reply_len)) {
        store_txn_reply_free(r);
        return NULL;
    }
    memcpy(r->req_sha256, h, STORE_SHA256_LEN);
    r->upstream = sqlite3_column_int(s, 3);
    r->http_status = sqlite3_column_int(s, 4);
    r->created = sqlite3_column_int64(s, 5);
    return r;
}

static enum store_rc sq_reply_get(STORE_TX *tx, const unsigned char *sha,
                                  struct store_txn_reply **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if ((s = sq_stmt(tx, SQ_REPLY_GET)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_blob(s, 1, sha, STORE_SHA256_LEN, SQLITE_STATIC);
    return sq_get_one(tx, s, sq_read_reply, (void **)out, "txn_reply_get");
}

static enum store_rc sq_reply_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if (n != NULL)
        *n = 0;
    if ((s = sq_stmt(tx, SQ_REPLY_PURGE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, before);
    if ((rc = sq_exec_stmt(tx, s, "txn_reply_purge")) == STORE_OK && n != NULL)
        *n = sqlite3_changes(SQ_DB(tx));
    return rc;
}

/* ------------------------------------------------------------------ */
/* Audit primitives                                                    */

static enum store_rc sq_audit_head(STORE_TX *tx, int64_t *seq,
                                   unsigned char hash[STORE_SHA256_LEN])
{
    sqlite3_stmt *s;
    size_t len = 0;
    int r;

    *seq = 0;
    memset(hash, 0, STORE_SHA256_LEN);
    if ((s = sq_stmt(tx, SQ_AUDIT_HEAD)) == NULL)
        return STORE_ERROR;
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        if (!sq_col_fixed(s, 1, hash, STORE_SHA256_LEN, &len)
            || len != STORE_SHA256_LEN) {
            sqlite3_reset(s);
            return store_tx_fail(tx, STORE_ERROR, "audit head malformed");
        }
    }
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return sq_fail(tx, r, "audit_head");
    return STORE_OK;
}

static enum store_rc sq_audit_insert(STORE_TX *tx,
                                     const struct store_audit_row *row)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_AUDIT_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, row->seq);
    sqlite3_bind_int64(s, 2, row->time);
    sq_bind_text(s, 3, row->actor);
    sq_bind_text(s, 4, row->action);
    sq_bind_text(s, 5, row->object);
    sq_bind_text(s, 6, row->details);
    sqlite3_bind_blob(s, 7, row->hash, STORE_SHA256_LEN, SQLITE_STATIC);
    if ((rc = sq_exec_stmt(tx, s, "audit_insert")) != STORE_OK)
        return rc;
    if ((s = sq_stmt(tx, SQ_AUDIT_SET_HEAD)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, row->seq);
    sqlite3_bind_blob(s, 2, row->hash, STORE_SHA256_LEN, SQLITE_STATIC);
    return sq_exec_stmt(tx, s, "audit_set_head");
}

/* Fills |row| with borrowed pointers into the current row of |s|. A hash
 * that is not 32 octets is returned as zeros (it will not verify). */
static void sq_audit_borrow(sqlite3_stmt *s, struct store_audit_row *row)
{
    size_t len = 0;

    row->seq = sqlite3_column_int64(s, 0);
    row->time = sqlite3_column_int64(s, 1);
    row->actor = (char *)sqlite3_column_text(s, 2);
    row->action = (char *)sqlite3_column_text(s, 3);
    row->object = (char *)sqlite3_column_text(s, 4);
    row->details = (char *)sqlite3_column_text(s, 5);
    if (!sq_col_fixed(s, 6, row->hash, STORE_SHA256_LEN, &len)
        || len != STORE_SHA256_LEN)
        memset(row->hash, 0, STORE_SHA256_LEN);
}

static enum store_rc sq_audit_foreach(STORE_TX *tx, store_audit_cb cb,
                                      void *arg)
{
    sqlite3_stmt *s;
    struct store_audit_row row;
    enum store_rc rc = STORE_OK;
    int r;

    if ((s = sq_stmt(tx, SQ_AUDIT_ALL)) == NULL)
        return STORE_ERROR;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        sq_audit_borrow(s, &row);
        if (!cb(arg, &row)) {
            rc = STORE_CONFLICT;
            break;
        }
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = sq_fail(tx, r, "audit_foreach");
    sqlite3_reset(s);
    return rc;
}

static void *sq_read_audit(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_audit_row b;

    sq_audit_borrow(s, &b);
    return store_audit_row_dup(&b);
}

static enum store_rc sq_audit_list(STORE_TX *tx, long limit,
                                   struct store_audit_row ***out, size_t *n)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, SQ_AUDIT_LAST)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, limit > 0 ? limit : -1);
    return sq_collect(tx, s, sq_read_audit, store_audit_row_free_elem,
                      (void ***)out, n, "audit_list");
}

static enum store_rc sq_audit_count(STORE_TX *tx, int64_t *nrows,
                                    int64_t *last)
{
    sqlite3_stmt *s;
    int r;

    *nrows = 0;
    *last = 0;
    if ((s = sq_stmt(tx, SQ_AUDIT_COUNT)) == NULL)
        return STORE_ERROR;
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *nrows = sqlite3_column_int64(s, 0);
        *last = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return r == SQLITE_ROW ? STORE_OK : sq_fail(tx, r, "audit_count");
}

static enum store_rc sq_change_token(void *be, uint64_t *tok);
/* ------------------------------------------------------------------ */
/* Device secrets                                                      */

static void *sq_read_secret(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_device_secret *d = calloc(1, sizeof(*d));

    (void)tx;
    if (d == NULL)
        return NULL;
    d->device_id = sqlite3_column_int64(s, 0);
    if (!sq_col_text(s, 1, &d->ref) || d->ref == NULL
        || !sq_col_blob(s, 2, &d->sealed, &d->sealed_len)) {
        store_device_secret_free(d);
        return NULL;
    }
    d->failures = sqlite3_column_int(s, 3);
    d->locked = sqlite3_column_int(s, 4);
    d->consumed = sqlite3_column_int(s, 5);
    d->created = sqlite3_column_int64(s, 6);
    d->updated = sqlite3_column_int64(s, 7);
    return d;
}

static enum store_rc sq_secret_put(STORE_TX *tx, int64_t device_id,
                                   const char *ref,
                                   const unsigned char *sealed, size_t len)
{
    sqlite3_stmt *s;

    if ((s = sq_stmt(tx, SQ_SECRET_PUT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, device_id);
    sqlite3_bind_text(s, 2, ref, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, sealed, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, sq_now());
    return sq_exec_stmt(tx, s, "device_secret_put");
}

static enum store_rc sq_secret_get(STORE_TX *tx, int64_t device_id,
                                   const char *ref,
                                   struct store_device_secret **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if ((s = sq_stmt(tx, ref != NULL ? SQ_SECRET_GET_REF
                                     : SQ_SECRET_GET_DEV)) == NULL)
        return STORE_ERROR;
    if (ref != NULL)
        sqlite3_bind_text(s, 1, ref, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, device_id);
    return sq_get_one(tx, s, sq_read_secret, (void **)out,
                      "device_secret_get");
}

static enum store_rc sq_secret_fail(STORE_TX *tx, int64_t device_id,
                                    int max, int *failures, int *locked)
{
    sqlite3_stmt *s;
    int r;

    if ((s = sq_stmt(tx, SQ_SECRET_FAIL)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, max);
    sqlite3_bind_int64(s, 2, sq_now());
    sqlite3_bind_int64(s, 3, device_id);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *failures = sqlite3_column_int(s, 0);
        *locked = sqlite3_column_int(s, 1);
        r = sqlite3_step(s);   /* finish the statement */
    } else if (r == SQLITE_DONE) {
        sqlite3_reset(s);
        return STORE_NOTFOUND;
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE)
        return sq_fail(tx, r, "device_secret_fail");
    return STORE_OK;
}

static enum store_rc sq_secret_set(STORE_TX *tx, int64_t device_id, int op)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    s = sq_stmt(tx, op == STORE_SECRET_UNLOCK ? SQ_SECRET_UNLOCK
                                              : SQ_SECRET_CONSUME);
    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, sq_now());
    sqlite3_bind_int64(s, 2, device_id);
    if ((rc = sq_exec_stmt(tx, s, "device_secret_set")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    return op == STORE_SECRET_CONSUME ? STORE_CONFLICT : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* Requests awaiting approval                                          */

static enum store_rc sq_pending_purge(STORE_TX *tx, int64_t before,
                                      int64_t *n)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_PENDING_PURGE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, before);
    if ((rc = sq_exec_stmt(tx, s, "pending_purge")) == STORE_OK && n != NULL)
        *n = sqlite3_changes(SQ_DB(tx));
    return rc;
}

static void *sq_read_pending(STORE_TX *tx, sqlite3_stmt *s)
{
    struct store_pending *p = calloc(1, sizeof(*p));

    (void)tx;
    if (p == NULL)
        return NULL;
    if (!sq_col_fixed(s, 0, p->tid, sizeof(p->tid), &p->tid_len)
        || !sq_col_text(s, 1, &p->alias)
        || !sq_col_text(s, 4, &p->requester)
        || !sq_col_text(s, 6, &p->device)
        || !sq_col_text(s, 7, &p->profile)
        || !sq_col_text(s, 8, &p->subject)
        || !sq_col_blob(s, 9, &p->request, &p->request_len)
        || !sq_col_blob(s, 10, &p->vendor_cert, &p->vendor_cert_len)
        || !sq_col_text(s, 14, &p->decided_by)
        || !sq_col_text(s, 16, &p->reason)) {
        store_pending_free(p);
        return NULL;
    }
    p->type = sqlite3_column_int(s, 2);
    p->state = sqlite3_column_int(s, 3);
    p->device_id = sq_col_id(s, 5);
    p->created = sqlite3_column_int64(s, 11);
    p->expires = sqlite3_column_int64(s, 12);
    p->updated = sqlite3_column_int64(s, 13);
    p->decided_at = sqlite3_column_int64(s, 15);
    return p;
}

static enum store_rc sq_pending_insert(STORE_TX *tx,
                                       const struct store_pending *p)
{
    sqlite3_stmt *s;
    int64_t now = sq_now();
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_PENDING_INSERT)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_blob(s, 1, p->tid, (int)p->tid_len, SQLITE_STATIC);
    sq_bind_text(s, 2, p->alias);
    sqlite3_bind_int(s, 3, p->type);
    sqlite3_bind_int(s, 4, p->state);
    sq_bind_text(s, 5, p->requester);
    sq_bind_id(s, 6, p->device_id);
    sq_bind_text(s, 7, p->device);
    sq_bind_text(s, 8, p->profile);
    sq_bind_text(s, 9, p->subject);
    sq_bind_blob(s, 10, p->request, p->request_len);
    sq_bind_blob(s, 11, p->vendor_cert_len > 0 ? p->vendor_cert : NULL,
                 p->vendor_cert_len);
    sqlite3_bind_int64(s, 12, p->created ? p->created : now);
    sqlite3_bind_int64(s, 13, p->expires);
    sqlite3_bind_int64(s, 14, p->updated ? p->updated : now);
    rc = sq_exec_stmt(tx, s, "pending_insert");
    return rc;
}

static enum store_rc sq_pending_get(STORE_TX *tx, const unsigned char *tid,
                                    size_t tid_len, struct store_pending **out)
{
    sqlite3_stmt *s;

    *out = NULL;
    if ((s = sq_stmt(tx, SQ_PENDING_GET)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_blob(s, 1, tid, (int)tid_len, SQLITE_STATIC);
    return sq_get_one(tx, s, sq_read_pending, (void **)out, "pending_get");
}

static enum store_rc sq_pending_set_state(STORE_TX *tx,
                                          const unsigned char *tid,
                                          size_t tid_len, int from, int to,
                                          const char *by, const char *reason)
{
    sqlite3_stmt *s;
    enum store_rc rc;

    if ((s = sq_stmt(tx, SQ_PENDING_SET_STATE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, to);
    sq_bind_text(s, 2, by);
    sq_bind_text(s, 3, reason);
    sqlite3_bind_int64(s, 4, sq_now());
    sqlite3_bind_blob(s, 5, tid, (int)tid_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, from);
    if ((rc = sq_exec_stmt(tx, s, "pending_set_state")) != STORE_OK)
        return rc;
    if (sqlite3_changes(SQ_DB(tx)) == 1)
        return STORE_OK;
    rc = sq_exists(tx, SQ_PENDING_EXISTS, 0, tid, tid_len);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc sq_pending_list(STORE_TX *tx,
                                     const struct store_pending_filter *f,
                                     struct store_pending ***out, size_t *n)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, SQ_PENDING_LIST)) == NULL)
        return STORE_ERROR;
    sq_bind_text(s, 1, f != NULL ? f->alias : NULL);
    sqlite3_bind_int(s, 2, f != NULL ? f->state : -1);
    sqlite3_bind_int64(s, 3, f != NULL && f->limit > 0 ? f->limit : -1);
    return sq_collect(tx, s, sq_read_pending, (sq_freer)store_pending_free,
                      (void ***)out, n, "pending_list");
}

/* Held requests listed by a statement taking (now, limit). */
static enum store_rc sq_pending_list_due(STORE_TX *tx, enum sq_stmt_id id,
                                         int64_t now, long limit,
                                         struct store_pending ***out,
                                         size_t *n, const char *what)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = sq_stmt(tx, id)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    return sq_collect(tx, s, sq_read_pending, (sq_freer)store_pending_free,
                      (void ***)out, n, what);
}

static enum store_rc sq_pending_list_expired(STORE_TX *tx, int64_t now,
                                             long limit,
                                             struct store_pending ***out,
                                             size_t *n)
{
    return sq_pending_list_due(tx, SQ_PENDING_EXPIRED, now, limit, out, n,
                               "pending_list_expired");
}

static enum store_rc sq_pending_list_stale(STORE_TX *tx, int64_t now,
                                           long limit,
                                           struct store_pending ***out,
                                           size_t *n)
{
    return sq_pending_list_due(tx, SQ_PENDING_STALE, now, limit, out, n,
                               "pending_list_stale");
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .ca_insert = sq_ca_insert,
    .ca_update = sq_ca_update,
    .ca_get = sq_ca_get,
    .ca_list = sq_ca_list,
    .cert_insert = sq_cert_insert,
    .cert_get = sq_cert_get,
    .cert_revoke = sq_cert_revoke,
    .cert_unrevoke = sq_cert_unrevoke,
    .cert_list = sq_cert_list,
    .cert_count = sq_cert_count,
    .cert_foreach_revoked = sq_cert_foreach_revoked,
    .vendor_insert = sq_vendor_insert,
    .vendor_update = sq_vendor_update,
    .vendor_get = sq_vendor_get,
    .vendor_list = sq_vendor_list,
    .vendor_delete = sq_vendor_delete,
    .vendor_set_disabled = sq_vendor_set_disabled,
    .device_insert = sq_device_insert,
    .device_get = sq_device_get,
    .device_set_state = sq_device_set_state,
    .device_delete = sq_device_delete,
    .device_list = sq_device_list,
    .device_count = sq_device_count,
    .device_import = sq_device_import,
    .ra_insert = sq_ra_insert,
    .ra_get = sq_ra_get,
    .ra_list = sq_ra_list,
    .ra_set_disabled = sq_ra_set_disabled,
    .ra_delete = sq_ra_delete,
    .cmp_txn_insert = sq_txn_insert,
    .cmp_txn_get = sq_txn_get,
    .cmp_txn_set_state = sq_txn_set_state,
    .cmp_txn_update = sq_txn_update,
    .cmp_txn_list_expired = sq_txn_list_expired,
    .cmp_txn_list_waiting_device = sq_txn_list_waiting_device,
    .cmp_txn_purge = sq_txn_purge,
    .cmp_txn_count_requester = sq_txn_count_requester,
    .crl_next_number = sq_crl_next_number,
    .crl_put = sq_crl_put,
    .crl_get_last = sq_crl_get_last,
    .txn_reply_put = sq_reply_put,
    .txn_reply_get = sq_reply_get,
    .txn_reply_purge = sq_reply_purge,
    .vendor_crl_put = sq_vendor_crl_put,
    .vendor_crl_list = sq_vendor_crl_list,
    .audit_head = sq_audit_head,
    .audit_insert = sq_audit_insert,
    .audit_foreach = sq_audit_foreach,
    .audit_list = sq_audit_list,
    .audit_count = sq_audit_count,
    .pending_insert = sq_pending_insert,
    .pending_get = sq_pending_get,
    .pending_set_state = sq_pending_set_state,
    .pending_list = sq_pending_list,
    .pending_list_expired = sq_pending_list_expired,
    .pending_list_stale = sq_pending_list_stale,
    .pending_purge = sq_pending_purge,
    .rollover_insert = sq_rollover_insert,
    .rollover_list = sq_rollover_list,
    .change_token = sq_change_token,
    .device_secret_put = sq_secret_put,
    .device_secret_get = sq_secret_get,
    .device_secret_fail = sq_secret_fail,
    .device_secret_set = sq_secret_set,
};

/* PRAGMA data_version on a connection of its own (opened on first use),
 * which changes whenever another connection, of this process (the
 * writer) or another one, commits. */
static enum store_rc sq_change_token(void *be, uint64_t *tok)
{
    struct sq_store *s = be;
    enum store_rc rc = STORE_ERROR;
    int r;

    *tok = 0;
    pthread_mutex_lock(&s->tok_mu);
    if (s->tok_db == NULL) {
        if (sqlite3_open_v2(s->path, &s->tok_db, SQLITE_OPEN_READONLY
                            | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
            || sqlite3_prepare_v3(s->tok_db, "PRAGMA data_version", -1,
                                  SQLITE_PREPARE_PERSISTENT, &s->tok_stmt,
                                  NULL) != SQLITE_OK) {
            log_msg(LOG_ERROR, "store: change token: %s",
                    s->tok_db != NULL ? sqlite3_errmsg(s->tok_db)
                                      : "out of memory");
            sqlite3_finalize(s->tok_stmt);
            sqlite3_close(s->tok_db);
            s->tok_stmt = NULL;
            s->tok_db = NULL;
            goto end;
        }
        sqlite3_busy_timeout(s->tok_db, (int)s->busy_ms);
    }
    r = sqlite3_step(s->tok_stmt);
    if (r == SQLITE_ROW) {
        *tok = (uint64_t)sqlite3_column_int64(s->tok_stmt, 0);
        rc = STORE_OK;
    } else {
        rc = (r & 0xff) == SQLITE_BUSY ? STORE_BUSY : STORE_ERROR;
    }
    sqlite3_reset(s->tok_stmt);
 end:
    pthread_mutex_unlock(&s->tok_mu);
    return rc;
}

/* Statements allowed to scan a table: small tables, full walks and
 * counts that are meant to read everything. */
static int sq_plan_scan_ok(enum sq_stmt_id id)
{
    switch (id) {
    case SQ_CA_LIST: case SQ_VENDOR_LIST: case SQ_RA_LIST:
    case SQ_AUDIT_ALL: case SQ_AUDIT_LAST: case SQ_AUDIT_COUNT:
    case SQ_VCRL_LIST:          /* one row per vendor issuing CA */
    case SQ_PENDING_LIST:       /* an operator's listing, filters optional */
    case SQ_ROLL_LIST:          /* one row per root CA key rollover */
        return 1;
    default:
        return 0;
    }
}

unsigned long store_sqlite_checkpoints(STORE *st)
{
    struct sq_store *s = st->be;
    unsigned long n;

    pthread_mutex_lock(&s->ck.mu);
    n = s->ck.runs;
    pthread_mutex_unlock(&s->ck.mu);
    return n;
}

int store_sqlite_plan_check(STORE *st, char *err, size_t errlen)
{
    STORE_TX *tx = NULL;
    sqlite3_stmt *s = NULL;
    char sql[1024];
    const char *detail;
    int i, ok = 0;

    if (store_begin_read(st, &tx) != STORE_OK) {
        snprintf(err, errlen, "begin failed");
        return 0;
    }
    for (i = 0; i < SQ_NSTMT; i++) {
        if (strncmp(sq_sql[i], "BEGIN", 5) == 0
            || strcmp(sq_sql[i], "COMMIT") == 0
            || strncmp(sq_sql[i], "ROLLBACK", 8) == 0
            || strncmp(sq_sql[i], "SAVEPOINT", 9) == 0
            || strncmp(sq_sql[i], "RELEASE", 7) == 0)
            continue;
        snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sq_sql[i]);
        if (sqlite3_prepare_v2(SQ_DB(tx), sql, -1, &s, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", sq_sql[i],
                     sqlite3_errmsg(SQ_DB(tx)));
            goto end;
        }
        while (sqlite3_step(s) == SQLITE_ROW) {
            detail = (const char *)sqlite3_column_text(s, 3);
            if (detail != NULL && strncmp(detail, "SCAN", 4) == 0
                && strstr(detail, "CONSTANT") == NULL
                && !sq_plan_scan_ok((enum sq_stmt_id)i)) {
                snprintf(err, errlen, "full scan (%s) in: %s", detail,
                         sq_sql[i]);
                goto end;
            }
        }
        sqlite3_finalize(s);
        s = NULL;
    }
    ok = 1;
 end:
    sqlite3_finalize(s);
    store_rollback(tx);
    return ok;
}
