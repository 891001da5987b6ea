/*
 * cmpinspect: decodes a CMP message file (DER) with cmpca's own layer,
 * verifies its signature protection (and the signer's path to a trusted
 * root) and prints key=value lines that e2e scripts grep for.
 */
#include "asn1/cmp_asn1.h"
#include "cmp/cmp_msg.h"
#include "cmp/cmp_protect.h"
#include "cmp/cmp_reason.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: cmpinspect [--trusted ROOT.pem] [--req REQ.der]\n"
            "                  [--certout FILE.pem] [--capubsout FILE.pem]\n"
"                  [--crlout FILE.pem] [--genpcertsout FILE.pem]\n"
"                  [--genpvalueout FILE.der] [--rootupdout PREFIX] MSG.der\n"
"                  [--secret S] MSG.der\n"
"  --secret S: a MAC-protected message is verified with S (protected=ok|bad)\n"
            "Prints one summary line, then key=value lines:\n"
            "  body= pvno= tid= senderNonceLen= recipNonce= status= failInfo=\n"
            "  text= protected=ok|bad|none|mac|untrusted extraCert.N=\n"
            "  caPubs.N= implicitConfirm= confirmWaitTime= certReqId= checkAfter=\n"
            "  cert.subject= echo=ok|bad (with --req)\n");
}

/* Reads a whole file into a malloc'ed buffer (at most 1 MiB). */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t n;

    *len = 0;
    if (fp == NULL)
        return NULL;
    if ((buf = malloc(1 << 20)) == NULL)
        goto end;
    n = fread(buf, 1, 1 << 20, fp);
    *len = n;
 end:
    fclose(fp);
    return buf;
}

static char *name_str(const X509_NAME *n, char *buf, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int k;

    buf[0] = '\0';
    if (b == NULL)
        return buf;
    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
    k = BIO_read(b, buf, (int)len - 1);
    buf[k > 0 ? k : 0] = '\0';
    BIO_free(b);
    return buf;
}

static void print_hex(const char *key, const ASN1_OCTET_STRING *os)
{
    int i;

    printf("%s=", key);
    for (i = 0; os != NULL && i < ASN1_STRING_length(os); i++)
        printf("%02x", ASN1_STRING_get0_data(os)[i]);
    printf("\n");
}

/* Collects PKIStatusInfo: status, failInfo names, texts. */
static void pkisi_info(const CMP_PKISI *si, int *status, char *fail,
                       size_t flen, char *text, size_t tlen)
{
    int mask, bit, i;

    *status = cmp_pkisi_get_status(si);
    fail[0] = '\0';
    mask = cmp_pkisi_get_failinfo(si);
    for (bit = 0; bit <= CMP_FAIL_MAX; bit++)
        if (mask & (1 << bit)) {
            if (fail[0] != '\0')
                strncat(fail, ",", flen - strlen(fail) - 1);
            strncat(fail, cmp_fail_bit_name(bit), flen - strlen(fail) - 1);
        }
    for (i = 0; si != NULL && i < sk_ASN1_UTF8STRING_num(si->statusString); i++) {
        const ASN1_UTF8STRING *s = sk_ASN1_UTF8STRING_value(si->statusString, i);

        if (text[0] != '\0')
            strncat(text, "; ", tlen - strlen(text) - 1);
        strncat(text, (const char *)ASN1_STRING_get0_data(s),
                tlen - strlen(text) - 1);
    }
}

/* Verifies |signer| up to |root| with the message's extraCerts. */
static int path_ok(X509 *signer, X509 *root, STACK_OF(X509) *untrusted)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    int ok = 0;

    if (st != NULL && sctx != NULL && X509_STORE_add_cert(st, root)
        && X509_STORE_CTX_init(sctx, st, signer, untrusted))
        ok = X509_verify_cert(sctx) > 0;
    if (!ok && sctx != NULL)
        fprintf(stderr, "cmpinspect: signer path: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
    X509_STORE_CTX_free(sctx);
    X509_STORE_free(st);
    return ok;
}

/* Writes the certificates of a RootCaKeyUpdateContent (newWithNew,
 * [0] newWithOld, [1] oldWithNew) to PREFIX-nwn.pem, -nwo.pem, -own.pem.
 * Returns how many it found, -1 if malformed. */
