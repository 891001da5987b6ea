/*
 * Revocation services published over HTTP: the OCSP responder (POST /ocsp,
 * GET /ocsp/<base64>), CRLs (GET /crl/<ca>.crl) and CA certificates
 * (GET /ca/<ca>.crt), as one resource handler for the HTTP layer; plus the
 * periodic CRL refresh and the metrics of all of it.
 */
#ifndef CMPCA_OCSP_PUB_H
#define CMPCA_OCSP_PUB_H

#include <stddef.h>
#include <time.h>

#include "http/http.h"
#include "ocsp/ocsp.h"
#include "store/store.h"

struct conf;
typedef struct ocsp_pub OCSP_PUB;

/*
 * Builds the services from the [ocsp] section of |conf| (optional; keys:
 * cas, next_update, max_age, max_request, max_certids, max_requests,
 * crl_max_age, cache, cache_refresh, cache_check, cache_entries,
 * cache_bytes) and loads, with their keys, the CAs the OCSP responder
 * answers for: [ocsp] cas (comma-separated names), by default every CA an
 * [alias] section names. A CA with a delegated OCSP signer ([ca NAME]
 * ocsp_signer_cert/ocsp_signer_key) has its responses signed by it.
 * Unknown keys or bad values: NULL with "file:line: ..." in |err|.
 * |store| is borrowed and must outlive the result.
 */
OCSP_PUB *ocsp_pub_new(const struct conf *conf, STORE *store, char *err,
                       size_t errlen);
void ocsp_pub_free(OCSP_PUB *p);

/* Returns [ocsp] max_requests: resource answers on one keep-alive
 * connection before it is closed (default 1000). */
unsigned ocsp_pub_max_requests(const OCSP_PUB *p);

/* Returns the responder (for tests and benchmarks). */
OCSP_RESPONDER *ocsp_pub_get0_responder(OCSP_PUB *p);

/*
 * The resource handler (http_resource_fn with |arg| an OCSP_PUB):
 *   POST /ocsp (Content-Type application/ocsp-request) and
 *   GET /ocsp/<base64 of the DER request, %-encoded> (RFC 5019):
 *       200 application/ocsp-response; a malformed request gets the
 *       malformedRequest response (413 for a body over the HTTP limit,
 *       415 for another Content-Type, with the same body);
 *   GET /crl/<ca>.crl: 200 application/pkix-crl (DER), ETag and
 *       Last-Modified (= thisUpdate); the first CRL of a CA we hold the key
 *       of is made on demand; 404 for an unknown CA or none yet;
 *   GET /ca/<ca>.crt: 200 application/pkix-cert (DER) of the CA
 *       certificate; 404 for an unknown CA.
 * HEAD is answered like GET; other methods get 405.
 */
void ocsp_pub_handle(void *arg, const struct http_resource_request *req,
                     struct http_resource_response *rsp);

/*
 * Issues a new CRL for every CA with a loaded key whose latest CRL is
 * missing or past half of its validity (so a CRL is always replaced well
 * before its nextUpdate). Call it periodically (the server does, every
 * sweep_interval). Returns the number issued, or -1 on a store error.
 */
int ocsp_pub_refresh_crls(OCSP_PUB *p, time_t now);

/*
 * Recounts the valid certificates by days to expiry for the gauge
 * cmpca_certificates_valid_expiring{within_days="7|30|90|365|+Inf"}
 * (cumulative; +Inf = every valid, unexpired certificate) and
 * cmpca_certificates_valid_expired (status valid, notAfter passed), unless
 * the last count is younger than |min_age| seconds. One indexed range
 * count per bucket (cost grows with the number of valid certificates, not
 * with the requests to /metrics, which only read the last counts).
 * Returns 1, 0 if skipped, -1 on a store error.
 */
int ocsp_pub_refresh_gauges(OCSP_PUB *p, time_t now, long min_age);

/* Appends the services' Prometheus text (cmpca_ocsp_responses_total
 * {outcome}, cmpca_crl_downloads_total, the expiry gauges) to |buf| (|cap| bytes); returns
 * the number of bytes written. */
size_t ocsp_pub_metrics(OCSP_PUB *p, char *buf, size_t cap);

#endif
