/*
 * test_consumer_batch.c - evb_consumer_read_batch() and
 * evb_consumer_poll_values(): every event of a batch is intact after the
 * reads that follow it (in place or in the arena), a full arena ends a
 * batch without losing an event, fixed-size values and their metadata
 * come out as published, and a value of another size is handed out, not
 * skipped.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "b", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(consumer_batch, .init = setup, .fini = teardown, .timeout = 60);

struct rec {
    uint64_t seq;
    uint64_t square;
};

/* N records seq FROM.. alternating between the partitions, keyed "k<seq>". */
static void publish_recs(uint64_t from, uint64_t n)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "b", &(evb_producer_options){.block_ms = 1000}), 0);
    for (uint64_t s = from; s < from + n; s++) {
        struct rec r = {s, s * s};
        char key[24];
        int kl = snprintf(key, sizeof key, "k%llu", (unsigned long long)s);
        evb_msg m = {.key = key, .key_len = (uint32_t)kl, .value = &r, .value_len = sizeof r,
                     .partition = (int32_t)(s & 1)};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
}

static void check_event(const evb_event *ev)
{
    struct rec r;
    cr_assert_eq(ev->value_len, sizeof r);
    memcpy(&r, ev->value, sizeof r);
    cr_assert_eq(r.square, r.seq * r.seq, "value of seq %llu damaged", (unsigned long long)r.seq);
    char key[24];
    int kl = snprintf(key, sizeof key, "k%llu", (unsigned long long)r.seq);
    cr_assert_eq(ev->key_len, (uint32_t)kl);
    cr_assert(memcmp(ev->key, key, (size_t)kl) == 0);
    cr_assert_eq(ev->partition, (uint32_t)(r.seq & 1));
    cr_assert_eq(ev->offset, r.seq / 2);
    cr_assert_eq((uintptr_t)ev->value % 8, 0);
}

/* Read every event of the topic in batches of MAX; each batch is checked
 * whole after it was read, so an event overwritten by a later read of the
 * same batch shows. Returns the events read. */
static uint64_t drain(evb_consumer *c, uint32_t max, size_t arena_bytes, uint64_t total,
                      uint64_t next[2])
{
    evb_event evs[512];
    static uint8_t arena[1 << 16] __attribute__((aligned(8)));
    cr_assert(max <= 512 && arena_bytes <= sizeof arena);
    uint64_t got = 0;
    while (got < total) {
        int n = evb_consumer_read_batch(c, evs, max, arena_bytes ? arena : NULL, arena_bytes,
                                        1000);
        cr_assert_gt(n, 0, "batch after %llu events: %d", (unsigned long long)got, n);
        for (int i = 0; i < n; i++) {
            check_event(&evs[i]);
            cr_assert_eq(evs[i].offset, next[evs[i].partition]++, "order in partition");
        }
        got += (uint64_t)n;
    }
    return got;
}

Test(consumer_batch, lossless_reads_in_place)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &(evb_consumer_options){
                                       .kind = EVB_SUBSCRIBER_LOSSLESS}), 0);
    publish_recs(0, 600);
    evb_event evs[64];
    int n = evb_consumer_read_batch(c, evs, 64, NULL, 0, 1000);
    /* No arena at all: every event read in place, so the batch is full. */
    cr_assert_eq(n, 64);
    uint64_t next[2] = {32, 32};
    for (int i = 0; i < n; i++)
        check_event(&evs[i]);
    cr_assert_eq(drain(c, 64, 0, 600 - 64, next), 600 - 64);
    evb_consumer_close(c);
}

Test(consumer_batch, subscriber_copies_into_the_arena)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &(evb_consumer_options){
                                       .kind = EVB_SUBSCRIBER}), 0);
    publish_recs(0, 300);
    /* A lossy subscriber's events are copies in the handle; every one but
     * the batch's last must move to the arena to outlive the next read. */
    uint64_t next[2] = {0, 0};
    cr_assert_eq(drain(c, 256, 1 << 16, 300, next), 300);
    evb_consumer_close(c);
}

Test(consumer_batch, full_arena_ends_the_batch_without_loss)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &(evb_consumer_options){
                                       .kind = EVB_SUBSCRIBER}), 0);
    publish_recs(0, 100);
    /* Room for two events (key up to 8 bytes padded, 16-byte value): the
     * third stays where it was read and ends the batch. */
    evb_event evs[16];
    static uint8_t arena[48] __attribute__((aligned(8)));
    int n = evb_consumer_read_batch(c, evs, 16, arena, sizeof arena, 1000);
    cr_assert_eq(n, 3);
    for (int i = 0; i < n; i++)
        check_event(&evs[i]);
    cr_assert(evs[2].value < (const void *)arena || evs[2].value >= (const void *)(arena + 48));
    /* The rest follows with nothing skipped. */
    uint64_t next[2] = {2, 1};
    cr_assert_eq(drain(c, 16, 48, 97, next), 97);
    evb_consumer_close(c);
}

