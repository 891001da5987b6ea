/*
 * Metrics registry: fixed tables of C11 atomic counters (no lock on the hot
 * path; a mutex only when a new alias gets a slot) and the Prometheus text
 * renderer behind GET /metrics.
 */
#include "util/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIAS_SLOTS (METRICS_MAX_ALIASES + 1) /* last slot = "other" */
#define ALIAS_OTHER METRICS_MAX_ALIASES
#define ALIAS_NAME_MAX 64
#define STATUS_SLOTS 501 /* 100..599, then "other" */

static const char *const metrics_types[] = {
    "ir", "cr", "kur", "p10cr", "certConf", "rr", "genm", "pollReq",
    "error", "nested", "other", "invalid"
};
#define NTYPES (sizeof(metrics_types) / sizeof(metrics_types[0]))
#define TYPE_OTHER 10

static const char *const metrics_outcomes[] = { "accepted", "rejected", "error" };
#define NOUTCOMES 3
#define OUTCOME_ERROR 2

/* Upper bounds in seconds; the last (+Inf) bucket is implicit. */
static const double bucket_le[] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
};
static const char *const bucket_txt[] = {
    "0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "+Inf"
};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]) + 1)

static pthread_mutex_t alias_lock = PTHREAD_MUTEX_INITIALIZER;
static char alias_names[METRICS_MAX_ALIASES][ALIAS_NAME_MAX + 1];
static atomic_uint alias_count;   /* slots published (names immutable) */

static atomic_uint_fast64_t req_total[ALIAS_SLOTS][NTYPES][NOUTCOMES];
static atomic_uint_fast64_t issued_total[ALIAS_SLOTS];
static atomic_uint_fast64_t revoked_total[ALIAS_SLOTS];
static atomic_uint_fast64_t http_total[STATUS_SLOTS];
static atomic_uint_fast64_t hist_bucket[NTYPES][NBUCKETS]; /* not cumulative */
static atomic_uint_fast64_t hist_sum_ns[NTYPES];
static atomic_uint_fast64_t commit_bucket[NBUCKETS];
static atomic_uint_fast64_t commit_sum_ns;
static atomic_uint_fast64_t commit_failed;

/* Adds |seconds| to the histogram |bucket| (not cumulative) / |sum_ns|. */
static void metrics_hist_add(atomic_uint_fast64_t *bucket,
                             atomic_uint_fast64_t *sum_ns, double seconds)
{
    unsigned b;
    uint64_t ns;

    if (!(seconds >= 0))                /* also catches NaN */
        seconds = 0;
    for (b = 0; b < NBUCKETS - 1; b++)
        if (seconds <= bucket_le[b])
            break;
    atomic_fetch_add_explicit(&bucket[b], 1, memory_order_relaxed);
    ns = seconds > 1e9 ? UINT64_C(1000000000) * 1000000000u
                       : (uint64_t)(seconds * 1e9 + 0.5);
    atomic_fetch_add_explicit(sum_ns, ns, memory_order_relaxed);
}

/* Writes the samples of one histogram series; |label| is `name="value"`
 * or empty. Nothing while it is empty. */
static void metrics_hist_render(FILE *f, const char *name, const char *label,
                                atomic_uint_fast64_t *bucket,
                                atomic_uint_fast64_t *sum_ns)
{
    uint64_t cum = 0, cnt[NBUCKETS], total = 0;
    const char *sep = *label != '\0' ? "," : "";
    unsigned b;

    for (b = 0; b < NBUCKETS; b++) {
        cnt[b] = atomic_load_explicit(&bucket[b], memory_order_relaxed);
        total += cnt[b];
    }
    if (total == 0)
        return;
    for (b = 0; b < NBUCKETS; b++) {
        cum += cnt[b];
        fprintf(f, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, label, sep,
                bucket_txt[b], (unsigned long long)cum);
    }
    fprintf(f, "%s_sum%s%s%s %.9f\n", name, *label ? "{" : "", label,
            *label ? "}" : "",
            (double)atomic_load_explicit(sum_ns, memory_order_relaxed) / 1e9);
    fprintf(f, "%s_count%s%s%s %llu\n", name, *label ? "{" : "", label,
            *label ? "}" : "", (unsigned long long)cum);
}

/* Returns 1 if |s| is a usable label value: 1-64 of [A-Za-z0-9._-]. */
static int metrics_label_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= ALIAS_NAME_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

