/*
 * Aliases: parsing an [alias NAME] section, loading its CA, profile and
 * trust anchors once at start, and reloading the vendor anchors from the
 * store while the server runs.
 */
#include "server/srv_int.h"
#include "server/srv_genm.h"

#include "cmp/cmp_build.h"
#include "conf/conf.h"
#include "util/log.h"
#include "util/x509_der.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct srv_mode *srv_mode_find(const char *name)
{
    static const struct srv_mode *const modes[] = {
        &srv_mode_3gpp, &srv_mode_ra, &srv_mode_cert, &srv_mode_mac,
        &srv_mode_upstream,
    };
    size_t i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(modes[i]->name, name) == 0)
            return modes[i];
    return NULL;
}

struct srv_alias *srv_alias_find(const SERVER *srv, const char *name)
{
    size_t i;

    if (name == NULL)
        name = srv->default_alias;
    if (name == NULL)
        return NULL;
    for (i = 0; i < srv->naliases; i++)
        if (strcmp(srv->aliases[i].name, name) == 0)
            return &srv->aliases[i];
    return NULL;
}

static int srv_split_list(const char *s, char ***out, size_t *n);

/* Adds |x| (a reference is taken) with store id |ca_id| (0 = not one of
 * ours) to the trust set |t|. */
static int srv_trust_add(struct srv_trust *t, X509 *x, int64_t ca_id)
{
    int64_t *grown;
    int n = sk_X509_num(*t->certs);

    if ((grown = realloc(*t->ids, (size_t)(n + 1) * sizeof(*grown))) == NULL)
        return 0;
    *t->ids = grown;
    if (!X509_STORE_add_cert(*t->store, x)
        || !X509_add_cert(*t->certs, x, X509_ADD_FLAG_UP_REF))
        return 0;
    (*t->ids)[n] = ca_id;
    return 1;
}

int srv_trust_load(struct srv_alias *a, const struct conf *conf,
                   const struct conf_section *sec, STORE *store,
                   const char *names_key, const char *file_key,
                   struct srv_trust *t, char *err, size_t errlen)
{
    const char *names = conf_get(sec, names_key);
    const char *file = conf_get(sec, file_key);
    char **v = NULL;
    size_t n = 0, i;
    STORE_TX *tx = NULL;
    struct store_ca *rec = NULL;
    STACK_OF(X509_INFO) *infos = NULL;
    BIO *bio = NULL;
    X509 *x;
    int ok = 0;

    if ((*t->store = X509_STORE_new()) == NULL
        || (*t->certs = sk_X509_new_null()) == NULL)
        goto end;
    /* a certificate issued by an intermediate is trusted as such */
    X509_STORE_set_flags(*t->store, X509_V_FLAG_PARTIAL_CHAIN);
    if (names == NULL && file == NULL) {
        ok = srv_trust_add(t, ca_get0_cert(a->ca), ca_get_id(a->ca));
        goto end;
    }
    if (names != NULL && !srv_split_list(names, &v, &n))
        goto end;
    if (n > 0 && store_begin_read(store, &tx) != STORE_OK) {
        snprintf(err, errlen, "[alias %s]: store unavailable", a->name);
        goto end;
    }
    for (i = 0; i < n; i++) {
        const unsigned char *p;

        if (store_ca_get_by_name(tx, v[i], &rec) != STORE_OK) {
            conf_err(conf, sec->line, err, errlen,
                     "[alias %s]: %s: no CA '%s' in the store", a->name,
                     names_key, v[i]);
            goto end;
        }
        p = rec->cert_der;
        x = d2i_X509(NULL, &p, (long)rec->cert_len);
        ok = x != NULL && srv_trust_add(t, x, rec->id);
        X509_free(x);
        store_ca_free(rec);
        rec = NULL;
        if (!ok)
            goto end;
        ok = 0;
    }
    if (file != NULL) {
        if ((bio = BIO_new_file(file, "r")) == NULL
            || (infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL)) == NULL
            || sk_X509_INFO_num(infos) == 0) {
            conf_err(conf, sec->line, err, errlen,
                     "[alias %s]: %s %s: no certificates", a->name, file_key,
                     file);
            goto end;
        }
        for (i = 0; i < (size_t)sk_X509_INFO_num(infos); i++)
            if ((x = sk_X509_INFO_value(infos, (int)i)->x509) != NULL
                && !srv_trust_add(t, x, 0))
                goto end;
    }
    ok = 1;
 end:
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
    store_rollback(tx);
    store_ca_free(rec);
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    ERR_clear_error();
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "[alias %s]: cannot load the %s", a->name,
                 names_key);
    return ok;
}

