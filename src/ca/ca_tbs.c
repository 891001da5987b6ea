/*
 * Building blocks of DER certificate assembly: a byte buffer, DER headers
 * and extensions through OpenSSL's ASN.1 primitives, process constants,
 * pooled random serials, and the profile parts encoded once at load.
 */
#include "ca/ca_int.h"
#include "ca/ca_tbs.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Largest DER object handled here (a certificate is far smaller). */
#define CA_DER_MAX (1L << 24)

/* Serials per RAND_bytes call (per thread). */
#define CA_SERIAL_POOL 64

unsigned char *ca_buf_room(struct ca_buf *b, size_t n)
{
    size_t cap;
    unsigned char *np;

    if (n > CA_DER_MAX || b->len > CA_DER_MAX)
        return NULL;
    if (b->len + n <= b->cap)
        return b->p + b->len;
    cap = b->cap < 256 ? 256 : b->cap;
    while (cap < b->len + n)
        cap *= 2;
    if ((np = realloc(b->p, cap)) == NULL)
        return NULL;
    b->p = np;
    b->cap = cap;
    return b->p + b->len;
}

int ca_buf_add(struct ca_buf *b, const void *d, size_t n)
{
    unsigned char *p = ca_buf_room(b, n);

    if (p == NULL)
        return 0;
    if (n > 0)
        memcpy(p, d, n);
    b->len += n;
    return 1;
}

int ca_buf_item(struct ca_buf *b, const void *obj, const ASN1_ITEM *it)
{
    unsigned char *w;
    int n = ASN1_item_i2d((const ASN1_VALUE *)obj, NULL, it);

    if (n <= 0 || (w = ca_buf_room(b, (size_t)n)) == NULL
        || ASN1_item_i2d((const ASN1_VALUE *)obj, &w, it) != n)
        return 0;
    b->len += (size_t)n;
    return 1;
}

size_t ca_der_size(int tag, size_t len)
{
    int n;

    if (len > CA_DER_MAX)
        return 0;
    n = ASN1_object_size(0, (int)len, tag);
    return n > 0 ? (size_t)n : 0;
}

int ca_buf_hdr(struct ca_buf *b, int constructed, int tag, int xclass,
               size_t len)
{
    size_t total = ca_der_size(tag, len);
    unsigned char *p, *start;

    if (total == 0 || (p = ca_buf_room(b, total - len)) == NULL)
        return 0;
    start = p;
    ASN1_put_object(&p, constructed, (int)len, tag, xclass);
    if ((size_t)(p - start) != total - len)
        return 0;
    b->len += total - len;
    return 1;
}

