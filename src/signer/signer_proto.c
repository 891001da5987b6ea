/*
 * Encoding and strict decoding of the signer protocol's frames (see
 * signer_proto.h). No I/O and no allocation: decoded fields point into the
 * caller's buffer, and every length is bounded before it is used.
 */
#include "signer/signer_proto.h"

#include <string.h>

/* A cursor over a frame body. */
struct rd {
    const uint8_t *p;
    size_t left;
};

static int rd_u8(struct rd *r, uint8_t *v)
{
    if (r->left < 1)
        return 0;
    *v = r->p[0];
    r->p++;
    r->left--;
    return 1;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    if (r->left < 4)
        return 0;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16
        | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->left -= 4;
    return 1;
}

/* A 2-octet length then that many octets, at most |max|. */
static int rd_blob(struct rd *r, size_t max, const uint8_t **out,
                   size_t *outlen)
{
    size_t n;

    if (r->left < 2)
        return 0;
    n = (size_t)r->p[0] << 8 | r->p[1];
    if (n > max || n > r->left - 2)
        return 0;
    *out = r->p + 2;
    *outlen = n;
    r->p += 2 + n;
    r->left -= 2 + n;
    return 1;
}

/* A blob that is text: no NUL octet inside. */
static int rd_str(struct rd *r, size_t max, const char **out, size_t *outlen)
{
    const uint8_t *p;

    if (!rd_blob(r, max, &p, outlen) || memchr(p, '\0', *outlen) != NULL)
        return 0;
    *out = (const char *)p;
    return 1;
}

int signer_frame_len(const uint8_t hdr[SIGNER_HDR_LEN], size_t max,
                     size_t *len)
{
    size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16
        | (size_t)hdr[2] << 8 | hdr[3];

    if (max > SIGNER_MAX_FRAME)
        max = SIGNER_MAX_FRAME;
    if (n < SIGNER_MIN_FRAME || n > max)
        return 0;
    *len = n;
    return 1;
}

int signer_frame_decode(const uint8_t *body, size_t len,
                        struct signer_frame *f)
{
    struct rd r = { body, len };
    int ok = 0;

    memset(f, 0, sizeof(*f));
    if (len < SIGNER_MIN_FRAME || len > SIGNER_MAX_FRAME
        || !rd_u8(&r, &f->type) || !rd_u32(&r, &f->id))
        goto end;
    switch (f->type) {
    case SIGNER_T_LOOKUP:
        ok = rd_str(&r, SIGNER_MAX_KEYREF, &f->keyref, &f->keyref_len)
            && f->keyref_len > 0
            && rd_str(&r, SIGNER_MAX_MD, &f->md, &f->md_len);
        break;
    case SIGNER_T_SIGN:
        ok = rd_u32(&r, &f->key_id);
        f->data = r.p;
        f->data_len = r.left;
        r.left = 0;
        break;
    case SIGNER_T_SIGN_PAIR: {
        uint32_t tl;

        ok = rd_u32(&r, &f->key_id) && rd_u32(&r, &f->key2_id)
            && rd_u32(&r, &f->off) && rd_u32(&r, &f->olen)
            && rd_u32(&r, &tl) && tl > 0 && tl < r.left;
        if (!ok)
            break;
        f->data = r.p;
        f->data_len = tl;
        f->data2 = r.p + tl;
        f->data2_len = r.left - tl;
        r.left = 0;
        /* the placeholder lies inside the message */
        ok = f->olen > 0 && f->off <= f->data2_len
            && f->olen <= f->data2_len - f->off;
        break;
    }
    case SIGNER_T_KEY:
        ok = rd_u32(&r, &f->key_id) && rd_u8(&r, &f->flags)
            && (f->flags & ~SIGNER_F_PKCS11) == 0
            && rd_str(&r, SIGNER_MAX_MD, &f->md, &f->md_len)
            && rd_blob(&r, SIGNER_MAX_PUB, &f->pub, &f->pub_len)
            && f->pub_len > 0
            && rd_blob(&r, SIGNER_MAX_ALG, &f->alg, &f->alg_len)
            && f->alg_len > 0;
        break;
    case SIGNER_T_SIG:
        ok = rd_blob(&r, SIGNER_MAX_SIG, &f->data, &f->data_len)
            && f->data_len > 0;
        break;
    case SIGNER_T_SIG_PAIR:
        ok = rd_blob(&r, SIGNER_MAX_SIG, &f->data, &f->data_len)
            && f->data_len > 0
            && rd_blob(&r, SIGNER_MAX_SIG, &f->data2, &f->data2_len)
            && f->data2_len > 0;
        break;
    case SIGNER_T_READY:
        ok = 1;
        break;
    case SIGNER_T_ERROR:
        ok = rd_u8(&r, &f->code) && f->code != 0
            && rd_str(&r, SIGNER_MAX_MSG, &f->msg, &f->msg_len);
        break;
    default:
        break;
    }
    ok = ok && r.left == 0;
 end:
    if (!ok)
        memset(f, 0, sizeof(*f));
    return ok;
}

/* Size of a blob field, or 0 when over |max|. */
static size_t blob_size(size_t len, size_t max)
{
    return len <= max ? 2 + len : 0;
}

