/*
 * Tests of the upstream HTTP(S) client against a real libmicrohttpd server
 * on loopback (GnuTLS for https): the POST round trip, keep-alive reuse,
 * timeouts, refused connections and retries, size bounds, content types,
 * TLS server and client authentication, metrics and concurrent use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/upclient.h"
#include "cmp_testpki.h"
#include "testutil.h"

/* ---- the test server ------------------------------------------------- */

#define TS_BODY_MAX (4 * 1024 * 1024)

struct tsrv {
    struct MHD_Daemon *d;
    unsigned short port;
    atomic_int conns;           /* TCP connections accepted */
    atomic_int reqs;            /* requests answered */
    atomic_int sleep_ms;        /* before answering */
    size_t big;                 /* answer this many bytes instead of echo */
    int chunked;                /* big answer without Content-Length */
    const char *ctype;          /* answer content type */
    unsigned status;            /* answer status */
    int need_client;            /* 403 without a verified client cert */
    int empty;                  /* answer without a body */
    unsigned conn_timeout;      /* idle seconds before the server closes */
    const char *tls_prio;       /* GnuTLS priorities, or NULL */
    atomic_int stall_body;      /* the chunked body waits 1 s first */
    pthread_mutex_t lock;
    char req_ctype[64], req_accept[64], req_method[16];
    int req_expect;             /* an Expect header was seen */
};

struct treq {
    unsigned char *body;
    size_t len;
};

static struct tsrv ts;

static void ts_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                      enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    (void)socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&ts.conns, 1);
}

static void ts_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct treq *r = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (r != NULL) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

static ssize_t ts_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t n;

    (void)cls;
    if (pos == 0 && ts.stall_body)
        usleep(1000 * 1000);
    if (pos >= ts.big)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = ts.big - (size_t)pos;
    if (n > max)
        n = max;
    if (n > 1000)
        n = 1000;
    memset(buf, 'c', n);
    return (ssize_t)n;
}

/* Returns 1 if the TLS peer of |c| sent a certificate the server trusts. */
static int ts_client_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci;
    unsigned int st = 1, n = 0;

    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return 0;
    if (gnutls_certificate_get_peers(ci->tls_session, &n) == NULL || n == 0)
        return 0;
    return gnutls_certificate_verify_peers2(ci->tls_session, &st) == 0
           && st == 0;
}

static enum MHD_Result ts_handler(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct treq *r = *con_cls;
    struct MHD_Response *rsp;
    const char *v;
    unsigned status = ts.status;
    enum MHD_Result ret;
    char *out;
    size_t out_len;

    (void)cls;
    (void)url;
    (void)version;
    if (r == NULL) {
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (r->len + *upload_size > TS_BODY_MAX)
            return MHD_NO;
        r->body = realloc(r->body, r->len + *upload_size);
        if (r->body == NULL)
            return MHD_NO;
        memcpy(r->body + r->len, upload_data, *upload_size);
        r->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&ts.lock);
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    snprintf(ts.req_ctype, sizeof(ts.req_ctype), "%s", v != NULL ? v : "");
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    snprintf(ts.req_accept, sizeof(ts.req_accept), "%s", v != NULL ? v : "");
    snprintf(ts.req_method, sizeof(ts.req_method), "%s", method);
    ts.req_expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "Expect") != NULL;
    pthread_mutex_unlock(&ts.lock);
    if (ts.sleep_ms > 0)
        usleep((useconds_t)ts.sleep_ms * 1000);
    if (ts.need_client && !ts_client_ok(c)) {
        rsp = MHD_create_response_from_buffer(10, "forbidden\n",
                                              MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(rsp, "Content-Type", "text/plain");
        ret = MHD_queue_response(c, 403, rsp);
        MHD_destroy_response(rsp);
        atomic_fetch_add(&ts.reqs, 1);
        return ret;
    }
    if (ts.big > 0 && ts.chunked) {
        rsp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1000,
                                                ts_chunk, NULL, NULL);
    } else {
        if (ts.empty) {
            out_len = 0;
            out = NULL;
        } else if (ts.big > 0) {
            out_len = ts.big;
            if ((out = malloc(out_len)) != NULL)
                memset(out, 'b', out_len);
        } else {
            out_len = r->len;
            if ((out = malloc(out_len + 1)) != NULL && out_len > 0)
                memcpy(out, r->body, out_len);
        }
        if (out_len > 0 && out == NULL)
            return MHD_NO;
        rsp = MHD_create_response_from_buffer(out_len, out,
                                              out != NULL
                                              ? MHD_RESPMEM_MUST_FREE
                                              : MHD_RESPMEM_PERSISTENT);
    }
    if (rsp == NULL)
        return MHD_NO;
    MHD_add_response_header(rsp, "Content-Type", ts.ctype);
    if (status >= 300 && status < 400)
        MHD_add_response_header(rsp, "Location", "/elsewhere");
    ret = MHD_queue_response(c, status, rsp);
    MHD_destroy_response(rsp);
    atomic_fetch_add(&ts.reqs, 1);
    return ret;
}

