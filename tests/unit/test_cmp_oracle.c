/*
 * OpenSSL 3.0's CMP client as the oracle for cmpca's message layer: the
 * client's requests go, as DER, to a small responder built only from
 * src/cmp (decode, header check, signer lookup and verification, response
 * builders, protection, encode), and the client validates every response
 * in full (trust store with the test root, no pinned server cert).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmp/cmp_build.h"
#include "util/pkey_md.h"
#include "cmp/cmp_crmf.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"
#include "cmp/cmp_spki.h"
#include "cmp_testpki.h"

#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <string.h>
#include <time.h>

static const unsigned char secret[] = "oracle shared secret";
#define SECRET_LEN (sizeof(secret) - 1)

/* ---- the test responder: cmpca's message layer only ---- */

struct responder {
    X509 *srv;                 /* protection cert (sender, senderKID) */
    EVP_PKEY *srv_key;
    STACK_OF(X509) *chain;     /* srv's chain for extraCerts (root) */
    X509 *ca;                  /* issuing CA */
    EVP_PKEY *ca_key;
    X509_STORE *trust;         /* for the clients' protection certs */
    int use_mac;               /* verify and protect with |secret| */
    enum cmp_reason reject;    /* != OK: answer every request with error */
    X509 *issued;              /* last issued certificate */
    int certconf_seen;
    int certhash_ok;           /* cmp_certhash_matches said yes */
    int certhash_len;          /* length the client sent */
    unsigned char certhash[EVP_MAX_MD_SIZE];
    int nreq;
    int types[8];              /* body types seen, in order */
    enum cmp_reason last;      /* outcome of the last request */
};

/* The public key of a CRMF CertTemplate. OpenSSL 3.0 has no getter
 * (OSSL_CRMF_CERTTEMPLATE_get0_publicKey is 3.2+): take the [6] IMPLICIT
 * SubjectPublicKeyInfo from the DER. Returns a new key or NULL. */
static EVP_PKEY *tmpl_pubkey(const OSSL_CRMF_CERTTEMPLATE *t)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    ASN1_SEQUENCE_ANY *seq = NULL;
    EVP_PKEY *pk = NULL;
    int len, i;

    if ((len = i2d_OSSL_CRMF_CERTTEMPLATE(t, &der)) <= 0)
        return NULL;
    p = der;
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);
    for (i = 0; i < sk_ASN1_TYPE_num(seq) && pk == NULL; i++) {
        ASN1_TYPE *at = sk_ASN1_TYPE_value(seq, i);
        unsigned char *spki;
        int n;

        if (at->type != V_ASN1_OTHER
            || ASN1_STRING_get0_data(at->value.asn1_string)[0] != 0xa6)
            continue;
        n = ASN1_STRING_length(at->value.asn1_string);
        spki = OPENSSL_memdup(ASN1_STRING_get0_data(at->value.asn1_string), n);
        spki[0] = 0x30;
        p = spki;
        pk = d2i_PUBKEY(NULL, &p, n);
        OPENSSL_free(spki);
    }
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    OPENSSL_free(der);
    return pk;
}

/* Checks the protection of |req|. */
static enum cmp_reason rsp_verify(struct responder *r, const CMP_MSG *req)
{
    X509 *signer = NULL;
    X509_STORE_CTX *vctx;
    enum cmp_reason rs;

    if (r->use_mac)
        return cmp_protect_verify_mac(req, secret, SECRET_LEN, NULL);
    if ((rs = cmp_protect_find_signer(req, &signer)) != CMP_R_OK
        || (rs = cmp_protect_verify_sig(req, signer)) != CMP_R_OK)
        return rs;
    vctx = X509_STORE_CTX_new();
    if (vctx == NULL || !X509_STORE_CTX_init(vctx, r->trust, signer, req->extraCerts)
        || X509_verify_cert(vctx) <= 0)
        rs = CMP_R_SIGNER_NOT_TRUSTED;
    X509_STORE_CTX_free(vctx);
    return rs;
}

