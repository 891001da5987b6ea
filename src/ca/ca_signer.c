/*
 * The signing interface implementation: software keys from PEM files (shared
 * read-only between threads, a prepared signing context copied per call),
 * PKCS#11 keys through the libp11 engine (calls serialised by a lock), and
 * keys held by the signer process (encoded here, signed there).
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1 /* the ENGINE API is what libp11 offers */

#include "ca/ca_signer.h"
#include "util/pkey_md.h"
#include "ca/ca_key.h"
#include "util/log.h"
#include "util/der_splice.h"
#include "util/secret.h"

#include <errno.h>
#include <limits.h>
#include <openssl/asn1t.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ui.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CA_SIGNER_MAX_KEYFILE (1024 * 1024)

struct ca_signer_st {
    atomic_int refs;
    EVP_PKEY *pkey;          /* private key (or token handle) */
    EVP_PKEY *pub;           /* public part only, handed out by get0_pubkey */
    EVP_MD *md;              /* fetched once; NULL for EdDSA */
    char *mdname;
    char *keyref;
    ENGINE *engine;          /* functional reference when on a token */
    EVP_MD_CTX *tmpl;        /* prepared DigestSign context, copied per call */
    pthread_mutex_t lock;    /* serialises token operations */
    /* DER AlgorithmIdentifier of this signer's signatures, learned on first
     * use by ca_signer_get0_sigalg_der() (NULL until then; reset when the
     * digest changes) */
    _Atomic(unsigned char *) sigalg;
    size_t sigalg_len;
    pthread_mutex_t sigalg_lock;
    /* a key held by another process: pkey, engine and tmpl are NULL */
    ca_signer_remote_sign_fn rsign;
    ca_signer_remote_pair_fn rpair;
    void *rarg;
    uint32_t rkey;
    int rpkcs11;
};

/* Set in the network process of `cmpca serve`: where keys come from. */
static ca_signer_loader_fn signer_loader;
static void *signer_loader_arg;

/* The one libp11 engine of the process and the module it was set up for. */
static pthread_mutex_t signer_engine_lock = PTHREAD_MUTEX_INITIALIZER;
static ENGINE *signer_engine;
static char *signer_engine_module;

/* Copies the public half of |pkey| into a new key. Returns NULL on error. */
static EVP_PKEY *signer_public_copy(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int len = i2d_PUBKEY(pkey, &der);

    if (len > 0) {
        p = der;
        pub = d2i_PUBKEY(NULL, &p, len);
    }
    OPENSSL_free(der);
    return pub;
}

/* Creates the prepared context used by software keys; leaves tmpl NULL when
 * the key type cannot have its context copied (then each call initialises). */
static void signer_prepare_tmpl(CA_SIGNER *s)
{
    EVP_MD_CTX *t = NULL, *probe = NULL;

    EVP_MD_CTX_free(s->tmpl);
    s->tmpl = NULL;
    if (s->engine != NULL)
        return;
    t = EVP_MD_CTX_new();
    probe = EVP_MD_CTX_new();
    if (t == NULL || probe == NULL
        || !EVP_DigestSignInit(t, NULL, s->md, NULL, s->pkey)
        || !EVP_MD_CTX_copy_ex(probe, t)) {
        EVP_MD_CTX_free(t);
        t = NULL;
    }
    EVP_MD_CTX_free(probe);
    ERR_clear_error();
    s->tmpl = t;
}

int ca_signer_set_md(CA_SIGNER *s, const char *md)
{
    EVP_MD *fetched = NULL;
    char *name = NULL;
    int id = EVP_PKEY_get_base_id(s->pub);

    if (s->rsign != NULL) {
        /* the other process signs with the digest it loaded the key with */
        if (md == NULL || *md == '\0')
            return s->mdname == NULL || pkey_default_md(s->pub) == NULL
                || strcasecmp(s->mdname, pkey_default_md(s->pub)) == 0;
        return s->mdname != NULL && strcasecmp(md, s->mdname) == 0;
    }
    if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) {
        if (md != NULL && *md != '\0' && strcasecmp(md, "none") != 0)
            return 0;
        md = NULL;
    } else {
        if (md == NULL || *md == '\0')
            md = pkey_default_md(s->pub);
        if (strcasecmp(md, "md5") == 0 || strcasecmp(md, "sha1") == 0
            || strcasecmp(md, "sha-1") == 0)
            return 0;
        if ((fetched = EVP_MD_fetch(NULL, md, NULL)) == NULL
            || (name = strdup(md)) == NULL) {
            EVP_MD_free(fetched);
            ERR_clear_error();
            return 0;
        }
    }
    EVP_MD_free(s->md);
    free(s->mdname);
    s->md = fetched;
    s->mdname = name;
    OPENSSL_free(atomic_exchange(&s->sigalg, NULL));
    s->sigalg_len = 0;
    signer_prepare_tmpl(s);
    return 1;
}

