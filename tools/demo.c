/*
 * demo.c - evbus-demo: two producer processes and two consumer processes
 * through a 4-partition topic on a private bus. Each consumer is a lossless
 * subscriber that must see every event exactly once, in order per
 * partition; the demo prints events/s and MB/s and says whether anything
 * was lost.
 *
 *   evbus-demo [EVENTS_PER_PRODUCER] [VALUE_BYTES]
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evbus.h"

#define PRODUCERS 2
#define CONSUMERS 2
#define BATCH 32

struct shared {
    _Atomic int ready;
    _Atomic int go;
    struct {
        uint64_t events, bytes, ns, bad;
    } res[PRODUCERS + CONSUMERS];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "evbus-demo: %s: %s %s\n", what, evb_strerror(rc), evb_last_error());
    exit(1);
}

static void wait_go(struct shared *sh)
{
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go))
        usleep(100);
}

static void producer(const char *busdir, struct shared *sh, int id, uint64_t n, uint32_t vlen)
{
    evb_bus *bus;
    evb_producer *p;
    int rc;
    if ((rc = evb_bus_open(&bus, busdir, NULL)))
        die("bus", rc);
    evb_producer_options po = {.block_ms = -1};
    if ((rc = evb_producer_open(&p, bus, "demo", &po)))
        die("producer", rc);
    uint8_t *vals = calloc(BATCH, vlen);
    evb_msg m[BATCH];
    wait_go(sh);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n;) {
        size_t k = n - i < BATCH ? (size_t)(n - i) : BATCH;
        for (size_t j = 0; j < k; j++) {
            uint8_t *v = vals + j * vlen;
            uint64_t seq = i + j;
            memcpy(v, &seq, sizeof seq < vlen ? sizeof seq : vlen);
            m[j] = (evb_msg){.value = v, .value_len = vlen, .partition = EVB_PARTITION_ANY};
        }
        rc = evb_publish_batch(p, m, k);
        if (rc < 0)
            die("publish", rc);
        i += (uint64_t)rc;
    }
    sh->res[id].ns = now_ns() - t0;
    sh->res[id].events = n;
    sh->res[id].bytes = n * vlen;
    evb_producer_close(p);
    evb_bus_close(bus);
}

static void consumer(const char *busdir, struct shared *sh, int id, uint64_t total)
{
    evb_bus *bus;
    evb_consumer *c;
    int rc;
    if ((rc = evb_bus_open(&bus, busdir, NULL)))
        die("bus", rc);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .idle = EVB_IDLE_BLOCK};
    if ((rc = evb_consumer_open(&c, bus, "demo", &co)))
        die("consumer", rc);
    uint64_t next_off[4] = {0}, got = 0, bytes = 0, bad = 0;
    wait_go(sh);
    uint64_t t0 = 0;
    while (got < total) {
        evb_event ev;
        rc = evb_consumer_next(c, &ev, 5000);
        if (rc == -ETIMEDOUT)
            break;
        if (rc)
            die("read", rc);
        if (!t0)
            t0 = now_ns();
        if (ev.offset != next_off[ev.partition] || ev.lost_events)
            bad++;
        next_off[ev.partition] = ev.offset + 1;
        got++;
        bytes += ev.value_len;
    }
    sh->res[id].ns = now_ns() - t0;
    sh->res[id].events = got;
    sh->res[id].bytes = bytes;
    sh->res[id].bad = bad + (total - got);
    evb_consumer_close(c);
    evb_bus_close(bus);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    uint32_t vlen = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 64;
    if (!n || vlen < 8 || vlen > 60000) {
        fprintf(stderr, "usage: evbus-demo [EVENTS_PER_PRODUCER>0] [VALUE_BYTES 8..60000]\n");
        return 2;
    }
    char busdir[] = "/dev/shm/evbus-demo-XXXXXX";
    if (!mkdtemp(busdir)) {
        perror("evbus-demo: mkdtemp");
        return 1;
    }
    evb_bus *bus;
    int rc;
    if ((rc = evb_bus_open(&bus, busdir, NULL)))
        die("bus", rc);
    evb_topic_config tc = {.partitions = 4, .ring_bytes = 4 << 20};
    if ((rc = evb_topic_create(bus, "demo", &tc)))
        die("create", rc);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("evbus-demo: %d producers x %llu events of %u bytes -> topic of 4 partitions -> "
           "%d lossless consumers\n", PRODUCERS, (unsigned long long)n, vlen, CONSUMERS);
    fflush(stdout);
    pid_t pids[PRODUCERS + CONSUMERS];
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            if (i < PRODUCERS)
                producer(busdir, sh, i, n, vlen);
            else
                consumer(busdir, sh, i, n * PRODUCERS);
            _exit(0);
        }
    }
    while (atomic_load(&sh->ready) < PRODUCERS + CONSUMERS)
        usleep(100);
    atomic_store(&sh->go, 1);
    int failed = 0;
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        failed |= !WIFEXITED(st) || WEXITSTATUS(st);
    }
    uint64_t lost = 0;
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        double s = sh->res[i].ns / 1e9;
        printf("  %-9s %d: %10llu events in %6.3f s = %6.2f M events/s, %7.1f MB/s\n",
               i < PRODUCERS ? "producer" : "consumer", i < PRODUCERS ? i : i - PRODUCERS,
               (unsigned long long)sh->res[i].events, s, sh->res[i].events / s / 1e6,
               sh->res[i].bytes / s / 1e6);
        if (i >= PRODUCERS)
            lost += sh->res[i].bad;
    }
    evb_topic_delete(bus, "demo");
    evb_bus_close(bus);
    char meta[sizeof busdir + 16];
    snprintf(meta, sizeof meta, "%s/bus.meta", busdir);
    unlink(meta);
    rmdir(busdir);
    if (failed || lost) {
        printf("CHECK FAILED: %llu events lost or out of order\n", (unsigned long long)lost);
        return 1;
    }
    printf("check: every consumer received all %llu events, in order per partition, "
           "none lost\n", (unsigned long long)(n * PRODUCERS));
    return 0;
}
