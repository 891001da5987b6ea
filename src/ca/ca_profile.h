/*
 * Certificate profiles ([profile NAME] sections): validity, extensions,
 * subject template with ${variables}, SAN rules and allowed key types.
 * Everything is parsed and the fixed extensions encoded once at load, so
 * issuing only fills in per-certificate values.
 */
#ifndef CMPCA_CA_PROFILE_H
#define CMPCA_CA_PROFILE_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct conf;
struct conf_section;

typedef struct ca_profile_st CA_PROFILE;

/*
 * Looks up a template variable ("vendor.serialNumber", "request.CN",
 * "device.id", "alias", ...). Returns its value, or NULL when it has none.
 * The string only needs to stay valid until the next call.
 */
typedef const char *(*ca_var_lookup_fn)(void *arg, const char *name);

/* Returns 1 if |name| is a variable a template may use: "alias",
 * "device.id", "device.identifier", "vendor.ATTR", "request.ATTR" (ATTR an
 * X.500 attribute name or OID such as CN, O, OU, C, serialNumber). */
int ca_profile_var_known(const char *name);

/*
 * Builds a profile from the [profile NAME] section |sec| of |conf|. Keys
 * (all optional): validity, backdate, key_usage, ext_key_usage,
 * basic_constraints, crl_url, ocsp_url, ca_issuers_url, subject,
 * allow_requested_subject, san, key_types. Every constant attribute of
 * the subject template is encoded here as issuance encodes it, so a value
 * its type refuses (C=DEU, an over-long CN...) fails now, not at the first
 * issuance. Returns 1 and sets *out, or 0 with "file:line: ..." in |err|
 * (unknown key, bad value, unknown variable or attribute; subject errors
 * also name the profile).
 */
int ca_profile_from_conf(const struct conf *conf,
                         const struct conf_section *sec, CA_PROFILE **out,
                         char *err, size_t errlen);
/* Looks up [profile |name|] in |conf| and builds it (as above). A missing
 * section is an error. */
int ca_profile_load(const struct conf *conf, const char *name,
                    CA_PROFILE **out, char *err, size_t errlen);
void ca_profile_free(CA_PROFILE *p);

/* Returns the profile's name. */
const char *ca_profile_get0_name(const CA_PROFILE *p);
/* Returns the validity in seconds. */
long ca_profile_get_validity(const CA_PROFILE *p);

/* Checks |pkey| against the allowed key_types. Returns 1 if allowed, else
 * 0 with a reason in |err|. */
int ca_profile_check_key(const CA_PROFILE *p, const EVP_PKEY *pkey,
                         char *err, size_t errlen);

/*
 * Parses a distinguished name: "/O=Operator/CN=x" (in order, as openssl
 * -subj) or "CN=x,O=Operator" (RFC 4514: most specific first, so encoded
 * O then CN). '\' escapes a separator. Attribute names as OpenSSL knows them
 * or dotted OIDs. Values may not contain ${...} here. Returns 1 and *out,
 * or 0 with |err|.
 */
int ca_name_parse(const char *s, X509_NAME **out, char *err, size_t errlen);

/*
 * Expands ${var} references in |tmpl| through |lookup| into |buf|.
 * Returns 1, or 0 with |err| (unknown/missing variable, too long).
 */
int ca_template_expand(const char *tmpl, ca_var_lookup_fn lookup, void *arg,
                       char *buf, size_t buflen, char *err, size_t errlen);

/*
 * A ready-made variable source for the CMP server: vendor.* from the vendor
 * certificate subject, request.* from the requested subject, device.id /
 * device.identifier and alias from the strings. Pass ca_vars_lookup as the
 * callback and a struct ca_vars as its argument (one per request).
 */
struct ca_vars {
    const X509_NAME *vendor;     /* may be NULL */
    const X509_NAME *request;    /* may be NULL */
    const char *device_id;       /* may be NULL */
    const char *alias;           /* may be NULL */
    char buf[1024];              /* private scratch */
};
const char *ca_vars_lookup(void *arg, const char *name);

/* --- certificate request templates (ca_profile_tmpl.c) ------------- */

/* The subject template as a name (RFC 9483 4.3.3): constant attributes
 * with their values, attributes made from ${variables} with an empty value
 * for the client to fill in; an empty name when the profile has no
 * template. NULL on allocation failure. */
X509_NAME *ca_profile_template_subject(const CA_PROFILE *p);
/* Copies of the profile's fixed extensions (basicConstraints, keyUsage,
 * extendedKeyUsage, CRL distribution points, AIA), in issuance order. */
STACK_OF(X509_EXTENSION) *ca_profile_template_exts(const CA_PROFILE *p);
/* Returns 1 if the subject comes from the request (no template, or
 * allow_requested_subject). */
int ca_profile_subject_requested(const CA_PROFILE *p);
/* Number of allowed key types (0 = any) and the |i|-th: EVP_PKEY id, EC
 * group short name ("" = any), RSA bit range. Returns 1 or 0. */
size_t ca_profile_key_count(const CA_PROFILE *p);
int ca_profile_key_get(const CA_PROFILE *p, size_t i, int *id,
                       const char **group, int *min_bits, int *max_bits);

#endif
