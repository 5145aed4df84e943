/*
 * fuzz_cursor_file.c - libFuzzer target: a named consumer's cursor file
 * (bus/cursor_file.c, cursor_format.h) of hostile bytes, through
 * everything that reads it: evb_consumer_open (check, ownership, the
 * committed start), reading, commit, reopen, and the retention's scan
 * (evb_consumers_min_committed).
 *
 * Input: u8 flags, then the file's bytes. Flags bit 0: zero-pad them to a
 * cursor file's size for the topic (96 bytes: two partitions); bit 1: the
 * durable topic (its cursor files live in the data directory) instead of
 * the in-memory one; bit 2: the owner word (offset 16) is left as the
 * input says, else cleared (a live owner only gives -EBUSY). The fixture,
 * made at start, is a bus with both topics (two partitions, 64 KiB rings,
 * 60 events in each partition, lapped by none); where the library keeps
 * consumer "fz"'s file is found after opening it once, not assumed.
 *
 * What must hold: the open returns 0 or a documented error; an accepted
 * file gives a consumer that reads (0, -EAGAIN or -ETIMEDOUT, or -EBADMSG
 * naming an unexpected offset when the committed pair contradicts the
 * ring), commits and reopens; the scan's minimum is a position the
 * partition has (at most its tail) or none.
 */
#include "fuzz.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "cursor_format.h"
#include "evbus.h"

#define PARTS 2u

static evb_bus *bus;
static const char *const topics[2] = {"mem", "dur"};
static char paths[2][PATH_MAX];
static struct evb_topic_map *maps[2];

/* nftw callback: the fixture's fz.cur files, by topic directory name. */
static int find_cur(const char *p, const struct stat *s, int flag, struct FTW *w)
{
    (void)s;
    if (flag != FTW_F || strcmp(p + w->base, "fz.cur"))
        return 0;
    for (int t = 0; t < 2; t++) {
        char part[32];
        snprintf(part, sizeof part, "/%s/", topics[t]);
        if (strstr(p, part))
            snprintf(paths[t], sizeof paths[t], "%s", p);
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char bdir[256], ddir[256];
    snprintf(bdir, sizeof bdir, "%s/bus", fuzz_scratch());
    snprintf(ddir, sizeof ddir, "%s/data", fuzz_scratch());
    evb_bus_options bo = {.data_dir = ddir};
    FUZZ_CHECK(evb_bus_open(&bus, bdir, &bo) == 0, "bus: %s", evb_last_error());
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = 64 << 10, .max_event_bytes = 512};
    FUZZ_CHECK(evb_topic_create(bus, "mem", &tc) == 0, "mem: %s", evb_last_error());
    tc.durability = EVB_DURABILITY_ASYNC;
    tc.segment_bytes = 64 << 10;
    FUZZ_CHECK(evb_topic_create(bus, "dur", &tc) == 0, "dur: %s", evb_last_error());
    for (int t = 0; t < 2; t++) {
        evb_producer *p;
        FUZZ_CHECK(evb_producer_open(&p, bus, topics[t], NULL) == 0, "producer");
        for (int i = 0; i < 120; i++) {
            char v[40];
            int n = snprintf(v, sizeof v, "event %d", i);
            evb_msg m = {.value = v, .value_len = (uint32_t)n, .partition = i % 2};
            FUZZ_CHECK(evb_publish(p, &m) == 0, "publish");
        }
        evb_producer_close(p);
        evb_consumer *c;
        evb_consumer_options o = {.kind = EVB_CONSUMER, .name = "fz"};
        FUZZ_CHECK(evb_consumer_open(&c, bus, topics[t], &o) == 0, "open: %s",
                   evb_last_error());
        evb_consumer_close(c);
        FUZZ_CHECK(evb_topic_map_open(bus, topics[t], &maps[t]) == 0, "map");
    }
    nftw(bdir, find_cur, 16, FTW_PHYS);
    nftw(ddir, find_cur, 16, FTW_PHYS);
    FUZZ_CHECK(paths[0][0] && paths[1][0], "fz.cur not found under %s and %s", bdir, ddir);
    return 0;
}

static void check_open_rc(int rc)
{
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -EBUSY ||
                   rc == -EMEDIUMTYPE,
               "consumer_open %d (%s)", rc, evb_last_error());
}

/* Read what is there, commit; the consumer must work, unless the file's
 * committed pair is one the ring contradicts (the frame at its position
 * carries another offset): that is a damaged commit, named as such
 * (-EBADMSG, "unexpected offset"), never a silent start. Returns whether
 * it read and committed. */
static bool use(evb_consumer *c, int t)
{
    evb_event ev;
    int rc = 0;
    for (int i = 0; i < 200 && (rc = evb_consumer_next(c, &ev, 0)) == 0; i++)
        FUZZ_CHECK(ev.partition < PARTS && ev.value_len < 40, "event p%u len %u",
                   ev.partition, ev.value_len);
    if (rc == -EBADMSG && strstr(evb_last_error(), "unexpected offset"))
        return false;
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -ETIMEDOUT, "%s: next %d (%s)", topics[t],
               rc, evb_last_error());
    FUZZ_CHECK(evb_consumer_commit(c) == 0, "commit");
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    int t = flags >> 1 & 1;
    static uint8_t file[4096];
    size_t n;
    const uint8_t *p = fuzz_bytes(&in, sizeof file, &n);
    memset(file, 0, sizeof file);
    memcpy(file, p, n);
    size_t want = evb_cur_file_bytes(PARTS);
    if (flags & 1 && n < want)
        n = want;
    if (!(flags & 4) && n >= 24)
        memset(file + 16, 0, 8);
    if (!fuzz_write(paths[t], file, n))
        return 0;

    evb_consumer *c;
    evb_consumer_options o = {.kind = EVB_CONSUMER, .name = "fz"};
    int rc = evb_consumer_open(&c, bus, topics[t], &o);
    check_open_rc(rc);
    if (rc == 0 && !use(c, t)) {
        evb_consumer_close(c);
    } else if (rc == 0) {
        evb_consumer_close(c);
        /* What this consumer committed is its file now: it opens. */
        rc = evb_consumer_open(&c, bus, topics[t], &o);
        FUZZ_CHECK(rc == 0, "reopen after commit %d (%s)", rc, evb_last_error());
        use(c, t);
        evb_consumer_close(c);
    }
    for (uint32_t part = 0; part < PARTS; part++) {
        struct evb_partition_stat ps;
        FUZZ_CHECK(evb_partition_stat(bus, topics[t], part, &ps) == 0, "stat");
        uint64_t min = evb_consumers_min_committed(maps[t], part);
        FUZZ_CHECK(min == UINT64_MAX || min <= ps.tail_position,
                   "%s/%u: min committed %llu past the tail %llu", topics[t], part,
                   (unsigned long long)min, (unsigned long long)ps.tail_position);
    }
    return 0;
}
