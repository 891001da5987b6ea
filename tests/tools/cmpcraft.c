/*
 * cmpcraft: builds CMP requests the openssl CLI cannot, for e2e negative
 * tests: mutates a saved request (header fields, generalInfo, POPO,
 * protection digest, MAC protection, flipped bytes) and re-signs it, or
 * builds a certConf for a saved ip/cp/kup. Uses cmpca's own ASN.1 and CMP
 * layer.
 */
#include "asn1/cmp_asn1.h"
#include "util/pkey_md.h"
#include "cmp/cmp_crmf.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_profile.h"
#include "cmp/cmp_protect.h"

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void)
{
    fprintf(stderr,
"usage: cmpcraft mutate --in REQ.der --out OUT.der [--key KEY.pem] [OPTIONS]\n"
"       cmpcraft ossl-ir --server HOST:PORT --path PATH --signer CERT.pem\n"
"                --chain CHAIN.pem --key KEY.pem --newkey NEW.pem --out CERT.pem\n"
"                [--capubsout FILE.pem] [--trusted ROOT.pem]\n"
"         runs an ir+certConf with OpenSSL's OSSL_CMP client in its 3GPP mode\n"
"         (OSSL_CMP_OPT_PERMIT_TA_IN_EXTRACERTS_FOR_IR): no trusted root needed\n"
"       cmpcraft certconf --ip RSP.der --req REQ.der --key KEY.pem --out OUT.der\n"
"                [--reject] [--empty] [OPTIONS]\n"
"       cmpcraft pollreq --ip RSP.der --req REQ.der --key KEY.pem --out OUT.der\n"
"                [--cert-req-id N] [OPTIONS]\n"
"         a pollReq answering RSP (ip with status waiting, or pollRep)\n"
"Header/body options (the message is re-signed with --key afterwards, with\n"
"a fresh senderNonce unless --keep-nonce; --no-resign keeps the protection):\n"
"  --pvno N              set pvno\n"
"  --drop-sender-nonce   remove senderNonce\n"
"  --sender-nonce-len N  random senderNonce of N octets\n"
"  --new-tid             random transactionID\n"
"  --tid HEX             set the transactionID\n"
"  --recip-nonce-random  random recipNonce (in an ir/cr/kur/p10cr/rr/genm:\n"
"                        a recipNonce in the first message of a transaction)\n"
"  --recip-nonce HEX     set the recipNonce\n"
"  --drop-kid            remove senderKID (after --signer; the message is\n"
"                        still signature-protected)\n"
"  --implicit-confirm null|int|novalue  add generalInfo implicitConfirm with\n"
"                        the value NULL, an INTEGER 1, or no value\n"
"  --confirm-wait-time SEC  add generalInfo confirmWaitTime = now + SEC\n"
"                        (both options together: both in one generalInfo)\n"
"  --popo-input sender|othersender|otherkey|pkmac|pkmac-bad --newkey KEY  drop the template's\n"
"                        subject; POP by KEY over a POPOSigningKeyInput naming\n"
"                        the header sender (or CN=someone-else) and the\n"
"                        template's key (or a fresh one)\n"
"  --cert-profile NAME   add generalInfo certProfile (id-it 21) with NAME;\n"
"                        repeated: several names in that one entry\n"
"  --time-offset SEC     messageTime = now + SEC\n"
"  --md NAME             protection digest (e.g. SHA1), default per key\n"
"  --popo bad|raverified|none  change the POPO of the first CertReqMsg\n"
"  --popo-md MD --newkey KEY  re-sign that POPO with the requested key KEY\n"
"                        and digest MD (e.g. SHA1: a POP algorithm refused)\n"
"  --bad-hash            certConf: flip a bit of certHash\n"
"  --cert-req-id N       certConf: certReqId (default from the response)\n"
"  --fail-info BIT       certConf: statusInfo carrying failInfo BIT (a number\n"
"                        or a name such as badRequest); the status stays\n"
"                        accepted unless --reject\n"
"  --reuse-req-nonce     certConf: senderNonce = the request's senderNonce\n"
"                        (instead of a fresh one)\n"
"  --mac SECRET          protect with PasswordBasedMac instead (no --key)\n"
"  --mac-ref REF         ... with senderKID REF (default \"x\")\n"
"  --mac-iter N          ... with N iterations (default 500)\n"
"  --pbmac1              ... with PBMAC1 (PBKDF2, HMAC-SHA256) instead\n"
"  --flip-byte N         flip one byte at offset N of the output (N<0: from end)\n"
"  --error-msg           certconf: send an error message (client gives up)\n"
"  --unprotect           remove protectionAlg and protection\n"
"  --crm-id N            ir/cr/kur: set certReqId of the CertReqMsg\n"
"  --two-reqs            ir/cr/kur: duplicate the CertReqMsg\n"
"  --genm-oid OID        genm: replace the body by one ITAV of OID (no value)\n"
"  --genm-value HEX      ... with this DER infoValue (hex; with --genm-oid)\n"
"  --general-info OID:HEX  add generalInfo ITAV OID with DER value HEX\n"
"  --signer CERT.pem     replace sender, senderKID and extraCerts by CERT\n"
"  --signer-last         put the signer certificate last in extraCerts\n"
"  --sender-from CERT    set only the header sender to CERT's subject\n"
"  --kid-random          random senderKID\n"
"  --chain CHAIN.pem     ... followed by the certificates in CHAIN.pem\n");
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf;

    *len = 0;
    if (fp == NULL)
        return NULL;
    if ((buf = malloc(1 << 20)) != NULL)
        *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static CMP_MSG *load_msg(const char *path)
{
    size_t len;
    unsigned char *der = read_all(path, &len);
    CMP_MSG *msg = NULL;
    enum cmp_reason r;

    if (der == NULL) {
        fprintf(stderr, "cmpcraft: cannot read %s\n", path);
        return NULL;
    }
    if ((r = cmp_msg_decode(der, len, NULL, &msg)) != CMP_R_OK)
        fprintf(stderr, "cmpcraft: %s: %s\n", path, cmp_reason_text(r));
    free(der);
    return msg;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k = NULL;

    if (fp != NULL) {
        k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
        fclose(fp);
    }
    if (k == NULL)
        fprintf(stderr, "cmpcraft: cannot read key %s\n", path);
    return k;
}

static int set_random(ASN1_OCTET_STRING **os, int len)
{
    unsigned char buf[256];

    if (len < 0 || len > (int)sizeof(buf) || RAND_bytes(buf, len) <= 0)
        return 0;
    if (*os == NULL && (*os = ASN1_OCTET_STRING_new()) == NULL)
        return 0;
    return ASN1_OCTET_STRING_set(*os, buf, len);
}

/* Signing with an explicit digest (to make e.g. SHA-1 protection). */
struct sign_arg {
    EVP_PKEY *pkey;
    const char *md;
};

static int sign_md_fn(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                      X509_ALGOR *alg2, ASN1_BIT_STRING *sig, const void *data)
{
    struct sign_arg *a = arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (ctx == NULL)
        return 0;
    ok = EVP_DigestSignInit_ex(ctx, NULL, a->md, NULL, NULL, a->pkey, NULL) > 0
        && ASN1_item_sign_ctx(it, alg1, alg2, sig, (void *)data, ctx) > 0;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Options shared by both commands. */
struct opts {
    const char *in, *out, *key, *ip, *req, *md, *popo, *mac, *signer, *chain,
        *server, *path, *newkey, *capubsout, *trusted, *genm_oid, *genm_value, *tid, *sender_from,
        *recip_nonce, *implicit_confirm, *popo_md, *general_info, *mac_ref;
    long mac_iter;
    int pbmac1;
    int pvno, drop_nonce, nonce_len, new_tid, recip_random, has_time;
    int bad_hash, reject, empty, no_resign, keep_nonce, two_reqs, unprotect,
        error_msg, signer_last, kid_random, drop_kid, reuse_req_nonce;
    long time_offset, flip, cert_req_id, crm_id, confirm_wait;
    int has_flip, has_crid, has_crm_id, has_confirm_wait, fail_info;
    const char *profiles[4];       /* --cert-profile NAME (repeatable) */
    const char *popo_input;        /* --popo-input sender|othersender|otherkey|pkmac|pkmac-bad */
    int nprofiles;
};

static int apply_popo(CMP_MSG *msg, const char *how, const struct opts *o);

/* Re-signs the POPO of the first CertReqMsg with |o->newkey| (the
 * requested key) and digest |o->popo_md|. */
static int apply_popo_md(CMP_MSG *msg, const struct opts *o)
{
    return apply_popo(msg, "resign", o);
}

/* DER tag and length octets for |len| content octets (below 64 KiB). */
static size_t der_hdr_len(size_t len)
{
    return len < 0x80 ? 2 : len < 0x100 ? 3 : 4;
}
static size_t der_hdr(unsigned char *out, unsigned char tag, size_t len)
{
    size_t n = 0;

    out[n++] = tag;
    if (len >= 0x100) {
        out[n++] = 0x82;
        out[n++] = (unsigned char)(len >> 8);
    } else if (len >= 0x80) {
        out[n++] = 0x81;
    }
    out[n++] = (unsigned char)len;
    return n;
}

/* --popo-input: the first CertReqMsg loses its subject and its POP
 * becomes a signature by |o->newkey| over a POPOSigningKeyInput (RFC 4211
 * 4.1) naming the header's sender (or CN=someone-else) and the template's
 * key (or a fresh one). */
static int apply_popo_input(CMP_MSG *msg, const struct opts *o)
{
    CMP_CERTREQMSG *crm;
    CMP_CERTTEMPLATE *t;
    CMP_POPOSIGNINGKEY *sk;
    GENERAL_NAME *other = NULL;
    const GENERAL_NAME *sender = msg->header->sender;
    EVP_PKEY *nk = NULL, *fresh = NULL;
    unsigned char *gn = NULL, *spki = NULL, *in = NULL;
    const unsigned char *p;
    int gn_len, spki_len, ok = 0;
    size_t n = 0, body;

    if ((msg->body->type != CMP_BODY_IR && msg->body->type != CMP_BODY_CR
         && msg->body->type != CMP_BODY_KUR) || o->newkey == NULL
        || (nk = load_key(o->newkey)) == NULL) {
        fprintf(stderr, "cmpcraft: --popo-input needs ir/cr/kur and --newkey\n");
        return 0;
    }
    crm = sk_CMP_CERTREQMSG_value(msg->body->value.ir, 0);
    t = crm->certReq->certTemplate;
    X509_NAME_free(t->subject);
    t->subject = NULL;
    if (strcmp(o->popo_input, "othersender") == 0) {
        X509_NAME *nm = X509_NAME_new();

        other = GENERAL_NAME_new();
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"someone-else", -1, -1, 0);
        GENERAL_NAME_set0_value(other, GEN_DIRNAME, nm);
        sender = other;
    }
    if (strcmp(o->popo_input, "otherkey") == 0) {
        fresh = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        spki_len = fresh != NULL ? i2d_PUBKEY(fresh, &spki) : -1;
    } else {
        spki_len = i2d_CMP_RAWSPKI(t->publicKey, &spki);
    }
    if (strncmp(o->popo_input, "pkmac", 5) == 0) {
        /* authInfo publicKeyMAC: PKMACValue { PasswordBasedMac algId,
         * BIT STRING MAC over the public key } with --mac's secret
         * ("pkmac-bad": another secret) */
        const char *sec = strcmp(o->popo_input, "pkmac-bad") == 0
            ? "not-the-secret" : o->mac;
        OSSL_CRMF_PBMPARAMETER *pbm;
        X509_ALGOR *alg = X509_ALGOR_new();
        ASN1_STRING *ps = NULL;
        unsigned char *pd = NULL, *mac = NULL, *ad = NULL;
        size_t maclen = 0, an;
        int pl, al;

        gn_len = -1;
        if (sec == NULL || spki_len <= 0 || alg == NULL
            || (pbm = OSSL_CRMF_pbmp_new(NULL, 16, NID_sha256, 500,
                                         NID_hmac_sha1)) == NULL) {
            X509_ALGOR_free(alg);
            goto end;
        }
        pl = i2d_OSSL_CRMF_PBMPARAMETER(pbm, &pd);
        if (pl > 0 && (ps = ASN1_STRING_new()) != NULL
            && ASN1_STRING_set(ps, pd, pl)
            && X509_ALGOR_set0(alg, OBJ_nid2obj(NID_id_PasswordBasedMAC),
                               V_ASN1_SEQUENCE, ps))
            ps = NULL;
        if (ps == NULL && (al = i2d_X509_ALGOR(alg, &ad)) > 0
            && OSSL_CRMF_pbm_new(NULL, NULL, pbm, spki, (size_t)spki_len,
                                 (const unsigned char *)sec, strlen(sec),
                                 &mac, &maclen)
            && (gn = OPENSSL_malloc((size_t)al + maclen + 16)) != NULL) {
            an = der_hdr(gn, 0x30, (size_t)al + der_hdr_len(maclen + 1)
                         + maclen + 1);
            memcpy(gn + an, ad, (size_t)al);
            an += (size_t)al;
            an += der_hdr(gn + an, 0x03, maclen + 1);
            gn[an++] = 0;
            memcpy(gn + an, mac, maclen);
            gn_len = (int)(an + maclen);
        }
        ASN1_STRING_free(ps);
        OSSL_CRMF_PBMPARAMETER_free(pbm);
        X509_ALGOR_free(alg);
        OPENSSL_free(pd);
        OPENSSL_free(ad);
        OPENSSL_free(mac);
    } else {
        gn_len = i2d_GENERAL_NAME((GENERAL_NAME *)sender, &gn);
    }
    if (spki_len <= 0 || gn_len <= 0 || gn_len > 0xffff
        || (in = OPENSSL_malloc((size_t)(gn_len + spki_len) + 16)) == NULL)
        goto end;
    /* SEQUENCE { [0] EXPLICIT GeneralName | PKMACValue,
     * SubjectPublicKeyInfo } (DER) */
    if (strncmp(o->popo_input, "pkmac", 5) == 0) {
        body = (size_t)gn_len + (size_t)spki_len;
        n = der_hdr(in, 0x30, body);
    } else {
        body = (size_t)gn_len + der_hdr_len((size_t)gn_len) + (size_t)spki_len;
        n = der_hdr(in, 0x30, body);
        n += der_hdr(in + n, 0xa0, (size_t)gn_len);
    }
    memcpy(in + n, gn, (size_t)gn_len);
    n += (size_t)gn_len;
    memcpy(in + n, spki, (size_t)spki_len);
    n += (size_t)spki_len;
    p = in;
    if (crm->popo == NULL || crm->popo->type != 1)
        goto end;
    sk = crm->popo->value.signature;
    sk_ASN1_TYPE_pop_free(sk->poposkInput, ASN1_TYPE_free);
    if ((sk->poposkInput = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)n)) == NULL)
        goto end;
    ok = ASN1_item_sign(ASN1_ITEM_rptr(ASN1_SEQUENCE_ANY),
                        sk->algorithmIdentifier, NULL, sk->signature,
                        sk->poposkInput, nk,
                        EVP_PKEY_get_base_id(nk) == EVP_PKEY_ED25519
                        || EVP_PKEY_get_base_id(nk) == EVP_PKEY_ED448
                            ? NULL : EVP_sha256()) > 0;
 end:
    GENERAL_NAME_free(other);
    EVP_PKEY_free(nk);
    EVP_PKEY_free(fresh);
    OPENSSL_free(gn);
    OPENSSL_free(spki);
    OPENSSL_free(in);
    return ok;
}

