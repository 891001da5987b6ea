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

#include <jansson.h>
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

/* Reads one CertReqMsg: certReqId 0, a public key, POP by signature. */
static enum cmp_reason srv_certreq_crmf(struct srv_ctx *ctx,
                                       const STACK_OF(CMP_CERTREQMSG) *msgs,
                                       struct srv_certreq *cr)
{
    const CMP_CERTREQMSG *crm;
    const CMP_CERTTEMPLATE *t;
    int64_t id;
    enum cmp_reason r;

    if (sk_CMP_CERTREQMSG_num(msgs) != 1)
        return srv_fail(ctx, CMP_R_BAD_REQUEST,
                       "exactly one CertReqMsg is accepted, got %d",
                       sk_CMP_CERTREQMSG_num(msgs));
    crm = sk_CMP_CERTREQMSG_value(msgs, 0);
    if (!ASN1_INTEGER_get_int64(&id, crm->certReq->certReqId) || id != 0) {
        ERR_clear_error();
        return srv_fail(ctx, CMP_R_BAD_CERT_REQ_ID, "certReqId must be 0");
    }
    cr->cert_req_id = 0;
    t = crm->certReq->certTemplate;
    if (t->publicKey == NULL
        || !cmp_spki_get1(t->publicKey, &cr->pkey_owned, &cr->xpk_owned))
        return srv_fail(ctx, CMP_R_BAD_CERT_TEMPLATE,
                       "certTemplate has no usable public key");
    cr->pubkey = cr->pkey_owned;
    cr->spki = cr->xpk_owned;
    cr->subject = t->subject;
    cr->exts = t->extensions;
    if ((r = cmp_crmf_verify_popo(crm, cr->pubkey)) != CMP_R_OK)
        return srv_fail(ctx, r, NULL);
    return CMP_R_OK;
}

/* Reads a PKCS#10 request; its self-signature is the POP. */
static enum cmp_reason srv_certreq_p10(struct srv_ctx *ctx, X509_REQ *csr,
                                      struct srv_certreq *cr)
{
    cr->cert_req_id = -1;
    if ((cr->pubkey = X509_REQ_get0_pubkey(csr)) == NULL) {
        ERR_clear_error();
        return srv_fail(ctx, CMP_R_BAD_CERT_TEMPLATE, "CSR has no usable key");
    }
    if (X509_REQ_verify(csr, cr->pubkey) <= 0) {
        ERR_clear_error();
        return srv_fail(ctx, CMP_R_BAD_POP, "CSR signature does not verify");
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

/* Key update rules: the oldCertID control (if sent) names the signing
 * certificate, same subject, a new key unless reuse is allowed. */
static enum cmp_reason srv_kur_check(struct srv_ctx *ctx,
                                    const struct srv_certreq *cr)
{
    const CMP_CERTREQMSG *crm = sk_CMP_CERTREQMSG_value(ctx->req->body->value.kur, 0);
    int malformed;
    OSSL_CRMF_CERTID *old = cmp_crmf_get1_old_cert_id(crm, &malformed);

    if (malformed)
        return srv_fail(ctx, CMP_R_BAD_REQUEST, "malformed oldCertID control");
    if (old != NULL) {
        const X509_NAME *iss = OSSL_CRMF_CERTID_get0_issuer(old);
        const ASN1_INTEGER *sn = OSSL_CRMF_CERTID_get0_serialNumber(old);

        if (iss == NULL || sn == NULL
            || X509_NAME_cmp(iss, X509_get_issuer_name(ctx->signer)) != 0
            || ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(ctx->signer)) != 0) {
            OSSL_CRMF_CERTID_free(old);
            ERR_clear_error();
            return srv_fail(ctx, CMP_R_BAD_CERT_ID,
                           "oldCertID does not name the signing certificate");
        }
        OSSL_CRMF_CERTID_free(old);
    }
    if (cr->subject != NULL && X509_NAME_entry_count(cr->subject) > 0
        && X509_NAME_cmp(cr->subject, X509_get_subject_name(ctx->signer)) != 0)
        return srv_fail(ctx, CMP_R_BAD_CERT_TEMPLATE,
                       "key update must keep the subject");
    if (ctx->alias->require_new_key
        && EVP_PKEY_eq(cr->pubkey, X509_get0_pubkey(ctx->signer)) == 1)
        return srv_fail(ctx, CMP_R_KEY_REUSE, NULL);
    ERR_clear_error();
    return CMP_R_OK;
}

enum cmp_reason srv_txn_check_unused(struct srv_ctx *ctx)
{
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    struct store_cmp_txn *txn = NULL;
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_cmp_txn_get(tx, ASN1_STRING_get0_data(tid),
                           (size_t)ASN1_STRING_length(tid), &txn);
    store_cmp_txn_free(txn);
    if (rc == STORE_OK)
        return srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE, NULL);
    if (rc != STORE_NOTFOUND)
        return srv_store_reason(ctx, rc, "transaction lookup");
    return CMP_R_OK;
}

