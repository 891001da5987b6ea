/*
 * OCSP load generator: POSTs pre-built OCSPRequests (random serials from a
 * list, each with a nonce of its own, or none with --no-nonce) over
 * keep-alive HTTP/1.1 connections (or one connection per request when the
 * responder closes), closed loop, and
 * reports responses/s, latency and the responder's CPU per response (its
 * child processes included: cmpca's signer process); checks
 * every response's status and a sample's signature and nonce.
 * Usage: bench_ocsp --port P --issuer CA.pem --serials FILE [--threads N]
 *        [--seconds S] [--pid PID] [--requests N] [--no-nonce]
 */
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BO_MAX_THREADS 256
#define BO_MAX_RSP     65536
#define BO_MAX_LAT     (8L * 1024 * 1024)

struct bo_req {
    unsigned char *der;
    int len;
};

struct bo {
    unsigned short port;
    const char *path;
    struct bo_req *reqs;
    long nreqs;
    double seconds;
    atomic_int stop;
    atomic_long done, errors, reconnects, good, revoked, unknown, bad;
    uint32_t *lat;                 /* microseconds, all threads */
    atomic_long nlat;
    X509 *issuer;
    X509_STORE *trust;
    atomic_long verified, verify_fail;
    int no_nonce;
};

struct bo_worker {
    struct bo *b;
    int id;
    int fd;
    unsigned seed;
};

static double bo_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bo_connect(unsigned short port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one HTTP response into |body|; returns the body length, -1 on
 * error; *close set when the server ends the connection after it. */
static long bo_read_rsp(int fd, unsigned char *buf, size_t cap,
                        unsigned char **body, int *closeit)
{
    size_t have = 0;
    char *hend = NULL, *cl;
    long blen = -1, hl;
    ssize_t r;

    *closeit = 0;
    while (hend == NULL) {
        if (have == cap - 1)
            return -1;
        r = read(fd, buf + have, cap - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        hend = strstr((char *)buf, "\r\n\r\n");
    }
    hl = hend + 4 - (char *)buf;
    *hend = '\0';
    if (strncmp((char *)buf, "HTTP/1.1 200", 12) != 0
        && strncmp((char *)buf, "HTTP/1.0 200", 12) != 0)
        return -1;
    if ((cl = strcasestr((char *)buf, "\r\nContent-Length:")) != NULL)
        blen = strtol(cl + 17, NULL, 10);
    if (strcasestr((char *)buf, "\r\nConnection: close") != NULL
        || strncmp((char *)buf, "HTTP/1.0", 8) == 0)
        *closeit = 1;
    if (blen < 0) {                     /* until EOF */
        *closeit = 1;
        while ((r = read(fd, buf + have, cap - have)) > 0)
            have += (size_t)r;
        blen = (long)have - hl;
    }
    if (blen < 0 || (size_t)(hl + blen) > cap)
        return -1;
    while (have < (size_t)(hl + blen)) {
        r = read(fd, buf + have, (size_t)(hl + blen) - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    *body = buf + hl;
    return blen;
}

/* Checks one response: successful, status per CertID, for a sample the
 * signature (against the issuer) and the nonce. */
static void bo_check(struct bo *b, const unsigned char *der, long len,
                     const struct bo_req *rq, int full)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, len);
    OCSP_BASICRESP *bs = NULL;
    OCSP_SINGLERESP *sr;
    int st, reason;

    if (rsp == NULL || OCSP_response_status(rsp) != 0
        || (bs = OCSP_response_get1_basic(rsp)) == NULL
        || (sr = OCSP_resp_get0(bs, 0)) == NULL) {
        atomic_fetch_add(&b->bad, 1);
        goto end;
    }
    st = OCSP_single_get0_status(sr, &reason, NULL, NULL, NULL);
    if (st == V_OCSP_CERTSTATUS_GOOD)
        atomic_fetch_add(&b->good, 1);
    else if (st == V_OCSP_CERTSTATUS_REVOKED)
        atomic_fetch_add(&b->revoked, 1);
    else
        atomic_fetch_add(&b->unknown, 1);
    if (full) {
        STACK_OF(X509) *certs = sk_X509_new_null();
        const unsigned char *q = rq->der;
        OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &q, rq->len);

        sk_X509_push(certs, b->issuer);
        if (req != NULL && OCSP_basic_verify(bs, certs, b->trust, 0) > 0
            && OCSP_check_nonce(req, bs) == (b->no_nonce ? 2 : 1))
            atomic_fetch_add(&b->verified, 1);
        else
            atomic_fetch_add(&b->verify_fail, 1);
        OCSP_REQUEST_free(req);
        sk_X509_free(certs);
    }
 end:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(rsp);
    ERR_clear_error();
}

static void *bo_run(void *arg)
{
    struct bo_worker *w = arg;
    struct bo *b = w->b;
    unsigned char *buf = malloc(BO_MAX_RSP + 1), *body;
    char hdr[256];
    long k = 0;

    w->fd = -1;
    while (!atomic_load(&b->stop) && buf != NULL) {
        const struct bo_req *rq = &b->reqs[rand_r(&w->seed) % b->nreqs];
        double t0 = bo_now();
        int hl, closeit = 0;
        long n, li;

        if (w->fd < 0) {
            if ((w->fd = bo_connect(b->port)) < 0) {
                atomic_fetch_add(&b->errors, 1);
                usleep(1000);
                continue;
            }
            atomic_fetch_add(&b->reconnects, 1);
        }
        hl = snprintf(hdr, sizeof(hdr), "POST %s HTTP/1.1\r\nHost: 127.0.0.1"
                      "\r\nContent-Type: application/ocsp-request\r\n"
                      "Content-Length: %d\r\n\r\n", b->path, rq->len);
        memcpy(buf, hdr, (size_t)hl);
        memcpy(buf + hl, rq->der, (size_t)rq->len);
        if (write(w->fd, buf, (size_t)(hl + rq->len)) != hl + rq->len
            || (n = bo_read_rsp(w->fd, buf, BO_MAX_RSP, &body, &closeit)) < 0) {
            if (!atomic_load(&b->stop))
                atomic_fetch_add(&b->errors, 1);
            close(w->fd);
            w->fd = -1;
            continue;
        }
        if (closeit) {
            close(w->fd);
            w->fd = -1;
        }
        bo_check(b, body, n, rq, (k++ % 64) == 0);
        atomic_fetch_add(&b->done, 1);
        li = atomic_fetch_add(&b->nlat, 1);
        if (li < BO_MAX_LAT)
            b->lat[li] = (uint32_t)((bo_now() - t0) * 1e6);
    }
    if (w->fd >= 0)
        close(w->fd);
    free(buf);
    return NULL;
}

/* utime+stime of |pid| alone in seconds (0 when unreadable). */
static double bo_cpu_one(long pid)
{
    char path[64], line[2048], *p;
    unsigned long ut = 0, stt = 0;
    FILE *fp;
    int i;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(line, sizeof(line), fp) == NULL) {
        fclose(fp);
        return 0;
    }
    fclose(fp);
    p = strrchr(line, ')');
    for (i = 0; p != NULL && i < 12; i++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, " %lu %lu", &ut, &stt) != 2)
        return 0;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

