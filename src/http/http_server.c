/*
 * The libmicrohttpd server behind http.h: thread pool, connection/memory/
 * body/time limits, body accumulation, CMP/health/metrics responses, and the
 * graceful stop (quiesce, drain in-flight requests, stop).
 */
#include "http/http.h"
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "util/log.h"
#include "util/metrics.h"

#define HTTP_DEFAULT_MAX_BODY   (64 * 1024)
#define HTTP_DEFAULT_MAX_CONNS  1024
#define HTTP_DEFAULT_IDLE       30
#define HTTP_DEFAULT_PER_IP     128
#define HTTP_DEFAULT_HEADER_TO  10
#define HTTP_DEFAULT_BODY_TO    20
#define HTTP_DEFAULT_BACKLOG    1024
#define HTTP_LOG_BURST          20    /* MHD messages logged per second at
                                         most; the rest are counted */
#define HTTP_THREADS_PER_CPU    4     /* default worker threads per CPU */
#define HTTP_DEFAULT_CONN_MEM   (32 * 1024)
#define HTTP_DEFAULT_STOP_GRACE 10
#define HTTP_FIRST_CHUNK        4096      /* first buffer without Content-Length
                                             or with a large one */
#define HTTP_PREALLOC_MAX       (64 * 1024) /* announced bodies up to this size
                                             get their buffer at once */
#define HTTP_DISCARD_MAX        (1024 * 1024) /* body bytes read and dropped
                                             after a 413/415 before giving up */
#define HTTP_METRICS_EXTRA      (64 * 1024)
#define HTTP_CONN_METRICS_MAX   1024      /* the connection counters' text */
#define HTTP_CT_CMP             "application/pkixcmp"
#define HTTP_RES_MAX_REQUESTS   1000  /* resource answers per connection */
#define HTTP_RES_POST           1
#define HTTP_RES_GET            2

struct http_server;

/* One listening socket and its MHD daemon; the |cls| of MHD's callbacks. */
struct http_listener {
    struct http_server *srv;
    struct MHD_Daemon *daemon;
    struct http_listen conf;
    unsigned short port;
};

struct http_server {
    struct http_listener lst[HTTP_MAX_LISTENERS];
    size_t nlst;
    int has_metrics;                    /* a HTTP_LISTEN_METRICS listener */
    struct http_conns conns;
    int conns_ok;
    pthread_mutex_t log_mu;             /* rate limit of MHD's messages */
    time_t log_sec;
    unsigned log_n;
    unsigned long log_dropped;
    struct http_conf conf;              /* copy; strings borrowed */
    http_handler_fn handler;
    http_alias_fn alias_known;
    void *arg;
    unsigned short port;
    atomic_uint inflight;               /* requests between first call and
                                           completion */
    atomic_int stopping;
};

/* Per CMP request: routing result, state and the body, in one allocation
 * (the body grows with it, geometrically, never beyond max_body). */
struct http_req {
    int reject;                         /* 0, 413 or 415 */
    int answered;                       /* response queued already */
    size_t discarded;                   /* bytes dropped after a reject */
    size_t len, cap;                    /* body bytes held / allocated */
    int resource;                       /* HTTP_RES_POST: a POST to the
                                           resource handler, alias holds its
                                           path; HTTP_RES_GET: a GET or HEAD,
                                           body holds the path (answered
                                           when the request is complete, so
                                           that the connection stays open) */
    int head;                           /* HTTP_RES_GET: the method is HEAD */
    char alias[HTTP_LABEL_MAX + 1];
    char op[HTTP_LABEL_MAX + 1];
    unsigned char body[];
};

/* Marks a request answered on the first call (nothing allocated). */
static char http_marker_simple;

void http_conf_init(struct http_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->bind_addr = "0.0.0.0";
    conf->max_body = HTTP_DEFAULT_MAX_BODY;
    conf->max_conns = HTTP_DEFAULT_MAX_CONNS;
    conf->idle_timeout = HTTP_DEFAULT_IDLE;
    conf->per_ip_conns = HTTP_DEFAULT_PER_IP;
    conf->header_timeout = HTTP_DEFAULT_HEADER_TO;
    conf->body_timeout = HTTP_DEFAULT_BODY_TO;
    conf->listen_backlog = HTTP_DEFAULT_BACKLOG;
    conf->conn_mem_limit = HTTP_DEFAULT_CONN_MEM;
    conf->stop_grace = HTTP_DEFAULT_STOP_GRACE;
    conf->resource_max_requests = HTTP_RES_MAX_REQUESTS;
}

