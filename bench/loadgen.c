/*
 * CMP enrollment load generator: virtual devices with factory credentials
 * run complete ir+certConf / kur+certConf transactions (the lean lgcmp
 * engine, or OpenSSL's CMP client as the interop reference) over persistent
 * HTTP/1.1 connections, closed-loop or open-loop, and report latency, errors
 * by failInfo, server and client CPU per enrollment and the crypto floor.
 */
#include "lgcmp.h"

#include <openssl/cmp.h>
#include <openssl/core_names.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_HDR      16384
#define LG_MAX_BODY     (1024 * 1024)
#define LG_MAX_THREADS  1024
#define LG_MAX_SAMPLES  (4L * 1024 * 1024)   /* per kind, all threads */
#define LG_NFAIL        27                    /* PKIFailureInfo bits */
#define LG_FLOOR_INPUT  500
#define LG_BODY_CERTCONF 24                   /* PKIBody certConf tag */

enum lg_mode { LG_IR, LG_KUR, LG_MIX };
/* latency kinds */
enum { LG_K_TXN, LG_K_TXN_SVC, LG_K_REQ, LG_K_CONF, LG_NKINDS };
static const char *const lg_kind_name[LG_NKINDS] = {
    "transaction", "transaction (service)", "request msg", "certConf msg"
};
static const char *const lg_fail_name[LG_NFAIL] = {
    "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
    "badDataFormat", "wrongAuthority", "incorrectData", "missingTimeStamp",
    "badPOP", "certRevoked", "certConfirmed", "wrongIntegrity",
    "badRecipientNonce", "timeNotAvailable", "unacceptedPolicy",
    "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
    "badCertTemplate", "signerNotTrusted", "transactionIdInUse",
    "unsupportedVersion", "notAuthorized", "systemUnavail", "systemFailure",
    "duplicateCertReq"
};

struct lg_device {
    char name[64];
    X509 *cert;                 /* vendor certificate */
    EVP_PKEY *key;
    STACK_OF(X509) *chain;      /* vendor CA chain (untrusted) */
    X509 *op_cert;              /* operator certificate after an ir */
    EVP_PKEY *op_key;
    LGCMP_IDENT *ident;         /* lean engine: vendor identity */
    LGCMP_IDENT *op_ident;      /* lean engine: operator identity */
};

struct lg_samples {
    uint32_t *v;                /* microseconds */
    size_t n, cap;
};

struct lg;

struct lg_worker {
    struct lg *g;
    int idx;
    int fd;
    struct lg_samples lat[LG_NKINDS];
    long ok, ok_ir, ok_kur, err_fail[LG_NFAIL], err_transport, err_other,
         err_status;
    int transport_failed;
    size_t next_dev;            /* round robin over own devices */
    size_t next_key;
    unsigned rnd;
    unsigned char *rbuf;        /* response buffer */
    int record;
    LGCMP_CLIENT *lc;           /* lean engine state of this worker */
    pthread_t th;
};

struct lg {
    /* options */
    char host[128];
    unsigned short port;
    char path[512];
    const char *dev_dir, *trusted_file;
    enum lg_mode mode;
    int mix_kur_pct;
    int threads;
    double duration, warmup, rate;
    long count, max_devices;
    int one_device;
    long server_pid;
    int floor;
    int uniform_arrivals;
    const char *label;
    const char *newkey_file;
    long keypool;
    int lean;                   /* --client lean (default) or openssl */
    int new_conn;               /* --new-conn: a fresh connection per message */
    /* state */
    struct lg_device *dev;
    size_t ndev;
    X509 *trusted_root;
    EVP_PKEY **keys;            /* pre-generated new keys */
    LGCMP_KEY **lkeys;          /* the same for the lean engine */
    size_t nkeys;
    LGCMP_TRUST *trust;         /* lean engine: the operator root */
    struct lg_worker *w;
    /* phase */
    double t_end;               /* closed loop: stop when now >= t_end */
    long limit;                 /* max transactions in this phase */
    atomic_long started;
    double t0;                  /* open loop: schedule origin */
    double *sched;              /* open loop: arrival offsets */
    int open_loop;
    int init_pass;
    /* floor detection */
    pthread_mutex_t lock;
    EVP_PKEY *ca_pub;           /* the issuing CA's key (public), for the floor */
    EVP_PKEY *op_pub;
    int errors_printed;
};

