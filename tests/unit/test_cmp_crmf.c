/*
 * Key and POP algorithms of certificate requests (RFC 9483 3.6.4 failInfo
 * choices): a key type or POP algorithm cmpca does not support is badAlg,
 * a POP algorithm for another key type or a wrong POP signature badPOP, a
 * malformed key badCertTemplate; for CRMF (cmp_crmf_verify_popo) and
 * PKCS#10 (cmp_p10_verify_pop) requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmp/cmp_crmf.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"
#include "cmp/cmp_spki.h"
#include "cmp_testpki.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

static EVP_PKEY *keygen(const char *spec)
{
    EVP_PKEY *k = NULL;

    if (strncmp(spec, "EC:", 3) == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec + 3);
    else if (strcmp(spec, "RSA") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(spec, "RSA-PSS") == 0)
        k = cmp_testpki_key("RSA-PSS");
    else if (strcmp(spec, "DSA") == 0) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
        EVP_PKEY *params = NULL;

        if (c != NULL && EVP_PKEY_paramgen_init(c) > 0
            && EVP_PKEY_CTX_set_dsa_paramgen_bits(c, 1024) > 0
            && EVP_PKEY_paramgen(c, &params) > 0) {
            EVP_PKEY_CTX_free(c);
            c = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL);
            if (c == NULL || EVP_PKEY_keygen_init(c) <= 0
                || EVP_PKEY_keygen(c, &k) <= 0)
                k = NULL;
        }
        EVP_PKEY_free(params);
        EVP_PKEY_CTX_free(c);
    } else
        k = EVP_PKEY_Q_keygen(NULL, NULL, spec);
    if (k == NULL)
        fail_msg("cannot make a %s key", spec);
    return k;
}

static CMP_RAWSPKI *spki_of(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_PUBKEY(pkey, &der);
    CMP_RAWSPKI *s;

    assert_true(len > 0);
    p = der;
    assert_non_null(s = d2i_CMP_RAWSPKI(NULL, &p, len));
    OPENSSL_free(der);
    return s;
}

/* ---- key algorithms ---- */

static void test_key_algs(void **state)
{
    static const struct {
        const char *spec;
        enum cmp_reason want;
    } c[] = {
        { "EC:P-256", CMP_R_OK }, { "EC:P-384", CMP_R_OK },
        { "EC:P-521", CMP_R_OK }, { "RSA", CMP_R_OK },
        { "ED25519", CMP_R_OK }, { "ED448", CMP_R_OK },
        { "EC:secp256k1", CMP_R_BAD_KEY_ALG },
        { "EC:brainpoolP256r1", CMP_R_BAD_KEY_ALG },
        { "EC:secp224r1", CMP_R_BAD_KEY_ALG },
        { "X25519", CMP_R_BAD_KEY_ALG }, { "X448", CMP_R_BAD_KEY_ALG },
        { "RSA-PSS", CMP_R_BAD_KEY_ALG }, { "DSA", CMP_R_BAD_KEY_ALG },
    };
    size_t i;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        EVP_PKEY *k = keygen(c[i].spec), *out = NULL;
        CMP_RAWSPKI *s = spki_of(k);
        X509_PUBKEY *x = NULL;
        enum cmp_reason r = cmp_spki_get1_checked(s, &out, &x);

        if (r != c[i].want)
            fail_msg("%s: got %s", c[i].spec, cmp_reason_text(r));
        assert_int_equal(cmp_spki_check_alg(s->algorithm), c[i].want);
        if (r == CMP_R_OK) {
            assert_int_equal(EVP_PKEY_eq(k, out), 1);
            assert_non_null(x);
        } else {
            assert_null(out);
            assert_null(x);
        }
        EVP_PKEY_free(out);
        X509_PUBKEY_free(x);
        CMP_RAWSPKI_free(s);
        EVP_PKEY_free(k);
    }
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_KEY_ALG), CMP_FAIL_BAD_ALG);
    assert_int_equal(cmp_spki_check_alg(NULL), CMP_R_BAD_KEY_ALG);
}