static int apply_popo(CMP_MSG *msg, const char *how, const struct opts *o)
{
    OSSL_CRMF_MSGS *msgs = NULL;
    OSSL_CRMF_MSG *crm, *copy = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len, ok = 0;

    if (msg->body->type != CMP_BODY_IR && msg->body->type != CMP_BODY_CR
        && msg->body->type != CMP_BODY_KUR) {
        fprintf(stderr, "cmpcraft: --popo needs ir/cr/kur\n");
        return 0;
    }
    /* mutate through OpenSSL's CRMF API on a copy, then put it back */
    if ((msgs = cmp_crmf_get1_ossl(msg->body->value.ir)) == NULL)
        return 0;
    crm = sk_OSSL_CRMF_MSG_value(msgs, 0);
    if (strcmp(how, "raverified") == 0) {
        ok = OSSL_CRMF_MSG_create_popo(OSSL_CRMF_POPO_RAVERIFIED, crm, NULL,
                                       NULL, NULL, NULL);
    } else if (strcmp(how, "none") == 0) {
        ok = OSSL_CRMF_MSG_create_popo(OSSL_CRMF_POPO_NONE, crm, NULL, NULL,
                                       NULL, NULL);
    } else if (strcmp(how, "resign") == 0) {
        EVP_PKEY *nk = o->newkey != NULL ? load_key(o->newkey) : NULL;
        EVP_MD *md = EVP_MD_fetch(NULL, o->popo_md, NULL);

        ok = nk != NULL && md != NULL
            && OSSL_CRMF_MSG_create_popo(OSSL_CRMF_POPO_SIGNATURE, crm, nk, md,
                                         NULL, NULL);
        EVP_MD_free(md);
        EVP_PKEY_free(nk);
    } else if (strcmp(how, "bad") == 0) {
        /* The POPOSigningKey is the last field of the CertReqMsg (no
         * regInfo from the openssl client): flip the last signature byte. */
        if ((len = i2d_OSSL_CRMF_MSG(crm, &der)) > 0) {
            der[len - 1] ^= 0x01;
            p = der;
            copy = d2i_OSSL_CRMF_MSG(NULL, &p, len);
        }
        OPENSSL_free(der);
        if (copy != NULL) {
            (void)sk_OSSL_CRMF_MSG_set(msgs, 0, copy);
            OSSL_CRMF_MSG_free(crm);
            ok = 1;
        }
    }
    ok = ok && cmp_crmf_set1_ossl(&msg->body->value.ir, msgs);
    OSSL_CRMF_MSGS_free(msgs);
    return ok;
}

