/*
 * test_acks.c - pipelined durable acknowledgements: receipts
 * (evb_publish_receipt, evb_publish_batch_receipts, evb_commit_receipt)
 * name what a reader then reads; evb_producer_wait_durable returns only
 * once the durable word passed the target, and with the flusher's error
 * when it stopped; evb_producer_durable_position never goes back, reaches
 * every target, refuses a durable word that does not fit the ring; events
 * a SIGKILLed producer had seen durable are read back after a reboot.
 * EVB_MSG_SYNC and evb_producer_sync themselves are test_durable.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"
#include "err.h"
#include "frame.h"
#include "ring.h"
#include "segment.h"
#include "durable_fixture.h"

#define TOPIC "a"
#define VLEN DF_VLEN
#define MAXR 4096

TestSuite(acks, .init = df_setup, .fini = df_teardown, .timeout = 60);

static evb_producer *producer(int32_t block_ms)
{
    evb_producer_options po = {.block_ms = block_ms, .partitioner = EVB_PART_ROUND_ROBIN};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "producer: %s",
                 evb_last_error());
    return p;
}

/* Publish through P, to PART (or EVB_PARTITION_ANY), one event whose value
 * carries SEQ; its receipt in *R. */
static void publish_r(evb_producer *p, int32_t part, uint64_t seq, evb_receipt *r)
{
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 1, seq);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = part};
    *r = (evb_receipt){0};
    int rc = evb_publish_receipt(p, &m, r);
    cr_assert_eq(rc, 0, "publish %llu: %s %s", (unsigned long long)seq, evb_strerror(rc),
                 evb_last_error());
}

static uint64_t durable_word(void)
{
    return df_stat(TOPIC).durable_position;
}

/* ---- receipts name what readers read ---- */

struct rec {
    evb_receipt r;
    uint64_t seq;
    uint32_t key_len;
};

Test(acks, receipts_match_what_a_consumer_reads)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.partitions = 3;
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    static struct rec want[MAXR];
    uint64_t n = 0;
    uint8_t v[64][VLEN];
    /* Singles: round-robin over the partitions, then one named. */
    for (int i = 0; i < 7; i++, n++) {
        publish_r(p, i == 6 ? 2 : EVB_PARTITION_ANY, n, &want[n].r);
        want[n].seq = n;
    }
    /* A keyed single (its frame is longer by the padded key). */
    t_value_fill(v[0], VLEN, 1, n);
    evb_msg km = {.key = "abc", .key_len = 3, .value = v[0], .value_len = VLEN,
                  .partition = 1};
    cr_assert_eq(evb_publish_receipt(p, &km, &want[n].r), 0, "%s", evb_last_error());
    want[n].seq = n;
    want[n++].key_len = 3;
    /* A batch over two partitions: runs of 5 to 0, 4 to 1, 3 to 0. */
    evb_msg bm[12];
    evb_receipt br[12];
    for (int i = 0; i < 12; i++) {
        t_value_fill(v[i], VLEN, 1, n + (uint64_t)i);
        bm[i] = (evb_msg){.value = v[i], .value_len = VLEN,
                          .partition = i < 5 || i >= 9 ? 0 : 1};
    }
    cr_assert_eq(evb_publish_batch_receipts(p, bm, 12, br), 12, "%s", evb_last_error());
    for (int i = 0; i < 12; i++, n++) {
        want[n].r = br[i];
        want[n].seq = n;
    }
    /* Claims: the receipt comes with the commit. */
    for (int i = 0; i < 3; i++, n++) {
        struct evb_claim c;
        cr_assert_eq(evb_claim(p, i, NULL, 0, VLEN, &c), 0, "%s", evb_last_error());
        t_value_fill(c.value, VLEN, 1, n);
        cr_assert_eq(evb_commit_receipt(p, &c, &want[n].r), 0);
        cr_expect_eq(want[n].r.partition, c.partition);
        cr_expect_eq(want[n].r.offset, c.offset);
        cr_expect_eq(want[n].r.position, c.position);
        want[n].seq = n;
    }
    /* Each frame's bytes, and every receipt durable once synced. */
    for (uint64_t i = 0; i < n; i++) {
        cr_expect_eq(want[i].r.end_position - want[i].r.position,
                     evb_frame_bytes(want[i].key_len, VLEN), "event %llu: receipt %llu..%llu",
                     (unsigned long long)i, (unsigned long long)want[i].r.position,
                     (unsigned long long)want[i].r.end_position);
        cr_expect_eq(evb_producer_wait_durable(p, &want[i].r, 10000), 0, "%s",
                     evb_last_error());
    }

    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, TOPIC, &co), 0, "%s", evb_last_error());
    uint64_t got = 0;
    evb_event ev;
    while (got < n && evb_consumer_next(c, &ev, 1000) == 0) {
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq), "torn event");
        cr_assert_lt(seq, n);
        const evb_receipt *r = &want[seq].r;
        cr_expect(r->partition == ev.partition && r->offset == ev.offset &&
                  r->position == ev.position,
                  "event %llu read at (%u, %llu, %llu), its receipt says (%u, %llu, %llu)",
                  (unsigned long long)seq, ev.partition, (unsigned long long)ev.offset,
                  (unsigned long long)ev.position, r->partition,
                  (unsigned long long)r->offset, (unsigned long long)r->position);
        got++;
    }
    cr_expect_eq(got, n, "read %llu of %llu", (unsigned long long)got,
                 (unsigned long long)n);
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* ---- wait_durable: only once the durable word passed ---- */

