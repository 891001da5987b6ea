/*
 * Unit tests of the OCSP response cache (ocsp_cache.h) and its use by the
 * responder: hit and miss, nonce bypass, a revocation through the same
 * STORE and through another connection to the database (as by another
 * process) shown at once, revalidation after an unrelated change, refresh
 * after cache_refresh, the cache_check bound, and the entry and byte
 * bounds with LRU eviction; plus store_change_token itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "ca/ca_profile.h"
#include "conf/conf.h"
#include "ocsp/ocsp.h"
#include "ocsp/ocsp_cache.h"
#include "ocsp/ocsp_pub.h"
#include "store/store.h"
#include "../lib/testutil.h"

#include <openssl/ocsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NLEAF 4

static char *tmpdir;
static char dbpath[512];
static STORE *st;
static CA *ca;
static X509 *leaf[NLEAF];
static int64_t leaf_id[NLEAF];

static const char *no_vars(void *arg, const char *name)
{
    return "x";
}

static int setup(void **state)
{
    struct store_conf sc;
    STORE_TX *tx = NULL;
    EVP_PKEY *k = NULL, *dk = NULL;
    X509_NAME *n = NULL;
    X509 *c;
    CA_SIGNER *s;
    CA_PROFILE *p = NULL;
    struct conf *pc = NULL;
    struct ca_issue_req req = { 0 };
    char err[512], kpath[600];
    int i;

    tmpdir = testutil_mkdtemp("test_ocsp_cache");
    snprintf(dbpath, sizeof(dbpath), "%s/c.db", tmpdir);
    snprintf(kpath, sizeof(kpath), "%s/ca.key", tmpdir);
    store_conf_init(&sc);
    sc.path = dbpath;
    sc.synchronous_full = 0;
    if (store_open(&sc, &st, err, sizeof(err)) != STORE_OK
        || !ca_key_generate("ec:P-256", &k, err, sizeof(err))
        || !ca_key_write(kpath, k, NULL, err, sizeof(err))
        || (s = ca_signer_new_pkey(k, NULL)) == NULL
        || !ca_name_parse("/O=Test/CN=OCSP Cache CA", &n, err, sizeof(err))
        || (c = ca_make_ca_cert(n, k, 365, NULL, s, -1, err, sizeof(err)))
           == NULL
        || store_begin(st, &tx) != STORE_OK
        || ca_record_insert(tx, "test", c, NULL, kpath, "test", NULL)
           != STORE_OK
        || store_commit(tx) != STORE_OK)
        return -1;
    X509_free(c);
    X509_NAME_free(n);
    ca_signer_free(s);
    if (!ca_load(NULL, st, "test", &ca, err, sizeof(err))
        || !conf_load_string("p.conf", "[profile d]\nsubject = CN=dev\n", &pc,
                             err, sizeof(err))
        || !ca_profile_load(pc, "d", &p, err, sizeof(err))
        || !ca_key_generate("ec:P-256", &dk, err, sizeof(err)))
        return -1;
    req.pubkey = dk;
    req.vars = no_vars;
    if (store_begin(st, &tx) != STORE_OK)
        return -1;
    for (i = 0; i < NLEAF; i++)
        if (ca_issue_store(ca, p, &req, tx, 0, &leaf[i], &leaf_id[i], err,
                           sizeof(err)) != CA_ISSUE_OK)
            return -1;
    if (store_commit(tx) != STORE_OK)
        return -1;
    EVP_PKEY_free(dk);
    EVP_PKEY_free(k);
    ca_profile_free(p);
    conf_free(pc);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    int i;

    for (i = 0; i < NLEAF; i++)
        X509_free(leaf[i]);
    ca_free(ca);
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    free(tmpdir);
    return 0;
}

/* A request for |x| with a nonce of |nonce| octets (0 = none). */
static unsigned char *make_req(X509 *x, int nonce, int *len)
{
    OCSP_REQUEST *r = OCSP_REQUEST_new();
    unsigned char *der = NULL;

    assert_non_null(OCSP_request_add0_id(r, OCSP_cert_to_id(EVP_sha1(), x,
                                                   ca_get0_cert(ca))));
    if (nonce > 0)
        assert_int_equal(OCSP_request_add1_nonce(r, NULL, nonce), 1);
    *len = i2d_OCSP_REQUEST(r, &der);
    assert_true(*len > 0);
    OCSP_REQUEST_free(r);
    return der;
}

