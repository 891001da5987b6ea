/*
 * Audit checkpoints: the one-line text form of a chain head (seq, hash),
 * optionally signed with an operator key, parsed strictly, read from and
 * appended to files outside the database; and the [audit] exports that
 * `cmpca serve` appends periodically.
 */
#include "audit/audit.h"

#include "ca/ca_signer.h"
#include "conf/conf.h"
#include "util/log.h"
#include "util/pkey_md.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes |len| bytes of |p| as lowercase hex into |out| (2*len+1). */
static void audit_hex(const unsigned char *p, size_t len, char *out)
{
    size_t i;

    for (i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * len] = '\0';
}

/* Parses exactly 2*len lowercase hex digits of |s| into |out|; 1 or 0. */
static int audit_unhex(const char *s, size_t slen, unsigned char *out,
                       size_t len)
{
    size_t i;
    int hi, lo;

    if (slen != 2 * len)
        return 0;
    for (i = 0; i < len; i++) {
        hi = s[2 * i] >= '0' && s[2 * i] <= '9' ? s[2 * i] - '0'
            : s[2 * i] >= 'a' && s[2 * i] <= 'f' ? s[2 * i] - 'a' + 10 : -1;
        lo = s[2 * i + 1] >= '0' && s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0'
            : s[2 * i + 1] >= 'a' && s[2 * i + 1] <= 'f'
            ? s[2 * i + 1] - 'a' + 10 : -1;
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}

int audit_key_id(const EVP_PKEY *pub, unsigned char out[STORE_SHA256_LEN])
{
    unsigned char *der = NULL;
    unsigned int n = 0;
    int len, ok;

    if ((len = i2d_PUBKEY((EVP_PKEY *)pub, &der)) <= 0)
        return 0;
    ok = EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1
        && n == STORE_SHA256_LEN;
    OPENSSL_free(der);
    return ok;
}

/* The signed part of |c|: the tag, seq, hash, time and (if |key_id|)
 * key=. Returns its length or 0 if |buf| is too small. */
static size_t audit_ckpt_tbs(const struct audit_ckpt *c,
                             const unsigned char *key_id, char *buf,
                             size_t buflen)
{
    char hash[2 * STORE_SHA256_LEN + 1], kid[2 * STORE_SHA256_LEN + 1];
    int n;

    audit_hex(c->hash, STORE_SHA256_LEN, hash);
    if (key_id != NULL)
        audit_hex(key_id, STORE_SHA256_LEN, kid);
    n = snprintf(buf, buflen, "%s seq=%lld hash=%s time=%lld%s%s",
                 AUDIT_CKPT_TAG, (long long)c->seq, hash, (long long)c->time,
                 key_id != NULL ? " key=" : "", key_id != NULL ? kid : "");
    return n > 0 && (size_t)n < buflen ? (size_t)n : 0;
}

int audit_ckpt_format(const struct audit_ckpt *c,
                      const struct ca_signer_st *signer, char *buf,
                      size_t buflen, char *err, size_t errlen)
{
    unsigned char kid[STORE_SHA256_LEN], *sig = NULL;
    size_t n, siglen = 0;
    int b64, ok = 0;

    if (c->seq < 1) {
        snprintf(err, errlen, "nothing to checkpoint (seq %lld)",
                 (long long)c->seq);
        return 0;
    }
    if (signer == NULL) {
        if (audit_ckpt_tbs(c, NULL, buf, buflen) == 0)
            goto small;
        return 1;
    }
    if (!audit_key_id(ca_signer_get0_pubkey(signer), kid)) {
        snprintf(err, errlen, "cannot encode the signer's public key");
        goto end;
    }
    if ((n = audit_ckpt_tbs(c, kid, buf, buflen)) == 0)
        goto small;
    if (!ca_signer_sign_data(signer, (const unsigned char *)buf, n, &sig,
                             &siglen)) {
        snprintf(err, errlen, "signing the checkpoint failed");
        goto end;
    }
    /* " sig=" + base64 + NUL */
    if (n + 5 + 4 * ((siglen + 2) / 3) + 1 > buflen
        || n + 5 + 4 * ((siglen + 2) / 3) > AUDIT_CKPT_LINE_MAX)
        goto small;
    memcpy(buf + n, " sig=", 5);
    b64 = EVP_EncodeBlock((unsigned char *)buf + n + 5, sig, (int)siglen);
    if (b64 <= 0)
        goto end;
    buf[n + 5 + (size_t)b64] = '\0';
    ok = 1;
    goto end;
 small:
    snprintf(err, errlen, "checkpoint line too long");
 end:
    OPENSSL_free(sig);
    ERR_clear_error();
    return ok;
}

/* Reads "NAME=" then a decimal int64 >= 0 at *p, advancing past it.
 * Returns 1 or 0. */
static int audit_field_i64(const char **p, const char *name, int64_t *out)
{
    size_t nl = strlen(name);
    long long v = 0;
    const char *q;

    if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '=')
        return 0;
    q = *p + nl + 1;
    if (*q < '0' || *q > '9' || (q[0] == '0' && q[1] >= '0' && q[1] <= '9'))
        return 0;
    for (; *q >= '0' && *q <= '9'; q++) {
        if (v > (0x7fffffffffffffffLL - (*q - '0')) / 10)
            return 0;
        v = v * 10 + (*q - '0');
    }
    *out = (int64_t)v;
    *p = q;
    return 1;
}

