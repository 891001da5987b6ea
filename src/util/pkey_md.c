/*
 * The digest to sign with for a key (see pkey_md.h).
 */
#include "util/pkey_md.h"

const char *pkey_default_md(const EVP_PKEY *pkey)
{
    int bits;

    if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(pkey, "EC")) {
        bits = EVP_PKEY_get_bits(pkey);
        return bits > 384 ? "SHA512" : bits > 256 ? "SHA384" : "SHA256";
    }
    return "SHA256";
}
