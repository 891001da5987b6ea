/*
 * The durable store: CAs, certificates, vendors, devices, RAs, CMP
 * transactions, CRL numbers and the hash-chained audit trail, behind one
 * interface (SQLite now, PostgreSQL later; callers never see which).
 */
#ifndef CMPCA_STORE_H
#define CMPCA_STORE_H

#include <stddef.h>
#include <stdint.h>

struct conf;

/*
 * Conventions
 * - Every record operation takes a STORE_TX (from store_begin or
 *   store_begin_read) and returns an enum store_rc.
 * - Ids are int64_t > 0; 0 in an id field means "none" (NULL in the db).
 * - Times are unix seconds (int64_t). A "created"/"updated" field left 0 on
 *   insert is set to the current time by the store.
 * - Records returned by a get/list are malloc'ed; the caller frees them with
 *   the matching _free (NULL harmless). Records passed to insert/update are
 *   only read (borrowed).
 * - Byte strings are (pointer, length) pairs; DER lists are arrays of
 *   struct store_der.
 * - On any rc other than STORE_OK, output pointers are set to NULL/0.
 * - After STORE_ERROR or STORE_BUSY inside a write transaction the caller
 *   should roll back; STORE_EXISTS, STORE_NOTFOUND and STORE_CONFLICT leave
 *   the transaction usable (the failed statement changed nothing).
 */

typedef struct store STORE;
typedef struct store_tx STORE_TX;

enum store_rc {
    STORE_OK = 0,
    STORE_NOTFOUND,      /* no such row */
    STORE_EXISTS,        /* a unique constraint refused the insert */
    STORE_CONFLICT,      /* a conditional update matched nothing, or a
                          * delete refused because rows depend on the object */
    STORE_BUSY,          /* the database stayed locked for busy_timeout */
    STORE_ERROR          /* anything else (I/O, corruption, out of memory) */
};

/* Returns a constant name for |rc| ("ok", "not found", "exists", ...). */
const char *store_rc_str(enum store_rc rc);

/* ------------------------------------------------------------------ */
/* Configuration and lifetime                                          */

/*
 * How to open the store. Fill it with store_conf_init() + store_conf_load()
 * or set the fields by hand (the strings are borrowed).
 */
struct store_conf {
    const char *backend;     /* "sqlite" (default) or "postgresql" */
    const char *path;        /* sqlite: database file */
    const char *conninfo;    /* postgresql: libpq conninfo, no password */
    const char *password;    /* postgresql: secret spec (file:PATH or
                              * env:VAR) of the password, or NULL */
    int synchronous_full;    /* sqlite: 1 = synchronous=FULL (default,
                              * a commit survives power loss), 0 = NORMAL
                              * (survives process crashes only) */
    long busy_timeout_ms;    /* wait this long for a lock (default 5000) */
    char *alloc_;            /* private: memory owned by store_conf_load */
};

/* Sets the defaults: backend "sqlite", path NULL, synchronous_full 1,
 * busy_timeout_ms 5000. */
void store_conf_init(struct store_conf *sc);
/*
 * Fills |sc| from the [store] section of |conf|. Keys:
 *   backend = sqlite | postgresql
 *   path = FILE          (sqlite, required; relative to the config file's
 *                         directory)
 *   synchronous = full | normal          (sqlite)
 *   conninfo = libpq conninfo (postgresql, required; no password in it)
 *   password = file:PATH | env:VAR       (postgresql, optional)
 *   busy_timeout = DURATION (e.g. "5s"; default 5s; postgresql: the
 *                         lock_timeout of write transactions)
 * Returns 1, or 0 with a "file:line: ..." message in |err| (no [store]
 * section, missing path, bad value, unknown key). Release with
 * store_conf_clear().
 */
int store_conf_load(const struct conf *conf, struct store_conf *sc,
                    char *err, size_t errlen);
/* Frees what store_conf_load allocated and resets |sc| to the defaults. */
void store_conf_clear(struct store_conf *sc);

/*
 * Opens (creating if needed) the store and applies pending schema
 * migrations inside one transaction. SQLite: WAL, foreign keys on,
 * busy_timeout, synchronous per |sc|. Several processes may open the same
 * file. The handle is thread-safe: read transactions borrow a connection
 * from an internal pool (prepared statements cached per connection), so
 * any number of threads may read at once; write transactions share one
 * writer connection with group commit (see store_begin).
 * PostgreSQL: the same interface over libpq; every transaction holds a
 * pooled connection of its own (up to 32 per handle), writers run
 * concurrently at READ COMMITTED (conditional UPDATEs give the same
 * STORE_CONFLICT results) and the audit head row serialises appends; a
 * deadlock or a lock held beyond busy_timeout gives STORE_BUSY.
 * Returns STORE_OK and sets *out, or another code with a message in |err|.
 */
enum store_rc store_open(const struct store_conf *sc, STORE **out,
                         char *err, size_t errlen);
/* Closes every pooled connection. All transactions must be finished.
 * NULL is harmless. */
void store_close(STORE *st);
/* Returns the schema version the store is at (for diagnostics). */
int store_schema_version(STORE *st);
/*
 * A cheap store change token for caches of derived data (the OCSP
 * response cache): *tok changes whenever a write transaction commits,
 * through this STORE or any other connection or process on the same
 * database. SQLite: PRAGMA data_version on a dedicated read connection
 * plus a counter of this STORE's own commits (a few microseconds, no
 * row read). PostgreSQL has no such cheap value: STORE_NOTFOUND, and the
 * caller reads the rows it depends on. Thread-safe.
 */
enum store_rc store_change_token(STORE *st, uint64_t *tok);

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

