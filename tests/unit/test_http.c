/*
 * Tests of the HTTP front end over real loopback sockets: routing, methods,
 * Content-Type, body limits (Content-Length and chunked), keep-alive,
 * TCP_NODELAY and latency, graceful stop, connection limits and load.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "http/http_int.h"
#include "util/metrics.h"

/* ---- test handler ---------------------------------------------------- */

struct seen {
    pthread_mutex_t lock;
    char alias[HTTP_LABEL_MAX + 1];
    char op[HTTP_LABEL_MAX + 1];
    int reject;
    size_t body_len;
    atomic_int calls;
    atomic_int slow_started;
};

static struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Copies the last seen alias/op/reject under the lock. */
static void seen_get(char *alias, char *op, int *reject, size_t *len)
{
    pthread_mutex_lock(&seen.lock);
    strcpy(alias, seen.alias);
    strcpy(op, seen.op);
    *reject = seen.reject;
    *len = seen.body_len;
    pthread_mutex_unlock(&seen.lock);
}

#define SEEN_ALIAS() seen_field(0)
#define SEEN_OP() seen_field(1)

/* Returns a snapshot of alias (0) or op (1), valid until the next call. */
static const char *seen_field(int which)
{
    static char a[HTTP_LABEL_MAX + 1], o[HTTP_LABEL_MAX + 1];
    int rj;
    size_t l;

    seen_get(a, o, &rj, &l);
    return which == 0 ? a : o;
}

static int seen_reject(void)
{
    char a[HTTP_LABEL_MAX + 1], o[HTTP_LABEL_MAX + 1];
    int rj;
    size_t l;

    seen_get(a, o, &rj, &l);
    return rj;
}

static size_t seen_len(void)
{
    char a[HTTP_LABEL_MAX + 1], o[HTTP_LABEL_MAX + 1];
    int rj;
    size_t l;

    seen_get(a, o, &rj, &l);
    return l;
}

static void seen_reset(void)
{
    pthread_mutex_lock(&seen.lock);
    seen.alias[0] = seen.op[0] = '\0';
    seen.reject = -1;
    seen.body_len = 0;
    pthread_mutex_unlock(&seen.lock);
    atomic_store(&seen.calls, 0);
    atomic_store(&seen.slow_started, 0);
}

/* Echoes the body with status 200; a refused request gets "REJECT<code>"
 * with that code; alias "slow" sleeps 600 ms first; alias "close" asks for
 * Connection: close. */
static void test_handler(void *arg, const struct http_request *req,
                         struct http_response *rsp)
{
    pthread_mutex_lock(&seen.lock);
    snprintf(seen.alias, sizeof(seen.alias), "%s", req->alias);
    snprintf(seen.op, sizeof(seen.op), "%s",
             req->operation != NULL ? req->operation : "");
    seen.reject = req->reject_status;
    seen.body_len = req->body_len;
    pthread_mutex_unlock(&seen.lock);
    atomic_fetch_add(&seen.calls, 1);
    assert_non_null(req->peer);
    if (strcmp(req->alias, "slow") == 0) {
        struct timespec ts = { 0, 600 * 1000 * 1000 };
        atomic_store(&seen.slow_started, 1);
        nanosleep(&ts, NULL);
    }
    if (req->reject_status != 0) {
        char txt[32];
        int n = snprintf(txt, sizeof(txt), "REJECT%d", req->reject_status);
        rsp->body = malloc((size_t)n);
        memcpy(rsp->body, txt, (size_t)n);
        rsp->body_len = (size_t)n;
        rsp->status = req->reject_status;
        return;
    }
    if (req->body_len > 0) {
        rsp->body = malloc(req->body_len);
        memcpy(rsp->body, req->body, req->body_len);
        rsp->body_len = req->body_len;
    }
    rsp->status = 200;
    rsp->close = strcmp(req->alias, "close") == 0;
}

static int test_alias_known(void *arg, const char *alias)
{
    return strcmp(alias, "unknown") != 0;
}

static size_t test_metrics_extra(void *arg, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "cmpca_test_extra 42\n");
}

static struct http_server *start_server(size_t max_body, unsigned max_conns,
                                        unsigned threads)
{
    struct http_conf conf;
    char err[256];
    struct http_server *srv;

    http_conf_init(&conf);
    conf.bind_addr = "127.0.0.1";
    conf.port = 0;
    conf.threads = threads;
    conf.max_body = max_body;
    conf.max_conns = max_conns;
    conf.default_alias = "dflt";
    conf.idle_timeout = 5;
    conf.per_ip_conns = HTTP_NO_LIMIT;  /* these clients all share 127.0.0.1 */
    conf.metrics_extra = test_metrics_extra;
    srv = http_server_start(&conf, test_handler, test_alias_known, NULL, err,
                            sizeof(err));
    if (srv == NULL)
        fprintf(stderr, "start: %s\n", err);
    assert_non_null(srv);
    assert_int_not_equal(http_server_port(srv), 0);
    seen_reset();
    return srv;
}

/* ---- raw HTTP client ------------------------------------------------- */

static int cl_connect(unsigned short port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void cl_write(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;                     /* peer closed; the read shows it */
        c += w;
        n -= (size_t)w;
    }
}

