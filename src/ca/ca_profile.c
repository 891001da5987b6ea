/*
 * [profile NAME] sections: parsing, subject/SAN templates with ${variables},
 * key type rules, and the fixed extensions encoded once at load.
 */
#include "ca/ca_int.h"
#include "ca/ca_key.h"
#include "ca/ca_tbs.h"
#include "conf/conf.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/conf.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CA_TMPL_MAX 1024

/* ------------------------------------------------------------------ */
/* Variables                                                           */

int ca_profile_var_known(const char *name)
{
    const char *attr = NULL;

    if (strcmp(name, "alias") == 0 || strcmp(name, "device.id") == 0
        || strcmp(name, "device.identifier") == 0)
        return 1;
    if (strncmp(name, "vendor.", 7) == 0)
        attr = name + 7;
    else if (strncmp(name, "request.", 8) == 0)
        attr = name + 8;
    return attr != NULL && *attr != '\0' && OBJ_txt2nid(attr) != NID_undef;
}

/* Copies the first |attr| value of |n| (UTF-8) into |buf|; NULL if absent. */
static const char *ca_name_value(const X509_NAME *n, const char *attr,
                                 char *buf, size_t buflen)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int nid = OBJ_txt2nid(attr), idx, len;

    if (n == NULL || nid == NID_undef)
        return NULL;
    idx = X509_NAME_get_index_by_NID(n, nid, -1);
    if (idx < 0 || (e = X509_NAME_get_entry(n, idx)) == NULL)
        return NULL;
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len < 0 || (size_t)len >= buflen || memchr(utf8, 0, (size_t)len)) {
        OPENSSL_free(utf8);
        return NULL;
    }
    memcpy(buf, utf8, (size_t)len);
    buf[len] = '\0';
    OPENSSL_free(utf8);
    return buf;
}

const char *ca_vars_lookup(void *arg, const char *name)
{
    struct ca_vars *v = arg;

    if (strcmp(name, "alias") == 0)
        return v->alias;
    if (strcmp(name, "device.id") == 0 || strcmp(name, "device.identifier") == 0)
        return v->device_id;
    if (strncmp(name, "vendor.", 7) == 0)
        return ca_name_value(v->vendor, name + 7, v->buf, sizeof(v->buf));
    if (strncmp(name, "request.", 8) == 0)
        return ca_name_value(v->request, name + 8, v->buf, sizeof(v->buf));
    return NULL;
}

/* Checks every ${var} of |tmpl| is known and well-formed. */
static int ca_template_check(const char *tmpl, char *err, size_t errlen)
{
    const char *p = tmpl, *end;
    char name[128];

    while ((p = strstr(p, "${")) != NULL) {
        end = strchr(p + 2, '}');
        if (end == NULL) {
            snprintf(err, errlen, "unterminated ${ in '%s'", tmpl);
            return 0;
        }
        if ((size_t)(end - p - 2) >= sizeof(name) || end == p + 2) {
            snprintf(err, errlen, "bad variable name in '%s'", tmpl);
            return 0;
        }
        memcpy(name, p + 2, (size_t)(end - p - 2));
        name[end - p - 2] = '\0';
        if (!ca_profile_var_known(name)) {
            snprintf(err, errlen, "unknown variable ${%s}", name);
            return 0;
        }
        p = end + 1;
    }
    return 1;
}

