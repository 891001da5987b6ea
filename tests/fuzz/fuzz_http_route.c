/*
 * libFuzzer target for the HTTP routing and Content-Type parsing: any path
 * or header value must route without crashing and never yield an alias
 * that is not a valid label.
 */
#include "http/http_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char alias[HTTP_LABEL_MAX + 1], op[HTTP_LABEL_MAX + 1], *s;

    if (size > 4096 || (s = malloc(size + 1)) == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (http_route(s, size > 0 && (data[0] & 1) ? "3gpp" : NULL, alias, op)
        == HTTP_ROUTE_CMP && !http_label_valid(alias, strlen(alias)))
        abort();
    (void)http_content_type_ok(s);
    free(s);
    return 0;
}