/* Builds a signer around |pkey| (reference taken). Returns NULL on error. */
static CA_SIGNER *signer_new(EVP_PKEY *pkey, ENGINE *engine, const char *keyref,
                             const char *md)
{
    CA_SIGNER *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->sigalg, NULL);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->sigalg_lock, NULL);
    s->engine = engine;
    if (!EVP_PKEY_up_ref(pkey)) {
        s->engine = NULL;
        ca_signer_free(s);
        return NULL;
    }
    s->pkey = pkey;
    if ((s->pub = signer_public_copy(pkey)) == NULL
        || (s->keyref = strdup(keyref != NULL ? keyref : "")) == NULL
        || !ca_signer_set_md(s, md)) {
        s->engine = NULL;
        ca_signer_free(s);
        return NULL;
    }
    return s;
}

CA_SIGNER *ca_signer_new_pkey(EVP_PKEY *pkey, const char *md)
{
    return pkey != NULL ? signer_new(pkey, NULL, "", md) : NULL;
}

int ca_signer_up_ref(CA_SIGNER *s)
{
    atomic_fetch_add(&s->refs, 1);
    return 1;
}

void ca_signer_free(CA_SIGNER *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) > 1)
        return;
    EVP_MD_CTX_free(s->tmpl);
    EVP_PKEY_free(s->pkey);
    EVP_PKEY_free(s->pub);
    EVP_MD_free(s->md);
    free(s->mdname);
    free(s->keyref);
    if (s->engine != NULL)
        ENGINE_finish(s->engine);
    OPENSSL_free(atomic_load(&s->sigalg));
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->sigalg_lock);
    free(s);
}

EVP_PKEY *ca_signer_get0_pubkey(const CA_SIGNER *s)
{
    return s->pub;
}

const char *ca_signer_get0_keyref(const CA_SIGNER *s)
{
    return s->keyref;
}

const char *ca_signer_get0_md(const CA_SIGNER *s)
{
    return s->mdname;
}

int ca_signer_is_pkcs11(const CA_SIGNER *s)
{
    return s->engine != NULL || s->rpkcs11;
}

int ca_signer_is_remote(const CA_SIGNER *s)
{
    return s->rsign != NULL;
}

void ca_signer_set_loader(ca_signer_loader_fn fn, void *arg)
{
    signer_loader = fn;
    signer_loader_arg = arg;
}

CA_SIGNER *ca_signer_new_remote(const struct ca_signer_remote *r)
{
    CA_SIGNER *s = NULL;
    unsigned char *alg = NULL;
    const char *md = r->md != NULL && *r->md != '\0' ? r->md : NULL;

    if (r->sign == NULL || r->pub == NULL || r->sigalg == NULL
        || r->sigalg_len == 0 || (s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->sigalg, NULL);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->sigalg_lock, NULL);
    s->rsign = r->sign;
    s->rpair = r->pair;
    s->rarg = r->arg;
    s->rkey = r->key_id;
    s->rpkcs11 = r->pkcs11 != 0;
    if (!EVP_PKEY_up_ref(r->pub))
        goto err;
    s->pub = r->pub;
    if ((s->keyref = strdup(r->keyref != NULL ? r->keyref : "")) == NULL
        || (md != NULL && ((s->md = EVP_MD_fetch(NULL, md, NULL)) == NULL
                           || (s->mdname = strdup(md)) == NULL))
        || (alg = OPENSSL_memdup(r->sigalg, r->sigalg_len)) == NULL)
        goto err;
    s->sigalg_len = r->sigalg_len;
    atomic_store(&s->sigalg, alg);
    return s;
 err:
    ERR_clear_error();
    ca_signer_free(s);
    return NULL;
}

/* Password callback data for PEM decoding. */
struct signer_pw {
    const char *pass;
    int asked;
};

static int signer_pw_cb(char *buf, int size, int rwflag, void *u)
{
    struct signer_pw *pw = u;
    size_t n;

    pw->asked = 1;
    if (pw->pass == NULL)
        return -1;
    n = strlen(pw->pass);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pw->pass, n);
    return (int)n;
}

/* Reads a bounded key file into memory (no stdio copy of it is left
 * behind). Returns 1 or 0 (+ err). */
