/*
 * The "cert" mode (EJBCA's EndEntityCertificate authentication): ir, cr,
 * p10cr, kur, rr, genm and certConf signed by a certificate that chains to
 * a CA trusted for the alias (`cert_trust`: CAs in the store, default the
 * alias CA; `cert_trust_file`: external CAs), valid now and not revoked
 * (our store's status for certificates of our CAs, the CRLs of
 * `cert_crl_file` for external ones). `cert_subjects` says which subjects
 * the holder may enroll: its own, any, or a device of the alias's
 * allow-list. allow_reenroll and key_update (require_new_key) apply as in
 * the other modes; `implicit_confirm` (read with the mac options for
 * every mode) grants implicitConfirm.
 */
#include "server/srv_int.h"

#include "cmp/cmp_spki.h"
#include "conf/conf.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- configuration -------------------------------------------------- */

int srv_cert_conf_load(struct srv_alias *a, const struct conf *conf,
                       const struct conf_section *sec, char *err,
                       size_t errlen)
{
    const char *subj = conf_get(sec, "cert_subjects");
    int is_cert = srv_alias_device_mode(a) == &srv_mode_cert, trust = 0;

    /* read all of them: conf_check_used knows them then */
    trust |= conf_get(sec, "cert_trust") != NULL;
    trust |= conf_get(sec, "cert_trust_file") != NULL;
    trust |= conf_get(sec, "cert_crl_file") != NULL;
    if (!is_cert && (subj != NULL || trust))
        return conf_err(conf, sec->line, err, errlen, "[alias %s]: cert_trust, "
                        "cert_trust_file, cert_crl_file and cert_subjects are "
                        "for mode = cert (or device_mode = cert)", sec->name);
    a->cert_subjects = SRV_CERT_SUBJECTS_OWN;
    if (subj != NULL) {
        if (strcmp(subj, "own") == 0)
            a->cert_subjects = SRV_CERT_SUBJECTS_OWN;
        else if (strcmp(subj, "any") == 0)
            a->cert_subjects = SRV_CERT_SUBJECTS_ANY;
        else if (strcmp(subj, "allowlist") == 0)
            a->cert_subjects = SRV_CERT_SUBJECTS_ALLOWLIST;
        else
            return conf_err(conf, sec->line, err, errlen, "[alias %s]: "
                            "cert_subjects must be own, any or allowlist",
                            sec->name);
    }
    return 1;
}

int srv_cert_trust_load(struct srv_alias *a, const struct conf *conf,
                        const struct conf_section *sec, STORE *store,
                        char *err, size_t errlen)
{
    struct srv_trust t = { &a->cert_store, &a->cert_trust, &a->cert_trust_ids };
    const char *crl_file = conf_get(sec, "cert_crl_file");
    STACK_OF(X509_INFO) *infos = NULL;
    BIO *bio = NULL;
    int i, n = 0, ok = 0;

    if (!srv_trust_load(a, conf, sec, store, "cert_trust", "cert_trust_file",
                        &t, err, errlen))
        return 0;
    if (crl_file == NULL)
        return 1;
    if ((bio = BIO_new_file(crl_file, "r")) == NULL
        || (infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL)) == NULL)
        goto end;
    for (i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_CRL *crl = sk_X509_INFO_value(infos, i)->crl;

        if (crl != NULL) {
            if (!X509_STORE_add_crl(a->cert_store, crl))
                goto end;
            n++;
        }
    }
    ok = n > 0;
    a->cert_have_crls = ok;
 end:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    ERR_clear_error();
    if (!ok)
        conf_err(conf, sec->line, err, errlen, "[alias %s]: cert_crl_file %s: "
                 "no CRLs", a->name, crl_file);
    return ok;
}

void srv_cert_clear(struct srv_alias *a)
{
    X509_STORE_free(a->cert_store);
    a->cert_store = NULL;
    sk_X509_pop_free(a->cert_trust, X509_free);
    a->cert_trust = NULL;
    free(a->cert_trust_ids);
    a->cert_trust_ids = NULL;
}

/* --- the signer ----------------------------------------------------- */

/* Validates the signer's path, now, to a CA trusted for the alias; sets
 * *ca_id to the issuing CA's store id (0: an external CA, whose CRL is
 * then checked when cert_crl_file is given). */
