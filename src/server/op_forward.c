/*
 * Forwarding (mode = upstream): after the device policy accepted a
 * message (mode_upstream.c) and its proof of possession verified, the RA
 * sends it to the upstream CMP server - nested (RFC 9483 5.2.2.1: the
 * device's message unchanged in a wrapper the RA signs) or re-protected
 * (RFC 9483 5.2.3.2: the RA's signature, raVerified, the original as
 * origPKIMessage) - with transactionID and nonces unchanged (5.2.3). The
 * answer must verify against upstream_trust and answer this request; it
 * goes to the device unchanged or re-protected by the RA (extraCerts: the
 * RA's chain, then the upstream's, so the device can still validate the
 * new certificate and reach the operator root). Every relayed message is
 * recorded with its answer (a repeat, also after a restart or on another
 * node, gets the same answer without a second forward) and audited. An
 * upstream that does not answer in upstream_timeout * (upstream_retries
 * + 1) gives a protected systemUnavail (HTTP 503).
 */
#include "server/srv_upstream.h"

#include "cmp/cmp_build.h"
#include "cmp/cmp_crmf.h"
#include "cmp/cmp_spki.h"
#include "util/log.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_FWD_MAC_ITER 10000    /* PasswordBasedMac with HMAC-SHA256:
                                   * what OpenSSL 3.0 servers verify */
#define SRV_OID_ORIG_PKIMESSAGE "1.3.6.1.5.5.7.4.15"   /* id-it 15 */

static int srv_fwd_sign_fn(void *arg, const ASN1_ITEM *it, X509_ALGOR *alg1,
                           X509_ALGOR *alg2, ASN1_BIT_STRING *sig,
                           const void *data)
{
    return ca_signer_sign_item(arg, it, alg1, alg2, sig, data);
}

/* The device proves possession of the key it asks a certificate for:
 * the RA checks it before it asserts raVerified upstream. */
static enum cmp_reason srv_fwd_pop(struct srv_ctx *ctx)
{
    const CMP_BODY *b = ctx->req->body;
    const STACK_OF(CMP_CERTREQMSG) *msgs = b->value.ir;
    const CMP_CERTREQMSG *crm;
    EVP_PKEY *pkey = NULL;
    X509_PUBKEY *xpk = NULL;
    enum cmp_reason r;

    if (b->type == CMP_BODY_P10CR) {
        ctx->cert_req_id = -1;
        r = cmp_p10_verify_pop(b->value.p10cr, &pkey);
        ERR_clear_error();
        return r == CMP_R_OK ? r : srv_reject(ctx, r, NULL);
    }
    ctx->cert_req_id = 0;
    if (sk_CMP_CERTREQMSG_num(msgs) != 1)
        return srv_reject(ctx, CMP_R_BAD_REQUEST,
                          "exactly one CertReqMsg is accepted, got %d",
                          sk_CMP_CERTREQMSG_num(msgs));
    crm = sk_CMP_CERTREQMSG_value(msgs, 0);
    if (crm->certReq->certTemplate->publicKey == NULL)
        return srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE,
                          "certTemplate has no public key");
    if (crm->popo != NULL && crm->popo->type == 0)
        return ctx->mode->ra_verified(ctx);
    if ((r = cmp_spki_get1_checked(crm->certReq->certTemplate->publicKey,
                                   &pkey, &xpk)) == CMP_R_OK)
        r = cmp_crmf_verify_popo(crm, pkey);
    EVP_PKEY_free(pkey);
    X509_PUBKEY_free(xpk);
    ERR_clear_error();
    return r == CMP_R_OK ? r : srv_reject(ctx, r, NULL);
}

static int srv_fwd_is_certreq(int type)
{
    return type == CMP_BODY_IR || type == CMP_BODY_CR || type == CMP_BODY_KUR
        || type == CMP_BODY_P10CR;
}

/* generalInfo origPKIMessage: PKIMessages holding the device's request as
 * received. */