int ca_template_expand(const char *tmpl, ca_var_lookup_fn lookup, void *arg,
                       char *buf, size_t buflen, char *err, size_t errlen)
{
    const char *p = tmpl, *end, *val;
    char name[128];
    size_t o = 0, n;

    while (*p != '\0') {
        if (p[0] == '$' && p[1] == '{') {
            end = strchr(p + 2, '}');
            if (end == NULL || (size_t)(end - p - 2) >= sizeof(name)) {
                snprintf(err, errlen, "bad variable in '%s'", tmpl);
                return 0;
            }
            memcpy(name, p + 2, (size_t)(end - p - 2));
            name[end - p - 2] = '\0';
            val = lookup != NULL ? lookup(arg, name) : NULL;
            if (val == NULL || *val == '\0') {
                snprintf(err, errlen, "variable ${%s} has no value", name);
                return 0;
            }
            n = strlen(val);
            if (o + n >= buflen)
                goto toolong;
            memcpy(buf + o, val, n);
            o += n;
            p = end + 1;
            continue;
        }
        if (o + 1 >= buflen)
            goto toolong;
        buf[o++] = *p++;
    }
    buf[o] = '\0';
    return 1;
 toolong:
    snprintf(err, errlen, "expanded value of '%s' is too long", tmpl);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Distinguished names                                                 */

void ca_rdn_free(struct ca_rdn_tmpl *v, size_t n)
{
    size_t i;

    for (i = 0; v != NULL && i < n; i++)
        free(v[i].value);
    free(v);
}


/* Attribute types a distinguished name may hold here: the naming
 * attributes of X.520, RFC 5280 4.1.2.4 and RFC 4519 (an OID such as
 * keyUsage parses too, but has no place in a name). */
static int ca_name_attr_ok(int nid)
{
    static const int ok[] = {
        NID_countryName, NID_stateOrProvinceName, NID_localityName,
        NID_organizationName, NID_organizationalUnitName, NID_commonName,
        NID_serialNumber, NID_title, NID_surname, NID_givenName,
        NID_initials, NID_pseudonym, NID_generationQualifier,
        NID_dnQualifier, NID_domainComponent, NID_pkcs9_emailAddress,
        NID_userId, NID_streetAddress, NID_postalCode, NID_postOfficeBox,
        NID_businessCategory, NID_organizationIdentifier, NID_name,
        NID_description, NID_jurisdictionCountryName,
        NID_jurisdictionStateOrProvinceName, NID_jurisdictionLocalityName
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (ok[i] == nid)
            return 1;
    return 0;
}
/* Trims spaces at both ends in place. */
static char *ca_trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int ca_rdn_parse(const char *s, int allow_vars, struct ca_rdn_tmpl **out,
                 size_t *n, char *err, size_t errlen)
{
    struct ca_rdn_tmpl *v = NULL;
    size_t nv = 0, cap = 0, i, j;
    char *copy = NULL, *tok, *w, *eq, *attr, *val;
    char sep;
    int slash, ok = 0;

    *out = NULL;
    *n = 0;
    if (s == NULL || strlen(s) > CA_TMPL_MAX) {
        snprintf(err, errlen, "distinguished name missing or too long");
        return 0;
    }
    while (isspace((unsigned char)*s))
        s++;
    slash = *s == '/';
    sep = slash ? '/' : ',';
    if ((copy = strdup(slash ? s + 1 : s)) == NULL)
        goto end;
    tok = copy;
    while (tok != NULL && *tok != '\0') {
        /* find the unescaped separator, unescaping as we go */
        for (w = tok, i = 0; tok[i] != '\0' && tok[i] != sep; i++) {
            if (tok[i] == '\\' && tok[i + 1] != '\0')
                i++;
            *w++ = tok[i];
        }
        val = tok[i] == sep ? tok + i + 1 : NULL;
        *w = '\0';
        attr = ca_trim(tok);
        if (*attr == '\0') {
            tok = val;
            continue;
        }
        eq = strchr(attr, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "'%s' is not ATTR=VALUE", attr);
            goto end;
        }
        *eq = '\0';
        if (*ca_trim(attr) == '\0') {
            snprintf(err, errlen, "empty attribute type before '=%s'",
                     ca_trim(eq + 1));
            goto end;
        }
        if (nv == cap) {
            struct ca_rdn_tmpl *nvv;

            cap = cap == 0 ? 4 : cap * 2;
            if ((nvv = realloc(v, cap * sizeof(*v))) == NULL)
                goto end;
            v = nvv;
        }
        v[nv].nid = OBJ_txt2nid(ca_trim(attr));
        if (v[nv].nid == NID_undef) {
            snprintf(err, errlen, "unknown attribute '%s'", ca_trim(attr));
            goto end;
        }
        if (!ca_name_attr_ok(v[nv].nid)) {
            snprintf(err, errlen, "'%s' is not a name attribute (C, ST, L, "
                     "O, OU, CN, serialNumber, DC, UID, emailAddress, ...)",
                     ca_trim(attr));
            goto end;
        }
        eq = ca_trim(eq + 1);
        if (*eq == '\0') {
            snprintf(err, errlen, "empty value for '%s'", ca_trim(attr));
            goto end;
        }
        if (!allow_vars && strstr(eq, "${") != NULL) {
            snprintf(err, errlen, "variables are not allowed here");
            goto end;
        }
        if (allow_vars && !ca_template_check(eq, err, errlen))
            goto end;
        if ((v[nv].value = strdup(eq)) == NULL)
            goto end;
        nv++;
        tok = val;
    }
    if (nv == 0) {
        snprintf(err, errlen, "empty distinguished name");
        goto end;
    }
    if (!slash) { /* RFC 4514 lists the most specific attribute first */
        for (i = 0, j = nv - 1; i < j; i++, j--) {
            struct ca_rdn_tmpl t = v[i];

            v[i] = v[j];
            v[j] = t;
        }
    }
    *out = v;
    *n = nv;
    v = NULL;
    ok = 1;
 end:
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    ca_rdn_free(v, nv);
    free(copy);
    return ok;
}

int ca_name_parse(const char *s, X509_NAME **out, char *err, size_t errlen)
{
    struct ca_rdn_tmpl *v = NULL;
    X509_NAME *name = NULL;
    size_t n = 0, i;
    int ok = 0;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (!ca_rdn_parse(s, 0, &v, &n, err, errlen))
        return 0;
    if ((name = X509_NAME_new()) == NULL)
        goto end;
    for (i = 0; i < n; i++) {
        if (!X509_NAME_add_entry_by_NID(name, v[i].nid, MBSTRING_UTF8,
                                        (unsigned char *)v[i].value, -1, -1,
                                        0)) {
            snprintf(err, errlen, "bad value '%s' for %s", v[i].value,
                     OBJ_nid2sn(v[i].nid));
            goto end;
        }
    }
    *out = name;
    name = NULL;
    ok = 1;
 end:
    X509_NAME_free(name);
    ca_rdn_free(v, n);
    ERR_clear_error();
    return ok;
}

/* ------------------------------------------------------------------ */
/* Profiles                                                            */

/* Encodes each constant attribute of the subject template with
 * ca_tbs_rdn(), the encoder of ca_issue_der() (ca_issue() makes the same
 * X509_NAME_ENTRY_create_by_NID(MBSTRING_UTF8) entry), so that a value its
 * type refuses (C not two letters, too long, not printable, not UTF-8...)
 * fails at load rather than at the first issuance. Attributes holding a
 * ${variable} can only be checked once expanded. Returns 1, or 0 with the
 * reason in |bad|. */
static int ca_subject_check(const CA_PROFILE *p, char *bad, size_t badlen)
{
    const struct ca_rdn_tmpl *a;
    const char *data = NULL, *v;
    char why[160] = "", shown[4 * 40 + 4];
    size_t k;
    unsigned long e;
    size_t i;
    int flags = 0;

    for (i = 0; i < p->nsubj; i++) {
        a = &p->subj[i];
        if (strstr(a->value, "${") != NULL)
            continue;
        ERR_clear_error();
        if (ca_tbs_rdn(a->nid, a->value, NULL, NULL) > 0)
            continue;
        /* OpenSSL says why: "string too long" with "maxsize=2", ... */
        e = ERR_peek_last_error_data(&data, &flags);
        if ((flags & ERR_TXT_STRING) == 0 || data == NULL)
            data = "";
        if (e != 0 && ERR_reason_error_string(e) != NULL)
            snprintf(why, sizeof(why), " (%s%s%s)", ERR_reason_error_string(e),
                     *data != '\0' ? ": " : "", data);
        ERR_clear_error();
        /* shown printable: bytes outside ASCII as \xNN */
        for (v = a->value, k = 0; *v != '\0' && v - a->value < 40; v++) {
            unsigned char c = (unsigned char)*v;

            if (c >= 0x20 && c < 0x7f)
                shown[k++] = (char)c;
            else
                k += (size_t)snprintf(shown + k, sizeof(shown) - k, "\\x%02x",
                                      c);
        }
        shown[k] = '\0';
        /* a long reason may be cut to |badlen| */
        if (snprintf(bad, badlen, "value '%s%s' not valid for %s%s", shown,
                     *v != '\0' ? "..." : "", OBJ_nid2sn(a->nid), why) < 0
            && badlen > 0)
            bad[0] = '\0';
        return 0;
    }
    return 1;
}

void ca_profile_free(CA_PROFILE *p)
{
    size_t i;

    if (p == NULL)
        return;
    free(p->name);
    X509_EXTENSION_free(p->bc);
    X509_EXTENSION_free(p->ku);
    X509_EXTENSION_free(p->eku);
    X509_EXTENSION_free(p->cdp);
    X509_EXTENSION_free(p->aia);
    ca_rdn_free(p->subj, p->nsubj);
    for (i = 0; i < p->nsan; i++)
        free(p->san[i].value);
    free(p->san);
    free(p->keys);
    ca_tbs_prof_free(p->tbs);
    free(p);
}

const char *ca_profile_get0_name(const CA_PROFILE *p)
{
    return p->name;
}

long ca_profile_get_validity(const CA_PROFILE *p)
{
    return p->validity;
}

/* Line of |key| in |sec| (the header line when absent). */
static int ca_conf_line(const struct conf_section *sec, const char *key)
{
    size_t i;

    for (i = 0; i < sec->nkv; i++)
        if (strcmp(sec->kv[i].key, key) == 0)
            return sec->kv[i].line;
    return sec->line;
}

/* Encodes an extension from an OpenSSL config-style value. The context
 * carries an empty configuration database: a value naming a section
 * ("@sec", or a bare word where a GeneralName is expected) then fails
 * cleanly instead of dereferencing a missing database (found by fuzzing). */
static int ca_ext_make(const struct conf *conf, const struct conf_section *sec,
                       const char *key, int nid, const char *value,
                       X509_EXTENSION **out, char *err, size_t errlen)
{
    X509V3_CTX ctx;
    CONF *empty = NCONF_new(NULL);

    *out = NULL;
    if (empty != NULL) {
        X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, 0);
        X509V3_set_nconf(&ctx, empty);
        *out = X509V3_EXT_nconf_nid(empty, &ctx, nid, value);
    }
    NCONF_free(empty);
    ERR_clear_error();
    if (*out == NULL)
        return conf_err(conf, ca_conf_line(sec, key), err, errlen,
                        "%s: cannot use '%s'", key, value);
    return 1;
}

