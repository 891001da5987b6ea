/*
 * Bulk issuance of device vendor credentials: worker threads each generate
 * a key, build and sign the vendor certificate and write the files (no
 * fsync per file; one syncfs at the end). Also the allow-list export.
 */
#include "factory/factory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define FACTORY_DEVICE_DAYS (20 * 365 + 5)
#define FACTORY_MAX_THREADS 256

/* Shared, read-only state of one run plus the work counters. */
struct factory_job {
    const struct factory_ca *ca;
    const struct factory_issue_opts *o;
    X509_EXTENSION *ext_bc, *ext_ku, *ext_akid;
    ASN1_TIME *not_before, *not_after;
    const EVP_MD *md;           /* CA signature digest (NULL for EdDSA) */
    char *chain_pem;            /* issuing CA + root, PEM */
    long chain_len;
    STACK_OF(X509) *chain;      /* for PKCS#12 */
    struct factory_keyspec key; /* device key type */
    atomic_size_t next;         /* next serial index to take */
    atomic_size_t done;         /* devices completely written */
    atomic_int stop;            /* set on the first failure */
    atomic_int running;         /* workers still running */
    pthread_mutex_t lock;       /* guards rc and err */
    enum factory_rc rc;         /* code of the first failure */
    char err[512];
};

/* Records the first failure of the run (|rc|, |msg|) and stops the other
 * workers. */
static void factory_fail(struct factory_job *job, enum factory_rc rc,
                         const char *msg)
{
    pthread_mutex_lock(&job->lock);
    if (job->err[0] == '\0') {
        job->rc = rc;
        snprintf(job->err, sizeof(job->err), "%s", msg);
    }
    pthread_mutex_unlock(&job->lock);
    atomic_store(&job->stop, 1);
}

/*
 * Sets the subjectPublicKeyInfo of |x| from |key|. X509_set_pubkey() goes
 * through an OSSL_ENCODER context per call (~170 us, most of the cost of a
 * device); for EC and Ed25519 the SPKI is filled from the key's encoded
 * public key with OpenSSL's own X509_PUBKEY setter instead (|fast|; the
 * in-memory X509 then has no cached EVP_PKEY, which PKCS#12 output needs,
 * so that path uses X509_set_pubkey). Returns 1 or 0.
 */
static int factory_set_pubkey(X509 *x, EVP_PKEY *key, int fast)
{
    unsigned char buf[160], *penc;
    char group[64];
    size_t len = 0;
    int nid = NID_undef, kid;

    if (!fast)
        return X509_set_pubkey(x, key);
    if (EVP_PKEY_is_a(key, "EC")) {
        kid = NID_X9_62_id_ecPublicKey;
        if (!EVP_PKEY_get_group_name(key, group, sizeof(group), NULL)
            || (nid = OBJ_txt2nid(group)) == NID_undef)
            return X509_set_pubkey(x, key);
    } else if (EVP_PKEY_is_a(key, "ED25519")) {
        kid = NID_ED25519;
    } else {
        return X509_set_pubkey(x, key);
    }
    if (!EVP_PKEY_get_octet_string_param(key, kid == NID_ED25519
                                         ? OSSL_PKEY_PARAM_PUB_KEY
                                         : OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                         buf, sizeof(buf), &len)
        || (penc = OPENSSL_memdup(buf, len)) == NULL)
        return 0;
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(kid),
                                nid != NID_undef ? V_ASN1_OBJECT : V_ASN1_UNDEF,
                                nid != NID_undef ? OBJ_nid2obj(nid) : NULL,
                                penc, (int)len)) {
        OPENSSL_free(penc);
        return 0;
    }
    return 1;
}