/* A key of a supported type that does not import: badCertTemplate. An
 * rsaEncryption or Ed25519 key with odd parameters: badAlg. */
static void test_key_malformed(void **state)
{
    EVP_PKEY *k = keygen("EC:P-256"), *out = NULL;
    CMP_RAWSPKI *s = spki_of(k);
    unsigned char *pt = (unsigned char *)ASN1_STRING_get0_data(s->subjectPublicKey);

    pt[ASN1_STRING_length(s->subjectPublicKey) - 1] ^= 0x01;  /* off the curve */
    assert_int_equal(cmp_spki_get1_checked(s, &out, NULL), CMP_R_BAD_PUBLIC_KEY);
    assert_null(out);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_PUBLIC_KEY),
                     CMP_FAIL_BAD_CERT_TEMPLATE);
    assert_int_equal(cmp_spki_get1_checked(NULL, &out, NULL), CMP_R_BAD_PUBLIC_KEY);
    CMP_RAWSPKI_free(s);
    EVP_PKEY_free(k);
    /* explicit curve parameters in place of a named curve */
    k = keygen("EC:P-256");
    s = spki_of(k);
    X509_ALGOR_set0(s->algorithm, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                    V_ASN1_NULL, NULL);
    assert_int_equal(cmp_spki_get1_checked(s, &out, NULL), CMP_R_BAD_KEY_ALG);
    CMP_RAWSPKI_free(s);
    EVP_PKEY_free(k);
    k = keygen("ED25519");
    s = spki_of(k);
    X509_ALGOR_set0(s->algorithm, OBJ_nid2obj(NID_ED25519), V_ASN1_NULL, NULL);
    assert_int_equal(cmp_spki_check_alg(s->algorithm), CMP_R_BAD_KEY_ALG);
    CMP_RAWSPKI_free(s);
    EVP_PKEY_free(k);
}

/* ---- CRMF POP ---- */

/* A CertReqMsg for |pub| with an empty signature POPO. */
static CMP_CERTREQMSG *crm_new(EVP_PKEY *pub)
{
    CMP_CERTREQMSG *m = CMP_CERTREQMSG_new();

    assert_non_null(m);
    assert_true(ASN1_INTEGER_set(m->certReq->certReqId, 0));
    m->certReq->certTemplate->publicKey = spki_of(pub);
    m->certReq->certTemplate->subject = X509_NAME_new();
    X509_NAME_add_entry_by_txt(m->certReq->certTemplate->subject, "CN",
                               MBSTRING_ASC, (const unsigned char *)"pop", -1,
                               -1, 0);
    m->popo = CMP_POPO_new();
    m->popo->type = 1;
    m->popo->value.signature = CMP_POPOSIGNINGKEY_new();
    return m;
}

/* Signs the POP of |m| with |key| and digest |md| (NULL for EdDSA), PSS
 * padding if |pss|. */
static void crm_sign(CMP_CERTREQMSG *m, EVP_PKEY *key, const char *md, int pss)
{
    CMP_POPOSIGNINGKEY *sk = m->popo->value.signature;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    assert_true(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL) > 0);
    if (pss)
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
    assert_true(ASN1_item_sign_ctx(ASN1_ITEM_rptr(CMP_CERTREQUEST),
                                   sk->algorithmIdentifier, NULL, sk->signature,
                                   m->certReq, ctx) > 0);
    EVP_MD_CTX_free(ctx);
}

/* ECDSA with SHAKE128 over DER(certReq), as RFC 8692 defines it. */
static void crm_sign_shake(CMP_CERTREQMSG *m, EVP_PKEY *key)
{
    CMP_POPOSIGNINGKEY *sk = m->popo->value.signature;
    unsigned char *der = NULL, md[32], sig[160];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_MD *x = EVP_MD_fetch(NULL, "SHAKE128", NULL);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int len = i2d_CMP_CERTREQUEST(m->certReq, &der);

    assert_true(len > 0);
    assert_true(EVP_DigestInit_ex(mc, x, NULL)
                && EVP_DigestUpdate(mc, der, (size_t)len)
                && EVP_DigestFinalXOF(mc, md, sizeof(md)));
    assert_true(EVP_PKEY_sign_init(pc) > 0
                && EVP_PKEY_sign(pc, sig, &siglen, md, sizeof(md)) > 0);
    X509_ALGOR_set0(sk->algorithmIdentifier, OBJ_txt2obj("1.3.6.1.5.5.7.6.32", 1),
                    V_ASN1_UNDEF, NULL);
    assert_true(ASN1_BIT_STRING_set(sk->signature, sig, (int)siglen));
    sk->signature->flags &= ~(long)0x07;
    sk->signature->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    OPENSSL_free(der);
    EVP_MD_CTX_free(mc);
    EVP_MD_free(x);
    EVP_PKEY_CTX_free(pc);
}

