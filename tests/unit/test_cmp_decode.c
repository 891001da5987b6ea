/*
 * cmp_msg_decode against real OpenSSL 3.0 messages (tests/vectors/, made by
 * gen.sh) and against every malformed-input class: round trips, refusal
 * reasons with their failInfo bits, byte-flip tampering, fuzz regressions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmp/cmp_build.h"
#include "cmp/cmp_der.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"
#include "cmp_testpki.h"
#include "testutil.h"

#include <dirent.h>
#include <glob.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PBM_SECRET "cmpca-test-secret"

static const char *vec_dir(void)
{
    const char *d = getenv("CMPCA_VECTORS");

    return d != NULL && *d != '\0' ? d : "tests/vectors";
}

static unsigned char *vec_read(const char *name, size_t *len)
{
    char path[512];
    unsigned char *buf;

    snprintf(path, sizeof(path), "%s/%s", vec_dir(), name);
    buf = testutil_read_file(path, len);
    if (buf == NULL)
        fail_msg("cannot read %s (run from the repo root or set CMPCA_VECTORS)",
                 path);
    return buf;
}

static X509 *vec_cert(const char *name)
{
    char path[512];
    X509 *c;

    snprintf(path, sizeof(path), "%s/pki/%s", vec_dir(), name);
    c = cmp_testpki_read_cert(path);
    if (c == NULL)
        fail_msg("cannot read %s", path);
    return c;
}

/* Decodes |der| and expects |want|; returns the message (or NULL). */
static CMP_MSG *expect_decode(const unsigned char *der, size_t len,
                              const struct cmp_limits *lim,
                              enum cmp_reason want)
{
    CMP_MSG *msg = (CMP_MSG *)1;
    enum cmp_reason r = cmp_msg_decode(der, len, lim, &msg);

    if (r != want)
        fail_msg("decode: got %d (%s), want %d (%s)", r, cmp_reason_text(r),
                 want, cmp_reason_text(want));
    if (r != CMP_R_OK)
        assert_null(msg);
    else
        assert_non_null(msg);
    return msg;
}

static void expect_bit(enum cmp_reason r, int bit)
{
    assert_int_equal(cmp_reason_fail_bit(r), bit);
}

/* ---- a tiny DER walker/splicer for crafting BER and malformed input ---- */

/* Parses a definite-length TLV at |p| (|avail| bytes). Returns 1 and the
 * header and content lengths, 0 if not parseable. */
static int tlv(const unsigned char *p, size_t avail, size_t *hl, size_t *cl)
{
    size_t n, i, l = 0;

    if (avail < 2 || (p[0] & 0x1f) == 0x1f)
        return 0;
    if (p[1] < 0x80) {
        *hl = 2;
        *cl = p[1];
    } else {
        n = p[1] & 0x7f;
        if (n == 0 || n > 4 || avail < 2 + n)
            return 0;
        for (i = 0; i < n; i++)
            l = (l << 8) | p[2 + i];
        *hl = 2 + n;
        *cl = l;
    }
    return *hl + *cl <= avail;
}

/* Finds, following |tags| (at each level the first child with that
 * identifier octet under which the rest of the path exists, starting with
 * the whole input), the offset and total length of the TLV. Returns 1 if
 * found. */
static int der_find_in(const unsigned char *der, size_t pos, size_t end,
                       const int *tags, int ntags, size_t *off, size_t *tlen)
{
    size_t hl, cl;

    for (; pos < end; pos += hl + cl) {
        if (!tlv(der + pos, end - pos, &hl, &cl))
            return 0;
        if (der[pos] != tags[0])
            continue;
        if (ntags == 1) {
            *off = pos;
            *tlen = hl + cl;
            return 1;
        }
        if ((der[pos] & 0x20)
            && der_find_in(der, pos + hl, pos + hl + cl, tags + 1, ntags - 1,
                           off, tlen))
            return 1;
    }
    return 0;
}

static int der_find(const unsigned char *der, size_t len, const int *tags,
                    int ntags, size_t *off, size_t *tlen)
{
    return der_find_in(der, 0, len, tags, ntags, off, tlen);
}

static size_t put_len(unsigned char *out, size_t l)
{
    if (l < 0x80) {
        out[0] = (unsigned char)l;
        return 1;
    }
    if (l < 0x100) {
        out[0] = 0x81;
        out[1] = (unsigned char)l;
        return 2;
    }
    if (l < 0x10000) {
        out[0] = 0x82;
        out[1] = (unsigned char)(l >> 8);
        out[2] = (unsigned char)l;
        return 3;
    }
    out[0] = 0x83;
    out[1] = (unsigned char)(l >> 16);
    out[2] = (unsigned char)(l >> 8);
    out[3] = (unsigned char)l;
    return 4;
}

/* Rebuilds the TLV at |p| replacing the sub-range [t_off, t_off+t_len)
 * (offsets relative to |base|) by |rep|, fixing the lengths of all TLVs
 * that contain it. Writes to |out| (big enough), returns bytes written. */
static size_t splice_tlv(const unsigned char *base, size_t pos, size_t avail,
                         size_t t_off, size_t t_len, const unsigned char *rep,
                         size_t rep_len, unsigned char *out)
{
    size_t hl, cl, o = 0, c, n;
    unsigned char *tmp;

    assert_true(tlv(base + pos, avail, &hl, &cl));
    if (pos == t_off && hl + cl == t_len) {
        memcpy(out, rep, rep_len);
        return rep_len;
    }
    if (t_off < pos || t_off + t_len > pos + hl + cl || !(base[pos] & 0x20)) {
        memcpy(out, base + pos, hl + cl);
        return hl + cl;
    }
    tmp = malloc(cl + rep_len + 16);
    assert_non_null(tmp);
    for (c = pos + hl; c < pos + hl + cl; ) {
        size_t chl, ccl;

        assert_true(tlv(base + c, pos + hl + cl - c, &chl, &ccl));
        o += splice_tlv(base, c, chl + ccl, t_off, t_len, rep, rep_len, tmp + o);
        c += chl + ccl;
    }
    out[0] = base[pos];
    n = 1 + put_len(out + 1, o);
    memcpy(out + n, tmp, o);
    free(tmp);
    return n + o;
}

/* Returns a new buffer: |der| with the TLV found by |tags| replaced. */
static unsigned char *der_replace(const unsigned char *der, size_t len,
                                  const int *tags, int ntags,
                                  const unsigned char *rep, size_t rep_len,
                                  size_t *out_len)
{
    size_t off, tl;
    unsigned char *out = malloc(len + rep_len + 64);

    assert_non_null(out);
    assert_true(der_find(der, len, tags, ntags, &off, &tl));
    *out_len = splice_tlv(der, 0, len, off, tl, rep, rep_len, out);
    return out;
}

/* ---- vectors: round trip ---- */

static int vec_glob(glob_t *g)
{
    char pat[512];

    snprintf(pat, sizeof(pat), "%s/*.der", vec_dir());
    return glob(pat, 0, NULL, g) == 0 ? (int)g->gl_pathc : 0;
}

/* "<proto>_<cmd>_(req|rsp)<n>_<type>.der" -> type */
static void vec_type(const char *path, char *type, size_t n)
{
    const char *u = strrchr(path, '_');
    size_t l;

    assert_non_null(u);
    l = strcspn(u + 1, ".");
    assert_true(l < n);
    memcpy(type, u + 1, l);
    type[l] = '\0';
}

