/*
 * Helpers shared by the cmpca commands that use the database: open the
 * store named by the configuration, map store codes to exit codes, the
 * audit actor name, and reading certificate files.
 */
#include "cli/cli.h"
#include "util/x509_der.h"

#include "conf/conf.h"
#include "store/store.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_store_open(struct conf **confp, struct store **st)
{
    struct conf *conf = NULL;
    struct store_conf sc;
    char err[512];
    int ret = CLI_CONFIG;

    *st = NULL;
    if (confp != NULL)
        *confp = NULL;
    store_conf_init(&sc);
    if (!conf_load(cli_config_path(), &conf, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        goto end;
    }
    if (!store_conf_load(conf, &sc, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        goto end;
    }
    if (store_open(&sc, st, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "cmpca: cannot open the store: %s\n", err);
        ret = CLI_STORE;
        goto end;
    }
    if (confp != NULL) {
        *confp = conf;
        conf = NULL;
    }
    ret = CLI_OK;
 end:
    store_conf_clear(&sc);
    conf_free(conf);
    return ret;
}

int cli_store_exit(int rc)
{
    switch (rc) {
    case STORE_OK:       return CLI_OK;
    case STORE_NOTFOUND: return CLI_NOTFOUND;
    case STORE_EXISTS:
    case STORE_CONFLICT: return CLI_EXISTS;
    default:             return CLI_STORE;
    }
}

int cli_dberr(const char *cmd, const char *what, const STORE_TX *tx, int rc)
{
    const char *msg = tx != NULL ? store_tx_errmsg(tx) : "";

    fprintf(stderr, "cmpca %s %s: %s%s%s\n", cmd, what,
            store_rc_str((enum store_rc)rc), *msg ? ": " : "", msg);
    return cli_store_exit(rc);
}

int cli_pick_action(int argc, char **argv, const char *cmd,
                    const char *const *acts, void (*usage)(FILE *),
                    const char **act)
{
    size_t i;

    *act = NULL;
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return -1;
    }
    for (i = 0; acts[i] != NULL; i++)
        if (strcmp(argv[1], acts[i]) == 0) {
            *act = acts[i];
            return CLI_OK;
        }
    fprintf(stderr, "cmpca %s: unknown action '%s'\n", cmd, argv[1]);
    usage(stderr);
    return CLI_USAGE;
}

const char *cli_actor(void)
{
    static char actor[96];
    struct passwd *pw;
    const char *name = NULL;

    if (actor[0] != '\0')
        return actor;
    if ((pw = getpwuid(geteuid())) != NULL)
        name = pw->pw_name;
    if (name == NULL || *name == '\0')
        name = getenv("USER");
    if (name != NULL && *name != '\0')
        snprintf(actor, sizeof(actor), "cli:%s", name);
    else
        snprintf(actor, sizeof(actor), "cli:uid%lu",
                 (unsigned long)geteuid());
    return actor;
}

void cli_hex(const unsigned char *p, size_t len, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * len] = '\0';
}

void cli_time(long long t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%lld", t);
}

/* Largest certificate file we read. */
#define CLI_CERTFILE_MAX (1L << 20)

/* Reads the regular file |path| (at most CLI_CERTFILE_MAX bytes) into a new
 * buffer |*buf| of |*len| bytes, opening it once. Returns 1, or 0 after
 * printing why. */
static int cli_read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    size_t n = 0;
    int ok = 0;

    *buf = NULL;
    *len = 0;
    if (fp == NULL || fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "cmpca: %s: cannot read\n", path);
        goto end;
    }
    if (sb.st_size > CLI_CERTFILE_MAX) {
        fprintf(stderr, "cmpca: %s: larger than %ld bytes\n", path,
                CLI_CERTFILE_MAX);
        goto end;
    }
    /* the size bounds the read: a file growing meanwhile is cut there */
    if ((*buf = malloc((size_t)sb.st_size + 1)) == NULL) {
        fprintf(stderr, "cmpca: %s: cannot read\n", path);
        goto end;
    }
    n = fread(*buf, 1, (size_t)sb.st_size, fp);
    if (ferror(fp)) {
        fprintf(stderr, "cmpca: %s: cannot read\n", path);
        goto end;
    }
    *len = n;
    ok = 1;
 end:
    if (fp != NULL)
        fclose(fp);
    if (!ok) {
        free(*buf);
        *buf = NULL;
    }
    return ok;
}

