/*
 * The OCSP responder behind ocsp.h: bounded request decode, CertID to CA
 * by precomputed name and key hashes, status from the store, and the
 * BasicOCSPResponse built and signed with libcrypto's OCSP API; the
 * pre-produced response cache in front of it (ocsp_cache.h).
 */
#include "ocsp/ocsp.h"

#include "ocsp/ocsp_cache.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* The CertID hash algorithms we recognise (RFC 6960 4.1.1 uses SHA-1;
 * RFC 6960 4.3 allows others). */
#define OCSP_NMD 4
static const int ocsp_md_nids[OCSP_NMD] = {
    NID_sha1, NID_sha256, NID_sha384, NID_sha512
};

/* One CA we answer for, with what matches its CertIDs. */
struct ocsp_ca {
    const CA *ca;                       /* borrowed */
    int64_t id;
    X509 *cert;                         /* the responder certificate
                                         * (the CA's or the delegate's) */
    CA_SIGNER *signer;                  /* reference */
    unsigned long flags;                /* OCSP_basic_sign flags */
    unsigned char name_hash[OCSP_NMD][EVP_MAX_MD_SIZE];
    unsigned char key_hash[OCSP_NMD][EVP_MAX_MD_SIZE];
    unsigned int hlen[OCSP_NMD];
};

struct ocsp_responder {
    STORE *store;
    struct ocsp_conf conf;
    struct ocsp_ca *cas;
    size_t ncas;
    OCSP_CACHE *cache;                  /* NULL = off */
    atomic_ulong hits, revalidated, misses, bypassed;
    pthread_mutex_t tok_mu;             /* the token reused for cache_check */
    int tok_valid;
    uint64_t tok;
    time_t tok_at;
};

void ocsp_conf_init(struct ocsp_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->next_update = 3600;
    c->max_request = 4096;
    c->max_certids = 8;
    c->max_nonce = 64;
    c->cache = 1;
    c->cache_refresh = 300;
    c->cache_check = 0;
    c->cache_entries = 100000;
    c->cache_bytes = 64UL * 1024 * 1024;
}

const char *ocsp_outcome_str(enum ocsp_outcome o)
{
    switch (o) {
    case OCSP_OUT_GOOD: return "good";
    case OCSP_OUT_REVOKED: return "revoked";
    case OCSP_OUT_UNKNOWN: return "unknown";
    case OCSP_OUT_MALFORMED: return "malformed";
    case OCSP_OUT_UNAUTHORIZED: return "unauthorized";
    case OCSP_OUT_TRYLATER: return "tryLater";
    default: return "internal";
    }
}

OCSP_RESPONDER *ocsp_responder_new(STORE *store, const struct ocsp_conf *c)
{
    OCSP_RESPONDER *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->store = store;
    if (c != NULL)
        r->conf = *c;
    else
        ocsp_conf_init(&r->conf);
    if (r->conf.max_certids < 1)
        r->conf.max_certids = 1;
    if (r->conf.next_update > 0 && r->conf.cache_refresh > r->conf.next_update)
        r->conf.cache_refresh = r->conf.next_update;
    pthread_mutex_init(&r->tok_mu, NULL);
    if (r->conf.cache && r->conf.cache_refresh > 0
        && (r->cache = ocsp_cache_new(r->conf.cache_entries,
                                      r->conf.cache_bytes)) == NULL) {
        ocsp_responder_free(r);
        return NULL;
    }
    return r;
}

void ocsp_responder_free(OCSP_RESPONDER *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->ncas; i++) {
        X509_free(r->cas[i].cert);
        ca_signer_free(r->cas[i].signer);
    }
    free(r->cas);
    ocsp_cache_free(r->cache);
    pthread_mutex_destroy(&r->tok_mu);
    free(r);
}

void ocsp_responder_cache_stats(OCSP_RESPONDER *r,
                                struct ocsp_cache_counters *st)
{
    struct ocsp_cache_stats cs;

