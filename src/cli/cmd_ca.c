/*
 * `cmpca ca ...`: create root and issuing CAs (key in an encrypted PEM file
 * or on a PKCS#11 token), import an existing CA, issue a CMP signer
 * certificate, list and show CAs. Also the CA loading helper shared by the
 * cert and crl commands.
 */
#include "cli/cli.h"
#include "util/x509_der.h"

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "ca/ca_rollover.h"
#include "conf/conf.h"
#include "store/store.h"
#include "util/secret.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_ca_load(const struct conf *conf, STORE *st, const char *name,
                const char *key_pass, int skip_key, CA **out)
{
    struct ca_load_opts o = { 0 };
    char err[1024];
    enum ca_load_rc rc;

    o.key_pass = key_pass;
    o.skip_key = skip_key;
    o.skip_cmp_signer = 1;
    if (key_pass != NULL && !secret_spec_valid(key_pass)) {
        fprintf(stderr, "cmpca: bad passphrase spec (use file:PATH, env:VAR "
                "or prompt)\n");
        return CLI_USAGE;
    }
    rc = ca_load_ex(conf, st, name, &o, out, err, sizeof(err));
    if (rc == CA_LOAD_OK)
        return CLI_OK;
    fprintf(stderr, "cmpca: %s\n", err);
    switch (rc) {
    case CA_LOAD_NOTFOUND: return CLI_NOTFOUND;
    case CA_LOAD_AUTH: return CLI_AUTH;
    case CA_LOAD_CONFIG: return CLI_CONFIG;
    case CA_LOAD_STORE: return CLI_STORE;
    default: return CLI_ERR;
    }
}

int cli_parse_serial(const char *hex, unsigned char *out, size_t *len)
{
    char buf[2 * STORE_SERIAL_MAX + 1];
    BIGNUM *bn = NULL;
    size_t n = 0;
    int ok = 0;

    if (hex == NULL)
        return 0;
    if (strncmp(hex, "0x", 2) == 0 || strncmp(hex, "0X", 2) == 0)
        hex += 2;
    for (; *hex != '\0'; hex++) {
        if (*hex == ':' || *hex == ' ')
            continue;
        if (n + 1 >= sizeof(buf) || strchr("0123456789abcdefABCDEF", *hex) == NULL)
            return 0;
        buf[n++] = *hex;
    }
    buf[n] = '\0';
    if (n == 0 || !BN_hex2bn(&bn, buf) || BN_is_zero(bn))
        goto end;
    *len = (size_t)BN_bn2bin(bn, out);
    ok = *len > 0 && *len <= STORE_SERIAL_MAX;
 end:
    BN_free(bn);
    return ok;
}

