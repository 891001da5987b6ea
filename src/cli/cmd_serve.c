/*
 * `cmpca serve`: loads the configuration, opens the store, builds the CMP
 * server core and puts the HTTP front end in front of it. The main thread
 * waits for signals and runs the confirmation sweeper; SIGTERM/SIGINT stop
 * gracefully (in-flight requests are answered), SIGHUP reloads vendors.
 */
#include "cli/cli.h"

#include "conf/conf.h"
#include "http/http.h"
#include "ocsp/ocsp_pub.h"
#include "ocsp/vendor_crl.h"
#include "server/server.h"
#include "store/store.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Seconds between two counts of the expiry gauges. */
#define SERVE_GAUGE_AGE 60

struct serve_opts {
    const char *listen;       /* overrides [server] listen */
    const char *port_file;    /* write the bound port here */
    int threads;              /* overrides [server] threads; -1 = unset */
};

/* What the HTTP callbacks get: the CMP core and the revocation services. */
struct serve_ctx {
    SERVER *srv;
    OCSP_PUB *pub;
    VENDOR_CRL *vcrl;           /* vendor-certificate revocation ([vendor
                                 * NAME] crl); see the report: the server
                                 * core calls vendor_crl_check() once wired */
};

/* Transport glue: bytes from the HTTP layer to the server core and back. */
static void serve_handler(void *arg, const struct http_request *hreq,
                          struct http_response *hrsp)
{
    struct serve_ctx *ctx = arg;
    struct server_request req;
    struct server_response rsp;

    memset(&req, 0, sizeof(req));
    req.alias = hreq->alias;
    req.der = hreq->body;
    req.len = hreq->body_len;
    req.reject_status = hreq->reject_status;
    req.peer = hreq->peer;
    server_handle(ctx->srv, &req, &rsp);
    hrsp->body = rsp.der;
    hrsp->body_len = rsp.len;
    hrsp->status = rsp.http_status;
    /* RFC 9811 5: close the connection after a transport-level error */
    hrsp->close = rsp.http_status >= 400;
}

static int serve_alias_known(void *arg, const char *alias)
{
    return server_has_alias(((struct serve_ctx *)arg)->srv, alias);
}

/* The revocation services' lines of /metrics. */
static size_t serve_metrics(void *arg, char *buf, size_t cap)
{
    struct serve_ctx *ctx = arg;
    size_t n = ocsp_pub_metrics(ctx->pub, buf, cap);

    return n + vendor_crl_metrics(ctx->vcrl, buf + n, cap - n);
}

/* Splits "host:port", "[v6]:port", ":port" or "port". Returns 1 or 0. */
static int serve_parse_listen(const char *s, char *host, size_t hostlen,
                              unsigned short *port)
{
    const char *colon;
    char *end;
    long p;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':' || (size_t)(rb - s - 1) >= hostlen)
            return 0;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else if ((colon = strrchr(s, ':')) != NULL) {
        if ((size_t)(colon - s) >= hostlen)
            return 0;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        if (host[0] == '\0')
            snprintf(host, hostlen, "0.0.0.0");
    } else {
        snprintf(host, hostlen, "0.0.0.0");
        colon = s - 1;
    }
    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return 0;
    *port = (unsigned short)p;
    return 1;
}

static void serve_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca [-c CONFIG] serve [--listen ADDR:PORT] [--threads N]\n"
            "                               [--port-file FILE]\n"
            "\n"
            "Runs the CMP server with the configuration's [server], [store],\n"
            "[alias NAME], [ca NAME] and [profile NAME] sections.\n"
            "SIGTERM/SIGINT stop gracefully; SIGHUP reloads vendor CAs.\n"
            "\n"
            "  --listen ADDR:PORT  override [server] listen (port 0 = any free port)\n"
            "  --threads N         override [server] threads (0 = 4 per CPU)\n"
            "  --port-file FILE    write the port actually bound to FILE\n");
}

/* Reads the [server] keys into |hc| (strings point into |conf|). */
static int serve_conf_http(const struct conf *conf, const struct serve_opts *o,
                           struct http_conf *hc, char *host, size_t hostlen,
                           long *sweep, char *err, size_t errlen)
{
    const struct conf_section *sec = conf_find(conf, "server", "");
    const char *listen = conf_get(sec, "listen"), *level;
    long threads, max_body, max_conns, per_ip, idle, mem, grace;

    http_conf_init(hc);
    if (o->listen != NULL)
        listen = o->listen;
    if (listen == NULL)
        listen = "127.0.0.1:8080";
    if (!serve_parse_listen(listen, host, hostlen, &hc->port))
        return conf_err(conf, sec != NULL ? sec->line : 0, err, errlen,
                        "listen = %s is not ADDR:PORT", listen);
    hc->bind_addr = host;
    if (!conf_get_long(conf, sec, "threads", 0, 0, 1024, &threads, err, errlen)
        || !conf_get_size(conf, sec, "max_body", 65536, 1024, 16L << 20,
                          &max_body, err, errlen)
        || !conf_get_long(conf, sec, "max_conns", 1024, 1, 1000000, &max_conns,
                          err, errlen)
        || !conf_get_long(conf, sec, "per_ip_conns", 0, 0, 1000000, &per_ip,
                          err, errlen)
        || !conf_get_duration(conf, sec, "idle_timeout", 30, 1, 3600, &idle,
                              err, errlen)
        || !conf_get_size(conf, sec, "conn_mem_limit", 32768, 4096, 1L << 24,
                          &mem, err, errlen)
        || !conf_get_duration(conf, sec, "stop_grace", 10, 0, 600, &grace,
                              err, errlen)
        || !conf_get_duration(conf, sec, "sweep_interval", 5, 1, 3600, sweep,
                              err, errlen))
        return 0;
    hc->threads = o->threads >= 0 ? (unsigned)o->threads : (unsigned)threads;
    hc->max_body = (size_t)max_body;
    hc->max_conns = (unsigned)max_conns;
    hc->per_ip_conns = (unsigned)per_ip;
    hc->idle_timeout = (unsigned)idle;
    hc->conn_mem_limit = (size_t)mem;
    hc->stop_grace = (unsigned)grace;
    if ((level = conf_get(sec, "log_level")) != NULL) {
        if (strcasecmp(level, "error") == 0)
            log_set_level(LOG_ERROR);
        else if (strcasecmp(level, "warn") == 0)
            log_set_level(LOG_WARN);
        else if (strcasecmp(level, "info") == 0)
            log_set_level(LOG_INFO);
        else if (strcasecmp(level, "debug") == 0)
            log_set_level(LOG_DEBUG);
        else
            return conf_err(conf, sec->line, err, errlen,
                            "log_level must be error, warn, info or debug");
    }
    return 1;
}

