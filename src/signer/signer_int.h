/*
 * Internals shared by the signer module's files: blocking reads and writes
 * of whole buffers on a stream socket. Nothing outside src/signer/ includes
 * this.
 */
#ifndef CMPCA_SIGNER_INT_H
#define CMPCA_SIGNER_INT_H

#include <stddef.h>
#include <sys/types.h>

/* Reads exactly |len| bytes of |fd| into |buf| (retrying on EINTR).
 * Returns |len|, the bytes read before EOF (0 at once: a clean EOF), or -1
 * on an error or timeout (errno set). */
ssize_t signer_read_full(int fd, void *buf, size_t len);

/* Writes all |len| bytes of |buf| to |fd| (no SIGPIPE). Returns 1 or 0. */
int signer_write_full(int fd, const void *buf, size_t len);

#endif