/* Checks a CA name: 1..64 of [A-Za-z0-9._-]. */
static int ca_cli_name_ok(const char *n)
{
    size_t i, len = n != NULL ? strlen(n) : 0;

    if (len == 0 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._-", n[i]) == NULL)
            return 0;
    return 1;
}

/* Returns a malloc'ed absolute form of |path| (which may not exist yet). */
static char *ca_cli_abspath(const char *path)
{
    char cwd[PATH_MAX], *r;
    size_t n;

    if (path[0] == '/')
        return strdup(path);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    n = strlen(cwd) + strlen(path) + 2;
    if ((r = malloc(n)) != NULL)
        snprintf(r, n, "%s/%s", cwd, path);
    return r;
}

/* The default key file: "<config dir>/<name>.key.pem" (malloc'ed). */
static char *ca_cli_default_key(const char *name, const char *suffix)
{
    char *cfg = ca_cli_abspath(cli_config_path()), *dir, *r = NULL;
    size_t n;

    if (cfg == NULL)
        return NULL;
    dir = dirname(cfg);
    n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    if ((r = malloc(n)) != NULL)
        snprintf(r, n, "%s/%s%s", dir, name, suffix);
    free(cfg);
    return r;
}

/* Returns a conf value from [ca name] or NULL. */
static const char *ca_cli_conf(const struct conf *conf, const char *name,
                               const char *key)
{
    const struct conf_section *sec = conf_find(conf, "ca", name);

    return sec != NULL ? conf_get(sec, key) : NULL;
}

/* How a new key is made: generated into a PEM file, or on a token. */
struct ca_cli_keyopts {
    const char *key_type;
    const char *key_out;
    const char *pass;
    int no_pass;
    const char *pkcs11;
    const char *pin;
};

/* The options for the new key in the option tables of `ca create` and
 * `ca signer` (parsed by ca_cli_keycmd_parse). */
#define CA_CLI_NEWKEY_OPTIONS \
    { "key-out", required_argument, NULL, 'k' }, \
    { "pass", required_argument, NULL, 'p' }, \
    { "no-passphrase", no_argument, NULL, 'N' }, \
    { "pkcs11", required_argument, NULL, 'u' }, \
    { "pin", required_argument, NULL, 'i' }

/* The command line shared by `ca create` and `ca signer` (the CA, the new
 * certificate, how its key is made) and the new key once made. */
struct ca_cli_keycmd {
    const char *name;           /* create: --name, signer: --ca */
    const char *subject;        /* --subject */
    const char *parent;         /* create: --parent */
    const char *other_pass;     /* create: --parent-pass, signer: --ca-pass */
    long days;                  /* --days (the caller presets the default) */
    long pathlen;               /* create: --pathlen (-1: not given) */
    struct ca_cli_keyopts ko;
    X509_NAME *dn;              /* the parsed subject */
    CA_SIGNER *signer;          /* the new key ... */
    EVP_PKEY *pkey;             /* ... in memory, to be written (NULL: token) */
    char *keyref;               /* its file name or URI (malloc'ed) */
    int wrote_key;              /* the key file was written by this command */
    char pass[SECRET_MAX + 1];  /* its passphrase (wiped by _clear) */
};

/* Empties |kc| with |days| as the default validity. */
static void ca_cli_keycmd_init(struct ca_cli_keycmd *kc, long days)
{
    memset(kc, 0, sizeof(*kc));
    kc->days = days;
    kc->pathlen = -1;
}

/* Frees what |kc| holds and wipes the passphrase; the key file is removed
 * if this command wrote it and |failed|. */
static void ca_cli_keycmd_clear(struct ca_cli_keycmd *kc, int failed)
{
    if (failed && kc->wrote_key)
        unlink(kc->keyref);
    secret_wipe(kc->pass, sizeof(kc->pass));
    free(kc->keyref);
    X509_NAME_free(kc->dn);
    EVP_PKEY_free(kc->pkey);
    ca_signer_free(kc->signer);
    memset(kc, 0, sizeof(*kc));
}

/* Parses the options |opts| of `ca create` or `ca signer` into |kc| (each
 * command's table names the options it takes). Returns CLI_OK; -1 after
 * printing help to stdout (the caller exits CLI_OK); CLI_USAGE after a
 * message. */
static int ca_cli_keycmd_parse(int argc, char **argv, const struct option *opts,
                               void (*usage)(FILE *), struct ca_cli_keycmd *kc)
{
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': case 'a': kc->name = optarg; break;
        case 's': kc->subject = optarg; break;
        case 'P': kc->parent = optarg; break;
        case 't': kc->ko.key_type = optarg; break;
        case 'd':
            kc->days = strtol(optarg, &end, 10);
            if (*end != '\0' || kc->days <= 0 || kc->days > 36500) {
                fprintf(stderr, "cmpca: --days must be 1..36500\n");
                return CLI_USAGE;
            }
            break;
        case 'l':
            kc->pathlen = strtol(optarg, &end, 10);
            if (*end != '\0' || kc->pathlen < 0 || kc->pathlen > 10) {
                fprintf(stderr, "cmpca: --pathlen must be 0..10\n");
                return CLI_USAGE;
            }
            break;
        case 'k': kc->ko.key_out = optarg; break;
        case 'p': kc->ko.pass = optarg; break;
        case 'N': kc->ko.no_pass = 1; break;
        case 'u': kc->ko.pkcs11 = optarg; break;
        case 'i': kc->ko.pin = optarg; break;
        case 'q': kc->other_pass = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    return CLI_OK;
}

/* Checks the --pass spec and parses the subject (|dflt| if none was
 * given) into kc->dn. Returns CLI_OK or CLI_USAGE after a message. */
static int ca_cli_keycmd_subject(struct ca_cli_keycmd *kc, const char *dflt)
{
    char err[1024];

    if (kc->ko.pass != NULL && !secret_spec_valid(kc->ko.pass)) {
        fprintf(stderr, "cmpca: --pass takes file:PATH, env:VAR or prompt\n");
        return CLI_USAGE;
    }
    if (!ca_name_parse(kc->subject != NULL ? kc->subject : dflt, &kc->dn, err,
                       sizeof(err))) {
        fprintf(stderr, "cmpca: --subject: %s\n", err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Sets up the new key of kc->name: kc->signer and kc->keyref plus the
 * in-memory key to be written later (kc->pkey, NULL for tokens) and its
 * passphrase (|what| at a prompt; |pass_key| is the [ca] setting that may
 * name it; |suffix| ends the default key file name). Returns CLI_OK or an
 * exit code after a message. */
static int ca_cli_new_key(const struct conf *conf, struct ca_cli_keycmd *kc,
                          const char *what, const char *pass_key,
                          const char *suffix)
{
    const struct ca_cli_keyopts *ko = &kc->ko;
    const char *name = kc->name;
    struct ca_signer_opts so = { 0 };
    char err[1024];
    const char *spec;
    enum ca_signer_status st;

    if (ko->pkcs11 != NULL) {
        if (strncmp(ko->pkcs11, "pkcs11:", 7) != 0) {
            fprintf(stderr, "cmpca: --pkcs11 takes a pkcs11: URI\n");
            return CLI_USAGE;
        }
        so.pass_spec = ko->pin != NULL ? ko->pin
            : ca_cli_conf(conf, name, "pkcs11_pin");
        so.pkcs11_module = ca_cli_conf(conf, name, "pkcs11_module");
        so.what = "token PIN";
        if (so.pass_spec != NULL && !secret_spec_valid(so.pass_spec)) {
            fprintf(stderr, "cmpca: bad PIN spec (use file:PATH, env:VAR or "
                    "prompt)\n");
            return CLI_USAGE;
        }
        st = ca_signer_load(ko->pkcs11, &so, &kc->signer, err, sizeof(err));
        if (st != CA_SIGNER_OK) {
            fprintf(stderr, "cmpca: %s\n", err);
            return st == CA_SIGNER_ERROR ? CLI_ERR : CLI_AUTH;
        }
        if ((kc->keyref = strdup(ko->pkcs11)) == NULL)
            return CLI_ERR;
        return CLI_OK;
    }
    spec = ko->pass != NULL ? ko->pass : ca_cli_conf(conf, name, pass_key);
    if (ko->no_pass && ko->pass != NULL) {
        fprintf(stderr, "cmpca: --pass and --no-passphrase exclude each other\n");
        return CLI_USAGE;
    }
    if (!ko->no_pass) {
        if (spec == NULL) {
            fprintf(stderr, "cmpca: give --pass file:PATH|env:VAR|prompt (or "
                    "set %s in [ca %s]), or --no-passphrase\n", pass_key, name);
            return CLI_USAGE;
        }
        if (!secret_read_new(spec, what, kc->pass, sizeof(kc->pass), err,
                             sizeof(err))) {
            fprintf(stderr, "cmpca: %s\n", err);
            return secret_spec_valid(spec) ? CLI_AUTH : CLI_USAGE;
        }
    }
    kc->keyref = ko->key_out != NULL ? ca_cli_abspath(ko->key_out)
        : ca_cli_default_key(name, suffix);
    if (kc->keyref == NULL)
        return CLI_ERR;
    if (access(kc->keyref, F_OK) == 0) {
        fprintf(stderr, "cmpca: key file %s exists already\n", kc->keyref);
        return CLI_EXISTS;
    }
    if (!ca_key_generate(ko->key_type, &kc->pkey, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        return CLI_USAGE;
    }
    if ((kc->signer = ca_signer_new_pkey(kc->pkey,
                                         ca_cli_conf(conf, name, "digest")))
        == NULL) {
        fprintf(stderr, "cmpca: cannot use the new key (digest setting?)\n");
        return CLI_CONFIG;
    }
    return CLI_OK;
}

/* Once the certificate |cert| for the new key is made (NULL: |why| says
 * why not), writes the key of |kc| to its file (nothing for a token key).
 * Returns 1, or 0 after a message. */
static int ca_cli_keycmd_write(struct ca_cli_keycmd *kc, const X509 *cert,
                               const char *why)
{
    char err[1024];

    if (cert == NULL) {
        fprintf(stderr, "cmpca: %s\n", why);
        return 0;
    }
    if (kc->pkey == NULL)
        return 1;
    if (!ca_key_write(kc->keyref, kc->pkey, kc->ko.no_pass ? NULL : kc->pass,
                      err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        return 0;
    }
    kc->wrote_key = 1;
    return 1;
}

/* Returns 1 if a CA named |name| exists (0 no, -1 error). */
static int ca_cli_exists(STORE *st, const char *name)
{
    STORE_TX *tx = NULL;
    struct store_ca *rec = NULL;
    enum store_rc rc;

    if (store_begin_read(st, &tx) != STORE_OK)
        return -1;
    rc = store_ca_get_by_name(tx, name, &rec);
    store_ca_free(rec);
    store_rollback(tx);
    return rc == STORE_OK ? 1 : rc == STORE_NOTFOUND ? 0 : -1;
}

/* Prints a hint about the passphrase setting the server will need. */
static void ca_cli_hint(const struct conf *conf, const char *name,
                        const char *key, const char *spec)
{
    if (ca_cli_conf(conf, name, key) != NULL)
        return;
    if (spec != NULL && strcmp(spec, "prompt") != 0)
        printf("note: add \"%s = %s\" to [ca %s] in %s so the server can "
               "open the key\n", key, spec, name, cli_config_path());
    else
        printf("note: set %s in [ca %s] in %s so the server can open the "
               "key\n", key, name, cli_config_path());
}

/* Prints the hint about the PIN or passphrase setting (|pass_key|) the
 * server will need for the new key of |kc|. */
static void ca_cli_keycmd_hint(const struct conf *conf,
                               const struct ca_cli_keycmd *kc,
                               const char *pass_key)
{
    if (kc->ko.pkcs11 != NULL)
        ca_cli_hint(conf, kc->name, "pkcs11_pin", kc->ko.pin);
    else if (!kc->ko.no_pass)
        ca_cli_hint(conf, kc->name, pass_key, kc->ko.pass);
}

/* Inserts |cert| (issued by |issuer|) into the certificates table. */
static enum store_rc ca_cli_record_cert(STORE_TX *tx, const CA *issuer,
                                        X509 *cert, const char *profile)
{
    struct store_cert rec;
    int64_t id;
    enum store_rc rc;

    if (!ca_store_cert_fill(issuer, cert, profile, 0, &rec))
        return STORE_ERROR;
    rc = store_cert_insert(tx, &rec, &id);
    ca_store_cert_clear(&rec);
    return rc;
}

static void ca_create_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ca create --name N --subject DN [--parent P]\n"
            "         [--key-type T] [--days D] [--pathlen N]\n"
            "         [--key-out PATH] [--pass SPEC | --no-passphrase]\n"
            "         [--pkcs11 URI [--pin SPEC]] [--parent-pass SPEC]\n"
            "  DN: \"/O=Operator/CN=Root\" or \"CN=Root,O=Operator\"\n"
            "  T: ec:P-256 (default), ec:P-384, rsa:2048..4096, ed25519, ed448\n"
            "  SPEC: file:PATH, env:VAR or prompt (never the secret itself)\n");
}

static int ca_create(int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "subject", required_argument, NULL, 's' },
        { "parent", required_argument, NULL, 'P' },
        { "key-type", required_argument, NULL, 't' },
        { "days", required_argument, NULL, 'd' },
        { "pathlen", required_argument, NULL, 'l' },
        CA_CLI_NEWKEY_OPTIONS,
        { "parent-pass", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct ca_cli_keycmd kc;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    CA *pca = NULL;
    X509 *cert = NULL;
    char err[1024];
    int ret, ex;
    enum store_rc src;

    ca_cli_keycmd_init(&kc, 0);
    if ((ret = ca_cli_keycmd_parse(argc, argv, opts, ca_create_usage, &kc))
        != CLI_OK) {
        ret = ret < 0 ? CLI_OK : ret;
        goto end;
    }
    if (optind != argc || !ca_cli_name_ok(kc.name) || kc.subject == NULL) {
        if (kc.name != NULL && !ca_cli_name_ok(kc.name))
            fprintf(stderr, "cmpca: CA names are 1-64 of A-Z a-z 0-9 . _ -\n");
        ca_create_usage(stderr);
        ret = CLI_USAGE;
        goto end;
    }
    if ((ret = ca_cli_keycmd_subject(&kc, NULL)) != CLI_OK
        || (ret = cli_store_open(&conf, &st)) != CLI_OK)
        goto end;
    ex = ca_cli_exists(st, kc.name);
    if (ex != 0) {
        fprintf(stderr, ex > 0 ? "cmpca: CA '%s' exists already\n"
                : "cmpca: cannot read the store (CA '%s')\n", kc.name);
        ret = ex > 0 ? CLI_EXISTS : CLI_STORE;
        goto end;
    }
    if (kc.parent != NULL
        && (ret = cli_ca_load(conf, st, kc.parent, kc.other_pass, 0, &pca))
           != CLI_OK)
        goto end;
    if ((ret = ca_cli_new_key(conf, &kc, "passphrase for the new CA key",
                              "key_pass", ".key.pem")) != CLI_OK)
        goto end;
    ret = CLI_ERR;
    if (kc.days == 0)
        kc.days = kc.parent != NULL ? 1825 : 3650;
    cert = ca_make_ca_cert(kc.dn, ca_signer_get0_pubkey(kc.signer), kc.days,
                           pca != NULL ? ca_get0_cert(pca) : NULL,
                           pca != NULL ? ca_get0_signer(pca) : kc.signer,
                           (int)kc.pathlen, err, sizeof(err));
    if (!ca_cli_keycmd_write(&kc, cert, err))
        goto end;
    if ((src = store_begin(st, &tx)) != STORE_OK
        || (src = ca_record_insert(tx, kc.name, cert,
                                   pca != NULL ? ca_get0_chain(pca) : NULL,
                                   kc.keyref, cli_actor(), NULL)) != STORE_OK
        || (pca != NULL
            && (src = ca_cli_record_cert(tx, pca, cert, "ca")) != STORE_OK)
        || (src = store_commit(tx)) != STORE_OK) {
        if (src != STORE_OK && tx != NULL)
            fprintf(stderr, "cmpca: storing CA %s failed: %s %s\n", kc.name,
                    store_rc_str(src), store_tx_errmsg(tx));
        else
            fprintf(stderr, "cmpca: storing CA %s failed: %s\n", kc.name,
                    store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    tx = NULL;
    X509_NAME_oneline(X509_get_subject_name(cert), err, sizeof(err));
    printf("created CA %s (%s%s): %s\nkey: %s\n", kc.name,
           pca != NULL ? "issued by " : "self-signed root",
           pca != NULL ? kc.parent : "", err, kc.keyref);
    ca_cli_keycmd_hint(conf, &kc, "key_pass");
    ret = CLI_OK;
 end:
    if (tx != NULL)
        store_rollback(tx);
    ca_cli_keycmd_clear(&kc, ret != CLI_OK);
    X509_free(cert);
    ca_free(pca);
    store_close(st);
    conf_free(conf);
    return ret;
}

/* Reads certificates of |path| into |sk| (appending). Returns 1 or 0. */
static int ca_cli_read_x509s(const char *path, STACK_OF(X509) *sk)
{
    struct store_der *v = NULL;
    size_t n = 0, i;
    X509 *x;
    int ok = 0;

    if (!cli_read_certs(path, &v, &n))
        return 0;
    for (i = 0; i < n; i++) {
        if ((x = x509_der_get1(v[i].der, v[i].len)) == NULL)
            goto end;
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            goto end;
        }
    }
    ok = 1;
 end:
    store_der_list_free(v, n);
    return ok;
}

static void ca_import_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ca import --name N --cert FILE --key FILE|URI\n"
            "         [--chain FILE] [--pass SPEC] [--pin SPEC]\n"
            "  The chain (any order) must lead to a self-signed root.\n");
}

static int ca_import(int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "chain", required_argument, NULL, 'C' },
        { "pass", required_argument, NULL, 'p' },
        { "pin", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *name = NULL, *certf = NULL, *key = NULL, *chainf = NULL;
    const char *pass = NULL, *pin = NULL;
    struct ca_signer_opts so = { 0 };
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null(), *others = sk_X509_new_null();
    STACK_OF(X509) *chainsk = sk_X509_new_null(), *built = NULL, *above = NULL;
    X509_STORE *xs = NULL;
    X509_STORE_CTX *xctx = NULL;
    CA_SIGNER *signer = NULL;
    X509 *cert;
    char err[1024], *keyref = NULL, rpath[PATH_MAX];
    int c, i, ret = CLI_USAGE, ex, nroots = 0;
    enum ca_signer_status sst;
    enum store_rc src;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'c': certf = optarg; break;
        case 'k': key = optarg; break;
        case 'C': chainf = optarg; break;
        case 'p': pass = optarg; break;
        case 'i': pin = optarg; break;
        case 'h': ca_import_usage(stdout); ret = CLI_OK; goto end;
        default: ca_import_usage(stderr); goto end;
        }
    }
    if (optind != argc || !ca_cli_name_ok(name) || certf == NULL || key == NULL
        || certs == NULL || others == NULL || chainsk == NULL) {
        ca_import_usage(stderr);
        goto end;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK)
        goto end;
    ret = CLI_ERR;
    if (!ca_cli_read_x509s(certf, certs)
        || (chainf != NULL && !ca_cli_read_x509s(chainf, chainsk)))
        goto end;
    cert = sk_X509_value(certs, 0);
    for (i = 1; i < sk_X509_num(certs); i++)
        sk_X509_push(others, sk_X509_value(certs, i));
    for (i = 0; i < sk_X509_num(chainsk); i++)
        sk_X509_push(others, sk_X509_value(chainsk, i));
    if (X509_check_ca(cert) < 1
        || ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE)
            && !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))) {
        fprintf(stderr, "cmpca: %s is not a CA certificate (basicConstraints"
                "/keyUsage)\n", certf);
        goto end;
    }
    ex = ca_cli_exists(st, name);
    if (ex != 0) {
        fprintf(stderr, ex > 0 ? "cmpca: CA '%s' exists already\n"
                : "cmpca: cannot read the store (CA '%s')\n", name);
        ret = ex > 0 ? CLI_EXISTS : CLI_STORE;
        goto end;
    }
    /* the key must work and belong to the certificate */
    so.pass_spec = strncmp(key, "pkcs11:", 7) == 0
        ? (pin != NULL ? pin : ca_cli_conf(conf, name, "pkcs11_pin"))
        : (pass != NULL ? pass : ca_cli_conf(conf, name, "key_pass"));
    so.pkcs11_module = ca_cli_conf(conf, name, "pkcs11_module");
    if (so.pass_spec != NULL && !secret_spec_valid(so.pass_spec)) {
        fprintf(stderr, "cmpca: bad passphrase/PIN spec (file:, env:, prompt)\n");
        ret = CLI_USAGE;
        goto end;
    }
    sst = ca_signer_load(key, &so, &signer, err, sizeof(err));
    if (sst != CA_SIGNER_OK) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = sst == CA_SIGNER_ERROR ? CLI_ERR : CLI_AUTH;
        goto end;
    }
    if (!ca_signer_matches_cert(signer, cert)) {
        fprintf(stderr, "cmpca: the key %s does not match %s\n", key, certf);
        ret = CLI_AUTH;
        goto end;
    }
    /* the chain must verify to a self-signed root */
    if ((xs = X509_STORE_new()) == NULL || (xctx = X509_STORE_CTX_new()) == NULL)
        goto end;
    for (i = -1; i < sk_X509_num(others); i++) {
        X509 *x = i < 0 ? cert : sk_X509_value(others, i);

        if (X509_check_issued(x, x) == X509_V_OK) {
            X509_STORE_add_cert(xs, x);
            nroots++;
        }
    }
    if (nroots == 0) {
        fprintf(stderr, "cmpca: the chain must include the self-signed root "
                "(--chain FILE)\n");
        goto end;
    }
    if (!X509_STORE_CTX_init(xctx, xs, cert, others))
        goto end;
    if (X509_verify_cert(xctx) != 1) {
        fprintf(stderr, "cmpca: the chain does not verify: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(xctx)));
        goto end;
    }
    built = X509_STORE_CTX_get1_chain(xctx);
    if (built == NULL || (above = sk_X509_new_null()) == NULL)
        goto end;
    for (i = 1; i < sk_X509_num(built); i++)
        sk_X509_push(above, sk_X509_value(built, i));
    if (strncmp(key, "pkcs11:", 7) == 0)
        keyref = strdup(key);
    else
        keyref = strdup(realpath(key, rpath) != NULL ? rpath : key);
    if (keyref == NULL)
        goto end;
    if ((src = store_begin(st, &tx)) != STORE_OK
        || (src = ca_record_insert(tx, name, cert, above, keyref, cli_actor(),
                                   NULL)) != STORE_OK
        || (src = store_commit_clear(&tx)) != STORE_OK) {
        fprintf(stderr, "cmpca: storing CA %s failed: %s\n", name,
                store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    X509_NAME_oneline(X509_get_subject_name(cert), err, sizeof(err));
    printf("imported CA %s: %s (chain of %d)\nkey: %s\n", name, err,
           sk_X509_num(built), keyref);
    ret = CLI_OK;
 end:
    store_rollback(tx);
    free(keyref);
    sk_X509_free(above);
    sk_X509_pop_free(built, X509_free);
    X509_STORE_CTX_free(xctx);
    X509_STORE_free(xs);
    ca_signer_free(signer);
    sk_X509_free(others); /* entries owned by |certs| and |chainsk| */
    sk_X509_pop_free(chainsk, X509_free);
    sk_X509_pop_free(certs, X509_free);
    store_close(st);
    conf_free(conf);
    ERR_clear_error();
    return ret;
}

static void ca_signer_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ca signer --ca N [--subject DN] [--key-type T]\n"
            "         [--days D] [--key-out PATH] [--pass SPEC | --no-passphrase]\n"
            "         [--pkcs11 URI [--pin SPEC]] [--ca-pass SPEC]\n"
            "  Issues a CMP signing certificate (id-kp-cmcRA) and makes it the\n"
            "  CA's CMP signer (by default the CA key signs CMP messages).\n");
}