/* Routes MHD's own diagnostics to our log (|fmt| comes from MHD). */
static void http_mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void http_mhd_logger(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    char line[512];
    unsigned long dropped = 0;
    time_t now = time(NULL);
    size_t n;

    /* one host can make MHD complain per connection (limits reached):
     * at most HTTP_LOG_BURST lines a second, then a count */
    pthread_mutex_lock(&srv->log_mu);
    if (now != srv->log_sec) {
        dropped = srv->log_dropped;
        srv->log_dropped = 0;
        srv->log_sec = now;
        srv->log_n = 0;
    }
    if (srv->log_n >= HTTP_LOG_BURST) {
        srv->log_dropped++;
        pthread_mutex_unlock(&srv->log_mu);
        return;
    }
    srv->log_n++;
    pthread_mutex_unlock(&srv->log_mu);
    if (dropped > 0)
        log_msg(LOG_WARN, "http: %lu similar message(s) suppressed", dropped);
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_msg(LOG_WARN, "http: %s", line);
}

/* Tracks every connection (deadlines, the connection limit, the resource
 * answers given on it) and sets TCP_NODELAY on every accepted socket:
 * responses leave in one segment
 * train without waiting for the peer's delayed ACK (Nagle). */
static void http_notify_connection(void *cls, struct MHD_Connection *conn,
                                   void **socket_context,
                                   enum MHD_ConnectionNotificationCode code)
{
    struct http_server *srv = ((struct http_listener *)cls)->srv;
    const union MHD_ConnectionInfo *ci;
    int one = 1;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_conn_close(&srv->conns, *socket_context);
        *socket_context = NULL;
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return;
    *socket_context = http_conn_open(&srv->conns, ci->connect_fd);
    if (setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof(one)) != 0)
        log_msg(LOG_DEBUG, "http: TCP_NODELAY: %s", strerror(errno));
}

/* Asks the kernel to ACK what it has received now instead of delaying the
 * ACK: a client that writes headers and body separately without
 * TCP_NODELAY (OpenSSL's HTTP client does) otherwise waits ~40 ms for it. */
static void http_quickack(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;
    int one = 1;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL)
        (void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_QUICKACK, &one,
                         sizeof(one));
}

/* Moves the connection of |conn| to |phase| (see http_conn_phase). */
static void http_phase(struct http_server *srv, struct MHD_Connection *conn,
                       enum http_conn_phase phase)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    if (ci != NULL)
        http_conn_phase(&srv->conns, ci->socket_context, phase);
}

/* Returns 1 if the client of |conn| is on a loopback address. */
static int http_peer_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return ci != NULL && http_addr_loopback(ci->client_addr);
}

/* Returns 1 if the TLS client of |conn| presented a certificate that
 * verifies against the configured client CAs (MHD asks for one when a
 * trust list is set; GnuTLS checks the chain and the validity period). */
static int http_tls_client_ok(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned status = 0;

    if (ci == NULL || ci->tls_session == NULL)
        return 0;
    if (gnutls_certificate_type_get((gnutls_session_t)ci->tls_session)
        != GNUTLS_CRT_X509)
        return 0;
    if (gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session,
                                         &status) != GNUTLS_E_SUCCESS)
        return 0;
    return status == 0;
}

/* Writes the client's "ip:port" to |buf|. */
static void http_peer(struct MHD_Connection *conn, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci;
    char ip[INET6_ADDRSTRLEN];

    snprintf(buf, len, "?");
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)ci->client_addr;
        if (inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)) != NULL)
            snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)ci->client_addr;
        if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)) != NULL)
            snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    }
}

/* Queues |rsp| with |status| (counted in the metrics) and drops our
 * reference. Adds "Connection: close" when |close| or while stopping.
 * Returns MHD's verdict. */
static enum MHD_Result http_queue(struct http_server *srv,
                                  struct MHD_Connection *conn,
                                  struct MHD_Response *rsp, int status,
                                  int close)
{
    enum MHD_Result ret;

    if (rsp == NULL)
        return MHD_NO;
    if (close || atomic_load(&srv->stopping))
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(conn, (unsigned)status, rsp);
    MHD_destroy_response(rsp);
    if (ret == MHD_YES)
        metrics_http_status(status);
    return ret;
}

/* Answers with a short text/plain body (404, 405, /health). |allow| adds an
 * Allow header if not NULL. */
static enum MHD_Result http_reply_text(struct http_server *srv,
                                       struct MHD_Connection *conn, int status,
                                       const char *text, const char *allow)
{
    struct MHD_Response *rsp;

    rsp = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                          MHD_RESPMEM_PERSISTENT);
    if (rsp == NULL)
        return MHD_NO;
    MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (allow != NULL)
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_ALLOW, allow);
    return http_queue(srv, conn, rsp, status, 0);
}

/* Answers GET /metrics: the registry plus the caller's extra text. */
static enum MHD_Result http_reply_metrics(struct http_server *srv,
                                          struct MHD_Connection *conn)
{
    struct MHD_Response *rsp;
    struct http_conn_stats cs;
    char *text, *all;
    size_t len = 0, extra = 0;
    int n;

