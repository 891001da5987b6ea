/*
 * libFuzzer target: decode, then MAC verification (PasswordBasedMac or
 * PBMAC1) with a fixed secret, signature algorithm checks and certHash of
 * every extraCert and caPubs entry.
 */
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"

#include <openssl/err.h>
#include <stddef.h>
#include <stdint.h>

static void fuzz_certhash(const STACK_OF(X509) *sk)
{
    int i;

    for (i = 0; i < sk_X509_num(sk); i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        X509 *c = sk_X509_value(sk, i);

        if (cmp_certhash(c, md, &mdlen) && !cmp_certhash_matches(c, md, mdlen))
            __builtin_trap(); /* a hash must match itself */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char secret[] = "cmpca-test-secret";
    /* a low cap keeps each run fast; the default cap is tested elsewhere */
    struct cmp_mac_limits lim = { 100, 2000, 8 };
    CMP_MSG *msg = NULL;

    if (cmp_msg_decode(data, size, NULL, &msg) != CMP_R_OK)
        return 0;
    (void)cmp_protect_verify_mac(msg, secret, sizeof(secret) - 1, &lim);
    if (msg->header->protectionAlg != NULL)
        (void)cmp_protect_check_sig_alg(msg->header->protectionAlg);
    fuzz_certhash(msg->extraCerts);
    if (msg->body->type == CMP_BODY_IP || msg->body->type == CMP_BODY_CP
        || msg->body->type == CMP_BODY_KUP)
        fuzz_certhash(msg->body->value.ip->caPubs);
    CMP_MSG_free(msg);
    ERR_clear_error();
    return 0;
}
