/*
 * PKIMessage protection: signing and verifying over DER(ProtectedPart),
 * finding the protecting certificate in extraCerts, the signature algorithm
 * allow-list, PasswordBasedMac and PBMAC1, and certHash (RFC 9810 5.3.18).
 */
#ifndef CMPCA_CMP_PROTECT_H
#define CMPCA_CMP_PROTECT_H

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_reason.h"

#include <openssl/evp.h>

/* Signs |data| of type |it| into |sig| and fills |alg1| (and |alg2| if not
 * NULL) with the signature AlgorithmIdentifier, like ASN1_item_sign_ctx.
 * Returns 1 on success. The CA's signing interface has this shape. */
typedef int (*cmp_sign_fn)(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                           X509_ALGOR *alg2, ASN1_BIT_STRING *sig,
                           const void *data);

/* Sets header.protectionAlg and protection of |msg| by signing
 * DER(ProtectedPart) through |sign|. Returns 1 on success. */
int cmp_protect_sign(CMP_MSG *msg, cmp_sign_fn sign, void *arg);

/* Signs the |tbslen| bytes at |tbs| into |sig| (room for *siglen bytes),
 * sets *siglen. Returns 1 on success. ca_signer_sign_buf() has this shape. */
typedef int (*cmp_sign_buf_fn)(void *arg, const unsigned char *tbs,
                               size_t tbslen, unsigned char *sig,
                               size_t *siglen);

/* Protects |msg| and encodes it in one pass, for responses: sets
 * header.protectionAlg from the DER AlgorithmIdentifier |alg|/|alg_len|,
 * encodes ProtectedPart once, signs it through |sign| (signatures of at
 * most |max_sig| bytes) and builds the PKIMessage from those same bytes,
 * the protection and |extra|/|extra_len|: the extraCerts element as
 * cmp_extracerts_der() encodes it (NULL/0: none; msg->extraCerts must then
 * be empty, it is not encoded). The result is the DER that i2d_CMP_MSG
 * would produce for the protected message. Sets *der (OPENSSL_free it) and
 * *len. Returns 1 on success. */
int cmp_protect_sign_encode(CMP_MSG *msg, const unsigned char *alg,
                            size_t alg_len, cmp_sign_buf_fn sign, void *arg,
                            size_t max_sig, const unsigned char *extra,
                            size_t extra_len, unsigned char **der,
                            size_t *len);

/* A cmp_sign_fn for a plain EVP_PKEY passed as |arg| (tests, tools,
 * clients); the digest follows the key (see pkey_default_md). */
int cmp_protect_sign_pkey_fn(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                             X509_ALGOR *alg2, ASN1_BIT_STRING *sig,
                             const void *data);

/* Returns CMP_R_OK if |alg| is an allowed signature algorithm of RFC 9481
 * that libcrypto 3.0 can verify: RSA PKCS#1 v1.5 with SHA-224/256/384/512,
 * RSASSA-PSS with SHA-256/384/512 (parameters present, MGF1 with the same
 * hash, trailerField 1), ECDSA with SHA-224/256/384/512 and with
 * SHAKE128/SHAKE256 (RFC 8692, parameters absent), Ed25519, Ed448.
 * CMP_R_BAD_ALG otherwise: SHA-1, MD5, DSA, RSASSA-PSS with SHAKE128/256
 * (its mask generation function is SHAKE, which libcrypto 3.0's PSS does
 * not offer), unknown OIDs. CMP_R_UNPROTECTED if |alg| is NULL. */
enum cmp_reason cmp_protect_check_sig_alg(const X509_ALGOR *alg);

/* Returns the NID of the key type signature algorithm |alg| is for
 * (NID_rsaEncryption, NID_rsassaPss, NID_X9_62_id_ecPublicKey,
 * NID_ED25519, NID_ED448, ...), NID_undef if unknown. */
int cmp_protect_sig_alg_key_type(const X509_ALGOR *alg);

/* Verifies signature |sig| with algorithm |alg| over DER(|data|) of type
 * |it| with |pkey|, like ASN1_item_verify_ex, and also for ECDSA with
 * SHAKE128/SHAKE256 (SHAKE digest of 32/64 octets, then ECDSA). Does not
 * check that |alg| is allowed. Returns 1 if it verifies, else 0. */
int cmp_protect_verify_item(const ASN1_ITEM *it, const X509_ALGOR *alg,
                            const ASN1_BIT_STRING *sig, const void *data,
                            EVP_PKEY *pkey);

/* For ECDSA with SHAKE128/SHAKE256 (which ASN1_item_verify does not know):
 * verifies |sig| over the |len| bytes at |tbs| with |pkey|. Returns 1 if
 * it verifies, 0 if not, -1 if |alg| is not ECDSA with SHAKE. */
int cmp_protect_verify_shake_der(const X509_ALGOR *alg,
                                 const ASN1_BIT_STRING *sig,
                                 const unsigned char *tbs, size_t len,
                                 EVP_PKEY *pkey);

