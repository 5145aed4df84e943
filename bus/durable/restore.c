/*
 * restore.c - where the rings of a durable topic start when its tmpfs side
 * is rebuilt from disk (after a reboot): each partition's log end is found
 * and its torn tail cut (recover.c) under the partition's flush lock, and
 * becomes the ring's base; the rings made are named, under the same
 * locks, in each partition's owner record (owner_format.h). Building the
 * tmpfs topic is bus/topic.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "durable.h"
#include "err.h"

/* The partition directories of DDIR against CFG's count: one missing,
 * or one past the count, means topic.conf's partitions was changed after
 * the topic was created (all of them are made then): -EBADMSG. */
static int parts_fit(const char *ddir, const evb_topic_config *cfg)
{
    DIR *d = opendir(ddir);
    if (!d)
        return evb_err_set(-errno, "%s: %s", ddir, strerror(errno));
    uint32_t seen = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && !rc) {
        const char *nm = e->d_name;
        size_t k = strspn(nm, "0123456789");
        if (!k || nm[k] || k > 3 || (nm[0] == '0' && k > 1))
            continue; /* not a partition's name */
        unsigned long p = strtoul(nm, NULL, 10);
        if (p >= cfg->partitions)
            rc = evb_err_set(-EBADMSG, "%s/%s: a partition directory, but topic.conf says "
                             "partitions %u: topic.conf does not match the log (changed since "
                             "it was written?); nothing was changed", ddir, nm,
                             cfg->partitions);
        seen++;
    }
    closedir(d);
    if (!rc && seen < cfg->partitions)
        rc = evb_err_set(-EBADMSG, "%s: %u partition directories, topic.conf says partitions "
                         "%u: topic.conf does not match the log (changed since it was "
                         "written?); nothing was changed", ddir, seen, cfg->partitions);
    return rc;
}

/*
 * PDIR's flush lock, waiting until DEADLINE (mono ns) while another
 * process holds it: -EWOULDBLOCK then. While waiting, THERE(ARG) says
 * whether the topic has been rebuilt meanwhile (-EEXIST: nothing to wait
 * for): the holder is then that topic's flusher, who keeps the lock while
 * its process lives, and an opener that raced the rebuild would wait the
 * whole bound for nothing.
 */
