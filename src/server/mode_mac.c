/*
 * The "mac" mode (RFC 9483 4.1.1 / 4.1.5 with MAC-based protection): a
 * device bootstraps with a one-time shared secret registered by the
 * operator (`cmpca device add --secret-file`), referenced by the
 * request's senderKID. PasswordBasedMac and PBMAC1 are verified with the
 * secret unsealed from the store; wrong MACs are counted and lock the
 * reference; the secret is consumed once the enrollment is final. Answers
 * are MAC-protected with the same secret (or signed, mac_response = sign).
 * Signed requests on the alias (cr, kur, rr, genm with the certificate of
 * ours the device got) are handled as in 3gpp mode.
 */
#include "server/srv_int.h"

#include "conf/conf.h"
#include "util/kek.h"
#include "util/log.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

#define MAC_DEFAULT_MAX_ITERATIONS 100000
#define MAC_DEFAULT_MAX_FAILURES 5

int srv_mac_alias_load(struct srv_alias *a, const struct conf *conf,
                       const struct conf_section *sec, char *err,
                       size_t errlen)
{
    const struct conf_section *server = conf_find(conf, "server", "");
    const char *kek = server != NULL ? conf_get(server, "secret_kek") : NULL;
    const char *rsp = conf_get(sec, "mac_response");
    const char *subj = conf_get(sec, "mac_subject");
    long iter, fail;
    int ic;

    if (!conf_get_bool(conf, sec, "implicit_confirm", 0, &ic, err, errlen))
        return 0;
    if (ic && a->mode == &srv_mode_3gpp)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: implicit_confirm is never granted in "
                        "3gpp mode (TS 33.310)", sec->name);
    a->implicit_confirm = ic;
    if (srv_alias_device_mode(a) != &srv_mode_mac) {
        if (rsp != NULL || subj != NULL || conf_get(sec, "mac_max_iterations")
            || conf_get(sec, "mac_max_failures"))
            return conf_err(conf, sec->line, err, errlen,
                            "[alias %s]: mac_* options are for mode = mac",
                            sec->name);
        return 1;
    }
    if (!conf_get_long(conf, sec, "mac_max_iterations",
                       MAC_DEFAULT_MAX_ITERATIONS, 100, 10000000, &iter, err,
                       errlen)
        || !conf_get_long(conf, sec, "mac_max_failures",
                          MAC_DEFAULT_MAX_FAILURES, 1, 1000, &fail, err,
                          errlen))
        return 0;
    if (rsp != NULL && strcmp(rsp, "mac") != 0 && strcmp(rsp, "sign") != 0)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: mac_response must be mac or sign",
                        sec->name);
    if (subj != NULL && strcmp(subj, "device") != 0 && strcmp(subj, "any") != 0)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: mac_subject must be device or any",
                        sec->name);
    if (kek == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: mode = mac needs [server] secret_kek "
                        "(file:PATH or env:NAME)", sec->name);
    a->mac.max_iterations = iter;
    a->mac.max_failures = (int)fail;
    a->mac.response_sign = rsp != NULL && strcmp(rsp, "sign") == 0;
    a->mac.subject_any = subj != NULL && strcmp(subj, "any") == 0;
    if (!kek_load(kek, &a->mac.kek, err, errlen))
        return 0;
    return 1;
}

void srv_mac_alias_clear(struct srv_alias *a)
{
    kek_free(a->mac.kek);
    a->mac.kek = NULL;
}

void srv_mac_ctx_clear(struct srv_ctx *ctx)
{
    store_device_secret_free(ctx->mac_rec);
    kek_clear_free(ctx->mac_secret, ctx->mac_secret_len);
    ctx->mac_rec = NULL;
    ctx->mac_secret = NULL;
    ctx->mac_secret_len = 0;
    X509_NAME_free(ctx->mac_subject);
    ctx->mac_subject = NULL;
}

/* The reference the request names in senderKID, as text: 1 to
 * STORE_SECRET_REF_MAX printable ASCII octets. */
