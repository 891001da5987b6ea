/*
 * General messages (RFC 9483 4.3): caCerts, rootCaCert -> rootCaKeyUpdate
 * (after a root CA key rollover), certReqTemplate (from the profile, or the
 * one certProfile names) and crlStatusList -> crls (only CRLs newer than
 * the client's). Answered from the loaded CA, the stored rollovers and the
 * latest stored CRLs; nothing changes state but a first CRL. The value of
 * each known infoType is checked first: a wrong one is an error with
 * badRequest. Unknown infoTypes are left out of the genp (RFC 9810
 * 5.3.19).
 */
#include "server/srv_int.h"
#include "server/srv_genm.h"

#include "ca/ca_rollover.h"
#include "cmp/cmp_build.h"
#include "cmp/cmp_profile.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <string.h>

/* id-it arcs (1.3.6.1.5.5.7.4.N); OpenSSL 3.0 lacks NIDs for some. */
enum { IT_CA_CERTS = 17, IT_ROOT_CA_KEY_UPDATE = 18, IT_CERT_REQ_TEMPLATE = 19,
       IT_ROOT_CA_CERT = 20, IT_CERT_PROFILE = 21, IT_CRL_STATUS_LIST = 22,
       IT_CRLS = 23 };

/* Most CRLStatus entries of one crlStatusList looked at. */
#define SRV_CRL_STATUS_MAX 16

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

/* |t| as unix seconds. Returns 1 or 0. */
static int srv_genm_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (!ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

/* One CRLStatus of a crlStatusList: its source and thisUpdate. */
struct srv_crl_status {
    int issuer;                    /* 1: issuer [1] GeneralNames, 0: dpn */
    DIST_POINT_NAME *dpn;
    GENERAL_NAMES *names;
    int has_time;
    int64_t this_update;
};

static void srv_crl_status_clear(struct srv_crl_status *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        DIST_POINT_NAME_free(v[i].dpn);
        sk_GENERAL_NAME_pop_free(v[i].names, GENERAL_NAME_free);
    }
}

/* A CRLStatus list (RFC 9483 4.3.4): SEQUENCE SIZE (1..MAX) OF CRLStatus;
 * CRLStatus ::= SEQUENCE { source CRLSource, thisUpdate Time OPTIONAL };
 * CRLSource ::= CHOICE { dpn [0] DistributionPointName,
 * issuer [1] GeneralNames } (explicit tags). Returns the number of entries
 * (> 0) if |v| is one, else 0; the first SRV_CRL_STATUS_MAX entries go to
 * |out| if not NULL (free with srv_crl_status_clear). */
static size_t srv_crl_status_list(const ASN1_TYPE *v,
                                  struct srv_crl_status *out)
{
    const unsigned char *p, *c, *e, *s, *q;
    long len, clen, elen, slen;
    int tag, cls, cons;
    size_t n = 0;
    struct srv_crl_status st;

    if (v == NULL || v->type != V_ASN1_SEQUENCE)
        return 0;
    p = ASN1_STRING_get0_data(v->value.sequence);
    len = ASN1_STRING_length(v->value.sequence);
    if (!srv_der_next(&p, &len, &tag, &cls, &cons, &c, &clen) || len != 0
        || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || !cons)
        return 0;
    while (clen > 0) {
        /* one CRLStatus */
        memset(&st, 0, sizeof(st));
        if (!srv_der_next(&c, &clen, &tag, &cls, &cons, &e, &elen)
            || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || !cons)
            goto bad;
        if (!srv_der_next(&e, &elen, &tag, &cls, &cons, &s, &slen)
            || cls != V_ASN1_CONTEXT_SPECIFIC || !cons
            || (tag != 0 && tag != 1))
            goto bad;
        q = s;
        st.issuer = tag == 1;
        if (tag == 0) {
            if ((st.dpn = d2i_DIST_POINT_NAME(NULL, &q, slen)) == NULL
                || q != s + slen)
                goto bad;
        } else if ((st.names = d2i_GENERAL_NAMES(NULL, &q, slen)) == NULL
                   || q != s + slen) {
            goto bad;
        }
        if (elen > 0) {          /* thisUpdate */
            ASN1_TIME *t;
            int ok;

            q = e;
            t = d2i_ASN1_TIME(NULL, &q, elen);
            ok = t != NULL && q == e + elen
                 && srv_genm_time(t, &st.this_update);
            ASN1_TIME_free(t);
            if (!ok)
                goto bad;
            st.has_time = 1;
        }
        if (out != NULL && n < SRV_CRL_STATUS_MAX)
            out[n] = st;
        else
            srv_crl_status_clear(&st, 1);
        n++;
    }
    return n;
 bad:
    srv_crl_status_clear(&st, 1);
    if (out != NULL)
        srv_crl_status_clear(out, n < SRV_CRL_STATUS_MAX ? n
                             : SRV_CRL_STATUS_MAX);
    return 0;
}