/* utime+stime of |pid| and of the children its main thread forked (the
 * signer process of cmpca serve), in seconds. */
static double bo_cpu(long pid)
{
    char path[96];
    double t = bo_cpu_one(pid);
    long child;
    FILE *fp;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", pid, pid);
    if ((fp = fopen(path, "r")) == NULL)
        return t;
    while (fscanf(fp, "%ld", &child) == 1)
        t += bo_cpu_one(child);
    fclose(fp);
    return t;
}

static int bo_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Builds |n| requests for serials read from |path| (hex, one a line). */
static int bo_build(struct bo *b, const char *path, long n)
{
    FILE *fp = fopen(path, "r");
    char line[256];
    char **ser = NULL;
    long ns = 0, cap = 0, i;
    int ok = 0;

    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        line[strcspn(line, "\r\n \t")] = '\0';
        if (line[0] == '\0')
            continue;
        if (ns == cap) {
            cap = cap ? cap * 2 : 1024;
            ser = realloc(ser, (size_t)cap * sizeof(*ser));
        }
        ser[ns++] = strdup(line);
    }
    fclose(fp);
    if (ns == 0)
        goto end;
    b->reqs = calloc((size_t)n, sizeof(*b->reqs));
    for (i = 0; i < n; i++) {
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        BIGNUM *bn = NULL;
        ASN1_INTEGER *ai;
        OCSP_CERTID *id;

        BN_hex2bn(&bn, ser[(unsigned long)rand() % (unsigned long)ns]);
        ai = BN_to_ASN1_INTEGER(bn, NULL);
        id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(b->issuer),
                              X509_get0_pubkey_bitstr(b->issuer), ai);
        if (req == NULL || id == NULL || !OCSP_request_add0_id(req, id)
            || (!b->no_nonce && !OCSP_request_add1_nonce(req, NULL, 16)))
            goto end;
        b->reqs[i].len = i2d_OCSP_REQUEST(req, &b->reqs[i].der);
        OCSP_REQUEST_free(req);
        ASN1_INTEGER_free(ai);
        BN_free(bn);
    }
    b->nreqs = n;
    ok = 1;
 end:
    for (i = 0; i < ns; i++)
        free(ser[i]);
    free(ser);
    return ok;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "path", required_argument, NULL, 'u' },
        { "issuer", required_argument, NULL, 'i' },
        { "trust", required_argument, NULL, 'T' },
        { "serials", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },
        { "seconds", required_argument, NULL, 'd' },
        { "pid", required_argument, NULL, 'P' },
        { "requests", required_argument, NULL, 'n' },
        { "label", required_argument, NULL, 'l' },
        { "no-nonce", no_argument, NULL, 'N' },
        { NULL, 0, NULL, 0 }
    };
    struct bo b;
    struct bo_worker w[BO_MAX_THREADS];
    pthread_t th[BO_MAX_THREADS];
    const char *issuer = NULL, *serials = NULL, *trust = NULL, *label = "run";
    long pid = 0, nreq = 20000, i, nl;
    int threads = 8, c;
    double t0, t1, c0, c1, rate, cpu_us;
    FILE *fp;

    memset(&b, 0, sizeof(b));
    b.path = "/ocsp";
    b.seconds = 5;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': b.port = (unsigned short)atoi(optarg); break;
        case 'u': b.path = optarg; break;
        case 'i': issuer = optarg; break;
        case 'T': trust = optarg; break;
        case 's': serials = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'd': b.seconds = atof(optarg); break;
        case 'P': pid = atol(optarg); break;
        case 'n': nreq = atol(optarg); break;
        case 'l': label = optarg; break;
        case 'N': b.no_nonce = 1; break;
        default:
            fprintf(stderr, "usage: bench_ocsp --port P --issuer CA.pem "
                    "--trust ROOT.pem --serials FILE [--threads N] "
                    "[--seconds S] [--pid PID] [--requests N] [--label L] "
                    "[--no-nonce]\n");
            return 2;
        }
    }
    if (b.port == 0 || issuer == NULL || serials == NULL || threads < 1
        || threads > BO_MAX_THREADS || nreq < 1) {
        fprintf(stderr, "bench_ocsp: --port, --issuer and --serials needed\n");
        return 2;
    }
    if ((fp = fopen(issuer, "r")) == NULL
        || (b.issuer = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
        fprintf(stderr, "bench_ocsp: cannot read %s\n", issuer);
        return 1;
    }
    fclose(fp);
    b.trust = X509_STORE_new();
    if (trust != NULL && X509_STORE_load_file(b.trust, trust) != 1) {
        fprintf(stderr, "bench_ocsp: cannot read %s\n", trust);
        return 1;
    }
    srand((unsigned)time(NULL));
    if (!bo_build(&b, serials, nreq)) {
        fprintf(stderr, "bench_ocsp: cannot build requests from %s\n", serials);
        return 1;
    }
    b.lat = malloc(BO_MAX_LAT * sizeof(*b.lat));
    c0 = bo_cpu(pid);
    t0 = bo_now();
    for (i = 0; i < threads; i++) {
        w[i].b = &b;
        w[i].id = (int)i;
        w[i].seed = (unsigned)(i * 7919 + 1);
        pthread_create(&th[i], NULL, bo_run, &w[i]);
    }
    usleep((useconds_t)(b.seconds * 1e6));
    atomic_store(&b.stop, 1);
    t1 = bo_now();
    c1 = bo_cpu(pid);
    for (i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    nl = atomic_load(&b.nlat);
    if (nl > BO_MAX_LAT)
        nl = BO_MAX_LAT;
    qsort(b.lat, (size_t)nl, sizeof(*b.lat), bo_cmp_u32);
    rate = (double)atomic_load(&b.done) / (t1 - t0);
    cpu_us = atomic_load(&b.done) > 0
        ? (c1 - c0) * 1e6 / (double)atomic_load(&b.done) : 0;
    printf("%s: %.0f responses/s, %ld done, %ld errors, %ld connections; "
           "latency us p50 %u p90 %u p99 %u; server CPU %.1f us/response "
           "(%.2f cores); good %ld revoked %ld unknown %ld bad %ld; "
           "signature+nonce verified %ld failed %ld\n",
           label, rate, atomic_load(&b.done), atomic_load(&b.errors),
           atomic_load(&b.reconnects),
           nl ? b.lat[nl / 2] : 0, nl ? b.lat[nl * 9 / 10] : 0,
           nl ? b.lat[nl * 99 / 100] : 0, cpu_us, (c1 - c0) / (t1 - t0),
           atomic_load(&b.good), atomic_load(&b.revoked),
           atomic_load(&b.unknown), atomic_load(&b.bad),
           atomic_load(&b.verified), atomic_load(&b.verify_fail));
    return atomic_load(&b.bad) > 0 || atomic_load(&b.verify_fail) > 0
           || atomic_load(&b.done) == 0;
}
