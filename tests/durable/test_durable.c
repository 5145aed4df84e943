/*
 * test_durable.c - durable topics with real processes: replay from disk
 * after tmpfs is wiped, SIGKILL of a sync producer, a torn segment tail,
 * flusher takeover, the disk-to-ring seam, seek by time, retention.
 *
 * "Wiping tmpfs" removes the bus directory while no process has it open:
 * what a reboot does. Everything read afterwards comes from the segments.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "t_helpers.h"

#define VLEN 64u

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

static void create(const char *topic, uint32_t parts, uint64_t ring, uint64_t seg,
                   uint32_t durability)
{
    evb_topic_config tc = {.partitions = parts, .ring_bytes = ring, .segment_bytes = seg,
                           .durability = durability, .max_event_bytes = 4096};
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "create: %s", evb_last_error());
}

/* Close the bus, remove its tmpfs directory (a reboot), open it again. */
static void reboot(void)
{
    evb_bus_close(bus);
    t_rmtree(t_bus_dir());
    bus = open_bus();
}

static evb_producer *producer(const char *topic)
{
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, &po), 0, "producer: %s", evb_last_error());
    return p;
}

/* Publish N values of producer PID from sequence FROM, batches of 64. */
static void publish(evb_producer *p, uint32_t pid, uint64_t from, uint64_t n)
{
    static uint8_t vals[64][VLEN];
    evb_msg m[64];
    for (uint64_t i = 0; i < n;) {
        uint32_t k = n - i < 64 ? (uint32_t)(n - i) : 64;
        for (uint32_t j = 0; j < k; j++) {
            t_value_fill(vals[j], VLEN, pid, from + i + j);
            m[j] = (evb_msg){.value = vals[j], .value_len = VLEN,
                             .partition = EVB_PARTITION_ANY};
        }
        int rc = evb_publish_batch(p, m, k);
        cr_assert_eq(rc, (int)k, "publish_batch: %d %s", rc, evb_strerror(rc));
        i += k;
    }
}

/* Read everything from EARLIEST until TIMEOUT_MS passes with nothing new;
 * check checksums, offsets gap-free from the log start per partition, and
 * each producer's values in sequence. Returns events read; per-producer
 * next sequence in NEXT[]. */
struct seen {
    uint64_t next[8];          /* per value producer id */
    uint64_t offset[8];        /* per partition: next offset expected */
    bool started[8];
    uint64_t n;
    uint64_t gaps;             /* offsets skipped: events voided by pads */
};

static void check_event(struct seen *s, const evb_event *ev)
{
    uint32_t pid;
    uint64_t seq;
    cr_assert_eq(ev->value_len, VLEN);
    cr_assert(t_value_check(ev->value, VLEN, &pid, &seq), "torn value at offset %llu",
              (unsigned long long)ev->offset);
    cr_assert_lt(pid, 8u);
    cr_assert_lt(ev->partition, 8u);
    /* Offsets are dense, but a claim padded after its producer died keeps
     * its offset and voids it: callers say how many such gaps they allow. */
    if (s->started[ev->partition]) {
        cr_assert_geq(ev->offset, s->offset[ev->partition],
                      "partition %u: offset %llu went back, expected %llu", ev->partition,
                      (unsigned long long)ev->offset,
                      (unsigned long long)s->offset[ev->partition]);
        s->gaps += ev->offset - s->offset[ev->partition];
    }
    s->started[ev->partition] = true;
    s->offset[ev->partition] = ev->offset + 1;
    /* Round-robin spreads a producer over partitions, so its values are
     * increasing per partition, and all present overall (checked by the
     * caller through the count and NEXT). */
    cr_assert_geq(seq, 0u);
    if (seq + 1 > s->next[pid])
        s->next[pid] = seq + 1;
    s->n++;
}

static uint64_t read_all_gaps(const char *topic, struct seen *s, uint64_t want, int idle_ms,
                              uint64_t max_gaps)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0, "consumer: %s",
                 evb_last_error());
    memset(s, 0, sizeof *s);
    evb_event ev;
    int rc;
    while ((rc = evb_consumer_next(c, &ev, s->n < want ? 10000 : idle_ms)) == 0) {
        cr_assert_eq(ev.lost_events, 0u, "lost %llu before offset %llu",
                     (unsigned long long)ev.lost_events, (unsigned long long)ev.offset);
        check_event(s, &ev);
    }
    cr_assert(rc == -ETIMEDOUT || rc == -EAGAIN, "consumer_next: %s", evb_strerror(rc));
    cr_assert_leq(s->gaps, max_gaps, "%llu offsets missing", (unsigned long long)s->gaps);
    evb_consumer_close(c);
    return s->n;
}

