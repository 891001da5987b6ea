/*
 * Implementation of the single log function: timestamped lines, one lock so
 * lines from several threads never interleave.
 */
#include "util/log.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
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

/* --- rate limit of repeated lines ------------------------------------ */

#define LOG_RL_SLOTS 256
#define LOG_RL_KEY 160

struct log_rl_slot {
    char key[LOG_RL_KEY];
    time_t sec;                /* the second |count| counts in */
    unsigned count;            /* lines admitted in |sec| */
    unsigned long held;        /* lines suppressed since the last admitted */
};

static struct log_rl_slot log_rl[LOG_RL_SLOTS];
static pthread_mutex_t log_rl_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned log_rl_hash(const char *key)
{
    uint32_t h = 2166136261u;

    for (; *key != '\0'; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h % LOG_RL_SLOTS;
}

int log_admit(const char *key, unsigned per_sec, unsigned long *suppressed)
{
    struct log_rl_slot *s = &log_rl[log_rl_hash(key)];
    char evicted[LOG_RL_KEY];
    unsigned long evicted_held = 0;
    time_t now = time(NULL);
    int ok;

    *suppressed = 0;
    if (per_sec == 0)
        return 1;
    pthread_mutex_lock(&log_rl_lock);
    if (strncmp(s->key, key, LOG_RL_KEY - 1) != 0) {
        if (s->held > 0) {
            memcpy(evicted, s->key, sizeof(evicted));
            evicted_held = s->held;
        }
        memset(s, 0, sizeof(*s));
        snprintf(s->key, sizeof(s->key), "%s", key);
    }
    if (s->sec != now) {
        s->sec = now;
        s->count = 0;
    }
    ok = s->count < per_sec;
    if (ok) {
        s->count++;
        *suppressed = s->held;
        s->held = 0;
    } else {
        s->held++;
    }
    pthread_mutex_unlock(&log_rl_lock);
    if (evicted_held > 0)
        log_msg(LOG_WARN, "suppressed %lu lines like: %s", evicted_held,
                evicted);
    return ok;
}

int log_flush_suppressed(void)
{
    struct log_rl_slot copy[16];
    time_t now = time(NULL);
    size_t i, n = 0;
    int written = 0;

    for (;;) {
        pthread_mutex_lock(&log_rl_lock);
        for (i = 0; i < LOG_RL_SLOTS && n < 16; i++) {
            if (log_rl[i].held > 0 && log_rl[i].sec < now) {
                copy[n++] = log_rl[i];
                log_rl[i].held = 0;
            }
        }
        pthread_mutex_unlock(&log_rl_lock);
        if (n == 0)
            return written;
        for (i = 0; i < n; i++)
            log_msg(LOG_WARN, "suppressed %lu lines like: %s", copy[i].held,
                    copy[i].key);
        written += (int)n;
        if (n < 16)
            return written;
        n = 0;
    }
}
