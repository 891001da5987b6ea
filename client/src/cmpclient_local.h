/*
 * Internal declarations shared by the cmpclient sources: the client object,
 * error reporting, logging, and the staged installation of results.
 */
#ifndef CMPCLIENT_LOCAL_H
#define CMPCLIENT_LOCAL_H

#include "cmpclient.h"

#include <openssl/cmp.h>

#define CMPCLIENT_ERRLEN 512

struct cmpclient_st {
    char *host;             /* server host name or address */
    int port;               /* server port */
    char *path;             /* HTTP path, e.g. "/.well-known/cmp/p/3gpp" */
    int msg_timeout;        /* seconds per message, 0 = none */
    int total_timeout;      /* seconds per transaction, 0 = none */
    int max_attempts;       /* transfers per message on network failure */
    int backoff_ms;         /* first retry delay */
    int backoff_max_ms;     /* retry delay cap */
    X509 *root;             /* pre-provisioned operator root or NULL */
    int permit_root_in_ip;  /* 3GPP exception allowed */
    X509_NAME *subject;     /* requested subject for ir, or NULL */
    char *store_dir;        /* where results are installed, or NULL */
    int verbosity;          /* 0, 1, 2 */
    cmpclient_log_cb log_cb;
    void *log_arg;
    char err[CMPCLIENT_ERRLEN]; /* last error message */
    int failinfo;           /* failInfo bits of the last rejection */
    int transactions;       /* transactions started by the last operation */
};

/* Records a formatted error message in |c| (replacing the previous one). */
void cmpclient_seterr(CMPCLIENT *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the OpenSSL error queue (one line, cleared) to the message in |c|. */
void cmpclient_seterr_ossl(CMPCLIENT *c);
/* Logs one line at |level| (0 error, 1 info, 2 debug) if verbose enough. */
void cmpclient_log(CMPCLIENT *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A result prepared in a fresh generation directory but not yet visible. */
struct cmpclient_staged {
    char *dir;              /* store directory */
    char *gen;              /* generation directory name inside |dir| */
};

/* Writes |r| into a new hidden generation directory of |dir| (all files
 * fsynced). Returns 1 and fills |st|, or 0 with a message in |err| and
 * nothing left behind. */
int cmpclient_store_prepare(const char *dir, const struct cmpclient_result *r,
                            struct cmpclient_staged *st, char *err,
                            size_t errlen);
/* Makes the prepared generation the current one with one atomic rename and
 * removes the previous generation. Returns 1, or 0 with a message in |err|
 * (then the previous generation is still current). Frees |st|. */
int cmpclient_store_commit(struct cmpclient_staged *st, char *err,
                           size_t errlen);
/* Removes a prepared generation that will not be used and frees |st|;
 * harmless on an empty |st|. */
void cmpclient_store_abort(struct cmpclient_staged *st);

/* Sends |req| to the configured server and returns the decoded response,
 * or NULL: then |*connected| says whether a connection was made, and the
 * reason is in |err| or the OpenSSL error queue. */
OSSL_CMP_MSG *cmpclient_http_transfer(CMPCLIENT *c, const OSSL_CMP_MSG *req,
                                      int *connected, char *err, size_t errlen);

/* Test hook: makes the |n|-th following file write fail with ENOSPC
 * (0 disables). Used by unit tests only. */
void cmpclient_test_fail_write(int n);

#endif
