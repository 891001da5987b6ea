/*
 * `cmpca serve`: starts the signer process (which alone holds the keys),
 * loads the configuration, opens the store, builds the CMP server core and
 * puts the HTTP front end in front of it. The main thread
 * waits for signals and runs the confirmation sweeper; SIGTERM/SIGINT stop
 * gracefully (in-flight requests are answered), SIGHUP reloads vendors.
 * Once its sockets are bound it becomes [server] user for good.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "client/upclient.h"
#include "conf/conf.h"
#include "http/http.h"
#include "ocsp/ocsp_pub.h"
#include "ocsp/vendor_crl.h"
#include "server/server.h"
#include "signer/signer.h"
#include "store/store.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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
    int allow_root;           /* 1 = may keep running as root (cmpca demo) */
};

/* Largest TLS certificate / key / CA file read. */
#define SERVE_TLS_FILE_MAX (1L << 20)

/* Everything [server] says beyond struct http_conf, and the buffers its
 * strings point into. */
struct serve_net {
    char host[HTTP_MAX_LISTENERS][128];
    char *tls_cert, *tls_key, *tls_ca;
    size_t tls_cert_len, tls_key_len, tls_ca_len;
    char tls_pass[SECRET_MAX + 1];
    const char *user;         /* [server] user, or NULL */
    int allow_root;           /* [server] allow_root */
};

/* What the HTTP callbacks get: the CMP core and the revocation services. */
struct serve_ctx {
    SERVER *srv;
    OCSP_PUB *pub;
    VENDOR_CRL *vcrl;           /* vendor-certificate revocation ([vendor
                                 * NAME] crl), lent to the server core for
                                 * its ir checks; its metrics here */
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

    n += vendor_crl_metrics(ctx->vcrl, buf + n, cap - n);
    upclient_metrics_append(buf, cap, &n);     /* the upstream links */
    return n;
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

/* Parses one listener "ADDR:PORT [tls] [client-cert]" (|n| bytes at |s|)
 * into |l|, the host text into |host|. Returns 1 or 0. */
static int serve_parse_listener(const char *s, size_t n, char *host,
                                size_t hostlen, struct http_listen *l)
{
    char item[256], *tok, *save = NULL;
    int first = 1;

    if (n >= sizeof(item))
        return 0;
    memcpy(item, s, n);
    item[n] = '\0';
    memset(l, 0, sizeof(*l));
    for (tok = strtok_r(item, " \t", &save); tok != NULL;
         tok = strtok_r(NULL, " \t", &save)) {
        if (first) {
            if (!serve_parse_listen(tok, host, hostlen, &l->port))
                return 0;
            l->addr = host;
            first = 0;
        } else if (strcmp(tok, "tls") == 0) {
            l->tls = 1;
        } else if (strcmp(tok, "client-cert") == 0) {
            l->tls_client_auth = 1;
        } else {
            return 0;
        }
    }
    return !first && (!l->tls_client_auth || l->tls);
}

/* Parses the comma-separated listener list |s| into hc->listen (kind
 * |kind|), appending. Returns 1 or 0. */
static int serve_parse_listeners(const char *s, enum http_listen_kind kind,
                                 struct http_conf *hc, struct serve_net *net)
{
    const char *p = s;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        if (hc->nlisten >= HTTP_MAX_LISTENERS
            || !serve_parse_listener(p, n, net->host[hc->nlisten],
                                     sizeof(net->host[0]),
                                     &hc->listen[hc->nlisten]))
            return 0;
        hc->listen[hc->nlisten++].kind = kind;
        if (comma == NULL)
            return 1;
        p = comma + 1;
    }
}

/* Reads the PEM file |path| (a key: |private_key|, which must be a regular
 * file not readable or writable by group or others) into *buf. */
