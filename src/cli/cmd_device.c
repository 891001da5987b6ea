/*
 * `cmpca device`: the allow-list of devices that may enroll, per vendor:
 * add one, bulk import a CSV (all-or-nothing), list, show, disable/enable,
 * remove; disable and remove revoke the device's operator certificates.
 */
#include "cli/cli.h"

#include "ca/ca.h"
#include "conf/conf.h"
#include "store/store.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest identifier accepted (the store refuses longer ones too). */
#define DEVICE_IDENT_MAX 1024
/* Devices listed when --limit is not given. */
#define DEVICE_LIST_DEFAULT 1000L

static void device_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca device add --vendor V IDENTIFIER [--secret-file F | --generate-secret]\n"
            "                        [--ref REF] [--kek SPEC]\n"
            "       cmpca device set-secret --vendor V IDENTIFIER (--secret-file F | --generate-secret)\n"
            "                        [--ref REF] [--kek SPEC]\n"
            "       cmpca device unlock --vendor V IDENTIFIER\n"
            "       cmpca device import --vendor V FILE [--with-secrets [--kek SPEC]]\n"
            "       cmpca device list [--vendor V] [--state S] [--limit N (default 1000, 0 = all)]\n"
            "                         [--offset N] [--json]\n"
            "       cmpca device show --vendor V IDENTIFIER [--json]\n"
            "       cmpca device disable --vendor V IDENTIFIER [--reason R] [--keep-certs]\n"
            "       cmpca device enable --vendor V IDENTIFIER\n"
            "       cmpca device remove --vendor V IDENTIFIER [--reason R] [--keep-certs]\n"
            "\n"
            "IDENTIFIER is what the vendor certificate carries (its subject\n"
            "serialNumber). import reads one identifier per line: the first\n"
            "comma-separated column; an optional header line 'identifier',\n"
            "'#' comments and blank lines are skipped. FILE '-' is stdin.\n"
            "Either every line is imported or nothing is.\n"
            "disable and remove (a device returned, sold or scrapped) revoke\n"
            "its valid operator certificates in the same transaction (reason\n"
            "--reason, default cessationOfOperation; a new CRL is issued),\n"
            "unless --keep-certs.\n"
            "import --with-secrets reads identifier,secret[,ref] lines (no\n"
            "quoting) and gives every device its secret in the same transaction.\n"
            "--secret-file F (first line) or --generate-secret (printed once)\n"
            "gives the device a one-time secret for aliases in mac mode,\n"
            "referenced by REF (default: IDENTIFIER) in the requests'\n"
            "senderKID; it is stored sealed with [server] secret_kek (or\n"
            "--kek file:PATH|env:NAME). unlock clears its wrong-MAC count.\n"
            "States: registered pending enrolled revoked disabled.\n");
}

struct device_opts {
    const char *vendor;
    const char *state;
    const char *pos;
    const char *reason;       /* disable/remove: CRLReason name or number */
    long limit, offset;
    int json, keep_certs, with_secrets;
    struct cli_secret_opts sec;
};

