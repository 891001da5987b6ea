/*
 * Internals of DER certificate assembly (ca_tbs.c, ca_issue_der.c): a
 * growable byte buffer, DER headers and extensions written with OpenSSL's
 * ASN.1 primitives, the per-profile parts encoded once at load, and the
 * pooled serial numbers. Nothing outside src/ca/ includes this.
 */
#ifndef CMPCA_CA_TBS_H
#define CMPCA_CA_TBS_H

#include <stddef.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/ca_profile.h"

/* Serial numbers: 20 random octets, top bit clear, never two leading zero
 * octets. */
#define CA_SERIAL_LEN 20
/* Issuances tried when the store reports a serial collision. */
#define CA_ISSUE_TRIES 5

/* A growable byte buffer; zero-initialise it. */
struct ca_buf {
    unsigned char *p;
    size_t len, cap;
};

/* Makes room for |n| more bytes and returns where they go (the caller
 * writes them and adds |n| to len), or NULL when out of memory. */
unsigned char *ca_buf_room(struct ca_buf *b, size_t n);
/* Appends |n| bytes. Returns 1 or 0. */
int ca_buf_add(struct ca_buf *b, const void *d, size_t n);
/* Appends the DER of |obj| of type |it|. Returns 1 or 0. */
int ca_buf_item(struct ca_buf *b, const void *obj, const ASN1_ITEM *it);
/* Appends a DER identifier and definite length (ASN1_put_object) for
 * content of |len| octets. Returns 1 or 0. */
int ca_buf_hdr(struct ca_buf *b, int constructed, int tag, int xclass,
               size_t len);
/* Frees the bytes (not |b|) and zeroes it. */
void ca_buf_free(struct ca_buf *b);

/* Returns the total DER size of a TLV with |len| content octets and |tag|
 * (ASN1_object_size), or 0 when too large. */
size_t ca_der_size(int tag, size_t len);

/*
 * Appends an Extension: SEQUENCE { extnID (|oid|, DER), critical TRUE if
 * |crit| (absent otherwise, DER DEFAULT FALSE), extnValue OCTET STRING
 * holding |val| }. Returns 1 or 0.
 */
int ca_der_ext(struct ca_buf *b, const unsigned char *oid, size_t oidlen,
               int crit, const unsigned char *val, size_t vlen);

/* Process-wide constants, set up once (never freed). */
struct ca_tbs_const {
    EVP_MD *sha1, *sha256;               /* fetched once */
    unsigned char version[8];            /* [0] EXPLICIT INTEGER 2 */
    size_t version_len;
    unsigned char true_der[4];           /* BOOLEAN TRUE */
    size_t true_len;
    unsigned char oid_ski[16], oid_san[16];   /* DER OBJECT IDENTIFIERs */
    size_t oid_ski_len, oid_san_len;
    BIO_METHOD *bio;                     /* writes into a struct ca_buf */
};
/* Returns the constants, or NULL if they could not be set up. */
const struct ca_tbs_const *ca_tbs_const_get(void);

/* A BIO of ca_tbs_const.bio appending to |b|. Returns NULL on error. */
BIO *ca_tbs_bio_new(struct ca_buf *b);

/* Writes the next serial's magnitude octets (no leading zero octet, 19 or
 * 20 of them, as the ASN1_INTEGER holds them) into |out|, sets *len.
 * Random bytes come from RAND_bytes in batches kept per thread (refilled
 * after fork). Returns 1 or 0. */
int ca_serial_next(unsigned char out[CA_SERIAL_LEN], size_t *len);

/* One subject template attribute; der/text set when it has no ${var}. */
struct ca_tbs_rdn {
    int nid;
    unsigned char *der;      /* the RDN: SET { AttributeTypeAndValue } */
    size_t der_len;
    char *text;              /* "SN=value" as X509_NAME_print_ex(RFC 2253)
                              * prints it */
    size_t text_len;
};

/* A profile's parts encoded once at load. */
struct ca_tbs_prof {
    unsigned char *ext_pre;  /* basicConstraints, keyUsage, extKeyUsage */
    size_t ext_pre_len;
    unsigned char *ext_post; /* cRLDistributionPoints, authorityInfoAccess */
    size_t ext_post_len;
    struct ca_tbs_rdn *rdn;  /* one per subject template attribute */
    size_t nrdn;
};

/* Encodes the fixed parts of |p| (its extensions and subject template must
 * be set). Returns 1 and sets *out, or 0. */
int ca_tbs_prof_new(const CA_PROFILE *p, struct ca_tbs_prof **out);
void ca_tbs_prof_free(struct ca_tbs_prof *t);

/*
 * Appends the RDN for attribute |nid| = |val| (UTF-8) to |der| and its
 * RFC 2253 text "SN=value" to |text| (either may be NULL). Returns 1, 0 if
 * the value is not valid for the attribute (OpenSSL's error queue then says
 * why: the caller reads and clears it), -1 on other errors. ca_issue_der()
 * and the profile check at load encode subject attributes with it
 * (ca_issue() makes the same X509_NAME_ENTRY through OpenSSL).
 */
int ca_tbs_rdn(int nid, const char *val, struct ca_buf *der,
               struct ca_buf *text);

/* The subjectAltName names of a certificate for |req| per the profile's
 * san rule: *out (the caller frees it) and its criticality, or *out NULL
 * when the certificate gets none. Shared by ca_issue() and ca_issue_der().
 * Returns CA_ISSUE_OK or the refusal (message in |err|). */
enum ca_issue_rc ca_san_names(const CA_PROFILE *p,
                              const struct ca_issue_req *req,
                              GENERAL_NAMES **out, int *crit, char *err,
                              size_t errlen);

/* The checks and validity shared by ca_issue() and ca_issue_der(): the CA
 * has its key, the key is allowed, the CA has not expired; *nb and *na are
 * notBefore (backdated) and notAfter (capped at the CA's). Returns
 * CA_ISSUE_OK (|err| emptied) or the refusal (message in |err|). */
enum ca_issue_rc ca_issue_prepare(const CA *ca, const CA_PROFILE *p,
                                  const struct ca_issue_req *req, time_t *nb,
                                  time_t *na, char *err, size_t errlen);

#endif
