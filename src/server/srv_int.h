/*
 * Internals of the CMP server core shared by the src/server/ files: the
 * per-request context, the requester a request speaks for, the mode table
 * an alias points to, aliases, and the helpers every handler uses
 * (srv_ctx.c). The pipeline (srv_pipeline.c) calls the handlers (op_*.c);
 * handlers never call back into the pipeline.
 */
#ifndef CMPCA_SRV_INT_H
#define CMPCA_SRV_INT_H

#include "server/server.h"

#include "asn1/cmp_asn1.h"
#include "ca/ca.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"
#include "issuer/issuer.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct conf_section;
struct kek;
struct srv_ctx;
struct srv_alias;

/* The operations a request asks for (one per request body type). */
enum srv_op {
    SRV_OP_IR = 0, SRV_OP_CR, SRV_OP_KUR, SRV_OP_P10CR, SRV_OP_RR,
    SRV_OP_CERTCONF, SRV_OP_ERROR, SRV_OP_GENM, SRV_OP_POLL, SRV_OP_NESTED,
    SRV_OP_NONE
};

/* Who a request speaks for and who vouches for it. */
enum srv_rq_kind {
    SRV_RQ_NONE = 0,
    SRV_RQ_VENDOR_DEVICE,      /* a device with its vendor certificate */
    SRV_RQ_OPERATOR_DEVICE,    /* a device with a certificate of ours */
    SRV_RQ_RA,                 /* a registered RA, for a device */
    SRV_RQ_SIGNER,             /* a signature whose signer is not (yet)
                                * classified: certConf, error, genm */
    SRV_RQ_CERT_HOLDER,        /* cert mode: a certificate of a CA trusted
                                * for the alias (ours or external) */
    SRV_RQ_MAC_DEVICE          /* a device with its shared secret (mac) */
};

struct srv_requester {
    enum srv_rq_kind kind;
    unsigned char id[32];        /* stable id: the protecting certificate's
                                  * SHA-256; for a message inside an RA's
                                  * nested wrapper SHA-256(RA id || inner
                                  * id). A certConf must show the same. */
    X509 *cert;                  /* protecting certificate (borrowed) */
    unsigned char cert_sha256[32];
    struct store_ra *ra;         /* SRV_RQ_RA: its record (owned) */
};

/*
 * An alias mode: a table of functions the handlers ask, never flags they
 * test. Every function returns CMP_R_OK or a reason set with srv_fail().
 */
struct srv_mode {
    const char *name;
    /* Verifies the message protection (signature or MAC) and sets
     * ctx->rq.cert / cert_sha256 / id. */
    enum cmp_reason (*verify)(struct srv_ctx *ctx);
    /* Finds who asks for |op|: sets ctx->rq.kind (and ctx->rq.ra,
     * ctx->device, ctx->old_cert...). Called after verify. */
    enum cmp_reason (*authenticate)(struct srv_ctx *ctx, enum srv_op op);
    /* May the authenticated requester do |op| on this alias with its
     * profile? */
    enum cmp_reason (*authorise)(struct srv_ctx *ctx, enum srv_op op);
    /* A CertReqMsg with raVerified POP: CMP_R_OK if the requester may
     * assert it, else badPOP. */
    enum cmp_reason (*ra_verified)(struct srv_ctx *ctx);
    /* May implicitConfirm be granted to this request? */
    int (*implicit_confirm)(const struct srv_ctx *ctx);
    /* Protects and encodes an answer (as srv_protect); NULL: signed by
     * the alias's response signer (srv_protect_signed). */
    int (*protect)(struct srv_ctx *ctx, CMP_MSG *msg, unsigned char **der,
                   size_t *len);
    /* An enrollment became final in |tx| (certConf accepted: |txn|; or
     * implicitConfirm granted: |txn| NULL). NULL: nothing to do. A refusal
     * rolls the change back. */
    enum cmp_reason (*finalised)(struct srv_ctx *ctx, STORE_TX *tx,
                                 const struct store_cmp_txn *txn);
    /* Handles every request of the alias itself instead of the operation
     * handlers (upstream: the device policy, then the forward). NULL: the
     * handler of ctx->op. */
    enum cmp_reason (*handle)(struct srv_ctx *ctx, CMP_MSG **rsp);
};

