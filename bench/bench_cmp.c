/*
 * Micro-benchmark of the CMP message layer: (a) decode + find_signer +
 * verify of an OpenSSL-made P-256 ir, (b) build + sign of an ip with cert,
 * chain and caPubs, (c) the raw EVP_DigestSign/EVP_DigestVerify rates of
 * the same keys, and the layer's overhead beyond the signature cost.
 * Usage: bench_cmp [seconds-per-measurement (0.5)] [rounds (5)]
 *        (run from the repo root: it reads tests/vectors/sigec_ir_req0_ir.der)
 */
#include "ca/ca_signer.h"
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp_testpki.h"
#include "testutil.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

struct bench_ctx {
    const unsigned char *ir_der;
    size_t ir_len;
    CMP_MSG *ir;               /* decoded, for building the ip */
    X509 *srv;
    EVP_PKEY *srv_key;
    X509 *issued;
    unsigned char *issued_der;     /* issued, as the CA hands it over */
    size_t issued_len;
    STACK_OF(X509) *chain;     /* root */
    EVP_PKEY *verify_key;      /* the ir signer's public key */
    unsigned char *tbs;        /* data of the ProtectedPart's size */
    size_t tbs_len;
    unsigned char sig[256];
    size_t sig_len;
    unsigned char *cert_der;   /* the ir signer's certificate */
    size_t cert_len;
    CA_SIGNER *signer;         /* srv_key behind the CA signing interface */
    const unsigned char *alg;  /* its AlgorithmIdentifier */
    size_t alg_len;
    unsigned char *extra;      /* extraCerts (srv, root), encoded once */
    size_t extra_len;
};

typedef int (*bench_fn)(struct bench_ctx *);

/* (a) */
static int op_verify_ir(struct bench_ctx *b)
{
    CMP_MSG *msg = NULL;
    X509 *signer;
    int ok = cmp_msg_decode(b->ir_der, b->ir_len, NULL, &msg) == CMP_R_OK
        && cmp_hdr_check_request(msg->header, 0, 0) == CMP_R_OK
        && cmp_protect_find_signer(msg, &signer) == CMP_R_OK
        && cmp_protect_verify_sig(msg, signer) == CMP_R_OK;

    CMP_MSG_free(msg);
    return ok;
}

/* (a) broken down: the strict decode alone, the bare template decode
 * (no DER re-encoding check) and the decode of the signer cert alone */
static int op_decode_only(struct bench_ctx *b)
{
    CMP_MSG *msg = NULL;
    int ok = cmp_msg_decode(b->ir_der, b->ir_len, NULL, &msg) == CMP_R_OK;

    CMP_MSG_free(msg);
    return ok;
}

static int op_d2i_only(struct bench_ctx *b)
{
    const unsigned char *p = b->ir_der;
    CMP_MSG *msg = d2i_CMP_MSG(NULL, &p, (long)b->ir_len);

    CMP_MSG_free(msg);
    return msg != NULL;
}

static int op_d2i_cert(struct bench_ctx *b)
{
    const unsigned char *p = b->cert_der;
    X509 *c = d2i_X509(NULL, &p, (long)b->cert_len);

    X509_free(c);
    return c != NULL;
}

/* (b) */
static int bench_sign_buf(void *arg, const unsigned char *tbs, size_t tbslen,
                          unsigned char *sig, size_t *siglen)
{
    return ca_signer_sign_buf(arg, tbs, tbslen, sig, siglen);
}

/* as the server builds it: one encoding, extraCerts encoded at start-up */
static int op_build_ip(struct bench_ctx *b)
{
    CMP_MSG *rsp = cmp_rsp_new(b->ir, CMP_BODY_IP, b->srv, time(NULL));
    unsigned char *der = NULL;
    size_t len;
    int ok = rsp != NULL
        && cmp_body_set_certrep(rsp, 0, cmp_pkisi_new(CMP_STATUS_ACCEPTED, -1, NULL),
                                b->issued_der, b->issued_len, b->chain)
        && cmp_protect_sign_encode(rsp, b->alg, b->alg_len, bench_sign_buf,
                                   b->signer, ca_signer_max_sig_len(b->signer),
                                   b->extra, b->extra_len, &der, &len);

    OPENSSL_free(der);
    CMP_MSG_free(rsp);
    return ok;
}

/* (c) */
static int op_raw_sign(struct bench_ctx *b)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[256];
    size_t len = sizeof(sig);
    int ok = ctx != NULL
        && EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, b->srv_key, NULL) > 0
        && EVP_DigestSign(ctx, sig, &len, b->tbs, b->tbs_len) > 0;

    EVP_MD_CTX_free(ctx);
    return ok;
}

static int op_raw_verify(struct bench_ctx *b)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL
        && EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, b->verify_key, NULL) > 0
        && EVP_DigestVerify(ctx, b->sig, b->sig_len, b->tbs, b->tbs_len) > 0;

    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Runs |fn| for about |secs| seconds; returns microseconds per op. */
static double bench_run(bench_fn fn, struct bench_ctx *b, double secs)
{
    double t0 = bench_now(), t;
    long n = 0, batch = 16, i;

    do {
        for (i = 0; i < batch; i++)
            if (!fn(b)) {
                ERR_print_errors_fp(stderr);
                fprintf(stderr, "benchmark operation failed\n");
                exit(1);
            }
        n += batch;
        t = bench_now() - t0;
    } while (t < secs);
    return t * 1e6 / (double)n;
}

