/*
 * test_consumer.c - named consumers: commit, close, reopen resumes right
 * after the last commit; seek by offset lands on that event; a name is
 * exclusive while its holder lives; bad input gets clear errors.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "c", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

static void publish_n(uint64_t from, uint64_t n)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "c", NULL), 0);
    for (uint64_t i = from; i < from + n; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "event-%llu", (unsigned long long)i);
        /* Keyed by parity: each partition gets a deterministic share. */
        char key = (char)('a' + (i & 1));
        evb_msg m = {.key = &key, .key_len = 1, .value = v, .value_len = (uint32_t)len,
                     .partition = EVB_PARTITION_ANY};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
}

static uint64_t value_num(const evb_event *ev)
{
    char buf[32] = {0};
    memcpy(buf, ev->value, ev->value_len < 31 ? ev->value_len : 31);
    return strtoull(buf + 6, NULL, 10);
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 60);

Test(consumer, resumes_after_last_commit)
{
    publish_n(0, 100);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "billing"};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "c", &co), 0);
    bool seen[200] = {0};
    evb_event ev;
    for (int i = 0; i < 60; i++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        seen[value_num(&ev)] = true;
    }
    cr_assert_eq(evb_consumer_commit(c), 0);
    /* Read more without committing: these must come again. */
    for (int i = 0; i < 10; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    evb_consumer_close(c);

    publish_n(100, 100);
    cr_assert_eq(evb_consumer_open(&c, bus, "c", &co), 0);
    int n = 0;
    while (evb_consumer_next(c, &ev, 0) == 0) {
        uint64_t v = value_num(&ev);
        cr_assert(!seen[v], "event %llu delivered again after its commit",
                  (unsigned long long)v);
        seen[v] = true;
        n++;
    }
    cr_expect_eq(n, 140, "expected the 140 uncommitted events, got %d", n);
    for (int i = 0; i < 200; i++)
        cr_expect(seen[i], "event %d never delivered", i);
    evb_consumer_close(c);
}

Test(consumer, seek_to_offset_lands_on_that_event)
{
    publish_n(0, 50);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "audit", .only_partition = 1,
                               .partition = 1};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "c", &co), 0);
    cr_assert_eq(evb_consumer_seek(c, 1, EVB_START_OFFSET, 7), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(ev.offset, 7);
    cr_expect_eq(ev.partition, 1);
    cr_assert_eq(evb_consumer_seek(c, 1, EVB_START_EARLIEST, 0), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(ev.offset, 0);
    cr_assert_eq(evb_consumer_seek(c, 1, EVB_START_LATEST, 0), 0);
    cr_expect_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    evb_consumer_close(c);
}

Test(consumer, name_is_exclusive_while_open)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "solo"};
    evb_consumer *a, *b;
    cr_assert_eq(evb_consumer_open(&a, bus, "c", &co), 0);
    /* Same process counts as the owner: a second process is refused. */
    pid_t pid = fork();
    if (pid == 0) {
        evb_bus *bb;
        if (evb_bus_open(&bb, t_bus_dir(), NULL))
            _exit(1);
        _exit(evb_consumer_open(&b, bb, "c", &co) == -EBUSY ? 0 : 2);
    }
    cr_expect_eq(t_wait_exit(pid, 10000), 0);
    evb_consumer_close(a);
}

Test(consumer, bad_input_is_refused)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "bad/name"};
    cr_expect_eq(evb_consumer_open(&c, bus, "c", &co), -EINVAL);
    co.name = NULL;
    cr_expect_eq(evb_consumer_open(&c, bus, "c", &co), -EINVAL);
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER};
    cr_expect_eq(evb_consumer_open(&c, bus, "nope", &sub), -ENOENT);
    evb_consumer_options part = {.only_partition = 1, .partition = 9};
    cr_expect_eq(evb_consumer_open(&c, bus, "c", &part), -EINVAL);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "c", NULL), 0);
    static char big[70000];
    evb_msg m = {.value = big, .value_len = sizeof big, .partition = EVB_PARTITION_ANY};
    cr_expect_eq(evb_publish(p, &m), -EMSGSIZE);
    m.value_len = 10;
    m.partition = 5;
    cr_expect_eq(evb_publish(p, &m), -EINVAL);
    evb_producer_close(p);
    evb_topic_config tc = {.ring_bytes = 1000};
    cr_expect_eq(evb_topic_create(bus, "odd", &tc), -EINVAL);
    cr_expect_eq(evb_topic_create(bus, "c", NULL), -EEXIST);
    cr_expect_eq(evb_topic_create(bus, "../x", NULL), -EINVAL);
}

Test(consumer, topic_list_info_delete)
{
    cr_assert_eq(evb_topic_create(bus, "b2", NULL), 0);
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "c", &ti), 0);
    cr_expect_eq(ti.config.partitions, 2);
    cr_expect_eq(ti.config.ring_bytes, 1 << 20);
    cr_expect_eq(evb_topic_list(bus, NULL, NULL), 2);
    cr_assert_eq(evb_topic_delete(bus, "b2"), 0);
    cr_expect_eq(evb_topic_info(bus, "b2", &ti), -ENOENT);
    cr_expect_eq(evb_topic_list(bus, NULL, NULL), 1);
}

/* A seek to the pad that ends a lap, when it is a stamp without an offset
 * (as a queue group's fetch position can be), learns the offset from the
 * next event, not from the pad: the event comes with its own offset. */
Test(consumer, seek_onto_lap_end_pad_learns_from_next_event)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "lap", &tc), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "lap", NULL), 0);
    /* Frames of 992 bytes (936 of value): 1057 fill the first lap but 32
     * bytes, less than a frame header, so the pad there is a stamp alone,
     * without an offset; two more start the second lap. */
    static char v[936];
    for (int i = 0; i < 1059; i++) {
        evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "lap", &so), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0);
    uint64_t p0 = ev.position, off0 = ev.offset;
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0);
    uint64_t frame = ev.position - p0;
    uint64_t pad = p0 / frame * frame;
    cr_assert_lt(pad, p0, "no pad before the second lap (frame %llu)",
                 (unsigned long long)frame);
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_POSITION, pad), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0, "%s", evb_last_error());
    cr_assert_eq(ev.position, p0);
    cr_assert_eq(ev.offset, off0);
    evb_consumer_close(c);
}

/* A seek by position into what the ring no longer holds lands on the
 * oldest event and reports the gap, but cannot know how many events the
 * position stood after: it never counts more than were really lost. */
Test(consumer, seek_by_position_into_the_past_never_overcounts)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "past", &tc), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "past", NULL), 0);
    static char v[1000];
    for (int i = 0; i < 500; i++) {
        evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_OFFSET,
                               .start_value = 300};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "past", &so), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0);
    cr_assert_eq(ev.offset, 300);
    uint64_t p300 = ev.position;
    for (int i = 0; i < 2500; i++) {
        evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_POSITION, p300), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0, "%s", evb_last_error());
    cr_assert_gt(ev.offset, 300);
    cr_assert_gt(ev.lost_bytes, 0);
    cr_assert_leq(ev.lost_events, ev.offset - 300, "%llu lost reported, at most %llu were",
                  (unsigned long long)ev.lost_events, (unsigned long long)(ev.offset - 300));
    evb_consumer_close(c);
}
