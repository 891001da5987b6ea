/*
 * Building CMP responses from a request: the response header (echoes and
 * fresh nonce), the bodies cmpca sends, and extraCerts in the required
 * order. Protection is applied afterwards with cmp_protect_sign().
 */
#ifndef CMPCA_CMP_BUILD_H
#define CMPCA_CMP_BUILD_H

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_reason.h"

#include <time.h>

/* Returns a new response of |body_type| (body content still empty except
 * for pkiconf) answering |req| (may be NULL when the request could not be
 * decoded): pvno echoed (2 if |req| has none usable), sender = subject of
 * |signer| as directoryName, senderKID = its subjectKeyIdentifier,
 * recipient = request sender (NULL-DN if none), messageTime = |now|,
 * transactionID echoed, a fresh 16-octet senderNonce, recipNonce = the
 * request's senderNonce. NULL on allocation failure. */
/* The same, but when |names| is 0 the sender and recipient GeneralNames
 * stay empty placeholders (nothing copied) for a caller that points them
 * at names it owns while it encodes the message and puts the placeholders
 * back before anything else sees it (the server's responses: copying two
 * names cost more than building the rest of the header). */
CMP_MSG *cmp_rsp_new_ex(const CMP_MSG *req, int body_type, const X509 *signer,
                        time_t now, int names);
CMP_MSG *cmp_rsp_new(const CMP_MSG *req, int body_type, const X509 *signer,
                     time_t now);

/* Adds implicitConfirm to generalInfo. Returns 1 on success. */
int cmp_hdr_push_implicit_confirm(CMP_HDR *hdr);
/* Adds confirmWaitTime (GeneralizedTime |deadline|) to generalInfo. */
int cmp_hdr_push_confirm_wait_time(CMP_HDR *hdr, time_t deadline);

/* Returns a new PKIStatusInfo with |status|, failInfo bit |fail_bit| (none
 * if < 0) and |text| (none if NULL). */
CMP_PKISI *cmp_pkisi_new(int status, int fail_bit, const char *text);

/* Fills an ip/cp/kup body of |rsp| with one CertResponse: |cert_req_id|,
 * status |si| (taken over), the certificate as DER |cert|/|cert_len|
 * (copied; NULL for none; sent as it is) and caPubs |ca_pubs| (copied
 * references, may be NULL). Returns 1 on success; |si| is freed on
 * failure too. */
int cmp_body_set_certrep(CMP_MSG *rsp, long cert_req_id, CMP_PKISI *si,
                         const unsigned char *cert, size_t cert_len,
                         const STACK_OF(X509) *ca_pubs);
/* Fills an error body for refusal |reason| with an optional |detail| text
 * appended to the reason's text. Returns 1 on success. */
int cmp_body_set_error(CMP_MSG *rsp, enum cmp_reason reason,
                       const char *detail);
/* Fills an rp body with one status |si| (taken over, freed on failure). */
int cmp_body_set_rp(CMP_MSG *rsp, CMP_PKISI *si);
/* Fills a pollRep body for |cert_req_id| asking to poll after |seconds|. */
int cmp_body_set_pollrep(CMP_MSG *rsp, long cert_req_id, long seconds);
/* Fills a genp body with |itavs| (taken over, freed on failure). */
int cmp_body_set_genp(CMP_MSG *rsp, STACK_OF(CMP_ITAV) *itavs);

/* Encodes the extraCerts element ([1] EXPLICIT SEQUENCE OF Certificate)
 * that cmp_msg_set1_extracerts() would set for the same certificates, for
 * messages assembled by cmp_protect_sign_encode(). Sets *der (OPENSSL_free
 * it) and *len; both stay NULL/0 when there is no certificate. Returns 1
 * or 0. */
int cmp_extracerts_der(X509 *first, const STACK_OF(X509) *chain,
                       const STACK_OF(X509) *extra, unsigned char **der,
                       size_t *len);

/* Sets extraCerts to |first|, then |chain|, then |extra|, skipping
 * duplicates (copied references; any may be NULL). Returns 1 on success. */
int cmp_msg_set1_extracerts(CMP_MSG *msg, X509 *first,
                            const STACK_OF(X509) *chain,
                            const STACK_OF(X509) *extra);

/* Returns a new nested message (RFC 9810 5.1.3.4) wrapping |inner| (taken
 * over on success) as an RA forwards requests: sender = subject of
 * |signer|, senderKID = its SKI, recipient = the first inner message's,
 * extraCerts = |signer| then |chain|. |single| (one inner message): the
 * wrapper repeats its transactionID and senderNonce (RFC 9483 5.2.2.1);
 * otherwise (a batch) both are fresh. Unprotected: sign it with
 * cmp_protect_sign(). NULL on failure (|inner| is then still the
 * caller's). */
CMP_MSG *cmp_nested_new(STACK_OF(CMP_MSG) *inner, int single,
                        const X509 *signer, const STACK_OF(X509) *chain,
                        time_t now);

/* Returns a new ITAV of |nid| with |value| (taken over; may be NULL). */
CMP_ITAV *cmp_itav_new(int nid, ASN1_TYPE *value);

#endif