static uint64_t read_all(const char *topic, struct seen *s, uint64_t want, int idle_ms)
{
    return read_all_gaps(topic, s, want, idle_ms, 0);
}

TestSuite(durable, .init = setup, .fini = teardown, .timeout = 300);

/* ---- replay after a reboot ---- */

struct pub_arg {
    const char *topic;
    uint32_t pid;
    uint64_t n;
    bool sync_each;
    struct t_shared *sh;
};

static int pub_child(void *argp)
{
    struct pub_arg *a = argp;
    evb_bus *b = open_bus();
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1, .partitioner = EVB_PART_ROUND_ROBIN};
    if (evb_producer_open(&p, b, a->topic, &po))
        return 10;
    if (a->sh)
        atomic_fetch_add(&a->sh->ready, 1);
    if (!a->sync_each) {
        publish(p, a->pid, 0, a->n);
        if (a->sh)
            atomic_store(&a->sh->done, 1);
    } else {
        uint8_t v[VLEN];
        for (uint64_t i = 0; i < a->n; i++) {
            t_value_fill(v, VLEN, a->pid, i);
            evb_msg m = {.value = v, .value_len = VLEN, .partition = EVB_PARTITION_ANY,
                         .flags = EVB_MSG_SYNC};
            if (evb_publish(p, &m))
                return 11;
            /* Acknowledged: on disk. */
            atomic_store(&a->sh->val[a->pid], i + 1);
        }
    }
    evb_producer_close(p);
    evb_bus_close(b);
    return 0;
}

Test(durable, replay_after_tmpfs_wipe)
{
    uint64_t n = t_env_u64("EVB_TEST_DURABLE_EVENTS", 2000000);
    create("d", 2, 1 << 20, 4 << 20, EVB_DURABILITY_ASYNC);
    struct pub_arg a = {.topic = "d", .pid = 1, .n = n};
    pid_t pid = t_spawn(pub_child, &a);
    cr_assert_eq(t_wait_exit(pid, 240000), 0, "producer failed");
    reboot();
    struct evb_partition_stat st[2];
    for (uint32_t i = 0; i < 2; i++) {
        cr_assert_eq(evb_partition_stat(bus, "d", i, &st[i]), 0);
        cr_expect_eq(st[i].recovered_dropped, 0u);
        cr_expect_eq(st[i].log_start_offset, 0u);
    }
    cr_assert_eq(st[0].tail_offset + st[1].tail_offset, n, "rebuilt rings end at %llu + %llu",
                 (unsigned long long)st[0].tail_offset, (unsigned long long)st[1].tail_offset);
    struct seen s;
    cr_assert_eq(read_all("d", &s, n, 200), n);
    cr_assert_eq(s.next[1], n);

    /* The rebuilt topic takes new events after the old ones. */
    evb_producer *p = producer("d");
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 2, 0);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0);
    cr_assert_eq(evb_producer_sync(p, 5000), 0);
    evb_producer_close(p);
    cr_assert_eq(read_all("d", &s, n + 1, 200), n + 1);
}

/* ---- SIGKILL of a sync producer ---- */

Test(durable, sync_acks_survive_sigkill)
{
    create("s", 1, 1 << 20, 4 << 20, EVB_DURABILITY_SYNC);
    struct t_shared *sh = t_shared_new();
    struct pub_arg a = {.topic = "s", .pid = 3, .n = UINT64_MAX / 2, .sync_each = true,
                        .sh = sh};
    pid_t pid = t_spawn(pub_child, &a);
    /* Let it acknowledge a few hundred, then kill it mid-flight. */
    cr_assert(t_wait_count(&sh->val[3], 300, 30000), "no sync acks");
    kill(pid, SIGKILL);
    t_wait_exit(pid, 5000);
    uint64_t acked = atomic_load(&sh->val[3]);
    reboot();
    struct seen s;
    uint64_t got = read_all("s", &s, acked, 200);
    cr_assert_geq(got, acked, "only %llu of %llu acknowledged events on disk",
                  (unsigned long long)got, (unsigned long long)acked);
    /* One partition, one producer: offsets and sequences match. */
    cr_assert_eq(s.next[3], got, "sequence gap: next %llu, events %llu",
                 (unsigned long long)s.next[3], (unsigned long long)got);
}

