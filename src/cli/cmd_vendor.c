/*
 * `cmpca vendor`: register the vendor (factory) CAs whose device
 * certificates are trusted for initial enrollment; list, show, disable,
 * enable, remove; on request revoking every operator certificate issued to
 * the vendor's devices.
 */
#include "cli/cli.h"

#include "ca/ca.h"
#include "conf/conf.h"
#include "ocsp/vendor_crl.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vendor_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca vendor add --name NAME --ca FILE.pem [--ca FILE2.pem ...]\n"
            "       cmpca vendor list [--json]\n"
            "       cmpca vendor show NAME [--json]\n"
            "       cmpca vendor remove NAME [--force] [--revoke-all [--reason R]]\n"
            "       cmpca vendor disable NAME [--revoke-all [--reason R]]\n"
            "       cmpca vendor enable NAME\n"
            "       cmpca vendor crl import --vendor NAME FILE\n"
            "       cmpca vendor crl fetch --vendor NAME [--url URL]\n"
            "       cmpca vendor crl list [--vendor NAME] [--json]\n"
            "\n"
            "A vendor is a factory CA (with its chain) trusted to authenticate\n"
            "devices on initial enrollment. --ca may repeat; a file may hold\n"
            "several PEM certificates. remove refuses while devices of the\n"
            "vendor are registered, unless --force (which removes them too).\n"
            "disable stops new enrollments through the vendor; --revoke-all\n"
            "also revokes every valid operator certificate of its devices\n"
            "(reason --reason, default cessationOfOperation) in the same\n"
            "transaction, with a new CRL.\n"
            "crl import/fetch store a CRL of one of the vendor's CAs (checked:\n"
            "issuer and signature), used when [vendor NAME] crl = soft|hard.\n");
}

/* Parses the options of one action. |want| lists which are allowed. */
struct vendor_opts {
    const char *name;
    const char **ca;
    size_t nca;
    int json, force, revoke_all;
    const char *reason;       /* --reason (with --revoke-all) */
    const char *pos;          /* positional NAME */
};

static int vendor_parse(int argc, char **argv, struct vendor_opts *o,
                        int allow_pos)
{
    static const struct option opts[] = {
        { "name",  required_argument, NULL, 'n' },
        { "ca",    required_argument, NULL, 'a' },
        { "json",  no_argument,       NULL, 'j' },
        { "force", no_argument,       NULL, 'f' },
        { "revoke-all", no_argument,  NULL, 'R' },
        { "reason", required_argument, NULL, 'r' },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char **nv;
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "n:a:jfh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->name = optarg;
            break;
        case 'a':
            if ((nv = realloc(o->ca, (o->nca + 1) * sizeof(*nv))) == NULL)
                return CLI_ERR;
            o->ca = nv;
            o->ca[o->nca++] = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'f':
            o->force = 1;
            break;
        case 'R':
            o->revoke_all = 1;
            break;
        case 'r':
            o->reason = optarg;
            break;
        case 'h':
            vendor_usage(stdout);
            return -1;
        default:
            vendor_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (allow_pos && optind < argc)
        o->pos = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "cmpca vendor: unexpected argument '%s'\n",
                argv[optind]);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int vendor_add(STORE *st, struct vendor_opts *o)
{
    struct store_vendor v;
    struct store_der *certs = NULL, *one, *nv;
    size_t ncerts = 0, n1, i;
    STORE_TX *tx = NULL;
    json_t *details = NULL, *arr;
    char *djson = NULL;
    int64_t id = 0;
    enum store_rc rc;
    int ret = CLI_ERR;

    if (o->name == NULL || *o->name == '\0' || o->nca == 0) {
        fprintf(stderr, "cmpca vendor add: --name and --ca are required\n");
        return CLI_USAGE;
    }
    for (i = 0; i < o->nca; i++) {
        if (!cli_read_certs(o->ca[i], &one, &n1))
            goto end;
        if ((nv = realloc(certs, (ncerts + n1) * sizeof(*nv))) == NULL) {
            store_der_list_free(one, n1);
            goto end;
        }
        certs = nv;
        memcpy(certs + ncerts, one, n1 * sizeof(*one));
        ncerts += n1;
        free(one);
    }
    details = json_object();
    arr = json_array();
    for (i = 0; i < ncerts; i++)
        json_array_append_new(arr, cli_cert_json(certs[i].der, certs[i].len));
    json_object_set_new(details, "certs", arr);
    for (i = 0; i < ncerts; i++)
        if (!json_is_true(json_object_get(json_array_get(arr, i), "ca")))
            fprintf(stderr, "cmpca vendor add: warning: certificate %zu "
                    "(%s) is not a CA certificate\n", i + 1,
                    json_string_value(json_object_get(json_array_get(arr, i),
                                                      "subject")));
    djson = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    memset(&v, 0, sizeof(v));
    v.name = (char *)o->name;
    v.certs = certs;
    v.ncerts = ncerts;
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        goto dberr;
    rc = store_vendor_insert(tx, &v, &id);
    if (rc == STORE_EXISTS) {
        fprintf(stderr, "cmpca vendor add: vendor '%s' exists already\n",
                o->name);
        ret = CLI_EXISTS;
        goto end;
    }
    if (rc != STORE_OK
        || (rc = store_audit_append(tx, cli_actor(), "vendor.add", o->name,
                                    djson)) != STORE_OK)
        goto dberr;
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK)
        goto dberr;
    printf("vendor '%s' added (id %lld, %zu certificate%s)\n", o->name,
           (long long)id, ncerts, ncerts == 1 ? "" : "s");
    ret = CLI_OK;
    goto end;
 dberr:
    ret = cli_dberr("vendor", "add", tx, rc);
 end:
    store_rollback(tx);
    store_der_list_free(certs, ncerts);
    json_decref(details);
    free(djson);
    return ret;
}