static int mode_mac_ref(const CMP_MSG *req, char *buf, size_t len)
{
    const ASN1_OCTET_STRING *kid = req->header->senderKID;
    const unsigned char *p;
    int i, n;

    if (kid == NULL || (n = ASN1_STRING_length(kid)) <= 0
        || n > STORE_SECRET_REF_MAX || (size_t)n >= len)
        return 0;
    p = ASN1_STRING_get0_data(kid);
    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e)
            return 0;
        buf[i] = (char)p[i];
    }
    buf[n] = '\0';
    return 1;
}

/* Writes an audit row |action| about the secret of ctx->mac_rec (or
 * |rec|) in |tx|. */
static enum store_rc mode_mac_audit(struct srv_ctx *ctx, STORE_TX *tx,
                                    const struct store_device_secret *rec,
                                    const char *action, int failures)
{
    char actor[300], *details;
    json_t *j;
    enum store_rc rc;

    j = json_pack("{s:s, s:s}", "alias", ctx->alias->name, "ref", rec->ref);
    if (j != NULL && failures > 0)
        json_object_set_new(j, "failures", json_integer(failures));
    details = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rc = store_audit_append(tx, srv_actor(ctx, actor, sizeof(actor)), action,
                            ctx->device_label, details);
    free(details);
    json_decref(j);
    return rc;
}

/* A wrong MAC for |rec|: counted (and the reference locked at
 * mac_max_failures), with an audit row each, in its own transaction. */
