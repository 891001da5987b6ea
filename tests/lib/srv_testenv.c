/*
 * The in-process cmpca server for tests and fuzzing (see srv_testenv.h):
 * PKIs made with the CA engine's admin functions, a real SQLite store, the
 * server core, and OpenSSL's CMP client talking to it without a network.
 */
#define _XOPEN_SOURCE 700
#include "srv_testenv.h"

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "conf/conf.h"
#include "util/kek.h"
#include "cmp_testpki.h"
#include "testutil.h"
#include "util/pkey_md.h"

#include <ftw.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STENV_ACTOR "test:srv_testenv"

static int stenv_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s", what, buf[0] != '\0' ? ": " : "", buf);
    ERR_clear_error();
    return 0;
}

/* Writes the key-encryption key of the mac alias next to |conf_path|
 * (DIR/kek.hex) and its "file:" spec into |spec|. */
static int stenv_write_kek(const char *conf_path, char *spec, size_t len)
{
    const char *slash = strrchr(conf_path, '/');
    FILE *fp;
    int ok;

    snprintf(spec, len, "file:%.*s/kek.hex",
             slash != NULL ? (int)(slash - conf_path) : 1,
             slash != NULL ? conf_path : ".");
    if ((fp = fopen(spec + 5, "w")) == NULL)
        return 0;
    fputs(STENV_KEK_HEX "\n", fp);
    ok = ferror(fp) == 0;
    return fclose(fp) == 0 && ok;
}

static int stenv_write_conf(const char *path, const struct stenv_opts *o)
{
    long cw = o != NULL && o->confirm_wait > 0 ? o->confirm_wait : 300;
    long tt = o == NULL || o->time_tolerance == 0 ? 600
        : o->time_tolerance < 0 ? 0 : o->time_tolerance;
    char kek[4200];
    FILE *fp;
    int ok;

    if (!stenv_write_kek(path, kek, sizeof(kek)))
        return 0;
    if ((fp = fopen(path, "w")) == NULL)
        return 0;
    fprintf(fp,
            "; written by tests/lib/srv_testenv.c\n"
            "[server]\n"
            "secret_kek = %s\n"
            "\n"
            "[alias mac]\n"
            "mode = mac\n"
            "ca = issuing\n"
            "profile = radev\n"
            "implicit_confirm = yes\n"
            "\n"
            "[store]\n"
            "path = cmpca.db\n"
            "synchronous = normal\n"
            "\n"
            "[alias 3gpp]\n"
            "mode = 3gpp\n"
            "ca = issuing\n"
            "profile = device\n"
            "vendors = acme\n"
            "confirm_wait_time = %lds\n"
            "time_tolerance = %lds\n"
            "allow_reenroll = %s\n"
            "\n"
            "[alias ra]\n"
            "mode = ra\n"
            "ca = issuing\n"
            "profile = radev\n"
            "ra_trust = issuing\n"
            "allow_ra_verified = yes\n"
            "inner_mode = 3gpp\n"
            "vendors = acme\n"
            "confirm_wait_time = %lds\n"
            "time_tolerance = %lds\n"
            "\n"
            "[alias ra2]\n"
            "mode = ra\n"
            "ca = issuing\n"
            "profile = radev\n"
            "inner_mode = none\n"
            "\n"
            "[alias cert]\n"
            "mode = cert\n"
            "ca = issuing\n"
            "profile = radev\n"
            "profiles = gold\n"
            "cert_subjects = any\n"
            "allow_reenroll = yes\n"
            "\n"
            "[profile gold]\n"
            "validity = 10d\n"
            "subject = CN=${request.CN},O=Operator\n"
            "key_usage = digitalSignature\n"
            "[alias approve]\n"
            "mode = 3gpp\n"
            "ca = issuing\n"
            "profile = device\n"
            "vendors = acme\n"
            "approval = manual\n"
            "check_after = 1s\n"
            "\n"
            "[profile device]\n"
            "validity = 365d\n"
            "subject = CN=${vendor.serialNumber},O=Operator\n"
            "key_usage = digitalSignature\n"
            "ext_key_usage = clientAuth\n"
            "\n"
            "[profile radev]\n"
            "validity = 30d\n"
            "subject = CN=${request.CN},O=Operator\n"
            "key_usage = digitalSignature\n"
            "ext_key_usage = clientAuth\n",
            kek, cw, tt, o != NULL && o->allow_reenroll ? "yes" : "no", cw,
            tt);
    ok = ferror(fp) == 0;
    return fclose(fp) == 0 && ok;
}

/* Records |cert| (issued by |issuer|) in the certificates table; sets
 * *id_out if not NULL. */
static enum store_rc stenv_record_cert_id(STORE_TX *tx, const CA *issuer,
                                          X509 *cert, const char *profile,
                                          int64_t *id_out)
{
    struct store_cert rec;
    int64_t id;
    enum store_rc rc;

    if (!ca_store_cert_fill(issuer, cert, profile, 0, &rec))
        return STORE_ERROR;
    rc = store_cert_insert(tx, &rec, &id);
    if (id_out != NULL)
        *id_out = id;
    ca_store_cert_clear(&rec);
    return rc;
}

