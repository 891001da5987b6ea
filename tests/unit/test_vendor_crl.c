/*
 * Unit tests of vendor-certificate revocation: import (issuer and signature
 * checked), good / revoked / missing / stale under the off, soft and hard
 * policies, fetching from a distribution point over real HTTP on loopback
 * (libcurl against a libmicrohttpd server), the metrics and config errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ca/ca_key.h"
#include "conf/conf.h"
#include "ocsp/vendor_crl.h"
#include "store/store.h"
#include "../lib/cmp_testpki.h"
#include "../lib/testutil.h"

#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *tmpdir;
static EVP_PKEY *vkey, *okey;
static X509 *vca, *good, *bad, *other_ca;
static unsigned char *crl_der, *foreign_der;
static int crl_len, foreign_len;
static time_t t0;

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
    return buf[i];
}

/* A CRL of |ca| (key |k|) listing |revoked|, valid for |days|. */
static unsigned char *make_crl(X509 *ca, EVP_PKEY *k, X509 *revoked,
                               int days, int *len)
{
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_TIME *tu = ASN1_TIME_set(NULL, t0 - 60);
    ASN1_TIME *nu = ASN1_TIME_set(NULL, t0 + days * 86400L);
    unsigned char *der = NULL;

    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, tu), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, nu), 1);
    assert_int_equal(X509_REVOKED_set_serialNumber(r,
        (ASN1_INTEGER *)X509_get0_serialNumber(revoked)), 1);
    assert_int_equal(X509_REVOKED_set_revocationDate(r, tu), 1);
    assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
    *len = i2d_X509_CRL(crl, &der);
    assert_true(*len > 0);
    X509_CRL_free(crl);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    return der;
}

static int setup(void **state)
{
    EVP_PKEY *dk;

    t0 = time(NULL);
    tmpdir = testutil_mkdtemp("test_vendor_crl");
    vkey = cmp_testpki_key("EC");
    okey = cmp_testpki_key("EC");
    dk = cmp_testpki_key("EC");
    vca = cmp_testpki_cert(vkey, "Vendor CA", NULL, NULL, 1, 365);
    other_ca = cmp_testpki_cert(okey, "Vendor CA", NULL, NULL, 1, 365);
    good = cmp_testpki_cert(dk, "SN-1", vca, vkey, 0, 365);
    bad = cmp_testpki_cert(dk, "SN-2", vca, vkey, 0, 365);
    if (vca == NULL || good == NULL || bad == NULL || other_ca == NULL)
        return -1;
    EVP_PKEY_free(dk);
    crl_der = make_crl(vca, vkey, bad, 1, &crl_len);
    foreign_der = make_crl(other_ca, okey, bad, 1, &foreign_len);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    X509_free(vca);
    X509_free(other_ca);
    X509_free(good);
    X509_free(bad);
    EVP_PKEY_free(vkey);
    EVP_PKEY_free(okey);
    OPENSSL_free(crl_der);
    OPENSSL_free(foreign_der);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    free(tmpdir);
    return 0;
}

