/*
 * Unit tests of the signer process's protocol, in one process over real
 * socketpairs: the frame codec (round trips, every truncation, bounds),
 * signatures through a remote CA_SIGNER for every key type the CA supports
 * (certificates, CRLs, items, raw bytes, byte-identical to local signing
 * where the algorithm is deterministic), refused frames (oversized, short,
 * malformed, unknown key id or key reference), many threads on a few
 * channels, a channel that dies, and ca_signer_load() through the client.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ca/ca.h"
#include "ca/ca_key.h"
#include "ca/ca_signer.h"
#include "signer/signer.h"
#include "signer/signer_int.h"
#include "signer/signer_proto.h"
#include "util/der_splice.h"
#include "util/log.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const key_types[] = {
    "ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048", "rsa-pss:2048",
    "ed25519", "ed448"
};
#define NTYPES (sizeof(key_types) / sizeof(key_types[0]))

/* Generates a key: ca_key_generate() types plus "rsa-pss:BITS". */
static EVP_PKEY *gen_key(const char *type)
{
    EVP_PKEY *k = NULL;
    char err[256];

    if (strncmp(type, "rsa-pss:", 8) == 0) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);

        assert_non_null(c);
        assert_true(EVP_PKEY_keygen_init(c) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(c, atoi(type + 8)) > 0);
        assert_true(EVP_PKEY_generate(c, &k) > 0);
        EVP_PKEY_CTX_free(c);
        return k;
    }
    assert_int_equal(ca_key_generate(type, &k, err, sizeof(err)), 1);
    return k;
}

/* ---- a signer "process" on threads: keys, channels, serving threads ---- */

#define MAXCH 4

struct rig {
    SIGNER_KEYS *keys;
    SIGNER_CLIENT *client;
    int sfd[MAXCH];
    pthread_t th[MAXCH];
    enum signer_serve_rc rc[MAXCH];
    int joined[MAXCH];
    size_t n;
};

struct serve_arg {
    struct rig *r;
    size_t i;
};
static struct serve_arg serve_args[MAXCH];
static int serve_pin; /* the serving threads pin themselves as the signer's */

static void *serve_main(void *arg)
{
    struct serve_arg *a = arg;

    if (serve_pin)
        signer_chan_pin(a->i);
    a->r->rc[a->i] = signer_serve_fd(a->r->keys, a->r->sfd[a->i]);
    return NULL;
}

/* Starts |n| serving threads for |keys| (taken over) and, if |client|,
 * a client on the other ends (else the raw ends go to |cfd|). */
static void rig_start(struct rig *r, SIGNER_KEYS *keys, size_t n, int client,
                      int *cfd)
{
    int sv[2], fds[MAXCH];
    size_t i;

    memset(r, 0, sizeof(*r));
    r->keys = keys;
    r->n = n;
    for (i = 0; i < n; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                                    sv), 0);
        r->sfd[i] = sv[0];
        fds[i] = sv[1];
        serve_args[i].r = r;
        serve_args[i].i = i;
        assert_int_equal(pthread_create(&r->th[i], NULL, serve_main,
                                        &serve_args[i]), 0);
    }
    if (client)
        assert_non_null(r->client = signer_client_new(fds, n, 5000));
    else
        memcpy(cfd, fds, n * sizeof(int));
}

/* Stops the rig: the client (or the raw ends |cfd|) closed, threads
 * joined. */
static void rig_stop(struct rig *r, int *cfd)
{
    size_t i;

    if (r->client != NULL)
        signer_client_free(r->client);
    else
        for (i = 0; i < r->n; i++)
            close(cfd[i]);
    for (i = 0; i < r->n; i++) {
        if (!r->joined[i])
            pthread_join(r->th[i], NULL);
        close(r->sfd[i]);
    }
    signer_keys_free(r->keys);
}

/* ---- the codec ---- */

static void roundtrip(const struct signer_frame *f)
{
    uint8_t buf[SIGNER_MAX_REPLY + 64];
    struct signer_frame g;
    size_t len, blen, cut;

    assert_true(signer_frame_encode(f, buf, sizeof(buf), &len));
    assert_int_equal(len, signer_frame_size(f));
    assert_true(signer_frame_len(buf, SIGNER_MAX_FRAME, &blen));
    assert_int_equal(blen + SIGNER_HDR_LEN, len);
    assert_true(signer_frame_decode(buf + SIGNER_HDR_LEN, blen, &g));
    assert_int_equal(g.type, f->type);
    assert_int_equal(g.id, f->id);
    assert_int_equal(g.key_id, f->key_id);
    assert_int_equal(g.keyref_len, f->keyref_len);
    assert_int_equal(g.data_len, f->data_len);
    assert_int_equal(g.data2_len, f->data2_len);
    assert_int_equal(g.key2_id, f->key2_id);
    assert_int_equal(g.off, f->off);
    assert_int_equal(g.olen, f->olen);
    assert_int_equal(g.pub_len, f->pub_len);
    assert_int_equal(g.msg_len, f->msg_len);
    if (f->data_len > 0)
        assert_memory_equal(g.data, f->data, f->data_len);
    if (f->data2_len > 0)
        assert_memory_equal(g.data2, f->data2, f->data2_len);
    /* every truncation but a SIGN's data (which runs to the end) fails,
     * and so does a byte too many (except after a SIGN) */
    for (cut = 0; cut < blen; cut++) {
        if (f->type == SIGNER_T_SIGN && cut >= SIGNER_MIN_FRAME + 4)
            continue;
        /* a SIGN_PAIR's message runs to the end: cut short, it may still
         * hold the placeholder */
        if (f->type == SIGNER_T_SIGN_PAIR
            && cut >= SIGNER_MIN_FRAME + 20 + f->data_len + f->off + f->olen)
            continue;
        assert_false(signer_frame_decode(buf + SIGNER_HDR_LEN, cut, &g));
    }
    if (f->type != SIGNER_T_SIGN && f->type != SIGNER_T_SIGN_PAIR) {
        buf[len] = 0;
        assert_false(signer_frame_decode(buf + SIGNER_HDR_LEN, blen + 1, &g));
    }
    /* no room: refused */
    assert_false(signer_frame_encode(f, buf, len - 1, &blen));
}

