/*
 * Internal interface between the store front end (store.c, store_audit.c)
 * and its backends: one table of function pointers per backend, as curl's
 * vtls does. Only src/store/ includes this header.
 */
#ifndef CMPCA_STORE_INT_H
#define CMPCA_STORE_INT_H

#include "store/store.h"

#include <stdarg.h>
#include <stdatomic.h>

/* Column lists of the tables, in the order both backends read them. */
#define STORE_CERT_COLS "id,ca_id,serial,subject,not_before,not_after,der," \
    "sha256,status,revoked_at,reason,device_id,profile,created,vendor_sha256," \
    "vendor_serial"
#define STORE_CA_COLS "id,name,cert,chain,key_ref,signer_cert,signer_key_ref," \
    "created"
#define STORE_VENDOR_COLS "id,name,certs,created,disabled"
#define STORE_DEVICE_COLS "id,vendor_id,identifier,state,cert_id,created," \
    "updated"
#define STORE_RA_COLS "id,name,cert,sha256,created,ops,ra_verified," \
    "disabled,updated"
#define STORE_TXN_COLS "tid,alias,type,state,cert_req_id,created,deadline," \
    "updated,requester,sender_nonce,cert_id,old_cert_id,device_id,req_nonce"
#define STORE_SECRET_COLS "device_id,ref,sealed,failures,locked,consumed," \
    "created,updated"
#define STORE_PENDING_COLS "tid,alias,type,state,requester,device_id," \
    "device,profile,subject,request,vendor_cert,created,expires,updated," \
    "decided_by,decided_at,reason"
#define STORE_AUDIT_COLS "seq,time,actor,action,object,details,hash"

struct store_ops;

struct store {
    const struct store_ops *ops;
    void *be;                      /* backend state */
    int schema_version;
    _Atomic uint64_t changes;      /* write commits of this STORE (for
                                    * store_change_token) */
};

struct store_tx {
    STORE *st;
    int write;                     /* 1 for store_begin, 0 for read */
    void *conn;                    /* backend connection held by the tx */
    uint64_t be_batch;             /* backend: group-commit batch */
    int be_flags;                  /* backend: private flags */
    char errmsg[256];
};

/* Callback used by the audit walk: return 1 to go on, 0 to stop. */
typedef int (*store_audit_cb)(void *arg, const struct store_audit_row *row);

struct store_ops {
    const char *name;
    enum store_rc (*open)(const struct store_conf *sc, void **be,
                          int *schema_version, char *err, size_t errlen);
    void (*close)(void *be);
    enum store_rc (*begin)(STORE_TX *tx);       /* uses tx->write */
    enum store_rc (*commit)(STORE_TX *tx);      /* always releases conn */
    void (*rollback)(STORE_TX *tx);             /* always releases conn */

    enum store_rc (*ca_insert)(STORE_TX *, const struct store_ca *, int64_t *);
    enum store_rc (*ca_update)(STORE_TX *, const struct store_ca *);
    enum store_rc (*ca_get)(STORE_TX *, int64_t, const char *,
                            struct store_ca **);
    enum store_rc (*ca_list)(STORE_TX *, struct store_ca ***, size_t *);

    enum store_rc (*cert_insert)(STORE_TX *, const struct store_cert *,
                                 const unsigned char *sha, int64_t *);
    /* by id (id > 0) or by serial (serial != NULL) */
    enum store_rc (*cert_get)(STORE_TX *, int64_t id, int64_t ca_id,
                              const unsigned char *serial, size_t serial_len,
                              struct store_cert **);
    enum store_rc (*cert_revoke)(STORE_TX *, int64_t, int, int64_t);
    enum store_rc (*cert_unrevoke)(STORE_TX *, int64_t);
    enum store_rc (*cert_list)(STORE_TX *, const struct store_cert_filter *,
                               struct store_cert ***, size_t *);
    enum store_rc (*cert_count)(STORE_TX *, const struct store_cert_filter *,
                                int64_t *);
    enum store_rc (*cert_foreach_revoked)(STORE_TX *, int64_t, int64_t,
                                          store_revoked_cb, void *);

    enum store_rc (*vendor_insert)(STORE_TX *, const struct store_vendor *,
                                   int64_t *);
    enum store_rc (*vendor_update)(STORE_TX *, const struct store_vendor *);
    enum store_rc (*vendor_get)(STORE_TX *, int64_t, const char *,
                                struct store_vendor **);
    enum store_rc (*vendor_list)(STORE_TX *, struct store_vendor ***,
                                 size_t *);
    enum store_rc (*vendor_delete)(STORE_TX *, int64_t, int);
    enum store_rc (*vendor_set_disabled)(STORE_TX *, int64_t, int);

