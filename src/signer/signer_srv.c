/*
 * The signer process's half: the table of keys it loaded for the
 * configuration (and nothing else), and the loop that answers LOOKUP and
 * SIGN requests on one channel, logging every operation without key
 * material.
 */
#include "signer/signer.h"
#include "signer/signer_int.h"
#include "signer/signer_proto.h"

#include "ca/ca.h"
#include "conf/conf.h"
#include "store/store.h"
#include "util/der_splice.h"
#include "util/log.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One key the signer holds. */
struct signer_key {
    CA_SIGNER *signer;
    char *keyref;
    char *md;               /* as asked for at load: "" = default */
    char *label;
    unsigned char *pub;     /* SubjectPublicKeyInfo DER */
    size_t pub_len;
    const unsigned char *alg; /* borrowed from the signer */
    size_t alg_len;
};

struct signer_keys {
    struct signer_key *v;
    size_t n;
};

SIGNER_KEYS *signer_keys_new(void)
{
    return calloc(1, sizeof(SIGNER_KEYS));
}

void signer_keys_free(SIGNER_KEYS *k)
{
    size_t i;

    if (k == NULL)
        return;
    for (i = 0; i < k->n; i++) {
        ca_signer_free(k->v[i].signer);
        free(k->v[i].keyref);
        free(k->v[i].md);
        free(k->v[i].label);
        OPENSSL_free(k->v[i].pub);
    }
    free(k->v);
    free(k);
}

size_t signer_keys_count(const SIGNER_KEYS *k)
{
    return k->n;
}

int signer_keys_add(SIGNER_KEYS *k, CA_SIGNER *s, const char *keyref,
                    const char *md, const char *label)
{
    struct signer_key e, *grown;
    int len;
    size_t i;

    memset(&e, 0, sizeof(e));
    if (keyref == NULL)
        keyref = ca_signer_get0_keyref(s);
    if (md == NULL)
        md = "";
    if (*keyref == '\0' || strlen(keyref) > SIGNER_MAX_KEYREF
        || strlen(md) > SIGNER_MAX_MD || k->n >= UINT32_MAX)
        return 0;
    for (i = 0; i < k->n; i++)
        if (strcmp(k->v[i].keyref, keyref) == 0 && strcmp(k->v[i].md, md) == 0)
            return 1;
    if (!ca_signer_get0_sigalg_der(s, &e.alg, &e.alg_len)
        || e.alg_len > SIGNER_MAX_ALG
        || (len = i2d_PUBKEY(ca_signer_get0_pubkey(s), &e.pub)) <= 0
        || (size_t)len > SIGNER_MAX_PUB)
        goto err;
    e.pub_len = (size_t)len;
    if ((e.keyref = strdup(keyref)) == NULL || (e.md = strdup(md)) == NULL
        || (e.label = strdup(label != NULL ? label : keyref)) == NULL
        || (grown = realloc(k->v, (k->n + 1) * sizeof(*grown))) == NULL)
        goto err;
    k->v = grown;
    ca_signer_up_ref(s);
    e.signer = s;
    k->v[k->n++] = e;
    return 1;
 err:
    free(e.keyref);
    free(e.md);
    free(e.label);
    OPENSSL_free(e.pub);
    return 0;
}

/* Adds the keys of the loaded CA |ca| (named |name|, CA key digest |md|). */
static int signer_keys_add_ca(SIGNER_KEYS *k, const CA *ca, const char *name,
                              const char *md)
{
    char label[300];
    const CA_SIGNER *cs = ca_get0_signer(ca), *ms = ca_get0_cmp_signer(ca);
    const CA_SIGNER *os;

    snprintf(label, sizeof(label), "CA %s", name);
    if (cs == NULL || !signer_keys_add(k, (CA_SIGNER *)cs, NULL, md, label))
        return 0;
    if (ms != NULL && ms != cs) {
        snprintf(label, sizeof(label), "CMP signer of CA %s", name);
        if (!signer_keys_add(k, (CA_SIGNER *)ms, NULL, NULL, label))
            return 0;
    }
    if ((os = ca_get0_ocsp_signer(ca)) != NULL && os != cs && os != ms) {
        snprintf(label, sizeof(label), "OCSP signer of CA %s", name);
        if (!signer_keys_add(k, (CA_SIGNER *)os, NULL, NULL, label))
            return 0;
    }
    return 1;
}

