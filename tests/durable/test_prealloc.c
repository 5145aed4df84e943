/*
 * test_prealloc.c - segment files take disk as they fill, not a whole
 * segment at once: a wide topic with a few events uses little disk, a long
 * write crosses reservation steps and segment ends and reads back whole
 * after a reboot, and a full disk stops the flush with -ENOSPC, losing
 * nothing that was acknowledged.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "segment.h"
#include "t_helpers.h"

static evb_bus *bus;
static char data[512];
static bool mounted; /* data is a small tmpfs this test mounted */

static evb_bus *open_bus(void)
{
    evb_bus_options o = {.data_dir = data};
    evb_bus *b;
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &o), 0, "bus open: %s", evb_last_error());
    return b;
}

static void setup(void)
{
    snprintf(data, sizeof data, "%s", t_data_dir());
    bus = open_bus();
}

static void teardown(void)
{
    evb_bus_close(bus);
    bus = NULL;
    if (mounted && umount(data) != 0)
        fprintf(stderr, "umount %s: %s\n", data, strerror(errno));
    mounted = false;
    t_bus_cleanup();
}

/* Close the bus and open it again; BUS is NULL while it is closed, so a
 * failed reopen leaves teardown nothing to close twice. */
static void reopen_bus(bool reboot)
{
    evb_bus_close(bus);
    bus = NULL;
    if (reboot)
        t_rmtree(t_bus_dir());
    bus = open_bus();
}

TestSuite(prealloc, .init = setup, .fini = teardown, .timeout = 300);

/* Disk blocks of every segment of partition PART, and how many. */
static uint64_t seg_blocks(const char *topic, uint32_t part, size_t *nseg)
{
    char **paths;
    size_t n;
    cr_assert_eq(evb_segment_list(bus, topic, part, &paths, &n), 0, "%s", evb_last_error());
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        cr_assert_eq(stat(paths[i], &st), 0);
        sum += (uint64_t)st.st_blocks * 512;
        free(paths[i]);
    }
    free(paths);
    if (nseg)
        *nseg = n;
    return sum;
}

/* Bytes of PART's segments in unwritten extents (reserved by fallocate,
 * never written), or -1 where the file system cannot say (no FIEMAP). */
static int64_t unwritten_bytes(const char *topic, uint32_t part)
{
    char **paths;
    size_t n;
    cr_assert_eq(evb_segment_list(bus, topic, part, &paths, &n), 0, "%s", evb_last_error());
    int64_t sum = 0;
    enum { MAXEXT = 512 };
    struct fiemap *fm = calloc(1, sizeof *fm + MAXEXT * sizeof(struct fiemap_extent));
    cr_assert_not_null(fm);
    for (size_t i = 0; i < n && sum >= 0; i++) {
        int fd = open(paths[i], O_RDONLY);
        cr_assert_geq(fd, 0, "%s", paths[i]);
        *fm = (struct fiemap){.fm_length = FIEMAP_MAX_OFFSET, .fm_extent_count = MAXEXT};
        if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
            sum = -1;
        } else {
            for (uint32_t e = 0; e < fm->fm_mapped_extents; e++)
                if (fm->fm_extents[e].fe_flags & FIEMAP_EXTENT_UNWRITTEN)
                    sum += (int64_t)fm->fm_extents[e].fe_length;
        }
        close(fd);
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(fm);
    return sum;
}

Test(prealloc, a_wide_topic_with_ten_events_uses_little_disk)
{
    evb_topic_config tc = {.partitions = 256, .ring_bytes = 64 << 10,
                           .segment_bytes = 64 << 20, .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "wide", &tc), 0, "%s", evb_last_error());
    evb_producer_options po = {.partitioner = EVB_PART_ROUND_ROBIN};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "wide", &po), 0, "%s", evb_last_error());
    for (int i = 0; i < 10; i++) {
        evb_msg m = {.value = "ten", .value_len = 3, .partition = EVB_PARTITION_ANY};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    uint64_t total = 0, most = 0;
    for (uint32_t i = 0; i < 256; i++) {
        uint64_t b = seg_blocks("wide", i, NULL);
        total += b;
        most = b > most ? b : most;
    }
    /* Each segment is 64 MiB long (st_size) but takes what was reserved. */
    cr_expect_leq(most, 256u << 10, "a partition takes %llu bytes of disk",
                  (unsigned long long)most);
    cr_expect_leq(total, 32u << 20, "256 partitions with ten events take %llu MiB",
                  (unsigned long long)(total >> 20));
}

