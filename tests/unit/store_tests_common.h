/*
 * Store tests shared by the SQLite (test_store.c) and PostgreSQL
 * (test_store_pg.c) test programs: each defines struct fx (with |st|),
 * open_store(), raw_sql(), verify(), the fixtures and these macros, then
 * includes this file:
 *   STORE_TEST_WHERE(f)          the database (file path or conninfo)
 *   STORE_TEST_FAULT(n)          the backend's fault injection hook
 *   STORE_TEST_TXN_STATEMENTS    statements of the faulted transaction
 */
#include "audit/audit.h"

#include <openssl/sha.h>

static int64_t add_vendor(STORE *st, const char *name)
{
    static unsigned char der[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
    struct store_der cert = { der, sizeof(der) };
    struct store_vendor v = { 0, (char *)name, &cert, 1, 0, 0 };
    STORE_TX *tx;
    int64_t id = 0;

    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(store_vendor_insert(tx, &v, &id), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    return id;
}

static int64_t add_ca(STORE *st, const char *name)
{
    static unsigned char root[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };
    unsigned char cert[] = { 0x30, 0x03, 0x02, 0x01, 0x09 };
    struct store_der chain = { root, sizeof(root) };
    struct store_ca ca;
    STORE_TX *tx;
    int64_t id = 0;

    memset(&ca, 0, sizeof(ca));
    ca.name = (char *)name;
    ca.cert_der = cert;
    ca.cert_len = sizeof(cert);
    ca.chain = &chain;
    ca.nchain = 1;
    ca.key_ref = "ca.key";
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(store_ca_insert(tx, &ca, &id), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    return id;
}

/* A fake certificate record with |serial_byte| as serial and DER tail. */
static void fake_cert(struct store_cert *c, int64_t ca_id, unsigned char sb,
                      unsigned char *der, size_t derlen)
{
    memset(c, 0, sizeof(*c));
    c->ca_id = ca_id;
    memset(c->serial, sb, 20);
    c->serial_len = 20;
    c->subject = "CN=dev";
    c->not_before = 1000;
    c->not_after = 2000000000;
    memset(der, sb, derlen);
    c->der = der;
    c->der_len = derlen;
    c->reason = -1;
}

static void test_cert_unique(void **state)
{
    struct fx *f = *state;
    struct store_cert c, *got = NULL, **list = NULL;
    struct store_cert_filter flt;
    unsigned char der1[64], der2[64], sha[32];
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca1"), id1 = 0, id2 = 0, n = 0;
    size_t nl = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    fake_cert(&c, ca, 0x11, der1, sizeof(der1));
    assert_int_equal(store_cert_insert(tx, &c, &id1), STORE_OK);
    /* same serial, other DER: collision -> EXISTS, tx still usable */
    fake_cert(&c, ca, 0x11, der2, sizeof(der2));
    der2[0] = 0x99;
    assert_int_equal(store_cert_insert(tx, &c, &id2), STORE_EXISTS);
    assert_int_equal(id2, 0);
    c.serial[0] = 0x12;
    assert_int_equal(store_cert_insert(tx, &c, &id2), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    memset(sha, 0, sizeof(sha));
    fake_cert(&c, ca, 0x11, der1, sizeof(der1));
    assert_int_equal(store_cert_get_by_serial(tx, ca, c.serial, 20, &got),
                     STORE_OK);
    assert_int_equal(got->id, id1);
    assert_int_equal(got->der_len, sizeof(der1));
    assert_memory_equal(got->der, der1, sizeof(der1));
    assert_int_equal(got->reason, -1);
    memcpy(sha, got->sha256, 32);
    store_cert_free(got);
    /* the stored SHA-256 is the DER's */
    {
        unsigned char want[32];

        assert_non_null(SHA256(der1, sizeof(der1), want));
        assert_memory_equal(sha, want, 32);
    }
    c.serial[0] = 0x7e;
    assert_int_equal(store_cert_get_by_serial(tx, ca, c.serial, 20, &got),
                     STORE_NOTFOUND);
    assert_null(got);
    store_cert_filter_init(&flt);
    flt.ca_id = ca;
    assert_int_equal(store_cert_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 2);
    flt.limit = 1;
    flt.skip_der = 1;
    assert_int_equal(store_cert_list(tx, &flt, &list, &nl), STORE_OK);
    assert_int_equal(nl, 1);
    assert_int_equal(list[0]->id, id2); /* newest first */
    assert_null(list[0]->der);
    store_cert_list_free(list, nl);
    /* writes refused in a read transaction */
    assert_int_equal(store_cert_revoke(tx, id1, 1, 0), STORE_ERROR);
    store_rollback(tx);
}

/* The vendor certificate an operator certificate was issued against (an
 * optional field), the filters on it and on expiry, disabled vendors. */
static void test_cert_vendor_expiry(void **state)
{
    struct fx *f = *state;
    struct store_cert c, *got = NULL, **list = NULL;
    struct store_cert_filter flt;
    struct store_vendor *v = NULL;
    unsigned char der1[48], der2[48], der3[48], vsha[32];
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "cav"), vid = add_vendor(f->st, "acme"), id1 = 0;
    int64_t n = 0;
    size_t nl = 0;

    memset(vsha, 0xab, sizeof(vsha));
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    fake_cert(&c, ca, 0x21, der1, sizeof(der1));
    c.has_vendor = 1;
    memcpy(c.vendor_sha256, vsha, 32);
    memset(c.vendor_serial, 0x42, 9);
    c.vendor_serial_len = 9;
    c.not_after = 5000;
    assert_int_equal(store_cert_insert(tx, &c, &id1), STORE_OK);
    fake_cert(&c, ca, 0x22, der2, sizeof(der2));   /* no vendor recorded */
    c.not_after = 7000;
    assert_int_equal(store_cert_insert(tx, &c, NULL), STORE_OK);
    fake_cert(&c, ca, 0x23, der3, sizeof(der3));
    c.has_vendor = 1;
    c.vendor_serial_len = 0;                       /* refused */
    assert_int_equal(store_cert_insert(tx, &c, NULL), STORE_ERROR);
    assert_int_equal(store_vendor_set_disabled(tx, vid, 1), STORE_OK);
    assert_int_equal(store_vendor_set_disabled(tx, 987654, 1), STORE_NOTFOUND);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_cert_get(tx, id1, &got), STORE_OK);
    assert_int_equal(got->has_vendor, 1);
    assert_memory_equal(got->vendor_sha256, vsha, 32);
    assert_int_equal(got->vendor_serial_len, 9);
    assert_int_equal(got->vendor_serial[8], 0x42);
    store_cert_free(got);
    store_cert_filter_init(&flt);
    flt.vendor_sha256 = vsha;
    assert_int_equal(store_cert_list(tx, &flt, &list, &nl), STORE_OK);
    assert_int_equal(nl, 1);
    assert_int_equal(list[0]->id, id1);
    assert_int_equal(list[0]->has_vendor, 1);
    store_cert_list_free(list, nl);
    store_cert_filter_init(&flt);
    flt.ca_id = ca;
    flt.status = STORE_CERT_VALID;
    flt.expires_after = 4000;
    flt.expires_before = 6000;
    assert_int_equal(store_cert_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 1);
    flt.expires_before = 8000;
    assert_int_equal(store_cert_list(tx, &flt, &list, &nl), STORE_OK);
    assert_int_equal(nl, 2);
    assert_int_equal(list[0]->has_vendor + list[1]->has_vendor, 1);
    store_cert_list_free(list, nl);
    store_cert_filter_init(&flt);
    flt.vendor_id = vid;
    assert_int_equal(store_cert_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 0);                /* none belongs to a device */
    assert_int_equal(store_vendor_get(tx, vid, &v), STORE_OK);
    assert_int_equal(v->disabled, 1);
    store_vendor_free(v);
    store_rollback(tx);

    /* vendor CRLs: put replaces per (vendor, issuer), list by vendor */
    {
        struct store_vendor_crl vc, **vl = NULL;
        unsigned char crl[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

        memset(&vc, 0, sizeof(vc));
        vc.vendor_id = vid;
        memset(vc.issuer_sha256, 0x5a, 32);
        vc.this_update = 100;
        vc.next_update = 200;
        vc.source = "import:x.crl";
        vc.der = crl;
        vc.der_len = sizeof(crl);
        assert_int_equal(store_begin(f->st, &tx), STORE_OK);
        assert_int_equal(store_vendor_crl_put(tx, &vc), STORE_OK);
        vc.next_update = 300;
        assert_int_equal(store_vendor_crl_put(tx, &vc), STORE_OK);
        vc.vendor_id = 99999;
        assert_int_equal(store_vendor_crl_put(tx, &vc), STORE_NOTFOUND);
        assert_int_equal(store_commit(tx), STORE_OK);
        assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
        assert_int_equal(store_vendor_crl_list(tx, vid, &vl, &nl), STORE_OK);
        assert_int_equal(nl, 1);
        assert_int_equal(vl[0]->next_update, 300);
        assert_string_equal(vl[0]->source, "import:x.crl");
        assert_int_equal(vl[0]->der_len, sizeof(crl));
        assert_true(vl[0]->fetched > 0);
        store_vendor_crl_list_free(vl, nl);
        assert_int_equal(store_vendor_crl_list(tx, 0, &vl, &nl), STORE_OK);
        assert_int_equal(nl, 1);
        store_vendor_crl_list_free(vl, nl);
        store_rollback(tx);
    }
}

static int count_revoked(void *arg, const struct store_revoked *r)
{
    int *n = arg;

    assert_int_equal(r->serial_len, 20);
    assert_int_equal(r->reason, 4);
    (*n)++;
    return 1;
}

static void test_cert_revoke_crl(void **state)
{
    struct fx *f = *state;
    struct store_cert c;
    struct store_crl crl = { 0 }, *got = NULL;
    unsigned char der[40], crlder[] = { 0x30, 0x00 };
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca1"), id = 0, num = 0;
    int n = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    fake_cert(&c, ca, 0x21, der, sizeof(der));
    assert_int_equal(store_cert_insert(tx, &c, &id), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, id, 4, 12345), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, id, 4, 12345), STORE_CONFLICT);
    assert_int_equal(store_cert_revoke(tx, 999, 4, 12345), STORE_NOTFOUND);
    assert_int_equal(store_cert_foreach_revoked(tx, ca, 0, count_revoked, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(store_cert_foreach_revoked(tx, ca, 2000000001,
                                                count_revoked, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_crl_next_number(tx, ca, &num), STORE_OK);
    assert_int_equal(num, 1);
    assert_int_equal(store_crl_next_number(tx, ca, &num), STORE_OK);
    assert_int_equal(num, 2);
    assert_int_equal(store_crl_get_last(tx, ca, &got), STORE_NOTFOUND);
    crl.ca_id = ca;
    crl.number = 2;
    crl.this_update = 10;
    crl.next_update = 20;
    crl.der = crlder;
    crl.der_len = sizeof(crlder);
    assert_int_equal(store_crl_put(tx, &crl), STORE_OK);
    assert_int_equal(store_crl_get_last(tx, ca, &got), STORE_OK);
    assert_int_equal(got->number, 2);
    assert_int_equal(got->der_len, 2);
    store_crl_free(got);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* certificateHold (6) may be released (store_cert_unrevoke) or become a
 * revocation for good; removeFromCRL (8) is never stored. */
static void test_cert_hold(void **state)
{
    struct fx *f = *state;
    struct store_cert c, c2, *got = NULL;
    unsigned char der[40], der2[40];
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca1"), id = 0, id2 = 0;
    int n = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    fake_cert(&c, ca, 0x31, der, sizeof(der));
    fake_cert(&c2, ca, 0x32, der2, sizeof(der2));
    assert_int_equal(store_cert_insert(tx, &c, &id), STORE_OK);
    assert_int_equal(store_cert_insert(tx, &c2, &id2), STORE_OK);
    /* not on hold: nothing to release */
    assert_int_equal(store_cert_unrevoke(tx, id), STORE_CONFLICT);
    assert_int_equal(store_cert_unrevoke(tx, 999), STORE_NOTFOUND);
    /* removeFromCRL and 7 are no revocation reasons */
    assert_int_equal(store_cert_revoke(tx, id, 8, 100), STORE_ERROR);
    assert_int_equal(store_cert_revoke(tx, id, 7, 100), STORE_ERROR);
    /* hold, hold again refused, released */
    assert_int_equal(store_cert_revoke(tx, id, 6, 100), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, id, 6, 101), STORE_CONFLICT);
    assert_int_equal(store_cert_unrevoke(tx, id), STORE_OK);
    assert_int_equal(store_cert_get(tx, id, &got), STORE_OK);
    assert_int_equal(got->status, STORE_CERT_VALID);
    assert_int_equal(got->reason, -1);
    assert_int_equal(got->revoked_at, 0);
    store_cert_free(got);
    assert_int_equal(store_cert_unrevoke(tx, id), STORE_CONFLICT);
    assert_int_equal(store_cert_foreach_revoked(tx, ca, 0, count_revoked, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    /* hold, then keyCompromise: the hold becomes the revocation, which is
     * final */
    assert_int_equal(store_cert_revoke(tx, id, 6, 200), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, id, 1, 300), STORE_OK);
    assert_int_equal(store_cert_get(tx, id, &got), STORE_OK);
    assert_int_equal(got->status, STORE_CERT_REVOKED);
    assert_int_equal(got->reason, 1);
    assert_int_equal(got->revoked_at, 300);
    store_cert_free(got);
    assert_int_equal(store_cert_unrevoke(tx, id), STORE_CONFLICT);
    assert_int_equal(store_cert_revoke(tx, id, 6, 400), STORE_CONFLICT);
    assert_int_equal(store_cert_revoke(tx, id, 4, 400), STORE_CONFLICT);
    /* a revocation without a reason (-1) also ends a hold */
    assert_int_equal(store_cert_revoke(tx, id2, 6, 500), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, id2, -1, 600), STORE_OK);
    assert_int_equal(store_cert_get(tx, id2, &got), STORE_OK);
    assert_int_equal(got->reason, -1);
    assert_int_equal(got->status, STORE_CERT_REVOKED);
    store_cert_free(got);
    assert_int_equal(store_cert_unrevoke(tx, id2), STORE_CONFLICT);
    assert_int_equal(store_commit(tx), STORE_OK);
}

static void test_ca_roundtrip(void **state)
{
    struct fx *f = *state;
    struct store_ca *ca = NULL, **list = NULL;
    STORE_TX *tx;
    size_t n = 0;
    int64_t id = add_ca(f->st, "issuing");

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_ca_get_by_name(tx, "issuing", &ca), STORE_OK);
    assert_int_equal(ca->id, id);
    assert_int_equal(ca->nchain, 1);
    assert_int_equal(ca->chain[0].len, 5);
    assert_string_equal(ca->key_ref, "ca.key");
    assert_null(ca->signer_cert_der);
    assert_null(ca->signer_key_ref);
    store_ca_free(ca);
    assert_int_equal(store_ca_list(tx, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_ca_list_free(list, n);
    store_rollback(tx);
    /* duplicate name */
    {
        unsigned char cert[] = { 0x30, 0x00 };
        struct store_ca c2;

        memset(&c2, 0, sizeof(c2));
        c2.name = "issuing";
        c2.cert_der = cert;
        c2.cert_len = 2;
        c2.key_ref = "k";
        assert_int_equal(store_begin(f->st, &tx), STORE_OK);
        assert_int_equal(store_ca_insert(tx, &c2, NULL), STORE_EXISTS);
        store_rollback(tx);
    }
}

static void test_device_states(void **state)
{
    struct fx *f = *state;
    struct store_device *d = NULL;
    STORE_TX *tx;
    int64_t v = add_vendor(f->st, "acme"), id = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    {
        STORE_TX *tx2 = NULL;

        /* a nested write transaction in one thread is refused, not hung */
        assert_int_equal(store_begin(f->st, &tx2), STORE_ERROR);
        assert_null(tx2);
    }
    assert_int_equal(store_device_insert(tx, v, "SN1", &id), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "SN1", NULL), STORE_EXISTS);
    assert_int_equal(store_device_insert(tx, 4242, "SN1", NULL),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_set_state(tx, id, STORE_DEV_REGISTERED,
                                            STORE_DEV_PENDING, 0), STORE_OK);
    /* a second enrollment racing the first loses */
    assert_int_equal(store_device_set_state(tx, id, STORE_DEV_REGISTERED,
                                            STORE_DEV_PENDING, 0),
                     STORE_CONFLICT);
    assert_int_equal(store_device_set_state(tx, 777, STORE_DEV_REGISTERED,
                                            STORE_DEV_PENDING, 0),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_get_by_ident(tx, v, "SN1", &d), STORE_OK);
    assert_int_equal(d->state, STORE_DEV_PENDING);
    assert_int_equal(d->cert_id, 0);
    store_device_free(d);
    assert_int_equal(store_commit(tx), STORE_OK);

    /* vendor delete refused while devices exist, forced works */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_vendor_delete(tx, v, 0), STORE_CONFLICT);
    assert_int_equal(store_vendor_delete(tx, v, 1), STORE_OK);
    assert_int_equal(store_device_get(tx, id, &d), STORE_NOTFOUND);
    assert_int_equal(store_commit(tx), STORE_OK);
}

struct arr_iter {
    const char *const *v;
    size_t n, i;
};

static int arr_next(void *arg, const char **ident, size_t *len)
{
    struct arr_iter *it = arg;

    if (it->i == it->n)
        return 0;
    *ident = it->v[it->i++];
    *len = strlen(*ident);
    return 1;
}

/* One identifier of an explicit length (may hold a NUL). */
struct raw_iter {
    const char *p;
    size_t len;
    int done;
};

static int raw_next(void *arg, const char **ident, size_t *len)
{
    struct raw_iter *it = arg;

    if (it->done)
        return 0;
    it->done = 1;
    *ident = it->p;
    *len = it->len;
    return 1;
}

static void test_import_all_or_nothing(void **state)
{
    struct fx *f = *state;
    static const char *const good[] = { "A1", "A2", "A3" };
    static const char *const dup_in[] = { "B1", "B2", "B1" };
    static const char *const dup_db[] = { "C1", "A2" };
    struct store_device_filter flt;
    struct arr_iter it;
    STORE_TX *tx;
    uint64_t cnt = 0;
    int64_t v = add_vendor(f->st, "acme"), n = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    it = (struct arr_iter){ good, 3, 0 };
    assert_int_equal(store_device_import(tx, v, arr_next, &it, &cnt),
                     STORE_OK);
    assert_int_equal(cnt, 3);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    it = (struct arr_iter){ dup_in, 3, 0 };
    assert_int_equal(store_device_import(tx, v, arr_next, &it, &cnt),
                     STORE_EXISTS);
    assert_int_equal(it.i, 3); /* the culprit is the last one returned */
    store_rollback(tx);

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    it = (struct arr_iter){ dup_db, 2, 0 };
    assert_int_equal(store_device_import(tx, v, arr_next, &it, &cnt),
                     STORE_EXISTS);
    store_rollback(tx);

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    it = (struct arr_iter){ good, 3, 0 };
    assert_int_equal(store_device_import(tx, 999, arr_next, &it, &cnt),
                     STORE_NOTFOUND);
    store_rollback(tx);

    /* identifiers the store refuses, whoever calls it: empty, too long,
     * with a NUL inside */
    {
        static char longid[STORE_IDENT_MAX + 1];
        struct raw_iter bad[] = {
            { "", 0, 0 }, { longid, sizeof(longid), 0 }, { "D\0E", 3, 0 }
        };
        size_t k;

        memset(longid, 'x', sizeof(longid));
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            assert_int_equal(store_begin(f->st, &tx), STORE_OK);
            assert_int_equal(store_device_import(tx, v, raw_next, &bad[k],
                                                 &cnt), STORE_ERROR);
            assert_non_null(strstr(store_tx_errmsg(tx), "identifier"));
            store_rollback(tx);
        }
    }

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    store_device_filter_init(&flt);
    assert_int_equal(store_device_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 3);
    store_rollback(tx);
}

static void test_rollback_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct store_vendor *v = NULL;
    STORE_TX *tx;
    int64_t vid = add_vendor(f->st, "acme"), nrows = 0, last = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, vid, "X", NULL), STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "device.add", "X", NULL),
                     STORE_OK);
    assert_int_equal(store_vendor_delete(tx, vid, 1), STORE_OK);
    store_rollback(tx);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_vendor_get(tx, vid, &v), STORE_OK);
    store_vendor_free(v);
    {
        struct store_device *d = NULL;

        assert_int_equal(store_device_get_by_ident(tx, vid, "X", &d),
                         STORE_NOTFOUND);
    }
    assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
    assert_int_equal(nrows, 0);
    store_rollback(tx);
}

