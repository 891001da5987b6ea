/*
 * Starting, watching and stopping the signer process: `cmpca serve` forks it
 * before it has threads or a store; the child loads the keys, says READY and
 * serves its channels until the network process closes them (or dies);
 * the network process keeps only the client and the pid.
 */
#include "signer/signer.h"
#include "signer/signer_int.h"
#include "signer/signer_proto.h"

#include "conf/conf.h"
#include "store/store.h"
#include "util/log.h"
#include "util/secret.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIGNER_MAX_CHANNELS 64
#define SIGNER_DEFAULT_CHANNELS 4
#define SIGNER_DEFAULT_LOG_FLUSH_MS 50

struct signer_proc {
    pid_t pid;
    int reaped;
    int status;
    SIGNER_CLIENT *client;
};

int signer_conf_read(const struct conf *conf, struct signer_conf *sc,
                     char *err, size_t errlen)
{
    const struct conf_section *sec = conf_find(conf, "server", "");
    const char *mode = sec != NULL ? conf_get(sec, "signer") : NULL;
    long n = SIGNER_DEFAULT_CHANNELS;

    sc->inprocess = 0;
    sc->channels = SIGNER_DEFAULT_CHANNELS;
    sc->log_flush_ms = SIGNER_DEFAULT_LOG_FLUSH_MS;
    if (mode != NULL) {
        if (strcmp(mode, "inprocess") == 0)
            sc->inprocess = 1;
        else if (strcmp(mode, "process") != 0)
            return conf_err(conf, sec->line, err, errlen,
                            "signer must be process or inprocess");
    }
    if (sec != NULL
        && !conf_get_long(conf, sec, "signer_channels",
                          SIGNER_DEFAULT_CHANNELS, 1, SIGNER_MAX_CHANNELS, &n,
                          err, errlen))
        return 0;
    sc->channels = (unsigned)n;
    n = SIGNER_DEFAULT_LOG_FLUSH_MS;
    if (sec != NULL
        && !conf_get_long(conf, sec, "signer_log_flush_ms",
                          SIGNER_DEFAULT_LOG_FLUSH_MS, 0, 1000, &n, err,
                          errlen))
        return 0;
    sc->log_flush_ms = (unsigned)n;
    sc->affinity = 0;
    if (sec != NULL
        && !conf_get_bool(conf, sec, "signer_affinity", 0, &sc->affinity,
                          err, errlen))
        return 0;
    return 1;
}

/* Removes the secrets of env: specs in [ca] sections from the environment
 * ("NAME=value" wiped in place: it may sit in the initial stack). */
static void signer_env_scrub(const struct conf *conf)
{
    static const char *const keys[] = { "key_pass", "signer_key_pass",
                                        "pkcs11_pin", "ocsp_signer_key_pass" };
    const struct conf_section *sec = NULL;
    const char *spec;
    size_t i;

    while ((sec = conf_next(conf, "ca", sec)) != NULL) {
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            spec = conf_get(sec, keys[i]);
            if (spec == NULL || strncmp(spec, "env:", 4) != 0
                || spec[4] == '\0')
                continue;
            (void)secret_env_wipe(spec + 4);
        }
    }
}

/* [server] log_level for the signer's own lines. */
static void signer_log_level(const struct conf *conf)
{
    const struct conf_section *sec = conf_find(conf, "server", "");
    const char *l = sec != NULL ? conf_get(sec, "log_level") : NULL;

    if (l == NULL)
        return;
    if (strcasecmp(l, "error") == 0)
        log_set_level(LOG_ERROR);
    else if (strcasecmp(l, "warn") == 0)
        log_set_level(LOG_WARN);
    else if (strcasecmp(l, "debug") == 0)
        log_set_level(LOG_DEBUG);
}

/* Closes every descriptor but stdio and the |n| channels |fds|. */
static void signer_close_others(const int *fds, size_t n)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int fd, keep, dfd = d != NULL ? dirfd(d) : -1;
    int *todo = NULL, *grown;
    size_t i, nt = 0;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        fd = atoi(de->d_name);
        keep = fd <= 2 || fd == dfd;
        for (i = 0; i < n && !keep; i++)
            keep = fd == fds[i];
        if (keep || (grown = realloc(todo, (nt + 1) * sizeof(int))) == NULL)
            continue;
        todo = grown;
        todo[nt++] = fd;
    }
    closedir(d);
    for (i = 0; i < nt; i++)
        close(todo[i]);
    free(todo);
}