#define VLEN 1000u

static void publish_range(evb_producer *p, uint64_t from, uint64_t n)
{
    static uint8_t v[VLEN];
    for (uint64_t i = from; i < from + n; i++) {
        t_value_fill(v, VLEN, 1, i);
        evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
}

/* Read partition 0 from the earliest event: N values in sequence, and
 * nothing more when EXACT. */
static void read_back(uint64_t n, bool exact)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "long", &co), 0, "%s", evb_last_error());
    evb_event ev;
    for (uint64_t i = 0; i < n; i++) {
        int rc = evb_consumer_next(c, &ev, 5000);
        cr_assert_eq(rc, 0, "event %llu: %s", (unsigned long long)i, evb_strerror(rc));
        uint32_t pid;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &pid, &seq));
        cr_assert_eq(seq, i, "event %llu is value %llu", (unsigned long long)i,
                     (unsigned long long)seq);
        cr_assert_eq(ev.lost_events, 0u);
    }
    if (exact)
        cr_expect_eq(evb_consumer_next(c, &ev, 0), -EAGAIN, "more events than written");
    evb_consumer_close(c);
}

static void long_write(uint32_t durability)
{
    /* 1 MiB ring, 32 MiB segments, ~40 MiB written: many reservation
     * steps and a segment end. */
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20, .segment_bytes = 32 << 20,
                           .durability = durability};
    cr_assert_eq(evb_topic_create(bus, "long", &tc), 0, "%s", evb_last_error());
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "long", &po), 0, "%s", evb_last_error());
    uint64_t n = 40000;
    publish_range(p, 0, n / 2);
    cr_assert_eq(evb_producer_sync(p, 30000), 0, "%s", evb_last_error());
    /* Past the middle of the first segment: it is reserved only so far. */
    size_t nseg;
    uint64_t blocks = seg_blocks("long", 0, &nseg);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "long", 0, &st), 0);
    /* What was written, at most one and a half reservation steps (of at
     * most 4 MiB) ahead, and the next segment's first step. */
    cr_expect_leq(blocks, st.flushed_position + (6u << 20) + (256u << 10),
                  "%llu bytes of disk for %llu written in %zu segments",
                  (unsigned long long)blocks, (unsigned long long)st.flushed_position, nseg);
    /* An ASYNC topic's disk is only reserved. (Whether a SYNC topic's is
     * zero-filled depends on how often it syncs: the tests below.) */
    int64_t unwritten = unwritten_bytes("long", 0);
    if (unwritten >= 0 && durability == EVB_DURABILITY_ASYNC)
        cr_expect_gt(unwritten, 0, "an ASYNC topic's reservation zero-filled");
    publish_range(p, n / 2, n / 2);
    cr_assert_eq(evb_producer_sync(p, 30000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    /* Reboot: everything comes back from the segments. */
    reopen_bus(true);
    read_back(n, true);
}

Test(prealloc, a_long_async_write_crosses_steps_and_segments)
{
    long_write(EVB_DURABILITY_ASYNC);
}

Test(prealloc, a_long_sync_write_crosses_steps_and_segments)
{
    long_write(EVB_DURABILITY_SYNC);
}

/*
 * A SYNC topic zero-fills a reservation step ahead of the events (so that
 * its fdatasyncs change no extent) only while its rounds sync often for
 * the bytes they write (flush_segment.c, zero_next): one-at-a-time sync
 * publishes do; rounds of large values do not, since zeroing beside them
 * costs a write of every byte and stalls them. Both cross several steps.
 */
static int64_t sync_write(const char *topic, uint32_t vlen, uint32_t n, uint32_t flags)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 4 << 20, .segment_bytes = 32 << 20,
                           .max_event_bytes = vlen, .durability = EVB_DURABILITY_SYNC};
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "%s", evb_last_error());
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, &po), 0, "%s", evb_last_error());
    uint8_t *v = calloc(1, vlen);
    cr_assert_not_null(v);
    for (uint32_t i = 0; i < n; i++) {
        evb_msg m = {.value = v, .value_len = vlen, .partition = 0, .flags = flags};
        int rc = evb_publish(p, &m);
        cr_assert_eq(rc, 0, "%s: %s", evb_strerror(rc), evb_last_error());
    }
    cr_assert_eq(evb_producer_sync(p, 30000), 0, "%s", evb_last_error());
    /* Closed: the flusher and its helper are done with the steps. */
    evb_producer_close(p);
    free(v);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, topic, 0, &st), 0);
    cr_assert_gt(st.flushed_position, 900u << 10, "%llu written: fewer than 4 steps",
                 (unsigned long long)st.flushed_position);
    return unwritten_bytes(topic, 0);
}