    memset(st, 0, sizeof(*st));
    if (r->cache == NULL)
        return;
    ocsp_cache_get_stats(r->cache, &cs);
    st->enabled = 1;
    st->hits = atomic_load(&r->hits);
    st->revalidated = atomic_load(&r->revalidated);
    st->misses = atomic_load(&r->misses);
    st->bypassed = atomic_load(&r->bypassed);
    st->evictions = cs.evictions;
    st->entries = cs.entries;
    st->bytes = cs.bytes;
}

size_t ocsp_responder_num_cas(const OCSP_RESPONDER *r)
{
    return r->ncas;
}

/* Fills the name and key hashes of |e| from the CA certificate |x|.
 * Returns 1 or 0. */
static int ocsp_ca_hashes(struct ocsp_ca *e, X509 *x)
{
    const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(x);
    unsigned char *name = NULL;
    int nlen, i, ok = 0;

    nlen = i2d_X509_NAME(X509_get_subject_name(x), &name);
    if (nlen <= 0 || key == NULL)
        goto end;
    for (i = 0; i < OCSP_NMD; i++) {
        const EVP_MD *md = EVP_get_digestbynid(ocsp_md_nids[i]);
        unsigned int kl = 0;

        if (md == NULL
            || !EVP_Digest(name, (size_t)nlen, e->name_hash[i], &e->hlen[i],
                           md, NULL)
            || !EVP_Digest(key->data, (size_t)key->length, e->key_hash[i],
                           &kl, md, NULL)
            || kl != e->hlen[i])
            goto end;
    }
    ok = 1;
 end:
    OPENSSL_free(name);
    return ok;
}

int ocsp_responder_add_ca(OCSP_RESPONDER *r, const CA *ca, X509 *signer_cert,
                          CA_SIGNER *signer, char *err, size_t errlen)
{
    struct ocsp_ca *v, *e;
    X509 *cacert = ca_get0_cert(ca);
    CA_SIGNER *s = signer;
    X509 *rc = signer_cert;

    if ((signer == NULL) != (signer_cert == NULL)) {
        snprintf(err, errlen, "CA %s: a delegated OCSP signer needs both "
                 "certificate and key", ca_get0_name(ca));
        return 0;
    }
    if (s == NULL) {
        s = (CA_SIGNER *)ca_get0_signer(ca);
        rc = cacert;
        if (s == NULL) {
            snprintf(err, errlen, "CA %s: loaded without its key and no "
                     "delegated OCSP signer", ca_get0_name(ca));
            return 0;
        }
    } else if (X509_check_issued(cacert, signer_cert) != X509_V_OK
               || !(X509_get_extended_key_usage(signer_cert) & XKU_OCSP_SIGN)) {
        snprintf(err, errlen, "CA %s: the OCSP signer certificate is not "
                 "issued by the CA or lacks id-kp-OCSPSigning",
                 ca_get0_name(ca));
        ERR_clear_error();
        return 0;
    }
    if (!ca_signer_matches_cert(s, rc)) {
        snprintf(err, errlen, "CA %s: the OCSP signing key does not match "
                 "its certificate", ca_get0_name(ca));
        return 0;
    }
    v = realloc(r->cas, (r->ncas + 1) * sizeof(*v));
    if (v == NULL)
        goto oom;
    r->cas = v;
    e = &v[r->ncas];
    memset(e, 0, sizeof(*e));
    e->ca = ca;
    e->id = ca_get_id(ca);
    if (!ocsp_ca_hashes(e, cacert))
        goto oom;
    /* responderID byKey (RFC 5019 2.2.3); the CA's own certificate is
     * known to the client, a delegate's travels with the response */
    e->flags = OCSP_RESPID_KEY | (rc == cacert ? OCSP_NOCERTS : 0);
    if (!X509_up_ref(rc))
        goto oom;
    e->cert = rc;
    ca_signer_up_ref(s);
    e->signer = s;
    r->ncas++;
    return 1;
 oom:
    snprintf(err, errlen, "CA %s: out of memory", ca_get0_name(ca));
    ERR_clear_error();
    return 0;
}