static int ca_signer_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "subject", required_argument, NULL, 's' },
        { "key-type", required_argument, NULL, 't' },
        { "days", required_argument, NULL, 'd' },
        CA_CLI_NEWKEY_OPTIONS,
        { "ca-pass", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct ca_cli_keycmd kc;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    CA *ca = NULL;
    X509 *cert = NULL;
    char err[1024], dflt[256], suffix[32];
    int ret;
    enum store_rc src;

    ca_cli_keycmd_init(&kc, 730);
    if ((ret = ca_cli_keycmd_parse(argc, argv, opts, ca_signer_usage, &kc))
        != CLI_OK) {
        ret = ret < 0 ? CLI_OK : ret;
        goto end;
    }
    if (optind != argc || !ca_cli_name_ok(kc.name)) {
        ca_signer_usage(stderr);
        ret = CLI_USAGE;
        goto end;
    }
    snprintf(dflt, sizeof(dflt), "/CN=%s CMP signer", kc.name);
    if ((ret = ca_cli_keycmd_subject(&kc, dflt)) != CLI_OK
        || (ret = cli_store_open(&conf, &st)) != CLI_OK
        || (ret = cli_ca_load(conf, st, kc.name, kc.other_pass, 0, &ca)) != CLI_OK)
        goto end;
    /* the key file name carries a timestamp so signers can be rolled over */
    snprintf(suffix, sizeof(suffix), "-cmp-%ld.key.pem", (long)time(NULL));
    if ((ret = ca_cli_new_key(conf, &kc, "passphrase for the CMP signer key",
                              "signer_key_pass", suffix)) != CLI_OK)
        goto end;
    ret = CLI_ERR;
    cert = ca_make_cmp_signer_cert(ca, kc.dn, ca_signer_get0_pubkey(kc.signer),
                                   kc.days, err, sizeof(err));
    if (!ca_cli_keycmd_write(&kc, cert, err))
        goto end;
    if ((src = store_begin(st, &tx)) != STORE_OK
        || (src = ca_cli_record_cert(tx, ca, cert, "cmp-signer")) != STORE_OK
        || (src = ca_record_set_cmp_signer(tx, ca, cert, kc.keyref, cli_actor()))
           != STORE_OK
        || (src = store_commit_clear(&tx)) != STORE_OK) {
        fprintf(stderr, "cmpca: recording the CMP signer failed: %s\n",
                store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    X509_NAME_oneline(X509_get_subject_name(cert), err, sizeof(err));
    printf("CMP signer of CA %s: %s\nkey: %s\n", kc.name, err, kc.keyref);
    ca_cli_keycmd_hint(conf, &kc, "signer_key_pass");
    ret = CLI_OK;
 end:
    store_rollback(tx);
    ca_cli_keycmd_clear(&kc, ret != CLI_OK);
    X509_free(cert);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    return ret;
}

static void ca_ocsp_signer_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ca ocsp-signer --ca N [--subject DN] [--key-type T]\n"
            "         [--days D] [--key-out PATH] [--cert-out PATH]\n"
            "         [--pass SPEC | --no-passphrase] [--pkcs11 URI [--pin SPEC]]\n"
            "         [--ca-pass SPEC]\n"
            "  Issues a delegated OCSP responder certificate (id-kp-OCSPSigning,\n"
            "  id-pkix-ocsp-nocheck) and writes it next to its key; the printed\n"
            "  [ca N] lines make `cmpca serve` sign OCSP responses with it.\n");
}

