/*
 * What a profile tells a client before it asks (genm certReqTemplate, RFC
 * 9483 4.3.3): the subject template as a name, the fixed extensions, the
 * allowed key types. Read-only views of a loaded profile.
 */
#include "ca/ca_int.h"

#include <string.h>

X509_NAME *ca_profile_template_subject(const CA_PROFILE *p)
{
    X509_NAME *n = X509_NAME_new();
    const struct ca_rdn_tmpl *a;
    size_t i;
    int ok;

    for (i = 0; n != NULL && i < p->nsubj; i++) {
        a = &p->subj[i];
        if (strstr(a->value, "${") != NULL)   /* filled in by the client */
            ok = X509_NAME_add_entry_by_NID(n, a->nid, V_ASN1_UTF8STRING,
                                            (const unsigned char *)"", 0,
                                            -1, 0);
        else
            ok = X509_NAME_add_entry_by_NID(n, a->nid, MBSTRING_UTF8,
                                            (const unsigned char *)a->value,
                                            -1, -1, 0);
        if (!ok) {
            X509_NAME_free(n);
            n = NULL;
        }
    }
    return n;
}

STACK_OF(X509_EXTENSION) *ca_profile_template_exts(const CA_PROFILE *p)
{
    X509_EXTENSION *const fixed[] = { p->bc, p->ku, p->eku, p->cdp, p->aia };
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e;
    size_t i;

    for (i = 0; sk != NULL && i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (fixed[i] == NULL)
            continue;
        if ((e = X509_EXTENSION_dup(fixed[i])) == NULL
            || !sk_X509_EXTENSION_push(sk, e)) {
            X509_EXTENSION_free(e);
            sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
            sk = NULL;
        }
    }
    return sk;
}

int ca_profile_subject_requested(const CA_PROFILE *p)
{
    return p->nsubj == 0 || p->allow_requested_subject;
}

size_t ca_profile_key_count(const CA_PROFILE *p)
{
    return p->nkeys;
}

int ca_profile_key_get(const CA_PROFILE *p, size_t i, int *id,
                       const char **group, int *min_bits, int *max_bits)
{
    if (i >= p->nkeys)
        return 0;
    *id = p->keys[i].id;
    *group = p->keys[i].group;
    *min_bits = p->keys[i].min_bits;
    *max_bits = p->keys[i].max_bits;
    return 1;
}
