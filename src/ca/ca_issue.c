/*
 * Issuing certificates as X509 objects: random serials, subject from the
 * profile template or the request, validity, extensions (fixed ones
 * prebuilt at load), and the store insert with retry on serial collision.
 * ca_issue_der.c makes the same certificates straight to DER.
 */
#include "ca/ca_int.h"
#include "ca/ca_tbs.h"
#include "util/log.h"
#include "util/x509_der.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const char *ca_issue_rc_str(enum ca_issue_rc rc)
{
    switch (rc) {
    case CA_ISSUE_OK: return "ok";
    case CA_ISSUE_BAD_KEY: return "key not allowed";
    case CA_ISSUE_BAD_SUBJECT: return "bad subject";
    case CA_ISSUE_BAD_EXT: return "bad extension";
    case CA_ISSUE_EXPIRED: return "CA expired";
    case CA_ISSUE_STORE: return "store error";
    default: return "internal error";
    }
}

int ca_serial_random(X509 *x)
{
    unsigned char mag[CA_SERIAL_LEN];
    ASN1_INTEGER *sn = X509_get_serialNumber(x);
    size_t len = 0;

    /* magnitude octets, as BN_to_ASN1_INTEGER() would store them */
    if (!ca_serial_next(mag, &len) || !ASN1_STRING_set(sn, mag, (int)len))
        return 0;
    sn->type = V_ASN1_INTEGER;
    return 1;
}

/* Adds the subject key identifier (SHA-1 of the public key bits). */
static int ca_add_ski(X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASN1_OCTET_STRING *os = NULL;
    int ok = 0;

    if (!X509_pubkey_digest(x, EVP_sha1(), md, &len)
        || (os = ASN1_OCTET_STRING_new()) == NULL
        || !ASN1_OCTET_STRING_set(os, md, (int)len))
        goto end;
    ok = X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0,
                           X509V3_ADD_DEFAULT) == 1;
 end:
    ASN1_OCTET_STRING_free(os);
    return ok;
}

X509_EXTENSION *ca_make_aki(X509 *issuer)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    AUTHORITY_KEYID *akid = NULL;
    X509_EXTENSION *ext = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if ((akid = AUTHORITY_KEYID_new()) == NULL
        || (akid->keyid = ASN1_OCTET_STRING_new()) == NULL)
        goto end;
    if (ski != NULL) {
        if (!ASN1_OCTET_STRING_set(akid->keyid, ASN1_STRING_get0_data(ski),
                                   ASN1_STRING_length(ski)))
            goto end;
    } else if (!X509_pubkey_digest(issuer, EVP_sha1(), md, &len)
               || !ASN1_OCTET_STRING_set(akid->keyid, md, (int)len)) {
        goto end;
    }
    ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid);
 end:
    AUTHORITY_KEYID_free(akid);
    return ext;
}

/* Builds the subject: the requested one if the profile allows it and one
 * was given, else the template expanded. */
static enum ca_issue_rc ca_build_subject(const CA_PROFILE *p,
                                         const struct ca_issue_req *req,
                                         X509 *x, char *err, size_t errlen)
{
    char val[1024];
    X509_NAME *name = NULL;
    size_t i;
    enum ca_issue_rc rc = CA_ISSUE_BAD_SUBJECT;

    if (req->force_subject != NULL)
        return X509_set_subject_name(x, req->force_subject) ? CA_ISSUE_OK
            : CA_ISSUE_ERROR;
    if (p->allow_requested_subject && req->subject != NULL
        && X509_NAME_entry_count(req->subject) > 0) {
        return X509_set_subject_name(x, req->subject) ? CA_ISSUE_OK
            : CA_ISSUE_ERROR;
    }
    if (p->nsubj == 0) {
        snprintf(err, errlen, "profile %s has no subject template and the "
                 "request names no subject", p->name);
        return CA_ISSUE_BAD_SUBJECT;
    }
    /* fill the certificate's own (empty) name: no copy of a built name */
    name = X509_get_subject_name(x);
    for (i = 0; i < p->nsubj; i++) {
        if (!ca_template_expand(p->subj[i].value, req->vars, req->vars_arg,
                                val, sizeof(val), err, errlen))
            return rc;
        if (!X509_NAME_add_entry_by_NID(name, p->subj[i].nid, MBSTRING_UTF8,
                                        (unsigned char *)val, -1, -1, 0)) {
            snprintf(err, errlen, "value '%s' not valid for %s", val,
                     OBJ_nid2sn(p->subj[i].nid));
            ERR_clear_error();
            return rc;
        }
    }
    return CA_ISSUE_OK;
}

