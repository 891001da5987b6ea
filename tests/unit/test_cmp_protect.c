/*
 * Protection of PKIMessages: signature algorithms allowed and refused,
 * signer lookup failures, PasswordBasedMac and PBMAC1 (with their DoS caps),
 * certHash per signature algorithm, each refusal checked down to its
 * failInfo bit through cmp_reason_fail_bit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ca/ca_signer.h"
#include "cmp/cmp_build.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"
#include "cmp_testpki.h"

#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>
#include <time.h>

static const unsigned char secret[] = "cmpca unit test secret";
#define SECRET_LEN (sizeof(secret) - 1)

static struct cmp_testpki ec_pki;

static int setup(void **state)
{
    return cmp_testpki_init(&ec_pki, "EC") ? 0 : -1;
}

static int teardown(void **state)
{
    cmp_testpki_free(&ec_pki);
    return 0;
}

/* A genm request from |cert| (sender, senderKID from it), extraCerts =
 * |cert| and |root|, unprotected. */
static CMP_MSG *make_req(X509 *cert, X509 *root)
{
    CMP_MSG *msg = cmp_rsp_new(NULL, CMP_BODY_GENM, cert, time(NULL));
    unsigned char tid[16];

    assert_non_null(msg);
    assert_true(cmp_body_set_genp(msg, NULL)); /* same representation */
    assert_true(RAND_bytes(tid, sizeof(tid)) > 0);
    msg->header->transactionID = ASN1_OCTET_STRING_new();
    assert_true(ASN1_OCTET_STRING_set(msg->header->transactionID, tid,
                                      sizeof(tid)));
    if (cert != NULL || root != NULL) {
        STACK_OF(X509) *sk = cmp_testpki_stack(cert, root, NULL);

        assert_true(cmp_msg_set1_extracerts(msg, NULL, sk, NULL));
        sk_X509_pop_free(sk, X509_free);
    }
    return msg;
}

/* Encodes, decodes (strict), finds the signer and verifies. */
static enum cmp_reason wire_verify(const CMP_MSG *msg)
{
    unsigned char *der = NULL;
    size_t len;
    CMP_MSG *in = NULL;
    X509 *signer;
    enum cmp_reason r;

    assert_true(cmp_msg_encode(msg, &der, &len));
    r = cmp_msg_decode(der, len, NULL, &in);
    OPENSSL_free(der);
    if (r != CMP_R_OK)
        return r;
    /* what a server does with a request */
    if ((r = cmp_msg_check_request(in, time(NULL), 300)) == CMP_R_OK
        && (r = cmp_protect_find_request_signer(in, &signer)) == CMP_R_OK)
        r = cmp_protect_verify_sig(in, signer);
    CMP_MSG_free(in);
    return r;
}

static int signer_buf_fn(void *arg, const unsigned char *tbs, size_t tbslen,
                         unsigned char *sig, size_t *siglen)
{
    return ca_signer_sign_buf(arg, tbs, tbslen, sig, siglen);
}

/* cmp_protect_sign_encode, the one-pass path of the server's responses:
 * the bytes verify, are strict DER (decoded and re-encoded unchanged) and
 * equal what the generic path encodes for the same message. */
static void sign_encode_kind(const char *kind, int nid)
{
    struct cmp_testpki pki;
    CMP_MSG *msg, *in = NULL;
    CA_SIGNER *s;
    STACK_OF(X509) *sk;
    const unsigned char *alg;
    unsigned char *extra = NULL, *der = NULL, *re = NULL, *gen = NULL;
    size_t alg_len, extra_len, len, relen, genlen;
    X509 *signer;

    assert_true(cmp_testpki_init(&pki, kind));
    assert_non_null(s = ca_signer_new_pkey(pki.srv_key, NULL));
    assert_true(ca_signer_get0_sigalg_der(s, &alg, &alg_len));
    msg = make_req(pki.srv, NULL);
    sk_X509_pop_free(msg->extraCerts, X509_free);
    msg->extraCerts = NULL;
    sk = cmp_testpki_stack(pki.srv, pki.root, NULL);
    assert_true(cmp_extracerts_der(NULL, sk, NULL, &extra, &extra_len));
    assert_true(cmp_protect_sign_encode(msg, alg, alg_len, signer_buf_fn, s,
                                        ca_signer_max_sig_len(s), extra,
                                        extra_len, &der, &len));
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm), nid);
    /* verifies after a strict decode */
    assert_int_equal(cmp_msg_decode(der, len, NULL, &in), CMP_R_OK);
    assert_int_equal(cmp_protect_check_sig_alg(in->header->protectionAlg),
                     CMP_R_OK);
    assert_int_equal(cmp_protect_find_signer(in, &signer), CMP_R_OK);
    assert_int_equal(cmp_protect_verify_sig(in, signer), CMP_R_OK);
    assert_int_equal(sk_X509_num(in->extraCerts), 2);
    assert_true(cmp_msg_encode(in, &re, &relen));
    assert_int_equal(relen, len);
    assert_memory_equal(re, der, len);
    /* the generic encoder makes the same bytes of the same message */
    assert_true(cmp_msg_set1_extracerts(msg, NULL, sk, NULL));
    assert_true(cmp_msg_encode(msg, &gen, &genlen));
    assert_int_equal(genlen, len);
    assert_memory_equal(gen, der, len);
    /* extraCerts set on the object would be left out: refused */
    OPENSSL_free(der);
    der = NULL;
    assert_false(cmp_protect_sign_encode(msg, alg, alg_len, signer_buf_fn, s,
                                         ca_signer_max_sig_len(s), extra,
                                         extra_len, &der, &len));
    assert_null(der);
    /* a signature that fails fails the call */
    sk_X509_pop_free(msg->extraCerts, X509_free);
    msg->extraCerts = NULL;
    assert_false(cmp_protect_sign_encode(msg, alg, alg_len, signer_buf_fn, s,
                                         8, extra, extra_len, &der, &len));
    assert_null(der);
    OPENSSL_free(gen);
    OPENSSL_free(re);
    OPENSSL_free(extra);
    CMP_MSG_free(in);
    CMP_MSG_free(msg);
    sk_X509_pop_free(sk, X509_free);
    ca_signer_free(s);
    cmp_testpki_free(&pki);
    ERR_clear_error();
}

static void test_sign_encode_p256(void **state) { sign_encode_kind("EC", NID_ecdsa_with_SHA256); }
static void test_sign_encode_p384(void **state) { sign_encode_kind("P-384", NID_ecdsa_with_SHA384); }
static void test_sign_encode_rsa(void **state) { sign_encode_kind("RSA", NID_sha256WithRSAEncryption); }
static void test_sign_encode_rsa_pss(void **state) { sign_encode_kind("RSA-PSS", NID_rsassaPss); }
static void test_sign_encode_ed25519(void **state) { sign_encode_kind("ED25519", NID_ED25519); }
static void test_sign_encode_ed448(void **state) { sign_encode_kind("ED448", NID_ED448); }

/* Signing with an explicit digest and optional PSS padding. */
struct sign_arg {
    EVP_PKEY *pkey;
    const char *md;
    int pss;
    const char *mgf1_md;    /* PSS: MGF1 hash if not |md| */
};