static OCSP_RESPONDER *new_responder(long refresh, long check)
{
    struct ocsp_conf oc;
    OCSP_RESPONDER *r;
    char err[256];

    ocsp_conf_init(&oc);
    assert_int_equal(oc.cache, 1);              /* on by default */
    if (refresh > 0)
        oc.cache_refresh = refresh;
    oc.cache_check = check;
    r = ocsp_responder_new(st, &oc);
    assert_non_null(r);
    assert_int_equal(ocsp_responder_add_ca(r, ca, NULL, NULL, err,
                                           sizeof(err)), 1);
    return r;
}

/* One answer: outcome |want|, the response DER into *der (caller frees)
 * and its thisUpdate into *tu (may be NULL); checks the signature. */
static void respond(OCSP_RESPONDER *r, const unsigned char *req, int len,
                    time_t now, enum ocsp_outcome want, unsigned char **der,
                    size_t *dlen, struct ocsp_respond_info *info)
{
    OCSP_RESPONSE *rsp;
    OCSP_BASICRESP *bs;
    const unsigned char *p;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509_STORE *xs = X509_STORE_new();

    assert_int_equal(ocsp_respond_ex(r, req, (size_t)len, now, der, dlen,
                                     info), want);
    p = *der;
    rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)*dlen);
    assert_non_null(rsp);
    bs = OCSP_response_get1_basic(rsp);
    assert_non_null(bs);
    X509_STORE_add_cert(xs, ca_get0_cert(ca));
    sk_X509_push(certs, ca_get0_cert(ca));
    assert_int_equal(OCSP_basic_verify(bs, certs, xs, 0), 1);
    sk_X509_free(certs);
    X509_STORE_free(xs);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(rsp);
}

static void revoke_on(STORE *s, int i, int reason)
{
    STORE_TX *tx = NULL;

    assert_int_equal(store_begin(s, &tx), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, leaf_id[i], reason,
                                       (int64_t)time(NULL)), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
}

static STORE *open_other(void)
{
    struct store_conf sc;
    STORE *s = NULL;
    char err[256];

    store_conf_init(&sc);
    sc.path = dbpath;
    sc.synchronous_full = 0;
    assert_int_equal(store_open(&sc, &s, err, sizeof(err)), STORE_OK);
    return s;
}

static void test_change_token(void **state)
{
    uint64_t a = 0, b = 0, c = 0;
    STORE *other = open_other();
    STORE_TX *tx = NULL;

    assert_int_equal(store_change_token(st, &a), STORE_OK);
    assert_int_equal(store_change_token(st, &b), STORE_OK);
    assert_true(a == b);                        /* nothing happened */
    /* a read does not move it */
    assert_int_equal(store_begin_read(st, &tx), STORE_OK);
    store_rollback(tx);
    assert_int_equal(store_change_token(st, &b), STORE_OK);
    assert_true(a == b);
    /* a commit through another connection does */
    assert_int_equal(store_begin(other, &tx), STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "test.token", "x", NULL),
                     STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_change_token(st, &b), STORE_OK);
    assert_true(a != b);
    /* and one through this STORE */
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "test.token", "y", NULL),
                     STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_change_token(st, &c), STORE_OK);
    assert_true(c != b);
    store_close(other);
}

