/*
 * test_consumer_fast.c - what the consumer's inlined common case
 * (shm/read_inline.h, read_fast in bus/consumer.c) must still do. Every
 * reader here is a lossless subscriber opened before anything is
 * published, so it reads in place above its verify range: the positions
 * the fast path takes. A frame it must not take as it is (damaged, a
 * pad, filtered by a seek, read by a failed reader) has to reach the
 * full path and come out as it always did.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "ring.h"
#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(consumer_fast, .init = setup, .fini = teardown, .timeout = 30);

/* Events handed to the callback. */
struct got {
    uint32_t n;
    uint64_t offset[64];
    uint64_t lost;
};

static int collect(const evb_event *ev, void *arg)
{
    struct got *g = arg;
    if (g->n < 64)
        g->offset[g->n] = ev->offset;
    g->n++;
    g->lost += ev->lost_events;
    return 0;
}

/* A topic configured as TC, a lossless subscriber at its (empty) tail,
 * and a producer. */
static void start_cfg(const char *topic, evb_topic_config tc, evb_consumer **c,
                      evb_producer **p)
{
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    cr_assert_eq(evb_consumer_open(c, bus, topic, &co), 0);
    cr_assert_eq(evb_producer_open(p, bus, topic, NULL), 0);
}

/* The same for a one-partition topic of RING_BYTES. */
static void start(const char *topic, uint64_t ring_bytes, evb_consumer **c, evb_producer **p)
{
    start_cfg(topic, (evb_topic_config){.partitions = 1, .ring_bytes = ring_bytes}, c, p);
}

static void publish(evb_producer *p, uint32_t n)
{
    uint64_t v[4] = {0};
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.key = "k", .key_len = 1, .value = v,
                                              .value_len = sizeof v, .partition = 0}), 0);
}

/* The topic's partition 0, mapped writable: the hostile hand. */
static void open_ring(struct evb_ring *r, const char *topic)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/0.ring", t_bus_dir(), topic);
    cr_assert_eq(evb_ring_open(r, path), 0, "%s", path);
}

/* Event 1 read, event 2 damaged by HURT, event 3 behind it: the damage
 * stops the reader with -EBADMSG, for good, naming WHAT. */
static void damaged_second_frame(void (*hurt)(struct evb_frame *f, const struct evb_ring *r),
                                 const char *what)
{
    evb_consumer *c;
    evb_producer *p;
    start("dmg", 64 << 10, &c, &p);
    publish(p, 3);
    struct evb_ring r;
    open_ring(&r, "dmg");
    uint64_t second = evb_frame_bytes(1, 32);
    hurt(evb_ring_frame(&r, second), &r);
    struct got g = {0};
    cr_expect_eq(evb_consumer_poll(c, collect, &g, 10), 1, "the event before the damage");
    cr_expect_eq(g.offset[0], 0);
    for (int i = 0; i < 2; i++) {
        int rc = evb_consumer_poll(c, collect, &g, 10);
        cr_expect_eq(rc, -EBADMSG, "poll %d after the damage: %d", i, rc);
    }
    cr_expect_eq(g.n, 1, "%u events delivered, the damaged one among them", g.n);
    cr_expect(strstr(evb_last_error(), what), "error \"%s\" does not name %s",
              evb_last_error(), what);
    evb_ring_close(&r);
    evb_producer_close(p);
    evb_consumer_close(c);
}

static void long_len(struct evb_frame *f, const struct evb_ring *r)
{
    f->len = r->max_frame + EVB_FRAME_ALIGN;
}

/* Within max_frame and the room, but one byte of key + value more than
 * the topic's max_event_bytes: the line padding leaves room for it. */
static void long_event(struct evb_frame *f, const struct evb_ring *r)
{
    f->len = r->max_frame; /* a 1-byte key padded to 8, then the value */
}

static void no_offset(struct evb_frame *f, const struct evb_ring *r)
{
    (void)r;
    __atomic_store_n(&f->offset, EVB_FRAME_NO_OFFSET, __ATOMIC_RELAXED);
}

static void odd_flags(struct evb_frame *f, const struct evb_ring *r)
{
    (void)r;
    f->flags = 0x80;
}

static void long_key(struct evb_frame *f, const struct evb_ring *r)
{
    (void)r;
    f->key_len = 200; /* past the frame's 56 + 8 + 32 bytes */
}

static void other_offset(struct evb_frame *f, const struct evb_ring *r)
{
    (void)r;
    __atomic_store_n(&f->offset, 7, __ATOMIC_RELAXED);
}

Test(consumer_fast, frame_length_past_max_frame_is_ebadmsg)
{
    damaged_second_frame(long_len, "frame length");
}

Test(consumer_fast, event_past_max_event_in_a_valid_frame_is_ebadmsg)
{
    /* "frame length" would name a frame past max_frame: not this case. */
    damaged_second_frame(long_event, "event length");
}

/* The largest event with a 1-byte key: its key's padding makes the frame
 * longer than the header and max_event_bytes, which the fast path leaves
 * to the full one (read_inline.h); it still arrives, whole. */