/* Vendor trust anchors of one alias, rebuilt on reload and swapped in;
 * requests hold a reference while they use it. */
struct srv_vendor_anchor {
    unsigned char sha256[32];
    int64_t vendor_id;
};
struct srv_vendor_trust {
    int refs;                      /* atomic */
    X509_STORE *store;
    struct srv_vendor_anchor *anchors;
    size_t nanchors;
};

#define SRV_RA_SEEN 32              /* validated RA certificates remembered */

/* Per-requester enrollment limits of an alias (srv_limits.c); 0 = off. */
#define SRV_DEFAULT_MAX_PENDING 4
#define SRV_DEFAULT_MAX_PER_WINDOW 100
#define SRV_DEFAULT_WINDOW 3600
#define SRV_DEFAULT_LOG_REPEAT 10   /* refusal lines per key and second */
struct srv_enroll_limits {
    long max_pending;              /* transactions awaiting certConf */
    long max_per_window;           /* enrollments per |window| */
    long window;                   /* seconds */
};

struct srv_alias {
    char *name;
    const struct srv_mode *mode;
    const struct srv_mode *inner;  /* ra mode: how end-entity messages
                                    * inside an RA's nested wrapper are
                                    * authenticated (3gpp) */
    CA *ca;
    CA_PROFILE *profile;
    const char *profile_name;      /* borrowed from profile */
    ISSUER *issuer;
    char **vendors;                /* vendor names; NULL with all_vendors */
    size_t nvendors;
    int all_vendors;
    long confirm_wait;             /* seconds */
    long time_tolerance;           /* seconds; 0 = messageTime not checked */
    int allow_reenroll;
    int require_new_key;
    int revoke_on_kur;
    int allow_ra_verified;         /* ra mode: raVerified may be accepted */
    int device_id_nid;             /* attribute naming the device */
    X509_STORE *ra_store;          /* ra mode: CAs trusted for RA certs */
    STACK_OF(X509) *ra_trust;      /* the same certificates */
    int64_t *ra_trust_ids;         /* their CA ids in the store */
    pthread_mutex_t ra_lock;       /* guards ra_seen */
    struct srv_ra_seen {           /* RA certificates whose path validated:
                                    * SHA-256, until when the result holds
                                    * (the chain's earliest notAfter, 5 min
                                    * at most), the issuing CA's store id */
        unsigned char sha256[32];
        time_t until;
        int64_t ca_id;
    } ra_seen[SRV_RA_SEEN];
    X509 *rsp_cert;                /* protects responses (borrowed from ca) */
    const CA_SIGNER *rsp_signer;   /* its key */
    STACK_OF(X509) *rsp_chain;     /* rsp_cert, its chain to the root */
    unsigned char *rsp_extra;      /* responses' extraCerts element (DER):
                                    * rsp_chain, then the CA chain */
    size_t rsp_extra_len;
    GENERAL_NAME *rsp_sender;      /* responses' sender: rsp_cert's subject */
    GENERAL_NAME *rsp_nobody;      /* the NULL-DN recipient of answers to
                                    * requests that could not be decoded */
    X509_STORE *op_store;          /* trusts the alias CA's root */
    STACK_OF(X509) *ca_pubs;       /* the operator root, for caPubs */
    pthread_mutex_t vt_lock;
    struct srv_vendor_trust *vt;
    atomic_int crl_dirty;          /* revoked outside an rr since the last
                                    * CRL: the sweeper issues a new one */
    struct srv_enroll_limits enroll; /* per-requester limits */
    /* cert mode (mode_cert.c) */
    X509_STORE *cert_store;        /* CAs trusted for signer certificates,
                                    * with the CRLs of cert_crl_file */
    STACK_OF(X509) *cert_trust;    /* the same CA certificates */
    int64_t *cert_trust_ids;       /* their CA ids in the store (0: not
                                    * ours) */
    int cert_have_crls;            /* cert_crl_file given: external signers
                                    * are checked against its CRLs */
    int cert_subjects;             /* enum srv_cert_subjects */
    /* certProfile (srv_profile.c): [0] the default profile (borrowed),
     * then those of `profiles` (owned) */
    struct srv_profile *profiles;
    size_t nprofiles;
    int implicit_confirm;          /* implicitConfirm may be granted */
    struct srv_mac_conf {          /* mac mode (mode_mac.c) */
        struct kek *kek;           /* seals the device secrets (owned) */
        long max_iterations;       /* MAC iteration count cap */
        int max_failures;          /* wrong MACs before the lock */
        int response_sign;         /* answers signed, not MAC-protected */
        int subject_any;           /* any subject, not only the device's */
    } mac;
    /* delayed delivery (op_poll.c) */
    int approval_manual;           /* requests wait for `cmpca request
                                    * approve` */
    long check_after;              /* seconds, in pollRep */
    long approval_timeout;         /* undecided requests expire after */
    struct srv_upstream *up;       /* mode = upstream: the upstream CMP
                                    * server and how to reach it (owned),
                                    * else NULL */
    int answer_repeats;            /* a byte-identical repeat of an
                                    * answered request gets the stored
                                    * reply (srv_repeat.c) */
};