static void test_vectors_round_trip(void **state)
{
    static const char *const need[] = {
        "ir", "ip", "cr", "cp", "p10cr", "kur", "kup", "rr", "rp", "genm",
        "genp", "certConf", "pkiConf", "error", "pollReq", "pollRep"
    };
    int seen[sizeof(need) / sizeof(need[0])] = { 0 };
    X509 *root = vec_cert("root.pem");
    X509_STORE *store = X509_STORE_new();
    glob_t g;
    int n, i, sig = 0, mac = 0;
    size_t k;

    assert_non_null(store);
    assert_true(X509_STORE_add_cert(store, root));
    n = vec_glob(&g);
    assert_true(n >= 40);
    for (i = 0; i < n; i++) {
        const char *path = g.gl_pathv[i];
        const char *base = strrchr(path, '/') + 1;
        unsigned char *der, *re = NULL;
        size_t len, relen;
        char type[32];
        CMP_MSG *msg;
        X509 *signer = NULL;
        enum cmp_reason r;

        der = testutil_read_file(path, &len);
        assert_non_null(der);
        msg = expect_decode(der, len, NULL, CMP_R_OK);
        assert_true(cmp_msg_encode(msg, &re, &relen));
        if (relen != len || memcmp(re, der, len) != 0)
            fail_msg("%s: re-encoding differs", base);
        vec_type(path, type, sizeof(type));
        if (strcasecmp(type, cmp_body_type_name(msg->body->type)) != 0)
            fail_msg("%s: body is %s", base,
                     cmp_body_type_name(msg->body->type));
        for (k = 0; k < sizeof(need) / sizeof(need[0]); k++)
            if (strcmp(need[k], type) == 0)
                seen[k] = 1;
        /* requests pass the header check (time window off: old vectors) */
        if (strstr(base, "_req") != NULL) {
            r = cmp_hdr_check_request(msg->header, time(NULL), 0);
            if (r != CMP_R_OK)
                fail_msg("%s: header check %s", base, cmp_reason_text(r));
        }
        if (strncmp(base, "pbm_", 4) == 0) {
            assert_true(cmp_protect_is_mac(msg));
            r = cmp_protect_verify_mac(msg, (const unsigned char *)PBM_SECRET,
                                       strlen(PBM_SECRET), NULL);
            if (r != CMP_R_OK)
                fail_msg("%s: MAC %s", base, cmp_reason_text(r));
            r = cmp_protect_verify_mac(msg, (const unsigned char *)"wrong", 5,
                                       NULL);
            assert_int_equal(r, CMP_R_BAD_MAC);
            mac++;
        } else {
            X509_STORE_CTX *vctx = X509_STORE_CTX_new();

            r = cmp_protect_find_signer(msg, &signer);
            if (r != CMP_R_OK)
                fail_msg("%s: find_signer %s", base, cmp_reason_text(r));
            r = cmp_protect_verify_sig(msg, signer);
            if (r != CMP_R_OK)
                fail_msg("%s: verify %s", base, cmp_reason_text(r));
            /* and the protecting certificate chains to the test root */
            assert_non_null(vctx);
            assert_true(X509_STORE_CTX_init(vctx, store, signer,
                                            msg->extraCerts));
            if (X509_verify_cert(vctx) <= 0)
                fail_msg("%s: signer does not chain: %s", base,
                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
            X509_STORE_CTX_free(vctx);
            sig++;
        }
        OPENSSL_free(re);
        CMP_MSG_free(msg);
        free(der);
    }
    for (k = 0; k < sizeof(need) / sizeof(need[0]); k++)
        if (!seen[k])
            fail_msg("no vector of type %s", need[k]);
    assert_true(sig > 30);
    assert_true(mac >= 6);
    globfree(&g);
    X509_STORE_free(store);
    X509_free(root);
}

/* The signature algorithms of the vectors: P-256 and RSA protection, an
 * Ed25519 POPO. Checks that each kind is really there. */
static void test_vectors_algorithms(void **state)
{
    static const struct { const char *file; int nid; } v[] = {
        { "sigec_ir_req0_ir.der", NID_ecdsa_with_SHA256 },
        { "sigec_ir_rsp0_ip.der", NID_ecdsa_with_SHA256 },
        { "sigrsa_ir_req0_ir.der", NID_sha256WithRSAEncryption },
        { "sigrsa_ir_rsp0_ip.der", NID_sha256WithRSAEncryption },
        { "pbm_ir_req0_ir.der", NID_id_PasswordBasedMAC },
        { "pbm_ir_rsp0_ip.der", NID_id_PasswordBasedMAC },
    };
    size_t i, len;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        unsigned char *der = vec_read(v[i].file, &len);
        CMP_MSG *msg = expect_decode(der, len, NULL, CMP_R_OK);

        assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm),
                         v[i].nid);
        CMP_MSG_free(msg);
        free(der);
    }
    /* the Ed25519 session's ir carries an Ed25519 POPO */
    {
        unsigned char *der = vec_read("siged_ir_req0_ir.der", &len);
        CMP_MSG *msg = expect_decode(der, len, NULL, CMP_R_OK);
        CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(msg->body->value.ir, 0);

        assert_non_null(crm->certReq->certTemplate->publicKey);
        assert_int_equal(OBJ_obj2nid(crm->certReq->certTemplate->publicKey
                                     ->algorithm->algorithm), NID_ED25519);
        CMP_MSG_free(msg);
        free(der);
    }
}

/* ---- malformed input ---- */

