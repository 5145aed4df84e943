/*
 * test_dedup_damage.c - damage inside the files of duplicate suppression
 * (bus/producer_state_format.h, bus/dedup_format.h): a sweep flips each
 * byte of a producer's .seq, a named consumer's .dup and a group's
 * .gdup, one at a time, with a few patterns, and every open must either
 * give the right answer (the sequences the log says, exactly the events a
 * reader with the undamaged file gets) or fail with -EBADMSG (or -EPROTO
 * for the version words) naming the file. Never a wrong answer taken as
 * right.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup_format.h"
#include "producer_state_format.h"
#include "t_helpers.h"

#define ID (EVB_PRODUCER_ID_STABLE | 0x77u)
#define PARTS 2u

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "bus: %s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(dedup_damage, .init = setup, .fini = teardown, .timeout = 120);

/* XOR patterns: the low bit (a gen or position off by one), the high bit,
 * and a whole byte. */
static const uint8_t flips[] = {0x01, 0x80, 0xff};
#define NFLIPS (sizeof flips / sizeof flips[0])

static void create_as(const char *topic, uint64_t ring_bytes, uint32_t durability)
{
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = ring_bytes,
                           .segment_bytes = 1 << 20, .durability = durability};
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "create: %s", evb_last_error());
}

static void create(const char *topic, uint64_t ring_bytes)
{
    create_as(topic, ring_bytes, EVB_DURABILITY_NONE);
}

static evb_producer *stable(const char *topic)
{
    evb_producer_options po = {.block_ms = -1, .producer_id = ID};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, &po), 0, "%s", evb_last_error());
    return p;
}

/* Publish to PART with sequence SEQ (EVB_SEQ_LIMIT: the next one). */
static void pub(evb_producer *p, uint32_t part, uint64_t seq, uint32_t value_len)
{
    static char buf[4096];
    evb_msg m = {.value = buf, .value_len = value_len, .partition = (int32_t)part};
    if (seq != EVB_SEQ_LIMIT) {
        m.flags = EVB_MSG_SEQ;
        m.seq = seq;
    }
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
}

struct snap {
    char path[512];
    uint8_t *bytes;
    size_t n;
};

static void snap_take(struct snap *s, const char *fmt, const char *topic, const char *name)
{
    snprintf(s->path, sizeof s->path, fmt, t_bus_dir(), topic, name);
    FILE *f = fopen(s->path, "rb");
    cr_assert(f, "%s", s->path);
    fseek(f, 0, SEEK_END);
    s->n = (size_t)ftell(f);
    rewind(f);
    s->bytes = malloc(s->n);
    cr_assert(s->bytes);
    cr_assert_eq(fread(s->bytes, 1, s->n, f), s->n);
    fclose(f);
}

/* Put the snapshot back, with byte AT xor-ed with X (X 0: as it was). */
static void snap_put(const struct snap *s, size_t at, uint8_t x)
{
    int fd = open(s->path, O_WRONLY);
    cr_assert_geq(fd, 0, "%s", s->path);
    cr_assert_eq(pwrite(fd, s->bytes, s->n, 0), (ssize_t)s->n);
    uint8_t b = s->bytes[at] ^ x;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)at), 1);
    close(fd);
}

/* A refusal must be -EBADMSG (-EPROTO in the version and format words)
 * naming the file. */
static void assert_refusal(int rc, const struct snap *s, size_t at)
{
    const char *base = strrchr(s->path, '/') + 1;
    cr_assert(rc == -EBADMSG || (rc == -EPROTO && at < 24), "byte %zu: %s (%s)", at,
              evb_strerror(rc), evb_last_error());
    cr_assert(strstr(evb_last_error(), base), "byte %zu: the message does not name %s: %s",
              at, base, evb_last_error());
}

/* Open the stable id over the damaged .seq: it works and each partition's
 * last sequence is WANT's, or it is refused. Returns 1 when refused. */
static int seq_try(const char *topic, const struct snap *s, size_t at, const uint64_t *want)
{
    evb_producer_options po = {.block_ms = -1, .producer_id = ID};
    evb_producer *p;
    int rc = evb_producer_open(&p, bus, topic, &po);
    if (rc) {
        assert_refusal(rc, s, at);
        return 1;
    }
    for (uint32_t i = 0; i < PARTS; i++) {
        uint64_t last = 0;
        cr_assert_eq(evb_producer_last_seq(p, i, &last), 0, "byte %zu partition %u", at, i);
        cr_assert_eq(last, want[i], "byte %zu partition %u: last sequence %llu, the log's "
                     "is %llu", at, i, (unsigned long long)last, (unsigned long long)want[i]);
    }
    evb_producer_close(p);
    return 0;
}

