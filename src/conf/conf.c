/*
 * Reading the INI configuration with inih into sections of key/value pairs
 * that remember their line numbers, plus typed getters with range checks.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf_parse {
    struct conf *conf;
    struct conf_section *cur;
    char *err;
    size_t errlen;
    int failed;
    int line;            /* lines handed to inih so far: the current line */
    int headers;         /* "[...]" lines seen so far */
    int cur_headers;     /* value of |headers| when |cur| began */
    int header_line;     /* line of the last "[...]" */
    FILE *fp;            /* source when reading a file */
    const char *text;    /* source when reading a string */
    char cur_header[256];
};

static struct conf_section *conf_add_section(struct conf_parse *p,
                                             const char *header, int line);

/* Counts a line and notes section headers (inih does not report a
 * repeated "[a]" right after "[a]", which must be refused as a duplicate). */
static void conf_note_line(struct conf_parse *p, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    p->line++;
    if (*line == '[') {
        const char *end = strchr(line + 1, ']');
        char name[256];
        size_t n;

        p->headers++;
        p->header_line = p->line;
        if (end == NULL || p->failed)
            return; /* inih reports the syntax error */
        n = (size_t)(end - line - 1);
        if (n >= sizeof(name)) {
            conf_err(p->conf, p->line, p->err, p->errlen, "section name too long");
            p->failed = 1;
            return;
        }
        memcpy(name, line + 1, n);
        name[n] = '\0';
        /* created here, so that a section without keys exists too */
        if ((p->cur = conf_add_section(p, name, p->line)) == NULL) {
            p->failed = 1;
            return;
        }
        snprintf(p->cur_header, sizeof(p->cur_header), "%s", name);
        p->cur_headers = p->headers;
    }
}

/* The packaged inih reads lines into a fixed buffer and would parse the
 * rest of a longer line as a line of its own: refuse it instead. |more| is
 * whether input follows |chunk|. Returns 1 if |chunk| is a whole line. */
static int conf_whole_line(struct conf_parse *p, const char *chunk, int num,
                           int more)
{
    size_t n = strlen(chunk);

    if ((n > 0 && chunk[n - 1] == '\n') || !more)
        return 1;
    conf_err(p->conf, p->line + 1, p->err, p->errlen,
             "line longer than %d characters", num - 2);
    p->failed = 1;
    return 0;
}

/* fgets-style readers for inih that count lines, since the packaged inih
 * does not pass line numbers to the handler. */
static char *conf_read_file(char *str, int num, void *stream)
{
    struct conf_parse *p = stream;
    char *r = fgets(str, num, p->fp);
    int c;

    if (r == NULL)
        return NULL;
    c = getc(p->fp);          /* is there more after a full buffer? */
    if (c != EOF)
        ungetc(c, p->fp);
    if (!conf_whole_line(p, r, num, c != EOF))
        return NULL;
    conf_note_line(p, r);
    return r;
}

static char *conf_read_string(char *str, int num, void *stream)
{
    struct conf_parse *p = stream;
    const char *nl;
    size_t n;

    if (*p->text == '\0' || num < 2)
        return NULL;
    nl = strchr(p->text, '\n');
    n = nl != NULL ? (size_t)(nl - p->text) + 1 : strlen(p->text);
    if (n > (size_t)num - 1)
        n = (size_t)num - 1;
    memcpy(str, p->text, n);
    str[n] = '\0';
    p->text += n;
    if (!conf_whole_line(p, str, num, *p->text != '\0'))
        return NULL;
    conf_note_line(p, str);
    return str;
}

int conf_err(const struct conf *conf, int line, char *err, size_t errlen,
             const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s:%d: %s",
                 conf != NULL && conf->path != NULL ? conf->path : "config",
                 line, msg);
    return 0;
}

