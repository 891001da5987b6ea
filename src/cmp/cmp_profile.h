/*
 * certProfile (RFC 9483 4.1.1, RFC 9480 id-it 21) in a PKIHeader's
 * generalInfo: reading the profile a request names, and adding one (for
 * tools and tests). No I/O.
 */
#ifndef CMPCA_CMP_PROFILE_H
#define CMPCA_CMP_PROFILE_H

#include "asn1/cmp_asn1.h"
#include "cmp/cmp_reason.h"

/* Longest profile name accepted, in octets. */
#define CMP_PROFILE_NAME_MAX 128

/*
 * Reads certProfile of |hdr|: CMP_R_OK with *name a malloc'ed copy of the
 * one UTF8String (NULL when generalInfo has no certProfile). More than one
 * certProfile entry or value, none, a value that is no SEQUENCE OF
 * UTF8String, an embedded NUL or a name over CMP_PROFILE_NAME_MAX:
 * CMP_R_BAD_REQUEST.
 */
enum cmp_reason cmp_hdr_get1_cert_profile(const CMP_HDR *hdr, char **name);

/* Appends a certProfile entry with the |n| names |names| to |hdr|'s
 * generalInfo. Returns 1 or 0. */
int cmp_hdr_push_cert_profile(CMP_HDR *hdr, const char *const *names, int n);

#endif
