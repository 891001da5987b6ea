/*
 * The signer process's round trip alone: a P-256 key signs a
 * TBSCertificate-sized buffer in this process (ca_signer_sign_buf on the
 * local key) and through a forked signer process (the real signer_serve_fd
 * loop and client over socketpairs, its log written to a file as `cmpca
 * serve` does: buffered, flushed every 50 ms; BENCH_RT_SYNCLOG=1 for one
 * write per line), alternating, from T threads. Prints per mode the
 * signatures/s and the CPU per signature of both processes together; the
 * difference is what one round trip costs.
 *
 * Usage: bench_signer_rt [SECONDS_PER_RUN (1)] [THREADS (4)] [CHANNELS (4)]
 *        [RUNS (3)] [LOGFILE (a temporary file)]
 */
#include "ca/ca_key.h"
#include "ca/ca_signer.h"
#include "signer/signer.h"
#include "signer/signer_int.h"
#include "util/log.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RT_MAXCH 64
#define RT_MAXTH 64
#define RT_TBS 420

static atomic_int rt_stop;
static atomic_long rt_ops;

struct rt_serve {
    const SIGNER_KEYS *keys;
    int fd;
    size_t idx;
};

static void *rt_serve_main(void *arg)
{
    struct rt_serve *s = arg;

    if (getenv("BENCH_RT_NOAFFINITY") == NULL)
        signer_chan_pin(s->idx);
    signer_serve_fd(s->keys, s->fd);
    return NULL;
}

/* Writes the buffered log lines every 50 ms, as `cmpca serve` does. */
static void *rt_flusher(void *arg)
{
    struct timespec ts = { 0, 50 * 1000 * 1000 };

    (void)arg;
    for (;;) {
        nanosleep(&ts, NULL);
        signer_log_flush();
    }
    return NULL;
}

