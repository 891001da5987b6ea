/*
 * The signer process's operation log: one line per LOOKUP and SIGN, in
 * log_msg()'s format. With a flush interval set, info lines are gathered
 * in a buffer and written with one write(2) when it fills or when
 * signer_log_flush() runs (the signer's flusher thread, every interval, and
 * before the process exits, SIGTERM included); a warning or error line
 * writes the buffer and itself at once. Without an interval every line is
 * one log_msg() call, as before.
 */
#include "signer/signer_int.h"

#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Buffered bytes before a write is forced. */
#define SIGNER_LOG_BUF 32768
/* Longest line (longer ones are cut). */
#define SIGNER_LOG_LINE 1024

static pthread_mutex_t signer_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char signer_log_buf[SIGNER_LOG_BUF];
static size_t signer_log_len;
static int signer_log_fd = -1;   /* -1: unbuffered, through log_msg() */

void signer_log_set_buffered(int fd)
{
    pthread_mutex_lock(&signer_log_lock);
    signer_log_fd = fd;
    signer_log_len = 0;
    pthread_mutex_unlock(&signer_log_lock);
}

/* Writes the buffer (lock held). */
static void signer_log_write_locked(void)
{
    size_t off = 0;
    ssize_t r;

    while (off < signer_log_len) {
        r = write(signer_log_fd, signer_log_buf + off, signer_log_len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* nowhere to log to: the lines are dropped */
        off += (size_t)r;
    }
    signer_log_len = 0;
}

void signer_log_flush(void)
{
    pthread_mutex_lock(&signer_log_lock);
    if (signer_log_fd >= 0 && signer_log_len > 0)
        signer_log_write_locked();
    pthread_mutex_unlock(&signer_log_lock);
}

static const char *signer_log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_ERROR: return "error";
    case LOG_WARN:  return "warn";
    case LOG_INFO:  return "info";
    default:        return "debug";
    }
}

void signer_log(enum log_level level, const char *fmt, ...)
{
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char ts[40];
    char line[SIGNER_LOG_LINE];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n, m;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pthread_mutex_lock(&signer_log_lock);
    if (signer_log_fd < 0) {
        pthread_mutex_unlock(&signer_log_lock);
        log_msg(level, "%s", line);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != last_sec) {
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = now.tv_sec;
    }
    if (signer_log_len + SIGNER_LOG_LINE + 64 > SIGNER_LOG_BUF)
        signer_log_write_locked();
    m = snprintf(signer_log_buf + signer_log_len,
                 SIGNER_LOG_BUF - signer_log_len, "%s.%03ldZ %s %s\n", ts,
                 now.tv_nsec / 1000000, signer_log_level_name(level), line);
    if (m > 0)
        signer_log_len += (size_t)m < SIGNER_LOG_BUF - signer_log_len
            ? (size_t)m : SIGNER_LOG_BUF - signer_log_len - 1;
    if (level <= LOG_WARN)
        signer_log_write_locked();
    pthread_mutex_unlock(&signer_log_lock);
}
