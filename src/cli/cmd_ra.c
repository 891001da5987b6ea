/*
 * `cmpca ra`: the registry of registration authorities (known by their
 * certificate) that may send requests on behalf of devices: their aliases,
 * profiles, operations and raVerified right; add, list, show, disable,
 * enable, remove, each change with its audit row in the same transaction.
 */
#include "cli/cli.h"

#include "store/store.h"
#include "util/x509_der.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest alias or profile name (as the HTTP routing and [profile]). */
#define RA_LABEL_MAX 64
/* Room for every operation name, comma-separated. */
#define RA_OPS_BUF 32

static void ra_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ra add --name NAME --cert FILE.pem --alias A [--alias B ...]\n"
            "                    [--profile P ...] [--op ir,cr,p10cr,kur,rr]\n"
            "                    [--ra-verified]\n"
            "       cmpca ra list [--json]\n"
            "       cmpca ra show NAME [--json]\n"
            "       cmpca ra disable NAME\n"
            "       cmpca ra enable NAME\n"
            "       cmpca ra remove NAME\n"
            "\n"
            "An RA is known by its certificate (matched by SHA-256 when it\n"
            "protects a request) and may act only for the aliases listed,\n"
            "with the profiles listed (none, or \"*\": any profile of the\n"
            "alias) and the operations listed (default: all of ir, cr,\n"
            "p10cr, kur, rr). --ra-verified lets it assert raVerified POP\n"
            "(its certificate must also carry id-kp-cmcRA). A disabled RA\n"
            "stays registered, marked disabled, until enabled.\n");
}

struct ra_opts {
    const char *name, *cert, *pos, *ops;
    char **alias, **profile;
    size_t nalias, nprofile;
    int json, ra_verified;
};

/* Appends |s| to the growing array (*v, *n); returns 1 or 0. */
static int ra_push(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

    if (nv == NULL)
        return 0;
    *v = nv;
    (*v)[(*n)++] = s;
    return 1;
}

static int ra_parse(int argc, char **argv, struct ra_opts *o, int allow_pos)
{
    static const struct option opts[] = {
        { "name",        required_argument, NULL, 'n' },
        { "cert",        required_argument, NULL, 'c' },
        { "alias",       required_argument, NULL, 'a' },
        { "profile",     required_argument, NULL, 'p' },
        { "op",          required_argument, NULL, 'o' },
        { "ra-verified", no_argument,       NULL, 'r' },
        { "json",        no_argument,       NULL, 'j' },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "n:c:a:p:o:rjh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->name = optarg;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'a':
            if (!ra_push(&o->alias, &o->nalias, optarg))
                return CLI_ERR;
            break;
        case 'p':
            if (!ra_push(&o->profile, &o->nprofile, optarg))
                return CLI_ERR;
            break;
        case 'o':
            o->ops = optarg;
            break;
        case 'r':
            o->ra_verified = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            ra_usage(stdout);
            return -1;
        default:
            ra_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (allow_pos && optind < argc)
        o->pos = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "cmpca ra: unexpected argument '%s'\n", argv[optind]);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int ra_dberr(const char *what, STORE_TX *tx, enum store_rc rc)
{
    return cli_dberr("ra", what, tx, rc);
}

/* 1 if |s| is an alias/profile label: 1-64 of [A-Za-z0-9._-]. */
static int ra_label_ok(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= RA_LABEL_MAX
        && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-") == n;
}

/* 1 if certificate |der| lists id-kp-cmcRA in its extended key usage. */
static int ra_cert_has_cmcra(const unsigned char *der, size_t len)
{
    X509 *x = x509_der_get1(der, len);
    EXTENDED_KEY_USAGE *eku = NULL;
    int i, found = 0;

    if (x != NULL)
        eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++)
        if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_cmcRA)
            found = 1;
    EXTENDED_KEY_USAGE_free(eku);
    X509_free(x);
    ERR_clear_error();
    return found;
}

/* A JSON array of the |n| strings of |v|. */
static json_t *ra_strs_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The registry fields of |ra| shared by the JSON output and the audit
 * details: aliases, profiles, operations, ra_verified. */
static void ra_json_fields(json_t *o, const struct store_ra *ra)
{
    char ops[RA_OPS_BUF];

    json_object_set_new(o, "aliases", ra_strs_json(ra->aliases,
                                                   ra->naliases));
    json_object_set_new(o, "profiles", ra_strs_json(ra->profiles,
                                                    ra->nprofiles));
    if (!store_ra_ops_format(ra->ops, ops, sizeof(ops)))
        ops[0] = '\0';
    json_object_set_new(o, "operations", json_string(ops));
    json_object_set_new(o, "ra_verified", json_boolean(ra->ra_verified));
}