/* Returns a JSON object for vendor |v| with its device counts. */
static json_t *vendor_json(STORE_TX *tx, const struct store_vendor *v,
                           int full)
{
    struct store_device_filter f;
    json_t *o = json_object(), *arr, *counts;
    char tbuf[32];
    int64_t n = 0;
    size_t i;
    int s;

    json_object_set_new(o, "id", json_integer(v->id));
    json_object_set_new(o, "name", json_string(v->name));
    cli_time(v->created, tbuf, sizeof(tbuf));
    json_object_set_new(o, "created", json_string(tbuf));
    json_object_set_new(o, "disabled", json_boolean(v->disabled));
    store_device_filter_init(&f);
    f.vendor_id = v->id;
    if (store_device_count(tx, &f, &n) == STORE_OK)
        json_object_set_new(o, "devices", json_integer(n));
    if (!full) {
        json_object_set_new(o, "certs", json_integer((json_int_t)v->ncerts));
        return o;
    }
    counts = json_object();
    for (s = STORE_DEV_REGISTERED; s <= STORE_DEV_DISABLED; s++) {
        f.state = s;
        if (store_device_count(tx, &f, &n) == STORE_OK)
            json_object_set_new(counts, store_device_state_str(s),
                                json_integer(n));
    }
    json_object_set_new(o, "device_states", counts);
    arr = json_array();
    for (i = 0; i < v->ncerts; i++)
        json_array_append_new(arr, cli_cert_json(v->certs[i].der,
                                                 v->certs[i].len));
    json_object_set_new(o, "certs", arr);
    return o;
}

