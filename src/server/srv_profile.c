/*
 * certProfile (RFC 9483 4.1.1, RFC 9480 id-it 21): the profiles an alias
 * offers (its default `profile` and those of `profiles`), each with its
 * own issuer, and the policy which requester may name which profile.
 * Parsing the generalInfo value is in src/cmp/cmp_profile.c.
 */
#include "server/srv_int.h"

#include "cmp/cmp_profile.h"
#include "conf/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_profiles_load(struct srv_alias *a, const struct conf *conf,
                      const struct conf_section *sec, char *err,
                      size_t errlen)
{
    const char *list = conf_get(sec, "profiles");
    char **v = NULL;
    size_t n = 0, i, j;
    int ok = 0;

    if (list != NULL && !srv_list_split(list, &v, &n))
        goto end;
    if ((a->profiles = calloc(n + 1, sizeof(*a->profiles))) == NULL)
        goto end;
    a->profiles[0].name = a->profile_name;
    a->profiles[0].prof = a->profile;
    a->profiles[0].issuer = a->issuer;
    a->nprofiles = 1;
    for (i = 0; i < n; i++) {
        struct srv_profile *p = &a->profiles[a->nprofiles];

        for (j = 0; j < a->nprofiles; j++)
            if (strcmp(a->profiles[j].name, v[i]) == 0)
                break;
        if (j < a->nprofiles)
            continue;               /* the default, or named twice */
        if (!ca_profile_load(conf, v[i], &p->prof, err, errlen))
            goto end;
        p->owned = 1;
        a->nprofiles++;
        p->name = ca_profile_get0_name(p->prof);
        if ((p->issuer = issuer_local_new(a->ca, p->prof)) == NULL)
            goto end;
    }
    ok = 1;
 end:
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
    if (!ok && err[0] == '\0')
        snprintf(err, errlen, "[alias %s]: cannot load its profiles", a->name);
    return ok;
}

void srv_profiles_clear(struct srv_alias *a)
{
    size_t i;

    for (i = 0; i < a->nprofiles; i++) {
        if (!a->profiles[i].owned)
            continue;
        issuer_free(a->profiles[i].issuer);
        ca_profile_free(a->profiles[i].prof);
    }
    free(a->profiles);
    a->profiles = NULL;
    a->nprofiles = 0;
}

const struct srv_profile *srv_profile_lookup(const struct srv_ctx *ctx,
                                             const char *name)
{
    const struct srv_alias *a = ctx->alias;
    size_t i;

    for (i = 0; i < a->nprofiles; i++)
        if (strcmp(a->profiles[i].name, name) == 0)
            return &a->profiles[i];
    return NULL;
}

/* The enum store_ra_op bit of |op|. */
static unsigned srv_profile_ra_bit(enum srv_op op)
{
    switch (op) {
    case SRV_OP_CR: return STORE_RA_OP_CR;
    case SRV_OP_P10CR: return STORE_RA_OP_P10CR;
    case SRV_OP_KUR: return STORE_RA_OP_KUR;
    default: return STORE_RA_OP_IR;
    }
}

enum cmp_reason srv_profile_choose(struct srv_ctx *ctx, enum srv_op op)
{
    const struct srv_profile *p;
    char *name = NULL;
    enum cmp_reason r;

    ctx->profile = NULL;
    if ((r = cmp_hdr_get1_cert_profile(ctx->req->header, &name)) != CMP_R_OK)
        return srv_fail(ctx, r, "certProfile: one profile name expected");
    if (name == NULL)
        return CMP_R_OK;
    if ((p = srv_profile_lookup(ctx, name)) == NULL) {
        r = srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE, "certProfile %s is not "
                       "offered on alias %s", name, ctx->alias->name);
        goto end;
    }
    /* an RA may use only the profiles of its registry record */
    if (ctx->rq.kind == SRV_RQ_RA && ctx->rq.ra != NULL
        && store_ra_check(ctx->rq.ra, ctx->alias->name, p->name,
                          srv_profile_ra_bit(op)) == STORE_RA_NO_PROFILE) {
        r = srv_reject(ctx, CMP_R_BAD_CERT_TEMPLATE, "RA %s may not request "
                       "certProfile %s", ctx->rq.ra->name, name);
        goto end;
    }
    ctx->profile = p;
    r = CMP_R_OK;
 end:
    free(name);
    return r;
}

ISSUER *srv_profile_issuer(const struct srv_ctx *ctx)
{
    return ctx->profile != NULL ? ctx->profile->issuer : ctx->alias->issuer;
}

const char *srv_profile_name(const struct srv_ctx *ctx)
{
    return ctx->profile != NULL ? ctx->profile->name
                                : ctx->alias->profile_name;
}
