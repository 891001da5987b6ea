/*
 * Throw-away keys and certificates for the CMP tests (see cmp_testpki.h).
 * Everything is made with libcrypto in memory; no files are written.
 */
#include "cmp_testpki.h"
#include "util/pkey_md.h"

#include "cmp/cmp_protect.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

EVP_PKEY *cmp_testpki_key(const char *kind)
{
    if (strcmp(kind, "EC") == 0 || strcmp(kind, "P-256") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (strcmp(kind, "P-384") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (strcmp(kind, "RSA") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (strcmp(kind, "RSA-PSS") == 0) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
        EVP_PKEY *pkey = NULL;

        if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0
            || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) <= 0
            || EVP_PKEY_keygen(ctx, &pkey) <= 0)
            pkey = NULL;
        EVP_PKEY_CTX_free(ctx);
        return pkey;
    }
    if (strcmp(kind, "ED25519") == 0 || strcmp(kind, "ED448") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, kind);
    return NULL;
}

static int cmp_testpki_add_ext(X509 *cert, X509 *issuer, int nid,
                               const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v3, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Builds the to-be-signed part for |key| and |subject| (or CN=|cn| if
 * |subject| is NULL); returns the cert or NULL. */
static X509 *cmp_testpki_tbs(EVP_PKEY *key, const char *cn,
                             const X509_NAME *subject, X509 *issuer,
                             int is_ca, int days)
{
    X509 *cert = X509_new();
    X509_NAME *name = NULL;
    unsigned char serial[8];
    BIGNUM *bn = NULL;
    int ok = 0;

    if (cert == NULL || !X509_set_version(cert, X509_VERSION_3)
        || RAND_bytes(serial, sizeof(serial)) <= 0)
        goto end;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        goto end;
    if (subject != NULL) {
        if ((name = X509_NAME_dup(subject)) == NULL)
            goto end;
    } else if ((name = X509_NAME_new()) == NULL
               || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                              (const unsigned char *)cn, -1,
                                              -1, 0)) {
        goto end;
    }
    if (!X509_set_subject_name(cert, name)
        || !X509_set_issuer_name(cert, issuer != NULL
                                 ? X509_get_subject_name(issuer) : name)
        || X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400) == NULL
        || !X509_set_pubkey(cert, key))
        goto end;
    if (!cmp_testpki_add_ext(cert, issuer, NID_basic_constraints,
                             is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE")
        || !cmp_testpki_add_ext(cert, issuer, NID_key_usage,
                                is_ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                                      : "critical,digitalSignature")
        || !cmp_testpki_add_ext(cert, issuer, NID_subject_key_identifier, "hash"))
        goto end;
    if (issuer != NULL
        && !cmp_testpki_add_ext(cert, issuer, NID_authority_key_identifier,
                                "keyid:always"))
        goto end;
    ok = 1;
 end:
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        cert = NULL;
    }
    return cert;
}

X509 *cmp_testpki_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca, int days)
{
    EVP_PKEY *signer = issuer != NULL ? issuer_key : key;
    X509 *cert = cmp_testpki_tbs(key, cn, NULL, issuer, is_ca, days);
    EVP_MD_CTX *ctx = NULL;

    if (cert == NULL)
        return NULL;
    if ((ctx = EVP_MD_CTX_new()) == NULL
        || EVP_DigestSignInit_ex(ctx, NULL, pkey_default_md(signer),
                                 NULL, NULL, signer, NULL) <= 0
        || X509_sign_ctx(cert, ctx) <= 0) {
        X509_free(cert);
        cert = NULL;
    }
    EVP_MD_CTX_free(ctx);
    return cert;
}

X509 *cmp_testpki_issue(EVP_PKEY *pub, const X509_NAME *subject,
                        X509 *issuer, EVP_PKEY *issuer_key, int days)
{
    X509 *cert = cmp_testpki_tbs(pub, NULL, subject, issuer, 0, days);
    EVP_MD_CTX *ctx = NULL;

    if (cert == NULL)
        return NULL;
    if ((ctx = EVP_MD_CTX_new()) == NULL
        || EVP_DigestSignInit_ex(ctx, NULL, pkey_default_md(issuer_key),
                                 NULL, NULL, issuer_key, NULL) <= 0
        || X509_sign_ctx(cert, ctx) <= 0) {
        X509_free(cert);
        cert = NULL;
    }
    EVP_MD_CTX_free(ctx);
    return cert;
}

X509 *cmp_testpki_cert_pss(EVP_PKEY *key, const char *cn, X509 *issuer,
                           EVP_PKEY *issuer_key, int is_ca, int days)
{
    EVP_PKEY *signer = issuer != NULL ? issuer_key : key;
    X509 *cert = cmp_testpki_tbs(key, cn, NULL, issuer, is_ca, days);
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;

    if (cert == NULL)
        return NULL;
    if ((ctx = EVP_MD_CTX_new()) == NULL
        || EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, signer,
                                 NULL) <= 0
        || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
        || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0
        || X509_sign_ctx(cert, ctx) <= 0) {
        X509_free(cert);
        cert = NULL;
    }
    EVP_MD_CTX_free(ctx);
    return cert;
}

void cmp_testpki_free(struct cmp_testpki *pki)
{
    if (pki == NULL)
        return;
    EVP_PKEY_free(pki->root_key);
    X509_free(pki->root);
    EVP_PKEY_free(pki->srv_key);
    X509_free(pki->srv);
    EVP_PKEY_free(pki->dev_key);
    X509_free(pki->dev);
    memset(pki, 0, sizeof(*pki));
}

int cmp_testpki_init(struct cmp_testpki *pki, const char *kind)
{
    memset(pki, 0, sizeof(*pki));
    if ((pki->root_key = cmp_testpki_key(kind)) == NULL
        || (pki->root = cmp_testpki_cert(pki->root_key, "cmpca test root",
                                         NULL, NULL, 1, 3650)) == NULL
        || (pki->srv_key = cmp_testpki_key(kind)) == NULL
        || (pki->srv = cmp_testpki_cert(pki->srv_key, "cmpca test cmp signer",
                                        pki->root, pki->root_key, 0, 365)) == NULL
        || (pki->dev_key = cmp_testpki_key(kind)) == NULL
        || (pki->dev = cmp_testpki_cert(pki->dev_key, "cmpca test device",
                                        pki->root, pki->root_key, 0, 365)) == NULL) {
        cmp_testpki_free(pki);
        return 0;
    }
    return 1;
}

STACK_OF(X509) *cmp_testpki_stack(X509 *first, ...)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    va_list ap;
    X509 *c;

    if (sk == NULL)
        return NULL;
    va_start(ap, first);
    for (c = first; c != NULL; c = va_arg(ap, X509 *)) {
        if (!X509_add_cert(sk, c, X509_ADD_FLAG_UP_REF)) {
            sk_X509_pop_free(sk, X509_free);
            sk = NULL;
            break;
        }
    }
    va_end(ap);
    return sk;
}

X509 *cmp_testpki_read_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *cert;

    if (fp == NULL)
        return NULL;
    cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    return cert;
}
