/*
 * Signature and MAC protection of PKIMessages over DER(ProtectedPart), the
 * protecting-certificate lookup and certHash. All cryptography is libcrypto's.
 */
#include "cmp/cmp_protect.h"
#include "util/pkey_md.h"

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define CMP_SALT_LEN 16
#define CMP_SALT_MAX 64

int cmp_protect_sign(CMP_MSG *msg, cmp_sign_fn sign, void *arg)
{
    CMP_PROTPART pp;

    X509_ALGOR_free(msg->header->protectionAlg);
    ASN1_BIT_STRING_free(msg->protection);
    msg->protection = NULL;
    if ((msg->header->protectionAlg = X509_ALGOR_new()) == NULL
        || (msg->protection = ASN1_BIT_STRING_new()) == NULL)
        return 0;
    /* The algorithm identifier is written into the header before the
     * header is encoded for signing (as X509_sign does for tbsCertificate). */
    pp.header = msg->header;
    pp.body = msg->body;
    return sign(arg, ASN1_ITEM_rptr(CMP_PROTPART), msg->header->protectionAlg,
                NULL, msg->protection, &pp);
}

int cmp_protect_sign_encode(CMP_MSG *msg, const unsigned char *alg,
                            size_t alg_len, cmp_sign_buf_fn sign, void *arg,
                            size_t max_sig, const unsigned char *extra,
                            size_t extra_len, unsigned char **der,
                            size_t *len)
{
    CMP_PROTPART pp;
    X509_ALGOR *a = NULL;
    ASN1_BIT_STRING *prot = NULL;
    const unsigned char *p = alg, *content;
    unsigned char *ppder = NULL, *sig = NULL, *out = NULL, *w;
    size_t siglen = max_sig, inner;
    long clen;
    int pplen, tag, xclass, bits, exp, tot, ok = 0;

    *der = NULL;
    *len = 0;
    if (msg->extraCerts != NULL && sk_X509_num(msg->extraCerts) > 0)
        goto end;               /* they would not be encoded */
    if (alg_len > INT_MAX || max_sig == 0 || max_sig > INT_MAX / 4
        || extra_len > INT_MAX / 4
        || (a = d2i_X509_ALGOR(NULL, &p, (long)alg_len)) == NULL
        || p != alg + alg_len)
        goto end;
    X509_ALGOR_free(msg->header->protectionAlg);
    msg->header->protectionAlg = a;
    /* header and body encoded once: signed, then reused as they are */
    pp.header = msg->header;
    pp.body = msg->body;
    if ((pplen = ASN1_item_i2d((const ASN1_VALUE *)&pp, &ppder,
                               ASN1_ITEM_rptr(CMP_PROTPART))) <= 0)
        goto end;
    content = ppder;
    if (ASN1_get_object(&content, &clen, &tag, &xclass, pplen)
        != V_ASN1_CONSTRUCTED || content + clen != ppder + pplen)
        goto end;
    if ((sig = OPENSSL_malloc(max_sig)) == NULL
        || !sign(arg, ppder, (size_t)pplen, sig, &siglen)
        || siglen == 0 || siglen > max_sig)
        goto end;
    /* keep the message object in step with the bytes */
    if ((prot = ASN1_BIT_STRING_new()) == NULL
        || !ASN1_BIT_STRING_set(prot, sig, (int)siglen))
        goto end;
    prot->flags &= ~(long)0x07;         /* whole octets, as ASN1_item_sign */
    prot->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    ASN1_BIT_STRING_free(msg->protection);
    msg->protection = prot;
    prot = NULL;
    /* SEQUENCE { header, body, [0] BIT STRING (no unused bits), extra } */
    bits = ASN1_object_size(0, (int)siglen + 1, V_ASN1_BIT_STRING);
    exp = ASN1_object_size(1, bits, 0);
    inner = (size_t)clen + (size_t)exp + extra_len;
    if (bits <= 0 || exp <= 0 || inner > INT_MAX / 2
        || (tot = ASN1_object_size(1, (int)inner, V_ASN1_SEQUENCE)) <= 0
        || (out = OPENSSL_malloc((size_t)tot)) == NULL)
        goto end;
    w = out;
    ASN1_put_object(&w, 1, (int)inner, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(w, content, (size_t)clen);
    w += clen;
    ASN1_put_object(&w, 1, bits, 0, V_ASN1_CONTEXT_SPECIFIC);
    ASN1_put_object(&w, 0, (int)siglen + 1, V_ASN1_BIT_STRING,
                    V_ASN1_UNIVERSAL);
    *w++ = 0;
    memcpy(w, sig, siglen);
    w += siglen;
    if (extra_len > 0) {
        memcpy(w, extra, extra_len);
        w += extra_len;
    }
    if (w != out + tot)
        goto end;
    *der = out;
    *len = (size_t)tot;
    out = NULL;
    ok = 1;
 end:
    ASN1_BIT_STRING_free(prot);
    OPENSSL_free(ppder);
    OPENSSL_free(sig);
    OPENSSL_free(out);
    return ok;
}

int cmp_protect_sign_pkey_fn(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                             X509_ALGOR *alg2, ASN1_BIT_STRING *sig,
                             const void *data)
{
    EVP_PKEY *pkey = arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = 0;

    if (ctx == NULL)
        goto end;
    if (EVP_DigestSignInit_ex(ctx, NULL, pkey_default_md(pkey), NULL,
                              NULL, pkey, NULL) <= 0)
        goto end;
    ok = ASN1_item_sign_ctx(it, alg1, alg2, sig, (void *)data, ctx) > 0;
 end:
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* RFC 8692 signature algorithms (RFC 9481 3.1, 3.2), unknown to OpenSSL
 * 3.0's object table: the DER content octets of their OIDs. */
static const unsigned char cmp_oid_pss_shake128[] =     /* 1.3.6.1.5.5.7.6.30 */
    { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x1e };
static const unsigned char cmp_oid_pss_shake256[] =     /* ... .31 */
    { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x1f };
static const unsigned char cmp_oid_ecdsa_shake128[] =   /* ... .32 */
    { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x20 };
static const unsigned char cmp_oid_ecdsa_shake256[] =   /* ... .33 */
    { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x21 };

static int cmp_oid_is(const ASN1_OBJECT *obj, const unsigned char *der,
                      size_t len)
{
    return obj != NULL && (size_t)OBJ_length(obj) == len
        && memcmp(OBJ_get0_data(obj), der, len) == 0;
}

/* For ECDSA with SHAKE128/SHAKE256: the XOF name and output length (32 or
 * 64 octets, RFC 8692 4), else NULL. */
static const char *cmp_ecdsa_shake(const X509_ALGOR *alg, size_t *outlen)
{
    if (cmp_oid_is(alg->algorithm, cmp_oid_ecdsa_shake128,
                   sizeof(cmp_oid_ecdsa_shake128))) {
        *outlen = 32;
        return "SHAKE128";
    }
    if (cmp_oid_is(alg->algorithm, cmp_oid_ecdsa_shake256,
                   sizeof(cmp_oid_ecdsa_shake256))) {
        *outlen = 64;
        return "SHAKE256";
    }
    return NULL;
}

/* 1 if |a| is one of SHA-256/384/512 (parameters absent or NULL). */
static int cmp_pss_hash_ok(const X509_ALGOR *a, int *nid)
{
    *nid = a != NULL ? OBJ_obj2nid(a->algorithm) : NID_undef;
    if (*nid != NID_sha256 && *nid != NID_sha384 && *nid != NID_sha512)
        return 0;
    return a->parameter == NULL || a->parameter->type == V_ASN1_NULL;
}

/* RSASSA-PSS parameters as RFC 9481 3.1 allows them: present, hash
 * SHA-256/384/512 (the default is SHA-1), MGF1 with that same hash,
 * trailerField 1. The salt length is checked by the verification. */
static enum cmp_reason cmp_check_pss(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj;
    const void *pval = NULL;
    int ptype, nid, mgf_nid;
    RSA_PSS_PARAMS *pss;
    X509_ALGOR *mgf_md = NULL;
    int64_t trailer;
    enum cmp_reason r = CMP_R_BAD_ALG;

    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE)
        return CMP_R_BAD_ALG;
    pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS),
                                    alg->parameter);
    if (pss == NULL || !cmp_pss_hash_ok(pss->hashAlgorithm, &nid))
        goto end;
    if (pss->maskGenAlgorithm == NULL  /* default MGF1 with SHA-1 */
        || OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1
        || pss->maskGenAlgorithm->parameter == NULL
        || pss->maskGenAlgorithm->parameter->type != V_ASN1_SEQUENCE
        || (mgf_md = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
                                   pss->maskGenAlgorithm->parameter)) == NULL
        || !cmp_pss_hash_ok(mgf_md, &mgf_nid) || mgf_nid != nid)
        goto end;
    if (pss->trailerField != NULL
        && (!ASN1_INTEGER_get_int64(&trailer, pss->trailerField) || trailer != 1))
        goto end;
    r = CMP_R_OK;
 end:
    X509_ALGOR_free(mgf_md);
    RSA_PSS_PARAMS_free(pss);
    ERR_clear_error();
    return r;
}

