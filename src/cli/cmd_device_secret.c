/*
 * Device secrets for aliases in mac mode: `cmpca device add --secret-file
 * F | --generate-secret [--ref REF]`, `device set-secret` and `device
 * unlock`. The secret is sealed with the key-encryption key ([server]
 * secret_kek or --kek) before it reaches the store; a generated one is
 * printed once.
 */
#include "cli/cli.h"

#include "conf/conf.h"
#include "store/store.h"
#include "util/kek.h"
#include "util/secret.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Octets of a generated secret (printed as hex). */
#define DEVSEC_GEN_LEN 16

static int devsec_kek(const struct conf *conf, const char *spec, KEK **kek)
{
    const struct conf_section *server = conf_find(conf, "server", "");
    char err[256];

    if (spec == NULL && server != NULL)
        spec = conf_get(server, "secret_kek");
    if (spec == NULL) {
        fprintf(stderr, "cmpca device: a key-encryption key is needed: "
                "[server] secret_kek or --kek file:PATH|env:NAME\n");
        return CLI_CONFIG;
    }
    if (!kek_load(spec, kek, err, sizeof(err))) {
        fprintf(stderr, "cmpca device: %s\n", err);
        return CLI_CONFIG;
    }
    return CLI_OK;
}

static int devsec_ref_bad(const char *ref)
{
    size_t i, n = strlen(ref);

    if (n == 0 || n > STORE_SECRET_REF_MAX)
        return 1;
    for (i = 0; i < n; i++)
        if ((unsigned char)ref[i] < 0x20 || (unsigned char)ref[i] > 0x7e)
            return 1;
    return 0;
}

int cli_device_secret_put(const struct conf *conf, STORE_TX *tx,
                          long long device_id, const char *ident,
                          const struct cli_secret_opts *so, char *gen,
                          size_t genlen)
{
    KEK *kek = NULL;
    char buf[SECRET_MAX + 1], spec[4096], err[256], *details = NULL;
    unsigned char raw[DEVSEC_GEN_LEN], *sealed = NULL;
    size_t sealed_len = 0, len, i;
    const char *ref = so->ref != NULL ? so->ref : ident;
    enum store_rc rc;
    json_t *j = NULL;
    int ret;

    gen[0] = '\0';
    if ((so->secret_file != NULL) == so->generate) {
        fprintf(stderr, "cmpca device: one of --secret-file F and "
                "--generate-secret\n");
        return CLI_USAGE;
    }
    if (devsec_ref_bad(ref)) {
        fprintf(stderr, "cmpca device: the reference must be 1..%d printable "
                "ASCII characters\n", STORE_SECRET_REF_MAX);
        return CLI_USAGE;
    }
    if ((ret = devsec_kek(conf, so->kek, &kek)) != CLI_OK)
        return ret;
    ret = CLI_USAGE;
    if (so->generate) {
        if (RAND_bytes(raw, sizeof(raw)) <= 0 || genlen < 2 * sizeof(raw) + 1)
            goto end;
        for (i = 0; i < sizeof(raw); i++)
            snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    } else {
        snprintf(spec, sizeof(spec), "file:%s", so->secret_file);
        if (!secret_read(spec, "device secret", buf, sizeof(buf), err,
                         sizeof(err))) {
            fprintf(stderr, "cmpca device: %s\n", err);
            goto end;
        }
    }
    len = strlen(buf);
    if (len < 8) {
        fprintf(stderr, "cmpca device: a secret of at least 8 characters is "
                "needed\n");
        goto end;
    }
    ret = CLI_ERR;
    if (!kek_seal(kek, ref, (const unsigned char *)buf, len, &sealed,
                  &sealed_len))
        goto end;
    rc = store_device_secret_put(tx, device_id, ref, sealed, sealed_len);
    if (rc == STORE_EXISTS) {
        fprintf(stderr, "cmpca device: reference '%s' belongs to another "
                "device\n", ref);
        ret = CLI_EXISTS;
        goto end;
    }
    j = json_pack("{s:s}", "ref", ref);
    details = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), "device.secret.set", ident,
                                details);
    if (rc != STORE_OK) {
        ret = cli_dberr("device", "secret", tx, rc);
        goto end;
    }
    if (so->generate)
        snprintf(gen, genlen, "%s", buf);
    ret = CLI_OK;
 end:
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(raw, sizeof(raw));
    free(sealed);
    free(details);
    json_decref(j);
    kek_free(kek);
    return ret;
}