/* ---- torn and garbage tails ---- */

static void last_segment(const char *topic, char *path, size_t cap, uint64_t *base)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s/0", t_data_dir(), topic);
    *base = 0;
    struct stat st;
    for (uint64_t b = 0;; b += 1 << 20) {
        char p[600];
        snprintf(p, sizeof p, "%s/%020llu.log", dir, (unsigned long long)b);
        if (stat(p, &st) < 0)
            break;
        *base = b;
        snprintf(path, cap, "%s", p);
    }
}

/* Partition 0's durable mark (bus/durable/mark_format.h). */
static const char *mark_path(const char *topic, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s/0/durable.mark", t_data_dir(), topic);
    return path;
}

static void publish_sync(const char *topic, uint64_t n)
{
    evb_producer *p = producer(topic);
    publish(p, 4, 0, n);
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    evb_producer_close(p);
}

Test(durable, garbage_after_the_tail_is_cut_and_counted)
{
    create("g", 1, 1 << 20, 1 << 20, EVB_DURABILITY_ASYNC);
    publish_sync("g", 1000);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "g", 0, &st), 0);
    uint64_t end = st.durable_position;
    cr_assert_gt(end, 0u);
    char path[600];
    uint64_t base;
    last_segment("g", path, sizeof path, &base);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t junk[1000];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(1 + rand() % 255); /* never zero: every byte counts */
    cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)(end - base)), (ssize_t)sizeof junk);
    close(fd);
    reboot();
    cr_assert_eq(evb_partition_stat(bus, "g", 0, &st), 0);
    cr_expect_eq(st.recovered_dropped, sizeof junk, "dropped %llu",
                 (unsigned long long)st.recovered_dropped);
    cr_expect_eq(st.tail_position, end);
    struct seen s;
    cr_assert_eq(read_all("g", &s, 1000, 200), 1000u);
}

Test(durable, torn_last_frame_is_truncated)
{
    create("t", 1, 1 << 20, 1 << 20, EVB_DURABILITY_ASYNC);
    publish_sync("t", 1000);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0);
    uint64_t end = st.durable_position;
    char path[600];
    uint64_t base;
    last_segment("t", path, sizeof path, &base);
    /* Scribble over the end of the last frame (56 + 64 bytes, in two lines). */
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t junk[40];
    memset(junk, 0xa5, sizeof junk);
    cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)(end - base - 128 + 120 - sizeof junk)),
                 (ssize_t)sizeof junk);
    close(fd);
    /* Torn: past the durable mark, as when the mark's own write had not
     * reached the disk at a power loss (it may lag, never lead). */
    cr_assert_eq(unlink(mark_path("t", path, sizeof path)), 0);
    reboot();
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0);
    /* Without the mark the cut is unbounded: the torn event may have been
     * synced and its offset handed out, so offsets are skipped past every
     * one the log could have held (bus/durable/recover.c) and never reused;
     * the skip is pads at the old end (end - 128). */
    cr_expect_gt(st.tail_offset, 999u, "offset 999 would be handed out again");
    cr_expect_eq(st.tail_position, end - 128 + 64); /* one pad, a header to the line */
    cr_expect_gt(st.recovered_dropped, 0u);
    evb_damage d;
    cr_assert_eq(evb_partition_damage(bus, "t", 0, 0, &d), 0);
    cr_expect_eq(d.skipped_offsets, st.tail_offset - 999);
    struct seen s;
    cr_assert_eq(read_all("t", &s, 999, 200), 999u);
}

/* The same bytes below the durable mark: damage, not a torn tail. Nothing
 * is cut and the next event does not get an offset already handed out. */