/* Issues a cert for a ir/cr/kur/p10cr; fills *id. */
static enum cmp_reason rsp_issue(struct responder *r, const CMP_MSG *req,
                                 long *id)
{
    const CMP_BODY *b = req->body;
    EVP_PKEY *pub = NULL;
    const X509_NAME *subj;
    OSSL_CRMF_MSGS *msgs = NULL;

    X509_free(r->issued);
    r->issued = NULL;
    if (b->type == CMP_BODY_P10CR) {
        if (X509_REQ_verify(b->value.p10cr, X509_REQ_get0_pubkey(b->value.p10cr)) <= 0)
            return CMP_R_BAD_POP;
        pub = X509_REQ_get_pubkey(b->value.p10cr);
        subj = X509_REQ_get_subject_name(b->value.p10cr);
        *id = -1;
    } else {
        /* OpenSSL's own CRMF code checks the request here, as an oracle
         * independent of cmpca's (cmp_crmf_verify_popo is tested too) */
        OSSL_CRMF_MSG *crm;
        OSSL_CRMF_CERTTEMPLATE *t;
        EVP_PKEY *k2 = NULL;

        msgs = cmp_crmf_get1_ossl(b->value.ir);
        crm = sk_OSSL_CRMF_MSG_value(msgs, 0);
        t = OSSL_CRMF_MSG_get0_tmpl(crm);
        *id = OSSL_CRMF_MSG_get_certReqId(crm);
        if (!OSSL_CRMF_MSGS_verify_popo(msgs, (int)*id, 0, NULL, NULL)) {
            OSSL_CRMF_MSGS_free(msgs);
            return CMP_R_BAD_POP;
        }
        pub = tmpl_pubkey(t);
        /* cmpca's own POP check agrees with OpenSSL's */
        if (pub == NULL
            || !cmp_spki_get1(sk_CMP_CERTREQMSG_value(b->value.ir, 0)
                              ->certReq->certTemplate->publicKey, &k2, NULL)
            || cmp_crmf_verify_popo(sk_CMP_CERTREQMSG_value(b->value.ir, 0),
                                    k2) != CMP_R_OK) {
            EVP_PKEY_free(k2);
            EVP_PKEY_free(pub);
            OSSL_CRMF_MSGS_free(msgs);
            return CMP_R_BAD_POP;
        }
        EVP_PKEY_free(k2);
        subj = OSSL_CRMF_CERTTEMPLATE_get0_subject(t);
        if (subj == NULL && b->type == CMP_BODY_KUR) /* kur: keep subject */
            subj = cmp_hdr_get0_sender_name(req->header);
    }
    if (pub == NULL || subj == NULL) {
        OSSL_CRMF_MSGS_free(msgs);
        EVP_PKEY_free(pub);
        return CMP_R_BAD_CERT_TEMPLATE;
    }
    r->issued = cmp_testpki_issue(pub, subj, r->ca, r->ca_key, 30);
    EVP_PKEY_free(pub);
    OSSL_CRMF_MSGS_free(msgs);
    return r->issued != NULL ? CMP_R_OK : CMP_R_SYSTEM_FAILURE;
}

