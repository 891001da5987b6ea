/*
 * gen_server_seeds: makes the world and the seed corpus of the fuzz_server
 * target. WORLD gets a whole in-process cmpca (tests/lib/srv_testenv.c:
 * PKIs, configuration, store) left in the state the seeds expect; CORPUS
 * gets valid requests of every kind, each signed by a registered identity
 * and not yet delivered, so that the fuzzer's first run of each goes
 * through authentication into issuance, confirmation, revocation and genm:
 * for the 3gpp alias (devices) and for the ra alias (an RA's ir, cr,
 * p10cr, kur, rr and certConf on behalf of devices; devices' own irs in a
 * single nested message and in a batch of three, and a wrapped certConf).
 *
 * WORLD/signers.pem holds the signing identities (certificate, then key)
 * so that the fuzzer can re-sign what it mutates.
 *
 * usage: gen_server_seeds WORLD CORPUS   (both directories must exist;
 * WORLD empty). fuzz_server then uses WORLD through $CMPCA_FUZZ_WORLD.
 */
#include "srv_testenv.h"

#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "util/log.h"

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *corpus;
static int nseeds;

static int write_seed(const char *name, const unsigned char *der, size_t len)
{
    char path[4096];
    FILE *fp;
    int ok;

    if (der == NULL || len == 0) {
        fprintf(stderr, "gen_server_seeds: no message for seed %s\n", name);
        return 0;
    }
    snprintf(path, sizeof(path), "%s/seed-%s", corpus, name);
    if ((fp = fopen(path, "wb")) == NULL)
        return 0;
    ok = fwrite(der, 1, len, fp) == len;
    ok &= fclose(fp) == 0;
    nseeds += ok;
    return ok;
}

enum op { OP_IR, OP_CR, OP_KUR, OP_P10CR, OP_RR, OP_GENM };

static int reject_cb(OSSL_CMP_CTX *ctx, X509 *cert, int fail_info,
                     const char **txt)
{
    *txt = "seed rejects";
    return 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
}

/* Runs |op| as |id| (NULL = MAC) through |l|; with l->capture_at set, the
 * session stops at that request. |old| (NULL: |id|'s own certificate) is
 * the certificate a kur renews or an rr revokes. Sets *cert to a copy of
 * a new certificate if the session completed. */