/* PEM strings of the test PKI (NUL-terminated) and their files. */
struct tpki {
    char *dir;
    char *srv_cert, *srv_key, *ca_cert;
    char ca_file[512], other_ca_file[512], cli_cert_file[512],
         cli_key_file[512], cli_both_file[512];
};

static struct tpki pki;

/* Starts the test server (https when |tls|; client certs checked against
 * the test CA when |trust|). Resets the behaviour to a 200 echo. */
static void ts_start(int tls, int trust)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *di;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION
                     | MHD_USE_INTERNAL_POLLING_THREAD;

    atomic_store(&ts.conns, 0);
    atomic_store(&ts.reqs, 0);
    ts.sleep_ms = 0;
    ts.big = 0;
    ts.chunked = 0;
    ts.ctype = "application/pkixcmp";
    ts.status = 200;
    ts.need_client = 0;
    ts.empty = 0;
    ts.stall_body = 0;
    if (ts.conn_timeout == 0)
        ts.conn_timeout = 10;
    pthread_mutex_init(&ts.lock, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (tls)
        flags |= MHD_USE_TLS;
    {
        struct MHD_OptionItem o[10];
        int k = 0;

#define TS_OPT(opt, v, p) o[k++] = (struct MHD_OptionItem){ opt, v, p }
        TS_OPT(MHD_OPTION_SOCK_ADDR, 0, &sa);
        TS_OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)ts_notify, NULL);
        TS_OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)ts_completed, NULL);
        TS_OPT(MHD_OPTION_CONNECTION_TIMEOUT, ts.conn_timeout, NULL);
        if (tls) {
            TS_OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, pki.srv_key);
            TS_OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, pki.srv_cert);
        }
        if (tls && trust)
            TS_OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, pki.ca_cert);
        if (tls && ts.tls_prio != NULL)
            TS_OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)ts.tls_prio);
        TS_OPT(MHD_OPTION_END, 0, NULL);
#undef TS_OPT
        ts.d = MHD_start_daemon(flags, 0, NULL, NULL, ts_handler, NULL,
                                MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    }
    assert_non_null(ts.d);
    di = MHD_get_daemon_info(ts.d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(di);
    ts.port = di->port;
    assert_true(ts.port > 0);
}

static void ts_stop(void)
{
    MHD_stop_daemon(ts.d);
    ts.d = NULL;
    ts.conn_timeout = 0;
    ts.tls_prio = NULL;
    pthread_mutex_destroy(&ts.lock);
}

/* ---- the test PKI ---------------------------------------------------- */

static int tpki_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v3, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Returns a certificate for |key| named CN=|cn| by |issuer| (self-signed
 * when NULL) with subjectAltName |san| (or none). */