/* A fresh store with vendor "acme" (CA vca); sets *vid. */
static STORE *new_store(const char *name, int64_t *vid)
{
    struct store_conf sc;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    struct store_vendor v;
    struct store_der d = { NULL, 0 };
    int len;
    char err[256];

    store_conf_init(&sc);
    sc.path = tpath(name);
    sc.synchronous_full = 0;
    assert_int_equal(store_open(&sc, &st, err, sizeof(err)), STORE_OK);
    len = i2d_X509(vca, &d.der);
    d.len = (size_t)len;
    memset(&v, 0, sizeof(v));
    v.name = "acme";
    v.certs = &d;
    v.ncerts = 1;
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(store_vendor_insert(tx, &v, vid), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    OPENSSL_free(d.der);
    return st;
}

static VENDOR_CRL *new_checker(STORE *st, const char *text)
{
    struct conf *conf = NULL;
    VENDOR_CRL *vc;
    char err[256];

    assert_int_equal(conf_load_string("t.conf", text, &conf, err,
                                      sizeof(err)), 1);
    vc = vendor_crl_new(conf, st, err, sizeof(err));
    if (vc == NULL)
        fail_msg("vendor_crl_new: %s", err);
    conf_free(conf);
    return vc;
}

/* Imports |der| for vendor |vid|; returns vendor_crl_import's result. */
static int import(STORE *st, int64_t vid, const unsigned char *der, int len)
{
    STORE_TX *tx = NULL;
    struct store_vendor *v = NULL;
    char err[256];
    int ok;

    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(store_vendor_get(tx, vid, &v), STORE_OK);
    ok = vendor_crl_import(tx, v, der, (size_t)len, "import:test", err,
                           sizeof(err));
    store_vendor_free(v);
    if (ok)
        assert_int_equal(store_commit(tx), STORE_OK);
    else
        store_rollback(tx);
    return ok;
}

static void test_policies(void **state)
{
    int64_t vid = 0;
    STORE *st = new_store("p.db", &vid);
    VENDOR_CRL *hard = new_checker(st, "[vendor acme]\ncrl = hard\n"
                                   "crl_fetch = no\n");
    VENDOR_CRL *soft = new_checker(st, "[vendor acme]\ncrl = soft\n"
                                   "crl_fetch = no\n");
    VENDOR_CRL *off = new_checker(st, "[vendor other]\ncrl = hard\n");
    char buf[2048];
    size_t n;

    /* no CRL yet: hard refuses, soft accepts unchecked, off checks nothing */
    assert_int_equal(vendor_crl_check(hard, good, vid, t0), VENDOR_REV_NO_CRL);
    assert_int_equal(vendor_crl_check(soft, good, vid, t0),
                     VENDOR_REV_UNCHECKED);
    assert_int_equal(vendor_crl_check(off, bad, vid, t0), VENDOR_REV_GOOD);
    /* a CRL of another CA (same name, other key) is refused */
    assert_int_equal(import(st, vid, foreign_der, foreign_len), 0);
    assert_int_equal(import(st, vid, (const unsigned char *)"junk", 4), 0);
    assert_int_equal(import(st, vid, crl_der, crl_len), 1);
    /* seen after the cache's reload age */
    assert_int_equal(vendor_crl_check(hard, good, vid, t0 + 31),
                     VENDOR_REV_GOOD);
    assert_int_equal(vendor_crl_check(hard, bad, vid, t0 + 31),
                     VENDOR_REV_REVOKED);
    assert_int_equal(vendor_crl_check(soft, bad, vid, t0 + 31),
                     VENDOR_REV_REVOKED);
    /* past nextUpdate: stale */
    assert_int_equal(vendor_crl_check(hard, good, vid, t0 + 2 * 86400),
                     VENDOR_REV_NO_CRL);
    assert_int_equal(vendor_crl_check(soft, good, vid, t0 + 2 * 86400),
                     VENDOR_REV_UNCHECKED);
    /* a certificate of a CA the vendor does not have: no CRL for it */
    assert_int_equal(vendor_crl_check(hard, other_ca, vid, t0 + 31),
                     VENDOR_REV_NO_CRL);
    n = vendor_crl_metrics(hard, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "cmpca_vendor_crl_checks_total{result=\"revoked\"} 1"));
    assert_non_null(strstr(buf, "cmpca_vendor_crl_checks_total{result=\"no_crl\"} 3"));
    assert_non_null(strstr(buf, "cmpca_vendor_crl_unavailable_total{why=\"stale\"} 1"));
    n = vendor_crl_metrics(soft, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "cmpca_vendor_crl_checks_total{result=\"unchecked\"} 2"));
    vendor_crl_free(hard);
    vendor_crl_free(soft);
    vendor_crl_free(off);
    store_close(st);
}

/* Serves crl_der at /v.crl, 404 elsewhere. */
static enum MHD_Result serve_crl(void *cls, struct MHD_Connection *c,
                                 const char *url, const char *method,
                                 const char *version, const char *data,
                                 size_t *size, void **ptr)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    int found = strcmp(url, "/v.crl") == 0;

    r = found ? MHD_create_response_from_buffer((size_t)crl_len, crl_der,
                                                MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(0, NULL,
                                                MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, found ? 200 : 404, r);
    MHD_destroy_response(r);
    return ret;
}

