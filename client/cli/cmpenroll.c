/*
 * cmpenroll: the device command line for 3GPP CMP enrollment (enroll,
 * renew, status, revoke) on top of libcmpclient. Exit codes are the
 * cmpclient_rc values, so scripts and systemd units can act on them.
 */
#include "cmpclient.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#define CMPENROLL_DEFAULT_DIR "/var/lib/cmpenroll"

struct cmpenroll_opts {
    const char *server;
    const char *dir;
    const char *trusted;
    int no_root_from_ip;
    int msg_timeout;
    int total_timeout;
    int retries;
    int backoff_ms;
    int verbose;
    int quiet;
    const char *vendor_key;
    const char *vendor_cert;
    const char *vendor_chain;
    const char *key_type;
    const char *key_file;
    const char *subject;
    const char *if_expiring;
    int reason;
};

static void cmpenroll_usage(FILE *fp)
{
    fprintf(fp,
"usage: cmpenroll COMMAND [OPTIONS]\n"
"\n"
"Device enrollment over CMP with the 3GPP TS 33.310 profile.\n"
"\n"
"Commands:\n"
"  enroll   initial enrollment (ir) with the vendor certificate\n"
"  renew    key update (kur) with the current operator certificate\n"
"  status   show the installed certificate and when it expires\n"
"  revoke   ask the server to revoke the installed certificate (rr)\n"
"\n"
"Common options:\n"
"  -s, --server URL          CMP server, e.g. http://ca:8080/.well-known/cmp/p/3gpp\n"
"                            (default $CMPENROLL_SERVER)\n"
"  -d, --dir DIR             device store (default $CMPENROLL_DIR or "
CMPENROLL_DEFAULT_DIR ")\n"
"      --trusted FILE        pre-provisioned operator root (default DIR/root.pem\n"
"                            if present)\n"
"      --no-root-from-ip     never accept the root delivered in the ip\n"
"      --timeout SEC         per-message timeout (30)\n"
"      --total-timeout SEC   per-transaction timeout (120)\n"
"      --retries N           attempts on network errors (4)\n"
"      --backoff MS          first retry delay, doubled each time (1000)\n"
"  -v, --verbose             show the CMP exchange (twice: OpenSSL debug)\n"
"  -q, --quiet               print errors only\n"
"\n"
"enroll:  --vendor-key FILE --vendor-cert FILE [--vendor-chain FILE]\n"
"         [--key-type ec:P-256|ec:P-384|rsa:3072|ed25519 | --key FILE]\n"
"         [--subject /CN=...]\n"
"renew:   [--key-type SPEC | --key FILE] [--if-expiring-within DURATION]\n"
"         (DURATION: N[s|m|h|d|w], e.g. 30d)\n"
"revoke:  [--reason N] (CRL reason code, default 0 unspecified)\n"
"\n"
"Exit codes: 0 ok, 1 internal, 2 usage, 3 cannot read input, 4 server\n"
"unreachable, 5 rejected by the server, 6 not trusted / no operator root,\n"
"7 protocol error, 8 cannot store results (old files kept), 9 certificate\n"
"expired, 10 not enrolled.\n");
}

/* Library log lines go to stderr. */
static void cmpenroll_log(void *arg, int level, const char *line)
{
    fprintf(stderr, "cmpenroll: %s\n", line);
}

/* Parses "30d", "12h", "15m", "2w", "3600" into seconds; returns 1 or 0. */
static int cmpenroll_duration(const char *s, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0 || v > 100LL * 365 * 86400)
        return 0;
    switch (*end) {
    case '\0': case 's': break;
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    case 'w': v *= 7 * 86400; break;
    default: return 0;
    }
    if (*end != '\0' && end[1] != '\0')
        return 0;
    *out = v;
    return 1;
}

