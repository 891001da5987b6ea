/*
 * `cmpca demo`: builds a complete demo PKI with the ordinary admin commands
 * (operator root and issuing CA, a vendor factory CA, three devices with
 * vendor certificates on the allow-list), prints how to enroll a device
 * with the stock `openssl cmp` client, and runs the server.
 */
#include "cli/cli.h"

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "conf/conf.h"
#include "store/store.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEMO_DEVICES 3

/* "file:PATH" for a passphrase file (one static buffer: use at once). */
static const char *pass_spec(const char *path)
{
    static char spec[PATH_MAX + 8];

    snprintf(spec, sizeof(spec), "file:%s", path);
    return spec;
}

/* snprintf into a path buffer; 0 if the result would not fit. */
static int demo_path(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int demo_path(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "cmpca demo: path too long\n");
        return 0;
    }
    return 1;
}

/* Runs one cmpca subcommand in-process, echoing it like a shell would. */
static int demo_run(int (*fn)(int, char **), const char *first, ...)
{
    char *argv[32];
    const char *a;
    va_list ap;
    int argc = 0, rc;

    argv[argc++] = (char *)first;
    va_start(ap, first);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    printf("[demo] $ cmpca");
    for (rc = 0; rc < argc; rc++)
        printf(strchr(argv[rc], ' ') != NULL ? " \"%s\"" : " %s", argv[rc]);
    printf("\n");
    fflush(stdout);
    optind = 0;
    rc = fn(argc, argv);
    fflush(stdout);
    if (rc != CLI_OK)
        fprintf(stderr, "cmpca demo: step failed (exit %d)\n", rc);
    return rc;
}

/* Writes |text| to |path| created with |mode| (fails if it exists). */
static int demo_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    size_t len = strlen(text);
    int ok;

    if (fd < 0) {
        fprintf(stderr, "cmpca demo: %s: %s\n", path, strerror(errno));
        return 0;
    }
    ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (!ok) {                          /* no half-written file stays */
        fprintf(stderr, "cmpca demo: %s: cannot write\n", path);
        unlink(path);
    }
    return ok;
}

/* A random passphrase for the demo CA keys, stored 0600 in secrets/; no
 * copy of it is left on the stack. */
