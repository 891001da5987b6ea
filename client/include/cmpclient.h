/*
 * cmpclient: the device side of 3GPP TS 33.310 enrollment over CMP.
 * A small library on top of OpenSSL's CMP client (libcrypto only): ir with
 * the vendor credentials, kur with the operator certificate, rr, certConf
 * inside, 3GPP trust rules, bounded retries and atomic result storage.
 */
#ifndef CMPCLIENT_H
#define CMPCLIENT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of an operation. The values double as `cmpenroll` exit codes. */
enum cmpclient_rc {
    CMPCLIENT_OK = 0,            /* done */
    CMPCLIENT_ERR_INTERNAL = 1,  /* unexpected local failure (memory, ...) */
    CMPCLIENT_ERR_USAGE = 2,     /* bad arguments or configuration */
    CMPCLIENT_ERR_LOAD = 3,      /* a key, certificate or store could not be read */
    CMPCLIENT_ERR_NETWORK = 4,   /* no answer from the server after all retries */
    CMPCLIENT_ERR_REJECTED = 5,  /* the server rejected the request (never retried) */
    CMPCLIENT_ERR_TRUST = 6,     /* response or new certificate not trusted,
                                  * or no operator root at all (33.310) */
    CMPCLIENT_ERR_PROTOCOL = 7,  /* malformed or unexpected response */
    CMPCLIENT_ERR_WRITE = 8,     /* results could not be stored; old files kept */
    CMPCLIENT_ERR_EXPIRED = 9,   /* the current certificate is no longer valid */
    CMPCLIENT_ERR_NOT_ENROLLED = 10 /* no operator certificate installed */
};

/* Result file names inside a device store directory. */
#define CMPCLIENT_FILE_KEY   "key.pem"   /* operator key, 0600 */
#define CMPCLIENT_FILE_CERT  "cert.pem"  /* operator certificate */
#define CMPCLIENT_FILE_CHAIN "chain.pem" /* intermediates up to the root */
#define CMPCLIENT_FILE_ROOT  "root.pem"  /* operator root used for trust */

typedef struct cmpclient_st CMPCLIENT;

/* Credentials used to protect a request. All fields are borrowed. */
struct cmpclient_identity {
    EVP_PKEY *key;          /* private key of |cert| */
    X509 *cert;             /* vendor certificate (ir) or operator cert (kur, rr) */
    STACK_OF(X509) *chain;  /* intermediates (may include the root); may be NULL */
};

/* What an enrollment or renewal produced. Owned; see cmpclient_result_clear. */
struct cmpclient_result {
    EVP_PKEY *key;          /* the new private key */
    X509 *cert;             /* the new operator certificate */
    STACK_OF(X509) *chain;  /* intermediates between |cert| and |root| */
    X509 *root;             /* operator root that validated |cert| */
    int root_from_ip;       /* 1 if |root| was taken from the ip (3GPP rule) */
};

/* Log callback: |level| 0 error, 1 info (exchange), 2 debug. */
typedef void (*cmpclient_log_cb)(void *arg, int level, const char *line);

/* Returns a new client with defaults (msg timeout 30 s, total 120 s, 4
 * attempts, backoff 1 s doubling up to 16 s), or NULL on allocation failure. */
CMPCLIENT *cmpclient_new(void);
/* Frees |c|; NULL is harmless. */
void cmpclient_free(CMPCLIENT *c);

/* Sets the server URL "http://host[:port]/path". Returns 1, or 0 if the URL
 * cannot be parsed (https is refused: CMP messages carry their own
 * protection; use a TLS proxy if needed). */
int cmpclient_set_server(CMPCLIENT *c, const char *url);
/* Sets per-message and per-transaction timeouts in seconds (0 = none).
 * Returns 1, or 0 if a value is negative. */
int cmpclient_set_timeouts(CMPCLIENT *c, int msg_timeout, int total_timeout);
/* Sets the retry policy for network failures: at most |max_attempts|
 * transfers of each message (>= 1), waiting |backoff_ms| before the first
 * retry and doubling up to |backoff_max_ms|. CMP rejections are never
 * retried. Returns 1, or 0 on bad values. */
int cmpclient_set_retries(CMPCLIENT *c, int max_attempts, int backoff_ms,
                          int backoff_max_ms);
/* Sets the pre-provisioned operator root (takes a reference; NULL clears).
 * With a root, only it is trusted (33.310: the device shall use it).
 * Returns 1 on success, 0 on failure. */
