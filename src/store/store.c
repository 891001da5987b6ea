/*
 * Store front end: the [store] configuration, backend selection, the public
 * functions that dispatch to the backend's store_ops, record free functions
 * and small helpers shared by the backends.
 */
#include "store/store_int.h"

#include "conf/conf.h"
#include "util/log.h"
#include "util/metrics.h"

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Names                                                               */

const char *store_rc_str(enum store_rc rc)
{
    switch (rc) {
    case STORE_OK:       return "ok";
    case STORE_NOTFOUND: return "not found";
    case STORE_EXISTS:   return "exists";
    case STORE_CONFLICT: return "conflict";
    case STORE_BUSY:     return "busy";
    case STORE_ERROR:    return "error";
    }
    return "unknown";
}

static const char *const store_dev_states[] = {
    "registered", "pending", "enrolled", "revoked", "disabled"
};
static const char *const store_cmp_types[] = {
    "ir", "cr", "kur", "p10cr", "rr", "genm"
};
static const char *const store_cmp_states[] = {
    "issued", "confirmed", "rejected", "expired", "closed", "open", "waiting"
};

#define STORE_NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *store_device_state_str(int state)
{
    if (state < 0 || (size_t)state >= STORE_NELEM(store_dev_states))
        return NULL;
    return store_dev_states[state];
}

int store_device_state_parse(const char *s)
{
    size_t i;

    for (i = 0; s != NULL && i < STORE_NELEM(store_dev_states); i++)
        if (strcmp(s, store_dev_states[i]) == 0)
            return (int)i;
    return -1;
}

const char *store_cmp_type_str(int type)
{
    if (type < 0 || (size_t)type >= STORE_NELEM(store_cmp_types))
        return NULL;
    return store_cmp_types[type];
}

const char *store_cmp_state_str(int state)
{
    if (state < 0 || (size_t)state >= STORE_NELEM(store_cmp_states))
        return NULL;
    return store_cmp_states[state];
}

static const char *const store_ra_ops[] = { "ir", "cr", "p10cr", "kur",
                                            "rr" };

const char *store_ra_op_name(unsigned op)
{
    size_t i;

    for (i = 0; i < STORE_NELEM(store_ra_ops); i++)
        if (op == 1u << i)
            return store_ra_ops[i];
    return NULL;
}

int store_ra_ops_parse(const char *list, unsigned *mask)
{
    const char *p = list, *e;
    size_t len, i;
    unsigned m = 0;

    *mask = 0;
    if (list == NULL)
        return 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        for (e = p; *e != '\0' && *e != ','; e++)
            ;
        len = (size_t)(e - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0)
            return 0;
        if ((len == 3 && strncmp(p, "all", 3) == 0)
            || (len == 1 && *p == '*')) {
            m |= STORE_RA_OP_ALL;
        } else {
            for (i = 0; i < STORE_NELEM(store_ra_ops); i++)
                if (strlen(store_ra_ops[i]) == len
                    && strncmp(p, store_ra_ops[i], len) == 0)
                    break;
            if (i == STORE_NELEM(store_ra_ops))
                return 0;
            m |= 1u << i;
        }
        if (*e == '\0')
            break;
        p = e + 1;
    }
    *mask = m;
    return 1;
}

int store_ra_ops_format(unsigned mask, char *buf, size_t buflen)
{
    size_t i, off = 0, l;

    if (buflen == 0)
        return 0;
    buf[0] = '\0';
    for (i = 0; i < STORE_NELEM(store_ra_ops); i++) {
        if ((mask & (1u << i)) == 0)
            continue;
        l = strlen(store_ra_ops[i]);
        if (off + (off > 0) + l + 1 > buflen)
            return 0;
        if (off > 0)
            buf[off++] = ',';
        memcpy(buf + off, store_ra_ops[i], l + 1);
        off += l;
    }
    return 1;
}

unsigned store_ra_op_for_cmp_type(int cmp_type)
{
    switch (cmp_type) {
    case STORE_CMP_IR:    return STORE_RA_OP_IR;
    case STORE_CMP_CR:    return STORE_RA_OP_CR;
    case STORE_CMP_P10CR: return STORE_RA_OP_P10CR;
    case STORE_CMP_KUR:   return STORE_RA_OP_KUR;
    case STORE_CMP_RR:    return STORE_RA_OP_RR;
    default:              return 0;
    }
}

const char *store_ra_verdict_str(enum store_ra_verdict v)
{
    switch (v) {
    case STORE_RA_ALLOWED:    return "allowed";
    case STORE_RA_DISABLED:   return "RA disabled";
    case STORE_RA_NO_ALIAS:   return "alias not allowed for this RA";
    case STORE_RA_NO_PROFILE: return "profile not allowed for this RA";
    case STORE_RA_NO_OP:      return "operation not allowed for this RA";
    }
    return "unknown";
}

