/*
 * Issuing straight to DER: the TBSCertificate is assembled from parts the
 * profile and CA encoded once plus the per-certificate values (serial,
 * validity, subject, SPKI, SKI, SAN), signed once as bytes, and returned
 * with the store record fields computed on the way. No X509 object.
 */
#include "ca/ca_int.h"
#include "ca/ca_tbs.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Signatures up to this size are made on the stack. */
#define CA_SIG_STACK 1024

/* Where a part lives in the scratch buffer. */
struct ca_span {
    size_t off, len;
};

/* Appends |name|'s DER to |s| and prints it (RFC 2253) into |text|. */
static enum ca_issue_rc ca_der_name(const X509_NAME *name, struct ca_buf *s,
                                    struct ca_span *sp, struct ca_buf *text)
{
    const unsigned char *der;
    size_t len;
    BIO *bio = NULL;
    enum ca_issue_rc rc = CA_ISSUE_ERROR;

    sp->off = s->len;
    if (!X509_NAME_get0_der(name, &der, &len) || !ca_buf_add(s, der, len)
        || (bio = ca_tbs_bio_new(text)) == NULL
        || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
        goto end;
    sp->len = len;
    rc = CA_ISSUE_OK;
 end:
    BIO_free(bio);
    return rc;
}

/* Expands the subject template: RDNs in template order into |s| (as one
 * Name), their text in reverse order, comma-separated, into |text| (which
 * is what X509_NAME_print_ex(XN_FLAG_RFC2253) prints for a name of
 * single-attribute RDNs with known attribute types). */
static enum ca_issue_rc ca_der_template(const CA_PROFILE *p,
                                        const struct ca_tbs_prof *t,
                                        const struct ca_issue_req *req,
                                        struct ca_buf *s, struct ca_span *sp,
                                        struct ca_buf *text, char *err,
                                        size_t errlen)
{
    char val[1024];
    struct ca_buf rdns = { 0 }, pieces = { 0 };
    struct ca_span stackspan[16], *ts = stackspan;
    size_t i, start;
    int r;
    enum ca_issue_rc rc = CA_ISSUE_ERROR;

    if (p->nsubj > sizeof(stackspan) / sizeof(stackspan[0])
        && (ts = calloc(p->nsubj, sizeof(*ts))) == NULL)
        return CA_ISSUE_ERROR;
    for (i = 0; i < p->nsubj; i++) {
        const struct ca_tbs_rdn *a = &t->rdn[i];

        start = pieces.len;
        if (a->der != NULL) {
            if (!ca_buf_add(&rdns, a->der, a->der_len)
                || !ca_buf_add(&pieces, a->text, a->text_len))
                goto end;
        } else {
            if (!ca_template_expand(p->subj[i].value, req->vars,
                                    req->vars_arg, val, sizeof(val), err,
                                    errlen)) {
                rc = CA_ISSUE_BAD_SUBJECT;
                goto end;
            }
            r = ca_tbs_rdn(p->subj[i].nid, val, &rdns, &pieces);
            if (r == 0) {
                snprintf(err, errlen, "value '%s' not valid for %s", val,
                         OBJ_nid2sn(p->subj[i].nid));
                rc = CA_ISSUE_BAD_SUBJECT;
                goto end;
            }
            if (r < 0)
                goto end;
        }
        ts[i].off = start;
        ts[i].len = pieces.len - start;
    }
    sp->off = s->len;
    if (!ca_buf_hdr(s, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, rdns.len)
        || !ca_buf_add(s, rdns.p, rdns.len))
        goto end;
    sp->len = s->len - sp->off;
    for (i = p->nsubj; i-- > 0;) {
        if ((i + 1 < p->nsubj && !ca_buf_add(text, ",", 1))
            || !ca_buf_add(text, pieces.p + ts[i].off, ts[i].len))
            goto end;
    }
    rc = CA_ISSUE_OK;
 end:
    if (ts != stackspan)
        free(ts);
    ca_buf_free(&rdns);
    ca_buf_free(&pieces);
    ERR_clear_error();
    return rc;
}

/* The subject: forced, requested (if the profile allows it), or the
 * template expanded; the same rules as ca_issue(). */
static enum ca_issue_rc ca_der_subject(const CA_PROFILE *p,
                                       const struct ca_tbs_prof *t,
                                       const struct ca_issue_req *req,
                                       struct ca_buf *s, struct ca_span *sp,
                                       struct ca_buf *text, char *err,
                                       size_t errlen)
{
    if (req->force_subject != NULL)
        return ca_der_name(req->force_subject, s, sp, text);
    if (p->allow_requested_subject && req->subject != NULL
        && X509_NAME_entry_count(req->subject) > 0)
        return ca_der_name(req->subject, s, sp, text);
    if (p->nsubj == 0) {
        snprintf(err, errlen, "profile %s has no subject template and the "
                 "request names no subject", p->name);
        return CA_ISSUE_BAD_SUBJECT;
    }
    return ca_der_template(p, t, req, s, sp, text, err, errlen);
}

/* Appends the subjectAltName extension per the profile's san rule (nothing
 * when there is none). */
static enum ca_issue_rc ca_der_san(const CA_PROFILE *p,
                                   const struct ca_issue_req *req,
                                   struct ca_buf *s, struct ca_span *sp,
                                   char *err, size_t errlen)
{
    const struct ca_tbs_const *g = ca_tbs_const_get();
    GENERAL_NAMES *gens = NULL;
    unsigned char *v = NULL;
    int vlen, crit;
    enum ca_issue_rc rc;

    sp->off = s->len;
    sp->len = 0;
    if ((rc = ca_san_names(p, req, &gens, &crit, err, errlen)) != CA_ISSUE_OK
        || gens == NULL)
        return rc;
    rc = CA_ISSUE_ERROR;
    /* the extnValue X509V3_EXT_i2d() would encode: the GeneralNames DER */
    if (g == NULL || (vlen = i2d_GENERAL_NAMES(gens, &v)) <= 0
        || !ca_der_ext(s, g->oid_san, g->oid_san_len, crit, v, (size_t)vlen))
        goto end;
    sp->len = s->len - sp->off;
    rc = CA_ISSUE_OK;
 end:
    OPENSSL_free(v);
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return rc;
}

/*
 * Appends the SubjectPublicKeyInfo and hashes the key bits (SKI, RFC 5280
 * method 1). A request's encoded key is re-encoded from its algorithm and
 * bits exactly as ca_issue() copies it (same parameter types accepted);
 * otherwise |pkey| goes through OpenSSL's encoder.
 */
static int ca_der_spki(const struct ca_issue_req *req, struct ca_buf *s,
                       struct ca_span *sp, unsigned char ski[20])
{
    const struct ca_tbs_const *g = ca_tbs_const_get();
    const X509_PUBKEY *spki = req->spki;
    X509_PUBKEY *own = NULL;
    const ASN1_OBJECT *aobj;
    const unsigned char *pk;
    const void *pval;
    X509_ALGOR *palg;
    unsigned int mdlen = 0;
    int pklen, ptype, n, ok = 0;