static int signer_read_file(const char *path, char **out, size_t *outlen,
                            char *err, size_t errlen)
{
    if (!secret_file_read(path, CA_SIGNER_MAX_KEYFILE, out, outlen)) {
        snprintf(err, errlen, "cannot read key %s: %s", path,
                 errno == EFBIG ? "file too large" : strerror(errno));
        return 0;
    }
    if (*outlen == 0) {
        snprintf(err, errlen, "cannot read key %s: empty file", path);
        secret_free(*out, 0);
        *out = NULL;
        return 0;
    }
    return 1;
}

/* Loads a PEM private key file. */
static enum ca_signer_status signer_load_pem(const char *path,
                                             const struct ca_signer_opts *o,
                                             CA_SIGNER **out, char *err,
                                             size_t errlen)
{
    char pass[SECRET_MAX + 1];
    struct signer_pw pw = { NULL, 0 };
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    enum ca_signer_status st = CA_SIGNER_NOKEY;
    int encrypted;

    if (!signer_read_file(path, &buf, &len, err, errlen))
        goto end;
    encrypted = strstr(buf, "ENCRYPTED") != NULL;
    if (encrypted) {
        if (o->pass_spec == NULL) {
            snprintf(err, errlen, "%s is encrypted and no passphrase is "
                     "configured", path);
            st = CA_SIGNER_AUTH;
            goto end;
        }
        if (!secret_read(o->pass_spec, o->what != NULL ? o->what
                         : "key passphrase", pass, sizeof(pass), err, errlen)) {
            st = CA_SIGNER_AUTH;
            goto end;
        }
        pw.pass = pass;
    }
    if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
        st = CA_SIGNER_ERROR;
        goto end;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, signer_pw_cb, &pw);
    if (pkey == NULL) {
        if (encrypted) {
            snprintf(err, errlen, "wrong passphrase for %s", path);
            st = CA_SIGNER_AUTH;
        } else {
            snprintf(err, errlen, "%s holds no readable private key", path);
        }
        goto end;
    }
    if ((*out = signer_new(pkey, NULL, path, o->md)) == NULL) {
        snprintf(err, errlen, "cannot use the key in %s (digest '%s'?)", path,
                 o->md != NULL ? o->md : "default");
        st = CA_SIGNER_ERROR;
        goto end;
    }
    st = CA_SIGNER_OK;
 end:
    secret_wipe(pass, sizeof(pass));
    secret_free(buf, len);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return st;
}

/* Returns a functional reference to the libp11 engine set up for |module|,
 * or NULL (+ err). Called with signer_engine_lock held. */
static ENGINE *signer_engine_get(const char *module, char *err, size_t errlen)
{
    ENGINE *e = NULL;

    if (signer_engine != NULL) {
        if (strcmp(signer_engine_module, module) != 0) {
            snprintf(err, errlen, "PKCS#11 module %s requested but %s is "
                     "already in use (one module per process)", module,
                     signer_engine_module);
            return NULL;
        }
        return ENGINE_init(signer_engine) ? signer_engine : NULL;
    }
    ENGINE_load_builtin_engines();
    e = ENGINE_by_id("pkcs11");
    if (e == NULL) {
        snprintf(err, errlen, "the OpenSSL pkcs11 engine (libengine-pkcs11-"
                 "openssl) is not available");
        return NULL;
    }
    if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)
        || !ENGINE_init(e)) {
        snprintf(err, errlen, "cannot load PKCS#11 module %s", module);
        ENGINE_free(e);
        return NULL;
    }
    if ((signer_engine_module = strdup(module)) == NULL) {
        ENGINE_finish(e);
        ENGINE_free(e);
        return NULL;
    }
    signer_engine = e; /* keeps the structural reference for the process */
    return ENGINE_init(e) ? e : NULL; /* one functional ref for the caller */
}

/* Returns 1 if the OpenSSL error queue mentions a PIN/login problem. */
static int signer_err_is_pin(void)
{
    unsigned long e;
    const char *r;
    int pin = 0;

    while ((e = ERR_get_error()) != 0) {
        r = ERR_reason_error_string(e);
        if (r != NULL && (strstr(r, "PIN") != NULL || strstr(r, "ogin") != NULL))
            pin = 1;
    }
    return pin;
}

