/*
 * Factory CA files: creating the vendor root and issuing CA, loading them
 * for issuance, key generation, passphrase specs and device serial lists.
 */
#include "factory/factory.h"
#include "util/pkey_md.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define FACTORY_ROOT_DAYS (30 * 366)
#define FACTORY_CA_DAYS   (25 * 366)
/* Largest CA key file read (a PEM RSA-16384 key is ~13 kB). */
#define FACTORY_KEYFILE_MAX 65536

/* Joins |dir| and |name|; returns 1, or 0 if it does not fit. */
static int factory_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);

    return n > 0 && (size_t)n < len;
}

int factory_keyspec_parse(const char *spec, struct factory_keyspec *ks)
{
    const char *s = spec != NULL ? spec : "ec:P-256";

    memset(ks, 0, sizeof(*ks));
    if (strcmp(s, "ec:P-256") == 0 || strcmp(s, "ec:P-384") == 0
        || strcmp(s, "ec:P-521") == 0) {
        ks->alg = "EC";
        ks->group = s + 3;
        return 1;
    }
    if (strncmp(s, "rsa:", 4) == 0) {
        char *end;
        long bits = strtol(s + 4, &end, 10);

        if (*end != '\0' || bits < 2048 || bits > 8192)
            return 0;
        ks->alg = "RSA";
        ks->bits = (unsigned int)bits;
        return 1;
    }
    if (strcmp(s, "ed25519") == 0) {
        ks->alg = "ED25519";
        return 1;
    }
    return 0;
}

EVP_PKEY_CTX *factory_keyspec_ctx(const struct factory_keyspec *ks)
{
    EVP_PKEY_CTX *k = EVP_PKEY_CTX_new_from_name(NULL, ks->alg, NULL);

    if (k == NULL || EVP_PKEY_keygen_init(k) <= 0
        || (ks->group != NULL && EVP_PKEY_CTX_set_group_name(k, ks->group) <= 0)
        || (ks->bits != 0
            && EVP_PKEY_CTX_set_rsa_keygen_bits(k, (int)ks->bits) <= 0)) {
        EVP_PKEY_CTX_free(k);
        return NULL;
    }
    return k;
}

EVP_PKEY *factory_keygen(const char *spec)
{
    struct factory_keyspec ks;
    EVP_PKEY_CTX *k;
    EVP_PKEY *pkey = NULL;

    if (!factory_keyspec_parse(spec, &ks) || (k = factory_keyspec_ctx(&ks)) == NULL)
        return NULL;
    if (EVP_PKEY_keygen(k, &pkey) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(k);
    return pkey;
}

/* Returns the digest to sign with |key| (NULL for EdDSA). */
static const EVP_MD *factory_md(EVP_PKEY *key)
{
    const char *md = pkey_default_md(key);

    return md != NULL ? EVP_get_digestbyname(md) : NULL;
}

/* Adds extension |nid| = |value| to |x| in the context |issuer| -> |x|. */
static int factory_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Makes a CA certificate for |key| named |name|, signed by |ikey| with
 * |issuer| (NULL: self-signed). Returns it or NULL. */
static X509 *factory_ca_cert(EVP_PKEY *key, const X509_NAME *name, X509 *issuer,
                             EVP_PKEY *ikey, int days, const char *bc)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();

    if (x == NULL || bn == NULL
        || !X509_set_version(x, X509_VERSION_3)
        || !BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || !X509_set_subject_name(x, name)
        || !X509_set_issuer_name(x, issuer != NULL
                                 ? X509_get_subject_name(issuer) : name)
        || X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL
        || !X509_set_pubkey(x, key)
        || !factory_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints, bc)
        || !factory_ext(x, issuer != NULL ? issuer : x, NID_key_usage,
                        "critical,keyCertSign,cRLSign")
        || !factory_ext(x, issuer != NULL ? issuer : x,
                        NID_subject_key_identifier, "hash")
        || (issuer != NULL
            && !factory_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))
        || !X509_sign(x, ikey, factory_md(ikey))) {
        X509_free(x);
        x = NULL;
    }
    BN_free(bn);
    return x;
}

/* Writes |len| bytes to a new file |path| with |mode|, fsynced; never
 * replaces an existing file. Returns 1 or 0 (errno set). */
static int factory_write_new(const char *path, const void *data, size_t len,
                             mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    const char *p = data;
    int saved;

    if (fd < 0)
        return 0;
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto err;
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0)
        goto err;
    return close(fd) == 0;
 err:
    saved = errno;
    close(fd);
    unlink(path);
    errno = saved;
    return 0;
}

/* One file written by factory_ca_create: a key (encrypted when |pass|) or
 * one or two certificates. */