static int device_parse(int argc, char **argv, struct device_opts *o)
{
    static const struct option opts[] = {
        { "vendor", required_argument, NULL, 'v' },
        { "state",  required_argument, NULL, 's' },
        { "limit",  required_argument, NULL, 'l' },
        { "offset", required_argument, NULL, 'o' },
        { "json",   no_argument,       NULL, 'j' },
        { "reason", required_argument, NULL, 'r' },
        { "keep-certs", no_argument,   NULL, 'k' },
        { "secret-file", required_argument, NULL, 'S' },
        { "generate-secret", no_argument, NULL, 'G' },
        { "ref", required_argument,    NULL, 'R' },
        { "kek", required_argument,    NULL, 'K' },
        { "with-secrets", no_argument, NULL, 'W' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    char *end;
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "v:s:l:o:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            o->reason = optarg;
            break;
        case 'k':
            o->keep_certs = 1;
            break;
        case 'S':
            o->sec.secret_file = optarg;
            break;
        case 'G':
            o->sec.generate = 1;
            break;
        case 'R':
            o->sec.ref = optarg;
            break;
        case 'K':
            o->sec.kek = optarg;
            break;
        case 'W':
            o->with_secrets = 1;
            break;
        case 'v':
            o->vendor = optarg;
            break;
        case 's':
            o->state = optarg;
            break;
        case 'l':
        case 'o':
            {
                long v = strtol(optarg, &end, 10);

                if (*optarg == '\0' || *end != '\0' || v < 0) {
                    fprintf(stderr, "cmpca device: bad number '%s'\n", optarg);
                    return CLI_USAGE;
                }
                if (c == 'l')
                    o->limit = v;
                else
                    o->offset = v;
            }
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            device_usage(stdout);
            return -1;
        default:
            device_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        o->pos = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "cmpca device: unexpected argument '%s'\n",
                argv[optind]);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Checks an identifier typed or read: 1..1024 octets, no control chars. */
static const char *device_ident_bad(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return "empty identifier";
    if (len > DEVICE_IDENT_MAX)
        return "identifier longer than 1024 characters";
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "control character in identifier";
    return NULL;
}

/* Looks vendor |name| up; prints an error and returns the exit code. */
static int device_vendor(STORE_TX *tx, const char *name, int64_t *id)
{
    struct store_vendor *v = NULL;
    enum store_rc rc;

    *id = 0;
    if (name == NULL) {
        fprintf(stderr, "cmpca device: --vendor is required\n");
        return CLI_USAGE;
    }
    rc = store_vendor_get_by_name(tx, name, &v);
    if (rc != STORE_OK) {
        fprintf(stderr, "cmpca device: vendor '%s': %s\n", name,
                rc == STORE_NOTFOUND ? "no such vendor" : store_rc_str(rc));
        return cli_store_exit(rc);
    }
    *id = v->id;
    store_vendor_free(v);
    return CLI_OK;
}

/* Prints a store failure and returns the exit code for it. */
static int device_dberr(const char *what, STORE_TX *tx, enum store_rc rc)
{
    return cli_dberr("device", what, tx, rc);
}

/* Finds the device named by |o| (--vendor, IDENTIFIER) in |tx|; prints
 * an error for command |act| and returns its exit code otherwise. */
static int device_find(STORE_TX *tx, const char *act,
                       const struct device_opts *o, struct store_device **d)
{
    enum store_rc rc;
    int64_t vid;
    int ret;

    if ((ret = device_vendor(tx, o->vendor, &vid)) != CLI_OK)
        return ret;
    if ((rc = store_device_get_by_ident(tx, vid, o->pos, d)) == STORE_OK)
        return CLI_OK;
    if (rc == STORE_NOTFOUND)
        fprintf(stderr, "cmpca device %s: no device '%s' for vendor '%s'\n",
                act, o->pos, o->vendor);
    else
        device_dberr(act, tx, rc);
    return cli_store_exit(rc);
}


static int device_add(const struct conf *conf, STORE *st,
                      const struct device_opts *o)
{
    char gen[64] = "";
    int with_secret = o->sec.secret_file != NULL || o->sec.generate
        || o->sec.ref != NULL;
    STORE_TX *tx = NULL;
    const char *bad;
    int64_t vid, id = 0;
    enum store_rc rc;
    int ret;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca device add: IDENTIFIER required\n");
        return CLI_USAGE;
    }
    if ((bad = device_ident_bad(o->pos, strlen(o->pos))) != NULL) {
        fprintf(stderr, "cmpca device add: %s\n", bad);
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return device_dberr("add", NULL, rc);
    if ((ret = device_vendor(tx, o->vendor, &vid)) != CLI_OK)
        goto end;
    rc = store_device_insert(tx, vid, o->pos, &id);
    if (rc == STORE_EXISTS) {
        fprintf(stderr, "cmpca device add: device '%s' of vendor '%s' is "
                "registered already\n", o->pos, o->vendor);
        ret = CLI_EXISTS;
        goto end;
    }
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), "device.add", o->pos,
                                NULL);
    if (rc == STORE_OK && with_secret
        && (ret = cli_device_secret_put(conf, tx, id, o->pos, &o->sec, gen,
                                        sizeof(gen))) != CLI_OK)
        goto end;
    if (rc == STORE_OK) {
        rc = store_commit(tx);
        tx = NULL;
    }
    if (rc != STORE_OK) {
        ret = device_dberr("add", tx, rc);
        goto end;
    }
    printf("device '%s' of vendor '%s' registered (id %lld)\n", o->pos,
           o->vendor, (long long)id);
    if (with_secret)
        printf("secret reference: %s\n", o->sec.ref != NULL ? o->sec.ref
                                                             : o->pos);
    if (gen[0] != '\0')
        printf("secret: %s\n", gen);
    OPENSSL_cleanse(gen, sizeof(gen));
    ret = CLI_OK;
 end:
    store_rollback(tx);
    return ret;
}

