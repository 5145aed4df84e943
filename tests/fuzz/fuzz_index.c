/*
 * fuzz_index.c - libFuzzer target: a segment's sparse index
 * (bus/durable/index.c, format in index_format.h) and where lookups start
 * a walk from it (lookup.c, evb_seg_walk_start).
 *
 * Input: u8 sel (segment base sel % 4 times 64 KiB), u64 a, u64 b, then
 * the index file. What must hold: loading gives 0, -ENOENT or -EBADMSG;
 * loaded entries ascend and stay at or above the base; a walk starts
 * inside the segment; after a cut to END no entry is at or past END; an
 * index reopened for appending takes a new entry and loads again.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "evbus.h"
#include "seg_internal.h"
#include "segment.h"

#define SEG (64u << 10)

static const struct evb_seg_geom geom = {SEG, SEG, 4096, 4096 - EVB_FRAME_HDR};

static void check_loaded(const struct evb_idx *x, uint64_t base, uint64_t below)
{
    for (size_t i = 0; i < x->n; i++) {
        FUZZ_CHECK(x->e[i].pos >= base, "entry %zu below the base", i);
        FUZZ_CHECK(x->e[i].pos < below, "entry %zu at %llu, past %llu", i,
                   (unsigned long long)x->e[i].pos, (unsigned long long)below);
        if (i)
            FUZZ_CHECK(x->e[i].pos > x->e[i - 1].pos && x->e[i].offset >= x->e[i - 1].offset &&
                           x->e[i].max_ts >= x->e[i - 1].max_ts,
                       "entry %zu out of order", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint64_t base = (uint64_t)(fuzz_u8(&in) % 4) * SEG;
    uint64_t a = fuzz_u64(&in), b = fuzz_u64(&in);
    const char *dir = fuzz_fresh_dir(0);
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, "idx");
    fuzz_write(path, in.p, in.n);

    struct evb_idx *x = NULL;
    int rc = evb_idx_load(dir, base, &x);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "load %d (%s)", rc, evb_last_error());
    if (rc == 0) {
        check_loaded(x, base, UINT64_MAX);
        for (int by_time = 0; by_time < 2; by_time++) {
            struct evb_seg_hint h;
            struct evb_seg_walk w = evb_seg_walk_start(x, &geom, base, by_time, a, &h);
            FUZZ_CHECK(w.pos >= base && w.pos < base + SEG && w.pos % 8 == 0,
                       "walk starts at %llu", (unsigned long long)w.pos);
        }
        free(x);
    }
    struct evb_seg_hint h;
    struct evb_seg_walk w = evb_seg_walk_start(NULL, &geom, base, false, a, &h);
    FUZZ_CHECK(w.pos == base, "no index: walk starts at %llu", (unsigned long long)w.pos);

    uint64_t end = base + (b % (SEG / 8)) * 8;
    rc = evb_idx_cut(dir, base, end, a % 4 ? a : EVB_SEG_NO_OFFSET);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "cut %d (%s)", rc, evb_last_error());
    rc = evb_idx_load(dir, base, &x);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EBADMSG, "load after cut %d", rc);
    if (rc == 0) {
        check_loaded(x, base, end);
        free(x);
    }

    int fd = evb_idx_create(dir, base, a, 0600);
    FUZZ_CHECK(fd >= 0, "create %d (%s)", fd, evb_last_error());
    /* Above anything kept (a kept entry may lie past the segment: the
     * loader leaves those to its callers), so it must load. */
    struct evb_idx_entry e = {UINT64_MAX - 7, UINT64_MAX, UINT64_MAX};
    FUZZ_CHECK(evb_idx_append(fd, &e, 1) == 0, "append");
    close(fd);
    rc = evb_idx_load(dir, base, &x);
    FUZZ_CHECK(rc == 0, "load after create %d (%s)", rc, evb_last_error());
    FUZZ_CHECK(x->n >= 1 && x->base_offset == a, "the appended entry or base offset is gone");
    free(x);
    return 0;
}
