/*
 * test_dlq.c - dead-letter topics: a reject writes a record that decodes
 * to the event and its origin, the DLQ inherits the origin's durability,
 * reasons are bounded, DLQs are not rejected again, two processes that
 * make the DLQ at once both succeed, hostile records are refused, and
 * resubmit publishes each DLQ event once, also when killed (crash points
 * in dlq_resubmit.c) at any step and rerun.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bus_internal.h"
#include "dlq.h"
#include "dlq_format.h"
#include "kill_fixture.h"
#include "t_helpers.h"

TestSuite(dlq, .init = kf_setup, .fini = kf_teardown, .timeout = 60);

static void make_topic(const char *name, uint32_t parts, uint32_t durability)
{
    evb_topic_config tc = {.partitions = parts, .ring_bytes = 1 << 20,
                           .durability = durability, .file_mode = 0640};
    cr_assert_eq(evb_topic_create(bus, name, &tc), 0, "%s", evb_last_error());
}

/* Event I: key "k<I%3>", value "value-<I>", type 100+I. */
static void publish_n(const char *topic, int n)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), 0);
    for (int i = 0; i < n; i++) {
        char k[8], v[32];
        snprintf(k, sizeof k, "k%d", i % 3);
        int len = snprintf(v, sizeof v, "value-%d", i);
        evb_msg m = {.key = k, .key_len = 2, .value = v, .value_len = (uint32_t)len,
                     .partition = EVB_PARTITION_ANY, .type = (uint16_t)(100 + i)};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
}

static int value_num(const void *v, uint32_t len)
{
    char buf[32] = {0};
    if (len < 7 || len > 31 || memcmp(v, "value-", 6))
        return -1;
    memcpy(buf, v, len);
    return atoi(buf + 6);
}

/* Read TOPIC from the start, counting each value-<i> into SEEN[i]. */
static int count_values(const char *topic, int *seen, int cap)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0);
    evb_event ev;
    int n = 0;
    while (evb_consumer_next(c, &ev, 300) == 0) {
        int i = value_num(ev.value, ev.value_len);
        cr_assert(i >= 0 && i < cap, "stray value in %s", topic);
        cr_assert_eq(ev.type, 100 + i, "type of value-%d lost", i);
        seen[i]++;
        n++;
    }
    evb_consumer_close(c);
    return n;
}

/* A named consumer reads TOPIC and rejects the events whose number
 * REJECT(i) says, with reason "bad <i>"; commits at the end. */
static int reject_some(const char *topic, int n, bool (*reject)(int i))
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "billing"};
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0);
    int rejected = 0;
    for (int k = 0; k < n; k++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 2000), 0);
        int i = value_num(ev.value, ev.value_len);
        if (!reject(i))
            continue;
        char why[32];
        snprintf(why, sizeof why, "bad %d", i);
        cr_assert_eq(evb_consumer_reject(c, &ev, why), 0, "%s", evb_last_error());
        rejected++;
    }
    uint64_t count;
    cr_assert_eq(evb_consumer_rejects(c, &count), 0);
    cr_assert_eq(count, (uint64_t)rejected);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
    return rejected;
}

static bool every_third(int i) { return i % 3 == 1; }
static bool all(int i) { (void)i; return true; }

Test(dlq, reject_writes_a_record_that_decodes_to_the_event)
{
    make_topic("orders", 2, EVB_DURABILITY_NONE);
    publish_n("orders", 9);
    /* The originals, to compare with. */
    evb_event orig[9];
    char keep[9][32], keys[9][2];
    evb_consumer *s;
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&s, bus, "orders", &so), 0);
    for (int k = 0; k < 9; k++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(s, &ev, 1000), 0);
        int i = value_num(ev.value, ev.value_len);
        orig[i] = ev;
        memcpy(keep[i], ev.value, ev.value_len);
        memcpy(keys[i], ev.key, 2);
    }
    evb_consumer_close(s);

    cr_assert_eq(reject_some("orders", 9, every_third), 3);
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "orders.dlq", &ti), 0);
    cr_expect_eq(ti.config.partitions, 1);
    cr_expect_eq(ti.config.file_mode, 0640);
    cr_expect_eq(ti.config.durability, EVB_DURABILITY_NONE);

    evb_consumer *d;
    cr_assert_eq(evb_consumer_open(&d, bus, "orders.dlq", &so), 0);
    int got = 0;
    evb_event ev;
    while (evb_consumer_next(d, &ev, 300) == 0) {
        struct evb_dlq_record r;
        cr_assert_eq(evb_dlq_decode(&ev, &r), 0, "%s", evb_last_error());
        int i = value_num(r.value, r.value_len);
        cr_assert(i >= 0 && i % 3 == 1, "DLQ holds value-%d", i);
        const evb_event *o = &orig[i];
        cr_expect_str_eq(r.origin_topic, "orders");
        cr_expect_str_eq(r.rejecter, "billing");
        char why[32];
        snprintf(why, sizeof why, "bad %d", i);
        cr_expect_str_eq(r.reason, why);
        cr_expect_eq(r.reason_len, strlen(why));
        cr_expect_eq(r.origin_partition, o->partition);
        cr_expect_eq(r.origin_offset, o->offset);
        cr_expect_eq(r.origin_position, o->position);
        cr_expect_eq(r.origin_timestamp_ns, o->timestamp_ns);
        cr_expect_eq(r.producer_id, o->producer_id);
        cr_expect_eq(r.producer_seq, o->producer_seq);
        cr_expect_eq(r.type, 100 + i);
        cr_expect_eq(r.deliveries, 1);
        cr_expect_eq(r.rejecter_pid, (uint32_t)getpid());
        cr_expect(r.reject_time_ns >= o->timestamp_ns);
        cr_expect_eq(r.key_len, 2);
        cr_expect_eq(ev.key_len, 2, "the DLQ event is keyed by the original key");
        cr_expect(memcmp(r.key, keys[i], 2) == 0);
        cr_expect_eq(r.value_len, o->value_len);
        cr_expect(memcmp(r.value, keep[i], r.value_len) == 0);
        cr_expect_eq((uintptr_t)r.value % 8, 0, "the original value stays 8-aligned");
        got++;
    }
    evb_consumer_close(d);
    cr_assert_eq(got, 3);

    /* Counted as handled: the commit after the rejects covers them. */
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "billing"};
    cr_assert_eq(evb_consumer_open(&c, bus, "orders", &co), 0);
    cr_expect_eq(evb_consumer_next(c, &ev, 100), -ETIMEDOUT);
    evb_consumer_close(c);
}

