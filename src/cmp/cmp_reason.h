/*
 * Why a CMP request was refused, and the one table that maps each reason to
 * a PKIFailureInfo bit (RFC 9810 5.2.3), a text and an HTTP status. Every
 * layer reports a reason; only this table decides what the client sees.
 */
#ifndef CMPCA_CMP_REASON_H
#define CMPCA_CMP_REASON_H

/* PKIFailureInfo bit numbers. */
enum cmp_fail_bit {
    CMP_FAIL_BAD_ALG = 0, CMP_FAIL_BAD_MESSAGE_CHECK = 1,
    CMP_FAIL_BAD_REQUEST = 2, CMP_FAIL_BAD_TIME = 3, CMP_FAIL_BAD_CERT_ID = 4,
    CMP_FAIL_BAD_DATA_FORMAT = 5, CMP_FAIL_WRONG_AUTHORITY = 6,
    CMP_FAIL_INCORRECT_DATA = 7, CMP_FAIL_MISSING_TIMESTAMP = 8,
    CMP_FAIL_BAD_POP = 9, CMP_FAIL_CERT_REVOKED = 10,
    CMP_FAIL_CERT_CONFIRMED = 11, CMP_FAIL_WRONG_INTEGRITY = 12,
    CMP_FAIL_BAD_RECIPIENT_NONCE = 13, CMP_FAIL_TIME_NOT_AVAILABLE = 14,
    CMP_FAIL_UNACCEPTED_POLICY = 15, CMP_FAIL_UNACCEPTED_EXTENSION = 16,
    CMP_FAIL_ADD_INFO_NOT_AVAILABLE = 17, CMP_FAIL_BAD_SENDER_NONCE = 18,
    CMP_FAIL_BAD_CERT_TEMPLATE = 19, CMP_FAIL_SIGNER_NOT_TRUSTED = 20,
    CMP_FAIL_TRANSACTION_ID_IN_USE = 21, CMP_FAIL_UNSUPPORTED_VERSION = 22,
    CMP_FAIL_NOT_AUTHORIZED = 23, CMP_FAIL_SYSTEM_UNAVAIL = 24,
    CMP_FAIL_SYSTEM_FAILURE = 25, CMP_FAIL_DUPLICATE_CERT_REQ = 26,
    CMP_FAIL_MAX = 26
};

