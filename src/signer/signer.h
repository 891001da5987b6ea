/*
 * The signer process of `cmpca serve`: the only process that loads the CA
 * and CMP signer keys (and reads their passphrases or PINs). The network
 * process asks it for signatures over socketpairs with the protocol of
 * signer_proto.h; its CA_SIGNERs are remote ones (ca_signer_new_remote) and
 * it never maps a private key. Three parts: the key table and request loop
 * (signer_srv.c), the client the network process uses (signer_client.c),
 * and starting, watching and stopping the process (signer_proc.c).
 */
#ifndef CMPCA_SIGNER_SIGNER_H
#define CMPCA_SIGNER_SIGNER_H

#include <stddef.h>
#include <sys/types.h>

#include "ca/ca_signer.h"

struct conf;
struct store;

/* ------------------------------------------------------------------ */
/* The signer's side: keys and the request loop                        */

typedef struct signer_keys SIGNER_KEYS;

/* Returns an empty key table, or NULL. */
SIGNER_KEYS *signer_keys_new(void);
/* Frees the table and drops its references to the keys (NULL harmless). */
void signer_keys_free(SIGNER_KEYS *k);

/* Adds |s| (a reference is taken) as the key a LOOKUP of |keyref| (NULL =
 * ca_signer_get0_keyref(s)) with digest |md| (NULL or "" = the default)
 * finds; |label| names it in the log ("CA issuing"). The same keyref and
 * digest twice keep the first. Not for use while requests are served.
 * Returns 1 or 0. */
int signer_keys_add(SIGNER_KEYS *k, CA_SIGNER *s, const char *keyref,
                    const char *md, const char *label);
/* Returns the number of keys in the table. */
size_t signer_keys_count(const SIGNER_KEYS *k);

/* Outcome of loading the keys for a configuration. */
enum signer_load_rc {
    SIGNER_LOAD_OK = 0,
    SIGNER_LOAD_AUTH,     /* a key is unusable: passphrase/PIN, file, token */
    SIGNER_LOAD_CONFIG,   /* bad configuration (or no [alias]) */
    SIGNER_LOAD_ERROR     /* store or other error */
};

/*
 * Loads into a new table the keys the server of |conf| signs with: for
 * every CA an [alias] section names, its CA key (with the [ca] digest) and
 * its CMP signer key, exactly as ca_load() opens them (passphrases and PINs
 * read here). Returns SIGNER_LOAD_OK and sets *out, or another code with a
 * message in |err|.
 */
enum signer_load_rc signer_keys_load_conf(const struct conf *conf,
                                          struct store *store,
                                          SIGNER_KEYS **out, char *err,
                                          size_t errlen);

/* Why signer_serve_fd() returned. */
enum signer_serve_rc {
    SIGNER_SERVE_EOF = 0, /* the peer closed the channel between frames */
    SIGNER_SERVE_PROTO,   /* a frame length out of bounds, or EOF inside a
                           * frame: the stream cannot be trusted any more */
    SIGNER_SERVE_IO       /* read/write error */
};

/*
 * Answers requests on the stream socket |fd| until the peer closes it:
 * LOOKUP with KEY (or ERROR unknown key), SIGN with SIG (ERROR for a key id
 * not in |k| or a failed signature), anything that does not decode with
 * ERROR malformed. A frame length outside SIGNER_MIN_FRAME..
 * SIGNER_MAX_FRAME is refused before anything is allocated, and ends the
 * loop. Every operation is logged (key, length, SHA-256 prefix of the
 * bytes signed, outcome; never key material). Many threads may serve
 * channels of one table at once. Does not close |fd|.
 */
enum signer_serve_rc signer_serve_fd(const SIGNER_KEYS *k, int fd);

/* ------------------------------------------------------------------ */
/* The network process's side                                          */

typedef struct signer_client SIGNER_CLIENT;

/* Takes over the |n| connected stream sockets |fds| (closed by
 * signer_client_free()). A request waits at most |timeout_ms| (0 = 30 s)
 * for its reply. Each request takes a free channel, so at most |n| are
 * in flight. Returns NULL on error (the fds are then not taken). */
SIGNER_CLIENT *signer_client_new(const int *fds, size_t n,
                                 unsigned timeout_ms);