/* Handles one request; returns the DER response (OPENSSL_malloc'ed). */
static int responder_handle(struct responder *r, const unsigned char *der,
                            size_t len, unsigned char **out, size_t *outlen)
{
    CMP_MSG *req = NULL, *rsp = NULL;
    enum cmp_reason rs;
    int type = -1, ok = 0;
    long id = 0;

    *out = NULL;
    if ((rs = cmp_msg_decode(der, len, NULL, &req)) != CMP_R_OK)
        goto error;
    type = req->body->type;
    if (r->nreq < 8)
        r->types[r->nreq] = type;
    r->nreq++;
    if ((rs = cmp_hdr_check_request(req->header, time(NULL), 300)) != CMP_R_OK
        || (rs = rsp_verify(r, req)) != CMP_R_OK)
        goto error;
    if ((rs = r->reject) != CMP_R_OK)
        goto error;
    switch (type) {
    case CMP_BODY_IR: case CMP_BODY_CR: case CMP_BODY_KUR: case CMP_BODY_P10CR: {
        int rtype = type == CMP_BODY_IR ? CMP_BODY_IP
            : type == CMP_BODY_KUR ? CMP_BODY_KUP : CMP_BODY_CP;
        STACK_OF(X509) *capubs = NULL;
        unsigned char *cder;
        int clen;

        if ((rs = rsp_issue(r, req, &id)) != CMP_R_OK)
            goto error;
        if (type == CMP_BODY_IR)
            capubs = cmp_testpki_stack(sk_X509_value(r->chain,
                                                     sk_X509_num(r->chain) - 1),
                                       NULL);
        rsp = cmp_rsp_new(req, rtype, r->srv, time(NULL));
        cder = NULL;
        clen = i2d_X509(r->issued, &cder);
        ok = rsp != NULL && clen > 0
            && cmp_body_set_certrep(rsp, id,
                                    cmp_pkisi_new(CMP_STATUS_ACCEPTED, -1, NULL),
                                    cder, (size_t)clen, capubs);
        OPENSSL_free(cder);
        sk_X509_pop_free(capubs, X509_free);
        break;
    }
    case CMP_BODY_CERTCONF: {
        CMP_CERTSTATUS *cs = sk_CMP_CERTSTATUS_value(req->body->value.certConf, 0);

        r->certconf_seen = 1;
        if (cs != NULL && r->issued != NULL) {
            r->certhash_len = ASN1_STRING_length(cs->certHash);
            if (r->certhash_len <= (int)sizeof(r->certhash))
                memcpy(r->certhash, ASN1_STRING_get0_data(cs->certHash),
                       (size_t)r->certhash_len);
            r->certhash_ok = cmp_certhash_matches(r->issued,
                                                  ASN1_STRING_get0_data(cs->certHash),
                                                  (size_t)r->certhash_len);
        }
        rsp = cmp_rsp_new(req, CMP_BODY_PKICONF, r->srv, time(NULL));
        ok = rsp != NULL;
        break;
    }
    case CMP_BODY_RR:
        rsp = cmp_rsp_new(req, CMP_BODY_RP, r->srv, time(NULL));
        ok = rsp != NULL
            && cmp_body_set_rp(rsp, cmp_pkisi_new(CMP_STATUS_ACCEPTED, -1, NULL));
        break;
    case CMP_BODY_GENM:
        rsp = cmp_rsp_new(req, CMP_BODY_GENP, r->srv, time(NULL));
        ok = rsp != NULL && cmp_body_set_genp(rsp, NULL);
        break;
    default:
        rs = CMP_R_UNSUPPORTED_BODY;
        goto error;
    }
    if (!ok) {
        rs = CMP_R_SYSTEM_FAILURE;
        goto error;
    }
    goto protect;
 error:
    CMP_MSG_free(rsp);
    rsp = cmp_rsp_new(req, CMP_BODY_ERROR, r->srv, time(NULL));
    if (rsp == NULL || !cmp_body_set_error(rsp, rs, "oracle"))
        goto end;
 protect:
    r->last = rs;
    if (r->use_mac)
        ok = cmp_protect_mac_pbm(rsp, secret, SECRET_LEN, "SHA256", "SHA256", 1000);
    else
        ok = cmp_msg_set1_extracerts(rsp, r->srv, r->chain, NULL)
            && cmp_protect_sign(rsp, cmp_protect_sign_pkey_fn, r->srv_key);
    ok = ok && cmp_msg_encode(rsp, out, outlen);
 end:
    CMP_MSG_free(req);
    CMP_MSG_free(rsp);
    return ok;
}

/* OSSL_CMP_transfer_cb_t: OpenSSL's request -> DER -> responder -> DER ->
 * OpenSSL's response. */
static OSSL_CMP_MSG *transfer(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req)
{
    struct responder *r = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
    unsigned char *der = NULL, *out = NULL;
    const unsigned char *p;
    size_t outlen;
    OSSL_CMP_MSG *rsp = NULL;
    int len = i2d_OSSL_CMP_MSG(req, &der);

    if (len > 0 && responder_handle(r, der, (size_t)len, &out, &outlen)) {
        p = out;
        rsp = d2i_OSSL_CMP_MSG(NULL, &p, (long)outlen);
    }
    OPENSSL_free(der);
    OPENSSL_free(out);
    return rsp;
}

/* ---- fixtures ---- */

struct world {
    struct cmp_testpki pki;    /* root, srv (CMP signer), dev (vendor) */
    struct responder r;
};

static int world_init(struct world *w, const char *kind)
{
    memset(w, 0, sizeof(*w));
    if (!cmp_testpki_init(&w->pki, kind))
        return 0;
    w->r.srv = w->pki.srv;
    w->r.srv_key = w->pki.srv_key;
    w->r.ca = w->pki.root;
    w->r.ca_key = w->pki.root_key;
    w->r.chain = cmp_testpki_stack(w->pki.root, NULL);
    w->r.trust = X509_STORE_new();
    return w->r.chain != NULL && w->r.trust != NULL
        && X509_STORE_add_cert(w->r.trust, w->pki.root);
}