static int demo_passphrase(const char *path)
{
    unsigned char raw[24];
    char hex[2 * sizeof(raw) + 2];
    size_t i;
    int ok = 0;

    if (RAND_bytes(raw, sizeof(raw)) <= 0)
        goto end;
    for (i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    strcat(hex, "\n");
    ok = demo_write(path, hex, 0600);
 end:
    secret_wipe(raw, sizeof(raw));
    secret_wipe(hex, sizeof(hex));
    return ok;
}

static int demo_config(const char *dir, const char *pass, unsigned port)
{
    char path[PATH_MAX], text[3 * PATH_MAX];

    snprintf(text, sizeof(text),
             "; cmpca demo configuration (written by `cmpca demo`)\n"
             "[server]\n"
             "listen = 127.0.0.1:%u\n"
             "default_alias = 3gpp\n"
             "\n"
             "[store]\n"
             "path = cmpca.db\n"
             "\n"
             "[ca operator-root]\n"
             "key_pass = file:%s\n"
             "\n"
             "[ca operator-issuing]\n"
             "key_pass = file:%s\n"
             "\n"
             "; 3GPP TS 33.310 enrollment with vendor certificates\n"
             "[alias 3gpp]\n"
             "mode = 3gpp\n"
             "ca = operator-issuing\n"
             "profile = device\n"
             "vendors = demo-vendor\n"
             "confirm_wait_time = 5m\n"
             "time_tolerance = 10m\n"
             "\n"
             "[profile device]\n"
             "validity = 365d\n"
             "subject = CN=${vendor.serialNumber},O=Demo Operator\n"
             "key_usage = digitalSignature,keyAgreement\n"
             "ext_key_usage = clientAuth,serverAuth\n"
             "key_types = ec:P-256,ec:P-384,rsa:2048-4096,ed25519\n",
             port, pass, pass);
    return demo_path(path, sizeof(path), "%s/cmpca.conf", dir)
        && demo_write(path, text, 0644);
}

/* The key each demo device will ask to have certified (the device makes a
 * fresh key pair before enrolling). */
static int demo_device_keys(const char *dir)
{
    char path[PATH_MAX], err[256];
    EVP_PKEY *pkey = NULL;
    int i, ok = 1;

    for (i = 1; i <= DEMO_DEVICES && ok; i++) {
        ok = demo_path(path, sizeof(path),
                       "%s/devices/DEMO-%06d/operator-key.pem", dir, i)
            && ca_key_generate("ec:P-256", &pkey, err, sizeof(err))
            && ca_key_write(path, pkey, NULL, err, sizeof(err));
        EVP_PKEY_free(pkey);
        pkey = NULL;
        if (!ok)
            fprintf(stderr, "cmpca demo: %s\n", err);
    }
    return ok;
}

static void demo_usage(FILE *fp)
{
    fprintf(fp,
            "usage: cmpca demo [--dir DIR] [--port PORT] [--no-serve]\n"
            "\n"
            "Creates DIR (default ./cmpca-demo) with an operator root and issuing\n"
            "CA, a vendor factory CA and %d devices on the allow-list, prints the\n"
            "openssl cmp command that enrolls a device, then runs the server on\n"
            "127.0.0.1:PORT (default 8080). If DIR exists, the server is just\n"
            "started on it again.\n", DEMO_DEVICES);
}

static void demo_print_howto(const char *dir, unsigned port)
{
    printf("\n"
           "cmpca demo is ready in %s/\n"
           "  operator root     %s/operator-root.pem\n"
           "  vendor CA chain   %s/vendor/vendor-chain.pem (registered as demo-vendor)\n"
           "  devices           %s/devices/DEMO-000001 .. DEMO-%06d\n"
           "\n"
           "Enroll device DEMO-000001 (3GPP ir signed with its vendor key) from another\n"
           "terminal, in this directory:\n"
           "\n"
           "  openssl cmp -cmd ir -server 127.0.0.1:%u -path .well-known/cmp/p/3gpp \\\n"
           "    -cert %s/devices/DEMO-000001/cert.pem -key %s/devices/DEMO-000001/key.pem \\\n"
           "    -extracerts %s/devices/DEMO-000001/chain.pem -trusted %s/operator-root.pem \\\n"
           "    -newkey %s/devices/DEMO-000001/operator-key.pem -subject /CN=DEMO-000001 \\\n"
           "    -certout %s/devices/DEMO-000001/operator-cert.pem\n"
           "\n"
           "Then renew it (kur signed with the new operator certificate):\n"
           "\n"
           "  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/devices/DEMO-000001/next-key.pem\n"
           "  openssl cmp -cmd kur -server 127.0.0.1:%u -path .well-known/cmp/p/3gpp \\\n"
           "    -cert %s/devices/DEMO-000001/operator-cert.pem -key %s/devices/DEMO-000001/operator-key.pem \\\n"
           "    -trusted %s/operator-root.pem -newkey %s/devices/DEMO-000001/next-key.pem \\\n"
           "    -certout %s/devices/DEMO-000001/operator-cert.pem\n"
           "\n"
           "Look around: cmpca -c %s/cmpca.conf device list | cert list | audit verify\n"
           "Stop the server with Ctrl-C.\n\n",
           dir, dir, dir, dir, DEMO_DEVICES, port, dir, dir, dir, dir, dir, dir,
           dir, port, dir, dir, dir, dir, dir, dir);
    fflush(stdout);
}

/* Writes the operator root (top of the issuing CA's chain) to |path|, as
 * a device would have it pre-provisioned. */
static int demo_write_root(const char *path)
{
    struct conf *conf = NULL;
    struct store *st = NULL;
    CA *ca = NULL;
    FILE *fp = NULL;
    int rc;

    if ((rc = cli_store_open(&conf, &st)) != CLI_OK)
        return rc;
    if ((rc = cli_ca_load(conf, st, "operator-issuing", NULL, 1, &ca)) != CLI_OK)
        goto end;
    rc = CLI_ERR;
    if ((fp = fopen(path, "w")) == NULL
        || !PEM_write_X509(fp, ca_get0_root(ca)))
        goto end;
    rc = CLI_OK;
 end:
    if (fp != NULL && fclose(fp) != 0)
        rc = CLI_ERR;
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    return rc;
}

/* Creates the demo in |dir| (which must not exist yet). */
static int demo_create(const char *dir, unsigned port)
{
    static char conf_path[PATH_MAX];
    char abs[PATH_MAX], pass[PATH_MAX], path[PATH_MAX];
    char root_key[PATH_MAX], issuing_key[PATH_MAX], vendor_dir[PATH_MAX];
    char devices[PATH_MAX], allow[PATH_MAX], chain[PATH_MAX];
    char root_pem[PATH_MAX];
    int rc;

    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "cmpca demo: mkdir %s: %s\n", dir, strerror(errno));
        return CLI_ERR;
    }
    if (realpath(dir, abs) == NULL
        || !demo_path(path, sizeof(path), "%s/secrets", abs)
        || mkdir(path, 0700) != 0
        || !demo_path(pass, sizeof(pass), "%s/secrets/ca.pass", abs)
        || !demo_passphrase(pass) || !demo_config(abs, pass, port)
        || !demo_path(conf_path, sizeof(conf_path), "%s/cmpca.conf", abs)
        || !demo_path(root_key, sizeof(root_key),
                      "%s/secrets/operator-root.key.pem", abs)
        || !demo_path(issuing_key, sizeof(issuing_key),
                      "%s/secrets/operator-issuing.key.pem", abs)
        || !demo_path(vendor_dir, sizeof(vendor_dir), "%s/vendor", abs)
        || !demo_path(devices, sizeof(devices), "%s/devices", abs)
        || !demo_path(allow, sizeof(allow), "%s/devices/allowlist.csv", abs)
        || !demo_path(chain, sizeof(chain), "%s/vendor/vendor-chain.pem", abs)
        || !demo_path(root_pem, sizeof(root_pem), "%s/operator-root.pem", abs))
        return CLI_ERR;
    cli_set_config_path(conf_path);
    if ((rc = demo_run(cli_ca, "ca", "create", "--name", "operator-root",
                       "--subject", "/O=Demo Operator/CN=Demo Operator Root CA",
                       "--days", "3650", "--key-out", root_key, (char *)NULL)) != CLI_OK
        || (rc = demo_run(cli_ca, "ca", "create", "--name", "operator-issuing",
                          "--parent", "operator-root", "--subject",
                          "/O=Demo Operator/CN=Demo Operator Issuing CA",
                          "--days", "1825", "--key-out", issuing_key, (char *)NULL)) != CLI_OK
        || (rc = demo_run(cli_factory, "factory", "ca", "create", "--dir",
                          vendor_dir, "--name", "Demo Vendor", "--pass",
                          pass_spec(pass), (char *)NULL)) != CLI_OK
        || (rc = demo_run(cli_factory, "factory", "issue", "--dir", vendor_dir,
                          "--out", devices, "--count", "3", "--prefix", "DEMO-",
                          "--pass", pass_spec(pass), "--quiet", (char *)NULL)) != CLI_OK
        || (rc = demo_run(cli_vendor, "vendor", "add", "--name", "demo-vendor",
                          "--ca", chain, (char *)NULL)) != CLI_OK
        || (rc = demo_run(cli_device, "device", "import", "--vendor",
                          "demo-vendor", allow, (char *)NULL)) != CLI_OK
        || (rc = demo_write_root(root_pem)) != CLI_OK)
        return rc;
    /* written last: only a complete demo is ever reused */
    if (!demo_device_keys(abs)
        || !demo_path(path, sizeof(path), "%s/demo.ready", abs)
        || !demo_write(path, "complete\n", 0644))
        return CLI_ERR;
    return CLI_OK;
}

