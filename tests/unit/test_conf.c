/*
 * Unit tests of the configuration reader: sections, line numbers in
 * errors, duplicates, unknown keys and the typed getters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "conf/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct conf *load_ok(const char *text)
{
    struct conf *c = NULL;
    char err[256];

    assert_int_equal(conf_load_string("t.conf", text, &c, err, sizeof(err)), 1);
    return c;
}

static void load_fails(const char *text, const char *expect)
{
    struct conf *c = NULL;
    char err[256] = "";

    assert_int_equal(conf_load_string("t.conf", text, &c, err, sizeof(err)), 0);
    assert_null(c);
    if (strstr(err, expect) == NULL)
        fail_msg("error '%s' lacks '%s'", err, expect);
}

static void test_sections(void **state)
{
    struct conf *c = load_ok("; comment\n[server]\nlisten = 127.0.0.1:80\n"
                             "\n[alias a]\nca = x\n[alias b]\nca = y\n");
    const struct conf_section *s;
    int n = 0;

    (void)state;
    s = conf_find(c, "server", "");
    assert_non_null(s);
    assert_string_equal(conf_get(s, "listen"), "127.0.0.1:80");
    for (s = conf_next(c, "alias", NULL); s != NULL; s = conf_next(c, "alias", s))
        n++;
    assert_int_equal(n, 2);
    assert_string_equal(conf_get(conf_find(c, "alias", "b"), "ca"), "y");
    assert_null(conf_find(c, "alias", "c"));
    conf_free(c);
}

static void test_errors_have_lines(void **state)
{
    (void)state;
    load_fails("[a]\nx = 1\nx = 2\n", "t.conf:3: key 'x' repeats");
    load_fails("[a]\nx = 1\n[a]\ny = 2\n", "t.conf:3: section [a] repeats the one at line 1");
    load_fails("x = 1\n", "t.conf:1: key 'x' outside");
    load_fails("[a]\nnot a key value line\n", "t.conf:2:");
}

/* inih reads lines into a fixed buffer: a longer line is refused with its
 * number, not parsed as two lines (the tail "[x]" would become a section) */
static void test_long_line(void **state)
{
    char text[700], path[] = "/tmp/test_conf.XXXXXX";
    struct conf *c = NULL;
    char err[256] = "";
    FILE *fp;
    int fd;

    (void)state;
    memset(text, 0, sizeof(text));
    strcpy(text, "[a]\nx = 1\npkcs11_module = ");
    memset(text + strlen(text), 'm', 300);
    strcat(text, "[x]\ny = 2\n");
    load_fails(text, "t.conf:3: line longer than");
    /* the same from a file */
    assert_true((fd = mkstemp(path)) >= 0);
    assert_non_null(fp = fdopen(fd, "w"));
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(conf_load(path, &c, err, sizeof(err)), 0);
    unlink(path);
    if (strstr(err, ":3: line longer than") == NULL)
        fail_msg("error '%s'", err);
    /* a long last line without a newline is cut the same way */
    text[strlen(text) - 11] = '\0';
    load_fails(text, "t.conf:3: line longer than");
    /* lines up to the limit still load */
    c = load_ok("[a]\nx = 1\n");
    conf_free(c);
}

static void test_empty_section(void **state)
{
    struct conf *c = load_ok("[profile device]\n\n[alias x]\nca = 1\n");

    (void)state;
    assert_non_null(conf_find(c, "profile", "device"));
    assert_int_equal(conf_find(c, "profile", "device")->line, 1);
    assert_non_null(conf_find(c, "alias", "x"));
    conf_free(c);
}

static void test_unknown_key(void **state)
{
    struct conf *c = load_ok("[p]\nknown = 1\n\nunknwon = 2\n");
    const struct conf_section *s = conf_find(c, "p", "");
    char err[256];

    (void)state;
    assert_non_null(conf_get(s, "known"));
    assert_int_equal(conf_check_used(c, s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "t.conf:4: unknown key 'unknwon' in [p]"));
    conf_free(c);
}

static void test_typed(void **state)
{
    struct conf *c = load_ok("[s]\nn = 42\nb = yes\nd = 5m\nz = 64k\nbad = 4x\n"
                             "big = 100\n");
    const struct conf_section *s = conf_find(c, "s", "");
    char err[256];
    long v;
    int b;

    (void)state;
    assert_int_equal(conf_get_long(c, s, "n", 0, 0, 100, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 42);
    assert_int_equal(conf_get_bool(c, s, "b", 0, &b, err, sizeof(err)), 1);
    assert_int_equal(b, 1);
    assert_int_equal(conf_get_duration(c, s, "d", 0, 0, 86400, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 300);
    assert_int_equal(conf_get_size(c, s, "z", 0, 0, 1L << 30, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 65536);
    assert_int_equal(conf_get_duration(c, s, "bad", 0, 0, 10, &v, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "t.conf:6:"));
    assert_int_equal(conf_get_long(c, s, "big", 0, 0, 10, &v, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "outside [0, 10]"));
    assert_int_equal(conf_get_long(c, s, "absent", 7, 0, 10, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 7);
    conf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_errors_have_lines),
        cmocka_unit_test(test_empty_section),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_typed),
    };

    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
