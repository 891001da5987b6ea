/*
 * Unit tests of libcmpclient without a server: configuration checks, key
 * generation, atomic file writes and store installation (with injected
 * write failures), and the network/trust failure paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../client/src/cmpclient_local.h"
#include "cmpclient.h"
#include "factory/factory.h"
#include "../lib/testutil.h"

#include <openssl/pem.h>

/* Test credentials: a vendor CA and one device made with the factory code. */
struct fixture {
    char *dir;
    struct cmpclient_identity id;
    X509 *root;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct factory_ca ca;
    struct factory_issue_opts o;
    char err[256], path[4096], out[2048];
    char *serials[1] = { "DEV-1" };
    size_t done;

    assert_non_null(f);
    f->dir = testutil_mkdtemp("test_client");
    snprintf(path, sizeof(path), "%s/ca", f->dir);
    assert_int_equal(factory_ca_create(path, "Test Vendor", NULL, NULL, err, sizeof(err)), FACTORY_OK);
    assert_int_equal(factory_ca_load(&ca, path, NULL, err, sizeof(err)), FACTORY_OK);
    memset(&o, 0, sizeof(o));
    snprintf(out, sizeof(out), "%s/out", f->dir);
    o.outdir = out;
    o.serials = serials;
    o.count = 1;
    o.threads = 1;
    assert_int_equal(factory_issue(&ca, &o, &done, err, sizeof(err)), FACTORY_OK);
    snprintf(path, sizeof(path), "%s/DEV-1/key.pem", out);
    f->id.key = cmpclient_load_key(path);
    snprintf(path, sizeof(path), "%s/DEV-1/cert.pem", out);
    f->id.cert = cmpclient_load_cert(path);
    snprintf(path, sizeof(path), "%s/DEV-1/chain.pem", out);
    f->id.chain = cmpclient_load_certs(path, 0);
    assert_non_null(f->id.key);
    assert_non_null(f->id.cert);
    assert_int_equal(sk_X509_num(f->id.chain), 2);
    f->root = X509_dup(ca.root);
    factory_ca_clear(&ca);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[4200];

    EVP_PKEY_free(f->id.key);
    X509_free(f->id.cert);
    sk_X509_pop_free(f->id.chain, X509_free);
    X509_free(f->root);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void test_keygen(void **state)
{
    static const char *const good[] = { "ec:P-256", "ec:P-384", "ed25519",
                                        "rsa:2048" };
    static const char *const bad[] = { "ec:P-192", "rsa:1024", "dsa", "", "rsa:x" };
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        EVP_PKEY *k = cmpclient_keygen(good[i]);

        assert_non_null(k);
        EVP_PKEY_free(k);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(cmpclient_keygen(bad[i]));
}

static void test_config(void **state)
{
    CMPCLIENT *c = cmpclient_new();

    assert_non_null(c);
    assert_true(cmpclient_set_server(c, "http://127.0.0.1:8080/.well-known/cmp/p/3gpp"));
    assert_false(cmpclient_set_server(c, "https://example.com/"));
    assert_non_null(strstr(cmpclient_get0_error(c), "only http"));
    assert_false(cmpclient_set_server(c, "not a url"));
    assert_false(cmpclient_set_retries(c, 0, 10, 10));
    assert_false(cmpclient_set_retries(c, 3, 100, 10));
    assert_true(cmpclient_set_retries(c, 3, 10, 100));
    assert_false(cmpclient_set_timeouts(c, -1, 0));
    assert_true(cmpclient_set1_operator_root(c, NULL));
    cmpclient_free(c);
    cmpclient_free(NULL);
}

/* Returns the number of entries of |dir| whose name starts with |prefix|. */
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_write_atomic(void **state)
{
    struct fixture *f = *state;
    char path[4096];
    struct stat st;
    size_t len;
    unsigned char *data;

    snprintf(path, sizeof(path), "%s/atomic.txt", f->dir);
    assert_true(cmpclient_write_file_atomic(path, "one\n", 4, 0600));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    cmpclient_test_fail_write(1);
    assert_false(cmpclient_write_file_atomic(path, "two\n", 4, 0600));
    data = testutil_read_file(path, &len);
    assert_non_null(data);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "one\n", 4);
    free(data);
    assert_int_equal(count_entries(f->dir, "atomic.txt.tmp"), 0);
}

