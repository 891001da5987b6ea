/*
 * lgcmp: lean CMP client engine for bench/loadgen (see lgcmp.h). Requests
 * are built with cmpca's CMP types; responses are decoded strictly with the
 * certificates in them left as DER, so no public key is decoded on the hot
 * path (OpenSSL 3.0 spends ~100-200 us per key), and ECDSA signs/verifies
 * digests with contexts made once per key.
 */
#include "lgcmp.h"
#include "util/pkey_md.h"

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"

#include <openssl/asn1t.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LGCMP_NONCE_LEN   16
#define LGCMP_MAX_MSG     65536
#define LGCMP_MAX_CERTS   16      /* extraCerts, caPubs */
#define LGCMP_MAX_RESP    8       /* CertResponses */
#define LGCMP_MAX_ITAVS   16
#define LGCMP_KNOWN_MAX   32      /* validated certificates per client */
#define LGCMP_CLOCK_SKEW  300     /* seconds, for notBefore */
#define LGCMP_RAND_BUF    1024    /* random octets fetched at once */

/* ------------------------------------------------------------------ */
/* Response types: cmpca's CMP types with every certificate as raw DER */

typedef struct lgcmp_certorenccert_st {    /* CertOrEncCert */
    int type;
    union {
        ASN1_TYPE *certificate;            /* [0] Certificate, undecoded */
        ASN1_TYPE *encryptedCert;          /* [1] */
    } value;
} LGCMP_CERTORENCCERT;

typedef struct lgcmp_certkeypair_st {      /* CertifiedKeyPair */
    LGCMP_CERTORENCCERT *certOrEncCert;
    ASN1_TYPE *privateKey;                 /* [0] */
    ASN1_TYPE *publicationInfo;            /* [1] */
} LGCMP_CERTKEYPAIR;

typedef struct lgcmp_certresp_st {         /* CertResponse */
    ASN1_INTEGER *certReqId;
    CMP_PKISI *status;
    LGCMP_CERTKEYPAIR *certifiedKeyPair;
    ASN1_OCTET_STRING *rspInfo;
} LGCMP_CERTRESP;
DEFINE_STACK_OF(LGCMP_CERTRESP)

typedef struct lgcmp_certrepmsg_st {       /* CertRepMessage */
    STACK_OF(ASN1_TYPE) *caPubs;           /* [1], undecoded */
    STACK_OF(LGCMP_CERTRESP) *response;
} LGCMP_CERTREPMSG;

typedef struct lgcmp_body_st {             /* PKIBody */
    int type;                              /* the tag: enum cmp_body_type */
    union {
        LGCMP_CERTREPMSG *ip;              /* ip, cp, kup */
        ASN1_NULL *pkiconf;
        CMP_ERRORMSG *error;
        ASN1_TYPE *other;                  /* anything a client never gets */
    } value;
} LGCMP_BODY;

typedef struct lgcmp_rsp_st {              /* PKIMessage */
    CMP_HDR *header;
    LGCMP_BODY *body;
    ASN1_BIT_STRING *protection;           /* [0] */
    STACK_OF(ASN1_TYPE) *extraCerts;       /* [1], undecoded */
} LGCMP_RSP;

typedef struct lgcmp_protpart_st {         /* ProtectedPart (borrowed) */
    CMP_HDR *header;
    LGCMP_BODY *body;
} LGCMP_PROTPART;

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
 * with the TBS kept as its received bytes (what the signature covers). */
typedef struct lgcmp_cert_st {
    ASN1_TYPE *tbs;
    X509_ALGOR *sigAlg;
    ASN1_BIT_STRING *sig;
} LGCMP_CERT;

/* TBSCertificate with the public key undecoded. */
typedef struct lgcmp_tbs_st {
    ASN1_INTEGER *version;                 /* [0] */
    ASN1_INTEGER *serialNumber;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    ASN1_TYPE *spki;                       /* SubjectPublicKeyInfo, raw */
    ASN1_BIT_STRING *issuerUID;            /* [1] */
    ASN1_BIT_STRING *subjectUID;           /* [2] */
    ASN1_TYPE *extensions;                 /* [3] Extensions, raw */
} LGCMP_TBS;

/* The CMP module is EXPLICIT TAGS (see src/asn1/cmp_asn1.c). */
ASN1_CHOICE(LGCMP_CERTORENCCERT) = {
    ASN1_EXP(LGCMP_CERTORENCCERT, value.certificate, ASN1_ANY, 0),
    ASN1_EXP(LGCMP_CERTORENCCERT, value.encryptedCert, ASN1_ANY, 1)
} ASN1_CHOICE_END(LGCMP_CERTORENCCERT)

ASN1_SEQUENCE(LGCMP_CERTKEYPAIR) = {
    ASN1_SIMPLE(LGCMP_CERTKEYPAIR, certOrEncCert, LGCMP_CERTORENCCERT),
    ASN1_EXP_OPT(LGCMP_CERTKEYPAIR, privateKey, ASN1_ANY, 0),
    ASN1_EXP_OPT(LGCMP_CERTKEYPAIR, publicationInfo, ASN1_ANY, 1)
} ASN1_SEQUENCE_END(LGCMP_CERTKEYPAIR)

ASN1_SEQUENCE(LGCMP_CERTRESP) = {
    ASN1_SIMPLE(LGCMP_CERTRESP, certReqId, ASN1_INTEGER),
    ASN1_SIMPLE(LGCMP_CERTRESP, status, CMP_PKISI),
    ASN1_OPT(LGCMP_CERTRESP, certifiedKeyPair, LGCMP_CERTKEYPAIR),
    ASN1_OPT(LGCMP_CERTRESP, rspInfo, ASN1_OCTET_STRING)
} ASN1_SEQUENCE_END(LGCMP_CERTRESP)

ASN1_SEQUENCE(LGCMP_CERTREPMSG) = {
    ASN1_EXP_SEQUENCE_OF_OPT(LGCMP_CERTREPMSG, caPubs, ASN1_ANY, 1),
    ASN1_SEQUENCE_OF(LGCMP_CERTREPMSG, response, LGCMP_CERTRESP)
} ASN1_SEQUENCE_END(LGCMP_CERTREPMSG)

/* every alternative in tag order, so that the selector equals the tag */
ASN1_CHOICE(LGCMP_BODY) = {
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 0),          /* ir */
    ASN1_EXP(LGCMP_BODY, value.ip, LGCMP_CERTREPMSG, 1),      /* ip */
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 2),          /* cr */
    ASN1_EXP(LGCMP_BODY, value.ip, LGCMP_CERTREPMSG, 3),      /* cp */
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 4),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 5),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 6),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 7),          /* kur */
    ASN1_EXP(LGCMP_BODY, value.ip, LGCMP_CERTREPMSG, 8),      /* kup */
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 9),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 10),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 11),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 12),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 13),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 14),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 15),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 16),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 17),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 18),
    ASN1_EXP(LGCMP_BODY, value.pkiconf, ASN1_NULL, 19),       /* pkiconf */
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 20),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 21),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 22),
    ASN1_EXP(LGCMP_BODY, value.error, CMP_ERRORMSG, 23),      /* error */
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 24),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 25),
    ASN1_EXP(LGCMP_BODY, value.other, ASN1_ANY, 26)
} ASN1_CHOICE_END(LGCMP_BODY)

ASN1_SEQUENCE(LGCMP_RSP) = {
    ASN1_SIMPLE(LGCMP_RSP, header, CMP_HDR),
    ASN1_SIMPLE(LGCMP_RSP, body, LGCMP_BODY),
    ASN1_EXP_OPT(LGCMP_RSP, protection, ASN1_BIT_STRING, 0),
    ASN1_EXP_SEQUENCE_OF_OPT(LGCMP_RSP, extraCerts, ASN1_ANY, 1)
} ASN1_SEQUENCE_END(LGCMP_RSP)
IMPLEMENT_ASN1_FUNCTIONS(LGCMP_RSP)

ASN1_SEQUENCE(LGCMP_PROTPART) = {
    ASN1_SIMPLE(LGCMP_PROTPART, header, CMP_HDR),
    ASN1_SIMPLE(LGCMP_PROTPART, body, LGCMP_BODY)
} ASN1_SEQUENCE_END(LGCMP_PROTPART)