/* Sends a start-up report (READY, or ERROR |code| |msg|) on |fd|. */
static int signer_report(int fd, enum signer_code code, const char *msg)
{
    uint8_t buf[SIGNER_MAX_REPLY];
    struct signer_frame f;
    size_t len;

    memset(&f, 0, sizeof(f));
    f.type = code == 0 ? SIGNER_T_READY : SIGNER_T_ERROR;
    f.code = (uint8_t)code;
    f.msg = msg;
    f.msg_len = msg != NULL ? strnlen(msg, SIGNER_MAX_MSG) : 0;
    return signer_frame_encode(&f, buf, sizeof(buf), &len)
        && signer_write_full(fd, buf, len);
}

/* The threads of the signer process: one per channel. */
struct signer_chan_thread {
    pthread_t th;
    int fd;
    size_t idx;
    int pin;
    const SIGNER_KEYS *keys;
    enum signer_serve_rc rc;
    int started;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *done;
};

static void *signer_chan_main(void *arg)
{
    struct signer_chan_thread *t = arg;

    if (t->pin)
        signer_chan_pin(t->idx);
    t->rc = signer_serve_fd(t->keys, t->fd);
    pthread_mutex_lock(t->lock);
    (*t->done)++;
    pthread_cond_signal(t->cond);
    pthread_mutex_unlock(t->lock);
    return NULL;
}

/* The log flusher of a buffered signer log: writes the buffered lines
 * every |ms| and, on SIGTERM (blocked in every thread of the signer, so it
 * arrives here), writes them and ends the process by that signal. */
struct signer_flusher {
    pthread_t th;
    unsigned ms;
    atomic_int stop;
};

static void *signer_flusher_main(void *arg)
{
    struct signer_flusher *fl = arg;
    struct timespec ts = { fl->ms / 1000, (long)(fl->ms % 1000) * 1000000L };
    sigset_t term;

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    while (!atomic_load(&fl->stop)) {
        if (sigtimedwait(&term, NULL, &ts) == SIGTERM) {
            signer_log_flush();
            signal(SIGTERM, SIG_DFL);
            pthread_sigmask(SIG_UNBLOCK, &term, NULL);
            raise(SIGTERM);
        }
        signer_log_flush();
    }
    return NULL;
}

/* Serves the channels until one ends, then ends them all. Returns the
 * process exit status: 0 if every channel ended with a clean EOF. With
 * |flush_ms|, a flusher thread writes the buffered log lines; with |pin|
 * the thread of channel i runs on the CPU signer_chan_cpu(i) names. */
static int signer_serve_all(const SIGNER_KEYS *keys, const int *fds, size_t n,
                            unsigned flush_ms, int pin)
{
    struct signer_chan_thread *t = calloc(n, sizeof(*t));
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    struct signer_flusher fl;
    int done = 0, rc = 0, started = 0, flusher = 0;
    size_t i;

    if (t == NULL)
        return 1;
    memset(&fl, 0, sizeof(fl));
    fl.ms = flush_ms;
    atomic_init(&fl.stop, 0);
    if (flush_ms > 0) {
        if (pthread_create(&fl.th, NULL, signer_flusher_main, &fl) != 0) {
            free(t);
            return 1;
        }
        flusher = 1;
    }
    for (i = 0; i < n; i++) {
        t[i].fd = fds[i];
        t[i].idx = i;
        t[i].pin = pin;
        t[i].keys = keys;
        t[i].lock = &lock;
        t[i].cond = &cond;
        t[i].done = &done;
        if (pthread_create(&t[i].th, NULL, signer_chan_main, &t[i]) != 0) {
            rc = 1;
            break;
        }
        t[i].started = 1;
        started++;
    }
    pthread_mutex_lock(&lock);
    while (done == 0 && rc == 0)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    /* one channel ended: the network process is gone or misbehaved */
    for (i = 0; i < n; i++)
        shutdown(fds[i], SHUT_RDWR);
    for (i = 0; i < n; i++) {
        if (!t[i].started)
            continue;
        pthread_join(t[i].th, NULL);
        if (t[i].rc != SIGNER_SERVE_EOF)
            rc = 1;
    }
    if (flusher) {
        atomic_store(&fl.stop, 1);
        pthread_join(fl.th, NULL);
    }
    signer_log_flush();
    free(t);
    return started == (int)n ? rc : 1;
}