Test(consumer_fast, largest_keyed_event_arrives)
{
    evb_consumer *c;
    evb_producer *p;
    start_cfg("big", (evb_topic_config){.partitions = 1, .ring_bytes = 64 << 10,
                                        .max_event_bytes = 512}, &c, &p);
    static char v[512];
    memset(v, 0x5c, sizeof v);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.key = "k", .key_len = 1, .value = v,
                                               .value_len = 511, .partition = 0}), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.key = "k", .key_len = 1, .value = v,
                                           .value_len = 512, .partition = 0}),
                 -EMSGSIZE);
    for (int i = 0; i < 3; i++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 100), 0, "event %d: %s", i, evb_last_error());
        cr_expect_eq(ev.key_len, 1);
        cr_expect_eq(ev.value_len, 511);
        cr_expect_eq(memcmp(ev.value, v, 511), 0);
    }
    evb_producer_close(p);
    evb_consumer_close(c);
}

/* Keys: up to EVB_MAX_KEY_BYTES (a frame's 16-bit key length) through
 * every way of publishing, one byte more refused with -EMSGSIZE and a
 * message about keys, not the topic's max_event_bytes, which this topic's
 * is far above (a cold attack found the message misleading). */
Test(consumer_fast, keys_up_to_65535_bytes_and_no_longer)
{
    evb_consumer *c;
    evb_producer *p;
    start("keys", 1 << 20, &c, &p);
    static char key[EVB_MAX_KEY_BYTES + 1];
    memset(key, 'k', sizeof key);
    evb_msg m = {.key = key, .key_len = EVB_MAX_KEY_BYTES, .value = "v", .value_len = 1,
                 .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    cr_assert_eq(evb_publish_batch(p, &m, 1), 1, "%s", evb_last_error());
    struct evb_claim cl;
    cr_assert_eq(evb_claim(p, 0, key, EVB_MAX_KEY_BYTES, 1, &cl), 0, "%s", evb_last_error());
    memcpy(cl.value, "v", 1);
    cr_assert_eq(evb_commit(p, &cl), 0);
    m.key_len = EVB_MAX_KEY_BYTES + 1;
    cr_expect_eq(evb_publish(p, &m), -EMSGSIZE);
    cr_expect(strstr(evb_last_error(), "keys are at most 65535 bytes"), "%s",
              evb_last_error());
    cr_expect_eq(evb_publish_batch(p, &m, 1), -EMSGSIZE);
    cr_expect_eq(evb_claim(p, 0, key, EVB_MAX_KEY_BYTES + 1, 1, &cl), -EMSGSIZE);
    cr_expect(strstr(evb_last_error(), "keys are at most"), "%s", evb_last_error());
    for (int i = 0; i < 3; i++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 100), 0, "event %d: %s", i, evb_last_error());
        cr_expect_eq(ev.key_len, EVB_MAX_KEY_BYTES);
        cr_expect_eq(memcmp(ev.key, key, EVB_MAX_KEY_BYTES), 0);
        cr_expect_eq(ev.value_len, 1);
    }
    evb_event ev;
    cr_expect_eq(evb_consumer_next(c, &ev, 10), -ETIMEDOUT, "a refused event arrived");
    evb_producer_close(p);
    evb_consumer_close(c);
}

Test(consumer_fast, unknown_frame_flags_are_ebadmsg)
{
    damaged_second_frame(odd_flags, "frame flags");
}

Test(consumer_fast, key_longer_than_its_frame_is_ebadmsg)
{
    damaged_second_frame(long_key, "key length");
}

Test(consumer_fast, data_frame_with_the_no_offset_word_is_ebadmsg)
{
    damaged_second_frame(no_offset, "frame offset");
}

Test(consumer_fast, frame_with_another_offset_is_ebadmsg)
{
    damaged_second_frame(other_offset, "unexpected offset 7");
}

/* A seek to an offset not published yet skips what comes before it, also
 * once the reader waits in place for the events still to be skipped (a
 * read that skips goes on to the next frame, so the reader only stops
 * there when nothing is committed yet). */