Test(durable, flipped_last_frame_below_the_mark_is_kept)
{
    create("t", 1, 1 << 20, 1 << 20, EVB_DURABILITY_SYNC);
    publish_sync("t", 1000);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0);
    uint64_t end = st.durable_position;
    char path[600];
    uint64_t base;
    last_segment("t", path, sizeof path, &base);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t b = 0x5a;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)(end - base - 1)), 1);
    close(fd);
    reboot();
    cr_assert_eq(evb_partition_stat(bus, "t", 0, &st), 0);
    cr_expect_eq(st.tail_offset, 1000u, "offset 999 would be handed out twice");
    cr_expect_eq(st.tail_position, end);
    cr_expect_eq(st.recovered_dropped, 0u);
    struct stat sb;
    cr_expect_eq(stat(path, &sb), 0, "the segment was removed");
}

/* ---- flusher takeover ---- */

struct run_arg {
    uint32_t pid;
    struct t_shared *sh;
    const char *topic;
    const char *crash_at;      /* arm this crash point in the child */
};

/* Publish until told to stop (sh->go == 2), counting in val[pid]. */
static int run_child(void *argp)
{
    struct run_arg *a = argp;
    if (a->crash_at) {
        setenv("EVB_CRASH_AT", a->crash_at, 1);
        setenv("EVB_CRASH_SKIP", "5", 1);
    }
    evb_bus *b = open_bus();
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    if (evb_producer_open(&p, b, a->topic ? a->topic : "f", &po))
        return 10;
    atomic_fetch_add(&a->sh->ready, 1);
    uint8_t v[VLEN];
    uint64_t i = 0;
    while (atomic_load(&a->sh->go) != 2) {
        t_value_fill(v, VLEN, a->pid, i);
        evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
        if (evb_publish(p, &m))
            return 11;
        atomic_store(&a->sh->val[a->pid], ++i);
        if ((i & 255) == 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    if (evb_producer_sync(p, 10000))
        return 12;
    evb_producer_close(p);
    evb_bus_close(b);
    return 0;
}

Test(durable, flusher_takeover_loses_nothing)
{
    create("f", 1, 256 << 10, 1 << 20, EVB_DURABILITY_ASYNC);
    struct t_shared *sh = t_shared_new();
    struct run_arg a1 = {.pid = 5, .sh = sh}, a2 = {.pid = 6, .sh = sh};
    pid_t p1 = t_spawn(run_child, &a1);
    cr_assert(t_wait_count(&sh->ready, 1, 10000));
    /* The first process holds the flush lock before the second starts. */
    struct evb_partition_stat st;
    uint64_t until = t_now_ms() + 5000;
    do {
        cr_assert_eq(evb_partition_stat(bus, "f", 0, &st), 0);
    } while (st.flusher_pid != (uint32_t)p1 && t_now_ms() < until);
    cr_assert_eq(st.flusher_pid, (uint32_t)p1);
    pid_t p2 = t_spawn(run_child, &a2);
    cr_assert(t_wait_count(&sh->ready, 2, 10000));
    cr_assert(t_wait_count(&sh->val[6], 20000, 30000));
    kill(p1, SIGKILL);
    t_wait_exit(p1, 5000);
    uint64_t killed_at = t_now_ms();
    /* The survivor takes the lock within the bound (50 ms retry). */
    do {
        cr_assert_eq(evb_partition_stat(bus, "f", 0, &st), 0);
    } while (st.flusher_pid != (uint32_t)p2 && t_now_ms() < killed_at + 2000);
    cr_assert_eq(st.flusher_pid, (uint32_t)p2, "no takeover after %llu ms (flusher %u, "
                 "error %d, flushed %llu, tail %llu)",
                 (unsigned long long)(t_now_ms() - killed_at), st.flusher_pid, st.flush_error,
                 (unsigned long long)st.flushed_position, (unsigned long long)st.tail_position);
    cr_expect_lt(t_now_ms() - killed_at, 1000u);
    uint64_t more = atomic_load(&sh->val[6]) + 20000;
    cr_assert(t_wait_count(&sh->val[6], more, 30000));
    atomic_store(&sh->go, 2);
    cr_assert_eq(t_wait_exit(p2, 30000), 0);
    uint64_t n5 = atomic_load(&sh->val[5]), n6 = atomic_load(&sh->val[6]);
    reboot();
    struct seen s;
    /* The victim may have died inside a claim: its hole is padded and
     * voids one offset. */
    uint64_t got = read_all_gaps("f", &s, n6, 200, 1);
    /* Every event of the survivor, and the victim's up to its death: it
     * may have died with one publish committed but not yet counted. */
    cr_assert_eq(s.next[6], n6);
    cr_assert(s.next[5] == n5 || s.next[5] == n5 + 1, "victim: %llu on disk, %llu counted",
              (unsigned long long)s.next[5], (unsigned long long)n5);
    cr_assert_eq(got, s.next[5] + s.next[6], "gap or duplicate: %llu events, %llu + %llu",
                 (unsigned long long)got, (unsigned long long)s.next[5],
                 (unsigned long long)s.next[6]);
}

/* ---- catching up from disk while producers run ---- */

Test(durable, catch_up_crosses_the_seam)
{
    uint64_t n = t_env_u64("EVB_TEST_DURABLE_EVENTS", 2000000) / 4;
    create("c", 2, 128 << 10, 512 << 10, EVB_DURABILITY_ASYNC);
    struct t_shared *sh = t_shared_new();
    struct pub_arg a = {.topic = "c", .pid = 1, .n = n, .sh = sh};
    pid_t pid = t_spawn(pub_child, &a);
    cr_assert(t_wait_count(&sh->ready, 1, 10000));
    /* Start when plenty is on disk only, with the producer still going. */
    struct evb_partition_stat st;
    do {
        cr_assert_eq(evb_partition_stat(bus, "c", 0, &st), 0);
    } while (st.flushed_position < (512u << 10) && !atomic_load(&sh->done));
    struct seen s;
    cr_assert_eq(read_all("c", &s, n, 300), n);
    cr_assert_eq(s.next[1], n);
    cr_assert_eq(t_wait_exit(pid, 60000), 0);
}

/* ---- seek by time and offset ---- */

Test(durable, seek_by_time_and_offset)
{
    create("k", 1, 64 << 10, 128 << 10, EVB_DURABILITY_ASYNC);
    evb_producer *p = producer("k");
    enum { ROUNDS = 40, PER = 200 };
    for (int r = 0; r < ROUNDS; r++) {
        publish(p, 1, (uint64_t)r * PER, PER);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "k", &co), 0);
    /* The times to seek to are the events' own: a cut taken with
     * clock_gettime between rounds would be later than the next round's
     * stamps on a machine whose real-time clock is stepped (a VM's time
     * sync), which the event clock follows at its next anchor only
     * (shm/clock.c). Each round starts 1 ms after the last one ended.
     * first[r]: round r's first stamp; last[r]: its last one. */
    uint64_t first[ROUNDS], last[ROUNDS];
    evb_event ev;
    for (uint64_t i = 0; i < ROUNDS * PER; i++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        cr_assert_eq(ev.offset, i);
        if (i % PER == 0)
            first[i / PER] = ev.timestamp_ns;
        last[i / PER] = ev.timestamp_ns;
    }
    /* Most of the log is on disk only (64 KiB ring, ~1 MiB of events). */
    for (int r = 3; r < ROUNDS; r += 3) {
        cr_assert_lt(last[r - 1], first[r], "round %d's stamps do not follow round %d's",
                     r, r - 1);
        /* Its first stamp, and any time between the rounds, find its first event. */
        uint64_t at[2] = {first[r], last[r - 1] + 1};
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(evb_consumer_seek(c, -1, EVB_START_TIME, at[k]), 0);
            cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
            cr_expect_eq(ev.offset, (uint64_t)r * PER, "time %llu of round %d: offset %llu",
                         (unsigned long long)at[k], r, (unsigned long long)ev.offset);
            cr_expect_geq(ev.timestamp_ns, at[k]);
        }
    }
    for (uint64_t off = 0; off < ROUNDS * PER; off += 777) {
        cr_assert_eq(evb_consumer_seek(c, -1, EVB_START_OFFSET, off), 0);
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        cr_expect_eq(ev.offset, off);
        uint32_t pid;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, VLEN, &pid, &seq));
        cr_expect_eq(seq, off);
    }
    /* After the newest event: lands at the tail. */
    cr_assert_eq(evb_consumer_seek(c, -1, EVB_START_TIME, last[ROUNDS - 1] + 1), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* ---- retention ---- */

Test(durable, retention_drops_old_segments_only)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .segment_bytes = 128 << 10,
                           .durability = EVB_DURABILITY_ASYNC, .retain_bytes = 256 << 10,
                           .max_event_bytes = 4096};
    cr_assert_eq(evb_topic_create(bus, "r", &tc), 0);
    evb_producer *p = producer("r");
    publish(p, 1, 0, 20000); /* ~2.4 MiB of frames: ~19 segments */
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    struct evb_partition_stat st;
    uint64_t until = t_now_ms() + 5000;
    do {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        cr_assert_eq(evb_partition_stat(bus, "r", 0, &st), 0);
    } while (st.segments > 3 && t_now_ms() < until);
    /* Two kept by retain_bytes, perhaps one built ahead. */
    cr_assert_leq(st.segments, 3u, "%u segments left", st.segments);
    cr_assert_geq(st.segments, 2u);
    cr_assert_gt(st.log_start_offset, 0u);
    cr_assert_leq(st.log_start_position, st.flushed_position);
    /* Older than the log: -ERANGE when strict, else the start, counted. */
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS,
                               .start = EVB_START_OFFSET | EVB_SEEK_STRICT};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "r", &co), -ERANGE);
    co.start = EVB_START_OFFSET;
    cr_assert_eq(evb_consumer_open(&c, bus, "r", &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(ev.offset, st.log_start_offset);
    cr_expect_eq(ev.lost_events, st.log_start_offset);
    uint64_t n = 1;
    while (evb_consumer_next(c, &ev, 100) == 0)
        n++;
    cr_expect_eq(n, 20000 - st.log_start_offset);
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* ---- no flusher left: the next open finishes the flush ---- */

Test(durable, next_open_finishes_an_orphaned_flush)
{
    create("o", 1, 256 << 10, 1 << 20, EVB_DURABILITY_ASYNC);
    struct t_shared *sh = t_shared_new();
    /* The only producer dies in its flusher, after a write completed and
     * before it published the flushed position. */
    struct run_arg a = {.pid = 7, .sh = sh, .topic = "o", .crash_at = "flush.written"};
    pid_t pid = t_spawn(run_child, &a);
    cr_assert_eq(t_wait_exit(pid, 30000), 128 + SIGKILL, "the crash point did not fire");
    uint64_t committed = atomic_load(&sh->val[7]);
    cr_assert_gt(committed, 0u);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "o", 0, &st), 0);
    cr_assert_lt(st.flushed_position, st.tail_position, "nothing left to flush?");
    /* Opening a consumer flushes it (nobody holds the lock). */
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "o", &co), 0);
    evb_consumer_close(c);
    cr_assert_eq(evb_partition_stat(bus, "o", 0, &st), 0);
    cr_assert_eq(st.durable_position, st.tail_position, "durable %llu, tail %llu",
                 (unsigned long long)st.durable_position,
                 (unsigned long long)st.tail_position);
    reboot();
    struct seen s;
    uint64_t got = read_all("o", &s, committed, 200);
    cr_assert_geq(got, committed);
    cr_assert_eq(s.next[7], got);
}

