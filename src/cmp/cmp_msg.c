/*
 * PKIMessage decoding with limits and strict DER checking, encoding, header
 * checks for requests and small accessors.
 */
#include "cmp/cmp_msg.h"
#include "cmp/cmp_der.h"
#include "util/x509_der.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <pthread.h>
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
        return cmp_check_list(sk_CMP_CERTREQMSG_num(body->value.ir),
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

/*
 * Certificates in extraCerts repeat: the vendor CA chain in every ir of a
 * vendor's devices, a device's certificate in its ir and certConf, an RA's
 * certificate in every message. OpenSSL 3.0 spends ~100 us decoding the
 * public key of each certificate, so decoded certificates are kept in a
 * direct-mapped cache keyed by the SHA-256 of their DER. Only certificates
 * the server core vouched for (cmp_cert_cache_keep: a validated path, or a
 * certificate cmpca issued) enter it, and it is bounded in bytes, so
 * unauthenticated requests cannot grow it. Entries are shared read-only
 * between threads (X509 objects are reference counted).
 */
#define CMP_CERT_CACHE_SLOTS 8192
/* Memory charged per entry beyond twice its DER (the decoded X509 keeps
 * its encoding and copies of most fields, plus the public key object). */
#define CMP_CERT_CACHE_OVERHEAD 2048

struct cmp_cert_slot {
    unsigned char sha256[32];
    X509 *cert;
    size_t charge;          /* bytes counted against the limit */
};

static struct cmp_cert_slot cmp_cert_cache[CMP_CERT_CACHE_SLOTS];
static pthread_mutex_t cmp_cert_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t cmp_cert_cache_used;
static size_t cmp_cert_cache_max = CMP_CERT_CACHE_DEFAULT_MAX;
static size_t cmp_cert_cache_hand;      /* next slot eviction looks at */

/* The slot of the certificate with SHA-256 |sha|. */
static struct cmp_cert_slot *cmp_cert_cache_slot(const unsigned char *sha)
{
    return &cmp_cert_cache[(((size_t)sha[0] << 8) | sha[1])
                           % CMP_CERT_CACHE_SLOTS];
}

/* Empties |slot| (lock held); returns its certificate for X509_free after
 * the lock is released. */
static X509 *cmp_cert_slot_clear(struct cmp_cert_slot *slot)
{
    X509 *x = slot->cert;

    cmp_cert_cache_used -= slot->charge;
    slot->cert = NULL;
    slot->charge = 0;
    return x;
}

/* Returns a new reference to the certificate encoded in exactly the |len|
 * bytes at |der|, from the cache or freshly decoded (and then not cached);
 * NULL if not a certificate. */
static X509 *cmp_cert_cache_get1(const unsigned char *der, size_t len)
{
    struct cmp_cert_slot *slot;
    unsigned char sha[32];
    X509 *x = NULL;

    if (!EVP_Digest(der, len, sha, NULL, EVP_sha256(), NULL))
        return NULL;
    slot = cmp_cert_cache_slot(sha);
    pthread_mutex_lock(&cmp_cert_cache_lock);
    if (slot->cert != NULL && memcmp(slot->sha256, sha, sizeof(sha)) == 0
        && X509_up_ref(slot->cert))
        x = slot->cert;
    pthread_mutex_unlock(&cmp_cert_cache_lock);
    if (x != NULL)
        return x;
    return x509_der_get1(der, len);
}

int cmp_cert_cache_keep(X509 *cert)
{
    struct cmp_cert_slot *slot;
    unsigned char sha[32];
    X509 *old[8] = { NULL };
    size_t charge, nold = 0, scanned;
    unsigned int mdlen = 0;
    int len, ret = 0;

    if (cert == NULL || (len = i2d_X509(cert, NULL)) <= 0
        || !X509_digest(cert, EVP_sha256(), sha, &mdlen)) {
        ERR_clear_error();
        return 0;
    }
    charge = 2 * (size_t)len + CMP_CERT_CACHE_OVERHEAD;
    slot = cmp_cert_cache_slot(sha);
    pthread_mutex_lock(&cmp_cert_cache_lock);
    if (slot->cert != NULL && memcmp(slot->sha256, sha, sizeof(sha)) == 0) {
        ret = 1;                        /* there already */
        goto end;
    }
    /* one certificate may take at most an eighth of the cache */
    if (charge > cmp_cert_cache_max / 8)
        goto end;
    if (slot->cert != NULL)
        old[nold++] = cmp_cert_slot_clear(slot);
    /* over the byte limit: the clock hand frees slots until it fits (a
     * few at a time, so the lock is not held for a long sweep) */
    for (scanned = 0; cmp_cert_cache_used + charge > cmp_cert_cache_max
         && scanned < CMP_CERT_CACHE_SLOTS && nold < 8; scanned++) {
        struct cmp_cert_slot *v = &cmp_cert_cache[cmp_cert_cache_hand];

        cmp_cert_cache_hand = (cmp_cert_cache_hand + 1) % CMP_CERT_CACHE_SLOTS;
        if (v->cert != NULL)
            old[nold++] = cmp_cert_slot_clear(v);
    }
    if (cmp_cert_cache_used + charge > cmp_cert_cache_max
        || !X509_up_ref(cert))
        goto end;
    slot->cert = cert;
    slot->charge = charge;
    memcpy(slot->sha256, sha, sizeof(sha));
    cmp_cert_cache_used += charge;
    ret = 1;
 end:
    pthread_mutex_unlock(&cmp_cert_cache_lock);
    while (nold > 0)
        X509_free(old[--nold]);
    return ret;
}

void cmp_cert_cache_set_max(size_t max_bytes)
{
    X509 *old[8];
    size_t nold, i;

    for (;;) {
        nold = 0;
        pthread_mutex_lock(&cmp_cert_cache_lock);
        cmp_cert_cache_max = max_bytes;
        for (i = 0; i < CMP_CERT_CACHE_SLOTS && nold < 8
             && cmp_cert_cache_used > cmp_cert_cache_max; i++)
            if (cmp_cert_cache[i].cert != NULL)
                old[nold++] = cmp_cert_slot_clear(&cmp_cert_cache[i]);
        pthread_mutex_unlock(&cmp_cert_cache_lock);
        if (nold == 0)
            return;
        while (nold > 0)
            X509_free(old[--nold]);
    }
}

void cmp_cert_cache_stats(size_t *entries, size_t *bytes)
{
    size_t i, n = 0;

    pthread_mutex_lock(&cmp_cert_cache_lock);
    for (i = 0; i < CMP_CERT_CACHE_SLOTS; i++)
        n += cmp_cert_cache[i].cert != NULL;
    if (bytes != NULL)
        *bytes = cmp_cert_cache_used;
    pthread_mutex_unlock(&cmp_cert_cache_lock);
    if (entries != NULL)
        *entries = n;
}

void cmp_cert_cache_clear(void)
{
    size_t max;

    pthread_mutex_lock(&cmp_cert_cache_lock);
    max = cmp_cert_cache_max;
    pthread_mutex_unlock(&cmp_cert_cache_lock);
    cmp_cert_cache_set_max(0);
    cmp_cert_cache_set_max(max);
}

/* One TLV inside |*p|..|end|: sets *tlv_len (header + content) and moves
 * *p past it; returns the tag and class through the pointers, or 0 if the
 * element is malformed or of indefinite length. */
static int cmp_tlv(const unsigned char **p, const unsigned char *end,
                   size_t *tlv_len, int *tag, int *xclass)
{
    const unsigned char *q = *p;
    long clen;
    int ret;

    if (q >= end)
        return 0;
    ret = ASN1_get_object(&q, &clen, tag, xclass, (long)(end - q));
    if ((ret & 0x80) != 0 || (ret & 0x01) != 0 || clen < 0
        || (size_t)clen > (size_t)(end - q))
        return 0;
    *tlv_len = (size_t)(q - *p) + (size_t)clen;
    *p = q + clen;
    return 1;
}

/* Decodes the certificates of an extraCerts element |xc| (|xc_len| bytes:
 * [1] { SEQUENCE { cert, cert, ... } }) through the certificate cache into
 * *out. Returns 1, 0 if it does not split cleanly, -1 over the limit. */
static int cmp_extracerts_cached(const unsigned char *xc, size_t xc_len,
                                 const struct cmp_limits *lim,
                                 STACK_OF(X509) **out)
{
    const unsigned char *q = xc, *qend;
    STACK_OF(X509) *certs = NULL;
    size_t tl;
    long olen;
    int tag, xclass, n = 0, ret = 0;

    *out = NULL;
    if (ASN1_get_object(&q, &olen, &tag, &xclass, (long)xc_len) != V_ASN1_CONSTRUCTED
        || ASN1_get_object(&q, &olen, &tag, &xclass, (long)(xc + xc_len - q))
           != V_ASN1_CONSTRUCTED
        || tag != V_ASN1_SEQUENCE || q + olen != xc + xc_len)
        return 0;
    qend = q + olen;
    if ((certs = sk_X509_new_null()) == NULL)
        return 0;
    while (q < qend) {
        const unsigned char *cstart = q;
        X509 *x;

        if (++n > lim->max_extra_certs) {
            ret = -1;
            goto end;
        }
        if (!cmp_tlv(&q, qend, &tl, &tag, &xclass) || tag != V_ASN1_SEQUENCE
            || (x = cmp_cert_cache_get1(cstart, tl)) == NULL)
            goto end;
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            goto end;
        }
    }
    if (sk_X509_num(certs) == 0)
        goto end;
    *out = certs;
    certs = NULL;
    ret = 1;
 end:
    sk_X509_pop_free(certs, X509_free);
    return ret;
}