static int ca_ocsp_signer_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "subject", required_argument, NULL, 's' },
        { "key-type", required_argument, NULL, 't' },
        { "days", required_argument, NULL, 'd' },
        CA_CLI_NEWKEY_OPTIONS,
        { "ca-pass", required_argument, NULL, 'q' },
        { "cert-out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct ca_cli_keycmd kc;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    CA *ca = NULL;
    X509 *cert = NULL;
    FILE *fp = NULL;
    char err[1024], dflt[256], suffix[40], details[256];
    char *certpath = NULL;
    const char *cert_out = NULL;
    int ret, i;
    enum store_rc src;

    /* --cert-out is ours; the shared parser takes the rest */
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--cert-out") == 0 && i + 1 < argc) {
            cert_out = argv[i + 1];
            memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof(*argv));
            argc -= 2;
            break;
        }
    ca_cli_keycmd_init(&kc, 365);
    if ((ret = ca_cli_keycmd_parse(argc, argv, opts, ca_ocsp_signer_usage, &kc))
        != CLI_OK) {
        ret = ret < 0 ? CLI_OK : ret;
        goto end;
    }
    if (optind != argc || !ca_cli_name_ok(kc.name)) {
        ca_ocsp_signer_usage(stderr);
        ret = CLI_USAGE;
        goto end;
    }
    snprintf(dflt, sizeof(dflt), "/CN=%s OCSP signer", kc.name);
    if ((ret = ca_cli_keycmd_subject(&kc, dflt)) != CLI_OK
        || (ret = cli_store_open(&conf, &st)) != CLI_OK
        || (ret = cli_ca_load(conf, st, kc.name, kc.other_pass, 0, &ca)) != CLI_OK)
        goto end;
    snprintf(suffix, sizeof(suffix), "-ocsp-%ld.key.pem", (long)time(NULL));
    if ((ret = ca_cli_new_key(conf, &kc, "passphrase for the OCSP signer key",
                              "ocsp_signer_key_pass", suffix)) != CLI_OK)
        goto end;
    ret = CLI_ERR;
    if (cert_out != NULL)
        certpath = ca_cli_abspath(cert_out);
    else {
        snprintf(suffix, sizeof(suffix), "-ocsp-%ld.crt.pem", (long)time(NULL));
        certpath = ca_cli_default_key(kc.name, suffix);
    }
    if (certpath == NULL)
        goto end;
    if (access(certpath, F_OK) == 0) {
        fprintf(stderr, "cmpca: %s exists already\n", certpath);
        ret = CLI_EXISTS;
        goto end;
    }
    cert = ca_make_ocsp_signer_cert(ca, kc.dn, ca_signer_get0_pubkey(kc.signer),
                                    kc.days, err, sizeof(err));
    if (!ca_cli_keycmd_write(&kc, cert, err))
        goto end;
    if ((fp = fopen(certpath, "w")) == NULL || !PEM_write_X509(fp, cert)
        || fclose(fp) != 0) {
        fp = NULL;
        fprintf(stderr, "cmpca: cannot write %s\n", certpath);
        goto end;
    }
    fp = NULL;
    X509_NAME_oneline(X509_get_subject_name(cert), err, sizeof(err));
    snprintf(details, sizeof(details), "{\"key\":\"%.180s\"}", kc.keyref);
    if ((src = store_begin(st, &tx)) != STORE_OK
        || (src = ca_cli_record_cert(tx, ca, cert, "ocsp-signer")) != STORE_OK
        || (src = store_audit_append(tx, cli_actor(), "ca.ocsp_signer",
                                     kc.name, details)) != STORE_OK
        || (src = store_commit_clear(&tx)) != STORE_OK) {
        fprintf(stderr, "cmpca: recording the OCSP signer failed: %s\n",
                store_rc_str(src));
        unlink(certpath);
        ret = cli_store_exit(src);
        goto end;
    }
    printf("OCSP signer of CA %s: %s\ncertificate: %s\nkey: %s\n"
           "add to [ca %s] in %s:\n  ocsp_signer_cert = %s\n"
           "  ocsp_signer_key = %s\n", kc.name, err, certpath, kc.keyref,
           kc.name, cli_config_path(), certpath, kc.keyref);
    if (kc.ko.pkcs11 == NULL && !kc.ko.no_pass)
        printf("  ocsp_signer_key_pass = %s\n",
               kc.ko.pass != NULL && strcmp(kc.ko.pass, "prompt") != 0
               ? kc.ko.pass : "file:PATH or env:VAR");
    ret = CLI_OK;
 end:
    if (fp != NULL)
        fclose(fp);
    store_rollback(tx);
    ca_cli_keycmd_clear(&kc, ret != CLI_OK);
    free(certpath);
    X509_free(cert);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    return ret;
}

