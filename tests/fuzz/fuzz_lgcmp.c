/*
 * libFuzzer target: the load generator's lean CMP client (bench/lib/lgcmp)
 * fed arbitrary bytes as the server's answer to its ir and to its certConf.
 * It parses network input like any client, so it must refuse, not crash.
 */
#include "lgcmp.h"
#include "cmp_testpki.h"

#include <openssl/err.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_io {
    const uint8_t *data;
    size_t size;
};

static struct fuzz_io fuzz_io;

/* Answers every request with the fuzz input. */
static int fuzz_transfer(void *arg, int type, const unsigned char *req,
                         size_t req_len, const unsigned char **rsp,
                         size_t *rsp_len)
{
    struct fuzz_io *io = arg;

    *rsp = io->data;
    *rsp_len = io->size;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cmp_testpki pki;
    static LGCMP_TRUST *trust;
    static LGCMP_IDENT *id;
    static LGCMP_KEY *newkey;
    static LGCMP_CLIENT *cli;
    static int ready;
    struct lgcmp_result res;

    if (!ready) {
        EVP_PKEY *k;

        if (!cmp_testpki_init(&pki, "EC")
            || (trust = lgcmp_trust_new(pki.root)) == NULL
            || (id = lgcmp_ident_new(pki.dev, pki.dev_key, NULL)) == NULL
            || (k = cmp_testpki_key("EC")) == NULL
            || (newkey = lgcmp_key_new(k)) == NULL
            || (cli = lgcmp_client_new(trust, fuzz_transfer, &fuzz_io)) == NULL)
            abort();
        EVP_PKEY_free(k);
        ready = 1;
    }
    memset(&res, 0, sizeof(res));
    fuzz_io.data = data;
    fuzz_io.size = size;
    (void)lgcmp_enroll(cli, (int)(size & 1), id, newkey, &res);
    lgcmp_result_clear(&res);
    ERR_clear_error();
    return 0;
}
