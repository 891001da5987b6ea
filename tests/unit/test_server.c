/*
 * The CMP server core in-process: a real PKI, a real SQLite store file and
 * configuration (tests/lib/srv_testenv.c), and OpenSSL's CMP client talking
 * to server_handle() through its transfer callback, so that OpenSSL also
 * validates every answer. Covers every request type of the 3GPP alias, each
 * refusal the README lists (one table row each: failInfo, a signed error,
 * nothing changed in the store), replays, and the confirmation sweeper; and
 * the ra mode: OpenSSL's client as the RA (ir, cr, p10cr, kur, rr,
 * raVerified, origPKIMessage), each kind of RA refused, and devices' own
 * requests forwarded in nested messages (single, batch, depth, duplicates).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "srv_testenv.h"
#include "cmp_testpki.h"

#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_reason.h"
#include "util/log.h"

#include <jansson.h>
#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEV1 "SN-000001"
#define DEV2 "SN-000002"
#define DEV3 "SN-000003"
#define RADEV "dev-x"             /* a device an RA asks for */
#define RA_REVOKED_CERTS 1        /* STENV_RA_REVOKED's certificate */

struct fx {
    struct stenv e;
    struct stenv_link l;
    struct stenv_id dev;          /* DEV1's vendor credentials (registered) */
    struct stenv_id op;           /* DEV1's operator certificate, if enrolled */
    struct stenv_id other;        /* DEV2's vendor credentials, when made */
    unsigned char saved_tid[64];  /* a transactionID used before */
    size_t saved_tid_len;
    const struct refusal *rc;     /* the table row being run */
    int ra_verified;              /* run_op: ask for raVerified POP */
    unsigned char *orig;          /* a device's ir for origPKIMessage */
    size_t orig_len;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[512];

    if (f == NULL)
        return -1;
    log_set_level(getenv("STENV_VERBOSE") != NULL ? LOG_DEBUG : LOG_ERROR);
    if (!stenv_create(&f->e, NULL, NULL, err, sizeof(err))) {
        print_message("stenv_create: %s\n", err);
        return -1;
    }
    f->l.env = &f->e;
    if (!stenv_device(&f->e, DEV1, 0, 1, &f->dev))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    stenv_link_reset(&f->l);
    stenv_id_clear(&f->dev);
    stenv_id_clear(&f->op);
    stenv_id_clear(&f->other);
    free(f->orig);
    stenv_free(&f->e, getenv("STENV_KEEP") == NULL);
    free(f);
    return 0;
}

static void print_errors(const char *what)
{
    unsigned long e;
    char buf[256];

    print_message("# %s failed:\n", what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        print_message("#   %s\n", buf);
    }
}

/* ---- sessions through OpenSSL's client ---- */

enum op { OP_IR, OP_CR, OP_KUR, OP_P10CR, OP_RR, OP_GENM };

/* Runs |op| as |id| (NULL: MAC-protected with a shared secret); |newkey|
 * for ir/cr/kur/p10cr (the subject is CN=|cn|), |old| for rr. Sets *cert
 * (may be NULL) to a copy of the new certificate. Returns 1 if the client
 * reports success. */
static int run_op(struct fx *f, enum op op, const struct stenv_id *id,
                  EVP_PKEY *newkey, const char *cn, X509 *old, X509 **cert)
{
    OSSL_CMP_CTX *ctx = stenv_client(&f->l, id);
    X509 *got = NULL;
    int ok = 0;

    if (cert != NULL)
        *cert = NULL;
    assert_non_null(ctx);
    if (id == NULL) {
        assert_true(OSSL_CMP_CTX_set1_referenceValue(ctx,
                        (const unsigned char *)DEV1, strlen(DEV1)));
        assert_true(OSSL_CMP_CTX_set1_secretValue(ctx,
                        (const unsigned char *)"a shared secret", 15));
        assert_true(OSSL_CMP_CTX_set1_recipient(ctx,
                        X509_get_subject_name(f->e.cmp_signer)));
    }
    switch (op) {
    case OP_IR: case OP_CR: case OP_KUR:
        assert_true(stenv_client_newkey(ctx, newkey, cn));
        if (f->ra_verified)
            assert_true(OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_POPO_METHOD,
                                                OSSL_CRMF_POPO_RAVERIFIED));
        if (op == OP_KUR && old != NULL)
            assert_true(OSSL_CMP_CTX_set1_oldCert(ctx, old));
        got = op == OP_IR ? OSSL_CMP_exec_IR_ses(ctx)
            : op == OP_CR ? OSSL_CMP_exec_CR_ses(ctx) : OSSL_CMP_exec_KUR_ses(ctx);
        ok = got != NULL;
        break;
    case OP_P10CR: {
        X509_REQ *csr = X509_REQ_new();
        X509_NAME *n = X509_NAME_new();

        assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                               (const unsigned char *)cn, -1,
                                               -1, 0));
        assert_true(X509_REQ_set_subject_name(csr, n));
        assert_true(X509_REQ_set_pubkey(csr, newkey));
        assert_true(X509_REQ_sign(csr, newkey, EVP_sha256()) > 0);
        assert_true(OSSL_CMP_CTX_set1_p10CSR(ctx, csr));
        X509_REQ_free(csr);
        X509_NAME_free(n);
        got = OSSL_CMP_exec_P10CR_ses(ctx);
        ok = got != NULL;
        break;
    }
    case OP_RR:
        assert_true(OSSL_CMP_CTX_set1_oldCert(ctx, old));
        assert_true(OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_REVOCATION_REASON,
                                            CRL_REASON_KEY_COMPROMISE));
        ok = OSSL_CMP_exec_RR_ses(ctx) == 1;
        break;
    case OP_GENM: {
        STACK_OF(OSSL_CMP_ITAV) *itavs;

        assert_true(OSSL_CMP_CTX_push0_genm_ITAV(ctx,
                        OSSL_CMP_ITAV_create(OBJ_txt2obj("1.3.6.1.5.5.7.4.17", 1),
                                             NULL)));
        itavs = OSSL_CMP_exec_GENM_ses(ctx);
        ok = itavs != NULL;
        sk_OSSL_CMP_ITAV_pop_free(itavs, OSSL_CMP_ITAV_free);
        break;
    }
    }
    if (got != NULL && cert != NULL)
        *cert = X509_dup(got);
    if (!ok && getenv("STENV_VERBOSE") != NULL)
        print_errors("client session");
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return ok;
}

/* Asserts that answer |i| of the link is a signed, verifying response of
 * |body| (HTTP 200) and returns what it says. */
static void expect_answer(struct fx *f, int i, int body, struct stenv_rsp *r)
{
    assert_true(i < f->l.nreq);
    assert_non_null(f->l.rsp[i]);
    assert_true(stenv_rsp_parse(f->l.rsp[i], f->l.rsp_len[i], r));
    if (r->body != body)
        print_message("# answer %d: body %s, wanted %s (failInfo 0x%x)\n", i,
                      cmp_body_type_name(r->body), cmp_body_type_name(body),
                      r->failinfo);
    assert_int_equal(r->body, body);
    assert_true(r->signed_);
    assert_true(f->l.verified[i]);
    assert_int_equal(f->l.http[i], 200);
}

/* The transactionID of request |i| of the link. */
static size_t req_tid(struct fx *f, int i, unsigned char *tid)
{
    size_t n = stenv_msg_tid(f->l.req[i], f->l.req_len[i], tid);

    assert_true(n > 0);
    return n;
}

/* ir+certConf for DEV1: its operator identity goes into f->op. */
static void enroll_dev1(struct fx *f)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = NULL;

    assert_non_null(k);
    assert_true(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, &cert));
    assert_non_null(cert);
    stenv_id_clear(&f->op);
    assert_true(stenv_id_set(&f->op, cert, k));
    X509_free(cert);
    EVP_PKEY_free(k);
    stenv_link_reset(&f->l);
}

static int cert_state(struct fx *f, X509 *cert, int *reason)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der), st;

    assert_true(len > 0);
    st = stenv_cert_status(&f->e, der, (size_t)len, reason, NULL, NULL);
    OPENSSL_free(der);
    return st;
}

static void audit_intact(struct fx *f)
{
    int64_t bad = -1;
    char err[256];

    assert_int_equal(store_audit_verify(f->e.store, &bad, err, sizeof(err)), 1);
    assert_int_equal(bad, 0);
}

/* ---- every request type, accepted ---- */

static void test_ir_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int64_t dev_cert = 0, cert_id = 0, cert_dev = 0;
    X509 *cert = NULL;
    char cn[256];

    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REGISTERED);
    assert_true(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, &cert));
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.ncapubs, 1);                 /* the operator root */
    /* the certificate the client got is the one stored, for the device */
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL,
                                       &cert_id, &cert_dev), STORE_CERT_VALID);
    {
        const unsigned char *p = r.cert;
        X509 *x = d2i_X509(NULL, &p, (long)r.cert_len);

        assert_non_null(x);
        assert_int_equal(X509_cmp(x, cert), 0);
        X509_free(x);
    }
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, &dev_cert), STORE_DEV_ENROLLED);
    assert_int_equal(dev_cert, cert_id);
    assert_true(cert_dev != 0);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CONFIRMED);
    /* the profile made the subject from the vendor certificate */
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                              sizeof(cn));
    assert_string_equal(cn, DEV1);
    assert_int_equal(X509_check_issued(f->e.op_issuing, cert), X509_V_OK);
    /* the CMP signer, the RAs, this one */
    assert_int_equal(stenv_cert_count(&f->e, -1), 1 + STENV_NRA + 1);
    audit_intact(f);
    X509_free(cert);
    EVP_PKEY_free(k);
}

static int crl_lists(struct fx *f, X509 *cert);

static void test_kur_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int64_t dev_cert = 0, new_id = 0;
    int reason = -1;
    X509 *cert = NULL;

    enroll_dev1(f);
    assert_true(run_op(f, OP_KUR, &f->op, k2, NULL, NULL, &cert));
    expect_answer(f, 0, CMP_BODY_KUP, &r);
    assert_int_equal(r.ncapubs, 0);                 /* kup: no caPubs */
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, &new_id,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    /* same subject, the new key, the old certificate revoked as superseded */
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert),
                                   X509_get_subject_name(f->op.cert)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k2), 1);
    assert_int_equal(cert_state(f, f->op.cert, &reason), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_SUPERSEDED);
    assert_int_equal(stenv_device_state(&f->e, DEV1, &dev_cert), STORE_DEV_ENROLLED);
    assert_int_equal(dev_cert, new_id);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CONFIRMED);
    /* the CRL listing the old certificate comes from the next sweep */
    assert_int_equal(server_sweep(f->e.srv, time(NULL)), 0);
    assert_true(crl_lists(f, f->op.cert));
    audit_intact(f);
    X509_free(cert);
    EVP_PKEY_free(k2);
}

static void test_cr(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    int64_t before = 0, after = 0, dev_of = 0;
    X509 *cert = NULL;

    enroll_dev1(f);
    assert_int_equal(stenv_device_state(&f->e, DEV1, &before), STORE_DEV_ENROLLED);
    assert_true(run_op(f, OP_CR, &f->op, k2, DEV1, NULL, &cert));
    expect_answer(f, 0, CMP_BODY_CP, &r);
    assert_int_equal(r.ncapubs, 0);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, NULL,
                                       &dev_of), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    /* an additional certificate: the main one stays, both valid */
    assert_int_equal(stenv_device_state(&f->e, DEV1, &after), STORE_DEV_ENROLLED);
    assert_int_equal(before, after);
    assert_true(dev_of != 0);
    assert_int_equal(cert_state(f, f->op.cert, NULL), STORE_CERT_VALID);
    X509_free(cert);
    EVP_PKEY_free(k2);
}

static void test_p10cr(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    X509 *cert = NULL;
    int64_t dev_cert = 0, id = 0;

    assert_true(run_op(f, OP_P10CR, &f->dev, k, "ignored", NULL, &cert));
    expect_answer(f, 0, CMP_BODY_CP, &r);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, &id,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, &dev_cert), STORE_DEV_ENROLLED);
    assert_int_equal(dev_cert, id);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k), 1);
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* The serial of |cert| is listed in the latest stored CRL of the CA,
 * which verifies with the issuing CA's key. */
static int crl_lists(struct fx *f, X509 *cert)
{
    STORE_TX *tx = NULL;
    struct store_crl *crl = NULL;
    const unsigned char *p;
    X509_CRL *x = NULL;
    X509_REVOKED *rev = NULL;
    int found;

    assert_int_equal(store_begin_read(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_crl_get_last(tx, f->e.issuing_id, &crl), STORE_OK);
    p = crl->der;
    assert_non_null(x = d2i_X509_CRL(NULL, &p, (long)crl->der_len));
    assert_int_equal(X509_CRL_verify(x, X509_get0_pubkey(f->e.op_issuing)), 1);
    found = X509_CRL_get0_by_serial(x, &rev,
                                    X509_get0_serialNumber(cert)) == 1;
    X509_CRL_free(x);
    store_crl_free(crl);
    store_rollback(tx);
    return found;
}

static void test_rr(void **state)
{
    struct fx *f = *state;
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int reason = -1;

    enroll_dev1(f);
    assert_true(run_op(f, OP_RR, &f->op, NULL, NULL, f->op.cert, NULL));
    assert_int_equal(f->l.nreq, 1);
    expect_answer(f, 0, CMP_BODY_RP, &r);
    assert_int_equal(r.status, 0);
    stenv_rsp_clear(&r);
    assert_int_equal(cert_state(f, f->op.cert, &reason), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_KEY_COMPROMISE);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REVOKED);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CLOSED);
    assert_true(crl_lists(f, f->op.cert));          /* CRL in the same tx */
    audit_intact(f);
}

