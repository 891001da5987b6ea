/*
 * The schema-free DER walker of cmp_der.h: one pass over the bytes,
 * recursion bounded by CMP_DER_MAX_DEPTH, every length checked against
 * the bytes that remain before it is used.
 */
#include "cmp/cmp_der.h"

#include <stdint.h>
#include <string.h>

/* One parsed identifier and length. */
struct cmp_der_tlv {
    int xclass;             /* 0 universal, 1 application, 2 context, 3 private */
    int constructed;
    uint32_t tag;
    const unsigned char *content;
    size_t clen;
    size_t total;           /* identifier + length + content octets */
};

/* Worse of two results: MALFORMED over BER over OK. */
static enum cmp_der_result cmp_der_worst(enum cmp_der_result a,
                                         enum cmp_der_result b)
{
    return a > b ? a : b;
}

/* Parses the TLV at |p| (|avail| bytes). Returns CMP_DER_OK with *t set,
 * CMP_DER_BER for a non-minimal tag or length (t set) or an indefinite
 * length (t->total 0), or CMP_DER_MALFORMED. */
static enum cmp_der_result cmp_der_parse(const unsigned char *p, size_t avail,
                                         struct cmp_der_tlv *t)
{
    enum cmp_der_result r = CMP_DER_OK;
    size_t pos = 1, n, i, l = 0;

    t->total = 0;
    if (avail < 2)
        return CMP_DER_MALFORMED;
    t->xclass = p[0] >> 6;
    t->constructed = (p[0] & 0x20) != 0;
    t->tag = p[0] & 0x1f;
    if (t->tag == 0x1f) {
        /* high tag number form: base-128, no leading 0x80, >= 31 */
        t->tag = 0;
        if (p[pos] == 0x80)
            r = CMP_DER_BER;
        for (i = 0;; i++) {
            if (pos >= avail || i == 4)
                return CMP_DER_MALFORMED;
            t->tag = (t->tag << 7) | (p[pos] & 0x7f);
            if ((p[pos++] & 0x80) == 0)
                break;
        }
        if (t->tag < 0x1f)
            r = CMP_DER_BER;
    }
    if (pos >= avail)
        return CMP_DER_MALFORMED;
    if (p[pos] < 0x80) {
        l = p[pos++];
    } else if (p[pos] == 0x80) {
        /* indefinite length: BER for constructed, invalid for primitive */
        return t->constructed ? CMP_DER_BER : CMP_DER_MALFORMED;
    } else {
        n = p[pos++] & 0x7f;
        if (n > 4 || n > avail - pos)
            return CMP_DER_MALFORMED;
        if (p[pos] == 0)
            r = CMP_DER_BER;            /* leading zero length octet */
        for (i = 0; i < n; i++)
            l = (l << 8) | p[pos++];
        if (l < 0x80)
            r = CMP_DER_BER;            /* long form for a short length */
    }
    if (l > avail - pos)
        return CMP_DER_MALFORMED;
    t->content = p + pos;
    t->clen = l;
    t->total = pos + l;
    return r;
}

/* Compares two encodings as X.690 11.6 orders SET OF elements: as octet
 * strings, the shorter padded with trailing zero octets. Returns <0, 0, >0. */
static int cmp_der_set_cmp(const unsigned char *a, size_t alen,
                           const unsigned char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i;
    int c = memcmp(a, b, n);

    if (c != 0)
        return c;
    for (i = n; i < alen; i++)
        if (a[i] != 0)
            return 1;
    for (i = n; i < blen; i++)
        if (b[i] != 0)
            return -1;
    return 0;
}