static void test_hit_miss_nonce(void **state)
{
    OCSP_RESPONDER *r = new_responder(0, 0);
    struct ocsp_cache_counters cs;
    struct ocsp_respond_info info;
    unsigned char *req, *nreq, *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    int len, nlen;
    time_t now = time(NULL);

    req = make_req(leaf[0], 0, &len);
    respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
    assert_int_equal(info.cached, 0);
    assert_int_equal(info.this_update, now);
    assert_int_equal(info.next_update, now + 3600);
    respond(r, req, len, now + 5, OCSP_OUT_GOOD, &b, &bl, &info);
    assert_int_equal(info.cached, 1);
    assert_int_equal(info.this_update, now);    /* pre-produced */
    assert_int_equal(bl, al);
    assert_memory_equal(a, b, al);              /* the very same response */
    OPENSSL_free(b);
    ocsp_responder_cache_stats(r, &cs);
    assert_int_equal(cs.enabled, 1);
    assert_int_equal(cs.misses, 1);
    assert_int_equal(cs.hits, 1);
    assert_int_equal(cs.entries, 1);
    assert_true(cs.bytes > al);

    /* a nonce: signed afresh every time (ECDSA: a different signature),
     * never cached */
    nreq = make_req(leaf[0], 16, &nlen);
    respond(r, nreq, nlen, now, OCSP_OUT_GOOD, &b, &bl, &info);
    assert_int_equal(info.cached, 0);
    OPENSSL_free(b);
    respond(r, nreq, nlen, now, OCSP_OUT_GOOD, &b, &bl, &info);
    assert_int_equal(info.cached, 0);
    assert_true(bl != al || memcmp(a, b, al) != 0);
    OPENSSL_free(b);
    ocsp_responder_cache_stats(r, &cs);
    assert_int_equal(cs.bypassed, 2);
    assert_int_equal(cs.hits, 1);
    assert_int_equal(cs.entries, 1);
    OPENSSL_free(a);
    OPENSSL_free(req);
    OPENSSL_free(nreq);
    ocsp_responder_free(r);

    /* cache = off: nothing cached, nothing counted */
    {
        struct ocsp_conf oc;
        char err[256];

        ocsp_conf_init(&oc);
        oc.cache = 0;
        r = ocsp_responder_new(st, &oc);
        assert_int_equal(ocsp_responder_add_ca(r, ca, NULL, NULL, err,
                                               sizeof(err)), 1);
        req = make_req(leaf[0], 0, &len);
        respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
        OPENSSL_free(a);
        respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
        assert_int_equal(info.cached, 0);
        OPENSSL_free(a);
        ocsp_responder_cache_stats(r, &cs);
        assert_int_equal(cs.enabled, 0);
        OPENSSL_free(req);
        ocsp_responder_free(r);
    }
}

static void test_revoke_same_store(void **state)
{
    OCSP_RESPONDER *r = new_responder(0, 0);
    struct ocsp_cache_counters cs;
    struct ocsp_respond_info info;
    unsigned char *req, *a = NULL;
    size_t al = 0;
    int len;
    time_t now = time(NULL);

    req = make_req(leaf[1], 0, &len);
    respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
    OPENSSL_free(a);
    respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
    assert_int_equal(info.cached, 1);
    OPENSSL_free(a);
    revoke_on(st, 1, 1);
    respond(r, req, len, now, OCSP_OUT_REVOKED, &a, &al, &info);
    assert_int_equal(info.cached, 0);           /* re-signed at once */
    OPENSSL_free(a);
    respond(r, req, len, now, OCSP_OUT_REVOKED, &a, &al, &info);
    assert_int_equal(info.cached, 1);           /* and cached again */
    OPENSSL_free(a);
    ocsp_responder_cache_stats(r, &cs);
    assert_int_equal(cs.misses, 2);
    assert_int_equal(cs.hits, 2);
    OPENSSL_free(req);
    ocsp_responder_free(r);
}

static void test_revoke_other_connection(void **state)
{
    OCSP_RESPONDER *r = new_responder(0, 0);
    STORE *other = open_other();
    struct ocsp_cache_counters cs;
    struct ocsp_respond_info info;
    unsigned char *req, *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    int len;
    time_t now = time(NULL);

    req = make_req(leaf[2], 0, &len);
    respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
    /* an unrelated change elsewhere (another certificate revoked by the
     * other connection): the row is read again, the signature reused */
    revoke_on(other, 3, 4);
    respond(r, req, len, now, OCSP_OUT_GOOD, &b, &bl, &info);
    assert_int_equal(info.cached, 1);
    assert_memory_equal(a, b, al);
    OPENSSL_free(b);
    ocsp_responder_cache_stats(r, &cs);
    assert_int_equal(cs.revalidated, 1);
    /* the token is current again: a plain hit */
    respond(r, req, len, now, OCSP_OUT_GOOD, &b, &bl, &info);
    OPENSSL_free(b);
    ocsp_responder_cache_stats(r, &cs);
    assert_int_equal(cs.hits, 1);
    /* this certificate revoked by the other connection: revoked at once */
    revoke_on(other, 2, 1);
    respond(r, req, len, now, OCSP_OUT_REVOKED, &b, &bl, &info);
    assert_int_equal(info.cached, 0);
    OPENSSL_free(b);
    ocsp_responder_cache_stats(r, &cs);
    assert_int_equal(cs.misses, 2);
    OPENSSL_free(a);
    OPENSSL_free(req);
    store_close(other);
    ocsp_responder_free(r);
}

