/*
 * Throw-away keys, certificates and CAs made in memory for the CMP tests,
 * fuzz targets and benchmarks. Nothing here is fit for production use.
 */
#ifndef CMPCA_TEST_CMP_TESTPKI_H
#define CMPCA_TEST_CMP_TESTPKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Returns a new key of |kind|: "EC" or "P-256", "P-384", "RSA" (2048 bits),
 * "RSA-PSS" (2048-bit RSASSA-PSS key), "ED25519" or "ED448"; NULL on error. */
EVP_PKEY *cmp_testpki_key(const char *kind);

/* Returns a new certificate for |key| with subject CN=|cn|, issued by
 * |issuer|/|issuer_key| (self-signed if |issuer| is NULL, then |issuer_key|
 * is ignored and |key| signs). |is_ca| adds CA basic constraints; every cert
 * gets subjectKeyIdentifier, and authorityKeyIdentifier when issued. The
 * signature digest follows the signing key (pkey_default_md). Valid
 * from one hour ago for |days| days. NULL on error. */
X509 *cmp_testpki_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca, int days);

/* Returns a new end-entity certificate for the public key |pub| with
 * |subject| (copied), issued by |issuer|/|issuer_key|, valid |days| days.
 * NULL on error. */
X509 *cmp_testpki_issue(EVP_PKEY *pub, const X509_NAME *subject,
                        X509 *issuer, EVP_PKEY *issuer_key, int days);

/* As cmp_testpki_cert, but signed with RSASSA-PSS/SHA-256 by an RSA
 * |issuer_key| (self-signed if |issuer| is NULL). NULL on error. */
X509 *cmp_testpki_cert_pss(EVP_PKEY *key, const char *cn, X509 *issuer,
                           EVP_PKEY *issuer_key, int is_ca, int days);

/* A small PKI: a root CA, a CMP signer (RA/CA protection cert) and a device
 * (vendor) cert, all issued by the root, with their keys. */
struct cmp_testpki {
    EVP_PKEY *root_key;
    X509 *root;
    EVP_PKEY *srv_key;
    X509 *srv;
    EVP_PKEY *dev_key;
    X509 *dev;
};

/* Fills |pki| with fresh keys of |kind| (see cmp_testpki_key) for all three
 * identities. Returns 1 on success; on failure |pki| is cleared. */
int cmp_testpki_init(struct cmp_testpki *pki, const char *kind);
/* Frees everything in |pki| and zeroes it; harmless on a zeroed struct. */
void cmp_testpki_free(struct cmp_testpki *pki);

/* Returns a new stack holding references to the non-NULL certificates given
 * (terminated by NULL); NULL on error. */
STACK_OF(X509) *cmp_testpki_stack(X509 *first, ...);

/* Reads a PEM certificate file; NULL on error. */
X509 *cmp_testpki_read_cert(const char *path);

#endif
