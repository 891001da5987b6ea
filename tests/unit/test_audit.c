/*
 * Unit tests of the audit checkpoints (src/audit/audit_ckpt.c): the line
 * format, signatures with every key type cmpca knows, strict parsing, every
 * one-character change of a signed line, checkpoint files and appending.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "ca/ca_key.h"
#include "ca/ca_signer.h"
#include "../lib/testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void sample(struct audit_ckpt *c, int64_t seq)
{
    int i;

    memset(c, 0, sizeof(*c));
    c->seq = seq;
    for (i = 0; i < STORE_SHA256_LEN; i++)
        c->hash[i] = (unsigned char)(i * 7 + seq);
    c->time = 1796400000;
}

static CA_SIGNER *new_signer(const char *type)
{
    EVP_PKEY *pk = NULL;
    CA_SIGNER *s;
    char err[256];

    assert_int_equal(ca_key_generate(type, &pk, err, sizeof(err)), 1);
    s = ca_signer_new_pkey(pk, NULL);
    EVP_PKEY_free(pk);
    assert_non_null(s);
    return s;
}

static void test_unsigned_roundtrip(void **state)
{
    struct audit_ckpt c, p;
    char line[AUDIT_CKPT_LINE_MAX + 1], err[256];

    (void)state;
    sample(&c, 42);
    assert_int_equal(audit_ckpt_format(&c, NULL, line, sizeof(line), err,
                                       sizeof(err)), 1);
    assert_string_equal(line, "cmpca-audit-checkpoint v1 seq=42 hash="
                        "2a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2"
                        "d9e0e7eef5fc03 time=1796400000");
    assert_int_equal(audit_ckpt_parse(line, &p, err, sizeof(err)), 1);
    assert_int_equal(p.seq, 42);
    assert_int_equal(p.time, c.time);
    assert_memory_equal(p.hash, c.hash, STORE_SHA256_LEN);
    assert_int_equal(p.is_signed, 0);
    assert_int_equal(audit_ckpt_verify_sig(&p, NULL), 0);
    /* nothing to checkpoint */
    c.seq = 0;
    assert_int_equal(audit_ckpt_format(&c, NULL, line, sizeof(line), err,
                                       sizeof(err)), 0);
    /* buffer too small */
    c.seq = 1;
    assert_int_equal(audit_ckpt_format(&c, NULL, line, 40, err, sizeof(err)),
                     0);
}

/* Signs with |type|, verifies, and checks that no one-character change of
 * the line yields a checkpoint that verifies with other contents. */
static void sign_check(const char *type)
{
    CA_SIGNER *s = new_signer(type), *o = new_signer("ed25519");
    struct audit_ckpt c, p;
    char line[AUDIT_CKPT_LINE_MAX + 1], m[AUDIT_CKPT_LINE_MAX + 1];
    char err[256];
    static const char alt[] = "0a9Z+/= x";
    size_t i, k, len;

    sample(&c, 123456789);
    assert_int_equal(audit_ckpt_format(&c, s, line, sizeof(line), err,
                                       sizeof(err)), 1);
    assert_non_null(strstr(line, " key="));
    assert_non_null(strstr(line, " sig="));
    assert_int_equal(audit_ckpt_parse(line, &p, err, sizeof(err)), 1);
    assert_int_equal(p.is_signed, 1);
    assert_int_equal(audit_ckpt_verify_sig(&p, ca_signer_get0_pubkey(s)), 1);
    assert_int_equal(audit_ckpt_verify_sig(&p, ca_signer_get0_pubkey(o)), 0);
    len = strlen(line);
    for (i = 0; i < len; i++) {
        for (k = 0; alt[k] != '\0'; k++) {
            if (alt[k] == line[i])
                continue;
            memcpy(m, line, len + 1);
            m[i] = alt[k];
            if (!audit_ckpt_parse(m, &p, err, sizeof(err))
                || !audit_ckpt_verify_sig(&p, ca_signer_get0_pubkey(s)))
                continue;
            /* base64 may carry unused bits: the contents must be the
             * original ones */
            assert_int_equal(p.seq, c.seq);
            assert_int_equal(p.time, c.time);
            assert_memory_equal(p.hash, c.hash, STORE_SHA256_LEN);
        }
    }
    /* the line cut short anywhere is no valid signed checkpoint */
    for (i = 1; i < len; i++) {
        memcpy(m, line, i);
        m[i] = '\0';
        if (audit_ckpt_parse(m, &p, err, sizeof(err)))
            assert_int_equal(audit_ckpt_verify_sig(&p,
                                                   ca_signer_get0_pubkey(s)),
                             0);
    }
    ca_signer_free(s);
    ca_signer_free(o);
}

static void test_signed_ec(void **state)
{
    (void)state;
    sign_check("ec:P-256");
    sign_check("ec:P-384");
}

static void test_signed_rsa(void **state)
{
    (void)state;
    sign_check("rsa:2048");
}

static void test_signed_eddsa(void **state)
{
    (void)state;
    sign_check("ed25519");
    sign_check("ed448");
}

