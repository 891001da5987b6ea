/*
 * `cmpca audit`: print the hash-chained audit trail and verify that no row
 * was modified, removed, inserted or reordered.
 */
#include "cli/cli.h"

#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void audit_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca audit verify\n"
            "       cmpca audit list [--limit N] [--json]\n"
            "\n"
            "verify recomputes the SHA-256 chain over every row and exits 0\n"
            "if it is intact, else 1 and names the first bad sequence number.\n"
            "list prints the newest N rows (default 50; 0 = all), oldest\n"
            "first; the last row's hash is the value to record elsewhere\n"
            "(an external anchor).\n");
}

static int audit_verify(STORE *st)
{
    char err[256];
    int64_t bad = 0;

    if (store_audit_verify(st, &bad, err, sizeof(err))) {
        printf("audit trail intact: %s\n", err);
        return CLI_OK;
    }
    if (bad > 0)
        fprintf(stderr, "cmpca audit verify: FAILED at seq %lld: %s\n",
                (long long)bad, err);
    else
        fprintf(stderr, "cmpca audit verify: %s\n", err);
    return bad > 0 ? CLI_ERR : CLI_STORE;
}

static int audit_list(STORE *st, long limit, int json)
{
    struct store_audit_row **v = NULL;
    STORE_TX *tx = NULL;
    json_t *arr, *o;
    char hex[2 * STORE_SHA256_LEN + 1], tbuf[32];
    size_t n = 0, i;
    enum store_rc rc;

    if ((rc = store_begin_read(st, &tx)) != STORE_OK
        || (rc = store_audit_list(tx, limit, &v, &n)) != STORE_OK) {
        fprintf(stderr, "cmpca audit list: %s\n", store_rc_str(rc));
        store_rollback(tx);
        return cli_store_exit(rc);
    }
    arr = json ? json_array() : NULL;
    for (i = 0; i < n; i++) {
        cli_hex(v[i]->hash, STORE_SHA256_LEN, hex);
        cli_time(v[i]->time, tbuf, sizeof(tbuf));
        if (json) {
            o = json_object();
            json_object_set_new(o, "seq", json_integer(v[i]->seq));
            json_object_set_new(o, "time", json_string(tbuf));
            json_object_set_new(o, "actor", json_string(v[i]->actor));
            json_object_set_new(o, "action", json_string(v[i]->action));
            json_object_set_new(o, "object", v[i]->object
                                ? json_string(v[i]->object) : json_null());
            json_object_set_new(o, "details", v[i]->details
                                ? json_loads(v[i]->details, 0, NULL)
                                : json_null());
            if (json_object_get(o, "details") == NULL)
                json_object_set_new(o, "details",
                                    json_string(v[i]->details));
            json_object_set_new(o, "hash", json_string(hex));
            json_array_append_new(arr, o);
        } else {
            printf("%6lld %s %-16s %-16s %s%s%s\n", (long long)v[i]->seq,
                   tbuf, v[i]->actor, v[i]->action,
                   v[i]->object ? v[i]->object : "-",
                   v[i]->details ? " " : "",
                   v[i]->details ? v[i]->details : "");
        }
    }
    if (json)
        cli_json_print(arr);
    else if (n > 0)
        printf("head hash: %s\n", hex);
    store_audit_row_list_free(v, n);
    store_rollback(tx);
    return CLI_OK;
}

int cli_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        { "limit", required_argument, NULL, 'l' },
        { "json",  no_argument,       NULL, 'j' },
        { "help",  no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    STORE *st = NULL;
    const char *act;
    char *end;
    long limit = 50;
    int c, json = 0, ret;

    static const char *const acts[] = { "verify", "list", NULL };

    if ((ret = cli_pick_action(argc, argv, "audit", acts, audit_usage, &act))
        != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "l:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            limit = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || limit < 0) {
                fprintf(stderr, "cmpca audit: bad --limit '%s'\n", optarg);
                return CLI_USAGE;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            audit_usage(stdout);
            return CLI_OK;
        default:
            audit_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "cmpca audit: unexpected argument '%s'\n",
                argv[optind + 1]);
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        return ret;
    ret = strcmp(act, "verify") == 0 ? audit_verify(st)
                                     : audit_list(st, limit, json);
    store_close(st);
    return ret;
}
