/*
 * The network process's half of the signer protocol: a pool of channels
 * (one request in flight on each; a thread takes a free one and waits for
 * it when none is), key lookups that make remote CA_SIGNERs, and the
 * ca_signer_load() hook. A channel that fails breaks the client for good.
 */
#include "signer/signer.h"
#include "signer/signer_int.h"
#include "signer/signer_proto.h"

#include "util/log.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Requests up to this size are built on the stack. */
#define SIGNER_STACK_REQ 8192

struct signer_client {
    int *fds;
    size_t n;
    int *cpu;                    /* CPU of each channel (-1: any) */
    size_t *free_idx;            /* stack of free channel indexes */
    size_t nfree;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_uint next_id;
    atomic_int broken;
};

SIGNER_CLIENT *signer_client_new(const int *fds, size_t n,
                                 unsigned timeout_ms)
{
    SIGNER_CLIENT *c = calloc(1, sizeof(*c));
    struct timeval tv;
    size_t i;

    if (timeout_ms == 0)
        timeout_ms = 30000;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (c == NULL || n == 0 || (c->fds = calloc(n, sizeof(int))) == NULL
        || (c->free_idx = calloc(n, sizeof(size_t))) == NULL
        || (c->cpu = calloc(n, sizeof(int))) == NULL)
        goto err;
    for (i = 0; i < n; i++) {
        if (setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0
            || setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv,
                          sizeof(tv)) != 0)
            goto err;
        c->fds[i] = fds[i];
        c->free_idx[i] = n - 1 - i;
        c->cpu[i] = -1;
    }
    c->n = c->nfree = n;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    atomic_init(&c->next_id, 1);
    atomic_init(&c->broken, 0);
    return c;
 err:
    if (c != NULL) {
        free(c->fds);
        free(c->free_idx);
        free(c->cpu);
        free(c);
    }
    return NULL;
}

void signer_client_set_affinity(SIGNER_CLIENT *c)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        c->cpu[i] = signer_chan_cpu(i);
}

void signer_client_free(SIGNER_CLIENT *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n; i++)
        close(c->fds[i]);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c->fds);
    free(c->free_idx);
    free(c->cpu);
    free(c);
}

int signer_client_broken(const SIGNER_CLIENT *c)
{
    return atomic_load(&((SIGNER_CLIENT *)c)->broken);
}

/* Marks the client broken (once) and shuts every channel down, so that
 * waiting threads and the signer process see it at once. */
