/*
 * `cmpca factory ...`: vendor factory tooling. Creates the vendor root and
 * issuing CA, issues device vendor credentials in bulk with a progress bar,
 * and exports the allow-list that `cmpca device import` reads.
 */
#include "cli/cli.h"
#include "factory/factory.h"
#include "util/secret.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static void cli_factory_usage(FILE *fp)
{
    fprintf(fp,
"usage: cmpca factory ca create --dir DIR --name VENDOR [--key-type SPEC]\n"
"                               [--pass SPEC]\n"
"       cmpca factory issue --dir DIR --out OUTDIR\n"
"                           (--count N --prefix PREFIX [--start N] [--digits N]\n"
"                            | --list FILE)\n"
"                           [--format pem|p12] [--p12-pass SPEC] [--pass SPEC]\n"
"                           [--key-type SPEC] [--days N] [--threads N] [--quiet]\n"
"       cmpca factory allowlist --out OUTDIR\n"
"\n"
"ca create   make DIR/vendor-root.{pem,key}, DIR/vendor-ca.{pem,key} and\n"
"            DIR/vendor-chain.pem (keys mode 0600; encrypted with --pass)\n"
"issue       per device OUTDIR/<serial>/{key.pem,cert.pem,chain.pem} (or\n"
"            device.p12) with subject /serialNumber=S/CN=S/O=VENDOR, and\n"
"            OUTDIR/allowlist.csv for `cmpca device import`\n"
"allowlist   print the allow-list of the devices in OUTDIR to stdout\n"
"\n"
"SPEC for keys: ec:P-256 (default), ec:P-384, rsa:BITS, ed25519.\n"
"SPEC for passphrases: file:PATH, env:VAR or prompt (never on the command line).\n");
}

/* Progress bar state. */
struct cli_factory_bar {
    struct timespec start;
    int tty;
};

static double cli_factory_elapsed(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec)
        + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Draws "[#####-----]  50%  500/1000  2100/s" on stderr. */
static void cli_factory_progress(void *arg, size_t done, size_t total)
{
    struct cli_factory_bar *bar = arg;
    double t = cli_factory_elapsed(&bar->start);
    char line[41];
    size_t fill = total > 0 ? done * 40 / total : 40, i;

    if (!bar->tty)
        return;
    for (i = 0; i < 40; i++)
        line[i] = i < fill ? '#' : '-';
    line[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%%  %zu/%zu  %.0f/s ", line,
            total > 0 ? (int)(done * 100 / total) : 100, done, total,
            t > 0 ? (double)done / t : 0.0);
    fflush(stderr);
}

/* Maps a factory result code to an exit code. */
static int cli_factory_exit(enum factory_rc rc)
{
    switch (rc) {
    case FACTORY_OK:       return CLI_OK;
    case FACTORY_EXISTS:   return CLI_EXISTS;
    case FACTORY_AUTH:     return CLI_AUTH;
    case FACTORY_NOTFOUND: return CLI_NOTFOUND;
    default:               return CLI_ERR;
    }
}

/* Reads the passphrase for |spec| into |buf| (empty when |spec| is NULL);
 * |confirm| asks twice at a prompt. Returns 1 or 0 (message printed). */
static int cli_factory_pass(const char *spec, int confirm, const char *what,
                            char *buf, size_t len)
{
    char err[256];
    int ok;

    buf[0] = '\0';
    if (spec == NULL)
        return 1;
    ok = confirm ? secret_read_new(spec, what, buf, len, err, sizeof(err))
        : secret_read(spec, what, buf, len, err, sizeof(err));
    if (!ok)
        fprintf(stderr, "cmpca factory: %s\n", err);
    return ok;
}

