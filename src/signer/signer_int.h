/*
 * Internals shared by the signer module's files: blocking reads and writes
 * of whole buffers on a stream socket, the operation log. Nothing outside
 * src/signer/ includes this but its unit test and bench_signer_rt.
 */
#ifndef CMPCA_SIGNER_INT_H
#define CMPCA_SIGNER_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "util/log.h"

/* Reads exactly |len| bytes of |fd| into |buf| (retrying on EINTR).
 * Returns |len|, the bytes read before EOF (0 at once: a clean EOF), or -1
 * on an error or timeout (errno set). */
ssize_t signer_read_full(int fd, void *buf, size_t len);

/* Reads one frame into |buf| of |cap| bytes (prefix included: the body
 * starts at buf + SIGNER_HDR_LEN), usually with one read(2): a reply is
 * never followed by more bytes, since a channel carries one request at a
 * time. Sets *len to the body length. Returns 1, 0 on EOF before any
 * byte, -1 on an error or timeout (errno set), -2 for a length out of
 * SIGNER_MIN_FRAME..|cap| - SIGNER_HDR_LEN or EOF inside the frame, or
 * bytes beyond it. */
int signer_read_frame(int fd, unsigned char *buf, size_t cap, size_t *len);

/* Writes all |len| bytes of |buf| to |fd| (no SIGPIPE). Returns 1 or 0. */
int signer_write_full(int fd, const void *buf, size_t len);

/* The CPU channel |i| belongs to: the (i mod n)-th of the n CPUs this
 * process may run on, -1 with fewer than two. The signer process's thread
 * for channel i runs there (signer_chan_pin), and a network thread takes
 * a free channel of the CPU it is on, so that a request and its answer
 * wake a thread on the same CPU instead of another one. Both processes
 * compute the same table: the signer inherits the affinity at fork. */
int signer_chan_cpu(size_t i);
void signer_chan_pin(size_t i);

/* The signer's operation log (signer_log.c). signer_log() formats a line
 * as log_msg() does; after signer_log_set_buffered(fd) (fd >= 0) info
 * lines are gathered and written to |fd| by signer_log_flush() or when the
 * buffer fills, warnings and errors at once (the buffer first, so the
 * order holds); with fd -1 (the default) each line goes to log_msg(). */
void signer_log(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void signer_log_set_buffered(int fd);
void signer_log_flush(void);

#endif
