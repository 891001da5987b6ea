/*
 * Exact DER decoding of one certificate (see x509_der.h).
 */
#include "util/x509_der.h"

#include <limits.h>

X509 *x509_der_get1(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x;

    if (der == NULL || len == 0 || len > (size_t)LONG_MAX)
        return NULL;
    x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    return x;
}