static int srv_crl_status_list_ok(const ASN1_TYPE *v)
{
    return srv_crl_status_list(v, NULL) > 0;
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

/* The latest CRL of CA |ca_id| (generating the first one if it is the
 * alias CA and none exists). Sets *this_update. NULL if there is none. */
static X509_CRL *srv_current_crl(struct srv_ctx *ctx, int64_t ca_id,
                                 int64_t *this_update)
{
    struct store_crl *crl = NULL;
    X509_CRL *out = NULL;
    STORE_TX *tx = NULL;
    const unsigned char *p;
    char err[256];
    enum store_rc rc;

    *this_update = 0;
    if (store_begin_read(ctx->srv->store, &tx) != STORE_OK)
        return NULL;
    if ((rc = store_crl_get_last(tx, ca_id, &crl)) == STORE_OK) {
        p = crl->der;
        out = d2i_X509_CRL(NULL, &p, (long)crl->der_len);
        *this_update = crl->this_update;
        store_crl_free(crl);
        store_rollback(tx);
        return out;
    }
    store_rollback(tx);
    if (rc != STORE_NOTFOUND || ca_id != ca_get_id(ctx->alias->ca)
        || srv_write_begin(ctx, &tx) != STORE_OK)
        return NULL;
    if (!ca_crl_generate(ctx->alias->ca, tx, ctx->now, &out, err, sizeof(err))
        || store_commit_clear(&tx) != STORE_OK) {
        X509_CRL_free(out);
        store_rollback(tx);
        return NULL;
    }
    *this_update = (int64_t)ctx->now;
    return out;
}

/* Returns 1 if the CRL distribution point name |dpn| names one of the
 * distribution points of the alias profile (a fullName URI). */
static int srv_dpn_is_alias(const struct srv_alias *a,
                            const DIST_POINT_NAME *dpn)
{
    STACK_OF(X509_EXTENSION) *exts;
    CRL_DIST_POINTS *cdp = NULL;
    const GENERAL_NAME *g, *h;
    int i, j, k, found = 0;

    if (dpn->type != 0 || (exts = ca_profile_template_exts(a->profile)) == NULL)
        return 0;
    for (i = 0; i < sk_X509_EXTENSION_num(exts) && cdp == NULL; i++)
        if (OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(
                exts, i))) == NID_crl_distribution_points)
            cdp = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, i));
    for (i = 0; cdp != NULL && i < sk_DIST_POINT_num(cdp) && !found; i++) {
        const DIST_POINT_NAME *d = sk_DIST_POINT_value(cdp, i)->distpoint;

        if (d == NULL || d->type != 0)
            continue;
        for (j = 0; j < sk_GENERAL_NAME_num(d->name.fullname) && !found; j++) {
            g = sk_GENERAL_NAME_value(d->name.fullname, j);
            for (k = 0; k < sk_GENERAL_NAME_num(dpn->name.fullname); k++) {
                h = sk_GENERAL_NAME_value(dpn->name.fullname, k);
                if (g->type == GEN_URI && GENERAL_NAME_cmp((GENERAL_NAME *)g,
                                                           (GENERAL_NAME *)h)
                    == 0)
                    found = 1;
            }
        }
    }
    CRL_DIST_POINTS_free(cdp);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return found;
}

/* The store id of the CA of ours in the alias chain whose subject is a
 * directoryName of |names| (the alias CA first), or 0. */
static int64_t srv_issuer_ca_id(struct srv_ctx *ctx, const GENERAL_NAMES *names)
{
    STACK_OF(X509) *chain = ca_get0_chain(ctx->alias->ca);
    struct store_ca **cas = NULL;
    STORE_TX *tx = NULL;
    const GENERAL_NAME *g;
    const unsigned char *p;
    X509 *x;
    size_t n = 0, k;
    int64_t id = 0;
    int i, j;

    for (i = 0; i < sk_GENERAL_NAME_num(names) && id == 0; i++) {
        g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_DIRNAME)
            continue;
        for (j = 0; j < sk_X509_num(chain) && id == 0; j++) {
            if (X509_NAME_cmp(g->d.directoryName, X509_get_subject_name(
                    sk_X509_value(chain, j))) != 0)
                continue;
            if (j == 0)
                return ca_get_id(ctx->alias->ca);
            /* a CA above: ours if the store holds a CA of that name */
            if (cas == NULL
                && (store_begin_read(ctx->srv->store, &tx) != STORE_OK
                    || store_ca_list(tx, &cas, &n) != STORE_OK))
                goto end;
            for (k = 0; k < n && id == 0; k++) {
                p = cas[k]->cert_der;
                x = d2i_X509(NULL, &p, (long)cas[k]->cert_len);
                if (x != NULL && X509_NAME_cmp(g->d.directoryName,
                                               X509_get_subject_name(x)) == 0)
                    id = cas[k]->id;
                X509_free(x);
            }
        }
    }
 end:
    store_ca_list_free(cas, n);
    store_rollback(tx);
    ERR_clear_error();
    return id;
}