ASN1_SEQUENCE(LGCMP_CERT) = {
    ASN1_SIMPLE(LGCMP_CERT, tbs, ASN1_ANY),
    ASN1_SIMPLE(LGCMP_CERT, sigAlg, X509_ALGOR),
    ASN1_SIMPLE(LGCMP_CERT, sig, ASN1_BIT_STRING)
} ASN1_SEQUENCE_END(LGCMP_CERT)
IMPLEMENT_ASN1_FUNCTIONS(LGCMP_CERT)

ASN1_SEQUENCE(LGCMP_TBS) = {
    ASN1_EXP_OPT(LGCMP_TBS, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(LGCMP_TBS, serialNumber, ASN1_INTEGER),
    ASN1_SIMPLE(LGCMP_TBS, signature, X509_ALGOR),
    ASN1_SIMPLE(LGCMP_TBS, issuer, X509_NAME),
    ASN1_SIMPLE(LGCMP_TBS, validity, X509_VAL),
    ASN1_SIMPLE(LGCMP_TBS, subject, X509_NAME),
    ASN1_SIMPLE(LGCMP_TBS, spki, ASN1_ANY),
    ASN1_IMP_OPT(LGCMP_TBS, issuerUID, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(LGCMP_TBS, subjectUID, ASN1_BIT_STRING, 2),
    ASN1_EXP_OPT(LGCMP_TBS, extensions, ASN1_ANY, 3)
} ASN1_SEQUENCE_END(LGCMP_TBS)
IMPLEMENT_ASN1_FUNCTIONS(LGCMP_TBS)

/* ------------------------------------------------------------------ */
/* Objects                                                            */

/* A private key with what signing needs, made once: for ECDSA the digest,
 * the signature algorithm and a reusable EVP_PKEY_sign context (other key
 * types take OpenSSL's generic path). */
struct lgcmp_signer {
    EVP_PKEY *pkey;
    EVP_MD *md;                            /* NULL: generic path */
    int sig_nid;                           /* ecdsa-with-SHAx */
    size_t max_sig;
    pthread_mutex_t lock;                  /* keys may be shared by threads */
    EVP_PKEY_CTX *ctx;
};

struct lgcmp_key_st {
    struct lgcmp_signer signer;
    CMP_RAWSPKI *spki;                     /* for the certTemplate */
    unsigned char *spki_der;               /* to compare with the issued one */
    size_t spki_len;
};

struct lgcmp_ident_st {
    struct lgcmp_signer signer;
    X509_NAME *subject;
    ASN1_OCTET_STRING *skid;               /* NULL if the cert has none */
    ASN1_TYPE *old_cert_id;                /* CertId of the cert, for kur */
    unsigned char *xcerts;                 /* DER certs: cert, then chain */
    size_t xcerts_len;
};

struct lgcmp_trust_st {
    X509 *root;
    X509_STORE *store;
};

/* A server certificate that passed path validation to the trust anchor. */
struct lgcmp_known {
    unsigned char sha256[32];
    X509 *cert;
    EVP_PKEY *pub;                         /* borrowed from cert */
    EVP_PKEY_CTX *vctx;                    /* ECDSA: reusable verify context */
    time_t not_after;
    int is_ca;                             /* may issue certificates */
    int signer_ok;                         /* may protect CMP messages */
};

struct lgcmp_client_st {
    const LGCMP_TRUST *trust;
    lgcmp_transfer_fn transfer;
    void *arg;
    EVP_MD *sha256, *sha384, *sha512;
    EVP_MD_CTX *mdctx;
    unsigned char rnd[LGCMP_RAND_BUF];
    size_t rnd_left;
    X509_NAME *null_dn;
    struct lgcmp_known known[LGCMP_KNOWN_MAX];
    int nknown, next_evict;
    X509_NAME *recipient;                  /* the last server signer */
    X509_NAME *old_recipient;              /* the one before: a request in
                                            * flight may still borrow it */
    EVP_PKEY *issuer_pub;                  /* CA of the last accepted cert */
    long validations;
};

/* A decoded response with what its checks produce. */
struct lgcmp_in {
    LGCMP_RSP *msg;
    struct lgcmp_known *signer;
};

static void lgcmp_fail(struct lgcmp_result *res, enum lgcmp_outcome o,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lgcmp_fail(struct lgcmp_result *res, enum lgcmp_outcome o,
                       const char *fmt, ...)
{
    va_list ap;

    res->outcome = o;
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof(res->text), fmt, ap);
    va_end(ap);
    ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* Signing and verifying                                              */

/* Fills |s| for |pkey| (reference taken). Returns 1, or 0 if the
 * reference cannot be taken; a key without a fast path still gives 1. */
static int lgcmp_signer_init(struct lgcmp_signer *s, EVP_PKEY *pkey)
{
    const char *mdname;
    int md_nid;

    memset(s, 0, sizeof(*s));
    if (!EVP_PKEY_up_ref(pkey))
        return 0;
    s->pkey = pkey;
    pthread_mutex_init(&s->lock, NULL);
    if (!EVP_PKEY_is_a(pkey, "EC")
        || (mdname = pkey_default_md(pkey)) == NULL)
        return 1;
    md_nid = OBJ_sn2nid(mdname);
    if (!OBJ_find_sigid_by_algs(&s->sig_nid, md_nid, NID_X9_62_id_ecPublicKey)
        || EVP_PKEY_get_size(pkey) <= 0
        || (s->md = EVP_MD_fetch(NULL, mdname, NULL)) == NULL
        || (s->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL
        || EVP_PKEY_sign_init(s->ctx) <= 0) {
        /* generic path */
        EVP_MD_free(s->md);
        EVP_PKEY_CTX_free(s->ctx);
        s->md = NULL;
        s->ctx = NULL;
    } else {
        s->max_sig = (size_t)EVP_PKEY_get_size(pkey);
    }
    ERR_clear_error();
    return 1;
}

/* Releases what lgcmp_signer_init made (a zeroed |s| is harmless). */
static void lgcmp_signer_clear(struct lgcmp_signer *s)
{
    if (s->pkey == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    EVP_MD_free(s->md);
    EVP_PKEY_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->lock);
    memset(s, 0, sizeof(*s));
}

/* Hashes |pre| then |data| with |md| into |out|. */
static int lgcmp_digest(LGCMP_CLIENT *c, const EVP_MD *md,
                        const unsigned char *pre, size_t prelen,
                        const unsigned char *data, size_t len,
                        unsigned char *out, unsigned int *outlen)
{
    return EVP_DigestInit_ex(c->mdctx, md, NULL)
        && (prelen == 0 || EVP_DigestUpdate(c->mdctx, pre, prelen))
        && EVP_DigestUpdate(c->mdctx, data, len)
        && EVP_DigestFinal_ex(c->mdctx, out, outlen);
}

/*
 * Signs the DER of |data| (type |it|) with |s|: sets |alg| first (it may be
 * part of |data|, as protectionAlg is), then |sig|. If |der| is not NULL it
 * receives the signed encoding (OPENSSL_malloc'ed) and *der_len its length.
 * Returns 1 or 0.
 */
static int lgcmp_sign(LGCMP_CLIENT *c, struct lgcmp_signer *s,
                      const ASN1_ITEM *it, const void *data, X509_ALGOR *alg,
                      ASN1_BIT_STRING *sig, unsigned char **der, int *der_len)
{
    unsigned char dgst[EVP_MAX_MD_SIZE], *buf = NULL, *out = NULL;
    unsigned int dlen = 0;
    size_t siglen;
    int len = -1, ok = 0;

    if (s->md == NULL) {
        /* generic: OpenSSL's ASN1_item_sign_ctx via cmpca */
        if (!cmp_protect_sign_pkey_fn(s->pkey, it, alg, NULL, sig, data))
            goto end;
        if (der != NULL && (len = ASN1_item_i2d(data, &buf, it)) <= 0)
            goto end;
        ok = 1;
        goto end;
    }
    if (!X509_ALGOR_set0(alg, OBJ_nid2obj(s->sig_nid), V_ASN1_UNDEF, NULL)
        || (len = ASN1_item_i2d(data, &buf, it)) <= 0
        || !lgcmp_digest(c, s->md, NULL, 0, buf, (size_t)len, dgst, &dlen)
        || (out = OPENSSL_malloc(s->max_sig)) == NULL)
        goto end;
    siglen = s->max_sig;
    pthread_mutex_lock(&s->lock);
    ok = EVP_PKEY_sign(s->ctx, out, &siglen, dgst, dlen) > 0;
    pthread_mutex_unlock(&s->lock);
    if (!ok)
        goto end;
    ASN1_STRING_set0(sig, out, (int)siglen);
    out = NULL;
    sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
 end:
    OPENSSL_free(out);
    if (ok && der != NULL) {
        *der = buf;
        *der_len = len;
        buf = NULL;
    }
    OPENSSL_free(buf);
    ERR_clear_error();
    return ok;
}

/* The client's digest for |nid| (SHA-256/384/512), or NULL. */
static const EVP_MD *lgcmp_md(const LGCMP_CLIENT *c, int nid)
{
    return nid == NID_sha256 ? c->sha256 : nid == NID_sha384 ? c->sha384
        : nid == NID_sha512 ? c->sha512 : NULL;
}

/*
 * Verifies |sig| (algorithm |alg|, which must be allowed) by |k| over the
 * received bytes |pre| + |data|, which are the DER of |obj| as |it|. ECDSA
 * verifies the digest with k's context; anything else goes through
 * ASN1_item_verify_ex (re-encoding |obj|). Returns 1 if it verifies.
 */
static int lgcmp_verify(LGCMP_CLIENT *c, const struct lgcmp_known *k,
                        const X509_ALGOR *alg, const ASN1_BIT_STRING *sig,
                        const unsigned char *pre, size_t prelen,
                        const unsigned char *data, size_t len,
                        const ASN1_ITEM *it, const void *obj)
{
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    const EVP_MD *md;
    int md_nid = NID_undef, pk_nid = NID_undef, ok;

    if (cmp_protect_check_sig_alg(alg) != CMP_R_OK)
        return 0;
    if (k->vctx != NULL
        && OBJ_find_sigid_algs(OBJ_obj2nid(alg->algorithm), &md_nid, &pk_nid)
        && pk_nid == NID_X9_62_id_ecPublicKey
        && (md = lgcmp_md(c, md_nid)) != NULL) {
        ok = (sig->flags & 0x07) == 0
            && lgcmp_digest(c, md, pre, prelen, data, len, dgst, &dlen)
            && EVP_PKEY_verify(k->vctx, ASN1_STRING_get0_data(sig),
                               (size_t)ASN1_STRING_length(sig), dgst, dlen) == 1;
    } else {
        ok = ASN1_item_verify_ex(it, (X509_ALGOR *)alg, (ASN1_BIT_STRING *)sig,
                                 (void *)obj, NULL, k->pub, NULL, NULL) > 0;
    }
    ERR_clear_error();
    return ok;
}

/* ------------------------------------------------------------------ */
/* Keys and identities                                                */

LGCMP_KEY *lgcmp_key_new(EVP_PKEY *pkey)
{
    LGCMP_KEY *k = calloc(1, sizeof(*k));
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;

    if (k == NULL || (len = i2d_PUBKEY(pkey, &der)) <= 0)
        goto err;
    p = der;
    if ((k->spki = d2i_CMP_RAWSPKI(NULL, &p, len)) == NULL
        || p != der + len || !lgcmp_signer_init(&k->signer, pkey))
        goto err;
    k->spki_der = der;
    k->spki_len = (size_t)len;
    return k;
 err:
    OPENSSL_free(der);
    if (k != NULL)
        CMP_RAWSPKI_free(k->spki);
    free(k);
    ERR_clear_error();
    return NULL;
}

void lgcmp_key_free(LGCMP_KEY *key)
{
    if (key == NULL)
        return;
    lgcmp_signer_clear(&key->signer);
    CMP_RAWSPKI_free(key->spki);
    OPENSSL_free(key->spki_der);
    free(key);
}

EVP_PKEY *lgcmp_key_get0_pkey(const LGCMP_KEY *key)
{
    return key->signer.pkey;
}

void lgcmp_ident_free(LGCMP_IDENT *id)
{
    if (id == NULL)
        return;
    lgcmp_signer_clear(&id->signer);
    X509_NAME_free(id->subject);
    ASN1_OCTET_STRING_free(id->skid);
    ASN1_TYPE_free(id->old_cert_id);
    OPENSSL_free(id->xcerts);
    free(id);
}

/* The oldCertID control value: CertId ::= SEQUENCE { issuer GeneralName,
 * serialNumber INTEGER }, as an ASN1_TYPE holding its encoding. */
static ASN1_TYPE *lgcmp_cert_id(const X509_NAME *issuer,
                                const ASN1_INTEGER *serial)
{
    OSSL_CRMF_CERTID *cid = OSSL_CRMF_CERTID_gen(issuer, serial);
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *t = NULL;

    if (cid == NULL
        || (seq = ASN1_item_pack(cid, ASN1_ITEM_rptr(OSSL_CRMF_CERTID),
                                 NULL)) == NULL
        || (t = ASN1_TYPE_new()) == NULL)
        goto end;
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, seq);
    seq = NULL;
 end:
    OSSL_CRMF_CERTID_free(cid);
    ASN1_STRING_free(seq);
    return t;
}

/* Appends the certificate |der| to id->xcerts. */
static int lgcmp_ident_push_cert(LGCMP_IDENT *id, const unsigned char *der,
                                 size_t len)
{
    unsigned char *n = OPENSSL_realloc(id->xcerts, id->xcerts_len + len);

    if (n == NULL)
        return 0;
    memcpy(n + id->xcerts_len, der, len);
    id->xcerts = n;
    id->xcerts_len += len;
    return 1;
}

LGCMP_IDENT *lgcmp_ident_new(X509 *cert, EVP_PKEY *key,
                             const STACK_OF(X509) *chain)
{
    LGCMP_IDENT *id = calloc(1, sizeof(*id));
    const ASN1_OCTET_STRING *ski;
    unsigned char *der = NULL;
    int i, len, n = chain != NULL ? sk_X509_num(chain) : 0;

    if (id == NULL || !lgcmp_signer_init(&id->signer, key)) {
        free(id);
        return NULL;
    }
    if ((id->subject = X509_NAME_dup(X509_get_subject_name(cert))) == NULL
        || (id->old_cert_id = lgcmp_cert_id(X509_get_issuer_name(cert),
                                            X509_get0_serialNumber(cert))) == NULL)
        goto err;
    if ((ski = X509_get0_subject_key_id(cert)) != NULL
        && (id->skid = ASN1_OCTET_STRING_dup(ski)) == NULL)
        goto err;
    for (i = -1; i < n; i++) {
        X509 *x = i < 0 ? cert : sk_X509_value(chain, i);

        /* like OpenSSL's client (X509_ADD_FLAG_NO_SS): no self-signed
         * certificate, the receiver has its trust anchors */
        if (i >= 0 && (X509_cmp(x, cert) == 0 || X509_self_signed(x, 0) == 1))
            continue;
        if ((len = i2d_X509(x, &der)) <= 0
            || !lgcmp_ident_push_cert(id, der, (size_t)len))
            goto err;
        OPENSSL_free(der);
        der = NULL;
    }
    ERR_clear_error();
    return id;
 err:
    OPENSSL_free(der);
    lgcmp_ident_free(id);
    ERR_clear_error();
    return NULL;
}

/* Decodes the certificate |der| (exactly |len| octets) into *cert and its
 * TBS into *tbs, leaving public key and extensions as bytes. Returns 1/0. */
static int lgcmp_cert_parse(const unsigned char *der, size_t len,
                            LGCMP_CERT **cert, LGCMP_TBS **tbs)
{
    const unsigned char *p = der, *q;
    const ASN1_STRING *s;

    *cert = NULL;
    *tbs = NULL;
    if (len > LONG_MAX
        || (*cert = d2i_LGCMP_CERT(NULL, &p, (long)len)) == NULL
        || p != der + len || (*cert)->tbs->type != V_ASN1_SEQUENCE)
        goto err;
    s = (*cert)->tbs->value.sequence;
    q = ASN1_STRING_get0_data(s);
    if ((*tbs = d2i_LGCMP_TBS(NULL, &q, ASN1_STRING_length(s))) == NULL
        || q != ASN1_STRING_get0_data(s) + ASN1_STRING_length(s)
        || (*tbs)->spki->type != V_ASN1_SEQUENCE
        || ((*tbs)->extensions != NULL
            && (*tbs)->extensions->type != V_ASN1_SEQUENCE))
        goto err;
    return 1;
 err:
    LGCMP_CERT_free(*cert);
    LGCMP_TBS_free(*tbs);
    *cert = NULL;
    *tbs = NULL;
    ERR_clear_error();
    return 0;
}

/* The subjectKeyIdentifier in the raw extensions |exts| (may be NULL):
 * sets *ski (NULL if absent). Returns 0 if the extensions are malformed. */
static int lgcmp_exts_ski(const ASN1_TYPE *exts, ASN1_OCTET_STRING **ski)
{
    const unsigned char *p;
    X509_EXTENSIONS *sk;
    int i, ok = 1;

    *ski = NULL;
    if (exts == NULL)
        return 1;
    p = ASN1_STRING_get0_data(exts->value.sequence);
    if ((sk = d2i_X509_EXTENSIONS(NULL, &p,
                                  ASN1_STRING_length(exts->value.sequence))) == NULL)
        return 0;
    for (i = 0; i < sk_X509_EXTENSION_num(sk); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(sk, i);

        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext))
            == NID_subject_key_identifier) {
            ok = (*ski = X509V3_EXT_d2i(ext)) != NULL;
            break;
        }
    }
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    return ok;
}