struct server {
    STORE *store;
    struct srv_alias *aliases;
    size_t naliases;
    char *default_alias;
    struct cmp_limits limits;
    long txn_retention;            /* seconds finished transactions stay */
    int max_nested;                /* inner messages of one nested batch */
    time_t last_purge;             /* atomic via __atomic builtins */
    struct vendor_crl *vcrl;       /* vendor CRL checks (borrowed), or NULL */
    unsigned log_repeat;           /* identical refusal lines per second
                                    * (0 = unlimited) */
};

/* Everything known about one request while it is handled. */
struct srv_ctx {
    SERVER *srv;
    struct srv_alias *alias;
    const struct srv_mode *mode;   /* alias->mode, or alias->inner for a
                                    * message inside a nested wrapper */
    const CMP_MSG *req;            /* NULL if it did not decode */
    enum srv_op op;
    time_t now;
    struct srv_requester rq;
    const struct srv_requester *via; /* the RA whose nested wrapper carried
                                      * this message, or NULL */
    struct store_device *device;   /* the device asked for, if known */
    struct store_cert *old_cert;   /* kur: the certificate renewed; rr: the
                                    * one revoked (our record) */
    X509 *old_x509;                /* the same as X509 (owned) */
    X509 *vendor_cert;             /* the vendor certificate of a 3GPP ir */
    const X509_NAME *rr_issuer;    /* rr: the certificate to revoke */
    const ASN1_INTEGER *rr_serial;
    STORE_TX *rtx;                 /* the request's read transaction, opened
                                    * by the first lookup (srv_read_tx) */
    /* outcome, for the response and the log line */
    enum cmp_reason reason;
    int in_body;                   /* the refusal concerns the request's
                                    * content: answered in ip/cp/kup/rp with
                                    * status rejection (RFC 9483 3.6.4) */
    long cert_req_id;              /* for such an answer */
    char detail[200];
    char device_label[256];
    int depth;                     /* 0, or 1 inside a nested wrapper */
    const char *peer;              /* the client's address, for the log */
    unsigned char *out_der;        /* a handler's answer that is protected
                                    * already (a single nested message's
                                    * inner response), or NULL */
    size_t out_len;
    int issued;                    /* a certificate was issued */
    int revoked;                   /* certificates revoked */
    const struct srv_profile *profile; /* certProfile asked for and allowed;
                                    * NULL: the alias's default profile */
    const X509_NAME *subject_default; /* issued subject when the request
                                    * names none (cert mode, own subject);
                                    * borrowed from rq.cert */
    struct store_device_secret *mac_rec; /* mac mode: the secret whose MAC
                                          * verified (owned) */
    unsigned char *mac_secret;     /* its plaintext (owned, wiped) */
    size_t mac_secret_len;
    X509_NAME *mac_subject;        /* mac mode: the device's CN when the
                                    * request names no subject (owned) */
    const unsigned char *req_der;  /* the request as received (depth 0),
                                    * for forwarding and repeats */
    size_t req_len;
    int out_http;                  /* HTTP status of out_der (a relayed
                                    * answer), 0 = from the reason */
    int inner_refused;             /* a message of this nested wrapper was
                                    * refused (its answer is not kept for
                                    * repeats) */
};