void ca_buf_free(struct ca_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int ca_der_ext(struct ca_buf *b, const unsigned char *oid, size_t oidlen,
               int crit, const unsigned char *val, size_t vlen)
{
    const struct ca_tbs_const *g = ca_tbs_const_get();
    size_t os = ca_der_size(V_ASN1_OCTET_STRING, vlen);

    if (g == NULL || os == 0
        || !ca_buf_hdr(b, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL,
                       oidlen + (crit ? g->true_len : 0) + os)
        || !ca_buf_add(b, oid, oidlen)
        || (crit && !ca_buf_add(b, g->true_der, g->true_len)))
        return 0;
    return ca_buf_hdr(b, 0, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, vlen)
        && ca_buf_add(b, val, vlen);
}

/* ------------------------------------------------------------------ */
/* Process constants                                                   */

static struct ca_tbs_const ca_tbs_g;
static int ca_tbs_g_ok;
static pthread_once_t ca_tbs_once = PTHREAD_ONCE_INIT;
static atomic_uint ca_fork_gen;

/* BIO write: append to the struct ca_buf set as the BIO's data. */
static int ca_tbs_bio_write(BIO *bio, const char *d, int n)
{
    struct ca_buf *b = BIO_get_data(bio);

    if (b == NULL || n < 0 || !ca_buf_add(b, d, (size_t)n))
        return -1;
    return n;
}

static int ca_tbs_bio_puts(BIO *bio, const char *s)
{
    return ca_tbs_bio_write(bio, s, (int)strlen(s));
}

static int ca_tbs_bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

/* Forked child: serials pooled in the parent must not be used again. */
static void ca_tbs_atfork_child(void)
{
    atomic_fetch_add(&ca_fork_gen, 1);
}

/* Encodes the OID of |nid| into |buf|. Returns 1 or 0. */
static int ca_tbs_oid(int nid, unsigned char *buf, size_t cap, size_t *len)
{
    ASN1_OBJECT *o = OBJ_nid2obj(nid);
    unsigned char *p = buf;
    int n = o != NULL ? i2d_ASN1_OBJECT(o, NULL) : 0;

    if (n <= 0 || (size_t)n > cap || i2d_ASN1_OBJECT(o, &p) != n)
        return 0;
    *len = (size_t)n;
    return 1;
}

static void ca_tbs_const_init(void)
{
    struct ca_tbs_const *g = &ca_tbs_g;
    ASN1_INTEGER *v = ASN1_INTEGER_new();
    ASN1_TYPE *t = ASN1_TYPE_new();
    unsigned char *p = g->true_der;
    int n;

    pthread_atfork(NULL, NULL, ca_tbs_atfork_child);
    g->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    g->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                          "cmpca buffer");
    if (t == NULL)
        goto end;
    ASN1_TYPE_set(t, V_ASN1_BOOLEAN, t); /* any non-NULL value: TRUE */
    if ((n = i2d_ASN1_TYPE(t, NULL)) <= 0 || (size_t)n > sizeof(g->true_der)
        || i2d_ASN1_TYPE(t, &p) != n)
        goto end;
    g->true_len = (size_t)n;
    p = g->version;
    if (v == NULL || g->sha1 == NULL || g->sha256 == NULL || g->bio == NULL
        || !BIO_meth_set_write(g->bio, ca_tbs_bio_write)
        || !BIO_meth_set_puts(g->bio, ca_tbs_bio_puts)
        || !BIO_meth_set_create(g->bio, ca_tbs_bio_create)
        || !ASN1_INTEGER_set(v, X509_VERSION_3)
        || (n = i2d_ASN1_INTEGER(v, NULL)) <= 0
        || (size_t)ca_der_size(0, (size_t)n) > sizeof(g->version)
        || !ca_tbs_oid(NID_subject_key_identifier, g->oid_ski,
                       sizeof(g->oid_ski), &g->oid_ski_len)
        || !ca_tbs_oid(NID_subject_alt_name, g->oid_san, sizeof(g->oid_san),
                       &g->oid_san_len))
        goto end;
    /* version [0] EXPLICIT Version DEFAULT v1: v3 is always written */
    ASN1_put_object(&p, 1, n, 0, V_ASN1_CONTEXT_SPECIFIC);
    i2d_ASN1_INTEGER(v, &p);
    g->version_len = (size_t)(p - g->version);
    ca_tbs_g_ok = 1;
 end:
    ASN1_INTEGER_free(v);
    ASN1_TYPE_free(t);
    ERR_clear_error();
}

const struct ca_tbs_const *ca_tbs_const_get(void)
{
    if (pthread_once(&ca_tbs_once, ca_tbs_const_init) != 0 || !ca_tbs_g_ok)
        return NULL;
    return &ca_tbs_g;
}

BIO *ca_tbs_bio_new(struct ca_buf *b)
{
    const struct ca_tbs_const *g = ca_tbs_const_get();
    BIO *bio;

    if (g == NULL || (bio = BIO_new(g->bio)) == NULL)
        return NULL;
    BIO_set_data(bio, b);
    return bio;
}

/* ------------------------------------------------------------------ */
/* Serials                                                             */

/* Random bytes for serials, per thread, with the fork generation they
 * were drawn in. */
static _Thread_local struct {
    unsigned char b[CA_SERIAL_POOL * CA_SERIAL_LEN];
    size_t off;
    unsigned gen;
    int filled;
} ca_serial_pool;

