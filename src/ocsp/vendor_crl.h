/*
 * Revocation of vendor (factory) certificates: per vendor, the CRLs of its
 * issuing CAs, imported (`cmpca vendor crl import`) or fetched with libcurl
 * from the distribution point and kept until their nextUpdate, and the
 * check an initial enrollment makes, with a hard- or soft-fail policy for
 * a missing or stale CRL ([vendor NAME] crl = off | soft | hard).
 */
#ifndef CMPCA_VENDOR_CRL_H
#define CMPCA_VENDOR_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>

#include "store/store.h"

struct conf;
typedef struct vendor_crl VENDOR_CRL;

/* Per-vendor policy for a missing or stale CRL. */
enum vendor_crl_policy {
    VENDOR_CRL_OFF = 0,        /* no revocation check (default) */
    VENDOR_CRL_SOFT,           /* accept, log and count */
    VENDOR_CRL_HARD            /* refuse */
};

/* Outcome of vendor_crl_check(). */
enum vendor_rev_rc {
    VENDOR_REV_GOOD = 0,       /* not listed on a current CRL of its issuer,
                                * or the vendor's policy is off: accept */
    VENDOR_REV_REVOKED,        /* listed: refuse (signerNotTrusted) */
    VENDOR_REV_UNCHECKED,      /* no current CRL, soft-fail: accept (logged,
                                * counted in /metrics) */
    VENDOR_REV_NO_CRL,         /* no current CRL, hard-fail: refuse
                                * (signerNotTrusted) */
    VENDOR_REV_ERROR           /* store unavailable: refuse (systemUnavail) */
};

/* Returns "good", "revoked", "unchecked", "no_crl" or "error". */
const char *vendor_rev_rc_str(enum vendor_rev_rc rc);

/*
 * Reads the [vendor NAME] sections of |conf| (keys: crl = off|soft|hard,
 * crl_fetch = yes|no (default yes), crl_url = http://... (default: the
 * vendor certificate's CRL distribution point), crl_timeout = DURATION
 * (default 5s), crl_max_size = SIZE (default 1M)) over |store| (borrowed).
 * Returns NULL with "file:line: ..." in |err| on a bad value or unknown
 * key.
 */
VENDOR_CRL *vendor_crl_new(const struct conf *conf, STORE *store, char *err,
                           size_t errlen);
void vendor_crl_free(VENDOR_CRL *vc);

/*
 * Checks the vendor certificate |vendor_cert| (already validated up to a CA
 * of vendor |vendor_id|) against the CRL of the vendor CA that issued it,
 * at time |now|. A CRL is current while now < nextUpdate; when none is, it
 * is fetched first (crl_url, or the certificate's first http CRL
 * distribution point; at most one attempt per issuer and minute; the CRL
 * must be signed by that issuer) and stored. The vendor's records and
 * CRLs are re-read from the store at most every 30 s, so imports by the
 * CLI are seen. Thread-safe.
 */
enum vendor_rev_rc vendor_crl_check(VENDOR_CRL *vc, X509 *vendor_cert,
                                    int64_t vendor_id, time_t now);

/*
 * Verifies the CRL |der| (|len| bytes, DER or PEM) against the CA
 * certificates of vendor |v| (issuer name and signature) and stores it in
 * the write transaction |tx| with |source| (e.g. "import:FILE"). Returns
 * 1, or 0 with a message in |err|.
 */
int vendor_crl_import(STORE_TX *tx, const struct store_vendor *v,
                      const unsigned char *der, size_t len,
                      const char *source, char *err, size_t errlen);

/* Fetches |url| (http or https) with libcurl, at most |max| bytes within
 * |timeout| seconds, into a malloc'ed buffer. Returns 1, or 0 with a
 * message in |err|. */
int vendor_crl_fetch(const char *url, long timeout, size_t max,
                     unsigned char **out, size_t *outlen, char *err,
                     size_t errlen);

/* Appends cmpca_vendor_crl_checks_total{result} and
 * cmpca_vendor_crl_fetches_total{result} to |buf|; returns the bytes
 * written. */
size_t vendor_crl_metrics(VENDOR_CRL *vc, char *buf, size_t cap);

#endif
