/*
 * The signing interface: the only code that touches a CA (or CMP signer)
 * private key. Keys come from an encrypted PEM file or a PKCS#11 token (libp11
 * engine) - or, in the network process of `cmpca serve`, are held by the
 * signer process (src/signer/), and a CA_SIGNER there only forwards the bytes
 * to sign. Callers only ever ask for signatures and cannot tell the two
 * apart. All signing functions are safe to call from many threads at once on
 * one CA_SIGNER.
 */
#ifndef CMPCA_CA_SIGNER_H
#define CMPCA_CA_SIGNER_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

typedef struct ca_signer_st CA_SIGNER;

/* Outcome of loading a key; each maps to one clear message. */
enum ca_signer_status {
    CA_SIGNER_OK = 0,
    CA_SIGNER_AUTH,      /* wrong/missing passphrase or PIN */
    CA_SIGNER_NOKEY,     /* key file unreadable/malformed, key not on token */
    CA_SIGNER_MISMATCH,  /* key does not belong to the certificate */
    CA_SIGNER_ERROR      /* anything else (engine missing, out of memory) */
};

/* Where a key comes from and how to unlock it. */
struct ca_signer_opts {
    const char *pass_spec;      /* secret spec (file:/env:/prompt) of the
                                 * PEM passphrase or the token PIN; NULL =
                                 * none (plain PEM only) */
    const char *pkcs11_module;  /* PKCS#11 module; NULL = $PKCS11_MODULE or
                                 * /usr/lib/softhsm/libsofthsm2.so */
    const char *md;             /* digest name overriding the default for the
                                 * key type; NULL = default */
    const char *what;           /* names the key in prompts and messages */
};

/* Default PKCS#11 module when neither config nor $PKCS11_MODULE names one. */
#define CA_SIGNER_DEFAULT_PKCS11_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* Loads the key named by |keyref|: a PEM file path, or a "pkcs11:" URI.
 * Returns CA_SIGNER_OK and sets *out, or another status with a message in
 * |err| (*out NULL). Only one PKCS#11 module can be used per process. */
enum ca_signer_status ca_signer_load(const char *keyref,
                                     const struct ca_signer_opts *opts,
                                     CA_SIGNER **out, char *err,
                                     size_t errlen);

/* Wraps an in-memory private key (takes a reference; for keys just
 * generated). |md| as in ca_signer_opts. Returns NULL on error. */
CA_SIGNER *ca_signer_new_pkey(EVP_PKEY *pkey, const char *md);

/* Adds a reference. Returns 1. */
int ca_signer_up_ref(CA_SIGNER *s);
/* Drops a reference; frees on the last. NULL is harmless. */
void ca_signer_free(CA_SIGNER *s);

/* Returns the public key (public part only; never the private key). */
EVP_PKEY *ca_signer_get0_pubkey(const CA_SIGNER *s);
/* Returns the key reference given to ca_signer_load() ("" for in-memory). */
const char *ca_signer_get0_keyref(const CA_SIGNER *s);
/* Returns the digest name used ("SHA256", ...) or NULL for EdDSA. */
const char *ca_signer_get0_md(const CA_SIGNER *s);
/* Returns 1 if the key lives on a PKCS#11 token. */
int ca_signer_is_pkcs11(const CA_SIGNER *s);
/* Sets the digest ("SHA256", "SHA384", "SHA512"; NULL = default for the key
 * type). Not for use while other threads sign. Returns 1 or 0. */
int ca_signer_set_md(CA_SIGNER *s, const char *md);

/* Returns 1 if |cert| holds this signer's public key and a test signature
 * made with the private key verifies under it; else 0. */
int ca_signer_matches_cert(const CA_SIGNER *s, X509 *cert);

/* Signs |x| (sets its signature algorithms). Returns 1 or 0. */
int ca_signer_sign_x509(const CA_SIGNER *s, X509 *x);
/* Signs |crl|. Returns 1 or 0. */
int ca_signer_sign_crl(const CA_SIGNER *s, X509_CRL *crl);
/* Signs the DER of |data| (of ASN.1 type |it|), writing the algorithm to
 * |alg1| and |alg2| (either may be NULL) and the signature to |sig|, like
 * ASN1_item_sign_ctx(). Used by the CMP layer for ProtectedPart. Returns 1
 * or 0. */
int ca_signer_sign_item(const CA_SIGNER *s, const ASN1_ITEM *it,
                        X509_ALGOR *alg1, X509_ALGOR *alg2,
                        ASN1_BIT_STRING *sig, const void *data);
/* Signs the BasicOCSPResponse |bs| as OCSP_basic_sign_ctx() does (sets the
 * responderID, producedAt and signature; adds |cert| unless OCSP_NOCERTS
 * is in |flags|, and |certs|); |cert| must hold this signer's public key.
 * Returns 1 or 0. */
int ca_signer_sign_ocsp(const CA_SIGNER *s, OCSP_BASICRESP *bs, X509 *cert,
                        STACK_OF(X509) *certs, unsigned long flags);
/* Signs raw bytes |tbs| (digest-and-sign); the malloc'ed signature goes to
 * *sig (OPENSSL_free it). Returns 1 or 0. */
int ca_signer_sign_data(const CA_SIGNER *s, const unsigned char *tbs,
                        size_t tbslen, unsigned char **sig, size_t *siglen);

/* Returns the largest signature this signer can make, in bytes (0 on
 * error). */