static int srv_fwd_add_orig(CMP_HDR *h, const unsigned char *der, size_t len)
{
    int total = ASN1_object_size(1, (int)len, V_ASN1_SEQUENCE);
    unsigned char *buf = NULL, *p;
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *v = NULL;
    CMP_ITAV *it = NULL;
    int ok = 0;

    if (total <= 0 || (buf = OPENSSL_malloc((size_t)total)) == NULL)
        goto end;
    p = buf;
    ASN1_put_object(&p, 1, (int)len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, der, len);
    if ((seq = ASN1_STRING_new()) == NULL
        || !ASN1_STRING_set(seq, buf, total)
        || (v = ASN1_TYPE_new()) == NULL)
        goto end;
    ASN1_TYPE_set(v, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    if ((it = CMP_ITAV_new()) == NULL
        || (it->infoType = OBJ_txt2obj(SRV_OID_ORIG_PKIMESSAGE, 1)) == NULL)
        goto end;
    it->infoValue = v;
    v = NULL;
    if (h->generalInfo == NULL && (h->generalInfo = sk_CMP_ITAV_new_null()) == NULL)
        goto end;
    if (!sk_CMP_ITAV_push(h->generalInfo, it))
        goto end;
    it = NULL;
    ok = 1;
 end:
    OPENSSL_free(buf);
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(v);
    CMP_ITAV_free(it);
    return ok;
}

/* Gives |msg| the RA's header identity, extraCerts and protection: the
 * RA's signature, or with |mac| the upstream MAC secret. */
/* The RA's message carries the RA's time: the upstream checks it against
 * its time_tolerance. */
static int srv_fwd_set_time(CMP_HDR *h, time_t now)
{
    ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_set(h->messageTime, now);

    if (t == NULL)
        return 0;
    h->messageTime = t;
    return 1;
}

static int srv_fwd_protect_as_ra(struct srv_ctx *ctx, CMP_MSG *msg,
                                 const STACK_OF(X509) *more, int mac)
{
    const struct srv_upstream *up = ctx->alias->up;
    CMP_HDR *h = msg->header;
    STACK_OF(X509) *old = msg->extraCerts;
    int ok;

    GENERAL_NAME_free(h->sender);
    ASN1_OCTET_STRING_free(h->senderKID);
    X509_ALGOR_free(h->protectionAlg);
    ASN1_BIT_STRING_free(msg->protection);
    h->protectionAlg = NULL;
    msg->protection = NULL;
    msg->extraCerts = NULL;
    h->sender = GENERAL_NAME_dup(ctx->alias->rsp_sender);
    h->senderKID = ASN1_OCTET_STRING_dup(up->ra_kid);
    ok = h->sender != NULL && h->senderKID != NULL
        && srv_fwd_set_time(h, ctx->now)
        && cmp_msg_set1_extracerts(msg, NULL, up->ra_chain,
                                   more != NULL ? more : NULL);
    sk_X509_pop_free(old, X509_free);
    if (!ok)
        return 0;
    return mac ? cmp_protect_mac_pbm(msg, up->mac, up->mac_len, "SHA256",
                                     "SHA256", SRV_FWD_MAC_ITER)
               : cmp_protect_sign(msg, srv_fwd_sign_fn, up->ra_signer);
}

/* The message sent upstream, DER in *der (OPENSSL_malloc'ed). */
static enum cmp_reason srv_fwd_build(struct srv_ctx *ctx, unsigned char **der,
                                     size_t *len)
{
    const struct srv_upstream *up = ctx->alias->up;
    STACK_OF(CMP_MSG) *inner = NULL;
    CMP_MSG *copy = NULL, *out = NULL;
    int type = ctx->req->body->type, ok = 0;

    /* a copy decoded from the bytes received: its certificates come from
     * the decode cache (CMP_MSG_dup would decode every public key again) */
    if (cmp_msg_decode(ctx->req_der, ctx->req_len, &ctx->srv->limits, &copy)
        != CMP_R_OK)
        goto end;
    if (up->form == SRV_UP_NESTED) {
        if ((inner = sk_CMP_MSG_new_null()) == NULL
            || !sk_CMP_MSG_push(inner, copy))
            goto end;
        copy = NULL;
        if ((out = cmp_nested_new(inner, 1, up->ra_cert, up->ra_chain,
                                  ctx->now)) == NULL)
            goto end;
        inner = NULL;
        ok = up->mac != NULL
            ? cmp_protect_mac_pbm(out, up->mac, up->mac_len, "SHA256",
                                  "SHA256", SRV_FWD_MAC_ITER)
            : cmp_protect_sign(out, srv_fwd_sign_fn, up->ra_signer);
    } else {
        out = copy;
        copy = NULL;
        if (srv_fwd_is_certreq(type)) {
            /* raVerified needs the RA's signature: under a MAC the
             * device's own POP stays */
            if (type != CMP_BODY_P10CR && up->mac == NULL) {
                CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(out->body->value.ir, 0);

                CMP_POPO_free(crm->popo);
                if ((crm->popo = CMP_POPO_new()) == NULL)
                    goto end;
                crm->popo->type = 0;
                if ((crm->popo->value.raVerified = ASN1_NULL_new()) == NULL)
                    goto end;
            }
            /* a MAC-protected original is not attached: no upstream can
             * verify the device's MAC (the RA did, then signed) */
            if (ctx->mac_rec == NULL
                && !srv_fwd_add_orig(out->header, ctx->req_der, ctx->req_len))
                goto end;
        }
        ok = srv_fwd_protect_as_ra(ctx, out, NULL, up->mac != NULL);
    }
    ok = ok && cmp_msg_encode(out, der, len);
 end:
    sk_CMP_MSG_pop_free(inner, CMP_MSG_free);
    CMP_MSG_free(copy);
    CMP_MSG_free(out);
    ERR_clear_error();
    return ok ? CMP_R_OK
              : srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "building the forwarded message");
}

