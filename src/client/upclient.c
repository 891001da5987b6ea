/*
 * The upstream CMP client over HTTP(S) with libcurl: a mutex-guarded free
 * list of easy handles (each keeps its keep-alive connection), TLS material
 * held in memory, bounded answers, and per-client metrics in a global
 * registry for GET /metrics.
 */
#include "client/upclient.h"

#include "util/metrics.h"
#include "util/secret.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define UPCLIENT_TLS_FILE_MAX (1024 * 1024)
#define UPCLIENT_LABEL_MAX 64
#define UPCLIENT_CTYPE "application/pkixcmp"

/* Error kinds of cmpca_upstream_errors_total, indexed by enum upclient_rc
 * minus one. */
static const char *const upclient_kinds[] = {
    "timeout", "connect", "http", "too_big", "error"
};
#define UPCLIENT_NKINDS (sizeof(upclient_kinds) / sizeof(upclient_kinds[0]))

/* Histogram upper bounds in seconds (as in util/metrics.c); the last
 * (+Inf) bucket is implicit. */
static const double upclient_le[] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
};
static const char *const upclient_le_txt[] = {
    "0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "+Inf"
};
#define UPCLIENT_NBUCKETS (sizeof(upclient_le) / sizeof(upclient_le[0]) + 1)

struct upclient {
    char *url;
    long connect_timeout_ms;
    long timeout_ms;
    int retries;
    size_t max_response;
    int max_conns;
    char label[UPCLIENT_LABEL_MAX + 1];
    /* TLS material, read at upclient_new (NULL data when absent) */
    char *ca;
    size_t ca_len;
    char *cert;
    size_t cert_len;
    char *key;
    size_t key_len;
    struct curl_slist *headers;
    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
    int share_lock_n;            /* initialised entries of share_lock */
    /* pool of idle easy handles */
    pthread_mutex_t lock;
    int lock_init;
    CURL **idle;
    int nidle;
    /* metrics */
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t retried;
    atomic_uint_fast64_t errors[UPCLIENT_NKINDS];
    atomic_uint_fast64_t bucket[UPCLIENT_NBUCKETS]; /* not cumulative */
    atomic_uint_fast64_t sum_ns;
    /* registry of live clients */
    struct upclient *prev, *next;
};

/* The answer being received. */
struct upclient_body {
    unsigned char *data;
    size_t len, cap, max;
    int too_big;
};

static pthread_once_t upclient_once = PTHREAD_ONCE_INIT;
static CURLcode upclient_global_rc = CURLE_FAILED_INIT;
static pthread_mutex_t upclient_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upclient *upclient_reg;

static void upclient_global_init(void)
{
    upclient_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *upclient_rc_name(enum upclient_rc rc)
{
    switch (rc) {
    case UPCLIENT_OK:
        return "ok";
    case UPCLIENT_TIMEOUT:
        return "timeout";
    case UPCLIENT_CONNECT:
        return "connect";
    case UPCLIENT_HTTP:
        return "http";
    case UPCLIENT_TOO_BIG:
        return "too_big";
    case UPCLIENT_ERROR:
        return "error";
    }
    return "error";
}

/* CURLSH lock callbacks: one mutex per kind of shared data. */
static void upclient_share_lock(CURL *h, curl_lock_data data,
                                curl_lock_access access, void *arg)
{
    struct upclient *uc = arg;

    (void)h;
    (void)access;
    if ((int)data >= 0 && (int)data < uc->share_lock_n)
        pthread_mutex_lock(&uc->share_lock[data]);
}

static void upclient_share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    struct upclient *uc = arg;

    (void)h;
    if ((int)data >= 0 && (int)data < uc->share_lock_n)
        pthread_mutex_unlock(&uc->share_lock[data]);
}

/* Reads one TLS file into *buf (*len bytes). A private key must be a
 * regular file of mode 0600 or stricter. Returns 1, or 0 with |err| set. */
