/*
 * Internal declarations shared by the HTTP front end files (routing helpers
 * used by http_server.c, the unit tests and the fuzzer). Not a public API.
 */
#ifndef CMPCA_HTTP_INT_H
#define CMPCA_HTTP_INT_H

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
 * an optional trailing slash. Returns the route kind. */
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

#endif
