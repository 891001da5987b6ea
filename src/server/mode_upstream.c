/*
 * The "upstream" mode: cmpca as the RA in front of another CMP CA (a cmpca
 * CA in ra mode, or any other). The RA applies its own device policy
 * first, exactly as a local alias in the device mode would: a first
 * enrollment must be signed with a vendor certificate chaining to a vendor
 * CA registered for the alias and naming a device on its allow-list (the
 * 3gpp mode's functions, through the mode table), the proof of possession
 * must verify; renewals, revocations and genm are signed with an operator
 * certificate that chains to the upstream's trust anchors. Only then is
 * the message forwarded (op_forward.c). This file also loads the upstream
 * part of the alias configuration.
 */
#include "server/srv_upstream.h"

#include "cmp/cmp_build.h"
#include "conf/conf.h"
#include "util/log.h"
#include "util/secret.h"

#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The signer is an operator certificate whose path validates, now, to the
 * upstream's trust anchors (the upstream CA checks its status itself). */
static enum cmp_reason mode_up_operator(struct srv_ctx *ctx)
{
    const struct srv_upstream *up = ctx->alias->up;
    X509_STORE_CTX *sctx = NULL;
    enum cmp_reason r = CMP_R_SIGNER_NOT_TRUSTED;

    if ((sctx = X509_STORE_CTX_new()) == NULL
        || !X509_STORE_CTX_init(sctx, up->trust, ctx->rq.cert,
                                ctx->req->extraCerts)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "verify context");
        goto end;
    }
    X509_STORE_CTX_set_time(sctx, 0, ctx->now);
    if (X509_verify_cert(sctx) <= 0) {
        srv_fail(ctx, r, "operator certificate: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        goto end;
    }
    ctx->rq.kind = SRV_RQ_OPERATOR_DEVICE;
    srv_label_from_name(ctx, X509_get_subject_name(ctx->rq.cert));
    r = CMP_R_OK;
 end:
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return r;
}

/* genm and the renewals: an operator certificate (upstream_trust), else
 * the device mode's first-enrollment signer (a vendor certificate in
 * 3gpp mode, a cert_trust_file certificate in cert mode). */
static enum cmp_reason mode_up_operator_or_device(struct srv_ctx *ctx,
                                                  enum srv_op op)
{
    const struct srv_mode *dm = ctx->alias->up->device_mode;
    int64_t vendor_id;
    enum cmp_reason r;

    if ((r = mode_up_operator(ctx)) == CMP_R_OK)
        return r;
    ctx->reason = CMP_R_OK;
    ctx->detail[0] = '\0';
    if (dm == &srv_mode_cert)
        return dm->authenticate(ctx, op);
    if ((r = srv_auth_vendor_path(ctx, &vendor_id)) != CMP_R_OK)
        return r;
    X509_NAME_oneline(X509_get_subject_name(ctx->rq.cert),
                      ctx->device_label, sizeof(ctx->device_label));
    return CMP_R_OK;
}

/* device_mode = mac, a request whose MAC verified (ctx->mac_rec): the mac
 * mode's checks (vendor, secret not consumed, device not disabled; kur
 * and rr refused under a MAC); certConf, error and pollReq belong to a
 * transaction the upstream knows. */
static enum cmp_reason mode_up_mac_authenticate(struct srv_ctx *ctx,
                                                enum srv_op op)
{
    switch (op) {
    case SRV_OP_CERTCONF:
    case SRV_OP_ERROR:
    case SRV_OP_POLL:
        return CMP_R_OK;
    default:
        return srv_mode_mac.authenticate(ctx, op);
    }
}

static enum cmp_reason mode_up_authenticate(struct srv_ctx *ctx,
                                            enum srv_op op)
{
    const struct srv_mode *dm = ctx->alias->up->device_mode;

    if (dm == &srv_mode_mac && ctx->mac_rec != NULL)
        return mode_up_mac_authenticate(ctx, op);
    switch (op) {
    case SRV_OP_IR:
    case SRV_OP_P10CR:
        /* the first-enrollment checks of the device mode, unchanged (mac:
         * a signed ir is refused there) */
        return dm->authenticate(ctx, op);
    case SRV_OP_CR:
        if (dm == &srv_mode_cert)
            return mode_up_operator_or_device(ctx, op);
        return mode_up_operator(ctx);
    case SRV_OP_KUR:
    case SRV_OP_RR:
        return mode_up_operator(ctx);
    case SRV_OP_GENM:
        return mode_up_operator_or_device(ctx, op);
    default:
        /* certConf, error, pollReq: the upstream knows the transaction */
        srv_label_from_name(ctx, X509_get_subject_name(ctx->rq.cert));
        return CMP_R_OK;
    }
}