/* Makes |cert| (then the certificates of |chain|) the message's signer. */
static int apply_signer(CMP_MSG *msg, const char *cert, const char *chain)
{
    CMP_HDR *h = msg->header;
    STACK_OF(X509) *sk = sk_X509_new_null();
    const char *files[2];
    X509 *x, *first = NULL;
    int i, ok = 0;

    files[0] = cert;
    files[1] = chain;
    for (i = 0; i < 2 && sk != NULL; i++) {
        FILE *fp;

        if (files[i] == NULL || (fp = fopen(files[i], "r")) == NULL)
            continue;
        while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
            int j, dup = 0;

            for (j = 0; j < sk_X509_num(sk); j++)
                dup |= X509_cmp(sk_X509_value(sk, j), x) == 0;
            if (dup || !sk_X509_push(sk, x))
                X509_free(x);
        }
        ERR_clear_error();
        fclose(fp);
    }
    if (sk == NULL || (first = sk_X509_value(sk, 0)) == NULL)
        goto end;
    GENERAL_NAME_free(h->sender);
    if ((h->sender = GENERAL_NAME_new()) == NULL)
        goto end;
    h->sender->type = GEN_DIRNAME;
    if ((h->sender->d.directoryName =
         X509_NAME_dup(X509_get_subject_name(first))) == NULL)
        goto end;
    ASN1_OCTET_STRING_free(h->senderKID);
    h->senderKID = X509_get0_subject_key_id(first) != NULL
        ? ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(first)) : NULL;
    sk_X509_pop_free(msg->extraCerts, X509_free);
    msg->extraCerts = sk;
    sk = NULL;
    ok = 1;
 end:
    sk_X509_pop_free(sk, X509_free);
    return ok;
}

