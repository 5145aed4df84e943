/*
 * test_ring_hostile_writer.c - the two-process ring fuzz of issue 9: while
 * an honest producer process publishes checksummed values, a hostile
 * process with the ring mapped stores random words into it (header,
 * slots, data, or all of them, by seed), and this process reads. The
 * reader may only return events or its documented errors, each call
 * within a bounded time, and the events it returns are well-formed; when
 * the hostile writer touches only producer and reader slots (words no
 * value depends on), every delivered value must also pass its checksum.
 * Seeds: EVB_TEST_FUZZ_SEEDS (CI runs more).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_format.h"
#include "t_helpers.h"

enum { MODE_SLOTS, MODE_HEADER, MODE_DATA, MODE_ANY, MODES };

static struct t_shared *sh;
static char ring_path[512];
static evb_bus *bus;
static char topic[32];

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int honest(void *arg)
{
    (void)arg;
    evb_producer_options po = {.block_ms = 5};
    evb_producer *p;
    if (evb_producer_open(&p, bus, topic, &po))
        return 0; /* the header may be damaged already */
    char v[256];
    for (uint64_t seq = 0; !atomic_load_explicit(&sh->done, memory_order_relaxed); seq++) {
        uint32_t len = 24 + (uint32_t)(seq * 29 % 200);
        t_value_fill(v, len, 1, seq);
        evb_msg m = {.value = v, .value_len = len, .partition = 0};
        int rc = evb_publish(p, &m);
        if (rc && rc != -EAGAIN && rc != -ETIMEDOUT && rc != -ECANCELED)
            break; /* -EBADMSG: the ring is damaged, as it should say */
    }
    evb_producer_close(p);
    return 0;
}

static int hostile(void *arg)
{
    uint64_t seed = *(uint64_t *)arg;
    int mode = (int)(seed % MODES);
    int fd = open(ring_path, O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return 1;
    size_t bytes = (size_t)st.st_size;
    uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 1;
    uint64_t s = seed * 0x9e3779b97f4a7c15ull | 1;
    uint64_t cap = bytes - EVB_RING_DATA_OFFSET;
    for (int i = 0; i < 3000; i++) {
        size_t from = 0, to = bytes;
        if (mode == MODE_SLOTS) {
            from = EVB_PRODUCER_SLOTS_OFFSET;
            to = EVB_READER_SLOTS_OFFSET + EVB_RING_READER_SLOTS * EVB_LINE;
        } else if (mode == MODE_HEADER) {
            to = 1024;
        } else if (mode == MODE_DATA) {
            from = EVB_RING_DATA_OFFSET;
        }
        size_t at = (from + xs(&s) % (to - from)) & ~(size_t)7;
        uint64_t r = xs(&s), w;
        switch (r % 5) {
        case 0: w = xs(&s); break;                        /* garbage */
        case 1: w = xs(&s) % (4 * cap) & ~7ull; break;   /* a plausible position */
        case 2: w = (xs(&s) % (4 * cap) & ~7ull) | (1 + (r >> 8) % 2); break; /* a stamp */
        case 3: w = xs(&s) % 4096; break;                 /* a small length */
        default: w = 0; break;
        }
        memcpy(m + at, &w, sizeof w);
        if (i % 32 == 0)
            usleep(100);
    }
    munmap(m, bytes);
    close(fd);
    return 0;
}

struct seen {
    uint64_t events, bad_sums;
};

Test(ring_hostile_writer, reader_returns_events_or_errors, .timeout = 600)
{
    const char *dir = t_bus_dir();
    evb_bus_options bo = {.dead_ms = 20, .stall_ms = 50};
    cr_assert_eq(evb_bus_open(&bus, dir, &bo), 0);
    sh = t_shared_new();
    uint64_t seeds = t_env_u64("EVB_TEST_FUZZ_SEEDS", 20);
    uint64_t events = 0, failed = 0;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        int mode = (int)(seed % MODES);
        snprintf(topic, sizeof topic, "hw%llu", (unsigned long long)seed);
        evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 512};
        cr_assert_eq(evb_topic_create(bus, topic, &tc), 0);
        snprintf(ring_path, sizeof ring_path, "%s/%s/0.ring", dir, topic);
        atomic_store_explicit(&sh->done, 0, memory_order_relaxed);
        evb_consumer *c;
        evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
        cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0);
        pid_t prod = t_spawn(honest, NULL);
        pid_t bad = t_spawn(hostile, &seed);
        /* A read that never returns cannot be timed from this thread: the
         * alarm's default action ends the test as a crash, naming no seed
         * but well before the suite's timeout. */
        alarm(30);

        struct seen sn = {0};
        uint64_t until = t_now_ms() + 300;
        int rc = 0;
        while (t_now_ms() < until) {
            evb_event ev;
            uint64_t t0 = t_now_ms();
            rc = evb_consumer_next(c, &ev, 5);
            cr_assert_lt(t_now_ms() - t0, 2000, "seed %llu: a 5 ms read took %llu ms",
                         (unsigned long long)seed, (unsigned long long)(t_now_ms() - t0));
            cr_assert(rc == 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EBADMSG,
                      "seed %llu: read returned %d (%s)", (unsigned long long)seed, rc,
                      evb_last_error());
            if (rc == -EBADMSG)
                break;
            if (rc)
                continue;
            cr_assert_leq((uint64_t)ev.key_len + ev.value_len, tc.max_event_bytes);
            uint64_t sum = 0;
            for (uint32_t i = 0; i < ev.key_len; i++)
                sum += ((const uint8_t *)ev.key)[i];
            for (uint32_t i = 0; i < ev.value_len; i++)
                sum += ((const uint8_t *)ev.value)[i];
            (void)sum;
            uint32_t pid;
            uint64_t seq;
            bool ok = ev.value_len >= 24 && t_value_check(ev.value, ev.value_len, &pid, &seq);
            sn.events++;
            sn.bad_sums += !ok;
            if (mode == MODE_SLOTS)
                cr_assert(ok, "seed %llu: a value of %u bytes at offset %llu fails its checksum "
                          "though only slots were hit", (unsigned long long)seed, ev.value_len,
                          (unsigned long long)ev.offset);
        }
        failed += rc == -EBADMSG;
        events += sn.events;
        atomic_store_explicit(&sh->done, 1, memory_order_relaxed);
        int hx = t_wait_exit(bad, 10000);
        cr_assert_eq(hx, 0, "seed %llu: hostile writer exit %d", (unsigned long long)seed, hx);
        int px = t_wait_exit(prod, 3000);
        /* A producer must not hang on hostile words either (issue 9
         * defect 2): each publish returns within its block_ms or with
         * -EBADMSG, so it sees `done` within the wait. */
        cr_assert(px == 0, "seed %llu: producer %s: exit %d", (unsigned long long)seed,
                  px == -1 ? "hung" : "died", px);
        alarm(0);
        evb_consumer_close(c);
        evb_topic_delete(bus, topic);
    }
    cr_log_info("%llu events read, %llu readers saw -EBADMSG", (unsigned long long)events,
                (unsigned long long)failed);
    cr_expect_gt(events, 0, "no event ever reached the reader");
    evb_bus_close(bus);
    t_bus_cleanup();
}