static int write_root_update(const ASN1_TYPE *v, const char *prefix)
{
    static const char *const names[3] = { "nwn", "nwo", "own" };
    const unsigned char *p = ASN1_STRING_get0_data(v->value.sequence), *q;
    long len = ASN1_STRING_length(v->value.sequence), clen;
    int tag, cls, k, n = 0, ret;
    char path[512];
    X509 *x;
    FILE *fp;

    ret = ASN1_get_object(&p, &clen, &tag, &cls, len);
    if ((ret & 0x80) || tag != V_ASN1_SEQUENCE)
        return -1;
    len = clen;
    for (k = 0; k < 3 && len > 0; k++) {
        q = p;
        if (k > 0) {
            ret = ASN1_get_object(&q, &clen, &tag, &cls, len);
            if ((ret & 0x80) || cls != V_ASN1_CONTEXT_SPECIFIC || tag != k - 1)
                return -1;
            len -= q - p;
            p = q;
        }
        q = p;
        if ((x = d2i_X509(NULL, &q, len)) == NULL)
            return -1;
        len -= q - p;
        p = q;
        snprintf(path, sizeof(path), "%s-%s.pem", prefix, names[k]);
        if ((fp = fopen(path, "w")) != NULL) {
            PEM_write_X509(fp, x);
            fclose(fp);
        }
        X509_free(x);
        n++;
    }
    return len == 0 ? n : -1;
}