    sp->off = s->len;
    if (g == NULL)
        return 0;
    if (spki == NULL) {
        if (!X509_PUBKEY_set(&own, req->pubkey)
            || !ca_buf_item(s, own, ASN1_ITEM_rptr(X509_PUBKEY)))
            goto end;
        spki = own;
    }
    if (!X509_PUBKEY_get0_param(NULL, &pk, &pklen, &palg, spki)
        || pklen <= 0)
        goto end;
    if (own == NULL) {
        X509_ALGOR_get0(&aobj, &ptype, &pval, palg);
        if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL
            && ptype != V_ASN1_OBJECT && ptype != V_ASN1_SEQUENCE)
            goto end;
        /* SEQUENCE { algorithm, subjectPublicKey BIT STRING (0 unused) } */
        if ((n = i2d_X509_ALGOR(palg, NULL)) <= 0
            || ca_der_size(V_ASN1_BIT_STRING, (size_t)pklen + 1) == 0
            || !ca_buf_hdr(s, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL,
                           (size_t)n + ca_der_size(V_ASN1_BIT_STRING,
                                                   (size_t)pklen + 1))
            || !ca_buf_item(s, palg, ASN1_ITEM_rptr(X509_ALGOR)))
            goto end;
        if (!ca_buf_hdr(s, 0, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL,
                        (size_t)pklen + 1)
            || !ca_buf_add(s, "", 1) || !ca_buf_add(s, pk, (size_t)pklen))
            goto end;
    }
    if (!EVP_Digest(pk, (size_t)pklen, ski, &mdlen, g->sha1, NULL)
        || mdlen != 20)
        goto end;
    sp->len = s->len - sp->off;
    ok = 1;
 end:
    X509_PUBKEY_free(own);
    ERR_clear_error();
    return ok;
}