/* Reads "NAME=" then 64 hex digits at *p into |out|; 1 or 0. */
static int audit_field_hash(const char **p, const char *name,
                            unsigned char out[STORE_SHA256_LEN])
{
    size_t nl = strlen(name);

    if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '='
        || strlen(*p + nl + 1) < 2 * STORE_SHA256_LEN
        || !audit_unhex(*p + nl + 1, 2 * STORE_SHA256_LEN, out,
                        STORE_SHA256_LEN))
        return 0;
    *p += nl + 1 + 2 * STORE_SHA256_LEN;
    return 1;
}

int audit_ckpt_parse(const char *line, struct audit_ckpt *c, char *err,
                     size_t errlen)
{
    const char *p = line, *sig;
    size_t tl = strlen(AUDIT_CKPT_TAG), slen;
    unsigned char dec[sizeof(c->sig) + 3];
    int n;

    memset(c, 0, sizeof(*c));
    if (strlen(line) > AUDIT_CKPT_LINE_MAX) {
        snprintf(err, errlen, "line too long");
        return 0;
    }
    if (strncmp(p, AUDIT_CKPT_TAG, tl) != 0 || p[tl] != ' ') {
        snprintf(err, errlen, "not a checkpoint (expected \"%s ...\")",
                 AUDIT_CKPT_TAG);
        return 0;
    }
    p += tl + 1;
    if (!audit_field_i64(&p, "seq", &c->seq) || c->seq < 1 || *p++ != ' '
        || !audit_field_hash(&p, "hash", c->hash) || *p++ != ' '
        || !audit_field_i64(&p, "time", &c->time))
        goto bad;
    if (*p == '\0')
        return 1;
    if (*p++ != ' ' || !audit_field_hash(&p, "key", c->key_id)
        || strncmp(p, " sig=", 5) != 0)
        goto bad;
    sig = p + 5;
    slen = strlen(sig);
    if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > sizeof(dec)
        || strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789+/=") != slen)
        goto bad;
    if ((n = EVP_DecodeBlock(dec, (const unsigned char *)sig, (int)slen)) < 0)
        goto bad;
    /* EVP_DecodeBlock keeps the padding octets: drop one per '=' */
    if (sig[slen - 1] == '=')
        n--;
    if (slen >= 2 && sig[slen - 2] == '=')
        n--;
    if (n <= 0 || (size_t)n > sizeof(c->sig))
        goto bad;
    memcpy(c->sig, dec, (size_t)n);
    c->siglen = (size_t)n;
    c->is_signed = 1;
    return 1;
 bad:
    snprintf(err, errlen, "malformed checkpoint (want \"%s seq=N hash=HEX "
             "time=T [key=HEX sig=BASE64]\")", AUDIT_CKPT_TAG);
    return 0;
}

