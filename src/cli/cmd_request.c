/*
 * `cmpca request`: certificate requests held for an operator's approval
 * on aliases with approval = manual (delayed delivery): list, show,
 * approve, reject. A decision is one conditional update with its audit
 * row; the server delivers it at the client's next pollReq.
 */
#include "cli/cli.h"

#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest operator reason text kept. */
#define REQ_REASON_MAX 512

static void req_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca request list [--alias A] [--state S] [--json]\n"
            "       cmpca request show TID [--json]\n"
            "       cmpca request approve TID\n"
            "       cmpca request reject TID [--reason TEXT]\n"
            "\n"
            "Requests that wait for a decision on aliases with approval =\n"
            "manual, by transactionID (hex). States: pending, approved,\n"
            "rejected, expired, delivered. An approved request is issued at\n"
            "the client's next pollReq; a rejected one gets an error\n"
            "(failInfo badRequest) with the reason.\n");
}

struct req_opts {
    const char *alias, *state, *reason, *pos;
    int json;
};

static int req_parse(int argc, char **argv, struct req_opts *o, int allow_pos)
{
    static const struct option opts[] = {
        { "alias",  required_argument, NULL, 'a' },
        { "state",  required_argument, NULL, 's' },
        { "reason", required_argument, NULL, 'r' },
        { "json",   no_argument,       NULL, 'j' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "a:s:r:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->alias = optarg;
            break;
        case 's':
            o->state = optarg;
            break;
        case 'r':
            o->reason = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            req_usage(stdout);
            return -1;
        default:
            req_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (allow_pos && optind < argc)
        o->pos = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "cmpca request: unexpected argument '%s'\n",
                argv[optind]);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Parses a hex transactionID into |tid|; returns 1 or 0. */
static int req_parse_tid(const char *hex, unsigned char *tid, size_t *len)
{
    size_t n = strlen(hex), i;

    if (n == 0 || n % 2 != 0 || n / 2 > STORE_TID_MAX)
        return 0;
    for (i = 0; i < n / 2; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1
            || strspn(hex + 2 * i, "0123456789abcdefABCDEF") < 2)
            return 0;
        tid[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 1;
}

static json_t *req_json(const struct store_pending *p, int full)
{
    char hex[2 * STORE_TID_MAX + 1], t[32];
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    cli_hex(p->tid, p->tid_len, hex);
    json_object_set_new(o, "transaction_id", json_string(hex));
    json_object_set_new(o, "alias", json_string(p->alias));
    json_object_set_new(o, "type", json_string(store_cmp_type_str(p->type)));
    json_object_set_new(o, "state",
                        json_string(store_pending_state_str(p->state)));
    json_object_set_new(o, "requester",
                        p->requester ? json_string(p->requester) : json_null());
    json_object_set_new(o, "device",
                        p->device ? json_string(p->device) : json_null());
    json_object_set_new(o, "subject",
                        p->subject ? json_string(p->subject) : json_null());
    json_object_set_new(o, "profile",
                        p->profile ? json_string(p->profile) : json_null());
    cli_time(p->created, t, sizeof(t));
    json_object_set_new(o, "created", json_string(t));
    cli_time(p->expires, t, sizeof(t));
    json_object_set_new(o, "expires", json_string(t));
    json_object_set_new(o, "decided_by",
                        p->decided_by ? json_string(p->decided_by)
                                      : json_null());
    if (p->decided_by != NULL) {
        cli_time(p->decided_at, t, sizeof(t));
        json_object_set_new(o, "decided_at", json_string(t));
    } else {
        json_object_set_new(o, "decided_at", json_null());
    }
    json_object_set_new(o, "reason",
                        p->reason ? json_string(p->reason) : json_null());
    if (full && p->vendor_cert_len > 0)
        json_object_set_new(o, "vendor_cert",
                            cli_cert_json(p->vendor_cert, p->vendor_cert_len));
    if (full)
        json_object_set_new(o, "request_der_len",
                            json_integer((json_int_t)p->request_len));
    return o;
}

static int req_list(STORE *st, const struct req_opts *o)
{
    struct store_pending_filter f;
    struct store_pending **v = NULL;
    STORE_TX *tx = NULL;
    size_t n = 0, i;
    enum store_rc rc;
    json_t *arr;
    int ret = CLI_OK;

    memset(&f, 0, sizeof(f));
    f.alias = o->alias;
    f.state = -1;
    if (o->state != NULL
        && (f.state = store_pending_state_find(o->state)) < 0) {
        fprintf(stderr, "cmpca request list: unknown state '%s' (pending, "
                "approved, rejected, expired, delivered)\n", o->state);
        return CLI_USAGE;
    }
    if ((rc = store_begin_read(st, &tx)) != STORE_OK
        || (rc = store_pending_list(tx, &f, &v, &n)) != STORE_OK) {
        ret = cli_dberr("request", "list", tx, rc);
        goto end;
    }
    if (o->json) {
        if ((arr = json_array()) == NULL) {
            ret = CLI_ERR;
            goto end;
        }
        for (i = 0; i < n; i++)
            json_array_append_new(arr, req_json(v[i], 0));
        if (!cli_json_print(arr))
            ret = CLI_ERR;
        goto end;
    }
    for (i = 0; i < n; i++) {
        char hex[2 * STORE_TID_MAX + 1], t[32];

        cli_hex(v[i]->tid, v[i]->tid_len, hex);
        cli_time(v[i]->created, t, sizeof(t));
        printf("%s  %-9s  %-5s  %-10s  %s  %s\n", hex,
               store_pending_state_str(v[i]->state),
               store_cmp_type_str(v[i]->type), v[i]->alias, t,
               v[i]->device != NULL && *v[i]->device != '\0' ? v[i]->device
               : v[i]->subject != NULL ? v[i]->subject : "-");
    }
 end:
    store_pending_list_free(v, n);
    store_rollback(tx);
    return ret;
}

/* Reads the request named on the command line in |tx|. */
static int req_get(STORE_TX *tx, const char *act, const char *hex,
                   struct store_pending **p)
{
    unsigned char tid[STORE_TID_MAX];
    size_t len = 0;
    enum store_rc rc;

    if (hex == NULL) {
        fprintf(stderr, "cmpca request %s: TID required\n", act);
        return CLI_USAGE;
    }
    if (!req_parse_tid(hex, tid, &len)) {
        fprintf(stderr, "cmpca request %s: '%s' is not a hex "
                "transactionID\n", act, hex);
        return CLI_USAGE;
    }
    if ((rc = store_pending_get(tx, tid, len, p)) != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            fprintf(stderr, "cmpca request %s: %s: no such request\n", act,
                    hex);
        else
            cli_dberr("request", act, tx, rc);
        return cli_store_exit(rc);
    }
    return CLI_OK;
}

static int req_show(STORE *st, const struct req_opts *o)
{
    struct store_pending *p = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    json_t *j;
    char hex[2 * STORE_TID_MAX + 1], t[32];
    int ret;

    if ((rc = store_begin_read(st, &tx)) != STORE_OK)
        return cli_dberr("request", "show", NULL, rc);
    if ((ret = req_get(tx, "show", o->pos, &p)) != CLI_OK)
        goto end;
    if (o->json) {
        j = req_json(p, 1);
        ret = j != NULL && cli_json_print(j) ? CLI_OK : CLI_ERR;
        goto end;
    }
    cli_hex(p->tid, p->tid_len, hex);
    printf("transaction:  %s\n", hex);
    printf("alias:        %s\n", p->alias);
    printf("type:         %s\n", store_cmp_type_str(p->type));
    printf("state:        %s\n", store_pending_state_str(p->state));
    printf("requester:    %s\n", p->requester != NULL ? p->requester : "-");
    printf("device:       %s\n", p->device != NULL && *p->device != '\0'
                                 ? p->device : "-");
    printf("subject:      %s\n", p->subject != NULL ? p->subject : "-");
    printf("profile:      %s\n", p->profile != NULL ? p->profile : "-");
    cli_time(p->created, t, sizeof(t));
    printf("created:      %s\n", t);
    cli_time(p->expires, t, sizeof(t));
    printf("expires:      %s\n", t);
    if (p->decided_by != NULL) {
        cli_time(p->decided_at, t, sizeof(t));
        printf("decided by:   %s at %s\n", p->decided_by, t);
    }
    if (p->reason != NULL)
        printf("reason:       %s\n", p->reason);
    ret = CLI_OK;
 end:
    store_pending_free(p);
    store_rollback(tx);
    return ret;
}

/* approve, reject: one conditional update of an undecided request and its
 * audit row, in one transaction. */
static int req_decide(STORE *st, const struct req_opts *o, const char *act)
{
    struct store_pending *p = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    int approve = strcmp(act, "approve") == 0, ret;
    char hex[2 * STORE_TID_MAX + 1], action[32], *details = NULL;
    json_t *j = NULL;

    if (approve && o->reason != NULL) {
        fprintf(stderr, "cmpca request approve: --reason is for reject\n");
        return CLI_USAGE;
    }
    if (o->reason != NULL && strlen(o->reason) > REQ_REASON_MAX) {
        fprintf(stderr, "cmpca request reject: --reason longer than %d\n",
                REQ_REASON_MAX);
        return CLI_USAGE;
    }
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return cli_dberr("request", act, NULL, rc);
    if ((ret = req_get(tx, act, o->pos, &p)) != CLI_OK)
        goto end;
    if (p->state != STORE_PENDING_PENDING) {
        fprintf(stderr, "cmpca request %s: %s is %s, not pending\n", act,
                o->pos, store_pending_state_str(p->state));
        ret = CLI_EXISTS;
        goto end;
    }
    if (approve && p->expires <= (int64_t)time(NULL)) {
        fprintf(stderr, "cmpca request approve: %s expired undecided\n",
                o->pos);
        ret = CLI_EXISTS;
        goto end;
    }
    rc = store_pending_set_state(tx, p->tid, p->tid_len, STORE_PENDING_PENDING,
                                 approve ? STORE_PENDING_APPROVED
                                         : STORE_PENDING_REJECTED,
                                 cli_actor(), approve ? NULL : o->reason);
    cli_hex(p->tid, p->tid_len, hex);
    j = json_pack("{s:s, s:s}", "alias", p->alias, "type",
                  store_cmp_type_str(p->type));
    if (j != NULL && p->device != NULL && *p->device != '\0')
        json_object_set_new(j, "device", json_string(p->device));
    if (j != NULL && o->reason != NULL)
        json_object_set_new(j, "reason", json_string(o->reason));
    details = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    snprintf(action, sizeof(action), "request.%s", act);
    if (rc == STORE_OK && details == NULL)
        rc = STORE_ERROR;
    if (rc == STORE_OK)
        rc = store_audit_append(tx, cli_actor(), action, hex, details);
    if (rc == STORE_OK)
        rc = store_commit_clear(&tx);
    if (rc != STORE_OK) {
        if (rc == STORE_CONFLICT)
            fprintf(stderr, "cmpca request %s: %s was decided meanwhile\n",
                    act, o->pos);
        ret = rc == STORE_CONFLICT ? CLI_EXISTS
                                   : cli_dberr("request", act, tx, rc);
        goto end;
    }
    printf("request %s %s\n", hex, approve ? "approved" : "rejected");
    ret = CLI_OK;
 end:
    free(details);
    json_decref(j);
    store_pending_free(p);
    store_rollback(tx);
    return ret;
}

int cli_request(int argc, char **argv)
{
    static const char *const acts[] = {
        "list", "show", "approve", "reject", NULL
    };
    struct req_opts o;
    STORE *st = NULL;
    const char *act;
    int ret;

    memset(&o, 0, sizeof(o));
    if ((ret = cli_pick_action(argc, argv, "request", acts, req_usage, &act))
        != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    ret = req_parse(argc - 1, argv + 1, &o, strcmp(act, "list") != 0);
    if (ret != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    if (strcmp(act, "list") != 0 && (o.alias != NULL || o.state != NULL)) {
        fprintf(stderr, "cmpca request %s: --alias and --state belong to "
                "request list\n", act);
        return CLI_USAGE;
    }
    if (strcmp(act, "reject") != 0 && strcmp(act, "approve") != 0
        && o.reason != NULL) {
        fprintf(stderr, "cmpca request %s: --reason belongs to request "
                "reject\n", act);
        return CLI_USAGE;
    }
    if ((strcmp(act, "approve") == 0 || strcmp(act, "reject") == 0) && o.json) {
        fprintf(stderr, "cmpca request %s: --json is for list and show\n",
                act);
        return CLI_USAGE;
    }
    if (strcmp(act, "list") != 0 && o.pos == NULL) {
        fprintf(stderr, "cmpca request %s: TID required\n", act);
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        return ret;
    if (strcmp(act, "list") == 0)
        ret = req_list(st, &o);
    else if (strcmp(act, "show") == 0)
        ret = req_show(st, &o);
    else
        ret = req_decide(st, &o, act);
    store_close(st);
    return ret;
}