static double lg_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void lg_sleep_until(double t)
{
    struct timespec ts;

    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void lg_sample_add(struct lg_samples *s, double secs)
{
    double us = secs * 1e6;

    if (s->n == s->cap) {
        size_t cap = s->cap == 0 ? 4096 : s->cap * 2;
        uint32_t *v;

        if (cap > LG_MAX_SAMPLES)
            return;
        if ((v = realloc(s->v, cap * sizeof(*v))) == NULL)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = us < 0 ? 0 : us > 4e9 ? 4000000000u : (uint32_t)us;
}

/* ---------------------------------------------------------------- */
/* HTTP/1.1 keep-alive client                                        */

static int lg_connect(struct lg *g)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(g->port);
    if (inet_pton(AF_INET, g->host, &sa.sin_addr) != 1)
        return -1;
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int lg_write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 1;
}

/* Case-insensitive header lookup in the NUL-terminated header block. */
static const char *lg_header(const char *hdr, const char *name)
{
    size_t n = strlen(name);
    const char *p = hdr;

    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

/*
 * One POST on the worker's connection. Returns the body length (>= 0) with
 * the body in w->rbuf and the status in *status, or -1 on a transport error
 * (the connection is then closed). *retry is set if nothing was received
 * at all (a stale keep-alive connection).
 */
static long lg_post(struct lg *g, struct lg_worker *w, const unsigned char *der,
                    int len, int *status, int *retry)
{
    char hdr[LG_MAX_HDR + 1];
    struct iovec iov[2];
    size_t have = 0, hlen, clen;
    const char *p, *eoh = NULL;
    long body = -1;
    int hn, keep = 1;

    *retry = 0;
    if (w->fd < 0 && (w->fd = lg_connect(g)) < 0)
        return -1;
    hn = snprintf(hdr, sizeof(hdr),
                  "POST %s HTTP/1.1\r\nHost: %s:%u\r\n"
                  "Content-Type: application/pkixcmp\r\n"
                  "Content-Length: %d\r\n\r\n", g->path, g->host, g->port, len);
    iov[0].iov_base = hdr;
    iov[0].iov_len = (size_t)hn;
    iov[1].iov_base = (void *)der;
    iov[1].iov_len = (size_t)len;
    if (!lg_write_all(w->fd, iov, 2)) {
        *retry = 1;
        goto err;
    }
    /* read the header block */
    while (eoh == NULL) {
        ssize_t r;

        if (have >= LG_MAX_HDR)
            goto err;
        r = read(w->fd, hdr + have, LG_MAX_HDR - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *retry = have == 0;
            goto err;
        }
        have += (size_t)r;
        hdr[have] = '\0';
        eoh = strstr(hdr, "\r\n\r\n");
    }
    hlen = (size_t)(eoh - hdr) + 4;
    if (sscanf(hdr, "HTTP/1.%*d %d", status) != 1)
        goto err;
    hdr[hlen - 2] = '\0';
    if ((p = lg_header(hdr, "Content-Length")) == NULL)
        goto err;
    clen = strtoul(p, NULL, 10);
    if (clen > LG_MAX_BODY)
        goto err;
    if ((p = lg_header(hdr, "Connection")) != NULL
        && strncasecmp(p, "close", 5) == 0)
        keep = 0;
    have -= hlen;
    if (have > clen)
        goto err; /* no pipelining: nothing may follow */
    memcpy(w->rbuf, hdr + hlen, have);
    while (have < clen) {
        ssize_t r = read(w->fd, w->rbuf + have, clen - have);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto err;
        have += (size_t)r;
    }
    body = (long)clen;
    if (!keep || g->new_conn) {
        close(w->fd);
        w->fd = -1;
    }
    return body;
 err:
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    return -1;
}

/* One request/response of body |type| over the worker's keep-alive
 * connection, timed per message. Returns the response length (body in
 * w->rbuf) or -1 on a transport error (w->transport_failed set). */
static long lg_exchange(struct lg_worker *w, int type, const unsigned char *der,
                        int len)
{
    int status = 0, retry = 0, tries;
    long n = -1;
    double t;

    t = lg_now();
    for (tries = 0; tries < 2; tries++) {
        n = lg_post(w->g, w, der, len, &status, &retry);
        if (n >= 0 || !retry)
            break;
        t = lg_now(); /* stale connection: the retry is the measurement */
    }
    t = lg_now() - t;
    if (n < 0) {
        w->transport_failed = 1;
        return -1;
    }
    if (w->record)
        lg_sample_add(&w->lat[type == LG_BODY_CERTCONF ? LG_K_CONF
                                                                : LG_K_REQ], t);
    return n;
}

/* OSSL_CMP transfer callback (openssl engine). */
static OSSL_CMP_MSG *lg_transfer(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req)
{
    struct lg_worker *w = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
    unsigned char *der = NULL;
    const unsigned char *p;
    OSSL_CMP_MSG *rsp = NULL;
    int len;
    long n;

    if ((len = i2d_OSSL_CMP_MSG(req, &der)) <= 0)
        return NULL;
    n = lg_exchange(w, OSSL_CMP_MSG_get_bodytype(req), der, len);
    OPENSSL_free(der);
    if (n < 0)
        return NULL;
    p = w->rbuf;
    rsp = d2i_OSSL_CMP_MSG(NULL, &p, n);
    if (rsp == NULL)
        w->transport_failed = 1;
    return rsp;
}

/* lgcmp transfer callback (lean engine). */
static int lg_lean_transfer(void *arg, int type, const unsigned char *req,
                            size_t req_len, const unsigned char **rsp,
                            size_t *rsp_len)
{
    struct lg_worker *w = arg;
    long n;

    if (req_len > LG_MAX_BODY
        || (n = lg_exchange(w, type, req, (int)req_len)) < 0)
        return 0;
    *rsp = w->rbuf;
    *rsp_len = (size_t)n;
    return 1;
}

/* ---------------------------------------------------------------- */
/* Devices and keys                                                  */

static X509 *lg_read_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x;

    if (fp == NULL)
        return NULL;
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    return x;
}

static STACK_OF(X509) *lg_read_certs(const char *path)
{
    FILE *fp = fopen(path, "r");
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;

    if (fp == NULL || sk == NULL) {
        if (fp != NULL)
            fclose(fp);
        sk_X509_free(sk);
        return NULL;
    }
    while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
        sk_X509_push(sk, x);
    ERR_clear_error();
    fclose(fp);
    return sk;
}

static EVP_PKEY *lg_read_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k;

    if (fp == NULL)
        return NULL;
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    return k;
}

static int lg_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads DIR/<serial>/{cert,key,chain}.pem, sorted by name, at most max. */
static int lg_load_devices(struct lg *g)
{
    DIR *d = opendir(g->dev_dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0, i, total = 0;
    int ok = 0;

    if (d == NULL) {
        fprintf(stderr, "loadgen: cannot open %s\n", g->dev_dir);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 64)
            continue;
        snprintf(path, sizeof(path), "%s/%s/cert.pem", g->dev_dir, e->d_name);
        if (access(path, R_OK) != 0)
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 256) * sizeof(*nn));
            if (nn == NULL)
                goto end;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    qsort(names, n, sizeof(*names), lg_cmp_str);
    total = n;
    if (g->max_devices > 0 && n > (size_t)g->max_devices)
        n = (size_t)g->max_devices;
    if (n == 0) {
        fprintf(stderr, "loadgen: no devices in %s\n", g->dev_dir);
        goto end;
    }
    if ((g->dev = calloc(n, sizeof(*g->dev))) == NULL)
        goto end;
    for (i = 0; i < n; i++) {
        struct lg_device *dv = &g->dev[i];

        snprintf(dv->name, sizeof(dv->name), "%s", names[i]);
        snprintf(path, sizeof(path), "%s/%s/cert.pem", g->dev_dir, names[i]);
        dv->cert = lg_read_cert(path);
        snprintf(path, sizeof(path), "%s/%s/key.pem", g->dev_dir, names[i]);
        dv->key = lg_read_key(path);
        snprintf(path, sizeof(path), "%s/%s/chain.pem", g->dev_dir, names[i]);
        dv->chain = lg_read_certs(path);
        if (dv->cert == NULL || dv->key == NULL || dv->chain == NULL) {
            fprintf(stderr, "loadgen: cannot read device %s\n", names[i]);
            goto end;
        }
    }
    g->ndev = n;
    ok = 1;
 end:
    for (i = 0; i < total; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return ok;
}

/* Generates a key with the parameters of |like| (EC curve, RSA bits, EdDSA). */
static EVP_PKEY *lg_keygen_like(const EVP_PKEY *like)
{
    char group[80];
    size_t glen = 0;

    if (EVP_PKEY_is_a(like, "EC")
        && EVP_PKEY_get_utf8_string_param(like, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), &glen))
        return EVP_EC_gen(group);
    if (EVP_PKEY_is_a(like, "RSA"))
        return EVP_RSA_gen((unsigned)EVP_PKEY_get_bits(like));
    if (EVP_PKEY_is_a(like, "ED25519"))
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (EVP_PKEY_is_a(like, "ED448"))
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    return NULL;
}

static void lg_key_desc(const EVP_PKEY *k, char *buf, size_t len)
{
    char group[80];
    size_t glen = 0;

    if (EVP_PKEY_is_a(k, "EC")
        && EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), &glen))
        snprintf(buf, len, "ECDSA %s", group);
    else
        snprintf(buf, len, "%s-%d", EVP_PKEY_get0_type_name(k),
                 EVP_PKEY_get_bits(k));
}