/* Builds and signs the vendor certificate of |serial| for |key|. */
static X509 *factory_device_cert(const struct factory_job *job, EVP_PKEY *key,
                                 const char *serial)
{
    const struct factory_ca *ca = job->ca;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    unsigned char sn[16], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (x == NULL || name == NULL || skid == NULL || RAND_bytes(sn, sizeof(sn)) != 1)
        goto err;
    sn[0] = (unsigned char)((sn[0] & 0x7f) | 0x40); /* positive, 16 octets */
    if (!X509_set_version(x, X509_VERSION_3)
        || !ASN1_STRING_set(X509_get_serialNumber(x), sn, sizeof(sn))
        || !X509_set_issuer_name(x, X509_get_subject_name(ca->cert))
        || !X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                                       (const unsigned char *)serial, -1, -1, 0)
        || !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                       (const unsigned char *)serial, -1, -1, 0)
        || !X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                       (const unsigned char *)ca->vendor, -1, -1, 0)
        || !X509_set_subject_name(x, name)
        || !X509_set1_notBefore(x, job->not_before)
        || !X509_set1_notAfter(x, job->not_after)
        || !factory_set_pubkey(x, key, job->o->format == FACTORY_PEM)
        || !X509_add_ext(x, job->ext_bc, -1)
        || !X509_add_ext(x, job->ext_ku, -1)
        || !X509_pubkey_digest(x, EVP_sha1(), md, &mdlen)
        || !ASN1_OCTET_STRING_set(skid, md, (int)mdlen)
        || !X509_add1_ext_i2d(x, NID_subject_key_identifier, skid, 0, X509V3_ADD_APPEND)
        || (job->ext_akid != NULL && !X509_add_ext(x, job->ext_akid, -1))
        || !X509_sign(x, ca->key, job->md))
        goto err;
    X509_NAME_free(name);
    ASN1_OCTET_STRING_free(skid);
    return x;
 err:
    X509_NAME_free(name);
    ASN1_OCTET_STRING_free(skid);
    X509_free(x);
    return NULL;
}

/* Writes the contents of |mem| to the new file |dirfd|/|name| (no fsync).
 * Returns 1 or 0 (errno set). */
static int factory_put(int dirfd, const char *name, const void *data, long len,
                       mode_t mode)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    const char *p = data;
    int saved;

    if (fd < 0)
        return 0;
    while (len > 0) {
        ssize_t n = write(fd, p, (size_t)len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            goto err;
        }
        p += n;
        len -= n;
    }
    return close(fd) == 0;
 err:
    saved = errno;
    close(fd);
    errno = saved;
    return 0;
}

static const char *const factory_device_files[] = {
    "key.pem", "cert.pem", "chain.pem", "device.p12"
};

/* Issues one device into |outfd|/|serial|/. Returns FACTORY_OK, or
 * FACTORY_EXISTS (the device exists already) or FACTORY_ERROR with |err|
 * set; a failed device leaves no directory behind. */