enum cmp_reason cmp_protect_check_sig_alg(const X509_ALGOR *alg)
{
    size_t n;

    if (alg == NULL)
        return CMP_R_UNPROTECTED;
    switch (OBJ_obj2nid(alg->algorithm)) {
    case NID_sha224WithRSAEncryption:
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
    case NID_ecdsa_with_SHA224:
    case NID_ecdsa_with_SHA256:
    case NID_ecdsa_with_SHA384:
    case NID_ecdsa_with_SHA512:
    case NID_ED25519:
    case NID_ED448:
        return CMP_R_OK;
    case NID_rsassaPss:
        return cmp_check_pss(alg);
    default:
        /* ECDSA with SHAKE: parameters absent (RFC 8692 4). RSASSA-PSS
         * with SHAKE needs SHAKE as mask generation function, which
         * libcrypto 3.0 does not offer: refused like any unknown OID. */
        if (cmp_ecdsa_shake(alg, &n) != NULL)
            return alg->parameter == NULL ? CMP_R_OK : CMP_R_BAD_ALG;
        return CMP_R_BAD_ALG;
    }
}

int cmp_protect_sig_alg_key_type(const X509_ALGOR *alg)
{
    int md_nid, pkey_nid;
    size_t n;

    if (alg == NULL)
        return NID_undef;
    if (cmp_ecdsa_shake(alg, &n) != NULL)
        return NID_X9_62_id_ecPublicKey;
    if (cmp_oid_is(alg->algorithm, cmp_oid_pss_shake128,
                   sizeof(cmp_oid_pss_shake128))
        || cmp_oid_is(alg->algorithm, cmp_oid_pss_shake256,
                      sizeof(cmp_oid_pss_shake256)))
        return NID_rsassaPss;
    if (!OBJ_find_sigid_algs(OBJ_obj2nid(alg->algorithm), &md_nid, &pkey_nid))
        return NID_undef;
    return pkey_nid;
}