static struct conf_section *conf_add_section(struct conf_parse *p,
                                             const char *header, int line)
{
    struct conf *conf = p->conf;
    struct conf_section *sec, *grown;
    const char *sp;
    size_t i, tlen;
    char type[128], name[128];

    while (isspace((unsigned char)*header))
        header++;
    sp = strchr(header, ' ');
    tlen = sp != NULL ? (size_t)(sp - header) : strlen(header);
    if (tlen == 0 || tlen >= sizeof(type)) {
        conf_err(conf, line, p->err, p->errlen, "bad section header [%s]", header);
        return NULL;
    }
    memcpy(type, header, tlen);
    type[tlen] = '\0';
    name[0] = '\0';
    if (sp != NULL) {
        while (*sp == ' ')
            sp++;
        if (strlen(sp) >= sizeof(name)) {
            conf_err(conf, line, p->err, p->errlen, "section name too long");
            return NULL;
        }
        strcpy(name, sp);
        for (i = strlen(name); i > 0 && name[i - 1] == ' '; i--)
            name[i - 1] = '\0';
    }
    for (i = 0; i < conf->nsec; i++) {
        if (strcmp(conf->sec[i].type, type) == 0
            && strcmp(conf->sec[i].name, name) == 0) {
            conf_err(conf, line, p->err, p->errlen,
                     "section [%s] repeats the one at line %d", header,
                     conf->sec[i].line);
            return NULL;
        }
    }
    grown = realloc(conf->sec, (conf->nsec + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    conf->sec = grown;
    sec = &conf->sec[conf->nsec];
    memset(sec, 0, sizeof(*sec));
    sec->type = strdup(type);
    sec->name = strdup(name);
    sec->line = line;
    if (sec->type == NULL || sec->name == NULL) {
        free(sec->type);
        free(sec->name);
        return NULL;
    }
    conf->nsec++;
    return sec;
}

static int conf_handler(void *user, const char *section, const char *key,
                        const char *value)
{
    struct conf_parse *p = user;
    int line = p->line;
    struct conf_section *sec;
    struct conf_kv *grown;
    size_t i;

    if (p->failed)
        return 0;
    if (section == NULL || *section == '\0') {
        conf_err(p->conf, line, p->err, p->errlen,
                 "key '%s' outside any [section]", key != NULL ? key : "");
        goto fail;
    }
    if (p->cur == NULL || strcmp(p->cur_header, section) != 0
        || p->cur_headers != p->headers) {
        if ((p->cur = conf_add_section(p, section,
                                       p->header_line > 0 ? p->header_line
                                                          : line)) == NULL)
            goto fail;
        p->cur_headers = p->headers;
        snprintf(p->cur_header, sizeof(p->cur_header), "%s", section);
    }
    if (key == NULL) /* header only (INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    sec = p->cur;
    for (i = 0; i < sec->nkv; i++) {
        if (strcmp(sec->kv[i].key, key) == 0) {
            conf_err(p->conf, line, p->err, p->errlen,
                     "key '%s' repeats the one at line %d", key, sec->kv[i].line);
            goto fail;
        }
    }
    grown = realloc(sec->kv, (sec->nkv + 1) * sizeof(*grown));
    if (grown == NULL)
        goto fail;
    sec->kv = grown;
    grown[sec->nkv].key = strdup(key);
    grown[sec->nkv].value = strdup(value != NULL ? value : "");
    grown[sec->nkv].line = line;
    grown[sec->nkv].used = 0;
    if (grown[sec->nkv].key == NULL || grown[sec->nkv].value == NULL) {
        free(grown[sec->nkv].key);
        free(grown[sec->nkv].value);
        goto fail;
    }
    sec->nkv++;
    return 1;
 fail:
    p->failed = 1;
    return 0;
}

static int conf_finish(struct conf_parse *p, int rc, struct conf **out)
{
    if (rc != 0 || p->failed) {
        if (!p->failed && rc > 0)
            conf_err(p->conf, rc, p->err, p->errlen, "syntax error");
        else if (!p->failed)
            snprintf(p->err, p->errlen, "%s: out of memory", p->conf->path);
        conf_free(p->conf);
        return 0;
    }
    *out = p->conf;
    return 1;
}

int conf_load(const char *path, struct conf **out, char *err, size_t errlen)
{
    struct conf_parse p;
    int rc;

    memset(&p, 0, sizeof(p));
    *out = NULL;
    if ((p.conf = calloc(1, sizeof(*p.conf))) == NULL
        || (p.conf->path = strdup(path)) == NULL) {
        conf_free(p.conf);
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    p.err = err;
    p.errlen = errlen;
    if ((p.fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        conf_free(p.conf);
        return 0;
    }
    ini_allow_multiline = false;
    rc = ini_parse_stream(conf_read_file, &p, conf_handler, &p);
    fclose(p.fp);
    return conf_finish(&p, rc, out);
}

int conf_load_string(const char *name, const char *text, struct conf **out,
                     char *err, size_t errlen)
{
    struct conf_parse p;
    int rc;

    memset(&p, 0, sizeof(p));
    *out = NULL;
    if ((p.conf = calloc(1, sizeof(*p.conf))) == NULL
        || (p.conf->path = strdup(name)) == NULL) {
        conf_free(p.conf);
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    p.err = err;
    p.errlen = errlen;
    p.text = text;
    ini_allow_multiline = false;
    rc = ini_parse_stream(conf_read_string, &p, conf_handler, &p);
    return conf_finish(&p, rc, out);
}

void conf_free(struct conf *conf)
{
    size_t i, j;

    if (conf == NULL)
        return;
    for (i = 0; i < conf->nsec; i++) {
        for (j = 0; j < conf->sec[i].nkv; j++) {
            free(conf->sec[i].kv[j].key);
            free(conf->sec[i].kv[j].value);
        }
        free(conf->sec[i].kv);
        free(conf->sec[i].type);
        free(conf->sec[i].name);
    }
    free(conf->sec);
    free(conf->path);
    free(conf);
}

const struct conf_section *conf_find(const struct conf *conf, const char *type,
                                     const char *name)
{
    size_t i;

    if (conf == NULL)
        return NULL;
    for (i = 0; i < conf->nsec; i++)
        if (strcmp(conf->sec[i].type, type) == 0
            && strcmp(conf->sec[i].name, name != NULL ? name : "") == 0)
            return &conf->sec[i];
    return NULL;
}

const struct conf_section *conf_next(const struct conf *conf, const char *type,
                                     const struct conf_section *prev)
{
    size_t i;

    if (conf == NULL)
        return NULL;
    i = prev == NULL ? 0 : (size_t)(prev - conf->sec) + 1;
    for (; i < conf->nsec; i++)
        if (strcmp(conf->sec[i].type, type) == 0)
            return &conf->sec[i];
    return NULL;
}

static struct conf_kv *conf_lookup(const struct conf_section *sec,
                                   const char *key)
{
    size_t i;

    if (sec == NULL)
        return NULL;
    for (i = 0; i < sec->nkv; i++) {
        if (strcmp(sec->kv[i].key, key) == 0) {
            sec->kv[i].used = 1;
            return &sec->kv[i];
        }
    }
    return NULL;
}

const char *conf_get(const struct conf_section *sec, const char *key)
{
    struct conf_kv *kv = conf_lookup(sec, key);

    return kv != NULL ? kv->value : NULL;
}

static int conf_range(const struct conf *conf, const struct conf_kv *kv,
                      long v, long min, long max, long *out, char *err,
                      size_t errlen)
{
    if (v < min || v > max)
        return conf_err(conf, kv->line, err, errlen,
                        "%s = %s is outside [%ld, %ld]", kv->key, kv->value,
                        min, max);
    *out = v;
    return 1;
}

int conf_get_long(const struct conf *conf, const struct conf_section *sec,
                  const char *key, long def, long min, long max, long *out,
                  char *err, size_t errlen)
{
    struct conf_kv *kv = conf_lookup(sec, key);
    char *end;
    long v;

    if (kv == NULL) {
        *out = def;
        return 1;
    }
    errno = 0;
    v = strtol(kv->value, &end, 10);
    if (errno != 0 || end == kv->value || *end != '\0')
        return conf_err(conf, kv->line, err, errlen, "%s: '%s' is not a number",
                        key, kv->value);
    return conf_range(conf, kv, v, min, max, out, err, errlen);
}

int conf_get_bool(const struct conf *conf, const struct conf_section *sec,
                  const char *key, int def, int *out, char *err, size_t errlen)
{
    struct conf_kv *kv = conf_lookup(sec, key);
    const char *v;

    if (kv == NULL) {
        *out = def;
        return 1;
    }
    v = kv->value;
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0
        || strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return 1;
    }
    if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0
        || strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return 1;
    }
    return conf_err(conf, kv->line, err, errlen,
                    "%s: '%s' is not yes/no", key, v);
}

/* Parses "<number><suffix>" where suffix is looked up in |units|. */
static int conf_parse_scaled(const char *s, const char *const *names,
                             const long *mult, long *out)
{
    char *end;
    long v;
    size_t i;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return 0;
    while (*end == ' ')
        end++;
    for (i = 0; names[i] != NULL; i++) {
        if (strcasecmp(end, names[i]) == 0) {
            if (mult[i] != 0 && v > LONG_MAX / mult[i])
                return 0;
            *out = v * mult[i];
            return 1;
        }
    }
    return 0;
}

int conf_parse_duration(const char *s, long *out)
{
    static const char *const names[] = { "", "s", "m", "h", "d", "y", NULL };
    static const long mult[] = { 1, 1, 60, 3600, 86400, 365L * 86400 };

    return conf_parse_scaled(s, names, mult, out);
}

int conf_parse_size(const char *s, long *out)
{
    static const char *const names[] = { "", "b", "k", "kb", "kib", "m", "mb",
                                         "mib", "g", "gb", "gib", NULL };
    static const long mult[] = { 1, 1, 1024, 1024, 1024, 1L << 20, 1L << 20,
                                 1L << 20, 1L << 30, 1L << 30, 1L << 30 };

    return conf_parse_scaled(s, names, mult, out);
}

int conf_get_duration(const struct conf *conf, const struct conf_section *sec,
                      const char *key, long def, long min, long max, long *out,
                      char *err, size_t errlen)
{
    struct conf_kv *kv = conf_lookup(sec, key);
    long v;

    if (kv == NULL) {
        *out = def;
        return 1;
    }
    if (!conf_parse_duration(kv->value, &v))
        return conf_err(conf, kv->line, err, errlen,
                        "%s: '%s' is not a duration (e.g. 30s, 5m, 2h, 7d, 1y)",
                        key, kv->value);
    return conf_range(conf, kv, v, min, max, out, err, errlen);
}

int conf_get_size(const struct conf *conf, const struct conf_section *sec,
                  const char *key, long def, long min, long max, long *out,
                  char *err, size_t errlen)
{
    struct conf_kv *kv = conf_lookup(sec, key);
    long v;

    if (kv == NULL) {
        *out = def;
        return 1;
    }
    if (!conf_parse_size(kv->value, &v))
        return conf_err(conf, kv->line, err, errlen,
                        "%s: '%s' is not a size (e.g. 64k, 1M)", key, kv->value);
    return conf_range(conf, kv, v, min, max, out, err, errlen);
}

int conf_check_used(const struct conf *conf, const struct conf_section *sec,
                    char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < sec->nkv; i++)
        if (!sec->kv[i].used)
            return conf_err(conf, sec->kv[i].line, err, errlen,
                            "unknown key '%s' in [%s%s%s]", sec->kv[i].key,
                            sec->type, *sec->name ? " " : "", sec->name);
    return 1;
}
