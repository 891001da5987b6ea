/*
 * libFuzzer target: arbitrary bytes through cmp_msg_decode, the request
 * checks, both signer lookups and signature verification, and an error
 * response built (unprotected) and encoded for whatever decoded.
 */
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"

#include <openssl/err.h>
#include <stddef.h>
#include <stdint.h>

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