static enum factory_rc factory_one(struct factory_job *job, int outfd,
                                   EVP_PKEY_CTX *kctx, BIO *mem,
                                   const char *serial, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    PKCS12 *p12 = NULL;
    char *data;
    long len;
    int dfd = -1, ok = 0, saved;
    enum factory_rc rc = FACTORY_ERROR;
    size_t i;

    if (mkdirat(outfd, serial, 0700) != 0) {
        saved = errno;
        snprintf(err, errlen, saved == EEXIST
                 ? "device %s exists already in %s; refusing to overwrite"
                 : "cannot create the directory of %s in %s: %s", serial,
                 job->o->outdir, strerror(saved));
        return saved == EEXIST ? FACTORY_EXISTS : FACTORY_ERROR;
    }
    if ((dfd = openat(outfd, serial, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot open %s/%s: %s", job->o->outdir, serial,
                 strerror(errno));
        goto end;
    }
    if (EVP_PKEY_keygen(kctx, &key) <= 0
        || (cert = factory_device_cert(job, key, serial)) == NULL) {
        snprintf(err, errlen, "cannot make the key or certificate of %s", serial);
        goto end;
    }
    if (job->o->format == FACTORY_P12) {
        (void)BIO_reset(mem);
        p12 = PKCS12_create(job->o->p12_pass, serial, key, cert, job->chain,
                            0, 0, 0, 0, 0);
        if (p12 == NULL || i2d_PKCS12_bio(mem, p12) <= 0) {
            snprintf(err, errlen, "cannot make the PKCS#12 file of %s", serial);
            goto end;
        }
        len = BIO_get_mem_data(mem, &data);
        if (!factory_put(dfd, "device.p12", data, len, 0600))
            goto ioerr;
    } else {
        (void)BIO_reset(mem);
        if (!PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
            snprintf(err, errlen, "cannot encode the key of %s", serial);
            goto end;
        }
        len = BIO_get_mem_data(mem, &data);
        ok = factory_put(dfd, "key.pem", data, len, 0600);
        OPENSSL_cleanse(data, (size_t)len);   /* the buffer is reused */
        if (!ok)
            goto ioerr;
        (void)BIO_reset(mem);
        if (!PEM_write_bio_X509(mem, cert)) {
            snprintf(err, errlen, "cannot encode the certificate of %s", serial);
            goto end;
        }
        len = BIO_get_mem_data(mem, &data);
        if (!factory_put(dfd, "cert.pem", data, len, 0644)
            || !factory_put(dfd, "chain.pem", job->chain_pem, job->chain_len, 0644))
            goto ioerr;
    }
    ok = 1;
    goto end;
 ioerr:
    saved = errno;
    snprintf(err, errlen, "cannot write the files of %s in %s: %s", serial,
             job->o->outdir, strerror(saved));
    if (saved == EEXIST)
        rc = FACTORY_EXISTS;
 end:
    if (!ok) {
        /* all or nothing per device */
        for (i = 0; dfd >= 0 && i < sizeof(factory_device_files) / sizeof(factory_device_files[0]); i++)
            unlinkat(dfd, factory_device_files[i], 0);
        unlinkat(outfd, serial, AT_REMOVEDIR);
    }
    if (dfd >= 0)
        close(dfd);
    PKCS12_free(p12);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok ? FACTORY_OK : rc;
}

/* Worker thread: takes serial indexes until done or stopped. */
static void *factory_worker(void *arg)
{
    struct factory_job *job = arg;
    EVP_PKEY_CTX *kctx = factory_keyspec_ctx(&job->key);
    BIO *mem = BIO_new(BIO_s_mem());
    int outfd = open(job->o->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char err[512];
    enum factory_rc rc;

    if (kctx == NULL || mem == NULL || outfd < 0) {
        factory_fail(job, FACTORY_ERROR,
                     "cannot set up a worker (key type or output directory)");
        goto end;
    }
    while (!atomic_load(&job->stop)) {
        size_t i = atomic_fetch_add(&job->next, 1);

        if (i >= job->o->count)
            break;
        if ((rc = factory_one(job, outfd, kctx, mem, job->o->serials[i], err,
                              sizeof(err))) != FACTORY_OK) {
            factory_fail(job, rc, err);
            break;
        }
        atomic_fetch_add(&job->done, 1);
    }
 end:
    ERR_clear_error();
    if (outfd >= 0)
        close(outfd);
    BIO_free(mem);
    EVP_PKEY_CTX_free(kctx);
    atomic_fetch_sub(&job->running, 1);
    return NULL;
}

/* Prepares the shared parts of a run. Returns 1 or 0 with job->err set. */
static int factory_job_init(struct factory_job *job)
{
    const struct factory_ca *ca = job->ca;
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *caskid = X509_get0_subject_key_id(ca->cert);
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    int days = job->o->validity_days > 0 ? job->o->validity_days : FACTORY_DEVICE_DAYS;
    int ok = 0;

    job->md = EVP_PKEY_is_a(ca->key, "ED25519") || EVP_PKEY_is_a(ca->key, "ED448")
        ? NULL : EVP_PKEY_is_a(ca->key, "EC") && EVP_PKEY_get_bits(ca->key) >= 384
        ? EVP_sha384() : EVP_sha256();
    job->ext_bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
                                      "critical,CA:FALSE");
    job->ext_ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                                      "critical,digitalSignature");
    if (akid != NULL && caskid != NULL
        && (akid->keyid = ASN1_OCTET_STRING_dup(caskid)) != NULL)
        job->ext_akid = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid);
    job->not_before = X509_gmtime_adj(NULL, -300);
    job->not_after = X509_time_adj_ex(NULL, days, 0, NULL);
    if (job->not_after != NULL
        && ASN1_TIME_compare(job->not_after, X509_get0_notAfter(ca->cert)) > 0) {
        /* never outlive the issuing CA */
        ASN1_TIME_free(job->not_after);
        job->not_after = ASN1_TIME_dup(X509_get0_notAfter(ca->cert));
    }
    job->chain = sk_X509_new_null();
    if (job->ext_bc == NULL || job->ext_ku == NULL
        || (caskid != NULL && job->ext_akid == NULL)
        || job->not_before == NULL || job->not_after == NULL || b == NULL
        || job->chain == NULL
        || !X509_add_cert(job->chain, ca->cert, X509_ADD_FLAG_UP_REF)
        || !X509_add_cert(job->chain, ca->root, X509_ADD_FLAG_UP_REF)
        || !PEM_write_bio_X509(b, ca->cert) || !PEM_write_bio_X509(b, ca->root)) {
        snprintf(job->err, sizeof(job->err), "cannot prepare the issuance");
        goto end;
    }
    job->chain_len = BIO_get_mem_data(b, &data);
    if ((job->chain_pem = malloc((size_t)job->chain_len)) == NULL) {
        snprintf(job->err, sizeof(job->err), "out of memory");
        goto end;
    }
    memcpy(job->chain_pem, data, (size_t)job->chain_len);
    ok = 1;
 end:
    AUTHORITY_KEYID_free(akid);
    BIO_free(b);
    return ok;
}