static enum cmp_reason mode_cert_path(struct srv_ctx *ctx, int64_t *ca_id)
{
    struct srv_alias *a = ctx->alias;
    X509_STORE_CTX *sctx = NULL;
    STACK_OF(X509) *chain;
    X509 *issuer;
    enum cmp_reason r = CMP_R_SIGNER_NOT_TRUSTED;
    int i, pass;

    *ca_id = 0;
    for (pass = 0; pass < 2; pass++) {
        X509_STORE_CTX_free(sctx);
        if ((sctx = X509_STORE_CTX_new()) == NULL
            || !X509_STORE_CTX_init(sctx, a->cert_store, ctx->rq.cert,
                                    ctx->req->extraCerts)) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "verify context");
            goto end;
        }
        X509_STORE_CTX_set_time(sctx, 0, ctx->now);
        if (pass == 1)
            X509_STORE_CTX_set_flags(sctx, X509_V_FLAG_CRL_CHECK);
        if (X509_verify_cert(sctx) <= 0) {
            srv_fail(ctx, r, "signer certificate: %s%s",
                     X509_verify_cert_error_string(
                         X509_STORE_CTX_get_error(sctx)),
                     pass == 1 ? " (cert_crl_file)" : "");
            goto end;
        }
        chain = X509_STORE_CTX_get0_chain(sctx);
        issuer = sk_X509_value(chain, sk_X509_num(chain) > 1 ? 1 : 0);
        for (i = 0; i < sk_X509_num(a->cert_trust); i++)
            if (X509_cmp(sk_X509_value(a->cert_trust, i), issuer) == 0)
                *ca_id = a->cert_trust_ids[i];
        /* external signers: once more, with their CA's CRL */
        if (*ca_id != 0 || !a->cert_have_crls)
            break;
    }
    r = CMP_R_OK;
 end:
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return r;
}

/* Does the rr name the signer certificate itself? */
static int mode_cert_rr_names_signer(const struct srv_ctx *ctx)
{
    return ctx->rr_serial != NULL && ctx->rr_issuer != NULL
        && ASN1_INTEGER_cmp(ctx->rr_serial,
                            X509_get0_serialNumber(ctx->rq.cert)) == 0
        && X509_NAME_cmp(ctx->rr_issuer,
                         X509_get_issuer_name(ctx->rq.cert)) == 0;
}

/* The signer is trusted, valid and not revoked. A certificate of one of
 * our CAs must be our record under its serial (this very DER); for a kur
 * it becomes ctx->old_cert (with its device). A revoked or held signer
 * may still send an rr for itself (answered certRevoked, or released). */
static enum cmp_reason mode_cert_trusted(struct srv_ctx *ctx, enum srv_op op,
                                         int64_t *ca_id)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(ctx->rq.cert);
    struct store_cert *rec = NULL;
    STORE_TX *tx = NULL;
    enum cmp_reason r;
    enum store_rc rc;

    if ((r = mode_cert_path(ctx, ca_id)) != CMP_R_OK)
        return r;
    ctx->rq.kind = SRV_RQ_CERT_HOLDER;
    if (*ca_id == 0)
        return CMP_R_OK;
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = ASN1_STRING_type(sn) == V_ASN1_INTEGER
        ? store_cert_get_by_serial(tx, *ca_id, ASN1_STRING_get0_data(sn),
                                   (size_t)ASN1_STRING_length(sn), &rec)
        : STORE_NOTFOUND;
    if (rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED, "the signer certificate "
                        "names a CA of this store but is not in it");
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "signer certificate lookup");
    if (CRYPTO_memcmp(rec->sha256, ctx->rq.cert_sha256, 32) != 0) {
        r = srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED, "the signer certificate "
                     "differs from the one issued under its serial number");
        goto end;
    }
    if (rec->status == STORE_CERT_REVOKED
        && !(op == SRV_OP_RR && mode_cert_rr_names_signer(ctx))) {
        r = srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                     "the signer certificate is %s",
                     rec->reason == STORE_REASON_HOLD ? "on hold" : "revoked");
        goto end;
    }
    r = CMP_R_OK;
    if (op == SRV_OP_KUR && *ca_id == ca_get_id(ctx->alias->ca)) {
        ctx->old_cert = rec;
        rec = NULL;
        if (ctx->old_cert->device_id != 0
            && (rc = store_device_get(tx, ctx->old_cert->device_id,
                                      &ctx->device)) != STORE_OK
            && rc != STORE_NOTFOUND)
            r = srv_store_reason(ctx, rc, "device lookup");
    }
 end:
    store_cert_free(rec);
    return r;
}