/* State of the CSV reader used as the import iterator. */
struct device_csv {
    FILE *fp;
    const char *name;
    char *line;              /* getline buffer */
    size_t cap;
    char *ident;             /* current identifier (unquoted copy) */
    size_t identcap;
    long lineno;
    int seen_data;           /* a non-comment line was read */
    char err[1200];
    off_t size, done;        /* for the progress bar */
    int progress;
    uint64_t n;
};

/* Draws "importing: 42%  123456 lines" on stderr. */
static void device_progress(struct device_csv *c, int final)
{
    int pct = c->size > 0 ? (int)(c->done * 100 / c->size) : 0;

    fprintf(stderr, "\rimporting %s: %3d%%  %llu identifiers%s",
            c->name, final ? 100 : pct, (unsigned long long)c->n,
            final ? "\n" : "");
}

/* Unquotes a CSV field starting at |p| (after leading blanks) into
 * c->ident; returns its length or -1 with c->err set. */
static long device_csv_field(struct device_csv *c, const char *p)
{
    const char *e;
    size_t len = 0, need = strlen(p) + 1;
    char *nb;

    if (need > c->identcap) {
        if ((nb = realloc(c->ident, need)) == NULL) {
            snprintf(c->err, sizeof(c->err), "out of memory");
            return -1;
        }
        c->ident = nb;
        c->identcap = need;
    }
    if (*p == '"') {
        for (p++;; p++) {
            if (*p == '\0') {
                snprintf(c->err, sizeof(c->err),
                         "%s:%ld: unterminated quoted field", c->name,
                         c->lineno);
                return -1;
            }
            if (*p == '"') {
                if (p[1] == '"') {
                    c->ident[len++] = '"';
                    p++;
                    continue;
                }
                p++;
                break;
            }
            c->ident[len++] = *p;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0' && *p != ',') {
            snprintf(c->err, sizeof(c->err),
                     "%s:%ld: text after a quoted field", c->name, c->lineno);
            return -1;
        }
    } else {
        e = strchr(p, ',');
        len = e != NULL ? (size_t)(e - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        memcpy(c->ident, p, len);
    }
    c->ident[len] = '\0';
    return (long)len;
}

/* store_ident_next_fn over the CSV file. */
static int device_csv_next(void *arg, const char **ident, size_t *len)
{
    struct device_csv *c = arg;
    const char *bad;
    ssize_t r;
    long l;
    char *p;

    for (;;) {
        r = getline(&c->line, &c->cap, c->fp);
        if (r < 0) {
            if (ferror(c->fp)) {
                snprintf(c->err, sizeof(c->err), "%s: read error", c->name);
                return -1;
            }
            return 0;
        }
        c->lineno++;
        c->done += r;
        if (r > 4 * DEVICE_IDENT_MAX + 4096) {
            snprintf(c->err, sizeof(c->err), "%s:%ld: line too long",
                     c->name, c->lineno);
            return -1;
        }
        if ((size_t)r != strlen(c->line)) {
            snprintf(c->err, sizeof(c->err), "%s:%ld: NUL byte in line",
                     c->name, c->lineno);
            return -1;
        }
        while (r > 0 && (c->line[r - 1] == '\n' || c->line[r - 1] == '\r'))
            c->line[--r] = '\0';
        p = c->line;
        if (c->lineno == 1 && (unsigned char)p[0] == 0xef
            && (unsigned char)p[1] == 0xbb && (unsigned char)p[2] == 0xbf)
            p += 3; /* UTF-8 byte order mark */
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if ((l = device_csv_field(c, p)) < 0)
            return -1;
        if (!c->seen_data) {
            c->seen_data = 1;
            if (strcasecmp(c->ident, "identifier") == 0)
                continue; /* header line */
        }
        if ((bad = device_ident_bad(c->ident, (size_t)l)) != NULL) {
            snprintf(c->err, sizeof(c->err), "%s:%ld: %s", c->name,
                     c->lineno, bad);
            return -1;
        }
        c->n++;
        if (c->progress && (c->n & 0xffff) == 0)
            device_progress(c, 0);
        *ident = c->ident;
        *len = (size_t)l;
        return 1;
    }
}

static int device_import(const struct conf *conf, STORE *st,
                         const struct device_opts *o)
{
    long nsec = 0;
    struct device_csv c;
    struct store_device *d = NULL;
    STORE_TX *tx = NULL, *rtx = NULL;
    struct stat sb;
    char details[1400], *dup = NULL;
    uint64_t count = 0;
    int64_t vid;
    enum store_rc rc;
    int ret = CLI_ERR;

    memset(&c, 0, sizeof(c));
    if (o->pos == NULL) {
        fprintf(stderr, "cmpca device import: FILE required\n");
        return CLI_USAGE;
    }
    if (o->with_secrets && strcmp(o->pos, "-") == 0) {
        fprintf(stderr, "cmpca device import: --with-secrets reads a file "
                "(not stdin)\n");
        return CLI_USAGE;
    }
    c.name = strcmp(o->pos, "-") == 0 ? "stdin" : o->pos;
    c.fp = strcmp(o->pos, "-") == 0 ? stdin : fopen(o->pos, "r");
    if (c.fp == NULL) {
        fprintf(stderr, "cmpca device import: %s: cannot open\n", o->pos);
        return CLI_ERR;
    }
    if (fstat(fileno(c.fp), &sb) == 0 && S_ISREG(sb.st_mode))
        c.size = sb.st_size;
    c.progress = isatty(STDERR_FILENO);
    if ((rc = store_begin(st, &tx)) != STORE_OK) {
        ret = device_dberr("import", NULL, rc);
        goto end;
    }
    if ((ret = device_vendor(tx, o->vendor, &vid)) != CLI_OK)
        goto end;
    rc = store_device_import(tx, vid, device_csv_next, &c, &count);
    if (c.progress)
        device_progress(&c, rc == STORE_OK);
    if (rc == STORE_EXISTS) {
        /* The culprit is the identifier read last. Roll back, then tell a
         * duplicate inside the file from one already in the database. */
        dup = strdup(c.ident);
        store_rollback(tx);
        tx = NULL;
        if (dup != NULL && store_begin_read(st, &rtx) == STORE_OK
            && store_device_get_by_ident(rtx, vid, dup, &d) == STORE_OK)
            fprintf(stderr, "%s:%ld: identifier '%s' is already registered "
                    "for vendor '%s'\n", c.name, c.lineno, dup, o->vendor);
        else
            fprintf(stderr, "%s:%ld: duplicate identifier '%s'\n", c.name,
                    c.lineno, dup != NULL ? dup : "?");
        fprintf(stderr, "cmpca device import: nothing imported\n");
        ret = CLI_EXISTS;
        goto end;
    }
    if (rc != STORE_OK) {
        if (c.err[0] != '\0') {
            fprintf(stderr, "%s\ncmpca device import: nothing imported\n",
                    c.err);
            ret = CLI_ERR;
        } else {
            ret = device_dberr("import", tx, rc);
        }
        goto end;
    }
    if (o->with_secrets
        && (ret = cli_device_secret_import(conf, tx, vid, o->pos, o->sec.kek,
                                           &nsec)) != CLI_OK) {
        fprintf(stderr, "cmpca device import: nothing imported\n");
        goto end;
    }
    snprintf(details, sizeof(details), "{\"count\":%llu,\"lines\":%ld,"
             "\"secrets\":%ld}", (unsigned long long)count, c.lineno, nsec);
    if ((rc = store_audit_append(tx, cli_actor(), "device.import", o->vendor,
                                 details)) != STORE_OK) {
        ret = device_dberr("import", tx, rc);
        goto end;
    }
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK) {
        ret = device_dberr("import", NULL, rc);
        goto end;
    }
    printf("%llu device%s of vendor '%s' imported from %s\n",
           (unsigned long long)count, count == 1 ? "" : "s", o->vendor,
           c.name);
    if (o->with_secrets)
        printf("%ld secret%s set\n", nsec, nsec == 1 ? "" : "s");
    ret = CLI_OK;
 end:
    store_device_free(d);
    store_rollback(rtx);
    store_rollback(tx);
    if (c.fp != NULL && c.fp != stdin)
        fclose(c.fp);
    free(c.line);
    free(c.ident);
    free(dup);
    return ret;
}

