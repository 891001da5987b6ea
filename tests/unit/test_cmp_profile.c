/*
 * certProfile (id-it 21) in generalInfo: absent, one name, two names in
 * one entry, two entries, an empty list, values that are no SEQUENCE OF
 * UTF8String, names too long or with NUL (cmp_hdr_get1_cert_profile).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmp/cmp_build.h"
#include "cmp/cmp_profile.h"

#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

/* A header whose generalInfo holds certProfile with DER value |der|. */
static CMP_HDR *hdr_raw(const unsigned char *der, size_t len, int type)
{
    CMP_HDR *h = CMP_HDR_new();
    CMP_ITAV *it = CMP_ITAV_new();
    ASN1_STRING *s = ASN1_STRING_type_new(type);
    ASN1_TYPE *v = ASN1_TYPE_new();

    assert_non_null(h);
    assert_true(ASN1_STRING_set(s, der, (int)len));
    ASN1_TYPE_set(v, type, s);
    it->infoType = OBJ_txt2obj("1.3.6.1.5.5.7.4.21", 1);
    it->infoValue = v;
    h->generalInfo = sk_CMP_ITAV_new_null();
    assert_true(sk_CMP_ITAV_push(h->generalInfo, it));
    return h;
}

static enum cmp_reason get(const CMP_HDR *h, char **name)
{
    return cmp_hdr_get1_cert_profile(h, name);
}

static void test_profile_none_one_two(void **state)
{
    static const char *const one[] = { "gold" };
    static const char *const two[] = { "gold", "silver" };
    CMP_HDR *h = CMP_HDR_new();
    char *name = (char *)1;

    /* none: no generalInfo, or generalInfo with other entries only */
    assert_int_equal(get(h, &name), CMP_R_OK);
    assert_null(name);
    assert_true(cmp_hdr_push_implicit_confirm(h));
    assert_int_equal(get(h, &name), CMP_R_OK);
    assert_null(name);
    /* one */
    assert_true(cmp_hdr_push_cert_profile(h, one, 1));
    assert_int_equal(get(h, &name), CMP_R_OK);
    assert_string_equal(name, "gold");
    free(name);
    /* two entries of one name each */
    assert_true(cmp_hdr_push_cert_profile(h, one, 1));
    assert_int_equal(get(h, &name), CMP_R_BAD_REQUEST);
    assert_null(name);
    CMP_HDR_free(h);
    /* two names in one entry */
    h = CMP_HDR_new();
    assert_true(cmp_hdr_push_cert_profile(h, two, 2));
    assert_int_equal(get(h, &name), CMP_R_BAD_REQUEST);
    assert_null(name);
    CMP_HDR_free(h);
}

static void test_profile_malformed(void **state)
{
    static const unsigned char empty[] = { 0x30, 0x00 };
    static const unsigned char ia5[] = { 0x30, 0x03, 0x16, 0x01, 'a' };
    static const unsigned char nul[] = { 0x30, 0x04, 0x0c, 0x02, 'a', 0 };
    static const unsigned char zero[] = { 0x30, 0x02, 0x0c, 0x00 };
    static const unsigned char trail[] = { 0x30, 0x03, 0x0c, 0x01, 'a', 0x00 };
    static const unsigned char shortlen[] = { 0x30, 0x03, 0x0c, 0x05, 'a' };
    static const unsigned char good[] = { 0x30, 0x03, 0x0c, 0x01, 'a' };
    static const unsigned char cons[] = { 0x30, 0x05, 0x2c, 0x03, 0x0c, 0x01,
                                          'a' };
    static const unsigned char integer[] = { 0x02, 0x01, 0x01 };
    unsigned char longname[4 + CMP_PROFILE_NAME_MAX + 1];
    char *name = NULL;
    CMP_HDR *h;
    size_t i;
    struct { const unsigned char *d; size_t n; } bad[] = {
        { empty, sizeof(empty) }, { ia5, sizeof(ia5) }, { nul, sizeof(nul) },
        { zero, sizeof(zero) }, { trail, sizeof(trail) },
        { shortlen, sizeof(shortlen) }, { longname, sizeof(longname) },
        { cons, sizeof(cons) },
    };

    longname[0] = 0x30;
    longname[1] = (unsigned char)(2 + CMP_PROFILE_NAME_MAX + 1);
    longname[2] = 0x0c;
    longname[3] = (unsigned char)(CMP_PROFILE_NAME_MAX + 1);
    memset(longname + 4, 'x', CMP_PROFILE_NAME_MAX + 1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = hdr_raw(bad[i].d, bad[i].n, V_ASN1_SEQUENCE);
        if (get(h, &name) != CMP_R_BAD_REQUEST)
            fail_msg("case %zu accepted", i);
        assert_null(name);
        CMP_HDR_free(h);
    }
    h = hdr_raw(good, sizeof(good), V_ASN1_SEQUENCE);
    assert_int_equal(get(h, &name), CMP_R_OK);
    assert_string_equal(name, "a");
    free(name);
    CMP_HDR_free(h);
    /* a value that is no SEQUENCE */
    h = hdr_raw(integer + 2, 1, V_ASN1_INTEGER);
    assert_int_equal(get(h, &name), CMP_R_BAD_REQUEST);
    CMP_HDR_free(h);
    /* certProfile without a value */
    h = CMP_HDR_new();
    h->generalInfo = sk_CMP_ITAV_new_null();
    {
        CMP_ITAV *it = CMP_ITAV_new();

        it->infoType = OBJ_txt2obj("1.3.6.1.5.5.7.4.21", 1);
        assert_true(sk_CMP_ITAV_push(h->generalInfo, it));
    }
    assert_int_equal(get(h, &name), CMP_R_BAD_REQUEST);
    CMP_HDR_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_none_one_two),
        cmocka_unit_test(test_profile_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