static X509 *tpki_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *ikey, int ca, const char *san)
{
    static long serial = 1;
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(c);
    assert_non_null(name);
    assert_true(X509_set_version(c, 2));
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
    assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                           (const unsigned char *)cn, -1,
                                           -1, 0));
    assert_true(X509_set_subject_name(c, name));
    assert_true(X509_set_issuer_name(c, issuer != NULL
                                        ? X509_get_subject_name(issuer)
                                        : name));
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    assert_true(X509_set_pubkey(c, key));
    assert_true(tpki_ext(c, issuer, NID_basic_constraints,
                         ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
    assert_true(tpki_ext(c, issuer, NID_key_usage,
                         ca ? "critical,keyCertSign,cRLSign"
                            : "critical,digitalSignature"));
    assert_true(tpki_ext(c, issuer, NID_subject_key_identifier, "hash"));
    if (issuer != NULL)
        assert_true(tpki_ext(c, issuer, NID_authority_key_identifier,
                             "keyid"));
    if (san != NULL)
        assert_true(tpki_ext(c, issuer, NID_subject_alt_name, san));
    assert_true(X509_sign(c, issuer != NULL ? ikey : key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return c;
}

static char *tpki_pem_cert(X509 *c)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *s;
    long n;

    assert_true(PEM_write_bio_X509(b, c));
    n = BIO_get_mem_data(b, &p);
    s = calloc(1, (size_t)n + 1);
    memcpy(s, p, (size_t)n);
    BIO_free(b);
    return s;
}

static char *tpki_pem_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *s;
    long n;

    assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
    n = BIO_get_mem_data(b, &p);
    s = calloc(1, (size_t)n + 1);
    memcpy(s, p, (size_t)n);
    BIO_free(b);
    return s;
}

static void tpki_write(char *path, size_t len, const char *name,
                       const char *a, const char *b, mode_t mode)
{
    FILE *f;

    snprintf(path, len, "%s/%s", pki.dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(a, f);
    if (b != NULL)
        fputs(b, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int tpki_setup(void **state)
{
    EVP_PKEY *cak = cmp_testpki_key("P-256"), *ok = cmp_testpki_key("P-256");
    EVP_PKEY *sk = cmp_testpki_key("P-256"), *ck = cmp_testpki_key("P-256");
    X509 *ca, *other, *srv, *cli;
    char *other_pem, *cli_pem, *cli_key;

    (void)state;
    pki.dir = testutil_mkdtemp("upclient");
    assert_non_null(pki.dir);
    ca = tpki_cert(cak, "upclient test CA", NULL, NULL, 1, NULL);
    other = tpki_cert(ok, "upclient other CA", NULL, NULL, 1, NULL);
    srv = tpki_cert(sk, "127.0.0.1", ca, cak, 0,
                    "IP:127.0.0.1,DNS:localhost");
    cli = tpki_cert(ck, "upclient RA", ca, cak, 0, NULL);
    pki.ca_cert = tpki_pem_cert(ca);
    pki.srv_cert = tpki_pem_cert(srv);
    pki.srv_key = tpki_pem_key(sk);
    other_pem = tpki_pem_cert(other);
    cli_pem = tpki_pem_cert(cli);
    cli_key = tpki_pem_key(ck);
    tpki_write(pki.ca_file, sizeof(pki.ca_file), "ca.pem", pki.ca_cert, NULL,
               0644);
    tpki_write(pki.other_ca_file, sizeof(pki.other_ca_file), "other.pem",
               other_pem, NULL, 0644);
    tpki_write(pki.cli_cert_file, sizeof(pki.cli_cert_file), "cli.pem",
               cli_pem, NULL, 0644);
    tpki_write(pki.cli_key_file, sizeof(pki.cli_key_file), "cli.key",
               cli_key, NULL, 0600);
    tpki_write(pki.cli_both_file, sizeof(pki.cli_both_file), "cli-both.pem",
               cli_pem, cli_key, 0600);
    free(other_pem);
    free(cli_pem);
    OPENSSL_cleanse(cli_key, strlen(cli_key));
    free(cli_key);
    X509_free(ca);
    X509_free(other);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ok);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    return 0;
}

static int tpki_teardown(void **state)
{
    char cmd[600];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", pki.dir);
    free(pki.dir);
    free(pki.ca_cert);
    free(pki.srv_cert);
    OPENSSL_cleanse(pki.srv_key, strlen(pki.srv_key));
    free(pki.srv_key);
    return 0;
}

/* ---- helpers --------------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A client for the test server at |path| (http or https). */
static UPCLIENT *client_new(const char *scheme, struct upclient_conf *c)
{
    static char url[128];
    char err[256];
    UPCLIENT *uc;

    snprintf(url, sizeof(url), "%s://127.0.0.1:%u/cmp", scheme,
             (unsigned)ts.port);
    c->url = url;
    uc = upclient_new(c, err, sizeof(err));
    if (uc == NULL)
        fprintf(stderr, "upclient_new: %s\n", err);
    return uc;
}

/* Posts |n| bytes of a pattern and returns the result; checks an echo on
 * UPCLIENT_OK. */
static enum upclient_rc post_once(UPCLIENT *uc, size_t n, long *status,
                                  char *err, size_t errlen)
{
    unsigned char *req = malloc(n), *rsp = NULL;
    size_t rsp_len = 0, i;
    enum upclient_rc rc;

    assert_non_null(req);
    for (i = 0; i < n; i++)
        req[i] = (unsigned char)(i * 7 + 1);
    rc = upclient_post(uc, req, n, &rsp, &rsp_len, status, err, errlen);
    if (rc == UPCLIENT_OK && ts.big == 0 && !ts.empty) {
        assert_int_equal(rsp_len, n);
        assert_memory_equal(rsp, req, n);
    }
    if (rc != UPCLIENT_OK) {
        assert_null(rsp);
        assert_int_equal(rsp_len, 0);
    }
    OPENSSL_free(rsp);
    free(req);
    return rc;
}

/* Returns the value of the metrics line starting with |prefix| or -1. */
static long long metric(const char *prefix)
{
    static char buf[65536];
    size_t n = 0;
    const char *p;

    buf[0] = '\0';
    assert_int_equal(upclient_metrics_append(buf, sizeof(buf), &n), 1);
    assert_int_equal(strlen(buf), n);
    for (p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            return strtoll(p + strlen(prefix), NULL, 10);
    return -1;
}

/* ---- tests ----------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    struct upclient_conf c = { .metrics_label = "rt" };
    UPCLIENT *uc;
    long status = 0;
    char err[256];

    (void)state;
    ts_start(0, 0);
    assert_non_null(uc = client_new("http", &c));
    assert_int_equal(post_once(uc, 300, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(status, 200);
    assert_string_equal(ts.req_method, "POST");
    assert_string_equal(ts.req_ctype, "application/pkixcmp");
    assert_string_equal(ts.req_accept, "application/pkixcmp");
    assert_int_equal(ts.req_expect, 0);
    /* a body large enough (over 1 MiB) that curl would otherwise send
     * Expect: 100-continue */
    upclient_free(uc);
    c.max_response = 2 * 1024 * 1024;
    assert_non_null(uc = client_new("http", &c));
    assert_int_equal(post_once(uc, 1100000, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(ts.req_expect, 0);
    /* a CMP error comes with 4xx/5xx and a body: still relayed */
    ts.status = 500;
    assert_int_equal(post_once(uc, 100, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(status, 500);
    /* content type parameters and case do not matter */
    ts.status = 200;
    ts.ctype = "Application/PKIXCMP; charset=binary";
    assert_int_equal(post_once(uc, 100, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(metric("cmpca_upstream_requests_total{alias=\"rt\"} "), 3);
    upclient_free(uc);
    ts_stop();
}

static void test_keepalive(void **state)
{
    struct upclient_conf c = { .metrics_label = "ka" };
    UPCLIENT *uc;
    long status;
    char err[256];
    int i;

    (void)state;
    ts_start(0, 0);
    assert_non_null(uc = client_new("http", &c));
    for (i = 0; i < 10; i++)
        assert_int_equal(post_once(uc, 200 + (size_t)i, &status, err,
                                   sizeof(err)), UPCLIENT_OK);
    assert_int_equal(atomic_load(&ts.reqs), 10);
    assert_int_equal(atomic_load(&ts.conns), 1);
    /* a refusal without a CMP body does not cost the connection */
    ts.ctype = "text/plain";
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    ts.ctype = "application/pkixcmp";
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(atomic_load(&ts.conns), 1);
    upclient_free(uc);
    ts_stop();
}

static void test_timeout(void **state)
{
    struct upclient_conf c = { .metrics_label = "slow", .timeout_ms = 300,
                               .retries = 2 };
    UPCLIENT *uc;
    long status;
    char err[256];
    double t0, t;

    (void)state;
    ts_start(0, 0);
    ts.sleep_ms = 1500;
    assert_non_null(uc = client_new("http", &c));
    t0 = now_s();
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_TIMEOUT);
    t = now_s() - t0;
    /* no answer began: 1 + 2 attempts of 300 ms each */
    assert_true(t >= 0.89);
    assert_true(t < 1.45);
    assert_non_null(strstr(err, "timeout"));
    assert_int_equal(atomic_load(&ts.conns), 3);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"slow\","
                            "kind=\"timeout\"} "), 1);
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"slow\"} "),
                     2);
    /* the handle stays usable */
    ts.sleep_ms = 0;
    usleep(1600 * 1000);
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    /* an answer that began (status line and headers) and then stalls is
     * not sent again */
    atomic_store(&ts.conns, 0);
    ts.big = 2000;
    ts.chunked = 1;
    ts.stall_body = 1;
    t0 = now_s();
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_TIMEOUT);
    assert_true(now_s() - t0 < 0.6);
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"slow\"} "),
                     2);
    usleep(1200 * 1000);
    upclient_free(uc);
    ts_stop();
}

static void test_connect_timeout(void **state)
{
    struct upclient_conf c = { .metrics_label = "ctimeout",
                               .connect_timeout_ms = 300, .timeout_ms = 5000,
                               .retries = 2 };
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd, fill[4], i;
    char url[64], err[256];
    unsigned char *rsp = NULL;
    size_t rsp_len;
    long status;
    UPCLIENT *uc;
    double t0;

    (void)state;
    /* a listener that never accepts, its queue full: SYNs are dropped */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 0), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    for (i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(fill[i], (struct sockaddr *)&sa, sizeof(sa)) != 0)
            assert_int_equal(errno, EINPROGRESS);
    }
    usleep(100 * 1000);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/",
             (unsigned)ntohs(sa.sin_port));
    c.url = url;
    assert_non_null(uc = upclient_new(&c, err, sizeof(err)));
    t0 = now_s();
    assert_int_equal(upclient_post(uc, (const unsigned char *)"abc", 3, &rsp,
                                   &rsp_len, &status, err, sizeof(err)),
                     UPCLIENT_TIMEOUT);
    /* bounded by the connect timeout, 1 + 2 attempts */
    assert_true(now_s() - t0 >= 0.89);
    assert_true(now_s() - t0 < 2.0);
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"ctimeout\"} "),
                     2);
    upclient_free(uc);
    for (i = 0; i < 4; i++)
        close(fill[i]);
    close(fd);
}