int cli_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir",      required_argument, NULL, 'd' },
        { "port",     required_argument, NULL, 'p' },
        { "no-serve", no_argument,       NULL, 'n' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    static char conf[PATH_MAX];
    char ready[PATH_MAX];
    const char *dir = "cmpca-demo";
    char listen[64];
    unsigned port = 8080;
    int c, serve = 1, rc;
    char *end;
    struct stat sb;

    while ((c = getopt_long(argc, argv, "d:p:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            port = (unsigned)strtoul(optarg, &end, 10);
            if (*end != '\0' || port == 0 || port > 65535) {
                fprintf(stderr, "cmpca demo: bad --port\n");
                return CLI_USAGE;
            }
            break;
        case 'n':
            serve = 0;
            break;
        case 'h':
            demo_usage(stdout);
            return CLI_OK;
        default:
            demo_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (!demo_path(conf, sizeof(conf), "%s/cmpca.conf", dir)
        || !demo_path(ready, sizeof(ready), "%s/demo.ready", dir))
        return CLI_USAGE;
    if (stat(ready, &sb) == 0) {
        printf("[demo] reusing the demo in %s/ (remove it to start afresh)\n",
               dir);
        cli_set_config_path(conf);
    } else if (stat(dir, &sb) == 0) {
        fprintf(stderr, "cmpca demo: %s/ exists but holds no complete demo "
                "(an earlier run failed?): remove it and run again\n", dir);
        return CLI_ERR;
    } else if ((rc = demo_create(dir, port)) != CLI_OK) {
        fprintf(stderr, "cmpca demo: could not create the demo in %s/\n", dir);
        return rc;
    }
    demo_print_howto(dir, port);
    if (!serve)
        return CLI_OK;
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    /* a throw-away PKI on loopback: it runs as whoever starts it */
    return cli_serve_main(listen, NULL, -1, 1);
}