/* Checks a comma list of keyUsage names. */
static int ca_ku_check(const char *v, char *bad, size_t badlen)
{
    static const char *const names[] = {
        "digitalSignature", "nonRepudiation", "contentCommitment",
        "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign",
        "cRLSign", "encipherOnly", "decipherOnly", "critical", NULL
    };
    char buf[512], *tok, *save = NULL;
    size_t i;

    if (strlen(v) >= sizeof(buf))
        return 0;
    strcpy(buf, v);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        tok = ca_trim(tok);
        for (i = 0; names[i] != NULL; i++)
            if (strcmp(tok, names[i]) == 0)
                break;
        if (names[i] == NULL) {
            snprintf(bad, badlen, "%s", tok);
            return 0;
        }
    }
    return 1;
}

/* Parses key_types ("ec:P-256,rsa:2048-4096,ed25519"). */
static int ca_keys_parse(const char *v, struct ca_keyspec **out, size_t *n,
                         char *bad, size_t badlen)
{
    struct ca_keyspec *ks = NULL, *k;
    char buf[512], *tok, *save = NULL, *dash, *end;
    size_t nk = 0;

    *out = NULL;
    *n = 0;
    if (strlen(v) >= sizeof(buf) || (ks = calloc(32, sizeof(*ks))) == NULL) {
        snprintf(bad, badlen, "%s", v);
        free(ks);
        return 0;
    }
    strcpy(buf, v);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        tok = ca_trim(tok);
        if (nk == 32)
            goto bad;
        k = &ks[nk];
        if (strcasecmp(tok, "ed25519") == 0) {
            k->id = EVP_PKEY_ED25519;
        } else if (strcasecmp(tok, "ed448") == 0) {
            k->id = EVP_PKEY_ED448;
        } else if (strcasecmp(tok, "ec") == 0) {
            k->id = EVP_PKEY_EC;
        } else if (strcasecmp(tok, "ec:P-256") == 0) {
            k->id = EVP_PKEY_EC;
            strcpy(k->group, "prime256v1");
        } else if (strcasecmp(tok, "ec:P-384") == 0) {
            k->id = EVP_PKEY_EC;
            strcpy(k->group, "secp384r1");
        } else if (strcasecmp(tok, "ec:P-521") == 0) {
            k->id = EVP_PKEY_EC;
            strcpy(k->group, "secp521r1");
        } else if (strcasecmp(tok, "rsa") == 0) {
            k->id = EVP_PKEY_RSA;
            k->min_bits = 2048;
            k->max_bits = 16384;
        } else if (strncasecmp(tok, "rsa:", 4) == 0) {
            k->id = EVP_PKEY_RSA;
            k->min_bits = (int)strtol(tok + 4, &end, 10);
            if (end == tok + 4)
                goto bad;
            dash = end;
            if (*dash == '-') {
                k->max_bits = (int)strtol(dash + 1, &end, 10);
                if (end == dash + 1)
                    goto bad;
            } else {
                k->max_bits = k->min_bits;
            }
            if (*end != '\0' || k->min_bits < 1024 || k->max_bits < k->min_bits
                || k->max_bits > 16384)
                goto bad;
        } else {
            goto bad;
        }
        nk++;
    }
    if (nk == 0)
        goto bad;
    *out = ks;
    *n = nk;
    return 1;
 bad:
    snprintf(bad, badlen, "%s", tok != NULL ? tok : v);
    free(ks);
    return 0;
}

