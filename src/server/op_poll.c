/*
 * Delayed delivery (RFC 9810 5.3.22, RFC 9483 4.4) with an operator's
 * approval: a certificate request that passed every check on an alias
 * with approval = manual is held in the store (cmp_pending) and answered
 * with status waiting; pollReq gets pollRep with checkAfter until `cmpca
 * request approve|reject` decides, then the certificate (issued at that
 * moment) or an error. All state is in the store: any node, any restart.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "conf/conf.h"
#include "ocsp/vendor_crl.h"
#include "util/log.h"
#include "util/x509_der.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_approval_load(struct srv_alias *a, const struct conf *conf,
                      const struct conf_section *sec, char *err,
                      size_t errlen)
{
    const char *ap = conf_get(sec, "approval");

    a->approval_manual = 0;
    if (ap != NULL) {
        if (strcmp(ap, "manual") == 0)
            a->approval_manual = 1;
        else if (strcmp(ap, "auto") != 0)
            return conf_err(conf, sec->line, err, errlen,
                            "[alias %s]: approval must be auto or manual",
                            sec->name);
    }
    return conf_get_duration(conf, sec, "check_after",
                             SRV_DEFAULT_CHECK_AFTER, 1, 86400,
                             &a->check_after, err, errlen)
        && conf_get_duration(conf, sec, "approval_timeout",
                             SRV_DEFAULT_APPROVAL_TIMEOUT, 1,
                             3650L * 86400, &a->approval_timeout, err,
                             errlen);
}

/* |name| as RFC 2253 text (malloc'ed), or NULL. */
static char *srv_poll_name_text(const X509_NAME *name)
{
    BIO *b;
    char *out = NULL;
    long n;
    char *p;

    if (name == NULL || (b = BIO_new(BIO_s_mem())) == NULL)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0
        && (n = BIO_get_mem_data(b, &p)) >= 0
        && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

/* |tid| as lowercase hex into |buf| (2 * STORE_TID_MAX + 1 octets). */
static const char *srv_poll_tid_hex(const unsigned char *tid, size_t len,
                                    char *buf)
{
    size_t i;

    for (i = 0; i < len && i < STORE_TID_MAX; i++)
        snprintf(buf + 2 * i, 3, "%02x", tid[i]);
    buf[2 * i] = '\0';
    return buf;
}

/* Appends audit row |action| for transaction |tid_hex| with details
 * naming the alias, the device and |why| (may be NULL). */
static enum store_rc srv_poll_audit(STORE_TX *tx, const char *actor,
                                    const char *action, const char *tid_hex,
                                    const char *alias, const char *device,
                                    const char *subject, const char *why)
{
    json_t *j = json_pack("{s:s}", "alias", alias);
    char *details = NULL;
    enum store_rc rc;

    if (j != NULL && device != NULL && *device != '\0')
        json_object_set_new(j, "device", json_string(device));
    if (j != NULL && subject != NULL)
        json_object_set_new(j, "subject", json_string(subject));
    if (j != NULL && why != NULL)
        json_object_set_new(j, "reason", json_string(why));
    details = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rc = details == NULL ? STORE_ERROR
                         : store_audit_append(tx, actor, action, tid_hex,
                                              details);
    free(details);
    json_decref(j);
    return rc;
}

/* The response body type answering request body |type|. */
static int srv_poll_rsp_type(int type)
{
    return type == CMP_BODY_IR ? CMP_BODY_IP
        : type == CMP_BODY_KUR ? CMP_BODY_KUP : CMP_BODY_CP;
}

enum cmp_reason srv_poll_hold(struct srv_ctx *ctx, const X509_NAME *subject,
                              CMP_MSG **rsp_out)
{
    struct srv_alias *a = ctx->alias;
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    struct store_pending p;
    unsigned char *der = NULL, *vder = NULL;
    char actor[300], tid_hex[2 * STORE_TID_MAX + 1];
    CMP_MSG *rsp = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;
    int len, vlen = 0;

    memset(&p, 0, sizeof(p));
    *rsp_out = NULL;
    if ((len = i2d_CMP_MSG((CMP_MSG *)ctx->req, &der)) <= 0
        || (ctx->vendor_cert != NULL
            && (vlen = i2d_X509(ctx->vendor_cert, &vder)) <= 0)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "encoding the held request");
        goto end;
    }
    memcpy(p.tid, ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid));
    p.tid_len = (size_t)ASN1_STRING_length(tid);
    p.alias = a->name;
    p.type = ctx->req->body->type == CMP_BODY_IR ? STORE_CMP_IR
        : ctx->req->body->type == CMP_BODY_CR ? STORE_CMP_CR
        : ctx->req->body->type == CMP_BODY_KUR ? STORE_CMP_KUR
        : STORE_CMP_P10CR;
    p.state = STORE_PENDING_PENDING;
    p.requester = (char *)srv_actor(ctx, actor, sizeof(actor));
    p.device_id = ctx->device != NULL ? ctx->device->id : 0;
    p.device = ctx->device_label;
    p.profile = (char *)srv_profile_name(ctx); /* certProfile's choice */
    p.subject = srv_poll_name_text(subject);
    p.request = der;
    p.request_len = (size_t)len;
    p.vendor_cert = vder;
    p.vendor_cert_len = (size_t)vlen;
    p.created = ctx->now;
    p.expires = ctx->now + a->approval_timeout;
    /* ip/cp/kup with status waiting, no certificate (RFC 9483 4.4) */
    if ((rsp = srv_rsp_new(ctx, srv_poll_rsp_type(ctx->req->body->type)))
            == NULL
        || !cmp_body_set_certrep(rsp, ctx->cert_req_id,
                                 cmp_pkisi_new(CMP_STATUS_WAITING, -1,
                                               "awaiting approval"),
                                 NULL, 0, NULL)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response");
        goto end;
    }
    srv_poll_tid_hex(p.tid, p.tid_len, tid_hex);
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK) {
        r = srv_store_reason(ctx, rc, "begin");
        goto end;
    }
    if ((r = srv_txn_open(ctx, tx, STORE_CMP_WAITING, ctx->cert_req_id, 0,
                          ctx->req->body->type == CMP_BODY_KUR
                              && ctx->old_cert != NULL ? ctx->old_cert->id : 0,
                          rsp->header->senderNonce)) != CMP_R_OK)
        goto end;
    rc = store_pending_insert(tx, &p);
    if (rc == STORE_EXISTS) {
        r = srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE, NULL);
        goto end;
    }
    if (rc == STORE_OK)
        rc = srv_poll_audit(tx, actor, "request.hold", tid_hex, a->name,
                            ctx->device_label, p.subject, NULL);
    if (rc != STORE_OK) {
        r = srv_store_reason(ctx, rc, "record held request");
        goto end;
    }
    rc = store_commit(tx);
    tx = NULL;
    if (rc != STORE_OK) {
        r = srv_store_reason(ctx, rc, "commit");
        goto end;
    }
    log_msg(LOG_INFO, "alias=%s tid=%s request held for approval",
            a->name, tid_hex);
    *rsp_out = rsp;
    rsp = NULL;
 end:
    store_rollback(tx);
    CMP_MSG_free(rsp);
    OPENSSL_free(der);
    OPENSSL_free(vder);
    free(p.subject);
    return r;
}