/* Sends one request, headers and body in two writes (as OpenSSL does). */
static void cl_send(int fd, const char *method, const char *path,
                    const char *ctype, const void *body, size_t len,
                    const char *extra_hdrs)
{
    char hdr[1024];
    int n;

    n = snprintf(hdr, sizeof(hdr), "%s %s HTTP/1.1\r\nHost: localhost\r\n"
                 "%s%s%s" "Content-Length: %zu\r\n%s\r\n", method, path,
                 ctype != NULL ? "Content-Type: " : "",
                 ctype != NULL ? ctype : "", ctype != NULL ? "\r\n" : "",
                 len, extra_hdrs != NULL ? extra_hdrs : "");
    cl_write(fd, hdr, (size_t)n);
    if (len > 0)
        cl_write(fd, body, len);
}

struct cl_rsp {
    int status;
    char headers[2048];
    char body[8192];
    size_t body_len;
};

/* Reads one response (skipping 1xx); returns 1 if one arrived within
 * |timeout_ms|, 0 on EOF/reset/timeout. */
static int cl_read_timeout(int fd, struct cl_rsp *r, int timeout_ms)
{
    static __thread char buf[16384];
    size_t have = 0, need;
    char *end, *p;
    long clen = -1;

    memset(r, 0, sizeof(*r));
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t got;

        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            size_t hl = (size_t)(end - buf) + 4;
            r->status = atoi(buf + 9);
            if (r->status >= 100 && r->status < 200) {  /* 100 Continue */
                memmove(buf, buf + hl, have - hl);
                have -= hl;
                continue;
            }
            snprintf(r->headers, sizeof(r->headers), "%.*s", (int)hl, buf);
            p = strcasestr(r->headers, "\r\nContent-Length:");
            if (p != NULL)
                clen = strtol(p + 17, NULL, 10);
            need = clen >= 0 ? hl + (size_t)clen : SIZE_MAX;
            if (have >= need) {
                if ((size_t)clen > sizeof(r->body))
                    return 0;
                r->body_len = (size_t)clen;
                memcpy(r->body, buf + hl, r->body_len);
                return 1;
            }
        }
        if (have >= sizeof(buf) - 1)
            return 0;
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return 0;
        got = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (got <= 0)
            return 0;
        have += (size_t)got;
    }
}

static int cl_read(int fd, struct cl_rsp *r)
{
    return cl_read_timeout(fd, r, 5000);
}

