/*
 * libFuzzer target: arbitrary bytes through the whole CMP server core,
 * server_handle() on a temporary SQLite store, with the sweeper run now
 * and then. The store is a copy of the world gen_server_seeds made
 * ($CMPCA_FUZZ_WORLD: its PKI signed the seeds, its store holds the
 * transactions they continue); without it a fresh world is made, which only
 * the unauthenticated paths can reach. Half of the inputs (by a bit of
 * their hash) that decode and name a signer from WORLD/signers.pem are
 * re-signed with that signer's key first, with a transactionID made from
 * their hash unless they continue a transaction (certConf, error), so that
 * mutated content reaches the checks behind authentication with a new
 * transaction each time; the messages inside a nested wrapper are
 * re-signed first (a single wrapper then repeats its inner
 * transactionID), then the wrapper. An input goes to the ra alias when it
 * is nested or signed by an RA (a certificate with id-kp-cmcRA in
 * signers.pem), a MAC-protected one to the mac alias, otherwise to the
 * 3gpp alias; one input in eight (by its hash) to the other one. The store is bounded: once its files
 * pass FUZZ_SERVER_MAX_DB bytes it is replaced by a fresh copy, so a long
 * run cannot fill the disk. State carries over between inputs (a replay is
 * answered differently from a first delivery), so a crash may need the
 * inputs before it: run the crash file on the same world.
 */
#include "srv_testenv.h"

#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "util/log.h"
#include "testutil.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_SERVER_MAX_DB (64L << 20)   /* database + WAL; the environment
                                         * may set FUZZ_SERVER_MAX_DB lower */
#define FUZZ_SERVER_CHECK_EVERY 256      /* inputs between size checks */
#define FUZZ_SERVER_SWEEP_EVERY 1024     /* inputs between sweeps */

static struct stenv env;
static const char *world;            /* NULL: env made its own world */
static char *tmpdir;                 /* holds the store copy */
static char db_path[4096];
static unsigned long runs;
static long max_db = FUZZ_SERVER_MAX_DB;
static unsigned long resets;
#define FUZZ_SERVER_MAX_SIGNERS 32
static X509 *signer_cert[FUZZ_SERVER_MAX_SIGNERS];
static EVP_PKEY *signer_key[FUZZ_SERVER_MAX_SIGNERS];
static int signer_ra[FUZZ_SERVER_MAX_SIGNERS];   /* has id-kp-cmcRA */
static int nsigners;

/* Does |x| carry id-kp-cmcRA (an RA of the world)? */
static int is_ra_cert(X509 *x)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL,
                                               NULL);
    int i, found = 0;

    for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
        found |= OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_cmcRA;
    EXTENDED_KEY_USAGE_free(eku);
    ERR_clear_error();
    return found;
}

/* Reads WORLD/signers.pem: certificate, key, certificate, key, ... */
static void load_signers(void)
{
    char path[4200];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/signers.pem", world);
    if ((fp = fopen(path, "r")) == NULL)
        return;
    while (nsigners < FUZZ_SERVER_MAX_SIGNERS
           && (signer_cert[nsigners] = PEM_read_X509(fp, NULL, NULL, NULL))
              != NULL) {
        if ((signer_key[nsigners] = PEM_read_PrivateKey(fp, NULL, NULL, NULL))
            == NULL) {
            X509_free(signer_cert[nsigners]);
            break;
        }
        signer_ra[nsigners] = is_ra_cert(signer_cert[nsigners]);
        nsigners++;
    }
    fclose(fp);
    ERR_clear_error();
}

static void free_signers(void)
{
    while (nsigners > 0) {
        nsigners--;
        X509_free(signer_cert[nsigners]);
        EVP_PKEY_free(signer_key[nsigners]);
    }
}

/* The index in signers.pem of the signer of |m|, -1 if unknown: by the
 * certificate in extraCerts, else (a certConf carries none) by senderKID. */
static int signer_of(const CMP_MSG *m)
{
    const ASN1_OCTET_STRING *kid = m->header->senderKID, *ski;
    X509 *signer = NULL;
    int i;

    if (cmp_protect_find_signer(m, &signer) == CMP_R_OK) {
        for (i = 0; i < nsigners; i++)
            if (X509_cmp(signer, signer_cert[i]) == 0)
                return i;
        return -1;
    }
    ERR_clear_error();
    for (i = 0; kid != NULL && i < nsigners; i++)
        if ((ski = X509_get0_subject_key_id(signer_cert[i])) != NULL
            && ASN1_OCTET_STRING_cmp(ski, kid) == 0)
            return i;
    return -1;
}