LGCMP_IDENT *lgcmp_ident_new_der(const unsigned char *der, size_t len,
                                 EVP_PKEY *key)
{
    LGCMP_IDENT *id = calloc(1, sizeof(*id));
    LGCMP_CERT *cert = NULL;
    LGCMP_TBS *tbs = NULL;

    if (id == NULL || !lgcmp_signer_init(&id->signer, key)) {
        free(id);
        return NULL;
    }
    if (!lgcmp_cert_parse(der, len, &cert, &tbs)
        || (id->subject = X509_NAME_dup(tbs->subject)) == NULL
        || (id->old_cert_id = lgcmp_cert_id(tbs->issuer,
                                            tbs->serialNumber)) == NULL
        || !lgcmp_exts_ski(tbs->extensions, &id->skid)
        || !lgcmp_ident_push_cert(id, der, len))
        goto err;
    LGCMP_CERT_free(cert);
    LGCMP_TBS_free(tbs);
    return id;
 err:
    LGCMP_CERT_free(cert);
    LGCMP_TBS_free(tbs);
    lgcmp_ident_free(id);
    ERR_clear_error();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Trust and clients                                                  */

LGCMP_TRUST *lgcmp_trust_new(X509 *root)
{
    LGCMP_TRUST *t = calloc(1, sizeof(*t));

    if (t == NULL || (t->store = X509_STORE_new()) == NULL
        || !X509_STORE_add_cert(t->store, root) || !X509_up_ref(root)) {
        lgcmp_trust_free(t);
        return NULL;
    }
    t->root = root;
    return t;
}

void lgcmp_trust_free(LGCMP_TRUST *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    X509_free(t->root);
    free(t);
}

LGCMP_CLIENT *lgcmp_client_new(const LGCMP_TRUST *trust,
                               lgcmp_transfer_fn transfer, void *arg)
{
    LGCMP_CLIENT *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->trust = trust;
    c->transfer = transfer;
    c->arg = arg;
    if ((c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL
        || (c->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL)) == NULL
        || (c->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL)) == NULL
        || (c->mdctx = EVP_MD_CTX_new()) == NULL
        || (c->null_dn = X509_NAME_new()) == NULL) {
        lgcmp_client_free(c);
        return NULL;
    }
    return c;
}