int cli_device_secret_unlock(STORE_TX *tx, long long device_id,
                             const char *ident)
{
    enum store_rc rc = store_device_secret_set(tx, device_id,
                                               STORE_SECRET_UNLOCK);

    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "cmpca device unlock: device '%s' has no secret\n",
                ident);
        return CLI_NOTFOUND;
    }
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), "device.secret.unlock",
                                ident, NULL);
    if (rc != STORE_OK)
        return cli_dberr("device", "unlock", tx, rc);
    return CLI_OK;
}

int cli_device_secret_json(STORE_TX *tx, long long device_id, json_t *obj)
{
    struct store_device_secret *s = NULL;
    json_t *j;

    if (store_device_secret_get(tx, device_id, NULL, &s) != STORE_OK)
        return 0;
    j = json_pack("{s:s, s:i, s:b, s:b}", "ref", s->ref, "failures",
                  s->failures, "locked", s->locked, "consumed", s->consumed);
    store_device_secret_free(s);
    if (j == NULL)
        return 0;
    json_object_set_new(obj, "secret", j);
    return 1;
}

/* Trims blanks around |s| in place. */
static char *devsec_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

int cli_device_secret_import(const struct conf *conf, STORE_TX *tx,
                             long long vendor_id, const char *path,
                             const char *kek_spec, long *count)
{
    struct store_device *d = NULL;
    KEK *kek = NULL;
    FILE *fp = NULL;
    char *line = NULL, *ident, *secret, *ref, *p;
    unsigned char *sealed = NULL;
    size_t cap = 0, sealed_len = 0;
    long lineno = 0;
    ssize_t r;
    enum store_rc rc;
    int ret, seen = 0;

    *count = 0;
    if ((ret = devsec_kek(conf, kek_spec, &kek)) != CLI_OK)
        return ret;
    ret = CLI_ERR;
    if ((fp = fopen(path, "r")) == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        goto end;
    }
    while ((r = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
            line[--r] = '\0';
        p = line;
        if (lineno == 1 && (unsigned char)p[0] == 0xef
            && (unsigned char)p[1] == 0xbb && (unsigned char)p[2] == 0xbf)
            p += 3;
        p = devsec_trim(p);
        if (*p == '\0' || *p == '#')
            continue;
        if (strchr(p, '"') != NULL) {
            fprintf(stderr, "%s:%ld: quoted fields are not read with "
                    "--with-secrets\n", path, lineno);
            goto end;
        }
        ident = p;
        secret = strchr(ident, ',');
        if (secret != NULL)
            *secret++ = '\0';
        ref = secret != NULL ? strchr(secret, ',') : NULL;
        if (ref != NULL)
            *ref++ = '\0';
        if (ref != NULL && (p = strchr(ref, ',')) != NULL)
            *p = '\0';          /* further columns are ignored */
        ident = devsec_trim(ident);
        if (!seen++ && strcasecmp(ident, "identifier") == 0)
            continue;          /* header line */
        secret = secret != NULL ? devsec_trim(secret) : NULL;
        ref = ref != NULL && *devsec_trim(ref) != '\0' ? devsec_trim(ref)
                                                       : ident;
        if (secret == NULL || strlen(secret) < 8) {
            fprintf(stderr, "%s:%ld: a secret of at least 8 characters is "
                    "needed in the second column\n", path, lineno);
            goto end;
        }
        if (devsec_ref_bad(ref)) {
            fprintf(stderr, "%s:%ld: the reference must be 1..%d printable "
                    "ASCII characters\n", path, lineno, STORE_SECRET_REF_MAX);
            goto end;
        }
        if ((rc = store_device_get_by_ident(tx, vendor_id, ident, &d))
            != STORE_OK) {
            ret = cli_dberr("device", "import", tx, rc);
            goto end;
        }
        if (!kek_seal(kek, ref, (const unsigned char *)secret, strlen(secret),
                      &sealed, &sealed_len))
            goto end;
        OPENSSL_cleanse(secret, strlen(secret));
        rc = store_device_secret_put(tx, d->id, ref, sealed, sealed_len);
        free(sealed);
        sealed = NULL;
        store_device_free(d);
        d = NULL;
        if (rc == STORE_EXISTS) {
            fprintf(stderr, "%s:%ld: reference '%s' belongs to another "
                    "device\n", path, lineno, ref);
            ret = CLI_EXISTS;
            goto end;
        }
        if (rc != STORE_OK) {
            ret = cli_dberr("device", "import", tx, rc);
            goto end;
        }
        (*count)++;
    }
    ret = CLI_OK;
 end:
    if (line != NULL)
        OPENSSL_cleanse(line, cap);
    free(line);
    free(sealed);
    store_device_free(d);
    if (fp != NULL)
        fclose(fp);
    kek_free(kek);
    return ret;
}