static void test_refused(void **state)
{
    struct upclient_conf c = { .metrics_label = "refused", .retries = 2 };
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char url[64], err[256];
    unsigned char *rsp = (unsigned char *)"x";
    size_t rsp_len = 1;
    long status = 7;
    UPCLIENT *uc;
    int fd;

    (void)state;
    /* a port that was free a moment ago and has no listener */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/",
             (unsigned)ntohs(sa.sin_port));
    c.url = url;
    assert_non_null(uc = upclient_new(&c, err, sizeof(err)));
    assert_int_equal(upclient_post(uc, (const unsigned char *)"abc", 3, &rsp,
                                   &rsp_len, &status, err, sizeof(err)),
                     UPCLIENT_CONNECT);
    assert_null(rsp);
    assert_int_equal(rsp_len, 0);
    assert_int_equal(status, 0);
    assert_true(err[0] != '\0');
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"refused\"} "),
                     2);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"refused\","
                            "kind=\"connect\"} "), 1);
    assert_int_equal(metric("cmpca_upstream_requests_total{alias=\"refused\"} "),
                     1);
    upclient_free(uc);
    /* gone from the metrics with the client */
    assert_int_equal(metric("cmpca_upstream_requests_total{alias=\"refused\"} "),
                     -1);
}

/* A TCP server that reads a request and closes without answering (with a
 * reset when |rst|), |n| times. */
