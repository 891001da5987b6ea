/*
 * The OCSP responder (RFC 6960, RFC 5019 profile): DER OCSPRequest in, DER
 * OCSPResponse out, status read from the store for the CAs it was given,
 * signed by the CA or a delegated OCSP signer. Bytes in, bytes out like
 * the CMP core: no I/O besides store reads.
 */
#ifndef CMPCA_OCSP_H
#define CMPCA_OCSP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/ca_signer.h"
#include "store/store.h"

/* Responder settings; ocsp_conf_init() sets the defaults named here. */
struct ocsp_conf {
    long next_update;          /* seconds from thisUpdate to nextUpdate in
                                * every SingleResponse; 0 = no nextUpdate
                                * (newer information is always available).
                                * Default 3600. */
    size_t max_request;        /* largest DER request accepted, default 4096;
                                * larger: malformedRequest */
    int max_certids;           /* most CertIDs in one request, default 8;
                                * more: malformedRequest (bounds the
                                * response size too) */
    size_t max_nonce;          /* longest nonce echoed, default 64 octets
                                * (RFC 8954 asks for 1..32); longer:
                                * malformedRequest */
    /* The pre-produced response cache (RFC 5019 2.1): a request with one
     * CertID and no nonce gets the response signed for the same request
     * bytes earlier, while it is younger than cache_refresh and the
     * status it states is current. Current: the store change token
     * (store_change_token()) is the one it was read under, or else the
     * certificate's row, read again, says the same. A request with a
     * nonce is always signed afresh. */
    int cache;                 /* 1 = on (default), 0 = off */
    long cache_refresh;        /* seconds after which a cached response is
                                * signed again; default 300, at most
                                * next_update when that is set */
    long cache_check;          /* 0 (default): read the change token for
                                * every request, so any change shows in the
                                * next answer; N: reuse a token for up to N
                                * seconds (changes may show N s late) */
    size_t cache_entries;      /* bound on cached responses, default
                                * 100000 */
    size_t cache_bytes;        /* bound on their memory, default 64 MiB */
};

/* Sets the defaults above. */
void ocsp_conf_init(struct ocsp_conf *c);

typedef struct ocsp_responder OCSP_RESPONDER;

/* What a response said, for the log and the metrics. */
enum ocsp_outcome {
    OCSP_OUT_GOOD = 0,         /* successful, every status good */
    OCSP_OUT_REVOKED,          /* successful, at least one revoked */
    OCSP_OUT_UNKNOWN,          /* successful, at least one unknown, none
                                * revoked */
    OCSP_OUT_MALFORMED,        /* malformedRequest */
    OCSP_OUT_UNAUTHORIZED,     /* no CertID names a CA we answer for */
    OCSP_OUT_TRYLATER,         /* store unavailable */
    OCSP_OUT_INTERNAL          /* internalError (signing failed, memory) */
};

/* Returns "good", "revoked", "unknown", "malformed", "unauthorized",
 * "tryLater" or "internal". */
const char *ocsp_outcome_str(enum ocsp_outcome o);

/* Creates an empty responder reading |store| (borrowed; must outlive it)
 * with the settings |c| (copied; NULL = defaults). NULL on allocation
 * failure. */
OCSP_RESPONDER *ocsp_responder_new(STORE *store, const struct ocsp_conf *c);
/* Frees |r| and the references it holds. NULL is harmless. */
void ocsp_responder_free(OCSP_RESPONDER *r);

/*
 * Adds CA |ca| (a reference to the loaded CA is not taken: |ca| is borrowed
 * and must outlive |r|). Requests naming it (issuerNameHash and
 * issuerKeyHash in SHA-1, SHA-256, SHA-384 or SHA-512) are answered from
 * the certificates the store holds for ca_get_id(ca). Signed by |signer|
 * with |signer_cert| (a delegated responder certificate issued by |ca|
 * with id-kp-OCSPSigning; it is included in the response) when both are
 * given (references taken), else by the CA key (ca_get0_signer(ca), which
 * must be loaded). Not thread-safe: add every CA before the first
 * ocsp_respond(). Returns 1, or 0 with a message in |err|.
 */
int ocsp_responder_add_ca(OCSP_RESPONDER *r, const CA *ca, X509 *signer_cert,
                          CA_SIGNER *signer, char *err, size_t errlen);

/* Number of CAs added. */
size_t ocsp_responder_num_cas(const OCSP_RESPONDER *r);

/*
 * Answers the DER OCSPRequest |req| (|len| bytes; NULL/0 and any length
 * are safe) at time |now|: a signed BasicOCSPResponse with one
 * SingleResponse per CertID (good, revoked with time and reason, or
 * unknown), the nonce echoed when sent, or an unsigned error response
 * (malformedRequest, unauthorized, tryLater, internalError). Sets *out
 * (OPENSSL_malloc'ed; OPENSSL_free it) and *outlen and returns the
 * outcome; *out is NULL only when even the error response could not be
 * allocated. Thread-safe.
 */
enum ocsp_outcome ocsp_respond(OCSP_RESPONDER *r, const unsigned char *req,
                               size_t len, time_t now, unsigned char **out,
                               size_t *outlen);

/* What ocsp_respond_ex() adds about a successful response. */
struct ocsp_respond_info {
    time_t this_update;        /* thisUpdate = producedAt */
    time_t next_update;        /* 0 = none */
    int cached;                /* 1 = served from the cache */
};

/* ocsp_respond(), and fills |info| (may be NULL) for a successful
 * response (zeroes otherwise). */
enum ocsp_outcome ocsp_respond_ex(OCSP_RESPONDER *r, const unsigned char *req,
                                  size_t len, time_t now, unsigned char **out,
                                  size_t *outlen,
                                  struct ocsp_respond_info *info);

/* The cache's counters (all 0 when it is off). */
struct ocsp_cache_counters {
    int enabled;
    uint64_t hits;             /* served, change token unchanged */
    uint64_t revalidated;      /* served after reading the row again */
    uint64_t misses;           /* cacheable, signed afresh (absent, due for
                                * refresh, or the status changed) */
    uint64_t bypassed;         /* not cacheable (nonce, several CertIDs) */
    uint64_t evictions;        /* pushed out by the bounds */
    size_t entries, bytes;
};
void ocsp_responder_cache_stats(OCSP_RESPONDER *r,
                                struct ocsp_cache_counters *st);

/*
 * The DER OCSPResponse carrying only the error status |status| (one of
 * OCSP_RESPONSE_STATUS_*, not SUCCESSFUL) into |buf|, which has at least
 * OCSP_ERROR_DER_LEN bytes. Returns the length.
 */
#define OCSP_ERROR_DER_LEN 5
size_t ocsp_error_der(int status, unsigned char *buf);

#endif
