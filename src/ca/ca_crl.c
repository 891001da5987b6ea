/*
 * Revocation and CRLs: marking certificates revoked in the store (with an
 * audit row) and building, signing and storing v2 CRLs with CRL numbers from
 * the store's counter.
 */
#include "ca/ca_int.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const ca_reasons[] = {
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
    "superseded", "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn", "aACompromise"
};
#define CA_NREASONS (sizeof(ca_reasons) / sizeof(ca_reasons[0]))

int ca_reason_parse(const char *s)
{
    size_t i;
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    for (i = 0; i < CA_NREASONS; i++)
        if (ca_reasons[i] != NULL && strcasecmp(s, ca_reasons[i]) == 0)
            return (int)i;
    v = strtol(s, &end, 10);
    if (*end == '\0' && v >= 0 && (size_t)v < CA_NREASONS
        && ca_reasons[v] != NULL)
        return (int)v;
    return -1;
}

const char *ca_reason_str(int code)
{
    return code >= 0 && (size_t)code < CA_NREASONS ? ca_reasons[code] : NULL;
}

char *ca_serial_hex(const unsigned char *serial, size_t len, char *buf,
                    size_t buflen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < len && 2 * i + 2 < buflen; i++) {
        buf[2 * i] = hex[serial[i] >> 4];
        buf[2 * i + 1] = hex[serial[i] & 0x0f];
    }
    if (buflen > 0)
        buf[2 * i < buflen ? 2 * i : buflen - 1] = '\0';
    return buf;
}

/* Appends the audit row |action| (cert.revoke, cert.unhold) for |c|. */
static enum store_rc ca_revoke_audit(const CA *ca, STORE_TX *tx,
                                     const struct store_cert *c,
                                     const char *action, int reason,
                                     int64_t when, const char *actor)
{
    char obj[2 * STORE_SERIAL_MAX + 1], details[256], was[48] = "";

    ca_serial_hex(c->serial, c->serial_len, obj, sizeof(obj));
    if (c->status == STORE_CERT_REVOKED)
        snprintf(was, sizeof(was), ",\"was\":%d", c->reason);
    snprintf(details, sizeof(details),
             "{\"ca\":%lld,\"cert_id\":%lld,\"reason\":%d,\"time\":%lld%s}",
             (long long)ca->id, (long long)c->id, reason, (long long)when,
             was);
    return store_audit_append(tx, actor != NULL ? actor : "ca", action,
                              obj, details);
}

/* Releases the looked-up certificate |c| from hold. */
static enum ca_revoke_rc ca_unhold_rec(const CA *ca, STORE_TX *tx,
                                       const struct store_cert *c,
                                       int64_t when, const char *actor,
                                       char *err, size_t errlen)
{
    enum store_rc src;

    if (c->status != STORE_CERT_REVOKED) {
        snprintf(err, errlen, "removeFromCRL: the certificate is not on hold "
                 "(it is valid)");
        return CA_REVOKE_NOT_HELD;
    }
    if (c->reason != CA_REASON_HOLD) {
        snprintf(err, errlen, "removeFromCRL: the certificate is revoked "
                 "(%s), not on hold", c->reason >= 0
                 && ca_reason_str(c->reason) != NULL
                 ? ca_reason_str(c->reason) : "no reason");
        return CA_REVOKE_ALREADY;
    }
    src = store_cert_unrevoke(tx, c->id);
    if (src == STORE_CONFLICT) {
        snprintf(err, errlen, "removeFromCRL: the certificate is no longer "
                 "on hold");
        return CA_REVOKE_ALREADY;
    }
    if (src == STORE_OK)
        src = ca_revoke_audit(ca, tx, c, "cert.unhold", CA_REASON_REMOVE,
                              when, actor);
    if (src != STORE_OK) {
        snprintf(err, errlen, "store: %s (%s)", store_rc_str(src),
                 store_tx_errmsg(tx));
        return src == STORE_NOTFOUND ? CA_REVOKE_NOTFOUND : CA_REVOKE_ERROR;
    }
    return CA_REVOKE_OK;
}