static int serve_read_pem(const struct conf *conf, int line, const char *key,
                          const char *path, int private_key, char **buf,
                          size_t *len, char *err, size_t errlen)
{
    struct stat sb;

    if (private_key) {
        if (stat(path, &sb) != 0)
            return conf_err(conf, line, err, errlen, "%s = %s: %s", key, path,
                            strerror(errno));
        if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0)
            return conf_err(conf, line, err, errlen, "%s = %s: the key file "
                            "must be a regular file of mode 0600 (it is "
                            "%04o)", key, path, (unsigned)(sb.st_mode & 07777));
    }
    if (!secret_file_read(path, SERVE_TLS_FILE_MAX, buf, len))
        return conf_err(conf, line, err, errlen, "%s = %s: %s", key, path,
                        errno == EFBIG ? "file too large" : strerror(errno));
    return 1;
}

/* Reads the TLS and privilege keys of [server] into |hc| and |net|. */
static int serve_conf_tls(const struct conf *conf,
                          const struct conf_section *sec, struct http_conf *hc,
                          struct serve_net *net, char *err, size_t errlen)
{
    const char *cert = conf_get(sec, "tls_cert"), *key = conf_get(sec, "tls_key");
    const char *pass = conf_get(sec, "tls_key_pass");
    const char *ca = conf_get(sec, "tls_client_ca");
    int line = sec != NULL ? sec->line : 0, any_tls = 0, any_client = 0;
    size_t i;

    for (i = 0; i < hc->nlisten; i++) {
        any_tls |= hc->listen[i].tls;
        any_client |= hc->listen[i].tls_client_auth;
    }
    if (!any_tls && (cert != NULL || key != NULL || ca != NULL || pass != NULL))
        return conf_err(conf, line, err, errlen, "tls_cert, tls_key, "
                        "tls_key_pass and tls_client_ca need a listener "
                        "marked tls (listen = ADDR:PORT tls)");
    if (!any_tls)
        return 1;
    if (cert == NULL || key == NULL)
        return conf_err(conf, line, err, errlen, "a tls listener needs "
                        "tls_cert and tls_key");
    if (any_client && ca == NULL)
        return conf_err(conf, line, err, errlen, "a client-cert listener "
                        "needs tls_client_ca (the CAs of client certificates)");
    if (!any_client && ca != NULL)
        return conf_err(conf, line, err, errlen, "tls_client_ca without a "
                        "listener marked client-cert");
    if (!serve_read_pem(conf, line, "tls_cert", cert, 0, &net->tls_cert,
                        &net->tls_cert_len, err, errlen)
        || !serve_read_pem(conf, line, "tls_key", key, 1, &net->tls_key,
                           &net->tls_key_len, err, errlen)
        || (ca != NULL
            && !serve_read_pem(conf, line, "tls_client_ca", ca, 0,
                               &net->tls_ca, &net->tls_ca_len, err, errlen)))
        return 0;
    hc->tls_cert_pem = net->tls_cert;
    hc->tls_key_pem = net->tls_key;
    hc->tls_client_ca_pem = net->tls_ca;
    if (pass != NULL) {
        if (!secret_read(pass, "TLS key passphrase", net->tls_pass,
                         sizeof(net->tls_pass), err, errlen))
            return 0;
        hc->tls_key_pass = net->tls_pass;
    }
    return 1;
}

/* Frees what serve_conf_http read (the TLS key and passphrase wiped). */
static void serve_net_clear(struct serve_net *net)
{
    secret_free(net->tls_cert, net->tls_cert_len);
    secret_free(net->tls_key, net->tls_key_len);
    secret_free(net->tls_ca, net->tls_ca_len);
    secret_wipe(net->tls_pass, sizeof(net->tls_pass));
    net->tls_cert = net->tls_key = net->tls_ca = NULL;
}

/* Becomes |user| (its uid, gid and supplementary groups) for good; checks
 * that root cannot be regained. Returns 1, or 0 with |err|. */
