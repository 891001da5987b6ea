/*
 * The OCSP response cache: pre-produced responses (RFC 5019 2.1) keyed by
 * the exact DER request that got them (one CertID, no nonce), each with
 * what the responder needs to decide whether it may still be served: the
 * status it states, the store change token it was read under and its
 * times. Bounded in entries and bytes, least recently used out first;
 * sharded, thread-safe. Policy (freshness, revalidation) stays in ocsp.c.
 */
#ifndef CMPCA_OCSP_CACHE_H
#define CMPCA_OCSP_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/store.h"

typedef struct ocsp_cache OCSP_CACHE;

/* What a cached response says and when it was made. */
struct ocsp_cache_meta {
    int ca;                          /* index of the CA in the responder */
    unsigned char serial[STORE_SERIAL_MAX];
    size_t serial_len;
    int status;                      /* V_OCSP_CERTSTATUS_* */
    int reason;                      /* -1 = none */
    int64_t revoked_at;
    int has_token;                   /* 0: store gave no change token */
    uint64_t token;                  /* store change token before the read */
    time_t this_update;              /* = producedAt */
    time_t next_update;              /* 0 = none in the response */
    time_t refresh_at;               /* re-sign from then on */
};

/* Counters and sizes. */
struct ocsp_cache_stats {
    size_t entries;
    size_t bytes;
    uint64_t evictions;              /* entries pushed out by the bounds */
};

/* A cache of at most |max_entries| entries and |max_bytes| bytes (entry
 * overhead included; both >= 1). NULL on allocation failure. */
OCSP_CACHE *ocsp_cache_new(size_t max_entries, size_t max_bytes);
/* NULL is harmless. */
void ocsp_cache_free(OCSP_CACHE *c);

/*
 * Looks up the request |key| (|klen| bytes). On a hit copies the metadata
 * into *meta and the DER response into a fresh OPENSSL_malloc'ed *der
 * (*derlen bytes), marks the entry recently used and returns 1; 0 on a
 * miss (or if the copy cannot be allocated).
 */
int ocsp_cache_get(OCSP_CACHE *c, const unsigned char *key, size_t klen,
                   struct ocsp_cache_meta *meta, unsigned char **der,
                   size_t *derlen);

/* Inserts or replaces the entry for |key| with |meta| and |der| (copied),
 * evicting the least recently used entries to stay within the bounds.
 * Returns 1, or 0 (no memory, or the entry alone exceeds the bounds). */
int ocsp_cache_put(OCSP_CACHE *c, const unsigned char *key, size_t klen,
                   const struct ocsp_cache_meta *meta,
                   const unsigned char *der, size_t derlen);

/* Records that the entry for |key| was found current under store change
 * token |token| (its status read again after that token was read). Only
 * if the entry is still the one |seen| describes (ocsp_cache_get gave
 * it): one put in the meantime may hold a status read under an older
 * token. No-op otherwise. */
void ocsp_cache_set_token(OCSP_CACHE *c, const unsigned char *key,
                          size_t klen, const struct ocsp_cache_meta *seen,
                          uint64_t token);

/* Removes the entry for |key| if any. */
void ocsp_cache_remove(OCSP_CACHE *c, const unsigned char *key, size_t klen);

/* Removes every entry. */
void ocsp_cache_clear(OCSP_CACHE *c);

void ocsp_cache_get_stats(OCSP_CACHE *c, struct ocsp_cache_stats *st);

#endif