/* Loads a key from a PKCS#11 token through the libp11 engine. */
static enum ca_signer_status signer_load_pkcs11(const char *uri,
                                                const struct ca_signer_opts *o,
                                                CA_SIGNER **out, char *err,
                                                size_t errlen)
{
    char pin[SECRET_MAX + 1];
    const char *module = o->pkcs11_module;
    ENGINE *e = NULL;
    EVP_PKEY *pkey = NULL;
    enum ca_signer_status st = CA_SIGNER_ERROR;
    int locked = 0;

    pin[0] = '\0';
    if (module == NULL || *module == '\0')
        module = getenv("PKCS11_MODULE");
    if (module == NULL || *module == '\0')
        module = CA_SIGNER_DEFAULT_PKCS11_MODULE;
    /* the key reference is stored, logged and printed: no PIN in it */
    if (strcasestr(uri, "pin-value=") != NULL
        || strcasestr(uri, "pin-source=") != NULL) {
        snprintf(err, errlen, "the PKCS#11 URI must not carry the PIN (it is "
                 "stored and printed): give it with pkcs11_pin / --pin "
                 "(file:, env: or the prompt)");
        goto end;
    }
    if (o->pass_spec == NULL) {
        snprintf(err, errlen, "no PIN configured for %s", uri);
        st = CA_SIGNER_AUTH;
        goto end;
    }
    if (o->pass_spec != NULL
        && !secret_read(o->pass_spec, o->what != NULL ? o->what : "token PIN",
                        pin, sizeof(pin), err, errlen)) {
        st = CA_SIGNER_AUTH;
        goto end;
    }
    pthread_mutex_lock(&signer_engine_lock);
    locked = 1;
    if ((e = signer_engine_get(module, err, errlen)) == NULL)
        goto end;
    ERR_clear_error();
    if (pin[0] != '\0' && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) {
        snprintf(err, errlen, "the pkcs11 engine refused the PIN");
        goto end;
    }
    pkey = ENGINE_load_private_key(e, uri, (UI_METHOD *)UI_null(), NULL);
    if (pkey == NULL) {
        if (signer_err_is_pin()) {
            snprintf(err, errlen, "PKCS#11 login failed for %s (wrong PIN?)",
                     uri);
            st = CA_SIGNER_AUTH;
        } else {
            snprintf(err, errlen, "no private key %s on the token (or wrong "
                     "PIN)", uri);
            st = CA_SIGNER_NOKEY;
        }
        goto end;
    }
    if ((*out = signer_new(pkey, e, uri, o->md)) == NULL) {
        snprintf(err, errlen, "cannot use the token key %s", uri);
        goto end;
    }
    e = NULL; /* the signer owns the functional reference now */
    st = CA_SIGNER_OK;
 end:
    if (e != NULL)
        ENGINE_finish(e);
    if (locked)
        pthread_mutex_unlock(&signer_engine_lock);
    secret_wipe(pin, sizeof(pin));
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return st;
}

enum ca_signer_status ca_signer_load(const char *keyref,
                                     const struct ca_signer_opts *opts,
                                     CA_SIGNER **out, char *err,
                                     size_t errlen)
{
    static const struct ca_signer_opts none;

    *out = NULL;
    if (opts == NULL)
        opts = &none;
    if (keyref == NULL || *keyref == '\0') {
        snprintf(err, errlen, "no key given");
        return CA_SIGNER_NOKEY;
    }
    if (signer_loader != NULL)
        return signer_loader(signer_loader_arg, keyref, opts, out, err,
                             errlen);
    if (strncmp(keyref, "pkcs11:", 7) == 0)
        return signer_load_pkcs11(keyref, opts, out, err, errlen);
    return signer_load_pem(keyref, opts, out, err, errlen);
}

/* Prepares |ctx| for one signature. Returns 1 or 0. */
static int signer_ctx_init(const CA_SIGNER *s, EVP_MD_CTX *ctx)
{
    if (s->tmpl != NULL)
        return EVP_MD_CTX_copy_ex(ctx, s->tmpl);
    return EVP_DigestSignInit(ctx, NULL, s->md, NULL, s->pkey);
}

/* Runs one signing operation under the token lock when needed. */
enum signer_op { SIGNER_X509, SIGNER_CRL, SIGNER_ITEM, SIGNER_DATA,
                 SIGNER_BUF, SIGNER_OCSP };

struct signer_job {
    enum signer_op op;
    void *obj;
    const ASN1_ITEM *it;
    X509_ALGOR *alg1, *alg2;
    ASN1_BIT_STRING *sig;
    const unsigned char *tbs;
    size_t tbslen;
    unsigned char **out;
    unsigned char *buf;
    size_t *outlen;
    X509 *cert;                 /* SIGNER_OCSP: the responder certificate */
    STACK_OF(X509) *certs;      /* SIGNER_OCSP: extra certificates */
    unsigned long flags;        /* SIGNER_OCSP: OCSP_basic_sign flags */
};

/* ---- keys held by another process ---- */

/* Sets |a1| and |a2| (either may be NULL) to the signer's algorithm, as
 * ASN1_item_sign_ctx() would. Returns 1 or 0. */