/* Revokes the looked-up certificate |c| (or releases its hold). */
static enum ca_revoke_rc ca_revoke_rec(const CA *ca, STORE_TX *tx,
                                       const struct store_cert *c, int reason,
                                       int64_t when, const char *actor,
                                       char *err, size_t errlen)
{
    enum store_rc src;

    if (c->ca_id != ca->id) {
        snprintf(err, errlen, "certificate %lld was issued by another CA "
                 "than %s", (long long)c->id, ca->name);
        return CA_REVOKE_NOTFOUND;
    }
    if (reason == 7 || reason > 10 || reason < -1) {
        snprintf(err, errlen, "%d is no CRL reason", reason);
        return CA_REVOKE_ERROR;
    }
    if (when == 0)
        when = (int64_t)time(NULL);
    if (reason == CA_REASON_REMOVE)
        return ca_unhold_rec(ca, tx, c, when, actor, err, errlen);
    if (c->status == STORE_CERT_REVOKED
        && (c->reason != CA_REASON_HOLD || reason == CA_REASON_HOLD)) {
        snprintf(err, errlen, "certificate is already %s",
                 c->reason == CA_REASON_HOLD ? "on hold" : "revoked");
        return CA_REVOKE_ALREADY;
    }
    src = store_cert_revoke(tx, c->id, reason, when);
    if (src == STORE_CONFLICT) {
        snprintf(err, errlen, "certificate is already revoked");
        return CA_REVOKE_ALREADY;
    }
    if (src == STORE_OK)
        src = ca_revoke_audit(ca, tx, c, "cert.revoke", reason, when, actor);
    if (src != STORE_OK) {
        snprintf(err, errlen, "store: %s (%s)", store_rc_str(src),
                 store_tx_errmsg(tx));
        return src == STORE_NOTFOUND ? CA_REVOKE_NOTFOUND : CA_REVOKE_ERROR;
    }
    return CA_REVOKE_OK;
}

enum ca_revoke_rc ca_revoke(const CA *ca, STORE_TX *tx, int64_t cert_id,
                            int reason, int64_t when, const char *actor,
                            char *err, size_t errlen)
{
    struct store_cert *c = NULL;
    enum store_rc src = store_cert_get(tx, cert_id, &c);
    enum ca_revoke_rc rc;

    if (src != STORE_OK) {
        snprintf(err, errlen, "certificate %lld: %s", (long long)cert_id,
                 store_rc_str(src));
        return src == STORE_NOTFOUND ? CA_REVOKE_NOTFOUND : CA_REVOKE_ERROR;
    }
    rc = ca_revoke_rec(ca, tx, c, reason, when, actor, err, errlen);
    store_cert_free(c);
    return rc;
}

enum ca_revoke_rc ca_revoke_serial(const CA *ca, STORE_TX *tx,
                                   const unsigned char *serial,
                                   size_t serial_len, int reason,
                                   int64_t when, const char *actor,
                                   char *err, size_t errlen)
{
    struct store_cert *c = NULL;
    enum store_rc src = store_cert_get_by_serial(tx, ca->id, serial,
                                                 serial_len, &c);
    enum ca_revoke_rc rc;

    if (src != STORE_OK) {
        snprintf(err, errlen, "no certificate with that serial from CA %s%s%s",
                 ca->name, src == STORE_NOTFOUND ? "" : ": ",
                 src == STORE_NOTFOUND ? "" : store_rc_str(src));
        return src == STORE_NOTFOUND ? CA_REVOKE_NOTFOUND : CA_REVOKE_ERROR;
    }
    rc = ca_revoke_rec(ca, tx, c, reason, when, actor, err, errlen);
    store_cert_free(c);
    return rc;
}

