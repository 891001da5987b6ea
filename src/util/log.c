/*
 * Implementation of the single log function: timestamped lines, one lock so
 * lines from several threads never interleave.
 */
#include "util/log.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static enum log_level log_threshold = LOG_INFO;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

void log_set_stream(FILE *fp)
{
    log_stream = fp;
}

int log_enabled(enum log_level level)
{
    return level <= log_threshold;
}

static const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_ERROR: return "error";
    case LOG_WARN:  return "warn";
    case LOG_INFO:  return "info";
    default:        return "debug";
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    char ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (!log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    fprintf(log_stream != NULL ? log_stream : stderr, "%s.%03ldZ %s %s\n", ts,
            now.tv_nsec / 1000000, log_level_name(level), line);
    fflush(log_stream != NULL ? log_stream : stderr);
    pthread_mutex_unlock(&log_lock);
}

void log_ossl(enum log_level level, const char *what)
{
    char buf[256];
    unsigned long e;
    const char *data;
    int flags;

    if (!log_enabled(level)) {
        ERR_clear_error();
        return;
    }
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        log_msg(level, "%s: %s%s%s", what, buf,
                (flags & ERR_TXT_STRING) && data != NULL ? ": " : "",
                (flags & ERR_TXT_STRING) && data != NULL ? data : "");
    }
}
