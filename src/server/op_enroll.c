/*
 * Certificate requests: ir (first enrollment), cr (additional certificate),
 * kur (renewal) and p10cr. Checks the request content and proof of
 * possession, issues, and records certificate and transaction state durably
 * before the response is built.
 */
#include "server/srv_int.h"

#include "cmp/cmp_build.h"
#include "cmp/cmp_crmf.h"
#include "cmp/cmp_spki.h"
#include "util/log.h"
#include "util/metrics.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <string.h>

/* What a certificate request asks for, from CRMF or PKCS#10. */
struct srv_certreq {
    long cert_req_id;
    EVP_PKEY *pubkey;                        /* the requested key */
    const X509_PUBKEY *spki;                 /* the same, as encoded */
    EVP_PKEY *pkey_owned;                    /* CRMF: pubkey, owned */
    X509_PUBKEY *xpk_owned;                  /* CRMF: spki, owned */
    const X509_NAME *subject;                /* may be NULL */
    const STACK_OF(X509_EXTENSION) *exts;    /* may be NULL */
    STACK_OF(X509_EXTENSION) *csr_exts;      /* owned (PKCS#10) */
};

static void srv_certreq_clear(struct srv_certreq *cr)
{
    EVP_PKEY_free(cr->pkey_owned);
    X509_PUBKEY_free(cr->xpk_owned);
    sk_X509_EXTENSION_pop_free(cr->csr_exts, X509_EXTENSION_free);
    memset(cr, 0, sizeof(*cr));
}

/* publicKeyMAC of a POPOSigningKeyInput (RFC 4211 4.1): the MAC over the
 * public key with the request's shared secret (mac mode), under the
 * alias's iteration cap. */
static int srv_popo_pkmac(void *arg, const X509_ALGOR *alg,
                          const ASN1_BIT_STRING *value,
                          const unsigned char *spki, size_t spki_len)
{
    const struct srv_ctx *ctx = arg;
    struct cmp_mac_limits lim = { 0, ctx->alias->mac.max_iterations, 0 };

    return cmp_protect_verify_mac_data(alg, value, ctx->mac_secret,
                                       ctx->mac_secret_len, spki, spki_len,
                                       &lim) == CMP_R_OK;
}

/* Reads one CertReqMsg: certReqId 0, a public key, POP by signature (or
 * raVerified where the mode lets the requester assert it). */
static enum cmp_reason srv_certreq_crmf(struct srv_ctx *ctx,
                                        const STACK_OF(CMP_CERTREQMSG) *msgs,
                                        struct srv_certreq *cr, int check_pop)
{
    const CMP_CERTREQMSG *crm;
    const CMP_CERTTEMPLATE *t;
    struct cmp_popo_auth auth;
    int64_t id;
    enum cmp_reason r;

    if (sk_CMP_CERTREQMSG_num(msgs) != 1)
        return srv_reject(ctx, CMP_R_BAD_REQUEST,
                          "exactly one CertReqMsg is accepted, got %d",
                          sk_CMP_CERTREQMSG_num(msgs));
    crm = sk_CMP_CERTREQMSG_value(msgs, 0);
    if (!ASN1_INTEGER_get_int64(&id, crm->certReq->certReqId) || id != 0) {
        ERR_clear_error();
        return srv_reject(ctx, CMP_R_BAD_CERT_REQ_ID, "certReqId must be 0");
    }
    cr->cert_req_id = 0;
    t = crm->certReq->certTemplate;
    if (t->publicKey == NULL)
        return srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE,
                          "certTemplate has no public key");
    if ((r = cmp_spki_get1_checked(t->publicKey, &cr->pkey_owned,
                                   &cr->xpk_owned)) != CMP_R_OK)
        return srv_reject(ctx, r, NULL);
    cr->pubkey = cr->pkey_owned;
    cr->spki = cr->xpk_owned;
    cr->subject = t->subject;
    cr->exts = t->extensions;
    if (!check_pop)                 /* a held request, checked already */
        return CMP_R_OK;
    if (crm->popo != NULL && crm->popo->type == 0)
        return ctx->mode->ra_verified(ctx);
    /* POPOSigningKeyInput (a template without subject): its sender must
     * be the request's authenticated sender; publicKeyMAC needs the MAC
     * secret of the request (mac mode), else it is refused badPOP */
    memset(&auth, 0, sizeof(auth));
    auth.sender = ctx->req->header->sender;
    if (ctx->mac_secret != NULL) {
        auth.pkmac = srv_popo_pkmac;
        auth.pkmac_arg = ctx;
    }
    if ((r = cmp_crmf_verify_popo_auth(crm, cr->pubkey, &auth)) != CMP_R_OK)
        return srv_reject(ctx, r, NULL);
    return CMP_R_OK;
}

