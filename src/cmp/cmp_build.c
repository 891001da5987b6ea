/*
 * Construction of CMP response headers and bodies (see cmp_build.h).
 */
#include "cmp/cmp_build.h"

#include "cmp/cmp_msg.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <limits.h>
#include <string.h>

#define CMP_RSP_NONCE_LEN 16

CMP_ITAV *cmp_itav_new(int nid, ASN1_TYPE *value)
{
    CMP_ITAV *itav = CMP_ITAV_new();

    if (itav == NULL) {
        ASN1_TYPE_free(value);
        return NULL;
    }
    ASN1_OBJECT_free(itav->infoType);
    itav->infoType = OBJ_nid2obj(nid);
    itav->infoValue = value;
    return itav;
}

static int cmp_hdr_push_itav(CMP_HDR *hdr, CMP_ITAV *itav)
{
    if (itav == NULL)
        return 0;
    if (hdr->generalInfo == NULL
        && (hdr->generalInfo = sk_CMP_ITAV_new_null()) == NULL)
        goto err;
    if (!sk_CMP_ITAV_push(hdr->generalInfo, itav))
        goto err;
    return 1;
 err:
    CMP_ITAV_free(itav);
    return 0;
}

int cmp_hdr_push_implicit_confirm(CMP_HDR *hdr)
{
    ASN1_TYPE *v = ASN1_TYPE_new();

    if (v == NULL)
        return 0;
    ASN1_TYPE_set(v, V_ASN1_NULL, NULL);
    return cmp_hdr_push_itav(hdr, cmp_itav_new(NID_id_it_implicitConfirm, v));
}

int cmp_hdr_push_confirm_wait_time(CMP_HDR *hdr, time_t deadline)
{
    ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_set(NULL, deadline);
    ASN1_TYPE *v = ASN1_TYPE_new();

    if (t == NULL || v == NULL) {
        ASN1_GENERALIZEDTIME_free(t);
        ASN1_TYPE_free(v);
        return 0;
    }
    ASN1_TYPE_set(v, V_ASN1_GENERALIZEDTIME, t);
    return cmp_hdr_push_itav(hdr, cmp_itav_new(NID_id_it_confirmWaitTime, v));
}

static int cmp_octets_set_random(ASN1_OCTET_STRING **os, size_t len)
{
    unsigned char buf[CMP_RSP_NONCE_LEN];

    if (len > sizeof(buf) || RAND_bytes(buf, (int)len) <= 0)
        return 0;
    if (*os == NULL && (*os = ASN1_OCTET_STRING_new()) == NULL)
        return 0;
    return ASN1_OCTET_STRING_set(*os, buf, (int)len);
}

CMP_MSG *cmp_rsp_new(const CMP_MSG *req, int body_type, const X509 *signer,
                     time_t now)
{
    return cmp_rsp_new_ex(req, body_type, signer, now, 1);
}

