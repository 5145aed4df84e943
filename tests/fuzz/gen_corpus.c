/*
 * gen_corpus.c - writes the seed corpus of the fuzz targets from files
 * the bus itself produced (rings, segments, indexes, topic.conf,
 * bus.meta), encoded as each target reads its input. Run by
 * gen-corpus.sh; seeds are regenerated after a format change, and crash
 * inputs kept beside them (named crash-*) stay.
 *
 * usage: gen_corpus CORPUS_DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "evbus.h"
#include "ring.h"
#include "segment.h"
#include "t_helpers.h"

static const char *out_dir;

#define DIE() die(__LINE__)
__attribute__((noreturn)) static void die(int line)
{
    fprintf(stderr, "gen_corpus.c:%d: failed (%s)\n", line, evb_last_error());
    exit(1);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len ? (size_t)len : 1);
    if (fread(p, 1, (size_t)len, f) != (size_t)len)
        exit(1);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* Bytes up to the last non-zero one: the targets zero-fill the rest. */
static size_t trimmed(const uint8_t *p, size_t n)
{
    while (n && !p[n - 1])
        n--;
    return n;
}

struct seed {
    uint8_t buf[1 << 20];
    size_t n;
};
static struct seed s;

static void put(const void *p, size_t n)
{
    if (s.n + n > sizeof s.buf)
        DIE();
    memcpy(s.buf + s.n, p, n);
    s.n += n;
}

static void put_u16(uint16_t v) { put(&v, 2); }

static void emit(const char *target, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s.buf, 1, s.n, f) != s.n || fclose(f)) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
    s.n = 0;
}

/* fuzz_ring.c's layout: control, header, slots 0..3 of each kind, data. */
static void ring_seed(const char *ring_path, const char *name, uint8_t c0, uint8_t c1,
                      uint8_t c2)
{
    size_t n;
    uint8_t *img = slurp(ring_path, &n);
    uint8_t ctrl[16] = {c0, c1, c2, 24};
    put(ctrl, sizeof ctrl);
    put(img, 1024);
    put(img + EVB_PRODUCER_SLOTS_OFFSET, 512);
    put(img + EVB_READER_SLOTS_OFFSET, 512);
    put(img + EVB_RING_DATA_OFFSET, trimmed(img + EVB_RING_DATA_OFFSET,
                                            n - EVB_RING_DATA_OFFSET));
    emit("ring", name);
    free(img);
}