static enum store_rc stenv_record_cert(STORE_TX *tx, const CA *issuer,
                                       X509 *cert, const char *profile)
{
    return stenv_record_cert_id(tx, issuer, cert, profile, NULL);
}

/* As `cmpca ca create`: a P-256 key in DIR/<name>.key (no passphrase), a
 * CA certificate (self-signed, or under |parent|), the store record. */
static int stenv_make_ca(struct stenv *e, const char *name, const char *subject,
                         CA *parent, int64_t *id, X509 **out, char *err,
                         size_t errlen)
{
    EVP_PKEY *k = NULL;
    CA_SIGNER *s = NULL;
    X509_NAME *dn = NULL;
    X509 *cert = NULL;
    STORE_TX *tx = NULL;
    char path[4096];
    enum store_rc rc = STORE_ERROR;
    int ok = 0;

    snprintf(path, sizeof(path), "%s/%s.key", e->dir, name);
    if (!ca_key_generate("ec:P-256", &k, err, errlen)
        || (s = ca_signer_new_pkey(k, NULL)) == NULL
        || !ca_name_parse(subject, &dn, err, errlen))
        goto end;
    cert = ca_make_ca_cert(dn, ca_signer_get0_pubkey(s), parent ? 1825 : 3650,
                           parent ? ca_get0_cert(parent) : NULL,
                           parent ? ca_get0_signer(parent) : s, -1, err, errlen);
    if (cert == NULL || !ca_key_write(path, k, NULL, err, errlen))
        goto end;
    if ((rc = store_begin(e->store, &tx)) != STORE_OK
        || (rc = ca_record_insert(tx, name, cert,
                                  parent ? ca_get0_chain(parent) : NULL, path,
                                  STENV_ACTOR, id)) != STORE_OK
        || (parent != NULL
            && (rc = stenv_record_cert(tx, parent, cert, "ca")) != STORE_OK)
        || (rc = store_commit_clear(&tx)) != STORE_OK) {
        snprintf(err, errlen, "storing CA %s: %s", name, store_rc_str(rc));
        goto end;
    }
    *out = cert;
    cert = NULL;
    ok = 1;
 end:
    store_rollback(tx);
    X509_free(cert);
    X509_NAME_free(dn);
    ca_signer_free(s);
    EVP_PKEY_free(k);
    return ok;
}

/* As `cmpca ca signer --ca issuing`. */
static int stenv_make_signer(struct stenv *e, char *err, size_t errlen)
{
    CA *ca = NULL;
    EVP_PKEY *k = NULL;
    X509_NAME *dn = NULL;
    X509 *cert = NULL;
    STORE_TX *tx = NULL;
    char path[4096];
    enum store_rc rc;
    int ok = 0;

    snprintf(path, sizeof(path), "%s/issuing-cmp.key", e->dir);
    if (!ca_load(e->conf, e->store, "issuing", &ca, err, errlen)
        || !ca_key_generate("ec:P-256", &k, err, errlen)
        || !ca_name_parse("/O=Operator/CN=Issuing CA CMP signer", &dn, err,
                          errlen)
        || (cert = ca_make_cmp_signer_cert(ca, dn, k, 730, err, errlen)) == NULL
        || !ca_key_write(path, k, NULL, err, errlen))
        goto end;
    if ((rc = store_begin(e->store, &tx)) != STORE_OK
        || (rc = stenv_record_cert(tx, ca, cert, "cmp-signer")) != STORE_OK
        || (rc = ca_record_set_cmp_signer(tx, ca, cert, path, STENV_ACTOR))
           != STORE_OK
        || (rc = store_commit_clear(&tx)) != STORE_OK) {
        snprintf(err, errlen, "storing the CMP signer: %s", store_rc_str(rc));
        goto end;
    }
    e->cmp_signer = cert;
    cert = NULL;
    ok = 1;
 end:
    store_rollback(tx);
    X509_free(cert);
    X509_NAME_free(dn);
    EVP_PKEY_free(k);
    ca_free(ca);
    return ok;
}

/* As `cmpca vendor add --name acme --ca chain.pem`. */
static int stenv_make_vendor(struct stenv *e, char *err, size_t errlen)
{
    struct store_vendor v;
    struct store_der certs[2];
    unsigned char *d0 = NULL, *d1 = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    int n0, n1, ok = 0;

    if ((e->vroot_key = cmp_testpki_key("EC")) == NULL
        || (e->vroot = cmp_testpki_cert(e->vroot_key, "Acme Vendor Root", NULL,
                                        NULL, 1, 3650)) == NULL
        || (e->vca_key = cmp_testpki_key("EC")) == NULL
        || (e->vca = cmp_testpki_cert(e->vca_key, "Acme Factory CA", e->vroot,
                                      e->vroot_key, 1, 3650)) == NULL
        || (e->rogue_key = cmp_testpki_key("EC")) == NULL
        || (e->rogue = cmp_testpki_cert(e->rogue_key, "Acme Factory CA", NULL,
                                        NULL, 1, 3650)) == NULL)
        return stenv_err(err, errlen, "vendor PKI");
    if ((n0 = i2d_X509(e->vca, &d0)) <= 0 || (n1 = i2d_X509(e->vroot, &d1)) <= 0)
        goto end;
    certs[0].der = d0;
    certs[0].len = (size_t)n0;
    certs[1].der = d1;
    certs[1].len = (size_t)n1;
    memset(&v, 0, sizeof(v));
    v.name = "acme";
    v.certs = certs;
    v.ncerts = 2;
    if ((rc = store_begin(e->store, &tx)) != STORE_OK
        || (rc = store_vendor_insert(tx, &v, &e->vendor_id)) != STORE_OK
        || (rc = store_audit_append(tx, STENV_ACTOR, "vendor.add", "acme", NULL))
           != STORE_OK
        || (rc = store_commit_clear(&tx)) != STORE_OK) {
        snprintf(err, errlen, "storing vendor: %s", store_rc_str(rc));
        goto end;
    }
    ok = 1;
 end:
    store_rollback(tx);
    OPENSSL_free(d0);
    OPENSSL_free(d1);
    return ok;
}