/* Appends to generalInfo an ITAV of |nid| with |value| (taken over). */
static int add_general_info(CMP_HDR *h, int nid, ASN1_TYPE *value)
{
    CMP_ITAV *itav = CMP_ITAV_new();

    if (itav == NULL) {
        ASN1_TYPE_free(value);
        return 0;
    }
    ASN1_OBJECT_free(itav->infoType);
    itav->infoType = OBJ_nid2obj(nid);
    itav->infoValue = value;
    if ((h->generalInfo == NULL && (h->generalInfo = sk_CMP_ITAV_new_null()) == NULL)
        || !sk_CMP_ITAV_push(h->generalInfo, itav)) {
        CMP_ITAV_free(itav);
        return 0;
    }
    return 1;
}

/* generalInfo from --implicit-confirm and --confirm-wait-time. */
static int apply_general_info(CMP_HDR *h, const struct opts *o)
{
    ASN1_TYPE *t = NULL;

    if (o->implicit_confirm != NULL) {
        if (strcmp(o->implicit_confirm, "null") == 0) {
            if ((t = ASN1_TYPE_new()) == NULL)
                return 0;
            ASN1_TYPE_set(t, V_ASN1_NULL, NULL);
        } else if (strcmp(o->implicit_confirm, "int") == 0) {
            ASN1_INTEGER *i = ASN1_INTEGER_new();

            if (i == NULL || !ASN1_INTEGER_set(i, 1) || (t = ASN1_TYPE_new()) == NULL) {
                ASN1_INTEGER_free(i);
                return 0;
            }
            ASN1_TYPE_set(t, V_ASN1_INTEGER, i);
        } else if (strcmp(o->implicit_confirm, "novalue") != 0) {
            fprintf(stderr, "cmpcraft: --implicit-confirm null|int|novalue\n");
            return 0;
        }
        if (!add_general_info(h, NID_id_it_implicitConfirm, t))
            return 0;
    }
    if (o->nprofiles > 0
        && !cmp_hdr_push_cert_profile(h, o->profiles, o->nprofiles))
        return 0;
    if (o->general_info != NULL) {
        const char *colon = strchr(o->general_info, ':');
        char oid[64];
        long vlen = 0;
        unsigned char *vder;
        const unsigned char *vp;
        CMP_ITAV *itav;

        if (colon == NULL || (size_t)(colon - o->general_info) >= sizeof(oid)
            || (itav = CMP_ITAV_new()) == NULL)
            return 0;
        memcpy(oid, o->general_info, (size_t)(colon - o->general_info));
        oid[colon - o->general_info] = '\0';
        ASN1_OBJECT_free(itav->infoType);
        vder = OPENSSL_hexstr2buf(colon + 1, &vlen);
        vp = vder;
        itav->infoType = OBJ_txt2obj(oid, 1);
        itav->infoValue = vder != NULL ? d2i_ASN1_TYPE(NULL, &vp, vlen) : NULL;
        OPENSSL_free(vder);
        if (itav->infoType == NULL || itav->infoValue == NULL
            || (h->generalInfo == NULL
                && (h->generalInfo = sk_CMP_ITAV_new_null()) == NULL)
            || !sk_CMP_ITAV_push(h->generalInfo, itav)) {
            CMP_ITAV_free(itav);
            return 0;
        }
    }
    if (o->has_confirm_wait) {
        ASN1_GENERALIZEDTIME *gt =
            ASN1_GENERALIZEDTIME_set(NULL, time(NULL) + o->confirm_wait);

        if (gt == NULL || (t = ASN1_TYPE_new()) == NULL) {
            ASN1_GENERALIZEDTIME_free(gt);
            return 0;
        }
        ASN1_TYPE_set(t, V_ASN1_GENERALIZEDTIME, gt);
        if (!add_general_info(h, NID_id_it_confirmWaitTime, t))
            return 0;
    }
    return 1;
}

static X509 *load_cert(const char *path);