int main(int argc, char **argv)
{
    const char *trusted = NULL, *reqfile = NULL, *certout = NULL,
        *capubsout = NULL, *file = NULL, *crlout = NULL, *genpcertsout = NULL,
        *genpvalueout = NULL, *rootupdout = NULL, *secret = NULL;
    unsigned char *der = NULL, *rder = NULL;
    size_t len = 0, rlen = 0;
    CMP_MSG *msg = NULL, *req = NULL;
    X509 *root = NULL, *signer = NULL, *cert = NULL;
    STACK_OF(X509) *capubs = NULL;
    const char *prot = "none";
    char fail[512] = "", text[2048] = "", buf[512];
    int status = -1, i, ret = 1;
    long cert_req_id = -99, check_after = -1;
    enum cmp_reason r;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trusted") == 0 && i + 1 < argc)
            trusted = argv[++i];
        else if (strcmp(argv[i], "--req") == 0 && i + 1 < argc)
            reqfile = argv[++i];
        else if (strcmp(argv[i], "--certout") == 0 && i + 1 < argc)
            certout = argv[++i];
        else if (strcmp(argv[i], "--capubsout") == 0 && i + 1 < argc)
            capubsout = argv[++i];
        else if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
            secret = argv[++i];
        else if (strcmp(argv[i], "--crlout") == 0 && i + 1 < argc)
            crlout = argv[++i];
        else if (strcmp(argv[i], "--genpcertsout") == 0 && i + 1 < argc)
            genpcertsout = argv[++i];
        else if (strcmp(argv[i], "--genpvalueout") == 0 && i + 1 < argc)
            genpvalueout = argv[++i];
        else if (strcmp(argv[i], "--rootupdout") == 0 && i + 1 < argc)
            rootupdout = argv[++i];
        else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else
            file = argv[i];
    }
    if (file == NULL) {
        usage();
        return 2;
    }
    if ((der = read_file(file, &len)) == NULL || len == 0) {
        printf("body=none decode=empty\n");
        goto end;
    }
    if ((r = cmp_msg_decode(der, len, NULL, &msg)) != CMP_R_OK) {
        printf("body=none decode=%s\n", cmp_reason_text(r));
        goto end;
    }
    if (trusted != NULL) {
        FILE *fp = fopen(trusted, "r");

        if (fp == NULL || (root = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
            fprintf(stderr, "cmpinspect: cannot read %s\n", trusted);
            if (fp != NULL)
                fclose(fp);
            goto end;
        }
        fclose(fp);
    }
    /* protection */
    if (msg->protection == NULL)
        prot = "none";
    else if (cmp_protect_is_mac(msg) && secret != NULL)
        prot = cmp_protect_verify_mac(msg, (const unsigned char *)secret,
                                      strlen(secret), NULL) == CMP_R_OK
            ? "ok" : "bad";
    else if (cmp_protect_is_mac(msg))
        prot = "mac";
    else if ((r = cmp_protect_find_signer(msg, &signer)) != CMP_R_OK
             || (r = cmp_protect_verify_sig(msg, signer)) != CMP_R_OK) {
        prot = "bad";
        fprintf(stderr, "cmpinspect: protection: %s\n", cmp_reason_text(r));
    } else if (root != NULL && !path_ok(signer, root, msg->extraCerts))
        prot = "untrusted";
    else
        prot = root != NULL ? "ok" : "sig-ok";
    /* body */
    switch (msg->body->type) {
    case CMP_BODY_ERROR:
        pkisi_info(msg->body->value.error->pKIStatusInfo, &status, fail,
                   sizeof(fail), text, sizeof(text));
        for (i = 0; i < sk_ASN1_UTF8STRING_num(msg->body->value.error->errorDetails); i++) {
            const ASN1_UTF8STRING *s =
                sk_ASN1_UTF8STRING_value(msg->body->value.error->errorDetails, i);

            if (text[0] != '\0')
                strncat(text, "; ", sizeof(text) - strlen(text) - 1);
            strncat(text, (const char *)ASN1_STRING_get0_data(s),
                    sizeof(text) - strlen(text) - 1);
        }
        break;
    case CMP_BODY_IP: case CMP_BODY_CP: case CMP_BODY_KUP: {
        CMP_CERTREPMSG *rep = msg->body->value.ip;
        CMP_CERTRESP *cr = sk_CMP_CERTRESP_value(rep->response, 0);

        capubs = rep->caPubs;
        if (cr != NULL) {
            int64_t v = 0;

            pkisi_info(cr->status, &status, fail, sizeof(fail), text,
                       sizeof(text));
            if (ASN1_INTEGER_get_int64(&v, cr->certReqId))
                cert_req_id = (long)v;
            if (cr->certifiedKeyPair != NULL
                && cr->certifiedKeyPair->certOrEncCert != NULL
                && cr->certifiedKeyPair->certOrEncCert->type == 0)
                cert = cmp_certorenccert_get1_cert(cr->certifiedKeyPair
                                                   ->certOrEncCert);
        }
        break;
    }
    case CMP_BODY_POLLREP: {
        const CMP_POLLREP *pr = sk_CMP_POLLREP_value(msg->body->value.pollRep, 0);
        int64_t v = 0;

        if (pr != NULL && ASN1_INTEGER_get_int64(&v, pr->certReqId))
            cert_req_id = (long)v;
        if (pr != NULL && ASN1_INTEGER_get_int64(&v, pr->checkAfter))
            check_after = (long)v;
        break;
    }
    case CMP_BODY_RP:
        pkisi_info(sk_CMP_PKISI_value(msg->body->value.rp->status, 0), &status,
                   fail, sizeof(fail), text, sizeof(text));
        break;
    default:
        break;
    }
    printf("body=%s status=%d failInfo=%s protected=%s text=\"%s\"\n",
           cmp_body_type_name(msg->body->type), status,
           fail[0] != '\0' ? fail : "-", prot, text);
    printf("body=%s\nstatus=%d\nfailInfo=%s\nprotected=%s\ntext=%s\n",
           cmp_body_type_name(msg->body->type), status,
           fail[0] != '\0' ? fail : "-", prot, text);
    printf("pvno=%d\n", cmp_hdr_get_pvno(msg->header));
    print_hex("tid", msg->header->transactionID);
    print_hex("senderNonce", msg->header->senderNonce);
    printf("senderNonceLen=%d\n", msg->header->senderNonce != NULL
           ? ASN1_STRING_length(msg->header->senderNonce) : 0);
    print_hex("recipNonce", msg->header->recipNonce);
    print_hex("senderKID", msg->header->senderKID);
    if (msg->header->sender != NULL && msg->header->sender->type == GEN_DIRNAME)
        printf("sender=%s\n", name_str(msg->header->sender->d.directoryName,
                                       buf, sizeof(buf)));
    if (msg->header->recipient != NULL
        && msg->header->recipient->type == GEN_DIRNAME)
        printf("recipient=%s\n",
               name_str(msg->header->recipient->d.directoryName, buf,
                        sizeof(buf)));
    if (signer != NULL)
        printf("signer=%s\n", name_str(X509_get_subject_name(signer), buf,
                                       sizeof(buf)));
    if (msg->header->protectionAlg != NULL)
        printf("protectionAlg=%s\n",
               OBJ_nid2sn(OBJ_obj2nid(msg->header->protectionAlg->algorithm)));
    printf("implicitConfirm=%d\n", cmp_hdr_has_implicit_confirm(msg->header));
    for (i = 0; i < sk_CMP_ITAV_num(msg->header->generalInfo); i++) {
        const CMP_ITAV *itav = sk_CMP_ITAV_value(msg->header->generalInfo, i);

        if (OBJ_obj2nid(itav->infoType) == NID_id_it_confirmWaitTime
            && itav->infoValue != NULL
            && itav->infoValue->type == V_ASN1_GENERALIZEDTIME)
            printf("confirmWaitTime=%s\n", (const char *)ASN1_STRING_get0_data(
                       itav->infoValue->value.generalizedtime));
    }
    printf("extraCerts=%d\n", sk_X509_num(msg->extraCerts));
    for (i = 0; i < sk_X509_num(msg->extraCerts); i++) {
        X509 *c = sk_X509_value(msg->extraCerts, i);

        printf("extraCert.%d=%s%s\n", i,
               name_str(X509_get_subject_name(c), buf, sizeof(buf)),
               X509_check_issued(c, c) == X509_V_OK ? " (self-signed)" : "");
    }
    printf("caPubs=%d\n", capubs != NULL ? sk_X509_num(capubs) : 0);
    for (i = 0; i < sk_X509_num(capubs); i++)
        printf("caPubs.%d=%s\n", i,
               name_str(X509_get_subject_name(sk_X509_value(capubs, i)), buf,
                        sizeof(buf)));
    if (cert_req_id != -99)
        printf("certReqId=%ld\n", cert_req_id);
    if (check_after >= 0)
        printf("checkAfter=%ld\n", check_after);
    if (cert != NULL) {
        printf("cert.subject=%s\n", name_str(X509_get_subject_name(cert), buf,
                                             sizeof(buf)));
        if (certout != NULL) {
            FILE *fp = fopen(certout, "w");

            if (fp != NULL) {
                PEM_write_X509(fp, cert);
                fclose(fp);
            }
        }
    }
    if (capubsout != NULL && sk_X509_num(capubs) > 0) {
        FILE *fp = fopen(capubsout, "w");

        for (i = 0; fp != NULL && i < sk_X509_num(capubs); i++)
            PEM_write_X509(fp, sk_X509_value(capubs, i));
        if (fp != NULL)
            fclose(fp);
    }
    if (msg->body->type == CMP_BODY_GENP) {
        for (i = 0; i < sk_CMP_ITAV_num(msg->body->value.genp); i++) {
            const CMP_ITAV *itav = sk_CMP_ITAV_value(msg->body->value.genp, i);

            OBJ_obj2txt(buf, sizeof(buf), itav->infoType, 1);
            printf("genp.%d=%s %s\n", i, buf,
                   itav->infoValue != NULL ? "value" : "absent");
            if (itav->infoValue != NULL
                && itav->infoValue->type == V_ASN1_SEQUENCE) {
                const char *arc = strrchr(buf, '.');

                if (crlout != NULL && strcmp(arc, ".23") == 0) {
                    STACK_OF(X509_CRL) *crls = ASN1_item_unpack(
                        itav->infoValue->value.sequence, ASN1_ITEM_rptr(CMP_CRLS));
                    FILE *fp = fopen(crlout, "w");
                    int k;

                    for (k = 0; fp != NULL && k < sk_X509_CRL_num(crls); k++)
                        PEM_write_X509_CRL(fp, sk_X509_CRL_value(crls, k));
                    if (fp != NULL)
                        fclose(fp);
                    printf("genp.%d.crls=%d\n", i, sk_X509_CRL_num(crls));
                    sk_X509_CRL_pop_free(crls, X509_CRL_free);
                }
                if (genpvalueout != NULL && i == 0) {
                    FILE *fp = fopen(genpvalueout, "wb");

                    if (fp != NULL) {
                        fwrite(ASN1_STRING_get0_data(itav->infoValue->value.sequence),
                               1, ASN1_STRING_length(itav->infoValue->value.sequence), fp);
                        fclose(fp);
                    }
                }
                if (rootupdout != NULL && strcmp(arc, ".18") == 0)
                    printf("genp.%d.rootupdate=%d\n", i,
                           write_root_update(itav->infoValue, rootupdout));
                if (genpcertsout != NULL && strcmp(arc, ".17") == 0) {
                    STACK_OF(X509) *certs = ASN1_item_unpack(
                        itav->infoValue->value.sequence, ASN1_ITEM_rptr(CMP_CERTS));
                    FILE *fp = fopen(genpcertsout, "w");
                    int k;

                    for (k = 0; fp != NULL && k < sk_X509_num(certs); k++)
                        PEM_write_X509(fp, sk_X509_value(certs, k));
                    if (fp != NULL)
                        fclose(fp);
                    printf("genp.%d.certs=%d\n", i, sk_X509_num(certs));
                    sk_X509_pop_free(certs, X509_free);
                }
            }
        }
    }
    if (reqfile != NULL) {
        int echo = 0;

        if ((rder = read_file(reqfile, &rlen)) != NULL
            && cmp_msg_decode(rder, rlen, NULL, &req) == CMP_R_OK) {
            echo = ASN1_OCTET_STRING_cmp(req->header->transactionID,
                                         msg->header->transactionID) == 0
                && req->header->senderNonce != NULL
                && msg->header->recipNonce != NULL
                && ASN1_OCTET_STRING_cmp(req->header->senderNonce,
                                         msg->header->recipNonce) == 0
                && cmp_hdr_get_pvno(req->header) == cmp_hdr_get_pvno(msg->header);
        }
        printf("echo=%s\n", echo ? "ok" : "bad");
    }
    ret = 0;
 end:
    CMP_MSG_free(msg);
    CMP_MSG_free(req);
    X509_free(root);
    X509_free(cert);
    free(der);
    free(rder);
    return ret;
}
