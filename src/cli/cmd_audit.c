/*
 * `cmpca audit`: print the hash-chained audit trail, verify it (against
 * exported checkpoints and against certificate status), and take signed
 * checkpoints of its head with a key the server never holds.
 */
#include "cli/cli.h"

#include "audit/audit.h"
#include "ca/ca_signer.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Problems printed before "... and N more". */
#define AUDIT_CLI_MAX_PROBLEMS 100

static void audit_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca audit verify [--anchor FILE ...] [--pubkey FILE]\n"
            "                          [--no-status]\n"
            "       cmpca audit checkpoint --out FILE [--key KEY [--pass SPEC]]\n"
            "       cmpca audit list [--limit N] [--json]\n"
            "\n"
            "verify recomputes the SHA-256 chain over every row, checks it\n"
            "against the head row and every checkpoint in the --anchor files\n"
            "(a checkpoint the chain does not reach: rows were removed; a\n"
            "different hash: the chain was rewritten), and cross-checks\n"
            "certificate status against the revocation events. With --pubkey\n"
            "(a PEM public key or certificate) every checkpoint must be signed\n"
            "by that key (--no-status: chain and checkpoints only). Exit 0 if\n"
            "all agrees, else 1 with each problem.\n"
            "checkpoint verifies the same way against the checkpoints already\n"
            "in FILE, then appends one for the current head: signed with KEY\n"
            "(a PEM file or pkcs11: URI, never the server's keys; its\n"
            "passphrase or PIN from SPEC = file:PATH, env:VAR or prompt), or\n"
            "unsigned without --key. FILE \"-\" prints it. Keep FILE outside\n"
            "the database host's reach (another machine, WORM storage).\n"
            "list prints the newest N rows (default 50; 0 = all), oldest\n"
            "first.\n");
}

struct audit_opts {
    const char **anchor;
    size_t nanchor;
    const char *pubkey, *out, *key, *pass;
    long limit;
    int json, no_status;
};

/* Prints one problem (up to AUDIT_CLI_MAX_PROBLEMS) to stderr. */
static void audit_cli_problem(void *arg, const char *msg)
{
    size_t *n = arg;

    if (++*n <= AUDIT_CLI_MAX_PROBLEMS)
        fprintf(stderr, "cmpca audit: %s\n", msg);
}

/* Reads the checkpoints of every --anchor file (and |extra| with
 * |missing_ok|), each signed by |pub| if given. Returns 1 or 0. */
static int audit_cli_anchors(const struct audit_opts *o, const char *extra,
                             EVP_PKEY *pub, struct audit_ckpt **out,
                             size_t *n)
{
    struct audit_ckpt *all = NULL, *v, *nv;
    char err[512];
    size_t cnt = 0, k, i;

    *out = NULL;
    *n = 0;
    for (i = 0; i <= o->nanchor; i++) {
        const char *path = i < o->nanchor ? o->anchor[i] : extra;

        if (path == NULL)
            continue;
        if (!audit_ckpt_read_file(path, pub, i == o->nanchor, &v, &k, err,
                                  sizeof(err))) {
            fprintf(stderr, "cmpca audit: %s\n", err);
            free(all);
            return 0;
        }
        if (k > 0) {
            if ((nv = realloc(all, (cnt + k) * sizeof(*nv))) == NULL) {
                free(v);
                free(all);
                return 0;
            }
            all = nv;
            memcpy(all + cnt, v, k * sizeof(*v));
            cnt += k;
        }
        free(v);
    }
    *out = all;
    *n = cnt;
    return 1;
}

/* Runs audit_verify and prints the outcome; returns an exit code and the
 * report in |rep|. */
