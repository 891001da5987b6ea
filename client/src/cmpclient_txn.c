/*
 * cmpclient transactions: ir/kur/rr on OpenSSL's CMP client with the 3GPP
 * TS 33.310 trust rules, retries on network failures, and installation of
 * the result between ip/kup and certConf (prepare) and after pkiConf (commit).
 */
#include "cmpclient_local.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/httperr.h>
#include <openssl/x509v3.h>

enum cmpclient_op { CMPCLIENT_OP_IR, CMPCLIENT_OP_KUR, CMPCLIENT_OP_RR };

/* PKIBody choice numbers (RFC 9810 5.1.2); OpenSSL 3.0 exports only a few. */
enum cmpclient_body {
    CMPCLIENT_BODY_IR = 0, CMPCLIENT_BODY_CR = 2, CMPCLIENT_BODY_P10CR = 4,
    CMPCLIENT_BODY_KUR = 7, CMPCLIENT_BODY_RR = 11, CMPCLIENT_BODY_GENM = 21
};

/* State of one transaction attempt, shared with the OpenSSL callbacks. One
 * OSSL_CMP_CTX per attempt: never reused across transactions or signers. */
struct cmpclient_txn {
    CMPCLIENT *c;
    enum cmpclient_op op;
    EVP_PKEY *newkey;           /* borrowed */
    int got_response;           /* some response arrived in this transaction */
    int net_fail;               /* a transfer failed at the network level */
    int http_status;            /* HTTP error status received, or 0 */
    char neterr[256];           /* text of the last transfer failure */
    int cb_ran;                 /* our certConf callback was called */
    enum cmpclient_rc cb_rc;    /* its verdict */
    char cb_err[CMPCLIENT_ERRLEN];
    struct cmpclient_result res;  /* filled by the certConf callback */
    struct cmpclient_staged staged;
};

/* The OpenSSL CMP log callback has no argument: the client running in
 * this thread is found here. */
static _Thread_local CMPCLIENT *cmpclient_current;

static const char *cmpclient_bodyname(int bt)
{
    static const char *const names[] = {
        "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup",
        "krr", "krp", "rr", "rp", "ccr", "ccp", "ckuann", "cann", "rann",
        "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf",
        "pollReq", "pollRep"
    };

    return bt >= 0 && bt < (int)(sizeof(names) / sizeof(names[0]))
        ? names[bt] : "?";
}

/* Routes OpenSSL's CMP log lines to the client's log. */
static int cmpclient_ossl_log(const char *func, const char *file, int line,
                              OSSL_CMP_severity level, const char *msg)
{
    CMPCLIENT *c = cmpclient_current;
    int lv = level <= OSSL_CMP_LOG_ERR ? 0 : level <= OSSL_CMP_LOG_INFO ? 1 : 2;

    if (c == NULL)
        return 1;
    /* errors are collected from the queue into one message instead */
    if (lv > 0)
        cmpclient_log(c, 2, "openssl: %s", msg);
    return 1;
}

/* Hex of |os| into |buf|. */
static void cmpclient_hex(const ASN1_OCTET_STRING *os, char *buf, size_t len)
{
    int i;

    buf[0] = '\0';
    for (i = 0; os != NULL && i < ASN1_STRING_length(os)
             && (size_t)(2 * i + 3) <= len; i++)
        snprintf(buf + 2 * i, 3, "%02X", ASN1_STRING_get0_data(os)[i]);
}

/* At verbosity 2, logs the ASN.1 structure of |msg|, line by line. */
static void cmpclient_log_asn1(CMPCLIENT *c, const OSSL_CMP_MSG *msg)
{
    BIO *mem, *out;
    char *data, *line, *save = NULL;
    long len;

    if (c->verbosity < 2 || (mem = BIO_new(BIO_s_mem())) == NULL)
        return;
    if ((out = BIO_new(BIO_s_mem())) != NULL && i2d_OSSL_CMP_MSG_bio(mem, msg) > 0
        && (len = BIO_get_mem_data(mem, &data)) > 0
        && ASN1_parse_dump(out, (unsigned char *)data, len, 2, 0) > 0
        && BIO_write(out, "", 1) == 1 && BIO_get_mem_data(out, &data) > 0) {
        for (line = strtok_r(data, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save))
            cmpclient_log(c, 2, "   %s", line);
    }
    ERR_clear_error();
    BIO_free(out);
    BIO_free(mem);
}

