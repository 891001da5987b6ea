/*
 * Internal declarations shared by the HTTP front end files (routing helpers
 * used by http_server.c, the unit tests and the fuzzer). Not a public API.
 */
#ifndef CMPCA_HTTP_INT_H
#define CMPCA_HTTP_INT_H

#include <pthread.h>
#include <stddef.h>

#include "http/http.h"

/* What a request path names. */
enum http_route_kind {
    HTTP_ROUTE_NOT_FOUND = 0,
    HTTP_ROUTE_CMP,        /* a CMP endpoint; alias (and maybe op) filled */
    HTTP_ROUTE_HEALTH,     /* /health */
    HTTP_ROUTE_METRICS,    /* /metrics */
    HTTP_ROUTE_RESOURCE    /* /ocsp, /ocsp/..., /crl/..., /ca/...: the
                              resource handler's (see http_resource_fn) */
};

/* Returns 1 if the |n| bytes at |s| are a valid label: 1-64 characters of
 * [A-Za-z0-9._-],
 * except "." and ".."; else 0. */
int http_label_valid(const char *s, size_t n);

/* Routes the (already %-decoded) path |url|. For CMP endpoints writes the
 * alias to |alias| and the operation label (or "") to |op|; both must have
 * HTTP_LABEL_MAX + 1 bytes. |default_alias| serves /.well-known/cmp (NULL =
 * 404). Accepted: /.well-known/cmp, /.well-known/cmp/<op>,
 * /.well-known/cmp/p/<label>[/<op>], /ejbca/publicweb/cmp/<alias>, each with
 * any number of trailing slashes; case-sensitive. Returns the route kind. */
enum http_route_kind http_route(const char *url, const char *default_alias,
                                char *alias, char *op);

/* Returns 1 if |url| is a resource path: "/ocsp", "/ocsp/" followed by
 * anything, or "/crl/" or "/ca/" followed by at least one character;
 * else 0 (also for NULL). */
int http_route_is_resource(const char *url);

/* Formats unix time |t| as an HTTP date (RFC 9110 IMF-fixdate, "Sun, 06
 * Nov 1994 08:49:37 GMT") into |buf| (at least 32 bytes). Returns 1 or 0. */
int http_date_format(long long t, char *buf, size_t len);
/* Parses an IMF-fixdate into unix time; returns 1 or 0 (other formats). */
int http_date_parse(const char *s, long long *t);

/* Returns 1 if the If-None-Match header value |inm| (may be NULL) matches
 * the quoted entity tag |etag| ("*" or one of a comma-separated list, weak
 * comparison); else 0. */
int http_etag_match(const char *inm, const char *etag);

/* Returns 1 if the Content-Type value |ct| is application/pkixcmp (or the
 * legacy application/pkixcmp-poll), case-insensitive, parameters after ';'
 * ignored; 0 otherwise (also for NULL). */
int http_content_type_ok(const char *ct);

/* ---- connection bookkeeping (http_conn.c) ---------------------------- */

/* Where a connection is in its request cycle. */
enum http_conn_phase {
    HTTP_CONN_WAIT = 0,    /* waiting for (the rest of) request headers:
                              fresh, kept alive between requests, or
                              dripping its headers; header deadline */
    HTTP_CONN_BODY,        /* headers in, reading the body; body deadline */
    HTTP_CONN_BUSY,        /* request complete: handler running or answer
                              being sent; no deadline */
    HTTP_CONN_CLOSING      /* closed by us (shutdown), waiting for MHD */
};

/* One tracked connection (MHD's socket context). */
struct http_conn {
    struct http_conn *prev, *next;  /* in the list of its phase, if any */
    enum http_conn_phase phase;
    int fd;
    long long since;                /* monotonic ms when the phase began */
    unsigned resources;             /* resource (OCSP, CRL) answers given on
                                     * it; only its handler thread touches it */
};

/* All connections of one server (every listener); lists in phase order. */
struct http_conns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t reaper;
    int started, stop;
    struct http_conn wait, body;    /* list sentinels, oldest first */
    unsigned count, max;
    unsigned header_timeout, body_timeout;   /* seconds */
    unsigned long evicted, refused, header_timeouts, body_timeouts;
};

/* Counters for tests and metrics. */
struct http_conn_stats {
    unsigned open;
    unsigned long evicted;          /* idle connections closed at the limit */
    unsigned long refused;          /* new connections refused at the limit */
    unsigned long header_timeouts;  /* closed: headers not in by the deadline */
    unsigned long body_timeouts;    /* closed: body not in by the deadline */
};

/* Sets up |cs| for at most |max_conns| connections and starts the thread
 * that enforces the deadlines (seconds). Returns 1 or 0. */
int http_conns_init(struct http_conns *cs, unsigned max_conns,
                    unsigned header_timeout, unsigned body_timeout);
/* Stops the deadline thread (idempotent). */
void http_conns_stop(struct http_conns *cs);
/* Stops the thread and frees the lock; the connections must be closed. */
void http_conns_free(struct http_conns *cs);
/* A new connection on socket |fd|: tracked in the WAIT phase. Over the
 * limit the oldest WAIT connection is closed, or, if there is none, this
 * one is refused (shut down at once). Returns the record (MHD's socket
 * context), or NULL when out of memory (the connection is untracked). */
struct http_conn *http_conn_open(struct http_conns *cs, int fd);
/* Moves |c| (may be NULL) to |phase|; its deadline starts now. */
void http_conn_phase(struct http_conns *cs, struct http_conn *c,
                     enum http_conn_phase phase);
/* MHD closed the connection of |c| (may be NULL): forget and free it. */
void http_conn_close(struct http_conns *cs, struct http_conn *c);
/* Returns 1 if |sa| (may be NULL) is an IPv4 127.0.0.0/8 address, ::1 or
 * an IPv4-mapped 127.0.0.0/8 address; else 0. */
struct sockaddr;
int http_addr_loopback(const struct sockaddr *sa);
/* Copies the counters of |cs| to |st|. */
void http_conns_stats(struct http_conns *cs, struct http_conn_stats *st);

#endif