/* JSON object for device |d| (vendor name given). */
static json_t *device_json(const struct store_device *d, const char *vendor)
{
    json_t *o = json_object();
    char tbuf[32];

    json_object_set_new(o, "id", json_integer(d->id));
    json_object_set_new(o, "vendor", json_string(vendor ? vendor : ""));
    json_object_set_new(o, "identifier", json_string(d->identifier));
    json_object_set_new(o, "state",
                        json_string(store_device_state_str(d->state)
                                    ? store_device_state_str(d->state)
                                    : "?"));
    json_object_set_new(o, "cert_id", d->cert_id > 0
                        ? json_integer(d->cert_id) : json_null());
    cli_time(d->created, tbuf, sizeof(tbuf));
    json_object_set_new(o, "created", json_string(tbuf));
    cli_time(d->updated, tbuf, sizeof(tbuf));
    json_object_set_new(o, "updated", json_string(tbuf));
    return o;
}

static int device_list(STORE *st, const struct device_opts *o)
{
    struct store_device_filter f;
    struct store_device **v = NULL;
    struct store_vendor **vendors = NULL;
    STORE_TX *tx = NULL;
    json_t *arr = NULL;
    size_t n = 0, nv = 0, i, k;
    const char *vname;
    enum store_rc rc;
    int ret;

    store_device_filter_init(&f);
    f.limit = o->limit >= 0 ? o->limit : DEVICE_LIST_DEFAULT;
    f.offset = o->offset;
    if (o->state != NULL
        && (f.state = store_device_state_parse(o->state)) < 0) {
        fprintf(stderr, "cmpca device list: unknown state '%s'\n", o->state);
        return CLI_USAGE;
    }
    if ((rc = store_begin_read(st, &tx)) != STORE_OK)
        return device_dberr("list", NULL, rc);
    if (o->vendor != NULL
        && (ret = device_vendor(tx, o->vendor, &f.vendor_id)) != CLI_OK)
        goto end;
    if ((rc = store_vendor_list(tx, &vendors, &nv)) != STORE_OK
        || (rc = store_device_list(tx, &f, &v, &n)) != STORE_OK) {
        ret = device_dberr("list", tx, rc);
        goto end;
    }
    if (o->json)
        arr = json_array();
    else
        printf("%-8s %-20s %-32s %-10s %s\n", "ID", "VENDOR", "IDENTIFIER",
               "STATE", "CERT");
    for (i = 0; i < n; i++) {
        vname = "?";
        for (k = 0; k < nv; k++)
            if (vendors[k]->id == v[i]->vendor_id)
                vname = vendors[k]->name;
        if (o->json) {
            json_array_append_new(arr, device_json(v[i], vname));
        } else {
            printf("%-8lld %-20s %-32s %-10s ", (long long)v[i]->id, vname,
                   v[i]->identifier, store_device_state_str(v[i]->state));
            if (v[i]->cert_id > 0)
                printf("%lld\n", (long long)v[i]->cert_id);
            else
                printf("-\n");
        }
    }
    if (o->json) {
        cli_json_print(arr);
        arr = NULL;
    }
    if (o->limit < 0 && n == (size_t)f.limit)
        fprintf(stderr, "cmpca device list: showing the first %ld; use "
                "--limit N / --offset N (--limit 0 for all)\n", f.limit);
    ret = CLI_OK;
 end:
    json_decref(arr);
    store_device_list_free(v, n);
    store_vendor_list_free(vendors, nv);
    store_rollback(tx);
    return ret;
}

