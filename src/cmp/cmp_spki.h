/*
 * Public keys from certificate requests without OpenSSL 3.0's generic
 * decoder (which costs ~100 us per key): EC named curves and EdDSA/XDH keys
 * are imported directly from their parameters; other types fall back to
 * the decoder.
 */
#ifndef CMPCA_CMP_SPKI_H
#define CMPCA_CMP_SPKI_H

#include "asn1/cmp_asn1.h"

#include <openssl/evp.h>

/* Builds the key of |spki| into a new *pkey and, if |xpk| is not NULL, a
 * new X509_PUBKEY carrying the same encoding (with no decoding). Returns 1,
 * or 0 if the key is malformed, not on its curve, or of an unsupported form
 * (explicit curve parameters, unused bits). */
int cmp_spki_get1(const CMP_RAWSPKI *spki, EVP_PKEY **pkey, X509_PUBKEY **xpk);

#endif
