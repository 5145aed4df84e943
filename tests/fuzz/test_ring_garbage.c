/*
 * test_ring_garbage.c - ring files overwritten with random bytes, many
 * seeds and several shapes of damage: opening or reading must fail with
 * an error code or deliver only well-formed events, never crash or read
 * out of bounds (run under ASan in CI).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_format.h"
#include "t_helpers.h"

static uint64_t rng;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Damage modes: 0 all random, 1 header random, 2 data random with a valid
 * header, 3 sparse flips everywhere, 4 plausible stamps with bad lengths. */
static void damage(uint8_t *m, size_t bytes, int mode)
{
    size_t from = mode == 2 || mode == 4 ? EVB_RING_DATA_OFFSET : 0;
    size_t to = mode == 1 ? EVB_RING_DATA_OFFSET : bytes;
    if (mode == 3) {
        for (int i = 0; i < 4000; i++)
            m[next_rand() % bytes] ^= (uint8_t)next_rand();
        return;
    }
    if (mode == 4) {
        /* Frames whose stamps say committed but whose fields lie. */
        uint64_t cap = bytes - EVB_RING_DATA_OFFSET;
        for (uint64_t pos = 0; pos + 64 <= cap; pos += 8 * (1 + next_rand() % 16)) {
            uint64_t *w = (uint64_t *)(void *)(m + EVB_RING_DATA_OFFSET + pos);
            w[0] = pos | (next_rand() & 1 ? EVB_STAMP_DATA : EVB_STAMP_PAD);
            for (int k = 1; k < 8; k++)
                w[k] = next_rand() % 4 ? next_rand() : next_rand() % 1024;
        }
        uint64_t *tail = (uint64_t *)(void *)(m + 128);
        tail[0] = next_rand() % (4 * cap);
        return;
    }
    for (size_t i = from; i < to; i += 8) {
        uint64_t r = next_rand();
        memcpy(m + i, &r, to - i < 8 ? to - i : 8);
    }
}

static int on_event(const evb_event *ev, void *arg)
{
    /* Touch every delivered byte so ASan sees any bad pointer. */
    uint64_t *sum = arg;
    for (uint32_t i = 0; i < ev->key_len; i++)
        *sum += ((const uint8_t *)ev->key)[i];
    for (uint32_t i = 0; i < ev->value_len; i++)
        *sum += ((const uint8_t *)ev->value)[i];
    return 0;
}

Test(ring_garbage, random_bytes_never_crash, .timeout = 300)
{
    const char *dir = t_bus_dir();
    evb_bus_options bo = {.dead_ms = 4, .stall_ms = 8};
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, dir, &bo), 0);
    int seeds = (int)t_env_u64("EVB_TEST_FUZZ_SEEDS", 200);
    int opened = 0, failed = 0;
    uint64_t sum = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        char topic[32], path[512];
        snprintf(topic, sizeof topic, "g%d", seed);
        evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 512};
        cr_assert_eq(evb_topic_create(bus, topic, &tc), 0);
        /* Some honest traffic first, so damage meets real frames. */
        evb_producer *p;
        cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), 0);
        for (int i = 0; i < 700; i++) {
            char v[100];
            evb_msg m = {.value = v, .value_len = (uint32_t)(i % 100), .partition = 0};
            evb_publish(p, &m);
        }
        evb_producer_close(p);
        snprintf(path, sizeof path, "%s/%s/0.ring", dir, topic);
        int fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0);
        struct stat st;
        fstat(fd, &st);
        uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        cr_assert_neq(m, MAP_FAILED);
        rng = (uint64_t)seed * 0x9e3779b97f4a7c15ull;
        damage(m, (size_t)st.st_size, seed % 5);
        munmap(m, (size_t)st.st_size);
        close(fd);

        evb_consumer *c;
        evb_consumer_options co = {.kind = (uint32_t)(seed % 3), .name = "fz",
                                   .start = EVB_START_EARLIEST};
        int rc = evb_consumer_open(&c, bus, topic, &co);
        if (rc) {
            failed++;
            continue;
        }
        opened++;
        for (int round = 0; round < 20; round++) {
            rc = evb_consumer_poll(c, on_event, &sum, 1000);
            if (rc < 0)
                break;
        }
        evb_consumer_close(c);
        if (evb_producer_open(&p, bus, topic, NULL) == 0) {
            evb_msg m2 = {.value = "x", .value_len = 1, .partition = 0};
            evb_publish(p, &m2);
            evb_producer_close(p);
        }
        evb_topic_delete(bus, topic);
    }
    cr_log_info("opened %d, refused %d, checksum %llu", opened, failed,
                (unsigned long long)sum);
    cr_expect_gt(failed, 0, "header damage was never detected");
    cr_expect_gt(opened, 0, "data damage never reached the reader");
    evb_bus_close(bus);
    t_bus_cleanup();
}
