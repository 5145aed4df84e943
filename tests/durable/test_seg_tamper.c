/*
 * test_seg_tamper.c - the segment being written removed, put aside by a
 * copy renamed over its name, or cut short under running sync producers.
 * What the flusher wrote through its descriptor is then in no file a
 * reader or a rebuild opens, so acknowledging it would be a lie: the
 * next round fails the partition with -EIO naming the file, and every
 * sync waiter hears it (bus/durable/segment.c, evb_seg_check_file; the
 * cold attack of issue 13, D7, found acks going on for seconds). A cut
 * one is then made whole again and the flusher goes on (flush_segment.c).
 * An old segment removed by hand fails the reader that needs it with
 * -EBADMSG naming the file.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable_fixture.h"
#include "frame.h"
#include "segment.h"

#define TOPIC "tp"

TestSuite(seg_tamper, .init = df_setup, .fini = df_teardown, .timeout = 60);

static char seg[PATH_MAX];

static int publish_sync(evb_producer *p, uint64_t seq)
{
    uint8_t v[DF_VLEN];
    t_value_fill(v, DF_VLEN, 1, seq);
    evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
    return evb_publish(p, &m);
}

static void rm_seg(void)
{
    cr_assert_eq(unlink(seg), 0, "%s: %s", seg, strerror(errno));
}

/* A copy of the file as it is now, renamed over its name. */
static void replace_seg(void)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.cp", seg);
    int in = open(seg, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(in >= 0 && out >= 0, "%s", strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(rename(tmp, seg), 0, "%s: %s", seg, strerror(errno));
}

static void truncate_seg(void)
{
    cr_assert_eq(truncate(seg, 4096), 0, "%s: %s", seg, strerror(errno));
}

/* A SYNC topic, SEG its first segment's path: a producer of it. */
static evb_producer *sync_topic(void)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    snprintf(seg, sizeof seg, "%s/" TOPIC "/0/%020llu.log", t_data_dir(), 0ull);
    evb_producer_options po = {.block_ms = 5000};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "%s", evb_last_error());
    return p;
}

/* Sync publishes go on until the tampering; the next few fail with -EIO
 * naming the segment, not acknowledged. */
static void tampered(void (*tamper)(void), const char *what)
{
    evb_producer *p = sync_topic();
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(publish_sync(p, i), 0, "%s", evb_last_error());
    tamper();
    int rc = 0;
    unsigned acked = 0;
    for (uint64_t i = 20; i < 220 && rc == 0; i++) {
        rc = publish_sync(p, i);
        acked += rc == 0;
    }
    cr_expect_eq(rc, -EIO, "%s: %u sync publishes acknowledged after it, then %d %s", what,
                 acked, rc, evb_last_error());
    cr_expect_leq(acked, 2u, "%s: %u acknowledged after it", what, acked);
    cr_expect(strstr(evb_last_error(), seg), "%s: the detail names %s: %s", what, seg,
              evb_last_error());
    evb_producer_close(p);
}

Test(seg_tamper, removed_segment_fails_sync_publishes) { tampered(rm_seg, "rm"); }
Test(seg_tamper, segment_replaced_by_a_copy_fails_sync_publishes)
{
    tampered(replace_seg, "replace");
}
Test(seg_tamper, truncated_segment_fails_sync_publishes) { tampered(truncate_seg, "truncate"); }

/* Cut under the flusher, the segment loses what lay past the cut; the
 * round that finds it fails with -EIO naming the file (above). After that
 * the partition goes on: the flusher's next takeover makes the file whole
 * again and appends where it was, the range the cut took noted as damage,
 * and sync publishes are acknowledged again, each one readable. (Before,
 * the takeover refused the short file with -EBADMSG at every retry: the
 * partition stopped for the process's life, its producers told that the
 * ring was full.) */
