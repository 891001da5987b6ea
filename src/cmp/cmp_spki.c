/*
 * Fast public-key import for certificate requests (see cmp_spki.h). The
 * key is validated by the provider import (an EC point must lie on its
 * curve); nothing here parses key material by hand.
 */
#include "cmp/cmp_spki.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <string.h>

/* EC with a named curve: import group name and point. */
static EVP_PKEY *cmp_spki_ec(const X509_ALGOR *alg, const unsigned char *pub,
                             size_t len)
{
    const ASN1_OBJECT *obj;
    const void *pval = NULL;    /* X509_ALGOR_get0 leaves it unset when absent */
    int ptype;
    const char *group;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[3];

    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (ptype != V_ASN1_OBJECT
        || (group = OBJ_nid2sn(OBJ_obj2nid(pval))) == NULL
        || OBJ_obj2nid(pval) == NID_undef)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  (void *)pub, len);
    params[2] = OSSL_PARAM_construct_end();
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* Any other type: the generic decoder on the re-encoded SPKI. */
static EVP_PKEY *cmp_spki_generic(const CMP_RAWSPKI *spki)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pkey = NULL;
    int len = i2d_CMP_RAWSPKI(spki, &der);

    if (len > 0) {
        p = der;
        pkey = d2i_PUBKEY(NULL, &p, len);
        if (pkey != NULL && p != der + len) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    OPENSSL_free(der);
    return pkey;
}

/* An X509_PUBKEY holding the same algorithm and key bits (not decoded). */
static X509_PUBKEY *cmp_spki_xpk(const CMP_RAWSPKI *spki)
{
    const ASN1_OBJECT *obj;
    const void *pval = NULL;    /* X509_ALGOR_get0 leaves it unset when absent */
    int ptype, len = ASN1_STRING_length(spki->subjectPublicKey);
    X509_PUBKEY *xpk = X509_PUBKEY_new();
    ASN1_OBJECT *o = NULL;
    void *pv = NULL;
    unsigned char *bits = NULL;

    X509_ALGOR_get0(&obj, &ptype, &pval, spki->algorithm);
    if (xpk == NULL || (o = OBJ_dup(obj)) == NULL)
        goto err;
    if (ptype == V_ASN1_OBJECT)
        pv = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        pv = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
        goto err;
    if (pval != NULL && ptype != V_ASN1_NULL && pv == NULL)
        goto err;
    if ((bits = OPENSSL_memdup(ASN1_STRING_get0_data(spki->subjectPublicKey),
                               (size_t)len)) == NULL && len > 0)
        goto err;
    if (!X509_PUBKEY_set0_param(xpk, o, ptype, pv, bits, len))
        goto err;
    return xpk;
 err:
    ASN1_OBJECT_free(o);
    if (ptype == V_ASN1_OBJECT)
        ASN1_OBJECT_free(pv);
    else
        ASN1_STRING_free(pv);
    OPENSSL_free(bits);
    X509_PUBKEY_free(xpk);
    return NULL;
}

int cmp_spki_get1(const CMP_RAWSPKI *spki, EVP_PKEY **pkey, X509_PUBKEY **xpk)
{
    const ASN1_BIT_STRING *bs = spki->subjectPublicKey;
    const unsigned char *pub = ASN1_STRING_get0_data(bs);
    size_t len = (size_t)ASN1_STRING_length(bs);
    int nid = OBJ_obj2nid(spki->algorithm->algorithm);

    *pkey = NULL;
    if (xpk != NULL)
        *xpk = NULL;
    /* key bit strings are whole octets */
    if ((bs->flags & ASN1_STRING_FLAG_BITS_LEFT) != 0 && (bs->flags & 0x07) != 0)
        return 0;
    switch (nid) {
    case NID_X9_62_id_ecPublicKey:
        *pkey = cmp_spki_ec(spki->algorithm, pub, len);
        break;
    case NID_ED25519:
    case NID_ED448:
    case NID_X25519:
    case NID_X448:
        if (spki->algorithm->parameter == NULL)
            *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, OBJ_nid2sn(nid), NULL,
                                                   pub, len);
        break;
    default:
        *pkey = cmp_spki_generic(spki);
        break;
    }
    if (*pkey == NULL || (xpk != NULL && (*xpk = cmp_spki_xpk(spki)) == NULL)) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
        ERR_clear_error();
        return 0;
    }
    return 1;
}

enum cmp_reason cmp_spki_check_alg(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj;
    const void *pval = NULL;
    int ptype;

    if (alg == NULL)
        return CMP_R_BAD_KEY_ALG;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    switch (OBJ_obj2nid(obj)) {
    case NID_rsaEncryption:
        return ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF
            ? CMP_R_OK : CMP_R_BAD_KEY_ALG;
    case NID_X9_62_id_ecPublicKey:
        if (ptype != V_ASN1_OBJECT)
            return CMP_R_BAD_KEY_ALG;   /* explicit or implicit curve */
        switch (OBJ_obj2nid(pval)) {
        case NID_X9_62_prime256v1:
        case NID_secp384r1:
        case NID_secp521r1:
            return CMP_R_OK;
        default:
            return CMP_R_BAD_KEY_ALG;
        }
    case NID_ED25519:
    case NID_ED448:
        return ptype == V_ASN1_UNDEF ? CMP_R_OK : CMP_R_BAD_KEY_ALG;
    default:
        return CMP_R_BAD_KEY_ALG;
    }
}

enum cmp_reason cmp_spki_get1_checked(const CMP_RAWSPKI *spki, EVP_PKEY **pkey,
                                      X509_PUBKEY **xpk)
{
    enum cmp_reason r;

    *pkey = NULL;
    if (xpk != NULL)
        *xpk = NULL;
    if (spki == NULL)
        return CMP_R_BAD_PUBLIC_KEY;
    if ((r = cmp_spki_check_alg(spki->algorithm)) != CMP_R_OK)
        return r;
    return cmp_spki_get1(spki, pkey, xpk) ? CMP_R_OK : CMP_R_BAD_PUBLIC_KEY;
}
