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

/* Verifies the proof of possession of |msg| with the requested key |pkey|:
 * only POPOSigningKey over DER(certReq) (RFC 4211 4.1, no poposkInput) with
 * an allowed signature algorithm is accepted. raVerified, missing POPO and
 * the encipherment/agreement forms give CMP_R_BAD_POP. */
enum cmp_reason cmp_crmf_verify_popo(const CMP_CERTREQMSG *msg, EVP_PKEY *pkey);

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