CMP_MSG *cmp_rsp_new_ex(const CMP_MSG *req, int body_type, const X509 *signer,
                        time_t now, int names)
{
    CMP_MSG *rsp = CMP_MSG_new();
    CMP_HDR *hdr;
    const CMP_HDR *rh = req != NULL ? req->header : NULL;
    const ASN1_OCTET_STRING *ski;
    X509_NAME *name = NULL;
    int pvno = cmp_hdr_get_pvno(rh);

    if (rsp == NULL)
        return NULL;
    hdr = rsp->header;
    if (!ASN1_INTEGER_set(hdr->pvno, pvno == 3 ? 3 : 2))
        goto err;
    /* sender: directoryName of the protecting certificate; recipient: the
     * request's sender (unless the caller fills both placeholders) */
    if (names) {
        name = signer != NULL ? X509_NAME_dup(X509_get_subject_name(signer))
                              : X509_NAME_new();
        if (name == NULL)
            goto err;
        GENERAL_NAME_set0_value(hdr->sender, GEN_DIRNAME, name);
        name = NULL;
        if (rh != NULL && rh->sender != NULL) {
            GENERAL_NAME_free(hdr->recipient);
            if ((hdr->recipient = GENERAL_NAME_dup(rh->sender)) == NULL)
                goto err;
        } else {
            if ((name = X509_NAME_new()) == NULL)
                goto err;
            GENERAL_NAME_set0_value(hdr->recipient, GEN_DIRNAME, name);
            name = NULL;
        }
    }
    if ((hdr->messageTime = ASN1_GENERALIZEDTIME_set(NULL, now)) == NULL)
        goto err;
    if (signer != NULL && (ski = X509_get0_subject_key_id((X509 *)signer)) != NULL
        && (hdr->senderKID = ASN1_OCTET_STRING_dup(ski)) == NULL)
        goto err;
    if (rh != NULL && rh->transactionID != NULL
        && (hdr->transactionID = ASN1_OCTET_STRING_dup(rh->transactionID)) == NULL)
        goto err;
    if (!cmp_octets_set_random(&hdr->senderNonce, CMP_RSP_NONCE_LEN))
        goto err;
    if (rh != NULL && rh->senderNonce != NULL
        && (hdr->recipNonce = ASN1_OCTET_STRING_dup(rh->senderNonce)) == NULL)
        goto err;
    rsp->body->type = body_type;
    if (body_type == CMP_BODY_PKICONF
        && (rsp->body->value.pkiconf = ASN1_NULL_new()) == NULL)
        goto err;
    return rsp;
 err:
    X509_NAME_free(name);
    CMP_MSG_free(rsp);
    return NULL;
}

static int cmp_freetext_push(STACK_OF(ASN1_UTF8STRING) **sk, const char *text)
{
    ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();

    if (s == NULL || !ASN1_STRING_set(s, text, -1))
        goto err;
    if (*sk == NULL && (*sk = sk_ASN1_UTF8STRING_new_null()) == NULL)
        goto err;
    if (!sk_ASN1_UTF8STRING_push(*sk, s))
        goto err;
    return 1;
 err:
    ASN1_UTF8STRING_free(s);
    return 0;
}

CMP_PKISI *cmp_pkisi_new(int status, int fail_bit, const char *text)
{
    CMP_PKISI *si = CMP_PKISI_new();

    if (si == NULL || !ASN1_INTEGER_set(si->status, status))
        goto err;
    if (text != NULL && !cmp_freetext_push(&si->statusString, text))
        goto err;
    if (fail_bit >= 0) {
        if ((si->failInfo = ASN1_BIT_STRING_new()) == NULL
            || !ASN1_BIT_STRING_set_bit(si->failInfo, fail_bit, 1))
            goto err;
    }
    return si;
 err:
    CMP_PKISI_free(si);
    return NULL;
}

static STACK_OF(X509) *cmp_x509_stack_copy(const STACK_OF(X509) *in)
{
    STACK_OF(X509) *out = sk_X509_new_null();
    int i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < sk_X509_num(in); i++) {
        if (!X509_add_cert(out, sk_X509_value(in, i), X509_ADD_FLAG_UP_REF)) {
            sk_X509_pop_free(out, X509_free);
            return NULL;
        }
    }
    return out;
}