/* Reads a PKCS#10 request; its self-signature is the POP. */
static enum cmp_reason srv_certreq_p10(struct srv_ctx *ctx, X509_REQ *csr,
                                       struct srv_certreq *cr)
{
    enum cmp_reason r;

    cr->cert_req_id = -1;
    if ((r = cmp_p10_verify_pop(csr, &cr->pubkey)) != CMP_R_OK) {
        ERR_clear_error();
        return srv_reject(ctx, r, NULL);
    }
    cr->spki = X509_REQ_get_X509_PUBKEY(csr);
    cr->subject = X509_REQ_get_subject_name(csr);
    cr->csr_exts = X509_REQ_get_extensions(csr);
    cr->exts = cr->csr_exts;
    ERR_clear_error();
    return CMP_R_OK;
}

/* Template variables: those of ca_vars_lookup, plus, for requests signed
 * with an operator certificate (no vendor certificate at hand), the vendor
 * attribute that identifies the device, taken from the allow-list. */
struct srv_vars {
    struct ca_vars base;
    const char *id_var;        /* "vendor.serialNumber" (per device_id_attr) */
    const char *identifier;
    int have_vendor_cert;
};

static const char *srv_vars_lookup(void *arg, const char *name)
{
    struct srv_vars *v = arg;
    char id_var[80];

    if (!v->have_vendor_cert && v->identifier != NULL) {
        snprintf(id_var, sizeof(id_var), "vendor.%s", v->id_var);
        if (strcmp(name, id_var) == 0)
            return v->identifier;
    }
    return ca_vars_lookup(&v->base, name);
}

/* Key update rules: the oldCertID control (if sent) names the certificate
 * renewed (ctx->old_x509: the signer's, or the one an RA named), same
 * subject, a new key unless reuse is allowed. */
static enum cmp_reason srv_kur_check(struct srv_ctx *ctx,
                                     const struct srv_certreq *cr)
{
    const CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(ctx->req->body->value.kur, 0);
    X509 *old = ctx->old_x509;
    int malformed;
    OSSL_CRMF_CERTID *id = cmp_crmf_get1_old_cert_id(crm, &malformed);

    if (malformed)
        return srv_reject(ctx, CMP_R_BAD_REQUEST, "malformed oldCertID control");
    if (id != NULL) {
        const X509_NAME *iss = OSSL_CRMF_CERTID_get0_issuer(id);
        const ASN1_INTEGER *sn = OSSL_CRMF_CERTID_get0_serialNumber(id);

        if (iss == NULL || sn == NULL
            || X509_NAME_cmp(iss, X509_get_issuer_name(old)) != 0
            || ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(old)) != 0) {
            OSSL_CRMF_CERTID_free(id);
            ERR_clear_error();
            return srv_reject(ctx, CMP_R_BAD_CERT_ID,
                              "oldCertID does not name the certificate renewed");
        }
        OSSL_CRMF_CERTID_free(id);
    }
    if (cr->subject != NULL && X509_NAME_entry_count(cr->subject) > 0
        && X509_NAME_cmp(cr->subject, X509_get_subject_name(old)) != 0)
        return srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE,
                          "key update must keep the subject");
    if (ctx->alias->require_new_key
        && EVP_PKEY_eq(cr->pubkey, X509_get0_pubkey(old)) == 1)
        return srv_reject(ctx, CMP_R_KEY_REUSE, NULL);
    ERR_clear_error();
    return CMP_R_OK;
}

/* Submits |ireq| to the alias's issuer into |res|. */
static enum cmp_reason srv_submit(struct srv_ctx *ctx,
                                  const struct ca_issue_req *ireq,
                                  struct issuer_result *res)
{
    switch (issuer_submit(srv_profile_issuer(ctx), ireq,
                          ctx->device != NULL ? ctx->device->id : 0, res)) {
    case ISSUER_ISSUED:
        return CMP_R_OK;
    case ISSUER_REJECTED:
        return srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE, "%s", res->detail);
    case ISSUER_PENDING:
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE,
                        "delayed delivery is not offered on this alias");
    case ISSUER_UNAVAIL:
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s", res->detail);
    default:
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "%s", res->detail);
    }
}

/* A device sending a new ir while an earlier enrollment awaits its
 * certConf (the ip was lost): the earlier certificate counts as rejected,
 * as if its confirmWaitTime had passed. Updates ctx->device->state. */