static int sign_md_fn(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                      X509_ALGOR *alg2, ASN1_BIT_STRING *sig, const void *data)
{
    struct sign_arg *a = arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (ctx == NULL
        || EVP_DigestSignInit_ex(ctx, &pctx, a->md, NULL, NULL, a->pkey, NULL) <= 0)
        goto end;
    if (a->pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
                   || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
        goto end;
    if (a->mgf1_md != NULL
        && EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->mgf1_md, NULL) <= 0)
        goto end;
    ok = ASN1_item_sign_ctx(it, alg1, alg2, sig, (void *)data, ctx) > 0;
 end:
    EVP_MD_CTX_free(ctx);
    return ok;
}

static void sign_with(CMP_MSG *msg, EVP_PKEY *pkey, const char *md, int pss)
{
    struct sign_arg a = { pkey, md, pss, NULL };

    if (!cmp_protect_sign(msg, sign_md_fn, &a))
        fail_msg("signing with %s/%s failed", EVP_PKEY_get0_type_name(pkey),
                 md != NULL ? md : "-");
}

/* ---- signature: allowed algorithms ---- */

static void round_trip_kind(const char *kind, int nid)
{
    struct cmp_testpki pki;
    CMP_MSG *msg;

    assert_true(cmp_testpki_init(&pki, kind));
    msg = make_req(pki.dev, pki.root);
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, pki.dev_key));
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm), nid);
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_OK);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    /* the signer may sit anywhere in extraCerts */
    {
        STACK_OF(X509) *sk = cmp_testpki_stack(pki.root, pki.srv, pki.dev, NULL);

        assert_true(cmp_msg_set1_extracerts(msg, NULL, sk, NULL));
        sk_X509_pop_free(sk, X509_free);
        assert_int_equal(wire_verify(msg), CMP_R_OK);
    }
    /* the wrong key of the same kind */
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, pki.srv_key));
    assert_int_equal(wire_verify(msg), CMP_R_BAD_SIGNATURE);
    CMP_MSG_free(msg);
    cmp_testpki_free(&pki);
}

static void test_sig_p256(void **state) { round_trip_kind("EC", NID_ecdsa_with_SHA256); }
static void test_sig_p384(void **state) { round_trip_kind("P-384", NID_ecdsa_with_SHA384); }
static void test_sig_rsa(void **state) { round_trip_kind("RSA", NID_sha256WithRSAEncryption); }
static void test_sig_rsa_pss_key(void **state) { round_trip_kind("RSA-PSS", NID_rsassaPss); }
static void test_sig_ed25519(void **state) { round_trip_kind("ED25519", NID_ED25519); }
static void test_sig_ed448(void **state) { round_trip_kind("ED448", NID_ED448); }

static void test_sig_more_digests(void **state)
{
    struct cmp_testpki rsa;
    CMP_MSG *msg;

    assert_true(cmp_testpki_init(&rsa, "RSA"));
    msg = make_req(rsa.dev, rsa.root);
    sign_with(msg, rsa.dev_key, "SHA384", 0);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    sign_with(msg, rsa.dev_key, "SHA512", 0);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    /* PSS padding with an rsaEncryption key */
    sign_with(msg, rsa.dev_key, "SHA256", 1);
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm),
                     NID_rsassaPss);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    CMP_MSG_free(msg);
    msg = make_req(ec_pki.dev, ec_pki.root);
    sign_with(msg, ec_pki.dev_key, "SHA384", 0);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    sign_with(msg, ec_pki.dev_key, "SHA512", 0);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    CMP_MSG_free(msg);
    cmp_testpki_free(&rsa);
}

/* ---- RFC 9481 signature algorithms, each signed with libcrypto,
 * verified by cmpca and tampered ---- */

/* Flips a byte of the protection and of the body: both must fail. */
static void tamper_sig(CMP_MSG *msg, const char *what)
{
    unsigned char *p = (unsigned char *)ASN1_STRING_get0_data(msg->protection);
    int n = ASN1_STRING_length(msg->protection);
    ASN1_OCTET_STRING *tid = msg->header->transactionID;
    unsigned char *t = (unsigned char *)ASN1_STRING_get0_data(tid);
    enum cmp_reason r;

    p[n / 2] ^= 0x01;
    if ((r = wire_verify(msg)) != CMP_R_BAD_SIGNATURE)
        fail_msg("%s, protection tampered: %s", what, cmp_reason_text(r));
    p[n / 2] ^= 0x01;
    t[0] ^= 0x01;
    if ((r = wire_verify(msg)) != CMP_R_BAD_SIGNATURE)
        fail_msg("%s, header tampered: %s", what, cmp_reason_text(r));
    t[0] ^= 0x01;
    if ((r = wire_verify(msg)) != CMP_R_OK)
        fail_msg("%s, restored: %s", what, cmp_reason_text(r));
}

static void test_sig_rfc9481_digests(void **state)
{
    static const struct {
        const char *kind, *md;
        int pss, nid;
    } c[] = {
        { "RSA", "SHA224", 0, NID_sha224WithRSAEncryption },
        { "RSA", "SHA256", 0, NID_sha256WithRSAEncryption },
        { "RSA", "SHA384", 0, NID_sha384WithRSAEncryption },
        { "RSA", "SHA512", 0, NID_sha512WithRSAEncryption },
        { "RSA", "SHA256", 1, NID_rsassaPss },
        { "RSA", "SHA384", 1, NID_rsassaPss },
        { "RSA", "SHA512", 1, NID_rsassaPss },
        { "RSA-PSS", "SHA256", 0, NID_rsassaPss },
        { "RSA-PSS", "SHA384", 0, NID_rsassaPss },
        { "RSA-PSS", "SHA512", 0, NID_rsassaPss },
        { "EC", "SHA224", 0, NID_ecdsa_with_SHA224 },
        { "EC", "SHA256", 0, NID_ecdsa_with_SHA256 },
        { "EC", "SHA384", 0, NID_ecdsa_with_SHA384 },
        { "EC", "SHA512", 0, NID_ecdsa_with_SHA512 },
        { "P-384", "SHA224", 0, NID_ecdsa_with_SHA224 },
        { "P-384", "SHA512", 0, NID_ecdsa_with_SHA512 },
        { "ED25519", NULL, 0, NID_ED25519 },
        { "ED448", NULL, 0, NID_ED448 },
    };
    size_t i;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        EVP_PKEY *key = cmp_testpki_key(c[i].kind);
        X509 *cert = cmp_testpki_cert(key, "alg", NULL, NULL, 0, 10);
        CMP_MSG *msg = make_req(cert, NULL);
        char what[64];

        snprintf(what, sizeof(what), "%s/%s%s", c[i].kind,
                 c[i].md != NULL ? c[i].md : "-", c[i].pss ? "/PSS" : "");
        sign_with(msg, key, c[i].md, c[i].pss);
        if (OBJ_obj2nid(msg->header->protectionAlg->algorithm) != c[i].nid)
            fail_msg("%s: signed as %s", what,
                     OBJ_nid2sn(OBJ_obj2nid(msg->header->protectionAlg->algorithm)));
        assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                         CMP_R_OK);
        if (wire_verify(msg) != CMP_R_OK)
            fail_msg("%s: %s", what, cmp_reason_text(wire_verify(msg)));
        tamper_sig(msg, what);
        CMP_MSG_free(msg);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
}