/*
 * Starts a write transaction. Writers are serialised up front (SQLite:
 * BEGIN IMMEDIATE), so they never deadlock, and read the latest committed
 * state. Within one STORE, write transactions run one after the other on
 * one connection and share COMMITs (group commit): a transaction that ends
 * while others wait joins their batch inside a SAVEPOINT, so its rollback
 * stays private, and store_commit returns once the batch's single fsync
 * made it durable. Keep write transactions short (no signing, no network
 * inside). A thread may hold only one write transaction at a time (a
 * second store_begin from it fails with STORE_ERROR rather than hang).
 * STORE_BUSY if another process held the lock for busy_timeout.
 */
enum store_rc store_begin(STORE *st, STORE_TX **out);
/* Starts a read-only transaction (a consistent snapshot; never blocks
 * writers). Write operations on it fail with STORE_ERROR. */
enum store_rc store_begin_read(STORE *st, STORE_TX **out);
/* Commits and frees |tx|. Returns STORE_OK only once the change is durable
 * (per synchronous). On failure the transaction is rolled back and freed
 * all the same. */
enum store_rc store_commit(STORE_TX *tx);
/* store_commit(*tx), then *tx = NULL whatever the outcome: for a commit at
 * the end of an || chain whose failure path calls store_rollback(*tx). */
enum store_rc store_commit_clear(STORE_TX **tx);
/* Rolls back and frees |tx|. NULL is harmless. */
void store_rollback(STORE_TX *tx);
/* Returns the last database error message seen on |tx| ("" if none); valid
 * until the next call on |tx|. */
const char *store_tx_errmsg(const STORE_TX *tx);

/* ------------------------------------------------------------------ */
/* Shared types                                                        */

#define STORE_SHA256_LEN 32
#define STORE_SERIAL_MAX 64     /* longest serial number we store (octets) */
#define STORE_TID_MAX 64        /* longest CMP transactionID */
#define STORE_NONCE_MAX 64      /* longest CMP nonce */

/* One DER object (a certificate). */
struct store_der {
    unsigned char *der;
    size_t len;
};

/* Frees an array of |n| DER objects and the array (NULL harmless). */
void store_der_list_free(struct store_der *v, size_t n);

/* ------------------------------------------------------------------ */
/* CAs (our own issuing CAs)                                           */

struct store_ca {
    int64_t id;
    char *name;                    /* unique */
    unsigned char *cert_der;       /* the CA certificate */
    size_t cert_len;
    struct store_der *chain;       /* issuer chain above the CA certificate,
                                    * up to and including the root (empty
                                    * for a self-signed root) */
    size_t nchain;
    char *key_ref;                 /* PEM file path or pkcs11: URI */
    unsigned char *signer_cert_der;/* optional CMP signer (NULL = the CA
                                    * itself signs CMP messages) */
    size_t signer_cert_len;
    char *signer_key_ref;          /* NULL when no separate signer */
    int64_t created;
};

void store_ca_free(struct store_ca *ca);
/* Frees an array of |n| CAs (from a list call) and the array. */
void store_ca_list_free(struct store_ca **v, size_t n);
/* Inserts |ca| (its id is ignored) and sets *id. STORE_EXISTS if the name
 * is taken. */
enum store_rc store_ca_insert(STORE_TX *tx, const struct store_ca *ca,
                              int64_t *id);
/* Replaces every field of CA |ca->id| except name and created (key or
 * signer rollover). STORE_NOTFOUND if absent. */
enum store_rc store_ca_update(STORE_TX *tx, const struct store_ca *ca);
enum store_rc store_ca_get(STORE_TX *tx, int64_t id, struct store_ca **out);
enum store_rc store_ca_get_by_name(STORE_TX *tx, const char *name,
                                   struct store_ca **out);
/* All CAs ordered by id. */
enum store_rc store_ca_list(STORE_TX *tx, struct store_ca ***out, size_t *n);

/* ------------------------------------------------------------------ */
/* Certificates (every certificate we issued)                           */

enum store_cert_status { STORE_CERT_VALID = 0, STORE_CERT_REVOKED = 1 };

struct store_cert {
    int64_t id;
    int64_t ca_id;
    /* Serial number magnitude, big-endian, no sign octet: exactly what
     * ASN1_STRING_get0_data()/ASN1_STRING_length() give for a (positive)
     * ASN1_INTEGER. 1..STORE_SERIAL_MAX octets. */
    unsigned char serial[STORE_SERIAL_MAX];
    size_t serial_len;
    char *subject;                 /* one-line text (e.g. RFC 2253) */
    int64_t not_before, not_after;
    unsigned char *der;
    size_t der_len;
    unsigned char sha256[STORE_SHA256_LEN]; /* SHA-256 of der; computed by
                                             * the store on insert */
    int status;                    /* enum store_cert_status */
    int64_t revoked_at;            /* 0 unless revoked */
    int reason;                    /* RFC 5280 CRLReason code; -1 = none */
    int64_t device_id;             /* 0 = not a device certificate */
    char *profile;                 /* may be NULL */
    int64_t created;
    /* Optional (0 = not recorded): the vendor certificate the device
     * authenticated with when this operator certificate was issued (3GPP
     * ir), as the SHA-256 of its DER and its serial magnitude octets. */
    int has_vendor;
    unsigned char vendor_sha256[STORE_SHA256_LEN];
    unsigned char vendor_serial[STORE_SERIAL_MAX];
    size_t vendor_serial_len;      /* 1..STORE_SERIAL_MAX when has_vendor */
};

void store_cert_free(struct store_cert *c);
void store_cert_list_free(struct store_cert **v, size_t n);
/*
 * Inserts |c| (id, sha256 ignored; status/revoked_at/reason are stored as
 * given, normally VALID/0/-1) and sets *id. STORE_EXISTS if (ca_id, serial)
 * is taken (random serial collision: pick a new serial, re-sign, retry; the
 * same certificate again has the same serial); STORE_NOTFOUND if ca_id or
 * a non-zero device_id does not exist.
 */
enum store_rc store_cert_insert(STORE_TX *tx, const struct store_cert *c,
                                int64_t *id);