static enum cmp_reason srv_supersede_pending(struct srv_ctx *ctx, STORE_TX *tx)
{
    struct store_cmp_txn **list = NULL;
    size_t n = 0, i;
    enum store_rc rc;
    enum cmp_reason r = CMP_R_OK;
    int back = ctx->device->cert_id != 0 ? STORE_DEV_ENROLLED
                                         : STORE_DEV_REGISTERED;

    rc = store_cmp_txn_list_waiting_device(tx, ctx->device->id, 16, &list, &n);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "pending enrollments");
    for (i = 0; i < n && r == CMP_R_OK; i++) {
        if (list[i]->type != STORE_CMP_IR && list[i]->type != STORE_CMP_P10CR)
            continue;
        if ((r = srv_txn_move(ctx, tx, list[i], STORE_CMP_WAITING_CONFIRM,
                              STORE_CMP_EXPIRED)) == CMP_R_OK
            && !srv_revoke_in_tx(ctx, tx, list[i]->cert_id, 5,
                                 "superseded by a new ir before certConf"))
            r = srv_fail(ctx, ctx->reason, "%s", ctx->detail);
    }
    store_cmp_txn_list_free(list, n);
    if (r != CMP_R_OK)
        return r;
    rc = store_device_set_state(tx, ctx->device->id, STORE_DEV_PENDING, back,
                                STORE_KEEP_CERT);
    if (rc == STORE_CONFLICT || rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "device %s changed state meanwhile", ctx->device_label);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "device state");
    ctx->device->state = back;
    return CMP_R_OK;
}

/* Records device state, certificate (with its audit row, through the
 * issuer) and transaction in one durable store transaction. */