/* Appends the DER of |ext|. */
static int ca_der_ext_obj(const X509_EXTENSION *ext, struct ca_buf *s,
                          struct ca_span *sp)
{
    sp->off = s->len;
    if (!ca_buf_item(s, ext, ASN1_ITEM_rptr(X509_EXTENSION)))
        return 0;
    sp->len = s->len - sp->off;
    return 1;
}

/* Copies |n| bytes to *w and advances it. */
static void ca_put(unsigned char **w, const void *d, size_t n)
{
    memcpy(*w, d, n);
    *w += n;
}

/* Writes a header for |len| content octets at *w and advances it. */
static void ca_put_hdr(unsigned char **w, int constructed, int tag,
                       int xclass, size_t len)
{
    ASN1_put_object(w, constructed, (int)len, tag, xclass);
}

/* Everything ca_issue_der() computes before the final assembly. */
struct ca_parts {
    unsigned char serial[CA_SERIAL_LEN];
    size_t serial_len;
    unsigned char ser_der[32], nb_der[24], na_der[24];
    size_t ser_len, nb_len, na_len;
    const unsigned char *sigalg, *issuer;
    size_t sigalg_len, issuer_len;
    struct ca_buf s;                     /* subject, SPKI, SKI, AKI, SAN */
    struct ca_span subj, spki, ski, aki, san;
};

/* The last few times encoded by this thread (issuing in the same second
 * needs the same notBefore/notAfter again). */
#define CA_TIME_CACHE 4
static _Thread_local struct {
    time_t t;
    unsigned char der[24];
    size_t len;
} ca_time_cache[CA_TIME_CACHE];
static _Thread_local unsigned ca_time_next;

/* Encodes |when| as X509_time_adj_ex() sets a certificate time (UTCTime
 * through 2049, GeneralizedTime after) into |out| (24 bytes). */
static int ca_der_time(time_t when, unsigned char *out, size_t *len)
{
    ASN1_TIME *t = NULL;
    unsigned char *w = out;
    unsigned i;
    int n, ok = 0;

    for (i = 0; i < CA_TIME_CACHE; i++) {
        if (ca_time_cache[i].len > 0 && ca_time_cache[i].t == when) {
            memcpy(out, ca_time_cache[i].der, ca_time_cache[i].len);
            *len = ca_time_cache[i].len;
            return 1;
        }
    }
    if ((t = X509_time_adj_ex(NULL, 0, 0, &when)) == NULL
        || (n = i2d_ASN1_TIME(t, NULL)) <= 0
        || (size_t)n > sizeof(ca_time_cache[0].der)
        || i2d_ASN1_TIME(t, &w) != n)
        goto end;
    *len = (size_t)n;
    i = ca_time_next++ % CA_TIME_CACHE;
    ca_time_cache[i].t = when;
    memcpy(ca_time_cache[i].der, out, (size_t)n);
    ca_time_cache[i].len = (size_t)n;
    ok = 1;
 end:
    ASN1_TIME_free(t);
    return ok;
}

/* Encodes the serial and the validity times. */
static int ca_der_serial_validity(struct ca_parts *pt, time_t nb, time_t na)
{
    ASN1_INTEGER ai;
    unsigned char *w;
    int n;

    if (!ca_serial_next(pt->serial, &pt->serial_len))
        return 0;
    memset(&ai, 0, sizeof(ai));
    ai.type = V_ASN1_INTEGER;
    ai.length = (int)pt->serial_len;
    ai.data = pt->serial;
    w = pt->ser_der;
    if ((n = i2d_ASN1_INTEGER(&ai, NULL)) <= 0
        || (size_t)n > sizeof(pt->ser_der) || i2d_ASN1_INTEGER(&ai, &w) != n)
        return 0;
    pt->ser_len = (size_t)n;
    return ca_der_time(nb, pt->nb_der, &pt->nb_len)
        && ca_der_time(na, pt->na_der, &pt->na_len);
}

/*
 * Writes TBSCertificate, signs it and finishes the Certificate into one
 * OPENSSL_malloc'ed buffer. Returns 1 or 0 (*sign_failed set when the
 * signer refused). With |u|, not signed: zero octets of the longest
 * signature in its place, and *u says where the TBSCertificate is.
 */