static int vendor_list(STORE *st, const struct vendor_opts *o)
{
    struct store_vendor **v = NULL;
    STORE_TX *tx = NULL;
    json_t *arr = NULL, *j;
    size_t n = 0, i;
    enum store_rc rc;
    int ret = CLI_STORE;

    if ((rc = store_begin_read(st, &tx)) != STORE_OK
        || (rc = store_vendor_list(tx, &v, &n)) != STORE_OK) {
        fprintf(stderr, "cmpca vendor list: %s\n", store_rc_str(rc));
        goto end;
    }
    arr = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(arr, vendor_json(tx, v[i], 0));
    if (o->json) {
        cli_json_print(arr);
        arr = NULL;
    } else {
        printf("%-6s %-24s %-6s %-10s %s\n", "ID", "NAME", "CERTS",
               "DEVICES", "CREATED");
        json_array_foreach(arr, i, j) {
            printf("%-6lld %-24s %-6lld %-10lld %s\n",
                   (long long)json_integer_value(json_object_get(j, "id")),
                   json_string_value(json_object_get(j, "name")),
                   (long long)json_integer_value(json_object_get(j, "certs")),
                   (long long)json_integer_value(json_object_get(j,
                                                                 "devices")),
                   json_string_value(json_object_get(j, "created")));
        }
    }
    ret = CLI_OK;
 end:
    json_decref(arr);
    store_vendor_list_free(v, n);
    store_rollback(tx);
    return ret;
}

static int vendor_show(STORE *st, const struct vendor_opts *o)
{
    struct store_vendor *v = NULL;
    STORE_TX *tx = NULL;
    json_t *j = NULL, *c, *states;
    const char *k;
    enum store_rc rc;
    size_t i;
    int ret;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca vendor show: NAME required\n");
        return CLI_USAGE;
    }
    if ((rc = store_begin_read(st, &tx)) == STORE_OK)
        rc = store_vendor_get_by_name(tx, o->pos, &v);
    if (rc != STORE_OK) {
        fprintf(stderr, "cmpca vendor show: %s: %s\n", o->pos,
                rc == STORE_NOTFOUND ? "no such vendor" : store_rc_str(rc));
        ret = cli_store_exit(rc);
        goto end;
    }
    j = vendor_json(tx, v, 1);
    if (o->json) {
        cli_json_print(j);
        j = NULL;
    } else {
        printf("vendor:   %s (id %lld)%s\ncreated:  %s\ndevices:  %lld\n",
               v->name, (long long)v->id,
               v->disabled ? "\nstate:    disabled (no new enrollments)" : "",
               json_string_value(json_object_get(j, "created")),
               (long long)json_integer_value(json_object_get(j, "devices")));
        states = json_object_get(j, "device_states");
        json_object_foreach(states, k, c)
            printf("  %-10s %lld\n", k, (long long)json_integer_value(c));
        json_array_foreach(json_object_get(j, "certs"), i, c) {
            printf("cert %zu:   %s\n  issuer:  %s\n  valid:   %s .. %s\n"
                   "  sha256:  %s\n", i + 1,
                   json_string_value(json_object_get(c, "subject")),
                   json_string_value(json_object_get(c, "issuer")),
                   json_string_value(json_object_get(c, "not_before")),
                   json_string_value(json_object_get(c, "not_after")),
                   json_string_value(json_object_get(c, "sha256")));
        }
    }
    ret = CLI_OK;
 end:
    json_decref(j);
    store_vendor_free(v);
    store_rollback(tx);
    return ret;
}

/* The --reason of |o| (default cessationOfOperation) or -1 after a
 * message. */
static int vendor_reason(const struct vendor_opts *o, const char *act)
{
    int r = o->reason != NULL ? ca_reason_parse(o->reason) : 5;

    if (r < 0)
        fprintf(stderr, "cmpca vendor %s: unknown reason '%s'\n", act,
                o->reason);
    else if (o->reason != NULL && !o->revoke_all) {
        fprintf(stderr, "cmpca vendor %s: --reason goes with --revoke-all\n",
                act);
        r = -1;
    }
    return r;
}

/* disable / enable: the vendor's flag, and with --revoke-all the
 * certificates of its devices, in one audited transaction. */