/* The value of |itav| decoded as |it|, or NULL when absent. */
static void *itav_unpack(const OSSL_CMP_ITAV *itav, const ASN1_ITEM *it)
{
    const ASN1_TYPE *v = OSSL_CMP_ITAV_get0_value(itav);

    if (v == NULL)
        return NULL;
    assert_int_equal(v->type, V_ASN1_SEQUENCE);
    return ASN1_item_unpack(v->value.sequence, it);
}

static int itav_arc(const OSSL_CMP_ITAV *itav)
{
    char buf[64];

    assert_true(OBJ_obj2txt(buf, sizeof(buf), OSSL_CMP_ITAV_get0_type(itav), 1) > 0);
    assert_memory_equal(buf, "1.3.6.1.5.5.7.4.", 16);
    return atoi(buf + 16);
}

/* genm with caCerts, rootCaCert, certReqTemplate and crlStatusList, sent
 * by a vendor device (not enrolled) and by an operator certificate. */
static void genm_all(struct fx *f, const struct stenv_id *id)
{
    static const int want[] = { 17, 18, 19, 23 };
    OSSL_CMP_CTX *ctx = stenv_client(&f->l, id);
    STACK_OF(OSSL_CMP_ITAV) *out;
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
    const char *oids[] = { "1.3.6.1.5.5.7.4.17", "1.3.6.1.5.5.7.4.20",
                           "1.3.6.1.5.5.7.4.19", "1.3.6.1.5.5.7.4.22" };
    struct stenv_rsp r;
    size_t i;

    assert_non_null(ctx);
    for (i = 0; i < 4; i++) {
        ASN1_TYPE *val = NULL;

        if (i == 1) {       /* rootCaCert: the root the device holds */
            val = ASN1_TYPE_new();
            ASN1_TYPE_set(val, V_ASN1_SEQUENCE,
                          ASN1_item_pack(f->e.op_root, ASN1_ITEM_rptr(X509), NULL));
        }
        if (i == 3) {       /* crlStatusList: one CRLStatus (RFC 9483 4.3.4)
                             * naming the issuing CA by its name:
                             * { { issuer [1] { { [4] Name } } } } */
            unsigned char buf[600], *name = NULL;
            const unsigned char *p = buf;
            int nl = i2d_X509_NAME(X509_get_subject_name(f->e.op_issuing),
                                   &name);

            assert_true(nl > 0 && nl < 120);
            buf[0] = 0x30; buf[1] = (unsigned char)(nl + 8);
            buf[2] = 0x30; buf[3] = (unsigned char)(nl + 6);
            buf[4] = 0xa1; buf[5] = (unsigned char)(nl + 4);
            buf[6] = 0x30; buf[7] = (unsigned char)(nl + 2);
            buf[8] = 0xa4; buf[9] = (unsigned char)nl;
            memcpy(buf + 10, name, (size_t)nl);
            OPENSSL_free(name);
            assert_non_null(val = d2i_ASN1_TYPE(NULL, &p, nl + 10));
        }
        assert_true(OSSL_CMP_CTX_push0_genm_ITAV(ctx,
                        OSSL_CMP_ITAV_create(OBJ_txt2obj(oids[i], 1), val)));
    }
    out = OSSL_CMP_exec_GENM_ses(ctx);
    if (out == NULL)
        print_errors("genm");
    assert_non_null(out);
    expect_answer(f, 0, CMP_BODY_GENP, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(sk_OSSL_CMP_ITAV_num(out), 4);
    for (i = 0; i < 4; i++)
        assert_int_equal(itav_arc(sk_OSSL_CMP_ITAV_value(out, (int)i)), want[i]);
    /* caCerts: the issuing CA, then the root */
    certs = itav_unpack(sk_OSSL_CMP_ITAV_value(out, 0), ASN1_ITEM_rptr(CMP_CERTS));
    assert_non_null(certs);
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), f->e.op_issuing), 0);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1), f->e.op_root), 0);
    sk_X509_pop_free(certs, X509_free);
    /* no root key update: value absent */
    assert_null(OSSL_CMP_ITAV_get0_value(sk_OSSL_CMP_ITAV_value(out, 1)));
    /* certReqTemplate: CertReqTemplateContent whose certTemplate decodes */
    {
        ASN1_TYPE *tv = OSSL_CMP_ITAV_get0_value(sk_OSSL_CMP_ITAV_value(out, 2));
        const unsigned char *p, *q;
        long len;
        int tag, cls;
        CMP_CERTTEMPLATE *tmpl;

        assert_non_null(tv);
        assert_int_equal(tv->type, V_ASN1_SEQUENCE);
        p = ASN1_STRING_get0_data(tv->value.sequence);
        assert_int_equal(ASN1_get_object(&p, &len, &tag, &cls,
                                         ASN1_STRING_length(tv->value.sequence))
                         & 0x80, 0);
        q = p;
        assert_non_null(tmpl = d2i_CMP_CERTTEMPLATE(NULL, &q, len));
        assert_null(tmpl->publicKey);
        CMP_CERTTEMPLATE_free(tmpl);
    }
    /* crls: one CRL of the issuing CA */
    crls = itav_unpack(sk_OSSL_CMP_ITAV_value(out, 3), ASN1_ITEM_rptr(CMP_CRLS));
    assert_non_null(crls);
    assert_int_equal(sk_X509_CRL_num(crls), 1);
    assert_int_equal(X509_CRL_verify(sk_X509_CRL_value(crls, 0),
                                     X509_get0_pubkey(f->e.op_issuing)), 1);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    sk_OSSL_CMP_ITAV_pop_free(out, OSSL_CMP_ITAV_free);
    OSSL_CMP_CTX_free(ctx);
    stenv_link_reset(&f->l);
}

static void test_genm(void **state)
{
    struct fx *f = *state;
    unsigned char d1[32], d2[32];

    genm_all(f, &f->dev);
    /* the first crlStatusList made the CRL; now nothing changes (and the
     * digest does see a change: the enrollment) */
    assert_true(stenv_store_digest(&f->e, d1));
    enroll_dev1(f);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_not_equal(d1, d2, 32);
    memcpy(d1, d2, 32);
    genm_all(f, &f->op);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
}

/* A client asking for implicitConfirm does not get it (TS 33.310): the ip
 * carries confirmWaitTime and the device is enrolled only by certConf. */
static void test_ir_implicit_confirm_not_granted(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    OSSL_CMP_CTX *ctx = stenv_client(&f->l, &f->dev);
    struct stenv_rsp r;
    X509 *cert;

    assert_true(stenv_client_newkey(ctx, k, DEV1));
    assert_true(OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 1));
    cert = OSSL_CMP_exec_IR_ses(ctx);
    assert_non_null(cert);
    assert_int_equal(f->l.nreq, 2);           /* the certConf was needed */
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    OSSL_CMP_CTX_free(ctx);
    EVP_PKEY_free(k);
}

/* mac mode: the secret of a device's reference; 1 if it is consumed. */
static int mac_consumed(struct fx *f, const char *ref)
{
    struct store_device_secret *s = NULL;
    STORE_TX *tx = NULL;
    int consumed;

    assert_int_equal(store_begin_read(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_device_secret_get(tx, 0, ref, &s), STORE_OK);
    consumed = s->consumed;
    store_device_secret_free(s);
    store_rollback(tx);
    return consumed;
}

/* mac mode through OpenSSL's client: ir with PasswordBasedMac, the answer
 * MAC-protected (the client checks it with the secret), certConf, the
 * secret consumed; the same secret again is refused. */
static void test_mac_ir_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = NULL;

    assert_true(stenv_mac_secret(&f->e, DEV1, DEV1, "a shared secret"));
    f->l.alias = "mac";
    assert_true(run_op(f, OP_IR, NULL, k, DEV1, NULL, &cert));
    assert_non_null(cert);
    assert_int_equal(f->l.nreq, 2);           /* ir, certConf */
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    assert_true(mac_consumed(f, DEV1));
    stenv_link_reset(&f->l);
    assert_false(run_op(f, OP_IR, NULL, k, DEV1, NULL, NULL));
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* mac mode, implicitConfirm granted (the alias allows it): one exchange,
 * the certificate final and the secret consumed at once. */
static void test_mac_implicit_confirm(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    OSSL_CMP_CTX *ctx;
    X509 *cert;

    assert_true(stenv_mac_secret(&f->e, DEV1, "ref-ic", "another secret"));
    f->l.alias = "mac";
    ctx = stenv_client(&f->l, NULL);
    assert_non_null(ctx);
    assert_true(OSSL_CMP_CTX_set1_referenceValue(ctx,
                    (const unsigned char *)"ref-ic", 6));
    assert_true(OSSL_CMP_CTX_set1_secretValue(ctx,
                    (const unsigned char *)"another secret", 14));
    assert_true(OSSL_CMP_CTX_set1_recipient(ctx,
                    X509_get_subject_name(f->e.cmp_signer)));
    assert_true(stenv_client_newkey(ctx, k, DEV1));
    assert_true(OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 1));
    cert = OSSL_CMP_exec_IR_ses(ctx);
    assert_non_null(cert);
    assert_int_equal(f->l.nreq, 1);           /* no certConf */
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    assert_true(mac_consumed(f, "ref-ic"));
    OSSL_CMP_CTX_free(ctx);
    EVP_PKEY_free(k);
}

/* A device whose main certificate was revoked (rr) renews the additional
 * certificate it got by cr: after the kur's certConf the device is
 * enrolled again, so its current certificate must be the new one - not the
 * revoked main certificate. */
static void test_kur_after_main_cert_revoked(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *kb, *kc;
    struct stenv_id b;
    X509 *cb = NULL, *cc = NULL;
    int64_t dev_cert = 0, c_id = 0;
    unsigned char *der = NULL;
    int len;

    kb = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    kc = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    enroll_dev1(f);                                       /* cert A */
    assert_true(run_op(f, OP_CR, &f->op, kb, DEV1, NULL, &cb));   /* B */
    stenv_link_reset(&f->l);
    assert_true(run_op(f, OP_RR, &f->op, NULL, NULL, f->op.cert, NULL));
    stenv_link_reset(&f->l);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REVOKED);
    assert_true(stenv_id_set(&b, cb, kb));
    assert_true(run_op(f, OP_KUR, &b, kc, NULL, cb, &cc));         /* C */
    len = i2d_X509(cc, &der);
    assert_int_equal(stenv_cert_status(&f->e, der, (size_t)len, NULL, &c_id,
                                       NULL), STORE_CERT_VALID);
    assert_int_equal(stenv_device_state(&f->e, DEV1, &dev_cert),
                     STORE_DEV_ENROLLED);
    print_message("# device enrolled with cert id %lld; A is revoked, C is %lld\n",
                  (long long)dev_cert, (long long)c_id);
    assert_int_equal(dev_cert, c_id);
    OPENSSL_free(der);
    stenv_id_clear(&b);
    X509_free(cb);
    X509_free(cc);
    EVP_PKEY_free(kb);
    EVP_PKEY_free(kc);
}

/* Instead of its certConf the client sends an error message (it gives
 * up, RFC 9810 5.3.21): pkiConf, and the certificate counts as rejected. */
static int m_give_up(struct stenv_link *l, CMP_MSG *m, int i)
{
    if (i != 1) {
        l->no_resign = 1;
        return 1;
    }
    CMP_BODY_free(m->body);
    if ((m->body = CMP_BODY_new()) == NULL
        || (m->body->value.error = CMP_ERRORMSG_new()) == NULL)
        return 0;
    m->body->type = CMP_BODY_ERROR;
    CMP_PKISI_free(m->body->value.error->pKIStatusInfo);
    m->body->value.error->pKIStatusInfo =
        cmp_pkisi_new(CMP_STATUS_REJECTION, CMP_FAIL_BAD_CERT_TEMPLATE,
                      "device gives up");
    return m->body->value.error->pKIStatusInfo != NULL;
}

static void test_client_error_instead_of_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int reason = -1;

    f->l.mutate = m_give_up;
    f->l.resign_key = f->dev.key;
    (void)run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL);
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, &reason, NULL,
                                       NULL), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_CESSATION_OF_OPERATION);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REGISTERED);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_REJECTED);
    EVP_PKEY_free(k);
}

static int m_hashalg_sha384(struct stenv_link *l, CMP_MSG *m, int i);

/* A pvno 3 certConf with hashAlg SHA-384 (RFC 9480 2.10) is accepted. */
static void test_certconf_pvno3_hashalg(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;

    f->l.mutate = m_hashalg_sha384;
    f->l.resign_key = f->dev.key;
    (void)run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL);
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    EVP_PKEY_free(k);
}

/* Four clients enroll one device at once, each with its own context and
 * key: exactly one gets its certificate confirmed; the device holds it,
 * and every other certificate issued to the device meanwhile is revoked. */
#define RACERS 4
struct racer {
    const struct stenv_id *id;
    const char *serial;
    struct stenv_link l;
    EVP_PKEY *k;
    X509 *cert;
};

static void *race_one(void *arg)
{
    struct racer *r = arg;
    OSSL_CMP_CTX *ctx = stenv_client(&r->l, r->id);
    X509 *c;

    if (ctx != NULL && stenv_client_newkey(ctx, r->k, r->serial)
        && (c = OSSL_CMP_exec_IR_ses(ctx)) != NULL)
        r->cert = X509_dup(c);
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return NULL;
}

/* One race for device |serial| (registered, vendor identity |id|):
 * checks the invariants above and returns how many answers were internal
 * errors (HTTP 500 / systemFailure) - a lost race is no internal error. */
