/*
 * The audit trail's hash chain, shared by every backend: the canonical
 * encoding of a row, appending inside the caller's write transaction, and
 * verifying the whole chain.
 */
#include "store/store_int.h"

#include "util/log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Feeds u64be(v) to |md|. */
static int store_audit_put_u64(EVP_MD_CTX *md, uint64_t v)
{
    unsigned char b[8];
    int i;

    for (i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return EVP_DigestUpdate(md, b, sizeof(b));
}

/* Feeds str(s) = u32be(len) || s, or 0xFFFFFFFF for NULL. */
static int store_audit_put_str(EVP_MD_CTX *md, const char *s)
{
    unsigned char b[4];
    size_t len = s != NULL ? strlen(s) : 0;
    uint32_t l = s != NULL ? (uint32_t)len : 0xffffffffu;

    if (len >= 0xffffffffu)
        return 0;
    b[0] = (unsigned char)(l >> 24);
    b[1] = (unsigned char)(l >> 16);
    b[2] = (unsigned char)(l >> 8);
    b[3] = (unsigned char)l;
    return EVP_DigestUpdate(md, b, 4)
        && (s == NULL || EVP_DigestUpdate(md, s, len));
}

/* Computes the hash of |row| chained to |prev|; returns 1 on success. */
static int store_audit_hash(const unsigned char prev[STORE_SHA256_LEN],
                            const struct store_audit_row *row,
                            unsigned char out[STORE_SHA256_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = 0;

    if (md == NULL)
        goto end;
    if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(md, prev, STORE_SHA256_LEN)
        || !store_audit_put_u64(md, (uint64_t)row->seq)
        || !store_audit_put_u64(md, (uint64_t)row->time)
        || !store_audit_put_str(md, row->actor)
        || !store_audit_put_str(md, row->action)
        || !store_audit_put_str(md, row->object)
        || !store_audit_put_str(md, row->details)
        || !EVP_DigestFinal_ex(md, out, &n) || n != STORE_SHA256_LEN)
        goto end;
    ok = 1;
 end:
    EVP_MD_CTX_free(md);
    return ok;
}

enum store_rc store_audit_append(STORE_TX *tx, const char *actor,
                                 const char *action, const char *object,
                                 const char *details_json)
{
    struct store_audit_row row;
    unsigned char prev[STORE_SHA256_LEN];
    int64_t seq = 0;
    enum store_rc rc;

    if (!tx->write)
        return store_tx_fail(tx, STORE_ERROR,
                             "audit append in a read-only transaction");
    if (actor == NULL || action == NULL)
        return store_tx_fail(tx, STORE_ERROR, "audit: actor/action missing");
    /* Read the head inside the write transaction: writers are serialised,
     * so two processes can never chain onto the same predecessor. */
    rc = tx->st->ops->audit_head(tx, &seq, prev);
    if (rc != STORE_OK)
        return rc;
    memset(&row, 0, sizeof(row));
    row.seq = seq + 1;
    row.time = (int64_t)time(NULL);
    row.actor = (char *)actor;
    row.action = (char *)action;
    row.object = (char *)object;
    row.details = (char *)details_json;
    if (!store_audit_hash(prev, &row, row.hash))
        return store_tx_fail(tx, STORE_ERROR, "audit: hash failed");
    return tx->st->ops->audit_insert(tx, &row);
}

struct store_audit_walk {
    unsigned char prev[STORE_SHA256_LEN];
    int64_t expect;          /* next seq expected */
    int64_t bad;             /* first bad seq, 0 while intact */
    char why[200];
    int failed;              /* hash computation failed */
    int stopped;             /* the caller's callback stopped the walk */
    const struct store_audit_anchor *anchors;
    size_t nanchors, next_anchor, bad_anchor, matched;
    store_audit_row_fn cb;
    void *arg;
};

/* Checks one row against the running chain and the next anchor; stops at
 * the first bad one. */
static int store_audit_walk_row(void *arg, const struct store_audit_row *row)
{
    struct store_audit_walk *w = arg;
    const struct store_audit_anchor *a;
    unsigned char h[STORE_SHA256_LEN];

    if (row->seq != w->expect) {
        w->bad = w->expect;
        snprintf(w->why, sizeof(w->why),
                 "row %lld missing or out of order (found %lld)",
                 (long long)w->expect, (long long)row->seq);
        return 0;
    }
    if (!store_audit_hash(w->prev, row, h)) {
        w->failed = 1;
        return 0;
    }
    if (memcmp(h, row->hash, STORE_SHA256_LEN) != 0) {
        w->bad = row->seq;
        snprintf(w->why, sizeof(w->why),
                 "row %lld does not match its hash (modified, or a "
                 "predecessor was replaced)", (long long)row->seq);
        return 0;
    }
    while (w->next_anchor < w->nanchors
           && (a = &w->anchors[w->next_anchor])->seq == row->seq) {
        if (memcmp(a->hash, h, STORE_SHA256_LEN) != 0) {
            w->bad = row->seq;
            w->bad_anchor = w->next_anchor + 1;
            snprintf(w->why, sizeof(w->why),
                     "row %lld differs from the checkpoint of seq %lld: the "
                     "chain up to it was rewritten (rows changed, inserted "
                     "or removed and rehashed)", (long long)row->seq,
                     (long long)a->seq);
            return 0;
        }
        w->matched++;
        w->next_anchor++;
    }
    memcpy(w->prev, h, STORE_SHA256_LEN);
    w->expect++;
    if (w->cb != NULL && !w->cb(w->arg, row)) {
        w->stopped = 1;
        return 0;
    }
    return 1;
}

enum store_audit_verdict store_audit_walk(STORE_TX *tx,
                                          const struct store_audit_anchor *anchors,
                                          size_t nanchors,
                                          store_audit_row_fn cb, void *arg,
                                          struct store_audit_walk_result *res,
                                          char *err, size_t errlen)
{
    struct store_audit_walk w;
    unsigned char head_hash[STORE_SHA256_LEN];
    int64_t head_seq = 0, last;
    enum store_rc rc;
    size_t i;

    memset(res, 0, sizeof(*res));
    memset(&w, 0, sizeof(w));
    w.expect = 1;
    w.anchors = anchors;
    w.nanchors = nanchors;
    w.cb = cb;
    w.arg = arg;
    for (i = 0; i < nanchors; i++)
        if (anchors[i].seq < 1 || (i > 0 && anchors[i].seq < anchors[i - 1].seq)) {
            snprintf(err, errlen, "checkpoints must have seq >= 1 and be "
                     "sorted by seq");
            return STORE_AUDIT_ERROR;
        }
    rc = tx->st->ops->audit_foreach(tx, store_audit_walk_row, &w);
    res->rows = w.expect - 1;
    res->last_seq = w.expect - 1;
    memcpy(res->last_hash, w.prev, STORE_SHA256_LEN);
    res->anchors_matched = w.matched;
    if (w.stopped) {
        snprintf(err, errlen, "audit walk stopped at row %lld",
                 (long long)w.expect - 1);
        return STORE_AUDIT_ERROR;
    }
    if (w.failed || (rc != STORE_OK && w.bad == 0)) {
        snprintf(err, errlen, "audit walk failed: %s", store_tx_errmsg(tx));
        return STORE_AUDIT_ERROR;
    }
    if (w.bad != 0) {
        res->bad_seq = w.bad;
        res->bad_anchor = w.bad_anchor;
        snprintf(err, errlen, "%s", w.why);
        return STORE_AUDIT_BROKEN;
    }
    last = w.expect - 1;
    if (w.next_anchor < nanchors) {
        res->bad_seq = last + 1;
        res->bad_anchor = w.next_anchor + 1;
        snprintf(err, errlen, "the chain ends at seq %lld but a checkpoint "
                 "covers seq %lld: rows were removed (truncated)",
                 (long long)last, (long long)anchors[w.next_anchor].seq);
        return STORE_AUDIT_BROKEN;
    }
    if ((rc = tx->st->ops->audit_head(tx, &head_seq, head_hash)) != STORE_OK) {
        snprintf(err, errlen, "cannot read the audit head: %s",
                 store_tx_errmsg(tx));
        return STORE_AUDIT_ERROR;
    }
    if (head_seq != last
        || memcmp(head_hash, w.prev, STORE_SHA256_LEN) != 0) {
        res->bad_seq = w.expect;
        snprintf(err, errlen,
                 "audit head says %lld rows, chain has %lld (rows removed "
                 "at the end, or the head was altered)",
                 (long long)head_seq, (long long)last);
        return STORE_AUDIT_BROKEN;
    }
    snprintf(err, errlen, "%lld rows verified", (long long)last);
    return STORE_AUDIT_INTACT;
}

int store_audit_verify(STORE *st, int64_t *bad_seq, char *err, size_t errlen)
{
    struct store_audit_walk_result res;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    int ok;

    *bad_seq = 0;
    if ((rc = store_begin_read(st, &tx)) != STORE_OK) {
        snprintf(err, errlen, "cannot read the store: %s", store_rc_str(rc));
        return 0;
    }
    ok = store_audit_walk(tx, NULL, 0, NULL, NULL, &res, err, errlen)
        == STORE_AUDIT_INTACT;
    *bad_seq = res.bad_seq;
    store_rollback(tx);
    return ok;
}
