/*
 * The certificate authority engine: loading a CA (certificate, chain, keys,
 * CMP signer) from the store and config once, issuing certificates from a
 * profile, revoking, and generating CRLs. A loaded CA is read-only and may
 * be used from many threads at once.
 */
#ifndef CMPCA_CA_H
#define CMPCA_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca_profile.h"
#include "ca/ca_signer.h"
#include "store/store.h"

struct conf;

typedef struct ca_st CA;

/* ------------------------------------------------------------------ */
/* Loading                                                             */

/* What to load besides the certificates (all fields optional). */
struct ca_load_opts {
    const char *key_pass;       /* secret spec overriding [ca] key_pass /
                                 * pkcs11_pin for the CA key */
    const char *signer_pass;    /* same for the CMP signer key */
    int skip_key;               /* 1: do not load the CA key (listing) */
    int skip_cmp_signer;        /* 1: do not load a separate CMP signer key */
    int ocsp_signer;            /* 1: also load the delegated OCSP signer
                                 * named by [ca NAME] ocsp_signer_cert and
                                 * ocsp_signer_key (if set) */
};

/* Result of loading; the CLI maps it to an exit code. */
enum ca_load_rc {
    CA_LOAD_OK = 0,
    CA_LOAD_NOTFOUND,     /* no such CA in the store */
    CA_LOAD_AUTH,         /* key unusable: wrong passphrase/PIN, unreadable,
                           * does not match the certificate */
    CA_LOAD_CONFIG,       /* bad [ca NAME] section */
    CA_LOAD_STORE,        /* store error */
    CA_LOAD_ERROR         /* malformed certificate/chain, other */
};

/*
 * Loads CA |name| from |store|, reading the [ca NAME] section of |conf|
 * (may be NULL; keys: key_pass, signer_key_pass, pkcs11_module, pkcs11_pin,
 * crl_validity, digest, ocsp_signer_cert, ocsp_signer_key,
 * ocsp_signer_key_pass; relative paths are relative to the configuration
 * file's directory). Parses the certificates, opens the keys (checking
 * they match), builds the chain and the cached extensions. Returns 1 and
 * sets *out, or 0 with a message in |err|.
 */
int ca_load(const struct conf *conf, STORE *store, const char *name, CA **out,
            char *err, size_t errlen);
/* Same with options; returns a ca_load_rc. */
enum ca_load_rc ca_load_ex(const struct conf *conf, STORE *store,
                           const char *name, const struct ca_load_opts *opts,
                           CA **out, char *err, size_t errlen);
/*
 * Builds an in-memory CA (id 0, not in any store) from |cert|, the chain
 * above it |above| (issuer first, root last; NULL for a root) and the CA key
 * |signer| (a reference is taken; it must match |cert|). The CMP signer is
 * the CA itself. For tests, tools and the demo. Returns NULL (+ err).
 */
CA *ca_new(const char *name, X509 *cert, STACK_OF(X509) *above,
           CA_SIGNER *signer, char *err, size_t errlen);
void ca_free(CA *ca);

/* Returns the store id of the CA record. */
int64_t ca_get_id(const CA *ca);
/* Returns the CA's name. */
const char *ca_get0_name(const CA *ca);
/* Returns the CA certificate. */
X509 *ca_get0_cert(const CA *ca);
/* Returns the chain: the CA certificate first, then intermediates, then the
 * self-signed root last (a root CA: just itself). */
STACK_OF(X509) *ca_get0_chain(const CA *ca);
/* Returns the self-signed root at the top of the chain. */
X509 *ca_get0_root(const CA *ca);
/* Returns the CA key's signer (NULL if loaded with skip_key). */
const CA_SIGNER *ca_get0_signer(const CA *ca);
/* Returns the certificate that protects CMP messages: the designated CMP
 * signer, or the CA certificate when none is set. */
X509 *ca_get0_cmp_signer_cert(const CA *ca);
/* Returns the signer for CMP message protection (see above; NULL if loaded
 * without keys). */
const CA_SIGNER *ca_get0_cmp_signer(const CA *ca);
/* Returns the CMP signer certificate followed by the CA chain up to the
 * root, without duplicates: ready to use as extraCerts. */
STACK_OF(X509) *ca_get0_cmp_chain(const CA *ca);
/* Returns the delegated OCSP signer certificate and its signer, NULL
 * unless loaded with opts->ocsp_signer and configured. */
