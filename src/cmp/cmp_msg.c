/*
 * PKIMessage decoding with limits and strict DER checking, encoding, header
 * checks for requests and small accessors.
 */
#include "cmp/cmp_msg.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const cmp_body_names[CMP_BODY_TYPE_MAX + 1] = {
    "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup",
    "krr", "krp", "rr", "rp", "ccr", "ccp", "ckuann", "cann", "rann",
    "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf",
    "pollReq", "pollRep"
};

const char *cmp_body_type_name(int type)
{
    return type >= 0 && type <= CMP_BODY_TYPE_MAX ? cmp_body_names[type]
                                                   : "unknown";
}

static void cmp_limits_fill(const struct cmp_limits *in, struct cmp_limits *out)
{
    memset(out, 0, sizeof(*out));
    if (in != NULL)
        *out = *in;
    if (out->max_msg_len == 0)
        out->max_msg_len = CMP_DEFAULT_MAX_MSG_LEN;
    if (out->max_extra_certs == 0)
        out->max_extra_certs = 16;
    if (out->max_requests == 0)
        out->max_requests = 8;
    if (out->max_itavs == 0)
        out->max_itavs = 16;
    if (out->max_nesting == 0)
        out->max_nesting = 2;
}

/* Checks an OPTIONAL SIZE(1..MAX) list: absent is fine, empty is not. */
static enum cmp_reason cmp_check_count(int present, int n, int max)
{
    if (!present)
        return CMP_R_OK;
    if (n < 1)
        return CMP_R_EMPTY_SEQUENCE;
    if (n > max)
        return CMP_R_LIMIT_EXCEEDED;
    return CMP_R_OK;
}

/* Checks a mandatory SEQUENCE OF: at least one element, at most |max|. */
static enum cmp_reason cmp_check_list(int n, int max)
{
    return cmp_check_count(1, n, max);
}

static enum cmp_reason cmp_msg_check_limits(const CMP_MSG *msg,
                                            const struct cmp_limits *lim,
                                            int depth)
{
    const CMP_BODY *body = msg->body;
    const CMP_HDR *hdr = msg->header;
    enum cmp_reason r;
    int i;

    if ((r = cmp_check_count(msg->extraCerts != NULL,
                             sk_X509_num(msg->extraCerts),
                             lim->max_extra_certs)) != CMP_R_OK)
        return r;
    if ((r = cmp_check_count(hdr->generalInfo != NULL,
                             sk_CMP_ITAV_num(hdr->generalInfo),
                             lim->max_itavs)) != CMP_R_OK)
        return r;
    if ((r = cmp_check_count(hdr->freeText != NULL,
                             sk_ASN1_UTF8STRING_num(hdr->freeText),
                             lim->max_itavs)) != CMP_R_OK)
        return r;
    switch (body->type) {
    case CMP_BODY_IR: case CMP_BODY_CR: case CMP_BODY_KUR:
    case CMP_BODY_KRR: case CMP_BODY_CCR:
        return cmp_check_list(sk_OSSL_CRMF_MSG_num(body->value.ir),
                              lim->max_requests);
    case CMP_BODY_IP: case CMP_BODY_CP: case CMP_BODY_KUP: case CMP_BODY_CCP:
        if ((r = cmp_check_count(body->value.ip->caPubs != NULL,
                                 sk_X509_num(body->value.ip->caPubs),
                                 lim->max_extra_certs)) != CMP_R_OK)
            return r;
        /* CertRepMessage.response may be empty (e.g. all in error). */
        if (sk_CMP_CERTRESP_num(body->value.ip->response) > lim->max_requests)
            return CMP_R_LIMIT_EXCEEDED;
        return CMP_R_OK;
    case CMP_BODY_RR:
        return cmp_check_list(sk_CMP_REVDETAILS_num(body->value.rr),
                              lim->max_requests);
    case CMP_BODY_RP:
        return cmp_check_list(sk_CMP_PKISI_num(body->value.rp->status),
                              lim->max_requests);
    case CMP_BODY_CERTCONF:
        /* An empty CertConfirmContent is legal: the client rejects all. */
        return sk_CMP_CERTSTATUS_num(body->value.certConf) > lim->max_requests
            ? CMP_R_LIMIT_EXCEEDED : CMP_R_OK;
    case CMP_BODY_GENM: case CMP_BODY_GENP:
        return sk_CMP_ITAV_num(body->value.genm) > lim->max_itavs
            ? CMP_R_LIMIT_EXCEEDED : CMP_R_OK;
    case CMP_BODY_POLLREQ:
        return cmp_check_list(sk_CMP_POLLREQ_num(body->value.pollReq),
                              lim->max_requests);
    case CMP_BODY_POLLREP:
        return cmp_check_list(sk_CMP_POLLREP_num(body->value.pollRep),
                              lim->max_requests);
    case CMP_BODY_NESTED:
        if (depth >= lim->max_nesting)
            return CMP_R_LIMIT_EXCEEDED;
        if ((r = cmp_check_list(sk_CMP_MSG_num(body->value.nested),
                                lim->max_requests)) != CMP_R_OK)
            return r;
        for (i = 0; i < sk_CMP_MSG_num(body->value.nested); i++) {
            r = cmp_msg_check_limits(sk_CMP_MSG_value(body->value.nested, i),
                                     lim, depth + 1);
            if (r != CMP_R_OK)
                return r;
        }
        return CMP_R_OK;
    default:
        return CMP_R_OK;
    }
}