/* One request on a fresh connection; returns the status (0 = none). */
static int cl_request(unsigned short port, const char *method,
                      const char *path, const char *ctype, const void *body,
                      size_t len, struct cl_rsp *r)
{
    int fd = cl_connect(port), ok;

    cl_send(fd, method, path, ctype, body, len, NULL);
    ok = cl_read(fd, r);
    close(fd);
    return ok ? r->status : 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- tests ----------------------------------------------------------- */

static void test_route_table(void **state)
{
    static const struct {
        const char *url, *alias, *op;
        enum http_route_kind kind;
    } t[] = {
        { "/.well-known/cmp", "dflt", "", HTTP_ROUTE_CMP },
        { "/.well-known/cmp/", "dflt", "", HTTP_ROUTE_CMP },
        { "/.well-known/cmp/initialization", "dflt", "initialization",
          HTTP_ROUTE_CMP },
        { "/.well-known/cmp/p/a.b_c-9", "a.b_c-9", "", HTTP_ROUTE_CMP },
        { "/.well-known/cmp/p/x/", "x", "", HTTP_ROUTE_CMP },
        { "/.well-known/cmp/p/x/keyupdate", "x", "keyupdate",
          HTTP_ROUTE_CMP },
        { "/.well-known/cmp/p/x/keyupdate/", "x", "keyupdate",
          HTTP_ROUTE_CMP },
        { "/.well-known/cmp/pfoo", "dflt", "pfoo", HTTP_ROUTE_CMP },
        { "/ejbca/publicweb/cmp/vendor", "vendor", "", HTTP_ROUTE_CMP },
        { "/ejbca/publicweb/cmp/vendor/", "vendor", "", HTTP_ROUTE_CMP },
        { "/health", "", "", HTTP_ROUTE_HEALTH },
        { "/metrics", "", "", HTTP_ROUTE_METRICS },
        { "/metrics/", "", "", HTTP_ROUTE_METRICS },
        { "/", "", "", HTTP_ROUTE_NOT_FOUND },
        { "", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmpx", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p/", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp//", "dflt", "", HTTP_ROUTE_CMP },
        { "/.well-known/cmp/p/x/////", "x", "", HTTP_ROUTE_CMP },
        { "/.well-known/cmp/p/x/keyupdate///", "x", "keyupdate",
          HTTP_ROUTE_CMP },
        { "/ejbca/publicweb/cmp/vendor//", "vendor", "", HTTP_ROUTE_CMP },
        { "/health//", "", "", HTTP_ROUTE_HEALTH },
        { "//", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/CMP/p/x", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.Well-Known/cmp/p/x", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/HEALTH", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p//x", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p/a b", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p/a%b", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p/x/y/z", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/.well-known/cmp/p/../x", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/ejbca/publicweb/cmp/", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/ejbca/publicweb/cmp/a/b", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/ejbca/publicweb/cmpx", "", "", HTTP_ROUTE_NOT_FOUND },
        { "/healthz", "", "", HTTP_ROUTE_NOT_FOUND },
    };
    char alias[HTTP_LABEL_MAX + 1], op[HTTP_LABEL_MAX + 1], url[200];
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        enum http_route_kind k = http_route(t[i].url, "dflt", alias, op);
        if (k != t[i].kind || strcmp(alias, t[i].alias) != 0
            || strcmp(op, t[i].op) != 0)
            fail_msg("route %s -> %d %s %s", t[i].url, k, alias, op);
    }
    /* label length: 64 ok, 65 not */
    snprintf(url, sizeof(url), "/.well-known/cmp/p/%064d", 0);
    assert_int_equal(http_route(url, "d", alias, op), HTTP_ROUTE_CMP);
    snprintf(url, sizeof(url), "/.well-known/cmp/p/%065d", 0);
    assert_int_equal(http_route(url, "d", alias, op), HTTP_ROUTE_NOT_FOUND);
    /* no default alias */
    assert_int_equal(http_route("/.well-known/cmp", NULL, alias, op),
                     HTTP_ROUTE_NOT_FOUND);

    assert_true(http_content_type_ok("application/pkixcmp"));
    assert_true(http_content_type_ok("Application/PKIXCMP"));
    assert_true(http_content_type_ok("application/pkixcmp; charset=x"));
    assert_true(http_content_type_ok(" application/pkixcmp ;a=b"));
    assert_true(http_content_type_ok("application/pkixcmp-poll"));
    assert_false(http_content_type_ok("application/pkixcmpx"));
    assert_false(http_content_type_ok("application/octet-stream"));
    assert_false(http_content_type_ok("text/plain"));
    assert_false(http_content_type_ok(""));
    assert_false(http_content_type_ok(NULL));
}

/* curl against every route form, with and without trailing slash. */
static void test_curl_routes(void **state)
{
    static const struct { const char *path, *alias, *op; } t[] = {
        { "/.well-known/cmp", "dflt", "" },
        { "/.well-known/cmp/", "dflt", "" },
        { "/.well-known/cmp/p/vendorA", "vendorA", "" },
        { "/.well-known/cmp/p/vendorA/", "vendorA", "" },
        { "/.well-known/cmp/p/vendorA/initialization", "vendorA",
          "initialization" },
        { "/ejbca/publicweb/cmp/ejb.alias", "ejb.alias", "" },
        { "/ejbca/publicweb/cmp/ejb.alias/", "ejb.alias", "" },
    };
    struct http_server *srv = start_server(65536, 64, 2);
    char cmd[512], out[256];
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        FILE *p;
        size_t n;

        snprintf(cmd, sizeof(cmd), "curl -s -S --max-time 5 "
                 "-H 'Content-Type: application/pkixcmp' "
                 "--data-binary 'hello-%zu' -w ' %%{http_code} "
                 "%%{content_type}' http://127.0.0.1:%u%s", i,
                 (unsigned)http_server_port(srv), t[i].path);
        p = popen(cmd, "r");
        assert_non_null(p);
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        assert_int_equal(pclose(p), 0);
        snprintf(cmd, sizeof(cmd), "hello-%zu 200 application/pkixcmp", i);
        if (strcmp(out, cmd) != 0)
            fail_msg("%s: got '%s'", t[i].path, out);
        assert_string_equal(SEEN_ALIAS(), t[i].alias);
        assert_string_equal(SEEN_OP(), t[i].op);
        assert_int_equal(seen_reject(), 0);
    }
    http_server_stop(srv);
}

static void test_methods_and_404(void **state)
{
    struct http_server *srv = start_server(65536, 64, 2);
    unsigned short port = http_server_port(srv);
    const char *ct = "application/pkixcmp";
    struct cl_rsp r;
    char path[200];

    assert_int_equal(cl_request(port, "GET", "/.well-known/cmp/p/a", NULL,
                                NULL, 0, &r), 405);
    assert_non_null(strcasestr(r.headers, "\r\nAllow: POST\r\n"));
    assert_int_equal(cl_request(port, "PUT", "/ejbca/publicweb/cmp/a", ct,
                                "x", 1, &r), 405);
    assert_int_equal(atomic_load(&seen.calls), 0);

    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/unknown",
                                ct, "x", 1, &r), 404);
    assert_int_equal(cl_request(port, "GET", "/.well-known/cmp/p/unknown",
                                NULL, NULL, 0, &r), 404);
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/a%20b",
                                ct, "x", 1, &r), 404);
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/a$b",
                                ct, "x", 1, &r), 404);
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/%2e%2e",
                                ct, "x", 1, &r), 404);  /* ".." is not */
    snprintf(path, sizeof(path), "/.well-known/cmp/p/%065d", 7);
    assert_int_equal(cl_request(port, "POST", path, ct, "x", 1, &r), 404);
    assert_int_equal(cl_request(port, "POST", "/nothing", ct, "x", 1, &r),
                     404);
    assert_non_null(strstr(r.headers, "text/plain"));
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp?x=1", ct,
                                "q", 1, &r), 200);       /* query ignored */

    assert_int_equal(cl_request(port, "GET", "/health", NULL, NULL, 0, &r),
                     200);
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "ok", 2);
    assert_int_equal(cl_request(port, "POST", "/health", ct, "x", 1, &r),
                     405);
    http_server_stop(srv);
}

static void test_content_type(void **state)
{
    struct http_server *srv = start_server(65536, 64, 2);
    unsigned short port = http_server_port(srv);
    struct cl_rsp r;

    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/a",
                                "text/plain", "abc", 3, &r), 415);
    assert_int_equal(seen_reject(), 415);
    assert_int_equal(seen_len(), 0);
    assert_memory_equal(r.body, "REJECT415", 9);
    assert_non_null(strstr(r.headers, "application/pkixcmp"));
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/a", NULL,
                                "abc", 3, &r), 415);
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/a",
                                "APPLICATION/PKIXCMP; q=1", "abc", 3, &r),
                     200);
    assert_int_equal(seen_reject(), 0);
    assert_memory_equal(r.body, "abc", 3);
    /* empty body goes to the handler too */
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp/p/a",
                                "application/pkixcmp", NULL, 0, &r), 200);
    assert_int_equal(seen_len(), 0);
    http_server_stop(srv);
}