/* Empties the OpenSSL error queue into |t->neterr| and classifies it:
 * returns 1 for a network failure (connect, send, receive, timeout, HTTP
 * 502/503/504), 0 when the server answered with something unusable. */
static int cmpclient_classify_transfer(struct cmpclient_txn *t)
{
    unsigned long code;
    const char *data;
    int flags, network = 0, answered = 0;

    t->neterr[0] = '\0';
    t->http_status = 0;
    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        int lib = ERR_GET_LIB(code), reason = ERR_GET_REASON(code);
        const char *rs = ERR_reason_error_string(code);
        size_t used = strlen(t->neterr);
        const char *d = (flags & ERR_TXT_STRING) != 0 ? data : "";

        if (used + 3 < sizeof(t->neterr))
            snprintf(t->neterr + used, sizeof(t->neterr) - used, "%s%s%s%s",
                     used > 0 ? "; " : "", rs != NULL ? rs : "error",
                     *d != '\0' ? ": " : "", d);
        if (lib == ERR_LIB_SYS || lib == ERR_LIB_BIO) {
            network = 1;
        } else if (lib == ERR_LIB_HTTP) {
            switch (reason) {
            case HTTP_R_CONNECT_FAILURE:
            case HTTP_R_ERROR_RECEIVING:
            case HTTP_R_ERROR_SENDING:
            case HTTP_R_FAILED_READING_DATA:
            case HTTP_R_RETRY_TIMEOUT:
            case HTTP_R_SERVER_CANCELED_CONNECTION:
                network = 1;
                break;
            case HTTP_R_RECEIVED_ERROR: {
                const char *p = strstr(d, "code=");
                int status = p != NULL ? atoi(p + 5) : 0;

                t->http_status = status;
                if (status == 502 || status == 503 || status == 504)
                    network = 1;
                else
                    answered = 1;
                break;
            }
            default:
                answered = 1;
                break;
            }
        } else if (lib != ERR_LIB_CMP) {
            answered = 1;
        }
    }
    return network && !answered;
}

/* Sleeps |ms| milliseconds. */
static void cmpclient_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Returns the delay before retry number |retry| (1-based). */
static int cmpclient_backoff(const CMPCLIENT *c, int retry)
{
    long d = c->backoff_ms;

    while (--retry > 0 && d < c->backoff_max_ms)
        d *= 2;
    return d > c->backoff_max_ms ? c->backoff_max_ms : (int)d;
}

/*
 * Transfer callback. The first message of a transaction (ir, kur, rr) is
 * sent once: if it gets no answer the caller starts a whole new transaction
 * (new transactionID), because the server may or may not have processed it.
 * Later messages (certConf, pollReq, error) belong to a transaction the
 * server knows; they are re-sent unchanged (same transactionID and nonces),
 * which a server answers idempotently.
 */
