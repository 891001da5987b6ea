/*
 * `cmpca cert ...`: issue a certificate from a CSR through a profile, list,
 * show and export issued certificates, revoke one or release it from hold
 * (either also makes a fresh CRL in the same transaction).
 */
#include "cli/cli.h"
#include "util/x509_der.h"

#include "ca/ca.h"
#include "conf/conf.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Looks a certificate up by serial, in CA |ca_name| or (NULL) in any CA.
 * Returns a CLI exit code; on success *out is set (and *ca_id). */
static int cert_find(STORE_TX *tx, const char *ca_name, const char *hex,
                     struct store_cert **out)
{
    unsigned char serial[STORE_SERIAL_MAX];
    size_t slen = 0, n = 0, i;
    struct store_ca *ca = NULL, **v = NULL;
    struct store_cert *c = NULL;
    enum store_rc src;
    int ret = CLI_NOTFOUND;

    *out = NULL;
    if (!cli_parse_serial(hex, serial, &slen)) {
        fprintf(stderr, "cmpca: '%s' is not a hex serial number\n", hex);
        return CLI_USAGE;
    }
    if (ca_name != NULL) {
        if ((src = store_ca_get_by_name(tx, ca_name, &ca)) != STORE_OK) {
            fprintf(stderr, "cmpca: no CA named '%s'\n", ca_name);
            return cli_store_exit(src);
        }
        src = store_cert_get_by_serial(tx, ca->id, serial, slen, out);
        store_ca_free(ca);
        if (src != STORE_OK) {
            fprintf(stderr, "cmpca: no certificate %s from CA %s\n", hex,
                    ca_name);
            return cli_store_exit(src);
        }
        return CLI_OK;
    }
    if ((src = store_ca_list(tx, &v, &n)) != STORE_OK)
        return cli_store_exit(src);
    for (i = 0; i < n; i++) {
        src = store_cert_get_by_serial(tx, v[i]->id, serial, slen, &c);
        if (src == STORE_NOTFOUND)
            continue;
        if (src != STORE_OK) {
            ret = cli_store_exit(src);
            goto end;
        }
        if (*out != NULL) {
            fprintf(stderr, "cmpca: serial %s exists in several CAs; give "
                    "--ca\n", hex);
            store_cert_free(c);
            ret = CLI_EXISTS;
            goto end;
        }
        *out = c;
        c = NULL;
    }
    if (*out == NULL) {
        fprintf(stderr, "cmpca: no certificate with serial %s\n", hex);
        goto end;
    }
    ret = CLI_OK;
 end:
    if (ret != CLI_OK) {
        store_cert_free(*out);
        *out = NULL;
    }
    store_ca_list_free(v, n);
    return ret;
}

/* A JSON description of certificate record |c|. */
static json_t *cert_json(STORE_TX *tx, const struct store_cert *c)
{
    json_t *o = c->der != NULL ? cli_cert_json(c->der, c->der_len)
        : json_object();
    struct store_ca *ca = NULL;
    char hex[2 * STORE_SERIAL_MAX + 1], t[32];

    if (o == NULL)
        return NULL;
    cli_hex(c->serial, c->serial_len, hex);
    json_object_set_new(o, "id", json_integer(c->id));
    json_object_set_new(o, "serial", json_string(hex));
    if (c->der == NULL) {
        json_object_set_new(o, "subject", json_string(c->subject));
        cli_time(c->not_after, t, sizeof(t));
        json_object_set_new(o, "not_after", json_string(t));
    }
    if (store_ca_get(tx, c->ca_id, &ca) == STORE_OK)
        json_object_set_new(o, "issuing_ca", json_string(ca->name));
    store_ca_free(ca);
    json_object_set_new(o, "status", json_string(
                            c->status == STORE_CERT_REVOKED ? "revoked"
                            : "valid"));
    if (c->status == STORE_CERT_REVOKED) {
        cli_time(c->revoked_at, t, sizeof(t));
        json_object_set_new(o, "revoked_at", json_string(t));
        if (ca_reason_str(c->reason) != NULL)
            json_object_set_new(o, "reason",
                                json_string(ca_reason_str(c->reason)));
    }
    if (c->profile != NULL)
        json_object_set_new(o, "profile", json_string(c->profile));
    if (c->device_id != 0)
        json_object_set_new(o, "device_id", json_integer(c->device_id));
    return o;
}

