/*
 * Reading a passphrase or PIN from a "secret spec": "file:PATH" (first line),
 * "env:VAR" or "prompt" (the terminal, echo off). Secrets never come from argv.
 */
#ifndef CMPCA_UTIL_SECRET_H
#define CMPCA_UTIL_SECRET_H

#include <stddef.h>

/* Longest secret accepted (bytes, without the terminating NUL). */
#define SECRET_MAX 1023

/* Returns 1 if |spec| has a recognised form ("file:", "env:", "prompt"). */
int secret_spec_valid(const char *spec);

/* Reads the secret named by |spec| into |buf| (NUL-terminated, trailing
 * CR/LF removed). |what| names the secret in the prompt and in messages
 * (e.g. "passphrase for CA root"). Returns 1, or 0 with a reason in |err|
 * (buf is wiped on failure). An empty secret is an error. */
int secret_read(const char *spec, const char *what, char *buf, size_t buflen,
                char *err, size_t errlen);

/* Like secret_read() but for "prompt" asks twice and requires a match (for
 * creating a new key). Other specs behave as secret_read(). */
int secret_read_new(const char *spec, const char *what, char *buf,
                    size_t buflen, char *err, size_t errlen);

/* Overwrites |len| bytes of |buf| with zeros in a way the compiler keeps. */
void secret_wipe(void *buf, size_t len);

/* Reads the file |path| (at most |max| bytes; a pipe too) into a new
 * NUL-terminated buffer *buf of *len bytes with read(2), so that no stdio
 * buffer keeps a copy of a key or passphrase. Free it with secret_free().
 * Returns 1, or 0 with errno set (ENOENT, EACCES, EISDIR, ..., EFBIG when
 * larger than |max|). */
int secret_file_read(const char *path, size_t max, char **buf, size_t *len);

/* Removes environment variable |name| and overwrites "NAME=value" where
 * it lived (so /proc/PID/environ no longer shows it). Returns 1 if it was
 * set. Not thread-safe with respect to other environment changes. */
int secret_env_wipe(const char *name);
/* Overwrites the values of the environment variables that secret_read()
 * took "env:" secrets from and removes them from the environment (also from
 * /proc/PID/environ), once every secret is read: `cmpca serve` calls it
 * after start-up. A variable may serve several secrets until then. Returns
 * the number of variables wiped. */
size_t secret_env_wipe_read(void);
/* Wipes and frees a buffer from secret_file_read() (NULL harmless). */
void secret_free(char *buf, size_t len);

#endif
