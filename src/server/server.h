/*
 * The CMP server core: turns one request (alias + DER bytes) into one
 * protected response (DER bytes + HTTP status). It authenticates, authorises,
 * keeps all transaction state in the store and issues through the CA engine.
 * It does no network I/O: the HTTP layer calls server_handle(). (An alias
 * in upstream mode, an RA in front of another CA, is the exception: it
 * posts the request on through src/client/upclient.h.)
 */
#ifndef CMPCA_SERVER_H
#define CMPCA_SERVER_H

#include <stddef.h>
#include <time.h>

#include "store/store.h"

struct conf;
typedef struct server SERVER;

/* Builds the server from the configuration: every [alias NAME] section is
 * loaded (its CA with keys, its profile, its trusted vendors). Returns the
 * server or NULL with "file:line: ..." or another message in |err|.
 * |store| is borrowed and must outlive the server. */
SERVER *server_new(const struct conf *conf, STORE *store, char *err,
                         size_t errlen);
void server_free(SERVER *srv);

struct vendor_crl;
/* Lets the server check vendor certificates of first enrollments against
 * their vendors' CRLs (src/ocsp/vendor_crl.h; |vc| is borrowed and must
 * outlive the server; NULL: no check). Call before serving. */
void server_set0_vendor_crl(SERVER *srv, struct vendor_crl *vc);

/* Returns 1 if |alias| is configured. Thread-safe. */
int server_has_alias(const SERVER *srv, const char *alias);
/* Returns the name of the alias that /.well-known/cmp maps to, or NULL. */
const char *server_default_alias(const SERVER *srv);

/* One request as handed over by the transport. */
struct server_request {
    const char *alias;              /* routed alias (must exist) */
    const unsigned char *der;       /* request body */
    size_t len;
    int reject_status;              /* 0, or 413/415 from the transport */
    const char *peer;               /* for the log line */
};

/* The answer: |der| is malloc'ed (free()), |http_status| per RFC 9811. */
struct server_response {
    unsigned char *der;
    size_t len;
    int http_status;
};

/* Handles one request. Always produces a response (a protected error when
 * anything fails, or an empty body with 500 if even that is impossible).
 * Thread-safe: any number of threads may call it at once. */
void server_handle(SERVER *srv, const struct server_request *req,
                      struct server_response *rsp);

/* Expires transactions whose certConf did not arrive in time: revokes
 * their certificates and returns devices to their previous state. Returns
 * the number expired, or -1 on a store error. Safe to run on several nodes
 * at once (conditional updates). */
int server_sweep(SERVER *srv, time_t now);

/* Reloads the vendor trust anchors from the store (after `cmpca vendor`
 * changes); done automatically every few seconds as well. Returns 1 or 0. */
int server_reload_vendors(SERVER *srv);

#endif