Test(prealloc, a_sync_topic_that_syncs_every_event_zero_fills_its_steps)
{
    int64_t unwritten = sync_write("often", VLEN, 1000, EVB_MSG_SYNC);
    if (unwritten < 0)
        cr_skip_test("no FIEMAP here");
    cr_expect_eq(unwritten, 0, "%lld bytes reserved but not zero-filled", (long long)unwritten);
}

Test(prealloc, a_sync_topic_with_large_rounds_leaves_its_steps_unwritten)
{
    /* Each round writes at least one 128 KiB value: more bytes a sync
     * than EVB_ZERO_BYTES_PER_SYNC however the rounds fall. */
    int64_t unwritten = sync_write("large", 128u << 10, 64, 0);
    if (unwritten < 0)
        cr_skip_test("no FIEMAP here");
    cr_expect_gt(unwritten, 0, "rounds of 128 KiB values had their steps zero-filled");
}

/* Bytes this process made the kernel read from storage (/proc/self/io),
 * or -1 where it cannot say. */
static int64_t read_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "read_bytes: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/*
 * A SYNC topic's segment is zero-filled O_DIRECT ahead of the events, so
 * none of its blocks is in the page cache; a round's write that ended
 * inside such a block made the file system read the block from disk
 * first, inside the write: one synchronous read a round on the way to
 * every acknowledgement. Rounds now write their last block whole (zeros
 * after the events), and sync publishes read nothing back. Where the data
 * directory is a tmpfs the zeros are in memory and nothing is read either
 * way: skipped there.
 */
Test(prealloc, sync_rounds_read_nothing_back_from_disk)
{
    struct statfs fs;
    cr_assert_eq(statfs(data, &fs), 0);
    if (fs.f_type == TMPFS_MAGIC || read_bytes() < 0)
        cr_skip_test("the data directory is a tmpfs, or no /proc/self/io: nothing is read");
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20, .segment_bytes = 32 << 20,
                           .durability = EVB_DURABILITY_SYNC};
    cr_assert_eq(evb_topic_create(bus, "rmw", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "rmw", NULL), 0, "%s", evb_last_error());
    static uint8_t v[VLEN];
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
    /* The segment made and its first step zeroed before the count. */
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    int64_t before = read_bytes();
    /* ~400 KB, one round an event: ~100 blocks, three reservation steps. */
    for (int i = 0; i < 400; i++)
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    int64_t got = read_bytes() - before;
    evb_producer_close(p);
    cr_expect_lt(got, 32 << 10, "sync rounds read %lld bytes back from disk",
                 (long long)got);
}

/* A data directory on a 2 MiB tmpfs: the flush stops with -ENOSPC, and
 * every event acknowledged before that reads back. */
Test(prealloc, a_full_disk_stops_the_flush_and_loses_nothing_acked)
{
    snprintf(data, sizeof data, "%s/small", t_data_dir());
    cr_assert_eq(mkdir(data, 0755), 0);
    /* Not tmpfs's default 1777: a data directory every user may write is
     * refused (bus_dir.c). */
    if (mount("tmpfs", data, "tmpfs", 0, "size=2m,mode=0755") != 0)
        cr_skip_test("cannot mount a small tmpfs here (needs root)");
    mounted = true;
    reopen_bus(false);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 256 << 10,
                           .segment_bytes = 1 << 20, .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "long", &tc), 0, "%s", evb_last_error());
    evb_producer_options po = {.block_ms = 2000};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "long", &po), 0, "%s", evb_last_error());
    uint64_t acked = 0, sent = 0;
    int rc = 0;
    static uint8_t v[VLEN];
    while (sent < 10000) {
        for (int i = 0; i < 50 && rc == 0; i++, sent++) {
            t_value_fill(v, VLEN, 1, sent);
            evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
            rc = evb_publish(p, &m);
        }
        if (rc)
            break;
        if ((rc = evb_producer_sync(p, 5000)))
            break;
        acked = sent;
    }
    cr_assert_eq(rc, -ENOSPC, "after %llu acked: %s (%s)", (unsigned long long)acked,
                 evb_strerror(rc), evb_last_error());
    cr_assert_gt(acked, 500u, "the disk was full too early: %llu", (unsigned long long)acked);
    evb_producer_close(p);
    read_back(acked, false);
}