static void world_free(struct world *w)
{
    sk_X509_pop_free(w->r.chain, X509_free);
    X509_STORE_free(w->r.trust);
    X509_free(w->r.issued);
    cmp_testpki_free(&w->pki);
}

static int client_log(const char *func, const char *file, int line,
                      OSSL_CMP_severity level, const char *msg)
{
    if (getenv("ORACLE_VERBOSE") != NULL)
        print_message("client %d %s: %s\n", (int)level, func, msg);
    return 1;
}

/* A client context for one identity (cert/key, or the shared secret if
 * |cert| is NULL), trusting |root|, talking to |r|. */
static OSSL_CMP_CTX *client_new(struct responder *r, X509 *root, X509 *cert,
                                EVP_PKEY *key)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
    X509_STORE *ts = X509_STORE_new();

    assert_non_null(ctx);
    assert_non_null(ts);
    assert_true(X509_STORE_add_cert(ts, root));
    assert_true(OSSL_CMP_CTX_set0_trustedStore(ctx, ts));
    assert_true(OSSL_CMP_CTX_set_transfer_cb(ctx, transfer));
    assert_true(OSSL_CMP_CTX_set_transfer_cb_arg(ctx, r));
    /* ORACLE_VERBOSE=1 shows the client's own log (debug level) */
    if (getenv("ORACLE_VERBOSE") != NULL)
        assert_true(OSSL_CMP_CTX_set_log_verbosity(ctx, OSSL_CMP_LOG_DEBUG));
    assert_true(OSSL_CMP_CTX_set_log_cb(ctx, client_log));
    if (cert != NULL) {
        assert_true(OSSL_CMP_CTX_set1_cert(ctx, cert));
        assert_true(OSSL_CMP_CTX_set1_pkey(ctx, key));
    } else {
        assert_true(OSSL_CMP_CTX_set1_referenceValue(ctx,
                        (const unsigned char *)"oracle-dev", 10));
        assert_true(OSSL_CMP_CTX_set1_secretValue(ctx, secret, SECRET_LEN));
        assert_true(OSSL_CMP_CTX_set1_recipient(ctx, X509_get_subject_name(r->srv)));
    }
    return ctx;
}

static void client_set_new(OSSL_CMP_CTX *ctx, EVP_PKEY *newkey, const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    assert_true(EVP_PKEY_up_ref(newkey));
    assert_true(OSSL_CMP_CTX_set0_newPkey(ctx, 1, newkey));
    assert_true(OSSL_CMP_CTX_set1_subjectName(ctx, n));
    X509_NAME_free(n);
}

static void print_ossl_errors(const char *what)
{
    unsigned long e;
    char buf[256];

    print_message("%s failed:\n", what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        print_message("  %s\n", buf);
    }
}

/* Checks the certConf the client sent for |cert|: cmp_certhash matches
 * and is the hash OpenSSL computed itself (X509_digest_sig). */
static void check_certconf(struct responder *r, X509 *cert)
{
    ASN1_OCTET_STRING *os = X509_digest_sig(cert, NULL, NULL);
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl;

    assert_true(r->certconf_seen);
    assert_non_null(os);
    assert_int_equal(r->certhash_len, ASN1_STRING_length(os));
    assert_memory_equal(r->certhash, ASN1_STRING_get0_data(os), r->certhash_len);
    assert_true(cmp_certhash(cert, h, &hl));
    assert_int_equal((int)hl, r->certhash_len);
    assert_memory_equal(h, r->certhash, hl);
    assert_true(r->certhash_ok);
    ASN1_OCTET_STRING_free(os);
}

/* ---- sessions ---- */

/* ir -> ip -> certConf -> pkiConf, then cr, kur (with the new cert),
 * p10cr, rr and genm, all with the PKI of |kind|. */