enum ca_issue_rc ca_san_names(const CA_PROFILE *p,
                              const struct ca_issue_req *req,
                              GENERAL_NAMES **out, int *crit, char *err,
                              size_t errlen)
{
    GENERAL_NAMES *gens = NULL;
    GENERAL_NAME *gen = NULL;
    X509_EXTENSION *ext;
    char val[1024];
    size_t i;
    int idx;
    enum ca_issue_rc rc = CA_ISSUE_ERROR;

    *out = NULL;
    *crit = 0;
    if (p->san_mode == CA_SAN_NONE)
        return CA_ISSUE_OK;
    if (p->san_mode == CA_SAN_COPY) {
        if (req->exts == NULL)
            return CA_ISSUE_OK;
        idx = X509v3_get_ext_by_NID(req->exts, NID_subject_alt_name, -1);
        if (idx < 0)
            return CA_ISSUE_OK;
        ext = X509v3_get_ext(req->exts, idx);
        if ((gens = X509V3_EXT_d2i(ext)) == NULL) {
            snprintf(err, errlen, "requested subjectAltName is malformed");
            ERR_clear_error();
            return CA_ISSUE_BAD_EXT;
        }
        *crit = X509_EXTENSION_get_critical(ext);
    } else {
        if ((gens = GENERAL_NAMES_new()) == NULL)
            return CA_ISSUE_ERROR;
        for (i = 0; i < p->nsan; i++) {
            if (!ca_template_expand(p->san[i].value, req->vars, req->vars_arg,
                                    val, sizeof(val), err, errlen)) {
                rc = CA_ISSUE_BAD_SUBJECT;
                goto end;
            }
            if (p->san[i].type == GEN_IPADD) {
                ASN1_OCTET_STRING *ip = a2i_IPADDRESS(val);

                if (ip == NULL || (gen = GENERAL_NAME_new()) == NULL) {
                    ASN1_OCTET_STRING_free(ip);
                    snprintf(err, errlen, "'%s' is not an IP address", val);
                    rc = CA_ISSUE_BAD_SUBJECT;
                    goto end;
                }
                GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
            } else {
                ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

                if (ia5 == NULL || !ASN1_STRING_set(ia5, val, -1)
                    || (gen = GENERAL_NAME_new()) == NULL) {
                    ASN1_IA5STRING_free(ia5);
                    goto end;
                }
                GENERAL_NAME_set0_value(gen, p->san[i].type, ia5);
            }
            if (!sk_GENERAL_NAME_push(gens, gen))
                goto end;
            gen = NULL;
        }
    }
    *out = gens;
    gens = NULL;
    rc = CA_ISSUE_OK;
 end:
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return rc;
}

/* Adds the subjectAltName per the profile's san rule. */
static enum ca_issue_rc ca_build_san(const CA_PROFILE *p,
                                     const struct ca_issue_req *req, X509 *x,
                                     char *err, size_t errlen)
{
    GENERAL_NAMES *gens = NULL;
    int crit;
    enum ca_issue_rc rc = ca_san_names(p, req, &gens, &crit, err, errlen);

    if (rc == CA_ISSUE_OK && gens != NULL
        && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, crit,
                             X509V3_ADD_DEFAULT) != 1)
        rc = CA_ISSUE_ERROR;
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return rc;
}

/* Sets the subjectPublicKeyInfo of |x| by copying the fields of |spki|
 * (OpenSSL 3.0's X509_set_pubkey goes through the encoder and decoder and
 * costs more than the signature). Returns 1 or 0. */
static int ca_copy_spki(X509 *x, const X509_PUBKEY *spki)
{
    const ASN1_OBJECT *ppkalg, *aobj;
    const unsigned char *pk;
    X509_ALGOR *palg;
    const void *pval = NULL;
    ASN1_OBJECT *obj = NULL;
    void *val = NULL;
    unsigned char *enc = NULL;
    int pklen, ptype;

    if (!X509_PUBKEY_get0_param((ASN1_OBJECT **)&ppkalg, &pk, &pklen, &palg,
                                spki) || pklen <= 0)
        return 0;
    X509_ALGOR_get0(&aobj, &ptype, &pval, palg);
    if ((obj = OBJ_dup(aobj)) == NULL)
        goto err;
    switch (ptype) {
    case V_ASN1_UNDEF:
    case V_ASN1_NULL:
        break;
    case V_ASN1_OBJECT:
        if ((val = OBJ_dup(pval)) == NULL)
            goto err;
        break;
    case V_ASN1_SEQUENCE:
        if ((val = ASN1_STRING_dup(pval)) == NULL)
            goto err;
        break;
    default:
        goto err;
    }
    if ((enc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL
        || !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), obj, ptype, val,
                                   enc, pklen))
        goto err;
    return 1;
 err:
    ASN1_OBJECT_free(obj);
    if (ptype == V_ASN1_OBJECT)
        ASN1_OBJECT_free(val);
    else
        ASN1_STRING_free(val);
    OPENSSL_free(enc);
    return 0;
}