static int cli_factory_ca(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "name", required_argument, NULL, 'n' },
        { "key-type", required_argument, NULL, 'k' },
        { "pass", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL, *name = NULL, *key_type = NULL, *pass_spec = NULL;
    char pass[1024], err[512];
    enum factory_rc rc;
    int c;

    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        cli_factory_usage(stderr);
        return CLI_USAGE;
    }
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "d:n:k:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'n': name = optarg; break;
        case 'k': key_type = optarg; break;
        case 'p': pass_spec = optarg; break;
        case 'h': cli_factory_usage(stdout); return CLI_OK;
        default: cli_factory_usage(stderr); return CLI_USAGE;
        }
    }
    if (dir == NULL || name == NULL || optind != argc - 1) {
        fprintf(stderr, "cmpca factory ca create: --dir and --name are required\n");
        return CLI_USAGE;
    }
    if (!cli_factory_pass(pass_spec, 1, "passphrase for the vendor CA keys", pass, sizeof(pass)))
        return CLI_AUTH;
    if (pass_spec == NULL)
        fprintf(stderr, "cmpca factory: warning: CA keys are not encrypted "
                "(use --pass file:PATH|env:VAR|prompt); they are mode 0600\n");
    rc = factory_ca_create(dir, name, key_type, pass_spec != NULL ? pass : NULL,
                           err, sizeof(err));
    secret_wipe(pass, sizeof(pass));
    if (rc != FACTORY_OK) {
        fprintf(stderr, "cmpca factory ca create: %s\n", err);
        return cli_factory_exit(rc);
    }
    printf("created the vendor CA for \"%s\" in %s: %s, %s, %s\n", name, dir,
           FACTORY_ROOT_CERT, FACTORY_CA_CERT, FACTORY_CHAIN);
    return CLI_OK;
}

/* Parses a non-negative integer option; returns 1 or 0. */
static int cli_factory_num(const char *s, unsigned long long max,
                           unsigned long long *out)
{
    char *end;

    errno = 0;
    if (*s == '-')
        return 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && *out <= max;
}