/* Releases one cache entry and zeroes it. */
static void lgcmp_known_clear(struct lgcmp_known *k)
{
    X509_free(k->cert);
    EVP_PKEY_CTX_free(k->vctx);
    memset(k, 0, sizeof(*k));
}

void lgcmp_client_free(LGCMP_CLIENT *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nknown; i++)
        lgcmp_known_clear(&c->known[i]);
    X509_NAME_free(c->recipient);
    X509_NAME_free(c->old_recipient);
    X509_NAME_free(c->null_dn);
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->sha256);
    EVP_MD_free(c->sha384);
    EVP_MD_free(c->sha512);
    OPENSSL_cleanse(c->rnd, sizeof(c->rnd));
    free(c);
}

EVP_PKEY *lgcmp_client_get0_issuer_pubkey(const LGCMP_CLIENT *c)
{
    return c->issuer_pub;
}

long lgcmp_client_get_validations(const LGCMP_CLIENT *c)
{
    return c->validations;
}

void lgcmp_result_clear(struct lgcmp_result *res)
{
    OPENSSL_free(res->cert);
    memset(res, 0, sizeof(*res));
    res->status = -1;
}

/* Returns the validated certificate with SHA-256 |sha|, or NULL. */
static struct lgcmp_known *lgcmp_known_find(LGCMP_CLIENT *c,
                                            const unsigned char *sha)
{
    int i;

    for (i = 0; i < c->nknown; i++)
        if (memcmp(c->known[i].sha256, sha, 32) == 0)
            return &c->known[i];
    return NULL;
}