/* ECDSA over the SHAKE digest (|mdlen| octets) of |tbs|. */
static int cmp_verify_ecdsa_shake(const char *xof, size_t mdlen,
                                  const ASN1_BIT_STRING *sig,
                                  const unsigned char *tbs, size_t len,
                                  EVP_PKEY *pkey)
{
    unsigned char md[64];
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD *md_alg = NULL;
    int ok = 0;

    if (!EVP_PKEY_is_a(pkey, "EC") || mdlen > sizeof(md)
        || ((sig->flags & ASN1_STRING_FLAG_BITS_LEFT) != 0
            && (sig->flags & 0x07) != 0)
        || (md_alg = EVP_MD_fetch(NULL, xof, NULL)) == NULL
        || (mctx = EVP_MD_CTX_new()) == NULL
        || !EVP_DigestInit_ex(mctx, md_alg, NULL)
        || !EVP_DigestUpdate(mctx, tbs, len)
        || !EVP_DigestFinalXOF(mctx, md, mdlen)
        || (pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL
        || EVP_PKEY_verify_init(pctx) <= 0)
        goto end;
    ok = EVP_PKEY_verify(pctx, ASN1_STRING_get0_data(sig),
                         (size_t)ASN1_STRING_length(sig), md, mdlen) == 1;
 end:
    EVP_MD_CTX_free(mctx);
    EVP_MD_free(md_alg);
    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();
    return ok;
}

int cmp_protect_verify_shake_der(const X509_ALGOR *alg,
                                 const ASN1_BIT_STRING *sig,
                                 const unsigned char *tbs, size_t len,
                                 EVP_PKEY *pkey)
{
    const char *xof;
    size_t mdlen = 0;

    if ((xof = cmp_ecdsa_shake(alg, &mdlen)) == NULL)
        return -1;
    return cmp_verify_ecdsa_shake(xof, mdlen, sig, tbs, len, pkey);
}

int cmp_protect_verify_item(const ASN1_ITEM *it, const X509_ALGOR *alg,
                            const ASN1_BIT_STRING *sig, const void *data,
                            EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    size_t mdlen = 0;
    int len, ok;

    if (cmp_ecdsa_shake(alg, &mdlen) != NULL) {
        if ((len = ASN1_item_i2d((const ASN1_VALUE *)data, &der, it)) <= 0)
            return 0;
        ok = cmp_protect_verify_shake_der(alg, sig, der, (size_t)len, pkey);
        OPENSSL_free(der);
        return ok == 1;
    }
    if (ASN1_item_verify_ex(it, (X509_ALGOR *)alg, (ASN1_BIT_STRING *)sig,
                            (void *)data, NULL, pkey, NULL, NULL) <= 0) {
        ERR_clear_error();
        return 0;
    }
    return 1;
}

int cmp_protect_is_mac(const CMP_MSG *msg)
{
    int nid;

    if (msg->header->protectionAlg == NULL)
        return 0;
    nid = OBJ_obj2nid(msg->header->protectionAlg->algorithm);
    return nid == NID_id_PasswordBasedMAC || nid == NID_pbmac1;
}

/* The sender's directoryName if it has at least one RDN, else NULL. */
static const X509_NAME *cmp_hdr_sender_dn(const CMP_HDR *hdr)
{
    if (hdr->sender != NULL && hdr->sender->type == GEN_DIRNAME
        && X509_NAME_entry_count(hdr->sender->d.directoryName) > 0)
        return hdr->sender->d.directoryName;
    return NULL;
}

enum cmp_reason cmp_protect_find_signer(const CMP_MSG *msg, X509 **cert)
{
    const CMP_HDR *hdr = msg->header;
    const ASN1_OCTET_STRING *kid = hdr->senderKID;
    const X509_NAME *sender = NULL;
    X509 *found = NULL;
    int i, kid_seen_other = 0;

    *cert = NULL;
    if (hdr->sender != NULL && hdr->sender->type == GEN_DIRNAME
        && X509_NAME_entry_count(hdr->sender->d.directoryName) > 0)
        sender = hdr->sender->d.directoryName;
    /* First pass: senderKID against subjectKeyIdentifier; second pass, for
     * certificates without one: the sender name. */
    for (i = 0; kid != NULL && i < sk_X509_num(msg->extraCerts) && found == NULL;
         i++) {
        X509 *c = sk_X509_value(msg->extraCerts, i);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(c);

        if (ski == NULL)
            continue;
        if (ASN1_OCTET_STRING_cmp(kid, ski) == 0)
            found = c;
        else
            kid_seen_other = 1;
    }
    for (i = 0; sender != NULL && i < sk_X509_num(msg->extraCerts) && found == NULL;
         i++) {
        X509 *c = sk_X509_value(msg->extraCerts, i);

        if (kid != NULL && X509_get0_subject_key_id(c) != NULL)
            continue; /* has an SKI that did not match senderKID */
        if (X509_NAME_cmp(sender, X509_get_subject_name(c)) == 0)
            found = c;
    }
    ERR_clear_error();
    if (found == NULL)
        return kid != NULL && kid_seen_other && sender != NULL
            ? CMP_R_SENDER_KID_MISMATCH : CMP_R_NO_SIGNER_CERT;
    if (sender != NULL && X509_NAME_cmp(sender, X509_get_subject_name(found)) != 0)
        return CMP_R_SENDER_MISMATCH;
    *cert = found;
    return CMP_R_OK;
}

enum cmp_reason cmp_protect_find_request_signer(const CMP_MSG *msg,
                                                X509 **cert)
{
    const CMP_HDR *hdr = msg->header;
    const ASN1_OCTET_STRING *kid = hdr->senderKID;
    const X509_NAME *sender = cmp_hdr_sender_dn(hdr);
    X509 *found = NULL;
    int i, named = 0;

    *cert = NULL;
    if (kid == NULL)
        return CMP_R_NO_SENDER_KID;
    for (i = 0; i < sk_X509_num(msg->extraCerts) && found == NULL; i++) {
        X509 *c = sk_X509_value(msg->extraCerts, i);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(c);

        if (ski != NULL && ASN1_OCTET_STRING_cmp(kid, ski) == 0)
            found = c;
        else if (sender != NULL
                 && X509_NAME_cmp(sender, X509_get_subject_name(c)) == 0)
            named = 1;
    }
    ERR_clear_error();
    if (found == NULL)  /* the sender's certificate is there, its SKI is not */
        return named ? CMP_R_SENDER_KID_MISMATCH : CMP_R_NO_SIGNER_CERT;
    if (sender == NULL || X509_NAME_cmp(sender, X509_get_subject_name(found)) != 0) {
        ERR_clear_error();
        return CMP_R_SENDER_MISMATCH;
    }
    *cert = found;
    return CMP_R_OK;
}

enum cmp_reason cmp_protect_verify_sig(const CMP_MSG *msg, X509 *cert)
{
    CMP_PROTPART pp;
    EVP_PKEY *pkey;
    enum cmp_reason r;

    if (msg->protection == NULL || msg->header->protectionAlg == NULL)
        return CMP_R_UNPROTECTED;
    if ((r = cmp_protect_check_sig_alg(msg->header->protectionAlg)) != CMP_R_OK)
        return r;
    if ((pkey = X509_get0_pubkey(cert)) == NULL) {
        ERR_clear_error();
        return CMP_R_BAD_SIGNATURE;
    }
    pp.header = msg->header;
    pp.body = msg->body;
    if (!cmp_protect_verify_item(ASN1_ITEM_rptr(CMP_PROTPART),
                                 msg->header->protectionAlg, msg->protection,
                                 &pp, pkey))
        return CMP_R_BAD_SIGNATURE;
    return CMP_R_OK;
}

/* DER(ProtectedPart) of |msg| into a new buffer; returns its length or -1. */
static int cmp_protpart_der(const CMP_MSG *msg, unsigned char **der)
{
    CMP_PROTPART pp;

    pp.header = msg->header;
    pp.body = msg->body;
    *der = NULL;
    return ASN1_item_i2d((const ASN1_VALUE *)&pp, der,
                         ASN1_ITEM_rptr(CMP_PROTPART));
}

static void cmp_mac_limits_fill(const struct cmp_mac_limits *in,
                                struct cmp_mac_limits *out)
{
    if (in == NULL)
        memset(out, 0, sizeof(*out));
    else if (in != out)
        *out = *in;
    if (out->min_iterations == 0)
        out->min_iterations = 100;
    if (out->max_iterations == 0)
        out->max_iterations = 100000;
    if (out->min_salt_len == 0)
        out->min_salt_len = 8;
}

static int cmp_iterations_ok(const ASN1_INTEGER *ai,
                             const struct cmp_mac_limits *lim, long *out)
{
    int64_t v;

    if (ai == NULL || !ASN1_INTEGER_get_int64(&v, ai))
        return 0;
    if (v < lim->min_iterations || v > lim->max_iterations)
        return 0;
    *out = (long)v;
    return 1;
}

/* Maps a PBM owf OID to a digest name, NULL if not allowed. */
static const char *cmp_pbm_owf_name(const X509_ALGOR *alg)
{
    switch (OBJ_obj2nid(alg->algorithm)) {
    case NID_sha1: return "SHA1";
    case NID_sha256: return "SHA256";
    case NID_sha384: return "SHA384";
    case NID_sha512: return "SHA512";
    default: return NULL;
    }
}

/* Maps an HMAC OID to its digest name, NULL if not allowed. */
static const char *cmp_hmac_md_name(const X509_ALGOR *alg)
{
    switch (OBJ_obj2nid(alg->algorithm)) {
    case NID_hmac_sha1: case NID_hmacWithSHA1: return "SHA1";
    case NID_hmacWithSHA256: return "SHA256";
    case NID_hmacWithSHA384: return "SHA384";
    case NID_hmacWithSHA512: return "SHA512";
    default: return NULL;
    }
}

/* PasswordBasedMac: key = owf^iterations(secret || salt), HMAC(key, data).
 * Parameters are checked here, the computation is OpenSSL's. */
static enum cmp_reason cmp_pbm_compute(const X509_ALGOR *alg,
                                       const unsigned char *secret,
                                       size_t secret_len,
                                       const unsigned char *data, size_t len,
                                       const struct cmp_mac_limits *lim,
                                       unsigned char **mac, size_t *mac_len)
{
    const ASN1_STRING *pstr;
    const unsigned char *p;
    CMP_PBMPARAM *param = NULL;
    OSSL_CRMF_PBMPARAMETER *pbmp = NULL;
    enum cmp_reason r = CMP_R_BAD_MAC_PARAMS;
    long iter;
    int slen;

    if (alg->parameter == NULL || alg->parameter->type != V_ASN1_SEQUENCE)
        goto end;
    pstr = alg->parameter->value.sequence;
    p = ASN1_STRING_get0_data(pstr);
    if ((param = d2i_CMP_PBMPARAM(NULL, &p, ASN1_STRING_length(pstr))) == NULL)
        goto end;
    slen = ASN1_STRING_length(param->salt);
    if (slen < lim->min_salt_len || slen > CMP_SALT_MAX
        || !cmp_iterations_ok(param->iterationCount, lim, &iter)
        || cmp_pbm_owf_name(param->owf) == NULL
        || cmp_hmac_md_name(param->mac) == NULL)
        goto end;
    p = ASN1_STRING_get0_data(pstr);
    if ((pbmp = d2i_OSSL_CRMF_PBMPARAMETER(NULL, &p, ASN1_STRING_length(pstr))) == NULL)
        goto end;
    if (!OSSL_CRMF_pbm_new(NULL, NULL, pbmp, data, len, secret, secret_len,
                           mac, mac_len)) {
        r = CMP_R_SYSTEM_FAILURE;
        goto end;
    }
    r = CMP_R_OK;
 end:
    CMP_PBMPARAM_free(param);
    OSSL_CRMF_PBMPARAMETER_free(pbmp);
    ERR_clear_error();
    return r;
}

/* PBMAC1 (RFC 9481 6.1.1): PBKDF2 key, then HMAC over |data|. */
static enum cmp_reason cmp_pbmac1_compute(const X509_ALGOR *alg,
                                          const unsigned char *secret,
                                          size_t secret_len,
                                          const unsigned char *data, size_t len,
                                          const struct cmp_mac_limits *lim,
                                          unsigned char **mac, size_t *mac_len)
{
    CMP_PBMAC1PARAM *param = NULL;
    PBKDF2PARAM *kdf = NULL;
    const char *prf_md, *mac_md;
    unsigned char key[64];
    int64_t keylen;
    long iter;
    int slen;
    enum cmp_reason r = CMP_R_BAD_MAC_PARAMS;

    *mac = NULL;
    if ((param = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(CMP_PBMAC1PARAM),
                                           alg->parameter)) == NULL
        || OBJ_obj2nid(param->keyDerivationFunc->algorithm) != NID_id_pbkdf2
        || (kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                            param->keyDerivationFunc->parameter)) == NULL)
        goto end;
    if (kdf->salt == NULL || kdf->salt->type != V_ASN1_OCTET_STRING)
        goto end;
    slen = ASN1_STRING_length(kdf->salt->value.octet_string);
    if (slen < lim->min_salt_len || slen > CMP_SALT_MAX
        || !cmp_iterations_ok(kdf->iter, lim, &iter))
        goto end;
    if (kdf->keylength == NULL || !ASN1_INTEGER_get_int64(&keylen, kdf->keylength)
        || keylen < 16 || keylen > (int64_t)sizeof(key))
        goto end;
    prf_md = kdf->prf == NULL ? "SHA1" : cmp_hmac_md_name(kdf->prf);
    mac_md = cmp_hmac_md_name(param->messageAuthScheme);
    if (prf_md == NULL || mac_md == NULL || strcmp(prf_md, "SHA1") == 0)
        goto end;
    r = CMP_R_SYSTEM_FAILURE;
    if (!PKCS5_PBKDF2_HMAC((const char *)secret, (int)secret_len,
                           ASN1_STRING_get0_data(kdf->salt->value.octet_string),
                           slen, (int)iter, EVP_get_digestbyname(prf_md),
                           (int)keylen, key))
        goto end;
    if ((*mac = OPENSSL_malloc(EVP_MAX_MD_SIZE)) == NULL)
        goto end;
    if (EVP_Q_mac(NULL, "HMAC", NULL, mac_md, NULL, key, (size_t)keylen,
                  data, len, *mac, EVP_MAX_MD_SIZE, mac_len) == NULL) {
        OPENSSL_free(*mac);
        *mac = NULL;
        goto end;
    }
    r = CMP_R_OK;
 end:
    OPENSSL_cleanse(key, sizeof(key));
    CMP_PBMAC1PARAM_free(param);
    PBKDF2PARAM_free(kdf);
    ERR_clear_error();
    return r;
}

