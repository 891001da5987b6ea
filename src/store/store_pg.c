/*
 * PostgreSQL backend of the store (libpq): a pool of connections, one per
 * concurrent transaction, each with its statements prepared once; schema
 * migrations at open under an advisory lock; every record operation.
 */
#include "store/store_int.h"
#include "store/store_pg_schema.h"

#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* Inserts never raise a unique violation (that would abort the whole
 * transaction): ON CONFLICT DO NOTHING, and no row back means "exists".
 * Foreign keys are checked up front (WHERE EXISTS) for the same reason. */
#define PG_STMTS(X)                                                         \
    X(CA_INSERT, "INSERT INTO ca(name,cert,chain,key_ref,signer_cert,"      \
      "signer_key_ref,created) VALUES($1,$2,$3,$4,$5,$6,$7) "               \
      "ON CONFLICT DO NOTHING RETURNING id")                                \
    X(CA_UPDATE, "UPDATE ca SET cert=$1,chain=$2,key_ref=$3,"               \
      "signer_cert=$4,signer_key_ref=$5 WHERE id=$6")                       \
    X(CA_GET_ID, "SELECT " STORE_CA_COLS " FROM ca WHERE id=$1")               \
    X(CA_GET_NAME, "SELECT " STORE_CA_COLS " FROM ca WHERE name=$1")           \
    X(CA_LIST, "SELECT " STORE_CA_COLS " FROM ca ORDER BY id")                 \
    X(CERT_INSERT, "INSERT INTO cert(ca_id,serial,subject,not_before,"      \
      "not_after,der,sha256,status,revoked_at,reason,device_id,profile,"    \
      "created,vendor_sha256,vendor_serial) SELECT $1::bigint,$2::bytea,"   \
      "$3::text,$4::bigint,"                                                \
      "$5::bigint,$6::bytea,$7::bytea,$8::integer,$9::bigint,$10::integer," \
      "$11::bigint,$12::text,$13::bigint,$14::bytea,$15::bytea "            \
      "WHERE EXISTS(SELECT 1 FROM ca WHERE id=$1::bigint) AND ($11::bigint " \
      "IS NULL OR EXISTS(SELECT 1 FROM device WHERE id=$11::bigint)) "      \
      "ON CONFLICT DO NOTHING RETURNING id")                                \
    X(CERT_REFS, "SELECT EXISTS(SELECT 1 FROM ca WHERE id=$1::bigint) AND " \
      "($2::bigint IS NULL OR EXISTS(SELECT 1 FROM device "                 \
      "WHERE id=$2::bigint))")                                              \
    X(CERT_GET_ID, "SELECT " STORE_CERT_COLS " FROM cert WHERE id=$1")         \
    X(CERT_GET_SERIAL, "SELECT " STORE_CERT_COLS                               \
      " FROM cert WHERE ca_id=$1 AND serial=$2")                            \
    X(CERT_REVOKE, "UPDATE cert SET status=1,revoked_at=$1,"               \
      "reason=$2::integer WHERE id=$3 AND (status=0 OR (status=1 "          \
      "AND reason=6 AND coalesce($2::integer,-1)<>6))")                     \
    X(CERT_UNREVOKE, "UPDATE cert SET status=0,revoked_at=NULL,"           \
      "reason=NULL WHERE id=$1 AND status=1 AND reason=6")                  \
    X(CERT_EXISTS, "SELECT 1 FROM cert WHERE id=$1")                        \
    X(CERT_REVOKED, "SELECT serial,revoked_at,reason FROM cert "            \
      "WHERE ca_id=$1 AND status=1 AND not_after>=$2 ORDER BY serial")      \
    X(VENDOR_INSERT, "INSERT INTO vendor(name,certs,created) "              \
      "VALUES($1,$2,$3) ON CONFLICT DO NOTHING RETURNING id")               \
    X(VENDOR_UPDATE, "UPDATE vendor SET certs=$1 WHERE id=$2")              \
    X(VENDOR_SET_DISABLED, "UPDATE vendor SET disabled=$1 WHERE id=$2")     \
    X(VENDOR_GET_ID, "SELECT " STORE_VENDOR_COLS " FROM vendor WHERE id=$1")   \
    X(VENDOR_GET_NAME, "SELECT " STORE_VENDOR_COLS                             \
      " FROM vendor WHERE name=$1")                                         \
    X(VENDOR_LIST, "SELECT " STORE_VENDOR_COLS " FROM vendor ORDER BY name")   \
    X(VENDOR_EXISTS, "SELECT 1 FROM vendor WHERE id=$1")                    \
    X(VENDOR_HAS_DEV, "SELECT 1 FROM device WHERE vendor_id=$1 LIMIT 1")    \
    X(VENDOR_DELETE, "DELETE FROM vendor WHERE id=$1")                      \
    X(DEVICE_INSERT, "INSERT INTO device(vendor_id,identifier,state,"       \
      "cert_id,created,updated) SELECT $1::bigint,$2::text,0,NULL,"         \
      "$3::bigint,$3::bigint WHERE EXISTS(SELECT 1 FROM vendor "            \
      "WHERE id=$1::bigint) ON CONFLICT DO NOTHING RETURNING id")           \
    X(DEVICE_GET_ID, "SELECT " STORE_DEVICE_COLS " FROM device WHERE id=$1")   \
    X(DEVICE_GET_IDENT, "SELECT " STORE_DEVICE_COLS                            \
      " FROM device WHERE vendor_id=$1 AND identifier=$2")                  \
    X(DEVICE_SET_STATE, "UPDATE device SET state=$1,cert_id=CASE "          \
      "WHEN $2::bigint<0 THEN cert_id WHEN $2::bigint=0 THEN NULL "         \
      "ELSE $2::bigint END,updated=$3 WHERE id=$4 AND state=$5")            \
    X(DEVICE_EXISTS, "SELECT 1 FROM device WHERE id=$1")                    \
    X(DEVICE_DELETE, "DELETE FROM device WHERE id=$1")                      \
    X(RA_INSERT, "INSERT INTO ra(name,cert,sha256,created,ops,ra_verified," \
      "disabled,updated) VALUES($1,$2,$3,$4,$5,$6,$7,$4) "                  \
      "ON CONFLICT DO NOTHING RETURNING id")                                \
    X(RA_ALIAS_INSERT, "INSERT INTO ra_alias(ra_id,alias) VALUES($1,$2) "   \
      "ON CONFLICT DO NOTHING")                                             \
    X(RA_PROFILE_INSERT, "INSERT INTO ra_profile(ra_id,profile) "           \
      "VALUES($1,$2) ON CONFLICT DO NOTHING")                               \
    X(RA_PROFILES, "SELECT profile FROM ra_profile WHERE ra_id=$1 "         \
      "ORDER BY profile")                                                   \
    X(RA_SET_DISABLED, "UPDATE ra SET disabled=$1,updated=$2 "              \
      "WHERE id=$3 AND disabled<>$1")                                       \
    X(RA_EXISTS, "SELECT 1 FROM ra WHERE id=$1")                            \
    X(RA_GET_ID, "SELECT " STORE_RA_COLS " FROM ra WHERE id=$1")               \
    X(RA_GET_NAME, "SELECT " STORE_RA_COLS " FROM ra WHERE name=$1")           \
    X(RA_GET_SHA, "SELECT " STORE_RA_COLS " FROM ra WHERE sha256=$1")          \
    X(RA_LIST, "SELECT " STORE_RA_COLS " FROM ra ORDER BY name")               \
    X(RA_ALIASES, "SELECT alias FROM ra_alias WHERE ra_id=$1 ORDER BY alias") \
    X(RA_DELETE, "DELETE FROM ra WHERE id=$1")                              \
    X(TXN_INSERT, "INSERT INTO cmp_txn(" STORE_TXN_COLS ") "                   \
      "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) "             \
      "ON CONFLICT DO NOTHING RETURNING 1")                                 \
    X(TXN_GET, "SELECT " STORE_TXN_COLS " FROM cmp_txn WHERE tid=$1")          \
    X(TXN_EXISTS, "SELECT 1 FROM cmp_txn WHERE tid=$1")                     \
    X(TXN_SET_STATE, "UPDATE cmp_txn SET state=$1,updated=$2 "              \
      "WHERE tid=$3 AND state=$4")                                          \
    X(TXN_UPDATE, "UPDATE cmp_txn SET state=$1,deadline=$2,"                \
      "sender_nonce=$3,cert_id=$4,old_cert_id=$5,device_id=$6,alias=$7,"    \
      "updated=$8 WHERE tid=$9 AND state=$10")                              \
    X(TXN_EXPIRED, "SELECT " STORE_TXN_COLS " FROM cmp_txn WHERE state=0 "     \
      "AND deadline<$1 ORDER BY deadline LIMIT $2")                         \
    X(TXN_WAITING_DEV, "SELECT " STORE_TXN_COLS " FROM cmp_txn WHERE state=0 " \
      "AND device_id=$1 ORDER BY created LIMIT $2")                         \
    X(TXN_PURGE, "DELETE FROM cmp_txn WHERE state IN (1,2,3,4) AND updated<$1")       \
    X(TXN_COUNT_RQ, "SELECT count(*) FILTER (WHERE state IN (0,6)),"        \
      "count(*) FILTER (WHERE created>=$1) FROM cmp_txn "                   \
      "WHERE requester=$2 AND type IN (0,1,2,3)")                           \
    X(CRL_NEXT, "INSERT INTO crl_counter(ca_id,number) SELECT $1::bigint,1 " \
      "WHERE EXISTS(SELECT 1 FROM ca WHERE id=$1::bigint) "                 \
      "ON CONFLICT(ca_id) DO UPDATE SET number=crl_counter.number+1 "       \
      "RETURNING number")                                                   \
    X(CRL_PUT, "INSERT INTO crl(ca_id,number,this_update,next_update,der) " \
      "SELECT $1::bigint,$2::bigint,$3::bigint,$4::bigint,$5::bytea "       \
      "WHERE EXISTS(SELECT 1 FROM ca WHERE id=$1::bigint) "                 \
      "ON CONFLICT(ca_id) DO UPDATE SET number=excluded.number,"            \
      "this_update=excluded.this_update,next_update=excluded.next_update,"  \
      "der=excluded.der RETURNING 1")                                       \
    X(VCRL_PUT, "INSERT INTO vendor_crl(vendor_id,issuer_sha256,"           \
      "this_update,next_update,fetched,source,der) SELECT $1::bigint,"      \
      "$2::bytea,$3::bigint,$4::bigint,$5::bigint,$6::text,$7::bytea "      \
      "WHERE EXISTS(SELECT 1 FROM vendor WHERE id=$1::bigint) "             \
      "ON CONFLICT(vendor_id,issuer_sha256) DO UPDATE SET "                 \
      "this_update=excluded.this_update,next_update=excluded.next_update,"  \
      "fetched=excluded.fetched,source=excluded.source,der=excluded.der "   \
      "RETURNING 1")                                                        \
    X(VCRL_LIST, "SELECT vendor_id,issuer_sha256,this_update,next_update,"  \
      "fetched,source,der FROM vendor_crl WHERE $1::bigint=0 OR "           \
      "vendor_id=$1::bigint ORDER BY vendor_id")                            \
    X(CRL_GET, "SELECT ca_id,number,this_update,next_update,der FROM crl "  \
      "WHERE ca_id=$1")                                                     \
    X(REPLY_PUT, "INSERT INTO cmp_txn_reply(req_sha256,alias,tid,upstream," \
      "http,created,reply) VALUES($1,$2,$3,$4,$5,$6,$7) "                    \
      "ON CONFLICT(req_sha256) DO NOTHING")                                 \
    X(REPLY_GET, "SELECT req_sha256,alias,tid,upstream,http,created,reply " \
      "FROM cmp_txn_reply WHERE req_sha256=$1")                             \
    X(REPLY_PURGE, "DELETE FROM cmp_txn_reply WHERE created<$1")            \
    X(AUDIT_HEAD, "SELECT seq,hash FROM audit_head WHERE id=1")             \
    X(AUDIT_HEAD_LOCK, "SELECT seq,hash FROM audit_head WHERE id=1 "        \
      "FOR UPDATE")                                                         \
    X(AUDIT_INSERT, "INSERT INTO audit(" STORE_AUDIT_COLS ") "                 \
      "VALUES($1,$2,$3,$4,$5,$6,$7)")                                       \
    X(AUDIT_ALL, "SELECT " STORE_AUDIT_COLS " FROM audit ORDER BY seq")        \
    X(AUDIT_LAST, "SELECT * FROM (SELECT " STORE_AUDIT_COLS " FROM audit "     \
      "ORDER BY seq DESC LIMIT $1) t ORDER BY seq")                         \
    X(AUDIT_COUNT, "SELECT count(*),coalesce(max(seq),0) FROM audit")      \
    X(ROLL_INSERT, "INSERT INTO ca_rollover(ca_id,old_sha256,new_sha256,"   \
      "new_with_new,new_with_old,old_with_new,created) SELECT $1::bigint,"  \
      "$2::bytea,$3::bytea,$4::bytea,$5::bytea,$6::bytea,$7::bigint "       \
      "WHERE EXISTS(SELECT 1 FROM ca WHERE id=$1::bigint) RETURNING id")    \
    X(ROLL_LIST, "SELECT id,ca_id,old_sha256,new_sha256,new_with_new,"      \
      "new_with_old,old_with_new,created FROM ca_rollover "                 \
      "WHERE $1::bigint=0 OR ca_id=$1::bigint ORDER BY id")                \
    X(SECRET_PUT, "INSERT INTO device_secret(" STORE_SECRET_COLS ") "        \
      "SELECT $1::bigint,$2::text,$3::bytea,0,0,0,$4::bigint,$4::bigint "   \
      "WHERE EXISTS(SELECT 1 FROM device WHERE id=$1::bigint) "             \
      "ON CONFLICT(device_id) DO UPDATE SET ref=excluded.ref,"              \
      "sealed=excluded.sealed,failures=0,locked=0,consumed=0,"              \
      "updated=excluded.updated RETURNING device_id")                       \
    X(SECRET_GET_REF, "SELECT " STORE_SECRET_COLS                              \
      " FROM device_secret WHERE ref=$1")                                   \
    X(SECRET_GET_DEV, "SELECT " STORE_SECRET_COLS                              \
      " FROM device_secret WHERE device_id=$1")                             \
    X(SECRET_FAIL, "UPDATE device_secret SET failures=failures+1,"          \
      "locked=CASE WHEN failures+1>=$1::bigint THEN 1 ELSE locked END,"     \
      "updated=$2 WHERE device_id=$3 RETURNING failures,locked")            \
    X(SECRET_UNLOCK, "UPDATE device_secret SET failures=0,locked=0,"        \
      "updated=$1 WHERE device_id=$2")                                      \
    X(SECRET_CONSUME, "UPDATE device_secret SET consumed=1,updated=$1 "     \
      "WHERE device_id=$2 AND consumed=0")                                  \
    X(PENDING_INSERT, "INSERT INTO cmp_pending(tid,alias,type,state,"       \
      "requester,device_id,device,profile,subject,request,vendor_cert,"     \
      "created,expires,updated) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11," \
      "$12,$13,$14) ON CONFLICT DO NOTHING RETURNING 1")                    \
    X(PENDING_GET, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "          \
      "WHERE tid=$1")                                                       \
    X(PENDING_EXISTS, "SELECT 1 FROM cmp_pending WHERE tid=$1")             \
    X(PENDING_SET_STATE, "UPDATE cmp_pending SET state=$1,"                 \
      "decided_by=coalesce($2::text,decided_by),"                           \
      "decided_at=CASE WHEN $2::text IS NULL THEN decided_at ELSE $4 END,"  \
      "reason=CASE WHEN $2::text IS NULL THEN reason ELSE $3::text END,"    \
      "updated=$4 WHERE tid=$5 AND state=$6")                               \
    X(PENDING_LIST, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "         \
      "WHERE ($1::text IS NULL OR alias=$1::text) "                         \
      "AND ($2::integer<0 OR state=$2::integer) "                           \
      "ORDER BY created,tid LIMIT $3")                                      \
    X(PENDING_EXPIRED, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "      \
      "WHERE state=0 AND expires<$1 ORDER BY expires LIMIT $2")             \
    X(PENDING_STALE, "SELECT " STORE_PENDING_COLS " FROM cmp_pending "        \
      "WHERE state IN (1,2) AND decided_at<$1 "                             \
      "AND decided_at+(expires-created)<$1 AND EXISTS(SELECT 1 FROM "       \
      "cmp_txn t WHERE t.tid=cmp_pending.tid AND t.state=6) "               \
      "ORDER BY decided_at LIMIT $2")                                       \
    X(PENDING_PURGE, "DELETE FROM cmp_pending WHERE updated<$1 "            \
      "AND state IN (2,3,4)")

#define PG_ENUM(n, s) PG_##n,
#define PG_TEXT(n, s) s,
enum pg_stmt_id { PG_STMTS(PG_ENUM) PG_NSTMT };
static const char *const pg_sql[] = { PG_STMTS(PG_TEXT) };

#define PG_MAXP 16             /* most parameters of one statement */
#define PG_POOL_MAX 32         /* connections per STORE */
#define PG_MIGRATE_LOCK 0x636d706361LL /* advisory lock key ("cmpca") */

struct pg_conn {
    PGconn *db;
    unsigned char prepared[PG_NSTMT];
    /* the audit head as the current write transaction leaves it; valid
     * while the tx has PG_TXF_HEAD_LOCKED (see pg_audit_head) */
    int64_t head_seq;
    unsigned char head_hash[STORE_SHA256_LEN];
    unsigned int ncursor;          /* names the cursors of pg_stream */
    struct pg_conn *next;
};

/* tx->be_flags: the tx holds the audit head row lock and conn->head_*
 * are current; the tx appended rows and the head row must be written at
 * commit */
#define PG_TXF_HEAD_LOCKED 1
#define PG_TXF_HEAD_DIRTY 2
#define PG_FETCH_ROWS 1000     /* rows per FETCH of a streamed query */

struct pg_store {
    char *conninfo;
    char password[SECRET_MAX + 1];
    int has_password;
    long busy_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pg_conn *idle;          /* connections not held by a tx */
    int nconn;                     /* open connections (idle + held) */
    pthread_t *writers;            /* threads holding a write tx */
    size_t nwriters, capwriters;
};

struct pg_params {
    int n;
    const char *val[PG_MAXP];
    int len[PG_MAXP];
    int fmt[PG_MAXP];
    char num[PG_MAXP][24];
};

#define PG_DB(tx) (((struct pg_conn *)(tx)->conn)->db)

static int64_t pg_now(void)
{
    return (int64_t)time(NULL);
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */

static void pp_null(struct pg_params *p)
{
    p->val[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void pp_i64(struct pg_params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
    p->val[p->n] = p->num[p->n];
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

/* An id, with 0 (or less) meaning NULL. */
static void pp_id(struct pg_params *p, int64_t id)
{
    if (id <= 0)
        pp_null(p);
    else
        pp_i64(p, id);
}

/* A NUL-terminated text; NULL binds NULL. */
static void pp_text(struct pg_params *p, const char *s)
{
    if (s == NULL) {
        pp_null(p);
        return;
    }
    p->val[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

/* Bytes (bytea, or text of a known length) in binary format; a NULL
 * pointer binds NULL. */
static void pp_bytes(struct pg_params *p, const void *b, size_t len)
{
    if (b == NULL) {
        pp_null(p);
        return;
    }
    p->val[p->n] = b;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

/* ------------------------------------------------------------------ */
/* Results (binary format)                                             */

/* An integer column of any width (int2/4/8, bool); NULL gives |dflt|. */
static int64_t pg_int(const PGresult *r, int row, int col, int64_t dflt)
{
    const unsigned char *v;
    uint64_t x = 0;
    int i, n;

    if (PQgetisnull(r, row, col))
        return dflt;
    v = (const unsigned char *)PQgetvalue(r, row, col);
    n = PQgetlength(r, row, col);
    if (n <= 0 || n > 8)
        return dflt;
    for (i = 0; i < n; i++)
        x = (x << 8) | v[i];
    if (n < 8 && (v[0] & 0x80) != 0)
        x |= ~(uint64_t)0 << (8 * n);
    return (int64_t)x;
}

/* An id column: NULL is 0. */
static int64_t pg_id(const PGresult *r, int row, int col)
{
    return pg_int(r, row, col, 0);
}

/* Copies a text column (NULL stays NULL); returns 1 unless out of memory. */
static int pg_text(const PGresult *r, int row, int col, char **out)
{
    *out = NULL;
    if (PQgetisnull(r, row, col))
        return 1;
    return (*out = strdup(PQgetvalue(r, row, col))) != NULL;
}

/* Copies a bytea column (NULL or empty: NULL, 0); 1 unless out of memory. */
static int pg_bytes(const PGresult *r, int row, int col, unsigned char **out,
                    size_t *len)
{
    int n = PQgetlength(r, row, col);

    *out = NULL;
    *len = 0;
    if (PQgetisnull(r, row, col) || n <= 0)
        return 1;
    if ((*out = malloc((size_t)n)) == NULL)
        return 0;
    memcpy(*out, PQgetvalue(r, row, col), (size_t)n);
    *len = (size_t)n;
    return 1;
}

/* Copies a bytea column into a fixed buffer; 1 if it fits. */
static int pg_fixed(const PGresult *r, int row, int col, unsigned char *buf,
                    size_t max, size_t *len)
{
    int n = PQgetlength(r, row, col);

    *len = 0;
    if (PQgetisnull(r, row, col) || n <= 0)
        return 1;
    if ((size_t)n > max)
        return 0;
    memcpy(buf, PQgetvalue(r, row, col), (size_t)n);
    *len = (size_t)n;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Errors and statements                                               */

/* Maps a failed result (or a dead connection) to a store code and records
 * the message on |tx|. */
static enum store_rc pg_fail(STORE_TX *tx, const PGresult *res,
                             const char *what)
{
    const char *state = res != NULL
        ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
    enum store_rc rc = STORE_ERROR;
    size_t l;
    char buf[200];

    if (msg == NULL || *msg == '\0')
        msg = tx->conn != NULL ? PQerrorMessage(PG_DB(tx)) : "no connection";
    snprintf(buf, sizeof(buf), "%s", msg);
    l = strlen(buf);
    while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == ' '))
        buf[--l] = '\0';
    if (state != NULL) {
        if (strcmp(state, "23505") == 0)
            rc = STORE_EXISTS;
        else if (strcmp(state, "23503") == 0)
            rc = STORE_NOTFOUND;
        else if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0
                 || strcmp(state, "55P03") == 0)
            rc = STORE_BUSY;    /* deadlock, serialisation, lock_timeout */
    }
    return store_tx_fail(tx, rc, "%s: %s%s%s", what, buf,
                         state != NULL ? " / SQLSTATE " : "",
                         state != NULL ? state : "");
}

/* Fault injection for tests (store_pg_fault): fail the Nth statement. */
static long pg_fault_at, pg_fault_calls;

void store_pg_fault(long n)
{
    __atomic_store_n(&pg_fault_calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pg_fault_at, n, __ATOMIC_SEQ_CST);
}

/* Returns 1 (message recorded) if this statement is to fail. */
static int pg_fault(STORE_TX *tx)
{
    long at = __atomic_load_n(&pg_fault_at, __ATOMIC_RELAXED);

    if (at > 0 && __atomic_add_fetch(&pg_fault_calls, 1, __ATOMIC_SEQ_CST)
        == at) {
        store_tx_fail(tx, STORE_ERROR, "injected fault");
        return 1;
    }
    return 0;
}

/* Prepares statement |id| on the tx's connection unless done; 1 on
 * success. */
static int pg_prepare(STORE_TX *tx, enum pg_stmt_id id)
{
    struct pg_conn *c = tx->conn;
    PGresult *res;
    char name[16];
    int ok;

    if (c->prepared[id])
        return 1;
    snprintf(name, sizeof(name), "s%d", (int)id);
    res = PQprepare(c->db, name, pg_sql[id], 0, NULL);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        pg_fail(tx, res, "prepare");
    PQclear(res);
    if (ok)
        c->prepared[id] = 1;
    return ok;
}


/* Returns |res| if its statement succeeded, else NULL after recording
 * why (*rc set either way). */
static PGresult *pg_checked(STORE_TX *tx, PGresult *res, const char *what,
                            enum store_rc *rc)
{
    ExecStatusType s = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        *rc = pg_fail(tx, res, what);
        PQclear(res);
        return NULL;
    }
    *rc = STORE_OK;
    return res;
}
/* Runs prepared statement |id| with |p| (binary results). Returns the
 * result (PQclear it), or NULL with *rc set and the message recorded. */
static PGresult *pg_run(STORE_TX *tx, enum pg_stmt_id id,
                        const struct pg_params *p, const char *what,
                        enum store_rc *rc)
{
    char name[16];

    *rc = STORE_ERROR;
    if (pg_fault(tx) || !pg_prepare(tx, id))
        return NULL;
    snprintf(name, sizeof(name), "s%d", (int)id);
    return pg_checked(tx, PQexecPrepared(PG_DB(tx), name,
                                         p != NULL ? p->n : 0,
                                         p != NULL ? p->val : NULL,
                                         p != NULL ? p->len : NULL,
                                         p != NULL ? p->fmt : NULL, 1),
                      what, rc);
}

/* Runs |sql| (parameters |p|, may be NULL) with binary results, without
 * fault injection (see pg_run_sql); returns the result or NULL (*rc set,
 * message recorded). */
static PGresult *pg_run_text(STORE_TX *tx, const char *sql,
                             const struct pg_params *p, const char *what,
                             enum store_rc *rc)
{
    return pg_checked(tx, PQexecParams(PG_DB(tx), sql, p != NULL ? p->n : 0,
                                       NULL, p != NULL ? p->val : NULL,
                                       p != NULL ? p->len : NULL,
                                       p != NULL ? p->fmt : NULL, 1),
                      what, rc);
}

/* Like pg_run for SQL built at run time (filters). */
static PGresult *pg_run_sql(STORE_TX *tx, const char *sql,
                            const struct pg_params *p, const char *what,
                            enum store_rc *rc)
{
    *rc = STORE_ERROR;
    if (pg_fault(tx))
        return NULL;
    return pg_run_text(tx, sql, p, what, rc);
}

/* Runs a statement for its effect; *changed (may be NULL) gets the number
 * of rows affected or returned. */
static enum store_rc pg_exec(STORE_TX *tx, enum pg_stmt_id id,
                             const struct pg_params *p, const char *what,
                             long *changed)
{
    enum store_rc rc;
    PGresult *res = pg_run(tx, id, p, what, &rc);
    const char *t;

    if (res == NULL)
        return rc;
    if (changed != NULL) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            *changed = PQntuples(res);
        else
            *changed = (t = PQcmdTuples(res)) != NULL && *t ? atol(t) : 0;
    }
    PQclear(res);
    return STORE_OK;
}

/* Runs a utility command (BEGIN, COMMIT, ...) in the simple protocol;
 * returns the result or NULL (message recorded). */
static PGresult *pg_simple(STORE_TX *tx, const char *sql, const char *what)
{
    PGresult *res;

    if (pg_fault(tx))
        return NULL;
    res = PQexec(PG_DB(tx), sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_fail(tx, res, what);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Returns STORE_OK if the single-parameter lookup |id| finds a row, else
 * STORE_NOTFOUND (or an error). */
static enum store_rc pg_exists(STORE_TX *tx, enum pg_stmt_id id,
                               int64_t key, const unsigned char *blob,
                               size_t blen)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    if (blob != NULL)
        pp_bytes(&p, blob, blen);
    else
        pp_i64(&p, key);
    if ((rc = pg_exec(tx, id, &p, "exists", &n)) != STORE_OK)
        return rc;
    return n > 0 ? STORE_OK : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* Connections, pool, open/close                                       */

/* libpq notices (e.g. "relation exists, skipping") go to the debug log. */
static void pg_notice(void *arg, const char *msg)
{
    log_msg(LOG_DEBUG, "store: postgresql: %s", msg);
}

static void pg_conn_close(struct pg_conn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->db);
    free(c);
}

/* Sets a fresh session up: notices to the log, lock_timeout, UTC. */
static int pg_conn_setup(struct pg_store *s, struct pg_conn *c, char *err,
                         size_t errlen)
{
    PGresult *res;
    char sql[96];
    int ok;

    memset(c->prepared, 0, sizeof(c->prepared));
    PQsetNoticeProcessor(c->db, pg_notice, NULL);
    snprintf(sql, sizeof(sql), "SET lock_timeout = %ld; SET TimeZone = 'UTC'",
             s->busy_ms);
    res = PQexec(c->db, sql);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(c->db));
    PQclear(res);
    return ok;
}

/* Connects and sets the session up. */
static enum store_rc pg_conn_open(struct pg_store *s, struct pg_conn **out,
                                  char *err, size_t errlen)
{
    const char *keys[5], *vals[5];
    struct pg_conn *c;
    int k = 0;
    enum store_rc rc = STORE_ERROR;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    keys[k] = "dbname";
    vals[k++] = s->conninfo;
    if (s->has_password) {
        keys[k] = "password";
        vals[k++] = s->password;
    }
    keys[k] = "fallback_application_name";
    vals[k++] = "cmpca";
    keys[k] = NULL;
    vals[k] = NULL;
    c->db = PQconnectdbParams(keys, vals, 1);
    if (c->db == NULL || PQstatus(c->db) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s",
                 c->db != NULL ? PQerrorMessage(c->db) : "out of memory");
        if (strlen(err) > 0 && err[strlen(err) - 1] == '\n')
            err[strlen(err) - 1] = '\0';
        goto end;
    }
    if (!pg_conn_setup(s, c, err, errlen))
        goto end;
    *out = c;
    c = NULL;
    rc = STORE_OK;
 end:
    pg_conn_close(c);
    return rc;
}

/* Runs |sql| (simple protocol, no rows expected) on a bare connection. */
static int pg_exec_raw(PGconn *db, const char *sql, char *err, size_t errlen);

/* pg_exec_raw as a store_exec_fn for store_migrate_steps. */
static int pg_exec_fn(void *db, const char *sql, char *err, size_t errlen)
{
    return pg_exec_raw(db, sql, err, errlen);
}

static int pg_exec_raw(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(db, sql);
    int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok)
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(db));
    PQclear(res);
    return ok;
}

/* Brings the schema up to date in one transaction under an advisory lock
 * (several processes may open the database at once). */
static enum store_rc pg_migrate(struct pg_conn *c, int *version, char *err,
                                size_t errlen)
{
    const int latest = (int)(sizeof(store_pg_migrations)
                             / sizeof(store_pg_migrations[0]));
    PGresult *res = NULL;
    char sql[128];
    int v = 0;
    enum store_rc rc = STORE_ERROR;

    if (!pg_exec_raw(c->db, "BEGIN", err, errlen))
        return rc;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
             PG_MIGRATE_LOCK);
    res = PQexec(c->db, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(c->db));
        goto end;
    }
    PQclear(res);
    res = NULL;
    if (!pg_exec_raw(c->db, "CREATE TABLE IF NOT EXISTS schema_version "
                     "(version integer NOT NULL)", err, errlen))
        goto end;
    res = PQexec(c->db, "SELECT coalesce(max(version),0) FROM schema_version");
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1) {
        snprintf(err, errlen, "schema_version: %s", PQerrorMessage(c->db));
        goto end;
    }
    v = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    if (v > latest) {
        store_schema_too_new(v, latest, err, errlen);
        goto end;
    }
    if (!store_migrate_steps(v, latest, store_pg_migrations, pg_exec_fn,
                             c->db, err, errlen)
        || !pg_exec_raw(c->db, "COMMIT", err, errlen))
        goto end;
    *version = latest;
    rc = STORE_OK;
 end:
    PQclear(res);
    if (rc != STORE_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE)
        PQclear(PQexec(c->db, "ROLLBACK"));
    return rc;
}