static int serve_write_port(const char *path, unsigned short port)
{
    char tmp[4096];
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((fp = fopen(tmp, "w")) == NULL)
        return 0;
    fprintf(fp, "%u\n", port);
    if (fclose(fp) != 0 || rename(tmp, path) != 0)
        return 0;
    return 1;
}

static int cli_serve_run(const struct serve_opts *o)
{
    struct conf *conf = NULL;
    struct store *st = NULL;
    SERVER *srv = NULL;
    OCSP_PUB *pub = NULL;
    VENDOR_CRL *vcrl = NULL;
    struct serve_ctx ctx;
    struct http_server *http = NULL;
    struct http_conf hc;
    sigset_t sigs;
    char err[512], host[128];
    long sweep = 5;
    int rc, sig, ret = CLI_ERR;

    if ((rc = cli_store_open(&conf, &st)) != CLI_OK)
        return rc;
    if (!serve_conf_http(conf, o, &hc, host, sizeof(host), &sweep, err,
                         sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    if ((srv = server_new(conf, st, err, sizeof(err))) == NULL) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    if ((pub = ocsp_pub_new(conf, st, err, sizeof(err))) == NULL) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    if ((vcrl = vendor_crl_new(conf, st, err, sizeof(err))) == NULL) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    ctx.srv = srv;
    ctx.pub = pub;
    ctx.vcrl = vcrl;
    hc.resource = ocsp_pub_handle;
    hc.resource_arg = pub;
    hc.resource_max_requests = ocsp_pub_max_requests(pub);
    hc.metrics_extra = serve_metrics;
    if (conf_find(conf, "server", "") != NULL
        && !conf_check_used(conf, conf_find(conf, "server", ""), err,
                            sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    hc.default_alias = server_default_alias(srv);
    /* Signals are taken synchronously by this thread only. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((http = http_server_start(&hc, serve_handler, serve_alias_known, &ctx,
                                  err, sizeof(err))) == NULL) {
        fprintf(stderr, "cmpca: %s\n", err);
        goto end;
    }
    if (o->port_file != NULL
        && !serve_write_port(o->port_file, http_server_port(http))) {
        fprintf(stderr, "cmpca: cannot write %s: %s\n", o->port_file,
                strerror(errno));
        goto end;
    }
    (void)ocsp_pub_refresh_gauges(pub, time(NULL), 0);
    log_msg(LOG_INFO, "cmpca %s serving on http://%s:%u/.well-known/cmp%s%s%s",
            CMPCA_VERSION, host, http_server_port(http),
            hc.default_alias != NULL ? " (default alias " : "",
            hc.default_alias != NULL ? hc.default_alias : "",
            hc.default_alias != NULL ? ")" : "");
    for (;;) {
        struct timespec ts = { sweep, 0 };
        siginfo_t si;

        sig = sigtimedwait(&sigs, &si, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) {
            log_msg(LOG_INFO, "SIGHUP: reloading vendor CAs");
            server_reload_vendors(srv);
            continue;
        }
        if (server_sweep(srv, time(NULL)) < 0)
            log_msg(LOG_WARN, "sweeper: store unavailable");
        if (ocsp_pub_refresh_crls(pub, time(NULL)) < 0)
            log_msg(LOG_WARN, "crl refresh: store unavailable");
        if (ocsp_pub_refresh_gauges(pub, time(NULL), SERVE_GAUGE_AGE) < 0)
            log_msg(LOG_WARN, "expiry gauges: store unavailable");
    }
    log_msg(LOG_INFO, "stopping: answering requests in flight");
    ret = CLI_OK;
 end:
    http_server_stop(http);
    ocsp_pub_free(pub);
    vendor_crl_free(vcrl);
    server_free(srv);
    store_close(st);
    conf_free(conf);
    return ret;
}

int cli_serve_main(const char *listen, const char *port_file, int threads)
{
    struct serve_opts o;

    o.listen = listen;
    o.port_file = port_file;
    o.threads = threads;
    return cli_serve_run(&o);
}

int cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen",    required_argument, NULL, 'l' },
        { "threads",   required_argument, NULL, 't' },
        { "port-file", required_argument, NULL, 'p' },
        { "help",      no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct serve_opts o = { NULL, NULL, -1 };
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "l:t:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o.listen = optarg;
            break;
        case 't':
            o.threads = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o.threads < 0 || o.threads > 1024) {
                fprintf(stderr, "cmpca serve: bad --threads\n");
                return CLI_USAGE;
            }
            break;
        case 'p':
            o.port_file = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return CLI_OK;
        default:
            serve_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc) {
        serve_usage(stderr);
        return CLI_USAGE;
    }
    return cli_serve_run(&o);
}