X509 *ca_get0_ocsp_signer_cert(const CA *ca);
const CA_SIGNER *ca_get0_ocsp_signer(const CA *ca);
/* Returns 1 if a separate CMP signer certificate is designated. */
int ca_has_separate_cmp_signer(const CA *ca);
/* Returns the CRL validity (nextUpdate - thisUpdate) in seconds. */
long ca_get_crl_validity(const CA *ca);

/* ------------------------------------------------------------------ */
/* Issuance                                                            */

/* What the requester asks for. */
struct ca_issue_req {
    EVP_PKEY *pubkey;                         /* required */
    const X509_PUBKEY *spki;                  /* the same key as encoded in
                                               * the request (CRMF template,
                                               * CSR); optional but makes
                                               * issuing much cheaper (OpenSSL
                                               * 3.0 re-encodes an EVP_PKEY
                                               * through its slow encoder and
                                               * decoder). Then the returned
                                               * X509 holds the key only as
                                               * bits: X509_get0_pubkey() on
                                               * it gives NULL; use its DER
                                               * or |pubkey| instead. */
    const X509_NAME *subject;                 /* requested; may be NULL */
    const STACK_OF(X509_EXTENSION) *exts;     /* requested; may be NULL */
    ca_var_lookup_fn vars;                    /* template variables; may be
                                               * NULL if none are used */
    void *vars_arg;
    time_t now;                               /* 0 = time(NULL) */
    const X509_NAME *force_subject;           /* if set, the subject to use
                                               * whatever the profile says
                                               * (key update keeps the old
                                               * certificate's subject) */
    const X509 *vendor_cert;                  /* optional: the vendor
                                               * certificate the device
                                               * authenticated with (3GPP
                                               * ir); its SHA-256 and serial
                                               * are recorded with the
                                               * certificate in the store
                                               * (store_cert.has_vendor) */
    struct ca_issue_unsigned *defer;          /* optional: ca_issue_der()
                                               * leaves the signature to the
                                               * caller (below) */
};

/* Filled by ca_issue_der() when ca_issue_req.defer points here: the
 * certificate in rec->der then carries zero octets of the longest
 * signature in place of one. The caller signs the TBSCertificate
 * der[tbs_off, tbs_off + tbs_len) with |signer| (ca_cert_der_join() with
 * |sigalg| makes the Certificate; ca_signer_sign_cert_and_msg() does both
 * and signs the response that carries it) and hands the result to
 * ca_issue_der_finish() before the record is stored. */
struct ca_issue_unsigned {
    const CA_SIGNER *signer;
    size_t tbs_off, tbs_len;
};

/* Puts the signed Certificate |der| (OPENSSL_malloc'ed; taken over) in
 * place of the placeholder of |rec| and its SHA-256 in rec->sha256.
 * Returns 1, or 0 (|der| freed) if it is not the same TBSCertificate. */
int ca_issue_der_finish(struct store_cert *rec,
                        const struct ca_issue_unsigned *u, unsigned char *der,
                        size_t len);

/* Result of an issuance; every value but OK names one cause. */
enum ca_issue_rc {
    CA_ISSUE_OK = 0,
    CA_ISSUE_BAD_KEY,       /* key type/size not allowed (badCertTemplate) */
    CA_ISSUE_BAD_SUBJECT,   /* no subject, missing variable, bad value
                             * (badCertTemplate) */
    CA_ISSUE_BAD_EXT,       /* requested extension unusable (badCertTemplate) */
    CA_ISSUE_EXPIRED,       /* the CA certificate has expired */
    CA_ISSUE_STORE,         /* the store refused (systemUnavail) */
    CA_ISSUE_ERROR          /* internal error (systemFailure) */
};

/* Returns a constant name for |rc|. */
const char *ca_issue_rc_str(enum ca_issue_rc rc);

/*
 * Builds and signs a certificate for |req| under |ca| with profile |prof|:
 * random 20-octet positive serial, notBefore = now - backdate, notAfter =
 * now + validity capped at the CA's notAfter, extensions from the profile
 * plus SKI/AKI. Does not touch the store. Returns CA_ISSUE_OK and sets
 * *out, or another code with a message in |err|.
 */
enum ca_issue_rc ca_issue(const CA *ca, const CA_PROFILE *prof,
                          const struct ca_issue_req *req, X509 **out,
                          char *err, size_t errlen);

/*
 * ca_issue_store_der() (issue, insert into the caller's write transaction
 * |tx|, re-issue with a fresh serial on a collision), then the stored DER
 * decoded into *out if |out| is not NULL (OpenSSL 3.0 decodes the key
 * then: fine for one certificate, not for a hot path). |device_id| (0 =
 * none) is recorded with the certificate. Sets *out and *cert_id (either
 * may be NULL). The caller commits.
 */
