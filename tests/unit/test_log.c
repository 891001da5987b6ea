/*
 * Unit tests of the log's rate limit of repeated lines (log_admit,
 * log_flush_suppressed): per key and second, counts of what was held back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Waits for the start of a new second, so one test's lines fall into one. */
static void next_second(void)
{
    time_t t0 = time(NULL);

    while (time(NULL) == t0)
        usleep(10000);
}

static void test_admit_per_key(void **state)
{
    unsigned long held = 99;
    int i, admitted = 0;

    (void)state;
    next_second();
    for (i = 0; i < 50; i++) {
        if (log_admit("k=a", 5, &held))
            admitted++;
    }
    assert_int_equal(admitted, 5);
    /* another key has its own budget */
    assert_int_equal(log_admit("k=b", 5, &held), 1);
    assert_int_equal(held, 0);
    /* 0 = no limit */
    for (i = 0; i < 20; i++)
        assert_int_equal(log_admit("k=c", 0, &held), 1);
    /* the next second: admitted again, with the count held back */
    next_second();
    assert_int_equal(log_admit("k=a", 5, &held), 1);
    assert_int_equal(held, 45);
    assert_int_equal(log_admit("k=a", 5, &held), 1);
    assert_int_equal(held, 0);
}

static void test_flush(void **state)
{
    char path[] = "/tmp/test_log.XXXXXX", line[512];
    unsigned long held;
    int fd = mkstemp(path), i, found = 0;
    FILE *fp = fdopen(fd, "w+");

    (void)state;
    assert_non_null(fp);
    log_set_stream(fp);
    next_second();
    for (i = 0; i < 30; i++)
        log_admit("k=flush", 10, &held);
    /* within the second nothing is flushed yet */
    assert_int_equal(log_flush_suppressed(), 0);
    next_second();
    assert_int_equal(log_flush_suppressed(), 1);
    assert_int_equal(log_flush_suppressed(), 0);
    log_set_stream(NULL);
    rewind(fp);
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strstr(line, "suppressed 20 lines like: k=flush") != NULL)
            found++;
    assert_int_equal(found, 1);
    fclose(fp);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_per_key),
        cmocka_unit_test(test_flush),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