Test(dlq, a_group_member_rejects_too)
{
    make_topic("gm", 2, EVB_DURABILITY_NONE);
    publish_n("gm", 4);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "workers",
                               .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "gm", &co), 0, "%s", evb_last_error());
    evb_event ev;
    int n = 0;
    while (n < 4 && evb_consumer_next(c, &ev, 1000) == 0) {
        if (ev.lost_events == 0 && ev.value_len) {
            cr_assert_eq(evb_consumer_reject(c, &ev, "later"), 0, "%s", evb_last_error());
            n++;
        }
    }
    cr_assert_eq(n, 4);
    evb_consumer_close(c);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "gm.dlq", 0, &st), 0);
    cr_expect_eq(st.tail_offset, 4);
    int seen[4] = {0};
    cr_assert_eq(evb_dlq_resubmit(bus, "gm", 0, EVB_RESUBMIT_ALL, NULL, NULL), 4);
    cr_assert_eq(count_values("gm", seen, 4), 8);
}

Test(dlq, reason_is_bounded)
{
    make_topic("r", 1, EVB_DURABILITY_NONE);
    publish_n("r", 3);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "r", &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    char big[EVB_DLQ_REASON_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_expect_eq(evb_consumer_reject(c, &ev, big), -EINVAL, "1025 bytes of reason");
    big[EVB_DLQ_REASON_MAX] = '\0';
    cr_expect_eq(evb_consumer_reject(c, &ev, big), 0, "%s", evb_last_error());
    cr_expect_eq(evb_consumer_reject(c, &ev, NULL), 0);
    uint64_t n;
    cr_assert_eq(evb_consumer_rejects(c, &n), 0);
    cr_expect_eq(n, 2);
    evb_consumer_close(c);

    cr_assert_eq(evb_consumer_open(&c, bus, "r.dlq", &co), 0);
    struct evb_dlq_record r;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_dlq_decode(&ev, &r), 0);
    cr_expect_eq(r.reason_len, EVB_DLQ_REASON_MAX);
    cr_expect_eq(strlen(r.reason), EVB_DLQ_REASON_MAX);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_dlq_decode(&ev, &r), 0);
    cr_expect_str_eq(r.reason, "");
    cr_expect_str_eq(r.rejecter, "", "a subscriber has no name");
    evb_consumer_close(c);
}

Test(dlq, dlq_of_a_durable_topic_is_durable)
{
    make_topic("d", 2, EVB_DURABILITY_SYNC);
    publish_n("d", 4);
    cr_assert_eq(reject_some("d", 4, all), 4);
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "d.dlq", &ti), 0);
    cr_expect_eq(ti.config.durability, EVB_DURABILITY_SYNC);
    cr_expect_eq(ti.config.file_mode, 0640);
    cr_expect(ti.config.max_event_bytes >= (64u << 10) + EVB_DLQ_OVERHEAD_BYTES);
    /* SYNC: every reject waited for the disk. */
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "d.dlq", 0, &st), 0);
    cr_expect_eq(st.tail_offset, 4);
    cr_expect_eq(st.durable_position, st.tail_position, "rejected events not synced");
    char **paths;
    size_t n;
    cr_assert_eq(evb_segment_list(bus, "d.dlq", 0, &paths, &n), 0);
    cr_expect_geq(n, 1);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

Test(dlq, a_dlq_is_not_rejected_again)
{
    make_topic("x", 1, EVB_DURABILITY_NONE);
    publish_n("x", 1);
    cr_assert_eq(reject_some("x", 1, all), 1);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "x.dlq", &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(evb_consumer_reject(c, &ev, "again"), -EINVAL);
    cr_expect(strstr(evb_last_error(), "dead-letter"), "%s", evb_last_error());
    evb_consumer_close(c);
    struct evb_topic_info ti;
    cr_expect_eq(evb_topic_info(bus, "x.dlq.dlq", &ti), -ENOENT);
}