/* Sends |total| body bytes chunked in |piece| byte chunks. */
static void cl_send_chunked(int fd, const char *path, size_t total,
                            size_t piece)
{
    char hdr[512], *chunk = malloc(piece + 32);
    size_t sent = 0;
    int n;

    n = snprintf(hdr, sizeof(hdr), "POST %s HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/pkixcmp\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n", path);
    cl_write(fd, hdr, (size_t)n);
    while (sent < total) {
        size_t k = total - sent < piece ? total - sent : piece;
        n = snprintf(chunk, 32, "%zx\r\n", k);
        memset(chunk + n, 'A' + (int)(sent % 26), k);
        memcpy(chunk + n + k, "\r\n", 2);
        cl_write(fd, chunk, (size_t)n + k + 2);
        sent += k;
    }
    cl_write(fd, "0\r\n\r\n", 5);
    free(chunk);
}

static void test_body_limits(void **state)
{
    struct http_server *srv = start_server(1000, 64, 2);
    unsigned short port = http_server_port(srv);
    const char *ct = "application/pkixcmp";
    char *big = malloc(3 * 1024 * 1024);
    struct cl_rsp r;
    int fd;

    memset(big, 'B', 3 * 1024 * 1024);
    /* exactly at the limit: fine */
    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp", ct, big,
                                1000, &r), 200);
    assert_int_equal(r.body_len, 1000);
    /* Content-Length over the limit, on a keep-alive connection that then
     * serves the next request */
    fd = cl_connect(port);
    cl_send(fd, "POST", "/.well-known/cmp/p/a", ct, big, 1001, NULL);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 413);
    assert_memory_equal(r.body, "REJECT413", 9);
    assert_int_equal(seen_reject(), 413);
    cl_send(fd, "POST", "/.well-known/cmp/p/a", ct, "after", 5, NULL);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "after", 5);
    close(fd);

    /* chunked over the limit: 413 and the connection goes on */
    fd = cl_connect(port);
    cl_send_chunked(fd, "/.well-known/cmp/p/a", 5000, 300);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 413);
    assert_int_equal(seen_reject(), 413);
    cl_send_chunked(fd, "/.well-known/cmp/p/a", 999, 100);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 999);
    assert_int_equal(seen_reject(), 0);
    close(fd);

    /* huge Content-Length with Expect: 100-continue: answered at once,
     * before any body is sent */
    fd = cl_connect(port);
    {
        char hdr[256];
        int n = snprintf(hdr, sizeof(hdr), "POST /.well-known/cmp HTTP/1.1\r\n"
                         "Host: x\r\nContent-Type: application/pkixcmp\r\n"
                         "Content-Length: 50000000\r\n"
                         "Expect: 100-continue\r\n\r\n");
        cl_write(fd, hdr, (size_t)n);
    }
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 413);
    close(fd);

    /* huge body without Expect (curl): still a 413, server keeps going */
    {
        char cmd[512], out[64];
        FILE *p;
        size_t n;
        char path[] = "/tmp/cmpca_http_bigXXXXXX";
        int tfd = mkstemp(path);

        assert_true(tfd >= 0);
        assert_int_equal(write(tfd, big, 3 * 1024 * 1024), 3 * 1024 * 1024);
        close(tfd);
        snprintf(cmd, sizeof(cmd), "curl -s --max-time 5 -H 'Expect:' "
                 "-H 'Content-Type: application/pkixcmp' --data-binary @%s "
                 "-o /dev/null -w '%%{http_code}' "
                 "http://127.0.0.1:%u/.well-known/cmp", path,
                 (unsigned)port);
        p = popen(cmd, "r");
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        pclose(p);
        unlink(path);
        /* curl may see the reset before the answer; either is acceptable,
         * but the server must not have read 3 MiB into memory */
        assert_true(strcmp(out, "413") == 0 || strcmp(out, "000") == 0);
    }
    /* chunked stream far beyond the discard bound: connection dropped */
    fd = cl_connect(port);
    cl_send_chunked(fd, "/.well-known/cmp/p/a", 3 * 1024 * 1024, 65536);
    (void)cl_read_timeout(fd, &r, 2000);
    close(fd);

    assert_int_equal(cl_request(port, "POST", "/.well-known/cmp", ct, "ok",
                                2, &r), 200);
    free(big);
    http_server_stop(srv);
}