size_t ca_signer_max_sig_len(const CA_SIGNER *s);
/* Signs raw bytes |tbs| (digest-and-sign, the same operation and padding as
 * ca_signer_sign_x509() applies to a TBSCertificate) into the caller's
 * buffer |sig| of *siglen bytes, which must be at least
 * ca_signer_max_sig_len(); sets *siglen to the signature length. Works for
 * software and PKCS#11 keys. Returns 1 or 0. */
int ca_signer_sign_buf(const CA_SIGNER *s, const unsigned char *tbs,
                       size_t tbslen, unsigned char *sig, size_t *siglen);
/* Points *der at the DER AlgorithmIdentifier that ca_signer_sign_x509()
 * would write into a certificate's signature fields (and that matches the
 * signatures ca_signer_sign_buf() makes), sets *len. Learned with one probe
 * signature on first use, then cached until ca_signer_set_md(); the bytes
 * stay valid as long as the signer and its digest. Thread-safe. Returns 1
 * or 0. */
int ca_signer_get0_sigalg_der(const CA_SIGNER *s, const unsigned char **der,
                              size_t *len);

/* Certificate ::= SEQUENCE { tbsCertificate |tbs|, signatureAlgorithm
 * |alg|, signatureValue |sig| (a BIT STRING, no unused bits) } into a new
 * OPENSSL_malloc'ed *out. Returns 1 or 0. */
int ca_cert_der_join(const unsigned char *tbs, size_t tbslen,
                     const unsigned char *alg, size_t alglen,
                     const unsigned char *sig, size_t siglen,
                     unsigned char **out, size_t *outlen);

/*
 * A certificate and the message that carries it, signed together: signs
 * the TBSCertificate |tbs| with |cs| into a Certificate (*cert, *certlen,
 * OPENSSL_malloc'ed; with |cs|'s AlgorithmIdentifier), puts it in place of
 * the element at [off, off + olen) of the DER encoding |msg| (der_splice:
 * the enclosing lengths rewritten) and signs those bytes with |ms| into
 * |msig| of *msiglen bytes (at least ca_signer_max_sig_len(ms)). When
 * both keys are held by one other process that offers it, both signatures
 * take one round trip instead of two. Returns 1 or 0.
 */
int ca_signer_sign_cert_and_msg(const CA_SIGNER *cs, const unsigned char *tbs,
                                size_t tbslen, const CA_SIGNER *ms,
                                const unsigned char *msg, size_t msglen,
                                size_t off, size_t olen, unsigned char **cert,
                                size_t *certlen, unsigned char *msig,
                                size_t *msiglen);

/* ------------------------------------------------------------------ */
/* Keys held by another process                                        */

/* Signs |tbs| (digest-and-sign, as ca_signer_sign_buf()) with key |key_id|
 * of the backend |arg| into |sig| of *siglen bytes; sets *siglen. Called
 * from many threads at once. Returns 1 or 0. */
typedef int (*ca_signer_remote_sign_fn)(void *arg, uint32_t key_id,
                                        const unsigned char *tbs,
                                        size_t tbslen, unsigned char *sig,
                                        size_t *siglen);

/* ca_signer_sign_cert_and_msg() in the backend |arg|: the certificate's
 * signature by |key_id| into |sig|, the message's by |key2_id| into
 * |sig2| (each buffer of *len bytes; sets both lengths). */
typedef int (*ca_signer_remote_pair_fn)(void *arg, uint32_t key_id,
                                        const unsigned char *tbs,
                                        size_t tbslen, uint32_t key2_id,
                                        const unsigned char *msg,
                                        size_t msglen, size_t off,
                                        size_t olen, unsigned char *sig,
                                        size_t *siglen, unsigned char *sig2,
                                        size_t *sig2len);

/* What the other process told about one of its keys. */
struct ca_signer_remote {
    ca_signer_remote_sign_fn sign;
    ca_signer_remote_pair_fn pair;   /* may be NULL: two round trips */
    void *arg;                   /* must outlive the CA_SIGNER */
    uint32_t key_id;
    const char *keyref;          /* the key reference it was loaded from */
    const char *md;              /* digest name; NULL or "" for EdDSA */
    int pkcs11;                  /* 1 if the key is on a token */
    EVP_PKEY *pub;               /* public key (a reference is taken) */
    const unsigned char *sigalg; /* DER AlgorithmIdentifier of its
                                  * signatures (copied) */
    size_t sigalg_len;
};

/* Builds a CA_SIGNER for a key another process holds: every signing
 * function (sign_x509, sign_crl, sign_item, sign_data, sign_buf) encodes
 * here and sends only the bytes to be signed to |r->sign|; no private key
 * is in this process. set_md() accepts only the digest it already has.
 * Returns NULL on error. */
CA_SIGNER *ca_signer_new_remote(const struct ca_signer_remote *r);

/* Replaces how ca_signer_load() gets keys: with |fn| set, it calls |fn|
 * (with |arg| and its own arguments) instead of reading key files or
 * tokens, and never reads the passphrase or PIN. NULL restores local
 * loading. Set before any thread loads keys. */
typedef enum ca_signer_status (*ca_signer_loader_fn)(
    void *arg, const char *keyref, const struct ca_signer_opts *opts,
    CA_SIGNER **out, char *err, size_t errlen);
void ca_signer_set_loader(ca_signer_loader_fn fn, void *arg);

/* Returns 1 if the private key of |s| is held by another process. */
int ca_signer_is_remote(const CA_SIGNER *s);

#endif