/* The RAs of enum stenv_ra: name, aliases, profile (NULL any), operations,
 * raVerified, disabled, registered, revoked. */
static const struct {
    const char *name;
    const char *alias1, *alias2;
    const char *profile;
    unsigned ops;
    int ra_verified, disabled, registered, revoked;
} stenv_ras[STENV_NRA] = {
    [STENV_RA_ALL] = { "ra-all", "ra", "ra2", NULL, STORE_RA_OP_ALL, 1, 0, 1, 0 },
    [STENV_RA_IR] = { "ra-ir", "ra", NULL, NULL, STORE_RA_OP_IR, 0, 0, 1, 0 },
    [STENV_RA_OFF] = { "ra-off", "ra", NULL, NULL, STORE_RA_OP_ALL, 1, 1, 1, 0 },
    [STENV_RA_ELSEWHERE] = { "ra-elsewhere", "ra2", NULL, NULL,
                             STORE_RA_OP_ALL, 1, 0, 1, 0 },
    [STENV_RA_UNREG] = { "-", NULL, NULL, NULL, 0, 0, 0, 0, 0 },
    [STENV_RA_REVOKED] = { "ra-revoked", "ra", NULL, NULL, STORE_RA_OP_ALL,
                           1, 0, 1, 1 },
    [STENV_RA_PROFILE] = { "ra-profile", "ra", NULL, "otherprofile",
                           STORE_RA_OP_ALL, 1, 0, 1, 0 },
};

const char *stenv_ra_name(int i)
{
    return i >= 0 && i < STENV_NRA ? stenv_ras[i].name : NULL;
}

/* As `cmpca ca signer`-style issuance plus `cmpca ra add` (and `cmpca
 * cert revoke` for the revoked one): every RA of enum stenv_ra. */
static int stenv_make_ras(struct stenv *e, char *err, size_t errlen)
{
    CA *ca = NULL;
    X509_NAME *dn = NULL;
    STORE_TX *tx = NULL;
    char subj[128];
    enum store_rc rc = STORE_OK;
    int i, ok = 0;

    if (!ca_load(e->conf, e->store, "issuing", &ca, err, errlen))
        return 0;
    for (i = 0; i < STENV_NRA; i++) {
        struct stenv_id *id = &e->ra[i];
        struct store_ra ra;
        unsigned char *der = NULL;
        char *aliases[2], *profiles[1];
        int64_t cert_id = 0, ra_id = 0;
        int len;

        snprintf(subj, sizeof(subj), "/O=Operator/CN=RA %s",
                 i == STENV_RA_UNREG ? "unregistered" : stenv_ras[i].name);
        X509_NAME_free(dn);
        dn = NULL;
        if ((id->key = cmp_testpki_key("EC")) == NULL
            || !ca_name_parse(subj, &dn, err, errlen)
            || (id->cert = ca_make_cmp_signer_cert(ca, dn, id->key, 365, err,
                                                   errlen)) == NULL
            || (id->chain = cmp_testpki_stack(e->op_issuing, NULL)) == NULL)
            goto end;
        if ((rc = store_begin(e->store, &tx)) != STORE_OK
            || (rc = stenv_record_cert_id(tx, ca, id->cert, "ra", &cert_id))
               != STORE_OK)
            goto store_err;
        if (stenv_ras[i].registered) {
            if ((len = i2d_X509(id->cert, &der)) <= 0)
                goto end;
            memset(&ra, 0, sizeof(ra));
            ra.name = (char *)stenv_ras[i].name;
            ra.cert_der = der;
            ra.cert_len = (size_t)len;
            aliases[0] = (char *)stenv_ras[i].alias1;
            aliases[1] = (char *)stenv_ras[i].alias2;
            ra.aliases = aliases;
            ra.naliases = aliases[1] != NULL ? 2 : 1;
            profiles[0] = (char *)stenv_ras[i].profile;
            ra.profiles = profiles[0] != NULL ? profiles : NULL;
            ra.nprofiles = profiles[0] != NULL ? 1 : 0;
            ra.ops = stenv_ras[i].ops;
            ra.ra_verified = stenv_ras[i].ra_verified;
            ra.disabled = stenv_ras[i].disabled;
            rc = store_ra_insert(tx, &ra, &ra_id);
            OPENSSL_free(der);
            if (rc != STORE_OK
                || (rc = store_audit_append(tx, STENV_ACTOR, "ra.add",
                                            stenv_ras[i].name, NULL))
                   != STORE_OK)
                goto store_err;
        }
        if (stenv_ras[i].revoked
            && ca_revoke(ca, tx, cert_id, CRL_REASON_KEY_COMPROMISE, 0,
                         STENV_ACTOR, err, errlen) != CA_REVOKE_OK)
            goto end;
        if ((rc = store_commit_clear(&tx)) != STORE_OK)
            goto store_err;
    }
    ok = 1;
    goto end;
 store_err:
    snprintf(err, errlen, "storing RA %d: %s", i, store_rc_str(rc));
 end:
    store_rollback(tx);
    X509_NAME_free(dn);
    ca_free(ca);
    ERR_clear_error();
    return ok;
}