static void test_frames(void **state)
{
    static const uint8_t data[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    struct signer_frame f, g;
    uint8_t hdr[4] = { 0, 0, 0, 5 }, body[64];
    char big[SIGNER_MAX_KEYREF + 2];
    size_t len;

    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_LOOKUP;
    f.id = 7;
    f.keyref = "/etc/cmpca/issuing.key";
    f.keyref_len = strlen(f.keyref);
    f.md = "SHA384";
    f.md_len = 6;
    roundtrip(&f);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_SIGN;
    f.id = 0xfffffffe;
    f.key_id = 3;
    f.data = data;
    f.data_len = sizeof(data);
    roundtrip(&f);
    f.data_len = 0;                 /* signing nothing is a valid frame */
    roundtrip(&f);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_KEY;
    f.id = 9;
    f.key_id = 1;
    f.flags = SIGNER_F_PKCS11;
    f.md = "";
    f.pub = data;
    f.pub_len = sizeof(data);
    f.alg = data;
    f.alg_len = 3;
    roundtrip(&f);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_SIG;
    f.data = data;
    f.data_len = sizeof(data);
    roundtrip(&f);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_SIG_PAIR;
    f.data = data;
    f.data_len = 3;
    f.data2 = data + 3;
    f.data2_len = 5;
    roundtrip(&f);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_SIGN_PAIR;
    f.id = 11;
    f.key_id = 2;
    f.key2_id = 5;
    f.data = data;
    f.data_len = 3;
    f.data2 = data + 3;
    f.data2_len = 5;
    f.off = 1;
    f.olen = 3;
    roundtrip(&f);
    f.olen = 4;                     /* the placeholder at the very end */
    roundtrip(&f);
    f.olen = 5;                     /* past the end: not encoded */
    assert_int_equal(signer_frame_size(&f), 0);
    f.olen = 0;
    assert_int_equal(signer_frame_size(&f), 0);
    f.olen = 1;
    f.data_len = 0;                 /* no certificate to sign */
    assert_int_equal(signer_frame_size(&f), 0);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_READY;
    roundtrip(&f);
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_ERROR;
    f.code = SIGNER_E_UNKNOWN_KEY;
    f.msg = "no such key";
    f.msg_len = strlen(f.msg);
    roundtrip(&f);

    /* out of bounds: not encoded */
    memset(big, 'a', sizeof(big));
    memset(&f, 0, sizeof(f));
    f.type = SIGNER_T_LOOKUP;
    f.keyref = big;
    f.keyref_len = SIGNER_MAX_KEYREF + 1;
    assert_int_equal(signer_frame_size(&f), 0);
    f.keyref_len = 0;               /* empty key reference */
    assert_int_equal(signer_frame_size(&f), 0);
    f.keyref = "a\0b";              /* NUL inside */
    f.keyref_len = 3;
    assert_false(signer_frame_encode(&f, body, sizeof(body), &len));
    memset(&f, 0, sizeof(f));
    f.type = 0x55;                  /* unknown type */
    assert_int_equal(signer_frame_size(&f), 0);

    /* the length prefix */
    assert_true(signer_frame_len(hdr, SIGNER_MAX_FRAME, &len));
    assert_int_equal(len, 5);
    hdr[3] = 4;
    assert_false(signer_frame_len(hdr, SIGNER_MAX_FRAME, &len));
    hdr[3] = 0;
    assert_false(signer_frame_len(hdr, SIGNER_MAX_FRAME, &len));
    hdr[0] = (SIGNER_MAX_FRAME >> 24) & 0xff;
    hdr[1] = (SIGNER_MAX_FRAME >> 16) & 0xff;
    hdr[2] = (SIGNER_MAX_FRAME >> 8) & 0xff;
    hdr[3] = SIGNER_MAX_FRAME & 0xff;
    assert_true(signer_frame_len(hdr, SIGNER_MAX_FRAME, &len));
    hdr[3]++;
    assert_false(signer_frame_len(hdr, SIGNER_MAX_FRAME, &len));
    memset(hdr, 0xff, 4);
    assert_false(signer_frame_len(hdr, SIGNER_MAX_FRAME, &len));
    hdr[0] = hdr[1] = 0;
    hdr[2] = 0x40;                  /* 16 KiB + ... over a reply's bound */
    assert_false(signer_frame_len(hdr, SIGNER_MAX_REPLY - 4, &len));

    /* hand-made bodies: a string length past the end, a NUL in the md, an
     * unknown KEY flag, an ERROR with code 0 */
    memcpy(body, "\x01\0\0\0\x01\x00\x10" "abc", 10);
    assert_false(signer_frame_decode(body, 10, &g));
    memcpy(body, "\x01\0\0\0\x01\x00\x01" "a" "\x00\x02" "S\0", 12);
    assert_false(signer_frame_decode(body, 12, &g));
    memcpy(body, "\x81\0\0\0\x01\0\0\0\0\x02\x00\x00\x00\x01" "p\x00\x01" "a",
           18);
    assert_false(signer_frame_decode(body, 18, &g));
    body[9] = 0x01;
    assert_true(signer_frame_decode(body, 18, &g));
    memcpy(body, "\x84\0\0\0\x01\x00\x00\x00", 8);
    assert_false(signer_frame_decode(body, 8, &g));
}

/* ---- signatures through the signer ---- */

/* Verifies |sig| over |tbs| under |pub| with the digest |md| (NULL for
 * EdDSA), with PSS padding for RSA-PSS keys. */
static int verify_raw(EVP_PKEY *pub, const char *md, const unsigned char *tbs,
                      size_t tbslen, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *v = EVP_MD_CTX_new();
    int ok = v != NULL
        && EVP_DigestVerifyInit_ex(v, NULL, md, NULL, NULL, pub, NULL) == 1
        && EVP_DigestVerify(v, sig, siglen, tbs, tbslen) == 1;

    EVP_MD_CTX_free(v);
    ERR_clear_error();
    return ok;
}

/* A self-signed test certificate signed by |s|. */
static X509 *make_cert(CA_SIGNER *s, const char *cn)
{
    X509_NAME *n = NULL;
    X509 *x;
    char err[256], dn[128];

    snprintf(dn, sizeof(dn), "/O=Test/CN=%s", cn);
    assert_int_equal(ca_name_parse(dn, &n, err, sizeof(err)), 1);
    x = ca_make_ca_cert(n, ca_signer_get0_pubkey(s), 30, NULL, s, -1, err,
                        sizeof(err));
    if (x == NULL)
        fail_msg("%s: %s", cn, err);
    X509_NAME_free(n);
    return x;
}

/* An unsigned CRL with one revoked serial, issued by |issuer|. */
static X509_CRL *make_crl(X509 *issuer)
{
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));

    assert_non_null(crl);
    assert_true(X509_CRL_set_version(crl, 1));
    assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)));
    assert_true(X509_CRL_set1_lastUpdate(crl, t));
    assert_true(X509_CRL_set1_nextUpdate(crl, t));
    assert_true(ASN1_INTEGER_set(sn, 12345));
    assert_true(X509_REVOKED_set_serialNumber(rev, sn));
    assert_true(X509_REVOKED_set_revocationDate(rev, t));
    assert_true(X509_CRL_add0_revoked(crl, rev));
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(t);
    return crl;
}