/* Marks the undecided request |p| expired and its transaction too, with
 * an audit row naming |actor|. Returns the store's rc (STORE_CONFLICT if
 * it was decided meanwhile). */
static enum store_rc srv_poll_expire(STORE_TX *tx,
                                     const struct store_pending *p,
                                     const char *actor)
{
    struct store_cmp_txn t;
    char tid_hex[2 * STORE_TID_MAX + 1];
    enum store_rc rc;

    memset(&t, 0, sizeof(t));
    memcpy(t.tid, p->tid, p->tid_len);
    t.tid_len = p->tid_len;
    srv_poll_tid_hex(p->tid, p->tid_len, tid_hex);
    if ((rc = store_pending_set_state(tx, p->tid, p->tid_len,
                                      STORE_PENDING_PENDING,
                                      STORE_PENDING_EXPIRED, actor,
                                      "not decided within approval_timeout"))
        != STORE_OK)
        return rc;
    rc = srv_txn_move_tx(tx, &t, STORE_CMP_WAITING, STORE_CMP_EXPIRED);
    if (rc != STORE_OK && rc != STORE_CONFLICT && rc != STORE_NOTFOUND)
        return rc;
    return srv_poll_audit(tx, actor, "request.expire", tid_hex, p->alias,
                          p->device, NULL, NULL);
}