/* rr: a device revokes the certificate that signs the rr. */
static enum cmp_reason mode_up_rr_own(struct srv_ctx *ctx)
{
    const STACK_OF(CMP_REVDETAILS) *rr = ctx->req->body->value.rr;
    const OSSL_CRMF_CERTTEMPLATE *t;
    const ASN1_INTEGER *sn;
    const X509_NAME *iss;

    if (sk_CMP_REVDETAILS_num(rr) != 1)
        return srv_reject(ctx, CMP_R_BAD_REQUEST,
                          "exactly one RevDetails is accepted");
    t = sk_CMP_REVDETAILS_value(rr, 0)->certDetails;
    sn = t != NULL ? OSSL_CRMF_CERTTEMPLATE_get0_serialNumber(t) : NULL;
    iss = t != NULL ? OSSL_CRMF_CERTTEMPLATE_get0_issuer(t) : NULL;
    if (sn == NULL || iss == NULL)
        return srv_reject(ctx, CMP_R_BAD_REQUEST,
                          "the rr names no issuer and serial number");
    if (ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(ctx->rq.cert)) != 0
        || X509_NAME_cmp(iss, X509_get_issuer_name(ctx->rq.cert)) != 0)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                        "the rr names another certificate than the one that "
                        "signs it (on alias %s a device revokes only its own "
                        "certificate)", ctx->alias->name);
    return CMP_R_OK;
}

static enum cmp_reason mode_up_authorise(struct srv_ctx *ctx, enum srv_op op)
{
    const struct srv_mode *dm = ctx->alias->up->device_mode;

    /* the device mode's view of what is asked for: the subject a MAC
     * device or a certificate holder may enroll (cert_subjects) */
    if (op == SRV_OP_IR || op == SRV_OP_CR || op == SRV_OP_P10CR) {
        if (dm == &srv_mode_mac && ctx->mac_rec != NULL)
            return dm->authorise(ctx, op);
        if (dm == &srv_mode_cert && ctx->rq.kind == SRV_RQ_CERT_HOLDER)
            return dm->authorise(ctx, op);
    }
    switch (op) {
    case SRV_OP_RR:
        return mode_up_rr_own(ctx);
    case SRV_OP_NESTED:
        return srv_fail(ctx, CMP_R_UNSUPPORTED_BODY,
                        "nested messages are for aliases in ra mode");
    default:
        return CMP_R_OK;
    }
}

static enum cmp_reason mode_up_ra_verified(struct srv_ctx *ctx)
{
    return srv_reject(ctx, CMP_R_BAD_POP,
                      "a device must prove possession itself; raVerified is "
                      "what this RA asserts upstream");
}

static int mode_up_implicit_confirm(const struct srv_ctx *ctx)
{
    return 0;
}

/* The device mode's protection check: a signature (3gpp, cert), or with
 * device_mode = mac the device's MAC by the secret its senderKID names. */
static enum cmp_reason mode_up_verify(struct srv_ctx *ctx)
{
    return ctx->alias->up->device_mode->verify(ctx);
}

/* Answers the RA builds itself (refusals, waiting, pollRep): to a request
 * whose MAC verified MAC-protected with the device's secret (the mac
 * mode's hook), else signed by the RA. */
static int mode_up_protect(struct srv_ctx *ctx, CMP_MSG *msg,
                           unsigned char **der, size_t *len)
{
    if (ctx->mac_secret != NULL)
        return srv_mode_mac.protect(ctx, msg, der, len);
    return srv_protect_signed(ctx, msg, der, len);
}

const struct srv_mode srv_mode_upstream = {
    "upstream", mode_up_verify, mode_up_authenticate, mode_up_authorise,
    mode_up_ra_verified, mode_up_implicit_confirm, mode_up_protect, NULL,
    srv_forward,
};

