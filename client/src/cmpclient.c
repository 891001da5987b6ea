/*
 * cmpclient object: configuration (server, timeouts, retries, trust),
 * error messages, logging and key generation. The transactions themselves
 * are in cmpclient_txn.c, result files in cmpclient_store.c.
 */
#include "cmpclient_local.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/http.h>

CMPCLIENT *cmpclient_new(void)
{
    CMPCLIENT *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->msg_timeout = 30;
    c->total_timeout = 120;
    c->max_attempts = 4;
    c->backoff_ms = 1000;
    c->backoff_max_ms = 16000;
    c->permit_root_in_ip = 1;
    return c;
}

void cmpclient_free(CMPCLIENT *c)
{
    if (c == NULL)
        return;
    free(c->host);
    free(c->path);
    free(c->store_dir);
    X509_free(c->root);
    X509_NAME_free(c->subject);
    free(c);
}

int cmpclient_set_server(CMPCLIENT *c, const char *url)
{
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL, *frag = NULL;
    char *scheme = NULL, *user = NULL;
    int portnum = 0, ret = 0;

    if (url == NULL
        || !OSSL_parse_url(url, &scheme, &user, &host, &port, &portnum,
                           &path, &query, &frag)) {
        cmpclient_seterr(c, "cannot parse server URL '%s'", url ? url : "");
        ERR_clear_error();
        goto end;
    }
    if (strcmp(scheme, "http") != 0) {
        cmpclient_seterr(c, "server URL '%s': only http:// is supported "
                         "(CMP messages are signed; put TLS in a proxy)", url);
        goto end;
    }
    free(c->host);
    free(c->path);
    c->host = strdup(host);
    c->path = strdup(path);
    c->port = portnum;
    ret = c->host != NULL && c->path != NULL;
 end:
    OPENSSL_free(scheme);
    OPENSSL_free(user);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    OPENSSL_free(query);
    OPENSSL_free(frag);
    return ret;
}

int cmpclient_set_timeouts(CMPCLIENT *c, int msg_timeout, int total_timeout)
{
    if (msg_timeout < 0 || total_timeout < 0)
        return 0;
    c->msg_timeout = msg_timeout;
    c->total_timeout = total_timeout;
    return 1;
}

int cmpclient_set_retries(CMPCLIENT *c, int max_attempts, int backoff_ms,
                          int backoff_max_ms)
{
    if (max_attempts < 1 || max_attempts > 100 || backoff_ms < 0
        || backoff_max_ms < backoff_ms)
        return 0;
    c->max_attempts = max_attempts;
    c->backoff_ms = backoff_ms;
    c->backoff_max_ms = backoff_max_ms;
    return 1;
}

int cmpclient_set1_operator_root(CMPCLIENT *c, X509 *root)
{
    if (root != NULL && !X509_up_ref(root))
        return 0;
    X509_free(c->root);
    c->root = root;
    return 1;
}

void cmpclient_set_permit_root_in_ip(CMPCLIENT *c, int permit)
{
    c->permit_root_in_ip = permit != 0;
}

int cmpclient_set1_subject(CMPCLIENT *c, const X509_NAME *subject)
{
    X509_NAME *dup = NULL;

    if (subject != NULL && (dup = X509_NAME_dup(subject)) == NULL)
        return 0;
    X509_NAME_free(c->subject);
    c->subject = dup;
    return 1;
}

int cmpclient_set1_store_dir(CMPCLIENT *c, const char *dir)
{
    char *dup = NULL;

    if (dir != NULL && (dup = strdup(dir)) == NULL)
        return 0;
    free(c->store_dir);
    c->store_dir = dup;
    return 1;
}

void cmpclient_set_log(CMPCLIENT *c, int verbosity, cmpclient_log_cb cb,
                       void *arg)
{
    c->verbosity = verbosity < 0 ? 0 : verbosity > 2 ? 2 : verbosity;
    c->log_cb = cb;
    c->log_arg = arg;
}

const char *cmpclient_get0_error(const CMPCLIENT *c)
{
    return c->err;
}

int cmpclient_get_failinfo(const CMPCLIENT *c)
{
    return c->failinfo;
}

int cmpclient_get_transactions(const CMPCLIENT *c)
{
    return c->transactions;
}

void cmpclient_seterr(CMPCLIENT *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

void cmpclient_seterr_ossl(CMPCLIENT *c)
{
    const char *data, *reason;
    unsigned long code;
    int flags;

    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        size_t used = strlen(c->err);

        reason = ERR_reason_error_string(code);
        if (used + 3 >= sizeof(c->err))
            continue;
        snprintf(c->err + used, sizeof(c->err) - used, "%s%s%s%s",
                 used > 0 ? "; " : "", reason != NULL ? reason : "error",
                 (flags & ERR_TXT_STRING) && *data != '\0' ? ": " : "",
                 (flags & ERR_TXT_STRING) ? data : "");
    }
}

void cmpclient_log(CMPCLIENT *c, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (level > c->verbosity)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (c->log_cb != NULL)
        c->log_cb(c->log_arg, level, line);
    else
        fprintf(stderr, "cmpclient: %s\n", line);
}

EVP_PKEY *cmpclient_keygen(const char *spec)
{
    const char *s = spec != NULL ? spec : "ec:P-256";

    if (strncmp(s, "ec:", 3) == 0) {
        const char *curve = s + 3;

        if (strcmp(curve, "P-256") == 0 || strcmp(curve, "P-384") == 0
            || strcmp(curve, "P-521") == 0
            || strcmp(curve, "prime256v1") == 0
            || strcmp(curve, "secp384r1") == 0
            || strcmp(curve, "secp521r1") == 0)
            return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
        return NULL;
    }
    if (strncmp(s, "rsa:", 4) == 0) {
        char *end;
        long bits = strtol(s + 4, &end, 10);

        if (*end != '\0' || bits < 2048 || bits > 8192)
            return NULL;
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    }
    if (strcmp(s, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (strcmp(s, "ed448") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    return NULL;
}

void cmpclient_result_clear(struct cmpclient_result *r)
{
    if (r == NULL)
        return;
    EVP_PKEY_free(r->key);
    X509_free(r->cert);
    sk_X509_pop_free(r->chain, X509_free);
    X509_free(r->root);
    memset(r, 0, sizeof(*r));
}