    text = metrics_render(&len);
    if (text == NULL)
        return http_reply_text(srv, conn, 500, "out of memory\n", NULL);
    /* the connection guards: an attack shows here */
    http_conns_stats(&srv->conns, &cs);
    if ((all = realloc(text, len + HTTP_CONN_METRICS_MAX)) == NULL) {
        free(text);
        return http_reply_text(srv, conn, 500, "out of memory\n", NULL);
    }
    text = all;
    n = snprintf(text + len, HTTP_CONN_METRICS_MAX,
                 "# HELP cmpca_http_connections Open HTTP connections.\n"
                 "# TYPE cmpca_http_connections gauge\n"
                 "cmpca_http_connections %u\n"
                 "# HELP cmpca_http_connections_closed_total Connections "
                 "closed by the server's guards.\n"
                 "# TYPE cmpca_http_connections_closed_total counter\n"
                 "cmpca_http_connections_closed_total{reason=\"evicted\"} %lu\n"
                 "cmpca_http_connections_closed_total{reason=\"refused\"} %lu\n"
                 "cmpca_http_connections_closed_total{reason=\"header_timeout\"} "
                 "%lu\n"
                 "cmpca_http_connections_closed_total{reason=\"body_timeout\"} "
                 "%lu\n", cs.open, cs.evicted, cs.refused, cs.header_timeouts,
                 cs.body_timeouts);
    if (n > 0 && n < HTTP_CONN_METRICS_MAX)
        len += (size_t)n;
    if (srv->conf.metrics_extra != NULL) {
        all = realloc(text, len + HTTP_METRICS_EXTRA + 1);
        if (all == NULL) {
            free(text);
            return http_reply_text(srv, conn, 500, "out of memory\n", NULL);
        }
        text = all;
        extra = srv->conf.metrics_extra(srv->arg, text + len,
                                        HTTP_METRICS_EXTRA);
        if (extra > HTTP_METRICS_EXTRA)
            extra = HTTP_METRICS_EXTRA;
        len += extra;
    }
    rsp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (rsp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    return http_queue(srv, conn, rsp, 200, 0);
}

/* Calls the handler for |req| and queues its answer. */
static enum MHD_Result http_reply_cmp(struct http_server *srv,
                                      struct MHD_Connection *conn,
                                      struct http_req *hr)
{
    struct http_request req;
    struct http_response out = { NULL, 0, 500, 0 };
    struct MHD_Response *rsp;
    char peer[INET6_ADDRSTRLEN + 16];

    if (hr->answered)
        return MHD_YES;
    hr->answered = 1;
    http_phase(srv, conn, HTTP_CONN_BUSY);
    http_peer(conn, peer, sizeof(peer));
    req.alias = hr->alias;
    req.operation = hr->op[0] != '\0' ? hr->op : NULL;
    req.reject_status = hr->reject;
    req.body = (hr->reject == 0 && hr->len > 0) ? hr->body : NULL;
    req.body_len = hr->reject == 0 ? hr->len : 0;
    req.peer = peer;
    srv->handler(srv->arg, &req, &out);

    if (out.status < 200 || out.status > 599) {
        log_msg(LOG_ERROR, "http: handler returned status %d for alias %s",
                out.status, hr->alias);
        free(out.body);
        return http_reply_text(srv, conn, 500, "internal error\n", NULL);
    }
    if (out.body != NULL && out.body_len > 0)
        rsp = MHD_create_response_from_buffer(out.body_len, out.body,
                                              MHD_RESPMEM_MUST_FREE);
    else {
        free(out.body);
        out.body = NULL;
        rsp = MHD_create_response_from_buffer(0, NULL,
                                              MHD_RESPMEM_PERSISTENT);
    }
    if (rsp == NULL) {
        free(out.body);
        return MHD_NO;
    }
    if (out.body != NULL)
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                HTTP_CT_CMP);
    return http_queue(srv, conn, rsp, out.status, out.close);
}

/* Returns the Content-Length header as a number in |*cl|; 1 if present. */
static int http_content_length(struct MHD_Connection *conn, uint64_t *cl)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    unsigned long long n;

    if (v == NULL)
        return 0;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || end == v)
        n = UINT64_MAX;                 /* MHD rejects these before us */
    *cl = n;
    return 1;
}

/* First call of a CMP request: method, alias and Content-Type checks; sets
 * up the body buffer or answers at once. */