enum store_rc store_cert_get(STORE_TX *tx, int64_t id, struct store_cert **out);
/* Lookup by issuing CA and serial (magnitude octets as above). */
enum store_rc store_cert_get_by_serial(STORE_TX *tx, int64_t ca_id,
                                       const unsigned char *serial,
                                       size_t serial_len,
                                       struct store_cert **out);
/* RFC 5280 CRLReason codes the store gives a meaning to. */
#define STORE_REASON_HOLD 6            /* certificateHold */
#define STORE_REASON_REMOVE 8          /* removeFromCRL (never stored) */
/*
 * Marks certificate |id| revoked at |when| with RFC 5280 |reason| (-1 =
 * none). A certificate on hold (revoked with certificateHold) may be
 * revoked again with another reason: the hold becomes that revocation.
 * STORE_NOTFOUND if absent; STORE_CONFLICT if it is already revoked (on
 * hold, with certificateHold again). removeFromCRL is no revocation
 * reason (RFC 5280 5.3.1: only delta CRLs carry it; see
 * store_cert_unrevoke) and 7 is unassigned: refused with STORE_ERROR.
 */
enum store_rc store_cert_revoke(STORE_TX *tx, int64_t id, int reason,
                                int64_t when);
/*
 * Releases certificate |id| from hold: valid again (revoked_at, reason
 * cleared) if it is revoked with certificateHold. STORE_NOTFOUND if
 * absent; STORE_CONFLICT if it is valid or revoked for another reason.
 */
enum store_rc store_cert_unrevoke(STORE_TX *tx, int64_t id);

/* Filter for store_cert_list/store_cert_count; zero it for "everything". */
struct store_cert_filter {
    int64_t ca_id;        /* 0 = any */
    int64_t device_id;    /* 0 = any */
    int status;           /* -1 = any (set it: 0 means VALID) */
    int64_t expires_before; /* 0 = any; else not_after < this */
    int64_t expires_after;  /* 0 = any; else not_after >= this */
    const unsigned char *vendor_sha256; /* NULL = any; else issued against
                                         * this vendor certificate */
    int64_t vendor_id;    /* 0 = any; else certificates of the devices of
                           * this vendor */
    int skip_der;         /* 1 = do not load der (lighter listings) */
    long limit;           /* 0 = no limit */
    long offset;
};

/* Initialises |f| to match everything (status -1, rest 0). */
void store_cert_filter_init(struct store_cert_filter *f);
/* Certificates matching |f|, newest id first. */
enum store_rc store_cert_list(STORE_TX *tx, const struct store_cert_filter *f,
                              struct store_cert ***out, size_t *n);
/* Number of certificates matching |f| (limit/offset ignored). */
enum store_rc store_cert_count(STORE_TX *tx, const struct store_cert_filter *f,
                               int64_t *n);

/* One entry of a CRL. */
struct store_revoked {
    const unsigned char *serial;   /* borrowed for the callback's duration */
    size_t serial_len;
    int64_t revoked_at;
    int reason;                    /* -1 = none */
};
/* Callback for store_cert_foreach_revoked: return 1 to go on, 0 to stop
 * (the call then returns STORE_ERROR). */
typedef int (*store_revoked_cb)(void *arg, const struct store_revoked *r);
/* Calls |cb| for every revoked certificate of CA |ca_id| whose not_after is
 * >= |not_after_min| (0 = all), in serial order. Streams: no size limit. */
enum store_rc store_cert_foreach_revoked(STORE_TX *tx, int64_t ca_id,
                                         int64_t not_after_min,
                                         store_revoked_cb cb, void *arg);

/* ------------------------------------------------------------------ */
/* Vendors (external factory CAs we trust for initial enrollment)      */

struct store_vendor {
    int64_t id;
    char *name;                    /* unique */
    struct store_der *certs;       /* trusted CA certs: vendor CA + chain */
    size_t ncerts;
    int64_t created;
    int disabled;                  /* 1: no new enrollments through it
                                    * (store_vendor_set_disabled) */
};

void store_vendor_free(struct store_vendor *v);
void store_vendor_list_free(struct store_vendor **v, size_t n);
/* Inserts |v| and sets *id. STORE_EXISTS if the name is taken. */
enum store_rc store_vendor_insert(STORE_TX *tx, const struct store_vendor *v,
                                  int64_t *id);
/* Replaces the certificate list of vendor |v->id|. */
enum store_rc store_vendor_update(STORE_TX *tx, const struct store_vendor *v);
enum store_rc store_vendor_get(STORE_TX *tx, int64_t id,
                               struct store_vendor **out);
enum store_rc store_vendor_get_by_name(STORE_TX *tx, const char *name,
                                       struct store_vendor **out);
/* All vendors ordered by name. */
enum store_rc store_vendor_list(STORE_TX *tx, struct store_vendor ***out,
                                size_t *n);
/* Sets the disabled flag of vendor |id| (1 disabled, 0 enabled).
 * STORE_NOTFOUND if absent. */
enum store_rc store_vendor_set_disabled(STORE_TX *tx, int64_t id,
                                        int disabled);
/* Deletes vendor |id|. With |force| 0 it refuses with STORE_CONFLICT while
 * devices of the vendor exist; with |force| 1 the devices go too (their
 * certificates stay, with device_id cleared). */
enum store_rc store_vendor_delete(STORE_TX *tx, int64_t id, int force);

/* ------------------------------------------------------------------ */
/* Devices (the allow-list)                                            */

enum store_device_state {
    STORE_DEV_REGISTERED = 0,  /* allowed, never enrolled */
    STORE_DEV_PENDING = 1,     /* certificate issued, certConf awaited */
    STORE_DEV_ENROLLED = 2,    /* holds an operator certificate */
    STORE_DEV_REVOKED = 3,     /* its certificate was revoked */
    STORE_DEV_DISABLED = 4     /* refused by the operator */
};
/* "registered", "pending", ... ; NULL for an unknown value. */
const char *store_device_state_str(int state);
/* Parses a state name; returns the state or -1. */
int store_device_state_parse(const char *s);