static enum cmp_reason cmp_mac_compute(const CMP_MSG *msg,
                                       const unsigned char *secret,
                                       size_t secret_len,
                                       const struct cmp_mac_limits *lim,
                                       unsigned char **mac, size_t *mac_len)
{
    const X509_ALGOR *alg = msg->header->protectionAlg;
    unsigned char *der = NULL;
    enum cmp_reason r;
    int len;

    if ((len = cmp_protpart_der(msg, &der)) <= 0)
        return CMP_R_SYSTEM_FAILURE;
    if (OBJ_obj2nid(alg->algorithm) == NID_id_PasswordBasedMAC)
        r = cmp_pbm_compute(alg, secret, secret_len, der, (size_t)len, lim,
                            mac, mac_len);
    else
        r = cmp_pbmac1_compute(alg, secret, secret_len, der, (size_t)len, lim,
                               mac, mac_len);
    OPENSSL_free(der);
    return r;
}

int cmp_protect_mac_iterations(const CMP_MSG *msg, int64_t *iterations)
{
    const X509_ALGOR *alg = msg->header->protectionAlg;
    const unsigned char *p;
    CMP_PBMPARAM *pbm = NULL;
    CMP_PBMAC1PARAM *p1 = NULL;
    PBKDF2PARAM *kdf = NULL;
    int ok = 0;

    *iterations = 0;
    if (alg == NULL || alg->parameter == NULL
        || alg->parameter->type != V_ASN1_SEQUENCE)
        return 0;
    if (OBJ_obj2nid(alg->algorithm) == NID_id_PasswordBasedMAC) {
        p = ASN1_STRING_get0_data(alg->parameter->value.sequence);
        if ((pbm = d2i_CMP_PBMPARAM(NULL, &p, ASN1_STRING_length(
                 alg->parameter->value.sequence))) != NULL)
            ok = ASN1_INTEGER_get_int64(iterations, pbm->iterationCount);
    } else if (OBJ_obj2nid(alg->algorithm) == NID_pbmac1) {
        if ((p1 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(CMP_PBMAC1PARAM),
                                            alg->parameter)) != NULL
            && OBJ_obj2nid(p1->keyDerivationFunc->algorithm) == NID_id_pbkdf2
            && (kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                         p1->keyDerivationFunc->parameter)) != NULL)
            ok = ASN1_INTEGER_get_int64(iterations, kdf->iter);
    }
    CMP_PBMPARAM_free(pbm);
    CMP_PBMAC1PARAM_free(p1);
    PBKDF2PARAM_free(kdf);
    ERR_clear_error();
    return ok;
}