const struct srv_mode *srv_alias_device_mode(const struct srv_alias *a)
{
    if (a->mode == &srv_mode_upstream && a->up != NULL)
        return a->up->device_mode;
    return a->mode;
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

void srv_upstream_free(struct srv_upstream *up)
{
    if (up == NULL)
        return;
    upclient_free(up->uc);
    free(up->url);
    X509_STORE_free(up->trust);
    sk_X509_pop_free(up->anchors, X509_free);
    X509_free(up->ra_cert);
    sk_X509_pop_free(up->ra_chain, X509_free);
    ca_signer_free(up->ra_signer);
    if (up->mac != NULL)
        OPENSSL_clear_free(up->mac, up->mac_len);
    ASN1_OCTET_STRING_free(up->ra_kid);
    pthread_mutex_destroy(&up->seen_lock);
    free(up);
}

/* Reads the certificates of PEM file |path| into a new stack. */
static STACK_OF(X509) *mode_up_read_certs(const char *path)
{
    STACK_OF(X509_INFO) *infos = NULL;
    STACK_OF(X509) *out = NULL;
    BIO *bio = NULL;
    int i;

    if ((bio = BIO_new_file(path, "r")) == NULL
        || (infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL)) == NULL
        || (out = sk_X509_new_null()) == NULL)
        goto end;
    for (i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509 *x = sk_X509_INFO_value(infos, i)->x509;

        if (x != NULL && !X509_add_cert(out, x, X509_ADD_FLAG_UP_REF)) {
            sk_X509_pop_free(out, X509_free);
            out = NULL;
            goto end;
        }
    }
    if (sk_X509_num(out) == 0) {
        sk_X509_free(out);
        out = NULL;
    }
 end:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    ERR_clear_error();
    return out;
}

/* A directoryName GeneralName of |name|, encoded once (shared by threads). */
static int mode_up_dirname(const X509_NAME *name, GENERAL_NAME **out)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    X509_NAME *n = name != NULL ? X509_NAME_dup(name) : X509_NAME_new();

    *out = NULL;
    if (gn == NULL || n == NULL) {
        GENERAL_NAME_free(gn);
        X509_NAME_free(n);
        return 0;
    }
    GENERAL_NAME_set0_value(gn, GEN_DIRNAME, n);
    if (i2d_GENERAL_NAME(gn, NULL) <= 0) {
        GENERAL_NAME_free(gn);
        return 0;
    }
    *out = gn;
    return 1;
}

/* The RA's certificate, chain and key: they sign what the alias forwards
 * and everything it answers itself. */
