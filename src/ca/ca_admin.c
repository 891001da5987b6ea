/*
 * Administrative CA operations used by the CLI (and tests): recording a new
 * CA in the store and issuing / recording a designated CMP signer.
 */
#include "ca/ca_int.h"
#include "conf/conf.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DER-encodes |x| into |d| (malloc'ed by OpenSSL). Returns 1 or 0. */
static int ca_der(X509 *x, struct store_der *d)
{
    int len;

    d->der = NULL;
    len = i2d_X509(x, &d->der);
    if (len <= 0)
        return 0;
    d->len = (size_t)len;
    return 1;
}

enum store_rc ca_record_insert(STORE_TX *tx, const char *name, X509 *cert,
                               STACK_OF(X509) *above, const char *key_ref,
                               const char *actor, int64_t *id)
{
    struct store_ca rec;
    struct store_der certd = { NULL, 0 }, *chain = NULL;
    size_t n = above != NULL ? (size_t)sk_X509_num(above) : 0, i;
    int64_t newid = 0;
    char details[512];
    enum store_rc rc = STORE_ERROR;

    memset(&rec, 0, sizeof(rec));
    if (id != NULL)
        *id = 0;
    if (!ca_der(cert, &certd)
        || (n > 0 && (chain = calloc(n, sizeof(*chain))) == NULL))
        goto end;
    for (i = 0; i < n; i++)
        if (!ca_der(sk_X509_value(above, (int)i), &chain[i]))
            goto end;
    rec.name = (char *)name;
    rec.cert_der = certd.der;
    rec.cert_len = certd.len;
    rec.chain = chain;
    rec.nchain = n;
    rec.key_ref = (char *)key_ref;
    if ((rc = store_ca_insert(tx, &rec, &newid)) != STORE_OK)
        goto end;
    snprintf(details, sizeof(details), "{\"id\":%lld,\"chain\":%zu}",
             (long long)newid, n);
    if ((rc = store_audit_append(tx, actor, "ca.create", name, details))
        != STORE_OK)
        goto end;
    if (id != NULL)
        *id = newid;
 end:
    OPENSSL_free(certd.der);
    for (i = 0; chain != NULL && i < n; i++)
        OPENSSL_free(chain[i].der);
    free(chain);
    return rc;
}

X509 *ca_make_cmp_signer_cert(const CA *ca, const X509_NAME *subject,
                              EVP_PKEY *pub, long days, char *err,
                              size_t errlen)
{
    char text[512];
    struct conf *conf = NULL;
    CA_PROFILE *prof = NULL;
    struct ca_issue_req req;
    X509 *x = NULL;

    if (days <= 0 || days > 36500) {
        snprintf(err, errlen, "validity must be 1..36500 days");
        return NULL;
    }
    snprintf(text, sizeof(text),
             "[profile cmp-signer]\n"
             "validity = %ldd\n"
             "key_usage = digitalSignature\n"
             "ext_key_usage = cmcRA\n"
             "basic_constraints = CA:FALSE\n"
             "allow_requested_subject = yes\n", days);
    if (!conf_load_string("cmp-signer", text, &conf, err, errlen)
        || !ca_profile_load(conf, "cmp-signer", &prof, err, errlen))
        goto end;
    memset(&req, 0, sizeof(req));
    req.pubkey = pub;
    req.subject = subject;
    if (ca_issue(ca, prof, &req, &x, err, errlen) != CA_ISSUE_OK)
        x = NULL;
 end:
    ca_profile_free(prof);
    conf_free(conf);
    return x;
}

X509 *ca_make_ocsp_signer_cert(const CA *ca, const X509_NAME *subject,
                               EVP_PKEY *pub, long days, char *err,
                               size_t errlen)
{
    char text[512];
    struct conf *conf = NULL;
    CA_PROFILE *prof = NULL;
    struct ca_issue_req req;
    ASN1_NULL *nul = NULL;
    X509 *x = NULL;

    if (days <= 0 || days > 36500) {
        snprintf(err, errlen, "validity must be 1..36500 days");
        return NULL;
    }
    if (ca->signer == NULL) {
        snprintf(err, errlen, "CA %s was loaded without its key", ca->name);
        return NULL;
    }
    snprintf(text, sizeof(text),
             "[profile ocsp-signer]\n"
             "validity = %ldd\n"
             "key_usage = digitalSignature\n"
             "ext_key_usage = 1.3.6.1.5.5.7.3.9\n"
             "basic_constraints = CA:FALSE\n"
             "allow_requested_subject = yes\n", days);
    if (!conf_load_string("ocsp-signer", text, &conf, err, errlen)
        || !ca_profile_load(conf, "ocsp-signer", &prof, err, errlen))
        goto end;
    memset(&req, 0, sizeof(req));
    req.pubkey = pub;
    req.subject = subject;
    if (ca_issue(ca, prof, &req, &x, err, errlen) != CA_ISSUE_OK) {
        x = NULL;
        goto end;
    }
    /* id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1): relying parties need not
     * check the responder certificate itself; signed again with it */
    if ((nul = ASN1_NULL_new()) == NULL
        || !X509_add1_ext_i2d(x, NID_id_pkix_OCSP_noCheck, nul, 0, 0)
        || !ca_signer_sign_x509(ca->signer, x)) {
        snprintf(err, errlen, "cannot add id-pkix-ocsp-nocheck");
        X509_free(x);
        x = NULL;
    }
 end:
    ASN1_NULL_free(nul);
    ca_profile_free(prof);
    conf_free(conf);
    return x;
}

enum store_rc ca_record_set_cmp_signer(STORE_TX *tx, const CA *ca, X509 *cert,
                                       const char *key_ref, const char *actor)
{
    struct store_ca *rec = NULL;
    struct store_der d = { NULL, 0 };
    unsigned char *old_der;
    char *old_ref;
    size_t old_len;
    char details[256];
    enum store_rc rc;

    if ((rc = store_ca_get(tx, ca->id, &rec)) != STORE_OK)
        return rc;
    if (!ca_der(cert, &d)) {
        store_ca_free(rec);
        return STORE_ERROR;
    }
    old_der = rec->signer_cert_der;
    old_len = rec->signer_cert_len;
    old_ref = rec->signer_key_ref;
    rec->signer_cert_der = d.der;
    rec->signer_cert_len = d.len;
    rec->signer_key_ref = (char *)key_ref;
    rc = store_ca_update(tx, rec);
    rec->signer_cert_der = old_der;
    rec->signer_cert_len = old_len;
    rec->signer_key_ref = old_ref;
    if (rc == STORE_OK) {
        snprintf(details, sizeof(details), "{\"key\":\"%s\"}",
                 strncmp(key_ref, "pkcs11:", 7) == 0 ? "pkcs11" : "file");
        rc = store_audit_append(tx, actor, "ca.signer", ca->name, details);
    }
    OPENSSL_free(d.der);
    store_ca_free(rec);
    return rc;
}