static int session(struct stenv_link *l, enum op op, const struct stenv_id *id,
                   const char *cn, int reject, X509 *old, X509 **cert)
{
    OSSL_CMP_CTX *ctx = stenv_client(l, id);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *got = NULL;
    int ok = 0, i;

    if (cert != NULL)
        *cert = NULL;
    if (ctx == NULL || k == NULL)
        goto end;
    if (id == NULL
        && (!OSSL_CMP_CTX_set1_referenceValue(ctx, (const unsigned char *)cn,
                                              strlen(cn))
            || !OSSL_CMP_CTX_set1_secretValue(ctx, (const unsigned char *)"s3cr3t",
                                              6)))
        goto end;
    if (reject)
        OSSL_CMP_CTX_set_certConf_cb(ctx, reject_cb);
    switch (op) {
    case OP_IR: case OP_CR: case OP_KUR:
        if (!stenv_client_newkey(ctx, k, op == OP_KUR ? NULL : cn)
            || (op == OP_KUR && old != NULL
                && !OSSL_CMP_CTX_set1_oldCert(ctx, old)))
            goto end;
        got = op == OP_IR ? OSSL_CMP_exec_IR_ses(ctx)
            : op == OP_CR ? OSSL_CMP_exec_CR_ses(ctx) : OSSL_CMP_exec_KUR_ses(ctx);
        ok = got != NULL;
        break;
    case OP_P10CR: {
        X509_REQ *csr = X509_REQ_new();
        X509_NAME *n = X509_NAME_new();

        ok = csr != NULL && n != NULL
            && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                          (const unsigned char *)cn, -1, -1, 0)
            && X509_REQ_set_subject_name(csr, n) && X509_REQ_set_pubkey(csr, k)
            && X509_REQ_sign(csr, k, EVP_sha256()) > 0
            && OSSL_CMP_CTX_set1_p10CSR(ctx, csr);
        X509_REQ_free(csr);
        X509_NAME_free(n);
        ok = ok && (got = OSSL_CMP_exec_P10CR_ses(ctx)) != NULL;
        break;
    }
    case OP_RR:
        ok = OSSL_CMP_CTX_set1_oldCert(ctx, old != NULL ? old : id->cert)
            && OSSL_CMP_exec_RR_ses(ctx) == 1;
        break;
    case OP_GENM: {
        static const char *oids[] = { "1.3.6.1.5.5.7.4.17", "1.3.6.1.5.5.7.4.20",
                                      "1.3.6.1.5.5.7.4.19", "1.3.6.1.5.5.7.4.22",
                                      "1.3.6.1.5.5.7.4.99" };
        STACK_OF(OSSL_CMP_ITAV) *out;

        /* crlStatusList: one CRLStatus naming a CRL by a dpn URI; and a
         * certProfile in generalInfo (both parsed behind authentication) */
        static const unsigned char crlst[] = {
            0x30, 0x0c, 0x30, 0x0a, 0xa0, 0x08, 0xa0, 0x06,
            0x86, 0x04, 'h', 't', 't', 'p' };
        static const unsigned char prof[] = {
            0x30, 0x08, 0x0c, 0x06, 'd', 'e', 'v', 'i', 'c', 'e' };
        const unsigned char *p;
        ASN1_TYPE *v;

        for (i = 0; i < 5; i++) {
            v = NULL;
            if (i == 3) {
                p = crlst;
                v = d2i_ASN1_TYPE(NULL, &p, sizeof(crlst));
            }
            OSSL_CMP_CTX_push0_genm_ITAV(ctx,
                OSSL_CMP_ITAV_create(OBJ_txt2obj(oids[i], 1), v));
        }
        p = prof;
        v = d2i_ASN1_TYPE(NULL, &p, sizeof(prof));
        OSSL_CMP_CTX_push0_geninfo_ITAV(ctx,
            OSSL_CMP_ITAV_create(OBJ_txt2obj("1.3.6.1.5.5.7.4.21", 1), v));
        out = OSSL_CMP_exec_GENM_ses(ctx);
        ok = out != NULL;
        sk_OSSL_CMP_ITAV_pop_free(out, OSSL_CMP_ITAV_free);
        break;
    }
    }
    if (got != NULL && cert != NULL)
        *cert = X509_dup(got);
 end:
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    EVP_PKEY_free(k);
    return ok;
}

/* Captures request |at| (0-based) of a session on |alias| (NULL = 3gpp)
 * as seed |name|; requests before it are delivered. With |wrap|, every
 * request goes inside a single nested message by that RA. */
static int capture_ex(struct stenv *e, const char *alias,
                      const struct stenv_id *wrap, const char *name, int at,
                      enum op op, const struct stenv_id *id, const char *cn,
                      int reject, X509 *old)
{
    struct stenv_link l;
    int ok;

    memset(&l, 0, sizeof(l));
    l.env = e;
    l.alias = alias;
    l.wrap = wrap;
    l.capture_at = at + 1;
    (void)session(&l, op, id, cn, reject, old, NULL);
    ok = l.nreq == at + 1 && write_seed(name, l.req[at], l.req_len[at]);
    stenv_link_reset(&l);
    return ok;
}

static int capture(struct stenv *e, const char *name, int at, enum op op,
                   const struct stenv_id *id, const char *cn, int reject)
{
    return capture_ex(e, NULL, NULL, name, at, op, id, cn, reject, NULL);
}

/* Seed |name|: the irs of devices |ids| (|n| of them; not delivered) in a
 * nested message by RA |ra|: single for one, else a batch (RFC 9483
 * 5.2.2). */