/* RSASSA-PSS parameters RFC 9481 does not allow: MGF1 with another hash,
 * trailerField other than 1, hash parameters not NULL. */
static void test_sig_pss_params(void **state)
{
    EVP_PKEY *key = cmp_testpki_key("RSA");
    X509 *cert = cmp_testpki_cert(key, "pss", NULL, NULL, 0, 10);
    CMP_MSG *msg = make_req(cert, NULL);
    struct sign_arg a = { key, "SHA256", 1, "SHA384" };
    RSA_PSS_PARAMS *pss;
    ASN1_STRING *seq = NULL;

    assert_true(cmp_protect_sign(msg, sign_md_fn, &a));
    /* libcrypto verifies it; RFC 9481 does not allow it */
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_BAD_ALG);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    /* trailerField 2 */
    sign_with(msg, key, "SHA256", 1);
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS),
                                    msg->header->protectionAlg->parameter);
    assert_non_null(pss);
    pss->trailerField = ASN1_INTEGER_new();
    ASN1_INTEGER_set(pss->trailerField, 2);
    assert_non_null(ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &seq));
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_rsassaPss),
                    V_ASN1_SEQUENCE, seq);
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_BAD_ALG);
    /* trailerField 1 written out explicitly is the same rule */
    ASN1_INTEGER_set(pss->trailerField, 1);
    seq = NULL;
    assert_non_null(ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &seq));
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_rsassaPss),
                    V_ASN1_SEQUENCE, seq);
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_OK);
    /* no maskGenAlgorithm: the default MGF1 is over SHA-1 */
    X509_ALGOR_free(pss->maskGenAlgorithm);
    pss->maskGenAlgorithm = NULL;
    seq = NULL;
    assert_non_null(ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &seq));
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_rsassaPss),
                    V_ASN1_SEQUENCE, seq);
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_BAD_ALG);
    RSA_PSS_PARAMS_free(pss);
    CMP_MSG_free(msg);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* Signs |msg| with ECDSA over SHAKE128 (32 octets) or SHAKE256 (64) of
 * DER(ProtectedPart), as RFC 8692 defines it, with libcrypto directly. */
static void sign_ecdsa_shake(CMP_MSG *msg, EVP_PKEY *key, int shake256)
{
    static const char *const oids[] = { "1.3.6.1.5.5.7.6.32",
                                        "1.3.6.1.5.5.7.6.33" };
    size_t mdlen = shake256 ? 64 : 32, siglen = 0;
    unsigned char *der = NULL, md[64], *sig;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    CMP_PROTPART pp;
    int len;

    X509_ALGOR_free(msg->header->protectionAlg);
    msg->header->protectionAlg = X509_ALGOR_new();
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_txt2obj(oids[shake256], 1),
                    V_ASN1_UNDEF, NULL);
    pp.header = msg->header;
    pp.body = msg->body;
    len = ASN1_item_i2d((const ASN1_VALUE *)&pp, &der, ASN1_ITEM_rptr(CMP_PROTPART));
    assert_true(len > 0);
    {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        EVP_MD *x = EVP_MD_fetch(NULL, shake256 ? "SHAKE256" : "SHAKE128", NULL);

        assert_true(EVP_DigestInit_ex(m, x, NULL));
        assert_true(EVP_DigestUpdate(m, der, (size_t)len));
        assert_true(EVP_DigestFinalXOF(m, md, mdlen));
        EVP_MD_CTX_free(m);
        EVP_MD_free(x);
    }
    assert_true(EVP_PKEY_sign_init(pctx) > 0);
    assert_true(EVP_PKEY_sign(pctx, NULL, &siglen, md, mdlen) > 0);
    sig = OPENSSL_malloc(siglen);
    assert_true(EVP_PKEY_sign(pctx, sig, &siglen, md, mdlen) > 0);
    ASN1_BIT_STRING_free(msg->protection);
    msg->protection = ASN1_BIT_STRING_new();
    ASN1_BIT_STRING_set(msg->protection, sig, (int)siglen);
    msg->protection->flags &= ~(long)0x07;
    msg->protection->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    OPENSSL_free(sig);
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(pctx);
}