static void test_refresh_and_check_bound(void **state)
{
    OCSP_RESPONDER *r = new_responder(60, 0);
    STORE *other;
    struct ocsp_respond_info info;
    unsigned char *req, *a = NULL;
    size_t al = 0;
    int len;
    time_t now = time(NULL);

    req = make_req(leaf[0], 0, &len);
    respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
    OPENSSL_free(a);
    respond(r, req, len, now + 59, OCSP_OUT_GOOD, &a, &al, &info);
    assert_int_equal(info.cached, 1);
    assert_int_equal(info.this_update, now);
    OPENSSL_free(a);
    respond(r, req, len, now + 60, OCSP_OUT_GOOD, &a, &al, &info);
    assert_int_equal(info.cached, 0);           /* due: signed again */
    assert_int_equal(info.this_update, now + 60);
    OPENSSL_free(a);
    ocsp_responder_free(r);

    /* cache_refresh is bounded by next_update */
    {
        struct ocsp_conf oc;
        char err[256];

        ocsp_conf_init(&oc);
        oc.next_update = 10;
        oc.cache_refresh = 3600;
        r = ocsp_responder_new(st, &oc);
        assert_int_equal(ocsp_responder_add_ca(r, ca, NULL, NULL, err,
                                               sizeof(err)), 1);
        respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
        OPENSSL_free(a);
        respond(r, req, len, now + 10, OCSP_OUT_GOOD, &a, &al, &info);
        assert_int_equal(info.cached, 0);
        OPENSSL_free(a);
        ocsp_responder_free(r);
    }

    /* cache_check = 100: a change is seen at most 100 s late */
    r = new_responder(0, 100);
    other = open_other();
    respond(r, req, len, now, OCSP_OUT_GOOD, &a, &al, &info);
    OPENSSL_free(a);
    revoke_on(other, 0, 1);
    respond(r, req, len, now + 50, OCSP_OUT_GOOD, &a, &al, &info);
    assert_int_equal(info.cached, 1);           /* within the bound */
    OPENSSL_free(a);
    respond(r, req, len, now + 100, OCSP_OUT_REVOKED, &a, &al, &info);
    assert_int_equal(info.cached, 0);
    OPENSSL_free(a);
    store_close(other);
    OPENSSL_free(req);
    ocsp_responder_free(r);
}