static void relabel(X509_ALGOR *alg, int nid, int ptype)
{
    X509_ALGOR_set0(alg, OBJ_nid2obj(nid), ptype, NULL);
}

static void test_pop_algs(void **state)
{
    EVP_PKEY *ec = keygen("EC:P-256"), *rsa = keygen("RSA");
    EVP_PKEY *pss = keygen("RSA-PSS"), *ed = keygen("ED25519");
    CMP_CERTREQMSG *m;

    /* allowed algorithms that fit the key */
    m = crm_new(ec);
    crm_sign(m, ec, "SHA256", 0);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_OK);
    crm_sign(m, ec, "SHA224", 0);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_OK);
    crm_sign_shake(m, ec);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_OK);
    /* the SHAKE signature made for another request does not verify */
    ASN1_INTEGER_set(m->certReq->certReqId, 1);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_BAD_POP);
    ASN1_INTEGER_set(m->certReq->certReqId, 0);
    /* algorithms cmpca does not support: badAlg */
    crm_sign(m, ec, "SHA1", 0);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_BAD_POP_ALG);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_BAD_POP_ALG), CMP_FAIL_BAD_ALG);
    X509_ALGOR_set0(m->popo->value.signature->algorithmIdentifier,
                    OBJ_txt2obj("1.2.3.4.5", 1), V_ASN1_UNDEF, NULL);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_BAD_POP_ALG);
    /* an allowed algorithm for another key type: badPOP */
    crm_sign(m, ec, "SHA256", 0);
    relabel(m->popo->value.signature->algorithmIdentifier,
            NID_sha256WithRSAEncryption, V_ASN1_NULL);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_POP_ALG_KEY_MISMATCH);
    assert_int_equal(cmp_reason_fail_bit(CMP_R_POP_ALG_KEY_MISMATCH),
                     CMP_FAIL_BAD_POP);
    relabel(m->popo->value.signature->algorithmIdentifier, NID_ED25519,
            V_ASN1_UNDEF);
    assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_POP_ALG_KEY_MISMATCH);
    /* the right algorithm, a signature by another key: badPOP */
    {
        EVP_PKEY *other = keygen("EC:P-256");

        crm_sign(m, other, "SHA256", 0);
        assert_int_equal(cmp_crmf_verify_popo(m, ec), CMP_R_BAD_POP);
        EVP_PKEY_free(other);
    }
    CMP_CERTREQMSG_free(m);

    /* RSA: PKCS#1 v1.5 and PSS; an RSASSA-PSS key: PSS only */
    m = crm_new(rsa);
    crm_sign(m, rsa, "SHA384", 0);
    assert_int_equal(cmp_crmf_verify_popo(m, rsa), CMP_R_OK);
    crm_sign(m, rsa, "SHA256", 1);
    assert_int_equal(cmp_crmf_verify_popo(m, rsa), CMP_R_OK);
    relabel(m->popo->value.signature->algorithmIdentifier,
            NID_ecdsa_with_SHA256, V_ASN1_UNDEF);
    assert_int_equal(cmp_crmf_verify_popo(m, rsa), CMP_R_POP_ALG_KEY_MISMATCH);
    CMP_CERTREQMSG_free(m);
    m = crm_new(pss);
    crm_sign(m, pss, "SHA256", 0);
    assert_int_equal(OBJ_obj2nid(m->popo->value.signature->algorithmIdentifier
                                 ->algorithm), NID_rsassaPss);
    assert_int_equal(cmp_crmf_verify_popo(m, pss), CMP_R_OK);
    relabel(m->popo->value.signature->algorithmIdentifier,
            NID_sha256WithRSAEncryption, V_ASN1_NULL);
    assert_int_equal(cmp_crmf_verify_popo(m, pss), CMP_R_POP_ALG_KEY_MISMATCH);
    CMP_CERTREQMSG_free(m);

    /* EdDSA */
    m = crm_new(ed);
    crm_sign(m, ed, NULL, 0);
    assert_int_equal(cmp_crmf_verify_popo(m, ed), CMP_R_OK);
    relabel(m->popo->value.signature->algorithmIdentifier, NID_ED448,
            V_ASN1_UNDEF);
    assert_int_equal(cmp_crmf_verify_popo(m, ed), CMP_R_POP_ALG_KEY_MISMATCH);
    /* no signature POPO at all stays badPOP */
    CMP_POPO_free(m->popo);
    m->popo = NULL;
    assert_int_equal(cmp_crmf_verify_popo(m, ed), CMP_R_BAD_POP);
    CMP_CERTREQMSG_free(m);

    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(pss);
    EVP_PKEY_free(ed);
}

