/*
 * Nested messages (RFC 9810 5.1.3.4, RFC 9483 5.2.2): an RA forwards
 * requests inside a wrapper it protects. A single forwarded request (the
 * wrapper repeats its transactionID and senderNonce) is answered with the
 * plain inner response; a batch (a wrapper of its own around several
 * requests with distinct transactionIDs and nonces) with a nested message
 * of the inner responses in the same order. The wrapper approves nothing:
 * every inner message is verified and handled as if it came alone, with
 * the RA as the one who vouches for it.
 */
#include "server/srv_int.h"

#include <openssl/crypto.h>
#include <string.h>

/* Do |a| and |b| hold the same octets (both present)? */
static int srv_octets_eq(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
    return a != NULL && b != NULL && ASN1_STRING_length(a) == ASN1_STRING_length(b)
        && memcmp(ASN1_STRING_get0_data(a), ASN1_STRING_get0_data(b),
                  (size_t)ASN1_STRING_length(a)) == 0;
}

/* Checks that the inner messages of a batch have distinct transactionIDs
 * and senderNonces. */
static enum cmp_reason srv_nested_distinct(struct srv_ctx *ctx,
                                           const STACK_OF(CMP_MSG) *msgs)
{
    int i, j, n = sk_CMP_MSG_num(msgs);

    for (i = 0; i < n; i++) {
        const CMP_HDR *hi = sk_CMP_MSG_value(msgs, i)->header;

        for (j = 0; j < i; j++) {
            const CMP_HDR *hj = sk_CMP_MSG_value(msgs, j)->header;

            if (srv_octets_eq(hi->transactionID, hj->transactionID))
                return srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE,
                                "inner messages %d and %d share a "
                                "transactionID", j + 1, i + 1);
            if (srv_octets_eq(hi->senderNonce, hj->senderNonce))
                return srv_fail(ctx, CMP_R_BAD_SENDER_NONCE,
                                "inner messages %d and %d share a senderNonce",
                                j + 1, i + 1);
        }
    }
    return CMP_R_OK;
}

enum cmp_reason srv_nested(struct srv_ctx *ctx, srv_inner_fn inner,
                           CMP_MSG **rsp)
{
    const STACK_OF(CMP_MSG) *msgs = ctx->req->body->value.nested;
    const CMP_HDR *h = ctx->req->header;
    const struct srv_mode *m = ctx->mode;
    STACK_OF(CMP_MSG) *outs = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    enum cmp_reason r;
    int i, n = sk_CMP_MSG_num(msgs);

    if (ctx->depth > 0)
        return srv_fail(ctx, CMP_R_BAD_REQUEST,
                        "nested messages may not nest further");
    if ((r = m->verify(ctx)) != CMP_R_OK
        || (r = m->authenticate(ctx, SRV_OP_NESTED)) != CMP_R_OK
        || (r = m->authorise(ctx, SRV_OP_NESTED)) != CMP_R_OK)
        return r;
    for (i = 0; i < n; i++)
        if (sk_CMP_MSG_value(msgs, i)->body->type == CMP_BODY_NESTED)
            return srv_fail(ctx, CMP_R_BAD_REQUEST,
                            "nested messages may not nest further");
    if (n > ctx->srv->max_nested)
        return srv_fail(ctx, CMP_R_BAD_REQUEST,
                        "%d inner messages; at most %d are accepted", n,
                        ctx->srv->max_nested);
    /* the wrapper's lookups are done: its snapshot need not stay open
     * while the inner messages write */
    srv_read_end(ctx);
    if (n == 1
        && srv_octets_eq(h->transactionID,
                         sk_CMP_MSG_value(msgs, 0)->header->transactionID)
        && srv_octets_eq(h->senderNonce,
                         sk_CMP_MSG_value(msgs, 0)->header->senderNonce)) {
        /* one forwarded request: the plain inner response */
        if (!inner(ctx, sk_CMP_MSG_value(msgs, 0), &ctx->out_der,
                   &ctx->out_len))
            return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "inner response");
        return CMP_R_OK;
    }
    if ((r = srv_nested_distinct(ctx, msgs)) != CMP_R_OK)
        return r;
    if ((outs = sk_CMP_MSG_new_reserve(NULL, n)) == NULL)
        goto oom;
    for (i = 0; i < n; i++) {
        CMP_MSG *one;

        if (!inner(ctx, sk_CMP_MSG_value(msgs, i), &der, &len))
            goto oom;
        p = der;
        one = d2i_CMP_MSG(NULL, &p, (long)len);
        OPENSSL_free(der);
        der = NULL;
        if (one == NULL || !sk_CMP_MSG_push(outs, one)) {
            CMP_MSG_free(one);
            goto oom;
        }
    }
    if ((*rsp = srv_rsp_new(ctx, CMP_BODY_NESTED)) == NULL)
        goto oom;
    (*rsp)->body->value.nested = outs;
    return CMP_R_OK;
 oom:
    sk_CMP_MSG_pop_free(outs, CMP_MSG_free);
    return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "nested response");
}