int cli_read_certs(const char *path, struct store_der **out, size_t *n)
{
    BIO *bio = NULL;
    X509 *x = NULL;
    struct store_der *v = NULL, *nv;
    unsigned char *der = NULL, *data = NULL;
    size_t cnt = 0, dlen = 0;
    int len, ok = 0;

    *out = NULL;
    *n = 0;
    if (!cli_read_file(path, &data, &dlen))
        goto end;
    if ((bio = BIO_new_mem_buf(data, (int)dlen)) == NULL) {
        fprintf(stderr, "cmpca: %s: cannot read\n", path);
        goto end;
    }
    for (;;) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL)
            break;
        if ((len = i2d_X509(x, &der)) <= 0)
            goto bad;
        if ((nv = realloc(v, (cnt + 1) * sizeof(*v))) == NULL)
            goto bad;
        v = nv;
        v[cnt].der = der;
        v[cnt].len = (size_t)len;
        cnt++;
        der = NULL;
        X509_free(x);
        x = NULL;
    }
    if (cnt == 0) {
        /* Not PEM: try one DER certificate. */
        if ((x = x509_der_get1(data, dlen)) == NULL)
            goto bad;
        if ((len = i2d_X509(x, &der)) <= 0
            || (v = malloc(sizeof(*v))) == NULL)
            goto bad;
        v[0].der = der;
        v[0].len = (size_t)len;
        der = NULL;
        cnt = 1;
    }
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
    ok = 1;
    goto end;
 bad:
    fprintf(stderr, "cmpca: %s: no certificate found (PEM or DER)\n", path);
 end:
    ERR_clear_error();
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    free(data);
    store_der_list_free(v, cnt);
    return ok;
}

/* Returns a malloc'ed RFC 2253 string of |name| or NULL. */
static char *cli_name_str(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *r = NULL;
    long len;

    if (b == NULL)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0
        && (len = BIO_get_mem_data(b, &p)) >= 0
        && (r = malloc((size_t)len + 1)) != NULL) {
        memcpy(r, p, (size_t)len);
        r[len] = '\0';
    }
    BIO_free(b);
    return r;
}

struct json_t *cli_cert_json(const unsigned char *der, size_t len)
{
    X509 *x = x509_der_get1(der, len);
    json_t *o = json_object();
    unsigned char sha[32];
    char hex[65], tbuf[32], *s;
    struct tm tm;

    if (o == NULL)
        goto end;
    if (EVP_Digest(der, len, sha, NULL, EVP_sha256(), NULL) == 1) {
        cli_hex(sha, sizeof(sha), hex);
        json_object_set_new(o, "sha256", json_string(hex));
    }
    if (x == NULL) {
        json_object_set_new(o, "error", json_string("not a certificate"));
        goto end;
    }
    if ((s = cli_name_str(X509_get_subject_name(x))) != NULL) {
        json_object_set_new(o, "subject", json_string(s));
        free(s);
    }
    if ((s = cli_name_str(X509_get_issuer_name(x))) != NULL) {
        json_object_set_new(o, "issuer", json_string(s));
        free(s);
    }
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1
        && strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        json_object_set_new(o, "not_before", json_string(tbuf));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1
        && strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        json_object_set_new(o, "not_after", json_string(tbuf));
    json_object_set_new(o, "ca", json_boolean(X509_check_ca(x) != 0));
 end:
    X509_free(x);
    ERR_clear_error();
    return o;
}

int cli_json_print(struct json_t *j)
{
    int ok = j != NULL && json_dumpf(j, stdout, JSON_INDENT(2)) == 0;

    if (ok)
        fputc('\n', stdout);
    json_decref(j);
    return ok;
}
