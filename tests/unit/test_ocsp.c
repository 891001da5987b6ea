/*
 * Unit tests of the OCSP responder and the revocation resources: good,
 * revoked, unknown, unauthorized and malformed answers checked with
 * libcrypto's OCSP verification, nonces, SHA-256 CertIDs, the delegated
 * signer, every truncation of a request, the GET form, CRL and CA routes
 * and the HTTP helpers (dates, ETags) they rely on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "ca/ca_profile.h"
#include "conf/conf.h"
#include "http/http_int.h"
#include "ocsp/ocsp.h"
#include "ocsp/ocsp_pub.h"
#include "store/store.h"
#include "../lib/testutil.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *tmpdir;
static STORE *st;
static CA *ca;                 /* in the store, with key */
static X509 *leaf[3];          /* 0 good, 1 revoked (keyCompromise), 2 good */
static X509 *foreign_ca;       /* a CA we do not answer for */
static struct conf *conf;
static char confpath[512];

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
    return buf[i];
}

static const char *no_vars(void *arg, const char *name)
{
    return "x";
}

static int setup(void **state)
{
    struct store_conf sc;
    STORE_TX *tx = NULL;
    EVP_PKEY *k = NULL, *dk = NULL, *fk = NULL;
    X509_NAME *n = NULL;
    X509 *c;
    CA_SIGNER *s, *fs;
    CA_PROFILE *p = NULL;
    struct conf *pc = NULL;
    struct ca_issue_req req = { 0 };
    int64_t cid[3];
    char err[512];
    FILE *fp;
    int i;

    tmpdir = testutil_mkdtemp("test_ocsp");
    store_conf_init(&sc);
    sc.path = tpath("ocsp.db");
    sc.synchronous_full = 0;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK)
        return -1;
    if (!ca_key_generate("ec:P-256", &k, err, sizeof(err))
        || !ca_key_write(tpath("ca.key"), k, NULL, err, sizeof(err))
        || (s = ca_signer_new_pkey(k, NULL)) == NULL
        || !ca_name_parse("/O=Test/CN=OCSP Test CA", &n, err, sizeof(err))
        || (c = ca_make_ca_cert(n, k, 365, NULL, s, -1, err, sizeof(err)))
           == NULL
        || store_begin(st, &tx) != STORE_OK
        || ca_record_insert(tx, "test", c, NULL, tpath("ca.key"), "test",
                            NULL) != STORE_OK
        || store_commit(tx) != STORE_OK)
        return -1;
    X509_free(c);
    X509_NAME_free(n);
    n = NULL;
    ca_signer_free(s);
    if (!ca_load(NULL, st, "test", &ca, err, sizeof(err))) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    if (!conf_load_string("p.conf", "[profile d]\nsubject = CN=dev\n", &pc,
                          err, sizeof(err))
        || !ca_profile_load(pc, "d", &p, err, sizeof(err))
        || !ca_key_generate("ec:P-256", &dk, err, sizeof(err)))
        return -1;
    req.pubkey = dk;
    req.vars = no_vars;
    if (store_begin(st, &tx) != STORE_OK)
        return -1;
    for (i = 0; i < 3; i++)
        if (ca_issue_store(ca, p, &req, tx, 0, &leaf[i], &cid[i], err,
                           sizeof(err)) != CA_ISSUE_OK)
            return -1;
    if (ca_revoke(ca, tx, cid[1], 1, 1700000000, "test", err, sizeof(err))
        != CA_REVOKE_OK || store_commit(tx) != STORE_OK)
        return -1;
    /* a foreign CA with the same subject: only the key hash differs */
    if (!ca_key_generate("ec:P-256", &fk, err, sizeof(err))
        || (fs = ca_signer_new_pkey(fk, NULL)) == NULL
        || !ca_name_parse("/O=Test/CN=OCSP Test CA", &n, err, sizeof(err))
        || (foreign_ca = ca_make_ca_cert(n, fk, 365, NULL, fs, -1, err,
                                         sizeof(err))) == NULL)
        return -1;
    ca_signer_free(fs);
    X509_NAME_free(n);
    EVP_PKEY_free(fk);
    EVP_PKEY_free(dk);
    EVP_PKEY_free(k);
    ca_profile_free(p);
    conf_free(pc);
    /* the configuration ocsp_pub_new reads */
    snprintf(confpath, sizeof(confpath), "%s/cmpca.conf", tmpdir);
    if ((fp = fopen(confpath, "w")) == NULL)
        return -1;
    fprintf(fp, "[ocsp]\ncas = test\nnext_update = 30m\nmax_age = 60\n");
    fclose(fp);
    if (!conf_load(confpath, &conf, err, sizeof(err)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    int i;

    for (i = 0; i < 3; i++)
        X509_free(leaf[i]);
    X509_free(foreign_ca);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    free(tmpdir);
    return 0;
}

/* A request for |certs| (NULL-terminated) issued by |issuer| with hash
 * |md| and a nonce of |nonce_len| octets (0 = none). */
static unsigned char *make_req(X509 *issuer, X509 **certs, const EVP_MD *md,
                               int nonce_len, int *len)
{
    OCSP_REQUEST *r = OCSP_REQUEST_new();
    unsigned char *der = NULL;
    int i;

    for (i = 0; certs[i] != NULL; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(md, certs[i], issuer);

        assert_non_null(id);
        assert_non_null(OCSP_request_add0_id(r, id));
    }
    if (nonce_len > 0)
        assert_int_equal(OCSP_request_add1_nonce(r, NULL, nonce_len), 1);
    *len = i2d_OCSP_REQUEST(r, &der);
    assert_true(*len > 0);
    OCSP_REQUEST_free(r);
    return der;
}

/* Answers |req| and returns the basic response (checked: successful,
 * signature verifies with |signer| trusted as the CA). */
static OCSP_BASICRESP *answer(OCSP_RESPONDER *r, const unsigned char *req,
                              int len, enum ocsp_outcome want)
{
    unsigned char *out = NULL;
    const unsigned char *p;
    size_t outlen = 0;
    OCSP_RESPONSE *rsp;
    OCSP_BASICRESP *bs;
    X509_STORE *xs = X509_STORE_new();
    STACK_OF(X509) *certs = sk_X509_new_null();

    assert_int_equal(ocsp_respond(r, req, (size_t)len, time(NULL), &out,
                                  &outlen), want);
    p = out;
    rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)outlen);
    assert_non_null(rsp);
    assert_ptr_equal(p, out + outlen);
    assert_int_equal(OCSP_response_status(rsp),
                     OCSP_RESPONSE_STATUS_SUCCESSFUL);
    bs = OCSP_response_get1_basic(rsp);
    assert_non_null(bs);
    X509_STORE_add_cert(xs, ca_get0_cert(ca));
    sk_X509_push(certs, ca_get0_cert(ca));
    assert_int_equal(OCSP_basic_verify(bs, certs, xs, 0), 1);
    sk_X509_free(certs);
    X509_STORE_free(xs);
    OCSP_RESPONSE_free(rsp);
    OPENSSL_free(out);
    return bs;
}

