/*
 * topic.c - a topic's life: its name and directories, create (atomically,
 * by renaming a finished directory into place), delete, and restore after
 * a reboot. Mapping its rings is topic_map.c's; whether it is damaged, its
 * info and the listing topic_state.c's; its config file topic_config.c's.
 *
 *   <bus>/<topic>/topic.conf       text, topic_config_format.h
 *   <bus>/<topic>/<partition>.ring one ring per partition
 *   <bus>/<topic>/consumers/       named consumers' cursor files
 *
 * A durable topic also has, under the bus's data directory:
 *
 *   <data>/<topic>/topic.conf      the same config: the topic's identity on disk
 *   <data>/<topic>/<partition>/    segment files, indexes, flush.lock
 *
 * When tmpfs lost the topic (reboot), evb_topic_restore() rebuilds it from
 * there: config copied back, each ring created where its log ends.
 */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "dlq.h"
#include "frame.h"
#include "placement.h"
#include "safe_open.h"
#include "topic_config_format.h"

int evb_name_check(const char *name, const char *what)
{
    if (!name || !*name)
        return evb_err_set(-EINVAL, "%s name is empty", what);
    size_t n = strlen(name);
    if (n > EVB_NAME_MAX)
        return evb_err_set(-ENAMETOOLONG, "%s name of %zu bytes exceeds %d", what, n,
                           EVB_NAME_MAX);
    if (name[0] == '.')
        return evb_err_set(-EINVAL, "%s name '%s' starts with '.'", what, name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return evb_err_set(-EINVAL, "%s name '%s': only [A-Za-z0-9._-] allowed", what,
                               name);
    }
    return 0;
}

int evb_topic_dir(evb_bus *bus, const char *topic, char *out, size_t cap)
{
    int rc = evb_name_check(topic, "topic");
    if (rc)
        return rc;
    if ((size_t)snprintf(out, cap, "%s/%s", bus->path, topic) >= cap)
        return -ENAMETOOLONG;
    return 0;
}

int evb_data_topic_dir(evb_bus *bus, const char *topic, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s/%s", bus->data, topic) >= cap)
        return -ENAMETOOLONG;
    return 0;
}

uint32_t evb_topic_max_frame(const evb_topic_config *cfg)
{
    return (uint32_t)evb_frame_max(cfg->max_event_bytes);
}

/* Rename the finished directory TMP to DIR, never over another. */
static int publish_dir(const char *tmp, const char *dir, const char *topic)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) == 0)
        return 0;
    return errno == EEXIST || errno == ENOTEMPTY
               ? evb_err_set(-EEXIST, "topic %s exists", topic)
               : evb_err_set(-errno, "%s: %s", dir, strerror(errno));
}

static int temp_dir(const char *parent, const char *topic, char *out, size_t cap,
                    uint32_t mode)
{
    static _Atomic unsigned seq;
    /* Relaxed: only uniqueness of the name within this process matters. */
    unsigned n = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed);
    snprintf(out, cap, "%s/.tmp.%s.%d.%u", parent, topic, (int)getpid(), n);
    int rc = evb_mkdir_mode(out, mode);
    return rc ? evb_err_set(rc, "%s: %s", out, strerror(-rc)) : 0;
}

/* DIR/topic.conf gets the topic's mode less write: everyone who may use
 * the topic reads it, nobody rewrites it in place. */
static int config_mode(const char *dir, const evb_topic_config *cfg)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    int rc = fchmod(fd, cfg->file_mode & 0444) < 0 ? -errno : 0;
    close(fd);
    return rc ? evb_err_set(rc, "%s: fchmod: %s", path, strerror(-rc)) : 0;
}

/* Nothing is written into a bus of someone untrusted (bus->foreign). */
static int foreign_refused(evb_bus *bus, const char *topic)
{
    return evb_err_set(-EACCES, "topic %s: bus %s is another user's, which you may only read",
                       topic, bus->path);
}