/* crls (id-it 23) for the crlStatusList |v| (checked already): for every
 * CRL source naming a CA of ours (a distribution point of the alias
 * profile, or the issuer name of a CA in the alias chain), its latest CRL
 * when it is newer than the client's thisUpdate (or the client has none).
 * The value is absent when there is nothing newer (RFC 9480 5.3.19.17).
 * Sets *itav; returns CMP_R_OK or the refusal. */
static enum cmp_reason srv_genm_crls(struct srv_ctx *ctx, const ASN1_TYPE *v,
                                     CMP_ITAV **itav)
{
    struct srv_crl_status st[SRV_CRL_STATUS_MAX];
    struct { int64_t id, since; } want[SRV_CRL_STATUS_MAX];
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    size_t n, i, k, nwant = 0;
    int64_t id, tu;
    X509_CRL *crl;
    enum cmp_reason r = CMP_R_OK;

    *itav = NULL;
    memset(st, 0, sizeof(st));
    n = srv_crl_status_list(v, st);
    if (n > SRV_CRL_STATUS_MAX)
        n = SRV_CRL_STATUS_MAX;
    for (i = 0; i < n; i++) {
        id = st[i].issuer ? srv_issuer_ca_id(ctx, st[i].names)
            : srv_dpn_is_alias(ctx->alias, st[i].dpn)
            ? ca_get_id(ctx->alias->ca) : 0;
        if (id == 0)
            continue;                 /* not a CRL of ours: nothing for it */
        for (k = 0; k < nwant && want[k].id != id; k++)
            ;
        if (k == nwant) {
            want[nwant].id = id;
            want[nwant].since = st[i].has_time ? st[i].this_update : -1;
            nwant++;
        } else if (!st[i].has_time || st[i].this_update < want[k].since) {
            want[k].since = st[i].has_time ? st[i].this_update : -1;
        }
    }
    if (crls == NULL) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "genp");
        goto end;
    }
    for (k = 0; k < nwant; k++) {
        if ((crl = srv_current_crl(ctx, want[k].id, &tu)) == NULL) {
            if (want[k].id == ca_get_id(ctx->alias->ca)) {
                r = srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "no CRL");
                goto end;
            }
            continue;                 /* a CA above that issued no CRL */
        }
        if (tu <= want[k].since || !sk_X509_CRL_push(crls, crl))
            X509_CRL_free(crl);
    }
    if (sk_X509_CRL_num(crls) > 0)
        *itav = srv_itav_arc(IT_CRLS, srv_pack(crls, ASN1_ITEM_rptr(CMP_CRLS)));
    else
        *itav = srv_itav_arc(IT_CRLS, NULL);
    if (*itav == NULL)
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "genp");
 end:
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    srv_crl_status_clear(st, n);
    return r;
}

/* The stored root CA key rollovers (all CAs; few rows). */
static enum cmp_reason srv_genm_rollovers(struct srv_ctx *ctx,
                                          struct store_rollover ***v,
                                          size_t *n)
{
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if ((rc = store_begin_read(ctx->srv->store, &tx)) == STORE_OK)
        rc = store_rollover_list(tx, 0, v, n);
    store_rollback(tx);
    if (rc != STORE_OK)
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "cannot read the root CA "
                        "key rollovers");
    return CMP_R_OK;
}

/* rootCaKeyUpdate (id-it 18) for a rootCaCert request with value |v|
 * (checked already; absent = the alias CA's root): the newest rollover of
 * that root, or an absent value when there is none (RFC 9483 4.3.2). */
static CMP_ITAV *srv_genm_root_ca(struct srv_ctx *ctx, const ASN1_TYPE *v,
                                  struct store_rollover **rolls, size_t n)
{
    const struct store_rollover *r;
    const unsigned char *p;
    X509 *root = NULL;

    if (v != NULL) {
        p = ASN1_STRING_get0_data(v->value.sequence);
        root = d2i_X509(NULL, &p, ASN1_STRING_length(v->value.sequence));
        r = ca_rollover_find(rolls, n, root, 1);
        X509_free(root);
    } else {
        r = ca_rollover_find(rolls, n, ca_get0_root(ctx->alias->ca), 0);
    }
    return srv_itav_arc(IT_ROOT_CA_KEY_UPDATE,
                        r != NULL ? srv_genm_root_update(r) : NULL);
}

