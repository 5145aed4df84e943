/*
 * test_claim_paths.c - evb_claim's ways out of its common case (a claim
 * with no key, no stable id, an attached partition and room under the
 * cached limit goes through claim_one; everything else through
 * claim_part): each must pick the same partition evb_publish would, keep
 * per-partition sequences gap-free, and wait or fail on a full ring as
 * block_ms says.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring.h"
#include "t_helpers.h"

#define VLEN 48u
#define PARTS 3u

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options bo = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0, "%s", evb_last_error());
    /* The smallest ring, so that a handful of claims fill it. */
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = 64 << 10,
                           .max_event_bytes = 1024};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(claim_paths, .init = setup, .fini = teardown, .timeout = 60);

static evb_producer *producer(uint32_t id, int32_t block_ms)
{
    evb_producer_options po = {.producer_id = id, .block_ms = block_ms};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", &po), 0, "%s", evb_last_error());
    return p;
}

/* One event of who/seq by a claim (KEY may be NULL) or a publish; its
 * partition. */
static uint32_t put(evb_producer *p, bool claim, const char *key, uint64_t seq)
{
    uint32_t klen = key ? (uint32_t)strlen(key) : 0;
    if (claim) {
        struct evb_claim c;
        cr_assert_eq(evb_claim(p, EVB_PARTITION_ANY, key, klen, VLEN, &c), 0, "%s",
                     evb_last_error());
        t_value_fill(c.value, VLEN, 1, seq);
        cr_assert_eq(evb_commit(p, &c), 0, "%s", evb_last_error());
        return c.partition;
    }
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 1, seq);
    evb_msg m = {.key = key, .key_len = klen, .value = v, .value_len = VLEN,
                 .partition = EVB_PARTITION_ANY};
    evb_receipt r;
    cr_assert_eq(evb_publish_receipt(p, &m, &r), 0, "%s", evb_last_error());
    return r.partition;
}

/* Every event of the topic: per partition, producer sequences 0, 1, ...
 * without a gap, values intact; returns the count. */
static uint32_t check_all(void)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "%s", evb_last_error());
    uint64_t next[PARTS] = {0};
    uint32_t n = 0;
    evb_event ev;
    while (evb_consumer_next(c, &ev, 100) == 0) {
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq), "event %u damaged", n);
        cr_assert_eq(ev.producer_seq, next[ev.partition], "partition %u: sequence %llu, "
                     "expected %llu", ev.partition, (unsigned long long)ev.producer_seq,
                     (unsigned long long)next[ev.partition]);
        next[ev.partition]++;
        n++;
    }
    evb_consumer_close(c);
    return n;
}

/* Keyless claims and publishes share one round robin: each call moves it
 * on by exactly one, whichever path it took (the first claim of a
 * partition attaches it, the slow way; later ones are the common case). */
Test(claim_paths, round_robin_shared_with_publish)
{
    evb_producer *p = producer(0, 0);
    uint32_t last = put(p, true, NULL, 0);
    for (uint32_t i = 1; i < 30; i++) {
        uint32_t part = put(p, i % 2 == 0, NULL, i);
        cr_assert_eq(part, (last + 1) % PARTS, "call %u went to %u after %u", i, part, last);
        last = part;
    }
    evb_producer_close(p);
    cr_assert_eq(check_all(), 30);
}

/* A keyed claim goes where a keyed publish of the same key goes. */
Test(claim_paths, keyed_claim_hashes_like_publish)
{
    evb_producer *p = producer(0, 0);
    char key[16];
    for (uint32_t i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%u", i);
        uint32_t a = put(p, false, key, 2 * i);
        uint32_t b = put(p, true, key, 2 * i + 1);
        cr_assert_eq(a, b, "key %s: publish to %u, claim to %u", key, a, b);
    }
    evb_producer_close(p);
    cr_assert_eq(check_all(), 40);
    /* And carries its key. */
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "%s", evb_last_error());
    evb_event ev;
    uint32_t n = 0;
    while (evb_consumer_next(c, &ev, 100) == 0) {
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq));
        snprintf(key, sizeof key, "k%u", (unsigned)(seq / 2));
        cr_assert(ev.key_len == strlen(key) && !memcmp(ev.key, key, ev.key_len),
                  "event %llu: key %.*s, expected %s", (unsigned long long)seq,
                  (int)ev.key_len, (const char *)ev.key, key);
        n++;
    }
    evb_consumer_close(c);
    cr_assert_eq(n, 40);
}

