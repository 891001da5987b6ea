/*
 * Tests of the metrics registry: Prometheus text format, counts, histogram
 * buckets, label folding (unknown types, too many aliases) and concurrent
 * updates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/metrics.h"

static int reset(void **state)
{
    metrics_reset();
    return 0;
}

/* Returns 1 if the rendered text has |line| as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
        p += n;
    }
    return 0;
}

/* Every line is a comment or "name{labels} value" / "name value". */
static void check_format(const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    assert_int_equal(strlen(text), len);
    assert_true(len > 0 && text[len - 1] == '\n');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *sp;

        assert_non_null(nl);
        if (*p == '#') {
            assert_true(strncmp(p, "# HELP cmpca_", 13) == 0
                        || strncmp(p, "# TYPE cmpca_", 13) == 0);
        } else {
            assert_true(strncmp(p, "cmpca_", 6) == 0);
            sp = memchr(p, ' ', (size_t)(nl - p));
            assert_non_null(sp);
            if (memchr(p, '{', (size_t)(sp - p)) != NULL)
                assert_true(sp[-1] == '}');
            assert_true(sp[1] >= '0' && sp[1] <= '9');
        }
        p = nl + 1;
    }
}

static void test_empty(void **state)
{
    size_t len;
    char *t = metrics_render(&len);

    assert_non_null(t);
    check_format(t, len);
    assert_true(has_line(t, "# TYPE cmpca_requests_total counter"));
    assert_true(has_line(t, "# TYPE cmpca_request_duration_seconds "
                            "histogram"));
    assert_true(has_line(t, "# TYPE cmpca_certificates_issued_total "
                            "counter"));
    assert_true(has_line(t, "# TYPE cmpca_certificates_revoked_total "
                            "counter"));
    assert_true(has_line(t, "# TYPE cmpca_http_responses_total counter"));
    assert_true(has_line(t, "# TYPE cmpca_store_commit_seconds histogram"));
    assert_true(has_line(t, "cmpca_store_commit_failures_total 0"));
    assert_null(strstr(t, "{"));          /* no samples yet */
    free(t);
}

