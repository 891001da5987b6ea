/*
 * Root CA key rollover: building newWithNew, newWithOld and oldWithNew
 * (RFC 9810 4.4) and recording them; see ca_rollover.h.
 */
#include "ca/ca_rollover.h"
#include "ca/ca_int.h"
#include "util/x509_der.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ca_rollover_certs_clear(struct ca_rollover_certs *c)
{
    if (c == NULL)
        return;
    X509_free(c->new_with_new);
    X509_free(c->new_with_old);
    X509_free(c->old_with_new);
    memset(c, 0, sizeof(*c));
}

/* Cuts the notAfter of |*x| (signed by |signer|) to |na| if later and
 * signs it again. Returns 1 or 0. */
static int ca_rollover_cap(X509 **x, time_t na, const CA_SIGNER *signer)
{
    unsigned char *der = NULL;
    int64_t cur;
    X509 *y;
    int len;

    if (!ca_asn1_time_to_unix(X509_get0_notAfter(*x), &cur))
        return 0;
    if (cur <= (int64_t)na)
        return 1;
    if (X509_time_adj_ex(X509_getm_notAfter(*x), 0, 0, &na) == NULL
        || !ca_signer_sign_x509(signer, *x))
        return 0;
    /* re-decode so that no value cached before the change survives */
    len = i2d_X509(*x, &der);
    y = len > 0 ? x509_der_get1(der, (size_t)len) : NULL;
    OPENSSL_free(der);
    if (y == NULL)
        return 0;
    X509_free(*x);
    *x = y;
    return 1;
}

int ca_rollover_make(const CA *ca, const CA_SIGNER *new_signer, long days,
                     struct ca_rollover_certs *out, char *err, size_t errlen)
{
    X509 *old = ca->cert;
    const X509_NAME *subj = X509_get_subject_name(old);
    EVP_PKEY *newpub = ca_signer_get0_pubkey(new_signer);
    EVP_PKEY *oldpub = X509_get0_pubkey(old);
    int64_t ona;
    long left, pathlen;
    int ok = 0;

    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    if (sk_X509_num(ca->chain) != 1
        || X509_check_issued(old, old) != X509_V_OK) {
        snprintf(err, errlen, "CA %s is not a self-signed root: only a root "
                 "CA's key is rolled over", ca->name);
        goto end;
    }
    if (ca->signer == NULL || newpub == NULL || oldpub == NULL) {
        snprintf(err, errlen, "CA %s: the old and the new key are needed",
                 ca->name);
        goto end;
    }
    if (EVP_PKEY_eq(newpub, oldpub) == 1) {
        snprintf(err, errlen, "the new key is the CA's current key");
        goto end;
    }
    if (!ca_asn1_time_to_unix(X509_get0_notAfter(old), &ona)
        || ona <= (int64_t)time(NULL)) {
        snprintf(err, errlen, "CA %s has expired: a rollover needs the old "
                 "root still valid (create a new root instead)", ca->name);
        goto end;
    }
    left = (long)((ona - (int64_t)time(NULL)) / 86400) + 1;
    if (left > 36500)
        left = 36500;
    pathlen = X509_get_pathlen(old);
    if ((out->new_with_new = ca_make_ca_cert(subj, newpub, days, NULL,
                                             new_signer, (int)pathlen, err,
                                             errlen)) == NULL
        || (out->new_with_old = ca_make_ca_cert(subj, newpub, left, old,
                                                ca->signer, (int)pathlen, err,
                                                errlen)) == NULL
        || (out->old_with_new = ca_make_ca_cert(subj, oldpub, left,
                                                out->new_with_new, new_signer,
                                                (int)pathlen, err,
                                                errlen)) == NULL)
        goto end;
    if (!ca_rollover_cap(&out->old_with_new, (time_t)ona, new_signer)) {
        snprintf(err, errlen, "cannot sign oldWithNew");
        goto end;
    }
    ok = 1;
 end:
    if (!ok) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot build the rollover certificates");
        ca_rollover_certs_clear(out);
    }
    ERR_clear_error();
    return ok;
}

/* SHA-256 of the DER of |x|. Returns 1 or 0. */
static int ca_rollover_sha(X509 *x, unsigned char md[STORE_SHA256_LEN])
{
    unsigned int len = 0;

    return X509_digest(x, EVP_sha256(), md, &len) && len == STORE_SHA256_LEN;
}

