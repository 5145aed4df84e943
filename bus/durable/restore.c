/*
 * restore.c - where the rings of a durable topic start when its tmpfs side
 * is rebuilt from disk (after a reboot): each partition's log end is found
 * and its torn tail cut (recover.c) under the partition's flush lock, and
 * becomes the ring's base. Building the tmpfs topic is bus/topic.c's.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "durable.h"
#include "err.h"

int evb_restore_begin(struct evb_restore *rs, const char *ddir, const char *topic,
                      const evb_topic_config *cfg, uint32_t max_frame)
{
    char pdir[PATH_MAX + 16];
    int rc = 0;
    rs->nparts = 0;
    rs->rec = calloc(cfg->partitions, sizeof *rs->rec);
    rs->locks = malloc(cfg->partitions * sizeof *rs->locks);
    if (!rs->rec || !rs->locks) {
        evb_restore_end(rs);
        return -ENOMEM;
    }
    struct evb_seg_geom g = {cfg->segment_bytes, cfg->ring_bytes, max_frame};
    for (uint32_t held = 0; held < cfg->partitions; held++) {
        evb_seg_part_dir(ddir, held, pdir, sizeof pdir);
        /* The flush lock: no flusher may write while the log end is found
         * and the torn tail cut off. */
        int fd = evb_flush_lock(pdir, 2000);
        if (fd < 0) {
            rc = fd;
            break;
        }
        rc = evb_seg_recover(pdir, &g, 0, &rs->rec[held]);
        if (rc) {
            close(fd);
            evb_err_prefix(rc, "topic %s: partition %u", topic, held);
            break;
        }
        rs->locks[rs->nparts++] = fd;
    }
    if (rc)
        evb_restore_end(rs);
    return rc;
}

void evb_restore_ring_init(const struct evb_restore *rs, uint32_t part,
                           struct evb_ring_init *init)
{
    const struct evb_seg_recovery *rec = &rs->rec[part];
    init->base_pos = rec->end_pos;
    init->base_offset = rec->end_offset;
    init->log_start_pos = rec->start_pos;
    init->log_start_offset = rec->start_offset;
    init->dropped = rec->dropped_bytes;
}

void evb_restore_end(struct evb_restore *rs)
{
    for (uint32_t i = 0; i < rs->nparts; i++)
        close(rs->locks[i]);
    free(rs->rec);
    free(rs->locks);
    *rs = (struct evb_restore){0};
}
