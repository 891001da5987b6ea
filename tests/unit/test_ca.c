/*
 * Unit tests of the CA engine: keys and key files, CA chains for every key
 * type, profiles (errors with file:line, templates), serials, issuance with
 * the store, revocation and CRL content, and a CA key on a SoftHSM2 token.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "ca/ca_profile.h"
#include "ca/ca_signer.h"
#include "conf/conf.h"
#include "store/store.h"
#include "../lib/testutil.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const key_types[] = {
    "ec:P-256", "ec:P-384", "rsa:2048", "ed25519", "ed448"
};
#define NTYPES (sizeof(key_types) / sizeof(key_types[0]))

static char *tmpdir;

static int setup(void **state)
{
    tmpdir = testutil_mkdtemp("test_ca");
    return tmpdir == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    free(tmpdir);
    return 0;
}

/* Builds a path in the temp dir. */
static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
    return buf[i];
}

/* Loads a profile from INI text. */
static CA_PROFILE *profile_from(const char *text, const char *name)
{
    struct conf *conf = NULL;
    CA_PROFILE *p = NULL;
    char err[512];

    assert_int_equal(conf_load_string("test.conf", text, &conf, err,
                                      sizeof(err)), 1);
    if (!ca_profile_load(conf, name, &p, err, sizeof(err)))
        print_error("profile: %s\n", err);
    conf_free(conf);
    return p;
}