/* 1 if |s| is one of the |n| strings of |v|. */
static int store_strs_has(char *const *v, size_t n, const char *s)
{
    size_t i;

    for (i = 0; s != NULL && i < n; i++)
        if (v[i] != NULL && strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

enum store_ra_verdict store_ra_check(const struct store_ra *ra,
                                     const char *alias, const char *profile,
                                     unsigned op)
{
    if (ra->disabled)
        return STORE_RA_DISABLED;
    if (!store_strs_has(ra->aliases, ra->naliases, alias))
        return STORE_RA_NO_ALIAS;
    if (ra->nprofiles > 0 && !store_strs_has(ra->profiles, ra->nprofiles, "*")
        && !store_strs_has(ra->profiles, ra->nprofiles, profile))
        return STORE_RA_NO_PROFILE;
    if (store_ra_op_name(op) == NULL || (ra->ops & op) == 0)
        return STORE_RA_NO_OP;
    return STORE_RA_ALLOWED;
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

void store_conf_init(struct store_conf *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->backend = "sqlite";
    sc->synchronous_full = 1;
    sc->busy_timeout_ms = 5000;
}

void store_conf_clear(struct store_conf *sc)
{
    free(sc->alloc_);
    store_conf_init(sc);
}

/* Returns a malloc'ed path: |p| itself if absolute, else joined to the
 * directory of |conf_path|. */
static char *store_conf_resolve(const char *conf_path, const char *p)
{
    const char *slash;
    char *r;
    size_t dlen;

    if (p[0] == '/' || conf_path == NULL
        || (slash = strrchr(conf_path, '/')) == NULL)
        return strdup(p);
    dlen = (size_t)(slash - conf_path);
    r = malloc(dlen + 1 + strlen(p) + 1);
    if (r == NULL)
        return NULL;
    memcpy(r, conf_path, dlen);
    r[dlen] = '/';
    strcpy(r + dlen + 1, p);
    return r;
}

/* The postgresql keys of [store]: conninfo (required, without a
 * password) and password (a file:/env: secret spec). Returns 1 or 0. */
static int store_conf_load_pg(const struct conf *conf,
                              const struct conf_section *sec,
                              struct store_conf *sc, char *err, size_t errlen)
{
    const char *ci = conf_get(sec, "conninfo"), *pw = conf_get(sec, "password");
    size_t cl, pl;

    if (ci == NULL || *ci == '\0') {
        conf_err(conf, sec->line, err, errlen,
                 "[store] backend postgresql needs conninfo = ...");
        return 0;
    }
    if (pw != NULL && strncmp(pw, "file:", 5) != 0
        && strncmp(pw, "env:", 4) != 0) {
        conf_err(conf, sec->line, err, errlen,
                 "[store] password must be file:PATH or env:VAR");
        return 0;
    }
    cl = strlen(ci);
    pl = pw != NULL ? strlen(pw) : 0;
    if ((sc->alloc_ = malloc(cl + pl + 2)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    memcpy(sc->alloc_, ci, cl + 1);
    sc->conninfo = sc->alloc_;
    if (pw != NULL) {
        memcpy(sc->alloc_ + cl + 1, pw, pl + 1);
        sc->password = sc->alloc_ + cl + 1;
    }
    return 1;
}

int store_conf_load(const struct conf *conf, struct store_conf *sc,
                    char *err, size_t errlen)
{
    const struct conf_section *sec;
    const char *v;
    long busy;
    int ok = 0;

    store_conf_clear(sc);
    sec = conf_find(conf, "store", "");
    if (sec == NULL) {
        snprintf(err, errlen, "%s: no [store] section", conf->path);
        goto end;
    }
    v = conf_get(sec, "backend");
    if (v != NULL) {
        if (strcmp(v, "postgresql") == 0) {
            sc->backend = "postgresql";
            if (!store_conf_load_pg(conf, sec, sc, err, errlen))
                goto end;
            goto common;
        }
        if (strcmp(v, "sqlite") != 0) {
            conf_err(conf, sec->line, err, errlen,
                     "[store] backend '%s' is not supported (sqlite, "
                     "postgresql)", v);
            goto end;
        }
        sc->backend = "sqlite";
    }
    v = conf_get(sec, "path");
    if (v == NULL || *v == '\0') {
        conf_err(conf, sec->line, err, errlen, "[store] needs path = FILE");
        goto end;
    }
    if ((sc->alloc_ = store_conf_resolve(conf->path, v)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto end;
    }
    sc->path = sc->alloc_;
    v = conf_get(sec, "synchronous");
    if (v != NULL) {
        if (strcmp(v, "full") == 0) {
            sc->synchronous_full = 1;
        } else if (strcmp(v, "normal") == 0) {
            sc->synchronous_full = 0;
        } else {
            conf_err(conf, sec->line, err, errlen,
                     "[store] synchronous must be full or normal, not '%s'", v);
            goto end;
        }
    }
 common:
    if (!conf_get_duration(conf, sec, "busy_timeout", 5, 0, 3600, &busy,
                           err, errlen))
        goto end;
    sc->busy_timeout_ms = busy * 1000;
    if (!conf_check_used(conf, sec, err, errlen))
        goto end;
    ok = 1;
 end:
    if (!ok)
        store_conf_clear(sc);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Lifetime and transactions                                           */

enum store_rc store_open(const struct store_conf *sc, STORE **out,
                         char *err, size_t errlen)
{
    STORE *st = NULL;
    enum store_rc rc = STORE_ERROR;

    const struct store_ops *ops = &store_sqlite_ops;

    *out = NULL;
    if (sc->backend != NULL && strcmp(sc->backend, "postgresql") == 0) {
        ops = &store_pg_ops;
        if (sc->conninfo == NULL || *sc->conninfo == '\0') {
            snprintf(err, errlen, "store conninfo not set");
            goto end;
        }
    } else if (sc->backend != NULL && strcmp(sc->backend, "sqlite") != 0) {
        snprintf(err, errlen, "store backend '%s' is not supported",
                 sc->backend);
        goto end;
    } else if (sc->path == NULL || *sc->path == '\0') {
        snprintf(err, errlen, "store path not set");
        goto end;
    }
    if ((st = calloc(1, sizeof(*st))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto end;
    }
    st->ops = ops;
    rc = st->ops->open(sc, &st->be, &st->schema_version, err, errlen);
    if (rc != STORE_OK)
        goto end;
    *out = st;
    st = NULL;
 end:
    free(st);
    return rc;
}

void store_close(STORE *st)
{
    if (st == NULL)
        return;
    st->ops->close(st->be);
    free(st);
}

int store_schema_version(STORE *st)
{
    return st->schema_version;
}

enum store_rc store_change_token(STORE *st, uint64_t *tok)
{
    uint64_t be = 0;
    enum store_rc rc;

    *tok = 0;
    if (st->ops->change_token == NULL)
        return STORE_NOTFOUND;
    if ((rc = st->ops->change_token(st->be, &be)) != STORE_OK)
        return rc;
    /* own commits in the high half: they show even before the backend's
     * value moves */
    *tok = (atomic_load(&st->changes) << 32) ^ be;
    return STORE_OK;
}

static enum store_rc store_begin_mode(STORE *st, STORE_TX **out, int write)
{
    STORE_TX *tx;
    enum store_rc rc;

    *out = NULL;
    if ((tx = calloc(1, sizeof(*tx))) == NULL)
        return STORE_ERROR;
    tx->st = st;
    tx->write = write;
    rc = st->ops->begin(tx);
    if (rc != STORE_OK) {
        free(tx);
        return rc;
    }
    *out = tx;
    return STORE_OK;
}

enum store_rc store_begin(STORE *st, STORE_TX **out)
{
    return store_begin_mode(st, out, 1);
}

enum store_rc store_begin_read(STORE *st, STORE_TX **out)
{
    return store_begin_mode(st, out, 0);
}

enum store_rc store_commit(STORE_TX *tx)
{
    struct timespec t0, t1;
    enum store_rc rc;
    int write;

    if (tx == NULL)
        return STORE_ERROR;
    write = tx->write;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = tx->st->ops->commit(tx);
    if (write)
        atomic_fetch_add(&tx->st->changes, 1);
    if (write) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        metrics_observe_commit(rc == STORE_OK,
                               (double)(t1.tv_sec - t0.tv_sec)
                               + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    if (rc != STORE_OK)
        log_msg(LOG_ERROR, "store: commit failed: %s", tx->errmsg);
    free(tx);
    return rc;
}

enum store_rc store_commit_clear(STORE_TX **tx)
{
    enum store_rc rc = store_commit(*tx);

    *tx = NULL;
    return rc;
}

void store_rollback(STORE_TX *tx)
{
    if (tx == NULL)
        return;
    tx->st->ops->rollback(tx);
    free(tx);
}

const char *store_tx_errmsg(const STORE_TX *tx)
{
    return tx->errmsg;
}

enum store_rc store_tx_fail(STORE_TX *tx, enum store_rc rc, const char *fmt,
                            ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tx->errmsg, sizeof(tx->errmsg), fmt, ap);
    va_end(ap);
    if (rc == STORE_ERROR || rc == STORE_BUSY)
        log_msg(LOG_DEBUG, "store: %s", tx->errmsg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

int store_sha256(const void *data, size_t len,
                 unsigned char out[STORE_SHA256_LEN])
{
    unsigned int n = 0;

    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1
        && n == STORE_SHA256_LEN;
}

/* Returns the total length of the one DER TLV at the start of |p|, or 0. */
static size_t store_der_tlv_len(const unsigned char *p, size_t len)
{
    const unsigned char *q = p;
    long clen = 0;
    int tag, xclass, r;

    if (len == 0 || len > 0x7fffffff)
        return 0;
    r = ASN1_get_object(&q, &clen, &tag, &xclass, (long)len);
    if ((r & 0x80) != 0 || r == 0x21) /* error, or indefinite length */
        return 0;
    return (size_t)(q - p) + (size_t)clen;
}

int store_der_split(const unsigned char *buf, size_t len,
                    struct store_der **out, size_t *n)
{
    struct store_der *v = NULL, *nv;
    size_t cnt = 0, cap = 0, off = 0, l;

    *out = NULL;
    *n = 0;
    while (off < len) {
        if ((l = store_der_tlv_len(buf + off, len - off)) == 0
            || l > len - off)
            goto err;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
                goto err;
            v = nv;
        }
        if ((v[cnt].der = malloc(l)) == NULL)
            goto err;
        memcpy(v[cnt].der, buf + off, l);
        v[cnt].len = l;
        cnt++;
        off += l;
    }
    *out = v;
    *n = cnt;
    return 1;
 err:
    store_der_list_free(v, cnt);
    return 0;
}

int store_der_join(const struct store_der *v, size_t n, unsigned char **out,
                   size_t *len)
{
    unsigned char *buf;
    size_t i, total = 0, off = 0;

    *out = NULL;
    *len = 0;
    for (i = 0; i < n; i++) {
        if (v[i].der == NULL || store_der_tlv_len(v[i].der, v[i].len)
            != v[i].len)
            return 0;
        total += v[i].len;
    }
    if ((buf = malloc(total ? total : 1)) == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        memcpy(buf + off, v[i].der, v[i].len);
        off += v[i].len;
    }
    *out = buf;
    *len = total;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Free functions                                                      */

void store_der_list_free(struct store_der *v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        free(v[i].der);
    free(v);
}

void store_ca_free(struct store_ca *ca)
{
    if (ca == NULL)
        return;
    free(ca->name);
    free(ca->cert_der);
    store_der_list_free(ca->chain, ca->nchain);
    free(ca->key_ref);
    free(ca->signer_cert_der);
    free(ca->signer_key_ref);
    free(ca);
}

void store_cert_free(struct store_cert *c)
{
    if (c == NULL)
        return;
    free(c->subject);
    free(c->der);
    free(c->profile);
    free(c);
}

void store_vendor_free(struct store_vendor *v)
{
    if (v == NULL)
        return;
    free(v->name);
    store_der_list_free(v->certs, v->ncerts);
    free(v);
}

void store_device_free(struct store_device *d)
{
    if (d == NULL)
        return;
    free(d->identifier);
    free(d);
}

void store_ra_free(struct store_ra *ra)
{
    size_t i;

    if (ra == NULL)
        return;
    free(ra->name);
    free(ra->cert_der);
    for (i = 0; i < ra->naliases; i++)
        free(ra->aliases[i]);
    free(ra->aliases);
    for (i = 0; i < ra->nprofiles; i++)
        free(ra->profiles[i]);
    free(ra->profiles);
    free(ra);
}

void store_cmp_txn_free(struct store_cmp_txn *t)
{
    if (t == NULL)
        return;
    free(t->alias);
    free(t);
}

void store_crl_free(struct store_crl *crl)
{
    if (crl == NULL)
        return;
    free(crl->der);
    free(crl);
}

void store_vendor_crl_free(struct store_vendor_crl *c)
{
    if (c == NULL)
        return;
    free(c->source);
    free(c->der);
    free(c);
}

void store_vendor_crl_list_free(struct store_vendor_crl **v, size_t n)
{
    size_t i;

    for (i = 0; v != NULL && i < n; i++)
        store_vendor_crl_free(v[i]);
    free(v);
}

void store_audit_row_free_elem(void *row)
{
    store_audit_row_free(row);
}

void store_audit_row_free(struct store_audit_row *r)
{
    if (r == NULL)
        return;
    free(r->actor);
    free(r->action);
    free(r->object);
    free(r->details);
    free(r);
}

struct store_audit_row *store_audit_row_dup(const struct store_audit_row *b)
{
    struct store_audit_row *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->seq = b->seq;
    r->time = b->time;
    memcpy(r->hash, b->hash, STORE_SHA256_LEN);
    if ((b->actor != NULL && (r->actor = strdup(b->actor)) == NULL)
        || (b->action != NULL && (r->action = strdup(b->action)) == NULL)
        || (b->object != NULL && (r->object = strdup(b->object)) == NULL)
        || (b->details != NULL && (r->details = strdup(b->details)) == NULL)) {
        store_audit_row_free(r);
        return NULL;
    }
    return r;
}

#define STORE_LIST_FREE(fn, type, elemfree)        \
    void fn(type **v, size_t n)                    \
    {                                              \
        size_t i;                                  \
        if (v == NULL)                             \
            return;                                \
        for (i = 0; i < n; i++)                    \
            elemfree(v[i]);                        \
        free(v);                                   \
    }

STORE_LIST_FREE(store_ca_list_free, struct store_ca, store_ca_free)
STORE_LIST_FREE(store_cert_list_free, struct store_cert, store_cert_free)
STORE_LIST_FREE(store_vendor_list_free, struct store_vendor, store_vendor_free)
STORE_LIST_FREE(store_device_list_free, struct store_device, store_device_free)
STORE_LIST_FREE(store_ra_list_free, struct store_ra, store_ra_free)
STORE_LIST_FREE(store_cmp_txn_list_free, struct store_cmp_txn,
                store_cmp_txn_free)
STORE_LIST_FREE(store_audit_row_list_free, struct store_audit_row,
                store_audit_row_free)

void store_cert_filter_init(struct store_cert_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->status = -1;
}

void store_device_filter_init(struct store_device_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->state = -1;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

#define OPS(tx) ((tx)->st->ops)

/* Refuses writes on a read transaction. */
#define STORE_NEED_WRITE(tx)                                              \
    do {                                                                  \
        if (!(tx)->write)                                                 \
            return store_tx_fail((tx), STORE_ERROR,                       \
                                 "write in a read-only transaction");     \
    } while (0)

enum store_rc store_ca_insert(STORE_TX *tx, const struct store_ca *ca,
                              int64_t *id)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->ca_insert(tx, ca, id);
}

enum store_rc store_ca_update(STORE_TX *tx, const struct store_ca *ca)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->ca_update(tx, ca);
}

enum store_rc store_ca_get(STORE_TX *tx, int64_t id, struct store_ca **out)
{
    return OPS(tx)->ca_get(tx, id, NULL, out);
}

enum store_rc store_ca_get_by_name(STORE_TX *tx, const char *name,
                                   struct store_ca **out)
{
    return OPS(tx)->ca_get(tx, 0, name, out);
}

enum store_rc store_ca_list(STORE_TX *tx, struct store_ca ***out, size_t *n)
{
    return OPS(tx)->ca_list(tx, out, n);
}

enum store_rc store_cert_insert(STORE_TX *tx, const struct store_cert *c,
                                int64_t *id)
{
    unsigned char sha[STORE_SHA256_LEN];

    STORE_NEED_WRITE(tx);
    if (id != NULL)
        *id = 0;
    if (c->serial_len == 0 || c->serial_len > STORE_SERIAL_MAX
        || c->der == NULL || c->der_len == 0 || c->ca_id <= 0
        || (c->has_vendor && (c->vendor_serial_len == 0
                              || c->vendor_serial_len > STORE_SERIAL_MAX)))
        return store_tx_fail(tx, STORE_ERROR, "cert_insert: bad record");
    if (!store_sha256(c->der, c->der_len, sha))
        return store_tx_fail(tx, STORE_ERROR, "sha256 failed");
    return OPS(tx)->cert_insert(tx, c, sha, id);
}

enum store_rc store_cert_get(STORE_TX *tx, int64_t id, struct store_cert **out)
{
    return OPS(tx)->cert_get(tx, id, 0, NULL, 0, out);
}

enum store_rc store_cert_get_by_serial(STORE_TX *tx, int64_t ca_id,
                                       const unsigned char *serial,
                                       size_t serial_len,
                                       struct store_cert **out)
{
    *out = NULL;
    if (serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
        return STORE_NOTFOUND;
    return OPS(tx)->cert_get(tx, 0, ca_id, serial, serial_len, out);
}

enum store_rc store_cert_revoke(STORE_TX *tx, int64_t id, int reason,
                                int64_t when)
{
    STORE_NEED_WRITE(tx);
    if (reason == STORE_REASON_REMOVE || reason == 7 || reason > 10
        || reason < -1)
        return store_tx_fail(tx, STORE_ERROR, "reason %d is no revocation "
                             "reason", reason);
    return OPS(tx)->cert_revoke(tx, id, reason, when);
}

enum store_rc store_cert_unrevoke(STORE_TX *tx, int64_t id)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->cert_unrevoke(tx, id);
}

enum store_rc store_cert_list(STORE_TX *tx, const struct store_cert_filter *f,
                              struct store_cert ***out, size_t *n)
{
    return OPS(tx)->cert_list(tx, f, out, n);
}

enum store_rc store_cert_count(STORE_TX *tx, const struct store_cert_filter *f,
                               int64_t *n)
{
    return OPS(tx)->cert_count(tx, f, n);
}

enum store_rc store_cert_foreach_revoked(STORE_TX *tx, int64_t ca_id,
                                         int64_t not_after_min,
                                         store_revoked_cb cb, void *arg)
{
    return OPS(tx)->cert_foreach_revoked(tx, ca_id, not_after_min, cb, arg);
}

enum store_rc store_vendor_insert(STORE_TX *tx, const struct store_vendor *v,
                                  int64_t *id)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->vendor_insert(tx, v, id);
}

enum store_rc store_vendor_update(STORE_TX *tx, const struct store_vendor *v)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->vendor_update(tx, v);
}

enum store_rc store_vendor_get(STORE_TX *tx, int64_t id,
                               struct store_vendor **out)
{
    return OPS(tx)->vendor_get(tx, id, NULL, out);
}

enum store_rc store_vendor_get_by_name(STORE_TX *tx, const char *name,
                                       struct store_vendor **out)
{
    return OPS(tx)->vendor_get(tx, 0, name, out);
}

enum store_rc store_vendor_list(STORE_TX *tx, struct store_vendor ***out,
                                size_t *n)
{
    return OPS(tx)->vendor_list(tx, out, n);
}

enum store_rc store_vendor_set_disabled(STORE_TX *tx, int64_t id,
                                        int disabled)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->vendor_set_disabled(tx, id, disabled ? 1 : 0);
}

enum store_rc store_vendor_delete(STORE_TX *tx, int64_t id, int force)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->vendor_delete(tx, id, force);
}

enum store_rc store_device_insert(STORE_TX *tx, int64_t vendor_id,
                                  const char *identifier, int64_t *id)
{
    STORE_NEED_WRITE(tx);
    if (identifier == NULL || *identifier == '\0'
        || strlen(identifier) > STORE_IDENT_MAX)
        return store_tx_fail(tx, STORE_ERROR, "bad device identifier");
    return OPS(tx)->device_insert(tx, vendor_id, identifier, id);
}

enum store_rc store_device_get(STORE_TX *tx, int64_t id,
                               struct store_device **out)
{
    return OPS(tx)->device_get(tx, id, 0, NULL, out);
}

enum store_rc store_device_get_by_ident(STORE_TX *tx, int64_t vendor_id,
                                        const char *identifier,
                                        struct store_device **out)
{
    return OPS(tx)->device_get(tx, 0, vendor_id, identifier, out);
}

enum store_rc store_device_set_state(STORE_TX *tx, int64_t id, int from_state,
                                     int to_state, int64_t cert_id)
{
    STORE_NEED_WRITE(tx);
    if (store_device_state_str(to_state) == NULL)
        return store_tx_fail(tx, STORE_ERROR, "bad device state %d",
                             to_state);
    return OPS(tx)->device_set_state(tx, id, from_state, to_state, cert_id);
}

enum store_rc store_device_delete(STORE_TX *tx, int64_t id)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->device_delete(tx, id);
}

enum store_rc store_device_list(STORE_TX *tx,
                                const struct store_device_filter *f,
                                struct store_device ***out, size_t *n)
{
    return OPS(tx)->device_list(tx, f, out, n);
}

enum store_rc store_device_count(STORE_TX *tx,
                                 const struct store_device_filter *f,
                                 int64_t *n)
{
    return OPS(tx)->device_count(tx, f, n);
}

/* The caller's identifier iterator, with the identifier checked for both
 * backends: 1..STORE_IDENT_MAX octets, no NUL. */
struct store_ident_check {
    store_ident_next_fn next;
    void *arg;
    int bad;
};

static int store_ident_checked(void *p, const char **ident, size_t *len)
{
    struct store_ident_check *c = p;
    int r = c->next(c->arg, ident, len);

    if (r == 1 && (*len == 0 || *len > STORE_IDENT_MAX
                   || memchr(*ident, '\0', *len) != NULL)) {
        c->bad = 1;
        return -1;
    }
    return r;
}

enum store_rc store_device_import(STORE_TX *tx, int64_t vendor_id,
                                  store_ident_next_fn next, void *arg,
                                  uint64_t *count)
{
    struct store_ident_check c = { next, arg, 0 };
    enum store_rc rc;

    if (count != NULL)
        *count = 0;
    STORE_NEED_WRITE(tx);
    rc = OPS(tx)->device_import(tx, vendor_id, store_ident_checked, &c, count);
    if (c.bad)
        rc = store_tx_fail(tx, STORE_ERROR, "identifier empty, longer than %d "
                           "octets or containing NUL", STORE_IDENT_MAX);
    return rc;
}

/* 1 if every one of the |n| strings of |v| is non-empty. */
static int store_strs_ok(char *const *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v == NULL || v[i] == NULL || *v[i] == '\0')
            return 0;
    return 1;
}

enum store_rc store_ra_insert(STORE_TX *tx, const struct store_ra *ra,
                              int64_t *id)
{
    unsigned char sha[STORE_SHA256_LEN];

    STORE_NEED_WRITE(tx);
    if (id != NULL)
        *id = 0;
    if (ra->name == NULL || *ra->name == '\0')
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: no name");
    /* the SQLite backend inserts aliases with OR IGNORE: check them here */
    if (!store_strs_ok(ra->aliases, ra->naliases))
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: empty alias");
    if (!store_strs_ok(ra->profiles, ra->nprofiles))
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: empty profile");
    if ((ra->ops & ~STORE_RA_OP_ALL) != 0)
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: unknown operation "
                             "bits 0x%x", ra->ops);
    if (ra->cert_der == NULL || ra->cert_len == 0
        || !store_sha256(ra->cert_der, ra->cert_len, sha))
        return store_tx_fail(tx, STORE_ERROR, "ra_insert: bad certificate");
    return OPS(tx)->ra_insert(tx, ra, sha, id);
}

enum store_rc store_ra_get(STORE_TX *tx, int64_t id, struct store_ra **out)
{
    return OPS(tx)->ra_get(tx, id, NULL, NULL, out);
}

enum store_rc store_ra_get_by_name(STORE_TX *tx, const char *name,
                                   struct store_ra **out)
{
    return OPS(tx)->ra_get(tx, 0, name, NULL, out);
}

enum store_rc store_ra_get_by_sha256(STORE_TX *tx,
                                     const unsigned char sha[STORE_SHA256_LEN],
                                     struct store_ra **out)
{
    return OPS(tx)->ra_get(tx, 0, NULL, sha, out);
}

enum store_rc store_ra_list(STORE_TX *tx, struct store_ra ***out, size_t *n)
{
    return OPS(tx)->ra_list(tx, out, n);
}

enum store_rc store_ra_set_disabled(STORE_TX *tx, int64_t id, int disabled)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->ra_set_disabled(tx, id, disabled ? 1 : 0);
}

enum store_rc store_ra_delete(STORE_TX *tx, int64_t id)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->ra_delete(tx, id);
}

