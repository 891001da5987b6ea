/*
 * The "ra" mode: requests arrive from registration authorities that act
 * for devices. A request signed by an RA (ir, cr, p10cr, kur, rr; its
 * certConf; genm) is accepted when the RA is registered (`cmpca ra add`),
 * enabled, allowed this alias, profile and operation, and its certificate
 * chains to a CA trusted for RAs on the alias, is valid and not revoked.
 * Messages inside an RA's nested wrapper that the RA did not sign itself
 * (a device's own vendor-signed ir, forwarded unchanged) are authenticated
 * by the alias's inner mode (3gpp), exactly as if they came directly.
 */
#include "server/srv_int.h"

#include "cmp/cmp_crmf.h"
#include "util/log.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

/* Is the signer a registered RA? Sets ctx->rq.ra (owned) when it is. */
static enum cmp_reason mode_ra_lookup(struct srv_ctx *ctx, int *found)
{
    STORE_TX *tx = NULL;
    enum store_rc rc;

    *found = 0;
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_ra_get_by_sha256(tx, ctx->rq.cert_sha256, &ctx->rq.ra);
    if (rc == STORE_NOTFOUND)
        return CMP_R_OK;
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "RA lookup");
    *found = 1;
    return CMP_R_OK;
}

/* Looks the RA certificate up among those whose path validated recently:
 * returns 1 with *ca_id set when the result still holds at ctx->now. */
static int mode_ra_seen(struct srv_ctx *ctx, int64_t *ca_id)
{
    struct srv_alias *a = ctx->alias;
    int i, hit = 0;

    pthread_mutex_lock(&a->ra_lock);
    for (i = 0; i < SRV_RA_SEEN && !hit; i++) {
        struct srv_ra_seen *e = &a->ra_seen[i];

        if (e->until > ctx->now
            && memcmp(e->sha256, ctx->rq.cert_sha256, 32) == 0) {
            *ca_id = e->ca_id;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&a->ra_lock);
    return hit;
}

/* Remembers a validated RA certificate (replacing the entry that expires
 * first). */
static void mode_ra_remember(struct srv_ctx *ctx, time_t until, int64_t ca_id)
{
    struct srv_alias *a = ctx->alias;
    struct srv_ra_seen *slot = &a->ra_seen[0];
    int i;

    pthread_mutex_lock(&a->ra_lock);
    for (i = 1; i < SRV_RA_SEEN; i++)
        if (a->ra_seen[i].until < slot->until)
            slot = &a->ra_seen[i];
    memcpy(slot->sha256, ctx->rq.cert_sha256, 32);
    slot->until = until;
    slot->ca_id = ca_id;
    pthread_mutex_unlock(&a->ra_lock);
}

/* Validates the RA certificate's path, now, to a CA trusted for RAs on
 * the alias; sets *ca_id to the issuing CA's store id (0: not ours) and
 * *until to when the result stops holding. */
static enum cmp_reason mode_ra_path(struct srv_ctx *ctx, int64_t *ca_id,
                                    time_t *until)
{
    struct srv_alias *a = ctx->alias;
    X509_STORE_CTX *sctx = NULL;
    STACK_OF(X509) *chain;
    X509 *issuer;
    enum cmp_reason r = CMP_R_SIGNER_NOT_TRUSTED;
    time_t t;
    int i;

    *ca_id = 0;
    *until = ctx->now + 300;
    if ((sctx = X509_STORE_CTX_new()) == NULL
        || !X509_STORE_CTX_init(sctx, a->ra_store, ctx->rq.cert,
                                ctx->req->extraCerts)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "verify context");
        goto end;
    }
    X509_STORE_CTX_set_time(sctx, 0, ctx->now);
    if (X509_verify_cert(sctx) <= 0) {
        srv_fail(ctx, r, "RA %s: certificate: %s", ctx->rq.ra->name,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        goto end;
    }
    chain = X509_STORE_CTX_get0_chain(sctx);
    for (i = 0; i < sk_X509_num(chain); i++) {
        const ASN1_TIME *na = X509_get0_notAfter(sk_X509_value(chain, i));
        struct tm tm;

        if (ASN1_TIME_to_tm(na, &tm) && (t = timegm(&tm)) < *until)
            *until = t;
    }
    for (i = 0; i < sk_X509_num(chain); i++)   /* validated: keep them */
        (void)cmp_cert_cache_keep(sk_X509_value(chain, i));
    issuer = sk_X509_value(chain, sk_X509_num(chain) > 1 ? 1 : 0);
    for (i = 0; i < sk_X509_num(a->ra_trust); i++)
        if (X509_cmp(sk_X509_value(a->ra_trust, i), issuer) == 0)
            *ca_id = a->ra_trust_ids[i];
    r = CMP_R_OK;
 end:
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return r;
}

/* The RA certificate chains, now, to a CA trusted for RAs on the alias
 * (validated once and remembered until the chain's first notAfter, five
 * minutes at most), and is not revoked when that CA is one of ours (asked
 * of the store every time). */
static enum cmp_reason mode_ra_trusted(struct srv_ctx *ctx)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(ctx->rq.cert);
    struct store_cert *rec = NULL;
    STORE_TX *tx = NULL;
    int64_t ca_id = 0;
    time_t until;
    enum cmp_reason r;
    enum store_rc rc;

    if (!mode_ra_seen(ctx, &ca_id)) {
        if ((r = mode_ra_path(ctx, &ca_id, &until)) != CMP_R_OK)
            return r;
        mode_ra_remember(ctx, until, ca_id);
    }
    if (ca_id == 0)
        return CMP_R_OK;
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = ASN1_STRING_type(sn) == V_ASN1_INTEGER
        ? store_cert_get_by_serial(tx, ca_id, ASN1_STRING_get0_data(sn),
                                   (size_t)ASN1_STRING_length(sn), &rec)
        : STORE_NOTFOUND;
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return srv_store_reason(ctx, rc, "RA certificate lookup");
    r = rec != NULL && rec->status == STORE_CERT_REVOKED
        ? srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                   "RA %s: certificate is revoked", ctx->rq.ra->name)
        : CMP_R_OK;
    store_cert_free(rec);
    return r;
}