/* A dead-letter topic has one partition: dlq list, resubmit and the
 * resubmit state count in its offsets. One with more, made by hand, took
 * records that no dlq command then found where it looked (cold attack);
 * such a topic is refused at its creation, durable or not. */
Test(dlq, a_dlq_of_more_than_one_partition_is_refused)
{
    for (uint32_t d = 0; d < 2; d++) {
        evb_topic_config tc = {.partitions = 4, .ring_bytes = 1 << 20,
                               .durability = d ? EVB_DURABILITY_ASYNC : EVB_DURABILITY_NONE};
        if (d) {
            evb_bus_close(bus);
            evb_bus_options bo = {.data_dir = t_data_dir()};
            cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
        }
        const char *name = d ? "dur.dlq" : "mem.dlq";
        cr_expect_eq(evb_topic_create(bus, name, &tc), -EINVAL, "%s", name);
        cr_expect(strstr(evb_last_error(), "one partition") ||
                  strstr(evb_last_error(), "has one"), "%s", evb_last_error());
        struct evb_topic_info ti;
        cr_expect_eq(evb_topic_info(bus, name, &ti), -ENOENT, "%s made all the same", name);
        tc.partitions = 1;
        cr_expect_eq(evb_topic_create(bus, name, &tc), 0, "%s", evb_last_error());
    }
}

Test(dlq, long_names_leave_no_room)
{
    char name[EVB_NAME_MAX + 1];
    memset(name, 'n', EVB_NAME_MAX - 3);
    name[EVB_NAME_MAX - 3] = '\0';
    make_topic(name, 1, EVB_DURABILITY_NONE);
    publish_n(name, 1);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, name, &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(evb_consumer_reject(c, &ev, "r"), -ENAMETOOLONG);
    /* One byte shorter fits exactly. */
    evb_event other = ev;
    other.partition = 1;
    cr_expect_eq(evb_consumer_reject(c, &other, "r"), -EINVAL, "a partition it does not read");
    evb_consumer_close(c);
}

/* Child: reject one event of "race" as soon as the gate opens. */
static struct t_shared *gate;
static int racer(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    if (evb_bus_open(&b, t_bus_dir(), NULL) || evb_consumer_open(&c, b, "race", &co))
        return 10;
    evb_event ev;
    if (evb_consumer_next(c, &ev, 2000))
        return 11;
    atomic_fetch_add_explicit(&gate->ready, 1, memory_order_relaxed);
    while (!atomic_load_explicit(&gate->go, memory_order_relaxed))
        ;
    int rc = evb_consumer_reject(c, &ev, "race");
    evb_consumer_close(c);
    evb_bus_close(b);
    return rc ? 12 : 0;
}

Test(dlq, two_processes_making_the_dlq_at_once_both_succeed)
{
    make_topic("race", 1, EVB_DURABILITY_NONE);
    publish_n("race", 1);
    for (int round = 0; round < 5; round++) {
        gate = t_shared_new();
        pid_t a = t_spawn(racer, NULL), b = t_spawn(racer, NULL);
        cr_assert(t_wait_count(&gate->ready, 2, 5000));
        atomic_store_explicit(&gate->go, 1, memory_order_relaxed);
        cr_expect_eq(t_wait_exit(a, 10000), 0);
        cr_expect_eq(t_wait_exit(b, 10000), 0);
        struct evb_partition_stat st;
        cr_assert_eq(evb_partition_stat(bus, "race.dlq", 0, &st), 0);
        cr_expect_eq(st.tail_offset, 2);
        cr_assert_eq(evb_topic_delete(bus, "race.dlq"), 0);
    }
}

/* A good record of "h" to mutate, copied into BUF; its length. */
static uint32_t good_record(uint8_t *buf, size_t cap)
{
    make_topic("h", 1, EVB_DURABILITY_NONE);
    publish_n("h", 1);
    cr_assert_eq(reject_some("h", 1, all), 1);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "h.dlq", &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert(ev.value_len <= cap);
    memcpy(buf, ev.value, ev.value_len);
    uint32_t n = ev.value_len;
    evb_consumer_close(c);
    return n;
}

static int decode_bytes(const uint8_t *v, uint32_t len, struct evb_dlq_record *r)
{
    evb_event ev = {.value = v, .value_len = len, .key = "k0", .key_len = 2};
    return evb_dlq_decode(&ev, r);
}