/* ASYNC with a long interval: nothing is synced unless someone waits, so
 * the wait itself must make it durable, and it may only return after. */
Test(acks, wait_returns_once_the_durable_word_passed_the_target)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_ASYNC);
    tc.flush_ms = 600000;
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    evb_receipt r[100];
    for (uint64_t i = 0; i < 100; i++)
        publish_r(p, 0, i, &r[i]);
    uint64_t pos;
    cr_assert_eq(evb_producer_durable_position(p, &r[0], &pos), 0, "%s", evb_last_error());
    cr_assert_lt(pos, r[49].end_position, "already durable: the wait would prove nothing");
    cr_assert_eq(evb_producer_wait_durable(p, &r[49], 10000), 0, "%s",
                 evb_last_error());
    uint64_t d = durable_word();
    cr_expect_geq(d, r[49].end_position, "wait returned with durable %llu < target %llu",
                  (unsigned long long)d, (unsigned long long)r[49].end_position);
    cr_assert_eq(evb_producer_durable_position(p, &r[49], &pos), 0);
    cr_expect_geq(pos, r[49].end_position);
    /* The newest target covers the rest. */
    cr_assert_eq(evb_producer_wait_durable(p, &r[99], 10000), 0);
    cr_expect_geq(durable_word(), r[99].end_position);
    evb_producer_close(p);
}

/* A process that holds the partition's flush lock and does nothing with
 * it: no flusher of ours can take the partition while it lives. */
static int lock_holder(void *arg)
{
    struct t_shared *sh = arg;
    char tdir[PATH_MAX], pdir[PATH_MAX];
    snprintf(tdir, sizeof tdir, "%s/" TOPIC, t_data_dir());
    evb_seg_part_dir(tdir, 0, pdir, sizeof pdir);
    if (evb_flush_lock(pdir, 5000, 0600) < 0)
        return 10;
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

/* A SYNC topic whose flush lock a process holds that flushes nothing:
 * nothing becomes durable until it dies. Its pid; TC gets the config. */
static pid_t sync_topic_unflushed(evb_topic_config *tc)
{
    *tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, tc);
    struct t_shared *sh = t_shared_new();
    pid_t holder = t_spawn(lock_holder, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 10000), "the lock holder did not start");
    return holder;
}

/* Nobody flushes: the wait times out with the word below the target, and
 * returns once a flusher of ours takes over from the dead holder. */