static void test_not_der(void **state)
{
    static const unsigned char junk[] = "hello, world";
    static const unsigned char intseq[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
    static const unsigned char octets[] = { 0x04, 0x02, 0x30, 0x00 };

    expect_decode(junk, sizeof(junk) - 1, NULL, CMP_R_NOT_DER);
    expect_decode(intseq, sizeof(intseq), NULL, CMP_R_NOT_DER);
    expect_decode(octets, sizeof(octets), NULL, CMP_R_NOT_DER);
    expect_decode(junk, 0, NULL, CMP_R_NOT_DER);
    expect_decode(junk, 1, NULL, CMP_R_NOT_DER);
    expect_decode(NULL, 0, NULL, CMP_R_NOT_DER);
    expect_bit(CMP_R_NOT_DER, CMP_FAIL_BAD_DATA_FORMAT);
}

static void test_truncated(void **state)
{
    size_t len, n;
    unsigned char *der = vec_read("sigec_ir_req0_ir.der", &len);

    /* every proper prefix is refused, never crashes */
    for (n = 0; n < len; n++) {
        CMP_MSG *msg = (CMP_MSG *)1;
        enum cmp_reason r = cmp_msg_decode(der, n, NULL, &msg);

        if (r == CMP_R_OK)
            fail_msg("prefix of %zu bytes decoded", n);
        assert_null(msg);
        assert_int_equal(cmp_reason_fail_bit(r), CMP_FAIL_BAD_DATA_FORMAT);
    }
    free(der);
}

static void test_trailing(void **state)
{
    size_t len;
    unsigned char *der = vec_read("sigec_genm_req0_genm.der", &len);
    unsigned char *big = malloc(len + 2);

    memcpy(big, der, len);
    big[len] = 0;
    big[len + 1] = 0;
    expect_decode(big, len + 1, NULL, CMP_R_TRAILING_DATA);
    expect_decode(big, len + 2, NULL, CMP_R_TRAILING_DATA);
    expect_bit(CMP_R_TRAILING_DATA, CMP_FAIL_BAD_DATA_FORMAT);
    free(big);
    free(der);
}

static void test_indefinite_outer(void **state)
{
    size_t len, hl, cl;
    unsigned char *der = vec_read("sigec_genm_req0_genm.der", &len);
    unsigned char *ber = malloc(len + 8);

    assert_true(tlv(der, len, &hl, &cl));
    ber[0] = 0x30;
    ber[1] = 0x80;
    memcpy(ber + 2, der + hl, cl);
    ber[2 + cl] = 0;
    ber[3 + cl] = 0;
    expect_decode(ber, cl + 4, NULL, CMP_R_NOT_DER);
    free(ber);
    free(der);
}

/* An inner SEQUENCE (the header) in indefinite-length form. */
static void test_indefinite_inner(void **state)
{
    static const int hdr[] = { 0x30, 0x30 };
    size_t len, off, tl, hl, cl, blen;
    unsigned char *der = vec_read("sigec_genm_req0_genm.der", &len);
    unsigned char *rep, *ber;

    assert_true(der_find(der, len, hdr, 2, &off, &tl));
    assert_true(tlv(der + off, tl, &hl, &cl));
    rep = malloc(cl + 4);
    rep[0] = 0x30;
    rep[1] = 0x80;
    memcpy(rep + 2, der + off + hl, cl);
    rep[2 + cl] = rep[3 + cl] = 0;
    ber = der_replace(der, len, hdr, 2, rep, cl + 4, &blen);
    expect_decode(ber, blen, NULL, CMP_R_NOT_CANONICAL);
    expect_bit(CMP_R_NOT_CANONICAL, CMP_FAIL_BAD_DATA_FORMAT);
    free(ber);
    free(rep);
    free(der);
}

static void test_nonminimal_length(void **state)
{
    static const int pvno[] = { 0x30, 0x30, 0x02 };
    static const unsigned char long_pvno[] = { 0x02, 0x81, 0x01, 0x02 };
    static const unsigned char padded_pvno[] = { 0x02, 0x02, 0x00, 0x02 };
    size_t len, blen, hl, cl;
    unsigned char *der = vec_read("sigec_genm_req0_genm.der", &len);
    unsigned char *ber, *big;

    ber = der_replace(der, len, pvno, 3, long_pvno, sizeof(long_pvno), &blen);
    expect_decode(ber, blen, NULL, CMP_R_NOT_CANONICAL);
    free(ber);
    /* INTEGER with a superfluous leading zero octet */
    ber = der_replace(der, len, pvno, 3, padded_pvno, sizeof(padded_pvno),
                      &blen);
    expect_decode(ber, blen, NULL, CMP_R_NOT_CANONICAL);
    free(ber);
    /* outer length in a longer form than needed */
    assert_true(tlv(der, len, &hl, &cl));
    big = malloc(cl + 6);
    big[0] = 0x30;
    big[1] = 0x84;
    big[2] = (unsigned char)(cl >> 24);
    big[3] = (unsigned char)(cl >> 16);
    big[4] = (unsigned char)(cl >> 8);
    big[5] = (unsigned char)cl;
    memcpy(big + 6, der + hl, cl);
    expect_decode(big, cl + 6, NULL, CMP_R_NOT_CANONICAL);
    expect_bit(CMP_R_NOT_CANONICAL, CMP_FAIL_BAD_DATA_FORMAT);
    free(big);
    free(der);
}

/* transactionID as a constructed OCTET STRING (BER only). */
static void test_constructed_octets(void **state)
{
    static const int tid[] = { 0x30, 0x30, 0xa4, 0x04 };
    size_t len, off, tl, hl, cl, blen, n;
    unsigned char *der = vec_read("sigec_genm_req0_genm.der", &len);
    unsigned char rep[128], *ber;

    assert_true(der_find(der, len, tid, 4, &off, &tl));
    assert_true(tlv(der + off, tl, &hl, &cl));
    assert_true(cl < 100);
    /* 24 L { 04 a .. } { 04 b .. } */
    n = 0;
    rep[n++] = 0x24;
    rep[n++] = (unsigned char)(cl + 4);
    rep[n++] = 0x04;
    rep[n++] = (unsigned char)(cl / 2);
    memcpy(rep + n, der + off + hl, cl / 2);
    n += cl / 2;
    rep[n++] = 0x04;
    rep[n++] = (unsigned char)(cl - cl / 2);
    memcpy(rep + n, der + off + hl + cl / 2, cl - cl / 2);
    n += cl - cl / 2;
    ber = der_replace(der, len, tid, 4, rep, n, &blen);
    expect_decode(ber, blen, NULL, CMP_R_NOT_CANONICAL);
    free(ber);
    free(der);
}

/* BER inside the sender Name (a long-form length in an RDN). OpenSSL
 * keeps the received bytes of a Name and re-emits them, so the template
 * re-encoding alone cannot see it; the DER walker must. */
static void test_ber_inside_name(void **state)
{
    static const int rdn[] = { 0x30, 0x30, 0xa4, 0x30, 0x31 };
    size_t len, off, tl, hl, cl, blen;
    unsigned char *der = vec_read("sigec_genm_req0_genm.der", &len);
    unsigned char *rep, *ber;

    assert_true(der_find(der, len, rdn, 5, &off, &tl));
    assert_true(tlv(der + off, tl, &hl, &cl));
    assert_true(cl < 0x80);
    rep = malloc(cl + 3);
    rep[0] = 0x31;
    rep[1] = 0x81;                       /* long form for a short length */
    rep[2] = (unsigned char)cl;
    memcpy(rep + 3, der + off + hl, cl);
    ber = der_replace(der, len, rdn, 5, rep, cl + 3, &blen);
    expect_decode(ber, blen, NULL, CMP_R_NOT_CANONICAL);
    assert_int_equal(cmp_reason_http_status(CMP_R_NOT_CANONICAL), 400);
    free(ber);
    free(rep);
    free(der);
}

/* BER inside a certificate of extraCerts (the issuer Name of the first
 * certificate), which OpenSSL also keeps as received. */
static void test_ber_inside_extracert(void **state)
{
    /* PKIMessage, [1] extraCerts, SEQUENCE OF, Certificate, tbsCertificate,
     * issuer Name (the first SEQUENCE child holding a SET), RDN */
    static const int rdn[] = { 0x30, 0xa1, 0x30, 0x30, 0x30, 0x30, 0x31 };
    size_t len, off, tl, hl, cl, blen;
    unsigned char *der = vec_read("sigec_ir_req0_ir.der", &len);
    unsigned char *rep, *ber;

    assert_true(der_find(der, len, rdn, 7, &off, &tl));
    assert_true(tlv(der + off, tl, &hl, &cl));
    assert_true(cl < 0x80);
    rep = malloc(cl + 3);
    rep[0] = 0x31;
    rep[1] = 0x81;
    rep[2] = (unsigned char)cl;
    memcpy(rep + 3, der + off + hl, cl);
    ber = der_replace(der, len, rdn, 7, rep, cl + 3, &blen);
    expect_decode(ber, blen, NULL, CMP_R_NOT_CANONICAL);
    free(ber);
    free(rep);
    free(der);
}

/* cmp_der_check rule by rule, on small encodings. */
static void test_der_walker(void **state)
{
    static const struct {
        const char *name;
        unsigned char der[24];
        size_t len;
        enum cmp_der_result want;
    } c[] = {
        { "sequence of int", { 0x30, 0x03, 0x02, 0x01, 0x05 }, 5, CMP_DER_OK },
        { "int 00 80", { 0x30, 0x04, 0x02, 0x02, 0x00, 0x80 }, 6, CMP_DER_OK },
        { "int 00 01", { 0x30, 0x04, 0x02, 0x02, 0x00, 0x01 }, 6, CMP_DER_BER },
        { "int ff 80", { 0x30, 0x04, 0x02, 0x02, 0xff, 0x80 }, 6, CMP_DER_BER },
        { "int empty", { 0x30, 0x02, 0x02, 0x00 }, 4, CMP_DER_MALFORMED },
        { "enum 00 01", { 0x30, 0x04, 0x0a, 0x02, 0x00, 0x01 }, 6, CMP_DER_BER },
        { "bool ff", { 0x30, 0x03, 0x01, 0x01, 0xff }, 5, CMP_DER_OK },
        { "bool 01", { 0x30, 0x03, 0x01, 0x01, 0x01 }, 5, CMP_DER_BER },
        { "bool 2 octets", { 0x30, 0x04, 0x01, 0x02, 0x00, 0x00 }, 6, CMP_DER_MALFORMED },
        { "long form length", { 0x30, 0x81, 0x03, 0x02, 0x01, 0x05 }, 6, CMP_DER_BER },
        { "zero length octet", { 0x30, 0x82, 0x00, 0x03, 0x02, 0x01, 0x05 }, 7, CMP_DER_BER },
        { "inner long form", { 0x30, 0x04, 0x02, 0x81, 0x01, 0x05 }, 6, CMP_DER_BER },
        { "indefinite", { 0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00 }, 7, CMP_DER_BER },
        { "inner indefinite", { 0x30, 0x07, 0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00 }, 9, CMP_DER_BER },
        { "constructed octets", { 0x30, 0x07, 0x24, 0x05, 0x04, 0x03, 0x61, 0x62, 0x63 }, 9, CMP_DER_BER },
        { "constructed printable", { 0x30, 0x07, 0x33, 0x05, 0x13, 0x03, 0x61, 0x62, 0x63 }, 9, CMP_DER_BER },
        { "primitive sequence", { 0x30, 0x03, 0x10, 0x01, 0x00 }, 5, CMP_DER_MALFORMED },
        { "null", { 0x30, 0x02, 0x05, 0x00 }, 4, CMP_DER_OK },
        { "null with content", { 0x30, 0x03, 0x05, 0x01, 0x00 }, 5, CMP_DER_MALFORMED },
        { "bits ok", { 0x30, 0x04, 0x03, 0x02, 0x01, 0x80 }, 6, CMP_DER_OK },
        { "bits unused set", { 0x30, 0x04, 0x03, 0x02, 0x01, 0x81 }, 6, CMP_DER_BER },
        { "bits unused 8", { 0x30, 0x04, 0x03, 0x02, 0x08, 0x00 }, 6, CMP_DER_MALFORMED },
        { "oid open end", { 0x30, 0x05, 0x06, 0x03, 0x2a, 0x48, 0x86 }, 7, CMP_DER_MALFORMED },
        { "oid ok", { 0x30, 0x05, 0x06, 0x03, 0x2a, 0x86, 0x08 }, 7, CMP_DER_OK },
        { "oid 0x80 lead", { 0x30, 0x05, 0x06, 0x03, 0x2a, 0x80, 0x01 }, 7, CMP_DER_MALFORMED },
        { "set sorted", { 0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02 }, 8, CMP_DER_OK },
        { "set equal", { 0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 }, 8, CMP_DER_OK },
        { "set unsorted", { 0x31, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01 }, 8, CMP_DER_BER },
        { "utctime", { 0x30, 0x0f, 0x17, 0x0d, '2', '6', '1', '2', '0', '4', '1', '2', '0', '0', '0', '0', 'Z' }, 17, CMP_DER_OK },
        { "utctime no secs", { 0x30, 0x0d, 0x17, 0x0b, '2', '6', '1', '2', '0', '4', '1', '2', '0', '0', 'Z' }, 15, CMP_DER_BER },
        { "gentime", { 0x30, 0x11, 0x18, 0x0f, '2', '0', '2', '6', '1', '2', '0', '4', '1', '2', '0', '0', '0', '0', 'Z' }, 19, CMP_DER_OK },
        { "gentime .5", { 0x30, 0x13, 0x18, 0x11, '2', '0', '2', '6', '1', '2', '0', '4', '1', '2', '0', '0', '0', '0', '.', '5', 'Z' }, 21, CMP_DER_OK },
        { "gentime .50", { 0x30, 0x14, 0x18, 0x12, '2', '0', '2', '6', '1', '2', '0', '4', '1', '2', '0', '0', '0', '0', '.', '5', '0', 'Z' }, 22, CMP_DER_BER },
        { "gentime offset", { 0x30, 0x15, 0x18, 0x13, '2', '0', '2', '6', '1', '2', '0', '4', '1', '2', '0', '0', '0', '0', '+', '0', '1', '0', '0' }, 23, CMP_DER_BER },
        { "octets hold BER", { 0x30, 0x06, 0x04, 0x04, 0x30, 0x80, 0x00, 0x00 }, 8, CMP_DER_OK },
        { "context primitive", { 0x30, 0x04, 0x80, 0x02, 0x30, 0x80 }, 6, CMP_DER_OK },
        { "context constructed", { 0x30, 0x05, 0xa0, 0x03, 0x01, 0x01, 0x01 }, 7, CMP_DER_BER },
        { "high tag ok", { 0x30, 0x04, 0x9f, 0x1f, 0x01, 0x00 }, 6, CMP_DER_OK },
        { "high tag for low", { 0x30, 0x04, 0x9f, 0x05, 0x01, 0x00 }, 6, CMP_DER_BER },
        { "high tag padded", { 0x30, 0x05, 0x9f, 0x80, 0x1f, 0x01, 0x00 }, 7, CMP_DER_BER },
        { "eoc", { 0x30, 0x02, 0x00, 0x00 }, 4, CMP_DER_MALFORMED },
        { "content too long", { 0x30, 0x05, 0x02, 0x01, 0x05 }, 5, CMP_DER_MALFORMED },
        { "inner too long", { 0x30, 0x03, 0x02, 0x05, 0x05 }, 5, CMP_DER_MALFORMED },
        { "trailing", { 0x30, 0x03, 0x02, 0x01, 0x05, 0x00 }, 6, CMP_DER_MALFORMED },
    };
    unsigned char deep[3 * (CMP_DER_MAX_DEPTH + 2)];
    size_t i;
    int d;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        enum cmp_der_result r = cmp_der_check(c[i].der, c[i].len);

        if (r != c[i].want)
            fail_msg("%s: got %d, want %d", c[i].name, r, c[i].want);
    }
    assert_int_equal(cmp_der_check(NULL, 0), CMP_DER_MALFORMED);
    /* nesting: CMP_DER_MAX_DEPTH levels pass, one more does not */
    for (d = CMP_DER_MAX_DEPTH + 1; d >= CMP_DER_MAX_DEPTH; d--) {
        size_t start = sizeof(deep), inner = 0;
        int k;

        /* wrapped from the inside out, lengths in DER form */
        for (k = 0; k < d; k++) {
            if (inner >= 0x80) {
                deep[--start] = (unsigned char)inner;
                deep[--start] = 0x81;
            } else {
                deep[--start] = (unsigned char)inner;
            }
            deep[--start] = 0x30;
            inner = sizeof(deep) - start;
        }
        assert_int_equal(cmp_der_check(deep + start, sizeof(deep) - start),
                         d > CMP_DER_MAX_DEPTH ? CMP_DER_MALFORMED : CMP_DER_OK);
    }
}