Test(seg_tamper, truncated_segment_is_made_whole_and_the_flusher_goes_on, .timeout = 60)
{
    evb_producer *p = sync_topic();
    /* Well past the cut: acknowledged events the cut takes. */
    for (uint64_t i = 0; i < 200; i++)
        cr_assert_eq(publish_sync(p, i), 0, "%s", evb_last_error());
    truncate_seg();
    /* -EIO (naming the file) until the flusher has taken the partition
     * again, a second or so; then acknowledged, never anything else. */
    uint64_t seq = 200, first_ok = 0;
    unsigned failed = 0;
    uint64_t give_up = t_now_ms() + 10000;
    while (!first_ok && t_now_ms() < give_up) {
        int rc = publish_sync(p, seq);
        if (rc == 0) {
            first_ok = seq;
        } else {
            cr_assert_eq(rc, -EIO, "publish %llu: %d %s", (unsigned long long)seq, rc,
                         evb_last_error());
            cr_assert(strstr(evb_last_error(), seg), "the detail names %s: %s", seg,
                      evb_last_error());
            failed++;
            usleep(20000);
        }
        seq++;
    }
    cr_assert(first_ok, "no sync publish acknowledged for 10 s after the cut (%u failed): %s",
              failed, evb_last_error());
    cr_expect_geq(failed, 1u, "the cut went unnoticed");
    /* Across the segment's end into the next ones. */
    uint64_t last = first_ok + 3000;
    for (seq = first_ok + 1; seq < last; seq++)
        cr_assert_eq(publish_sync(p, seq), 0, "publish %llu: %s", (unsigned long long)seq,
                     evb_last_error());
    evb_producer_close(p);
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/" TOPIC "/0", t_data_dir());
    struct stat st;
    cr_assert_eq(stat(seg, &st), 0);
    cr_expect_eq((uint64_t)st.st_size, df_config(EVB_DURABILITY_SYNC).segment_bytes, "the segment is whole again");
    struct evb_seg_damage d;
    cr_assert_eq(evb_seg_damage_read(pdir, &d), 0);
    cr_expect_geq(d.ranges, 1u, "the range the cut took is noted as damage");
    cr_expect_leq(d.first_pos, 4096u);

    /* Every event acknowledged after the flusher went on is there, in
     * order, after the damage (skipped). */
    evb_consumer_options co = {.start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_SKIP_DAMAGE};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, TOPIC, &co), 0, "%s", evb_last_error());
    uint64_t want = first_ok, prev = 0;
    bool any = false;
    evb_event ev;
    int rc;
    while ((rc = evb_consumer_next(c, &ev, 500)) == 0) {
        uint32_t producer;
        uint64_t s;
        cr_assert(t_value_check(ev.value, ev.value_len, &producer, &s), "a torn event");
        cr_assert(!any || s > prev, "sequence %llu after %llu", (unsigned long long)s,
                  (unsigned long long)prev);
        any = true;
        prev = s;
        if (s == want)
            want++;
    }
    evb_consumer_close(c);
    cr_expect_eq(want, last, "acknowledged from %llu on, read up to %llu",
                 (unsigned long long)first_ok, (unsigned long long)want);
}

/* Sync publishes from SEQ on until one is acknowledged again after a cut
 * (the flusher made the segment whole); the next sequence number. */
static uint64_t publish_through_cut(evb_producer *p, uint64_t seq)
{
    uint64_t give_up = t_now_ms() + 10000;
    for (;;) {
        int rc = publish_sync(p, seq++);
        if (rc == 0)
            return seq;
        cr_assert_eq(rc, -EIO, "%d %s", rc, evb_last_error());
        cr_assert_lt(t_now_ms(), give_up, "no sync publish acknowledged for 10 s after a cut");
        usleep(20000);
    }
}

/* The file offset after the last non-zero word of the segment: where
 * the flusher has written to. */
static uint64_t written_end(void)
{
    int fd = open(seg, O_RDONLY);
    cr_assert_geq(fd, 0);
    uint64_t w, end = 0;
    for (uint64_t at = 0; pread(fd, &w, sizeof w, (off_t)at) == (ssize_t)sizeof w;
         at += sizeof w)
        if (w)
            end = at + sizeof w;
    close(fd);
    return end;
}

/* Each cut is noted once: the flusher that makes a segment whole again
 * counts the range this cut took, not again the damage an earlier cut
 * left below it (`evbus info` showed 3 ranges after two cuts). */