static void factory_job_clear(struct factory_job *job)
{
    X509_EXTENSION_free(job->ext_bc);
    X509_EXTENSION_free(job->ext_ku);
    X509_EXTENSION_free(job->ext_akid);
    ASN1_TIME_free(job->not_before);
    ASN1_TIME_free(job->not_after);
    sk_X509_pop_free(job->chain, X509_free);
    free(job->chain_pem);
}

enum factory_rc factory_issue(const struct factory_ca *ca,
                              const struct factory_issue_opts *o,
                              size_t *done, char *err, size_t errlen)
{
    struct factory_job job;
    pthread_t tids[FACTORY_MAX_THREADS];
    int nthreads = o->threads, started = 0, i, fd;
    enum factory_rc ret = FACTORY_ERROR;
    long listed;
    char lerr[256];

    *done = 0;
    memset(&job, 0, sizeof(job));
    job.ca = ca;
    job.o = o;
    pthread_mutex_init(&job.lock, NULL);
    if (o->count == 0 || o->serials == NULL) {
        snprintf(err, errlen, "no devices to issue");
        goto end;
    }
    if (!factory_keyspec_parse(o->key_type, &job.key)) {
        snprintf(err, errlen, "unknown device key type '%s' (ec:P-256, ec:P-384, "
                 "rsa:BITS, ed25519)", o->key_type);
        goto end;
    }
    if (o->format == FACTORY_P12 && (o->p12_pass == NULL || *o->p12_pass == '\0')) {
        snprintf(err, errlen, "PKCS#12 output needs a passphrase");
        goto end;
    }
    if (!factory_mkdirs(o->outdir, 0755)) {
        snprintf(err, errlen, "cannot create %s: %s", o->outdir, strerror(errno));
        goto end;
    }
    if ((fd = open(o->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", o->outdir, strerror(errno));
        goto end;
    }
    close(fd);
    if (!factory_job_init(&job)) {
        snprintf(err, errlen, "%s", job.err);
        goto end;
    }
    if (nthreads <= 0)
        nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > FACTORY_MAX_THREADS)
        nthreads = FACTORY_MAX_THREADS;
    if ((size_t)nthreads > o->count)
        nthreads = (int)o->count;
    atomic_store(&job.running, nthreads);
    for (i = 0; i < nthreads; i++) {
        if (pthread_create(&tids[i], NULL, factory_worker, &job) != 0) {
            atomic_fetch_sub(&job.running, nthreads - i);
            factory_fail(&job, FACTORY_ERROR, "cannot start worker threads");
            break;
        }
        started++;
    }
    while (atomic_load(&job.running) > 0) {
        struct timespec ts = { 0, 100 * 1000000L };

        if (o->progress != NULL)
            o->progress(o->progress_arg, atomic_load(&job.done), o->count);
        nanosleep(&ts, NULL);
    }
    for (i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    *done = atomic_load(&job.done);
    if (o->progress != NULL)
        o->progress(o->progress_arg, *done, o->count);
    /* one sync for the whole batch instead of one per file */
    if ((fd = open(o->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        if (syncfs(fd) != 0 && job.err[0] == '\0') {
            job.rc = FACTORY_ERROR;
            snprintf(job.err, sizeof(job.err), "cannot sync %s: %s", o->outdir,
                     strerror(errno));
        }
        close(fd);
    }
    listed = factory_allowlist_write(o->outdir, lerr, sizeof(lerr));
    if (job.err[0] != '\0') {
        snprintf(err, errlen, "%s", job.err);
        ret = job.rc != FACTORY_OK ? job.rc : FACTORY_ERROR;
        goto end;
    }
    if (listed < 0) {
        snprintf(err, errlen, "%s", lerr);
        goto end;
    }
    ret = FACTORY_OK;
 end:
    factory_job_clear(&job);
    pthread_mutex_destroy(&job.lock);
    return ret;
}

static int factory_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the sorted serials of the devices in |outdir|. Returns the count
 * (|*out| set) or -1 with |err| set. */
static long factory_scan(const char *outdir, char ***out, char *err, size_t errlen)
{
    DIR *d = opendir(outdir);
    struct dirent *de;
    char **list = NULL;
    size_t n = 0, cap = 0;
    int dfd;

    *out = NULL;
    if (d == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", outdir, strerror(errno));
        return -1;
    }
    dfd = dirfd(d);
    while ((de = readdir(d)) != NULL) {
        char probe[FACTORY_SERIAL_MAX + 16];
        struct stat st;
        size_t len = strlen(de->d_name);

        if (!factory_serial_valid(de->d_name) || de->d_name[0] == '.')
            continue;
        memcpy(probe, de->d_name, len); /* valid serials are <= 64 chars */
        memcpy(probe + len, "/cert.pem", sizeof("/cert.pem"));
        if (fstatat(dfd, probe, &st, 0) != 0) {
            memcpy(probe + len, "/device.p12", sizeof("/device.p12"));
            if (fstatat(dfd, probe, &st, 0) != 0)
                continue;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 1024 : cap * 2;
            char **p = realloc(list, ncap * sizeof(*list));

            if (p == NULL)
                goto oom;
            list = p;
            cap = ncap;
        }
        if ((list[n] = strdup(de->d_name)) == NULL)
            goto oom;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(list, n, sizeof(*list), factory_cmp);
    *out = list;
    return (long)n;
 oom:
    closedir(d);
    factory_serials_free(list, n);
    snprintf(err, errlen, "out of memory");
    return -1;
}

long factory_allowlist_print(const char *outdir, FILE *fp, char *err, size_t errlen)
{
    char **list;
    long n = factory_scan(outdir, &list, err, errlen), i;

    if (n < 0)
        return -1;
    fputs("identifier\n", fp);
    for (i = 0; i < n; i++)
        fprintf(fp, "%s\n", list[i]);
    factory_serials_free(list, (size_t)n);
    if (fflush(fp) != 0 || ferror(fp)) {
        snprintf(err, errlen, "cannot write the allow-list: %s", strerror(errno));
        return -1;
    }
    return n;
}

long factory_allowlist_write(const char *outdir, char *err, size_t errlen)
{
    char tmp[4096], path[4096];
    FILE *fp = NULL;
    long n = -1;
    int fd, r1, r2;

    r1 = snprintf(path, sizeof(path), "%s/%s", outdir, FACTORY_ALLOWLIST);
    r2 = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", outdir, FACTORY_ALLOWLIST);
    if (r1 < 0 || (size_t)r1 >= sizeof(path) || r2 < 0 || (size_t)r2 >= sizeof(tmp)) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0644) != 0
        || (fp = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "cannot write in %s: %s", outdir, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -1;
    }
    n = factory_allowlist_print(outdir, fp, err, errlen);
    if (n >= 0 && fsync(fileno(fp)) != 0) {
        snprintf(err, errlen, "cannot sync the allow-list: %s", strerror(errno));
        n = -1;
    }
    if (fclose(fp) != 0 && n >= 0) {
        snprintf(err, errlen, "cannot write the allow-list: %s", strerror(errno));
        n = -1;
    }
    if (n >= 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename the allow-list: %s", strerror(errno));
        n = -1;
    }
    if (n < 0)
        unlink(tmp);
    return n;
}
