/*
 * test_einval.c - every -EINVAL the consumer API returns (consumer.c,
 * consumer_disk.c, consumer_queue.c, dlq.c, dlq_resubmit.c, group_stat.c)
 * leaves a message in evb_last_error(): a caller told only "invalid
 * argument" cannot tell which one, e.g. a seek to a partition the topic
 * does not have.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "err.h"
#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options o = {.dead_ms = 100};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0);
    evb_msg m = {.value = "v", .value_len = 1, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(einval, .init = setup, .fini = teardown, .timeout = 60);

/* CALL must fail with -EINVAL and say why. */
#define EINVAL_SAYS(call)                                                                  \
    do {                                                                                   \
        evb_err_clear();                                                                   \
        int rc_ = (call);                                                                  \
        cr_expect_eq(rc_, -EINVAL, "%s: %d, not -EINVAL", #call, rc_);                     \
        const char *m_ = evb_last_error();                                                 \
        cr_expect(m_ && m_[0], "%s: -EINVAL with no message", #call);                      \
    } while (0)

static int no_fn(const evb_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    return 0;
}

static evb_consumer *open_kind(uint32_t kind, const char *name, uint32_t flags)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = kind, .name = name, .flags = flags,
                               .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "%s", evb_last_error());
    return c;
}

Test(einval, consumer_entry_points)
{
    evb_consumer *sub = open_kind(EVB_SUBSCRIBER, NULL, 0);
    evb_consumer *named = open_kind(EVB_CONSUMER, "n", EVB_CONSUMER_DEDUP);
    evb_consumer *member = open_kind(EVB_GROUP_MEMBER, "g", 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(sub, &ev, 1000), 0, "%s", evb_last_error());
    uint64_t u;
    uint32_t parts[4];
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER};

    EINVAL_SAYS(evb_consumer_open(NULL, bus, "t", &co));
    EINVAL_SAYS(evb_consumer_open(&c, NULL, "t", &co));
    EINVAL_SAYS(evb_consumer_next(NULL, &ev, 0));
    EINVAL_SAYS(evb_consumer_next(sub, NULL, 0));
    EINVAL_SAYS(evb_consumer_poll(NULL, no_fn, NULL, 1));
    EINVAL_SAYS(evb_consumer_poll(sub, NULL, NULL, 1));
    EINVAL_SAYS(evb_consumer_commit(NULL));
    EINVAL_SAYS(evb_consumer_commit(sub));
    EINVAL_SAYS(evb_consumer_lag(NULL, &u));
    EINVAL_SAYS(evb_consumer_lag(sub, NULL));
    /* The attack's case: no partition 3 on a 2-partition topic. */
    EINVAL_SAYS(evb_consumer_seek(sub, 3, EVB_START_EARLIEST, 0));
    EINVAL_SAYS(evb_consumer_seek(named, 2, EVB_START_LATEST, 0));
    EINVAL_SAYS(evb_consumer_seek(NULL, 0, EVB_START_EARLIEST, 0));
    EINVAL_SAYS(evb_consumer_seek(sub, 0, EVB_START_DEFAULT, 0));
    EINVAL_SAYS(evb_consumer_seek(sub, 0, 99, 0));
    EINVAL_SAYS(evb_consumer_seek(sub, 0, EVB_START_COMMITTED, 0));
    EINVAL_SAYS(evb_consumer_assignment(NULL, parts, 4));
    EINVAL_SAYS(evb_consumer_assignment(sub, parts, 4));
    EINVAL_SAYS(evb_consumer_assignment(member, NULL, 4));
    EINVAL_SAYS(evb_consumer_dedup_stat(NULL, -1, &u, &u));
    EINVAL_SAYS(evb_consumer_dedup_stat(sub, -1, &u, &u));
    EINVAL_SAYS(evb_consumer_dedup_stat(named, 7, &u, &u));
    EINVAL_SAYS(evb_consumer_skipped(NULL, -1, &u, &u));
    EINVAL_SAYS(evb_consumer_skipped(sub, -1, NULL, &u));
    EINVAL_SAYS(evb_consumer_skipped(sub, 5, &u, &u));
    /* Queue settling, by readers that are not queue members. */
    EINVAL_SAYS(evb_consumer_ack(NULL, &ev));
    EINVAL_SAYS(evb_consumer_ack(sub, &ev));
    EINVAL_SAYS(evb_consumer_nack(sub, &ev, 0));
    EINVAL_SAYS(evb_consumer_ack(member, NULL));
    evb_consumer_close(sub);
    evb_consumer_close(named);
    evb_consumer_close(member);
}

Test(einval, dlq_entry_points)
{
    evb_consumer *one;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .only_partition = 1, .partition = 0};
    cr_assert_eq(evb_consumer_open(&one, bus, "t", &co), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(one, &ev, 1000), 0, "%s", evb_last_error());
    uint64_t u;
    char longer[EVB_DLQ_REASON_MAX + 2];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';

    EINVAL_SAYS(evb_consumer_reject(NULL, &ev, "r"));
    EINVAL_SAYS(evb_consumer_reject(one, NULL, "r"));
    EINVAL_SAYS(evb_consumer_reject(one, &ev, longer));
    evb_event other = ev;
    other.partition = 1;
    EINVAL_SAYS(evb_consumer_reject(one, &other, "r"));
    evb_event hollow = ev;
    hollow.value = NULL;
    EINVAL_SAYS(evb_consumer_reject(one, &hollow, "r"));
    EINVAL_SAYS(evb_consumer_rejects(NULL, &u));
    EINVAL_SAYS(evb_consumer_rejects(one, NULL));

    struct evb_dlq_record rec;
    EINVAL_SAYS(evb_dlq_decode(NULL, &rec));
    EINVAL_SAYS(evb_dlq_decode(&ev, NULL));
    EINVAL_SAYS(evb_dlq_decode(&hollow, &rec));
    EINVAL_SAYS(evb_dlq_resubmit(NULL, "t", 0, EVB_RESUBMIT_ALL, NULL, NULL));
    EINVAL_SAYS(evb_dlq_resubmit(bus, NULL, 0, EVB_RESUBMIT_ALL, NULL, NULL));
    EINVAL_SAYS(evb_dlq_resubmit(bus, "t", 0, 1u << 30, NULL, NULL));
    EINVAL_SAYS(evb_dlq_resubmitted(NULL, "t", 0));
    EINVAL_SAYS(evb_dlq_resubmitted(bus, NULL, 0));
    EINVAL_SAYS(evb_dlq_resubmitted_count(bus, "t", NULL));
    EINVAL_SAYS(evb_group_list(NULL, "t", NULL, NULL));
    EINVAL_SAYS(evb_group_stat(bus, "t", "g", NULL, NULL, 0, NULL, 0));
    evb_consumer_close(one);
}