/* Every byte of the .seq, each pattern. Returns refusals; *RECORDS counts
 * the opens that worked with the damage inside a partition's entry. */
static int seq_sweep(const char *topic, const uint64_t *want, int *records)
{
    struct snap s;
    char name[16];
    snprintf(name, sizeof name, "%08x", ID);
    snap_take(&s, "%s/%s/producers/%s.seq", topic, name);
    cr_assert_eq(s.n, EVB_PST_HDR_BYTES + PARTS * EVB_PST_ENTRY_BYTES);
    int refused = 0;
    *records = 0;
    for (size_t at = 0; at < s.n; at++)
        for (size_t k = 0; k < NFLIPS; k++) {
            snap_put(&s, at, flips[k]);
            int r = seq_try(topic, &s, at, want);
            refused += r;
            if (!r && at >= EVB_PST_HDR_BYTES)
                (*records)++;
        }
    snap_put(&s, 0, 0);
    free(s.bytes);
    return refused;
}

/* A ring that holds each partition from its first event: damage to an
 * entry is learned again from the ring, so every open works and says
 * what the log says; damage to the header is refused or harmless. */
Test(dedup_damage, seq_damage_is_relearned_from_a_whole_ring)
{
    create("w", 1 << 20);
    evb_producer *p = stable("w");
    for (int i = 0; i < 10; i++)
        pub(p, 0, EVB_SEQ_LIMIT, 16);
    for (int i = 0; i < 5; i++)
        pub(p, 1, EVB_SEQ_LIMIT, 16);
    pub(p, 1, 20, 16); /* a gap */
    pub(p, 1, 3, 16);  /* a republish: the next sequence stays */
    evb_producer_close(p);
    uint64_t want[PARTS] = {9, 20};
    int records;
    int refused = seq_sweep("w", want, &records);
    cr_assert_eq(records, (int)(PARTS * EVB_PST_ENTRY_BYTES * NFLIPS),
                 "every entry byte relearned or harmless");
    cr_assert_gt(refused, 0, "no header damage refused");
}

/* A durable topic whose disk log holds every event: the same, relearned
 * from the segments and the ring. */
Test(dedup_damage, seq_damage_is_relearned_from_a_durable_log)
{
    create_as("dw", 64 << 10, EVB_DURABILITY_ASYNC);
    evb_producer *p = stable("dw");
    for (int i = 0; i < 60; i++)
        pub(p, 0, EVB_SEQ_LIMIT, 2048); /* laps the ring: read from disk */
    pub(p, 1, 7, 16);
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    uint64_t want[PARTS] = {59, 7};
    int records;
    seq_sweep("dw", want, &records);
    cr_assert_eq(records, (int)(PARTS * EVB_PST_ENTRY_BYTES * NFLIPS));
}

/* Partition 0's ring has lapped its first events: its sequences cannot be
 * learned again, so damage to its current record is refused; partition
 * 1's is still whole and relearned. */
Test(dedup_damage, seq_damage_is_refused_when_the_ring_lapped)
{
    create("l", 64 << 10);
    evb_producer *p = stable("l");
    for (int i = 0; i < 100; i++)
        pub(p, 0, EVB_SEQ_LIMIT, 2048);
    for (int i = 0; i < 5; i++)
        pub(p, 1, EVB_SEQ_LIMIT, 16);
    evb_producer_close(p);
    uint64_t want[PARTS] = {99, 4};
    int records;
    int refused = seq_sweep("l", want, &records);
    /* Partition 0's cur word and current record: refused, each pattern;
     * its other record and all of partition 1's: relearned or unread. */
    int p0 = (int)((8 + EVB_PST_REC_BYTES) * NFLIPS);
    cr_assert_geq(refused, p0, "refused %d, partition 0's live bytes alone are %d", refused,
                  p0);
    cr_assert_geq(records, (int)((EVB_PST_ENTRY_BYTES + EVB_PST_REC_BYTES) * NFLIPS));
}

/* ---- duplicate tables ---- */

struct got {
    uint32_t n;
    uint64_t seq[64];
    uint32_t part[64];
};

static int read_rest(evb_consumer *c, struct got *g)
{
    evb_event ev;
    int rc;
    g->n = 0;
    while ((rc = evb_consumer_next(c, &ev, 0)) == 0) {
        cr_assert_lt(g->n, 64u);
        g->seq[g->n] = ev.producer_seq;
        g->part[g->n++] = ev.partition;
    }
    return rc == -EAGAIN ? 0 : rc;
}

