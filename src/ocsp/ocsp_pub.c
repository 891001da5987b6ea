/*
 * The resource handler behind ocsp_pub.h: routes /ocsp, /crl/<ca>.crl and
 * /ca/<ca>.crt, decodes the RFC 5019 GET form, loads the CAs the responder
 * answers for from [ocsp] and keeps their CRLs fresh.
 */
#include "ocsp/ocsp_pub.h"

#include "ca/ca.h"
#include "conf/conf.h"
#include "http/http_int.h"
#include "util/log.h"
#include "util/metrics.h"

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pkcs7.h>
#include <openssl/err.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OCSP_PUB_MAX_CAS   64
#define OCSP_CT_REQ        "application/ocsp-request"
#define OCSP_CT_RSP        "application/ocsp-response"
#define OCSP_CT_CRL        "application/pkix-crl"
#define OCSP_CT_CERT       "application/pkix-cert"
#define OCSP_CT_P7C        "application/pkcs7-mime"
#define OCSP_NOUTCOMES     (OCSP_OUT_INTERNAL + 1)
#define OCSP_NBUCKETS      5

/* Days-to-expiry buckets of the gauge (0 = +Inf). */
static const long ocsp_pub_buckets[OCSP_NBUCKETS] = { 7, 30, 90, 365, 0 };

struct ocsp_pub {
    STORE *store;
    OCSP_RESPONDER *resp;
    CA *cas[OCSP_PUB_MAX_CAS];          /* loaded with keys */
    size_t ncas;
    struct ocsp_conf oc;
    long max_age;                       /* Cache-Control of GET /ocsp */
    long crl_max_age;                   /* Cache-Control of GET /crl */
    long max_requests;                  /* answers per connection */
    atomic_ulong outcomes[OCSP_NOUTCOMES];
    atomic_ulong crl_downloads, ca_downloads, crls_issued;
    atomic_llong expiring[OCSP_NBUCKETS];   /* -1 until first counted */
    atomic_llong expired;
    time_t gauges_at;                   /* main thread only */
};

/* Adds |name| to |p| if not there yet: loads the CA with its key and its
 * delegated OCSP signer. Returns 1 or 0 (+ err). */
static int ocsp_pub_add(OCSP_PUB *p, const struct conf *conf,
                        const char *name, char *err, size_t errlen)
{
    struct ca_load_opts lo = { 0 };
    CA *ca = NULL;
    size_t i;

    for (i = 0; i < p->ncas; i++)
        if (strcmp(ca_get0_name(p->cas[i]), name) == 0)
            return 1;
    if (p->ncas == OCSP_PUB_MAX_CAS) {
        snprintf(err, errlen, "[ocsp]: more than %d CAs",
                 OCSP_PUB_MAX_CAS);
        return 0;
    }
    lo.skip_cmp_signer = 1;
    lo.ocsp_signer = 1;
    if (ca_load_ex(conf, p->store, name, &lo, &ca, err, errlen)
        != CA_LOAD_OK)
        return 0;
    if (!ocsp_responder_add_ca(p->resp, ca, ca_get0_ocsp_signer_cert(ca),
                               (CA_SIGNER *)ca_get0_ocsp_signer(ca), err,
                               errlen)) {
        ca_free(ca);
        return 0;
    }
    p->cas[p->ncas++] = ca;
    log_msg(LOG_INFO, "ocsp: answering for CA %s (signed by %s)", name,
            ca_get0_ocsp_signer_cert(ca) != NULL ? "a delegated OCSP signer"
                                                 : "the CA key");
    return 1;
}

