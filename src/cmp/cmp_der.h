/*
 * A schema-free DER checker: walks every TLV of an encoding (Names,
 * certificates, CSRs and ANY values included) and refuses what DER forbids
 * and can be seen without the ASN.1 module. No I/O, no allocation.
 */
#ifndef CMPCA_CMP_DER_H
#define CMPCA_CMP_DER_H

#include <stddef.h>

/* Outcome of cmp_der_check. */
enum cmp_der_result {
    CMP_DER_OK = 0,     /* DER as far as the encoding alone shows */
    CMP_DER_BER,        /* a valid BER encoding that is not DER */
    CMP_DER_MALFORMED   /* not a valid encoding (bad lengths, tags, depth) */
};

#define CMP_DER_MAX_DEPTH 64

/* Checks that the |len| bytes at |der| are exactly one TLV and that every
 * TLV inside it, at any depth, follows DER (X.690 clause 10/11): definite
 * lengths in the shortest form, tag numbers in the shortest form, no
 * constructed encoding of a universal primitive type (BIT/OCTET STRING,
 * character strings, times), primitive SEQUENCE/SET refused, BOOLEAN of one
 * octet 00 or FF, INTEGER/ENUMERATED in the fewest octets, NULL empty, OIDs
 * with minimal subidentifiers, BIT STRING unused bits 0..7 and zero, the
 * elements of every SET in ascending order of their encodings, UTCTime as
 * YYMMDDHHMMSSZ and GeneralizedTime as YYYYMMDDHHMMSS[.f*]Z without
 * trailing zeros. The content of OCTET STRINGs, BIT STRINGs and primitive
 * context/application/private tags is not parsed (it is data, e.g. an
 * extension value or a key). Constructed elements of any class are walked,
 * up to CMP_DER_MAX_DEPTH levels (deeper is CMP_DER_MALFORMED). What needs
 * the ASN.1 module (DEFAULT values left out, the form under an IMPLICIT
 * tag) is not seen here. */
enum cmp_der_result cmp_der_check(const unsigned char *der, size_t len);

#endif