/* ra mode: the CAs trusted for RA certificates: `ra_trust` names CAs in
 * the store (default: the alias CA), `ra_trust_file` adds a PEM file of
 * further CA certificates (an RA hierarchy outside cmpca). */
static int srv_ra_trust_load(struct srv_alias *a, const struct conf *conf,
                             const struct conf_section *sec, STORE *store,
                             char *err, size_t errlen)
{
    struct srv_trust t = { &a->ra_store, &a->ra_trust, &a->ra_trust_ids };

    return srv_trust_load(a, conf, sec, store, "ra_trust", "ra_trust_file",
                          &t, err, errlen);
}

/* A directoryName GeneralName holding a copy of |name| (NULL: the empty
 * DN), encoded once so that later encodings only read it (it is shared by
 * the handler threads). Returns 1 or 0. */
static int srv_dirname_new(const X509_NAME *name, GENERAL_NAME **out)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    X509_NAME *n = name != NULL ? X509_NAME_dup(name) : X509_NAME_new();

    *out = NULL;
    if (gn == NULL || n == NULL) {
        GENERAL_NAME_free(gn);
        X509_NAME_free(n);
        return 0;
    }
    GENERAL_NAME_set0_value(gn, GEN_DIRNAME, n);
    if (i2d_GENERAL_NAME(gn, NULL) <= 0) {
        GENERAL_NAME_free(gn);
        return 0;
    }
    *out = gn;
    return 1;
}

/* Splits a comma/space separated list into a malloc'ed array of strings. */
static int srv_split_list(const char *s, char ***out, size_t *n)
{
    char *copy = strdup(s), *tok, *save = NULL;
    char **v = NULL, **grown;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (copy == NULL)
        return 0;
    for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        if ((grown = realloc(v, (cnt + 1) * sizeof(*v))) == NULL)
            goto err;
        v = grown;
        if ((v[cnt] = strdup(tok)) == NULL)
            goto err;
        cnt++;
    }
    free(copy);
    *out = v;
    *n = cnt;
    return 1;
 err:
    while (cnt > 0)
        free(v[--cnt]);
    free(v);
    free(copy);
    return 0;
}