static int race(struct fx *f, const struct stenv_id *id, const char *serial)
{
    struct racer r[RACERS];
    pthread_t th[RACERS];
    struct store_cert_filter flt;
    struct store_cert *c = NULL;
    STORE_TX *tx = NULL;
    int64_t valid = -1, all = -1, dev_cert = 0, id_won = 0;
    int i, j, won = -1, n = 0, internal = 0;
    unsigned char *der = NULL;
    int len;

    memset(r, 0, sizeof(r));
    for (i = 0; i < RACERS; i++) {
        r[i].id = id;
        r[i].serial = serial;
        r[i].l.env = &f->e;
        assert_non_null(r[i].k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    }
    for (i = 0; i < RACERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_one, &r[i]), 0);
    for (i = 0; i < RACERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < RACERS; i++) {
        /* whatever happened, every answer was signed and verified */
        for (j = 0; j < r[i].l.nreq; j++) {
            struct stenv_rsp a;

            assert_true(r[i].l.verified[j]);
            assert_true(stenv_rsp_parse(r[i].l.rsp[j], r[i].l.rsp_len[j], &a));
            if (r[i].l.http[j] == 500
                || (a.failinfo & (1 << CMP_FAIL_SYSTEM_FAILURE)) != 0)
                internal++;
            stenv_rsp_clear(&a);
        }
        if (r[i].cert != NULL) {
            won = i;
            n++;
        }
    }
    assert_int_equal(n, 1);
    assert_true((len = i2d_X509(r[won].cert, &der)) > 0);
    assert_int_equal(stenv_cert_status(&f->e, der, (size_t)len, NULL, &id_won,
                                       NULL), STORE_CERT_VALID);
    OPENSSL_free(der);
    assert_int_equal(stenv_device_state(&f->e, serial, &dev_cert),
                     STORE_DEV_ENROLLED);
    assert_int_equal(dev_cert, id_won);
    assert_int_equal(store_begin_read(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_cert_get(tx, id_won, &c), STORE_OK);
    store_cert_filter_init(&flt);
    flt.device_id = c->device_id;
    store_cert_free(c);
    flt.status = STORE_CERT_VALID;
    assert_int_equal(store_cert_count(tx, &flt, &valid), STORE_OK);
    flt.status = -1;
    assert_int_equal(store_cert_count(tx, &flt, &all), STORE_OK);
    store_rollback(tx);
    assert_int_equal(valid, 1);
    for (i = 0; i < RACERS; i++) {
        stenv_link_reset(&r[i].l);
        X509_free(r[i].cert);
        EVP_PKEY_free(r[i].k);
    }
    if (getenv("STENV_VERBOSE") != NULL)
        print_message("# %s: %lld certificates issued, 1 valid, %d internal "
                      "errors\n", serial, (long long)all, internal);
    return internal;
}

static void test_concurrent_ir_same_device(void **state)
{
    struct fx *f = *state;

    (void)race(f, &f->dev, DEV1);
    audit_intact(f);
}

static void disable_dev1(struct fx *f);

/* A deterministic lost race: DEV1's first ir awaits its certConf; a second
 * ir reads the device (pending), and before it can write, that certConf
 * commits (done here through a second store handle holding the write lock,
 * as another server process would). The second ir must then be refused
 * (notAuthorized: the device changed state meanwhile), not fail with an
 * internal error. */
struct blocked_ir {
    struct stenv *e;
    const unsigned char *der;
    size_t len;
    unsigned char *rsp;
    size_t rsp_len;
    int http;
};

static void *deliver_blocked(void *arg)
{
    struct blocked_ir *b = arg;

    b->http = stenv_handle(b->e, NULL, b->der, b->len, &b->rsp, &b->rsp_len);
    return NULL;
}

static void test_ir_lost_race_is_refused(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k;
    struct stenv_link l2;
    struct blocked_ir b;
    struct store_conf sc;
    struct store_device *d = NULL;
    struct stenv_rsp r;
    STORE *st2 = NULL;
    STORE_TX *tx2 = NULL;
    pthread_t th;
    unsigned char tid[64];
    char path[4096], err[256];
    size_t tl;
    int64_t cert1 = 0;

    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    /* ir 1 delivered, its certConf kept back */
    f->l.capture_at = 2;
    assert_false(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, &cert1,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    tl = req_tid(f, 0, tid);
    /* ir 2, made but not delivered */
    memset(&l2, 0, sizeof(l2));
    l2.env = &f->e;
    l2.capture_at = 1;
    {
        OSSL_CMP_CTX *ctx = stenv_client(&l2, &f->dev);

        assert_true(stenv_client_newkey(ctx, k, DEV1));
        assert_null(OSSL_CMP_exec_IR_ses(ctx));
        ERR_clear_error();
        OSSL_CMP_CTX_free(ctx);
    }
    assert_int_equal(l2.nreq, 1);
    /* "another process" takes the write lock ... */
    snprintf(path, sizeof(path), "%s/cmpca.db", f->e.dir);
    store_conf_init(&sc);
    sc.path = path;
    sc.synchronous_full = 0;
    assert_int_equal(store_open(&sc, &st2, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_begin(st2, &tx2), STORE_OK);
    /* ... ir 2 reads the pending device and waits for the lock ... */
    memset(&b, 0, sizeof(b));
    b.e = &f->e;
    b.der = l2.req[0];
    b.len = l2.req_len[0];
    assert_int_equal(pthread_create(&th, NULL, deliver_blocked, &b), 0);
    usleep(500 * 1000);
    /* ... while ir 1's certConf is applied and committed */
    assert_int_equal(store_device_get_by_ident(tx2, f->e.vendor_id, DEV1, &d),
                     STORE_OK);
    assert_int_equal(d->state, STORE_DEV_PENDING);
    assert_int_equal(store_device_set_state(tx2, d->id, STORE_DEV_PENDING,
                                            STORE_DEV_ENROLLED, cert1), STORE_OK);
    assert_int_equal(store_cmp_txn_set_state(tx2, tid, tl,
                                             STORE_CMP_WAITING_CONFIRM,
                                             STORE_CMP_CONFIRMED), STORE_OK);
    assert_int_equal(store_commit(tx2), STORE_OK);
    store_device_free(d);
    assert_int_equal(pthread_join(th, NULL), 0);
    store_close(st2);
    assert_true(stenv_rsp_parse(b.rsp, b.rsp_len, &r));
    print_message("# ir 2: HTTP %d, body %s, failInfo 0x%x\n", b.http,
                  cmp_body_type_name(r.body), r.failinfo);
    assert_int_equal(b.http, 200);
    assert_int_equal(r.body, CMP_BODY_ERROR);
    assert_int_equal(r.failinfo, 1 << CMP_FAIL_NOT_AUTHORIZED);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    stenv_rsp_clear(&r);
    free(b.rsp);
    stenv_link_reset(&l2);
    EVP_PKEY_free(k);
}

/* The operator disables a device while its enrollment awaits the
 * certConf (`cmpca device disable` allows that from any state). Neither
 * the certConf nor the sweeper may enable it again. */
static void disabled_while_pending(struct fx *f, int by_sweep)
{
    EVP_PKEY *k;
    struct stenv_rsp r;
    unsigned char *rsp = NULL;
    size_t rl = 0;
    int state;

    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->l.capture_at = 2;
    assert_false(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_PENDING);
    disable_dev1(f);
    if (by_sweep) {
        assert_int_equal(server_sweep(f->e.srv, time(NULL) + 301), 1);
    } else {
        assert_int_equal(stenv_handle(&f->e, NULL, f->l.req[1], f->l.req_len[1],
                                      &rsp, &rl), 200);
        assert_true(stenv_rsp_parse(rsp, rl, &r));
        print_message("# certConf of a disabled device: %s, failInfo 0x%x\n",
                      cmp_body_type_name(r.body), r.failinfo);
        stenv_rsp_clear(&r);
        free(rsp);
    }
    state = stenv_device_state(&f->e, DEV1, NULL);
    print_message("# device state afterwards: %s\n", store_device_state_str(state));
    assert_int_equal(state, STORE_DEV_DISABLED);
    EVP_PKEY_free(k);
}

static void test_disabled_while_pending_certconf(void **state)
{
    disabled_while_pending(*state, 0);
}

static void test_disabled_while_pending_sweep(void **state)
{
    disabled_while_pending(*state, 1);
}

/* A certConf after confirm_wait_time but before any sweep: refused, and
 * the certificate is revoked there and then. */
static void test_certconf_too_late(void **state)
{
    struct stenv e;
    struct stenv_opts o = { 1, 0, 0 };
    struct stenv_link l;
    struct stenv_id dev;
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    OSSL_CMP_CTX *ctx;
    struct stenv_rsp r, late;
    unsigned char *rsp = NULL, tid[64];
    size_t rl = 0, tl;
    int reason = -1;
    char err[512];

    (void)f;
    assert_true(stenv_create(&e, NULL, &o, err, sizeof(err)));
    assert_true(stenv_device(&e, DEV1, 0, 1, &dev));
    memset(&l, 0, sizeof(l));
    l.env = &e;
    l.capture_at = 2;
    assert_non_null(ctx = stenv_client(&l, &dev));
    assert_true(stenv_client_newkey(ctx, k, DEV1));
    assert_null(OSSL_CMP_exec_IR_ses(ctx));
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    assert_int_equal(l.nreq, 2);
    assert_true(stenv_rsp_parse(l.rsp[0], l.rsp_len[0], &r));
    assert_int_equal(r.body, CMP_BODY_IP);
    sleep(2);                       /* confirm_wait_time = 1s */
    assert_int_equal(stenv_handle(&e, NULL, l.req[1], l.req_len[1], &rsp, &rl),
                     200);
    assert_true(stenv_rsp_parse(rsp, rl, &late));
    assert_int_equal(late.body, CMP_BODY_ERROR);
    assert_int_equal(late.failinfo, 1 << CMP_FAIL_BAD_REQUEST);
    assert_true(late.signed_);
    assert_int_equal(stenv_cert_status(&e, r.cert, r.cert_len, &reason, NULL,
                                       NULL), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_CESSATION_OF_OPERATION);
    assert_int_equal(stenv_device_state(&e, DEV1, NULL), STORE_DEV_REGISTERED);
    tl = stenv_msg_tid(l.req[0], l.req_len[0], tid);
    assert_int_equal(stenv_txn_state(&e, tid, tl), STORE_CMP_EXPIRED);
    /* and the sweeper finds nothing left to do */
    assert_int_equal(server_sweep(e.srv, time(NULL) + 10), 0);
    free(rsp);
    stenv_rsp_clear(&r);
    stenv_rsp_clear(&late);
    stenv_link_reset(&l);
    stenv_id_clear(&dev);
    EVP_PKEY_free(k);
    stenv_free(&e, 1);
}

/* A vendor CA added to the vendor's record while the server runs is
 * trusted only after server_reload_vendors(). */
static void test_reload_vendors(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *cak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    /* a new root of its own (one under the registered vendor root is
     * trusted already) */
    X509 *ca2 = cmp_testpki_cert(cak, "Acme Factory CA 2", NULL, NULL, 1, 365);
    struct stenv_id dev2;
    struct store_vendor *v = NULL;
    struct store_der *certs;
    STORE_TX *tx = NULL;
    struct stenv_rsp r;
    unsigned char *der = NULL;
    int len;

    assert_non_null(ca2);
    memset(&dev2, 0, sizeof(dev2));
    assert_true(EVP_PKEY_up_ref(f->dev.key));
    dev2.key = f->dev.key;
    dev2.cert = cmp_testpki_issue(f->dev.key, X509_get_subject_name(f->dev.cert),
                                  ca2, cak, 30);
    dev2.chain = cmp_testpki_stack(ca2, NULL);
    assert_non_null(dev2.cert);
    /* `cmpca vendor` adds the new factory CA to acme */
    assert_int_equal(store_begin(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_vendor_get_by_name(tx, "acme", &v), STORE_OK);
    assert_non_null(certs = realloc(v->certs, (v->ncerts + 1) * sizeof(*certs)));
    v->certs = certs;
    assert_true((len = i2d_X509(ca2, &der)) > 0);
    certs[v->ncerts].der = malloc((size_t)len);
    memcpy(certs[v->ncerts].der, der, (size_t)len);
    certs[v->ncerts++].len = (size_t)len;
    OPENSSL_free(der);
    assert_int_equal(store_vendor_update(tx, v), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    store_vendor_free(v);
    /* not yet trusted */
    assert_false(run_op(f, OP_IR, &dev2, k, DEV1, NULL, NULL));
    expect_answer(f, 0, CMP_BODY_ERROR, &r);
    assert_int_equal(r.failinfo, 1 << CMP_FAIL_SIGNER_NOT_TRUSTED);
    stenv_link_reset(&f->l);
    assert_int_equal(server_reload_vendors(f->e.srv), 1);
    if (!run_op(f, OP_IR, &dev2, k, DEV1, NULL, NULL)) {
        assert_true(stenv_rsp_parse(f->l.rsp[0], f->l.rsp_len[0], &r));
        print_message("# after reload: body %d failInfo 0x%x\n", r.body,
                      r.failinfo);
        stenv_rsp_clear(&r);
        fail();
    }
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    stenv_id_clear(&dev2);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(k);
}

/* ---- confirmation: rejection, replay, supersede, sweeper ---- */

static int reject_cb(OSSL_CMP_CTX *ctx, X509 *cert, int fail_info,
                     const char **txt)
{
    *txt = "test rejects";
    return 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
}

static void test_certconf_reject(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    OSSL_CMP_CTX *ctx = stenv_client(&f->l, &f->dev);
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int reason = -1;

    assert_true(stenv_client_newkey(ctx, k, DEV1));
    assert_true(OSSL_CMP_CTX_set_certConf_cb(ctx, reject_cb));
    assert_null(OSSL_CMP_exec_IR_ses(ctx));
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    /* the rejected certificate is revoked, the device may try again */
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, &reason, NULL,
                                       NULL), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_CESSATION_OF_OPERATION);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REGISTERED);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_REJECTED);
    stenv_link_reset(&f->l);
    enroll_dev1(f);
    EVP_PKEY_free(k);
}

/* A certConf sent again after pkiConf gets pkiConf again, and nothing
 * changes. */
static void test_certconf_replay(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char d1[32], d2[32], *rsp = NULL;
    struct stenv_rsp r;
    size_t rl = 0;

    assert_true(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    assert_true(stenv_store_digest(&f->e, d1));
    assert_int_equal(stenv_handle(&f->e, NULL, f->l.req[1], f->l.req_len[1],
                                  &rsp, &rl), 200);
    assert_true(stenv_rsp_parse(rsp, rl, &r));
    assert_int_equal(r.body, CMP_BODY_PKICONF);
    assert_true(r.signed_);
    stenv_rsp_clear(&r);
    free(rsp);
    /* and the ir itself again: its transactionID is taken */
    assert_int_equal(stenv_handle(&f->e, NULL, f->l.req[0], f->l.req_len[0],
                                  &rsp, &rl), 200);
    assert_true(stenv_rsp_parse(rsp, rl, &r));
    assert_int_equal(r.body, CMP_BODY_ERROR);
    assert_int_equal(r.failinfo, 1 << CMP_FAIL_TRANSACTION_ID_IN_USE);
    free(rsp);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
    EVP_PKEY_free(k);
}

/* An ir whose ip never got its certConf, then a new ir of the device: the
 * unconfirmed certificate is revoked and the new one issued. */
static void test_ir_supersedes_unconfirmed(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    int reason = -1;

    f->l.capture_at = 2;                /* the certConf is lost */
    assert_false(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_PENDING);
    stenv_link_reset(&f->l);
    f->l.capture_at = 0;
    enroll_dev1(f);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, &reason, NULL,
                                       NULL), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_CESSATION_OF_OPERATION);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    assert_int_equal(cert_state(f, f->op.cert, NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    EVP_PKEY_free(k);
}

/* No certConf before confirm_wait_time (300 s): server_sweep() revokes
 * the certificate, the device is registered again, a late certConf is
 * refused. */
static void test_sweep_unconfirmed(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r, late;
    unsigned char tid[64], *rsp = NULL, d1[32], d2[32];
    size_t tl, rl = 0;
    int reason = -1;
    time_t now = time(NULL);

    f->l.capture_at = 2;
    assert_false(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    expect_answer(f, 0, CMP_BODY_IP, &r);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_WAITING_CONFIRM);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_PENDING);
    /* before the deadline: nothing to do */
    assert_true(stenv_store_digest(&f->e, d1));
    assert_int_equal(server_sweep(f->e.srv, now), 0);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
    assert_int_equal(server_sweep(f->e.srv, now + 301), 1);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, &reason, NULL,
                                       NULL), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_CESSATION_OF_OPERATION);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REGISTERED);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_EXPIRED);
    assert_int_equal(server_sweep(f->e.srv, now + 302), 0);
    /* the sweeper issued the CRL with the revoked certificate */
    {
        const unsigned char *p = r.cert;
        X509 *x = d2i_X509(NULL, &p, (long)r.cert_len);

        assert_true(crl_lists(f, x));
        X509_free(x);
    }
    /* the certConf arrives at last: refused, nothing changes */
    assert_true(stenv_store_digest(&f->e, d1));
    assert_int_equal(stenv_handle(&f->e, NULL, f->l.req[1], f->l.req_len[1],
                                  &rsp, &rl), 200);
    assert_true(stenv_rsp_parse(rsp, rl, &late));
    assert_int_equal(late.body, CMP_BODY_ERROR);
    assert_int_equal(late.failinfo, 1 << CMP_FAIL_BAD_REQUEST);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
    free(rsp);
    stenv_rsp_clear(&r);
    stenv_rsp_clear(&late);
    EVP_PKEY_free(k);
}

