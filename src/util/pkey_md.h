/*
 * The digest every part of cmpca signs with for a given key: the CA for
 * certificates and CRLs, the CMP layer for message protection, the vendor
 * factory for device certificates.
 */
#ifndef CMPCA_UTIL_PKEY_MD_H
#define CMPCA_UTIL_PKEY_MD_H

#include <openssl/evp.h>

/* Returns the digest name to sign with |pkey|: NULL for Ed25519/Ed448
 * (no separate digest), "SHA512" for EC keys over 384 bits, "SHA384" for
 * EC keys over 256 bits, else "SHA256". */
const char *pkey_default_md(const EVP_PKEY *pkey);

#endif
