/*
 * Internals shared by the ca_*.c files: the profile and CA structures.
 * Nothing outside src/ca/ includes this.
 */
#ifndef CMPCA_CA_INT_H
#define CMPCA_CA_INT_H

#include "ca/ca.h"
#include "ca/ca_profile.h"
#include "ca/ca_signer.h"

#include <stdint.h>
#include <openssl/x509v3.h>

/* One attribute of the subject template (in DER order). */
struct ca_rdn_tmpl {
    int nid;
    char *value;        /* may hold ${var} */
};

/* One SAN rule: GEN_DNS / GEN_URI / GEN_EMAIL / GEN_IPADD + template. */
struct ca_san_tmpl {
    int type;
    char *value;
};

enum ca_san_mode { CA_SAN_NONE = 0, CA_SAN_COPY, CA_SAN_TEMPLATE };

/* One allowed key type: EVP_PKEY base id, EC group (or NULL for any),
 * RSA bit range. */
struct ca_keyspec {
    int id;
    char group[32];
    int min_bits, max_bits;
};

struct ca_tbs_prof;

struct ca_profile_st {
    char *name;
    long validity;                  /* seconds */
    long backdate;                  /* seconds */
    X509_EXTENSION *bc, *ku, *eku, *cdp, *aia; /* NULL when absent */
    struct ca_rdn_tmpl *subj;
    size_t nsubj;
    int allow_requested_subject;
    int san_mode;
    struct ca_san_tmpl *san;
    size_t nsan;
    struct ca_keyspec *keys;
    size_t nkeys;
    struct ca_tbs_prof *tbs;        /* parts encoded once for ca_issue_der()
                                     * (ca_tbs.c) */
};

struct ca_st {
    int64_t id;
    char *name;
    X509 *cert;
    STACK_OF(X509) *chain;          /* cert, intermediates..., root */
    X509 *root;                     /* last of chain (borrowed) */
    CA_SIGNER *signer;              /* NULL if loaded without the key */
    X509 *cmp_cert;                 /* CMP signer cert (cert if none) */
    CA_SIGNER *cmp_signer;          /* NULL if loaded without the key */
    STACK_OF(X509) *cmp_chain;      /* cmp_cert then chain (extraCerts) */
    X509_EXTENSION *aki;            /* AKI for certificates it issues */
    time_t not_after;               /* CA certificate's notAfter */
    long crl_validity;              /* seconds */
    char *key_ref, *signer_key_ref;
    X509 *ocsp_cert;                /* delegated OCSP signer (or NULL) */
    CA_SIGNER *ocsp_signer;
};

/* Parses a parsed subject template string into attributes (DER order). */
int ca_rdn_parse(const char *s, int allow_vars, struct ca_rdn_tmpl **out,
                 size_t *n, char *err, size_t errlen);
void ca_rdn_free(struct ca_rdn_tmpl *v, size_t n);

/* Converts an ASN1_TIME to unix seconds. Returns 1 or 0. */
int ca_asn1_time_to_unix(const ASN1_TIME *t, int64_t *out);

/* Builds the AKI extension (keyid = SKI of |issuer|, or a hash of its key).
 * Returns NULL on error. */
X509_EXTENSION *ca_make_aki(X509 *issuer);

#endif