static void check_type(const char *type)
{
    static const unsigned char msg[] = "bytes the signer process signs";
    EVP_PKEY *k = gen_key(type);
    CA_SIGNER *local = ca_signer_new_pkey(k, NULL), *remote = NULL;
    SIGNER_KEYS *keys = signer_keys_new();
    struct rig r;
    const unsigned char *la, *ra;
    size_t lal, ral, siglen;
    unsigned char *sig = NULL, buf[SIGNER_MAX_SIG], *d1 = NULL, *d2 = NULL;
    X509 *x, *y;
    X509_CRL *crl;
    X509_NAME *name;
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    CA *ca;
    char err[256], ref[64];
    int l1, l2, det;

    assert_non_null(local);
    snprintf(ref, sizeof(ref), "test:%s", type);
    assert_true(signer_keys_add(keys, local, ref, NULL, type));
    rig_start(&r, keys, 2, 1, NULL);
    assert_int_equal(signer_client_lookup(r.client, ref, NULL, &remote, err,
                                          sizeof(err)), CA_SIGNER_OK);
    assert_true(ca_signer_is_remote(remote));
    assert_false(ca_signer_is_remote(local));
    assert_int_equal(EVP_PKEY_eq(ca_signer_get0_pubkey(remote), k), 1);
    assert_string_equal(ca_signer_get0_keyref(remote), ref);
    if (ca_signer_get0_md(local) == NULL)
        assert_null(ca_signer_get0_md(remote));
    else
        assert_string_equal(ca_signer_get0_md(remote),
                            ca_signer_get0_md(local));
    assert_int_equal(ca_signer_max_sig_len(remote),
                     ca_signer_max_sig_len(local));
    assert_true(ca_signer_get0_sigalg_der(local, &la, &lal));
    assert_true(ca_signer_get0_sigalg_der(remote, &ra, &ral));
    assert_memory_equal(la, ra, lal);
    assert_int_equal(lal, ral);
    /* only the digest it has */
    assert_true(ca_signer_set_md(remote, ca_signer_get0_md(local)));
    if (ca_signer_get0_md(local) != NULL)
        assert_false(ca_signer_set_md(remote, "SHA3-512"));

    /* raw bytes: sign_buf and sign_data */
    siglen = sizeof(buf);
    assert_true(ca_signer_sign_buf(remote, msg, sizeof(msg), buf, &siglen));
    assert_true(verify_raw(k, ca_signer_get0_md(local), msg, sizeof(msg), buf,
                           siglen));
    assert_true(ca_signer_sign_data(remote, msg, sizeof(msg), &sig, &siglen));
    assert_true(verify_raw(k, ca_signer_get0_md(local), msg, sizeof(msg), sig,
                           siglen));
    OPENSSL_free(sig);
    /* a buffer too small is refused before anything is sent */
    siglen = ca_signer_max_sig_len(remote) - 1;
    assert_false(ca_signer_sign_buf(remote, msg, sizeof(msg), buf, &siglen));
    /* the key matches its certificate, and a CA can be built on it */
    x = make_cert(remote, type);
    assert_int_equal(X509_verify(x, k), 1);
    assert_true(ca_signer_matches_cert(remote, x));
    assert_non_null(ca = ca_new("remote", x, NULL, remote, err, sizeof(err)));
    ca_free(ca);
    /* EdDSA is deterministic: the same certificate byte for byte */
    det = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519
        || EVP_PKEY_get_base_id(k) == EVP_PKEY_ED448;
    if (det) {
        assert_non_null(y = X509_dup(x));
        assert_true(ca_signer_sign_x509(local, y));
        assert_true((l1 = i2d_X509(x, &d1)) > 0);
        assert_true((l2 = i2d_X509(y, &d2)) > 0);
        assert_int_equal(l1, l2);
        assert_memory_equal(d1, d2, (size_t)l1);
        OPENSSL_free(d1);
        OPENSSL_free(d2);
        X509_free(y);
    }
    /* a CRL */
    crl = make_crl(x);
    assert_true(ca_signer_sign_crl(remote, crl));
    assert_int_equal(X509_CRL_verify(crl, k), 1);
    d1 = NULL;
    assert_true(i2d_X509_CRL(crl, &d1) > 0);
    OPENSSL_free(d1);
    X509_CRL_free(crl);
    /* a BasicOCSPResponse (responderID by key, producedAt, signature; the
     * responder certificate included), checked as a client checks it */
    {
        OCSP_BASICRESP *obs = OCSP_BASICRESP_new();
        OCSP_CERTID *cid = OCSP_cert_to_id(NULL, x, x);
        ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
        X509_STORE *xs = X509_STORE_new();
        STACK_OF(X509) *none = sk_X509_new_null();

        assert_non_null(obs);
        assert_non_null(cid);
        assert_non_null(OCSP_basic_add1_status(obs, cid, V_OCSP_CERTSTATUS_GOOD,
                                               0, NULL, now, NULL));
        assert_true(ca_signer_sign_ocsp(remote, obs, x, NULL, OCSP_RESPID_KEY));
        assert_non_null(OCSP_resp_get0_produced_at(obs));
        assert_int_equal(ASN1_item_verify(ASN1_ITEM_rptr(OCSP_RESPDATA),
                                          OCSP_resp_get0_tbs_sigalg(obs),
                                          OCSP_resp_get0_signature(obs),
                                          OCSP_resp_get0_respdata(obs), k), 1);
        assert_true(X509_STORE_add_cert(xs, x));
        assert_int_equal(OCSP_basic_verify(obs, none, xs, OCSP_TRUSTOTHER), 1);
        sk_X509_free(none);
        X509_STORE_free(xs);
        ASN1_TIME_free(now);
        OCSP_CERTID_free(cid);
        OCSP_BASICRESP_free(obs);
        ERR_clear_error();
    }
    /* an item (as the CMP layer signs ProtectedPart) */
    name = X509_get_subject_name(x);
    assert_true(ca_signer_sign_item(remote, ASN1_ITEM_rptr(X509_NAME), alg,
                                    NULL, bs, name));
    assert_int_equal(ASN1_item_verify(ASN1_ITEM_rptr(X509_NAME), alg, bs,
                                      name, k), 1);
    X509_free(x);
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(bs);
    ca_signer_free(remote);
    rig_stop(&r, NULL);
    assert_int_equal(r.rc[0], SIGNER_SERVE_EOF);
    assert_int_equal(r.rc[1], SIGNER_SERVE_EOF);
    ca_signer_free(local);
    EVP_PKEY_free(k);
}

