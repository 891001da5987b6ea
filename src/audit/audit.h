/*
 * Keeping the audit trail honest against whoever can write the database:
 * checkpoints of the chain head exported outside it (signed with an operator
 * key the server never holds, or appended unsigned by `cmpca serve` to a
 * file of its own), verification of the chain against them, and a
 * cross-check of certificate status against the revocation events.
 */
#ifndef CMPCA_AUDIT_H
#define CMPCA_AUDIT_H

#include "store/store.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct ca_signer_st;

/* ------------------------------------------------------------------ */
/* Checkpoints                                                         */

/*
 * One checkpoint is one text line:
 *   cmpca-audit-checkpoint v1 seq=N hash=HEX64 time=UNIX[ key=HEX64 sig=B64]
 * key is the SHA-256 of the signer's SubjectPublicKeyInfo (DER); sig the
 * signature (digest per key type as everywhere in cmpca, none for EdDSA)
 * over the line up to, not including, " sig=". A file of checkpoints holds
 * one per line, oldest first; blank lines and lines starting with '#' are
 * ignored.
 */
#define AUDIT_CKPT_TAG "cmpca-audit-checkpoint v1"
/* Longest checkpoint line accepted (an RSA-4096 signature fits). */
#define AUDIT_CKPT_LINE_MAX 2048
/* Largest checkpoint file read (about 100,000 signed lines). */
#define AUDIT_CKPT_FILE_MAX (64L << 20)

struct audit_ckpt {
    int64_t seq;                              /* >= 1 */
    unsigned char hash[STORE_SHA256_LEN];
    int64_t time;                             /* when it was taken */
    int is_signed;                            /* key and sig present */
    unsigned char key_id[STORE_SHA256_LEN];
    unsigned char sig[1024];
    size_t siglen;
    size_t line;                              /* line number in its file */
};

/* SHA-256 of the DER SubjectPublicKeyInfo of |pub| into |out|; 1 or 0. */
int audit_key_id(const EVP_PKEY *pub, unsigned char out[STORE_SHA256_LEN]);
/*
 * Formats checkpoint |c| (seq, hash, time) as one line without newline into
 * |buf|; with |signer| (may be NULL: an unsigned export) signs it and
 * appends key= and sig=. Returns 1, or 0 with a reason in |err|.
 */
int audit_ckpt_format(const struct audit_ckpt *c,
                      const struct ca_signer_st *signer, char *buf,
                      size_t buflen, char *err, size_t errlen);
/* Parses one line (without newline) strictly: the canonical form only.
 * Returns 1 and fills |c| (line stays 0), or 0 with a reason in |err|. */
int audit_ckpt_parse(const char *line, struct audit_ckpt *c, char *err,
                     size_t errlen);
/* 1 if checkpoint |c| is signed by |pub| (key id and signature). */
int audit_ckpt_verify_sig(const struct audit_ckpt *c, EVP_PKEY *pub);
/*
 * Reads every checkpoint of file |path| into a malloc'ed array (*out, *n,
 * sorted by seq, free() it). With |pub| every line must be signed by that
 * key. A missing file is an error unless |missing_ok| (then *n = 0).
 * Returns 1, or 0 with "path:line: reason" in |err|.
 */
int audit_ckpt_read_file(const char *path, EVP_PKEY *pub, int missing_ok,
                         struct audit_ckpt **out, size_t *n, char *err,
                         size_t errlen);
/* Appends |line| and a newline to |path| (created 0644 if missing, opened
 * O_APPEND, fsync'ed); "-" writes to stdout. Returns 1, or 0 + |err|. */
int audit_ckpt_append(const char *path, const char *line, char *err,
                      size_t errlen);
/* Loads a public key from a PEM file holding a PUBLIC KEY or a
 * certificate. Returns the key or NULL with a reason in |err|. */
EVP_PKEY *audit_pubkey_load(const char *path, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Verification                                                        */

/* Result of audit_verify. */
enum audit_rc {
    AUDIT_OK = 0,           /* chain intact, checkpoints and status agree */
    AUDIT_TAMPERED,         /* something disagrees: see the problems */
    AUDIT_ERROR             /* the store could not be read */
};

struct audit_report {
    enum store_audit_verdict chain;           /* the hash chain and head */
    struct store_audit_walk_result walk;
    int64_t revocation_events;                /* cert.revoke rows seen */
    int64_t revoked_certs;                    /* revoked in the store */
    size_t status_problems;                   /* disagreements found */
};

/* audit_verify flag: check the chain and checkpoints only. */
#define AUDIT_VERIFY_NO_STATUS 1u

/* Receives each problem found, as one line of text. */
typedef void (*audit_problem_fn)(void *arg, const char *msg);

/*
 * In one read snapshot of |st|: recomputes the audit chain and checks it
 * against the head row and the |n| checkpoints |anchors| (any order; an
 * anchor the chain does not reach means truncation, a different hash
 * means a rewrite); then, if the chain is intact, cross-checks certificate
 * status against the cert.revoke events: a certificate revoked in the
 * store without its event, an event whose certificate is valid or missing,
 * a reason or time that differs, two events for one certificate (not with
 * AUDIT_VERIFY_NO_STATUS in |flags|). Each status problem goes to
 * |problem| (may be NULL); a broken chain or checkpoint is described in
 * |err|, which otherwise gets a one-line summary. Fills |rep|.
 */
enum audit_rc audit_verify(STORE *st, const struct audit_ckpt *anchors,
                           size_t n, unsigned flags, audit_problem_fn problem,
                           void *arg,
                           struct audit_report *rep, char *err,
                           size_t errlen);

/* ------------------------------------------------------------------ */
/* The server's own exports and admin events                            */

/* [audit] of the configuration, for `cmpca serve`. */
struct audit_export_conf {
    char *file;             /* checkpoint_file (resolved against the
                             * configuration's directory); NULL = none */
    long interval;          /* checkpoint_interval in seconds (default 1h) */
    int64_t next;           /* private: when the next export is due */
    int64_t last_seq;       /* private: seq of the last export */
    int fd;                 /* private: the file, opened at load (before
                             * the server drops its privileges) */
    int have_fd;            /* private: fd is open */
};

/*
 * Reads [audit] (optional): checkpoint_file = PATH (an append-only file
 * outside the database, e.g. on another mount or chattr +a),
 * checkpoint_interval = DURATION (default 1h), and opens the file for
 * appending (created 0644 if missing), so that exports keep working after
 * `serve` became an unprivileged user. Returns 1, or 0 with a
 * "file:line: ..." message in |err|. Release with audit_export_conf_clear.
 */
int audit_export_conf_load(const struct conf *conf,
                           struct audit_export_conf *ac, char *err,
                           size_t errlen);
void audit_export_conf_clear(struct audit_export_conf *ac);
/*
 * Appends an unsigned checkpoint of the newest audit row to ac->file when
 * one is configured and due (|force|: now), unless the head did not move
 * since the last export; also logs it. Returns 1 (done or nothing to do),
 * 0 after logging why it failed.
 */
int audit_export_tick(struct audit_export_conf *ac, STORE *st, int64_t now,
                      int force);
/* Writes one audit row in a transaction of its own (server start, stop,
 * reload). Returns the store result. */
enum store_rc audit_event(STORE *st, const char *actor, const char *action,
                          const char *object, const char *details_json);

#endif
