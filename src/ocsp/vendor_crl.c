/*
 * Vendor-certificate revocation behind vendor_crl.h: per-vendor policy from
 * [vendor NAME], a cache of the vendor CAs and their CRLs read from the
 * store, CRL import with issuer and signature checks, and fetching from the
 * distribution point with libcurl (bounded size and time).
 */
#include "ocsp/vendor_crl.h"

#include "conf/conf.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/x509_der.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VCRL_RELOAD_AGE  30      /* seconds between store re-reads */
#define VCRL_RETRY_AGE   60      /* seconds between fetch attempts */
#define VCRL_MAX_VENDORS 256
#define VCRL_MAX_CAS     16      /* CA certificates per vendor */
#define VCRL_NRESULTS    (VENDOR_REV_ERROR + 1)

/* The configuration of one vendor. */
struct vcrl_conf {
    char *name;
    enum vendor_crl_policy policy;
    int fetch;
    char *url;
    long timeout;
    long max_size;
};

/* One issuing CA of a vendor and its CRL. */
struct vcrl_ca {
    X509 *cert;
    unsigned char sha256[STORE_SHA256_LEN];
    X509_CRL *crl;                     /* NULL when none */
    int64_t next_update;               /* of crl; 0 = none given */
    time_t tried;                      /* last fetch attempt */
};

/* The cached state of one vendor. */
struct vcrl_vendor {
    int64_t id;
    const struct vcrl_conf *conf;      /* NULL = default (off) */
    struct vcrl_ca cas[VCRL_MAX_CAS];
    size_t ncas;
    time_t loaded;
};

struct vendor_crl {
    STORE *store;
    struct vcrl_conf *confs;
    size_t nconfs;
    pthread_mutex_t mu;
    struct vcrl_vendor *vendors[VCRL_MAX_VENDORS];
    size_t nvendors;
    atomic_ulong results[VCRL_NRESULTS];
    atomic_ulong missing, stale, fetch_ok, fetch_failed;
};

const char *vendor_rev_rc_str(enum vendor_rev_rc rc)
{
    switch (rc) {
    case VENDOR_REV_GOOD: return "good";
    case VENDOR_REV_REVOKED: return "revoked";
    case VENDOR_REV_UNCHECKED: return "unchecked";
    case VENDOR_REV_NO_CRL: return "no_crl";
    default: return "error";
    }
}

VENDOR_CRL *vendor_crl_new(const struct conf *conf, STORE *store, char *err,
                           size_t errlen)
{
    VENDOR_CRL *vc = calloc(1, sizeof(*vc));
    const struct conf_section *sec = NULL;
    int ok = 0;

    if (errlen > 0)
        err[0] = '\0';
    if (vc == NULL)
        return NULL;
    vc->store = store;
    pthread_mutex_init(&vc->mu, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);  /* once, before any thread */
    while (conf != NULL && (sec = conf_next(conf, "vendor", sec)) != NULL) {
        struct vcrl_conf *nc = realloc(vc->confs,
                                       (vc->nconfs + 1) * sizeof(*nc));
        struct vcrl_conf *c;
        const char *pol, *url;

        if (nc == NULL)
            goto end;
        vc->confs = nc;
        c = &nc[vc->nconfs];
        memset(c, 0, sizeof(*c));
        if ((c->name = strdup(sec->name)) == NULL)
            goto end;
        vc->nconfs++;
        pol = conf_get(sec, "crl");
        if (pol == NULL || strcasecmp(pol, "off") == 0)
            c->policy = VENDOR_CRL_OFF;
        else if (strcasecmp(pol, "soft") == 0)
            c->policy = VENDOR_CRL_SOFT;
        else if (strcasecmp(pol, "hard") == 0)
            c->policy = VENDOR_CRL_HARD;
        else {
            conf_err(conf, sec->line, err, errlen, "crl must be off, soft "
                     "or hard in [vendor %s]", sec->name);
            goto end;
        }
        url = conf_get(sec, "crl_url");
        if (url != NULL && strncmp(url, "http://", 7) != 0
            && strncmp(url, "https://", 8) != 0) {
            conf_err(conf, sec->line, err, errlen, "crl_url must be an http "
                     "or https URL in [vendor %s]", sec->name);
            goto end;
        }
        if ((url != NULL && (c->url = strdup(url)) == NULL)
            || !conf_get_bool(conf, sec, "crl_fetch", 1, &c->fetch, err,
                              errlen)
            || !conf_get_duration(conf, sec, "crl_timeout", 5, 1, 300,
                                  &c->timeout, err, errlen)
            || !conf_get_size(conf, sec, "crl_max_size", 1L << 20, 1024,
                              64L << 20, &c->max_size, err, errlen)
            || !conf_check_used(conf, sec, err, errlen))
            goto end;
    }
    ok = 1;
 end:
    if (!ok) {
        if (err[0] == '\0')
            snprintf(err, errlen, "out of memory");
        vendor_crl_free(vc);
        vc = NULL;
    }
    return vc;
}