/* ---- the ra alias: OpenSSL's client as the RA ---- */

static int m_orig(struct stenv_link *l, CMP_MSG *m, int i);

/* STENV_RA_ALL enrolls device |cn| on alias ra (ir+certConf): the device's
 * certificate and key go into f->op. */
static void ra_enroll(struct fx *f, int which, const char *cn)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *alias = f->l.alias;
    X509 *cert = NULL;

    assert_non_null(k);
    f->l.alias = "ra";
    assert_true(run_op(f, OP_IR, &f->e.ra[which], k, cn, NULL, &cert));
    f->l.alias = alias;
    assert_non_null(cert);
    stenv_id_clear(&f->op);
    assert_true(stenv_id_set(&f->op, cert, k));
    X509_free(cert);
    EVP_PKEY_free(k);
    stenv_link_reset(&f->l);
}

/* The ir that |id| would send for subject CN=|cn| (made by OpenSSL's
 * client, not delivered): *der (malloc'ed), *len. */
static void capture_ir(struct fx *f, const struct stenv_id *id, const char *cn,
                       unsigned char **der, size_t *len)
{
    struct stenv_link saved = f->l;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    assert_non_null(k);
    memset(&f->l, 0, sizeof(f->l));
    f->l.env = &f->e;
    f->l.capture_at = 1;
    assert_false(run_op(f, OP_IR, id, k, cn, NULL, NULL));
    assert_int_equal(f->l.nreq, 1);
    *der = f->l.req[0];
    *len = f->l.req_len[0];
    f->l.req[0] = NULL;
    stenv_link_reset(&f->l);
    f->l = saved;
    EVP_PKEY_free(k);
}

/* DEV1's own vendor-signed ir, for origPKIMessage. */
static void capture_orig(struct fx *f)
{
    free(f->orig);
    capture_ir(f, &f->dev, DEV1, &f->orig, &f->orig_len);
}

static CMP_MSG *der_decode(const unsigned char *der, size_t len)
{
    CMP_MSG *m = NULL;

    assert_int_equal(cmp_msg_decode(der, len, NULL, &m), CMP_R_OK);
    return m;
}

/* Replaces *der by |m| (freed), re-signed with |key| unless NULL. */
static void der_replace(unsigned char **der, size_t *len, CMP_MSG *m,
                        EVP_PKEY *key)
{
    unsigned char *enc = NULL;
    size_t n = 0;

    if (key != NULL)
        assert_true(stenv_resign(m, key, NULL));
    assert_true(cmp_msg_encode(m, &enc, &n));
    free(*der);
    assert_non_null(*der = malloc(n));
    memcpy(*der, enc, n);
    *len = n;
    OPENSSL_free(enc);
    CMP_MSG_free(m);
}

/* Delivers |der| to |alias|: the answer must be a signed |body| that
 * OpenSSL verifies, HTTP 200. Returns the answer (free()), fills |r|. */
static unsigned char *deliver(struct fx *f, const char *alias,
                              const unsigned char *der, size_t len, int body,
                              struct stenv_rsp *r, size_t *rl)
{
    unsigned char *rsp = NULL;

    assert_int_equal(stenv_handle(&f->e, alias, der, len, &rsp, rl), 200);
    assert_true(stenv_rsp_parse(rsp, *rl, r));
    if (r->body != body)
        print_message("# answer: body %s, wanted %s (failInfo 0x%x)\n",
                      cmp_body_type_name(r->body), cmp_body_type_name(body),
                      r->failinfo);
    assert_int_equal(r->body, body);
    assert_true(r->signed_);
    assert_true(stenv_rsp_verified(&f->e, rsp, *rl));
    return rsp;
}

/* The last audit row of |action| names |actor| (a prefix if it ends in
 * '*') and has "ra": |ra| in its details. */
static void audit_names_ra(struct fx *f, const char *action, const char *actor,
                           const char *ra)
{
    struct store_audit_row **rows = NULL;
    STORE_TX *tx = NULL;
    size_t n = 0, i, al = strlen(actor);
    json_t *d;
    int found = 0;

    assert_int_equal(store_begin_read(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_audit_list(tx, 0, &rows, &n), STORE_OK);
    store_rollback(tx);
    for (i = n; i-- > 0 && !found;) {
        if (strcmp(rows[i]->action, action) != 0)
            continue;
        found = 1;
        print_message("# audit %s: actor %s details %s\n", action,
                      rows[i]->actor, rows[i]->details ? rows[i]->details : "-");
        if (actor[al - 1] == '*')
            assert_memory_equal(rows[i]->actor, actor, al - 1);
        else
            assert_string_equal(rows[i]->actor, actor);
        assert_non_null(rows[i]->details);
        assert_non_null(d = json_loads(rows[i]->details, 0, NULL));
        assert_non_null(json_string_value(json_object_get(d, "ra")));
        assert_string_equal(json_string_value(json_object_get(d, "ra")), ra);
        json_decref(d);
    }
    store_audit_row_list_free(rows, n);
    assert_true(found);
}

static void name_is(X509 *cert, const char *cn)
{
    char buf[256];

    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                          NID_commonName, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, cn);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                          NID_organizationName, buf,
                                          sizeof(buf)) > 0);
    assert_string_equal(buf, "Operator");
}

static void test_ra_ir_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    X509 *cert = NULL;

    f->l.alias = "ra";
    assert_true(run_op(f, OP_IR, &f->e.ra[STENV_RA_ALL], k, "dev-7", NULL,
                       &cert));
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, NULL,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    /* subject from the request as the profile allows, key as requested */
    name_is(cert, "dev-7");
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k), 1);
    assert_int_equal(X509_check_issued(f->e.op_issuing, cert), X509_V_OK);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CONFIRMED);
    /* the allow-listed device is not involved */
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REGISTERED);
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-all:dev-7", "ra-all");
    audit_names_ra(f, "cert.confirm", "cmp:ra:ra=ra-all:*", "ra-all");
    audit_intact(f);
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* answer_repeats (on for ra aliases): an RA's byte-identical repeat of an
 * accepted ir and certConf gets the same bytes again and changes nothing
 * (a retried forward never issues twice); a changed message is handled
 * as usual (transactionIdInUse). */
static void test_ra_repeat_same_reply(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char d1[32], d2[32], nn[16], *rsp = NULL, *other = NULL;
    struct stenv_rsp r;
    size_t rl = 0, ol = 0;
    long certs;
    CMP_MSG *m;
    int i;

    f->l.alias = "ra";
    assert_true(run_op(f, OP_IR, &f->e.ra[STENV_RA_ALL], k, "dev-7", NULL,
                       NULL));
    assert_int_equal(f->l.nreq, 2);
    certs = stenv_cert_count(&f->e, -1);
    assert_true(stenv_store_digest(&f->e, d1));
    for (i = 0; i < 2; i++) {
        assert_int_equal(stenv_handle(&f->e, "ra", f->l.req[i], f->l.req_len[i],
                                      &rsp, &rl), 200);
        assert_int_equal(rl, f->l.rsp_len[i]);
        assert_memory_equal(rsp, f->l.rsp[i], rl);
        free(rsp);
        rsp = NULL;
    }
    assert_int_equal(stenv_cert_count(&f->e, -1), certs);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
    /* the same ir with another senderNonce is another request */
    m = der_decode(f->l.req[0], f->l.req_len[0]);
    memset(nn, 0x5a, sizeof(nn));
    assert_true(ASN1_OCTET_STRING_set(m->header->senderNonce, nn, sizeof(nn)));
    der_replace(&other, &ol, m, f->e.ra[STENV_RA_ALL].key);
    assert_int_equal(stenv_handle(&f->e, "ra", other, ol, &rsp, &rl), 200);
    assert_true(stenv_rsp_parse(rsp, rl, &r));
    assert_int_equal(r.body, CMP_BODY_ERROR);
    assert_int_equal(r.failinfo, 1 << CMP_FAIL_TRANSACTION_ID_IN_USE);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_cert_count(&f->e, -1), certs);
    free(rsp);
    free(other);
    EVP_PKEY_free(k);
}

/* The certConf's audit row names the device as the ir's row does
 * ("cmp:ra:ra=<name>:<device>", README "RA mode"): both by
 * device_id_attr or CN (srv_label_from_name), not by the whole subject. */
static void test_ra_certconf_audit_names_device(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    f->l.alias = "ra";
    assert_true(run_op(f, OP_IR, &f->e.ra[STENV_RA_ALL], k, "dev-7", NULL,
                       NULL));
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-all:dev-7", "ra-all");
    audit_names_ra(f, "cert.confirm", "cmp:ra:ra=ra-all:dev-7", "ra-all");
    EVP_PKEY_free(k);
}

static void test_ra_cr(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    X509 *cert = NULL;

    f->l.alias = "ra";
    assert_true(run_op(f, OP_CR, &f->e.ra[STENV_RA_ALL], k, "dev-8", NULL,
                       &cert));
    expect_answer(f, 0, CMP_BODY_CP, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, NULL,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    name_is(cert, "dev-8");
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-all:dev-8", "ra-all");
    X509_free(cert);
    EVP_PKEY_free(k);
}

static void test_ra_p10cr(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    X509 *cert = NULL;

    f->l.alias = "ra";
    assert_true(run_op(f, OP_P10CR, &f->e.ra[STENV_RA_ALL], k, "dev-9", NULL,
                       &cert));
    expect_answer(f, 0, CMP_BODY_CP, &r);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, NULL,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    name_is(cert, "dev-9");
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k), 1);
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-all:dev-9", "ra-all");
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* kur on behalf of a device: oldCertID names its certificate (OpenSSL's
 * client sets it from the old certificate); subject kept, new key, the old
 * certificate revoked (superseded) on certConf. */