static int vendor_toggle(const struct conf *conf, STORE *st,
                         const struct vendor_opts *o, int disable)
{
    const char *act = disable ? "disable" : "enable";
    struct store_vendor *v = NULL;
    struct store_cert_filter f;
    STORE_TX *tx = NULL;
    char details[96], action[32];
    long nrev = 0;
    enum store_rc rc;
    int ret, reason;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca vendor %s: NAME required\n", act);
        return CLI_USAGE;
    }
    if ((reason = vendor_reason(o, act)) < 0 || (!disable && o->revoke_all)) {
        if (!disable && o->revoke_all)
            fprintf(stderr, "cmpca vendor enable: no --revoke-all\n");
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        goto dberr;
    if ((rc = store_vendor_get_by_name(tx, o->pos, &v)) == STORE_NOTFOUND) {
        fprintf(stderr, "cmpca vendor %s: %s: no such vendor\n", act, o->pos);
        ret = CLI_NOTFOUND;
        goto end;
    }
    if (rc != STORE_OK
        || (rc = store_vendor_set_disabled(tx, v->id, disable)) != STORE_OK)
        goto dberr;
    if (o->revoke_all) {
        store_cert_filter_init(&f);
        f.vendor_id = v->id;
        if ((ret = cli_revoke_matching(conf, st, tx, &f, reason, &nrev))
            != CLI_OK)
            goto end;
    }
    snprintf(details, sizeof(details), "{\"certs_revoked\":%ld,\"reason\":%d}",
             nrev, o->revoke_all ? reason : -1);
    snprintf(action, sizeof(action), "vendor.%s", act);
    if ((rc = store_audit_append(tx, cli_actor(), action, o->pos, details))
        != STORE_OK)
        goto dberr;
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK)
        goto dberr;
    printf("vendor '%s' %s\n", o->pos, disable ? "disabled" : "enabled");
    if (o->revoke_all)
        printf("%ld operator certificate%s revoked (%s)%s\n", nrev,
               nrev == 1 ? "" : "s", ca_reason_str(reason),
               nrev > 0 ? "; new CRL issued" : "");
    ret = CLI_OK;
    goto end;
 dberr:
    ret = cli_dberr("vendor", act, tx, rc);
 end:
    store_vendor_free(v);
    store_rollback(tx);
    return ret;
}

static int vendor_remove(const struct conf *conf, STORE *st,
                         const struct vendor_opts *o)
{
    struct store_vendor *v = NULL;
    struct store_device_filter f;
    STORE_TX *tx = NULL;
    char details[96];
    int64_t ndev = 0;
    long nrev = 0;
    enum store_rc rc;
    int ret, reason;

    if (o->pos == NULL) {
        fprintf(stderr, "cmpca vendor remove: NAME required\n");
        return CLI_USAGE;
    }
    if ((reason = vendor_reason(o, "remove")) < 0)
        return CLI_USAGE;
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        goto dberr;
    if ((rc = store_vendor_get_by_name(tx, o->pos, &v)) == STORE_NOTFOUND) {
        fprintf(stderr, "cmpca vendor remove: %s: no such vendor\n", o->pos);
        ret = CLI_NOTFOUND;
        goto end;
    }
    store_device_filter_init(&f);
    f.vendor_id = v != NULL ? v->id : 0;
    if (rc != STORE_OK || (rc = store_device_count(tx, &f, &ndev)) != STORE_OK)
        goto dberr;
    if (o->revoke_all) {
        struct store_cert_filter cf;

        store_cert_filter_init(&cf);
        cf.vendor_id = v->id;
        if ((ret = cli_revoke_matching(conf, st, tx, &cf, reason, &nrev))
            != CLI_OK)
            goto end;
    }
    rc = store_vendor_delete(tx, v->id, o->force);
    if (rc == STORE_CONFLICT) {
        fprintf(stderr, "cmpca vendor remove: %s has %lld registered "
                "device(s); use --force to remove them too\n", o->pos,
                (long long)ndev);
        ret = CLI_EXISTS;
        goto end;
    }
    snprintf(details, sizeof(details), "{\"devices_removed\":%lld,"
             "\"certs_revoked\":%ld}", (long long)ndev, nrev);
    if (rc != STORE_OK
        || (rc = store_audit_append(tx, cli_actor(), "vendor.remove", o->pos,
                                    details)) != STORE_OK)
        goto dberr;
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK)
        goto dberr;
    printf("vendor '%s' removed (%lld device%s)\n", o->pos, (long long)ndev,
           ndev == 1 ? "" : "s");
    if (o->revoke_all)
        printf("%ld operator certificate%s revoked (%s)\n", nrev,
               nrev == 1 ? "" : "s", ca_reason_str(reason));
    ret = CLI_OK;
    goto end;
 dberr:
    ret = cli_dberr("vendor", "remove", tx, rc);
 end:
    store_vendor_free(v);
    store_rollback(tx);
    return ret;
}