static void test_keepalive_and_metrics(void **state)
{
    struct http_server *srv;
    struct cl_rsp r;
    int fd;

    metrics_reset();
    srv = start_server(65536, 64, 2);
    fd = cl_connect(http_server_port(srv));
    cl_send(fd, "POST", "/.well-known/cmp/p/a", "application/pkixcmp",
            "one", 3, NULL);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "one", 3);
    assert_null(strcasestr(r.headers, "Connection: close"));
    cl_send(fd, "POST", "/.well-known/cmp/p/b", "application/pkixcmp",
            "two", 3, NULL);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "two", 3);
    assert_string_equal(SEEN_ALIAS(), "b");
    /* handler asks to close */
    cl_send(fd, "POST", "/.well-known/cmp/p/close", "application/pkixcmp",
            "3", 1, NULL);
    assert_true(cl_read(fd, &r));
    assert_non_null(strcasestr(r.headers, "Connection: close"));
    assert_int_equal(cl_read_timeout(fd, &r, 1000), 0);   /* EOF */
    close(fd);

    assert_int_equal(cl_request(http_server_port(srv), "GET", "/metrics",
                                NULL, NULL, 0, &r), 200);
    r.body[r.body_len < sizeof(r.body) ? r.body_len : sizeof(r.body) - 1]
        = '\0';
    assert_non_null(strstr(r.headers, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "# TYPE cmpca_http_responses_total "
                                   "counter\n"));
    assert_non_null(strstr(r.body, "cmpca_http_responses_total{code=\"200\"}"
                                   " 3\n"));
    assert_non_null(strstr(r.body, "cmpca_test_extra 42\n"));
    http_server_stop(srv);
}

/* Finds this process's accepted socket whose peer is our |client| socket
 * and returns its TCP_NODELAY value (-1 if not found). */
static int server_side_nodelay(int client)
{
    struct sockaddr_in me, peer;
    socklen_t sl = sizeof(me);
    int fd;

    assert_int_equal(getsockname(client, (struct sockaddr *)&me, &sl), 0);
    for (fd = 0; fd < 4096; fd++) {
        int v = 0;
        socklen_t vl = sizeof(v);
        sl = sizeof(peer);
        if (fd == client
            || getpeername(fd, (struct sockaddr *)&peer, &sl) != 0
            || peer.sin_family != AF_INET || peer.sin_port != me.sin_port)
            continue;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) != 0)
            return -1;
        return v;
    }
    return -1;
}

/* 100 sequential keep-alive POSTs from a client that writes headers and body
 * separately without TCP_NODELAY (like OpenSSL's HTTP client): each must
 * take far less than the 40 ms delayed-ACK stall. */
static void test_nodelay_latency(void **state)
{
    struct http_server *srv = start_server(65536, 64, 2);
    unsigned char body[1500];
    struct cl_rsp r;
    double t0, dt;
    int fd, i;

    memset(body, 0x30, sizeof(body));
    fd = cl_connect(http_server_port(srv));
    cl_send(fd, "POST", "/.well-known/cmp", "application/pkixcmp", body,
            sizeof(body), NULL);
    assert_true(cl_read(fd, &r));
    assert_int_equal(server_side_nodelay(fd), 1);

    t0 = now_s();
    for (i = 0; i < 100; i++) {
        cl_send(fd, "POST", "/.well-known/cmp", "application/pkixcmp", body,
                sizeof(body), NULL);
        assert_true(cl_read(fd, &r));
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, sizeof(body));
    }
    dt = now_s() - t0;
    close(fd);
    fprintf(stderr, "# 100 keep-alive POSTs (split writes): %.3f ms each\n",
            dt * 10);
    assert_true(dt < 0.5);               /* < 5 ms each; a stall is 40 ms */
    http_server_stop(srv);
}

struct slow_client {
    unsigned short port;
    int status;
    char body[16];
};

static void *slow_client_run(void *p)
{
    struct slow_client *c = p;
    struct cl_rsp r;

    c->status = cl_request(c->port, "POST", "/.well-known/cmp/p/slow",
                           "application/pkixcmp", "slowbody", 8, &r);
    memcpy(c->body, r.body, 8);
    return NULL;
}

/* Tries to connect 150 ms after the slow handler started (the server is
 * stopping by then); stores 1 in *arg if the connection was refused. */
static void *late_client_run(void *p)
{
    int *refused = p;
    struct timespec nap = { 0, 1000 * 1000 }, wait = { 0, 150 * 1000 * 1000 };
    struct sockaddr_in sa;
    int fd, i;

    for (i = 0; i < 2000 && !atomic_load(&seen.slow_started); i++)
        nanosleep(&nap, NULL);
    nanosleep(&wait, NULL);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)*refused);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *refused = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
               && errno == ECONNREFUSED;
    close(fd);
    return NULL;
}

static void test_graceful_stop(void **state)
{
    struct http_server *srv = start_server(65536, 64, 2);
    struct slow_client c = { http_server_port(srv), 0, { 0 } };
    struct timespec nap = { 0, 1000 * 1000 };
    pthread_t th, late;
    struct cl_rsp r;
    int idle, i, late_refused;
    double t0;

    idle = cl_connect(c.port);            /* an idle keep-alive connection */
    cl_send(idle, "POST", "/.well-known/cmp", "application/pkixcmp", "i", 1,
            NULL);
    assert_true(cl_read(idle, &r));
    assert_int_equal(pthread_create(&th, NULL, slow_client_run, &c), 0);
    late_refused = c.port;
    assert_int_equal(pthread_create(&late, NULL, late_client_run,
                                    &late_refused), 0);
    for (i = 0; i < 2000 && !atomic_load(&seen.slow_started); i++)
        nanosleep(&nap, NULL);
    assert_true(atomic_load(&seen.slow_started));
    assert_int_equal(http_server_inflight(srv), 1);
    t0 = now_s();
    http_server_stop(srv);               /* while the handler sleeps */
    assert_true(now_s() - t0 < 5);        /* did not wait for the idle one */
    pthread_join(th, NULL);
    pthread_join(late, NULL);
    assert_int_equal(late_refused, 1);   /* no new connections while
                                             draining */
    assert_int_equal(c.status, 200);
    assert_memory_equal(c.body, "slowbody", 8);
    /* the idle connection is closed, new ones are refused */
    assert_int_equal(cl_read_timeout(idle, &r, 1000), 0);
    close(idle);
}