/* The enum store_ra_op bit of |op|, 0 for operations every RA may use. */
static unsigned mode_ra_op_bit(enum srv_op op)
{
    switch (op) {
    case SRV_OP_IR: return STORE_RA_OP_IR;
    case SRV_OP_CR: return STORE_RA_OP_CR;
    case SRV_OP_P10CR: return STORE_RA_OP_P10CR;
    case SRV_OP_KUR: return STORE_RA_OP_KUR;
    case SRV_OP_RR: return STORE_RA_OP_RR;
    default: return 0;
    }
}

/* kur for a device: the oldCertID control names the certificate renewed
 * (RFC 9483 5.2.3: the RA signs, so the control is required). */
static enum cmp_reason mode_ra_kur_target(struct srv_ctx *ctx)
{
    const STACK_OF(CMP_CERTREQMSG) *msgs = ctx->req->body->value.kur;
    OSSL_CRMF_CERTID *id;
    enum cmp_reason r;
    int malformed;

    if (sk_CMP_CERTREQMSG_num(msgs) != 1)
        return srv_reject(ctx, CMP_R_BAD_REQUEST,
                          "exactly one CertReqMsg is accepted, got %d",
                          sk_CMP_CERTREQMSG_num(msgs));
    id = cmp_crmf_get1_old_cert_id(sk_CMP_CERTREQMSG_value(msgs, 0),
                                   &malformed);
    if (id == NULL)
        return srv_reject(ctx, malformed ? CMP_R_BAD_REQUEST : CMP_R_BAD_CERT_ID,
                          "a key update by an RA needs the oldCertID control");
    r = srv_auth_load_cert(ctx, OSSL_CRMF_CERTID_get0_issuer(id),
                           OSSL_CRMF_CERTID_get0_serialNumber(id));
    OSSL_CRMF_CERTID_free(id);
    if (r != CMP_R_OK)
        return r;
    if (ctx->old_cert->status == STORE_CERT_REVOKED)
        return srv_reject(ctx, CMP_R_CERT_REVOKED,
                          "the certificate to renew is revoked");
    if (ctx->old_cert->not_after < (int64_t)ctx->now)
        return srv_reject(ctx, CMP_R_BAD_CERT_ID,
                          "the certificate to renew has expired");
    return CMP_R_OK;
}

/* Verifies one original PKIMessage (DER at |p|, |len| bytes): it decodes
 * within the server's limits, is a certificate request, and its signature
 * verifies with the certificate it names. */