static int apply_opts(CMP_MSG *msg, const struct opts *o)
{
    CMP_HDR *h = msg->header;

    if (o->signer != NULL && !apply_signer(msg, o->signer, o->chain))
        return 0;
    if (o->signer_last && sk_X509_num(msg->extraCerts) > 1) {
        X509 *first = sk_X509_shift(msg->extraCerts);

        if (!sk_X509_push(msg->extraCerts, first))
            return 0;
    }
    if (o->kid_random && !set_random(&h->senderKID, 20))
        return 0;
    if (o->sender_from != NULL) {
        X509 *x = load_cert(o->sender_from);
        X509_NAME *nm = x != NULL ? X509_NAME_dup(X509_get_subject_name(x)) : NULL;

        X509_free(x);
        if (nm == NULL || h->sender == NULL || h->sender->type != GEN_DIRNAME) {
            X509_NAME_free(nm);
            return 0;
        }
        X509_NAME_free(h->sender->d.directoryName);
        h->sender->d.directoryName = nm;
    }

    if (o->pvno >= 0 && !ASN1_INTEGER_set(h->pvno, o->pvno))
        return 0;
    if (o->new_tid && !set_random(&h->transactionID, 16))
        return 0;
    if (o->tid != NULL) {
        long blen = 0;
        unsigned char *b = OPENSSL_hexstr2buf(o->tid, &blen);

        if (b == NULL || !ASN1_OCTET_STRING_set(h->transactionID, b, (int)blen)) {
            OPENSSL_free(b);
            return 0;
        }
        OPENSSL_free(b);
    }
    if (!o->keep_nonce && !o->no_resign && !set_random(&h->senderNonce, 16))
        return 0;
    if (o->nonce_len >= 0 && !set_random(&h->senderNonce, o->nonce_len))
        return 0;
    if (o->drop_nonce) {
        ASN1_OCTET_STRING_free(h->senderNonce);
        h->senderNonce = NULL;
    }
    if (o->recip_random && !set_random(&h->recipNonce, 16))
        return 0;
    if (o->recip_nonce != NULL) {
        long blen = 0;
        unsigned char *b = OPENSSL_hexstr2buf(o->recip_nonce, &blen);

        if (b == NULL || (h->recipNonce == NULL
                          && (h->recipNonce = ASN1_OCTET_STRING_new()) == NULL)
            || !ASN1_OCTET_STRING_set(h->recipNonce, b, (int)blen)) {
            OPENSSL_free(b);
            return 0;
        }
        OPENSSL_free(b);
    }
    if (o->drop_kid) {
        ASN1_OCTET_STRING_free(h->senderKID);
        h->senderKID = NULL;
    }
    if (!apply_general_info(h, o))
        return 0;
    if (o->has_time || !o->no_resign) {
        ASN1_GENERALIZEDTIME *t =
            ASN1_GENERALIZEDTIME_set(NULL, time(NULL) + o->time_offset);

        if (t == NULL)
            return 0;
        ASN1_GENERALIZEDTIME_free(h->messageTime);
        h->messageTime = t;
    }
    if (o->popo != NULL && !apply_popo(msg, o->popo, o))
        return 0;
    if (o->popo_input != NULL && !apply_popo_input(msg, o))
        return 0;
    if (o->popo_md != NULL && !apply_popo_md(msg, o))
        return 0;
    if (o->genm_oid != NULL) {
        CMP_ITAV *itav;

        if (msg->body->type != CMP_BODY_GENM || (itav = CMP_ITAV_new()) == NULL)
            return 0;
        ASN1_OBJECT_free(itav->infoType);
        if ((itav->infoType = OBJ_txt2obj(o->genm_oid, 1)) == NULL) {
            CMP_ITAV_free(itav);
            return 0;
        }
        if (o->genm_value != NULL) {
            long vlen = 0;
            unsigned char *vder = OPENSSL_hexstr2buf(o->genm_value, &vlen);
            const unsigned char *vp = vder;

            itav->infoValue = vder != NULL ? d2i_ASN1_TYPE(NULL, &vp, vlen)
                                           : NULL;
            OPENSSL_free(vder);
            if (itav->infoValue == NULL) {
                CMP_ITAV_free(itav);
                return 0;
            }
        }
        sk_CMP_ITAV_pop_free(msg->body->value.genm, CMP_ITAV_free);
        if ((msg->body->value.genm = sk_CMP_ITAV_new_null()) == NULL
            || !sk_CMP_ITAV_push(msg->body->value.genm, itav)) {
            CMP_ITAV_free(itav);
            return 0;
        }
    }
    if (o->has_crm_id
        && !ASN1_INTEGER_set(sk_CMP_CERTREQMSG_value(msg->body->value.ir, 0)
                             ->certReq->certReqId, o->crm_id))
        return 0;
    if (o->two_reqs) {
        CMP_CERTREQMSG *d = CMP_CERTREQMSG_dup(sk_CMP_CERTREQMSG_value(msg->body->value.ir, 0));

        if (d == NULL || !sk_CMP_CERTREQMSG_push(msg->body->value.ir, d)) {
            CMP_CERTREQMSG_free(d);
            return 0;
        }
    }
    if (o->bad_hash && msg->body->type == CMP_BODY_CERTCONF) {
        CMP_CERTSTATUS *st = sk_CMP_CERTSTATUS_value(msg->body->value.certConf, 0);
        unsigned char *d;

        if (st == NULL)
            return 0;
        d = (unsigned char *)ASN1_STRING_get0_data(st->certHash);
        d[0] ^= 0x80;
    }
    return 1;
}

static int protect_and_write(CMP_MSG *msg, const struct opts *o)
{
    unsigned char *der = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    FILE *fp;
    int ok = 0;

    if (o->mac != NULL) {
        ASN1_OCTET_STRING *kid = ASN1_OCTET_STRING_new();
        const char *ref = o->mac_ref != NULL ? o->mac_ref : "x";
        long iter = o->mac_iter > 0 ? o->mac_iter : 500;

        if (kid == NULL || !ASN1_OCTET_STRING_set(kid, (const unsigned char *)ref,
                                                  (int)strlen(ref)))
            goto end;
        ASN1_OCTET_STRING_free(msg->header->senderKID);
        msg->header->senderKID = kid;
        sk_X509_pop_free(msg->extraCerts, X509_free);
        msg->extraCerts = NULL;
        if (o->pbmac1 ? !cmp_protect_mac_pbmac1(msg, (const unsigned char *)o->mac,
                                                strlen(o->mac), iter)
            : !cmp_protect_mac_pbm(msg, (const unsigned char *)o->mac,
                                   strlen(o->mac), "SHA256", "SHA1", iter))
            goto end;
    } else if (!o->no_resign) {
        struct sign_arg a;

        if (o->key == NULL || (key = load_key(o->key)) == NULL) {
            fprintf(stderr, "cmpcraft: --key needed to re-sign\n");
            goto end;
        }
        a.pkey = key;
        a.md = o->md != NULL ? o->md : pkey_default_md(key);
        X509_ALGOR_free(msg->header->protectionAlg);
        msg->header->protectionAlg = NULL;
        if (!cmp_protect_sign(msg, sign_md_fn, &a))
            goto end;
    }
    if (o->unprotect) {
        X509_ALGOR_free(msg->header->protectionAlg);
        msg->header->protectionAlg = NULL;
        ASN1_BIT_STRING_free(msg->protection);
        msg->protection = NULL;
    }
    if (!cmp_msg_encode(msg, &der, &len))
        goto end;
    if (o->has_flip) {
        long at = o->flip < 0 ? (long)len + o->flip : o->flip;

        if (at < 0 || at >= (long)len)
            goto end;
        der[at] ^= 0x01;
    }
    if ((fp = fopen(o->out, "wb")) == NULL)
        goto end;
    ok = fwrite(der, 1, len, fp) == len;
    ok &= fclose(fp) == 0;
 end:
    if (!ok) {
        fprintf(stderr, "cmpcraft: cannot build %s\n", o->out);
        ERR_print_errors_fp(stderr);
    }
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    return ok;
}

