/*
 * test_value_align.c - values start 8-byte aligned (issue 9, defect 20):
 * in every claim whatever the key length, in events a consumer reads from
 * the ring, and in events read back from a durable topic's segments.
 * Before, a claim's value sat at 56 + key_len (value % 8 == key_len % 8).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "t_helpers.h"

#define MAX_KEY 17u
#define VLEN 24u

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(value_align, .init = setup, .fini = teardown, .timeout = 120);

/* A struct a producer writes in place: it needs 8-byte alignment. */
struct reading {
    uint64_t seq;
    double value;
    uint32_t sensor;
    uint32_t flags;
};
_Static_assert(sizeof(struct reading) == VLEN, "test value size");

static void key_of(uint32_t n, char *key)
{
    for (uint32_t i = 0; i < n; i++)
        key[i] = (char)('a' + (n + i) % 26);
}

/* Claim one event per key length 0..MAX_KEY, ROUNDS times, building the
 * value as a struct in place; every claim's value must be aligned. */
static void claim_all(evb_producer *p, uint32_t rounds)
{
    char key[MAX_KEY];
    for (uint32_t r = 0; r < rounds; r++) {
        for (uint32_t k = 0; k <= MAX_KEY; k++) {
            key_of(k, key);
            struct evb_claim c;
            cr_assert_eq(evb_claim(p, 0, key, k, VLEN, &c), 0, "%s", evb_last_error());
            cr_assert_eq((uintptr_t)c.value % 8, 0, "key %u: claim value %p is not 8-aligned",
                         k, c.value);
            struct reading *rd = c.value;
            rd->seq = (uint64_t)r << 8 | k;
            rd->value = k * 0.5;
            rd->sensor = k;
            rd->flags = r;
            cr_assert_eq(evb_commit(p, &c), 0);
        }
    }
}

/* Read ROUNDS * (MAX_KEY + 1) events and check each: aligned value, the
 * key and the struct as written. */
static void read_all(evb_consumer *c, uint32_t rounds)
{
    char key[MAX_KEY];
    for (uint32_t r = 0; r < rounds; r++) {
        for (uint32_t k = 0; k <= MAX_KEY; k++) {
            evb_event ev;
            cr_assert_eq(evb_consumer_next(c, &ev, 5000), 0, "round %u key %u: %s", r, k,
                         evb_last_error());
            key_of(k, key);
            cr_assert_eq(ev.key_len, k);
            cr_assert_eq(memcmp(ev.key, key, k), 0, "key %u bytes", k);
            cr_assert_eq(ev.value_len, VLEN);
            cr_assert_eq((uintptr_t)ev.value % 8, 0, "key %u: event value %p not 8-aligned",
                         k, ev.value);
            const struct reading *rd = ev.value;
            cr_assert_eq(rd->seq, (uint64_t)r << 8 | k);
            cr_assert(rd->value == k * 0.5);
            cr_assert_eq(rd->sensor, k);
            cr_assert_eq(rd->flags, r);
            cr_assert_eq(ev.flags, 0, "the layout flag is the library's");
        }
    }
}

Test(value_align, claims_and_ring_events_are_8_aligned_for_key_lengths_0_to_17)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "a", &tc), 0);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    cr_assert_eq(evb_consumer_open(&c, bus, "a", &co), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "a", NULL), 0);
    claim_all(p, 1);
    read_all(c, 1);
    /* publish() places values the same way. */
    for (uint32_t k = 0; k <= MAX_KEY; k++) {
        char key[MAX_KEY];
        key_of(k, key);
        struct reading v = {.seq = k, .value = k * 0.5, .sensor = k};
        evb_msg m = {.key = key, .key_len = k, .value = &v, .value_len = VLEN,
                     .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    read_all(c, 1);
    evb_producer_close(p);
    evb_consumer_close(c);
}

/* Enough rounds to lap a 64 KiB ring several times: the first events
 * come back from the segments. */
#define DISK_ROUNDS 200u

Test(value_align, durable_events_read_back_from_segments_are_8_aligned)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .segment_bytes = 256 << 10, .durability = EVB_DURABILITY_ASYNC,
                           .flush_ms = 10};
    cr_assert_eq(evb_topic_create(bus, "d", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    cr_assert_eq(evb_producer_open(&p, bus, "d", &po), 0);
    claim_all(p, DISK_ROUNDS);
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_OFFSET,
                               .start_value = 0};
    cr_assert_eq(evb_consumer_open(&c, bus, "d", &co), 0, "%s", evb_last_error());
    read_all(c, DISK_ROUNDS);
    evb_consumer_close(c);
}
