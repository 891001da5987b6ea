/*
 * CRMF requests in cmpca's own types (see cmp_crmf.h): POP verification
 * with OpenSSL's ASN1_item_verify over DER(CertRequest), the oldCertID
 * control, and DER round trips to OpenSSL's CRMF types.
 */
#include "cmp/cmp_crmf.h"

#include "cmp/cmp_protect.h"
#include "cmp/cmp_spki.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

int cmp_sig_alg_fits_key(const X509_ALGOR *alg, const EVP_PKEY *pkey)
{
    int key_nid = cmp_protect_sig_alg_key_type(alg);

    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:          /* PKCS#1 v1.5 and PSS */
        return key_nid == NID_rsaEncryption || key_nid == NID_rsassaPss;
    case EVP_PKEY_RSA_PSS:
        return key_nid == NID_rsassaPss;
    case EVP_PKEY_EC:
        return key_nid == NID_X9_62_id_ecPublicKey;
    case EVP_PKEY_ED25519:
        return key_nid == NID_ED25519;
    case EVP_PKEY_ED448:
        return key_nid == NID_ED448;
    default:
        return 0;
    }
}

/* Checks the authInfo and publicKey of POPOSigningKeyInput |in| (its two
 * elements as decoded: authInfo, publicKey) against |auth| and |pkey|. */
static enum cmp_reason cmp_poposk_input_check(const STACK_OF(ASN1_TYPE) *in,
                                              EVP_PKEY *pkey,
                                              const struct cmp_popo_auth *auth)
{
    const ASN1_TYPE *ai, *pk;
    const unsigned char *p, *spki;
    GENERAL_NAME *gn = NULL;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *mac = NULL;
    EVP_PKEY *key = NULL;
    enum cmp_reason r = CMP_R_BAD_POP;
    long len;
    int spki_len, tag, xclass, ai_len;

    if (auth == NULL || sk_ASN1_TYPE_num(in) != 2)
        return CMP_R_BAD_POP;
    ai = sk_ASN1_TYPE_value(in, 0);
    pk = sk_ASN1_TYPE_value(in, 1);
    /* publicKey: the key the template asks for */
    if (pk->type != V_ASN1_SEQUENCE)
        goto end;
    spki = ASN1_STRING_get0_data(pk->value.sequence);
    spki_len = ASN1_STRING_length(pk->value.sequence);
    p = spki;
    if ((key = d2i_PUBKEY(NULL, &p, spki_len)) == NULL
        || p != spki + spki_len || EVP_PKEY_eq(key, pkey) != 1)
        goto end;
    if (ai->type == V_ASN1_OTHER) {
        /* sender [0] GeneralName (explicit: GeneralName is a CHOICE) */
        p = ASN1_STRING_get0_data(ai->value.asn1_string);
        ai_len = ASN1_STRING_length(ai->value.asn1_string);
        if (auth->sender == NULL
            || ASN1_get_object(&p, &len, &tag, &xclass, ai_len)
               != V_ASN1_CONSTRUCTED
            || tag != 0 || xclass != V_ASN1_CONTEXT_SPECIFIC
            || (gn = d2i_GENERAL_NAME(NULL, &p, len)) == NULL
            || p != ASN1_STRING_get0_data(ai->value.asn1_string) + ai_len
            || GENERAL_NAME_cmp(gn, (GENERAL_NAME *)auth->sender) != 0)
            goto end;
    } else if (ai->type == V_ASN1_SEQUENCE) {
        /* publicKeyMAC PKMACValue ::= SEQUENCE { algId, value BIT STRING } */
        const unsigned char *end;

        p = ASN1_STRING_get0_data(ai->value.sequence);
        ai_len = ASN1_STRING_length(ai->value.sequence);
        end = p + ai_len;
        if (auth->pkmac == NULL
            || ASN1_get_object(&p, &len, &tag, &xclass, ai_len)
               != V_ASN1_CONSTRUCTED
            || p + len != end
            || (alg = d2i_X509_ALGOR(NULL, &p, end - p)) == NULL
            || (mac = d2i_ASN1_BIT_STRING(NULL, &p, end - p)) == NULL
            || p != end
            || auth->pkmac(auth->pkmac_arg, alg, mac, spki,
                           (size_t)spki_len) != 1)
            goto end;
    } else {
        goto end;
    }
    r = CMP_R_OK;
 end:
    GENERAL_NAME_free(gn);
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(mac);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return r;
}