Test(consumer_batch, timeout_and_empty)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", NULL), 0);
    evb_event ev;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(evb_consumer_read_batch(c, &ev, 1, NULL, 0, 50), 0);
    cr_assert_geq(t_now_ms() - t0, 45);
    cr_assert_eq(evb_consumer_read_batch(c, &ev, 1, NULL, 0, 0), 0);
    cr_assert_eq(evb_consumer_read_batch(NULL, &ev, 1, NULL, 0, 0), -EINVAL);
    cr_assert_eq(evb_consumer_read_batch(c, &ev, 1, NULL, 8, 0), -EINVAL);
    evb_consumer_close(c);
}

Test(consumer_batch, poll_values_copies_values_and_meta)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &(evb_consumer_options){
                                       .kind = EVB_CONSUMER, .name = "v"}), 0);
    publish_recs(0, 1000);
    static struct rec vals[1000];
    static evb_value_meta meta[1000];
    uint64_t got = 0, next[2] = {0, 0};
    while (got < 1000) {
        uint32_t n;
        evb_event odd;
        int rc = evb_consumer_poll_values(c, vals, sizeof(struct rec), 300, meta, 1000, &n,
                                          &odd);
        cr_assert_eq(rc, 0);
        cr_assert_gt(n, 0);
        for (uint32_t i = 0; i < n; i++) {
            cr_assert_eq(vals[i].square, vals[i].seq * vals[i].seq);
            cr_assert_eq(meta[i].partition, (uint32_t)(vals[i].seq & 1));
            cr_assert_eq(meta[i].offset, vals[i].seq / 2);
            cr_assert_eq(meta[i].offset, next[meta[i].partition]++);
            cr_assert_neq(meta[i].timestamp_ns, 0);
        }
        got += n;
    }
    /* Caught up: nothing, at once. */
    uint32_t n = 7;
    evb_event odd;
    cr_assert_eq(evb_consumer_poll_values(c, vals, sizeof(struct rec), 10, NULL, 0, &n, &odd), 0);
    cr_assert_eq(n, 0);
    /* The position after all of them is committed like any read. */
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
}

Test(consumer_batch, odd_size_is_handed_out_not_skipped)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &(evb_consumer_options){
                                       .kind = EVB_SUBSCRIBER_LOSSLESS, .partition = 0,
                                       .only_partition = 1}), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "b", NULL), 0);
    struct rec r = {2, 4};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = &r, .value_len = sizeof r}), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = "short", .value_len = 5}), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = &r, .value_len = sizeof r}), 0);
    evb_producer_close(p);
    struct rec vals[8];
    uint32_t n;
    evb_event odd;
    cr_assert_eq(evb_consumer_poll_values(c, vals, sizeof r, 8, NULL, 1000, &n, &odd), 1);
    cr_assert_eq(n, 3);
    cr_assert_eq(odd.value_len, 5);
    cr_assert(memcmp(odd.value, "short", 5) == 0);
    cr_assert_eq(odd.offset, 3);
    /* The event after it comes next. */
    cr_assert_eq(evb_consumer_poll_values(c, vals, sizeof r, 8, NULL, 1000, &n, &odd), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(vals[0].square, 4);
    cr_assert_eq(evb_consumer_poll_values(c, vals, 0, 8, NULL, 0, &n, &odd), -EINVAL);
    cr_assert_eq(evb_consumer_poll_values(c, vals, sizeof r, 8, NULL, 0, &n, NULL), -EINVAL);
    evb_consumer_close(c);
}

static uint64_t queue_drain(evb_consumer *c, uint64_t total)
{
    static struct rec vals[256];
    static evb_value_meta meta[256];
    uint64_t got = 0;
    while (got < total) {
        uint32_t n;
        evb_event odd;
        cr_assert_eq(evb_consumer_poll_values(c, vals, sizeof(struct rec), 256, meta, 1000, &n,
                                              &odd), 0);
        cr_assert_gt(n, 0);
        for (uint32_t i = 0; i < n; i++) {
            cr_assert_eq(vals[i].square, vals[i].seq * vals[i].seq);
            cr_assert_eq(meta[i].deliveries, 1);
            /* An ack needs only partition, position, token and deliveries. */
            evb_event ev = {.partition = meta[i].partition, .position = meta[i].position,
                            .ack_token = meta[i].ack_token, .deliveries = meta[i].deliveries};
            cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        }
        got += n;
    }
    return got;
}

Test(consumer_batch, queue_member_values_ack_from_meta)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &(evb_consumer_options){
                                       .kind = EVB_QUEUE_MEMBER, .name = "q"}), 0);
    publish_recs(0, 500);
    cr_assert_eq(queue_drain(c, 500), 500);
    evb_event evs[8];
    static uint8_t arena[4096] __attribute__((aligned(8)));
    cr_assert_eq(evb_consumer_read_batch(c, evs, 8, arena, sizeof arena, 0), 0);
    evb_consumer_close(c);
}