/* The error status of the answer to |req|/|len|, with outcome |want|. */
static int error_status(OCSP_RESPONDER *r, const unsigned char *req,
                        size_t len, enum ocsp_outcome want)
{
    unsigned char *out = NULL, ref[OCSP_ERROR_DER_LEN];
    size_t outlen = 0;
    int status;

    assert_int_equal(ocsp_respond(r, req, len, time(NULL), &out, &outlen),
                     want);
    assert_int_equal(outlen, OCSP_ERROR_DER_LEN);
    status = out[4];
    assert_int_equal(ocsp_error_der(status, ref), OCSP_ERROR_DER_LEN);
    assert_memory_equal(out, ref, OCSP_ERROR_DER_LEN);
    OPENSSL_free(out);
    return status;
}

static OCSP_RESPONDER *new_responder(void)
{
    OCSP_RESPONDER *r = ocsp_responder_new(st, NULL);
    char err[256];

    assert_non_null(r);
    assert_int_equal(ocsp_responder_add_ca(r, ca, NULL, NULL, err,
                                           sizeof(err)), 1);
    assert_int_equal(ocsp_responder_num_cas(r), 1);
    return r;
}

/* Status of response |i| of |bs|, with reason and revocation time. */
static int status_of(OCSP_BASICRESP *bs, int i, int *reason, long *revt,
                     long *validity)
{
    ASN1_GENERALIZEDTIME *rt = NULL, *tu = NULL, *nu = NULL;
    OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
    int s, days, secs;

    assert_non_null(sr);
    s = OCSP_single_get0_status(sr, reason, &rt, &tu, &nu);
    if (revt != NULL && rt != NULL) {
        struct tm tm;

        assert_int_equal(ASN1_TIME_to_tm(rt, &tm), 1);
        *revt = (long)timegm(&tm);
    }
    if (validity != NULL) {
        assert_non_null(nu);
        assert_int_equal(ASN1_TIME_diff(&days, &secs, tu, nu), 1);
        *validity = days * 86400L + secs;
    }
    return s;
}