/* Frees the cached CAs of |v|. */
static void vcrl_vendor_clear(struct vcrl_vendor *v)
{
    size_t i;

    for (i = 0; i < v->ncas; i++) {
        X509_free(v->cas[i].cert);
        X509_CRL_free(v->cas[i].crl);
    }
    v->ncas = 0;
}

void vendor_crl_free(VENDOR_CRL *vc)
{
    size_t i;

    if (vc == NULL)
        return;
    for (i = 0; i < vc->nvendors; i++) {
        vcrl_vendor_clear(vc->vendors[i]);
        free(vc->vendors[i]);
    }
    for (i = 0; i < vc->nconfs; i++) {
        free(vc->confs[i].name);
        free(vc->confs[i].url);
    }
    free(vc->confs);
    pthread_mutex_destroy(&vc->mu);
    free(vc);
}

/* Decodes a CRL given as DER or PEM. */
static X509_CRL *vcrl_decode(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = NULL;
    BIO *b;

    if (len == 0 || len > (64UL << 20))
        return NULL;
    if (der[0] == 0x30) {
        crl = d2i_X509_CRL(NULL, &p, (long)len);
        if (crl != NULL && p != der + len) {
            X509_CRL_free(crl);
            crl = NULL;
        }
        return crl;
    }
    if ((b = BIO_new_mem_buf(der, (int)len)) != NULL) {
        crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    return crl;
}

/* Converts the CRL's nextUpdate (0 when absent) and thisUpdate. */
static int vcrl_times(const X509_CRL *crl, int64_t *this_update,
                      int64_t *next_update)
{
    const ASN1_TIME *tu = X509_CRL_get0_lastUpdate(crl);
    const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
    struct tm tm;

    if (tu == NULL || !ASN1_TIME_to_tm(tu, &tm))
        return 0;
    *this_update = (int64_t)timegm(&tm);
    *next_update = 0;
    if (nu != NULL) {
        if (!ASN1_TIME_to_tm(nu, &tm))
            return 0;
        *next_update = (int64_t)timegm(&tm);
    }
    return 1;
}

/* Returns 1 if |issuer| issued and signed |crl|. */
static int vcrl_issued_by(X509_CRL *crl, X509 *issuer)
{
    EVP_PKEY *pk = X509_get0_pubkey(issuer);
    int ok = pk != NULL
        && X509_NAME_cmp(X509_CRL_get_issuer(crl),
                         X509_get_subject_name(issuer)) == 0
        && X509_CRL_verify(crl, pk) == 1;

    ERR_clear_error();
    return ok;
}

int vendor_crl_import(STORE_TX *tx, const struct store_vendor *v,
                      const unsigned char *der, size_t len,
                      const char *source, char *err, size_t errlen)
{
    X509_CRL *crl = vcrl_decode(der, len);
    struct store_vendor_crl rec;
    unsigned char *out = NULL;
    X509 *issuer = NULL;
    enum store_rc rc;
    int dl, ok = 0;
    size_t i;

    memset(&rec, 0, sizeof(rec));
    if (crl == NULL) {
        snprintf(err, errlen, "not a CRL (DER or PEM)");
        goto end;
    }
    for (i = 0; i < v->ncerts && issuer == NULL; i++) {
        X509 *x = x509_der_get1(v->certs[i].der, v->certs[i].len);

        if (x != NULL && vcrl_issued_by(crl, x))
            issuer = x;
        else
            X509_free(x);
    }
    if (issuer == NULL) {
        snprintf(err, errlen, "the CRL is not signed by a CA certificate of "
                 "vendor %s", v->name);
        goto end;
    }
    if (!vcrl_times(crl, &rec.this_update, &rec.next_update)
        || (dl = i2d_X509_CRL(crl, &out)) <= 0) {
        snprintf(err, errlen, "malformed CRL times");
        goto end;
    }
    {
        unsigned char *cd = NULL;
        int cl = i2d_X509(issuer, &cd);
        unsigned int hl = 0;

        if (cl <= 0 || !EVP_Digest(cd, (size_t)cl, rec.issuer_sha256, &hl,
                                   EVP_sha256(), NULL)) {
            OPENSSL_free(cd);
            snprintf(err, errlen, "cannot hash the issuer");
            goto end;
        }
        OPENSSL_free(cd);
    }
    rec.vendor_id = v->id;
    rec.source = (char *)source;
    rec.der = out;
    rec.der_len = (size_t)dl;
    if ((rc = store_vendor_crl_put(tx, &rec)) != STORE_OK) {
        snprintf(err, errlen, "storing the CRL: %s", store_rc_str(rc));
        goto end;
    }
    ok = 1;
 end:
    OPENSSL_free(out);
    X509_free(issuer);
    X509_CRL_free(crl);
    ERR_clear_error();
    return ok;
}

/* libcurl write callback: appends into a bounded buffer. */
struct vcrl_buf {
    unsigned char *p;
    size_t len, max;
    int over;
};

static size_t vcrl_write(char *data, size_t size, size_t n, void *arg)
{
    struct vcrl_buf *b = arg;
    size_t k = size * n;
    unsigned char *np;

    if (k > b->max - b->len) {
        b->over = 1;
        return 0;                       /* aborts the transfer */
    }
    if ((np = realloc(b->p, b->len + k + 1)) == NULL)
        return 0;
    b->p = np;
    memcpy(b->p + b->len, data, k);
    b->len += k;
    return k;
}

int vendor_crl_fetch(const char *url, long timeout, size_t max,
                     unsigned char **out, size_t *outlen, char *err,
                     size_t errlen)
{
    struct vcrl_buf b = { NULL, 0, max, 0 };
    CURL *c = curl_easy_init();
    CURLcode cc;
    long code = 0;
    int ok = 0;

    *out = NULL;
    *outlen = 0;
    if (c == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        return 0;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, vcrl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (b.over || cc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, errlen, "%s: larger than %zu bytes", url, max);
    else if (cc != CURLE_OK)
        snprintf(err, errlen, "%s: %s", url, curl_easy_strerror(cc));
    else if (code != 200)
        snprintf(err, errlen, "%s: HTTP %ld", url, code);
    else if (b.len == 0)
        snprintf(err, errlen, "%s: empty body", url);
    else
        ok = 1;
    curl_easy_cleanup(c);
    if (!ok) {
        free(b.p);
        return 0;
    }
    *out = b.p;
    *outlen = b.len;
    return 1;
}

/* The configuration of vendor |name| or NULL. */
static const struct vcrl_conf *vcrl_conf_of(const VENDOR_CRL *vc,
                                            const char *name)
{
    size_t i;

    for (i = 0; i < vc->nconfs; i++)
        if (strcmp(vc->confs[i].name, name) == 0)
            return &vc->confs[i];
    return NULL;
}

/* (Re)loads vendor |v| from the store: its CA certificates and CRLs.
 * Called with the lock held. Returns 1 or 0 (store error). */
static int vcrl_load(VENDOR_CRL *vc, struct vcrl_vendor *v, time_t now)
{
    STORE_TX *tx = NULL;
    struct store_vendor *rec = NULL;
    struct store_vendor_crl **crls = NULL;
    size_t n = 0, i, k;
    int ok = 0;

    if (store_begin_read(vc->store, &tx) != STORE_OK
        || store_vendor_get(tx, v->id, &rec) != STORE_OK
        || store_vendor_crl_list(tx, v->id, &crls, &n) != STORE_OK)
        goto end;
    vcrl_vendor_clear(v);
    v->conf = vcrl_conf_of(vc, rec->name);
    for (i = 0; i < rec->ncerts && v->ncas < VCRL_MAX_CAS; i++) {
        struct vcrl_ca *ca = &v->cas[v->ncas];
        unsigned int hl = 0;

        memset(ca, 0, sizeof(*ca));
        if ((ca->cert = x509_der_get1(rec->certs[i].der, rec->certs[i].len))
            == NULL)
            continue;
        EVP_Digest(rec->certs[i].der, rec->certs[i].len, ca->sha256, &hl,
                   EVP_sha256(), NULL);
        for (k = 0; k < n; k++) {
            const unsigned char *p = crls[k]->der;

            if (memcmp(crls[k]->issuer_sha256, ca->sha256, STORE_SHA256_LEN)
                != 0)
                continue;
            ca->crl = d2i_X509_CRL(NULL, &p, (long)crls[k]->der_len);
            ca->next_update = crls[k]->next_update;
        }
        v->ncas++;
    }
    v->loaded = now;
    ok = 1;
 end:
    store_vendor_crl_list_free(crls, n);
    store_vendor_free(rec);
    store_rollback(tx);
    ERR_clear_error();
    return ok;
}

/* The first http(s) URI of |x|'s CRL distribution points, or NULL. */
static char *vcrl_cdp_url(X509 *x)
{
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points,
                                                 NULL, NULL);
    char *url = NULL;
    int i, j;

    for (i = 0; dps != NULL && i < sk_DIST_POINT_num(dps) && url == NULL;
         i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

        if (dp->distpoint == NULL || dp->distpoint->type != 0)
            continue;
        for (j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname);
             j++) {
            GENERAL_NAME *gn = sk_GENERAL_NAME_value(
                dp->distpoint->name.fullname, j);
            const char *s;

            if (gn->type != GEN_URI)
                continue;
            s = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
            if ((strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0)
                && strlen(s) == (size_t)ASN1_STRING_length(
                       gn->d.uniformResourceIdentifier)) {
                url = strdup(s);
                break;
            }
        }
    }
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    ERR_clear_error();
    return url;
}

