/*
 * stream_body.h - one stress body for many producers and lossless
 * subscribers, run as processes (test_stream.c) or as threads sharing one
 * mapping (test_stream_threads.c, for TSan). Every event is checked:
 * offsets contiguous per partition, each producer's sequence +1 per
 * partition, value checksum intact.
 */
#ifndef EVB_STREAM_BODY_H
#define EVB_STREAM_BODY_H

#include <stdint.h>

#include "t_helpers.h"

struct stream_cfg {
    const char *bus;
    const char *topic;
    int producers;
    int subscribers;
    uint64_t per_producer;
    uint32_t value_len;
    struct t_shared *sh;
};

struct stream_role {
    const struct stream_cfg *cfg;
    int idx;
};

/* Return 0 on success, or a code saying what failed (see the .c). */
int stream_producer(void *arg);
int stream_subscriber(void *arg);
const char *stream_error(int code);

#endif
