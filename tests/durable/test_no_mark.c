/*
 * test_no_mark.c - a durable log rebuilt without a durable mark to bound
 * its torn tail (issue 9, defect 7: offsets are never reused), and a mark
 * the flusher cannot write. The cut recovery makes then is reported, the
 * offsets it may have taken back are skipped (pads in the log say so),
 * and nothing below the end is deleted. Damage below a mark is
 * test_seg_damage.c's and test_durable.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "t_helpers.h"

#define SEG (1u << 20)
#define VLEN 64u
/* Ring bytes of each event, and where in a frame at F its value's last
 * word is (before the padding to the line, which no check covers). */
#define FRAME evb_frame_bytes(0, VLEN)
#define LAST_WORD(f) ((f) + evb_frame_len(0, VLEN) - 8)

static evb_bus *bus;

static evb_bus *open_bus(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &o), 0, "bus open: %s", evb_last_error());
    return b;
}

static void setup(void)
{
    bus = open_bus();
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(no_mark, .init = setup, .fini = teardown, .timeout = 60);

/* A one-partition sync topic T with N events of VLEN bytes, all synced;
 * returns the durable position. */
static uint64_t synced_topic(const char *t, uint64_t n)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = SEG, .segment_bytes = SEG,
                           .durability = EVB_DURABILITY_SYNC, .max_event_bytes = 4096};
    cr_assert_eq(evb_topic_create(bus, t, &tc), 0, "create: %s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, t, NULL), 0, "producer: %s", evb_last_error());
    uint8_t v[VLEN];
    for (uint64_t i = 0; i < n; i++) {
        t_value_fill(v, VLEN, 1, i);
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN}), 0);
    }
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    evb_producer_close(p);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, t, 0, &st), 0);
    cr_assert_eq(st.tail_offset, n);
    cr_assert_eq(st.durable_position, st.tail_position);
    return st.durable_position;
}

static void part_file(const char *t, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/0/%s", t_data_dir(), t, name);
}

static void flip_byte(const char *t, uint64_t pos)
{
    char path[600], name[64];
    uint64_t base = pos - pos % SEG;
    snprintf(name, sizeof name, "%020llu.log", (unsigned long long)base);
    part_file(t, name, path, sizeof path);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "%s", path);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)(pos - base)), 1);
    b ^= 0x10;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)(pos - base)), 1);
    close(fd);
}

static void reboot(void)
{
    evb_bus_close(bus);
    t_rmtree(t_bus_dir());
    bus = open_bus();
}

/* Publish one event after the rebuild; its offset from a skipping read. */
static uint64_t publish_and_read_last(const char *t, uint64_t *events, uint64_t *lost)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, t, NULL), 0, "producer: %s", evb_last_error());
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 2, 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN}), 0, "%s",
                 evb_last_error());
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    evb_producer_close(p);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST,
                               .flags = EVB_CONSUMER_SKIP_DAMAGE};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, t, &co), 0, "consumer: %s", evb_last_error());
    evb_event ev;
    uint64_t last = UINT64_MAX;
    *events = *lost = 0;
    int rc;
    while ((rc = evb_consumer_next(c, &ev, 200)) == 0) {
        cr_assert(last == UINT64_MAX || ev.offset > last, "offset %llu after %llu",
                  (unsigned long long)ev.offset, (unsigned long long)last);
        last = ev.offset;
        *lost += ev.lost_events;
        (*events)++;
    }
    cr_assert(rc == -EAGAIN || rc == -ETIMEDOUT, "read: %s", evb_strerror(rc));
    evb_consumer_close(c);
    return last;
}

/* A process that publishes one EVB_MSG_SYNC event to topic ARG and is
 * SIGKILLed as soon as it is acknowledged: its sync leader (or the
 * flusher) has fdatasync'ed the segment, and the flusher's mark that
 * follows a sync has had a few microseconds at most. */
static int sync_then_die(void *arg)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, arg, NULL))
        return 10;
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 1, 0);
    if (evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN, .flags = EVB_MSG_SYNC}))
        return 11;
    raise(SIGKILL);
    return 12;
}

/* An ordinary crash right after a partition's first acknowledged sync
 * publish, then a reboot (cold attack of issue 13, D5): the rebuild
 * finds a durable mark (written before the partition's first segment),
 * so it reports no missing mark and no unbounded cut, only a clean log
 * holding the acknowledged event. Several topics: without that first
 * mark, most runs lose the race to the flusher's mark on at least one. */
Test(no_mark, a_sigkill_right_after_a_sync_ack_is_no_damage)
{
    enum { TOPICS = 6 };
    evb_topic_config tc = {.partitions = 1, .ring_bytes = SEG, .segment_bytes = SEG,
                           .durability = EVB_DURABILITY_SYNC, .max_event_bytes = 4096};
    char t[TOPICS][8];
    for (int i = 0; i < TOPICS; i++) {
        snprintf(t[i], sizeof t[i], "k%d", i);
        cr_assert_eq(evb_topic_create(bus, t[i], &tc), 0, "create: %s", evb_last_error());
        int st = t_wait_exit(t_spawn(sync_then_die, t[i]), 10000);
        cr_assert_eq(st, 128 + SIGKILL, "topic %s: the child ended with %d", t[i], st);
    }
    reboot();
    for (int i = 0; i < TOPICS; i++) {
        evb_damage d;
        cr_assert_eq(evb_partition_damage(bus, t[i], 0, 0, &d), 0, "%s", evb_last_error());
        cr_expect_eq(d.mark, EVB_MARK_OK, "topic %s: mark %u after an ordinary crash", t[i],
                     d.mark);
        cr_expect_eq(d.unchecked_cut_bytes, 0u, "topic %s", t[i]);
        cr_expect_eq(d.ranges, 0u, "topic %s", t[i]);
        uint64_t events, lost;
        uint64_t last = publish_and_read_last(t[i], &events, &lost);
        cr_expect_eq(events, 2u, "topic %s: the acknowledged event and a new one", t[i]);
        cr_expect_eq(last, 1u, "topic %s", t[i]);
        cr_expect_eq(lost, 0u, "topic %s", t[i]);
    }
}