static OSSL_CMP_MSG *cmpclient_transfer(OSSL_CMP_CTX *ctx,
                                        const OSSL_CMP_MSG *req)
{
    struct cmpclient_txn *t = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
    CMPCLIENT *c = t->c;
    int bt = OSSL_CMP_MSG_get_bodytype(req);
    int first = bt == CMPCLIENT_BODY_IR || bt == CMPCLIENT_BODY_KUR
        || bt == CMPCLIENT_BODY_RR || bt == CMPCLIENT_BODY_CR
        || bt == CMPCLIENT_BODY_P10CR || bt == CMPCLIENT_BODY_GENM;
    int attempts = first ? 1 : c->max_attempts;
    char txid[80], err[256];
    int i, connected;

    cmpclient_hex(OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(req)),
                  txid, sizeof(txid));
    for (i = 1;; i++) {
        OSSL_CMP_MSG *rep;

        cmpclient_log(c, 1, "-> %s transactionID=%s (to %s:%d%s)",
                      cmpclient_bodyname(bt), txid, c->host, c->port, c->path);
        if (i == 1)
            cmpclient_log_asn1(c, req);
        ERR_set_mark();
        rep = cmpclient_http_transfer(c, req, &connected, err, sizeof(err));
        if (rep != NULL) {
            ERR_pop_to_mark();
            t->got_response = 1;
            t->net_fail = 0;
            cmpclient_log(c, 1, "<- %s", cmpclient_bodyname(OSSL_CMP_MSG_get_bodytype(rep)));
            cmpclient_log_asn1(c, rep);
            return rep;
        }
        ERR_clear_last_mark();
        if (!connected) {
            snprintf(t->neterr, sizeof(t->neterr), "%s", err);
            t->http_status = 0;
        } else if (err[0] != '\0' || !cmpclient_classify_transfer(t)) {
            if (err[0] != '\0')
                snprintf(t->neterr, sizeof(t->neterr), "%s", err);
            t->got_response = 1;
            cmpclient_log(c, 1, "<- unusable answer: %s", t->neterr);
            return NULL; /* the server answered: never retried */
        }
        t->net_fail = 1;
        cmpclient_log(c, 1, "<- no answer: %s", t->neterr);
        if (i >= attempts)
            return NULL;
        cmpclient_log(c, 1, "retrying %s in %d ms (attempt %d of %d, same "
                      "transaction)", cmpclient_bodyname(bt),
                      cmpclient_backoff(c, i), i + 1, attempts);
        cmpclient_sleep_ms(cmpclient_backoff(c, i));
    }
}

/* Returns 1 if |x| is self-signed (issuer = subject and signature valid). */
static int cmpclient_self_signed(X509 *x)
{
    return X509_self_signed(x, 1) == 1;
}

/* Verifies |cert| against the trust anchors |roots| with |untrusted|
 * intermediates; on success returns the chain (cert .. root), else NULL. */