enum ca_issue_rc ca_issue_store(const CA *ca, const CA_PROFILE *prof,
                                const struct ca_issue_req *req, STORE_TX *tx,
                                int64_t device_id, X509 **out,
                                int64_t *cert_id, char *err, size_t errlen);

/*
 * The same certificate as ca_issue() (same checks, error codes and
 * messages; same serial rules, validity, subject, extensions in the same
 * order and criticality, signature algorithm), built without an X509
 * object: the TBSCertificate DER is assembled from parts the profile and CA
 * encoded once plus the per-certificate values and signed once as bytes.
 * Does not touch the store. On CA_ISSUE_OK |rec| (zeroed first) holds what
 * ca_store_cert_fill() would make from that certificate, ready for
 * store_cert_insert():
 *   der/der_len   the Certificate DER (OPENSSL_malloc'ed)
 *   serial        magnitude octets, 19 or 20, positive, no sign octet
 *   subject       RFC 2253 text as X509_NAME_print_ex(XN_FLAG_RFC2253)
 *                 prints it (malloc'ed)
 *   not_before/not_after   unix seconds of the encoded validity
 *   sha256        SHA-256 of der
 *   ca_id, device_id (0 = none), status VALID, reason -1, revoked_at 0,
 *   profile       borrowed from |prof| (do not free), id/created 0.
 * Free with ca_store_cert_clear(). On failure |rec| is zeroed and |err|
 * says why. Note that d2i_X509() of the DER costs far more than issuing
 * (OpenSSL 3.0 decodes the key through its provider decoder); pass the
 * bytes on as they are.
 */
enum ca_issue_rc ca_issue_der(const CA *ca, const CA_PROFILE *prof,
                              const struct ca_issue_req *req,
                              int64_t device_id, struct store_cert *rec,
                              char *err, size_t errlen);

/*
 * ca_issue_der() followed by store_cert_insert() in the caller's write
 * transaction |tx|, re-issuing with a fresh serial when the store reports a
 * collision (STORE_EXISTS; a few tries). On CA_ISSUE_OK sets *cert_id (may
 * be NULL) and, if |rec| is not NULL, leaves the stored record in it (as
 * ca_issue_der() describes, with rec->id set; free with
 * ca_store_cert_clear()). The caller commits; nothing is durable before.
 */
enum ca_issue_rc ca_issue_store_der(const CA *ca, const CA_PROFILE *prof,
                                    const struct ca_issue_req *req,
                                    STORE_TX *tx, int64_t device_id,
                                    struct store_cert *rec, int64_t *cert_id,
                                    char *err, size_t errlen);

/* Fills |rec| (a store record, zeroed first) from |cert|: serial, subject,
 * validity, DER (malloc'ed; free with store_cert_free-compatible fields:
 * call ca_store_cert_clear). Returns 1 or 0. */
int ca_store_cert_fill(const CA *ca, X509 *cert, const char *profile,
                       int64_t device_id, struct store_cert *rec);
/* Frees what ca_store_cert_fill allocated in |rec| (not rec itself). */
void ca_store_cert_clear(struct store_cert *rec);

/* ------------------------------------------------------------------ */
/* Revocation and CRLs                                                 */

/* Writes the serial magnitude octets as upper-case hex (the one format of
 * serial numbers in audit rows, logs and the CLI) into |buf| (2 * len + 1
 * bytes; shorter output is cut) and returns |buf|. */
char *ca_serial_hex(const unsigned char *serial, size_t len, char *buf,
                    size_t buflen);

/* RFC 5280 CRLReason from its name ("keyCompromise", ...; case-insensitive)
 * or number. Returns the code or -1. */
int ca_reason_parse(const char *s);
/* Returns the name of reason |code| or NULL. */
const char *ca_reason_str(int code);

enum ca_revoke_rc {
    CA_REVOKE_OK = 0,
    CA_REVOKE_NOTFOUND,     /* no such certificate of this CA (badCertId) */
    CA_REVOKE_ALREADY,      /* already revoked, or on hold and put on
                             * hold again (certRevoked) */
    CA_REVOKE_NOT_HELD,     /* removeFromCRL for a valid certificate
                             * (badRequest) */
    CA_REVOKE_ERROR         /* store error, or a reason that is none */
};

/* RFC 5280 CRLReason codes with a rule of their own. */
#define CA_REASON_HOLD 6          /* certificateHold: may be released */
#define CA_REASON_REMOVE 8        /* removeFromCRL: releases a hold */