static int lock_part(const char *pdir, uint32_t mode, uint64_t deadline,
                     bool (*there)(void *arg), void *arg)
{
    for (;;) {
        int fd = evb_flush_lock(pdir, 0, mode);
        if (fd != -EWOULDBLOCK)
            return fd;
        if (there && there(arg))
            return -EEXIST;
        if (evb_mono_ns() >= deadline)
            return -EWOULDBLOCK;
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

int evb_restore_begin(struct evb_restore *rs, const char *ddir, const char *topic,
                      const evb_topic_config *cfg, bool (*there)(void *arg), void *arg)
{
    char pdir[PATH_MAX + 16];
    int rc = 0;
    *rs = (struct evb_restore){0};
    rs->rec = calloc(cfg->partitions, sizeof *rs->rec);
    rs->locks = malloc(cfg->partitions * sizeof *rs->locks);
    if (!rs->rec || !rs->locks) {
        evb_restore_end(rs);
        return -ENOMEM;
    }
    snprintf(rs->ddir, sizeof rs->ddir, "%s", ddir);
    /* Before the locks, which would make a missing partition directory. */
    if ((rc = parts_fit(ddir, cfg))) {
        evb_err_prefix(rc, "topic %s", topic);
        evb_restore_end(rs);
        return rc;
    }
    /* Every partition's flush lock: no flusher may write while the log
     * end is found and the torn tail cut off (evb_restore_recover). Up to
     * 2 s each, as long as the topic is not rebuilt by another meanwhile. */
    for (uint32_t held = 0; held < cfg->partitions; held++) {
        evb_seg_part_dir(ddir, held, pdir, sizeof pdir);
        uint64_t deadline = evb_mono_ns() + 2000ull * 1000 * 1000;
        int fd = lock_part(pdir, cfg->file_mode, deadline, there, arg);
        if (fd < 0) {
            evb_restore_end(rs);
            return fd == -EWOULDBLOCK
                       ? evb_err_set(-EBUSY, "topic %s: partition %u: another process holds "
                                     "its flush lock", topic, held)
                       : fd;
        }
        rs->locks[rs->nparts++] = fd;
    }
    return 0;
}

int evb_restore_recover(struct evb_restore *rs, const char *topic, const evb_topic_config *cfg,
                        uint32_t max_frame)
{
    char pdir[PATH_MAX + 16];
    int rc = 0;
    struct evb_seg_geom g = {cfg->segment_bytes, cfg->ring_bytes, max_frame};
    /* What each partition's fit check walked, so that recovery does not
     * walk it again (all flush locks are held from the one to the other). */
    struct evb_seg_fitted *fit = calloc(cfg->partitions, sizeof *fit);
    if (!fit) {
        evb_restore_end(rs);
        return -ENOMEM;
    }
    /* First the check that the config fits every partition's log; only
     * then is anything cut, so a config that one partition proves wrong
     * cuts none. */
    for (uint32_t p = 0; p < cfg->partitions && !rc; p++) {
        evb_seg_part_dir(rs->ddir, p, pdir, sizeof pdir);
        if ((rc = evb_seg_fit_walk(pdir, &g, &fit[p])))
            evb_err_prefix(rc, "topic %s: partition %u", topic, p);
    }
    for (uint32_t p = 0; p < cfg->partitions && !rc; p++) {
        evb_seg_part_dir(rs->ddir, p, pdir, sizeof pdir);
        if ((rc = evb_seg_recover_fitted(pdir, &g, &fit[p], &rs->rec[p]))) {
            evb_err_prefix(rc, "topic %s: partition %u", topic, p);
            break;
        }
        /* The log ends here now: a reader that committed past it read
         * events that were lost before they were durable, and the offsets
         * from here go to new events. Its commit is set back to the end
         * before the ring that hands them out exists, so it reads them
         * rather than skipping them or landing inside one. */
        struct evb_seg_recovery *rec = &rs->rec[p];
        if (rs->reset_commits)
            rs->reset_commits(rs->reset_arg, p, rec->end_pos, rec->end_offset,
                              &rec->reset_commits, &rec->reset_left);
        evb_seg_damage_note(pdir, rec, cfg->file_mode);
    }
    free(fit);
    if (rc)
        evb_restore_end(rs);
    return rc;
}

int evb_restore_lock(struct evb_restore *rs, const char *ddir, const evb_topic_config *cfg)
{
    char pdir[PATH_MAX + 16];
    *rs = (struct evb_restore){0};
    snprintf(rs->ddir, sizeof rs->ddir, "%s", ddir);
    if (!(rs->locks = malloc(cfg->partitions * sizeof *rs->locks)))
        return -ENOMEM;
    for (uint32_t p = 0; p < cfg->partitions; p++) {
        evb_seg_part_dir(ddir, p, pdir, sizeof pdir);
        int fd = evb_flush_lock(pdir, 2000, cfg->file_mode);
        if (fd < 0) {
            evb_restore_end(rs);
            return fd == -EWOULDBLOCK
                       ? evb_err_set(-EBUSY, "%s: another process holds its flush lock "
                                     "(a rebuild of the topic?)", pdir)
                       : fd;
        }
        rs->locks[rs->nparts++] = fd;
    }
    return 0;
}

int evb_restore_own(const struct evb_restore *rs, uint32_t part, uint64_t created_ns,
                    uint64_t base_pos)
{
    char pdir[PATH_MAX + 16];
    if (part >= rs->nparts)
        return -EINVAL;
    evb_seg_part_dir(rs->ddir, part, pdir, sizeof pdir);
    return evb_flush_owner_set(rs->locks[part], pdir, created_ns, base_pos);
}

void evb_restore_ring_init(const struct evb_restore *rs, uint32_t part,
                           struct evb_ring_init *init)
{
    if (!rs->rec)
        return; /* a new topic: its rings start at 0 */
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
