/*
 * General messages (RFC 9483 4.3): caCerts, rootCaCert -> rootCaKeyUpdate,
 * certReqTemplate and crlStatusList -> crls. Answered from the loaded CA and
 * the latest stored CRL; nothing changes state. The value of each known
 * infoType is checked first: a wrong one is an error with badRequest.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <string.h>

/* id-it arcs (1.3.6.1.5.5.7.4.N); OpenSSL 3.0 lacks NIDs for some. */
enum { IT_CA_CERTS = 17, IT_ROOT_CA_KEY_UPDATE = 18, IT_CERT_REQ_TEMPLATE = 19,
       IT_ROOT_CA_CERT = 20, IT_CRL_STATUS_LIST = 22, IT_CRLS = 23 };

/* Returns N for an id-it OID 1.3.6.1.5.5.7.4.N, else -1. */
static int srv_it_arc(const ASN1_OBJECT *obj)
{
    static const char prefix[] = "1.3.6.1.5.5.7.4.";
    char buf[64];
    char *end;
    long v;

    if (OBJ_obj2txt(buf, sizeof(buf), obj, 1) <= 0
        || strncmp(buf, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    v = strtol(buf + sizeof(prefix) - 1, &end, 10);
    return *end == '\0' && v > 0 && v < 100 ? (int)v : -1;
}

static CMP_ITAV *srv_itav_arc(int arc, ASN1_TYPE *value)
{
    char oid[40];
    CMP_ITAV *itav;

    snprintf(oid, sizeof(oid), "1.3.6.1.5.5.7.4.%d", arc);
    if ((itav = CMP_ITAV_new()) == NULL) {
        ASN1_TYPE_free(value);
        return NULL;
    }
    ASN1_OBJECT_free(itav->infoType);
    if ((itav->infoType = OBJ_txt2obj(oid, 1)) == NULL) {
        CMP_ITAV_free(itav);
        ASN1_TYPE_free(value);
        return NULL;
    }
    itav->infoValue = value;
    return itav;
}

/* Packs |val| of |it| as a SEQUENCE ASN1_TYPE. */
static ASN1_TYPE *srv_pack(const void *val, const ASN1_ITEM *it)
{
    ASN1_STRING *s = ASN1_item_pack((void *)val, it, NULL);
    ASN1_TYPE *t;

    if (s == NULL)
        return NULL;
    if ((t = ASN1_TYPE_new()) == NULL) {
        ASN1_STRING_free(s);
        return NULL;
    }
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
    return t;
}

/* Reads one DER element from *p (|len| left): its tag, class, whether it
 * is constructed, and its content (*c, *clen); advances *p. Returns 1, or
 * 0 if it is not a definite-length element within |len|. */
static int srv_der_next(const unsigned char **p, long *len, int *tag,
                        int *cls, int *cons, const unsigned char **c,
                        long *clen)
{
    const unsigned char *q = *p;
    int ret = ASN1_get_object(&q, clen, tag, cls, *len);

    if ((ret & 0x80) != 0 || ret == 0x21 || *clen > *len - (q - *p))
        return 0;
    *cons = (ret & V_ASN1_CONSTRUCTED) != 0;
    *c = q;
    *len -= (q - *p) + *clen;
    *p = q + *clen;
    return 1;
}

/* A CRLStatus list (RFC 9483 4.3.4): SEQUENCE SIZE (1..MAX) OF CRLStatus;
 * CRLStatus ::= SEQUENCE { source CRLSource, thisUpdate Time OPTIONAL };
 * CRLSource ::= CHOICE { dpn [0] DistributionPointName,
 * issuer [1] GeneralNames } (explicit tags). 1 if |v| is one. */
static int srv_crl_status_list_ok(const ASN1_TYPE *v)
{
    const unsigned char *p, *c, *e, *s, *q;
    long len, clen, elen, slen;
    int tag, cls, cons, n = 0;

    if (v == NULL || v->type != V_ASN1_SEQUENCE)
        return 0;
    p = ASN1_STRING_get0_data(v->value.sequence);
    len = ASN1_STRING_length(v->value.sequence);
    if (!srv_der_next(&p, &len, &tag, &cls, &cons, &c, &clen) || len != 0
        || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || !cons)
        return 0;
    while (clen > 0) {
        /* one CRLStatus */
        if (!srv_der_next(&c, &clen, &tag, &cls, &cons, &e, &elen)
            || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || !cons)
            return 0;
        if (!srv_der_next(&e, &elen, &tag, &cls, &cons, &s, &slen)
            || cls != V_ASN1_CONTEXT_SPECIFIC || !cons || (tag != 0 && tag != 1))
            return 0;
        q = s;
        if (tag == 0) {
            DIST_POINT_NAME *dpn = d2i_DIST_POINT_NAME(NULL, &q, slen);

            DIST_POINT_NAME_free(dpn);
            if (dpn == NULL || q != s + slen)
                return 0;
        } else {
            GENERAL_NAMES *gn = d2i_GENERAL_NAMES(NULL, &q, slen);

            sk_GENERAL_NAME_pop_free(gn, GENERAL_NAME_free);
            if (gn == NULL || q != s + slen)
                return 0;
        }
        if (elen > 0) {          /* thisUpdate */
            ASN1_TIME *t;

            q = e;
            t = d2i_ASN1_TIME(NULL, &q, elen);
            ASN1_TIME_free(t);
            if (t == NULL || q != e + elen)
                return 0;
        }
        n++;
    }
    return n > 0;
}

/* Checks the genm value of known infoType |arc| (RFC 9483 4.3): absent for
 * caCerts and certReqTemplate, absent or a certificate for rootCaCert, a
 * CRLStatus list for crlStatusList. CMP_R_OK or badRequest with the text. */
static enum cmp_reason srv_genm_value_check(struct srv_ctx *ctx, int arc,
                                            const ASN1_TYPE *v)
{
    const unsigned char *p, *q;
    X509 *x;
    long len;

    switch (arc) {
    case IT_CA_CERTS:
    case IT_CERT_REQ_TEMPLATE:
        if (v != NULL)
            return srv_fail(ctx, CMP_R_BAD_REQUEST, "genm: %s takes no value "
                            "(RFC 9483 4.3)", arc == IT_CA_CERTS ? "caCerts"
                            : "certReqTemplate");
        return CMP_R_OK;
    case IT_ROOT_CA_CERT:
        if (v == NULL)
            return CMP_R_OK;
        if (v->type == V_ASN1_SEQUENCE) {
            p = q = ASN1_STRING_get0_data(v->value.sequence);
            len = ASN1_STRING_length(v->value.sequence);
            x = d2i_X509(NULL, &q, len);
            X509_free(x);
            ERR_clear_error();
            if (x != NULL && q == p + len)
                return CMP_R_OK;
        }
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "genm: the rootCaCert value "
                        "is not a certificate (RFC 9483 4.3.2)");
    case IT_CRL_STATUS_LIST:
        if (!srv_crl_status_list_ok(v)) {
            ERR_clear_error();
            return srv_fail(ctx, CMP_R_BAD_REQUEST, "genm: the crlStatusList "
                            "value is %s (RFC 9483 4.3.4)", v == NULL
                            ? "absent, a CRLStatus list is required"
                            : "not a CRLStatus list");
        }
        return CMP_R_OK;
    default:
        return CMP_R_OK;
    }
}

/* The latest CRL of the alias CA (generating the first one if needed). */
static X509_CRL *srv_current_crl(struct srv_ctx *ctx)
{
    struct store_crl *crl = NULL;
    X509_CRL *out = NULL;
    STORE_TX *tx = NULL;
    const unsigned char *p;
    char err[256];

    if (store_begin_read(ctx->srv->store, &tx) != STORE_OK)
        return NULL;
    if (store_crl_get_last(tx, ca_get_id(ctx->alias->ca), &crl) == STORE_OK) {
        p = crl->der;
        out = d2i_X509_CRL(NULL, &p, (long)crl->der_len);
        store_crl_free(crl);
        store_rollback(tx);
        return out;
    }
    store_rollback(tx);
    if (srv_write_begin(ctx, &tx) != STORE_OK)
        return NULL;
    if (!ca_crl_generate(ctx->alias->ca, tx, ctx->now, &out, err, sizeof(err))
        || store_commit_clear(&tx) != STORE_OK) {
        X509_CRL_free(out);
        store_rollback(tx);
        return NULL;
    }
    return out;
}

enum cmp_reason srv_genm(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    STACK_OF(CMP_ITAV) *in = ctx->req->body->value.genm, *out = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    CMP_ITAV *itav;
    X509_CRL *crl;
    enum cmp_reason r;
    int i;

    if ((r = ctx->mode->verify(ctx)) != CMP_R_OK
        || (r = ctx->mode->authenticate(ctx, SRV_OP_GENM)) != CMP_R_OK
        || (r = ctx->mode->authorise(ctx, SRV_OP_GENM)) != CMP_R_OK)
        return r;
    if ((r = srv_txn_check_unused(ctx)) != CMP_R_OK)
        return r;
    for (i = 0; i < sk_CMP_ITAV_num(in); i++) {
        itav = sk_CMP_ITAV_value(in, i);
        if ((r = srv_genm_value_check(ctx, srv_it_arc(itav->infoType),
                                      itav->infoValue)) != CMP_R_OK)
            return r;
    }
    if ((out = sk_CMP_ITAV_new_null()) == NULL)
        goto oom;
    for (i = 0; i < sk_CMP_ITAV_num(in); i++) {
        switch (srv_it_arc(sk_CMP_ITAV_value(in, i)->infoType)) {
        case IT_CA_CERTS:
            itav = srv_itav_arc(IT_CA_CERTS,
                               srv_pack(ca_get0_chain(ctx->alias->ca),
                                       ASN1_ITEM_rptr(CMP_CERTS)));
            break;
        case IT_ROOT_CA_CERT:
            /* no root key update is pending: value absent */
            itav = srv_itav_arc(IT_ROOT_CA_KEY_UPDATE, NULL);
            break;
        case IT_CERT_REQ_TEMPLATE:
            /* the profile decides everything: no template to offer */
            itav = srv_itav_arc(IT_CERT_REQ_TEMPLATE, NULL);
            break;
        case IT_CRL_STATUS_LIST:
            if ((crl = srv_current_crl(ctx)) == NULL) {
                sk_CMP_ITAV_pop_free(out, CMP_ITAV_free);
                return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "no CRL");
            }
            crls = sk_X509_CRL_new_null();
            if (crls == NULL || !sk_X509_CRL_push(crls, crl)) {
                X509_CRL_free(crl);
                goto oom;
            }
            itav = srv_itav_arc(IT_CRLS, srv_pack(crls, ASN1_ITEM_rptr(CMP_CRLS)));
            sk_X509_CRL_pop_free(crls, X509_CRL_free);
            crls = NULL;
            break;
        default:
            continue; /* unknown requests are ignored (RFC 9810 5.3.19) */
        }
        if (itav == NULL || !sk_CMP_ITAV_push(out, itav)) {
            CMP_ITAV_free(itav);
            goto oom;
        }
    }
    if ((*rsp = srv_rsp_new(ctx, CMP_BODY_GENP)) == NULL
        || !cmp_body_set_genp(*rsp, out)) {
        CMP_MSG_free(*rsp);
        *rsp = NULL;
        goto oom;
    }
    return CMP_R_OK;
 oom:
    sk_CMP_ITAV_pop_free(out, CMP_ITAV_free);
    return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "genp");
}
