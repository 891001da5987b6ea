/*
 * certProfile (id-it 21): CertProfileValue ::= SEQUENCE SIZE (1..MAX) OF
 * UTF8String in generalInfo (RFC 9483 4.1.1 allows exactly one name in a
 * request). Parsed from the DER kept in the ITAV, bounded by its length.
 */
#include "cmp/cmp_profile.h"

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

#define CMP_OID_CERT_PROFILE "1.3.6.1.5.5.7.4.21"

/* CertProfileValue, for encoding only */
DECLARE_ASN1_ITEM(CMP_PROFILE_NAMES)
ASN1_ITEM_TEMPLATE(CMP_PROFILE_NAMES) =
    ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, CMP_PROFILE_NAMES,
                          ASN1_UTF8STRING)
ASN1_ITEM_TEMPLATE_END(CMP_PROFILE_NAMES)

/* Reads the one name of CertProfileValue |seq| into *name (malloc'ed). */
static enum cmp_reason cmp_profile_value(const ASN1_STRING *seq, char **name)
{
    const unsigned char *p = ASN1_STRING_get0_data(seq), *end, *q;
    long len;
    int tag, xclass, n = 0;

    end = p + ASN1_STRING_length(seq);
    if (ASN1_get_object(&p, &len, &tag, &xclass, end - p) != V_ASN1_CONSTRUCTED
        || tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL
        || p + len != end)
        return CMP_R_BAD_REQUEST;
    while (p < end) {
        q = p;
        /* a primitive UTF8String of definite length within the list */
        if (ASN1_get_object(&q, &len, &tag, &xclass, end - p) != 0
            || tag != V_ASN1_UTF8STRING || xclass != V_ASN1_UNIVERSAL
            || len > end - q || ++n > 1)
            return CMP_R_BAD_REQUEST;
        if (len == 0 || len > CMP_PROFILE_NAME_MAX
            || memchr(q, '\0', (size_t)len) != NULL)
            return CMP_R_BAD_REQUEST;
        if ((*name = malloc((size_t)len + 1)) == NULL)
            return CMP_R_SYSTEM_FAILURE;
        memcpy(*name, q, (size_t)len);
        (*name)[len] = '\0';
        p = q + len;
    }
    return n == 1 ? CMP_R_OK : CMP_R_BAD_REQUEST;
}

enum cmp_reason cmp_hdr_get1_cert_profile(const CMP_HDR *hdr, char **name)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(CMP_OID_CERT_PROFILE, 1);
    enum cmp_reason r = CMP_R_OK;
    int i, seen = 0;

    *name = NULL;
    if (oid == NULL)
        return CMP_R_SYSTEM_FAILURE;
    for (i = 0; i < sk_CMP_ITAV_num(hdr->generalInfo) && r == CMP_R_OK; i++) {
        const CMP_ITAV *it = sk_CMP_ITAV_value(hdr->generalInfo, i);

        if (OBJ_cmp(it->infoType, oid) != 0)
            continue;
        if (seen++ > 0 || it->infoValue == NULL
            || it->infoValue->type != V_ASN1_SEQUENCE)
            r = CMP_R_BAD_REQUEST;
        else
            r = cmp_profile_value(it->infoValue->value.sequence, name);
    }
    if (r != CMP_R_OK) {
        free(*name);
        *name = NULL;
    }
    ASN1_OBJECT_free(oid);
    ERR_clear_error();
    return r;
}

int cmp_hdr_push_cert_profile(CMP_HDR *hdr, const char *const *names, int n)
{
    STACK_OF(ASN1_UTF8STRING) *sk = sk_ASN1_UTF8STRING_new_null();
    ASN1_UTF8STRING *s = NULL;
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *v = NULL;
    CMP_ITAV *itav = NULL;
    int i, ok = 0;

    if (sk == NULL)
        goto end;
    for (i = 0; i < n; i++) {
        if ((s = ASN1_UTF8STRING_new()) == NULL
            || !ASN1_STRING_set(s, names[i], (int)strlen(names[i]))
            || !sk_ASN1_UTF8STRING_push(sk, s))
            goto end;
        s = NULL;
    }
    if ((seq = ASN1_item_pack(sk, ASN1_ITEM_rptr(CMP_PROFILE_NAMES), NULL))
        == NULL
        || (v = ASN1_TYPE_new()) == NULL)
        goto end;
    ASN1_TYPE_set(v, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    if ((itav = CMP_ITAV_new()) == NULL
        || (itav->infoType = OBJ_txt2obj(CMP_OID_CERT_PROFILE, 1)) == NULL)
        goto end;
    itav->infoValue = v;
    v = NULL;
    if ((hdr->generalInfo == NULL
         && (hdr->generalInfo = sk_CMP_ITAV_new_null()) == NULL)
        || !sk_CMP_ITAV_push(hdr->generalInfo, itav))
        goto end;
    itav = NULL;
    ok = 1;
 end:
    ASN1_UTF8STRING_free(s);
    sk_ASN1_UTF8STRING_pop_free(sk, ASN1_UTF8STRING_free);
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(v);
    CMP_ITAV_free(itav);
    return ok;
}