enum cmp_reason cmp_protect_verify_mac(const CMP_MSG *msg,
                                       const unsigned char *secret,
                                       size_t secret_len,
                                       const struct cmp_mac_limits *limits)
{
    unsigned char *der = NULL;
    enum cmp_reason r;
    int len;

    if (msg->protection == NULL || msg->header->protectionAlg == NULL)
        return CMP_R_UNPROTECTED;
    if (!cmp_protect_is_mac(msg))
        return CMP_R_BAD_ALG;
    if ((len = cmp_protpart_der(msg, &der)) <= 0)
        return CMP_R_SYSTEM_FAILURE;
    r = cmp_protect_verify_mac_data(msg->header->protectionAlg,
                                    msg->protection, secret, secret_len, der,
                                    (size_t)len, limits);
    OPENSSL_free(der);
    return r;
}

enum cmp_reason cmp_protect_verify_mac_data(const X509_ALGOR *alg,
                                            const ASN1_BIT_STRING *value,
                                            const unsigned char *secret,
                                            size_t secret_len,
                                            const unsigned char *data,
                                            size_t len,
                                            const struct cmp_mac_limits *limits)
{
    struct cmp_mac_limits lim;
    unsigned char *mac = NULL;
    size_t mac_len = 0;
    enum cmp_reason r;

    if (alg == NULL || value == NULL)
        return CMP_R_BAD_MAC_PARAMS;
    cmp_mac_limits_fill(limits, &lim);
    if (OBJ_obj2nid(alg->algorithm) == NID_id_PasswordBasedMAC)
        r = cmp_pbm_compute(alg, secret, secret_len, data, len, &lim, &mac,
                            &mac_len);
    else if (OBJ_obj2nid(alg->algorithm) == NID_pbmac1)
        r = cmp_pbmac1_compute(alg, secret, secret_len, data, len, &lim, &mac,
                               &mac_len);
    else
        return CMP_R_BAD_ALG;
    if (r != CMP_R_OK)
        return r;
    if ((size_t)ASN1_STRING_length(value) != mac_len
        || (value->flags & 0x07) != 0
        || CRYPTO_memcmp(ASN1_STRING_get0_data(value), mac, mac_len) != 0)
        r = CMP_R_BAD_MAC;
    OPENSSL_clear_free(mac, mac_len);
    return r;
}