static void signer_client_break(SIGNER_CLIENT *c, const char *why)
{
    size_t i;

    if (atomic_exchange(&c->broken, 1))
        return;
    log_msg(LOG_ERROR, "signer process channel failed (%s): no more "
            "signatures; the signer process is told to stop", why);
    for (i = 0; i < c->n; i++)
        shutdown(c->fds[i], SHUT_RDWR);
    pthread_mutex_lock(&c->lock);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Takes a free channel (waits for one). Returns its index or -1 once the
 * client is broken. */
static long signer_chan_get(SIGNER_CLIENT *c)
{
    long i = -1;

    pthread_mutex_lock(&c->lock);
    while (c->nfree == 0 && !atomic_load(&c->broken))
        pthread_cond_wait(&c->cond, &c->lock);
    if (!atomic_load(&c->broken)) {
        /* a channel of this CPU if one is free, else the last freed */
        size_t k = c->nfree - 1, j;
        int cpu = c->cpu[c->free_idx[k]] >= 0 ? sched_getcpu() : -1;

        for (j = c->nfree; cpu >= 0 && j-- > 0;)
            if (c->cpu[c->free_idx[j]] == cpu) {
                k = j;
                break;
            }
        i = (long)c->free_idx[k];
        c->free_idx[k] = c->free_idx[--c->nfree];
    }
    pthread_mutex_unlock(&c->lock);
    return i;
}

static void signer_chan_put(SIGNER_CLIENT *c, long i)
{
    pthread_mutex_lock(&c->lock);
    c->free_idx[c->nfree++] = (size_t)i;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/*
 * Sends |req| (its id is set here) and reads the reply (prefix included)
 * into |buf| of SIGNER_MAX_REPLY bytes, decoded into |rsp|: it must answer this request
 * and be of type |want| or ERROR. Returns 1 (check rsp->type), or 0 after
 * breaking the client.
 */
static int signer_call(SIGNER_CLIENT *c, struct signer_frame *req,
                       uint8_t want, uint8_t *buf, struct signer_frame *rsp)
{
    uint8_t stackbuf[SIGNER_STACK_REQ], *out = stackbuf;
    size_t size, len;
    long ch;
    int r;
    const char *why = NULL;

    req->id = atomic_fetch_add(&c->next_id, 1);
    if ((size = signer_frame_size(req)) == 0)
        return 0; /* out of bounds: refused here, nothing sent */
    if (size > sizeof(stackbuf) && (out = malloc(size)) == NULL)
        return 0;
    if (!signer_frame_encode(req, out, size, &len)) {
        if (out != stackbuf)
            free(out);
        return 0;
    }
    if ((ch = signer_chan_get(c)) < 0) {
        if (out != stackbuf)
            free(out);
        return 0;
    }
    if (!signer_write_full(c->fds[ch], out, len))
        why = errno == EAGAIN ? "write timed out" : "write failed";
    else if ((r = signer_read_frame(c->fds[ch], buf, SIGNER_MAX_REPLY, &len))
             != 1)
        why = r < 0 ? (errno == EAGAIN ? "no reply in time" : "read failed")
            : r == 0 ? "the signer process closed the channel"
            : "reply length out of bounds or cut short";
    else if (!signer_frame_decode(buf + SIGNER_HDR_LEN, len, rsp))
        why = "malformed reply";
    else if (rsp->id != req->id)
        why = "reply to another request";
    else if (rsp->type != want && rsp->type != SIGNER_T_ERROR)
        why = "unexpected reply type";
    if (out != stackbuf)
        free(out);
    if (why != NULL) {
        signer_client_break(c, why);
        return 0;
    }
    signer_chan_put(c, ch);
    return 1;
}

/* The ca_signer remote sign function. */
static int signer_client_sign(void *arg, uint32_t key_id,
                              const unsigned char *tbs, size_t tbslen,
                              unsigned char *sig, size_t *siglen)
{
    SIGNER_CLIENT *c = arg;
    uint8_t buf[SIGNER_MAX_REPLY];
    struct signer_frame req, rsp;

    memset(&req, 0, sizeof(req));
    req.type = SIGNER_T_SIGN;
    req.key_id = key_id;
    req.data = tbs;
    req.data_len = tbslen;
    if (!signer_call(c, &req, SIGNER_T_SIG, buf, &rsp))
        return 0;
    if (rsp.type == SIGNER_T_ERROR) {
        log_msg(LOG_ERROR, "signer process refused to sign with key %u: %.*s",
                key_id, (int)rsp.msg_len, rsp.msg);
        return 0;
    }
    if (rsp.data_len > *siglen)
        return 0;
    memcpy(sig, rsp.data, rsp.data_len);
    *siglen = rsp.data_len;
    return 1;
}

/* The ca_signer remote pair function: both signatures in one round
 * trip. */
static int signer_client_sign_pair(void *arg, uint32_t key_id,
                                   const unsigned char *tbs, size_t tbslen,
                                   uint32_t key2_id, const unsigned char *msg,
                                   size_t msglen, size_t off, size_t olen,
                                   unsigned char *sig, size_t *siglen,
                                   unsigned char *sig2, size_t *sig2len)
{
    SIGNER_CLIENT *c = arg;
    uint8_t buf[SIGNER_MAX_REPLY];
    struct signer_frame req, rsp;

    if (off > UINT32_MAX || olen > UINT32_MAX)
        return 0;
    memset(&req, 0, sizeof(req));
    req.type = SIGNER_T_SIGN_PAIR;
    req.key_id = key_id;
    req.key2_id = key2_id;
    req.off = (uint32_t)off;
    req.olen = (uint32_t)olen;
    req.data = tbs;
    req.data_len = tbslen;
    req.data2 = msg;
    req.data2_len = msglen;
    if (!signer_call(c, &req, SIGNER_T_SIG_PAIR, buf, &rsp))
        return 0;
    if (rsp.type == SIGNER_T_ERROR) {
        log_msg(LOG_ERROR, "signer process refused to sign with keys %u and "
                "%u: %.*s", key_id, key2_id, (int)rsp.msg_len, rsp.msg);
        return 0;
    }
    if (rsp.data_len > *siglen || rsp.data2_len > *sig2len)
        return 0;
    memcpy(sig, rsp.data, rsp.data_len);
    *siglen = rsp.data_len;
    memcpy(sig2, rsp.data2, rsp.data2_len);
    *sig2len = rsp.data2_len;
    return 1;
}

enum ca_signer_status signer_client_lookup(SIGNER_CLIENT *c,
                                           const char *keyref, const char *md,
                                           CA_SIGNER **out, char *err,
                                           size_t errlen)
{
    uint8_t buf[SIGNER_MAX_REPLY];
    struct signer_frame req, rsp;
    struct ca_signer_remote r;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    char mdname[SIGNER_MAX_MD + 1];
    enum ca_signer_status st = CA_SIGNER_ERROR;

    *out = NULL;
    memset(&req, 0, sizeof(req));
    req.type = SIGNER_T_LOOKUP;
    req.keyref = keyref;
    req.keyref_len = strlen(keyref);
    req.md = md != NULL ? md : "";
    req.md_len = strlen(req.md);
    if (req.keyref_len > SIGNER_MAX_KEYREF || req.md_len > SIGNER_MAX_MD) {
        snprintf(err, errlen, "key reference or digest name too long");
        return CA_SIGNER_NOKEY;
    }
    if (!signer_call(c, &req, SIGNER_T_KEY, buf, &rsp)) {
        snprintf(err, errlen, "the signer process does not answer");
        return CA_SIGNER_ERROR;
    }
    if (rsp.type == SIGNER_T_ERROR) {
        snprintf(err, errlen, "the signer process holds no key %s%s%s (it "
                 "loads the keys of the CAs the [alias] sections name)",
                 keyref, *req.md ? " with digest " : "", req.md);
        return CA_SIGNER_NOKEY;
    }
    p = rsp.pub;
    if ((pub = d2i_PUBKEY(NULL, &p, (long)rsp.pub_len)) == NULL
        || p != rsp.pub + rsp.pub_len) {
        snprintf(err, errlen, "the signer process sent a bad public key");
        goto end;
    }
    memcpy(mdname, rsp.md, rsp.md_len);
    mdname[rsp.md_len] = '\0';
    memset(&r, 0, sizeof(r));
    r.sign = signer_client_sign;
    r.pair = signer_client_sign_pair;
    r.arg = c;
    r.key_id = rsp.key_id;
    r.keyref = keyref;
    r.md = mdname;
    r.pkcs11 = (rsp.flags & SIGNER_F_PKCS11) != 0;
    r.pub = pub;
    r.sigalg = rsp.alg;
    r.sigalg_len = rsp.alg_len;
    if ((*out = ca_signer_new_remote(&r)) == NULL) {
        snprintf(err, errlen, "cannot use the signer process's key %s", keyref);
        goto end;
    }
    st = CA_SIGNER_OK;
 end:
    EVP_PKEY_free(pub);
    ERR_clear_error();
    return st;
}

/* ca_signer_load() in the network process. */
static enum ca_signer_status signer_client_loader(void *arg, const char *keyref,
                                                  const struct ca_signer_opts *o,
                                                  CA_SIGNER **out, char *err,
                                                  size_t errlen)
{
    return signer_client_lookup(arg, keyref, o != NULL ? o->md : NULL, out,
                                err, errlen);
}

void signer_client_install(SIGNER_CLIENT *c)
{
    if (c != NULL)
        ca_signer_set_loader(signer_client_loader, c);
    else
        ca_signer_set_loader(NULL, NULL);
}