static void test_good_revoked_unknown(void **state)
{
    OCSP_RESPONDER *r = new_responder();
    X509 *certs[4] = { leaf[0], leaf[1], leaf[2], NULL };
    X509 *one[2] = { leaf[0], NULL };
    OCSP_BASICRESP *bs;
    OCSP_REQUEST *rq;
    OCSP_CERTID *id;
    ASN1_INTEGER *ai;
    unsigned char *req, *der = NULL;
    const unsigned char *p;
    int len, reason = -9;
    long revt = 0, validity = 0;

    req = make_req(ca_get0_cert(ca), certs, EVP_sha1(), 16, &len);
    bs = answer(r, req, len, OCSP_OUT_REVOKED);
    assert_int_equal(OCSP_resp_count(bs), 3);
    assert_int_equal(status_of(bs, 0, &reason, NULL, &validity),
                     V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(validity, 3600);       /* the default next_update */
    assert_int_equal(status_of(bs, 1, &reason, &revt, NULL),
                     V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, 1);            /* keyCompromise */
    assert_int_equal(revt, 1700000000);
    assert_int_equal(status_of(bs, 2, &reason, NULL, NULL),
                     V_OCSP_CERTSTATUS_GOOD);
    p = req;
    rq = d2i_OCSP_REQUEST(NULL, &p, len);
    assert_int_equal(OCSP_check_nonce(rq, bs), 1);   /* echoed */
    OCSP_REQUEST_free(rq);
    OCSP_BASICRESP_free(bs);
    OPENSSL_free(req);

    /* no nonce: none in the response; SHA-256 CertIDs match too */
    req = make_req(ca_get0_cert(ca), one, EVP_sha256(), 0, &len);
    bs = answer(r, req, len, OCSP_OUT_GOOD);
    assert_int_equal(status_of(bs, 0, &reason, NULL, NULL),
                     V_OCSP_CERTSTATUS_GOOD);
    assert_true(OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1)
                < 0);
    OCSP_BASICRESP_free(bs);
    OPENSSL_free(req);

    /* a serial we never issued: unknown */
    rq = OCSP_REQUEST_new();
    ai = ASN1_INTEGER_new();
    ASN1_INTEGER_set_int64(ai, 0x123456789LL);
    id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca_get0_cert(ca)),
                          X509_get0_pubkey_bitstr(ca_get0_cert(ca)), ai);
    OCSP_request_add0_id(rq, id);
    len = i2d_OCSP_REQUEST(rq, &der);
    bs = answer(r, der, len, OCSP_OUT_UNKNOWN);
    assert_int_equal(status_of(bs, 0, &reason, NULL, NULL),
                     V_OCSP_CERTSTATUS_UNKNOWN);
    OCSP_BASICRESP_free(bs);
    OPENSSL_free(der);
    der = NULL;
    /* a negative serial: unknown as well */
    ASN1_INTEGER_set_int64(ai, -5);
    OCSP_REQUEST_free(rq);
    rq = OCSP_REQUEST_new();
    id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca_get0_cert(ca)),
                          X509_get0_pubkey_bitstr(ca_get0_cert(ca)), ai);
    OCSP_request_add0_id(rq, id);
    len = i2d_OCSP_REQUEST(rq, &der);
    bs = answer(r, der, len, OCSP_OUT_UNKNOWN);
    OCSP_BASICRESP_free(bs);
    OPENSSL_free(der);
    ASN1_INTEGER_free(ai);
    OCSP_REQUEST_free(rq);
    ocsp_responder_free(r);
}