/* Stores |mac| as the protection bit string of |msg|. */
static int cmp_set_protection(CMP_MSG *msg, unsigned char *mac, size_t len)
{
    ASN1_BIT_STRING_free(msg->protection);
    if ((msg->protection = ASN1_BIT_STRING_new()) == NULL)
        return 0;
    ASN1_STRING_set0(msg->protection, mac, (int)len);
    msg->protection->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    msg->protection->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    return 1;
}

int cmp_protect_mac_pbm(CMP_MSG *msg, const unsigned char *secret,
                        size_t secret_len, const char *owf, const char *mac,
                        long iterations)
{
    OSSL_CRMF_PBMPARAMETER *pbmp = NULL;
    ASN1_STRING *pstr = NULL;
    unsigned char *out = NULL;
    size_t out_len = 0;
    struct cmp_mac_limits lim;
    int mac_nid = strcmp(mac, "SHA1") == 0 ? NID_hmac_sha1
        : strcmp(mac, "SHA256") == 0 ? NID_hmacWithSHA256
        : strcmp(mac, "SHA384") == 0 ? NID_hmacWithSHA384
        : strcmp(mac, "SHA512") == 0 ? NID_hmacWithSHA512 : NID_undef;
    int ok = 0;

    if (mac_nid == NID_undef || OBJ_sn2nid(owf) == NID_undef)
        return 0;

    if ((pbmp = OSSL_CRMF_pbmp_new(NULL, CMP_SALT_LEN, OBJ_sn2nid(owf),
                                   (int)iterations, mac_nid)) == NULL)
        goto end;
    if ((pstr = ASN1_item_pack(pbmp, ASN1_ITEM_rptr(OSSL_CRMF_PBMPARAMETER),
                               NULL)) == NULL)
        goto end;
    X509_ALGOR_free(msg->header->protectionAlg);
    if ((msg->header->protectionAlg = X509_ALGOR_new()) == NULL)
        goto end;
    if (!X509_ALGOR_set0(msg->header->protectionAlg,
                         OBJ_nid2obj(NID_id_PasswordBasedMAC),
                         V_ASN1_SEQUENCE, pstr))
        goto end;
    pstr = NULL;
    memset(&lim, 0, sizeof(lim));
    lim.max_iterations = iterations > 100000 ? iterations : 100000;
    cmp_mac_limits_fill(&lim, &lim);
    if (cmp_mac_compute(msg, secret, secret_len, &lim, &out, &out_len) != CMP_R_OK)
        goto end;
    ok = cmp_set_protection(msg, out, out_len);
    if (ok)
        out = NULL;
 end:
    OPENSSL_free(out);
    ASN1_STRING_free(pstr);
    OSSL_CRMF_PBMPARAMETER_free(pbmp);
    return ok;
}