struct load_client {
    unsigned short port;
    int ok;
};

static void *load_client_run(void *p)
{
    struct load_client *c = p;
    struct cl_rsp r;
    char body[64];
    int fd, i, n;

    fd = cl_connect(c->port);
    for (i = 0; i < 25; i++) {
        n = snprintf(body, sizeof(body), "req-%p-%d", (void *)c, i);
        cl_send(fd, "POST", "/.well-known/cmp/p/load", "application/pkixcmp",
                body, (size_t)n, NULL);
        if (!cl_read(fd, &r) || r.status != 200 || r.body_len != (size_t)n
            || memcmp(r.body, body, (size_t)n) != 0)
            break;
        c->ok++;
    }
    close(fd);
    return NULL;
}

static void test_concurrency(void **state)
{
    enum { NCLIENT = 64, NIDLE = 300 };
    struct http_server *srv = start_server(65536, 1024, 2);
    static struct load_client c[NCLIENT];
    pthread_t th[NCLIENT];
    int idle[NIDLE], i, total = 0;
    struct cl_rsp r;
    double t0;

    for (i = 0; i < NIDLE; i++)           /* many open, idle connections */
        idle[i] = cl_connect(http_server_port(srv));
    t0 = now_s();
    for (i = 0; i < NCLIENT; i++) {
        c[i].port = http_server_port(srv);
        c[i].ok = 0;
        assert_int_equal(pthread_create(&th[i], NULL, load_client_run, &c[i]),
                         0);
    }
    for (i = 0; i < NCLIENT; i++) {
        pthread_join(th[i], NULL);
        total += c[i].ok;
    }
    fprintf(stderr, "# %d requests from %d keep-alive clients (+%d idle "
            "connections): %.0f req/s\n", total, NCLIENT, NIDLE,
            total / (now_s() - t0));
    assert_int_equal(total, NCLIENT * 25);
    /* the idle connections still work */
    cl_send(idle[NIDLE - 1], "POST", "/.well-known/cmp", "application/pkixcmp",
            "z", 1, NULL);
    assert_true(cl_read(idle[NIDLE - 1], &r));
    assert_int_equal(r.status, 200);
    for (i = 0; i < NIDLE; i++)
        close(idle[i]);
    http_server_stop(srv);
}

/* Returns 1 if the server closed |fd| (EOF or reset) within |ms|. */
static int cl_closed_within(int fd, int ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    char c;

    if (poll(&pfd, 1, ms) <= 0)
        return 0;
    return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* Connects from the loopback address |src| (e.g. "127.0.0.2"). */
static int cl_connect_from(unsigned short port, const char *src)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, src, &sa.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* At max_conns the connection idle longest is closed so that a new client
 * gets in; when every connection is busy with a request, the new one is
 * refused. */
static void test_connection_limit(void **state)
{
    struct http_server *srv = start_server(65536, 4, 1);
    unsigned short port = http_server_port(srv);
    struct http_server_stats st;
    static const char part[] = "POST /.well-known/cmp HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/pkixcmp\r\nContent-Length: 2\r\n\r\na";
    int fd[6], i;
    struct cl_rsp r;

    for (i = 0; i < 4; i++) {           /* four idle keep-alive connections */
        fd[i] = cl_connect(port);
        cl_send(fd[i], "POST", "/.well-known/cmp", "application/pkixcmp",
                "x", 1, NULL);
        assert_true(cl_read(fd[i], &r));
    }
    fd[4] = cl_connect(port);           /* a fifth client gets in at once */
    cl_send(fd[4], "POST", "/.well-known/cmp", "application/pkixcmp", "y", 1,
            NULL);
    assert_true(cl_read_timeout(fd[4], &r, 2000));
    assert_int_equal(r.status, 200);
    assert_true(cl_closed_within(fd[0], 2000));   /* the oldest idle one */
    http_server_get_stats(srv, &st);
    assert_int_equal(st.evicted, 1);
    /* now all four busy (a body under way): a newcomer is refused */
    for (i = 1; i < 5; i++)
        cl_write(fd[i], part, sizeof(part) - 1);
    usleep(500 * 1000);                 /* the server has read them */
    fd[5] = cl_connect(port);
    assert_true(cl_closed_within(fd[5], 2000));
    http_server_get_stats(srv, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.evicted, 1);
    cl_write(fd[1], "b", 1);            /* the busy ones finish normally */
    assert_true(cl_read(fd[1], &r));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 2);
    /* the counters in /metrics (fd[1] is kept alive) */
    cl_send(fd[1], "GET", "/metrics", NULL, NULL, 0, NULL);
    assert_true(cl_read(fd[1], &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "cmpca_http_connections_closed_total"
                           "{reason=\"evicted\"} 1\n"));
    assert_non_null(strstr(r.body, "cmpca_http_connections_closed_total"
                           "{reason=\"refused\"} 1\n"));
    for (i = 0; i < 6; i++)
        close(fd[i]);
    http_server_stop(srv);
}

