/*
 * libFuzzer target: arbitrary bytes as an OCSPRequest to the responder
 * (a real SQLite store in a temp dir with one CA and a good and a revoked
 * certificate); every answer must decode as an OCSPResponse.
 */
#include "ca/ca.h"
#include "ca/ca_key.h"
#include "ca/ca_profile.h"
#include "conf/conf.h"
#include "ocsp/ocsp.h"
#include "store/store.h"
#include "util/log.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static OCSP_RESPONDER *fz_resp;

/* A fixed CA key, so that the CertIDs of the seed corpus (made for
 * "CN=Fuzz CA" with this key) name our CA. */
static const char fz_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbZh/thmztflLwKfA\n"
    "S2tDc6m62/ZVv7LevJ1XoCklp9ChRANCAASAjekvcKCn98DEapoR2Or3AuMdcoef\n"
    "cG4ua9d/2oC32tvfX2s0ZzDfc4RNXVhGl+rrnLdUPAoAX1LQxkBCAj4G\n"
    "-----END PRIVATE KEY-----\n";

static const char *fz_vars(void *arg, const char *name)
{
    return "x";
}

/* One CA in a fresh store, two certificates (one revoked). */
static int fz_setup(void)
{
    static char dir[] = "/tmp/fuzz_ocsp.XXXXXX";
    char path[256], err[512];
    struct store_conf sc;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    EVP_PKEY *k = NULL;
    X509_NAME *n = NULL;
    X509 *c = NULL;
    CA_SIGNER *s;
    CA *ca = NULL;
    CA_PROFILE *p = NULL;
    struct conf *pc = NULL;
    struct ca_issue_req req = { 0 };
    int64_t id = 0;

    log_set_level(LOG_ERROR);
    if (mkdtemp(dir) == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/f.db", dir);
    store_conf_init(&sc);
    sc.path = path;
    sc.synchronous_full = 0;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK)
        return 0;
    snprintf(path, sizeof(path), "%s/ca.key", dir);
    {
        BIO *b = BIO_new_mem_buf(fz_key_pem, -1);

        k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (k == NULL || !ca_key_write(path, k, NULL, err, sizeof(err))
        || (s = ca_signer_new_pkey(k, NULL)) == NULL
        || !ca_name_parse("/CN=Fuzz CA", &n, err, sizeof(err))
        || (c = ca_make_ca_cert(n, k, 365, NULL, s, -1, err, sizeof(err)))
           == NULL
        || store_begin(st, &tx) != STORE_OK
        || ca_record_insert(tx, "fz", c, NULL, path, "fuzz", NULL) != STORE_OK
        || store_commit(tx) != STORE_OK
        || !ca_load(NULL, st, "fz", &ca, err, sizeof(err))
        || !conf_load_string("p", "[profile d]\nsubject = CN=d\n", &pc, err,
                             sizeof(err))
        || !ca_profile_load(pc, "d", &p, err, sizeof(err)))
        return 0;
    req.pubkey = k;
    req.vars = fz_vars;
    if (store_begin(st, &tx) != STORE_OK
        || ca_issue_store(ca, p, &req, tx, 0, NULL, NULL, err, sizeof(err))
           != CA_ISSUE_OK
        || ca_issue_store(ca, p, &req, tx, 0, NULL, &id, err, sizeof(err))
           != CA_ISSUE_OK
        || ca_revoke(ca, tx, id, 1, 0, "fuzz", err, sizeof(err))
           != CA_REVOKE_OK
        || store_commit(tx) != STORE_OK)
        return 0;
    if ((fz_resp = ocsp_responder_new(st, NULL)) == NULL
        || !ocsp_responder_add_ca(fz_resp, ca, NULL, NULL, err, sizeof(err)))
        return 0;
    /* ca, st stay for the process lifetime */
    X509_free(c);
    X509_NAME_free(n);
    ca_signer_free(s);
    ca_profile_free(p);
    conf_free(pc);
    EVP_PKEY_free(k);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out = NULL;
    const unsigned char *p;
    size_t outlen = 0;
    OCSP_RESPONSE *rsp;

    if (fz_resp == NULL && !fz_setup())
        __builtin_trap();
    (void)ocsp_respond(fz_resp, data, size, 1700000000, &out, &outlen);
    if (out == NULL)
        __builtin_trap();
    p = out;
    rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)outlen);
    if (rsp == NULL || p != out + outlen)
        __builtin_trap();               /* our answer must decode */
    OCSP_RESPONSE_free(rsp);
    OPENSSL_free(out);
    ERR_clear_error();
    return 0;
}