int audit_ckpt_verify_sig(const struct audit_ckpt *c, EVP_PKEY *pub)
{
    unsigned char kid[STORE_SHA256_LEN];
    char tbs[256];
    EVP_MD_CTX *md = NULL;
    size_t n;
    int ok = 0;

    if (!c->is_signed || pub == NULL || !audit_key_id(pub, kid)
        || CRYPTO_memcmp(kid, c->key_id, STORE_SHA256_LEN) != 0
        || (n = audit_ckpt_tbs(c, c->key_id, tbs, sizeof(tbs))) == 0)
        goto end;
    if ((md = EVP_MD_CTX_new()) == NULL
        || EVP_DigestVerifyInit_ex(md, NULL, pkey_default_md(pub), NULL,
                                   NULL, pub, NULL) != 1)
        goto end;
    ok = EVP_DigestVerify(md, c->sig, c->siglen, (const unsigned char *)tbs,
                          n) == 1;
 end:
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

/* Sorts checkpoints by seq, keeping file order among equal ones. */
static int audit_ckpt_cmp(const void *a, const void *b)
{
    const struct audit_ckpt *x = a, *y = b;

    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

int audit_ckpt_read_file(const char *path, EVP_PKEY *pub, int missing_ok,
                         struct audit_ckpt **out, size_t *n, char *err,
                         size_t errlen)
{
    struct audit_ckpt *v = NULL, *nv, c;
    FILE *fp = NULL;
    char *line = NULL, why[160];
    size_t cap = 0, cnt = 0, lcap = 0, lineno = 0, len;
    long total = 0;
    ssize_t r;
    int ok = 0;

    *out = NULL;
    *n = 0;
    if ((fp = fopen(path, "r")) == NULL) {
        if (errno == ENOENT && missing_ok)
            return 1;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return 0;
    }
    while ((r = getline(&line, &lcap, fp)) >= 0) {
        lineno++;
        total += r;
        if (total > AUDIT_CKPT_FILE_MAX) {
            snprintf(err, errlen, "%s: larger than %ld bytes", path,
                     AUDIT_CKPT_FILE_MAX);
            goto end;
        }
        len = (size_t)r;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (!audit_ckpt_parse(line, &c, why, sizeof(why))) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            goto end;
        }
        c.line = lineno;
        if (pub != NULL && !audit_ckpt_verify_sig(&c, pub)) {
            snprintf(err, errlen, "%s:%zu: checkpoint of seq %lld is %s", path,
                     lineno, (long long)c.seq, c.is_signed
                     ? "not signed by the given key (wrong key, or the line "
                       "was altered)" : "not signed");
            goto end;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                snprintf(err, errlen, "out of memory");
                goto end;
            }
            v = nv;
        }
        v[cnt++] = c;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: read error", path);
        goto end;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), audit_ckpt_cmp);
    *out = v;
    *n = cnt;
    v = NULL;
    ok = 1;
 end:
    free(v);
    free(line);
    fclose(fp);
    return ok;
}

/* Appends |line| and a newline to the open file |fd| (|path| names it in
 * messages) in one write, then fsyncs. Returns 1, or 0 with |err|. */