static int cmp_der_digits(const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* UTCTime YYMMDDHHMMSSZ; GeneralizedTime YYYYMMDDHHMMSS[.f*]Z, the
 * fraction without trailing zeros (X.690 11.7, 11.8). */
static enum cmp_der_result cmp_der_time(const struct cmp_der_tlv *t)
{
    const unsigned char *s = t->content;
    size_t n = t->clen, i;

    if (t->tag == 23)
        return n == 13 && cmp_der_digits(s, 12) && s[12] == 'Z'
            ? CMP_DER_OK : CMP_DER_BER;
    if (n < 15 || !cmp_der_digits(s, 14) || s[n - 1] != 'Z')
        return CMP_DER_BER;
    if (n == 15)
        return CMP_DER_OK;
    /* ".d...dZ": at least one digit, the last one not 0 */
    if (s[14] != '.' || n < 17 || s[n - 2] == '0')
        return CMP_DER_BER;
    for (i = 15; i < n - 1; i++)
        if (s[i] < '0' || s[i] > '9')
            return CMP_DER_BER;
    return CMP_DER_OK;
}

/* The rules for one universal primitive element. */
static enum cmp_der_result cmp_der_primitive(const struct cmp_der_tlv *t)
{
    const unsigned char *c = t->content;
    size_t n = t->clen, i;

    switch (t->tag) {
    case 0:                     /* end-of-contents outside indefinite form */
        return CMP_DER_MALFORMED;
    case 1:                     /* BOOLEAN */
        if (n != 1)
            return CMP_DER_MALFORMED;
        return c[0] == 0x00 || c[0] == 0xff ? CMP_DER_OK : CMP_DER_BER;
    case 2:                     /* INTEGER */
    case 10:                    /* ENUMERATED */
        if (n == 0)
            return CMP_DER_MALFORMED;
        if (n > 1 && ((c[0] == 0x00 && (c[1] & 0x80) == 0)
                      || (c[0] == 0xff && (c[1] & 0x80) != 0)))
            return CMP_DER_BER;
        return CMP_DER_OK;
    case 3:                     /* BIT STRING */
        if (n == 0 || c[0] > 7 || (n == 1 && c[0] != 0))
            return CMP_DER_MALFORMED;
        if (n > 1 && (c[n - 1] & ((1u << c[0]) - 1)) != 0)
            return CMP_DER_BER;         /* unused bits not zero */
        return CMP_DER_OK;
    case 5:                     /* NULL */
        return n == 0 ? CMP_DER_OK : CMP_DER_MALFORMED;
    case 6:                     /* OBJECT IDENTIFIER */
    case 13:                    /* RELATIVE-OID */
        if (n == 0 || (c[n - 1] & 0x80) != 0 || c[0] == 0x80)
            return CMP_DER_MALFORMED;
        for (i = 1; i < n; i++)
            if (c[i] == 0x80 && (c[i - 1] & 0x80) == 0)
                return CMP_DER_MALFORMED;   /* subidentifier led by 0x80 */
        return CMP_DER_OK;
    case 16:                    /* SEQUENCE and SET are always constructed */
    case 17:
        return CMP_DER_MALFORMED;
    case 23:
    case 24:
        return cmp_der_time(t);
    default:
        return CMP_DER_OK;
    }
}

/* Universal types whose DER encoding is primitive (X.690 10.2). */
static int cmp_der_must_be_primitive(uint32_t tag)
{
    switch (tag) {
    case 3: case 4:                             /* BIT STRING, OCTET STRING */
    case 7: case 12: case 18: case 19: case 20: /* character strings ... */
    case 21: case 22: case 25: case 26: case 27: case 28: case 30:
    case 23: case 24:                           /* UTCTime, GeneralizedTime */
        return 1;
    default:
        return 0;
    }
}

/* Walks the elements filling [p, end) exactly; |set|: they are the
 * elements of a SET and must be in ascending order. */
static enum cmp_der_result cmp_der_walk(const unsigned char *p,
                                        const unsigned char *end, int set,
                                        int depth)
{
    enum cmp_der_result r = CMP_DER_OK, e;
    const unsigned char *prev = NULL;
    size_t prev_len = 0;
    struct cmp_der_tlv t;

    if (p < end && depth > CMP_DER_MAX_DEPTH)
        return CMP_DER_MALFORMED;   /* an element below the deepest level */
    while (p < end) {
        e = cmp_der_parse(p, (size_t)(end - p), &t);
        if (e == CMP_DER_MALFORMED)
            return e;
        /* an indefinite length (total 0) is not delimited without EOC
         * parsing, and it is not DER anyway */
        if (t.total == 0)
            return CMP_DER_BER;
        r = cmp_der_worst(r, e);
        if (t.xclass == 0 && t.constructed && cmp_der_must_be_primitive(t.tag))
            r = cmp_der_worst(r, CMP_DER_BER);
        if (t.xclass == 0 && !t.constructed)
            r = cmp_der_worst(r, cmp_der_primitive(&t));
        if (r == CMP_DER_MALFORMED)
            return r;
        if (t.constructed) {
            e = cmp_der_walk(t.content, t.content + t.clen,
                             t.xclass == 0 && t.tag == 17, depth + 1);
            r = cmp_der_worst(r, e);
            if (r == CMP_DER_MALFORMED)
                return r;
        }
        if (set && prev != NULL
            && cmp_der_set_cmp(prev, prev_len, p, t.total) > 0)
            r = cmp_der_worst(r, CMP_DER_BER);
        prev = p;
        prev_len = t.total;
        p += t.total;
    }
    return r;
}

enum cmp_der_result cmp_der_check(const unsigned char *der, size_t len)
{
    struct cmp_der_tlv t;
    enum cmp_der_result r;

    if (der == NULL || len < 2)
        return CMP_DER_MALFORMED;
    r = cmp_der_parse(der, len, &t);
    if (r == CMP_DER_MALFORMED || t.total == 0)
        return r;
    if (t.total != len)
        return CMP_DER_MALFORMED;
    return cmp_der_walk(der, der + len, 0, 1);
}