static void publish(evb_bus *bus, const char *topic, int events, int seed)
{
    evb_producer *p;
    if (evb_producer_open(&p, bus, topic, NULL))
        exit(1);
    char v[300];
    for (int i = 0; i < events; i++) {
        uint32_t len = 24 + (uint32_t)((i * 37 + seed) % 200);
        t_value_fill(v, len, 1, (uint64_t)i);
        evb_msg m = {.key = i % 3 ? "k" : NULL, .key_len = i % 3 ? 1 : 0, .value = v,
                     .value_len = len, .partition = -1};
        int rc;
        /* A durable ring waits for its flusher. */
        while ((rc = evb_publish(p, &m)) == -EAGAIN || rc == -ETIMEDOUT)
            usleep(1000);
        if (rc) {
            fprintf(stderr, "publish: %d\n", rc);
            DIE();
        }
    }
    evb_producer_close(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    char bdir[PATH_MAX], ddir[PATH_MAX], path[PATH_MAX];
    snprintf(bdir, sizeof bdir, "%s", t_bus_dir());
    snprintf(ddir, sizeof ddir, "%s", t_data_dir());
    evb_bus_options bo = {.data_dir = ddir};
    evb_bus *bus;
    if (evb_bus_open(&bus, bdir, &bo))
        DIE();
    evb_topic_config small = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 512};
    evb_topic_config dur = small;
    dur.durability = EVB_DURABILITY_ASYNC;
    dur.segment_bytes = 64 << 10;
    if (evb_topic_create(bus, "empty", &small) || evb_topic_create(bus, "some", &small) ||
        evb_topic_create(bus, "lapped", &small) || evb_topic_create(bus, "open", &small) ||
        evb_topic_create(bus, "dur", &dur))
        DIE();
    publish(bus, "some", 40, 1);
    publish(bus, "lapped", 900, 2);
    publish(bus, "dur", 700, 3);

    /* A reader and a claim left open, as in a live bus. */
    publish(bus, "open", 20, 4);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    evb_producer *p;
    struct evb_claim cl;
    if (evb_consumer_open(&c, bus, "open", &co) || evb_producer_open(&p, bus, "open", NULL) ||
        evb_claim(p, 0, NULL, 0, 100, &cl))
        DIE();

    const char *rings[] = {"empty", "some", "lapped", "open", "dur"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s/0.ring", bdir, rings[i]);
        char name[64];
        for (uint8_t mode = 0; mode < 3; mode++) {
            snprintf(name, sizeof name, "%s-%u", rings[i], mode);
            ring_seed(path, name, (uint8_t)(mode + i), mode == 2 ? 1 : mode,
                      (uint8_t)(i == 3));
        }
    }
    evb_abort(p, &cl);
    evb_producer_close(p);
    evb_consumer_close(c);

    /* Segments and indexes of the durable topic (its producer flushed
     * them on close). */
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/dur/0", ddir);
    uint64_t *bases;
    size_t nb;
    if (evb_seg_list(pdir, &bases, &nb) || !nb)
        DIE();
    uint8_t ctrl[12] = {0};
    put(ctrl, sizeof ctrl);
    for (size_t i = 0; i < nb && i < 4; i++) {
        size_t n;
        evb_seg_path(path, sizeof path, pdir, bases[i], "log");
        uint8_t *seg = slurp(path, &n);
        size_t t = trimmed(seg, n);
        if (t > UINT16_MAX)
            t = UINT16_MAX;
        uint8_t rec[2] = {0, (uint8_t)(bases[i] / (64 << 10))};
        put(rec, 2);
        put_u16((uint16_t)t);
        put(seg, t);
        free(seg);
        evb_seg_path(path, sizeof path, pdir, bases[i], "idx");
        if (access(path, F_OK) == 0) {
            uint8_t *idx = slurp(path, &n);
            uint8_t r2[2] = {2, rec[1]};
            put(r2, 2);
            put_u16((uint16_t)n);
            put(idx, n);
            free(idx);
        }
    }
    emit("segment", "durable-log");
    /* fuzz_dump_json.c: flags (bit 0 pad to the segment size, bit 1
     * --values), then the segment's bytes. */
    for (size_t i = 0; i < nb && i < 2; i++) {
        size_t n;
        evb_seg_path(path, sizeof path, pdir, bases[i], "log");
        uint8_t *seg = slurp(path, &n);
        for (uint8_t flags = 1; flags <= 3; flags += 2) {
            put(&flags, 1);
            put(seg, trimmed(seg, n));
            char name[32];
            snprintf(name, sizeof name, "seg%zu-%s", i, flags & 2 ? "values" : "plain");
            emit("dump_json", name);
        }
        free(seg);
    }
    for (size_t i = 0; i < nb && i < 4; i++) {
        size_t n;
        evb_seg_path(path, sizeof path, pdir, bases[i], "idx");
        if (access(path, F_OK))
            continue;
        uint8_t *idx = slurp(path, &n);
        uint8_t sel = (uint8_t)(bases[i] / (64 << 10));
        uint64_t a = 0, b = 4096;
        put(&sel, 1);
        put(&a, 8);
        put(&b, 8);
        put(idx, n);
        free(idx);
        char name[32];
        snprintf(name, sizeof name, "idx-%zu", i);
        emit("index", name);
    }
    free(bases);

    /* topic.conf of a plain and a durable topic. */
    const char *confs[][2] = {{bdir, "some"}, {ddir, "dur"}};
    for (int i = 0; i < 2; i++) {
        size_t n;
        snprintf(path, sizeof path, "%s/%s/topic.conf", confs[i][0], confs[i][1]);
        uint8_t *conf = slurp(path, &n);
        put(conf, n);
        free(conf);
        emit("topic_conf", confs[i][1]);
    }

    /* bus.meta: its used bytes (the target pads the page), alone and with
     * the data directory record. */
    size_t n;
    snprintf(path, sizeof path, "%s/bus.meta", bdir);
    uint8_t *meta = slurp(path, &n);
    uint8_t flags = 0;
    put(&flags, 1);
    put_u16(EVB_BUS_META_USED);
    put(meta, EVB_BUS_META_USED);
    emit("bus_meta", "meta");
    flags = 2;
    put(&flags, 1);
    put_u16(EVB_BUS_META_USED);
    put(meta, EVB_BUS_META_USED);
    put("/data\n", 6);
    emit("bus_meta", "meta-record");
    free(meta);

    evb_bus_close(bus);
    t_bus_cleanup();
    return 0;
}