/* A stable producer's claims record their state (claim_part): one
 * SIGKILLed inside the commit of its 11th claim, after the event is
 * published and before its state says so, is followed by one that knows
 * the event went out (sequence 10), and goes on at 11. */
static int stable_claims_then_die(void *arg)
{
    (void)arg;
    setenv("EVB_CRASH_AT", "finish.after_cas", 1);
    setenv("EVB_CRASH_SKIP", "10", 1);
    evb_producer *p = producer(EVB_PRODUCER_ID_STABLE | 0x77u, 0);
    for (uint32_t i = 0; i < 11; i++) {
        struct evb_claim c;
        if (evb_claim(p, 0, NULL, 0, VLEN, &c))
            return 10;
        t_value_fill(c.value, VLEN, 1, i);
        if (evb_commit(p, &c))
            return 11;
    }
    return 12;
}

Test(claim_paths, stable_claim_killed_after_commit_counts)
{
    pid_t pid = t_spawn(stable_claims_then_die, NULL);
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL);
    evb_producer *p = producer(EVB_PRODUCER_ID_STABLE | 0x77u, 0);
    uint64_t seq;
    cr_assert_eq(evb_producer_last_seq(p, 0, &seq), 0, "%s", evb_last_error());
    cr_assert_eq(seq, 10, "last sequence %llu", (unsigned long long)seq);
    struct evb_claim c;
    cr_assert_eq(evb_claim(p, 0, NULL, 0, VLEN, &c), 0, "%s", evb_last_error());
    t_value_fill(c.value, VLEN, 1, 11);
    cr_assert_eq(evb_commit(p, &c), 0);
    evb_producer_close(p);
    cr_assert_eq(check_all(), 12);
}

/* A full ring: with block_ms 0 a claim says -EAGAIN at once, with 100 it
 * says -ETIMEDOUT after about that; an aborted claim gives its sequence
 * back; once the gating reader moves on, claims go through again. */
Test(claim_paths, full_ring_waits_per_block_ms)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    evb_consumer *gate;
    cr_assert_eq(evb_consumer_open(&gate, bus, "t", &co), 0, "%s", evb_last_error());
    evb_producer *p = producer(0, 0);
    struct evb_claim c;
    uint32_t n = 0;
    int rc;
    while ((rc = evb_claim(p, 0, NULL, 0, VLEN, &c)) == 0) {
        t_value_fill(c.value, VLEN, 1, n);
        cr_assert_eq(evb_commit(p, &c), 0);
        if (++n == 100000)
            break;
    }
    cr_assert_eq(rc, -EAGAIN, "a full ring with block_ms 0: %d after %u claims", rc, n);
    cr_assert_gt(n, 100);
    /* An abort on the way: nothing published, its sequence reused. */
    evb_producer *w = producer(0, 100);
    uint64_t t0 = t_now_ms();
    cr_assert_eq(evb_claim(w, 0, NULL, 0, VLEN, &c), -ETIMEDOUT);
    uint64_t took = t_now_ms() - t0;
    cr_assert(took >= 90 && took < 5000, "block_ms 100 waited %llu ms",
              (unsigned long long)took);
    evb_event ev;
    for (uint32_t i = 0; i < 50; i++)
        cr_assert_eq(evb_consumer_next(gate, &ev, 100), 0);
    cr_assert_eq(evb_consumer_next(gate, &ev, 0), 0); /* releases the 50 read */
    cr_assert_eq(evb_claim(p, 0, NULL, 0, VLEN, &c), 0, "%s", evb_last_error());
    cr_assert_eq(evb_abort(p, &c), 0);
    cr_assert_eq(evb_claim(p, 0, NULL, 0, VLEN, &c), 0, "%s", evb_last_error());
    t_value_fill(c.value, VLEN, 1, n);
    cr_assert_eq(evb_commit(p, &c), 0);
    evb_producer_close(w);
    evb_producer_close(p);
    /* The gating reader sees every event, the aborted one's sequence used
     * by the next. */
    uint32_t got = 51;
    while (evb_consumer_next(gate, &ev, 100) == 0) {
        cr_assert_eq(ev.producer_seq, got, "sequence %llu, expected %u",
                     (unsigned long long)ev.producer_seq, got);
        got++;
    }
    cr_assert_eq(got, n + 1);
    evb_consumer_close(gate);
}

