/*
 * LD_PRELOAD fault injection for the e2e tests: fsync(2) and fdatasync(2)
 * fail with EIO while the file named by CMPCA_FSYNC_FAIL exists (checked
 * on every call, so a test switches the fault on and off at run time) and
 * once CMPCA_FSYNC_FAIL_AFTER (default 0) calls have succeeded. Every
 * failed call appends one octet to "$CMPCA_FSYNC_FAIL.hits", so a test can
 * tell that the fault was hit. Otherwise the calls go to the kernel as
 * they are. Built without sanitizers (see the Makefile).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_long fsync_fail_calls;

/* Returns 1 if this call is to fail (and records the hit). */
static int fsync_fail_now(void)
{
    const char *path = getenv("CMPCA_FSYNC_FAIL");
    const char *after = getenv("CMPCA_FSYNC_FAIL_AFTER");
    long n = atomic_fetch_add(&fsync_fail_calls, 1);
    char hits[4096];
    struct stat st;
    int fd;

    if (path == NULL || *path == '\0' || stat(path, &st) != 0)
        return 0;
    if (after != NULL && n < atol(after))
        return 0;
    if (snprintf(hits, sizeof(hits), "%s.hits", path) < (int)sizeof(hits)
        && (fd = open(hits, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644))
           >= 0) {
        if (write(fd, "x", 1) != 1) {
            /* the hit count is best effort */
        }
        close(fd);
    }
    return 1;
}

int fsync(int fd)
{
    if (fsync_fail_now()) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    if (fsync_fail_now()) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}