/* The certificates |v| (|n|) of a device as a JSON array: id, serial,
 * status, not_after and the vendor certificate each was issued against. */
static json_t *device_certs_json(struct store_cert **v, size_t n)
{
    json_t *arr = json_array();
    char hex[2 * STORE_SERIAL_MAX + 1], tbuf[32];
    size_t i;

    for (i = 0; arr != NULL && i < n; i++) {
        json_t *o = json_object();

        cli_hex(v[i]->serial, v[i]->serial_len, hex);
        json_object_set_new(o, "id", json_integer(v[i]->id));
        json_object_set_new(o, "serial", json_string(hex));
        json_object_set_new(o, "status", json_string(
                                v[i]->status == STORE_CERT_REVOKED ? "revoked"
                                                                   : "valid"));
        cli_time(v[i]->not_after, tbuf, sizeof(tbuf));
        json_object_set_new(o, "not_after", json_string(tbuf));
        if (v[i]->has_vendor) {
            json_t *vc = json_object();

            cli_hex(v[i]->vendor_sha256, STORE_SHA256_LEN, hex);
            json_object_set_new(vc, "sha256", json_string(hex));
            cli_hex(v[i]->vendor_serial, v[i]->vendor_serial_len, hex);
            json_object_set_new(vc, "serial", json_string(hex));
            json_object_set_new(o, "vendor_cert", vc);
        } else {
            json_object_set_new(o, "vendor_cert", json_null());
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

/* Prints the "certs" array of device_certs_json(). */
static void device_certs_print(const json_t *arr)
{
    const json_t *o, *vc;
    size_t i;

    json_array_foreach(arr, i, o) {
        vc = json_object_get(o, "vendor_cert");
        printf("certificate %lld: serial %s, %s, until %s\n",
               (long long)json_integer_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "serial")),
               json_string_value(json_object_get(o, "status")),
               json_string_value(json_object_get(o, "not_after")));
        if (json_is_object(vc))
            printf("  issued against vendor certificate sha256 %s serial %s\n",
                   json_string_value(json_object_get(vc, "sha256")),
                   json_string_value(json_object_get(vc, "serial")));
        else
            printf("  issued against vendor certificate: not recorded\n");
    }
}

static int device_show(STORE *st, const struct device_opts *o)
{
    struct store_device *d = NULL;
    struct store_cert *c = NULL, **all = NULL;
    size_t nall = 0;
    STORE_TX *tx = NULL;
    json_t *j = NULL;
    char hex[2 * STORE_SERIAL_MAX + 1], tbuf[32];
    enum store_rc rc;
    int ret;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca device show: IDENTIFIER required\n");
        return CLI_USAGE;
    }
    if ((rc = store_begin_read(st, &tx)) != STORE_OK)
        return device_dberr("show", NULL, rc);
    if ((ret = device_find(tx, "show", o, &d)) != CLI_OK)
        goto end;
    j = device_json(d, o->vendor);
    if (d->cert_id > 0 && store_cert_get(tx, d->cert_id, &c) == STORE_OK) {
        json_t *cj = json_object();

        cli_hex(c->serial, c->serial_len, hex);
        json_object_set_new(cj, "serial", json_string(hex));
        json_object_set_new(cj, "subject", json_string(c->subject));
        cli_time(c->not_after, tbuf, sizeof(tbuf));
        json_object_set_new(cj, "not_after", json_string(tbuf));
        json_object_set_new(cj, "status", json_string(
                                c->status == STORE_CERT_REVOKED ? "revoked"
                                                                : "valid"));
        json_object_set_new(j, "cert", cj);
    }
    {
        struct store_cert_filter f;

        store_cert_filter_init(&f);
        f.device_id = d->id;
        f.skip_der = 1;
        if ((rc = store_cert_list(tx, &f, &all, &nall)) != STORE_OK) {
            ret = device_dberr("show", tx, rc);
            goto end;
        }
        json_object_set_new(j, "certs", device_certs_json(all, nall));
    }
    (void)cli_device_secret_json(tx, d->id, j);
    if (o->json) {
        cli_json_print(j);
        j = NULL;
    } else {
        printf("device:     %s (id %lld)\nvendor:     %s\nstate:      %s\n"
               "created:    %s\n",
               d->identifier, (long long)d->id, o->vendor,
               store_device_state_str(d->state),
               json_string_value(json_object_get(j, "created")));
        printf("updated:    %s\n",
               json_string_value(json_object_get(j, "updated")));
        if (c != NULL)
            printf("cert:       %lld serial %s, %s, until %s\n  subject:  %s\n",
                   (long long)c->id, hex,
                   c->status == STORE_CERT_REVOKED ? "revoked" : "valid", tbuf,
                   c->subject);
        device_certs_print(json_object_get(j, "certs"));
        if (json_object_get(j, "secret") != NULL) {
            json_t *sj = json_object_get(j, "secret");

            printf("secret:     reference %s, %lld wrong MAC%s%s%s\n",
                   json_string_value(json_object_get(sj, "ref")),
                   (long long)json_integer_value(json_object_get(sj,
                                                                 "failures")),
                   json_integer_value(json_object_get(sj, "failures")) == 1
                       ? "" : "s",
                   json_is_true(json_object_get(sj, "locked"))
                       ? ", locked" : "",
                   json_is_true(json_object_get(sj, "consumed"))
                       ? ", consumed" : "");
        }
    }
    ret = CLI_OK;
 end:
    json_decref(j);
    store_cert_list_free(all, nall);
    store_cert_free(c);
    store_device_free(d);
    store_rollback(tx);
    return ret;
}