/* Checks and normalises the options of `ra add` into |ra| (strings
 * borrowed from |o|). Returns CLI_OK or CLI_USAGE after printing why. */
static int ra_add_check(const struct ra_opts *o, struct store_ra *ra)
{
    size_t i, j;

    if (o->name == NULL || *o->name == '\0' || o->cert == NULL
        || o->nalias == 0) {
        fprintf(stderr, "cmpca ra add: --name, --cert and --alias are "
                "required\n");
        return CLI_USAGE;
    }
    for (i = 0; i < o->nalias; i++) {
        if (!ra_label_ok(o->alias[i])) {
            fprintf(stderr, "cmpca ra add: bad alias '%s' (1-%d characters "
                    "of A-Z a-z 0-9 . _ -)\n", o->alias[i], RA_LABEL_MAX);
            return CLI_USAGE;
        }
        for (j = 0; j < i; j++)
            if (strcmp(o->alias[i], o->alias[j]) == 0) {
                fprintf(stderr, "cmpca ra add: alias '%s' given twice\n",
                        o->alias[i]);
                return CLI_USAGE;
            }
    }
    ra->aliases = o->alias;
    ra->naliases = o->nalias;
    for (i = 0; i < o->nprofile; i++) {
        if (strcmp(o->profile[i], "*") == 0)
            continue;
        if (!ra_label_ok(o->profile[i])) {
            fprintf(stderr, "cmpca ra add: bad profile '%s' (1-%d "
                    "characters of A-Z a-z 0-9 . _ -, or *)\n",
                    o->profile[i], RA_LABEL_MAX);
            return CLI_USAGE;
        }
        for (j = 0; j < i; j++)
            if (strcmp(o->profile[i], o->profile[j]) == 0) {
                fprintf(stderr, "cmpca ra add: profile '%s' given twice\n",
                        o->profile[i]);
                return CLI_USAGE;
            }
    }
    /* "*" anywhere means any profile: stored as no profile at all */
    ra->profiles = o->profile;
    ra->nprofiles = o->nprofile;
    for (i = 0; i < o->nprofile; i++)
        if (strcmp(o->profile[i], "*") == 0)
            ra->nprofiles = 0;
    if (ra->nprofiles == 0)
        ra->profiles = NULL;
    ra->ops = STORE_RA_OP_ALL;
    if (o->ops != NULL && !store_ra_ops_parse(o->ops, &ra->ops)) {
        fprintf(stderr, "cmpca ra add: bad --op '%s' (comma-separated: ir, "
                "cr, p10cr, kur, rr, or all)\n", o->ops);
        return CLI_USAGE;
    }
    ra->ra_verified = o->ra_verified;
    return CLI_OK;
}

static int ra_add(STORE *st, const struct ra_opts *o)
{
    struct store_ra ra;
    struct store_der *certs = NULL;
    STORE_TX *tx = NULL;
    json_t *d = NULL;
    char *djson = NULL;
    const char *hex;
    size_t ncerts = 0;
    int64_t id = 0;
    enum store_rc rc;
    int ret;

    memset(&ra, 0, sizeof(ra));
    if ((ret = ra_add_check(o, &ra)) != CLI_OK)
        return ret;
    ret = CLI_ERR;
    if (!cli_read_certs(o->cert, &certs, &ncerts))
        return CLI_ERR;
    if (ncerts != 1)
        fprintf(stderr, "cmpca ra add: %s holds %zu certificates; the first "
                "is the RA's\n", o->cert, ncerts);
    ra.name = (char *)o->name;
    ra.cert_der = certs[0].der;
    ra.cert_len = certs[0].len;
    if (ra.ra_verified && !ra_cert_has_cmcra(ra.cert_der, ra.cert_len))
        fprintf(stderr, "cmpca ra add: warning: the certificate lacks "
                "id-kp-cmcRA; raVerified from this RA will be refused\n");
    d = cli_cert_json(ra.cert_der, ra.cert_len);
    ra_json_fields(d, &ra);
    djson = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    if ((rc = store_begin(st, &tx)) != STORE_OK) {
        ret = ra_dberr("add", NULL, rc);
        goto end;
    }
    rc = store_ra_insert(tx, &ra, &id);
    if (rc == STORE_EXISTS) {
        fprintf(stderr, "cmpca ra add: an RA named '%s' or with this "
                "certificate exists already\n", o->name);
        ret = CLI_EXISTS;
        goto end;
    }
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), "ra.add", o->name, djson);
    if (rc == STORE_OK)
        rc = store_commit_clear(&tx);
    if (rc != STORE_OK) {
        ret = ra_dberr("add", tx, rc);
        goto end;
    }
    hex = json_string_value(json_object_get(d, "sha256"));
    printf("RA '%s' added (id %lld, sha256 %s)\n", o->name, (long long)id,
           hex != NULL ? hex : "");
    ret = CLI_OK;
 end:
    store_rollback(tx);
    store_der_list_free(certs, ncerts);
    json_decref(d);
    free(djson);
    return ret;
}