/* Joins |dir| and |name| into |buf|. */
static const char *cmpenroll_path(char *buf, size_t len, const char *dir,
                                  const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

/* Sets up a client from the options; returns it or NULL (message printed). */
static CMPCLIENT *cmpenroll_client(const struct cmpenroll_opts *o, int need_root)
{
    CMPCLIENT *c = cmpclient_new();
    char path[4096];
    const char *root_file = o->trusted;
    X509 *root = NULL;

    if (c == NULL)
        return NULL;
    cmpclient_set_log(c, o->verbose, cmpenroll_log, NULL);
    if (o->server == NULL) {
        fprintf(stderr, "cmpenroll: no server: use --server URL or $CMPENROLL_SERVER\n");
        goto err;
    }
    if (!cmpclient_set_server(c, o->server)) {
        fprintf(stderr, "cmpenroll: %s\n", cmpclient_get0_error(c));
        goto err;
    }
    if (!cmpclient_set_timeouts(c, o->msg_timeout, o->total_timeout)
        || !cmpclient_set_retries(c, o->retries, o->backoff_ms,
                                  o->backoff_ms * 16 > o->backoff_ms
                                  ? o->backoff_ms * 16 : o->backoff_ms)) {
        fprintf(stderr, "cmpenroll: bad timeout or retry values\n");
        goto err;
    }
    cmpclient_set_permit_root_in_ip(c, !o->no_root_from_ip);
    if (root_file == NULL) {
        cmpenroll_path(path, sizeof(path), o->dir, CMPCLIENT_FILE_ROOT);
        if (access(path, F_OK) == 0)
            root_file = path;
    }
    if (root_file != NULL) {
        if ((root = cmpclient_load_cert(root_file)) == NULL) {
            fprintf(stderr, "cmpenroll: cannot read the operator root %s\n", root_file);
            goto err;
        }
        if (!cmpclient_set1_operator_root(c, root))
            goto err;
        if (o->verbose)
            fprintf(stderr, "cmpenroll: using the pre-provisioned operator root %s\n",
                    root_file);
        X509_free(root);
        root = NULL;
    } else if (need_root) {
        fprintf(stderr, "cmpenroll: no operator root in %s and no --trusted\n", o->dir);
        goto err;
    }
    if (!cmpclient_set1_store_dir(c, o->dir))
        goto err;
    return c;
 err:
    X509_free(root);
    cmpclient_free(c);
    return NULL;
}

/* Loads the new key if --key was given; returns 1 or 0. */
static int cmpenroll_newkey(const struct cmpenroll_opts *o, EVP_PKEY **key)
{
    *key = NULL;
    if (o->key_file == NULL)
        return 1;
    if ((*key = cmpclient_load_key(o->key_file)) == NULL) {
        fprintf(stderr, "cmpenroll: cannot read the key %s (unencrypted PEM)\n",
                o->key_file);
        return 0;
    }
    return 1;
}

/* Prints a one-line summary of a new certificate. */
static void cmpenroll_print_result(const struct cmpenroll_opts *o, const char *what,
                                   const struct cmpclient_result *r)
{
    char subj[256];
    BIO *b;

    if (o->quiet)
        return;
    X509_NAME_oneline(X509_get_subject_name(r->cert), subj, sizeof(subj));
    b = BIO_new_fp(stdout, BIO_NOCLOSE);
    BIO_printf(b, "%s: %s, valid until ", what, subj);
    ASN1_TIME_print(b, X509_get0_notAfter(r->cert));
    BIO_printf(b, "; installed in %s (operator root %s)\n", o->dir,
               r->root_from_ip ? "taken from the ip (3GPP 33.310 9.5.4.3)"
               : "pre-provisioned");
    BIO_free(b);
}

static int cmpenroll_enroll(const struct cmpenroll_opts *o)
{
    CMPCLIENT *c = NULL;
    struct cmpclient_identity id = { NULL, NULL, NULL };
    struct cmpclient_result res;
    EVP_PKEY *newkey = NULL;
    X509_NAME *subj = NULL;
    int rc = CMPCLIENT_ERR_LOAD;

    memset(&res, 0, sizeof(res));
    if (o->vendor_key == NULL || o->vendor_cert == NULL) {
        fprintf(stderr, "cmpenroll: enroll needs --vendor-key and --vendor-cert\n");
        return CMPCLIENT_ERR_USAGE;
    }
    if ((id.key = cmpclient_load_key(o->vendor_key)) == NULL
        || (id.cert = cmpclient_load_cert(o->vendor_cert)) == NULL
        || (o->vendor_chain != NULL
            && (id.chain = cmpclient_load_certs(o->vendor_chain, 0)) == NULL)) {
        fprintf(stderr, "cmpenroll: cannot read the vendor credentials\n");
        goto end;
    }
    if (!cmpenroll_newkey(o, &newkey))
        goto end;
    rc = CMPCLIENT_ERR_USAGE;
    if (o->subject != NULL
        && (subj = X509_NAME_new()) != NULL) {
        /* "/A=b/C=d" -> a name; only simple values */
        char *dup = strdup(o->subject), *save = NULL, *tok;
        int ok = dup != NULL && dup[0] == '/';

        for (tok = ok ? strtok_r(dup + 1, "/", &save) : NULL; ok && tok != NULL;
             tok = strtok_r(NULL, "/", &save)) {
            char *eq = strchr(tok, '=');

            ok = eq != NULL && (*eq = '\0', X509_NAME_add_entry_by_txt(
                subj, tok, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0));
        }
        free(dup);
        if (!ok) {
            fprintf(stderr, "cmpenroll: bad --subject '%s' (use /CN=x/O=y)\n", o->subject);
            goto end;
        }
    }
    if ((c = cmpenroll_client(o, 0)) == NULL)
        goto end;
    if (subj != NULL && !cmpclient_set1_subject(c, subj))
        goto end;
    rc = cmpclient_enroll(c, &id, newkey, o->key_type, &res);
    if (rc == CMPCLIENT_OK)
        cmpenroll_print_result(o, "enrolled", &res);
    else
        fprintf(stderr, "cmpenroll: %s\n", cmpclient_get0_error(c));
 end:
    ERR_clear_error();
    cmpclient_result_clear(&res);
    X509_NAME_free(subj);
    EVP_PKEY_free(newkey);
    EVP_PKEY_free(id.key);
    X509_free(id.cert);
    sk_X509_pop_free(id.chain, X509_free);
    cmpclient_free(c);
    return rc;
}

/* Loads the installed operator credentials from the store. Returns
 * CMPCLIENT_OK, CMPCLIENT_ERR_NOT_ENROLLED or CMPCLIENT_ERR_LOAD. */
static int cmpenroll_load_current(const struct cmpenroll_opts *o,
                                  struct cmpclient_identity *id)
{
    char path[4096];

    memset(id, 0, sizeof(*id));
    cmpenroll_path(path, sizeof(path), o->dir, CMPCLIENT_FILE_CERT);
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "cmpenroll: not enrolled: no %s\n", path);
        return CMPCLIENT_ERR_NOT_ENROLLED;
    }
    if ((id->cert = cmpclient_load_cert(path)) == NULL
        || (id->key = cmpclient_load_key(cmpenroll_path(path, sizeof(path), o->dir,
                                                         CMPCLIENT_FILE_KEY))) == NULL
        || (id->chain = cmpclient_load_certs(cmpenroll_path(path, sizeof(path), o->dir,
                                                            CMPCLIENT_FILE_CHAIN), 1)) == NULL) {
        fprintf(stderr, "cmpenroll: cannot read the installed credentials in %s\n",
                o->dir);
        return CMPCLIENT_ERR_LOAD;
    }
    return CMPCLIENT_OK;
}

