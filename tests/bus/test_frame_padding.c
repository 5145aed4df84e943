/*
 * test_frame_padding.c - a frame's bytes past its length, up to the
 * 64-byte line it is padded to (ring version 6), hold zeros, never an
 * older lap's event: in the ring, and in the segment files a durable
 * topic writes them to (where they would outlive the older lap's own
 * segment under retention). For every way an event is written: publish
 * with and without a key, claim with and without a key, a batch.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "ring.h"
#include "t_helpers.h"

#define RING (64u << 10)
#define OLD 0xee /* every byte of the lap before */

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(frame_padding, .init = setup, .fini = teardown, .timeout = 60);

enum path { PUBLISH, PUBLISH_KEY, CLAIM, CLAIM_KEY, BATCH, PATHS };

/* Event I of a run: key of I % 10 bytes (keyed paths), value of 1 + I % 71. */
static void write_events(evb_producer *p, enum path path, uint32_t n)
{
    static const char key[] = "kkkkkkkkk", val[80] = "value";
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kl = path == PUBLISH_KEY || path == CLAIM_KEY || path == BATCH ? i % 10 : 0;
        uint32_t vl = 1 + i % 71;
        if (path == CLAIM || path == CLAIM_KEY) {
            struct evb_claim c;
            cr_assert_eq(evb_claim(p, 0, kl ? key : NULL, kl, vl, &c), 0, "%s",
                         evb_last_error());
            memcpy(c.value, val, vl);
            cr_assert_eq(evb_commit(p, &c), 0);
        } else if (path == BATCH) {
            evb_msg m[3];
            for (int j = 0; j < 3; j++)
                m[j] = (evb_msg){.key = kl ? key : NULL, .key_len = kl, .value = val,
                                 .value_len = vl + (uint32_t)j, .partition = 0};
            cr_assert_eq(evb_publish_batch(p, m, 3), 3, "%s", evb_last_error());
        } else {
            evb_msg m = {.key = kl ? key : NULL, .key_len = kl, .value = val,
                         .value_len = vl, .partition = 0};
            cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
        }
    }
}

/* The padding of each frame a reader finds from the start of the log:
 * from the ring (ring-only) or from the segment file (durable). */
static void check_padding(const char *topic, bool durable, uint32_t *frames)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0);
    struct evb_ring r;
    char path[512];
    snprintf(path, sizeof path, "%s/%s/0.ring", t_bus_dir(), topic);
    cr_assert_eq(evb_ring_open(&r, path), 0, "%s", evb_err_get());
    evb_event ev;
    while (evb_consumer_next(c, &ev, 0) == 0) {
        uint32_t len = (uint32_t)evb_frame_len(ev.key_len, ev.value_len);
        uint32_t skip = (uint32_t)evb_frame_bytes(ev.key_len, ev.value_len);
        uint8_t b[64];
        if (durable) {
            snprintf(path, sizeof path, "%s/%s/0/%020llu.log", t_data_dir(), topic, 0ull);
            int fd = open(path, O_RDONLY);
            cr_assert_geq(fd, 0, "%s", path);
            cr_assert_eq(pread(fd, b, skip - len, (off_t)(ev.position + len)),
                         (ssize_t)(skip - len));
            close(fd);
        } else {
            memcpy(b, (const uint8_t *)evb_ring_frame(&r, ev.position) + len, skip - len);
        }
        for (uint32_t i = 0; i < skip - len; i++)
            cr_assert_eq(b[i], 0, "%s: the frame at %llu (length %u) holds 0x%02x at %u",
                         topic, (unsigned long long)ev.position, len, b[i], len + i);
        (*frames)++;
    }
    evb_ring_close(&r);
    evb_consumer_close(c);
}

static void one_path(enum path path, bool durable)
{
    char topic[32];
    snprintf(topic, sizeof topic, "p%d%s", path, durable ? "d" : "");
    evb_topic_config tc = {.partitions = 1, .ring_bytes = RING, .max_event_bytes = 4096};
    if (durable) {
        tc.durability = EVB_DURABILITY_ASYNC;
        tc.segment_bytes = 16 * RING; /* one segment: the log from 0 */
    }
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    /* A durable ring waits for the flusher when full. */
    evb_producer_options po = {.block_ms = 10000};
    cr_assert_eq(evb_producer_open(&p, bus, topic, &po), 0);
    /* A lap of large events whose every byte is OLD, then the events
     * under test over the same bytes. */
    static uint8_t big[2000];
    memset(big, OLD, sizeof big);
    for (uint32_t i = 0; i < RING / sizeof big + 1; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.key = big, .key_len = 9, .value = big,
                                               .value_len = sizeof big, .partition = 0}),
                     0, "%s", evb_last_error());
    if (durable)
        cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    write_events(p, path, 400);
    if (durable)
        cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    uint32_t frames = 0;
    check_padding(topic, durable, &frames);
    cr_assert_geq(frames, 200, "%s: %u frames checked", topic, frames);
}

Test(frame_padding, ring_frames_pad_with_zeros)
{
    for (enum path p = PUBLISH; p < PATHS; p++)
        one_path(p, false);
}

Test(frame_padding, segment_frames_pad_with_zeros)
{
    for (enum path p = PUBLISH; p < PATHS; p++)
        one_path(p, true);
}