static void full_sessions(const char *kind)
{
    struct world w;
    OSSL_CMP_CTX *ctx;
    EVP_PKEY *k1 = cmp_testpki_key(kind), *k2 = cmp_testpki_key(kind);
    X509 *cert, *ir_cert = NULL;

    assert_true(world_init(&w, kind));
    assert_non_null(k1);
    assert_non_null(k2);

    /* IR */
    ctx = client_new(&w.r, w.pki.root, w.pki.dev, w.pki.dev_key);
    client_set_new(ctx, k1, "oracle ir");
    cert = OSSL_CMP_exec_IR_ses(ctx);
    if (cert == NULL)
        print_ossl_errors("IR");
    assert_non_null(cert);
    assert_int_equal(X509_cmp(cert, w.r.issued), 0);
    assert_int_equal(w.r.types[0], CMP_BODY_IR);
    assert_int_equal(w.r.types[1], CMP_BODY_CERTCONF);
    assert_int_equal(w.r.nreq, 2);
    check_certconf(&w.r, cert);
    /* caPubs reached the client */
    {
        STACK_OF(X509) *pubs = OSSL_CMP_CTX_get1_caPubs(ctx);

        assert_int_equal(sk_X509_num(pubs), 1);
        assert_int_equal(X509_cmp(sk_X509_value(pubs, 0), w.pki.root), 0);
        sk_X509_pop_free(pubs, X509_free);
    }
    ir_cert = X509_dup(cert);
    OSSL_CMP_CTX_free(ctx);

    /* CR */
    memset(w.r.types, 0, sizeof(w.r.types));
    w.r.nreq = w.r.certconf_seen = 0;
    ctx = client_new(&w.r, w.pki.root, w.pki.dev, w.pki.dev_key);
    client_set_new(ctx, k2, "oracle cr");
    cert = OSSL_CMP_exec_CR_ses(ctx);
    if (cert == NULL)
        print_ossl_errors("CR");
    assert_non_null(cert);
    assert_int_equal(w.r.types[0], CMP_BODY_CR);
    check_certconf(&w.r, cert);
    OSSL_CMP_CTX_free(ctx);

    /* KUR: a new context for the new identity (the IR cert) */
    memset(w.r.types, 0, sizeof(w.r.types));
    w.r.nreq = w.r.certconf_seen = 0;
    ctx = client_new(&w.r, w.pki.root, ir_cert, k1);
    client_set_new(ctx, k2, "oracle ir");
    cert = OSSL_CMP_exec_KUR_ses(ctx);
    if (cert == NULL)
        print_ossl_errors("KUR");
    assert_non_null(cert);
    assert_int_equal(w.r.types[0], CMP_BODY_KUR);
    check_certconf(&w.r, cert);
    OSSL_CMP_CTX_free(ctx);

    /* P10CR */
    memset(w.r.types, 0, sizeof(w.r.types));
    w.r.nreq = w.r.certconf_seen = 0;
    ctx = client_new(&w.r, w.pki.root, w.pki.dev, w.pki.dev_key);
    {
        X509_REQ *csr = X509_REQ_new();
        X509_NAME *n = X509_NAME_new();

        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"oracle p10", -1, -1, 0);
        X509_REQ_set_subject_name(csr, n);
        X509_REQ_set_pubkey(csr, k2);
        assert_true(X509_REQ_sign(csr, k2, pkey_default_md(k2) == NULL ? NULL
                                  : EVP_get_digestbyname(pkey_default_md(k2))) > 0);
        assert_true(OSSL_CMP_CTX_set1_p10CSR(ctx, csr));
        X509_REQ_free(csr);
        X509_NAME_free(n);
    }
    cert = OSSL_CMP_exec_P10CR_ses(ctx);
    if (cert == NULL)
        print_ossl_errors("P10CR");
    assert_non_null(cert);
    assert_int_equal(w.r.types[0], CMP_BODY_P10CR);
    check_certconf(&w.r, cert);
    OSSL_CMP_CTX_free(ctx);

    /* RR of the IR cert, by the device identity */
    w.r.nreq = 0;
    ctx = client_new(&w.r, w.pki.root, w.pki.dev, w.pki.dev_key);
    assert_true(OSSL_CMP_CTX_set1_oldCert(ctx, ir_cert));
    if (OSSL_CMP_exec_RR_ses(ctx) != 1)
        print_ossl_errors("RR");
    assert_int_equal(OSSL_CMP_CTX_get_status(ctx), OSSL_CMP_PKISTATUS_accepted);
    assert_int_equal(w.r.types[0], CMP_BODY_RR);
    OSSL_CMP_CTX_free(ctx);

    /* GENM */
    w.r.nreq = 0;
    ctx = client_new(&w.r, w.pki.root, w.pki.dev, w.pki.dev_key);
    {
        STACK_OF(OSSL_CMP_ITAV) *itavs = OSSL_CMP_exec_GENM_ses(ctx);

        if (itavs == NULL)
            print_ossl_errors("GENM");
        assert_non_null(itavs);
        assert_int_equal(sk_OSSL_CMP_ITAV_num(itavs), 0);
        sk_OSSL_CMP_ITAV_pop_free(itavs, OSSL_CMP_ITAV_free);
    }
    assert_int_equal(w.r.types[0], CMP_BODY_GENM);
    OSSL_CMP_CTX_free(ctx);

    X509_free(ir_cert);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    world_free(&w);
}