static enum cmp_reason mode_mac_count_failure(
    struct srv_ctx *ctx, const struct store_device_secret *rec)
{
    STORE_TX *tx = NULL;
    enum store_rc rc;
    int failures = 0, locked = 0;

    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((rc = store_device_secret_fail(tx, rec->device_id,
                                       ctx->alias->mac.max_failures,
                                       &failures, &locked)) != STORE_OK
        || (rc = mode_mac_audit(ctx, tx, rec, "device.secret.fail",
                                failures)) != STORE_OK
        || (locked && !rec->locked
            && (rc = mode_mac_audit(ctx, tx, rec, "device.secret.lock",
                                    failures)) != STORE_OK)) {
        store_rollback(tx);
        return srv_store_reason(ctx, rc, "failure count");
    }
    if ((rc = store_commit(tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "commit");
    if (locked)
        log_msg(LOG_WARN, "alias=%s device=\"%s\": secret reference locked "
                "after %d wrong MACs", ctx->alias->name, ctx->device_label,
                failures);
    return srv_fail(ctx, CMP_R_BAD_MAC, "the MAC does not verify with the "
                    "secret of reference %s (%d wrong of %d allowed%s)",
                    rec->ref, failures, ctx->alias->mac.max_failures,
                    locked ? "; now locked" : "");
}

/* Verifies MAC protection with the secret senderKID refers to. */
static enum cmp_reason mode_mac_verify_mac(struct srv_ctx *ctx)
{
    const struct srv_alias *a = ctx->alias;
    struct store_device_secret *rec = NULL;
    struct store_device *dev = NULL;
    struct cmp_mac_limits lim;
    unsigned char *secret = NULL;
    size_t secret_len = 0;
    STORE_TX *tx = NULL;
    char ref[STORE_SECRET_REF_MAX + 1];
    unsigned char idbuf[4 + STORE_SECRET_REF_MAX];
    unsigned int mdlen = 0;
    int64_t iter = 0;
    enum store_rc rc;
    enum cmp_reason r;

    if (ctx->via != NULL)
        return srv_fail(ctx, CMP_R_MAC_NOT_ALLOWED, "MAC protection inside "
                        "a nested message");
    if (!mode_mac_ref(ctx->req, ref, sizeof(ref)))
        return srv_fail(ctx, CMP_R_NO_MAC_SECRET, "senderKID must carry the "
                        "secret's reference (1..%d printable characters)",
                        STORE_SECRET_REF_MAX);
    /* the iteration count is bounded before anything is computed */
    if (!cmp_protect_mac_iterations(ctx->req, &iter))
        return srv_fail(ctx, CMP_R_BAD_MAC_PARAMS, "MAC parameters do not "
                        "decode");
    if (iter > a->mac.max_iterations || iter < 100)
        return srv_fail(ctx, CMP_R_BAD_MAC_PARAMS, "iteration count %lld "
                        "outside 100..%ld (mac_max_iterations)",
                        (long long)iter, a->mac.max_iterations);
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_device_secret_get(tx, 0, ref, &rec);
    if (rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_NO_MAC_SECRET, "no secret with reference "
                        "%s", ref);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "secret lookup");
    if ((rc = store_device_get(tx, rec->device_id, &dev)) != STORE_OK) {
        r = srv_store_reason(ctx, rc, "device lookup");
        goto end;
    }
    snprintf(ctx->device_label, sizeof(ctx->device_label), "%s",
             dev->identifier);
    if (rec->locked) {
        r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "reference %s is locked after "
                     "%d wrong MACs (cmpca device unlock)", ref,
                     rec->failures);
        goto end;
    }
    if (!kek_open(a->mac.kek, rec->ref, rec->sealed, rec->sealed_len,
                  &secret, &secret_len)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "the secret of reference %s "
                     "does not unseal with secret_kek", ref);
        goto end;
    }
    memset(&lim, 0, sizeof(lim));
    lim.max_iterations = a->mac.max_iterations;
    r = cmp_protect_verify_mac(ctx->req, secret, secret_len, &lim);
    if (r == CMP_R_BAD_MAC) {
        r = mode_mac_count_failure(ctx, rec);
        goto end;
    }
    if (r != CMP_R_OK) {
        r = srv_fail(ctx, r, NULL);
        goto end;
    }
    /* the requester id: SHA-256("mac:" || reference); a certConf must
     * show the same */
    memcpy(idbuf, "mac:", 4);
    memcpy(idbuf + 4, ref, strlen(ref));
    if (!EVP_Digest(idbuf, 4 + strlen(ref), ctx->rq.id, &mdlen, EVP_sha256(),
                    NULL)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
        goto end;
    }
    memcpy(ctx->rq.cert_sha256, ctx->rq.id, sizeof(ctx->rq.id));
    ctx->rq.kind = SRV_RQ_MAC_DEVICE;
    ctx->device = dev;
    dev = NULL;
    ctx->mac_rec = rec;
    rec = NULL;
    ctx->mac_secret = secret;
    ctx->mac_secret_len = secret_len;
    secret = NULL;
    r = CMP_R_OK;
 end:
    kek_clear_free(secret, secret_len);
    store_device_secret_free(rec);
    store_device_free(dev);
    ERR_clear_error();
    return r;
}

static enum cmp_reason mode_mac_verify(struct srv_ctx *ctx)
{
    const CMP_MSG *req = ctx->req;

    if (req->protection == NULL || req->header->protectionAlg == NULL)
        return srv_fail(ctx, CMP_R_UNPROTECTED, NULL);
    if (!cmp_protect_is_mac(req))
        return srv_auth_signature(ctx);
    return mode_mac_verify_mac(ctx);
}

/* The device's vendor must be one of the alias's `vendors` (default all)
 * and enabled: the alias's vendor trust lists exactly those. */
static int mode_mac_vendor_ok(struct srv_ctx *ctx)
{
    struct srv_vendor_trust *vt;
    size_t i;
    int ok = 0;

    if ((vt = srv_alias_get1_vendor_trust(ctx->alias)) == NULL)
        return 0;
    for (i = 0; i < vt->nanchors && !ok; i++)
        ok = vt->anchors[i].vendor_id == ctx->device->vendor_id;
    srv_vendor_trust_free(vt);
    return ok;
}