/* Expects building |text| to fail with |needle| in the message. */
static void profile_fails(const char *text, const char *needle)
{
    struct conf *conf = NULL;
    CA_PROFILE *p = NULL;
    char err[512] = "";

    assert_int_equal(conf_load_string("test.conf", text, &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(ca_profile_load(conf, "p", &p, err, sizeof(err)), 0);
    assert_null(p);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", err, needle);
    conf_free(conf);
}

/* Makes a root CA and an issuing CA under it, both of |type|. */
static void make_chain(const char *type, CA **root, CA **sub)
{
    EVP_PKEY *rk = NULL, *sk = NULL;
    CA_SIGNER *rs, *ss;
    X509_NAME *rn = NULL, *sn = NULL;
    X509 *rc, *sc;
    STACK_OF(X509) *above = sk_X509_new_null();
    char err[512], buf[128];

    assert_int_equal(ca_key_generate(type, &rk, err, sizeof(err)), 1);
    assert_int_equal(ca_key_generate(type, &sk, err, sizeof(err)), 1);
    rs = ca_signer_new_pkey(rk, NULL);
    ss = ca_signer_new_pkey(sk, NULL);
    assert_non_null(rs);
    assert_non_null(ss);
    snprintf(buf, sizeof(buf), "/O=Test/CN=Root %s", type);
    assert_int_equal(ca_name_parse(buf, &rn, err, sizeof(err)), 1);
    snprintf(buf, sizeof(buf), "CN=Issuing %s,O=Test", type);
    assert_int_equal(ca_name_parse(buf, &sn, err, sizeof(err)), 1);
    rc = ca_make_ca_cert(rn, ca_signer_get0_pubkey(rs), 3650, NULL, rs, -1,
                         err, sizeof(err));
    assert_non_null(rc);
    *root = ca_new("root", rc, NULL, rs, err, sizeof(err));
    if (*root == NULL)
        fail_msg("root: %s", err);
    sc = ca_make_ca_cert(sn, ca_signer_get0_pubkey(ss), 1825, rc, rs, 0, err,
                         sizeof(err));
    assert_non_null(sc);
    sk_X509_push(above, rc);
    *sub = ca_new("sub", sc, above, ss, err, sizeof(err));
    if (*sub == NULL)
        fail_msg("sub: %s", err);
    sk_X509_free(above);
    X509_free(rc);
    X509_free(sc);
    X509_NAME_free(rn);
    X509_NAME_free(sn);
    ca_signer_free(rs);
    ca_signer_free(ss);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(sk);
}

/* Verifies |leaf| against |ca|'s chain (root trusted). Returns the code. */
static int verify_leaf(const CA *ca, X509 *leaf, X509_CRL *crl)
{
    X509_STORE *xs = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = ca_get0_chain(ca), *untrusted = sk_X509_new_null();
    int i, rc;

    X509_STORE_add_cert(xs, ca_get0_root(ca));
    for (i = 0; i < sk_X509_num(chain) - 1; i++)
        sk_X509_push(untrusted, sk_X509_value(chain, i));
    if (crl != NULL) {
        X509_STORE_add_crl(xs, crl);
        X509_STORE_set_flags(xs, X509_V_FLAG_CRL_CHECK);
    }
    X509_STORE_CTX_init(ctx, xs, leaf, untrusted);
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(xs);
    sk_X509_free(untrusted);
    return rc;
}

static void test_keys(void **state)
{
    size_t i;
    EVP_PKEY *k = NULL;
    CA_SIGNER *s = NULL;
    struct ca_signer_opts o = { 0 };
    struct stat sb;
    char err[512], desc[64], name[64];
    FILE *fp;

    setenv("TEST_CA_PASS", "correct horse", 1);
    setenv("TEST_CA_BAD", "wrong horse", 1);
    for (i = 0; i < NTYPES; i++) {
        assert_int_equal(ca_key_generate(key_types[i], &k, err, sizeof(err)), 1);
        assert_int_equal(ca_key_describe(k, desc, sizeof(desc)), 1);
        assert_string_equal(desc, key_types[i]);
        snprintf(name, sizeof(name), "key%zu.pem", i);
        assert_int_equal(ca_key_write(tpath(name), k, "correct horse", err,
                                      sizeof(err)), 1);
        assert_int_equal(stat(tpath(name), &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        /* O_EXCL: never overwrite */
        assert_int_equal(ca_key_write(tpath(name), k, NULL, err, sizeof(err)), 0);
        o.pass_spec = "env:TEST_CA_PASS";
        assert_int_equal(ca_signer_load(tpath(name), &o, &s, err, sizeof(err)),
                         CA_SIGNER_OK);
        assert_int_equal(EVP_PKEY_eq(ca_signer_get0_pubkey(s), k), 1);
        ca_signer_free(s);
        o.pass_spec = "env:TEST_CA_BAD";
        assert_int_equal(ca_signer_load(tpath(name), &o, &s, err, sizeof(err)),
                         CA_SIGNER_AUTH);
        assert_null(s);
        assert_non_null(strstr(err, "wrong passphrase"));
        o.pass_spec = NULL;
        assert_int_equal(ca_signer_load(tpath(name), &o, &s, err, sizeof(err)),
                         CA_SIGNER_AUTH);
        EVP_PKEY_free(k);
        k = NULL;
    }
    assert_int_equal(ca_key_generate("rsa:1024", &k, err, sizeof(err)), 0);
    assert_int_equal(ca_key_generate("dsa", &k, err, sizeof(err)), 0);
    /* plain key, missing file, garbage */
    assert_int_equal(ca_key_generate(NULL, &k, err, sizeof(err)), 1);
    assert_int_equal(ca_key_write(tpath("plain.pem"), k, NULL, err, sizeof(err)), 1);
    EVP_PKEY_free(k);
    assert_int_equal(ca_signer_load(tpath("plain.pem"), NULL, &s, err,
                                    sizeof(err)), CA_SIGNER_OK);
    assert_string_equal(ca_signer_get0_md(s), "SHA256");
    ca_signer_free(s);
    assert_int_equal(ca_signer_load(tpath("nonexistent.pem"), NULL, &s, err,
                                    sizeof(err)), CA_SIGNER_NOKEY);
    fp = fopen(tpath("garbage.pem"), "w");
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", fp);
    fclose(fp);
    assert_int_equal(ca_signer_load(tpath("garbage.pem"), NULL, &s, err,
                                    sizeof(err)), CA_SIGNER_NOKEY);
}

static void test_chains_each_type(void **state)
{
    CA_PROFILE *p = profile_from(
        "[profile dev]\n"
        "validity = 30d\n"
        "key_usage = digitalSignature,keyAgreement\n"
        "ext_key_usage = clientAuth,serverAuth\n"
        "crl_url = http://crl.example/ca.crl\n"
        "ocsp_url = http://ocsp.example/\n"
        "subject = CN=${vendor.serialNumber},O=Operator\n", "dev");
    size_t i, j;
    X509_PUBKEY *spki = NULL;

    assert_non_null(p);
    for (i = 0; i < NTYPES; i++) {
        CA *root = NULL, *sub = NULL;

        make_chain(key_types[i], &root, &sub);
        assert_int_equal(sk_X509_num(ca_get0_chain(sub)), 2);
        assert_ptr_equal(ca_get0_root(sub), sk_X509_value(ca_get0_chain(sub), 1));
        assert_int_equal(sk_X509_num(ca_get0_cmp_chain(sub)), 2);
        for (j = 0; j < NTYPES; j++) {
            EVP_PKEY *dk = NULL;
            X509 *leaf = NULL;
            X509_NAME *vendor = NULL;
            struct ca_vars vars = { 0 };
            struct ca_issue_req req = { 0 };
            char err[512], buf[256];

            assert_int_equal(ca_key_generate(key_types[j], &dk, err,
                                             sizeof(err)), 1);
            assert_int_equal(ca_name_parse("/CN=dev/serialNumber=SN-0042",
                                           &vendor, err, sizeof(err)), 1);
            vars.vendor = vendor;
            req.pubkey = dk;
            /* every other issue takes the encoded key (the fast path) */
            X509_PUBKEY_free(spki);
            spki = NULL;
            if (j % 2 == 0)
                assert_int_equal(X509_PUBKEY_set(&spki, dk), 1);
            req.spki = spki;
            req.vars = ca_vars_lookup;
            req.vars_arg = &vars;
            if (ca_issue(sub, p, &req, &leaf, err, sizeof(err)) != CA_ISSUE_OK)
                fail_msg("issue %s/%s: %s", key_types[i], key_types[j], err);
            if (spki != NULL) { /* as a peer sees it: decoded from DER */
                unsigned char *der = NULL;
                const unsigned char *dp;
                int dl = i2d_X509(leaf, &der);

                assert_null(X509_get0_pubkey(leaf));
                ERR_clear_error();
                X509_free(leaf);
                dp = der;
                leaf = d2i_X509(NULL, &dp, dl);
                OPENSSL_free(der);
                assert_non_null(leaf);
            }
            assert_int_equal(verify_leaf(sub, leaf, NULL), X509_V_OK);
            assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), dk), 1);
            X509_NAME_oneline(X509_get_subject_name(leaf), buf, sizeof(buf));
            assert_string_equal(buf, "/O=Operator/CN=SN-0042");
            assert_non_null(X509_get0_subject_key_id(leaf));
            assert_non_null(X509_get0_authority_key_id(leaf));
            assert_int_equal(ASN1_OCTET_STRING_cmp(
                                 X509_get0_authority_key_id(leaf),
                                 X509_get0_subject_key_id(ca_get0_cert(sub))), 0);
            assert_int_equal(X509_get_key_usage(leaf),
                             KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
            assert_int_equal(X509_get_extended_key_usage(leaf),
                             XKU_SSL_CLIENT | XKU_SSL_SERVER);
            assert_int_equal(X509_check_ca(leaf), 0);
            assert_true(X509_get_ext_by_NID(leaf, NID_crl_distribution_points,
                                            -1) >= 0);
            assert_true(X509_get_ext_by_NID(leaf, NID_info_access, -1) >= 0);
            X509_free(leaf);
            X509_NAME_free(vendor);
            EVP_PKEY_free(dk);
        }
        X509_PUBKEY_free(spki);
        spki = NULL;
        ca_free(root);
        ca_free(sub);
    }
    ca_profile_free(p);
}

static void test_profile_errors(void **state)
{
    profile_fails("[profile p]\nvalidity = 1d\nfoo = bar\n",
                  "test.conf:3: unknown key");
    profile_fails("[profile p]\n\nkey_usage = digitalSignature,bogus\n",
                  "test.conf:3: key_usage: unknown usage 'bogus'");
    profile_fails("[profile p]\nsubject = CN=${vendor.nope}\n",
                  "test.conf:2: subject: unknown variable ${vendor.nope}");
    profile_fails("[profile p]\nsubject = CN=${whatever}\n",
                  "unknown variable");
    profile_fails("[profile p]\nsubject = XX=1\n", "unknown attribute 'XX'");
    profile_fails("[profile p]\nkey_types = ec:P-256,dsa\n",
                  "test.conf:2: key_types: bad key type 'dsa'");
    profile_fails("[profile p]\nsan = FOO:bar\n", "test.conf:2: san:");
    profile_fails("[profile p]\nvalidity = forever\n", "test.conf:2:");
    profile_fails("[profile p]\next_key_usage = noSuchUsage\n",
                  "test.conf:2: ext_key_usage");
    profile_fails("[profile q]\n", "no [profile p]");
}

/* Variables for the template test. */
static const char *test_vars(void *arg, const char *name)
{
    if (strcmp(name, "device.id") == 0)
        return "dev-7";
    if (strcmp(name, "alias") == 0)
        return arg;
    return NULL;
}

static void test_templates(void **state)
{
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p, *p2, *pmin;
    EVP_PKEY *dk = NULL;
    X509 *leaf = NULL;
    X509_NAME *reqn = NULL;
    struct ca_issue_req req = { 0 };
    GENERAL_NAMES *san;
    char err[512], buf[256];

    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    p = profile_from("[profile t]\nsubject = /O=Op/OU=${alias}/CN=${device.id}\n"
                     "san = DNS:${device.id}.example.net,IP:10.0.0.1\n"
                     "key_types = ec:P-256\n", "t");
    assert_non_null(p);
    req.pubkey = dk;
    req.vars = test_vars;
    req.vars_arg = "3gpp";
    assert_int_equal(ca_issue(sub, p, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_OK);
    X509_NAME_oneline(X509_get_subject_name(leaf), buf, sizeof(buf));
    assert_string_equal(buf, "/O=Op/OU=3gpp/CN=dev-7");
    san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(sk_GENERAL_NAME_num(san), 2);
    GENERAL_NAMES_free(san);
    X509_free(leaf);
    /* requested subject ignored (allow_requested_subject defaults to no) */
    assert_int_equal(ca_name_parse("/CN=evil", &reqn, err, sizeof(err)), 1);
    req.subject = reqn;
    assert_int_equal(ca_issue(sub, p, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_OK);
    X509_NAME_oneline(X509_get_subject_name(leaf), buf, sizeof(buf));
    assert_string_equal(buf, "/O=Op/OU=3gpp/CN=dev-7");
    X509_free(leaf);
    /* a missing value is an issue-time error */
    req.vars_arg = NULL;
    assert_int_equal(ca_issue(sub, p, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_BAD_SUBJECT);
    assert_null(leaf);
    assert_non_null(strstr(err, "${alias}"));
    /* key type refused by key_types */
    EVP_PKEY_free(dk);
    assert_int_equal(ca_key_generate("ec:P-384", &dk, err, sizeof(err)), 1);
    req.pubkey = dk;
    req.vars_arg = "x";
    assert_int_equal(ca_issue(sub, p, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_BAD_KEY);
    /* allow_requested_subject = yes takes the requested one */
    p2 = profile_from("[profile t2]\nsubject = CN=${device.id}\n"
                      "allow_requested_subject = yes\nvalidity = 100y\n", "t2");
    assert_int_equal(ca_issue(sub, p2, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_OK);
    X509_NAME_oneline(X509_get_subject_name(leaf), buf, sizeof(buf));
    assert_string_equal(buf, "/CN=evil");
    /* validity capped at the CA's notAfter */
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(leaf),
                                       X509_get0_notAfter(ca_get0_cert(sub))),
                     0);
    X509_free(leaf);
    /* a minimal profile works with a requested subject, fails without */
    pmin = profile_from("[profile device]\nvalidity = 365d\n", "device");
    assert_non_null(pmin);
    assert_int_equal(ca_issue(sub, pmin, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_OK);
    X509_free(leaf);
    req.subject = NULL;
    assert_int_equal(ca_issue(sub, pmin, &req, &leaf, err, sizeof(err)),
                     CA_ISSUE_BAD_SUBJECT);
    ca_profile_free(p);
    ca_profile_free(p2);
    ca_profile_free(pmin);
    X509_NAME_free(reqn);
    EVP_PKEY_free(dk);
    ca_free(root);
    ca_free(sub);
}

static void test_serials(void **state)
{
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p = profile_from("[profile s]\nsubject = CN=x\n", "s");
    EVP_PKEY *dk = NULL;
    struct ca_issue_req req = { 0 };
    unsigned char seen[200][20];
    char err[512];
    int i, j;

    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    req.pubkey = dk;
    for (i = 0; i < 200; i++) {
        X509 *leaf = NULL;
        const ASN1_INTEGER *sn;
        unsigned char *der = NULL;
        int len;

        assert_int_equal(ca_issue(sub, p, &req, &leaf, err, sizeof(err)),
                         CA_ISSUE_OK);
        sn = X509_get0_serialNumber(leaf);
        assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER); /* positive */
        assert_true(ASN1_STRING_length(sn) >= 19);
        assert_true(ASN1_STRING_length(sn) <= 20);
        len = i2d_ASN1_INTEGER((ASN1_INTEGER *)sn, &der);
        assert_true(len <= 22); /* tag + length + at most 20 octets */
        assert_true(der[2] < 0x80); /* no sign octet needed */
        memset(seen[i], 0, 20);
        memcpy(seen[i], ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
        for (j = 0; j < i; j++)
            assert_memory_not_equal(seen[i], seen[j], 20);
        OPENSSL_free(der);
        X509_free(leaf);
    }
    EVP_PKEY_free(dk);
    ca_profile_free(p);
    ca_free(root);
    ca_free(sub);
}

static void test_sign_item(void **state)
{
    size_t i;

    for (i = 0; i < NTYPES; i++) {
        EVP_PKEY *k = NULL;
        CA_SIGNER *s;
        X509_ALGOR *alg = X509_ALGOR_new();
        ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
        X509_NAME *n = NULL;
        char err[256];

        assert_int_equal(ca_key_generate(key_types[i], &k, err, sizeof(err)), 1);
        s = ca_signer_new_pkey(k, NULL);
        assert_int_equal(ca_name_parse("/CN=data", &n, err, sizeof(err)), 1);
        assert_int_equal(ca_signer_sign_item(s, ASN1_ITEM_rptr(X509_NAME), alg,
                                             NULL, sig, n), 1);
        assert_int_equal(ASN1_item_verify(ASN1_ITEM_rptr(X509_NAME), alg, sig,
                                          n, k), 1);
        if (strcmp(key_types[i], "ec:P-384") == 0)
            assert_string_equal(ca_signer_get0_md(s), "SHA384");
        if (strncmp(key_types[i], "ed", 2) == 0)
            assert_null(ca_signer_get0_md(s));
        if (strcmp(key_types[i], "rsa:2048") == 0) {
            assert_int_equal(ca_signer_set_md(s, "SHA512"), 1);
            assert_int_equal(ca_signer_set_md(s, "SHA1"), 0);
        }
        X509_NAME_free(n);
        X509_ALGOR_free(alg);
        ASN1_BIT_STRING_free(sig);
        ca_signer_free(s);
        EVP_PKEY_free(k);
    }
}

/* Thread body: issues certificates concurrently from one CA. */
struct thr { CA *ca; CA_PROFILE *p; EVP_PKEY *k; int ok; };

static void *thr_issue(void *arg)
{
    struct thr *t = arg;
    struct ca_issue_req req = { 0 };
    char err[256];
    int i;

    req.pubkey = t->k;
    t->ok = 1;
    for (i = 0; i < 200; i++) {
        X509 *x = NULL;

        if (ca_issue(t->ca, t->p, &req, &x, err, sizeof(err)) != CA_ISSUE_OK
            || verify_leaf(t->ca, x, NULL) != X509_V_OK)
            t->ok = 0;
        X509_free(x);
    }
    return NULL;
}

static void test_threads(void **state)
{
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p = profile_from("[profile s]\nsubject = CN=x\n", "s");
    struct thr t[4];
    pthread_t th[4];
    EVP_PKEY *k = NULL;
    char err[256];
    int i;

    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate(NULL, &k, err, sizeof(err)), 1);
    for (i = 0; i < 4; i++) {
        t[i].ca = sub;
        t[i].p = p;
        t[i].k = k;
        pthread_create(&th[i], NULL, thr_issue, &t[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].ok, 1);
    }
    EVP_PKEY_free(k);
    ca_profile_free(p);
    ca_free(root);
    ca_free(sub);
}

/* Opens a fresh store in the temp dir. */
static STORE *open_store(const char *name)
{
    struct store_conf sc;
    STORE *st = NULL;
    char err[512];

    store_conf_init(&sc);
    sc.path = tpath(name);
    sc.synchronous_full = 0;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK)
        fail_msg("store: %s", err);
    return st;
}

static void test_store_issue_revoke_crl(void **state)
{
    STORE *st = open_store("ca.db");
    STORE_TX *tx = NULL;
    EVP_PKEY *rk = NULL, *dk = NULL;
    X509_NAME *rn = NULL;
    X509 *rc, *leaf[3] = { NULL, NULL, NULL };
    CA_SIGNER *rs;
    CA *ca = NULL;
    CA_PROFILE *p = profile_from("[profile d]\nsubject = CN=${device.id}\n", "d");
    struct conf *conf = NULL;
    struct ca_issue_req req = { 0 };
    X509_CRL *crl = NULL;
    STACK_OF(X509_REVOKED) *revs;
    ASN1_INTEGER *num;
    ASN1_ENUMERATED *reason;
    int64_t id = 0, cid[3];
    char err[512], confbuf[1024];
    int i, crit;

    setenv("TEST_CA_PASS", "correct horse", 1);
    assert_int_equal(ca_key_generate("ec:P-256", &rk, err, sizeof(err)), 1);
    assert_int_equal(ca_key_write(tpath("store-root.pem"), rk, "correct horse",
                                  err, sizeof(err)), 1);
    rs = ca_signer_new_pkey(rk, NULL);
    assert_int_equal(ca_name_parse("/CN=Store Root", &rn, err, sizeof(err)), 1);
    rc = ca_make_ca_cert(rn, rk, 365, NULL, rs, -1, err, sizeof(err));
    assert_non_null(rc);
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(ca_record_insert(tx, "root", rc, NULL,
                                      tpath("store-root.pem"), "test", &id),
                     STORE_OK);
    assert_int_equal(ca_record_insert(tx, "root", rc, NULL, "x", "test", NULL),
                     STORE_EXISTS);
    assert_int_equal(store_commit(tx), STORE_OK);

    /* wrong passphrase in the config: CA_LOAD_AUTH; right one loads */
    setenv("TEST_CA_BAD", "wrong horse", 1);
    assert_int_equal(conf_load_string("c.conf", "[ca root]\nkey_pass = env:TEST_CA_BAD\n",
                                      &conf, err, sizeof(err)), 1);
    assert_int_equal(ca_load_ex(conf, st, "root", NULL, &ca, err, sizeof(err)),
                     CA_LOAD_AUTH);
    assert_non_null(strstr(err, "wrong passphrase"));
    conf_free(conf);
    assert_int_equal(ca_load_ex(NULL, st, "nope", NULL, &ca, err, sizeof(err)),
                     CA_LOAD_NOTFOUND);
    snprintf(confbuf, sizeof(confbuf),
             "[ca root]\nkey_pass = env:TEST_CA_PASS\ncrl_validity = 2d\n");
    assert_int_equal(conf_load_string("c.conf", confbuf, &conf, err,
                                      sizeof(err)), 1);
    if (!ca_load(conf, st, "root", &ca, err, sizeof(err)))
        fail_msg("load: %s", err);
    assert_int_equal(ca_get_crl_validity(ca), 2 * 86400);
    assert_ptr_equal(ca_get0_cmp_signer_cert(ca), ca_get0_cert(ca));

    /* issue three certificates into the store */
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    req.pubkey = dk;
    req.vars = test_vars;
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    for (i = 0; i < 3; i++)
        assert_int_equal(ca_issue_store(ca, p, &req, tx, 0, &leaf[i], &cid[i],
                                        err, sizeof(err)), CA_ISSUE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);

    /* revoke two, one of them twice */
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(ca_revoke(ca, tx, cid[0], 1, 0, "test", err, sizeof(err)),
                     CA_REVOKE_OK);
    assert_int_equal(ca_revoke(ca, tx, cid[0], 1, 0, "test", err, sizeof(err)),
                     CA_REVOKE_ALREADY);
    {
        const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf[2]);

        assert_int_equal(ca_revoke_serial(ca, tx, ASN1_STRING_get0_data(sn),
                                          (size_t)ASN1_STRING_length(sn), 0, 0,
                                          "test", err, sizeof(err)),
                         CA_REVOKE_OK);
    }
    assert_int_equal(ca_revoke(ca, tx, 999999, 1, 0, "test", err, sizeof(err)),
                     CA_REVOKE_NOTFOUND);
    assert_int_equal(ca_crl_generate(ca, tx, 0, &crl, err, sizeof(err)), 1);
    assert_int_equal(store_commit(tx), STORE_OK);

    /* CRL content */
    assert_int_equal(X509_CRL_get_version(crl), 1);
    assert_int_equal(X509_CRL_verify(crl, rk), 1);
    revs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(revs), 2);
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 1);
    ASN1_INTEGER_free(num);
    assert_true(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) >= 0);
    assert_int_equal(ASN1_TIME_diff(&i, &crit, X509_CRL_get0_lastUpdate(crl),
                                    X509_CRL_get0_nextUpdate(crl)), 1);
    assert_int_equal(i, 2);
    for (i = 0; i < 2; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);

        reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
        if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(r),
                             X509_get0_serialNumber(leaf[0])) == 0) {
            assert_non_null(reason);
            assert_int_equal(ASN1_ENUMERATED_get(reason), 1);
        } else {
            assert_null(reason); /* unspecified is omitted */
        }
        ASN1_ENUMERATED_free(reason);
    }
    assert_int_equal(verify_leaf(ca, leaf[0], crl), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(verify_leaf(ca, leaf[1], crl), X509_V_OK);
    X509_CRL_free(crl);
    /* the next CRL gets number 2 */
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(ca_crl_generate(ca, tx, 0, &crl, err, sizeof(err)), 1);
    assert_int_equal(store_commit(tx), STORE_OK);
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    assert_int_equal(ASN1_INTEGER_get(num), 2);
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);

    /* a separate CMP signer, reloaded with signer_key_pass */
    {
        EVP_PKEY *sk = NULL;
        X509_NAME *sn = NULL;
        X509 *sc;
        CA *ca2 = NULL;
        struct conf *conf2 = NULL;

        assert_int_equal(ca_key_generate("ec:P-256", &sk, err, sizeof(err)), 1);
        assert_int_equal(ca_key_write(tpath("signer.pem"), sk, "signer pass",
                                      err, sizeof(err)), 1);
        assert_int_equal(ca_name_parse("/CN=CMP signer", &sn, err, sizeof(err)), 1);
        sc = ca_make_cmp_signer_cert(ca, sn, sk, 30, err, sizeof(err));
        assert_non_null(sc);
        assert_true(X509_get_ext_by_NID(sc, NID_ext_key_usage, -1) >= 0);
        assert_int_equal(store_begin(st, &tx), STORE_OK);
        assert_int_equal(ca_record_set_cmp_signer(tx, ca, sc, tpath("signer.pem"),
                                                  "test"), STORE_OK);
        assert_int_equal(store_commit(tx), STORE_OK);
        setenv("TEST_SIGNER_PASS", "signer pass", 1);
        assert_int_equal(conf_load_string("c2.conf", "[ca root]\n"
                                          "key_pass = env:TEST_CA_PASS\n"
                                          "signer_key_pass = env:TEST_SIGNER_PASS\n",
                                          &conf2, err, sizeof(err)), 1);
        if (!ca_load(conf2, st, "root", &ca2, err, sizeof(err)))
            fail_msg("load with signer: %s", err);
        assert_int_equal(ca_has_separate_cmp_signer(ca2), 1);
        assert_int_equal(X509_cmp(ca_get0_cmp_signer_cert(ca2), sc), 0);
        assert_int_equal(sk_X509_num(ca_get0_cmp_chain(ca2)), 2);
        assert_ptr_not_equal(ca_get0_cmp_signer(ca2), ca_get0_signer(ca2));
        assert_int_equal(EVP_PKEY_eq(ca_signer_get0_pubkey(ca_get0_cmp_signer(ca2)),
                                     sk), 1);
        ca_free(ca2);
        conf_free(conf2);
        /* wrong signer passphrase: the load fails with AUTH */
        setenv("TEST_SIGNER_PASS", "nope", 1);
        assert_int_equal(conf_load_string("c2.conf", "[ca root]\n"
                                          "key_pass = env:TEST_CA_PASS\n"
                                          "signer_key_pass = env:TEST_SIGNER_PASS\n",
                                          &conf2, err, sizeof(err)), 1);
        assert_int_equal(ca_load_ex(conf2, st, "root", NULL, &ca2, err,
                                    sizeof(err)), CA_LOAD_AUTH);
        conf_free(conf2);
        X509_free(sc);
        X509_NAME_free(sn);
        EVP_PKEY_free(sk);
    }

    for (i = 0; i < 3; i++)
        X509_free(leaf[i]);
    ca_free(ca);
    ca_profile_free(p);
    conf_free(conf);
    X509_free(rc);
    X509_NAME_free(rn);
    ca_signer_free(rs);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(dk);
    store_close(st);
}

