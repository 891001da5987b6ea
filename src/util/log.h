/*
 * One logging function for the whole program. Lines go to stderr (or a file
 * set at start-up); never pass key material or passwords to it.
 */
#ifndef CMPCA_UTIL_LOG_H
#define CMPCA_UTIL_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the threshold: messages above |level| are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
/* Sends log lines to |fp| instead of stderr (NULL restores stderr). */
void log_set_stream(FILE *fp);
/* Returns 1 if a message at |level| would be written. */
int log_enabled(enum log_level level);
/* Writes one line "TIME LEVEL message" (a newline is added). Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Rate limit of repeated lines: returns 1 if a line under |key| may be
 * written now (at most |per_sec| per key and second), 0 if it is to be
 * suppressed. When 1, *suppressed is the number of lines of |key| held
 * back since the last one admitted (to be reported in that line). Keys are
 * kept in a fixed table; a key evicted by another has its count written
 * as a summary line. Thread-safe. */
int log_admit(const char *key, unsigned per_sec, unsigned long *suppressed);
/* Writes a "suppressed N lines like: KEY" summary for every key whose
 * lines were held back in a second before now, and resets its count (the
 * sweeper calls it, so that the count of a burst that ended is not lost).
 * Returns the number of summary lines written. */
int log_flush_suppressed(void);
/* Logs |what| followed by the OpenSSL error queue (which it clears). */
void log_ossl(enum log_level level, const char *what);

#endif