int ca_profile_check_key(const CA_PROFILE *p, const EVP_PKEY *pkey,
                         char *err, size_t errlen)
{
    char group[64] = "", desc[64] = "?";
    size_t i, glen;
    int id = EVP_PKEY_get_base_id(pkey), bits = EVP_PKEY_get_bits(pkey);

    if (id == EVP_PKEY_EC
        && !EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen))
        group[0] = '\0';
    for (i = 0; i < p->nkeys; i++) {
        const struct ca_keyspec *k = &p->keys[i];

        if (k->id != id)
            continue;
        if (id == EVP_PKEY_EC && k->group[0] != '\0'
            && strcmp(k->group, group) != 0)
            continue;
        if (id == EVP_PKEY_RSA && (bits < k->min_bits || bits > k->max_bits))
            continue;
        return 1;
    }
    ca_key_describe(pkey, desc, sizeof(desc));
    snprintf(err, errlen, "key type %s is not allowed by profile %s", desc,
             p->name);
    return 0;
}

/* Parses the san rule list ("none", "copy" or "DNS:${..},URI:..."). */
static int ca_san_parse(CA_PROFILE *p, const char *v, char *bad, size_t badlen)
{
    char buf[CA_TMPL_MAX + 1], *tok, *save = NULL, *colon;
    struct ca_san_tmpl *s;

    if (strcasecmp(v, "none") == 0) {
        p->san_mode = CA_SAN_NONE;
        return 1;
    }
    if (strcasecmp(v, "copy") == 0) {
        p->san_mode = CA_SAN_COPY;
        return 1;
    }
    if (strlen(v) >= sizeof(buf) || (p->san = calloc(16, sizeof(*s))) == NULL)
        goto bad;
    p->san_mode = CA_SAN_TEMPLATE;
    strcpy(buf, v);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        tok = ca_trim(tok);
        if (p->nsan == 16 || (colon = strchr(tok, ':')) == NULL)
            goto bad;
        *colon = '\0';
        s = &p->san[p->nsan];
        if (strcasecmp(tok, "DNS") == 0)
            s->type = GEN_DNS;
        else if (strcasecmp(tok, "URI") == 0)
            s->type = GEN_URI;
        else if (strcasecmp(tok, "email") == 0)
            s->type = GEN_EMAIL;
        else if (strcasecmp(tok, "IP") == 0)
            s->type = GEN_IPADD;
        else
            goto bad;
        if (colon[1] == '\0' || !ca_template_check(colon + 1, bad, badlen)
            || (s->value = strdup(colon + 1)) == NULL)
            return 0;
        p->nsan++;
    }
    if (p->nsan == 0)
        goto bad;
    return 1;
 bad:
    snprintf(bad, badlen, "bad san rule in '%s' (use none, copy or "
             "DNS:/URI:/email:/IP: values)", v);
    return 0;
}

