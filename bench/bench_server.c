/*
 * bench_server: the server core's own CPU per enrollment (ir + certConf),
 * in process, per way a request arrives: a device directly (3GPP), an RA
 * signing for a device, and an RA forwarding the device's own request in
 * a nested wrapper. The lean client (bench/lib/lgcmp) builds and checks
 * every message; only the thread CPU time spent inside server_handle() is
 * counted, so HTTP and the client do not blur the comparison. Rounds of
 * the three modes alternate; medians are printed, with the ratios to the
 * direct mode taken in the same run.
 *
 * usage: bench_server -c cmpca.conf --devices DIR --trusted ROOT.pem
 *        --ra-cert RA.pem --ra-key RA.key [--ra-chain CHAIN.pem]
 *        [--rounds N] [--per-round M] [--only direct|ra|nested]
 * (--only runs one mode, e.g. under callgrind --toggle-collect=server_handle)
 */
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "conf/conf.h"
#include "lgcmp.h"
#include "server/server.h"
#include "store/store.h"
#include "util/log.h"

#include <dirent.h>
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum bs_mode { BS_DIRECT = 0, BS_RA, BS_NESTED, BS_NMODES };
static const char *const bs_names[BS_NMODES] = { "direct", "ra", "nested" };
static const char *const bs_alias[BS_NMODES] = { "3gpp", "ra", "ra" };

struct bs {
    SERVER *srv;
    enum bs_mode mode;
    X509 *ra_cert;
    EVP_PKEY *ra_key;
    STACK_OF(X509) *ra_chain;
    unsigned char *rsp;          /* last response (borrowed by lgcmp) */
    double cpu_us;               /* server CPU in this round */
    int failed;
};

static double bs_cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The RA's wrapper around one request (what an RA forwarding it sends). */
static int bs_wrap(struct bs *b, const unsigned char *req, size_t len,
                   unsigned char **out, size_t *out_len)
{
    STACK_OF(CMP_MSG) *inner = sk_CMP_MSG_new_null();
    const unsigned char *p = req;
    CMP_MSG *one = d2i_CMP_MSG(NULL, &p, (long)len), *w = NULL;
    int ok = 0;

    if (inner == NULL || one == NULL || !sk_CMP_MSG_push(inner, one))
        goto end;
    one = NULL;
    if ((w = cmp_nested_new(inner, 1, b->ra_cert, b->ra_chain, time(NULL)))
        == NULL)
        goto end;
    inner = NULL;
    ok = cmp_protect_sign(w, cmp_protect_sign_pkey_fn, b->ra_key)
        && cmp_msg_encode(w, out, out_len);
 end:
    CMP_MSG_free(one);
    CMP_MSG_free(w);
    sk_CMP_MSG_pop_free(inner, CMP_MSG_free);
    return ok;
}

/* lgcmp_transfer_fn: hands the request to the server in this thread. */
static int bs_transfer(void *arg, int type, const unsigned char *req,
                       size_t req_len, const unsigned char **rsp,
                       size_t *rsp_len)
{
    struct bs *b = arg;
    struct server_request sreq;
    struct server_response srsp;
    unsigned char *wrapped = NULL;
    size_t wlen = 0;
    double t0;

    if (b->mode == BS_NESTED) {
        if (!bs_wrap(b, req, req_len, &wrapped, &wlen))
            return 0;
        req = wrapped;
        req_len = wlen;
    }
    memset(&sreq, 0, sizeof(sreq));
    sreq.alias = bs_alias[b->mode];
    sreq.der = req;
    sreq.len = req_len;
    sreq.peer = "bench";
    t0 = bs_cpu_now();
    server_handle(b->srv, &sreq, &srsp);
    b->cpu_us += bs_cpu_now() - t0;
    OPENSSL_free(wrapped);
    free(b->rsp);
    b->rsp = srsp.der;
    *rsp = srsp.der;
    *rsp_len = srsp.len;
    return srsp.der != NULL;
}