Test(acks, wait_times_out_until_a_flusher_syncs)
{
    evb_topic_config tc;
    pid_t holder = sync_topic_unflushed(&tc);
    evb_producer *p = producer(-1);
    evb_receipt r;
    publish_r(p, 0, 0, &r);
    uint64_t t0 = t_now_ms();
    int rc = evb_producer_wait_durable(p, &r, 300);
    cr_expect_eq(rc, -ETIMEDOUT, "wait: %d %s", rc, evb_strerror(rc));
    cr_expect_geq(t_now_ms() - t0, 300u, "returned before its timeout");
    cr_expect_lt(durable_word(), r.end_position);
    uint64_t pos;
    cr_assert_eq(evb_producer_durable_position(p, &r, &pos), 0, "%s", evb_last_error());
    cr_expect_lt(pos, r.end_position);
    kill(holder, SIGKILL);
    t_wait_exit(holder, 5000);
    cr_expect_eq(evb_producer_wait_durable(p, &r, 10000), 0, "%s",
                 evb_last_error());
    cr_expect_geq(durable_word(), r.end_position);
    evb_producer_close(p);
}

/* ---- the poll ---- */

Test(acks, poll_never_goes_back_and_reaches_every_target)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.partitions = 2;
    tc.ring_bytes = 256 << 10;
    tc.segment_bytes = 512 << 10;
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    enum { K = 64, N = 20000 };
    static evb_receipt r[K];
    evb_receipt newest[2] = {{0}, {0}}; /* a receipt of each partition, to poll it by */
    uint64_t head = 0, tail = 0, last[2] = {0, 0}, polls = 0;
    uint64_t deadline = t_now_ms() + 30000;
    while (tail < N) {
        cr_assert_lt(t_now_ms(), deadline, "receipt %llu never became durable",
                     (unsigned long long)tail);
        if (head < N && head - tail < K) {
            publish_r(p, EVB_PARTITION_ANY, head, &r[head % K]);
            newest[r[head % K].partition] = r[head % K];
            head++;
        } else {
            sched_yield();
        }
        for (uint32_t part = 0; part < 2; part++) {
            uint64_t pos;
            if (!newest[part].end_position)
                continue;
            cr_assert_eq(evb_producer_durable_position(p, &newest[part], &pos), 0, "%s",
                         evb_last_error());
            cr_assert_geq(pos, last[part], "partition %u went back: %llu after %llu", part,
                          (unsigned long long)pos, (unsigned long long)last[part]);
            last[part] = pos;
            polls++;
        }
        /* Retire in order; round robin alternates partitions, and one
         * partition's durable position says nothing of the other's. */
        while (tail < head && last[r[tail % K].partition] >= r[tail % K].end_position)
            tail++;
    }
    /* What the poll said durable, the ring's word says too. */
    cr_expect_geq(df_stat(TOPIC).durable_position, last[0]);
    evb_producer_close(p);
}

/* ---- a flusher's error reaches waiters and pollers ---- */

