/*
 * The single mapping of refusal reasons to failInfo bits, texts and HTTP
 * statuses (see cmp_reason.h and STANDARDS.md).
 *
 * HTTP: a request that reached the CMP layer as a PKIMessage is answered 200
 * with a protected error PKIMessage, so that clients read the failInfo; bodies
 * that are not PKIMessages get 400, oversized 413, wrong type 415, and
 * back-end failures 503/500 - all with a protected error PKIMessage body.
 */
#include "cmp/cmp_reason.h"

#include <stddef.h>

struct cmp_reason_row {
    int fail_bit;
    int http;
    const char *text;
};

static const struct cmp_reason_row cmp_reason_rows[CMP_R_MAX] = {
    [CMP_R_OK] = { -1, 200, "ok" },
    [CMP_R_BODY_TOO_LARGE] = { CMP_FAIL_BAD_REQUEST, 413, "request body too large" },
    [CMP_R_BAD_CONTENT_TYPE] = { CMP_FAIL_BAD_REQUEST, 415, "content type must be application/pkixcmp" },
    [CMP_R_NOT_DER] = { CMP_FAIL_BAD_DATA_FORMAT, 400, "not a DER-encoded PKIMessage" },
    [CMP_R_TRAILING_DATA] = { CMP_FAIL_BAD_DATA_FORMAT, 400, "data after the PKIMessage" },
    [CMP_R_NOT_CANONICAL] = { CMP_FAIL_BAD_DATA_FORMAT, 400, "PKIMessage is not in DER" },
    [CMP_R_LIMIT_EXCEEDED] = { CMP_FAIL_BAD_REQUEST, 200, "message exceeds a size limit" },
    [CMP_R_EMPTY_SEQUENCE] = { CMP_FAIL_BAD_DATA_FORMAT, 200, "empty SEQUENCE where one element is required" },
    [CMP_R_NO_TRANSACTION_ID] = { CMP_FAIL_BAD_DATA_FORMAT, 200, "transactionID missing" },
    [CMP_R_BAD_TRANSACTION_ID] = { CMP_FAIL_BAD_DATA_FORMAT, 200, "transactionID has a bad length" },
    [CMP_R_UNSUPPORTED_VERSION] = { CMP_FAIL_UNSUPPORTED_VERSION, 200, "pvno must be 2 or 3" },
    [CMP_R_BAD_SENDER_NONCE] = { CMP_FAIL_BAD_SENDER_NONCE, 200, "senderNonce missing or not 16 to 64 octets" },
    [CMP_R_BAD_RECIP_NONCE] = { CMP_FAIL_BAD_RECIPIENT_NONCE, 200, "recipNonce does not match" },
    [CMP_R_BAD_TIME] = { CMP_FAIL_BAD_TIME, 200, "messageTime too far from now" },
    [CMP_R_BAD_SENDER] = { CMP_FAIL_BAD_DATA_FORMAT, 200, "sender must be a directoryName" },
    [CMP_R_RECIP_NONCE_IN_FIRST] = { CMP_FAIL_BAD_RECIPIENT_NONCE, 200, "recipNonce present in the first message of a transaction" },
    [CMP_R_IMPLICIT_CONFIRM_VALUE] = { CMP_FAIL_BAD_REQUEST, 200, "generalInfo implicitConfirm must have the value NULL" },
    [CMP_R_CONFIRM_WAIT_IN_REQUEST] = { CMP_FAIL_BAD_REQUEST, 200, "generalInfo confirmWaitTime is not allowed in a request" },
    [CMP_R_IMPLICIT_AND_WAIT] = { CMP_FAIL_BAD_REQUEST, 200, "generalInfo carries both implicitConfirm and confirmWaitTime" },
    [CMP_R_UNPROTECTED] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "message is not protected" },
    [CMP_R_NO_PROTECTION_ALG] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "protectionAlg missing in the header" },
    [CMP_R_NO_SENDER_KID] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "senderKID missing in a signature-protected message" },
    [CMP_R_BAD_ALG] = { CMP_FAIL_BAD_ALG, 200, "protection algorithm not allowed" },
    [CMP_R_BAD_SIGNATURE] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "signature does not verify" },
    [CMP_R_NO_SIGNER_CERT] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "protecting certificate not found in extraCerts" },
    [CMP_R_SENDER_KID_MISMATCH] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "senderKID does not match the protecting certificate" },
    [CMP_R_SENDER_MISMATCH] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "sender is not the subject of the protecting certificate" },
    [CMP_R_SIGNER_NOT_TRUSTED] = { CMP_FAIL_SIGNER_NOT_TRUSTED, 200, "protecting certificate not trusted" },
    [CMP_R_MAC_NOT_ALLOWED] = { CMP_FAIL_WRONG_INTEGRITY, 200, "MAC protection not allowed here; sign the message" },
    [CMP_R_BAD_MAC] = { CMP_FAIL_BAD_MESSAGE_CHECK, 200, "MAC does not verify" },
    [CMP_R_BAD_MAC_PARAMS] = { CMP_FAIL_BAD_ALG, 200, "MAC parameters not acceptable" },
    [CMP_R_NO_MAC_SECRET] = { CMP_FAIL_SIGNER_NOT_TRUSTED, 200, "no shared secret for this sender" },
    [CMP_R_UNSUPPORTED_BODY] = { CMP_FAIL_BAD_REQUEST, 200, "message type not supported" },
    [CMP_R_UNEXPECTED_BODY] = { CMP_FAIL_BAD_REQUEST, 200, "message type not expected now" },
    [CMP_R_BAD_REQUEST] = { CMP_FAIL_BAD_REQUEST, 200, "malformed request" },
    [CMP_R_BAD_CERT_REQ_ID] = { CMP_FAIL_BAD_REQUEST, 200, "certReqId not acceptable" },
    [CMP_R_TRANSACTION_ID_IN_USE] = { CMP_FAIL_TRANSACTION_ID_IN_USE, 200, "transactionID already used" },
    [CMP_R_UNKNOWN_TRANSACTION] = { CMP_FAIL_BAD_REQUEST, 200, "no open transaction with this transactionID" },
    [CMP_R_NOT_AUTHORIZED] = { CMP_FAIL_NOT_AUTHORIZED, 200, "not authorized" },
    [CMP_R_BAD_CERT_TEMPLATE] = { CMP_FAIL_BAD_CERT_TEMPLATE, 200, "certificate template not acceptable" },
    [CMP_R_KEY_REUSE] = { CMP_FAIL_BAD_CERT_TEMPLATE, 200, "a new key is required" },
    [CMP_R_BAD_POP] = { CMP_FAIL_BAD_POP, 200, "proof of possession missing or wrong" },
    [CMP_R_BAD_KEY_ALG] = { CMP_FAIL_BAD_ALG, 200, "public key algorithm or curve not supported" },
    [CMP_R_BAD_PUBLIC_KEY] = { CMP_FAIL_BAD_CERT_TEMPLATE, 200, "public key malformed" },
    [CMP_R_BAD_POP_ALG] = { CMP_FAIL_BAD_ALG, 200, "POP signature algorithm not supported" },
    [CMP_R_POP_ALG_KEY_MISMATCH] = { CMP_FAIL_BAD_POP, 200, "POP signature algorithm does not match the key" },
    [CMP_R_BAD_CERT_ID] = { CMP_FAIL_BAD_CERT_ID, 200, "certificate unknown or certHash wrong" },
    [CMP_R_CERT_REVOKED] = { CMP_FAIL_CERT_REVOKED, 200, "certificate revoked" },
    [CMP_R_WRONG_AUTHORITY] = { CMP_FAIL_WRONG_AUTHORITY, 200, "wrong authority" },
    [CMP_R_SYSTEM_UNAVAIL] = { CMP_FAIL_SYSTEM_UNAVAIL, 503, "service temporarily unavailable" },
    [CMP_R_SYSTEM_FAILURE] = { CMP_FAIL_SYSTEM_FAILURE, 500, "internal error" },
    /* the requester, known and allowed, asks too often: notAuthorized
     * (STANDARDS.md: "sender known but not allowed this"), not
     * systemUnavail, which tells a client to retry at once */
    [CMP_R_ENROLL_LIMIT] = { CMP_FAIL_NOT_AUTHORIZED, 200, "enrollment limit reached" },
    /* delayed delivery (RFC 9483 4.4): the final answer to a pollReq is
     * an error message; the request itself was well-formed, but will
     * never be served */
    [CMP_R_REQUEST_REJECTED] = { CMP_FAIL_BAD_REQUEST, 200, "request rejected by an operator" },
    [CMP_R_REQUEST_EXPIRED] = { CMP_FAIL_BAD_REQUEST, 200, "request not decided within approval_timeout" },
};