struct rawsrv {
    int fd, n, rst;
    unsigned short port;
    atomic_int accepted;
    pthread_t t;
};

static void *rawsrv_run(void *arg)
{
    struct rawsrv *r = arg;
    struct linger lg = { 1, 0 };
    char buf[4096];
    int i, c;

    for (i = 0; i < r->n; i++) {
        if ((c = accept(r->fd, NULL, NULL)) < 0)
            break;
        atomic_fetch_add(&r->accepted, 1);
        if (read(c, buf, sizeof(buf)) < 0)
            fprintf(stderr, "rawsrv: read failed\n");
        if (r->rst)
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c);
    }
    return NULL;
}

static void rawsrv_start(struct rawsrv *r, int n, int rst)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    memset(r, 0, sizeof(*r));
    r->n = n;
    r->rst = rst;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(r->fd, 16), 0);
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&sa, &sl), 0);
    r->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&r->t, NULL, rawsrv_run, r), 0);
}

static void rawsrv_stop(struct rawsrv *r)
{
    shutdown(r->fd, SHUT_RDWR);
    pthread_join(r->t, NULL);
    close(r->fd);
}

static void test_reset(void **state)
{
    struct upclient_conf c = { .metrics_label = "reset", .retries = 2 };
    struct rawsrv r;
    char url[64], err[256];
    unsigned char *rsp = NULL;
    size_t rsp_len;
    long status;
    UPCLIENT *uc;
    int rst;

    (void)state;
    for (rst = 0; rst < 2; rst++) {
        rawsrv_start(&r, 3, rst);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)r.port);
        c.url = url;
        assert_non_null(uc = upclient_new(&c, err, sizeof(err)));
        /* closed (or reset) before any answer: tried 1 + 2 times */
        assert_int_equal(upclient_post(uc, (const unsigned char *)"abc", 3,
                                       &rsp, &rsp_len, &status, err,
                                       sizeof(err)), UPCLIENT_CONNECT);
        assert_null(rsp);
        rawsrv_stop(&r);
        assert_int_equal(atomic_load(&r.accepted), 3);
        assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"reset\"} "),
                         2);
        upclient_free(uc);
    }
}

