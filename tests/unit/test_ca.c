/*
 * Unit tests of the CA engine: keys and key files, CA chains for every key
 * type, profiles (errors with file:line, templates), serials, issuance with
 * the store, revocation and CRL content, a CA key on a SoftHSM2 token, and
 * ca_issue_der() against ca_issue() byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ca/ca.h"
#include "ca/ca_rollover.h"
#include "ca/ca_key.h"
#include "ca/ca_profile.h"
#include "ca/ca_signer.h"
#include "conf/conf.h"
#include "store/store.h"
#include "util/x509_der.h"
#include "../lib/testutil.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Generates a key of |type|: what ca_key_generate() knows, plus
 * "rsa-pss:BITS" (an RSASSA-PSS key: the signer then signs with PSS). */
static int gen_key(const char *type, EVP_PKEY **out, char *err, size_t errlen)
{
    if (strncmp(type, "rsa-pss:", 8) == 0) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
        int ok;

        *out = NULL;
        ok = c != NULL && EVP_PKEY_keygen_init(c) > 0
            && EVP_PKEY_CTX_set_rsa_keygen_bits(c, atoi(type + 8)) > 0
            && EVP_PKEY_generate(c, out) > 0;
        EVP_PKEY_CTX_free(c);
        return ok;
    }
    return ca_key_generate(type, out, err, errlen);
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

    assert_int_equal(gen_key(type, &rk, err, sizeof(err)), 1);
    assert_int_equal(gen_key(type, &sk, err, sizeof(err)), 1);
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
/* Issuance from several threads at once (the server's handlers share a
 * CA): |der| picks ca_issue_der(), else ca_issue(). Every certificate
 * verifies and no serial repeats across threads. */
struct thr {
    CA *ca;
    CA_PROFILE *p;
    EVP_PKEY *k;
    int der;
    unsigned char serials[100][20];
    int ok;
};

static void *thr_issue(void *arg)
{
    struct thr *t = arg;
    struct ca_issue_req req = { 0 };
    X509_PUBKEY *spki = NULL;
    const ASN1_INTEGER *sn;
    char err[256];
    int i;

    t->ok = !t->der || X509_PUBKEY_set(&spki, t->k);
    req.pubkey = t->k;
    req.spki = spki;
    for (i = 0; i < 100 && t->ok; i++) {
        struct store_cert rec;
        X509 *x = NULL;

        memset(t->serials[i], 0, 20);
        if (t->der) {
            if (ca_issue_der(t->ca, t->p, &req, 0, &rec, err, sizeof(err))
                != CA_ISSUE_OK) {
                t->ok = 0;
                break;
            }
            memcpy(t->serials[i] + 20 - rec.serial_len, rec.serial,
                   rec.serial_len);
            x = x509_der_get1(rec.der, rec.der_len);
            ca_store_cert_clear(&rec);
        } else if (ca_issue(t->ca, t->p, &req, &x, err, sizeof(err))
                   == CA_ISSUE_OK) {
            sn = X509_get0_serialNumber(x);
            memcpy(t->serials[i] + 20 - ASN1_STRING_length(sn),
                   ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
        }
        if (x == NULL || verify_leaf(t->ca, x, NULL) != X509_V_OK)
            t->ok = 0;
        X509_free(x);
    }
    X509_PUBKEY_free(spki);
    return NULL;
}

static int cmp20(const void *a, const void *b)
{
    return memcmp(a, b, 20);
}

static void threads_case(int der)
{
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p = profile_from("[profile s]\nsubject = CN=x\n", "s");
    static struct thr t[4];
    unsigned char (*all)[20] = malloc(sizeof(t[0].serials) * 4);
    pthread_t th[4];
    EVP_PKEY *k = NULL;
    char err[256];
    int i;

    assert_non_null(all);
    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate(NULL, &k, err, sizeof(err)), 1);
    for (i = 0; i < 4; i++) {
        t[i].ca = sub;
        t[i].p = p;
        t[i].k = k;
        t[i].der = der;
        pthread_create(&th[i], NULL, thr_issue, &t[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].ok, 1);
        memcpy(all[i * 100], t[i].serials, sizeof(t[i].serials));
    }
    qsort(all, 400, 20, cmp20);
    for (i = 1; i < 400; i++)
        assert_memory_not_equal(all[i - 1], all[i], 20);
    free(all);
    EVP_PKEY_free(k);
    ca_profile_free(p);
    ca_free(root);
    ca_free(sub);
}