static STACK_OF(X509) *cmpclient_verify(X509 *cert, STACK_OF(X509) *roots,
                                        STACK_OF(X509) *untrusted,
                                        char *err, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = NULL;
    int i;

    if (store == NULL || sctx == NULL)
        goto end;
    for (i = 0; i < sk_X509_num(roots); i++) {
        if (!X509_STORE_add_cert(store, sk_X509_value(roots, i)))
            goto end;
    }
    if (!X509_STORE_CTX_init(sctx, store, cert, untrusted))
        goto end;
    if (X509_verify_cert(sctx) != 1) {
        snprintf(err, errlen, "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        goto end;
    }
    chain = X509_STORE_CTX_get1_chain(sctx);
 end:
    X509_STORE_CTX_free(sctx);
    X509_STORE_free(store);
    return chain;
}

/*
 * certConf callback: the 3GPP checks on the new certificate, then the
 * result is staged on disk. A non-zero return makes OpenSSL send a
 * certConf that rejects the certificate.
 */
static int cmpclient_certconf(OSSL_CMP_CTX *ctx, X509 *cert, int fail_info,
                              const char **text)
{
    struct cmpclient_txn *t = OSSL_CMP_CTX_get_certConf_cb_arg(ctx);
    CMPCLIENT *c = t->c;
    STACK_OF(X509) *in = OSSL_CMP_CTX_get1_extraCertsIn(ctx);
    STACK_OF(X509) *roots = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    STACK_OF(X509) *chain = NULL, *sigchain = NULL;
    char why[256] = "";
    int i, from_ip = 0;

    t->cb_ran = 1;
    t->cb_rc = CMPCLIENT_ERR_TRUST;
    if (fail_info != 0) {
        if (t->newkey != NULL && X509_check_private_key(cert, t->newkey) != 1)
            snprintf(t->cb_err, sizeof(t->cb_err), "the new certificate does "
                     "not certify the key the device sent; rejected it");
        else
            snprintf(t->cb_err, sizeof(t->cb_err), "the new certificate was "
                     "rejected by the CMP client checks (failInfo 0x%x)", fail_info);
        ERR_clear_error();
        goto end;
    }
    fail_info = 1 << OSSL_CMP_PKIFAILUREINFO_incorrectData;
    if (roots == NULL || untrusted == NULL)
        goto oom;
    for (i = 0; i < sk_X509_num(in); i++) {
        X509 *x = sk_X509_value(in, i);

        if (!cmpclient_self_signed(x) && !sk_X509_push(untrusted, x))
            goto oom;
    }
    if (c->root != NULL) {
        if (!sk_X509_push(roots, c->root))
            goto oom;
    } else if (t->op == CMPCLIENT_OP_IR && c->permit_root_in_ip) {
        /* 33.310 9.5.4.3: the root delivered in the ip's extraCerts */
        for (i = 0; i < sk_X509_num(in); i++) {
            X509 *x = sk_X509_value(in, i);

            if (cmpclient_self_signed(x) && !sk_X509_push(roots, x))
                goto oom;
        }
        from_ip = 1;
    }
    if (sk_X509_num(roots) == 0) {
        snprintf(t->cb_err, sizeof(t->cb_err), "no operator root: none "
                 "pre-provisioned and the ip carries no self-signed root in "
                 "extraCerts (3GPP TS 33.310 9.5.4.3); enrollment aborted");
        *text = "no trust anchor for the new certificate";
        goto end;
    }
    if ((chain = cmpclient_verify(cert, roots, untrusted, why, sizeof(why))) == NULL) {
        snprintf(t->cb_err, sizeof(t->cb_err), "the new certificate does not "
                 "validate against the %s operator root: %s",
                 from_ip ? "delivered" : "pre-provisioned", why);
        *text = "new certificate not trusted";
        goto end;
    }
    if (from_ip) {
        /* The same root must also validate the CMP signer, which OpenSSL's
         * 3GPP exception found in extraCerts (the protecting cert first). */
        STACK_OF(X509) *one = sk_X509_new_null();
        X509 *root = sk_X509_value(chain, sk_X509_num(chain) - 1);

        if (one == NULL || !sk_X509_push(one, root)) {
            sk_X509_free(one);
            goto oom;
        }
        sigchain = sk_X509_num(in) > 0
            ? cmpclient_verify(sk_X509_value(in, 0), one, untrusted, why,
                               sizeof(why)) : NULL;
        sk_X509_free(one);
        if (sigchain == NULL) {
            snprintf(t->cb_err, sizeof(t->cb_err), "the root delivered in the "
                     "ip does not validate the CMP signer: %s", why);
            *text = "CMP signer not trusted";
            goto end;
        }
    }
    if (t->newkey != NULL && X509_check_private_key(cert, t->newkey) != 1) {
        ERR_clear_error();
        snprintf(t->cb_err, sizeof(t->cb_err), "the new certificate does not "
                 "certify the key the device sent");
        *text = "public key mismatch";
        fail_info = 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
        goto end;
    }
    /* result: chain = cert, intermediates..., root */
    if (!X509_up_ref(cert))
        goto oom;
    t->res.cert = cert;
    t->res.root = sk_X509_pop(chain);
    X509_free(sk_X509_shift(chain));
    t->res.chain = chain;
    chain = NULL;
    t->res.root_from_ip = from_ip;
    if (t->newkey != NULL && EVP_PKEY_up_ref(t->newkey))
        t->res.key = t->newkey;
    if (from_ip) {
        /* From now on (pkiConf) the accepted root is the trust anchor. */
        X509_STORE *store = X509_STORE_new();

        if (store == NULL || !X509_STORE_add_cert(store, t->res.root)
            || !OSSL_CMP_CTX_set0_trustedStore(ctx, store)) {
            X509_STORE_free(store);
            goto oom;
        }
    }
    cmpclient_log(c, 1, "new certificate validated against the %s operator root",
                  from_ip ? "delivered (3GPP 9.5.4.3)" : "pre-provisioned");
    if (c->store_dir != NULL
        && !cmpclient_store_prepare(c->store_dir, &t->res, &t->staged,
                                    why, sizeof(why))) {
        t->cb_rc = CMPCLIENT_ERR_WRITE;
        snprintf(t->cb_err, sizeof(t->cb_err), "cannot store the new "
                 "certificate, rejecting it: %s", why);
        *text = "device could not store the certificate";
        fail_info = 1 << OSSL_CMP_PKIFAILUREINFO_systemUnavail;
        goto end;
    }
    t->cb_rc = CMPCLIENT_OK;
    fail_info = 0;
    goto end;
 oom:
    t->cb_rc = CMPCLIENT_ERR_INTERNAL;
    snprintf(t->cb_err, sizeof(t->cb_err), "out of memory");
    fail_info = 1 << OSSL_CMP_PKIFAILUREINFO_systemFailure;
 end:
    if (fail_info != 0)
        cmpclient_result_clear(&t->res);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(sigchain, X509_free);
    sk_X509_free(roots);
    sk_X509_free(untrusted);
    sk_X509_pop_free(in, X509_free);
    return fail_info;
}

/* Builds the OSSL_CMP_CTX for one transaction attempt. Returns it or NULL. */
static OSSL_CMP_CTX *cmpclient_ctx(struct cmpclient_txn *t,
                                   const struct cmpclient_identity *id)
{
    CMPCLIENT *c = t->c;
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
    STACK_OF(X509) *extra = sk_X509_new_null();
    X509_STORE *store = NULL;
    int i;

    if (ctx == NULL || extra == NULL)
        goto err;
    if (!OSSL_CMP_CTX_set_log_cb(ctx, cmpclient_ossl_log)
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_LOG_VERBOSITY,
                                    c->verbosity >= 2 ? OSSL_CMP_LOG_DEBUG
                                    : OSSL_CMP_LOG_INFO)
        || !OSSL_CMP_CTX_set1_server(ctx, c->host)
        || !OSSL_CMP_CTX_set_serverPort(ctx, c->port)
        || !OSSL_CMP_CTX_set1_serverPath(ctx, c->path)
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, c->msg_timeout)
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, c->total_timeout)
        || !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 0)
        || !OSSL_CMP_CTX_set_transfer_cb(ctx, cmpclient_transfer)
        || !OSSL_CMP_CTX_set_transfer_cb_arg(ctx, t)
        || !OSSL_CMP_CTX_set_certConf_cb(ctx, cmpclient_certconf)
        || !OSSL_CMP_CTX_set_certConf_cb_arg(ctx, t)
        || !OSSL_CMP_CTX_set1_cert(ctx, id->cert)
        || !OSSL_CMP_CTX_set1_pkey(ctx, id->key))
        goto err;
    if (id->chain != NULL) {
        for (i = 0; i < sk_X509_num(id->chain); i++) {
            X509 *x = sk_X509_value(id->chain, i);

            /* 33.310: own cert and intermediates, not the root */
            if (!cmpclient_self_signed(x)
                && !X509_add_cert(extra, x, X509_ADD_FLAG_UP_REF))
                goto err;
        }
        if (!OSSL_CMP_CTX_set1_untrusted(ctx, id->chain)
            || !OSSL_CMP_CTX_set1_extraCertsOut(ctx, extra))
            goto err;
    }
    if (c->root != NULL) {
        /* pre-provisioned root: it alone is trusted (no 3GPP exception) */
        if ((store = X509_STORE_new()) == NULL
            || !X509_STORE_add_cert(store, c->root)
            || !OSSL_CMP_CTX_set0_trustedStore(ctx, store))
            goto err;
        store = NULL;
    } else if (t->op == CMPCLIENT_OP_IR && c->permit_root_in_ip) {
        if (!OSSL_CMP_CTX_set_option(ctx,
                                     OSSL_CMP_OPT_PERMIT_TA_IN_EXTRACERTS_FOR_IR, 1))
            goto err;
    }
    if (t->op == CMPCLIENT_OP_IR || t->op == CMPCLIENT_OP_KUR) {
        if (!EVP_PKEY_up_ref(t->newkey))
            goto err;
        if (!OSSL_CMP_CTX_set0_newPkey(ctx, 1, t->newkey)) {
            EVP_PKEY_free(t->newkey);
            goto err;
        }
    }
    if (t->op == CMPCLIENT_OP_IR) {
        X509_NAME *none = X509_NAME_new();
        int ok;

        /* the template names no issuer (the vendor CA is not the issuer) */
        ok = none != NULL && OSSL_CMP_CTX_set1_issuer(ctx, none);
        X509_NAME_free(none);
        if (!ok || (c->subject != NULL
                    && !OSSL_CMP_CTX_set1_subjectName(ctx, c->subject)))
            goto err;
    }
    if (t->op == CMPCLIENT_OP_RR && !OSSL_CMP_CTX_set1_oldCert(ctx, id->cert))
        goto err;
    sk_X509_pop_free(extra, X509_free);
    return ctx;
 err:
    X509_STORE_free(store);
    sk_X509_pop_free(extra, X509_free);
    OSSL_CMP_CTX_free(ctx);
    return NULL;
}