static void test_idle_closed(void **state)
{
    struct upclient_conf c = { .metrics_label = "idle" };
    UPCLIENT *uc;
    long status;
    char err[256];

    (void)state;
    ts.conn_timeout = 1;
    ts_start(0, 0);
    assert_non_null(uc = client_new("http", &c));
    assert_int_equal(post_once(uc, 100, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    /* the server closes the idle pooled connection; the next post opens
     * a new one without an error */
    usleep(2500 * 1000);
    assert_int_equal(post_once(uc, 100, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(atomic_load(&ts.conns), 2);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"idle\","
                            "kind=\"connect\"} "), 0);
    upclient_free(uc);
    ts_stop();
}

static void test_upstream_down(void **state)
{
    struct upclient_conf c = { .metrics_label = "down", .retries = 1,
                               .connect_timeout_ms = 1000 };
    UPCLIENT *uc;
    long status = 0;
    char err[256];
    double t0;

    (void)state;
    ts_start(0, 0);
    assert_non_null(uc = client_new("http", &c));
    assert_int_equal(post_once(uc, 100, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(status, 200);
    /* the pooled handle answered before; now nobody listens */
    ts_stop();
    t0 = now_s();
    assert_int_equal(post_once(uc, 100, &status, err, sizeof(err)),
                     UPCLIENT_CONNECT);
    assert_true(now_s() - t0 < 0.9);
    assert_int_equal(status, 0);
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"down\"} "),
                     1);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"down\","
                            "kind=\"connect\"} "), 1);
    upclient_free(uc);
}

static void test_too_big(void **state)
{
    struct upclient_conf c = { .metrics_label = "big",
                               .max_response = 4000 };
    UPCLIENT *uc;
    long status;
    char err[256];

    (void)state;
    ts_start(0, 0);
    assert_non_null(uc = client_new("http", &c));
    ts.big = 4000;                      /* exactly the limit is fine */
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    ts.big = 4001;                      /* with Content-Length */
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_TOO_BIG);
    ts.big = 100000;
    ts.chunked = 1;                     /* without: cut while receiving */
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_TOO_BIG);
    ts.big = 3000;                      /* chunked within the limit */
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"big\","
                            "kind=\"too_big\"} "), 2);
    upclient_free(uc);
    ts_stop();
}

static void test_not_cmp(void **state)
{
    struct upclient_conf c = { .metrics_label = "notcmp", .retries = 2 };
    UPCLIENT *uc;
    long status;
    char err[256];

    (void)state;
    ts_start(0, 0);
    assert_non_null(uc = client_new("http", &c));
    ts.ctype = "text/html";
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    assert_int_equal(status, 200);
    assert_non_null(strstr(err, "text/html"));
    ts.ctype = "text/\x1b[31mred";      /* no terminal escapes in the log */
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    assert_null(strchr(err, '\x1b'));
    assert_non_null(strstr(err, "text/?[31mred"));
    ts.ctype = "application/pkixcmpx";
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    ts.ctype = "application/pkixcmp";
    ts.empty = 1;
    ts.status = 503;
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    assert_int_equal(status, 503);
    /* redirects are not followed */
    ts.empty = 0;
    ts.status = 302;
    ts.ctype = "text/plain";
    assert_int_equal(post_once(uc, 10, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    assert_int_equal(status, 302);
    /* an HTTP answer is never retried */
    assert_int_equal(atomic_load(&ts.reqs), 5);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"notcmp\","
                            "kind=\"http\"} "), 5);
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"notcmp\"} "),
                     0);
    upclient_free(uc);
    ts_stop();
}

static void test_conf_refused(void **state)
{
    struct upclient_conf c = { 0 };
    char err[256];

    (void)state;
    c.url = "https://127.0.0.1:1/cmp";
    assert_null(upclient_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "CA file"));
    c.url = "ftp://127.0.0.1/cmp";
    assert_null(upclient_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "scheme"));
    c.url = "file:///etc/passwd";
    assert_null(upclient_new(&c, err, sizeof(err)));
    c.url = "not a url";
    assert_null(upclient_new(&c, err, sizeof(err)));
    c.url = NULL;
    assert_null(upclient_new(&c, err, sizeof(err)));
    c.url = "https://127.0.0.1:1/cmp";
    c.tls_ca_file = "/nonexistent/ca.pem";
    assert_null(upclient_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    /* a client key readable by others is refused */
    c.tls_ca_file = pki.ca_file;
    c.tls_cert_file = pki.cli_cert_file;
    c.tls_key_file = pki.ca_file;
    assert_null(upclient_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "0600"));
    /* a certificate file without a key, and no key file */
    c.tls_key_file = NULL;
    assert_null(upclient_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "holds no key"));
    /* a key without a certificate */
    c.tls_key_file = pki.cli_key_file;
    c.tls_cert_file = NULL;
    assert_null(upclient_new(&c, err, sizeof(err)));
    /* over http the TLS files are not used */
    c.url = "http://127.0.0.1:1/cmp";
    c.tls_key_file = NULL;
    c.tls_ca_file = "/nonexistent/ca.pem";
    upclient_free(upclient_new(&c, err, sizeof(err)));
    assert_string_equal(err, "");
    c.retries = -1;
    c.tls_key_file = NULL;
    assert_null(upclient_new(&c, err, sizeof(err)));
    upclient_free(NULL);
}