/* Fill partition 0 with block_ms 0 claims until the ring says -EAGAIN. */
static void fill_ring(evb_producer *p)
{
    struct evb_claim c;
    int rc;
    for (uint32_t n = 0; (rc = evb_claim(p, 0, NULL, 0, VLEN, &c)) == 0; n++) {
        cr_assert_lt(n, 100000u, "the ring never filled");
        t_value_fill(c.value, VLEN, 1, n);
        cr_assert_eq(evb_commit(p, &c), 0, "%s", evb_last_error());
    }
    cr_assert_eq(rc, -EAGAIN, "%s", evb_last_error());
}

/* A wait for room that runs out, and its text holds every one of the
 * NULL-ended WORDS. */
static void times_out_naming(evb_producer *w, const char *const *words)
{
    evb_clear_error();
    evb_msg m = {.value = "x", .value_len = 1, .partition = 0};
    cr_assert_eq(evb_publish(w, &m), -ETIMEDOUT, "%s", evb_last_error());
    const char *e = evb_last_error();
    for (; *words; words++)
        cr_assert(strstr(e, *words), "'%s' not in: %s", *words, e);
}

/* A wait for room that runs out says what holds the ring, and where: a
 * lossless subscriber, a named consumer, by pid. */
Test(claim_paths, a_full_ring_s_timeout_names_the_reader_that_holds_it)
{
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    evb_consumer *gate;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    cr_assert_eq(evb_consumer_open(&gate, bus, "t", &co), 0, "%s", evb_last_error());
    evb_producer *p = producer(0, 0), *w = producer(0, 50);
    fill_ring(p);
    times_out_naming(w, (const char *const[]){"partition 0", "stayed full for 50 ms",
                                               "a lossless subscriber", pid,
                                               "has not read past position 0", NULL});
    evb_consumer_close(gate);

    evb_consumer *named;
    co = (evb_consumer_options){.kind = EVB_CONSUMER, .name = "slow-reader",
                                .start = EVB_START_LATEST};
    cr_assert_eq(evb_consumer_open(&named, bus, "t", &co), 0, "%s", evb_last_error());
    fill_ring(p);
    times_out_naming(w, (const char *const[]){"consumer 'slow-reader'", pid, NULL});
    evb_consumer_close(named);
    evb_producer_close(w);
    evb_producer_close(p);
}

/* A child that claims on partition 0 and stops itself before its commit. */
static int claim_and_stop(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_producer *p;
    struct evb_claim c;
    if (evb_bus_open(&b, t_bus_dir(), &(evb_bus_options){.data_dir = t_data_dir()}) ||
        evb_producer_open(&p, b, "t", &(evb_producer_options){0}) ||
        evb_claim(p, 0, NULL, 0, VLEN, &c))
        return 1;
    raise(SIGSTOP);
    return evb_commit(p, &c) ? 2 : 0;
}

/* A bus that pads a claim stalled past 20 ms, its topic "u" of a 64 KiB
 * ring; *STALL, *FILL producers of it. */
