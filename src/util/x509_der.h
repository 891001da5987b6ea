/*
 * One certificate from DER bytes, exactly: what the store, the CMP layer and
 * the CLI use wherever they turn stored or received bytes into an X509.
 */
#ifndef CMPCA_UTIL_X509_DER_H
#define CMPCA_UTIL_X509_DER_H

#include <openssl/x509.h>
#include <stddef.h>

/* Returns a new X509 decoded from exactly the |len| bytes at |der|, or NULL
 * if they are not one certificate (trailing bytes included), |der| is NULL
 * or |len| is 0 or beyond what d2i takes. */
X509 *x509_der_get1(const unsigned char *der, size_t len);

#endif