/* Adds every CA of the comma-separated list |list|. */
static int ocsp_pub_add_list(OCSP_PUB *p, const struct conf *conf,
                             const char *list, char *err, size_t errlen)
{
    char name[128];
    const char *s = list;

    while (*s != '\0') {
        size_t n;

        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        n = strcspn(s, ", \t");
        if (n == 0)
            break;
        if (n >= sizeof(name)) {
            snprintf(err, errlen, "[ocsp] cas: name too long");
            return 0;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        if (!ocsp_pub_add(p, conf, name, err, errlen))
            return 0;
        s += n;
    }
    return 1;
}

OCSP_PUB *ocsp_pub_new(const struct conf *conf, STORE *store, char *err,
                       size_t errlen)
{
    const struct conf_section *sec = conf_find(conf, "ocsp", "");
    const struct conf_section *a = NULL;
    const char *cas = NULL;
    OCSP_PUB *p = calloc(1, sizeof(*p));
    long v;
    int ok = 0;

    if (errlen > 0)
        err[0] = '\0';
    if (p == NULL)
        return NULL;
    p->store = store;
    for (v = 0; v < OCSP_NBUCKETS; v++)
        atomic_store(&p->expiring[v], -1);
    atomic_store(&p->expired, -1);
    ocsp_conf_init(&p->oc);
    p->max_age = 0;
    p->crl_max_age = 0;
    p->max_requests = 1000;
    if (sec != NULL) {
        cas = conf_get(sec, "cas");
        if (!conf_get_duration(conf, sec, "next_update", p->oc.next_update,
                               0, 366L * 86400, &p->oc.next_update, err,
                               errlen)
            || !conf_get_duration(conf, sec, "max_age", 0, 0, 366L * 86400,
                                  &p->max_age, err, errlen)
            || !conf_get_duration(conf, sec, "crl_max_age", 0, 0,
                                  366L * 86400, &p->crl_max_age, err, errlen)
            || !conf_get_size(conf, sec, "max_request", 4096, 256, 65536, &v,
                              err, errlen))
            goto end;
        p->oc.max_request = (size_t)v;
        if (!conf_get_long(conf, sec, "max_certids", 8, 1, 64, &v, err,
                           errlen)
            || !conf_get_long(conf, sec, "max_requests", 1000, 1, 1000000,
                              &p->max_requests, err, errlen))
            goto end;
        p->oc.max_certids = (int)v;
        if (!conf_get_bool(conf, sec, "cache", p->oc.cache, &p->oc.cache,
                           err, errlen)
            || !conf_get_duration(conf, sec, "cache_refresh",
                                  p->oc.cache_refresh, 1, 366L * 86400,
                                  &p->oc.cache_refresh, err, errlen)
            || !conf_get_duration(conf, sec, "cache_check",
                                  p->oc.cache_check, 0, 86400,
                                  &p->oc.cache_check, err, errlen)
            || !conf_get_long(conf, sec, "cache_entries",
                              (long)p->oc.cache_entries, 1, 100000000, &v,
                              err, errlen))
            goto end;
        p->oc.cache_entries = (size_t)v;
        if (!conf_get_size(conf, sec, "cache_bytes",
                           (long)p->oc.cache_bytes, 65536, 1L << 40, &v, err,
                           errlen))
            goto end;
        p->oc.cache_bytes = (size_t)v;
        if (p->oc.next_update > 0 && p->max_age > p->oc.next_update) {
            conf_err(conf, sec->line, err, errlen, "max_age must not exceed "
                     "next_update in [ocsp]");
            goto end;
        }
        if (!conf_check_used(conf, sec, err, errlen))
            goto end;
    }
    if ((p->resp = ocsp_responder_new(store, &p->oc)) == NULL)
        goto end;
    v = p->oc.cache_refresh;
    if (p->oc.next_update > 0 && p->oc.next_update < v)
        v = p->oc.next_update;
    if (p->oc.cache)
        log_msg(LOG_INFO, "ocsp: response cache on (re-signed after %ld s, "
                "change token %s, at most %zu responses and %zu bytes)", v,
                p->oc.cache_check > 0 ? "reused for cache_check seconds"
                                      : "checked per request",
                p->oc.cache_entries, p->oc.cache_bytes);
    if (cas != NULL) {
        if (!ocsp_pub_add_list(p, conf, cas, err, errlen))
            goto end;
    } else {
        while ((a = conf_next(conf, "alias", a)) != NULL) {
            const char *name = conf_get(a, "ca");

            if (name != NULL && !ocsp_pub_add(p, conf, name, err, errlen))
                goto end;
        }
    }
    ok = 1;
 end:
    if (!ok) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot set up the OCSP responder");
        ocsp_pub_free(p);
        p = NULL;
    }
    return p;
}