struct factory_out {
    const char *name;
    EVP_PKEY *key;
    const char *pass;
    X509 *c1, *c2;
};

/* Serialises |out| into memory and writes it to the new file |dir|/name.
 * Returns FACTORY_OK; FACTORY_EXISTS if the file exists; FACTORY_ERROR
 * otherwise (|err| set in both cases). */
static enum factory_rc factory_save(const char *dir, const struct factory_out *out,
                                    char *err, size_t errlen)
{
    char path[4096];
    /* secmem: the buffer grows without leaving copies of a key behind */
    BIO *b = BIO_new(BIO_s_secmem());
    EVP_PKEY *key = out->key;
    const char *pass = out->pass;
    char *data;
    long len;
    int ok, saved = 0;

    if (b == NULL || !factory_path(path, sizeof(path), dir, out->name)) {
        BIO_free(b);
        snprintf(err, errlen, "path too long or out of memory");
        return FACTORY_ERROR;
    }
    if (key != NULL)
        ok = pass != NULL
            ? PEM_write_bio_PKCS8PrivateKey(b, key, EVP_aes_256_cbc(), NULL, 0,
                                            NULL, (void *)pass)
            : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    else
        ok = PEM_write_bio_X509(b, out->c1)
            && (out->c2 == NULL || PEM_write_bio_X509(b, out->c2));
    len = BIO_get_mem_data(b, &data);
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: encoding failed", path);
    } else if (!(ok = factory_write_new(path, data, (size_t)len,
                                        key != NULL ? 0600 : 0644))) {
        saved = errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
    }
    if (key != NULL && len > 0)
        OPENSSL_cleanse(data, (size_t)len);    /* no key left in freed memory */
    BIO_free(b);
    return ok ? FACTORY_OK : saved == EEXIST ? FACTORY_EXISTS : FACTORY_ERROR;
}