/* 1 when the decision on |p| (approved or rejected) is older than the
 * approval_timeout it was held with (expires - created): an approval not
 * fetched by then lapses. */
static int srv_poll_decision_lapsed(const struct store_pending *p, time_t now)
{
    return (p->state == STORE_PENDING_APPROVED
            || p->state == STORE_PENDING_REJECTED)
        && p->decided_at + (p->expires - p->created) < (int64_t)now;
}

/* Closes the transaction of the decided request |p| that was never polled
 * within approval_timeout of the decision: an approval lapses (request
 * and transaction expired, nothing issued), a rejection ends the
 * transaction rejected; audit row request.lapse / request.close by
 * |actor|. STORE_CONFLICT if it changed meanwhile. */
static enum store_rc srv_poll_close_decided(STORE_TX *tx,
                                            const struct store_pending *p,
                                            const char *actor)
{
    struct store_cmp_txn t;
    char tid_hex[2 * STORE_TID_MAX + 1];
    int approved = p->state == STORE_PENDING_APPROVED;
    enum store_rc rc;

    memset(&t, 0, sizeof(t));
    memcpy(t.tid, p->tid, p->tid_len);
    t.tid_len = p->tid_len;
    srv_poll_tid_hex(p->tid, p->tid_len, tid_hex);
    if (approved
        && (rc = store_pending_set_state(tx, p->tid, p->tid_len,
                                         STORE_PENDING_APPROVED,
                                         STORE_PENDING_EXPIRED, NULL, NULL))
           != STORE_OK)
        return rc;
    if ((rc = srv_txn_move_tx(tx, &t, STORE_CMP_WAITING,
                              approved ? STORE_CMP_EXPIRED
                                       : STORE_CMP_REJECTED)) != STORE_OK)
        return rc;
    return srv_poll_audit(tx, actor, approved ? "request.lapse"
                                              : "request.close",
                          tid_hex, p->alias, p->device, NULL,
                          approved ? "approved, not fetched within "
                                     "approval_timeout"
                                   : "rejected, not polled within "
                                     "approval_timeout");
}

/* A fresh request's checks of what may have changed since |orig| was
 * held: the vendor certificate still chains to a vendor CA registered and
 * enabled for the alias, and is not on the vendor's CRL. */
static enum cmp_reason srv_poll_recheck_vendor(struct srv_ctx *ctx,
                                               const CMP_MSG *orig)
{
    const CMP_MSG *req = ctx->req;
    X509 *signer = ctx->rq.cert;
    int64_t vendor_id = 0;
    enum cmp_reason r;

    ctx->rq.cert = ctx->vendor_cert;
    ctx->req = orig;            /* its extraCerts carry the vendor chain */
    r = srv_auth_vendor_path(ctx, &vendor_id);
    ctx->rq.cert = signer;
    ctx->req = req;
    if (r != CMP_R_OK || ctx->srv->vcrl == NULL)
        return r;
    switch (vendor_crl_check(ctx->srv->vcrl, ctx->vendor_cert, vendor_id,
                             ctx->now)) {
    case VENDOR_REV_REVOKED:
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "vendor certificate is revoked (vendor CRL)");
    case VENDOR_REV_NO_CRL:
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                        "no current CRL of the vendor CA (policy: hard)");
    case VENDOR_REV_ERROR:
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "vendor CRL check");
    default:
        return CMP_R_OK;    /* good, or unchecked under a soft policy */
    }
}