/* ---- retention waits for named consumers, up to a cap ---- */

static uint32_t segments_after(const char *topic, uint32_t want, int ms)
{
    struct evb_partition_stat st;
    uint64_t until = t_now_ms() + (uint64_t)ms;
    do {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        cr_assert_eq(evb_partition_stat(bus, topic, 0, &st), 0);
    } while (st.segments > want && t_now_ms() < until);
    return st.segments;
}

Test(durable, retention_until_consumed_and_its_cap)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .segment_bytes = 128 << 10,
                           .durability = EVB_DURABILITY_ASYNC, .retain_bytes = 256 << 10,
                           .flags = EVB_TOPIC_RETAIN_UNTIL_CONSUMED,
                           .retain_cap_bytes = 2 << 20, .max_event_bytes = 4096};
    cr_assert_eq(evb_topic_create(bus, "u", &tc), 0);
    /* A named consumer that committed at the very start. */
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "slow",
                               .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "u", &co), 0);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_producer *p = producer("u");
    publish(p, 1, 0, 10000); /* ~1.2 MiB: 10 segments, under the cap */
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    /* Retention runs once a second: nothing may go while unconsumed. */
    uint32_t n = segments_after("u", 2, 1500);
    cr_assert_geq(n, 9u, "retention removed unconsumed segments: %u left", n);
    /* Consume and commit half: the segments below the commit may go. */
    evb_event ev;
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(c), 0);
    /* (The count includes the segment built ahead of the one written.) */
    n = segments_after("u", 7, 3000);
    {
        struct evb_partition_stat s2;
        evb_partition_stat(bus, "u", 0, &s2);
        cr_assert_leq(n, 7u, "%u segments; log start %llu; consumer at offset %llu pos %llu",
                      n, (unsigned long long)s2.log_start_offset,
                      (unsigned long long)ev.offset, (unsigned long long)ev.position);
    }
    cr_assert_geq(n, 5u);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "u", 0, &st), 0);
    cr_assert_eq(st.retention_unconsumed, 0u);
    cr_assert_leq(st.log_start_offset, 5000u);
    /* Past the cap, the cap wins and says how much it dropped unread. */
    publish(p, 1, 10000, 20000);
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    n = segments_after("u", 17, 3000);
    cr_assert_leq(n, 17u);
    cr_assert_eq(evb_partition_stat(bus, "u", 0, &st), 0);
    cr_assert_gt(st.retention_unconsumed, 0u);
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* A topic an older build made (topic.conf version 1 in its data
 * directory) is marked version 2 when this build rebuilds it from its
 * segments, where line-padded frames go from then on: a build that reads
 * only version 1 refuses it then, rather than take them for damage. The
 * rest of the file, its mode and the log stay as they were. */
