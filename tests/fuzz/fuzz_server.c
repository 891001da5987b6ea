/*
 * libFuzzer target: arbitrary bytes through the whole CMP server core,
 * server_handle() on a temporary SQLite store, with the sweeper run now
 * and then. The store is a copy of the world gen_server_seeds made
 * ($CMPCA_FUZZ_WORLD: its PKI signed the seeds, its store holds the
 * transactions they continue); without it a fresh world is made, which only
 * the unauthenticated paths can reach. The store is bounded: once its files
 * pass FUZZ_SERVER_MAX_DB bytes it is replaced by a fresh copy, so a long
 * run cannot fill the disk. State carries over between inputs (a replay is
 * answered differently from a first delivery), so a crash may need the
 * inputs before it: run the crash file on the same world.
 */
#include "srv_testenv.h"

#include "util/log.h"
#include "testutil.h"

#include <openssl/err.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_SERVER_MAX_DB (64L << 20)   /* database + WAL */
#define FUZZ_SERVER_CHECK_EVERY 256      /* inputs between size checks */
#define FUZZ_SERVER_SWEEP_EVERY 1024     /* inputs between sweeps */

static struct stenv env;
static const char *world;            /* NULL: env made its own world */
static char *tmpdir;                 /* holds the store copy */
static char db_path[4096];
static unsigned long runs;

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
    world = getenv("CMPCA_FUZZ_WORLD");
    if (world != NULL && *world == '\0')
        world = NULL;
    if (world != NULL) {
        if ((tmpdir = testutil_mkdtemp("cmpca-fuzz-server")) == NULL)
            abort();
        snprintf(db_path, sizeof(db_path), "%s/cmpca.db", tmpdir);
    }
    fuzz_world_open();
    atexit(fuzz_at_exit);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *rsp = NULL;
    size_t rlen = 0;
    int status;

    status = stenv_handle(&env, NULL, data, size, &rsp, &rlen);
    /* every answer but 404/500 is a CMP message */
    if ((status == 200 || (status >= 400 && status < 500 && status != 404))
        && rsp == NULL)
        __builtin_trap();
    free(rsp);
    runs++;
    if (runs % FUZZ_SERVER_SWEEP_EVERY == 0)
        (void)server_sweep(env.srv, time(NULL));
    if (runs % FUZZ_SERVER_CHECK_EVERY == 0
        && store_bytes() > FUZZ_SERVER_MAX_DB) {
        fuzz_world_close(0);
        fuzz_world_open();
    }
    ERR_clear_error();
    return 0;
}