static int srv_fwd_octets_eq(const ASN1_OCTET_STRING *a,
                             const ASN1_OCTET_STRING *b)
{
    return a != NULL && b != NULL && ASN1_STRING_length(a) == ASN1_STRING_length(b)
        && CRYPTO_memcmp(ASN1_STRING_get0_data(a), ASN1_STRING_get0_data(b),
                         (size_t)ASN1_STRING_length(a)) == 0;
}

/* The signer of an answer without it in extraCerts (the openssl cmp mock
 * server sends none): the anchor its senderKID, else its sender, names. */
static X509 *srv_fwd_anchor_signer(const struct srv_upstream *up,
                                   const CMP_MSG *m)
{
    const ASN1_OCTET_STRING *kid = m->header->senderKID;
    const X509_NAME *name = cmp_hdr_get0_sender_name(m->header);
    int i;

    for (i = 0; i < sk_X509_num(up->anchors); i++) {
        X509 *x = sk_X509_value(up->anchors, i);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);

        if (kid != NULL ? ski != NULL && ASN1_OCTET_STRING_cmp(ski, kid) == 0
                        : name != NULL
                          && X509_NAME_cmp(name, X509_get_subject_name(x)) == 0)
            return x;
    }
    return NULL;
}

/* Was the path of signer |sha| validated less than five minutes ago (and
 * before the first notAfter of its chain)? */
static int srv_fwd_seen(struct srv_upstream *up, const unsigned char *sha,
                        time_t now)
{
    int i, hit = 0;

    pthread_mutex_lock(&up->seen_lock);
    for (i = 0; i < SRV_UP_SEEN && !hit; i++)
        hit = up->seen[i].until > now
            && memcmp(up->seen[i].sha256, sha, 32) == 0;
    pthread_mutex_unlock(&up->seen_lock);
    return hit;
}

static void srv_fwd_remember(struct srv_upstream *up, const unsigned char *sha,
                             STACK_OF(X509) *chain, time_t now)
{
    time_t until = now + 300, t;
    int i, slot = 0;

    for (i = 0; i < sk_X509_num(chain); i++) {
        struct tm tm;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm)
            && (t = timegm(&tm)) < until)
            until = t;
        (void)cmp_cert_cache_keep(sk_X509_value(chain, i));
    }
    pthread_mutex_lock(&up->seen_lock);
    for (i = 1; i < SRV_UP_SEEN; i++)
        if (up->seen[i].until < up->seen[slot].until)
            slot = i;
    memcpy(up->seen[slot].sha256, sha, 32);
    up->seen[slot].until = until;
    pthread_mutex_unlock(&up->seen_lock);
}

