/*
 * test_retention.c - retention applied when no producer is live (the last
 * producer's close, any open of the topic, a consumer's commit, an explicit
 * evb_topic_retain), and named consumers that opened but never committed:
 * they protect the log from where they joined.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "durable_fixture.h"

TestSuite(retention, .init = df_setup, .fini = df_teardown, .timeout = 120);

/* One partition, 64 KiB ring, 128 KiB segments: ~1000 events a segment. */
static void create(const char *topic, uint64_t retain_bytes, uint64_t retain_ms, bool consumed)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_ASYNC);
    tc.retain_bytes = retain_bytes;
    tc.retain_ms = retain_ms;
    tc.flags = consumed ? EVB_TOPIC_RETAIN_UNTIL_CONSUMED : 0;
    df_create(topic, &tc);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static evb_consumer *named(const char *topic, const char *name, uint32_t start)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = name, .start = start};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, topic, &co), 0, "consumer: %s", evb_last_error());
    return c;
}

/* The last producer goes away: its flusher's last pass applies retention,
 * not the next producer whenever it comes. */
Test(retention, applied_when_the_last_producer_closes)
{
    create("r", 256 << 10, 0, false);
    df_publish("r", 0, 20000); /* ~2.4 MiB: ~19 segments */
    struct evb_partition_stat st = df_stat("r");
    /* Two kept by retain_bytes, perhaps one built ahead. */
    cr_expect_leq(st.segments, 3u, "%u segments left after the producer closed", st.segments);
    cr_expect_gt(st.log_start_offset, 0u);
}

/* Segments that age past retain_ms while nobody produces go at the next
 * open of the topic, whatever opens it. */
Test(retention, by_age_applied_by_an_open_without_producers)
{
    create("a", 0, 300, false);
    df_publish("a", 0, 5000); /* ~5 segments */
    cr_assert_geq(df_stat("a").segments, 4u);
    nap_ms(500);
    cr_expect_geq(df_stat("a").segments, 4u, "stat must not apply retention");
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, "a", &co), 0, "%s", evb_last_error());
    evb_consumer_close(c);
    struct evb_partition_stat st = df_stat("a");
    cr_expect_leq(st.segments, 2u, "%u segments older than retain_ms left", st.segments);
    cr_expect_gt(st.log_start_offset, 0u);
}

/* A named consumer that opened and never committed holds the log from
 * where it started: all of it when it started at the earliest event. */
Test(retention, an_uncommitted_consumer_protects_from_its_start)
{
    create("u", 256 << 10, 0, true);
    evb_consumer_close(named("u", "late", EVB_START_EARLIEST));
    df_publish("u", 0, 10000); /* ~10 segments */
    struct evb_partition_stat st = df_stat("u");
    cr_expect_geq(st.segments, 9u, "retention removed what 'late' never read: %u left",
                  st.segments);
    cr_expect_eq(st.log_start_offset, 0u);
    /* It comes back and reads everything from the first event. */
    evb_consumer *c = named("u", "late", EVB_START_COMMITTED);
    cr_expect_eq(df_next(c, 0).lost_events, 0u);
    evb_consumer_close(c);
}

/* One that joined at the tail protects what came after, not before. */
Test(retention, an_uncommitted_consumer_protects_only_after_it_joined)
{
    create("j", 256 << 10, 0, true);
    evb_consumer_close(named("j", "first", EVB_START_EARLIEST));
    df_publish("j", 0, 10000);
    /* 'first' reads it all and commits: nothing before it is held. */
    evb_consumer *c = named("j", "first", EVB_START_COMMITTED);
    df_read(c, 0, 10000);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer *mid = named("j", "mid", EVB_START_LATEST);
    uint64_t joined = 10000;
    evb_consumer_close(mid);
    df_publish("j", joined, 10000);
    df_read(c, joined, 10000);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
    struct evb_partition_stat st = df_stat("j");
    cr_expect_leq(st.log_start_offset, joined, "retention removed what 'mid' never read");
    cr_expect_gt(st.log_start_offset, joined - 2000,
                 "log start %llu: what came before 'mid' joined is still held",
                 (unsigned long long)st.log_start_offset);
    mid = named("j", "mid", EVB_START_COMMITTED);
    cr_expect_eq(df_next(mid, joined).lost_events, 0u);
    evb_consumer_close(mid);
}

/* With no producer left, a consumer's commit lets go of what it read. */
Test(retention, a_commit_without_producers_releases_segments)
{
    create("c", 256 << 10, 0, true);
    evb_consumer *c = named("c", "slow", EVB_START_EARLIEST);
    cr_assert_eq(evb_consumer_commit(c), 0);
    df_publish("c", 0, 10000);
    cr_assert_geq(df_stat("c").segments, 9u);
    df_read(c, 0, 5000);
    cr_assert_eq(evb_consumer_commit(c), 0);
    struct evb_partition_stat st = df_stat("c");
    cr_expect_leq(st.segments, 7u, "%u segments after the commit", st.segments);
    cr_expect_gt(st.log_start_offset, 0u);
    cr_expect_leq(st.log_start_offset, 5000u);
    evb_consumer_close(c);
}