Test(consumer_fast, seek_to_a_future_offset_skips_the_events_below_it)
{
    evb_consumer *c;
    evb_producer *p;
    start("ahead", 64 << 10, &c, &p);
    publish(p, 3);
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_OFFSET, 8), 0);
    struct got g = {0};
    cr_expect_eq(evb_consumer_poll(c, collect, &g, 64), 0);
    publish(p, 3);
    cr_expect_eq(evb_consumer_poll(c, collect, &g, 64), 0);
    publish(p, 4);
    cr_expect_eq(evb_consumer_poll(c, collect, &g, 64), 2);
    cr_expect_eq(g.offset[0], 8);
    cr_expect_eq(g.offset[1], 9);
    evb_producer_close(p);
    evb_consumer_close(c);
}

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A seek to a time still to come skips events stamped before it. */
Test(consumer_fast, seek_to_a_future_time_skips_the_events_before_it)
{
    evb_consumer *c;
    evb_producer *p;
    start("later", 64 << 10, &c, &p);
    /* 200 ms ahead: on a loaded machine (CI beside other work) 20 ms
     * passed between taking the time and the publishes, which then came
     * after it and were rightly delivered. */
    uint64_t at = real_ns() + 200 * 1000000ull;
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_TIME, at), 0);
    publish(p, 1);
    struct got g = {0};
    int n1 = evb_consumer_poll(c, collect, &g, 64);
    publish(p, 2);
    int n2 = evb_consumer_poll(c, collect, &g, 64);
    if (real_ns() >= at)
        cr_skip_test("the publishes took past the seek time: nothing to tell");
    cr_expect_eq(n1, 0);
    cr_expect_eq(n2, 0);
    /* Waiting for the clock, not for another party. */
    while (real_ns() < at + 2000000ull) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    publish(p, 2);
    cr_expect_eq(evb_consumer_poll(c, collect, &g, 64), 2);
    cr_expect_eq(g.offset[0], 3, "first event delivered: offset %llu",
                 (unsigned long long)g.offset[0]);
    evb_producer_close(p);
    evb_consumer_close(c);
}

/* The reader's slot, found by kind (only one reader is attached). */
static struct evb_reader_slot *lossless_slot(struct evb_ring *r)
{
    for (uint32_t i = 0; i < EVB_RING_READER_SLOTS; i++) {
        struct evb_reader_slot *s = &r->rslots[i];
        /* Acquire: the slot as its owner published it (tests). */
        if (atomic_load_explicit(&s->owner, memory_order_acquire) &&
            atomic_load_explicit(&s->kind, memory_order_acquire) == EVB_SLOT_LOSSLESS)
            return s;
    }
    cr_assert_fail("no lossless subscriber's slot");
    return NULL;
}

/* A seek's release finds the cursor word changed by someone else: the
 * reader is failed from then on, and an event committed after that must
 * not slip past the failure. */
Test(consumer_fast, reader_failed_by_a_foreign_cursor_store_delivers_nothing)
{
    evb_consumer *c;
    evb_producer *p;
    start("tamper", 64 << 10, &c, &p);
    publish(p, 1);
    struct got g = {0};
    cr_assert_eq(evb_consumer_poll(c, collect, &g, 10), 1);
    struct evb_ring r;
    open_ring(&r, "tamper");
    /* Release: the consumer sees the store (tests). */
    atomic_store_explicit(&lossless_slot(&r)->cursor, 0, memory_order_release);
    publish(p, 1);
    /* To the tail: the release there finds the foreign value. */
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_LATEST, 0), 0);
    publish(p, 1);
    int rc = evb_consumer_poll(c, collect, &g, 10);
    cr_expect_eq(rc, -EBADMSG, "poll after the cursor was changed: %d", rc);
    cr_expect_eq(g.n, 1, "%u events delivered", g.n);
    evb_ring_close(&r);
    evb_producer_close(p);
    evb_consumer_close(c);
}

/* Five laps of a small ring with values of every length: each lap's end
 * pad is stepped over, every value arrives once, in order and intact, no
 * loss is reported, and the reader's delivered count is published. */
Test(consumer_fast, laps_with_end_pads_deliver_every_value_in_order)
{
    evb_consumer *c;
    evb_producer *p;
    start("laps", 64 << 10, &c, &p);
    uint8_t v[301];
    uint64_t sent = 0, seen = 0, lost = 0;
    while (sent < 5 * (64 << 10) / 180) {
        /* A little at a time: the lossless reader holds producers back. */
        for (int k = 0; k < 8; k++, sent++) {
            uint32_t len = (uint32_t)(sent * 37 % sizeof v);
            memset(v, (int)(sent & 0xff), len);
            cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = len,
                                                  .partition = 0}), 0);
        }
        evb_event ev;
        int rc;
        while ((rc = evb_consumer_next(c, &ev, 0)) == 0) {
            uint32_t len = (uint32_t)(seen * 37 % sizeof v);
            cr_assert_eq(ev.offset, seen);
            cr_assert_eq(ev.value_len, len, "offset %llu: %u bytes, want %u",
                         (unsigned long long)seen, ev.value_len, len);
            for (uint32_t i = 0; i < len; i++)
                cr_assert_eq(((const uint8_t *)ev.value)[i], (uint8_t)(seen & 0xff));
            lost += ev.lost_events;
            seen++;
        }
        cr_assert_eq(rc, -EAGAIN);
    }
    cr_expect_eq(seen, sent);
    cr_expect_eq(lost, 0);
    struct got g = {0};
    cr_assert_eq(evb_consumer_poll(c, collect, &g, 1), 0); /* publishes the count */
    evb_reader_stat rs[2];
    cr_assert_eq(evb_reader_list(bus, "laps", 0, rs, 2), 1);
    cr_expect_eq(rs[0].delivered, sent, "delivered %llu of %llu",
                 (unsigned long long)rs[0].delivered, (unsigned long long)sent);
    evb_producer_close(p);
    evb_consumer_close(c);
}