/* Adds a copy of |ext| when it is set. */
static int ca_add_ext(X509 *x, X509_EXTENSION *ext)
{
    return ext == NULL || X509_add_ext(x, ext, -1);
}

enum ca_issue_rc ca_issue_prepare(const CA *ca, const CA_PROFILE *p,
                                  const struct ca_issue_req *req, time_t *nb,
                                  time_t *na, char *err, size_t errlen)
{
    time_t now = req->now != 0 ? req->now : time(NULL);

    if (errlen > 0)
        err[0] = '\0';
    if (ca->signer == NULL || req->pubkey == NULL) {
        snprintf(err, errlen, "CA %s was loaded without its key", ca->name);
        return CA_ISSUE_ERROR;
    }
    if (!ca_profile_check_key(p, req->pubkey, err, errlen))
        return CA_ISSUE_BAD_KEY;
    if (now >= ca->not_after) {
        snprintf(err, errlen, "CA %s has expired", ca->name);
        return CA_ISSUE_EXPIRED;
    }
    *nb = now - p->backdate;
    *na = now + p->validity;
    if (*na > ca->not_after)
        *na = ca->not_after;
    return CA_ISSUE_OK;
}

enum ca_issue_rc ca_issue(const CA *ca, const CA_PROFILE *p,
                          const struct ca_issue_req *req, X509 **out,
                          char *err, size_t errlen)
{
    X509 *x = NULL;
    time_t nb, na;
    enum ca_issue_rc rc;

    *out = NULL;
    if ((rc = ca_issue_prepare(ca, p, req, &nb, &na, err, errlen))
        != CA_ISSUE_OK)
        return rc;
    rc = CA_ISSUE_ERROR;
    if ((x = X509_new()) == NULL
        || !X509_set_version(x, X509_VERSION_3)
        || !ca_serial_random(x)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca->cert))
        || X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL)
        goto end;
    if (!(req->spki != NULL ? ca_copy_spki(x, req->spki)
          : X509_set_pubkey(x, req->pubkey))) {
        snprintf(err, errlen, "cannot encode the requested public key");
        rc = CA_ISSUE_BAD_KEY;
        goto end;
    }
    if ((rc = ca_build_subject(p, req, x, err, errlen)) != CA_ISSUE_OK)
        goto end;
    rc = CA_ISSUE_ERROR;
    if (!ca_add_ext(x, p->bc) || !ca_add_ext(x, p->ku)
        || !ca_add_ext(x, p->eku) || !ca_add_ski(x)
        || !ca_add_ext(x, ca->aki) || !ca_add_ext(x, p->cdp)
        || !ca_add_ext(x, p->aia))
        goto end;
    if ((rc = ca_build_san(p, req, x, err, errlen)) != CA_ISSUE_OK)
        goto end;
    rc = CA_ISSUE_ERROR;
    if (!ca_signer_sign_x509(ca->signer, x)) {
        snprintf(err, errlen, "signing the certificate failed");
        goto end;
    }
    *out = x;
    x = NULL;
    rc = CA_ISSUE_OK;
 end:
    if (rc == CA_ISSUE_ERROR && err[0] == '\0')
        snprintf(err, errlen, "cannot build the certificate");
    X509_free(x);
    ERR_clear_error();
    return rc;
}

int ca_asn1_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

void ca_store_cert_clear(struct store_cert *rec)
{
    free(rec->subject);
    OPENSSL_free(rec->der);
    rec->subject = NULL;
    rec->der = NULL;
}

int ca_store_cert_fill(const CA *ca, X509 *cert, const char *profile,
                       int64_t device_id, struct store_cert *rec)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    BIO *bio = NULL;
    char *p;
    long n;
    int len, ok = 0;

    memset(rec, 0, sizeof(*rec));
    rec->ca_id = ca->id;
    rec->reason = -1;
    rec->status = STORE_CERT_VALID;
    rec->device_id = device_id;
    rec->profile = (char *)profile;
    len = ASN1_STRING_length(sn);
    if (len <= 0 || len > STORE_SERIAL_MAX
        || ASN1_STRING_type(sn) != V_ASN1_INTEGER)
        goto end;
    memcpy(rec->serial, ASN1_STRING_get0_data(sn), (size_t)len);
    rec->serial_len = (size_t)len;
    if (!ca_asn1_time_to_unix(X509_get0_notBefore(cert), &rec->not_before)
        || !ca_asn1_time_to_unix(X509_get0_notAfter(cert), &rec->not_after))
        goto end;
    if ((bio = BIO_new(BIO_s_mem())) == NULL
        || X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                              XN_FLAG_RFC2253) < 0)
        goto end;
    n = BIO_get_mem_data(bio, &p);
    if ((rec->subject = malloc((size_t)n + 1)) == NULL)
        goto end;
    memcpy(rec->subject, p, (size_t)n);
    rec->subject[n] = '\0';
    rec->der = NULL;
    len = i2d_X509(cert, &rec->der);
    if (len <= 0)
        goto end;
    rec->der_len = (size_t)len;
    ok = 1;
 end:
    BIO_free(bio);
    if (!ok)
        ca_store_cert_clear(rec);
    return ok;
}