Test(acks, flusher_error_is_returned_to_wait_and_poll)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    /* The next segment is a hard link to a file of ours: the flusher
     * refuses to write through it (test_flush_round.c does the same). */
    df_link_next_segment(TOPIC, &tc);

    evb_producer *p = producer(2000);
    evb_receipt first, last = {0};
    publish_r(p, 0, 0, &first);
    cr_assert_eq(evb_producer_wait_durable(p, &first, 10000), 0, "%s",
                 evb_last_error());
    /* Publish until the ring, which the flusher no longer drains, is full. */
    uint8_t v[VLEN];
    int rc = 0;
    for (uint64_t i = 1; rc == 0 && i < 100000; i++) {
        t_value_fill(v, VLEN, 1, i);
        evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
        evb_receipt r;
        rc = evb_publish_receipt(p, &m, &r);
        if (rc == 0)
            last = r;
    }
    cr_assert_eq(rc, -EMEDIUMTYPE, "publish: %d %s", rc, evb_strerror(rc));
    cr_assert_gt(last.end_position, tc.segment_bytes, "nothing was published past the "
                 "first segment");
    rc = evb_producer_wait_durable(p, &last, 10000);
    cr_expect_eq(rc, -EMEDIUMTYPE, "wait: %d %s", rc, evb_strerror(rc));
    cr_expect(strstr(evb_last_error(), "2 hard links"), "the reason: '%s'", evb_last_error());
    uint64_t pos = UINT64_MAX;
    rc = evb_producer_durable_position(p, &first, &pos);
    cr_expect_eq(rc, -EMEDIUMTYPE, "poll: %d %s", rc, evb_strerror(rc));
    cr_expect(strstr(evb_last_error(), "2 hard links"), "the reason: '%s'", evb_last_error());
    cr_expect(pos >= first.end_position && pos <= tc.segment_bytes,
              "poll gave %llu with the error: durable must cover the first event and "
              "stop at the first segment's end", (unsigned long long)pos);
    /* An event that was durable before the failure still reads so. */
    cr_expect_eq(evb_producer_wait_durable(p, &first, 0), 0);

    /* The flusher could keep no text (flush.error emptied: a full disk
     * takes the truncate but not the write), and this thread holds an
     * older failure's detail: the wait's detail is its own, naming the
     * partition's directory, not the old text. */
    char err_path[PATH_MAX];
    snprintf(err_path, sizeof err_path, "%s/" TOPIC "/0/flush.error", t_data_dir());
    cr_assert_eq(truncate(err_path, 0), 0, "%s: %s", err_path, strerror(errno));
    cr_assert_eq(evb_topic_create(df_bus, TOPIC, &tc), -EEXIST);
    cr_assert(strstr(evb_last_error(), "exists"), "the older detail: '%s'", evb_last_error());
    rc = evb_producer_wait_durable(p, &last, 1000);
    cr_expect_eq(rc, -EMEDIUMTYPE, "wait: %d %s", rc, evb_strerror(rc));
    cr_expect(!strstr(evb_last_error(), "exists"), "an older failure's detail: '%s'",
              evb_last_error());
    cr_expect(strstr(evb_last_error(), t_data_dir()), "the partition's directory is not "
              "named: '%s'", evb_last_error());
    cr_assert_eq(evb_topic_create(df_bus, TOPIC, &tc), -EEXIST);
    rc = evb_producer_durable_position(p, &first, &pos);
    cr_expect_eq(rc, -EMEDIUMTYPE, "poll: %d %s", rc, evb_strerror(rc));
    cr_expect(!strstr(evb_last_error(), "exists"), "an older failure's detail: '%s'",
              evb_last_error());
    evb_producer_close(p);
}

/* ---- a durable word that does not fit the ring ---- */

static void plant_durable_at(uint64_t pos)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" TOPIC "/0.ring", t_bus_dir());
    struct evb_ring r;
    cr_assert_eq(evb_ring_open(&r, path), 0, "%s: %s", path, evb_last_error());
    atomic_store(&r.hdr->durable, pos);
    evb_ring_close(&r);
}

static void plant_durable(uint64_t delta)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" TOPIC "/0.ring", t_bus_dir());
    struct evb_ring r;
    cr_assert_eq(evb_ring_open(&r, path), 0, "%s: %s", path, evb_last_error());
    uint64_t t = atomic_load(&r.hdr->tail.pos);
    evb_ring_close(&r);
    plant_durable_at(t + delta);
}

/* A durable word DELTA past the tail: the poll refuses it, and so does a
 * wait whose target it would pass (one below every target is only "not
 * yet"). Two events, so that a word just below the tail still passes the
 * first one's end. */
static void garbage_durable_is_refused(uint64_t delta)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    evb_receipt r[2];
    publish_r(p, 0, 0, &r[0]);
    publish_r(p, 0, 1, &r[1]);
    cr_assert_eq(evb_producer_wait_durable(p, &r[1], 10000), 0);
    plant_durable(delta);
    uint64_t pos = 12345;
    int rc = evb_producer_durable_position(p, &r[0], &pos);
    cr_expect_eq(rc, -EBADMSG, "poll of a durable word tail%+lld: %d", (long long)delta, rc);
    cr_expect_eq(pos, 12345u, "the poll filled in a word it refused");
    rc = evb_producer_wait_durable(p, &r[0], 1000);
    cr_expect_eq(rc, -EBADMSG, "wait with a durable word tail%+lld: %d", (long long)delta,
                 rc);
    evb_producer_close(p);
}

