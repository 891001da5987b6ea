/*
 * A whole cmpca server in-process for tests, the fuzz target and its seed
 * generator: an operator PKI (root, issuing CA, CMP signer) and a vendor PKI
 * made with the library's own admin functions, a real SQLite store file and
 * configuration in a directory, devices on the allow-list, registration
 * authorities for the ra-mode aliases, and OpenSSL's CMP client wired to
 * server_handle() through its transfer callback (optionally through an RA
 * that wraps every request in a nested message).
 */
#ifndef CMPCA_TEST_SRV_TESTENV_H
#define CMPCA_TEST_SRV_TESTENV_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/cmp.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "asn1/cmp_asn1.h"
#include "server/server.h"
#include "store/store.h"

struct conf;

/* Settings of the [alias 3gpp] section (0 = the default given). */
struct stenv_opts {
    long confirm_wait;        /* seconds; default 300 */
    long time_tolerance;      /* seconds; default 600; -1 = 0 (unchecked) */
    int allow_reenroll;       /* default no */
};

/* An identity that signs requests: certificate, key, and the certificates
 * sent with it in extraCerts (the vendor CA for a vendor certificate). */
struct stenv_id {
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain;
};

/*
 * The registration authorities of the environment. Each has a certificate
 * issued by the issuing CA with id-kp-cmcRA (as `cmpca ca signer` makes
 * them), recorded in the store's certificate table, and, except
 * STENV_RA_UNREG, is registered as `cmpca ra add` does (profile "*"):
 *   STENV_RA_ALL       "ra-all": aliases ra and ra2, every operation,
 *                      may assert raVerified
 *   STENV_RA_IR        "ra-ir": alias ra, ir only, no raVerified
 *   STENV_RA_OFF       "ra-off": alias ra, every operation, disabled
 *   STENV_RA_ELSEWHERE "ra-elsewhere": alias ra2 only, every operation
 *   STENV_RA_UNREG     never registered
 *   STENV_RA_REVOKED   "ra-revoked": alias ra, every operation, raVerified;
 *                      its certificate revoked (keyCompromise)
 *   STENV_RA_PROFILE   "ra-profile": alias ra, every operation, but only
 *                      for profile "otherprofile"
 * Alias "ra" (mode = ra, profile radev: subject CN=${request.CN},O=Operator,
 * ra_trust = issuing, allow_ra_verified = yes, inner_mode 3gpp with vendor
 * acme) and alias "ra2" (mode = ra, the same profile, raVerified not
 * accepted, inner_mode = none) serve them. Alias "cert" (mode = cert,
 * cert_subjects = any, the issuing CA trusted, profile radev and "gold"
 * (10 days) for certProfile) takes any of them as a certificate holder.
 */
enum stenv_ra {
    STENV_RA_ALL, STENV_RA_IR, STENV_RA_OFF, STENV_RA_ELSEWHERE,
    STENV_RA_UNREG, STENV_RA_REVOKED, STENV_RA_PROFILE, STENV_NRA
};
/* The registered name of RA |i| ("-" for STENV_RA_UNREG). */
const char *stenv_ra_name(int i);

/* The server, its store and the PKIs behind it. */
struct stenv {
    char *dir;                /* holds cmpca.conf, cmpca.db, the CA keys */
    struct conf *conf;
    STORE *store;
    SERVER *srv;
    X509 *op_root;            /* operator root: the clients' trust anchor */
    X509 *op_issuing;         /* issuing CA of the alias */
    X509 *cmp_signer;         /* its CMP signer (protects the responses) */
    int64_t issuing_id;       /* store id of the issuing CA */
    EVP_PKEY *vroot_key, *vca_key;
    X509 *vroot, *vca;        /* vendor root and factory CA (registered) */
    EVP_PKEY *rogue_key;
    X509 *rogue;              /* a vendor CA nobody registered */
    int64_t vendor_id;
    struct stenv_id ra[STENV_NRA];  /* enum stenv_ra; chain = issuing CA */
};