/* A JSON description of CA |rec| (with counts when |tx| is given). */
static json_t *ca_cli_json(STORE_TX *tx, const struct store_ca *rec, int full)
{
    json_t *o = cli_cert_json(rec->cert_der, rec->cert_len), *chain;
    X509 *x = x509_der_get1(rec->cert_der, rec->cert_len);
    struct store_cert_filter f;
    struct store_crl *crl = NULL;
    char buf[64];
    int64_t n;
    size_t i;

    if (o == NULL)
        goto end;
    json_object_set_new(o, "name", json_string(rec->name));
    json_object_set_new(o, "id", json_integer(rec->id));
    json_object_set_new(o, "root", json_boolean(rec->nchain == 0));
    if (x != NULL && ca_key_describe(X509_get0_pubkey(x), buf, sizeof(buf)))
        json_object_set_new(o, "key_type", json_string(buf));
    json_object_set_new(o, "key", json_string(rec->key_ref != NULL
                                              ? rec->key_ref : ""));
    json_object_set_new(o, "cmp_signer", rec->signer_cert_der != NULL
                        ? cli_cert_json(rec->signer_cert_der,
                                        rec->signer_cert_len)
                        : json_string("ca"));
    if (!full)
        goto end;
    if (rec->signer_key_ref != NULL)
        json_object_set_new(o, "cmp_signer_key",
                            json_string(rec->signer_key_ref));
    chain = json_array();
    for (i = 0; i < rec->nchain; i++)
        json_array_append_new(chain, cli_cert_json(rec->chain[i].der,
                                                   rec->chain[i].len));
    json_object_set_new(o, "chain", chain);
    store_cert_filter_init(&f);
    f.ca_id = rec->id;
    if (store_cert_count(tx, &f, &n) == STORE_OK)
        json_object_set_new(o, "certificates", json_integer(n));
    f.status = STORE_CERT_REVOKED;
    if (store_cert_count(tx, &f, &n) == STORE_OK)
        json_object_set_new(o, "revoked", json_integer(n));
    if (store_crl_get_last(tx, rec->id, &crl) == STORE_OK) {
        json_object_set_new(o, "crl_number", json_integer(crl->number));
        cli_time(crl->next_update, buf, sizeof(buf));
        json_object_set_new(o, "crl_next_update", json_string(buf));
    }
    store_crl_free(crl);
 end:
    X509_free(x);
    return o;
}

