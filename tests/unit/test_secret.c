/*
 * Unit tests of util/secret: passphrase specs read from files (first line,
 * bounds, pipes, errors) and secret_file_read, which reads keys and
 * passphrases without leaving a stdio copy behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/secret.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static int group_setup(void **state)
{
    dir = testutil_mkdtemp("test_secret");
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

/* Writes |len| bytes of |data| to dir/|name|; returns the path (static). */
static const char *put(const char *name, const char *data, size_t len)
{
    static char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_file_read(void **state)
{
    char *buf = (char *)1, *big;
    size_t len = 1;

    assert_true(secret_file_read(put("k", "key\0bytes", 9), 64, &buf, &len));
    assert_int_equal(len, 9);
    assert_memory_equal(buf, "key\0bytes", 9);
    assert_int_equal(buf[9], '\0');
    secret_free(buf, len);
    /* exactly the bound, one over it, empty, missing, a directory */
    assert_true(secret_file_read(put("k", "12345678", 8), 8, &buf, &len));
    secret_free(buf, len);
    assert_false(secret_file_read(put("k", "123456789", 9), 8, &buf, &len));
    assert_int_equal(errno, EFBIG);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_true(secret_file_read(put("e", "", 0), 8, &buf, &len));
    assert_int_equal(len, 0);
    secret_free(buf, len);
    assert_false(secret_file_read("/nonexistent/k", 8, &buf, &len));
    assert_int_equal(errno, ENOENT);
    assert_false(secret_file_read(dir, 8, &buf, &len));
    assert_null(buf);
    /* a large file: read whole */
    assert_non_null(big = malloc(200000));
    memset(big, 'a', 200000);
    assert_true(secret_file_read(put("b", big, 200000), 200000, &buf, &len));
    assert_int_equal(len, 200000);
    secret_free(buf, len);
    free(big);
    secret_free(NULL, 5);
}

/* A pipe holding |data|, closed for writing; its /dev/fd path in |path|.
 * Returns the read end. */
static int pipe_with(const char *data, char *path, size_t pathlen)
{
    int fds[2];

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], data, strlen(data)), (ssize_t)strlen(data));
    close(fds[1]);
    snprintf(path, pathlen, "/dev/fd/%d", fds[0]);
    return fds[0];
}

/* A pipe has no size: the reads bound it. */
static void test_file_read_pipe(void **state)
{
    char path[64], *buf = NULL;
    size_t len = 0;
    int fd;

    fd = pipe_with("through a pipe\n", path, sizeof(path));
    assert_true(secret_file_read(path, 64, &buf, &len));
    assert_int_equal(len, 15);
    assert_memory_equal(buf, "through a pipe\n", 15);
    secret_free(buf, len);
    close(fd);
    fd = pipe_with("0123456789", path, sizeof(path));
    assert_false(secret_file_read(path, 9, &buf, &len));
    assert_int_equal(errno, EFBIG);
    close(fd);
}

/* file: specs take the first line, without its CR/LF. */
static void test_spec_file(void **state)
{
    char spec[700], buf[16], err[256];

    snprintf(spec, sizeof(spec), "file:%s", put("p", "s3cret\r\nrest\n", 13));
    assert_true(secret_read(spec, "passphrase", buf, sizeof(buf), err,
                            sizeof(err)));
    assert_string_equal(buf, "s3cret");
    snprintf(spec, sizeof(spec), "file:%s", put("p", "no newline", 10));
    assert_true(secret_read(spec, "passphrase", buf, sizeof(buf), err,
                            sizeof(err)));
    assert_string_equal(buf, "no newline");
    /* 14 characters and a newline fit in 16 bytes; 15 do not */
    snprintf(spec, sizeof(spec), "file:%s", put("p", "12345678901234\n", 15));
    assert_true(secret_read(spec, "passphrase", buf, sizeof(buf), err,
                            sizeof(err)));
    assert_string_equal(buf, "12345678901234");
    snprintf(spec, sizeof(spec), "file:%s", put("p", "123456789012345\n", 16));
    assert_false(secret_read(spec, "passphrase", buf, sizeof(buf), err,
                             sizeof(err)));
    assert_non_null(strstr(err, "too long"));
    snprintf(spec, sizeof(spec), "file:%s", put("p", "", 0));
    assert_false(secret_read(spec, "passphrase", buf, sizeof(buf), err,
                             sizeof(err)));
    assert_non_null(strstr(err, "empty"));
    assert_false(secret_read("file:/nonexistent/p", "passphrase", buf,
                             sizeof(buf), err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/p"));
}

/* env: secrets are wiped from the environment once read: the variable is
 * gone and the bytes that held "NAME=value" are zero. */
static void test_env_wiped(void **state)
{
    char buf[64], err[256];
    const char *v;
    char *kv;

    assert_int_equal(setenv("CMPCA_TEST_WIPE", "s3cret-value", 1), 0);
    assert_int_equal(setenv("CMPCA_TEST_KEEP", "other", 1), 0);
    assert_true(secret_read("env:CMPCA_TEST_WIPE", NULL, buf, sizeof(buf), err,
                            sizeof(err)));
    assert_string_equal(buf, "s3cret-value");
    /* a variable may serve several secrets until the wipe */
    assert_true(secret_read("env:CMPCA_TEST_WIPE", NULL, buf, sizeof(buf), err,
                            sizeof(err)));
    v = getenv("CMPCA_TEST_WIPE");
    assert_non_null(v);
    kv = (char *)v - strlen("CMPCA_TEST_WIPE=");
    assert_int_equal(secret_env_wipe_read(), 1);
    assert_null(getenv("CMPCA_TEST_WIPE"));
    assert_string_equal(getenv("CMPCA_TEST_KEEP"), "other");  /* not read */
    for (size_t i = 0; i < strlen("CMPCA_TEST_WIPE=s3cret-value"); i++)
        assert_int_equal(kv[i], 0);
    assert_false(secret_read("env:CMPCA_TEST_WIPE", NULL, buf, sizeof(buf), err,
                             sizeof(err)));
    assert_int_equal(secret_env_wipe_read(), 0);
    unsetenv("CMPCA_TEST_KEEP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_read),
        cmocka_unit_test(test_file_read_pipe),
        cmocka_unit_test(test_spec_file),
        cmocka_unit_test(test_env_wiped),
    };

    return cmocka_run_group_tests_name("secret", tests, group_setup,
                                       group_teardown);
}