static int same_octets(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
    return a != NULL && b != NULL && ASN1_STRING_cmp(a, b) == 0;
}

/* Re-signs |m| if its signer is known, with transactionID |md| (16 octets)
 * unless it continues a transaction; the messages in a nested |m| first
 * (each of a batch with a transactionID of its own, a single one with |md|
 * and the wrapper then repeating it). Returns 1 if |m| was re-signed. */
static int resign_msg(CMP_MSG *m, const unsigned char *md, int depth)
{
    int i = signer_of(m), type = m->body->type, k, n, single;
    ASN1_OCTET_STRING *tid = m->header->transactionID;

    if (type == CMP_BODY_NESTED && depth < 2) {
        STACK_OF(CMP_MSG) *in = m->body->value.nested;

        n = sk_CMP_MSG_num(in);
        single = n == 1 && same_octets(tid, sk_CMP_MSG_value(in, 0)
                                           ->header->transactionID);
        for (k = 0; k < n; k++) {
            unsigned char sub[32];

            memcpy(sub, md, sizeof(sub));
            if (!single)
                sub[0] ^= (unsigned char)(k + 1);
            (void)resign_msg(sk_CMP_MSG_value(in, k), sub, depth + 1);
        }
        if (i >= 0 && tid != NULL
            && !(single ? ASN1_STRING_copy(tid, sk_CMP_MSG_value(in, 0)
                                                ->header->transactionID)
                        : ASN1_OCTET_STRING_set(tid, md, 16)))
            return 0;
    } else if (i >= 0 && type != CMP_BODY_CERTCONF && type != CMP_BODY_ERROR
               && tid != NULL && !ASN1_OCTET_STRING_set(tid, md, 16)) {
        return 0;
    }
    return i >= 0 && stenv_resign(m, signer_key[i], NULL);
}

/* Re-signs |data| if it decodes and its signer is known; sets *out
 * (OPENSSL_malloc'ed) or leaves it NULL. */
static void resign(const uint8_t *data, size_t size, const unsigned char *md,
                   unsigned char **out, size_t *outlen)
{
    CMP_MSG *m = NULL;

    *out = NULL;
    if (cmp_msg_decode(data, size, NULL, &m) == CMP_R_OK
        && resign_msg(m, md, 0) && !cmp_msg_encode(m, out, outlen))
        *out = NULL;
    CMP_MSG_free(m);
    ERR_clear_error();
}

/* The alias for |data|: "approve" (approval = manual) for a pollReq,
 * "mac" for a MAC-protected message, "ra" for a nested message or one an
 * RA signed, else "3gpp"; with |flip| the other one of ra and 3gpp. */
static const char *alias_for(const uint8_t *data, size_t size, int flip)
{
    CMP_MSG *m = NULL;
    int ra = 0, mac = 0, i;

    if (cmp_msg_decode(data, size, NULL, &m) == CMP_R_OK
        && m->body->type == CMP_BODY_POLLREQ && !flip) {
        CMP_MSG_free(m);
        ERR_clear_error();
        return "approve";
    }
    if (m != NULL) {
        ra = m->body->type == CMP_BODY_NESTED
            || ((i = signer_of(m)) >= 0 && signer_ra[i]);
        mac = m->protection != NULL && cmp_protect_is_mac(m);
    }
    CMP_MSG_free(m);
    ERR_clear_error();
    if (mac && !flip)
        return "mac";
    return ra != flip ? "ra" : "3gpp";
}

static int copy_file(const char *from, const char *to)
{
    unsigned char *buf;
    size_t len = 0;
    FILE *fp;
    int ok;

    if ((buf = testutil_read_file(from, &len)) == NULL)
        return 0;
    ok = (fp = fopen(to, "wb")) != NULL && fwrite(buf, 1, len, fp) == len;
    if (fp != NULL && fclose(fp) != 0)
        ok = 0;
    free(buf);
    return ok;
}