/* The signer process. Never returns. */
static void signer_child(struct conf *conf, const int *fds, size_t n,
                         pid_t parent, unsigned flush_ms, int pin)
{
    struct store_conf sc;
    STORE *st = NULL;
    SIGNER_KEYS *keys = NULL;
    enum signer_load_rc lrc = SIGNER_LOAD_ERROR;
    enum signer_code code = SIGNER_E_START;
    char err[1024];
    int rc;
    sigset_t none;

    /* dies with the network process; no core file, no ptrace by others */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1);
    prctl(PR_SET_DUMPABLE, 0);
    prctl(PR_SET_NAME, "cmpca-signer");
    /* Ctrl-C and SIGHUP are the network process's to handle: the signer
     * ends when it closes the channels */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signer_close_others(fds, n);
    signer_log_level(conf);

    err[0] = '\0';
    store_conf_init(&sc);
    if (!store_conf_load(conf, &sc, err, sizeof(err))) {
        code = SIGNER_E_CONFIG;
    } else if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK) {
        code = SIGNER_E_STORE;
    } else {
        lrc = signer_keys_load_conf(conf, st, &keys, err, sizeof(err));
        code = lrc == SIGNER_LOAD_OK ? 0 : lrc == SIGNER_LOAD_AUTH
            ? SIGNER_E_AUTH : lrc == SIGNER_LOAD_CONFIG ? SIGNER_E_CONFIG
            : SIGNER_E_START;
    }
    store_close(st);
    store_conf_clear(&sc);
    /* the passphrases are read: none stays in the environment */
    signer_env_scrub(conf);
    conf_free(conf);
    if (code != 0) {
        signer_report(fds[0], code, err);
        rc = 2;
        goto end;
    }
    log_msg(LOG_INFO, "signer process %d holds %zu key(s); it alone loads "
            "and uses them", (int)getpid(), signer_keys_count(keys));
    if (!signer_report(fds[0], 0, NULL)) {
        rc = 1;
        goto end;
    }
    if (flush_ms > 0) {
        /* SIGTERM goes to the flusher thread only (it writes the buffered
         * lines first): blocked here, before any other thread exists */
        sigset_t term;

        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &term, NULL);
        fflush(stderr);
        signer_log_set_buffered(STDERR_FILENO);
    }
    rc = signer_serve_all(keys, fds, n, flush_ms, pin);
    log_msg(rc == 0 ? LOG_INFO : LOG_ERROR, "signer process %d: the network "
            "process closed the channels%s; exiting", (int)getpid(),
            rc == 0 ? "" : " (or one failed)");
 end:
    signer_keys_free(keys);
    exit(rc);
}

/* Reads the start-up report on |fd| (blocking: a passphrase prompt may
 * take a while). Returns the code (0 READY) and the message in |err|, or
 * SIGNER_E_START when the process ended without a report. */
static int signer_wait_ready(int fd, char *err, size_t errlen)
{
    uint8_t hdr[SIGNER_HDR_LEN], buf[SIGNER_MAX_REPLY];
    struct signer_frame f;
    size_t len;

    if (signer_read_full(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)
        || !signer_frame_len(hdr, sizeof(buf), &len)
        || signer_read_full(fd, buf, len) != (ssize_t)len
        || !signer_frame_decode(buf, len, &f)
        || (f.type != SIGNER_T_READY && f.type != SIGNER_T_ERROR)) {
        snprintf(err, errlen, "the signer process ended before it was ready");
        return SIGNER_E_START;
    }
    if (f.type == SIGNER_T_READY)
        return 0;
    snprintf(err, errlen, "%.*s", (int)f.msg_len, f.msg);
    return f.code;
}