/* Returns 1 if |msg| is MAC-protected (PasswordBasedMac or PBMAC1). */
int cmp_protect_is_mac(const CMP_MSG *msg);

/* Finds the protecting certificate in extraCerts (any position) by
 * senderKID, else by sender name, and checks sender and senderKID against
 * it. On CMP_R_OK *cert is set (borrowed from |msg|). Lenient, for clients
 * reading responses; requests go through cmp_protect_find_request_signer. */
enum cmp_reason cmp_protect_find_signer(const CMP_MSG *msg, X509 **cert);

/* The protecting certificate of a signature-protected request, as RFC 9483
 * 3.1 requires it: senderKID present (CMP_R_NO_SENDER_KID), equal to the
 * subjectKeyIdentifier of a certificate in extraCerts (any position; never
 * matched by name: CMP_R_SENDER_KID_MISMATCH if a certificate with the
 * sender's name is there, else CMP_R_NO_SIGNER_CERT), whose subject is the
 * sender (CMP_R_SENDER_MISMATCH). All badMessageCheck. On CMP_R_OK *cert
 * is set (borrowed from |msg|). */
enum cmp_reason cmp_protect_find_request_signer(const CMP_MSG *msg,
                                                X509 **cert);

/* Verifies the signature protection of |msg| with the public key of
 * |cert|: protection present, algorithm allowed, signature correct.
 * Does not validate |cert| itself. */
enum cmp_reason cmp_protect_verify_sig(const CMP_MSG *msg, X509 *cert);

/* Bounds for accepting MAC parameters. Zero fields take the defaults. */
struct cmp_mac_limits {
    long min_iterations;     /* default 100 */
    long max_iterations;     /* default 100000 (DoS cap) */
    int min_salt_len;        /* default 8 */
};

/* Verifies PasswordBasedMac or PBMAC1 protection with |secret|; the MAC is
 * compared in constant time. */
enum cmp_reason cmp_protect_verify_mac(const CMP_MSG *msg,
                                       const unsigned char *secret,
                                       size_t secret_len,
                                       const struct cmp_mac_limits *limits);

/* Verifies a MAC |value| (PasswordBasedMac or PBMAC1 per |alg|) over
 * |data| with |secret|, e.g. a POPOSigningKeyInput publicKeyMAC (RFC 4211
 * 4.1) over the DER of the public key; compared in constant time. */
enum cmp_reason cmp_protect_verify_mac_data(const X509_ALGOR *alg,
                                            const ASN1_BIT_STRING *value,
                                            const unsigned char *secret,
                                            size_t secret_len,
                                            const unsigned char *data,
                                            size_t len,
                                            const struct cmp_mac_limits *limits);

/* Reads the iteration count of |msg|'s PasswordBasedMac or PBMAC1
 * parameters (nothing computed), so that a server can refuse a count above
 * its limit with a precise text. Returns 1 with *iterations set, 0 if the
 * message is not MAC-protected or the parameters do not decode. */
int cmp_protect_mac_iterations(const CMP_MSG *msg, int64_t *iterations);

/* Protects |msg| with PasswordBasedMac (RFC 4211 4.4): |owf| and |mac| are
 * digest names ("SHA256", "SHA1"); |iterations| and a fresh salt of 16
 * octets. Returns 1 on success. */
int cmp_protect_mac_pbm(CMP_MSG *msg, const unsigned char *secret,
                        size_t secret_len, const char *owf, const char *mac,
                        long iterations);

/* Protects |msg| with PBMAC1 (PBKDF2 with HMAC-SHA256, HMAC-SHA256), a fresh
 * 16-octet salt and |iterations|. Returns 1 on success. */
int cmp_protect_mac_pbmac1(CMP_MSG *msg, const unsigned char *secret,
                           size_t secret_len, long iterations);

/* Computes certHash of |cert| per RFC 9810 5.3.18: the hash of the
 * certificate's signature algorithm (SHA-512 for Ed25519, SHAKE256/512 bits
 * for Ed448). |out| must hold EVP_MAX_MD_SIZE bytes. Returns 1 on success. */
int cmp_certhash(const X509 *cert, unsigned char *out, unsigned int *out_len);

/* The same for a DER-encoded certificate, without decoding its public key
 * (much cheaper with OpenSSL 3.0). Returns 1 on success. */
int cmp_certhash_der(const unsigned char *der, size_t len, unsigned char *out,
                     unsigned int *out_len);
/* Returns 1 if |hash| (|len| octets) equals certHash of the DER-encoded
 * certificate |der|, comparing in constant time; 0 otherwise. */
int cmp_certhash_matches_der(const unsigned char *der, size_t der_len,
                             const unsigned char *hash, size_t len);

/* Returns 1 if |hash| (|len| octets) equals certHash of |cert|, comparing in
 * constant time; 0 otherwise. */
int cmp_certhash_matches(const X509 *cert, const unsigned char *hash,
                         size_t len);

#endif