int ca_serial_next(unsigned char out[CA_SERIAL_LEN], size_t *len)
{
    unsigned char buf[CA_SERIAL_LEN];
    unsigned gen;

    if (ca_tbs_const_get() == NULL)
        return 0;
    gen = atomic_load(&ca_fork_gen);
    do {
        if (!ca_serial_pool.filled || ca_serial_pool.gen != gen
            || ca_serial_pool.off + CA_SERIAL_LEN > sizeof(ca_serial_pool.b)) {
            if (RAND_bytes(ca_serial_pool.b, sizeof(ca_serial_pool.b)) != 1) {
                ca_serial_pool.filled = 0;
                return 0;
            }
            ca_serial_pool.off = 0;
            ca_serial_pool.gen = gen;
            ca_serial_pool.filled = 1;
        }
        memcpy(buf, ca_serial_pool.b + ca_serial_pool.off, CA_SERIAL_LEN);
        /* used bytes are not kept */
        OPENSSL_cleanse(ca_serial_pool.b + ca_serial_pool.off, CA_SERIAL_LEN);
        ca_serial_pool.off += CA_SERIAL_LEN;
        buf[0] &= 0x7f; /* positive: DER needs no sign octet, <= 20 octets */
    } while (buf[0] == 0 && buf[1] == 0); /* never short by more than 1 */
    if (buf[0] == 0) {
        memcpy(out, buf + 1, CA_SERIAL_LEN - 1);
        *len = CA_SERIAL_LEN - 1;
    } else {
        memcpy(out, buf, CA_SERIAL_LEN);
        *len = CA_SERIAL_LEN;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Subject attributes and profile parts                                */

int ca_tbs_rdn(int nid, const char *val, struct ca_buf *der,
               struct ca_buf *text)
{
    X509_NAME_ENTRY *ne;
    const char *sn;
    BIO *bio = NULL;
    int n, rc = -1;

    ne = X509_NAME_ENTRY_create_by_NID(NULL, nid, MBSTRING_UTF8,
                                       (const unsigned char *)val, -1);
    if (ne == NULL) /* the error queue says why; the caller clears it */
        return 0;
    if (der != NULL) {
        /* RelativeDistinguishedName ::= SET SIZE (1..MAX) OF ATAV; one */
        if ((n = i2d_X509_NAME_ENTRY(ne, NULL)) <= 0
            || !ca_buf_hdr(der, 1, V_ASN1_SET, V_ASN1_UNIVERSAL, (size_t)n)
            || !ca_buf_item(der, ne, ASN1_ITEM_rptr(X509_NAME_ENTRY)))
            goto end;
    }
    if (text != NULL) {
        /* what X509_NAME_print_ex(XN_FLAG_RFC2253) prints for a known
         * attribute: short name, '=', the value with RFC 2253 escaping */
        if ((sn = OBJ_nid2sn(nid)) == NULL
            || !ca_buf_add(text, sn, strlen(sn)) || !ca_buf_add(text, "=", 1)
            || (bio = ca_tbs_bio_new(text)) == NULL
            || ASN1_STRING_print_ex(bio, X509_NAME_ENTRY_get_data(ne),
                                    ASN1_STRFLGS_RFC2253) < 0)
            goto end;
    }
    rc = 1;
 end:
    BIO_free(bio);
    X509_NAME_ENTRY_free(ne);
    return rc;
}

void ca_tbs_prof_free(struct ca_tbs_prof *t)
{
    size_t i;

    if (t == NULL)
        return;
    free(t->ext_pre);
    free(t->ext_post);
    for (i = 0; t->rdn != NULL && i < t->nrdn; i++) {
        free(t->rdn[i].der);
        free(t->rdn[i].text);
    }
    free(t->rdn);
    free(t);
}

/* Appends the DER of |ext| when it is set. */
static int ca_tbs_add_ext(struct ca_buf *b, const X509_EXTENSION *ext)
{
    return ext == NULL || ca_buf_item(b, ext, ASN1_ITEM_rptr(X509_EXTENSION));
}

int ca_tbs_prof_new(const CA_PROFILE *p, struct ca_tbs_prof **out)
{
    struct ca_tbs_prof *t = calloc(1, sizeof(*t));
    struct ca_buf pre = { 0 }, post = { 0 }, der = { 0 }, text = { 0 };
    size_t i;
    int ok = 0, r;

    *out = NULL;
    if (t == NULL || ca_tbs_const_get() == NULL)
        goto end;
    if (!ca_tbs_add_ext(&pre, p->bc) || !ca_tbs_add_ext(&pre, p->ku)
        || !ca_tbs_add_ext(&pre, p->eku) || !ca_tbs_add_ext(&post, p->cdp)
        || !ca_tbs_add_ext(&post, p->aia))
        goto end;
    t->ext_pre = pre.p;
    t->ext_pre_len = pre.len;
    t->ext_post = post.p;
    t->ext_post_len = post.len;
    memset(&pre, 0, sizeof(pre));
    memset(&post, 0, sizeof(post));
    if (p->nsubj > 0 && (t->rdn = calloc(p->nsubj, sizeof(*t->rdn))) == NULL)
        goto end;
    t->nrdn = p->nsubj;
    for (i = 0; i < p->nsubj; i++) {
        t->rdn[i].nid = p->subj[i].nid;
        if (strstr(p->subj[i].value, "${") != NULL)
            continue;
        /* a constant: its expansion is the text itself. A value the
         * attribute refuses is refused by ca_profile_from_conf() at load;
         * in a profile made otherwise it stays unencoded and fails at
         * issue time, with the same message as in ca_issue() */
        r = ca_tbs_rdn(p->subj[i].nid, p->subj[i].value, &der, &text);
        if (r < 0)
            goto end;
        if (r > 0) {
            t->rdn[i].der = der.p;
            t->rdn[i].der_len = der.len;
            t->rdn[i].text = (char *)text.p;
            t->rdn[i].text_len = text.len;
            memset(&der, 0, sizeof(der));
            memset(&text, 0, sizeof(text));
        }
        ca_buf_free(&der);
        ca_buf_free(&text);
    }
    *out = t;
    t = NULL;
    ok = 1;
 end:
    ca_buf_free(&pre);
    ca_buf_free(&post);
    ca_buf_free(&der);
    ca_buf_free(&text);
    ca_tbs_prof_free(t);
    ERR_clear_error();
    return ok;
}