static void test_every_key_type(void **state)
{
    size_t i;

    for (i = 0; i < NTYPES; i++)
        check_type(key_types[i]);
}

/* ---- refusals on a raw channel ---- */

/* Sends |len| bytes, reads one reply frame into |f| (body in |buf|).
 * Returns 1 if a frame came back, 0 on EOF. */
static int raw_call(int fd, const void *req, size_t len, uint8_t *buf,
                    struct signer_frame *f)
{
    uint8_t hdr[4];
    size_t blen;

    if (len > 0)
        assert_int_equal(write(fd, req, len), (ssize_t)len);
    if (read(fd, hdr, 4) != 4)
        return 0;
    assert_true(signer_frame_len(hdr, SIGNER_MAX_REPLY, &blen));
    assert_int_equal(read(fd, buf, blen), (ssize_t)blen);
    assert_true(signer_frame_decode(buf, blen, f));
    return 1;
}

/* Sends |len| bytes the signer must refuse by ending the channel: its
 * thread returns (joined here) with |want|. */
static void raw_fatal(struct rig *r, int fd, const void *req, size_t len,
                      enum signer_serve_rc want)
{
    assert_int_equal(write(fd, req, len), (ssize_t)len);
    pthread_join(r->th[0], NULL);
    r->joined[0] = 1;
    assert_int_equal(r->rc[0], want);
}