size_t ocsp_error_der(int status, unsigned char *buf)
{
    /* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } */
    buf[0] = 0x30;
    buf[1] = 0x03;
    buf[2] = 0x0a;
    buf[3] = 0x01;
    buf[4] = (unsigned char)status;
    return OCSP_ERROR_DER_LEN;
}

/* Sets *out to a fresh error response with |status|; returns |o|. */
static enum ocsp_outcome ocsp_fail(int status, enum ocsp_outcome o,
                                   unsigned char **out, size_t *outlen)
{
    unsigned char *b = OPENSSL_malloc(OCSP_ERROR_DER_LEN);

    *out = b;
    *outlen = b != NULL ? ocsp_error_der(status, b) : 0;
    ERR_clear_error();
    return o;
}

/* Index of the CA named by |cid|, or -1. */
static long ocsp_find_ca(const OCSP_RESPONDER *r, OCSP_CERTID *cid,
                         ASN1_INTEGER **serial)
{
    ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
    ASN1_OBJECT *alg = NULL;
    int nid, m;
    size_t i;

    if (!OCSP_id_get0_info(&nh, &alg, &kh, serial, cid) || nh == NULL
        || kh == NULL || *serial == NULL)
        return -1;
    nid = OBJ_obj2nid(alg);
    for (m = 0; m < OCSP_NMD && ocsp_md_nids[m] != nid; m++)
        ;
    if (m == OCSP_NMD)
        return -1;
    for (i = 0; i < r->ncas; i++) {
        const struct ocsp_ca *e = &r->cas[i];

        if ((unsigned)nh->length == e->hlen[m]
            && (unsigned)kh->length == e->hlen[m]
            && memcmp(nh->data, e->name_hash[m], e->hlen[m]) == 0
            && memcmp(kh->data, e->key_hash[m], e->hlen[m]) == 0)
            return (long)i;
    }
    return -1;
}

/* Looks up |serial| of CA |ca_id| in |tx| and fills the status. Returns
 * STORE_OK (found), STORE_NOTFOUND (unknown) or an error. */
static enum store_rc ocsp_lookup_raw(STORE_TX *tx, int64_t ca_id,
                                     const unsigned char *d, size_t n,
                                     int *status, int *reason,
                                     int64_t *revoked_at)
{
    struct store_cert *c = NULL;
    enum store_rc rc;

    if (n < 1 || n > STORE_SERIAL_MAX)
        return STORE_NOTFOUND;
    rc = store_cert_get_by_serial(tx, ca_id, d, n, &c);
    if (rc != STORE_OK)
        return rc;
    if (c->status == STORE_CERT_REVOKED) {
        *status = V_OCSP_CERTSTATUS_REVOKED;
        *reason = c->reason;
        *revoked_at = c->revoked_at;
    } else {
        *status = V_OCSP_CERTSTATUS_GOOD;
    }
    store_cert_free(c);
    return STORE_OK;
}

/* The serial octets of |serial| that the store may hold (into *d, *n),
 * or 0 when it is negative, empty or too long (status unknown). */
static int ocsp_serial_bytes(const ASN1_INTEGER *serial,
                             const unsigned char **d, size_t *n)
{
    int l = ASN1_STRING_length(serial);

    *d = ASN1_STRING_get0_data(serial);
    *n = l > 0 ? (size_t)l : 0;
    if (ASN1_STRING_type(serial) != V_ASN1_INTEGER || l < 1
        || l > STORE_SERIAL_MAX) {
        *n = 0;
        return 0;
    }
    return 1;
}

