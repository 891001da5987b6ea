/*
 * libFuzzer target: arbitrary bytes through cmp_msg_decode, the request
 * checks, both signer lookups and signature verification, certProfile and
 * the POP (POPOSigningKeyInput included) of a certificate request, and an
 * error response built (unprotected) and encoded for whatever decoded.
 */
#include "cmp/cmp_build.h"
#include "cmp/cmp_crmf.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_profile.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_spki.h"

#include <openssl/err.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* certProfile, and the POP of the first CertReqMsg of an ir/cr/kur. */
static void fuzz_certreq(const CMP_MSG *msg)
{
    const CMP_BODY *b = msg->body;
    struct cmp_popo_auth auth = { msg->header->sender, NULL, NULL };
    const CMP_CERTREQMSG *crm;
    EVP_PKEY *pkey = NULL;
    X509_PUBKEY *xpk = NULL;
    char *name = NULL;

    (void)cmp_hdr_get1_cert_profile(msg->header, &name);
    free(name);
    if ((b->type != CMP_BODY_IR && b->type != CMP_BODY_CR
         && b->type != CMP_BODY_KUR) || sk_CMP_CERTREQMSG_num(b->value.ir) < 1)
        return;
    crm = sk_CMP_CERTREQMSG_value(b->value.ir, 0);
    if (crm->certReq->certTemplate->publicKey != NULL
        && cmp_spki_get1_checked(crm->certReq->certTemplate->publicKey, &pkey,
                                 &xpk) == CMP_R_OK)
        (void)cmp_crmf_verify_popo_auth(crm, pkey, &auth);
    EVP_PKEY_free(pkey);
    X509_PUBKEY_free(xpk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CMP_MSG *msg = NULL, *rsp = NULL;
    X509 *signer = NULL;
    enum cmp_reason r;
    unsigned char *der = NULL;
    size_t len;

    r = cmp_msg_decode(data, size, NULL, &msg);
    if (r == CMP_R_OK) {
        r = cmp_hdr_check_request(msg->header, 1700000000, 300);
        (void)cmp_msg_check_request(msg, 1700000000, 300);
        (void)cmp_hdr_check_general_info(msg->header, 0);
        if (cmp_protect_find_request_signer(msg, &signer) == CMP_R_OK)
            (void)cmp_protect_verify_sig(msg, signer);
        signer = NULL;
        (void)cmp_hdr_get_pvno(msg->header);
        (void)cmp_hdr_has_implicit_confirm(msg->header);
        (void)cmp_protect_is_mac(msg);
        fuzz_certreq(msg);
        if (cmp_protect_find_signer(msg, &signer) == CMP_R_OK)
            (void)cmp_protect_verify_sig(msg, signer);
    }
    /* the error answer a server would build, also for undecodable input */
    rsp = cmp_rsp_new(msg, CMP_BODY_ERROR, signer, 1700000000);
    if (rsp != NULL && cmp_body_set_error(rsp, r, "fuzz")
        && cmp_msg_encode(rsp, &der, &len)) {
        CMP_MSG *back = NULL;

        if (cmp_msg_decode(der, len, NULL, &back) != CMP_R_OK)
            __builtin_trap(); /* our own output must decode */
        CMP_MSG_free(back);
    }
    OPENSSL_free(der);
    CMP_MSG_free(rsp);
    CMP_MSG_free(msg);
    ERR_clear_error();
    return 0;
}