/* Both partitions: 0..9, a commit after 0..4 and after 0..9 on each (so
 * both slots of each partition are in use), then copies of 3..9 and the
 * new 10 and 11 on partition 0, copies of 2..4 on partition 1. */
static void dup_history(const char *topic, const evb_consumer_options *co)
{
    create(topic, 1 << 20);
    evb_producer *p = stable(topic);
    for (uint32_t i = 0; i < PARTS; i++)
        for (int k = 0; k < 5; k++)
            pub(p, i, EVB_SEQ_LIMIT, 16);
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, topic, co), 0, "%s", evb_last_error());
    struct got g;
    cr_assert_eq(read_rest(c, &g), 0);
    cr_assert_eq(g.n, 10u);
    cr_assert_eq(evb_consumer_commit(c), 0, "%s", evb_last_error());
    for (uint32_t i = 0; i < PARTS; i++)
        for (int k = 0; k < 5; k++)
            pub(p, i, EVB_SEQ_LIMIT, 16);
    cr_assert_eq(read_rest(c, &g), 0);
    cr_assert_eq(g.n, 10u);
    cr_assert_eq(evb_consumer_commit(c), 0, "%s", evb_last_error());
    evb_consumer_close(c);
    for (uint64_t s = 3; s < 12; s++)
        pub(p, 0, s, 16);
    for (uint64_t s = 2; s < 5; s++)
        pub(p, 1, s, 16);
    evb_producer_close(p);
}

/* Every byte of the table file, each pattern: the reader opens and gets
 * exactly 10 and 11 of partition 0, or is refused naming the file. */
static void dup_sweep(const char *topic, const char *name, const evb_consumer_options *co)
{
    struct snap s, cur;
    bool named = co->kind == EVB_CONSUMER;
    snap_take(&s, named ? "%s/%s/consumers/%s.dup" : "%s/%s/consumers/%s.gdup", topic, name);
    cr_assert_eq(s.n, evb_dup_file_bytes(PARTS));
    /* The cursor too (named consumers), so nothing moves between rounds. */
    if (named)
        snap_take(&cur, "%s/%s/consumers/%s.cur", topic, name);
    int refused = 0, opened = 0;
    for (size_t at = 0; at < s.n; at++) {
        /* The tail of each slot's entries beyond count is never read: a
         * few of its bytes stand for all of them. */
        size_t in_slot = at < EVB_DUP_HDR_BYTES ? 0 : (at - EVB_DUP_HDR_BYTES) % EVB_DUP_SLOT_BYTES;
        if (in_slot > EVB_DUP_SLOT_HDR_BYTES + 2 * EVB_DUP_ENTRY_BYTES && in_slot % 97)
            continue;
        for (size_t k = 0; k < NFLIPS; k++) {
            snap_put(&s, at, flips[k]);
            if (named)
                snap_put(&cur, 0, 0);
            evb_consumer *c;
            int rc = evb_consumer_open(&c, bus, topic, co);
            if (rc) {
                assert_refusal(rc, &s, at);
                refused++;
                continue;
            }
            opened++;
            struct got g;
            cr_assert_eq(read_rest(c, &g), 0, "byte %zu: %s", at, evb_last_error());
            cr_assert_eq(g.n, 2u, "byte %zu ^ 0x%02x: %u events delivered, not 2 (10 and "
                         "11 of partition 0)", at, flips[k], g.n);
            for (uint32_t j = 0; j < 2; j++)
                cr_assert(g.part[j] == 0 && g.seq[j] == 10 + j, "byte %zu: got %u:%llu", at,
                          g.part[j], (unsigned long long)g.seq[j]);
            evb_consumer_close(c);
        }
    }
    cr_assert_gt(refused, 0);
    cr_assert_gt(opened, 0);
    free(s.bytes);
    if (named)
        free(cur.bytes);
}

Test(dedup_damage, dup_damage_is_refused_or_harmless)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    dup_history("d", &co);
    co.start = EVB_START_DEFAULT;
    dup_sweep("d", "c", &co);
}

Test(dedup_damage, group_dup_damage_is_refused_or_harmless)
{
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    dup_history("gd", &co);
    co.start = EVB_START_DEFAULT;
    dup_sweep("gd", "g", &co);
}

/* ---- a kill mid-update is not damage ---- */

struct kill_at {
    const char *point;
    int skip;
    const char *topic;
};

static int publisher_dies(void *arg)
{
    const struct kill_at *k = arg;
    char skip[16];
    snprintf(skip, sizeof skip, "%d", k->skip);
    setenv("EVB_CRASH_AT", k->point, 1);
    setenv("EVB_CRASH_SKIP", skip, 1);
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.block_ms = -1, .producer_id = ID};
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, k->topic, &po))
        return 10;
    char v[2048] = {0};
    for (int i = 0; i < 20; i++)
        if (evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v, .partition = 0}))
            return 11;
    return 12;
}

