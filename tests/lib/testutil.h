/*
 * Helpers shared by the unit tests, tools and benchmarks: reading files,
 * making throw-away keys and certificates for tests.
 */
#ifndef CMPCA_TESTUTIL_H
#define CMPCA_TESTUTIL_H

#include <stddef.h>

/* Reads a whole file into a malloc'ed buffer; returns NULL on error. */
unsigned char *testutil_read_file(const char *path, size_t *len);
/* Makes a fresh directory under $TMPDIR (or /tmp) and returns its path
 * (malloc'ed). */
char *testutil_mkdtemp(const char *prefix);

#endif