/* `vendor crl import|fetch|list`. */
static int vendor_crl_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "vendor", required_argument, NULL, 'v' },
        { "url", required_argument, NULL, 'u' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *vendor = NULL, *url = NULL, *act;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    struct store_vendor *v = NULL;
    struct store_vendor_crl **crls = NULL;
    unsigned char *data = NULL;
    size_t len = 0, n = 0, i;
    char err[600], src[700], hex[2 * STORE_SHA256_LEN + 1], t1[32], t2[32];
    json_t *arr = NULL;
    enum store_rc rc;
    int c, json = 0, ret = CLI_ERR;
    FILE *fp = NULL;

    if (argc < 2) {
        vendor_usage(stderr);
        return CLI_USAGE;
    }
    act = argv[1];
    argc--;
    argv++;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'v': vendor = optarg; break;
        case 'u': url = optarg; break;
        case 'j': json = 1; break;
        case 'h': vendor_usage(stdout); return CLI_OK;
        default: vendor_usage(stderr); return CLI_USAGE;
        }
    }
    if ((strcmp(act, "import") == 0 && (vendor == NULL || optind + 1 != argc))
        || (strcmp(act, "fetch") == 0 && (vendor == NULL || optind != argc))
        || (strcmp(act, "list") == 0 && optind != argc)
        || (strcmp(act, "import") != 0 && strcmp(act, "fetch") != 0
            && strcmp(act, "list") != 0)) {
        vendor_usage(stderr);
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK)
        return ret;
    ret = CLI_ERR;
    if (strcmp(act, "list") == 0) {
        int64_t vid = 0;

        if ((rc = store_begin_read(st, &tx)) != STORE_OK)
            goto dberr;
        if (vendor != NULL) {
            if ((rc = store_vendor_get_by_name(tx, vendor, &v)) != STORE_OK)
                goto dberr;
            vid = v->id;
        }
        if ((rc = store_vendor_crl_list(tx, vid, &crls, &n)) != STORE_OK)
            goto dberr;
        arr = json_array();
        for (i = 0; i < n; i++) {
            json_t *o = json_object();

            cli_hex(crls[i]->issuer_sha256, STORE_SHA256_LEN, hex);
            cli_time(crls[i]->this_update, t1, sizeof(t1));
            cli_time(crls[i]->next_update, t2, sizeof(t2));
            json_object_set_new(o, "vendor_id", json_integer(crls[i]->vendor_id));
            json_object_set_new(o, "issuer_sha256", json_string(hex));
            json_object_set_new(o, "this_update", json_string(t1));
            json_object_set_new(o, "next_update", crls[i]->next_update
                                ? json_string(t2) : json_null());
            json_object_set_new(o, "source", crls[i]->source != NULL
                                ? json_string(crls[i]->source) : json_null());
            if (!json)
                printf("vendor %lld issuer %.16s... this %s next %s from %s\n",
                       (long long)crls[i]->vendor_id, hex, t1,
                       crls[i]->next_update ? t2 : "-",
                       crls[i]->source != NULL ? crls[i]->source : "-");
            json_array_append_new(arr, o);
        }
        if (json) {
            cli_json_print(arr);
            arr = NULL;
        }
        ret = CLI_OK;
        goto end;
    }
    if (strcmp(act, "import") == 0) {
        long sz;

        if ((fp = fopen(argv[optind], "rb")) == NULL
            || fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) <= 0
            || sz > (64L << 20) || fseek(fp, 0, SEEK_SET) != 0
            || (data = malloc((size_t)sz)) == NULL
            || fread(data, 1, (size_t)sz, fp) != (size_t)sz) {
            fprintf(stderr, "cmpca vendor crl import: cannot read %s\n",
                    argv[optind]);
            goto end;
        }
        len = (size_t)sz;
        snprintf(src, sizeof(src), "import:%s", argv[optind]);
    } else {
        if (url == NULL) {
            /* the [vendor NAME] crl_url */
            const struct conf_section *sec = conf_find(conf, "vendor", vendor);

            url = sec != NULL ? conf_get(sec, "crl_url") : NULL;
        }
        if (url == NULL) {
            fprintf(stderr, "cmpca vendor crl fetch: give --url or set "
                    "crl_url in [vendor %s]\n", vendor);
            ret = CLI_USAGE;
            goto end;
        }
        if (!vendor_crl_fetch(url, 10, 64UL << 20, &data, &len, err,
                              sizeof(err))) {
            fprintf(stderr, "cmpca vendor crl fetch: %s\n", err);
            goto end;
        }
        snprintf(src, sizeof(src), "%s", url);
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        goto dberr;
    if ((rc = store_vendor_get_by_name(tx, vendor, &v)) != STORE_OK)
        goto dberr;
    if (!vendor_crl_import(tx, v, data, len, src, err, sizeof(err))) {
        fprintf(stderr, "cmpca vendor crl %s: %s\n", act, err);
        goto end;
    }
    if ((rc = store_audit_append(tx, cli_actor(), "vendor.crl", vendor, NULL))
        != STORE_OK)
        goto dberr;
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK)
        goto dberr;
    printf("CRL of vendor '%s' stored (%s)\n", vendor, src);
    ret = CLI_OK;
    goto end;
 dberr:
    if (rc == STORE_NOTFOUND && vendor != NULL)
        fprintf(stderr, "cmpca vendor crl: %s: no such vendor\n", vendor);
    ret = rc == STORE_NOTFOUND ? CLI_NOTFOUND : cli_dberr("vendor", "crl", tx, rc);
 end:
    if (fp != NULL)
        fclose(fp);
    json_decref(arr);
    free(data);
    store_vendor_crl_list_free(crls, n);
    store_vendor_free(v);
    store_rollback(tx);
    store_close(st);
    conf_free(conf);
    return ret;
}