/* The highest sequence of ID in partition 0 the ring still holds. */
static uint64_t ring_last_seq(const char *topic)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .only_partition = 1, .partition = 0};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0, "%s", evb_last_error());
    evb_event ev;
    uint64_t last = 0, lag = 1;
    /* Past a hole a killed claim left (padded once its holder is seen
     * dead) to the tail. */
    for (int rc; (rc = evb_consumer_next(c, &ev, 100)) == 0 ||
                 (rc == -ETIMEDOUT && evb_consumer_lag(c, &lag) == 0 && lag > 0);)
        if (rc == 0 && ev.producer_id == ID && ev.producer_seq > last)
            last = ev.producer_seq;
    evb_consumer_close(c);
    return last;
}

/* On a ring that lapped the id's first events (so a damaged state would be
 * refused, not relearned), a publisher killed inside each of its state
 * updates in turn: the next open works and goes on from what the log
 * holds. */
Test(dedup_damage, seq_update_killed_midway_reads_before_or_after)
{
    create("k", 64 << 10);
    evb_producer *p = stable("k");
    for (int i = 0; i < 100; i++)
        pub(p, 0, EVB_SEQ_LIMIT, 2048);
    evb_producer_close(p);
    const char *points[] = {"pstate.half_record", "pstate.before_cur"};
    for (int pt = 0; pt < 2; pt++)
        for (int skip = 0; skip < 9; skip++) {
            struct kill_at k = {points[pt], skip, "k"};
            pid_t pid = t_spawn(publisher_dies, &k);
            cr_assert_eq(t_wait_exit(pid, 20000), 128 + SIGKILL, "%s skip %d", k.point, skip);
            evb_producer_options po = {.block_ms = -1, .producer_id = ID};
            int rc = evb_producer_open(&p, bus, "k", &po);
            cr_assert_eq(rc, 0, "%s skip %d: %s", k.point, skip, evb_last_error());
            uint64_t last;
            cr_assert_eq(evb_producer_last_seq(p, 0, &last), 0);
            uint64_t want = ring_last_seq("k");
            cr_assert_eq(last, want, "%s skip %d: last %llu, the ring's %llu", k.point, skip,
                         (unsigned long long)last, (unsigned long long)want);
            evb_producer_close(p);
        }
}

static int committer_dies(void *arg)
{
    const struct kill_at *k = arg;
    char skip[16];
    snprintf(skip, sizeof skip, "%d", k->skip);
    setenv("EVB_CRASH_AT", "dedup.half_slot", 1);
    setenv("EVB_CRASH_SKIP", skip, 1);
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "k",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_consumer_open(&c, b, k->topic, &co))
        return 10;
    for (;;) {
        evb_event ev;
        if (evb_consumer_next(c, &ev, 1000))
            return 11;
        evb_consumer_commit(c);
    }
}

/* A named consumer killed inside the rewrite of a slot, at its K-th
 * commit: the cursor stays at commit K - 1 and the table there is whole,
 * so it reads K - 1.. again, and drops every later copy. */
Test(dedup_damage, dup_save_killed_midway_keeps_the_old_table)
{
    char topic[16];
    for (int skip = 0; skip < 6; skip++) {
        snprintf(topic, sizeof topic, "h%d", skip);
        evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20};
        cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "%s", evb_last_error());
        evb_producer *p = stable(topic);
        for (int i = 0; i < 10; i++)
            pub(p, 0, EVB_SEQ_LIMIT, 16);
        struct kill_at k = {NULL, skip, topic};
        pid_t pid = t_spawn(committer_dies, &k);
        cr_assert_eq(t_wait_exit(pid, 20000), 128 + SIGKILL, "skip %d", skip);
        for (uint64_t s = 0; s < 10; s++)
            pub(p, 0, s, 16); /* copies */
        pub(p, 0, EVB_SEQ_LIMIT, 16); /* 10 */
        evb_producer_close(p);
        evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "k",
                                   .flags = EVB_CONSUMER_DEDUP};
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0, "skip %d: %s", skip,
                     evb_last_error());
        struct got g;
        cr_assert_eq(read_rest(c, &g), 0);
        /* Commit number skip + 1 died: skip events committed. */
        cr_assert_eq(g.n, 11u - (uint32_t)skip, "skip %d: %u events", skip, g.n);
        for (uint32_t j = 0; j < g.n; j++)
            cr_assert_eq(g.seq[j], (uint64_t)skip + j, "skip %d: event %u", skip, j);
        evb_consumer_close(c);
    }
}