static void test_tls(void **state)
{
    struct upclient_conf c = { .metrics_label = "tls" };
    UPCLIENT *uc;
    long status;
    char err[256];
    int i;

    (void)state;
    ts_start(1, 0);
    c.tls_ca_file = pki.ca_file;
    assert_non_null(uc = client_new("https", &c));
    for (i = 0; i < 3; i++)
        assert_int_equal(post_once(uc, 500, &status, err, sizeof(err)),
                         UPCLIENT_OK);
    assert_int_equal(atomic_load(&ts.conns), 1);
    upclient_free(uc);
    /* a server the CA file does not vouch for */
    c.tls_ca_file = pki.other_ca_file;
    c.retries = 2;
    assert_non_null(uc = client_new("https", &c));
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_CONNECT);
    assert_int_equal(atomic_load(&ts.reqs), 3);
    assert_int_equal(metric("cmpca_upstream_retries_total{alias=\"tls\"} "),
                     0);
    upclient_free(uc);
    /* plain http to a TLS port: no answer */
    c.tls_ca_file = NULL;
    c.retries = 0;
    assert_non_null(uc = client_new("http", &c));
    assert_int_not_equal(post_once(uc, 50, &status, err, sizeof(err)),
                         UPCLIENT_OK);
    upclient_free(uc);
    ts_stop();
}

static void test_tls_hostname(void **state)
{
    struct upclient_conf c = { .metrics_label = "tlsname" };
    UPCLIENT *uc;
    char url[128], err[256];
    unsigned char *rsp = NULL;
    size_t rsp_len;
    long status;

    (void)state;
    ts_start(1, 0);
    c.tls_ca_file = pki.ca_file;
    /* the certificate names 127.0.0.1 and localhost, not 127.0.0.2 */
    snprintf(url, sizeof(url), "https://127.0.0.2:%u/cmp", (unsigned)ts.port);
    c.url = url;
    assert_non_null(uc = upclient_new(&c, err, sizeof(err)));
    assert_int_equal(upclient_post(uc, (const unsigned char *)"abc", 3, &rsp,
                                   &rsp_len, &status, err, sizeof(err)),
                     UPCLIENT_CONNECT);
    upclient_free(uc);
    ts_stop();
}

static void test_tls_old_version(void **state)
{
    struct upclient_conf c = { .metrics_label = "tls11" };
    UPCLIENT *uc;
    long status;
    char err[256];

    (void)state;
    /* a server that speaks TLS 1.1 at most */
    ts.tls_prio = "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0";
    ts_start(1, 0);
    c.tls_ca_file = pki.ca_file;
    assert_non_null(uc = client_new("https", &c));
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_CONNECT);
    assert_int_equal(atomic_load(&ts.reqs), 0);
    upclient_free(uc);
    ts_stop();
    /* the same server with TLS 1.2 answers */
    ts.tls_prio = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
    ts_start(1, 0);
    assert_non_null(uc = client_new("https", &c));
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    upclient_free(uc);
    ts_stop();
}

static void test_tls_client_cert(void **state)
{
    struct upclient_conf c = { .metrics_label = "mtls" };
    UPCLIENT *uc;
    long status;
    char err[256];

    (void)state;
    ts_start(1, 1);
    ts.need_client = 1;
    c.tls_ca_file = pki.ca_file;
    /* without a client certificate the server refuses */
    assert_non_null(uc = client_new("https", &c));
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_HTTP);
    assert_int_equal(status, 403);
    upclient_free(uc);
    c.tls_cert_file = pki.cli_cert_file;
    c.tls_key_file = pki.cli_key_file;
    assert_non_null(uc = client_new("https", &c));
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    assert_int_equal(status, 200);
    upclient_free(uc);
    /* certificate and key in one file */
    c.tls_cert_file = pki.cli_both_file;
    c.tls_key_file = NULL;
    assert_non_null(uc = client_new("https", &c));
    assert_int_equal(post_once(uc, 50, &status, err, sizeof(err)),
                     UPCLIENT_OK);
    upclient_free(uc);
    ts_stop();
}