static enum store_rc ocsp_lookup(STORE_TX *tx, int64_t ca_id,
                                 const ASN1_INTEGER *serial, int *status,
                                 int *reason, int64_t *revoked_at)
{
    const unsigned char *d;
    size_t n;

    if (!ocsp_serial_bytes(serial, &d, &n))
        return STORE_NOTFOUND;
    return ocsp_lookup_raw(tx, ca_id, d, n, status, reason, revoked_at);
}

/* The store change token, reused for up to cache_check seconds. Returns 1
 * with *tok, or 0 when the store has none (PostgreSQL) or failed. */
static int ocsp_token(OCSP_RESPONDER *r, time_t now, uint64_t *tok)
{
    int ok;

    if (r->conf.cache_check > 0) {
        pthread_mutex_lock(&r->tok_mu);
        ok = r->tok_valid && now >= r->tok_at
             && now - r->tok_at < r->conf.cache_check;
        *tok = r->tok;
        pthread_mutex_unlock(&r->tok_mu);
        if (ok)
            return 1;
    }
    if (store_change_token(r->store, tok) != STORE_OK)
        return 0;
    if (r->conf.cache_check > 0) {
        pthread_mutex_lock(&r->tok_mu);
        r->tok = *tok;
        r->tok_at = now;
        r->tok_valid = 1;
        pthread_mutex_unlock(&r->tok_mu);
    }
    return 1;
}

static enum ocsp_outcome ocsp_status_outcome(int status)
{
    return status == V_OCSP_CERTSTATUS_GOOD ? OCSP_OUT_GOOD
           : status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_OUT_REVOKED
           : OCSP_OUT_UNKNOWN;
}

/* Serves |req| from the cache when it holds a response for exactly these
 * bytes that is not due for refresh and states the current status.
 * Returns 1 (served: *out, *outlen, *o, *info set) or 0. */
static int ocsp_cache_serve(OCSP_RESPONDER *r, const unsigned char *req,
                            size_t len, time_t now, unsigned char **out,
                            size_t *outlen, enum ocsp_outcome *o,
                            struct ocsp_respond_info *info)
{
    struct ocsp_cache_meta m;
    unsigned char *der = NULL;
    size_t dl = 0;
    uint64_t tok = 0;
    int has_tok, status = V_OCSP_CERTSTATUS_UNKNOWN, reason = -1, ok = 0;
    int64_t revoked_at = 0;
    STORE_TX *tx = NULL;
    enum store_rc rc = STORE_NOTFOUND;

    if (!ocsp_cache_get(r->cache, req, len, &m, &der, &dl))
        return 0;
    if (now >= m.refresh_at || now < m.this_update || m.ca < 0
        || (size_t)m.ca >= r->ncas)
        goto end;
    has_tok = ocsp_token(r, now, &tok);
    if (has_tok && m.has_token && m.token == tok) {
        atomic_fetch_add(&r->hits, 1);
        ok = 1;
        goto end;
    }
    /* something changed somewhere (or no token): read this row again */
    if (m.serial_len > 0) {
        if (store_begin_read(r->store, &tx) != STORE_OK)
            goto end;
        rc = ocsp_lookup_raw(tx, r->cas[m.ca].id, m.serial, m.serial_len,
                             &status, &reason, &revoked_at);
        store_rollback(tx);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            goto end;
    }
    if (rc == STORE_NOTFOUND)
        status = V_OCSP_CERTSTATUS_UNKNOWN;
    if (status != m.status
        || (status == V_OCSP_CERTSTATUS_REVOKED
            && (reason != m.reason || revoked_at != m.revoked_at)))
        goto end;                       /* changed: sign afresh */
    if (has_tok)
        ocsp_cache_set_token(r->cache, req, len, &m, tok);
    atomic_fetch_add(&r->revalidated, 1);
    ok = 1;
 end:
    if (!ok) {
        OPENSSL_free(der);
        return 0;
    }
    *out = der;
    *outlen = dl;
    *o = ocsp_status_outcome(m.status);
    if (info != NULL) {
        info->this_update = m.this_update;
        info->next_update = m.next_update;
        info->cached = 1;
    }
    return 1;
}