static int stenv_open_store(struct stenv *e, const char *db_path, char *err,
                            size_t errlen)
{
    struct store_conf sc;
    enum store_rc rc;

    store_conf_init(&sc);
    if (db_path != NULL) {
        sc.path = db_path;
        sc.synchronous_full = 0;
    } else if (!store_conf_load(e->conf, &sc, err, errlen)) {
        return 0;
    }
    rc = store_open(&sc, &e->store, err, errlen);
    store_conf_clear(&sc);
    return rc == STORE_OK;
}

int stenv_create(struct stenv *e, const char *dir, const struct stenv_opts *o,
                 char *err, size_t errlen)
{
    char path[4096];
    CA *root = NULL;
    int64_t root_id;
    int ok = 0;

    memset(e, 0, sizeof(*e));
    e->dir = dir != NULL ? strdup(dir) : testutil_mkdtemp("cmpca-srvtest");
    if (e->dir == NULL) {
        snprintf(err, errlen, "no directory");
        return 0;
    }
    snprintf(path, sizeof(path), "%s/cmpca.conf", e->dir);
    if (!stenv_write_conf(path, o)) {
        snprintf(err, errlen, "cannot write %s", path);
        return 0;
    }
    if (!conf_load(path, &e->conf, err, errlen)
        || !stenv_open_store(e, NULL, err, errlen)
        || !stenv_make_ca(e, "root", "/O=Operator/CN=Operator Root", NULL,
                          &root_id, &e->op_root, err, errlen)
        || !ca_load(e->conf, e->store, "root", &root, err, errlen)
        || !stenv_make_ca(e, "issuing", "/O=Operator/CN=Issuing CA", root,
                          &e->issuing_id, &e->op_issuing, err, errlen)
        || !stenv_make_signer(e, err, errlen)
        || !stenv_make_vendor(e, err, errlen)
        || !stenv_make_ras(e, err, errlen))
        goto end;
    if ((e->srv = server_new(e->conf, e->store, err, errlen)) == NULL)
        goto end;
    ok = 1;
 end:
    ca_free(root);
    return ok;
}