/* The upstream signer's path validates to upstream_trust now; remembered. */
static enum cmp_reason srv_fwd_path(struct srv_ctx *ctx, X509 *signer,
                                    STACK_OF(X509) *untrusted,
                                    const unsigned char *sha)
{
    struct srv_upstream *up = ctx->alias->up;
    X509_STORE_CTX *sctx = NULL;
    enum cmp_reason r = CMP_R_OK;

    if ((sctx = X509_STORE_CTX_new()) == NULL
        || !X509_STORE_CTX_init(sctx, up->trust, signer, untrusted)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "verify context");
        goto end;
    }
    X509_STORE_CTX_set_time(sctx, 0, ctx->now);
    if (X509_verify_cert(sctx) <= 0) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE,
                     "the upstream's signer is not trusted: %s",
                     X509_verify_cert_error_string(
                         X509_STORE_CTX_get_error(sctx)));
        goto end;
    }
    srv_fwd_remember(up, sha, X509_STORE_CTX_get0_chain(sctx), ctx->now);
 end:
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return r;
}

/* The upstream's answer decodes, is protected by a signer that chains to
 * upstream_trust (or with the MAC secret) and answers this request (its
 * transactionID, |nonce| - the device request's senderNonce - as
 * recipNonce). */
static enum cmp_reason srv_fwd_check_answer(struct srv_ctx *ctx,
                                            const unsigned char *der,
                                            size_t len,
                                            const ASN1_OCTET_STRING *nonce,
                                            CMP_MSG **out)
{
    struct srv_upstream *up = ctx->alias->up;
    CMP_MSG *m = NULL;
    X509 *signer = NULL;
    unsigned char sha[32];
    unsigned int shalen = 0;
    enum cmp_reason r;

    *out = NULL;
    if ((r = cmp_msg_decode(der, len, &ctx->srv->limits, &m)) != CMP_R_OK) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "the upstream's answer does "
                     "not decode (%s)", cmp_reason_text(r));
        goto end;
    }
    if (m->protection == NULL || m->header->protectionAlg == NULL) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE,
                     "the upstream's answer is unprotected");
        goto end;
    }
    if (cmp_protect_is_mac(m)) {
        if (up->mac == NULL
            || cmp_protect_verify_mac(m, up->mac, up->mac_len, NULL) != CMP_R_OK) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE,
                         "the upstream's MAC does not verify");
            goto end;
        }
    } else {
        if ((r = cmp_protect_find_signer(m, &signer)) != CMP_R_OK
            && (signer = srv_fwd_anchor_signer(up, m)) != NULL)
            r = CMP_R_OK;
        if (r != CMP_R_OK
            || (r = cmp_protect_verify_sig(m, signer)) != CMP_R_OK) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "the upstream's %s (%s)",
                         signer == NULL ? "signer is not in its extraCerts"
                                        : "signature does not verify",
                         cmp_reason_text(r));
            goto end;
        }
        if (!X509_digest(signer, EVP_sha256(), sha, &shalen)) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
            goto end;
        }
        if (!srv_fwd_seen(up, sha, ctx->now)
            && (r = srv_fwd_path(ctx, signer, m->extraCerts, sha)) != CMP_R_OK)
            goto end;
    }
    if (!srv_fwd_octets_eq(m->header->transactionID,
                           ctx->req->header->transactionID)
        || !srv_fwd_octets_eq(m->header->recipNonce, nonce)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "the upstream's answer is "
                     "for another transactionID or nonce");
        goto end;
    }
    *out = m;
    m = NULL;
    r = CMP_R_OK;
 end:
    CMP_MSG_free(m);
    ERR_clear_error();
    return r;
}

/* The answer re-protected by the RA: its signature, its chain first, the
 * upstream's extraCerts after it (the CA chain of a new certificate);
 * body, caPubs, nonces and transactionID unchanged. */
