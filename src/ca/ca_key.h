/*
 * Key pairs for CAs and CMP signers: generation by type string ("ec:P-256",
 * "ec:P-384", "rsa:3072", "ed25519", "ed448"), describing a key, and writing
 * it as a (normally passphrase-encrypted) PKCS#8 PEM file created 0600.
 */
#ifndef CMPCA_CA_KEY_H
#define CMPCA_CA_KEY_H

#include <stddef.h>
#include <openssl/evp.h>

/* Type used when none is given. */
#define CA_KEY_DEFAULT_TYPE "ec:P-256"

/* Generates a new key pair of |type| (NULL = CA_KEY_DEFAULT_TYPE). RSA sizes
 * 2048..4096 in steps of 8 bits. Returns 1 and sets *out, or 0 with a reason
 * in |err|. */
int ca_key_generate(const char *type, EVP_PKEY **out, char *err, size_t errlen);

/* Writes "ec:P-256" / "rsa:3072" / "ed25519" / "ed448" for |pkey| into |buf|.
 * Returns 1, or 0 for a key type cmpca does not know. */
int ca_key_describe(const EVP_PKEY *pkey, char *buf, size_t buflen);

/* Writes the private key of |pkey| to a new file |path| as PKCS#8 PEM,
 * encrypted with AES-256-CBC under |pass| unless |pass| is NULL. The file is
 * created with O_CREAT|O_EXCL and mode 0600; an existing file is an error.
 * On a write error the partial file is removed. Returns 1 or 0 (+ |err|). */
int ca_key_write(const char *path, EVP_PKEY *pkey, const char *pass,
                 char *err, size_t errlen);

#endif