void ocsp_pub_free(OCSP_PUB *p)
{
    size_t i;

    if (p == NULL)
        return;
    ocsp_responder_free(p->resp);
    for (i = 0; i < p->ncas; i++)
        ca_free(p->cas[i]);
    free(p);
}

OCSP_RESPONDER *ocsp_pub_get0_responder(OCSP_PUB *p)
{
    return p->resp;
}

unsigned ocsp_pub_max_requests(const OCSP_PUB *p)
{
    return (unsigned)p->max_requests;
}

/* Decodes the base64 (standard or URL-safe alphabet; a space stands for a
 * '+' that was not %-encoded) of |s| into a fresh buffer. Returns the
 * length, or -1 (malformed, or longer than |max| decoded octets). */
static long ocsp_pub_b64(const char *s, size_t max, unsigned char **out)
{
    size_t n = strlen(s), i, pad = 0;
    unsigned char *in = NULL, *buf = NULL;
    long len = -1;
    int dl;

    *out = NULL;
    if (n == 0 || n > 4 * ((max + 2) / 3) + 4)
        return -1;
    if ((in = malloc(n + 4)) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        char c = s[i];

        in[i] = (unsigned char)(c == ' ' ? '+' : c == '-' ? '+'
                                : c == '_' ? '/' : c);
    }
    while (n % 4 != 0)                  /* tolerate stripped padding */
        in[n++] = '=';
    for (i = n; i > 0 && in[i - 1] == '='; i--)
        pad++;
    if (pad > 2 || (buf = malloc(n / 4 * 3 + 1)) == NULL)
        goto end;
    dl = EVP_DecodeBlock(buf, in, (int)n);
    if (dl < 0 || (size_t)dl < pad)
        goto end;
    len = dl - (long)pad;
    if ((size_t)len > max) {
        len = -1;
        goto end;
    }
    *out = buf;
    buf = NULL;
 end:
    free(in);
    free(buf);
    return len;
}

/* The RFC 5019 6.2 caching headers of a successful GET answer |der|:
 * Last-Modified = thisUpdate, Expires = nextUpdate, ETag = a digest of
 * the response, Cache-Control max-age = [ocsp] max_age, never beyond
 * nextUpdate. */
static void ocsp_pub_get_headers(const OCSP_PUB *p, const unsigned char *der,
                                 size_t len,
                                 const struct ocsp_respond_info *info,
                                 time_t now,
                                 struct http_resource_response *rsp)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    long age = p->max_age;

    if (info->next_update > 0 && age > info->next_update - now)
        age = info->next_update > now ? (long)(info->next_update - now) : 0;
    rsp->max_age = age;
    rsp->last_modified = (long long)info->this_update;
    rsp->expires = (long long)info->next_update;
    if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) && mdlen >= 16) {
        rsp->etag[0] = '"';
        for (i = 0; i < 16; i++)
            snprintf(rsp->etag + 1 + 2 * i, 3, "%02x", md[i]);
        rsp->etag[33] = '"';
        rsp->etag[34] = '\0';
    }
}

/* Answers an OCSP request body |der| (NULL: malformed) with HTTP |status|. */
static void ocsp_pub_ocsp(OCSP_PUB *p, const unsigned char *der, size_t len,
                          int status, int is_get,
                          const struct http_resource_request *req,
                          struct http_resource_response *rsp)
{
    unsigned char *out = NULL, *b;
    size_t outlen = 0;
    enum ocsp_outcome o;
    struct ocsp_respond_info info;
    time_t now = time(NULL);

    o = ocsp_respond_ex(p->resp, der, der != NULL ? len : 0, now, &out,
                        &outlen, &info);
    atomic_fetch_add(&p->outcomes[o], 1);
    if (out == NULL || (b = malloc(outlen)) == NULL) {
        OPENSSL_free(out);
        rsp->status = 500;
        return;
    }
    memcpy(b, out, outlen);
    OPENSSL_free(out);
    rsp->body = b;
    rsp->body_len = outlen;
    rsp->status = status;
    rsp->content_type = OCSP_CT_RSP;
    if (is_get && o <= OCSP_OUT_UNKNOWN)
        ocsp_pub_get_headers(p, b, outlen, &info, now, rsp);
    else
        rsp->max_age = 0;
    if (o >= OCSP_OUT_MALFORMED)
        log_msg(LOG_INFO, "ocsp: %s %s from %s answered %s", req->method,
                is_get ? "/ocsp/..." : "/ocsp", req->peer,
                ocsp_outcome_str(o));
    else
        log_msg(LOG_DEBUG, "ocsp: %s from %s answered %s", req->method,
                req->peer, ocsp_outcome_str(o));
}

