/*
 * CRMF requests in cmpca's own types (see cmp_crmf.h): POP verification
 * with OpenSSL's ASN1_item_verify over DER(CertRequest), the oldCertID
 * control, and DER round trips to OpenSSL's CRMF types.
 */
#include "cmp/cmp_crmf.h"

#include "cmp/cmp_protect.h"

#include <openssl/err.h>
#include <openssl/objects.h>

enum cmp_reason cmp_crmf_verify_popo(const CMP_CERTREQMSG *msg, EVP_PKEY *pkey)
{
    const CMP_POPOSIGNINGKEY *sk;

    if (msg->popo == NULL || msg->popo->type != 1)
        return CMP_R_BAD_POP; /* none, raVerified, key encipherment/agreement */
    sk = msg->popo->value.signature;
    /* poposkInput is only for requests without subject/key in the
     * template (RFC 4211 4.1); cmpca needs both, so it is refused */
    if (sk->poposkInput != NULL)
        return CMP_R_BAD_POP;
    if (cmp_protect_check_sig_alg(sk->algorithmIdentifier) != CMP_R_OK)
        return CMP_R_BAD_POP;
    if (ASN1_item_verify_ex(ASN1_ITEM_rptr(CMP_CERTREQUEST),
                            sk->algorithmIdentifier, sk->signature,
                            msg->certReq, NULL, pkey, NULL, NULL) <= 0) {
        ERR_clear_error();
        return CMP_R_BAD_POP;
    }
    return CMP_R_OK;
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