static int ca_der_assemble(const CA *ca, const struct ca_tbs_const *g,
                           const struct ca_tbs_prof *t, struct ca_parts *pt,
                           unsigned char **out, size_t *outlen,
                           int *sign_failed, struct ca_issue_unsigned *u)
{
    const unsigned char *sb = pt->s.p;
    unsigned char sigstack[CA_SIG_STACK], *sig = sigstack, *buf = NULL;
    unsigned char *w, *tbs;
    size_t maxsig = ca_signer_max_sig_len(ca->signer), siglen;
    size_t validity, exts, extblk, tbs_content, tbs_total, cert_max, hmax;
    size_t cert_content, h, bits;
    int ok = 0;

    *out = NULL;
    *sign_failed = 0;
    validity = ca_der_size(V_ASN1_SEQUENCE, pt->nb_len + pt->na_len);
    exts = t->ext_pre_len + pt->ski.len + pt->aki.len + t->ext_post_len
        + pt->san.len;
    extblk = ca_der_size(V_ASN1_SEQUENCE, exts);
    extblk = extblk != 0 ? ca_der_size(3, extblk) : 0;  /* 0: too large */
    tbs_content = g->version_len + pt->ser_len + pt->sigalg_len
        + pt->issuer_len + validity + pt->subj.len + pt->spki.len + extblk;
    tbs_total = ca_der_size(V_ASN1_SEQUENCE, tbs_content);
    bits = ca_der_size(V_ASN1_BIT_STRING, maxsig + 1);
    if (maxsig == 0 || validity == 0 || extblk == 0 || tbs_total == 0
        || bits == 0)
        return 0;
    cert_max = tbs_total + pt->sigalg_len + bits;
    if ((hmax = ca_der_size(V_ASN1_SEQUENCE, cert_max)) == 0)
        return 0;
    hmax -= cert_max;
    if ((buf = OPENSSL_malloc(hmax + cert_max)) == NULL)
        return 0;
    if (maxsig > sizeof(sigstack) && (sig = OPENSSL_malloc(maxsig)) == NULL)
        goto end;

    /* TBSCertificate, in the order RFC 5280 gives */
    tbs = w = buf + hmax;
    ca_put_hdr(&w, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, tbs_content);
    ca_put(&w, g->version, g->version_len);
    ca_put(&w, pt->ser_der, pt->ser_len);
    ca_put(&w, pt->sigalg, pt->sigalg_len);
    ca_put(&w, pt->issuer, pt->issuer_len);
    ca_put_hdr(&w, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL,
               pt->nb_len + pt->na_len);
    ca_put(&w, pt->nb_der, pt->nb_len);
    ca_put(&w, pt->na_der, pt->na_len);
    ca_put(&w, sb + pt->subj.off, pt->subj.len);
    ca_put(&w, sb + pt->spki.off, pt->spki.len);
    ca_put_hdr(&w, 1, 3, V_ASN1_CONTEXT_SPECIFIC,
               ca_der_size(V_ASN1_SEQUENCE, exts));
    ca_put_hdr(&w, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, exts);
    /* extensions in ca_issue()'s order: basicConstraints, keyUsage,
     * extKeyUsage, SKI, AKI, CRL DP, AIA, SAN */
    if (t->ext_pre_len > 0)
        ca_put(&w, t->ext_pre, t->ext_pre_len);
    ca_put(&w, sb + pt->ski.off, pt->ski.len);
    ca_put(&w, sb + pt->aki.off, pt->aki.len);
    if (t->ext_post_len > 0)
        ca_put(&w, t->ext_post, t->ext_post_len);
    if (pt->san.len > 0)
        ca_put(&w, sb + pt->san.off, pt->san.len);
    if ((size_t)(w - tbs) != tbs_total)
        goto end;

    siglen = maxsig;
    if (u != NULL) {
        memset(sig, 0, maxsig);
    } else if (!ca_signer_sign_buf(ca->signer, tbs, tbs_total, sig,
                                   &siglen)) {
        *sign_failed = 1;
        goto end;
    }
    /* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
     * signatureValue BIT STRING (no unused bits) } */
    cert_content = tbs_total + pt->sigalg_len
        + ca_der_size(V_ASN1_BIT_STRING, siglen + 1);
    h = ca_der_size(V_ASN1_SEQUENCE, cert_content) - cert_content;
    if (h < hmax)
        memmove(buf + h, tbs, tbs_total);
    w = buf;
    ca_put_hdr(&w, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, cert_content);
    w += tbs_total;
    ca_put(&w, pt->sigalg, pt->sigalg_len);
    ca_put_hdr(&w, 0, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, siglen + 1);
    *w++ = 0;
    ca_put(&w, sig, siglen);
    *outlen = (size_t)(w - buf);
    *out = buf;
    buf = NULL;
    if (u != NULL) {
        u->signer = ca->signer;
        u->tbs_off = h;
        u->tbs_len = tbs_total;
    }
    ok = 1;
 end:
    if (sig != sigstack)
        OPENSSL_free(sig);
    OPENSSL_free(buf);
    return ok;
}