/* Adds (or updates) the validated certificate |x|. */
static struct lgcmp_known *lgcmp_known_add(LGCMP_CLIENT *c, X509 *x,
                                           int is_ca, int signer_ok)
{
    struct lgcmp_known *k;
    unsigned char sha[32];
    unsigned int shalen = 0;
    struct tm tm;

    if (!X509_digest(x, c->sha256, sha, &shalen) || shalen != 32
        || X509_get0_pubkey(x) == NULL
        || !ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        return NULL;
    if ((k = lgcmp_known_find(c, sha)) == NULL) {
        if (c->nknown < LGCMP_KNOWN_MAX) {
            k = &c->known[c->nknown++];
        } else {
            k = &c->known[c->next_evict];
            c->next_evict = (c->next_evict + 1) % LGCMP_KNOWN_MAX;
            if (c->issuer_pub == k->pub)
                c->issuer_pub = NULL;
            lgcmp_known_clear(k);
        }
        if (!X509_up_ref(x))
            return NULL;
        k->cert = x;
        memcpy(k->sha256, sha, 32);
        k->pub = X509_get0_pubkey(x);
        k->not_after = timegm(&tm);
        if (EVP_PKEY_is_a(k->pub, "EC")
            && ((k->vctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL)) == NULL
                || EVP_PKEY_verify_init(k->vctx) <= 0)) {
            EVP_PKEY_CTX_free(k->vctx);     /* generic path then */
            k->vctx = NULL;
        }
        ERR_clear_error();
    }
    k->is_ca |= is_ca;
    k->signer_ok |= signer_ok;
    return k;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

/* Sets *os to LGCMP_NONCE_LEN fresh random octets (from a per-client
 * buffer filled by RAND_bytes). */
static int lgcmp_set_random(LGCMP_CLIENT *c, ASN1_OCTET_STRING **os)
{
    if (c->rnd_left < LGCMP_NONCE_LEN) {
        if (RAND_bytes(c->rnd, sizeof(c->rnd)) <= 0)
            return 0;
        c->rnd_left = sizeof(c->rnd);
    }
    c->rnd_left -= LGCMP_NONCE_LEN;
    if (*os == NULL && (*os = ASN1_OCTET_STRING_new()) == NULL)
        return 0;
    return ASN1_OCTET_STRING_set(*os, c->rnd + c->rnd_left, LGCMP_NONCE_LEN);
}

/* Frees a request built by lgcmp_msg_new and lgcmp_body_*, giving back the
 * fields it borrows from identity, key and client. */
static void lgcmp_msg_free(CMP_MSG *msg)
{
    CMP_HDR *h;
    int i;

    if (msg == NULL)
        return;
    h = msg->header;
    h->sender->d.directoryName = NULL;
    h->recipient->d.directoryName = NULL;
    h->senderKID = NULL;
    if (msg->body->type == CMP_BODY_IR || msg->body->type == CMP_BODY_KUR) {
        for (i = 0; i < sk_CMP_CERTREQMSG_num(msg->body->value.ir); i++) {
            CMP_CERTREQUEST *cr = sk_CMP_CERTREQMSG_value(msg->body->value.ir,
                                                          i)->certReq;
            int j;

            cr->certTemplate->subject = NULL;
            cr->certTemplate->publicKey = NULL;
            for (j = 0; j < sk_CMP_ITAV_num(cr->controls); j++)
                sk_CMP_ITAV_value(cr->controls, j)->infoValue = NULL;
        }
    }
    CMP_MSG_free(msg);
}

/*
 * A new request header: pvno 2, sender |id|, recipient the known server
 * signer (NULL-DN before the first response), messageTime now, senderKID,
 * |tid| (fresh random if NULL), a fresh senderNonce, |recip_nonce|.
 * Names and senderKID are borrowed (see lgcmp_msg_free): they are only
 * encoded, never changed.
 */
static CMP_MSG *lgcmp_msg_new(LGCMP_CLIENT *c, const LGCMP_IDENT *id,
                              const ASN1_OCTET_STRING *tid,
                              const ASN1_OCTET_STRING *recip_nonce)
{
    CMP_MSG *msg = CMP_MSG_new();
    CMP_HDR *h;

    if (msg == NULL)
        return NULL;
    h = msg->header;
    GENERAL_NAME_set0_value(h->sender, GEN_DIRNAME, id->subject);
    GENERAL_NAME_set0_value(h->recipient, GEN_DIRNAME,
                            c->recipient != NULL ? c->recipient : c->null_dn);
    h->senderKID = id->skid;
    if (!ASN1_INTEGER_set(h->pvno, 2)
        || (h->messageTime = ASN1_GENERALIZEDTIME_set(NULL, time(NULL))) == NULL
        || !lgcmp_set_random(c, &h->senderNonce))
        goto err;
    if (tid != NULL ? (h->transactionID = ASN1_OCTET_STRING_dup(tid)) == NULL
                    : !lgcmp_set_random(c, &h->transactionID))
        goto err;
    if (recip_nonce != NULL
        && (h->recipNonce = ASN1_OCTET_STRING_dup(recip_nonce)) == NULL)
        goto err;
    return msg;
 err:
    lgcmp_msg_free(msg);
    return NULL;
}

/* The ir/kur body: one CertReqMsg, certReqId 0, template subject + key,
 * oldCertID for kur, POPO signature by the new key over DER(CertRequest).
 * Subject, key and control value are borrowed (see lgcmp_msg_free). */
static int lgcmp_body_certreq(LGCMP_CLIENT *c, CMP_MSG *msg, int kur,
                              const LGCMP_IDENT *id, LGCMP_KEY *newkey)
{
    CMP_CERTREQMSG *crm = CMP_CERTREQMSG_new();
    CMP_CERTTEMPLATE *tpl;
    CMP_POPOSIGNINGKEY *sk;
    CMP_ITAV *itav;

    if (crm == NULL)
        return 0;
    msg->body->type = kur ? CMP_BODY_KUR : CMP_BODY_IR;
    if ((msg->body->value.ir = sk_CMP_CERTREQMSG_new_null()) == NULL
        || !sk_CMP_CERTREQMSG_push(msg->body->value.ir, crm)) {
        CMP_CERTREQMSG_free(crm);
        return 0;
    }
    tpl = crm->certReq->certTemplate;
    tpl->subject = id->subject;
    tpl->publicKey = newkey->spki;
    if (!ASN1_INTEGER_set(crm->certReq->certReqId, 0))
        return 0;
    if (kur) {
        if ((crm->certReq->controls = sk_CMP_ITAV_new_null()) == NULL
            || (itav = cmp_itav_new(NID_id_regCtrl_oldCertID, NULL)) == NULL)
            return 0;
        if (!sk_CMP_ITAV_push(crm->certReq->controls, itav)) {
            CMP_ITAV_free(itav);
            return 0;
        }
        itav->infoValue = id->old_cert_id;
    }
    if ((crm->popo = CMP_POPO_new()) == NULL
        || (sk = CMP_POPOSIGNINGKEY_new()) == NULL)
        return 0;
    crm->popo->type = 1;
    crm->popo->value.signature = sk;
    return lgcmp_sign(c, &newkey->signer, ASN1_ITEM_rptr(CMP_CERTREQUEST),
                      crm->certReq, sk->algorithmIdentifier, sk->signature,
                      NULL, NULL);
}

/* The certConf body: one CertStatus for certReqId 0 with certHash of
 * |cert| and status accepted, or rejection with |fail_bit| if >= 0. */
static int lgcmp_body_certconf(CMP_MSG *msg, const unsigned char *cert,
                               size_t cert_len, int fail_bit, const char *text)
{
    CMP_CERTSTATUS *st = CMP_CERTSTATUS_new();
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;

    if (st == NULL || !cmp_certhash_der(cert, cert_len, hash, &hlen)
        || !ASN1_OCTET_STRING_set(st->certHash, hash, (int)hlen)
        || !ASN1_INTEGER_set(st->certReqId, 0)
        || (st->statusInfo = cmp_pkisi_new(fail_bit >= 0 ? CMP_STATUS_REJECTION
                                                         : CMP_STATUS_ACCEPTED,
                                           fail_bit, text)) == NULL)
        goto err;
    msg->body->type = CMP_BODY_CERTCONF;
    if ((msg->body->value.certConf = sk_CMP_CERTSTATUS_new_null()) == NULL
        || !sk_CMP_CERTSTATUS_push(msg->body->value.certConf, st))
        goto err;
    return 1;
 err:
    CMP_CERTSTATUS_free(st);
    return 0;
}

/*
 * Protects |msg| with |id|'s key and encodes it, with id's certificates as
 * extraCerts. The ProtectedPart is encoded once, signed, and its content
 * (header, body) becomes the message's, followed by [0] protection and
 * [1] extraCerts, which are kept as DER: no certificate is decoded or
 * re-encoded per message. Returns 1 with *out (OPENSSL_malloc'ed).
 */
static int lgcmp_msg_finish(LGCMP_CLIENT *c, CMP_MSG *msg, LGCMP_IDENT *id,
                            unsigned char **out, size_t *out_len)
{
    CMP_PROTPART pp;
    unsigned char *ppder = NULL, *sigder = NULL, *buf = NULL, *w;
    const unsigned char *p;
    long clen;
    int pplen = 0, siglen, tag, xclass, seq_len, xc_len, prot_len, content,
        total;

    *out = NULL;
    *out_len = 0;
    X509_ALGOR_free(msg->header->protectionAlg);
    ASN1_BIT_STRING_free(msg->protection);
    msg->protection = NULL;
    pp.header = msg->header;
    pp.body = msg->body;
    if ((msg->header->protectionAlg = X509_ALGOR_new()) == NULL
        || (msg->protection = ASN1_BIT_STRING_new()) == NULL
        || !lgcmp_sign(c, &id->signer, ASN1_ITEM_rptr(CMP_PROTPART), &pp,
                       msg->header->protectionAlg, msg->protection, &ppder,
                       &pplen)
        || (siglen = i2d_ASN1_BIT_STRING(msg->protection, &sigder)) <= 0)
        goto end;
    p = ppder;
    if (ASN1_get_object(&p, &clen, &tag, &xclass, pplen) != V_ASN1_CONSTRUCTED
        || (p - ppder) + clen != pplen || id->xcerts_len == 0
        || id->xcerts_len > INT_MAX / 4)
        goto end;
    prot_len = ASN1_object_size(1, siglen, 0);
    seq_len = ASN1_object_size(1, (int)id->xcerts_len, V_ASN1_SEQUENCE);
    xc_len = seq_len < 0 ? -1 : ASN1_object_size(1, seq_len, 1);
    if (prot_len < 0 || xc_len < 0 || clen > INT_MAX / 4)
        goto end;
    content = (int)clen + prot_len + xc_len;
    total = ASN1_object_size(1, content, V_ASN1_SEQUENCE);
    if (total < 0 || (buf = OPENSSL_malloc((size_t)total)) == NULL)
        goto end;
    w = buf;
    ASN1_put_object(&w, 1, content, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(w, p, (size_t)clen);
    w += clen;
    ASN1_put_object(&w, 1, siglen, 0, V_ASN1_CONTEXT_SPECIFIC);
    memcpy(w, sigder, (size_t)siglen);
    w += siglen;
    ASN1_put_object(&w, 1, seq_len, 1, V_ASN1_CONTEXT_SPECIFIC);
    ASN1_put_object(&w, 1, (int)id->xcerts_len, V_ASN1_SEQUENCE,
                    V_ASN1_UNIVERSAL);
    memcpy(w, id->xcerts, id->xcerts_len);
    w += id->xcerts_len;
    if (w != buf + total)
        goto end;
    *out = buf;
    *out_len = (size_t)total;
    buf = NULL;
 end:
    OPENSSL_free(buf);
    OPENSSL_free(ppder);
    OPENSSL_free(sigder);
    ERR_clear_error();
    return *out != NULL;
}

/* ------------------------------------------------------------------ */
/* Responses                                                          */

/* An OPTIONAL SIZE(1..MAX) list: absent, or 1..max entries. */
static int lgcmp_count_ok(const void *sk, int n, int max)
{
    return sk == NULL || (n >= 1 && n <= max);
}

/*
 * Decodes a response with the rules of cmp_msg_decode: bounded length,
 * definite-length outer SEQUENCE covering the input, no trailing bytes,
 * canonical DER (re-encodes to the same bytes; certificates are kept as
 * received), SIZE(1..MAX) lists non-empty and bounded.
 */
static LGCMP_RSP *lgcmp_rsp_decode(const unsigned char *der, size_t len,
                                   const char **why)
{
    const unsigned char *p = der, *q = der;
    unsigned char *re = NULL;
    LGCMP_RSP *m = NULL;
    long olen;
    int tag, xclass, relen, ret;

    *why = "not DER";
    if (len > LGCMP_MAX_MSG) {
        *why = "too large";
        return NULL;
    }
    if (len < 2)
        return NULL;
    ret = ASN1_get_object(&q, &olen, &tag, &xclass, (long)len);
    if ((ret & 0x80) != 0 || ret != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE
        || xclass != V_ASN1_UNIVERSAL || (size_t)(q - der) + (size_t)olen != len)
        goto err;
    if ((m = d2i_LGCMP_RSP(NULL, &p, (long)len)) == NULL || p != der + len)
        goto err;
    relen = i2d_LGCMP_RSP(m, &re);
    if (relen < 0 || (size_t)relen != len || memcmp(re, der, len) != 0) {
        *why = "not canonical DER";
        goto err;
    }
    *why = "limits";
    if (!lgcmp_count_ok(m->extraCerts, sk_ASN1_TYPE_num(m->extraCerts),
                        LGCMP_MAX_CERTS)
        || !lgcmp_count_ok(m->header->generalInfo,
                           sk_CMP_ITAV_num(m->header->generalInfo),
                           LGCMP_MAX_ITAVS)
        || !lgcmp_count_ok(m->header->freeText,
                           sk_ASN1_UTF8STRING_num(m->header->freeText),
                           LGCMP_MAX_ITAVS))
        goto err;
    if ((m->body->type == CMP_BODY_IP || m->body->type == CMP_BODY_CP
         || m->body->type == CMP_BODY_KUP)
        && (!lgcmp_count_ok(m->body->value.ip->caPubs,
                            sk_ASN1_TYPE_num(m->body->value.ip->caPubs),
                            LGCMP_MAX_CERTS)
            || sk_LGCMP_CERTRESP_num(m->body->value.ip->response)
               > LGCMP_MAX_RESP))
        goto err;
    OPENSSL_free(re);
    *why = NULL;
    return m;
 err:
    OPENSSL_free(re);
    LGCMP_RSP_free(m);
    ERR_clear_error();
    return NULL;
}

/* The received bytes of header and body (the content of ProtectedPart) in
 * the decoded message |der|: *start and *span. Returns 1 or 0. */
static int lgcmp_protpart_span(const unsigned char *der, size_t len,
                               const unsigned char **start, size_t *span)
{
    const unsigned char *p = der, *end = der + len, *q;
    long l;
    int tag, xclass, i;

    if ((ASN1_get_object(&p, &l, &tag, &xclass, (long)len) & 0x80) != 0)
        return 0;
    q = p;
    for (i = 0; i < 2; i++) {
        if ((ASN1_get_object(&q, &l, &tag, &xclass, (long)(end - q)) & 0x80) != 0
            || l > end - q)
            return 0;
        q += l;
    }
    *start = p;
    *span = (size_t)(q - p);
    return 1;
}

/* DER bytes of a certificate kept as ANY, or NULL if it is not a SEQUENCE. */
static const ASN1_STRING *lgcmp_any_der(const ASN1_TYPE *t)
{
    return t != NULL && t->type == V_ASN1_SEQUENCE ? t->value.sequence : NULL;
}

/* Decodes the certificates of |sk| (slow path only). */
static STACK_OF(X509) *lgcmp_decode_certs(const STACK_OF(ASN1_TYPE) *sk)
{
    STACK_OF(X509) *out = sk_X509_new_null();
    int i;

    for (i = 0; out != NULL && i < sk_ASN1_TYPE_num(sk); i++) {
        const ASN1_STRING *s = lgcmp_any_der(sk_ASN1_TYPE_value(sk, i));
        const unsigned char *p;
        X509 *x;

        if (s == NULL)
            continue;
        p = ASN1_STRING_get0_data(s);
        x = d2i_X509(NULL, &p, ASN1_STRING_length(s));
        if (x == NULL || p != ASN1_STRING_get0_data(s) + ASN1_STRING_length(s)
            || !sk_X509_push(out, x))
            X509_free(x);
    }
    ERR_clear_error();
    return out;
}

/*
 * Validates |leaf| against the trust anchor with |untrusted| as
 * intermediates (the only X509_verify_cert call) and remembers every
 * certificate of the path. Returns the entry of |leaf| or NULL.
 */
static struct lgcmp_known *lgcmp_validate(LGCMP_CLIENT *c, X509 *leaf,
                                          STACK_OF(X509) *untrusted,
                                          int as_signer, char *err,
                                          size_t errlen)
{
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    STACK_OF(X509) *chain;
    struct lgcmp_known *k = NULL;
    int i;

    c->validations++;
    if (vc == NULL || !X509_STORE_CTX_init(vc, c->trust->store, leaf, untrusted))
        goto end;
    if (X509_verify_cert(vc) != 1) {
        snprintf(err, errlen, "certificate path: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
        goto end;
    }
    if (as_signer && (X509_get_key_usage(leaf) & X509v3_KU_DIGITAL_SIGNATURE) == 0) {
        snprintf(err, errlen, "signer certificate lacks digitalSignature");
        goto end;
    }
    chain = X509_STORE_CTX_get0_chain(vc);
    for (i = sk_X509_num(chain) - 1; i >= 1; i--)
        if (lgcmp_known_add(c, sk_X509_value(chain, i), 1, 0) == NULL)
            goto end;
    k = lgcmp_known_add(c, leaf, X509_check_ca(leaf) != 0, as_signer);
 end:
    X509_STORE_CTX_free(vc);
    ERR_clear_error();
    return k;
}

/* Does validated |k| match the header's sender and senderKID? */
static int lgcmp_signer_matches(const struct lgcmp_known *k, const CMP_HDR *h)
{
    const X509_NAME *sender = cmp_hdr_get0_sender_name(h);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(k->cert);

    if (sender != NULL && X509_NAME_entry_count(sender) > 0
        && X509_NAME_cmp(sender, X509_get_subject_name(k->cert)) != 0)
        return 0;
    if (h->senderKID != NULL && ski != NULL
        && ASN1_OCTET_STRING_cmp(h->senderKID, ski) != 0)
        return 0;
    return 1;
}

/*
 * Finds the validated signer of |m|: an extraCerts entry whose SHA-256 is
 * known (validated before) and which matches sender/senderKID; else a
 * known signer named by senderKID (extraCerts may be omitted); else the
 * slow path: decode extraCerts, find the signer as cmpca does
 * (cmp_protect_find_signer) and validate it once.
 */
static struct lgcmp_known *lgcmp_find_signer(LGCMP_CLIENT *c, LGCMP_RSP *m,
                                             char *err, size_t errlen)
{
    struct lgcmp_known *k;
    unsigned char sha[32];
    STACK_OF(X509) *certs;
    CMP_MSG tmp;
    X509 *signer = NULL;
    enum cmp_reason r;
    int i;

    for (i = 0; i < sk_ASN1_TYPE_num(m->extraCerts); i++) {
        const ASN1_STRING *s = lgcmp_any_der(sk_ASN1_TYPE_value(m->extraCerts, i));

        if (s == NULL
            || !lgcmp_digest(c, c->sha256, NULL, 0, ASN1_STRING_get0_data(s),
                             (size_t)ASN1_STRING_length(s), sha, NULL))
            continue;
        if ((k = lgcmp_known_find(c, sha)) != NULL && k->signer_ok
            && lgcmp_signer_matches(k, m->header))
            return k;
    }
    for (i = 0; m->header->senderKID != NULL && i < c->nknown; i++) {
        k = &c->known[i];
        if (k->signer_ok && X509_get0_subject_key_id(k->cert) != NULL
            && lgcmp_signer_matches(k, m->header))
            return k;
    }
    /* first sight of this signer: the full check */
    if ((certs = lgcmp_decode_certs(m->extraCerts)) == NULL)
        return NULL;
    memset(&tmp, 0, sizeof(tmp));
    tmp.header = m->header;
    tmp.extraCerts = certs;
    k = NULL;
    if ((r = cmp_protect_find_signer(&tmp, &signer)) != CMP_R_OK)
        snprintf(err, errlen, "signer certificate: %s", cmp_reason_text(r));
    else
        k = lgcmp_validate(c, signer, certs, 1, err, errlen);
    sk_X509_pop_free(certs, X509_free);
    if (k != NULL) {
        X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(k->cert));

        if (nm != NULL) {
            X509_NAME_free(c->old_recipient);
            c->old_recipient = c->recipient;
            c->recipient = nm;
        }
    }
    return k;
}

/*
 * Receives the response to a request with transactionID |tid| and
 * senderNonce |nonce|: strict decoding, header checks, signer lookup
 * (validated once) and the protection signature over the received bytes.
 * Fills |in|; on failure fills |res| and returns 0.
 */
static int lgcmp_receive(LGCMP_CLIENT *c, const unsigned char *der, size_t len,
                         const ASN1_OCTET_STRING *tid,
                         const ASN1_OCTET_STRING *nonce, struct lgcmp_in *in,
                         struct lgcmp_result *res)
{
    unsigned char pre[8], *w = pre;
    char err[160] = "";
    const unsigned char *start;
    const char *why;
    LGCMP_PROTPART pp;
    const CMP_HDR *h;
    size_t span;
    int pvno;

    memset(in, 0, sizeof(*in));
    if ((in->msg = lgcmp_rsp_decode(der, len, &why)) == NULL) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: %s", why);
        return 0;
    }
    h = in->msg->header;
    pvno = cmp_hdr_get_pvno(h);
    if (pvno != 2 && pvno != 3) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: pvno %d", pvno);
        return 0;
    }
    if (h->transactionID == NULL || ASN1_OCTET_STRING_cmp(h->transactionID, tid) != 0) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: wrong transactionID");
        return 0;
    }
    if (h->recipNonce == NULL || ASN1_OCTET_STRING_cmp(h->recipNonce, nonce) != 0) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE,
                   "response: recipNonce is not our senderNonce");
        return 0;
    }
    if (h->senderNonce == NULL
        || ASN1_STRING_length(h->senderNonce) < CMP_NONCE_MIN
        || ASN1_STRING_length(h->senderNonce) > CMP_NONCE_MAX) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: bad senderNonce");
        return 0;
    }
    if (cmp_hdr_get0_sender_name(h) == NULL) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE,
                   "response: sender is no directoryName");
        return 0;
    }
    if (in->msg->protection == NULL || h->protectionAlg == NULL) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: unprotected");
        return 0;
    }
    if ((in->signer = lgcmp_find_signer(c, in->msg, err, sizeof(err))) == NULL) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: %s",
                   err[0] != '\0' ? err : "no trusted signer");
        return 0;
    }
    if (in->signer->not_after < time(NULL)) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE,
                   "response: signer certificate expired");
        return 0;
    }
    pp.header = in->msg->header;
    pp.body = in->msg->body;
    if (!lgcmp_protpart_span(der, len, &start, &span)
        || span > INT_MAX / 2)
        goto err;
    ASN1_put_object(&w, 1, (int)span, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    if (!lgcmp_verify(c, in->signer, h->protectionAlg, in->msg->protection,
                      pre, (size_t)(w - pre), start, span,
                      ASN1_ITEM_rptr(LGCMP_PROTPART), &pp))
        goto err;
    return 1;
 err:
    lgcmp_fail(res, LGCMP_BAD_RESPONSE, "response: protection does not verify");
    return 0;
}