static int serve_drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd *pw;

    errno = 0;
    if ((pw = getpwnam(user)) == NULL) {
        snprintf(err, errlen, "[server] user %s: %s", user,
                 errno != 0 ? strerror(errno) : "no such user");
        return 0;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "[server] user %s is root", user);
        return 0;
    }
    if (geteuid() == 0 && initgroups(pw->pw_name, pw->pw_gid) != 0) {
        snprintf(err, errlen, "initgroups(%s): %s", user, strerror(errno));
        return 0;
    }
    if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0
        || setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot become user %s: %s", user,
                 strerror(errno));
        return 0;
    }
    if (setuid(0) == 0 || geteuid() != pw->pw_uid || getegid() != pw->pw_gid) {
        snprintf(err, errlen, "could still regain root after becoming %s",
                 user);
        return 0;
    }
#if defined(__SANITIZE_ADDRESS__)
    /* sanitizer builds only: LeakSanitizer's exit check ptraces the
     * process's own threads, which a non-dumpable process cannot */
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
    log_msg(LOG_INFO, "running as user %s (uid %u, gid %u)", user,
            (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
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
            "  --listen LIST       override [server] listen (ADDR:PORT [tls]\n"
            "                      [client-cert], comma-separated; port 0 = any)\n"
            "  --threads N         override [server] threads (0 = 4 per CPU)\n"
            "  --port-file FILE    write the port actually bound to FILE\n");
}