static void test_sig_ecdsa_shake(void **state)
{
    static const char *const kinds[] = { "EC", "P-384" };
    size_t k;
    int shake256;

    for (k = 0; k < 2; k++) {
        EVP_PKEY *key = cmp_testpki_key(kinds[k]);
        X509 *cert = cmp_testpki_cert(key, "shake", NULL, NULL, 0, 10);

        for (shake256 = 0; shake256 <= 1; shake256++) {
            CMP_MSG *msg = make_req(cert, NULL);
            char what[32];

            snprintf(what, sizeof(what), "%s/SHAKE%s", kinds[k],
                     shake256 ? "256" : "128");
            sign_ecdsa_shake(msg, key, shake256);
            assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                             CMP_R_OK);
            assert_int_equal(cmp_protect_sig_alg_key_type(msg->header->protectionAlg),
                             NID_X9_62_id_ecPublicKey);
            if (wire_verify(msg) != CMP_R_OK)
                fail_msg("%s: %s", what, cmp_reason_text(wire_verify(msg)));
            tamper_sig(msg, what);
            /* parameters present: refused (RFC 8692: absent) */
            X509_ALGOR_set0(msg->header->protectionAlg,
                            OBJ_dup(msg->header->protectionAlg->algorithm),
                            V_ASN1_NULL, NULL);
            assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
            CMP_MSG_free(msg);
        }
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    /* the other SHAKE length than the OID says does not verify */
    {
        EVP_PKEY *key = cmp_testpki_key("EC");
        X509 *cert = cmp_testpki_cert(key, "shake", NULL, NULL, 0, 10);
        CMP_MSG *msg = make_req(cert, NULL);

        sign_ecdsa_shake(msg, key, 0);
        X509_ALGOR_set0(msg->header->protectionAlg,
                        OBJ_txt2obj("1.3.6.1.5.5.7.6.33", 1), V_ASN1_UNDEF, NULL);
        assert_int_equal(wire_verify(msg), CMP_R_BAD_SIGNATURE);
        CMP_MSG_free(msg);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    /* ECDSA-SHAKE named for an RSA certificate */
    {
        EVP_PKEY *key = cmp_testpki_key("RSA");
        X509 *cert = cmp_testpki_cert(key, "shake", NULL, NULL, 0, 10);
        CMP_MSG *msg = make_req(cert, NULL);

        sign_with(msg, key, "SHA256", 0);
        X509_ALGOR_set0(msg->header->protectionAlg,
                        OBJ_txt2obj("1.3.6.1.5.5.7.6.32", 1), V_ASN1_UNDEF, NULL);
        assert_int_equal(wire_verify(msg), CMP_R_BAD_SIGNATURE);
        CMP_MSG_free(msg);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
}

/* RSASSA-PSS with SHAKE128/SHAKE256 (RFC 8692 3.2) uses SHAKE as its mask
 * generation function, which libcrypto 3.0 cannot verify: badAlg. */
static void test_sig_pss_shake_refused(void **state)
{
    static const char *const oids[] = { "1.3.6.1.5.5.7.6.30",
                                        "1.3.6.1.5.5.7.6.31" };
    EVP_PKEY *key = cmp_testpki_key("RSA");
    X509 *cert = cmp_testpki_cert(key, "pss-shake", NULL, NULL, 0, 10);
    size_t i;

    for (i = 0; i < 2; i++) {
        CMP_MSG *msg = make_req(cert, NULL);

        sign_with(msg, key, "SHA256", 1);
        X509_ALGOR_set0(msg->header->protectionAlg, OBJ_txt2obj(oids[i], 1),
                        V_ASN1_UNDEF, NULL);
        assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                         CMP_R_BAD_ALG);
        assert_int_equal(cmp_protect_sig_alg_key_type(msg->header->protectionAlg),
                         NID_rsassaPss);
        assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
        CMP_MSG_free(msg);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- signature: refused algorithms ---- */

static void test_sig_bad_alg(void **state)
{
    struct cmp_testpki rsa;
    CMP_MSG *msg;

    assert_true(cmp_testpki_init(&rsa, "RSA"));
    msg = make_req(rsa.dev, rsa.root);
    sign_with(msg, rsa.dev_key, "SHA1", 0);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    sign_with(msg, rsa.dev_key, "MD5", 0);
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm),
                     NID_md5WithRSAEncryption);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    /* PSS over SHA-224 (not in RFC 9481) */
    sign_with(msg, rsa.dev_key, "SHA224", 1);
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm),
                     NID_rsassaPss);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    /* PSS over SHA-1 */
    sign_with(msg, rsa.dev_key, "SHA1", 1);
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm),
                     NID_rsassaPss);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    CMP_MSG_free(msg);
    msg = make_req(ec_pki.dev, ec_pki.root);
    sign_with(msg, ec_pki.dev_key, "SHA1", 0);
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm),
                     NID_ecdsa_with_SHA1);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_ALG), CMP_FAIL_BAD_ALG);
    /* PSS parameters absent (default SHA-1) and not a SEQUENCE */
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_rsassaPss),
                    V_ASN1_UNDEF, NULL);
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_BAD_ALG);
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_rsassaPss),
                    V_ASN1_NULL, NULL);
    assert_int_equal(cmp_protect_check_sig_alg(msg->header->protectionAlg),
                     CMP_R_BAD_ALG);
    /* an unknown OID */
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_txt2obj("1.2.3.4.5", 1),
                    V_ASN1_UNDEF, NULL);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_ALG);
    CMP_MSG_free(msg);
    cmp_testpki_free(&rsa);
}

/* The algorithm identifier names a different key type than the cert's. */
static void test_sig_alg_key_mismatch(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);

    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    X509_ALGOR_set0(msg->header->protectionAlg,
                    OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_SIGNATURE);
    X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_ED25519),
                    V_ASN1_UNDEF, NULL);
    assert_int_equal(wire_verify(msg), CMP_R_BAD_SIGNATURE);
    CMP_MSG_free(msg);
}

/* ---- signature: missing or inconsistent protection ---- */

static void test_unprotected(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);

    assert_int_equal(wire_verify(msg), CMP_R_UNPROTECTED);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_UNPROTECTED),
                     CMP_FAIL_BAD_MESSAGE_CHECK);
    assert_int_equal(cmp_protect_check_sig_alg(NULL), CMP_R_UNPROTECTED);
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_UNPROTECTED);
    /* protectionAlg without protection and the reverse */
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    {
        ASN1_BIT_STRING *p = msg->protection;

        msg->protection = NULL;
        assert_int_equal(wire_verify(msg), CMP_R_UNPROTECTED);
        msg->protection = p;
    }
    {
        X509_ALGOR *a = msg->header->protectionAlg;

        msg->header->protectionAlg = NULL;
        assert_int_equal(wire_verify(msg), CMP_R_NO_PROTECTION_ALG);
        assert_int_equal(cmp_reason_fail_bit(CMP_R_NO_PROTECTION_ALG),
                         CMP_FAIL_BAD_MESSAGE_CHECK);
        msg->header->protectionAlg = a;
    }
    assert_int_equal(wire_verify(msg), CMP_R_OK);
    CMP_MSG_free(msg);
}

static void test_wrong_key(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);

    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.srv_key));
    assert_int_equal(wire_verify(msg), CMP_R_BAD_SIGNATURE);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_SIGNATURE),
                     CMP_FAIL_BAD_MESSAGE_CHECK);
    CMP_MSG_free(msg);
}

static void test_sender_kid_mismatch(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);
    static const unsigned char kid[20] = { 1, 2, 3 };

    ASN1_OCTET_STRING_set(msg->header->senderKID, kid, sizeof(kid));
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_equal(wire_verify(msg), CMP_R_SENDER_KID_MISMATCH);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_SENDER_KID_MISMATCH),
                     CMP_FAIL_BAD_MESSAGE_CHECK);
    /* senderKID of another cert that is in extraCerts (the root's) */
    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID =
        ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ec_pki.root));
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_equal(wire_verify(msg), CMP_R_SENDER_MISMATCH);
    CMP_MSG_free(msg);
}

static void test_sender_mismatch(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);
    X509_NAME *other = X509_NAME_new();

    X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_ASC,
                               (const unsigned char *)"someone else", -1, -1, 0);
    GENERAL_NAME_free(msg->header->sender);
    msg->header->sender = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(msg->header->sender, GEN_DIRNAME, other);
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_equal(wire_verify(msg), CMP_R_SENDER_MISMATCH);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_SENDER_MISMATCH),
                     CMP_FAIL_BAD_MESSAGE_CHECK);
    /* without senderKID a request is refused; the lenient lookup of
     * clients selects by the name alone: no cert has that subject */
    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID = NULL;
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_equal(wire_verify(msg), CMP_R_NO_SENDER_KID);
    {
        X509 *found = NULL;

        assert_int_equal(cmp_protect_find_signer(msg, &found),
                         CMP_R_NO_SIGNER_CERT);
    }
    CMP_MSG_free(msg);
}

static void test_signer_absent(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);
    STACK_OF(X509) *sk = cmp_testpki_stack(ec_pki.root, ec_pki.srv, NULL);
    X509 *found = (X509 *)1;

    assert_true(cmp_msg_set1_extracerts(msg, NULL, sk, NULL));
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_not_equal(wire_verify(msg), CMP_R_OK);
    assert_int_equal(cmp_protect_find_signer(msg, &found), CMP_R_SENDER_KID_MISMATCH);
    assert_null(found);
    /* no senderKID: looked up by name, not there */
    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID = NULL;
    assert_int_equal(cmp_protect_find_signer(msg, &found), CMP_R_NO_SIGNER_CERT);
    /* no extraCerts at all */
    assert_true(cmp_msg_set1_extracerts(msg, NULL, NULL, NULL));
    assert_null(msg->extraCerts);
    assert_int_equal(cmp_protect_find_signer(msg, &found), CMP_R_NO_SIGNER_CERT);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_NO_SIGNER_CERT),
                     CMP_FAIL_BAD_MESSAGE_CHECK);
    sk_X509_pop_free(sk, X509_free);
    CMP_MSG_free(msg);
}