static void test_threads(void **state)
{
    threads_case(0);
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

    /* certificateHold and removeFromCRL (RFC 5280 5.3.1): leaf[1] held,
     * listed with certificateHold, released (valid, off the CRL, which
     * never carries removeFromCRL); release of a valid or finally revoked
     * certificate refused */
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(ca_revoke(ca, tx, cid[1], CA_REASON_REMOVE, 0, "test",
                               err, sizeof(err)), CA_REVOKE_NOT_HELD);
    assert_non_null(strstr(err, "not on hold"));
    assert_int_equal(ca_revoke(ca, tx, cid[1], CA_REASON_HOLD, 0, "test", err,
                               sizeof(err)), CA_REVOKE_OK);
    assert_int_equal(ca_revoke(ca, tx, cid[1], CA_REASON_HOLD, 0, "test", err,
                               sizeof(err)), CA_REVOKE_ALREADY);
    assert_non_null(strstr(err, "on hold"));
    assert_int_equal(ca_crl_generate(ca, tx, 0, &crl, err, sizeof(err)), 1);
    assert_int_equal(verify_leaf(ca, leaf[1], crl), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
    X509_CRL_free(crl);
    assert_int_equal(ca_revoke(ca, tx, cid[1], CA_REASON_REMOVE, 0, "test",
                               err, sizeof(err)), CA_REVOKE_OK);
    assert_int_equal(ca_crl_generate(ca, tx, 0, &crl, err, sizeof(err)), 1);
    assert_int_equal(verify_leaf(ca, leaf[1], crl), X509_V_OK);
    revs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(revs), 2);
    for (i = 0; i < sk_X509_REVOKED_num(revs); i++) {
        reason = X509_REVOKED_get_ext_d2i(sk_X509_REVOKED_value(revs, i),
                                          NID_crl_reason, &crit, NULL);
        assert_true(reason == NULL || ASN1_ENUMERATED_get(reason) != 8);
        ASN1_ENUMERATED_free(reason);
    }
    X509_CRL_free(crl);
    assert_int_equal(ca_revoke(ca, tx, cid[0], CA_REASON_REMOVE, 0, "test",
                               err, sizeof(err)), CA_REVOKE_ALREADY);
    assert_int_equal(ca_revoke(ca, tx, cid[1], 7, 0, "test", err, sizeof(err)),
                     CA_REVOKE_ERROR);
    /* on hold, then superseded: the hold becomes the revocation */
    assert_int_equal(ca_revoke(ca, tx, cid[1], CA_REASON_HOLD, 0, "test", err,
                               sizeof(err)), CA_REVOKE_OK);
    assert_int_equal(ca_revoke(ca, tx, cid[1], 4, 0, "test", err, sizeof(err)),
                     CA_REVOKE_OK);
    assert_int_equal(ca_revoke(ca, tx, cid[1], CA_REASON_REMOVE, 0, "test",
                               err, sizeof(err)), CA_REVOKE_ALREADY);
    store_rollback(tx);
    /* RFC 5280 3.3: a revoked certificate leaves the CRL once it expired,
     * and stays queryable in the store (status revoked) */
    {
        struct store_cert *rec = NULL;
        struct tm tm;
        time_t na;

        na = 0;
        for (i = 0; i < 3; i++) {       /* the latest notAfter of the three */
            assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(leaf[i]), &tm),
                             1);
            if (timegm(&tm) > na)
                na = timegm(&tm);
        }
        assert_int_equal(store_begin(st, &tx), STORE_OK);
        /* the day before, both are listed */
        assert_int_equal(ca_crl_generate(ca, tx, na - 86400, &crl, err,
                                         sizeof(err)), 1);
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
        X509_CRL_free(crl);
        assert_int_equal(ca_crl_generate(ca, tx, na + 1, &crl, err,
                                         sizeof(err)), 1);
        /* no revokedCertificates at all (OpenSSL: NULL stack, -1) */
        assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
        assert_int_equal(X509_CRL_verify(crl, rk), 1);
        X509_CRL_free(crl);
        assert_int_equal(store_commit(tx), STORE_OK);
        assert_int_equal(store_begin_read(st, &tx), STORE_OK);
        for (i = 0; i < 3; i++) {
            assert_int_equal(store_cert_get(tx, cid[i], &rec), STORE_OK);
            assert_true(rec->not_after <= (int64_t)na);
            assert_int_equal(rec->status, i == 1 ? STORE_CERT_VALID
                                                 : STORE_CERT_REVOKED);
            store_cert_free(rec);
            rec = NULL;
        }
        store_rollback(tx);
    }

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

/* ------------------------------------------------------------------ */
/* ca_issue_der(): the same certificate as ca_issue(), without an X509  */