static int cmp_msg_decode_cached(const unsigned char *der, size_t len,
                                 const struct cmp_limits *lim, int depth,
                                 CMP_MSG **out);

/* Decodes the PKIMessages of a nested body |body| (|body_len| bytes: [20]
 * { SEQUENCE { PKIMessage, ... } }), each through the cached path, into
 * *out. Returns 1, 0 if it does not split cleanly, -1 over a limit. */
static int cmp_nested_cached(const unsigned char *body, size_t body_len,
                             const struct cmp_limits *lim, int depth,
                             STACK_OF(CMP_MSG) **out)
{
    const unsigned char *q = body, *qend, *e;
    STACK_OF(CMP_MSG) *msgs = NULL;
    CMP_MSG *m = NULL;
    size_t tl;
    long olen;
    int tag, xclass, n = 0, ret = 0, r;

    *out = NULL;
    if (ASN1_get_object(&q, &olen, &tag, &xclass, (long)body_len) != V_ASN1_CONSTRUCTED
        || ASN1_get_object(&q, &olen, &tag, &xclass, (long)(body + body_len - q))
           != V_ASN1_CONSTRUCTED
        || tag != V_ASN1_SEQUENCE || q + olen != body + body_len)
        return 0;
    qend = q + olen;
    if ((msgs = sk_CMP_MSG_new_null()) == NULL)
        return 0;
    while (q < qend) {
        const unsigned char *start = q;

        if (++n > lim->max_requests) {
            ret = -1;
            goto end;
        }
        if (!cmp_tlv(&q, qend, &tl, &tag, &xclass) || tag != V_ASN1_SEQUENCE)
            goto end;
        if ((r = cmp_msg_decode_cached(start, tl, lim, depth + 1, &m)) < 0) {
            ret = -1;
            goto end;
        }
        if (r == 0) {
            e = start;
            if ((m = d2i_CMP_MSG(NULL, &e, (long)tl)) == NULL || e != q)
                goto end;
        }
        if (!sk_CMP_MSG_push(msgs, m))
            goto end;
        m = NULL;
    }
    *out = msgs;
    msgs = NULL;
    ret = 1;
 end:
    CMP_MSG_free(m);
    sk_CMP_MSG_pop_free(msgs, CMP_MSG_free);
    return ret;
}

