/*
 * Replacing one element inside a DER encoding by other bytes, with the
 * lengths of every enclosing element rewritten: how a certificate signed
 * after its response was encoded takes the place of a placeholder in the
 * response (and in the bytes the response's signature covers).
 */
#ifndef CMPCA_UTIL_DER_SPLICE_H
#define CMPCA_UTIL_DER_SPLICE_H

#include <stddef.h>

/* Deepest nesting der_splice() walks through. */
#define DER_SPLICE_MAX_DEPTH 32

/*
 * |in| of |inlen| bytes is exactly one DER element (definite lengths
 * only); [off, off + olen) must be exactly one element inside it (or the
 * whole). Writes into a new OPENSSL_malloc'ed *out the same encoding with
 * that element replaced by the |rlen| bytes |repl| (one element too) and
 * each enclosing length rewritten, and sets *outlen. Returns 1, or 0 if
 * the input or the replacement is not such an encoding, the range is not
 * one element of it, more than DER_SPLICE_MAX_DEPTH elements enclose it,
 * or memory runs out.
 */
int der_splice(const unsigned char *in, size_t inlen, size_t off, size_t olen,
               const unsigned char *repl, size_t rlen, unsigned char **out,
               size_t *outlen);

/* The offset of the only occurrence of |needle| in |hay|: 1 and *off, or
 * 0 if it occurs never or more than once. */
int der_find_once(const unsigned char *hay, size_t haylen,
                  const unsigned char *needle, size_t nlen, size_t *off);

#endif