static void test_ra_kur_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int reason = -1;
    X509 *cert = NULL;

    ra_enroll(f, STENV_RA_ALL, "dev-7");
    f->l.alias = "ra";
    assert_true(run_op(f, OP_KUR, &f->e.ra[STENV_RA_ALL], k2, NULL, f->op.cert,
                       &cert));
    expect_answer(f, 0, CMP_BODY_KUP, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(stenv_cert_status(&f->e, r.cert, r.cert_len, NULL, NULL,
                                       NULL), STORE_CERT_VALID);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert),
                                   X509_get_subject_name(f->op.cert)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k2), 1);
    assert_int_equal(cert_state(f, f->op.cert, &reason), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_SUPERSEDED);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CONFIRMED);
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-all:dev-7", "ra-all");
    audit_intact(f);
    X509_free(cert);
    EVP_PKEY_free(k2);
}

/* rr signed with the RA's own key naming the device's certificate (RFC
 * 9483 5.3.2). */
static void test_ra_rr(void **state)
{
    struct fx *f = *state;
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    int reason = -1;

    ra_enroll(f, STENV_RA_ALL, "dev-8");
    f->l.alias = "ra";
    assert_true(run_op(f, OP_RR, &f->e.ra[STENV_RA_ALL], NULL, NULL,
                       f->op.cert, NULL));
    assert_int_equal(f->l.nreq, 1);
    expect_answer(f, 0, CMP_BODY_RP, &r);
    assert_int_equal(r.status, 0);
    stenv_rsp_clear(&r);
    assert_int_equal(cert_state(f, f->op.cert, &reason), STORE_CERT_REVOKED);
    assert_int_equal(reason, CRL_REASON_KEY_COMPROMISE);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CLOSED);
    assert_true(crl_lists(f, f->op.cert));
    audit_intact(f);
}

/* raVerified from the RA allowed to assert it, on an alias accepting it. */
static void test_ra_raverified(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    CMP_MSG *m;
    X509 *cert = NULL;

    f->l.alias = "ra";
    f->ra_verified = 1;
    assert_true(run_op(f, OP_IR, &f->e.ra[STENV_RA_ALL], k, "dev-10", NULL,
                       &cert));
    /* it was raVerified that OpenSSL sent */
    m = der_decode(f->l.req[0], f->l.req_len[0]);
    assert_int_equal(sk_CMP_CERTREQMSG_value(m->body->value.ir, 0)->popo->type,
                     0);
    CMP_MSG_free(m);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, 0);
    stenv_rsp_clear(&r);
    name_is(cert, "dev-10");
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* The RA limited to ir may ir. */
static void test_ra_limited_ir(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    f->l.alias = "ra";
    assert_true(run_op(f, OP_IR, &f->e.ra[STENV_RA_IR], k, "dev-11", NULL,
                       NULL));
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-ir:dev-11", "ra-ir");
    EVP_PKEY_free(k);
}

/* The RA attaches the device's original ir (origPKIMessage): verified and
 * accepted. */
static void test_ra_orig_pkimessage(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    CMP_MSG *m;

    capture_orig(f);
    f->l.alias = "ra";
    f->l.arg = f;
    f->l.mutate = m_orig;
    f->l.resign_key = f->e.ra[STENV_RA_ALL].key;
    assert_true(run_op(f, OP_IR, &f->e.ra[STENV_RA_ALL], k, "dev-12", NULL,
                       NULL));
    m = der_decode(f->l.req[0], f->l.req_len[0]);
    assert_int_equal(sk_CMP_ITAV_num(m->header->generalInfo), 1);
    assert_int_equal(OBJ_obj2nid(sk_CMP_ITAV_value(m->header->generalInfo,
                                                   0)->infoType),
                     NID_id_it_origPKIMessage);
    CMP_MSG_free(m);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, 0);
    stenv_rsp_clear(&r);
    EVP_PKEY_free(k);
}

/* ---- nested: an RA forwards devices' own requests ---- */

/* A device's vendor-signed ir and its certConf, each inside a single
 * nested message by the RA: the plain inner answers; the device enrolled
 * with every 3GPP check, the audit naming RA and device. */
static void test_nested_ir_certconf(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;
    X509 *cert = NULL;

    f->l.alias = "ra";
    f->l.wrap = &f->e.ra[STENV_RA_ALL];
    assert_true(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, &cert));
    assert_int_equal(f->l.nreq, 2);
    /* delivered: nested wrappers; answered: the plain ip and pkiConf */
    assert_true(stenv_rsp_parse(f->l.req[0], f->l.req_len[0], &r));
    assert_int_equal(r.body, CMP_BODY_NESTED);
    assert_int_equal(r.nnested, 1);
    stenv_rsp_clear(&r);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, 0);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    /* the 3GPP profile made the subject from the vendor certificate */
    name_is(cert, DEV1);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CONFIRMED);
    audit_names_ra(f, "cert.issue", "cmp:ra:ra=ra-all:" DEV1, "ra-all");
    audit_intact(f);
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* The device's certConf sent past the RA (unwrapped) is refused and
 * changes nothing; the same certConf wrapped by the RA then confirms. */
static void test_nested_certconf_rewrapped(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    struct stenv_rsp r;
    unsigned char after[32], *w = NULL, *rsp;
    const unsigned char *one;
    size_t wl = 0, rl = 0;

    f->l.alias = "ra";
    f->l.wrap = &f->e.ra[STENV_RA_ALL];
    f->l.nowrap_at = 2;
    f->l.snapshot_at = 2;
    assert_false(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 1, CMP_BODY_ERROR, &r);
    assert_int_equal(r.failinfo, 1 << CMP_FAIL_NOT_AUTHORIZED);
    stenv_rsp_clear(&r);
    assert_true(stenv_store_digest(&f->e, after));
    assert_memory_equal(f->l.snap, after, 32);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_PENDING);
    one = f->l.req[1];
    assert_true(stenv_wrap(&f->e.ra[STENV_RA_ALL], 1, &one, &f->l.req_len[1], 1,
                           &w, &wl));
    rsp = deliver(f, "ra", w, wl, CMP_BODY_PKICONF, &r, &rl);
    stenv_rsp_clear(&r);
    free(rsp);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    OPENSSL_free(w);
    EVP_PKEY_free(k);
}

/* Three devices' irs in one batch, the third tampered: a nested answer
 * with ip, ip and an error (badMessageCheck) in that order, every inner
 * answer protected; two certificates issued. */
static void test_nested_batch(void **state)
{
    struct fx *f = *state;
    struct stenv_id d2, d3;
    unsigned char *in[3], *w = NULL, *rsp, *one;
    size_t inl[3], wl = 0, rl = 0, ol = 0, a, b;
    unsigned char ta[64], tb[64];
    struct stenv_rsp r;
    CMP_MSG *m;
    long before;
    int i;

    assert_true(stenv_device(&f->e, DEV2, 0, 1, &d2));
    assert_true(stenv_device(&f->e, DEV3, 0, 1, &d3));
    capture_ir(f, &f->dev, DEV1, &in[0], &inl[0]);
    capture_ir(f, &d2, DEV2, &in[1], &inl[1]);
    capture_ir(f, &d3, DEV3, &in[2], &inl[2]);
    m = der_decode(in[2], inl[2]);
    ((unsigned char *)ASN1_STRING_get0_data(m->protection))[4] ^= 0x20;
    der_replace(&in[2], &inl[2], m, NULL);
    assert_true(stenv_wrap(&f->e.ra[STENV_RA_ALL], 0,
                           (const unsigned char *const *)in, inl, 3, &w, &wl));
    before = stenv_cert_count(&f->e, -1);
    rsp = deliver(f, "ra", w, wl, CMP_BODY_NESTED, &r, &rl);
    assert_int_equal(r.nnested, 3);
    stenv_rsp_clear(&r);
    for (i = 0; i < 3; i++) {
        assert_true(stenv_nested_get(rsp, rl, i, &one, &ol));
        assert_true(stenv_rsp_parse(one, ol, &r));
        print_message("# inner answer %d: %s status %d failInfo 0x%x\n", i,
                      cmp_body_type_name(r.body), r.status, r.failinfo);
        assert_int_equal(r.body, i < 2 ? CMP_BODY_IP : CMP_BODY_ERROR);
        if (i < 2)
            assert_int_equal(r.status, 0);
        else
            assert_int_equal(r.failinfo, 1 << CMP_FAIL_BAD_MESSAGE_CHECK);
        assert_true(r.signed_);
        assert_true(stenv_rsp_verified(&f->e, one, ol));
        /* in order: answer i belongs to request i */
        a = stenv_msg_tid(one, ol, ta);
        b = stenv_msg_tid(in[i], inl[i], tb);
        assert_int_equal(a, b);
        assert_memory_equal(ta, tb, a);
        stenv_rsp_clear(&r);
        free(one);
    }
    assert_int_equal(stenv_cert_count(&f->e, -1), before + 2);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_PENDING);
    assert_int_equal(stenv_device_state(&f->e, DEV2, NULL), STORE_DEV_PENDING);
    assert_int_equal(stenv_device_state(&f->e, DEV3, NULL), STORE_DEV_REGISTERED);
    audit_intact(f);
    free(rsp);
    OPENSSL_free(w);
    for (i = 0; i < 3; i++)
        free(in[i]);
    stenv_id_clear(&d2);
    stenv_id_clear(&d3);
}

/* A refused wrapper |w|: a signed error with |bit|, nothing changed. */
static void nested_refused(struct fx *f, const char *alias,
                           const unsigned char *w, size_t wl, int bit)
{
    unsigned char d1[32], d2[32], *rsp;
    struct stenv_rsp r;
    size_t rl = 0;

    assert_true(stenv_store_digest(&f->e, d1));
    rsp = deliver(f, alias, w, wl, CMP_BODY_ERROR, &r, &rl);
    if (r.failinfo != 1 << bit)
        print_message("# failInfo 0x%x, wanted 0x%x\n", r.failinfo, 1 << bit);
    assert_int_equal(r.failinfo, 1 << bit);
    assert_int_equal(r.status, OSSL_CMP_PKISTATUS_rejection);
    stenv_rsp_clear(&r);
    free(rsp);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
}

/* A batch of DEV1's and DEV2's irs, DEV2's given DEV1's transactionID
 * (|nonce| = 0) or senderNonce (1). */
static void nested_batch_duplicate(struct fx *f, int nonce)
{
    unsigned char *in[2], *w = NULL;
    size_t inl[2], wl = 0;
    CMP_MSG *m0, *m1;
    int i;

    assert_true(stenv_device(&f->e, DEV2, 0, 1, &f->other));
    capture_ir(f, &f->dev, DEV1, &in[0], &inl[0]);
    capture_ir(f, &f->other, DEV2, &in[1], &inl[1]);
    m0 = der_decode(in[0], inl[0]);
    m1 = der_decode(in[1], inl[1]);
    if (nonce)
        assert_true(ASN1_STRING_copy(m1->header->senderNonce,
                                     m0->header->senderNonce));
    else
        assert_true(ASN1_STRING_copy(m1->header->transactionID,
                                     m0->header->transactionID));
    CMP_MSG_free(m0);
    der_replace(&in[1], &inl[1], m1, f->other.key);
    assert_true(stenv_wrap(&f->e.ra[STENV_RA_ALL], 0,
                           (const unsigned char *const *)in, inl, 2, &w, &wl));
    nested_refused(f, "ra", w, wl, nonce ? CMP_FAIL_BAD_SENDER_NONCE
                                         : CMP_FAIL_TRANSACTION_ID_IN_USE);
    OPENSSL_free(w);
    for (i = 0; i < 2; i++)
        free(in[i]);
}

static void test_nested_batch_duplicate_tid(void **state)
{
    nested_batch_duplicate(*state, 0);
}

static void test_nested_batch_duplicate_nonce(void **state)
{
    nested_batch_duplicate(*state, 1);
}

/* A nested message inside a nested message: badRequest, single or
 * batch. */
static void test_nested_depth2(void **state)
{
    struct fx *f = *state;
    unsigned char *in = NULL, *w1 = NULL, *w2 = NULL, *both[2];
    const unsigned char *p;
    size_t inl = 0, l1 = 0, l2 = 0, bl[2];

    capture_ir(f, &f->dev, DEV1, &in, &inl);
    p = in;
    assert_true(stenv_wrap(&f->e.ra[STENV_RA_ALL], 1, &p, &inl, 1, &w1, &l1));
    p = w1;
    assert_true(stenv_wrap(&f->e.ra[STENV_RA_ALL], 1, &p, &l1, 1, &w2, &l2));
    nested_refused(f, "ra", w2, l2, CMP_FAIL_BAD_REQUEST);
    OPENSSL_free(w2);
    w2 = NULL;
    both[0] = in;
    both[1] = w1;
    bl[0] = inl;
    bl[1] = l1;
    assert_true(stenv_wrap(&f->e.ra[STENV_RA_ALL], 0,
                           (const unsigned char *const *)both, bl, 2, &w2, &l2));
    nested_refused(f, "ra", w2, l2, CMP_FAIL_BAD_REQUEST);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_REGISTERED);
    free(in);
    OPENSSL_free(w1);
    OPENSSL_free(w2);
}

/* ---- refusals: one table row each ---- */