/* The RA that polls for (or forwarded) the held request |p| is still
 * enabled and may act for the alias; when the request is the RA's own
 * (|own|: it signed it), also for its profile and operation (a device's
 * nested request gets the device's checks, as when it arrived). */
static enum cmp_reason srv_poll_recheck_ra(struct srv_ctx *ctx,
                                           const struct store_pending *p,
                                           int own)
{
    const struct store_ra *ra = ctx->rq.kind == SRV_RQ_RA ? ctx->rq.ra
        : ctx->via != NULL ? ctx->via->ra : NULL;
    unsigned bit = p->type == STORE_CMP_IR ? STORE_RA_OP_IR
        : p->type == STORE_CMP_CR ? STORE_RA_OP_CR
        : p->type == STORE_CMP_KUR ? STORE_RA_OP_KUR : STORE_RA_OP_P10CR;

    if (ra == NULL)
        return CMP_R_OK;
    switch (store_ra_check(ra, ctx->alias->name,
                           p->profile != NULL ? p->profile : "", bit)) {
    case STORE_RA_ALLOWED:
        return CMP_R_OK;
    case STORE_RA_DISABLED:
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "RA %s is disabled",
                        ra->name);
    case STORE_RA_NO_ALIAS:
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "RA %s may not act for alias %s", ra->name,
                        ctx->alias->name);
    case STORE_RA_NO_PROFILE:
        if (!own)
            return CMP_R_OK;    /* nested: the device's own request */
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "RA %s may not request profile %s", ra->name,
                        p->profile != NULL ? p->profile : "-");
    default:
        if (!own)
            return CMP_R_OK;
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "RA %s may not request %s",
                        ra->name, store_ra_op_name(bit));
    }
}

/* Loads what issuing the approved request |p| of |txn| needs into ctx:
 * device, renewed certificate (kur), vendor certificate (*vendor, owned),
 * the request message (*orig, owned). */
static enum cmp_reason srv_poll_load(struct srv_ctx *ctx,
                                     const struct store_cmp_txn *txn,
                                     const struct store_pending *p,
                                     X509 **vendor, CMP_MSG **orig)
{
    STORE_TX *rtx = NULL;
    enum store_rc rc;
    enum cmp_reason r;

    /* issued with the profile chosen at the request (certProfile), if
     * the alias still offers it */
    if (p->profile != NULL
        && (ctx->profile = srv_profile_lookup(ctx, p->profile)) == NULL)
        return srv_fail(ctx, CMP_R_BAD_CERT_TEMPLATE, "profile %s is no "
                        "longer offered on alias %s", p->profile,
                        ctx->alias->name);
    if ((r = cmp_msg_decode(p->request, p->request_len, &ctx->srv->limits,
                            orig)) != CMP_R_OK)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "held request: %s",
                        cmp_reason_text(r));
    if (p->vendor_cert_len > 0
        && (*vendor = x509_der_get1(p->vendor_cert, p->vendor_cert_len))
           == NULL)
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "held vendor certificate");
    ctx->vendor_cert = *vendor;
    if ((ctx->vendor_cert != NULL
         && (r = srv_poll_recheck_vendor(ctx, *orig)) != CMP_R_OK)
        || (r = srv_poll_recheck_ra(ctx, p,
                                    ctx->rq.kind == SRV_RQ_RA
                                    && txn->has_requester
                                    && CRYPTO_memcmp(txn->requester_sha256,
                                                     ctx->rq.id, 32) == 0))
           != CMP_R_OK)
        return r;
    if ((rc = srv_read_tx(ctx, &rtx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if (p->device_id != 0) {
        store_device_free(ctx->device);
        ctx->device = NULL;
        rc = store_device_get(rtx, p->device_id, &ctx->device);
        if (rc == STORE_NOTFOUND)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                            "device %s was removed", ctx->device_label);
        if (rc != STORE_OK)
            return srv_store_reason(ctx, rc, "device lookup");
        if (ctx->device->state == STORE_DEV_DISABLED)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                            "device %s was disabled", ctx->device_label);
    }
    if (txn->old_cert_id != 0) {
        store_cert_free(ctx->old_cert);
        ctx->old_cert = NULL;
        X509_free(ctx->old_x509);
        ctx->old_x509 = NULL;
        if ((rc = store_cert_get(rtx, txn->old_cert_id, &ctx->old_cert))
            != STORE_OK)
            return srv_store_reason(ctx, rc, "renewed certificate");
        if ((ctx->old_x509 = x509_der_get1(ctx->old_cert->der,
                                           ctx->old_cert->der_len)) == NULL)
            return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "renewed certificate");
    }
    return CMP_R_OK;
}

