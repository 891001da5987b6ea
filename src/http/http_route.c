/*
 * URL routing for the HTTP front end: maps a request path to the CMP alias
 * (and optional operation label), /health or /metrics. Pure string code, no
 * MHD, so the fuzzer and unit tests can call it directly.
 */
#include "http/http_int.h"

#include <string.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

int http_label_valid(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > HTTP_LABEL_MAX)
        return 0;
    if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
        return 0;                       /* "." and ".." are path syntax */
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Copies the |n|-byte label |s| to |dst| (HTTP_LABEL_MAX + 1 bytes) if it is
 * valid; returns 1 on success, 0 if the label is invalid. */
static int http_label_copy(char *dst, const char *s, size_t n)
{
    if (!http_label_valid(s, n))
        return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

/* Splits "<a>" or "<a>/<b>" (|n| bytes at |s|) into one or two labels;
 * returns 1 on success (op[0] = '\0' when there is no second segment). */
static int http_route_labels(const char *s, size_t n, char *alias, char *op)
{
    const char *slash = memchr(s, '/', n);

    op[0] = '\0';
    if (slash == NULL)
        return http_label_copy(alias, s, n);
    return http_label_copy(alias, s, (size_t)(slash - s))
           && http_label_copy(op, slash + 1, n - (size_t)(slash - s) - 1);
}

enum http_route_kind http_route(const char *url, const char *default_alias,
                                char *alias, char *op)
{
    static const char wk[] = "/.well-known/cmp";
    static const char ejbca[] = "/ejbca/publicweb/cmp/";
    size_t n;

    alias[0] = '\0';
    op[0] = '\0';
    if (url == NULL)
        return HTTP_ROUTE_NOT_FOUND;
    n = strlen(url);
    while (n > 1 && url[n - 1] == '/')  /* trailing slashes: same resource */
        n--;
    if (n == 7 && memcmp(url, "/health", 7) == 0)
        return HTTP_ROUTE_HEALTH;
    if (n == 8 && memcmp(url, "/metrics", 8) == 0)
        return HTTP_ROUTE_METRICS;
    if (http_route_is_resource(url))
        return HTTP_ROUTE_RESOURCE;

    if (n >= sizeof(wk) - 1 && memcmp(url, wk, sizeof(wk) - 1) == 0) {
        const char *rest = url + sizeof(wk) - 1;
        size_t rn = n - (sizeof(wk) - 1);

        if (rn == 0 || (rn > 1 && rest[0] == '/' && rest[1] != 'p')
            || (rn > 2 && rest[0] == '/' && rest[1] == 'p' && rest[2] != '/')) {
            /* "/.well-known/cmp" or "/.well-known/cmp/<operation>" */
            if (default_alias == NULL
                || !http_label_copy(alias, default_alias,
                                    strlen(default_alias)))
                return HTTP_ROUTE_NOT_FOUND;
            if (rn == 0)
                return HTTP_ROUTE_CMP;
            return http_label_copy(op, rest + 1, rn - 1) ? HTTP_ROUTE_CMP
                                                        : HTTP_ROUTE_NOT_FOUND;
        }
        if (rn > 3 && memcmp(rest, "/p/", 3) == 0
            && http_route_labels(rest + 3, rn - 3, alias, op))
            return HTTP_ROUTE_CMP;
        goto notfound;
    }
    if (n > sizeof(ejbca) - 1 && memcmp(url, ejbca, sizeof(ejbca) - 1) == 0
        && http_label_copy(alias, url + sizeof(ejbca) - 1,
                           n - (sizeof(ejbca) - 1)))
        return HTTP_ROUTE_CMP;
 notfound:
    alias[0] = '\0';
    op[0] = '\0';
    return HTTP_ROUTE_NOT_FOUND;
}

int http_route_is_resource(const char *url)
{
    if (url == NULL)
        return 0;
    if (strncmp(url, "/ocsp", 5) == 0 && (url[5] == '\0' || url[5] == '/'))
        return 1;
    return (strncmp(url, "/crl/", 5) == 0 && url[5] != '\0')
        || (strncmp(url, "/ca/", 4) == 0 && url[4] != '\0');
}

int http_date_format(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        return 0;
    return 1;
}

int http_date_parse(const char *s, long long *t)
{
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
                                       "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec" };
    struct tm tm;
    char wd[4], mn[4], z[4];
    int i;

    if (s == NULL || strlen(s) != 29)
        return 0;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %3s", wd, &tm.tm_mday, mn,
               &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, z) != 8
        || strcmp(z, "GMT") != 0)
        return 0;
    for (i = 0; i < 12 && strcmp(mn, mon[i]) != 0; i++)
        ;
    if (i == 12 || tm.tm_year < 1970 || tm.tm_mday < 1 || tm.tm_mday > 31
        || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return 0;
    tm.tm_mon = i;
    tm.tm_year -= 1900;
    *t = (long long)timegm(&tm);
    return 1;
}

int http_etag_match(const char *inm, const char *etag)
{
    size_t el;

    if (inm == NULL || etag == NULL || etag[0] == '\0')
        return 0;
    el = strlen(etag);
    while (*inm != '\0') {
        const char *e;
        size_t n;

        while (*inm == ' ' || *inm == '\t' || *inm == ',')
            inm++;
        if (*inm == '*')
            return 1;
        if (strncmp(inm, "W/", 2) == 0)
            inm += 2;
        e = strchr(inm, ',');
        n = e != NULL ? (size_t)(e - inm) : strlen(inm);
        while (n > 0 && (inm[n - 1] == ' ' || inm[n - 1] == '\t'))
            n--;
        if (n == el && memcmp(inm, etag, el) == 0)
            return 1;
        if (e == NULL)
            break;
        inm = e + 1;
    }
    return 0;
}

int http_content_type_ok(const char *ct)
{
    static const char mt[] = "application/pkixcmp";
    size_t n = sizeof(mt) - 1;

    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, mt, n) != 0)
        return 0;
    ct += n;
    if (strncasecmp(ct, "-poll", 5) == 0)   /* RFC 9811 4: pre-RFC 6712 type */
        ct += 5;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}