/* Prints a JSON description as text lines "key: value". */
static void ca_cli_print_text(json_t *o, const char *indent)
{
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v) {
        if (json_is_object(v)) {
            printf("%s%s:\n", indent, k);
            ca_cli_print_text(v, "    ");
        } else if (json_is_array(v)) {
            size_t i;
            json_t *e;

            printf("%s%s:\n", indent, k);
            json_array_foreach(v, i, e) {
                json_t *s = json_object_get(e, "subject");

                printf("%s  - %s\n", indent, json_is_string(s)
                       ? json_string_value(s) : "?");
            }
        } else if (json_is_string(v)) {
            printf("%s%s: %s\n", indent, k, json_string_value(v));
        } else if (json_is_integer(v)) {
            printf("%s%s: %lld\n", indent, k,
                   (long long)json_integer_value(v));
        } else if (json_is_boolean(v)) {
            printf("%s%s: %s\n", indent, k, json_is_true(v) ? "yes" : "no");
        }
    }
}

static int ca_list(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct store_ca **v = NULL;
    size_t n = 0, i;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    json_t *arr = NULL, *o;
    int c, json = 0, ret;
    enum store_rc src;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': printf("usage: cmpca ca list [--json]\n"); return CLI_OK;
        default:
            fprintf(stderr, "usage: cmpca ca list [--json]\n");
            return CLI_USAGE;
        }
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        return ret;
    if ((src = store_begin_read(st, &tx)) != STORE_OK
        || (src = store_ca_list(tx, &v, &n)) != STORE_OK) {
        fprintf(stderr, "cmpca: cannot list CAs: %s\n", store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    arr = json_array();
    for (i = 0; i < n; i++) {
        o = ca_cli_json(tx, v[i], 0);
        if (json) {
            json_array_append_new(arr, o);
            continue;
        }
        printf("%-16s %-8s %-10s %s  (until %s)\n", v[i]->name,
               v[i]->nchain == 0 ? "root" : "issuing",
               json_string_value(json_object_get(o, "key_type")) != NULL
               ? json_string_value(json_object_get(o, "key_type")) : "?",
               json_string_value(json_object_get(o, "subject")) != NULL
               ? json_string_value(json_object_get(o, "subject")) : "?",
               json_string_value(json_object_get(o, "not_after")) != NULL
               ? json_string_value(json_object_get(o, "not_after")) : "?");
        json_decref(o);
    }
    if (json) {
        cli_json_print(arr);
        arr = NULL;
    }
    ret = CLI_OK;
 end:
    json_decref(arr);
    store_ca_list_free(v, n);
    store_rollback(tx);
    store_close(st);
    return ret;
}

/* Writes DER |der| as a PEM certificate to |fp|. */
static void ca_cli_pem(FILE *fp, const unsigned char *der, size_t len)
{
    X509 *x = x509_der_get1(der, len);

    if (x != NULL)
        PEM_write_X509(fp, x);
    X509_free(x);
}

static int ca_show(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "pem", no_argument, NULL, 'p' },
        { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *name = NULL;
    struct store_ca *rec = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    json_t *o;
    size_t i;
    int c, json = 0, pem = 0, ret;
    enum store_rc src;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'p': pem = 1; break;
        case 'n': name = optarg; break;
        case 'h':
            printf("usage: cmpca ca show NAME [--json | --pem]\n"
                   "  --pem prints the CA certificate and its chain to the "
                   "root\n");
            return CLI_OK;
        default:
            fprintf(stderr, "usage: cmpca ca show NAME [--json | --pem]\n");
            return CLI_USAGE;
        }
    }
    if (name == NULL && optind < argc)
        name = argv[optind++];
    if (name == NULL || optind != argc) {
        fprintf(stderr, "usage: cmpca ca show NAME [--json | --pem]\n");
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        return ret;
    if ((src = store_begin_read(st, &tx)) != STORE_OK
        || (src = store_ca_get_by_name(tx, name, &rec)) != STORE_OK) {
        fprintf(stderr, src == STORE_NOTFOUND ? "cmpca: no CA named '%s'\n"
                : "cmpca: cannot read CA '%s'\n", name);
        ret = cli_store_exit(src);
        goto end;
    }
    if (pem) {
        ca_cli_pem(stdout, rec->cert_der, rec->cert_len);
        for (i = 0; i < rec->nchain; i++)
            ca_cli_pem(stdout, rec->chain[i].der, rec->chain[i].len);
    } else {
        o = ca_cli_json(tx, rec, 1);
        if (json) {
            cli_json_print(o);
        } else {
            ca_cli_print_text(o, "");
            json_decref(o);
        }
    }
    ret = CLI_OK;
 end:
    store_ca_free(rec);
    store_rollback(tx);
    store_close(st);
    return ret;
}