struct store_device {
    int64_t id;
    int64_t vendor_id;
    char *identifier;              /* unique per vendor (e.g. the vendor
                                    * certificate's subject serialNumber) */
    int state;                     /* enum store_device_state */
    int64_t cert_id;               /* current operator certificate; 0 none */
    int64_t created;
    int64_t updated;
};

void store_device_free(struct store_device *d);
void store_device_list_free(struct store_device **v, size_t n);
/* Inserts a device in state REGISTERED and sets *id (may be NULL).
 * STORE_EXISTS if the identifier is taken for this vendor; STORE_NOTFOUND
 * if the vendor does not exist. Identifiers are 1..1024 octets. */
enum store_rc store_device_insert(STORE_TX *tx, int64_t vendor_id,
                                  const char *identifier, int64_t *id);
enum store_rc store_device_get(STORE_TX *tx, int64_t id,
                               struct store_device **out);
enum store_rc store_device_get_by_ident(STORE_TX *tx, int64_t vendor_id,
                                        const char *identifier,
                                        struct store_device **out);

/* Pass as |cert_id| to store_device_set_state to leave cert_id unchanged. */
#define STORE_KEEP_CERT ((int64_t)-1)
/*
 * Moves device |id| from |from_state| to |to_state| and sets its cert_id
 * (0 clears it; STORE_KEEP_CERT leaves it) in one conditional UPDATE.
 * Returns STORE_OK, STORE_CONFLICT if the device is not in |from_state|
 * (e.g. a concurrent enrollment won), or STORE_NOTFOUND if absent.
 */
enum store_rc store_device_set_state(STORE_TX *tx, int64_t id, int from_state,
                                     int to_state, int64_t cert_id);
/* Deletes device |id| (certificates keep their rows, device_id cleared). */
enum store_rc store_device_delete(STORE_TX *tx, int64_t id);

struct store_device_filter {
    int64_t vendor_id;    /* 0 = any */
    int state;            /* -1 = any */
    long limit;           /* 0 = no limit */
    long offset;
};
void store_device_filter_init(struct store_device_filter *f);
/* Devices matching |f| ordered by (vendor, identifier). */
enum store_rc store_device_list(STORE_TX *tx,
                                const struct store_device_filter *f,
                                struct store_device ***out, size_t *n);
enum store_rc store_device_count(STORE_TX *tx,
                                 const struct store_device_filter *f,
                                 int64_t *n);

/*
 * Iterator for store_device_import: returns 1 with *ident (and its length
 * *len) set to the next identifier (borrowed until the next call), 0 at
 * the end, -1 on a parse error (the iterator records why).
 */
typedef int (*store_ident_next_fn)(void *arg, const char **ident, size_t *len);
/* Longest device identifier, in octets. */
#define STORE_IDENT_MAX 1024
/*
 * Bulk-inserts devices (state REGISTERED) for |vendor_id| in the caller's
 * write transaction with one prepared statement. Returns STORE_OK with the
 * number inserted in *count; STORE_EXISTS when an identifier is already
 * registered or repeated in the input (the one the iterator returned last
 * is the culprit); STORE_ERROR when the iterator returned -1 (or a db
 * error). On any failure the caller must roll back (all-or-nothing).
 * Empty identifiers, ones longer than STORE_IDENT_MAX octets or with a NUL
 * are refused (STORE_ERROR with a message in store_tx_errmsg).
 */
enum store_rc store_device_import(STORE_TX *tx, int64_t vendor_id,
                                  store_ident_next_fn next, void *arg,
                                  uint64_t *count);

/* ------------------------------------------------------------------ */
/* RAs (registration authorities allowed to act for aliases)           */

/* The CMP operations an RA may request for devices (struct store_ra ops). */
enum store_ra_op {
    STORE_RA_OP_IR = 1u << 0,
    STORE_RA_OP_CR = 1u << 1,
    STORE_RA_OP_P10CR = 1u << 2,
    STORE_RA_OP_KUR = 1u << 3,
    STORE_RA_OP_RR = 1u << 4
};
/* Every operation (the default of `cmpca ra add` without --op). */
#define STORE_RA_OP_ALL 0x1fu

/* The name of the single operation bit |op| ("ir", "cr", "p10cr", "kur",
 * "rr"); NULL if |op| is not exactly one known bit. */
const char *store_ra_op_name(unsigned op);
/* Parses a comma-separated list of operation names ("ir,kur"; "all" or "*"
 * = STORE_RA_OP_ALL; spaces around names allowed) into *mask. Returns 1, or
 * 0 for an empty list or an unknown name. */
int store_ra_ops_parse(const char *list, unsigned *mask);
/* Writes the names of the bits of |mask| comma-separated ("ir,cr,kur";
 * "" for 0) into |buf|. Returns 1, or 0 if |buflen| is too small. */
int store_ra_ops_format(unsigned mask, char *buf, size_t buflen);
/* The operation bit for a CMP message type (enum store_cmp_type: IR, CR,
 * P10CR, KUR, RR); 0 for any other type (genm: not an RA privilege). */
unsigned store_ra_op_for_cmp_type(int cmp_type);

struct store_ra {
    int64_t id;
    char *name;                    /* unique */
    unsigned char *cert_der;
    size_t cert_len;
    unsigned char sha256[STORE_SHA256_LEN]; /* of cert_der; set by the store;
                                             * unique */
    char **aliases;                /* aliases it may act for (at least one
                                    * for a usable RA), sorted on read */
    size_t naliases;
    char **profiles;               /* profiles it may request; none, or one
                                    * of them "*", = any profile of the
                                    * alias; sorted on read */
    size_t nprofiles;
    unsigned ops;                  /* enum store_ra_op bits it may request */
    int ra_verified;               /* 1 = may assert raVerified POP */
    int disabled;                  /* 1 = refused by the operator (the row
                                    * stays, lookups still return it) */
    int64_t created;
    int64_t updated;               /* last enable/disable (= created at
                                    * first) */
};