enum ca_issue_rc ca_issue_der(const CA *ca, const CA_PROFILE *p,
                              const struct ca_issue_req *req,
                              int64_t device_id, struct store_cert *rec,
                              char *err, size_t errlen)
{
    const struct ca_tbs_const *g = ca_tbs_const_get();
    const struct ca_tbs_prof *t = p->tbs;
    struct ca_tbs_prof *own = NULL;
    struct ca_parts pt;
    struct ca_buf text = { 0 };
    unsigned char ski[20];
    unsigned char *der = NULL;
    size_t der_len = 0;
    unsigned int mdlen = 0;
    time_t nb, na;
    int sign_failed = 0;
    enum ca_issue_rc rc = CA_ISSUE_ERROR;

    memset(rec, 0, sizeof(*rec));
    memset(&pt, 0, sizeof(pt));
    if ((rc = ca_issue_prepare(ca, p, req, &nb, &na, err, errlen))
        != CA_ISSUE_OK)
        return rc;
    rc = CA_ISSUE_ERROR;
    if (g == NULL)
        goto end;
    if (t == NULL) { /* a profile not made by ca_profile_from_conf() */
        if (!ca_tbs_prof_new(p, &own))
            goto end;
        t = own;
    }
    if (!ca_der_serial_validity(&pt, nb, na)
        || !X509_NAME_get0_der(X509_get_subject_name(ca->cert), &pt.issuer,
                               &pt.issuer_len))
        goto end;
    if (!ca_der_spki(req, &pt.s, &pt.spki, ski)) {
        snprintf(err, errlen, "cannot encode the requested public key");
        rc = CA_ISSUE_BAD_KEY;
        goto end;
    }
    if ((rc = ca_der_subject(p, t, req, &pt.s, &pt.subj, &text, err,
                             errlen)) != CA_ISSUE_OK)
        goto end;
    rc = CA_ISSUE_ERROR;
    /* SKI: extnValue is the KeyIdentifier OCTET STRING, as
     * X509V3_EXT_i2d(NID_subject_key_identifier) encodes it */
    pt.ski.off = pt.s.len;
    {
        unsigned char os[22], *w = os;

        ca_put_hdr(&w, 0, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, 20);
        ca_put(&w, ski, 20);
        if (!ca_der_ext(&pt.s, g->oid_ski, g->oid_ski_len, 0, os, sizeof(os)))
            goto end;
    }
    pt.ski.len = pt.s.len - pt.ski.off;
    if (!ca_der_ext_obj(ca->aki, &pt.s, &pt.aki))
        goto end;
    if ((rc = ca_der_san(p, req, &pt.s, &pt.san, err, errlen)) != CA_ISSUE_OK)
        goto end;
    rc = CA_ISSUE_ERROR;
    if (!ca_signer_get0_sigalg_der(ca->signer, &pt.sigalg, &pt.sigalg_len)
        || !ca_der_assemble(ca, g, t, &pt, &der, &der_len, &sign_failed,
                            req->defer)) {
        if (sign_failed || pt.sigalg == NULL)
            snprintf(err, errlen, "signing the certificate failed");
        goto end;
    }
    if (!ca_buf_add(&text, "", 1)
        || !EVP_Digest(der, der_len, rec->sha256, &mdlen, g->sha256, NULL)
        || mdlen != sizeof(rec->sha256))
        goto end;
    /* the record ca_store_cert_fill() would make from this certificate */
    rec->ca_id = ca->id;
    rec->reason = -1;
    rec->status = STORE_CERT_VALID;
    rec->device_id = device_id;
    rec->profile = p->name;
    memcpy(rec->serial, pt.serial, pt.serial_len);
    rec->serial_len = pt.serial_len;
    rec->not_before = (int64_t)nb;
    rec->not_after = (int64_t)na;
    rec->subject = (char *)text.p;
    rec->der = der;
    rec->der_len = der_len;
    if (req->vendor_cert != NULL) {
        const ASN1_INTEGER *vs = X509_get0_serialNumber(req->vendor_cert);
        unsigned int vl = 0;

        if (ASN1_STRING_length(vs) < 1
            || ASN1_STRING_length(vs) > STORE_SERIAL_MAX
            || !X509_digest(req->vendor_cert, EVP_sha256(),
                            rec->vendor_sha256, &vl)
            || vl != STORE_SHA256_LEN) {
            rec->der = NULL;            /* freed below, with the rest */
            snprintf(err, errlen, "cannot record the vendor certificate");
            goto end;
        }
        memcpy(rec->vendor_serial, ASN1_STRING_get0_data(vs),
               (size_t)ASN1_STRING_length(vs));
        rec->vendor_serial_len = (size_t)ASN1_STRING_length(vs);
        rec->has_vendor = 1;
    }
    memset(&text, 0, sizeof(text));
    der = NULL;
    rc = CA_ISSUE_OK;
 end:
    if (rc == CA_ISSUE_ERROR && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "cannot build the certificate");
    if (rc != CA_ISSUE_OK)
        memset(rec, 0, sizeof(*rec));
    OPENSSL_free(der);
    ca_buf_free(&text);
    ca_buf_free(&pt.s);
    ca_tbs_prof_free(own);
    ERR_clear_error();
    return rc;
}