struct worker {
    UPCLIENT *uc;
    int n, ok;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    unsigned char req[256], *rsp;
    size_t rsp_len;
    long status;
    char err[256];
    int i;

    for (i = 0; i < w->n; i++) {
        memset(req, (int)(i & 0xff), sizeof(req));
        req[0] = (unsigned char)(uintptr_t)w;
        rsp = NULL;
        if (upclient_post(w->uc, req, sizeof(req), &rsp, &rsp_len, &status,
                          err, sizeof(err)) == UPCLIENT_OK
            && rsp_len == sizeof(req) && memcmp(rsp, req, rsp_len) == 0)
            w->ok++;
        OPENSSL_free(rsp);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct upclient_conf c = { .metrics_label = "conc", .max_conns = 4 };
    struct worker w[4];
    pthread_t t[4];
    char buf[8192];
    size_t n = 0;
    UPCLIENT *uc, *uc2, *uc3;
    char err[256];
    int i;

    (void)state;
    ts_start(1, 0);
    c.tls_ca_file = pki.ca_file;
    assert_non_null(uc = client_new("https", &c));
    for (i = 0; i < 4; i++) {
        w[i].uc = uc;
        w[i].n = 25;
        w[i].ok = 0;
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].ok, 25);
    }
    assert_int_equal(atomic_load(&ts.reqs), 100);
    /* at most 4 at once, and the pool keeps all 4 open */
    assert_true(atomic_load(&ts.conns) <= 4);
    assert_int_equal(metric("cmpca_upstream_requests_total{alias=\"conc\"} "),
                     100);
    assert_int_equal(metric("cmpca_upstream_seconds_count{alias=\"conc\"} "),
                     100);
    assert_int_equal(metric("cmpca_upstream_seconds_bucket{alias=\"conc\","
                            "le=\"+Inf\"} "), 100);
    assert_int_equal(metric("cmpca_upstream_errors_total{alias=\"conc\","
                            "kind=\"error\"} "), 0);
    /* two clients: one family header, a line each */
    c.metrics_label = "second one";
    assert_non_null(uc2 = client_new("https", &c));
    assert_int_equal(metric("cmpca_upstream_requests_total{alias=\"second_one\"} "),
                     0);
    assert_int_equal(upclient_metrics_append(buf, sizeof(buf), &n), 1);
    assert_non_null(strstr(buf, "# TYPE cmpca_upstream_requests_total counter\n"));
    assert_non_null(strstr(buf, "# TYPE cmpca_upstream_errors_total counter\n"));
    assert_non_null(strstr(buf, "# TYPE cmpca_upstream_seconds histogram\n"));
    assert_null(strstr(strstr(buf, "# TYPE cmpca_upstream_requests_total")
                       + 1, "# TYPE cmpca_upstream_requests_total"));
    /* two clients of one alias: one series, summed */
    c.metrics_label = "conc";
    assert_non_null(uc3 = client_new("https", &c));
    assert_int_equal(post_once(uc3, 10, NULL, err, sizeof(err)), UPCLIENT_OK);
    assert_int_equal(metric("cmpca_upstream_requests_total{alias=\"conc\"} "),
                     101);
    n = 0;
    assert_int_equal(upclient_metrics_append(buf, sizeof(buf), &n), 1);
    assert_null(strstr(strstr(buf, "cmpca_upstream_seconds_count{alias=\"conc\"}")
                       + 1, "cmpca_upstream_seconds_count{alias=\"conc\"}"));
    upclient_free(uc3);
    /* no room: nothing half written, 0 */
    n = 0;
    memset(buf, 'z', sizeof(buf));
    assert_int_equal(upclient_metrics_append(buf, 300, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(buf[0], '\0');
    upclient_free(uc2);
    upclient_free(uc);
    ts_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_idle_closed),
        cmocka_unit_test(test_upstream_down),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_not_cmp),
        cmocka_unit_test(test_conf_refused),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_tls_hostname),
        cmocka_unit_test(test_tls_old_version),
        cmocka_unit_test(test_tls_client_cert),
        cmocka_unit_test(test_concurrent),
    };

    return cmocka_run_group_tests(tests, tpki_setup, tpki_teardown);
}