void store_ra_free(struct store_ra *ra);
void store_ra_list_free(struct store_ra **v, size_t n);
/* Inserts |ra| (id, sha256, updated ignored; disabled stored as given,
 * normally 0) and sets *id. STORE_EXISTS if the name or the certificate is
 * taken. Aliases and profiles must be non-empty strings; ops only known
 * bits (STORE_ERROR otherwise). */
enum store_rc store_ra_insert(STORE_TX *tx, const struct store_ra *ra,
                              int64_t *id);
enum store_rc store_ra_get(STORE_TX *tx, int64_t id, struct store_ra **out);
enum store_rc store_ra_get_by_name(STORE_TX *tx, const char *name,
                                   struct store_ra **out);
/* Lookup by SHA-256 of the RA certificate (the protecting cert of a
 * request). Disabled RAs are returned too (ra->disabled set): refusing
 * them is the caller's decision (see store_ra_check). */
enum store_rc store_ra_get_by_sha256(STORE_TX *tx,
                                     const unsigned char sha[STORE_SHA256_LEN],
                                     struct store_ra **out);
/* All RAs ordered by name, disabled ones included. */
enum store_rc store_ra_list(STORE_TX *tx, struct store_ra ***out, size_t *n);
/* Sets the disabled flag of RA |id| to |disabled| (0/1), updated = now, if
 * it is not so already. STORE_CONFLICT if it already is; STORE_NOTFOUND if
 * absent. */
enum store_rc store_ra_set_disabled(STORE_TX *tx, int64_t id, int disabled);
enum store_rc store_ra_delete(STORE_TX *tx, int64_t id);

/* Result of store_ra_check, in the order the checks run. */
enum store_ra_verdict {
    STORE_RA_ALLOWED = 0,
    STORE_RA_DISABLED,         /* the RA is disabled */
    STORE_RA_NO_ALIAS,         /* not registered for this alias */
    STORE_RA_NO_PROFILE,       /* not allowed this profile */
    STORE_RA_NO_OP             /* not allowed this operation */
};
/* "allowed", "disabled", "alias not allowed", ... (never NULL). */
const char *store_ra_verdict_str(enum store_ra_verdict v);
/*
 * May |ra| request operation |op| (one enum store_ra_op bit) for a device
 * on alias |alias| with profile |profile| (the profile the request would
 * be issued with; NULL matches only an RA allowed any profile)? Alias and
 * profile names compare exactly.
 * A profile list that is empty or contains "*" allows any profile. Only
 * the registry record is consulted: whether the RA certificate is trusted,
 * valid and not revoked, and whether raVerified may be asserted
 * (ra->ra_verified, the id-kp-cmcRA EKU, the alias), is for the caller.
 */
enum store_ra_verdict store_ra_check(const struct store_ra *ra,
                                     const char *alias, const char *profile,
                                     unsigned op);

/* ------------------------------------------------------------------ */
/* CMP transactions (stateless server: any node continues any one)     */

enum store_cmp_type {
    STORE_CMP_IR = 0, STORE_CMP_CR, STORE_CMP_KUR, STORE_CMP_P10CR,
    STORE_CMP_RR, STORE_CMP_GENM
};
enum store_cmp_state {
    STORE_CMP_WAITING_CONFIRM = 0, /* "issued": certificate sent, certConf
                                    * awaited */
    STORE_CMP_CONFIRMED,           /* certConf accepted, pkiConf sent */
    STORE_CMP_REJECTED,            /* certConf rejected the certificate, or
                                    * the request was refused */
    STORE_CMP_EXPIRED,             /* no certConf (or decision) in time */
    STORE_CMP_CLOSED,              /* finished without confirmation (rr,
                                    * genm, errors) */
    STORE_CMP_OPEN,                /* received, not yet answered (forwarded
                                    * upstream, say) */
    STORE_CMP_WAITING              /* answered "waiting": delayed delivery,
                                    * the client polls */
};
/* 1 for the states a transaction never leaves (purged after retention). */
#define STORE_CMP_FINISHED(s) ((s) >= STORE_CMP_CONFIRMED \
                               && (s) <= STORE_CMP_CLOSED)
/* Names ("ir", "issued", ...); NULL for unknown values. */
const char *store_cmp_type_str(int type);
const char *store_cmp_state_str(int state);

struct store_cmp_txn {
    unsigned char tid[STORE_TID_MAX];  /* transactionID, 1..64 octets */
    size_t tid_len;
    char *alias;                       /* may be NULL */
    int type;                          /* enum store_cmp_type */
    int state;                         /* enum store_cmp_state */
    int cert_req_id;                   /* 0, or -1 for p10cr */
    int64_t created;
    int64_t deadline;                  /* certConf must arrive before */
    int64_t updated;
    unsigned char requester_sha256[STORE_SHA256_LEN]; /* protecting cert */
    int has_requester;                 /* 0 when not signature-protected */
    unsigned char sender_nonce[STORE_NONCE_MAX]; /* our senderNonce in the
                                                  * response (certConf's
                                                  * recipNonce must match) */
    size_t sender_nonce_len;
    unsigned char req_nonce[STORE_NONCE_MAX]; /* the request's senderNonce
                                               * (a certConf must bring a
                                               * fresh one); set at insert,
                                               * never updated */
    size_t req_nonce_len;              /* 0: not recorded (older rows) */
    int64_t cert_id;                   /* issued certificate; 0 none */
    int64_t old_cert_id;               /* kur: certificate renewed */
    int64_t device_id;                 /* 0 none */
};

void store_cmp_txn_free(struct store_cmp_txn *t);
void store_cmp_txn_list_free(struct store_cmp_txn **v, size_t n);
/* Inserts |t|. STORE_EXISTS if the transactionID was ever used (answer
 * transactionIdInUse) until store_cmp_txn_purge removes it. */
