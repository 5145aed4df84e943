/*
 * dump.c - read-only walks of segment files for `evbus dump`: every frame
 * with its checksum status, then where and why the valid log ends; and
 * the list of a partition's segment files. Finding the topic's config is
 * bus/'s (bus/durability.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "err.h"
#include "seg_internal.h"

int evb_dump_parse_path(const char *path, char *dir, size_t cap, uint64_t *base)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    if (strlen(name) != 24 || strcmp(name + 20, ".log"))
        return evb_err_set(-EINVAL, "%s: not a segment file name (20 digits + .log)", path);
    char digits[21];
    memcpy(digits, name, 20);
    digits[20] = '\0';
    for (int i = 0; i < 20; i++)
        if (digits[i] < '0' || digits[i] > '9')
            return evb_err_set(-EINVAL, "%s: not a segment file name", path);
    *base = strtoull(digits, NULL, 10);
    if (dlen >= cap)
        return -ENAMETOOLONG;
    if (slash)
        memcpy(dir, path, dlen);
    else
        dir[0] = '.';
    dir[dlen] = '\0';
    return 0;
}

/* Why there is no valid frame at POS (evb_seg_frame said 0). */
static const char *why_invalid(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos)
{
    uint64_t at = pos - s->base, room = g->capacity - (pos & (g->capacity - 1));
    if (room > s->bytes - at)
        room = s->bytes - at;
    size_t hn = room < EVB_FRAME_HDR ? (size_t)room : EVB_FRAME_HDR;
    const uint8_t *b = hn >= sizeof(uint64_t) ? evb_seg_bytes(s, at, hn) : NULL;
    if (!b)
        return "unreadable";
    /* A copy of the header (read with pread): a diagnosis only. */
    struct evb_frame hdr;
    memset(&hdr, 0, sizeof hdr);
    memcpy(&hdr, b, hn);
    /* Relaxed: a local copy, no other thread sees it. */
    uint64_t stamp = atomic_load_explicit(&hdr.stamp, memory_order_relaxed);
    if (stamp == 0)
        return "zero bytes";
    if ((stamp & ~(uint64_t)EVB_STAMP_MASK) != pos)
        return "stale stamp";
    struct evb_frame_step st;
    /* A data frame whose header decodes failed only its checksum. */
    int kind = evb_frame_decode(&hdr, stamp, pos, room, g->max_frame, g->max_event, &st);
    if (kind == EVB_FRAME_DATA)
        return "bad checksum";
    /* A frame within its bounds whose key and value pass max_event_bytes. */
    if (kind == EVB_FRAME_BAD && !strcmp(st.bad, "event length"))
        return "event too large";
    return "bad length";
}

int evb_dump_walk(const char *dir, uint64_t base, const evb_topic_config *cfg,
                  int (*fn)(const evb_dump_frame *, void *), void *arg)
{
    /* The topic's largest frame, key padding included (frame.h). */
    struct evb_seg_geom g = evb_seg_geom_of(cfg->segment_bytes, cfg->ring_bytes,
                                            cfg->max_event_bytes);
    struct evb_seg s;
    int rc = evb_seg_map(&s, dir, base, cfg->segment_bytes);
    if (rc)
        return rc;
    uint64_t pos = base, end = base + cfg->segment_bytes;
    evb_dump_frame d;
    while (pos < end) {
        struct evb_seg_frame sf;
        int k = evb_seg_frame(&s, &g, pos, &sf);
        if (k < 0) {
            evb_seg_unmap(&s);
            return k; /* a read error, with its detail: no "invalid frame" */
        }
        if (!k)
            break;
        memset(&d, 0, sizeof d);
        d.kind = k == 1 ? EVB_DUMP_DATA : EVB_DUMP_PAD;
        d.bytes = (uint32_t)sf.skip;
        d.position = pos;
        d.offset = sf.offset;
        d.events = k == 2 ? sf.events : 1;
        if (k == 1) {
            const struct evb_frame *f = sf.f;
            d.timestamp_ns = f->timestamp_ns;
            d.producer_seq = f->producer_seq;
            d.producer_id = f->producer_id;
            d.key = (const uint8_t *)f + EVB_FRAME_HDR;
            d.key_len = sf.key_len;
            d.value = (const uint8_t *)f + sf.value_at;
            d.value_len = sf.value_len;
            d.crc32c = f->crc32c;
            d.type = f->type;
        }
        if (fn(&d, arg)) {
            evb_seg_unmap(&s);
            return 0;
        }
        pos += sf.skip;
    }
    memset(&d, 0, sizeof d);
    d.kind = EVB_DUMP_END;
    d.position = pos;
    d.why = pos >= end ? "end of file" : why_invalid(&s, &g, pos);
    /* The last non-zero byte after the end: what recovery would cut. */
    char path[PATH_MAX];
    uint64_t trailing = 0;
    if (pos < end && evb_seg_path(path, sizeof path, dir, base, "log") == 0 &&
        evb_seg_cut_tail(path, pos - base, false, &trailing) == 0)
        d.trailing_bytes = trailing;
    fn(&d, arg);
    evb_seg_unmap(&s);
    return 0;
}

int evb_dump_paths(const char *pdir, char ***paths, size_t *n)
{
    uint64_t *bases;
    size_t k;
    int rc = evb_seg_list(pdir, &bases, &k);
    if (rc)
        return rc;
    char **out = calloc(k ? k : 1, sizeof *out);
    if (!out) {
        free(bases);
        return -ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        char path[PATH_MAX + 64];
        evb_seg_path(path, sizeof path, pdir, bases[i], "log");
        if (!(out[i] = strdup(path))) {
            while (i--)
                free(out[i]);
            free(out);
            free(bases);
            return -ENOMEM;
        }
    }
    free(bases);
    *paths = out;
    *n = k;
    return 0;
}