static enum cmp_reason mode_mac_authenticate(struct srv_ctx *ctx,
                                             enum srv_op op)
{
    if (ctx->mac_rec == NULL) {
        /* signed: the device's certificate of ours, as in 3gpp mode */
        if (op == SRV_OP_IR || op == SRV_OP_P10CR)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "on alias %s (mac "
                            "mode) a first enrollment is MAC-protected with "
                            "the device's secret", ctx->alias->name);
        return srv_mode_3gpp.authenticate(ctx, op);
    }
    switch (op) {
    case SRV_OP_CERTCONF:
    case SRV_OP_ERROR:
        return CMP_R_OK;        /* the transaction names its requester */
    case SRV_OP_KUR:
    case SRV_OP_RR:
        /* RFC 9483 4.1.3, 4.2: signed with the certificate concerned */
        return srv_fail(ctx, CMP_R_MAC_NOT_ALLOWED, "a %s is signed with the "
                        "certificate it concerns, not MAC-protected",
                        op == SRV_OP_KUR ? "kur" : "rr");
    case SRV_OP_IR:
    case SRV_OP_CR:
    case SRV_OP_P10CR:
    case SRV_OP_GENM:
        break;
    default:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY, "not served with MAC "
                        "protection");
    }
    if (!mode_mac_vendor_ok(ctx))
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s: its vendor is "
                        "not one of alias %s (or is disabled)",
                        ctx->device_label, ctx->alias->name);
    if (ctx->mac_rec->consumed)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "the secret of reference "
                        "%s was used already (cmpca device set-secret gives "
                        "a new one)", ctx->mac_rec->ref);
    if (ctx->device->state == STORE_DEV_DISABLED)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is disabled",
                        ctx->device_label);
    return CMP_R_OK;
}

/* The subject a certificate request asks for (may be NULL). */
static const X509_NAME *mode_mac_req_subject(const CMP_MSG *req)
{
    const CMP_CERTREQMSG *crm;

    if (req->body->type == CMP_BODY_P10CR)
        return X509_REQ_get_subject_name(req->body->value.p10cr);
    if (sk_CMP_CERTREQMSG_num(req->body->value.ir) < 1)
        return NULL;
    crm = sk_CMP_CERTREQMSG_value(req->body->value.ir, 0);
    return crm->certReq->certTemplate->subject;
}

static enum cmp_reason mode_mac_authorise(struct srv_ctx *ctx, enum srv_op op)
{
    const X509_NAME *subj;
    char v[256];

    if (ctx->mac_rec == NULL)
        return srv_mode_3gpp.authorise(ctx, op);
    if (op == SRV_OP_CR && ctx->device->state != STORE_DEV_ENROLLED)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "device %s is not enrolled", ctx->device_label);
    if ((op != SRV_OP_IR && op != SRV_OP_CR && op != SRV_OP_P10CR)
        || ctx->alias->mac.subject_any)
        return CMP_R_OK;
    /* the subject, if any, names the device: its device_id_attr (default
     * serialNumber) or its CN is the device's identifier */
    subj = mode_mac_req_subject(ctx->req);
    if (subj == NULL || X509_NAME_entry_count(subj) == 0) {
        /* none asked for (a POPOSigningKeyInput request): the device's
         * identifier as CN */
        X509_NAME_free(ctx->mac_subject);
        if ((ctx->mac_subject = X509_NAME_new()) == NULL
            || !X509_NAME_add_entry_by_NID(ctx->mac_subject, NID_commonName,
                                           MBSTRING_UTF8, (const unsigned char *)
                                           ctx->device->identifier, -1, -1, 0))
            return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "out of memory");
        ctx->subject_default = ctx->mac_subject;
        return CMP_R_OK;
    }
    if ((srv_name_attr(subj, ctx->alias->device_id_nid, v, sizeof(v))
         && strcmp(v, ctx->device->identifier) == 0)
        || (srv_name_attr(subj, NID_commonName, v, sizeof(v))
            && strcmp(v, ctx->device->identifier) == 0))
        return CMP_R_OK;
    return srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE, "the subject does not "
                      "name device %s (its %s or CN)", ctx->device_label,
                      OBJ_nid2sn(ctx->alias->device_id_nid));
}

