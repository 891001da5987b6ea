/*
 * der_splice(): one element of a DER encoding replaced, enclosing lengths
 * rewritten. Headers are read with ASN1_get_object() and written with
 * ASN1_put_object(); nothing else of the encoding is interpreted.
 */
#include "util/der_splice.h"

#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <string.h>

/* One enclosing element: where its header starts, how long the header
 * and the content are, and what the header says. */
struct der_level {
    size_t at, hlen, clen;
    int tag, xclass, constructed;
};

/* Reads the header at |p| (|left| bytes remain) into |lv|; definite
 * lengths within |left| only. */
static int der_header(const unsigned char *base, size_t at, size_t left,
                      struct der_level *lv)
{
    const unsigned char *p = base + at, *q = p;
    long len = 0;
    int tag = 0, xclass = 0, r;

    if (left == 0 || left > LONG_MAX)
        return 0;
    r = ASN1_get_object(&q, &len, &tag, &xclass, (long)left);
    if ((r & 0x80) != 0 || (r & 0x01) != 0 || len < 0)
        return 0;
    lv->at = at;
    lv->hlen = (size_t)(q - p);
    lv->clen = (size_t)len;
    lv->tag = tag;
    lv->xclass = xclass;
    lv->constructed = (r & V_ASN1_CONSTRUCTED) != 0;
    return lv->hlen <= left && lv->clen <= left - lv->hlen;
}

int der_splice(const unsigned char *in, size_t inlen, size_t off, size_t olen,
               const unsigned char *repl, size_t rlen, unsigned char **out,
               size_t *outlen)
{
    struct der_level lv[DER_SPLICE_MAX_DEPTH], e;
    size_t n = 0, end, newlen[DER_SPLICE_MAX_DEPTH], total, i, c;
    unsigned char *buf = NULL, *w;
    int hsize, ok = 0;

    *out = NULL;
    *outlen = 0;
    if (in == NULL || repl == NULL || olen == 0 || rlen == 0
        || off > inlen || olen > inlen - off || rlen > INT_MAX
        || inlen > INT_MAX)
        goto end;
    /* the replacement is one element, as the input is */
    if (!der_header(repl, 0, rlen, &e) || e.hlen + e.clen != rlen)
        goto end;
    /* down from the outer element to the one just around the range */
    if (!der_header(in, 0, inlen, &e) || e.hlen + e.clen != inlen)
        goto end;
    while (!(e.at == off && e.hlen + e.clen == olen)) {
        if (!e.constructed || n == DER_SPLICE_MAX_DEPTH
            || off < e.at + e.hlen || off + olen > e.at + e.hlen + e.clen)
            goto end;
        lv[n++] = e;
        /* the child holding the range */
        c = e.at + e.hlen;
        end = e.at + e.hlen + e.clen;
        for (;;) {
            if (c >= end || !der_header(in, c, end - c, &e))
                goto end;
            if (off >= c && off < c + e.hlen + e.clen)
                break;
            c += e.hlen + e.clen;
        }
    }
    /* the new lengths, inside out */
    total = rlen;
    for (i = n; i-- > 0;) {
        size_t rest = lv[i].clen;
        size_t old_child = i + 1 < n ? lv[i + 1].hlen + lv[i + 1].clen : olen;

        newlen[i] = rest - old_child + total;
        if (newlen[i] > INT_MAX
            || (hsize = ASN1_object_size(lv[i].constructed, (int)newlen[i],
                                         lv[i].tag)) < 0)
            goto end;
        total = (size_t)hsize;
    }
    if ((buf = OPENSSL_malloc(total)) == NULL)
        goto end;
    w = buf;
    /* each header anew, the bytes between it and the next level's header
     * (or the range) as they were */
    for (i = 0; i < n; i++) {
        size_t from = lv[i].at + lv[i].hlen;
        size_t to = i + 1 < n ? lv[i + 1].at : off;

        ASN1_put_object(&w, lv[i].constructed, (int)newlen[i], lv[i].tag,
                        lv[i].xclass);
        memcpy(w, in + from, to - from);
        w += to - from;
    }
    memcpy(w, repl, rlen);
    w += rlen;
    memcpy(w, in + off + olen, inlen - off - olen);
    w += inlen - off - olen;
    if ((size_t)(w - buf) != total)
        goto end;
    *out = buf;
    *outlen = total;
    buf = NULL;
    ok = 1;
 end:
    OPENSSL_free(buf);
    ERR_clear_error();
    return ok;
}

int der_find_once(const unsigned char *hay, size_t haylen,
                  const unsigned char *needle, size_t nlen, size_t *off)
{
    const unsigned char *p, *q;

    if (hay == NULL || needle == NULL || nlen == 0 || nlen > haylen
        || (p = memmem(hay, haylen, needle, nlen)) == NULL)
        return 0;
    q = memmem(p + 1, haylen - (size_t)(p + 1 - hay), needle, nlen);
    if (q != NULL)
        return 0;
    *off = (size_t)(p - hay);
    return 1;
}
