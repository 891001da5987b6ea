/*
 * Unit tests of util/kek: the key-encryption key read from a file or the
 * environment (64 hex digits only), AES-256-GCM seal/open round trips, and
 * every kind of tampering refused (key, associated name, nonce, ciphertext,
 * tag, length).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/kek.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEX64 "00112233445566778899aabbccddeeff" \
              "00112233445566778899AABBCCDDEEFF"
#define NOTHEX "zz112233445566778899aabbccddeeff" \
               "00112233445566778899aabbccddeeff"

static char *dir;

static int group_setup(void **state)
{
    dir = testutil_mkdtemp("test_kek");
    return dir != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    free(dir);
    return 0;
}

/* Writes |text| to dir/|name|; returns "file:PATH" (static). */
static const char *spec_file(const char *name, const char *text)
{
    static char spec[700];
    char path[600];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    snprintf(spec, sizeof(spec), "file:%s", path);
    return spec;
}

static void test_kek_load(void **state)
{
    char err[256];
    KEK *k = NULL;

    assert_true(kek_load(spec_file("k1", HEX64 "\n"), &k, err, sizeof(err)));
    assert_non_null(k);
    kek_free(k);
    setenv("TEST_KEK_HEX", HEX64, 1);
    assert_true(kek_load("env:TEST_KEK_HEX", &k, err, sizeof(err)));
    kek_free(k);
    /* not 32 octets of hex, or not a file/env spec */
    assert_false(kek_load(spec_file("k2", "0011\n"), &k, err, sizeof(err)));
    assert_null(k);
    assert_non_null(strstr(err, "64 hex digits"));
    assert_false(kek_load(spec_file("k3", NOTHEX "\n"), &k, err, sizeof(err)));
    assert_false(kek_load(spec_file("k4", HEX64 "00\n"), &k, err, sizeof(err)));
    assert_false(kek_load(HEX64, &k, err, sizeof(err)));
    assert_false(kek_load("prompt", &k, err, sizeof(err)));
    assert_false(kek_load(NULL, &k, err, sizeof(err)));
    assert_false(kek_load("env:TEST_KEK_UNSET_VARIABLE", &k, err, sizeof(err)));
    kek_free(NULL);
}

static void test_kek_seal_open(void **state)
{
    unsigned char key[KEK_KEY_LEN], key2[KEK_KEY_LEN];
    static const unsigned char pt[] = "one-time secret";
    unsigned char *sealed = NULL, *sealed2 = NULL, *out = NULL;
    size_t slen = 0, slen2 = 0, olen = 0, i;
    KEK *k, *k2;

    memset(key, 0x42, sizeof(key));
    memcpy(key2, key, sizeof(key2));
    key2[31] ^= 1;
    k = kek_new_raw(key);
    k2 = kek_new_raw(key2);
    assert_true(kek_seal(k, "ref-1", pt, sizeof(pt) - 1, &sealed, &slen));
    assert_int_equal(slen, sizeof(pt) - 1 + KEK_OVERHEAD);
    /* the plaintext does not appear in the sealed bytes */
    for (i = 0; i + 8 <= slen; i++)
        assert_false(memcmp(sealed + i, pt, 8) == 0);
    assert_true(kek_open(k, "ref-1", sealed, slen, &out, &olen));
    assert_int_equal(olen, sizeof(pt) - 1);
    assert_memory_equal(out, pt, olen);
    assert_int_equal(out[olen], '\0');
    kek_clear_free(out, olen);
    out = NULL;
    /* a fresh nonce every time */
    assert_true(kek_seal(k, "ref-1", pt, sizeof(pt) - 1, &sealed2, &slen2));
    assert_false(memcmp(sealed, sealed2, KEK_NONCE_LEN) == 0);
    free(sealed2);
    /* another key, another name, any flipped byte, a short input: refused */
    assert_false(kek_open(k2, "ref-1", sealed, slen, &out, &olen));
    assert_false(kek_open(k, "ref-2", sealed, slen, &out, &olen));
    for (i = 0; i < slen; i++) {
        sealed[i] ^= 0x80;
        assert_false(kek_open(k, "ref-1", sealed, slen, &out, &olen));
        assert_null(out);
        sealed[i] ^= 0x80;
    }
    assert_false(kek_open(k, "ref-1", sealed, slen - 1, &out, &olen));
    assert_false(kek_open(k, "ref-1", sealed, KEK_OVERHEAD - 1, &out, &olen));
    free(sealed);
    /* an empty secret seals too */
    assert_true(kek_seal(k, "r", pt, 0, &sealed, &slen));
    assert_true(kek_open(k, "r", sealed, slen, &out, &olen));
    assert_int_equal(olen, 0);
    kek_clear_free(out, olen);
    free(sealed);
    kek_free(k);
    kek_free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kek_load),
        cmocka_unit_test(test_kek_seal_open),
    };

    return cmocka_run_group_tests_name("kek", tests, group_setup,
                                       group_teardown);
}