/* Returns the slot index of |alias|, giving it a new slot if there is room,
 * else ALIAS_OTHER. */
static unsigned metrics_alias_slot(const char *alias)
{
    unsigned i, n;

    if (!metrics_label_ok(alias) || strcmp(alias, "other") == 0)
        return ALIAS_OTHER;
    n = atomic_load_explicit(&alias_count, memory_order_acquire);
    for (i = 0; i < n; i++)
        if (strcmp(alias_names[i], alias) == 0)
            return i;
    pthread_mutex_lock(&alias_lock);
    n = atomic_load_explicit(&alias_count, memory_order_relaxed);
    for (; i < n; i++)                  /* slots added meanwhile */
        if (strcmp(alias_names[i], alias) == 0)
            goto end;
    if (n >= METRICS_MAX_ALIASES) {
        i = ALIAS_OTHER;
        goto end;
    }
    strcpy(alias_names[n], alias);      /* length checked above */
    atomic_store_explicit(&alias_count, n + 1, memory_order_release);
    i = n;
 end:
    pthread_mutex_unlock(&alias_lock);
    return i;
}

/* Returns the alias label of slot |i|. */
static const char *metrics_alias_name(unsigned i)
{
    return i == ALIAS_OTHER ? "other" : alias_names[i];
}

/* Returns the index of |s| in |tab| (|n| entries) or |dflt|. */
static unsigned metrics_index(const char *const *tab, unsigned n,
                              const char *s, unsigned dflt)
{
    unsigned i;

    if (s == NULL)
        return dflt;
    for (i = 0; i < n; i++)
        if (strcmp(tab[i], s) == 0)
            return i;
    return dflt;
}

void metrics_observe_cmp(const char *alias, const char *body_type,
                         const char *outcome, double seconds)
{
    unsigned a = metrics_alias_slot(alias);
    unsigned t = metrics_index(metrics_types, NTYPES, body_type, TYPE_OTHER);
    unsigned o = metrics_index(metrics_outcomes, NOUTCOMES, outcome,
                               OUTCOME_ERROR);

    atomic_fetch_add_explicit(&req_total[a][t][o], 1, memory_order_relaxed);
    metrics_hist_add(hist_bucket[t], &hist_sum_ns[t], seconds);
}

void metrics_observe_commit(int ok, double seconds)
{
    metrics_hist_add(commit_bucket, &commit_sum_ns, seconds);
    if (!ok)
        atomic_fetch_add_explicit(&commit_failed, 1, memory_order_relaxed);
}

void metrics_cert_issued(const char *alias)
{
    atomic_fetch_add_explicit(&issued_total[metrics_alias_slot(alias)], 1,
                              memory_order_relaxed);
}

void metrics_cert_revoked(const char *alias)
{
    atomic_fetch_add_explicit(&revoked_total[metrics_alias_slot(alias)], 1,
                              memory_order_relaxed);
}

void metrics_http_status(int status)
{
    unsigned i = (status >= 100 && status <= 599) ? (unsigned)(status - 100)
                                                  : STATUS_SLOTS - 1;

    atomic_fetch_add_explicit(&http_total[i], 1, memory_order_relaxed);
}

/* Writes one per-alias counter family (only non-zero samples). */
static void metrics_render_alias_counter(FILE *f, const char *name,
                                         const char *help,
                                         atomic_uint_fast64_t *tab,
                                         unsigned nalias)
{
    unsigned a;

    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (a = 0; a < ALIAS_SLOTS; a++) {
        uint64_t v;
        if (a >= nalias && a != ALIAS_OTHER)
            continue;
        v = atomic_load_explicit(&tab[a], memory_order_relaxed);
        if (v != 0)
            fprintf(f, "%s{alias=\"%s\"} %llu\n", name, metrics_alias_name(a),
                    (unsigned long long)v);
    }
}

