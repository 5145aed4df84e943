/*
 * fuzz_topic_conf.c - libFuzzer target: topic.conf (bus/topic_config.c,
 * format in bus/topic_config_format.h). The input is the file. What must
 * hold: the reader returns 0, -EBADMSG or -EPROTO; a config it accepts
 * passes the range checks, and writing it out and reading that back
 * gives the same config.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir(0);
    char path[256];
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    fuzz_write(path, data, size);
    evb_topic_config cfg;
    int rc = evb_topic_config_read(dir, &cfg);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO, "read %d (%s)", rc,
               evb_last_error());
    if (rc)
        return 0;
    FUZZ_CHECK(evb_topic_config_check(&cfg) == 0, "accepted a config that fails the checks");
    const char *again = fuzz_fresh_dir(1);
    rc = evb_topic_config_write(again, &cfg);
    FUZZ_CHECK(rc == 0, "write %d (%s)", rc, evb_last_error());
    evb_topic_config back;
    rc = evb_topic_config_read(again, &back);
    FUZZ_CHECK(rc == 0, "reading back what was written: %d (%s)", rc, evb_last_error());
    FUZZ_CHECK(!memcmp(&cfg, &back, sizeof cfg), "the config changed on a round trip");
    return 0;
}