/* A fresh rig with one P-256 key "k" on one raw channel. */
static void raw_rig(struct rig *r, int *fd, EVP_PKEY **k)
{
    SIGNER_KEYS *keys = signer_keys_new();
    CA_SIGNER *s;

    *k = gen_key("ec:P-256");
    s = ca_signer_new_pkey(*k, NULL);
    assert_true(signer_keys_add(keys, s, "k", NULL, "test key"));
    ca_signer_free(s);
    rig_start(r, keys, 1, 0, fd);
}

static void test_refused(void **state)
{
    struct rig r;
    int fd;
    EVP_PKEY *k;
    uint8_t buf[SIGNER_MAX_REPLY], req[64];
    struct signer_frame f, q;
    size_t len;

    /* garbage of a valid length: refused, the channel still serves */
    raw_rig(&r, &fd, &k);
    assert_true(raw_call(fd, "\0\0\0\x06\x55\0\0\0\x09\x01", 10, buf, &f));
    assert_int_equal(f.type, SIGNER_T_ERROR);
    assert_int_equal(f.code, SIGNER_E_MALFORMED);
    assert_int_equal(f.id, 9);
    /* a reply type as a request */
    assert_true(raw_call(fd, "\0\0\0\x05\x83\0\0\0\x0a", 9, buf, &f));
    assert_int_equal(f.code, SIGNER_E_MALFORMED);
    /* a LOOKUP whose string runs past the frame */
    assert_true(raw_call(fd, "\0\0\0\x08\x01\0\0\0\x0b\x00\x09k", 12, buf, &f));
    assert_int_equal(f.code, SIGNER_E_MALFORMED);
    /* unknown key reference; the right one with another digest */
    memset(&q, 0, sizeof(q));
    q.type = SIGNER_T_LOOKUP;
    q.id = 12;
    q.keyref = "/etc/shadow";
    q.keyref_len = strlen(q.keyref);
    q.md = "";
    assert_true(signer_frame_encode(&q, req, sizeof(req), &len));
    assert_true(raw_call(fd, req, len, buf, &f));
    assert_int_equal(f.type, SIGNER_T_ERROR);
    assert_int_equal(f.code, SIGNER_E_UNKNOWN_KEY);
    assert_int_equal(f.id, 12);
    q.keyref = "k";
    q.keyref_len = 1;
    q.md = "SHA512";
    q.md_len = 6;
    assert_true(signer_frame_encode(&q, req, sizeof(req), &len));
    assert_true(raw_call(fd, req, len, buf, &f));
    assert_int_equal(f.code, SIGNER_E_UNKNOWN_KEY);
    q.md_len = 0;
    assert_true(signer_frame_encode(&q, req, sizeof(req), &len));
    assert_true(raw_call(fd, req, len, buf, &f));
    assert_int_equal(f.type, SIGNER_T_KEY);
    assert_int_equal(f.key_id, 0);
    /* SIGN with a key id it never loaded */
    memset(&q, 0, sizeof(q));
    q.type = SIGNER_T_SIGN;
    q.id = 13;
    q.key_id = 1;
    q.data = (const uint8_t *)"tbs";
    q.data_len = 3;
    assert_true(signer_frame_encode(&q, req, sizeof(req), &len));
    assert_true(raw_call(fd, req, len, buf, &f));
    assert_int_equal(f.type, SIGNER_T_ERROR);
    assert_int_equal(f.code, SIGNER_E_UNKNOWN_KEY);
    q.key_id = 0xffffffff;
    assert_true(signer_frame_encode(&q, req, sizeof(req), &len));
    assert_true(raw_call(fd, req, len, buf, &f));
    assert_int_equal(f.code, SIGNER_E_UNKNOWN_KEY);
    q.key_id = 0;                   /* and the right one signs */
    assert_true(signer_frame_encode(&q, req, sizeof(req), &len));
    assert_true(raw_call(fd, req, len, buf, &f));
    assert_int_equal(f.type, SIGNER_T_SIG);
    assert_true(verify_raw(k, "SHA256", (const uint8_t *)"tbs", 3, f.data,
                           f.data_len));
    /* an oversized length: refused before any allocation, channel ended */
    raw_fatal(&r, fd, "\x04\0\0\x01", 4, SIGNER_SERVE_PROTO);
    rig_stop(&r, &fd);
    EVP_PKEY_free(k);
    raw_rig(&r, &fd, &k);
    raw_fatal(&r, fd, "\xff\xff\xff\xff", 4, SIGNER_SERVE_PROTO);
    rig_stop(&r, &fd);
    EVP_PKEY_free(k);

    /* a length under the minimum */
    raw_rig(&r, &fd, &k);
    raw_fatal(&r, fd, "\0\0\0\x04\x01\0\0\0", 8, SIGNER_SERVE_PROTO);
    rig_stop(&r, &fd);
    EVP_PKEY_free(k);

    /* the peer goes away inside a frame */
    raw_rig(&r, &fd, &k);
    assert_int_equal(write(fd, "\0\0\1\0\x02\0\0", 7), 7);
    shutdown(fd, SHUT_WR);
    rig_stop(&r, &fd);
    assert_int_equal(r.rc[0], SIGNER_SERVE_PROTO);
    EVP_PKEY_free(k);
}

