/*
 * Authentication of CMP requests: the message signature, the 3GPP vendor
 * certificate path to a registered vendor CA with the device allow-list,
 * and operator certificates issued by the alias's CA.
 */
#include "server/srv_int.h"

#include "util/log.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>

enum cmp_reason srv_auth_signature(struct srv_ctx *ctx)
{
    const CMP_MSG *req = ctx->req;
    unsigned int len = 0;
    enum cmp_reason r;

    if (req->protection == NULL || req->header->protectionAlg == NULL)
        return srv_fail(ctx, CMP_R_UNPROTECTED, NULL);
    if (cmp_protect_is_mac(req)) {
        if (!ctx->alias->mode->allow_mac)
            return srv_fail(ctx, CMP_R_MAC_NOT_ALLOWED, "alias %s (%s mode)",
                           ctx->alias->name, ctx->alias->mode->name);
        return srv_fail(ctx, CMP_R_NO_MAC_SECRET, NULL);
    }
    if ((r = cmp_protect_find_signer(req, &ctx->signer)) != CMP_R_OK)
        return srv_fail(ctx, r, NULL);
    if ((r = cmp_protect_verify_sig(req, ctx->signer)) != CMP_R_OK)
        return srv_fail(ctx, r, NULL);
    if (!X509_digest(ctx->signer, EVP_sha256(), ctx->signer_sha256, &len))
        return srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
    return CMP_R_OK;
}

/* Reads attribute |nid| of |name| as UTF-8 into |buf|. Returns 1 or 0. */
static int srv_name_attr(const X509_NAME *name, int nid, char *buf, size_t len)
{
    const X509_NAME_ENTRY *e;
    unsigned char *utf8 = NULL;
    int idx, n;

    if ((idx = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
        return 0;
    e = X509_NAME_get_entry(name, idx);
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n <= 0 || (size_t)n >= len || memchr(utf8, '\0', (size_t)n) != NULL) {
        OPENSSL_free(utf8);
        ERR_clear_error();
        return 0;
    }
    memcpy(buf, utf8, (size_t)n);
    buf[n] = '\0';
    OPENSSL_free(utf8);
    return 1;
}

/* Validates the request signer against the vendor anchors of the alias.
 * Sets *vendor_id to the vendor owning the anchor the path ends in. */
enum cmp_reason srv_auth_vendor_path(struct srv_ctx *ctx, int64_t *vendor_id)
{
    struct srv_vendor_trust *vt = srv_alias_get1_vendor_trust(ctx->alias);
    X509_STORE_CTX *sctx = NULL;
    STACK_OF(X509) *chain;
    unsigned char sha[32];
    unsigned int len = 0;
    enum cmp_reason r = CMP_R_SIGNER_NOT_TRUSTED;
    size_t i;
    int k;

    *vendor_id = 0;
    if (vt == NULL || vt->nanchors == 0) {
        srv_fail(ctx, r, "no vendor CA registered for alias %s", ctx->alias->name);
        goto end;
    }
    if ((sctx = X509_STORE_CTX_new()) == NULL
        || !X509_STORE_CTX_init(sctx, vt->store, ctx->signer,
                                ctx->req->extraCerts)) {
        r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "verify context");
        goto end;
    }
    if (X509_verify_cert(sctx) <= 0) {
        srv_fail(ctx, r, "vendor certificate: %s",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        goto end;
    }
    /* With partial chains the anchor may sit below the root: walk the
     * path from its top down to the first registered vendor certificate. */
    chain = X509_STORE_CTX_get0_chain(sctx);
    for (k = sk_X509_num(chain) - 1; k >= 0 && *vendor_id == 0; k--) {
        if (!X509_digest(sk_X509_value(chain, k), EVP_sha256(), sha, &len)) {
            r = srv_fail(ctx, CMP_R_SYSTEM_FAILURE, "digest");
            goto end;
        }
        for (i = 0; i < vt->nanchors && *vendor_id == 0; i++)
            if (memcmp(vt->anchors[i].sha256, sha, sizeof(sha)) == 0)
                *vendor_id = vt->anchors[i].vendor_id;
    }
    if (*vendor_id == 0) {
        srv_fail(ctx, r, "vendor CA not registered");
        goto end;
    }
    r = CMP_R_OK;
 end:
    X509_STORE_CTX_free(sctx);
    srv_vendor_trust_free(vt);
    ERR_clear_error();
    return r;
}

enum cmp_reason srv_auth_vendor_device(struct srv_ctx *ctx)
{
    struct srv_alias *a = ctx->alias;
    char ident[256];
    int64_t vendor_id;
    STORE_TX *tx = NULL;
    enum store_rc rc;
    enum cmp_reason r;

    if ((r = srv_auth_vendor_path(ctx, &vendor_id)) != CMP_R_OK)
        return r;
    ctx->vendor_cert = ctx->signer;
    if (!srv_name_attr(X509_get_subject_name(ctx->signer), a->device_id_nid,
                      ident, sizeof(ident)))
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                       "vendor certificate subject has no %s",
                       OBJ_nid2sn(a->device_id_nid));
    snprintf(ctx->device_label, sizeof(ctx->device_label), "%s", ident);
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = store_device_get_by_ident(tx, vendor_id, ident, &ctx->device);
    if (rc == STORE_NOTFOUND)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is not registered",
                       ident);
    if (rc != STORE_OK)
        return srv_store_reason(ctx, rc, "device lookup");
    switch (ctx->device->state) {
    case STORE_DEV_REGISTERED:
        return CMP_R_OK;
    case STORE_DEV_ENROLLED:
    case STORE_DEV_REVOKED:
        if (a->allow_reenroll)
            return CMP_R_OK;
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is already %s",
                       ident, store_device_state_str(ctx->device->state));
    case STORE_DEV_PENDING:
        /* An earlier ip never got its certConf (lost on the way, device
         * restarted): the new ir supersedes it; srv_enroll revokes the
         * unconfirmed certificate in the same transaction. */
        if (ctx->device->cert_id != 0 && !a->allow_reenroll)
            return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                           "device %s is already enrolled", ident);
        return CMP_R_OK;
    default:
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is disabled",
                       ident);
    }
}