static enum cmp_reason srv_fwd_reprotect(struct srv_ctx *ctx, CMP_MSG *m,
                                         unsigned char **der, size_t *len)
{
    STACK_OF(X509) *theirs = m->extraCerts;
    CMP_HDR *h = m->header;
    const CMP_HDR *rh = ctx->req->header;
    int ok;

    m->extraCerts = NULL;
    /* the device's latest message (a pollReq after "waiting") */
    if (h->recipNonce == NULL || rh->senderNonce == NULL
        || !ASN1_STRING_copy(h->recipNonce, rh->senderNonce)) {
        sk_X509_pop_free(theirs, X509_free);
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "re-protecting the answer");
    }
    GENERAL_NAME_free(h->recipient);
    h->recipient = rh->sender != NULL ? GENERAL_NAME_dup(rh->sender)
                                      : GENERAL_NAME_dup(ctx->alias->rsp_nobody);
    if (h->recipient != NULL && ctx->mac_secret != NULL
        && !ctx->alias->mac.response_sign) {
        /* device_mode = mac: MAC-protected with the device's secret (the
         * mode's hook), the upstream's extraCerts kept for the device */
        X509_ALGOR_free(h->protectionAlg);
        ASN1_BIT_STRING_free(m->protection);
        h->protectionAlg = NULL;
        m->protection = NULL;
        m->extraCerts = theirs;
        theirs = NULL;
        ok = ctx->mode->protect(ctx, m, der, len);
    } else {
        /* srv_fwd_protect_as_ra frees the extraCerts it finds: give it
         * none */
        ok = h->recipient != NULL && srv_fwd_protect_as_ra(ctx, m, theirs, 0)
            && cmp_msg_encode(m, der, len);
    }
    sk_X509_pop_free(theirs, X509_free);
    ERR_clear_error();
    return ok ? CMP_R_OK
              : srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "re-protecting the answer");
}

/* device_mode = mac: the enrollment became final upstream (pkiConf to
 * the relayed certConf, or an accepted answer granting implicitConfirm),
 * so the device's secret is used up, as on a mac alias. A failure here
 * does not take the answer from the device (the upstream issued). */
static void srv_fwd_mac_final(struct srv_ctx *ctx, int type,
                              const CMP_MSG *answer)
{
    int at = answer->body->type, final;
    const CMP_CERTREPMSG *rep;
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if (ctx->mac_rec == NULL)
        return;
    final = type == CMP_BODY_CERTCONF && at == CMP_BODY_PKICONF;
    if (final) {
        /* a certConf rejecting the certificate does not make it final */
        const STACK_OF(CMP_CERTSTATUS) *cs = ctx->req->body->value.certConf;
        int i;

        for (i = 0; i < sk_CMP_CERTSTATUS_num(cs); i++) {
            const CMP_PKISI *si = sk_CMP_CERTSTATUS_value(cs, i)->statusInfo;

            if (si != NULL && cmp_pkisi_get_status(si) == CMP_STATUS_REJECTION)
                final = 0;
        }
    }
    if (!final && srv_fwd_is_certreq(type)
        && (at == CMP_BODY_IP || at == CMP_BODY_CP)
        && cmp_hdr_has_implicit_confirm(answer->header)) {
        rep = answer->body->value.ip;
        final = sk_CMP_CERTRESP_num(rep->response) == 1
            && cmp_pkisi_get_status(sk_CMP_CERTRESP_value(rep->response, 0)
                                    ->status) <= CMP_STATUS_GRANTED_WITH_MODS;
    }
    if (!final)
        return;
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK) {
        log_msg(LOG_ERROR, "alias=%s device=\"%s\": the secret of reference "
                "%s is not marked used (store: %s)", ctx->alias->name,
                ctx->device_label, ctx->mac_rec->ref, store_rc_str(rc));
        return;
    }
    if (srv_mode_mac.finalised(ctx, tx, NULL) != CMP_R_OK
        || store_commit_clear(&tx) != STORE_OK) {
        store_rollback(tx);
        log_msg(LOG_ERROR, "alias=%s device=\"%s\": the secret of reference "
                "%s is not marked used (%s)", ctx->alias->name,
                ctx->device_label, ctx->mac_rec->ref, ctx->detail);
        ctx->reason = CMP_R_OK;
        ctx->detail[0] = '\0';
    }
}

