/*
 * Unit tests of the factory module: serial numbers (ranges, lists,
 * validation), vendor CA creation and loading, bulk issuance in threads,
 * refusal to overwrite, and the allow-list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "factory/factory.h"
#include "../lib/testutil.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

static char *tmpdir;

static int setup(void **state)
{
    tmpdir = testutil_mkdtemp("test_factory");
    return tmpdir == NULL;
}

static int teardown(void **state)
{
    char cmd[4200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    free(tmpdir);
    return 0;
}

static void test_serial_valid(void **state)
{
    assert_true(factory_serial_valid("SN-000001"));
    assert_true(factory_serial_valid("a.b:c-D9"));
    assert_false(factory_serial_valid(""));
    assert_false(factory_serial_valid("."));
    assert_false(factory_serial_valid(".."));
    assert_false(factory_serial_valid("a/b"));
    assert_false(factory_serial_valid("a b"));
    assert_false(factory_serial_valid("a_b"));
    assert_false(factory_serial_valid("é"));
    assert_true(factory_serial_valid(
        "0123456789012345678901234567890123456789012345678901234567890123"));
    assert_false(factory_serial_valid(
        "01234567890123456789012345678901234567890123456789012345678901234"));
}

static void test_serials_range(void **state)
{
    char err[256];
    char **s = factory_serials_range("SN-", 98, 3, 3, err, sizeof(err));

    assert_non_null(s);
    assert_string_equal(s[0], "SN-098");
    assert_string_equal(s[2], "SN-100");
    factory_serials_free(s, 3);
    assert_null(factory_serials_range("bad/", 1, 1, 1, err, sizeof(err)));
    assert_null(factory_serials_range("X", 1, 0, 1, err, sizeof(err)));
}

static void test_serials_read(void **state)
{
    char path[4096], err[256];
    char **s;
    size_t n;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/list.txt", tmpdir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("identifier\n# comment\n\n  A-1 \r\nA-2\n", fp);
    fclose(fp);
    s = factory_serials_read(path, &n, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(n, 2);
    assert_string_equal(s[0], "A-1");
    assert_string_equal(s[1], "A-2");
    factory_serials_free(s, n);

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("A-1\nA-2\nA-1\n", fp);
    fclose(fp);
    assert_null(factory_serials_read(path, &n, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("identifier\n", fp);
    fclose(fp);
    assert_null(factory_serials_read(path, &n, err, sizeof(err)));
}

static void test_ca_and_issue(void **state)
{
    char dir[2048], out[2048], path[4096], err[512];
    struct factory_ca ca;
    struct factory_issue_opts o;
    char **serials;
    size_t done;
    struct stat st;
    X509 *x;
    BIO *b;
    int idx;

    snprintf(dir, sizeof(dir), "%s/vca", tmpdir);
    assert_int_equal(factory_ca_create(dir, "Unit Vendor", "ec:P-256", "secret",
                                       err, sizeof(err)), FACTORY_OK);
    assert_int_not_equal(factory_ca_create(dir, "Unit Vendor", NULL, NULL, err,
                                           sizeof(err)), FACTORY_OK);
    assert_non_null(strstr(err, "exists"));
    assert_int_not_equal(factory_ca_load(&ca, dir, "wrong", err, sizeof(err)),
                         FACTORY_OK);
    assert_int_equal(factory_ca_load(&ca, dir, "secret", err, sizeof(err)),
                     FACTORY_OK);
    assert_string_equal(ca.vendor, "Unit Vendor");

    serials = factory_serials_range("U-", 1, 40, 4, err, sizeof(err));
    assert_non_null(serials);
    memset(&o, 0, sizeof(o));
    snprintf(out, sizeof(out), "%s/out/nested", tmpdir);
    o.outdir = out;
    o.serials = serials;
    o.count = 40;
    o.threads = 3;
    assert_int_equal(factory_issue(&ca, &o, &done, err, sizeof(err)), FACTORY_OK);
    assert_int_equal(done, 40);

    snprintf(path, sizeof(path), "%s/U-0040/key.pem", out);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/U-0007/cert.pem", out);
    b = BIO_new_file(path, "r");
    assert_non_null(b);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    idx = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_serialNumber, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_check_issued(ca.cert, x), X509_V_OK);
    assert_true((X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) != 0);
    assert_false(X509_check_ca(x));
    X509_free(x);

    /* same serials again: refused, nothing overwritten, nothing added */
    assert_int_equal(factory_issue(&ca, &o, &done, err, sizeof(err)), FACTORY_EXISTS);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(done, 0);
    assert_int_equal(factory_allowlist_write(out, err, sizeof(err)), 40);

    factory_serials_free(serials, 40);
    factory_ca_clear(&ca);
    factory_ca_clear(&ca);
}

