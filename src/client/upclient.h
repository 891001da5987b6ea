/*
 * The upstream CMP client of an RA alias (mode = upstream): posts one DER
 * PKIMessage to the upstream CMP server over HTTP(S) per RFC 9811 with
 * libcurl and returns the DER answer. Keep-alive connections are pooled per
 * client; TLS verifies the server against the configured CA file and may
 * present a client certificate; the answer's size is bounded. The client
 * never sees ASN.1 beyond the bytes it carries. Thread-safe: one UPCLIENT is
 * shared by all worker threads of the server.
 */
#ifndef CMPCA_UPCLIENT_H
#define CMPCA_UPCLIENT_H

#include <stddef.h>

typedef struct upclient UPCLIENT;

struct upclient_conf {
    const char *url;            /* http://host:port/path or https://... */
    const char *tls_ca_file;    /* PEM CAs for an https server, or NULL
                                 * (then https is refused) */
    const char *tls_cert_file;  /* optional client certificate (PEM) */
    const char *tls_key_file;   /* its key (PEM, unencrypted, 0600) */
    long connect_timeout_ms;    /* 0 = 5000 */
    long timeout_ms;            /* whole exchange; 0 = 30000 */
    int retries;                /* extra attempts after a transport failure
                                 * (never after an HTTP answer); 0 = none */
    size_t max_response;        /* bytes; 0 = 1 MiB */
    int max_conns;              /* pooled keep-alive connections; 0 = 8 */
    const char *metrics_label;  /* alias name for the metrics lines */
};

enum upclient_rc {
    UPCLIENT_OK = 0,      /* an HTTP 200..599 answer with a PKIMessage body
                           * (content type application/pkixcmp) */
    UPCLIENT_TIMEOUT,     /* no answer in time */
    UPCLIENT_CONNECT,     /* could not connect / TLS failed */
    UPCLIENT_HTTP,        /* answer without a CMP body (wrong type, empty) */
    UPCLIENT_TOO_BIG,     /* answer over max_response */
    UPCLIENT_ERROR        /* internal failure */
};

/* Reads the TLS files into memory (so a later privilege drop does not
 * matter). NULL with |err| set on failure. */
UPCLIENT *upclient_new(const struct upclient_conf *conf, char *err,
                       size_t errlen);
void upclient_free(UPCLIENT *uc);

/* Posts |req| and on UPCLIENT_OK sets *rsp (OPENSSL_malloc'd, caller frees
 * with OPENSSL_free) and *http_status. |err| says what failed otherwise. */
enum upclient_rc upclient_post(UPCLIENT *uc, const unsigned char *req,
                               size_t req_len, unsigned char **rsp,
                               size_t *rsp_len, long *http_status,
                               char *err, size_t errlen);

const char *upclient_rc_name(enum upclient_rc rc);

/* Appends the metrics of every live client (cmpca_upstream_requests_total,
 * cmpca_upstream_errors_total{kind}, cmpca_upstream_seconds histogram, each
 * labelled alias=metrics_label) to |buf| (|cap| bytes, *n used) with
 * metrics_appendf, for cmd_serve's metrics_extra hook. Returns 1, or 0 when
 * it did not fit. */
int upclient_metrics_append(char *buf, size_t cap, size_t *n);

#endif