enum factory_rc factory_ca_create(const char *dir, const char *vendor,
                                  const char *key_type, const char *pass,
                                  char *err, size_t errlen)
{
    static const char *const files[] = {
        FACTORY_ROOT_CERT, FACTORY_ROOT_KEY, FACTORY_CA_CERT, FACTORY_CA_KEY,
        FACTORY_CHAIN
    };
    struct factory_out out[sizeof(files) / sizeof(files[0])];
    EVP_PKEY *rkey = NULL, *ckey = NULL;
    X509 *root = NULL, *ca = NULL;
    X509_NAME *rname = NULL, *cname = NULL;
    char cn[320], path[4096];
    size_t i, written = 0;
    enum factory_rc ret = FACTORY_ERROR;

    if (vendor == NULL || *vendor == '\0' || strlen(vendor) > 200) {
        snprintf(err, errlen, "the vendor name must have 1..200 characters");
        return FACTORY_ERROR;
    }
    if (!factory_mkdirs(dir, 0700)) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return FACTORY_ERROR;
    }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (!factory_path(path, sizeof(path), dir, files[i])) {
            snprintf(err, errlen, "path too long");
            return FACTORY_ERROR;
        }
        if (access(path, F_OK) == 0) {
            snprintf(err, errlen, "%s exists already; refusing to overwrite a CA", path);
            return FACTORY_EXISTS;
        }
    }
    if ((rkey = factory_keygen(key_type)) == NULL
        || (ckey = factory_keygen(key_type)) == NULL) {
        snprintf(err, errlen, "cannot generate a '%s' key (ec:P-256, ec:P-384, "
                 "rsa:BITS, ed25519)", key_type != NULL ? key_type : "ec:P-256");
        goto end;
    }
    rname = X509_NAME_new();
    cname = X509_NAME_new();
    snprintf(cn, sizeof(cn), "%s Root CA", vendor);
    if (rname == NULL || cname == NULL
        || !X509_NAME_add_entry_by_txt(rname, "O", MBSTRING_UTF8,
                                       (const unsigned char *)vendor, -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(rname, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0)) {
        snprintf(err, errlen, "bad vendor name");
        goto end;
    }
    snprintf(cn, sizeof(cn), "%s Issuing CA", vendor);
    if (!X509_NAME_add_entry_by_txt(cname, "O", MBSTRING_UTF8,
                                    (const unsigned char *)vendor, -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(cname, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0)) {
        snprintf(err, errlen, "bad vendor name");
        goto end;
    }
    if ((root = factory_ca_cert(rkey, rname, NULL, rkey, FACTORY_ROOT_DAYS,
                                "critical,CA:TRUE")) == NULL
        || (ca = factory_ca_cert(ckey, cname, root, rkey, FACTORY_CA_DAYS,
                                 "critical,CA:TRUE,pathlen:0")) == NULL) {
        snprintf(err, errlen, "cannot make the CA certificates");
        goto end;
    }
    out[0] = (struct factory_out){ FACTORY_ROOT_KEY, rkey, pass, NULL, NULL };
    out[1] = (struct factory_out){ FACTORY_CA_KEY, ckey, pass, NULL, NULL };
    out[2] = (struct factory_out){ FACTORY_ROOT_CERT, NULL, NULL, root, NULL };
    out[3] = (struct factory_out){ FACTORY_CA_CERT, NULL, NULL, ca, NULL };
    out[4] = (struct factory_out){ FACTORY_CHAIN, NULL, NULL, ca, root };
    for (; written < sizeof(out) / sizeof(out[0]); written++) {
        if ((ret = factory_save(dir, &out[written], err, errlen)) != FACTORY_OK)
            goto end;
    }
    ret = FACTORY_OK;
 end:
    if (ret != FACTORY_OK) {
        /* all or nothing: remove what this call wrote (and only that: a file
         * that appeared meanwhile is someone else's) */
        for (i = 0; i < written; i++) {
            if (factory_path(path, sizeof(path), dir, out[i].name))
                unlink(path);
        }
    }
    ERR_clear_error();
    X509_NAME_free(rname);
    X509_NAME_free(cname);
    X509_free(root);
    X509_free(ca);
    EVP_PKEY_free(rkey);
    EVP_PKEY_free(ckey);
    return ret;
}

/* PEM password callback returning the passphrase in |u| (or none). */
static int factory_pem_pass(char *buf, int size, int rwflag, void *u)
{
    size_t len;

    if (u == NULL)
        return 0;
    len = strlen(u);
    if (len > (size_t)size)
        return 0;
    memcpy(buf, u, len);
    return (int)len;
}

/* Opens |path| for reading into |*b|. Returns FACTORY_OK; FACTORY_NOTFOUND
 * if it (or its directory) does not exist; FACTORY_ERROR otherwise. */
static enum factory_rc factory_open(const char *path, BIO **b)
{
    FILE *fp = fopen(path, "r");

    *b = NULL;
    if (fp == NULL)
        return errno == ENOENT || errno == ENOTDIR ? FACTORY_NOTFOUND : FACTORY_ERROR;
    if ((*b = BIO_new_fp(fp, BIO_CLOSE)) == NULL) {
        fclose(fp);
        return FACTORY_ERROR;
    }
    return FACTORY_OK;
}

/* Reads the first certificate of |dir|/|name| into |*x|. Returns FACTORY_OK;
 * FACTORY_NOTFOUND if the file is missing; FACTORY_ERROR otherwise. */
static enum factory_rc factory_read_cert(const char *dir, const char *name, X509 **x)
{
    char path[4096];
    enum factory_rc rc = FACTORY_ERROR;
    BIO *b = NULL;

    *x = NULL;
    if (factory_path(path, sizeof(path), dir, name)
        && (rc = factory_open(path, &b)) == FACTORY_OK
        && (*x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
        rc = FACTORY_ERROR;
    BIO_free(b);
    return rc;
}

enum factory_rc factory_ca_load(struct factory_ca *ca, const char *dir,
                                const char *pass, char *err, size_t errlen)
{
    char path[4096], *keypem = NULL;
    size_t keylen = 0;
    X509_NAME *subj;
    BIO *b = NULL;
    enum factory_rc rc;
    int i;

    memset(ca, 0, sizeof(*ca));
    if ((rc = factory_read_cert(dir, FACTORY_CA_CERT, &ca->cert)) != FACTORY_OK
        || (rc = factory_read_cert(dir, FACTORY_ROOT_CERT, &ca->root)) != FACTORY_OK) {
        snprintf(err, errlen, "cannot read %s/%s and %s (create them with "
                 "`cmpca factory ca create`)", dir, FACTORY_CA_CERT, FACTORY_ROOT_CERT);
        goto err;
    }
    rc = FACTORY_ERROR;
    /* read with read(2) into a buffer wiped afterwards: no stdio buffer
     * keeps a copy of the key */
    if (!factory_path(path, sizeof(path), dir, FACTORY_CA_KEY)
        || !secret_file_read(path, FACTORY_KEYFILE_MAX, &keypem, &keylen)) {
        rc = errno == ENOENT || errno == ENOTDIR ? FACTORY_NOTFOUND
                                                 : FACTORY_ERROR;
        snprintf(err, errlen, "cannot open %s", path);
        goto err;
    }
    if ((b = BIO_new_mem_buf(keypem, (int)keylen)) == NULL)
        goto err;
    /* a key that cannot be read is unusable: wrong, missing passphrase or
     * damaged file look the same to the PEM decoder */
    rc = FACTORY_AUTH;
    ca->key = PEM_read_bio_PrivateKey(b, NULL, factory_pem_pass, (void *)pass);
    if (ca->key == NULL) {
        snprintf(err, errlen, "cannot read the key %s (wrong or missing passphrase?)",
                 path);
        goto err;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        snprintf(err, errlen, "%s does not match %s", FACTORY_CA_KEY, FACTORY_CA_CERT);
        goto err;
    }
    rc = FACTORY_ERROR;
    subj = X509_get_subject_name(ca->cert);
    if ((i = X509_NAME_get_index_by_NID(subj, NID_organizationName, -1)) >= 0) {
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                        X509_NAME_get_entry(subj, i)));

        if (n > 0)
            snprintf(ca->vendor, sizeof(ca->vendor), "%.*s", n, (char *)utf8);
        OPENSSL_free(utf8);
    }
    if (ca->vendor[0] == '\0') {
        snprintf(err, errlen, "%s has no O= (vendor name) in its subject", FACTORY_CA_CERT);
        goto err;
    }
    BIO_free(b);
    secret_free(keypem, keylen);
    ERR_clear_error();
    return FACTORY_OK;
 err:
    BIO_free(b);
    secret_free(keypem, keylen);
    ERR_clear_error();
    factory_ca_clear(ca);
    return rc;
}

void factory_ca_clear(struct factory_ca *ca)
{
    if (ca == NULL)
        return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    X509_free(ca->root);
    memset(ca, 0, sizeof(*ca));
}

int factory_mkdirs(const char *path, unsigned int mode)
{
    char buf[4096];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return 0;
    }
    memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return 0;
        buf[i] = path[i];
    }
    return 1;
}