enum who { WHO_DEVICE, WHO_UNKNOWN, WHO_ROGUE, WHO_MAC, WHO_OPERATOR,
           WHO_DEV2, WHO_EXPIRED, WHO_RA };
enum prep { PREP_NONE, PREP_ENROLLED, PREP_REVOKED, PREP_OTHER_TXN,
            PREP_DISABLED, PREP_ENROLLED_DISABLED,
            PREP_RA_ENROLLED,       /* STENV_RA_ALL got RADEV a certificate
                                     * (f->op) on alias ra */
            PREP_RA_REVOKED };      /* ... and revoked it again */

struct refusal {
    const char *name;
    enum prep prep;
    enum who who;               /* who sends the session */
    enum op op;
    int at;                     /* the refused request: 0 the request,
                                 * 1 its certConf */
    stenv_mutate_fn mutate;     /* applied to request |at| only */
    const char *md;             /* its re-signing digest (NULL default) */
    int reuse_key;              /* kur: ask for the current key again */
    int fail_bit;
    const char *skip;           /* a known server bug: why (cmocka skip) */
    const char *cn;             /* ask for subject CN=cn (kur: none) */
    int old_is_vendor;          /* kur: oldCertID names the vendor cert;
                                 * rr: the vendor cert is to be revoked */
    const char *key;            /* requested key: NULL P-256, "rsa1024",
                                 * "secp256k1" */
    int body;                   /* the answer's body: 0 an error message; a
                                 * refusal of the request's content comes in
                                 * the response of its type (ip/cp/kup/rp)
                                 * with status rejection (RFC 9483 3.6.4) */
    int ends;                   /* a refused certConf of the requester: the
                                 * transaction ends, the certificate is
                                 * revoked at once and DEV1 registered
                                 * again (instead of "nothing changed") */
    const char *alias;          /* NULL: the 3gpp alias */
    int ra;                     /* WHO_RA: which (enum stenv_ra) */
    int ra_verified;            /* ask for raVerified POP (OpenSSL's
                                 * OSSL_CRMF_POPO_RAVERIFIED) */
    int wrap;                   /* 1 + enum stenv_ra: every request goes
                                 * inside a single nested message by
                                 * that RA; 0 none */
    int nowrap;                 /* ... except request |at| */
};

static ASN1_BIT_STRING *popo_sig(CMP_MSG *m)
{
    CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(m->body->value.ir, 0);

    assert_non_null(crm);
    assert_int_equal(crm->popo->type, 1);
    return crm->popo->value.signature->signature;
}

static int m_bad_pop(struct stenv_link *l, CMP_MSG *m, int i)
{
    ASN1_BIT_STRING *s;
    unsigned char *d;

    if (m->body->type == CMP_BODY_P10CR) {
        const ASN1_BIT_STRING *cs = NULL;

        X509_REQ_get0_signature(m->body->value.p10cr, &cs, NULL);
        s = (ASN1_BIT_STRING *)cs;
    } else {
        s = popo_sig(m);
    }
    d = (unsigned char *)ASN1_STRING_get0_data(s);
    d[ASN1_STRING_length(s) - 1] ^= 0x01;
    return 1;
}

static int m_raverified(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(m->body->value.ir, 0);

    CMP_POPO_free(crm->popo);
    crm->popo = CMP_POPO_new();
    crm->popo->type = 0;
    crm->popo->value.raVerified = ASN1_NULL_new();
    return crm->popo->value.raVerified != NULL;
}

static int m_certhash(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_CERTSTATUS *cs = sk_CMP_CERTSTATUS_value(m->body->value.certConf, 0);
    unsigned char *d = (unsigned char *)ASN1_STRING_get0_data(cs->certHash);

    d[0] ^= 0x80;
    return 1;
}

static int m_certconf_id(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_CERTSTATUS *cs = sk_CMP_CERTSTATUS_value(m->body->value.certConf, 0);

    return ASN1_INTEGER_set(cs->certReqId, 7);
}

static int set_random(ASN1_OCTET_STRING **os, int len)
{
    unsigned char buf[64];

    if (*os == NULL)
        *os = ASN1_OCTET_STRING_new();
    return *os != NULL && RAND_bytes(buf, len) > 0
        && ASN1_OCTET_STRING_set(*os, buf, len);
}

static int m_recipnonce(struct stenv_link *l, CMP_MSG *m, int i)
{
    return set_random(&m->header->recipNonce, 16);
}

static int m_short_nonce(struct stenv_link *l, CMP_MSG *m, int i)
{
    return set_random(&m->header->senderNonce, 8);
}

static int m_new_tid(struct stenv_link *l, CMP_MSG *m, int i)
{
    return set_random(&m->header->transactionID, 16);
}

static int m_old_tid(struct stenv_link *l, CMP_MSG *m, int i)
{
    struct fx *f = l->arg;

    return ASN1_OCTET_STRING_set(m->header->transactionID, f->saved_tid,
                                 (int)f->saved_tid_len);
}

static int m_bad_time(struct stenv_link *l, CMP_MSG *m, int i)
{
    return ASN1_GENERALIZEDTIME_set(m->header->messageTime,
                                    time(NULL) - 3600) != NULL;
}

static int m_pvno(struct stenv_link *l, CMP_MSG *m, int i)
{
    return ASN1_INTEGER_set(m->header->pvno, 5);
}

static int m_resign_only(struct stenv_link *l, CMP_MSG *m, int i)
{
    return 1;
}

static int m_flip_sig(struct stenv_link *l, CMP_MSG *m, int i)
{
    unsigned char *d = (unsigned char *)ASN1_STRING_get0_data(m->protection);

    d[ASN1_STRING_length(m->protection) / 2] ^= 0x04;
    l->no_resign = 1;
    return 1;
}

static int m_unprotect(struct stenv_link *l, CMP_MSG *m, int i)
{
    ASN1_BIT_STRING_free(m->protection);
    m->protection = NULL;
    X509_ALGOR_free(m->header->protectionAlg);
    m->header->protectionAlg = NULL;
    l->no_resign = 1;
    return 1;
}

static int m_two_reqs(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_CERTREQMSG *dup = CMP_CERTREQMSG_dup(sk_CMP_CERTREQMSG_value(m->body->value.ir, 0));

    return dup != NULL && sk_CMP_CERTREQMSG_push(m->body->value.ir, dup) > 0;
}

static int m_crm_id(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(m->body->value.ir, 0);

    return ASN1_INTEGER_set(crm->certReq->certReqId, 1);
}

/* certConf signed by another registered device: sender, senderKID,
 * extraCerts and signature all of DEV2 (a valid message of somebody else
 * for DEV1's transaction). */
static int m_other_signer(struct stenv_link *l, CMP_MSG *m, int i)
{
    struct fx *f = l->arg;
    GENERAL_NAME *gn = GENERAL_NAME_new();
    X509_NAME *n = X509_NAME_dup(X509_get_subject_name(f->other.cert));
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(f->other.cert);
    int k;

    if (gn == NULL || n == NULL || ski == NULL)
        return 0;
    GENERAL_NAME_set0_value(gn, GEN_DIRNAME, n);
    GENERAL_NAME_free(m->header->sender);
    m->header->sender = gn;
    ASN1_OCTET_STRING_free(m->header->senderKID);
    m->header->senderKID = ASN1_OCTET_STRING_dup(ski);
    sk_X509_pop_free(m->extraCerts, X509_free);
    if ((m->extraCerts = sk_X509_new_null()) == NULL
        || !X509_add_cert(m->extraCerts, f->other.cert, X509_ADD_FLAG_UP_REF))
        return 0;
    for (k = 0; k < sk_X509_num(f->other.chain); k++)
        if (!X509_add_cert(m->extraCerts, sk_X509_value(f->other.chain, k),
                           X509_ADD_FLAG_UP_REF))
            return 0;
    l->resign_key = f->other.key;
    return 1;
}

static int m_random_kid(struct stenv_link *l, CMP_MSG *m, int i)
{
    return set_random(&m->header->senderKID, 20);
}

/* The request wrapped in a nested message (for aliases in ra mode only). */
static int m_nested(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_MSG *inner = CMP_MSG_dup(m);
    CMP_BODY *b = CMP_BODY_new();

    if (inner == NULL || b == NULL
        || (b->value.nested = sk_CMP_MSG_new_null()) == NULL
        || !sk_CMP_MSG_push(b->value.nested, inner)) {
        CMP_MSG_free(inner);
        CMP_BODY_free(b);
        return 0;
    }
    b->type = CMP_BODY_NESTED;
    CMP_BODY_free(m->body);
    m->body = b;
    return 1;
}

/* pvno 3 certConf naming its hashAlg (RFC 9480 2.10) with the hash of
 * that algorithm over the certificate of answer 0. */
static int certconf_hashalg(struct stenv_link *l, CMP_MSG *m, const char *md,
                            int nid)
{
    CMP_CERTSTATUS *cs = sk_CMP_CERTSTATUS_value(m->body->value.certConf, 0);
    struct stenv_rsp r;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    int ok;

    if (!stenv_rsp_parse(l->rsp[0], l->rsp_len[0], &r) || r.cert == NULL)
        return 0;
    ok = EVP_Digest(r.cert, r.cert_len, h, &hl, EVP_get_digestbyname(md), NULL)
        && ASN1_OCTET_STRING_set(cs->certHash, h, (int)hl)
        && ASN1_INTEGER_set(m->header->pvno, 3)
        && (cs->hashAlg = X509_ALGOR_new()) != NULL
        && X509_ALGOR_set0(cs->hashAlg, OBJ_nid2obj(nid), V_ASN1_UNDEF, NULL);
    stenv_rsp_clear(&r);
    return ok;
}

static int m_hashalg_sha384(struct stenv_link *l, CMP_MSG *m, int i)
{
    if (i != 1) {
        l->no_resign = 1;
        return 1;
    }
    return certconf_hashalg(l, m, "SHA384", NID_sha384);
}

static int m_hashalg_sha1(struct stenv_link *l, CMP_MSG *m, int i)
{
    return certconf_hashalg(l, m, "SHA1", NID_sha1);
}

/* Adds origPKIMessage (id-it 15, RFC 9483 5.2.3.2) to the header: the
 * device's original ir f->orig, its signature broken if |tamper|. */
static int add_orig(struct fx *f, CMP_MSG *m, int tamper)
{
    CMP_MSG *o = NULL;
    unsigned char *enc = NULL, *buf = NULL, *p;
    size_t elen = 0;
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *t = NULL;
    CMP_ITAV *itav;
    int total, ok = 0;

    if (f->orig == NULL
        || cmp_msg_decode(f->orig, f->orig_len, NULL, &o) != CMP_R_OK)
        return 0;
    if (tamper) {
        unsigned char *d = (unsigned char *)ASN1_STRING_get0_data(o->protection);

        d[ASN1_STRING_length(o->protection) / 2] ^= 0x10;
    }
    if (!cmp_msg_encode(o, &enc, &elen))
        goto end;
    /* PKIMessages ::= SEQUENCE OF PKIMessage */
    total = ASN1_object_size(1, (int)elen, V_ASN1_SEQUENCE);
    if (total <= 0 || (buf = malloc((size_t)total)) == NULL)
        goto end;
    p = buf;
    ASN1_put_object(&p, 1, (int)elen, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, enc, elen);
    if ((seq = ASN1_STRING_new()) == NULL || !ASN1_STRING_set(seq, buf, total)
        || (t = ASN1_TYPE_new()) == NULL)
        goto end;
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    if ((itav = cmp_itav_new(NID_id_it_origPKIMessage, t)) == NULL)
        goto end;
    t = NULL;
    if (m->header->generalInfo == NULL
        && (m->header->generalInfo = sk_CMP_ITAV_new_null()) == NULL) {
        CMP_ITAV_free(itav);
        goto end;
    }
    ok = sk_CMP_ITAV_push(m->header->generalInfo, itav) > 0;
 end:
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(t);
    free(buf);
    OPENSSL_free(enc);
    CMP_MSG_free(o);
    return ok;
}

static int m_orig(struct stenv_link *l, CMP_MSG *m, int i)
{
    if (i != 0) {
        l->no_resign = 1;
        return 1;
    }
    return add_orig(l->arg, m, 0);
}

static int m_orig_bad(struct stenv_link *l, CMP_MSG *m, int i)
{
    return add_orig(l->arg, m, 1);
}

/* kur without its controls (so without oldCertID). */
static int m_no_controls(struct stenv_link *l, CMP_MSG *m, int i)
{
    CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(m->body->value.kur, 0);

    sk_CMP_ITAV_pop_free(crm->certReq->controls, CMP_ITAV_free);
    crm->certReq->controls = NULL;
    return 1;
}

/* The request goes unchanged, but wrapped by another authorised RA of
 * the alias (STENV_RA_IR) than the session's wrapper. */
static int m_wrap_other_ra(struct stenv_link *l, CMP_MSG *m, int i)
{
    struct fx *f = l->arg;

    l->wrap = &f->e.ra[STENV_RA_IR];
    l->no_resign = 1;
    return 1;
}

/* Calls the row's mutator for its request only; the others go as OpenSSL
 * made them. */
static int case_mutate(struct stenv_link *l, CMP_MSG *m, int i)
{
    struct fx *f = l->arg;

    if (i != f->rc->at) {
        l->no_resign = 1;
        return 1;
    }
    l->resign_md = f->rc->md;
    return f->rc->mutate(l, m, i);
}

