/*
 * feed.c - a C producer process for the Python binding's tests and
 * benchmark (bindings/python): publishes events of a fixed size whose
 * content a reader in any language can check, as fast as the topic takes
 * them (evb_publish_batch, block_ms -1), to a topic someone else created.
 *
 * Value layout (little-endian), SIZE >= 16 bytes:
 *   [0, 8)     the event's sequence number in its partition (its offset
 *              when the topic was new)
 *   [8, 12)    CRC-32 (zlib's, as Python's zlib.crc32) of bytes [12, SIZE)
 *   [12, 16)   the partition
 *   [16, SIZE) bytes drawn from a xorshift seeded by sequence and partition
 * Partitions are filled round-robin in runs of --batch events.
 *
 * --plain (benchmarks): only the sequence and partition words change, the
 * rest is a constant pattern and the CRC is not computed, so the producer
 * costs what a real one would, not a checksum per byte.
 *
 * usage: evb_feed BUS TOPIC EVENTS SIZE [--batch N] [--cpu N] [--plain]
 */
#include <evbus.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_zlib(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void fill(uint8_t *v, uint32_t size, uint64_t seq, uint32_t part)
{
    uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)part << 32) ^ size;
    for (uint32_t i = 16; i < size; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t n = size - i < 8 ? size - i : 8;
        memcpy(v + i, &x, n);
    }
    memcpy(v, &seq, 8);
    memcpy(v + 12, &part, 4);
    uint32_t crc = crc32_zlib(v + 12, size - 12);
    memcpy(v + 8, &crc, 4);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "evb_feed: %s: %s (%s)\n", what, evb_strerror(rc), evb_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: evb_feed BUS TOPIC EVENTS SIZE [--batch N] [--cpu N] [--plain]\n");
        return 2;
    }
    uint64_t events = strtoull(argv[3], NULL, 0);
    uint32_t size = (uint32_t)strtoul(argv[4], NULL, 0);
    uint32_t batch = 32;
    int plain = 0;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--plain")) {
            plain = 1;
            continue;
        }
        if (i + 1 == argc)
            break;
        if (!strcmp(argv[i], "--batch")) {
            batch = (uint32_t)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--cpu")) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(atoi(argv[++i]), &set);
            sched_setaffinity(0, sizeof set, &set);
        }
    }
    if (size < 16 || batch == 0 || batch > 4096) {
        fprintf(stderr, "evb_feed: SIZE must be >= 16 and --batch 1..4096\n");
        return 2;
    }
    crc_init();
    evb_bus *bus;
    evb_producer *p;
    int rc = evb_bus_open(&bus, argv[1], NULL);
    if (rc)
        return fail(argv[1], rc);
    struct evb_topic_info ti;
    if ((rc = evb_topic_info(bus, argv[2], &ti)))
        return fail(argv[2], rc);
    uint32_t parts = ti.config.partitions;
    if ((rc = evb_producer_open(&p, bus, argv[2], &(evb_producer_options){.block_ms = -1})))
        return fail(argv[2], rc);
    uint8_t *vals = malloc((size_t)batch * size);
    evb_msg *msgs = calloc(batch, sizeof *msgs);
    uint64_t *seq = calloc(parts, sizeof *seq);
    if (!vals || !msgs || !seq)
        return fail("malloc", -12);
    uint64_t sent = 0;
    uint32_t part = 0;
    while (sent < events) {
        uint32_t n = events - sent < batch ? (uint32_t)(events - sent) : batch;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *v = vals + (size_t)i * size;
            if (plain && sent) {
                memcpy(v, &seq[part], 8);
                memcpy(v + 12, &part, 4);
                seq[part]++;
            } else {
                fill(v, size, seq[part]++, part);
            }
            msgs[i] = (evb_msg){.value = v, .value_len = size, .partition = (int32_t)part};
        }
        for (uint32_t done = 0; done < n;) {
            rc = evb_publish_batch(p, msgs + done, n - done);
            if (rc < 0)
                return fail("publish", rc);
            done += (uint32_t)rc;
        }
        sent += n;
        part = part + 1 == parts ? 0 : part + 1;
    }
    evb_producer_close(p);
    evb_bus_close(bus);
    free(vals);
    free(msgs);
    free(seq);
    return 0;
}