/* A verified error body: the server refused. */
static void lgcmp_server_error(const LGCMP_RSP *m, struct lgcmp_result *res)
{
    const CMP_PKISI *si = m->body->value.error->pKIStatusInfo;

    res->status = cmp_pkisi_get_status(si);
    res->failinfo = cmp_pkisi_get_failinfo(si);
    lgcmp_fail(res, LGCMP_REJECTED, "error message: status %d failInfo 0x%x",
               res->status, (unsigned)res->failinfo);
}

/* The CA that issued |tbs|: a validated CA certificate with the issuer's
 * name, else one from |m|'s extraCerts/caPubs, validated now. */
static struct lgcmp_known *lgcmp_find_issuer(LGCMP_CLIENT *c,
                                             const LGCMP_TBS *tbs,
                                             const LGCMP_RSP *m, char *err,
                                             size_t errlen)
{
    STACK_OF(X509) *certs = NULL, *capubs = NULL;
    struct lgcmp_known *k = NULL;
    int i;

    for (i = 0; i < c->nknown; i++)
        if (c->known[i].is_ca
            && X509_NAME_cmp(X509_get_subject_name(c->known[i].cert),
                             tbs->issuer) == 0)
            return &c->known[i];
    if ((certs = lgcmp_decode_certs(m->extraCerts)) == NULL
        || (capubs = lgcmp_decode_certs(m->body->value.ip->caPubs)) == NULL)
        goto end;
    for (i = 0; i < sk_X509_num(capubs); i++)
        if (!X509_add_cert(certs, sk_X509_value(capubs, i), X509_ADD_FLAG_UP_REF))
            goto end;
    snprintf(err, errlen, "issuing CA certificate not found");
    for (i = 0; k == NULL && i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);

        if (X509_NAME_cmp(X509_get_subject_name(x), tbs->issuer) != 0)
            continue;
        if (X509_check_ca(x) == 0) {
            snprintf(err, errlen, "issuer certificate is not a CA");
            continue;
        }
        k = lgcmp_validate(c, x, certs, 0, err, errlen);
    }
 end:
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(capubs, X509_free);
    ERR_clear_error();
    return k;
}