int cmp_body_set_certrep(CMP_MSG *rsp, long cert_req_id, CMP_PKISI *si,
                         const unsigned char *cert, size_t cert_len,
                         const STACK_OF(X509) *ca_pubs)
{
    CMP_CERTREPMSG *rep = NULL;
    CMP_CERTRESP *resp = NULL;
    ASN1_STRING *seq = NULL;

    if ((rep = CMP_CERTREPMSG_new()) == NULL
        || (resp = CMP_CERTRESP_new()) == NULL
        || !ASN1_INTEGER_set(resp->certReqId, cert_req_id))
        goto err;
    CMP_PKISI_free(resp->status);
    resp->status = si;
    si = NULL;
    if (cert != NULL) {
        /* an ANY holding a SEQUENCE is written out as it is */
        if (cert_len > INT_MAX
            || (resp->certifiedKeyPair = CMP_CERTKEYPAIR_new()) == NULL
            || (seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL
            || !ASN1_STRING_set(seq, cert, (int)cert_len)
            || (resp->certifiedKeyPair->certOrEncCert->value.certificate
                = ASN1_TYPE_new()) == NULL)
            goto err;
        ASN1_TYPE_set(resp->certifiedKeyPair->certOrEncCert->value.certificate,
                      V_ASN1_SEQUENCE, seq);
        seq = NULL;
        resp->certifiedKeyPair->certOrEncCert->type = 0;
    }
    if (!sk_CMP_CERTRESP_push(rep->response, resp))
        goto err;
    resp = NULL;
    if (sk_X509_num(ca_pubs) > 0
        && (rep->caPubs = cmp_x509_stack_copy(ca_pubs)) == NULL)
        goto err;
    rsp->body->value.ip = rep;
    return 1;
 err:
    ASN1_STRING_free(seq);
    CMP_PKISI_free(si);
    CMP_CERTRESP_free(resp);
    CMP_CERTREPMSG_free(rep);
    return 0;
}

int cmp_body_set_error(CMP_MSG *rsp, enum cmp_reason reason,
                       const char *detail)
{
    CMP_ERRORMSG *em = CMP_ERRORMSG_new();
    char text[512];

    if (em == NULL)
        return 0;
    if (detail != NULL && *detail != '\0')
        snprintf(text, sizeof(text), "%s: %s", cmp_reason_text(reason), detail);
    else
        snprintf(text, sizeof(text), "%s", cmp_reason_text(reason));
    CMP_PKISI_free(em->pKIStatusInfo);
    em->pKIStatusInfo = cmp_pkisi_new(CMP_STATUS_REJECTION,
                                      cmp_reason_fail_bit(reason), text);
    if (em->pKIStatusInfo == NULL) {
        CMP_ERRORMSG_free(em);
        return 0;
    }
    rsp->body->type = CMP_BODY_ERROR;
    rsp->body->value.error = em;
    return 1;
}

int cmp_body_set_rp(CMP_MSG *rsp, CMP_PKISI *si)
{
    CMP_REVREP *rp = CMP_REVREP_new();

    if (rp == NULL || !sk_CMP_PKISI_push(rp->status, si)) {
        CMP_PKISI_free(si);
        CMP_REVREP_free(rp);
        return 0;
    }
    rsp->body->value.rp = rp;
    return 1;
}

int cmp_body_set_pollrep(CMP_MSG *rsp, long cert_req_id, long seconds)
{
    STACK_OF(CMP_POLLREP) *sk = sk_CMP_POLLREP_new_null();
    CMP_POLLREP *pr = CMP_POLLREP_new();

    if (sk == NULL || pr == NULL
        || !ASN1_INTEGER_set(pr->certReqId, cert_req_id)
        || !ASN1_INTEGER_set(pr->checkAfter, seconds)
        || !sk_CMP_POLLREP_push(sk, pr)) {
        CMP_POLLREP_free(pr);
        sk_CMP_POLLREP_free(sk);
        return 0;
    }
    rsp->body->value.pollRep = sk;
    return 1;
}

int cmp_body_set_genp(CMP_MSG *rsp, STACK_OF(CMP_ITAV) *itavs)
{
    if (itavs == NULL && (itavs = sk_CMP_ITAV_new_null()) == NULL)
        return 0;
    rsp->body->value.genp = itavs;
    return 1;
}

/* |first|, then |chain|, then |extra| in a new stack of new references,
 * each certificate once; NULL on failure. */
static STACK_OF(X509) *cmp_certs_merge(X509 *first, const STACK_OF(X509) *chain,
                                       const STACK_OF(X509) *extra)
{
    const int flags = X509_ADD_FLAG_UP_REF | X509_ADD_FLAG_NO_DUP;
    STACK_OF(X509) *sk = sk_X509_new_null();

    if (sk == NULL)
        return NULL;
    if ((first != NULL && !X509_add_cert(sk, first, flags))
        || !X509_add_certs(sk, (STACK_OF(X509) *)chain, flags)
        || !X509_add_certs(sk, (STACK_OF(X509) *)extra, flags)) {
        sk_X509_pop_free(sk, X509_free);
        return NULL;
    }
    return sk;
}

int cmp_extracerts_der(X509 *first, const STACK_OF(X509) *chain,
                       const STACK_OF(X509) *extra, unsigned char **der,
                       size_t *len)
{
    STACK_OF(X509) *sk = cmp_certs_merge(first, chain, extra);
    unsigned char *out = NULL, *w;
    size_t certs = 0;
    int i, n, seq, tot, ok = 0;

    *der = NULL;
    *len = 0;
    if (sk == NULL)
        return 0;
    if (sk_X509_num(sk) == 0) {
        ok = 1;                 /* no extraCerts: the element is absent */
        goto end;
    }
    for (i = 0; i < sk_X509_num(sk); i++) {
        if ((n = i2d_X509(sk_X509_value(sk, i), NULL)) <= 0
            || (size_t)n > (size_t)INT_MAX / 4 - certs)
            goto end;
        certs += (size_t)n;
    }
    /* [1] EXPLICIT SEQUENCE OF Certificate */
    if ((seq = ASN1_object_size(1, (int)certs, V_ASN1_SEQUENCE)) <= 0
        || (tot = ASN1_object_size(1, seq, 1)) <= 0
        || (out = OPENSSL_malloc((size_t)tot)) == NULL)
        goto end;
    w = out;
    ASN1_put_object(&w, 1, seq, 1, V_ASN1_CONTEXT_SPECIFIC);
    ASN1_put_object(&w, 1, (int)certs, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    for (i = 0; i < sk_X509_num(sk); i++)
        if (i2d_X509(sk_X509_value(sk, i), &w) <= 0)
            goto end;
    if (w != out + tot)
        goto end;
    *der = out;
    *len = (size_t)tot;
    out = NULL;
    ok = 1;
 end:
    OPENSSL_free(out);
    sk_X509_pop_free(sk, X509_free);
    return ok;
}

int cmp_msg_set1_extracerts(CMP_MSG *msg, X509 *first,
                            const STACK_OF(X509) *chain,
                            const STACK_OF(X509) *extra)
{
    STACK_OF(X509) *sk = cmp_certs_merge(first, chain, extra);

    if (sk == NULL)
        return 0;
    sk_X509_pop_free(msg->extraCerts, X509_free);
    msg->extraCerts = sk_X509_num(sk) > 0 ? sk : NULL;
    if (msg->extraCerts == NULL)
        sk_X509_free(sk);
    return 1;
}

CMP_MSG *cmp_nested_new(STACK_OF(CMP_MSG) *inner, int single,
                        const X509 *signer, const STACK_OF(X509) *chain,
                        time_t now)
{
    CMP_MSG *msg = NULL, *first;
    CMP_HDR *hdr;

    if (sk_CMP_MSG_num(inner) < 1 || (single && sk_CMP_MSG_num(inner) != 1))
        return NULL;
    first = sk_CMP_MSG_value(inner, 0);
    if ((msg = cmp_rsp_new(NULL, CMP_BODY_NESTED, signer, now)) == NULL)
        return NULL;
    hdr = msg->header;
    /* the wrapper goes to whom the inner request goes */
    if (first->header->recipient != NULL) {
        GENERAL_NAME_free(hdr->recipient);
        if ((hdr->recipient = GENERAL_NAME_dup(first->header->recipient)) == NULL)
            goto err;
    }
    if (!ASN1_INTEGER_set(hdr->pvno, cmp_hdr_get_pvno(first->header) == 3 ? 3 : 2))
        goto err;
    if (single) {
        /* RFC 9483 5.2.2.1: the same transactionID and senderNonce */
        ASN1_OCTET_STRING_free(hdr->senderNonce);
        hdr->senderNonce = NULL;
        if ((hdr->transactionID = ASN1_OCTET_STRING_dup(first->header->transactionID)) == NULL
            || (hdr->senderNonce = ASN1_OCTET_STRING_dup(first->header->senderNonce)) == NULL)
            goto err;
    } else if (!cmp_octets_set_random(&hdr->transactionID, CMP_RSP_NONCE_LEN)) {
        goto err;
    }
    if (!cmp_msg_set1_extracerts(msg, (X509 *)signer, chain, NULL))
        goto err;
    msg->body->value.nested = inner;
    return msg;
 err:
    CMP_MSG_free(msg);
    return NULL;
}