static enum MHD_Result http_cmp_begin(struct http_server *srv,
                                      struct MHD_Connection *conn,
                                      const char *method, const char *alias,
                                      const char *op, void **con_cls)
{
    struct http_req *hr;
    uint64_t cl = 0;
    int has_cl, reject = 0;
    size_t cap = 0;
    const char *expect;

    if (srv->alias_known != NULL && !srv->alias_known(srv->arg, alias)) {
        *con_cls = &http_marker_simple;
        return http_reply_text(srv, conn, 404, "not found\n", NULL);
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
        *con_cls = &http_marker_simple;
        return http_reply_text(srv, conn, 405, "method not allowed\n",
                               MHD_HTTP_METHOD_POST);
    }
    has_cl = http_content_length(conn, &cl);
    if (!http_content_type_ok(MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        reject = 415;
    else if (has_cl && cl > srv->conf.max_body)
        reject = 413;
    else  /* what arrives, not what is announced, grows it further */
        cap = has_cl && cl < HTTP_PREALLOC_MAX ? (size_t)cl
            : (srv->conf.max_body < HTTP_FIRST_CHUNK
               ? srv->conf.max_body : HTTP_FIRST_CHUNK);

    hr = malloc(sizeof(*hr) + cap);
    if (hr == NULL) {
        log_msg(LOG_ERROR, "http: out of memory for a %zu byte body", cap);
        *con_cls = &http_marker_simple;
        return MHD_NO;
    }
    memset(hr, 0, sizeof(*hr));
    hr->reject = reject;
    hr->cap = cap;
    strcpy(hr->alias, alias);           /* both bounded by http_route */
    strcpy(hr->op, op);
    *con_cls = hr;

    /* A refused body is better not sent at all: answer now if the client
     * waits for "100 Continue" or announced more than we would discard.
     * MHD then closes the connection after the answer. */
    expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_EXPECT);
    if (reject != 0 && ((has_cl && cl > HTTP_DISCARD_MAX)
                        || (expect != NULL
                            && strcasecmp(expect, "100-continue") == 0)))
        return http_reply_cmp(srv, conn, hr);
    if (!has_cl || cl > 0)
        http_quickack(conn);
    return MHD_YES;
}

/* Takes |n| more body bytes: appends them (growing the buffer up to
 * max_body) or, past the limit or after a reject, drops them. Returns
 * MHD_NO to abort a connection that keeps sending a refused body. */
static enum MHD_Result http_cmp_data(struct http_server *srv, void **con_cls,
                                     const char *data, size_t n)
{
    struct http_req *hr = *con_cls;

    if (hr->reject == 0 && n > srv->conf.max_body - hr->len) {
        hr->reject = 413;               /* chunked body over the limit */
        hr->discarded = hr->len;
        hr->len = 0;
    }
    if (hr->reject != 0) {
        hr->discarded += n;
        return hr->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (n > hr->cap - hr->len) {
        size_t want = hr->len + n, cap = hr->cap * 2;
        struct http_req *nhr;

        if (cap < want)
            cap = want;
        if (cap > srv->conf.max_body)
            cap = srv->conf.max_body;
        nhr = realloc(hr, sizeof(*hr) + cap);
        if (nhr == NULL) {
            log_msg(LOG_ERROR, "http: out of memory for a %zu byte body", cap);
            return MHD_NO;
        }
        hr = nhr;
        hr->cap = cap;
        *con_cls = hr;
    }
    memcpy(hr->body + hr->len, data, n);
    hr->len += n;
    return MHD_YES;
}

/* Counts one more resource answer on |conn|; returns 1 when the
 * connection has had its share and should be closed after this one. */
static int http_res_count(struct http_server *srv, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;
    struct http_conn *c;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci == NULL || (c = ci->socket_context) == NULL)
        return 0;
    return ++c->resources >= srv->conf.resource_max_requests;
}

/* Returns 1 if the request's If-None-Match / If-Modified-Since make the
 * 200 answer |out| a 304. */
static int http_res_not_modified(struct MHD_Connection *conn,
                                 const struct http_resource_response *out)
{
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  "If-None-Match");
    const char *ims = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  "If-Modified-Since");
    long long t;

    if (out->status != 200)
        return 0;
    if (inm != NULL)                    /* RFC 9110 13.1.3: it wins */
        return http_etag_match(inm, out->etag);
    return ims != NULL && out->last_modified > 0 && http_date_parse(ims, &t)
           && out->last_modified <= t;
}

/* Calls the resource handler for |method| |path| (|body| may be NULL) and
 * queues its answer with Content-Type, ETag, Last-Modified and
 * Cache-Control; 304 when the client's copy is current. */
