/*
 * The HTTP front end (RFC 9811 CMP over HTTP) on libmicrohttpd: routing,
 * limits, keep-alive and graceful shutdown. Bytes in, bytes out: the layer
 * never sees ASN.1; one callback turns a request body into a response body.
 */
#ifndef CMPCA_HTTP_H
#define CMPCA_HTTP_H

#include <stddef.h>

/* Upper bound for an alias / profile label: 1-64 chars of [A-Za-z0-9._-]. */
#define HTTP_LABEL_MAX 64

/* per_ip_conns value meaning "no per-address limit". */
#define HTTP_NO_LIMIT ((unsigned)-1)

struct http_server;

/* Most listening sockets one server has. */
#define HTTP_MAX_LISTENERS 8

/* What a listener serves. */
enum http_listen_kind {
    HTTP_LISTEN_CMP = 0,       /* CMP endpoints; also /health and /metrics
                                  for loopback clients when the server has no
                                  HTTP_LISTEN_METRICS listener */
    HTTP_LISTEN_METRICS        /* /health and /metrics only (to anyone) */
};

/* One listening socket. */
struct http_listen {
    const char *addr;          /* numeric "127.0.0.1", "::1", "0.0.0.0", "::" */
    unsigned short port;       /* 0 = pick a free port */
    enum http_listen_kind kind;
    int tls;                   /* 1 = HTTPS with conf->tls_cert_pem/_key_pem */
    int tls_client_auth;       /* 1 = (with tls) a client certificate that
                                  verifies against conf->tls_client_ca_pem is
                                  required; others get 403 */
};

/* One request for a resource (OCSP, CRL, CA certificate) as the resource
 * handler sees it; read-only, valid for the call. */
struct http_resource_request {
    const char *method;        /* "GET", "HEAD" or "POST" (others: 405 from
                                  the HTTP layer) */
    const char *path;          /* the %-decoded path, e.g. "/ocsp/MEow..." */
    const char *content_type;  /* POST: the Content-Type header or NULL */
    const unsigned char *body; /* POST body (NULL if body_len is 0) */
    size_t body_len;
    int reject_status;         /* 0, or 413 when the body exceeded max_body
                                  (body is then empty) */
    const char *peer;          /* "ip:port" for logs */
};

/* The resource handler's answer. Starts zeroed with status 500. */
struct http_resource_response {
    unsigned char *body;       /* malloc'ed, freed by the HTTP layer */
    size_t body_len;
    int status;                /* 200, 404, ... (304 is made by the HTTP
                                  layer from etag/last_modified) */
    const char *content_type;  /* static string, e.g. "application/pkix-crl";
                                  NULL = none */
    char etag[80];             /* quoted entity tag or "" (If-None-Match is
                                  answered with 304 by the HTTP layer) */
    long long last_modified;   /* unix time for Last-Modified (and
                                  If-Modified-Since), 0 = none */
    long max_age;              /* >= 0: "Cache-Control: max-age=N" (0 sends
                                  "no-cache"); -1: no Cache-Control */
    int close;                 /* 1 = "Connection: close" after this answer */
    long long expires;         /* unix time for Expires, 0 = none */
};

/* Answers one resource request (fills |rsp|). Runs on MHD worker threads,
 * several at once: must be thread-safe. */
typedef void (*http_resource_fn)(void *arg,
                                 const struct http_resource_request *req,
                                 struct http_resource_response *rsp);

/* Server settings. Zero fields take the defaults named here; fill the struct
 * with http_conf_init() first and override what you need. */
struct http_conf {
    /* The listeners; with nlisten 0, one CMP listener on bind_addr:port. */
    struct http_listen listen[HTTP_MAX_LISTENERS];
    size_t nlisten;
    const char *bind_addr;     /* "127.0.0.1", "::1", "0.0.0.0", "::"; NULL = "0.0.0.0" */
    unsigned short port;       /* 0 = pick a free port; http_server_port() tells */
    unsigned threads;          /* worker threads per CMP listener; 0 = 4 per
                                  online CPU (a metrics listener has one) */
    size_t max_body;           /* request body limit in bytes, default 64 KiB */
    unsigned max_conns;        /* all listeners together, default 1024; at the
                                  limit the connection waiting longest for a
                                  request is closed to admit a new one, or, if
                                  all are busy with a request, the new one is
                                  refused */
    unsigned per_ip_conns;     /* per client address limit, default 128;
                                  HTTP_NO_LIMIT = none */
    unsigned idle_timeout;     /* seconds a connection may be inactive, default 30 */
    unsigned header_timeout;   /* seconds from a connection's start, or the end
                                  of its previous answer, to the complete
                                  request headers, however much trickles in;
                                  default 10 */
    unsigned body_timeout;     /* seconds from the headers to the complete
                                  body, default 20 */
    unsigned listen_backlog;   /* accept queue length, default 1024 */
    /* TLS (listeners with tls set): PEM text, borrowed. tls_key_pass may be
     * NULL (an unencrypted key). tls_client_ca_pem: the CAs that client
     * certificates must chain to (listeners with tls_client_auth). */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_key_pass;
    const char *tls_client_ca_pem;
    size_t conn_mem_limit;     /* per-connection MHD memory (headers, buffers),
                                  default 32 KiB; the body buffer is separate */
    unsigned stop_grace;       /* seconds http_server_stop() waits for
                                  in-flight requests, default 10 */
    const char *default_alias; /* alias for /.well-known/cmp; NULL = that path
                                  answers 404 */
    /* Optional: appends extra Prometheus text to /metrics. Called with the
     * |arg| given to http_server_start(); writes at most |cap| bytes to |buf|
     * and returns the number written. NULL = none. */
    size_t (*metrics_extra)(void *arg, char *buf, size_t cap);
    /* Optional: answers the non-CMP resources /ocsp, /ocsp/..., /crl/...
     * and /ca/... (see http_resource_fn); NULL = those paths get 404.
     * Called with |resource_arg|. */
    http_resource_fn resource;
    void *resource_arg;
    unsigned resource_max_requests; /* answers on one keep-alive connection
                                       before "Connection: close" is sent
                                       with a resource answer; default 1000 */
};

