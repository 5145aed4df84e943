/*
 * test_consumer_disk.c - a reader skipping damage (EVB_CONSUMER_SKIP_DAMAGE)
 * in a durable topic's disk log, through the consumer API (consumer_disk.c):
 * a seek by offset or time that lands inside a damaged range, and a read
 * whose last bytes in the log are damage, report what was skipped, on the
 * next event or through evb_consumer_skipped() when no event follows. The
 * segment reader's own counting is tests/durable/test_seg_damage.c's.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "ring_format.h"
#include "t_helpers.h"

#define N 3000u      /* events published */
#define BATCH 10u    /* one timestamp per batch */
#define VLEN 16u     /* "ev-%06u", zero padded */
#define SEG (64u << 10)

static evb_bus *bus;
/* Every event as published: position and timestamp, by offset. */
static uint64_t pos_of[N + 1], ts_of[N];

static evb_bus *open_bus(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &o), 0, "bus open: %s", evb_last_error());
    return b;
}

static void publish(uint32_t from, uint32_t n)
{
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    cr_assert_eq(evb_producer_open(&p, bus, "t", &po), 0, "producer: %s", evb_last_error());
    static char vals[BATCH][VLEN];
    evb_msg m[BATCH];
    for (uint32_t i = 0; i < n; i += BATCH) {
        uint32_t k = n - i < BATCH ? n - i : BATCH;
        for (uint32_t j = 0; j < k; j++) {
            memset(vals[j], 0, VLEN);
            snprintf(vals[j], VLEN, "ev-%06u", from + i + j);
            m[j] = (evb_msg){.value = vals[j], .value_len = VLEN};
        }
        cr_assert_eq(evb_publish_batch(p, m, k), (int)k);
    }
    evb_producer_close(p);
}

/* N events on disk, their positions and times noted, then a reboot (the
 * bus's tmpfs side removed): every read afterwards starts on disk. */
static void setup(void)
{
    bus = open_bus();
    evb_topic_config tc = {.partitions = 1, .ring_bytes = SEG, .segment_bytes = SEG,
                           .durability = EVB_DURABILITY_SYNC, .max_event_bytes = 256};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0, "create: %s", evb_last_error());
    publish(0, N);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0);
    evb_event ev;
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        cr_assert_eq(ev.offset, i);
        pos_of[i] = ev.position;
        ts_of[i] = ev.timestamp_ns;
    }
    pos_of[N] = ev.position + evb_frame_bytes(0, VLEN);
    evb_consumer_close(c);
    evb_bus_close(bus);
    t_rmtree(t_bus_dir());
    bus = NULL;
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(consumer_disk, .init = setup, .fini = teardown, .timeout = 60);

static void seg_path(char *out, size_t cap, uint64_t base)
{
    snprintf(out, cap, "%s/t/0/%020llu.log", t_data_dir(), (unsigned long long)base);
}

/* Flip a byte of the value of each event in [FROM, TO): each fails its
 * checksum, and together they are one damaged range. */
static void damage(uint32_t from, uint32_t to)
{
    for (uint32_t o = from; o < to; o++) {
        char path[512];
        uint64_t base = pos_of[o] - pos_of[o] % SEG;
        seg_path(path, sizeof path, base);
        int fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0, "%s", path);
        off_t at = (off_t)(pos_of[o] - base + EVB_FRAME_HDR + 4);
        uint8_t b;
        cr_assert_eq(pread(fd, &b, 1, at), 1);
        b ^= 0x40;
        cr_assert_eq(pwrite(fd, &b, 1, at), 1);
        close(fd);
    }
}

/* The bus again (rebuilding the topic from disk) and a skipping reader. */
static evb_consumer *reader(uint32_t start, uint64_t value)
{
    bus = open_bus();
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = start,
                               .start_value = value, .flags = EVB_CONSUMER_SKIP_DAMAGE};
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "consumer: %s", evb_last_error());
    return c;
}