enum cmp_reason cmp_crmf_verify_popo_auth(const CMP_CERTREQMSG *msg,
                                          EVP_PKEY *pkey,
                                          const struct cmp_popo_auth *auth)
{
    const CMP_POPOSIGNINGKEY *sk;
    const X509_NAME *subj;
    enum cmp_reason r;

    if (msg->popo == NULL || msg->popo->type != 1)
        return CMP_R_BAD_POP; /* none, raVerified, key encipherment/agreement */
    sk = msg->popo->value.signature;
    if (cmp_protect_check_sig_alg(sk->algorithmIdentifier) != CMP_R_OK)
        return CMP_R_BAD_POP_ALG;
    if (!cmp_sig_alg_fits_key(sk->algorithmIdentifier, pkey))
        return CMP_R_POP_ALG_KEY_MISMATCH;
    if (sk->poposkInput == NULL)
        return cmp_protect_verify_item(ASN1_ITEM_rptr(CMP_CERTREQUEST),
                                       sk->algorithmIdentifier, sk->signature,
                                       msg->certReq, pkey)
            ? CMP_R_OK : CMP_R_BAD_POP;
    /* RFC 4211 4.1: poposkInput only when the template has no subject;
     * the signature is over DER(POPOSigningKeyInput), i.e. the SEQUENCE
     * of its elements as received (the message decoded as DER) */
    subj = msg->certReq->certTemplate->subject;
    if (subj != NULL && X509_NAME_entry_count(subj) > 0)
        return CMP_R_BAD_POP;
    if ((r = cmp_poposk_input_check(sk->poposkInput, pkey, auth)) != CMP_R_OK)
        return r;
    if (!cmp_protect_verify_item(ASN1_ITEM_rptr(ASN1_SEQUENCE_ANY),
                                 sk->algorithmIdentifier, sk->signature,
                                 sk->poposkInput, pkey))
        return CMP_R_BAD_POP;
    return CMP_R_OK;
}

enum cmp_reason cmp_crmf_verify_popo(const CMP_CERTREQMSG *msg, EVP_PKEY *pkey)
{
    return cmp_crmf_verify_popo_auth(msg, pkey, NULL);
}

/* The DER of the CertificationRequestInfo of |csr| as received. */
static int cmp_p10_tbs(const X509_REQ *csr, unsigned char **der,
                       const unsigned char **tbs, size_t *tbs_len)
{
    const unsigned char *p;
    long olen;
    int len, tag, xclass;

    *der = NULL;
    if ((len = i2d_X509_REQ(csr, der)) <= 0)
        return 0;
    p = *der;
    if (ASN1_get_object(&p, &olen, &tag, &xclass, len) != V_ASN1_CONSTRUCTED)
        return 0;
    *tbs = p;
    if (ASN1_get_object(&p, &olen, &tag, &xclass, (long)(*der + len - p))
        != V_ASN1_CONSTRUCTED)
        return 0;
    *tbs_len = (size_t)(p + olen - *tbs);
    return 1;
}

enum cmp_reason cmp_p10_verify_pop(X509_REQ *csr, EVP_PKEY **pkey)
{
    const X509_ALGOR *alg = NULL, *kalg = NULL;
    const ASN1_BIT_STRING *sig = NULL;
    X509_PUBKEY *xpk;
    unsigned char *der = NULL;
    const unsigned char *tbs = NULL;
    size_t tbs_len = 0;
    enum cmp_reason r;
    int ok;