/* Reads the [server] keys into |hc| (strings point into |conf|). */
static int serve_conf_http(const struct conf *conf, const struct serve_opts *o,
                           struct http_conf *hc, struct serve_net *net,
                           long *sweep, char *err, size_t errlen)
{
    const struct conf_section *sec = conf_find(conf, "server", "");
    const char *listen = conf_get(sec, "listen"), *level;
    const char *mlisten = conf_get(sec, "metrics_listen");
    long threads, max_body, max_conns, per_ip, idle, mem, grace;
    long hdr_to, body_to, backlog;
    int line = sec != NULL ? sec->line : 0;

    http_conf_init(hc);
    if (o->listen != NULL)
        listen = o->listen;
    if (listen == NULL)
        listen = "127.0.0.1:8080";
    if (!serve_parse_listeners(listen, HTTP_LISTEN_CMP, hc, net))
        return conf_err(conf, line, err, errlen, "listen = %s is not a list "
                        "of ADDR:PORT [tls] [client-cert] (at most %d)",
                        listen, HTTP_MAX_LISTENERS);
    if (mlisten != NULL
        && !serve_parse_listeners(mlisten, HTTP_LISTEN_METRICS, hc, net))
        return conf_err(conf, line, err, errlen, "metrics_listen = %s is not "
                        "a list of ADDR:PORT [tls]", mlisten);
    hc->bind_addr = hc->listen[0].addr;
    hc->port = hc->listen[0].port;
    if (!conf_get_long(conf, sec, "threads", 0, 0, 1024, &threads, err, errlen)
        || !conf_get_size(conf, sec, "max_body", 65536, 1024, 16L << 20,
                          &max_body, err, errlen)
        || !conf_get_long(conf, sec, "max_conns", 1024, 1, 1000000, &max_conns,
                          err, errlen)
        || !conf_get_long(conf, sec, "per_ip_conns", 128, 0, 1000000, &per_ip,
                          err, errlen)
        || !conf_get_duration(conf, sec, "idle_timeout", 30, 1, 3600, &idle,
                              err, errlen)
        || !conf_get_duration(conf, sec, "header_timeout", 10, 1, 3600,
                              &hdr_to, err, errlen)
        || !conf_get_duration(conf, sec, "body_timeout", 20, 1, 3600,
                              &body_to, err, errlen)
        || !conf_get_long(conf, sec, "listen_backlog", 1024, 16, 65535,
                          &backlog, err, errlen)
        || !conf_get_bool(conf, sec, "allow_root", 0, &net->allow_root, err,
                          errlen)
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
    hc->per_ip_conns = per_ip == 0 ? HTTP_NO_LIMIT : (unsigned)per_ip;
    hc->idle_timeout = (unsigned)idle;
    hc->header_timeout = (unsigned)hdr_to;
    hc->body_timeout = (unsigned)body_to;
    hc->listen_backlog = (unsigned)backlog;
    net->user = conf_get(sec, "user");
    if (net->user != NULL && net->user[0] == '\0')
        return conf_err(conf, line, err, errlen, "user is empty");
    if (!serve_conf_tls(conf, sec, hc, net, err, errlen))
        return 0;
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

/* Audit row of a server life-cycle event (start, reload, stop) with the
 * listen address and pid; returns 1 if it was written. */
static int serve_audit(struct store *st, const char *action,
                       const char *host, unsigned port, const char *why)
{
    char details[256], obj[160];
    enum store_rc rc;

    snprintf(obj, sizeof(obj), "%s:%u", host, port);
    snprintf(details, sizeof(details), "{\"version\":\"%s\",\"pid\":%ld%s%s%s}",
             CMPCA_VERSION, (long)getpid(), why != NULL ? ",\"why\":\"" : "",
             why != NULL ? why : "", why != NULL ? "\"" : "");
    if ((rc = audit_event(st, cli_actor(), action, obj, details)) != STORE_OK)
        log_msg(LOG_ERROR, "audit: cannot record %s: %s", action,
                store_rc_str(rc));
    return rc == STORE_OK;
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
    struct audit_export_conf ax = { 0 };
    struct serve_net net;
    struct signer_conf scf;
    SIGNER_PROC *sp = NULL;
    enum signer_start_rc src;
    sigset_t sigs;
    char err[512];
    long sweep = 5;
    unsigned port;
    int rc, sig, ret = CLI_ERR, signer_died = 0;
    size_t i;

    memset(&net, 0, sizeof(net));
    /* first, while this process has one thread: the signer process loads
     * the keys; from here on ca_signer_load() asks it (unless signer =
     * inprocess) */
    if ((src = signer_proc_start(cli_config_path(), &sp, err, sizeof(err)))
        != SIGNER_START_OK) {
        fprintf(stderr, "cmpca: %s%s\n", src == SIGNER_START_STORE
                ? "cannot open the store: " : "", err);
        return src == SIGNER_START_KEY ? CLI_AUTH
            : src == SIGNER_START_CONFIG ? CLI_CONFIG
            : src == SIGNER_START_STORE ? CLI_STORE : CLI_ERR;
    }
    if ((rc = cli_store_open(&conf, &st)) != CLI_OK) {
        signer_proc_stop(sp);
        return rc;
    }
    if (!serve_conf_http(conf, o, &hc, &net, &sweep, err, sizeof(err))
        || !signer_conf_read(conf, &scf, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    if (geteuid() == 0 && net.user == NULL && !net.allow_root
        && !o->allow_root) {
        fprintf(stderr, "cmpca: refusing to serve as root: set [server] user "
                "= NAME (an unprivileged account the process becomes after "
                "binding), or allow_root = yes to run as root anyway\n");
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
    server_set0_vendor_crl(srv, vcrl);
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
    if (!audit_export_conf_load(conf, &ax, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    /* every secret is read: env: passphrases leave the environment */
    secret_env_wipe_read();
    hc.default_alias = server_default_alias(srv);
    /* Signals are taken synchronously by this thread only. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGCHLD);  /* the signer process ended */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((http = http_server_start(&hc, serve_handler, serve_alias_known, &ctx,
                                  err, sizeof(err))) == NULL) {
        fprintf(stderr, "cmpca: %s\n", err);
        goto end;
    }
    if (!serve_audit(st, "server.start", net.host[0], http_server_port(http), NULL)) {
        fprintf(stderr, "cmpca: cannot record the start in the audit trail\n");
        ret = CLI_STORE;
        goto end;
    }
    audit_export_tick(&ax, st, (int64_t)time(NULL), 1);
    if (o->port_file != NULL
        && !serve_write_port(o->port_file, http_server_port(http))) {
        fprintf(stderr, "cmpca: cannot write %s: %s\n", o->port_file,
                strerror(errno));
        goto end;
    }
    if (net.user != NULL) {
        if (!serve_drop_privileges(net.user, err, sizeof(err))) {
            fprintf(stderr, "cmpca: %s\n", err);
            goto end;
        }
    } else if (geteuid() == 0) {
        log_msg(LOG_WARN, "running as root (allow_root): set [server] user");
    }
    for (i = 0; i < hc.nlisten; i++)
        log_msg(LOG_INFO, "cmpca %s serving %s on %s://%s%s%s:%u%s%s",
                CMPCA_VERSION, hc.listen[i].kind == HTTP_LISTEN_CMP
                ? "CMP" : "/health and /metrics",
                hc.listen[i].tls ? "https" : "http",
                strchr(hc.listen[i].addr, ':') != NULL ? "[" : "",
                hc.listen[i].addr,
                strchr(hc.listen[i].addr, ':') != NULL ? "]" : "",
                http_server_listen_port(http, i),
                hc.listen[i].kind == HTTP_LISTEN_CMP ? "/.well-known/cmp" : "",
                hc.listen[i].tls_client_auth
                ? " (client certificate required)" : "");
    if (hc.default_alias != NULL)
        log_msg(LOG_INFO, "default alias %s", hc.default_alias);
    (void)ocsp_pub_refresh_gauges(pub, time(NULL), 0);
    for (;;) {
        struct timespec ts = { sweep, 0 };
        siginfo_t si;

        if (sp != NULL && signer_proc_exited(sp, NULL)) {
            log_msg(LOG_ERROR, "the signer process ended: stopping (nothing "
                    "can be signed any more)");
            signer_died = 1;
            break;
        }
        sig = sigtimedwait(&sigs, &si, &ts);
        if (sig == SIGCHLD)
            continue;
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) {
            log_msg(LOG_INFO, "SIGHUP: reloading vendor CAs");
            server_reload_vendors(srv);
            serve_audit(st, "server.reload", net.host[0], http_server_port(http),
                        "SIGHUP: vendor CAs");
            continue;
        }
        if (server_sweep(srv, time(NULL)) < 0)
            log_msg(LOG_WARN, "sweeper: store unavailable");
        audit_export_tick(&ax, st, (int64_t)time(NULL), 0);
        if (ocsp_pub_refresh_crls(pub, time(NULL)) < 0)
            log_msg(LOG_WARN, "crl refresh: store unavailable");
        if (ocsp_pub_refresh_gauges(pub, time(NULL), SERVE_GAUGE_AGE) < 0)
            log_msg(LOG_WARN, "expiry gauges: store unavailable");
    }
    log_msg(LOG_INFO, "stopping: answering requests in flight");
    port = http_server_port(http);
    http_server_stop(http);
    http = NULL;
    serve_audit(st, "server.stop", net.host[0], port,
                signer_died ? "signer process ended"
                : sig == SIGINT ? "SIGINT" : "SIGTERM");
    audit_export_tick(&ax, st, (int64_t)time(NULL), 1);
    ret = signer_died ? CLI_ERR : CLI_OK;
 end:
    audit_export_conf_clear(&ax);
    http_server_stop(http);
    ocsp_pub_free(pub);
    vendor_crl_free(vcrl);
    server_free(srv);
    if (!signer_proc_stop(sp) && !signer_died)
        log_msg(LOG_WARN, "the signer process did not exit cleanly");
    store_close(st);
    conf_free(conf);
    serve_net_clear(&net);
    return ret;
}

int cli_serve_main(const char *listen, const char *port_file, int threads,
                   int allow_root)
{
    struct serve_opts o;

    o.listen = listen;
    o.port_file = port_file;
    o.threads = threads;
    o.allow_root = allow_root;
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
    struct serve_opts o = { NULL, NULL, -1, 0 };
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