/* Parses a time: "@UNIX", "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
static int cert_parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    const char *e;
    char *end;

    if (s[0] == '@') {
        *out = strtoll(s + 1, &end, 10);
        return end != s + 1 && *end == '\0' && *out > 0;
    }
    memset(&tm, 0, sizeof(tm));
    e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (e == NULL) {
        memset(&tm, 0, sizeof(tm));
        e = strptime(s, "%Y-%m-%d", &tm);
    }
    if (e == NULL || !(*e == '\0' || (e[0] == 'Z' && e[1] == '\0')))
        return 0;
    *out = (int64_t)timegm(&tm);
    return *out > 0;
}

/* Opens |path| for writing, or returns stdout for NULL / "-". */
static FILE *cert_out(const char *path)
{
    FILE *fp;

    if (path == NULL || strcmp(path, "-") == 0)
        return stdout;
    if ((fp = fopen(path, "w")) == NULL)
        fprintf(stderr, "cmpca: cannot write %s\n", path);
    return fp;
}

/* Closes what cert_out opened; returns 1 if everything was written. */
static int cert_close(FILE *fp)
{
    if (fp == stdout)
        return fflush(fp) == 0;
    return fclose(fp) == 0;
}

static void cert_revoke_usage(FILE *fp)
{
    fprintf(fp, "usage: cmpca cert revoke --ca N --serial HEX [--reason R]\n"
            "         [--date YYYY-MM-DD[THH:MM:SSZ]|@UNIX] [--ca-pass SPEC]\n"
            "  R: unspecified keyCompromise cACompromise affiliationChanged\n"
            "     superseded cessationOfOperation certificateHold\n"
            "     privilegeWithdrawn aACompromise; removeFromCRL releases a\n"
            "     certificate on hold (as cert unhold). A certificate on hold\n"
            "     may be revoked for good with another reason.\n");
}

static void cert_unhold_usage(FILE *fp)
{
    fprintf(fp, "usage: cmpca cert unhold --ca N --serial HEX [--ca-pass SPEC]\n"
            "  Releases a certificate on hold (certificateHold): valid again,\n"
            "  gone from the new CRL (RFC 5280 removeFromCRL).\n");
}

/* The device whose current certificate |rec| is, back to enrolled if it
 * was revoked with it (the certificate is valid again). */
static enum store_rc cert_device_release(STORE_TX *tx,
                                         const struct store_cert *rec)
{
    struct store_device *d = NULL;
    enum store_rc src;

    if (rec->device_id == 0)
        return STORE_OK;
    if ((src = store_device_get(tx, rec->device_id, &d)) != STORE_OK)
        return src == STORE_NOTFOUND ? STORE_OK : src;
    if (d->cert_id == rec->id && d->state == STORE_DEV_REVOKED)
        src = store_device_set_state(tx, d->id, d->state, STORE_DEV_ENROLLED,
                                     STORE_KEEP_CERT);
    store_device_free(d);
    return src;
}