/* --- what is asked for ---------------------------------------------- */

/* The subject and key an ir/cr/p10cr asks for (borrowed; *pkey owned, may
 * be NULL when it does not decode: the handler refuses it then). */
static void mode_cert_request(const struct srv_ctx *ctx,
                              const X509_NAME **subject, EVP_PKEY **pkey)
{
    const CMP_BODY *body = ctx->req->body;
    X509_PUBKEY *xpk = NULL;

    *subject = NULL;
    *pkey = NULL;
    if (body->type == CMP_BODY_P10CR) {
        *subject = X509_REQ_get_subject_name(body->value.p10cr);
        if ((*pkey = X509_REQ_get0_pubkey(body->value.p10cr)) != NULL)
            EVP_PKEY_up_ref(*pkey);
    } else if (sk_CMP_CERTREQMSG_num(body->value.ir) >= 1) {
        const CMP_CERTTEMPLATE *t =
            sk_CMP_CERTREQMSG_value(body->value.ir, 0)->certReq->certTemplate;

        *subject = t->subject;
        if (t->publicKey != NULL
            && cmp_spki_get1_checked(t->publicKey, pkey, &xpk) != CMP_R_OK)
            *pkey = NULL;
        X509_PUBKEY_free(xpk);
    }
    if (*subject != NULL && X509_NAME_entry_count(*subject) == 0)
        *subject = NULL;
    ERR_clear_error();
}

/* cert_subjects = allowlist: the subject names (by device_id_attr) a
 * device registered for one of the alias's vendors that may enroll. */
static enum cmp_reason mode_cert_allowlist(struct srv_ctx *ctx,
                                           const X509_NAME *subject,
                                           enum srv_op op)
{
    struct srv_alias *a = ctx->alias;
    struct srv_vendor_trust *vt = NULL;
    char ident[256];
    STORE_TX *tx = NULL;
    enum store_rc rc = STORE_NOTFOUND;
    enum cmp_reason r = CMP_R_OK;
    size_t i;

    if (subject == NULL
        || !srv_name_attr(subject, a->device_id_nid, ident, sizeof(ident)))
        return srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE, "the requested "
                          "subject has no %s (cert_subjects = allowlist)",
                          OBJ_nid2sn(a->device_id_nid));
    snprintf(ctx->device_label, sizeof(ctx->device_label), "%s", ident);
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    vt = srv_alias_get1_vendor_trust(a);
    rc = STORE_NOTFOUND;
    for (i = 0; vt != NULL && i < vt->nanchors && rc == STORE_NOTFOUND; i++)
        if (i == 0 || vt->anchors[i].vendor_id != vt->anchors[i - 1].vendor_id)
            rc = store_device_get_by_ident(tx, vt->anchors[i].vendor_id, ident,
                                           &ctx->device);
    srv_vendor_trust_free(vt);
    if (rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is not "
                        "registered for alias %s", ident, a->name);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "device lookup");
    switch (ctx->device->state) {
    case STORE_DEV_REGISTERED:
        break;
    case STORE_DEV_DISABLED:
        r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is disabled", ident);
        break;
    case STORE_DEV_PENDING:
        if (ctx->device->cert_id != 0 && !a->allow_reenroll && op != SRV_OP_CR)
            r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is already "
                         "enrolled", ident);
        break;
    default:
        if (!a->allow_reenroll && op != SRV_OP_CR)
            r = srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is already %s",
                         ident, store_device_state_str(ctx->device->state));
        break;
    }
    return r;
}

/* A first enrollment (ir, p10cr) by a holder that enrolled before (its
 * certificate is one of ours, or it has enrollments in the store) needs
 * allow_reenroll. */
static enum cmp_reason mode_cert_reenroll(struct srv_ctx *ctx, int64_t ca_id)
{
    int64_t waiting = 0, recent = 0;
    STORE_TX *tx = NULL;
    enum store_rc rc;

    if (ctx->alias->allow_reenroll)
        return CMP_R_OK;
    if (ca_id != 0)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "the signer already holds "
                        "a certificate of this store (cr or kur renew it; "
                        "allow_reenroll is off on alias %s)",
                        ctx->alias->name);
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    if ((rc = store_cmp_txn_count_requester(tx, ctx->rq.id, 0, &waiting,
                                            &recent)) != STORE_OK)
        return srv_store_reason(ctx, rc, "requester's transactions");
    if (waiting + recent > 0)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "the signer enrolled "
                        "before (allow_reenroll is off on alias %s)",
                        ctx->alias->name);
    return CMP_R_OK;
}