static void test_sessions_p256(void **state) { full_sessions("EC"); }
static void test_sessions_rsa(void **state) { full_sessions("RSA"); }
static void test_sessions_p384(void **state) { full_sessions("P-384"); }

/* The OpenSSL 3.0 client cannot sign with EdDSA, but it verifies EdDSA
 * (and RSA-PSS) responses: CA and responder keys of that kind, client
 * protection P-256 (its vendor cert issued by the same root). */
static void responder_kind(const char *kind)
{
    struct world w;
    OSSL_CMP_CTX *ctx;
    EVP_PKEY *dkey = cmp_testpki_key("EC"), *nk = cmp_testpki_key("EC");
    X509 *dev, *cert;

    assert_true(world_init(&w, kind));
    dev = cmp_testpki_cert(dkey, "oracle ec device", w.pki.root,
                           w.pki.root_key, 0, 10);
    assert_non_null(dev);
    ctx = client_new(&w.r, w.pki.root, dev, dkey);
    client_set_new(ctx, nk, "oracle eddsa");
    cert = OSSL_CMP_exec_IR_ses(ctx);
    if (cert == NULL)
        print_ossl_errors(kind);
    assert_non_null(cert);
    assert_true(w.r.certconf_seen);
    if (strcmp(kind, "ED448") == 0) {
        /* OpenSSL 3.0 hashes Ed448-signed certs with 32 octets of SHAKE256
         * (X509_digest_sig); RFC 8419/9481 and cmp_certhash use 64. */
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned int hl;

        assert_true(cmp_certhash(cert, h, &hl));
        print_message("Ed448 certConf: client sent %d octets, cmpca expects %u;"
                      " cmp_certhash_matches -> %d\n", w.r.certhash_len, hl,
                      w.r.certhash_ok);
        assert_int_equal(w.r.certhash_len, 32);
        assert_memory_equal(h, w.r.certhash, 32);
    } else {
        check_certconf(&w.r, cert);
    }
    OSSL_CMP_CTX_free(ctx);
    X509_free(dev);
    EVP_PKEY_free(dkey);
    EVP_PKEY_free(nk);
    world_free(&w);
}

static void test_responder_ed25519(void **state) { responder_kind("ED25519"); }
static void test_responder_ed448(void **state) { responder_kind("ED448"); }
static void test_responder_rsa_pss(void **state) { responder_kind("RSA-PSS"); }

/* PasswordBasedMac both ways: the client's default (owf SHA-256, HMAC-SHA1)
 * verified by cmpca, cmpca's PBM (SHA-256/HMAC-SHA256) verified by it. */
static void test_sessions_pbm(void **state)
{
    struct world w;
    OSSL_CMP_CTX *ctx;
    EVP_PKEY *nk = cmp_testpki_key("EC");
    X509 *cert;

    assert_true(world_init(&w, "EC"));
    w.r.use_mac = 1;
    ctx = client_new(&w.r, w.pki.root, NULL, NULL);
    client_set_new(ctx, nk, "oracle pbm");
    cert = OSSL_CMP_exec_IR_ses(ctx);
    if (cert == NULL)
        print_ossl_errors("IR/PBM");
    assert_non_null(cert);
    check_certconf(&w.r, cert);
    OSSL_CMP_CTX_free(ctx);
    /* and the client refuses a response MACed with another secret */
    ctx = client_new(&w.r, w.pki.root, NULL, NULL);
    assert_true(OSSL_CMP_CTX_set1_secretValue(ctx, (const unsigned char *)"other", 5));
    assert_null(OSSL_CMP_exec_GENM_ses(ctx));
    assert_int_equal(w.r.last, CMP_R_BAD_MAC);
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    EVP_PKEY_free(nk);
    world_free(&w);
}