/* Publish value SEQ to partition 0 with FLAGS. */
static int publish_one(evb_producer *p, uint64_t seq, uint32_t flags)
{
    static uint8_t v[VLEN];
    t_value_fill(v, VLEN, 1, seq);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0, .flags = flags};
    return evb_publish(p, &m);
}

/*
 * A SYNC topic on a 2 MiB tmpfs, with producers that block for ever: a
 * SYNC publish, a publish into the full ring and a claim each return
 * -ENOSPC once the flusher failed (not a hang, not -ETIMEDOUT), nothing
 * accepted is lost, and once the disk has room again the flush goes on
 * by itself and every accepted event reads back after a reboot.
 */
Test(prealloc, a_full_disk_fails_blocked_producers_and_resumes_when_freed, .timeout = 120)
{
    snprintf(data, sizeof data, "%s/small", t_data_dir());
    cr_assert_eq(mkdir(data, 0755), 0);
    if (mount("tmpfs", data, "tmpfs", 0, "size=2m,mode=0755") != 0)
        cr_skip_test("cannot mount a small tmpfs here (needs root)");
    mounted = true;
    reopen_bus(false);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .segment_bytes = 1 << 20, .durability = EVB_DURABILITY_SYNC};
    cr_assert_eq(evb_topic_create(bus, "long", &tc), 0, "%s", evb_last_error());
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "long", &po), 0, "%s", evb_last_error());
    /* SYNC publishes until the disk is full: the one that fails is in the
     * ring (accepted), not acknowledged as durable. */
    uint64_t sent = 0;
    int rc = 0;
    while (sent < 10000 && (rc = publish_one(p, sent, EVB_MSG_SYNC)) == 0)
        sent++;
    cr_assert_eq(rc, -ENOSPC, "SYNC publish after %llu: %s (%s)", (unsigned long long)sent,
                 evb_strerror(rc), evb_last_error());
    cr_assert_gt(sent, 500u, "the disk was full too early: %llu", (unsigned long long)sent);
    sent++;
    /* Fill the ring: a producer blocked on the failed flusher gets its
     * error, promptly. */
    uint64_t t0 = t_now_ms();
    while ((rc = publish_one(p, sent, 0)) == 0)
        sent++;
    cr_assert_eq(rc, -ENOSPC, "publish into the full ring: %s (%s)", evb_strerror(rc),
                 evb_last_error());
    cr_expect_lt(t_now_ms() - t0, 10000u, "took %llu ms", (unsigned long long)(t_now_ms() - t0));
    struct evb_claim c;
    rc = evb_claim(p, 0, NULL, 0, VLEN, &c);
    cr_assert_eq(rc, -ENOSPC, "claim: %s (%s)", evb_strerror(rc), evb_last_error());
    cr_expect(strstr(evb_last_error(), "flusher"), "message: %s", evb_last_error());
    cr_assert_eq(evb_producer_sync(p, 2000), -ENOSPC);
    /* Room again: the flusher retries on its own (about once a second)
     * and catches up; until then the error stays. */
    cr_assert_eq(mount("tmpfs", data, "tmpfs", MS_REMOUNT, "size=16m,mode=0755"), 0,
                 "remount: %s", strerror(errno));
    uint64_t until = t_now_ms() + 20000;
    while ((rc = evb_producer_sync(p, 1000)) == -ENOSPC && t_now_ms() < until)
        usleep(50 * 1000);
    cr_assert_eq(rc, 0, "after the remount: %s", evb_last_error());
    for (int i = 0; i < 100; i++, sent++)
        cr_assert_eq(publish_one(p, sent, EVB_MSG_SYNC), 0, "%s", evb_last_error());
    evb_producer_close(p);
    reopen_bus(true);
    read_back(sent, true);
}