static void test_unauthorized_and_malformed(void **state)
{
    OCSP_RESPONDER *r;
    struct ocsp_conf oc;
    X509 *one[2] = { leaf[0], NULL };
    X509 *nine[10];
    unsigned char *req, junk[8000];
    char err[256];
    int len, i;
    size_t n;

    ocsp_conf_init(&oc);
    oc.max_certids = 8;
    oc.max_nonce = 32;
    r = ocsp_responder_new(st, &oc);
    assert_int_equal(ocsp_responder_add_ca(r, ca, NULL, NULL, err,
                                           sizeof(err)), 1);
    /* a CA we do not answer for (same name, other key) */
    req = make_req(foreign_ca, one, EVP_sha1(), 16, &len);
    assert_int_equal(error_status(r, req, (size_t)len,
                                  OCSP_OUT_UNAUTHORIZED),
                     OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OPENSSL_free(req);
    /* every truncation and a trailing octet: malformedRequest */
    req = make_req(ca_get0_cert(ca), one, EVP_sha1(), 16, &len);
    for (n = 0; n < (size_t)len; n++)
        assert_int_equal(error_status(r, n == 0 ? NULL : req, n,
                                      OCSP_OUT_MALFORMED),
                         OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    memset(junk, 0, sizeof(junk));
    memcpy(junk, req, (size_t)len);
    assert_int_equal(error_status(r, junk, (size_t)len + 1,
                                  OCSP_OUT_MALFORMED),
                     OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    /* a flipped byte anywhere: never a crash, never "successful" with junk */
    for (n = 0; n < (size_t)len; n++) {
        unsigned char *out = NULL;
        size_t outlen = 0;

        memcpy(junk, req, (size_t)len);
        junk[n] ^= 0x55;
        (void)ocsp_respond(r, junk, (size_t)len, time(NULL), &out, &outlen);
        assert_non_null(out);
        OPENSSL_free(out);
    }
    OPENSSL_free(req);
    /* over max_request */
    assert_int_equal(error_status(r, junk, sizeof(junk), OCSP_OUT_MALFORMED),
                     OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    /* more CertIDs than max_certids */
    for (i = 0; i < 9; i++)
        nine[i] = leaf[i % 3];
    nine[9] = NULL;
    req = make_req(ca_get0_cert(ca), nine, EVP_sha1(), 0, &len);
    assert_int_equal(error_status(r, req, (size_t)len, OCSP_OUT_MALFORMED),
                     OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(req);
    nine[8] = NULL;                     /* eight are fine */
    req = make_req(ca_get0_cert(ca), nine, EVP_sha1(), 0, &len);
    OCSP_BASICRESP_free(answer(r, req, len, OCSP_OUT_REVOKED));
    OPENSSL_free(req);
    /* a nonce longer than max_nonce */
    req = make_req(ca_get0_cert(ca), one, EVP_sha1(), 64, &len);
    assert_int_equal(error_status(r, req, (size_t)len, OCSP_OUT_MALFORMED),
                     OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(req);
    ocsp_responder_free(r);
}

static void test_delegated_signer(void **state)
{
    OCSP_RESPONDER *r = ocsp_responder_new(st, NULL);
    EVP_PKEY *k = NULL;
    X509_NAME *n = NULL;
    X509 *sc, *one[2] = { leaf[1], NULL };
    CA_SIGNER *s;
    OCSP_BASICRESP *bs;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509_STORE *xs = X509_STORE_new();
    const STACK_OF(X509) *inresp;
    unsigned char *req;
    char err[256];
    int len, reason;

    assert_int_equal(ca_key_generate("ec:P-256", &k, err, sizeof(err)), 1);
    s = ca_signer_new_pkey(k, NULL);
    assert_int_equal(ca_name_parse("/CN=Test OCSP signer", &n, err,
                                   sizeof(err)), 1);
    sc = ca_make_ocsp_signer_cert(ca, n, k, 30, err, sizeof(err));
    assert_non_null(sc);
    assert_true(X509_get_extended_key_usage(sc) & XKU_OCSP_SIGN);
    assert_true(X509_get_ext_by_NID(sc, NID_id_pkix_OCSP_noCheck, -1) >= 0);
    assert_int_equal(X509_get_signature_nid(sc), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_verify(sc, X509_get0_pubkey(ca_get0_cert(ca))), 1);
    /* the CA certificate itself is no OCSP signer; a key mismatch is
     * refused */
    assert_int_equal(ocsp_responder_add_ca(r, ca, ca_get0_cert(ca), s, err,
                                           sizeof(err)), 0);
    assert_int_equal(ocsp_responder_add_ca(r, ca, sc, NULL, err,
                                           sizeof(err)), 0);
    assert_int_equal(ocsp_responder_add_ca(r, ca, sc, s, err, sizeof(err)),
                     1);
    req = make_req(ca_get0_cert(ca), one, EVP_sha1(), 16, &len);
    {
        unsigned char *out = NULL;
        const unsigned char *p;
        size_t outlen = 0;
        OCSP_RESPONSE *rsp;

        assert_int_equal(ocsp_respond(r, req, (size_t)len, time(NULL), &out,
                                      &outlen), OCSP_OUT_REVOKED);
        p = out;
        rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)outlen);
        bs = OCSP_response_get1_basic(rsp);
        OCSP_RESPONSE_free(rsp);
        OPENSSL_free(out);
    }
    assert_non_null(bs);
    inresp = OCSP_resp_get0_certs(bs);
    assert_int_equal(sk_X509_num(inresp), 1);
    assert_int_equal(X509_cmp(sk_X509_value(inresp, 0), sc), 0);
    X509_STORE_add_cert(xs, ca_get0_cert(ca));
    assert_int_equal(OCSP_basic_verify(bs, certs, xs, 0), 1);
    assert_int_equal(status_of(bs, 0, &reason, NULL, NULL),
                     V_OCSP_CERTSTATUS_REVOKED);
    OCSP_BASICRESP_free(bs);
    OPENSSL_free(req);
    sk_X509_free(certs);
    X509_STORE_free(xs);
    X509_free(sc);
    X509_NAME_free(n);
    ca_signer_free(s);
    EVP_PKEY_free(k);
    ocsp_responder_free(r);
}

/* Calls the resource handler; returns the status, body in *body. */
static int res(OCSP_PUB *p, const char *method, const char *path,
               const char *ct, const unsigned char *b, size_t blen,
               struct http_resource_response *rsp)
{
    struct http_resource_request rq;

    memset(&rq, 0, sizeof(rq));
    memset(rsp, 0, sizeof(*rsp));
    rsp->status = 500;
    rsp->max_age = -1;
    rq.method = method;
    rq.path = path;
    rq.content_type = ct;
    rq.body = b;
    rq.body_len = blen;
    rq.peer = "test";
    ocsp_pub_handle(p, &rq, rsp);
    return rsp->status;
}

static void test_pub_routes(void **state)
{
    char err[512], path[4200], etag[80];
    OCSP_PUB *p = ocsp_pub_new(conf, st, err, sizeof(err));
    struct http_resource_response rsp;
    X509 *one[2] = { leaf[0], NULL };
    unsigned char *req, b64[4096];
    const unsigned char *q;
    X509_CRL *crl;
    X509 *x;
    int len, n;
    size_t i, j;
    struct conf *bad = NULL;

    if (p == NULL)
        fail_msg("ocsp_pub_new: %s", err);
    req = make_req(ca_get0_cert(ca), one, EVP_sha1(), 0, &len);
    /* POST */
    assert_int_equal(res(p, "POST", "/ocsp", "application/ocsp-request", req,
                         (size_t)len, &rsp), 200);
    assert_string_equal(rsp.content_type, "application/ocsp-response");
    assert_true(rsp.body_len > 100);
    free(rsp.body);
    assert_int_equal(res(p, "POST", "/ocsp", "text/plain", req, (size_t)len,
                         &rsp), 415);
    assert_int_equal(rsp.body_len, OCSP_ERROR_DER_LEN);
    free(rsp.body);
    assert_int_equal(res(p, "PUT", "/ocsp", NULL, NULL, 0, &rsp), 405);
    /* GET with %-decoded standard base64, and with the URL-safe alphabet
     * and without padding */
    n = EVP_EncodeBlock(b64, req, len);
    snprintf(path, sizeof(path), "/ocsp/%s", b64);
    assert_int_equal(res(p, "GET", path, NULL, NULL, 0, &rsp), 200);
    assert_int_equal(rsp.max_age, 60);
    assert_true(rsp.body_len > 100);
    free(rsp.body);
    for (i = 0, j = 6; i < (size_t)n && b64[i] != '='; i++)
        path[j++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    path[j] = '\0';
    assert_int_equal(res(p, "GET", path, NULL, NULL, 0, &rsp), 200);
    assert_true(rsp.body_len > 100);
    free(rsp.body);
    assert_int_equal(res(p, "GET", "/ocsp/%%%", NULL, NULL, 0, &rsp), 200);
    assert_int_equal(rsp.body_len, OCSP_ERROR_DER_LEN);
    assert_int_equal(rsp.max_age, 0);
    free(rsp.body);
    OPENSSL_free(req);
    /* CRL: made on first demand, ETag and Last-Modified */
    assert_int_equal(res(p, "GET", "/crl/test.crl", NULL, NULL, 0, &rsp), 200);
    assert_string_equal(rsp.content_type, "application/pkix-crl");
    assert_true(rsp.last_modified > 0);
    assert_non_null(strstr(rsp.etag, "\"crl-"));
    strcpy(etag, rsp.etag);
    q = rsp.body;
    crl = d2i_X509_CRL(NULL, &q, (long)rsp.body_len);
    assert_non_null(crl);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    X509_CRL_free(crl);
    free(rsp.body);
    /* the same CRL again (not yet due for refresh) */
    assert_int_equal(ocsp_pub_refresh_crls(p, time(NULL)), 0);
    assert_int_equal(res(p, "GET", "/crl/test.crl", NULL, NULL, 0, &rsp), 200);
    assert_string_equal(rsp.etag, etag);
    free(rsp.body);
    /* past half of its validity: refreshed, new ETag */
    assert_int_equal(ocsp_pub_refresh_crls(p, time(NULL) + 4 * 86400), 1);
    assert_int_equal(res(p, "GET", "/crl/test.crl", NULL, NULL, 0, &rsp), 200);
    assert_string_not_equal(rsp.etag, etag);
    free(rsp.body);
    assert_int_equal(res(p, "GET", "/crl/nosuch.crl", NULL, NULL, 0, &rsp),
                     404);
    assert_int_equal(res(p, "GET", "/crl/../x.crl", NULL, NULL, 0, &rsp), 404);
    assert_int_equal(res(p, "GET", "/crl/test.pem", NULL, NULL, 0, &rsp), 404);
    assert_int_equal(res(p, "POST", "/crl/test.crl", NULL, NULL, 0, &rsp),
                     405);
    /* CA certificate */
    assert_int_equal(res(p, "GET", "/ca/test.crt", NULL, NULL, 0, &rsp), 200);
    assert_string_equal(rsp.content_type, "application/pkix-cert");
    q = rsp.body;
    x = d2i_X509(NULL, &q, (long)rsp.body_len);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, ca_get0_cert(ca)), 0);
    X509_free(x);
    free(rsp.body);
    assert_int_equal(res(p, "GET", "/ca/x.crt", NULL, NULL, 0, &rsp), 404);
    /* metrics */
    n = (int)ocsp_pub_metrics(p, (char *)b64, sizeof(b64) - 1);
    b64[n] = '\0';
    assert_non_null(strstr((char *)b64,
                           "cmpca_ocsp_responses_total{outcome=\"good\"} 3"));
    assert_non_null(strstr((char *)b64, "cmpca_crl_downloads_total 3"));
    ocsp_pub_free(p);

    /* configuration errors with file:line */
    assert_int_equal(conf_load_string("bad.conf", "[ocsp]\nnext_update = 1h\n"
                                      "max_age = 2h\n", &bad, err,
                                      sizeof(err)), 1);
    assert_null(ocsp_pub_new(bad, st, err, sizeof(err)));
    assert_non_null(strstr(err, "bad.conf:1: max_age"));
    conf_free(bad);
    assert_int_equal(conf_load_string("bad.conf", "[ocsp]\nbogus = 1\n", &bad,
                                      err, sizeof(err)), 1);
    assert_null(ocsp_pub_new(bad, st, err, sizeof(err)));
    assert_non_null(strstr(err, "bad.conf:2: unknown key 'bogus'"));
    conf_free(bad);
    assert_int_equal(conf_load_string("bad.conf", "[ocsp]\ncas = nosuch\n",
                                      &bad, err, sizeof(err)), 1);
    assert_null(ocsp_pub_new(bad, st, err, sizeof(err)));
    assert_non_null(strstr(err, "nosuch"));
    conf_free(bad);
}

/* An issuance given the vendor certificate records it (what `cmpca device
 * show` and the vendor_sha256 filter read). */
static void test_vendor_recorded(void **state)
{
    struct conf *pc = NULL;
    CA_PROFILE *p = NULL;
    EVP_PKEY *dk = NULL;
    struct ca_issue_req req = { 0 };
    struct store_cert *got = NULL, **list = NULL;
    struct store_cert_filter f;
    STORE_TX *tx = NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    int64_t id = 0;
    size_t n = 0;
    char err[256];

    assert_int_equal(conf_load_string("p.conf", "[profile d]\nsubject = CN=v\n",
                                      &pc, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_load(pc, "d", &p, err, sizeof(err)), 1);
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    req.pubkey = dk;
    req.vars = no_vars;
    req.vendor_cert = foreign_ca;       /* any certificate will do */
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(ca_issue_store(ca, p, &req, tx, 0, NULL, &id, err,
                                    sizeof(err)), CA_ISSUE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(X509_digest(foreign_ca, EVP_sha256(), md, &mdlen), 1);
    assert_int_equal(store_begin_read(st, &tx), STORE_OK);
    assert_int_equal(store_cert_get(tx, id, &got), STORE_OK);
    assert_int_equal(got->has_vendor, 1);
    assert_memory_equal(got->vendor_sha256, md, 32);
    assert_int_equal(got->vendor_serial_len,
                     ASN1_STRING_length(X509_get0_serialNumber(foreign_ca)));
    store_cert_filter_init(&f);
    f.vendor_sha256 = md;
    assert_int_equal(store_cert_list(tx, &f, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0]->id, id);
    store_cert_list_free(list, n);
    store_cert_free(got);
    /* the certificates issued without it have none */
    assert_int_equal(store_cert_get(tx, 1, &got), STORE_OK);
    assert_int_equal(got->has_vendor, 0);
    store_cert_free(got);
    store_rollback(tx);
    EVP_PKEY_free(dk);
    ca_profile_free(p);
    conf_free(pc);
}

static void test_http_helpers(void **state)
{
    char buf[64];
    long long t;

    assert_int_equal(http_date_format(784111777, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(http_date_parse(buf, &t), 1);
    assert_int_equal(t, 784111777);
    assert_int_equal(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t), 0);
    assert_int_equal(http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(http_date_parse(NULL, &t), 0);
    assert_int_equal(http_etag_match("\"a\"", "\"a\""), 1);
    assert_int_equal(http_etag_match("\"b\", \"a\"", "\"a\""), 1);
    assert_int_equal(http_etag_match("W/\"a\"", "\"a\""), 1);
    assert_int_equal(http_etag_match("*", "\"a\""), 1);
    assert_int_equal(http_etag_match("\"ab\"", "\"a\""), 0);
    assert_int_equal(http_etag_match("\"a\"", ""), 0);
    assert_int_equal(http_etag_match(NULL, "\"a\""), 0);
    assert_int_equal(http_route_is_resource("/ocsp"), 1);
    assert_int_equal(http_route_is_resource("/ocsp/MEow"), 1);
    assert_int_equal(http_route_is_resource("/ocspx"), 0);
    assert_int_equal(http_route_is_resource("/crl/a.crl"), 1);
    assert_int_equal(http_route_is_resource("/crl/"), 0);
    assert_int_equal(http_route_is_resource("/ca/a.crt"), 1);
    assert_int_equal(http_route_is_resource("/cax"), 0);
    assert_int_equal(http_route_is_resource(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_revoked_unknown),
        cmocka_unit_test(test_unauthorized_and_malformed),
        cmocka_unit_test(test_delegated_signer),
        cmocka_unit_test(test_pub_routes),
        cmocka_unit_test(test_vendor_recorded),
        cmocka_unit_test(test_http_helpers),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