/*
 * Creates everything in |dir| (made under $TMPDIR when NULL; it must exist
 * and be empty otherwise): configuration, store, operator CAs with a CMP
 * signer, vendor "acme" with its CA registered, the RAs (enum stenv_ra),
 * and the server. Returns 1,
 * or 0 with a message in |err|; either way stenv_free() releases it.
 */
int stenv_create(struct stenv *e, const char *dir, const struct stenv_opts *o,
                 char *err, size_t errlen);
/*
 * Opens an existing environment made by stenv_create in |dir|, but with the
 * store at |db_path| (a copy of dir/cmpca.db, synchronous=normal; NULL =
 * dir/cmpca.db). Only dir, conf, store and srv are set (no PKI fields, so
 * no client link can be used on it). Returns 1 or 0 with |err|.
 */
int stenv_open(struct stenv *e, const char *dir, const char *db_path,
               char *err, size_t errlen);
/* Frees |e|; removes its directory if |remove_dir|. */
void stenv_free(struct stenv *e, int remove_dir);

/*
 * A device's vendor credentials: a fresh P-256 key and a certificate with
 * subject serialNumber=|serial|, CN=|serial|, O=Acme issued by the acme
 * vendor CA (or by the unregistered rogue CA if |rogue|). If |register_it|,
 * the device is added to the allow-list. Returns 1 or 0.
 */
int stenv_device(struct stenv *e, const char *serial, int rogue,
                 int register_it, struct stenv_id *out);
/* Sets |out| to |cert| and |key| (references taken), no chain. */
/* The key-encryption key of the environment's mac alias (hex). */
#define STENV_KEK_HEX \
    "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
/* Gives registered device |serial| the secret |secret| with reference
 * |ref| (sealed as `cmpca device set-secret` does). Returns 1 or 0. */
int stenv_mac_secret(struct stenv *e, const char *serial, const char *ref,
                     const char *secret);
int stenv_id_set(struct stenv_id *out, X509 *cert, EVP_PKEY *key);
void stenv_id_clear(struct stenv_id *id);

/* ------------------------------------------------------------------ */
/* OpenSSL's client wired to server_handle()                           */

#define STENV_MAXMSG 8

struct stenv_link;
/* Changes request number |index| (0 = first of the session) before it is
 * delivered; returns 1 to go on (the link then re-signs it unless
 * link->no_resign), 0 to fail the request. */
typedef int (*stenv_mutate_fn)(struct stenv_link *l, CMP_MSG *msg, int index);

/* One client session's plumbing; zero it, then set env and alias. */
struct stenv_link {
    struct stenv *env;
    const char *alias;            /* NULL = "3gpp" */
    stenv_mutate_fn mutate;       /* optional */
    void *arg;                    /* for |mutate| */
    EVP_PKEY *resign_key;         /* re-signs mutated requests */
    const char *resign_md;        /* its digest; NULL = the key's default */
    int no_resign;                /* the mutator protected the message */
    int capture_at;               /* 1 + index of a request to keep but not
                                   * deliver (the client then fails); 0 none */
    int snapshot_at;              /* 1 + index of a request before which the
                                   * store digest is taken into |snap| */
    const struct stenv_id *wrap;  /* if set: every request (after |mutate|
                                   * and re-signing) is delivered inside a
                                   * single nested message (RFC 9483
                                   * 5.2.2.1) protected by this RA; the
                                   * answer is the plain inner response */
    int nowrap_at;                /* 1 + index of a request delivered as it
                                   * is despite |wrap|; 0 none */
    unsigned char snap[32];
    int nreq;                     /* requests seen (delivered or captured) */
    unsigned char *req[STENV_MAXMSG];  /* each as delivered (or captured) */
    size_t req_len[STENV_MAXMSG];
    unsigned char *rsp[STENV_MAXMSG];  /* the server's answers */
    size_t rsp_len[STENV_MAXMSG];
    int http[STENV_MAXMSG];
    int verified[STENV_MAXMSG];   /* OpenSSL's OSSL_CMP_validate_msg
                                   * accepted the answer's protection with
                                   * the operator root as trust anchor */
};

/* Frees what the link recorded and zeroes the records (not env/alias/
 * mutate settings). */
void stenv_link_reset(struct stenv_link *l);