/* ---- the client ---- */

struct worker {
    CA_SIGNER *s;
    EVP_PKEY *k;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char tbs[64], sig[SIGNER_MAX_SIG];
    size_t siglen;
    int i;

    w->ok = 0;
    for (i = 0; i < 100; i++) {
        memset(tbs, i, sizeof(tbs));
        siglen = sizeof(sig);
        if (!ca_signer_sign_buf(w->s, tbs, sizeof(tbs), sig, &siglen)
            || !verify_raw(w->k, "SHA256", tbs, sizeof(tbs), sig, siglen))
            return NULL;
    }
    w->ok = 1;
    return NULL;
}

/* Eight threads signing with |s| at once: every signature verifies
 * with |k|. */
static void run_workers(CA_SIGNER *s, EVP_PKEY *k)
{
    struct worker w[8];
    pthread_t th[8];
    size_t i;

    for (i = 0; i < 8; i++) {
        w[i].s = s;
        w[i].k = k;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 1);
    }
}

static void test_client(void **state)
{
    EVP_PKEY *k = gen_key("ec:P-256");
    CA_SIGNER *local = ca_signer_new_pkey(k, NULL), *remote = NULL, *s2;
    SIGNER_KEYS *keys = signer_keys_new();
    struct ca_signer_opts o = { 0 };
    struct rig r;
    unsigned char sig[SIGNER_MAX_SIG];
    size_t siglen, i;
    char err[256];

    assert_true(signer_keys_add(keys, local, "k", NULL, "test key"));
    assert_true(signer_keys_add(keys, local, "k", NULL, "again"));
    assert_int_equal(signer_keys_count(keys), 1);
    rig_start(&r, keys, 2, 1, NULL);
    /* unknown key reference */
    assert_int_equal(signer_client_lookup(r.client, "nokey", NULL, &s2, err,
                                          sizeof(err)), CA_SIGNER_NOKEY);
    assert_null(s2);
    assert_non_null(strstr(err, "holds no key nokey"));
    /* ca_signer_load() through the client: the passphrase spec is never
     * read (this one would fail) */
    signer_client_install(r.client);
    o.pass_spec = "env:CMPCA_TEST_SIGNER_UNSET";
    unsetenv("CMPCA_TEST_SIGNER_UNSET");
    assert_int_equal(ca_signer_load("k", &o, &remote, err, sizeof(err)),
                     CA_SIGNER_OK);
    assert_int_equal(ca_signer_load("/no/such/key.pem", &o, &s2, err,
                                    sizeof(err)), CA_SIGNER_NOKEY);
    signer_client_install(NULL);
    assert_true(ca_signer_is_remote(remote));
    /* eight threads on two channels */
    run_workers(remote, k);
    assert_false(signer_client_broken(r.client));
    /* the signer's side goes away: the request fails, the client is broken
     * for good */
    for (i = 0; i < r.n; i++)
        shutdown(r.sfd[i], SHUT_RDWR);
    siglen = sizeof(sig);
    assert_false(ca_signer_sign_buf(remote, (const uint8_t *)"x", 1, sig,
                                    &siglen));
    assert_true(signer_client_broken(r.client));
    assert_false(ca_signer_sign_buf(remote, (const uint8_t *)"x", 1, sig,
                                    &siglen));
    ca_signer_free(remote);
    rig_stop(&r, NULL);
    ca_signer_free(local);
    EVP_PKEY_free(k);
}

/* A message carrying a certificate: SEQUENCE { INTEGER 5, [1] {
 * SEQUENCE { cert } }, OCTET STRING "tail" } into |out|; sets *off. */
