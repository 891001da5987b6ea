/*
 * Small helpers shared by tests, tools and benchmarks.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char *testutil_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0
        || fseek(fp, 0, SEEK_SET) != 0)
        goto end;
    buf = malloc((size_t)n + 1);
    if (buf == NULL)
        goto end;
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto end;
    }
    *len = (size_t)n;
 end:
    fclose(fp);
    return buf;
}

char *testutil_mkdtemp(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    char *path;
    size_t n;

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    n = strlen(tmp) + strlen(prefix) + 16;
    path = malloc(n);
    if (path == NULL)
        return NULL;
    snprintf(path, n, "%s/%s.XXXXXX", tmp, prefix);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}