static void test_fetch(void **state)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD,
                                            0, NULL, NULL, serve_crl, NULL,
                                            MHD_OPTION_END);
    const union MHD_DaemonInfo *di;
    int64_t vid = 0;
    STORE *st = new_store("f.db", &vid);
    VENDOR_CRL *vc, *miss, *small;
    char text[512], buf[2048], err[256];
    unsigned char *body = NULL;
    size_t blen = 0, n;
    unsigned short port;

    assert_non_null(d);
    di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    port = di->port;
    snprintf(text, sizeof(text), "[vendor acme]\ncrl = hard\ncrl_url = "
             "http://127.0.0.1:%u/v.crl\ncrl_timeout = 5s\n", port);
    vc = new_checker(st, text);
    /* fetched on the first check, stored, then used */
    assert_int_equal(vendor_crl_check(vc, bad, vid, t0), VENDOR_REV_REVOKED);
    assert_int_equal(vendor_crl_check(vc, good, vid, t0), VENDOR_REV_GOOD);
    n = vendor_crl_metrics(vc, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "cmpca_vendor_crl_fetches_total{result=\"ok\"} 1"));
    {
        STORE_TX *tx = NULL;
        struct store_vendor_crl **l = NULL;
        size_t nl = 0;

        assert_int_equal(store_begin_read(st, &tx), STORE_OK);
        assert_int_equal(store_vendor_crl_list(tx, vid, &l, &nl), STORE_OK);
        assert_int_equal(nl, 1);
        assert_non_null(strstr(l[0]->source, "/v.crl"));
        store_vendor_crl_list_free(l, nl);
        store_rollback(tx);
    }
    vendor_crl_free(vc);
    store_close(st);

    /* a 404 and an oversized answer: failed fetch, hard-fail */
    st = new_store("f2.db", &vid);
    snprintf(text, sizeof(text), "[vendor acme]\ncrl = hard\ncrl_url = "
             "http://127.0.0.1:%u/none.crl\n", port);
    miss = new_checker(st, text);
    assert_int_equal(vendor_crl_check(miss, good, vid, t0), VENDOR_REV_NO_CRL);
    n = vendor_crl_metrics(miss, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "cmpca_vendor_crl_fetches_total{result=\"failed\"} 1"));
    /* no second attempt within the retry time */
    assert_int_equal(vendor_crl_check(miss, good, vid, t0 + 1),
                     VENDOR_REV_NO_CRL);
    n = vendor_crl_metrics(miss, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "cmpca_vendor_crl_fetches_total{result=\"failed\"} 1"));
    vendor_crl_free(miss);
    snprintf(text, sizeof(text), "http://127.0.0.1:%u/v.crl", port);
    assert_int_equal(vendor_crl_fetch(text, 5, 16, &body, &blen, err,
                                      sizeof(err)), 0);
    assert_non_null(strstr(err, "larger than"));
    assert_int_equal(vendor_crl_fetch(text, 5, 1 << 20, &body, &blen, err,
                                      sizeof(err)), 1);
    assert_int_equal(blen, (size_t)crl_len);
    free(body);
    assert_int_equal(vendor_crl_fetch("file:///etc/passwd", 5, 1 << 20,
                                      &body, &blen, err, sizeof(err)), 0);
    small = new_checker(st, "[vendor acme]\ncrl = soft\n");
    /* no crl_url and no distribution point in the certificate */
    assert_int_equal(vendor_crl_check(small, good, vid, t0),
                     VENDOR_REV_UNCHECKED);
    vendor_crl_free(small);
    store_close(st);
    MHD_stop_daemon(d);
}

static void test_config_errors(void **state)
{
    static const char *const bad_confs[][2] = {
        { "[vendor a]\ncrl = maybe\n", "t.conf:1: crl must be off, soft or hard" },
        { "[vendor a]\ncrl_url = ftp://x/y.crl\n", "t.conf:1: crl_url" },
        { "[vendor a]\ncrl = soft\nbogus = 1\n", "t.conf:3: unknown key 'bogus'" },
        { "[vendor a]\ncrl_timeout = 0\n", "t.conf:2:" },
    };
    struct conf *conf = NULL;
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(bad_confs) / sizeof(bad_confs[0]); i++) {
        assert_int_equal(conf_load_string("t.conf", bad_confs[i][0], &conf,
                                          err, sizeof(err)), 1);
        assert_null(vendor_crl_new(conf, NULL, err, sizeof(err)));
        if (strstr(err, bad_confs[i][1]) == NULL)
            fail_msg("%s: got '%s'", bad_confs[i][0], err);
        conf_free(conf);
    }
    assert_string_equal(vendor_rev_rc_str(VENDOR_REV_NO_CRL), "no_crl");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_config_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