static int upclient_read_file(const char *what, const char *path,
                              int private_key, char **buf, size_t *len,
                              char *err, size_t errlen)
{
    struct stat sb;

    if (private_key) {
        if (stat(path, &sb) != 0) {
            snprintf(err, errlen, "upstream %s %s: %s", what, path,
                     strerror(errno));
            return 0;
        }
        if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
            snprintf(err, errlen, "upstream %s %s: the key file must be a "
                     "regular file of mode 0600 (it is %04o)", what, path,
                     (unsigned)(sb.st_mode & 07777));
            return 0;
        }
    }
    if (!secret_file_read(path, UPCLIENT_TLS_FILE_MAX, buf, len)) {
        snprintf(err, errlen, "upstream %s %s: %s", what, path,
                 errno == EFBIG ? "file too large" : strerror(errno));
        return 0;
    }
    if (*len == 0) {
        snprintf(err, errlen, "upstream %s %s is empty", what, path);
        secret_free(*buf, *len);
        *buf = NULL;
        return 0;
    }
    return 1;
}

/* Returns 1 if |url| is http:// or https:// with a host, setting *https. */
static int upclient_url_ok(const char *url, int *https, char *err,
                           size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;

    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        goto end;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
        || host[0] == '\0') {
        snprintf(err, errlen, "upstream url is not a valid URL");
        goto end;
    }
    if (strcasecmp(scheme, "http") == 0) {
        *https = 0;
    } else if (strcasecmp(scheme, "https") == 0) {
        *https = 1;
    } else {
        snprintf(err, errlen, "upstream url: scheme %.16s is not http or "
                 "https", scheme);
        goto end;
    }
    ok = 1;
 end:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Copies |s| as a metrics label value ([A-Za-z0-9._-], others as '_'). */
static void upclient_set_label(struct upclient *uc, const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        s = "other";
    for (i = 0; s[i] != '\0' && i < UPCLIENT_LABEL_MAX; i++) {
        char c = s[i];

        uc->label[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                        || (c >= '0' && c <= '9') || c == '.' || c == '_'
                        || c == '-') ? c : '_';
    }
    uc->label[i] = '\0';
}