enum store_rc store_cmp_txn_insert(STORE_TX *tx, const struct store_cmp_txn *t);
enum store_rc store_cmp_txn_get(STORE_TX *tx, const unsigned char *tid,
                                size_t tid_len, struct store_cmp_txn **out);
/* Sets the state of transaction |tid| to |to_state| if it is |from_state|
 * (updated = now). STORE_CONFLICT if it is not; STORE_NOTFOUND if absent. */
enum store_rc store_cmp_txn_set_state(STORE_TX *tx, const unsigned char *tid,
                                      size_t tid_len, int from_state,
                                      int to_state);
/* Rewrites the mutable fields of |t| (state, deadline, sender_nonce,
 * cert_id, old_cert_id, device_id, alias; updated = now) if the stored
 * state is |from_state|. STORE_CONFLICT / STORE_NOTFOUND as above. */
enum store_rc store_cmp_txn_update(STORE_TX *tx, const struct store_cmp_txn *t,
                                   int from_state);
/* Up to |limit| WAITING_CONFIRM transactions whose deadline < |now|,
 * oldest deadline first (for the expiry sweep). */
enum store_rc store_cmp_txn_list_expired(STORE_TX *tx, int64_t now, long limit,
                                         struct store_cmp_txn ***out,
                                         size_t *n);
/* Up to |limit| WAITING_CONFIRM transactions of device |device_id|, oldest
 * first (an enrollment whose ip was lost, superseded by a new ir). */
enum store_rc store_cmp_txn_list_waiting_device(STORE_TX *tx,
                                                int64_t device_id, long limit,
                                                struct store_cmp_txn ***out,
                                                size_t *n);
/* Deletes finished transactions (STORE_CMP_FINISHED states) last updated
 * before |before|; *n (may be NULL) gets the number deleted. */
enum store_rc store_cmp_txn_purge(STORE_TX *tx, int64_t before, int64_t *n);
/* Counts the enrollment transactions (ir, cr, kur, p10cr) of requester
 * |requester| (the 32-byte id of struct store_cmp_txn): *waiting those
 * awaiting certConf (STORE_CMP_WAITING_CONFIRM) or a decision / a poll
 * (STORE_CMP_WAITING: held for approval), *recent those created at
 * or after |since| (any state; purged rows no longer count). */
enum store_rc store_cmp_txn_count_requester(STORE_TX *tx,
                                            const unsigned char *requester,
                                            int64_t since, int64_t *waiting,
                                            int64_t *recent);

/* ------------------------------------------------------------------ */
/* Requests awaiting an operator's decision (delayed delivery)          */

enum store_pending_state {
    STORE_PENDING_PENDING = 0,     /* undecided; the client polls */
    STORE_PENDING_APPROVED,        /* approved; issued at the next pollReq */
    STORE_PENDING_REJECTED,        /* rejected by an operator */
    STORE_PENDING_EXPIRED,         /* undecided until |expires| */
    STORE_PENDING_DELIVERED        /* issued and answered */
};
/* Names ("pending", "approved", ...); NULL for unknown values. */
const char *store_pending_state_str(int state);
/* The state called |name|, or -1. */
int store_pending_state_find(const char *name);

struct store_pending {
    unsigned char tid[STORE_TID_MAX];  /* transactionID (the cmp_txn's) */
    size_t tid_len;
    char *alias;
    int type;                          /* enum store_cmp_type */
    int state;                         /* enum store_pending_state */
    char *requester;                   /* audit actor of the request */
    int64_t device_id;                 /* 0 none */
    char *device;                      /* device label, may be NULL */
    char *profile;                     /* profile chosen at request time */
    char *subject;                     /* requested subject (RFC 2253) */
    unsigned char *request;            /* the request PKIMessage (DER) */
    size_t request_len;
    unsigned char *vendor_cert;        /* vendor certificate (DER), or NULL */
    size_t vendor_cert_len;
    char *decided_by;                  /* NULL until decided */
    int64_t decided_at;
    char *reason;                      /* operator's text, may be NULL */
    int64_t created;
    int64_t expires;                   /* undecided after this: expired */
    int64_t updated;
};

struct store_pending_filter {
    const char *alias;                 /* NULL: any */
    int state;                         /* -1: any */
    long limit;                        /* <= 0: no limit */
};

void store_pending_free(struct store_pending *p);
void store_pending_list_free(struct store_pending **v, size_t n);
/* Inserts |p| (decided_* ignored). STORE_EXISTS if the transactionID has a
 * row already. */
enum store_rc store_pending_insert(STORE_TX *tx, const struct store_pending *p);
enum store_rc store_pending_get(STORE_TX *tx, const unsigned char *tid,
                                size_t tid_len, struct store_pending **out);
/* Moves |tid| from |from| to |to| if it is still |from|; a non-NULL
 * |decided_by| also sets decided_by, decided_at = now and |reason|.
 * STORE_CONFLICT if the state is not |from|; STORE_NOTFOUND if absent. */
enum store_rc store_pending_set_state(STORE_TX *tx, const unsigned char *tid,
                                      size_t tid_len, int from, int to,
                                      const char *decided_by,
                                      const char *reason);
/* Rows matching |f|, oldest first. */
enum store_rc store_pending_list(STORE_TX *tx,
                                 const struct store_pending_filter *f,
                                 struct store_pending ***out, size_t *n);
/* Deletes rows in a final state (rejected, expired, delivered) last
 * updated before |before|; *n (may be NULL) gets the number deleted. */
enum store_rc store_pending_purge(STORE_TX *tx, int64_t before, int64_t *n);
/* Up to |limit| undecided rows whose expires < |now|, oldest first. */
enum store_rc store_pending_list_expired(STORE_TX *tx, int64_t now,
                                         long limit,
                                         struct store_pending ***out,
                                         size_t *n);
