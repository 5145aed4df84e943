/*
 * retention.c - dropping a partition's old segments by size, age and,
 * for EVB_TOPIC_RETAIN_UNTIL_CONSUMED topics, not before the named
 * consumers committed past them (asked through the topic's
 * min_committed callback: the cursor files are bus/'s).
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flush_internal.h"

void evb_flush_retain(struct evb_flush *fl, struct fpart *fp, uint64_t now_real)
{
    const evb_topic_config *cfg = &fl->cfg;
    bool until_consumed = cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED;
    if (!cfg->retain_bytes && !cfg->retain_ms && !(until_consumed && cfg->retain_cap_bytes))
        return;
    uint64_t *bases;
    size_t n;
    if (evb_seg_list(fp->dir, &bases, &n) < 0)
        return;
    uint64_t keep_from = fp->seg_base; /* never the segment being written */
    uint64_t floor = until_consumed && fl->min_committed
                         ? fl->min_committed(fl->min_committed_arg, fp->part)
                         : UINT64_MAX;
    size_t drop = 0;
    uint64_t unconsumed = 0;
    /* Segments built ahead of the one being written hold nothing yet. */
    size_t used = n;
    while (used > 1 && bases[used - 1] > keep_from)
        used--;
    for (; drop < n && bases[drop] < keep_from; drop++) {
        uint64_t total = (used - drop) * cfg->segment_bytes;
        bool big = cfg->retain_bytes && total > cfg->retain_bytes;
        bool old = false;
        if (cfg->retain_ms) {
            char path[PATH_MAX + 32];
            struct stat st;
            evb_seg_path(path, sizeof path, fp->dir, bases[drop], "log");
            old = stat(path, &st) == 0 &&
                  now_real - ((uint64_t)st.st_mtim.tv_sec * 1000000000ull +
                              (uint64_t)st.st_mtim.tv_nsec) >
                      cfg->retain_ms * 1000000ull;
        }
        bool capped = until_consumed && cfg->retain_cap_bytes && total > cfg->retain_cap_bytes;
        bool consumed = bases[drop] + cfg->segment_bytes <= floor;
        if (!((big || old) && (consumed || capped)) && !capped)
            break;
        if (!consumed) {
            /* The cap wins over a consumer that is behind: count it. */
            uint64_t from = floor > bases[drop] ? floor : bases[drop];
            unconsumed += bases[drop] + cfg->segment_bytes - from;
        }
    }
    if (drop == n)
        drop = n - 1; /* keep at least one segment, whatever the listing says */
    if (drop) {
        /* The new log start, the oldest kept segment's first event, is
         * published before anything is removed: a reader that finds a
         * segment gone moves to the log start (bus/consumer.c), which
         * must not name a removed segment (G1 in durable.h). */
        uint64_t start = bases[drop], off = UINT64_MAX;
        struct evb_idx *idx;
        if (evb_idx_load(fp->dir, start, &idx) == 0) {
            off = idx->base_offset;
            free(idx);
        } else {
            struct evb_seg s;
            struct evb_seg_frame sf;
            struct evb_seg_geom g = {cfg->segment_bytes, cfg->ring_bytes, fp->r->max_frame};
            if (evb_seg_map(&s, fp->dir, start, cfg->segment_bytes) == 0 &&
                evb_seg_frame(&s, &g, start, &sf) && sf.offset != EVB_SEG_NO_OFFSET)
                off = sf.offset;
            evb_seg_unmap(&s);
        }
        if (off == UINT64_MAX) {
            free(bases);
            return; /* cannot tell where the log would start: keep it all */
        }
        struct evb_ring_hdr *h = fp->r->hdr;
        /* G1: relaxed; stored before the unlinks below, which the kernel
         * orders before any open that fails for them. Readers take the
         * pair as a hint that the seek or read checks against the files. */
        atomic_store_explicit(&h->log_start_offset, off, memory_order_relaxed);
        atomic_store_explicit(&h->log_start_pos, start, memory_order_relaxed);
        /* Relaxed: a statistic, publishes nothing. */
        atomic_fetch_add_explicit(&h->retention_unconsumed, unconsumed, memory_order_relaxed);
    }
    for (size_t i = 0; i < drop; i++) {
        char path[PATH_MAX + 32];
        evb_seg_path(path, sizeof path, fp->dir, bases[i], "idx");
        unlink(path);
        evb_seg_path(path, sizeof path, fp->dir, bases[i], "log");
        unlink(path);
    }
    free(bases);
}