/* Drains the OpenSSL error queue into |buf| and classifies it: returns
 * CMPCLIENT_ERR_TRUST for protection/validation failures, else
 * CMPCLIENT_ERR_PROTOCOL. */
static enum cmpclient_rc cmpclient_failure_kind(char *buf, size_t len)
{
    enum cmpclient_rc rc = CMPCLIENT_ERR_PROTOCOL;
    unsigned long code;
    const char *data;
    int flags;

    buf[0] = '\0';
    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *rs = ERR_reason_error_string(code);
        const char *d = (flags & ERR_TXT_STRING) != 0 ? data : "";
        size_t used = strlen(buf);

        if (used + 3 < len)
            snprintf(buf + used, len - used, "%s%s%s%s", used > 0 ? "; " : "",
                     rs != NULL ? rs : "error", *d != '\0' ? ": " : "", d);
        if (ERR_GET_LIB(code) != ERR_LIB_CMP)
            continue;
        switch (ERR_GET_REASON(code)) {
        case CMP_R_ERROR_VALIDATING_PROTECTION:
        case CMP_R_ERROR_VALIDATING_SIGNATURE:
        case CMP_R_NO_SUITABLE_SENDER_CERT:
        case CMP_R_MISSING_TRUST_STORE:
        case CMP_R_MISSING_TRUST_ANCHOR:
        case CMP_R_SRVCERT_DOES_NOT_VALIDATE_MSG:
        case CMP_R_POTENTIALLY_INVALID_CERTIFICATE:
        case CMP_R_MISSING_PROTECTION:
            rc = CMPCLIENT_ERR_TRUST;
            break;
        default:
            break;
        }
    }
    return rc;
}

