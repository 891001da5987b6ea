/*
 * Tests of the certificate decode cache of cmp_msg_decode: decoding alone
 * never fills it (junk certificates of unauthenticated requests), only
 * cmp_cert_cache_keep does, and it stays within its byte bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp/cmp_msg.h"
#include "cmp_testpki.h"
#include "testutil.h"

static EVP_PKEY *key;
static CMP_MSG *base;       /* an OpenSSL-made ir to carry the certificates */

static int setup(void **state)
{
    const char *d = getenv("CMPCA_VECTORS");
    char path[512];
    unsigned char *der;
    const unsigned char *p;
    size_t len;

    snprintf(path, sizeof(path), "%s/sigec_ir_req0_ir.der",
             d != NULL && *d != '\0' ? d : "tests/vectors");
    if ((der = testutil_read_file(path, &len)) == NULL) {
        fprintf(stderr, "cannot read %s (run from the repo root)\n", path);
        return -1;
    }
    p = der;
    base = d2i_CMP_MSG(NULL, &p, (long)len);
    free(der);
    key = cmp_testpki_key("P-256");
    return base != NULL && key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    CMP_MSG_free(base);
    EVP_PKEY_free(key);
    cmp_cert_cache_clear();
    return 0;
}

/* A self-signed certificate with serial |serial| and a nsComment of
 * |pad| bytes (0 = none). */
static X509 *junk_cert(long serial, size_t pad)
{
    X509 *x = cmp_testpki_cert(key, "junk", NULL, NULL, 0, 30);
    ASN1_IA5STRING *s = NULL;
    char *text;

    assert_non_null(x);
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
    if (pad > 0) {
        text = malloc(pad);
        assert_non_null(text);
        memset(text, 'a' + (int)(serial % 26), pad);
        s = ASN1_IA5STRING_new();
        assert_true(ASN1_STRING_set(s, text, (int)pad));
        assert_true(X509_add1_ext_i2d(x, NID_netscape_comment, s, 0, 0));
        ASN1_IA5STRING_free(s);
        free(text);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

/* DER of |base| with extraCerts = { x }. */
static unsigned char *msg_with(X509 *x, size_t *len)
{
    STACK_OF(X509) *saved = base->extraCerts;
    unsigned char *der = NULL;

    base->extraCerts = cmp_testpki_stack(x, NULL);
    assert_true(cmp_msg_encode(base, &der, len));
    sk_X509_pop_free(base->extraCerts, X509_free);
    base->extraCerts = saved;
    return der;
}

/* Decodes |der| (must succeed); returns its first extraCert (a new ref). */
static X509 *decode_first(const unsigned char *der, size_t len)
{
    struct cmp_limits lim = { .max_msg_len = 1 << 20 };
    CMP_MSG *msg = NULL;
    X509 *x;

    assert_int_equal(cmp_msg_decode(der, len, &lim, &msg), CMP_R_OK);
    x = sk_X509_value(msg->extraCerts, 0);
    assert_non_null(x);
    X509_up_ref(x);
    CMP_MSG_free(msg);
    return x;
}

/* Requests with distinct 60 KB junk certificates leave nothing behind. */
static void test_decode_does_not_fill(void **state)
{
    size_t n = 0, bytes = 0, len;
    int i;

    cmp_cert_cache_clear();
    for (i = 0; i < 300; i++) {
        X509 *x = junk_cert(1000 + i, 60000), *y;
        unsigned char *der = msg_with(x, &len);

        assert_true(len > 60000);
        y = decode_first(der, len);
        assert_ptr_not_equal(x, y);
        X509_free(y);
        X509_free(x);
        OPENSSL_free(der);
    }
    cmp_cert_cache_stats(&n, &bytes);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
}

/* A kept certificate is found again: the next decode shares the object. */
static void test_keep_then_hit(void **state)
{
    X509 *x = junk_cert(7, 0), *a, *b, *c;
    size_t len, n = 0, bytes = 0;
    unsigned char *der = msg_with(x, &len);

    cmp_cert_cache_clear();
    a = decode_first(der, len);
    b = decode_first(der, len);
    assert_ptr_not_equal(a, b);         /* not kept: decoded each time */
    assert_int_equal(cmp_cert_cache_keep(a), 1);
    assert_int_equal(cmp_cert_cache_keep(a), 1);    /* idempotent */
    cmp_cert_cache_stats(&n, &bytes);
    assert_int_equal(n, 1);
    assert_true(bytes > (size_t)i2d_X509(a, NULL));
    c = decode_first(der, len);
    assert_ptr_equal(a, c);             /* from the cache */
    assert_int_equal(X509_cmp(c, x), 0);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    X509_free(x);
    OPENSSL_free(der);
    assert_int_equal(cmp_cert_cache_keep(NULL), 0);
}

/* The byte bound holds however many certificates are kept; one larger
 * than an eighth of the bound is not kept at all. */
static void test_byte_bound(void **state)
{
    const size_t max = 64 * 1024;
    size_t n = 0, bytes = 0;
    int i;

    cmp_cert_cache_clear();
    cmp_cert_cache_set_max(max);
    for (i = 0; i < 200; i++) {
        X509 *x = junk_cert(5000 + i, 1000);

        assert_int_equal(cmp_cert_cache_keep(x), 1);
        X509_free(x);
        cmp_cert_cache_stats(&n, &bytes);
        assert_true(bytes <= max);
    }
    assert_true(n >= 2 && n < 200);
    {
        X509 *big = junk_cert(9999, 20000);

        assert_int_equal(cmp_cert_cache_keep(big), 0);
        X509_free(big);
    }
    cmp_cert_cache_set_max(0);          /* 0 disables: everything leaves */
    cmp_cert_cache_stats(&n, &bytes);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
    cmp_cert_cache_set_max(CMP_CERT_CACHE_DEFAULT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_does_not_fill),
        cmocka_unit_test(test_keep_then_hit),
        cmocka_unit_test(test_byte_bound),
    };

    return cmocka_run_group_tests_name("cert_cache", tests, setup, teardown);
}