static int remote_set_algs(const CA_SIGNER *s, X509_ALGOR *a1, X509_ALGOR *a2)
{
    const unsigned char *p = atomic_load(&((CA_SIGNER *)s)->sigalg);
    X509_ALGOR *alg = p != NULL ? d2i_X509_ALGOR(NULL, &p, (long)s->sigalg_len)
                                : NULL;
    int ok = alg != NULL && (a1 == NULL || X509_ALGOR_copy(a1, alg))
        && (a2 == NULL || X509_ALGOR_copy(a2, alg));

    X509_ALGOR_free(alg);
    return ok;
}

/* Signs the DER |tbs| remotely into the BIT STRING |bs| (no unused bits,
 * as ASN1_item_sign_ctx() leaves it). Returns 1 or 0. */
static int remote_sign_into(const CA_SIGNER *s, const unsigned char *tbs,
                            size_t tbslen, ASN1_BIT_STRING *bs)
{
    size_t len = ca_signer_max_sig_len(s);
    unsigned char *sig = len > 0 ? OPENSSL_malloc(len) : NULL;

    if (sig == NULL || !s->rsign(s->rarg, s->rkey, tbs, tbslen, sig, &len)) {
        OPENSSL_free(sig);
        return 0;
    }
    ASN1_STRING_set0(bs, sig, (int)len);
    bs->flags &= ~0x07L;
    bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    return 1;
}

/* The parts of a signed object |obj| of type |outer| (Certificate,
 * CertificateList: SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }, all
 * embedded), found through OpenSSL's public ASN.1 templates: the TBS, its
 * inner AlgorithmIdentifier, the outer one and the signature. Returns 1,
 * or 0 if the layout is not that. */
static int remote_parts(const ASN1_ITEM *outer, void *obj, void **tbs,
                        X509_ALGOR **a1, X509_ALGOR **a2, ASN1_BIT_STRING **bs)
{
    const ASN1_TEMPLATE *tt = outer->templates, *t;
    const ASN1_ITEM *tbs_it;
    long i;

    if (outer->itype != ASN1_ITYPE_SEQUENCE || outer->tcount != 3
        || (tt[0].flags & ASN1_TFLG_EMBED) == 0
        || (tt[1].flags & ASN1_TFLG_EMBED) == 0
        || (tt[2].flags & ASN1_TFLG_EMBED) == 0
        || ASN1_ITEM_ptr(tt[1].item) != ASN1_ITEM_rptr(X509_ALGOR)
        || ASN1_ITEM_ptr(tt[2].item) != ASN1_ITEM_rptr(ASN1_BIT_STRING))
        return 0;
    tbs_it = ASN1_ITEM_ptr(tt[0].item);
    if (tbs_it->itype != ASN1_ITYPE_SEQUENCE)
        return 0;
    *tbs = (char *)obj + tt[0].offset;
    *a2 = (X509_ALGOR *)((char *)obj + tt[1].offset);
    *bs = (ASN1_BIT_STRING *)((char *)obj + tt[2].offset);
    for (i = 0; i < tbs_it->tcount; i++) {
        t = &tbs_it->templates[i];
        if (ASN1_ITEM_ptr(t->item) == ASN1_ITEM_rptr(X509_ALGOR)) {
            if ((t->flags & ASN1_TFLG_EMBED) == 0
                || (t->flags & ASN1_TFLG_TAG_MASK) != 0)
                return 0;
            *a1 = (X509_ALGOR *)((char *)*tbs + t->offset);
            return 1;
        }
    }
    return 0;
}

/* The remote version of X509_sign_ctx() / X509_CRL_sign_ctx(): both
 * algorithm fields set, the TBS re-encoded (i2d_re_*_tbs marks the cached
 * encoding stale, as the sign functions do) and signed there. */
static int remote_sign_obj(const CA_SIGNER *s, const ASN1_ITEM *outer,
                           void *obj, int is_crl)
{
    void *tbs;
    X509_ALGOR *a1 = NULL, *a2 = NULL;
    ASN1_BIT_STRING *bs = NULL;
    unsigned char *der = NULL;
    int len, ok;

    if (!remote_parts(outer, obj, &tbs, &a1, &a2, &bs)
        || !remote_set_algs(s, a1, a2))
        return 0;
    len = is_crl ? i2d_re_X509_CRL_tbs(obj, &der) : i2d_re_X509_tbs(obj, &der);
    ok = len > 0 && remote_sign_into(s, der, (size_t)len, bs);
    OPENSSL_free(der);
    return ok;
}

