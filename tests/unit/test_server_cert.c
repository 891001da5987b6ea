/*
 * The certificate client mode in process (alias "cert" of the test
 * environment, through OpenSSL's client): a holder of a certificate of the
 * issuing CA enrolls (ir, cr, p10cr-free), renews and asks genm; revoked
 * and untrusted signers get signerNotTrusted with the store unchanged;
 * certProfile picks the profile (gold: 10 days), unknown -> badCertTemplate
 * in the ip, two values -> badRequest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "srv_testenv.h"

#include "cmp/cmp_profile.h"
#include "cmp/cmp_reason.h"
#include "util/log.h"

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    struct stenv e;
    struct stenv_link l;
    const char *profiles[2];      /* certProfile names the mutator adds */
    int nprofiles;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[512];

    if (f == NULL)
        return -1;
    log_set_level(getenv("STENV_VERBOSE") != NULL ? LOG_DEBUG : LOG_ERROR);
    if (!stenv_create(&f->e, NULL, NULL, err, sizeof(err))) {
        print_message("stenv_create: %s\n", err);
        return -1;
    }
    f->l.env = &f->e;
    f->l.alias = "cert";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    stenv_link_reset(&f->l);
    stenv_free(&f->e, getenv("STENV_KEEP") == NULL);
    free(f);
    return 0;
}

static int add_profile(struct stenv_link *l, CMP_MSG *msg, int index)
{
    struct fx *f = l->arg;

    return index != 0
        || cmp_hdr_push_cert_profile(msg->header, f->profiles, f->nprofiles);
}

/* An ir (|cr|: a cr) for CN=|cn| as |id| with a fresh key; the issued
 * certificate in *cert if not NULL. Returns 1 if it was issued. */
static int enroll(struct fx *f, const struct stenv_id *id, const char *cn,
                  int cr, X509 **cert)
{
    OSSL_CMP_CTX *ctx;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *got;

    stenv_link_reset(&f->l);
    assert_non_null(ctx = stenv_client(&f->l, id));
    assert_true(stenv_client_newkey(ctx, k, cn));
    got = cr ? OSSL_CMP_exec_CR_ses(ctx) : OSSL_CMP_exec_IR_ses(ctx);
    if (got != NULL && cert != NULL)
        *cert = X509_dup(got);
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    EVP_PKEY_free(k);
    return got != NULL;
}

/* The first answer of the link: body, status, failInfo. */
static void answer(struct fx *f, int body, int status, int fail_bit)
{
    struct stenv_rsp r;

    assert_true(f->l.nreq >= 1);
    assert_true(stenv_rsp_parse(f->l.rsp[0], f->l.rsp_len[0], &r));
    assert_int_equal(r.body, body);
    assert_int_equal(r.status, status);
    if (fail_bit >= 0)
        assert_int_equal(r.failinfo, 1 << fail_bit);
    assert_true(r.signed_);
    assert_true(f->l.verified[0]);
    stenv_rsp_clear(&r);
}

static long days(const X509 *x)
{
    int d = 0, s = 0;

    assert_true(ASN1_TIME_diff(&d, &s, X509_get0_notBefore(x),
                               X509_get0_notAfter(x)));
    return d;
}

static void test_cert_holder_enrolls(void **state)
{
    struct fx *f = *state;
    const struct stenv_id *h = &f->e.ra[STENV_RA_ALL];
    X509 *c = NULL, *c2 = NULL;
    unsigned char *der = NULL;
    int len;

    assert_true(enroll(f, h, "c-1", 0, &c));
    assert_int_equal(days(c), 30);
    len = i2d_X509(c, &der);
    assert_int_equal(stenv_cert_status(&f->e, der, (size_t)len, NULL, NULL,
                                       NULL), 0);
    OPENSSL_free(der);
    assert_true(enroll(f, h, "c-2", 1, &c2));
    X509_free(c);
    X509_free(c2);
}

static void test_cert_refused_signers(void **state)
{
    struct fx *f = *state;
    struct stenv_id rogue;
    unsigned char before[32], after[32];

    memset(&rogue, 0, sizeof(rogue));
    assert_true(stenv_store_digest(&f->e, before));
    /* a revoked certificate of the issuing CA */
    assert_false(enroll(f, &f->e.ra[STENV_RA_REVOKED], "c-3", 0, NULL));
    answer(f, CMP_BODY_ERROR, 2, CMP_FAIL_SIGNER_NOT_TRUSTED);
    /* a certificate of a CA not trusted for the alias */
    assert_true(stenv_device(&f->e, "SN-ROGUE", 1, 0, &rogue));
    assert_false(enroll(f, &rogue, "c-4", 0, NULL));
    answer(f, CMP_BODY_ERROR, 2, CMP_FAIL_SIGNER_NOT_TRUSTED);
    assert_true(stenv_store_digest(&f->e, after));
    assert_memory_equal(before, after, 32);
    stenv_id_clear(&rogue);
}

static void test_cert_profile(void **state)
{
    struct fx *f = *state;
    const struct stenv_id *h = &f->e.ra[STENV_RA_ALL];
    unsigned char before[32], after[32];
    X509 *c = NULL;

    f->l.mutate = add_profile;
    f->l.arg = f;
    f->l.resign_key = h->key;
    f->profiles[0] = "gold";
    f->nprofiles = 1;
    assert_true(enroll(f, h, "p-1", 0, &c));
    assert_int_equal(days(c), 10);            /* issued with gold */
    X509_free(c);
    f->profiles[0] = "radev";                 /* the default, by name */
    assert_true(enroll(f, h, "p-2", 0, &c));
    assert_int_equal(days(c), 30);
    X509_free(c);
    assert_true(stenv_store_digest(&f->e, before));
    f->profiles[0] = "device";                /* a profile of another alias */
    assert_false(enroll(f, h, "p-3", 0, NULL));
    answer(f, CMP_BODY_IP, 2, CMP_FAIL_BAD_CERT_TEMPLATE);
    f->profiles[0] = "nosuch";
    assert_false(enroll(f, h, "p-4", 0, NULL));
    answer(f, CMP_BODY_IP, 2, CMP_FAIL_BAD_CERT_TEMPLATE);
    f->profiles[0] = "gold";
    f->profiles[1] = "radev";
    f->nprofiles = 2;
    assert_false(enroll(f, h, "p-5", 0, NULL));
    answer(f, CMP_BODY_ERROR, 2, CMP_FAIL_BAD_REQUEST);
    assert_true(stenv_store_digest(&f->e, after));
    assert_memory_equal(before, after, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cert_holder_enrolls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cert_refused_signers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cert_profile, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
