/*
 * test_rebuild_cost.c - the first open after a reboot (bus directory gone,
 * rings rebuilt from the log) reads what the log holds, not whole
 * segments: a partition holding one small event in a 64 MiB segment is
 * rebuilt reading a few MiB at most, whether the rest of the segment is a
 * hole (an async topic's) or zeros on disk (a sync topic's, zero-filled
 * ahead of the flusher). Bytes are counted, not timed (rchar of
 * /proc/self/io: every read and pread of the process), so a loaded
 * machine cannot make the test pass or fail.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable_fixture.h"
#include "segment.h"

#define SEG_BYTES (64ull << 20)
/* What a rebuild of one such partition may read: the segment's data
 * (its first blocks), the index, configs and marks, each pass over them;
 * far below one segment (the defect read it five times, 336 MB). */
#define READ_BOUND (4ull << 20)

TestSuite(rebuild_cost, .init = df_setup, .fini = df_teardown, .timeout = 120);

/* Bytes this process has read so far (rchar). */
static uint64_t rchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    cr_assert_not_null(f);
    char line[128];
    unsigned long long v = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %llu", &v) == 1)
            break;
    fclose(f);
    return v;
}

static void make_topic(const char *t, uint32_t durability)
{
    evb_topic_config tc = df_config(durability);
    tc.segment_bytes = SEG_BYTES;
    df_create(t, &tc);
    df_publish(t, 0, 1);
}

/* Reboot (the bus directory removed, the bus opened again) and one sync
 * publish, which rebuilds T; the bytes read meanwhile. */
static uint64_t rebuild_reads(const char *t)
{
    evb_bus_close(df_bus);
    t_rmtree(t_bus_dir());
    uint64_t before = rchar();
    df_setup();
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    cr_assert_eq(evb_producer_open(&p, df_bus, t, &po), 0, "%s", evb_last_error());
    uint8_t v[DF_VLEN];
    t_value_fill(v, DF_VLEN, 1, 1);
    evb_msg m = {.value = v, .value_len = DF_VLEN, .flags = EVB_MSG_SYNC};
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    uint64_t got = rchar() - before;
    cr_log_info("%s: the rebuild read %llu bytes", t, (unsigned long long)got);
    evb_producer_close(p);
    return got;
}

/* Both events there after the rebuild: the cheap walks found the end. */
static void read_back(const char *t)
{
    evb_consumer *c;
    evb_consumer_options co = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, df_bus, t, &co), 0, "%s", evb_last_error());
    df_read(c, 0, 2);
    evb_consumer_close(c);
}

static void seg_path(const char *t, char *out, size_t cap)
{
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/%s/0", t_data_dir(), t);
    cr_assert_eq(evb_seg_path(out, cap, pdir, 0, "log"), 0);
}

Test(rebuild_cost, async_sparse_segment)
{
    make_topic("a", EVB_DURABILITY_ASYNC);
    uint64_t n = rebuild_reads("a");
    cr_expect_leq(n, READ_BOUND, "the rebuild read %llu bytes", (unsigned long long)n);
    read_back("a");
}

Test(rebuild_cost, sync_zero_filled_segment)
{
    make_topic("s", EVB_DURABILITY_SYNC);
    uint64_t n = rebuild_reads("s");
    cr_expect_leq(n, READ_BOUND, "the rebuild read %llu bytes", (unsigned long long)n);
    read_back("s");
}

/* A log of three 4 MiB segments, the newest holding a little: the
 * rebuild walks the newest once and takes the oldest one's first frame (for
 * the log start's offset), not a walk of that full segment. The bytes
 * read from the oldest file are counted (the newest one's depend on how
 * far the flusher had reserved ahead, which varies with timing). */
Test(rebuild_cost, older_full_segments_not_walked)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_ASYNC);
    tc.segment_bytes = 4u << 20;
    df_create("o", &tc);
    uint64_t n_ev = 0;
    char pdir[PATH_MAX], path[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/o/0", t_data_dir());
    cr_assert_eq(evb_seg_path(path, sizeof path, pdir, 8u << 20, "log"), 0);
    while (access(path, F_OK) != 0) {
        df_publish("o", n_ev, 4096);
        n_ev += 4096;
        cr_assert_lt(n_ev, 1u << 20, "no third segment");
    }
    (void)df_count_reads("/00000000000000000000.log");
    (void)rebuild_reads("o");
    uint64_t n = df_count_reads(NULL);
    cr_log_info("o: %llu bytes read from the oldest segment", (unsigned long long)n);
    cr_expect_leq(n, 512u << 10, "the rebuild read %llu bytes of the oldest segment",
                  (unsigned long long)n);
    evb_consumer *c;
    evb_consumer_options co = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, df_bus, "o", &co), 0, "%s", evb_last_error());
    df_read(c, 0, n_ev);
    evb_consumer_close(c);
}

/* The next segment made (a hole, as the flusher makes it) but not yet
 * written when the bus went: recovery removes it, counting what it held
 * (nothing) without reading its holes. */
Test(rebuild_cost, empty_next_segment_removed)
{
    make_topic("e", EVB_DURABILITY_ASYNC);
    char pdir[PATH_MAX], path[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/e/0", t_data_dir());
    cr_assert_eq(evb_seg_path(path, sizeof path, pdir, SEG_BYTES, "log"), 0);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)SEG_BYTES), 0);
    close(fd);
    uint64_t n = rebuild_reads("e");
    cr_expect_leq(n, READ_BOUND, "the rebuild read %llu bytes", (unsigned long long)n);
    cr_expect_eq(access(path, F_OK), -1, "the empty segment after the end is still there");
    read_back("e");
}

/* A segment zero-filled on disk to its end (no holes: as on a file system
 * without them, or a segment the flusher reserved all of): every byte past
 * the log end must be read to know it holds no frame, but once per
 * rebuild, not once per walk: the recovery takes what the check that
 * topic.conf fits the log walked (evb_seg_fit_walk), the cut of the tail
 * and the first offsets what that walk saw. */
Test(rebuild_cost, fully_written_segment_read_once)
{
    make_topic("z", EVB_DURABILITY_SYNC);
    char path[PATH_MAX];
    seg_path("z", path, sizeof path);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    static uint8_t zero[1 << 20];
    for (uint64_t at = 1 << 20; at < SEG_BYTES; at += sizeof zero)
        cr_assert_eq(pwrite(fd, zero, sizeof zero, (off_t)at), (ssize_t)sizeof zero);
    cr_assert_eq(fdatasync(fd), 0);
    close(fd);
    uint64_t n = rebuild_reads("z");
    cr_expect_leq(n, SEG_BYTES + READ_BOUND, "the rebuild read %llu bytes",
                  (unsigned long long)n);
    read_back("z");
}