char *metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    unsigned a, t, o, nalias, i;
    FILE *f;

    if (len != NULL)
        *len = 0;
    f = open_memstream(&buf, &n);
    if (f == NULL)
        return NULL;
    nalias = atomic_load_explicit(&alias_count, memory_order_acquire);

    fputs("# HELP cmpca_requests_total CMP requests answered, by alias, "
          "request body type and outcome.\n"
          "# TYPE cmpca_requests_total counter\n", f);
    for (a = 0; a < ALIAS_SLOTS; a++) {
        if (a >= nalias && a != ALIAS_OTHER)
            continue;
        for (t = 0; t < NTYPES; t++)
            for (o = 0; o < NOUTCOMES; o++) {
                uint64_t v = atomic_load_explicit(&req_total[a][t][o],
                                                  memory_order_relaxed);
                if (v != 0)
                    fprintf(f, "cmpca_requests_total{alias=\"%s\",type=\"%s\","
                            "outcome=\"%s\"} %llu\n", metrics_alias_name(a),
                            metrics_types[t], metrics_outcomes[o],
                            (unsigned long long)v);
            }
    }

    fputs("# HELP cmpca_request_duration_seconds Time to answer a CMP "
          "request, by request body type.\n"
          "# TYPE cmpca_request_duration_seconds histogram\n", f);
    for (t = 0; t < NTYPES; t++) {
        char label[40];

        snprintf(label, sizeof(label), "type=\"%s\"", metrics_types[t]);
        metrics_hist_render(f, "cmpca_request_duration_seconds", label,
                            hist_bucket[t], &hist_sum_ns[t]);
    }

    fputs("# HELP cmpca_store_commit_seconds Time a write transaction took "
          "to commit durably (group commit wait and fsync included).\n"
          "# TYPE cmpca_store_commit_seconds histogram\n", f);
    metrics_hist_render(f, "cmpca_store_commit_seconds", "", commit_bucket,
                        &commit_sum_ns);
    fprintf(f, "# HELP cmpca_store_commit_failures_total Write transactions "
            "whose commit failed (nothing of them was kept).\n"
            "# TYPE cmpca_store_commit_failures_total counter\n"
            "cmpca_store_commit_failures_total %llu\n",
            (unsigned long long)atomic_load_explicit(&commit_failed,
                                                     memory_order_relaxed));

    metrics_render_alias_counter(f, "cmpca_certificates_issued_total",
                                 "Certificates issued, by alias.",
                                 issued_total, nalias);
    metrics_render_alias_counter(f, "cmpca_certificates_revoked_total",
                                 "Certificates revoked, by alias.",
                                 revoked_total, nalias);

    fputs("# HELP cmpca_http_responses_total HTTP responses sent, by status "
          "code.\n# TYPE cmpca_http_responses_total counter\n", f);
    for (i = 0; i < STATUS_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&http_total[i], memory_order_relaxed);
        if (v == 0)
            continue;
        if (i == STATUS_SLOTS - 1)
            fprintf(f, "cmpca_http_responses_total{code=\"other\"} %llu\n",
                    (unsigned long long)v);
        else
            fprintf(f, "cmpca_http_responses_total{code=\"%u\"} %llu\n",
                    i + 100, (unsigned long long)v);
    }

    if (ferror(f)) {
        fclose(f);
        free(buf);
        return NULL;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len != NULL)
        *len = n;
    return buf;
}

void metrics_reset(void)
{
    unsigned a, t, o, b, i;

    pthread_mutex_lock(&alias_lock);
    atomic_store(&alias_count, 0);
    memset(alias_names, 0, sizeof(alias_names));
    for (a = 0; a < ALIAS_SLOTS; a++) {
        for (t = 0; t < NTYPES; t++)
            for (o = 0; o < NOUTCOMES; o++)
                atomic_store(&req_total[a][t][o], 0);
        atomic_store(&issued_total[a], 0);
        atomic_store(&revoked_total[a], 0);
    }
    for (t = 0; t < NTYPES; t++) {
        for (b = 0; b < NBUCKETS; b++)
            atomic_store(&hist_bucket[t][b], 0);
        atomic_store(&hist_sum_ns[t], 0);
    }
    for (b = 0; b < NBUCKETS; b++)
        atomic_store(&commit_bucket[b], 0);
    atomic_store(&commit_sum_ns, 0);
    atomic_store(&commit_failed, 0);
    for (i = 0; i < STATUS_SLOTS; i++)
        atomic_store(&http_total[i], 0);
    pthread_mutex_unlock(&alias_lock);
}

int metrics_appendf(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*n >= cap)
        return 0;
    va_start(ap, fmt);
    w = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - *n) {
        buf[*n] = '\0';
        return 0;
    }
    *n += (size_t)w;
    return 1;
}