/* A cert without subjectKeyIdentifier: the lenient lookup (clients) finds
 * it by sender name; a request protected with it is refused, without
 * senderKID and with one (a senderKID never matches a name). */
static void test_signer_by_name(void **state)
{
    X509 *c = X509_dup(ec_pki.dev), *found = NULL;
    CMP_MSG *msg;
    int idx = X509_get_ext_by_NID(c, NID_subject_key_identifier, -1);

    X509_EXTENSION_free(X509_delete_ext(c, idx));
    assert_true(X509_sign(c, ec_pki.root_key, EVP_sha256()) > 0);
    assert_null(X509_get0_subject_key_id(c));
    msg = make_req(c, ec_pki.root);
    assert_null(msg->header->senderKID);
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_equal(cmp_protect_find_signer(msg, &found), CMP_R_OK);
    assert_ptr_equal(found, sk_X509_value(msg->extraCerts, 0));
    assert_int_equal(cmp_protect_verify_sig(msg, found), CMP_R_OK);
    assert_int_equal(wire_verify(msg), CMP_R_NO_SENDER_KID);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_NO_SENDER_KID),
                     CMP_FAIL_BAD_MESSAGE_CHECK);
    assert_int_equal(cmp_protect_find_request_signer(msg, &found),
                     CMP_R_NO_SENDER_KID);
    assert_null(found);
    /* a senderKID (the original SKI) does not select a cert without SKI */
    msg->header->senderKID =
        ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ec_pki.dev));
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_int_equal(wire_verify(msg), CMP_R_SENDER_KID_MISMATCH);
    assert_int_equal(cmp_protect_find_signer(msg, &found), CMP_R_OK);
    CMP_MSG_free(msg);
    X509_free(c);
}

/* cmp_protect_find_request_signer case by case. */
static void test_request_signer(void **state)
{
    CMP_MSG *msg = make_req(ec_pki.dev, ec_pki.root);
    STACK_OF(X509) *sk;
    static const unsigned char kid[20] = { 9, 9, 9 };
    X509 *found = NULL;

    assert_int_equal(cmp_protect_find_request_signer(msg, &found), CMP_R_OK);
    assert_ptr_equal(found, sk_X509_value(msg->extraCerts, 0));
    /* the signer last in extraCerts */
    sk = cmp_testpki_stack(ec_pki.root, ec_pki.srv, ec_pki.dev, NULL);
    assert_true(cmp_msg_set1_extracerts(msg, NULL, sk, NULL));
    sk_X509_pop_free(sk, X509_free);
    assert_int_equal(cmp_protect_find_request_signer(msg, &found), CMP_R_OK);
    assert_ptr_equal(found, sk_X509_value(msg->extraCerts, 2));
    /* senderKID of another certificate: its subject is not the sender */
    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID =
        ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ec_pki.srv));
    assert_int_equal(cmp_protect_find_request_signer(msg, &found),
                     CMP_R_SENDER_MISMATCH);
    assert_null(found);
    /* an unknown senderKID, the sender's certificate present */
    assert_true(ASN1_OCTET_STRING_set(msg->header->senderKID, kid, sizeof(kid)));
    assert_int_equal(cmp_protect_find_request_signer(msg, &found),
                     CMP_R_SENDER_KID_MISMATCH);
    /* ... and absent */
    sk = cmp_testpki_stack(ec_pki.root, ec_pki.srv, NULL);
    assert_true(cmp_msg_set1_extracerts(msg, NULL, sk, NULL));
    sk_X509_pop_free(sk, X509_free);
    assert_int_equal(cmp_protect_find_request_signer(msg, &found),
                     CMP_R_NO_SIGNER_CERT);
    /* an empty sender name never matches */
    ASN1_OCTET_STRING_free(msg->header->senderKID);
    msg->header->senderKID =
        ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ec_pki.srv));
    X509_NAME_free(msg->header->sender->d.directoryName);
    msg->header->sender->d.directoryName = X509_NAME_new();
    assert_int_equal(cmp_protect_find_request_signer(msg, &found),
                     CMP_R_SENDER_MISMATCH);
    CMP_MSG_free(msg);
}

/* ---- MAC ---- */

static void test_pbm_round_trip(void **state)
{
    CMP_MSG *msg = make_req(NULL, NULL);
    static const char *const mds[][2] = {
        { "SHA256", "SHA1" },    /* OpenSSL client default */
        { "SHA256", "SHA256" }, { "SHA512", "SHA512" }, { "SHA1", "SHA1" }
    };
    size_t i;

    for (i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
        assert_true(cmp_protect_mac_pbm(msg, secret, SECRET_LEN, mds[i][0],
                                        mds[i][1], 500));
        assert_true(cmp_protect_is_mac(msg));
        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                         CMP_R_OK);
        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN - 1, NULL),
                         CMP_R_BAD_MAC);
        assert_int_equal(cmp_protect_verify_mac(msg, (const unsigned char *)"x",
                                                1, NULL), CMP_R_BAD_MAC);
        /* a MAC is not a signature */
        assert_int_equal(cmp_protect_verify_sig(msg, ec_pki.dev), CMP_R_BAD_ALG);
    }
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_MAC), CMP_FAIL_BAD_MESSAGE_CHECK);
    /* and a signature is not a MAC */
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_false(cmp_protect_is_mac(msg));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_ALG);
    CMP_MSG_free(msg);
}

/* The iteration count is read from the parameters without computing the
 * MAC (mac mode refuses counts above its limit with a precise text). */
static void test_mac_iterations(void **state)
{
    CMP_MSG *msg = make_req(NULL, NULL);
    int64_t iter = -1;

    assert_false(cmp_protect_mac_iterations(msg, &iter));   /* no protection */
    assert_true(cmp_protect_mac_pbm(msg, secret, SECRET_LEN, "SHA256", "SHA1",
                                    777));
    assert_true(cmp_protect_mac_iterations(msg, &iter));
    assert_int_equal(iter, 777);
    assert_true(cmp_protect_mac_pbmac1(msg, secret, SECRET_LEN, 250000));
    assert_true(cmp_protect_mac_iterations(msg, &iter));
    assert_int_equal(iter, 250000);
    /* above the default cap: refused before any computation */
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    {
        struct cmp_mac_limits lim = { 0, 300000, 0 };

        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, &lim),
                         CMP_R_OK);
    }
    assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, ec_pki.dev_key));
    assert_false(cmp_protect_mac_iterations(msg, &iter));   /* a signature */
    CMP_MSG_free(msg);
}

/* PBM protection made here with OpenSSL's own CRMF code, any salt length,
 * iterations and algorithms. Returns 1 on success. */
