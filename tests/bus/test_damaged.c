/*
 * test_damaged.c - a plain (not durable) ring with one damaged frame: every
 * way of starting a reader (earliest, an offset, a position the ring has
 * overwritten) and a reader reaching the damage in the middle gets
 * -EBADMSG naming the partition and the position, never a silent stop at
 * the damage or a start past it. Also: a reader starting at the earliest
 * event while the oldest frame is still in flight waits for it.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "ring_format.h"
#include "t_helpers.h"

#define RING_BYTES (64u * 1024u)

static evb_bus *bus;

static void setup(void)
{
    /* Short hole bounds, so damage is told from a hole quickly. */
    evb_bus_options bo = {.dead_ms = 20, .stall_ms = 100};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = RING_BYTES};
    cr_assert_eq(evb_topic_create(bus, "d", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(damaged, .init = setup, .fini = teardown, .timeout = 60);

static void publish_n(uint64_t n)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "d", NULL), 0);
    for (uint64_t i = 0; i < n; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "%llu", (unsigned long long)i);
        evb_msg m = {.value = v, .value_len = (uint32_t)len, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
}

static evb_consumer *open_reader(uint32_t start, uint64_t value)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = start,
                               .start_value = value};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "d", &co), 0);
    return c;
}

/* The ring holds several laps' worth published: (position, offset) of its
 * K-th event from the oldest. */
static void nth_event(int k, uint64_t *pos, uint64_t *offset)
{
    evb_consumer *c = open_reader(EVB_START_EARLIEST, 0);
    evb_event ev;
    for (int i = 0; i <= k; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    *pos = ev.position;
    *offset = ev.offset;
    evb_consumer_close(c);
}

/* Overwrite the stamp of the frame at POS with 0xff bytes. */
static void damage_stamp(uint64_t pos)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/d/0.ring", t_bus_dir());
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t junk[8];
    memset(junk, 0xff, sizeof junk);
    off_t at = (off_t)(EVB_RING_DATA_OFFSET + (pos & (RING_BYTES - 1)) +
                       offsetof(struct evb_frame, stamp));
    cr_assert_eq(pwrite(fd, junk, sizeof junk, at), (ssize_t)sizeof junk);
    close(fd);
}

/* The next read fails with -EBADMSG naming partition 0 and POS, and stays
 * failed; before that it delivered exactly WANT events. */
static void expect_damage_at(evb_consumer *c, uint64_t pos, int want)
{
    evb_event ev;
    int got = 0, rc;
    while ((rc = evb_consumer_next(c, &ev, 3000)) == 0)
        got++;
    cr_assert_eq(rc, -EBADMSG, "read ended with %d after %d events, not -EBADMSG", rc, got);
    cr_expect_eq(got, want, "%d events before the damage, expected %d", got, want);
    char where[64];
    snprintf(where, sizeof where, "position %llu", (unsigned long long)pos);
    const char *msg = evb_last_error();
    cr_expect(strstr(msg, "partition 0") && strstr(msg, where),
              "message '%s' does not name partition 0 and %s", msg, where);
    cr_expect_eq(evb_consumer_next(c, &ev, 0), -EBADMSG, "the error is not sticky");
}

Test(damaged, oldest_frame_fails_every_start)
{
    publish_n(3000);
    uint64_t pos, off;
    nth_event(0, &pos, &off);
    damage_stamp(pos);

    evb_consumer *c = open_reader(EVB_START_EARLIEST, 0);
    expect_damage_at(c, pos, 0);
    evb_consumer_close(c);

    c = open_reader(EVB_START_OFFSET, off + 6);
    expect_damage_at(c, pos, 0);
    evb_consumer_close(c);

    /* Position 0 was overwritten laps ago: the seek lands on the oldest
     * frame, which is the damaged one. */
    c = open_reader(EVB_START_LATEST, 0);
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_POSITION, 0), 0);
    expect_damage_at(c, pos, 0);
    evb_consumer_close(c);
}

Test(damaged, middle_frame_stops_the_reader_with_an_error)
{
    publish_n(3000);
    uint64_t pos, off;
    nth_event(100, &pos, &off);
    damage_stamp(pos);
    evb_consumer *c = open_reader(EVB_START_EARLIEST, 0);
    expect_damage_at(c, pos, 100);
    evb_consumer_close(c);
}

Test(damaged, earliest_waits_for_an_oldest_frame_in_flight)
{
    /* Less than a lap: the oldest frame is position 0, claimed and not yet
     * committed when the reader starts. */
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "d", NULL), 0);
    struct evb_claim cl;
    cr_assert_eq(evb_claim(p, 0, NULL, 0, 8, &cl), 0);
    cr_assert_eq(cl.position, 0);
    memcpy(cl.value, "inflight", 8);
    evb_consumer *c = open_reader(EVB_START_EARLIEST, 0);
    cr_assert_eq(evb_commit(p, &cl), 0);
    evb_msg m = {.value = "next", .value_len = 4, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(ev.offset, 0, "the reader started at offset %llu, past the claim in flight",
                 (unsigned long long)ev.offset);
    cr_expect_eq(ev.lost_events, 0);
    evb_consumer_close(c);
    evb_producer_close(p);
}
