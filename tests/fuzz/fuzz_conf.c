/*
 * libFuzzer target for the configuration reader and the section
 * interpreters that parse values (durations, sizes, profiles): arbitrary
 * INI text must never crash, hang or leak.
 */
#include "ca/ca_profile.h"
#include "conf/conf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf *conf = NULL;
    const struct conf_section *sec;
    CA_PROFILE *prof = NULL;
    char err[512], *text;
    long v;
    int b;

    if (size > 16384)
        return 0;
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (conf_load_string("fuzz.conf", text, &conf, err, sizeof(err))) {
        for (sec = conf_next(conf, "profile", NULL); sec != NULL;
             sec = conf_next(conf, "profile", sec)) {
            if (ca_profile_from_conf(conf, sec, &prof, err, sizeof(err)))
                ca_profile_free(prof);
            prof = NULL;
        }
        for (sec = conf_next(conf, "server", NULL); sec != NULL;
             sec = conf_next(conf, "server", sec)) {
            conf_get_duration(conf, sec, "idle_timeout", 0, 0, 3600, &v, err,
                              sizeof(err));
            conf_get_size(conf, sec, "max_body", 0, 0, 1L << 30, &v, err,
                          sizeof(err));
            conf_get_long(conf, sec, "threads", 0, 0, 64, &v, err, sizeof(err));
            conf_get_bool(conf, sec, "x", 0, &b, err, sizeof(err));
            conf_check_used(conf, sec, err, sizeof(err));
        }
        conf_free(conf);
    }
    free(text);
    return 0;
}