static enum MHD_Result http_reply_res(struct http_server *srv,
                                      struct MHD_Connection *conn,
                                      const char *method, const char *path,
                                      const unsigned char *body, size_t len,
                                      int reject)
{
    struct http_resource_request req;
    struct http_resource_response out;
    struct MHD_Response *rsp;
    char peer[INET6_ADDRSTRLEN + 16], date[40], cc[40];
    int status, close;

    http_peer(conn, peer, sizeof(peer));
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = path;
    req.content_type = MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    req.body = len > 0 ? body : NULL;
    req.body_len = len;
    req.reject_status = reject;
    req.peer = peer;
    memset(&out, 0, sizeof(out));
    out.status = 500;
    out.max_age = -1;
    srv->conf.resource(srv->conf.resource_arg, &req, &out);
    out.etag[sizeof(out.etag) - 1] = '\0';
    if (out.status < 200 || out.status > 599) {
        log_msg(LOG_ERROR, "http: resource handler returned status %d",
                out.status);
        free(out.body);
        return http_reply_text(srv, conn, 500, "internal error\n", NULL);
    }
    status = out.status;
    if (http_res_not_modified(conn, &out)) {
        status = 304;
        free(out.body);
        out.body = NULL;
    }
    if (out.body != NULL && out.body_len > 0)
        rsp = MHD_create_response_from_buffer(out.body_len, out.body,
                                              MHD_RESPMEM_MUST_FREE);
    else {
        free(out.body);
        out.body = NULL;
        rsp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (rsp == NULL) {
        free(out.body);
        return MHD_NO;
    }
    if (out.content_type != NULL && status != 304)
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                out.content_type);
    if (out.etag[0] != '\0')
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_ETAG, out.etag);
    if (out.last_modified > 0
        && http_date_format(out.last_modified, date, sizeof(date)))
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
    if (out.expires > 0
        && http_date_format(out.expires, date, sizeof(date)))
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_EXPIRES, date);
    if (out.max_age >= 0) {
        if (out.max_age == 0)
            snprintf(cc, sizeof(cc), "no-cache");
        else
            snprintf(cc, sizeof(cc), "max-age=%ld, public", out.max_age);
        MHD_add_response_header(rsp, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
    }
    close = out.close || http_res_count(srv, conn);
    return http_queue(srv, conn, rsp, status, close);
}

/* First call of a resource request: GET/HEAD are answered at once, a POST
 * gets a body buffer (like a CMP request; refused beyond max_body). */
static enum MHD_Result http_res_begin(struct http_server *srv,
                                      struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      void **con_cls)
{
    struct http_req *hr;
    uint64_t cl = 0;
    int has_cl, reject = 0;
    size_t cap = 0, n = strlen(url);

    if (srv->conf.resource == NULL) {
        *con_cls = &http_marker_simple;
        return http_reply_text(srv, conn, 404, "not found\n", NULL);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0
        || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
        /* the path (bounded by MHD's connection memory) waits for the end
         * of the request: an answer queued before it closes the
         * connection */
        if ((hr = malloc(sizeof(*hr) + n + 1)) == NULL) {
            *con_cls = &http_marker_simple;
            return MHD_NO;
        }
        memset(hr, 0, sizeof(*hr));
        hr->resource = HTTP_RES_GET;
        hr->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        memcpy(hr->body, url, n + 1);
        *con_cls = hr;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0 || n > HTTP_LABEL_MAX) {
        *con_cls = &http_marker_simple;
        return n > HTTP_LABEL_MAX
            ? http_reply_text(srv, conn, 404, "not found\n", NULL)
            : http_reply_text(srv, conn, 405, "method not allowed\n",
                              "GET, HEAD, POST");
    }
    has_cl = http_content_length(conn, &cl);
    if (has_cl && cl > srv->conf.max_body)
        reject = 413;
    else
        cap = has_cl && cl < HTTP_PREALLOC_MAX ? (size_t)cl
            : (srv->conf.max_body < HTTP_FIRST_CHUNK
               ? srv->conf.max_body : HTTP_FIRST_CHUNK);
    if ((hr = malloc(sizeof(*hr) + cap)) == NULL) {
        *con_cls = &http_marker_simple;
        return MHD_NO;
    }
    memset(hr, 0, sizeof(*hr));
    hr->reject = reject;
    hr->cap = cap;
    hr->resource = HTTP_RES_POST;
    memcpy(hr->alias, url, n + 1);
    *con_cls = hr;
    if (reject != 0 && cl > HTTP_DISCARD_MAX) {
        hr->answered = 1;
        return http_reply_res(srv, conn, method, hr->alias, NULL, 0, reject);
    }
    if (!has_cl || cl > 0)
        http_quickack(conn);
    return MHD_YES;
}

/* Last call of a resource POST: the whole body is in. */
static enum MHD_Result http_res_complete(struct http_server *srv,
                                         struct MHD_Connection *conn,
                                         struct http_req *hr)
{
    if (hr->answered)
        return MHD_YES;
    hr->answered = 1;
    if (hr->resource == HTTP_RES_GET)
        return http_reply_res(srv, conn, hr->head ? MHD_HTTP_METHOD_HEAD
                                                  : MHD_HTTP_METHOD_GET,
                              (const char *)hr->body, NULL, 0, 0);
    return http_reply_res(srv, conn, MHD_HTTP_METHOD_POST, hr->alias,
                          hr->reject == 0 ? hr->body : NULL,
                          hr->reject == 0 ? hr->len : 0, hr->reject);
}

/* MHD's access handler: called once with the headers, then per body piece,
 * then once more with no data when the request is complete. */