int cmp_protect_mac_pbmac1(CMP_MSG *msg, const unsigned char *secret,
                           size_t secret_len, long iterations)
{
    CMP_PBMAC1PARAM *param = NULL;
    PBKDF2PARAM *kdf = NULL;
    ASN1_STRING *pstr = NULL;
    unsigned char salt[CMP_SALT_LEN];
    unsigned char *out = NULL;
    size_t out_len = 0;
    struct cmp_mac_limits lim;
    int ok = 0;

    if (RAND_bytes(salt, sizeof(salt)) <= 0
        || (param = CMP_PBMAC1PARAM_new()) == NULL
        || (kdf = PBKDF2PARAM_new()) == NULL
        || (kdf->salt->value.octet_string = ASN1_OCTET_STRING_new()) == NULL
        || !ASN1_OCTET_STRING_set(kdf->salt->value.octet_string, salt, sizeof(salt))
        || !ASN1_INTEGER_set(kdf->iter, iterations)
        || (kdf->keylength = ASN1_INTEGER_new()) == NULL
        || !ASN1_INTEGER_set(kdf->keylength, 32)
        || (kdf->prf = X509_ALGOR_new()) == NULL
        || !X509_ALGOR_set0(kdf->prf, OBJ_nid2obj(NID_hmacWithSHA256), V_ASN1_NULL, NULL)
        || !X509_ALGOR_set0(param->messageAuthScheme,
                            OBJ_nid2obj(NID_hmacWithSHA256), V_ASN1_NULL, NULL))
        goto end;
    kdf->salt->type = V_ASN1_OCTET_STRING;
    if ((pstr = ASN1_item_pack(kdf, ASN1_ITEM_rptr(PBKDF2PARAM), NULL)) == NULL
        || !X509_ALGOR_set0(param->keyDerivationFunc, OBJ_nid2obj(NID_id_pbkdf2),
                            V_ASN1_SEQUENCE, pstr))
        goto end;
    pstr = NULL;
    if ((pstr = ASN1_item_pack(param, ASN1_ITEM_rptr(CMP_PBMAC1PARAM), NULL)) == NULL)
        goto end;
    X509_ALGOR_free(msg->header->protectionAlg);
    if ((msg->header->protectionAlg = X509_ALGOR_new()) == NULL
        || !X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_pbmac1),
                            V_ASN1_SEQUENCE, pstr))
        goto end;
    pstr = NULL;
    memset(&lim, 0, sizeof(lim));
    lim.max_iterations = iterations > 100000 ? iterations : 100000;
    cmp_mac_limits_fill(&lim, &lim);
    if (cmp_mac_compute(msg, secret, secret_len, &lim, &out, &out_len) != CMP_R_OK)
        goto end;
    ok = cmp_set_protection(msg, out, out_len);
    if (ok)
        out = NULL;
 end:
    OPENSSL_free(out);
    ASN1_STRING_free(pstr);
    CMP_PBMAC1PARAM_free(param);
    PBKDF2PARAM_free(kdf);
    return ok;
}

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature } read
 * without decoding the public key (which costs OpenSSL 3.0 ~100 us). */
typedef struct cmp_cert_light_st {
    ASN1_TYPE *tbs;
    X509_ALGOR *sigAlg;
    ASN1_BIT_STRING *sig;
} CMP_CERT_LIGHT;

ASN1_SEQUENCE(CMP_CERT_LIGHT) = {
    ASN1_SIMPLE(CMP_CERT_LIGHT, tbs, ASN1_ANY),
    ASN1_SIMPLE(CMP_CERT_LIGHT, sigAlg, X509_ALGOR),
    ASN1_SIMPLE(CMP_CERT_LIGHT, sig, ASN1_BIT_STRING)
} ASN1_SEQUENCE_END(CMP_CERT_LIGHT)