/* The answer to a poll of the rejected request |p|. */
static enum cmp_reason srv_poll_rejected(struct srv_ctx *ctx,
                                         const struct store_pending *p)
{
    if (p->reason == NULL || *p->reason == '\0')
        return srv_fail(ctx, CMP_R_REQUEST_REJECTED, NULL);
    return srv_fail(ctx, CMP_R_REQUEST_REJECTED, "%s", p->reason);
}

/* The pollReq comes from the requester of the transaction, or from the
 * registered RA whose nested wrapper carried the held request |p| (it
 * polls for the device with its own signature; RFC 9483 5.2.2). */
static enum cmp_reason srv_poll_check_requester(struct srv_ctx *ctx,
                                                const struct store_cmp_txn *txn,
                                                const struct store_pending *p)
{
    char prefix[300];
    size_t n;

    if (txn->has_requester
        && CRYPTO_memcmp(txn->requester_sha256, ctx->rq.id, 32) == 0)
        return CMP_R_OK;
    if (p != NULL && p->requester != NULL && ctx->rq.kind == SRV_RQ_RA
        && ctx->rq.ra != NULL && ctx->via == NULL) {
        n = (size_t)snprintf(prefix, sizeof(prefix), "cmp:%s:ra=%s:",
                             ctx->alias->name, ctx->rq.ra->name);
        if (n < sizeof(prefix) && strncmp(p->requester, prefix, n) == 0)
            return CMP_R_OK;
    }
    return srv_txn_check_requester(ctx, txn);
}

enum cmp_reason srv_poll(struct srv_ctx *ctx, CMP_MSG **rsp)
{
    const struct srv_mode *m = ctx->mode;
    const STACK_OF(CMP_POLLREQ) *prc = ctx->req->body->value.pollReq;
    struct store_cmp_txn *txn = NULL;
    struct store_pending *p = NULL;
    char actor[300];
    CMP_MSG *out = NULL, *orig = NULL;
    X509 *vendor = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;
    int64_t rid;