/* Checks the bounded fields of a CMP transaction record. */
static int store_cmp_txn_ok(const struct store_cmp_txn *t)
{
    return t->tid_len >= 1 && t->tid_len <= STORE_TID_MAX
        && t->sender_nonce_len <= STORE_NONCE_MAX
        && t->req_nonce_len <= STORE_NONCE_MAX
        && store_cmp_type_str(t->type) != NULL
        && store_cmp_state_str(t->state) != NULL;
}

enum store_rc store_cmp_txn_insert(STORE_TX *tx, const struct store_cmp_txn *t)
{
    STORE_NEED_WRITE(tx);
    if (!store_cmp_txn_ok(t))
        return store_tx_fail(tx, STORE_ERROR, "cmp_txn_insert: bad record");
    return OPS(tx)->cmp_txn_insert(tx, t);
}

enum store_rc store_cmp_txn_get(STORE_TX *tx, const unsigned char *tid,
                                size_t tid_len, struct store_cmp_txn **out)
{
    *out = NULL;
    if (tid == NULL || tid_len == 0 || tid_len > STORE_TID_MAX)
        return STORE_NOTFOUND;
    return OPS(tx)->cmp_txn_get(tx, tid, tid_len, out);
}

enum store_rc store_cmp_txn_set_state(STORE_TX *tx, const unsigned char *tid,
                                      size_t tid_len, int from_state,
                                      int to_state)
{
    STORE_NEED_WRITE(tx);
    if (tid == NULL || tid_len == 0 || tid_len > STORE_TID_MAX)
        return STORE_NOTFOUND;
    if (store_cmp_state_str(to_state) == NULL)
        return store_tx_fail(tx, STORE_ERROR, "bad cmp state %d", to_state);
    return OPS(tx)->cmp_txn_set_state(tx, tid, tid_len, from_state, to_state);
}