int stenv_open(struct stenv *e, const char *dir, const char *db_path,
               char *err, size_t errlen)
{
    char path[4096];

    memset(e, 0, sizeof(*e));
    if ((e->dir = strdup(dir)) == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/cmpca.conf", dir);
    if (!conf_load(path, &e->conf, err, errlen)
        || !stenv_open_store(e, db_path, err, errlen))
        return 0;
    return (e->srv = server_new(e->conf, e->store, err, errlen)) != NULL;
}

static int stenv_rm_one(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

void stenv_free(struct stenv *e, int remove_dir)
{
    int i;

    for (i = 0; i < STENV_NRA; i++)
        stenv_id_clear(&e->ra[i]);
    server_free(e->srv);
    store_close(e->store);
    conf_free(e->conf);
    X509_free(e->op_root);
    X509_free(e->op_issuing);
    X509_free(e->cmp_signer);
    EVP_PKEY_free(e->vroot_key);
    EVP_PKEY_free(e->vca_key);
    EVP_PKEY_free(e->rogue_key);
    X509_free(e->vroot);
    X509_free(e->vca);
    X509_free(e->rogue);
    if (remove_dir && e->dir != NULL)
        nftw(e->dir, stenv_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(e->dir);
    memset(e, 0, sizeof(*e));
}

int stenv_device(struct stenv *e, const char *serial, int rogue,
                 int register_it, struct stenv_id *out)
{
    X509_NAME *n = X509_NAME_new();
    STORE_TX *tx = NULL;
    int ok = 0;

    memset(out, 0, sizeof(*out));
    if (n == NULL
        || !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                       (const unsigned char *)"Acme", -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                       (const unsigned char *)serial, -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(n, "serialNumber", MBSTRING_ASC,
                                       (const unsigned char *)serial, -1, -1, 0)
        || (out->key = cmp_testpki_key("EC")) == NULL
        || (out->cert = cmp_testpki_issue(out->key, n, rogue ? e->rogue : e->vca,
                                          rogue ? e->rogue_key : e->vca_key,
                                          365)) == NULL
        || (out->chain = cmp_testpki_stack(rogue ? e->rogue : e->vca, NULL))
           == NULL)
        goto end;
    if (register_it
        && (store_begin(e->store, &tx) != STORE_OK
            || store_device_insert(tx, e->vendor_id, serial, NULL) != STORE_OK
            || store_commit_clear(&tx) != STORE_OK))
        goto end;
    ok = 1;
 end:
    store_rollback(tx);
    X509_NAME_free(n);
    if (!ok)
        stenv_id_clear(out);
    ERR_clear_error();
    return ok;
}

int stenv_mac_secret(struct stenv *e, const char *serial, const char *ref,
                     const char *secret)
{
    static const char hex[] = STENV_KEK_HEX;
    unsigned char key[KEK_KEY_LEN], *sealed = NULL;
    struct store_device *d = NULL;
    size_t sealed_len = 0, i;
    STORE_TX *tx = NULL;
    KEK *kek;
    int ok = 0;

    for (i = 0; i < KEK_KEY_LEN; i++) {
        unsigned int b;

        if (sscanf(hex + 2 * i, "%2x", &b) != 1)
            return 0;
        key[i] = (unsigned char)b;
    }
    if ((kek = kek_new_raw(key)) == NULL)
        return 0;
    if (kek_seal(kek, ref, (const unsigned char *)secret, strlen(secret),
                 &sealed, &sealed_len)
        && store_begin(e->store, &tx) == STORE_OK
        && store_device_get_by_ident(tx, e->vendor_id, serial, &d) == STORE_OK
        && store_device_secret_put(tx, d->id, ref, sealed, sealed_len)
           == STORE_OK
        && store_commit_clear(&tx) == STORE_OK)
        ok = 1;
    store_rollback(tx);
    store_device_free(d);
    free(sealed);
    kek_free(kek);
    return ok;
}

int stenv_id_set(struct stenv_id *out, X509 *cert, EVP_PKEY *key)
{
    memset(out, 0, sizeof(*out));
    if (!X509_up_ref(cert))
        return 0;
    out->cert = cert;
    if (!EVP_PKEY_up_ref(key))
        return 0;
    out->key = key;
    return 1;
}

void stenv_id_clear(struct stenv_id *id)
{
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
    sk_X509_pop_free(id->chain, X509_free);
    memset(id, 0, sizeof(*id));
}

/* ------------------------------------------------------------------ */

int stenv_handle(struct stenv *e, const char *alias, const unsigned char *der,
                 size_t len, unsigned char **rsp, size_t *rsp_len)
{
    struct server_request req;
    struct server_response out;

    memset(&req, 0, sizeof(req));
    req.alias = alias != NULL ? alias : "3gpp";
    req.der = der;
    req.len = len;
    req.peer = "in-process";
    server_handle(e->srv, &req, &out);
    *rsp = out.der;
    *rsp_len = out.len;
    return out.http_status;
}

struct stenv_sign_arg {
    EVP_PKEY *key;
    const char *md;
};

static int stenv_sign_fn(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                         X509_ALGOR *alg2, ASN1_BIT_STRING *sig,
                         const void *data)
{
    struct stenv_sign_arg *a = arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (ctx == NULL)
        return 0;
    ok = EVP_DigestSignInit_ex(ctx, NULL,
                               a->md != NULL ? a->md : pkey_default_md(a->key),
                               NULL, NULL, a->key, NULL) > 0
        && ASN1_item_sign_ctx(it, alg1, alg2, sig, (void *)data, ctx) > 0;
    EVP_MD_CTX_free(ctx);
    return ok;
}

int stenv_resign(CMP_MSG *msg, EVP_PKEY *key, const char *md)
{
    struct stenv_sign_arg a = { key, md };

    return key != NULL && cmp_protect_sign(msg, stenv_sign_fn, &a);
}

int stenv_wrap(const struct stenv_id *by, int single,
               const unsigned char *const *inner, const size_t *inner_len,
               int n, unsigned char **der, size_t *len)
{
    STACK_OF(CMP_MSG) *msgs = sk_CMP_MSG_new_null();
    CMP_MSG *w = NULL, *m;
    int i, ok = 0;

    *der = NULL;
    *len = 0;
    for (i = 0; msgs != NULL && i < n; i++) {
        m = NULL;
        if (cmp_msg_decode(inner[i], inner_len[i], NULL, &m) != CMP_R_OK
            || !sk_CMP_MSG_push(msgs, m)) {
            CMP_MSG_free(m);
            goto end;
        }
    }
    if (msgs == NULL
        || (w = cmp_nested_new(msgs, single, by->cert, by->chain,
                               time(NULL))) == NULL)
        goto end;
    msgs = NULL;
    ok = stenv_resign(w, by->key, NULL) && cmp_msg_encode(w, der, len);
 end:
    sk_CMP_MSG_pop_free(msgs, CMP_MSG_free);
    CMP_MSG_free(w);
    ERR_clear_error();
    return ok;
}

static int stenv_silent_log(const char *func, const char *file, int line,
                            OSSL_CMP_severity level, const char *msg)
{
    (void)func; (void)file; (void)line;
    if (getenv("STENV_VERBOSE") != NULL)
        fprintf(stderr, "# client %d: %s\n", (int)level, msg);
    return 1;
}

/* Does OpenSSL's client accept the protection of |msg| (DER |der|)? The
 * message's extraCerts are the untrusted certificates, as in a client
 * session. A fresh context each time: it caches the validated server
 * certificate. */
static int stenv_validate(struct stenv *e, const OSSL_CMP_MSG *msg,
                          const unsigned char *der, size_t len)
{
    OSSL_CMP_CTX *v = OSSL_CMP_CTX_new(NULL, NULL);
    X509_STORE *ts = X509_STORE_new();
    CMP_MSG *m = NULL;
    int ok = 0;

    if (cmp_msg_decode(der, len, NULL, &m) != CMP_R_OK
        || v == NULL || ts == NULL || e->op_root == NULL
        || !X509_STORE_add_cert(ts, e->op_root)
        || (m->extraCerts != NULL
            && !OSSL_CMP_CTX_set1_untrusted(v, m->extraCerts))
        || !OSSL_CMP_CTX_set0_trustedStore(v, ts)) {
        X509_STORE_free(ts);
        goto end;
    }
    OSSL_CMP_CTX_set_log_cb(v, stenv_silent_log);
    ok = OSSL_CMP_validate_msg(v, msg) == 1;
    if (!ok && getenv("STENV_VERBOSE") != NULL)
        ERR_print_errors_fp(stderr);
 end:
    CMP_MSG_free(m);
    OSSL_CMP_CTX_free(v);
    ERR_clear_error();
    return ok;
}

int stenv_rsp_verified(struct stenv *e, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    OSSL_CMP_MSG *m = der != NULL ? d2i_OSSL_CMP_MSG(NULL, &p, (long)len)
                                  : NULL;
    int ok = m != NULL && stenv_validate(e, m, der, len);

    OSSL_CMP_MSG_free(m);
    ERR_clear_error();
    return ok;
}

static OSSL_CMP_MSG *stenv_transfer(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req)
{
    struct stenv_link *l = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
    unsigned char *der = NULL, *mder = NULL, *rsp = NULL, *copy;
    const unsigned char *p;
    size_t len, rlen = 0;
    CMP_MSG *m = NULL;
    OSSL_CMP_MSG *out = NULL;
    int idx = l->nreq, n;

    if (idx >= STENV_MAXMSG || (n = i2d_OSSL_CMP_MSG(req, &der)) <= 0)
        goto end;
    len = (size_t)n;
    if (l->mutate != NULL) {
        l->no_resign = 0;
        if (cmp_msg_decode(der, len, NULL, &m) != CMP_R_OK
            || !l->mutate(l, m, idx)
            || (!l->no_resign && !stenv_resign(m, l->resign_key, l->resign_md))
            || !cmp_msg_encode(m, &mder, &len))
            goto end;
    }
    if (l->wrap != NULL && l->nowrap_at != idx + 1) {
        const unsigned char *one = mder != NULL ? mder : der;
        unsigned char *w = NULL;
        size_t wlen = 0;

        if (!stenv_wrap(l->wrap, 1, &one, &len, 1, &w, &wlen))
            goto end;
        OPENSSL_free(mder);
        mder = w;
        len = wlen;
    }
    if ((copy = malloc(len)) == NULL)
        goto end;
    memcpy(copy, mder != NULL ? mder : der, len);
    l->req[idx] = copy;
    l->req_len[idx] = len;
    l->nreq++;
    if (l->capture_at == idx + 1)
        goto end;
    if (l->snapshot_at == idx + 1 && !stenv_store_digest(l->env, l->snap))
        memset(l->snap, 0xee, sizeof(l->snap));
    l->http[idx] = stenv_handle(l->env, l->alias, copy, len, &rsp, &rlen);
    l->rsp[idx] = rsp;
    l->rsp_len[idx] = rlen;
    p = rsp;
    if (rsp != NULL && (out = d2i_OSSL_CMP_MSG(NULL, &p, (long)rlen)) != NULL)
        l->verified[idx] = stenv_validate(l->env, out, rsp, rlen);
 end:
    CMP_MSG_free(m);
    OPENSSL_free(der);
    OPENSSL_free(mder);
    return out;
}

void stenv_link_reset(struct stenv_link *l)
{
    int i;

    for (i = 0; i < STENV_MAXMSG; i++) {
        free(l->req[i]);
        free(l->rsp[i]);
        l->req[i] = l->rsp[i] = NULL;
        l->req_len[i] = l->rsp_len[i] = 0;
        l->http[i] = l->verified[i] = 0;
    }
    l->nreq = 0;
}

OSSL_CMP_CTX *stenv_client(struct stenv_link *l, const struct stenv_id *id)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
    X509_STORE *ts = X509_STORE_new();

    if (ctx == NULL || ts == NULL || !X509_STORE_add_cert(ts, l->env->op_root)
        || !OSSL_CMP_CTX_set0_trustedStore(ctx, ts))
        goto err;
    ts = NULL;
    if (!OSSL_CMP_CTX_set_transfer_cb(ctx, stenv_transfer)
        || !OSSL_CMP_CTX_set_transfer_cb_arg(ctx, l)
        || !OSSL_CMP_CTX_set_log_cb(ctx, stenv_silent_log))
        goto err;
    if (getenv("STENV_VERBOSE") != NULL)
        OSSL_CMP_CTX_set_log_verbosity(ctx, OSSL_CMP_LOG_DEBUG);
    if (id != NULL
        && (!OSSL_CMP_CTX_set1_cert(ctx, id->cert)
            || !OSSL_CMP_CTX_set1_pkey(ctx, id->key)
            || (id->chain != NULL
                && !OSSL_CMP_CTX_set1_extraCertsOut(ctx, id->chain))))
        goto err;
    return ctx;
 err:
    X509_STORE_free(ts);
    OSSL_CMP_CTX_free(ctx);
    return NULL;
}

int stenv_client_newkey(OSSL_CMP_CTX *ctx, EVP_PKEY *newkey, const char *cn)
{
    X509_NAME *n;
    int ok;

    if (newkey != NULL
        && (!EVP_PKEY_up_ref(newkey) || !OSSL_CMP_CTX_set0_newPkey(ctx, 1, newkey)))
        return 0;
    if (cn == NULL)
        return 1;
    if ((n = X509_NAME_new()) == NULL)
        return 0;
    ok = X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0)
        && OSSL_CMP_CTX_set1_subjectName(ctx, n);
    X509_NAME_free(n);
    return ok;
}

/* ------------------------------------------------------------------ */

int stenv_rsp_parse(const unsigned char *der, size_t len, struct stenv_rsp *out)
{
    CMP_MSG *m = NULL;
    const CMP_PKISI *si = NULL;
    const CMP_CERTRESP *cr;
    const unsigned char *c;
    size_t clen;

    memset(out, 0, sizeof(*out));
    out->body = out->status = -1;
    if (der == NULL || cmp_msg_decode(der, len, NULL, &m) != CMP_R_OK)
        return 0;
    out->decoded = 1;
    out->body = m->body->type;
    out->signed_ = m->protection != NULL && m->header->protectionAlg != NULL
        && !cmp_protect_is_mac(m);
    switch (m->body->type) {
    case CMP_BODY_ERROR:
        si = m->body->value.error->pKIStatusInfo;
        break;
    case CMP_BODY_IP: case CMP_BODY_CP: case CMP_BODY_KUP:
        out->ncapubs = m->body->value.ip->caPubs != NULL
            ? sk_X509_num(m->body->value.ip->caPubs) : 0;
        cr = sk_CMP_CERTRESP_value(m->body->value.ip->response, 0);
        if (cr == NULL)
            break;
        si = cr->status;
        if (cr->certifiedKeyPair != NULL
            && (c = cmp_certorenccert_get0_der(cr->certifiedKeyPair->certOrEncCert,
                                               &clen)) != NULL
            && (out->cert = malloc(clen)) != NULL) {
            memcpy(out->cert, c, clen);
            out->cert_len = clen;
        }
        break;
    case CMP_BODY_RP:
        si = sk_CMP_PKISI_value(m->body->value.rp->status, 0);
        break;
    case CMP_BODY_NESTED:
        out->nnested = sk_CMP_MSG_num(m->body->value.nested);
        break;
    default:
        break;
    }
    if (si != NULL) {
        out->status = cmp_pkisi_get_status(si);
        out->failinfo = cmp_pkisi_get_failinfo(si);
    }
    CMP_MSG_free(m);
    return 1;
}

int stenv_nested_get(const unsigned char *der, size_t len, int i,
                     unsigned char **out, size_t *out_len)
{
    CMP_MSG *m = NULL;
    unsigned char *enc = NULL;
    size_t n = 0;
    int ok = 0;

    *out = NULL;
    *out_len = 0;
    if (der != NULL && cmp_msg_decode(der, len, NULL, &m) == CMP_R_OK
        && m->body->type == CMP_BODY_NESTED
        && i >= 0 && i < sk_CMP_MSG_num(m->body->value.nested)
        && cmp_msg_encode(sk_CMP_MSG_value(m->body->value.nested, i), &enc,
                          &n)
        && (*out = malloc(n)) != NULL) {
        memcpy(*out, enc, n);
        *out_len = n;
        ok = 1;
    }
    OPENSSL_free(enc);
    CMP_MSG_free(m);
    ERR_clear_error();
    return ok;
}

void stenv_rsp_clear(struct stenv_rsp *r)
{
    free(r->cert);
    memset(r, 0, sizeof(*r));
}

size_t stenv_msg_tid(const unsigned char *der, size_t len, unsigned char *tid)
{
    CMP_MSG *m = NULL;
    size_t n = 0;

    if (der != NULL && cmp_msg_decode(der, len, NULL, &m) == CMP_R_OK
        && m->header->transactionID != NULL) {
        n = (size_t)ASN1_STRING_length(m->header->transactionID);
        if (n > 64)
            n = 64;
        memcpy(tid, ASN1_STRING_get0_data(m->header->transactionID), n);
    }
    CMP_MSG_free(m);
    return n;
}

/* Adds one row's columns to a SHA-256 context. */
static void stenv_hash_row(sqlite3_stmt *st, EVP_MD_CTX *h)
{
    int i, n = sqlite3_column_count(st);

    for (i = 0; i < n; i++) {
        int t = sqlite3_column_type(st, i);
        const void *b = sqlite3_column_blob(st, i);
        int bl = sqlite3_column_bytes(st, i);

        EVP_DigestUpdate(h, &t, sizeof(t));
        EVP_DigestUpdate(h, &bl, sizeof(bl));
        if (b != NULL && bl > 0)
            EVP_DigestUpdate(h, b, (size_t)bl);
    }
}

int stenv_store_digest(struct stenv *e, unsigned char out[32])
{
    sqlite3 *db = NULL;
    sqlite3_stmt *tabs = NULL, *rows = NULL;
    EVP_MD_CTX *all = EVP_MD_CTX_new(), *h = EVP_MD_CTX_new();
    char path[4096], sql[512];
    int ok = 0;

    snprintf(path, sizeof(path), "%s/cmpca.db", e->dir);
    if (all == NULL || h == NULL
        || sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE "
                              "type = 'table' ORDER BY name", -1, &tabs,
                              NULL) != SQLITE_OK)
        goto end;
    if (!EVP_DigestInit_ex(all, EVP_sha256(), NULL))
        goto end;
    while (sqlite3_step(tabs) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(tabs, 0);
        unsigned char acc[32], one[32];
        long count = 0;
        int i, rc;

        memset(acc, 0, sizeof(acc));
        snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", name);
        if (sqlite3_prepare_v2(db, sql, -1, &rows, NULL) != SQLITE_OK)
            goto end;
        /* rows in any order: XOR of per-row digests, and the count */
        while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
            if (!EVP_DigestInit_ex(h, EVP_sha256(), NULL))
                break;
            stenv_hash_row(rows, h);
            if (!EVP_DigestFinal_ex(h, one, NULL))
                break;
            for (i = 0; i < 32; i++)
                acc[i] ^= one[i];
            count++;
        }
        sqlite3_finalize(rows);
        rows = NULL;
        if (rc != SQLITE_DONE)
            goto end;
        EVP_DigestUpdate(all, name, strlen(name) + 1);
        EVP_DigestUpdate(all, &count, sizeof(count));
        EVP_DigestUpdate(all, acc, sizeof(acc));
    }
    ok = EVP_DigestFinal_ex(all, out, NULL);
 end:
    sqlite3_finalize(rows);
    sqlite3_finalize(tabs);
    sqlite3_close(db);
    EVP_MD_CTX_free(all);
    EVP_MD_CTX_free(h);
    return ok;
}