#define B(x) CMP_FAIL_##x
static const struct refusal refusals[] = {
    /* the refusals README.md lists for the 3GPP alias */
    { .name = "ir_unknown_device",
      .prep = PREP_NONE, .who = WHO_UNKNOWN, .op = OP_IR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ir_wrong_vendor_ca",
      .prep = PREP_NONE, .who = WHO_ROGUE, .op = OP_IR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ir_mac_protected",
      .prep = PREP_NONE, .who = WHO_MAC, .op = OP_IR,
      .fail_bit = B(WRONG_INTEGRITY) },
    { .name = "ir_bad_pop",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_bad_pop, .fail_bit = B(BAD_POP) , .body = CMP_BODY_IP },
    { .name = "ir_raverified_pop",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_raverified, .fail_bit = B(BAD_POP) , .body = CMP_BODY_IP },
    { .name = "p10cr_bad_csr_signature",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_P10CR,
      .mutate = m_bad_pop, .fail_bit = B(BAD_POP) , .body = CMP_BODY_CP },
    { .name = "certconf_wrong_certhash",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .at = 1, .mutate = m_certhash, .fail_bit = B(BAD_CERT_ID) , .ends = 1 },
    { .name = "certconf_wrong_recipnonce",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .at = 1, .mutate = m_recipnonce, .fail_bit = B(BAD_RECIPIENT_NONCE) , .ends = 1 },
    { .name = "certconf_wrong_certreqid",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .at = 1, .mutate = m_certconf_id, .fail_bit = B(BAD_REQUEST) , .ends = 1 },
    { .name = "certconf_unknown_transaction",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .at = 1, .mutate = m_new_tid, .fail_bit = B(BAD_REQUEST) },
    { .name = "certconf_other_signer",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .at = 1, .mutate = m_other_signer, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ir_reused_transaction_id",
      .prep = PREP_OTHER_TXN, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_old_tid, .fail_bit = B(TRANSACTION_ID_IN_USE) },
    { .name = "genm_reused_transaction_id",
      .prep = PREP_OTHER_TXN, .who = WHO_DEVICE, .op = OP_GENM,
      .mutate = m_old_tid, .fail_bit = B(TRANSACTION_ID_IN_USE) },
    { .name = "ir_bad_time",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_bad_time, .fail_bit = B(BAD_TIME) },
    { .name = "ir_sha1_signature",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_resign_only, .md = "SHA1", .fail_bit = B(BAD_ALG) },
    { .name = "kur_sha1_signature",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .mutate = m_resign_only, .md = "SHA1", .fail_bit = B(BAD_ALG) },
    { .name = "kur_revoked_cert",
      .prep = PREP_REVOKED, .who = WHO_OPERATOR, .op = OP_KUR,
      .fail_bit = B(CERT_REVOKED), .body = CMP_BODY_KUP },
    /* more of the same rules */
    { .name = "ir_already_enrolled",
      .prep = PREP_ENROLLED, .who = WHO_DEVICE, .op = OP_IR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "p10cr_unknown_device",
      .prep = PREP_NONE, .who = WHO_UNKNOWN, .op = OP_P10CR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ir_two_certreqmsgs",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_two_reqs, .fail_bit = B(BAD_REQUEST) , .body = CMP_BODY_IP },
    { .name = "ir_certreqid_1",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_crm_id, .fail_bit = B(BAD_REQUEST) , .body = CMP_BODY_IP },
    { .name = "ir_unsupported_pvno",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_pvno, .fail_bit = B(UNSUPPORTED_VERSION) },
    { .name = "ir_short_sender_nonce",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_short_nonce, .fail_bit = B(BAD_SENDER_NONCE) },
    { .name = "ir_tampered_signature",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_flip_sig, .fail_bit = B(BAD_MESSAGE_CHECK) },
    { .name = "ir_unprotected",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_unprotect, .fail_bit = B(BAD_MESSAGE_CHECK) },
    { .name = "kur_same_key",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .reuse_key = 1, .fail_bit = B(BAD_CERT_TEMPLATE) , .body = CMP_BODY_KUP },
    { .name = "kur_other_subject",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .cn = "somebody else", .fail_bit = B(BAD_CERT_TEMPLATE) , .body = CMP_BODY_KUP },
    { .name = "kur_oldcertid_not_signer",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .old_is_vendor = 1, .fail_bit = B(BAD_CERT_ID) , .body = CMP_BODY_KUP },
    { .name = "kur_bad_pop",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .mutate = m_bad_pop, .fail_bit = B(BAD_POP) , .body = CMP_BODY_KUP },
    { .name = "kur_tampered_signature",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .mutate = m_flip_sig, .fail_bit = B(BAD_MESSAGE_CHECK) },
    { .name = "kur_by_vendor_cert",
      .prep = PREP_ENROLLED, .who = WHO_DEVICE, .op = OP_KUR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "cr_by_vendor_cert",
      .prep = PREP_ENROLLED, .who = WHO_DEVICE, .op = OP_CR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "rr_already_revoked",
      .prep = PREP_REVOKED, .who = WHO_OPERATOR, .op = OP_RR,
      .fail_bit = B(CERT_REVOKED) , .body = CMP_BODY_RP },
    { .name = "rr_by_vendor_cert",
      .prep = PREP_ENROLLED, .who = WHO_DEVICE, .op = OP_RR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ir_by_operator_cert",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_IR,
      .cn = DEV1, .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ir_expired_vendor_cert",
      .prep = PREP_NONE, .who = WHO_EXPIRED, .op = OP_IR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ir_disabled_device",
      .prep = PREP_DISABLED, .who = WHO_DEVICE, .op = OP_IR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "kur_disabled_device",
      .prep = PREP_ENROLLED_DISABLED, .who = WHO_OPERATOR, .op = OP_KUR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ir_rsa1024_key",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .key = "rsa1024", .fail_bit = B(BAD_CERT_TEMPLATE) , .body = CMP_BODY_IP },
    { .name = "ir_secp256k1_key",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .key = "secp256k1", .fail_bit = B(BAD_ALG) , .body = CMP_BODY_IP },
    { .name = "ir_random_sender_kid",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_random_kid, .fail_bit = B(BAD_MESSAGE_CHECK) },
    { .name = "ir_nested_in_3gpp_alias",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .mutate = m_nested, .fail_bit = B(BAD_REQUEST) },
    { .name = "certconf_hashalg_sha1",
      .prep = PREP_NONE, .who = WHO_DEVICE, .op = OP_IR,
      .at = 1, .mutate = m_hashalg_sha1, .fail_bit = B(BAD_CERT_ID) , .ends = 1 },
    { .name = "rr_other_issuer",
      .prep = PREP_ENROLLED, .who = WHO_OPERATOR, .op = OP_RR,
      .old_is_vendor = 1, .fail_bit = B(BAD_CERT_ID), .body = CMP_BODY_RP },
    { .name = "genm_wrong_vendor_ca",
      .prep = PREP_NONE, .who = WHO_ROGUE, .op = OP_GENM,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    /* the ra alias: RAs that must be refused (README "RA mode") */
    { .name = "ra_unregistered",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_UNREG, .op = OP_IR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ra_revoked_cert",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_REVOKED, .op = OP_IR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ra_disabled",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_OFF, .op = OP_IR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_other_alias",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_ELSEWHERE, .op = OP_IR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_other_profile",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_PROFILE, .op = OP_IR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_op_not_allowed_cr",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_IR, .op = OP_CR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_op_not_allowed_p10cr",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_IR, .op = OP_P10CR,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_op_not_allowed_kur",
      .alias = "ra", .prep = PREP_RA_ENROLLED, .who = WHO_RA,
      .ra = STENV_RA_IR, .op = OP_KUR, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_op_not_allowed_rr",
      .alias = "ra", .prep = PREP_RA_ENROLLED, .who = WHO_RA,
      .ra = STENV_RA_IR, .op = OP_RR, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_raverified_not_allowed",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_IR, .op = OP_IR,
      .ra_verified = 1, .fail_bit = B(BAD_POP), .body = CMP_BODY_IP },
    { .name = "ra_raverified_alias_refuses",
      .alias = "ra2", .who = WHO_RA, .ra = STENV_RA_ALL, .op = OP_IR,
      .ra_verified = 1, .fail_bit = B(BAD_POP), .body = CMP_BODY_IP },
    { .name = "ra_raverified_revoked_ra",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_REVOKED, .op = OP_IR,
      .ra_verified = 1, .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ra_bad_pop",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_ALL, .op = OP_IR,
      .mutate = m_bad_pop, .fail_bit = B(BAD_POP), .body = CMP_BODY_IP },
    { .name = "ra_tampered_signature",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_ALL, .op = OP_IR,
      .mutate = m_flip_sig, .fail_bit = B(BAD_MESSAGE_CHECK) },
    { .name = "ra_mac_protected",
      .alias = "ra", .who = WHO_MAC, .op = OP_IR,
      .fail_bit = B(WRONG_INTEGRITY) },
    { .name = "ra_device_signs_itself",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR,
      .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "ra_kur_no_oldcertid",
      .alias = "ra", .prep = PREP_RA_ENROLLED, .who = WHO_RA,
      .ra = STENV_RA_ALL, .op = OP_KUR, .mutate = m_no_controls,
      .fail_bit = B(BAD_CERT_ID), .body = CMP_BODY_KUP },
    { .name = "ra_kur_revoked_cert",
      .alias = "ra", .prep = PREP_RA_REVOKED, .who = WHO_RA,
      .ra = STENV_RA_ALL, .op = OP_KUR, .fail_bit = B(CERT_REVOKED),
      .body = CMP_BODY_KUP },
    { .name = "ra_rr_revoked_cert",
      .alias = "ra", .prep = PREP_RA_REVOKED, .who = WHO_RA,
      .ra = STENV_RA_ALL, .op = OP_RR, .fail_bit = B(CERT_REVOKED),
      .body = CMP_BODY_RP },
    { .name = "ra_rr_other_issuer",
      .alias = "ra", .prep = PREP_RA_ENROLLED, .who = WHO_RA,
      .ra = STENV_RA_ALL, .op = OP_RR, .old_is_vendor = 1,
      .fail_bit = B(BAD_CERT_ID), .body = CMP_BODY_RP },
    { .name = "ra_certconf_other_ra",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_ALL, .op = OP_IR,
      .at = 1, .mutate = m_other_signer, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "ra_orig_pkimessage_tampered",
      .alias = "ra", .who = WHO_RA, .ra = STENV_RA_ALL, .op = OP_IR,
      .mutate = m_orig_bad, .fail_bit = B(BAD_MESSAGE_CHECK) },
    /* devices' own requests forwarded by an RA in nested messages */
    { .name = "nested_by_unregistered_ra",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR,
      .wrap = 1 + STENV_RA_UNREG, .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "nested_by_ra_of_other_alias",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR,
      .wrap = 1 + STENV_RA_ELSEWHERE, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "nested_by_disabled_ra",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR,
      .wrap = 1 + STENV_RA_OFF, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "nested_by_revoked_ra",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR,
      .wrap = 1 + STENV_RA_REVOKED, .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "nested_unknown_device",
      .alias = "ra", .who = WHO_UNKNOWN, .op = OP_IR,
      .wrap = 1 + STENV_RA_ALL, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "nested_wrong_vendor_ca",
      .alias = "ra", .who = WHO_ROGUE, .op = OP_IR,
      .wrap = 1 + STENV_RA_ALL, .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "nested_inner_bad_pop",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR, .mutate = m_bad_pop,
      .wrap = 1 + STENV_RA_ALL, .fail_bit = B(BAD_POP), .body = CMP_BODY_IP },
    { .name = "nested_inner_tampered",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR, .mutate = m_flip_sig,
      .wrap = 1 + STENV_RA_ALL, .fail_bit = B(BAD_MESSAGE_CHECK) },
    { .name = "nested_certconf_unwrapped",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR, .at = 1,
      .wrap = 1 + STENV_RA_ALL, .nowrap = 1, .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "nested_certconf_by_other_ra",
      .alias = "ra", .who = WHO_DEVICE, .op = OP_IR, .at = 1,
      .mutate = m_wrap_other_ra, .wrap = 1 + STENV_RA_ALL,
      .fail_bit = B(NOT_AUTHORIZED) },
    { .name = "nested_no_inner_mode",
      .alias = "ra2", .who = WHO_DEVICE, .op = OP_IR,
      .wrap = 1 + STENV_RA_ALL, .fail_bit = B(SIGNER_NOT_TRUSTED) },
    { .name = "nested_in_3gpp_alias",
      .who = WHO_DEVICE, .op = OP_IR,
      .wrap = 1 + STENV_RA_ALL, .fail_bit = B(BAD_REQUEST) },
};
#undef B

/* The operator disables DEV1 (`cmpca device disable`). */
static void disable_dev1(struct fx *f)
{
    STORE_TX *tx = NULL;
    struct store_device *d = NULL;

    assert_int_equal(store_begin(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_device_get_by_ident(tx, f->e.vendor_id, DEV1, &d),
                     STORE_OK);
    assert_int_equal(store_device_set_state(tx, d->id, d->state,
                                            STORE_DEV_DISABLED, STORE_KEEP_CERT),
                     STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    store_device_free(d);
}

/* The number of revoked certificates in the store. */
static int count_revoked(struct fx *f)
{
    struct store_cert_filter flt;
    STORE_TX *tx = NULL;
    int64_t n = 0;

    store_cert_filter_init(&flt);
    flt.status = STORE_CERT_REVOKED;
    assert_int_equal(store_begin_read(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_cert_count(tx, &flt, &n), STORE_OK);
    store_rollback(tx);
    return (int)n;
}

/* Runs one row: the preparation, then the session with the mutation;
 * request |at| must get a signed answer (an error, or the response of the
 * request's type with status rejection) with exactly the row's failInfo
 * bit that OpenSSL verifies, and the store must be as it was before that
 * request (or, for a refused certConf, the transaction ended). */
static void run_refusal(void **state)
{
    struct fx *f = *state;
    const struct refusal *rc = f->rc;
    const struct stenv_id *id = NULL;
    struct stenv_id unknown, rogue;
    EVP_PKEY *k = rc->key == NULL ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
        : strcmp(rc->key, "rsa1024") == 0
        ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024)
        : EVP_PKEY_Q_keygen(NULL, NULL, "EC", rc->key);
    unsigned char after[32];
    struct stenv_rsp r;
    const char *cn = DEV1;

    if (rc->skip != NULL)
        skip();
    memset(&unknown, 0, sizeof(unknown));
    memset(&rogue, 0, sizeof(rogue));
    assert_non_null(k);
    if (rc->prep == PREP_ENROLLED || rc->prep == PREP_REVOKED
        || rc->prep == PREP_ENROLLED_DISABLED)
        enroll_dev1(f);
    if (rc->prep == PREP_DISABLED || rc->prep == PREP_ENROLLED_DISABLED)
        disable_dev1(f);
    if (rc->prep == PREP_REVOKED) {
        assert_true(run_op(f, OP_RR, &f->op, NULL, NULL, f->op.cert, NULL));
        stenv_link_reset(&f->l);
    }
    if (rc->prep == PREP_RA_ENROLLED || rc->prep == PREP_RA_REVOKED)
        ra_enroll(f, STENV_RA_ALL, RADEV);
    if (rc->prep == PREP_RA_REVOKED) {
        f->l.alias = "ra";
        assert_true(run_op(f, OP_RR, &f->e.ra[STENV_RA_ALL], NULL, NULL,
                           f->op.cert, NULL));
        f->l.alias = NULL;
        stenv_link_reset(&f->l);
    }
    if (rc->mutate == m_orig_bad)
        capture_orig(f);
    if (rc->prep == PREP_OTHER_TXN) {   /* DEV2 enrolls; its tid is kept */
        assert_true(stenv_device(&f->e, DEV2, 0, 1, &f->other));
        assert_true(run_op(f, OP_IR, &f->other, k, DEV2, NULL, NULL));
        f->saved_tid_len = req_tid(f, 0, f->saved_tid);
        stenv_link_reset(&f->l);
    }
    if (rc->mutate == m_other_signer && rc->who == WHO_RA) {
        /* another RA authorised on the alias */
        assert_true(stenv_id_set(&f->other, f->e.ra[STENV_RA_IR].cert,
                                 f->e.ra[STENV_RA_IR].key));
        f->other.chain = cmp_testpki_stack(f->e.op_issuing, NULL);
    } else if (rc->mutate == m_other_signer) {
        assert_true(stenv_device(&f->e, DEV2, 0, 1, &f->other));
    }
    switch (rc->who) {
    case WHO_DEVICE: id = &f->dev; break;
    case WHO_OPERATOR: id = &f->op; cn = rc->cn; break;
    case WHO_MAC: id = NULL; break;
    case WHO_DEV2: id = &f->other; break;
    case WHO_UNKNOWN:
        assert_true(stenv_device(&f->e, "SN-UNKNOWN", 0, 0, &unknown));
        id = &unknown;
        break;
    case WHO_EXPIRED:   /* DEV1's vendor certificate, expired yesterday */
        assert_true(stenv_id_set(&unknown, f->dev.cert, f->dev.key));
        X509_free(unknown.cert);
        unknown.cert = cmp_testpki_issue(f->dev.key,
                                         X509_get_subject_name(f->dev.cert),
                                         f->e.vca, f->e.vca_key, -1);
        assert_non_null(unknown.cert);
        unknown.chain = cmp_testpki_stack(f->e.vca, NULL);
        id = &unknown;
        break;
    case WHO_ROGUE:     /* a registered serial, but not our vendor's CA */
        assert_true(stenv_device(&f->e, DEV1, 1, 0, &rogue));
        id = &rogue;
        break;
    case WHO_RA:        /* an RA asks for RADEV (kur: keeps the subject) */
        id = &f->e.ra[rc->ra];
        cn = rc->op == OP_KUR ? rc->cn : rc->cn != NULL ? rc->cn : RADEV;
        break;
    }
    f->l.alias = rc->alias;
    f->l.wrap = rc->wrap != 0 ? &f->e.ra[rc->wrap - 1] : NULL;
    f->l.nowrap_at = rc->nowrap ? rc->at + 1 : 0;
    f->ra_verified = rc->ra_verified;
    f->l.arg = f;
    f->l.mutate = rc->mutate != NULL ? case_mutate : NULL;
    f->l.resign_key = id != NULL ? id->key : NULL;
    f->l.snapshot_at = rc->at + 1;
    assert_false(run_op(f, rc->op, id, rc->reuse_key ? f->op.key : k, cn,
                        rc->old_is_vendor || f->op.cert == NULL ? f->dev.cert
                                                                : f->op.cert,
                        NULL));
    /* the refused request was the last one the client sent */
    assert_int_equal(f->l.nreq, rc->at + 1);
    expect_answer(f, rc->at, rc->body != 0 ? rc->body : CMP_BODY_ERROR, &r);
    if (r.failinfo != 1 << rc->fail_bit)
        print_message("# %s: failInfo 0x%x, wanted bit %d (0x%x)\n", rc->name,
                      r.failinfo, rc->fail_bit, 1 << rc->fail_bit);
    assert_int_equal(r.failinfo, 1 << rc->fail_bit);
    assert_int_equal(r.status, OSSL_CMP_PKISTATUS_rejection);
    stenv_rsp_clear(&r);
    assert_true(stenv_store_digest(&f->e, after));
    if (rc->ends) {
        assert_memory_not_equal(f->l.snap, after, 32);
        assert_int_equal(stenv_device_state(&f->e, DEV1, NULL),
                         STORE_DEV_REGISTERED);
        assert_int_equal(count_revoked(f), 1 + RA_REVOKED_CERTS);
    } else {
        assert_memory_equal(f->l.snap, after, 32);
    }
    stenv_id_clear(&unknown);
    stenv_id_clear(&rogue);
    EVP_PKEY_free(k);
}

static int setup_refusal(void **state)
{
    const struct refusal *rc = *state;
    struct fx *f;

    if (setup(state) != 0)
        return -1;
    f = *state;
    f->rc = rc;
    return 0;
}

/* ---- transport-level rejections and undecodable input ---- */

static void test_transport_errors(void **state)
{
    static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x02, 0x00 };
    struct fx *f = *state;
    struct server_request req;
    struct server_response rsp;
    struct stenv_rsp r;
    unsigned char d1[32], d2[32];
    static const struct { int reject; const unsigned char *der; size_t len;
                          int http; } cases[] = {
        { 413, NULL, 0, 413 },
        { 415, NULL, 0, 415 },
        { 0, junk, sizeof(junk), 400 },
        { 0, junk, 2, 400 },
        { 0, NULL, 0, 400 },
    };
    size_t i;

    assert_true(stenv_store_digest(&f->e, d1));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&req, 0, sizeof(req));
        req.alias = "3gpp";
        req.der = cases[i].der;
        req.len = cases[i].len;
        req.reject_status = cases[i].reject;
        server_handle(f->e.srv, &req, &rsp);
        assert_int_equal(rsp.http_status, cases[i].http);
        /* still a signed CMP error the client can read */
        assert_true(stenv_rsp_parse(rsp.der, rsp.len, &r));
        assert_int_equal(r.body, CMP_BODY_ERROR);
        assert_true(r.signed_);
        free(rsp.der);
    }
    /* an unknown alias: 404 and no body */
    memset(&req, 0, sizeof(req));
    req.alias = "nope";
    server_handle(f->e.srv, &req, &rsp);
    assert_int_equal(rsp.http_status, 404);
    free(rsp.der);
    assert_true(stenv_store_digest(&f->e, d2));
    assert_memory_equal(d1, d2, 32);
}

/* ---- delayed delivery (alias "approve", approval = manual) ---- */

/* Decides the held request of the pollReq |m| (request 1) in the store
 * before it is delivered: l->arg is the state to set. */
static int m_decide(struct stenv_link *l, CMP_MSG *m, int i)
{
    const ASN1_OCTET_STRING *tid = m->header->transactionID;
    int to = *(const int *)l->arg;
    STORE_TX *tx = NULL;

    l->no_resign = 1;
    if (i != 1)
        return 1;
    assert_int_equal(m->body->type, CMP_BODY_POLLREQ);
    assert_int_equal(store_begin(l->env->store, &tx), STORE_OK);
    assert_int_equal(store_pending_set_state(tx, ASN1_STRING_get0_data(tid),
                                             (size_t)ASN1_STRING_length(tid),
                                             STORE_PENDING_PENDING, to,
                                             "test", "not today"), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    return 1;
}

/* OpenSSL's client polls for a held ir; approved before its first
 * pollReq arrives, the pollReq gets the ip, then certConf/pkiConf. */
static void test_poll_approved(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int to = STORE_PENDING_APPROVED;
    struct store_pending *p = NULL;
    struct stenv_rsp r;
    unsigned char tid[64];
    STORE_TX *tx = NULL;
    X509 *cert = NULL;
    size_t tl;

    f->l.alias = "approve";
    f->l.mutate = m_decide;
    f->l.arg = &to;
    assert_true(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, &cert));
    assert_non_null(cert);
    assert_int_equal(f->l.nreq, 3);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, CMP_STATUS_WAITING);
    assert_null(r.cert);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_IP, &r);
    assert_int_equal(r.status, CMP_STATUS_ACCEPTED);
    assert_non_null(r.cert);
    assert_int_equal(r.ncapubs, 1);
    stenv_rsp_clear(&r);
    expect_answer(f, 2, CMP_BODY_PKICONF, &r);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL), STORE_DEV_ENROLLED);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_CONFIRMED);
    assert_int_equal(store_begin_read(f->e.store, &tx), STORE_OK);
    assert_int_equal(store_pending_get(tx, tid, tl, &p), STORE_OK);
    assert_int_equal(p->state, STORE_PENDING_DELIVERED);
    assert_string_equal(p->decided_by, "test");
    assert_string_equal(p->profile, "device");
    store_pending_free(p);
    store_rollback(tx);
    audit_intact(f);
    X509_free(cert);
    EVP_PKEY_free(k);
}