enum cmp_reason srv_auth_operator_cert(struct srv_ctx *ctx)
{
    struct srv_alias *a = ctx->alias;
    const ASN1_INTEGER *sn = X509_get0_serialNumber(ctx->signer);
    STORE_TX *tx = NULL;
    enum store_rc rc;

    /* The signer must be a certificate this CA issued: our record under its
     * serial number must be this very DER (SHA-256), which proves it more
     * strongly than a path check. */
    if ((rc = srv_read_tx(ctx, &tx)) != STORE_OK)
        return srv_store_reason(ctx, rc, "begin");
    rc = ASN1_STRING_type(sn) == V_ASN1_INTEGER
        ? store_cert_get_by_serial(tx, ca_get_id(a->ca),
                                   ASN1_STRING_get0_data(sn),
                                   (size_t)ASN1_STRING_length(sn),
                                   &ctx->signer_cert)
        : STORE_NOTFOUND;
    if (rc == STORE_OK
        && CRYPTO_memcmp(ctx->signer_cert->sha256, ctx->signer_sha256,
                         STORE_SHA256_LEN) != 0) {
        store_cert_free(ctx->signer_cert);
        ctx->signer_cert = NULL;
        rc = STORE_NOTFOUND;
    }
    if (rc == STORE_OK && ctx->signer_cert->device_id != 0)
        rc = store_device_get(tx, ctx->signer_cert->device_id, &ctx->device);
    if (rc == STORE_NOTFOUND && ctx->signer_cert == NULL)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                       "signer certificate not issued by CA %s",
                       ca_get0_name(a->ca));
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return srv_store_reason(ctx, rc, "certificate lookup");
    if (ctx->signer_cert->ca_id != ca_get_id(a->ca))
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                       "signer certificate not issued by CA %s",
                       ca_get0_name(a->ca));
    if (ctx->signer_cert->status == STORE_CERT_REVOKED)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                       "signer certificate is revoked");
    if (ctx->signer_cert->not_after < (int64_t)ctx->now
        || ctx->signer_cert->not_before > (int64_t)ctx->now)
        return srv_fail(ctx, CMP_R_SIGNER_NOT_TRUSTED,
                       "signer certificate is not valid now");
    if (ctx->device == NULL)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED,
                       "signer certificate belongs to no device");
    snprintf(ctx->device_label, sizeof(ctx->device_label), "%s",
             ctx->device->identifier);
    if (ctx->device->state == STORE_DEV_DISABLED)
        return srv_fail(ctx, CMP_R_NOT_AUTHORIZED, "device %s is disabled",
                       ctx->device->identifier);
    return CMP_R_OK;
}