static void test_too_large(void **state)
{
    struct cmp_limits lim = { 0 };
    size_t len;
    unsigned char *der = vec_read("sigec_ir_req0_ir.der", &len);
    unsigned char *big;

    lim.max_msg_len = len - 1;
    expect_decode(der, len, &lim, CMP_R_BODY_TOO_LARGE);
    expect_bit(CMP_R_BODY_TOO_LARGE, CMP_FAIL_BAD_REQUEST);
    assert_int_equal(cmp_reason_http_status(CMP_R_BODY_TOO_LARGE), 413);
    lim.max_msg_len = len;
    CMP_MSG_free(expect_decode(der, len, &lim, CMP_R_OK));
    /* default limit 64 KiB */
    big = calloc(1, CMP_DEFAULT_MAX_MSG_LEN + 1);
    expect_decode(big, CMP_DEFAULT_MAX_MSG_LEN + 1, NULL, CMP_R_BODY_TOO_LARGE);
    free(big);
    free(der);
}

/* Decodes a vector into a modifiable message. */
static CMP_MSG *vec_msg(const char *name)
{
    size_t len;
    unsigned char *der = vec_read(name, &len);
    CMP_MSG *msg = expect_decode(der, len, NULL, CMP_R_OK);

    free(der);
    return msg;
}

