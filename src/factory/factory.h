/*
 * Vendor factory tooling: a vendor root and issuing CA on disk, bulk
 * issuance of device vendor credentials (IDevID-like: key, certificate with
 * the serial number in the subject, chain) and the allow-list for cmpca.
 */
#ifndef CMPCA_FACTORY_H
#define CMPCA_FACTORY_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Files of a factory CA directory. */
#define FACTORY_ROOT_CERT "vendor-root.pem"
#define FACTORY_ROOT_KEY  "vendor-root.key"
#define FACTORY_CA_CERT   "vendor-ca.pem"
#define FACTORY_CA_KEY    "vendor-ca.key"
#define FACTORY_CHAIN     "vendor-chain.pem" /* issuing CA, then root */
#define FACTORY_ALLOWLIST "allowlist.csv"

/* Longest device serial number (X.520 serialNumber upper bound). */
#define FACTORY_SERIAL_MAX 64

/* A loaded issuing CA. */
struct factory_ca {
    EVP_PKEY *key;          /* issuing CA private key */
    X509 *cert;             /* issuing CA certificate */
    X509 *root;             /* vendor root certificate */
    char vendor[256];       /* vendor name (O= of the CA subject) */
};

/* Result of factory_ca_create, factory_ca_load and factory_issue; every
 * code other than FACTORY_OK comes with a message in |err|. */
enum factory_rc {
    FACTORY_OK = 0,
    FACTORY_EXISTS,     /* a CA file or device directory exists already */
    FACTORY_AUTH,       /* the CA key is unusable: it cannot be read with the
                         * passphrase given (wrong or missing passphrase, or a
                         * damaged key file) or does not match the CA cert */
    FACTORY_NOTFOUND,   /* a CA file (or the CA directory) is missing */
    FACTORY_ERROR       /* anything else (bad input, I/O, crypto, memory) */
};

/* Output formats of factory_issue. */
enum factory_format { FACTORY_PEM = 0, FACTORY_P12 = 1 };

/* Progress callback: |done| of |total| devices written so far. */
typedef void (*factory_progress_cb)(void *arg, size_t done, size_t total);

/* What to issue and where. */
struct factory_issue_opts {
    const char *outdir;         /* created if missing */
    char **serials;             /* |count| device serial numbers */
    size_t count;
    const char *key_type;       /* device key, e.g. "ec:P-256" (default) */
    int validity_days;          /* device certificate lifetime (0: 20 years) */
    enum factory_format format;
    const char *p12_pass;       /* required for FACTORY_P12 */
    int threads;                /* 0: number of online CPUs */
    factory_progress_cb progress; /* called from the calling thread; may be NULL */
    void *progress_arg;
};

/* Creates a vendor root and issuing CA for |vendor| in |dir| (created if
 * missing; existing CA files are never overwritten). |key_type| as for
 * factory_keygen (NULL: ec:P-256); keys encrypted with |pass| (NULL:
 * unencrypted), always mode 0600. Returns FACTORY_OK; FACTORY_EXISTS if a
 * CA file is in |dir| already; FACTORY_ERROR otherwise (message in |err|). */
enum factory_rc factory_ca_create(const char *dir, const char *vendor,
                                  const char *key_type, const char *pass,
                                  char *err, size_t errlen);
/* Loads the issuing CA of |dir| (key decrypted with |pass|, may be NULL).
 * Returns FACTORY_OK; FACTORY_NOTFOUND if |dir| or a CA file is missing;
 * FACTORY_AUTH if the key cannot be read with |pass| or does not match the
 * certificate; FACTORY_ERROR otherwise (unreadable or damaged certificates).
 * On failure |err| says why and |ca| is cleared. */
enum factory_rc factory_ca_load(struct factory_ca *ca, const char *dir,
                                const char *pass, char *err, size_t errlen);
/* Frees the contents of |ca|; harmless on a cleared one. */
void factory_ca_clear(struct factory_ca *ca);

/* A key type of the factory: "ec:P-256" (default), "ec:P-384", "ec:P-521",
 * "rsa:2048".."rsa:8192", "ed25519". */
struct factory_keyspec {
    const char *alg;            /* "EC", "RSA", "ED25519" */
    const char *group;          /* EC curve or NULL */
    unsigned int bits;          /* RSA bits or 0 */
};
/* Parses |spec| (NULL: ec:P-256) into |ks|; returns 1, or 0 if unknown. */
int factory_keyspec_parse(const char *spec, struct factory_keyspec *ks);
/* Returns a key generation context for |ks| (the caller frees it), or
 * NULL. */
EVP_PKEY_CTX *factory_keyspec_ctx(const struct factory_keyspec *ks);
/* Returns a new key for |spec|, NULL for an unknown spec or on failure. */
EVP_PKEY *factory_keygen(const char *spec);

/* Returns 1 if |s| is an acceptable device serial number: 1..64 characters
 * of A-Z a-z 0-9 - . : (PrintableString, safe as a file name, not "." or
 * ".."). */
int factory_serial_valid(const char *s);
/* Builds |count| serials "<prefix><start+i>" zero-padded to |digits| into a
 * new array (free with factory_serials_free). Returns it or NULL with a
 * message in |err|. */
char **factory_serials_range(const char *prefix, unsigned long long start,
                             size_t count, int digits, char *err, size_t errlen);
/* Reads serials from |path| (one a line; blank lines, '#' comments and an
 * "identifier" header skipped; duplicates refused). Returns a new array and
 * sets |*count|, or NULL with a message in |err|. */
char **factory_serials_read(const char *path, size_t *count, char *err,
                            size_t errlen);
/* Frees an array from factory_serials_*; NULL is harmless. */
void factory_serials_free(char **serials, size_t count);

/* Issues one credential set per serial into |o->outdir|/<serial>/ (key.pem
 * 0600, cert.pem, chain.pem, or device.p12), in parallel, then rewrites
 * |o->outdir|/allowlist.csv and syncs the file system once. A device whose
 * directory exists already stops the run (nothing is overwritten); a device
 * that fails half-way is removed. Returns FACTORY_OK; FACTORY_EXISTS if a
 * device directory exists already; FACTORY_ERROR otherwise (message in
 * |err|). |*done| is the number of devices completely written. */
enum factory_rc factory_issue(const struct factory_ca *ca,
                              const struct factory_issue_opts *o,
                              size_t *done, char *err, size_t errlen);

/* Writes the allow-list of the devices found in |outdir| (header line
 * "identifier", then the sorted serials) to |fp|. Returns the number of
 * devices, or -1 with a message in |err|. */
long factory_allowlist_print(const char *outdir, FILE *fp, char *err,
                             size_t errlen);
/* Same, written atomically to |outdir|/allowlist.csv. Returns the number of
 * devices or -1. */
long factory_allowlist_write(const char *outdir, char *err, size_t errlen);

/* Creates |path| and missing parents with |mode| (like mkdir -p).
 * Returns 1, or 0 with errno set. */
int factory_mkdirs(const char *path, unsigned int mode);

#endif