/* Up to |limit| approved or rejected rows whose transaction is still
 * STORE_CMP_WAITING (not polled since the decision) and whose decided_at
 * + (expires - created), the approval_timeout from the decision, is <
 * |now|; oldest decision first. */
enum store_rc store_pending_list_stale(STORE_TX *tx, int64_t now, long limit,
                                       struct store_pending ***out, size_t *n);

/* ------------------------------------------------------------------ */
/* CRLs                                                                */

/* Increments and returns the CRL number of CA |ca_id| (starts at 1). */
enum store_rc store_crl_next_number(STORE_TX *tx, int64_t ca_id,
                                    int64_t *number);

struct store_crl {
    int64_t ca_id;
    int64_t number;
    int64_t this_update, next_update;
    unsigned char *der;
    size_t der_len;
};
void store_crl_free(struct store_crl *crl);
/* Stores |crl| as the latest CRL of its CA (replacing the previous one). */
enum store_rc store_crl_put(STORE_TX *tx, const struct store_crl *crl);
/* The latest CRL of CA |ca_id|; STORE_NOTFOUND if none was issued. */
enum store_rc store_crl_get_last(STORE_TX *tx, int64_t ca_id,
                                 struct store_crl **out);

/* Vendor CRLs: the latest CRL of each issuing CA of a vendor (imported
 * with `cmpca vendor crl import` or fetched from a distribution point). */
struct store_vendor_crl {
    int64_t vendor_id;
    unsigned char issuer_sha256[STORE_SHA256_LEN]; /* SHA-256 of the DER of
                                                    * the CRL's issuer */
    int64_t this_update, next_update;  /* next_update 0 = none given */
    int64_t fetched;                   /* when it was stored (0 = now) */
    char *source;                      /* "import:FILE" or the URL; may be
                                        * NULL */
    unsigned char *der;
    size_t der_len;
};
void store_vendor_crl_free(struct store_vendor_crl *c);
void store_vendor_crl_list_free(struct store_vendor_crl **v, size_t n);
/* Stores |c| as the CRL of (vendor, issuer), replacing an older one.
 * STORE_NOTFOUND if the vendor does not exist. */
enum store_rc store_vendor_crl_put(STORE_TX *tx,
                                   const struct store_vendor_crl *c);
/* The CRLs of vendor |vendor_id| (0 = of every vendor), by vendor. */
enum store_rc store_vendor_crl_list(STORE_TX *tx, int64_t vendor_id,
                                    struct store_vendor_crl ***out,
                                    size_t *n);

/* ------------------------------------------------------------------ */
/* Stored replies                                                      */

/* The answer given to one request, by the SHA-256 of the request's DER:
 * a byte-identical repeat (a retried forward of an RA) gets the same reply
 * and changes nothing, and an RA in upstream mode records every message
 * it relayed (upstream = 1) so that a restart or another node continues
 * the transaction and the relay can be audited. */
struct store_txn_reply {
    unsigned char req_sha256[STORE_SHA256_LEN];
    char *alias;
    unsigned char *tid;            /* the request's transactionID */
    size_t tid_len;
    int upstream;                  /* 1: relayed from the upstream */
    int http_status;               /* sent with the reply */
    int64_t created;               /* 0 = now */
    unsigned char *reply;
    size_t reply_len;
};
void store_txn_reply_free(struct store_txn_reply *r);
/* Stores |r|; a reply stored before for the same request is kept. */
enum store_rc store_txn_reply_put(STORE_TX *tx, const struct store_txn_reply *r);
/* The reply to the request whose DER hashes to |req_sha256|, or
 * STORE_NOTFOUND. */
enum store_rc store_txn_reply_get(STORE_TX *tx, const unsigned char *req_sha256,
                                  struct store_txn_reply **out);
/* Deletes replies stored before |before|; *n (may be NULL) how many. */
enum store_rc store_txn_reply_purge(STORE_TX *tx, int64_t before, int64_t *n);

/* ------------------------------------------------------------------ */
/* Audit trail                                                         */

/*
 * Appends one audit row in the write transaction |tx| (so it commits or
 * rolls back with the change it records). Rows are numbered 1, 2, 3, ...
 * and hash-chained:
 *   hash = SHA-256(prev_hash || u64be(seq) || i64be(time) ||
 *                  str(actor) || str(action) || str(object) || str(details))
 * with prev_hash 32 zero octets for seq 1, str(s) = u32be(len) || s and
 * str(NULL) = 0xFFFFFFFF. |actor| e.g. "cli:alice", "cmp:<fingerprint>";
 * |action| e.g. "vendor.add"; |object| what it acted on; |details_json| a
 * JSON object text or NULL.
 */
enum store_rc store_audit_append(STORE_TX *tx, const char *actor,
                                 const char *action, const char *object,
                                 const char *details_json);

struct store_audit_row {
    int64_t seq;
    int64_t time;
    char *actor, *action, *object, *details;  /* details may be NULL */
    unsigned char hash[STORE_SHA256_LEN];
};
void store_audit_row_list_free(struct store_audit_row **v, size_t n);
/* The last |limit| rows (0 = all) in ascending seq order. */
enum store_rc store_audit_list(STORE_TX *tx, long limit,
                               struct store_audit_row ***out, size_t *n);
/*
 * Recomputes the whole chain in one read transaction. Returns 1 if it is
 * intact (*bad_seq = 0); 0 with *bad_seq = the first sequence number that
 * does not verify (a modified, deleted, inserted or reordered row; for a
 * truncated tail, the seq after the last row) and a message in |err|.
 * The head (last seq + hash) is also kept in a separate row, so deleting
 * the newest rows is detected too. Returns 0 with *bad_seq = 0 on a
 * database error.
 */
int store_audit_verify(STORE *st, int64_t *bad_seq, char *err, size_t errlen);

/* A chain position recorded outside the database (an exported or signed
 * checkpoint of the head): row |seq| must have hash |hash|. */