static enum cmp_reason redecode(const CMP_MSG *msg,
                                const struct cmp_limits *lim, CMP_MSG **out)
{
    unsigned char *der = NULL;
    size_t len;
    enum cmp_reason r;
    CMP_MSG *tmp = NULL;

    assert_true(cmp_msg_encode(msg, &der, &len));
    r = cmp_msg_decode(der, len, lim, out != NULL ? out : &tmp);
    CMP_MSG_free(tmp);
    OPENSSL_free(der);
    return r;
}

/* A non-minimal INTEGER inside an ANY value (a generalInfo infoValue): the
 * template keeps the SEQUENCE's bytes and re-encodes them unchanged. */
static void test_ber_inside_any(void **state)
{
    static const unsigned char ber_seq[] = { 0x30, 0x04, 0x02, 0x02, 0x00, 0x01 };
    static const unsigned char der_seq[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
    static const unsigned char junk_seq[] = { 0x30, 0x02, 0x02, 0x05 };
    const unsigned char *const vals[] = { der_seq, ber_seq, junk_seq };
    const size_t lens[] = { sizeof(der_seq), sizeof(ber_seq), sizeof(junk_seq) };
    const enum cmp_reason want[] = { CMP_R_OK, CMP_R_NOT_CANONICAL, CMP_R_NOT_DER };
    size_t i;

    for (i = 0; i < 3; i++) {
        CMP_MSG *msg = vec_msg("sigec_genm_req0_genm.der");
        CMP_ITAV *itav = CMP_ITAV_new();
        ASN1_STRING *seq = ASN1_STRING_new();

        assert_non_null(itav);
        assert_non_null(seq);
        assert_true(ASN1_STRING_set(seq, vals[i], (int)lens[i]));
        ASN1_OBJECT_free(itav->infoType);
        itav->infoType = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
        itav->infoValue = ASN1_TYPE_new();
        ASN1_TYPE_set(itav->infoValue, V_ASN1_SEQUENCE, seq);
        if (msg->header->generalInfo == NULL)
            msg->header->generalInfo = sk_CMP_ITAV_new_null();
        assert_true(sk_CMP_ITAV_push(msg->header->generalInfo, itav));
        if (redecode(msg, NULL, NULL) != want[i])
            fail_msg("infoValue %zu: got %s", i,
                     cmp_reason_text(redecode(msg, NULL, NULL)));
        CMP_MSG_free(msg);
    }
}

static void test_extracerts_limits(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_ir_req0_ir.der");
    X509 *c = sk_X509_value(msg->extraCerts, 0);
    STACK_OF(X509) *empty = sk_X509_new_null();
    STACK_OF(X509) *saved = msg->extraCerts;
    struct cmp_limits lim = { 0 };
    int i;

    /* 16 is the default maximum: accepted; 17 refused */
    msg->extraCerts = sk_X509_new_null();
    for (i = 0; i < 16; i++) {
        X509_up_ref(c);
        sk_X509_push(msg->extraCerts, c);
    }
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_OK);
    X509_up_ref(c);
    sk_X509_push(msg->extraCerts, c);
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    lim.max_extra_certs = 20;
    assert_int_equal(redecode(msg, &lim, NULL), CMP_R_OK);
    lim.max_extra_certs = 2;
    assert_int_equal(redecode(msg, &lim, NULL), CMP_R_LIMIT_EXCEEDED);
    expect_bit(CMP_R_LIMIT_EXCEEDED, CMP_FAIL_BAD_REQUEST);
    sk_X509_pop_free(msg->extraCerts, X509_free);
    /* present but empty: SIZE (1..MAX) violated */
    msg->extraCerts = empty;
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_EMPTY_SEQUENCE);
    expect_bit(CMP_R_EMPTY_SEQUENCE, CMP_FAIL_BAD_DATA_FORMAT);
    sk_X509_free(empty);
    msg->extraCerts = saved;
    CMP_MSG_free(msg);
}

static void test_caPubs_limits(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_ir_rsp0_ip.der");
    STACK_OF(X509) *pubs = msg->body->value.ip->caPubs;
    X509 *c;
    int i;

    assert_non_null(pubs);
    c = sk_X509_value(pubs, 0);
    for (i = sk_X509_num(pubs); i < 17; i++) {
        X509_up_ref(c);
        sk_X509_push(pubs, c);
    }
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    while (sk_X509_num(pubs) > 0)
        X509_free(sk_X509_pop(pubs));
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_EMPTY_SEQUENCE);
    CMP_MSG_free(msg);
}

static void test_too_many_requests(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_ir_req0_ir.der");
    STACK_OF(CMP_CERTREQMSG) *reqs = msg->body->value.ir;
    CMP_CERTREQMSG *m = sk_CMP_CERTREQMSG_value(reqs, 0);
    int i;

    for (i = 1; i < 8; i++)
        sk_CMP_CERTREQMSG_push(reqs, CMP_CERTREQMSG_dup(m));
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_OK);
    sk_CMP_CERTREQMSG_push(reqs, CMP_CERTREQMSG_dup(m));
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    /* an ir with no CertReqMsg at all */
    while (sk_CMP_CERTREQMSG_num(reqs) > 0)
        CMP_CERTREQMSG_free(sk_CMP_CERTREQMSG_pop(reqs));
    assert_int_equal(redecode(msg, NULL, NULL), CMP_R_EMPTY_SEQUENCE);
    CMP_MSG_free(msg);
}

