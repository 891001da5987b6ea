/*
 * Response protection: every answer of an alias, errors and rejections
 * included, is signed by the alias's response signer and carries its
 * extraCerts (signer, its chain to the root, then the CA chain of issued
 * certificates), all encoded once at start-up - unless the alias's mode
 * protects its answers itself (mac mode: with the device's secret).
 */
#include "server/srv_int.h"

#include "util/log.h"

#include <openssl/crypto.h>

static int srv_sign_buf_fn(void *arg, const unsigned char *tbs, size_t tbslen,
                           unsigned char *sig, size_t *siglen)
{
    return ca_signer_sign_buf(arg, tbs, tbslen, sig, siglen);
}

int srv_protect(struct srv_ctx *ctx, CMP_MSG *msg, unsigned char **der,
                size_t *len)
{
    if (ctx->mode != NULL && ctx->mode->protect != NULL)
        return ctx->mode->protect(ctx, msg, der, len);
    return srv_protect_signed(ctx, msg, der, len);
}

int srv_protect_signed(struct srv_ctx *ctx, CMP_MSG *msg, unsigned char **der,
                       size_t *len)
{
    const struct srv_alias *a = ctx->alias;
    const CMP_HDR *rh = ctx->req != NULL ? ctx->req->header : NULL;
    CMP_HDR *h = msg->header;
    GENERAL_NAME *sender = h->sender, *recipient = h->recipient;
    const unsigned char *alg = NULL;
    size_t alg_len = 0;
    int ok;

    *der = NULL;
    *len = 0;
    /* The names are lent for the encoding and the placeholders put back
     * before anything else sees the message: the sender is the alias's
     * (made once), the recipient the request's sender (NULL-DN if none). */
    h->sender = a->rsp_sender;
    h->recipient = rh != NULL && rh->sender != NULL ? rh->sender
                                                    : a->rsp_nobody;
    ok = ca_signer_get0_sigalg_der(a->rsp_signer, &alg, &alg_len)
        && cmp_protect_sign_encode(msg, alg, alg_len, srv_sign_buf_fn,
                                   (void *)a->rsp_signer,
                                   ca_signer_max_sig_len(a->rsp_signer),
                                   a->rsp_extra, a->rsp_extra_len, der, len);
    h->sender = sender;
    h->recipient = recipient;
    if (!ok) {
        OPENSSL_free(*der);
        *der = NULL;
        *len = 0;
        log_ossl(LOG_ERROR, "cannot build response");
    }
    return ok;
}
