/*
 * The OCSP responder core alone, in process (no HTTP): ocsp_respond() on a
 * store's certificates, one thread, against the raw signature of the same
 * key (the crypto floor) and the store lookup alone.
 * Usage: bench_ocsp_core --db FILE --ca NAME --serials FILE [--seconds S]
 */
#include "ca/ca.h"
#include "ocsp/ocsp.h"
#include "store/store.h"
#include "util/log.h"

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BC_NREQ 4096

static double bc_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process: on a shared machine the per-operation cost
 * is its CPU time, not the wall clock. */
static double bc_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "ca", required_argument, NULL, 'c' },
        { "serials", required_argument, NULL, 's' },
        { "seconds", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 }
    };
    const char *db = NULL, *caname = NULL, *serials = NULL;
    double secs = 2, t0, el, c0;
    struct store_conf sc;
    STORE *st = NULL;
    CA *ca = NULL;
    OCSP_RESPONDER *r;
    unsigned char *reqs[BC_NREQ];
    int lens[BC_NREQ], c, nser = 0;
    char err[512], line[256], **ser = NULL;
    long i, n;
    FILE *fp;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'c': caname = optarg; break;
        case 's': serials = optarg; break;
        case 't': secs = atof(optarg); break;
        default: return 2;
        }
    }
    if (db == NULL || caname == NULL || serials == NULL) {
        fprintf(stderr, "usage: bench_ocsp_core --db FILE --ca NAME "
                "--serials FILE [--seconds S]\n");
        return 2;
    }
    log_set_level(LOG_ERROR);
    store_conf_init(&sc);
    sc.path = db;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK
        || !ca_load(NULL, st, caname, &ca, err, sizeof(err))) {
        fprintf(stderr, "bench_ocsp_core: %s\n", err);
        return 1;
    }
    if ((fp = fopen(serials, "r")) == NULL)
        return 1;
    while (fgets(line, sizeof(line), fp) != NULL && nser < 1000000) {
        line[strcspn(line, "\r\n")] = '\0';
        ser = realloc(ser, (size_t)(nser + 1) * sizeof(*ser));
        ser[nser++] = strdup(line);
    }
    fclose(fp);
    srand(1);
    for (i = 0; i < BC_NREQ; i++) {
        OCSP_REQUEST *q = OCSP_REQUEST_new();
        BIGNUM *bn = NULL;
        ASN1_INTEGER *ai;

        BN_hex2bn(&bn, ser[rand() % nser]);
        ai = BN_to_ASN1_INTEGER(bn, NULL);
        OCSP_request_add0_id(q, OCSP_cert_id_new(EVP_sha1(),
            X509_get_subject_name(ca_get0_cert(ca)),
            X509_get0_pubkey_bitstr(ca_get0_cert(ca)), ai));
        OCSP_request_add1_nonce(q, NULL, 16);
        reqs[i] = NULL;
        lens[i] = i2d_OCSP_REQUEST(q, &reqs[i]);
        OCSP_REQUEST_free(q);
        ASN1_INTEGER_free(ai);
        BN_free(bn);
    }
    r = ocsp_responder_new(st, NULL);
    if (!ocsp_responder_add_ca(r, ca, NULL, NULL, err, sizeof(err))) {
        fprintf(stderr, "bench_ocsp_core: %s\n", err);
        return 1;
    }
    /* the full responder */
    t0 = bc_now();
    c0 = bc_cpu();
    for (n = 0; (el = bc_now() - t0) < secs; n++) {
        unsigned char *out = NULL;
        size_t ol = 0;

        ocsp_respond(r, reqs[n % BC_NREQ], (size_t)lens[n % BC_NREQ],
                     time(NULL), &out, &ol);
        OPENSSL_free(out);
    }
    printf("ocsp_respond: %.1f us/response wall, %.1f us CPU (%ld in %.1f s)"
           "\n", el * 1e6 / n, (bc_cpu() - c0) * 1e6 / n, n, el);
    /* the store lookup alone */
    t0 = bc_now();
    c0 = bc_cpu();
    for (n = 0; (el = bc_now() - t0) < secs; n++) {
        STORE_TX *tx = NULL;
        struct store_cert *cr = NULL;
        unsigned char sn[64];
        BIGNUM *bn = NULL;
        int sl;

        BN_hex2bn(&bn, ser[n % nser]);
        sl = BN_bn2bin(bn, sn);
        BN_free(bn);
        store_begin_read(st, &tx);
        store_cert_get_by_serial(tx, ca_get_id(ca), sn, (size_t)sl, &cr);
        store_cert_free(cr);
        store_rollback(tx);
    }
    printf("store lookup (read tx + get_by_serial): %.1f us wall, %.1f us "
           "CPU\n", el * 1e6 / n, (bc_cpu() - c0) * 1e6 / n);
    /* the signature alone (what a response cannot do without) */
    t0 = bc_now();
    c0 = bc_cpu();
    for (n = 0; (el = bc_now() - t0) < secs; n++) {
        unsigned char *sig = NULL;
        size_t sl = 0;

        ca_signer_sign_data(ca_get0_signer(ca), reqs[0], 200, &sig, &sl);
        OPENSSL_free(sig);
    }
    printf("raw signature (ca_signer_sign_data, 200 octets): %.1f us wall, "
           "%.1f us CPU\n", el * 1e6 / n, (bc_cpu() - c0) * 1e6 / n);
    for (i = 0; i < BC_NREQ; i++)
        OPENSSL_free(reqs[i]);
    for (i = 0; i < nser; i++)
        free(ser[i]);
    free(ser);
    ocsp_responder_free(r);
    ca_free(ca);
    store_close(st);
    return 0;
}
