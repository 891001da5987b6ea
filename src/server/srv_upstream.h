/*
 * The upstream of an alias in mode = upstream (an RA in front of a CMP
 * CA): shared by mode_upstream.c (configuration, device policy) and
 * op_forward.c (forwarding, relaying the answers). Read-only once loaded.
 */
#ifndef CMPCA_SRV_UPSTREAM_H
#define CMPCA_SRV_UPSTREAM_H

#include "server/srv_int.h"

#include "client/upclient.h"

enum srv_up_form {
    SRV_UP_NESTED = 0,      /* RFC 9483 5.2.2.1: the device's message
                             * unchanged inside a wrapper the RA protects */
    SRV_UP_REPROTECT        /* RFC 9483 5.2.3.2: the RA's protection,
                             * raVerified, origPKIMessage */
};

#define SRV_UP_SEEN 16              /* validated upstream signers kept */

struct srv_upstream {
    UPCLIENT *uc;
    char *url;
    enum srv_up_form form;
    int rsp_reprotect;             /* answers re-protected by the RA */
    int wait;                      /* upstream_unavailable = wait: a
                                    * certificate request the upstream does
                                    * not take is answered "waiting" and
                                    * sent again at each pollReq */
    long poll_after;               /* checkAfter of those answers, s */
    const struct srv_mode *device_mode; /* the device policy (3gpp) */
    X509_STORE *trust;             /* anchors of the upstream's answers
                                    * (and of the operator certificates
                                    * devices renew and revoke with) */
    STACK_OF(X509) *anchors;       /* the same certificates: an upstream
                                    * that sends no extraCerts signs with
                                    * one of them */
    X509 *ra_cert;                 /* the RA's certificate */
    STACK_OF(X509) *ra_chain;      /* ra_cert, then its chain */
    CA_SIGNER *ra_signer;          /* its key (owned) */
    unsigned char *mac;            /* upstream_mac_secret instead of a
                                    * signature, or NULL */
    size_t mac_len;
    ASN1_OCTET_STRING *ra_kid;     /* the RA certificate's SKI */
    pthread_mutex_t seen_lock;     /* guards seen */
    struct {                       /* upstream signers whose path validated:
                                    * SHA-256, until when (5 min at most) */
        unsigned char sha256[32];
        time_t until;
    } seen[SRV_UP_SEEN];
};

#endif