/* ---------------------------------------------------------------- */
/* Transactions                                                      */

/* Index of this worker's next new key (not |avoid| if there is a choice:
 * when the pool is small the round robin may return one key only, so the
 * next index is taken then). */
static size_t lg_next_key_idx(struct lg *g, struct lg_worker *w,
                              const EVP_PKEY *avoid)
{
    size_t i = (w->next_key++ * (size_t)g->threads + (size_t)w->idx) % g->nkeys;

    if (g->keys[i] == avoid)
        i = (i + 1) % g->nkeys;
    return i;
}

static EVP_PKEY *lg_next_key(struct lg *g, struct lg_worker *w,
                             const EVP_PKEY *avoid)
{
    EVP_PKEY *k = g->keys[lg_next_key_idx(g, w, avoid)];

    EVP_PKEY_up_ref(k);
    return k;
}

static void lg_count_error(struct lg *g, struct lg_worker *w, OSSL_CMP_CTX *ctx,
                           const char *dev, const char *what)
{
    int status = OSSL_CMP_CTX_get_status(ctx);
    int fi = OSSL_CMP_CTX_get_failInfoCode(ctx), i, any = 0;
    char buf[256];

    if (w->transport_failed) {
        w->err_transport++;
    } else if (status >= 0 && fi > 0) {
        for (i = 0; i < LG_NFAIL; i++)
            if (fi & (1 << i)) {
                w->err_fail[i]++;
                any = 1;
                break;
            }
        if (!any)
            w->err_status++;
    } else if (status >= 0) {
        w->err_status++;
    } else {
        w->err_other++;
    }
    pthread_mutex_lock(&g->lock);
    if (g->errors_printed < 5) {
        g->errors_printed++;
        ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
        fprintf(stderr, "loadgen: %s %s failed: status=%d failInfo=0x%x "
                "transport=%d %s\n", what, dev, status, fi,
                w->transport_failed, buf);
    }
    pthread_mutex_unlock(&g->lock);
}

/* Counts a failed lean transaction by what went wrong. */
static void lg_count_error_lean(struct lg *g, struct lg_worker *w,
                                const struct lgcmp_result *res,
                                const char *dev, const char *what)
{
    int i, any = 0;

    switch (res->outcome) {
    case LGCMP_TRANSPORT:
        w->err_transport++;
        break;
    case LGCMP_REJECTED:
        for (i = 0; i < LG_NFAIL; i++)
            if (res->failinfo & (1 << i)) {
                w->err_fail[i]++;
                any = 1;
                break;
            }
        if (!any)
            w->err_status++;
        break;
    default:
        w->err_other++;
    }
    pthread_mutex_lock(&g->lock);
    if (g->errors_printed < 5) {
        g->errors_printed++;
        fprintf(stderr, "loadgen: %s %s failed%s: status=%d failInfo=0x%x %s\n",
                what, dev, res->stage ? " at certConf" : "", res->status,
                (unsigned)res->failinfo, res->text);
    }
    pthread_mutex_unlock(&g->lock);
}

/* The lean engine's transaction (see lg_transaction). */
static int lg_transaction_lean(struct lg *g, struct lg_worker *w,
                               struct lg_device *dv, int kur)
{
    struct lgcmp_result res;
    LGCMP_IDENT *id;
    EVP_PKEY *nk;
    size_t ki;
    int ok = 0;

    memset(&res, 0, sizeof(res));
    w->transport_failed = 0;
    ki = lg_next_key_idx(g, w, kur ? dv->op_key : NULL);
    nk = g->keys[ki];
    if (!lgcmp_enroll(w->lc, kur, kur ? dv->op_ident : dv->ident, g->lkeys[ki],
                      &res)) {
        lg_count_error_lean(g, w, &res, dv->name, kur ? "kur" : "ir");
        goto end;
    }
    /* the device now holds this operator certificate and key (kept only
     * when a later kur needs them) */
    if (g->mode != LG_IR) {
        if ((id = lgcmp_ident_new_der(res.cert, res.cert_len, nk)) == NULL) {
            w->err_other++;
            goto end;
        }
        lgcmp_ident_free(dv->op_ident);
        dv->op_ident = id;
        EVP_PKEY_free(dv->op_key);
        EVP_PKEY_up_ref(nk);
        dv->op_key = nk;
    }
    if (g->ca_pub == NULL) {
        EVP_PKEY *ca = lgcmp_client_get0_issuer_pubkey(w->lc);

        pthread_mutex_lock(&g->lock);
        if (g->ca_pub == NULL && ca != NULL && EVP_PKEY_up_ref(ca)) {
            g->ca_pub = ca;
            if (EVP_PKEY_up_ref(nk))
                g->op_pub = nk;
        }
        pthread_mutex_unlock(&g->lock);
    }
    ok = 1;
 end:
    lgcmp_result_clear(&res);
    return ok;
}

/* Runs one complete transaction (ir or kur, then certConf) for device
 * |dv|. Returns 1 on success. */
static int lg_transaction(struct lg *g, struct lg_worker *w,
                          struct lg_device *dv, int kur)
{
    OSSL_CMP_CTX *ctx;
    X509_STORE *ts;
    EVP_PKEY *nk = NULL;
    X509 *newcert = NULL;
    int ok = 0;

    if (g->lean)
        return lg_transaction_lean(g, w, dv, kur);
    ctx = OSSL_CMP_CTX_new(NULL, NULL);
    ts = X509_STORE_new();
    w->transport_failed = 0;
    if (ctx == NULL || ts == NULL || !X509_STORE_add_cert(ts, g->trusted_root))
        goto end;
    OSSL_CMP_CTX_set_log_verbosity(ctx, OSSL_CMP_LOG_ERR);
    OSSL_CMP_CTX_set_transfer_cb(ctx, lg_transfer);
    OSSL_CMP_CTX_set_transfer_cb_arg(ctx, w);
    OSSL_CMP_CTX_set0_trustedStore(ctx, ts);
    ts = NULL;
    if (kur) {
        if (!OSSL_CMP_CTX_set1_cert(ctx, dv->op_cert)
            || !OSSL_CMP_CTX_set1_pkey(ctx, dv->op_key))
            goto end;
        nk = lg_next_key(g, w, dv->op_key);
    } else {
        if (!OSSL_CMP_CTX_set1_cert(ctx, dv->cert)
            || !OSSL_CMP_CTX_set1_pkey(ctx, dv->key)
            || !OSSL_CMP_CTX_set1_untrusted(ctx, dv->chain))
            goto end;
        nk = lg_next_key(g, w, NULL);
    }
    if (!OSSL_CMP_CTX_set0_newPkey(ctx, 1, nk))
        goto end;
    newcert = kur ? OSSL_CMP_exec_KUR_ses(ctx) : OSSL_CMP_exec_IR_ses(ctx);
    if (newcert == NULL) {
        lg_count_error(g, w, ctx, dv->name, kur ? "kur" : "ir");
        ERR_clear_error();
        goto end;
    }
    /* the device now holds this operator certificate and key */
    X509_free(dv->op_cert);
    EVP_PKEY_free(dv->op_key);
    dv->op_cert = X509_dup(newcert);
    EVP_PKEY_up_ref(nk);
    dv->op_key = nk;
    if (g->ca_pub == NULL) {
        STACK_OF(X509) *in = OSSL_CMP_CTX_get1_extraCertsIn(ctx);
        int i;

        pthread_mutex_lock(&g->lock);
        for (i = 0; g->ca_pub == NULL && i < sk_X509_num(in); i++) {
            X509 *x = sk_X509_value(in, i);

            if (X509_NAME_cmp(X509_get_subject_name(x),
                              X509_get_issuer_name(newcert)) == 0) {
                g->ca_pub = X509_get_pubkey(x);
                g->op_pub = X509_get_pubkey(newcert);
            }
        }
        pthread_mutex_unlock(&g->lock);
        sk_X509_pop_free(in, X509_free);
    }
    ok = 1;
 end:
    ERR_clear_error();
    X509_STORE_free(ts);
    OSSL_CMP_CTX_free(ctx);
    return ok;
}

