/*
 * Response protection: every answer of an alias, errors and rejections
 * included, is signed by the alias's response signer and carries its
 * extraCerts (signer, its chain to the root, then the CA chain of issued
 * certificates), all encoded once at start-up - unless the alias's mode
 * protects its answers itself (mac mode: with the device's secret).
 */
#include "server/srv_int.h"

#include "util/der_splice.h"
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

/* srv_protect_signed() with the signature made by |fn| (|arg|). */
static int srv_protect_signed_by(struct srv_ctx *ctx, CMP_MSG *msg,
                                 cmp_sign_buf_fn fn, void *arg,
                                 unsigned char **der, size_t *len)
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
        && cmp_protect_sign_encode(msg, alg, alg_len, fn, arg,
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

int srv_protect_signed(struct srv_ctx *ctx, CMP_MSG *msg, unsigned char **der,
                       size_t *len)
{
    return srv_protect_signed_by(ctx, msg, srv_sign_buf_fn,
                                 (void *)ctx->alias->rsp_signer, der, len);
}

/* The certificate signed with the response that carries it. */
struct srv_fold {
    const struct srv_alias *a;
    const struct issuer_result *res;
    unsigned char *cert;
    size_t cert_len;
};

static int srv_fold_sign_fn(void *arg, const unsigned char *tbs,
                            size_t tbslen, unsigned char *sig, size_t *siglen)
{
    struct srv_fold *f = arg;
    const struct issuer_result *res = f->res;
    size_t off;

    OPENSSL_free(f->cert);
    f->cert = NULL;
    return der_find_once(tbs, tbslen, res->cert.der, res->cert.der_len, &off)
        && ca_signer_sign_cert_and_msg(res->defer.signer,
                                       res->cert.der + res->defer.tbs_off,
                                       res->defer.tbs_len, f->a->rsp_signer,
                                       tbs, tbslen, off, res->cert.der_len,
                                       &f->cert, &f->cert_len, sig, siglen);
}

enum cmp_reason srv_protect_issued(struct srv_ctx *ctx, CMP_MSG *rsp,
                                   struct issuer_result *res)
{
    struct srv_fold f = { ctx->alias, res, NULL, 0 };
    unsigned char *der = NULL, *out = NULL;
    size_t len = 0, out_len = 0, off;
    int ok;

    ok = srv_protect_signed_by(ctx, rsp, srv_fold_sign_fn, &f, &der, &len)
        && f.cert != NULL
        && der_find_once(der, len, res->cert.der, res->cert.der_len, &off)
        && der_splice(der, len, off, res->cert.der_len, f.cert, f.cert_len,
                      &out, &out_len);
    OPENSSL_free(der);
    /* the record takes the signed certificate (and f.cert with it) */
    if (ok) {
        ok = ca_issue_der_finish(&res->cert, &res->defer, f.cert, f.cert_len);
        f.cert = NULL;
    }
    OPENSSL_free(f.cert);
    if (!ok) {
        OPENSSL_free(out);
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "signing the certificate "
                        "with its response");
    }
    memset(&res->defer, 0, sizeof(res->defer));
    OPENSSL_free(ctx->out_der);
    ctx->out_der = out;
    ctx->out_len = out_len;
    return CMP_R_OK;
}
