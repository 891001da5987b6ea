/*
 * Device-side storage: loading PEM credentials, atomic single-file writes,
 * and the store directory whose files are swapped all at once (a new
 * generation directory, then one rename of the "current" symlink).
 */
#include "cmpclient_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define CMPCLIENT_CURRENT "current"
#define CMPCLIENT_GEN_PREFIX ".gen-"

static int cmpclient_fail_countdown;

void cmpclient_test_fail_write(int n)
{
    cmpclient_fail_countdown = n;
}

/* Joins |a| "/" |b| into |buf|; returns 1, or 0 if it does not fit. */
static int cmpclient_join(char *buf, size_t len, const char *a, const char *b)
{
    int n = snprintf(buf, len, "%s/%s", a, b);

    return n > 0 && (size_t)n < len;
}

/* Writes all of |len| bytes to |fd|; returns 1 or 0 (errno set). */
static int cmpclient_write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;

    if (cmpclient_fail_countdown > 0 && --cmpclient_fail_countdown == 0) {
        errno = ENOSPC;
        return 0;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

/* fsyncs the directory |dir|; returns 1 or 0. */
static int cmpclient_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok;

    if (fd < 0)
        return 0;
    ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Returns the directory part of |path| in |buf| ("." if none). */
static void cmpclient_dirname(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(buf, len, ".");
    else if (slash == path)
        snprintf(buf, len, "/");
    else
        snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

int cmpclient_write_file_atomic(const char *path, const void *data,
                                size_t len, unsigned int mode)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int fd = -1, ret = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return 0;
    if ((fd = mkstemp(tmp)) < 0)
        return 0;
    if (fchmod(fd, (mode_t)mode) != 0
        || !cmpclient_write_all(fd, data, len)
        || fsync(fd) != 0)
        goto end;
    if (close(fd) != 0) {
        fd = -1;
        goto end;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto end;
    cmpclient_dirname(path, dir, sizeof(dir));
    ret = cmpclient_fsync_dir(dir);
    return ret; /* renamed: nothing to remove even if the dir fsync failed */
 end:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return ret;
}

/* Creates |path| (must not exist) with |mode| and writes |len| bytes, then
 * fsyncs it. Returns 1 or 0 (errno set). */
static int cmpclient_write_new(const char *path, const void *data, size_t len,
                               mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int saved;

    if (fd < 0)
        return 0;
    if (fchmod(fd, mode) != 0 || !cmpclient_write_all(fd, data, len)
        || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return 0;
    }
    return close(fd) == 0;
}

/* Serialises |r| member |which| (0 key, 1 cert, 2 chain, 3 root) as PEM
 * into a memory BIO; returns it or NULL. */
static BIO *cmpclient_pem(const struct cmpclient_result *r, int which)
{
    BIO *b = BIO_new(BIO_s_mem());
    int i, ok = b != NULL;

    if (!ok)
        return NULL;
    switch (which) {
    case 0:
        ok = PEM_write_bio_PrivateKey(b, r->key, NULL, NULL, 0, NULL, NULL);
        break;
    case 1:
        ok = PEM_write_bio_X509(b, r->cert);
        break;
    case 2:
        for (i = 0; ok && i < sk_X509_num(r->chain); i++)
            ok = PEM_write_bio_X509(b, sk_X509_value(r->chain, i));
        break;
    default:
        ok = r->root == NULL || PEM_write_bio_X509(b, r->root);
        break;
    }
    if (!ok) {
        BIO_free(b);
        return NULL;
    }
    return b;
}

/* Removes the generation directory |dir|/|gen| and its files. */
static void cmpclient_remove_gen(const char *dir, const char *gen)
{
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d;

    if (strncmp(gen, CMPCLIENT_GEN_PREFIX, strlen(CMPCLIENT_GEN_PREFIX)) != 0
        || strchr(gen, '/') != NULL)
        return; /* never remove anything we did not create */
    if (!cmpclient_join(path, sizeof(path), dir, gen))
        return;
    if ((d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            char file[PATH_MAX];

            if (de->d_name[0] == '.')
                continue;
            if (cmpclient_join(file, sizeof(file), path, de->d_name))
                unlink(file);
        }
        closedir(d);
    }
    rmdir(path);
}

static const char *const cmpclient_names[4] = {
    CMPCLIENT_FILE_KEY, CMPCLIENT_FILE_CERT, CMPCLIENT_FILE_CHAIN,
    CMPCLIENT_FILE_ROOT
};

int cmpclient_store_prepare(const char *dir, const struct cmpclient_result *r,
                            struct cmpclient_staged *st, char *err,
                            size_t errlen)
{
    unsigned char rnd[8];
    char gen[64], path[PATH_MAX];
    int i, made = 0;

    memset(st, 0, sizeof(*st));
    if (r->key == NULL || r->cert == NULL) {
        snprintf(err, errlen, "nothing to install");
        return 0;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return 0;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        snprintf(err, errlen, "no randomness for a file name");
        return 0;
    }
    snprintf(gen, sizeof(gen), CMPCLIENT_GEN_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    if (!cmpclient_join(path, sizeof(path), dir, gen)) {
        snprintf(err, errlen, "directory name too long");
        return 0;
    }
    if (mkdir(path, 0700) != 0) {
        snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
        return 0;
    }
    made = 1;
    for (i = 0; i < 4; i++) {
        BIO *b = cmpclient_pem(r, i);
        char *data;
        long len;
        char file[PATH_MAX];

        if (b == NULL) {
            snprintf(err, errlen, "cannot encode %s", cmpclient_names[i]);
            goto err;
        }
        len = BIO_get_mem_data(b, &data);
        if (!cmpclient_join(file, sizeof(file), path, cmpclient_names[i])
            || !cmpclient_write_new(file, data, (size_t)len, i == 0 ? 0600 : 0644)) {
            snprintf(err, errlen, "cannot write %s: %s", file, strerror(errno));
            BIO_free(b);
            goto err;
        }
        BIO_free(b);
    }
    if (!cmpclient_fsync_dir(path) || !cmpclient_fsync_dir(dir)) {
        snprintf(err, errlen, "cannot sync %s: %s", path, strerror(errno));
        goto err;
    }
    st->dir = strdup(dir);
    st->gen = strdup(gen);
    if (st->dir == NULL || st->gen == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    return 1;
 err:
    if (made)
        cmpclient_remove_gen(dir, gen);
    free(st->dir);
    free(st->gen);
    memset(st, 0, sizeof(*st));
    return 0;
}

/* Atomically points the symlink |dir|/|name| at |target|. Returns 1 or 0. */
static int cmpclient_symlink_swap(const char *dir, const char *name,
                                  const char *target)
{
    char link[PATH_MAX], tmp[PATH_MAX], cur[PATH_MAX];
    ssize_t n;

    if (!cmpclient_join(link, sizeof(link), dir, name))
        return 0;
    n = readlink(link, cur, sizeof(cur) - 1);
    if (n >= 0) {
        cur[n] = '\0';
        if (strcmp(cur, target) == 0)
            return 1;
    }
    n = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return 0;
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return 0;
    if (rename(tmp, link) != 0) {
        unlink(tmp);
        return 0;
    }
    return 1;
}

int cmpclient_store_commit(struct cmpclient_staged *st, char *err,
                           size_t errlen)
{
    char link[PATH_MAX], old[PATH_MAX], target[PATH_MAX];
    ssize_t n;
    int i, ret = 0;

    if (!cmpclient_join(link, sizeof(link), st->dir, CMPCLIENT_CURRENT)) {
        snprintf(err, errlen, "directory name too long");
        cmpclient_store_abort(st);
        return 0;
    }
    n = readlink(link, old, sizeof(old) - 1);
    old[n >= 0 ? n : 0] = '\0';
    if (!cmpclient_symlink_swap(st->dir, CMPCLIENT_CURRENT, st->gen)) {
        snprintf(err, errlen, "cannot switch %s: %s", link, strerror(errno));
        cmpclient_remove_gen(st->dir, st->gen);
        goto end;
    }
    /* From here on the new generation is current; the per-file links are
     * fixed relative names and only need creating once. */
    for (i = 0; i < 4; i++) {
        snprintf(target, sizeof(target), CMPCLIENT_CURRENT "/%s",
                 cmpclient_names[i]);
        if (!cmpclient_symlink_swap(st->dir, cmpclient_names[i], target)) {
            snprintf(err, errlen, "cannot link %s/%s: %s", st->dir,
                     cmpclient_names[i], strerror(errno));
            goto end;
        }
    }
    if (!cmpclient_fsync_dir(st->dir)) {
        snprintf(err, errlen, "cannot sync %s: %s", st->dir, strerror(errno));
        goto end;
    }
    if (old[0] != '\0' && strcmp(old, st->gen) != 0)
        cmpclient_remove_gen(st->dir, old);
    ret = 1;
 end:
    free(st->dir);
    free(st->gen);
    memset(st, 0, sizeof(*st));
    return ret;
}

void cmpclient_store_abort(struct cmpclient_staged *st)
{
    if (st->dir != NULL && st->gen != NULL)
        cmpclient_remove_gen(st->dir, st->gen);
    free(st->dir);
    free(st->gen);
    memset(st, 0, sizeof(*st));
}

int cmpclient_store_install(const char *dir, const struct cmpclient_result *r,
                            char *err, size_t errlen)
{
    struct cmpclient_staged st;

    if (!cmpclient_store_prepare(dir, r, &st, err, errlen))
        return 0;
    return cmpclient_store_commit(&st, err, errlen);
}

/* Password callback that refuses: keys on the device are not encrypted,
 * and we must never block on a terminal prompt. */
static int cmpclient_no_pass(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

EVP_PKEY *cmpclient_load_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k;

    if (b == NULL)
        return NULL;
    k = PEM_read_bio_PrivateKey(b, NULL, cmpclient_no_pass, NULL);
    BIO_free(b);
    return k;
}

X509 *cmpclient_load_cert(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x;

    if (b == NULL)
        return NULL;
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

STACK_OF(X509) *cmpclient_load_certs(const char *path, int optional)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b;
    X509 *x;

    if (sk == NULL)
        return NULL;
    if ((b = BIO_new_file(path, "r")) == NULL) {
        if (optional && errno == ENOENT) {
            ERR_clear_error();
            return sk;
        }
        sk_X509_free(sk);
        return NULL;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            goto err;
        }
    }
    /* PEM_R_NO_START_LINE at the end of the file is the normal stop. */
    if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    else if (ERR_peek_error() != 0)
        goto err;
    BIO_free(b);
    return sk;
 err:
    BIO_free(b);
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}
