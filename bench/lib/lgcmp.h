/*
 * lgcmp: a lean CMP client engine for the load generator. One call runs a
 * complete ir+certConf or kur+certConf transaction, built and checked with
 * cmpca's own ASN.1/CMP layer; the server's signer certificate is validated
 * against the trust anchor once and afterwards recognised by its SHA-256.
 */
#ifndef CMPCA_BENCH_LGCMP_H
#define CMPCA_BENCH_LGCMP_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>

/* Sends one request |req| (|req_len| octets, PKIBody type |type|: ir, kur
 * or certConf) and returns the response body in *rsp (borrowed, valid until
 * the next call). Returns 1, or 0 on a transport error. */
typedef int (*lgcmp_transfer_fn)(void *arg, int type, const unsigned char *req,
                                 size_t req_len, const unsigned char **rsp,
                                 size_t *rsp_len);

/* A new key to be certified: private key plus its pre-encoded SPKI. */
typedef struct lgcmp_key_st LGCMP_KEY;
/* A signing identity: certificate (pre-encoded, with chain), subject,
 * subjectKeyIdentifier, oldCertID and private key. */
typedef struct lgcmp_ident_st LGCMP_IDENT;
/* The trust anchor (operator root); shared read-only between threads. */
typedef struct lgcmp_trust_st LGCMP_TRUST;
/* Per-thread engine state: transfer callback and the caches of validated
 * server certificates. Never shared between threads. */
typedef struct lgcmp_client_st LGCMP_CLIENT;

enum lgcmp_outcome {
    LGCMP_OK = 0,
    LGCMP_TRANSPORT,        /* the transfer callback failed */
    LGCMP_REJECTED,         /* the server refused (verified error/status) */
    LGCMP_BAD_RESPONSE,     /* a response failed the client's checks */
    LGCMP_INTERNAL          /* local failure (allocation, signing) */
};

/* Outcome of one transaction. */
struct lgcmp_result {
    enum lgcmp_outcome outcome;
    int stage;              /* 0: request/response, 1: certConf/pkiConf */
    int status;             /* PKIStatus the server sent, -1 if none */
    int failinfo;           /* PKIFailureInfo bits the server sent */
    char text[256];         /* what went wrong, for diagnostics */
    unsigned char *cert;    /* LGCMP_OK: DER of the new certificate */
    size_t cert_len;
};

/* Returns a new key object for |pkey| (reference taken) with its SPKI
 * encoded once, or NULL. */
LGCMP_KEY *lgcmp_key_new(EVP_PKEY *pkey);
/* Frees |key| (NULL is harmless). */
void lgcmp_key_free(LGCMP_KEY *key);
/* Returns the private key of |key| (borrowed). */
EVP_PKEY *lgcmp_key_get0_pkey(const LGCMP_KEY *key);

/* Returns a new identity signing with |key| (reference taken) as |cert|,
 * sending |cert| and then the certificates of |chain| (may be NULL) that
 * are not self-signed as extraCerts, as OpenSSL's client does; NULL on
 * failure. For the vendor credentials of an ir. */
LGCMP_IDENT *lgcmp_ident_new(X509 *cert, EVP_PKEY *key,
                             const STACK_OF(X509) *chain);
/* The same from the DER certificate |der| (as returned in a result) without
 * decoding its public key; extraCerts is the certificate alone (kur). */
LGCMP_IDENT *lgcmp_ident_new_der(const unsigned char *der, size_t len,
                                 EVP_PKEY *key);
/* Frees |id| (NULL is harmless). */
void lgcmp_ident_free(LGCMP_IDENT *id);

/* Returns a new trust object with |root| (reference taken) as the only
 * trust anchor, or NULL. */
LGCMP_TRUST *lgcmp_trust_new(X509 *root);
/* Frees |t| (NULL is harmless); no client may use it any more. */
void lgcmp_trust_free(LGCMP_TRUST *t);

/* Returns a new per-thread client using |trust| (borrowed, must outlive
 * the client) and |transfer| with |arg|, or NULL. */
LGCMP_CLIENT *lgcmp_client_new(const LGCMP_TRUST *trust,
                               lgcmp_transfer_fn transfer, void *arg);
/* Frees |c| (NULL is harmless). */
void lgcmp_client_free(LGCMP_CLIENT *c);
/* Returns the public key of the CA that issued the last certificate this
 * client accepted (borrowed), or NULL. */
EVP_PKEY *lgcmp_client_get0_issuer_pubkey(const LGCMP_CLIENT *c);
/* Returns how many full certificate path validations this client ran. */
long lgcmp_client_get_validations(const LGCMP_CLIENT *c);

/* Runs one transaction: an ir (|kur| 0) or kur (|kur| 1) signed by |id|
 * asking to certify |newkey|, then certConf. Fills |res|, which must be
 * zeroed or hold an earlier result (it is cleared first; release it with
 * lgcmp_result_clear). Returns 1 if the outcome is
 * LGCMP_OK, else 0. */
int lgcmp_enroll(LGCMP_CLIENT *c, int kur, const LGCMP_IDENT *id,
                 const LGCMP_KEY *newkey, struct lgcmp_result *res);
/* Frees what |res| holds and clears it. */
void lgcmp_result_clear(struct lgcmp_result *res);

#endif
