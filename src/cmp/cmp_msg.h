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

/* DER-encodes |msg| into a new OPENSSL_malloc'ed buffer. Returns 1 or 0. */
int cmp_msg_encode(const CMP_MSG *msg, unsigned char **der, size_t *len);

/* Checks the header of a request: pvno 2 or 3, transactionID present and of
 * sane length, senderNonce 16..64 octets, sender a directoryName and, if
 * |tolerance| > 0 and messageTime is present, messageTime within |tolerance|
 * seconds of |now|. Returns CMP_R_OK or the reason. */
enum cmp_reason cmp_hdr_check_request(const CMP_HDR *hdr, time_t now,
                                      long tolerance);

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
