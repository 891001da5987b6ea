/*
 * Building the genp values (see srv_genm.h): DER assembled from the
 * alias's CA chain, the stored rollover certificates and the profile; and
 * the alias profiles a certReqTemplate may be asked for.
 */
#include "server/srv_genm.h"

#include "ca/ca_profile.h"
#include "ca/ca_rollover.h"
#include "conf/conf.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

ASN1_TYPE *srv_genm_type_der(const unsigned char *der, size_t len)
{
    ASN1_STRING *s = ASN1_STRING_new();
    ASN1_TYPE *t = NULL;

    if (s == NULL || len > 0x7fffffff || !ASN1_STRING_set(s, der, (int)len)
        || (t = ASN1_TYPE_new()) == NULL) {
        ASN1_STRING_free(s);
        return NULL;
    }
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
    return t;
}

/* Appends |tag| with definite length |len| to |buf| (room for 6 octets);
 * returns the octets written. */
static size_t srv_genm_hdr(unsigned char *buf, unsigned char tag, size_t len)
{
    size_t n = 0, i, k;

    buf[n++] = tag;
    if (len < 0x80) {
        buf[n++] = (unsigned char)len;
        return n;
    }
    for (k = 0, i = len; i > 0; i >>= 8)
        k++;
    buf[n++] = (unsigned char)(0x80 | k);
    while (k-- > 0)
        buf[n++] = (unsigned char)(len >> (8 * k));
    return n;
}

/* Largest genp value built (DER octets). */
#define SRV_GENM_MAX (1L << 20)

/* A growing DER buffer, at most SRV_GENM_MAX octets. */
struct srv_genm_buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
};