/* The CA name in |path| after |prefix| and before |suffix| into |name|
 * (HTTP_LABEL_MAX + 1 bytes). Returns 1 or 0. */
static int ocsp_pub_name(const char *path, const char *prefix,
                         const char *suffix, char *name)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);

    if (n <= pl + sl || strncmp(path, prefix, pl) != 0
        || strcmp(path + n - sl, suffix) != 0)
        return 0;
    n -= pl + sl;
    if (!http_label_valid(path + pl, n))
        return 0;
    memcpy(name, path + pl, n);
    name[n] = '\0';
    return 1;
}

/* Returns the loaded CA with store id |id| or NULL. */
static const CA *ocsp_pub_ca(const OCSP_PUB *p, int64_t id)
{
    size_t i;

    for (i = 0; i < p->ncas; i++)
        if (ca_get_id(p->cas[i]) == id)
            return p->cas[i];
    return NULL;
}

/* Makes the first CRL of |ca| (none stored yet). Returns 1 or 0. */
static int ocsp_pub_crl_new(OCSP_PUB *p, const CA *ca, time_t now)
{
    STORE_TX *tx = NULL;
    char err[256];

    if (store_begin(p->store, &tx) != STORE_OK)
        return 0;
    if (!ca_crl_generate(ca, tx, now, NULL, err, sizeof(err))) {
        log_msg(LOG_WARN, "crl: CA %s: %s", ca_get0_name(ca), err);
        store_rollback(tx);
        return 0;
    }
    if (store_commit(tx) != STORE_OK)
        return 0;
    atomic_fetch_add(&p->crls_issued, 1);
    log_msg(LOG_INFO, "crl: CA %s: new CRL issued", ca_get0_name(ca));
    return 1;
}

/* GET /crl/<name>.crl */
static void ocsp_pub_crl(OCSP_PUB *p, const char *name,
                         struct http_resource_response *rsp)
{
    STORE_TX *tx = NULL;
    struct store_ca *rec = NULL;
    struct store_crl *crl = NULL;
    const CA *ca;
    enum store_rc rc;
    int tries;

    rsp->status = 404;
    for (tries = 0; tries < 2; tries++) {
        if ((rc = store_begin_read(p->store, &tx)) != STORE_OK
            || (rc = store_ca_get_by_name(tx, name, &rec)) != STORE_OK)
            goto end;
        rc = store_crl_get_last(tx, rec->id, &crl);
        store_rollback(tx);
        tx = NULL;
        if (rc == STORE_OK || rc != STORE_NOTFOUND || tries > 0
            || (ca = ocsp_pub_ca(p, rec->id)) == NULL
            || !ocsp_pub_crl_new(p, ca, time(NULL)))
            break;
        store_ca_free(rec);
        rec = NULL;
    }
    if (rc != STORE_OK)
        goto end;
    rsp->body = crl->der;
    rsp->body_len = crl->der_len;
    crl->der = NULL;
    rsp->status = 200;
    rsp->content_type = OCSP_CT_CRL;
    snprintf(rsp->etag, sizeof(rsp->etag), "\"crl-%lld-%lld\"",
             (long long)crl->ca_id, (long long)crl->number);
    rsp->last_modified = crl->this_update;
    rsp->max_age = p->crl_max_age;
    atomic_fetch_add(&p->crl_downloads, 1);
 end:
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        rsp->status = 503;
    store_rollback(tx);
    store_crl_free(crl);
    store_ca_free(rec);
}

/* GET /ca/<name>.crt */
static void ocsp_pub_cacert(OCSP_PUB *p, const char *name,
                            struct http_resource_response *rsp)
{
    STORE_TX *tx = NULL;
    struct store_ca *rec = NULL;
    unsigned char md[32];
    unsigned int mdlen = 0, i;
    enum store_rc rc;