/* Template variables from a NULL-terminated name, value, name, ... list. */
static const char *kv_lookup(void *arg, const char *name)
{
    const char *const *p = arg;

    for (; p != NULL && p[0] != NULL; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

/* Finds the TBSCertificate TLV inside Certificate |der|, checking the outer
 * definite length covers the input exactly. */
static void tbs_of(const unsigned char *der, size_t len,
                   const unsigned char **tbs, size_t *tbslen)
{
    const unsigned char *p = der, *start;
    long n;
    int tag, xclass;

    assert_int_equal(ASN1_get_object(&p, &n, &tag, &xclass, (long)len) & 0x80,
                     0);
    assert_int_equal(tag, V_ASN1_SEQUENCE);
    assert_true(p + n == der + len);
    start = p;
    assert_int_equal(ASN1_get_object(&p, &n, &tag, &xclass,
                                     (long)(der + len - p)) & 0x80, 0);
    assert_int_equal(tag, V_ASN1_SEQUENCE);
    *tbs = start;
    *tbslen = (size_t)(p - start) + (size_t)n;
}

/* Returns the DER of extension |i| of |x| (OPENSSL_free it) and its size. */
static int ext_der(X509 *x, int i, unsigned char **out)
{
    *out = NULL;
    return i2d_X509_EXTENSION(X509_get_ext(x, i), out);
}

/*
 * Issues |req| under |ca| with |p| through ca_issue() and ca_issue_der()
 * and checks they made the same certificate: every field, each extension's
 * DER in order, the signature algorithms, then the whole TBSCertificate
 * byte for byte once the (random) serial is aligned; that OpenSSL parses
 * the DER back to the same bytes; that the signature and the chain verify;
 * and that the record equals ca_store_cert_fill() on the result.
 */
static void compare_paths(CA *ca, const CA_PROFILE *p,
                          const struct ca_issue_req *req, const char *what)
{
    X509 *old = NULL, *neu = NULL;
    struct store_cert rec, fill, fill_old;
    char err[512];
    const unsigned char *dp, *tbs_new;
    unsigned char *der2 = NULL, *tbs_old = NULL, sha[32];
    const X509_ALGOR *a_old, *a_new;
    const ASN1_BIT_STRING *sig;
    ASN1_INTEGER *sn;
    size_t tbs_new_len;
    unsigned int shalen = 0;
    int len, i;

    if (ca_issue(ca, p, req, &old, err, sizeof(err)) != CA_ISSUE_OK)
        fail_msg("%s: ca_issue: %s", what, err);
    if (ca_issue_der(ca, p, req, 42, &rec, err, sizeof(err)) != CA_ISSUE_OK)
        fail_msg("%s: ca_issue_der: %s", what, err);
    /* OpenSSL parses it and encodes it back to the same bytes */
    dp = rec.der;
    neu = d2i_X509(NULL, &dp, (long)rec.der_len);
    assert_non_null(neu);
    assert_ptr_equal(dp, rec.der + rec.der_len);
    len = i2d_X509(neu, &der2);
    assert_int_equal(len, (int)rec.der_len);
    assert_memory_equal(der2, rec.der, rec.der_len);
    OPENSSL_free(der2);
    /* the signature, and the chain up to the root */
    assert_int_equal(X509_verify(neu, X509_get0_pubkey(ca_get0_cert(ca))), 1);
    if (verify_leaf(ca, neu, NULL) != X509_V_OK)
        fail_msg("%s: chain: %s", what,
                 X509_verify_cert_error_string(verify_leaf(ca, neu, NULL)));
    /* field by field */
    assert_int_equal(X509_get_version(neu), X509_VERSION_3);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(neu),
                                   X509_get_subject_name(ca_get0_cert(ca))), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(neu),
                                   X509_get_issuer_name(old)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(neu),
                                   X509_get_subject_name(old)), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(neu),
                                       X509_get0_notBefore(old)), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(neu),
                                       X509_get0_notAfter(old)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(neu), req->pubkey), 1);
    assert_int_equal(X509_get_ext_count(neu), X509_get_ext_count(old));
    for (i = 0; i < X509_get_ext_count(old); i++) {
        unsigned char *bo = NULL, *bn = NULL;
        int lo = ext_der(old, i, &bo), ln = ext_der(neu, i, &bn);

        if (lo <= 0 || lo != ln || memcmp(bo, bn, (size_t)lo) != 0)
            fail_msg("%s: extension %d (%s) differs", what, i,
                     OBJ_nid2sn(OBJ_obj2nid(X509_EXTENSION_get_object(
                         X509_get_ext(old, i)))));
        OPENSSL_free(bo);
        OPENSSL_free(bn);
    }
    X509_get0_signature(&sig, &a_old, old);
    X509_get0_signature(&sig, &a_new, neu);
    assert_int_equal(X509_ALGOR_cmp(a_old, a_new), 0);
    assert_int_equal(X509_ALGOR_cmp(X509_get0_tbs_sigalg(neu),
                                    X509_get0_tbs_sigalg(old)), 0);
    /* the serial: positive, 19 or 20 magnitude octets, as the record says */
    sn = ASN1_INTEGER_dup(X509_get0_serialNumber(neu));
    assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
    assert_true(ASN1_STRING_length(sn) == 19 || ASN1_STRING_length(sn) == 20);
    assert_int_equal((size_t)ASN1_STRING_length(sn), rec.serial_len);
    assert_memory_equal(ASN1_STRING_get0_data(sn), rec.serial, rec.serial_len);
    /* the whole TBSCertificate, byte for byte, with the serial aligned */
    assert_int_equal(X509_set_serialNumber(old, sn), 1);
    ASN1_INTEGER_free(sn);
    len = i2d_re_X509_tbs(old, &tbs_old);
    tbs_of(rec.der, rec.der_len, &tbs_new, &tbs_new_len);
    if (len != (int)tbs_new_len
        || memcmp(tbs_old, tbs_new, tbs_new_len) != 0)
        fail_msg("%s: TBSCertificate differs (%d vs %zu bytes)", what, len,
                 tbs_new_len);
    OPENSSL_free(tbs_old);
    /* the record, against what ca_store_cert_fill() makes */
    assert_int_equal(ca_store_cert_fill(ca, neu, ca_profile_get0_name(p), 42,
                                        &fill), 1);
    assert_int_equal(ca_store_cert_fill(ca, old, ca_profile_get0_name(p), 42,
                                        &fill_old), 1);
    assert_int_equal(rec.id, 0);
    assert_int_equal(rec.ca_id, fill.ca_id);
    assert_int_equal(rec.serial_len, fill.serial_len);
    assert_memory_equal(rec.serial, fill.serial, rec.serial_len);
    assert_string_equal(rec.subject, fill.subject);
    assert_string_equal(rec.subject, fill_old.subject);
    assert_int_equal(rec.not_before, fill.not_before);
    assert_int_equal(rec.not_after, fill.not_after);
    assert_int_equal(rec.not_before, fill_old.not_before);
    assert_int_equal(rec.not_after, fill_old.not_after);
    assert_int_equal(rec.der_len, fill.der_len);
    assert_memory_equal(rec.der, fill.der, rec.der_len);
    assert_int_equal(rec.status, fill.status);
    assert_int_equal(rec.reason, fill.reason);
    assert_int_equal(rec.revoked_at, 0);
    assert_int_equal(rec.device_id, 42);
    assert_string_equal(rec.profile, fill.profile);
    assert_int_equal(EVP_Digest(rec.der, rec.der_len, sha, &shalen,
                                EVP_sha256(), NULL), 1);
    assert_memory_equal(sha, rec.sha256, sizeof(sha));
    ca_store_cert_clear(&fill);
    ca_store_cert_clear(&fill_old);
    ca_store_cert_clear(&rec);
    X509_free(old);
    X509_free(neu);
}

/* Profiles for the comparisons: with and without SAN (template, copy),
 * CRL DP, AIA (OCSP, caIssuers, both), EKU, requested/forced subjects,
 * constant attributes with characters RFC 2253 escapes. */
static const char der_profiles[] =
    "[profile full]\n"
    "validity = 30d\nbackdate = 5m\n"
    "key_usage = digitalSignature,keyAgreement\n"
    "ext_key_usage = clientAuth,serverAuth\n"
    "crl_url = http://crl.example/ca.crl\n"
    "ocsp_url = http://ocsp.example/\n"
    "ca_issuers_url = http://ca.example/ca.cer\n"
    "subject = /C=DE/O=Operator/OU=${alias}/CN=${device.id}"
    "/serialNumber=${vendor.serialNumber}\n"
    "san = DNS:${device.id}.example.net,URI:urn:dev:${device.id},"
    "email:dev@example.com,IP:10.0.0.1,IP:2001:db8::1\n"
    "[profile min]\n"
    "validity = 100y\nbackdate = 0\n"
    "key_usage = none\nbasic_constraints = none\n"
    "san = copy\n"
    "[profile req]\n"
    "subject = CN=${device.id}\nallow_requested_subject = yes\n"
    "key_usage = critical,digitalSignature,keyEncipherment\n"
    "ext_key_usage = 1.3.6.1.5.5.7.3.2\n"
    "ca_issuers_url = http://ca.example/ca.cer\n"
    "[profile const]\n"
    "subject = /O=Acme, Inc./OU=R&D <lab>;x=\"q\"\\\\/CN=#fixed+name\n"
    "basic_constraints = critical,CA:FALSE\n"
    "ocsp_url = http://ocsp.example/\n"
    "crl_url = http://crl.example/a.crl\n"
    "san = DNS:fixed.example\n"
    "[profile text]\n"
    "subject = /C=${vendor.C}/ST=${vendor.ST}/O=${vendor.O}/OU=${alias}"
    "/CN=${request.CN}/emailAddress=${vendor.emailAddress}"
    "/DC=${vendor.DC}/serialNumber=${device.id}\n"
    "key_usage = none\n";

/* Makes a requested subjectAltName extension list (critical or not). */
static STACK_OF(X509_EXTENSION) *req_san(int crit)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext;
    X509V3_CTX ctx;

    X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
                              crit ? "critical,DNS:req.example,IP:192.0.2.7"
                                   : "DNS:req.example,email:a@b.example");
    assert_non_null(ext);
    assert_non_null(X509v3_add_ext(&exts, ext, -1));
    X509_EXTENSION_free(ext);
    return exts;
}