size_t signer_frame_size(const struct signer_frame *f)
{
    size_t n = SIGNER_HDR_LEN + SIGNER_MIN_FRAME, a, b, c;

    switch (f->type) {
    case SIGNER_T_LOOKUP:
        if (f->keyref_len == 0
            || (a = blob_size(f->keyref_len, SIGNER_MAX_KEYREF)) == 0
            || (b = blob_size(f->md_len, SIGNER_MAX_MD)) == 0)
            return 0;
        n += a + b;
        break;
    case SIGNER_T_SIGN:
        if (f->data_len > SIGNER_MAX_FRAME - SIGNER_MIN_FRAME - 4)
            return 0;
        n += 4 + f->data_len;
        break;
    case SIGNER_T_SIGN_PAIR:
        if (f->data_len == 0 || f->data2_len == 0 || f->olen == 0
            || f->off > f->data2_len || f->olen > f->data2_len - f->off
            || f->data_len > SIGNER_MAX_FRAME - SIGNER_MIN_FRAME - 20
            || f->data2_len > SIGNER_MAX_FRAME - SIGNER_MIN_FRAME - 20
                                  - f->data_len)
            return 0;
        n += 20 + f->data_len + f->data2_len;
        break;
    case SIGNER_T_SIG_PAIR:
        if (f->data_len == 0 || f->data2_len == 0
            || (a = blob_size(f->data_len, SIGNER_MAX_SIG)) == 0
            || (b = blob_size(f->data2_len, SIGNER_MAX_SIG)) == 0)
            return 0;
        n += a + b;
        break;
    case SIGNER_T_KEY:
        if (f->pub_len == 0 || f->alg_len == 0
            || (a = blob_size(f->md_len, SIGNER_MAX_MD)) == 0
            || (b = blob_size(f->pub_len, SIGNER_MAX_PUB)) == 0
            || (c = blob_size(f->alg_len, SIGNER_MAX_ALG)) == 0)
            return 0;
        n += 5 + a + b + c;
        break;
    case SIGNER_T_SIG:
        if (f->data_len == 0
            || (a = blob_size(f->data_len, SIGNER_MAX_SIG)) == 0)
            return 0;
        n += a;
        break;
    case SIGNER_T_READY:
        break;
    case SIGNER_T_ERROR:
        if (f->code == 0 || (a = blob_size(f->msg_len, SIGNER_MAX_MSG)) == 0)
            return 0;
        n += 1 + a;
        break;
    default:
        return 0;
    }
    return n;
}

/* A cursor writing into a buffer known to be large enough. */
static uint8_t *wr_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *wr_blob(uint8_t *p, const void *data, size_t len)
{
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    if (len > 0)
        memcpy(p + 2, data, len);
    return p + 2 + len;
}

int signer_frame_encode(const struct signer_frame *f, uint8_t *buf,
                        size_t buflen, size_t *outlen)
{
    size_t n = signer_frame_size(f);
    uint8_t *p = buf;

    if (n == 0 || n > buflen)
        return 0;
    /* text fields must decode again: no NUL inside */
    if ((f->keyref_len > 0 && memchr(f->keyref, '\0', f->keyref_len) != NULL)
        || (f->md_len > 0 && memchr(f->md, '\0', f->md_len) != NULL)
        || (f->msg_len > 0 && memchr(f->msg, '\0', f->msg_len) != NULL))
        return 0;
    p = wr_u32(p, (uint32_t)(n - SIGNER_HDR_LEN));
    *p++ = f->type;
    p = wr_u32(p, f->id);
    switch (f->type) {
    case SIGNER_T_LOOKUP:
        p = wr_blob(p, f->keyref, f->keyref_len);
        p = wr_blob(p, f->md, f->md_len);
        break;
    case SIGNER_T_SIGN:
        p = wr_u32(p, f->key_id);
        if (f->data_len > 0)
            memcpy(p, f->data, f->data_len);
        p += f->data_len;
        break;
    case SIGNER_T_SIGN_PAIR:
        p = wr_u32(p, f->key_id);
        p = wr_u32(p, f->key2_id);
        p = wr_u32(p, f->off);
        p = wr_u32(p, f->olen);
        p = wr_u32(p, (uint32_t)f->data_len);
        memcpy(p, f->data, f->data_len);
        p += f->data_len;
        memcpy(p, f->data2, f->data2_len);
        p += f->data2_len;
        break;
    case SIGNER_T_SIG_PAIR:
        p = wr_blob(p, f->data, f->data_len);
        p = wr_blob(p, f->data2, f->data2_len);
        break;
    case SIGNER_T_KEY:
        p = wr_u32(p, f->key_id);
        *p++ = f->flags;
        p = wr_blob(p, f->md, f->md_len);
        p = wr_blob(p, f->pub, f->pub_len);
        p = wr_blob(p, f->alg, f->alg_len);
        break;
    case SIGNER_T_SIG:
        p = wr_blob(p, f->data, f->data_len);
        break;
    case SIGNER_T_ERROR:
        *p++ = f->code;
        p = wr_blob(p, f->msg, f->msg_len);
        break;
    default:
        break;
    }
    *outlen = (size_t)(p - buf);
    return *outlen == n;
}