/* The certHash digest for signature algorithm |alg|: *md set, *xof_len 0;
 * or for Ed448 SHAKE256 with *xof_len 64. Returns 1 or 0. */
static int cmp_certhash_md(const X509_ALGOR *alg, EVP_MD **md, size_t *xof_len)
{
    int md_nid = NID_undef, pkey_nid = NID_undef;

    *md = NULL;
    *xof_len = 0;
    if (!OBJ_find_sigid_algs(OBJ_obj2nid(alg->algorithm), &md_nid, &pkey_nid))
        return 0;
    if (pkey_nid == NID_ED25519) {
        md_nid = NID_sha512;
    } else if (pkey_nid == NID_ED448) {
        /* RFC 9481 2.3: SHAKE256 with 512-bit output for Ed448 */
        *xof_len = 64;
        *md = EVP_MD_fetch(NULL, "SHAKE256", NULL);
        return *md != NULL;
    } else if (md_nid == NID_undef && pkey_nid == NID_rsassaPss) {
        /* RSASSA-PSS: the hash inside the parameters (absent = SHA-1) */
        RSA_PSS_PARAMS *pss = ASN1_TYPE_unpack_sequence(
            ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);

        md_nid = pss == NULL || pss->hashAlgorithm == NULL ? NID_sha1
            : OBJ_obj2nid(pss->hashAlgorithm->algorithm);
        RSA_PSS_PARAMS_free(pss);
    }
    if (md_nid == NID_undef)
        return 0;
    *md = EVP_MD_fetch(NULL, OBJ_nid2sn(md_nid), NULL);
    return *md != NULL;
}

int cmp_certhash_der(const unsigned char *der, size_t len, unsigned char *out,
                     unsigned int *out_len)
{
    const unsigned char *p = der;
    CMP_CERT_LIGHT *c = NULL;
    EVP_MD_CTX *ctx = NULL;
    EVP_MD *md = NULL;
    size_t xof = 0;
    int ok = 0;

    *out_len = 0;
    if (len > LONG_MAX
        || (c = (CMP_CERT_LIGHT *)ASN1_item_d2i(NULL, &p, (long)len,
                                    ASN1_ITEM_rptr(CMP_CERT_LIGHT))) == NULL
        || (size_t)(p - der) != len
        || !cmp_certhash_md(c->sigAlg, &md, &xof)
        || (ctx = EVP_MD_CTX_new()) == NULL
        || !EVP_DigestInit_ex(ctx, md, NULL)
        || !EVP_DigestUpdate(ctx, der, len))
        goto end;
    if (xof > 0) {
        ok = EVP_DigestFinalXOF(ctx, out, xof);
        *out_len = ok ? (unsigned int)xof : 0;
    } else {
        ok = EVP_DigestFinal_ex(ctx, out, out_len);
    }
 end:
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(CMP_CERT_LIGHT));
    ERR_clear_error();
    return ok;
}

int cmp_certhash(const X509 *cert, unsigned char *out, unsigned int *out_len)
{
    unsigned char *der = NULL;
    int len, ok;

    *out_len = 0;
    if ((len = i2d_X509(cert, &der)) <= 0)
        return 0;
    ok = cmp_certhash_der(der, (size_t)len, out, out_len);
    OPENSSL_free(der);
    return ok;
}

/* Compares |hash| with the certHash |md| (|mdlen| octets) in constant
 * time, allowing OpenSSL 3.0's 32-octet SHAKE256 for Ed448. */
static int cmp_certhash_equal(const unsigned char *md, unsigned int mdlen,
                              int ed448, const unsigned char *hash, size_t len)
{
    /* OpenSSL 3.0 clients send 32 octets of SHAKE256 for Ed448 where RFC
     * 9481 says 64; both are the same XOF output, so accept the prefix. */
    if (ed448 && len == 32 && mdlen == 64)
        mdlen = 32;
    return mdlen == len && CRYPTO_memcmp(md, hash, len) == 0;
}

/* Returns 1 if the certificate |der| is signed with Ed448. */
static int cmp_der_is_ed448(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    CMP_CERT_LIGHT *c = (CMP_CERT_LIGHT *)ASN1_item_d2i(NULL, &p, (long)len,
                                             ASN1_ITEM_rptr(CMP_CERT_LIGHT));
    int r = c != NULL && OBJ_obj2nid(c->sigAlg->algorithm) == NID_ED448;

    ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(CMP_CERT_LIGHT));
    ERR_clear_error();
    return r;
}

int cmp_certhash_matches_der(const unsigned char *der, size_t der_len,
                             const unsigned char *hash, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;

    if (!cmp_certhash_der(der, der_len, md, &mdlen))
        return 0;
    /* only Ed448 gives 64 octets from an XOF; SHA-512 also gives 64, but a
     * 32-octet prefix of it is never accepted: check the algorithm */
    return cmp_certhash_equal(md, mdlen, mdlen == 64 && len == 32
                              && cmp_der_is_ed448(der, der_len), hash, len);
}

int cmp_certhash_matches(const X509 *cert, const unsigned char *hash,
                         size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;

    if (!cmp_certhash(cert, md, &mdlen))
        return 0;
    return cmp_certhash_equal(md, mdlen,
                              X509_get_signature_nid(cert) == NID_ED448,
                              hash, len);
}