/* Nobody opens the topic: evb_topic_retain() applies it, and says how
 * many partitions it left to a live flusher (none here). */
Test(retention, evb_topic_retain_applies_it_now)
{
    create("t", 0, 300, false);
    df_publish("t", 0, 5000);
    cr_assert_geq(df_stat("t").segments, 4u);
    nap_ms(500);
    cr_assert_eq(evb_topic_retain(df_bus, "t"), 0, "%s", evb_last_error());
    cr_expect_leq(df_stat("t").segments, 2u);
    cr_expect_eq(evb_topic_retain(df_bus, "nope"), -ENOENT);
    evb_topic_config tc = {.partitions = 1};
    cr_assert_eq(evb_topic_create(df_bus, "mem", &tc), 0);
    cr_expect_eq(evb_topic_retain(df_bus, "mem"), -EINVAL);
}

/* A live flusher keeps its partitions; retain leaves them to it. */
Test(retention, evb_topic_retain_leaves_a_live_flusher_alone)
{
    create("l", 256 << 10, 0, false);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, "l", NULL), 0);
    cr_expect_eq(evb_topic_retain(df_bus, "l"), 1);
    evb_producer_close(p);
    cr_expect_eq(evb_topic_retain(df_bus, "l"), 0);
}

/* Groups hold the log too: a partition group at its committed cursor, a
 * queue group at its floor (the oldest event not acknowledged). Each
 * joined at the earliest event and left; retention keeps everything; once
 * each has read and settled half, it lets go of that half only. */
static evb_consumer *grouped(const char *topic, const char *name, uint32_t kind)
{
    evb_consumer_options co = {.kind = kind, .name = name, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, topic, &co), 0, "%s: %s", name,
                 evb_last_error());
    return c;
}

Test(retention, groups_hold_the_log_at_their_commits)
{
    const uint32_t kinds[2] = {EVB_GROUP_MEMBER, EVB_QUEUE_MEMBER};
    const char *topics[2] = {"gp", "gq"};
    for (int k = 0; k < 2; k++) {
        create(topics[k], 256 << 10, 0, true);
        evb_consumer_close(grouped(topics[k], "g", kinds[k]));
        df_publish(topics[k], 0, 10000);
        struct evb_partition_stat st = df_stat(topics[k]);
        cr_expect_geq(st.segments, 9u, "%s: retention removed what group g never read: %u left",
                      topics[k], st.segments);
        cr_expect_eq(st.log_start_offset, 0u, "%s", topics[k]);
        evb_consumer *c = grouped(topics[k], "g", kinds[k]);
        for (uint64_t i = 0; i < 5000; i++) {
            evb_event ev;
            cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s: %s", topics[k],
                         evb_last_error());
            cr_assert_eq(ev.offset, i, "%s", topics[k]);
            if (kinds[k] == EVB_QUEUE_MEMBER)
                cr_assert_eq(evb_consumer_ack(c, &ev), 0, "%s", evb_last_error());
        }
        if (kinds[k] == EVB_GROUP_MEMBER)
            cr_assert_eq(evb_consumer_commit(c), 0, "%s", evb_last_error());
        cr_assert_eq(evb_topic_retain(df_bus, topics[k]), 0, "%s", evb_last_error());
        st = df_stat(topics[k]);
        cr_expect_gt(st.log_start_offset, 0u, "%s: nothing released", topics[k]);
        cr_expect_leq(st.log_start_offset, 5000u, "%s: released past the group's commit",
                      topics[k]);
        evb_consumer_close(c);
    }
}

/* A cursor or group file that cannot be read holds the log: its reader's
 * commit is unknown. (A failed read counted as "no commit", and retention
 * removed what a consumer that never read it still needed.) */
Test(retention, an_unreadable_commit_holds_the_log)
{
    const uint32_t kinds[3] = {EVB_CONSUMER, EVB_GROUP_MEMBER, EVB_QUEUE_MEMBER};
    const char *topics[3] = {"fc", "fg", "fq"}, *suffix[3] = {".cur", ".grp", ".grp"};
    for (int k = 0; k < 3; k++) {
        create(topics[k], 256 << 10, 0, true);
        evb_consumer_close(grouped(topics[k], "g", kinds[k]));
        df_fail_reads(suffix[k]);
        df_publish(topics[k], 0, 10000);
        cr_assert_gt(df_fail_reads(NULL), 0u, "%s: no read failed", topics[k]);
        struct evb_partition_stat st = df_stat(topics[k]);
        cr_expect_geq(st.segments, 9u, "%s: retention went past an unread commit: %u left",
                      topics[k], st.segments);
        cr_expect_eq(st.log_start_offset, 0u, "%s", topics[k]);
        /* Readable again: the consumer reads from its first event. */
        evb_consumer *c = grouped(topics[k], "g", kinds[k]);
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s: %s", topics[k], evb_last_error());
        cr_expect_eq(ev.offset, 0u, "%s", topics[k]);
        cr_expect_eq(ev.lost_events, 0u, "%s", topics[k]);
        evb_consumer_close(c);
    }
}
