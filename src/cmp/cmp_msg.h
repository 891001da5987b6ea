/*
 * Decoding and encoding of PKIMessages with limits and strict DER, plus the
 * header checks every request must pass and small accessors. No I/O.
 */
#ifndef CMPCA_CMP_MSG_H
#define CMPCA_CMP_MSG_H

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_reason.h"

#include <stddef.h>
#include <time.h>

/* Bounds applied while decoding. Zero fields take the defaults below. */
struct cmp_limits {
    size_t max_msg_len;     /* bytes of one PKIMessage (default 65536) */
    int max_extra_certs;    /* extraCerts/caPubs entries (default 16) */
    int max_requests;       /* CertReqMsgs, RevDetails, CertStatus (default 8) */
    int max_itavs;          /* generalInfo / genm entries (default 16) */
    int max_nesting;        /* nested PKIMessages depth (default 2) */
};

#define CMP_DEFAULT_MAX_MSG_LEN 65536
#define CMP_NONCE_MIN 16    /* 128 bits, RFC 9810 5.1.1 */
#define CMP_NONCE_MAX 64
#define CMP_TID_MIN 1
#define CMP_TID_MAX 64

/* Decodes |len| bytes at |der| into *out. Rejects input over the length
 * limit, undecodable input, trailing bytes, non-DER encodings, empty
 * SIZE(1..MAX) sequences and counts over the limits. DER is checked twice:
 * every TLV at every depth by cmp_der_check (also inside Names,
 * certificates, CSRs and ANY values, whose received bytes OpenSSL keeps),
 * and the message must re-encode with the templates to the same bytes
 * (DEFAULT values, forms under IMPLICIT tags); either failing gives
 * CMP_R_NOT_CANONICAL. Returns CMP_R_OK or the reason; *out is NULL on
 * failure. */
enum cmp_reason cmp_msg_decode(const unsigned char *der, size_t len,
                               const struct cmp_limits *limits, CMP_MSG **out);

/* Default byte bound of the certificate decode cache. */
#define CMP_CERT_CACHE_DEFAULT_MAX (16u << 20)

/* The certificate decode cache: cmp_msg_decode takes the certificates of
 * extraCerts from it (one SHA-256 over the DER instead of a decode) but
 * never adds to it. The server core calls this after |cert| was vouched
 * for - its path validated to a trust anchor, or it is a certificate
 * cmpca issued and found in its store - so that the next request carrying
 * the same certificate skips OpenSSL's decoding (about 100 us, mostly the
 * public key). Takes its own reference. Bounded by bytes (about twice the
 * DER plus 2 KiB per entry, see cmp_cert_cache_set_max); older entries
 * make room. Thread-safe. Returns 1 if |cert| is cached now, 0 if not (too
 * large, or out of memory). */
int cmp_cert_cache_keep(X509 *cert);
/* Sets the cache's byte bound (default CMP_CERT_CACHE_DEFAULT_MAX) and
 * evicts entries down to it; 0 disables caching. */
void cmp_cert_cache_set_max(size_t max_bytes);
/* Reports the number of cached certificates and the bytes charged for
 * them (either pointer may be NULL). */
void cmp_cert_cache_stats(size_t *entries, size_t *bytes);
/* Empties the cache (the bound stays). */
void cmp_cert_cache_clear(void);

/* DER-encodes |msg| into a new OPENSSL_malloc'ed buffer. Returns 1 or 0. */
int cmp_msg_encode(const CMP_MSG *msg, unsigned char **der, size_t *len);

/* Checks a request before anything else of it is looked at, in this
 * order (RFC 9483 3.1, 3.5): protection present (CMP_R_UNPROTECTED) with
 * header.protectionAlg (CMP_R_NO_PROTECTION_ALG) and, for signature
 * protection, senderKID (CMP_R_NO_SENDER_KID) - all badMessageCheck, so a
 * message without protection is refused as such whatever else is wrong
 * with it; then cmp_hdr_check_request_ex with |first| taken from the body
 * type (cmp_body_starts_transaction). Returns CMP_R_OK or the reason. */
enum cmp_reason cmp_msg_check_request(const CMP_MSG *msg, time_t now,
                                      long tolerance);

/* Checks the header of a request: pvno 2 or 3, transactionID present and of
 * sane length, senderNonce 16..64 octets, recipNonce at most 64 octets and,
 * if |first| (the message opens a transaction), absent
 * (CMP_R_RECIP_NONCE_IN_FIRST, badRecipientNonce), sender a directoryName,
 * if |tolerance| > 0 and messageTime is present, messageTime within
 * |tolerance| seconds of |now|, senderKID present when protectionAlg is a
 * signature algorithm, and generalInfo as cmp_hdr_check_general_info(hdr, 1)
 * checks it. Returns CMP_R_OK or the reason. */
enum cmp_reason cmp_hdr_check_request_ex(const CMP_HDR *hdr, time_t now,
                                         long tolerance, int first);

/* cmp_hdr_check_request_ex with |first| 0 (kept for existing callers). */
enum cmp_reason cmp_hdr_check_request(const CMP_HDR *hdr, time_t now,
                                      long tolerance);

/* Checks generalInfo: implicitConfirm must carry the value NULL
 * (CMP_R_IMPLICIT_CONFIRM_VALUE), implicitConfirm and confirmWaitTime
 * together are refused (CMP_R_IMPLICIT_AND_WAIT) and, if |request|,
 * confirmWaitTime is refused (CMP_R_CONFIRM_WAIT_IN_REQUEST); all
 * badRequest. Other infoTypes are ignored. Returns CMP_R_OK or the reason. */
enum cmp_reason cmp_hdr_check_general_info(const CMP_HDR *hdr, int request);

/* Returns 1 if a message of body |type| opens a transaction (ir, cr, kur,
 * p10cr, rr, genm, and the unserved krr and ccr), 0 if it continues one
 * (certConf, pollReq, error, pkiConf, ...) or is a response or nested. */
int cmp_body_starts_transaction(int type);

/* Returns the body type name ("ir", "certConf", ...), never NULL. */
const char *cmp_body_type_name(int type);
/* Returns the pvno of |hdr| (2 or 3; anything else as read, -1 if absent). */
int cmp_hdr_get_pvno(const CMP_HDR *hdr);
/* Returns the sender's directoryName, or NULL if the sender is another kind. */
const X509_NAME *cmp_hdr_get0_sender_name(const CMP_HDR *hdr);
/* Returns 1 if generalInfo carries implicitConfirm. */
int cmp_hdr_has_implicit_confirm(const CMP_HDR *hdr);
/* Formats up to the first 16 octets of |os| as hex into |buf|; returns buf. */
char *cmp_hex(const ASN1_OCTET_STRING *os, char *buf, size_t buflen);

/* Returns the failInfo bits of a PKIStatusInfo as an int bit mask. */
int cmp_pkisi_get_failinfo(const CMP_PKISI *si);
/* Returns the status of a PKIStatusInfo, or -1 if malformed. */
int cmp_pkisi_get_status(const CMP_PKISI *si);

/* The certificate of a CertOrEncCert as received: its DER (borrowed from
 * |c|, *len set), or NULL if |c| holds no plain certificate. */
const unsigned char *cmp_certorenccert_get0_der(const CMP_CERTORENCCERT *c,
                                                size_t *len);
/* The certificate of a CertOrEncCert decoded (the caller frees it), or
 * NULL if there is none or it does not decode as exactly one Certificate. */
X509 *cmp_certorenccert_get1_cert(const CMP_CERTORENCCERT *c);

#endif