/* The per-address limit is on by default; other addresses still get in. */
static void test_per_ip_limit(void **state)
{
    struct http_conf conf;
    struct http_server *srv;
    char err[256];
    int fd[5], i, other;
    struct cl_rsp r;

    http_conf_init(&conf);
    assert_int_equal(conf.per_ip_conns, 128);     /* the default */
    conf.bind_addr = "127.0.0.1";
    conf.threads = 2;
    conf.per_ip_conns = 4;
    conf.default_alias = "dflt";
    srv = http_server_start(&conf, test_handler, NULL, NULL, err, sizeof(err));
    assert_non_null(srv);
    for (i = 0; i < 4; i++)
        fd[i] = cl_connect_from(http_server_port(srv), "127.0.0.2");
    fd[4] = cl_connect_from(http_server_port(srv), "127.0.0.2");
    assert_true(cl_closed_within(fd[4], 2000));   /* fifth from .2: refused */
    other = cl_connect_from(http_server_port(srv), "127.0.0.3");
    cl_send(other, "POST", "/.well-known/cmp", "application/pkixcmp", "o", 1,
            NULL);
    assert_true(cl_read(other, &r));
    assert_int_equal(r.status, 200);
    cl_send(fd[3], "POST", "/.well-known/cmp", "application/pkixcmp", "k", 1,
            NULL);
    assert_true(cl_read(fd[3], &r));              /* the four are served */
    assert_int_equal(r.status, 200);
    for (i = 0; i < 5; i++)
        close(fd[i]);
    close(other);
    http_server_stop(srv);
}

/* Starts a server with 1 s header and body deadlines (inactivity 30 s). */
static struct http_server *start_deadline_server(void)
{
    struct http_conf conf;
    struct http_server *srv;
    char err[256];

    http_conf_init(&conf);
    conf.bind_addr = "127.0.0.1";
    conf.threads = 2;
    conf.default_alias = "dflt";
    conf.idle_timeout = 30;
    conf.header_timeout = 1;
    conf.body_timeout = 1;
    srv = http_server_start(&conf, test_handler, NULL, NULL, err, sizeof(err));
    assert_non_null(srv);
    seen_reset();
    return srv;
}

/* Sends |text| one byte every |ms| until the server closes the connection
 * or |max_s| pass; returns the seconds until it was closed (or max_s). */
static double cl_drip(int fd, const char *text, int ms, double max_s)
{
    double t0 = now_s();
    size_t i = 0, n = strlen(text);

    while (now_s() - t0 < max_s) {
        if (i < n && send(fd, text + i, 1, MSG_NOSIGNAL) != 1)
            break;
        i++;
        if (cl_closed_within(fd, ms))
            break;
    }
    return now_s() - t0;
}

/* A client dripping its headers (or its body) is closed at the overall
 * deadline, however active it stays; an idle one too. */
static void test_header_body_deadlines(void **state)
{
    struct http_server *srv = start_deadline_server();
    unsigned short port = http_server_port(srv);
    static const char hdr[] = "POST /.well-known/cmp HTTP/1.1\r\nHost: x\r\n"
        "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        "Content-Type: application/pkixcmp\r\n\r\n";
    static const char body_hdr[] = "POST /.well-known/cmp HTTP/1.1\r\nHost: x"
        "\r\nContent-Type: application/pkixcmp\r\nContent-Length: 100\r\n\r\n";
    struct http_server_stats st;
    struct cl_rsp r;
    double t;
    int fd;

    fd = cl_connect(port);              /* headers, one byte per 100 ms */
    t = cl_drip(fd, hdr, 100, 6);
    close(fd);
    fprintf(stderr, "# dripping headers closed after %.2f s\n", t);
    assert_true(t >= 0.8 && t < 3.0);

    fd = cl_connect(port);              /* complete headers, dripping body */
    cl_write(fd, body_hdr, sizeof(body_hdr) - 1);
    t = cl_drip(fd, "0123456789012345678901234567890123456789012345678901234"
                "5678901234567890123456789012345678901234", 100, 6);
    close(fd);
    fprintf(stderr, "# dripping body closed after %.2f s\n", t);
    assert_true(t >= 0.8 && t < 3.0);
    assert_int_equal(atomic_load(&seen.calls), 0);  /* never reached */

    fd = cl_connect(port);              /* idle: nothing sent at all */
    t = now_s();
    assert_true(cl_closed_within(fd, 4000));
    assert_true(now_s() - t < 3.0);
    close(fd);

    fd = cl_connect(port);              /* a kept-alive connection gets the */
    cl_send(fd, "POST", "/.well-known/cmp", "application/pkixcmp", "1", 1,
            NULL);                      /* deadline anew for each request */
    assert_true(cl_read(fd, &r));
    usleep(600 * 1000);
    cl_send(fd, "POST", "/.well-known/cmp", "application/pkixcmp", "2", 1,
            NULL);
    assert_true(cl_read(fd, &r));
    usleep(600 * 1000);
    cl_send(fd, "POST", "/.well-known/cmp", "application/pkixcmp", "3", 1,
            NULL);
    assert_true(cl_read(fd, &r));
    assert_int_equal(r.status, 200);
    close(fd);

    http_server_get_stats(srv, &st);
    assert_true(st.header_timeouts >= 2);
    assert_true(st.body_timeouts >= 1);
    http_server_stop(srv);
}

/* Several listeners: IPv4 and IPv6 CMP, and a separate /health, /metrics
 * listener that takes them off the CMP listeners. */
