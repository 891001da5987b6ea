/*
 * Secret specs: passphrases and PINs are read from a file, an environment
 * variable or the terminal, never taken from the command line.
 */
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

void secret_wipe(void *buf, size_t len)
{
    if (buf != NULL && len > 0)
        OPENSSL_cleanse(buf, len);
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
static int secret_from_file(const char *path, const char *what, char *buf,
                            size_t buflen, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    int ret = 0;

    if (fp == NULL) {
        snprintf(err, errlen, "cannot read %s from %s: %s", what, path,
                 strerror(errno));
        return 0;
    }
    if (fgets(buf, (int)buflen, fp) == NULL) {
        snprintf(err, errlen, "%s file %s is empty", what, path);
        goto end;
    }
    if (strchr(buf, '\n') == NULL && !feof(fp) && fgetc(fp) != EOF) {
        snprintf(err, errlen, "%s in %s is too long", what, path);
        goto end;
    }
    ret = 1;
 end:
    fclose(fp);
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
