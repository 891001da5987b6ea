/*
 * Loading a CA once: certificate, chain to the root, CA key and CMP signer
 * from the store and the [ca NAME] section, with everything the hot path
 * needs (AKI, notAfter, extraCerts chain) cached.
 */
#include "ca/ca_int.h"
#include "conf/conf.h"
#include "util/log.h"
#include "util/x509_der.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_free(CA *ca)
{
    if (ca == NULL)
        return;
    free(ca->name);
    X509_free(ca->cert);
    sk_X509_pop_free(ca->chain, X509_free);
    sk_X509_pop_free(ca->cmp_chain, X509_free);
    X509_free(ca->cmp_cert);
    ca_signer_free(ca->signer);
    ca_signer_free(ca->cmp_signer);
    X509_EXTENSION_free(ca->aki);
    free(ca->key_ref);
    free(ca->signer_key_ref);
    X509_free(ca->ocsp_cert);
    ca_signer_free(ca->ocsp_signer);
    free(ca);
}

int64_t ca_get_id(const CA *ca) { return ca->id; }
const char *ca_get0_name(const CA *ca) { return ca->name; }
X509 *ca_get0_cert(const CA *ca) { return ca->cert; }
STACK_OF(X509) *ca_get0_chain(const CA *ca) { return ca->chain; }
X509 *ca_get0_root(const CA *ca) { return ca->root; }
const CA_SIGNER *ca_get0_signer(const CA *ca) { return ca->signer; }
X509 *ca_get0_cmp_signer_cert(const CA *ca) { return ca->cmp_cert; }
const CA_SIGNER *ca_get0_cmp_signer(const CA *ca) { return ca->cmp_signer; }
STACK_OF(X509) *ca_get0_cmp_chain(const CA *ca) { return ca->cmp_chain; }
long ca_get_crl_validity(const CA *ca) { return ca->crl_validity; }
X509 *ca_get0_ocsp_signer_cert(const CA *ca) { return ca->ocsp_cert; }
const CA_SIGNER *ca_get0_ocsp_signer(const CA *ca) { return ca->ocsp_signer; }

int ca_has_separate_cmp_signer(const CA *ca)
{
    return ca->cmp_cert != ca->cert;
}

/* Decodes one DER certificate. */
static X509 *ca_d2i(const unsigned char *der, size_t len)
{
    return len > 1L << 20 ? NULL : x509_der_get1(der, len);
}

/* Checks that chain[0] verifies up to the self-signed chain[last]. */
static int ca_chain_verify(STACK_OF(X509) *chain, char *err, size_t errlen)
{
    X509_STORE *xs = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int i, n = sk_X509_num(chain), ok = 0;
    X509 *root = sk_X509_value(chain, n - 1);

    if (xs == NULL || ctx == NULL || untrusted == NULL)
        goto end;
    if (X509_check_issued(root, root) != X509_V_OK) {
        snprintf(err, errlen, "the chain does not end in a self-signed root");
        goto end;
    }
    if (!X509_STORE_add_cert(xs, root))
        goto end;
    for (i = 1; i < n - 1; i++)
        if (!sk_X509_push(untrusted, sk_X509_value(chain, i)))
            goto end;
    X509_STORE_set_flags(xs, X509_V_FLAG_NO_CHECK_TIME);
    if (!X509_STORE_CTX_init(ctx, xs, sk_X509_value(chain, 0), untrusted))
        goto end;
    if (X509_verify_cert(ctx) != 1) {
        snprintf(err, errlen, "the CA chain does not verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto end;
    }
    ok = 1;
 end:
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "cannot verify the CA chain");
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(xs);
    ERR_clear_error();
    return ok;
}

/* Maps a signer load status to a load result. */
static enum ca_load_rc ca_signer_rc(enum ca_signer_status st)
{
    switch (st) {
    case CA_SIGNER_OK: return CA_LOAD_OK;
    case CA_SIGNER_AUTH:
    case CA_SIGNER_NOKEY:
    case CA_SIGNER_MISMATCH: return CA_LOAD_AUTH;
    default: return CA_LOAD_ERROR;
    }
}