static json_t *ra_json(const struct store_ra *ra, int full)
{
    json_t *o = json_object();
    char hex[2 * STORE_SHA256_LEN + 1], tbuf[32];

    json_object_set_new(o, "id", json_integer(ra->id));
    json_object_set_new(o, "name", json_string(ra->name));
    cli_hex(ra->sha256, sizeof(ra->sha256), hex);
    json_object_set_new(o, "sha256", json_string(hex));
    ra_json_fields(o, ra);
    json_object_set_new(o, "disabled", json_boolean(ra->disabled));
    cli_time(ra->created, tbuf, sizeof(tbuf));
    json_object_set_new(o, "created", json_string(tbuf));
    cli_time(ra->updated, tbuf, sizeof(tbuf));
    json_object_set_new(o, "updated", json_string(tbuf));
    if (full)
        json_object_set_new(o, "cert", cli_cert_json(ra->cert_der,
                                                     ra->cert_len));
    return o;
}

/* Prints the |n| strings of |v| comma-separated, |none| for none. */
static void ra_print_strs(char *const *v, size_t n, const char *none)
{
    size_t i;

    if (n == 0)
        printf("%s", none);
    for (i = 0; i < n; i++)
        printf("%s%s", i ? "," : "", v[i]);
}

static int ra_list(STORE *st, const struct ra_opts *o)
{
    struct store_ra **v = NULL;
    STORE_TX *tx = NULL;
    json_t *arr;
    char hex[2 * STORE_SHA256_LEN + 1], ops[RA_OPS_BUF];
    size_t n = 0, i;
    enum store_rc rc;
    int ret;

    if ((rc = store_begin_read(st, &tx)) != STORE_OK)
        return ra_dberr("list", NULL, rc);
    if ((rc = store_ra_list(tx, &v, &n)) != STORE_OK) {
        ret = ra_dberr("list", tx, rc);
        goto end;
    }
    if (o->json) {
        arr = json_array();
        for (i = 0; i < n; i++)
            json_array_append_new(arr, ra_json(v[i], 0));
        cli_json_print(arr);
    } else {
        printf("%-6s %-20s %-8s %-16s %-20s %-3s %s\n", "ID", "NAME",
               "STATE", "SHA256", "OPS", "RAV", "ALIASES / PROFILES");
        for (i = 0; i < n; i++) {
            cli_hex(v[i]->sha256, 8, hex);
            if (!store_ra_ops_format(v[i]->ops, ops, sizeof(ops)))
                ops[0] = '\0';
            printf("%-6lld %-20s %-8s %-16s %-20s %-3s ",
                   (long long)v[i]->id, v[i]->name,
                   v[i]->disabled ? "disabled" : "enabled", hex,
                   *ops ? ops : "-", v[i]->ra_verified ? "yes" : "no");
            ra_print_strs(v[i]->aliases, v[i]->naliases, "-");
            printf(" / ");
            ra_print_strs(v[i]->profiles, v[i]->nprofiles, "*");
            printf("\n");
        }
    }
    ret = CLI_OK;
 end:
    store_ra_list_free(v, n);
    store_rollback(tx);
    return ret;
}

