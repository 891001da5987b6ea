/*
 * The values of genp answers (RFC 9483 4.3, RFC 9810 5.3.19): caCerts,
 * rootCaKeyUpdate, certReqTemplate and crls, built from the alias's CA,
 * profile, the stored root CA key rollovers and CRLs. Used by op_genm.c.
 */
#ifndef CMPCA_SRV_GENM_H
#define CMPCA_SRV_GENM_H

#include "server/srv_int.h"

#include <openssl/asn1.h>

/* Wraps DER |der| (|len| octets, a complete SEQUENCE) as an ASN1_TYPE of
 * type SEQUENCE (copied). NULL on error. */
ASN1_TYPE *srv_genm_type_der(const unsigned char *der, size_t len);

/* caCerts: the alias CA's chain up to its root, then for a rollover of
 * that root the new root, newWithOld and oldWithNew (each certificate
 * once). |rolls| from store_rollover_list (|nrolls| rows). NULL on error. */
ASN1_TYPE *srv_genm_ca_certs(const struct srv_alias *a,
                             struct store_rollover **rolls, size_t nrolls);

/* RootCaKeyUpdateContent of rollover |r|: newWithNew, [0] newWithOld,
 * [1] oldWithNew. NULL on error. */
ASN1_TYPE *srv_genm_root_update(const struct store_rollover *r);

/* CertReqTemplateContent of profile |p| (RFC 9483 4.3.3): certTemplate
 * with the subject template and the fixed extensions, keySpec with one
 * id-regCtrl-algId or id-regCtrl-rsaKeyLen control per allowed key type
 * (absent when any key is allowed). NULL on error. */
ASN1_TYPE *srv_genm_req_template(const CA_PROFILE *p);

#endif
