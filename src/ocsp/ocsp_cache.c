/*
 * The OCSP response cache behind ocsp_cache.h: OCSP_CACHE_SHARDS shards,
 * each a chained hash table (seeded FNV-1a over the request DER) with an
 * LRU list and its own mutex and share of the bounds.
 */
#include "ocsp/ocsp_cache.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define OCSP_CACHE_SHARDS 16
/* A shard's bucket array: a power of two, at most this many. */
#define OCSP_CACHE_MAX_BUCKETS (1u << 20)

struct ocsp_cache_ent {
    struct ocsp_cache_ent *chain;    /* next in the bucket */
    struct ocsp_cache_ent *prev, *next;  /* LRU list, head = newest */
    uint64_t hash;
    struct ocsp_cache_meta meta;
    size_t klen, derlen;
    unsigned char data[];            /* key, then DER */
};

struct ocsp_cache_shard {
    pthread_mutex_t mu;
    struct ocsp_cache_ent **buckets;
    size_t nbuckets;                 /* power of two */
    struct ocsp_cache_ent *head, *tail;
    size_t entries, bytes;
    size_t max_entries, max_bytes;
    uint64_t evictions;
};

struct ocsp_cache {
    uint64_t seed;
    struct ocsp_cache_shard shard[OCSP_CACHE_SHARDS];
};

static uint64_t ocsp_cache_hash(const OCSP_CACHE *c, const unsigned char *k,
                                size_t n)
{
    uint64_t h = 14695981039346656037ULL ^ c->seed;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= k[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* The shard of hash |h|: its top bits (the low ones pick the bucket). */
static struct ocsp_cache_shard *ocsp_cache_shard_of(OCSP_CACHE *c, uint64_t h)
{
    return &c->shard[(h >> 58) % OCSP_CACHE_SHARDS];
}

static size_t ocsp_cache_ent_size(size_t klen, size_t derlen)
{
    return sizeof(struct ocsp_cache_ent) + klen + derlen;
}

OCSP_CACHE *ocsp_cache_new(size_t max_entries, size_t max_bytes)
{
    OCSP_CACHE *c = calloc(1, sizeof(*c));
    size_t per_e, per_b, nb, i;

    if (c == NULL)
        return NULL;
    if (max_entries < 1)
        max_entries = 1;
    if (max_bytes < 1)
        max_bytes = 1;
    per_e = (max_entries + OCSP_CACHE_SHARDS - 1) / OCSP_CACHE_SHARDS;
    per_b = (max_bytes + OCSP_CACHE_SHARDS - 1) / OCSP_CACHE_SHARDS;
    for (nb = 16; nb < per_e && nb < OCSP_CACHE_MAX_BUCKETS; nb *= 2)
        ;
    if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1)
        c->seed = (uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL);
    for (i = 0; i < OCSP_CACHE_SHARDS; i++) {
        struct ocsp_cache_shard *s = &c->shard[i];

        pthread_mutex_init(&s->mu, NULL);
        s->max_entries = per_e;
        s->max_bytes = per_b;
        s->nbuckets = nb;
        if ((s->buckets = calloc(nb, sizeof(*s->buckets))) == NULL) {
            ocsp_cache_free(c);
            return NULL;
        }
    }
    return c;
}

/* Unlinks |e| from its bucket and the LRU list of |s| and frees it. */
static void ocsp_cache_drop(struct ocsp_cache_shard *s,
                            struct ocsp_cache_ent *e)
{
    struct ocsp_cache_ent **pp = &s->buckets[e->hash & (s->nbuckets - 1)];

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->chain;
    if (*pp == e)
        *pp = e->chain;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    s->entries--;
    s->bytes -= ocsp_cache_ent_size(e->klen, e->derlen);
    free(e);
}

static void ocsp_cache_shard_clear(struct ocsp_cache_shard *s)
{
    while (s->head != NULL)
        ocsp_cache_drop(s, s->head);
}

void ocsp_cache_free(OCSP_CACHE *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < OCSP_CACHE_SHARDS; i++) {
        if (c->shard[i].buckets != NULL)
            ocsp_cache_shard_clear(&c->shard[i]);
        free(c->shard[i].buckets);
        pthread_mutex_destroy(&c->shard[i].mu);
    }
    free(c);
}

/* The entry for |key| in |s| (locked) or NULL. */
static struct ocsp_cache_ent *ocsp_cache_find(struct ocsp_cache_shard *s,
                                              uint64_t h,
                                              const unsigned char *key,
                                              size_t klen)
{
    struct ocsp_cache_ent *e = s->buckets[h & (s->nbuckets - 1)];

    for (; e != NULL; e = e->chain)
        if (e->hash == h && e->klen == klen
            && memcmp(e->data, key, klen) == 0)
            return e;
    return NULL;
}