static void test_ra(void **state)
{
    struct fx *f = *state;
    unsigned char cert[] = { 0x30, 0x01, 0x05 }, cert2[] = { 0x30, 0x01, 0x06 };
    unsigned char sha[32];
    char *aliases[] = { "lab", "factory" }, *profiles[] = { "device" };
    char *bad[] = { "" };
    struct store_ra ra, *got = NULL, **list = NULL;
    STORE_TX *tx;
    int64_t id = 0, id2 = 0;
    size_t n = 0;

    memset(&ra, 0, sizeof(ra));
    ra.name = "ra1";
    ra.cert_der = cert;
    ra.cert_len = sizeof(cert);
    ra.aliases = aliases;
    ra.naliases = 2;
    ra.profiles = profiles;
    ra.nprofiles = 1;
    ra.ops = STORE_RA_OP_IR | STORE_RA_OP_KUR;
    ra.ra_verified = 1;
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_ra_insert(tx, &ra, &id), STORE_OK);
    ra.name = "ra2"; /* same certificate */
    assert_int_equal(store_ra_insert(tx, &ra, NULL), STORE_EXISTS);
    ra.cert_der = cert2;
    ra.ops = 0x40; /* unknown operation bit */
    assert_int_equal(store_ra_insert(tx, &ra, NULL), STORE_ERROR);
    ra.ops = STORE_RA_OP_ALL;
    ra.profiles = bad;
    assert_int_equal(store_ra_insert(tx, &ra, NULL), STORE_ERROR);
    /* a second RA: no profiles (= any), every operation, no raVerified */
    ra.profiles = NULL;
    ra.nprofiles = 0;
    ra.ra_verified = 0;
    ra.naliases = 1;
    assert_int_equal(store_ra_insert(tx, &ra, &id2), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_ra_get_by_name(tx, "ra1", &got), STORE_OK);
    assert_int_equal(got->id, id);
    assert_int_equal(got->naliases, 2);
    assert_string_equal(got->aliases[0], "factory"); /* sorted */
    assert_string_equal(got->aliases[1], "lab");
    assert_int_equal(got->nprofiles, 1);
    assert_string_equal(got->profiles[0], "device");
    assert_int_equal(got->ops, STORE_RA_OP_IR | STORE_RA_OP_KUR);
    assert_int_equal(got->ra_verified, 1);
    assert_int_equal(got->disabled, 0);
    assert_true(got->created > 0);
    assert_int_equal(got->updated, got->created);
    assert_int_equal(SHA256(cert, sizeof(cert), sha) != NULL, 1);
    assert_memory_equal(got->sha256, sha, 32);
    assert_int_equal(store_ra_check(got, "lab", "device", STORE_RA_OP_KUR),
                     STORE_RA_ALLOWED);
    assert_int_equal(store_ra_check(got, "other", "device", STORE_RA_OP_IR),
                     STORE_RA_NO_ALIAS);
    assert_int_equal(store_ra_check(got, "lab", "server", STORE_RA_OP_IR),
                     STORE_RA_NO_PROFILE);
    assert_int_equal(store_ra_check(got, "lab", NULL, STORE_RA_OP_IR),
                     STORE_RA_NO_PROFILE);
    assert_int_equal(store_ra_check(got, "lab", "device", STORE_RA_OP_RR),
                     STORE_RA_NO_OP);
    store_ra_free(got);
    got = NULL;
    assert_int_equal(store_ra_get(tx, id2, &got), STORE_OK);
    assert_string_equal(got->name, "ra2");
    assert_int_equal(got->nprofiles, 0);
    assert_null(got->profiles);
    assert_int_equal(got->ops, STORE_RA_OP_ALL);
    assert_int_equal(got->ra_verified, 0);
    assert_int_equal(store_ra_check(got, "lab", NULL, STORE_RA_OP_P10CR),
                     STORE_RA_ALLOWED);
    store_ra_free(got);
    got = NULL;
    assert_int_equal(store_ra_list(tx, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "ra1");
    assert_string_equal(list[1]->name, "ra2");
    store_ra_list_free(list, n);
    store_rollback(tx);

    /* disable: conditional, updated moves, the lookup by certificate still
     * finds it (the server decides) */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_ra_set_disabled(tx, id, 1), STORE_OK);
    assert_int_equal(store_ra_set_disabled(tx, id, 1), STORE_CONFLICT);
    assert_int_equal(store_ra_set_disabled(tx, 9999, 1), STORE_NOTFOUND);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_ra_get_by_sha256(tx, sha, &got), STORE_OK);
    assert_int_equal(got->id, id);
    assert_int_equal(got->disabled, 1);
    assert_true(got->updated >= got->created);
    assert_int_equal(got->nprofiles, 1);
    assert_int_equal(store_ra_check(got, "lab", "device", STORE_RA_OP_KUR),
                     STORE_RA_DISABLED);
    store_ra_free(got);
    got = NULL;
    store_rollback(tx);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_ra_set_disabled(tx, id, 0), STORE_OK);
    assert_int_equal(store_ra_set_disabled(tx, id, 0), STORE_CONFLICT);
    assert_int_equal(store_ra_get_by_sha256(tx, sha, &got), STORE_OK);
    assert_int_equal(got->disabled, 0);
    store_ra_free(got);
    got = NULL;
    /* removal takes aliases and profiles along */
    assert_int_equal(store_ra_delete(tx, id), STORE_OK);
    assert_int_equal(store_ra_delete(tx, id), STORE_NOTFOUND);
    assert_int_equal(store_ra_get_by_sha256(tx, sha, &got), STORE_NOTFOUND);
    assert_null(got);
    /* the name and certificate may be registered again */
    ra.name = "ra1";
    ra.cert_der = cert;
    ra.profiles = profiles;
    ra.nprofiles = 1;
    assert_int_equal(store_ra_insert(tx, &ra, &id), STORE_OK);
    assert_int_equal(store_ra_get(tx, id, &got), STORE_OK);
    assert_int_equal(got->nprofiles, 1);
    assert_int_equal(got->naliases, 1);
    store_ra_free(got);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* The operation names and bits, and store_ra_check's order (no store). */