void srv_vendor_trust_free(struct srv_vendor_trust *vt)
{
    if (vt == NULL || __atomic_sub_fetch(&vt->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    X509_STORE_free(vt->store);
    free(vt->anchors);
    free(vt);
}

struct srv_vendor_trust *srv_alias_get1_vendor_trust(struct srv_alias *a)
{
    struct srv_vendor_trust *vt;

    pthread_mutex_lock(&a->vt_lock);
    vt = a->vt;
    if (vt != NULL)
        __atomic_add_fetch(&vt->refs, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&a->vt_lock);
    return vt;
}

/* Adds the certificates of |v| to |vt|. */
static int srv_vendor_trust_add(struct srv_vendor_trust *vt,
                               const struct store_vendor *v)
{
    struct srv_vendor_anchor *grown;
    size_t i;

    if (v->disabled)
        return 1;       /* `cmpca vendor disable`: its devices fail the chain */
    for (i = 0; i < v->ncerts; i++) {
        X509 *x = x509_der_get1(v->certs[i].der, v->certs[i].len);
        unsigned int len = 0;
        int ok;

        if (x == NULL) {
            log_msg(LOG_WARN, "vendor %s: certificate %zu does not parse",
                    v->name, i);
            ERR_clear_error();
            continue;
        }
        grown = realloc(vt->anchors, (vt->nanchors + 1) * sizeof(*grown));
        ok = grown != NULL && X509_STORE_add_cert(vt->store, x)
            && X509_digest(x, EVP_sha256(), grown[vt->nanchors].sha256, &len);
        if (grown != NULL)
            vt->anchors = grown;
        X509_free(x);
        if (!ok)
            return 0;
        vt->anchors[vt->nanchors++].vendor_id = v->id;
    }
    return 1;
}

int srv_alias_reload_vendors(struct srv_alias *a, STORE *store)
{
    struct srv_vendor_trust *vt = calloc(1, sizeof(*vt)), *old;
    struct store_vendor **list = NULL, *one;
    STORE_TX *tx = NULL;
    size_t n = 0, i;
    int ok = 0;

    if (vt == NULL || (vt->store = X509_STORE_new()) == NULL)
        goto end;
    vt->refs = 1;
    /* A registered vendor CA is trusted as it is, even if it is not
     * self-signed (the operator trusts that CA, not its whole hierarchy). */
    X509_STORE_set_flags(vt->store, X509_V_FLAG_PARTIAL_CHAIN);
    if (store_begin_read(store, &tx) != STORE_OK)
        goto end;
    if (a->all_vendors) {
        if (store_vendor_list(tx, &list, &n) != STORE_OK)
            goto end;
        for (i = 0; i < n; i++)
            if (!srv_vendor_trust_add(vt, list[i]))
                goto end;
    } else {
        for (i = 0; i < a->nvendors; i++) {
            enum store_rc rc = store_vendor_get_by_name(tx, a->vendors[i], &one);

            if (rc == STORE_NOTFOUND)
                continue; /* may be registered later */
            if (rc != STORE_OK)
                goto end;
            ok = srv_vendor_trust_add(vt, one);
            store_vendor_free(one);
            if (!ok)
                goto end;
            ok = 0;
        }
    }
    pthread_mutex_lock(&a->vt_lock);
    old = a->vt;
    a->vt = vt;
    pthread_mutex_unlock(&a->vt_lock);
    srv_vendor_trust_free(old);
    vt = NULL;
    ok = 1;
 end:
    store_rollback(tx);
    store_vendor_list_free(list, n);
    srv_vendor_trust_free(vt);
    return ok;
}

int srv_alias_load(struct srv_alias *a, const struct conf *conf,
                  const struct conf_section *sec, STORE *store, char *err,
                  size_t errlen)
{
    const char *mode, *inner, *ca_name, *prof_name, *vendors, *attr, *ku, *rs;
    long confirm_wait, tolerance;
    int reenroll, revoke_kur, ra_verified, ra_trust, repeats;

    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->vt_lock, NULL);
    pthread_mutex_init(&a->ra_lock, NULL);
    if ((a->name = strdup(sec->name)) == NULL)
        return 0;
    if (*sec->name == '\0')
        return conf_err(conf, sec->line, err, errlen,
                        "[alias] needs a name: [alias NAME]");
    mode = conf_get(sec, "mode");
    if ((a->mode = srv_mode_find(mode != NULL ? mode : "3gpp")) == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: unknown mode '%s' (known: 3gpp, ra, "
                        "cert, mac, upstream)", sec->name, mode);
    if (a->mode == &srv_mode_upstream)  /* an RA: no CA of its own */
        return srv_upstream_load(a, conf, sec, store, err, errlen);
    inner = conf_get(sec, "inner_mode");
    if (a->mode == &srv_mode_ra) {
        if (inner == NULL)
            inner = "3gpp";
        if (strcmp(inner, "none") != 0
            && ((a->inner = srv_mode_find(inner)) == NULL
                || a->inner == &srv_mode_ra))
            return conf_err(conf, sec->line, err, errlen,
                            "[alias %s]: inner_mode must be 3gpp or none",
                            sec->name);
    } else if (inner != NULL) {
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: inner_mode is for mode = ra", sec->name);
    }
    ca_name = conf_get(sec, "ca");
    prof_name = conf_get(sec, "profile");
    if (ca_name == NULL || prof_name == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: 'ca' and 'profile' are required",
                        sec->name);
    vendors = conf_get(sec, "vendors");
    if (vendors == NULL || strcmp(vendors, "*") == 0)
        a->all_vendors = 1;
    else if (!srv_split_list(vendors, &a->vendors, &a->nvendors))
        return 0;
    attr = conf_get(sec, "device_id_attr");
    a->device_id_nid = NID_serialNumber;
    if (attr != NULL && (a->device_id_nid = OBJ_txt2nid(attr)) == NID_undef)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: unknown attribute '%s' for device_id_attr",
                        sec->name, attr);
    ku = conf_get(sec, "key_update");
    a->require_new_key = 1;
    if (ku != NULL) {
        if (strcmp(ku, "new-key") == 0)
            a->require_new_key = 1;
        else if (strcmp(ku, "allow-reuse") == 0)
            a->require_new_key = 0;
        else
            return conf_err(conf, sec->line, err, errlen,
                            "[alias %s]: key_update must be new-key or "
                            "allow-reuse", sec->name);
    }
    rs = conf_get(sec, "response_signer");
    if (rs != NULL && strcmp(rs, "ca") != 0 && strcmp(rs, "cmp-signer") != 0)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: response_signer must be cmp-signer or ca",
                        sec->name);
    if (!conf_get_duration(conf, sec, "confirm_wait_time", 300, 1, 86400,
                           &confirm_wait, err, errlen)
        || !conf_get_duration(conf, sec, "time_tolerance", 600, 0, 86400 * 7,
                              &tolerance, err, errlen)
        || !conf_get_bool(conf, sec, "allow_reenroll", 0, &reenroll, err, errlen)
        || !conf_get_bool(conf, sec, "revoke_on_kur", 1, &revoke_kur, err,
                          errlen)
        || !conf_get_bool(conf, sec, "allow_ra_verified", 0, &ra_verified,
                          err, errlen)
        || !conf_get_bool(conf, sec, "answer_repeats", a->mode == &srv_mode_ra,
                          &repeats, err, errlen))
        return 0;
    a->answer_repeats = repeats;
    if (ra_verified && a->mode != &srv_mode_ra)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: allow_ra_verified is for mode = ra",
                        sec->name);
    ra_trust = conf_get(sec, "ra_trust") != NULL;
    ra_trust |= conf_get(sec, "ra_trust_file") != NULL;
    if (ra_trust && a->mode != &srv_mode_ra)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: ra_trust is for mode = ra", sec->name);
    if (!srv_limits_load(&a->enroll, conf, sec, err, errlen)
        || !srv_approval_load(a, conf, sec, err, errlen))
        return 0;
    if (!srv_cert_conf_load(a, conf, sec, err, errlen))
        return 0;
    (void)conf_get(sec, "profiles");    /* read by srv_profiles_load */
    if (!srv_mac_alias_load(a, conf, sec, err, errlen))
        return 0;
    if (!conf_check_used(conf, sec, err, errlen))
        return 0;
    a->allow_ra_verified = ra_verified;
    a->confirm_wait = confirm_wait;
    a->time_tolerance = tolerance;
    a->allow_reenroll = reenroll;
    a->revoke_on_kur = revoke_kur;
    if (!ca_load(conf, store, ca_name, &a->ca, err, errlen))
        return 0;
    /* responses are signed by the CA's designated CMP signer (the CA key
     * itself when none is designated), or by the CA key on request */
    if (rs != NULL && strcmp(rs, "ca") == 0) {
        a->rsp_cert = ca_get0_cert(a->ca);
        a->rsp_signer = ca_get0_signer(a->ca);
        a->rsp_chain = ca_get0_chain(a->ca);
    } else {
        a->rsp_cert = ca_get0_cmp_signer_cert(a->ca);
        a->rsp_signer = ca_get0_cmp_signer(a->ca);
        a->rsp_chain = ca_get0_cmp_chain(a->ca);
    }
    if (a->rsp_signer == NULL || ca_get0_signer(a->ca) == NULL) {
        snprintf(err, errlen, "[alias %s]: CA %s has no usable signing key",
                 sec->name, ca_name);
        return 0;
    }
    /* the same in every response: encoded once, names made once */
    if (!cmp_extracerts_der(NULL, a->rsp_chain, ca_get0_chain(a->ca),
                            &a->rsp_extra, &a->rsp_extra_len)
        || !srv_dirname_new(X509_get_subject_name(a->rsp_cert),
                           &a->rsp_sender)
        || !srv_dirname_new(NULL, &a->rsp_nobody)) {
        snprintf(err, errlen, "[alias %s]: cannot encode the response "
                 "certificates", sec->name);
        return 0;
    }
    if (!ca_profile_load(conf, prof_name, &a->profile, err, errlen))
        return 0;
    a->profile_name = ca_profile_get0_name(a->profile);
    if ((a->issuer = issuer_local_new(a->ca, a->profile)) == NULL)
        return 0;
    if (a->mode == &srv_mode_ra
        && !srv_ra_trust_load(a, conf, sec, store, err, errlen))
        return 0;
    if (!srv_profiles_load(a, conf, sec, err, errlen))
        return 0;
    if (a->mode == &srv_mode_cert
        && !srv_cert_trust_load(a, conf, sec, store, err, errlen))
        return 0;
    if ((a->op_store = X509_STORE_new()) == NULL
        || !X509_STORE_add_cert(a->op_store, ca_get0_root(a->ca))
        || (a->ca_pubs = sk_X509_new_null()) == NULL
        || !X509_add_cert(a->ca_pubs, ca_get0_root(a->ca), X509_ADD_FLAG_UP_REF)) {
        snprintf(err, errlen, "[alias %s]: out of memory", sec->name);
        return 0;
    }
    if (!srv_alias_reload_vendors(a, store)) {
        snprintf(err, errlen, "[alias %s]: cannot load vendors from the store",
                 sec->name);
        return 0;
    }
    return 1;
}

void srv_alias_clear(struct srv_alias *a)
{
    size_t i;

    for (i = 0; i < a->nvendors; i++)
        free(a->vendors[i]);
    free(a->vendors);
    free(a->name);
    srv_profiles_clear(a);
    issuer_free(a->issuer);
    ca_free(a->ca);
    ca_profile_free(a->profile);
    X509_STORE_free(a->ra_store);
    sk_X509_pop_free(a->ra_trust, X509_free);
    free(a->ra_trust_ids);
    X509_STORE_free(a->op_store);
    sk_X509_pop_free(a->ca_pubs, X509_free);
    OPENSSL_free(a->rsp_extra);
    GENERAL_NAME_free(a->rsp_sender);
    GENERAL_NAME_free(a->rsp_nobody);
    srv_vendor_trust_free(a->vt);
    srv_cert_clear(a);
    srv_mac_alias_clear(a);
    srv_upstream_free(a->up);
    pthread_mutex_destroy(&a->vt_lock);
    pthread_mutex_destroy(&a->ra_lock);
    memset(a, 0, sizeof(*a));
}

int srv_list_split(const char *s, char ***out, size_t *n)
{
    return srv_split_list(s, out, n);
}
