/*
 * The issuer interface of the CMP server: who turns an authorised
 * certificate request into a certificate, and who records issuance and
 * revocation (with their audit rows) in the store. The local issuer is the
 * CA engine of src/ca; an upstream issuer (another CA over CMP) fits the
 * same table. Handlers never call the CA engine directly.
 */
#ifndef CMPCA_ISSUER_H
#define CMPCA_ISSUER_H

#include "ca/ca.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct issuer ISSUER;

/* What an issuer answers to a submitted request. */
enum issuer_rc {
    ISSUER_ISSUED = 0,   /* the certificate is in the result */
    ISSUER_PENDING,      /* decided later (delayed delivery): poll again */
    ISSUER_REJECTED,     /* refused for its content: result.reason says why */
    ISSUER_UNAVAIL,      /* the issuer cannot answer now (systemUnavail) */
    ISSUER_ERROR         /* internal failure (systemFailure) */
};

/* Why a request was rejected (maps to a failInfo in the server). */
enum issuer_reject {
    ISSUER_REJECT_NONE = 0,
    ISSUER_REJECT_TEMPLATE,  /* subject, extension or key not acceptable */
};

/* Who the audit rows name and what they record besides the certificate. */
struct issuer_audit {
    const char *actor;        /* "cmp:<alias>:<device>" or "...:ra=<name>:..." */
    const char *alias;
    const char *request;      /* "ir", "kur", ... */
    const char *device;       /* device label, may be "" */
    const char *ra;           /* RA name or NULL */
    const char *tid_hex;      /* transactionID in hex */
};

/* The result of a submission. */
struct issuer_result {
    enum issuer_reject reason;
    char detail[256];         /* why, for the log and the error text */
    struct store_cert cert;   /* ISSUED: the certificate as it will be
                               * stored (DER, serial, ...) */
    struct ca_issue_unsigned defer; /* signer set: cert.der is still to be
                                     * signed (the request's defer pointed
                                     * here; the local issuer only) */
};

/* The table an issuer implements. */
struct issuer_ops {
    const char *name;
    /* Produces a certificate for |req| (no store access; may block for an
     * upstream issuer). |device_id| (0 = none) is recorded with it. */
    enum issuer_rc (*submit)(ISSUER *iss, const struct ca_issue_req *req,
                             int64_t device_id, struct issuer_result *res);
    /* Records the certificate of |res| exactly as submitted (the response
     * carrying it may be built already) in the caller's write transaction
     * with its audit row. Sets *cert_id. Returns ISSUER_ISSUED, or
     * ISSUER_UNAVAIL (store busy, serial collision: retry) / ISSUER_ERROR
     * with res->detail. */
    enum issuer_rc (*record)(ISSUER *iss, STORE_TX *tx,
                             struct issuer_result *res,
                             const struct issuer_audit *audit,
                             int64_t *cert_id);
    /* Revokes |cert_id| with RFC 5280 |reason| (-1 none) at |when| in |tx|,
     * audit row naming |actor| included. */
    enum ca_revoke_rc (*revoke)(ISSUER *iss, STORE_TX *tx, int64_t cert_id,
                                int reason, int64_t when, const char *actor,
                                char *err, size_t errlen);
    void (*free)(ISSUER *iss);
};

struct issuer {
    const struct issuer_ops *ops;
};

/* The local issuer: |ca| and |prof| are borrowed and must outlive it.
 * Returns NULL on allocation failure. */
ISSUER *issuer_local_new(const CA *ca, const CA_PROFILE *prof);

/* Calls through the table. */
enum issuer_rc issuer_submit(ISSUER *iss, const struct ca_issue_req *req,
                             int64_t device_id, struct issuer_result *res);
enum issuer_rc issuer_record(ISSUER *iss, STORE_TX *tx,
                             struct issuer_result *res,
                             const struct issuer_audit *audit,
                             int64_t *cert_id);
enum ca_revoke_rc issuer_revoke(ISSUER *iss, STORE_TX *tx, int64_t cert_id,
                                int reason, int64_t when, const char *actor,
                                char *err, size_t errlen);
/* Frees what |res| holds (not |res| itself); harmless on a cleared one. */
void issuer_result_clear(struct issuer_result *res);
/* NULL is harmless. */
void issuer_free(ISSUER *iss);

#endif