/* The profile a certReqTemplate is asked for: the certProfile of the
 * header's generalInfo (RFC 9483 4.3.3) among the alias's profiles
 * (srv_profile_lookup, as enrollment chooses them) or the alias profile.
 * Sets *prof, or refuses: several names or a malformed value badRequest,
 * a name not offered on the alias badCertTemplate. */
static enum cmp_reason srv_genm_profile(struct srv_ctx *ctx,
                                        const CA_PROFILE **prof)
{
    const struct srv_profile *p;
    char *name = NULL;
    enum cmp_reason r;

    *prof = ctx->alias->profile;
    if ((r = cmp_hdr_get1_cert_profile(ctx->req->header, &name)) != CMP_R_OK)
        return srv_fail(ctx, r, "genm: certProfile: one profile name "
                        "expected");
    if (name == NULL)
        return CMP_R_OK;
    if ((p = srv_profile_lookup(ctx, name)) == NULL)
        r = srv_fail(ctx, CMP_R_BAD_CERT_TEMPLATE, "genm: profile '%.64s' "
                     "is not offered on this alias", name);
    else
        *prof = p->prof;
    free(name);
    return r;
}

enum cmp_reason srv_genm(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    STACK_OF(CMP_ITAV) *in = ctx->req->body->value.genm, *out = NULL;
    struct store_rollover **rolls = NULL;
    size_t nrolls = 0;
    const CA_PROFILE *prof = NULL;
    CMP_ITAV *itav, *req_itav;
    enum cmp_reason r;
    int i, arc, need_rolls = 0, need_prof = 0;

    if ((r = ctx->mode->verify(ctx)) != CMP_R_OK
        || (r = ctx->mode->authenticate(ctx, SRV_OP_GENM)) != CMP_R_OK
        || (r = ctx->mode->authorise(ctx, SRV_OP_GENM)) != CMP_R_OK)
        return r;
    if ((r = srv_txn_check_unused(ctx)) != CMP_R_OK)
        return r;
    for (i = 0; i < sk_CMP_ITAV_num(in); i++) {
        itav = sk_CMP_ITAV_value(in, i);
        arc = srv_it_arc(itav->infoType);
        if ((r = srv_genm_value_check(ctx, arc, itav->infoValue)) != CMP_R_OK)
            return r;
        need_rolls |= arc == IT_CA_CERTS || arc == IT_ROOT_CA_CERT;
        need_prof |= arc == IT_CERT_REQ_TEMPLATE;
    }
    if (need_prof && (r = srv_genm_profile(ctx, &prof)) != CMP_R_OK)
        return r;
    if (need_rolls && (r = srv_genm_rollovers(ctx, &rolls, &nrolls))
        != CMP_R_OK)
        return r;
    if ((out = sk_CMP_ITAV_new_null()) == NULL)
        goto oom;
    for (i = 0; i < sk_CMP_ITAV_num(in); i++) {
        req_itav = sk_CMP_ITAV_value(in, i);
        switch (srv_it_arc(req_itav->infoType)) {
        case IT_CA_CERTS:
            itav = srv_itav_arc(IT_CA_CERTS, srv_genm_ca_certs(ctx->alias,
                                                               rolls, nrolls));
            break;
        case IT_ROOT_CA_CERT:
            itav = srv_genm_root_ca(ctx, req_itav->infoValue, rolls, nrolls);
            break;
        case IT_CERT_REQ_TEMPLATE:
            itav = srv_itav_arc(IT_CERT_REQ_TEMPLATE,
                                srv_genm_req_template(prof));
            break;
        case IT_CRL_STATUS_LIST:
            if ((r = srv_genm_crls(ctx, req_itav->infoValue, &itav))
                != CMP_R_OK) {
                sk_CMP_ITAV_pop_free(out, CMP_ITAV_free);
                store_rollover_list_free(rolls, nrolls);
                return r;
            }
            break;
        default:
            continue; /* unknown requests are left out (RFC 9810 5.3.19) */
        }
        /* a value that should be there but could not be built */
        arc = srv_it_arc(req_itav->infoType);
        if (itav == NULL || (itav->infoValue == NULL
                             && arc != IT_ROOT_CA_CERT
                             && arc != IT_CRL_STATUS_LIST)
            || !sk_CMP_ITAV_push(out, itav)) {
            CMP_ITAV_free(itav);
            goto oom;
        }
    }
    store_rollover_list_free(rolls, nrolls);
    rolls = NULL;
    if ((*rsp = srv_rsp_new(ctx, CMP_BODY_GENP)) == NULL
        || !cmp_body_set_genp(*rsp, out)) {
        CMP_MSG_free(*rsp);
        *rsp = NULL;
        goto oom;
    }
    return CMP_R_OK;
 oom:
    store_rollover_list_free(rolls, nrolls);
    sk_CMP_ITAV_pop_free(out, CMP_ITAV_free);
    return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "genp");
}