/*
 * Checks the issued certificate |der|: its public key is the requested
 * one (SPKI bytes), it is signed by a CA validated to the trust anchor and
 * currently valid. Returns NULL if acceptable, else the reason.
 */
static const char *lgcmp_check_cert(LGCMP_CLIENT *c, const unsigned char *der,
                                    size_t len, const LGCMP_KEY *newkey,
                                    const LGCMP_RSP *m, char *err,
                                    size_t errlen)
{
    const struct lgcmp_known *ca;
    const ASN1_STRING *spki, *tbs_der;
    LGCMP_CERT *cert = NULL;
    LGCMP_TBS *tbs = NULL;
    const char *why = NULL;
    time_t now = time(NULL);

    if (!lgcmp_cert_parse(der, len, &cert, &tbs)) {
        why = "certificate does not decode";
        goto end;
    }
    spki = tbs->spki->value.sequence;
    if ((size_t)ASN1_STRING_length(spki) != newkey->spki_len
        || memcmp(ASN1_STRING_get0_data(spki), newkey->spki_der,
                  newkey->spki_len) != 0) {
        why = "certificate is not for the requested key";
        goto end;
    }
    if ((ca = lgcmp_find_issuer(c, tbs, m, err, errlen)) == NULL) {
        why = err;
        goto end;
    }
    tbs_der = cert->tbs->value.sequence;
    if (!lgcmp_verify(c, ca, cert->sigAlg, cert->sig, NULL, 0,
                      ASN1_STRING_get0_data(tbs_der),
                      (size_t)ASN1_STRING_length(tbs_der),
                      ASN1_ITEM_rptr(ASN1_ANY), cert->tbs)) {
        why = "certificate signature does not verify";
        goto end;
    }
    if (X509_cmp_time(tbs->validity->notAfter, &now) <= 0) {
        why = "certificate expired";
        goto end;
    }
    now += LGCMP_CLOCK_SKEW;
    if (X509_cmp_time(tbs->validity->notBefore, &now) >= 0) {
        why = "certificate not yet valid";
        goto end;
    }
    c->issuer_pub = ca->pub;
 end:
    LGCMP_CERT_free(cert);
    LGCMP_TBS_free(tbs);
    ERR_clear_error();
    return why;
}

