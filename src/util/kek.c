/*
 * AES-256-GCM sealing of secrets at rest with a key-encryption key read
 * from a file or the environment (see kek.h).
 */
#include "util/kek.h"

#include "util/secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kek {
    unsigned char key[KEK_KEY_LEN];
};

KEK *kek_new_raw(const unsigned char key[KEK_KEY_LEN])
{
    KEK *k = OPENSSL_secure_malloc(sizeof(*k));

    if (k == NULL && (k = OPENSSL_malloc(sizeof(*k))) == NULL)
        return NULL;
    memcpy(k->key, key, KEK_KEY_LEN);
    return k;
}

void kek_free(KEK *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k, sizeof(*k));
    if (CRYPTO_secure_allocated(k))
        OPENSSL_secure_free(k);
    else
        OPENSSL_free(k);
}

static int kek_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kek_load(const char *spec, KEK **out, char *err, size_t errlen)
{
    char buf[SECRET_MAX + 1];
    unsigned char key[KEK_KEY_LEN];
    size_t i, len;
    int ok = 0;

    *out = NULL;
    if (spec == NULL
        || (strncmp(spec, "file:", 5) != 0 && strncmp(spec, "env:", 4) != 0)) {
        snprintf(err, errlen, "secret_kek must be file:PATH or env:NAME");
        return 0;
    }
    if (!secret_read(spec, "secret_kek", buf, sizeof(buf), err, errlen))
        return 0;
    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    if (len != 2 * KEK_KEY_LEN) {
        snprintf(err, errlen, "secret_kek: expected %d hex digits (e.g. "
                 "`openssl rand -hex 32`), got %zu characters",
                 2 * KEK_KEY_LEN, len);
        goto end;
    }
    for (i = 0; i < KEK_KEY_LEN; i++) {
        int hi = kek_hex((unsigned char)buf[2 * i]);
        int lo = kek_hex((unsigned char)buf[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "secret_kek: not hexadecimal");
            goto end;
        }
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    if ((*out = kek_new_raw(key)) == NULL) {
        snprintf(err, errlen, "secret_kek: out of memory");
        goto end;
    }
    ok = 1;
 end:
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(key, sizeof(key));
    return ok;
}

void kek_clear_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

/* One AES-256-GCM pass: |enc| 1 seals, 0 opens (|tag| checked). */
static int kek_gcm(const KEK *k, int enc, const unsigned char *nonce,
                   const char *aad, const unsigned char *in, size_t len,
                   unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = 0;

    if (c == NULL || len > (size_t)0x7fffffff)
        goto end;
    if (!EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc)
        || !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KEK_NONCE_LEN, NULL)
        || !EVP_CipherInit_ex(c, NULL, NULL, k->key, nonce, enc)
        || !EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad,
                             (int)strlen(aad))
        || (len > 0 && !EVP_CipherUpdate(c, out, &n, in, (int)len)))
        goto end;
    if (!enc && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KEK_TAG_LEN,
                                     tag))
        goto end;
    if (EVP_CipherFinal_ex(c, out + (len > 0 ? n : 0), &n) <= 0)
        goto end;
    if (enc && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KEK_TAG_LEN, tag))
        goto end;
    ok = 1;
 end:
    EVP_CIPHER_CTX_free(c);
    return ok;
}

int kek_seal(const KEK *k, const char *aad, const unsigned char *pt,
             size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf;

    *out = NULL;
    *out_len = 0;
    if (len > (size_t)0x7fffffff - KEK_OVERHEAD
        || (buf = malloc(len + KEK_OVERHEAD)) == NULL)
        return 0;
    if (RAND_bytes(buf, KEK_NONCE_LEN) <= 0
        || !kek_gcm(k, 1, buf, aad, pt, len, buf + KEK_NONCE_LEN,
                    buf + KEK_NONCE_LEN + len)) {
        kek_clear_free(buf, len + KEK_OVERHEAD);
        return 0;
    }
    *out = buf;
    *out_len = len + KEK_OVERHEAD;
    return 1;
}

int kek_open(const KEK *k, const char *aad, const unsigned char *in,
             size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf, tag[KEK_TAG_LEN];
    size_t n;

    *out = NULL;
    *out_len = 0;
    if (len < KEK_OVERHEAD)
        return 0;
    n = len - KEK_OVERHEAD;
    if ((buf = malloc(n + 1)) == NULL)
        return 0;
    memcpy(tag, in + KEK_NONCE_LEN + n, KEK_TAG_LEN);
    if (!kek_gcm(k, 0, in, aad, in + KEK_NONCE_LEN, n, buf, tag)) {
        kek_clear_free(buf, n + 1);
        return 0;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 1;
}
