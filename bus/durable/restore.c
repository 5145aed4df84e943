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
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "durable.h"
#include "err.h"
#include "safe_open.h"

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
 * Flush locks this process already waited the whole bound for, and who
 * held them then (a hash of the partition directory's path, the holder's
 * owner word, evb_proc_self's form, so a recycled pid is another
 * holder): an opener finding the same holder there again does not wait
 * again. A bus open tries to rebuild every topic, and the producer or the
 * listing that follows would otherwise wait as long once more for a
 * holder that is no rebuild (those finish), but a process that outlived
 * the bus directory and keeps its flush lock while it lives. Under
 * waited_mu; a few entries, round robin.
 */
#define WAITED_N 16
static struct {
    uint32_t path;
    uint64_t owner;
} waited[WAITED_N];
static unsigned waited_next;
static pthread_mutex_t waited_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t holder_word(int pid)
{
    return (uint64_t)(uint32_t)pid << 32 | (uint32_t)evb_proc_start(pid);
}

/* Whether PDIR's lock held by PID was waited out before (NOTE false), or
 * note that it was (NOTE true). */
static bool waited_for(const char *pdir, int pid, bool note)
{
    uint32_t h = evb_crc32c(0, pdir, strlen(pdir));
    uint64_t o = holder_word(pid);
    bool seen = false;
    pthread_mutex_lock(&waited_mu);
    for (unsigned i = 0; i < WAITED_N && !seen; i++)
        seen = waited[i].path == h && waited[i].owner == o;
    if (note && !seen) {
        waited[waited_next % WAITED_N].path = h;
        waited[waited_next % WAITED_N].owner = o;
        waited_next++;
    }
    pthread_mutex_unlock(&waited_mu);
    return seen;
}

/*
 * PDIR's flush lock, waiting until DEADLINE (mono ns) while another
 * process holds it: -EWOULDBLOCK then. While waiting, THERE(ARG) says
 * whether the topic has been rebuilt meanwhile (-EEXIST: nothing to wait
 * for): the holder is then that topic's flusher, who keeps the lock while
 * its process lives, and an opener that raced the rebuild would wait the
 * whole bound for nothing. Not waited for either: a holder found stopped
 * (SIGSTOP, a debugger), which lets go of nothing until it runs again,
 * and one this process waited the whole bound for already (waited).
 */
static int lock_part(const char *pdir, uint32_t mode, uint64_t deadline,
                     bool (*there)(void *arg), void *arg)
{
    char who[128];
    bool looked = false;
    for (;;) {
        int fd = evb_flush_lock(pdir, 0, mode);
        if (fd != -EWOULDBLOCK)
            return fd;
        if (there && there(arg))
            return -EEXIST;
        if (evb_mono_ns() >= deadline) {
            int pid = evb_flush_lock_who(pdir, who, sizeof who, NULL);
            if (pid > 0)
                waited_for(pdir, pid, true);
            return -EWOULDBLOCK;
        }
        if (!looked) {
            bool stopped = false;
            looked = true;
            int pid = evb_flush_lock_who(pdir, who, sizeof who, &stopped);
            if (pid > 0 && (stopped || waited_for(pdir, pid, false)))
                return -EWOULDBLOCK;
        }
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* -EBUSY for PDIR's flush lock, held by another process (the rebuild of
 * TOPIC cannot begin): who holds it, and that nothing is lost. A process
 * of the bus from before its directory was removed (a reboot it
 * outlived, a hand) keeps the lock while it is stopped (a running flusher
 * lets go within a second of seeing its ring file gone, flush_lock.c),
 * or while it lives if it is no flusher of ours, and the log may not be
 * cut or continued under it. */
static int part_busy(const char *topic, uint32_t part, const char *pdir)
{
    char who[128];
    evb_flush_lock_who(pdir, who, sizeof who, NULL);
    return evb_err_set(-EBUSY, "topic %s: partition %u: %s holds its flush lock (%s/flush.lock), "
                       "as a flusher of the bus from before its directory was removed does "
                       "until it sees the removal (a running one, within a second): the "
                       "topic is intact, and is rebuilt from its data directory once that "
                       "process lets go or exits", topic, part, who, pdir);
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
            return fd == -EWOULDBLOCK ? part_busy(topic, held, pdir) : fd;
        }
        rs->locks[rs->nparts++] = fd;
    }
    return 0;
}

int evb_restore_recover(struct evb_restore *rs, const char *topic, const evb_topic_config *cfg)
{
    char pdir[PATH_MAX + 16];
    int rc = 0;
    struct evb_seg_geom g = evb_seg_geom_of(cfg->segment_bytes, cfg->ring_bytes,
                                            cfg->max_event_bytes);
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
            if (fd != -EWOULDBLOCK)
                return fd;
            char who[128];
            evb_flush_lock_who(pdir, who, sizeof who, NULL);
            return evb_err_set(-EBUSY, "%s: %s holds its flush lock (a rebuild of the "
                               "topic, or a process of the bus from before its directory "
                               "was removed)", pdir, who);
        }
        rs->locks[rs->nparts++] = fd;
    }
    return 0;
}

/* Partition directory PDIR's flush lock, if its file is there, into RS
 * (never made: the topic is going). 0 also when there is no lock file or
 * it cannot be opened; -EBUSY naming the holder when held. */
static int lock_present(struct evb_restore *rs, const char *topic, const char *pdir,
                        const char *part)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/flush.lock", pdir);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e != EWOULDBLOCK)
            return 0;
        char who[128];
        evb_flush_lock_who(pdir, who, sizeof who, NULL);
        return evb_err_set(-EBUSY, "topic %s: partition %s: %s holds its flush lock (%s): its "
                           "data is not removed while a process may flush into it; stop that "
                           "process first", topic, part, who, path);
    }
    int *grown = realloc(rs->locks, (rs->nparts + 1) * sizeof *grown);
    if (!grown) {
        close(fd);
        return -ENOMEM;
    }
    rs->locks = grown;
    rs->locks[rs->nparts++] = fd;
    return 0;
}

int evb_restore_lock_present(struct evb_restore *rs, const char *ddir, const char *topic)
{
    char pdir[PATH_MAX + 16];
    *rs = (struct evb_restore){0};
    snprintf(rs->ddir, sizeof rs->ddir, "%s", ddir);
    DIR *d = opendir(ddir);
    if (!d)
        return 0; /* no data side, or none we may read: nothing to wait for */
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *nm = e->d_name;
        size_t k = strspn(nm, "0123456789");
        if (!k || nm[k] || k > 3)
            continue; /* not a partition's name */
        snprintf(pdir, sizeof pdir, "%s/%s", ddir, nm);
        rc = lock_present(rs, topic, pdir, nm);
    }
    closedir(d);
    if (rc)
        evb_restore_end(rs);
    return rc;
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
