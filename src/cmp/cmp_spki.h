/*
 * Public keys from certificate requests without OpenSSL 3.0's generic
 * decoder (which costs ~100 us per key): EC named curves and EdDSA/XDH keys
 * are imported directly from their parameters; other types fall back to
 * the decoder.
 */
#ifndef CMPCA_CMP_SPKI_H
#define CMPCA_CMP_SPKI_H

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_reason.h"

#include <openssl/evp.h>

/* Builds the key of |spki| into a new *pkey and, if |xpk| is not NULL, a
 * new X509_PUBKEY carrying the same encoding (with no decoding). Returns 1,
 * or 0 if the key is malformed, not on its curve, or of an unsupported form
 * (explicit curve parameters, unused bits). */
int cmp_spki_get1(const CMP_RAWSPKI *spki, EVP_PKEY **pkey, X509_PUBKEY **xpk);

/* Returns CMP_R_OK if |alg| (a SubjectPublicKeyInfo algorithm) is a key
 * type cmpca issues certificates for: rsaEncryption (parameters NULL or
 * absent), id-ecPublicKey on the named curve P-256, P-384 or P-521,
 * Ed25519 or Ed448 (parameters absent). Anything else - RSASSA-PSS keys,
 * other or explicit curves, X25519/X448 (no signature POP), DSA, unknown
 * OIDs - is CMP_R_BAD_KEY_ALG (badAlg). Key sizes are the profile's
 * business (ca_profile_check_key: badCertTemplate). */
enum cmp_reason cmp_spki_check_alg(const X509_ALGOR *alg);

/* cmp_spki_check_alg, then cmp_spki_get1: CMP_R_OK with *pkey (and *xpk
 * if not NULL) set, CMP_R_BAD_KEY_ALG, or CMP_R_BAD_PUBLIC_KEY
 * (badCertTemplate) for a key of a supported type that does not import. */
enum cmp_reason cmp_spki_get1_checked(const CMP_RAWSPKI *spki, EVP_PKEY **pkey,
                                      X509_PUBKEY **xpk);

#endif