/* DER of |x| into |d| (OPENSSL_malloc'ed). Returns 1 or 0. */
static int ca_rollover_der(X509 *x, struct store_der *d)
{
    int len;

    d->der = NULL;
    d->len = 0;
    if ((len = i2d_X509(x, &d->der)) <= 0)
        return 0;
    d->len = (size_t)len;
    return 1;
}

/* Inserts the link certificate |x| of |ca| into the certificates table. */
static enum store_rc ca_rollover_cert_insert(STORE_TX *tx, const CA *ca,
                                             X509 *x)
{
    struct store_cert rec;
    int64_t id;
    enum store_rc rc;

    if (!ca_store_cert_fill(ca, x, "rollover", 0, &rec))
        return STORE_ERROR;
    rc = store_cert_insert(tx, &rec, &id);
    ca_store_cert_clear(&rec);
    return rc;
}

enum store_rc ca_rollover_record(STORE_TX *tx, const CA *ca,
                                 const struct ca_rollover_certs *c,
                                 const char *key_ref, const char *actor,
                                 int64_t *id)
{
    struct store_rollover r;
    struct store_ca *rec = NULL;
    unsigned char *olddb = NULL;
    char details[512], oh[17], nh[17];
    int64_t rid = 0;
    int i;
    enum store_rc rc = STORE_ERROR;

    memset(&r, 0, sizeof(r));
    if (id != NULL)
        *id = 0;
    r.ca_id = ca->id;
    if (!ca_rollover_sha(ca->cert, r.old_sha256)
        || !ca_rollover_sha(c->new_with_new, r.new_sha256)
        || !ca_rollover_der(c->new_with_new, &r.new_with_new)
        || !ca_rollover_der(c->new_with_old, &r.new_with_old)
        || !ca_rollover_der(c->old_with_new, &r.old_with_new))
        goto end;
    if ((rc = store_ca_get(tx, ca->id, &rec)) != STORE_OK)
        goto end;
    olddb = rec->cert_der;
    rec->cert_der = r.new_with_new.der;
    rec->cert_len = r.new_with_new.len;
    free(rec->key_ref);
    rec->key_ref = (char *)key_ref;
    rc = store_ca_update(tx, rec);
    rec->cert_der = olddb;
    rec->key_ref = NULL;
    if (rc != STORE_OK
        || (rc = store_rollover_insert(tx, &r, &rid)) != STORE_OK
        || (rc = ca_rollover_cert_insert(tx, ca, c->new_with_old)) != STORE_OK
        || (rc = ca_rollover_cert_insert(tx, ca, c->old_with_new)) != STORE_OK)
        goto end;
    for (i = 0; i < 8; i++) {
        snprintf(oh + 2 * i, 3, "%02x", r.old_sha256[i]);
        snprintf(nh + 2 * i, 3, "%02x", r.new_sha256[i]);
    }
    snprintf(details, sizeof(details), "{\"rollover\":%lld,\"old_root\":"
             "\"%s\",\"new_root\":\"%s\"}", (long long)rid, oh, nh);
    if ((rc = store_audit_append(tx, actor, "ca.rollover", ca->name, details))
        != STORE_OK)
        goto end;
    if (id != NULL)
        *id = rid;
 end:
    store_ca_free(rec);
    OPENSSL_free(r.new_with_new.der);
    OPENSSL_free(r.new_with_old.der);
    OPENSSL_free(r.old_with_new.der);
    return rc;
}

const struct store_rollover *ca_rollover_find(struct store_rollover **v,
                                               size_t n, X509 *root,
                                               int only_old)
{
    unsigned char md[STORE_SHA256_LEN];
    size_t i;

    if (root == NULL || !ca_rollover_sha(root, md))
        return NULL;
    for (i = n; i-- > 0;)
        if (memcmp(v[i]->old_sha256, md, sizeof(md)) == 0)
            return v[i];
    if (only_old)
        return NULL;
    for (i = n; i-- > 0;)
        if (memcmp(v[i]->new_sha256, md, sizeof(md)) == 0)
            return v[i];
    return NULL;
}
