/*
 * The configuration file: INI sections "[type]" or "[type name]" holding
 * key = value lines. This module only reads and keeps the text with line
 * numbers; each module interprets its own section type and reports unknown
 * keys as "file:line: ..." through conf_err().
 */
#ifndef CMPCA_CONF_H
#define CMPCA_CONF_H

#include <stddef.h>

struct conf_kv {
    char *key;
    char *value;
    int line;
    int used;            /* set by conf_get*(); conf_check_used() reports the rest */
};

struct conf_section {
    char *type;          /* "server", "store", "alias", "profile", "ca", ... */
    char *name;          /* "" when the header has no name */
    int line;            /* line of the [header] */
    struct conf_kv *kv;
    size_t nkv;
};

struct conf {
    char *path;
    struct conf_section *sec;
    size_t nsec;
};

/* Reads |path|. Returns 1 and sets *out, or 0 with a "file:line: reason"
 * message in |err|. Duplicate sections and duplicate keys are errors. */
int conf_load(const char *path, struct conf **out, char *err, size_t errlen);
/* Parses INI text held in memory (same rules; |name| is used in messages). */
int conf_load_string(const char *name, const char *text, struct conf **out,
                     char *err, size_t errlen);
void conf_free(struct conf *conf);

/* Returns the section of |type| and |name| (name "" for unnamed), or NULL. */
const struct conf_section *conf_find(const struct conf *conf, const char *type,
                                     const char *name);
/* Iterates sections of one type: pass NULL first, then the previous result. */
const struct conf_section *conf_next(const struct conf *conf, const char *type,
                                     const struct conf_section *prev);

/* Looks |key| up in |sec| and marks it used; NULL when absent. */
const char *conf_get(const struct conf_section *sec, const char *key);
/* Typed getters. Each returns 1 on success (*out set, |def| when absent) and
 * 0 with a "file:line: ..." message in |err| when the value is malformed or
 * outside [min, max]. */
int conf_get_long(const struct conf *conf, const struct conf_section *sec,
                  const char *key, long def, long min, long max, long *out,
                  char *err, size_t errlen);
int conf_get_bool(const struct conf *conf, const struct conf_section *sec,
                  const char *key, int def, int *out, char *err, size_t errlen);
/* Durations like "30", "30s", "5m", "2h", "7d", "1y" (seconds). */
int conf_get_duration(const struct conf *conf, const struct conf_section *sec,
                      const char *key, long def, long min, long max, long *out,
                      char *err, size_t errlen);
/* Sizes like "65536", "64k", "64KiB", "1M" (bytes). */
int conf_get_size(const struct conf *conf, const struct conf_section *sec,
                  const char *key, long def, long min, long max, long *out,
                  char *err, size_t errlen);

/* Returns 0 with "file:line: unknown key 'k' in [type name]" in |err| if
 * any key of |sec| was never read through conf_get*(); else 1. */
int conf_check_used(const struct conf *conf, const struct conf_section *sec,
                    char *err, size_t errlen);
/* Formats "file:line: " + message into |err|. Always returns 0. */
int conf_err(const struct conf *conf, int line, char *err, size_t errlen,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Parses a duration/size string outside a conf file; 1 on success. */
int conf_parse_duration(const char *s, long *out);
int conf_parse_size(const char *s, long *out);

#endif