static void drop_store_files(void)
{
    char p[4200];

    unlink(db_path);
    snprintf(p, sizeof(p), "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db_path);
    unlink(p);
}

/* (Re)makes the server on a fresh store. */
static void fuzz_world_open(void)
{
    char err[512], from[4200], to[4200];

    if (world != NULL) {
        drop_store_files();
        snprintf(from, sizeof(from), "%s/cmpca.db", world);
        if (!copy_file(from, db_path)) {
            fprintf(stderr, "fuzz_server: cannot copy %s\n", from);
            abort();
        }
        snprintf(from, sizeof(from), "%s/cmpca.db-wal", world);
        snprintf(to, sizeof(to), "%s-wal", db_path);
        if (access(from, F_OK) == 0 && !copy_file(from, to))
            abort();
        if (!stenv_open(&env, world, db_path, err, sizeof(err))) {
            fprintf(stderr, "fuzz_server: %s\n", err);
            abort();
        }
    } else {
        struct stenv_opts o = { 86400, -1, 0 };

        if ((tmpdir = testutil_mkdtemp("cmpca-fuzz-server")) == NULL
            || !stenv_create(&env, tmpdir, &o, err, sizeof(err))) {
            fprintf(stderr, "fuzz_server: %s\n", err);
            abort();
        }
        snprintf(db_path, sizeof(db_path), "%s/cmpca.db", tmpdir);
    }
}

/* Ends the server; the store copy goes (and, at the end, its directory;
 * a world of the target's own goes whole). */
static void fuzz_world_close(int final)
{
    stenv_free(&env, world == NULL);
    if (world != NULL) {
        drop_store_files();
        if (final)
            rmdir(tmpdir);
    }
    if (world == NULL || final) {
        free(tmpdir);
        tmpdir = NULL;
    }
}

static void fuzz_at_exit(void)
{
    fuzz_world_close(1);
    free_signers();
}

static long store_bytes(void)
{
    struct stat sb;
    char p[4200];
    long n = 0;

    if (stat(db_path, &sb) == 0)
        n += (long)sb.st_size;
    snprintf(p, sizeof(p), "%s-wal", db_path);
    if (stat(p, &sb) == 0)
        n += (long)sb.st_size;
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static FILE *devnull;

    (void)argc; (void)argv;
    /* one log line per message would fill the run's log */
    if (getenv("FUZZ_SERVER_VERBOSE") == NULL) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
        log_set_level(LOG_ERROR);
    }
    if (getenv("FUZZ_SERVER_MAX_DB") != NULL) {
        long v = atol(getenv("FUZZ_SERVER_MAX_DB"));

        if (v > 0 && v < max_db)
            max_db = v;
    }
    world = getenv("CMPCA_FUZZ_WORLD");
    if (world != NULL && *world == '\0')
        world = NULL;
    if (world != NULL) {
        if ((tmpdir = testutil_mkdtemp("cmpca-fuzz-server")) == NULL)
            abort();
        snprintf(db_path, sizeof(db_path), "%s/cmpca.db", tmpdir);
        load_signers();
    }
    fuzz_world_open();
    atexit(fuzz_at_exit);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *rsp = NULL, *re = NULL, md[32];
    size_t rlen = 0, relen = 0;
    int status;

    if (!EVP_Digest(data, size, md, NULL, EVP_sha256(), NULL))
        memset(md, 0, sizeof(md));
    if (nsigners > 0 && (md[31] & 1) != 0)
        resign(data, size, md, &re, &relen);
    /* one input in eight goes to the cert-mode alias (any holder of a
     * certificate of the issuing CA: the RAs' certificates) */
    if (re != NULL)
        status = stenv_handle(&env, (md[29] & 7) == 1 ? "cert"
                              : alias_for(re, relen, (md[30] & 7) == 0),
                              re, relen, &rsp, &rlen);
    else
        status = stenv_handle(&env, (md[29] & 7) == 1 ? "cert"
                              : alias_for(data, size, (md[30] & 7) == 0),
                              data, size, &rsp, &rlen);
    OPENSSL_free(re);
    /* every answer but 404/500 is a CMP message */
    if ((status == 200 || (status >= 400 && status < 500 && status != 404))
        && rsp == NULL)
        __builtin_trap();
    free(rsp);
    runs++;
    if (runs % FUZZ_SERVER_SWEEP_EVERY == 0)
        (void)server_sweep(env.srv, time(NULL));
    if (runs % FUZZ_SERVER_CHECK_EVERY == 0
        && store_bytes() > max_db) {
        fuzz_world_close(0);
        fuzz_world_open();
        if (++resets <= 3 || getenv("FUZZ_SERVER_VERBOSE") != NULL)
            fprintf(stderr, "fuzz_server: store over %ld bytes after %lu "
                    "inputs: fresh copy of the world (%lu)\n", max_db, runs,
                    resets);
    }
    ERR_clear_error();
    return 0;
}