    enum store_rc (*device_insert)(STORE_TX *, int64_t, const char *,
                                   int64_t *);
    enum store_rc (*device_get)(STORE_TX *, int64_t, int64_t, const char *,
                                struct store_device **);
    enum store_rc (*device_set_state)(STORE_TX *, int64_t, int, int, int64_t);
    enum store_rc (*device_delete)(STORE_TX *, int64_t);
    enum store_rc (*device_list)(STORE_TX *,
                                 const struct store_device_filter *,
                                 struct store_device ***, size_t *);
    enum store_rc (*device_count)(STORE_TX *,
                                  const struct store_device_filter *,
                                  int64_t *);
    enum store_rc (*device_import)(STORE_TX *, int64_t, store_ident_next_fn,
                                   void *, uint64_t *);

    enum store_rc (*ra_insert)(STORE_TX *, const struct store_ra *,
                               const unsigned char *sha, int64_t *);
    enum store_rc (*ra_get)(STORE_TX *, int64_t, const char *,
                            const unsigned char *sha, struct store_ra **);
    enum store_rc (*ra_list)(STORE_TX *, struct store_ra ***, size_t *);
    enum store_rc (*ra_set_disabled)(STORE_TX *, int64_t, int);
    enum store_rc (*ra_delete)(STORE_TX *, int64_t);

    enum store_rc (*cmp_txn_insert)(STORE_TX *, const struct store_cmp_txn *);
    enum store_rc (*cmp_txn_get)(STORE_TX *, const unsigned char *, size_t,
                                 struct store_cmp_txn **);
    enum store_rc (*cmp_txn_set_state)(STORE_TX *, const unsigned char *,
                                       size_t, int, int);
    enum store_rc (*cmp_txn_update)(STORE_TX *, const struct store_cmp_txn *,
                                    int);
    enum store_rc (*cmp_txn_list_expired)(STORE_TX *, int64_t, long,
                                          struct store_cmp_txn ***, size_t *);
    enum store_rc (*cmp_txn_purge)(STORE_TX *, int64_t, int64_t *);
    enum store_rc (*cmp_txn_list_waiting_device)(STORE_TX *, int64_t, long,
                                                 struct store_cmp_txn ***,
                                                 size_t *);
    enum store_rc (*cmp_txn_count_requester)(STORE_TX *, const unsigned char *,
                                             int64_t, int64_t *, int64_t *);

    enum store_rc (*crl_next_number)(STORE_TX *, int64_t, int64_t *);
    enum store_rc (*crl_put)(STORE_TX *, const struct store_crl *);
    enum store_rc (*crl_get_last)(STORE_TX *, int64_t, struct store_crl **);
    enum store_rc (*vendor_crl_put)(STORE_TX *,
                                    const struct store_vendor_crl *);
    enum store_rc (*vendor_crl_list)(STORE_TX *, int64_t,
                                     struct store_vendor_crl ***, size_t *);
    enum store_rc (*txn_reply_put)(STORE_TX *, const struct store_txn_reply *);
    enum store_rc (*txn_reply_get)(STORE_TX *, const unsigned char *,
                                   struct store_txn_reply **);
    enum store_rc (*txn_reply_purge)(STORE_TX *, int64_t, int64_t *);

    /* audit primitives; the hash chain itself lives in store_audit.c */
    enum store_rc (*audit_head)(STORE_TX *, int64_t *seq,
                                unsigned char hash[STORE_SHA256_LEN]);
    /* inserts |row| and sets the head to (row->seq, row->hash) */
    enum store_rc (*audit_insert)(STORE_TX *, const struct store_audit_row *);
    /* walks all rows in seq order */
    enum store_rc (*audit_foreach)(STORE_TX *, store_audit_cb, void *);
    enum store_rc (*audit_list)(STORE_TX *, long,
                                struct store_audit_row ***, size_t *);
    enum store_rc (*audit_count)(STORE_TX *, int64_t *, int64_t *);