static int pbm_protect_raw(CMP_MSG *msg, int saltlen, int owf_nid, int iter,
                           int mac_nid)
{
    OSSL_CRMF_PBMPARAMETER *pbmp = NULL;
    ASN1_STRING *pstr = NULL;
    CMP_PROTPART pp;
    unsigned char *der = NULL, *mac = NULL;
    size_t maclen;
    int len, ok = 0;

    /* OSSL_CRMF_pbmp_new refuses > 100000 iterations: set the count after */
    if ((pbmp = OSSL_CRMF_pbmp_new(NULL, (size_t)saltlen, owf_nid,
                                   iter > 100000 ? 100 : iter, mac_nid)) == NULL)
        goto end;
    if (iter > 100000) {
        /* reach into the DER: re-pack with the big count */
        CMP_PBMPARAM *p;
        unsigned char *b = NULL;
        const unsigned char *q;
        int bl = i2d_OSSL_CRMF_PBMPARAMETER(pbmp, &b);

        q = b;
        p = d2i_CMP_PBMPARAM(NULL, &q, bl);
        OPENSSL_free(b);
        ASN1_INTEGER_set(p->iterationCount, iter);
        pstr = ASN1_item_pack(p, ASN1_ITEM_rptr(CMP_PBMPARAM), NULL);
        CMP_PBMPARAM_free(p);
    } else {
        pstr = ASN1_item_pack(pbmp, ASN1_ITEM_rptr(OSSL_CRMF_PBMPARAMETER), NULL);
    }
    if (pstr == NULL)
        goto end;
    X509_ALGOR_free(msg->header->protectionAlg);
    msg->header->protectionAlg = X509_ALGOR_new();
    X509_ALGOR_set0(msg->header->protectionAlg,
                    OBJ_nid2obj(NID_id_PasswordBasedMAC), V_ASN1_SEQUENCE, pstr);
    pstr = NULL;
    pp.header = msg->header;
    pp.body = msg->body;
    if ((len = ASN1_item_i2d((ASN1_VALUE *)&pp, &der,
                             ASN1_ITEM_rptr(CMP_PROTPART))) <= 0)
        goto end;
    ASN1_BIT_STRING_free(msg->protection);
    msg->protection = ASN1_BIT_STRING_new();
    if (iter <= 100000 && OSSL_CRMF_pbm_new(NULL, NULL, pbmp, der, (size_t)len,
                                            secret, SECRET_LEN, &mac, &maclen)) {
        ASN1_BIT_STRING_set(msg->protection, mac, (int)maclen);
    } else {
        ASN1_BIT_STRING_set(msg->protection, (unsigned char *)"0123456789abcdefghij", 20);
    }
    msg->protection->flags &= ~0x07;
    msg->protection->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    ok = 1;
 end:
    OPENSSL_free(mac);
    OPENSSL_free(der);
    ASN1_STRING_free(pstr);
    OSSL_CRMF_PBMPARAMETER_free(pbmp);
    ERR_clear_error();
    return ok;
}

static void test_pbm_params(void **state)
{
    CMP_MSG *msg = make_req(NULL, NULL);
    struct cmp_mac_limits lim = { 0 };

    /* made independently with OpenSSL's CRMF code: verifies */
    assert_true(pbm_protect_raw(msg, 16, NID_sha256, 500, NID_hmac_sha1));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL), CMP_R_OK);
    assert_true(pbm_protect_raw(msg, 8, NID_sha256, 100, NID_hmacWithSHA256));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL), CMP_R_OK);
    /* salt too short */
    assert_true(pbm_protect_raw(msg, 7, NID_sha256, 500, NID_hmacWithSHA256));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    assert_true(pbm_protect_raw(msg, 4, NID_sha256, 500, NID_hmacWithSHA256));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_MAC_PARAMS), CMP_FAIL_BAD_ALG);
    /* iteration count over the DoS cap (default 100000), and a tighter cap */
    assert_true(pbm_protect_raw(msg, 16, NID_sha256, 100001, NID_hmacWithSHA256));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    assert_true(pbm_protect_raw(msg, 16, NID_sha256, 2000000000, NID_hmacWithSHA256));
    {
        clock_t t0 = clock();

        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                         CMP_R_BAD_MAC_PARAMS);
        assert_true(clock() - t0 < CLOCKS_PER_SEC / 10); /* refused before work */
    }
    assert_true(pbm_protect_raw(msg, 16, NID_sha256, 5000, NID_hmacWithSHA256));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL), CMP_R_OK);
    lim.max_iterations = 1000;
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, &lim),
                     CMP_R_BAD_MAC_PARAMS);
    /* too few iterations for a raised minimum */
    lim.max_iterations = 0;
    lim.min_iterations = 10000;
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, &lim),
                     CMP_R_BAD_MAC_PARAMS);
    /* owf MD5, mac HMAC-MD5 */
    assert_true(pbm_protect_raw(msg, 16, NID_md5, 500, NID_hmacWithSHA256));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    assert_true(pbm_protect_raw(msg, 16, NID_sha256, 500, NID_hmacWithMD5));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    /* parameters missing or not a SEQUENCE */
    X509_ALGOR_set0(msg->header->protectionAlg,
                    OBJ_nid2obj(NID_id_PasswordBasedMAC), V_ASN1_UNDEF, NULL);
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    X509_ALGOR_set0(msg->header->protectionAlg,
                    OBJ_nid2obj(NID_id_PasswordBasedMAC), V_ASN1_NULL, NULL);
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    CMP_MSG_free(msg);
}

/* A MAC bit string with unused bits is not the MAC (even when the masked
 * bits happen to be zero). */
static void test_mac_bits_left(void **state)
{
    CMP_MSG *msg = make_req(NULL, NULL);
    const unsigned char *d;
    int n;

    /* a MAC whose last bit is zero, then one unused bit declared: the
     * octets still match, the bit string does not */
    do {
        assert_true(cmp_protect_mac_pbm(msg, secret, SECRET_LEN, "SHA256",
                                        "SHA256", 500));
        n = ASN1_STRING_length(msg->protection);
        d = ASN1_STRING_get0_data(msg->protection);
    } while ((d[n - 1] & 1) != 0);
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL), CMP_R_OK);
    msg->protection->flags |= ASN1_STRING_FLAG_BITS_LEFT | 1;
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC);
    CMP_MSG_free(msg);
}

/* Protecting with more iterations than the verification default cap must
 * work (cmp_protect_mac_pbm/pbmac1 raise the cap for themselves), and the
 * default verifier must refuse the result. */
static int msg_setup(void **state)
{
    *state = make_req(NULL, NULL);
    return 0;
}

static int msg_teardown(void **state)
{
    CMP_MSG_free(*state);
    return 0;
}

static void test_mac_protect_many_iterations(void **state)
{
    CMP_MSG *msg = *state;    /* freed by msg_teardown, also on failure */
    struct cmp_mac_limits lim = { 0 };

    lim.max_iterations = 300000;
    assert_true(cmp_protect_mac_pbmac1(msg, secret, SECRET_LEN, 200000));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                     CMP_R_BAD_MAC_PARAMS);
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, &lim),
                     CMP_R_OK);
}