static int64_t stenv_vendor_id(struct stenv *e, STORE_TX *tx)
{
    struct store_vendor *v = NULL;

    if (e->vendor_id == 0 && store_vendor_get_by_name(tx, "acme", &v) == STORE_OK)
        e->vendor_id = v->id;
    store_vendor_free(v);
    return e->vendor_id;
}

static int64_t stenv_issuing(struct stenv *e, STORE_TX *tx)
{
    struct store_ca *ca = NULL;

    if (e->issuing_id == 0 && store_ca_get_by_name(tx, "issuing", &ca) == STORE_OK)
        e->issuing_id = ca->id;
    store_ca_free(ca);
    return e->issuing_id;
}

int stenv_device_state(struct stenv *e, const char *ident, int64_t *cert_id)
{
    STORE_TX *tx = NULL;
    struct store_device *d = NULL;
    int state = -1;

    if (store_begin_read(e->store, &tx) != STORE_OK)
        return -1;
    if (store_device_get_by_ident(tx, stenv_vendor_id(e, tx), ident, &d)
        == STORE_OK) {
        state = d->state;
        if (cert_id != NULL)
            *cert_id = d->cert_id;
    }
    store_device_free(d);
    store_rollback(tx);
    return state;
}

int stenv_cert_status(struct stenv *e, const unsigned char *der, size_t len,
                      int *reason, int64_t *id, int64_t *device_id)
{
    const unsigned char *p = der;
    X509 *x = der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
    const ASN1_INTEGER *sn;
    STORE_TX *tx = NULL;
    struct store_cert *c = NULL;
    int status = -1;

    if (x == NULL || store_begin_read(e->store, &tx) != STORE_OK)
        goto end;
    sn = X509_get0_serialNumber(x);
    if (store_cert_get_by_serial(tx, stenv_issuing(e, tx),
                                 ASN1_STRING_get0_data(sn),
                                 (size_t)ASN1_STRING_length(sn), &c) == STORE_OK) {
        status = c->status;
        if (reason != NULL)
            *reason = c->reason;
        if (id != NULL)
            *id = c->id;
        if (device_id != NULL)
            *device_id = c->device_id;
    }
 end:
    store_cert_free(c);
    store_rollback(tx);
    X509_free(x);
    ERR_clear_error();
    return status;
}

int stenv_txn_state(struct stenv *e, const unsigned char *tid, size_t len)
{
    STORE_TX *tx = NULL;
    struct store_cmp_txn *t = NULL;
    int state = -1;

    if (store_begin_read(e->store, &tx) != STORE_OK)
        return -1;
    if (store_cmp_txn_get(tx, tid, len, &t) == STORE_OK)
        state = t->state;
    store_cmp_txn_free(t);
    store_rollback(tx);
    return state;
}

long stenv_cert_count(struct stenv *e, int status)
{
    STORE_TX *tx = NULL;
    struct store_cert_filter f;
    int64_t n = -1;

    if (store_begin_read(e->store, &tx) != STORE_OK)
        return -1;
    store_cert_filter_init(&f);
    f.ca_id = stenv_issuing(e, tx);
    f.status = status;
    if (store_cert_count(tx, &f, &n) != STORE_OK)
        n = -1;
    store_rollback(tx);
    return (long)n;
}