static int audit_cli_check(STORE *st, const struct audit_ckpt *a, size_t n,
                           unsigned flags, struct audit_report *rep)
{
    char err[512];
    size_t np = 0;
    enum audit_rc rc;

    rc = audit_verify(st, a, n, flags, audit_cli_problem, &np, rep, err,
                      sizeof(err));
    if (np > AUDIT_CLI_MAX_PROBLEMS)
        fprintf(stderr, "cmpca audit: ... and %zu more problems\n",
                np - AUDIT_CLI_MAX_PROBLEMS);
    if (rc == AUDIT_ERROR) {
        fprintf(stderr, "cmpca audit: %s\n", err);
        return CLI_STORE;
    }
    if (rc == AUDIT_TAMPERED) {
        if (rep->walk.bad_seq > 0)
            fprintf(stderr, "cmpca audit verify: FAILED at seq %lld: %s\n",
                    (long long)rep->walk.bad_seq, err);
        else
            fprintf(stderr, "cmpca audit verify: FAILED: %s\n", err);
        return CLI_ERR;
    }
    printf("audit trail intact: %s\n", err);
    return CLI_OK;
}

static int audit_verify_cmd(STORE *st, const struct audit_opts *o)
{
    struct audit_ckpt *a = NULL;
    struct audit_report rep;
    EVP_PKEY *pub = NULL;
    char err[512];
    size_t n = 0;
    int ret = CLI_ERR;

    if (o->pubkey != NULL
        && (pub = audit_pubkey_load(o->pubkey, err, sizeof(err))) == NULL) {
        fprintf(stderr, "cmpca audit verify: %s\n", err);
        return CLI_ERR;
    }
    if (!audit_cli_anchors(o, NULL, pub, &a, &n))
        goto end;
    if (o->nanchor > 0 && n == 0) {
        fprintf(stderr, "cmpca audit verify: the anchor files hold no "
                "checkpoint\n");
        goto end;
    }
    ret = audit_cli_check(st, a, n, o->no_status ? AUDIT_VERIFY_NO_STATUS : 0,
                          &rep);
    if (ret == CLI_OK && o->nanchor > 0 && pub == NULL)
        printf("note: checkpoint signatures not checked (no --pubkey)\n");
 end:
    free(a);
    EVP_PKEY_free(pub);
    return ret;
}