static void test_ra_ops(void **state)
{
    char buf[32], *al[] = { "a" }, *pr[] = { "x", "*" };
    struct store_ra ra;
    unsigned m = 0;

    (void)state;
    assert_string_equal(store_ra_op_name(STORE_RA_OP_IR), "ir");
    assert_string_equal(store_ra_op_name(STORE_RA_OP_P10CR), "p10cr");
    assert_string_equal(store_ra_op_name(STORE_RA_OP_RR), "rr");
    assert_null(store_ra_op_name(STORE_RA_OP_IR | STORE_RA_OP_CR));
    assert_null(store_ra_op_name(0));
    assert_int_equal(store_ra_ops_parse("ir, kur ,rr", &m), 1);
    assert_int_equal(m, STORE_RA_OP_IR | STORE_RA_OP_KUR | STORE_RA_OP_RR);
    assert_int_equal(store_ra_ops_parse("all", &m), 1);
    assert_int_equal(m, STORE_RA_OP_ALL);
    assert_int_equal(store_ra_ops_parse("*", &m), 1);
    assert_int_equal(m, STORE_RA_OP_ALL);
    assert_int_equal(store_ra_ops_parse("ir,genm", &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(store_ra_ops_parse("ir,,cr", &m), 0);
    assert_int_equal(store_ra_ops_parse("", &m), 0);
    assert_int_equal(store_ra_ops_parse("i", &m), 0);
    assert_int_equal(store_ra_ops_parse(NULL, &m), 0);
    assert_int_equal(store_ra_ops_format(STORE_RA_OP_ALL, buf, sizeof(buf)),
                     1);
    assert_string_equal(buf, "ir,cr,p10cr,kur,rr");
    assert_int_equal(store_ra_ops_parse(buf, &m), 1);
    assert_int_equal(m, STORE_RA_OP_ALL);
    assert_int_equal(store_ra_ops_format(0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "");
    assert_int_equal(store_ra_ops_format(STORE_RA_OP_ALL, buf, 10), 0);
    assert_int_equal(store_ra_op_for_cmp_type(STORE_CMP_IR), STORE_RA_OP_IR);
    assert_int_equal(store_ra_op_for_cmp_type(STORE_CMP_CR), STORE_RA_OP_CR);
    assert_int_equal(store_ra_op_for_cmp_type(STORE_CMP_P10CR),
                     STORE_RA_OP_P10CR);
    assert_int_equal(store_ra_op_for_cmp_type(STORE_CMP_KUR),
                     STORE_RA_OP_KUR);
    assert_int_equal(store_ra_op_for_cmp_type(STORE_CMP_RR), STORE_RA_OP_RR);
    assert_int_equal(store_ra_op_for_cmp_type(STORE_CMP_GENM), 0);

    memset(&ra, 0, sizeof(ra));
    ra.aliases = al;
    ra.naliases = 1;
    ra.profiles = pr;
    ra.nprofiles = 2;          /* "*" among them: any profile */
    ra.ops = STORE_RA_OP_CR;
    assert_int_equal(store_ra_check(&ra, "a", "anything", STORE_RA_OP_CR),
                     STORE_RA_ALLOWED);
    assert_int_equal(store_ra_check(&ra, "a", "x", 0), STORE_RA_NO_OP);
    assert_int_equal(store_ra_check(&ra, "a", "x", STORE_RA_OP_ALL),
                     STORE_RA_NO_OP);
    assert_int_equal(store_ra_check(&ra, NULL, "x", STORE_RA_OP_CR),
                     STORE_RA_NO_ALIAS);
    ra.naliases = 0;
    assert_int_equal(store_ra_check(&ra, "a", "x", STORE_RA_OP_CR),
                     STORE_RA_NO_ALIAS);
    ra.disabled = 1;
    assert_int_equal(store_ra_check(&ra, "a", "x", STORE_RA_OP_CR),
                     STORE_RA_DISABLED);
    assert_string_equal(store_ra_verdict_str(STORE_RA_NO_OP),
                        "operation not allowed for this RA");
}

static void test_cmp_txn(void **state)
{
    struct fx *f = *state;
    struct store_cmp_txn t, *got = NULL, **list = NULL;
    STORE_TX *tx;
    size_t n = 0;
    int64_t purged = 0;

    memset(&t, 0, sizeof(t));
    memset(t.tid, 0xab, 16);
    t.tid_len = 16;
    t.alias = "default";
    t.type = STORE_CMP_IR;
    t.state = STORE_CMP_WAITING_CONFIRM;
    t.deadline = 100;
    memset(t.sender_nonce, 0x5a, 16);
    t.sender_nonce_len = 16;
    memset(t.requester_sha256, 0x01, 32);
    t.has_requester = 1;
    t.cert_id = 5;
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_cmp_txn_insert(tx, &t), STORE_OK);
    assert_int_equal(store_cmp_txn_insert(tx, &t), STORE_EXISTS);
    assert_int_equal(store_cmp_txn_get(tx, t.tid, 16, &got), STORE_OK);
    assert_int_equal(got->sender_nonce_len, 16);
    assert_int_equal(got->has_requester, 1);
    assert_int_equal(got->cert_id, 5);
    assert_int_equal(got->device_id, 0);
    assert_string_equal(got->alias, "default");
    store_cmp_txn_free(got);
    assert_int_equal(store_cmp_txn_list_expired(tx, 101, 10, &list, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    store_cmp_txn_list_free(list, n);
    assert_int_equal(store_cmp_txn_list_expired(tx, 100, 10, &list, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    store_cmp_txn_list_free(list, n);
    assert_int_equal(store_cmp_txn_set_state(tx, t.tid, 16,
                                             STORE_CMP_WAITING_CONFIRM,
                                             STORE_CMP_CONFIRMED), STORE_OK);
    /* a replayed certConf finds it confirmed already */
    assert_int_equal(store_cmp_txn_set_state(tx, t.tid, 16,
                                             STORE_CMP_WAITING_CONFIRM,
                                             STORE_CMP_CONFIRMED),
                     STORE_CONFLICT);
    t.tid[0] = 0;
    assert_int_equal(store_cmp_txn_set_state(tx, t.tid, 16,
                                             STORE_CMP_WAITING_CONFIRM,
                                             STORE_CMP_CONFIRMED),
                     STORE_NOTFOUND);
    t.tid[0] = 0xab;
    t.state = STORE_CMP_CLOSED;
    t.device_id = 9;
    assert_int_equal(store_cmp_txn_update(tx, &t, STORE_CMP_WAITING_CONFIRM),
                     STORE_CONFLICT);
    assert_int_equal(store_cmp_txn_update(tx, &t, STORE_CMP_CONFIRMED),
                     STORE_OK);
    assert_int_equal(store_cmp_txn_purge(tx, (int64_t)time(NULL) + 10,
                                         &purged), STORE_OK);
    assert_int_equal(purged, 1);
    /* too long a transactionID is refused before the database */
    t.tid_len = STORE_TID_MAX + 1;
    assert_int_equal(store_cmp_txn_insert(tx, &t), STORE_ERROR);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* Expired certificates stay queryable (issue 16, point 4): by id, by
 * serial, listed (also as expired), after the transaction purge; revoked
 * ones only leave the CRL walk. */
static void test_cert_expired_kept(void **state)
{
    struct fx *f = *state;
    struct store_cert c, *got = NULL, **list = NULL;
    struct store_cert_filter flt;
    unsigned char der[48];
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca-exp"), id = 0, purged = 0;
    int64_t now = (int64_t)time(NULL), n = 0;
    size_t nl = 0;
    int walked = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    fake_cert(&c, ca, 0x31, der, sizeof(der));
    c.not_before = now - 7200;
    c.not_after = now - 3600;            /* expired an hour ago */
    c.status = STORE_CERT_REVOKED;
    c.revoked_at = now - 5000;
    c.reason = 4;
    assert_int_equal(store_cert_insert(tx, &c, &id), STORE_OK);
    assert_int_equal(store_cmp_txn_purge(tx, now + 10, &purged), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_cert_get(tx, id, &got), STORE_OK);
    assert_int_equal(got->not_after, now - 3600);
    assert_int_equal(got->status, STORE_CERT_REVOKED);
    store_cert_free(got);
    got = NULL;
    assert_int_equal(store_cert_get_by_serial(tx, ca, c.serial, 20, &got),
                     STORE_OK);
    assert_int_equal(got->id, id);
    store_cert_free(got);
    store_cert_filter_init(&flt);
    flt.ca_id = ca;
    flt.expires_before = now;
    assert_int_equal(store_cert_list(tx, &flt, &list, &nl), STORE_OK);
    assert_int_equal(nl, 1);
    store_cert_list_free(list, nl);
    assert_int_equal(store_cert_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_cert_foreach_revoked(tx, ca, now, count_revoked,
                                                &walked), STORE_OK);
    assert_int_equal(walked, 0);         /* not on a CRL issued now */
    assert_int_equal(store_cert_foreach_revoked(tx, ca, 0, count_revoked,
                                                &walked), STORE_OK);
    assert_int_equal(walked, 1);
    store_rollback(tx);
}

/* Per-requester counts: waiting enrollments, enrollments since a time;
 * rr/genm rows and other requesters do not count. */
static void test_cmp_txn_count_requester(void **state)
{
    struct fx *f = *state;
    struct store_cmp_txn t;
    unsigned char rq[32], other[32];
    int64_t waiting = -1, recent = -1;
    STORE_TX *tx;
    int i;

    memset(rq, 0x11, sizeof(rq));
    memset(other, 0x22, sizeof(other));
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    for (i = 0; i < 8; i++) {
        memset(&t, 0, sizeof(t));
        memset(t.tid, 0x40 + i, 16);
        t.tid_len = 16;
        t.alias = "default";
        /* 0-3 ir waiting, 4 ir confirmed, 5 rr, 6 kur of another
         * requester waiting, 7 p10cr waiting created long ago */
        t.type = i == 5 ? STORE_CMP_RR : i == 6 ? STORE_CMP_KUR
            : i == 7 ? STORE_CMP_P10CR : STORE_CMP_IR;
        t.state = i == 4 ? STORE_CMP_CONFIRMED : i == 5 ? STORE_CMP_CLOSED
                                               : STORE_CMP_WAITING_CONFIRM;
        t.created = i == 7 ? 1000 : 5000 + i;
        t.deadline = t.created + 300;
        memcpy(t.requester_sha256, i == 6 ? other : rq, 32);
        t.has_requester = 1;
        assert_int_equal(store_cmp_txn_insert(tx, &t), STORE_OK);
    }
    assert_int_equal(store_cmp_txn_count_requester(tx, rq, 5000, &waiting,
                                                   &recent), STORE_OK);
    assert_int_equal(waiting, 5);     /* 0-3 and 7 */
    assert_int_equal(recent, 5);      /* 0-4 */
    assert_int_equal(store_cmp_txn_count_requester(tx, rq, 5003, &waiting,
                                                   &recent), STORE_OK);
    assert_int_equal(recent, 2);
    assert_int_equal(store_cmp_txn_count_requester(tx, other, 0, &waiting,
                                                   &recent), STORE_OK);
    assert_int_equal(waiting, 1);
    assert_int_equal(recent, 1);
    memset(other, 0x33, sizeof(other));
    assert_int_equal(store_cmp_txn_count_requester(tx, other, 0, &waiting,
                                                   &recent), STORE_OK);
    assert_int_equal(waiting, 0);
    assert_int_equal(recent, 0);
    assert_int_equal(store_commit(tx), STORE_OK);
}

static void append_rows(STORE *st, int n)
{
    STORE_TX *tx;
    char obj[32];
    int i;

    for (i = 0; i < n; i++) {
        snprintf(obj, sizeof(obj), "obj%d", i);
        assert_int_equal(store_begin(st, &tx), STORE_OK);
        assert_int_equal(store_audit_append(tx, "test", "thing.do", obj,
                                            i % 2 ? "{\"k\":1}" : NULL),
                         STORE_OK);
        assert_int_equal(store_commit(tx), STORE_OK);
    }
}

static int64_t verify(STORE *st)
{
    char err[256];
    int64_t bad = -1;
    int ok = store_audit_verify(st, &bad, err, sizeof(err));

    assert_int_equal(ok, bad == 0);
    return bad;
}

static void test_audit_modify(void **state)
{
    struct fx *f = *state;

    append_rows(f->st, 6);
    assert_int_equal(verify(f->st), 0);
    raw_sql(STORE_TEST_WHERE(f), "UPDATE audit SET actor = 'mallory' WHERE seq = 3");
    assert_int_equal(verify(f->st), 3);
}

static void test_audit_delete(void **state)
{
    struct fx *f = *state;

    append_rows(f->st, 6);
    raw_sql(STORE_TEST_WHERE(f), "DELETE FROM audit WHERE seq = 4");
    assert_int_equal(verify(f->st), 4);
}

static void test_audit_delete_tail(void **state)
{
    struct fx *f = *state;

    append_rows(f->st, 6);
    raw_sql(STORE_TEST_WHERE(f), "DELETE FROM audit WHERE seq = 6");
    assert_int_equal(verify(f->st), 6);
}

static void test_audit_reorder(void **state)
{
    struct fx *f = *state;

    append_rows(f->st, 6);
    raw_sql(STORE_TEST_WHERE(f), "UPDATE audit SET seq = -2 WHERE seq = 2;"
            "UPDATE audit SET seq = 2 WHERE seq = 3;"
            "UPDATE audit SET seq = 3 WHERE seq = -2;");
    assert_int_equal(verify(f->st), 2);
}

static void test_audit_insert(void **state)
{
    struct fx *f = *state;

    append_rows(f->st, 3);
    /* a forged row that copies row 3's hash onto a new row 4 */
    raw_sql(STORE_TEST_WHERE(f), "INSERT INTO audit(seq,time,actor,action,object,"
            "details,hash) SELECT 4,time,actor,action,'forged',details,hash "
            "FROM audit WHERE seq = 3");
    assert_int_equal(verify(f->st), 4);
}

/* Counts the rows store_audit_walk hands to its callback; stops at |stop|. */
struct walk_count {
    int64_t n, stop;
};

static int walk_count_row(void *arg, const struct store_audit_row *row)
{
    struct walk_count *w = arg;

    w->n++;
    assert_int_equal(row->seq, w->n);
    return w->stop == 0 || w->n < w->stop;
}

/* Head (seq, hash) of row |seq| read back through store_audit_list. */
static void row_anchor(STORE *st, int64_t seq, struct store_audit_anchor *a)
{
    struct store_audit_row **v = NULL;
    STORE_TX *tx;
    size_t n = 0, i;

    assert_int_equal(store_begin_read(st, &tx), STORE_OK);
    assert_int_equal(store_audit_list(tx, 0, &v, &n), STORE_OK);
    for (i = 0; i < n && v[i]->seq != seq; i++)
        ;
    assert_true(i < n);
    a->seq = seq;
    memcpy(a->hash, v[i]->hash, STORE_SHA256_LEN);
    store_audit_row_list_free(v, n);
    store_rollback(tx);
}

static enum store_audit_verdict walk(STORE *st,
                                     const struct store_audit_anchor *a,
                                     size_t n,
                                     struct store_audit_walk_result *res)
{
    STORE_TX *tx;
    char err[300];
    enum store_audit_verdict v;

    assert_int_equal(store_begin_read(st, &tx), STORE_OK);
    v = store_audit_walk(tx, a, n, NULL, NULL, res, err, sizeof(err));
    store_rollback(tx);
    return v;
}

/* Checkpoints (anchors) catch what the plain chain cannot: the tail
 * removed with the head fixed, a rehashed chain, an unsorted anchor list;
 * the callback sees every row and may stop the walk. */
static void test_audit_anchors(void **state)
{
    struct fx *f = *state;
    struct store_audit_anchor a[3];
    struct store_audit_walk_result res;
    struct walk_count wc = { 0, 0 };
    STORE_TX *tx;
    char err[300];

    append_rows(f->st, 6);
    row_anchor(f->st, 2, &a[0]);
    row_anchor(f->st, 6, &a[1]);
    assert_int_equal(walk(f->st, a, 2, &res), STORE_AUDIT_INTACT);
    assert_int_equal(res.rows, 6);
    assert_int_equal(res.last_seq, 6);
    assert_memory_equal(res.last_hash, a[1].hash, STORE_SHA256_LEN);
    assert_int_equal(res.anchors_matched, 2);
    /* two anchors of one seq both count */
    a[2] = a[1];
    assert_int_equal(walk(f->st, a, 3, &res), STORE_AUDIT_INTACT);
    assert_int_equal(res.anchors_matched, 3);
    /* unsorted or seq 0: refused */
    a[2] = a[0];
    assert_int_equal(walk(f->st, a, 3, &res), STORE_AUDIT_ERROR);
    a[2].seq = 0;
    assert_int_equal(walk(f->st, &a[2], 1, &res), STORE_AUDIT_ERROR);
    /* a different hash at an anchored row */
    a[2] = a[1];
    a[2].hash[0] ^= 1;
    assert_int_equal(walk(f->st, &a[2], 1, &res), STORE_AUDIT_BROKEN);
    assert_int_equal(res.bad_seq, 6);
    assert_int_equal(res.bad_anchor, 1);
    /* an anchor beyond the chain */
    a[2] = a[1];
    a[2].seq = 7;
    assert_int_equal(walk(f->st, a, 3, &res), STORE_AUDIT_BROKEN);
    assert_int_equal(res.bad_anchor, 3);
    assert_int_equal(res.bad_seq, 7);
    assert_int_equal(res.anchors_matched, 2);
    /* the callback sees rows 1..6, or stops the walk */
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_audit_walk(tx, NULL, 0, walk_count_row, &wc, &res,
                                      err, sizeof(err)), STORE_AUDIT_INTACT);
    assert_int_equal(wc.n, 6);
    wc.n = 0;
    wc.stop = 3;
    assert_int_equal(store_audit_walk(tx, NULL, 0, walk_count_row, &wc, &res,
                                      err, sizeof(err)), STORE_AUDIT_ERROR);
    assert_int_equal(wc.n, 3);
    store_rollback(tx);
    /* the tail removed and the head fixed: the plain chain verifies, the
     * anchor of row 6 does not */
    raw_sql(STORE_TEST_WHERE(f), "DELETE FROM audit WHERE seq > 4;"
            "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit "
            "WHERE seq = 4)");
    assert_int_equal(verify(f->st), 0);
    assert_int_equal(walk(f->st, a, 1, &res), STORE_AUDIT_INTACT);
    assert_int_equal(walk(f->st, a, 2, &res), STORE_AUDIT_BROKEN);
    assert_int_equal(res.bad_seq, 5);
    assert_int_equal(res.bad_anchor, 2);
}

/* A fake revocation event as ca_crl.c writes it (object: serial in
 * uppercase hex; details: ca, cert_id, reason, time). */
static void revoke_with_event(STORE *st, int64_t ca, int64_t id,
                              const struct store_cert *c, int reason,
                              int64_t when)
{
    char obj[2 * STORE_SERIAL_MAX + 1], details[160];
    STORE_TX *tx;
    size_t i;

    for (i = 0; i < c->serial_len; i++)
        snprintf(obj + 2 * i, 3, "%02X", c->serial[i]);
    snprintf(details, sizeof(details), "{\"ca\":%lld,\"cert_id\":%lld,"
             "\"reason\":%d,\"time\":%lld}", (long long)ca, (long long)id,
             reason, (long long)when);
    assert_int_equal(store_begin(st, &tx), STORE_OK);
    assert_int_equal(store_cert_revoke(tx, id, reason, when), STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "cert.revoke", obj,
                                        details), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
}

struct problems {
    int n;
    char last[512];
};

static void note_problem(void *arg, const char *msg)
{
    struct problems *p = arg;

    p->n++;
    snprintf(p->last, sizeof(p->last), "%s", msg);
}

static enum audit_rc status_check(STORE *st, struct problems *p)
{
    struct audit_report rep;
    char err[512];

    memset(p, 0, sizeof(*p));
    return audit_verify(st, NULL, 0, 0, note_problem, p, &rep, err,
                        sizeof(err));
}

/* audit_verify cross-checks certificate status against the revocation
 * events, whatever the backend. */
static void test_audit_status(void **state)
{
    struct fx *f = *state;
    struct store_cert c1, c2;
    struct problems p;
    unsigned char d1[40], d2[40];
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca1"), id1 = 0, id2 = 0;

    fake_cert(&c1, ca, 0x21, d1, sizeof(d1));
    fake_cert(&c2, ca, 0x22, d2, sizeof(d2));
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_cert_insert(tx, &c1, &id1), STORE_OK);
    assert_int_equal(store_cert_insert(tx, &c2, &id2), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    revoke_with_event(f->st, ca, id1, &c1, 4, 1700000000);
    assert_int_equal(status_check(f->st, &p), AUDIT_OK);
    assert_int_equal(p.n, 0);

    /* un-revoked in the table */
    raw_sql(STORE_TEST_WHERE(f), "UPDATE cert SET status = 0, revoked_at = "
            "NULL, reason = NULL WHERE serial = (SELECT serial FROM cert "
            "WHERE status = 1)");
    assert_int_equal(verify(f->st), 0);
    assert_int_equal(status_check(f->st, &p), AUDIT_TAMPERED);
    assert_int_equal(p.n, 1);
    assert_non_null(strstr(p.last, "valid in the store"));
    /* put back, then revoke the other one directly: no event */
    {
        char sql[160];

        snprintf(sql, sizeof(sql), "UPDATE cert SET status = 1, revoked_at = "
                 "1700000000, reason = 4 WHERE id = %lld", (long long)id1);
        raw_sql(STORE_TEST_WHERE(f), sql);
        assert_int_equal(status_check(f->st, &p), AUDIT_OK);
        snprintf(sql, sizeof(sql), "UPDATE cert SET status = 1, revoked_at = "
                 "1700000001, reason = 1 WHERE id = %lld", (long long)id2);
        raw_sql(STORE_TEST_WHERE(f), sql);
        assert_int_equal(status_check(f->st, &p), AUDIT_TAMPERED);
        assert_int_equal(p.n, 1);
        assert_non_null(strstr(p.last, "no audit event revoked it"));
        snprintf(sql, sizeof(sql), "UPDATE cert SET status = 0, revoked_at = "
                 "NULL, reason = NULL WHERE id = %lld", (long long)id2);
        raw_sql(STORE_TEST_WHERE(f), sql);
        /* the reason rewritten */
        snprintf(sql, sizeof(sql), "UPDATE cert SET reason = 1 WHERE id = "
                 "%lld", (long long)id1);
        raw_sql(STORE_TEST_WHERE(f), sql);
        assert_int_equal(status_check(f->st, &p), AUDIT_TAMPERED);
        assert_non_null(strstr(p.last, "revocation reason 1"));
        snprintf(sql, sizeof(sql), "UPDATE cert SET reason = 4 WHERE id = "
                 "%lld", (long long)id1);
        raw_sql(STORE_TEST_WHERE(f), sql);
    }
    assert_int_equal(status_check(f->st, &p), AUDIT_OK);
    /* c2 put on hold and released (cert.unhold): agrees while valid */
    revoke_with_event(f->st, ca, id2, &c2, 6, 1700000010);
    assert_int_equal(status_check(f->st, &p), AUDIT_OK);
    {
        char obj[2 * STORE_SERIAL_MAX + 1], details[160], sql[160];
        size_t i;

        for (i = 0; i < c2.serial_len; i++)
            snprintf(obj + 2 * i, 3, "%02X", c2.serial[i]);
        snprintf(details, sizeof(details), "{\"ca\":%lld,\"cert_id\":%lld,"
                 "\"reason\":8,\"time\":1700000020}", (long long)ca,
                 (long long)id2);
        assert_int_equal(store_begin(f->st, &tx), STORE_OK);
        assert_int_equal(store_cert_unrevoke(tx, id2), STORE_OK);
        assert_int_equal(store_audit_append(tx, "test", "cert.unhold", obj,
                                            details), STORE_OK);
        assert_int_equal(store_commit(tx), STORE_OK);
        assert_int_equal(status_check(f->st, &p), AUDIT_OK);
        /* revoked again in the table after the release: no event says so */
        snprintf(sql, sizeof(sql), "UPDATE cert SET status = 1, revoked_at = "
                 "1700000010, reason = 6 WHERE id = %lld", (long long)id2);
        raw_sql(STORE_TEST_WHERE(f), sql);
        assert_int_equal(status_check(f->st, &p), AUDIT_TAMPERED);
        assert_non_null(strstr(p.last, "released it from hold"));
        snprintf(sql, sizeof(sql), "UPDATE cert SET status = 0, revoked_at = "
                 "NULL, reason = NULL WHERE id = %lld", (long long)id2);
        raw_sql(STORE_TEST_WHERE(f), sql);
        assert_int_equal(status_check(f->st, &p), AUDIT_OK);
    }
    /* on hold again, then superseded for good: two events, agreed */
    revoke_with_event(f->st, ca, id2, &c2, 6, 1700000030);
    revoke_with_event(f->st, ca, id2, &c2, 4, 1700000040);
    assert_int_equal(status_check(f->st, &p), AUDIT_OK);
    assert_int_equal(p.n, 0);
    /* an event whose row is unreadable counts as a problem */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_audit_append(tx, "test", "cert.revoke", "XYZ",
                                        "{}"), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(status_check(f->st, &p), AUDIT_TAMPERED);
    assert_non_null(strstr(p.last, "without a readable serial"));
    /* the chain itself broken: reported as tampering, no status walk */
    raw_sql(STORE_TEST_WHERE(f), "UPDATE audit SET actor = 'x' WHERE seq = 1");
    assert_int_equal(status_check(f->st, &p), AUDIT_TAMPERED);
    assert_int_equal(p.n, 0);
}

struct thr_arg {
    STORE *st;
    int64_t vendor;
    int idx, n;
    int conflicts, rolled_back;
};

/* Each thread registers its own devices and audits each in the same tx;
 * all threads also race for device 1's state change. */
static void *thr_main(void *p)
{
    struct thr_arg *a = p;
    STORE_TX *tx;
    char ident[32];
    enum store_rc rc;
    int i;

    for (i = 0; i < a->n; i++) {
        snprintf(ident, sizeof(ident), "T%d-%d", a->idx, i);
        while ((rc = store_begin(a->st, &tx)) == STORE_BUSY)
            ;
        if (rc != STORE_OK)
            return (void *)1;
        if (i % 3 == 2) {
            /* a transaction that gives up: nothing of it may survive, even
             * when it shared a group commit with others */
            if (store_device_insert(tx, a->vendor, "ROLLED-BACK", NULL)
                != STORE_OK
                || store_audit_append(tx, "thread", "device.add", "rb", NULL)
                != STORE_OK) {
                store_rollback(tx);
                return (void *)1;
            }
            store_rollback(tx);
            a->rolled_back++;
            continue;
        }
        if (store_device_insert(tx, a->vendor, ident, NULL) != STORE_OK
            || store_audit_append(tx, "thread", "device.add", ident, NULL)
            != STORE_OK) {
            store_rollback(tx);
            return (void *)1;
        }
        rc = store_device_set_state(tx, 1, STORE_DEV_REGISTERED,
                                    STORE_DEV_PENDING, STORE_KEEP_CERT);
        if (rc == STORE_CONFLICT)
            a->conflicts++;
        else if (rc != STORE_OK) {
            store_rollback(tx);
            return (void *)1;
        }
        if (store_commit(tx) != STORE_OK)
            return (void *)1;
    }
    return NULL;
}

/* Returns the number of transactions committed. */
static int run_threads(STORE *st1, STORE *st2, int64_t vendor, int nthr,
                       int per)
{
    pthread_t th[8];
    struct thr_arg args[8];
    int i, conflicts = 0, rolled = 0;
    void *r;

    for (i = 0; i < nthr; i++) {
        args[i] = (struct thr_arg){ i % 2 ? st2 : st1, vendor, i, per, 0, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
    }
    for (i = 0; i < nthr; i++) {
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
        conflicts += args[i].conflicts;
        rolled += args[i].rolled_back;
    }
    /* exactly one transaction won the race for device 1 */
    assert_int_equal(conflicts, nthr * per - rolled - 1);
    return nthr * per - rolled;
}

static void test_threads_and_two_handles(void **state)
{
    struct fx *f = *state;
    struct store_device_filter flt;
    STORE *st2 = open_store(STORE_TEST_WHERE(f));
    STORE_TX *tx;
    int64_t v = add_vendor(f->st, "acme"), n = 0, nrows = 0, last = 0;
    int committed;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "RACE", NULL), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    /* the second handle (like a second process) sees the commit */
    assert_int_equal(store_begin_read(st2, &tx), STORE_OK);
    store_device_filter_init(&flt);
    assert_int_equal(store_device_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_rollback(tx);

    committed = run_threads(f->st, st2, v, 8, 60);
    assert_int_equal(committed, 8 * 40);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_count(tx, &flt, &n), STORE_OK);
    assert_int_equal(n, 1 + committed);
    assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
    assert_int_equal(nrows, committed);
    assert_int_equal(last, committed);
    {
        struct store_device *d = NULL;

        assert_int_equal(store_device_get_by_ident(tx, v, "ROLLED-BACK", &d),
                         STORE_NOTFOUND);
    }
    store_rollback(tx);
    assert_int_equal(verify(st2), 0);
    store_close(st2);
}

/* One enrollment-like write transaction; returns the commit outcome. */
static enum store_rc fault_enroll(STORE *st, int64_t ca, int64_t dev, int i)
{
    struct store_cert c;
    struct store_cmp_txn t;
    unsigned char der[48];
    STORE_TX *tx = NULL;
    int64_t cid = 0;
    enum store_rc rc;

    fake_cert(&c, ca, (unsigned char)i, der, sizeof(der));
    memset(&t, 0, sizeof(t));
    t.tid[0] = (unsigned char)i;
    t.tid_len = 1;
    t.type = STORE_CMP_IR;
    t.state = STORE_CMP_WAITING_CONFIRM;
    if ((rc = store_begin(st, &tx)) != STORE_OK)
        return rc;
    if ((rc = store_device_set_state(tx, dev, STORE_DEV_REGISTERED,
                                     STORE_DEV_PENDING, STORE_KEEP_CERT))
        != STORE_OK
        || (rc = store_cert_insert(tx, &c, &cid)) != STORE_OK
        || (rc = store_cmp_txn_insert(tx, &t)) != STORE_OK
        || (rc = store_audit_append(tx, "test", "cert.issue", "x", NULL))
        != STORE_OK) {
        store_rollback(tx);
        return rc;
    }
    return store_commit(tx);
}

/* Fails each statement of the transaction in turn: each time, either all
 * of it is durable or none of it, and the audit chain stays intact. */
static void test_fault_atomic(void **state)
{
    struct fx *f = *state;
    struct store_cert_filter cf;
    struct store_device *d = NULL;
    STORE_TX *tx;
    int64_t ca = add_ca(f->st, "ca"), v = add_vendor(f->st, "acme");
    int64_t dev = 0, ncert = 0, nrows = 0, last = 0, expect = 0;
    enum store_rc rc;
    int n, failures = 0;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "D", &dev), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    store_cert_filter_init(&cf);
    for (n = 1; n <= 12; n++) {
        STORE_TEST_FAULT(n);
        rc = fault_enroll(f->st, ca, dev, n);
        STORE_TEST_FAULT(0);
        if (rc == STORE_OK)
            expect++;
        else
            failures++;
        assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
        assert_int_equal(store_cert_count(tx, &cf, &ncert), STORE_OK);
        assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
        assert_int_equal(store_device_get(tx, dev, &d), STORE_OK);
        assert_int_equal(ncert, expect);
        assert_int_equal(nrows, expect);
        assert_int_equal(d->state, rc == STORE_OK ? STORE_DEV_PENDING
                                                  : STORE_DEV_REGISTERED);
        store_device_free(d);
        store_rollback(tx);
        assert_int_equal(verify(f->st), 0);
        if (rc == STORE_OK) {
            assert_int_equal(store_begin(f->st, &tx), STORE_OK);
            assert_int_equal(store_device_set_state(tx, dev,
                                                    STORE_DEV_PENDING,
                                                    STORE_DEV_REGISTERED,
                                                    STORE_KEEP_CERT),
                             STORE_OK);
            assert_int_equal(store_commit(tx), STORE_OK);
        }
    }
    /* each statement of the transaction (BEGIN .. COMMIT) failed once */
    assert_true(failures >= STORE_TEST_TXN_STATEMENTS);
}

struct fthr {
    STORE *st;
    int64_t vendor;
    int idx;
};

/* Each transaction adds device "F<t>-<i>" and an audit row naming it. */
static void *fault_thread(void *p)
{
    struct fthr *a = p;
    STORE_TX *tx;
    char id[32];
    int i;

    for (i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "F%d-%d", a->idx, i);
        if (store_begin(a->st, &tx) != STORE_OK)
            continue;
        if (store_device_insert(tx, a->vendor, id, NULL) != STORE_OK
            || store_audit_append(tx, "t", "device.add", id, NULL)
            != STORE_OK) {
            store_rollback(tx);
            continue;
        }
        store_commit(tx);
    }
    return NULL;
}

/* Faults while threads share group commits: every device that exists has
 * its audit row and the reverse, whatever failed. */
static void test_fault_group_commit(void **state)
{
    struct fx *f = *state;
    struct store_device_filter df;
    struct store_device **devs = NULL;
    struct store_audit_row **rows = NULL;
    struct fthr a[4];
    pthread_t th[4];
    STORE_TX *tx;
    size_t nd = 0, nr = 0, i, k;
    int64_t v = add_vendor(f->st, "acme");
    int round, t, found;

    for (round = 1; round <= 30; round += 3) {
        STORE_TEST_FAULT(round * 7);
        for (t = 0; t < 4; t++) {
            a[t] = (struct fthr){ f->st, v, round * 10 + t };
            assert_int_equal(pthread_create(&th[t], NULL, fault_thread,
                                            &a[t]), 0);
        }
        for (t = 0; t < 4; t++)
            pthread_join(th[t], NULL);
        STORE_TEST_FAULT(0);
    }
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    store_device_filter_init(&df);
    assert_int_equal(store_device_list(tx, &df, &devs, &nd), STORE_OK);
    assert_int_equal(store_audit_list(tx, 0, &rows, &nr), STORE_OK);
    assert_int_equal(nd, nr);
    assert_true(nd < 10 * 4 * 40);       /* some did fail */
    for (i = 0; i < nd; i++) {
        found = 0;
        for (k = 0; k < nr && !found; k++)
            found = strcmp(rows[k]->object, devs[i]->identifier) == 0;
        assert_true(found);
    }
    store_device_list_free(devs, nd);
    store_audit_row_list_free(rows, nr);
    store_rollback(tx);
    assert_int_equal(verify(f->st), 0);
}

/* Two real processes (fork) append to one file at the same time: the
 * chain stays intact and nothing is lost. */
static void test_two_processes(void **state)
{
    struct fx *f = *state;
    struct store_device_filter df;
    STORE_TX *tx;
    pid_t pid[2];
    int64_t v = add_vendor(f->st, "acme"), n = 0, nrows = 0, last = 0;
    int p, status;

    for (p = 0; p < 2; p++) {
        pid[p] = fork();
        assert_true(pid[p] >= 0);
        if (pid[p] == 0) {
            STORE *st = open_store(STORE_TEST_WHERE(f));
            char id[32];
            int i, bad = 0;

            for (i = 0; i < 150; i++) {
                snprintf(id, sizeof(id), "P%d-%d", p, i);
                if (store_begin(st, &tx) != STORE_OK) {
                    bad++;
                    continue;
                }
                if (store_device_insert(tx, v, id, NULL) != STORE_OK
                    || store_audit_append(tx, "proc", "device.add", id, NULL)
                    != STORE_OK) {
                    store_rollback(tx);
                    bad++;
                    continue;
                }
                if (store_commit(tx) != STORE_OK)
                    bad++;
            }
            store_close(st);
            _exit(bad == 0 ? 0 : 1);
        }
    }
    for (p = 0; p < 2; p++) {
        assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    store_device_filter_init(&df);
    assert_int_equal(store_device_count(tx, &df, &n), STORE_OK);
    assert_int_equal(n, 300);
    assert_int_equal(store_audit_count(tx, &nrows, &last), STORE_OK);
    assert_int_equal(nrows, 300);
    store_rollback(tx);
    assert_int_equal(verify(f->st), 0);
}

/* Requests held for approval: insert, duplicate, decisions are
 * conditional, list filters, expiry listing. */
static void test_pending(void **state)
{
    struct fx *f = *state;
    static unsigned char req[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
    static unsigned char vend[] = { 0x30, 0x03, 0x02, 0x01, 0x02 };
    struct store_pending p, *got = NULL, **v = NULL;
    struct store_pending_filter flt;
    STORE_TX *tx;
    size_t n = 0;

    memset(&p, 0, sizeof(p));
    memset(p.tid, 0xa1, 16);
    p.tid_len = 16;
    p.alias = "lab";
    p.type = STORE_CMP_IR;
    p.state = STORE_PENDING_PENDING;
    p.requester = "cmp:lab:dev1";
    p.device = "dev1";
    p.profile = "default";
    p.subject = "CN=dev1";
    p.request = req;
    p.request_len = sizeof(req);
    p.vendor_cert = vend;
    p.vendor_cert_len = sizeof(vend);
    p.created = 1000;
    p.expires = 2000;
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_pending_insert(tx, &p), STORE_OK);
    assert_int_equal(store_pending_insert(tx, &p), STORE_EXISTS);
    memset(p.tid, 0xb2, 16);
    p.alias = "other";
    p.vendor_cert = NULL;
    p.vendor_cert_len = 0;
    p.created = 1001;
    p.expires = 5000;
    assert_int_equal(store_pending_insert(tx, &p), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    memset(p.tid, 0xa1, 16);
    assert_int_equal(store_pending_get(tx, p.tid, 16, &got), STORE_OK);
    assert_string_equal(got->alias, "lab");
    assert_string_equal(got->requester, "cmp:lab:dev1");
    assert_string_equal(got->subject, "CN=dev1");
    assert_int_equal(got->request_len, sizeof(req));
    assert_memory_equal(got->request, req, sizeof(req));
    assert_int_equal(got->vendor_cert_len, sizeof(vend));
    assert_int_equal(got->state, STORE_PENDING_PENDING);
    assert_int_equal(got->expires, 2000);
    assert_null(got->decided_by);
    store_pending_free(got);
    got = NULL;
    memset(&flt, 0, sizeof(flt));
    flt.state = -1;
    assert_int_equal(store_pending_list(tx, &flt, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0]->alias, "lab");        /* oldest first */
    store_pending_list_free(v, n);
    flt.alias = "other";
    assert_int_equal(store_pending_list(tx, &flt, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_null(v[0]->vendor_cert);
    store_pending_list_free(v, n);
    assert_int_equal(store_pending_list_expired(tx, 3000, 10, &v, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0]->alias, "lab");
    store_pending_list_free(v, n);
    store_rollback(tx);

    /* a decision is conditional on the state */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_pending_set_state(tx, p.tid, 16,
                                             STORE_PENDING_PENDING,
                                             STORE_PENDING_REJECTED,
                                             "cli:op", "not ours"), STORE_OK);
    assert_int_equal(store_pending_set_state(tx, p.tid, 16,
                                             STORE_PENDING_PENDING,
                                             STORE_PENDING_APPROVED,
                                             "cli:op", NULL), STORE_CONFLICT);
    memset(p.tid, 0xc3, 16);
    assert_int_equal(store_pending_set_state(tx, p.tid, 16,
                                             STORE_PENDING_PENDING,
                                             STORE_PENDING_APPROVED,
                                             "cli:op", NULL), STORE_NOTFOUND);
    memset(p.tid, 0xb2, 16);
    assert_int_equal(store_pending_set_state(tx, p.tid, 16,
                                             STORE_PENDING_PENDING,
                                             STORE_PENDING_APPROVED,
                                             "cli:op", NULL), STORE_OK);
    /* delivery keeps who decided and when */
    assert_int_equal(store_pending_set_state(tx, p.tid, 16,
                                             STORE_PENDING_APPROVED,
                                             STORE_PENDING_DELIVERED,
                                             NULL, NULL), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_pending_get(tx, p.tid, 16, &got), STORE_OK);
    assert_int_equal(got->state, STORE_PENDING_DELIVERED);
    assert_string_equal(got->decided_by, "cli:op");
    assert_true(got->decided_at > 0);
    assert_null(got->reason);
    store_pending_free(got);
    memset(p.tid, 0xa1, 16);
    assert_int_equal(store_pending_get(tx, p.tid, 16, &got), STORE_OK);
    assert_int_equal(got->state, STORE_PENDING_REJECTED);
    assert_string_equal(got->reason, "not ours");
    store_pending_free(got);
    /* decided rows are not listed as expired */
    assert_int_equal(store_pending_list_expired(tx, 9000, 10, &v, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    flt.alias = NULL;
    flt.state = STORE_PENDING_REJECTED;
    assert_int_equal(store_pending_list(tx, &flt, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_pending_list_free(v, n);
    store_rollback(tx);
    /* finished rows are purged, undecided ones never */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    {
        int64_t k = -1;

        assert_int_equal(store_pending_purge(tx, INT64_MAX, &k), STORE_OK);
        assert_int_equal(k, 2);
    }
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    flt.state = -1;
    assert_int_equal(store_pending_list(tx, &flt, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_rollback(tx);
    assert_int_equal(store_pending_state_find("delivered"),
                     STORE_PENDING_DELIVERED);
    assert_int_equal(store_pending_state_find("nope"), -1);
}

/* Root CA key rollovers: insert (the CA must exist), list by CA and all,
 * oldest first, every field back as stored. */
static void test_rollover_roundtrip(void **state)
{
    struct fx *f = *state;
    struct store_rollover r, **v = NULL;
    unsigned char nwn[] = { 0x30, 0x01, 0x01 }, nwo[] = { 0x30, 0x01, 0x02 },
        own[] = { 0x30, 0x02, 0x03, 0x03 };
    STORE_TX *tx;
    size_t n = 0;
    int64_t ca = add_ca(f->st, "root"), id1 = 0, id2 = 0;

    memset(&r, 0, sizeof(r));
    r.ca_id = ca;
    memset(r.old_sha256, 0x11, 32);
    memset(r.new_sha256, 0x22, 32);
    r.new_with_new.der = nwn;
    r.new_with_new.len = sizeof(nwn);
    r.new_with_old.der = nwo;
    r.new_with_old.len = sizeof(nwo);
    r.old_with_new.der = own;
    r.old_with_new.len = sizeof(own);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_rollover_insert(tx, &r, &id1), STORE_OK);
    memset(r.old_sha256, 0x22, 32);
    memset(r.new_sha256, 0x33, 32);
    r.created = 4242;
    assert_int_equal(store_rollover_insert(tx, &r, &id2), STORE_OK);
    r.ca_id = 987654;
    assert_int_equal(store_rollover_insert(tx, &r, NULL), STORE_NOTFOUND);
    r.ca_id = ca;
    r.old_with_new.len = 0;
    assert_int_equal(store_rollover_insert(tx, &r, NULL), STORE_ERROR);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_true(id1 > 0 && id2 > id1);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_rollover_list(tx, ca, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0]->id, id1);
    assert_int_equal(v[1]->id, id2);
    assert_int_equal(v[0]->ca_id, ca);
    assert_true(v[0]->created > 0);
    assert_int_equal(v[1]->created, 4242);
    assert_int_equal(v[0]->old_sha256[0], 0x11);
    assert_int_equal(v[1]->new_sha256[31], 0x33);
    assert_int_equal(v[0]->new_with_new.len, sizeof(nwn));
    assert_memory_equal(v[0]->new_with_old.der, nwo, sizeof(nwo));
    assert_memory_equal(v[1]->old_with_new.der, own, sizeof(own));
    store_rollover_list_free(v, n);
    assert_int_equal(store_rollover_list(tx, 0, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_rollover_list_free(v, n);
    assert_int_equal(store_rollover_list(tx, ca + 1000, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_rollover_list_free(v, n);
    store_rollback(tx);
}

/* Stored replies: put and get by request hash, the first reply kept,
 * purge by age. */
static void test_txn_reply(void **state)
{
    struct fx *f = *state;
    unsigned char tid[4] = { 1, 2, 3, 4 }, r1[3] = { 0x30, 0x01, 0x01 };
    unsigned char r2[3] = { 0x30, 0x01, 0x02 };
    struct store_txn_reply r, *got = NULL;
    STORE_TX *tx;
    int64_t n = 0;

    memset(&r, 0, sizeof(r));
    memset(r.req_sha256, 0xab, sizeof(r.req_sha256));
    r.alias = "up";
    r.tid = tid;
    r.tid_len = sizeof(tid);
    r.upstream = 1;
    r.http_status = 200;
    r.created = 1000;
    r.reply = r1;
    r.reply_len = sizeof(r1);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_txn_reply_put(tx, &r), STORE_OK);
    r.reply = r2;               /* a second answer to the same request */
    assert_int_equal(store_txn_reply_put(tx, &r), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_txn_reply_get(tx, r.req_sha256, &got), STORE_OK);
    assert_string_equal(got->alias, "up");
    assert_int_equal(got->reply_len, sizeof(r1));
    assert_memory_equal(got->reply, r1, sizeof(r1));   /* the first kept */
    assert_memory_equal(got->tid, tid, sizeof(tid));
    assert_int_equal(got->upstream, 1);
    assert_int_equal(got->http_status, 200);
    assert_int_equal(got->created, 1000);
    store_txn_reply_free(got);
    got = NULL;
    memset(r.req_sha256, 0xcd, sizeof(r.req_sha256));
    assert_int_equal(store_txn_reply_get(tx, r.req_sha256, &got), STORE_NOTFOUND);
    assert_null(got);
    store_rollback(tx);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_txn_reply_purge(tx, 1001, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* Device secrets (mac mode): put/replace, one device per reference,
 * failure count and lock, unlock, consumed once, gone with the device. */
static void test_device_secret(void **state)
{
    struct fx *f = *state;
    struct store_device_secret *s = NULL;
    static const unsigned char blob1[] = { 1, 2, 3, 4 }, blob2[] = { 9, 8 };
    STORE_TX *tx;
    int64_t v = add_vendor(f->st, "acme"), d1 = 0, d2 = 0;
    int failures, locked;

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "SN1", &d1), STORE_OK);
    assert_int_equal(store_device_insert(tx, v, "SN2", &d2), STORE_OK);
    assert_int_equal(store_device_secret_put(tx, d1, "ref-1", blob1,
                                             sizeof(blob1)), STORE_OK);
    assert_int_equal(store_device_secret_put(tx, d2, "ref-1", blob2,
                                             sizeof(blob2)), STORE_EXISTS);
    assert_int_equal(store_device_secret_put(tx, 4242, "ref-x", blob2,
                                             sizeof(blob2)), STORE_NOTFOUND);
    assert_int_equal(store_device_secret_put(tx, d2, "", blob2, sizeof(blob2)),
                     STORE_ERROR);
    assert_int_equal(store_device_secret_put(tx, d2, "ref-2", blob2,
                                             sizeof(blob2)), STORE_OK);
    /* wrong MACs: counted, locked at the third */
    assert_int_equal(store_device_secret_fail(tx, d1, 3, &failures, &locked),
                     STORE_OK);
    assert_int_equal(failures, 1);
    assert_int_equal(locked, 0);
    assert_int_equal(store_device_secret_fail(tx, d1, 3, &failures, &locked),
                     STORE_OK);
    assert_int_equal(store_device_secret_fail(tx, d1, 3, &failures, &locked),
                     STORE_OK);
    assert_int_equal(failures, 3);
    assert_int_equal(locked, 1);
    assert_int_equal(store_device_secret_fail(tx, 4242, 3, &failures, &locked),
                     STORE_NOTFOUND);
    assert_int_equal(store_commit(tx), STORE_OK);

    assert_int_equal(store_begin_read(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_secret_get(tx, 0, "ref-1", &s), STORE_OK);
    assert_int_equal(s->device_id, d1);
    assert_string_equal(s->ref, "ref-1");
    assert_int_equal(s->sealed_len, sizeof(blob1));
    assert_memory_equal(s->sealed, blob1, sizeof(blob1));
    assert_int_equal(s->failures, 3);
    assert_int_equal(s->locked, 1);
    assert_int_equal(s->consumed, 0);
    store_device_secret_free(s);
    s = NULL;
    assert_int_equal(store_device_secret_get(tx, d2, NULL, &s), STORE_OK);
    assert_string_equal(s->ref, "ref-2");
    store_device_secret_free(s);
    s = NULL;
    assert_int_equal(store_device_secret_get(tx, 0, "nope", &s),
                     STORE_NOTFOUND);
    assert_null(s);
    /* writes are refused in a read transaction */
    assert_int_equal(store_device_secret_set(tx, d1, STORE_SECRET_UNLOCK),
                     STORE_ERROR);
    store_rollback(tx);

    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_device_secret_set(tx, d1, STORE_SECRET_UNLOCK),
                     STORE_OK);
    assert_int_equal(store_device_secret_set(tx, d1, STORE_SECRET_CONSUME),
                     STORE_OK);
    assert_int_equal(store_device_secret_set(tx, d1, STORE_SECRET_CONSUME),
                     STORE_CONFLICT);
    assert_int_equal(store_device_secret_get(tx, d1, NULL, &s), STORE_OK);
    assert_int_equal(s->failures, 0);
    assert_int_equal(s->locked, 0);
    assert_int_equal(s->consumed, 1);
    store_device_secret_free(s);
    s = NULL;
    /* a new secret: counters reset, reference changed */
    assert_int_equal(store_device_secret_put(tx, d1, "ref-1b", blob2,
                                             sizeof(blob2)), STORE_OK);
    assert_int_equal(store_device_secret_get(tx, 0, "ref-1", &s),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_secret_get(tx, 0, "ref-1b", &s), STORE_OK);
    assert_int_equal(s->consumed, 0);
    store_device_secret_free(s);
    s = NULL;
    /* gone with its device */
    assert_int_equal(store_device_delete(tx, d2), STORE_OK);
    assert_int_equal(store_device_secret_get(tx, 0, "ref-2", &s),
                     STORE_NOTFOUND);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* Delayed delivery: a held (waiting) transaction counts toward its
 * requester's outstanding enrollments, and a decided request whose
 * transaction still waits is listed as stale approval_timeout after the
 * decision, until the transaction moves on. */
static void test_pending_stale(void **state)
{
    struct fx *f = *state;
    struct store_cmp_txn t;
    struct store_pending p, **list = NULL;
    unsigned char req[3] = { 0x30, 0x01, 0x05 };
    int64_t waiting = -1, recent = -1, now = (int64_t)time(NULL);
    STORE_TX *tx = NULL;
    size_t n = 9;

    memset(&t, 0, sizeof(t));
    memset(t.tid, 0xab, 16);
    t.tid_len = 16;
    t.alias = "lab";
    t.type = STORE_CMP_IR;
    t.state = STORE_CMP_WAITING;
    t.created = t.updated = now;
    memset(t.requester_sha256, 0x11, 32);
    t.has_requester = 1;
    memset(&p, 0, sizeof(p));
    memcpy(p.tid, t.tid, 16);
    p.tid_len = 16;
    p.alias = "lab";
    p.type = STORE_CMP_IR;
    p.state = STORE_PENDING_PENDING;
    p.requester = "cmp:lab:dev";
    p.request = req;
    p.request_len = sizeof(req);
    p.created = now;
    p.expires = now + 10;               /* approval_timeout 10 s */
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_cmp_txn_insert(tx, &t), STORE_OK);
    assert_int_equal(store_pending_insert(tx, &p), STORE_OK);
    assert_int_equal(store_cmp_txn_count_requester(tx, t.requester_sha256, 0,
                                                   &waiting, &recent),
                     STORE_OK);
    assert_int_equal(waiting, 1);
    assert_int_equal(store_pending_list_stale(tx, now + 100, 0, &list, &n),
                     STORE_OK);
    assert_int_equal(n, 0);             /* undecided: not stale */
    assert_int_equal(store_pending_set_state(tx, p.tid, p.tid_len,
                                             STORE_PENDING_PENDING,
                                             STORE_PENDING_APPROVED,
                                             "cli:test", NULL), STORE_OK);
    assert_int_equal(store_commit(tx), STORE_OK);
    assert_int_equal(store_begin(f->st, &tx), STORE_OK);
    assert_int_equal(store_pending_list_stale(tx, now + 1, 0, &list, &n),
                     STORE_OK);
    assert_int_equal(n, 0);             /* decided just now */
    assert_int_equal(store_pending_list_stale(tx, now + 12, 0, &list, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0]->state, STORE_PENDING_APPROVED);
    store_pending_list_free(list, n);
    assert_int_equal(store_cmp_txn_set_state(tx, t.tid, t.tid_len,
                                             STORE_CMP_WAITING,
                                             STORE_CMP_EXPIRED), STORE_OK);
    assert_int_equal(store_pending_list_stale(tx, now + 12, 0, &list, &n),
                     STORE_OK);
    assert_int_equal(n, 0);             /* the transaction moved on */
    assert_int_equal(store_cmp_txn_count_requester(tx, t.requester_sha256, 0,
                                                   &waiting, &recent),
                     STORE_OK);
    assert_int_equal(waiting, 0);
    assert_int_equal(store_commit(tx), STORE_OK);
}

/* The shared tests, for the including program's test array (with its own
 * setup/teardown). */
#define STORE_COMMON_TESTS \
    cmocka_unit_test_setup_teardown(test_txn_reply, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_rollover_roundtrip, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_ca_roundtrip, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_cert_unique, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_cert_vendor_expiry, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_cert_revoke_crl, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_cert_hold, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_device_states, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_device_secret, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_import_all_or_nothing, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_ra, setup, teardown), \
    cmocka_unit_test(test_ra_ops), \
    cmocka_unit_test_setup_teardown(test_cmp_txn, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_cmp_txn_count_requester, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_pending, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_pending_stale, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_cert_expired_kept, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_modify, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_delete, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_delete_tail, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_reorder, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_insert, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_anchors, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_audit_status, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_threads_and_two_handles, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_fault_atomic, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_fault_group_commit, setup, teardown)