static void test_too_many_other(void **state)
{
    CMP_MSG *rr = vec_msg("sigec_rr_req0_rr.der");
    CMP_MSG *cc = vec_msg("sigec_ir_req1_certConf.der");
    CMP_MSG *gm = vec_msg("sigec_genm_req0_genm.der");
    int i;

    for (i = 0; i < 8; i++)
        sk_CMP_REVDETAILS_push(rr->body->value.rr,
            ASN1_item_dup(ASN1_ITEM_rptr(CMP_REVDETAILS), sk_CMP_REVDETAILS_value(rr->body->value.rr, 0)));
    assert_int_equal(redecode(rr, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    for (i = 0; i < 8; i++)
        sk_CMP_CERTSTATUS_push(cc->body->value.certConf,
            ASN1_item_dup(ASN1_ITEM_rptr(CMP_CERTSTATUS), sk_CMP_CERTSTATUS_value(cc->body->value.certConf, 0)));
    assert_int_equal(redecode(cc, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    /* empty certConf is legal (the client rejects everything) */
    while (sk_CMP_CERTSTATUS_num(cc->body->value.certConf) > 0)
        CMP_CERTSTATUS_free(sk_CMP_CERTSTATUS_pop(cc->body->value.certConf));
    assert_int_equal(redecode(cc, NULL, NULL), CMP_R_OK);
    for (i = 0; i < 17; i++)
        sk_CMP_ITAV_push(gm->body->value.genm,
                         cmp_itav_new(NID_id_it_caCerts, NULL));
    assert_int_equal(redecode(gm, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    CMP_MSG_free(rr);
    CMP_MSG_free(cc);
    CMP_MSG_free(gm);
}

static CMP_MSG *wrap_nested(CMP_MSG *inner)
{
    CMP_MSG *outer = CMP_MSG_new();

    assert_non_null(outer);
    CMP_HDR_free(outer->header);
    outer->header = ASN1_item_dup(ASN1_ITEM_rptr(CMP_HDR), inner->header);
    assert_non_null(outer->header);
    outer->body->type = CMP_BODY_NESTED;
    outer->body->value.nested = sk_CMP_MSG_new_null();
    sk_CMP_MSG_push(outer->body->value.nested, inner);
    return outer;
}

static void test_nested_depth(void **state)
{
    CMP_MSG *m = vec_msg("sigec_ir_req0_ir.der");
    CMP_MSG *n1 = wrap_nested(m);
    CMP_MSG *n2 = wrap_nested(n1);
    CMP_MSG *n3;
    struct cmp_limits lim = { 0 };

    assert_int_equal(redecode(n1, NULL, NULL), CMP_R_OK);
    assert_int_equal(redecode(n2, NULL, NULL), CMP_R_OK);
    n3 = wrap_nested(n2);
    assert_int_equal(redecode(n3, NULL, NULL), CMP_R_LIMIT_EXCEEDED);
    lim.max_nesting = 1;
    assert_int_equal(redecode(n2, &lim, NULL), CMP_R_LIMIT_EXCEEDED);
    /* an empty nested body */
    while (sk_CMP_MSG_num(n3->body->value.nested) > 0)
        sk_CMP_MSG_pop(n3->body->value.nested);
    assert_int_equal(redecode(n3, NULL, NULL), CMP_R_EMPTY_SEQUENCE);
    CMP_MSG_free(n3);
    CMP_MSG_free(n2);
}

/* A message nested far deeper than the template decoder allows: refused
 * without recursion trouble. */
static void test_nested_very_deep(void **state)
{
    CMP_MSG *m = vec_msg("sigec_genm_req0_genm.der");
    struct cmp_limits lim = { 0 };
    unsigned char *der = NULL;
    size_t len;
    CMP_MSG *out = NULL;
    int i;

    for (i = 0; i < 40; i++)
        m = wrap_nested(m);
    assert_true(cmp_msg_encode(m, &der, &len));
    lim.max_msg_len = len + 1;
    lim.max_nesting = 100;
    assert_int_not_equal(cmp_msg_decode(der, len, &lim, &out), CMP_R_OK);
    assert_null(out);
    OPENSSL_free(der);
    CMP_MSG_free(m);
}

/* ---- header checks ---- */

static void test_header_checks(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_ir_req0_ir.der");
    CMP_HDR *h = msg->header;
    ASN1_OCTET_STRING *saved;
    time_t now = time(NULL);
    struct tm tm;

    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_OK);
    /* pvno */
    ASN1_INTEGER_set(h->pvno, 1);
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_UNSUPPORTED_VERSION);
    ASN1_INTEGER_set(h->pvno, 4);
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_UNSUPPORTED_VERSION);
    ASN1_INTEGER_set(h->pvno, -2);
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_UNSUPPORTED_VERSION);
    expect_bit(CMP_R_UNSUPPORTED_VERSION, CMP_FAIL_UNSUPPORTED_VERSION);
    ASN1_INTEGER_set(h->pvno, 3);
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_OK);
    ASN1_INTEGER_set(h->pvno, 2);
    /* transactionID */
    saved = h->transactionID;
    h->transactionID = NULL;
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_NO_TRANSACTION_ID);
    expect_bit(CMP_R_NO_TRANSACTION_ID, CMP_FAIL_BAD_DATA_FORMAT);
    h->transactionID = ASN1_OCTET_STRING_new();
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_BAD_TRANSACTION_ID);
    ASN1_OCTET_STRING_free(h->transactionID);
    h->transactionID = saved;
    /* senderNonce: missing, 15 octets, 16 octets, 65 octets */
    saved = h->senderNonce;
    h->senderNonce = NULL;
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_BAD_SENDER_NONCE);
    h->senderNonce = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(h->senderNonce, (const unsigned char *)"0123456789abcde", 15);
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_BAD_SENDER_NONCE);
    ASN1_OCTET_STRING_set(h->senderNonce, (const unsigned char *)"0123456789abcdef", 16);
    assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_OK);
    {
        unsigned char big[65] = { 0 };

        ASN1_OCTET_STRING_set(h->senderNonce, big, 65);
        assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_BAD_SENDER_NONCE);
    }
    expect_bit(CMP_R_BAD_SENDER_NONCE, CMP_FAIL_BAD_SENDER_NONCE);
    ASN1_OCTET_STRING_free(h->senderNonce);
    h->senderNonce = saved;
    /* messageTime window */
    assert_int_equal(cmp_hdr_check_request(h, now + 1000000, 60), CMP_R_BAD_TIME);
    assert_true(ASN1_TIME_to_tm(h->messageTime, &tm));
    assert_int_equal(cmp_hdr_check_request(h, timegm(&tm) + 59, 60), CMP_R_OK);
    assert_int_equal(cmp_hdr_check_request(h, timegm(&tm) - 59, 60), CMP_R_OK);
    assert_int_equal(cmp_hdr_check_request(h, timegm(&tm) + 61, 60), CMP_R_BAD_TIME);
    assert_int_equal(cmp_hdr_check_request(h, timegm(&tm) - 61, 60), CMP_R_BAD_TIME);
    expect_bit(CMP_R_BAD_TIME, CMP_FAIL_BAD_TIME);
    /* absent messageTime passes (it is optional) */
    {
        ASN1_GENERALIZEDTIME *t = h->messageTime;

        h->messageTime = NULL;
        assert_int_equal(cmp_hdr_check_request(h, now, 60), CMP_R_OK);
        h->messageTime = t;
    }
    /* sender must be a directoryName */
    {
        GENERAL_NAME *s = h->sender;
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();

        ASN1_STRING_set(dns, "example.com", -1);
        h->sender = GENERAL_NAME_new();
        GENERAL_NAME_set0_value(h->sender, GEN_DNS, dns);
        assert_int_equal(cmp_hdr_check_request(h, now, 0), CMP_R_BAD_SENDER);
        expect_bit(CMP_R_BAD_SENDER, CMP_FAIL_BAD_DATA_FORMAT);
        assert_null(cmp_hdr_get0_sender_name(h));
        GENERAL_NAME_free(h->sender);
        h->sender = s;
    }
    CMP_MSG_free(msg);
}

/* The header checks also hold after an encode/decode of the modified
 * message (they are not only struct-level). */
static void test_header_checks_wire(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_genm_req0_genm.der");
    CMP_MSG *out = NULL;

    ASN1_OCTET_STRING_free(msg->header->transactionID);
    msg->header->transactionID = NULL;
    assert_int_equal(redecode(msg, NULL, &out), CMP_R_OK);
    assert_int_equal(cmp_hdr_check_request(out->header, time(NULL), 0),
                     CMP_R_NO_TRANSACTION_ID);
    CMP_MSG_free(out);
    ASN1_INTEGER_set(msg->header->pvno, 1);
    assert_int_equal(redecode(msg, NULL, &out), CMP_R_OK);
    assert_int_equal(cmp_hdr_check_request(out->header, time(NULL), 0),
                     CMP_R_UNSUPPORTED_VERSION);
    CMP_MSG_free(out);
    CMP_MSG_free(msg);
}

/* ---- request checks of RFC 9483 3.1 (cmp_msg_check_request) ---- */

/* Encodes and decodes |msg|, then runs cmp_msg_check_request. */
static enum cmp_reason wire_check(const CMP_MSG *msg)
{
    CMP_MSG *out = NULL;
    enum cmp_reason r = redecode(msg, NULL, &out);

    if (r == CMP_R_OK)
        r = cmp_msg_check_request(out, time(NULL), 0);
    CMP_MSG_free(out);
    return r;
}