/* A protected error response: the client accepts its protection and
 * reports status rejection with the failInfo bit of the reason. */
static void error_case(enum cmp_reason reason)
{
    struct world w;
    OSSL_CMP_CTX *ctx;
    EVP_PKEY *nk = cmp_testpki_key("EC");
    int bit = cmp_reason_fail_bit(reason);

    assert_true(world_init(&w, "EC"));
    w.r.reject = reason;
    ctx = client_new(&w.r, w.pki.root, w.pki.dev, w.pki.dev_key);
    client_set_new(ctx, nk, "oracle rejected");
    assert_null(OSSL_CMP_exec_IR_ses(ctx));
    assert_int_equal(OSSL_CMP_CTX_get_status(ctx), OSSL_CMP_PKISTATUS_rejection);
    assert_int_equal(OSSL_CMP_CTX_get_failInfoCode(ctx), 1 << bit);
    {
        char buf[512];

        assert_non_null(OSSL_CMP_CTX_snprint_PKIStatus(ctx, buf, sizeof(buf)));
        assert_non_null(strstr(buf, cmp_fail_bit_name(bit)));
        assert_non_null(strstr(buf, cmp_reason_text(reason)));
    }
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    EVP_PKEY_free(nk);
    world_free(&w);
}

static void test_error_bad_template(void **state) { error_case(CMP_R_BAD_CERT_TEMPLATE); }
static void test_error_not_authorized(void **state) { error_case(CMP_R_NOT_AUTHORIZED); }
static void test_error_system_unavail(void **state) { error_case(CMP_R_SYSTEM_UNAVAIL); }

/* A client whose vendor cert is not under the responder's trust: the
 * responder refuses (signerNotTrusted) and says so in a protected error. */
static void test_error_untrusted_client(void **state)
{
    struct world w;
    struct cmp_testpki other;
    OSSL_CMP_CTX *ctx;
    EVP_PKEY *nk = cmp_testpki_key("EC");

    assert_true(world_init(&w, "EC"));
    assert_true(cmp_testpki_init(&other, "EC"));
    ctx = client_new(&w.r, w.pki.root, other.dev, other.dev_key);
    client_set_new(ctx, nk, "oracle stranger");
    assert_null(OSSL_CMP_exec_IR_ses(ctx));
    assert_int_equal(w.r.last, CMP_R_SIGNER_NOT_TRUSTED);
    assert_int_equal(OSSL_CMP_CTX_get_failInfoCode(ctx),
                     1 << CMP_FAIL_SIGNER_NOT_TRUSTED);
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    cmp_testpki_free(&other);
    EVP_PKEY_free(nk);
    world_free(&w);
}

/* The client refuses cmpca responses that are wrong in a way only the
 * client can see: protected by a cert outside its trust store. */
static void test_client_refuses_untrusted_responder(void **state)
{
    struct world w;
    struct cmp_testpki other;
    OSSL_CMP_CTX *ctx;

    assert_true(world_init(&w, "EC"));
    assert_true(cmp_testpki_init(&other, "EC"));
    ctx = client_new(&w.r, other.root, w.pki.dev, w.pki.dev_key);
    assert_null(OSSL_CMP_exec_GENM_ses(ctx));
    assert_int_equal(w.r.last, CMP_R_OK);
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    cmp_testpki_free(&other);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_p256),
        cmocka_unit_test(test_sessions_rsa),
        cmocka_unit_test(test_sessions_p384),
        cmocka_unit_test(test_responder_ed25519),
        cmocka_unit_test(test_responder_ed448),
        cmocka_unit_test(test_responder_rsa_pss),
        cmocka_unit_test(test_sessions_pbm),
        cmocka_unit_test(test_error_bad_template),
        cmocka_unit_test(test_error_not_authorized),
        cmocka_unit_test(test_error_system_unavail),
        cmocka_unit_test(test_error_untrusted_client),
        cmocka_unit_test(test_client_refuses_untrusted_responder),
    };

    return cmocka_run_group_tests_name("cmp_oracle", tests, NULL, NULL);
}