/* certConf answering |rsp| (ip/cp/kup) in the name of |req|'s sender. */
/* A pollReq for the transaction of |rsp| (an ip/cp/kup with status
 * waiting, or a pollRep) in the name of the sender of |req|: recipNonce =
 * the response's senderNonce, certReqId 0 (or --cert-req-id). */
static CMP_MSG *build_pollreq(const CMP_MSG *req, const CMP_MSG *rsp,
                              const struct opts *o)
{
    CMP_MSG *pr = CMP_MSG_dup(req);
    CMP_POLLREQ *one = NULL;

    if (pr == NULL)
        return NULL;
    ASN1_OCTET_STRING_free(pr->header->transactionID);
    pr->header->transactionID = ASN1_OCTET_STRING_dup(rsp->header->transactionID);
    ASN1_OCTET_STRING_free(pr->header->recipNonce);
    pr->header->recipNonce = ASN1_OCTET_STRING_dup(rsp->header->senderNonce);
    sk_CMP_ITAV_pop_free(pr->header->generalInfo, CMP_ITAV_free);
    pr->header->generalInfo = NULL;
    CMP_BODY_free(pr->body);
    if ((pr->body = CMP_BODY_new()) == NULL)
        goto err;
    pr->body->type = CMP_BODY_POLLREQ;
    if ((pr->body->value.pollReq = sk_CMP_POLLREQ_new_null()) == NULL
        || (one = CMP_POLLREQ_new()) == NULL
        || !ASN1_INTEGER_set_int64(one->certReqId,
                                   o->has_crid ? o->cert_req_id : 0)
        || !sk_CMP_POLLREQ_push(pr->body->value.pollReq, one))
        goto err;
    return pr;
 err:
    CMP_POLLREQ_free(one);
    CMP_MSG_free(pr);
    return NULL;
}

static CMP_MSG *build_certconf(const CMP_MSG *req, const CMP_MSG *rsp,
                               const struct opts *o)
{
    CMP_MSG *cc = CMP_MSG_dup(req);
    CMP_CERTREPMSG *rep;
    CMP_CERTRESP *cr;
    CMP_CERTSTATUS *st = NULL;
    X509 *cert;
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    int64_t crid = 0;
    int ok;

    if (cc == NULL)
        return NULL;
    if (rsp->body->type != CMP_BODY_IP && rsp->body->type != CMP_BODY_CP
        && rsp->body->type != CMP_BODY_KUP) {
        fprintf(stderr, "cmpcraft: --ip must be an ip, cp or kup\n");
        goto err;
    }
    rep = rsp->body->value.ip;
    cr = sk_CMP_CERTRESP_value(rep->response, 0);
    if (cr == NULL || cr->certifiedKeyPair == NULL
        || cr->certifiedKeyPair->certOrEncCert->type != 0)
        goto err;
    /* certHash over the certificate as received */
    if ((cert = cmp_certorenccert_get1_cert(cr->certifiedKeyPair->certOrEncCert))
        == NULL)
        goto err;
    ok = cmp_certhash(cert, hash, &hlen);
    X509_free(cert);
    if (!ok)
        goto err;
    ASN1_INTEGER_get_int64(&crid, cr->certReqId);
    if (o->has_crid)
        crid = o->cert_req_id;
    /* header: the request's sender/KID/pvno, the response's tid/nonce */
    ASN1_OCTET_STRING_free(cc->header->transactionID);
    cc->header->transactionID = ASN1_OCTET_STRING_dup(rsp->header->transactionID);
    ASN1_OCTET_STRING_free(cc->header->recipNonce);
    cc->header->recipNonce = ASN1_OCTET_STRING_dup(rsp->header->senderNonce);
    sk_CMP_ITAV_pop_free(cc->header->generalInfo, CMP_ITAV_free);
    cc->header->generalInfo = NULL;
    CMP_BODY_free(cc->body);
    if ((cc->body = CMP_BODY_new()) == NULL)
        goto err;
    if (o->error_msg) {
        CMP_ERRORMSG *em = CMP_ERRORMSG_new();

        cc->body->type = CMP_BODY_ERROR;
        cc->body->value.error = em;
        if (em == NULL
            || !ASN1_INTEGER_set(em->pKIStatusInfo->status, CMP_STATUS_REJECTION))
            goto err;
        return cc;
    }
    cc->body->type = CMP_BODY_CERTCONF;
    if ((cc->body->value.certConf = sk_CMP_CERTSTATUS_new_null()) == NULL)
        goto err;
    if (o->empty)
        return cc;
    if ((st = CMP_CERTSTATUS_new()) == NULL
        || !ASN1_OCTET_STRING_set(st->certHash, hash, (int)hlen)
        || !ASN1_INTEGER_set_int64(st->certReqId, crid))
        goto err;
    if (o->reject || o->fail_info >= 0) {
        CMP_PKISI *si = CMP_PKISI_new();

        if (si == NULL
            || !ASN1_INTEGER_set(si->status, o->reject ? CMP_STATUS_REJECTION
                                                       : CMP_STATUS_ACCEPTED)) {
            CMP_PKISI_free(si);
            goto err;
        }
        if (o->fail_info >= 0
            && ((si->failInfo = ASN1_BIT_STRING_new()) == NULL
                || !ASN1_BIT_STRING_set_bit(si->failInfo, o->fail_info, 1))) {
            CMP_PKISI_free(si);
            goto err;
        }
        st->statusInfo = si;
    }
    if (!sk_CMP_CERTSTATUS_push(cc->body->value.certConf, st))
        goto err;
    return cc;
 err:
    CMP_CERTSTATUS_free(st);
    CMP_MSG_free(cc);
    return NULL;
}