Test(acks, durable_word_past_the_tail_is_ebadmsg)
{
    garbage_durable_is_refused(1 << 20);
}

Test(acks, misaligned_durable_word_is_ebadmsg)
{
    /* Below the tail, but not on a frame boundary. */
    garbage_durable_is_refused((uint64_t)-3);
}

/* The word moved back (what a flusher that takes over and fails before
 * its first sync can store): what was synced stays synced, and the poll
 * keeps saying so. */
Test(acks, poll_does_not_follow_the_word_back)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    evb_receipt r[3];
    for (uint64_t i = 0; i < 3; i++)
        publish_r(p, 0, i, &r[i]);
    cr_assert_eq(evb_producer_wait_durable(p, &r[2], 10000), 0);
    uint64_t pos;
    cr_assert_eq(evb_producer_durable_position(p, &r[2], &pos), 0);
    cr_assert_geq(pos, r[2].end_position);
    plant_durable((uint64_t)0 - (r[2].end_position - r[0].end_position));
    cr_assert_eq(durable_word(), r[0].end_position, "the planted word");
    uint64_t again;
    cr_assert_eq(evb_producer_durable_position(p, &r[2], &again), 0, "%s", evb_last_error());
    cr_expect_eq(again, pos, "the poll went back from %llu to %llu",
                 (unsigned long long)pos, (unsigned long long)again);
    evb_producer_close(p);
}

/* A durable word past the flushed position, yet aligned and below the
 * tail: what another writer of the ring can forge
 * while nothing is flushed (the flush lock held by a process that does
 * nothing). Nothing past flushed was written, so nothing past it can be
 * synced: the poll, the wait and evb_producer_sync refuse it as damage
 * rather than acknowledge events that are in no file. */
Test(acks, durable_word_past_flushed_is_ebadmsg)
{
    evb_topic_config tc;
    pid_t holder = sync_topic_unflushed(&tc);
    evb_producer *p = producer(-1);
    enum { N = 200 }; /* ~24 KB, over 5 of the largest frames (4 KiB events) */
    static evb_receipt r[N];
    for (uint64_t i = 0; i < N; i++)
        publish_r(p, 0, i, &r[i]);
    struct evb_partition_stat ps = df_stat(TOPIC);
    cr_assert_eq(ps.flushed_position, 0u, "something flushed the partition");
    cr_assert_gt(r[N - 1].end_position, 5u * (tc.max_event_bytes + EVB_FRAME_HDR));
    /* The forged word: the tail itself, 8-aligned, every receipt below it. */
    plant_durable(0);
    uint64_t pos = 12345;
    int rc = evb_producer_durable_position(p, &r[N - 1], &pos);
    cr_expect_eq(rc, -EBADMSG, "poll of a durable word past flushed: %d %s", rc,
                 evb_strerror(rc));
    cr_expect_eq(pos, 12345u, "the poll filled in a word it refused");
    cr_expect(strstr(evb_last_error(), "past the flushed"), "the reason: '%s'",
              evb_last_error());
    rc = evb_producer_wait_durable(p, &r[N - 1], 1000);
    cr_expect_eq(rc, -EBADMSG, "wait: %d %s", rc, evb_strerror(rc));
    rc = evb_producer_sync(p, 1000);
    cr_expect_eq(rc, -EBADMSG, "producer_sync: %d %s", rc, evb_strerror(rc));
    /* Any distance past flushed, down to the first small event's end
     * (well under a frame of the largest size): nothing publishes durable
     * past flushed, so nothing past it is believed. */
    for (uint64_t i = 0; i < N; i += N / 4) {
        plant_durable_at(r[i].end_position);
        rc = evb_producer_durable_position(p, &r[i], &pos);
        cr_expect_eq(rc, -EBADMSG, "durable %llu, flushed 0: %d %s",
                     (unsigned long long)r[i].end_position, rc, evb_strerror(rc));
        rc = evb_producer_wait_durable(p, &r[i], 100);
        cr_expect_eq(rc, -EBADMSG, "wait, durable %llu: %d", (unsigned long long)r[i].end_position,
                     rc);
    }
    kill(holder, SIGKILL);
    t_wait_exit(holder, 5000);
    evb_producer_close(p);
}