static int audit_ckpt_write_fd(int fd, const char *path, const char *line,
                               char *err, size_t errlen)
{
    size_t len = strlen(line), off = 0;
    char *buf;
    ssize_t w;
    int ok = 0;

    if ((buf = malloc(len + 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    /* one write: concurrent appenders never interleave within a line */
    while (off < len + 1) {
        if ((w = write(fd, buf + off, len + 1 - off)) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto end;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
        goto end;
    }
    ok = 1;
 end:
    free(buf);
    return ok;
}

/* Opens |path| for appending; -1 with |err| on failure. */
static int audit_ckpt_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return fd;
}

int audit_ckpt_append(const char *path, const char *line, char *err,
                      size_t errlen)
{
    int fd, ok;

    if (strcmp(path, "-") == 0) {
        if (printf("%s\n", line) < 0 || fflush(stdout) != 0) {
            snprintf(err, errlen, "stdout: %s", strerror(errno));
            return 0;
        }
        return 1;
    }
    if ((fd = audit_ckpt_open(path, err, errlen)) < 0)
        return 0;
    ok = audit_ckpt_write_fd(fd, path, line, err, errlen);
    if (close(fd) != 0 && ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        ok = 0;
    }
    return ok;
}

EVP_PKEY *audit_pubkey_load(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    BIO *b;

    if ((b = BIO_new_file(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto end;
    }
    if ((pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) == NULL) {
        (void)BIO_reset(b);
        if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
            pk = X509_get_pubkey(x);
    }
    if (pk == NULL)
        snprintf(err, errlen, "%s: no PEM public key or certificate", path);
 end:
    X509_free(x);
    BIO_free(b);
    ERR_clear_error();
    return pk;
}

/* ------------------------------------------------------------------ */
/* [audit]: the server's exports                                        */

/* |p| itself if absolute, else joined to the directory of |conf_path|. */
static char *audit_resolve(const char *conf_path, const char *p)
{
    const char *slash;
    char *r;
    size_t dlen;

    if (p[0] == '/' || conf_path == NULL
        || (slash = strrchr(conf_path, '/')) == NULL)
        return strdup(p);
    dlen = (size_t)(slash - conf_path);
    if ((r = malloc(dlen + 1 + strlen(p) + 1)) == NULL)
        return NULL;
    memcpy(r, conf_path, dlen);
    r[dlen] = '/';
    strcpy(r + dlen + 1, p);
    return r;
}

int audit_export_conf_load(const struct conf *conf,
                           struct audit_export_conf *ac, char *err,
                           size_t errlen)
{
    const struct conf_section *sec = conf_find(conf, "audit", "");
    const char *f;

    memset(ac, 0, sizeof(*ac));
    ac->interval = 3600;
    if (sec == NULL)
        return 1;
    if (!conf_get_duration(conf, sec, "checkpoint_interval", 3600, 1,
                           7 * 86400, &ac->interval, err, errlen))
        return 0;
    if ((f = conf_get(sec, "checkpoint_file")) != NULL) {
        if (*f == '\0')
            return conf_err(conf, sec->line, err, errlen,
                            "[audit] checkpoint_file is empty");
        if ((ac->file = audit_resolve(conf->path, f)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return 0;
        }
    }
    if (!conf_check_used(conf, sec, err, errlen)) {
        audit_export_conf_clear(ac);
        return 0;
    }
    if (ac->file != NULL) {
        if ((ac->fd = audit_ckpt_open(ac->file, err, errlen)) < 0) {
            audit_export_conf_clear(ac);
            return 0;
        }
        ac->have_fd = 1;
    }
    return 1;
}

void audit_export_conf_clear(struct audit_export_conf *ac)
{
    if (ac->have_fd)
        close(ac->fd);
    free(ac->file);
    memset(ac, 0, sizeof(*ac));
}

int audit_export_tick(struct audit_export_conf *ac, STORE *st, int64_t now,
                      int force)
{
    struct store_audit_row **rows = NULL;
    struct audit_ckpt c;
    STORE_TX *tx = NULL;
    char line[AUDIT_CKPT_LINE_MAX + 1], err[256];
    size_t n = 0;
    enum store_rc rc;
    int ok = 0;

    if (ac->file == NULL || (!force && now < ac->next))
        return 1;
    ac->next = now + ac->interval;
    if ((rc = store_begin_read(st, &tx)) != STORE_OK
        || (rc = store_audit_list(tx, 1, &rows, &n)) != STORE_OK) {
        log_msg(LOG_WARN, "audit checkpoint: store unavailable (%s)",
                store_rc_str(rc));
        goto end;
    }
    if (n == 0 || rows[0]->seq == ac->last_seq) {
        ok = 1;
        goto end;
    }
    memset(&c, 0, sizeof(c));
    c.seq = rows[0]->seq;
    memcpy(c.hash, rows[0]->hash, STORE_SHA256_LEN);
    c.time = now;
    if (!audit_ckpt_format(&c, NULL, line, sizeof(line), err, sizeof(err))
        || !(ac->have_fd
             ? audit_ckpt_write_fd(ac->fd, ac->file, line, err, sizeof(err))
             : audit_ckpt_append(ac->file, line, err, sizeof(err)))) {
        log_msg(LOG_ERROR, "audit checkpoint: %s", err);
        goto end;
    }
    ac->last_seq = c.seq;
    log_msg(LOG_INFO, "audit checkpoint: %s", line);
    ok = 1;
 end:
    store_audit_row_list_free(rows, n);
    store_rollback(tx);
    return ok;
}

enum store_rc audit_event(STORE *st, const char *actor, const char *action,
                          const char *object, const char *details_json)
{
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return rc;
    if ((rc = store_audit_append(tx, actor, action, object, details_json))
        != STORE_OK) {
        store_rollback(tx);
        return rc;
    }
    return store_commit(tx);
}