struct store_audit_anchor {
    int64_t seq;                   /* >= 1 */
    unsigned char hash[STORE_SHA256_LEN];
};

/* Outcome of store_audit_walk. */
enum store_audit_verdict {
    STORE_AUDIT_INTACT = 0,        /* chain, head and anchors agree */
    STORE_AUDIT_BROKEN,            /* a row, the head or an anchor does not */
    STORE_AUDIT_ERROR              /* database error, or the callback
                                    * stopped the walk */
};

/* What store_audit_walk found. */
struct store_audit_walk_result {
    int64_t rows;                  /* rows verified before the walk ended */
    int64_t last_seq;              /* seq of the last verified row (0 none) */
    unsigned char last_hash[STORE_SHA256_LEN]; /* its hash */
    int64_t bad_seq;               /* BROKEN: the first sequence number that
                                    * does not verify, as store_audit_verify */
    size_t bad_anchor;             /* BROKEN by an anchor: its index + 1 */
    size_t anchors_matched;        /* anchors whose row and hash agreed */
};

/* Called for every row of the chain once its hash verified, in seq order;
 * return 1 to go on, 0 to stop (the walk then returns STORE_AUDIT_ERROR). */
typedef int (*store_audit_row_fn)(void *arg,
                                  const struct store_audit_row *row);

/*
 * Recomputes the whole chain in the caller's transaction |tx| (a read
 * transaction gives one consistent snapshot, so the caller may cross-check
 * other tables in the same view) and checks it against the head row and
 * against |nanchors| anchors sorted by ascending seq (may be 0): an
 * anchored row must exist (else the chain was truncated: rows removed and
 * the head fixed) and carry the anchored hash (else rows up to it were
 * changed, inserted or rehashed). |cb| (may be NULL) sees every verified
 * row. Fills |res| and writes a message to |err| either way ("N rows
 * verified", or what is wrong).
 */
enum store_audit_verdict store_audit_walk(STORE_TX *tx,
                                          const struct store_audit_anchor *anchors,
                                          size_t nanchors,
                                          store_audit_row_fn cb, void *arg,
                                          struct store_audit_walk_result *res,
                                          char *err, size_t errlen);
/* Number of audit rows and the newest seq (0, 0 when empty). */
enum store_rc store_audit_count(STORE_TX *tx, int64_t *nrows, int64_t *last_seq);

/* ------------------------------------------------------------------ */
/* Root CA key rollovers (RFC 9810 4.4, RFC 9483 4.3.2)                */

/* One rollover of a root CA: the new self-signed root and the two link
 * certificates, kept so that genm rootCaKeyUpdate can hand them out. */
struct store_rollover {
    int64_t id;
    int64_t ca_id;                 /* the root CA record (now holding the
                                    * new root and key) */
    unsigned char old_sha256[STORE_SHA256_LEN]; /* SHA-256 of the DER of the
                                                 * old root certificate */
    unsigned char new_sha256[STORE_SHA256_LEN]; /* ... of newWithNew */
    struct store_der new_with_new; /* the new self-signed root */
    struct store_der new_with_old; /* new key, signed by the old key */
    struct store_der old_with_new; /* old key, signed by the new key */
    int64_t created;               /* 0 on insert = now */
};
void store_rollover_free(struct store_rollover *r);
void store_rollover_list_free(struct store_rollover **v, size_t n);
/* Inserts |r| (its id is ignored) and sets *id (may be NULL).
 * STORE_NOTFOUND if the CA does not exist. */
enum store_rc store_rollover_insert(STORE_TX *tx,
                                    const struct store_rollover *r,
                                    int64_t *id);
/* The rollovers of CA |ca_id| (0 = of every CA), oldest first. */
enum store_rc store_rollover_list(STORE_TX *tx, int64_t ca_id,
                                  struct store_rollover ***out, size_t *n);
/* Device secrets (mac mode): one shared secret per device, found by its
 * reference (the requests' senderKID), stored sealed by the caller (see
 * src/util/kek.h: the store never sees the plaintext).                  */

#define STORE_SECRET_REF_MAX 128   /* longest reference, octets */
#define STORE_SECRET_BLOB_MAX 2048 /* longest sealed secret, octets */

struct store_device_secret {
    int64_t device_id;
    char *ref;                     /* unique */
    unsigned char *sealed;         /* nonce || ciphertext || tag */
    size_t sealed_len;
    int failures;                  /* wrong MACs since set or unlock */
    int locked;                    /* 1: refused until `device unlock` */
    int consumed;                  /* 1: an enrollment with it was final */
    int64_t created;
    int64_t updated;
};
void store_device_secret_free(struct store_device_secret *s);
/* Sets device |device_id|'s secret (replacing an earlier one: failures 0,
 * unlocked, not consumed). STORE_EXISTS if |ref| is another device's;
 * STORE_NOTFOUND if the device does not exist. */
enum store_rc store_device_secret_put(STORE_TX *tx, int64_t device_id,
                                      const char *ref,
                                      const unsigned char *sealed,
                                      size_t sealed_len);
/* The secret with reference |ref| (device_id 0), or of device |device_id|
 * (ref NULL). */
enum store_rc store_device_secret_get(STORE_TX *tx, int64_t device_id,
                                      const char *ref,
                                      struct store_device_secret **out);
/* Counts one wrong MAC for device |device_id|'s secret and locks it when
 * the count reaches |max_failures|; sets *failures and *locked to the
 * stored values after the change. */
enum store_rc store_device_secret_fail(STORE_TX *tx, int64_t device_id,
                                       int max_failures, int *failures,
                                       int *locked);
/* What store_device_secret_set does. */
enum store_secret_op {
    STORE_SECRET_UNLOCK = 1,       /* failures 0, locked 0 */
    STORE_SECRET_CONSUME = 2       /* consumed 1 (STORE_CONFLICT if it was) */
};
enum store_rc store_device_secret_set(STORE_TX *tx, int64_t device_id,
                                      int op);

#endif
