/*
 * The local issuer: certificates signed by a CA of this cmpca (src/ca) and
 * recorded, with their audit rows, in the caller's store transaction.
 */
#include "issuer/issuer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct issuer_local {
    struct issuer base;            /* first: ISSUER * points here */
    const CA *ca;
    const CA_PROFILE *prof;
};

static struct issuer_local *issuer_local_of(ISSUER *iss)
{
    return (struct issuer_local *)iss;
}

/* Maps the CA engine's result to the issuer's answer. */
static enum issuer_rc issuer_local_map(enum ca_issue_rc rc,
                                       struct issuer_result *res)
{
    switch (rc) {
    case CA_ISSUE_OK:
        return ISSUER_ISSUED;
    case CA_ISSUE_BAD_KEY:
    case CA_ISSUE_BAD_SUBJECT:
    case CA_ISSUE_BAD_EXT:
        res->reason = ISSUER_REJECT_TEMPLATE;
        return ISSUER_REJECTED;
    case CA_ISSUE_EXPIRED:
    case CA_ISSUE_STORE:
        return ISSUER_UNAVAIL;
    default:
        return ISSUER_ERROR;
    }
}

static enum issuer_rc issuer_local_submit(ISSUER *iss,
                                          const struct ca_issue_req *req,
                                          int64_t device_id,
                                          struct issuer_result *res)
{
    struct issuer_local *il = issuer_local_of(iss);

    ca_store_cert_clear(&res->cert);
    res->reason = ISSUER_REJECT_NONE;
    res->detail[0] = '\0';
    return issuer_local_map(ca_issue_der(il->ca, il->prof, req, device_id,
                                         &res->cert, res->detail,
                                         sizeof(res->detail)), res);
}

/* Appends the issuance audit row for |rec|: object = serial (the one
 * format of src/ca), details = alias, request, device, RA, transaction. */
static enum store_rc issuer_local_audit(STORE_TX *tx,
                                        const struct store_cert *rec,
                                        const struct issuer_audit *a)
{
    char serial[2 * STORE_SERIAL_MAX + 1];
    json_t *j;
    char *details;
    enum store_rc rc;

    j = json_pack("{s:s, s:s, s:s, s:s}", "alias", a->alias,
                  "request", a->request, "device", a->device,
                  "transactionID", a->tid_hex);
    if (j != NULL && a->ra != NULL)
        json_object_set_new(j, "ra", json_string(a->ra));
    details = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rc = store_audit_append(tx, a->actor, "cert.issue",
                            ca_serial_hex(rec->serial, rec->serial_len,
                                          serial, sizeof(serial)),
                            details);
    free(details);
    json_decref(j);
    return rc;
}

static enum issuer_rc issuer_local_record(ISSUER *iss, STORE_TX *tx,
                                          struct issuer_result *res,
                                          const struct issuer_audit *audit,
                                          int64_t *cert_id)
{
    enum store_rc rc;

    /* The response carrying this very DER is built already: a serial
     * collision (2^-159, refused by the unique constraint) is not re-issued
     * behind its back but answered systemUnavail, and the client retries. */
    *cert_id = 0;
    rc = store_cert_insert(tx, &res->cert, cert_id);
    if (rc == STORE_OK) {
        res->cert.id = *cert_id;
        rc = issuer_local_audit(tx, &res->cert, audit);
    }
    if (rc != STORE_OK) {
        snprintf(res->detail, sizeof(res->detail), "store: %s (%s)",
                 store_rc_str(rc), store_tx_errmsg(tx));
        return rc == STORE_BUSY || rc == STORE_ERROR || rc == STORE_EXISTS
            ? ISSUER_UNAVAIL : ISSUER_ERROR;
    }
    return ISSUER_ISSUED;
}

static enum ca_revoke_rc issuer_local_revoke(ISSUER *iss, STORE_TX *tx,
                                             int64_t cert_id, int reason,
                                             int64_t when, const char *actor,
                                             char *err, size_t errlen)
{
    return ca_revoke(issuer_local_of(iss)->ca, tx, cert_id, reason, when,
                     actor, err, errlen);
}

static void issuer_local_free(ISSUER *iss)
{
    free(issuer_local_of(iss));
}

static const struct issuer_ops issuer_local_ops = {
    "local", issuer_local_submit, issuer_local_record, issuer_local_revoke,
    issuer_local_free,
};

ISSUER *issuer_local_new(const CA *ca, const CA_PROFILE *prof)
{
    struct issuer_local *il = calloc(1, sizeof(*il));

    if (il == NULL)
        return NULL;
    il->base.ops = &issuer_local_ops;
    il->ca = ca;
    il->prof = prof;
    return &il->base;
}

enum issuer_rc issuer_submit(ISSUER *iss, const struct ca_issue_req *req,
                             int64_t device_id, struct issuer_result *res)
{
    return iss->ops->submit(iss, req, device_id, res);
}

enum issuer_rc issuer_record(ISSUER *iss, STORE_TX *tx,
                             struct issuer_result *res,
                             const struct issuer_audit *audit,
                             int64_t *cert_id)
{
    return iss->ops->record(iss, tx, res, audit, cert_id);
}

enum ca_revoke_rc issuer_revoke(ISSUER *iss, STORE_TX *tx, int64_t cert_id,
                                int reason, int64_t when, const char *actor,
                                char *err, size_t errlen)
{
    return iss->ops->revoke(iss, tx, cert_id, reason, when, actor, err,
                            errlen);
}

void issuer_result_clear(struct issuer_result *res)
{
    ca_store_cert_clear(&res->cert);
    memset(res, 0, sizeof(*res));
}

void issuer_free(ISSUER *iss)
{
    if (iss != NULL)
        iss->ops->free(iss);
}