/* Picks this worker's next device (devices i with i % threads == idx). */
static struct lg_device *lg_pick(struct lg *g, struct lg_worker *w)
{
    size_t mine, i;

    if (g->one_device)
        return &g->dev[0];
    mine = (g->ndev - (size_t)w->idx + (size_t)g->threads - 1)
           / (size_t)g->threads;
    if (mine == 0)
        return NULL;
    i = (w->next_dev++ % mine) * (size_t)g->threads + (size_t)w->idx;
    return &g->dev[i];
}

static void lg_one(struct lg *g, struct lg_worker *w, double sched)
{
    struct lg_device *dv = lg_pick(g, w);
    double t0, t1;
    int kur;

    if (dv == NULL)
        return;
    switch (g->mode) {
    case LG_KUR:
        kur = dv->op_cert != NULL || dv->op_ident != NULL;
        break;
    case LG_MIX:
        w->rnd = w->rnd * 1103515245u + 12345u;
        kur = (dv->op_cert != NULL || dv->op_ident != NULL)
              && (int)((w->rnd >> 16) % 100) < g->mix_kur_pct;
        break;
    default:
        kur = 0;
    }
    t0 = lg_now();
    if (lg_transaction(g, w, dv, kur)) {
        t1 = lg_now();
        if (w->record) {
            w->ok++;
            if (kur)
                w->ok_kur++;
            else
                w->ok_ir++;
            lg_sample_add(&w->lat[LG_K_TXN_SVC], t1 - t0);
            lg_sample_add(&w->lat[LG_K_TXN], t1 - (sched > 0 ? sched : t0));
        }
    }
}

struct lg_thread_arg {
    struct lg *g;
    struct lg_worker *w;
};

static void *lg_thread(void *p)
{
    struct lg_thread_arg *ta = p;
    struct lg *g = ta->g;
    struct lg_worker *w = ta->w;
    long i;

    if (g->init_pass) {
        /* one untimed ir for each of this worker's devices */
        for (i = w->idx; i < (long)g->ndev; i += g->threads)
            lg_transaction(g, w, &g->dev[i], 0);
        return NULL;
    }
    for (;;) {
        if (g->open_loop) {
            /* bounded: arrivals not started by the end of the window
                 plus a grace period count as not served */
            if (lg_now() >= g->t_end)
                break;
            i = atomic_fetch_add(&g->started, 1);
            if (i >= g->limit)
                break;
            lg_sleep_until(g->t0 + g->sched[i]);
            lg_one(g, w, g->t0 + g->sched[i]);
        } else {
            if (lg_now() >= g->t_end)
                break;
            if (g->limit > 0 && atomic_fetch_add(&g->started, 1) >= g->limit)
                break;
            lg_one(g, w, 0);
        }
    }
    return NULL;
}

/* Runs all workers until the phase ends. */
static void lg_phase(struct lg *g, int record, double secs, long limit,
                     int open_loop)
{
    struct lg_thread_arg ta[LG_MAX_THREADS];
    int i;

    atomic_store(&g->started, 0);
    g->limit = limit;
    g->open_loop = open_loop;
    g->t0 = lg_now() + 0.05;
    g->t_end = open_loop ? g->t0 + secs * 1.2 + 1 : lg_now() + secs;
    for (i = 0; i < g->threads; i++) {
        ta[i].g = g;
        ta[i].w = &g->w[i];
        g->w[i].record = record;
        pthread_create(&g->w[i].th, NULL, lg_thread, &ta[i]);
    }
    for (i = 0; i < g->threads; i++)
        pthread_join(g->w[i].th, NULL);
}

/* ---------------------------------------------------------------- */
/* Crypto floor                                                      */

struct lg_rate {
    char desc[128];
    double sign_s, verify_s;    /* seconds per operation, one core */
};

/* Measures sign and verify of |k| over a 500-octet input for ~secs each. */
static int lg_rate_measure(EVP_PKEY *k, double secs, struct lg_rate *r)
{
    unsigned char in[LG_FLOOR_INPUT], sig[1024];
    size_t siglen = 0;
    const char *md = EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448")
                     ? NULL : "SHA256";
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    double t0, t;
    long n;
    int ok = 0;

    lg_key_desc(k, r->desc, sizeof(r->desc));
    RAND_bytes(in, sizeof(in));
    if (mc == NULL)
        goto end;
    t0 = lg_now();
    for (n = 0; (t = lg_now() - t0) < secs || n < 10; n++) {
        siglen = sizeof(sig);
        if (EVP_DigestSignInit_ex(mc, NULL, md, NULL, NULL, k, NULL) <= 0
            || EVP_DigestSign(mc, sig, &siglen, in, sizeof(in)) <= 0)
            goto end;
    }
    r->sign_s = t / (double)n;
    t0 = lg_now();
    for (n = 0; (t = lg_now() - t0) < secs || n < 10; n++) {
        if (EVP_DigestVerifyInit_ex(mc, NULL, md, NULL, NULL, k, NULL) <= 0
            || EVP_DigestVerify(mc, sig, siglen, in, sizeof(in)) != 1)
            goto end;
    }
    r->verify_s = t / (double)n;
    ok = 1;
 end:
    EVP_MD_CTX_free(mc);
    return ok;
}

struct lg_floor {
    struct lg_rate ca, dev, vca, newk, op;
    double ir_s, kur_s;         /* floor CPU seconds per transaction */
    double cl_ir_s, cl_kur_s;   /* the client's: 3 signs + 3 verifies */
    int ok;
};

/* Measured rates by key description: same algorithm, same numbers. */
static struct lg_rate lg_rate_cache[8];
static int lg_nrate;

/* Rates for a key like |like|: the best of 3 runs (the machine is shared,
 * the fastest run is the least disturbed one). */