static const char *const cmp_fail_names[CMP_FAIL_MAX + 1] = {
    "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
    "badDataFormat", "wrongAuthority", "incorrectData", "missingTimeStamp",
    "badPOP", "certRevoked", "certConfirmed", "wrongIntegrity",
    "badRecipientNonce", "timeNotAvailable", "unacceptedPolicy",
    "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
    "badCertTemplate", "signerNotTrusted", "transactionIdInUse",
    "unsupportedVersion", "notAuthorized", "systemUnavail", "systemFailure",
    "duplicateCertReq"
};

static const struct cmp_reason_row *cmp_reason_row(enum cmp_reason r)
{
    if ((int)r < 0 || r >= CMP_R_MAX || cmp_reason_rows[r].text == NULL)
        return &cmp_reason_rows[CMP_R_SYSTEM_FAILURE];
    return &cmp_reason_rows[r];
}

int cmp_reason_fail_bit(enum cmp_reason r)
{
    return cmp_reason_row(r)->fail_bit;
}

const char *cmp_reason_text(enum cmp_reason r)
{
    return cmp_reason_row(r)->text;
}

const char *cmp_fail_bit_name(int bit)
{
    return bit >= 0 && bit <= CMP_FAIL_MAX ? cmp_fail_names[bit] : "unknown";
}

const char *cmp_reason_fail_name(enum cmp_reason r)
{
    return r == CMP_R_OK ? "none" : cmp_fail_bit_name(cmp_reason_fail_bit(r));
}

int cmp_reason_http_status(enum cmp_reason r)
{
    return cmp_reason_row(r)->http;
}