static void test_listeners(void **state)
{
    struct http_conf conf;
    struct http_server *srv;
    char err[256];
    unsigned short p4, pm;
    struct cl_rsp r;

    http_conf_init(&conf);
    conf.threads = 1;
    conf.default_alias = "dflt";
    conf.listen[0] = (struct http_listen){ "127.0.0.1", 0, HTTP_LISTEN_CMP,
                                           0, 0 };
    conf.listen[1] = (struct http_listen){ "127.0.0.1", 0,
                                           HTTP_LISTEN_METRICS, 0, 0 };
    conf.listen[2] = (struct http_listen){ "::1", 0, HTTP_LISTEN_CMP, 0, 0 };
    conf.nlisten = 3;
    srv = http_server_start(&conf, test_handler, NULL, NULL, err, sizeof(err));
    if (srv == NULL) {                  /* no IPv6 in some containers */
        fprintf(stderr, "# without ::1: %s\n", err);
        conf.nlisten = 2;
        srv = http_server_start(&conf, test_handler, NULL, NULL, err,
                                sizeof(err));
    }
    assert_non_null(srv);
    p4 = http_server_listen_port(srv, 0);
    pm = http_server_listen_port(srv, 1);
    assert_int_equal(http_server_port(srv), p4);
    assert_int_equal(cl_request(p4, "POST", "/.well-known/cmp",
                                "application/pkixcmp", "a", 1, &r), 200);
    assert_int_equal(cl_request(p4, "GET", "/metrics", NULL, NULL, 0, &r),
                     404);
    assert_int_equal(cl_request(p4, "GET", "/health", NULL, NULL, 0, &r),
                     404);
    assert_int_equal(cl_request(pm, "GET", "/health", NULL, NULL, 0, &r), 200);
    assert_int_equal(cl_request(pm, "GET", "/metrics", NULL, NULL, 0, &r),
                     200);
    assert_int_equal(cl_request(pm, "POST", "/.well-known/cmp",
                                "application/pkixcmp", "a", 1, &r), 404);
    if (conf.nlisten == 3) {
        char cmd[256], out[64];
        FILE *p;
        size_t n;

        snprintf(cmd, sizeof(cmd), "curl -s --max-time 5 -H 'Content-Type: "
                 "application/pkixcmp' --data-binary v6 -w ' %%{http_code}' "
                 "'http://[::1]:%u/.well-known/cmp//'",
                 (unsigned)http_server_listen_port(srv, 2));
        p = popen(cmd, "r");
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        pclose(p);
        assert_string_equal(out, "v6 200");
    }
    http_server_stop(srv);
}

/* Without a metrics listener, /health and /metrics answer loopback
 * clients only. */
static void test_loopback_only(void **state)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;

    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &s4.sin_addr);
    assert_true(http_addr_loopback((struct sockaddr *)&s4));
    inet_pton(AF_INET, "127.255.0.9", &s4.sin_addr);
    assert_true(http_addr_loopback((struct sockaddr *)&s4));
    inet_pton(AF_INET, "10.0.0.1", &s4.sin_addr);
    assert_false(http_addr_loopback((struct sockaddr *)&s4));
    inet_pton(AF_INET, "128.0.0.1", &s4.sin_addr);
    assert_false(http_addr_loopback((struct sockaddr *)&s4));
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &s6.sin6_addr);
    assert_true(http_addr_loopback((struct sockaddr *)&s6));
    inet_pton(AF_INET6, "::ffff:127.0.0.5", &s6.sin6_addr);
    assert_true(http_addr_loopback((struct sockaddr *)&s6));
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &s6.sin6_addr);
    assert_false(http_addr_loopback((struct sockaddr *)&s6));
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    assert_false(http_addr_loopback((struct sockaddr *)&s6));
    assert_false(http_addr_loopback(NULL));
}

static void test_start_errors(void **state)
{
    struct http_conf conf;
    char err[256];
    struct http_server *a, *b;

    http_conf_init(&conf);
    conf.bind_addr = "localhost";
    assert_null(http_server_start(&conf, test_handler, NULL, NULL, err,
                                  sizeof(err)));
    assert_non_null(strstr(err, "numeric"));
    conf.bind_addr = "127.0.0.1";
    conf.default_alias = "bad alias";
    assert_null(http_server_start(&conf, test_handler, NULL, NULL, err,
                                  sizeof(err)));
    conf.default_alias = NULL;
    a = http_server_start(&conf, test_handler, NULL, NULL, err, sizeof(err));
    assert_non_null(a);
    conf.port = http_server_port(a);
    b = http_server_start(&conf, test_handler, NULL, NULL, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "cannot listen"));
    http_server_stop(a);
    http_server_stop(NULL);

    conf.bind_addr = "::1";
    conf.port = 0;
    conf.default_alias = "v6";
    a = http_server_start(&conf, test_handler, NULL, NULL, err, sizeof(err));
    if (a != NULL) {                      /* no IPv6 in some containers */
        char cmd[256], out[64];
        FILE *p;
        size_t n;

        snprintf(cmd, sizeof(cmd), "curl -s --max-time 5 -H 'Content-Type: "
                 "application/pkixcmp' --data-binary v6 -w ' %%{http_code}' "
                 "'http://[::1]:%u/.well-known/cmp'",
                 (unsigned)http_server_port(a));
        p = popen(cmd, "r");
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        pclose(p);
        assert_string_equal(out, "v6 200");
        http_server_stop(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_curl_routes),
        cmocka_unit_test(test_methods_and_404),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_keepalive_and_metrics),
        cmocka_unit_test(test_nodelay_latency),
        cmocka_unit_test(test_graceful_stop),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_per_ip_limit),
        cmocka_unit_test(test_header_body_deadlines),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_loopback_only),
        cmocka_unit_test(test_start_errors),
    };

    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