/* Reasons for refusing a message. CMP_R_OK means no refusal. */
enum cmp_reason {
    CMP_R_OK = 0,
    /* transport-level */
    CMP_R_BODY_TOO_LARGE,        /* HTTP body over the limit */
    CMP_R_BAD_CONTENT_TYPE,      /* HTTP Content-Type not application/pkixcmp */
    /* decoding */
    CMP_R_NOT_DER,               /* not a PKIMessage at all */
    CMP_R_TRAILING_DATA,         /* bytes after the PKIMessage */
    CMP_R_NOT_CANONICAL,         /* BER, not DER */
    CMP_R_LIMIT_EXCEEDED,        /* too many certs/requests/ITAVs, too deep */
    CMP_R_EMPTY_SEQUENCE,        /* SIZE (1..MAX) violated */
    CMP_R_NO_TRANSACTION_ID,
    CMP_R_BAD_TRANSACTION_ID,    /* wrong length */
    CMP_R_UNSUPPORTED_VERSION,   /* pvno not 2 or 3 */
    CMP_R_BAD_SENDER_NONCE,      /* missing, shorter than 128 bits or too long */
    CMP_R_BAD_RECIP_NONCE,       /* recipNonce does not answer our nonce */
    CMP_R_BAD_TIME,              /* messageTime outside the tolerance */
    CMP_R_BAD_SENDER,            /* sender is not a directoryName */
    CMP_R_RECIP_NONCE_IN_FIRST,  /* recipNonce in a transaction's first message */
    CMP_R_IMPLICIT_CONFIRM_VALUE, /* generalInfo implicitConfirm not NULL */
    CMP_R_CONFIRM_WAIT_IN_REQUEST, /* generalInfo confirmWaitTime in a request */
    CMP_R_IMPLICIT_AND_WAIT,     /* implicitConfirm and confirmWaitTime together */
    /* protection */
    CMP_R_UNPROTECTED,
    CMP_R_NO_PROTECTION_ALG,     /* protection without header.protectionAlg */
    CMP_R_NO_SENDER_KID,         /* signature protection without senderKID */
    CMP_R_BAD_ALG,               /* algorithm not allowed */
    CMP_R_BAD_SIGNATURE,
    CMP_R_NO_SIGNER_CERT,        /* protecting cert not found in extraCerts */
    CMP_R_SENDER_KID_MISMATCH,
    CMP_R_SENDER_MISMATCH,       /* sender is not the protecting cert subject */
    CMP_R_SIGNER_NOT_TRUSTED,    /* chain, validity or revocation failed */
    CMP_R_MAC_NOT_ALLOWED,       /* MAC where only signatures are accepted */
    CMP_R_BAD_MAC,
    CMP_R_BAD_MAC_PARAMS,        /* salt/iterations/owf/mac not acceptable */
    CMP_R_NO_MAC_SECRET,         /* no shared secret known for this sender */
    /* request content and state */
    CMP_R_UNSUPPORTED_BODY,      /* body type not served */
    CMP_R_UNEXPECTED_BODY,       /* body type wrong for the transaction state */
    CMP_R_BAD_REQUEST,           /* malformed content (e.g. several CertReqMsgs) */
    CMP_R_BAD_CERT_REQ_ID,
    CMP_R_TRANSACTION_ID_IN_USE,
    CMP_R_UNKNOWN_TRANSACTION,   /* certConf/pollReq for no open transaction */
    CMP_R_NOT_AUTHORIZED,        /* known sender, not allowed this */
    CMP_R_BAD_CERT_TEMPLATE,     /* subject/extension/key not acceptable */
    CMP_R_KEY_REUSE,             /* kur with the old key */
    CMP_R_BAD_POP,
    CMP_R_BAD_KEY_ALG,           /* requested key's algorithm or curve not supported */
    CMP_R_BAD_PUBLIC_KEY,        /* requested key malformed or not on its curve */
    CMP_R_BAD_POP_ALG,           /* POP signature algorithm not supported */
    CMP_R_POP_ALG_KEY_MISMATCH,  /* POP algorithm is not one for the key's type */
    CMP_R_BAD_CERT_ID,           /* unknown cert, wrong certHash */
    CMP_R_CERT_REVOKED,
    CMP_R_WRONG_AUTHORITY,
    CMP_R_SYSTEM_UNAVAIL,        /* store or signer unavailable */
    CMP_R_SYSTEM_FAILURE,        /* internal error */
    CMP_R_ENROLL_LIMIT,          /* a per-requester enrollment limit */
    CMP_R_REQUEST_REJECTED,      /* delayed delivery: an operator rejected */
    CMP_R_REQUEST_EXPIRED,       /* delayed delivery: not decided in time */
    CMP_R_MAX
};

/* Returns the failInfo bit for |r| (CMP_FAIL_SYSTEM_FAILURE if unknown). */
int cmp_reason_fail_bit(enum cmp_reason r);
/* Returns a short English text for |r|, never NULL. */
const char *cmp_reason_text(enum cmp_reason r);
/* Returns the failInfo name for |r| (e.g. "badPOP"), never NULL. */
const char *cmp_reason_fail_name(enum cmp_reason r);
/* Returns the name of failInfo bit |bit| (e.g. "badPOP"), or "unknown". */
const char *cmp_fail_bit_name(int bit);
/* Returns the HTTP status to send with the error response for |r|. */
int cmp_reason_http_status(enum cmp_reason r);

#endif