UPCLIENT *upclient_new(const struct upclient_conf *conf, char *err,
                       size_t errlen)
{
    struct upclient *uc = NULL;
    int https = 0, i;
    struct curl_slist *h;

    if (errlen > 0)
        err[0] = '\0';
    pthread_once(&upclient_once, upclient_global_init);
    if (upclient_global_rc != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl: %s",
                 curl_easy_strerror(upclient_global_rc));
        return NULL;
    }
    if (conf == NULL || conf->url == NULL) {
        snprintf(err, errlen, "upstream url missing");
        return NULL;
    }
    if (!upclient_url_ok(conf->url, &https, err, errlen))
        return NULL;
    if (https && (conf->tls_ca_file == NULL || conf->tls_ca_file[0] == '\0')) {
        snprintf(err, errlen, "upstream url is https but no CA file is "
                 "configured to verify the server");
        return NULL;
    }
    if (conf->tls_key_file != NULL && conf->tls_cert_file == NULL) {
        snprintf(err, errlen, "upstream client key without a client "
                 "certificate");
        return NULL;
    }
    if (conf->connect_timeout_ms < 0 || conf->timeout_ms < 0
        || conf->retries < 0 || conf->max_conns < 0) {
        snprintf(err, errlen, "upstream limits must not be negative");
        return NULL;
    }
    if ((uc = calloc(1, sizeof(*uc))) == NULL)
        goto fail;
    uc->connect_timeout_ms = conf->connect_timeout_ms > 0
                             ? conf->connect_timeout_ms : 5000;
    uc->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 30000;
    uc->retries = conf->retries;
    uc->max_response = conf->max_response > 0 ? conf->max_response
                                               : 1024 * 1024;
    uc->max_conns = conf->max_conns > 0 ? conf->max_conns : 8;
    upclient_set_label(uc, conf->metrics_label);
    if ((uc->url = strdup(conf->url)) == NULL)
        goto fail;
    if (https) {
        if (!upclient_read_file("CA file", conf->tls_ca_file, 0, &uc->ca,
                                &uc->ca_len, err, errlen))
            goto fail;
        if (conf->tls_cert_file != NULL
            && !upclient_read_file("client certificate", conf->tls_cert_file,
                                   0, &uc->cert, &uc->cert_len, err, errlen))
            goto fail;
        /* without a key file the key is in the certificate file */
        if (conf->tls_cert_file != NULL && conf->tls_key_file == NULL
            && strstr(uc->cert, "PRIVATE KEY-----") == NULL) {
            snprintf(err, errlen, "upstream client certificate %s holds no "
                     "key and no key file is configured",
                     conf->tls_cert_file);
            goto fail;
        }
        if (conf->tls_cert_file != NULL
            && !upclient_read_file("client key",
                                   conf->tls_key_file != NULL
                                   ? conf->tls_key_file : conf->tls_cert_file,
                                   1, &uc->key, &uc->key_len, err, errlen))
            goto fail;
    }
    if ((h = curl_slist_append(NULL, "Content-Type: " UPCLIENT_CTYPE)) == NULL)
        goto fail;
    uc->headers = h;
    /* appending keeps the head; no Expect: 100-continue round trip */
    if (curl_slist_append(uc->headers, "Accept: " UPCLIENT_CTYPE) == NULL
        || curl_slist_append(uc->headers, "Expect:") == NULL)
        goto fail;
    if ((uc->idle = calloc((size_t)uc->max_conns, sizeof(*uc->idle))) == NULL)
        goto fail;
    if (pthread_mutex_init(&uc->lock, NULL) != 0)
        goto fail;
    uc->lock_init = 1;
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        if (pthread_mutex_init(&uc->share_lock[i], NULL) != 0)
            goto fail;
        uc->share_lock_n = i + 1;
    }
    /* DNS answers and TLS sessions are shared by the pooled handles */
    if ((uc->share = curl_share_init()) == NULL
        || curl_share_setopt(uc->share, CURLSHOPT_LOCKFUNC,
                             upclient_share_lock) != CURLSHE_OK
        || curl_share_setopt(uc->share, CURLSHOPT_UNLOCKFUNC,
                             upclient_share_unlock) != CURLSHE_OK
        || curl_share_setopt(uc->share, CURLSHOPT_USERDATA, uc) != CURLSHE_OK
        || curl_share_setopt(uc->share, CURLSHOPT_SHARE,
                             CURL_LOCK_DATA_DNS) != CURLSHE_OK
        || curl_share_setopt(uc->share, CURLSHOPT_SHARE,
                             CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        goto fail;
    pthread_mutex_lock(&upclient_reg_lock);
    uc->next = upclient_reg;
    if (upclient_reg != NULL)
        upclient_reg->prev = uc;
    upclient_reg = uc;
    pthread_mutex_unlock(&upclient_reg_lock);
    return uc;
 fail:
    if (errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    upclient_free(uc);
    return NULL;
}

void upclient_free(UPCLIENT *uc)
{
    int i;

    if (uc == NULL)
        return;
    pthread_mutex_lock(&upclient_reg_lock);
    if (uc->prev != NULL)
        uc->prev->next = uc->next;
    else if (upclient_reg == uc)
        upclient_reg = uc->next;
    if (uc->next != NULL)
        uc->next->prev = uc->prev;
    pthread_mutex_unlock(&upclient_reg_lock);
    for (i = 0; uc->idle != NULL && i < uc->nidle; i++)
        curl_easy_cleanup(uc->idle[i]);
    free(uc->idle);
    if (uc->share != NULL)
        curl_share_cleanup(uc->share);
    for (i = 0; i < uc->share_lock_n; i++)
        pthread_mutex_destroy(&uc->share_lock[i]);
    if (uc->lock_init)
        pthread_mutex_destroy(&uc->lock);
    curl_slist_free_all(uc->headers);
    secret_free(uc->ca, uc->ca_len);
    secret_free(uc->cert, uc->cert_len);
    secret_free(uc->key, uc->key_len);
    free(uc->url);
    free(uc);
}

/* libcurl's write callback: appends to the body up to its maximum. */
static size_t upclient_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct upclient_body *b = arg;
    size_t n = size * nmemb, ncap;
    unsigned char *d;

    if (n == 0)
        return 0;
    if (n > b->max - b->len) {
        b->too_big = 1;
        return 0;                       /* aborts the transfer */
    }
    if (b->len + n > b->cap) {
        ncap = b->cap > 0 ? b->cap : 4096;
        while (ncap < b->len + n)
            ncap = ncap > b->max / 2 ? b->max : ncap * 2;
        if ((d = OPENSSL_realloc(b->data, ncap)) == NULL)
            return 0;
        b->data = d;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return n;
}

/* Sets the options every request of |uc| shares on a new handle. Returns
 * 1 or 0. */
static int upclient_handle_setup(struct upclient *uc, CURL *c)
{
    struct curl_blob blob;

#define UPCLIENT_OPT(o, v)                                               \
    do {                                                                 \
        if (curl_easy_setopt(c, o, v) != CURLE_OK)                       \
            return 0;                                                    \
    } while (0)

    UPCLIENT_OPT(CURLOPT_URL, uc->url);
    UPCLIENT_OPT(CURLOPT_PROTOCOLS_STR, "http,https");
    UPCLIENT_OPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    UPCLIENT_OPT(CURLOPT_FOLLOWLOCATION, 0L);
    UPCLIENT_OPT(CURLOPT_NOSIGNAL, 1L);
    UPCLIENT_OPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    UPCLIENT_OPT(CURLOPT_POST, 1L);
    UPCLIENT_OPT(CURLOPT_HTTPHEADER, uc->headers);
    UPCLIENT_OPT(CURLOPT_USERAGENT, "cmpca/" CMPCA_VERSION);
    UPCLIENT_OPT(CURLOPT_PROXY, "");    /* no proxy from the environment */
    UPCLIENT_OPT(CURLOPT_CONNECTTIMEOUT_MS, uc->connect_timeout_ms);
    UPCLIENT_OPT(CURLOPT_TIMEOUT_MS, uc->timeout_ms);
    UPCLIENT_OPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)uc->max_response);
    UPCLIENT_OPT(CURLOPT_MAXCONNECTS, 1L);
    UPCLIENT_OPT(CURLOPT_TCP_NODELAY, 1L);
    UPCLIENT_OPT(CURLOPT_SHARE, uc->share);
    UPCLIENT_OPT(CURLOPT_WRITEFUNCTION, upclient_write);
    UPCLIENT_OPT(CURLOPT_SSL_VERIFYPEER, 1L);
    UPCLIENT_OPT(CURLOPT_SSL_VERIFYHOST, 2L);
    UPCLIENT_OPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (uc->ca != NULL) {
        /* only the configured CAs: no system bundle or directory */
        UPCLIENT_OPT(CURLOPT_CAINFO, (char *)NULL);
        UPCLIENT_OPT(CURLOPT_CAPATH, (char *)NULL);
        blob.data = uc->ca;
        blob.len = uc->ca_len;
        blob.flags = CURL_BLOB_NOCOPY;
        UPCLIENT_OPT(CURLOPT_CAINFO_BLOB, &blob);
    }
    if (uc->cert != NULL) {
        blob.data = uc->cert;
        blob.len = uc->cert_len;
        blob.flags = CURL_BLOB_NOCOPY;
        UPCLIENT_OPT(CURLOPT_SSLCERTTYPE, "PEM");
        UPCLIENT_OPT(CURLOPT_SSLCERT_BLOB, &blob);
        blob.data = uc->key;
        blob.len = uc->key_len;
        blob.flags = CURL_BLOB_NOCOPY;
        UPCLIENT_OPT(CURLOPT_SSLKEYTYPE, "PEM");
        UPCLIENT_OPT(CURLOPT_SSLKEY_BLOB, &blob);
    }
#undef UPCLIENT_OPT
    return 1;
}