/*
 * Marks certificate |cert_id| of |ca| revoked at |when| (0 = now) with
 * |reason| (-1 = none) in |tx| and appends an audit row "cert.revoke"
 * naming |actor|. A certificate on hold (certificateHold) may be revoked
 * with another reason: the hold becomes that revocation. |reason|
 * removeFromCRL releases a certificate on hold instead: valid again, off
 * the next CRL, audit row "cert.unhold" (RFC 5280 5.3.1 allows the reason
 * only in delta CRLs; a full CRL simply no longer lists it); for a valid
 * certificate that is CA_REVOKE_NOT_HELD, for one revoked for good
 * CA_REVOKE_ALREADY. Does not make a CRL (call ca_crl_generate in the
 * same tx if wanted).
 */
enum ca_revoke_rc ca_revoke(const CA *ca, STORE_TX *tx, int64_t cert_id,
                            int reason, int64_t when, const char *actor,
                            char *err, size_t errlen);
/* As ca_revoke(), the certificate given by serial magnitude octets. */
enum ca_revoke_rc ca_revoke_serial(const CA *ca, STORE_TX *tx,
                                   const unsigned char *serial,
                                   size_t serial_len, int reason,
                                   int64_t when, const char *actor,
                                   char *err, size_t errlen);

/*
 * Makes a v2 CRL of |ca| in |tx|: the next CRL number from the store,
 * thisUpdate = |now| (0 = now), nextUpdate = now + crl_validity, every
 * revoked certificate not yet expired with its reason code, AKI and CRL
 * number extensions; signs it with the CA key and stores it as the latest
 * CRL. Sets *out (may be NULL). Returns 1 or 0 with |err|.
 */
int ca_crl_generate(const CA *ca, STORE_TX *tx, time_t now, X509_CRL **out,
                    char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Creating CAs (admin commands)                                       */

/* Builds a CA certificate: subject |subject| and key |pub|, signed by
 * |issuer_signer| as |issuer| (NULL = self-signed with |pub|'s signer),
 * basicConstraints CA:TRUE critical (pathlen if >= 0), keyUsage
 * keyCertSign+cRLSign critical, SKI/AKI, |days| of validity (capped at the
 * issuer's notAfter). Returns the signed certificate or NULL (+ err). */
X509 *ca_make_ca_cert(const X509_NAME *subject, EVP_PKEY *pub, long days,
                      X509 *issuer, const CA_SIGNER *issuer_signer,
                      int pathlen, char *err, size_t errlen);

/* Makes a random positive serial of 20 octets (top bit clear, never zero)
 * and sets it in |x|. Returns 1 or 0. */
int ca_serial_random(X509 *x);

/*
 * Records a new CA in the store within |tx|: certificate |cert|, the chain
 * above it |above| (issuer first, root last; NULL or empty for a root),
 * key reference |key_ref| (absolute PEM path or pkcs11: URI), plus an audit
 * row naming |actor|. Sets *id (may be NULL). Returns the store code
 * (STORE_EXISTS when the name is taken).
 */
enum store_rc ca_record_insert(STORE_TX *tx, const char *name, X509 *cert,
                               STACK_OF(X509) *above, const char *key_ref,
                               const char *actor, int64_t *id);

/* Builds a CMP signing certificate for |pub| under |ca| (which must be
 * loaded with its key): extendedKeyUsage id-kp-cmcRA, keyUsage
 * digitalSignature, CA:FALSE, SKI/AKI, |days| (capped at the CA's
 * notAfter). Returns the certificate or NULL (+ err). */
X509 *ca_make_cmp_signer_cert(const CA *ca, const X509_NAME *subject,
                              EVP_PKEY *pub, long days, char *err,
                              size_t errlen);

/* Builds a delegated OCSP responder certificate for |pub| under |ca|
 * (loaded with its key): extendedKeyUsage id-kp-OCSPSigning, keyUsage
 * digitalSignature, CA:FALSE, id-pkix-ocsp-nocheck, SKI/AKI, |days|
 * (capped at the CA's notAfter), signed with the CA key's digest (SHA-256
 * for P-256 and RSA keys). Returns the certificate or NULL (+ err). */
X509 *ca_make_ocsp_signer_cert(const CA *ca, const X509_NAME *subject,
                               EVP_PKEY *pub, long days, char *err,
                               size_t errlen);

/* Records |cert| (already in the certificates table or not) with key
 * |key_ref| as the designated CMP signer of |ca| in |tx|, with an audit
 * row. Returns the store code. */
enum store_rc ca_record_set_cmp_signer(STORE_TX *tx, const CA *ca, X509 *cert,
                                       const char *key_ref, const char *actor);

#endif