Test(dlq, hostile_records_are_refused)
{
    static uint8_t good[4096], v[4096];
    uint32_t n = good_record(good, sizeof good);
    struct evb_dlq_record r;
    cr_assert_eq(decode_bytes(good, n, &r), 0);
    /* Every truncation, and one byte too many. */
    for (uint32_t k = 0; k < n; k++)
        cr_assert_eq(decode_bytes(good, k, &r), -EBADMSG, "truncated to %u", k);
    memcpy(v, good, n);
    cr_expect_eq(decode_bytes(v, n + 1, &r), -EBADMSG);

    struct { size_t at; uint32_t width; uint64_t val; int want; const char *what; } cases[] = {
        {offsetof(struct evb_dlq_hdr, magic), 4, 0x12345678, -EBADMSG, "magic"},
        {offsetof(struct evb_dlq_hdr, version), 2, 2, -EPROTO, "version"},
        {offsetof(struct evb_dlq_hdr, format), 4, 7, -EPROTO, "format"},
        {offsetof(struct evb_dlq_hdr, topic_len), 2, 0, -EBADMSG, "empty topic"},
        {offsetof(struct evb_dlq_hdr, topic_len), 2, 0xffff, -EBADMSG, "topic_len"},
        {offsetof(struct evb_dlq_hdr, reason_len), 2, EVB_DLQ_REASON_MAX + 1, -EBADMSG,
         "reason_len"},
        {offsetof(struct evb_dlq_hdr, rejecter_len), 2, 0xffff, -EBADMSG, "rejecter_len"},
        {offsetof(struct evb_dlq_hdr, value_len), 4, 0xffffffff, -EBADMSG, "value_len"},
        {offsetof(struct evb_dlq_hdr, deliveries), 4, 0, -EBADMSG, "deliveries 0"},
        {offsetof(struct evb_dlq_hdr, origin_partition), 4, EVB_MAX_PARTITIONS, -EBADMSG,
         "partition"},
        {offsetof(struct evb_dlq_hdr, reserved), 2, 1, -EBADMSG, "reserved"},
        {EVB_DLQ_HDR_BYTES, 1, '/', -EBADMSG, "a '/' in the topic name"},
        {EVB_DLQ_HDR_BYTES + 1, 1, 0, -EBADMSG, "a NUL in the topic name"},
        {EVB_DLQ_HDR_BYTES + 2, 1, 0, -EBADMSG, "a NUL in the reason"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(v, good, n);
        memcpy(v + cases[i].at, &cases[i].val, cases[i].width);
        cr_expect_eq(decode_bytes(v, n, &r), cases[i].want, "%s", cases[i].what);
    }
    /* Random bytes, and random bytes behind a good header: never a crash,
     * never a pointer outside the value. */
    srand(42);
    for (int seed = 0; seed < 20000; seed++) {
        uint32_t len = (uint32_t)rand() % n + 1;
        memcpy(v, good, n);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            v[(uint32_t)rand() % len] = (uint8_t)rand();
        if (seed & 1)
            for (uint32_t k = 0; k < len; k++)
                v[k] = (uint8_t)rand();
        int rc = decode_bytes(v, len, &r);
        cr_assert(rc == 0 || rc == -EBADMSG || rc == -EPROTO, "rc %d", rc);
        if (rc == 0) {
            const uint8_t *p = r.value;
            cr_assert(p >= v && p + r.value_len <= v + len, "value outside the record");
            cr_assert(strlen(r.reason) == r.reason_len);
            cr_assert(strlen(r.origin_topic) >= 1);
        }
    }
}

/* ---- resubmit ---- */

static int count_reports(const evb_resubmit_report *rep, void *arg)
{
    int *n = arg;
    cr_assert(rep->status >= 1 && rep->status <= 3);
    n[rep->status]++;
    return 0;
}

Test(dlq, resubmit_puts_each_event_back_once)
{
    make_topic("rs", 2, EVB_DURABILITY_NONE);
    publish_n("rs", 12);
    cr_assert_eq(reject_some("rs", 12, every_third), 4);
    int n[4] = {0};
    cr_assert_eq(evb_dlq_resubmit(bus, "rs", 0, EVB_RESUBMIT_ALL, count_reports, n), 4,
                 "%s", evb_last_error());
    cr_expect_eq(n[EVB_RESUBMIT_PUBLISHED], 4);
    int seen[12] = {0};
    cr_assert_eq(count_values("rs", seen, 12), 16);
    for (int i = 0; i < 12; i++)
        cr_expect_eq(seen[i], i % 3 == 1 ? 2 : 1, "value-%d seen %d times", i, seen[i]);
    /* Again: nothing more. One offset: already done, says so. */
    memset(n, 0, sizeof n);
    cr_assert_eq(evb_dlq_resubmit(bus, "rs", 0, EVB_RESUBMIT_ALL, count_reports, n), 0);
    cr_expect_eq(n[EVB_RESUBMIT_ALREADY], 4);
    memset(n, 0, sizeof n);
    cr_assert_eq(evb_dlq_resubmit(bus, "rs", 2, 0, count_reports, n), 0);
    cr_expect_eq(n[EVB_RESUBMIT_ALREADY], 1);
    cr_expect_eq(evb_dlq_resubmit(bus, "rs", 4, 0, NULL, NULL), -ENOENT);
    for (uint64_t o = 0; o < 4; o++)
        cr_expect_eq(evb_dlq_resubmitted(bus, "rs", o), 1);
    cr_expect_eq(evb_dlq_resubmitted(bus, "rs", 4), 0);
    uint64_t count = 99;
    cr_expect_eq(evb_dlq_resubmitted_count(bus, "rs", &count), 0);
    cr_expect_eq(count, 4);
    cr_expect_eq(evb_dlq_resubmitted_count(bus, "nosuch", &count), -ENOENT);
    /* Back where they were: the original partition. */
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "rs.dlq", &co), 0);
    evb_event ev;
    uint32_t part[12];
    while (evb_consumer_next(c, &ev, 200) == 0) {
        struct evb_dlq_record r;
        cr_assert_eq(evb_dlq_decode(&ev, &r), 0);
        part[value_num(r.value, r.value_len)] = r.origin_partition;
    }
    evb_consumer_close(c);
    cr_assert_eq(evb_consumer_open(&c, bus, "rs", &co), 0);
    int again[12] = {0};
    while (evb_consumer_next(c, &ev, 200) == 0) {
        int i = value_num(ev.value, ev.value_len);
        if (again[i]++)
            cr_expect_eq(ev.partition, part[i], "value-%d resubmitted elsewhere", i);
    }
    evb_consumer_close(c);
}

