/*
 * test_writeback.c - through the page cache the flusher starts write-back
 * of what it wrote every EVB_KICK_BYTES (bus/durable/flush_round.c, kick),
 * so a segment's pages are being written or clean long before any
 * fdatasync comes; and where sync_file_range is refused (a seccomp filter
 * here, some file systems in the field) the flush goes on without the
 * kicks and loses nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "durable_fixture.h"
#include "flush_internal.h"
#include "segment.h"

#define TOPIC "w"
/* About 190 k events of DF_VLEN: some 20 MiB of log (refused()). */
#define EVENTS 190000u

TestSuite(writeback, .init = df_setup, .fini = df_teardown, .timeout = 120);

/* The page cache's view of a file range: cachestat(2), Linux 6.5. Not in
 * every libc's headers yet, hence spelt out (the uapi layout). */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct t_cachestat_range {
    uint64_t off, len;
};
struct t_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* ASYNC, one partition, 1 MiB ring, 32 MiB segments, and a flush_ms so
 * long that no timed fdatasync comes during a test. */
static evb_topic_config config(void)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_ASYNC);
    tc.ring_bytes = 1 << 20;
    tc.segment_bytes = 32u << 20;
    tc.flush_ms = 600000;
    return tc;
}

/* Wait (10 s at most) until everything published is written. */
static struct evb_partition_stat wait_flushed(void)
{
    struct evb_partition_stat st = df_stat(TOPIC);
    for (uint64_t t0 = t_now_ms(); st.flushed_position != st.tail_position;) {
        cr_assert_lt(t_now_ms() - t0, 10000, "flushed %llu, tail %llu",
                     (unsigned long long)st.flushed_position,
                     (unsigned long long)st.tail_position);
        usleep(5000);
        st = df_stat(TOPIC);
    }
    return st;
}

static void read_all(uint64_t n)
{
    evb_consumer *c;
    evb_consumer_options co = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, df_bus, TOPIC, &co), 0, "%s", evb_last_error());
    df_read(c, 0, n);
    evb_consumer_close(c);
}

/*
 * Publish until the tail passes TO (under the segment's end), wait until
 * it is all written, and return how many pages of the segment are still
 * dirty once the disk has had time (at most 5 s) to bring them under
 * MOST. The test is skipped where cachestat(2) is missing; it fails if an
 * fdatasync covered what was written (all clean then, whatever the kicks
 * did). EVENTS_OUT: how many were published.
 */
static uint64_t dirty_after(uint64_t to, uint64_t most, uint64_t *events_out)
{
    evb_topic_config tc = config();
    df_create(TOPIC, &tc);
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "%s", evb_last_error());
    uint64_t n = 0;
    while (df_stat(TOPIC).tail_position < to)
        for (uint64_t end = n + 1000; n < end; n++)
            df_publish_on(p, n);
    *events_out = n;
    struct evb_partition_stat st = wait_flushed();
    cr_assert_lt(st.flushed_position, tc.segment_bytes, "the test wants one segment");

    char dir[PATH_MAX], seg[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/" TOPIC "/0", t_data_dir());
    cr_assert_eq(evb_seg_path(seg, sizeof seg, dir, 0, "log"), 0);
    int fd = open(seg, O_RDONLY);
    cr_assert_geq(fd, 0, "%s: %s", seg, strerror(errno));
    struct t_cachestat_range range = {0, st.flushed_position};
    struct t_cachestat cs;
    if (syscall(__NR_cachestat, fd, &range, &cs, 0) != 0) {
        int e = errno;
        close(fd);
        evb_producer_close(p);
        cr_skip_test("cachestat: %s", strerror(e));
    }
    /* Pages kicked are written in the background: give the disk time. */
    for (uint64_t t0 = t_now_ms(); cs.nr_dirty > most && t_now_ms() - t0 < 5000;) {
        usleep(20000);
        cr_assert_eq(syscall(__NR_cachestat, fd, &range, &cs, 0), 0);
    }
    close(fd);
    uint64_t durable = df_stat(TOPIC).durable_position;
    cr_assert_lt(durable + (8u << 20), st.flushed_position,
                 "durable %llu: an fdatasync ran over what was written",
                 (unsigned long long)durable);
    evb_producer_close(p);
    return cs.nr_dirty;
}