static void test_parse_strict(void **state)
{
    static const char *const bad[] = {
        "",
        "cmpca-audit-checkpoint v2 seq=1 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=0 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=01 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=-1 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=1 hash=" "00000000000000000000000000000000"
        "0000000000000000000000000000000A time=1",
        "cmpca-audit-checkpoint v1 seq=1 hash=" "00000000000000000000000000000000"
        "000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=1  hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=1 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1 ",
        "cmpca-audit-checkpoint v1 seq=1 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1 key=00",
        "cmpca-audit-checkpoint v1 seq=99999999999999999999 hash="
        "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1",
        "cmpca-audit-checkpoint v1 seq=1 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1 key="
        "00000000000000000000000000000000"
        "00000000000000000000000000000000 sig=AB*=",
        "cmpca-audit-checkpoint v1 seq=1 hash=" "00000000000000000000000000000000"
        "00000000000000000000000000000000 time=1 key="
        "00000000000000000000000000000000"
        "00000000000000000000000000000000 sig=",
    };
    struct audit_ckpt p;
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (audit_ckpt_parse(bad[i], &p, err, sizeof(err)))
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(audit_ckpt_parse("cmpca-audit-checkpoint v1 seq=1 hash="
                                      "00000000000000000000000000000000"
                                      "00000000000000000000000000000000 "
                                      "time=0", &p, err, sizeof(err)), 1);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_files(void **state)
{
    CA_SIGNER *s = new_signer("ec:P-256"), *o = new_signer("ec:P-256");
    char *dir = testutil_mkdtemp("audit");
    char path[512], bad[512], line[AUDIT_CKPT_LINE_MAX + 1], err[512];
    struct audit_ckpt c, *v = NULL;
    struct stat sb;
    size_t n = 9;

    (void)state;
    snprintf(path, sizeof(path), "%s/anchors.txt", dir);
    /* missing file: an error, or empty when allowed */
    assert_int_equal(audit_ckpt_read_file(path, NULL, 0, &v, &n, err,
                                          sizeof(err)), 0);
    assert_non_null(strstr(err, "anchors.txt"));
    assert_int_equal(audit_ckpt_read_file(path, NULL, 1, &v, &n, err,
                                          sizeof(err)), 1);
    assert_int_equal(n, 0);
    assert_null(v);
    /* appended out of order, with comments: read sorted by seq */
    sample(&c, 9);
    assert_int_equal(audit_ckpt_format(&c, s, line, sizeof(line), err,
                                       sizeof(err)), 1);
    assert_int_equal(audit_ckpt_append(path, line, err, sizeof(err)), 1);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    {
        FILE *fp = fopen(path, "a");

        fputs("# operator note\n\n", fp);
        fclose(fp);
    }
    sample(&c, 3);
    assert_int_equal(audit_ckpt_format(&c, s, line, sizeof(line), err,
                                       sizeof(err)), 1);
    assert_int_equal(audit_ckpt_append(path, line, err, sizeof(err)), 1);
    assert_int_equal(audit_ckpt_read_file(path, ca_signer_get0_pubkey(s), 0,
                                          &v, &n, err, sizeof(err)), 1);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].seq, 3);
    assert_int_equal(v[0].line, 4);
    assert_int_equal(v[1].seq, 9);
    assert_int_equal(v[1].line, 1);
    free(v);
    /* another key: refused with file and line */
    assert_int_equal(audit_ckpt_read_file(path, ca_signer_get0_pubkey(o), 0,
                                          &v, &n, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "anchors.txt:1: checkpoint of seq 9"));
    /* a malformed line */
    snprintf(bad, sizeof(bad), "%s/bad.txt", dir);
    write_text(bad, "# ok\ncmpca-audit-checkpoint v1 seq=x\n");
    assert_int_equal(audit_ckpt_read_file(bad, NULL, 0, &v, &n, err,
                                          sizeof(err)), 0);
    assert_non_null(strstr(err, "bad.txt:2: malformed checkpoint"));
    /* unsigned lines: fine without a key, refused with one */
    write_text(bad, "cmpca-audit-checkpoint v1 seq=1 hash="
               "00000000000000000000000000000000"
               "00000000000000000000000000000000 time=5\r\n");
    assert_int_equal(audit_ckpt_read_file(bad, NULL, 0, &v, &n, err,
                                          sizeof(err)), 1);
    assert_int_equal(n, 1);
    free(v);
    assert_int_equal(audit_ckpt_read_file(bad, ca_signer_get0_pubkey(s), 0,
                                          &v, &n, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "is not signed"));
    /* appending to a directory fails */
    assert_int_equal(audit_ckpt_append(dir, line, err, sizeof(err)), 0);
    unlink(path);
    unlink(bad);
    rmdir(dir);
    free(dir);
    ca_signer_free(s);
    ca_signer_free(o);
}

static void test_pubkey_load(void **state)
{
    CA_SIGNER *s = new_signer("ec:P-256");
    char *dir = testutil_mkdtemp("audit");
    char path[512], err[256];
    unsigned char a[STORE_SHA256_LEN], b[STORE_SHA256_LEN];
    EVP_PKEY *pk;
    FILE *fp;

    (void)state;
    snprintf(path, sizeof(path), "%s/pub.pem", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PUBKEY(fp, ca_signer_get0_pubkey(s)), 1);
    fclose(fp);
    assert_non_null(pk = audit_pubkey_load(path, err, sizeof(err)));
    assert_int_equal(audit_key_id(pk, a), 1);
    assert_int_equal(audit_key_id(ca_signer_get0_pubkey(s), b), 1);
    assert_memory_equal(a, b, sizeof(a));
    EVP_PKEY_free(pk);
    write_text(path, "not a key\n");
    assert_null(audit_pubkey_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "no PEM public key"));
    unlink(path);
    assert_null(audit_pubkey_load(path, err, sizeof(err)));
    rmdir(dir);
    free(dir);
    ca_signer_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsigned_roundtrip),
        cmocka_unit_test(test_signed_ec),
        cmocka_unit_test(test_signed_rsa),
        cmocka_unit_test(test_signed_eddsa),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_pubkey_load),
    };

    return cmocka_run_group_tests_name("audit", tests, NULL, NULL);
}