Test(dlq, one_offset_at_a_time)
{
    make_topic("one", 1, EVB_DURABILITY_NONE);
    publish_n("one", 3);
    cr_assert_eq(reject_some("one", 3, all), 3);
    cr_assert_eq(evb_dlq_resubmit(bus, "one", 1, 0, NULL, NULL), 1);
    cr_assert_eq(evb_dlq_resubmit(bus, "one", 1, 0, NULL, NULL), 0);
    cr_expect_eq(evb_dlq_resubmitted(bus, "one", 0), 0);
    cr_expect_eq(evb_dlq_resubmitted(bus, "one", 1), 1);
    cr_assert_eq(evb_dlq_resubmit(bus, "one", 0, EVB_RESUBMIT_ALL, NULL, NULL), 2);
    int seen[3] = {0};
    cr_assert_eq(count_values("one", seen, 3), 6);
    cr_expect_eq(evb_dlq_resubmit(bus, "none", 0, EVB_RESUBMIT_ALL, NULL, NULL), -ENOENT);
}

Test(dlq, garbage_in_the_dlq_is_skipped_by_all)
{
    make_topic("g", 1, EVB_DURABILITY_NONE);
    publish_n("g", 2);
    cr_assert_eq(reject_some("g", 1, all), 1);
    /* Anyone who may publish to the DLQ can put anything there. */
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "g.dlq", NULL), 0);
    evb_msg m = {.value = "junk", .value_len = 4};
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    cr_assert_eq(reject_some("g", 1, all), 1);
    cr_expect_eq(evb_dlq_resubmit(bus, "g", 1, 0, NULL, NULL), -EBADMSG);
    int n[4] = {0};
    cr_assert_eq(evb_dlq_resubmit(bus, "g", 0, EVB_RESUBMIT_ALL, count_reports, n), 2,
                 "%s", evb_last_error());
    cr_expect_eq(n[EVB_RESUBMIT_SKIPPED], 1);
    cr_expect_eq(evb_dlq_resubmitted(bus, "g", 1), 0);
}

/* ---- killed half way ---- */

struct kill_at {
    const char *point;
    const char *skip;
    bool stop;
};

static int resubmitter(void *arg)
{
    const struct kill_at *k = arg;
    setenv("EVB_CRASH_AT", k->point, 1);
    setenv("EVB_CRASH_SKIP", k->skip, 1);
    if (k->stop)
        setenv("EVB_CRASH_SIGNAL", "STOP", 1);
    evb_bus *b;
    if (kf_bus_open(&b))
        return 10;
    int rc = evb_dlq_resubmit(b, "k", 0, EVB_RESUBMIT_ALL, NULL, NULL);
    evb_bus_close(b);
    return rc >= 0 ? 0 : 11;
}

/* Reject all 20 events of a fresh "k", kill a resubmit at POINT after
 * SKIP passes, rerun, and see each event exactly twice on "k" (the
 * original and one resubmit). */
static void killed_then_rerun(const char *point, const char *skip, uint32_t durability)
{
    make_topic("k", 2, durability);
    publish_n("k", 20);
    cr_assert_eq(reject_some("k", 20, all), 20);
    struct kill_at k = {point, skip, false};
    pid_t pid = t_spawn(resubmitter, &k);
    cr_assert_eq(t_wait_exit(pid, 20000), 128 + SIGKILL, "not killed at %s", point);
    int rc = evb_dlq_resubmit(bus, "k", 0, EVB_RESUBMIT_ALL, NULL, NULL);
    cr_assert_geq(rc, 0, "%s", evb_last_error());
    int seen[20] = {0};
    cr_assert_eq(count_values("k", seen, 20), 40, "killed at %s", point);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(seen[i], 2, "value-%d seen %d times (killed at %s)", i, seen[i], point);
    cr_expect_eq(evb_dlq_resubmit(bus, "k", 0, EVB_RESUBMIT_ALL, NULL, NULL), 0);
}

Test(dlq, killed_after_intent_then_rerun)
{
    killed_then_rerun("dlq.resubmit.after_intent", "7", EVB_DURABILITY_NONE);
}

Test(dlq, killed_after_commit_then_rerun)
{
    killed_then_rerun("dlq.resubmit.after_commit", "7", EVB_DURABILITY_NONE);
}

Test(dlq, killed_after_mark_then_rerun)
{
    killed_then_rerun("dlq.resubmit.after_mark", "7", EVB_DURABILITY_NONE);
}

