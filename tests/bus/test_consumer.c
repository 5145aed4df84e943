/*
 * test_consumer.c - named consumers: commit, close, reopen resumes right
 * after the last commit; seek by offset lands on that event; a name is
 * exclusive while its handle is open (in another process, a forked child,
 * or this one), and free again after an exec; bad input gets clear errors.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A start at or past the tail's offset lands at the tail (evbus.h), and
 * a named consumer that read nothing commits the tail there: it read the
 * history before with the oldest position committed, and the next open
 * delivered it all (found by a cold attack). Events published later at
 * or past the offset come. */
static void publish_one_part(const char *topic, int n)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = "v", .value_len = 1}), 0);
    evb_producer_close(p);
}

Test(consumer, a_start_past_the_end_commits_the_tail)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "one", &tc), 0);
    publish_one_part("one", 5); /* offsets 0..4 */
    for (uint64_t at = 5; at <= 9; at += 4) {
        char name[16];
        snprintf(name, sizeof name, "late%llu", (unsigned long long)at);
        evb_consumer_options co = {.kind = EVB_CONSUMER, .name = name,
                                   .start = EVB_START_OFFSET, .start_value = at};
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, bus, "one", &co), 0, "%s", evb_last_error());
        /* Committed before any read (`evbus tail --name N --from O` does,
         * when nothing comes). */
        cr_assert_eq(evb_consumer_commit(c), 0);
        evb_event ev;
        cr_expect_eq(evb_consumer_next(c, &ev, 0), -EAGAIN, "from %llu",
                     (unsigned long long)at);
        evb_consumer_close(c);
        co.start = EVB_START_DEFAULT; /* committed */
        cr_assert_eq(evb_consumer_open(&c, bus, "one", &co), 0);
        cr_expect_eq(evb_consumer_next(c, &ev, 0), -EAGAIN, "from %llu: the history came "
                     "again, offset %llu", (unsigned long long)at,
                     (unsigned long long)ev.offset);
        evb_consumer_close(c);
    }
    publish_one_part("one", 1); /* offset 5 */
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "late5"};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "one", &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(ev.offset, 5);
    cr_expect_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    evb_consumer_close(c);
}

/* A forked child (no exec) opens consumer NAME of topic c on a bus handle
 * of its own: 0 when refused as another process's, 2 when opened, 3 when
 * refused with another message, 4 when another name fails to open. */
static int child_opens(void *arg)
{
    const char *name = arg;
    evb_bus *bb;
    if (evb_bus_open(&bb, t_bus_dir(), NULL))
        return 1;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = name};
    evb_consumer *b;
    int rc = evb_consumer_open(&b, bb, "c", &co);
    if (rc == 0)
        return 2;
    if (rc != -EBUSY || !strstr(evb_last_error(), "another process"))
        return 3;
    /* The parent's handles are not the child's: other names are free. */
    co.name = "childs-own";
    if (evb_consumer_open(&b, bb, "c", &co))
        return 4;
    evb_consumer_close(b);
    return 0;
}

Test(consumer, name_is_exclusive_while_open)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "solo"};
    evb_consumer *a;
    cr_assert_eq(evb_consumer_open(&a, bus, "c", &co), 0);
    /* A forked child is another process, whatever it inherited. */
    cr_expect_eq(t_wait_exit(t_spawn(child_opens, "solo"), 10000), 0);
    evb_consumer_close(a);
}

/* The child closes its copies of the parent's readers (ARG: the three). */
static int child_closes_copies(void *arg)
{
    evb_consumer **cs = arg;
    for (int i = 0; i < 3; i++)
        evb_consumer_close(cs[i]);
    return 0;
}

/* A forked child's copies of its parent's readers are not its own: its
 * close gives back none of the parent's reader slots, group membership or
 * consumer name (evbus.h, "Fork"). */
Test(consumer, forked_child_closing_copies_leaves_the_parents_readers)
{
    evb_consumer *cs[3];
    evb_consumer_options lo = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    evb_consumer_options no = {.kind = EVB_CONSUMER, .name = "kept"};
    evb_consumer_options go = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    cr_assert_eq(evb_consumer_open(&cs[0], bus, "c", &lo), 0);
    cr_assert_eq(evb_consumer_open(&cs[1], bus, "c", &no), 0);
    cr_assert_eq(evb_consumer_open(&cs[2], bus, "c", &go), 0, "%s", evb_last_error());
    evb_reader_stat rs[64];
    int before = evb_reader_list(bus, "c", 0, rs, 64);
    cr_assert_geq(before, 3);
    cr_expect_eq(t_wait_exit(t_spawn(child_closes_copies, cs), 10000), 0);
    cr_expect_eq(evb_reader_list(bus, "c", 0, rs, 64), before, "reader slots given back");
    evb_group_summary gs;
    cr_expect_eq(evb_group_stat(bus, "c", "g", &gs, NULL, 0, NULL, 0), 1, "member left");
    cr_expect_eq(t_wait_exit(t_spawn(child_opens, "kept"), 10000), 0, "name given back");
    for (int i = 0; i < 3; i++)
        evb_consumer_close(cs[i]);
    cr_expect_eq(evb_reader_list(bus, "c", 0, rs, 64), 0, "the parent's close does");
}