/* A synced log, its mark removed, a bit flipped in the middle of the log
 * and one in its last frame, tmpfs wiped: the rebuild cannot tell the
 * damaged last frame from a torn tail and cuts it, but the next event
 * gets an offset above every one handed out, the cut and the skip are
 * reported, and the damage in the middle is kept, not deleted. */
Test(no_mark, cut_without_a_mark_reuses_no_offset)
{
    const uint64_t n = 2000;
    uint64_t end = synced_topic("t", n);
    cr_assert_gt(end, 2 * FRAME * 100);
    char path[600];
    part_file("t", "durable.mark", path, sizeof path);
    cr_assert_eq(unlink(path), 0);
    flip_byte("t", end / 2 - end / 2 % FRAME + 60); /* a frame in the middle */
    flip_byte("t", LAST_WORD(end - FRAME));         /* the last frame's value */
    reboot();
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0, "%s", evb_last_error());
    cr_expect_gt(st.tail_offset, n, "offset %llu would be handed out again",
                 (unsigned long long)st.tail_offset);
    cr_expect_gt(st.recovered_dropped, 0u);
    evb_damage d;
    cr_assert_eq(evb_partition_damage(bus, "t", 0, 0, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.mark, EVB_MARK_MISSING);
    cr_expect_gt(d.unchecked_cut_bytes, 0u);
    cr_expect_geq(d.skipped_offsets, st.tail_offset - (n - 1));
    cr_expect_geq(d.ranges, 1u, "the flip in the middle was not reported");
    uint64_t events, lost;
    uint64_t last = publish_and_read_last("t", &events, &lost);
    cr_expect_geq(last, n, "new event got offset %llu", (unsigned long long)last);
    cr_expect_eq(last, st.tail_offset);
    /* Everything but the two damaged events, and the new one. */
    cr_expect_eq(events, n - 2 + 1, "read %llu events", (unsigned long long)events);
    /* A second rebuild finds the pads: the same end, nothing cut again. */
    reboot();
    struct evb_partition_stat st2;
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st2), 0, "%s", evb_last_error());
    cr_expect_eq(st2.tail_offset, last + 1);
    cr_expect_eq(st2.recovered_dropped, 0u);
    cr_assert_eq(evb_partition_damage(bus, "t", 0, 0, &d), 0, "%s", evb_last_error());
    cr_expect_gt(d.skipped_offsets, 0u, "the skip is no longer reported");
}

/* The same with the mark there: the flipped last frame is damage below
 * it, nothing is cut or skipped. */
Test(no_mark, with_a_mark_nothing_is_skipped)
{
    const uint64_t n = 2000;
    uint64_t end = synced_topic("t", n);
    flip_byte("t", LAST_WORD(end - FRAME));
    reboot();
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0, "%s", evb_last_error());
    cr_expect_eq(st.tail_offset, n);
    cr_expect_eq(st.recovered_dropped, 0u);
    evb_damage d;
    cr_assert_eq(evb_partition_damage(bus, "t", 0, 0, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.skipped_offsets, 0u);
    cr_expect_eq(d.mark, EVB_MARK_OK);
}

/* A mark the flusher cannot write (a directory with something in it
 * planted at its name): producers and sync waiters are not failed, the
 * events being synced, but the partition's damage report says at once
 * that its mark is not kept, and a rebuild does not take an older mark
 * for the synced end: a damaged last frame then costs no offset reuse. */
Test(no_mark, unwritable_mark_is_reported_not_trusted)
{
    const uint64_t n = 500;
    synced_topic("t", n);
    char path[600], inner[700];
    part_file("t", "durable.mark", path, sizeof path);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(inner, sizeof inner, "%s/x", path);
    cr_assert_eq(mkdir(inner, 0700), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0, "producer: %s", evb_last_error());
    uint8_t v[VLEN];
    for (uint64_t i = 0; i < n; i++) {
        t_value_fill(v, VLEN, 1, n + i);
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN}), 0, "%s",
                     evb_last_error());
    }
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0);
    cr_expect_eq(st.flush_error, 0, "producers failed for a mark");
    cr_expect_eq(st.durable_position, st.tail_position);
    evb_damage d;
    cr_assert_eq(evb_partition_damage(bus, "t", 0, 0, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.mark, EVB_MARK_NOT_FILE, "the unwritable mark is not reported");
    /* A rebuild: the damaged last frame is cut, its offset not reused. */
    flip_byte("t", LAST_WORD(st.durable_position - FRAME));
    reboot();
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0, "%s", evb_last_error());
    cr_expect_gt(st.tail_offset, 2 * n, "offset %llu would be handed out again",
                 (unsigned long long)st.tail_offset);
    cr_assert_eq(evb_partition_damage(bus, "t", 0, 0, &d), 0, "%s", evb_last_error());
    cr_expect_gt(d.skipped_offsets, 0u);
}