/* Takes an idle handle from the pool or makes a new one. NULL on failure. */
static CURL *upclient_handle_get(struct upclient *uc)
{
    CURL *c = NULL;

    pthread_mutex_lock(&uc->lock);
    if (uc->nidle > 0)
        c = uc->idle[--uc->nidle];
    pthread_mutex_unlock(&uc->lock);
    if (c != NULL)
        return c;
    if ((c = curl_easy_init()) == NULL)
        return NULL;
    if (!upclient_handle_setup(uc, c)) {
        curl_easy_cleanup(c);
        return NULL;
    }
    return c;
}

/* Returns |c| to the pool (its connection stays open), or closes it when
 * the pool is full. */
static void upclient_handle_put(struct upclient *uc, CURL *c)
{
    if (c == NULL)
        return;
    /* no pointers into the finished request stay behind */
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    pthread_mutex_lock(&uc->lock);
    if (uc->nidle < uc->max_conns) {
        uc->idle[uc->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&uc->lock);
    if (c != NULL)
        curl_easy_cleanup(c);
}

/* Returns 1 if the Content-Type |ct| is application/pkixcmp (parameters
 * and case ignored). */
static int upclient_ctype_ok(const char *ct)
{
    size_t n = strlen(UPCLIENT_CTYPE);

    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, UPCLIENT_CTYPE, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Copies the network-supplied |s| into |out| (|outlen| bytes) with every
 * byte outside printable ASCII as '?', for error texts that get logged. */
static void upclient_printable(const char *s, char *out, size_t outlen)
{
    size_t i;

    if (outlen == 0)
        return;
    for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
}

/* Returns 1 for a transport failure that a new attempt may cure
 * (connection refused or reset, closed or timed out without an answer);
 * the caller makes sure no answer has begun. */
static int upclient_retryable(CURLcode res)
{
    return res == CURLE_COULDNT_CONNECT || res == CURLE_SEND_ERROR
           || res == CURLE_RECV_ERROR || res == CURLE_GOT_NOTHING
           || res == CURLE_OPERATION_TIMEDOUT;
}

/* Maps a failed transfer to a result code. */
static enum upclient_rc upclient_classify(CURLcode res, int too_big)
{
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        return UPCLIENT_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return UPCLIENT_TOO_BIG;
    case CURLE_WRITE_ERROR:
        return too_big ? UPCLIENT_TOO_BIG : UPCLIENT_ERROR;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return UPCLIENT_CONNECT;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_PARTIAL_FILE:
        return UPCLIENT_HTTP;
    default:
        return UPCLIENT_ERROR;
    }
}

/* Records one finished post in the metrics of |uc|. */
static void upclient_observe(struct upclient *uc, enum upclient_rc rc,
                             double seconds)
{
    unsigned b;
    uint64_t ns;

    atomic_fetch_add_explicit(&uc->requests, 1, memory_order_relaxed);
    if (rc != UPCLIENT_OK && (unsigned)rc - 1 < UPCLIENT_NKINDS)
        atomic_fetch_add_explicit(&uc->errors[rc - 1], 1,
                                  memory_order_relaxed);
    if (!(seconds >= 0))
        seconds = 0;
    for (b = 0; b < UPCLIENT_NBUCKETS - 1; b++)
        if (seconds <= upclient_le[b])
            break;
    atomic_fetch_add_explicit(&uc->bucket[b], 1, memory_order_relaxed);
    ns = seconds > 1e9 ? UINT64_C(1000000000) * 1000000000u
                       : (uint64_t)(seconds * 1e9 + 0.5);
    atomic_fetch_add_explicit(&uc->sum_ns, ns, memory_order_relaxed);
}

static double upclient_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum upclient_rc upclient_post(UPCLIENT *uc, const unsigned char *req,
                               size_t req_len, unsigned char **rsp,
                               size_t *rsp_len, long *http_status,
                               char *err, size_t errlen)
{
    enum upclient_rc rc = UPCLIENT_ERROR;
    struct upclient_body body;
    char cerr[CURL_ERROR_SIZE], ctbuf[65];
    double t0 = upclient_now();
    CURLcode res = CURLE_OK;
    CURL *c = NULL;
    char *ct = NULL;
    long status = 0;
    int attempt;

    memset(&body, 0, sizeof(body));
    if (rsp != NULL)
        *rsp = NULL;
    if (rsp_len != NULL)
        *rsp_len = 0;
    if (http_status != NULL)
        *http_status = 0;
    if (errlen > 0)
        err[0] = '\0';
    if (uc == NULL || req == NULL || req_len == 0 || rsp == NULL
        || rsp_len == NULL) {
        snprintf(err, errlen, "upstream post: bad arguments");
        return UPCLIENT_ERROR;
    }
    body.max = uc->max_response;
    if ((c = upclient_handle_get(uc)) == NULL) {
        snprintf(err, errlen, "upstream post: cannot make a curl handle");
        goto end;
    }
    for (attempt = 0; ; attempt++) {
        cerr[0] = '\0';
        body.len = 0;
        body.too_big = 0;
        if (curl_easy_setopt(c, CURLOPT_POSTFIELDS, req) != CURLE_OK
            || curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)req_len) != CURLE_OK
            || curl_easy_setopt(c, CURLOPT_WRITEDATA, &body) != CURLE_OK
            || curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr) != CURLE_OK) {
            snprintf(err, errlen, "upstream post: cannot set up the request");
            goto end;
        }
        res = curl_easy_perform(c);
        status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        /* never again once the server has begun to answer */
        if (res == CURLE_OK || status != 0 || !upclient_retryable(res)
            || attempt >= uc->retries)
            break;
        atomic_fetch_add_explicit(&uc->retried, 1, memory_order_relaxed);
    }
    if (res != CURLE_OK) {
        rc = upclient_classify(res, body.too_big);
        if (rc == UPCLIENT_TOO_BIG)
            snprintf(err, errlen, "upstream answer larger than %zu bytes",
                     uc->max_response);
        else
            snprintf(err, errlen, "upstream %s: %s", upclient_rc_name(rc),
                     cerr[0] != '\0' ? cerr : curl_easy_strerror(res));
        goto end;
    }
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (http_status != NULL)
        *http_status = status;
    if (status < 200 || status > 599) {
        rc = UPCLIENT_HTTP;
        snprintf(err, errlen, "upstream answered HTTP %ld", status);
        goto end;
    }
    if (!upclient_ctype_ok(ct)) {
        rc = UPCLIENT_HTTP;
        upclient_printable(ct != NULL ? ct : "(none)", ctbuf, sizeof(ctbuf));
        snprintf(err, errlen, "upstream answered HTTP %ld with content type "
                 "%s", status, ctbuf);
        goto end;
    }
    if (body.len == 0) {
        rc = UPCLIENT_HTTP;
        snprintf(err, errlen, "upstream answered HTTP %ld without a body",
                 status);
        goto end;
    }
    *rsp = body.data;
    *rsp_len = body.len;
    body.data = NULL;
    rc = UPCLIENT_OK;
 end:
    OPENSSL_free(body.data);
    upclient_handle_put(uc, c);
    upclient_observe(uc, rc, upclient_now() - t0);
    return rc;
}