/* One handle per name within a process too: two would commit over each
 * other, and the first one's close would free the name under the second. */
Test(consumer, name_is_exclusive_within_a_process)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "solo"};
    evb_consumer *a, *b = NULL;
    cr_assert_eq(evb_consumer_open(&a, bus, "c", &co), 0);
    cr_expect_eq(evb_consumer_open(&b, bus, "c", &co), -EBUSY);
    cr_expect_null(b);
    const char *why = evb_last_error();
    cr_expect(strstr(why, "consumer solo") && strstr(why, "this process"), "%s", why);
    /* The refused open left the first handle the owner. */
    cr_expect_eq(t_wait_exit(t_spawn(child_opens, "solo"), 10000), 0);
    publish_n(0, 4);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(a, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(a), 0);
    evb_consumer_close(a);
    /* Closed: free again, and the commit is there. */
    cr_assert_eq(evb_consumer_open(&b, bus, "c", &co), 0, "%s", evb_last_error());
    int n = 0;
    while (evb_consumer_next(b, &ev, 0) == 0)
        n++;
    cr_expect_eq(n, 3);
    evb_consumer_close(b);
}

struct open_race {
    pthread_barrier_t tried;
    _Atomic int opened;
};

static void *open_racer(void *arg)
{
    struct open_race *r = arg;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "raced"};
    evb_consumer *c = NULL;
    int rc = evb_consumer_open(&c, bus, "c", &co);
    if (rc == 0)
        atomic_fetch_add(&r->opened, 1);
    else
        cr_expect_eq(rc, -EBUSY);
    pthread_barrier_wait(&r->tried); /* nobody closes before all tried */
    evb_consumer_close(c);
    return NULL;
}

Test(consumer, threads_of_one_process_racing_for_a_name_get_one_handle)
{
    for (int round = 0; round < 20; round++) {
        struct open_race r = {.opened = 0};
        pthread_barrier_init(&r.tried, NULL, 4);
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, open_racer, &r);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&r.tried);
        cr_assert_eq(atomic_load(&r.opened), 1, "round %d", round);
    }
}

/* An exec()ed image keeps the pid and start time of the process, and so its
 * owner word, but none of its handles: it may open the name again. The
 * test binary re-runs itself with T_EXEC_OPEN set; this runs before
 * Criterion's main and exits 0 when the open succeeds. */
__attribute__((constructor)) static void exec_open(void)
{
    const char *dir = getenv("T_EXEC_OPEN");
    if (!dir)
        return;
    evb_bus *bb;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "solo"};
    if (evb_bus_open(&bb, dir, NULL))
        _exit(1);
    int rc = evb_consumer_open(&c, bb, "c", &co);
    if (rc)
        fprintf(stderr, "after exec: %s: %s\n", evb_strerror(rc), evb_last_error());
    _exit(rc == 0 ? 0 : 2);
}

static int open_then_exec(void *arg)
{
    (void)arg;
    evb_bus *bb;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "solo"};
    if (evb_bus_open(&bb, t_bus_dir(), NULL) || evb_consumer_open(&c, bb, "c", &co))
        return 10;
    setenv("T_EXEC_OPEN", t_bus_dir(), 1);
    execl("/proc/self/exe", "test_consumer", (char *)NULL);
    return 11;
}

Test(consumer, name_held_before_exec_is_free_after_it)
{
    cr_expect_eq(t_wait_exit(t_spawn(open_then_exec, NULL), 10000), 0);
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
    /* Frames of 960 bytes (904 of value, whole lines): 1092 fill the first
     * lap but 256 bytes, so a pad ends it; two more start the second lap.
     * (A pad of the stamp alone, in less room than a header, needs a ring
     * position off the line, which only old segments give: test_claim.c
     * and test_frame.c have it.) */
    static char v[904];
    for (int i = 0; i < 1094; i++) {
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