static enum cmp_reason mode_mac_ra_verified(struct srv_ctx *ctx)
{
    return srv_reject(ctx, CMP_R_BAD_POP,
                      "raVerified is accepted only from an authorised RA");
}

static int mode_mac_implicit_confirm(const struct srv_ctx *ctx)
{
    return ctx->alias->implicit_confirm;
}

/* Answers to a request whose MAC verified are MAC-protected with the same
 * secret and the request's algorithm family (PBMAC1 or PasswordBasedMac
 * with SHA-256 and HMAC-SHA256) and iteration count; the rest is signed. */
static int mode_mac_protect(struct srv_ctx *ctx, CMP_MSG *msg,
                            unsigned char **der, size_t *len)
{
    const struct srv_alias *a = ctx->alias;
    const CMP_HDR *rh = ctx->req != NULL ? ctx->req->header : NULL;
    CMP_HDR *h = msg->header;
    GENERAL_NAME *sender = h->sender, *recipient = h->recipient;
    ASN1_OCTET_STRING *kid = h->senderKID;
    int64_t iter = 0;
    int ok = 0, n, pbmac1;
    unsigned char *out = NULL;

    *der = NULL;
    *len = 0;
    if (ctx->mac_secret == NULL || a->mac.response_sign)
        return srv_protect_signed(ctx, msg, der, len);
    if (!cmp_protect_mac_iterations(ctx->req, &iter))
        iter = 10000;
    pbmac1 = OBJ_obj2nid(rh->protectionAlg->algorithm) == NID_pbmac1;
    if (iter > 100000 && !pbmac1)
        iter = 100000;      /* OpenSSL's PasswordBasedMac maximum */
    h->sender = a->rsp_sender;
    h->recipient = rh != NULL && rh->sender != NULL ? rh->sender
                                                    : a->rsp_nobody;
    h->senderKID = rh->senderKID;     /* the reference of the secret */
    ok = pbmac1
        ? cmp_protect_mac_pbmac1(msg, ctx->mac_secret, ctx->mac_secret_len,
                                 (long)iter)
        : cmp_protect_mac_pbm(msg, ctx->mac_secret, ctx->mac_secret_len,
                              "SHA256", "SHA256", (long)iter);
    if (ok && (n = i2d_CMP_MSG(msg, &out)) > 0) {
        *der = out;
        *len = (size_t)n;
    } else {
        ok = 0;
    }
    h->sender = sender;
    h->recipient = recipient;
    h->senderKID = kid;
    if (!ok)
        log_ossl(LOG_ERROR, "cannot build MAC-protected response");
    ERR_clear_error();
    return ok;
}

/* The enrollment is final: the secret is used up. */
static enum cmp_reason mode_mac_finalised(struct srv_ctx *ctx, STORE_TX *tx,
                                          const struct store_cmp_txn *txn)
{
    enum store_rc rc;

    if (ctx->mac_rec == NULL)
        return CMP_R_OK;
    rc = store_device_secret_set(tx, ctx->mac_rec->device_id,
                                 STORE_SECRET_CONSUME);
    if (rc == STORE_CONFLICT)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "the secret of reference "
                        "%s was used meanwhile", ctx->mac_rec->ref);
    if (rc == STORE_OK)
        rc = mode_mac_audit(ctx, tx, ctx->mac_rec, "device.secret.consume", 0);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "secret consumption");
    return CMP_R_OK;
}

const struct srv_mode srv_mode_mac = {
    "mac", mode_mac_verify, mode_mac_authenticate, mode_mac_authorise,
    mode_mac_ra_verified, mode_mac_implicit_confirm, mode_mac_protect,
    mode_mac_finalised, NULL,
};