/* mkdir PATH with exactly MODE; the message names it. */
static int make_dir(const char *path, uint32_t mode)
{
    int rc = evb_mkdir_mode(path, mode);
    return rc ? evb_err_set(rc, "%s: %s", path, strerror(-rc)) : 0;
}

/*
 * Build the tmpfs side of TOPIC in a temporary directory and rename it into
 * place. RS, for a durable topic: every partition's flush lock, held, and
 * (rebuilt from disk) per partition where the log ends; NULL for a topic
 * that is not durable.
 *
 * A durable topic's rings are renamed in only by a holder of every flush
 * lock, who looked for the topic under them first and wrote each
 * partition's owner record (bus/durable/owner_format.h) naming the ring
 * it made: so the record names the rings in place, and a process that
 * maps an older ring of the topic (one that outlived a rebuild) finds it
 * is not the log's and never writes the log. The look under the locks
 * also spares a rebuild lost to another's its rings.
 */
static int make_tmpfs_topic(evb_bus *bus, const char *topic, const evb_topic_config *cfg,
                            const struct evb_restore *rs)
{
    char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", bus->path, topic);
    if (rs && access(dir, F_OK) == 0)
        return evb_err_set(-EEXIST, "topic %s exists", topic);
    int rc = temp_dir(bus->path, topic, tmp, sizeof tmp, evb_dir_mode(cfg->file_mode));
    if (rc)
        return rc;
    /* Cursor files here are of ring-only topics' named consumers, which
     * gate producers and so may write the topic: no wider than the topic
     * (a durable topic's, which read-only consumers may keep, live in the
     * data directory's consumers/). */
    snprintf(path, sizeof path, "%s/consumers", tmp);
    if ((rc = make_dir(path, evb_dir_mode(cfg->file_mode))))
        goto fail;
    if ((rc = evb_topic_config_write(tmp, cfg)) || (rc = config_mode(tmp, cfg)))
        goto fail;
    for (uint32_t i = 0; i < cfg->partitions; i++) {
        struct evb_ring_init init = {
            .capacity = cfg->ring_bytes,
            .max_frame = evb_topic_max_frame(cfg),
            .partition = i,
            .mode = cfg->file_mode,
            .flags = cfg->durability != EVB_DURABILITY_NONE ? EVB_RING_F_DURABLE : 0,
        };
        bool rebuilt = rs && rs->rec;
        if (rs)
            evb_restore_ring_init(rs, i, &init);
        /* Only a topic that asks for placement loads the topology. A
         * rebuild from disk places as well as it can and never fails for
         * it: the log matters more than where its ring sits. */
        if (cfg->numa_node || cfg->huge_pages) {
            init.place = rebuilt ? evb_place_ring_lenient : evb_place_ring;
            init.place_arg = (void *)cfg;
        }
        init.created_ns = evb_real_ns();
        snprintf(path, sizeof path, "%s/%u.ring", tmp, i);
        rc = evb_ring_create(path, &init);
        if (rc == -ENOSPC && rebuilt) {
            /* Named by the place it goes, not the temporary one. */
            rc = evb_err_set(rc, "topic %s: partition %u: no room in the bus's tmpfs for its "
                             "ring %s/%u.ring (ring_bytes %llu): the topic is intact in its data "
                             "directory and is rebuilt at an open once there is room", topic,
                             i, dir, i, (unsigned long long)init.capacity);
            goto fail;
        }
        if (!rc && rs)
            rc = evb_restore_own(rs, i, init.created_ns, init.base_pos);
        if (rc) {
            evb_err_prefix(rc, "topic %s: partition %u", topic, i);
            goto fail;
        }
    }
    /* Publish the finished topic in one step; never over another. */
    if ((rc = publish_dir(tmp, dir, topic)))
        goto fail;
    return 0;
fail:
    evb_rmtree(tmp);
    return rc;
}

/* The data side of a new durable topic: config and partition directories,
 * renamed into place (the rename decides between racing creators) and
 * made durable with an fsync of the parent. */