/* Rejected before the first pollReq: an error with badRequest and the
 * reason, nothing issued, the device still registered. */
static void test_poll_rejected(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int to = STORE_PENDING_REJECTED;
    struct stenv_rsp r;
    unsigned char tid[64];
    size_t tl;

    f->l.alias = "approve";
    f->l.mutate = m_decide;
    f->l.arg = &to;
    assert_false(run_op(f, OP_IR, &f->dev, k, DEV1, NULL, NULL));
    assert_int_equal(f->l.nreq, 2);
    expect_answer(f, 0, CMP_BODY_IP, &r);
    assert_int_equal(r.status, CMP_STATUS_WAITING);
    stenv_rsp_clear(&r);
    expect_answer(f, 1, CMP_BODY_ERROR, &r);
    assert_int_equal(r.failinfo, 1 << CMP_FAIL_BAD_REQUEST);
    stenv_rsp_clear(&r);
    assert_int_equal(stenv_device_state(&f->e, DEV1, NULL),
                     STORE_DEV_REGISTERED);
    tl = req_tid(f, 0, tid);
    assert_int_equal(stenv_txn_state(&f->e, tid, tl), STORE_CMP_REJECTED);
    audit_intact(f);
    EVP_PKEY_free(k);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest fixed[] = {
        T(test_ir_certconf),
        T(test_poll_approved),
        T(test_poll_rejected),
        T(test_ir_implicit_confirm_not_granted),
        T(test_mac_ir_certconf),
        T(test_mac_implicit_confirm),
        T(test_kur_certconf),
        T(test_cr),
        T(test_kur_after_main_cert_revoked),
        T(test_p10cr),
        T(test_rr),
        T(test_genm),
        T(test_certconf_reject),
        T(test_certconf_pvno3_hashalg),
        T(test_client_error_instead_of_certconf),
        T(test_certconf_replay),
        T(test_ir_supersedes_unconfirmed),
        T(test_concurrent_ir_same_device),
        T(test_ir_lost_race_is_refused),
        T(test_disabled_while_pending_certconf),
        T(test_disabled_while_pending_sweep),
        T(test_sweep_unconfirmed),
        T(test_certconf_too_late),
        T(test_reload_vendors),
        T(test_transport_errors),
        T(test_ra_ir_certconf),
        T(test_ra_repeat_same_reply),
        T(test_ra_certconf_audit_names_device),
        T(test_ra_cr),
        T(test_ra_p10cr),
        T(test_ra_kur_certconf),
        T(test_ra_rr),
        T(test_ra_raverified),
        T(test_ra_limited_ir),
        T(test_ra_orig_pkimessage),
        T(test_nested_ir_certconf),
        T(test_nested_certconf_rewrapped),
        T(test_nested_batch),
        T(test_nested_batch_duplicate_tid),
        T(test_nested_batch_duplicate_nonce),
        T(test_nested_depth2),
    };
#undef T
    enum { NREF = sizeof(refusals) / sizeof(refusals[0]) };
    struct CMUnitTest all[sizeof(fixed) / sizeof(fixed[0]) + NREF];
    size_t i, n = 0;

    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        all[n++] = fixed[i];
    for (i = 0; i < NREF; i++) {
        struct CMUnitTest t = { refusals[i].name, run_refusal, setup_refusal,
                                teardown, (void *)&refusals[i] };

        all[n++] = t;
    }
    return _cmocka_run_group_tests("server", all, n, NULL, NULL);
}