enum store_rc store_cmp_txn_update(STORE_TX *tx, const struct store_cmp_txn *t,
                                   int from_state)
{
    STORE_NEED_WRITE(tx);
    if (!store_cmp_txn_ok(t))
        return store_tx_fail(tx, STORE_ERROR, "cmp_txn_update: bad record");
    return OPS(tx)->cmp_txn_update(tx, t, from_state);
}

enum store_rc store_cmp_txn_list_expired(STORE_TX *tx, int64_t now, long limit,
                                         struct store_cmp_txn ***out,
                                         size_t *n)
{
    return OPS(tx)->cmp_txn_list_expired(tx, now, limit, out, n);
}

enum store_rc store_cmp_txn_list_waiting_device(STORE_TX *tx,
                                                int64_t device_id, long limit,
                                                struct store_cmp_txn ***out,
                                                size_t *n)
{
    return OPS(tx)->cmp_txn_list_waiting_device(tx, device_id, limit, out, n);
}

enum store_rc store_cmp_txn_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->cmp_txn_purge(tx, before, n);
}

enum store_rc store_cmp_txn_count_requester(STORE_TX *tx,
                                            const unsigned char *requester,
                                            int64_t since, int64_t *waiting,
                                            int64_t *recent)
{
    *waiting = 0;
    *recent = 0;
    if (requester == NULL)
        return store_tx_fail(tx, STORE_ERROR, "cmp_txn_count_requester");
    return OPS(tx)->cmp_txn_count_requester(tx, requester, since, waiting,
                                            recent);
}