static void cmpenroll_free_id(struct cmpclient_identity *id)
{
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
    sk_X509_pop_free(id->chain, X509_free);
    memset(id, 0, sizeof(*id));
}

/* Seconds from now until notAfter of |x| (negative when expired). */
static long long cmpenroll_seconds_left(X509 *x)
{
    int days = 0, secs = 0;

    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        return -1;
    return (long long)days * 86400 + secs;
}

static int cmpenroll_renew(const struct cmpenroll_opts *o)
{
    struct cmpclient_identity id;
    struct cmpclient_result res;
    CMPCLIENT *c = NULL;
    EVP_PKEY *newkey = NULL;
    long long window = 0, left;
    int rc;

    memset(&res, 0, sizeof(res));
    if (o->if_expiring != NULL && !cmpenroll_duration(o->if_expiring, &window)) {
        fprintf(stderr, "cmpenroll: bad duration '%s' (e.g. 30d, 12h)\n", o->if_expiring);
        return CMPCLIENT_ERR_USAGE;
    }
    if ((rc = cmpenroll_load_current(o, &id)) != CMPCLIENT_OK)
        goto end;
    left = cmpenroll_seconds_left(id.cert);
    if (left <= 0 || X509_cmp_time(X509_get0_notBefore(id.cert), NULL) > 0) {
        fprintf(stderr, "cmpenroll: the installed certificate is not valid now; "
                "enroll again with the vendor credentials\n");
        rc = CMPCLIENT_ERR_EXPIRED;
        goto end;
    }
    if (o->if_expiring != NULL && left > window) {
        if (!o->quiet)
            printf("not due: the certificate expires in %lld days (window %lld days)\n",
                   left / 86400, window / 86400);
        rc = CMPCLIENT_OK;
        goto end;
    }
    rc = CMPCLIENT_ERR_LOAD;
    if (!cmpenroll_newkey(o, &newkey))
        goto end;
    rc = CMPCLIENT_ERR_TRUST;
    if ((c = cmpenroll_client(o, 1)) == NULL)
        goto end;
    rc = cmpclient_renew(c, &id, newkey, o->key_type, &res);
    if (rc == CMPCLIENT_OK)
        cmpenroll_print_result(o, "renewed", &res);
    else
        fprintf(stderr, "cmpenroll: %s\n", cmpclient_get0_error(c));
 end:
    ERR_clear_error();
    cmpclient_result_clear(&res);
    EVP_PKEY_free(newkey);
    cmpenroll_free_id(&id);
    cmpclient_free(c);
    return rc;
}

