/*
 * Seeds a cmpca SQLite store with N dummy certificate rows (random 20-octet
 * serials, a small dummy DER and its SHA-256) straight through sqlite3, for
 * the scale benchmark. The server must not run meanwhile.
 * Usage: seed_certs --db FILE --ca NAME --count N [--batch ROWS]
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED_SERIAL_LEN 20
#define SEED_DER_LEN    66
#define SEED_MAX_INDEX  16

static double seed_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int seed_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "seed_certs: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return 0;
    }
    return 1;
}

static void seed_usage(FILE *fp)
{
    fprintf(fp, "usage: seed_certs --db FILE --ca NAME --count N [--batch ROWS]\n"
            "Inserts N certificate rows for CA NAME, one transaction per\n"
            "--batch rows (default 100000). Secondary indexes of the cert\n"
            "table are dropped first and rebuilt at the end (same SQL).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "ca", required_argument, NULL, 'c' },
        { "count", required_argument, NULL, 'n' },
        { "batch", required_argument, NULL, 'b' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *path = NULL, *ca = NULL;
    long count = 0, batch = 100000, i;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *idx_name[SEED_MAX_INDEX], *idx_sql[SEED_MAX_INDEX], subject[64],
         sql[256];
    int nidx = 0, k, c, rc = 1;
    int64_t ca_id = 0, now = (int64_t)time(NULL);
    unsigned char rnd[SEED_SERIAL_LEN * 1024], der[SEED_DER_LEN], md[32];
    unsigned int mdlen = 0;
    size_t rpos = sizeof(rnd);
    double t0, t1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': path = optarg; break;
        case 'c': ca = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'b': batch = atol(optarg); break;
        case 'h': seed_usage(stdout); return 0;
        default: seed_usage(stderr); return 2;
        }
    }
    if (path == NULL || ca == NULL || count < 0 || count > 1000000000L
        || batch < 1 || batch > 10000000L) {
        seed_usage(stderr);
        return 2;
    }
    t0 = seed_now();
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "seed_certs: cannot open %s\n", path);
        goto end;
    }
    /* bulk load: no journal, big page cache; WAL is restored at the end */
    if (!seed_exec(db, "PRAGMA journal_mode=OFF")
        || !seed_exec(db, "PRAGMA synchronous=OFF")
        || !seed_exec(db, "PRAGMA cache_size=-1048576")
        || !seed_exec(db, "PRAGMA temp_store=MEMORY"))
        goto end;
    if (sqlite3_prepare_v2(db, "SELECT id FROM ca WHERE name = ?", -1, &st,
                           NULL) != SQLITE_OK)
        goto end;
    sqlite3_bind_text(st, 1, ca, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        ca_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (ca_id == 0) {
        fprintf(stderr, "seed_certs: no CA named %s\n", ca);
        goto end;
    }
    /* drop the secondary indexes (kept: the UNIQUE constraint's own) */
    if (sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_master WHERE "
                           "type = 'index' AND tbl_name = 'cert' AND "
                           "sql IS NOT NULL", -1, &st, NULL) != SQLITE_OK)
        goto end;
    while (sqlite3_step(st) == SQLITE_ROW && nidx < SEED_MAX_INDEX) {
        idx_name[nidx] = strdup((const char *)sqlite3_column_text(st, 0));
        idx_sql[nidx] = strdup((const char *)sqlite3_column_text(st, 1));
        nidx++;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (k = 0; k < nidx; k++) {
        snprintf(sql, sizeof(sql), "DROP INDEX \"%s\"", idx_name[k]);
        if (!seed_exec(db, sql))
            goto end;
    }
    if (sqlite3_prepare_v2(db, "INSERT INTO cert (ca_id, serial, subject, "
                           "not_before, not_after, der, sha256, status, "
                           "profile, created) VALUES (?, ?, ?, ?, ?, ?, ?, 0, "
                           "'seed', ?)", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "seed_certs: %s\n", sqlite3_errmsg(db));
        goto end;
    }
    /* dummy DER: SEQUENCE { INTEGER serial, OCTET STRING filler } */
    memset(der, 0, sizeof(der));
    der[0] = 0x30;
    der[1] = SEED_DER_LEN - 2;
    der[2] = 0x02;
    der[3] = SEED_SERIAL_LEN;
    der[4 + SEED_SERIAL_LEN] = 0x04;
    der[5 + SEED_SERIAL_LEN] = SEED_DER_LEN - 6 - SEED_SERIAL_LEN;
    for (i = 0; i < count; i++) {
        unsigned char *sn = der + 4;

        if (i % batch == 0 && !seed_exec(db, "BEGIN"))
            goto end;
        if (rpos == sizeof(rnd)) {
            if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                goto end;
            rpos = 0;
        }
        memcpy(sn, rnd + rpos, SEED_SERIAL_LEN);
        rpos += SEED_SERIAL_LEN;
        sn[0] = (unsigned char)((sn[0] & 0x7f) | 0x01); /* positive, 20 octets */
        if (!EVP_Digest(der, sizeof(der), md, &mdlen, EVP_sha256(), NULL))
            goto end;
        snprintf(subject, sizeof(subject), "CN=SEED-%ld,O=Operator", i);
        sqlite3_bind_int64(st, 1, ca_id);
        sqlite3_bind_blob(st, 2, sn, SEED_SERIAL_LEN, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int64(st, 5, now + 365 * 86400);
        sqlite3_bind_blob(st, 6, der, sizeof(der), SQLITE_STATIC);
        sqlite3_bind_blob(st, 7, md, 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            /* a serial collision has probability ~2^-140: report it */
            fprintf(stderr, "seed_certs: insert %ld: %s\n", i,
                    sqlite3_errmsg(db));
            goto end;
        }
        sqlite3_reset(st);
        if ((i + 1) % batch == 0 || i + 1 == count) {
            if (!seed_exec(db, "COMMIT"))
                goto end;
            if ((i + 1) % (batch * 10) == 0)
                fprintf(stderr, "seed_certs: %ld rows, %.0f s\n", i + 1,
                        seed_now() - t0);
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    t1 = seed_now();
    for (k = 0; k < nidx; k++)
        if (!seed_exec(db, idx_sql[k]))
            goto end;
    if (!seed_exec(db, "PRAGMA journal_mode=WAL"))
        goto end;
    printf("seed_certs: %ld rows in %.1f s (%.0f rows/s), indexes rebuilt in "
           "%.1f s\n", count, t1 - t0, (double)count / (t1 - t0 + 1e-9),
           seed_now() - t1);
    rc = 0;
 end:
    if (rc != 0 && db != NULL)
        fprintf(stderr, "seed_certs: failed: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (k = 0; k < nidx; k++) {
        free(idx_name[k]);
        free(idx_sql[k]);
    }
    return rc;
}