static enum cmp_reason mode_ra_orig_one(struct srv_ctx *ctx,
                                        const unsigned char *p, size_t len)
{
    CMP_MSG *orig = NULL;
    X509 *signer = NULL;
    enum cmp_reason r;
    int t;

    if ((r = cmp_msg_decode(p, len, &ctx->srv->limits, &orig)) != CMP_R_OK)
        goto end;
    t = orig->body->type;
    if (t != CMP_BODY_IR && t != CMP_BODY_CR && t != CMP_BODY_KUR
        && t != CMP_BODY_P10CR) {
        r = CMP_R_BAD_REQUEST;
        goto end;
    }
    if (orig->protection == NULL || cmp_protect_is_mac(orig)) {
        r = CMP_R_UNPROTECTED;
        goto end;
    }
    if ((r = cmp_protect_find_signer(orig, &signer)) == CMP_R_OK)
        r = cmp_protect_verify_sig(orig, signer);
 end:
    CMP_MSG_free(orig);
    ERR_clear_error();
    return r;
}

/* RFC 9483 5.2.3.2: an RA that re-protected a request may attach the
 * original message(s) as origPKIMessage (id-it 15); when present they must
 * verify (badMessageCheck otherwise). */
static enum cmp_reason mode_ra_orig(struct srv_ctx *ctx)
{
    const STACK_OF(CMP_ITAV) *gi = ctx->req->header->generalInfo;
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.4.15", 1);
    const unsigned char *p, *q, *end;
    enum cmp_reason r = CMP_R_OK;
    long olen;
    int i, tag, xclass, n = 0;

    if (oid == NULL)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "OID");
    for (i = 0; i < sk_CMP_ITAV_num(gi) && r == CMP_R_OK; i++) {
        const CMP_ITAV *it = sk_CMP_ITAV_value(gi, i);

        if (OBJ_cmp(it->infoType, oid) != 0)
            continue;
        if (it->infoValue == NULL || it->infoValue->type != V_ASN1_SEQUENCE) {
            r = srv_fail(ctx, CMP_R_BAD_SIGNATURE, "origPKIMessage malformed");
            break;
        }
        /* PKIMessages ::= SEQUENCE SIZE (1..MAX) OF PKIMessage */
        p = ASN1_STRING_get0_data(it->infoValue->value.sequence);
        end = p + ASN1_STRING_length(it->infoValue->value.sequence);
        if (ASN1_get_object(&p, &olen, &tag, &xclass, end - p) != V_ASN1_CONSTRUCTED
            || tag != V_ASN1_SEQUENCE || p + olen != end || olen == 0) {
            r = srv_fail(ctx, CMP_R_BAD_SIGNATURE, "origPKIMessage malformed");
            break;
        }
        while (p < end && r == CMP_R_OK) {
            q = p;
            if (++n > ctx->srv->max_nested
                || ASN1_get_object(&q, &olen, &tag, &xclass, end - q)
                   != V_ASN1_CONSTRUCTED
                || olen > end - q) {
                r = srv_fail(ctx, CMP_R_BAD_SIGNATURE,
                             "origPKIMessage malformed or too long");
                break;
            }
            if (mode_ra_orig_one(ctx, p, (size_t)(q + olen - p)) != CMP_R_OK)
                r = srv_fail(ctx, CMP_R_BAD_SIGNATURE,
                             "origPKIMessage %d does not verify", n);
            p = q + olen;
        }
    }
    ASN1_OBJECT_free(oid);
    ERR_clear_error();
    return r;
}

static enum cmp_reason mode_ra_authenticate(struct srv_ctx *ctx, enum srv_op op)
{
    enum cmp_reason r;
    int found;