enum ca_issue_rc ca_issue_store(const CA *ca, const CA_PROFILE *prof,
                                const struct ca_issue_req *req, STORE_TX *tx,
                                int64_t device_id, X509 **out,
                                int64_t *cert_id, char *err, size_t errlen)
{
    struct store_cert rec;
    enum ca_issue_rc rc;

    if (out == NULL) /* no X509 wanted: the cheaper path */
        return ca_issue_store_der(ca, prof, req, tx, device_id, NULL, cert_id,
                                  err, errlen);
    *out = NULL;
    /* the stored DER, decoded once (CLI callers want an X509) */
    rc = ca_issue_store_der(ca, prof, req, tx, device_id, &rec, cert_id, err,
                            errlen);
    if (rc != CA_ISSUE_OK)
        return rc;
    if ((*out = x509_der_get1(rec.der, rec.der_len)) == NULL) {
        snprintf(err, errlen, "cannot decode the issued certificate");
        rc = CA_ISSUE_ERROR;
    }
    ca_store_cert_clear(&rec);
    ERR_clear_error();
    return rc;
}

X509 *ca_make_ca_cert(const X509_NAME *subject, EVP_PKEY *pub, long days,
                      X509 *issuer, const CA_SIGNER *issuer_signer,
                      int pathlen, char *err, size_t errlen)
{
    X509 *x = NULL;
    X509_EXTENSION *ext = NULL;
    BASIC_CONSTRAINTS *bc = NULL;
    ASN1_BIT_STRING *ku = NULL;
    time_t now = time(NULL), nb = now - 60, na;
    int64_t ina;
    int ok = 0;

    if (errlen > 0)
        err[0] = '\0';
    if (days <= 0 || days > 36500) {
        snprintf(err, errlen, "validity must be 1..36500 days");
        return NULL;
    }
    na = now + (time_t)days * 86400;
    if (issuer != NULL && ca_asn1_time_to_unix(X509_get0_notAfter(issuer), &ina)
        && na > (time_t)ina)
        na = (time_t)ina;
    if ((x = X509_new()) == NULL
        || !X509_set_version(x, X509_VERSION_3)
        || !ca_serial_random(x)
        || !X509_set_subject_name(x, subject)
        || !X509_set_issuer_name(x, issuer != NULL
                                 ? X509_get_subject_name(issuer) : subject)
        || X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL
        || !X509_set_pubkey(x, pub))
        goto end;
    if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
        goto end;
    bc->ca = 0xff;
    if (pathlen >= 0 && ((bc->pathlen = ASN1_INTEGER_new()) == NULL
                         || !ASN1_INTEGER_set(bc->pathlen, pathlen)))
        goto end;
    if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
                          X509V3_ADD_DEFAULT) != 1)
        goto end;
    /* digitalSignature too: a CA that signs its own CMP messages is a CMP
     * signer, and clients (OpenSSL's among them) require that bit. */
    if ((ku = ASN1_BIT_STRING_new()) == NULL
        || !ASN1_BIT_STRING_set_bit(ku, 0, 1)   /* digitalSignature */
        || !ASN1_BIT_STRING_set_bit(ku, 5, 1)   /* keyCertSign */
        || !ASN1_BIT_STRING_set_bit(ku, 6, 1)   /* cRLSign */
        || X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) != 1)
        goto end;
    if (!ca_add_ski(x))
        goto end;
    if ((ext = ca_make_aki(issuer != NULL ? issuer : x)) == NULL
        || !X509_add_ext(x, ext, -1))
        goto end;
    if (!ca_signer_sign_x509(issuer_signer, x)) {
        snprintf(err, errlen, "signing the CA certificate failed");
        goto end;
    }
    /* re-decode: extension data cached before signing must not survive */
    {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        X509 *y = len > 0 ? x509_der_get1(der, (size_t)len) : NULL;

        OPENSSL_free(der);
        if (y == NULL)
            goto end;
        X509_free(x);
        x = y;
    }
    ok = 1;
 end:
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "cannot build the CA certificate");
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING_free(ku);
    X509_EXTENSION_free(ext);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    ERR_clear_error();
    return x;
}