enum store_rc store_crl_next_number(STORE_TX *tx, int64_t ca_id,
                                    int64_t *number)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->crl_next_number(tx, ca_id, number);
}

enum store_rc store_crl_put(STORE_TX *tx, const struct store_crl *crl)
{
    STORE_NEED_WRITE(tx);
    if (crl->der == NULL || crl->der_len == 0)
        return store_tx_fail(tx, STORE_ERROR, "crl_put: no DER");
    return OPS(tx)->crl_put(tx, crl);
}

enum store_rc store_crl_get_last(STORE_TX *tx, int64_t ca_id,
                                 struct store_crl **out)
{
    return OPS(tx)->crl_get_last(tx, ca_id, out);
}

enum store_rc store_vendor_crl_put(STORE_TX *tx,
                                   const struct store_vendor_crl *c)
{
    STORE_NEED_WRITE(tx);
    if (c->der == NULL || c->der_len == 0 || c->vendor_id <= 0)
        return store_tx_fail(tx, STORE_ERROR, "vendor_crl_put: bad record");
    return OPS(tx)->vendor_crl_put(tx, c);
}

enum store_rc store_vendor_crl_list(STORE_TX *tx, int64_t vendor_id,
                                    struct store_vendor_crl ***out,
                                    size_t *n)
{
    return OPS(tx)->vendor_crl_list(tx, vendor_id, out, n);
}