/* Topic TOPIC's topic.conf in the data directory (PATH, its text in
 * TEXT, its stat in ST0) rewritten as a build before ring
 * version 6 wrote it: version 1, same mode. */
static void conf_as_version_1(const char *topic, char *path, size_t cap, char *text,
                                size_t tcap, struct stat *st0)
{
    snprintf(path, cap, "%s/%s/topic.conf", t_data_dir(), topic);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(text, 1, tcap - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(!strncmp(text, "evbus-topic 2\n", 14), "%s", text);
    cr_assert_eq(stat(path, st0), 0);
    text[12] = '1';
    cr_assert_eq(chmod(path, 0600), 0);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, n, f), n);
    fclose(f);
    cr_assert_eq(chmod(path, st0->st_mode & 07777), 0);
}

static unsigned conf_version(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    unsigned v = 0;
    cr_assert_eq(fscanf(f, "evbus-topic %u", &v), 1);
    fclose(f);
    return v;
}

Test(durable, an_older_builds_topic_is_marked_when_rebuilt)
{
    create("up", 1, 1 << 20, 1 << 20, EVB_DURABILITY_ASYNC);
    publish_sync("up", 100);
    char path[600], text[1024], again[1024];
    struct stat st0;
    conf_as_version_1("up", path, sizeof path, text, sizeof text, &st0);
    reboot();
    struct seen s;
    cr_assert_eq(read_all("up", &s, 100, 200), 100u);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t m = fread(again, 1, sizeof again - 1, f);
    fclose(f);
    again[m] = '\0';
    text[12] = '2';
    cr_expect_str_eq(again, text, "only the version line changes");
    struct stat st1;
    cr_assert_eq(stat(path, &st1), 0);
    cr_expect_eq(st1.st_mode & 07777, st0.st_mode & 07777, "mode %o, was %o",
                 st1.st_mode & 07777, st0.st_mode & 07777);
    char tmp[620];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_expect_neq(access(tmp, F_OK), 0, "%s left behind", tmp);
    /* A second rebuild finds version 2 and leaves the file alone. */
    reboot();
    cr_assert_eq(stat(path, &st0), 0);
    cr_expect_eq(st0.st_ino, st1.st_ino, "rewritten again");
}

/* A version 1 topic.conf that a rebuild could not mark (a reader's, who
 * may not write the data directory) is marked by the first process that
 * flushes the topic, before it writes a frame. */
Test(durable, an_older_builds_topic_is_marked_before_a_flusher_writes)
{
    create("upw", 1, 1 << 20, 1 << 20, EVB_DURABILITY_ASYNC);
    publish_sync("upw", 10);
    char path[600], text[1024];
    struct stat st0;
    conf_as_version_1("upw", path, sizeof path, text, sizeof text, &st0);
    cr_assert_eq(conf_version(path), 1);
    evb_producer *p = producer("upw");
    publish(p, 4, 10, 10);
    cr_assert_eq(evb_producer_sync(p, 10000), 0);
    evb_producer_close(p);
    cr_expect_eq(conf_version(path), 2, "a flusher wrote under a version 1 topic.conf");
    struct seen s;
    cr_assert_eq(read_all("upw", &s, 20, 200), 20u);
}