static size_t msg_with(const unsigned char *cert, size_t len,
                       unsigned char *out, size_t *off)
{
    unsigned char in1[4096], in2[4096], *w;
    size_t n1, n2, n;

    w = in1;
    ASN1_put_object(&w, 1, (int)len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    n1 = (size_t)(w - in1);
    memcpy(w, cert, len);
    n1 += len;
    w = in2;
    memcpy(w, "\x02\x01\x05", 3);
    w += 3;
    ASN1_put_object(&w, 1, (int)n1, 1, V_ASN1_CONTEXT_SPECIFIC);
    *off = (size_t)(w - in2) + (n1 - len);
    memcpy(w, in1, n1);
    w += n1;
    memcpy(w, "\x04\x04tail", 6);
    w += 6;
    n2 = (size_t)(w - in2);
    w = out;
    ASN1_put_object(&w, 1, (int)n2, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    n = (size_t)(w - out);
    *off += n;
    memcpy(w, in2, n2);
    return n + n2;
}

/* ca_signer_sign_cert_and_msg() with |cs| and |ms| (keys of |k|): the
 * certificate verifies, the message signature verifies over the message
 * with the certificate in place of the placeholder. */
static void check_pair(const CA_SIGNER *cs, const CA_SIGNER *ms, EVP_PKEY *k)
{
    X509 *x = X509_new(), *got;
    unsigned char *tbs = NULL, *ph = NULL, *cert = NULL, *spliced = NULL;
    unsigned char zero[80] = { 0 }, msg[8192], sig[SIGNER_MAX_SIG];
    const unsigned char *alg, *p;
    size_t alglen, phlen, certlen, msglen, off, siglen, slen, goodoff;
    int tbslen;

    /* an unsigned certificate: its TBS and a placeholder with zeros */
    assert_non_null(x);
    assert_true(X509_set_version(x, 2));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242));
    assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
                                           MBSTRING_ASC,
                                           (const unsigned char *)"pair", -1,
                                           -1, 0));
    assert_true(X509_set_issuer_name(x, X509_get_subject_name(x)));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_true(X509_set_pubkey(x, k));
    assert_true(ca_signer_sign_x509(cs, x));    /* sets the algorithms */
    assert_true((tbslen = i2d_re_X509_tbs(x, &tbs)) > 0);
    assert_true(ca_signer_get0_sigalg_der(cs, &alg, &alglen));
    assert_true(ca_cert_der_join(tbs, (size_t)tbslen, alg, alglen, zero,
                                 ca_signer_max_sig_len(cs), &ph, &phlen));
    msglen = msg_with(ph, phlen, msg, &off);
    goodoff = off;
    siglen = sizeof(sig);
    assert_true(ca_signer_sign_cert_and_msg(cs, tbs, (size_t)tbslen, ms, msg,
                                            msglen, off, phlen, &cert,
                                            &certlen, sig, &siglen));
    p = cert;
    assert_non_null(got = d2i_X509(NULL, &p, (long)certlen));
    assert_ptr_equal(p, cert + certlen);
    assert_int_equal(X509_verify(got, k), 1);
    assert_true(der_splice(msg, msglen, off, phlen, cert, certlen, &spliced,
                           &slen));
    assert_true(verify_raw(k, "SHA256", spliced, slen, sig, siglen));
    X509_free(got);
    OPENSSL_free(cert);
    OPENSSL_free(spliced);
    /* a range that is not the placeholder: refused, nothing returned */
    siglen = sizeof(sig);
    assert_false(ca_signer_sign_cert_and_msg(cs, tbs, (size_t)tbslen, ms, msg,
                                             msglen, goodoff + 1, phlen - 1,
                                             &cert, &certlen, sig, &siglen));
    assert_null(cert);
    /* too small a buffer for the message's signature */
    siglen = 8;
    assert_false(ca_signer_sign_cert_and_msg(cs, tbs, (size_t)tbslen, ms, msg,
                                             msglen, goodoff, phlen, &cert,
                                             &certlen, sig, &siglen));
    OPENSSL_free(tbs);
    OPENSSL_free(ph);
    X509_free(x);
}

static void test_sign_pair(void **state)
{
    EVP_PKEY *k = gen_key("ec:P-256");
    CA_SIGNER *local = ca_signer_new_pkey(k, NULL), *remote = NULL;
    SIGNER_KEYS *keys = signer_keys_new();
    struct rig r;
    char err[256];

    (void)state;
    assert_true(signer_keys_add(keys, local, "k", NULL, "test key"));
    rig_start(&r, keys, 2, 1, NULL);
    assert_int_equal(signer_client_lookup(r.client, "k", NULL, &remote, err,
                                          sizeof(err)), CA_SIGNER_OK);
    check_pair(local, local, k);        /* in this process: one by one */
    check_pair(remote, remote, k);      /* one round trip */
    check_pair(remote, local, k);       /* mixed: one by one */
    assert_false(signer_client_broken(r.client));
    ca_signer_free(remote);
    rig_stop(&r, NULL);
    ca_signer_free(local);
    EVP_PKEY_free(k);
}

/* signer_chan_cpu() of a thread allowed on one CPU only */
static void *one_cpu_main(void *arg)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(sched_getcpu(), &set);
    *(int *)arg = pthread_setaffinity_np(pthread_self(), sizeof(set), &set)
        == 0 ? signer_chan_cpu(0) : -2;
    return NULL;
}

