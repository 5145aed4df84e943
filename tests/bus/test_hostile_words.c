/*
 * test_hostile_words.c - producers against hostile words in a ring's
 * shared header and producer slots (issue 9, defect 2): an intent no claim
 * can have, a tail far from flushed, a flushed or durable word the tail
 * cannot have reached. Each publish runs in a child under a deadline
 * (t_bounded): it must end with -EBADMSG, never block or loop, and never
 * report as durable what a garbage word says is.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "err.h"
#include "ring.h"
#include "t_helpers.h"
#include "t_hostile.h"

#define RING (64u << 10)
#define DEADLINE_MS 8000

static void teardown(void)
{
    t_bus_cleanup();
}

TestSuite(hostile_words, .fini = teardown, .timeout = 120);

static evb_bus *open_bus(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &o), 0, "bus open: %s", evb_last_error());
    return b;
}

/* A topic of one partition with N events already in it. */
static void make_topic(const char *topic, uint32_t durability, int n)
{
    evb_bus *b = open_bus();
    evb_topic_config tc = {.partitions = 1, .ring_bytes = RING, .durability = durability,
                           .segment_bytes = 1u << 20, .max_event_bytes = 1024};
    cr_assert_eq(evb_topic_create(b, topic, &tc), 0, "create: %s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, b, topic, NULL), 0);
    for (int i = 0; i < n; i++) {
        evb_msg m = {.value = "before", .value_len = 6, .partition = 0,
                     .flags = durability ? EVB_MSG_SYNC : 0};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    evb_producer_close(p);
    evb_bus_close(b);
}

static void open_ring(struct evb_ring *r, const char *topic)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/0.ring", t_bus_dir(), topic);
    cr_assert_eq(evb_ring_open(r, path), 0, "%s: %s", path, evb_err_get());
}

/* Child: open a producer that blocks for ever, publish one event (synced
 * on a durable topic); exit with -rc. */
static int publish_once(void *arg)
{
    const char *topic = arg;
    evb_bus *b = open_bus();
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    int rc = evb_producer_open(&p, b, topic, &po);
    if (rc)
        return 100;
    evb_msg m = {.value = "after", .value_len = 5, .partition = 0, .flags = EVB_MSG_SYNC};
    rc = evb_publish(p, &m);
    if (rc)
        fprintf(stderr, "publish: %s\n", evb_last_error());
    evb_producer_close(p);
    evb_bus_close(b);
    return -rc;
}

static void expect_ebadmsg(const char *topic, const char *what)
{
    int code = t_bounded(publish_once, (void *)topic, DEADLINE_MS);
    cr_expect_neq(code, -1, "%s: the producer was still blocked after %d ms", what,
                  DEADLINE_MS);
    cr_expect_eq(code, EBADMSG, "%s: publish gave -%d, not -EBADMSG", what, code);
}

/* An owner word whose pid no process can have (above PID_MAX_LIMIT). */
#define DEAD_OWNER ((uint64_t)0x7ffffff0u << 32 | 1u)

/*
 * The case: a dead owner's slot pending at the tail with an intent
 * no claim can have, and the tail moved a whole ring forward, so the hole
 * is the producer limit and no padder can fill it. The class: each field
 * of the intent made impossible in turn.
 */
struct bad_intent {
    const char *what;
    uint32_t pad, len, events;
};

static const struct bad_intent bad_intents[] = {
    {"intent_len far past the ring", 0, 1u << 30, 1},
    {"intent_len past half the ring", 0, RING / 2 + 8, 1},
    {"intent_len longer than its events' frames", 0, 8 * 1024, 1},
    {"intent_len unaligned", 0, 60, 1},
    {"intent_len zero", 0, 0, 1},
    {"intent_events zero", 0, 64, 0},
    {"intent_pad not to the lap's end", 64, 64, 1},
};

Test(hostile_words, impossible_intent_at_the_limit_is_ebadmsg_not_a_hang)
{
    for (size_t k = 0; k < sizeof bad_intents / sizeof bad_intents[0]; k++) {
        const struct bad_intent *b = &bad_intents[k];
        char topic[32];
        snprintf(topic, sizeof topic, "intent%zu", k);
        make_topic(topic, EVB_DURABILITY_NONE, 3);
        struct evb_ring r;
        open_ring(&r, topic);
        uint64_t t, off;
        evb_ring_load_tail(&r, &t, &off);
        struct evb_producer_slot *s = &r.pslots[9];
        /* Release stores: the child's acquire loads see them (tests). */
        atomic_store_explicit(&s->intent_pos, t, memory_order_release);
        atomic_store_explicit(&s->intent_offset, off, memory_order_release);
        atomic_store_explicit(&s->intent_pad, b->pad, memory_order_release);
        atomic_store_explicit(&s->intent_len, b->len, memory_order_release);
        atomic_store_explicit(&s->intent_events, b->events, memory_order_release);
        atomic_store_explicit(&s->intent_seq, 2, memory_order_release);
        atomic_store_explicit(&s->pending, t, memory_order_release);
        atomic_store_explicit(&s->owner, DEAD_OWNER, memory_order_release);
        atomic_store_explicit(&r.hdr->tail.pos, t + RING, memory_order_release);
        atomic_store_explicit(&r.hdr->tail.offset, off + 1, memory_order_release);
        evb_ring_close(&r);
        expect_ebadmsg(topic, b->what);
    }
}

/* Durable rings: line 3's words against the tail. */
enum word { W_FLUSHED, W_DURABLE, W_TAIL };

struct bad_word {
    const char *what;
    enum word w;
    uint64_t v; /* added to the word's value when ADD, else stored */
    bool add;
};

static const struct bad_word bad_words[] = {
    {"flushed huge (issue: open() over 2.5e13 segment names)", W_FLUSHED, 1ull << 60, false},
    {"flushed just past the tail", W_FLUSHED, 8, true},
    {"flushed unaligned", W_FLUSHED, 4, true},
    {"durable huge", W_DURABLE, 1ull << 60, false},
    {"durable unaligned", W_DURABLE, 3, true},
    {"tail garbage (far past flushed)", W_TAIL, 1ull << 40, false},
    {"tail two rings past flushed", W_TAIL, 2 * RING, true},
};

Test(hostile_words, durable_words_that_do_not_fit_the_tail_are_ebadmsg)
{
    for (size_t k = 0; k < sizeof bad_words / sizeof bad_words[0]; k++) {
        const struct bad_word *b = &bad_words[k];
        char topic[32];
        snprintf(topic, sizeof topic, "word%zu", k);
        make_topic(topic, EVB_DURABILITY_SYNC, 3);
        struct evb_ring r;
        open_ring(&r, topic);
        struct evb_ring_hdr *h = r.hdr;
        _Atomic uint64_t *word = b->w == W_FLUSHED ? &h->flushed
                                 : b->w == W_DURABLE ? &h->durable : &h->tail.pos;
        /* Acquire/release: the child's loads see the store (tests). */
        uint64_t was = atomic_load_explicit(word, memory_order_acquire);
        atomic_store_explicit(word, b->add ? was + b->v : b->v, memory_order_release);
        evb_ring_close(&r);
        expect_ebadmsg(topic, b->what);
    }
}
