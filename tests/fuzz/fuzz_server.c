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
 * transaction each time. The store is bounded: once its files
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
#define FUZZ_SERVER_MAX_SIGNERS 16
static X509 *signer_cert[FUZZ_SERVER_MAX_SIGNERS];
static EVP_PKEY *signer_key[FUZZ_SERVER_MAX_SIGNERS];
static int nsigners;

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

/* Re-signs |data| if it decodes and its signer is known; sets *out
 * (OPENSSL_malloc'ed) or leaves it NULL. */
static void resign(const uint8_t *data, size_t size, const unsigned char *md,
                   unsigned char **out, size_t *outlen)
{
    CMP_MSG *m = NULL;
    X509 *signer = NULL;
    int i, type;

    *out = NULL;
    if (cmp_msg_decode(data, size, NULL, &m) != CMP_R_OK
        || cmp_protect_find_signer(m, &signer) != CMP_R_OK)
        goto end;
    for (i = 0; i < nsigners; i++)
        if (X509_cmp(signer, signer_cert[i]) == 0)
            break;
    if (i == nsigners)
        goto end;
    type = m->body->type;
    if (type != CMP_BODY_CERTCONF && type != CMP_BODY_ERROR
        && m->header->transactionID != NULL
        && !ASN1_OCTET_STRING_set(m->header->transactionID, md, 16))
        goto end;
    if (stenv_resign(m, signer_key[i], NULL) && !cmp_msg_encode(m, out, outlen))
        *out = NULL;
 end:
    CMP_MSG_free(m);
    ERR_clear_error();
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

    if (nsigners > 0 && EVP_Digest(data, size, md, NULL, EVP_sha256(), NULL)
        && (md[31] & 1) != 0)
        resign(data, size, md, &re, &relen);
    if (re != NULL)
        status = stenv_handle(&env, NULL, re, relen, &rsp, &rlen);
    else
        status = stenv_handle(&env, NULL, data, size, &rsp, &rlen);
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
