/*
 * Internals of the CMP server core shared by the src/server/ files: aliases,
 * vendor trust, and the per-request context that carries one message from
 * decoding to the signed response.
 */
#ifndef CMPCA_SRV_INT_H
#define CMPCA_SRV_INT_H

#include "server/server.h"

#include "asn1/cmp_asn1.h"
#include "ca/ca.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct srv_ctx;

/*
 * An alias mode: how requests of an alias are authenticated. "3gpp" is the
 * TS 33.310 profile (signature only; ir from vendor certificates, kur/cr/rr
 * from operator certificates). Further modes (MAC-based "client", "ra")
 * add a row to srv_modes[] in srv_alias.c.
 */
struct srv_mode {
    const char *name;
    int allow_mac;                 /* accept MAC-protected requests */
    int allow_implicit_confirm;    /* may grant implicitConfirm */
    /* Authenticates the sender of an ir (who may ask for a first
     * certificate) and sets ctx->device. */
    enum cmp_reason (*auth_initial)(struct srv_ctx *ctx);
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

struct srv_alias {
    char *name;
    const struct srv_mode *mode;
    CA *ca;
    CA_PROFILE *profile;
    char **vendors;                /* vendor names; NULL with all_vendors */
    size_t nvendors;
    int all_vendors;
    long confirm_wait;             /* seconds */
    long time_tolerance;           /* seconds; 0 = messageTime not checked */
    int allow_reenroll;
    int require_new_key;
    int revoke_on_kur;
    int device_id_nid;             /* attribute of the vendor cert subject */
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
};

struct server {
    STORE *store;
    struct srv_alias *aliases;
    size_t naliases;
    char *default_alias;
    struct cmp_limits limits;
    struct cmp_mac_limits mac_limits;
};

/* Everything known about one request while it is handled. */
struct srv_ctx {
    SERVER *srv;
    struct srv_alias *alias;
    const CMP_MSG *req;            /* NULL if it did not decode */
    time_t now;
    X509 *signer;                  /* protecting cert (borrowed from req) */
    unsigned char signer_sha256[32];
    struct store_device *device;   /* the device asking, if known */
    struct store_cert *signer_cert;/* our record of signer, if ours */
    X509 *vendor_cert;             /* == signer for 3GPP ir */
    STORE_TX *rtx;                 /* the request's read transaction, opened
                                    * by the first lookup (srv_read_tx) */
    /* outcome, for the response and the log line */
    enum cmp_reason reason;
    char detail[200];
    char device_label[256];
    int issued;                    /* a certificate was issued */
    int revoked;                   /* a certificate was revoked */
};

/* Sets the refusal reason and a detail text; returns |r|. */
enum cmp_reason srv_fail(struct srv_ctx *ctx, enum cmp_reason r,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The request's read transaction: every lookup of one request shares it
 * (one snapshot, one connection checkout). Opened on first use; sets *tx
 * (borrowed) and returns STORE_OK or the store's error. */
enum store_rc srv_read_tx(struct srv_ctx *ctx, STORE_TX **tx);
/* Ends the request's read transaction, if open. */
void srv_read_end(struct srv_ctx *ctx);
/* Ends the read transaction, then begins a write transaction (*tx). */
enum store_rc srv_write_begin(struct srv_ctx *ctx, STORE_TX **tx);

/* srv_alias.c */
int srv_alias_load(struct srv_alias *a, const struct conf *conf,
                  const struct conf_section *sec, STORE *store, char *err,
                  size_t errlen);
void srv_alias_clear(struct srv_alias *a);
int srv_alias_reload_vendors(struct srv_alias *a, STORE *store);
struct srv_vendor_trust *srv_alias_get1_vendor_trust(struct srv_alias *a);
void srv_vendor_trust_free(struct srv_vendor_trust *vt);

/* srv_auth.c */
enum cmp_reason srv_auth_signature(struct srv_ctx *ctx);
enum cmp_reason srv_auth_vendor_device(struct srv_ctx *ctx);
enum cmp_reason srv_auth_operator_cert(struct srv_ctx *ctx);
/* Validates the signer against the vendor anchors only (no device check). */
enum cmp_reason srv_auth_vendor_path(struct srv_ctx *ctx, int64_t *vendor_id);

/* srv_enroll.c */
enum cmp_reason srv_enroll(struct srv_ctx *ctx, CMP_MSG **rsp);
/* A new transaction must not reuse a transactionID (replays included):
 * CMP_R_TRANSACTION_ID_IN_USE, a store reason, or CMP_R_OK. The insert at
 * commit enforces it too for requests that store a transaction; checking
 * first spares the work. */
enum cmp_reason srv_txn_check_unused(struct srv_ctx *ctx);
/* srv_confirm.c */
enum cmp_reason srv_confirm(struct srv_ctx *ctx, CMP_MSG **rsp);
enum cmp_reason srv_client_error(struct srv_ctx *ctx, CMP_MSG **rsp);
/* srv_revoke.c */
enum cmp_reason srv_revoke(struct srv_ctx *ctx, CMP_MSG **rsp);
/* srv_genm.c */
enum cmp_reason srv_genm(struct srv_ctx *ctx, CMP_MSG **rsp);

/* srv_handle.c: a new response to ctx->req of |type|. */
CMP_MSG *srv_rsp_new(struct srv_ctx *ctx, int type);
/* Revokes |cert_id| with RFC 5280 |reason| in |tx| (audit row included);
 * returns 1, or 0 with the refusal set in |ctx| (|why| in its text). */
int srv_revoke_in_tx(struct srv_ctx *ctx, STORE_TX *tx, int64_t cert_id,
                    int reason, const char *why);
/* Maps a store rc to a refusal reason (busy -> systemUnavail, ...). */
enum cmp_reason srv_store_reason(struct srv_ctx *ctx, enum store_rc rc,
                                const char *what);
/* Formats "cmp:<alias>:<device>" as the audit actor into |buf|. */
const char *srv_actor(const struct srv_ctx *ctx, char *buf, size_t len);

#endif