/* Runs one operation with restarts; the heart of the library. */
static enum cmpclient_rc cmpclient_run(CMPCLIENT *c, enum cmpclient_op op,
                                       const struct cmpclient_identity *id,
                                       EVP_PKEY *newkey, int reason,
                                       struct cmpclient_result *out)
{
    static const char *const opname[] = { "enrollment (ir)", "renewal (kur)",
                                          "revocation (rr)" };
    enum cmpclient_rc rc = CMPCLIENT_ERR_INTERNAL;
    int attempt;

    for (attempt = 1;; attempt++) {
        struct cmpclient_txn t;
        char detail[CMPCLIENT_ERRLEN];
        OSSL_CMP_CTX *ctx;
        int ok;

        memset(&t, 0, sizeof(t));
        t.c = c;
        t.op = op;
        t.newkey = newkey;
        c->transactions = attempt;
        ERR_clear_error();
        if ((ctx = cmpclient_ctx(&t, id)) == NULL) {
            cmpclient_seterr(c, "cannot set up the CMP context: ");
            cmpclient_seterr_ossl(c);
            return CMPCLIENT_ERR_INTERNAL;
        }
        if (op == CMPCLIENT_OP_RR
            && !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_REVOCATION_REASON,
                                        reason)) {
            OSSL_CMP_CTX_free(ctx);
            cmpclient_seterr(c, "invalid revocation reason %d", reason);
            return CMPCLIENT_ERR_USAGE;
        }
        cmpclient_current = c;
        if (op == CMPCLIENT_OP_RR)
            ok = OSSL_CMP_exec_RR_ses(ctx) == 1;
        else
            ok = OSSL_CMP_exec_certreq(ctx, op == CMPCLIENT_OP_IR
                                       ? OSSL_CMP_IR : OSSL_CMP_KUR, NULL) != NULL;
        cmpclient_current = NULL;