static void pg_close(void *be)
{
    struct pg_store *s = be;
    struct pg_conn *c;

    if (s == NULL)
        return;
    while ((c = s->idle) != NULL) {
        s->idle = c->next;
        pg_conn_close(c);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    secret_wipe(s->password, sizeof(s->password));
    free(s->writers);
    free(s->conninfo);
    free(s);
}

/* Refuses a conninfo that carries a password (it belongs in a secret). */
static int pg_conninfo_ok(const char *conninfo, char *err, size_t errlen)
{
    PQconninfoOption *opts, *o;
    char *msg = NULL;
    int ok = 1;

    if ((opts = PQconninfoParse(conninfo, &msg)) == NULL) {
        snprintf(err, errlen, "bad conninfo: %s",
                 msg != NULL ? msg : "out of memory");
        PQfreemem(msg);
        return 0;
    }
    for (o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL
            && *o->val != '\0') {
            snprintf(err, errlen, "conninfo must not contain the password "
                     "(use password = file:PATH or env:VAR)");
            ok = 0;
        }
    PQconninfoFree(opts);
    return ok;
}

static enum store_rc pg_open(const struct store_conf *sc, void **be,
                             int *schema_version, char *err, size_t errlen)
{
    struct pg_store *s;
    struct pg_conn *c = NULL;
    enum store_rc rc = STORE_ERROR;

    *be = NULL;
    if (!pg_conninfo_ok(sc->conninfo, err, errlen))
        return STORE_ERROR;
    if ((s = calloc(1, sizeof(*s))) == NULL
        || (s->conninfo = strdup(sc->conninfo)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->busy_ms = sc->busy_timeout_ms > 0 ? sc->busy_timeout_ms : 5000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (sc->password != NULL) {
        /* kept for the connections the pool opens later; wiped at close */
        if (strncmp(sc->password, "file:", 5) != 0
            && strncmp(sc->password, "env:", 4) != 0) {
            snprintf(err, errlen, "store password must be file:PATH or "
                     "env:VAR");
            goto end;
        }
        if (!secret_read(sc->password, "PostgreSQL password", s->password,
                         sizeof(s->password), err, errlen))
            goto end;
        s->has_password = 1;
    }
    if ((rc = pg_conn_open(s, &c, err, errlen)) != STORE_OK)
        goto end;
    if ((rc = pg_migrate(c, schema_version, err, errlen)) != STORE_OK)
        goto end;
    s->idle = c;
    s->nconn = 1;
    c = NULL;
    *be = s;
    s = NULL;
 end:
    pg_conn_close(c);
    pg_close(s);
    return rc;
}

/* Takes a connection from the pool (opening one if none is idle and the
 * pool is not full; else waits up to busy_timeout). */
static enum store_rc pg_acquire(STORE_TX *tx)
{
    struct pg_store *s = tx->st->be;
    struct pg_conn *c = NULL;
    struct timespec dl;
    char err[256];
    enum store_rc rc;
    int r = 0;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += s->busy_ms / 1000;
    dl.tv_nsec += (s->busy_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->idle == NULL && s->nconn >= PG_POOL_MAX && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    if ((c = s->idle) != NULL) {
        s->idle = c->next;
    } else if (s->nconn < PG_POOL_MAX) {
        s->nconn++;              /* reserve the slot, connect unlocked */
    } else {
        pthread_mutex_unlock(&s->mu);
        return store_tx_fail(tx, STORE_BUSY, "all %d connections busy",
                             PG_POOL_MAX);
    }
    pthread_mutex_unlock(&s->mu);
    if (c == NULL) {
        if ((rc = pg_conn_open(s, &c, err, sizeof(err))) != STORE_OK) {
            pthread_mutex_lock(&s->mu);
            s->nconn--;
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return store_tx_fail(tx, rc, "%s", err);
        }
    } else if (PQstatus(c->db) != CONNECTION_OK) {
        /* the server went away meanwhile: reconnect once */
        PQreset(c->db);
        if (PQstatus(c->db) != CONNECTION_OK
            || !pg_conn_setup(s, c, err, sizeof(err))) {
            rc = store_tx_fail(tx, STORE_ERROR, "postgresql: %s",
                               PQerrorMessage(c->db));
            pg_conn_close(c);
            pthread_mutex_lock(&s->mu);
            s->nconn--;
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
    }
    c->next = NULL;
    tx->conn = c;
    return STORE_OK;
}

/* Gives the tx's connection back (rolled back and idle), or closes it if
 * it is broken or still inside a transaction. Also forgets the writer. */
static void pg_release(STORE_TX *tx)
{
    struct pg_store *s = tx->st->be;
    struct pg_conn *c = tx->conn;
    pthread_t self = pthread_self();
    size_t i;

    tx->conn = NULL;
    if (c != NULL && PQstatus(c->db) == CONNECTION_OK
        && PQtransactionStatus(c->db) != PQTRANS_IDLE)
        PQclear(PQexec(c->db, "ROLLBACK"));
    if (c != NULL && (PQstatus(c->db) != CONNECTION_OK
                      || PQtransactionStatus(c->db) != PQTRANS_IDLE)) {
        pg_conn_close(c);
        c = NULL;
        pthread_mutex_lock(&s->mu);
        s->nconn--;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    if (c != NULL) {
        c->next = s->idle;
        s->idle = c;
    }
    if (tx->write) {
        for (i = 0; i < s->nwriters; i++)
            if (pthread_equal(s->writers[i], self)) {
                s->writers[i] = s->writers[--s->nwriters];
                break;
            }
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Records the calling thread as holding a write transaction; refuses a
 * second one (it could wait for its own locks forever). */
static enum store_rc pg_writer_add(STORE_TX *tx)
{
    struct pg_store *s = tx->st->be;
    pthread_t self = pthread_self(), *nv;
    size_t i;
    enum store_rc rc = STORE_OK;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nwriters; i++)
        if (pthread_equal(s->writers[i], self)) {
            rc = store_tx_fail(tx, STORE_ERROR, "this thread holds a write "
                               "transaction already");
            goto end;
        }
    if (s->nwriters == s->capwriters) {
        size_t cap = s->capwriters ? s->capwriters * 2 : 8;

        if ((nv = realloc(s->writers, cap * sizeof(*nv))) == NULL) {
            rc = store_tx_fail(tx, STORE_ERROR, "out of memory");
            goto end;
        }
        s->writers = nv;
        s->capwriters = cap;
    }
    s->writers[s->nwriters++] = self;
 end:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static enum store_rc pg_begin(STORE_TX *tx)
{
    /* writers: READ COMMITTED with conditional UPDATEs and the audit head
     * locked FOR UPDATE; readers: one consistent snapshot */
    const char *sql = tx->write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
        : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    enum store_rc rc;
    PGresult *res;
    char err[256];

    if (tx->write && (rc = pg_writer_add(tx)) != STORE_OK)
        return rc;
    if ((rc = pg_acquire(tx)) != STORE_OK) {
        pg_release(tx);
        return rc;
    }
    res = pg_simple(tx, sql, "begin");
    if (res == NULL && PQstatus(PG_DB(tx)) == CONNECTION_BAD) {
        /* an idle pooled connection the server closed (restart, idle
         * timeout): nothing was sent yet, reconnect and try once more */
        PQreset(PG_DB(tx));
        if (PQstatus(PG_DB(tx)) == CONNECTION_OK
            && pg_conn_setup(tx->st->be, tx->conn, err, sizeof(err)))
            res = pg_simple(tx, sql, "begin");
    }
    if (res == NULL) {
        rc = STORE_ERROR;
        pg_release(tx);
        return rc;
    }
    PQclear(res);
    return STORE_OK;
}

/* Writes into |sql| the statement that moves the audit head row to |seq|,
 * |hash| (literals: both are ours, the hash goes in as hex), then
 * COMMIT. */
static void pg_head_commit_sql(char *sql, size_t len, int64_t seq,
                               const unsigned char hash[STORE_SHA256_LEN])
{
    char hex[2 * STORE_SHA256_LEN + 1];
    size_t i;

    for (i = 0; i < STORE_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    snprintf(sql, len, "INSERT INTO audit_head(id,seq,hash) VALUES(1,%lld,"
             "decode('%s','hex')) ON CONFLICT(id) DO UPDATE SET "
             "seq=excluded.seq,hash=excluded.hash;COMMIT", (long long)seq,
             hex);
}

static enum store_rc pg_commit(STORE_TX *tx)
{
    struct pg_conn *c = tx->conn;
    PGresult *res;
    enum store_rc rc = STORE_OK;
    char sql[320];

    /* audit rows were appended: the head row (locked since the first
     * append) is written once, in the COMMIT's round trip; if it fails,
     * the server skips the COMMIT and the release rolls back. A failed
     * transaction gets the bare COMMIT (the server answers ROLLBACK). */
    if ((tx->be_flags & PG_TXF_HEAD_DIRTY) != 0
        && PQtransactionStatus(c->db) == PQTRANS_INTRANS)
        pg_head_commit_sql(sql, sizeof(sql), c->head_seq, c->head_hash);
    else
        snprintf(sql, sizeof(sql), "COMMIT");
    res = pg_simple(tx, sql, "commit");
    if (res == NULL) {
        rc = STORE_ERROR;
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        /* a statement had failed: the server rolled everything back */
        rc = store_tx_fail(tx, STORE_ERROR, "commit: transaction had "
                           "failed and was rolled back");
    }
    PQclear(res);
    if (!tx->write)
        rc = STORE_OK;          /* nothing to make durable */
    pg_release(tx);
    return rc;
}

static void pg_rollback(STORE_TX *tx)
{
    if (tx->conn != NULL && PQstatus(PG_DB(tx)) == CONNECTION_OK)
        PQclear(PQexec(PG_DB(tx), "ROLLBACK"));
    pg_release(tx);
}

/* ------------------------------------------------------------------ */
/* Generic row collection                                              */

typedef void *(*pg_reader)(STORE_TX *tx, const PGresult *r, int row);
typedef void (*pg_freer)(void *p);

/* Reads the first row of |res| through |rd| (NOTFOUND if none); clears
 * |res|. */
static enum store_rc pg_get_one(STORE_TX *tx, PGresult *res, pg_reader rd,
                                void **out, const char *what)
{
    enum store_rc rc = STORE_OK;

    *out = NULL;
    if (PQntuples(res) == 0)
        rc = STORE_NOTFOUND;
    else if ((*out = rd(tx, res, 0)) == NULL)
        rc = store_tx_fail(tx, STORE_ERROR, "%s: out of memory", what);
    PQclear(res);
    return rc;
}

/* Reads every row of |res| into a malloc'ed array; clears |res|. */
static enum store_rc pg_collect(STORE_TX *tx, PGresult *res, pg_reader rd,
                                pg_freer fr, void ***out, size_t *n,
                                const char *what)
{
    int rows = PQntuples(res), i;
    void **v = NULL;
    size_t cnt = 0, k;
    enum store_rc rc = STORE_OK;

    *out = NULL;
    *n = 0;
    if (rows > 0 && (v = calloc((size_t)rows, sizeof(*v))) == NULL) {
        rc = store_tx_fail(tx, STORE_ERROR, "%s: out of memory", what);
        goto end;
    }
    for (i = 0; i < rows; i++) {
        if ((v[cnt] = rd(tx, res, i)) == NULL) {
            rc = store_tx_fail(tx, STORE_ERROR, "%s: out of memory", what);
            goto end;
        }
        cnt++;
    }
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
 end:
    for (k = 0; k < cnt; k++)
        fr(v[k]);
    free(v);
    PQclear(res);
    return rc;
}

/* Runs statement |id| and reads one row. */
static enum store_rc pg_get(STORE_TX *tx, enum pg_stmt_id id,
                            const struct pg_params *p, pg_reader rd,
                            void **out, const char *what)
{
    enum store_rc rc;
    PGresult *res;

    *out = NULL;
    if ((res = pg_run(tx, id, p, what, &rc)) == NULL)
        return rc;
    return pg_get_one(tx, res, rd, out, what);
}

/* Runs statement |id| and reads all rows. */
static enum store_rc pg_list(STORE_TX *tx, enum pg_stmt_id id,
                             const struct pg_params *p, pg_reader rd,
                             pg_freer fr, void ***out, size_t *n,
                             const char *what)
{
    enum store_rc rc;
    PGresult *res;

    *out = NULL;
    *n = 0;
    if ((res = pg_run(tx, id, p, what, &rc)) == NULL)
        return rc;
    return pg_collect(tx, res, rd, fr, out, n, what);
}

/* Runs an INSERT ... RETURNING id: STORE_OK with *id, or STORE_EXISTS
 * when no row came back (ON CONFLICT DO NOTHING, or a WHERE EXISTS guard
 * that failed: the caller tells which). */
static enum store_rc pg_insert_id(STORE_TX *tx, enum pg_stmt_id stmt,
                                  const struct pg_params *p, int64_t *id,
                                  const char *what)
{
    enum store_rc rc;
    PGresult *res;

    if (id != NULL)
        *id = 0;
    if ((res = pg_run(tx, stmt, p, what, &rc)) == NULL)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return store_tx_fail(tx, STORE_EXISTS, "%s: exists", what);
    }
    if (id != NULL)
        *id = pg_id(res, 0, 0);
    PQclear(res);
    return STORE_OK;
}

/* Called for row |row| of |r| by pg_stream: return 1 to go on, 0 to stop. */
typedef int (*pg_row_fn)(void *arg, const PGresult *r, int row);

/*
 * Streams the rows of statement |id| to |each| through a cursor of the
 * transaction, PG_FETCH_ROWS rows per round trip (memory stays bounded
 * whatever the table size). When |each| stops, the cursor is closed at
 * once: the server computes no further rows and the transaction stays
 * usable. Returns STORE_CONFLICT if |each| stopped.
 */
static enum store_rc pg_stream(STORE_TX *tx, enum pg_stmt_id id,
                               const struct pg_params *p, pg_row_fn each,
                               void *arg, const char *what)
{
    struct pg_conn *c = tx->conn;
    PGresult *res = NULL;
    char cur[24], sql[512];
    enum store_rc rc = STORE_ERROR;
    int i, n, stopped = 0, open = 0;

    if (pg_fault(tx))
        return STORE_ERROR;
    snprintf(cur, sizeof(cur), "cmpca_c%u", ++c->ncursor);
    if ((size_t)snprintf(sql, sizeof(sql), "DECLARE %s NO SCROLL CURSOR FOR "
                         "%s", cur, pg_sql[id]) >= sizeof(sql))
        return store_tx_fail(tx, STORE_ERROR, "%s: statement too long",
                             what);
    if ((res = pg_run_text(tx, sql, p, what, &rc)) == NULL)
        goto end;
    PQclear(res);
    open = 1;
    snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM %s", PG_FETCH_ROWS,
             cur);
    do {
        if ((res = pg_run_text(tx, sql, NULL, what, &rc)) == NULL)
            goto end;
        n = PQntuples(res);
        for (i = 0; i < n && !stopped; i++)
            stopped = !each(arg, res, i);
        PQclear(res);
    } while (!stopped && n == PG_FETCH_ROWS);
    rc = stopped ? STORE_CONFLICT : STORE_OK;
 end:
    if (open && PQtransactionStatus(PG_DB(tx)) == PQTRANS_INTRANS) {
        /* frees the portal now rather than at the end of the transaction
         * (a transaction may stream many times) */
        enum store_rc crc;

        snprintf(sql, sizeof(sql), "CLOSE %s", cur);
        if ((res = pg_run_text(tx, sql, NULL, what, &crc)) == NULL)
            rc = rc == STORE_OK || rc == STORE_CONFLICT ? crc : rc;
        PQclear(res);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* CAs                                                                 */

static void *pg_read_ca(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_ca *ca = calloc(1, sizeof(*ca));

    if (ca == NULL)
        return NULL;
    ca->id = pg_id(r, i, 0);
    if (!pg_text(r, i, 1, &ca->name)
        || !pg_bytes(r, i, 2, &ca->cert_der, &ca->cert_len)
        || !store_der_split((const unsigned char *)PQgetvalue(r, i, 3),
                            (size_t)PQgetlength(r, i, 3), &ca->chain,
                            &ca->nchain)
        || !pg_text(r, i, 4, &ca->key_ref)
        || !pg_bytes(r, i, 5, &ca->signer_cert_der, &ca->signer_cert_len)
        || !pg_text(r, i, 6, &ca->signer_key_ref)) {
        store_ca_free(ca);
        return NULL;
    }
    ca->created = pg_id(r, i, 7);
    return ca;
}

/* Binds cert, chain, key_ref, signer_cert, signer_key_ref. */
static void pg_bind_ca(struct pg_params *p, const struct store_ca *ca,
                       const unsigned char *chain, size_t chain_len)
{
    pp_bytes(p, ca->cert_der, ca->cert_len);
    pp_bytes(p, chain, chain_len);
    pp_text(p, ca->key_ref);
    pp_bytes(p, ca->signer_cert_der, ca->signer_cert_len);
    pp_text(p, ca->signer_key_ref);
}

static enum store_rc pg_ca_insert(STORE_TX *tx, const struct store_ca *ca,
                                  int64_t *id)
{
    struct pg_params p = { 0 };
    unsigned char *chain = NULL;
    size_t chain_len = 0;
    enum store_rc rc;

    if (id != NULL)
        *id = 0;
    if (ca->name == NULL || ca->cert_der == NULL || ca->key_ref == NULL)
        return store_tx_fail(tx, STORE_ERROR, "ca_insert: missing field");
    if (!store_der_join(ca->chain, ca->nchain, &chain, &chain_len))
        return store_tx_fail(tx, STORE_ERROR, "ca_insert: bad chain DER");
    pp_text(&p, ca->name);
    pg_bind_ca(&p, ca, chain, chain_len);
    pp_i64(&p, ca->created ? ca->created : pg_now());
    rc = pg_insert_id(tx, PG_CA_INSERT, &p, id, "ca_insert");
    free(chain);
    return rc;
}

static enum store_rc pg_ca_update(STORE_TX *tx, const struct store_ca *ca)
{
    struct pg_params p = { 0 };
    unsigned char *chain = NULL;
    size_t chain_len = 0;
    enum store_rc rc;
    long n = 0;

    if (ca->cert_der == NULL || ca->key_ref == NULL)
        return store_tx_fail(tx, STORE_ERROR, "ca_update: missing field");
    if (!store_der_join(ca->chain, ca->nchain, &chain, &chain_len))
        return store_tx_fail(tx, STORE_ERROR, "ca_update: bad chain DER");
    pg_bind_ca(&p, ca, chain, chain_len);
    pp_i64(&p, ca->id);
    rc = pg_exec(tx, PG_CA_UPDATE, &p, "ca_update", &n);
    free(chain);
    if (rc == STORE_OK && n == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

static enum store_rc pg_ca_get(STORE_TX *tx, int64_t id, const char *name,
                               struct store_ca **out)
{
    struct pg_params p = { 0 };

    if (name != NULL)
        pp_text(&p, name);
    else
        pp_i64(&p, id);
    return pg_get(tx, name != NULL ? PG_CA_GET_NAME : PG_CA_GET_ID, &p,
                  pg_read_ca, (void **)out, "ca_get");
}

static enum store_rc pg_ca_list(STORE_TX *tx, struct store_ca ***out,
                                size_t *n)
{
    return pg_list(tx, PG_CA_LIST, NULL, pg_read_ca,
                   (pg_freer)store_ca_free, (void ***)out, n, "ca_list");
}

/* ------------------------------------------------------------------ */
/* Certificates                                                        */

static void *pg_read_cert(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_cert *c = calloc(1, sizeof(*c));
    size_t shalen = 0;

    if (c == NULL)
        return NULL;
    c->id = pg_id(r, i, 0);
    c->ca_id = pg_id(r, i, 1);
    if (!pg_fixed(r, i, 2, c->serial, sizeof(c->serial), &c->serial_len)
        || !pg_text(r, i, 3, &c->subject)
        || !pg_bytes(r, i, 6, &c->der, &c->der_len)
        || !pg_fixed(r, i, 7, c->sha256, sizeof(c->sha256), &shalen)
        || !pg_text(r, i, 12, &c->profile)) {
        store_cert_free(c);
        return NULL;
    }
    c->not_before = pg_id(r, i, 4);
    c->not_after = pg_id(r, i, 5);
    c->status = (int)pg_id(r, i, 8);
    c->revoked_at = pg_id(r, i, 9);
    c->reason = (int)pg_int(r, i, 10, -1);
    c->device_id = pg_id(r, i, 11);
    c->created = pg_id(r, i, 13);
    if (!PQgetisnull(r, i, 14)) {
        size_t vl = 0;

        if (!pg_fixed(r, i, 14, c->vendor_sha256, sizeof(c->vendor_sha256),
                      &vl)
            || !pg_fixed(r, i, 15, c->vendor_serial, sizeof(c->vendor_serial),
                         &c->vendor_serial_len)) {
            store_cert_free(c);
            return NULL;
        }
        c->has_vendor = vl == STORE_SHA256_LEN;
    }
    return c;
}

static enum store_rc pg_cert_insert(STORE_TX *tx, const struct store_cert *c,
                                    const unsigned char *sha, int64_t *id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long ok = 0;
    PGresult *res;

    pp_i64(&p, c->ca_id);
    pp_bytes(&p, c->serial, c->serial_len);
    pp_text(&p, c->subject != NULL ? c->subject : "");
    pp_i64(&p, c->not_before);
    pp_i64(&p, c->not_after);
    pp_bytes(&p, c->der, c->der_len);
    pp_bytes(&p, sha, STORE_SHA256_LEN);
    pp_i64(&p, c->status == STORE_CERT_REVOKED ? 1 : 0);
    pp_id(&p, c->revoked_at);
    if (c->reason < 0)
        pp_null(&p);
    else
        pp_i64(&p, c->reason);
    pp_id(&p, c->device_id);
    pp_text(&p, c->profile);
    pp_i64(&p, c->created ? c->created : pg_now());
    if (c->has_vendor) {
        pp_bytes(&p, c->vendor_sha256, STORE_SHA256_LEN);
        pp_bytes(&p, c->vendor_serial, c->vendor_serial_len);
    } else {
        pp_null(&p);
        pp_null(&p);
    }
    rc = pg_insert_id(tx, PG_CERT_INSERT, &p, id, "cert_insert");
    if (rc != STORE_EXISTS)
        return rc;
    /* no row: a unique collision, or a missing CA / device */
    p.n = 0;
    pp_i64(&p, c->ca_id);
    pp_id(&p, c->device_id);
    if ((res = pg_run(tx, PG_CERT_REFS, &p, "cert_insert", &rc)) == NULL)
        return rc;
    ok = PQntuples(res) == 1 && pg_int(res, 0, 0, 0) != 0;
    PQclear(res);
    return ok ? store_tx_fail(tx, STORE_EXISTS, "cert_insert: serial or "
                              "certificate exists")
              : store_tx_fail(tx, STORE_NOTFOUND, "cert_insert: no such CA "
                              "or device");
}

static enum store_rc pg_cert_get(STORE_TX *tx, int64_t id, int64_t ca_id,
                                 const unsigned char *serial,
                                 size_t serial_len, struct store_cert **out)
{
    struct pg_params p = { 0 };
    enum pg_stmt_id s;

    if (serial != NULL) {
        s = PG_CERT_GET_SERIAL;
        pp_i64(&p, ca_id);
        pp_bytes(&p, serial, serial_len);
    } else {
        s = PG_CERT_GET_ID;
        pp_i64(&p, id);
    }
    return pg_get(tx, s, &p, pg_read_cert, (void **)out, "cert_get");
}

static enum store_rc pg_cert_revoke(STORE_TX *tx, int64_t id, int reason,
                                    int64_t when)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, when ? when : pg_now());
    if (reason < 0)
        pp_null(&p);
    else
        pp_i64(&p, reason);
    pp_i64(&p, id);
    if ((rc = pg_exec(tx, PG_CERT_REVOKE, &p, "cert_revoke", &n)) != STORE_OK)
        return rc;
    if (n == 1)
        return STORE_OK;
    rc = pg_exists(tx, PG_CERT_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc pg_cert_unrevoke(STORE_TX *tx, int64_t id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, id);
    if ((rc = pg_exec(tx, PG_CERT_UNREVOKE, &p, "cert_unrevoke", &n))
        != STORE_OK)
        return rc;
    if (n == 1)
        return STORE_OK;
    rc = pg_exists(tx, PG_CERT_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

/* Appends the WHERE clause of a certificate filter to |sql| and binds its
 * values to |p| in the same order. */
static void pg_cert_filter(const struct store_cert_filter *f, char *sql,
                           size_t len, struct pg_params *p)
{
    size_t off;

    strncat(sql, " WHERE true", len - strlen(sql) - 1);
    if (f->ca_id > 0) {
        pp_i64(p, f->ca_id);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND ca_id=$%d", p->n);
    }
    if (f->device_id > 0) {
        pp_i64(p, f->device_id);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND device_id=$%d", p->n);
    }
    if (f->status >= 0) {
        pp_i64(p, f->status);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND status=$%d", p->n);
    }
    if (f->expires_before > 0) {
        pp_i64(p, f->expires_before);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND not_after<$%d", p->n);
    }
    if (f->expires_after > 0) {
        pp_i64(p, f->expires_after);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND not_after>=$%d", p->n);
    }
    if (f->vendor_sha256 != NULL) {
        pp_bytes(p, f->vendor_sha256, STORE_SHA256_LEN);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND vendor_sha256=$%d", p->n);
    }
    if (f->vendor_id > 0) {
        pp_i64(p, f->vendor_id);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND device_id IN (SELECT id FROM "
                 "device WHERE vendor_id=$%d)", p->n);
    }
}

/* Appends " LIMIT $a OFFSET $b" (a NULL limit means all). */
static void pg_limit(long limit, long offset, char *sql, size_t len,
                     struct pg_params *p)
{
    size_t off = strlen(sql);

    if (limit > 0)
        pp_i64(p, limit);
    else
        pp_null(p);
    pp_i64(p, offset > 0 ? offset : 0);
    snprintf(sql + off, len - off, " LIMIT $%d OFFSET $%d", p->n - 1, p->n);
}

static enum store_rc pg_cert_list(STORE_TX *tx,
                                  const struct store_cert_filter *f,
                                  struct store_cert ***out, size_t *n)
{
    struct pg_params p = { 0 };
    char sql[900];
    enum store_rc rc;
    PGresult *res;

    *out = NULL;
    *n = 0;
    snprintf(sql, sizeof(sql), "SELECT id,ca_id,serial,subject,not_before,"
             "not_after,%s,sha256,status,revoked_at,reason,device_id,"
             "profile,created,vendor_sha256,vendor_serial FROM cert",
             f->skip_der ? "NULL::bytea" : "der");
    pg_cert_filter(f, sql, sizeof(sql), &p);
    strncat(sql, " ORDER BY id DESC", sizeof(sql) - strlen(sql) - 1);
    pg_limit(f->limit, f->offset, sql, sizeof(sql), &p);
    if ((res = pg_run_sql(tx, sql, &p, "cert_list", &rc)) == NULL)
        return rc;
    return pg_collect(tx, res, pg_read_cert, (pg_freer)store_cert_free,
                      (void ***)out, n, "cert_list");
}

/* Runs a "SELECT count(*) ..." built at run time. */
static enum store_rc pg_count(STORE_TX *tx, const char *sql,
                              const struct pg_params *p, int64_t *n,
                              const char *what)
{
    enum store_rc rc;
    PGresult *res;

    *n = 0;
    if ((res = pg_run_sql(tx, sql, p, what, &rc)) == NULL)
        return rc;
    if (PQntuples(res) == 1)
        *n = pg_id(res, 0, 0);
    else
        rc = store_tx_fail(tx, STORE_ERROR, "%s: no row", what);
    PQclear(res);
    return rc;
}

static enum store_rc pg_cert_count(STORE_TX *tx,
                                   const struct store_cert_filter *f,
                                   int64_t *n)
{
    struct pg_params p = { 0 };
    char sql[512] = "SELECT count(*) FROM cert";

    pg_cert_filter(f, sql, sizeof(sql), &p);
    return pg_count(tx, sql, &p, n, "cert_count");
}

struct pg_revoked_walk {
    store_revoked_cb cb;
    void *arg;
};

static int pg_revoked_row(void *arg, const PGresult *r, int i)
{
    struct pg_revoked_walk *w = arg;
    struct store_revoked rv;

    rv.serial = (const unsigned char *)PQgetvalue(r, i, 0);
    rv.serial_len = (size_t)PQgetlength(r, i, 0);
    rv.revoked_at = pg_id(r, i, 1);
    rv.reason = (int)pg_int(r, i, 2, -1);
    return w->cb(w->arg, &rv);
}

static enum store_rc pg_cert_foreach_revoked(STORE_TX *tx, int64_t ca_id,
                                             int64_t not_after_min,
                                             store_revoked_cb cb, void *arg)
{
    struct pg_params p = { 0 };
    struct pg_revoked_walk w = { cb, arg };
    enum store_rc rc;

    pp_i64(&p, ca_id);
    pp_i64(&p, not_after_min);
    rc = pg_stream(tx, PG_CERT_REVOKED, &p, pg_revoked_row, &w,
                   "cert_foreach_revoked");
    if (rc == STORE_CONFLICT)
        rc = store_tx_fail(tx, STORE_ERROR, "revoked: callback stopped");
    return rc;
}

/* ------------------------------------------------------------------ */
/* Vendors                                                             */

static void *pg_read_vendor(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_vendor *v = calloc(1, sizeof(*v));

    if (v == NULL)
        return NULL;
    v->id = pg_id(r, i, 0);
    if (!pg_text(r, i, 1, &v->name)
        || !store_der_split((const unsigned char *)PQgetvalue(r, i, 2),
                            (size_t)PQgetlength(r, i, 2), &v->certs,
                            &v->ncerts)) {
        store_vendor_free(v);
        return NULL;
    }
    v->created = pg_id(r, i, 3);
    v->disabled = pg_int(r, i, 4, 0) != 0;
    return v;
}

static enum store_rc pg_vendor_insert(STORE_TX *tx,
                                      const struct store_vendor *v,
                                      int64_t *id)
{
    struct pg_params p = { 0 };
    unsigned char *certs = NULL;
    size_t len = 0;
    enum store_rc rc;

    if (id != NULL)
        *id = 0;
    if (v->name == NULL || *v->name == '\0')
        return store_tx_fail(tx, STORE_ERROR, "vendor_insert: no name");
    if (!store_der_join(v->certs, v->ncerts, &certs, &len))
        return store_tx_fail(tx, STORE_ERROR, "vendor_insert: bad DER");
    pp_text(&p, v->name);
    pp_bytes(&p, certs, len);
    pp_i64(&p, v->created ? v->created : pg_now());
    rc = pg_insert_id(tx, PG_VENDOR_INSERT, &p, id, "vendor_insert");
    free(certs);
    return rc;
}

static enum store_rc pg_vendor_update(STORE_TX *tx,
                                      const struct store_vendor *v)
{
    struct pg_params p = { 0 };
    unsigned char *certs = NULL;
    size_t len = 0;
    enum store_rc rc;
    long n = 0;

    if (!store_der_join(v->certs, v->ncerts, &certs, &len))
        return store_tx_fail(tx, STORE_ERROR, "vendor_update: bad DER");
    pp_bytes(&p, certs, len);
    pp_i64(&p, v->id);
    rc = pg_exec(tx, PG_VENDOR_UPDATE, &p, "vendor_update", &n);
    free(certs);
    if (rc == STORE_OK && n == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

static enum store_rc pg_vendor_set_disabled(STORE_TX *tx, int64_t id,
                                            int disabled)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, disabled);
    pp_i64(&p, id);
    rc = pg_exec(tx, PG_VENDOR_SET_DISABLED, &p, "vendor_set_disabled", &n);
    if (rc == STORE_OK && n == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

static enum store_rc pg_vendor_get(STORE_TX *tx, int64_t id, const char *name,
                                   struct store_vendor **out)
{
    struct pg_params p = { 0 };

    if (name != NULL)
        pp_text(&p, name);
    else
        pp_i64(&p, id);
    return pg_get(tx, name != NULL ? PG_VENDOR_GET_NAME : PG_VENDOR_GET_ID,
                  &p, pg_read_vendor, (void **)out, "vendor_get");
}

static enum store_rc pg_vendor_list(STORE_TX *tx, struct store_vendor ***out,
                                    size_t *n)
{
    return pg_list(tx, PG_VENDOR_LIST, NULL, pg_read_vendor,
                   (pg_freer)store_vendor_free, (void ***)out, n,
                   "vendor_list");
}

static enum store_rc pg_vendor_delete(STORE_TX *tx, int64_t id, int force)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    if (!force) {
        rc = pg_exists(tx, PG_VENDOR_HAS_DEV, id, NULL, 0);
        if (rc == STORE_OK)
            return store_tx_fail(tx, STORE_CONFLICT,
                                 "vendor has registered devices");
        if (rc != STORE_NOTFOUND)
            return rc;
    }
    pp_i64(&p, id);
    if ((rc = pg_exec(tx, PG_VENDOR_DELETE, &p, "vendor_delete", &n))
        != STORE_OK)
        return rc;
    return n > 0 ? STORE_OK : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */

static void *pg_read_device(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_device *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->id = pg_id(r, i, 0);
    d->vendor_id = pg_id(r, i, 1);
    if (!pg_text(r, i, 2, &d->identifier) || d->identifier == NULL) {
        store_device_free(d);
        return NULL;
    }
    d->state = (int)pg_id(r, i, 3);
    d->cert_id = pg_id(r, i, 4);
    d->created = pg_id(r, i, 5);
    d->updated = pg_id(r, i, 6);
    return d;
}

/* Inserts one device; EXISTS or NOTFOUND (vendor) as the interface says. */
static enum store_rc pg_device_add(STORE_TX *tx, int64_t vendor_id,
                                   const char *ident, size_t len,
                                   int64_t now, int64_t *id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;

    pp_i64(&p, vendor_id);
    pp_bytes(&p, ident, len);
    pp_i64(&p, now);
    rc = pg_insert_id(tx, PG_DEVICE_INSERT, &p, id, "device_insert");
    if (rc != STORE_EXISTS)
        return rc;
    rc = pg_exists(tx, PG_VENDOR_EXISTS, vendor_id, NULL, 0);
    if (rc == STORE_NOTFOUND)
        return store_tx_fail(tx, rc, "no vendor with id %lld",
                             (long long)vendor_id);
    if (rc != STORE_OK)
        return rc;
    return store_tx_fail(tx, STORE_EXISTS, "device '%.*s' exists",
                         (int)(len > 200 ? 200 : len), ident);
}

static enum store_rc pg_device_insert(STORE_TX *tx, int64_t vendor_id,
                                      const char *identifier, int64_t *id)
{
    return pg_device_add(tx, vendor_id, identifier, strlen(identifier),
                         pg_now(), id);
}

static enum store_rc pg_device_get(STORE_TX *tx, int64_t id,
                                   int64_t vendor_id, const char *ident,
                                   struct store_device **out)
{
    struct pg_params p = { 0 };

    if (ident != NULL) {
        pp_i64(&p, vendor_id);
        pp_text(&p, ident);
    } else {
        pp_i64(&p, id);
    }
    return pg_get(tx, ident != NULL ? PG_DEVICE_GET_IDENT : PG_DEVICE_GET_ID,
                  &p, pg_read_device, (void **)out, "device_get");
}

static enum store_rc pg_device_set_state(STORE_TX *tx, int64_t id, int from,
                                         int to, int64_t cert_id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, to);
    pp_i64(&p, cert_id < 0 ? -1 : cert_id);
    pp_i64(&p, pg_now());
    pp_i64(&p, id);
    pp_i64(&p, from);
    if ((rc = pg_exec(tx, PG_DEVICE_SET_STATE, &p, "device_set_state", &n))
        != STORE_OK)
        return rc;
    if (n == 1)
        return STORE_OK;
    rc = pg_exists(tx, PG_DEVICE_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc pg_device_delete(STORE_TX *tx, int64_t id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, id);
    if ((rc = pg_exec(tx, PG_DEVICE_DELETE, &p, "device_delete", &n))
        != STORE_OK)
        return rc;
    return n > 0 ? STORE_OK : STORE_NOTFOUND;
}

static void pg_device_filter(const struct store_device_filter *f, char *sql,
                             size_t len, struct pg_params *p)
{
    size_t off;

    strncat(sql, " WHERE true", len - strlen(sql) - 1);
    if (f->vendor_id > 0) {
        pp_i64(p, f->vendor_id);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND vendor_id=$%d", p->n);
    }
    if (f->state >= 0) {
        pp_i64(p, f->state);
        off = strlen(sql);
        snprintf(sql + off, len - off, " AND state=$%d", p->n);
    }
}

static enum store_rc pg_device_list(STORE_TX *tx,
                                    const struct store_device_filter *f,
                                    struct store_device ***out, size_t *n)
{
    struct pg_params p = { 0 };
    char sql[300] = "SELECT " STORE_DEVICE_COLS " FROM device";
    enum store_rc rc;
    PGresult *res;

    *out = NULL;
    *n = 0;
    pg_device_filter(f, sql, sizeof(sql), &p);
    /* identifier is COLLATE "C": byte order, as SQLite's BINARY */
    strncat(sql, " ORDER BY vendor_id,identifier",
            sizeof(sql) - strlen(sql) - 1);
    pg_limit(f->limit, f->offset, sql, sizeof(sql), &p);
    if ((res = pg_run_sql(tx, sql, &p, "device_list", &rc)) == NULL)
        return rc;
    return pg_collect(tx, res, pg_read_device, (pg_freer)store_device_free,
                      (void ***)out, n, "device_list");
}

static enum store_rc pg_device_count(STORE_TX *tx,
                                     const struct store_device_filter *f,
                                     int64_t *n)
{
    struct pg_params p = { 0 };
    char sql[200] = "SELECT count(*) FROM device";

    pg_device_filter(f, sql, sizeof(sql), &p);
    return pg_count(tx, sql, &p, n, "device_count");
}

/* One prepared INSERT per identifier inside the caller's transaction, so
 * that on a duplicate the identifier the iterator returned last is the
 * culprit (the CLI reports its line). */
static enum store_rc pg_device_import(STORE_TX *tx, int64_t vendor_id,
                                      store_ident_next_fn next, void *arg,
                                      uint64_t *count)
{
    const char *ident;
    size_t len;
    uint64_t cnt = 0;
    int64_t now = pg_now();
    enum store_rc rc;
    int r;

    if ((rc = pg_exists(tx, PG_VENDOR_EXISTS, vendor_id, NULL, 0))
        != STORE_OK)
        return rc == STORE_NOTFOUND
            ? store_tx_fail(tx, rc, "no vendor with id %lld",
                            (long long)vendor_id)
            : rc;
    while ((r = next(arg, &ident, &len)) == 1) {
        if ((rc = pg_device_add(tx, vendor_id, ident, len, now, NULL))
            != STORE_OK)
            return rc;
        cnt++;
    }
    if (r < 0)
        return store_tx_fail(tx, STORE_ERROR, "import input rejected");
    if (count != NULL)
        *count = cnt;
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* RAs                                                                 */

/* Reads the one text column of every row of statement |id| for parameter
 * |key| into a malloc'ed array (*v, *n). Returns 1 or 0. */
static int pg_read_strs(STORE_TX *tx, enum pg_stmt_id id, int64_t key,
                        char ***v, size_t *n, const char *what)
{
    struct pg_params p = { 0 };
    PGresult *a;
    enum store_rc rc;
    int k, na, ok = 0;

    pp_i64(&p, key);
    if ((a = pg_run(tx, id, &p, what, &rc)) == NULL)
        return 0;
    na = PQntuples(a);
    if (na > 0 && (*v = calloc((size_t)na, sizeof(char *))) == NULL)
        goto end;
    for (k = 0; k < na; k++) {
        if (!pg_text(a, k, 0, &(*v)[k]) || (*v)[k] == NULL)
            goto end;
        (*n)++;
    }
    ok = 1;
 end:
    PQclear(a);
    return ok;
}

static void *pg_read_ra(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_ra *ra = calloc(1, sizeof(*ra));
    size_t shalen = 0;

    if (ra == NULL)
        return NULL;
    ra->id = pg_id(r, i, 0);
    if (!pg_text(r, i, 1, &ra->name)
        || !pg_bytes(r, i, 2, &ra->cert_der, &ra->cert_len)
        || !pg_fixed(r, i, 3, ra->sha256, sizeof(ra->sha256), &shalen))
        goto err;
    ra->created = pg_id(r, i, 4);
    ra->ops = (unsigned)pg_int(r, i, 5, 0) & STORE_RA_OP_ALL;
    ra->ra_verified = pg_int(r, i, 6, 0) != 0;
    ra->disabled = pg_int(r, i, 7, 0) != 0;
    ra->updated = pg_int(r, i, 8, 0);
    if (!pg_read_strs(tx, PG_RA_ALIASES, ra->id, &ra->aliases, &ra->naliases,
                      "ra_aliases")
        || !pg_read_strs(tx, PG_RA_PROFILES, ra->id, &ra->profiles,
                         &ra->nprofiles, "ra_profiles"))
        goto err;
    return ra;
 err:
    store_ra_free(ra);
    return NULL;
}

/* Inserts the |n| strings of |v| for RA |rid| with statement |id|. */
static enum store_rc pg_ra_strs_insert(STORE_TX *tx, enum pg_stmt_id id,
                                       int64_t rid, char *const *v, size_t n,
                                       const char *what)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    size_t i;

    for (i = 0; i < n; i++) {
        if (v[i] == NULL)
            return store_tx_fail(tx, STORE_ERROR, "%s: NULL string", what);
        p.n = 0;
        pp_i64(&p, rid);
        pp_text(&p, v[i]);
        if ((rc = pg_exec(tx, id, &p, what, NULL)) != STORE_OK)
            return rc == STORE_EXISTS ? STORE_ERROR : rc;
    }
    return STORE_OK;
}

static enum store_rc pg_ra_insert(STORE_TX *tx, const struct store_ra *ra,
                                  const unsigned char *sha, int64_t *id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    int64_t rid = 0;

    if (ra->name == NULL || *ra->name == '\0')
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: no name");
    pp_text(&p, ra->name);
    pp_bytes(&p, ra->cert_der, ra->cert_len);
    pp_bytes(&p, sha, STORE_SHA256_LEN);
    pp_i64(&p, ra->created ? ra->created : pg_now());
    pp_i64(&p, (int64_t)(ra->ops & STORE_RA_OP_ALL));
    pp_i64(&p, ra->ra_verified ? 1 : 0);
    pp_i64(&p, ra->disabled ? 1 : 0);
    if ((rc = pg_insert_id(tx, PG_RA_INSERT, &p, &rid, "ra_insert"))
        != STORE_OK)
        return rc;
    if ((rc = pg_ra_strs_insert(tx, PG_RA_ALIAS_INSERT, rid, ra->aliases,
                                ra->naliases, "ra_alias_insert")) != STORE_OK
        || (rc = pg_ra_strs_insert(tx, PG_RA_PROFILE_INSERT, rid,
                                   ra->profiles, ra->nprofiles,
                                   "ra_profile_insert")) != STORE_OK)
        return rc;
    if (id != NULL)
        *id = rid;
    return STORE_OK;
}

static enum store_rc pg_ra_set_disabled(STORE_TX *tx, int64_t id,
                                        int disabled)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, disabled);
    pp_i64(&p, pg_now());
    pp_i64(&p, id);
    if ((rc = pg_exec(tx, PG_RA_SET_DISABLED, &p, "ra_set_disabled", &n))
        != STORE_OK)
        return rc;
    if (n == 1)
        return STORE_OK;
    rc = pg_exists(tx, PG_RA_EXISTS, id, NULL, 0);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc pg_ra_get(STORE_TX *tx, int64_t id, const char *name,
                               const unsigned char *sha, struct store_ra **out)
{
    struct pg_params p = { 0 };
    enum pg_stmt_id s;

    if (name != NULL) {
        s = PG_RA_GET_NAME;
        pp_text(&p, name);
    } else if (sha != NULL) {
        s = PG_RA_GET_SHA;
        pp_bytes(&p, sha, STORE_SHA256_LEN);
    } else {
        s = PG_RA_GET_ID;
        pp_i64(&p, id);
    }
    return pg_get(tx, s, &p, pg_read_ra, (void **)out, "ra_get");
}

static enum store_rc pg_ra_list(STORE_TX *tx, struct store_ra ***out,
                                size_t *n)
{
    return pg_list(tx, PG_RA_LIST, NULL, pg_read_ra,
                   (pg_freer)store_ra_free, (void ***)out, n, "ra_list");
}

static enum store_rc pg_ra_delete(STORE_TX *tx, int64_t id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, id);
    if ((rc = pg_exec(tx, PG_RA_DELETE, &p, "ra_delete", &n)) != STORE_OK)
        return rc;
    return n > 0 ? STORE_OK : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* CMP transactions                                                    */

static void *pg_read_txn(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_cmp_txn *t = calloc(1, sizeof(*t));
    size_t reqlen = 0;

    if (t == NULL)
        return NULL;
    if (!pg_fixed(r, i, 0, t->tid, sizeof(t->tid), &t->tid_len)
        || !pg_text(r, i, 1, &t->alias)
        || !pg_fixed(r, i, 8, t->requester_sha256,
                     sizeof(t->requester_sha256), &reqlen)
        || !pg_fixed(r, i, 9, t->sender_nonce, sizeof(t->sender_nonce),
                     &t->sender_nonce_len)
        || !pg_fixed(r, i, 13, t->req_nonce, sizeof(t->req_nonce),
                     &t->req_nonce_len)) {
        store_cmp_txn_free(t);
        return NULL;
    }
    t->type = (int)pg_id(r, i, 2);
    t->state = (int)pg_id(r, i, 3);
    t->cert_req_id = (int)pg_id(r, i, 4);
    t->created = pg_id(r, i, 5);
    t->deadline = pg_id(r, i, 6);
    t->updated = pg_id(r, i, 7);
    t->has_requester = reqlen == STORE_SHA256_LEN;
    t->cert_id = pg_id(r, i, 10);
    t->old_cert_id = pg_id(r, i, 11);
    t->device_id = pg_id(r, i, 12);
    return t;
}

static enum store_rc pg_txn_insert(STORE_TX *tx, const struct store_cmp_txn *t)
{
    struct pg_params p = { 0 };
    int64_t now = pg_now();

    pp_bytes(&p, t->tid, t->tid_len);
    pp_text(&p, t->alias);
    pp_i64(&p, t->type);
    pp_i64(&p, t->state);
    pp_i64(&p, t->cert_req_id);
    pp_i64(&p, t->created ? t->created : now);
    pp_i64(&p, t->deadline);
    pp_i64(&p, t->updated ? t->updated : now);
    pp_bytes(&p, t->has_requester ? t->requester_sha256 : NULL,
             STORE_SHA256_LEN);
    pp_bytes(&p, t->sender_nonce_len > 0 ? t->sender_nonce : NULL,
             t->sender_nonce_len);
    pp_id(&p, t->cert_id);
    pp_id(&p, t->old_cert_id);
    pp_id(&p, t->device_id);
    pp_bytes(&p, t->req_nonce_len > 0 ? t->req_nonce : NULL,
             t->req_nonce_len);
    return pg_insert_id(tx, PG_TXN_INSERT, &p, NULL, "cmp_txn_insert");
}

static enum store_rc pg_txn_get(STORE_TX *tx, const unsigned char *tid,
                                size_t tid_len, struct store_cmp_txn **out)
{
    struct pg_params p = { 0 };

    pp_bytes(&p, tid, tid_len);
    return pg_get(tx, PG_TXN_GET, &p, pg_read_txn, (void **)out,
                  "cmp_txn_get");
}

/* After a conditional UPDATE on cmp_txn that changed |n| rows: OK,
 * CONFLICT or NOTFOUND. */
static enum store_rc pg_txn_changed(STORE_TX *tx, long n,
                                    const unsigned char *tid, size_t tid_len)
{
    enum store_rc rc;

    if (n == 1)
        return STORE_OK;
    rc = pg_exists(tx, PG_TXN_EXISTS, 0, tid, tid_len);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc pg_txn_set_state(STORE_TX *tx, const unsigned char *tid,
                                      size_t tid_len, int from, int to)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, to);
    pp_i64(&p, pg_now());
    pp_bytes(&p, tid, tid_len);
    pp_i64(&p, from);
    if ((rc = pg_exec(tx, PG_TXN_SET_STATE, &p, "cmp_txn_set_state", &n))
        != STORE_OK)
        return rc;
    return pg_txn_changed(tx, n, tid, tid_len);
}

static enum store_rc pg_txn_update(STORE_TX *tx, const struct store_cmp_txn *t,
                                   int from)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, t->state);
    pp_i64(&p, t->deadline);
    pp_bytes(&p, t->sender_nonce_len > 0 ? t->sender_nonce : NULL,
             t->sender_nonce_len);
    pp_id(&p, t->cert_id);
    pp_id(&p, t->old_cert_id);
    pp_id(&p, t->device_id);
    pp_text(&p, t->alias);
    pp_i64(&p, pg_now());
    pp_bytes(&p, t->tid, t->tid_len);
    pp_i64(&p, from);
    if ((rc = pg_exec(tx, PG_TXN_UPDATE, &p, "cmp_txn_update", &n))
        != STORE_OK)
        return rc;
    return pg_txn_changed(tx, n, t->tid, t->tid_len);
}

static enum store_rc pg_txn_list_expired(STORE_TX *tx, int64_t now,
                                         long limit,
                                         struct store_cmp_txn ***out,
                                         size_t *n)
{
    struct pg_params p = { 0 };

    pp_i64(&p, now);
    if (limit > 0)
        pp_i64(&p, limit);
    else
        pp_null(&p);
    return pg_list(tx, PG_TXN_EXPIRED, &p, pg_read_txn,
                   (pg_freer)store_cmp_txn_free, (void ***)out, n,
                   "cmp_txn_list_expired");
}

static enum store_rc pg_txn_list_waiting_device(STORE_TX *tx,
                                                int64_t device_id, long limit,
                                                struct store_cmp_txn ***out,
                                                size_t *n)
{
    struct pg_params p = { 0 };

    pp_i64(&p, device_id);
    if (limit > 0)
        pp_i64(&p, limit);
    else
        pp_null(&p);
    return pg_list(tx, PG_TXN_WAITING_DEV, &p, pg_read_txn,
                   (pg_freer)store_cmp_txn_free, (void ***)out, n,
                   "cmp_txn_list_waiting_device");
}

static enum store_rc pg_txn_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long k = 0;

    if (n != NULL)
        *n = 0;
    pp_i64(&p, before);
    if ((rc = pg_exec(tx, PG_TXN_PURGE, &p, "cmp_txn_purge", &k)) == STORE_OK
        && n != NULL)
        *n = k;
    return rc;
}

static enum store_rc pg_txn_count_requester(STORE_TX *tx,
                                            const unsigned char *requester,
                                            int64_t since, int64_t *waiting,
                                            int64_t *recent)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    PGresult *res;

    pp_i64(&p, since);
    pp_bytes(&p, requester, STORE_SHA256_LEN);
    if ((res = pg_run(tx, PG_TXN_COUNT_RQ, &p, "cmp_txn_count_requester",
                      &rc)) == NULL)
        return rc;
    if (PQntuples(res) == 1) {
        *waiting = pg_id(res, 0, 0);
        *recent = pg_id(res, 0, 1);
    }
    PQclear(res);
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                */

static enum store_rc pg_crl_next_number(STORE_TX *tx, int64_t ca_id,
                                        int64_t *number)
{
    struct pg_params p = { 0 };
    enum store_rc rc;

    *number = 0;
    pp_i64(&p, ca_id);
    rc = pg_insert_id(tx, PG_CRL_NEXT, &p, number, "crl_next_number");
    if (rc == STORE_EXISTS)
        rc = store_tx_fail(tx, STORE_NOTFOUND, "no CA with id %lld",
                           (long long)ca_id);
    return rc;
}

static enum store_rc pg_crl_put(STORE_TX *tx, const struct store_crl *crl)
{
    struct pg_params p = { 0 };
    enum store_rc rc;

    pp_i64(&p, crl->ca_id);
    pp_i64(&p, crl->number);
    pp_i64(&p, crl->this_update);
    pp_i64(&p, crl->next_update);
    pp_bytes(&p, crl->der, crl->der_len);
    rc = pg_insert_id(tx, PG_CRL_PUT, &p, NULL, "crl_put");
    if (rc == STORE_EXISTS)
        rc = store_tx_fail(tx, STORE_NOTFOUND, "no CA with id %lld",
                           (long long)crl->ca_id);
    return rc;
}

static void *pg_read_crl(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_crl *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->ca_id = pg_id(r, i, 0);
    c->number = pg_id(r, i, 1);
    c->this_update = pg_id(r, i, 2);
    c->next_update = pg_id(r, i, 3);
    if (!pg_bytes(r, i, 4, &c->der, &c->der_len)) {
        store_crl_free(c);
        return NULL;
    }
    return c;
}

static enum store_rc pg_vendor_crl_put(STORE_TX *tx,
                                       const struct store_vendor_crl *c)
{
    struct pg_params p = { 0 };
    enum store_rc rc;

    pp_i64(&p, c->vendor_id);
    pp_bytes(&p, c->issuer_sha256, STORE_SHA256_LEN);
    pp_i64(&p, c->this_update);
    pp_i64(&p, c->next_update);
    pp_i64(&p, c->fetched ? c->fetched : pg_now());
    pp_text(&p, c->source);
    pp_bytes(&p, c->der, c->der_len);
    rc = pg_insert_id(tx, PG_VCRL_PUT, &p, NULL, "vendor_crl_put");
    if (rc == STORE_EXISTS)
        rc = store_tx_fail(tx, STORE_NOTFOUND, "no vendor with id %lld",
                           (long long)c->vendor_id);
    return rc;
}

static void *pg_read_vendor_crl(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_vendor_crl *c = calloc(1, sizeof(*c));
    size_t hl = 0;

    if (c == NULL)
        return NULL;
    c->vendor_id = pg_id(r, i, 0);
    c->this_update = pg_id(r, i, 2);
    c->next_update = pg_id(r, i, 3);
    c->fetched = pg_id(r, i, 4);
    if (!pg_fixed(r, i, 1, c->issuer_sha256, sizeof(c->issuer_sha256), &hl)
        || !pg_text(r, i, 5, &c->source)
        || !pg_bytes(r, i, 6, &c->der, &c->der_len)) {
        store_vendor_crl_free(c);
        return NULL;
    }
    return c;
}

static enum store_rc pg_vendor_crl_list(STORE_TX *tx, int64_t vendor_id,
                                        struct store_vendor_crl ***out,
                                        size_t *n)
{
    struct pg_params p = { 0 };

    pp_i64(&p, vendor_id);
    return pg_list(tx, PG_VCRL_LIST, &p, pg_read_vendor_crl,
                   (pg_freer)store_vendor_crl_free, (void ***)out, n,
                   "vendor_crl_list");
}

static enum store_rc pg_crl_get_last(STORE_TX *tx, int64_t ca_id,
                                     struct store_crl **out)
{
    struct pg_params p = { 0 };

    pp_i64(&p, ca_id);
    return pg_get(tx, PG_CRL_GET, &p, pg_read_crl, (void **)out,
                  "crl_get_last");
}

/* ------------------------------------------------------------------ */
/* Root CA key rollovers                                               */

static enum store_rc pg_rollover_insert(STORE_TX *tx,
                                        const struct store_rollover *r,
                                        int64_t *id)
{
    struct pg_params p = { 0 };
    enum store_rc rc;

    pp_i64(&p, r->ca_id);
    pp_bytes(&p, r->old_sha256, STORE_SHA256_LEN);
    pp_bytes(&p, r->new_sha256, STORE_SHA256_LEN);
    pp_bytes(&p, r->new_with_new.der, r->new_with_new.len);
    pp_bytes(&p, r->new_with_old.der, r->new_with_old.len);
    pp_bytes(&p, r->old_with_new.der, r->old_with_new.len);
    pp_i64(&p, r->created ? r->created : pg_now());
    rc = pg_insert_id(tx, PG_ROLL_INSERT, &p, id, "rollover_insert");
    if (rc == STORE_EXISTS)
        rc = store_tx_fail(tx, STORE_NOTFOUND, "no CA with id %lld",
                           (long long)r->ca_id);
    return rc;
}

static void *pg_read_rollover(STORE_TX *tx, const PGresult *res, int i)
{
    struct store_rollover *r = calloc(1, sizeof(*r));
    size_t l1 = 0, l2 = 0;

    (void)tx;
    if (r == NULL)
        return NULL;
    r->id = pg_id(res, i, 0);
    r->ca_id = pg_id(res, i, 1);
    r->created = pg_id(res, i, 7);
    if (!pg_fixed(res, i, 2, r->old_sha256, STORE_SHA256_LEN, &l1)
        || !pg_fixed(res, i, 3, r->new_sha256, STORE_SHA256_LEN, &l2)
        || !pg_bytes(res, i, 4, &r->new_with_new.der, &r->new_with_new.len)
        || !pg_bytes(res, i, 5, &r->new_with_old.der, &r->new_with_old.len)
        || !pg_bytes(res, i, 6, &r->old_with_new.der, &r->old_with_new.len)) {
        store_rollover_free(r);
        return NULL;
    }
    return r;
}

static enum store_rc pg_rollover_list(STORE_TX *tx, int64_t ca_id,
                                      struct store_rollover ***out, size_t *n)
{
    struct pg_params p = { 0 };

    pp_i64(&p, ca_id);
    return pg_list(tx, PG_ROLL_LIST, &p, pg_read_rollover,
                   (pg_freer)store_rollover_free, (void ***)out, n,
                   "rollover_list");
}

/* ------------------------------------------------------------------ */
/* Stored replies                                                      */

static enum store_rc pg_reply_put(STORE_TX *tx, const struct store_txn_reply *r)
{
    struct pg_params p = { 0 };

    pp_bytes(&p, r->req_sha256, STORE_SHA256_LEN);
    pp_text(&p, r->alias);
    if (r->tid != NULL)
        pp_bytes(&p, r->tid, r->tid_len);
    else
        pp_null(&p);
    pp_i64(&p, r->upstream != 0);
    pp_i64(&p, r->http_status);
    pp_i64(&p, r->created ? r->created : pg_now());
    pp_bytes(&p, r->reply, r->reply_len);
    return pg_exec(tx, PG_REPLY_PUT, &p, "txn_reply_put", NULL);
}

static void *pg_read_reply(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_txn_reply *x = calloc(1, sizeof(*x));
    size_t hl = 0;

    if (x == NULL)
        return NULL;
    if (!pg_fixed(r, i, 0, x->req_sha256, sizeof(x->req_sha256), &hl)
        || hl != STORE_SHA256_LEN || !pg_text(r, i, 1, &x->alias)
        || !pg_bytes(r, i, 2, &x->tid, &x->tid_len)
        || !pg_bytes(r, i, 6, &x->reply, &x->reply_len)) {
        store_txn_reply_free(x);
        return NULL;
    }
    x->upstream = (int)pg_id(r, i, 3);
    x->http_status = (int)pg_id(r, i, 4);
    x->created = pg_id(r, i, 5);
    return x;
}

static enum store_rc pg_reply_get(STORE_TX *tx, const unsigned char *sha,
                                  struct store_txn_reply **out)
{
    struct pg_params p = { 0 };

    pp_bytes(&p, sha, STORE_SHA256_LEN);
    return pg_get(tx, PG_REPLY_GET, &p, pg_read_reply, (void **)out,
                  "txn_reply_get");
}

static enum store_rc pg_reply_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long k = 0;

    if (n != NULL)
        *n = 0;
    pp_i64(&p, before);
    if ((rc = pg_exec(tx, PG_REPLY_PURGE, &p, "txn_reply_purge", &k))
        == STORE_OK && n != NULL)
        *n = k;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Audit primitives                                                    */

/*
 * Appending costs one round trip per row: the first audit_head of a write
 * transaction locks the head row (SELECT ... FOR UPDATE, one round trip),
 * so appenders of all processes chain one after the other, and from then
 * on only this transaction can move the head. Its value is kept on the
 * connection: later audit_head calls of the transaction answer from it,
 * audit_insert only INSERTs the row (one round trip) and advances it, and
 * pg_commit writes the head row once, in the COMMIT's round trip. Writing
 * the head per row would also grow one row version per append inside the
 * transaction (each lookup walks them: quadratic in a long transaction).
 */
static enum store_rc pg_audit_head(STORE_TX *tx, int64_t *seq,
                                   unsigned char hash[STORE_SHA256_LEN])
{
    struct pg_conn *c = tx->conn;
    enum store_rc rc;
    PGresult *res;
    size_t len = 0;

    *seq = 0;
    memset(hash, 0, STORE_SHA256_LEN);
    if (tx->write && (tx->be_flags & PG_TXF_HEAD_LOCKED) != 0) {
        *seq = c->head_seq;
        memcpy(hash, c->head_hash, STORE_SHA256_LEN);
        return STORE_OK;
    }
    if ((res = pg_run(tx, tx->write ? PG_AUDIT_HEAD_LOCK : PG_AUDIT_HEAD,
                      NULL, "audit_head", &rc)) == NULL)
        return rc;
    if (PQntuples(res) == 1) {
        *seq = pg_id(res, 0, 0);
        if (!pg_fixed(res, 0, 1, hash, STORE_SHA256_LEN, &len)
            || len != STORE_SHA256_LEN) {
            PQclear(res);
            *seq = 0;
            memset(hash, 0, STORE_SHA256_LEN);
            return store_tx_fail(tx, STORE_ERROR, "audit head malformed");
        }
    }
    PQclear(res);
    if (tx->write) {
        c->head_seq = *seq;
        memcpy(c->head_hash, hash, STORE_SHA256_LEN);
        tx->be_flags |= PG_TXF_HEAD_LOCKED;
    }
    return STORE_OK;
}

static enum store_rc pg_audit_insert(STORE_TX *tx,
                                     const struct store_audit_row *row)
{
    struct pg_conn *c = tx->conn;
    struct pg_params p = { 0 };
    enum store_rc rc;

    /* the row must chain onto the head this transaction holds */
    if ((tx->be_flags & PG_TXF_HEAD_LOCKED) == 0
        || row->seq != c->head_seq + 1)
        return store_tx_fail(tx, STORE_ERROR, "audit_insert: row %lld does "
                             "not follow the locked head",
                             (long long)row->seq);
    pp_i64(&p, row->seq);
    pp_i64(&p, row->time);
    pp_text(&p, row->actor);
    pp_text(&p, row->action);
    pp_text(&p, row->object);
    pp_text(&p, row->details);
    pp_bytes(&p, row->hash, STORE_SHA256_LEN);
    if ((rc = pg_exec(tx, PG_AUDIT_INSERT, &p, "audit_insert", NULL))
        != STORE_OK)
        return rc;
    c->head_seq = row->seq;
    memcpy(c->head_hash, row->hash, STORE_SHA256_LEN);
    tx->be_flags |= PG_TXF_HEAD_DIRTY;
    return STORE_OK;
}

/* Fills |row| with borrowed pointers into row |i| of |r|. A hash that is
 * not 32 octets is returned as zeros (it will not verify). */
static void pg_audit_borrow(const PGresult *r, int i,
                            struct store_audit_row *row)
{
    size_t len = 0;

    row->seq = pg_id(r, i, 0);
    row->time = pg_id(r, i, 1);
    row->actor = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
    row->action = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
    row->object = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4);
    row->details = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5);
    if (!pg_fixed(r, i, 6, row->hash, STORE_SHA256_LEN, &len)
        || len != STORE_SHA256_LEN)
        memset(row->hash, 0, STORE_SHA256_LEN);
}

struct pg_audit_walk {
    store_audit_cb cb;
    void *arg;
};

static int pg_audit_row(void *arg, const PGresult *r, int i)
{
    struct pg_audit_walk *w = arg;
    struct store_audit_row row;

    pg_audit_borrow(r, i, &row);
    return w->cb(w->arg, &row);
}

static enum store_rc pg_audit_foreach(STORE_TX *tx, store_audit_cb cb,
                                      void *arg)
{
    struct pg_params p = { 0 };
    struct pg_audit_walk w = { cb, arg };

    return pg_stream(tx, PG_AUDIT_ALL, &p, pg_audit_row, &w,
                     "audit_foreach");
}

static void *pg_read_audit(STORE_TX *tx, const PGresult *res, int i)
{
    struct store_audit_row b;

    pg_audit_borrow(res, i, &b);
    return store_audit_row_dup(&b);
}

static enum store_rc pg_audit_list(STORE_TX *tx, long limit,
                                   struct store_audit_row ***out, size_t *n)
{
    struct pg_params p = { 0 };

    if (limit > 0)
        pp_i64(&p, limit);
    else
        pp_null(&p);
    return pg_list(tx, PG_AUDIT_LAST, &p, pg_read_audit,
                   store_audit_row_free_elem, (void ***)out, n, "audit_list");
}

static enum store_rc pg_audit_count(STORE_TX *tx, int64_t *nrows,
                                    int64_t *last)
{
    enum store_rc rc;
    PGresult *res;

    *nrows = 0;
    *last = 0;
    if ((res = pg_run(tx, PG_AUDIT_COUNT, NULL, "audit_count", &rc)) == NULL)
        return rc;
    if (PQntuples(res) == 1) {
        *nrows = pg_id(res, 0, 0);
        *last = pg_id(res, 0, 1);
    }
    PQclear(res);
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* Device secrets                                                      */

static void *pg_read_secret(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_device_secret *d = calloc(1, sizeof(*d));

    (void)tx;
    if (d == NULL)
        return NULL;
    d->device_id = pg_id(r, i, 0);
    if (!pg_text(r, i, 1, &d->ref) || d->ref == NULL
        || !pg_bytes(r, i, 2, &d->sealed, &d->sealed_len)) {
        store_device_secret_free(d);
        return NULL;
    }
    d->failures = (int)pg_id(r, i, 3);
    d->locked = (int)pg_id(r, i, 4);
    d->consumed = (int)pg_id(r, i, 5);
    d->created = pg_id(r, i, 6);
    d->updated = pg_id(r, i, 7);
    return d;
}

static enum store_rc pg_secret_put(STORE_TX *tx, int64_t device_id,
                                   const char *ref,
                                   const unsigned char *sealed, size_t len)
{
    struct pg_params p = { 0 };
    enum store_rc rc;

    pp_i64(&p, device_id);
    pp_text(&p, ref);
    pp_bytes(&p, sealed, len);
    pp_i64(&p, pg_now());
    rc = pg_insert_id(tx, PG_SECRET_PUT, &p, NULL, "device_secret_put");
    if (rc == STORE_EXISTS)
        rc = store_tx_fail(tx, STORE_NOTFOUND, "no device with id %lld",
                           (long long)device_id);
    return rc;
}

static enum store_rc pg_secret_get(STORE_TX *tx, int64_t device_id,
                                   const char *ref,
                                   struct store_device_secret **out)
{
    struct pg_params p = { 0 };

    if (ref != NULL)
        pp_text(&p, ref);
    else
        pp_i64(&p, device_id);
    return pg_get(tx, ref != NULL ? PG_SECRET_GET_REF : PG_SECRET_GET_DEV,
                  &p, pg_read_secret, (void **)out, "device_secret_get");
}

static enum store_rc pg_secret_fail(STORE_TX *tx, int64_t device_id,
                                    int max, int *failures, int *locked)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    PGresult *res;

    pp_i64(&p, max);
    pp_i64(&p, pg_now());
    pp_i64(&p, device_id);
    if ((res = pg_run(tx, PG_SECRET_FAIL, &p, "device_secret_fail", &rc))
        == NULL)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOTFOUND;
    }
    *failures = (int)pg_id(res, 0, 0);
    *locked = (int)pg_id(res, 0, 1);
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_secret_set(STORE_TX *tx, int64_t device_id, int op)
{
    struct pg_params p = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&p, pg_now());
    pp_i64(&p, device_id);
    if ((rc = pg_exec(tx, op == STORE_SECRET_UNLOCK ? PG_SECRET_UNLOCK
                                                    : PG_SECRET_CONSUME,
                      &p, "device_secret_set", &n)) != STORE_OK)
        return rc;
    if (n == 1)
        return STORE_OK;
    return op == STORE_SECRET_CONSUME ? STORE_CONFLICT : STORE_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* Requests awaiting approval                                          */

static enum store_rc pg_pending_purge(STORE_TX *tx, int64_t before,
                                      int64_t *n)
{
    struct pg_params q = { 0 };
    enum store_rc rc;
    long k = 0;

    pp_i64(&q, before);
    if ((rc = pg_exec(tx, PG_PENDING_PURGE, &q, "pending_purge", &k))
        == STORE_OK && n != NULL)
        *n = k;
    return rc;
}

static void *pg_read_pending(STORE_TX *tx, const PGresult *r, int i)
{
    struct store_pending *p = calloc(1, sizeof(*p));

    (void)tx;
    if (p == NULL)
        return NULL;
    if (!pg_fixed(r, i, 0, p->tid, sizeof(p->tid), &p->tid_len)
        || !pg_text(r, i, 1, &p->alias)
        || !pg_text(r, i, 4, &p->requester)
        || !pg_text(r, i, 6, &p->device)
        || !pg_text(r, i, 7, &p->profile)
        || !pg_text(r, i, 8, &p->subject)
        || !pg_bytes(r, i, 9, &p->request, &p->request_len)
        || !pg_bytes(r, i, 10, &p->vendor_cert, &p->vendor_cert_len)
        || !pg_text(r, i, 14, &p->decided_by)
        || !pg_text(r, i, 16, &p->reason)) {
        store_pending_free(p);
        return NULL;
    }
    p->type = (int)pg_id(r, i, 2);
    p->state = (int)pg_id(r, i, 3);
    p->device_id = pg_id(r, i, 5);
    p->created = pg_id(r, i, 11);
    p->expires = pg_id(r, i, 12);
    p->updated = pg_id(r, i, 13);
    p->decided_at = pg_id(r, i, 15);
    return p;
}

static enum store_rc pg_pending_insert(STORE_TX *tx,
                                       const struct store_pending *p)
{
    struct pg_params q = { 0 };
    int64_t now = pg_now();

    pp_bytes(&q, p->tid, p->tid_len);
    pp_text(&q, p->alias);
    pp_i64(&q, p->type);
    pp_i64(&q, p->state);
    pp_text(&q, p->requester);
    pp_id(&q, p->device_id);
    pp_text(&q, p->device);
    pp_text(&q, p->profile);
    pp_text(&q, p->subject);
    pp_bytes(&q, p->request, p->request_len);
    pp_bytes(&q, p->vendor_cert_len > 0 ? p->vendor_cert : NULL,
             p->vendor_cert_len);
    pp_i64(&q, p->created ? p->created : now);
    pp_i64(&q, p->expires);
    pp_i64(&q, p->updated ? p->updated : now);
    return pg_insert_id(tx, PG_PENDING_INSERT, &q, NULL, "pending_insert");
}

static enum store_rc pg_pending_get(STORE_TX *tx, const unsigned char *tid,
                                    size_t tid_len, struct store_pending **out)
{
    struct pg_params q = { 0 };

    pp_bytes(&q, tid, tid_len);
    return pg_get(tx, PG_PENDING_GET, &q, pg_read_pending, (void **)out,
                  "pending_get");
}

static enum store_rc pg_pending_set_state(STORE_TX *tx,
                                          const unsigned char *tid,
                                          size_t tid_len, int from, int to,
                                          const char *by, const char *reason)
{
    struct pg_params q = { 0 };
    enum store_rc rc;
    long n = 0;

    pp_i64(&q, to);
    pp_text(&q, by);
    pp_text(&q, reason);
    pp_i64(&q, pg_now());
    pp_bytes(&q, tid, tid_len);
    pp_i64(&q, from);
    if ((rc = pg_exec(tx, PG_PENDING_SET_STATE, &q, "pending_set_state", &n))
        != STORE_OK)
        return rc;
    if (n == 1)
        return STORE_OK;
    rc = pg_exists(tx, PG_PENDING_EXISTS, 0, tid, tid_len);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static enum store_rc pg_pending_list(STORE_TX *tx,
                                     const struct store_pending_filter *f,
                                     struct store_pending ***out, size_t *n)
{
    struct pg_params q = { 0 };

    pp_text(&q, f != NULL ? f->alias : NULL);
    pp_i64(&q, f != NULL ? f->state : -1);
    if (f != NULL && f->limit > 0)
        pp_i64(&q, f->limit);
    else
        pp_null(&q);
    return pg_list(tx, PG_PENDING_LIST, &q, pg_read_pending,
                   (pg_freer)store_pending_free, (void ***)out, n,
                   "pending_list");
}

/* Held requests listed by a statement taking (now, limit). */
static enum store_rc pg_pending_list_due(STORE_TX *tx, enum pg_stmt_id id,
                                         int64_t now, long limit,
                                         struct store_pending ***out,
                                         size_t *n, const char *what)
{
    struct pg_params q = { 0 };

    pp_i64(&q, now);
    if (limit > 0)
        pp_i64(&q, limit);
    else
        pp_null(&q);
    return pg_list(tx, id, &q, pg_read_pending, (pg_freer)store_pending_free,
                   (void ***)out, n, what);
}

static enum store_rc pg_pending_list_expired(STORE_TX *tx, int64_t now,
                                             long limit,
                                             struct store_pending ***out,
                                             size_t *n)
{
    return pg_pending_list_due(tx, PG_PENDING_EXPIRED, now, limit, out, n,
                               "pending_list_expired");
}

static enum store_rc pg_pending_list_stale(STORE_TX *tx, int64_t now,
                                           long limit,
                                           struct store_pending ***out,
                                           size_t *n)
{
    return pg_pending_list_due(tx, PG_PENDING_STALE, now, limit, out, n,
                               "pending_list_stale");
}

const struct store_ops store_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .ca_insert = pg_ca_insert,
    .ca_update = pg_ca_update,
    .ca_get = pg_ca_get,
    .ca_list = pg_ca_list,
    .cert_insert = pg_cert_insert,
    .cert_get = pg_cert_get,
    .cert_revoke = pg_cert_revoke,
    .cert_unrevoke = pg_cert_unrevoke,
    .cert_list = pg_cert_list,
    .cert_count = pg_cert_count,
    .cert_foreach_revoked = pg_cert_foreach_revoked,
    .vendor_insert = pg_vendor_insert,
    .vendor_update = pg_vendor_update,
    .vendor_get = pg_vendor_get,
    .vendor_list = pg_vendor_list,
    .vendor_delete = pg_vendor_delete,
    .vendor_set_disabled = pg_vendor_set_disabled,
    .device_insert = pg_device_insert,
    .device_get = pg_device_get,
    .device_set_state = pg_device_set_state,
    .device_delete = pg_device_delete,
    .device_list = pg_device_list,
    .device_count = pg_device_count,
    .device_import = pg_device_import,
    .ra_insert = pg_ra_insert,
    .ra_get = pg_ra_get,
    .ra_list = pg_ra_list,
    .ra_set_disabled = pg_ra_set_disabled,
    .ra_delete = pg_ra_delete,
    .cmp_txn_insert = pg_txn_insert,
    .cmp_txn_get = pg_txn_get,
    .cmp_txn_set_state = pg_txn_set_state,
    .cmp_txn_update = pg_txn_update,
    .cmp_txn_list_expired = pg_txn_list_expired,
    .cmp_txn_list_waiting_device = pg_txn_list_waiting_device,
    .cmp_txn_purge = pg_txn_purge,
    .cmp_txn_count_requester = pg_txn_count_requester,
    .crl_next_number = pg_crl_next_number,
    .crl_put = pg_crl_put,
    .crl_get_last = pg_crl_get_last,
    .txn_reply_put = pg_reply_put,
    .txn_reply_get = pg_reply_get,
    .txn_reply_purge = pg_reply_purge,
    .vendor_crl_put = pg_vendor_crl_put,
    .vendor_crl_list = pg_vendor_crl_list,
    .audit_head = pg_audit_head,
    .audit_insert = pg_audit_insert,
    .audit_foreach = pg_audit_foreach,
    .audit_list = pg_audit_list,
    .audit_count = pg_audit_count,
    .pending_insert = pg_pending_insert,
    .pending_get = pg_pending_get,
    .pending_set_state = pg_pending_set_state,
    .pending_list = pg_pending_list,
    .pending_list_expired = pg_pending_list_expired,
    .pending_list_stale = pg_pending_list_stale,
    .pending_purge = pg_pending_purge,
    .rollover_insert = pg_rollover_insert,
    .rollover_list = pg_rollover_list,
    .change_token = NULL,           /* no cheap token: callers read rows */
    .device_secret_put = pg_secret_put,
    .device_secret_get = pg_secret_get,
    .device_secret_fail = pg_secret_fail,
    .device_secret_set = pg_secret_set,
};