static void test_allowlist(void **state)
{
    char out[2048], path[4096], err[256], line[128];
    FILE *fp;
    long n;

    snprintf(out, sizeof(out), "%s/out/nested", tmpdir);
    snprintf(path, sizeof(path), "%s/allow.csv", tmpdir);
    fp = fopen(path, "w+");
    assert_non_null(fp);
    n = factory_allowlist_print(out, fp, err, sizeof(err));
    assert_int_equal(n, 40);
    rewind(fp);
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_string_equal(line, "identifier\n");
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_string_equal(line, "U-0001\n");
    fclose(fp);
    assert_int_equal(factory_allowlist_print("/nonexistent/dir", stdout, err, sizeof(err)), -1);
}

/* The result codes the CLI maps to exit codes: EXISTS, AUTH, NOTFOUND. */
static void test_result_codes(void **state)
{
    char dir[2048], path[4096], err[512];
    struct factory_ca ca;
    FILE *fp;

    snprintf(dir, sizeof(dir), "%s/codes", tmpdir);
    assert_int_equal(factory_ca_create(dir, "Code Vendor", NULL, "right", err,
                                       sizeof(err)), FACTORY_OK);
    /* create twice in the same directory */
    assert_int_equal(factory_ca_create(dir, "Code Vendor", NULL, "right", err,
                                       sizeof(err)), FACTORY_EXISTS);
    assert_non_null(strstr(err, "exists already"));
    /* wrong and missing passphrase for the encrypted CA key */
    assert_int_equal(factory_ca_load(&ca, dir, "wrong", err, sizeof(err)),
                     FACTORY_AUTH);
    assert_non_null(strstr(err, "passphrase"));
    assert_null(ca.key);
    assert_null(ca.cert);
    assert_int_equal(factory_ca_load(&ca, dir, NULL, err, sizeof(err)),
                     FACTORY_AUTH);
    /* missing CA directory, and a directory without the key */
    snprintf(path, sizeof(path), "%s/no-such-ca", tmpdir);
    assert_int_equal(factory_ca_load(&ca, path, "right", err, sizeof(err)),
                     FACTORY_NOTFOUND);
    assert_non_null(strstr(err, "factory ca create"));
    snprintf(path, sizeof(path), "%s/%s", dir, FACTORY_CA_KEY);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(factory_ca_load(&ca, dir, "right", err, sizeof(err)),
                     FACTORY_NOTFOUND);
    /* a damaged certificate is an error, not a missing file */
    snprintf(path, sizeof(path), "%s/%s", dir, FACTORY_CA_CERT);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a certificate\n", fp);
    fclose(fp);
    assert_int_equal(factory_ca_load(&ca, dir, "right", err, sizeof(err)),
                     FACTORY_ERROR);
    factory_ca_clear(&ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_valid),
        cmocka_unit_test(test_serials_range),
        cmocka_unit_test(test_serials_read),
        cmocka_unit_test(test_ca_and_issue),
        cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_result_codes),
    };

    return cmocka_run_group_tests_name("factory", tests, setup, teardown);
}