/*
 * Decodes a PKIMessage whose certificates go through the certificate
 * cache: the extraCerts element ([1], last) is cut out and its
 * certificates taken from the cache; the messages of a nested body ([20])
 * are cut out and decoded the same way, one by one (an RA's wrapper around
 * a device's request carries the device's certificates inside). The rest
 * is re-framed and decoded by the template. Returns 1 with *out set, 0
 * when there is nothing to take from the cache or the message does not
 * split cleanly (the caller then decodes it whole), -1 on a limit
 * violation. The caller checks that the result re-encodes to |der|.
 */
static int cmp_msg_decode_cached(const unsigned char *der, size_t len,
                                 const struct cmp_limits *lim, int depth,
                                 CMP_MSG **out)
{
    static const unsigned char empty_nested[] = { 0xb4, 0x02, 0x30, 0x00 };
    const unsigned char *p = der, *end = der + len, *xc = NULL, *nb = NULL;
    unsigned char *buf = NULL, *w;
    STACK_OF(X509) *certs = NULL;
    STACK_OF(CMP_MSG) *inner = NULL;
    CMP_MSG *msg = NULL;
    size_t tl, xc_len = 0, nb_len = 0, hdr_len, inner_len;
    long olen;
    int tag, xclass, k = 0, ret = 0, r;

    *out = NULL;
    if (ASN1_get_object(&p, &olen, &tag, &xclass, (long)len) != V_ASN1_CONSTRUCTED)
        return 0;
    hdr_len = (size_t)(p - der);
    while (p < end) {
        const unsigned char *start = p;

        if (!cmp_tlv(&p, end, &tl, &tag, &xclass))
            return 0;
        /* only the outermost level: deeper nesting is for the template
         * decoder and its own bound on constructed depth */
        if (k == 1 && xclass == V_ASN1_CONTEXT_SPECIFIC
            && tag == CMP_BODY_NESTED && depth == 0 && lim->max_nesting > 1) {
            nb = start;
            nb_len = tl;
        }
        if (xclass == V_ASN1_CONTEXT_SPECIFIC && tag == 1 && p == end) {
            xc = start;
            xc_len = tl;
        }
        k++;
    }
    if (xc == NULL && nb == NULL)
        return 0;
    if (xc != NULL && (r = cmp_extracerts_cached(xc, xc_len, lim, &certs)) != 1)
        return r;
    if (nb != NULL && (r = cmp_nested_cached(nb, nb_len, lim, depth, &inner)) != 1) {
        ret = r;
        goto end;
    }
    /* the message without its extraCerts and with an empty nested body,
     * re-framed */
    inner_len = len - hdr_len - xc_len - nb_len + (nb != NULL ? sizeof(empty_nested) : 0);
    if ((buf = OPENSSL_malloc(inner_len + 8)) == NULL)
        goto end;
    w = buf;
    ASN1_put_object(&w, 1, (int)inner_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    if (nb != NULL) {
        memcpy(w, der + hdr_len, (size_t)(nb - der) - hdr_len);
        w += (size_t)(nb - der) - hdr_len;
        memcpy(w, empty_nested, sizeof(empty_nested));
        w += sizeof(empty_nested);
        memcpy(w, nb + nb_len, (size_t)((xc != NULL ? xc : end) - (nb + nb_len)));
        w += (size_t)((xc != NULL ? xc : end) - (nb + nb_len));
    } else {
        memcpy(w, der + hdr_len, (size_t)(xc - der) - hdr_len);
        w += (size_t)(xc - der) - hdr_len;
    }
    p = buf;
    if ((msg = d2i_CMP_MSG(NULL, &p, (long)(w - buf))) == NULL || p != w
        || msg->extraCerts != NULL)
        goto end;
    if (nb != NULL) {
        if (msg->body->type != CMP_BODY_NESTED)
            goto end;
        sk_CMP_MSG_pop_free(msg->body->value.nested, CMP_MSG_free);
        msg->body->value.nested = inner;
        inner = NULL;
    }
    msg->extraCerts = certs;
    certs = NULL;
    *out = msg;
    msg = NULL;
    ret = 1;
 end:
    OPENSSL_free(buf);
    CMP_MSG_free(msg);
    sk_X509_pop_free(certs, X509_free);
    sk_CMP_MSG_pop_free(inner, CMP_MSG_free);
    ERR_clear_error();
    return ret;
}

enum cmp_reason cmp_msg_decode(const unsigned char *der, size_t len,
                               const struct cmp_limits *limits, CMP_MSG **out)
{
    struct cmp_limits lim;
    const unsigned char *p = der;
    unsigned char *re = NULL;
    CMP_MSG *msg = NULL;
    enum cmp_reason r;
    enum cmp_der_result walk;
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
    /* DER at every depth, also where the templates keep the received
     * bytes (Names, certificates, CSRs, ANY values) */
    if ((walk = cmp_der_check(der, len)) == CMP_DER_BER)
        return CMP_R_NOT_CANONICAL;
    switch (cmp_msg_decode_cached(der, len, &lim, 0, &msg)) {
    case -1:
        r = CMP_R_LIMIT_EXCEEDED;
        goto err;
    case 1:
        break;
    default:
        msg = d2i_CMP_MSG(NULL, &p, (long)len);
        if (msg == NULL) {
            r = CMP_R_NOT_DER;
            goto err;
        }
        if ((size_t)(p - der) != len) {
            r = CMP_R_TRAILING_DATA;
            goto err;
        }
    }
    relen = i2d_CMP_MSG(msg, &re);
    if (relen < 0 || (size_t)relen != len || memcmp(re, der, len) != 0) {
        r = CMP_R_NOT_CANONICAL;
        goto err;
    }
    if (walk != CMP_DER_OK) {   /* e.g. no TLVs inside an ANY value */
        r = CMP_R_NOT_DER;
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

int cmp_body_starts_transaction(int type)
{
    switch (type) {
    case CMP_BODY_IR: case CMP_BODY_CR: case CMP_BODY_KUR:
    case CMP_BODY_P10CR: case CMP_BODY_RR: case CMP_BODY_GENM:
    case CMP_BODY_KRR: case CMP_BODY_CCR:
        return 1;
    default:
        return 0;
    }
}

/* 1 if |hdr| names a protection algorithm that is not a MAC. */
static int cmp_hdr_is_signature(const CMP_HDR *hdr)
{
    int nid;

    if (hdr->protectionAlg == NULL)
        return 0;
    nid = OBJ_obj2nid(hdr->protectionAlg->algorithm);
    return nid != NID_id_PasswordBasedMAC && nid != NID_pbmac1
        && nid != NID_id_DHBasedMac;
}

enum cmp_reason cmp_hdr_check_general_info(const CMP_HDR *hdr, int request)
{
    int i, implicit = 0, bad_implicit = 0, wait = 0;

    for (i = 0; i < sk_CMP_ITAV_num(hdr->generalInfo); i++) {
        const CMP_ITAV *itav = sk_CMP_ITAV_value(hdr->generalInfo, i);

        switch (OBJ_obj2nid(itav->infoType)) {
        case NID_id_it_implicitConfirm:
            implicit = 1;
            /* ImplicitConfirmValue ::= NULL (RFC 9810 5.1.1.1) */
            if (itav->infoValue == NULL || itav->infoValue->type != V_ASN1_NULL)
                bad_implicit = 1;
            break;
        case NID_id_it_confirmWaitTime:
            wait = 1;
            break;
        default:
            break;
        }
    }
    if (implicit && wait)
        return CMP_R_IMPLICIT_AND_WAIT;
    if (bad_implicit)
        return CMP_R_IMPLICIT_CONFIRM_VALUE;
    if (wait && request)
        return CMP_R_CONFIRM_WAIT_IN_REQUEST;
    return CMP_R_OK;
}

enum cmp_reason cmp_hdr_check_request_ex(const CMP_HDR *hdr, time_t now,
                                         long tolerance, int first)
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
    /* RFC 9483 3.1: recipNonce is absent in the first message */
    if (first && hdr->recipNonce != NULL)
        return CMP_R_RECIP_NONCE_IN_FIRST;
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
    /* RFC 9483 3.1: signature protection names its key by senderKID */
    if (cmp_hdr_is_signature(hdr) && hdr->senderKID == NULL)
        return CMP_R_NO_SENDER_KID;
    return cmp_hdr_check_general_info(hdr, 1);
}

enum cmp_reason cmp_hdr_check_request(const CMP_HDR *hdr, time_t now,
                                      long tolerance)
{
    return cmp_hdr_check_request_ex(hdr, now, tolerance, 0);
}

enum cmp_reason cmp_msg_check_request(const CMP_MSG *msg, time_t now,
                                      long tolerance)
{
    const CMP_HDR *hdr = msg->header;

    /* protection first: nothing of an unprotected message is judged */
    if (msg->protection == NULL)
        return CMP_R_UNPROTECTED;
    if (hdr->protectionAlg == NULL)
        return CMP_R_NO_PROTECTION_ALG;
    if (cmp_hdr_is_signature(hdr) && hdr->senderKID == NULL)
        return CMP_R_NO_SENDER_KID;
    return cmp_hdr_check_request_ex(hdr, now, tolerance,
                                    cmp_body_starts_transaction(msg->body->type));
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

const unsigned char *cmp_certorenccert_get0_der(const CMP_CERTORENCCERT *c,
                                                size_t *len)
{
    const ASN1_TYPE *t;

    *len = 0;
    if (c == NULL || c->type != 0 || (t = c->value.certificate) == NULL
        || t->type != V_ASN1_SEQUENCE || t->value.sequence == NULL
        || t->value.sequence->length <= 0)
        return NULL;
    *len = (size_t)t->value.sequence->length;
    return t->value.sequence->data;
}

X509 *cmp_certorenccert_get1_cert(const CMP_CERTORENCCERT *c)
{
    size_t len = 0;
    const unsigned char *der = cmp_certorenccert_get0_der(c, &len);

    return x509_der_get1(der, len);
}

int cmp_pkisi_get_status(const CMP_PKISI *si)
{
    int64_t v;

    if (si == NULL || si->status == NULL
        || !ASN1_INTEGER_get_int64(&v, si->status) || v < 0 || v > 6)
        return -1;
    return (int)v;
}