static void test_store_install(void **state)
{
    struct fixture *f = *state;
    struct cmpclient_result r;
    char store[2048], path[4096], err[256];
    unsigned char *before, *after;
    size_t blen, alen;
    struct stat st;
    int i;

    memset(&r, 0, sizeof(r));
    r.key = f->id.key;
    r.cert = f->id.cert;
    r.chain = f->id.chain;
    r.root = f->root;
    snprintf(store, sizeof(store), "%s/store", f->dir);
    assert_true(cmpclient_store_install(store, &r, err, sizeof(err)));
    assert_true(cmpclient_store_install(store, &r, err, sizeof(err)));
    assert_int_equal(count_entries(store, ".gen-"), 1);
    snprintf(path, sizeof(path), "%s/key.pem", store);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/cert.pem", store);
    before = testutil_read_file(path, &blen);
    assert_non_null(before);
    /* a failure at any of the four file writes leaves the store as it was */
    for (i = 1; i <= 4; i++) {
        cmpclient_test_fail_write(i);
        assert_false(cmpclient_store_install(store, &r, err, sizeof(err)));
        assert_non_null(strstr(err, "No space"));
        assert_int_equal(count_entries(store, ".gen-"), 1);
        after = testutil_read_file(path, &alen);
        assert_non_null(after);
        assert_int_equal(alen, blen);
        assert_memory_equal(after, before, blen);
        free(after);
    }
    cmpclient_test_fail_write(0);
    free(before);
    /* the installed files load back */
    {
        X509 *x = cmpclient_load_cert(path);

        assert_non_null(x);
        assert_int_equal(X509_cmp(x, f->id.cert), 0);
        X509_free(x);
    }
}

static void test_network_failure(void **state)
{
    struct fixture *f = *state;
    CMPCLIENT *c = cmpclient_new();
    struct cmpclient_result r;

    assert_non_null(c);
    /* no server configured */
    assert_int_equal(cmpclient_enroll(c, &f->id, NULL, NULL, &r), CMPCLIENT_ERR_USAGE);
    /* nothing listens on port 1: bounded retries, each a new transaction */
    assert_true(cmpclient_set_server(c, "http://127.0.0.1:1/pkix/"));
    assert_true(cmpclient_set_retries(c, 3, 0, 0));
    assert_int_equal(cmpclient_enroll(c, &f->id, NULL, "ec:P-256", &r),
                     CMPCLIENT_ERR_NETWORK);
    assert_int_equal(cmpclient_get_transactions(c), 3);
    assert_non_null(strstr(cmpclient_get0_error(c), "after 3 attempts"));
    assert_null(r.cert);
    cmpclient_free(c);
}

static void test_trust_rules(void **state)
{
    struct fixture *f = *state;
    CMPCLIENT *c = cmpclient_new();
    struct cmpclient_identity wrong = f->id;
    EVP_PKEY *other = cmpclient_keygen(NULL);

    assert_non_null(c);
    assert_true(cmpclient_set_server(c, "http://127.0.0.1:1/"));
    /* kur and rr need a root: without one nothing is sent */
    assert_int_equal(cmpclient_renew(c, &f->id, NULL, NULL, NULL), CMPCLIENT_ERR_TRUST);
    assert_int_equal(cmpclient_revoke(c, &f->id, 0), CMPCLIENT_ERR_TRUST);
    /* ir without a root and with the 3GPP exception disabled */
    cmpclient_set_permit_root_in_ip(c, 0);
    assert_int_equal(cmpclient_enroll(c, &f->id, NULL, NULL, NULL), CMPCLIENT_ERR_TRUST);
    assert_non_null(strstr(cmpclient_get0_error(c), "no operator root"));
    assert_int_equal(cmpclient_get_transactions(c), 0);
    /* a key that does not match the certificate */
    wrong.key = other;
    assert_int_equal(cmpclient_enroll(c, &wrong, NULL, NULL, NULL), CMPCLIENT_ERR_USAGE);
    /* an unknown key type */
    cmpclient_set_permit_root_in_ip(c, 1);
    assert_int_equal(cmpclient_enroll(c, &f->id, NULL, "dsa:1024", NULL),
                     CMPCLIENT_ERR_USAGE);
    EVP_PKEY_free(other);
    cmpclient_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_store_install),
        cmocka_unit_test(test_network_failure),
        cmocka_unit_test(test_trust_rules),
    };

    return cmocka_run_group_tests_name("client", tests, setup, teardown);
}