/* The key of a request waiting for the upstream (upstream_unavailable =
 * wait): "upstream-pending", the alias and the transactionID. */
static size_t srv_fwd_pending_key(const struct srv_ctx *ctx, unsigned char *buf,
                                  size_t cap)
{
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    size_t an = strlen(ctx->alias->name), tl;
    static const char tag[] = "upstream-pending";

    if (tid == NULL)
        return 0;
    tl = (size_t)ASN1_STRING_length(tid);
    if (sizeof(tag) + an + 1 + tl > cap)
        return 0;
    memcpy(buf, tag, sizeof(tag));
    memcpy(buf + sizeof(tag), ctx->alias->name, an + 1);
    memcpy(buf + sizeof(tag) + an + 1, ASN1_STRING_get0_data(tid), tl);
    return sizeof(tag) + an + 1 + tl;
}

/* The upstream did not take a certificate request: kept (the message as
 * forwarded) and answered "waiting"; the device's pollReq sends it again. */
static enum cmp_reason srv_fwd_waiting(struct srv_ctx *ctx,
                                       const unsigned char *fwd, size_t len,
                                       const char *why, CMP_MSG **rsp)
{
    int type = ctx->req->body->type;
    unsigned char key[300];
    size_t kl = srv_fwd_pending_key(ctx, key, sizeof(key));
    char text[360];

    if (kl == 0
        || !srv_repeat_store(ctx, key, kl, fwd, len, 2, 0, "upstream.wait",
                             NULL))
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s (not kept for polling)",
                        why);
    snprintf(text, sizeof(text), "the CA is not reachable (%s): poll", why);
    if ((*rsp = srv_rsp_new(ctx, type == CMP_BODY_IR ? CMP_BODY_IP
                                 : type == CMP_BODY_KUR ? CMP_BODY_KUP
                                 : CMP_BODY_CP)) == NULL
        || !cmp_body_set_certrep(*rsp, ctx->cert_req_id,
                                 cmp_pkisi_new(CMP_STATUS_WAITING, -1, text),
                                 NULL, 0, NULL)) {
        CMP_MSG_free(*rsp);
        *rsp = NULL;
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "waiting response");
    }
    log_msg(LOG_WARN, "alias=%s device=\"%s\" upstream unavailable: answered "
            "waiting (%s)", ctx->alias->name, ctx->device_label, why);
    return CMP_R_OK;
}

/* Is |m| an error naming badTime (the upstream found the messageTime too
 * old)? */
static int srv_fwd_is_bad_time(const CMP_MSG *m)
{
    return m->body->type == CMP_BODY_ERROR && m->body->value.error != NULL
        && (cmp_pkisi_get_failinfo(m->body->value.error->pKIStatusInfo)
            & (1 << CMP_FAIL_BAD_TIME)) != 0;
}

/* The kept message |orig| renewed: the RA's messageTime of this moment and
 * its protection again, DER in *der (OPENSSL_malloc'ed). */
static int srv_fwd_renew(struct srv_ctx *ctx, CMP_MSG *orig,
                         unsigned char **der, size_t *len)
{
    const struct srv_upstream *up = ctx->alias->up;

    return srv_fwd_set_time(orig->header, ctx->now)
        && (up->mac != NULL
                ? cmp_protect_mac_pbm(orig, up->mac, up->mac_len, "SHA256",
                                      "SHA256", SRV_FWD_MAC_ITER)
                : cmp_protect_sign(orig, srv_fwd_sign_fn, up->ra_signer))
        && cmp_msg_encode(orig, der, len);
}

/* A pollReq for a request kept by srv_fwd_waiting: sent again, byte for
 * byte (an upstream that took it already answers with its stored reply);
 * refused as too old (the upstream was away longer than its
 * time_tolerance), sent once more renewed (srv_fwd_renew). The upstream's
 * answer goes to the device re-protected for the pollReq, or pollRep
 * again while the upstream still does not answer. */