static evb_bus *quick_bus(evb_producer **stall, evb_producer **fill)
{
    evb_bus *b;
    evb_bus_options bo = {.data_dir = t_data_dir(), .stall_ms = 20, .dead_ms = 20};
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &bo), 0, "%s", evb_last_error());
    cr_assert_eq(evb_topic_create(b, "u", &(evb_topic_config){.partitions = 1,
                 .ring_bytes = 64 << 10, .max_event_bytes = 1024}), 0, "%s",
                 evb_last_error());
    cr_assert_eq(evb_producer_open(stall, b, "u", &(evb_producer_options){0}), 0);
    cr_assert_eq(evb_producer_open(fill, b, "u", &(evb_producer_options){0}), 0);
    return b;
}

/* Publish with FILL until the ring is full. */
static void fill_up(evb_producer *fill)
{
    evb_msg m = {.value = "y", .value_len = 1, .partition = 0};
    int rc;
    while ((rc = evb_publish(fill, &m)) == 0)
        ;
    cr_assert_eq(rc, -EAGAIN, "%s", evb_last_error());
}

/* Another producer's claim it has not committed holds the ring (its
 * owner may still write there, padded or not): the text names its pid,
 * says when that process is stopped, and when the claim was padded. */
Test(claim_paths, a_full_ring_s_timeout_names_the_claim_that_holds_it)
{
    pid_t kid = t_spawn(claim_and_stop, NULL);
    int st;
    cr_assert_eq(waitpid(kid, &st, WUNTRACED), kid);
    cr_assert(WIFSTOPPED(st), "the child did not stop: status %#x", st);
    char pid[32];
    snprintf(pid, sizeof pid, "producer pid %d", (int)kid);
    evb_producer *p = producer(0, 0), *w = producer(0, 50);
    fill_ring(p);
    times_out_naming(w, (const char *const[]){pid, "which is stopped", "it has not committed",
                                               "position 0", NULL});
    kill(kid, SIGKILL);
    cr_assert_eq(t_wait_exit(kid, 5000), 128 + SIGKILL);
    evb_producer_close(w);
    evb_producer_close(p);

    /* A claim of this process, stalled past stall_ms and so padded: it
     * still holds the ring. */
    evb_producer *stall, *fill;
    evb_bus *quick = quick_bus(&stall, &fill);
    struct evb_claim held;
    cr_assert_eq(evb_claim(stall, 0, NULL, 0, VLEN, &held), 0, "%s", evb_last_error());
    fill_up(fill);
    evb_msg m = {.value = "y", .value_len = 1, .partition = 0};
    evb_producer *wait;
    cr_assert_eq(evb_producer_open(&wait, quick, "u",
                                   &(evb_producer_options){.block_ms = 300}), 0);
    snprintf(pid, sizeof pid, "producer pid %d", (int)getpid());
    times_out_naming(wait, (const char *const[]){pid, "padded after stall_ms", NULL});
    cr_assert_eq(evb_commit(stall, &held), -ECANCELED);
    /* Said why: the partition, where, the stall, and that it is lost. */
    const char *why[] = {"partition 0", "position", "stall_ms", "not published"};
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
        cr_expect(strstr(evb_last_error(), why[i]), "the detail has no '%s': '%s'", why[i],
                  evb_last_error());
    /* Its commit, refused, let go of the ring. */
    cr_assert_eq(evb_publish(wait, &m), 0, "%s", evb_last_error());
    evb_producer_close(wait);
    evb_producer_close(fill);
    evb_producer_close(stall);
    evb_bus_close(quick);
}

/* A padder that finds the owner's commit decided (X1: its committing word
 * at the claim) finishes that commit with a DATA stamp; the owner's commit
 * then says 0, and the event is there. The common claim's commit takes
 * this path through its fallback (producer.c, commit(..., true)); a
 * fallback that answered -ECANCELED would tell the caller a published
 * event was lost (found by a cold review). The padder runs in the owner's
 * thread, from the crash hook at "commit.decided". */