int cmpclient_set1_operator_root(CMPCLIENT *c, X509 *root);
/* Allows (1, the default) or forbids (0) accepting the operator root from
 * the ip's extraCerts when no root is pre-provisioned (33.310 §9.5.4.3). */
void cmpclient_set_permit_root_in_ip(CMPCLIENT *c, int permit);
/* Sets the subject requested in ir (copied; NULL: the vendor subject).
 * Returns 1 on success, 0 on failure. */
int cmpclient_set1_subject(CMPCLIENT *c, const X509_NAME *subject);
/* Sets the directory where results are installed atomically (copied; NULL:
 * results are only returned). Installation is prepared before certConf (a
 * failure makes the device reject the certificate) and committed after
 * pkiConf. Returns 1 on success, 0 on failure. */
int cmpclient_set1_store_dir(CMPCLIENT *c, const char *dir);
/* Sets the verbosity (0 errors only, 1 CMP exchange, 2 OpenSSL debug) and
 * the log callback (NULL: lines go to stderr). */
void cmpclient_set_log(CMPCLIENT *c, int verbosity, cmpclient_log_cb cb,
                       void *arg);

/* Initial enrollment (ir/ip/certConf/pkiConf) protected with |vendor|. The
 * new key is |newkey| (a reference is taken) or, if NULL, generated from
 * |keyspec| (see cmpclient_keygen). On success fills |out| (if not NULL)
 * and, with a store directory, installs the files. Returns CMPCLIENT_OK or
 * an error code; cmpclient_get0_error() says why. */
enum cmpclient_rc cmpclient_enroll(CMPCLIENT *c,
                                   const struct cmpclient_identity *vendor,
                                   EVP_PKEY *newkey, const char *keyspec,
                                   struct cmpclient_result *out);
/* Renewal (kur/kup/certConf/pkiConf) protected with the current operator
 * credentials |current|; new key as for cmpclient_enroll. The trusted root
 * must be set (pre-provisioned or installed at enrollment). Returns as
 * cmpclient_enroll. */
enum cmpclient_rc cmpclient_renew(CMPCLIENT *c,
                                  const struct cmpclient_identity *current,
                                  EVP_PKEY *newkey, const char *keyspec,
                                  struct cmpclient_result *out);
/* Revokes |current->cert| (rr/rp) with CRL reason |reason| (-1: none),
 * protected with |current|. Returns CMPCLIENT_OK or an error code. */
enum cmpclient_rc cmpclient_revoke(CMPCLIENT *c,
                                   const struct cmpclient_identity *current,
                                   int reason);

/* Returns the message describing the last failure ("" if none); borrowed. */
const char *cmpclient_get0_error(const CMPCLIENT *c);
/* Returns the PKIFailureInfo bits of the last rejection, 0 if none. */
int cmpclient_get_failinfo(const CMPCLIENT *c);
/* Returns how many transactions the last operation started (1 + restarts). */
int cmpclient_get_transactions(const CMPCLIENT *c);

/* Frees the contents of |r| and zeroes it; NULL is harmless. */
void cmpclient_result_clear(struct cmpclient_result *r);

/* Returns a new private key for |spec|: "ec:P-256" (default if NULL),
 * "ec:P-384", "ec:P-521", "rsa:2048".."rsa:8192", "ed25519", "ed448";
 * NULL on failure or unknown spec. */
EVP_PKEY *cmpclient_keygen(const char *spec);

/* Writes |len| bytes to |path| atomically: temp file in the same directory,
 * fsync, rename, fsync of the directory; created with |mode|. On failure
 * the old file is untouched and no temp file remains. Returns 1 or 0. */
int cmpclient_write_file_atomic(const char *path, const void *data,
                                size_t len, unsigned int mode);
/* Installs |r| into |dir| (key 0600, cert, chain, root if set) so that
 * either all files are replaced or none is. Returns 1 on success, 0 on
 * failure with a message in |err|. */
int cmpclient_store_install(const char *dir, const struct cmpclient_result *r,
                            char *err, size_t errlen);

/* Reads a PEM private key (unencrypted) from |path|; NULL on failure. */
EVP_PKEY *cmpclient_load_key(const char *path);
/* Reads the first PEM certificate of |path|; NULL on failure. */
X509 *cmpclient_load_cert(const char *path);
/* Reads all PEM certificates of |path| into a new stack (possibly empty
 * when |optional| and the file does not exist); NULL on failure. */
STACK_OF(X509) *cmpclient_load_certs(const char *path, int optional);

#ifdef __cplusplus
}
#endif

#endif