static int make_data_topic(evb_bus *bus, const char *topic, const evb_topic_config *cfg)
{
    char ddir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX + 32];
    size_t made = 0;
    int rc = evb_make_dirs_noted(bus->data, evb_shared_dir_mode(bus->opts.mode), &made);
    if (rc)
        return rc == -EVB_EFTYPE ? rc : evb_err_set(rc, "data directory %s: %s", bus->data,
                                                    strerror(-rc));
    if ((rc = evb_dir_trusted(bus->data, "data directory", NULL, NULL))) {
        evb_unmake_dirs(bus->data, made); /* refused: what was made goes again */
        return rc == -ENOENT ? evb_err_set(rc, "data directory %s vanished", bus->data) : rc;
    }
    /* Before anything is made in it: the directory must be the bus's (or
     * no directory is yet). It becomes the record once it took the
     * topic's config, not before: a read-only directory, or one this user
     * cannot write in, must not stay the bus's (a cold attack found every
     * later create refused so). */
    if ((rc = evb_data_dir_check(bus)))
        return rc;
    if ((rc = evb_data_topic_dir(bus, topic, ddir, sizeof ddir)))
        return rc;
    if ((rc = temp_dir(bus->data, topic, tmp, sizeof tmp, evb_dir_mode(cfg->file_mode))))
        return rc;
    if ((rc = evb_topic_config_write(tmp, cfg)) || (rc = config_mode(tmp, cfg)) ||
        (rc = evb_data_dir_record(bus)))
        goto fail;
    for (uint32_t i = 0; i <= cfg->partitions; i++) {
        bool last = i == cfg->partitions;
        if (last)
            snprintf(path, sizeof path, "%s/consumers", tmp);
        else
            snprintf(path, sizeof path, "%s/%u", tmp, i);
        if ((rc = make_dir(path, last ? evb_drop_dir_mode(cfg->file_mode)
                                      : evb_dir_mode(cfg->file_mode))))
            goto fail;
    }
    if ((rc = publish_dir(tmp, ddir, topic)))
        goto fail;
    /* The data directory itself, like the bus directory, is what the
     * caller named and may be a symlink; files inside use safe_open.h. */
    int dfd = open(bus->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    evb_rmtree(tmp);
    return rc;
}

/* 0 when this machine has NUMA node NODE; else -EINVAL naming those it has. */
static int numa_node_check(int node)
{
    hwloc_topology_t t = NULL;
    int rc = evb_place_topology(&t);
    return rc ? rc : evb_place_node_check(t, node);
}

EVB_EXPORT int evb_topic_create(evb_bus *bus, const char *topic, const evb_topic_config *cfgp)
{
    EVB_NO_CANCEL;
    char dir[PATH_MAX], ddir[PATH_MAX];
    evb_err_clear();
    int rc = evb_topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    evb_topic_config cfg = {0};
    if (cfgp)
        cfg = *cfgp;
    evb_topic_config_defaults(&cfg);
    if ((rc = evb_topic_config_check(&cfg)) || (rc = evb_mode_check(cfg.file_mode, "file")))
        return evb_err_prefix(rc, "topic %s", topic);
    if (cfg.numa_node && (rc = numa_node_check(EVB_NUMA_NODE_OF(cfg.numa_node))))
        return evb_err_prefix(rc, "topic %s", topic);
    if (evb_dlq_is_dlq(topic) && cfg.partitions != 1)
        return evb_dlq_parts_refused(topic, cfg.partitions);
    if (bus->foreign)
        return foreign_refused(bus, topic);
    if (access(dir, F_OK) == 0)
        return evb_err_set(-EEXIST, "topic %s exists", topic);
    char why[512];
    int d = evb_topic_damage(bus, topic, why, sizeof why);
    if (d == 1)
        return evb_err_set(-EEXIST, "topic %s exists on disk but is damaged: %s; deleting it "
                           "with --force (EVB_DELETE_FORCE) removes its data", topic, why);
    if (evb_restore_later(d))
        return evb_err_set(-EEXIST, "topic %s exists on disk, intact, not rebuilt into the "
                           "bus yet: %s", topic, why);
    bool durable = cfg.durability != EVB_DURABILITY_NONE;
    if (!durable)
        return make_tmpfs_topic(bus, topic, &cfg, NULL);
    if ((rc = make_data_topic(bus, topic, &cfg)) ||
        (rc = evb_data_topic_dir(bus, topic, ddir, sizeof ddir)))
        return rc;
    /* Its rings are made under the flush locks, as a rebuild's are (a
     * process opening the bus may rebuild the topic from the data side
     * made just now). A lock held by another means the data side is in
     * use already: it stays. */
    struct evb_restore rs;
    if ((rc = evb_restore_lock(&rs, ddir, &cfg)))
        return evb_err_prefix(rc, "topic %s", topic);
    rc = make_tmpfs_topic(bus, topic, &cfg, &rs);
    /* Ours (its rename succeeded above): removed under the locks, so an
     * opener waiting for them to rebuild it finds it gone. */
    if (rc && rc != -EEXIST)
        evb_rmtree(ddir);
    evb_restore_end(&rs);
    return rc;
}

