/*
 * Key generation and private key files for CAs and CMP signers. Only the
 * creation path touches raw keys; later use goes through ca_signer.
 */
#include "ca/ca_key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int ca_key_generate(const char *type, EVP_PKEY **out, char *err, size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    char *end;
    long bits;

    *out = NULL;
    if (type == NULL)
        type = CA_KEY_DEFAULT_TYPE;
    if (strcasecmp(type, "ec:P-256") == 0 || strcasecmp(type, "ec:prime256v1") == 0) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    } else if (strcasecmp(type, "ec:P-384") == 0 || strcasecmp(type, "ec:secp384r1") == 0) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    } else if (strcasecmp(type, "ec:P-521") == 0 || strcasecmp(type, "ec:secp521r1") == 0) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    } else if (strncasecmp(type, "rsa:", 4) == 0 || strcasecmp(type, "rsa") == 0) {
        bits = 3072;
        if (type[3] == ':') {
            errno = 0;
            bits = strtol(type + 4, &end, 10);
            if (errno != 0 || end == type + 4 || *end != '\0') {
                snprintf(err, errlen, "bad RSA key size in '%s'", type);
                return 0;
            }
        }
        if (bits < 2048 || bits > 4096 || bits % 8 != 0) {
            snprintf(err, errlen, "RSA key size %ld not in 2048..4096", bits);
            return 0;
        }
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    } else if (strcasecmp(type, "ed25519") == 0) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    } else if (strcasecmp(type, "ed448") == 0) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    } else {
        snprintf(err, errlen, "unknown key type '%s' (use ec:P-256, ec:P-384, "
                 "rsa:2048..4096, ed25519 or ed448)", type);
        return 0;
    }
    if (pkey == NULL) {
        snprintf(err, errlen, "key generation failed for '%s'", type);
        ERR_clear_error();
        return 0;
    }
    *out = pkey;
    return 1;
}

int ca_key_describe(const EVP_PKEY *pkey, char *buf, size_t buflen)
{
    char group[64];
    size_t glen = 0;

    if (pkey == NULL)
        return 0;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, sizeof(group), &glen))
            return 0;
        if (strcmp(group, "prime256v1") == 0)
            snprintf(buf, buflen, "ec:P-256");
        else if (strcmp(group, "secp384r1") == 0)
            snprintf(buf, buflen, "ec:P-384");
        else if (strcmp(group, "secp521r1") == 0)
            snprintf(buf, buflen, "ec:P-521");
        else
            snprintf(buf, buflen, "ec:%s", group);
        return 1;
    case EVP_PKEY_RSA:
        snprintf(buf, buflen, "rsa:%d", EVP_PKEY_get_bits(pkey));
        return 1;
    case EVP_PKEY_RSA_PSS:
        snprintf(buf, buflen, "rsa-pss:%d", EVP_PKEY_get_bits(pkey));
        return 1;
    case EVP_PKEY_ED25519:
        snprintf(buf, buflen, "ed25519");
        return 1;
    case EVP_PKEY_ED448:
        snprintf(buf, buflen, "ed448");
        return 1;
    default:
        return 0;
    }
}

int ca_key_write(const char *path, EVP_PKEY *pkey, const char *pass,
                 char *err, size_t errlen)
{
    /* encoded into a buffer that grows and ends wiped (no stdio buffer or
     * realloc leaves a copy of the key), then written with write(2) */
    BIO *mem = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len = 0;
    size_t off = 0;
    ssize_t r;
    int fd = -1, ok = 0, created = 0;

    if (mem == NULL
        || !(pass != NULL
             ? PEM_write_bio_PKCS8PrivateKey(mem, pkey, EVP_aes_256_cbc(),
                                             pass, (int)strlen(pass), NULL,
                                             NULL)
             : PEM_write_bio_PKCS8PrivateKey(mem, pkey, NULL, NULL, 0, NULL,
                                             NULL))
        || (len = BIO_get_mem_data(mem, &data)) <= 0) {
        snprintf(err, errlen, "cannot encode the private key");
        goto end;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create key file %s: %s", path,
                 strerror(errno));
        goto end;
    }
    created = 1;
    while (off < (size_t)len) {
        r = write(fd, data + off, (size_t)len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    if (off != (size_t)len || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto end;
    }
    ok = 1;
 end:
    if (fd >= 0 && close(fd) != 0 && ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        ok = 0;
    }
    if (!ok && created)
        unlink(path);
    if (data != NULL && len > 0)
        OPENSSL_cleanse(data, (size_t)len);
    BIO_free(mem);
    ERR_clear_error();
    return ok;
}