static int capture_nested(struct stenv *e, const char *name,
                          const struct stenv_id *ra,
                          const struct stenv_id *ids, const char *const *cns,
                          int n)
{
    struct stenv_link l[3];
    const unsigned char *in[3];
    size_t inl[3];
    unsigned char *der = NULL;
    size_t len = 0;
    int i, ok = n >= 1 && n <= 3;

    memset(l, 0, sizeof(l));
    for (i = 0; ok && i < n; i++) {
        l[i].env = e;
        l[i].capture_at = 1;
        (void)session(&l[i], OP_IR, &ids[i], cns[i], 0, NULL, NULL);
        ok = l[i].nreq == 1;
        in[i] = l[i].req[0];
        inl[i] = l[i].req_len[0];
    }
    ok = ok && stenv_wrap(ra, n == 1, in, inl, n, &der, &len)
        && write_seed(name, der, len);
    OPENSSL_free(der);
    for (i = 0; i < 3; i++)
        stenv_link_reset(&l[i]);
    return ok;
}

/* Appends |id|'s certificate and key to WORLD/signers.pem, for the
 * fuzzer's re-signing of mutated requests. */
static int write_signer(const char *world, const struct stenv_id *id)
{
    char path[4096];
    FILE *fp;
    int ok;

    snprintf(path, sizeof(path), "%s/signers.pem", world);
    if ((fp = fopen(path, "a")) == NULL)
        return 0;
    ok = PEM_write_X509(fp, id->cert)
        && PEM_write_PrivateKey(fp, id->key, NULL, NULL, 0, NULL, NULL);
    return fclose(fp) == 0 && ok;
}

/* A device with its operator certificate (ir+certConf delivered). */
static int enrolled(struct stenv *e, const char *serial, struct stenv_id *op)
{
    struct stenv_id dev;
    struct stenv_link l;
    X509 *cert = NULL;
    EVP_PKEY *k = NULL;
    OSSL_CMP_CTX *ctx;
    int ok = 0;

    memset(&l, 0, sizeof(l));
    l.env = e;
    if (!stenv_device(e, serial, 0, 1, &dev))
        return 0;
    if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL
        || (ctx = stenv_client(&l, &dev)) == NULL)
        goto end;
    if (stenv_client_newkey(ctx, k, serial)
        && (cert = OSSL_CMP_exec_IR_ses(ctx)) != NULL)
        ok = stenv_id_set(op, cert, k);
    OSSL_CMP_CTX_free(ctx);
 end:
    ERR_clear_error();
    stenv_link_reset(&l);
    EVP_PKEY_free(k);
    stenv_id_clear(&dev);
    return ok;
}

/* A device |cn| enrolled by RA |ra| on alias ra (ir+certConf): its
 * certificate in *cert. */
static int ra_enrolled(struct stenv *e, const struct stenv_id *ra,
                       const char *cn, X509 **cert)
{
    struct stenv_link l;
    int ok;

    memset(&l, 0, sizeof(l));
    l.env = e;
    l.alias = "ra";
    ok = session(&l, OP_IR, ra, cn, 0, NULL, cert) && *cert != NULL;
    stenv_link_reset(&l);
    return ok;
}