static void test_counts(void **state)
{
    size_t len;
    char *t;

    metrics_observe_cmp("vendorA", "ir", "accepted", 0.003);
    metrics_observe_cmp("vendorA", "ir", "accepted", 0.0001);
    metrics_observe_cmp("vendorA", "certConf", "accepted", 0.7);
    metrics_observe_cmp("vendorB", "ir", "rejected", 100);
    metrics_observe_cmp("vendorB", "bogus", "weird", -1);
    metrics_observe_cmp(NULL, "invalid", "error", 0.01);
    metrics_cert_issued("vendorA");
    metrics_cert_issued("vendorA");
    metrics_cert_revoked("vendorB");
    metrics_http_status(200);
    metrics_http_status(200);
    metrics_http_status(413);
    metrics_http_status(42);
    metrics_observe_commit(1, 0.0004);
    metrics_observe_commit(1, 0.003);
    metrics_observe_commit(0, 0.02);

    t = metrics_render(&len);
    assert_non_null(t);
    check_format(t, len);
    assert_true(has_line(t, "cmpca_requests_total{alias=\"vendorA\","
                            "type=\"ir\",outcome=\"accepted\"} 2"));
    assert_true(has_line(t, "cmpca_requests_total{alias=\"vendorA\","
                            "type=\"certConf\",outcome=\"accepted\"} 1"));
    assert_true(has_line(t, "cmpca_requests_total{alias=\"vendorB\","
                            "type=\"ir\",outcome=\"rejected\"} 1"));
    assert_true(has_line(t, "cmpca_requests_total{alias=\"vendorB\","
                            "type=\"other\",outcome=\"error\"} 1"));
    assert_true(has_line(t, "cmpca_requests_total{alias=\"other\","
                            "type=\"invalid\",outcome=\"error\"} 1"));
    /* ir: 0.0001 -> first bucket, 0.003 -> le 0.005, 100 -> +Inf only */
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type=\"ir\","
                            "le=\"0.0005\"} 1"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type=\"ir\","
                            "le=\"0.002\"} 1"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type=\"ir\","
                            "le=\"0.005\"} 2"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type=\"ir\","
                            "le=\"5\"} 2"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type=\"ir\","
                            "le=\"+Inf\"} 3"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_count{type=\"ir\"}"
                            " 3"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_sum{type=\"ir\"} "
                            "100.003100000"));
    /* exact bucket edge is inclusive (le) */
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type="
                            "\"invalid\",le=\"0.01\"} 1"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type="
                            "\"certConf\",le=\"0.5\"} 0"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_bucket{type="
                            "\"certConf\",le=\"1\"} 1"));
    assert_null(strstr(t, "type=\"kur\""));
    assert_true(has_line(t, "cmpca_certificates_issued_total{alias="
                            "\"vendorA\"} 2"));
    assert_true(has_line(t, "cmpca_certificates_revoked_total{alias="
                            "\"vendorB\"} 1"));
    assert_true(has_line(t, "cmpca_http_responses_total{code=\"200\"} 2"));
    assert_true(has_line(t, "cmpca_http_responses_total{code=\"413\"} 1"));
    assert_true(has_line(t, "cmpca_http_responses_total{code=\"other\"} 1"));
    /* the store's commits: one series, no label */
    assert_true(has_line(t, "cmpca_store_commit_seconds_bucket{le=\"0.0005\"}"
                            " 1"));
    assert_true(has_line(t, "cmpca_store_commit_seconds_bucket{le=\"0.005\"}"
                            " 2"));
    assert_true(has_line(t, "cmpca_store_commit_seconds_bucket{le=\"0.025\"}"
                            " 3"));
    assert_true(has_line(t, "cmpca_store_commit_seconds_bucket{le=\"+Inf\"}"
                            " 3"));
    assert_true(has_line(t, "cmpca_store_commit_seconds_count 3"));
    assert_true(has_line(t, "cmpca_store_commit_seconds_sum 0.023400000"));
    assert_true(has_line(t, "cmpca_store_commit_failures_total 1"));
    free(t);
}

static void test_alias_cap(void **state)
{
    char name[32], line[128];
    size_t len;
    char *t;
    int i;

    for (i = 0; i < METRICS_MAX_ALIASES + 10; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        metrics_cert_issued(name);
    }
    metrics_cert_issued("bad\"label\n");  /* never reaches the output */
    metrics_cert_issued("a0");
    t = metrics_render(&len);
    check_format(t, len);
    assert_true(has_line(t, "cmpca_certificates_issued_total{alias=\"a0\"} 2"));
    snprintf(line, sizeof(line), "cmpca_certificates_issued_total{alias="
             "\"a%d\"} 1", METRICS_MAX_ALIASES - 1);
    assert_true(has_line(t, line));
    snprintf(line, sizeof(line), "alias=\"a%d\"", METRICS_MAX_ALIASES);
    assert_null(strstr(t, line));
    assert_true(has_line(t, "cmpca_certificates_issued_total{alias=\"other\"}"
                            " 11"));
    assert_null(strstr(t, "bad"));
    free(t);
}

static void *hammer(void *arg)
{
    char name[16];
    int i;

    for (i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "al%d", i % 8);
        metrics_observe_cmp(name, "kur", "accepted", 0.001);
        metrics_http_status(200);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t th[8];
    size_t len;
    char *t;
    int i;

    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    t = metrics_render(&len);
    check_format(t, len);
    assert_true(has_line(t, "cmpca_http_responses_total{code=\"200\"} "
                            "160000"));
    assert_true(has_line(t, "cmpca_request_duration_seconds_count{type="
                            "\"kur\"} 160000"));
    assert_true(has_line(t, "cmpca_requests_total{alias=\"al3\",type=\"kur\","
                            "outcome=\"accepted\"} 20000"));
    assert_null(strstr(t, "alias=\"other\""));   /* 8 aliases, no folding */
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty, reset),
        cmocka_unit_test_setup(test_counts, reset),
        cmocka_unit_test_setup(test_alias_cap, reset),
        cmocka_unit_test_setup(test_threads, reset),
    };

    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