/* The counters of every live client labelled |label|, summed (two clients
 * of one alias, e.g. an old and a new one, give one series). */
struct upclient_snap {
    uint64_t requests, retried, errors[UPCLIENT_NKINDS];
    uint64_t bucket[UPCLIENT_NBUCKETS], sum_ns;
};

/* Returns 1 if |uc| is the first live client with its label and then fills
 * |s|; 0 otherwise. Under upclient_reg_lock. */
static int upclient_snap_get(const struct upclient *uc,
                             struct upclient_snap *s)
{
    const struct upclient *o;
    unsigned k;

    for (o = upclient_reg; o != uc; o = o->next)
        if (strcmp(o->label, uc->label) == 0)
            return 0;
    memset(s, 0, sizeof(*s));
    for (o = uc; o != NULL; o = o->next) {
        if (strcmp(o->label, uc->label) != 0)
            continue;
        s->requests += atomic_load_explicit(&o->requests,
                                            memory_order_relaxed);
        s->retried += atomic_load_explicit(&o->retried, memory_order_relaxed);
        for (k = 0; k < UPCLIENT_NKINDS; k++)
            s->errors[k] += atomic_load_explicit(&o->errors[k],
                                                 memory_order_relaxed);
        for (k = 0; k < UPCLIENT_NBUCKETS; k++)
            s->bucket[k] += atomic_load_explicit(&o->bucket[k],
                                                 memory_order_relaxed);
        s->sum_ns += atomic_load_explicit(&o->sum_ns, memory_order_relaxed);
    }
    return 1;
}