/*
 * 20 MiB written, no fdatasync asked for or due: on a host whose
 * dirty_background_ratio is gigabytes the kernel would leave all of it
 * dirty for 30 s, and the fdatasync at the segment end would write it all
 * while the flusher waits. With the kicks at most the last stretch not
 * yet kicked (under EVB_KICK_BYTES, plus a write) is still dirty.
 */
Test(writeback, written_pages_are_on_their_way_to_disk_before_any_fdatasync)
{
    uint64_t most = (EVB_KICK_BYTES + EVB_WRITE_MAX_CACHED) / 4096, n;
    uint64_t dirty = dirty_after(20u << 20, most, &n);
    cr_expect_leq(dirty, most, "%llu pages still dirty (at most %llu)",
                  (unsigned long long)dirty, (unsigned long long)most);
    read_all(n);
}

/* Within EVB_KICK_BYTES of the segment's end every write is kicked, so
 * that the segment end's fdatasync waits for the last write alone: here,
 * written up to 2-3 MiB short of the end, only the page the last write
 * ended inside may be dirty (without it, the 1-2 MiB since the last
 * kick; with pages kicked before they are full, any page a write ended
 * inside while its write-back ran). */
Test(writeback, near_the_segment_end_every_write_is_kicked)
{
    uint64_t seg = config().segment_bytes, n, most = 1;
    uint64_t dirty = dirty_after(seg - (3u << 20), most, &n);
    cr_expect_leq(dirty, most, "%llu pages still dirty (at most %llu)",
                  (unsigned long long)dirty, (unsigned long long)most);
    read_all(n);
}

static int refused_child(void *arg)
{
    int err = (int)(intptr_t)arg;
    /* Before the producer, so its flusher thread inherits the filter. */
    if (t_syscall_fails(__NR_sync_file_range, err))
        return 12;
    evb_bus *b;
    evb_producer *p;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.block_ms = -1};
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, TOPIC, &po))
        return 10;
    uint8_t v[DF_VLEN];
    for (uint64_t i = 0; i < EVENTS; i++) {
        t_value_fill(v, DF_VLEN, 1, i);
        evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0};
        if (evb_publish(p, &m))
            return 11;
    }
    if (evb_producer_sync(p, 20000))
        return 13;
    struct evb_partition_stat st;
    if (evb_partition_stat(b, TOPIC, 0, &st) || st.durable_position != st.tail_position)
        return 14;
    evb_producer_close(p);
    evb_bus_close(b);
    return 0;
}

/* The flush of a process whose sync_file_range fails with ERR goes on
 * over segment ends (8 MiB segments: two of them and some) and syncs all
 * of it; every event reads back after a reboot. */
static void refused(int err)
{
    evb_topic_config tc = config();
    tc.segment_bytes = 8u << 20;
    df_create(TOPIC, &tc);
    int st = t_wait_exit(t_spawn(refused_child, (void *)(intptr_t)err), 60000);
    if (st == 12)
        cr_skip_test("seccomp filters are not available here");
    cr_assert_eq(st, 0, "child: %d (10: open, 11: publish, 13: sync, 14: durable < tail)", st);
    evb_bus_close(df_bus);
    t_rmtree(t_bus_dir());
    df_setup();
    read_all(EVENTS);
}

Test(writeback, a_file_system_without_sync_file_range_loses_nothing)
{
    refused(EINVAL);
}

Test(writeback, a_failing_sync_file_range_loses_nothing)
{
    refused(EIO);
}