/* Runs a shell command quietly; returns its exit status. */
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void test_pkcs11(void **state)
{
    const char *module = "/usr/lib/softhsm/libsofthsm2.so";
    char dir[600], conf[700], err[512], pinfile[700];
    struct ca_signer_opts o = { 0 };
    CA_SIGNER *s = NULL;
    CA *ca = NULL, *root = NULL, *sub = NULL;
    CA_PROFILE *p = profile_from("[profile s]\nsubject = CN=tok\n", "s");
    X509_NAME *n = NULL;
    X509 *c, *leaf = NULL;
    EVP_PKEY *dk = NULL;
    struct ca_issue_req req = { 0 };
    FILE *fp;

    if (access(module, R_OK) != 0 || run("command -v softhsm2-util >/dev/null "
                                         "&& command -v pkcs11-tool >/dev/null") != 0)
        skip();
    snprintf(dir, sizeof(dir), "%s/tokens", tmpdir);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    fp = fopen(conf, "w");
    fprintf(fp, "directories.tokendir = %s\nobjectstore.backend = file\n"
            "log.level = ERROR\n", dir);
    fclose(fp);
    setenv("SOFTHSM2_CONF", conf, 1);
    assert_int_equal(run("softhsm2-util --init-token --free --label cmpca "
                         "--pin 1234 --so-pin 5678 >/dev/null"), 0);
    assert_int_equal(run("pkcs11-tool --module %s --token-label cmpca "
                         "--keypairgen --key-type EC:prime256v1 --id 01 "
                         "--label ca --login --pin 1234 >/dev/null 2>&1",
                         module), 0);
    snprintf(pinfile, sizeof(pinfile), "file:%s/pin", tmpdir);
    fp = fopen(pinfile + 5, "w");
    fputs("1234\n", fp);
    fclose(fp);

    /* wrong PIN fails cleanly with AUTH */
    setenv("TEST_PIN_BAD", "9999", 1);
    o.pass_spec = "env:TEST_PIN_BAD";
    o.pkcs11_module = module;
    assert_int_equal(ca_signer_load("pkcs11:token=cmpca;object=ca;type=private",
                                    &o, &s, err, sizeof(err)), CA_SIGNER_AUTH);
    assert_null(s);
    /* no such key */
    o.pass_spec = pinfile;
    assert_int_equal(ca_signer_load("pkcs11:token=cmpca;object=nokey;type=private",
                                    &o, &s, err, sizeof(err)), CA_SIGNER_NOKEY);
    /* the right PIN: create a root CA on the token and issue */
    assert_int_equal(ca_signer_load("pkcs11:token=cmpca;object=ca;type=private",
                                    &o, &s, err, sizeof(err)), CA_SIGNER_OK);
    assert_int_equal(ca_signer_is_pkcs11(s), 1);
    assert_int_equal(ca_name_parse("/CN=Token Root", &n, err, sizeof(err)), 1);
    c = ca_make_ca_cert(n, ca_signer_get0_pubkey(s), 365, NULL, s, -1, err,
                        sizeof(err));
    assert_non_null(c);
    ca = ca_new("tok", c, NULL, s, err, sizeof(err));
    if (ca == NULL)
        fail_msg("token CA: %s", err);
    assert_int_equal(ca_key_generate("ed25519", &dk, err, sizeof(err)), 1);
    req.pubkey = dk;
    assert_int_equal(ca_issue(ca, p, &req, &leaf, err, sizeof(err)), CA_ISSUE_OK);
    assert_int_equal(verify_leaf(ca, leaf, NULL), X509_V_OK);
    /* a software key does not match the token CA's certificate */
    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_signer_matches_cert(ca_get0_signer(sub), c), 0);
    ca_free(root);
    ca_free(sub);
    X509_free(leaf);
    X509_free(c);
    X509_NAME_free(n);
    EVP_PKEY_free(dk);
    ca_free(ca);
    ca_signer_free(s);
    ca_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_chains_each_type),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_serials),
        cmocka_unit_test(test_sign_item),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_store_issue_revoke_crl),
        cmocka_unit_test(test_pkcs11),
    };

    return cmocka_run_group_tests_name("ca", tests, setup, teardown);
}
