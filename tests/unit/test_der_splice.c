/*
 * Unit tests of src/util/der_splice.c: one element of a DER encoding
 * replaced by a longer or shorter one (the enclosing lengths rewritten,
 * across the 1- to 2- and 2- to 3-octet length forms), the whole encoding
 * replaced, and every malformed input or misplaced range refused;
 * der_find_once() with zero, one and two occurrences.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/der_splice.h"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* A growing buffer of DER built by hand. */
struct buf {
    unsigned char p[200000];
    size_t n;
};

/* Appends tag |tag| (constructed |c|) with content |data|. */
static void tlv(struct buf *b, int c, int tag, const unsigned char *data,
                size_t len)
{
    unsigned char *w = b->p + b->n;

    ASN1_put_object(&w, c, (int)len, tag, V_ASN1_UNIVERSAL);
    memcpy(w, data, len);
    b->n = (size_t)(w - b->p) + len;
}

/* An OCTET STRING of |len| octets of |v|. */
static void octets(struct buf *b, unsigned char v, size_t len)
{
    unsigned char *d = malloc(len);

    memset(d, v, len);
    tlv(b, 0, V_ASN1_OCTET_STRING, d, len);
    free(d);
}

/* SEQUENCE { OCTETS(1, 5), SEQUENCE { OCTETS(2, 3), X, OCTETS(4, 2) },
 * OCTETS(5, 7) } with X = OCTETS(3, xlen) */
static void build(struct buf *out, size_t xlen, size_t *xoff, size_t *xtot)
{
    struct buf inner = { .n = 0 }, outer = { .n = 0 }, x = { .n = 0 };

    octets(&x, 3, xlen);
    octets(&inner, 2, 3);
    memcpy(inner.p + inner.n, x.p, x.n);
    inner.n += x.n;
    octets(&inner, 4, 2);
    octets(&outer, 1, 5);
    tlv(&outer, 1, V_ASN1_SEQUENCE, inner.p, inner.n);
    octets(&outer, 5, 7);
    out->n = 0;
    tlv(out, 1, V_ASN1_SEQUENCE, outer.p, outer.n);
    if (xoff != NULL) {
        /* outer header, OCTETS(1,5) = 7, inner header, OCTETS(2,3) = 5 */
        size_t oh = out->n - outer.n, ih;
        struct buf t = { .n = 0 };

        tlv(&t, 1, V_ASN1_SEQUENCE, inner.p, inner.n);
        ih = t.n - inner.n;
        *xoff = oh + 7 + ih + 5;
        *xtot = x.n;
    }
}

static struct buf a, b, r;

/* Replaces X of length |from| by X of length |to|: the result equals the
 * encoding built with |to| directly. */
static void check_resize(size_t from, size_t to)
{
    unsigned char *out = NULL;
    size_t off, len, olen, outlen;

    build(&a, from, &off, &olen);
    build(&b, to, NULL, NULL);
    r.n = 0;
    octets(&r, 3, to);
    assert_true(der_splice(a.p, a.n, off, olen, r.p, r.n, &out, &outlen));
    len = b.n;
    assert_int_equal(outlen, len);
    assert_memory_equal(out, b.p, len);
    OPENSSL_free(out);
}

static void test_resize(void **state)
{
    (void)state;
    check_resize(10, 10);
    check_resize(10, 20);
    check_resize(20, 10);
    check_resize(100, 140);     /* the enclosing lengths pass 127 */
    check_resize(140, 100);
    check_resize(200, 70000);   /* ... and 65535 */
    check_resize(70000, 1);
}

static void test_whole(void **state)
{
    unsigned char *out = NULL;
    size_t outlen;

    (void)state;
    build(&a, 10, NULL, NULL);
    r.n = 0;
    octets(&r, 9, 4);
    assert_true(der_splice(a.p, a.n, 0, a.n, r.p, r.n, &out, &outlen));
    assert_int_equal(outlen, r.n);
    assert_memory_equal(out, r.p, r.n);
    OPENSSL_free(out);
}