/* Loads CA |name| with its CMP and OCSP signers and registers their keys. */
static enum signer_load_rc signer_keys_load_ca(SIGNER_KEYS *k,
                                               const struct conf *conf,
                                               struct store *store,
                                               const char *name, char *err,
                                               size_t errlen)
{
    const struct conf_section *csec = conf_find(conf, "ca", name);
    struct ca_load_opts lo;
    enum ca_load_rc lrc;
    CA *ca = NULL;
    int ok;

    memset(&lo, 0, sizeof(lo));
    lo.ocsp_signer = 1;
    lrc = ca_load_ex(conf, store, name, &lo, &ca, err, errlen);
    if (lrc != CA_LOAD_OK)
        return lrc == CA_LOAD_AUTH ? SIGNER_LOAD_AUTH
            : lrc == CA_LOAD_CONFIG || lrc == CA_LOAD_NOTFOUND
            ? SIGNER_LOAD_CONFIG : SIGNER_LOAD_ERROR;
    ok = signer_keys_add_ca(k, ca, name,
                            csec != NULL ? conf_get(csec, "digest") : NULL);
    ca_free(ca);
    if (!ok) {
        snprintf(err, errlen, "CA %s: cannot register its keys", name);
        return SIGNER_LOAD_ERROR;
    }
    return SIGNER_LOAD_OK;
}

/* mode = upstream: the RA's own key (ra_key, unlocked with ra_key_pass),
 * which signs what the alias forwards and answers. */
static enum signer_load_rc signer_keys_load_ra(SIGNER_KEYS *k,
                                               const struct conf_section *sec,
                                               char *err, size_t errlen)
{
    const char *keyref = conf_get(sec, "ra_key");
    struct ca_signer_opts o;
    CA_SIGNER *s = NULL;
    char label[300];
    enum ca_signer_status st;
    int ok;

    if (keyref == NULL)
        return SIGNER_LOAD_OK;
    memset(&o, 0, sizeof(o));
    o.pass_spec = conf_get(sec, "ra_key_pass");
    o.what = "RA key";
    if ((st = ca_signer_load(keyref, &o, &s, err, errlen)) != CA_SIGNER_OK)
        return st == CA_SIGNER_ERROR ? SIGNER_LOAD_ERROR : SIGNER_LOAD_AUTH;
    snprintf(label, sizeof(label), "RA key of alias %s", sec->name);
    ok = signer_keys_add(k, s, keyref, NULL, label);
    ca_signer_free(s);
    if (!ok) {
        snprintf(err, errlen, "alias %s: cannot register the RA key", sec->name);
        return SIGNER_LOAD_ERROR;
    }
    return SIGNER_LOAD_OK;
}

enum signer_load_rc signer_keys_load_conf(const struct conf *conf,
                                          struct store *store,
                                          SIGNER_KEYS **out, char *err,
                                          size_t errlen)
{
    const struct conf_section *sec = NULL;
    SIGNER_KEYS *k = signer_keys_new();
    enum signer_load_rc rc = SIGNER_LOAD_ERROR;
    const char *name, *list;
    int aliases = 0;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (k == NULL)
        goto end;
    while ((sec = conf_next(conf, "alias", sec)) != NULL) {
        aliases++;
        if ((rc = signer_keys_load_ra(k, sec, err, errlen)) != SIGNER_LOAD_OK)
            goto end;
        if ((name = conf_get(sec, "ca")) == NULL)
            continue; /* the server reports it with file:line */
        if ((rc = signer_keys_load_ca(k, conf, store, name, err, errlen))
            != SIGNER_LOAD_OK)
            goto end;
    }
    /* the CAs the OCSP responder answers for, if named apart */
    if ((sec = conf_find(conf, "ocsp", "")) != NULL
        && (list = conf_get(sec, "cas")) != NULL) {
        char buf[4096], *tok, *save = NULL;

        snprintf(buf, sizeof(buf), "%s", list);
        for (tok = strtok_r(buf, ", \t", &save); tok != NULL;
             tok = strtok_r(NULL, ", \t", &save))
            if ((rc = signer_keys_load_ca(k, conf, store, tok, err, errlen))
                != SIGNER_LOAD_OK)
                goto end;
    }
    rc = SIGNER_LOAD_ERROR;
    if (aliases == 0) {
        snprintf(err, errlen, "no [alias] section: nothing to sign for");
        rc = SIGNER_LOAD_CONFIG;
        goto end;
    }
    *out = k;
    k = NULL;
    rc = SIGNER_LOAD_OK;
 end:
    if (rc != SIGNER_LOAD_OK && err[0] == '\0')
        snprintf(err, errlen, "cannot load the signing keys");
    signer_keys_free(k);
    return rc;
}