static int cli_factory_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "out", required_argument, NULL, 'o' },
        { "count", required_argument, NULL, 'n' },
        { "prefix", required_argument, NULL, 'P' },
        { "start", required_argument, NULL, 's' },
        { "digits", required_argument, NULL, 'D' },
        { "list", required_argument, NULL, 'l' },
        { "format", required_argument, NULL, 'f' },
        { "p12-pass", required_argument, NULL, 'x' },
        { "pass", required_argument, NULL, 'p' },
        { "key-type", required_argument, NULL, 'k' },
        { "days", required_argument, NULL, 'y' },
        { "threads", required_argument, NULL, 't' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL, *out = NULL, *prefix = NULL, *list = NULL;
    const char *pass_spec = NULL, *p12_spec = NULL;
    unsigned long long count = 0, start = 1, digits = 6, days = 0, threads = 0;
    struct factory_issue_opts o;
    struct factory_ca ca;
    struct cli_factory_bar bar;
    char pass[1024], p12pass[1024], err[512];
    char **serials = NULL;
    size_t nserials = 0, done = 0;
    int c, quiet = 0, ret = CLI_ERR;
    enum factory_rc rc;
    double secs;

    memset(&o, 0, sizeof(o));
    memset(&ca, 0, sizeof(ca));
    p12pass[0] = pass[0] = '\0';
    o.format = FACTORY_PEM;
    optind = 0;
    while ((c = getopt_long(argc, argv, "d:o:n:P:s:D:l:f:x:p:k:y:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'o': out = optarg; break;
        case 'P': prefix = optarg; break;
        case 'l': list = optarg; break;
        case 'x': p12_spec = optarg; break;
        case 'p': pass_spec = optarg; break;
        case 'k': o.key_type = optarg; break;
        case 'q': quiet = 1; break;
        case 'f':
            if (strcmp(optarg, "pem") == 0)
                o.format = FACTORY_PEM;
            else if (strcmp(optarg, "p12") == 0)
                o.format = FACTORY_P12;
            else {
                fprintf(stderr, "cmpca factory issue: --format pem or p12\n");
                return CLI_USAGE;
            }
            break;
        case 'n': case 's': case 'D': case 'y': case 't': {
            unsigned long long v, max = c == 'n' ? 100000000ULL : c == 'D' ? 20
                : c == 'y' ? 36500 : c == 't' ? 256 : 1000000000000000000ULL;

            if (!cli_factory_num(optarg, max, &v)) {
                fprintf(stderr, "cmpca factory issue: bad number '%s'\n", optarg);
                return CLI_USAGE;
            }
            if (c == 'n') count = v;
            else if (c == 's') start = v;
            else if (c == 'D') digits = v;
            else if (c == 'y') days = v;
            else threads = v;
            break;
        }
        case 'h': cli_factory_usage(stdout); return CLI_OK;
        default: cli_factory_usage(stderr); return CLI_USAGE;
        }
    }
    if (dir == NULL || out == NULL || optind != argc
        || (list == NULL) == (count == 0 || prefix == NULL)
        || (list != NULL && (count != 0 || prefix != NULL))) {
        fprintf(stderr, "cmpca factory issue: needs --dir, --out and either "
                "--count N --prefix P or --list FILE\n");
        return CLI_USAGE;
    }
    if (o.format == FACTORY_P12 && p12_spec == NULL) {
        fprintf(stderr, "cmpca factory issue: --format p12 needs --p12-pass SPEC\n");
        return CLI_USAGE;
    }
    serials = list != NULL
        ? factory_serials_read(list, &nserials, err, sizeof(err))
        : factory_serials_range(prefix, start, (size_t)count, (int)digits, err,
                                sizeof(err));
    if (list == NULL)
        nserials = (size_t)count;
    if (serials == NULL) {
        fprintf(stderr, "cmpca factory issue: %s\n", err);
        return CLI_USAGE;
    }
    if (!cli_factory_pass(pass_spec, 0, "passphrase for the vendor CA key", pass,
                          sizeof(pass))
        || !cli_factory_pass(p12_spec, 1, "passphrase for the device PKCS#12 files",
                             p12pass, sizeof(p12pass))) {
        ret = CLI_AUTH;
        goto end;
    }
    if ((rc = factory_ca_load(&ca, dir, pass_spec != NULL ? pass : NULL, err,
                              sizeof(err))) != FACTORY_OK) {
        fprintf(stderr, "cmpca factory issue: %s\n", err);
        ret = cli_factory_exit(rc);
        goto end;
    }
    o.outdir = out;
    o.serials = serials;
    o.count = nserials;
    o.validity_days = (int)days;
    o.p12_pass = p12_spec != NULL ? p12pass : NULL;
    o.threads = (int)threads;
    bar.tty = !quiet && isatty(STDERR_FILENO);
    clock_gettime(CLOCK_MONOTONIC, &bar.start);
    o.progress = cli_factory_progress;
    o.progress_arg = &bar;
    rc = factory_issue(&ca, &o, &done, err, sizeof(err));
    secs = cli_factory_elapsed(&bar.start);
    if (bar.tty)
        fputc('\n', stderr);
    if (rc != FACTORY_OK) {
        fprintf(stderr, "cmpca factory issue: %s (%zu of %zu devices written; "
                "re-run with the remaining serials)\n", err, done, nserials);
        ret = cli_factory_exit(rc);
        goto end;
    }
    if (!quiet)
        fprintf(stderr, "issued %zu devices in %.2f s (%.0f devices/s) into %s; "
                "allow-list %s/%s\n", done, secs, secs > 0 ? (double)done / secs : 0.0,
                out, out, FACTORY_ALLOWLIST);
    ret = CLI_OK;
 end:
    secret_wipe(pass, sizeof(pass));
    secret_wipe(p12pass, sizeof(p12pass));
    factory_ca_clear(&ca);
    factory_serials_free(serials, nserials);
    return ret;
}

static int cli_factory_allowlist(int argc, char **argv)
{
    static const struct option opts[] = {
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *out = NULL;
    char err[256];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': cli_factory_usage(stdout); return CLI_OK;
        default: cli_factory_usage(stderr); return CLI_USAGE;
        }
    }
    if (out == NULL || optind != argc) {
        fprintf(stderr, "cmpca factory allowlist: --out OUTDIR is required\n");
        return CLI_USAGE;
    }
    if (factory_allowlist_print(out, stdout, err, sizeof(err)) < 0) {
        fprintf(stderr, "cmpca factory allowlist: %s\n", err);
        return CLI_ERR;
    }
    return CLI_OK;
}

int cli_factory(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_factory_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "ca") == 0)
        return cli_factory_ca(argc - 1, argv + 1);
    if (strcmp(argv[1], "issue") == 0)
        return cli_factory_issue(argc - 1, argv + 1);
    if (strcmp(argv[1], "allowlist") == 0)
        return cli_factory_allowlist(argc - 1, argv + 1);
    fprintf(stderr, "cmpca factory: unknown subcommand '%s'\n", argv[1]);
    cli_factory_usage(stderr);
    return CLI_USAGE;
}