/* A client context for identity |id| (NULL: none set) trusting the
 * operator root, talking through |l|. One context per identity (OpenSSL
 * 3.0.19 misbehaves when one context sees alternating signers). */
OSSL_CMP_CTX *stenv_client(struct stenv_link *l, const struct stenv_id *id);
/* Sets the new key and subject "CN=|cn|" (NULL: none) for an ir/cr/kur. */
int stenv_client_newkey(OSSL_CMP_CTX *ctx, EVP_PKEY *newkey, const char *cn);

/* Hands |der| to server_handle() for alias |alias| (NULL = "3gpp"); sets
 * *rsp (malloc'ed) and returns the HTTP status. */
int stenv_handle(struct stenv *e, const char *alias, const unsigned char *der,
                 size_t len, unsigned char **rsp, size_t *rsp_len);

/*
 * A nested message (cmp_nested_new) of the |n| DER messages |inner|,
 * protected by |by| (its certificate and chain in extraCerts): |single|
 * repeats the one inner message's transactionID and senderNonce, else a
 * batch with a fresh header. Sets *der (OPENSSL_malloc'ed) and *len.
 * Returns 1 or 0.
 */
int stenv_wrap(const struct stenv_id *by, int single,
               const unsigned char *const *inner, const size_t *inner_len,
               int n, unsigned char **der, size_t *len);
/* Does OpenSSL's CMP code (OSSL_CMP_validate_msg, the operator root as
 * trust anchor, the message's extraCerts as untrusted) accept the
 * protection of the response |der|? Returns 1 or 0. */
int stenv_rsp_verified(struct stenv *e, const unsigned char *der, size_t len);

/* ------------------------------------------------------------------ */
/* Looking at messages and at the store                                 */

/* What a response says. */
struct stenv_rsp {
    int decoded;              /* cmp_msg_decode accepted it (strict DER) */
    int body;                 /* body type, -1 if not decoded */
    int status;               /* PKIStatus of error/ip/cp/kup/rp, else -1 */
    int failinfo;             /* failInfo bits (0 none) */
    int signed_;              /* signature (not MAC) protection present */
    unsigned char *cert;      /* ip/cp/kup: the certificate DER (malloc'ed) */
    size_t cert_len;
    int ncapubs;              /* ip: caPubs count */
    int nnested;              /* nested: the number of inner messages */
};
/* Fills |out| (free its cert with free()). Returns out->decoded. */
int stenv_rsp_parse(const unsigned char *der, size_t len, struct stenv_rsp *out);
/* Inner message |i| (0-based) of the nested message |der| as DER in *out
 * (malloc'ed). Returns 1, or 0 if |der| is no nested message or has no
 * message |i|. */
int stenv_nested_get(const unsigned char *der, size_t len, int i,
                     unsigned char **out, size_t *out_len);
void stenv_rsp_clear(struct stenv_rsp *r);
/* The transactionID of a DER request: copies up to 64 octets into |tid|,
 * returns the length (0 on error). */
size_t stenv_msg_tid(const unsigned char *der, size_t len, unsigned char *tid);

/* SHA-256 over every row of every table of the store file: equal digests
 * mean nothing changed. Returns 1 or 0. */
int stenv_store_digest(struct stenv *e, unsigned char out[32]);
/* State of device |ident| of vendor acme (enum store_device_state), -1 if
 * absent; sets *cert_id if not NULL. */
int stenv_device_state(struct stenv *e, const char *ident, int64_t *cert_id);
/* Our record of the certificate |der|: status (enum store_cert_status) or
 * -1 if not stored; sets *reason, *id, *device_id if not NULL. */
int stenv_cert_status(struct stenv *e, const unsigned char *der, size_t len,
                      int *reason, int64_t *id, int64_t *device_id);
/* State of transaction |tid| (enum store_cmp_state), -1 if absent. */
int stenv_txn_state(struct stenv *e, const unsigned char *tid, size_t len);
/* Number of certificates of the issuing CA with |status| (-1 any). */
long stenv_cert_count(struct stenv *e, int status);

/* Re-signs |msg| with |key| and digest |md| (NULL = key default). */
int stenv_resign(CMP_MSG *msg, EVP_PKEY *key, const char *md);

#endif