static int lg_rate_like(const EVP_PKEY *like, double secs, struct lg_rate *r)
{
    EVP_PKEY *k = lg_keygen_like(like);
    struct lg_rate one;
    int i, ok = k != NULL;

    memset(r, 0, sizeof(*r));
    if (!ok)
        return 0;
    lg_key_desc(k, r->desc, sizeof(r->desc));
    for (i = 0; i < lg_nrate; i++)
        if (strcmp(lg_rate_cache[i].desc, r->desc) == 0) {
            *r = lg_rate_cache[i];
            EVP_PKEY_free(k);
            return 1;
        }
    for (i = 0; ok && i < 3; i++) {
        ok = lg_rate_measure(k, secs / 3, &one);
        if (ok && (r->sign_s == 0 || one.sign_s < r->sign_s))
            r->sign_s = one.sign_s;
        if (ok && (r->verify_s == 0 || one.verify_s < r->verify_s))
            r->verify_s = one.verify_s;
    }
    if (ok && lg_nrate < 8)
        lg_rate_cache[lg_nrate++] = *r;
    EVP_PKEY_free(k);
    return ok;
}

/*
 * The signatures the server must make and check per transaction:
 * ir: verify ir protection (device key), vendor cert (vendor CA key), POP
 *     (new key), certConf protection (device key); sign certificate, ip,
 *     pkiConf (CA key). The vendor CA certificate itself is a registered
 *     trust anchor (partial chain): its signature by the vendor root is
 *     not checked per request (callgrind counts 4 ECDSA verifies per ir +
 *     certConf in the server).
 * kur: verify kur protection (operator key; the operator certificate is
 *     recognised by its hash, no path), POP, certConf; sign the same three.
 */
static void lg_floor_measure(struct lg *g, struct lg_floor *f, double secs)
{
    struct lg_device *dv = &g->dev[0];
    X509 *vca = sk_X509_num(dv->chain) > 0 ? sk_X509_value(dv->chain, 0) : NULL;

    memset(f, 0, sizeof(*f));
    if (g->ca_pub == NULL || vca == NULL)
        return;
    f->ok = lg_rate_like(g->ca_pub, secs, &f->ca)
        && lg_rate_like(X509_get0_pubkey(dv->cert), secs, &f->dev)
        && lg_rate_like(X509_get0_pubkey(vca), secs, &f->vca)
        && lg_rate_like(g->keys[0], secs, &f->newk)
        && lg_rate_like(g->op_pub != NULL ? g->op_pub : g->keys[0], secs, &f->op);
    /* the vendor cert is signed by the vendor CA */
    f->ir_s = f->dev.verify_s + f->vca.verify_s + f->newk.verify_s
        + f->dev.verify_s + 3 * f->ca.sign_s;
    f->kur_s = f->op.verify_s + f->newk.verify_s + f->op.verify_s
        + 3 * f->ca.sign_s;
    /* the client signs request, POP and certConf and verifies the ip/kup
     * protection, the new certificate and the pkiConf (server keys of the
     * CA's type) */
    f->cl_ir_s = 2 * f->dev.sign_s + f->newk.sign_s + 3 * f->ca.verify_s;
    f->cl_kur_s = 2 * f->op.sign_s + f->newk.sign_s + 3 * f->ca.verify_s;
}

/* ---------------------------------------------------------------- */
/* CPU accounting                                                    */

/* utime+stime of |pid| in seconds, or -1. */
static double lg_proc_cpu1(long pid);

/* CPU seconds of |pid| and of its child processes (the signer process of
 * `cmpca serve` counts as server CPU). */
static double lg_proc_cpu(long pid)
{
    char path[96], buf[1024], *p, *end;
    double sum = lg_proc_cpu1(pid), c;
    long kid;
    FILE *fp;
    size_t n;

    if (sum < 0)
        return sum;
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", pid, pid);
    if ((fp = fopen(path, "r")) == NULL)
        return sum;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    for (p = buf; (kid = strtol(p, &end, 10)) > 0 && end != p; p = end)
        if ((c = lg_proc_cpu1(kid)) > 0)
            sum += c;
    return sum;
}

static double lg_proc_cpu1(long pid)
{
    char path[64], buf[2048], *p;
    unsigned long ut = 0, st = 0;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    /* fields after the comm: 3 state ... 14 utime 15 stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long lg_proc_rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(fp);
    return kb;
}

static double lg_self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
        + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Busy and total jiffies of the whole machine. */
static void lg_machine_cpu(double *busy, double *total)
{
    unsigned long long v[10] = { 0 };
    FILE *fp = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (fp == NULL)
        return;
    if (fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
               &v[9]) >= 8) {
        int i;

        for (i = 0; i < 8; i++)
            *total += (double)v[i];
        *busy = *total - (double)v[3] - (double)v[4];
    }
    fclose(fp);
}

/* ---------------------------------------------------------------- */
/* Report                                                            */

static int lg_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

struct lg_pct {
    size_t n;
    double p50, p90, p99, max;  /* milliseconds */
};

static void lg_percentiles(struct lg *g, int kind, struct lg_pct *out)
{
    size_t n = 0, i, k = 0;
    uint32_t *all;
    int t;

    memset(out, 0, sizeof(*out));
    for (t = 0; t < g->threads; t++)
        n += g->w[t].lat[kind].n;
    if (n == 0 || (all = malloc(n * sizeof(*all))) == NULL)
        return;
    for (t = 0; t < g->threads; t++)
        for (i = 0; i < g->w[t].lat[kind].n; i++)
            all[k++] = g->w[t].lat[kind].v[i];
    qsort(all, n, sizeof(*all), lg_cmp_u32);
    out->n = n;
#define LG_P(q) (all[(size_t)((double)(n - 1) * (q) + 0.5)] / 1000.0)
    out->p50 = LG_P(0.50);
    out->p90 = LG_P(0.90);
    out->p99 = LG_P(0.99);
    out->max = all[n - 1] / 1000.0;
#undef LG_P
    free(all);
}