    enum store_rc (*rollover_insert)(STORE_TX *,
                                     const struct store_rollover *,
                                     int64_t *);
    enum store_rc (*rollover_list)(STORE_TX *, int64_t,
                                   struct store_rollover ***, size_t *);
    /* a value that changes whenever any connection (any process) commits;
     * NULL or STORE_NOTFOUND: the backend has no cheap one */
    enum store_rc (*change_token)(void *be, uint64_t *tok);
    /* device secrets (mac mode) */
    enum store_rc (*device_secret_put)(STORE_TX *, int64_t, const char *,
                                       const unsigned char *, size_t);
    enum store_rc (*device_secret_get)(STORE_TX *, int64_t, const char *,
                                       struct store_device_secret **);
    enum store_rc (*device_secret_fail)(STORE_TX *, int64_t, int, int *,
                                        int *);
    enum store_rc (*device_secret_set)(STORE_TX *, int64_t, int);
    /* requests awaiting approval (cmp_pending) */
    enum store_rc (*pending_insert)(STORE_TX *, const struct store_pending *);
    enum store_rc (*pending_get)(STORE_TX *, const unsigned char *, size_t,
                                 struct store_pending **);
    enum store_rc (*pending_set_state)(STORE_TX *, const unsigned char *,
                                       size_t, int, int, const char *,
                                       const char *);
    enum store_rc (*pending_list)(STORE_TX *,
                                  const struct store_pending_filter *,
                                  struct store_pending ***, size_t *);
    enum store_rc (*pending_list_expired)(STORE_TX *, int64_t, long,
                                          struct store_pending ***, size_t *);
    enum store_rc (*pending_purge)(STORE_TX *, int64_t, int64_t *);
    enum store_rc (*pending_list_stale)(STORE_TX *, int64_t, long,
                                        struct store_pending ***, size_t *);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* Test hook: runs EXPLAIN QUERY PLAN on every cached SQLite statement and
 * returns 0 with the statement in |err| if one scans a table it should
 * look up through an index (so lookups stay flat at 10M rows); else 1. */
int store_sqlite_plan_check(STORE *st, char *err, size_t errlen);
/* Test hook: how many passes the background checkpointer has made. */
unsigned long store_sqlite_checkpoints(STORE *st);
/* Test hook: the |n|th use of a cached SQLite statement from now on fails
 * with STORE_ERROR "injected fault" (BEGIN, SAVEPOINT, COMMIT included);
 * 0 turns injection off. */
void store_sqlite_fault(long n);

/* Test hook: the |n|th PostgreSQL statement from now on (BEGIN and COMMIT
 * included) fails with STORE_ERROR "injected fault"; 0 turns it off. */
void store_pg_fault(long n);

/* Records a message on |tx| (store_tx_errmsg) and logs it at debug level.
 * Returns |rc|, for `return store_tx_fail(tx, STORE_ERROR, "...")`. */
enum store_rc store_tx_fail(STORE_TX *tx, enum store_rc rc, const char *fmt,
                            ...) __attribute__((format(printf, 3, 4)));
/* Computes SHA-256 of |data|; returns 1 on success. */
int store_sha256(const void *data, size_t len,
                 unsigned char out[STORE_SHA256_LEN]);
/* Splits a concatenation of DER objects; returns 1 and a malloc'ed array
 * (NULL, 0 for an empty input) or 0 if the bytes are not whole DER TLVs. */
int store_der_split(const unsigned char *buf, size_t len,
                    struct store_der **out, size_t *n);
/* Concatenates |n| DER objects into one malloc'ed buffer; returns 1 or 0
 * if an element is not exactly one DER TLV. */
/* Runs the schema migrations |from| .. |latest|-1 of |migrations| through
 * |exec| (a backend's "execute this SQL" on connection |db|), recording
 * each new version in schema_version, inside the caller's transaction.
 * Returns 1, or 0 with a message in |err|. */
typedef int (*store_exec_fn)(void *db, const char *sql, char *err,
                             size_t errlen);
int store_migrate_steps(int from, int latest, const char *const *migrations,
                        store_exec_fn exec, void *db, char *err,
                        size_t errlen);
/* The schema version |v| found is newer than |latest|: formats why. */
int store_schema_too_new(int v, int latest, char *err, size_t errlen);

/* Frees an audit row (NULL harmless). */
void store_audit_row_free(struct store_audit_row *r);
/* Returns an owned copy of the row |b| whose strings are borrowed (a
 * backend's result buffers), or NULL. */
struct store_audit_row *store_audit_row_dup(const struct store_audit_row *b);
/* store_audit_row_free with the signature of a list element freer. */
void store_audit_row_free_elem(void *row);

int store_der_join(const struct store_der *v, size_t n, unsigned char **out,
                   size_t *len);

#endif