/* Rename DIR aside in PARENT, then remove it: it disappears at once for new
 * openers, and a removal that fails half-way leaves no half topic. */
static int remove_dir(const char *parent, const char *dir, const char *topic)
{
    static _Atomic unsigned seq;
    char del[PATH_MAX];
    /* Relaxed: only uniqueness of the name within this process matters. */
    unsigned n = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed);
    snprintf(del, sizeof del, "%s/.del.%s.%d.%u", parent, topic, (int)getpid(), n);
    if (rename(dir, del) < 0)
        return -errno;
    evb_rmtree(del);
    return 0;
}

EVB_EXPORT int evb_topic_delete(evb_bus *bus, const char *topic)
{
    EVB_NO_CANCEL;
    return evb_topic_remove(bus, topic, 0);
}

EVB_EXPORT int evb_topic_remove(evb_bus *bus, const char *topic, uint32_t flags)
{
    EVB_NO_CANCEL;
    char dir[PATH_MAX], ddir[PATH_MAX], why[512];
    evb_err_clear();
    int rc = evb_topic_dir(bus, topic, dir, sizeof dir);
    if (rc || (rc = evb_data_topic_dir(bus, topic, ddir, sizeof ddir)))
        return rc;
    if (bus->foreign)
        return foreign_refused(bus, topic);
    if ((rc = evb_topic_delete_check(topic, dir, ddir)))
        return rc;
    /* A topic that could not be rebuilt keeps its data unless forced: its
     * segments may be all that is left of its events. One that a process
     * of the bus from before a reboot keeps from being rebuilt (it holds
     * a flush lock) is not damaged: it stays, whatever the flags. */
    int d = flags & EVB_DELETE_FORCE ? 0 : evb_topic_damage(bus, topic, why, sizeof why);
    if (d == 1)
        return evb_err_set(-EBADMSG, "topic %s is damaged (%s); its data is kept: delete "
                           "with --force (EVB_DELETE_FORCE) to remove it", topic, why);
    if (d == -EBUSY)
        return evb_err_set(d, "%s; its data is kept", why);
    /* Forced, the flush locks say whether a process may still write the
     * log: never removed under it. Held through the removal. */
    struct evb_restore rs = {0};
    if ((flags & EVB_DELETE_FORCE) && (rc = evb_restore_lock_present(&rs, ddir, topic)))
        return rc;
    int rt = remove_dir(bus->path, dir, topic);
    int rd = remove_dir(bus->data, ddir, topic);
    evb_restore_end(&rs);
    if (rt == -ENOENT && rd == -ENOENT)
        return evb_err_set(-ENOENT, "no topic %s", topic);
    if (rt && rt != -ENOENT)
        return evb_err_set(rt, "topic %s: %s", topic, strerror(-rt));
    if (rd && rd != -ENOENT)
        return evb_err_set(rd, "topic %s: data: %s", topic, strerror(-rd));
    return 0;
}