/* ------------------------------------------------------------------ */
/* The transaction                                                    */

/* Protects |msg| with |id|, sends it and returns the response via *rsp. */
static int lgcmp_send(LGCMP_CLIENT *c, CMP_MSG *msg, LGCMP_IDENT *id,
                      const unsigned char **rsp, size_t *rsp_len,
                      struct lgcmp_result *res)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int ok;

    if (!lgcmp_msg_finish(c, msg, id, &der, &len)) {
        lgcmp_fail(res, LGCMP_INTERNAL, "cannot sign or encode %s",
                   cmp_body_type_name(msg->body->type));
        return 0;
    }
    ok = c->transfer(c->arg, msg->body->type, der, len, rsp, rsp_len);
    OPENSSL_free(der);
    if (!ok)
        lgcmp_fail(res, LGCMP_TRANSPORT, "transfer of %s failed",
                   cmp_body_type_name(msg->body->type));
    return ok;
}

/* certConf for |cert| answering |ip| (accepting, or rejecting with
 * |fail_bit| >= 0), then the pkiConf. Returns 1 if confirmed. */
static int lgcmp_confirm(LGCMP_CLIENT *c, LGCMP_IDENT *id,
                         const LGCMP_RSP *ip, const unsigned char *cert,
                         size_t cert_len, int fail_bit, const char *text,
                         struct lgcmp_result *res)
{
    CMP_MSG *cc = NULL;
    struct lgcmp_in in;
    const unsigned char *rsp;
    size_t rsp_len;
    int ok = 0;

    memset(&in, 0, sizeof(in));
    res->stage = 1;
    if ((cc = lgcmp_msg_new(c, id, ip->header->transactionID,
                            ip->header->senderNonce)) == NULL
        || !lgcmp_body_certconf(cc, cert, cert_len, fail_bit, text)) {
        lgcmp_fail(res, LGCMP_INTERNAL, "cannot build certConf");
        goto end;
    }
    if (!lgcmp_send(c, cc, id, &rsp, &rsp_len, res)
        || !lgcmp_receive(c, rsp, rsp_len, cc->header->transactionID,
                          cc->header->senderNonce, &in, res))
        goto end;
    switch (in.msg->body->type) {
    case CMP_BODY_PKICONF:
        ok = 1;
        break;
    case CMP_BODY_ERROR:
        lgcmp_server_error(in.msg, res);
        break;
    default:
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "certConf answered with %s",
                   cmp_body_type_name(in.msg->body->type));
    }
 end:
    LGCMP_RSP_free(in.msg);
    lgcmp_msg_free(cc);
    return ok;
}

int lgcmp_enroll(LGCMP_CLIENT *c, int kur, const LGCMP_IDENT *cid,
                 const LGCMP_KEY *cnewkey, struct lgcmp_result *res)
{
    /* signing contexts are locked inside; nothing else is changed */
    LGCMP_IDENT *id = (LGCMP_IDENT *)cid;
    LGCMP_KEY *newkey = (LGCMP_KEY *)cnewkey;
    CMP_MSG *req = NULL;
    struct lgcmp_in in;
    const LGCMP_CERTRESP *cr;
    const ASN1_STRING *cert;
    const unsigned char *rsp;
    const char *bad;
    char err[160] = "";
    size_t rsp_len;
    int64_t crid;
    int want = kur ? CMP_BODY_KUP : CMP_BODY_IP, status;

    lgcmp_result_clear(res);
    res->outcome = LGCMP_INTERNAL;
    memset(&in, 0, sizeof(in));
    if ((req = lgcmp_msg_new(c, id, NULL, NULL)) == NULL
        || !lgcmp_body_certreq(c, req, kur, id, newkey)) {
        lgcmp_fail(res, LGCMP_INTERNAL, "cannot build %s", kur ? "kur" : "ir");
        goto end;
    }
    if (!lgcmp_send(c, req, id, &rsp, &rsp_len, res)
        || !lgcmp_receive(c, rsp, rsp_len, req->header->transactionID,
                          req->header->senderNonce, &in, res))
        goto end;
    if (in.msg->body->type == CMP_BODY_ERROR) {
        lgcmp_server_error(in.msg, res);
        goto end;
    }
    if (in.msg->body->type != want) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "%s answered with %s",
                   kur ? "kur" : "ir", cmp_body_type_name(in.msg->body->type));
        goto end;
    }
    if (sk_LGCMP_CERTRESP_num(in.msg->body->value.ip->response) != 1) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "%d CertResponses, wanted 1",
                   sk_LGCMP_CERTRESP_num(in.msg->body->value.ip->response));
        goto end;
    }
    cr = sk_LGCMP_CERTRESP_value(in.msg->body->value.ip->response, 0);
    if (!ASN1_INTEGER_get_int64(&crid, cr->certReqId) || crid != 0) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "certReqId is not 0");
        goto end;
    }
    status = cmp_pkisi_get_status(cr->status);
    res->status = status;
    res->failinfo = cmp_pkisi_get_failinfo(cr->status);
    if (status != CMP_STATUS_ACCEPTED && status != CMP_STATUS_GRANTED_WITH_MODS) {
        lgcmp_fail(res, status == CMP_STATUS_REJECTION ? LGCMP_REJECTED
                                                       : LGCMP_BAD_RESPONSE,
                   "status %d failInfo 0x%x%s", status, (unsigned)res->failinfo,
                   status == CMP_STATUS_WAITING ? " (polling not supported)" : "");
        goto end;
    }
    if (cr->certifiedKeyPair == NULL
        || cr->certifiedKeyPair->certOrEncCert->type != 0
        || (cert = lgcmp_any_der(cr->certifiedKeyPair->certOrEncCert
                                 ->value.certificate)) == NULL) {
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "no certificate in the response");
        goto end;
    }
    bad = lgcmp_check_cert(c, ASN1_STRING_get0_data(cert),
                           (size_t)ASN1_STRING_length(cert), newkey, in.msg,
                           err, sizeof(err));
    if (bad != NULL) {
        char text[200];

        /* like a device: reject the certificate, then give up */
        snprintf(text, sizeof(text), "%s", bad);
        lgcmp_confirm(c, id, in.msg, ASN1_STRING_get0_data(cert),
                      (size_t)ASN1_STRING_length(cert), CMP_FAIL_INCORRECT_DATA,
                      text, res);
        lgcmp_fail(res, LGCMP_BAD_RESPONSE, "%s", text);
        res->stage = 0;
        goto end;
    }
    if (!lgcmp_confirm(c, id, in.msg, ASN1_STRING_get0_data(cert),
                       (size_t)ASN1_STRING_length(cert), -1, NULL, res))
        goto end;
    if ((res->cert = OPENSSL_memdup(ASN1_STRING_get0_data(cert),
                                    (size_t)ASN1_STRING_length(cert))) == NULL) {
        lgcmp_fail(res, LGCMP_INTERNAL, "out of memory");
        goto end;
    }
    res->cert_len = (size_t)ASN1_STRING_length(cert);
    res->outcome = LGCMP_OK;
    res->status = status;
 end:
    LGCMP_RSP_free(in.msg);
    lgcmp_msg_free(req);
    ERR_clear_error();
    return res->outcome == LGCMP_OK;
}