/* cert revoke, and cert unhold (|unhold|: the reason is removeFromCRL). */
static int cert_revoke_or_unhold(int argc, char **argv, int unhold)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "serial", required_argument, NULL, 's' },
        { "reason", required_argument, NULL, 'r' },
        { "date", required_argument, NULL, 'd' },
        { "ca-pass", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *ca_name = NULL, *hex = NULL, *capass = NULL;
    void (*usage)(FILE *) = unhold ? cert_unhold_usage : cert_revoke_usage;
    int reason = unhold ? CA_REASON_REMOVE : -1, c, ret;
    int64_t when = 0;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    struct store_cert *rec = NULL;
    CA *ca = NULL;
    char err[1024];
    enum ca_revoke_rc rrc;
    enum store_rc src;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': ca_name = optarg; break;
        case 's': hex = optarg; break;
        case 'r':
            if (unhold) {
                usage(stderr);
                return CLI_USAGE;
            }
            if ((reason = ca_reason_parse(optarg)) < 0) {
                fprintf(stderr, "cmpca: unknown reason '%s'\n", optarg);
                return CLI_USAGE;
            }
            break;
        case 'd':
            if (unhold) {
                usage(stderr);
                return CLI_USAGE;
            }
            if (!cert_parse_time(optarg, &when)) {
                fprintf(stderr, "cmpca: bad --date '%s'\n", optarg);
                return CLI_USAGE;
            }
            break;
        case 'q': capass = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc || ca_name == NULL || hex == NULL) {
        usage(stderr);
        return CLI_USAGE;
    }
    /* the CA key is needed for the CRL: fail before changing anything */
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK
        || (ret = cli_ca_load(conf, st, ca_name, capass, 0, &ca)) != CLI_OK)
        goto end;
    if ((src = store_begin(st, &tx)) != STORE_OK) {
        fprintf(stderr, "cmpca: %s\n", store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    if ((ret = cert_find(tx, ca_name, hex, &rec)) != CLI_OK)
        goto end;
    rrc = ca_revoke(ca, tx, rec->id, reason, when, cli_actor(), err,
                    sizeof(err));
    if (rrc != CA_REVOKE_OK) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = rrc == CA_REVOKE_ALREADY || rrc == CA_REVOKE_NOT_HELD
            ? CLI_EXISTS : rrc == CA_REVOKE_NOTFOUND ? CLI_NOTFOUND : CLI_STORE;
        goto end;
    }
    if (reason == CA_REASON_REMOVE
        && (src = cert_device_release(tx, rec)) != STORE_OK) {
        fprintf(stderr, "cmpca: device state: %s\n", store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    if (!ca_crl_generate(ca, tx, 0, NULL, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_ERR;
        goto end;
    }
    src = store_commit(tx);
    tx = NULL;
    if (src != STORE_OK) {
        fprintf(stderr, "cmpca: commit failed: %s\n", store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    if (reason == CA_REASON_REMOVE)
        printf("released %s of CA %s from hold; new CRL made\n", hex, ca_name);
    else
        printf("revoked %s of CA %s%s%s; new CRL made\n", hex, ca_name,
               reason >= 0 ? ": " : "",
               reason >= 0 ? ca_reason_str(reason) : "");
    ret = CLI_OK;
 end:
    store_rollback(tx);
    store_cert_free(rec);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    return ret;
}

static void cert_issue_usage(FILE *fp)
{
    fprintf(fp, "usage: cmpca cert issue --ca N --profile P --csr FILE\n"
            "         [-o FILE] [--ca-pass SPEC]\n"
            "  Issues from a PKCS#10 request (its signature is checked); the\n"
            "  profile decides subject (request.* variables come from the CSR\n"
            "  subject), extensions and validity.\n");
}

static int cert_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "profile", required_argument, NULL, 'p' },
        { "csr", required_argument, NULL, 'c' },
        { "out", required_argument, NULL, 'o' },
        { "ca-pass", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *ca_name = NULL, *prof_name = NULL, *csrf = NULL, *outf = NULL;
    const char *capass = NULL;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    CA *ca = NULL;
    CA_PROFILE *prof = NULL;
    X509_REQ *req = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pub;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    struct ca_issue_req ir;
    struct ca_vars vars;
    BIO *bio = NULL;
    FILE *fp = NULL;
    int64_t id = 0;
    char err[1024], *details = NULL, hex[2 * STORE_SERIAL_MAX + 1];
    json_t *jd = NULL;
    const ASN1_INTEGER *sn;
    int c, ret;
    enum ca_issue_rc irc;
    enum store_rc src;

    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': ca_name = optarg; break;
        case 'p': prof_name = optarg; break;
        case 'c': csrf = optarg; break;
        case 'o': outf = optarg; break;
        case 'q': capass = optarg; break;
        case 'h': cert_issue_usage(stdout); return CLI_OK;
        default: cert_issue_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc || ca_name == NULL || prof_name == NULL || csrf == NULL) {
        cert_issue_usage(stderr);
        return CLI_USAGE;
    }
    if ((bio = BIO_new_file(csrf, "rb")) == NULL
        || ((req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL
            && (BIO_reset(bio) < 0
                || (req = d2i_X509_REQ_bio(bio, NULL)) == NULL))) {
        fprintf(stderr, "cmpca: %s: no PKCS#10 request\n", csrf);
        ret = CLI_ERR;
        goto end;
    }
    if ((pub = X509_REQ_get0_pubkey(req)) == NULL
        || X509_REQ_verify(req, pub) != 1) {
        fprintf(stderr, "cmpca: %s: the request's signature does not verify\n",
                csrf);
        ret = CLI_ERR;
        goto end;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK)
        goto end;
    if (!ca_profile_load(conf, prof_name, &prof, err, sizeof(err))) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = CLI_CONFIG;
        goto end;
    }
    if ((ret = cli_ca_load(conf, st, ca_name, capass, 0, &ca)) != CLI_OK)
        goto end;
    exts = X509_REQ_get_extensions(req);
    memset(&ir, 0, sizeof(ir));
    memset(&vars, 0, sizeof(vars));
    vars.request = X509_REQ_get_subject_name(req);
    ir.pubkey = pub;
    ir.spki = X509_REQ_get_X509_PUBKEY(req);
    ir.subject = X509_REQ_get_subject_name(req);
    ir.exts = exts;
    ir.vars = ca_vars_lookup;
    ir.vars_arg = &vars;
    if ((src = store_begin(st, &tx)) != STORE_OK) {
        fprintf(stderr, "cmpca: %s\n", store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    irc = ca_issue_store(ca, prof, &ir, tx, 0, &cert, &id, err, sizeof(err));
    if (irc != CA_ISSUE_OK) {
        fprintf(stderr, "cmpca: %s\n", err);
        ret = irc == CA_ISSUE_STORE ? CLI_STORE : CLI_ERR;
        goto end;
    }
    sn = X509_get0_serialNumber(cert);
    cli_hex(ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn), hex);
    jd = json_pack("{s:I, s:s}", "cert_id", (json_int_t)id, "profile",
                   prof_name);
    details = jd != NULL ? json_dumps(jd, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if ((src = details == NULL ? STORE_ERROR
                : store_audit_append(tx, cli_actor(), "cert.issue", hex,
                                     details)) != STORE_OK || (src = store_commit_clear(&tx)) != STORE_OK) {
        store_rollback(tx);     /* the audit row failed: nothing stays */
        tx = NULL;
        fprintf(stderr, "cmpca: storing the certificate failed: %s\n",
                store_rc_str(src));
        ret = cli_store_exit(src);
        goto end;
    }
    tx = NULL;
    if ((fp = cert_out(outf)) == NULL || !PEM_write_X509(fp, cert)
        || !cert_close(fp)) {
        fprintf(stderr, "cmpca: certificate %s issued but not written\n", hex);
        ret = CLI_ERR;
        goto end;
    }
    if (fp != stdout)
        fprintf(stderr, "issued %s (serial %s)\n", outf, hex);
    ret = CLI_OK;
 end:
    store_rollback(tx);
    free(details);
    json_decref(jd);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_free(cert);
    X509_REQ_free(req);
    BIO_free(bio);
    ca_profile_free(prof);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    ERR_clear_error();
    return ret;
}

static int cert_list(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "status", required_argument, NULL, 's' },
        { "limit", required_argument, NULL, 'l' },
        { "json", no_argument, NULL, 'j' },
        { "expiring-within", required_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *usage = "usage: cmpca cert list [--ca N] "
        "[--status valid|revoked] [--expiring-within DURATION] [--limit N] "
        "[--json]\n  --expiring-within 30d: valid certificates whose notAfter "
        "is within that time from now\n";
    long within = -1;
    time_t now = time(NULL);
    struct store_cert_filter f;
    struct store_cert **v = NULL;
    struct store_ca *ca = NULL;
    size_t n = 0, i;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    const char *ca_name = NULL;
    json_t *arr = NULL;
    char hex[2 * STORE_SERIAL_MAX + 1], t[32], *end;
    int c, json = 0, ret;
    enum store_rc src;

    store_cert_filter_init(&f);
    f.skip_der = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': ca_name = optarg; break;
        case 's':
            if (strcmp(optarg, "valid") == 0)
                f.status = STORE_CERT_VALID;
            else if (strcmp(optarg, "revoked") == 0)
                f.status = STORE_CERT_REVOKED;
            else {
                fprintf(stderr, "cmpca: --status valid|revoked\n");
                return CLI_USAGE;
            }
            break;
        case 'l':
            f.limit = strtol(optarg, &end, 10);
            if (*end != '\0' || f.limit < 0) {
                fputs(usage, stderr);
                return CLI_USAGE;
            }
            break;
        case 'j': json = 1; break;
        case 'e':
            if (!conf_parse_duration(optarg, &within) || within <= 0) {
                fprintf(stderr, "cmpca: --expiring-within takes a duration "
                        "(e.g. 30d)\n");
                return CLI_USAGE;
            }
            break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        default: fputs(usage, stderr); return CLI_USAGE;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    if (within > 0) {
        if (f.status == STORE_CERT_REVOKED) {
            fprintf(stderr, "cmpca: --expiring-within lists valid "
                    "certificates\n");
            return CLI_USAGE;
        }
        f.status = STORE_CERT_VALID;
        f.expires_after = (int64_t)now;
        f.expires_before = (int64_t)now + within;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        return ret;
    if ((src = store_begin_read(st, &tx)) != STORE_OK)
        goto fail;
    if (ca_name != NULL) {
        if ((src = store_ca_get_by_name(tx, ca_name, &ca)) != STORE_OK) {
            fprintf(stderr, "cmpca: no CA named '%s'\n", ca_name);
            ret = cli_store_exit(src);
            goto end;
        }
        f.ca_id = ca->id;
    }
    if ((src = store_cert_list(tx, &f, &v, &n)) != STORE_OK)
        goto fail;
    arr = json_array();
    for (i = 0; i < n; i++) {
        if (json) {
            json_t *o = cert_json(tx, v[i]);

            if (within > 0)
                json_object_set_new(o, "days_left", json_integer(
                                        (v[i]->not_after - (int64_t)now)
                                        / 86400));
            json_array_append_new(arr, o);
            continue;
        }
        cli_hex(v[i]->serial, v[i]->serial_len, hex);
        cli_time(v[i]->not_after, t, sizeof(t));
        printf("%s %-7s %s %s\n", hex, v[i]->status == STORE_CERT_REVOKED
               ? "revoked" : "valid", t, v[i]->subject);
    }
    if (json) {
        cli_json_print(arr);
        arr = NULL;
    }
    ret = CLI_OK;
    goto end;
 fail:
    fprintf(stderr, "cmpca: cannot list certificates: %s\n", store_rc_str(src));
    ret = cli_store_exit(src);
 end:
    json_decref(arr);
    store_cert_list_free(v, n);
    store_ca_free(ca);
    store_rollback(tx);
    store_close(st);
    return ret;
}

/* show (|export| 0) or export (1) one certificate. */
static int cert_show_export(int argc, char **argv, int export)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "serial", required_argument, NULL, 's' },
        { "out", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' },
        { "der", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *usage = export
        ? "usage: cmpca cert export --serial HEX [--ca N] [-o FILE] [--der]\n"
        : "usage: cmpca cert show --serial HEX [--ca N] [--json]\n";
    const char *ca_name = NULL, *hex = NULL, *outf = NULL;
    struct store_cert *rec = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    FILE *fp = NULL;
    X509 *x = NULL;
    json_t *o, *v;
    const char *k;
    int c, json = 0, der = 0, ret;
    enum store_rc src;

    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': ca_name = optarg; break;
        case 's': hex = optarg; break;
        case 'o': outf = optarg; break;
        case 'j': json = 1; break;
        case 'd': der = 1; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        default: fputs(usage, stderr); return CLI_USAGE;
        }
    }
    if (hex == NULL && optind < argc)
        hex = argv[optind++];
    if (optind != argc || hex == NULL) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(NULL, &st)) != CLI_OK)
        return ret;
    if ((src = store_begin_read(st, &tx)) != STORE_OK) {
        ret = cli_store_exit(src);
        goto end;
    }
    if ((ret = cert_find(tx, ca_name, hex, &rec)) != CLI_OK)
        goto end;
    if (export) {
        ret = CLI_ERR;
        if ((x = x509_der_get1(rec->der, rec->der_len)) == NULL
            || (fp = cert_out(outf)) == NULL)
            goto end;
        if (!(der ? i2d_X509_fp(fp, x) : PEM_write_X509(fp, x))) {
            cert_close(fp);
            goto end;
        }
        if (!cert_close(fp))
            goto end;
    } else {
        o = cert_json(tx, rec);
        if (json) {
            cli_json_print(o);
        } else {
            json_object_foreach(o, k, v) {
                if (json_is_string(v))
                    printf("%s: %s\n", k, json_string_value(v));
                else if (json_is_integer(v))
                    printf("%s: %lld\n", k, (long long)json_integer_value(v));
                else if (json_is_boolean(v))
                    printf("%s: %s\n", k, json_is_true(v) ? "yes" : "no");
            }
            json_decref(o);
        }
    }
    ret = CLI_OK;
 end:
    X509_free(x);
    store_cert_free(rec);
    store_rollback(tx);
    store_close(st);
    return ret;
}

static void cert_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca cert COMMAND [ARGS]\n"
            "  issue    issue from a PKCS#10 request through a profile\n"
            "  list     list issued certificates\n"
            "  show     show one certificate (--json)\n"
            "  export   write one certificate (PEM, or --der)\n"
            "  revoke   revoke a certificate and make a new CRL\n"
            "  unhold   release a certificate on hold and make a new CRL\n");
}

int cli_cert(int argc, char **argv)
{
    if (argc < 2) {
        cert_usage(stderr);
        return CLI_USAGE;
    }
    argc--;
    argv++;
    optind = 0;
    if (strcmp(argv[0], "issue") == 0)
        return cert_issue(argc, argv);
    if (strcmp(argv[0], "revoke") == 0)
        return cert_revoke_or_unhold(argc, argv, 0);
    if (strcmp(argv[0], "unhold") == 0)
        return cert_revoke_or_unhold(argc, argv, 1);
    if (strcmp(argv[0], "list") == 0)
        return cert_list(argc, argv);
    if (strcmp(argv[0], "show") == 0)
        return cert_show_export(argc, argv, 0);
    if (strcmp(argv[0], "export") == 0)
        return cert_show_export(argc, argv, 1);
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        cert_usage(stdout);
        return CLI_OK;
    }
    fprintf(stderr, "cmpca cert: unknown command '%s'\n", argv[0]);
    cert_usage(stderr);
    return CLI_USAGE;
}