static X509 *load_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *x = NULL;

    if (fp != NULL) {
        x = PEM_read_X509(fp, NULL, NULL, NULL);
        fclose(fp);
    }
    return x;
}

static STACK_OF(X509) *load_certs(const char *path)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    FILE *fp = path != NULL ? fopen(path, "r") : NULL;
    X509 *x;

    while (fp != NULL && sk != NULL
           && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(sk, x))
            X509_free(x);
    ERR_clear_error();
    if (fp != NULL)
        fclose(fp);
    return sk;
}

static int write_certs(const char *path, const STACK_OF(X509) *sk)
{
    FILE *fp = fopen(path, "w");
    int i, ok = fp != NULL;

    for (i = 0; ok && i < sk_X509_num(sk); i++)
        ok = PEM_write_X509(fp, sk_X509_value(sk, i));
    if (fp != NULL)
        ok &= fclose(fp) == 0;
    return ok;
}

/* Like a 3GPP device: once the ip validated (its root taken from
 * extraCerts), install the caPubs root as trust anchor for the rest of the
 * transaction (pkiConf) and later sessions. */
static int certconf_cb(OSSL_CMP_CTX *ctx, X509 *cert, int fail_info,
                       const char **txt)
{
    STACK_OF(X509) *caps = OSSL_CMP_CTX_get1_caPubs(ctx);
    X509_STORE *ts = OSSL_CMP_CTX_get0_trustedStore(ctx);
    int i;

    for (i = 0; ts != NULL && i < sk_X509_num(caps); i++)
        X509_STORE_add_cert(ts, sk_X509_value(caps, i));
    if (sk_X509_num(caps) == 0 && fail_info == 0) {
        *txt = "no caPubs";
        fail_info = 1 << OSSL_CMP_PKIFAILUREINFO_incorrectData;
    }
    sk_X509_pop_free(caps, X509_free);
    ERR_clear_error();
    return fail_info;
}

/* ir + certConf through OSSL_CMP with the 3GPP trust-anchor-in-extraCerts
 * option and an empty trust store (or |trusted| if given). */
static int ossl_ir(const struct opts *o)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
    X509_STORE *ts = X509_STORE_new();
    X509 *cert = NULL, *newcert, *root = NULL;
    EVP_PKEY *key = NULL, *newkey = NULL;
    STACK_OF(X509) *chain = NULL, *capubs = NULL;
    char host[256], *colon;
    int ok = 0;

    if (o->server == NULL || o->signer == NULL || o->key == NULL
        || o->newkey == NULL || strlen(o->server) >= sizeof(host)) {
        usage();
        goto end;
    }
    snprintf(host, sizeof(host), "%s", o->server);
    if ((colon = strrchr(host, ':')) == NULL)
        goto end;
    *colon = '\0';
    if (ctx == NULL || ts == NULL || (cert = load_cert(o->signer)) == NULL
        || (key = load_key(o->key)) == NULL
        || (newkey = load_key(o->newkey)) == NULL
        || (chain = load_certs(o->chain)) == NULL)
        goto end;
    if (o->trusted != NULL
        && ((root = load_cert(o->trusted)) == NULL
            || !X509_STORE_add_cert(ts, root)))
        goto end;
    if (!OSSL_CMP_CTX_set1_server(ctx, host)
        || !OSSL_CMP_CTX_set_serverPort(ctx, atoi(colon + 1))
        || !OSSL_CMP_CTX_set1_serverPath(ctx, o->path != NULL ? o->path : "/")
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, 30)
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, 60)
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_PERMIT_TA_IN_EXTRACERTS_FOR_IR, 1)
        || !OSSL_CMP_CTX_set_certConf_cb(ctx, certconf_cb)
        || !OSSL_CMP_CTX_set0_trustedStore(ctx, ts))
        goto end;
    ts = NULL;
    if (!OSSL_CMP_CTX_set1_cert(ctx, cert) || !OSSL_CMP_CTX_set1_pkey(ctx, key)
        || !OSSL_CMP_CTX_build_cert_chain(ctx, NULL, chain)
        || !OSSL_CMP_CTX_set1_untrusted(ctx, chain)
        || !OSSL_CMP_CTX_set0_newPkey(ctx, 1, newkey))
        goto end;
    newkey = NULL;
    if ((newcert = OSSL_CMP_exec_IR_ses(ctx)) == NULL) {
        fprintf(stderr, "cmpcraft: ir failed, status %d\n",
                OSSL_CMP_CTX_get_status(ctx));
        goto end;
    }
    {
        STACK_OF(X509) *one = sk_X509_new_null();

        ok = one != NULL && sk_X509_push(one, newcert)
            && write_certs(o->out, one);
        sk_X509_free(one);
    }
    if (ok && o->capubsout != NULL) {
        capubs = OSSL_CMP_CTX_get1_caPubs(ctx);
        ok = capubs != NULL && write_certs(o->capubsout, capubs);
    }
 end:
    if (!ok)
        ERR_print_errors_fp(stderr);
    sk_X509_pop_free(capubs, X509_free);
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    X509_free(root);
    EVP_PKEY_free(key);
    EVP_PKEY_free(newkey);
    X509_STORE_free(ts);
    OSSL_CMP_CTX_free(ctx);
    return ok ? 0 : 1;
}