static enum cmp_reason srv_issue_reason(struct srv_ctx *ctx, enum ca_issue_rc rc,
                                       const char *err)
{
    switch (rc) {
    case CA_ISSUE_OK:
        return CMP_R_OK;
    case CA_ISSUE_BAD_KEY:
    case CA_ISSUE_BAD_SUBJECT:
    case CA_ISSUE_BAD_EXT:
        return srv_fail(ctx, CMP_R_BAD_CERT_TEMPLATE, "%s", err);
    case CA_ISSUE_EXPIRED:
    case CA_ISSUE_STORE:
        return srv_fail(ctx, CMP_R_SYSTEM_UNAVAIL, "%s", err);
    default:
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "%s", err);
    }
}

/* Appends the issuance audit row for certificate |rec|. */
static enum store_rc srv_audit_issue(struct srv_ctx *ctx, STORE_TX *tx,
                                    const struct store_cert *rec, int type)
{
    char actor[300], serial[2 * STORE_SERIAL_MAX + 1], tid[40];
    json_t *j;
    char *details;
    enum store_rc rc;
    size_t i;

    for (i = 0; i < rec->serial_len && i < STORE_SERIAL_MAX; i++)
        snprintf(serial + 2 * i, 3, "%02x", rec->serial[i]);
    serial[2 * i] = '\0';
    j = json_pack("{s:s, s:s, s:s, s:s}", "alias", ctx->alias->name,
                  "request", cmp_body_type_name(type), "device",
                  ctx->device_label,
                  "transactionID", cmp_hex(ctx->req->header->transactionID,
                                           tid, sizeof(tid)));
    details = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rc = store_audit_append(tx, srv_actor(ctx, actor, sizeof(actor)),
                            "cert.issue", serial, details);
    free(details);
    json_decref(j);
    return rc;
}

/* Issues a certificate for |ireq| into |rec| (cleared first). */
static enum cmp_reason srv_cert_issue(struct srv_ctx *ctx,
                                     const struct ca_issue_req *ireq,
                                     struct store_cert *rec)
{
    char err[256];
    enum ca_issue_rc irc;

    ca_store_cert_clear(rec);
    irc = ca_issue_der(ctx->alias->ca, ctx->alias->profile, ireq,
                       ctx->device != NULL ? ctx->device->id : 0, rec, err,
                       sizeof(err));
    return srv_issue_reason(ctx, irc, err);
}

/* Inserts |rec| and re-issues it with a fresh serial on the (2^-159)
 * chance of a collision. */
static enum cmp_reason srv_cert_insert(struct srv_ctx *ctx, STORE_TX *tx,
                                      const struct ca_issue_req *ireq,
                                      struct store_cert *rec, int64_t *cert_id)
{
    enum store_rc rc = STORE_EXISTS;
    enum cmp_reason r;
    int tries;

    for (tries = 0; tries < 4 && rc == STORE_EXISTS; tries++) {
        if (tries > 0 && (r = srv_cert_issue(ctx, ireq, rec)) != CMP_R_OK)
            return r;
        rc = store_cert_insert(tx, rec, cert_id);
    }
    return rc == STORE_OK ? CMP_R_OK : srv_store_reason(ctx, rc, "store certificate");
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
        rc = store_cmp_txn_set_state(tx, list[i]->tid, list[i]->tid_len,
                                     STORE_CMP_WAITING_CONFIRM,
                                     STORE_CMP_EXPIRED);
        if (rc != STORE_OK)
            r = srv_store_reason(ctx, rc, "supersede");
        else if (!srv_revoke_in_tx(ctx, tx, list[i]->cert_id, 5,
                                  "superseded by a new ir before certConf"))
            r = ctx->reason;
    }
    store_cmp_txn_list_free(list, n);
    if (r != CMP_R_OK)
        return r;
    rc = store_device_set_state(tx, ctx->device->id, STORE_DEV_PENDING, back,
                                STORE_KEEP_CERT);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "device state");
    ctx->device->state = back;
    return CMP_R_OK;
}