/* ---- PKCS#10 ---- */

static X509_REQ *csr_new(EVP_PKEY *key, const char *md)
{
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_REQ_get_subject_name(r);

    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"p10", -1, -1, 0);
    assert_true(X509_REQ_set_pubkey(r, key));
    assert_true(X509_REQ_sign(r, key, md != NULL ? EVP_get_digestbyname(md)
                                                  : NULL) > 0);
    return r;
}

/* Re-decodes |r| so that it carries its received encoding, as in a p10cr. */
static X509_REQ *csr_wire(X509_REQ *r)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_X509_REQ(r, &der);
    X509_REQ *out;

    assert_true(len > 0);
    p = der;
    out = d2i_X509_REQ(NULL, &p, len);
    assert_non_null(out);
    OPENSSL_free(der);
    X509_REQ_free(r);
    return out;
}

static void test_p10_pop(void **state)
{
    EVP_PKEY *ec = keygen("EC:P-256"), *k1 = keygen("EC:secp256k1");
    EVP_PKEY *rsa = keygen("RSA"), *got = NULL;
    X509_REQ *r;
    const ASN1_BIT_STRING *sig;
    const X509_ALGOR *alg;

    r = csr_wire(csr_new(ec, "SHA256"));
    assert_int_equal(cmp_p10_verify_pop(r, &got), CMP_R_OK);
    assert_non_null(got);
    assert_int_equal(EVP_PKEY_eq(got, ec), 1);
    /* tampered: the signature does not verify */
    X509_REQ_get0_signature(r, &sig, &alg);
    ((unsigned char *)ASN1_STRING_get0_data(sig))[10] ^= 0x01;
    assert_int_equal(cmp_p10_verify_pop(r, &got), CMP_R_BAD_POP);
    assert_null(got);
    /* relabelled as an RSA signature */
    ((unsigned char *)ASN1_STRING_get0_data(sig))[10] ^= 0x01;
    relabel((X509_ALGOR *)alg, NID_sha256WithRSAEncryption, V_ASN1_NULL);
    assert_int_equal(cmp_p10_verify_pop(r, &got), CMP_R_POP_ALG_KEY_MISMATCH);
    X509_REQ_free(r);
    /* SHA-1 */
    r = csr_wire(csr_new(rsa, "SHA1"));
    assert_int_equal(cmp_p10_verify_pop(r, &got), CMP_R_BAD_POP_ALG);
    X509_REQ_free(r);
    r = csr_wire(csr_new(rsa, "SHA512"));
    assert_int_equal(cmp_p10_verify_pop(r, &got), CMP_R_OK);
    X509_REQ_free(r);
    /* a key type cmpca does not issue for */
    r = csr_wire(csr_new(k1, "SHA256"));
    assert_int_equal(cmp_p10_verify_pop(r, &got), CMP_R_BAD_KEY_ALG);
    assert_null(got);
    X509_REQ_free(r);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa);
}