    rsp->status = 404;
    if ((rc = store_begin_read(p->store, &tx)) != STORE_OK
        || (rc = store_ca_get_by_name(tx, name, &rec)) != STORE_OK)
        goto end;
    if (!EVP_Digest(rec->cert_der, rec->cert_len, md, &mdlen, EVP_sha256(),
                    NULL)) {
        rsp->status = 500;
        goto end;
    }
    rsp->body = rec->cert_der;
    rsp->body_len = rec->cert_len;
    rec->cert_der = NULL;
    rsp->status = 200;
    rsp->content_type = OCSP_CT_CERT;
    rsp->etag[0] = '"';
    for (i = 0; i < 16; i++)
        snprintf(rsp->etag + 1 + 2 * i, 3, "%02x", md[i]);
    rsp->etag[33] = '"';
    rsp->etag[34] = '\0';
    rsp->max_age = 3600;
    atomic_fetch_add(&p->ca_downloads, 1);
 end:
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        rsp->status = 503;
    store_rollback(tx);
    store_ca_free(rec);
}

/* Adds the DER certificate |der| to the certs-only |p7| (a reference of
 * its own). Returns 1 or 0. */
static int ocsp_pub_p7_add(PKCS7 *p7, const unsigned char *der, size_t len)
{
    const unsigned char *q = der;
    X509 *x = len < (1L << 20) ? d2i_X509(NULL, &q, (long)len) : NULL;
    int ok = x != NULL && PKCS7_add_certificate(p7, x);

    X509_free(x);
    return ok;
}

/* GET /ca/<name>.p7c: certs-only PKCS#7 (RFC 5280 4.2.2.1) with the CA's
 * certificate and, after root CA key rollovers, each rollover's newWithOld
 * and oldWithNew: a client holding either root finds a path to the other. */
static void ocsp_pub_cap7c(OCSP_PUB *p, const char *name,
                           struct http_resource_response *rsp)
{
    STORE_TX *tx = NULL;
    struct store_ca *rec = NULL;
    struct store_rollover **rolls = NULL;
    PKCS7 *p7 = NULL;
    unsigned char *der = NULL;
    size_t n = 0, i;
    int len;
    enum store_rc rc;

    rsp->status = 404;
    if ((rc = store_begin_read(p->store, &tx)) != STORE_OK
        || (rc = store_ca_get_by_name(tx, name, &rec)) != STORE_OK
        || (rc = store_rollover_list(tx, rec->id, &rolls, &n)) != STORE_OK)
        goto end;
    rsp->status = 500;
    if ((p7 = PKCS7_new()) == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed)
        || !PKCS7_content_new(p7, NID_pkcs7_data)
        || !ocsp_pub_p7_add(p7, rec->cert_der, rec->cert_len))
        goto end;
    for (i = 0; i < n; i++)
        if (!ocsp_pub_p7_add(p7, rolls[i]->new_with_old.der,
                             rolls[i]->new_with_old.len)
            || !ocsp_pub_p7_add(p7, rolls[i]->old_with_new.der,
                                rolls[i]->old_with_new.len))
            goto end;
    if ((len = i2d_PKCS7(p7, &der)) <= 0
        || (rsp->body = malloc((size_t)len)) == NULL)
        goto end;
    memcpy(rsp->body, der, (size_t)len);
    rsp->body_len = (size_t)len;
    rsp->status = 200;
    rsp->content_type = OCSP_CT_P7C;
    rsp->max_age = 3600;
    atomic_fetch_add(&p->ca_downloads, 1);
 end:
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        rsp->status = 503;
    OPENSSL_free(der);
    PKCS7_free(p7);
    store_rollover_list_free(rolls, n);
    store_rollback(tx);
    store_ca_free(rec);
    ERR_clear_error();
}

/* Returns 1 if |ct| (may be NULL) is application/ocsp-request. */
static int ocsp_pub_ct_ok(const char *ct)
{
    size_t n = strlen(OCSP_CT_REQ);

    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, OCSP_CT_REQ, n) == 0
           && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void ocsp_pub_handle(void *arg, const struct http_resource_request *req,
                     struct http_resource_response *rsp)
{
    OCSP_PUB *p = arg;
    const char *path = req->path;
    int get = strcmp(req->method, "GET") == 0
              || strcmp(req->method, "HEAD") == 0;
    char name[HTTP_LABEL_MAX + 1];