static enum cmp_reason srv_fwd_poll(struct srv_ctx *ctx,
                                    const unsigned char *fwd, size_t len,
                                    CMP_MSG **rsp)
{
    struct srv_upstream *up = ctx->alias->up;
    const STACK_OF(CMP_POLLREQ) *pr = ctx->req->body->value.pollReq;
    const unsigned char *send = fwd;
    unsigned char *ans = NULL, *again = NULL;
    size_t ans_len = 0, send_len = len, again_len = 0;
    CMP_MSG *orig = NULL, *answer = NULL;
    long http = 0, crid = 0;
    enum upclient_rc urc;
    enum cmp_reason r;
    char uerr[256], details[160];

    if (sk_CMP_POLLREQ_num(pr) > 0)
        crid = ASN1_INTEGER_get(sk_CMP_POLLREQ_value(pr, 0)->certReqId);
    if ((r = cmp_msg_decode(fwd, len, &ctx->srv->limits, &orig)) != CMP_R_OK) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "the kept request");
        goto end;
    }
    for (;;) {
        uerr[0] = '\0';
        urc = upclient_post(up->uc, send, send_len, &ans, &ans_len, &http,
                            uerr, sizeof(uerr));
        if (urc != UPCLIENT_OK) {
            if ((*rsp = srv_rsp_new(ctx, CMP_BODY_POLLREP)) == NULL
                || !cmp_body_set_pollrep(*rsp, crid, up->poll_after)) {
                CMP_MSG_free(*rsp);
                *rsp = NULL;
                r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "pollRep");
                goto end;
            }
            r = CMP_R_OK;
            goto end;
        }
        if ((r = srv_fwd_check_answer(ctx, ans, ans_len,
                                      orig->header->senderNonce, &answer))
            != CMP_R_OK)
            goto end;
        if (again != NULL || !srv_fwd_is_bad_time(answer))
            break;
        log_msg(LOG_WARN, "alias=%s device=\"%s\" the upstream refused the "
                "kept request as too old (badTime): sent again renewed",
                ctx->alias->name, ctx->device_label);
        CMP_MSG_free(answer);
        answer = NULL;
        OPENSSL_free(ans);
        ans = NULL;
        if (!srv_fwd_renew(ctx, orig, &again, &again_len)) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "renewing the kept "
                         "request");
            goto end;
        }
        send = again;
        send_len = again_len;
    }
    /* the kept certificate request's answer may grant implicitConfirm */
    srv_fwd_mac_final(ctx, orig->body->type, answer);
    if ((r = srv_fwd_reprotect(ctx, answer, &ctx->out_der, &ctx->out_len))
        != CMP_R_OK)
        goto end;
    ctx->out_http = http >= 200 && http < 600 ? (int)http : 200;
    snprintf(details, sizeof(details),
             "{\"type\":\"pollReq\",\"answer\":\"%s\",\"resent\":true,"
             "\"renewed\":%s,\"http\":%ld}",
             cmp_body_type_name(answer->body->type),
             again != NULL ? "true" : "false", http);
    (void)srv_repeat_store(ctx, ctx->req_der, ctx->req_len, ctx->out_der,
                           ctx->out_len, 1, ctx->out_http, "upstream.relay",
                           details);
    r = CMP_R_OK;
 end:
    OPENSSL_free(ans);
    OPENSSL_free(again);
    CMP_MSG_free(orig);
    CMP_MSG_free(answer);
    return r;
}

