/*
 * CRMF certificate requests in cmpca's types: proof of possession, the
 * oldCertID control, and conversion to and from OpenSSL's OSSL_CRMF_MSGS
 * (for tools and tests that use OpenSSL's CRMF API).
 */
#ifndef CMPCA_CMP_CRMF_H
#define CMPCA_CMP_CRMF_H

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_reason.h"

#include <openssl/crmf.h>
#include <openssl/x509.h>

/* Verifies the proof of possession of |msg| with the requested key |pkey|:
 * only POPOSigningKey over DER(certReq) (RFC 4211 4.1, no poposkInput) is
 * accepted. raVerified, missing POPO, the encipherment/agreement forms and
 * a signature that does not verify give CMP_R_BAD_POP; a signature
 * algorithm cmp_protect_check_sig_alg refuses CMP_R_BAD_POP_ALG (badAlg);
 * an allowed algorithm for another key type than |pkey|'s (ECDSA for an RSA
 * key, PKCS#1 v1.5 for an RSASSA-PSS key, ...) CMP_R_POP_ALG_KEY_MISMATCH
 * (badPOP). */
enum cmp_reason cmp_crmf_verify_popo(const CMP_CERTREQMSG *msg, EVP_PKEY *pkey);

/* How the authInfo of a POPOSigningKeyInput is checked (RFC 4211 4.1). */
struct cmp_popo_auth {
    /* sender: the request's authenticated sender (its PKIHeader sender);
     * NULL refuses a sender authInfo */
    const GENERAL_NAME *sender;
    /* publicKeyMAC: verifies the PKMACValue (|alg|, |value|) computed
     * over |spki| (DER of the SubjectPublicKeyInfo) with the request's
     * shared secret; returns 1 if it verifies. NULL (no MAC secret known
     * for the request): refused badPOP. */
    int (*pkmac)(void *arg, const X509_ALGOR *alg,
                 const ASN1_BIT_STRING *value, const unsigned char *spki,
                 size_t spki_len);
    void *pkmac_arg;
};
/*
 * As cmp_crmf_verify_popo, and a POPOSigningKey with poposkInput is
 * verified per RFC 4211 4.1: the template has no subject, the signature
 * by |pkey| is over DER(POPOSigningKeyInput), whose publicKey is the
 * template's key (|pkey|) and whose authInfo is |auth|'s sender or a
 * publicKeyMAC |auth| verifies. Any mismatch (or |auth| NULL):
 * CMP_R_BAD_POP.
 */
enum cmp_reason cmp_crmf_verify_popo_auth(const CMP_CERTREQMSG *msg,
                                          EVP_PKEY *pkey,
                                          const struct cmp_popo_auth *auth);

/* Returns 1 if signature algorithm |alg| is one for keys of |pkey|'s type
 * (RSA keys: PKCS#1 v1.5 or PSS; RSASSA-PSS keys: PSS; EC: ECDSA; Ed25519,
 * Ed448: themselves), else 0. */
int cmp_sig_alg_fits_key(const X509_ALGOR *alg, const EVP_PKEY *pkey);

/* The checks of a p10cr's CSR, in this order: the key algorithm
 * (cmp_spki_check_alg: CMP_R_BAD_KEY_ALG), the key imports
 * (CMP_R_BAD_PUBLIC_KEY), the CSR signature algorithm is allowed
 * (CMP_R_BAD_POP_ALG), fits the key (CMP_R_POP_ALG_KEY_MISMATCH) and the
 * self-signature verifies (CMP_R_BAD_POP). On CMP_R_OK *pkey is the CSR's
 * key (borrowed from |csr|), else NULL. */
enum cmp_reason cmp_p10_verify_pop(X509_REQ *csr, EVP_PKEY **pkey);

/* Returns the oldCertID control of |msg| (a new object), NULL if absent or
 * malformed; *malformed is set to 1 in the latter case. */
OSSL_CRMF_CERTID *cmp_crmf_get1_old_cert_id(const CMP_CERTREQMSG *msg,
                                            int *malformed);

/* Returns |reqs| as a new OSSL_CRMF_MSGS (via DER), or NULL. */
OSSL_CRMF_MSGS *cmp_crmf_get1_ossl(const STACK_OF(CMP_CERTREQMSG) *reqs);
/* Replaces |*reqs| with the content of |ossl| (via DER). Returns 1 or 0. */
int cmp_crmf_set1_ossl(STACK_OF(CMP_CERTREQMSG) **reqs,
                       const OSSL_CRMF_MSGS *ossl);

#endif