static int bench_setup(struct bench_ctx *b)
{
    struct cmp_testpki pki;
    X509 *signer;
    unsigned char *der = NULL;
    CMP_PROTPART pp;
    EVP_MD_CTX *ctx;
    int len;

    memset(b, 0, sizeof(*b));
    if ((b->ir_der = testutil_read_file("tests/vectors/sigec_ir_req0_ir.der",
                                        &b->ir_len)) == NULL) {
        fprintf(stderr, "run from the repo root (tests/vectors/ needed)\n");
        return 0;
    }
    if (cmp_msg_decode(b->ir_der, b->ir_len, NULL, &b->ir) != CMP_R_OK
        || cmp_protect_find_signer(b->ir, &signer) != CMP_R_OK)
        return 0;
    b->verify_key = X509_get_pubkey(signer);
    if ((len = i2d_X509(signer, &b->cert_der)) <= 0)
        return 0;
    b->cert_len = (size_t)len;
    if (!cmp_testpki_init(&pki, "EC"))
        return 0;
    b->srv = pki.srv;
    b->srv_key = pki.srv_key;
    b->issued = pki.dev;           /* a typical end-entity cert */
    if ((len = i2d_X509(b->issued, &b->issued_der)) <= 0)
        return 0;
    b->issued_len = (size_t)len;
    b->chain = cmp_testpki_stack(pki.root, NULL);
    if ((b->signer = ca_signer_new_pkey(b->srv_key, NULL)) == NULL
        || !ca_signer_get0_sigalg_der(b->signer, &b->alg, &b->alg_len)
        || !cmp_extracerts_der(b->srv, b->chain, NULL, &b->extra,
                               &b->extra_len))
        return 0;
    pki.srv = NULL;
    pki.srv_key = NULL;
    pki.dev = NULL;
    cmp_testpki_free(&pki);
    /* raw rates over data of the ir's ProtectedPart size */
    pp.header = b->ir->header;
    pp.body = b->ir->body;
    len = ASN1_item_i2d((ASN1_VALUE *)&pp, &der, ASN1_ITEM_rptr(CMP_PROTPART));
    if (len <= 0)
        return 0;
    b->tbs = der;
    b->tbs_len = (size_t)len;
    /* a valid signature by the ir's signer is in the ir itself */
    memcpy(b->sig, ASN1_STRING_get0_data(b->ir->protection),
           (size_t)ASN1_STRING_length(b->ir->protection));
    b->sig_len = (size_t)ASN1_STRING_length(b->ir->protection);
    ctx = EVP_MD_CTX_new();
    len = EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, b->verify_key, NULL) > 0
        && EVP_DigestVerify(ctx, b->sig, b->sig_len, b->tbs, b->tbs_len) > 0;
    EVP_MD_CTX_free(ctx);
    return len;
}

int main(int argc, char **argv)
{
    static const struct { const char *name; bench_fn fn; } ops[] = {
        { "a  decode+find_signer+verify ir (P-256)", op_verify_ir },
        { "b  build+sign+encode ip (P-256, cert, chain, caPubs)", op_build_ip },
        { "c1 raw EVP_DigestSign P-256/SHA-256", op_raw_sign },
        { "c2 raw EVP_DigestVerify P-256/SHA-256", op_raw_verify },
        { "a1   of which cmp_msg_decode alone", op_decode_only },
        { "a2   of which d2i_CMP_MSG alone (no DER check)", op_d2i_only },
        { "a3   of which d2i_X509 of the signer cert", op_d2i_cert },
    };
    enum { NOPS = sizeof(ops) / sizeof(ops[0]) };
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    int rounds = argc > 2 ? atoi(argv[2]) : 5, r, i;
    double res[NOPS][64], med[NOPS];
    struct bench_ctx b;

    if (rounds < 1 || rounds > 64 || secs <= 0)
        return 2;
    if (!bench_setup(&b)) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    printf("ir %zu bytes, ProtectedPart %zu bytes; %d rounds x %.2fs, medians\n",
           b.ir_len, b.tbs_len, rounds, secs);
    for (r = 0; r < rounds; r++)          /* interleaved: noise hits all */
        for (i = 0; i < NOPS; i++)
            res[i][r] = bench_run(ops[i].fn, &b, secs);
    for (i = 0; i < NOPS; i++) {
        qsort(res[i], (size_t)rounds, sizeof(double), bench_cmp_double);
        med[i] = res[i][rounds / 2];
        printf("%-54s %9.0f ops/s %8.1f us/op  (min %.1f max %.1f)\n",
               ops[i].name, 1e6 / med[i], med[i], res[i][0], res[i][rounds - 1]);
    }
    printf("overhead (a) beyond raw verify: %6.1f us = %4.1f%% of (a)\n",
           med[0] - med[3], 100.0 * (med[0] - med[3]) / med[0]);
    printf("overhead (b) beyond raw sign:   %6.1f us = %4.1f%% of (b)\n",
           med[1] - med[2], 100.0 * (med[1] - med[2]) / med[1]);
    CMP_MSG_free(b.ir);
    X509_free(b.srv);
    EVP_PKEY_free(b.srv_key);
    X509_free(b.issued);
    OPENSSL_free(b.issued_der);
    sk_X509_pop_free(b.chain, X509_free);
    EVP_PKEY_free(b.verify_key);
    OPENSSL_free(b.tbs);
    OPENSSL_free(b.cert_der);
    free((void *)b.ir_der);
    return 0;
}