    *pkey = NULL;
    r = CMP_R_BAD_PUBLIC_KEY;
    if ((xpk = X509_REQ_get_X509_PUBKEY(csr)) == NULL
        || !X509_PUBKEY_get0_param(NULL, NULL, NULL, (X509_ALGOR **)&kalg, xpk))
        goto end;
    if ((r = cmp_spki_check_alg(kalg)) != CMP_R_OK)
        goto end;
    if ((*pkey = X509_REQ_get0_pubkey(csr)) == NULL) {
        r = CMP_R_BAD_PUBLIC_KEY;
        goto end;
    }
    X509_REQ_get0_signature(csr, &sig, &alg);
    if (cmp_protect_check_sig_alg(alg) != CMP_R_OK) {
        r = CMP_R_BAD_POP_ALG;
    } else if (!cmp_sig_alg_fits_key(alg, *pkey)) {
        r = CMP_R_POP_ALG_KEY_MISMATCH;
    } else if ((ok = cmp_p10_tbs(csr, &der, &tbs, &tbs_len)
                ? cmp_protect_verify_shake_der(alg, sig, tbs, tbs_len, *pkey)
                : 0) == 0) {
        r = CMP_R_BAD_POP;
    } else if (ok < 0 && X509_REQ_verify(csr, *pkey) <= 0) {
        r = CMP_R_BAD_POP;  /* not SHAKE: libcrypto's own verification */
    }
 end:
    if (r != CMP_R_OK)
        *pkey = NULL;
    OPENSSL_free(der);
    ERR_clear_error();
    return r;
}

OSSL_CRMF_CERTID *cmp_crmf_get1_old_cert_id(const CMP_CERTREQMSG *msg,
                                            int *malformed)
{
    const STACK_OF(CMP_ITAV) *ctrls = msg->certReq->controls;
    OSSL_CRMF_CERTID *id = NULL;
    int i;

    *malformed = 0;
    for (i = 0; i < sk_CMP_ITAV_num(ctrls); i++) {
        const CMP_ITAV *c = sk_CMP_ITAV_value(ctrls, i);
        const unsigned char *p;

        if (OBJ_obj2nid(c->infoType) != NID_id_regCtrl_oldCertID)
            continue;
        if (id != NULL || c->infoValue == NULL
            || c->infoValue->type != V_ASN1_SEQUENCE) {
            *malformed = 1;
            break;
        }
        p = ASN1_STRING_get0_data(c->infoValue->value.sequence);
        id = d2i_OSSL_CRMF_CERTID(NULL, &p,
                                  ASN1_STRING_length(c->infoValue->value.sequence));
        if (id == NULL) {
            *malformed = 1;
            break;
        }
    }
    if (*malformed) {
        OSSL_CRMF_CERTID_free(id);
        ERR_clear_error();
        return NULL;
    }
    return id;
}

OSSL_CRMF_MSGS *cmp_crmf_get1_ossl(const STACK_OF(CMP_CERTREQMSG) *reqs)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    OSSL_CRMF_MSGS *out = NULL;
    int len = ASN1_item_i2d((const ASN1_VALUE *)reqs, &der,
                            ASN1_ITEM_rptr(CMP_CERTREQMSGS));

    if (len > 0) {
        p = der;
        out = d2i_OSSL_CRMF_MSGS(NULL, &p, len);
    }
    OPENSSL_free(der);
    return out;
}

int cmp_crmf_set1_ossl(STACK_OF(CMP_CERTREQMSG) **reqs,
                       const OSSL_CRMF_MSGS *ossl)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    STACK_OF(CMP_CERTREQMSG) *out = NULL;
    int len = i2d_OSSL_CRMF_MSGS(ossl, &der);

    if (len > 0) {
        p = der;
        out = (STACK_OF(CMP_CERTREQMSG) *)ASN1_item_d2i(NULL, &p, len,
                                            ASN1_ITEM_rptr(CMP_CERTREQMSGS));
    }
    OPENSSL_free(der);
    if (out == NULL)
        return 0;
    sk_CMP_CERTREQMSG_pop_free(*reqs, CMP_CERTREQMSG_free);
    *reqs = out;
    return 1;
}