/* ---- POPOSigningKeyInput (RFC 4211 4.1), built by hand ---- */

/* Appends TLV(|tag|, |c|) to |out| at *n (lengths below 64 KiB). */
static void der_put(unsigned char *out, size_t *n, unsigned char tag,
                    const unsigned char *c, size_t len)
{
    out[(*n)++] = tag;
    if (len < 0x80) {
        out[(*n)++] = (unsigned char)len;
    } else if (len < 0x100) {
        out[(*n)++] = 0x81;
        out[(*n)++] = (unsigned char)len;
    } else {
        out[(*n)++] = 0x82;
        out[(*n)++] = (unsigned char)(len >> 8);
        out[(*n)++] = (unsigned char)len;
    }
    memcpy(out + *n, c, len);
    *n += len;
}

/* How the hand-made POPOSigningKeyInput differs from a good one. */
enum pski_kind { PSKI_SENDER, PSKI_MAC, PSKI_SUBJECT };

/*
 * A CertReqMsg for |pub| without subject whose POP is a POPOSigningKeyInput
 * with authInfo sender |sender_cn| (PSKI_SENDER) or a publicKeyMAC (PSKI_MAC)
 * and publicKey |in_key|, signed by |signer| over the input's DER; with
 * PSKI_SUBJECT the template also has a subject. Encoded and decoded again
 * (as the server sees it).
 */
static CMP_CERTREQMSG *pski_new(EVP_PKEY *pub, EVP_PKEY *in_key,
                                EVP_PKEY *signer, const char *sender_cn,
                                enum pski_kind kind)
{
    unsigned char body[2048], input[2100], sig[256], *spki = NULL, *gn = NULL;
    unsigned char *der = NULL, mac[40];
    const unsigned char *p;
    size_t n = 0, in_len = 0, siglen = sizeof(sig);
    int spki_len, gn_len, len;
    GENERAL_NAME *g = GENERAL_NAME_new();
    X509_NAME *name = X509_NAME_new();
    CMP_CERTREQMSG *m = crm_new(pub), *out;
    CMP_POPOSIGNINGKEY *sk = m->popo->value.signature;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();

    if (kind != PSKI_SUBJECT) {
        X509_NAME_free(m->certReq->certTemplate->subject);
        m->certReq->certTemplate->subject = NULL;
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)sender_cn, -1, -1, 0);
    GENERAL_NAME_set0_value(g, GEN_DIRNAME, name);
    assert_true((gn_len = i2d_GENERAL_NAME(g, &gn)) > 0);
    assert_true((spki_len = i2d_PUBKEY(in_key, &spki)) > 0);
    if (kind == PSKI_MAC) {
        /* PKMACValue { algId passwordBasedMac (no parameters here), value } */
        unsigned char alg[32], pk[80];
        size_t an = 0, pn = 0;
        static const unsigned char oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf6,
                                             0x7d, 0x07, 0x42, 0x0d };

        memset(mac, 0x5a, sizeof(mac));
        mac[0] = 0;                      /* no unused bits */
        der_put(alg, &an, 0x06, oid, sizeof(oid));
        der_put(pk, &pn, 0x30, alg, an);
        der_put(pk, &pn, 0x03, mac, 21);
        der_put(body, &n, 0x30, pk, pn);
    } else {
        der_put(body, &n, 0xa0, gn, (size_t)gn_len);
    }
    memcpy(body + n, spki, (size_t)spki_len);
    n += (size_t)spki_len;
    der_put(input, &in_len, 0x30, body, n);
    assert_true(EVP_DigestSignInit_ex(mc, NULL, "SHA256", NULL, NULL, signer,
                                      NULL) > 0
                && EVP_DigestSign(mc, sig, &siglen, input, in_len) > 0);
    X509_ALGOR_set0(sk->algorithmIdentifier,
                    OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL);
    assert_true(ASN1_BIT_STRING_set(sk->signature, sig, (int)siglen));
    sk->signature->flags &= ~(long)0x07;
    sk->signature->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    p = input;
    assert_non_null(sk->poposkInput = d2i_ASN1_SEQUENCE_ANY(NULL, &p,
                                                            (long)in_len));
    /* the server sees it decoded from DER */
    assert_true((len = i2d_CMP_CERTREQMSG(m, &der)) > 0);
    p = der;
    assert_non_null(out = d2i_CMP_CERTREQMSG(NULL, &p, len));
    OPENSSL_free(der);
    OPENSSL_free(spki);
    OPENSSL_free(gn);
    GENERAL_NAME_free(g);
    EVP_MD_CTX_free(mc);
    CMP_CERTREQMSG_free(m);
    return out;
}

