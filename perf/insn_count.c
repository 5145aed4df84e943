/*
 * insn_count.c - a fixed amount of per-event work for an instruction
 * counter (perf/insn_guard.sh runs it under valgrind's cachegrind, since
 * these VMs have no hardware counters). One process, no timing, no
 * threads: the count is the same on a quiet machine and a busy one.
 *
 *   insn_count MODE N [exclusive]
 *
 * MODE publish: N evb_publish of 64-byte values into a 1-partition topic
 *               (no reader, so nothing gates it);
 *      receipt: N evb_publish_receipt of 64-byte values (the pipelined
 *               acknowledgement's publish, which takes the full path);
 *      claim:   N evb_claim + 8-byte stores + evb_commit of 64 bytes;
 *      consume: N events published in batches of 32 first, then read by a
 *               lossless subscriber with evb_consumer_poll (256 a call),
 *               each value's first word summed.
 * exclusive: the producer is opened with EVB_PRODUCER_EXCLUSIVE.
 * The guard runs each mode at two N and takes the difference, so setup
 * and teardown cancel out and what is left is the cost per event.
 */
#include "bench_util.h"

#define VALUE 64u
#define RING (64u << 20)

static uint64_t sum;

static int on_event(const evb_event *ev, void *arg)
{
    (void)arg;
    uint64_t w;
    memcpy(&w, ev->value, sizeof w);
    sum += w;
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "insn_count: %s: %s (%s)\n", what, evb_strerror(rc), evb_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "exclusive"))) {
        fprintf(stderr, "usage: insn_count publish|receipt|claim|consume N [exclusive]\n");
        return 2;
    }
    const char *mode = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    if (n == 0 || n * 128 > RING / 2 ||
        (strcmp(mode, "publish") && strcmp(mode, "receipt") && strcmp(mode, "claim") &&
         strcmp(mode, "consume"))) {
        fprintf(stderr, "insn_count: bad mode or N (1..%u)\n", RING / 256);
        return 2;
    }
    char dir[256];
    evb_bus *bus;
    evb_producer *p;
    evb_consumer *c = NULL;
    if (bench_one_topic("insn_count", dir, sizeof dir, RING,
                        argc == 4 ? EVB_PRODUCER_EXCLUSIVE : 0, &bus, &p))
        return 1;
    int rc;
    uint64_t value[VALUE / 8] = {0};
    if (!strcmp(mode, "consume")) {
        evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS,
                                   .start = EVB_START_EARLIEST};
        if ((rc = evb_consumer_open(&c, bus, "t", &co)))
            return fail("evb_consumer_open", rc);
        evb_msg m[32];
        for (uint64_t i = 0; i < n; i += 32) {
            size_t k = n - i < 32 ? (size_t)(n - i) : 32;
            for (size_t j = 0; j < k; j++)
                m[j] = (evb_msg){.value = value, .value_len = VALUE,
                                 .partition = EVB_PARTITION_ANY};
            if ((rc = evb_publish_batch(p, m, k)) != (int)k)
                return fail("evb_publish_batch", rc);
        }
        for (uint64_t got = 0; got < n;) {
            rc = evb_consumer_poll(c, on_event, NULL, 256);
            if (rc < 0)
                return fail("evb_consumer_poll", rc);
            got += (uint64_t)rc;
        }
    } else if (!strcmp(mode, "publish")) {
        evb_msg m = {.value = value, .value_len = VALUE, .partition = EVB_PARTITION_ANY};
        for (uint64_t i = 0; i < n; i++) {
            value[0] = i;
            if ((rc = evb_publish(p, &m)))
                return fail("evb_publish", rc);
        }
    } else if (!strcmp(mode, "receipt")) {
        evb_msg m = {.value = value, .value_len = VALUE, .partition = EVB_PARTITION_ANY};
        for (uint64_t i = 0; i < n; i++) {
            evb_receipt r;
            value[0] = i;
            if ((rc = evb_publish_receipt(p, &m, &r)))
                return fail("evb_publish_receipt", rc);
            sum += r.end_position;
        }
    } else {
        for (uint64_t i = 0; i < n; i++) {
            struct evb_claim cl;
            if ((rc = evb_claim(p, EVB_PARTITION_ANY, NULL, 0, VALUE, &cl)))
                return fail("evb_claim", rc);
            memcpy(cl.value, value, VALUE);
            if ((rc = evb_commit(p, &cl)))
                return fail("evb_commit", rc);
        }
    }
    evb_consumer_close(c);
    evb_producer_close(p);
    evb_bus_close(bus);
    rm_rf(dir);
    printf("%s %llu %llu\n", mode, (unsigned long long)n, (unsigned long long)sum);
    return 0;
}