/*
 * The remote version of OCSP_basic_sign_ctx(): OpenSSL 3.0 offers no
 * setter for a BasicOCSPResponse's responderID and producedAt, so they are
 * set by OCSP_basic_sign_ctx() itself, run with a context that holds only
 * the public key: it checks the key against |cert|, adds the certificates,
 * sets responderID and producedAt, then fails to sign (the context is not
 * initialised for signing). The TBSResponseData is then signed remotely and
 * the algorithm and signature put in place (tests/unit/test_signer.c and
 * tests/e2e/ocsp.sh verify the results with libcrypto and openssl ocsp).
 */
static int remote_sign_ocsp(const CA_SIGNER *s, OCSP_BASICRESP *bs, X509 *cert,
                            STACK_OF(X509) *certs, unsigned long flags)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(s->pub, NULL);
    unsigned char *der = NULL;
    int len, ok = 0;

    if (mctx == NULL || pctx == NULL)
        goto end;
    EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
    if (OCSP_basic_sign_ctx(bs, cert, mctx, certs, flags) == 1
        || OCSP_resp_get0_produced_at(bs) == NULL)
        goto end;           /* nothing to sign with must not have signed */
    ERR_clear_error();
    if (!remote_set_algs(s, (X509_ALGOR *)OCSP_resp_get0_tbs_sigalg(bs), NULL)
        || (len = i2d_OCSP_RESPDATA((OCSP_RESPDATA *)OCSP_resp_get0_respdata(bs),
                                    &der)) <= 0
        || !remote_sign_into(s, der, (size_t)len,
                             (ASN1_BIT_STRING *)OCSP_resp_get0_signature(bs)))
        goto end;
    ok = 1;
 end:
    EVP_MD_CTX_free(mctx);      /* set_pkey_ctx leaves pctx to us */
    EVP_PKEY_CTX_free(pctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

/* Runs one signing operation of a key another process holds. */
static int signer_run_remote(const CA_SIGNER *s, struct signer_job *j)
{
    unsigned char *der = NULL;
    size_t len;
    int n, ok = 0;

    switch (j->op) {
    case SIGNER_X509:
        ok = remote_sign_obj(s, ASN1_ITEM_rptr(X509), j->obj, 0);
        break;
    case SIGNER_CRL:
        ok = remote_sign_obj(s, ASN1_ITEM_rptr(X509_CRL), j->obj, 1);
        break;
    case SIGNER_ITEM:
        if (!remote_set_algs(s, j->alg1, j->alg2)
            || (n = ASN1_item_i2d(j->obj, &der, j->it)) <= 0)
            break;
        ok = remote_sign_into(s, der, (size_t)n, j->sig);
        break;
    case SIGNER_DATA:
        *j->out = NULL;
        if ((len = ca_signer_max_sig_len(s)) == 0
            || (*j->out = OPENSSL_malloc(len)) == NULL)
            break;
        if (!s->rsign(s->rarg, s->rkey, j->tbs, j->tbslen, *j->out, &len)) {
            OPENSSL_free(*j->out);
            *j->out = NULL;
            break;
        }
        *j->outlen = len;
        ok = 1;
        break;
    case SIGNER_BUF:
        ok = s->rsign(s->rarg, s->rkey, j->tbs, j->tbslen, j->buf, j->outlen);
        break;
    case SIGNER_OCSP:
        ok = remote_sign_ocsp(s, j->obj, j->cert, j->certs, j->flags);
        break;
    }
    OPENSSL_free(der);
    if (!ok)
        log_ossl(LOG_ERROR, "signing by the signer process failed");
    return ok;
}

static int signer_run(const CA_SIGNER *s, struct signer_job *j)
{
    EVP_MD_CTX *ctx;
    CA_SIGNER *ms = (CA_SIGNER *)s; /* the lock is mutable state */
    size_t len = 0;
    int ok = 0;

    if (s->rsign != NULL)
        return signer_run_remote(s, j);
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    if (s->engine != NULL)
        pthread_mutex_lock(&ms->lock);
    if (!signer_ctx_init(s, ctx))
        goto end;
    switch (j->op) {
    case SIGNER_X509:
        ok = X509_sign_ctx(j->obj, ctx) > 0;
        break;
    case SIGNER_CRL:
        ok = X509_CRL_sign_ctx(j->obj, ctx) > 0;
        break;
    case SIGNER_ITEM:
        ok = ASN1_item_sign_ctx(j->it, j->alg1, j->alg2, j->sig, j->obj,
                                ctx) > 0;
        break;
    case SIGNER_DATA:
        *j->out = NULL;
        if (!EVP_DigestSign(ctx, NULL, &len, j->tbs, j->tbslen)
            || (*j->out = OPENSSL_malloc(len)) == NULL)
            goto end;
        if (!EVP_DigestSign(ctx, *j->out, &len, j->tbs, j->tbslen)) {
            OPENSSL_free(*j->out);
            *j->out = NULL;
            goto end;
        }
        *j->outlen = len;
        ok = 1;
        break;
    case SIGNER_OCSP:
        ok = OCSP_basic_sign_ctx(j->obj, j->cert, ctx, j->certs, j->flags) > 0;
        break;
    case SIGNER_BUF:
        /* the context signs once: no copy of the key context in Final */
        EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
        ok = EVP_DigestSign(ctx, j->buf, j->outlen, j->tbs, j->tbslen) == 1;
        break;
    }
 end:
    if (s->engine != NULL)
        pthread_mutex_unlock(&ms->lock);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        log_ossl(LOG_ERROR, "signing failed");
    return ok;
}

int ca_signer_sign_x509(const CA_SIGNER *s, X509 *x)
{
    struct signer_job j = { .op = SIGNER_X509, .obj = x };

    return signer_run(s, &j);
}

int ca_signer_sign_crl(const CA_SIGNER *s, X509_CRL *crl)
{
    struct signer_job j = { .op = SIGNER_CRL, .obj = crl };

    return signer_run(s, &j);
}

int ca_signer_sign_item(const CA_SIGNER *s, const ASN1_ITEM *it,
                        X509_ALGOR *alg1, X509_ALGOR *alg2,
                        ASN1_BIT_STRING *sig, const void *data)
{
    struct signer_job j = { .op = SIGNER_ITEM, .obj = (void *)data, .it = it,
                            .alg1 = alg1, .alg2 = alg2, .sig = sig };

    return signer_run(s, &j);
}

int ca_signer_sign_ocsp(const CA_SIGNER *s, OCSP_BASICRESP *bs, X509 *cert,
                        STACK_OF(X509) *certs, unsigned long flags)
{
    struct signer_job j = { .op = SIGNER_OCSP, .obj = bs, .cert = cert,
                            .certs = certs, .flags = flags };

    return signer_run(s, &j);
}

int ca_signer_sign_data(const CA_SIGNER *s, const unsigned char *tbs,
                        size_t tbslen, unsigned char **sig, size_t *siglen)
{
    struct signer_job j = { .op = SIGNER_DATA, .tbs = tbs, .tbslen = tbslen,
                            .out = sig, .outlen = siglen };

    return signer_run(s, &j);
}

size_t ca_signer_max_sig_len(const CA_SIGNER *s)
{
    int n = EVP_PKEY_get_size(s->pub);

    return n > 0 ? (size_t)n : 0;
}

int ca_signer_sign_buf(const CA_SIGNER *s, const unsigned char *tbs,
                       size_t tbslen, unsigned char *sig, size_t *siglen)
{
    struct signer_job j = { .op = SIGNER_BUF, .tbs = tbs, .tbslen = tbslen,
                            .buf = sig, .outlen = siglen };

    if (*siglen < ca_signer_max_sig_len(s))
        return 0;
    return signer_run(s, &j);
}

int ca_cert_der_join(const unsigned char *tbs, size_t tbslen,
                     const unsigned char *alg, size_t alglen,
                     const unsigned char *sig, size_t siglen,
                     unsigned char **out, size_t *outlen)
{
    unsigned char *buf, *w;
    int bits, content, total;

    *out = NULL;
    *outlen = 0;
    if (tbslen > INT_MAX / 4 || alglen > INT_MAX / 4 || siglen > INT_MAX / 4
        || (bits = ASN1_object_size(0, (int)siglen + 1, V_ASN1_BIT_STRING))
           < 0)
        return 0;
    content = (int)tbslen + (int)alglen + bits;
    if ((total = ASN1_object_size(1, content, V_ASN1_SEQUENCE)) < 0
        || (buf = OPENSSL_malloc((size_t)total)) == NULL)
        return 0;
    w = buf;
    ASN1_put_object(&w, 1, content, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(w, tbs, tbslen);
    w += tbslen;
    memcpy(w, alg, alglen);
    w += alglen;
    ASN1_put_object(&w, 0, (int)siglen + 1, V_ASN1_BIT_STRING,
                    V_ASN1_UNIVERSAL);
    *w++ = 0;
    memcpy(w, sig, siglen);
    *out = buf;
    *outlen = (size_t)total;
    return 1;
}

int ca_signer_sign_cert_and_msg(const CA_SIGNER *cs, const unsigned char *tbs,
                                size_t tbslen, const CA_SIGNER *ms,
                                const unsigned char *msg, size_t msglen,
                                size_t off, size_t olen, unsigned char **cert,
                                size_t *certlen, unsigned char *msig,
                                size_t *msiglen)
{
    unsigned char sigbuf[1024], *sig = sigbuf, *spliced = NULL;
    size_t siglen = ca_signer_max_sig_len(cs), slen = 0, alglen;
    const unsigned char *alg;
    int ok = 0;

    *cert = NULL;
    *certlen = 0;
    if (siglen == 0 || *msiglen < ca_signer_max_sig_len(ms)
        || !ca_signer_get0_sigalg_der(cs, &alg, &alglen)
        || (siglen > sizeof(sigbuf) && (sig = OPENSSL_malloc(siglen)) == NULL))
        goto end;
    if (cs->rpair != NULL && ms->rpair == cs->rpair && ms->rarg == cs->rarg) {
        /* one round trip: the other process joins and splices too */
        if (!cs->rpair(cs->rarg, cs->rkey, tbs, tbslen, ms->rkey, msg, msglen,
                       off, olen, sig, &siglen, msig, msiglen))
            goto end;
        ok = ca_cert_der_join(tbs, tbslen, alg, alglen, sig, siglen, cert,
                              certlen);
        goto end;
    }
    ok = ca_signer_sign_buf(cs, tbs, tbslen, sig, &siglen)
        && ca_cert_der_join(tbs, tbslen, alg, alglen, sig, siglen, cert,
                            certlen)
        && der_splice(msg, msglen, off, olen, *cert, *certlen, &spliced,
                      &slen)
        && ca_signer_sign_buf(ms, spliced, slen, msig, msiglen);
 end:
    if (!ok) {
        OPENSSL_free(*cert);
        *cert = NULL;
        *certlen = 0;
    }
    if (sig != sigbuf)
        OPENSSL_free(sig);
    OPENSSL_free(spliced);
    return ok;
}

/* Learns the AlgorithmIdentifier by signing a probe the way certificates
 * are signed (ASN1_item_sign_ctx on the prepared context). */
static int signer_learn_sigalg(const CA_SIGNER *s, unsigned char **der,
                               size_t *len)
{
    static const unsigned char probe[] = "cmpca signature algorithm probe";
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    int n, ok = 0;

    *der = NULL;
    if (alg == NULL || sig == NULL || os == NULL
        || !ASN1_OCTET_STRING_set(os, probe, sizeof(probe))
        || !ca_signer_sign_item(s, ASN1_ITEM_rptr(ASN1_OCTET_STRING), alg,
                                NULL, sig, os)
        || (n = i2d_X509_ALGOR(alg, der)) <= 0)
        goto end;
    *len = (size_t)n;
    ok = 1;
 end:
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(sig);
    ASN1_OCTET_STRING_free(os);
    ERR_clear_error();
    return ok;
}

int ca_signer_get0_sigalg_der(const CA_SIGNER *s, const unsigned char **der,
                              size_t *len)
{
    CA_SIGNER *ms = (CA_SIGNER *)s; /* the cache is mutable state */
    unsigned char *d = atomic_load(&ms->sigalg), *nd = NULL;
    size_t nlen = 0;

    if (d == NULL) {
        pthread_mutex_lock(&ms->sigalg_lock);
        d = atomic_load(&ms->sigalg);
        if (d == NULL && signer_learn_sigalg(s, &nd, &nlen)) {
            ms->sigalg_len = nlen;
            atomic_store(&ms->sigalg, nd);
            d = nd;
        }
        pthread_mutex_unlock(&ms->sigalg_lock);
        if (d == NULL)
            return 0;
    }
    *der = d;
    *len = ms->sigalg_len;
    return 1;
}

int ca_signer_matches_cert(const CA_SIGNER *s, X509 *cert)
{
    static const unsigned char probe[] = "cmpca key/certificate check";
    EVP_PKEY *cpub = X509_get0_pubkey(cert);
    EVP_MD_CTX *v = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int ok = 0;

    if (cpub == NULL || EVP_PKEY_eq(cpub, s->pub) != 1)
        goto end;
    if (!ca_signer_sign_data(s, probe, sizeof(probe), &sig, &siglen))
        goto end;
    if ((v = EVP_MD_CTX_new()) == NULL
        || !EVP_DigestVerifyInit(v, NULL, s->md, NULL, cpub)
        || EVP_DigestVerify(v, sig, siglen, probe, sizeof(probe)) != 1)
        goto end;
    ok = 1;
 end:
    EVP_MD_CTX_free(v);
    OPENSSL_free(sig);
    ERR_clear_error();
    return ok;
}