static void test_affinity(void **state)
{
    EVP_PKEY *k = gen_key("ec:P-256");
    CA_SIGNER *local = ca_signer_new_pkey(k, NULL), *remote = NULL;
    SIGNER_KEYS *keys = signer_keys_new();
    cpu_set_t set;
    pthread_t th[1];
    struct rig r;
    size_t i, ncpu;
    int cpu, one = -3;
    char err[256];

    /* the table: the CPUs this process may use, in turn; none with one */
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    ncpu = (size_t)CPU_COUNT(&set);
    for (i = 0; i < 2 * MAXCH; i++) {
        cpu = signer_chan_cpu(i);
        if (ncpu < 2) {
            assert_int_equal(cpu, -1);
            continue;
        }
        assert_true(cpu >= 0 && CPU_ISSET(cpu, &set));
        assert_int_equal(cpu, signer_chan_cpu(i + ncpu));
        if (i > 0 && i % ncpu != 0)
            assert_true(cpu > signer_chan_cpu(i - 1));
    }
    assert_int_equal(pthread_create(&th[0], NULL, one_cpu_main, &one), 0);
    pthread_join(th[0], NULL);
    assert_int_equal(one, -1);
    /* pinned serving threads and a client tied to their CPUs: eight
     * threads on four channels, every signature good */
    assert_true(signer_keys_add(keys, local, "k", NULL, "test key"));
    serve_pin = 1;
    rig_start(&r, keys, MAXCH, 1, NULL);
    signer_client_set_affinity(r.client);
    assert_int_equal(signer_client_lookup(r.client, "k", NULL, &remote, err,
                                          sizeof(err)), CA_SIGNER_OK);
    run_workers(remote, k);
    assert_false(signer_client_broken(r.client));
    ca_signer_free(remote);
    rig_stop(&r, NULL);
    serve_pin = 0;
    ca_signer_free(local);
    EVP_PKEY_free(k);
    (void)state;
}

/* ---- the buffered operation log ---- */

/* Reads what |fd| (a file) holds into |buf| of |cap| bytes. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    ssize_t r = pread(fd, buf, cap - 1, 0);

    assert_true(r >= 0);
    buf[r] = '\0';
    return (size_t)r;
}

/* How often |needle| occurs in |hay|. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

static void test_log_buffered(void **state)
{
    EVP_PKEY *k = gen_key("ec:P-256");
    CA_SIGNER *local = ca_signer_new_pkey(k, NULL), *remote = NULL, *s2;
    SIGNER_KEYS *keys = signer_keys_new();
    char path[] = "/tmp/test_signer_log.XXXXXX", buf[8192], err[256];
    unsigned char sig[SIGNER_MAX_SIG];
    const char *p, *q;
    size_t siglen;
    int fd = mkstemp(path), i;
    struct rig r;

    assert_true(fd >= 0);
    unlink(path);
    log_set_level(LOG_INFO);
    signer_log_set_buffered(fd);
    assert_true(signer_keys_add(keys, local, "k", NULL, "log key"));
    rig_start(&r, keys, 1, 1, NULL);
    assert_int_equal(signer_client_lookup(r.client, "k", NULL, &remote, err,
                                          sizeof(err)), CA_SIGNER_OK);
    for (i = 0; i < 3; i++) {
        siglen = sizeof(sig);
        assert_true(ca_signer_sign_buf(remote, (const uint8_t *)"abc", 3, sig,
                                       &siglen));
    }
    /* info lines wait in the buffer */
    assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
    /* the signer thread logs a signature after its reply: the third line
     * may reach the buffer a moment after the client has its signature */
    for (i = 0; i < 500 && count_of(buf, "info signer: sign key=0") < 3; i++) {
        if (i > 0)
            usleep(10000);
        signer_log_flush();
        read_all(fd, buf, sizeof(buf));
    }
    p = strstr(buf, "info signer: lookup key=0 (log key) ref=k\n");
    assert_non_null(p);
    for (i = 0; i < 3; i++) {
        q = strstr(p, "info signer: sign key=0 (log key) bytes=3 sha256="
                      "ba7816bf8f01cfea us=");
        assert_non_null(q);
        p = q + strlen("info signer: sign");
    }
    assert_null(strstr(p, "signer: sign"));
    /* a refusal is written at once, after the buffered lines */
    siglen = sizeof(sig);
    assert_true(ca_signer_sign_buf(remote, (const uint8_t *)"abc", 3, sig,
                                   &siglen));
    assert_int_equal(signer_client_lookup(r.client, "nokey", NULL, &s2, err,
                                          sizeof(err)), CA_SIGNER_NOKEY);
    /* the fourth signature's line may still be on its way (as above) */
    for (i = 0; i < 500 && count_of(buf, "info signer: sign key=0") < 4; i++) {
        if (i > 0)
            usleep(10000);
        read_all(fd, buf, sizeof(buf));
    }
    p = strstr(buf, "us=");
    for (i = 0; i < 3; i++)
        p = strstr(p + 1, "us=");
    assert_non_null(p); /* the fourth signature */
    q = strstr(p, "warn signer: lookup of key 'nokey'");
    assert_non_null(q);
    assert_non_null(strchr(q, '\n'));
    ca_signer_free(remote);
    rig_stop(&r, NULL);
    signer_log_flush();
    signer_log_set_buffered(-1);
    log_set_level(LOG_ERROR);
    close(fd);
    ca_signer_free(local);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_every_key_type),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_client),
        cmocka_unit_test(test_affinity),
        cmocka_unit_test(test_sign_pair),
        cmocka_unit_test(test_log_buffered),
    };

    log_set_level(LOG_ERROR); /* one line per signature otherwise */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
