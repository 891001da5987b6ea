/*
 * The cmpca command line: each subcommand is one function taking its own
 * argv (argv[0] is the subcommand name) and returning an exit code.
 */
#ifndef CMPCA_CLI_H
#define CMPCA_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes that mean something to scripts. */
enum cli_exit {
    CLI_OK = 0,          /* done */
    CLI_ERR = 1,         /* failed; the message says why */
    CLI_USAGE = 2,       /* bad command line */
    CLI_NOTFOUND = 3,    /* the named object does not exist */
    CLI_EXISTS = 4,      /* the object exists already / conflicts */
    CLI_AUTH = 5,        /* wrong passphrase or PIN, key unusable */
    CLI_STORE = 6,       /* the store could not be opened or written */
    CLI_CONFIG = 7       /* the configuration file is invalid */
};

/* Path of the configuration file chosen by -c/--config, $CMPCA_CONFIG or
 * the default "cmpca.conf" in the current directory. */
const char *cli_config_path(void);
/* Sets the configuration path for the following commands (cmpca demo
 * drives the other commands with its own configuration). */
void cli_set_config_path(const char *path);

/* Runs the server like `cmpca serve`; |listen| and |port_file| may be NULL,
 * |threads| -1 for the configured value; |allow_root| 1 lets it run as root
 * without [server] user (cmpca demo). Returns an exit code. */
int cli_serve_main(const char *listen, const char *port_file, int threads,
                   int allow_root);

int cli_serve(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_vendor(int argc, char **argv);
int cli_device(int argc, char **argv);
int cli_ra(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_ca(int argc, char **argv);
int cli_cert(int argc, char **argv);
int cli_crl(int argc, char **argv);
int cli_factory(int argc, char **argv);
int cli_request(int argc, char **argv);

/* cmd_ca.c: shared by the ca, cert and crl commands. */
struct conf;
struct store;
struct ca_st;
/* Loads CA |name| (with its key unless |skip_key|; |key_pass| a secret spec
 * overriding [ca] key_pass, may be NULL). Returns CLI_OK with *out set, or
 * an exit code after printing why (CLI_AUTH for an unusable key). */
int cli_ca_load(const struct conf *conf, struct store *st, const char *name,
                const char *key_pass, int skip_key, struct ca_st **out);
struct store_tx;
struct store_cert_filter;
/* cli_revoke.c: revokes in the write transaction |tx| every valid
 * certificate matching |f| (its status field is ignored) with RFC 5280
 * |reason|, one audit row each, and issues a new CRL for every CA
 * concerned (loading those CAs with their keys from |conf|). Sets *count
 * to the number revoked. Returns CLI_OK, or an exit code after a message
 * (the caller rolls back). */
int cli_revoke_matching(const struct conf *conf, struct store *st,
                        struct store_tx *tx, const struct store_cert_filter *f,
                        int reason, long *count);
/* Parses a hex serial ("0x", ':' allowed) into magnitude octets (at most
 * 64). Returns 1 or 0. */
int cli_parse_serial(const char *hex, unsigned char *out, size_t *len);

/* cli_store.c: shared by every command that needs the database. */
struct conf;
struct store;
/* Loads cli_config_path(), reads [store] and opens the store. Returns
 * CLI_OK with *st set (and *conf, if |conf| is not NULL, for the caller's
 * other sections; free with conf_free), or CLI_CONFIG / CLI_STORE after
 * printing "cmpca: ..." to stderr. */
int cli_store_open(struct conf **conf, struct store **st);
/* Maps a store result code to an exit code (CLI_NOTFOUND, CLI_EXISTS, ...). */
int cli_store_exit(int store_rc);
struct store_tx;
/* Prints "cmpca CMD WHAT: <store result>[: <database message>]" to stderr
 * (|tx| may be NULL) and returns cli_store_exit(rc). */
int cli_dberr(const char *cmd, const char *what, const struct store_tx *tx,
              int rc);
/* The action of `cmpca CMD ACTION ...`: argv[1], one of the NULL-terminated
 * |acts|. Returns CLI_OK with *act set; -1 after printing help to stdout
 * (the caller exits CLI_OK); CLI_USAGE after printing |usage| to stderr. */
int cli_pick_action(int argc, char **argv, const char *cmd,
                    const char *const *acts, void (*usage)(FILE *),
                    const char **act);
/* The audit actor for this command line user: "cli:<login name>". */
const char *cli_actor(void);
struct store_der;
/* Reads every certificate of a PEM (one or more) or DER file into a
 * malloc'ed DER list (free with store_der_list_free). Returns 1, or 0 after
 * printing why to stderr. */
int cli_read_certs(const char *path, struct store_der **out, size_t *n);
/* Writes |len| bytes as lowercase hex into |out| (2*len+1 chars). */
void cli_hex(const unsigned char *p, size_t len, char *out);
/* Formats unix time |t| as "YYYY-MM-DDTHH:MM:SSZ" into |out| (21 chars). */
void cli_time(long long t, char *out, size_t outlen);
struct json_t;
/* A JSON object describing certificate |der| (subject, issuer, not_before,
 * not_after, sha256, ca); never NULL unless out of memory. */
struct json_t *cli_cert_json(const unsigned char *der, size_t len);
/* Prints |j| indented to stdout and releases it; returns 1 on success. */
int cli_json_print(struct json_t *j);

/* cmd_device_secret.c: the secret options of `cmpca device`. */
struct cli_secret_opts {
    const char *secret_file;   /* --secret-file F */
    int generate;              /* --generate-secret */
    const char *ref;           /* --ref REF (default: the identifier) */
    const char *kek;           /* --kek SPEC (default [server] secret_kek) */
};
/* Seals the secret |so| names (read or generated) with the KEK and stores
 * it as device |device_id|'s (|ident| names it in messages and the audit
 * row) in |tx|. A generated secret is copied to |gen| (else ""), for the
 * caller to print once the transaction is committed. Returns an exit
 * code. */
int cli_device_secret_put(const struct conf *conf, struct store_tx *tx,
                          long long device_id, const char *ident,
                          const struct cli_secret_opts *so, char *gen,
                          size_t genlen);
/* device import --with-secrets: reads |path| again (identifier, secret,
 * optional reference; header and comments as the import) and gives each
 * device just imported for |vendor_id| its secret in |tx|. Sets *count.
 * Returns an exit code (an error names file:line). */
int cli_device_secret_import(const struct conf *conf, struct store_tx *tx,
                             long long vendor_id, const char *path,
                             const char *kek_spec, long *count);
struct json_t;
/* Adds "secret": {ref, failures, locked, consumed, updated} of device
 * |device_id| to |obj| if it has a secret (never the secret itself);
 * returns 1 if it did. */
int cli_device_secret_json(struct store_tx *tx, long long device_id,
                           struct json_t *obj);
/* Clears the failure count and lock of device |device_id|'s secret in
 * |tx| (audit row included). Returns an exit code. */
int cli_device_secret_unlock(struct store_tx *tx, long long device_id,
                             const char *ident);

#endif