/* --- the mode table ------------------------------------------------- */

static enum cmp_reason mode_cert_authenticate(struct srv_ctx *ctx,
                                              enum srv_op op)
{
    int64_t ca_id = 0;
    enum cmp_reason r;

    switch (op) {
    case SRV_OP_CERTCONF:
    case SRV_OP_ERROR:
        return CMP_R_OK;       /* the transaction names its requester */
    case SRV_OP_NESTED:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY,
                        "nested messages are for aliases in ra mode");
    default:
        break;
    }
    if ((r = mode_cert_trusted(ctx, op, &ca_id)) != CMP_R_OK)
        return r;
    if (ctx->device_label[0] == '\0')
        X509_NAME_oneline(X509_get_subject_name(ctx->rq.cert),
                          ctx->device_label, sizeof(ctx->device_label));
    if (op == SRV_OP_KUR && ctx->old_x509 == NULL) {
        /* kur renews the signer certificate (ours or an external one) */
        if (!X509_up_ref(ctx->rq.cert))
            return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "reference");
        ctx->old_x509 = ctx->rq.cert;
    }
    /* allowlist: the device's state says whether it enrolled before */
    if ((op == SRV_OP_IR || op == SRV_OP_P10CR)
        && ctx->alias->cert_subjects != SRV_CERT_SUBJECTS_ALLOWLIST)
        return mode_cert_reenroll(ctx, ca_id);
    return CMP_R_OK;
}

static enum cmp_reason mode_cert_authorise(struct srv_ctx *ctx, enum srv_op op)
{
    struct srv_alias *a = ctx->alias;
    const X509_NAME *own = X509_get_subject_name(ctx->rq.cert);
    const X509_NAME *subject;
    EVP_PKEY *pkey = NULL;
    enum cmp_reason r = CMP_R_OK;

    switch (op) {
    case SRV_OP_RR:
        if ((r = srv_auth_load_cert(ctx, ctx->rr_issuer, ctx->rr_serial))
            != CMP_R_OK)
            return r;
        /* the signer revokes itself, or a certificate of its own subject */
        if (CRYPTO_memcmp(ctx->old_cert->sha256, ctx->rq.cert_sha256, 32) != 0
            && X509_NAME_cmp(X509_get_subject_name(ctx->old_x509), own) != 0)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "the rr names a "
                            "certificate of another subject than the "
                            "signer's");
        return CMP_R_OK;
    case SRV_OP_IR:
    case SRV_OP_CR:
    case SRV_OP_P10CR:
        break;
    default:
        return CMP_R_OK;       /* kur keeps the subject; genm, certConf */
    }
    mode_cert_request(ctx, &subject, &pkey);
    switch (a->cert_subjects) {
    case SRV_CERT_SUBJECTS_OWN:
        if (subject != NULL && X509_NAME_cmp(subject, own) != 0) {
            r = srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE, "the requested "
                           "subject is not the signer's (cert_subjects = "
                           "own on alias %s)", a->name);
            goto end;
        }
        ctx->subject_default = own;
        break;
    case SRV_CERT_SUBJECTS_ALLOWLIST:
        if ((r = mode_cert_allowlist(ctx, subject, op)) != CMP_R_OK)
            goto end;
        break;
    default:
        break;
    }
    if (a->require_new_key && pkey != NULL
        && EVP_PKEY_eq(pkey, X509_get0_pubkey(ctx->rq.cert)) == 1)
        r = srv_reject(ctx, CMP_R_KEY_REUSE, "the requested key is the "
                       "signer's (key_update = new-key)");
 end:
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return r;
}

static enum cmp_reason mode_cert_ra_verified(struct srv_ctx *ctx)
{
    return srv_reject(ctx, CMP_R_BAD_POP,
                      "raVerified is accepted only from an authorised RA");
}

static int mode_cert_implicit_confirm(const struct srv_ctx *ctx)
{
    return ctx->alias->implicit_confirm;
}

const struct srv_mode srv_mode_cert = {
    "cert", srv_auth_signature, mode_cert_authenticate, mode_cert_authorise,
    mode_cert_ra_verified, mode_cert_implicit_confirm, NULL, NULL, NULL,
};