/* A failInfo bit by number (0..26) or name ("badRequest"); -1 if neither. */
static int parse_fail_bit(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    int b;

    if (*v != '\0' && *end == '\0')
        return n >= 0 && n <= CMP_FAIL_MAX ? (int)n : -1;
    for (b = 0; b <= CMP_FAIL_MAX; b++)
        if (strcmp(v, cmp_fail_bit_name(b)) == 0)
            return b;
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    CMP_MSG *msg = NULL, *req = NULL, *rsp = NULL;
    int i, ret = 1;
    const char *cmd;

    memset(&o, 0, sizeof(o));
    o.pvno = -1;
    o.nonce_len = -1;
    o.fail_info = -1;
    if (argc < 2) {
        usage();
        return 2;
    }
    cmd = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define ARG(name) (strcmp(a, name) == 0 && v != NULL && (i++, 1))
        if (ARG("--in")) o.in = v;
        else if (ARG("--out")) o.out = v;
        else if (ARG("--key")) o.key = v;
        else if (ARG("--ip")) o.ip = v;
        else if (ARG("--req")) o.req = v;
        else if (ARG("--md")) o.md = v;
        else if (ARG("--popo")) o.popo = v;
        else if (ARG("--mac")) o.mac = v;
        else if (ARG("--mac-ref")) o.mac_ref = v;
        else if (ARG("--mac-iter")) o.mac_iter = atol(v);
        else if (strcmp(a, "--pbmac1") == 0) o.pbmac1 = 1;
        else if (ARG("--signer")) o.signer = v;
        else if (ARG("--chain")) o.chain = v;
        else if (ARG("--server")) o.server = v;
        else if (ARG("--path")) o.path = v;
        else if (ARG("--newkey")) o.newkey = v;
        else if (ARG("--capubsout")) o.capubsout = v;
        else if (ARG("--trusted")) o.trusted = v;
        else if (ARG("--genm-oid")) o.genm_oid = v;
        else if (ARG("--general-info")) o.general_info = v;
        else if (ARG("--genm-value")) o.genm_value = v;
        else if (ARG("--tid")) o.tid = v;
        else if (ARG("--sender-from")) o.sender_from = v;
        else if (ARG("--recip-nonce")) o.recip_nonce = v;
        else if (ARG("--popo-md")) o.popo_md = v;
        else if (ARG("--implicit-confirm")) o.implicit_confirm = v;
        else if (ARG("--popo-input")) o.popo_input = v;
        else if (ARG("--cert-profile") && o.nprofiles < 4)
            o.profiles[o.nprofiles++] = v;
        else if (ARG("--confirm-wait-time")) { o.confirm_wait = atol(v); o.has_confirm_wait = 1; }
        else if (ARG("--fail-info")) {
            if ((o.fail_info = parse_fail_bit(v)) < 0) {
                fprintf(stderr, "cmpcraft: bad failInfo %s\n", v);
                return 2;
            }
        }
        else if (strcmp(a, "--drop-kid") == 0) o.drop_kid = 1;
        else if (strcmp(a, "--reuse-req-nonce") == 0) o.reuse_req_nonce = 1;
        else if (strcmp(a, "--signer-last") == 0) o.signer_last = 1;
        else if (strcmp(a, "--kid-random") == 0) o.kid_random = 1;
        else if (ARG("--pvno")) o.pvno = atoi(v);
        else if (ARG("--sender-nonce-len")) o.nonce_len = atoi(v);
        else if (ARG("--time-offset")) { o.time_offset = atol(v); o.has_time = 1; }
        else if (ARG("--flip-byte")) { o.flip = atol(v); o.has_flip = 1; }
        else if (ARG("--crm-id")) { o.crm_id = atol(v); o.has_crm_id = 1; }
        else if (ARG("--cert-req-id")) { o.cert_req_id = atol(v); o.has_crid = 1; }
        else if (strcmp(a, "--drop-sender-nonce") == 0) o.drop_nonce = 1;
        else if (strcmp(a, "--new-tid") == 0) o.new_tid = 1;
        else if (strcmp(a, "--recip-nonce-random") == 0) o.recip_random = 1;
        else if (strcmp(a, "--bad-hash") == 0) o.bad_hash = 1;
        else if (strcmp(a, "--reject") == 0) o.reject = 1;
        else if (strcmp(a, "--empty") == 0) o.empty = 1;
        else if (strcmp(a, "--no-resign") == 0) o.no_resign = 1;
        else if (strcmp(a, "--keep-nonce") == 0) o.keep_nonce = 1;
        else if (strcmp(a, "--two-reqs") == 0) o.two_reqs = 1;
        else if (strcmp(a, "--error-msg") == 0) o.error_msg = 1;
        else if (strcmp(a, "--unprotect") == 0) o.unprotect = o.no_resign = 1;
        else {
            fprintf(stderr, "cmpcraft: unknown or incomplete option %s\n", a);
            usage();
            return 2;
        }
#undef ARG
    }
    if (o.out == NULL) {
        usage();
        return 2;
    }
    if (strcmp(cmd, "ossl-ir") == 0)
        return ossl_ir(&o);
    if (strcmp(cmd, "mutate") == 0) {
        if (o.in == NULL || (msg = load_msg(o.in)) == NULL)
            goto end;
    } else if (strcmp(cmd, "certconf") == 0) {
        if (o.ip == NULL || o.req == NULL || (req = load_msg(o.req)) == NULL
            || (rsp = load_msg(o.ip)) == NULL
            || (msg = build_certconf(req, rsp, &o)) == NULL)
            goto end;
    } else if (strcmp(cmd, "pollreq") == 0) {
        if (o.ip == NULL || o.req == NULL || (req = load_msg(o.req)) == NULL
            || (rsp = load_msg(o.ip)) == NULL
            || (msg = build_pollreq(req, rsp, &o)) == NULL)
            goto end;
    } else {
        usage();
        return 2;
    }
    if (!apply_opts(msg, &o)) {
        fprintf(stderr, "cmpcraft: cannot apply the options\n");
        goto end;
    }
    if (o.reuse_req_nonce) {
        /* the certConf repeats the senderNonce of the request it confirms */
        if (req == NULL || req->header->senderNonce == NULL) {
            fprintf(stderr, "cmpcraft: --reuse-req-nonce needs certconf --req\n");
            goto end;
        }
        ASN1_OCTET_STRING_free(msg->header->senderNonce);
        if ((msg->header->senderNonce =
             ASN1_OCTET_STRING_dup(req->header->senderNonce)) == NULL)
            goto end;
    }
    if (protect_and_write(msg, &o))
        ret = 0;
 end:
    CMP_MSG_free(msg);
    CMP_MSG_free(req);
    CMP_MSG_free(rsp);
    return ret;
}