/* disable, enable, remove: one device, one audited change. */
static int device_change(const struct conf *conf, STORE *st,
                         const struct device_opts *o, const char *act)
{
    struct store_device *d = NULL;
    STORE_TX *tx = NULL;
    char details[160], action[32];
    enum store_rc rc;
    int ret, to, reason = 5;                /* cessationOfOperation */
    int revoke = strcmp(act, "enable") != 0 && !o->keep_certs;
    long nrev = 0;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca device %s: IDENTIFIER required\n", act);
        return CLI_USAGE;
    }
    if (o->reason != NULL && (reason = ca_reason_parse(o->reason)) < 0) {
        fprintf(stderr, "cmpca device %s: unknown reason '%s'\n", act,
                o->reason);
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return device_dberr(act, NULL, rc);
    if ((ret = device_find(tx, act, o, &d)) != CLI_OK)
        goto end;
    if (revoke) {
        struct store_cert_filter f;

        store_cert_filter_init(&f);
        f.device_id = d->id;
        if ((ret = cli_revoke_matching(conf, st, tx, &f, reason, &nrev))
            != CLI_OK)
            goto end;
    }
    if (strcmp(act, "remove") == 0) {
        rc = store_device_delete(tx, d->id);
        to = -1;
    } else if (strcmp(act, "disable") == 0) {
        if (d->state == STORE_DEV_DISABLED && nrev == 0) {
            printf("device '%s' is disabled already\n", o->pos);
            ret = CLI_OK;
            goto end;
        }
        to = STORE_DEV_DISABLED;
        rc = d->state == STORE_DEV_DISABLED ? STORE_OK
            : store_device_set_state(tx, d->id, d->state, to,
                                     STORE_KEEP_CERT);
    } else {
        if (d->state != STORE_DEV_DISABLED) {
            printf("device '%s' is not disabled (%s)\n", o->pos,
                   store_device_state_str(d->state));
            ret = CLI_OK;
            goto end;
        }
        to = d->cert_id > 0 ? STORE_DEV_ENROLLED : STORE_DEV_REGISTERED;
        rc = store_device_set_state(tx, d->id, d->state, to,
                                    STORE_KEEP_CERT);
    }
    snprintf(details, sizeof(details), "{\"vendor_id\":%lld,\"from\":\"%s\","
             "\"certs_revoked\":%ld,\"reason\":%d}", (long long)d->vendor_id,
             store_device_state_str(d->state), nrev, revoke ? reason : -1);
    snprintf(action, sizeof(action), "device.%s", act);
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), action, o->pos, details);
    if (rc == STORE_OK) {
        rc = store_commit(tx);
        tx = NULL;
    }
    if (rc != STORE_OK) {
        ret = device_dberr(act, tx, rc);
        goto end;
    }
    if (to < 0)
        printf("device '%s' of vendor '%s' removed\n", o->pos, o->vendor);
    else
        printf("device '%s' of vendor '%s': %s -> %s\n", o->pos, o->vendor,
               store_device_state_str(d->state), store_device_state_str(to));
    if (revoke)
        printf("%ld operator certificate%s revoked (%s)%s\n", nrev,
               nrev == 1 ? "" : "s", ca_reason_str(reason),
               nrev > 0 ? "; new CRL issued" : "");
    ret = CLI_OK;
 end:
    store_device_free(d);
    store_rollback(tx);
    return ret;
}