/* Whether the topic directory DIR (a char *) is in the bus. */
static bool topic_there(void *dir)
{
    return access(dir, F_OK) == 0;
}

/* evb_restore's reset_commits: ARG names the topic's data directory. */
struct commits_of {
    const char *ddir;
    uint32_t nparts;
};

static void reset_commits(void *arg, uint32_t part, uint64_t end_pos, uint64_t end_off,
                          uint64_t *reset, uint64_t *left)
{
    const struct commits_of *co = arg;
    evb_commits_reset(co->ddir, co->nparts, part, end_pos, end_off, reset, left);
}

int evb_topic_restore(evb_bus *bus, const char *topic)
{
    char ddir[PATH_MAX];
    evb_topic_config cfg;
    unsigned version;
    int rc = evb_data_topic_dir(bus, topic, ddir, sizeof ddir);
    if (rc || (rc = evb_topic_config_read_version(ddir, &cfg, &version)))
        return rc;
    if (cfg.durability == EVB_DURABILITY_NONE)
        return evb_err_set(-EBADMSG, "%s: topic.conf of a topic that is not durable", ddir);
    /* Rebuilt by another process meanwhile (who renamed it in under the
     * flush locks): its log is not ours to recover, nor its owner records
     * to write, nor its flush lock ours to wait for (its flusher keeps it
     * while it lives). Looked at before the locks, while waiting for them,
     * and under them, so that of openers racing a rebuild only the first
     * holds the locks for more than a look: the new ring's flusher, which
     * retries the lock every 50 ms, is not kept out by a chain of losers
     * each recovering the log under it. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", bus->path, topic);
    if (topic_there(dir))
        return 0;
    EVB_CRASH_POINT("topic.restore");
    struct evb_restore rs;
    rc = evb_restore_begin(&rs, ddir, topic, &cfg, topic_there, dir);
    if (rc == -EEXIST)
        return 0;
    if (rc)
        return rc;
    if (topic_there(dir)) {
        evb_restore_end(&rs);
        return 0;
    }
    /* Readers' commits past each partition's new log end go back to it
     * under its flush lock, before the rings exist (restore.c). */
    struct commits_of co = {ddir, cfg.partitions};
    rs.reset_commits = reset_commits;
    rs.reset_arg = &co;
    if ((rc = evb_restore_recover(&rs, topic, &cfg)))
        return rc;
    /* An older build's topic: from here on its segments get line-padded
     * frames, which that build would take for damage; its topic.conf says
     * so now, for that build to refuse (topic_config_format.h, version 2).
     * A caller that may not write it (a reader's open rebuilding the
     * topic) leaves it: best effort, never a reason to refuse the log. */
    if (version < EVB_CONF_VERSION && evb_topic_config_upgrade(ddir, &cfg))
        evb_err_clear();
    rc = make_tmpfs_topic(bus, topic, &cfg, &rs);
    if (rc == -EEXIST) /* restored by another process meanwhile */
        rc = 0;
    evb_restore_end(&rs);
    return rc;
}

int evb_topics_restore_all(evb_bus *bus)
{
    DIR *d = opendir(bus->data);
    if (!d)
        return 0;
    int durable = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[PATH_MAX];
        if (e->d_name[0] == '.' || evb_name_check(e->d_name, "topic"))
            continue;
        snprintf(path, sizeof path, "%s/%s/topic.conf", bus->data, e->d_name);
        if (access(path, F_OK) != 0)
            continue;
        durable++;
        snprintf(path, sizeof path, "%s/%s/topic.conf", bus->path, e->d_name);
        if (access(path, F_OK) != 0)
            evb_topic_restore(bus, e->d_name); /* failures surface at open */
    }
    closedir(d);
    evb_err_clear();
    return durable;
}