    rsp->status = 404;
    rsp->max_age = -1;
    if (strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0) {
        if (strcmp(req->method, "POST") != 0) {
            rsp->status = 405;
            return;
        }
        if (req->reject_status != 0)
            ocsp_pub_ocsp(p, NULL, 0, req->reject_status, 0, req, rsp);
        else if (!ocsp_pub_ct_ok(req->content_type))
            ocsp_pub_ocsp(p, NULL, 0, 415, 0, req, rsp);
        else
            ocsp_pub_ocsp(p, req->body, req->body_len, 200, 0, req, rsp);
        return;
    }
    if (strncmp(path, "/ocsp/", 6) == 0) {
        unsigned char *der = NULL;
        long n;

        if (!get) {
            rsp->status = 405;
            return;
        }
        n = ocsp_pub_b64(path + 6, p->oc.max_request, &der);
        ocsp_pub_ocsp(p, n > 0 ? der : NULL, n > 0 ? (size_t)n : 0, 200, 1,
                      req, rsp);
        free(der);
        return;
    }
    if (!get) {
        rsp->status = 405;
        return;
    }
    if (ocsp_pub_name(path, "/crl/", ".crl", name))
        ocsp_pub_crl(p, name, rsp);
    else if (ocsp_pub_name(path, "/ca/", ".crt", name))
        ocsp_pub_cacert(p, name, rsp);
    else if (ocsp_pub_name(path, "/ca/", ".p7c", name))
        ocsp_pub_cap7c(p, name, rsp);
}

int ocsp_pub_refresh_crls(OCSP_PUB *p, time_t now)
{
    STORE_TX *tx = NULL;
    struct store_crl *crl = NULL;
    int issued = 0;
    size_t i;
    enum store_rc rc;

    for (i = 0; i < p->ncas; i++) {
        const CA *ca = p->cas[i];
        int due;

        if ((rc = store_begin_read(p->store, &tx)) != STORE_OK)
            return -1;
        rc = store_crl_get_last(tx, ca_get_id(ca), &crl);
        store_rollback(tx);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return -1;
        due = rc == STORE_NOTFOUND
              || now >= crl->this_update
                        + (crl->next_update - crl->this_update) / 2;
        store_crl_free(crl);
        crl = NULL;
        if (due && ocsp_pub_crl_new(p, ca, now))
            issued++;
    }
    return issued;
}

int ocsp_pub_refresh_gauges(OCSP_PUB *p, time_t now, long min_age)
{
    struct store_cert_filter f;
    STORE_TX *tx = NULL;
    int64_t n = 0;
    int i;

    if (p->gauges_at != 0 && now - p->gauges_at < min_age)
        return 0;
    if (store_begin_read(p->store, &tx) != STORE_OK)
        return -1;
    for (i = 0; i < OCSP_NBUCKETS; i++) {
        store_cert_filter_init(&f);
        f.status = STORE_CERT_VALID;
        f.expires_after = (int64_t)now;
        f.expires_before = ocsp_pub_buckets[i] > 0
            ? (int64_t)now + ocsp_pub_buckets[i] * 86400 : 0;
        if (store_cert_count(tx, &f, &n) != STORE_OK)
            goto fail;
        atomic_store(&p->expiring[i], (long long)n);
    }
    store_cert_filter_init(&f);
    f.status = STORE_CERT_VALID;
    f.expires_before = (int64_t)now;
    if (store_cert_count(tx, &f, &n) != STORE_OK)
        goto fail;
    atomic_store(&p->expired, (long long)n);
    store_rollback(tx);
    p->gauges_at = now;
    return 1;
 fail:
    store_rollback(tx);
    return -1;
}