    *rsp = NULL;
    if ((r = m->verify(ctx)) != CMP_R_OK
        || (r = m->authenticate(ctx, SRV_OP_POLL)) != CMP_R_OK)
        return r;
    if (sk_CMP_POLLREQ_num(prc) != 1)
        return srv_fail(ctx, CMP_R_BAD_REQUEST,
                        "exactly one certReqId is polled, got %d",
                        sk_CMP_POLLREQ_num(prc));
    if (!ASN1_INTEGER_get_int64(&rid, sk_CMP_POLLREQ_value(prc, 0)->certReqId)
        || rid < -1 || rid > 0) {
        ERR_clear_error();
        return srv_fail(ctx, CMP_R_BAD_CERT_REQ_ID, "certReqId must be 0 "
                        "(-1 for a p10cr)");
    }
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((r = srv_txn_load(ctx, tx, &txn)) != CMP_R_OK)
        goto end;
    rc = store_pending_get(tx, txn->tid, txn->tid_len, &p);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        r = srv_store_reason(ctx, rc, "held request");
        goto end;
    }
    if ((r = srv_poll_check_requester(ctx, txn, p)) != CMP_R_OK
        || (r = srv_txn_check_nonce(ctx, txn)) != CMP_R_OK)
        goto end;
    /* waiting, or ended by a decision (a replayed poll: the same answer) */
    if (txn->state != STORE_CMP_WAITING && txn->state != STORE_CMP_REJECTED
        && txn->state != STORE_CMP_EXPIRED) {
        r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "transaction %s: nothing to "
                     "poll for", store_cmp_state_str(txn->state));
        goto end;
    }
    /* OpenSSL 3.0 polls a p10cr with certReqId 0 */
    if (rid != txn->cert_req_id
        && !(txn->type == STORE_CMP_P10CR && rid == 0)) {
        r = srv_fail(ctx, CMP_R_BAD_CERT_REQ_ID, "certReqId is not %d",
                     txn->cert_req_id);
        goto end;
    }
    if (p == NULL) {
        r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "transaction %s: no held "
                     "request", store_cmp_state_str(txn->state));
        goto end;
    }
    snprintf(ctx->device_label, sizeof(ctx->device_label), "%s",
             p->device != NULL ? p->device : "");
    if (txn->state != STORE_CMP_WAITING) {
        if (p->state == STORE_PENDING_REJECTED)
            r = srv_poll_rejected(ctx, p);
        else if (p->state == STORE_PENDING_EXPIRED)
            r = srv_fail(ctx, CMP_R_REQUEST_EXPIRED, "approval_timeout "
                         "passed");
        else
            r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "transaction %s",
                         store_cmp_state_str(txn->state));
        goto end;
    }
    if (p->state == STORE_PENDING_PENDING && p->expires <= (int64_t)ctx->now) {
        /* undecided in time: the sweeper may not have run yet */
        if ((rc = srv_poll_expire(tx, p, srv_actor(ctx, actor, sizeof(actor))))
                != STORE_OK
            || (rc = store_commit_clear(&tx)) != STORE_OK) {
            r = srv_store_reason(ctx, rc, "expire");
            goto end;
        }
        r = srv_fail(ctx, CMP_R_REQUEST_EXPIRED, "approval_timeout (%lds) "
                     "passed", ctx->alias->approval_timeout);
        goto end;
    }
    if (p->state == STORE_PENDING_APPROVED
        && srv_poll_decision_lapsed(p, ctx->now)) {
        /* approved, not fetched in time: the sweeper may not have run */
        if ((rc = srv_poll_close_decided(tx, p, srv_actor(ctx, actor,
                                                          sizeof(actor))))
                != STORE_OK
            || (rc = store_commit_clear(&tx)) != STORE_OK) {
            r = srv_store_reason(ctx, rc, "lapse");
            goto end;
        }
        r = srv_fail(ctx, CMP_R_REQUEST_EXPIRED, "the approval lapsed: not "
                     "fetched within approval_timeout (%lds)",
                     (long)(p->expires - p->created));
        goto end;
    }
    switch (p->state) {
    case STORE_PENDING_PENDING:
        if ((out = srv_rsp_new(ctx, CMP_BODY_POLLREP)) == NULL
            || !cmp_body_set_pollrep(out, rid, ctx->alias->check_after)) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response");
            goto end;
        }
        /* the next pollReq answers this pollRep's nonce */
        if ((r = srv_txn_answered(ctx, tx, txn, STORE_CMP_WAITING,
                                  STORE_CMP_WAITING, 0,
                                  out->header->senderNonce)) != CMP_R_OK)
            goto end;
        if ((rc = store_commit_clear(&tx)) != STORE_OK) {
            r = srv_store_reason(ctx, rc, "commit");
            goto end;
        }
        *rsp = out;
        out = NULL;
        break;
    case STORE_PENDING_REJECTED:
    case STORE_PENDING_EXPIRED:
        if ((r = srv_txn_move(ctx, tx, txn, STORE_CMP_WAITING,
                              p->state == STORE_PENDING_REJECTED
                                  ? STORE_CMP_REJECTED : STORE_CMP_EXPIRED))
            != CMP_R_OK)
            goto end;
        if ((rc = store_commit_clear(&tx)) != STORE_OK) {
            r = srv_store_reason(ctx, rc, "commit");
            goto end;
        }
        if (p->state == STORE_PENDING_EXPIRED)
            r = srv_fail(ctx, CMP_R_REQUEST_EXPIRED, "approval_timeout "
                         "passed");
        else
            r = srv_poll_rejected(ctx, p);
        break;
    case STORE_PENDING_APPROVED:
        /* issue outside the store transaction; the delivery commits with
         * a conditional move, so two nodes polling at once issue once */
        store_rollback(tx);
        tx = NULL;
        if ((r = srv_poll_load(ctx, txn, p, &vendor, &orig)) == CMP_R_OK)
            r = srv_enroll_deliver(ctx, orig, txn, rsp);
        break;
    default:
        r = srv_fail(ctx, CMP_R_UNEXPECTED_BODY, "request %s",
                     store_pending_state_str(p->state));
        break;
    }
 end:
    store_rollback(tx);
    ctx->vendor_cert = NULL;        /* vendor is ours, not the request's */
    X509_free(vendor);
    CMP_MSG_free(orig);
    CMP_MSG_free(out);
    store_pending_free(p);
    store_cmp_txn_free(txn);
    return r;
}