static void set_nonce(ASN1_OCTET_STRING **os)
{
    static const unsigned char n[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

    if (*os == NULL)
        *os = ASN1_OCTET_STRING_new();
    assert_true(ASN1_OCTET_STRING_set(*os, n, sizeof(n)));
}

/* recipNonce in the first message of a transaction: badRecipientNonce. */
static void test_recip_nonce_first(void **state)
{
    static const char *const first[] = {
        "sigec_ir_req0_ir.der", "sigec_cr_req0_cr.der", "sigec_kur_req0_kur.der",
        "sigec_p10cr_req0_p10cr.der", "sigec_rr_req0_rr.der",
        "sigec_genm_req0_genm.der"
    };
    static const char *const later[] = {
        "sigec_ir_req1_certConf.der", "sigec_poll_ir_req1_pollReq.der"
    };
    size_t i;

    for (i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
        CMP_MSG *msg = vec_msg(first[i]);

        assert_true(cmp_body_starts_transaction(msg->body->type));
        assert_null(msg->header->recipNonce);
        assert_int_equal(wire_check(msg), CMP_R_OK);
        set_nonce(&msg->header->recipNonce);
        if (wire_check(msg) != CMP_R_RECIP_NONCE_IN_FIRST)
            fail_msg("%s with recipNonce: %s", first[i],
                     cmp_reason_text(wire_check(msg)));
        assert_int_equal(cmp_hdr_check_request_ex(msg->header, time(NULL), 0, 1),
                         CMP_R_RECIP_NONCE_IN_FIRST);
        /* the header-only entry point does not know the body */
        assert_int_equal(cmp_hdr_check_request(msg->header, time(NULL), 0),
                         CMP_R_OK);
        CMP_MSG_free(msg);
    }
    expect_bit(CMP_R_RECIP_NONCE_IN_FIRST, CMP_FAIL_BAD_RECIPIENT_NONCE);
    for (i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
        CMP_MSG *msg = vec_msg(later[i]);

        assert_false(cmp_body_starts_transaction(msg->body->type));
        assert_non_null(msg->header->recipNonce);
        assert_int_equal(wire_check(msg), CMP_R_OK);
        CMP_MSG_free(msg);
    }
    assert_false(cmp_body_starts_transaction(CMP_BODY_ERROR));
    assert_false(cmp_body_starts_transaction(CMP_BODY_PKICONF));
    assert_false(cmp_body_starts_transaction(CMP_BODY_NESTED));
}

/* Signature protection without senderKID: badMessageCheck; a MAC-protected
 * message is not judged by this rule. */
static void test_sender_kid_required(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_ir_req0_ir.der");

    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID = NULL;
    assert_int_equal(wire_check(msg), CMP_R_NO_SENDER_KID);
    assert_int_equal(cmp_hdr_check_request(msg->header, time(NULL), 0),
                     CMP_R_NO_SENDER_KID);
    expect_bit(CMP_R_NO_SENDER_KID, CMP_FAIL_BAD_MESSAGE_CHECK);
    CMP_MSG_free(msg);
    msg = vec_msg("pbm_ir_req0_ir.der");
    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID = NULL;
    assert_int_equal(wire_check(msg), CMP_R_OK);
    CMP_MSG_free(msg);
}

/* Missing protection is found before any content check: an unprotected
 * message with a wrong sender type, no transactionID and pvno 1. */
static void test_protection_checked_first(void **state)
{
    CMP_MSG *msg = vec_msg("sigec_ir_req0_ir.der");
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *mail = ASN1_IA5STRING_new();
    X509_ALGOR *alg;
    ASN1_BIT_STRING *prot;

    assert_true(ASN1_STRING_set(mail, "dev@example.net", -1));
    GENERAL_NAME_set0_value(gn, GEN_EMAIL, mail);
    GENERAL_NAME_free(msg->header->sender);
    msg->header->sender = gn;
    /* with protection: the header check finds the content errors */
    assert_int_equal(wire_check(msg), CMP_R_BAD_SENDER);
    ASN1_OCTET_STRING_free(msg->header->transactionID);
    msg->header->transactionID = NULL;
    assert_int_equal(wire_check(msg), CMP_R_NO_TRANSACTION_ID);
    ASN1_INTEGER_set(msg->header->pvno, 1);
    assert_int_equal(wire_check(msg), CMP_R_UNSUPPORTED_VERSION);
    /* no protectionAlg (protection kept) */
    alg = msg->header->protectionAlg;
    msg->header->protectionAlg = NULL;
    assert_int_equal(wire_check(msg), CMP_R_NO_PROTECTION_ALG);
    /* no protection at all */
    prot = msg->protection;
    msg->protection = NULL;
    assert_int_equal(wire_check(msg), CMP_R_UNPROTECTED);
    /* protectionAlg without protection */
    msg->header->protectionAlg = alg;
    assert_int_equal(wire_check(msg), CMP_R_UNPROTECTED);
    expect_bit(CMP_R_UNPROTECTED, CMP_FAIL_BAD_MESSAGE_CHECK);
    expect_bit(CMP_R_NO_PROTECTION_ALG, CMP_FAIL_BAD_MESSAGE_CHECK);
    msg->protection = prot;
    CMP_MSG_free(msg);
}

/* Appends an ITAV of |nid| with |value| (taken over; NULL: no value). */
static void add_itav(CMP_HDR *h, int nid, ASN1_TYPE *value)
{
    CMP_ITAV *itav = CMP_ITAV_new();

    assert_non_null(itav);
    ASN1_OBJECT_free(itav->infoType);
    itav->infoType = OBJ_nid2obj(nid);
    itav->infoValue = value;
    if (h->generalInfo == NULL)
        h->generalInfo = sk_CMP_ITAV_new_null();
    assert_true(sk_CMP_ITAV_push(h->generalInfo, itav));
}

static ASN1_TYPE *type_null(void)
{
    ASN1_TYPE *t = ASN1_TYPE_new();

    ASN1_TYPE_set(t, V_ASN1_NULL, NULL);
    return t;
}

static ASN1_TYPE *type_int(long v)
{
    ASN1_TYPE *t = ASN1_TYPE_new();
    ASN1_INTEGER *i = ASN1_INTEGER_new();

    ASN1_INTEGER_set(i, v);
    ASN1_TYPE_set(t, V_ASN1_INTEGER, i);
    return t;
}

static ASN1_TYPE *type_time(void)
{
    ASN1_TYPE *t = ASN1_TYPE_new();

    ASN1_TYPE_set(t, V_ASN1_GENERALIZEDTIME,
                  ASN1_GENERALIZEDTIME_set(NULL, time(NULL) + 300));
    return t;
}

/* generalInfo: implicitConfirm NULL, no confirmWaitTime in a request,
 * never both; each badRequest. */
static void test_general_info(void **state)
{
    struct {
        const char *name;
        int ic;             /* 0 none, 1 NULL, 2 INTEGER, 3 no value */
        int cwt;
        enum cmp_reason want;
    } c[] = {
        { "none", 0, 0, CMP_R_OK },
        { "implicitConfirm NULL", 1, 0, CMP_R_OK },
        { "implicitConfirm INTEGER", 2, 0, CMP_R_IMPLICIT_CONFIRM_VALUE },
        { "implicitConfirm without value", 3, 0, CMP_R_IMPLICIT_CONFIRM_VALUE },
        { "confirmWaitTime", 0, 1, CMP_R_CONFIRM_WAIT_IN_REQUEST },
        { "both", 1, 1, CMP_R_IMPLICIT_AND_WAIT },
        { "both, implicitConfirm INTEGER", 2, 1, CMP_R_IMPLICIT_AND_WAIT },
    };
    size_t i;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        CMP_MSG *msg = vec_msg("sigec_ir_req0_ir.der");
        enum cmp_reason r;

        sk_CMP_ITAV_pop_free(msg->header->generalInfo, CMP_ITAV_free);
        msg->header->generalInfo = NULL;
        if (c[i].ic > 0)
            add_itav(msg->header, NID_id_it_implicitConfirm,
                     c[i].ic == 1 ? type_null() : c[i].ic == 2 ? type_int(1)
                     : NULL);
        if (c[i].cwt)
            add_itav(msg->header, NID_id_it_confirmWaitTime, type_time());
        /* an unknown infoType is ignored */
        add_itav(msg->header, NID_id_it_keyPairParamReq, NULL);
        if ((r = wire_check(msg)) != c[i].want)
            fail_msg("%s: got %s", c[i].name, cmp_reason_text(r));
        assert_int_equal(cmp_hdr_check_request(msg->header, time(NULL), 0),
                         c[i].want);
        /* a response may carry confirmWaitTime alone */
        assert_int_equal(cmp_hdr_check_general_info(msg->header, 0),
                         c[i].want == CMP_R_CONFIRM_WAIT_IN_REQUEST
                         ? CMP_R_OK : c[i].want);
        if (c[i].want != CMP_R_OK)
            expect_bit(c[i].want, CMP_FAIL_BAD_REQUEST);
        CMP_MSG_free(msg);
    }
}