static enum cmp_reason srv_enroll_commit(struct srv_ctx *ctx,
                                         struct issuer_result *res,
                                         const CMP_MSG *rsp,
                                         long cert_req_id, int implicit,
                                         int type,
                                         const struct store_cmp_txn *waiting)
{
    struct issuer_audit audit;
    char actor[300], tid[140];
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;
    int first = type == CMP_BODY_IR || type == CMP_BODY_P10CR;
    int64_t cert_id = 0;

    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if (first && ctx->device != NULL
        && ctx->device->state == STORE_DEV_PENDING
        && (r = srv_supersede_pending(ctx, tx)) != CMP_R_OK)
        goto err;
    if (first && ctx->device != NULL) {
        /* Only one enrollment of a device may be in flight. */
        rc = store_device_set_state(tx, ctx->device->id, ctx->device->state,
                                    implicit ? STORE_DEV_ENROLLED
                                             : STORE_DEV_PENDING,
                                    STORE_KEEP_CERT);
        if (rc == STORE_CONFLICT || rc == STORE_NOTFOUND) {
            r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                         "device %s changed state meanwhile",
                         ctx->device_label);
            goto err;
        }
        if (rc != STORE_OK) {
            r = srv_store_reason(ctx, rc, "device state");
            goto err;
        }
    }
    srv_audit_fill(ctx, &audit, actor, sizeof(actor), tid, sizeof(tid));
    audit.request = cmp_body_type_name(type);  /* not the pollReq's */
    switch (issuer_record(srv_profile_issuer(ctx), tx, res, &audit,
                          &cert_id)) {
    case ISSUER_ISSUED:
        break;
    case ISSUER_UNAVAIL:
        r = srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s", res->detail);
        goto err;
    default:
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "%s", res->detail);
        goto err;
    }
    if (implicit && ctx->device != NULL && type != CMP_BODY_CR) {
        rc = store_device_set_state(tx, ctx->device->id,
                                    first ? STORE_DEV_ENROLLED
                                          : ctx->device->state,
                                    STORE_DEV_ENROLLED, cert_id);
        if (rc != STORE_OK) {
            r = srv_store_reason(ctx, rc, "device state");
            goto err;
        }
    }
    /* implicitConfirm: the enrollment is final now */
    if (implicit && ctx->mode->finalised != NULL
        && (r = ctx->mode->finalised(ctx, tx, NULL)) != CMP_R_OK)
        goto err;
    if (waiting != NULL)            /* a held request, approved */
        r = srv_poll_delivered(ctx, tx, waiting,
                               implicit ? STORE_CMP_CONFIRMED
                                        : STORE_CMP_WAITING_CONFIRM,
                               cert_id, rsp->header->senderNonce);
    else
        r = srv_txn_open(ctx, tx, implicit ? STORE_CMP_CONFIRMED
                                           : STORE_CMP_WAITING_CONFIRM,
                         cert_req_id, cert_id,
                         type == CMP_BODY_KUR && ctx->old_cert != NULL
                             ? ctx->old_cert->id : 0,
                         rsp->header->senderNonce);
    if (r != CMP_R_OK)
        goto err;
    /* The certificate is durable before anyone sees it. */
    if ((rc = store_commit(tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "commit");
    return CMP_R_OK;
 err:
    store_rollback(tx);
    return r;
}

/* The operation of a certificate request body. */
static enum srv_op srv_enroll_op(int type)
{
    switch (type) {
    case CMP_BODY_IR: return SRV_OP_IR;
    case CMP_BODY_CR: return SRV_OP_CR;
    case CMP_BODY_KUR: return SRV_OP_KUR;
    default: return SRV_OP_P10CR;
    }
}

static enum cmp_reason srv_enroll_issue(struct srv_ctx *ctx, int type,
                                        struct srv_certreq *cr,
                                        int implicit_asked,
                                        const struct store_cmp_txn *waiting,
                                        CMP_MSG **rsp_out);

enum cmp_reason srv_enroll(struct srv_ctx *ctx, CMP_MSG **rsp_out)
{
    struct srv_alias *a = ctx->alias;
    const CMP_BODY *body = ctx->req->body;
    const struct srv_mode *m = ctx->mode;
    struct srv_certreq cr;
    enum cmp_reason r;
    enum srv_op op = srv_enroll_op(body->type);
    int type = body->type;

    memset(&cr, 0, sizeof(cr));
    *rsp_out = NULL;
    ctx->cert_req_id = type == CMP_BODY_P10CR ? -1 : 0;
    /* who is asking, for what, and is this a new transaction? */
    if ((r = m->verify(ctx)) != CMP_R_OK
        || (r = srv_txn_check_unused(ctx)) != CMP_R_OK
        || (r = m->authenticate(ctx, op)) != CMP_R_OK
        || (r = srv_profile_choose(ctx, op)) != CMP_R_OK
        || (r = m->authorise(ctx, op)) != CMP_R_OK
        || (r = srv_limits_check(ctx)) != CMP_R_OK)
        goto end;
    /* what it asks for */
    if (type == CMP_BODY_P10CR)
        r = srv_certreq_p10(ctx, body->value.p10cr, &cr);
    else
        r = srv_certreq_crmf(ctx, body->value.ir, &cr, 1);
    if (r != CMP_R_OK)
        goto end;
    if (type == CMP_BODY_KUR && (r = srv_kur_check(ctx, &cr)) != CMP_R_OK)
        goto end;
    /* no subject asked for: the mode may name one (cert mode: the
     * signer's own) */
    if ((cr.subject == NULL || X509_NAME_entry_count(cr.subject) == 0)
        && ctx->subject_default != NULL)
        cr.subject = ctx->subject_default;
    /* a request made for a device the store does not know (an RA's)
     * is named by its subject */
    if (ctx->device_label[0] == '\0')
        srv_label_from_name(ctx, cr.subject);
    if (a->approval_manual) {
        /* delayed delivery: an operator decides, the client polls */
        r = srv_poll_hold(ctx, cr.subject, rsp_out);
        goto end;
    }
    r = srv_enroll_issue(ctx, type, &cr,
                         cmp_hdr_has_implicit_confirm(ctx->req->header), NULL,
                         rsp_out);
 end:
    srv_certreq_clear(&cr);
    return r;
}

/* Issues |cr| (of a request of body |type|; |implicit_asked|: it asked
 * for implicitConfirm), records it and answers in *rsp_out. |waiting|:
 * the transaction of a held request being delivered, else NULL (a new
 * transaction is recorded). */
static enum cmp_reason srv_enroll_issue(struct srv_ctx *ctx, int type,
                                        struct srv_certreq *cr,
                                        int implicit_asked,
                                        const struct store_cmp_txn *waiting,
                                        CMP_MSG **rsp_out)
{
    struct srv_alias *a = ctx->alias;
    const struct srv_mode *m = ctx->mode;
    struct srv_vars vars;
    struct ca_issue_req ireq;
    struct issuer_result res;
    CMP_MSG *rsp = NULL;
    enum cmp_reason r;
    int rsp_type, implicit;

    memset(&res, 0, sizeof(res));
    /* issue (outside the store transaction: signing needs no lock) */
    memset(&vars, 0, sizeof(vars));
    vars.base.vendor = ctx->vendor_cert != NULL
        ? X509_get_subject_name(ctx->vendor_cert) : NULL;
    vars.base.request = cr->subject;
    vars.base.device_id = ctx->device != NULL ? ctx->device->identifier : NULL;
    vars.base.alias = a->name;
    vars.have_vendor_cert = ctx->vendor_cert != NULL;
    vars.identifier = vars.base.device_id;
    vars.id_var = OBJ_nid2sn(a->device_id_nid);
    memset(&ireq, 0, sizeof(ireq));
    ireq.pubkey = cr->pubkey;
    ireq.spki = cr->spki;
    ireq.subject = cr->subject;
    ireq.exts = cr->exts;
    ireq.vars = srv_vars_lookup;
    ireq.vars_arg = &vars;
    ireq.now = ctx->now;
    ireq.vendor_cert = ctx->vendor_cert;  /* recorded with the certificate */
    /* signed with the response that carries it when the alias signs its
     * answers (not a MAC mode's, not a held request's or a nested one's,
     * whose answers are made elsewhere) */
    if (m->protect == NULL && waiting == NULL && ctx->depth == 0
        && a->rsp_signer != NULL)
        ireq.defer = &res.defer;
    if (type == CMP_BODY_KUR)
        ireq.force_subject = X509_get_subject_name(ctx->old_x509);
    if ((r = srv_submit(ctx, &ireq, &res)) != CMP_R_OK)
        goto end;
    /* the response header first: its senderNonce goes into the state */
    rsp_type = type == CMP_BODY_IR ? CMP_BODY_IP
        : type == CMP_BODY_KUR ? CMP_BODY_KUP : CMP_BODY_CP;
    if ((rsp = srv_rsp_new(ctx, rsp_type)) == NULL) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response");
        goto end;
    }
    implicit = m->implicit_confirm(ctx) && implicit_asked;
    /* the whole response before the commit: once the certificate is
     * stored, nothing of the enrollment is left to fail */
    if (!(implicit ? cmp_hdr_push_implicit_confirm(rsp->header)
                   : cmp_hdr_push_confirm_wait_time(rsp->header,
                                                    ctx->now + a->confirm_wait))
        || !cmp_body_set_certrep(rsp, cr->cert_req_id,
                                 cmp_pkisi_new(CMP_STATUS_ACCEPTED, -1, NULL),
                                 res.cert.der, res.cert.der_len,
                                 type == CMP_BODY_KUR || type == CMP_BODY_CR
                                     ? NULL : a->ca_pubs)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response body");
        goto end;
    }
    if (res.defer.signer != NULL
        && (r = srv_protect_issued(ctx, rsp, &res)) != CMP_R_OK)
        goto end;
    if ((r = srv_enroll_commit(ctx, &res, rsp, cr->cert_req_id,
                               implicit, type, waiting)) != CMP_R_OK)
        goto end;
    ctx->issued = 1;
    metrics_cert_issued(a->name);
    *rsp_out = rsp;
    rsp = NULL;
 end:
    issuer_result_clear(&res);
    CMP_MSG_free(rsp);
    return r;
}