Test(dlq, durable_killed_after_intent_then_rerun)
{
    killed_then_rerun("dlq.resubmit.after_intent", "3", EVB_DURABILITY_ASYNC);
}

Test(dlq, durable_killed_after_commit_then_rerun)
{
    killed_then_rerun("dlq.resubmit.after_commit", "3", EVB_DURABILITY_SYNC);
}

Test(dlq, a_stopped_resubmit_keeps_others_out)
{
    make_topic("k", 1, EVB_DURABILITY_NONE);
    publish_n("k", 5);
    cr_assert_eq(reject_some("k", 5, all), 5);
    struct kill_at k = {"dlq.resubmit.after_intent", "2", true};
    pid_t pid = t_spawn(resubmitter, &k);
    /* Stopped holding a claim and the state file's lock. */
    int st;
    cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(st));
    cr_expect_eq(evb_dlq_resubmit(bus, "k", 0, EVB_RESUBMIT_ALL, NULL, NULL), -EBUSY);
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    cr_assert_eq(evb_dlq_resubmit(bus, "k", 0, EVB_RESUBMIT_ALL, NULL, NULL), 3,
                 "%s", evb_last_error());
    int seen[5] = {0};
    cr_assert_eq(count_values("k", seen, 5), 10);
}

/* The resubmit state is made whole, so an empty one is damage: taking it
 * for new would resubmit everything a second time. */
Test(dlq, empty_state_file_is_damage)
{
    make_topic("es", 1, EVB_DURABILITY_NONE);
    publish_n("es", 3);
    cr_assert_eq(reject_some("es", 3, all), 3);
    cr_assert_eq(evb_dlq_resubmit(bus, "es", 0, EVB_RESUBMIT_ALL, NULL, NULL), 3);
    char path[4096];
    snprintf(path, sizeof path, "%s/es.dlq/resubmit.state", t_bus_dir());
    cr_assert_eq(truncate(path, 0), 0, "%s", path);
    cr_assert_eq(evb_dlq_resubmit(bus, "es", 0, EVB_RESUBMIT_ALL, NULL, NULL), -EBADMSG);
    cr_assert(strstr(evb_last_error(), "empty"), "%s", evb_last_error());
    int seen[3] = {0};
    cr_assert_eq(count_values("es", seen, 3), 6, "something was resubmitted twice");
}

/* ---- a damaged state file ---- */

static uint64_t done_below;

static int never_again(const evb_resubmit_report *rep, void *arg)
{
    const char *what = arg;
    cr_assert(!(rep->status == EVB_RESUBMIT_PUBLISHED && rep->dlq_offset < done_below),
              "dead-letter offset %llu resubmitted a second time after %s",
              (unsigned long long)rep->dlq_offset, what);
    return 0;
}

static void put_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/*
 * Damage swept over the whole state file (header, intent, bitmap block):
 * 8 bytes zeroed, set to 0xff, XORed, or random, and truncation at every
 * 4th byte. Whatever it does, each offset reads either as the truth or as
 * an error, never as pending when it was resubmitted (nor the reverse),
 * and resubmit --all publishes none of the done ones again.
 */
Test(dlq, damaged_state_never_reads_pending_nor_resubmits_twice)
{
    enum { N = 20, DONE = 10 };
    make_topic("ds", 1, EVB_DURABILITY_NONE);
    publish_n("ds", N);
    cr_assert_eq(reject_some("ds", N, all), N);
    for (uint64_t o = 0; o < DONE; o++)
        cr_assert_eq(evb_dlq_resubmit(bus, "ds", o, 0, NULL, NULL), 1, "%s", evb_last_error());
    done_below = DONE;
    char path[4096];
    snprintf(path, sizeof path, "%s/ds.dlq/resubmit.state", t_bus_dir());
    uint8_t good[4096], bad[4096];
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    size_t n = fread(good, 1, sizeof good, f);
    fclose(f);
    cr_assert_eq(n, EVB_DLQS_HDR_BYTES + EVB_DLQS_BLOCK_BYTES);
    static const char *kinds[] = {"zeroed", "0xff", "xor 0x5a", "random", "truncated"};
    srand(10);
    int cases = 0, refused = 0;
    for (size_t at = 0; at < n; at += 4) {
        for (int kind = 0; kind < 5; kind++) {
            size_t len = n;
            memcpy(bad, good, n);
            for (size_t i = at; i < at + 8 && i < n; i++)
                bad[i] = kind == 0 ? 0 : kind == 1 ? 0xff : kind == 2 ? bad[i] ^ 0x5a
                                                                     : (uint8_t)rand();
            if (kind == 4)
                len = at;
            if (len == n && memcmp(bad, good, n) == 0)
                continue;
            put_file(path, bad, len);
            char what[64];
            snprintf(what, sizeof what, "%s at byte %zu", kinds[kind], at);
            cases++;
            int err = 0;
            for (uint64_t o = 0; o < N; o++) {
                int rc = evb_dlq_resubmitted(bus, "ds", o);
                if (rc < 0) {
                    cr_assert(rc == -EBADMSG || rc == -EPROTO, "%s: %d", what, rc);
                    cr_assert(strstr(evb_last_error(), path), "%s: %s", what, evb_last_error());
                    err = rc;
                    continue;
                }
                cr_assert_eq(rc, o < DONE, "%s: offset %llu read as %s", what,
                             (unsigned long long)o, rc ? "resubmitted" : "pending");
            }
            uint64_t count;
            int rc = evb_dlq_resubmitted_count(bus, "ds", &count);
            cr_assert(rc < 0 || count == DONE, "%s: %llu resubmitted counted", what,
                      (unsigned long long)count);
            if (rc < 0)
                err = rc;
            rc = evb_dlq_resubmit(bus, "ds", 0, EVB_RESUBMIT_ALL, never_again, what);
            if (err) {
                refused++;
                cr_assert_lt(rc, 0, "%s: resubmit took a state list could not read", what);
            }
        }
    }
    /* Everything here is damage the format can see. */
    cr_expect_eq(refused, cases, "%d of %d damaged states went unnoticed", cases - refused,
                 cases);
    put_file(path, good, n);
    uint64_t count;
    cr_assert_eq(evb_dlq_resubmitted_count(bus, "ds", &count), 0, "%s", evb_last_error());
    cr_assert_eq(count, DONE);
    cr_assert_eq(evb_dlq_resubmit(bus, "ds", 0, EVB_RESUBMIT_ALL, never_again, "no damage"),
                 N - DONE, "%s", evb_last_error());
    cr_assert_eq(evb_dlq_resubmitted_count(bus, "ds", &count), 0, "%s", evb_last_error());
    cr_assert_eq(count, N);
    int seen[N] = {0};
    cr_assert_eq(count_values("ds", seen, N), 2 * N);
}

