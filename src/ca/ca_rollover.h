/*
 * Root CA key rollover (RFC 9810 4.4, RFC 9483 4.3.2): a new key for a
 * self-signed root, the new root (newWithNew) and the two link
 * certificates (newWithOld: the new key certified by the old one;
 * oldWithNew: the old key certified by the new one), recorded in the store
 * so that the CA signs with the new key from then on and genm
 * rootCaKeyUpdate can hand the three certificates out.
 */
#ifndef CMPCA_CA_ROLLOVER_H
#define CMPCA_CA_ROLLOVER_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "store/store.h"

/* The three certificates of one rollover (owned). */
struct ca_rollover_certs {
    X509 *new_with_new;
    X509 *new_with_old;
    X509 *old_with_new;
};

/*
 * Makes the certificates of a rollover of root CA |ca| (self-signed,
 * loaded with its key) to the key of |new_signer|: newWithNew with the
 * root's subject, |days| of validity and the old root's pathlen;
 * newWithOld (new key, signed by the old key) and oldWithNew (old key,
 * signed by the new key), both valid from now until the old root's
 * notAfter. Returns 1 and fills |out|, or 0 with a message in |err|.
 */
int ca_rollover_make(const CA *ca, const CA_SIGNER *new_signer, long days,
                     struct ca_rollover_certs *out, char *err, size_t errlen);
/* Frees the certificates of |c| and zeroes it. */
void ca_rollover_certs_clear(struct ca_rollover_certs *c);

/*
 * Records rollover |c| of |ca| in the write transaction |tx|: the CA
 * record now holds newWithNew and the new key |key_ref|; a ca_rollover row
 * keeps the three certificates and the SHA-256 of the old root; the two
 * link certificates enter the certificates table (profile "rollover");
 * an audit row "ca.rollover" names |actor|. Sets *id (may be NULL).
 * Returns the store code; the caller commits.
 */
enum store_rc ca_rollover_record(STORE_TX *tx, const CA *ca,
                                 const struct ca_rollover_certs *c,
                                 const char *key_ref, const char *actor,
                                 int64_t *id);

/*
 * Finds the rollover a client holding root |root| needs (RFC 9483 4.3.2):
 * among |v| (|n| rows, oldest first, from store_rollover_list) the newest
 * whose old root is |root|; failing that, if |root| is the new root of a
 * rollover, the newest such one (the client may still trust the old root).
 * Returns the row (borrowed) or NULL when no update applies.
 */
const struct store_rollover *ca_rollover_find(struct store_rollover **v,
                                               size_t n, X509 *root,
                                               int only_old);

#endif
