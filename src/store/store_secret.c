/*
 * Store front end for device secrets (mac mode): argument checks and the
 * one policy of the table (a reference belongs to one device), then the
 * backend's record mapping. The secrets arrive sealed (src/util/kek.h).
 */
#include "store/store_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define OPS(tx) ((tx)->st->ops)

void store_device_secret_free(struct store_device_secret *s)
{
    if (s == NULL)
        return;
    free(s->ref);
    if (s->sealed != NULL)
        OPENSSL_cleanse(s->sealed, s->sealed_len);
    free(s->sealed);
    free(s);
}

enum store_rc store_device_secret_put(STORE_TX *tx, int64_t device_id,
                                      const char *ref,
                                      const unsigned char *sealed,
                                      size_t sealed_len)
{
    struct store_device_secret *other = NULL;
    enum store_rc rc;
    size_t len = ref != NULL ? strlen(ref) : 0;

    if (!tx->write)
        return store_tx_fail(tx, STORE_ERROR, "write in a read-only "
                             "transaction");
    if (len == 0 || len > STORE_SECRET_REF_MAX || sealed_len == 0
        || sealed_len > STORE_SECRET_BLOB_MAX)
        return store_tx_fail(tx, STORE_ERROR, "device secret: reference of "
                             "1..%d octets and a sealed secret required",
                             STORE_SECRET_REF_MAX);
    rc = OPS(tx)->device_secret_get(tx, 0, ref, &other);
    if (rc == STORE_OK && other->device_id != device_id)
        rc = store_tx_fail(tx, STORE_EXISTS, "reference '%s' belongs to "
                           "another device", ref);
    else if (rc == STORE_OK || rc == STORE_NOTFOUND)
        rc = OPS(tx)->device_secret_put(tx, device_id, ref, sealed,
                                        sealed_len);
    store_device_secret_free(other);
    return rc;
}

enum store_rc store_device_secret_get(STORE_TX *tx, int64_t device_id,
                                      const char *ref,
                                      struct store_device_secret **out)
{
    *out = NULL;
    if (ref != NULL && (*ref == '\0' || strlen(ref) > STORE_SECRET_REF_MAX))
        return STORE_NOTFOUND;
    return OPS(tx)->device_secret_get(tx, ref != NULL ? 0 : device_id, ref,
                                      out);
}

enum store_rc store_device_secret_fail(STORE_TX *tx, int64_t device_id,
                                       int max_failures, int *failures,
                                       int *locked)
{
    *failures = 0;
    *locked = 0;
    if (!tx->write)
        return store_tx_fail(tx, STORE_ERROR, "write in a read-only "
                             "transaction");
    return OPS(tx)->device_secret_fail(tx, device_id,
                                       max_failures > 0 ? max_failures : 1,
                                       failures, locked);
}

enum store_rc store_device_secret_set(STORE_TX *tx, int64_t device_id,
                                      int op)
{
    if (!tx->write)
        return store_tx_fail(tx, STORE_ERROR, "write in a read-only "
                             "transaction");
    if (op != STORE_SECRET_UNLOCK && op != STORE_SECRET_CONSUME)
        return store_tx_fail(tx, STORE_ERROR, "bad secret operation %d", op);
    return OPS(tx)->device_secret_set(tx, device_id, op);
}