/* `device set-secret` and `device unlock`. */
static int device_secret(const struct conf *conf, STORE *st,
                         const struct device_opts *o, const char *act)
{
    struct store_device *d = NULL;
    STORE_TX *tx = NULL;
    char gen[64] = "";
    enum store_rc rc;
    int ret;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca device %s: IDENTIFIER required\n", act);
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return device_dberr(act, NULL, rc);
    if ((ret = device_find(tx, act, o, &d)) != CLI_OK)
        goto end;
    ret = strcmp(act, "unlock") == 0
        ? cli_device_secret_unlock(tx, d->id, o->pos)
        : cli_device_secret_put(conf, tx, d->id, o->pos, &o->sec, gen,
                                sizeof(gen));
    if (ret != CLI_OK)
        goto end;
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK) {
        ret = device_dberr(act, NULL, rc);
        goto end;
    }
    if (strcmp(act, "unlock") == 0)
        printf("device '%s' of vendor '%s': secret unlocked\n", o->pos,
               o->vendor);
    else
        printf("device '%s' of vendor '%s': new secret, reference %s\n",
               o->pos, o->vendor, o->sec.ref != NULL ? o->sec.ref : o->pos);
    if (gen[0] != '\0')
        printf("secret: %s\n", gen);
    ret = CLI_OK;
 end:
    OPENSSL_cleanse(gen, sizeof(gen));
    store_device_free(d);
    store_rollback(tx);
    return ret;
}