/* Opens key |ref| for |cert| and checks they match. */
static enum ca_load_rc ca_open_key(const char *ref, const char *pass,
                                   const char *module, const char *md,
                                   const char *what, X509 *cert,
                                   CA_SIGNER **out, char *err, size_t errlen)
{
    struct ca_signer_opts o = { pass, module, md, what };
    enum ca_signer_status st;
    char msg[512];

    st = ca_signer_load(ref, &o, out, msg, sizeof(msg));
    if (st != CA_SIGNER_OK) {
        snprintf(err, errlen, "%s: %s", what, msg);
        return ca_signer_rc(st);
    }
    if (!ca_signer_matches_cert(*out, cert)) {
        snprintf(err, errlen, "%s: the key %s does not match its certificate",
                 what, ref);
        ca_signer_free(*out);
        *out = NULL;
        return CA_LOAD_AUTH;
    }
    return CA_LOAD_OK;
}

/* |path| made absolute against the directory of the configuration file
 * |conf| (malloc'ed; NULL on allocation failure). */
static char *ca_conf_path(const struct conf *conf, const char *path)
{
    const char *slash = conf->path != NULL ? strrchr(conf->path, '/') : NULL;
    size_t dl = slash != NULL ? (size_t)(slash - conf->path) + 1 : 0;
    char *out;

    if (path[0] == '/' || strncmp(path, "pkcs11:", 7) == 0 || dl == 0)
        return strdup(path);
    if ((out = malloc(dl + strlen(path) + 1)) == NULL)
        return NULL;
    memcpy(out, conf->path, dl);
    strcpy(out + dl, path);
    return out;
}

/* Loads the delegated OCSP signer of |ca| (certificate PEM |certpath|,
 * key |keypath| unlocked with |pass|) and checks that |ca| issued it for
 * OCSP signing. Returns a ca_load_rc. */
static enum ca_load_rc ca_load_ocsp_signer(CA *ca, const struct conf *conf,
                                           const char *certpath,
                                           const char *keypath,
                                           const char *pass,
                                           const char *module, char *err,
                                           size_t errlen)
{
    char *cp = ca_conf_path(conf, certpath), *kp = ca_conf_path(conf, keypath);
    char what[300];
    BIO *b = NULL;
    enum ca_load_rc rc = CA_LOAD_ERROR;

    if (cp == NULL || kp == NULL)
        goto end;
    if ((b = BIO_new_file(cp, "r")) == NULL
        || (ca->ocsp_cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
        snprintf(err, errlen, "CA %s: cannot read the OCSP signer "
                 "certificate %s", ca->name, cp);
        rc = CA_LOAD_CONFIG;
        goto end;
    }
    if (X509_check_issued(ca->cert, ca->ocsp_cert) != X509_V_OK
        || !(X509_get_extended_key_usage(ca->ocsp_cert) & XKU_OCSP_SIGN)) {
        snprintf(err, errlen, "CA %s: %s is not an OCSP signer certificate "
                 "issued by the CA", ca->name, cp);
        rc = CA_LOAD_CONFIG;
        goto end;
    }
    snprintf(what, sizeof(what), "OCSP signer key of CA %s", ca->name);
    rc = ca_open_key(kp, pass, module, NULL, what, ca->ocsp_cert,
                     &ca->ocsp_signer, err, errlen);
 end:
    BIO_free(b);
    free(cp);
    free(kp);
    return rc;
}

/*
 * Sets up what ca_new() and ca_load_ex() both build in |ca|: the chain
 * (|cert| then |above|, which may be NULL) checked to verify up to its
 * self-signed last certificate, the root, the notAfter and AKI caches, the
 * CMP signer certificate (|cmp_cert|, or |cert| when NULL) and the
 * extraCerts chain (that certificate when separate, then the chain).
 * Takes references of its own; the signers are the caller's business.
 * Returns 1, or 0 with |err| set when the chain does not verify (left as it
 * was on other errors).
 */
static int ca_setup(CA *ca, X509 *cert, STACK_OF(X509) *above,
                    X509 *cmp_cert, char *err, size_t errlen)
{
    int64_t na;

    if (cmp_cert == NULL)
        cmp_cert = cert;
    if ((ca->chain = sk_X509_new_null()) == NULL
        || (ca->cmp_chain = sk_X509_new_null()) == NULL
        || !X509_add_cert(ca->chain, cert, X509_ADD_FLAG_UP_REF)
        || !X509_add_certs(ca->chain, above, X509_ADD_FLAG_UP_REF)
        || !X509_up_ref(cert))
        return 0;
    ca->cert = cert;
    ca->root = sk_X509_value(ca->chain, sk_X509_num(ca->chain) - 1);
    if (!ca_chain_verify(ca->chain, err, errlen)
        || !ca_asn1_time_to_unix(X509_get0_notAfter(cert), &na)
        || (ca->aki = ca_make_aki(cert)) == NULL)
        return 0;
    ca->not_after = (time_t)na;
    if (!X509_up_ref(cmp_cert))
        return 0;
    ca->cmp_cert = cmp_cert;
    return (cmp_cert == cert
            || X509_add_cert(ca->cmp_chain, cmp_cert, X509_ADD_FLAG_UP_REF))
        && X509_add_certs(ca->cmp_chain, ca->chain, X509_ADD_FLAG_UP_REF);
}

CA *ca_new(const char *name, X509 *cert, STACK_OF(X509) *above,
           CA_SIGNER *signer, char *err, size_t errlen)
{
    CA *ca = calloc(1, sizeof(*ca));
    int ok = 0;

    if (errlen > 0)
        err[0] = '\0';
    if (ca == NULL)
        return NULL;
    ca->crl_validity = 7L * 86400;
    if ((ca->name = strdup(name)) == NULL
        || !ca_setup(ca, cert, above, NULL, err, errlen))
        goto end;
    if (!ca_signer_matches_cert(signer, cert)) {
        snprintf(err, errlen, "the key does not match the CA certificate");
        goto end;
    }
    ca_signer_up_ref(signer);
    ca->signer = signer;
    ca_signer_up_ref(signer);
    ca->cmp_signer = signer;
    ok = 1;
 end:
    if (!ok) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot set up CA %s", name);
        ca_free(ca);
        ca = NULL;
    }
    return ca;
}

