/*
 * `cmpca crl --ca N`: make (number from the store, signed by the CA key,
 * stored as the latest) and write a CA's CRL; `--last` prints the latest
 * stored CRL without making a new one.
 */
#include "cli/cli.h"

#include "ca/ca.h"
#include "conf/conf.h"
#include "store/store.h"

#include <getopt.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void crl_usage(FILE *fp)
{
    fprintf(fp, "usage: cmpca crl --ca N [-o FILE] [--der] [--last]\n"
            "         [--ca-pass SPEC]\n"
            "  Makes a new CRL (v2, next CRL number, nextUpdate = now +\n"
            "  crl_validity of [ca N]) and stores it; --last only prints the\n"
            "  latest stored one.\n");
}

/* Writes |crl| (PEM or DER) to |path| (NULL or "-" = stdout). */
static int crl_write(X509_CRL *crl, const char *path, int der)
{
    FILE *fp = stdout;
    int ok;

    if (path != NULL && strcmp(path, "-") != 0
        && (fp = fopen(path, "w")) == NULL) {
        fprintf(stderr, "cmpca: cannot write %s\n", path);
        return 0;
    }
    ok = der ? i2d_X509_CRL_fp(fp, crl) : PEM_write_X509_CRL(fp, crl);
    if (fp != stdout)
        ok = fclose(fp) == 0 && ok;
    else
        ok = fflush(fp) == 0 && ok;
    if (!ok)
        fprintf(stderr, "cmpca: writing the CRL failed\n");
    return ok;
}

/* Appends the audit row of a CRL just made by the CLI (number, entries,
 * nextUpdate) in the CRL's transaction. */
static enum store_rc crl_audit(STORE_TX *tx, const CA *ca, X509_CRL *crl)
{
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL,
                                             NULL);
    const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    char details[160];
    int64_t number = -1;
    time_t next = 0;
    struct tm tm;

    if (num == NULL || !ASN1_INTEGER_get_int64(&number, num))
        number = -1;
    ASN1_INTEGER_free(num);
    if (nu != NULL && ASN1_TIME_to_tm(nu, &tm) == 1)
        next = timegm(&tm);
    snprintf(details, sizeof(details), "{\"ca\":%lld,\"number\":%lld,"
             "\"entries\":%d,\"next_update\":%lld}",
             (long long)ca_get_id(ca), (long long)number,
             rev != NULL ? sk_X509_REVOKED_num(rev) : 0, (long long)next);
    ERR_clear_error();
    return store_audit_append(tx, cli_actor(), "crl.issue", ca_get0_name(ca),
                              details);
}

int cli_crl(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "out", required_argument, NULL, 'o' },
        { "der", no_argument, NULL, 'd' },
        { "last", no_argument, NULL, 'l' },
        { "ca-pass", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *ca_name = NULL, *outf = NULL, *capass = NULL;
    struct conf *conf = NULL;
    STORE *st = NULL;
    STORE_TX *tx = NULL;
    CA *ca = NULL;
    X509_CRL *crl = NULL;
    struct store_crl *last = NULL;
    const unsigned char *p;
    char err[1024];
    int c, der = 0, only_last = 0, ret;
    enum store_rc src;

    optind = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': ca_name = optarg; break;
        case 'o': outf = optarg; break;
        case 'd': der = 1; break;
        case 'l': only_last = 1; break;
        case 'q': capass = optarg; break;
        case 'h': crl_usage(stdout); return CLI_OK;
        default: crl_usage(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc || ca_name == NULL) {
        crl_usage(stderr);
        return CLI_USAGE;
    }
    if ((ret = cli_store_open(&conf, &st)) != CLI_OK
        || (ret = cli_ca_load(conf, st, ca_name, capass, only_last, &ca))
           != CLI_OK)
        goto end;
    if (only_last) {
        if ((src = store_begin_read(st, &tx)) != STORE_OK
            || (src = store_crl_get_last(tx, ca_get_id(ca), &last))
               != STORE_OK) {
            fprintf(stderr, src == STORE_NOTFOUND
                    ? "cmpca: CA %s has no CRL yet\n"
                    : "cmpca: cannot read the CRL of %s\n", ca_name);
            ret = cli_store_exit(src);
            goto end;
        }
        p = last->der;
        if ((crl = d2i_X509_CRL(NULL, &p, (long)last->der_len)) == NULL) {
            fprintf(stderr, "cmpca: the stored CRL is malformed\n");
            ret = CLI_ERR;
            goto end;
        }
    } else {
        if ((src = store_begin(st, &tx)) != STORE_OK) {
            fprintf(stderr, "cmpca: %s\n", store_rc_str(src));
            ret = cli_store_exit(src);
            goto end;
        }
        if (!ca_crl_generate(ca, tx, 0, &crl, err, sizeof(err))) {
            fprintf(stderr, "cmpca: %s\n", err);
            ret = CLI_ERR;
            goto end;
        }
        if ((src = crl_audit(tx, ca, crl)) != STORE_OK) {
            fprintf(stderr, "cmpca: recording the CRL failed: %s\n",
                    store_rc_str(src));
            ret = cli_store_exit(src);
            goto end;
        }
        src = store_commit(tx);
        tx = NULL;
        if (src != STORE_OK) {
            fprintf(stderr, "cmpca: storing the CRL failed: %s\n",
                    store_rc_str(src));
            ret = cli_store_exit(src);
            goto end;
        }
    }
    ret = crl_write(crl, outf, der) ? CLI_OK : CLI_ERR;
 end:
    store_rollback(tx);
    store_crl_free(last);
    X509_CRL_free(crl);
    ca_free(ca);
    store_close(st);
    conf_free(conf);
    ERR_clear_error();
    return ret;
}