static void test_cache_bounds(void **state)
{
    OCSP_CACHE *c = ocsp_cache_new(160, 1u << 20);
    struct ocsp_cache_meta m, g;
    struct ocsp_cache_stats s;
    unsigned char key[8], der[100], *out = NULL;
    size_t ol = 0;
    int i, kept;

    assert_non_null(c);
    memset(&m, 0, sizeof(m));
    memset(der, 0xab, sizeof(der));
    for (i = 0; i < 1000; i++) {
        memcpy(key, &i, sizeof(i));
        memset(key + sizeof(i), 0, sizeof(key) - sizeof(i));
        m.status = i;
        assert_int_equal(ocsp_cache_put(c, key, sizeof(key), &m, der,
                                        sizeof(der)), 1);
        /* key 0 is used all the time: LRU keeps it */
        memset(key, 0, sizeof(key));
        assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol),
                         1);
        OPENSSL_free(out);
    }
    ocsp_cache_get_stats(c, &s);
    assert_true(s.entries <= 160);
    assert_true(s.evictions >= 1000 - 160);
    memset(key, 0, sizeof(key));
    assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol), 1);
    assert_int_equal(g.status, 0);
    assert_int_equal(ol, sizeof(der));
    OPENSSL_free(out);
    /* the most recent one is there, the oldest (but 0) are gone */
    i = 999;
    memcpy(key, &i, sizeof(i));
    assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol), 1);
    assert_int_equal(g.status, 999);
    OPENSSL_free(out);
    i = 1;
    memcpy(key, &i, sizeof(i));
    assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol), 0);
    assert_null(out);
    /* replace, set_token, remove, clear */
    i = 999;
    memcpy(key, &i, sizeof(i));
    m.status = 7;
    assert_int_equal(ocsp_cache_put(c, key, sizeof(key), &m, der, 10), 1);
    ocsp_cache_set_token(c, key, sizeof(key), &m, 42);
    assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol), 1);
    assert_int_equal(g.status, 7);
    assert_int_equal(g.has_token, 1);
    assert_true(g.token == 42);
    assert_int_equal(ol, 10);
    OPENSSL_free(out);
    /* not the entry seen (replaced since): left alone */
    m.status = 8;
    ocsp_cache_set_token(c, key, sizeof(key), &m, 43);
    assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol), 1);
    assert_true(g.token == 42);
    OPENSSL_free(out);
    ocsp_cache_remove(c, key, sizeof(key));
    assert_int_equal(ocsp_cache_get(c, key, sizeof(key), &g, &out, &ol), 0);
    ocsp_cache_clear(c);
    ocsp_cache_get_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    ocsp_cache_free(c);

    /* the byte bound: entries of ~1100 bytes in 64 KiB (4 KiB a shard) */
    c = ocsp_cache_new(100000, 65536);
    kept = 0;
    for (i = 0; i < 200; i++) {
        unsigned char big[1000];

        memset(big, i, sizeof(big));
        memcpy(key, &i, sizeof(i));
        if (ocsp_cache_put(c, key, sizeof(key), &m, big, sizeof(big)))
            kept++;
    }
    ocsp_cache_get_stats(c, &s);
    assert_true(s.bytes <= 65536);
    assert_true(s.entries <= 48);
    assert_int_equal(kept, 200);
    assert_true(s.evictions >= 200 - 48);
    /* an entry larger than a shard's share is refused */
    {
        static unsigned char huge[20000];

        assert_int_equal(ocsp_cache_put(c, key, sizeof(key), &m, huge,
                                        sizeof(huge)), 0);
    }
    ocsp_cache_free(c);
}

/* ocsp_pub_new() with the [ocsp] text |body|: the services or NULL. */
static OCSP_PUB *pub_with(const char *body, char *err, size_t errlen)
{
    struct conf *cf = NULL;
    OCSP_PUB *p;
    char text[512];

    snprintf(text, sizeof(text), "[ocsp]\ncas = test\n%s", body);
    assert_int_equal(conf_load_string("t.conf", text, &cf, err, errlen), 1);
    p = ocsp_pub_new(cf, st, err, errlen);
    conf_free(cf);
    return p;
}

static void test_conf_and_metrics(void **state)
{
    OCSP_PUB *p;
    char err[512], buf[8192];
    size_t n;

    p = pub_with("cache = maybe\n", err, sizeof(err));
    assert_null(p);
    assert_non_null(strstr(err, "t.conf:3"));
    assert_null(pub_with("cache_refresh = 0\n", err, sizeof(err)));
    assert_null(pub_with("cache_entries = 0\n", err, sizeof(err)));
    assert_null(pub_with("cache_bytes = 1k\n", err, sizeof(err)));
    assert_null(pub_with("cache_size = 1\n", err, sizeof(err)));  /* unknown */
    p = pub_with("cache = off\n", err, sizeof(err));
    assert_non_null(p);
    n = ocsp_pub_metrics(p, buf, sizeof(buf));
    buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
    assert_null(strstr(buf, "cmpca_ocsp_cache"));
    ocsp_pub_free(p);
    p = pub_with("cache = on\ncache_refresh = 1m\ncache_check = 5s\n"
                 "cache_entries = 10\ncache_bytes = 1M\n", err, sizeof(err));
    assert_non_null(p);
    n = ocsp_pub_metrics(p, buf, sizeof(buf));
    buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
    assert_non_null(strstr(buf, "cmpca_ocsp_cache_total{result=\"hit\"} 0"));
    assert_non_null(strstr(buf, "cmpca_ocsp_cache_entries 0"));
    ocsp_pub_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_token),
        cmocka_unit_test(test_hit_miss_nonce),
        cmocka_unit_test(test_revoke_same_store),
        cmocka_unit_test(test_revoke_other_connection),
        cmocka_unit_test(test_refresh_and_check_bound),
        cmocka_unit_test(test_cache_bounds),
        cmocka_unit_test(test_conf_and_metrics),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