int ca_profile_from_conf(const struct conf *conf,
                         const struct conf_section *sec, CA_PROFILE **out,
                         char *err, size_t errlen)
{
    CA_PROFILE *p = NULL;
    const char *v;
    char val[CA_TMPL_MAX + 64], bad[256];
    int ok = 0, allow;

    *out = NULL;
    bad[0] = '\0';
    if ((p = calloc(1, sizeof(*p))) == NULL
        || (p->name = strdup(sec->name)) == NULL)
        goto oom;
    if (!conf_get_duration(conf, sec, "validity", 365L * 86400, 60,
                           100L * 365 * 86400, &p->validity, err, errlen)
        || !conf_get_duration(conf, sec, "backdate", 60, 0, 86400,
                              &p->backdate, err, errlen))
        goto end;

    v = conf_get(sec, "key_usage");
    if (v == NULL)
        v = "digitalSignature";
    if (strcasecmp(v, "none") != 0) {
        if (!ca_ku_check(v, bad, sizeof(bad))) {
            conf_err(conf, ca_conf_line(sec, "key_usage"), err, errlen,
                     "key_usage: unknown usage '%s'", bad);
            goto end;
        }
        snprintf(val, sizeof(val), "%s%s",
                 strstr(v, "critical") != NULL ? "" : "critical,", v);
        if (!ca_ext_make(conf, sec, "key_usage", NID_key_usage, val, &p->ku,
                         err, errlen))
            goto end;
    }
    v = conf_get(sec, "ext_key_usage");
    if (v != NULL && strcasecmp(v, "none") != 0
        && !ca_ext_make(conf, sec, "ext_key_usage", NID_ext_key_usage, v,
                        &p->eku, err, errlen))
        goto end;
    v = conf_get(sec, "basic_constraints");
    if (v == NULL)
        v = "CA:FALSE";
    if (strcasecmp(v, "none") != 0) {
        snprintf(val, sizeof(val), "%s%s",
                 strstr(v, "critical") != NULL ? "" : "critical,", v);
        if (!ca_ext_make(conf, sec, "basic_constraints",
                         NID_basic_constraints, val, &p->bc, err, errlen))
            goto end;
    }
    v = conf_get(sec, "crl_url");
    if (v != NULL) {
        if (strlen(v) > 512)
            goto toolong;
        snprintf(val, sizeof(val), "URI:%s", v);
        if (!ca_ext_make(conf, sec, "crl_url", NID_crl_distribution_points,
                         val, &p->cdp, err, errlen))
            goto end;
    }
    {
        const char *ocsp = conf_get(sec, "ocsp_url");
        const char *cai = conf_get(sec, "ca_issuers_url");

        if (ocsp != NULL || cai != NULL) {
            if ((ocsp != NULL && strlen(ocsp) > 512)
                || (cai != NULL && strlen(cai) > 512))
                goto toolong;
            snprintf(val, sizeof(val), "%s%s%s%s%s",
                     ocsp != NULL ? "OCSP;URI:" : "", ocsp != NULL ? ocsp : "",
                     ocsp != NULL && cai != NULL ? "," : "",
                     cai != NULL ? "caIssuers;URI:" : "", cai != NULL ? cai : "");
            if (!ca_ext_make(conf, sec, ocsp != NULL ? "ocsp_url"
                             : "ca_issuers_url", NID_info_access, val, &p->aia,
                             err, errlen))
                goto end;
        }
    }
    v = conf_get(sec, "subject");
    if (v != NULL) {
        bad[0] = '\0';
        if (!ca_rdn_parse(v, 1, &p->subj, &p->nsubj, bad, sizeof(bad))
            || !ca_subject_check(p, bad, sizeof(bad))) {
            conf_err(conf, ca_conf_line(sec, "subject"), err, errlen,
                     "subject: %s in [profile %s]", bad, p->name);
            goto end;
        }
    }
    if (!conf_get_bool(conf, sec, "allow_requested_subject", p->nsubj == 0,
                       &allow, err, errlen))
        goto end;
    p->allow_requested_subject = allow;
    v = conf_get(sec, "san");
    if (v != NULL && !ca_san_parse(p, v, bad, sizeof(bad))) {
        conf_err(conf, ca_conf_line(sec, "san"), err, errlen, "san: %s", bad);
        goto end;
    }
    v = conf_get(sec, "key_types");
    if (v == NULL)
        v = "ec:P-256,ec:P-384,ec:P-521,rsa:2048-4096,ed25519,ed448";
    if (!ca_keys_parse(v, &p->keys, &p->nkeys, bad, sizeof(bad))) {
        conf_err(conf, ca_conf_line(sec, "key_types"), err, errlen,
                 "key_types: bad key type '%s'", bad);
        goto end;
    }
    if (!conf_check_used(conf, sec, err, errlen))
        goto end;
    if (!ca_tbs_prof_new(p, &p->tbs))
        goto oom;
    *out = p;
    p = NULL;
    ok = 1;
    goto end;
 toolong:
    conf_err(conf, sec->line, err, errlen, "URL too long");
    goto end;
 oom:
    snprintf(err, errlen, "out of memory");
 end:
    ca_profile_free(p);
    return ok;
}

int ca_profile_load(const struct conf *conf, const char *name,
                    CA_PROFILE **out, char *err, size_t errlen)
{
    const struct conf_section *sec = conf_find(conf, "profile", name);

    *out = NULL;
    if (sec == NULL) {
        snprintf(err, errlen, "%s: no [profile %s] section", conf->path, name);
        return 0;
    }
    return ca_profile_from_conf(conf, sec, out, err, errlen);
}