enum cmp_reason srv_forward(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    struct srv_upstream *up = ctx->alias->up;
    const struct srv_mode *m = ctx->mode;
    unsigned char *fwd = NULL, *ans = NULL, *stored = NULL;
    size_t fwd_len = 0, ans_len = 0, stored_len = 0;
    CMP_MSG *answer = NULL;
    long http = 0;
    enum upclient_rc urc;
    enum cmp_reason r;
    char uerr[256], details[200];
    int type = ctx->req->body->type;

    *rsp = NULL;
    if (ctx->req_der == NULL || ctx->depth > 0)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "no request bytes");
    /* relayed before (the device repeats after a lost answer, or the RA
     * restarted): the recorded answer, not a second forward */
    if (srv_repeat_lookup(ctx, ctx->req_der, ctx->req_len, &stored,
                          &stored_len, &ctx->out_http)) {
        if ((ctx->out_der = OPENSSL_memdup(stored, stored_len)) == NULL) {
            free(stored);
            return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "out of memory");
        }
        ctx->out_len = stored_len;
        free(stored);
        srv_label_from_name(ctx, cmp_hdr_get0_sender_name(ctx->req->header));
        return CMP_R_OK;
    }
    /* the RA's own policy first: refused here, never sent upstream */
    if ((r = m->verify(ctx)) != CMP_R_OK
        || (r = m->authenticate(ctx, ctx->op)) != CMP_R_OK
        || (r = m->authorise(ctx, ctx->op)) != CMP_R_OK)
        goto end;
    if (ctx->op == SRV_OP_NONE) {
        r = srv_fail(ctx, CMP_R_UNSUPPORTED_BODY, "%s",
                     cmp_body_type_name(type));
        goto end;
    }
    if (ctx->op == SRV_OP_POLL && up->wait) {
        unsigned char key[300];
        size_t kl = srv_fwd_pending_key(ctx, key, sizeof(key));

        if (kl > 0
            && srv_repeat_lookup(ctx, key, kl, &stored, &stored_len, NULL)) {
            r = srv_fwd_poll(ctx, stored, stored_len, rsp);
            goto end;
        }
    }
    if (srv_fwd_is_certreq(type) && (r = srv_fwd_pop(ctx)) != CMP_R_OK)
        goto end;
    srv_read_end(ctx);
    if ((r = srv_fwd_build(ctx, &fwd, &fwd_len)) != CMP_R_OK)
        goto end;
    uerr[0] = '\0';
    urc = upclient_post(up->uc, fwd, fwd_len, &ans, &ans_len, &http, uerr,
                        sizeof(uerr));
    if (urc != UPCLIENT_OK) {
        char why[300];

        snprintf(why, sizeof(why), "upstream %s: %s%s%s", upclient_rc_name(urc),
                 up->url, uerr[0] ? ": " : "", uerr);
        r = up->wait && srv_fwd_is_certreq(type)
            ? srv_fwd_waiting(ctx, fwd, fwd_len, why, rsp)
            : srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s", why);
        goto end;
    }
    if ((r = srv_fwd_check_answer(ctx, ans, ans_len,
                                  ctx->req->header->senderNonce, &answer))
        != CMP_R_OK)
        goto end;
    srv_fwd_mac_final(ctx, type, answer);
    /* a MAC device cannot check the upstream's signature: always
     * re-protected for it */
    if (up->rsp_reprotect || ctx->mac_secret != NULL) {
        if ((r = srv_fwd_reprotect(ctx, answer, &ctx->out_der, &ctx->out_len))
            != CMP_R_OK)
            goto end;
    } else {
        ctx->out_der = ans;       /* unchanged */
        ctx->out_len = ans_len;
        ans = NULL;
    }
    ctx->out_http = http >= 200 && http < 600 ? (int)http : 200;
    snprintf(details, sizeof(details),
             "{\"type\":\"%s\",\"answer\":\"%s\",\"form\":\"%s\","
             "\"response\":\"%s\",\"http\":%ld}", cmp_body_type_name(type),
             cmp_body_type_name(answer->body->type),
             up->form == SRV_UP_NESTED ? "nested" : "reprotect",
             up->rsp_reprotect ? "reprotect" : "relay", http);
    /* recorded with its answer, audited; a store failure does not take
     * the answer from the device (the upstream did the work) */
    (void)srv_repeat_store(ctx, ctx->req_der, ctx->req_len, ctx->out_der,
                           ctx->out_len, 1, ctx->out_http, "upstream.relay",
                           details);
    r = CMP_R_OK;
 end:
    free(stored);
    OPENSSL_free(fwd);
    OPENSSL_free(ans);
    CMP_MSG_free(answer);
    return r;
}