static int ra_show(STORE *st, const struct ra_opts *o)
{
    struct store_ra *ra = NULL;
    STORE_TX *tx = NULL;
    json_t *j, *c;
    char ops[RA_OPS_BUF];
    enum store_rc rc;
    int ret;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca ra show: NAME required\n");
        return CLI_USAGE;
    }
    if ((rc = store_begin_read(st, &tx)) != STORE_OK)
        return ra_dberr("show", NULL, rc);
    if ((rc = store_ra_get_by_name(tx, o->pos, &ra)) != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            fprintf(stderr, "cmpca ra show: %s: no such RA\n", o->pos);
        else
            ra_dberr("show", tx, rc);
        ret = cli_store_exit(rc);
        goto end;
    }
    j = ra_json(ra, 1);
    if (o->json) {
        cli_json_print(j);
    } else {
        c = json_object_get(j, "cert");
        if (!store_ra_ops_format(ra->ops, ops, sizeof(ops)))
            ops[0] = '\0';
        printf("RA:          %s (id %lld)\nstate:       %s since %s\n"
               "created:     %s\naliases:     ", ra->name, (long long)ra->id,
               ra->disabled ? "disabled" : "enabled",
               json_string_value(json_object_get(j, "updated")),
               json_string_value(json_object_get(j, "created")));
        ra_print_strs(ra->aliases, ra->naliases, "(none)");
        printf("\nprofiles:    ");
        ra_print_strs(ra->profiles, ra->nprofiles, "* (any)");
        printf("\noperations:  %s\nraVerified:  %s\n", *ops ? ops : "(none)",
               ra->ra_verified ? "may assert" : "no");
        printf("subject:     %s\nissuer:      %s\nvalid:       %s .. %s\n"
               "sha256:      %s\n",
               json_string_value(json_object_get(c, "subject")),
               json_string_value(json_object_get(c, "issuer")),
               json_string_value(json_object_get(c, "not_before")),
               json_string_value(json_object_get(c, "not_after")),
               json_string_value(json_object_get(j, "sha256")));
        json_decref(j);
    }
    ret = CLI_OK;
 end:
    store_ra_free(ra);
    store_rollback(tx);
    return ret;
}

/* disable, enable, remove: one RA, one audited change. */
static int ra_change(STORE *st, const struct ra_opts *o, const char *act)
{
    struct store_ra *ra = NULL;
    STORE_TX *tx = NULL;
    char hex[2 * STORE_SHA256_LEN + 1], action[32], details[160];
    enum store_rc rc;
    int ret, remove = strcmp(act, "remove") == 0;
    int disable = strcmp(act, "disable") == 0;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca ra %s: NAME required\n", act);
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return ra_dberr(act, NULL, rc);
    if ((rc = store_ra_get_by_name(tx, o->pos, &ra)) != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            fprintf(stderr, "cmpca ra %s: %s: no such RA\n", act, o->pos);
        else
            ra_dberr(act, tx, rc);
        ret = cli_store_exit(rc);
        goto end;
    }
    if (!remove && ra->disabled == disable) {
        printf("RA '%s' is %s already\n", o->pos,
               disable ? "disabled" : "enabled");
        ret = CLI_OK;
        goto end;
    }
    rc = remove ? store_ra_delete(tx, ra->id)
                : store_ra_set_disabled(tx, ra->id, disable);
    cli_hex(ra->sha256, sizeof(ra->sha256), hex);
    snprintf(details, sizeof(details), "{\"id\":%lld,\"sha256\":\"%s\"}",
             (long long)ra->id, hex);
    snprintf(action, sizeof(action), "ra.%s", act);
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), action, o->pos, details);
    if (rc == STORE_OK)
        rc = store_commit_clear(&tx);
    if (rc != STORE_OK) {
        ret = ra_dberr(act, tx, rc);
        goto end;
    }
    if (remove)
        printf("RA '%s' removed\n", o->pos);
    else
        printf("RA '%s' %s\n", o->pos, disable ? "disabled" : "enabled");
    ret = CLI_OK;
 end:
    store_ra_free(ra);
    store_rollback(tx);
    return ret;
}

int cli_ra(int argc, char **argv)
{
    static const char *const acts[] = {
        "add", "list", "show", "disable", "enable", "remove", NULL
    };
    struct ra_opts o;
    STORE *st = NULL;
    const char *act;
    int ret;

    memset(&o, 0, sizeof(o));
    if ((ret = cli_pick_action(argc, argv, "ra", acts, ra_usage, &act)) != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    ret = ra_parse(argc - 1, argv + 1, &o,
                   strcmp(act, "add") != 0 && strcmp(act, "list") != 0);
    if (ret != CLI_OK) {
        ret = ret < 0 ? CLI_OK : ret;
        goto end;
    }
    if (strcmp(act, "add") != 0
        && (o.name != NULL || o.cert != NULL || o.nalias > 0
            || o.nprofile > 0 || o.ops != NULL || o.ra_verified)) {
        fprintf(stderr, "cmpca ra %s: --name, --cert, --alias, --profile, "
                "--op and --ra-verified belong to ra add\n", act);
        ret = CLI_USAGE;
        goto end;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        goto end;
    if (strcmp(act, "add") == 0)
        ret = ra_add(st, &o);
    else if (strcmp(act, "list") == 0)
        ret = ra_list(st, &o);
    else if (strcmp(act, "show") == 0)
        ret = ra_show(st, &o);
    else
        ret = ra_change(st, &o, act);
 end:
    store_close(st);
    free(o.alias);
    free(o.profile);
    return ret;
}