/* Sends |f| on |fd|. Returns 1 or 0. */
static int signer_reply(int fd, const struct signer_frame *f)
{
    uint8_t buf[SIGNER_MAX_REPLY];
    size_t len;

    return signer_frame_encode(f, buf, sizeof(buf), &len)
        && signer_write_full(fd, buf, len);
}

/* Sends an ERROR answering request |id|. */
static int signer_reply_err(int fd, uint32_t id, enum signer_code code,
                            const char *msg)
{
    struct signer_frame f;

    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_ERROR;
    f.id = id;
    f.code = (uint8_t)code;
    f.msg = msg;
    f.msg_len = strlen(msg);
    return signer_reply(fd, &f);
}

/* SHA-256 fetched once for the log's digests (an implicit fetch per
 * EVP_Digest() takes the provider store's lock every time). */
static EVP_MD *signer_sha256;
static pthread_once_t signer_sha256_once = PTHREAD_ONCE_INIT;

static void signer_sha256_fetch(void)
{
    signer_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Hex of the first 8 octets of SHA-256(|data|), for the log. */
static void signer_digest_hex(const uint8_t *data, size_t len, char out[17])
{
    static const char hexd[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int i;

    pthread_once(&signer_sha256_once, signer_sha256_fetch);
    if (signer_sha256 == NULL
        || !EVP_Digest(data, len, md, &mdlen, signer_sha256, NULL)
        || mdlen < 8) {
        snprintf(out, 17, "-");
        return;
    }
    for (i = 0; i < 8; i++) {
        out[2 * i] = hexd[md[i] >> 4];
        out[2 * i + 1] = hexd[md[i] & 0x0f];
    }
    out[16] = '\0';
}

/* Answers a LOOKUP. */
static int signer_do_lookup(const SIGNER_KEYS *k, int fd,
                            const struct signer_frame *req)
{
    struct signer_frame f;
    const struct signer_key *e;
    const char *md;
    size_t i;

    for (i = 0; i < k->n; i++) {
        e = &k->v[i];
        if (strlen(e->keyref) == req->keyref_len
            && memcmp(e->keyref, req->keyref, req->keyref_len) == 0
            && strlen(e->md) == req->md_len
            && memcmp(e->md, req->md, req->md_len) == 0)
            break;
    }
    if (i == k->n) {
        signer_log(LOG_WARN, "signer: lookup of key '%.*s' (digest '%.*s') "
                "refused: not a key of the configuration",
                (int)(req->keyref_len > 200 ? 200 : req->keyref_len),
                req->keyref, (int)req->md_len, req->md);
        return signer_reply_err(fd, req->id, SIGNER_E_UNKNOWN_KEY,
                                "no such key in the signer process");
    }
    md = ca_signer_get0_md(e->signer);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_KEY;
    f.id = req->id;
    f.key_id = (uint32_t)i;
    f.flags = ca_signer_is_pkcs11(e->signer) ? SIGNER_F_PKCS11 : 0;
    f.md = md != NULL ? md : "";
    f.md_len = strlen(f.md);
    f.pub = e->pub;
    f.pub_len = e->pub_len;
    f.alg = e->alg;
    f.alg_len = e->alg_len;
    signer_log(LOG_INFO, "signer: lookup key=%zu (%s) ref=%s", i, e->label,
            e->keyref);
    return signer_reply(fd, &f);
}

/* Answers a SIGN. */
static int signer_do_sign(const SIGNER_KEYS *k, int fd,
                          const struct signer_frame *req)
{
    struct signer_frame f;
    const struct signer_key *e;
    unsigned char sig[SIGNER_MAX_SIG];
    size_t siglen = sizeof(sig);
    struct timespec t0, t1;
    char hex[17];
    long us;
    int ok, sent;

    signer_digest_hex(req->data, req->data_len, hex);
    if (req->key_id >= k->n) {
        signer_log(LOG_WARN, "signer: sign key=%u refused: no such key "
                "(bytes=%zu sha256=%s)", req->key_id, req->data_len, hex);
        return signer_reply_err(fd, req->id, SIGNER_E_UNKNOWN_KEY,
                                "no such key id");
    }
    e = &k->v[req->key_id];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok = ca_signer_max_sig_len(e->signer) <= sizeof(sig)
        && ca_signer_sign_buf(e->signer, req->data, req->data_len, sig,
                              &siglen);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    /* the answer first, then its log line: the network process does not
     * wait for the log write (the line is written before the next request
     * of this channel is read) */
    if (!ok) {
        sent = signer_reply_err(fd, req->id, SIGNER_E_SIGN,
                                "the key could not sign");
    } else {
        memset(&f, 0, sizeof(f));
        f.type = SIGNER_T_SIG;
        f.id = req->id;
        f.data = sig;
        f.data_len = siglen;
        sent = signer_reply(fd, &f);
    }
    signer_log(ok ? LOG_INFO : LOG_ERROR, "signer: sign key=%u (%s) bytes=%zu "
            "sha256=%s us=%ld %s", req->key_id, e->label, req->data_len, hex,
            us, ok ? "ok" : "FAILED");
    return sent;
}

/* Answers a SIGN_PAIR: the TBSCertificate signed into a Certificate,
 * spliced into the message in place of its placeholder, the message
 * signed; two log lines, as two SIGNs would leave. */
static int signer_do_sign_pair(const SIGNER_KEYS *k, int fd,
                               const struct signer_frame *req)
{
    struct signer_frame f;
    const struct signer_key *e, *e2;
    unsigned char sig[SIGNER_MAX_SIG], sig2[SIGNER_MAX_SIG];
    unsigned char *cert = NULL, *msg = NULL;
    size_t siglen = sizeof(sig), sig2len = sizeof(sig2), certlen = 0;
    size_t msglen = 0;
    struct timespec t0, t1, t2;
    char hex[17], hex2[17];
    long us, us2;
    int ok, ok2 = 0, sent;

    signer_digest_hex(req->data, req->data_len, hex);
    if (req->key_id >= k->n || req->key2_id >= k->n) {
        signer_log(LOG_WARN, "signer: sign pair key=%u key2=%u refused: no "
                "such key (bytes=%zu sha256=%s)", req->key_id, req->key2_id,
                req->data_len, hex);
        return signer_reply_err(fd, req->id, SIGNER_E_UNKNOWN_KEY,
                                "no such key id");
    }
    e = &k->v[req->key_id];
    e2 = &k->v[req->key2_id];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok = ca_signer_max_sig_len(e->signer) <= sizeof(sig)
        && ca_signer_max_sig_len(e2->signer) <= sizeof(sig2)
        && ca_signer_sign_buf(e->signer, req->data, req->data_len, sig,
                              &siglen);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* the message as it will be sent: the certificate in its place */
    if (ok)
        ok2 = ca_cert_der_join(req->data, req->data_len, e->alg, e->alg_len,
                               sig, siglen, &cert, &certlen)
            && der_splice(req->data2, req->data2_len, req->off, req->olen,
                          cert, certlen, &msg, &msglen)
            && ca_signer_sign_buf(e2->signer, msg, msglen, sig2, &sig2len);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    us2 = (t2.tv_sec - t1.tv_sec) * 1000000L + (t2.tv_nsec - t1.tv_nsec) / 1000;
    if (ok2)
        signer_digest_hex(msg, msglen, hex2);
    else
        snprintf(hex2, sizeof(hex2), "-");
    if (!ok || !ok2) {
        sent = signer_reply_err(fd, req->id, SIGNER_E_SIGN, !ok
                                ? "the key could not sign"
                                : "the message does not hold the "
                                  "placeholder, or its key could not sign");
    } else {
        memset(&f, 0, sizeof(f));
        f.type = SIGNER_T_SIG_PAIR;
        f.id = req->id;
        f.data = sig;
        f.data_len = siglen;
        f.data2 = sig2;
        f.data2_len = sig2len;
        sent = signer_reply(fd, &f);
    }
    signer_log(ok ? LOG_INFO : LOG_ERROR, "signer: sign key=%u (%s) "
            "bytes=%zu sha256=%s us=%ld %s", req->key_id, e->label,
            req->data_len, hex, us, ok ? "ok" : "FAILED");
    if (ok)
        signer_log(ok2 ? LOG_INFO : LOG_ERROR, "signer: sign key=%u (%s) "
                "bytes=%zu sha256=%s us=%ld %s (the message carrying "
                "sha256=%s)", req->key2_id, e2->label, msglen, hex2, us2,
                ok2 ? "ok" : "FAILED", hex);
    OPENSSL_free(cert);
    OPENSSL_free(msg);
    return sent;
}

/* Request id of a body that did not decode (0 when too short). */
static uint32_t signer_peek_id(const uint8_t *b, size_t len)
{
    return len >= SIGNER_MIN_FRAME ? (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16
                                     | (uint32_t)b[3] << 8 | b[4]
                                   : 0;
}

/* Reads more of the stream into |in| (room for |cap|), which holds
 * *have bytes. Returns 1, 0 on EOF, -1 on error. */
static int signer_fill(int fd, uint8_t *in, size_t cap, size_t *have)
{
    ssize_t r;

    for (;;) {
        r = read(fd, in + *have, cap - *have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        *have += (size_t)r;
        return 1;
    }
}

/* Size of the read buffer: every request but a large CRL's fits. */
#define SIGNER_INBUF 16384

enum signer_serve_rc signer_serve_fd(const SIGNER_KEYS *k, int fd)
{
    uint8_t *in = malloc(SIGNER_INBUF), *big = NULL, *body;
    size_t have = 0, len, total;
    struct signer_frame f;
    enum signer_serve_rc rc = SIGNER_SERVE_IO;
    int r, ok;

    if (in == NULL)
        return SIGNER_SERVE_IO;
    for (;;) {
        while (have < SIGNER_HDR_LEN
               && (r = signer_fill(fd, in, SIGNER_INBUF, &have)) == 1)
            ;
        if (have < SIGNER_HDR_LEN) {
            if (r < 0)
                signer_log(LOG_ERROR, "signer: read: %s", strerror(errno));
            else if (have > 0)
                signer_log(LOG_ERROR, "signer: channel closed inside a frame");
            rc = r < 0 ? SIGNER_SERVE_IO
                : have == 0 ? SIGNER_SERVE_EOF : SIGNER_SERVE_PROTO;
            break;
        }
        /* the length is checked before anything is allocated */
        if (!signer_frame_len(in, SIGNER_MAX_FRAME, &len)) {
            signer_log(LOG_ERROR, "signer: frame length %lu out of bounds "
                    "(%u..%u): channel closed",
                    (unsigned long)in[0] << 24 | (unsigned long)in[1] << 16
                    | (unsigned long)in[2] << 8 | in[3], SIGNER_MIN_FRAME,
                    SIGNER_MAX_FRAME);
            rc = SIGNER_SERVE_PROTO;
            break;
        }
        total = SIGNER_HDR_LEN + len;
        r = 1;
        if (total <= SIGNER_INBUF) {
            while (have < total
                   && (r = signer_fill(fd, in, SIGNER_INBUF, &have)) == 1)
                ;
            body = in + SIGNER_HDR_LEN;
        } else if ((big = malloc(len)) == NULL) {
            signer_log(LOG_ERROR, "signer: out of memory for a %zu-byte frame",
                    len);
            break;
        } else {
            /* a large frame: what arrived so far, then the rest */
            memcpy(big, in + SIGNER_HDR_LEN, have - SIGNER_HDR_LEN);
            if (signer_read_full(fd, big + have - SIGNER_HDR_LEN,
                                 total - have) != (ssize_t)(total - have))
                r = 0;
            have = total;
            body = big;
        }
        if (have < total || r != 1) {
            signer_log(LOG_ERROR, "signer: channel closed inside a frame");
            rc = r < 0 ? SIGNER_SERVE_IO : SIGNER_SERVE_PROTO;
            break;
        }
        if (!signer_frame_decode(body, len, &f)) {
            signer_log(LOG_WARN, "signer: malformed request (%zu bytes) refused",
                    len);
            ok = signer_reply_err(fd, signer_peek_id(body, len),
                                  SIGNER_E_MALFORMED, "malformed request");
        } else if (f.type == SIGNER_T_LOOKUP) {
            ok = signer_do_lookup(k, fd, &f);
        } else if (f.type == SIGNER_T_SIGN) {
            ok = signer_do_sign(k, fd, &f);
        } else if (f.type == SIGNER_T_SIGN_PAIR) {
            ok = signer_do_sign_pair(k, fd, &f);
        } else {
            signer_log(LOG_WARN, "signer: request of type %u refused",
                    (unsigned)f.type);
            ok = signer_reply_err(fd, f.id, SIGNER_E_MALFORMED,
                                  "not a request");
        }
        if (!ok) {
            signer_log(LOG_ERROR, "signer: cannot answer: %s", strerror(errno));
            break;
        }
        /* the bytes after this frame (a client may send ahead) stay */
        if (big != NULL) {
            free(big);
            big = NULL;
            have = 0;
        } else {
            memmove(in, in + total, have - total);
            have -= total;
        }
    }
    free(big);
    free(in);
    return rc;
}