static int mode_up_load_ra(struct srv_alias *a, struct srv_upstream *up,
                           const struct conf *conf,
                           const struct conf_section *sec, char *err,
                           size_t errlen)
{
    const char *certf = conf_get(sec, "ra_cert"), *keyf = conf_get(sec, "ra_key");
    const char *pass = conf_get(sec, "ra_key_pass");
    const ASN1_OCTET_STRING *kid;
    struct ca_signer_opts o;
    char kerr[256];

    if (certf == NULL || keyf == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: mode = upstream needs ra_cert and ra_key "
                        "(the RA signs its answers)", a->name);
    if ((up->ra_chain = mode_up_read_certs(certf)) == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: ra_cert %s: no certificate", a->name, certf);
    up->ra_cert = sk_X509_value(up->ra_chain, 0);
    X509_up_ref(up->ra_cert);
    memset(&o, 0, sizeof(o));
    o.pass_spec = pass;
    o.what = "RA key";
    kerr[0] = '\0';
    if (ca_signer_load(keyf, &o, &up->ra_signer, kerr, sizeof(kerr))
        != CA_SIGNER_OK)
        return conf_err(conf, sec->line, err, errlen, "[alias %s]: ra_key: %s",
                        a->name, kerr);
    if (!ca_signer_matches_cert(up->ra_signer, up->ra_cert))
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: ra_key does not belong to ra_cert", a->name);
    if ((kid = X509_get0_subject_key_id(up->ra_cert)) == NULL
        || (up->ra_kid = ASN1_OCTET_STRING_dup(kid)) == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: ra_cert has no subjectKeyIdentifier "
                        "(RFC 9483 3.1 needs senderKID)", a->name);
    a->rsp_cert = up->ra_cert;
    a->rsp_signer = up->ra_signer;
    a->rsp_chain = up->ra_chain;
    if (!cmp_extracerts_der(NULL, a->rsp_chain, NULL, &a->rsp_extra,
                            &a->rsp_extra_len)
        || !mode_up_dirname(X509_get_subject_name(a->rsp_cert), &a->rsp_sender)
        || !mode_up_dirname(NULL, &a->rsp_nobody)) {
        snprintf(err, errlen, "[alias %s]: cannot encode the RA certificates",
                 a->name);
        return 0;
    }
    return 1;
}

static int mode_up_load_client(struct srv_alias *a, struct srv_upstream *up,
                               const struct conf *conf,
                               const struct conf_section *sec, char *err,
                               size_t errlen)
{
    struct upclient_conf uc;
    long timeout, retries, max_rsp;
    char uerr[256];

    if (!conf_get_duration(conf, sec, "upstream_timeout", 10, 1, 600, &timeout,
                           err, errlen)
        || !conf_get_long(conf, sec, "upstream_retries", 1, 0, 10, &retries,
                          err, errlen)
        || !conf_get_size(conf, sec, "upstream_max_response", 1L << 20, 1024,
                          16L << 20, &max_rsp, err, errlen))
        return 0;
    memset(&uc, 0, sizeof(uc));
    uc.url = up->url;
    uc.tls_ca_file = conf_get(sec, "upstream_tls_ca");
    uc.tls_cert_file = conf_get(sec, "upstream_tls_cert");
    uc.tls_key_file = conf_get(sec, "upstream_tls_key");
    uc.connect_timeout_ms = timeout * 1000 < 5000 ? timeout * 1000 : 5000;
    uc.timeout_ms = timeout * 1000;
    uc.retries = (int)retries;
    uc.max_response = (size_t)max_rsp;
    uc.metrics_label = a->name;
    uerr[0] = '\0';
    if ((up->uc = upclient_new(&uc, uerr, sizeof(uerr))) == NULL)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: upstream: %s", a->name, uerr);
    return 1;
}

/* The options of the device mode: cert_* (device_mode = cert: external
 * CAs only, the RA's store holds no CA) and mac_* with [server]
 * secret_kek (device_mode = mac: re-protected forwards only). The
 * loaders of those modes refuse their options under another device
 * mode. */
static int mode_up_load_device(struct srv_alias *a, struct srv_upstream *up,
                               const struct conf *conf,
                               const struct conf_section *sec, STORE *store,
                               char *err, size_t errlen)
{
    if (!srv_cert_conf_load(a, conf, sec, err, errlen)
        || !srv_mac_alias_load(a, conf, sec, err, errlen))
        return 0;
    if (a->implicit_confirm)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: implicit_confirm is for aliases that "
                        "issue (on mode = upstream the upstream CA decides)",
                        a->name);
    if (up->device_mode == &srv_mode_cert) {
        if (conf_get(sec, "cert_trust") != NULL
            || conf_get(sec, "cert_trust_file") == NULL)
            return conf_err(conf, sec->line, err, errlen,
                            "[alias %s]: device_mode = cert needs "
                            "cert_trust_file (an RA has no CA in its store "
                            "for cert_trust)", a->name);
        if (!srv_cert_trust_load(a, conf, sec, store, err, errlen))
            return 0;
    }
    if (up->device_mode == &srv_mode_mac && up->form == SRV_UP_NESTED)
        return conf_err(conf, sec->line, err, errlen,
                        "[alias %s]: device_mode = mac needs upstream_form = "
                        "reprotect (the upstream cannot verify the device's "
                        "MAC inside a nested message)", a->name);
    return 1;
}