int upclient_metrics_append(char *buf, size_t cap, size_t *n)
{
    size_t n0 = *n;
    struct upclient_snap sn;
    struct upclient *uc;
    unsigned k, b;
    uint64_t cum;
    int ok = 0;

#define UPCLIENT_OUT(...)                                               \
    do {                                                                \
        if (!metrics_appendf(buf, cap, n, __VA_ARGS__))                 \
            goto end;                                                   \
    } while (0)

    pthread_mutex_lock(&upclient_reg_lock);
    if (upclient_reg == NULL) {
        ok = 1;
        goto end;
    }
    UPCLIENT_OUT("# HELP cmpca_upstream_requests_total CMP messages posted "
                 "to the upstream server, by alias.\n"
                 "# TYPE cmpca_upstream_requests_total counter\n");
    for (uc = upclient_reg; uc != NULL; uc = uc->next)
        if (upclient_snap_get(uc, &sn))
            UPCLIENT_OUT("cmpca_upstream_requests_total{alias=\"%s\"} %llu\n",
                         uc->label, (unsigned long long)sn.requests);
    UPCLIENT_OUT("# HELP cmpca_upstream_retries_total Repeated attempts "
                 "after a transport failure, by alias.\n"
                 "# TYPE cmpca_upstream_retries_total counter\n");
    for (uc = upclient_reg; uc != NULL; uc = uc->next)
        if (upclient_snap_get(uc, &sn))
            UPCLIENT_OUT("cmpca_upstream_retries_total{alias=\"%s\"} %llu\n",
                         uc->label, (unsigned long long)sn.retried);
    UPCLIENT_OUT("# HELP cmpca_upstream_errors_total Failed upstream posts, "
                 "by alias and kind.\n"
                 "# TYPE cmpca_upstream_errors_total counter\n");
    for (uc = upclient_reg; uc != NULL; uc = uc->next) {
        if (!upclient_snap_get(uc, &sn))
            continue;
        for (k = 0; k < UPCLIENT_NKINDS; k++)
            UPCLIENT_OUT("cmpca_upstream_errors_total{alias=\"%s\",kind=\"%s\"}"
                         " %llu\n", uc->label, upclient_kinds[k],
                         (unsigned long long)sn.errors[k]);
    }
    UPCLIENT_OUT("# HELP cmpca_upstream_seconds Duration of upstream posts "
                 "(retries included), by alias.\n"
                 "# TYPE cmpca_upstream_seconds histogram\n");
    for (uc = upclient_reg; uc != NULL; uc = uc->next) {
        if (!upclient_snap_get(uc, &sn))
            continue;
        cum = 0;
        for (b = 0; b < UPCLIENT_NBUCKETS; b++) {
            cum += sn.bucket[b];
            UPCLIENT_OUT("cmpca_upstream_seconds_bucket{alias=\"%s\","
                         "le=\"%s\"} %llu\n", uc->label, upclient_le_txt[b],
                         (unsigned long long)cum);
        }
        UPCLIENT_OUT("cmpca_upstream_seconds_sum{alias=\"%s\"} %.9f\n",
                     uc->label, (double)sn.sum_ns / 1e9);
        UPCLIENT_OUT("cmpca_upstream_seconds_count{alias=\"%s\"} %llu\n",
                     uc->label, (unsigned long long)cum);
    }
    ok = 1;
#undef UPCLIENT_OUT
 end:
    pthread_mutex_unlock(&upclient_reg_lock);
    if (!ok) {
        /* nothing half written stays */
        *n = n0;
        if (n0 < cap)
            buf[n0] = '\0';
    }
    return ok;
}
