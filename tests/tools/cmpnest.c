/*
 * cmpnest: what an RA does to forward requests, for the e2e tests: wraps
 * PKIMessage files into a nested message signed with the RA's key (single
 * forwarding or a batch), and splits a nested answer into its messages.
 */
#include "asn1/cmp_asn1.h"
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "testutil.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMPNEST_MAX_IN 16

static void usage(void)
{
    fprintf(stderr,
            "usage: cmpnest wrap --in REQ.der [--in REQ2.der ...] --cert RA.pem\n"
            "                    --key RA.key [--chain CHAIN.pem] [--batch]\n"
            "                    --out NESTED.der\n"
            "       cmpnest split --in NESTED.der --prefix P   (writes P1.der, P2.der, ...)\n"
            "\n"
            "wrap: one --in without --batch forwards a single request (the\n"
            "wrapper repeats its transactionID and senderNonce); --batch or\n"
            "several --in make a batch with a fresh header. Inner messages are\n"
            "taken as they are (a nested file may be wrapped again).\n");
}

static CMP_MSG *cmpnest_load(const char *path)
{
    size_t len = 0;
    unsigned char *der = testutil_read_file(path, &len);
    const unsigned char *p = der;
    CMP_MSG *msg = NULL;

    if (der != NULL)
        msg = d2i_CMP_MSG(NULL, &p, (long)len);
    if (msg == NULL)
        fprintf(stderr, "cmpnest: cannot read a PKIMessage from %s\n", path);
    free(der);
    return msg;
}

static int cmpnest_write(const char *path, const CMP_MSG *msg)
{
    unsigned char *der = NULL;
    size_t len = 0;
    FILE *fp = NULL;
    int ok = 0;

    if (!cmp_msg_encode(msg, &der, &len) || (fp = fopen(path, "wb")) == NULL)
        goto end;
    ok = fwrite(der, 1, len, fp) == len;
 end:
    if (fp != NULL)
        ok &= fclose(fp) == 0;
    if (!ok)
        fprintf(stderr, "cmpnest: cannot write %s\n", path);
    OPENSSL_free(der);
    return ok;
}

static STACK_OF(X509) *cmpnest_certs(const char *path)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    FILE *fp;
    X509 *x;

    if (sk == NULL || path == NULL || (fp = fopen(path, "r")) == NULL)
        return sk;
    while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(sk, x))
            X509_free(x);
    ERR_clear_error();
    fclose(fp);
    return sk;
}

static int cmpnest_wrap(const char **in, int nin, const char *cert,
                        const char *key, const char *chain, int batch,
                        const char *out)
{
    STACK_OF(CMP_MSG) *inner = sk_CMP_MSG_new_null();
    STACK_OF(X509) *certs = cmpnest_certs(cert), *rest = cmpnest_certs(chain);
    EVP_PKEY *pkey = NULL;
    CMP_MSG *msg = NULL, *one;
    FILE *fp;
    int i, ok = 0;

    if ((fp = fopen(key, "r")) != NULL) {
        pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
        fclose(fp);
    }
    if (inner == NULL || pkey == NULL || sk_X509_num(certs) < 1) {
        fprintf(stderr, "cmpnest: need --cert and --key\n");
        goto end;
    }
    for (i = 0; i < nin; i++) {
        if ((one = cmpnest_load(in[i])) == NULL || !sk_CMP_MSG_push(inner, one)) {
            CMP_MSG_free(one);
            goto end;
        }
    }
    if ((msg = cmp_nested_new(inner, !batch && nin == 1, sk_X509_value(certs, 0),
                              rest, time(NULL))) == NULL)
        goto end;
    inner = NULL;
    ok = cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, pkey)
        && cmpnest_write(out, msg);
 end:
    if (!ok)
        ERR_print_errors_fp(stderr);
    sk_CMP_MSG_pop_free(inner, CMP_MSG_free);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(rest, X509_free);
    EVP_PKEY_free(pkey);
    CMP_MSG_free(msg);
    return ok;
}

static int cmpnest_split(const char *in, const char *prefix)
{
    CMP_MSG *msg = cmpnest_load(in);
    char path[4096];
    int i, ok = 0;

    if (msg == NULL)
        return 0;
    if (msg->body->type != CMP_BODY_NESTED) {
        fprintf(stderr, "cmpnest: %s is a %s message, not nested\n", in,
                cmp_body_type_name(msg->body->type));
        goto end;
    }
    for (i = 0; i < sk_CMP_MSG_num(msg->body->value.nested); i++) {
        snprintf(path, sizeof(path), "%s%d.der", prefix, i + 1);
        if (!cmpnest_write(path, sk_CMP_MSG_value(msg->body->value.nested, i)))
            goto end;
    }
    printf("%d\n", i);
    ok = 1;
 end:
    CMP_MSG_free(msg);
    return ok;
}

int main(int argc, char **argv)
{
    const char *in[CMPNEST_MAX_IN], *cert = NULL, *key = NULL, *chain = NULL;
    const char *out = NULL, *prefix = NULL;
    int i, nin = 0, batch = 0;

    if (argc < 2) {
        usage();
        return 2;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--batch") == 0) {
            batch = 1;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--in") == 0 && nin < CMPNEST_MAX_IN)
            in[nin++] = v;
        else if (strcmp(a, "--cert") == 0)
            cert = v;
        else if (strcmp(a, "--key") == 0)
            key = v;
        else if (strcmp(a, "--chain") == 0)
            chain = v;
        else if (strcmp(a, "--out") == 0)
            out = v;
        else if (strcmp(a, "--prefix") == 0)
            prefix = v;
        else {
            usage();
            return 2;
        }
    }
    if (strcmp(argv[1], "wrap") == 0 && nin > 0 && cert != NULL && key != NULL
        && out != NULL)
        return cmpnest_wrap(in, nin, cert, key, chain, batch, out) ? 0 : 1;
    if (strcmp(argv[1], "split") == 0 && nin == 1 && prefix != NULL)
        return cmpnest_split(in[0], prefix) ? 0 : 1;
    usage();
    return 2;
}