int ca_issue_der_finish(struct store_cert *rec,
                        const struct ca_issue_unsigned *u, unsigned char *der,
                        size_t len)
{
    const unsigned char *p = der;
    unsigned int mdlen = 0;
    long clen = 0;
    int tag, xclass;
    size_t hl;

    /* the same TBSCertificate, right after the Certificate's header */
    if (der == NULL || len > LONG_MAX
        || ASN1_get_object(&p, &clen, &tag, &xclass, (long)len) != 0x20
        || tag != V_ASN1_SEQUENCE || (hl = (size_t)(p - der)) + (size_t)clen
                                     != len
        || rec->der == NULL || u->tbs_off + u->tbs_len > rec->der_len
        || hl + u->tbs_len > len
        || memcmp(rec->der + u->tbs_off, der + hl, u->tbs_len) != 0
        || !EVP_Digest(der, len, rec->sha256, &mdlen, EVP_sha256(), NULL)
        || mdlen != sizeof(rec->sha256)) {
        OPENSSL_free(der);
        ERR_clear_error();
        return 0;
    }
    OPENSSL_free(rec->der);
    rec->der = der;
    rec->der_len = len;
    return 1;
}

enum ca_issue_rc ca_issue_store_der(const CA *ca, const CA_PROFILE *prof,
                                    const struct ca_issue_req *req,
                                    STORE_TX *tx, int64_t device_id,
                                    struct store_cert *rec, int64_t *cert_id,
                                    char *err, size_t errlen)
{
    struct store_cert local;
    struct store_cert *r = rec != NULL ? rec : &local;
    int64_t id = 0;
    enum ca_issue_rc rc = CA_ISSUE_ERROR;
    enum store_rc src = STORE_EXISTS;
    int i;

    memset(r, 0, sizeof(*r));
    if (cert_id != NULL)
        *cert_id = 0;
    for (i = 0; i < CA_ISSUE_TRIES && src == STORE_EXISTS; i++) {
        ca_store_cert_clear(r);
        if ((rc = ca_issue_der(ca, prof, req, device_id, r, err, errlen))
            != CA_ISSUE_OK)
            goto end;
        src = store_cert_insert(tx, r, &id);
    }
    if (src != STORE_OK) {
        snprintf(err, errlen, "storing the certificate failed: %s (%s)",
                 store_rc_str(src), store_tx_errmsg(tx));
        rc = CA_ISSUE_STORE;
        goto end;
    }
    r->id = id;
    if (cert_id != NULL)
        *cert_id = id;
    rc = CA_ISSUE_OK;
 end:
    if (rc != CA_ISSUE_OK || r == &local) {
        ca_store_cert_clear(r);
        memset(r, 0, sizeof(*r));
    }
    return rc;
}