enum cmp_reason srv_poll_delivered(struct srv_ctx *ctx, STORE_TX *tx,
                                   const struct store_cmp_txn *waiting,
                                   int state, int64_t cert_id,
                                   const ASN1_OCTET_STRING *nonce)
{
    enum store_rc rc;
    enum cmp_reason r;

    if ((r = srv_txn_answered(ctx, tx, waiting, STORE_CMP_WAITING, state,
                              cert_id, nonce)) != CMP_R_OK)
        return r;
    rc = store_pending_set_state(tx, waiting->tid, waiting->tid_len,
                                 STORE_PENDING_APPROVED,
                                 STORE_PENDING_DELIVERED, NULL, NULL);
    if (rc == STORE_CONFLICT || rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_UNEXPECTED_BODY,
                        "the held request changed meanwhile");
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "held request");
    return CMP_R_OK;
}

/* Closes the held requests of |list| (undecided and expired, or decided
 * and never fetched); returns how many. */
static int srv_poll_sweep_list(SERVER *srv, struct store_pending **list,
                               size_t n)
{
    STORE_TX *tx = NULL;
    size_t i;
    int done = 0;

    for (i = 0; i < n; i++) {
        if (store_begin(srv->store, &tx) != STORE_OK)
            break;
        /* a decision or poll made meanwhile wins (STORE_CONFLICT) */
        if ((list[i]->state == STORE_PENDING_PENDING
                 ? srv_poll_expire(tx, list[i], "sweeper")
                 : srv_poll_close_decided(tx, list[i], "sweeper"))
                != STORE_OK
            || store_commit_clear(&tx) != STORE_OK) {
            store_rollback(tx);
            tx = NULL;
            continue;
        }
        done++;
        log_msg(LOG_INFO, "alias=%s sweep: held request of %s %s",
                list[i]->alias,
                list[i]->device != NULL ? list[i]->device : "-",
                list[i]->state == STORE_PENDING_PENDING
                    ? "expired undecided"
                    : list[i]->state == STORE_PENDING_APPROVED
                    ? "approved, never fetched: approval lapsed"
                    : "rejected, never polled: transaction closed");
    }
    return done;
}

int srv_poll_sweep(SERVER *srv, time_t now)
{
    struct store_pending **list = NULL, **stale = NULL;
    STORE_TX *tx = NULL;
    size_t n = 0, ns = 0;
    int done = -1;

    if (store_begin_read(srv->store, &tx) != STORE_OK)
        return -1;
    if (store_pending_list_expired(tx, (int64_t)now, 256, &list, &n)
            == STORE_OK
        && store_pending_list_stale(tx, (int64_t)now, 256, &stale, &ns)
            == STORE_OK)
        done = 0;
    store_rollback(tx);
    if (done == 0)
        done = srv_poll_sweep_list(srv, list, n)
            + srv_poll_sweep_list(srv, stale, ns);
    store_pending_list_free(list, n);
    store_pending_list_free(stale, ns);
    return done;
}