/* The child: serves |n| channels until they close. */
static void rt_child(SIGNER_KEYS *keys, const int *fds, size_t n,
                     const char *logfile)
{
    struct rt_serve sv[RT_MAXCH];
    pthread_t th[RT_MAXCH], fl;
    FILE *lf = fopen(logfile, "a");
    size_t i;

    if (lf != NULL)
        log_set_stream(lf);
    /* BENCH_RT_SYNCLOG=1: one write per log line (signer_log_flush_ms = 0) */
    if (lf != NULL && getenv("BENCH_RT_SYNCLOG") == NULL) {
        signer_log_set_buffered(fileno(lf));
        pthread_create(&fl, NULL, rt_flusher, NULL);
    }
    /* BENCH_RT_NOLOG=1: without the signer's log lines, to see their cost */
    log_set_level(getenv("BENCH_RT_NOLOG") != NULL ? LOG_ERROR : LOG_INFO);
    for (i = 0; i < n; i++) {
        sv[i].keys = keys;
        sv[i].fd = fds[i];
        sv[i].idx = i;
        pthread_create(&th[i], NULL, rt_serve_main, &sv[i]);
    }
    for (i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    _exit(0);
}

static void *rt_worker(void *arg)
{
    const CA_SIGNER *s = arg;
    unsigned char tbs[RT_TBS], sig[512];
    size_t siglen;
    long n = 0;

    memset(tbs, 0x5a, sizeof(tbs));
    while (!atomic_load(&rt_stop)) {
        tbs[n % sizeof(tbs)]++;
        siglen = sizeof(sig);
        if (!ca_signer_sign_buf(s, tbs, sizeof(tbs), sig, &siglen)) {
            fprintf(stderr, "bench_signer_rt: signature failed\n");
            exit(1);
        }
        n++;
    }
    atomic_fetch_add(&rt_ops, n);
    return NULL;
}

static double rt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process and of process |child| so far. */
static double rt_cpu(pid_t child)
{
    struct rusage ru;
    double t;
    char path[64];
    unsigned long ut = 0, st = 0;
    FILE *f;

    getrusage(RUSAGE_SELF, &ru);
    t = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
        + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
    if ((f = fopen(path, "r")) != NULL) {
        /* fields 14 and 15, after the ")" of the name */
        if (fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                   "%*u %lu %lu", &ut, &st) != 2)
            ut = st = 0;
        fclose(f);
    }
    return t + (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One run of |secs| with |nth| threads on |s|: sets signatures/s and CPU
 * us per signature. */
static void rt_run(const CA_SIGNER *s, int nth, double secs, pid_t child,
                   double *rate, double *cpu_us)
{
    pthread_t th[RT_MAXTH];
    double t0, t1, c0, c1;
    int i;

    atomic_store(&rt_stop, 0);
    atomic_store(&rt_ops, 0);
    c0 = rt_cpu(child);
    t0 = rt_now();
    for (i = 0; i < nth; i++)
        pthread_create(&th[i], NULL, rt_worker, (void *)s);
    while (rt_now() - t0 < secs)
        usleep(10000);
    atomic_store(&rt_stop, 1);
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    t1 = rt_now();
    c1 = rt_cpu(child);
    *rate = (double)atomic_load(&rt_ops) / (t1 - t0);
    *cpu_us = (c1 - c0) * 1e6 / (double)atomic_load(&rt_ops);
}

static int rt_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double rt_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), rt_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    int nth = argc > 2 ? atoi(argv[2]) : 4;
    int nch = argc > 3 ? atoi(argv[3]) : 4;
    int runs = argc > 4 ? atoi(argv[4]) : 3;
    char logfile[] = "/tmp/bench_signer_rt.XXXXXX";
    const char *logpath = argc > 5 ? argv[5] : logfile;
    double lr[64], lc[64], rr[64], rcs[64];
    int fds[RT_MAXCH], cfd[RT_MAXCH], sv[2], i, tmpfd = -1;
    EVP_PKEY *k = NULL;
    CA_SIGNER *local = NULL, *remote = NULL;
    SIGNER_KEYS *keys = NULL;
    SIGNER_CLIENT *client = NULL;
    char err[256];
    pid_t pid;
    int rc = 1, st;

    if (secs <= 0 || nth < 1 || nth > RT_MAXTH || nch < 1 || nch > RT_MAXCH
        || runs < 1 || runs > 64) {
        fprintf(stderr, "usage: bench_signer_rt [secs] [threads 1..64] "
                "[channels 1..64] [runs 1..64] [logfile]\n");
        return 2;
    }
    if (argc <= 5 && (tmpfd = mkstemp(logfile)) < 0)
        return 1;
    log_set_level(LOG_ERROR);
    if (!ca_key_generate("ec:P-256", &k, err, sizeof(err))
        || (local = ca_signer_new_pkey(k, NULL)) == NULL
        || (keys = signer_keys_new()) == NULL
        || !signer_keys_add(keys, local, "k", NULL, "bench key"))
        goto end;
    for (i = 0; i < nch; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            goto end;
        fds[i] = sv[0];
        cfd[i] = sv[1];
    }
    if ((pid = fork()) < 0)
        goto end;
    if (pid == 0) {
        for (i = 0; i < nch; i++)
            close(fds[i]);
        rt_child(keys, cfd, (size_t)nch, logpath);
    }
    for (i = 0; i < nch; i++)
        close(cfd[i]);
    if ((client = signer_client_new(fds, (size_t)nch, 0)) == NULL
        || signer_client_lookup(client, "k", NULL, &remote, err, sizeof(err))
           != CA_SIGNER_OK)
        goto end;
    if (getenv("BENCH_RT_NOAFFINITY") == NULL)
        signer_client_set_affinity(client);
    for (i = 0; i < runs; i++) {
        rt_run(local, nth, secs, pid, &lr[i], &lc[i]);
        rt_run(remote, nth, secs, pid, &rr[i], &rcs[i]);
    }
    {
        double l = rt_median(lr, runs), r = rt_median(rr, runs);
        double lcpu = rt_median(lc, runs), rcpu = rt_median(rcs, runs);

        printf("bench_signer_rt: P-256, %d-byte TBS, %d thread(s), %d "
               "channel(s), median of %d alternating runs of %.1fs\n",
               RT_TBS, nth, nch, runs, secs);
        printf("  in-process:     %9.0f sig/s  %7.1f us CPU/sig\n", l, lcpu);
        printf("  signer process: %9.0f sig/s  %7.1f us CPU/sig\n", r, rcpu);
        printf("RESULT local_sps=%.0f remote_sps=%.0f local_cpu_us=%.1f "
               "remote_cpu_us=%.1f rt_cpu_us=%.1f\n", l, r, lcpu, rcpu,
               rcpu - lcpu);
    }
    rc = 0;
 end:
    if (rc != 0)
        fprintf(stderr, "bench_signer_rt: setup failed %s\n", err);
    ca_signer_free(remote);
    signer_client_free(client);
    if (rc == 0 || client != NULL)
        wait(&st);
    signer_keys_free(keys);
    ca_signer_free(local);
    EVP_PKEY_free(k);
    if (tmpfd >= 0) {
        close(tmpfd);
        unlink(logfile);
    }
    return rc;
}