static void expect_first(evb_consumer *c, uint64_t offset, uint64_t lost_events,
                         uint64_t lost_bytes)
{
    evb_event ev;
    int rc = evb_consumer_next(c, &ev, 1000);
    cr_assert_eq(rc, 0, "next: %s %s", evb_strerror(rc), evb_last_error());
    char want[VLEN] = {0};
    snprintf(want, sizeof want, "ev-%06llu", (unsigned long long)offset);
    cr_expect_eq(ev.offset, offset, "landed on %llu", (unsigned long long)ev.offset);
    cr_expect(ev.value_len == VLEN && memcmp(ev.value, want, VLEN) == 0, "wrong value");
    cr_expect_eq(ev.lost_events, lost_events, "lost_events %llu, expected %llu",
                 (unsigned long long)ev.lost_events, (unsigned long long)lost_events);
    cr_expect_eq(ev.lost_bytes, lost_bytes, "lost_bytes %llu, expected %llu",
                 (unsigned long long)ev.lost_bytes, (unsigned long long)lost_bytes);
}

/* (a) Seeks that land inside damage count from the offset asked. */
Test(consumer_disk, seek_by_offset_into_damage_reports_the_loss)
{
    damage(1500, 1503);
    evb_consumer *c = reader(EVB_START_OFFSET, 1501);
    expect_first(c, 1503, 2, pos_of[1503] - pos_of[1500]);
    expect_first(c, 1504, 0, 0);
    /* Seeking again there, by evb_consumer_seek, counts the same. */
    cr_assert_eq(evb_consumer_seek(c, -1, EVB_START_OFFSET, 1500), 0);
    expect_first(c, 1503, 3, pos_of[1503] - pos_of[1500]);
    evb_consumer_close(c);
}

Test(consumer_disk, seek_by_time_into_damage_reports_the_damaged_events)
{
    /* 1500 starts a batch: 1500-1509 share its timestamp. */
    cr_assert_eq(ts_of[1500], ts_of[1503]);
    cr_assert_lt(ts_of[1499], ts_of[1500]);
    damage(1500, 1503);
    evb_consumer *c = reader(EVB_START_TIME, ts_of[1500]);
    /* Which damaged events had matched is unknown: all three count. */
    expect_first(c, 1503, 3, pos_of[1503] - pos_of[1500]);
    evb_consumer_close(c);
}

Test(consumer_disk, seek_before_damage_reports_it_when_read)
{
    damage(1500, 1503);
    evb_consumer *c = reader(EVB_START_OFFSET, 1498);
    expect_first(c, 1498, 0, 0);
    expect_first(c, 1499, 0, 0);
    expect_first(c, 1503, 3, pos_of[1503] - pos_of[1500]);
    evb_consumer_close(c);
}

Test(consumer_disk, seek_into_a_missing_segment_reports_the_loss)
{
    char path[512];
    uint64_t base = pos_of[1500] - pos_of[1500] % SEG;
    seg_path(path, sizeof path, base);
    cr_assert_eq(unlink(path), 0);
    uint32_t first = 1500; /* the first event of the next segment */
    while (pos_of[first] < base + SEG)
        first++;
    evb_consumer *c = reader(EVB_START_OFFSET, 1500);
    expect_first(c, first, first - 1500, SEG);
    evb_consumer_close(c);
}

/* (b) A read whose log ends in damage: no event carries the loss, so
 * evb_consumer_skipped() hands it over, once. */
Test(consumer_disk, damage_at_the_end_of_the_log_is_handed_over)
{
    damage(N - 3, N);
    evb_consumer *c = reader(EVB_START_EARLIEST, 0);
    evb_event ev;
    uint32_t n = 0;
    int rc;
    while ((rc = evb_consumer_next(c, &ev, 100)) == 0) {
        cr_assert_eq(ev.offset, n);
        cr_assert_eq(ev.lost_events + ev.lost_bytes, 0);
        n++;
    }
    cr_assert_eq(rc, -ETIMEDOUT, "%s", evb_strerror(rc));
    cr_assert_eq(n, N - 3);
    uint64_t events = 7, bytes = 7;
    cr_assert_eq(evb_consumer_skipped(c, -1, &events, &bytes), 0);
    cr_expect_eq(events, 3);
    cr_expect_eq(bytes, pos_of[N] - pos_of[N - 3]);
    cr_assert_eq(evb_consumer_skipped(c, 0, &events, &bytes), 0);
    cr_expect_eq(events + bytes, 0, "handed over twice");
    /* Nor does the next event carry it again. */
    publish(N, 1);
    expect_first(c, N, 0, 0);
    cr_expect_eq(evb_consumer_skipped(c, 1, &events, &bytes), -EINVAL);
    evb_consumer_close(c);
}