static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version,
                                   const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct http_listener *lst = cls;
    struct http_server *srv = lst->srv;
    char alias[HTTP_LABEL_MAX + 1], op[HTTP_LABEL_MAX + 1];

    if (*con_cls == NULL) {             /* first call: headers are in */
        int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0
                  || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        enum http_route_kind kind;

        atomic_fetch_add(&srv->inflight, 1);
        http_phase(srv, conn, HTTP_CONN_BODY);
        if (lst->conf.tls_client_auth && !http_tls_client_ok(conn)) {
            *con_cls = &http_marker_simple;
            return http_reply_text(srv, conn, 403, "client certificate "
                                   "required\n", NULL);
        }
        kind = http_route(url, srv->conf.default_alias, alias, op);
        /* /health and /metrics: only on a metrics listener if there is one,
         * else on the CMP listeners for loopback clients */
        if ((kind == HTTP_ROUTE_HEALTH || kind == HTTP_ROUTE_METRICS)
            && (lst->conf.kind == HTTP_LISTEN_CMP
                ? srv->has_metrics || !http_peer_loopback(conn) : 0))
            kind = HTTP_ROUTE_NOT_FOUND;
        if (kind == HTTP_ROUTE_CMP && lst->conf.kind != HTTP_LISTEN_CMP)
            kind = HTTP_ROUTE_NOT_FOUND;
        switch (kind) {
        case HTTP_ROUTE_CMP:
            return http_cmp_begin(srv, conn, method, alias, op, con_cls);
        case HTTP_ROUTE_HEALTH:
            *con_cls = &http_marker_simple;
            return get ? http_reply_text(srv, conn, 200, "ok", NULL)
                       : http_reply_text(srv, conn, 405,
                                         "method not allowed\n", "GET, HEAD");
        case HTTP_ROUTE_METRICS:
            *con_cls = &http_marker_simple;
            return get ? http_reply_metrics(srv, conn)
                       : http_reply_text(srv, conn, 405,
                                         "method not allowed\n", "GET, HEAD");
        case HTTP_ROUTE_RESOURCE:
            return http_res_begin(srv, conn, url, method, con_cls);
        default:
            *con_cls = &http_marker_simple;
            return http_reply_text(srv, conn, 404, "not found\n", NULL);
        }
    }
    if (*con_cls == &http_marker_simple) {  /* answered; drop any body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (((struct http_req *)*con_cls)->resource == HTTP_RES_GET)
            return MHD_YES;             /* a GET's body is ignored */
        return http_cmp_data(srv, con_cls, upload_data, n);
    }
    if (((struct http_req *)*con_cls)->resource)
        return http_res_complete(srv, conn, *con_cls);
    return http_reply_cmp(srv, conn, *con_cls);
}

/* MHD's completion callback: frees the request state, ends "in flight". */
static void http_completed(void *cls, struct MHD_Connection *conn,
                           void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = ((struct http_listener *)cls)->srv;

    if (*con_cls != NULL && *con_cls != &http_marker_simple)
        free(*con_cls);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
    /* the next request's headers are due within header_timeout */
    http_phase(srv, conn, HTTP_CONN_WAIT);
}

/* Starts the MHD daemon of listener |l|. Returns 1, or 0 with |err|. */
static int http_listener_start(struct http_server *srv,
                               struct http_listener *l, char *err,
                               size_t errlen)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL
                     | MHD_USE_ITC | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *di;
    struct MHD_OptionItem opt[20];
    unsigned threads = l->conf.kind == HTTP_LISTEN_CMP ? srv->conf.threads : 1;
    size_t i;

    memset(&addr, 0, sizeof(addr));
    if (l->conf.addr == NULL)
        l->conf.addr = "0.0.0.0";
    if (inet_pton(AF_INET, l->conf.addr, &addr.in4.sin_addr) == 1) {
        addr.in4.sin_family = AF_INET;
        addr.in4.sin_port = htons(l->conf.port);
    } else if (inet_pton(AF_INET6, l->conf.addr,
                         &addr.in6.sin6_addr) == 1) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons(l->conf.port);
        flags |= IN6_IS_ADDR_UNSPECIFIED(&addr.in6.sin6_addr)
                 ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "bind address \"%s\" is not a numeric IPv4 or "
                 "IPv6 address", l->conf.addr);
        return 0;
    }
    if (l->conf.tls) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "this libmicrohttpd has no TLS support");
            return 0;
        }
        if (srv->conf.tls_cert_pem == NULL || srv->conf.tls_key_pem == NULL) {
            snprintf(err, errlen, "TLS listener %s port %u: no certificate "
                     "or key", l->conf.addr, (unsigned)l->conf.port);
            return 0;
        }
        if (l->conf.tls_client_auth && srv->conf.tls_client_ca_pem == NULL) {
            snprintf(err, errlen, "TLS listener %s port %u requires client "
                     "certificates but no client CA is configured",
                     l->conf.addr, (unsigned)l->conf.port);
            return 0;
        }
        flags |= MHD_USE_TLS;
    } else if (l->conf.tls_client_auth) {
        snprintf(err, errlen, "client certificates need a TLS listener");
        return 0;
    }

    /* the logger must come first to catch messages about later options */
    i = 0;
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER,
                                        (intptr_t)http_mhd_logger, srv };
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &addr.sa };
    if (threads > 1)
        opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
                                            threads, NULL };
    /* MHD splits its limit among the pool's threads: one spare per thread,
     * the exact limit over all listeners is http_conn_open's */
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
                                        srv->conf.max_conns + threads, NULL };
    if (srv->conf.per_ip_conns != HTTP_NO_LIMIT)
        opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                            srv->conf.per_ip_conns, NULL };
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
                                        srv->conf.idle_timeout, NULL };
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_BACKLOG_SIZE,
                                        srv->conf.listen_backlog, NULL };
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)srv->conf.conn_mem_limit,
                                        NULL };
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
                                        (intptr_t)http_completed, l };
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                        (intptr_t)http_notify_connection, l };
    if (l->conf.tls) {
        opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
                                            (void *)srv->conf.tls_cert_pem };
        opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
                                            (void *)srv->conf.tls_key_pem };
        if (srv->conf.tls_key_pass != NULL)
            opt[i++] = (struct MHD_OptionItem){
                MHD_OPTION_HTTPS_KEY_PASSWORD, 0,
                (void *)srv->conf.tls_key_pass };
        if (l->conf.tls_client_auth)  /* MHD then asks for a certificate */
            opt[i++] = (struct MHD_OptionItem){
                MHD_OPTION_HTTPS_MEM_TRUST, 0,
                (void *)srv->conf.tls_client_ca_pem };
    }
    opt[i++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    l->daemon = MHD_start_daemon(flags, l->conf.port, NULL, NULL,
                                 http_access, l, MHD_OPTION_ARRAY, opt,
                                 MHD_OPTION_END);
    if (l->daemon == NULL) {
        snprintf(err, errlen, "cannot listen on %s port %u (address in use, "
                 "a limit too small%s?)", l->conf.addr,
                 (unsigned)l->conf.port,
                 l->conf.tls ? ", or a TLS certificate or key unusable" : "");
        return 0;
    }
    di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
    l->port = di != NULL ? di->port : l->conf.port;
    log_msg(LOG_INFO, "http: listening on %s port %u%s%s%s (%u threads)",
            l->conf.addr, (unsigned)l->port, l->conf.tls ? " TLS" : "",
            l->conf.tls_client_auth ? " with client certificates" : "",
            l->conf.kind == HTTP_LISTEN_METRICS ? " for /health and /metrics"
                                                : "", threads);
    return 1;
}