/* Returns 1 if the request's nonce (if any) is at most |max| octets. */
static int ocsp_nonce_ok(OCSP_REQUEST *req, size_t max)
{
    int loc = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
    X509_EXTENSION *ext;
    ASN1_OCTET_STRING *v;

    if (loc < 0)
        return 1;
    if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, loc) >= 0)
        return 0;                       /* two nonces */
    ext = OCSP_REQUEST_get_ext(req, loc);
    v = ext != NULL ? X509_EXTENSION_get_data(ext) : NULL;
    /* the value wraps the nonce in an OCTET STRING (2-4 header octets) */
    return v != NULL && v->length >= 1 && (size_t)v->length <= max + 4;
}

enum ocsp_outcome ocsp_respond(OCSP_RESPONDER *r, const unsigned char *req,
                               size_t len, time_t now, unsigned char **out,
                               size_t *outlen)
{
    return ocsp_respond_ex(r, req, len, now, out, outlen, NULL);
}

enum ocsp_outcome ocsp_respond_ex(OCSP_RESPONDER *r, const unsigned char *req,
                                  size_t len, time_t now, unsigned char **out,
                                  size_t *outlen,
                                  struct ocsp_respond_info *info)
{
    OCSP_REQUEST *rq = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_RESPONSE *rsp = NULL;
    STORE_TX *tx = NULL;
    ASN1_TIME *thisupd = NULL, *nextupd = NULL, *revt = NULL;
    const unsigned char *p = req;
    const struct ocsp_ca *signer = NULL;
    enum ocsp_outcome o = OCSP_OUT_GOOD;
    int i, n, st = OCSP_RESPONSE_STATUS_INTERNALERROR, dlen;
    unsigned char *der = NULL;
    struct ocsp_cache_meta cm;
    int cacheable = 0;

