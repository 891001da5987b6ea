/*
 * `cmpca ra`: register the registration authorities (by their certificate)
 * that may send requests on behalf of devices, and the aliases they serve.
 */
#include "cli/cli.h"

#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ra_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca ra add --name NAME --cert FILE.pem --alias A [--alias B ...]\n"
            "       cmpca ra list [--json]\n"
            "       cmpca ra show NAME [--json]\n"
            "       cmpca ra remove NAME\n"
            "\n"
            "An RA is known by its certificate (matched by SHA-256 when it\n"
            "protects a request) and may act only for the aliases listed.\n");
}

struct ra_opts {
    const char *name, *cert, *pos;
    char **alias;
    size_t nalias;
    int json;
};

static int ra_parse(int argc, char **argv, struct ra_opts *o, int allow_pos)
{
    static const struct option opts[] = {
        { "name",  required_argument, NULL, 'n' },
        { "cert",  required_argument, NULL, 'c' },
        { "alias", required_argument, NULL, 'a' },
        { "json",  no_argument,       NULL, 'j' },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    char **nv;
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "n:c:a:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->name = optarg;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'a':
            if ((nv = realloc(o->alias, (o->nalias + 1) * sizeof(*nv)))
                == NULL)
                return CLI_ERR;
            o->alias = nv;
            o->alias[o->nalias++] = optarg;
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

static int ra_add(STORE *st, const struct ra_opts *o)
{
    struct store_ra ra;
    struct store_der *certs = NULL;
    STORE_TX *tx = NULL;
    json_t *d = NULL, *al;
    char *djson = NULL, hex[2 * STORE_SHA256_LEN + 1];
    size_t ncerts = 0, i;
    int64_t id = 0;
    enum store_rc rc;
    int ret = CLI_ERR;

    if (o->name == NULL || *o->name == '\0' || o->cert == NULL
        || o->nalias == 0) {
        fprintf(stderr, "cmpca ra add: --name, --cert and --alias are "
                "required\n");
        return CLI_USAGE;
    }
    if (!cli_read_certs(o->cert, &certs, &ncerts))
        return CLI_ERR;
    if (ncerts != 1)
        fprintf(stderr, "cmpca ra add: %s holds %zu certificates; the first "
                "is the RA's\n", o->cert, ncerts);
    memset(&ra, 0, sizeof(ra));
    ra.name = (char *)o->name;
    ra.cert_der = certs[0].der;
    ra.cert_len = certs[0].len;
    ra.aliases = o->alias;
    ra.naliases = o->nalias;
    d = cli_cert_json(ra.cert_der, ra.cert_len);
    al = json_array();
    for (i = 0; i < o->nalias; i++)
        json_array_append_new(al, json_string(o->alias[i]));
    json_object_set_new(d, "aliases", al);
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
    if (rc == STORE_OK) {
        rc = store_commit(tx);
        tx = NULL;
    }
    if (rc != STORE_OK) {
        ret = ra_dberr("add", tx, rc);
        goto end;
    }
    snprintf(hex, sizeof(hex), "%s",
             json_string_value(json_object_get(d, "sha256")) != NULL
             ? json_string_value(json_object_get(d, "sha256")) : "");
    printf("RA '%s' added (id %lld, sha256 %s)\n", o->name, (long long)id,
           hex);
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
    json_t *o = json_object(), *al = json_array();
    char hex[2 * STORE_SHA256_LEN + 1], tbuf[32];
    size_t i;

    json_object_set_new(o, "id", json_integer(ra->id));
    json_object_set_new(o, "name", json_string(ra->name));
    cli_hex(ra->sha256, sizeof(ra->sha256), hex);
    json_object_set_new(o, "sha256", json_string(hex));
    for (i = 0; i < ra->naliases; i++)
        json_array_append_new(al, json_string(ra->aliases[i]));
    json_object_set_new(o, "aliases", al);
    cli_time(ra->created, tbuf, sizeof(tbuf));
    json_object_set_new(o, "created", json_string(tbuf));
    if (full)
        json_object_set_new(o, "cert", cli_cert_json(ra->cert_der,
                                                     ra->cert_len));
    return o;
}

static void ra_print_aliases(const struct store_ra *ra)
{
    size_t i;

    for (i = 0; i < ra->naliases; i++)
        printf("%s%s", i ? "," : "", ra->aliases[i]);
    printf("\n");
}

static int ra_list(STORE *st, const struct ra_opts *o)
{
    struct store_ra **v = NULL;
    STORE_TX *tx = NULL;
    json_t *arr;
    char hex[2 * STORE_SHA256_LEN + 1];
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
        printf("%-6s %-20s %-16s %s\n", "ID", "NAME", "SHA256", "ALIASES");
        for (i = 0; i < n; i++) {
            cli_hex(v[i]->sha256, 8, hex);
            printf("%-6lld %-20s %-16s ", (long long)v[i]->id, v[i]->name,
                   hex);
            ra_print_aliases(v[i]);
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
        printf("RA:       %s (id %lld)\ncreated:  %s\naliases:  ", ra->name,
               (long long)ra->id,
               json_string_value(json_object_get(j, "created")));
        ra_print_aliases(ra);
        printf("subject:  %s\nissuer:   %s\nvalid:    %s .. %s\nsha256:   %s\n",
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

static int ra_remove(STORE *st, const struct ra_opts *o)
{
    struct store_ra *ra = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    int ret;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca ra remove: NAME required\n");
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return ra_dberr("remove", NULL, rc);
    if ((rc = store_ra_get_by_name(tx, o->pos, &ra)) == STORE_NOTFOUND) {
        fprintf(stderr, "cmpca ra remove: %s: no such RA\n", o->pos);
        ret = CLI_NOTFOUND;
        goto end;
    }
    if (rc == STORE_OK)
        rc = store_ra_delete(tx, ra->id);
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), "ra.remove", o->pos, NULL);
    if (rc == STORE_OK) {
        rc = store_commit(tx);
        tx = NULL;
    }
    if (rc != STORE_OK) {
        ret = ra_dberr("remove", tx, rc);
        goto end;
    }
    printf("RA '%s' removed\n", o->pos);
    ret = CLI_OK;
 end:
    store_ra_free(ra);
    store_rollback(tx);
    return ret;
}

int cli_ra(int argc, char **argv)
{
    struct ra_opts o;
    STORE *st = NULL;
    const char *act;
    int ret;

    static const char *const acts[] = { "add", "list", "show", "remove", NULL };

    memset(&o, 0, sizeof(o));
    if ((ret = cli_pick_action(argc, argv, "ra", acts, ra_usage, &act)) != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    ret = ra_parse(argc - 1, argv + 1, &o,
                   strcmp(act, "show") == 0 || strcmp(act, "remove") == 0);
    if (ret != CLI_OK) {
        free(o.alias);
        return ret < 0 ? CLI_OK : ret;
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
        ret = ra_remove(st, &o);
 end:
    store_close(st);
    free(o.alias);
    return ret;
}