static evb_bus *quick;
static _Atomic int padded_once, seen_early, padder_rc;
static void *padder(void *arg)
{
    (void)arg;
    evb_producer *w;
    if (evb_producer_open(&w, quick, "u", &(evb_producer_options){.block_ms = 5000})) {
        atomic_store(&padder_rc, -1000);
        return NULL;
    }
    evb_msg m = {.value = "y", .value_len = 1, .partition = 0};
    /* Waits on the ring the open claim holds and pads it, which finishes
     * the commit; goes on once the owner resolves its claim. */
    atomic_store(&padder_rc, evb_publish(w, &m));
    evb_producer_close(w);
    return NULL;
}

static pthread_t padder_thread;
static uint64_t held_offset, held_position;
static void pad_at_decided(const char *name)
{
    if (strcmp(name, "commit.decided") || atomic_exchange(&padded_once, 1))
        return;
    usleep(60000); /* past stall_ms */
    cr_assert_eq(pthread_create(&padder_thread, NULL, padder, NULL), 0);
    /* The padder's DATA stamp makes the event readable before our own. */
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, quick, "u", &(evb_consumer_options){
                     .kind = EVB_SUBSCRIBER, .start = EVB_START_POSITION,
                     .start_value = held_position}), 0, "%s", evb_last_error());
    evb_event ev;
    while (evb_consumer_next(c, &ev, 3000) == 0)
        if (ev.offset == held_offset) {
            uint32_t who = 0;
            uint64_t seq = 0;
            /* 2: whole, as the owner wrote it. */
            atomic_store(&seen_early, ev.value_len == VLEN &&
                                          t_value_check(ev.value, VLEN, &who, &seq) &&
                                          who == 1 && seq == 77 ? 2 : 1);
            break;
        }
    evb_consumer_close(c);
}

Test(claim_paths, a_commit_a_padder_finished_is_published)
{
    evb_producer *owner, *fill;
    quick = quick_bus(&owner, &fill);
    /* Attached first: a producer's first claim in a partition takes the
     * full path, the next ones the common claim this is about. */
    evb_msg first = {.value = "x", .value_len = 1, .partition = 0};
    cr_assert_eq(evb_publish(owner, &first), 0);
    struct evb_claim held;
    cr_assert_eq(evb_claim(owner, 0, NULL, 0, VLEN, &held), 0, "%s", evb_last_error());
    t_value_fill(held.value, VLEN, 1, 77);
    held_offset = held.offset;
    held_position = held.position;
    fill_up(fill);
    atomic_store(&evb_crash_hook, pad_at_decided);
    int rc = evb_commit(owner, &held);
    atomic_store(&evb_crash_hook, NULL);
    cr_assert(atomic_load(&padded_once), "the hook never ran: no commit.decided point");
    cr_assert_eq(pthread_join(padder_thread, NULL), 0);
    cr_expect_eq(atomic_load(&padder_rc), 0, "the padder's publish");
    cr_assert(atomic_load(&seen_early), "the padder did not finish the commit: not tested");
    cr_expect_eq(rc, 0, "the commit a padder finished: %d %s", rc, evb_last_error());
    /* It was there, whole, at its offset, before our commit went on (the
     * padder's publish has lapped it since). */
    cr_expect_eq(atomic_load(&seen_early), 2, "the event the padder finished is not ours");
    evb_producer_close(fill);
    evb_producer_close(owner);
    evb_bus_close(quick);
}

/* A claim that ends a lap (an end pad before it, the full path), then a
 * common claim aborted: the common claim keeps only part of its fields,
 * and its abort must not take the earlier claim's end pad for its own
 * (a cold review found no test would see it). The events after it read
 * whole, and the abort is counted once. */