        if (ok && (op == CMPCLIENT_OP_RR || t.cb_rc == CMPCLIENT_OK)) {
            char err[256];

            if (t.staged.gen != NULL && !cmpclient_store_commit(&t.staged, err, sizeof(err))) {
                cmpclient_seterr(c, "certificate confirmed but not installed: %s", err);
                rc = CMPCLIENT_ERR_WRITE;
            } else {
                rc = CMPCLIENT_OK;
                c->err[0] = '\0';
                if (out != NULL) {
                    *out = t.res;
                    memset(&t.res, 0, sizeof(t.res));
                }
            }
            cmpclient_result_clear(&t.res);
            OSSL_CMP_CTX_free(ctx);
            return rc;
        }
        /* failed: nothing of this attempt may become visible */
        cmpclient_store_abort(&t.staged);
        cmpclient_result_clear(&t.res);
        if (t.net_fail && !t.got_response) {
            ERR_clear_error();
            OSSL_CMP_CTX_free(ctx);
            if (attempt < c->max_attempts) {
                int ms = cmpclient_backoff(c, attempt);

                cmpclient_log(c, 1, "no answer to the %s; new transaction in "
                              "%d ms (attempt %d of %d)", opname[op], ms,
                              attempt + 1, c->max_attempts);
                cmpclient_sleep_ms(ms);
                continue;
            }
            cmpclient_seterr(c, "server http://%s:%d%s did not answer the %s "
                             "after %d attempts: %s", c->host, c->port, c->path,
                             opname[op], attempt, t.neterr);
            return CMPCLIENT_ERR_NETWORK;
        }
        if (t.net_fail) {
            cmpclient_seterr(c, "the %s transaction was interrupted after the "
                             "server answered (certConf not delivered after %d "
                             "attempts: %s); nothing was installed and the "
                             "server will treat the certificate as rejected",
                             opname[op], c->max_attempts, t.neterr);
            rc = CMPCLIENT_ERR_NETWORK;
        } else if (t.cb_ran && t.cb_rc != CMPCLIENT_OK) {
            cmpclient_seterr(c, "%s", t.cb_err);
            rc = t.cb_rc;
        } else if (OSSL_CMP_CTX_get_status(ctx) == OSSL_CMP_PKISTATUS_rejection) {
            char buf[OSSL_CMP_PKISI_BUFLEN];

            c->failinfo = OSSL_CMP_CTX_get_failInfoCode(ctx);
            if (OSSL_CMP_CTX_snprint_PKIStatus(ctx, buf, sizeof(buf)) == NULL)
                snprintf(buf, sizeof(buf), "rejection");
            cmpclient_seterr(c, "the server rejected the %s: %s", opname[op], buf);
            ERR_clear_error();
            rc = CMPCLIENT_ERR_REJECTED;
        } else if (t.http_status >= 400 && t.http_status < 500) {
            cmpclient_seterr(c, "the server refused the %s with HTTP status %d: %s",
                             opname[op], t.http_status, t.neterr);
            rc = CMPCLIENT_ERR_REJECTED;
        } else if (cmpclient_failure_kind(detail, sizeof(detail)) == CMPCLIENT_ERR_TRUST
                   && t.got_response) {
            if (c->root == NULL && op == CMPCLIENT_OP_IR)
                cmpclient_seterr(c, "no operator root: none pre-provisioned and "
                                 "the ip carries no self-signed root in extraCerts "
                                 "that validates both the CMP signer and the new "
                                 "certificate (3GPP TS 33.310 9.5.4.3); "
                                 "enrollment aborted (%s)", detail);
            else
                cmpclient_seterr(c, "the server's response is not trusted by "
                                 "the operator root: %s", detail);
            rc = CMPCLIENT_ERR_TRUST;
        } else {
            cmpclient_seterr(c, "the %s failed: %s%s%s", opname[op], t.neterr,
                             t.neterr[0] != '\0' && detail[0] != '\0' ? "; " : "",
                             detail);
            rc = CMPCLIENT_ERR_PROTOCOL;
        }
        OSSL_CMP_CTX_free(ctx);
        return rc;
    }
}