/* ---- tampering ---- */

/* Full check as a server would do it: decode, header, find signer, verify
 * the protection and (signature case) validate the signer to |store|.
 * Returns 1 if the message is accepted; *layer_ok tells whether the message
 * layer alone (without chain validation) accepted it. */
static int accept_msg(const unsigned char *der, size_t len, X509_STORE *store,
                      int *layer_ok)
{
    CMP_MSG *msg = NULL;
    X509 *signer = NULL;
    int ok = 0;

    *layer_ok = 0;
    if (cmp_msg_decode(der, len, NULL, &msg) != CMP_R_OK)
        return 0;
    if (cmp_hdr_check_request(msg->header, time(NULL), 0) != CMP_R_OK)
        goto end;
    if (store == NULL) {
        ok = *layer_ok = cmp_protect_verify_mac(msg,
                                                (const unsigned char *)PBM_SECRET,
                                                strlen(PBM_SECRET), NULL)
            == CMP_R_OK;
        goto end;
    }
    if (cmp_protect_find_signer(msg, &signer) != CMP_R_OK
        || cmp_protect_verify_sig(msg, signer) != CMP_R_OK)
        goto end;
    *layer_ok = 1;
    {
        X509_STORE_CTX *vctx = X509_STORE_CTX_new();

        ok = vctx != NULL && X509_STORE_CTX_init(vctx, store, signer, msg->extraCerts)
            && X509_verify_cert(vctx) > 0;
        X509_STORE_CTX_free(vctx);
    }
 end:
    CMP_MSG_free(msg);
    ERR_clear_error();
    return ok;
}

static void tamper_all(const char *name, X509_STORE *store, int stride)
{
    size_t len, i, ex_off = 0, ex_len = 0;
    unsigned char *der = vec_read(name, &len);
    static const int extra[] = { 0x30, 0xa1 };
    static const unsigned char flips[] = { 0x01, 0x80, 0xff };
    int layer_ok, tried = 0, layer_passed = 0;
    size_t f;

    assert_true(accept_msg(der, len, store, &layer_ok));
    der_find(der, len, extra, 2, &ex_off, &ex_len);
    for (i = 0; i < len; i += (size_t)stride) {
        for (f = 0; f < sizeof(flips); f++) {
            der[i] ^= flips[f];
            if (accept_msg(der, len, store, &layer_ok))
                fail_msg("%s: flip 0x%02x at %zu accepted", name, flips[f], i);
            if (layer_ok) {
                /* only the unprotected extraCerts may change without the
                 * message layer noticing; chain validation catches those */
                if (!(i >= ex_off && i < ex_off + ex_len))
                    fail_msg("%s: flip at %zu passes protection", name, i);
                layer_passed++;
            }
            der[i] ^= flips[f];
            tried++;
        }
    }
    print_message("%s: %d flips refused (%d only by chain validation)\n",
                  name, tried, layer_passed);
    assert_true(accept_msg(der, len, store, &layer_ok));
    free(der);
}

static void test_tamper_signature(void **state)
{
    X509 *root = vec_cert("root.pem");
    X509_STORE *store = X509_STORE_new();

    X509_STORE_add_cert(store, root);
    tamper_all("sigec_genm_req0_genm.der", store, 1);
    tamper_all("sigec_ir_req0_ir.der", store, 1);
    tamper_all("sigrsa_rr_req0_rr.der", store, 3);
    X509_STORE_free(store);
    X509_free(root);
}

static void test_tamper_mac(void **state)
{
    tamper_all("pbm_genm_req0_genm.der", NULL, 1);
    tamper_all("pbm_ir_req0_ir.der", NULL, 1);
}

/* ---- fuzz regressions ---- */

/* Every file in tests/vectors/regress/ must be handled without a crash by
 * the same steps as fuzz_decode. */
static void test_regressions(void **state)
{
    char dir[512];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(dir, sizeof(dir), "%s/regress", vec_dir());
    if ((d = opendir(dir)) == NULL) {
        print_message("no regression vectors\n");
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        unsigned char *buf;
        size_t len;
        CMP_MSG *msg = NULL;
        X509 *signer = NULL;

        if (e->d_name[0] == '.' || strstr(e->d_name, ".der") == NULL)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((buf = testutil_read_file(path, &len)) == NULL)
            continue;
        if (cmp_msg_decode(buf, len, NULL, &msg) == CMP_R_OK) {
            (void)cmp_hdr_check_request(msg->header, time(NULL), 300);
            (void)cmp_protect_verify_mac(msg, (const unsigned char *)"x", 1, NULL);
            if (cmp_protect_find_signer(msg, &signer) == CMP_R_OK)
                (void)cmp_protect_verify_sig(msg, signer);
            for (int i = 0; i < sk_X509_num(msg->extraCerts); i++) {
                unsigned char md[EVP_MAX_MD_SIZE];
                unsigned int mdlen;

                (void)cmp_certhash(sk_X509_value(msg->extraCerts, i), md, &mdlen);
            }
        }
        CMP_MSG_free(msg);
        free(buf);
        n++;
    }
    closedir(d);
    print_message("%d regression vectors replayed\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_round_trip),
        cmocka_unit_test(test_vectors_algorithms),
        cmocka_unit_test(test_not_der),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_indefinite_outer),
        cmocka_unit_test(test_indefinite_inner),
        cmocka_unit_test(test_nonminimal_length),
        cmocka_unit_test(test_constructed_octets),
        cmocka_unit_test(test_ber_inside_name),
        cmocka_unit_test(test_ber_inside_extracert),
        cmocka_unit_test(test_ber_inside_any),
        cmocka_unit_test(test_der_walker),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_extracerts_limits),
        cmocka_unit_test(test_caPubs_limits),
        cmocka_unit_test(test_too_many_requests),
        cmocka_unit_test(test_too_many_other),
        cmocka_unit_test(test_nested_depth),
        cmocka_unit_test(test_nested_very_deep),
        cmocka_unit_test(test_header_checks),
        cmocka_unit_test(test_header_checks_wire),
        cmocka_unit_test(test_recip_nonce_first),
        cmocka_unit_test(test_sender_kid_required),
        cmocka_unit_test(test_protection_checked_first),
        cmocka_unit_test(test_general_info),
        cmocka_unit_test(test_tamper_signature),
        cmocka_unit_test(test_tamper_mac),
        cmocka_unit_test(test_regressions),
    };

    return cmocka_run_group_tests_name("cmp_decode", tests, NULL, NULL);
}