/* Moves |e| to the head of the LRU list of |s|. */
static void ocsp_cache_touch(struct ocsp_cache_shard *s,
                             struct ocsp_cache_ent *e)
{
    if (s->head == e)
        return;
    e->prev->next = e->next;            /* not the head: prev exists */
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = NULL;
    e->next = s->head;
    s->head->prev = e;
    s->head = e;
}

int ocsp_cache_get(OCSP_CACHE *c, const unsigned char *key, size_t klen,
                   struct ocsp_cache_meta *meta, unsigned char **der,
                   size_t *derlen)
{
    uint64_t h = ocsp_cache_hash(c, key, klen);
    struct ocsp_cache_shard *s = ocsp_cache_shard_of(c, h);
    struct ocsp_cache_ent *e;
    int hit = 0;

    *der = NULL;
    *derlen = 0;
    pthread_mutex_lock(&s->mu);
    if ((e = ocsp_cache_find(s, h, key, klen)) != NULL
        && (*der = OPENSSL_malloc(e->derlen)) != NULL) {
        memcpy(*der, e->data + e->klen, e->derlen);
        *derlen = e->derlen;
        *meta = e->meta;
        ocsp_cache_touch(s, e);
        hit = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

int ocsp_cache_put(OCSP_CACHE *c, const unsigned char *key, size_t klen,
                   const struct ocsp_cache_meta *meta,
                   const unsigned char *der, size_t derlen)
{
    uint64_t h = ocsp_cache_hash(c, key, klen);
    struct ocsp_cache_shard *s = ocsp_cache_shard_of(c, h);
    size_t sz = ocsp_cache_ent_size(klen, derlen);
    struct ocsp_cache_ent *e, *old, **b;

    if (klen == 0 || sz > s->max_bytes || (e = malloc(sz)) == NULL)
        return 0;
    e->hash = h;
    e->meta = *meta;
    e->klen = klen;
    e->derlen = derlen;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, der, derlen);
    pthread_mutex_lock(&s->mu);
    if ((old = ocsp_cache_find(s, h, key, klen)) != NULL)
        ocsp_cache_drop(s, old);
    while (s->tail != NULL && (s->entries + 1 > s->max_entries
                               || s->bytes + sz > s->max_bytes)) {
        ocsp_cache_drop(s, s->tail);
        s->evictions++;
    }
    b = &s->buckets[h & (s->nbuckets - 1)];
    e->chain = *b;
    *b = e;
    e->prev = NULL;
    e->next = s->head;
    if (s->head != NULL)
        s->head->prev = e;
    else
        s->tail = e;
    s->head = e;
    s->entries++;
    s->bytes += sz;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

void ocsp_cache_set_token(OCSP_CACHE *c, const unsigned char *key,
                          size_t klen, const struct ocsp_cache_meta *seen,
                          uint64_t token)
{
    uint64_t h = ocsp_cache_hash(c, key, klen);
    struct ocsp_cache_shard *s = ocsp_cache_shard_of(c, h);
    struct ocsp_cache_ent *e;

    pthread_mutex_lock(&s->mu);
    if ((e = ocsp_cache_find(s, h, key, klen)) != NULL
        && e->meta.this_update == seen->this_update
        && e->meta.status == seen->status
        && e->meta.has_token == seen->has_token
        && e->meta.token == seen->token) {
        e->meta.token = token;
        e->meta.has_token = 1;
    }
    pthread_mutex_unlock(&s->mu);
}

void ocsp_cache_remove(OCSP_CACHE *c, const unsigned char *key, size_t klen)
{
    uint64_t h = ocsp_cache_hash(c, key, klen);
    struct ocsp_cache_shard *s = ocsp_cache_shard_of(c, h);
    struct ocsp_cache_ent *e;

    pthread_mutex_lock(&s->mu);
    if ((e = ocsp_cache_find(s, h, key, klen)) != NULL)
        ocsp_cache_drop(s, e);
    pthread_mutex_unlock(&s->mu);
}

void ocsp_cache_clear(OCSP_CACHE *c)
{
    size_t i;

    for (i = 0; i < OCSP_CACHE_SHARDS; i++) {
        pthread_mutex_lock(&c->shard[i].mu);
        ocsp_cache_shard_clear(&c->shard[i]);
        pthread_mutex_unlock(&c->shard[i].mu);
    }
}

void ocsp_cache_get_stats(OCSP_CACHE *c, struct ocsp_cache_stats *st)
{
    size_t i;

    memset(st, 0, sizeof(*st));
    for (i = 0; i < OCSP_CACHE_SHARDS; i++) {
        pthread_mutex_lock(&c->shard[i].mu);
        st->entries += c->shard[i].entries;
        st->bytes += c->shard[i].bytes;
        st->evictions += c->shard[i].evictions;
        pthread_mutex_unlock(&c->shard[i].mu);
    }
}