static int audit_checkpoint_cmd(STORE *st, const struct audit_opts *o)
{
    struct ca_signer_opts so;
    struct audit_ckpt *a = NULL, c;
    struct audit_report rep;
    CA_SIGNER *signer = NULL;
    char err[512], line[AUDIT_CKPT_LINE_MAX + 1];
    size_t n = 0;
    enum ca_signer_status sst;
    int ret = CLI_ERR;

    if (o->out == NULL) {
        fprintf(stderr, "cmpca audit checkpoint: --out FILE required\n");
        return CLI_USAGE;
    }
    if (o->key != NULL) {
        memset(&so, 0, sizeof(so));
        so.pass_spec = o->pass;
        so.what = "audit checkpoint key";
        if ((sst = ca_signer_load(o->key, &so, &signer, err, sizeof(err)))
            != CA_SIGNER_OK) {
            fprintf(stderr, "cmpca audit checkpoint: %s\n", err);
            return sst == CA_SIGNER_AUTH ? CLI_AUTH : CLI_ERR;
        }
    }
    /* never sign a chain that disagrees with the checkpoints already
     * taken (with this key, when signing) */
    if (!audit_cli_anchors(o, strcmp(o->out, "-") != 0 ? o->out : NULL,
                           signer != NULL ? ca_signer_get0_pubkey(signer)
                           : NULL, &a, &n))
        goto end;
    if ((ret = audit_cli_check(st, a, n, 0, &rep)) != CLI_OK) {
        fprintf(stderr, "cmpca audit checkpoint: not taken\n");
        goto end;
    }
    ret = CLI_ERR;
    if (rep.walk.last_seq == 0) {
        fprintf(stderr, "cmpca audit checkpoint: the audit trail is empty\n");
        goto end;
    }
    memset(&c, 0, sizeof(c));
    c.seq = rep.walk.last_seq;
    memcpy(c.hash, rep.walk.last_hash, STORE_SHA256_LEN);
    c.time = (int64_t)time(NULL);
    if (!audit_ckpt_format(&c, signer, line, sizeof(line), err, sizeof(err))
        || !audit_ckpt_append(o->out, line, err, sizeof(err))) {
        fprintf(stderr, "cmpca audit checkpoint: %s\n", err);
        goto end;
    }
    if (strcmp(o->out, "-") != 0)
        printf("checkpoint of seq %lld %s to %s\n", (long long)c.seq,
               signer != NULL ? "signed and appended" : "appended", o->out);
    ret = CLI_OK;
 end:
    free(a);
    ca_signer_free(signer);
    return ret;
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

/* Parses the options of every audit action into |o|; returns CLI_OK,
 * CLI_USAGE, CLI_ERR, or -1 after --help. */
static int audit_parse(int argc, char **argv, const char *act,
                       struct audit_opts *o)
{
    static const struct option opts[] = {
        { "limit",  required_argument, NULL, 'l' },
        { "json",   no_argument,       NULL, 'j' },
        { "anchor", required_argument, NULL, 'a' },
        { "pubkey", required_argument, NULL, 'P' },
        { "out",    required_argument, NULL, 'o' },
        { "key",    required_argument, NULL, 'k' },
        { "pass",   required_argument, NULL, 'p' },
        { "no-status", no_argument,    NULL, 'S' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char **nv;
    char *end;
    int c, list = strcmp(act, "list") == 0;
    int verify = strcmp(act, "verify") == 0;

    optind = 0;
    while ((c = getopt_long(argc, argv, "l:ja:P:o:k:p:Sh", opts, NULL)) != -1) {
        if ((c == 'l' || c == 'j') && !list) {
            fprintf(stderr, "cmpca audit %s: --limit and --json belong to "
                    "audit list\n", act);
            return CLI_USAGE;
        }
        if ((c == 'a' || c == 'P' || c == 'o' || c == 'k' || c == 'p')
            && list) {
            fprintf(stderr, "cmpca audit list: unexpected option\n");
            return CLI_USAGE;
        }
        if (c == 'S' && !verify) {
            fprintf(stderr, "cmpca audit %s: --no-status belongs to audit "
                    "verify\n", act);
            return CLI_USAGE;
        }
        if ((c == 'o' || c == 'k' || c == 'p') && verify) {
            fprintf(stderr, "cmpca audit verify: --out, --key and --pass "
                    "belong to audit checkpoint\n");
            return CLI_USAGE;
        }
        switch (c) {
        case 'l':
            o->limit = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || o->limit < 0) {
                fprintf(stderr, "cmpca audit: bad --limit '%s'\n", optarg);
                return CLI_USAGE;
            }
            break;
        case 'j':
            o->json = 1;
            break;
        case 'a':
            if ((nv = realloc(o->anchor, (o->nanchor + 1) * sizeof(*nv)))
                == NULL)
                return CLI_ERR;
            o->anchor = nv;
            o->anchor[o->nanchor++] = optarg;
            break;
        case 'P':
            o->pubkey = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'p':
            o->pass = optarg;
            break;
        case 'S':
            o->no_status = 1;
            break;
        case 'h':
            audit_usage(stdout);
            return -1;
        default:
            audit_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cmpca audit: unexpected argument '%s'\n",
                argv[optind]);
        return CLI_USAGE;
    }
    if (o->pass != NULL && o->key == NULL) {
        fprintf(stderr, "cmpca audit checkpoint: --pass needs --key\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_audit(int argc, char **argv)
{
    static const char *const acts[] = { "verify", "checkpoint", "list",
                                        NULL };
    struct audit_opts o;
    STORE *st = NULL;
    const char *act;
    int ret;

    memset(&o, 0, sizeof(o));
    o.limit = 50;
    if ((ret = cli_pick_action(argc, argv, "audit", acts, audit_usage, &act))
        != CLI_OK)
        return ret < 0 ? CLI_OK : ret;
    if ((ret = audit_parse(argc - 1, argv + 1, act, &o)) != CLI_OK) {
        ret = ret < 0 ? CLI_OK : ret;
        goto end;
    }
    if (strcmp(act, "checkpoint") == 0 && o.out == NULL) {
        fprintf(stderr, "cmpca audit checkpoint: --out FILE required\n");
        ret = CLI_USAGE;
        goto end;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        goto end;
    if (strcmp(act, "verify") == 0)
        ret = audit_verify_cmd(st, &o);
    else if (strcmp(act, "checkpoint") == 0)
        ret = audit_checkpoint_cmd(st, &o);
    else
        ret = audit_list(st, o.limit, o.json);
 end:
    store_close(st);
    free(o.anchor);
    return ret;
}