static void test_der_matches_x509(void **state)
{
    static const char *const ca_types[] = {
        "ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048", "rsa-pss:2048",
        "ed25519", "ed448"
    };
    static const char *const dev_types[] = {
        "ec:P-256", "rsa:2048", "ed25519", "ec:P-384"
    };
    static const char *const vars[] = {
        "alias", "3gpp", "device.id", "dev-7", "vendor.serialNumber",
        "SN0042", NULL
    };
    struct conf *conf = NULL;
    CA_PROFILE *full, *min, *req_p, *cnst;
    EVP_PKEY *dk[4] = { NULL, NULL, NULL, NULL };
    X509_NAME *reqn = NULL, *force = NULL;
    STACK_OF(X509_EXTENSION) *san_c = req_san(1), *san_n = req_san(0);
    char err[512], what[128];
    size_t i, j;
    time_t now = time(NULL);

    assert_int_equal(conf_load_string("der.conf", der_profiles, &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(ca_profile_load(conf, "full", &full, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_load(conf, "min", &min, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_load(conf, "req", &req_p, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_load(conf, "const", &cnst, err, sizeof(err)),
                     1);
    for (j = 0; j < 4; j++)
        assert_int_equal(ca_key_generate(dev_types[j], &dk[j], err,
                                         sizeof(err)), 1);
    assert_int_equal(ca_name_parse("/C=FI/O=Req Org/CN=requested", &reqn, err,
                                   sizeof(err)), 1);
    assert_int_equal(ca_name_parse("/O=Old/CN=kept subject", &force, err,
                                   sizeof(err)), 1);
    for (i = 0; i < sizeof(ca_types) / sizeof(ca_types[0]); i++) {
        CA *root = NULL, *sub = NULL;

        make_chain(ca_types[i], &root, &sub);
        for (j = 0; j < 4; j++) {
            struct ca_issue_req r = { 0 };
            X509_PUBKEY *spki = NULL;
            int k;

            for (k = 0; k < 2; k++) { /* the key encoded or not */
                X509_PUBKEY_free(spki);
                spki = NULL;
                if (k == 0)
                    assert_int_equal(X509_PUBKEY_set(&spki, dk[j]), 1);
                memset(&r, 0, sizeof(r));
                r.pubkey = dk[j];
                r.spki = spki;
                r.vars = kv_lookup;
                r.vars_arg = (void *)vars;
                r.now = now;
                r.subject = reqn; /* ignored unless allowed */
                snprintf(what, sizeof(what), "%s/%s/%s full", ca_types[i],
                         dev_types[j], k == 0 ? "spki" : "pkey");
                compare_paths(sub, full, &r, what);
                r.force_subject = force;
                snprintf(what, sizeof(what), "%s/%s full forced", ca_types[i],
                         dev_types[j]);
                compare_paths(sub, full, &r, what);
                r.force_subject = NULL;
                r.exts = j % 2 == 0 ? san_c : san_n;
                snprintf(what, sizeof(what), "%s/%s min", ca_types[i],
                         dev_types[j]);
                compare_paths(sub, min, &r, what);
                r.exts = NULL; /* copy of nothing: no SAN */
                compare_paths(sub, min, &r, what);
                snprintf(what, sizeof(what), "%s/%s req", ca_types[i],
                         dev_types[j]);
                compare_paths(sub, req_p, &r, what);
                r.subject = NULL; /* the template then */
                compare_paths(sub, req_p, &r, what);
                snprintf(what, sizeof(what), "%s/%s const", ca_types[i],
                         dev_types[j]);
                compare_paths(sub, cnst, &r, what);
                compare_paths(root, cnst, &r, "root const");
            }
            X509_PUBKEY_free(spki);
        }
        ca_free(root);
        ca_free(sub);
    }
    for (j = 0; j < 4; j++)
        EVP_PKEY_free(dk[j]);
    sk_X509_EXTENSION_pop_free(san_c, X509_EXTENSION_free);
    sk_X509_EXTENSION_pop_free(san_n, X509_EXTENSION_free);
    X509_NAME_free(reqn);
    X509_NAME_free(force);
    ca_profile_free(full);
    ca_profile_free(min);
    ca_profile_free(req_p);
    ca_profile_free(cnst);
    conf_free(conf);
}

/* The subject text (RFC 2253 as X509_NAME_print_ex prints it) and DER for
 * values that need escaping, non-ASCII and control characters, over string
 * types UTF8String, PrintableString and IA5String. */
static void test_der_subject_text(void **state)
{
    static const char *const values[][8] = {
        /* C, ST, O, OU, CN, emailAddress, DC, serialNumber */
        { "DE", "Bayern", "Acme, Inc.", "R+D", "a\"b", "x@y.example",
          "example", "SN 1" },
        { "FI", " lead", "trail ", "#hash", "semi;colon", "q@x",
          "dc", "A-1" },
        { "SE", "M\xc3\xbcller", "\xe6\x97\xa5\xe6\x9c\xac", "back\\slash",
          "<angle>", "u@v", "x", "(1)" },
        { "NO", "ctl\x01" "char", "eq=sign", "#", " ", "a@b", "y", "1" },
        { "DK", "tab\there", "mix , + ; < > \\ \"", "  two  ", "z#",
          "m@n", "ex", "=" },
    };
    struct conf *conf = NULL;
    CA_PROFILE *p;
    CA *root = NULL, *sub = NULL;
    EVP_PKEY *dk = NULL;
    char err[512];
    size_t i;

    assert_int_equal(conf_load_string("der.conf", der_profiles, &conf, err,
                                      sizeof(err)), 1);
    assert_int_equal(ca_profile_load(conf, "text", &p, err, sizeof(err)), 1);
    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        const char *vars[] = {
            "vendor.C", values[i][0], "vendor.ST", values[i][1],
            "vendor.O", values[i][2], "alias", values[i][3],
            "request.CN", values[i][4], "vendor.emailAddress", values[i][5],
            "vendor.DC", values[i][6], "device.id", values[i][7], NULL
        };
        struct ca_issue_req r = { 0 };
        char what[64];

        r.pubkey = dk;
        r.vars = kv_lookup;
        r.vars_arg = vars;
        r.now = time(NULL);
        snprintf(what, sizeof(what), "subject text %zu", i);
        compare_paths(sub, p, &r, what);
    }
    EVP_PKEY_free(dk);
    ca_free(root);
    ca_free(sub);
    ca_profile_free(p);
    conf_free(conf);
}

/*
 * A constant attribute of a subject template is encoded at load as
 * issuance would encode it: a value its type refuses, an unknown or empty
 * type fail ca_profile_load() with file:line, the profile and the reason,
 * not the first issuance. Variables are still only checked by name.
 */
static void test_profile_constants(void **state)
{
    static const char *const vars[] = { "device.id", "dev-9",
                                        "vendor.serialNumber", "SN123",
                                        NULL };
    char longv[66], text[256];
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p;
    EVP_PKEY *dk = NULL;
    X509 *x = NULL;
    struct ca_issue_req r = { 0 };
    char err[512], buf[256];

    /* C is two printable letters */
    profile_fails("[profile p]\nvalidity = 1d\n"
                  "subject = CN=${device.id},O=Operator,C=DEU\n",
                  "test.conf:3: subject: value 'DEU' not valid for C");
    profile_fails("[profile p]\nsubject = CN=${device.id},C=DEU\n",
                  "[profile p]");
    profile_fails("[profile p]\nsubject = CN=${device.id},C=DEU\n",
                  "too long");
    profile_fails("[profile p]\nsubject = /C=D/CN=${device.id}\n",
                  "test.conf:2: subject: value 'D' not valid for C");
    profile_fails("[profile p]\nsubject = /C=D/CN=${device.id}\n",
                  "too short");
    profile_fails("[profile p]\nsubject = /C=D\xc3\xa9/CN=${device.id}\n",
                  "not valid for C");
    /* over-long values (CN and O: at most 64 characters) */
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    snprintf(text, sizeof(text), "[profile p]\nsubject = CN=%s\n", longv);
    profile_fails(text, "not valid for CN");
    snprintf(text, sizeof(text), "[profile p]\n"
             "subject = CN=${device.id},O=%s\n", longv);
    profile_fails(text, "test.conf:2: subject: value 'aaaa");
    profile_fails(text, "not valid for O");
    /* not UTF-8 */
    profile_fails("[profile p]\nsubject = CN=${device.id},O=\xff\xfe\n",
                  "not valid for O");
    /* ... and its bytes are shown escaped, not echoed raw */
    profile_fails("[profile p]\nsubject = CN=${device.id},O=\xff\xfe\n",
                  "value '\\xff\\xfe' not valid for O");
    /* unknown and empty attribute types */
    profile_fails("[profile p]\nsubject = CN=${device.id},XYZ=foo\n",
                  "test.conf:2: subject: unknown attribute 'XYZ'");
    /* an OID OpenSSL knows, but not a naming attribute */
    profile_fails("[profile p]\nsubject = CN=${device.id},keyUsage=foo\n",
                  "test.conf:2: subject: 'keyUsage' is not a name attribute");
    {
        X509_NAME *nm = NULL;
        char e[256];

        assert_false(ca_name_parse("/O=Op/basicConstraints=x", &nm, e,
                                   sizeof(e)));
        assert_non_null(strstr(e, "not a name attribute"));
        assert_true(ca_name_parse("/DC=example/O=Op/UID=u1/CN=x", &nm, e,
                                  sizeof(e)));
        X509_NAME_free(nm);
    }
    profile_fails("[profile p]\nsubject = CN=${device.id},=foo\n",
                  "test.conf:2: subject: empty attribute type");
    profile_fails("[profile p]\nsubject = CN=${device.id},O=\n",
                  "empty value for 'O'");
    /* variables: still refused by name, accepted whatever they expand to */
    profile_fails("[profile p]\nsubject = CN=${vendor.nope},C=DE\n",
                  "unknown variable ${vendor.nope}");
    p = profile_from("[profile p]\n"
                     "subject = CN=${device.id},serialNumber="
                     "${vendor.serialNumber},O=Operator,C=DE\n", "p");
    assert_non_null(p);
    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    r.pubkey = dk;
    r.vars = kv_lookup;
    r.vars_arg = (void *)vars;
    assert_int_equal(ca_issue(sub, p, &r, &x, err, sizeof(err)), CA_ISSUE_OK);
    X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
    assert_string_equal(buf, "/C=DE/O=Operator/serialNumber=SN123/CN=dev-9");
    compare_paths(sub, p, &r, "constants and variables");
    X509_free(x);
    EVP_PKEY_free(dk);
    ca_profile_free(p);
    ca_free(root);
    ca_free(sub);
}

/* Runs both paths expecting the same failure code and message. */
static void same_failure(CA *ca, const CA_PROFILE *p,
                         const struct ca_issue_req *r, enum ca_issue_rc want,
                         const char *needle)
{
    X509 *x = (X509 *)1;
    struct store_cert rec;
    char e1[512], e2[512];

    memset(&rec, 0xa5, sizeof(rec));
    assert_int_equal(ca_issue(ca, p, r, &x, e1, sizeof(e1)), want);
    assert_null(x);
    assert_int_equal(ca_issue_der(ca, p, r, 0, &rec, e2, sizeof(e2)), want);
    assert_string_equal(e1, e2);
    if (strstr(e2, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", e2, needle);
    assert_null(rec.der);
    assert_null(rec.subject);
}

/* A key size outside the profile's range is refused by the profile
 * (CA_ISSUE_BAD_KEY, which the server answers with badCertTemplate), as is
 * a curve the profile does not list. */
static void test_profile_key_size(void **state)
{
    CA_PROFILE *p3k = profile_from("[profile r]\nsubject = CN=x\n"
                                   "key_types = rsa:3072-4096\n", "r");
    CA_PROFILE *p2k = profile_from("[profile s]\nsubject = CN=x\n"
                                   "key_types = rsa:2048,ec:P-256\n", "s");
    EVP_PKEY *k2048 = NULL, *k3072 = NULL, *p384 = NULL;
    char err[256];

    assert_non_null(p3k);
    assert_non_null(p2k);
    assert_int_equal(ca_key_generate("rsa:2048", &k2048, err, sizeof(err)), 1);
    assert_int_equal(ca_key_generate("rsa:3072", &k3072, err, sizeof(err)), 1);
    assert_int_equal(ca_key_generate("ec:P-384", &p384, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_check_key(p3k, k2048, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "not allowed by profile r"));
    assert_int_equal(ca_profile_check_key(p3k, k3072, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_check_key(p2k, k2048, err, sizeof(err)), 1);
    assert_int_equal(ca_profile_check_key(p2k, k3072, err, sizeof(err)), 0);
    assert_int_equal(ca_profile_check_key(p2k, p384, err, sizeof(err)), 0);
    EVP_PKEY_free(k2048);
    EVP_PKEY_free(k3072);
    EVP_PKEY_free(p384);
    ca_profile_free(p3k);
    ca_profile_free(p2k);
}

static void test_der_errors(void **state)
{
    static const char *const ok_vars[] = { "alias", "10.1.2.3", "device.id",
                                           "d1", NULL };
    static const char *const deu[] = { "alias", "DEU", "device.id", "d1",
                                       NULL };
    static const char *const noip[] = { "alias", "not-an-ip", "device.id",
                                        "d1", NULL };
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p384 = profile_from("[profile k]\nsubject = CN=x\n"
                                    "key_types = ec:P-384\n", "k");
    CA_PROFILE *pc = profile_from("[profile c]\nsubject = /C=${alias}/CN=y\n",
                                  "c");
    CA_PROFILE *pcc = profile_from("[profile cc]\nsubject = /C=DEU/CN=y\n",
                                   "cc");
    CA_PROFILE *pmin = profile_from("[profile m]\nsan = copy\n", "m");
    CA_PROFILE *pip = profile_from("[profile i]\nsubject = CN=${device.id}\n"
                                   "san = IP:${alias}\n", "i");
    EVP_PKEY *dk = NULL;
    struct ca_issue_req r = { 0 };
    STACK_OF(X509_EXTENSION) *bad = NULL;
    ASN1_OCTET_STRING *junk = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext;
    int64_t na;
    char err[256];

    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate("ec:P-256", &dk, err, sizeof(err)), 1);
    r.pubkey = dk;
    r.vars = kv_lookup;
    r.vars_arg = (void *)ok_vars;
    same_failure(sub, p384, &r, CA_ISSUE_BAD_KEY, "not allowed by profile k");
    r.vars_arg = NULL;
    same_failure(sub, pip, &r, CA_ISSUE_BAD_SUBJECT, "${device.id}");
    r.vars_arg = (void *)deu;
    same_failure(sub, pc, &r, CA_ISSUE_BAD_SUBJECT, "value 'DEU' not valid");
    /* a constant C=DEU is refused at load now (test_profile_constants) */
    assert_null(pcc);
    same_failure(sub, pmin, &r, CA_ISSUE_BAD_SUBJECT, "no subject template");
    r.vars_arg = (void *)noip;
    same_failure(sub, pip, &r, CA_ISSUE_BAD_SUBJECT, "not an IP address");
    /* a requested SAN that does not decode */
    assert_int_equal(ASN1_OCTET_STRING_set(junk, (const unsigned char *)
                                           "\x30\x03\x01", 3), 1);
    ext = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, junk);
    assert_non_null(ext);
    assert_non_null(X509v3_add_ext(&bad, ext, -1));
    r.exts = bad;
    assert_int_equal(ca_name_parse("/CN=r", (X509_NAME **)&r.subject, err,
                                   sizeof(err)), 1);
    same_failure(sub, pmin, &r, CA_ISSUE_BAD_EXT, "malformed");
    /* the CA has expired */
    r.exts = NULL;
    {
        struct tm tm;

        assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(ca_get0_cert(sub)),
                                         &tm), 1);
        na = (int64_t)timegm(&tm);
    }
    r.now = (time_t)na;
    same_failure(sub, pmin, &r, CA_ISSUE_EXPIRED, "has expired");
    /* works again with everything right */
    r.now = time(NULL);
    r.vars_arg = (void *)ok_vars;
    compare_paths(sub, pip, &r, "after failures");
    X509_NAME_free((X509_NAME *)r.subject);
    sk_X509_EXTENSION_pop_free(bad, X509_EXTENSION_free);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(junk);
    EVP_PKEY_free(dk);
    ca_profile_free(p384);
    ca_profile_free(pc);
    ca_profile_free(pcc);
    ca_profile_free(pmin);
    ca_profile_free(pip);
    ca_free(root);
    ca_free(sub);
}

/* Checks that stored certificate |id| is |rec|. */
static void check_stored(STORE *st, int64_t id, const struct store_cert *rec)
{
    STORE_TX *tx = NULL;
    struct store_cert *got = NULL, *by_sha = NULL;

    assert_int_equal(store_begin_read(st, &tx), STORE_OK);
    assert_int_equal(store_cert_get(tx, id, &got), STORE_OK);
    assert_int_equal(store_cert_get_by_serial(tx, rec->ca_id, rec->serial,
                                              rec->serial_len, &by_sha),
                     STORE_OK);
    assert_memory_equal(by_sha->sha256, rec->sha256, 32);
    store_rollback(tx);
    assert_int_equal(by_sha->id, id);
    assert_int_equal(got->der_len, rec->der_len);
    assert_memory_equal(got->der, rec->der, rec->der_len);
    assert_int_equal(got->serial_len, rec->serial_len);
    assert_memory_equal(got->serial, rec->serial, rec->serial_len);
    assert_string_equal(got->subject, rec->subject);
    assert_int_equal(got->not_before, rec->not_before);
    assert_int_equal(got->not_after, rec->not_after);
    assert_memory_equal(got->sha256, rec->sha256, sizeof(rec->sha256));
    assert_string_equal(got->profile, rec->profile);
    assert_int_equal(got->status, STORE_CERT_VALID);
    store_cert_free(got);
    store_cert_free(by_sha);
}

static void test_der_store(void **state)
{
    STORE *st = open_store("der.db");
    STORE_TX *tx = NULL;
    EVP_PKEY *rk = NULL, *dk = NULL;
    X509_NAME *rn = NULL;
    X509 *rc, *leaf = NULL;
    CA_SIGNER *rs;
    CA *ca = NULL;
    CA_PROFILE *p = profile_from("[profile d]\nsubject = CN=${device.id}\n"
                                 "san = DNS:${device.id}.example\n", "d");
    struct ca_issue_req req = { 0 };
    struct store_cert rec[3], fill;
    int64_t id = 0, cid[3], xid = 0, nid = 0;
    char err[512];
    int i;

    assert_int_equal(ca_key_generate("ec:P-256", &rk, err, sizeof(err)), 1);
    assert_int_equal(ca_key_write(tpath("der-root.pem"), rk, NULL, err,
                                  sizeof(err)), 1);
    rs = ca_signer_new_pkey(rk, NULL);
    assert_int_equal(ca_name_parse("/CN=DER Root", &rn, err, sizeof(err)), 1);
    rc = ca_make_ca_cert(rn, rk, 365, NULL, rs, -1, err, sizeof(err));
    assert_non_null(rc);
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(ca_record_insert(tx, "der", rc, NULL,
                                      tpath("der-root.pem"), "test", &id),
                     STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    if (!ca_load(NULL, st, "der", &ca, err, sizeof(err)))
        fail_msg("load: %s", err);
    assert_int_equal(ca_key_generate("ed25519", &dk, err, sizeof(err)), 1);
    req.pubkey = dk;
    req.vars = test_vars;
    /* three through ca_issue_store_der, one each through ca_issue_store
     * with and without an X509 wanted, in one transaction */
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    for (i = 0; i < 3; i++) {
        assert_int_equal(ca_issue_store_der(ca, p, &req, tx, 0, &rec[i],
                                            &cid[i], err, sizeof(err)),
                         CA_ISSUE_OK);
        assert_true(cid[i] > 0);
        assert_int_equal(rec[i].id, cid[i]);
        assert_int_equal(rec[i].ca_id, id);
    }
    assert_int_equal(ca_issue_store_der(ca, p, &req, tx, 0, NULL, NULL, err,
                                        sizeof(err)), CA_ISSUE_OK);
    assert_int_equal(ca_issue_store(ca, p, &req, tx, 0, NULL, &nid, err,
                                    sizeof(err)), CA_ISSUE_OK);
    assert_int_equal(ca_issue_store(ca, p, &req, tx, 0, &leaf, &xid, err,
                                    sizeof(err)), CA_ISSUE_OK);
    assert_true(nid > 0 && xid > nid);
    /* a device id that does not exist: the store refuses, nothing leaks */
    assert_int_equal(ca_issue_store_der(ca, p, &req, tx, 987654, &fill, &id,
                                        err, sizeof(err)), CA_ISSUE_STORE);
    assert_null(fill.der);
    assert_int_equal(id, 0);
    store_rollback(tx);
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    for (i = 0; i < 3; i++) {
        ca_store_cert_clear(&rec[i]);
        assert_int_equal(ca_issue_store_der(ca, p, &req, tx, 0, &rec[i],
                                            &cid[i], err, sizeof(err)),
                         CA_ISSUE_OK);
    }
    assert_int_equal(store_commit(tx), STORE_OK);
    for (i = 0; i < 3; i++) {
        check_stored(st, cid[i], &rec[i]);
        ca_store_cert_clear(&rec[i]);
    }
    X509_free(leaf);
    ca_free(ca);
    ca_profile_free(p);
    X509_free(rc);
    X509_NAME_free(rn);
    ca_signer_free(rs);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(dk);
    store_close(st);
}

/* Thread body: issues DER certificates concurrently from one CA, keeping
 * the serials. */
static void test_der_threads(void **state)
{
    threads_case(1);
}

/* A forked child must not reuse serials its parent drew in advance. */
static void test_der_fork_serials(void **state)
{
    CA *root = NULL, *sub = NULL;
    CA_PROFILE *p = profile_from("[profile s]\nsubject = CN=x\n", "s");
    struct ca_issue_req req = { 0 };
    struct store_cert rec;
    EVP_PKEY *k = NULL;
    unsigned char child[20];
    char err[256];
    int fds[2], status = 0;
    pid_t pid;

    make_chain("ec:P-256", &root, &sub);
    assert_int_equal(ca_key_generate(NULL, &k, err, sizeof(err)), 1);
    req.pubkey = k;
    /* draw once so this thread holds serials in advance */
    assert_int_equal(ca_issue_der(sub, p, &req, 0, &rec, err, sizeof(err)),
                     CA_ISSUE_OK);
    ca_store_cert_clear(&rec);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        unsigned char s[20] = { 0 };

        close(fds[0]);
        if (ca_issue_der(sub, p, &req, 0, &rec, err, sizeof(err))
            == CA_ISSUE_OK)
            memcpy(s + 20 - rec.serial_len, rec.serial, rec.serial_len);
        _exit(write(fds[1], s, 20) == 20 ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child, 20), 20);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(ca_issue_der(sub, p, &req, 0, &rec, err, sizeof(err)),
                     CA_ISSUE_OK);
    {
        unsigned char mine[20] = { 0 }, zero[20] = { 0 };

        memcpy(mine + 20 - rec.serial_len, rec.serial, rec.serial_len);
        assert_memory_not_equal(child, zero, 20);
        assert_memory_not_equal(child, mine, 20);
    }
    ca_store_cert_clear(&rec);
    EVP_PKEY_free(k);
    ca_profile_free(p);
    ca_free(root);
    ca_free(sub);
}

/* The signer's AlgorithmIdentifier for each key kind, and signing into a
 * buffer: PSS for an RSA-PSS key, v1.5 for RSA, ECDSA, EdDSA. */
static void test_signer_sign_buf(void **state)
{
    static const struct { const char *type; int nid; } kinds[] = {
        { "ec:P-256", NID_ecdsa_with_SHA256 },
        { "ec:P-384", NID_ecdsa_with_SHA384 },
        { "rsa:2048", NID_sha256WithRSAEncryption },
        { "rsa-pss:2048", NID_rsassaPss },
        { "ed25519", NID_ED25519 },
        { "ed448", NID_ED448 },
    };
    static const unsigned char msg[] = "to be signed";
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        EVP_PKEY *k = NULL;
        CA_SIGNER *s;
        const unsigned char *der, *dp;
        size_t len = 0, siglen;
        unsigned char sig[600];
        X509_ALGOR *alg;
        EVP_MD_CTX *v = EVP_MD_CTX_new();
        char err[256];

        assert_int_equal(gen_key(kinds[i].type, &k, err, sizeof(err)), 1);
        s = ca_signer_new_pkey(k, NULL);
        assert_non_null(s);
        assert_int_equal(ca_signer_get0_sigalg_der(s, &der, &len), 1);
        dp = der;
        alg = d2i_X509_ALGOR(NULL, &dp, (long)len);
        assert_non_null(alg);
        assert_int_equal(OBJ_obj2nid(alg->algorithm), kinds[i].nid);
        X509_ALGOR_free(alg);
        /* cached: the same bytes again */
        assert_int_equal(ca_signer_get0_sigalg_der(s, &dp, &siglen), 1);
        assert_ptr_equal(dp, der);
        assert_true(ca_signer_max_sig_len(s) <= sizeof(sig));
        siglen = ca_signer_max_sig_len(s) - 1;
        assert_int_equal(ca_signer_sign_buf(s, msg, sizeof(msg), sig,
                                            &siglen), 0); /* too small */
        siglen = sizeof(sig);
        assert_int_equal(ca_signer_sign_buf(s, msg, sizeof(msg), sig,
                                            &siglen), 1);
        assert_true(siglen > 0 && siglen <= ca_signer_max_sig_len(s));
        assert_int_equal(EVP_DigestVerifyInit(v, NULL,
                                              ca_signer_get0_md(s) == NULL
                                              ? NULL
                                              : EVP_get_digestbyname(
                                                    ca_signer_get0_md(s)),
                                              NULL, k), 1);
        assert_int_equal(EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)),
                         1);
        /* a new digest forgets the cached identifier */
        if (strcmp(kinds[i].type, "rsa:2048") == 0) {
            assert_int_equal(ca_signer_set_md(s, "SHA384"), 1);
            assert_int_equal(ca_signer_get0_sigalg_der(s, &der, &len), 1);
            dp = der;
            alg = d2i_X509_ALGOR(NULL, &dp, (long)len);
            assert_int_equal(OBJ_obj2nid(alg->algorithm),
                             NID_sha384WithRSAEncryption);
            X509_ALGOR_free(alg);
        }
        EVP_MD_CTX_free(v);
        ca_signer_free(s);
        EVP_PKEY_free(k);
    }
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
    /* a PIN inside the URI (it would be stored and printed) is refused,
     * even the right one */
    assert_int_equal(ca_signer_load("pkcs11:token=cmpca;object=ca;type=private;"
                                    "pin-value=1234", &o, &s, err, sizeof(err)),
                     CA_SIGNER_ERROR);
    assert_null(s);
    assert_non_null(strstr(err, "must not carry the PIN"));
    assert_null(strstr(err, "1234"));
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
    /* the DER path signs through the token too, the same certificate */
    req.now = time(NULL);
    compare_paths(ca, p, &req, "pkcs11");
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

/* Root CA key rollover: the three certificates, each signed by the right
 * key and carrying the right key, for the same and for another key type;
 * refusals (issuing CA, same key); finding the rollover a root needs. */
static void test_rollover(void **state)
{
    static const char *const to[] = { "ec:P-256", "ed25519", "rsa:2048" };
    CA *root = NULL, *sub = NULL;
    EVP_PKEY *nk = NULL, *oldpub;
    CA_SIGNER *ns;
    struct ca_rollover_certs rc;
    struct store_rollover r1, r2, *rows[2] = { &r1, &r2 };
    unsigned int mdlen;
    char err[512];
    size_t i;

    (void)state;
    make_chain("ec:P-256", &root, &sub);
    oldpub = X509_get0_pubkey(ca_get0_cert(root));
    for (i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
        assert_int_equal(ca_key_generate(to[i], &nk, err, sizeof(err)), 1);
        ns = ca_signer_new_pkey(nk, NULL);
        assert_non_null(ns);
        if (!ca_rollover_make(root, ns, 3650, &rc, err, sizeof(err)))
            fail_msg("rollover to %s: %s", to[i], err);
        /* newWithNew: self-signed with the new key, the root's name */
        assert_int_equal(X509_verify(rc.new_with_new, nk), 1);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(rc.new_with_new),
                                       X509_get_subject_name(ca_get0_cert(root))), 0);
        assert_int_equal(X509_check_ca(rc.new_with_new), 1);
        /* newWithOld: the new key, signed by the old one */
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(rc.new_with_old), nk), 1);
        assert_int_equal(X509_verify(rc.new_with_old, oldpub), 1);
        assert_int_not_equal(X509_verify(rc.new_with_old, nk), 1);
        /* oldWithNew: the old key, signed by the new one, not past the old
         * root's end */
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(rc.old_with_new), oldpub), 1);
        assert_int_equal(X509_verify(rc.old_with_new, nk), 1);
        assert_int_not_equal(X509_verify(rc.old_with_new, oldpub), 1);
        assert_true(ASN1_TIME_compare(X509_get0_notAfter(rc.old_with_new),
                                      X509_get0_notAfter(ca_get0_cert(root))) <= 0);
        assert_true(ASN1_TIME_compare(X509_get0_notAfter(rc.new_with_old),
                                      X509_get0_notAfter(ca_get0_cert(root))) <= 0);
        ERR_clear_error();
        if (i == 0) {
            /* the rows a genm looks through */
            memset(&r1, 0, sizeof(r1));
            memset(&r2, 0, sizeof(r2));
            assert_int_equal(X509_digest(ca_get0_cert(root), EVP_sha256(),
                                         r1.old_sha256, &mdlen), 1);
            assert_int_equal(X509_digest(rc.new_with_new, EVP_sha256(),
                                         r1.new_sha256, &mdlen), 1);
            memset(r2.old_sha256, 0x77, 32);
            assert_ptr_equal(ca_rollover_find(rows, 2, ca_get0_cert(root), 1), &r1);
            assert_null(ca_rollover_find(rows, 2, rc.new_with_new, 1));
            assert_ptr_equal(ca_rollover_find(rows, 2, rc.new_with_new, 0), &r1);
            assert_null(ca_rollover_find(rows, 2, ca_get0_cert(sub), 0));
            assert_null(ca_rollover_find(rows, 0, ca_get0_cert(root), 0));
        }
        ca_rollover_certs_clear(&rc);
        assert_null(rc.new_with_new);
        /* refusals */
        assert_int_equal(ca_rollover_make(sub, ns, 3650, &rc, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "not a self-signed root"));
        ca_signer_free(ns);
        EVP_PKEY_free(nk);
        nk = NULL;
    }
    assert_int_equal(ca_rollover_make(root, ca_get0_signer(root), 3650, &rc,
                                      err, sizeof(err)), 0);
    assert_non_null(strstr(err, "current key"));
    ca_free(root);
    ca_free(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_rollover),
        cmocka_unit_test(test_chains_each_type),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_serials),
        cmocka_unit_test(test_sign_item),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_store_issue_revoke_crl),
        cmocka_unit_test(test_pkcs11),
        cmocka_unit_test(test_der_matches_x509),
        cmocka_unit_test(test_der_subject_text),
        cmocka_unit_test(test_der_errors),
        cmocka_unit_test(test_profile_key_size),
        cmocka_unit_test(test_profile_constants),
        cmocka_unit_test(test_der_store),
        cmocka_unit_test(test_der_threads),
        cmocka_unit_test(test_der_fork_serials),
        cmocka_unit_test(test_signer_sign_buf),
    };

    return cmocka_run_group_tests_name("ca", tests, setup, teardown);
}