/* ---- receipts of a ring rebuilt since ---- */

/* An ASYNC topic that syncs only when asked: one synced event, then
 * STALE_N receipts of events not yet on disk, kept in the shared page,
 * then SIGKILL: those events die with the page cache's chance, and a
 * rebuilt ring hands their positions and offsets out again. */
#define STALE_N 5
static int stale_child(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, TOPIC, &po))
        return 10;
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 1, 0);
    if (evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN, .flags = EVB_MSG_SYNC}))
        return 11;
    for (uint64_t i = 0; i < STALE_N; i++) {
        evb_receipt r;
        t_value_fill(v, VLEN, 2, i);
        if (evb_publish_receipt(p, &(evb_msg){.value = v, .value_len = VLEN}, &r))
            return 12;
        atomic_store(&sh->val[4 * i], (uint64_t)r.incarnation << 32 | r.partition);
        atomic_store(&sh->val[4 * i + 1], r.offset);
        atomic_store(&sh->val[4 * i + 2], r.position);
        atomic_store(&sh->val[4 * i + 3], r.end_position);
    }
    raise(SIGKILL);
    return 13;
}

/*
 * Receipts taken before a crash and a reboot name positions of the old
 * ring; the rebuilt ring starts at the synced end of the log and a new
 * producer's events take those positions. The old receipts are refused
 * (-ESTALE) by the poll and the wait, even where this ring's durable
 * position has passed their end; receipts of the new ring are answered.
 */
Test(acks, receipts_of_a_rebuilt_ring_are_estale)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_ASYNC);
    tc.flush_ms = 600000;
    df_create(TOPIC, &tc);
    struct t_shared *sh = t_shared_new();
    cr_assert_eq(t_wait_exit(t_spawn(stale_child, sh), 10000), 128 + SIGKILL);
    evb_receipt old[STALE_N];
    for (int i = 0; i < STALE_N; i++) {
        uint64_t w = atomic_load(&sh->val[4 * i]);
        old[i] = (evb_receipt){.partition = (uint32_t)w, .incarnation = (uint32_t)(w >> 32),
                               .offset = atomic_load(&sh->val[4 * i + 1]),
                               .position = atomic_load(&sh->val[4 * i + 2]),
                               .end_position = atomic_load(&sh->val[4 * i + 3])};
        cr_assert_neq(old[i].incarnation, 0u);
    }
    /* A reboot: tmpfs gone, the ring rebuilt from the segments. */
    evb_bus_close(df_bus);
    t_rmtree(t_bus_dir());
    df_setup();
    evb_producer *p = producer(-1);
    evb_receipt fresh[2 * STALE_N];
    for (uint64_t i = 0; i < 2 * STALE_N; i++)
        publish_r(p, 0, 100 + i, &fresh[i]);
    cr_assert_eq(evb_producer_wait_durable(p, &fresh[2 * STALE_N - 1], 10000), 0, "%s",
                 evb_last_error());
    cr_assert_neq(fresh[0].incarnation, old[0].incarnation, "the rebuilt ring kept its "
                  "incarnation");
    cr_assert_geq(fresh[2 * STALE_N - 1].end_position, old[STALE_N - 1].end_position,
                  "the new events did not reach the old receipts' positions: nothing to "
                  "mistake");
    for (int i = 0; i < STALE_N; i++) {
        uint64_t pos = 12345;
        int rc = evb_producer_durable_position(p, &old[i], &pos);
        cr_expect_eq(rc, -ESTALE, "old receipt %d (offset %llu): poll %d, pos %llu", i,
                     (unsigned long long)old[i].offset, rc, (unsigned long long)pos);
        cr_expect_eq(pos, 12345u, "the poll filled in a position for a stale receipt");
        cr_expect(strstr(evb_last_error(), "incarnation"), "the reason: '%s'",
                  evb_last_error());
        rc = evb_producer_wait_durable(p, &old[i], 0);
        cr_expect_eq(rc, -ESTALE, "old receipt %d: wait %d", i, rc);
    }
    for (int i = 0; i < 2 * STALE_N; i++) {
        uint64_t pos;
        cr_expect_eq(evb_producer_durable_position(p, &fresh[i], &pos), 0, "%s",
                     evb_last_error());
        cr_expect_geq(pos, fresh[i].end_position);
        cr_expect_eq(evb_producer_wait_durable(p, &fresh[i], 0), 0, "%s", evb_last_error());
    }
    evb_producer_close(p);
}

