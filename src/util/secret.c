/*
 * Secret specs: passphrases and PINs are read from a file, an environment
 * variable or the terminal, never taken from the command line.
 */
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void secret_wipe(void *buf, size_t len)
{
    if (buf != NULL && len > 0)
        OPENSSL_cleanse(buf, len);
}

int secret_file_read(const char *path, size_t max, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), saved;
    struct stat sb;
    char *b = NULL;
    size_t n = 0;
    ssize_t r;

    *buf = NULL;
    *len = 0;
    if (fd < 0)
        return 0;
    if (fstat(fd, &sb) != 0)
        goto fail;
    /* a pipe (file:/dev/stdin) is bounded by the reads below */
    if (max > SIZE_MAX - 2
        || (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max)) {
        errno = EFBIG;
        goto fail;
    }
    /* one byte more than |max| tells a file that grew meanwhile */
    if ((b = malloc(max + 2)) == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    while (n <= max) {
        r = read(fd, b + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        errno = EFBIG;
        goto fail;
    }
    b[n] = '\0';
    close(fd);
    *buf = b;
    *len = n;
    return 1;
 fail:
    saved = errno;
    secret_free(b, n);
    close(fd);
    errno = saved;
    return 0;
}

void secret_free(char *buf, size_t len)
{
    if (buf != NULL) {
        secret_wipe(buf, len);
        free(buf);
    }
}

int secret_spec_valid(const char *spec)
{
    if (spec == NULL)
        return 0;
    if (strncmp(spec, "file:", 5) == 0)
        return spec[5] != '\0';
    if (strncmp(spec, "env:", 4) == 0)
        return spec[4] != '\0';
    return strcmp(spec, "prompt") == 0;
}

/* Removes trailing CR/LF; returns the new length. */
static size_t secret_chomp(char *buf)
{
    size_t n = strlen(buf);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return n;
}

/* Reads the first line of |path| into |buf|. Returns 1 or 0. */
/* Largest passphrase file read (its first line is the secret). */
#define SECRET_FILE_MAX 65536

static int secret_from_file(const char *path, const char *what, char *buf,
                            size_t buflen, char *err, size_t errlen)
{
    char *data = NULL, *nl;
    size_t len = 0, line;
    int ret = 0;

    if (!secret_file_read(path, SECRET_FILE_MAX, &data, &len)) {
        snprintf(err, errlen, "cannot read %s from %s: %s", what, path,
                 errno == EFBIG ? "file too large" : strerror(errno));
        return 0;
    }
    if (len == 0) {
        snprintf(err, errlen, "%s file %s is empty", what, path);
        goto end;
    }
    /* the first line, its newline kept (the caller strips CR/LF) */
    nl = memchr(data, '\n', len);
    line = nl != NULL ? (size_t)(nl - data) + 1 : len;
    if (line >= buflen) {
        snprintf(err, errlen, "%s in %s is too long", what, path);
        goto end;
    }
    memcpy(buf, data, line);
    buf[line] = '\0';
    ret = 1;
 end:
    secret_free(data, len);
    return ret;
}

/* Asks on the terminal with echo off. Returns 1 or 0. */
static int secret_from_tty(const char *prompt, char *buf, size_t buflen,
                           char *err, size_t errlen)
{
    struct termios old, noecho;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    FILE *fp = NULL;
    int restore = 0, ret = 0;

    if (fd < 0) {
        snprintf(err, errlen, "cannot prompt: no terminal (%s)",
                 strerror(errno));
        return 0;
    }
    fp = fdopen(fd, "r+");
    if (fp == NULL) {
        close(fd);
        snprintf(err, errlen, "cannot prompt: %s", strerror(errno));
        return 0;
    }
    fprintf(fp, "%s: ", prompt);
    fflush(fp);
    if (tcgetattr(fd, &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        noecho.c_lflag |= ECHONL;
        if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
            restore = 1;
    }
    if (fgets(buf, (int)buflen, fp) == NULL) {
        snprintf(err, errlen, "no input at the prompt");
        goto end;
    }
    /* as file: and env: do, refuse rather than cut a secret too long */
    if (strchr(buf, '\n') == NULL && !feof(fp)) {
        secret_wipe(buf, buflen);
        snprintf(err, errlen, "the secret is longer than %zu characters",
                 buflen - 2);
        goto end;
    }
    ret = 1;
 end:
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    fclose(fp);
    return ret;
}

/* Names of the environment variables secret_read() took secrets from,
 * for secret_env_wipe_read(). */
#define SECRET_ENV_MAX 64
static char *secret_env_names[SECRET_ENV_MAX];
static size_t secret_env_n;
static pthread_mutex_t secret_env_lock = PTHREAD_MUTEX_INITIALIZER;

/* Remembers |name| for secret_env_wipe_read(). Returns 1, or 0 if the list
 * is full or out of memory (the secret is then refused). */
static int secret_env_note(const char *name)
{
    size_t i;
    int ok = 0;

    pthread_mutex_lock(&secret_env_lock);
    for (i = 0; i < secret_env_n; i++)
        if (strcmp(secret_env_names[i], name) == 0)
            break;
    if (i < secret_env_n)
        ok = 1;
    else if (secret_env_n < SECRET_ENV_MAX
             && (secret_env_names[secret_env_n] = strdup(name)) != NULL) {
        secret_env_n++;
        ok = 1;
    }
    pthread_mutex_unlock(&secret_env_lock);
    return ok;
}

int secret_env_wipe(const char *name)
{
    size_t nl = strlen(name), vl;
    char *v = getenv(name), *kv;
    int whole;

    if (v == NULL)
        return 0;
    /* "NAME=value" is overwritten where it lives (the initial environment
     * block, which /proc/PID/environ shows, or setenv's copy, which glibc
     * never frees) once it is out of environ */
    vl = strlen(v);
    kv = v - nl - 1;
    whole = memcmp(kv, name, nl) == 0 && kv[nl] == '=';
    (void)unsetenv(name);
    if (whole)
        secret_wipe(kv, nl + 1 + vl);
    else
        secret_wipe(v, vl);
    return 1;
}

size_t secret_env_wipe_read(void)
{
    size_t i, n = 0;

    pthread_mutex_lock(&secret_env_lock);
    for (i = 0; i < secret_env_n; i++) {
        n += (size_t)secret_env_wipe(secret_env_names[i]);
        free(secret_env_names[i]);
        secret_env_names[i] = NULL;
    }
    secret_env_n = 0;
    pthread_mutex_unlock(&secret_env_lock);
    return n;
}

int secret_read(const char *spec, const char *what, char *buf, size_t buflen,
                char *err, size_t errlen)
{
    const char *v;
    char prompt[256];
    int ok = 0;

    if (buf == NULL || buflen < 2)
        return 0;
    buf[0] = '\0';
    if (what == NULL)
        what = "passphrase";
    if (!secret_spec_valid(spec)) {
        snprintf(err, errlen,
                 "bad secret spec for %s (use file:PATH, env:VAR or prompt)",
                 what);
        return 0;
    }
    if (strncmp(spec, "file:", 5) == 0) {
        ok = secret_from_file(spec + 5, what, buf, buflen, err, errlen);
    } else if (strncmp(spec, "env:", 4) == 0) {
        v = getenv(spec + 4);
        if (v == NULL) {
            snprintf(err, errlen, "%s: environment variable %s is not set",
                     what, spec + 4);
        } else if (strlen(v) >= buflen || strlen(v) > SECRET_MAX) {
            snprintf(err, errlen, "%s in %s is too long", what, spec + 4);
        } else if (!secret_env_note(spec + 4)) {
            snprintf(err, errlen, "%s: too many env: secrets", what);
        } else {
            memcpy(buf, v, strlen(v) + 1);
            ok = 1;
        }
    } else {
        snprintf(prompt, sizeof(prompt), "Enter %s", what);
        ok = secret_from_tty(prompt, buf, buflen, err, errlen);
    }
    if (ok && secret_chomp(buf) == 0) {
        snprintf(err, errlen, "%s is empty", what);
        ok = 0;
    }
    if (!ok)
        secret_wipe(buf, buflen);
    return ok;
}

int secret_read_new(const char *spec, const char *what, char *buf,
                    size_t buflen, char *err, size_t errlen)
{
    char again[SECRET_MAX + 1];
    char prompt[256];
    int ok;

    if (!secret_read(spec, what, buf, buflen, err, errlen))
        return 0;
    if (strcmp(spec, "prompt") != 0)
        return 1;
    snprintf(prompt, sizeof(prompt), "Verify %s", what != NULL ? what : "passphrase");
    ok = secret_from_tty(prompt, again, sizeof(again), err, errlen);
    if (ok) {
        secret_chomp(again);
        if (strcmp(again, buf) != 0) {
            snprintf(err, errlen, "the two entries do not match");
            ok = 0;
        }
    }
    secret_wipe(again, sizeof(again));
    if (!ok)
        secret_wipe(buf, buflen);
    return ok;
}