static X509 *bs_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x = fp != NULL ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;

    if (fp != NULL)
        fclose(fp);
    return x;
}

static EVP_PKEY *bs_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k = fp != NULL ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;

    if (fp != NULL)
        fclose(fp);
    return k;
}

static STACK_OF(X509) *bs_certs(const char *path)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    FILE *fp = fopen(path, "r");
    X509 *x;

    while (fp != NULL && sk != NULL
           && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(sk, x))
            X509_free(x);
    if (fp != NULL)
        fclose(fp);
    ERR_clear_error();
    return sk;
}

/* Loads up to |max| device identities from the factory output |dir|. */
static int bs_devices(const char *dir, LGCMP_IDENT **ids, int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    int n = 0;

    while (d != NULL && n < max && (e = readdir(d)) != NULL) {
        X509 *c;
        EVP_PKEY *k;
        STACK_OF(X509) *ch;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s/cert.pem", dir, e->d_name);
        if ((c = bs_cert(p)) == NULL)
            continue;
        snprintf(p, sizeof(p), "%s/%s/key.pem", dir, e->d_name);
        k = bs_key(p);
        snprintf(p, sizeof(p), "%s/%s/chain.pem", dir, e->d_name);
        ch = bs_certs(p);
        if (k != NULL && (ids[n] = lgcmp_ident_new(c, k, ch)) != NULL)
            n++;
        X509_free(c);
        EVP_PKEY_free(k);
        sk_X509_pop_free(ch, X509_free);
    }
    if (d != NULL)
        closedir(d);
    return n;
}