/* ---- two records of one event (the way in is at least once) ---- */

static int dup_reports(const evb_resubmit_report *rep, void *arg)
{
    uint64_t *firsts = arg; /* [dlq offset] = the earlier record's + 1 */
    if (rep->status == EVB_RESUBMIT_DUPLICATE && rep->dlq_offset < 8)
        firsts[rep->dlq_offset] = rep->offset + 1;
    return 0;
}

Test(dlq, resubmit_all_skips_a_second_record_of_one_event)
{
    make_topic("d2", 1, EVB_DURABILITY_NONE);
    publish_n("d2", 3);
    /* Event 1 rejected twice, as a reader killed after its reject and
     * before its commit does once it is handed the event again. */
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "twice"};
    cr_assert_eq(evb_consumer_open(&c, bus, "d2", &co), 0);
    for (int k = 0; k < 3; k++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 2000), 0);
        if (k == 0)
            continue;
        cr_assert_eq(evb_consumer_reject(c, &ev, "r"), 0, "%s", evb_last_error());
        if (k == 1)
            cr_assert_eq(evb_consumer_reject(c, &ev, "r"), 0, "%s", evb_last_error());
    }
    evb_consumer_close(c);
    /* DLQ: 0 and 1 hold event 1, 2 holds event 2. */
    uint64_t firsts[8] = {0};
    cr_assert_eq(evb_dlq_resubmit(bus, "d2", 0, EVB_RESUBMIT_ALL, dup_reports, firsts), 2,
                 "%s", evb_last_error());
    cr_expect_eq(firsts[1], 1, "DLQ offset 1 not reported a repeat of 0");
    cr_expect_eq(firsts[0] + firsts[2], 0);
    int seen[3] = {0};
    cr_assert_eq(count_values("d2", seen, 3), 5);
    cr_expect_eq(seen[1], 2, "value-1 seen %d times", seen[1]);
    /* Not marked: a rerun says so again and publishes nothing. */
    cr_expect_eq(evb_dlq_resubmitted(bus, "d2", 1), 0);
    memset(firsts, 0, sizeof firsts);
    cr_assert_eq(evb_dlq_resubmit(bus, "d2", 0, EVB_RESUBMIT_ALL, dup_reports, firsts), 0);
    cr_expect_eq(firsts[1], 1);
}

/* ---- a DLQ whose oldest event is far from 0 ---- */