/* The first N bytes of file PATH, malloc'd. */
static uint8_t *file_head(const char *path, uint64_t n)
{
    uint8_t *b = malloc(n);
    cr_assert_not_null(b);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", path);
    cr_assert_eq(pread(fd, b, n, 0), (ssize_t)n);
    close(fd);
    return b;
}

/* The first N bytes of PATH are BEFORE's still (then freed). */
static void expect_head_unchanged(const char *path, uint8_t *before, uint64_t n,
                                  const char *what)
{
    uint8_t *after = file_head(path, n);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(after[i], before[i], "byte %llu of %llu changed %s",
                     (unsigned long long)i, (unsigned long long)n, what);
    free(before);
    free(after);
}

static void live_cut_keeps_the_log_below(const char *path, const evb_producer_options *po,
                                         uint8_t *v, uint32_t vlen)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "h", po), 0, "%s", evb_last_error());
    for (uint32_t i = 0; i < 100; i++) {
        evb_msg m = {.value = v, .value_len = vlen, .partition = 0, .flags = EVB_MSG_SYNC};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "h", 0, &st), 0);
    uint64_t end = st.durable_position, cut = (end - 8192) & ~(uint64_t)4095;
    uint8_t *before = file_head(path, cut);
    cr_assert_eq(truncate(path, (off_t)cut), 0);
    uint64_t give_up = t_now_ms() + 10000;
    for (;;) {
        evb_msg m = {.value = v, .value_len = 16, .partition = 0, .flags = EVB_MSG_SYNC};
        int rc = evb_publish(p, &m);
        if (rc == 0)
            break;
        cr_assert_eq(rc, -EIO, "%d %s", rc, evb_last_error());
        cr_assert_lt(t_now_ms(), give_up, "no sync publish acknowledged for 10 s after a cut");
        usleep(20000);
    }
    evb_producer_close(p);
    expect_head_unchanged(path, before, cut, "below a cut there");
}

/*
 * A log whose zero blocks became holes (what cp -a, rsync -S or tar -S
 * make of a backup: a copy of a segment has holes wherever the original
 * held a block of zeros, pads and zero values alike) goes on after a
 * reboot without a byte below its end changing. Before, the flusher took
 * the segment's first hole for the end of what was reserved and, on a
 * topic that zero-fills its steps, wrote zeros from there over the log.
 */
static void holes_below_the_end(uint32_t durability)
{
    const uint32_t vlen = 8000, n = 300;
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20, .segment_bytes = 8 << 20,
                           .max_event_bytes = vlen, .durability = durability};
    cr_assert_eq(evb_topic_create(bus, "h", &tc), 0, "%s", evb_last_error());
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "h", &po), 0, "%s", evb_last_error());
    uint8_t *v = calloc(1, vlen); /* zero values: whole zero blocks inside the log */
    cr_assert_not_null(v);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(v, &i, sizeof i); /* each event its own, in its first word */
        evb_msg m = {.value = v, .value_len = vlen, .partition = 0,
                     .flags = i % 10 ? 0 : EVB_MSG_SYNC};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    cr_assert_eq(evb_producer_sync(p, 30000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "h", 0, &st), 0);
    uint64_t end = st.durable_position;
    cr_assert_gt(end, (uint64_t)n * vlen);
    evb_bus_close(bus);
    bus = NULL;

    /* The copy's holes, made in place: every zero 4 KiB block below the
     * end, and what the log holds there, kept to compare. */
    char path[600];
    snprintf(path, sizeof path, "%s/h/0/%020llu.log", data, 0ull);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "%s", path);
    uint8_t *before = malloc(end);
    cr_assert_not_null(before);
    cr_assert_eq(pread(fd, before, end, 0), (ssize_t)end);
    uint32_t holes = 0;
    for (uint64_t at = 0; at + 4096 <= end; at += 4096) {
        static const uint8_t zero[4096];
        if (memcmp(before + at, zero, sizeof zero))
            continue;
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)at, 4096))
            cr_skip_test("%s: no holes here: %s", path, strerror(errno));
        holes++;
    }
    off_t first_hole = lseek(fd, 0, SEEK_HOLE);
    close(fd);
    cr_assert_gt(holes, n / 2, "%u holes punched", holes);
    cr_assert_lt(first_hole, (off_t)end, "the file system kept no hole below the end");

    /* A reboot, and an event published to the other partition: its
     * flusher takes the whole topic over, this partition too. */
    t_rmtree(t_bus_dir());
    bus = open_bus();
    cr_assert_eq(evb_producer_open(&p, bus, "h", &po), 0, "%s", evb_last_error());
    evb_msg m = {.value = v, .value_len = 16, .partition = 1, .flags = EVB_MSG_SYNC};
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    m.partition = 0;
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    cr_assert_eq(evb_producer_sync(p, 30000), 0, "%s", evb_last_error());
    evb_producer_close(p);

    /* A cut under a live flusher above those holes (the segment truncated
     * while written; test_seg_tamper): made whole again, and not a byte
     * below the cut changes, holes or not. */
    if (durability == EVB_DURABILITY_SYNC)
        live_cut_keeps_the_log_below(path, &po, v, vlen);

    expect_head_unchanged(path, before, end, "after the reboot");

    /* And every event reads back, the new one after them. */
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .partition = 0, .only_partition = 1};
    cr_assert_eq(evb_consumer_open(&c, bus, "h", &co), 0, "%s", evb_last_error());
    evb_event ev;
    for (uint32_t i = 0; i <= n; i++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 5000), 0, "event %u: %s", i, evb_last_error());
        cr_assert_eq(ev.offset, i);
        uint32_t first;
        memcpy(&first, ev.value, sizeof first);
        cr_assert_eq(first, i < n ? i : n - 1, "event %u", i);
    }
    evb_consumer_close(c);
    free(v);
}