static int bs_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double bs_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bs_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "devices", required_argument, NULL, 'd' },
        { "trusted", required_argument, NULL, 't' },
        { "ra-cert", required_argument, NULL, 'r' },
        { "ra-key", required_argument, NULL, 'k' },
        { "ra-chain", required_argument, NULL, 'C' },
        { "rounds", required_argument, NULL, 'n' },
        { "per-round", required_argument, NULL, 'm' },
        { "only", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 }
    };
    const char *cfg = NULL, *devdir = NULL, *trusted = NULL, *rac = NULL;
    const char *rak = NULL, *rach = NULL;
    int rounds = 7, per = 100, ndev, i, r, m, c, ret = 1, only = -1;
    struct conf *conf = NULL;
    struct store_conf sc;
    STORE *st = NULL;
    struct bs b;
    LGCMP_IDENT *devs[512], *ra_id = NULL;
    LGCMP_TRUST *trust = NULL;
    LGCMP_CLIENT *cl = NULL;
    LGCMP_KEY *newkey = NULL;
    EVP_PKEY *nk = NULL;
    X509 *root = NULL;
    double *res[BS_NMODES], med[BS_NMODES];
    char err[512];
    long done[BS_NMODES] = { 0 };

    memset(&b, 0, sizeof(b));
    memset(devs, 0, sizeof(devs));
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg = optarg; break;
        case 'd': devdir = optarg; break;
        case 't': trusted = optarg; break;
        case 'r': rac = optarg; break;
        case 'k': rak = optarg; break;
        case 'C': rach = optarg; break;
        case 'n': rounds = atoi(optarg); break;
        case 'm': per = atoi(optarg); break;
        case 'o':
            for (only = BS_NMODES - 1; only >= 0; only--)
                if (strcmp(optarg, bs_names[only]) == 0)
                    break;
            if (only < 0) {
                fprintf(stderr, "bench_server: --only direct|ra|nested\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: see the comment atop bench/bench_server.c\n");
            return 2;
        }
    }
    if (cfg == NULL || devdir == NULL || trusted == NULL || rac == NULL
        || rak == NULL || rounds < 1 || per < 1) {
        fprintf(stderr, "bench_server: -c, --devices, --trusted, --ra-cert, "
                "--ra-key are required\n");
        return 2;
    }
    log_set_level(LOG_ERROR);
    for (i = 0; i < BS_NMODES; i++)
        res[i] = calloc((size_t)rounds, sizeof(double));
    store_conf_init(&sc);
    if (!conf_load(cfg, &conf, err, sizeof(err))
        || !store_conf_load(conf, &sc, err, sizeof(err))
        || store_open(&sc, &st, err, sizeof(err)) != STORE_OK
        || (b.srv = server_new(conf, st, err, sizeof(err))) == NULL) {
        fprintf(stderr, "bench_server: %s\n", err);
        goto end;
    }
    b.ra_cert = bs_cert(rac);
    b.ra_key = bs_key(rak);
    b.ra_chain = rach != NULL ? bs_certs(rach) : NULL;
    root = bs_cert(trusted);
    ndev = bs_devices(devdir, devs, (int)(sizeof(devs) / sizeof(devs[0])));
    nk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (b.ra_cert == NULL || b.ra_key == NULL || root == NULL || ndev == 0
        || nk == NULL || (newkey = lgcmp_key_new(nk)) == NULL
        || (ra_id = lgcmp_ident_new(b.ra_cert, b.ra_key, b.ra_chain)) == NULL
        || (trust = lgcmp_trust_new(root)) == NULL
        || (cl = lgcmp_client_new(trust, bs_transfer, &b)) == NULL) {
        fprintf(stderr, "bench_server: cannot load the credentials\n");
        goto end;
    }
    root = NULL;
    /* rounds of the three modes alternate; the first round warms up */
    for (r = -1; r < rounds; r++) {
        for (m = 0; m < BS_NMODES; m++) {
            if (only >= 0 && m != only) {
                if (r >= 0)
                    res[m][r] = 0;
                continue;
            }
            b.mode = (enum bs_mode)m;
            b.cpu_us = 0;
            for (i = 0; i < per; i++) {
                struct lgcmp_result lr;

                memset(&lr, 0, sizeof(lr));
                if (!lgcmp_enroll(cl, 0, m == BS_RA ? ra_id : devs[i % ndev],
                                  newkey, &lr)) {
                    fprintf(stderr, "bench_server: %s enrollment failed: %s\n",
                            bs_names[m], lr.text);
                    lgcmp_result_clear(&lr);
                    goto end;
                }
                lgcmp_result_clear(&lr);
                done[m]++;
            }
            if (r >= 0)
                res[m][r] = b.cpu_us / per;
        }
    }
    for (m = 0; m < BS_NMODES; m++)
        med[m] = bs_median(res[m], rounds);
    printf("server CPU per ir+certConf, in process, median of %d rounds of %d:\n",
           rounds, per);
    for (m = 0; m < BS_NMODES; m++)
        printf("  %-7s %8.1f us  (%.2fx direct)\n", bs_names[m], med[m],
               med[m] / med[BS_DIRECT]);
    printf("RESULT direct_us=%.1f ra_us=%.1f nested_us=%.1f ra_ratio=%.3f "
           "nested_ratio=%.3f enrollments=%ld\n", med[BS_DIRECT], med[BS_RA],
           med[BS_NESTED], med[BS_RA] / med[BS_DIRECT],
           med[BS_NESTED] / med[BS_DIRECT],
           done[BS_DIRECT] + done[BS_RA] + done[BS_NESTED]);
    ret = 0;
 end:
    ERR_print_errors_fp(stderr);
    lgcmp_client_free(cl);
    lgcmp_trust_free(trust);
    lgcmp_ident_free(ra_id);
    for (i = 0; i < (int)(sizeof(devs) / sizeof(devs[0])); i++)
        lgcmp_ident_free(devs[i]);
    lgcmp_key_free(newkey);
    EVP_PKEY_free(nk);
    X509_free(root);
    X509_free(b.ra_cert);
    EVP_PKEY_free(b.ra_key);
    sk_X509_pop_free(b.ra_chain, X509_free);
    free(b.rsp);
    server_free(b.srv);
    store_close(st);
    store_conf_clear(&sc);
    conf_free(conf);
    for (i = 0; i < BS_NMODES; i++)
        free(res[i]);
    return ret;
}
