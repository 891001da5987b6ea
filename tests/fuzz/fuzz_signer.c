/*
 * libFuzzer target for the signer protocol's frame parser: any bytes must
 * decode or be refused without a crash or an out-of-bounds read; a frame
 * that decodes must encode back to exactly the same bytes and decode again
 * to the same fields. The first octets also go through the length prefix
 * check. A SIGN_PAIR's message and certificate then go through der_splice()
 * as the signer process would put them together: refused, or one DER
 * element exactly as long as the result.
 */
#include "signer/signer_proto.h"
#include "util/der_splice.h"

#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct signer_frame f, g;
    uint8_t *buf;
    size_t len, n;

    if (size >= SIGNER_HDR_LEN) {
        if (signer_frame_len(data, SIGNER_MAX_FRAME, &len)
            && (len < SIGNER_MIN_FRAME || len > SIGNER_MAX_FRAME))
            abort();
        (void)signer_frame_len(data, SIGNER_MAX_REPLY - SIGNER_HDR_LEN, &len);
    }
    if (size > (1u << 20))
        return 0;
    if (!signer_frame_decode(data, size, &f))
        return 0;
    n = signer_frame_size(&f);
    if (n != size + SIGNER_HDR_LEN || (buf = malloc(n)) == NULL)
        abort();
    if (!signer_frame_encode(&f, buf, n, &len) || len != n
        || memcmp(buf + SIGNER_HDR_LEN, data, size) != 0
        || !signer_frame_decode(buf + SIGNER_HDR_LEN, size, &g)
        || g.type != f.type || g.id != f.id || g.key_id != f.key_id
        || g.keyref_len != f.keyref_len || g.md_len != f.md_len
        || g.data_len != f.data_len || g.pub_len != f.pub_len
        || g.alg_len != f.alg_len || g.msg_len != f.msg_len
        || g.data2_len != f.data2_len || g.key2_id != f.key2_id
        || g.off != f.off || g.olen != f.olen)
        abort();
    free(buf);
    if (f.type == SIGNER_T_SIGN_PAIR) {
        unsigned char *out = NULL;
        const unsigned char *p;
        size_t outlen = 0;
        long clen = 0;
        int tag, xclass;

        if (der_splice(f.data2, f.data2_len, f.off, f.olen, f.data,
                       f.data_len, &out, &outlen)) {
            p = out;
            if (outlen > LONG_MAX
                || (ASN1_get_object(&p, &clen, &tag, &xclass, (long)outlen)
                    & 0x80) != 0
                || (size_t)(p - out) + (size_t)clen != outlen
                || outlen < f.data_len)
                abort();
            OPENSSL_free(out);
        } else if (out != NULL || outlen != 0) {
            abort();
        }
        ERR_clear_error();
    }
    return 0;
}