static int cmpenroll_revoke(const struct cmpenroll_opts *o)
{
    struct cmpclient_identity id;
    CMPCLIENT *c = NULL;
    int rc;

    if ((rc = cmpenroll_load_current(o, &id)) != CMPCLIENT_OK)
        goto end;
    rc = CMPCLIENT_ERR_TRUST;
    if ((c = cmpenroll_client(o, 1)) == NULL)
        goto end;
    rc = cmpclient_revoke(c, &id, o->reason);
    if (rc == CMPCLIENT_OK) {
        char path[4096], line[256];
        char *hex = NULL;
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id.cert), NULL);

        if (bn != NULL && (hex = BN_bn2hex(bn)) != NULL) {
            int n = snprintf(line, sizeof(line), "%s\n", hex);

            /* remembered so that `status` can say so; best effort */
            cmpclient_write_file_atomic(cmpenroll_path(path, sizeof(path), o->dir,
                                                       "revoked"), line, (size_t)n, 0644);
        }
        if (!o->quiet)
            printf("revoked: serial %s\n", hex != NULL ? hex : "?");
        OPENSSL_free(hex);
        BN_free(bn);
    } else {
        fprintf(stderr, "cmpenroll: %s\n", cmpclient_get0_error(c));
    }
 end:
    ERR_clear_error();
    cmpenroll_free_id(&id);
    cmpclient_free(c);
    return rc;
}