Test(dlq, state_starts_at_the_oldest_held_offset)
{
    make_topic("far", 1, EVB_DURABILITY_NONE);
    /* A small DLQ ring, lapped many times over by the rejects below. */
    evb_topic_config dc = {.partitions = 1, .ring_bytes = 64 << 10, .file_mode = 0640};
    cr_assert_eq(evb_topic_create(bus, "far.dlq", &dc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "far", NULL), 0);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "far", &co), 0);
    enum { N = 6000 };
    for (int i = 0; i < N; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%d", i);
        evb_msg m = {.value = v, .value_len = (uint32_t)len, .partition = 0,
                     .type = (uint16_t)(100 + i)};
        cr_assert_eq(evb_publish(p, &m), 0);
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        cr_assert_eq(evb_consumer_reject(c, &ev, "far"), 0, "%s", evb_last_error());
    }
    evb_consumer_close(c);
    evb_producer_close(p);
    /* The oldest DLQ event still held. */
    cr_assert_eq(evb_consumer_open(&c, bus, "far.dlq", &co), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    uint64_t oldest = ev.offset;
    evb_consumer_close(c);
    cr_assert_geq(oldest, 2 * EVB_DLQS_BLOCK_BITS, "the DLQ ring was not lapped far (%llu)",
                  (unsigned long long)oldest);
    uint64_t last = N - 1;
    cr_assert_eq(evb_dlq_resubmit(bus, "far", last, 0, NULL, NULL), 1, "%s", evb_last_error());
    char path[4096];
    snprintf(path, sizeof path, "%s/far.dlq/resubmit.state", t_bus_dir());
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    uint64_t blocks = last / EVB_DLQS_BLOCK_BITS - oldest / EVB_DLQS_BLOCK_BITS + 1;
    cr_expect_eq((uint64_t)st.st_size, EVB_DLQS_HDR_BYTES + blocks * EVB_DLQS_BLOCK_BYTES,
                 "%lld bytes: the bitmap does not start at the oldest held offset %llu",
                 (long long)st.st_size, (unsigned long long)oldest);
    cr_expect_eq(evb_dlq_resubmitted(bus, "far", last), 1);
    cr_expect_eq(evb_dlq_resubmitted(bus, "far", oldest), 0);
    cr_expect_eq(evb_dlq_resubmitted(bus, "far", 0), 0, "an offset below the base");
    uint64_t count;
    cr_assert_eq(evb_dlq_resubmitted_count(bus, "far", &count), 0, "%s", evb_last_error());
    cr_expect_eq(count, 1);
    /* The rest go back once; the one done is not done again. */
    int n[5] = {0};
    int rc = evb_dlq_resubmit(bus, "far", 0, EVB_RESUBMIT_ALL, NULL, n);
    cr_assert_geq(rc, 1, "%s", evb_last_error());
    cr_expect_eq((uint64_t)rc, last - oldest, "%d published, %llu held less the one done", rc,
                 (unsigned long long)(last - oldest));
    cr_assert_eq(evb_dlq_resubmitted_count(bus, "far", &count), 0, "%s", evb_last_error());
    cr_expect_eq(count, last - oldest + 1);
}

/* The DLQ's ring is doubled until its larger events fit: for every origin
 * max_event_bytes around where that takes one more doubling (a 64 KiB
 * ring's quarter, less a header, a key's padding and the record's
 * overhead), the DLQ that reject makes passes the same check as any
 * topic, and the reject lands. (With frames padded to lines, one rule
 * sized the ring and another refused it, for 7 of these sizes.) */
Test(dlq, every_origin_size_near_a_ring_doubling_gets_its_dlq)
{
    const uint32_t edge = (64u << 10) / 4 - 64 - EVB_DLQ_OVERHEAD_BYTES;
    for (uint32_t m = edge - 16; m <= edge + 40; m++) {
        char name[32];
        snprintf(name, sizeof name, "m%u", m);
        evb_topic_config tc = {.partitions = 1, .ring_bytes = 64u << 10, .max_event_bytes = m};
        cr_assert_eq(evb_topic_create(bus, name, &tc), 0, "%s: %s", name, evb_last_error());
        publish_n(name, 1);
        evb_consumer *c;
        evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "billing"};
        cr_assert_eq(evb_consumer_open(&c, bus, name, &co), 0);
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 2000), 0);
        cr_assert_eq(evb_consumer_reject(c, &ev, "edge"), 0, "max_event_bytes %u: %s", m,
                     evb_last_error());
        evb_consumer_close(c);
    }
}

/* An origin whose largest event is near the 32-bit limit (a 16 GiB
 * ring's): its DLQ holds records of that event in full, or, where no ring
 * can, the reject is refused with -EMSGSIZE; the record size never wraps
 * to a few hundred bytes. Computed, not made: a 16 GiB ring is no test's. */
Test(dlq, an_origin_near_the_32_bit_limit_gets_a_full_dlq_or_a_refusal)
{
    const uint64_t top = evb_topic_max_event(EVB_RING_MAX_CAPACITY);
    evb_topic_config o = {.partitions = 1, .ring_bytes = EVB_RING_MAX_CAPACITY};
    evb_topic_config d;
    o.max_event_bytes = (uint32_t)(top - EVB_DLQ_OVERHEAD_BYTES);
    cr_assert_eq(evb_dlq_config(&o, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.max_event_bytes, top);
    cr_expect_eq(d.ring_bytes, EVB_RING_MAX_CAPACITY);
    cr_expect_eq(evb_topic_config_check(&d), 0, "%s", evb_last_error());
    for (uint64_t m = top - EVB_DLQ_OVERHEAD_BYTES + 1; m <= top; m += 97) {
        o.max_event_bytes = (uint32_t)m;
        cr_expect_eq(evb_dlq_config(&o, &d), -EMSGSIZE, "max_event_bytes %llu",
                     (unsigned long long)m);
        cr_expect(strstr(evb_last_error(), "no room for a dead-letter record"), "%s",
                  evb_last_error());
    }
    /* And a small origin still gets a DLQ of its own ring's size. */
    o = (evb_topic_config){.partitions = 1, .ring_bytes = 1 << 20, .max_event_bytes = 1000};
    cr_assert_eq(evb_dlq_config(&o, &d), 0);
    cr_expect_eq(d.max_event_bytes, 1000 + EVB_DLQ_OVERHEAD_BYTES);
    cr_expect_eq(d.ring_bytes, 1 << 20);
}