Test(consumer_disk, damage_at_the_end_of_the_log_goes_with_the_next_event)
{
    damage(N - 3, N);
    evb_consumer *c = reader(EVB_START_EARLIEST, 0);
    evb_event ev;
    uint32_t n = 0;
    while (evb_consumer_next(c, &ev, 100) == 0)
        n++;
    cr_assert_eq(n, N - 3);
    publish(N, 2);
    expect_first(c, N, 3, pos_of[N] - pos_of[N - 3]);
    expect_first(c, N + 1, 0, 0);
    uint64_t events, bytes;
    cr_assert_eq(evb_consumer_skipped(c, -1, &events, &bytes), 0);
    cr_expect_eq(events + bytes, 0);
    evb_consumer_close(c);
}

/* A seek by time past the last intact event, over damage to the end. */
Test(consumer_disk, seek_by_time_into_damage_at_the_end)
{
    damage(N - 10, N);
    evb_consumer *c = reader(EVB_START_TIME, ts_of[N - 10]);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 100), -ETIMEDOUT);
    uint64_t events, bytes;
    cr_assert_eq(evb_consumer_skipped(c, -1, &events, &bytes), 0);
    cr_expect_eq(events, 10);
    cr_expect_eq(bytes, pos_of[N] - pos_of[N - 10], "bytes %llu", (unsigned long long)bytes);
    cr_expect_eq(events, 10, "events %llu", (unsigned long long)events);
    evb_consumer_close(c);
}

/* A live bus (the ring still holds every event), the disk log's last
 * events damaged under it; a seek by offset at the tail's offset reported
 * the damage lost though the caller asked for none of it and the ring
 * holds it whole (found by a review). */
Test(consumer_disk, seek_past_the_end_over_live_damage_loses_nothing)
{
    damage(N - 3, N);
    /* the rebuilt bus: the ring starts empty at the log end; publish
     * enough for the ring to hold a stretch of fresh events, then damage
     * the last of those on disk too */
    bus = open_bus();
    publish(N, 100);
    char path[512];
    /* damage events N+97..N+99 on disk (their positions: the ring knows) */
    evb_consumer *s;
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_OFFSET,
                               .start_value = N + 90};
    cr_assert_eq(evb_consumer_open(&s, bus, "t", &so), 0);
    evb_event ev;
    uint64_t p97 = 0, pend = 0;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(evb_consumer_next(s, &ev, 1000), 0, "%s", evb_last_error());
        if (ev.offset == N + 97)
            p97 = ev.position;
        pend = ev.position + evb_frame_bytes(0, VLEN);
    }
    evb_consumer_close(s);
    for (uint64_t pp = p97; pp < pend; pp += evb_frame_bytes(0, VLEN)) {
        uint64_t base = pp - pp % SEG;
        seg_path(path, sizeof path, base);
        int fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0, "%s", path);
        off_t at = (off_t)(pp - base + EVB_FRAME_HDR + 4);
        uint8_t b;
        cr_assert_eq(pread(fd, &b, 1, at), 1);
        b ^= 0x40;
        cr_assert_eq(pwrite(fd, &b, 1, at), 1);
        close(fd);
    }
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_OFFSET,
                               .start_value = N + 100, .flags = EVB_CONSUMER_SKIP_DAMAGE};
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "consumer: %s", evb_last_error());
    publish(N + 100, 1);
    int rc = evb_consumer_next(c, &ev, 1000);
    cr_assert_eq(rc, 0, "%s", evb_last_error());
    cr_expect_eq(ev.offset, N + 100);
    cr_expect_eq(ev.lost_bytes, 0, "reported %llu bytes lost",
                 (unsigned long long)ev.lost_bytes);
    evb_consumer_close(c);
}