int srv_upstream_load(struct srv_alias *a, const struct conf *conf,
                      const struct conf_section *sec, STORE *store, char *err,
                      size_t errlen)
{
    struct srv_upstream *up = calloc(1, sizeof(*up));
    const char *dm, *url, *trust, *form, *rsp, *unav, *mac, *attr, *vendors;
    STACK_OF(X509) *anchors = NULL;
    char secret[SECRET_MAX + 1];
    long tolerance;
    int reenroll, i, ok = 0;

    if (up == NULL)
        return 0;
    pthread_mutex_init(&up->seen_lock, NULL);
    a->up = up;
    dm = conf_get(sec, "device_mode");
    up->device_mode = srv_mode_find(dm != NULL ? dm : "3gpp");
    if (up->device_mode != &srv_mode_3gpp && up->device_mode != &srv_mode_cert
        && up->device_mode != &srv_mode_mac) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: device_mode must be 3gpp, cert or mac", a->name);
        goto end;
    }
    if (conf_get(sec, "ca") != NULL || conf_get(sec, "profile") != NULL) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: mode = upstream issues nothing itself: no ca or "
                 "profile (the upstream CA has them)", a->name);
        goto end;
    }
    url = conf_get(sec, "upstream_url");
    trust = conf_get(sec, "upstream_trust");
    if (url == NULL || trust == NULL) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: mode = upstream needs upstream_url and "
                 "upstream_trust", a->name);
        goto end;
    }
    if ((up->url = strdup(url)) == NULL)
        goto end;
    form = conf_get(sec, "upstream_form");
    if (form == NULL || strcmp(form, "nested") == 0) {
        up->form = SRV_UP_NESTED;
    } else if (strcmp(form, "reprotect") == 0) {
        up->form = SRV_UP_REPROTECT;
    } else {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: upstream_form must be nested or reprotect",
                 a->name);
        goto end;
    }
    rsp = conf_get(sec, "upstream_response");
    if (rsp != NULL && strcmp(rsp, "relay") != 0 && strcmp(rsp, "reprotect") != 0) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: upstream_response must be relay or reprotect",
                 a->name);
        goto end;
    }
    up->rsp_reprotect = rsp != NULL && strcmp(rsp, "reprotect") == 0;
    unav = conf_get(sec, "upstream_unavailable");
    if (unav != NULL && strcmp(unav, "error") != 0 && strcmp(unav, "wait") != 0) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: upstream_unavailable must be error or wait",
                 a->name);
        goto end;
    }
    up->wait = unav != NULL && strcmp(unav, "wait") == 0;
    if (up->wait && !up->rsp_reprotect) {
        /* the answer to a pollReq carries the pollReq's nonce */
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: upstream_unavailable = wait needs "
                 "upstream_response = reprotect", a->name);
        goto end;
    }
    if (!conf_get_duration(conf, sec, "upstream_poll_after", 5, 1, 3600,
                           &up->poll_after, err, errlen))
        goto end;
    if ((mac = conf_get(sec, "upstream_mac_secret")) != NULL) {
        char serr[200];

        if (!secret_read(mac, "upstream MAC secret", secret, sizeof(secret),
                         serr, sizeof(serr))) {
            conf_err(conf, sec->line, err, errlen,
                     "[alias %s]: upstream_mac_secret: %s", a->name, serr);
            goto end;
        }
        up->mac_len = strlen(secret);
        up->mac = OPENSSL_memdup(secret, up->mac_len);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (up->mac == NULL)
            goto end;
    }
    vendors = conf_get(sec, "vendors");
    if (vendors == NULL || strcmp(vendors, "*") == 0) {
        a->all_vendors = 1;
    } else {
        char *copy = strdup(vendors), *tok, *save = NULL;

        for (tok = copy != NULL ? strtok_r(copy, ", \t", &save) : NULL;
             tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
            char **grown = realloc(a->vendors, (a->nvendors + 1) * sizeof(*grown));

            if (grown == NULL || (grown[a->nvendors] = strdup(tok)) == NULL) {
                if (grown != NULL)
                    a->vendors = grown;
                free(copy);
                goto end;
            }
            a->vendors = grown;
            a->nvendors++;
        }
        free(copy);
    }
    attr = conf_get(sec, "device_id_attr");
    a->device_id_nid = NID_serialNumber;
    if (attr != NULL && (a->device_id_nid = OBJ_txt2nid(attr)) == NID_undef) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: unknown attribute '%s' for device_id_attr",
                 a->name, attr);
        goto end;
    }
    if (!conf_get_duration(conf, sec, "time_tolerance", 600, 0, 86400 * 7,
                           &tolerance, err, errlen)
        || !conf_get_bool(conf, sec, "allow_reenroll", 0, &reenroll, err,
                          errlen))
        goto end;
    a->time_tolerance = tolerance;
    a->allow_reenroll = reenroll;
    if ((anchors = mode_up_read_certs(trust)) == NULL) {
        conf_err(conf, sec->line, err, errlen,
                 "[alias %s]: upstream_trust %s: no certificates", a->name,
                 trust);
        goto end;
    }
    if ((up->trust = X509_STORE_new()) == NULL)
        goto end;
    for (i = 0; i < sk_X509_num(anchors); i++)
        if (!X509_STORE_add_cert(up->trust, sk_X509_value(anchors, i)))
            goto end;
    up->anchors = anchors;
    anchors = NULL;
    if (!mode_up_load_ra(a, up, conf, sec, err, errlen)
        || !mode_up_load_client(a, up, conf, sec, err, errlen))
        goto end;
    if (!mode_up_load_device(a, up, conf, sec, store, err, errlen)
        || !conf_check_used(conf, sec, err, errlen))
        goto end;
    if (!srv_alias_reload_vendors(a, store)) {
        snprintf(err, errlen, "[alias %s]: cannot load vendors from the store",
                 a->name);
        goto end;
    }
    log_msg(LOG_INFO, "alias=%s upstream=%s form=%s response=%s", a->name,
            up->url, up->form == SRV_UP_NESTED ? "nested" : "reprotect",
            up->rsp_reprotect ? "reprotect" : "relay");
    ok = 1;
 end:
    sk_X509_pop_free(anchors, X509_free);
    ERR_clear_error();
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "[alias %s]: cannot load the upstream", a->name);
    return ok;
}