int ca_load(const struct conf *conf, STORE *store, const char *name, CA **out,
            char *err, size_t errlen)
{
    return ca_load_ex(conf, store, name, NULL, out, err, errlen) == CA_LOAD_OK;
}

enum ca_load_rc ca_load_ex(const struct conf *conf, STORE *store,
                           const char *name, const struct ca_load_opts *opts,
                           CA **out, char *err, size_t errlen)
{
    static const struct ca_load_opts defaults;
    const struct conf_section *sec = NULL;
    const char *key_pass = NULL, *signer_pass = NULL, *module = NULL;
    const char *pin = NULL, *md = NULL, *pass;
    const char *ocsp_cert = NULL, *ocsp_key = NULL, *ocsp_pass = NULL;
    struct store_ca *rec = NULL;
    STORE_TX *tx = NULL;
    CA *ca = NULL;
    X509 *x, *cert = NULL, *cmp_cert = NULL;
    STACK_OF(X509) *above = NULL;
    size_t i;
    char what[300];
    enum store_rc src;
    enum ca_load_rc rc = CA_LOAD_ERROR;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (opts == NULL)
        opts = &defaults;
    if ((ca = calloc(1, sizeof(*ca))) == NULL)
        goto end;
    ca->crl_validity = 7L * 86400;
    if (conf != NULL && (sec = conf_find(conf, "ca", name)) != NULL) {
        key_pass = conf_get(sec, "key_pass");
        signer_pass = conf_get(sec, "signer_key_pass");
        module = conf_get(sec, "pkcs11_module");
        pin = conf_get(sec, "pkcs11_pin");
        md = conf_get(sec, "digest");
        ocsp_cert = conf_get(sec, "ocsp_signer_cert");
        ocsp_key = conf_get(sec, "ocsp_signer_key");
        ocsp_pass = conf_get(sec, "ocsp_signer_key_pass");
        if ((ocsp_cert == NULL) != (ocsp_key == NULL)) {
            conf_err(conf, sec->line, err, errlen, "ocsp_signer_cert and "
                     "ocsp_signer_key go together in [ca %s]", name);
            rc = CA_LOAD_CONFIG;
            goto end;
        }
        if (!conf_get_duration(conf, sec, "crl_validity", 7L * 86400, 3600,
                               366L * 86400, &ca->crl_validity, err, errlen)
            || !conf_check_used(conf, sec, err, errlen)) {
            rc = CA_LOAD_CONFIG;
            goto end;
        }
    }
    if ((src = store_begin_read(store, &tx)) != STORE_OK
        || (src = store_ca_get_by_name(tx, name, &rec)) != STORE_OK) {
        snprintf(err, errlen, src == STORE_NOTFOUND ? "no CA named '%s'"
                 : "cannot read CA '%s' from the store", name);
        rc = src == STORE_NOTFOUND ? CA_LOAD_NOTFOUND : CA_LOAD_STORE;
        goto end;
    }
    store_rollback(tx);
    tx = NULL;
    ca->id = rec->id;
    if ((ca->name = strdup(rec->name)) == NULL
        || (rec->key_ref != NULL && (ca->key_ref = strdup(rec->key_ref)) == NULL)
        || (rec->signer_key_ref != NULL
            && (ca->signer_key_ref = strdup(rec->signer_key_ref)) == NULL)
        || (above = sk_X509_new_null()) == NULL)
        goto end;
    if ((cert = ca_d2i(rec->cert_der, rec->cert_len)) == NULL) {
        snprintf(err, errlen, "CA %s: stored certificate is malformed", name);
        goto end;
    }
    for (i = 0; i < rec->nchain; i++) {
        if ((x = ca_d2i(rec->chain[i].der, rec->chain[i].len)) == NULL) {
            snprintf(err, errlen, "CA %s: stored chain is malformed", name);
            goto end;
        }
        if (!sk_X509_push(above, x)) {
            X509_free(x);
            goto end;
        }
    }
    if (rec->signer_cert_der != NULL
        && (cmp_cert = ca_d2i(rec->signer_cert_der,
                              rec->signer_cert_len)) == NULL) {
        snprintf(err, errlen, "CA %s: stored CMP signer certificate is "
                 "malformed", name);
        goto end;
    }
    if (!ca_setup(ca, cert, above, cmp_cert, err, errlen))
        goto end;

    if (!opts->skip_key) {
        if (ca->key_ref == NULL) {
            snprintf(err, errlen, "CA %s has no key reference", name);
            rc = CA_LOAD_AUTH;
            goto end;
        }
        pass = opts->key_pass != NULL ? opts->key_pass
            : strncmp(ca->key_ref, "pkcs11:", 7) == 0 ? pin : key_pass;
        snprintf(what, sizeof(what), "key of CA %s", name);
        if ((rc = ca_open_key(ca->key_ref, pass, module, md, what, ca->cert,
                              &ca->signer, err, errlen)) != CA_LOAD_OK)
            goto end;
        rc = CA_LOAD_ERROR;
    }
    if (cmp_cert != NULL) {
        if (!opts->skip_key && !opts->skip_cmp_signer
            && ca->signer_key_ref != NULL) {
            pass = opts->signer_pass != NULL ? opts->signer_pass
                : strncmp(ca->signer_key_ref, "pkcs11:", 7) == 0 ? pin
                : signer_pass;
            snprintf(what, sizeof(what), "CMP signer key of CA %s", name);
            if ((rc = ca_open_key(ca->signer_key_ref, pass, module, NULL, what,
                                  ca->cmp_cert, &ca->cmp_signer, err,
                                  errlen)) != CA_LOAD_OK)
                goto end;
            rc = CA_LOAD_ERROR;
        }
    } else if (ca->signer != NULL) {
        ca_signer_up_ref(ca->signer);
        ca->cmp_signer = ca->signer;
    }
    if (opts->ocsp_signer && !opts->skip_key && ocsp_cert != NULL) {
        pass = strncmp(ocsp_key, "pkcs11:", 7) == 0 ? pin : ocsp_pass;
        if ((rc = ca_load_ocsp_signer(ca, conf, ocsp_cert, ocsp_key, pass,
                                      module, err, errlen)) != CA_LOAD_OK)
            goto end;
        rc = CA_LOAD_ERROR;
    }
    *out = ca;
    ca = NULL;
    rc = CA_LOAD_OK;
 end:
    if (rc != CA_LOAD_OK && err[0] == '\0')
        snprintf(err, errlen, "cannot load CA %s", name);
    store_rollback(tx);
    store_ca_free(rec);
    X509_free(cert);
    X509_free(cmp_cert);
    sk_X509_pop_free(above, X509_free);
    ca_free(ca);
    ERR_clear_error();
    return rc;
}