/* Fetches a CRL for CA |ca| of vendor |v| (URL from the configuration or
 * |cert|), verifies and stores it. Called without the lock. Returns 1 or
 * 0. */
static int vcrl_fetch_store(VENDOR_CRL *vc, int64_t vendor_id,
                            const struct vcrl_conf *cf, X509 *issuer,
                            X509 *cert)
{
    char *url = cf->url != NULL ? strdup(cf->url) : vcrl_cdp_url(cert);
    char err[512], src[600];
    unsigned char *body = NULL;
    size_t len = 0;
    STORE_TX *tx = NULL;
    struct store_vendor *rec = NULL;
    int ok = 0;

    (void)issuer;
    if (url == NULL) {
        log_msg(LOG_WARN, "vendor %s: no CRL URL (crl_url or a CRL "
                "distribution point)", cf->name);
        goto end;
    }
    if (!vendor_crl_fetch(url, cf->timeout, (size_t)cf->max_size, &body,
                          &len, err, sizeof(err))) {
        log_msg(LOG_WARN, "vendor %s: CRL fetch failed: %s", cf->name, err);
        goto end;
    }
    snprintf(src, sizeof(src), "%s", url);
    if (store_begin(vc->store, &tx) != STORE_OK
        || store_vendor_get(tx, vendor_id, &rec) != STORE_OK)
        goto end;
    if (!vendor_crl_import(tx, rec, body, len, src, err, sizeof(err))) {
        log_msg(LOG_WARN, "vendor %s: CRL from %s refused: %s", cf->name,
                url, err);
        goto end;
    }
    if (store_commit(tx) != STORE_OK) {
        tx = NULL;
        goto end;
    }
    tx = NULL;
    log_msg(LOG_INFO, "vendor %s: CRL fetched from %s", cf->name, url);
    ok = 1;
 end:
    store_rollback(tx);
    store_vendor_free(rec);
    free(body);
    free(url);
    return ok;
}