enum signer_start_rc signer_proc_start(const char *conf_path,
                                       SIGNER_PROC **out, char *err,
                                       size_t errlen)
{
    struct conf *conf = NULL;
    struct signer_conf scf;
    SIGNER_PROC *p = NULL;
    int pfd[SIGNER_MAX_CHANNELS], cfd[SIGNER_MAX_CHANNELS], sv[2];
    enum signer_start_rc rc = SIGNER_START_ERROR;
    size_t i, n = 0, made = 0;
    pid_t pid, self = getpid();
    int code;

    *out = NULL;
    if (!conf_load(conf_path, &conf, err, errlen)
        || !signer_conf_read(conf, &scf, err, errlen)) {
        conf_free(conf);
        return SIGNER_START_CONFIG;
    }
    if (scf.inprocess) {
        conf_free(conf);
        return SIGNER_START_OK;
    }
    n = scf.channels;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        goto end;
    for (made = 0; made < n; made++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            snprintf(err, errlen, "socketpair: %s", strerror(errno));
            goto end;
        }
        pfd[made] = sv[0];
        cfd[made] = sv[1];
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        goto end;
    }
    if (pid == 0) {
        for (i = 0; i < n; i++)
            close(pfd[i]);
        free(p);
        signer_child(conf, cfd, n, self, scf.log_flush_ms, scf.affinity);
    }
    p->pid = pid;
    for (i = 0; i < n; i++)
        close(cfd[i]);
    made = 0; /* the parent's ends are closed by the client or below */
    if ((code = signer_wait_ready(pfd[0], err, errlen)) != 0) {
        rc = code == SIGNER_E_AUTH ? SIGNER_START_KEY
            : code == SIGNER_E_CONFIG ? SIGNER_START_CONFIG
            : code == SIGNER_E_STORE ? SIGNER_START_STORE
            : SIGNER_START_ERROR;
        goto fail;
    }
    if ((p->client = signer_client_new(pfd, n, 0)) == NULL) {
        snprintf(err, errlen, "cannot set up the signer channels");
        goto fail;
    }
    if (scf.affinity)
        signer_client_set_affinity(p->client);
    signer_client_install(p->client);
    /* the signer has read the passphrases; this process must not keep
     * them in its environment */
    signer_env_scrub(conf);
    log_msg(LOG_INFO, "signer process %d started (%zu channel(s)); this "
            "process holds no private key", (int)pid, n);
    *out = p;
    p = NULL;
    rc = SIGNER_START_OK;
    goto end;
 fail:
    for (i = 0; i < n; i++)
        close(pfd[i]);
    waitpid(p->pid, NULL, 0);
 end:
    for (i = 0; i < made; i++) {
        close(pfd[i]);
        close(cfd[i]);
    }
    free(p);
    conf_free(conf);
    return rc;
}

pid_t signer_proc_pid(const SIGNER_PROC *p)
{
    return p->pid;
}

int signer_proc_exited(SIGNER_PROC *p, int *status)
{
    int st;

    /* a failed channel (a signer that hangs, say): make sure it is gone */
    if (!p->reaped && p->client != NULL && signer_client_broken(p->client)
        && kill(p->pid, SIGKILL) == 0 && waitpid(p->pid, &st, 0) == p->pid) {
        p->reaped = 1;
        p->status = st;
    }
    if (!p->reaped && waitpid(p->pid, &st, WNOHANG) == p->pid) {
        p->reaped = 1;
        p->status = st;
    }
    if (p->reaped && status != NULL)
        *status = p->status;
    return p->reaped;
}

int signer_proc_stop(SIGNER_PROC *p)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    int i, ok;

    if (p == NULL)
        return 1;
    signer_client_install(NULL);
    signer_client_free(p->client);
    p->client = NULL;
    /* EOF on its channels ends the signer; bounded wait, then SIGKILL */
    for (i = 0; i < 500 && !signer_proc_exited(p, NULL); i++)
        nanosleep(&ts, NULL);
    if (!p->reaped) {
        log_msg(LOG_ERROR, "signer process %d did not exit; killing it",
                (int)p->pid);
        kill(p->pid, SIGKILL);
        if (waitpid(p->pid, &p->status, 0) == p->pid)
            p->reaped = 1;
    }
    ok = p->reaped && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
    free(p);
    return ok;
}