enum store_rc store_audit_list(STORE_TX *tx, long limit,
                               struct store_audit_row ***out, size_t *n)
{
    return OPS(tx)->audit_list(tx, limit, out, n);
}

enum store_rc store_audit_count(STORE_TX *tx, int64_t *nrows, int64_t *last_seq)
{
    return OPS(tx)->audit_count(tx, nrows, last_seq);
}

int store_schema_too_new(int v, int latest, char *err, size_t errlen)
{
    snprintf(err, errlen, "database schema version %d is newer than this "
             "cmpca (%d)", v, latest);
    return 0;
}

int store_migrate_steps(int from, int latest, const char *const *migrations,
                        store_exec_fn exec, void *db, char *err,
                        size_t errlen)
{
    char sql[96];
    int v;

    for (v = from; v < latest; v++) {
        if (!exec(db, migrations[v], err, errlen))
            return 0;
        snprintf(sql, sizeof(sql), "DELETE FROM schema_version;"
                 "INSERT INTO schema_version VALUES(%d)", v + 1);
        if (!exec(db, sql, err, errlen))
            return 0;
        log_msg(LOG_INFO, "store: schema migrated to version %d", v + 1);
    }
    return 1;
}

void store_rollover_free(struct store_rollover *r)
{
    if (r == NULL)
        return;
    free(r->new_with_new.der);
    free(r->new_with_old.der);
    free(r->old_with_new.der);
    free(r);
}

