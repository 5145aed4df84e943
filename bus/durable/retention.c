/*
 * retention.c - dropping a partition's old segments by size, age and,
 * for EVB_TOPIC_RETAIN_UNTIL_CONSUMED topics, not before the named
 * consumers committed past them (asked through the topic's
 * min_committed callback: the cursor files are bus/'s). A live flusher
 * retains what it holds every second (flusher.c); evb_retain_idle() does
 * the same for partitions nobody flushes, under their flush lock.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "flush_internal.h"

/* Whether CFG asks for any segment ever to go. */
static bool retains(const evb_topic_config *cfg)
{
    bool until_consumed = cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED;
    return cfg->retain_bytes || cfg->retain_ms || (until_consumed && cfg->retain_cap_bytes);
}

/* One partition, its flush lock held by the caller: PDIR's segments below
 * KEEP_FROM (the one being written) go as CFG says; ring R's log start is
 * moved first (G1). */
static void retain_part(const evb_topic_config *cfg, const char *pdir, struct evb_ring *r,
                        uint64_t keep_from, uint64_t floor, uint64_t now_real)
{
    bool until_consumed = cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED;
    uint64_t *bases;
    size_t n;
    if (evb_seg_list(pdir, &bases, &n) < 0)
        return;
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
            evb_seg_path(path, sizeof path, pdir, bases[drop], "log");
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
    if (drop == n && n)
        drop = n - 1; /* keep at least one segment, whatever the listing says */
    if (drop) {
        /* The new log start, the oldest kept segment's first event, is
         * published before anything is removed: a reader that finds a
         * segment gone moves to the log start (bus/consumer.c), which
         * must not name a removed segment (G1 in durable.h). */
        uint64_t start = bases[drop], off = UINT64_MAX;
        struct evb_idx *idx;
        if (evb_idx_load(pdir, start, &idx) == 0) {
            off = idx->base_offset;
            free(idx);
        } else {
            struct evb_seg s;
            struct evb_seg_frame sf;
            struct evb_seg_geom g = evb_seg_geom_of(cfg->segment_bytes, cfg->ring_bytes,
                                                    cfg->max_event_bytes);
            if (evb_seg_map(&s, pdir, start, cfg->segment_bytes) == 0 &&
                evb_seg_frame(&s, &g, start, &sf) > 0 && sf.offset != EVB_SEG_NO_OFFSET)
                off = sf.offset;
            evb_seg_unmap(&s);
        }
        if (off == UINT64_MAX) {
            free(bases);
            return; /* cannot tell where the log would start: keep it all */
        }
        /* The mark records the new start first, so a segment missing
         * below the oldest one later is known to be lost, not retained
         * (recover.c). Failing that, nothing is removed. */
        if (evb_seg_mark_start(pdir, start, off, cfg->file_mode)) {
            free(bases);
            return;
        }
        struct evb_ring_hdr *h = r->hdr;
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
        (void)evb_idx_remove(pdir, bases[i]);
        evb_seg_path(path, sizeof path, pdir, bases[i], "log");
        unlink(path);
    }
    free(bases);
}

void evb_flush_retain(struct evb_flush *fl, struct fpart *fp, uint64_t now_real)
{
    if (!retains(&fl->cfg))
        return;
    uint64_t floor = fl->cfg.flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED && fl->min_committed
                         ? fl->min_committed(fl->min_committed_arg, fp->part)
                         : UINT64_MAX;
    /* Never the segment being written. */
    retain_part(&fl->cfg, fp->dir, fp->r, fp->seg_base, floor, now_real);
}

int evb_retain_idle(const struct evb_durable_topic *dt, int wait_ms)
{
    const evb_topic_config *cfg = dt->cfg;
    if (!retains(cfg))
        return 0;
    int busy = 0;
    uint64_t now_real = evb_real_ns();
    for (uint32_t i = 0; i < dt->nparts; i++) {
        struct evb_ring *r = &dt->rings[i];
        struct evb_ring_hdr *h = r->hdr;
        /* A live flusher retains on its own within a second. W1: relaxed,
         * a hint; the flush lock decides. */
        uint64_t fo = atomic_load_explicit(&h->flusher, memory_order_relaxed);
        if (fo && evb_proc_alive(fo)) {
            busy++;
            continue;
        }
        char pdir[PATH_MAX];
        evb_seg_part_dir(dt->dir, i, pdir, sizeof pdir);
        int fd = evb_flush_lock(pdir, wait_ms, cfg->file_mode);
        if (fd == -EWOULDBLOCK) {
            busy++;
            continue;
        }
        if (fd < 0)
            return fd;
        /* Nothing of the log goes on the word of a ring it does not
         * continue (a rebuild under this process; owner_format.h): its
         * flushed position names other events' segments. */
        if (evb_flush_owner_check(fd, pdir, r)) {
            close(fd);
            evb_err_clear();
            continue;
        }
        /* F1 (takeover side): acquire, as evb_flush_take(); under the lock
         * nobody writes, and the segment holding flushed is the one the
         * next flusher resumes in: it stays, with those after it. */
        uint64_t flushed = atomic_load_explicit(&h->flushed, memory_order_acquire);
        uint64_t tail, toff;
        evb_ring_load_tail(r, &tail, &toff);
        /* A flushed word past the tail is damage (the flusher reports it);
         * it must not make everything below it look old. */
        if (flushed <= tail) {
            uint64_t floor = cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED && dt->min_committed
                                 ? dt->min_committed(dt->min_committed_arg, i)
                                 : UINT64_MAX;
            retain_part(cfg, pdir, r, flushed - flushed % cfg->segment_bytes, floor, now_real);
        }
        close(fd);
    }
    return busy;
}