/* The CA of |v| that issued |cert|: by name and key identifier, and by
 * signature when the certificate names no authority key (CAs of one
 * vendor may share a name). NULL if none. */
static struct vcrl_ca *vcrl_issuer_of(struct vcrl_vendor *v, X509 *cert)
{
    int has_aki = X509_get_ext_by_NID(cert, NID_authority_key_identifier, -1)
                  >= 0;
    size_t i;

    for (i = 0; i < v->ncas; i++)
        if (X509_check_issued(v->cas[i].cert, cert) == X509_V_OK
            && (has_aki
                || X509_verify(cert, X509_get0_pubkey(v->cas[i].cert)) == 1)) {
            ERR_clear_error();
            return &v->cas[i];
        }
    ERR_clear_error();
    return NULL;
}

/* Returns the state of vendor |id| (created on first use), loaded no
 * longer than VCRL_RELOAD_AGE ago; NULL on a store error. Lock held. */
static struct vcrl_vendor *vcrl_vendor_get(VENDOR_CRL *vc, int64_t id,
                                           time_t now, int force)
{
    struct vcrl_vendor *v = NULL;
    size_t i;

    for (i = 0; i < vc->nvendors; i++)
        if (vc->vendors[i]->id == id)
            v = vc->vendors[i];
    if (v == NULL) {
        if (vc->nvendors == VCRL_MAX_VENDORS
            || (v = calloc(1, sizeof(*v))) == NULL)
            return NULL;
        v->id = id;
        vc->vendors[vc->nvendors++] = v;
        force = 1;
    }
    if ((force || now - v->loaded >= VCRL_RELOAD_AGE || now < v->loaded)
        && !vcrl_load(vc, v, now))
        return NULL;
    return v;
}