size_t ocsp_pub_metrics(OCSP_PUB *p, char *buf, size_t cap)
{
    struct ocsp_cache_counters cs;
    size_t n = 0;
    int i;

#define OCSP_PUB_OUT(...)                                               \
    do {                                                                \
        if (!metrics_appendf(buf, cap, &n, __VA_ARGS__))                \
            return n;                                                   \
    } while (0)

    if (cap == 0)
        return 0;
    OCSP_PUB_OUT("# HELP cmpca_ocsp_responses_total OCSP responses by "
                 "outcome.\n# TYPE cmpca_ocsp_responses_total counter\n");
    for (i = 0; i < OCSP_NOUTCOMES; i++)
        OCSP_PUB_OUT("cmpca_ocsp_responses_total{outcome=\"%s\"} %lu\n",
                     ocsp_outcome_str((enum ocsp_outcome)i),
                     atomic_load(&p->outcomes[i]));
    ocsp_responder_cache_stats(p->resp, &cs);
    if (cs.enabled)
        OCSP_PUB_OUT("# HELP cmpca_ocsp_cache_total OCSP response cache "
                     "lookups by result (hit: token unchanged; revalidated: "
                     "row read again, same status; miss: signed afresh; "
                     "bypass: nonce or several CertIDs).\n"
                     "# TYPE cmpca_ocsp_cache_total counter\n"
                     "cmpca_ocsp_cache_total{result=\"hit\"} %llu\n"
                     "cmpca_ocsp_cache_total{result=\"revalidated\"} %llu\n"
                     "cmpca_ocsp_cache_total{result=\"miss\"} %llu\n"
                     "cmpca_ocsp_cache_total{result=\"bypass\"} %llu\n"
                     "# HELP cmpca_ocsp_cache_evictions_total Cached OCSP "
                     "responses pushed out by the bounds.\n"
                     "# TYPE cmpca_ocsp_cache_evictions_total counter\n"
                     "cmpca_ocsp_cache_evictions_total %llu\n"
                     "# HELP cmpca_ocsp_cache_entries Cached OCSP responses."
                     "\n# TYPE cmpca_ocsp_cache_entries gauge\n"
                     "cmpca_ocsp_cache_entries %zu\n"
                     "# HELP cmpca_ocsp_cache_bytes Memory of the cached OCSP "
                     "responses.\n# TYPE cmpca_ocsp_cache_bytes gauge\n"
                     "cmpca_ocsp_cache_bytes %zu\n",
                     (unsigned long long)cs.hits,
                     (unsigned long long)cs.revalidated,
                     (unsigned long long)cs.misses,
                     (unsigned long long)cs.bypassed,
                     (unsigned long long)cs.evictions, cs.entries, cs.bytes);
    OCSP_PUB_OUT("# HELP cmpca_crl_downloads_total CRLs served.\n"
                 "# TYPE cmpca_crl_downloads_total counter\n"
                 "cmpca_crl_downloads_total %lu\n"
                 "# HELP cmpca_ca_cert_downloads_total CA certificates "
                 "served.\n# TYPE cmpca_ca_cert_downloads_total counter\n"
                 "cmpca_ca_cert_downloads_total %lu\n"
                 "# HELP cmpca_crls_issued_total CRLs issued by the "
                 "refresh.\n# TYPE cmpca_crls_issued_total counter\n"
                 "cmpca_crls_issued_total %lu\n",
                 atomic_load(&p->crl_downloads),
                 atomic_load(&p->ca_downloads),
                 atomic_load(&p->crls_issued));
    if (atomic_load(&p->expired) >= 0) {
        OCSP_PUB_OUT("# HELP cmpca_certificates_valid_expiring Valid "
                     "certificates whose notAfter is within the given days "
                     "(cumulative).\n# TYPE cmpca_certificates_valid_expiring "
                     "gauge\n");
        for (i = 0; i < OCSP_NBUCKETS; i++) {
            char le[24];

            if (ocsp_pub_buckets[i] > 0)
                snprintf(le, sizeof(le), "%ld", ocsp_pub_buckets[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            OCSP_PUB_OUT("cmpca_certificates_valid_expiring{within_days="
                         "\"%s\"} %lld\n", le, atomic_load(&p->expiring[i]));
        }
        OCSP_PUB_OUT("# HELP cmpca_certificates_valid_expired Certificates "
                     "not revoked whose notAfter has passed.\n"
                     "# TYPE cmpca_certificates_valid_expired gauge\n"
                     "cmpca_certificates_valid_expired %lld\n",
                     atomic_load(&p->expired));
    }
#undef OCSP_PUB_OUT
    return n;
}