/* ---- SIGKILL: what was seen durable is on disk ---- */

static int acking_child(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), &o))
        return 10;
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    if (evb_producer_open(&p, b, TOPIC, &po))
        return 11;
    enum { K = 64 };
    evb_receipt r[K];
    uint8_t v[VLEN];
    uint64_t head = 0, tail = 0;
    for (;;) {
        if (head - tail == K &&
            evb_producer_wait_durable(p, &r[tail % K], -1))
            return 12;
        uint64_t pos = 0;
        if (tail < head && evb_producer_durable_position(p, &r[tail % K], &pos))
            return 13;
        while (tail < head && pos >= r[tail % K].end_position) {
            /* Acknowledged: the event at this offset is on disk. */
            atomic_store(&sh->val[0], r[tail % K].offset + 1);
            tail++;
        }
        t_value_fill(v, VLEN, 1, head);
        evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
        if (evb_publish_receipt(p, &m, &r[head % K]))
            return 14;
        head++;
    }
}

Test(acks, events_seen_durable_survive_sigkill_and_reboot)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.ring_bytes = 1 << 20;
    tc.segment_bytes = 4 << 20;
    df_create(TOPIC, &tc);
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(acking_child, sh);
    cr_assert(t_wait_count(&sh->val[0], 2000, 30000), "no acknowledgements");
    kill(pid, SIGKILL);
    cr_expect_eq(t_wait_exit(pid, 5000), 128 + SIGKILL, "the child ended before the kill");
    uint64_t acked = atomic_load(&sh->val[0]);
    /* A reboot: tmpfs gone, the topic rebuilt from its segments. */
    evb_bus_close(df_bus);
    t_rmtree(t_bus_dir());
    df_setup();
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, TOPIC, &co), 0, "%s", evb_last_error());
    df_read(c, 0, acked);
    evb_consumer_close(c);
}

/* ---- topics that are not durable ---- */

Test(acks, not_durable_topic_answers_at_once)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_NONE);
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    uint64_t pos = 1;
    evb_receipt r;
    publish_r(p, 0, 0, &r);
    cr_expect_gt(r.end_position, r.position);
    uint64_t t0 = t_now_ms();
    cr_expect_eq(evb_producer_wait_durable(p, &r, -1), 0);
    cr_expect_lt(t_now_ms() - t0, 100u, "waited on a topic that is not durable");
    cr_assert_eq(evb_producer_durable_position(p, &r, &pos), 0);
    cr_expect_eq(pos, r.end_position);
    evb_producer_close(p);
}

/* ---- bad input ---- */