Test(prealloc, a_sync_log_with_holes_below_its_end_goes_on_unchanged)
{
    holes_below_the_end(EVB_DURABILITY_SYNC);
}

Test(prealloc, an_async_log_with_holes_below_its_end_goes_on_unchanged)
{
    holes_below_the_end(EVB_DURABILITY_ASYNC);
}

/*
 * A zero-filling reservation from an offset off the block (a log taken
 * over in the middle of a segment goes on there) writes no byte below it,
 * and writes its whole blocks around the page cache (O_DIRECT), as one
 * from a block does: zeros left dirty in the page cache would be written
 * by the next sync round's fdatasync (perf/RESULTS.md, zero_fill_stall).
 */
Test(prealloc, a_reservation_off_the_block_writes_nothing_below_and_its_blocks_direct)
{
    char path[600];
    snprintf(path, sizeof path, "%s/reserve.log", data);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "%s", path);
    const uint64_t from = 5000, n = 70000, size = 1 << 20;
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    uint8_t log[5000];
    memset(log, 0x5a, sizeof log);
    cr_assert_eq(pwrite(fd, log, sizeof log, 0), (ssize_t)sizeof log);
    cr_assert_eq(fsync(fd), 0);
    cr_assert_eq(evb_seg_reserve(fd, path, from, n, true), 0, "%s", evb_last_error());
    /* The whole blocks inside went around the page cache, where the file
     * system takes O_DIRECT: not resident (nothing has read them yet). */
    int dfd = open(path, O_RDONLY | O_DIRECT);
    if (dfd >= 0) {
        close(dfd);
        void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        cr_assert_neq(m, MAP_FAILED);
        unsigned char vec[256];
        cr_assert_eq(mincore(m, size, vec), 0);
        uint64_t first = (from + 4095) / 4096, last = (from + n) / 4096; /* whole pages */
        uint32_t resident = 0;
        for (uint64_t pg = first; pg < last; pg++)
            resident += vec[pg] & 1;
        munmap(m, size);
        cr_expect_eq(resident, 0, "%u of the %llu whole pages went through the page cache",
                     resident, (unsigned long long)(last - first));
    }
    uint8_t *b = malloc(size);
    cr_assert_not_null(b);
    cr_assert_eq(pread(fd, b, size, 0), (ssize_t)size);
    cr_assert_eq(memcmp(b, log, sizeof log), 0, "bytes below the reservation changed");
    for (uint64_t i = from; i < from + n; i++)
        cr_assert_eq(b[i], 0, "byte %llu", (unsigned long long)i);
    free(b);
    /* Allocated through its end (no hole below it). */
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    close(fd);
    cr_assert_geq(hole, (off_t)(from + n) / 4096 * 4096, "a hole at %lld", (long long)hole);
}