int cli_vendor(int argc, char **argv)
{
    struct vendor_opts o;
    struct conf *conf = NULL;
    STORE *st = NULL;
    const char *act;
    int ret;

    static const char *const acts[] = { "add", "list", "show", "remove",
                                        "disable", "enable", NULL };

    memset(&o, 0, sizeof(o));
    if (argc >= 2 && strcmp(argv[1], "crl") == 0)
        return vendor_crl_cmd(argc - 1, argv + 1);
    if ((ret = cli_pick_action(argc, argv, "vendor", acts, vendor_usage,
                               &act)) != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    ret = vendor_parse(argc - 1, argv + 1, &o,
                       strcmp(act, "show") == 0 || strcmp(act, "remove") == 0
                       || strcmp(act, "disable") == 0
                       || strcmp(act, "enable") == 0);
    if (ret != CLI_OK) {
        free(o.ca);
        return ret < 0 ? CLI_OK : ret;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK)
        goto end;
    if (strcmp(act, "add") == 0)
        ret = vendor_add(st, &o);
    else if (strcmp(act, "list") == 0)
        ret = vendor_list(st, &o);
    else if (strcmp(act, "show") == 0)
        ret = vendor_show(st, &o);
    else if (strcmp(act, "remove") == 0)
        ret = vendor_remove(conf, st, &o);
    else
        ret = vendor_toggle(conf, st, &o, strcmp(act, "disable") == 0);
 end:
    store_close(st);
    conf_free(conf);
    free(o.ca);
    return ret;
}