/* --- srv_ctx.c: helpers shared by the handlers ---------------------- */

/* Sets the refusal reason and a detail text; returns |r|. */
enum cmp_reason srv_fail(struct srv_ctx *ctx, enum cmp_reason r,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As srv_fail, for a refusal of the request's content (answered in the
 * response of its type with status rejection). */
enum cmp_reason srv_reject(struct srv_ctx *ctx, enum cmp_reason r,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a store rc to a refusal reason (busy -> systemUnavail, ...). */
enum cmp_reason srv_store_reason(struct srv_ctx *ctx, enum store_rc rc,
                                 const char *what);
/* The request's read transaction: every lookup of one request shares it
 * (one snapshot, one connection checkout). Opened on first use; sets *tx
 * (borrowed) and returns STORE_OK or the store's error. */
enum store_rc srv_read_tx(struct srv_ctx *ctx, STORE_TX **tx);
/* Ends the request's read transaction, if open. */
void srv_read_end(struct srv_ctx *ctx);
/* Ends the read transaction, then begins a write transaction (*tx). */
enum store_rc srv_write_begin(struct srv_ctx *ctx, STORE_TX **tx);
/* A new response to ctx->req of |type| (sender/recipient set at signing). */
CMP_MSG *srv_rsp_new(struct srv_ctx *ctx, int type);
/* Formats the audit actor "cmp:<alias>[:ra=<name>]:<device>" into |buf|. */
const char *srv_actor(const struct srv_ctx *ctx, char *buf, size_t len);
/* The RA acting in this request (RA-signed or wrapping it), or NULL. */
const char *srv_ra_name(const struct srv_ctx *ctx);
/* Fills the audit description of an issuance for ctx's request. */
void srv_audit_fill(const struct srv_ctx *ctx, struct issuer_audit *a,
                    char *actor, size_t actor_len, char *tid, size_t tid_len);
/* Revokes |cert_id| with RFC 5280 |reason| in |tx| through the alias's
 * issuer (audit row included); returns 1, or 0 with the refusal set in
 * |ctx| (|why| in its text). */
int srv_revoke_in_tx(struct srv_ctx *ctx, STORE_TX *tx, int64_t cert_id,
                     int reason, const char *why);
/* Reads attribute |nid| of |name| as UTF-8 into |buf|. Returns 1 or 0. */
int srv_name_attr(const X509_NAME *name, int nid, char *buf, size_t len);
/* Names a device the store does not know (an RA's request) by |name|:
 * its device_id_attr, else its CN, else the whole name. */
void srv_label_from_name(struct srv_ctx *ctx, const X509_NAME *name);
/* Frees what the requester holds and zeroes it. */
void srv_requester_clear(struct srv_requester *rq);

/* --- srv_auth.c: checks the modes share ----------------------------- */

/* Verifies signature protection (MAC refused with wrongIntegrity) and
 * sets ctx->rq.cert, cert_sha256 and id (see struct srv_requester). */
enum cmp_reason srv_auth_signature(struct srv_ctx *ctx);
/* The signer is a valid, unrevoked certificate of the alias CA held by a
 * device: sets ctx->old_cert, ctx->device, kind OPERATOR_DEVICE. */
enum cmp_reason srv_auth_operator_cert(struct srv_ctx *ctx);
/* Validates the signer against the vendor anchors only (no device check).
 * Sets *vendor_id to the vendor owning the anchor the path ends in. */
enum cmp_reason srv_auth_vendor_path(struct srv_ctx *ctx, int64_t *vendor_id);
/* The signer's vendor certificate names a registered device that may
 * enroll: sets ctx->device, ctx->vendor_cert, kind VENDOR_DEVICE. */
enum cmp_reason srv_auth_vendor_device(struct srv_ctx *ctx);
/* Loads our record of certificate |serial| of the alias CA as
 * ctx->old_cert / old_x509 (and its device): the certificate a kur renews
 * or an rr revokes when the requester is not its holder. */
enum cmp_reason srv_auth_load_cert(struct srv_ctx *ctx, const X509_NAME *issuer,
                                   const ASN1_INTEGER *serial);

/* --- mode_*.c: the mode table --------------------------------------- */

/* The mode called |name| ("3gpp", "ra"), or NULL. */
const struct srv_mode *srv_mode_find(const char *name);
extern const struct srv_mode srv_mode_3gpp;
extern const struct srv_mode srv_mode_ra;
extern const struct srv_mode srv_mode_cert;

/* cert mode: which subjects a certificate holder may enroll. */
enum srv_cert_subjects {
    SRV_CERT_SUBJECTS_OWN = 0,     /* the signer's own subject */
    SRV_CERT_SUBJECTS_ANY,         /* any subject */
    SRV_CERT_SUBJECTS_ALLOWLIST    /* a device of the alias's allow-list */
};
/* Reads the cert mode options of alias section |sec| (cert_subjects,
 * cert_trust* are checked here and loaded by
 * srv_cert_trust_load). Refuses them on aliases of other modes. */
int srv_cert_conf_load(struct srv_alias *a, const struct conf *conf,
                       const struct conf_section *sec, char *err,
                       size_t errlen);
/* Loads cert_trust, cert_trust_file and cert_crl_file (after the CA). */
int srv_cert_trust_load(struct srv_alias *a, const struct conf *conf,
                        const struct conf_section *sec, STORE *store,
                        char *err, size_t errlen);
/* Frees what srv_cert_trust_load loaded. */
void srv_cert_clear(struct srv_alias *a);

/* --- srv_profile.c: certProfile (RFC 9483 4.1.1) -------------------- */

/* A profile an alias offers: the default one or one of `profiles`. */
struct srv_profile {
    const char *name;              /* borrowed from prof */
    CA_PROFILE *prof;
    ISSUER *issuer;
    int owned;                     /* prof and issuer freed with the alias */
};
/* Loads the alias's default profile (borrowed) and those named by the
 * `profiles` option (after the CA and default profile are loaded). */
int srv_profiles_load(struct srv_alias *a, const struct conf *conf,
                      const struct conf_section *sec, char *err,
                      size_t errlen);
void srv_profiles_clear(struct srv_alias *a);
/* The profile called |name| offered on ctx's alias, or NULL. */
const struct srv_profile *srv_profile_lookup(const struct srv_ctx *ctx,
                                             const char *name);
/* Reads certProfile of ctx's request and, if present, checks that its
 * requester may use it on the alias (an RA: also its registry profiles);
 * sets ctx->profile. More than one value: badRequest; unknown or not
 * permitted: badCertTemplate (a rejection in the ip/cp/kup). */
enum cmp_reason srv_profile_choose(struct srv_ctx *ctx, enum srv_op op);
/* The issuer and the profile name a request is issued with. */
ISSUER *srv_profile_issuer(const struct srv_ctx *ctx);
const char *srv_profile_name(const struct srv_ctx *ctx);
extern const struct srv_mode srv_mode_mac;
/* mode_mac.c: reads implicit_confirm (every mode; a config error on a
 * 3gpp alias) and the mac_* options and [server] secret_kek of a mac
 * alias into |a| (a->mode set). Returns 1, or 0 with |err|. */
int srv_mac_alias_load(struct srv_alias *a, const struct conf *conf,
                       const struct conf_section *sec, char *err,
                       size_t errlen);
/* Frees what srv_mac_alias_load and a request's MAC check left. */
void srv_mac_alias_clear(struct srv_alias *a);
void srv_mac_ctx_clear(struct srv_ctx *ctx);
extern const struct srv_mode srv_mode_upstream;

/* --- mode_upstream.c / op_forward.c: an RA in front of a CMP CA ------ */

struct srv_upstream;
/* Loads the upstream part of an [alias] with mode = upstream (instead of a
 * CA and profile): the device policy, the RA's key and certificate (which
 * also protect the alias's own answers), the upstream's URL, trust and
 * form. Returns 1, or 0 with |err| set. */
int srv_upstream_load(struct srv_alias *a, const struct conf *conf,
                      const struct conf_section *sec, STORE *store, char *err,
                      size_t errlen);
void srv_upstream_free(struct srv_upstream *up);
/* Applies the alias's device policy to ctx->req, forwards it to the
 * upstream and puts the answer for the device into ctx->out_der. */
enum cmp_reason srv_forward(struct srv_ctx *ctx, CMP_MSG **rsp);
/* The mode whose device policy an alias applies: its own mode, or for
 * mode = upstream its device_mode (3gpp, cert or mac). */
const struct srv_mode *srv_alias_device_mode(const struct srv_alias *a);

/* --- srv_repeat.c: byte-identical repeats get the stored reply ------- */

/* If |der| was answered before on ctx's alias, sets *reply (malloc'ed)
 * to the stored answer (and *http, if not NULL, to its HTTP status) and
 * returns 1; else 0. */
int srv_repeat_lookup(struct srv_ctx *ctx, const unsigned char *der,
                      size_t len, unsigned char **reply, size_t *reply_len,
                      int *http);
/* Stores |reply| as the answer to |der| (first answer kept). |upstream|
 * marks a reply relayed from an upstream; |audit_action| (or NULL) adds an
 * audit row in the same transaction. Returns 1 or 0. */
int srv_repeat_store(struct srv_ctx *ctx, const unsigned char *der,
                     size_t len, const unsigned char *reply,
                     size_t reply_len, int upstream, int http_status,
                     const char *audit_action, const char *audit_details);

/* --- srv_txn.c: the only writer of the CMP transaction record ------- */

/* A new transaction must not reuse a transactionID (replays included):
 * CMP_R_TRANSACTION_ID_IN_USE, a store reason, or CMP_R_OK. The insert at
 * commit enforces it too; checking first spares the work. */
enum cmp_reason srv_txn_check_unused(struct srv_ctx *ctx);
/* Records a new transaction of ctx's request in |tx|: |state| (issued =
 * STORE_CMP_WAITING_CONFIRM, confirmed with implicitConfirm, closed for an
 * rr), the certificate, our response's |nonce| and the request's
 * senderNonce (a certConf must not reuse it). */
enum cmp_reason srv_txn_open(struct srv_ctx *ctx, STORE_TX *tx, int state,
                             long cert_req_id, int64_t cert_id,
                             int64_t old_cert_id,
                             const ASN1_OCTET_STRING *nonce);
/* Loads the transaction of ctx's transactionID (of this alias) from |tx|. */
enum cmp_reason srv_txn_load(struct srv_ctx *ctx, STORE_TX *tx,
                             struct store_cmp_txn **txn);
/* Moves |txn| from |from| to |to| if the state machine allows it and the
 * stored state is still |from|. */
enum cmp_reason srv_txn_move(struct srv_ctx *ctx, STORE_TX *tx,
                             const struct store_cmp_txn *txn, int from, int to);
/* As srv_txn_move without a request context (the sweeper). Returns the
 * store's rc (STORE_CONFLICT when the move is not allowed). */
enum store_rc srv_txn_move_tx(STORE_TX *tx, const struct store_cmp_txn *txn,
                              int from, int to);
/* Deletes finished transactions last changed before now - retention, at
 * most once a minute (or once per retention, if shorter) per process.
 * Returns the number deleted or -1. */
long srv_txn_purge(SERVER *srv, time_t now);

/* --- srv_alias.c ---------------------------------------------------- */

/* A trust set being loaded: where srv_trust_load puts it. */
struct srv_trust {
    X509_STORE **store;
    STACK_OF(X509) **certs;
    int64_t **ids;
};
/* Loads the CAs of alias option |names_key| (names of CAs in the store;
 * neither option: the alias CA) and of |file_key| (a PEM file of external
 * CA certificates, id 0) into |t| (partial chains allowed). */
int srv_trust_load(struct srv_alias *a, const struct conf *conf,
                   const struct conf_section *sec, STORE *store,
                   const char *names_key, const char *file_key,
                   struct srv_trust *t, char *err, size_t errlen);
/* Splits a comma/space separated list into a malloc'ed array of strings. */
int srv_list_split(const char *s, char ***out, size_t *n);

int srv_alias_load(struct srv_alias *a, const struct conf *conf,
                   const struct conf_section *sec, STORE *store, char *err,
                   size_t errlen);
void srv_alias_clear(struct srv_alias *a);
int srv_alias_reload_vendors(struct srv_alias *a, STORE *store);
struct srv_vendor_trust *srv_alias_get1_vendor_trust(struct srv_alias *a);
void srv_vendor_trust_free(struct srv_vendor_trust *vt);
/* The alias called |name| (NULL = the default alias), or NULL. */
struct srv_alias *srv_alias_find(const SERVER *srv, const char *name);

/* --- srv_limits.c: per-requester limits, refusal log rate ----------- */

/* Reads enroll_max_pending, enroll_max_per_window and enroll_window of
 * alias section |sec| (defaults from [server], then SRV_DEFAULT_*). */
int srv_limits_load(struct srv_enroll_limits *l, const struct conf *conf,
                    const struct conf_section *sec, char *err, size_t errlen);
/* Refuses (CMP_R_ENROLL_LIMIT, notAuthorized) an enrollment of a requester
 * that has enroll_max_pending transactions awaiting certConf or made
 * enroll_max_per_window enrollments in the window. Requests signed by an
 * RA itself are not limited. Call after authorise, before issuing. */
enum cmp_reason srv_limits_check(struct srv_ctx *ctx);
/* Reads [server] log_repeat_per_sec into |srv|. */
int srv_log_limits_load(SERVER *srv, const struct conf *conf,
                        const struct conf_section *server, char *err,
                        size_t errlen);
/* May the log line of ctx's outcome be written? Accepted requests always;
 * refusals at most log_repeat per second per (alias, failInfo, peer
 * address). *suppressed: lines of that key held back before this one. */
int srv_log_admit(const struct srv_ctx *ctx, const char *peer,
                  unsigned long *suppressed);

/* --- srv_protect.c -------------------------------------------------- */

/* Protects |msg| as the alias answers (signature by its response signer,
 * its extraCerts) and encodes it into *der (OPENSSL_malloc'ed). */
int srv_protect(struct srv_ctx *ctx, CMP_MSG *msg, unsigned char **der,
                size_t *len);
/* The signature protection srv_protect applies when the mode has no
 * protect hook. */
int srv_protect_signed(struct srv_ctx *ctx, CMP_MSG *msg, unsigned char **der,
                       size_t *len);
/* The response |rsp| that carries the certificate of |res|, issued
 * unsigned (res->defer): the certificate and the response signed in one
 * go (ca_signer_sign_cert_and_msg: one round trip to the signer process
 * instead of two), the signed certificate put in its place in the record
 * and in the encoded response, which goes to ctx->out_der. */
enum cmp_reason srv_protect_issued(struct srv_ctx *ctx, CMP_MSG *rsp,
                                   struct issuer_result *res);

/* --- the operation handlers: op_*.c ----------------------------------
 * Each answers ctx->req in *rsp, or returns the refusal reason. */
enum cmp_reason srv_enroll(struct srv_ctx *ctx, CMP_MSG **rsp);
enum cmp_reason srv_confirm(struct srv_ctx *ctx, CMP_MSG **rsp);
enum cmp_reason srv_client_error(struct srv_ctx *ctx, CMP_MSG **rsp);
enum cmp_reason srv_revoke(struct srv_ctx *ctx, CMP_MSG **rsp);
enum cmp_reason srv_genm(struct srv_ctx *ctx, CMP_MSG **rsp);
/* Nested messages call back into the pipeline for each inner message
 * through |inner| (srv_pipeline.c passes its own function): it handles
 * |msg| as if it came alone, vouched for by |outer|'s requester, and
 * writes the protected answer into *der (OPENSSL_malloc'ed). Returns 1,
 * or 0 if no answer could be built. */
typedef int (*srv_inner_fn)(struct srv_ctx *outer, const CMP_MSG *msg,
                            unsigned char **der, size_t *len);
enum cmp_reason srv_nested(struct srv_ctx *ctx, srv_inner_fn inner,
                           CMP_MSG **rsp);
/* Revokes unconfirmed certificates whose deadline passed (srv_sweep.c). */
enum cmp_reason srv_confirm_reject(struct srv_ctx *ctx, STORE_TX *tx,
                                   const struct store_cmp_txn *txn,
                                   const char *why);

/* --- srv_txn.c: checks of a transaction's follow-up messages -------- */

/* certConf, pollReq, error: protected by the requester of |txn|. */
enum cmp_reason srv_txn_check_requester(struct srv_ctx *ctx,
                                        const struct store_cmp_txn *txn);
/* ... answering our last senderNonce (badRecipientNonce) with a fresh one
 * of its own (badSenderNonce if it repeats the request's). */
enum cmp_reason srv_txn_check_nonce(struct srv_ctx *ctx,
                                    const struct store_cmp_txn *txn);
/* Records our answer to a follow-up of |txn| in |tx|: state |from| ->
 * |to| (|to| may equal |from|: a pollRep), |cert_id| if not 0, our
 * response's senderNonce |nonce| (the next message must answer it), the
 * certConf deadline when |to| is STORE_CMP_WAITING_CONFIRM. */
enum cmp_reason srv_txn_answered(struct srv_ctx *ctx, STORE_TX *tx,
                                 const struct store_cmp_txn *txn, int from,
                                 int to, int64_t cert_id,
                                 const ASN1_OCTET_STRING *nonce);

/* --- op_poll.c: delayed delivery (RFC 9810 5.3.22, RFC 9483 4.4) ----- */

#define SRV_DEFAULT_CHECK_AFTER 10              /* seconds */
#define SRV_DEFAULT_APPROVAL_TIMEOUT (7 * 86400) /* seconds */

/* Reads approval, check_after and approval_timeout of alias section
 * |sec| into |a|. */
int srv_approval_load(struct srv_alias *a, const struct conf *conf,
                      const struct conf_section *sec, char *err,
                      size_t errlen);
/* Holds ctx's certificate request (authenticated, authorised, POP and
 * template checked) for an operator's decision: records it and its
 * transaction (state waiting) with an audit row and answers in *rsp with
 * status waiting. |subject| is the requested subject (may be NULL). */
enum cmp_reason srv_poll_hold(struct srv_ctx *ctx, const X509_NAME *subject,
                              CMP_MSG **rsp);
/* pollReq: pollRep while undecided; the certificate once approved; an
 * error once rejected or expired. */
enum cmp_reason srv_poll(struct srv_ctx *ctx, CMP_MSG **rsp);
/* In the write transaction that records the certificate issued for the
 * approved request of |waiting|: the transaction goes waiting -> issued
 * with |cert_id| and our |nonce|, the request approved -> delivered. */
enum cmp_reason srv_poll_delivered(struct srv_ctx *ctx, STORE_TX *tx,
                                   const struct store_cmp_txn *waiting,
                                   int state, int64_t cert_id,
                                   const ASN1_OCTET_STRING *nonce);
/* Expires undecided requests whose approval_timeout passed (and their
 * transactions), one audit row each. Returns the number expired. */
int srv_poll_sweep(SERVER *srv, time_t now);

/* --- op_enroll.c: issuing a request held for approval --------------- */

/* Issues the certificate request |orig| (the held request message) now,
 * in answer to ctx's pollReq, for the transaction |waiting|: ctx->device,
 * ctx->old_x509 (kur) and ctx->vendor_cert are set by the caller. */
enum cmp_reason srv_enroll_deliver(struct srv_ctx *ctx, const CMP_MSG *orig,
                                   const struct store_cmp_txn *waiting,
                                   CMP_MSG **rsp);

#endif