/* PBMAC1 computed independently: PBKDF2-HMAC-SHA256 then HMAC-SHA256. */
static void test_pbmac1(void **state)
{
    CMP_MSG *msg = make_req(NULL, NULL);
    CMP_PBMAC1PARAM *param;
    PBKDF2PARAM *kdf;
    unsigned char key[32], mac[32], *der = NULL;
    unsigned int maclen = 0;
    CMP_PROTPART pp;
    int len;

    assert_true(cmp_protect_mac_pbmac1(msg, secret, SECRET_LEN, 1000));
    assert_int_equal(OBJ_obj2nid(msg->header->protectionAlg->algorithm), NID_pbmac1);
    assert_true(cmp_protect_is_mac(msg));
    assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL), CMP_R_OK);
    assert_int_equal(cmp_protect_verify_mac(msg, (const unsigned char *)"wrong", 5,
                                            NULL), CMP_R_BAD_MAC);
    /* independent computation */
    param = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(CMP_PBMAC1PARAM),
                                      msg->header->protectionAlg->parameter);
    assert_non_null(param);
    kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                    param->keyDerivationFunc->parameter);
    assert_non_null(kdf);
    assert_int_equal(ASN1_STRING_length(kdf->salt->value.octet_string), 16);
    assert_int_equal(ASN1_INTEGER_get(kdf->iter), 1000);
    assert_int_equal(ASN1_INTEGER_get(kdf->keylength), 32);
    assert_int_equal(OBJ_obj2nid(kdf->prf->algorithm), NID_hmacWithSHA256);
    assert_int_equal(OBJ_obj2nid(param->messageAuthScheme->algorithm),
                     NID_hmacWithSHA256);
    assert_true(PKCS5_PBKDF2_HMAC((const char *)secret, SECRET_LEN,
                                  ASN1_STRING_get0_data(kdf->salt->value.octet_string),
                                  16, 1000, EVP_sha256(), 32, key));
    pp.header = msg->header;
    pp.body = msg->body;
    len = ASN1_item_i2d((ASN1_VALUE *)&pp, &der, ASN1_ITEM_rptr(CMP_PROTPART));
    assert_non_null(HMAC(EVP_sha256(), key, 32, der, (size_t)len, mac, &maclen));
    assert_int_equal(maclen, 32);
    assert_int_equal(ASN1_STRING_length(msg->protection), 32);
    assert_memory_equal(ASN1_STRING_get0_data(msg->protection), mac, 32);
    OPENSSL_free(der);
    /* on the wire too */
    {
        unsigned char *w = NULL;
        size_t wl;
        CMP_MSG *in = NULL;

        assert_true(cmp_msg_encode(msg, &w, &wl));
        assert_int_equal(cmp_msg_decode(w, wl, NULL, &in), CMP_R_OK);
        assert_int_equal(cmp_protect_verify_mac(in, secret, SECRET_LEN, NULL), CMP_R_OK);
        CMP_MSG_free(in);
        OPENSSL_free(w);
    }
    /* iteration caps apply to PBMAC1 as well */
    {
        struct cmp_mac_limits lim = { 0 };

        lim.max_iterations = 999;
        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, &lim),
                         CMP_R_BAD_MAC_PARAMS);
    }
    /* PRF HMAC-SHA1 is refused */
    {
        ASN1_STRING *ps = NULL;

        X509_ALGOR_set0(kdf->prf, OBJ_nid2obj(NID_hmacWithSHA1), V_ASN1_NULL, NULL);
        ps = ASN1_item_pack(kdf, ASN1_ITEM_rptr(PBKDF2PARAM), NULL);
        X509_ALGOR_set0(param->keyDerivationFunc, OBJ_nid2obj(NID_id_pbkdf2),
                        V_ASN1_SEQUENCE, ps);
        ps = ASN1_item_pack(param, ASN1_ITEM_rptr(CMP_PBMAC1PARAM), NULL);
        X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_pbmac1),
                        V_ASN1_SEQUENCE, ps);
        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                         CMP_R_BAD_MAC_PARAMS);
        /* no PRF at all means HMAC-SHA1 too */
        X509_ALGOR_free(kdf->prf);
        kdf->prf = NULL;
        ps = ASN1_item_pack(kdf, ASN1_ITEM_rptr(PBKDF2PARAM), NULL);
        X509_ALGOR_set0(param->keyDerivationFunc, OBJ_nid2obj(NID_id_pbkdf2),
                        V_ASN1_SEQUENCE, ps);
        ps = ASN1_item_pack(param, ASN1_ITEM_rptr(CMP_PBMAC1PARAM), NULL);
        X509_ALGOR_set0(msg->header->protectionAlg, OBJ_nid2obj(NID_pbmac1),
                        V_ASN1_SEQUENCE, ps);
        assert_int_equal(cmp_protect_verify_mac(msg, secret, SECRET_LEN, NULL),
                         CMP_R_BAD_MAC_PARAMS);
    }
    OPENSSL_cleanse(key, sizeof(key));
    PBKDF2PARAM_free(kdf);
    CMP_PBMAC1PARAM_free(param);
    CMP_MSG_free(msg);
}

/* ---- certHash ---- */

static void certhash_case(const char *kind, int pss, unsigned int want_len,
                          const char *want_md)
{
    EVP_PKEY *ca_key = cmp_testpki_key(kind);
    EVP_PKEY *ee_key = cmp_testpki_key("EC");
    X509 *ca, *ee;
    unsigned char h[EVP_MAX_MD_SIZE], ref[EVP_MAX_MD_SIZE];
    unsigned int hl = 0, rl = 0;

    assert_non_null(ca_key);
    ca = pss ? cmp_testpki_cert_pss(ca_key, "ca", NULL, NULL, 1, 10)
             : cmp_testpki_cert(ca_key, "ca", NULL, NULL, 1, 10);
    assert_non_null(ca);
    ee = pss ? cmp_testpki_cert_pss(ee_key, "ee", ca, ca_key, 0, 10)
             : cmp_testpki_cert(ee_key, "ee", ca, ca_key, 0, 10);
    assert_non_null(ee);
    assert_true(cmp_certhash(ee, h, &hl));
    assert_int_equal(hl, want_len);
    if (strcmp(want_md, "SHAKE256-512") == 0) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned char *der = NULL;
        int dl = i2d_X509(ee, &der);

        assert_true(EVP_DigestInit_ex(c, EVP_shake256(), NULL));
        assert_true(EVP_DigestUpdate(c, der, (size_t)dl));
        assert_true(EVP_DigestFinalXOF(c, ref, 64));
        rl = 64;
        EVP_MD_CTX_free(c);
        OPENSSL_free(der);
    } else {
        assert_true(X509_digest(ee, EVP_get_digestbyname(want_md), ref, &rl));
    }
    assert_int_equal(hl, rl);
    assert_memory_equal(h, ref, hl);
    assert_true(cmp_certhash_matches(ee, h, hl));
    h[0] ^= 1;
    assert_false(cmp_certhash_matches(ee, h, hl));
    h[0] ^= 1;
    assert_false(cmp_certhash_matches(ee, h, hl - 1));
    assert_false(cmp_certhash_matches(ca, h, hl));
    X509_free(ee);
    X509_free(ca);
    EVP_PKEY_free(ee_key);
    EVP_PKEY_free(ca_key);
}