int cli_device(int argc, char **argv)
{
    static const char *const acts[] = {
        "add", "import", "list", "show", "disable", "enable", "remove",
        "set-secret", "unlock", NULL
    };
    struct device_opts o;
    struct conf *conf = NULL;
    STORE *st = NULL;
    const char *act;
    int ret;

    memset(&o, 0, sizeof(o));
    o.limit = -1;
    if ((ret = cli_pick_action(argc, argv, "device", acts, device_usage,
                               &act)) != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    if ((ret = device_parse(argc - 1, argv + 1, &o)) != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    if (strcmp(act, "list") == 0 && o.pos != NULL) {
        fprintf(stderr, "cmpca device list: unexpected argument '%s'\n",
                o.pos);
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK)
        return ret;
    if (strcmp(act, "add") == 0)
        ret = device_add(conf, st, &o);
    else if (strcmp(act, "import") == 0)
        ret = device_import(conf, st, &o);
    else if (strcmp(act, "list") == 0)
        ret = device_list(st, &o);
    else if (strcmp(act, "show") == 0)
        ret = device_show(st, &o);
    else if (strcmp(act, "set-secret") == 0 || strcmp(act, "unlock") == 0)
        ret = device_secret(conf, st, &o, act);
    else
        ret = device_change(conf, st, &o, act);
    store_close(st);
    conf_free(conf);
    return ret;
}