/* Collects revoked entries into the CRL being built. */
static int ca_crl_add_cb(void *arg, const struct store_revoked *r)
{
    X509_CRL *crl = arg;
    X509_REVOKED *rev = NULL;
    ASN1_INTEGER *sn = NULL;
    ASN1_TIME *t = NULL;
    ASN1_ENUMERATED *reason = NULL;
    time_t when = (time_t)r->revoked_at;
    int ok = 0;

    if ((rev = X509_REVOKED_new()) == NULL
        || (sn = ASN1_INTEGER_new()) == NULL
        || !ASN1_STRING_set(sn, r->serial, (int)r->serial_len)
        || !X509_REVOKED_set_serialNumber(rev, sn)
        || (t = ASN1_TIME_set(NULL, when)) == NULL
        || !X509_REVOKED_set_revocationDate(rev, t))
        goto end;
    /* RFC 5280 5.3.1: omit the reason rather than use unspecified (0);
     * removeFromCRL belongs to delta CRLs only (the store never records
     * it; a row from an older version is listed without a reason) */
    if (r->reason > 0 && r->reason != CA_REASON_REMOVE) {
        if ((reason = ASN1_ENUMERATED_new()) == NULL
            || !ASN1_ENUMERATED_set(reason, r->reason)
            || !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
            goto end;
    }
    if (!X509_CRL_add0_revoked(crl, rev))
        goto end;
    rev = NULL;
    ok = 1;
 end:
    X509_REVOKED_free(rev);
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(t);
    ASN1_ENUMERATED_free(reason);
    return ok;
}

int ca_crl_generate(const CA *ca, STORE_TX *tx, time_t now, X509_CRL **out,
                    char *err, size_t errlen)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *t = NULL;
    ASN1_INTEGER *num = NULL;
    struct store_crl rec;
    unsigned char *der = NULL;
    int64_t number = 0;
    enum store_rc src;
    int len, ok = 0;

    if (out != NULL)
        *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (now == 0)
        now = time(NULL);
    memset(&rec, 0, sizeof(rec));
    if (ca->signer == NULL) {
        snprintf(err, errlen, "CA %s was loaded without its key", ca->name);
        return 0;
    }
    if ((src = store_crl_next_number(tx, ca->id, &number)) != STORE_OK) {
        snprintf(err, errlen, "CRL number: %s (%s)", store_rc_str(src),
                 store_tx_errmsg(tx));
        return 0;
    }
    if ((crl = X509_CRL_new()) == NULL
        || !X509_CRL_set_version(crl, 1)
        || !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert))
        || (t = ASN1_TIME_set(NULL, now)) == NULL
        || !X509_CRL_set1_lastUpdate(crl, t)
        || ASN1_TIME_set(t, now + ca->crl_validity) == NULL
        || !X509_CRL_set1_nextUpdate(crl, t))
        goto end;
    src = store_cert_foreach_revoked(tx, ca->id, (int64_t)now, ca_crl_add_cb,
                                     crl);
    if (src != STORE_OK) {
        snprintf(err, errlen, "reading revoked certificates: %s",
                 store_rc_str(src));
        goto end;
    }
    if (!X509_CRL_sort(crl)
        || (num = ASN1_INTEGER_new()) == NULL
        || !ASN1_INTEGER_set_int64(num, number)
        || !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)
        || !X509_CRL_add_ext(crl, ca->aki, -1))
        goto end;
    if (!ca_signer_sign_crl(ca->signer, crl)) {
        snprintf(err, errlen, "signing the CRL failed");
        goto end;
    }
    if ((len = i2d_X509_CRL(crl, &der)) <= 0)
        goto end;
    rec.ca_id = ca->id;
    rec.number = number;
    rec.this_update = (int64_t)now;
    rec.next_update = (int64_t)now + ca->crl_validity;
    rec.der = der;
    rec.der_len = (size_t)len;
    if ((src = store_crl_put(tx, &rec)) != STORE_OK) {
        snprintf(err, errlen, "storing the CRL: %s (%s)", store_rc_str(src),
                 store_tx_errmsg(tx));
        goto end;
    }
    if (out != NULL) {
        *out = crl;
        crl = NULL;
    }
    ok = 1;
 end:
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "cannot build the CRL");
    X509_CRL_free(crl);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(num);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}