Test(claim_paths, an_abort_after_a_lap_end_pads_only_itself)
{
    enum { LAPV = 100 }; /* 192-byte frames: a lap ends in a pad */
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 1024};
    cr_assert_eq(evb_topic_create(bus, "lap", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "lap", &(evb_producer_options){0}), 0);
    struct evb_claim c;
    uint64_t last = 0, seq = 0;
    for (;;) { /* until a claim starts a new lap */
        cr_assert_eq(evb_claim(p, 0, NULL, 0, LAPV, &c), 0, "%s", evb_last_error());
        t_value_fill(c.value, LAPV, 1, seq++);
        bool wrapped = c.position < last || (last && c.position % (64 << 10) == 0);
        last = c.position;
        cr_assert_eq(evb_commit(p, &c), 0, "%s", evb_last_error());
        if (wrapped)
            break;
    }
    cr_assert_eq(evb_claim(p, 0, NULL, 0, LAPV, &c), 0, "%s", evb_last_error());
    uint64_t aborted_at = c.position;
    cr_assert_eq(evb_abort(p, &c), 0, "%s", evb_last_error());
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(evb_claim(p, 0, NULL, 0, LAPV, &c), 0, "%s", evb_last_error());
        t_value_fill(c.value, LAPV, 1, seq + (uint64_t)k);
        cr_assert_eq(evb_commit(p, &c), 0, "%s", evb_last_error());
    }
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "lap", 0, &st), 0);
    cr_expect_eq(st.aborted, 1);
    evb_consumer *r;
    cr_assert_eq(evb_consumer_open(&r, bus, "lap", &(evb_consumer_options){
                     .kind = EVB_SUBSCRIBER, .start = EVB_START_POSITION,
                     .start_value = aborted_at}), 0, "%s", evb_last_error());
    for (int k = 0; k < 3; k++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(r, &ev, 1000), 0, "event %d: %s", k, evb_last_error());
        uint32_t who = 0;
        uint64_t got = 0;
        cr_expect(ev.value_len == LAPV && t_value_check(ev.value, LAPV, &who, &got) &&
                  got == seq + (uint64_t)k, "event %d is not the one committed", k);
    }
    evb_consumer_close(r);
    evb_producer_close(p);
}

/* Every value length from 0 to 130 (each size class of the inline copy of
 * small values, producer.c copy_value, and past it), one event at a time
 * and in batches, comes back byte for byte, with nothing written past its
 * end (the next event's bytes are its own). */
static void fill_len(uint8_t *v, uint32_t len, uint32_t salt)
{
    for (uint32_t i = 0; i < len; i++)
        v[i] = (uint8_t)(i * 7 + len * 13 + salt);
}

Test(claim_paths, every_small_value_length_comes_back_whole)
{
    evb_producer_options po = {.block_ms = 1000};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", &po), 0, "%s", evb_last_error());
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST,
                               .partition = 0};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "%s", evb_last_error());
    enum { MAXLEN = 130 };
    static uint8_t vals[2][MAXLEN + 1][MAXLEN];
    for (uint32_t len = 0; len <= MAXLEN; len++) {
        fill_len(vals[0][len], len, 0);
        fill_len(vals[1][len], len, 101);
        evb_msg one = {.value = vals[0][len], .value_len = len, .partition = 0};
        cr_assert_eq(evb_publish(p, &one), 0, "len %u: %s", len, evb_last_error());
        evb_msg two[2] = {{.value = vals[1][len], .value_len = len, .partition = 0},
                          {.value = vals[0][len], .value_len = len, .partition = 0}};
        cr_assert_eq(evb_publish_batch(p, two, 2), 2, "len %u: %s", len, evb_last_error());
        for (int k = 0; k < 3; k++) {
            evb_event ev;
            cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "len %u", len);
            cr_assert_eq(ev.value_len, len);
            const uint8_t *want = vals[k == 1][len];
            cr_assert(len == 0 || memcmp(ev.value, want, len) == 0, "len %u, event %d", len,
                      k);
        }
    }
    evb_consumer_close(c);
    evb_producer_close(p);
}