enum cmp_reason srv_enroll_deliver(struct srv_ctx *ctx, const CMP_MSG *orig,
                                   const struct store_cmp_txn *waiting,
                                   CMP_MSG **rsp)
{
    const CMP_BODY *body = orig->body;
    struct srv_certreq cr;
    enum cmp_reason r;

    memset(&cr, 0, sizeof(cr));
    *rsp = NULL;
    ctx->cert_req_id = body->type == CMP_BODY_P10CR ? -1 : 0;
    if (body->type == CMP_BODY_P10CR)
        r = srv_certreq_p10(ctx, body->value.p10cr, &cr);
    else if (body->type == CMP_BODY_IR || body->type == CMP_BODY_CR
             || body->type == CMP_BODY_KUR)
        r = srv_certreq_crmf(ctx, body->value.ir, &cr, 0);
    else
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "held request of type %s",
                     cmp_body_type_name(body->type));
    if (r == CMP_R_OK && body->type == CMP_BODY_KUR && ctx->old_x509 == NULL)
        r = srv_fail(ctx, CMP_R_BAD_CERT_ID,
                     "the certificate the held kur renews is gone");
    if (r == CMP_R_OK && ctx->device_label[0] == '\0')
        srv_label_from_name(ctx, cr.subject);
    if (r == CMP_R_OK)
        r = srv_enroll_issue(ctx, body->type, &cr,
                             cmp_hdr_has_implicit_confirm(orig->header),
                             waiting, rsp);
    srv_certreq_clear(&cr);
    return r;
}