Test(seg_tamper, each_cut_is_counted_once, .timeout = 60)
{
    evb_producer *p = sync_topic();
    uint64_t seq = 0;
    for (; seq < 200; seq++)
        cr_assert_eq(publish_sync(p, seq), 0, "%s", evb_last_error());
    truncate_seg();
    seq = publish_through_cut(p, seq);
    for (uint64_t n = seq + 300; seq < n; seq++)
        cr_assert_eq(publish_sync(p, seq), 0, "%s", evb_last_error());
    /* A second cut well above where the flusher went on after the first. */
    uint64_t w = written_end();
    cr_assert_lt(w, df_config(EVB_DURABILITY_SYNC).segment_bytes, "still in the first segment");
    uint64_t cut2 = (w - 8192) & ~(uint64_t)4095;
    cr_assert_eq(truncate(seg, (off_t)cut2), 0);
    seq = publish_through_cut(p, seq);
    evb_producer_close(p);
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/" TOPIC "/0", t_data_dir());
    struct evb_seg_damage d;
    cr_assert_eq(evb_seg_damage_read(pdir, &d), 0);
    cr_expect_eq(d.ranges, 2u, "two cuts, %llu ranges noted", (unsigned long long)d.ranges);
    cr_expect_leq(d.first_pos, 4096u);
    /* The bytes: what a walk of the segment finds now. */
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    struct evb_seg_geom g = {tc.segment_bytes, tc.ring_bytes,
                             (uint32_t)evb_frame_max(tc.max_event_bytes), tc.max_event_bytes};
    struct evb_seg_damage v;
    cr_assert_eq(evb_seg_verify(pdir, &g, 0, written_end(), &v), 0, "%s", evb_last_error());
    cr_expect_eq(v.ranges, 2u);
    cr_expect_eq(d.bytes, v.bytes, "noted %llu bytes, the walk finds %llu",
                 (unsigned long long)d.bytes, (unsigned long long)v.bytes);
}

/* A consumer behind the ring whose segment reads fail (EIO) gets the
 * error, not a damaged log: nothing skipped or counted lost, the handle
 * not failed; once reads work it reads every event from where it was.
 * (A read error was "no valid frame": a strict consumer failed for good
 * with -EBADMSG, a skipping one went past the unread events, lost.) */
Test(seg_tamper, a_segment_read_error_loses_nothing, .timeout = 60)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_ASYNC);
    df_create(TOPIC, &tc);
    df_publish(TOPIC, 0, 5000); /* ~5 segments, the ring holds the last ~500 */
    for (int skip = 0; skip < 2; skip++) {
        evb_consumer_options co = {.start = EVB_START_EARLIEST,
                                   .flags = skip ? EVB_CONSUMER_SKIP_DAMAGE : 0};
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, df_bus, TOPIC, &co), 0, "%s", evb_last_error());
        df_read(c, 0, 100);
        df_fail_reads(".log");
        /* What the reader's window holds still comes; then the error. */
        evb_event ev;
        uint64_t next = 100;
        int rc;
        while ((rc = evb_consumer_next(c, &ev, 1000)) == 0) {
            cr_assert_eq(ev.offset, next, "skip %d", skip);
            cr_assert_eq(ev.lost_events + ev.lost_bytes, 0u, "skip %d", skip);
            next++;
        }
        cr_expect_eq(rc, -EIO, "skip %d: %d %s", skip, rc, evb_last_error());
        cr_expect_lt(next, 4000u, "skip %d: the reads never failed", skip);
        cr_expect_eq(evb_consumer_next(c, &ev, 0), -EIO, "skip %d: tried again", skip);
        cr_assert_gt(df_fail_reads(NULL), 0u);
        for (; next < 5000; next++) {
            ev = df_next(c, next);
            cr_assert_eq(ev.lost_events + ev.lost_bytes, 0u, "skip %d: event %llu", skip,
                         (unsigned long long)next);
        }
        evb_consumer_close(c);
    }
}

/* A segment below the ring removed by hand, the log start still below it
 * (retention did not remove it): a reader that needs it fails with
 * -EBADMSG naming the missing file, not only a position. */
Test(seg_tamper, a_removed_old_segment_is_named_to_its_reader)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    df_publish(TOPIC, 0, 2500); /* three segments; the ring holds the last 500 or so */
    snprintf(seg, sizeof seg, "%s/" TOPIC "/0/%020llu.log", t_data_dir(), 0ull);
    rm_seg();
    evb_consumer *c;
    evb_consumer_options co = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, df_bus, TOPIC, &co), 0, "%s", evb_last_error());
    evb_event ev;
    int rc = evb_consumer_next(c, &ev, 1000);
    cr_expect_eq(rc, -EBADMSG, "read: %d (%s)", rc, evb_last_error());
    cr_expect(strstr(evb_last_error(), seg), "the detail names %s: %s", seg, evb_last_error());
    evb_consumer_close(c);
}