int factory_serial_valid(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > FACTORY_SERIAL_MAX || strcmp(s, ".") == 0
        || strcmp(s, "..") == 0)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == ':'))
            return 0;
    }
    return 1;
}

void factory_serials_free(char **serials, size_t count)
{
    size_t i;

    if (serials == NULL)
        return;
    for (i = 0; i < count; i++)
        free(serials[i]);
    free(serials);
}

char **factory_serials_range(const char *prefix, unsigned long long start,
                             size_t count, int digits, char *err, size_t errlen)
{
    char **out;
    size_t i;

    if (count == 0 || count > 100000000 || digits < 0 || digits > 20) {
        snprintf(err, errlen, "bad count or digits");
        return NULL;
    }
    if ((out = calloc(count, sizeof(*out))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < count; i++) {
        char buf[FACTORY_SERIAL_MAX + 32];
        int n = snprintf(buf, sizeof(buf), "%s%0*llu", prefix, digits,
                         start + (unsigned long long)i);

        if (n <= 0 || (size_t)n >= sizeof(buf) || !factory_serial_valid(buf)) {
            snprintf(err, errlen, "serial '%s' is not valid (1..64 of A-Z a-z 0-9 - . :)",
                     buf);
            goto err;
        }
        if ((out[i] = strdup(buf)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto err;
        }
    }
    return out;
 err:
    factory_serials_free(out, count);
    return NULL;
}

static int factory_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **factory_serials_read(const char *path, size_t *count, char *err,
                            size_t errlen)
{
    FILE *fp = fopen(path, "r");
    char **out = NULL, **sorted = NULL, line[1024];
    size_t n = 0, cap = 0, lineno = 0, i;

    *count = 0;
    if (fp == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *s = line, *e;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            snprintf(err, errlen, "%s:%zu: line too long", path, lineno);
            goto err;
        }
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strcspn(s, "\r\n");
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        if (*s == '\0' || *s == '#' || (n == 0 && strcmp(s, "identifier") == 0))
            continue;
        if (!factory_serial_valid(s)) {
            snprintf(err, errlen, "%s:%zu: '%.64s' is not a valid serial "
                     "(1..64 of A-Z a-z 0-9 - . :)", path, lineno, s);
            goto err;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 1024 : cap * 2;
            char **p = ncap <= 100000000 ? realloc(out, ncap * sizeof(*out)) : NULL;

            if (p == NULL) {
                snprintf(err, errlen, "too many serials or out of memory");
                goto err;
            }
            out = p;
            cap = ncap;
        }
        if ((out[n] = strdup(s)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto err;
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s lists no serial numbers", path);
        goto err;
    }
    if ((sorted = malloc(n * sizeof(*sorted))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    memcpy(sorted, out, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), factory_strcmp);
    for (i = 1; i < n; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            snprintf(err, errlen, "%s: serial '%s' is listed twice", path, sorted[i]);
            goto err;
        }
    }
    free(sorted);
    fclose(fp);
    *count = n;
    return out;
 err:
    free(sorted);
    fclose(fp);
    factory_serials_free(out, n);
    return NULL;
}