void store_rollover_list_free(struct store_rollover **v, size_t n)
{
    size_t i;

    for (i = 0; v != NULL && i < n; i++)
        store_rollover_free(v[i]);
    free(v);
}

enum store_rc store_rollover_insert(STORE_TX *tx,
                                    const struct store_rollover *r,
                                    int64_t *id)
{
    STORE_NEED_WRITE(tx);
    if (id != NULL)
        *id = 0;
    if (r->ca_id <= 0 || r->new_with_new.der == NULL
        || r->new_with_new.len == 0 || r->new_with_old.der == NULL
        || r->new_with_old.len == 0 || r->old_with_new.der == NULL
        || r->old_with_new.len == 0)
        return store_tx_fail(tx, STORE_ERROR, "rollover_insert: bad record");
    return OPS(tx)->rollover_insert(tx, r, id);
}

enum store_rc store_rollover_list(STORE_TX *tx, int64_t ca_id,
                                  struct store_rollover ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return OPS(tx)->rollover_list(tx, ca_id, out, n);
}

/* ------------------------------------------------------------------ */
/* Stored replies                                                      */

void store_txn_reply_free(struct store_txn_reply *r)
{
    if (r == NULL)
        return;
    free(r->alias);
    free(r->tid);
    free(r->reply);
    free(r);
}

enum store_rc store_txn_reply_put(STORE_TX *tx, const struct store_txn_reply *r)
{
    STORE_NEED_WRITE(tx);
    if (r->alias == NULL || r->reply == NULL || r->reply_len == 0)
        return store_tx_fail(tx, STORE_ERROR, "txn_reply_put: bad record");
    return OPS(tx)->txn_reply_put(tx, r);
}

enum store_rc store_txn_reply_get(STORE_TX *tx, const unsigned char *req_sha256,
                                  struct store_txn_reply **out)
{
    *out = NULL;
    return OPS(tx)->txn_reply_get(tx, req_sha256, out);
}

enum store_rc store_txn_reply_purge(STORE_TX *tx, int64_t before, int64_t *n)
{
    STORE_NEED_WRITE(tx);
    return OPS(tx)->txn_reply_purge(tx, before, n);
}