Test(acks, bad_arguments_are_einval)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.partitions = 2;
    df_create(TOPIC, &tc);
    evb_producer *p = producer(-1);
    evb_receipt r;
    uint64_t pos;
    uint8_t v[VLEN] = {0};
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
    cr_expect_eq(evb_publish_receipt(p, &m, NULL), -EINVAL);
    cr_expect_eq(evb_publish_receipt(NULL, &m, &r), -EINVAL);
    cr_expect_eq(evb_publish_receipt(p, NULL, &r), -EINVAL);
    cr_expect_eq(evb_publish_batch_receipts(p, &m, 1, NULL), -EINVAL);
    cr_expect_eq(evb_publish_batch_receipts(p, NULL, 0, NULL), 0);
    cr_expect_eq(evb_commit_receipt(p, NULL, &r), -EINVAL, "no claim open");
    struct evb_claim c;
    cr_assert_eq(evb_claim(p, 0, NULL, 0, VLEN, &c), 0);
    cr_expect_eq(evb_commit_receipt(p, &c, NULL), -EINVAL);
    cr_expect_eq(evb_abort(p, &c), 0, "the claim stayed open after a NULL receipt");
    /* Another handle's receipts: of partition 0 before P's event there,
     * and of partition 1, where P publishes nothing. */
    evb_producer *q = producer(-1);
    evb_receipt r0, r1;
    publish_r(q, 0, 2, &r0);
    publish_r(q, 1, 1, &r1);
    evb_producer_close(q);
    publish_r(p, 0, 0, &r);
    evb_receipt b = r;
    cr_expect_eq(evb_producer_wait_durable(NULL, &r, 0), -EINVAL);
    cr_expect_eq(evb_producer_wait_durable(p, NULL, 0), -EINVAL);
    b.partition = 2;
    cr_expect_eq(evb_producer_wait_durable(p, &b, 0), -EINVAL);
    /* Past what this producer published (and here past the tail): it
     * could only be reached by events of others, if ever. */
    b = r;
    b.end_position += 8;
    cr_expect_eq(evb_producer_wait_durable(p, &b, 0), -EINVAL);
    cr_expect_eq(evb_producer_wait_durable(p, &r1, 0), -EINVAL, "nothing published there");
    b = r;
    b.end_position -= 1;
    cr_expect_eq(evb_producer_wait_durable(p, &b, 0), -EINVAL, "not a frame end");
    b = r;
    b.incarnation = 0;
    cr_expect_eq(evb_producer_wait_durable(p, &b, 0), -EINVAL, "a receipt never filled");
    cr_expect_eq(evb_producer_durable_position(p, &b, &pos), -EINVAL);
    cr_expect_eq(evb_producer_durable_position(NULL, &r, &pos), -EINVAL);
    cr_expect_eq(evb_producer_durable_position(p, NULL, &pos), -EINVAL);
    b = r;
    b.partition = 2;
    cr_expect_eq(evb_producer_durable_position(p, &b, &pos), -EINVAL);
    cr_expect_eq(evb_producer_durable_position(p, &r, NULL), -EINVAL);
    /* Whose a receipt is, is not checked (evbus.h): one of another handle
     * ending within P's commits is waited for, rightly. */
    cr_expect_eq(evb_producer_wait_durable(p, &r0, 10000), 0, "%s", evb_last_error());
    /* Another handle's receipt is polled as any (its partition's word). */
    cr_expect_eq(evb_producer_durable_position(p, &r1, &pos), 0, "%s", evb_last_error());
    /* Nothing wrong with asking for what is durable already. */
    cr_expect_eq(evb_producer_wait_durable(p, &r, 10000), 0);
    /* A receipt whose end is 0 is what a failed publish leaves (evbus.h):
     * "durable" would tell its caller the event is on disk. */
    b = r;
    b.end_position = 0;
    evb_err_clear();
    cr_expect_eq(evb_producer_wait_durable(p, &b, 0), -EINVAL, "a failed publish's receipt");
    cr_expect(strstr(evb_last_error(), "end position is 0"), "%s", evb_last_error());
    /* Flag bits that are no EVB_MSG_* are refused, with a message, on
     * every publish path: a mistyped EVB_MSG_SYNC must not publish
     * without the wait for disk. */
    for (uint16_t bit = 4; bit; bit = (uint16_t)(bit << 1)) {
        evb_msg x = m;
        x.flags = EVB_MSG_SYNC | bit;
        evb_err_clear();
        cr_expect_eq(evb_publish(p, &x), -EINVAL, "flag %#x", bit);
        cr_expect(strstr(evb_last_error(), "message flags"), "%s", evb_last_error());
        cr_expect_eq(evb_publish_receipt(p, &x, &r), -EINVAL, "flag %#x", bit);
        cr_expect_eq(evb_publish_batch(p, &x, 1), -EINVAL, "flag %#x", bit);
        evb_msg two[2] = {m, x};
        cr_expect_eq(evb_publish_batch(p, two, 2), 1, "flag %#x: the good one only", bit);
    }
    evb_producer_close(p);
}
