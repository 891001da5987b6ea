/*
 * The key-encryption key that seals secrets kept in the store (mac mode's
 * device secrets): AES-256-GCM, a fresh 96-bit nonce per seal, the
 * record's name as associated data. The key comes from "file:PATH" or
 * "env:NAME" (64 hex digits), never from the configuration text.
 */
#ifndef CMPCA_UTIL_KEK_H
#define CMPCA_UTIL_KEK_H

#include <stddef.h>

#define KEK_KEY_LEN 32
#define KEK_NONCE_LEN 12
#define KEK_TAG_LEN 16
/* Bytes kek_seal adds to the plaintext. */
#define KEK_OVERHEAD (KEK_NONCE_LEN + KEK_TAG_LEN)

typedef struct kek KEK;

/* Reads the key named by |spec| ("file:PATH" or "env:NAME": 64 hex
 * digits, 32 octets) into *out. Returns 1, or 0 with a reason in |err|. */
int kek_load(const char *spec, KEK **out, char *err, size_t errlen);
/* A KEK from 32 raw octets (tests). Returns NULL on allocation failure. */
KEK *kek_new_raw(const unsigned char key[KEK_KEY_LEN]);
/* Wipes and frees the key (NULL harmless). */
void kek_free(KEK *k);

/* Seals |len| bytes at |pt| bound to |aad| (a NUL-terminated name, e.g.
 * the secret's reference) into *out (malloc'ed, nonce || ciphertext ||
 * tag, *out_len = len + KEK_OVERHEAD). Returns 1 on success. */
int kek_seal(const KEK *k, const char *aad, const unsigned char *pt,
             size_t len, unsigned char **out, size_t *out_len);
/* Opens what kek_seal made with the same key and |aad| into *out
 * (malloc'ed; free with kek_clear_free), *out_len. Returns 1, or 0 if the
 * key, the name or the bytes differ. */
int kek_open(const KEK *k, const char *aad, const unsigned char *in,
             size_t len, unsigned char **out, size_t *out_len);
/* Wipes |len| bytes at |p| and frees it (NULL harmless). */
void kek_clear_free(void *p, size_t len);

#endif