/* Stops and forgets the daemons of |srv| (in-flight requests are cut). */
static void http_listeners_stop(struct http_server *srv)
{
    size_t i;

    for (i = 0; i < srv->nlst; i++)
        if (srv->lst[i].daemon != NULL) {
            MHD_stop_daemon(srv->lst[i].daemon);
            srv->lst[i].daemon = NULL;
        }
}

struct http_server *http_server_start(const struct http_conf *conf,
                                      http_handler_fn handler,
                                      http_alias_fn alias_known, void *arg,
                                      char *err, size_t errlen)
{
    struct http_server *srv = NULL;
    long ncpu;
    size_t i;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (handler == NULL) {
        snprintf(err, errlen, "no handler");
        goto err;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL || pthread_mutex_init(&srv->log_mu, NULL) != 0) {
        free(srv);
        srv = NULL;
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    srv->conf = *conf;
    srv->handler = handler;
    srv->alias_known = alias_known;
    srv->arg = arg;
    if (srv->conf.bind_addr == NULL)
        srv->conf.bind_addr = "0.0.0.0";
    if (srv->conf.max_body == 0)
        srv->conf.max_body = HTTP_DEFAULT_MAX_BODY;
    if (srv->conf.max_conns == 0)
        srv->conf.max_conns = HTTP_DEFAULT_MAX_CONNS;
    if (srv->conf.per_ip_conns == 0)
        srv->conf.per_ip_conns = HTTP_DEFAULT_PER_IP;
    if (srv->conf.idle_timeout == 0)
        srv->conf.idle_timeout = HTTP_DEFAULT_IDLE;
    if (srv->conf.header_timeout == 0)
        srv->conf.header_timeout = HTTP_DEFAULT_HEADER_TO;
    if (srv->conf.body_timeout == 0)
        srv->conf.body_timeout = HTTP_DEFAULT_BODY_TO;
    if (srv->conf.listen_backlog == 0)
        srv->conf.listen_backlog = HTTP_DEFAULT_BACKLOG;
    if (srv->conf.conn_mem_limit == 0)
        srv->conf.conn_mem_limit = HTTP_DEFAULT_CONN_MEM;
    if (srv->conf.stop_grace == 0)
        srv->conf.stop_grace = HTTP_DEFAULT_STOP_GRACE;
    if (srv->conf.resource_max_requests == 0)
        srv->conf.resource_max_requests = HTTP_RES_MAX_REQUESTS;
    if (srv->conf.threads == 0) {
        /* Handlers wait for the group commit's fsync: with a few threads
         * per CPU the CPUs stay busy meanwhile and commits batch up. */
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        srv->conf.threads = HTTP_THREADS_PER_CPU * (ncpu > 0 ? (unsigned)ncpu : 1);
    }
    if (srv->conf.default_alias != NULL
        && !http_label_valid(srv->conf.default_alias,
                             strlen(srv->conf.default_alias))) {
        snprintf(err, errlen, "default alias \"%s\" is not a valid label "
                 "(1-64 of A-Z a-z 0-9 . _ -)", srv->conf.default_alias);
        goto err;
    }
    if (srv->conf.nlisten > HTTP_MAX_LISTENERS) {
        snprintf(err, errlen, "more than %d listeners", HTTP_MAX_LISTENERS);
        goto err;
    }
    if (srv->conf.nlisten == 0) {
        srv->lst[0].conf.addr = srv->conf.bind_addr;
        srv->lst[0].conf.port = srv->conf.port;
        srv->lst[0].conf.kind = HTTP_LISTEN_CMP;
        srv->nlst = 1;
    } else {
        for (i = 0; i < srv->conf.nlisten; i++)
            srv->lst[i].conf = srv->conf.listen[i];
        srv->nlst = srv->conf.nlisten;
    }
    for (i = 0; i < srv->nlst; i++) {
        srv->lst[i].srv = srv;
        if (srv->lst[i].conf.kind == HTTP_LISTEN_METRICS)
            srv->has_metrics = 1;
    }
    if (!http_conns_init(&srv->conns, srv->conf.max_conns,
                         srv->conf.header_timeout, srv->conf.body_timeout)) {
        snprintf(err, errlen, "cannot start the connection deadline thread");
        goto err;
    }
    srv->conns_ok = 1;
    for (i = 0; i < srv->nlst; i++)
        if (!http_listener_start(srv, &srv->lst[i], err, errlen))
            goto err;
    log_msg(LOG_INFO, "http: body limit %zu, %u connections (%u per "
            "address), headers within %u s, body within %u s",
            srv->conf.max_body, srv->conf.max_conns,
            srv->conf.per_ip_conns == HTTP_NO_LIMIT ? 0 : srv->conf.per_ip_conns,
            srv->conf.header_timeout, srv->conf.body_timeout);
    return srv;

 err:
    if (srv != NULL) {
        http_listeners_stop(srv);
        if (srv->conns_ok)
            http_conns_free(&srv->conns);
        pthread_mutex_destroy(&srv->log_mu);
    }
    free(srv);
    return NULL;
}

unsigned short http_server_port(const struct http_server *srv)
{
    size_t i;

    if (srv == NULL)
        return 0;
    for (i = 0; i < srv->nlst; i++)
        if (srv->lst[i].conf.kind == HTTP_LISTEN_CMP)
            return srv->lst[i].port;
    return srv->nlst > 0 ? srv->lst[0].port : 0;
}

unsigned short http_server_listen_port(const struct http_server *srv,
                                       size_t i)
{
    return srv != NULL && i < srv->nlst ? srv->lst[i].port : 0;
}

void http_server_get_stats(struct http_server *srv,
                           struct http_server_stats *st)
{
    struct http_conn_stats cs;

    memset(st, 0, sizeof(*st));
    if (srv == NULL)
        return;
    http_conns_stats(&srv->conns, &cs);
    st->open = cs.open;
    st->evicted = cs.evicted;
    st->refused = cs.refused;
    st->header_timeouts = cs.header_timeouts;
    st->body_timeouts = cs.body_timeouts;
}

unsigned http_server_inflight(const struct http_server *srv)
{
    return srv != NULL ? atomic_load(&((struct http_server *)srv)->inflight)
                       : 0;
}

void http_server_stop(struct http_server *srv)
{
    struct timespec t0, now, nap = { 0, 5 * 1000 * 1000 };
    MHD_socket lsock[HTTP_MAX_LISTENERS];
    unsigned left;
    size_t i;

    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, 1);
    /* MHD threads may still use the quiesced sockets, so they are closed
     * only after MHD_stop_daemon; shutdown() stops the kernel from queueing
     * new connections meanwhile (they are refused, not left hanging). */
    for (i = 0; i < srv->nlst; i++) {
        lsock[i] = MHD_quiesce_daemon(srv->lst[i].daemon);
        if (lsock[i] != MHD_INVALID_SOCKET)
            (void)shutdown(lsock[i], SHUT_RDWR);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((left = atomic_load(&srv->inflight)) > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= (time_t)srv->conf.stop_grace) {
            log_msg(LOG_WARN, "http: stopping with %u request(s) unfinished",
                    left);
            break;
        }
        nanosleep(&nap, NULL);
    }
    /* no deadline closes a connection while MHD tears them down */
    http_conns_stop(&srv->conns);
    http_listeners_stop(srv);
    for (i = 0; i < srv->nlst; i++)
        if (lsock[i] != MHD_INVALID_SOCKET)
            close(lsock[i]);
    http_conns_free(&srv->conns);
    pthread_mutex_destroy(&srv->log_mu);
    log_msg(LOG_INFO, "http: stopped");
    free(srv);
}
