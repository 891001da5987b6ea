/*
 * Process-wide metrics registry (counters and histograms) rendered in the
 * Prometheus text exposition format for GET /metrics. Thread-safe; label
 * cardinality is bounded (unknown label values fold into "other").
 */
#ifndef CMPCA_UTIL_METRICS_H
#define CMPCA_UTIL_METRICS_H

#include <stddef.h>

/* At most this many distinct aliases get their own label; later ones are
 * counted as alias="other". */
#define METRICS_MAX_ALIASES 64

/* Records one answered CMP request: cmpca_requests_total{alias,type,outcome}
 * +1 and cmpca_request_duration_seconds{type} observes |seconds|.
 * |body_type| is one of "ir","cr","kur","p10cr","certConf","rr","genm",
 * "pollReq","error","nested","other","invalid" (anything else -> "other");
 * |outcome| is "accepted","rejected" or "error" (anything else -> "error").
 * NULL alias counts as "other". */
void metrics_observe_cmp(const char *alias, const char *body_type,
                         const char *outcome, double seconds);
/* cmpca_store_commit_seconds observes |seconds| (a write transaction's
 * durable commit, group commit wait and fsync included);
 * cmpca_store_commit_failures_total +1 unless |ok|. */
void metrics_observe_commit(int ok, double seconds);
/* cmpca_certificates_issued_total{alias} +1. */
void metrics_cert_issued(const char *alias);
/* cmpca_certificates_revoked_total{alias} +1. */
void metrics_cert_revoked(const char *alias);
/* cmpca_http_responses_total{code} +1 (called by the HTTP layer for every
 * response it sends; codes outside 100..599 count as code="other"). */
void metrics_http_status(int status);

/* Returns the whole registry as Prometheus text (HELP/TYPE lines, one sample
 * per line, NUL-terminated) in a malloc'ed buffer, its length (without NUL)
 * in |*len| if |len| is not NULL; NULL on allocation failure. */
char *metrics_render(size_t *len);

/* Appends printf output to the Prometheus text in |buf| (|cap| bytes, *n
 * of them used) for the modules' metrics_extra hooks. Returns 1, or 0 when
 * it does not fit (*n unchanged: the text so far stays whole). */
int metrics_appendf(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears every counter and the alias table (for tests). */
void metrics_reset(void);

#endif