    if ((r = mode_ra_lookup(ctx, &found)) != CMP_R_OK)
        return r;
    /* certConf and error: the transaction names its requester (the RA is
     * looked up only to name it in the log and the audit trail) */
    /* pollReq: the request is issued at a poll, so the RA that polls is
     * checked as for a new request (registered, trusted, not revoked,
     * enabled); a device's own pollReq inside an RA's wrapper as a
     * certConf */
    if (op == SRV_OP_POLL && ctx->via == NULL) {
        if (!found)
            return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                            "the signer is not a registered RA");
        ctx->rq.kind = SRV_RQ_RA;
        if ((r = mode_ra_trusted(ctx)) != CMP_R_OK)
            return r;
        if (ctx->rq.ra->disabled)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "RA %s is disabled",
                            ctx->rq.ra->name);
        return CMP_R_OK;
    }
    if (op == SRV_OP_CERTCONF || op == SRV_OP_ERROR || op == SRV_OP_POLL) {
        if (found)
            ctx->rq.kind = SRV_RQ_RA;
        return CMP_R_OK;
    }
    if (!found) {
        /* a device's own message forwarded inside an RA's wrapper */
        if (ctx->via != NULL && ctx->alias->inner != NULL)
            return ctx->alias->inner->authenticate(ctx, op);
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "the signer is not a registered RA");
    }
    ctx->rq.kind = SRV_RQ_RA;
    if ((r = mode_ra_trusted(ctx)) != CMP_R_OK)
        return r;
    if (ctx->rq.ra->disabled)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "RA %s is disabled",
                        ctx->rq.ra->name);
    if ((op == SRV_OP_IR || op == SRV_OP_CR || op == SRV_OP_KUR
         || op == SRV_OP_P10CR) && (r = mode_ra_orig(ctx)) != CMP_R_OK)
        return r;
    if (op == SRV_OP_KUR)
        return mode_ra_kur_target(ctx);
    return CMP_R_OK;
}

static enum cmp_reason mode_ra_authorise(struct srv_ctx *ctx, enum srv_op op)
{
    const struct store_ra *ra = ctx->rq.ra;
    unsigned bit = mode_ra_op_bit(op);

    if (op == SRV_OP_CERTCONF || op == SRV_OP_ERROR || op == SRV_OP_POLL)
        return CMP_R_OK;
    if (ctx->rq.kind != SRV_RQ_RA)
        return ctx->alias->inner != NULL
            ? ctx->alias->inner->authorise(ctx, op)
            : srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                       "the signer is not a registered RA");
    switch (store_ra_check(ra, ctx->alias->name,
                           bit != 0 ? srv_profile_name(ctx) : NULL,
                           bit != 0 ? bit : STORE_RA_OP_IR)) {
    case STORE_RA_ALLOWED:
        break;
    case STORE_RA_DISABLED:
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "RA %s is disabled",
                        ra->name);
    case STORE_RA_NO_ALIAS:
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "RA %s may not act for alias %s", ra->name,
                        ctx->alias->name);
    case STORE_RA_NO_PROFILE:
        if (bit == 0)
            break;      /* genm, nested: any RA of the alias */
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "RA %s may not request profile %s", ra->name,
                        srv_profile_name(ctx));
    case STORE_RA_NO_OP:
        if (bit == 0)
            break;
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "RA %s may not request %s",
                        ra->name, store_ra_op_name(bit));
    }
    if (op == SRV_OP_RR)
        return srv_auth_load_cert(ctx, ctx->rr_issuer, ctx->rr_serial);
    return CMP_R_OK;
}

static enum cmp_reason mode_ra_ra_verified(struct srv_ctx *ctx)
{
    const struct store_ra *ra = ctx->rq.ra;
    EXTENDED_KEY_USAGE *eku = NULL;
    int i, cmc_ra = 0;

    if (ctx->rq.kind != SRV_RQ_RA)
        return ctx->alias->inner != NULL ? ctx->alias->inner->ra_verified(ctx)
            : srv_reject(ctx, CMP_R_BAD_POP, "raVerified is accepted only "
                         "from an authorised RA");
    if (!ctx->alias->allow_ra_verified)
        return srv_reject(ctx, CMP_R_BAD_POP, "alias %s does not accept "
                          "raVerified", ctx->alias->name);
    if (!ra->ra_verified)
        return srv_reject(ctx, CMP_R_BAD_POP, "RA %s may not assert "
                          "raVerified", ra->name);
    eku = X509_get_ext_d2i(ctx->rq.cert, NID_ext_key_usage, NULL, NULL);
    for (i = 0; i < sk_ASN1_OBJECT_num(eku) && !cmc_ra; i++)
        cmc_ra = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_cmcRA;
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    ERR_clear_error();
    if (!cmc_ra)
        return srv_reject(ctx, CMP_R_BAD_POP, "RA %s: certificate lacks "
                          "id-kp-cmcRA", ra->name);
    return CMP_R_OK;
}

static int mode_ra_implicit_confirm(const struct srv_ctx *ctx)
{
    return ctx->alias->implicit_confirm;
}

const struct srv_mode srv_mode_ra = {
    "ra", srv_auth_signature, mode_ra_authenticate, mode_ra_authorise,
    mode_ra_ra_verified, mode_ra_implicit_confirm, NULL, NULL, NULL,
};