static void lg_usage(FILE *fp)
{
    fprintf(fp,
        "usage: loadgen --url http://127.0.0.1:PORT/PATH --devices DIR --trusted ROOT.pem\n"
        "               [--mode ir|kur|mix] [--kur-pct N] [--threads N]\n"
        "               [--duration S] [--count N] [--warmup S] [--rate R]\n"
        "               [--max-devices N] [--one-device] [--server-pid PID]\n"
        "               [--floor] [--keys N] [--newkey KEY.pem] [--uniform]\n"
        "               [--label TEXT] [--client lean|openssl] [--new-conn]\n"
        "\n"
        "  --devices DIR    factory output: DIR/<serial>/{cert,key,chain}.pem\n"
        "  --trusted FILE   operator root (validates the server's responses)\n"
        "  --mode           ir (ir+certConf, default), kur (every device does one\n"
        "                   untimed ir in the warm-up, then kur+certConf), mix\n"
        "                   (--kur-pct %% kur for devices that hold a certificate)\n"
        "  --threads N      workers, one keep-alive connection each (default 4)\n"
        "  --duration S     timed window (default 10), --count N caps transactions\n"
        "  --rate R         open loop: Poisson arrivals at R/s for --duration\n"
        "                   (--uniform: evenly spaced); latency counts from the\n"
        "                   scheduled arrival, so queueing is included\n"
        "  --warmup S       untimed run first (default 1)\n"
        "  --one-device     every transaction uses the first device\n"
        "  --server-pid P   read the server's CPU time (its child processes included)\n"
        "                   from /proc/P/stat\n"
        "  --floor          measure the crypto floor (sign/verify in-process)\n"
        "  --keys N         pre-generated new keys, reused round robin (default 2048)\n"
        "  --newkey FILE    one fixed new key for every request (a mock server\n"
        "                   that returns one fixed certificate needs this)\n"
        "  --client ENGINE  lean (default): bench/lib/lgcmp, cmpca's CMP layer,\n"
        "                   server certificates validated once; openssl: a fresh\n"
        "                   OSSL_CMP_CTX and OpenSSL's full client per transaction\n"
        "  --new-conn       a fresh TCP connection for every message (what a\n"
        "                   client arriving during a connection flood meets)\n"
        "Prints a report and one line 'RESULT key=value ...' for scripts.\n");
}