static GENERAL_NAME *dirname_cn(const char *cn)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    X509_NAME *name = X509_NAME_new();

    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    GENERAL_NAME_set0_value(g, GEN_DIRNAME, name);
    return g;
}

static int pkmac_calls;
static int pkmac_ok(void *arg, const X509_ALGOR *alg,
                    const ASN1_BIT_STRING *value, const unsigned char *spki,
                    size_t spki_len)
{
    EVP_PKEY *want = arg;
    const unsigned char *p = spki;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)spki_len);
    int ok = k != NULL && EVP_PKEY_eq(k, want) == 1
        && OBJ_obj2nid(alg->algorithm) == NID_id_PasswordBasedMAC
        && ASN1_STRING_length(value) == 20;

    pkmac_calls++;
    EVP_PKEY_free(k);
    return ok;
}
static int pkmac_bad(void *arg, const X509_ALGOR *alg,
                     const ASN1_BIT_STRING *value, const unsigned char *spki,
                     size_t spki_len)
{
    pkmac_calls++;
    return 0;
}

static void test_poposk_input(void **state)
{
    EVP_PKEY *k = keygen("EC:P-256"), *other = keygen("EC:P-256");
    GENERAL_NAME *dev = dirname_cn("device-1"), *else_ = dirname_cn("someone");
    struct cmp_popo_auth auth = { dev, NULL, NULL };
    CMP_CERTREQMSG *m;

    /* good: the sender is the request's sender, the key the template's */
    m = pski_new(k, k, k, "device-1", PSKI_SENDER);
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_OK);
    /* without an authInfo check (cmp_crmf_verify_popo): refused */
    assert_int_equal(cmp_crmf_verify_popo(m, k), CMP_R_BAD_POP);
    /* another authenticated sender than the input names */
    auth.sender = else_;
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    auth.sender = NULL;
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    auth.sender = dev;
    /* the signature no longer covers the input */
    ((unsigned char *)ASN1_STRING_get0_data(
        m->popo->value.signature->signature))[8] ^= 0x01;
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    CMP_CERTREQMSG_free(m);
    /* the input's publicKey is not the template's (signed by its key) */
    m = pski_new(k, other, other, "device-1", PSKI_SENDER);
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    CMP_CERTREQMSG_free(m);
    /* right key in the input, signed by another key */
    m = pski_new(k, k, other, "device-1", PSKI_SENDER);
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    CMP_CERTREQMSG_free(m);
    /* poposkInput although the template has a subject (RFC 4211 4.1) */
    m = pski_new(k, k, k, "device-1", PSKI_SUBJECT);
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    CMP_CERTREQMSG_free(m);
    /* publicKeyMAC: badPOP without a MAC secret; the hook decides */
    m = pski_new(k, k, k, "device-1", PSKI_MAC);
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    pkmac_calls = 0;
    auth.pkmac = pkmac_ok;
    auth.pkmac_arg = k;
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_OK);
    auth.pkmac = pkmac_bad;
    assert_int_equal(cmp_crmf_verify_popo_auth(m, k, &auth), CMP_R_BAD_POP);
    assert_int_equal(pkmac_calls, 2);
    CMP_CERTREQMSG_free(m);
    GENERAL_NAME_free(dev);
    GENERAL_NAME_free(else_);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_algs),
        cmocka_unit_test(test_key_malformed),
        cmocka_unit_test(test_pop_algs),
        cmocka_unit_test(test_p10_pop),
        cmocka_unit_test(test_poposk_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
