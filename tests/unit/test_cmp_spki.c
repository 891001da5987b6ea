/*
 * Unit tests of the fast public-key import for certificate requests: every
 * supported key type round-trips to an equal key and the same encoding;
 * invalid points, explicit curves and unused bits are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cmp/cmp_spki.h"

#include <openssl/ec.h>
#include <openssl/x509.h>
#include <string.h>

static CMP_RAWSPKI *spki_of(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_PUBKEY(pkey, &der);
    CMP_RAWSPKI *s;

    assert_true(len > 0);
    p = der;
    s = d2i_CMP_RAWSPKI(NULL, &p, len);
    assert_non_null(s);
    OPENSSL_free(der);
    return s;
}

static void roundtrip(EVP_PKEY *orig)
{
    CMP_RAWSPKI *s = spki_of(orig);
    EVP_PKEY *k = NULL;
    X509_PUBKEY *x = NULL;
    unsigned char *a = NULL, *b = NULL;
    int la, lb;

    assert_int_equal(cmp_spki_get1(s, &k, &x), 1);
    assert_int_equal(EVP_PKEY_eq(orig, k), 1);
    la = i2d_PUBKEY(orig, &a);
    lb = i2d_X509_PUBKEY(x, &b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, (size_t)la);
    OPENSSL_free(a);
    OPENSSL_free(b);
    EVP_PKEY_free(k);
    X509_PUBKEY_free(x);
    CMP_RAWSPKI_free(s);
}

static void test_types(void **state)
{
    static const char *const specs[][2] = {
        { "EC", "P-256" }, { "EC", "P-384" }, { "EC", "P-521" },
        { "ED25519", NULL }, { "ED448", NULL }, { "X25519", NULL },
        { "RSA", NULL },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        EVP_PKEY *k = specs[i][1] != NULL
            ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", specs[i][1])
            : strcmp(specs[i][0], "RSA") == 0
            ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
            : EVP_PKEY_Q_keygen(NULL, NULL, specs[i][0]);

        assert_non_null(k);
        roundtrip(k);
        EVP_PKEY_free(k);
    }
}

static void test_bad_point(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *out = NULL;
    CMP_RAWSPKI *s = spki_of(k);
    unsigned char pt[65];

    (void)state;
    memset(pt, 0, sizeof(pt));
    pt[0] = 0x04;                 /* (0, 0) is not on the curve */
    pt[64] = 1;
    assert_true(ASN1_BIT_STRING_set(s->subjectPublicKey, pt, sizeof(pt)));
    assert_int_equal(cmp_spki_get1(s, &out, NULL), 0);
    assert_null(out);
    /* unused bits in the key bit string */
    s->subjectPublicKey->flags = ASN1_STRING_FLAG_BITS_LEFT | 3;
    assert_int_equal(cmp_spki_get1(s, &out, NULL), 0);
    CMP_RAWSPKI_free(s);
    EVP_PKEY_free(k);
}

static void test_unknown_curve_form(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *out = NULL;
    CMP_RAWSPKI *s = spki_of(k);

    (void)state;
    /* parameters that are not a named curve OID */
    assert_true(X509_ALGOR_set0(s->algorithm,
                                OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_NULL, NULL));
    assert_int_equal(cmp_spki_get1(s, &out, NULL), 0);
    CMP_RAWSPKI_free(s);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_bad_point),
        cmocka_unit_test(test_unknown_curve_form),
    };

    return cmocka_run_group_tests_name("cmp_spki", tests, NULL, NULL);
}