static void test_certhash_p256(void **state) { certhash_case("EC", 0, 32, "SHA256"); }
static void test_certhash_p384(void **state) { certhash_case("P-384", 0, 48, "SHA384"); }
static void test_certhash_rsa(void **state) { certhash_case("RSA", 0, 32, "SHA256"); }
static void test_certhash_rsa_pss(void **state) { certhash_case("RSA", 1, 32, "SHA256"); }
static void test_certhash_rsa_pss_key(void **state) { certhash_case("RSA-PSS", 0, 32, "SHA256"); }
static void test_certhash_ed25519(void **state) { certhash_case("ED25519", 0, 64, "SHA512"); }
static void test_certhash_ed448(void **state) { certhash_case("ED448", 0, 64, "SHAKE256-512"); }

/* What OpenSSL 3.0's own client puts into certConf (X509_digest_sig):
 * identical for every algorithm except Ed448, where it uses SHAKE256 with
 * its 32-octet default output instead of RFC 8419's 64 octets. */
static void test_certhash_vs_openssl(void **state)
{
    static const char *const kinds[] = { "EC", "RSA", "RSA-PSS", "ED25519", "ED448" };
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        EVP_PKEY *k = cmp_testpki_key(kinds[i]);
        X509 *c = cmp_testpki_cert(k, "x", NULL, NULL, 1, 10);
        ASN1_OCTET_STRING *os = X509_digest_sig(c, NULL, NULL);
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned int hl;

        assert_non_null(os);
        assert_true(cmp_certhash(c, h, &hl));
        if (strcmp(kinds[i], "ED448") == 0) {
            print_message("Ed448 certHash: cmpca %u octets, OpenSSL %d octets\n",
                          hl, ASN1_STRING_length(os));
            assert_int_equal(hl, 64);
            assert_int_equal(ASN1_STRING_length(os), 32);
            /* same SHAKE256 stream: OpenSSL's is a prefix of ours */
            assert_memory_equal(h, ASN1_STRING_get0_data(os), 32);
        } else {
            assert_int_equal((int)hl, ASN1_STRING_length(os));
            assert_memory_equal(h, ASN1_STRING_get0_data(os), hl);
        }
        /* every algorithm matches, Ed448 through the 32-octet allowance */
        assert_int_equal(cmp_certhash_matches(c, ASN1_STRING_get0_data(os),
                                              (size_t)ASN1_STRING_length(os)),
                         1);
        ASN1_OCTET_STRING_free(os);
        X509_free(c);
        EVP_PKEY_free(k);
    }
}

/* ---- tampering of in-memory messages for the algorithms the OpenSSL 3.0
 * client cannot make (Ed25519, Ed448, RSA-PSS, PBMAC1) ---- */

static void tamper_layer(CMP_MSG *msg, int is_mac, X509 *cert)
{
    unsigned char *der = NULL;
    size_t len, i;
    int passed = 0;

    assert_true(cmp_msg_encode(msg, &der, &len));
    for (i = 0; i < len; i++) {
        CMP_MSG *in = NULL;
        X509 *signer = NULL;
        int ok = 0;

        der[i] ^= 0x01;
        if (cmp_msg_decode(der, len, NULL, &in) == CMP_R_OK) {
            if (is_mac)
                ok = cmp_protect_verify_mac(in, secret, SECRET_LEN, NULL) == CMP_R_OK;
            else
                ok = cmp_protect_find_signer(in, &signer) == CMP_R_OK
                    && cmp_protect_verify_sig(in, signer) == CMP_R_OK
                    && X509_cmp(signer, cert) == 0
                    && i < len - (size_t)i2d_X509(cert, NULL) - 8;
        }
        passed += ok;
        CMP_MSG_free(in);
        der[i] ^= 0x01;
    }
    OPENSSL_free(der);
    ERR_clear_error();
    assert_int_equal(passed, 0);
}

static void test_tamper_more_algs(void **state)
{
    static const char *const kinds[] = { "ED25519", "ED448", "RSA-PSS" };
    size_t k;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        EVP_PKEY *key = cmp_testpki_key(kinds[k]);
        X509 *c = cmp_testpki_cert(key, "tamper", NULL, NULL, 0, 10);
        CMP_MSG *msg = make_req(c, NULL);

        assert_true(cmp_protect_sign(msg, cmp_protect_sign_pkey_fn, key));
        tamper_layer(msg, 0, c);
        CMP_MSG_free(msg);
        X509_free(c);
        EVP_PKEY_free(key);
    }
    {
        CMP_MSG *msg = make_req(NULL, NULL);

        assert_true(cmp_protect_mac_pbmac1(msg, secret, SECRET_LEN, 100));
        tamper_layer(msg, 1, NULL);
        CMP_MSG_free(msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sig_p256),
        cmocka_unit_test(test_sig_p384),
        cmocka_unit_test(test_sig_rsa),
        cmocka_unit_test(test_sig_rsa_pss_key),
        cmocka_unit_test(test_sig_ed25519),
        cmocka_unit_test(test_sig_ed448),
        cmocka_unit_test(test_sign_encode_p256),
        cmocka_unit_test(test_sign_encode_p384),
        cmocka_unit_test(test_sign_encode_rsa),
        cmocka_unit_test(test_sign_encode_rsa_pss),
        cmocka_unit_test(test_sign_encode_ed25519),
        cmocka_unit_test(test_sign_encode_ed448),
        cmocka_unit_test(test_sig_more_digests),
        cmocka_unit_test(test_sig_bad_alg),
        cmocka_unit_test(test_sig_rfc9481_digests),
        cmocka_unit_test(test_sig_pss_params),
        cmocka_unit_test(test_sig_ecdsa_shake),
        cmocka_unit_test(test_sig_pss_shake_refused),
        cmocka_unit_test(test_sig_alg_key_mismatch),
        cmocka_unit_test(test_unprotected),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_sender_kid_mismatch),
        cmocka_unit_test(test_sender_mismatch),
        cmocka_unit_test(test_signer_absent),
        cmocka_unit_test(test_signer_by_name),
        cmocka_unit_test(test_request_signer),
        cmocka_unit_test(test_pbm_round_trip),
        cmocka_unit_test(test_mac_iterations),
        cmocka_unit_test(test_pbm_params),
        cmocka_unit_test(test_mac_bits_left),
        cmocka_unit_test(test_pbmac1),
        cmocka_unit_test_setup_teardown(test_mac_protect_many_iterations,
                                        msg_setup, msg_teardown),
        cmocka_unit_test(test_certhash_p256),
        cmocka_unit_test(test_certhash_p384),
        cmocka_unit_test(test_certhash_rsa),
        cmocka_unit_test(test_certhash_rsa_pss),
        cmocka_unit_test(test_certhash_rsa_pss_key),
        cmocka_unit_test(test_certhash_ed25519),
        cmocka_unit_test(test_certhash_ed448),
        cmocka_unit_test(test_certhash_vs_openssl),
        cmocka_unit_test(test_tamper_more_algs),
    };

    return cmocka_run_group_tests_name("cmp_protect", tests, setup, teardown);
}