enum cmp_reason cmp_msg_decode(const unsigned char *der, size_t len,
                               const struct cmp_limits *limits, CMP_MSG **out)
{
    struct cmp_limits lim;
    const unsigned char *p = der;
    unsigned char *re = NULL;
    CMP_MSG *msg = NULL;
    enum cmp_reason r;
    int relen;

    *out = NULL;
    cmp_limits_fill(limits, &lim);
    if (len > lim.max_msg_len)
        return CMP_R_BODY_TOO_LARGE;
    if (der == NULL || len < 2)
        return CMP_R_NOT_DER;
    /* Cheap pre-check: the outer SEQUENCE must be definite-length and
     * cover the input exactly, so an indefinite or truncated encoding never
     * reaches the template decoder. */
    {
        long olen;
        int tag, xclass, ret;
        const unsigned char *q = der;

        ret = ASN1_get_object(&q, &olen, &tag, &xclass, (long)len);
        if ((ret & 0x80) != 0 || ret != V_ASN1_CONSTRUCTED
            || tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL)
            return CMP_R_NOT_DER;
        if ((size_t)(q - der) + (size_t)olen != len)
            return CMP_R_TRAILING_DATA;
    }
    msg = d2i_CMP_MSG(NULL, &p, (long)len);
    if (msg == NULL) {
        r = CMP_R_NOT_DER;
        goto err;
    }
    if ((size_t)(p - der) != len) {
        r = CMP_R_TRAILING_DATA;
        goto err;
    }
    relen = i2d_CMP_MSG(msg, &re);
    if (relen < 0 || (size_t)relen != len || memcmp(re, der, len) != 0) {
        r = CMP_R_NOT_CANONICAL;
        goto err;
    }
    if ((r = cmp_msg_check_limits(msg, &lim, 0)) != CMP_R_OK)
        goto err;
    OPENSSL_free(re);
    *out = msg;
    return CMP_R_OK;

 err:
    OPENSSL_free(re);
    CMP_MSG_free(msg);
    ERR_clear_error();
    return r;
}

int cmp_msg_encode(const CMP_MSG *msg, unsigned char **der, size_t *len)
{
    int n;

    *der = NULL;
    *len = 0;
    n = i2d_CMP_MSG(msg, der);
    if (n <= 0)
        return 0;
    *len = (size_t)n;
    return 1;
}

int cmp_hdr_get_pvno(const CMP_HDR *hdr)
{
    int64_t v;

    if (hdr == NULL || hdr->pvno == NULL || !ASN1_INTEGER_get_int64(&v, hdr->pvno))
        return -1;
    return v < 0 || v > 1000 ? -1 : (int)v;
}