enum vendor_rev_rc vendor_crl_check(VENDOR_CRL *vc, X509 *vendor_cert,
                                    int64_t vendor_id, time_t now)
{
    struct vcrl_vendor *v;
    struct vcrl_ca *ca = NULL;
    const struct vcrl_conf *cf;
    enum vendor_rev_rc rc = VENDOR_REV_ERROR;
    X509_REVOKED *rev = NULL;
    X509 *issuer = NULL;
    int current, fetch = 0, had;

    pthread_mutex_lock(&vc->mu);
    if ((v = vcrl_vendor_get(vc, vendor_id, now, 0)) == NULL)
        goto out;
    if ((cf = v->conf) == NULL || cf->policy == VENDOR_CRL_OFF) {
        rc = VENDOR_REV_GOOD;
        goto out;
    }
    ca = vcrl_issuer_of(v, vendor_cert);
    current = ca != NULL && ca->crl != NULL
              && (ca->next_update == 0 || now < ca->next_update);
    if (ca != NULL && !current && cf->fetch
        && (ca->tried == 0 || now - ca->tried >= VCRL_RETRY_AGE
            || now < ca->tried)) {
        ca->tried = now;
        fetch = 1;
        issuer = ca->cert;
        X509_up_ref(issuer);
    }
    pthread_mutex_unlock(&vc->mu);
    if (fetch) {
        int ok = vcrl_fetch_store(vc, vendor_id, cf, issuer, vendor_cert);

        atomic_fetch_add(ok ? &vc->fetch_ok : &vc->fetch_failed, 1);
        X509_free(issuer);
        issuer = NULL;
        pthread_mutex_lock(&vc->mu);
        if ((v = vcrl_vendor_get(vc, vendor_id, now, ok)) == NULL)
            goto out;
        if ((ca = vcrl_issuer_of(v, vendor_cert)) != NULL)
            ca->tried = now;
    } else {
        pthread_mutex_lock(&vc->mu);
    }
    current = ca != NULL && ca->crl != NULL
              && (ca->next_update == 0 || now < ca->next_update);
    if (!current) {
        had = ca != NULL && ca->crl != NULL;
        atomic_fetch_add(had ? &vc->stale : &vc->missing, 1);
        rc = cf->policy == VENDOR_CRL_HARD ? VENDOR_REV_NO_CRL
                                           : VENDOR_REV_UNCHECKED;
        log_msg(rc == VENDOR_REV_NO_CRL ? LOG_WARN : LOG_INFO,
                "vendor %s: %s CRL for the vendor certificate's issuer: %s",
                cf->name, had ? "stale" : "no",
                rc == VENDOR_REV_NO_CRL ? "refused (crl = hard)"
                                        : "accepted unchecked (crl = soft)");
        goto out;
    }
    if (X509_CRL_get0_by_serial(ca->crl, &rev,
                                X509_get0_serialNumber(vendor_cert)) == 1) {
        int crit = 0;
        ASN1_ENUMERATED *r = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason,
                                                      &crit, NULL);
        long reason = r != NULL ? ASN1_ENUMERATED_get(r) : -1;

        ASN1_ENUMERATED_free(r);
        rc = reason == 8 ? VENDOR_REV_GOOD      /* removeFromCRL */
                         : VENDOR_REV_REVOKED;
    } else {
        rc = VENDOR_REV_GOOD;
    }
 out:
    pthread_mutex_unlock(&vc->mu);
    X509_free(issuer);
    ERR_clear_error();
    atomic_fetch_add(&vc->results[rc], 1);
    return rc;
}