static void ca_rollover_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ca rollover NAME [--key-type T] [--days D]\n"
            "         [--key-out PATH] [--pass SPEC | --no-passphrase]\n"
            "         [--pkcs11 URI [--pin SPEC]] [--ca-pass SPEC]\n"
            "  gives root CA NAME a new key: a new self-signed root\n"
            "  (newWithNew) and the link certificates newWithOld and\n"
            "  oldWithNew (RFC 9810 4.4), handed out by genm\n"
            "  rootCaKeyUpdate; NAME signs with the new key from then on\n"
            "  T: ec:P-256 (default), ec:P-384, rsa:2048..4096, ed25519, ed448\n"
            "  --ca-pass: passphrase of the current key (default [ca] key_pass)\n");
}

/* Prints the subject and notAfter of |x| after |label|. */
static void ca_rollover_print(const char *label, X509 *x)
{
    char sub[512], na[64] = "";
    BIO *b = BIO_new(BIO_s_mem());
    long n;
    char *p;

    X509_NAME_oneline(X509_get_subject_name(x), sub, sizeof(sub));
    if (b != NULL && ASN1_TIME_print(b, X509_get0_notAfter(x))
        && (n = BIO_get_mem_data(b, &p)) > 0)
        snprintf(na, sizeof(na), "%.*s", (int)n, p);
    BIO_free(b);
    printf("%-12s %s, valid until %s\n", label, sub, na);
}