int main(int argc, char **argv)
{
    struct stenv e;
    struct stenv_opts o = { 86400, -1, 0 };
    struct stenv_id d[8], op3, op4, op5;
    static const char *const batch_cns[3] = { "SN-000005", "SN-000006",
                                              "SN-000007" };
    X509 *rakur = NULL, *rarr = NULL;
    char err[512], sn[32];
    int i, ok = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: gen_server_seeds WORLD CORPUS\n");
        return 2;
    }
    corpus = argv[2];
    log_set_level(LOG_ERROR);
    memset(d, 0, sizeof(d));
    memset(&op3, 0, sizeof(op3));
    memset(&op4, 0, sizeof(op4));
    memset(&op5, 0, sizeof(op5));
    /* confirm_wait_time 1 day, messageTime unchecked: the seeds stay valid
     * while the corpus is fuzzed */
    if (!stenv_create(&e, argv[1], &o, err, sizeof(err))) {
        fprintf(stderr, "gen_server_seeds: %s\n", err);
        return 1;
    }
    for (i = 0; i < 8; i++) {        /* SN-000001..8: registered only */
        snprintf(sn, sizeof(sn), "SN-%06d", i + 1);
        ok &= stenv_device(&e, sn, 0, 1, &d[i]);
    }
    ok = ok
        && enrolled(&e, "SN-000011", &op3)      /* kur, cr */
        && enrolled(&e, "SN-000012", &op4)      /* rr */
        && enrolled(&e, "SN-000013", &op5)      /* genm, certConf reuse */
        /* first requests, not delivered */
        && capture(&e, "ir", 0, OP_IR, &d[0], "SN-000001", 0)
        && capture(&e, "p10cr", 0, OP_P10CR, &d[0], "SN-000001", 0)
        && capture(&e, "ir-mac", 0, OP_IR, NULL, "SN-000001", 0)
        && capture(&e, "kur", 0, OP_KUR, &op3, NULL, 0)
        && capture(&e, "cr", 0, OP_CR, &op3, "SN-000011", 0)
        && capture(&e, "rr", 0, OP_RR, &op4, NULL, 0)
        && capture(&e, "genm-vendor", 0, OP_GENM, &d[2], NULL, 0)
        && capture(&e, "genm-operator", 0, OP_GENM, &op5, NULL, 0)
        /* ir delivered, its certConf waiting in the world's store */
        && capture(&e, "certconf", 1, OP_IR, &d[1], "SN-000002", 0)
        && capture(&e, "certconf-reject", 1, OP_IR, &d[2], "SN-000003", 1)
        /* the approve alias: an ir held for approval, its pollReq */
        && capture_ex(&e, "approve", NULL, "pollreq", 1, OP_IR, &d[0],
                      "SN-000001", 0, NULL)
        /* the ra alias: an RA for devices dev-*, and devices' own irs
         * forwarded in nested messages */
        && ra_enrolled(&e, &e.ra[STENV_RA_ALL], "dev-kur", &rakur)
        && ra_enrolled(&e, &e.ra[STENV_RA_ALL], "dev-rr", &rarr)
        && capture_ex(&e, "ra", NULL, "ra-ir", 0, OP_IR, &e.ra[STENV_RA_ALL],
                      "dev-1", 0, NULL)
        && capture_ex(&e, "ra", NULL, "ra-cr", 0, OP_CR, &e.ra[STENV_RA_ALL],
                      "dev-2", 0, NULL)
        && capture_ex(&e, "ra", NULL, "ra-p10cr", 0, OP_P10CR,
                      &e.ra[STENV_RA_ALL], "dev-3", 0, NULL)
        && capture_ex(&e, "ra", NULL, "ra-kur", 0, OP_KUR, &e.ra[STENV_RA_ALL],
                      NULL, 0, rakur)
        && capture_ex(&e, "ra", NULL, "ra-rr", 0, OP_RR, &e.ra[STENV_RA_ALL],
                      NULL, 0, rarr)
        && capture_ex(&e, "ra", NULL, "ra-certconf", 1, OP_IR,
                      &e.ra[STENV_RA_ALL], "dev-4", 0, NULL)
        && capture_nested(&e, "nested-ir", &e.ra[STENV_RA_ALL], &d[3],
                          (const char *const[]){ "SN-000004" }, 1)
        && capture_nested(&e, "nested-batch", &e.ra[STENV_RA_ALL], &d[4],
                          batch_cns, 3)
        && capture_ex(&e, "ra", &e.ra[STENV_RA_ALL], "nested-certconf", 1,
                      OP_IR, &d[7], "SN-000008", 0, NULL);
    for (i = 0; i < 8 && ok; i++)
        ok = write_signer(argv[1], &d[i]);
    for (i = 0; i < STENV_NRA && ok; i++)
        ok = write_signer(argv[1], &e.ra[i]);
    ok = ok && write_signer(argv[1], &op3) && write_signer(argv[1], &op4)
        && write_signer(argv[1], &op5);
    for (i = 0; i < 8; i++)
        stenv_id_clear(&d[i]);
    stenv_id_clear(&op3);
    stenv_id_clear(&op4);
    stenv_id_clear(&op5);
    X509_free(rakur);
    X509_free(rarr);
    stenv_free(&e, 0);
    if (!ok) {
        fprintf(stderr, "gen_server_seeds: failed after %d seeds\n", nseeds);
        return 1;
    }
    printf("gen_server_seeds: %d seeds in %s, world in %s\n", nseeds, corpus,
           argv[1]);
    return 0;
}