    *out = NULL;
    *outlen = 0;
    if (info != NULL)
        memset(info, 0, sizeof(*info));
    if (r->cache != NULL && req != NULL && len > 0
        && len <= r->conf.max_request
        && ocsp_cache_serve(r, req, len, now, out, outlen, &o, info))
        return o;
    if (req == NULL || len == 0 || len > r->conf.max_request
        || (rq = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL
        || p != req + len
        || (n = OCSP_request_onereq_count(rq)) < 1
        || n > r->conf.max_certids
        || !ocsp_nonce_ok(rq, r->conf.max_nonce)) {
        OCSP_REQUEST_free(rq);
        return ocsp_fail(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                         OCSP_OUT_MALFORMED, out, outlen);
    }
    /* the first CertID naming one of our CAs decides who signs */
    for (i = 0; i < n && signer == NULL; i++) {
        ASN1_INTEGER *serial = NULL;
        long k = ocsp_find_ca(r, OCSP_onereq_get0_id(
                                  OCSP_request_onereq_get0(rq, i)), &serial);

        if (k >= 0)
            signer = &r->cas[k];
    }
    if (signer == NULL) {
        o = OCSP_OUT_UNAUTHORIZED;
        st = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
        goto fail;
    }
    if (r->cache != NULL) {
        /* one CertID, no nonce: the answer depends on the request bytes
         * and the store only (RFC 5019 2.1.1) */
        cacheable = n == 1
            && OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, -1) < 0;
        if (cacheable) {
            memset(&cm, 0, sizeof(cm));
            cm.ca = (int)(signer - r->cas);
            cm.reason = -1;
            /* read before the row: a later change moves it */
            cm.has_token = ocsp_token(r, now, &cm.token);
            cm.this_update = now;
            cm.next_update = r->conf.next_update > 0
                             ? now + r->conf.next_update : 0;
            cm.refresh_at = now + r->conf.cache_refresh;
        } else {
            atomic_fetch_add(&r->bypassed, 1);
        }
    }
    if ((bs = OCSP_BASICRESP_new()) == NULL
        || (thisupd = ASN1_TIME_set(NULL, now)) == NULL
        || (r->conf.next_update > 0
            && (nextupd = ASN1_TIME_set(NULL, now + r->conf.next_update))
               == NULL))
        goto fail;
    if (store_begin_read(r->store, &tx) != STORE_OK) {
        o = OCSP_OUT_TRYLATER;
        st = OCSP_RESPONSE_STATUS_TRYLATER;
        goto fail;
    }
    for (i = 0; i < n; i++) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, i));
        ASN1_INTEGER *serial = NULL;
        long k = ocsp_find_ca(r, cid, &serial);
        int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = -1;
        int64_t revoked_at = 0;
        enum store_rc src = STORE_NOTFOUND;

        if (k >= 0 && &r->cas[k] == signer)
            src = ocsp_lookup(tx, signer->id, serial, &status, &reason,
                              &revoked_at);
        if (cacheable && k >= 0) {
            const unsigned char *sd;
            size_t sn;

            if (ocsp_serial_bytes(serial, &sd, &sn)) {
                memcpy(cm.serial, sd, sn);
                cm.serial_len = sn;
            }
        }
        if (src != STORE_OK && src != STORE_NOTFOUND) {
            o = OCSP_OUT_TRYLATER;
            st = OCSP_RESPONSE_STATUS_TRYLATER;
            goto fail;
        }
        if (src == STORE_NOTFOUND)
            status = V_OCSP_CERTSTATUS_UNKNOWN;
        ASN1_TIME_free(revt);
        revt = NULL;
        if (status == V_OCSP_CERTSTATUS_REVOKED
            && (revt = ASN1_TIME_set(NULL, (time_t)revoked_at)) == NULL)
            goto fail;
        if (OCSP_basic_add1_status(bs, cid, status,
                                   reason >= 0 ? reason
                                   : OCSP_REVOKED_STATUS_NOSTATUS,
                                   revt, thisupd, nextupd) == NULL)
            goto fail;
        if (status == V_OCSP_CERTSTATUS_REVOKED)
            o = OCSP_OUT_REVOKED;
        else if (status == V_OCSP_CERTSTATUS_UNKNOWN && o == OCSP_OUT_GOOD)
            o = OCSP_OUT_UNKNOWN;
        if (cacheable) {
            cm.status = status;
            cm.reason = status == V_OCSP_CERTSTATUS_REVOKED ? reason : -1;
            cm.revoked_at = status == V_OCSP_CERTSTATUS_REVOKED
                            ? revoked_at : 0;
        }
    }
    store_rollback(tx);
    tx = NULL;
    if (OCSP_copy_nonce(bs, rq) <= 0
        || !ca_signer_sign_ocsp(signer->signer, bs, signer->cert, NULL,
                                signer->flags)
        || (rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs))
           == NULL
        || (dlen = i2d_OCSP_RESPONSE(rsp, &der)) <= 0)
        goto fail;
    *out = der;
    *outlen = (size_t)dlen;
    if (cacheable) {
        atomic_fetch_add(&r->misses, 1);
        ocsp_cache_put(r->cache, req, len, &cm, der, (size_t)dlen);
    }
    if (info != NULL) {
        info->this_update = now;
        info->next_update = r->conf.next_update > 0
                            ? now + r->conf.next_update : 0;
    }
    goto end;
 fail:
    if (o != OCSP_OUT_UNAUTHORIZED && o != OCSP_OUT_TRYLATER) {
        o = OCSP_OUT_INTERNAL;
        log_ossl(LOG_ERROR, "ocsp: building the response failed");
    }
    store_rollback(tx);
    OPENSSL_free(der);
    ocsp_fail(st, o, out, outlen);
 end:
    ASN1_TIME_free(revt);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    OCSP_RESPONSE_free(rsp);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(rq);
    ERR_clear_error();
    return o;
}