static int ca_rollover_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key-type", required_argument, NULL, 't' },
        { "days", required_argument, NULL, 'd' },
        CA_CLI_NEWKEY_OPTIONS,
        { "ca-pass", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct ca_cli_keycmd kc;
    struct ca_rollover_certs rc = { NULL, NULL, NULL };
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    CA *ca = NULL;
    char err[1024], suffix[64];
    int64_t rid = 0;
    int ret;
    time_t now = time(NULL);
    struct tm tm;
    enum store_rc src;

    ca_cli_keycmd_init(&kc, 3650);
    if ((ret = ca_cli_keycmd_parse(argc, argv, opts, ca_rollover_usage, &kc))
        != CLI_OK) {
        ret = ret < 0 ? CLI_OK : ret;
        goto end;
    }
    if (optind + 1 != argc || !ca_cli_name_ok(argv[optind])) {
        ca_rollover_usage(stderr);
        ret = CLI_USAGE;
        goto end;
    }
    kc.name = argv[optind];
    if (kc.ko.pass != NULL && !secret_spec_valid(kc.ko.pass)) {
        fprintf(stderr, "cmpca: --pass takes file:PATH, env:VAR or prompt\n");
        ret = CLI_USAGE;
        goto end;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK
        || (ret = cli_ca_load(conf, st, kc.name, kc.other_pass, 0, &ca))
           != CLI_OK)
        goto end;
    gmtime_r(&now, &tm);
    strftime(suffix, sizeof(suffix), ".%Y%m%d%H%M%S.key.pem", &tm);
    if ((ret = ca_cli_new_key(conf, &kc, "passphrase for the new root key",
                              "key_pass", suffix)) != CLI_OK)
        goto end;
    ret = CLI_ERR;
    if (!ca_rollover_make(ca, kc.signer, kc.days, &rc, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        goto end;
    }
    if (!ca_cli_keycmd_write(&kc, rc.new_with_new, err))
        goto end;
    if ((src = store_begin(st, &tx)) != STORE_OK
        || (src = ca_rollover_record(tx, ca, &rc, kc.keyref, cli_actor(),
                                     &rid)) != STORE_OK
        || (src = store_commit(tx)) != STORE_OK) {
        fprintf(stderr, "cmpca: storing the rollover of CA %s failed: %s %s\n",
                kc.name, store_rc_str(src),
                src != STORE_OK && tx != NULL ? store_tx_errmsg(tx) : "");
        ret = cli_store_exit(src);
        goto end;
    }
    tx = NULL;
    printf("rolled over root CA %s (rollover %lld)\n", kc.name,
           (long long)rid);
    ca_rollover_print("newWithNew:", rc.new_with_new);
    ca_rollover_print("newWithOld:", rc.new_with_old);
    ca_rollover_print("oldWithNew:", rc.old_with_new);
    printf("key: %s\n", kc.keyref);
    ca_cli_keycmd_hint(conf, &kc, "key_pass");
    printf("note: restart the server so that CA %s signs with "
           "the new key\n", kc.name);
    ret = CLI_OK;
 end:
    if (tx != NULL)
        store_rollback(tx);
    ca_rollover_certs_clear(&rc);
    ca_cli_keycmd_clear(&kc, ret != CLI_OK);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    return ret;
}

static void ca_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ca COMMAND [ARGS]\n"
            "  create   make a root CA or an issuing CA under --parent\n"
            "  import   register an existing CA certificate and key\n"
            "  signer   issue a separate CMP signing certificate for a CA\n"
            "  ocsp-signer  issue a delegated OCSP responder certificate\n"
            "  rollover new key for a root CA with link certificates\n"
            "  list     list CAs\n"
            "  show     show one CA (--json, --pem for its chain)\n");
}

int cli_ca(int argc, char **argv)
{
    if (argc < 2) {
        ca_usage(stderr);
        return CLI_USAGE;
    }
    argc--;
    argv++;
    optind = 0;
    if (strcmp(argv[0], "create") == 0)
        return ca_create(argc, argv);
    if (strcmp(argv[0], "import") == 0)
        return ca_import(argc, argv);
    if (strcmp(argv[0], "signer") == 0)
        return ca_signer_cmd(argc, argv);
    if (strcmp(argv[0], "ocsp-signer") == 0)
        return ca_ocsp_signer_cmd(argc, argv);
    if (strcmp(argv[0], "rollover") == 0)
        return ca_rollover_cmd(argc, argv);
    if (strcmp(argv[0], "list") == 0)
        return ca_list(argc, argv);
    if (strcmp(argv[0], "show") == 0)
        return ca_show(argc, argv);
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        ca_usage(stdout);
        return CLI_OK;
    }
    fprintf(stderr, "cmpca ca: unknown command '%s'\n", argv[0]);
    ca_usage(stderr);
    return CLI_USAGE;
}