/* Checks the common arguments of an operation; returns 1 or 0 (error set). */
static int cmpclient_check(CMPCLIENT *c, const struct cmpclient_identity *id)
{
    c->err[0] = '\0';
    c->failinfo = 0;
    c->transactions = 0;
    if (c->host == NULL) {
        cmpclient_seterr(c, "no server URL set");
        return 0;
    }
    if (id == NULL || id->key == NULL || id->cert == NULL) {
        cmpclient_seterr(c, "no key or certificate to protect the request");
        return 0;
    }
    if (X509_check_private_key(id->cert, id->key) != 1) {
        ERR_clear_error();
        cmpclient_seterr(c, "the private key does not match the certificate");
        return 0;
    }
    return 1;
}

/* Shared body of enroll and renew. */
static enum cmpclient_rc cmpclient_certreq(CMPCLIENT *c, enum cmpclient_op op,
                                           const struct cmpclient_identity *id,
                                           EVP_PKEY *newkey, const char *keyspec,
                                           struct cmpclient_result *out)
{
    EVP_PKEY *key = NULL;
    enum cmpclient_rc rc;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (!cmpclient_check(c, id))
        return CMPCLIENT_ERR_USAGE;
    if (c->root == NULL && (op != CMPCLIENT_OP_IR || !c->permit_root_in_ip)) {
        cmpclient_seterr(c, "no operator root: none pre-provisioned%s; "
                         "aborting (3GPP TS 33.310)", op == CMPCLIENT_OP_IR
                         ? " and taking it from the ip is disabled"
                         : " or installed at enrollment");
        return CMPCLIENT_ERR_TRUST;
    }
    if (newkey != NULL) {
        if (!EVP_PKEY_up_ref(newkey))
            return CMPCLIENT_ERR_INTERNAL;
        key = newkey;
    } else if ((key = cmpclient_keygen(keyspec)) == NULL) {
        cmpclient_seterr(c, "cannot generate a '%s' key",
                         keyspec != NULL ? keyspec : "ec:P-256");
        ERR_clear_error();
        return CMPCLIENT_ERR_USAGE;
    }
    rc = cmpclient_run(c, op, id, key, 0, out);
    EVP_PKEY_free(key);
    return rc;
}

enum cmpclient_rc cmpclient_enroll(CMPCLIENT *c,
                                   const struct cmpclient_identity *vendor,
                                   EVP_PKEY *newkey, const char *keyspec,
                                   struct cmpclient_result *out)
{
    return cmpclient_certreq(c, CMPCLIENT_OP_IR, vendor, newkey, keyspec, out);
}

enum cmpclient_rc cmpclient_renew(CMPCLIENT *c,
                                  const struct cmpclient_identity *current,
                                  EVP_PKEY *newkey, const char *keyspec,
                                  struct cmpclient_result *out)
{
    return cmpclient_certreq(c, CMPCLIENT_OP_KUR, current, newkey, keyspec, out);
}

enum cmpclient_rc cmpclient_revoke(CMPCLIENT *c,
                                   const struct cmpclient_identity *current,
                                   int reason)
{
    if (!cmpclient_check(c, current))
        return CMPCLIENT_ERR_USAGE;
    if (c->root == NULL) {
        cmpclient_seterr(c, "no operator root to check the server's answer");
        return CMPCLIENT_ERR_TRUST;
    }
    return cmpclient_run(c, CMPCLIENT_OP_RR, current, NULL, reason, NULL);
}