/* One CMP request as the handler sees it; read-only, valid for the call. */
struct http_request {
    const char *alias;         /* routed alias name, never NULL */
    const char *operation;     /* RFC 9811 / RFC 9483 operation label after the
                                  alias (".../p/<alias>/<operation>",
                                  "/.well-known/cmp/<operation>"), or NULL */
    const unsigned char *body; /* the request body (NULL if body_len is 0) */
    size_t body_len;
    int reject_status;         /* 0, or 413 (body too large) / 415 (wrong
                                  Content-Type) when the HTTP layer refused the
                                  request: the handler must still produce a
                                  (protected CMP error) body; body is empty */
    const char *peer;          /* "ip:port" / "[ipv6]:port" text for logs */
};

/* The handler's answer. Starts as {NULL, 0, 500, 0}. */
struct http_response {
    unsigned char *body;       /* malloc'ed, freed by the HTTP layer; sent with
                                  Content-Type application/pkixcmp. NULL with
                                  body_len 0 sends an empty body. */
    size_t body_len;
    int status;                /* 200 for a CMP answer, 4xx/5xx with a CMP
                                  error body (RFC 9811 3.3) */
    int close;                 /* 1 = "Connection: close" after this answer
                                  (RFC 9811 5: after an error the server
                                  should close the connection) */
};

/* Turns one request into a response. Runs on MHD worker threads, several at
 * once (one per worker thread), so it must be thread-safe; while it runs the
 * other connections of that worker wait. */
typedef void (*http_handler_fn)(void *arg, const struct http_request *req,
                                struct http_response *rsp);
/* Returns 1 if |alias| names a configured alias, else 0 (-> 404).
 * Thread-safe; called for every CMP request before the body is read. */
typedef int (*http_alias_fn)(void *arg, const char *alias);

/* Fills |conf| with the defaults (all limits set, bind 0.0.0.0, port 0). */
void http_conf_init(struct http_conf *conf);

/* Starts listening and serving. |handler| answers CMP requests, |alias_known|
 * (may be NULL = every well-formed label exists) checks aliases, |arg| goes to
 * both and to conf->metrics_extra. |conf| strings must outlive the server.
 * Returns the server, or NULL with a message in |err| (errlen bytes). */
struct http_server *http_server_start(const struct http_conf *conf,
                                      http_handler_fn handler,
                                      http_alias_fn alias_known, void *arg,
                                      char *err, size_t errlen);

/* Returns the TCP port of the first CMP listener (useful with port 0). */
unsigned short http_server_port(const struct http_server *srv);

/* Returns the TCP port of listener |i| (in conf->listen order), or 0. */
unsigned short http_server_listen_port(const struct http_server *srv,
                                       size_t i);

/* Connection counters: open connections, idle ones closed to admit new
 * ones at max_conns, new ones refused there, and connections closed at the
 * header or body deadline. */
struct http_server_stats {
    unsigned open;
    unsigned long evicted, refused, header_timeouts, body_timeouts;
};

/* Fills |st| with the counters of |srv|. */
void http_server_get_stats(struct http_server *srv,
                           struct http_server_stats *st);

/* Returns the number of requests being received or answered right now. */
unsigned http_server_inflight(const struct http_server *srv);

/* Graceful stop: stops accepting (closes the listen socket), lets in-flight
 * requests finish and be answered (waiting up to conf->stop_grace seconds;
 * answers given meanwhile carry "Connection: close"), then stops the daemon
 * and frees everything. NULL is harmless. Not async-signal-safe: call it from
 * the main thread after a signal handler set a flag. */
void http_server_stop(struct http_server *srv);

#endif