static int lg_parse_url(struct lg *g, const char *url)
{
    const char *p, *slash;
    char *end;
    long port;

    if (strncmp(url, "http://", 7) != 0)
        return 0;
    p = url + 7;
    slash = strchr(p, '/');
    if (slash == NULL || strchr(p, ':') == NULL || strchr(p, ':') > slash)
        return 0;
    if ((size_t)(strchr(p, ':') - p) >= sizeof(g->host))
        return 0;
    memcpy(g->host, p, (size_t)(strchr(p, ':') - p));
    g->host[strchr(p, ':') - p] = '\0';
    port = strtol(strchr(p, ':') + 1, &end, 10);
    if (end != slash || port <= 0 || port > 65535)
        return 0;
    g->port = (unsigned short)port;
    snprintf(g->path, sizeof(g->path), "%s", slash);
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "devices", required_argument, NULL, 'd' },
        { "trusted", required_argument, NULL, 'T' },
        { "mode", required_argument, NULL, 'm' },
        { "kur-pct", required_argument, NULL, 'K' },
        { "threads", required_argument, NULL, 't' },
        { "duration", required_argument, NULL, 'D' },
        { "count", required_argument, NULL, 'n' },
        { "warmup", required_argument, NULL, 'W' },
        { "rate", required_argument, NULL, 'r' },
        { "max-devices", required_argument, NULL, 'M' },
        { "one-device", no_argument, NULL, '1' },
        { "server-pid", required_argument, NULL, 'p' },
        { "floor", no_argument, NULL, 'f' },
        { "keys", required_argument, NULL, 'k' },
        { "uniform", no_argument, NULL, 'U' },
        { "label", required_argument, NULL, 'l' },
        { "newkey", required_argument, NULL, 'N' },
        { "client", required_argument, NULL, 'C' },
        { "new-conn", no_argument, NULL, 'X' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct lg g;
    struct lg_floor fl;
    struct lg_pct pct[LG_NKINDS];
    double s_cpu0, s_cpu1, c_cpu0, c_cpu1, mb0, mt0, mb1, mt1, t0, t1, wall;
    long ok = 0, ok_ir = 0, ok_kur = 0, fails[LG_NFAIL], e_tr = 0, e_oth = 0,
         e_st = 0, errs = 0, nsched = 0, notstarted = 0;
    double floor_s = 0, s_per = -1, cfloor_s = 0, c_per = -1;
    size_t i;
    int c, t, k, rc = 1;
    const char *url = NULL;

    memset(&g, 0, sizeof(g));
    memset(&fl, 0, sizeof(fl));
    memset(fails, 0, sizeof(fails));
    g.threads = 4;
    g.duration = 10;
    g.warmup = 1;
    g.mix_kur_pct = 50;
    g.keypool = 2048;
    g.label = "";
    g.lean = 1;
    pthread_mutex_init(&g.lock, NULL);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 'd': g.dev_dir = optarg; break;
        case 'T': g.trusted_file = optarg; break;
        case 'm':
            if (strcmp(optarg, "ir") == 0) g.mode = LG_IR;
            else if (strcmp(optarg, "kur") == 0) g.mode = LG_KUR;
            else if (strcmp(optarg, "mix") == 0) g.mode = LG_MIX;
            else { lg_usage(stderr); return 2; }
            break;
        case 'K': g.mix_kur_pct = atoi(optarg); break;
        case 't': g.threads = atoi(optarg); break;
        case 'D': g.duration = atof(optarg); break;
        case 'n': g.count = atol(optarg); break;
        case 'W': g.warmup = atof(optarg); break;
        case 'r': g.rate = atof(optarg); break;
        case 'M': g.max_devices = atol(optarg); break;
        case '1': g.one_device = 1; break;
        case 'p': g.server_pid = atol(optarg); break;
        case 'f': g.floor = 1; break;
        case 'k': g.keypool = atol(optarg); break;
        case 'U': g.uniform_arrivals = 1; break;
        case 'l': g.label = optarg; break;
        case 'N': g.newkey_file = optarg; break;
        case 'X': g.new_conn = 1; break;
        case 'C':
            if (strcmp(optarg, "lean") == 0) g.lean = 1;
            else if (strcmp(optarg, "openssl") == 0) g.lean = 0;
            else { lg_usage(stderr); return 2; }
            break;
        case 'h': lg_usage(stdout); return 0;
        default: lg_usage(stderr); return 2;
        }
    }
    if (url == NULL || g.dev_dir == NULL || g.trusted_file == NULL
        || !lg_parse_url(&g, url) || g.threads < 1
        || g.threads > LG_MAX_THREADS || g.duration <= 0 || g.duration > 3600
        || g.warmup < 0 || g.warmup > 600 || g.rate < 0 || g.rate > 1e6
        || g.keypool < 1 || g.keypool > 1000000 || g.count < 0
        || g.mix_kur_pct < 0 || g.mix_kur_pct > 100) {
        lg_usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((g.trusted_root = lg_read_cert(g.trusted_file)) == NULL) {
        fprintf(stderr, "loadgen: cannot read %s\n", g.trusted_file);
        return 1;
    }
    if (g.one_device)
        g.max_devices = 1;
    if (g.one_device && g.mode != LG_IR && g.threads > 1) {
        fprintf(stderr, "loadgen: --one-device with --mode kur/mix needs "
                "--threads 1 (the device's operator certificate is not shared)\n");
        return 2;
    }
    if (!lg_load_devices(&g))
        return 1;
    if (!g.one_device && g.ndev < (size_t)g.threads) {
        fprintf(stderr, "loadgen: %zu devices for %d threads: need one each\n",
                g.ndev, g.threads);
        return 1;
    }
    /* new keys: client work, done before the timed run */
    g.nkeys = g.newkey_file != NULL ? 1 : (size_t)g.keypool;
    if ((g.keys = calloc(g.nkeys, sizeof(*g.keys))) == NULL)
        return 1;
    if (g.newkey_file != NULL
        && (g.keys[0] = lg_read_key(g.newkey_file)) == NULL) {
        fprintf(stderr, "loadgen: cannot read %s\n", g.newkey_file);
        return 1;
    }
    for (i = g.newkey_file != NULL ? 1 : 0; i < g.nkeys; i++)
        if ((g.keys[i] = lg_keygen_like(X509_get0_pubkey(g.dev[0].cert))) == NULL)
            return 1;
    if (g.lean) {
        /* the lean engine's per-key and per-device state, made once */
        if ((g.lkeys = calloc(g.nkeys, sizeof(*g.lkeys))) == NULL
            || (g.trust = lgcmp_trust_new(g.trusted_root)) == NULL)
            return 1;
        for (i = 0; i < g.nkeys; i++)
            if ((g.lkeys[i] = lgcmp_key_new(g.keys[i])) == NULL)
                return 1;
        for (i = 0; i < g.ndev; i++)
            if ((g.dev[i].ident = lgcmp_ident_new(g.dev[i].cert, g.dev[i].key,
                                                  g.dev[i].chain)) == NULL) {
                fprintf(stderr, "loadgen: device %s: unusable credentials\n",
                        g.dev[i].name);
                return 1;
            }
    }
    if ((g.w = calloc((size_t)g.threads, sizeof(*g.w))) == NULL)
        return 1;
    for (t = 0; t < g.threads; t++) {
        g.w[t].g = &g;
        g.w[t].idx = t;
        g.w[t].fd = -1;
        if (g.lean && (g.w[t].lc = lgcmp_client_new(g.trust, lg_lean_transfer,
                                                    &g.w[t])) == NULL)
            return 1;
        g.w[t].rnd = 12345u + (unsigned)t;
        if ((g.w[t].rbuf = malloc(LG_MAX_BODY)) == NULL)
            return 1;
    }
    /* warm-up: connections, caches; in kur mode one ir per device */
    if (g.mode == LG_KUR || g.mode == LG_MIX) {
        g.init_pass = 1;
        lg_phase(&g, 0, 3600, 0, 0);
        g.init_pass = 0;
    }
    if (g.warmup > 0)
        lg_phase(&g, 0, g.warmup, 0, 0);
    if (g.floor) {
        lg_floor_measure(&g, &fl, 0.6);
        if (!fl.ok)
            fprintf(stderr, "loadgen: crypto floor not measured (no successful "
                    "transaction in the warm-up?)\n");
    }
    /* the timed window */
    if (g.rate > 0) {
        double off = 0;
        unsigned long long x = 88172645463325252ull;

        nsched = (long)(g.rate * g.duration);
        if (g.count > 0 && nsched > g.count)
            nsched = g.count;
        if (nsched < 1 || (g.sched = malloc((size_t)nsched * sizeof(double))) == NULL)
            return 1;
        for (k = 0; k < nsched; k++) {
            g.sched[k] = off;
            if (g.uniform_arrivals) {
                off += 1.0 / g.rate;
            } else {
                double u;

                x ^= x << 13; x ^= x >> 7; x ^= x << 17;    /* xorshift64 */
                u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
                off += -log(u) / g.rate;
            }
        }
    }
    s_cpu0 = g.server_pid > 0 ? lg_proc_cpu(g.server_pid) : -1;
    c_cpu0 = lg_self_cpu();
    lg_machine_cpu(&mb0, &mt0);
    t0 = lg_now();
    lg_phase(&g, 1, g.duration, g.rate > 0 ? nsched : g.count, g.rate > 0);
    t1 = lg_now();
    s_cpu1 = g.server_pid > 0 ? lg_proc_cpu(g.server_pid) : -1;
    c_cpu1 = lg_self_cpu();
    lg_machine_cpu(&mb1, &mt1);
    wall = t1 - t0;

    for (t = 0; t < g.threads; t++) {
        struct lg_worker *w = &g.w[t];

        ok += w->ok;
        ok_ir += w->ok_ir;
        ok_kur += w->ok_kur;
        for (k = 0; k < LG_NFAIL; k++)
            fails[k] += w->err_fail[k];
        e_tr += w->err_transport;
        e_oth += w->err_other;
        e_st += w->err_status;
    }
    errs = e_tr + e_oth + e_st;
    for (k = 0; k < LG_NFAIL; k++)
        errs += fails[k];
    for (k = 0; k < LG_NKINDS; k++)
        lg_percentiles(&g, k, &pct[k]);

    printf("== loadgen %s: client=%s mode=%s threads=%d devices=%zu %s%s\n",
           g.label, g.lean ? "lean" : "openssl",
           g.mode == LG_IR ? "ir" : g.mode == LG_KUR ? "kur" : "mix",
           g.threads, g.ndev, g.rate > 0 ? "open-loop" : "closed-loop",
           g.one_device ? " one-device" : "");
    if (g.rate > 0)
        printf("  offered %.0f/s (%s arrivals), %ld scheduled\n", g.rate,
               g.uniform_arrivals ? "uniform" : "Poisson", nsched);
    if (g.rate > 0) {
        long st = atomic_load(&g.started);

        notstarted = nsched - (st < nsched ? st : nsched);
        if (notstarted > 0)
            printf("  %ld arrivals not started before the window closed "
                   "(server too slow for the offered rate)\n", notstarted);
    }
    printf("  %ld transactions ok (%ld ir, %ld kur), %ld errors in %.2f s: "
           "%.1f transactions/s\n", ok, ok_ir, ok_kur, errs, wall,
           (double)ok / wall);
    if (errs > 0) {
        printf("  errors:");
        for (k = 0; k < LG_NFAIL; k++)
            if (fails[k] > 0)
                printf(" %s=%ld", lg_fail_name[k], fails[k]);
        if (e_tr > 0)
            printf(" transport=%ld", e_tr);
        if (e_st > 0)
            printf(" rejected(no failInfo)=%ld", e_st);
        if (e_oth > 0)
            printf(" client=%ld", e_oth);
        printf("\n");
    }
    printf("  latency ms          n      p50      p90      p99      max\n");
    for (k = 0; k < LG_NKINDS; k++)
        printf("  %-22s %7zu %8.2f %8.2f %8.2f %8.2f\n", lg_kind_name[k],
               pct[k].n, pct[k].p50, pct[k].p90, pct[k].p99, pct[k].max);
    if (s_cpu0 >= 0 && s_cpu1 >= 0 && ok > 0) {
        s_per = (s_cpu1 - s_cpu0) / (double)ok;
        printf("  server CPU %.2f s = %.1f%% of one core, %.3f ms per "
               "transaction\n", s_cpu1 - s_cpu0,
               100.0 * (s_cpu1 - s_cpu0) / wall, s_per * 1e3);
    }
    if (ok > 0)
        c_per = (c_cpu1 - c_cpu0) / (double)ok;
    if (ok > 0)
        printf("  client CPU %.2f s, %.3f ms per transaction; machine busy "
               "%.0f%% of %ld cores\n", c_cpu1 - c_cpu0,
               (c_cpu1 - c_cpu0) / (double)ok * 1e3,
               mt1 > mt0 ? 100.0 * (mb1 - mb0) / (mt1 - mt0) : 0.0,
               sysconf(_SC_NPROCESSORS_ONLN));
    if (g.lean) {
        long nval = 0;

        for (t = 0; t < g.threads; t++)
            nval += lgcmp_client_get_validations(g.w[t].lc);
        printf("  lean client: %ld certificate path validation(s) in all "
               "(each server certificate once per worker)\n", nval);
    }
    if (fl.ok) {
        printf("  crypto floor (one core, 500-octet input):\n");
        printf("    CA key     %-18s sign %8.0f/s\n", fl.ca.desc,
               1 / fl.ca.sign_s);
        printf("    device key %-18s verify %6.0f/s sign %6.0f/s\n",
               fl.dev.desc, 1 / fl.dev.verify_s, 1 / fl.dev.sign_s);
        printf("    vendor CA  %-18s verify %6.0f/s\n", fl.vca.desc,
               1 / fl.vca.verify_s);
        printf("    new key    %-18s verify %6.0f/s sign %6.0f/s\n",
               fl.newk.desc, 1 / fl.newk.verify_s, 1 / fl.newk.sign_s);
        printf("    CA key (client verifies) %-4s verify %6.0f/s\n", "",
               1 / fl.ca.verify_s);
        printf("    floor ir+certConf %.3f ms (4 verifies + 3 signs), "
               "kur+certConf %.3f ms (3 verifies + 3 signs)\n",
               fl.ir_s * 1e3, fl.kur_s * 1e3);
        if (ok > 0)
            floor_s = ((double)ok_ir * fl.ir_s + (double)ok_kur * fl.kur_s)
                      / (double)ok;
        if (s_per > 0 && floor_s > 0)
            printf("  overhead ratio: server CPU per transaction / crypto "
                   "floor = %.3f / %.3f ms = %.2f\n", s_per * 1e3,
                   floor_s * 1e3, s_per / floor_s);
        printf("    client floor ir+certConf %.3f ms, kur+certConf %.3f ms "
               "(3 signs + 3 verifies)\n", fl.cl_ir_s * 1e3,
               fl.cl_kur_s * 1e3);
        if (ok > 0)
            cfloor_s = ((double)ok_ir * fl.cl_ir_s
                        + (double)ok_kur * fl.cl_kur_s) / (double)ok;
        if (c_per > 0 && cfloor_s > 0)
            printf("  client overhead ratio: client CPU per transaction / "
                   "client floor = %.3f / %.3f ms = %.2f\n", c_per * 1e3,
                   cfloor_s * 1e3, c_per / cfloor_s);
    }
    if (g.server_pid > 0)
        printf("  server RSS %ld kB\n", lg_proc_rss_kb(g.server_pid));
    printf("RESULT label=%s client=%s ok=%ld errors=%ld secs=%.3f tps=%.1f "
           "txn_p50=%.3f txn_p90=%.3f txn_p99=%.3f txn_max=%.3f "
           "svc_p50=%.3f svc_p99=%.3f "
           "req_p50=%.3f req_p90=%.3f req_p99=%.3f req_max=%.3f "
           "conf_p50=%.3f conf_p90=%.3f conf_p99=%.3f conf_max=%.3f "
           "server_cpu_ms=%.4f client_cpu_ms=%.4f floor_ms=%.4f ratio=%.3f "
           "ca_sign_s=%.0f p256_verify_s=%.0f rss_kb=%ld not_started=%ld "
           "busy_pct=%.0f our_pct=%.0f client_floor_ms=%.4f "
           "client_ratio=%.3f\n",
           g.label[0] != '\0' ? g.label : "-", g.lean ? "lean" : "openssl",
           ok, errs, wall,
           (double)ok / wall,
           pct[LG_K_TXN].p50, pct[LG_K_TXN].p90, pct[LG_K_TXN].p99,
           pct[LG_K_TXN].max, pct[LG_K_TXN_SVC].p50, pct[LG_K_TXN_SVC].p99,
           pct[LG_K_REQ].p50, pct[LG_K_REQ].p90, pct[LG_K_REQ].p99,
           pct[LG_K_REQ].max, pct[LG_K_CONF].p50, pct[LG_K_CONF].p90,
           pct[LG_K_CONF].p99, pct[LG_K_CONF].max,
           s_per > 0 ? s_per * 1e3 : -1.0, c_per > 0 ? c_per * 1e3 : -1.0,
           floor_s * 1e3, s_per > 0 && floor_s > 0 ? s_per / floor_s : -1.0,
           fl.ok ? 1 / fl.ca.sign_s : 0.0, fl.ok ? 1 / fl.dev.verify_s : 0.0,
           g.server_pid > 0 ? lg_proc_rss_kb(g.server_pid) : -1L, notstarted,
           mt1 > mt0 ? 100.0 * (mb1 - mb0) / (mt1 - mt0) : 0.0,
           100.0 * ((s_cpu1 > s_cpu0 ? s_cpu1 - s_cpu0 : 0) + c_cpu1 - c_cpu0)
           / (wall * (double)sysconf(_SC_NPROCESSORS_ONLN)),
           cfloor_s * 1e3, c_per > 0 && cfloor_s > 0 ? c_per / cfloor_s : -1.0);
    rc = ok > 0 ? 0 : 1;
    /* cleanup */
    for (t = 0; t < g.threads; t++) {
        if (g.w[t].fd >= 0)
            close(g.w[t].fd);
        free(g.w[t].rbuf);
        lgcmp_client_free(g.w[t].lc);
        for (k = 0; k < LG_NKINDS; k++)
            free(g.w[t].lat[k].v);
    }
    free(g.w);
    for (i = 0; i < g.nkeys; i++) {
        EVP_PKEY_free(g.keys[i]);
        if (g.lkeys != NULL)
            lgcmp_key_free(g.lkeys[i]);
    }
    free(g.keys);
    free(g.lkeys);
    for (i = 0; i < g.ndev; i++) {
        X509_free(g.dev[i].cert);
        EVP_PKEY_free(g.dev[i].key);
        sk_X509_pop_free(g.dev[i].chain, X509_free);
        X509_free(g.dev[i].op_cert);
        EVP_PKEY_free(g.dev[i].op_key);
        lgcmp_ident_free(g.dev[i].ident);
        lgcmp_ident_free(g.dev[i].op_ident);
    }
    free(g.dev);
    free(g.sched);
    X509_free(g.trusted_root);
    lgcmp_trust_free(g.trust);
    EVP_PKEY_free(g.ca_pub);
    EVP_PKEY_free(g.op_pub);
    return rc;
}