const X509_NAME *cmp_hdr_get0_sender_name(const CMP_HDR *hdr)
{
    if (hdr == NULL || hdr->sender == NULL || hdr->sender->type != GEN_DIRNAME)
        return NULL;
    return hdr->sender->d.directoryName;
}

enum cmp_reason cmp_hdr_check_request(const CMP_HDR *hdr, time_t now,
                                      long tolerance)
{
    int pvno = cmp_hdr_get_pvno(hdr);
    int len;

    if (pvno != 2 && pvno != 3)
        return CMP_R_UNSUPPORTED_VERSION;
    if (hdr->transactionID == NULL)
        return CMP_R_NO_TRANSACTION_ID;
    len = ASN1_STRING_length(hdr->transactionID);
    if (len < CMP_TID_MIN || len > CMP_TID_MAX)
        return CMP_R_BAD_TRANSACTION_ID;
    if (hdr->senderNonce == NULL)
        return CMP_R_BAD_SENDER_NONCE;
    len = ASN1_STRING_length(hdr->senderNonce);
    if (len < CMP_NONCE_MIN || len > CMP_NONCE_MAX)
        return CMP_R_BAD_SENDER_NONCE;
    if (hdr->recipNonce != NULL
        && ASN1_STRING_length(hdr->recipNonce) > CMP_NONCE_MAX)
        return CMP_R_BAD_RECIP_NONCE;
    if (hdr->sender->type != GEN_DIRNAME)
        return CMP_R_BAD_SENDER;
    if (tolerance > 0 && hdr->messageTime != NULL) {
        struct tm tm;
        long diff;

        if (!ASN1_TIME_to_tm(hdr->messageTime, &tm)) {
            ERR_clear_error();
            return CMP_R_BAD_TIME;
        }
        diff = (long)(timegm(&tm) - now);
        if (diff > tolerance || diff < -tolerance)
            return CMP_R_BAD_TIME;
    }
    return CMP_R_OK;
}

int cmp_hdr_has_implicit_confirm(const CMP_HDR *hdr)
{
    int i;

    for (i = 0; i < sk_CMP_ITAV_num(hdr->generalInfo); i++) {
        const CMP_ITAV *itav = sk_CMP_ITAV_value(hdr->generalInfo, i);

        if (OBJ_obj2nid(itav->infoType) == NID_id_it_implicitConfirm)
            return 1;
    }
    return 0;
}

char *cmp_hex(const ASN1_OCTET_STRING *os, char *buf, size_t buflen)
{
    static const char hexd[] = "0123456789abcdef";
    size_t i, n;

    if (buflen == 0)
        return buf;
    buf[0] = '\0';
    if (os == NULL)
        return buf;
    n = (size_t)ASN1_STRING_length(os);
    if (n > 16)
        n = 16;
    if (n * 2 + 1 > buflen)
        n = (buflen - 1) / 2;
    for (i = 0; i < n; i++) {
        buf[2 * i] = hexd[ASN1_STRING_get0_data(os)[i] >> 4];
        buf[2 * i + 1] = hexd[ASN1_STRING_get0_data(os)[i] & 15];
    }
    buf[2 * n] = '\0';
    return buf;
}

int cmp_pkisi_get_failinfo(const CMP_PKISI *si)
{
    int bit, mask = 0;

    if (si == NULL || si->failInfo == NULL)
        return 0;
    for (bit = 0; bit <= CMP_FAIL_MAX; bit++)
        if (ASN1_BIT_STRING_get_bit(si->failInfo, bit))
            mask |= 1 << bit;
    return mask;
}

int cmp_pkisi_get_status(const CMP_PKISI *si)
{
    int64_t v;

    if (si == NULL || si->status == NULL
        || !ASN1_INTEGER_get_int64(&v, si->status) || v < 0 || v > 6)
        return -1;
    return (int)v;
}