static void srv_genm_put(struct srv_genm_buf *b, const void *d, size_t len)
{
    unsigned char *np;
    size_t cap;

    if (b->failed)
        return;
    if (len > SRV_GENM_MAX || b->len + len > SRV_GENM_MAX) {
        b->failed = 1;
        return;
    }
    if (b->len + len > b->cap) {
        cap = (b->len + len) * 2 + 64;
        if ((np = realloc(b->p, cap)) == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, len);
    b->len += len;
}

/* Puts tag |tag| around the content of |in| into |out|. */
static void srv_genm_wrap(struct srv_genm_buf *out, unsigned char tag,
                          const struct srv_genm_buf *in)
{
    unsigned char h[8];

    if (in->failed) {
        out->failed = 1;
        return;
    }
    srv_genm_put(out, h, srv_genm_hdr(h, tag, in->len));
    srv_genm_put(out, in->p, in->len);
}

/* Adds |x| to |sk| (a reference) unless an equal certificate is there. */
static int srv_genm_add_cert(STACK_OF(X509) *sk, X509 *x)
{
    int i;

    for (i = 0; i < sk_X509_num(sk); i++)
        if (X509_cmp(sk_X509_value(sk, i), x) == 0)
            return 1;
    return X509_add_cert(sk, x, X509_ADD_FLAG_UP_REF);
}

/* Decodes the DER |d| and adds it to |sk| as srv_genm_add_cert does. */
static int srv_genm_add_der(STACK_OF(X509) *sk, const struct store_der *d)
{
    const unsigned char *p = d->der;
    X509 *x = d->len < (1L << 20) ? d2i_X509(NULL, &p, (long)d->len) : NULL;
    int ok = x != NULL && srv_genm_add_cert(sk, x);

    X509_free(x);
    return ok;
}

ASN1_TYPE *srv_genm_ca_certs(const struct srv_alias *a,
                             struct store_rollover **rolls, size_t nrolls)
{
    STACK_OF(X509) *chain = ca_get0_chain(a->ca), *sk = sk_X509_new_null();
    const struct store_rollover *r;
    ASN1_STRING *s = NULL;
    ASN1_TYPE *t = NULL;
    int i, ok = sk != NULL;

    for (i = 0; ok && i < sk_X509_num(chain); i++)
        ok = srv_genm_add_cert(sk, sk_X509_value(chain, i));
    r = ca_rollover_find(rolls, nrolls, ca_get0_root(a->ca), 0);
    if (ok && r != NULL)
        ok = srv_genm_add_der(sk, &r->new_with_new)
             && srv_genm_add_der(sk, &r->new_with_old)
             && srv_genm_add_der(sk, &r->old_with_new);
    if (ok && (s = ASN1_item_pack(sk, ASN1_ITEM_rptr(CMP_CERTS), NULL)) != NULL
        && (t = ASN1_TYPE_new()) != NULL) {
        ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
        s = NULL;
    }
    ASN1_STRING_free(s);
    sk_X509_pop_free(sk, X509_free);
    return t;
}

ASN1_TYPE *srv_genm_root_update(const struct store_rollover *r)
{
    struct srv_genm_buf c = { 0 }, e = { 0 }, out = { 0 };
    ASN1_TYPE *t = NULL;

    srv_genm_put(&c, r->new_with_new.der, r->new_with_new.len);
    srv_genm_put(&e, r->new_with_old.der, r->new_with_old.len);
    srv_genm_wrap(&c, 0xa0, &e);               /* newWithOld [0] */
    e.len = 0;
    srv_genm_put(&e, r->old_with_new.der, r->old_with_new.len);
    srv_genm_wrap(&c, 0xa1, &e);               /* oldWithNew [1] */
    srv_genm_wrap(&out, 0x30, &c);
    if (!out.failed)
        t = srv_genm_type_der(out.p, out.len);
    free(c.p);
    free(e.p);
    free(out.p);
    return t;
}

/* Appends one keySpec control (AttributeTypeAndValue) for an allowed key
 * type to |b|. */
static void srv_genm_key_control(struct srv_genm_buf *b, int id,
                                 const char *group, int min_bits)
{
    CMP_ITAV *c = CMP_ITAV_new();
    X509_ALGOR *alg = NULL;
    ASN1_INTEGER *bits = NULL;
    unsigned char *der = NULL;
    int len = -1, nid;

    if (c == NULL)
        goto end;
    ASN1_OBJECT_free(c->infoType);
    c->infoType = NULL;
    if (id == EVP_PKEY_RSA) {
        /* id-regCtrl-rsaKeyLen: the intended modulus length */
        if ((c->infoType = OBJ_txt2obj("1.3.6.1.5.5.7.5.1.12", 1)) == NULL
            || (bits = ASN1_INTEGER_new()) == NULL
            || !ASN1_INTEGER_set(bits, min_bits)
            || (c->infoValue = ASN1_TYPE_new()) == NULL)
            goto end;
        ASN1_TYPE_set(c->infoValue, V_ASN1_INTEGER, bits);
        bits = NULL;
    } else {
        /* id-regCtrl-algId: an AlgorithmIdentifier */
        if ((c->infoType = OBJ_txt2obj("1.3.6.1.5.5.7.5.1.11", 1)) == NULL
            || (alg = X509_ALGOR_new()) == NULL)
            goto end;
        if (id == EVP_PKEY_EC) {
            nid = group[0] != '\0' ? OBJ_sn2nid(group) : NID_undef;
            if (!X509_ALGOR_set0(alg, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                 nid != NID_undef ? V_ASN1_OBJECT
                                 : V_ASN1_UNDEF,
                                 nid != NID_undef ? OBJ_nid2obj(nid) : NULL))
                goto end;
        } else if (!X509_ALGOR_set0(alg, OBJ_nid2obj(id), V_ASN1_UNDEF,
                                    NULL)) {
            goto end;
        }
        if ((len = i2d_X509_ALGOR(alg, &der)) <= 0
            || (c->infoValue = srv_genm_type_der(der, (size_t)len)) == NULL)
            goto end;
        OPENSSL_free(der);
        der = NULL;
    }
    if ((len = i2d_CMP_ITAV(c, &der)) <= 0)
        goto end;
    srv_genm_put(b, der, (size_t)len);
    len = 0;
 end:
    if (len != 0)
        b->failed = 1;
    OPENSSL_free(der);
    ASN1_INTEGER_free(bits);
    X509_ALGOR_free(alg);
    CMP_ITAV_free(c);
}

ASN1_TYPE *srv_genm_req_template(const CA_PROFILE *p)
{
    struct srv_genm_buf c = { 0 }, ks = { 0 }, out = { 0 };
    CMP_CERTTEMPLATE *tmpl = CMP_CERTTEMPLATE_new();
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_NAME *subj = NULL;
    unsigned char *der = NULL;
    const char *group;
    ASN1_TYPE *t = NULL;
    size_t i, nkeys = ca_profile_key_count(p);
    int len, id, min_bits, max_bits;

    if (tmpl == NULL || (subj = ca_profile_template_subject(p)) == NULL
        || (exts = ca_profile_template_exts(p)) == NULL)
        goto end;
    if (X509_NAME_entry_count(subj) > 0) {
        tmpl->subject = subj;
        subj = NULL;
    }
    if (sk_X509_EXTENSION_num(exts) > 0) {
        tmpl->extensions = exts;
        exts = NULL;
    }
    if ((len = i2d_CMP_CERTTEMPLATE(tmpl, &der)) <= 0)
        goto end;
    srv_genm_put(&c, der, (size_t)len);
    for (i = 0; i < nkeys; i++)
        if (ca_profile_key_get(p, i, &id, &group, &min_bits, &max_bits))
            srv_genm_key_control(&ks, id, group, min_bits);
    if (nkeys > 0)
        srv_genm_wrap(&c, 0x30, &ks);          /* keySpec Controls */
    srv_genm_wrap(&out, 0x30, &c);
    if (!out.failed)
        t = srv_genm_type_der(out.p, out.len);
 end:
    OPENSSL_free(der);
    free(c.p);
    free(ks.p);
    free(out.p);
    X509_NAME_free(subj);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    CMP_CERTTEMPLATE_free(tmpl);
    ERR_clear_error();
    return t;
}