size_t vendor_crl_metrics(VENDOR_CRL *vc, char *buf, size_t cap)
{
    size_t n = 0;
    int i;

#define VCRL_OUT(...)                                               \
    do {                                                                \
        if (!metrics_appendf(buf, cap, &n, __VA_ARGS__))                \
            return n;                                                   \
    } while (0)

    if (cap == 0)
        return 0;
    VCRL_OUT("# HELP cmpca_vendor_crl_checks_total Vendor certificate "
             "revocation checks by result.\n"
             "# TYPE cmpca_vendor_crl_checks_total counter\n");
    for (i = 0; i < VCRL_NRESULTS; i++)
        VCRL_OUT("cmpca_vendor_crl_checks_total{result=\"%s\"} %lu\n",
                 vendor_rev_rc_str((enum vendor_rev_rc)i),
                 atomic_load(&vc->results[i]));
    VCRL_OUT("# HELP cmpca_vendor_crl_unavailable_total Checks that found no "
             "current CRL (missing or stale), whatever the policy.\n"
             "# TYPE cmpca_vendor_crl_unavailable_total counter\n"
             "cmpca_vendor_crl_unavailable_total{why=\"missing\"} %lu\n"
             "cmpca_vendor_crl_unavailable_total{why=\"stale\"} %lu\n"
             "# HELP cmpca_vendor_crl_fetches_total CRL downloads from "
             "vendor distribution points.\n"
             "# TYPE cmpca_vendor_crl_fetches_total counter\n"
             "cmpca_vendor_crl_fetches_total{result=\"ok\"} %lu\n"
             "cmpca_vendor_crl_fetches_total{result=\"failed\"} %lu\n",
             atomic_load(&vc->missing), atomic_load(&vc->stale),
             atomic_load(&vc->fetch_ok), atomic_load(&vc->fetch_failed));
#undef VCRL_OUT
    return n;
}