/* Ties channel i to the CPU signer_chan_cpu(i) names: a request then
 * takes a free channel of the CPU its thread runs on first (the signer
 * process pins its thread for channel i there). Without this call any
 * free channel serves. */
void signer_client_set_affinity(SIGNER_CLIENT *c);
/* Closes the channels and frees the client (NULL harmless). Every
 * CA_SIGNER it made must be freed before. */
void signer_client_free(SIGNER_CLIENT *c);

/* Asks the signer process for the key it loaded from |keyref| with digest
 * |md| (NULL = default). Returns CA_SIGNER_OK and sets *out to a remote
 * CA_SIGNER, CA_SIGNER_NOKEY if the signer holds no such key, or
 * CA_SIGNER_ERROR (channel trouble) with a message in |err|. */
enum ca_signer_status signer_client_lookup(SIGNER_CLIENT *c,
                                           const char *keyref, const char *md,
                                           CA_SIGNER **out, char *err,
                                           size_t errlen);

/* Makes ca_signer_load() look keys up through |c| (NULL: read them
 * locally again). */
void signer_client_install(SIGNER_CLIENT *c);

/* Returns 1 once a channel failed (I/O error, timeout, a reply that does
 * not decode or answers another request): every request fails from then
 * on and the channels are shut down, so the signer process ends too. */
int signer_client_broken(const SIGNER_CLIENT *c);

/* ------------------------------------------------------------------ */
/* The process                                                         */

/* [server] signer = process | inprocess, signer_channels = N. */
struct signer_conf {
    int inprocess;        /* 1: keys in the network process (benchmarks) */
    unsigned channels;    /* socketpairs to the signer process */
    unsigned log_flush_ms; /* the signer's log lines are written together
                            * at most this late (0: one write per line) */
    int affinity;         /* channels tied to CPUs (signer_affinity) */
};

/* Reads the [server] keys of |sc| from |conf| (defaults: process, 4
 * channels, signer_log_flush_ms 50, signer_affinity no). Returns 1 or 0
 * with a file:line message in |err|. */
int signer_conf_read(const struct conf *conf, struct signer_conf *sc,
                     char *err, size_t errlen);

typedef struct signer_proc SIGNER_PROC;

/* Outcome of starting the signer process. */
enum signer_start_rc {
    SIGNER_START_OK = 0,
    SIGNER_START_CONFIG,  /* the configuration is invalid */
    SIGNER_START_KEY,     /* the signer could not load a key */
    SIGNER_START_STORE,   /* the signer could not open the store */
    SIGNER_START_ERROR    /* fork, socketpair, the process died */
};

/*
 * Called first thing by `cmpca serve`, while the process has one thread:
 * loads |conf_path|; with signer = inprocess sets *out NULL and returns OK
 * (the caller then loads keys itself). Otherwise forks the signer process,
 * which loads the keys (signer_keys_load_conf, its own store connection),
 * reports READY and serves the channels; waits for READY; installs the
 * client as ca_signer_load()'s loader; and removes the passphrases and
 * PINs of env: specs from this process's environment. The signer dies
 * with this process (PR_SET_PDEATHSIG, and EOF on its channels), ignores
 * SIGINT and SIGHUP (they are for the network process) and is not
 * dumpable. Returns SIGNER_START_OK with *out set, or another code with a
 * message in |err|.
 */
enum signer_start_rc signer_proc_start(const char *conf_path,
                                       SIGNER_PROC **out, char *err,
                                       size_t errlen);

/* Returns the signer process's pid. */
pid_t signer_proc_pid(const SIGNER_PROC *p);

/* Returns 1 if the signer process has ended (it is reaped then and
 * *status, if not NULL, gets its wait status), else 0. A signer whose
 * channels failed (no reply in time, say) is killed and counts as ended.
 * Call on SIGCHLD and now and then. */
int signer_proc_exited(SIGNER_PROC *p, int *status);

/* Uninstalls the loader, closes the channels, waits (bounded, then
 * SIGKILL) for the signer to exit and frees |p| (NULL harmless). Every
 * remote CA_SIGNER must be freed before. Returns 1 if the signer exited
 * normally (status 0), else 0. */
int signer_proc_stop(SIGNER_PROC *p);

#endif