static void test_refused(void **state)
{
    unsigned char *out = (unsigned char *)"x", bad[16];
    size_t off, olen, outlen = 1;

    (void)state;
    build(&a, 10, &off, &olen);
    r.n = 0;
    octets(&r, 3, 4);
    /* a range that is not one element: inside one, across two, a prefix */
    assert_false(der_splice(a.p, a.n, off + 1, olen - 1, r.p, r.n, &out,
                            &outlen));
    assert_null(out);
    assert_int_equal(outlen, 0);
    assert_false(der_splice(a.p, a.n, off, olen + 1, r.p, r.n, &out,
                            &outlen));
    assert_false(der_splice(a.p, a.n, off, olen - 1, r.p, r.n, &out,
                            &outlen));
    assert_false(der_splice(a.p, a.n, off - 2, olen + 2, r.p, r.n, &out,
                            &outlen));
    /* out of the input, empty ranges and replacements */
    assert_false(der_splice(a.p, a.n, a.n, 1, r.p, r.n, &out, &outlen));
    assert_false(der_splice(a.p, a.n, off, 0, r.p, r.n, &out, &outlen));
    assert_false(der_splice(a.p, a.n, off, olen, r.p, 0, &out, &outlen));
    /* bytes after the outer element, a truncated one */
    a.p[a.n] = 0;
    assert_false(der_splice(a.p, a.n + 1, off, olen, r.p, r.n, &out,
                            &outlen));
    assert_false(der_splice(a.p, a.n - 1, off, olen, r.p, r.n, &out,
                            &outlen));
    /* a replacement that is not one element */
    memcpy(bad, "\x04\x02\x00\x00\x00", 5);
    assert_false(der_splice(a.p, a.n, off, olen, bad, 5, &out, &outlen));
    assert_false(der_splice(a.p, a.n, off, olen, bad, 3, &out, &outlen));
    /* an indefinite length */
    memcpy(bad, "\x30\x80\x04\x01\x00\x00\x00", 7);
    assert_false(der_splice(bad, 7, 2, 3, r.p, r.n, &out, &outlen));
    /* a length running past its parent */
    memcpy(bad, "\x30\x05\x04\x09\x00\x00\x00", 7);
    assert_false(der_splice(bad, 7, 2, 3, r.p, r.n, &out, &outlen));
    /* a primitive element is not descended into */
    memcpy(bad, "\x04\x05\x04\x03\x00\x00\x00", 7);
    assert_false(der_splice(bad, 7, 2, 5, r.p, r.n, &out, &outlen));
    assert_null(out);
}

static void test_deep(void **state)
{
    unsigned char *out = NULL;
    size_t outlen, i, off;
    struct buf x = { .n = 0 };

    (void)state;
    /* DER_SPLICE_MAX_DEPTH levels around the element: fine; one more: no */
    for (i = 0; i <= DER_SPLICE_MAX_DEPTH + 1; i++) {
        a.n = 0;
        octets(&a, 7, 3);
        for (size_t k = 0; k < i; k++) {
            x.n = 0;
            tlv(&x, 1, V_ASN1_SEQUENCE, a.p, a.n);
            memcpy(a.p, x.p, x.n);
            a.n = x.n;
        }
        off = a.n - 5;
        r.n = 0;
        octets(&r, 8, 300);
        if (i <= DER_SPLICE_MAX_DEPTH) {
            assert_true(der_splice(a.p, a.n, off, 5, r.p, r.n, &out,
                                   &outlen));
            assert_int_equal(outlen, a.n - 5 + r.n + 2 * i);
            OPENSSL_free(out);
        } else {
            assert_false(der_splice(a.p, a.n, off, 5, r.p, r.n, &out,
                                    &outlen));
        }
    }
}

static void test_find_once(void **state)
{
    const unsigned char hay[] = "abcXYZdefXYQ";
    size_t off = 99;

    (void)state;
    assert_true(der_find_once(hay, 12, (const unsigned char *)"XYZ", 3, &off));
    assert_int_equal(off, 3);
    assert_false(der_find_once(hay, 12, (const unsigned char *)"XY", 2, &off));
    assert_false(der_find_once(hay, 12, (const unsigned char *)"QQ", 2, &off));
    assert_false(der_find_once(hay, 2, (const unsigned char *)"abc", 3, &off));
    assert_false(der_find_once(hay, 12, (const unsigned char *)"", 0, &off));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_find_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