static int cmpenroll_status(const struct cmpenroll_opts *o)
{
    struct cmpclient_identity id;
    char path[4096], subj[256], iss[256], revoked[256] = "";
    X509 *root = NULL;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    long long left;
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    FILE *fp;
    int rc;

    if ((rc = cmpenroll_load_current(o, &id)) != CMPCLIENT_OK)
        goto end;
    X509_NAME_oneline(X509_get_subject_name(id.cert), subj, sizeof(subj));
    X509_NAME_oneline(X509_get_issuer_name(id.cert), iss, sizeof(iss));
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id.cert), NULL);
    hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    left = cmpenroll_seconds_left(id.cert);
    root = cmpclient_load_cert(cmpenroll_path(path, sizeof(path), o->dir,
                                              CMPCLIENT_FILE_ROOT));
    if ((fp = fopen(cmpenroll_path(path, sizeof(path), o->dir, "revoked"), "r")) != NULL) {
        if (fgets(revoked, sizeof(revoked), fp) == NULL)
            revoked[0] = '\0';
        revoked[strcspn(revoked, "\n")] = '\0';
        fclose(fp);
    }
    BIO_printf(out, "store:      %s\n", o->dir);
    BIO_printf(out, "subject:    %s\n", subj);
    BIO_printf(out, "issuer:     %s\n", iss);
    BIO_printf(out, "serial:     %s\n", hex != NULL ? hex : "?");
    BIO_printf(out, "not before: ");
    ASN1_TIME_print(out, X509_get0_notBefore(id.cert));
    BIO_printf(out, "\nnot after:  ");
    ASN1_TIME_print(out, X509_get0_notAfter(id.cert));
    BIO_printf(out, " (%s %lld days)\n", left >= 0 ? "in" : "expired",
               (left >= 0 ? left : -left) / 86400);
    BIO_printf(out, "key:        %s (%s)\n",
               X509_check_private_key(id.cert, id.key) == 1
               ? "matches the certificate" : "DOES NOT MATCH the certificate",
               EVP_PKEY_get0_type_name(id.key));
    if (root != NULL) {
        X509_NAME_oneline(X509_get_subject_name(root), subj, sizeof(subj));
        BIO_printf(out, "root:       %s\n", subj);
    } else {
        BIO_printf(out, "root:       none\n");
    }
    BIO_printf(out, "chain:      %d intermediate(s)\n", sk_X509_num(id.chain));
    if (hex != NULL && strcmp(revoked, hex) == 0) {
        BIO_printf(out, "state:      revoked\n");
        rc = CMPCLIENT_ERR_EXPIRED;
    } else if (left <= 0 || X509_cmp_time(X509_get0_notBefore(id.cert), NULL) > 0) {
        BIO_printf(out, "state:      not valid now\n");
        rc = CMPCLIENT_ERR_EXPIRED;
    } else {
        BIO_printf(out, "state:      valid\n");
    }
 end:
    ERR_clear_error();
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(root);
    BIO_free(out);
    cmpenroll_free_id(&id);
    return rc;
}