/* Records device state, certificate, transaction and audit row in one
 * durable transaction. */
static enum cmp_reason srv_enroll_commit(struct srv_ctx *ctx,
                                        const struct ca_issue_req *ireq,
                                        struct store_cert *cert,
                                        const CMP_MSG *rsp,
                                        long cert_req_id, int implicit)
{
    const CMP_HDR *rh = rsp->header;
    const ASN1_OCTET_STRING *tid = ctx->req->header->transactionID;
    struct store_cmp_txn txn;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;
    int type = ctx->req->body->type;
    int64_t cert_id = 0;

    memset(&txn, 0, sizeof(txn));
    if ((rc = srv_write_begin(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((type == CMP_BODY_IR || type == CMP_BODY_P10CR)
        && ctx->device->state == STORE_DEV_PENDING
        && (r = srv_supersede_pending(ctx, tx)) != CMP_R_OK)
        goto err;
    if (type == CMP_BODY_IR || type == CMP_BODY_P10CR) {
        /* Only one enrollment of a device may be in flight. */
        rc = store_device_set_state(tx, ctx->device->id, ctx->device->state,
                                    implicit ? STORE_DEV_ENROLLED
                                             : STORE_DEV_PENDING,
                                    STORE_KEEP_CERT);
        if (rc == STORE_CONFLICT || rc == STORE_NOTFOUND) {
            r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "device %s changed state meanwhile", ctx->device_label);
            goto err;
        }
        if (rc != STORE_OK) {
            r = srv_store_reason(ctx, rc, "device state");
            goto err;
        }
    }
    if ((r = srv_cert_insert(ctx, tx, ireq, cert, &cert_id)) != CMP_R_OK)
        goto err;
    if (implicit && (type == CMP_BODY_IR || type == CMP_BODY_P10CR
                     || type == CMP_BODY_KUR)) {
        rc = store_device_set_state(tx, ctx->device->id,
                                    type == CMP_BODY_KUR ? ctx->device->state
                                                         : STORE_DEV_ENROLLED,
                                    STORE_DEV_ENROLLED, cert_id);
        if (rc != STORE_OK) {
            r = srv_store_reason(ctx, rc, "device state");
            goto err;
        }
    }
    memcpy(txn.tid, ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid));
    txn.tid_len = (size_t)ASN1_STRING_length(tid);
    txn.alias = ctx->alias->name;
    txn.type = type == CMP_BODY_IR ? STORE_CMP_IR : type == CMP_BODY_CR
        ? STORE_CMP_CR : type == CMP_BODY_KUR ? STORE_CMP_KUR : STORE_CMP_P10CR;
    txn.state = implicit ? STORE_CMP_CONFIRMED : STORE_CMP_WAITING_CONFIRM;
    txn.cert_req_id = (int)cert_req_id;
    txn.created = ctx->now;
    txn.deadline = ctx->now + ctx->alias->confirm_wait;
    memcpy(txn.requester_sha256, ctx->signer_sha256, 32);
    txn.has_requester = 1;
    memcpy(txn.sender_nonce, ASN1_STRING_get0_data(rh->senderNonce),
           (size_t)ASN1_STRING_length(rh->senderNonce));
    txn.sender_nonce_len = (size_t)ASN1_STRING_length(rh->senderNonce);
    txn.cert_id = cert_id;
    txn.old_cert_id = type == CMP_BODY_KUR && ctx->signer_cert != NULL
        ? ctx->signer_cert->id : 0;
    txn.device_id = ctx->device != NULL ? ctx->device->id : 0;
    rc = store_cmp_txn_insert(tx, &txn);
    if (rc == STORE_EXISTS) {
        r = srv_fail(ctx, CMP_R_TRANSACTION_ID_IN_USE, NULL);
        goto err;
    }
    if (rc != STORE_OK || (rc = srv_audit_issue(ctx, tx, cert, type)) != STORE_OK) {
        r = srv_store_reason(ctx, rc, "record transaction");
        goto err;
    }
    /* The certificate is durable before anyone sees it. */
    if ((rc = store_commit(tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "commit");
    return CMP_R_OK;
 err:
    store_rollback(tx);
    return r;
}

enum cmp_reason srv_enroll(struct srv_ctx *ctx, CMP_MSG **rsp_out)
{
    struct srv_alias *a = ctx->alias;
    const CMP_BODY *body = ctx->req->body;
    struct srv_certreq cr;
    struct srv_vars vars;
    struct ca_issue_req ireq;
    CMP_MSG *rsp = NULL;
    struct store_cert cert;         /* the issued certificate, as stored */
    enum cmp_reason r;
    int type = body->type, rsp_type, implicit;

    memset(&cr, 0, sizeof(cr));
    memset(&cert, 0, sizeof(cert));
    *rsp_out = NULL;
    /* who is asking, and is this a new transaction? */
    if ((r = srv_auth_signature(ctx)) != CMP_R_OK
        || (r = srv_txn_check_unused(ctx)) != CMP_R_OK)
        goto end;
    if (type == CMP_BODY_IR || type == CMP_BODY_P10CR)
        r = a->mode->auth_initial(ctx);
    else
        r = srv_auth_operator_cert(ctx);
    if (r != CMP_R_OK)
        goto end;
    /* kur renews the certificate that signs it: any valid certificate of
     * this CA held by the device (its main one, or one from a cr). */
    if (type == CMP_BODY_CR && ctx->device->state != STORE_DEV_ENROLLED) {
        r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is not enrolled",
                    ctx->device_label);
        goto end;
    }
    /* what it asks for */
    if (type == CMP_BODY_P10CR)
        r = srv_certreq_p10(ctx, body->value.p10cr, &cr);
    else
        r = srv_certreq_crmf(ctx, body->value.ir, &cr);
    if (r != CMP_R_OK)
        goto end;
    if (type == CMP_BODY_KUR && (r = srv_kur_check(ctx, &cr)) != CMP_R_OK)
        goto end;
    /* issue (outside the store transaction: signing needs no lock) */
    memset(&vars, 0, sizeof(vars));
    vars.base.vendor = ctx->vendor_cert != NULL
        ? X509_get_subject_name(ctx->vendor_cert) : NULL;
    vars.base.request = cr.subject;
    vars.base.device_id = ctx->device != NULL ? ctx->device->identifier : NULL;
    vars.base.alias = a->name;
    vars.have_vendor_cert = ctx->vendor_cert != NULL;
    vars.identifier = vars.base.device_id;
    vars.id_var = OBJ_nid2sn(a->device_id_nid);
    memset(&ireq, 0, sizeof(ireq));
    ireq.pubkey = cr.pubkey;
    ireq.spki = cr.spki;
    ireq.subject = cr.subject;
    ireq.exts = cr.exts;
    ireq.vars = srv_vars_lookup;
    ireq.vars_arg = &vars;
    ireq.now = ctx->now;
    if (type == CMP_BODY_KUR)
        ireq.force_subject = X509_get_subject_name(ctx->signer);
    if ((r = srv_cert_issue(ctx, &ireq, &cert)) != CMP_R_OK)
        goto end;
    /* the response header first: its senderNonce goes into the state */
    rsp_type = type == CMP_BODY_IR ? CMP_BODY_IP
        : type == CMP_BODY_KUR ? CMP_BODY_KUP : CMP_BODY_CP;
    if ((rsp = srv_rsp_new(ctx, rsp_type)) == NULL) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response");
        goto end;
    }
    implicit = a->mode->allow_implicit_confirm
        && cmp_hdr_has_implicit_confirm(ctx->req->header);
    /* the whole response before the commit: once the certificate is
     * stored, nothing of the enrollment is left to fail */
    if (!(implicit ? cmp_hdr_push_implicit_confirm(rsp->header)
                   : cmp_hdr_push_confirm_wait_time(rsp->header,
                                                    ctx->now + a->confirm_wait))
        || !cmp_body_set_certrep(rsp, cr.cert_req_id,
                                 cmp_pkisi_new(CMP_STATUS_ACCEPTED, -1, NULL),
                                 cert.der, cert.der_len,
                                 type == CMP_BODY_KUR || type == CMP_BODY_CR
                                     ? NULL : a->ca_pubs)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "response body");
        goto end;
    }
    if ((r = srv_enroll_commit(ctx, &ireq, &cert, rsp, cr.cert_req_id,
                              implicit)) != CMP_R_OK)
        goto end;
    ctx->issued = 1;
    metrics_cert_issued(a->name);
    *rsp_out = rsp;
    rsp = NULL;
 end:
    srv_certreq_clear(&cr);
    ca_store_cert_clear(&cert);
    CMP_MSG_free(rsp);
    return r;
}