int main(int argc, char **argv)
{
    enum {
        OPT_TRUSTED = 256, OPT_NO_ROOT_FROM_IP, OPT_TIMEOUT, OPT_TOTAL_TIMEOUT,
        OPT_RETRIES, OPT_BACKOFF, OPT_VENDOR_KEY, OPT_VENDOR_CERT,
        OPT_VENDOR_CHAIN, OPT_KEY_TYPE, OPT_KEY, OPT_SUBJECT, OPT_IF_EXPIRING,
        OPT_REASON
    };
    static const struct option opts[] = {
        { "server", required_argument, NULL, 's' },
        { "dir", required_argument, NULL, 'd' },
        { "trusted", required_argument, NULL, OPT_TRUSTED },
        { "no-root-from-ip", no_argument, NULL, OPT_NO_ROOT_FROM_IP },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "total-timeout", required_argument, NULL, OPT_TOTAL_TIMEOUT },
        { "retries", required_argument, NULL, OPT_RETRIES },
        { "backoff", required_argument, NULL, OPT_BACKOFF },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "vendor-key", required_argument, NULL, OPT_VENDOR_KEY },
        { "vendor-cert", required_argument, NULL, OPT_VENDOR_CERT },
        { "vendor-chain", required_argument, NULL, OPT_VENDOR_CHAIN },
        { "key-type", required_argument, NULL, OPT_KEY_TYPE },
        { "key", required_argument, NULL, OPT_KEY },
        { "subject", required_argument, NULL, OPT_SUBJECT },
        { "if-expiring-within", required_argument, NULL, OPT_IF_EXPIRING },
        { "reason", required_argument, NULL, OPT_REASON },
        { NULL, 0, NULL, 0 }
    };
    struct cmpenroll_opts o;
    const char *cmd;
    const char *env;
    char *end;
    int c;

    memset(&o, 0, sizeof(o));
    o.msg_timeout = 30;
    o.total_timeout = 120;
    o.retries = 4;
    o.backoff_ms = 1000;
    o.server = getenv("CMPENROLL_SERVER");
    env = getenv("CMPENROLL_DIR");
    o.dir = env != NULL && *env != '\0' ? env : CMPENROLL_DEFAULT_DIR;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cmpenroll_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CMPCLIENT_ERR_USAGE : CMPCLIENT_OK;
    }
    cmd = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "s:d:vqh", opts, NULL)) != -1) {
        long v = 0;

        if (c >= OPT_TIMEOUT && c <= OPT_BACKOFF) {
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 0 || v > 86400000L
                || (c == OPT_RETRIES && (v < 1 || v > 100))) {
                fprintf(stderr, "cmpenroll: bad number '%s'\n", optarg);
                return CMPCLIENT_ERR_USAGE;
            }
        }
        switch (c) {
        case 's': o.server = optarg; break;
        case 'd': o.dir = optarg; break;
        case OPT_TRUSTED: o.trusted = optarg; break;
        case OPT_NO_ROOT_FROM_IP: o.no_root_from_ip = 1; break;
        case OPT_TIMEOUT: o.msg_timeout = (int)v; break;
        case OPT_TOTAL_TIMEOUT: o.total_timeout = (int)v; break;
        case OPT_RETRIES: o.retries = (int)v; break;
        case OPT_BACKOFF: o.backoff_ms = (int)v; break;
        case 'v': o.verbose++; break;
        case 'q': o.quiet = 1; break;
        case 'h': cmpenroll_usage(stdout); return CMPCLIENT_OK;
        case OPT_VENDOR_KEY: o.vendor_key = optarg; break;
        case OPT_VENDOR_CERT: o.vendor_cert = optarg; break;
        case OPT_VENDOR_CHAIN: o.vendor_chain = optarg; break;
        case OPT_KEY_TYPE: o.key_type = optarg; break;
        case OPT_KEY: o.key_file = optarg; break;
        case OPT_SUBJECT: o.subject = optarg; break;
        case OPT_IF_EXPIRING: o.if_expiring = optarg; break;
        case OPT_REASON:
            errno = 0;
            o.reason = (int)strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o.reason < 0 || o.reason > 10
                || o.reason == 7) {
                fprintf(stderr, "cmpenroll: bad --reason '%s' (0..10, not 7)\n", optarg);
                return CMPCLIENT_ERR_USAGE;
            }
            break;
        default:
            cmpenroll_usage(stderr);
            return CMPCLIENT_ERR_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "cmpenroll: unexpected argument '%s'\n", argv[optind]);
        return CMPCLIENT_ERR_USAGE;
    }
    if (o.key_file != NULL && o.key_type != NULL) {
        fprintf(stderr, "cmpenroll: --key and --key-type exclude each other\n");
        return CMPCLIENT_ERR_USAGE;
    }
    if (o.key_type != NULL) {
        EVP_PKEY *k = NULL;

        /* validate the spec cheaply before talking to anyone */
        if (strncmp(o.key_type, "ec:", 3) != 0 && strncmp(o.key_type, "rsa:", 4) != 0
            && strcmp(o.key_type, "ed25519") != 0 && strcmp(o.key_type, "ed448") != 0) {
            fprintf(stderr, "cmpenroll: unknown --key-type '%s'\n", o.key_type);
            return CMPCLIENT_ERR_USAGE;
        }
        EVP_PKEY_free(k);
    }
    umask(077);
    if (strcmp(cmd, "enroll") == 0)
        return cmpenroll_enroll(&o);
    if (strcmp(cmd, "renew") == 0)
        return cmpenroll_renew(&o);
    if (strcmp(cmd, "status") == 0)
        return cmpenroll_status(&o);
    if (strcmp(cmd, "revoke") == 0)
        return cmpenroll_revoke(&o);
    fprintf(stderr, "cmpenroll: unknown command '%s' (see cmpenroll --help)\n", cmd);
    return CMPCLIENT_ERR_USAGE;
}
