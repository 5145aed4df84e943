/*
 * topic.c - topics: create (atomically, by renaming a finished directory
 * into place), delete, list, restore after a reboot, and map a topic's
 * rings for producers and consumers. Its config file is topic_config.c's.
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
#include "frame.h"
#include "safe_open.h"

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

static int topic_dir(evb_bus *bus, const char *topic, char *out, size_t cap)
{
    int rc = evb_name_check(topic, "topic");
    if (rc)
        return rc;
    if ((size_t)snprintf(out, cap, "%s/%s", bus->path, topic) >= cap)
        return -ENAMETOOLONG;
    return 0;
}

static int data_topic_dir(evb_bus *bus, const char *topic, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s/%s", bus->data, topic) >= cap)
        return -ENAMETOOLONG;
    return 0;
}

static uint32_t max_frame_of(const evb_topic_config *cfg)
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
 * place. RS (durable topics rebuilt from disk): per partition, where the
 * log ends; NULL for a new topic.
 */
static int make_tmpfs_topic(evb_bus *bus, const char *topic, const evb_topic_config *cfg,
                            const struct evb_restore *rs)
{
    char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", bus->path, topic);
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
            .max_frame = max_frame_of(cfg),
            .partition = i,
            .mode = cfg->file_mode,
            .flags = cfg->durability != EVB_DURABILITY_NONE ? EVB_RING_F_DURABLE : 0,
        };
        if (rs)
            evb_restore_ring_init(rs, i, &init);
        snprintf(path, sizeof path, "%s/%u.ring", tmp, i);
        rc = evb_ring_create(path, &init);
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
    int rc = evb_make_dirs_noted(bus->data, evb_dir_mode(bus->opts.mode), &made);
    if (rc)
        return rc == -EVB_EFTYPE ? rc : evb_err_set(rc, "data directory %s: %s", bus->data,
                                                    strerror(-rc));
    if ((rc = evb_dir_trusted(bus->data, "data directory", NULL, NULL))) {
        evb_unmake_dirs(bus->data, made); /* refused: what was made goes again */
        return rc == -ENOENT ? evb_err_set(rc, "data directory %s vanished", bus->data) : rc;
    }
    /* Before anything is made in it: the directory must be the bus's. */
    if ((rc = evb_data_dir_record(bus)))
        return rc;
    if ((rc = data_topic_dir(bus, topic, ddir, sizeof ddir)))
        return rc;
    if ((rc = temp_dir(bus->data, topic, tmp, sizeof tmp, evb_dir_mode(cfg->file_mode))))
        return rc;
    if ((rc = evb_topic_config_write(tmp, cfg)) || (rc = config_mode(tmp, cfg)))
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

/* TOPIC's config in the data directory exists (a durable topic's disk
 * side). */
static bool data_has_topic(evb_bus *bus, const char *topic)
{
    char path[PATH_MAX + 32];
    if ((size_t)snprintf(path, sizeof path, "%s/%s/topic.conf", bus->data, topic) >=
        sizeof path)
        return false;
    return faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Whether the rings in tmpfs topic directory DIR are the ones its
 * topic.conf (CFG) names: every partition's, and none past them. 0, or
 * -EBADMSG with the detail naming topic.conf and what disagrees (an edit
 * of the live topic.conf, or rings removed by hand). */
static int rings_match_conf(const char *topic, const char *dir, const evb_topic_config *cfg)
{
    char path[PATH_MAX + 32];
    struct stat st;
    for (uint32_t i = 0; i <= cfg->partitions && i < EVB_MAX_PARTITIONS + 1; i++) {
        snprintf(path, sizeof path, "%s/%u.ring", dir, i);
        bool there = fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (i < cfg->partitions && !there)
            return evb_err_set(-EBADMSG, "topic %s: %s/topic.conf says %u partition%s, but "
                               "partition %u has no ring (%s): topic.conf was changed after "
                               "the topic was made", topic, dir, cfg->partitions,
                               cfg->partitions == 1 ? "" : "s", i, path);
        if (i == cfg->partitions && there)
            return evb_err_set(-EBADMSG, "topic %s: %s/topic.conf says %u partition%s, but "
                               "%s exists: topic.conf was changed after the topic was made",
                               topic, dir, cfg->partitions, cfg->partitions == 1 ? "" : "s",
                               path);
    }
    return 0;
}

/* Damage the last rebuild of durable topic TOPIC found below its log end
 * and kept (the partitions' damage records, bus/durable/verify.c): 0, or
 * 1 with REASON saying where. A record that fails its checks counts. */
static int recorded_damage(evb_bus *bus, const char *topic, const evb_topic_config *cfg,
                           char *reason, size_t cap)
{
    char ddir[PATH_MAX], pdir[PATH_MAX + 16];
    if (cfg->durability == EVB_DURABILITY_NONE || data_topic_dir(bus, topic, ddir, sizeof ddir))
        return 0;
    for (uint32_t i = 0; i < cfg->partitions; i++) {
        struct evb_seg_damage d;
        evb_seg_part_dir(ddir, i, pdir, sizeof pdir);
        int rc = evb_seg_damage_read(pdir, &d);
        if (!rc && !d.ranges)
            continue;
        if (reason && cap && rc)
            snprintf(reason, cap, "partition %u: %s", i, evb_last_error());
        else if (reason && cap)
            snprintf(reason, cap, "partition %u: the last rebuild found %llu damaged range%s "
                     "(%llu bytes, from position %llu), kept on disk; read past it with "
                     "tail --skip-damage", i, (unsigned long long)d.ranges,
                     d.ranges == 1 ? "" : "s", (unsigned long long)d.bytes,
                     (unsigned long long)d.first_pos);
        evb_err_clear();
        return 1;
    }
    return 0;
}

EVB_EXPORT int evb_topic_damage(evb_bus *bus, const char *topic, char *reason, size_t cap)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    evb_err_clear();
    if (reason && cap)
        reason[0] = '\0';
    int rc = topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    if (access(path, F_OK) == 0) {
        /* In tmpfs: damaged when its topic.conf does not read or does not
         * match its rings, or when its rebuild found damage it kept. */
        evb_topic_config cfg;
        rc = evb_topic_config_read(dir, &cfg);
        if (!rc)
            rc = rings_match_conf(topic, dir, &cfg);
        if (rc == -ENOENT) /* deleted meanwhile */
            return 0;
        if (rc) {
            if (reason && cap)
                snprintf(reason, cap, "%s", *evb_last_error() ? evb_last_error()
                                                               : strerror(-rc));
            evb_err_clear();
            return 1;
        }
        return recorded_damage(bus, topic, &cfg, reason, cap);
    }
    if (!data_has_topic(bus, topic))
        return 0;
    /* Only the disk side: rebuild it now; what stops that is the reason. */
    if ((rc = evb_topic_restore(bus, topic)) == 0)
        return 0;
    if (reason && cap)
        snprintf(reason, cap, "%s", *evb_last_error() ? evb_last_error() : strerror(-rc));
    evb_err_clear();
    return 1;
}

EVB_EXPORT int evb_topic_create(evb_bus *bus, const char *topic, const evb_topic_config *cfgp)
{
    char dir[PATH_MAX], ddir[PATH_MAX];
    evb_err_clear();
    int rc = topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    evb_topic_config cfg = {0};
    if (cfgp)
        cfg = *cfgp;
    evb_topic_config_defaults(&cfg);
    if ((rc = evb_topic_config_check(&cfg)) || (rc = evb_mode_check(cfg.file_mode, "file")))
        return evb_err_prefix(rc, "topic %s", topic);
    if (bus->foreign)
        return foreign_refused(bus, topic);
    if (access(dir, F_OK) == 0)
        return evb_err_set(-EEXIST, "topic %s exists", topic);
    char why[512];
    if (evb_topic_damage(bus, topic, why, sizeof why) == 1)
        return evb_err_set(-EEXIST, "topic %s exists on disk but is damaged: %s; deleting it "
                           "with --force (EVB_DELETE_FORCE) removes its data", topic, why);
    bool durable = cfg.durability != EVB_DURABILITY_NONE;
    if (durable && (rc = make_data_topic(bus, topic, &cfg)))
        return rc;
    rc = make_tmpfs_topic(bus, topic, &cfg, NULL);
    if (rc && durable && rc != -EEXIST && !data_topic_dir(bus, topic, ddir, sizeof ddir))
        evb_rmtree(ddir); /* ours: its rename succeeded above */
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
    return evb_topic_remove(bus, topic, 0);
}

EVB_EXPORT int evb_topic_remove(evb_bus *bus, const char *topic, uint32_t flags)
{
    char dir[PATH_MAX], ddir[PATH_MAX], why[512];
    evb_err_clear();
    int rc = topic_dir(bus, topic, dir, sizeof dir);
    if (rc || (rc = data_topic_dir(bus, topic, ddir, sizeof ddir)))
        return rc;
    if (bus->foreign)
        return foreign_refused(bus, topic);
    /* A topic that could not be rebuilt keeps its data unless forced: its
     * segments may be all that is left of its events. */
    if (!(flags & EVB_DELETE_FORCE) && evb_topic_damage(bus, topic, why, sizeof why) == 1)
        return evb_err_set(-EBADMSG, "topic %s is damaged (%s); its data is kept: delete "
                           "with --force (EVB_DELETE_FORCE) to remove it", topic, why);
    int rt = remove_dir(bus->path, dir, topic);
    int rd = remove_dir(bus->data, ddir, topic);
    if (rt == -ENOENT && rd == -ENOENT)
        return evb_err_set(-ENOENT, "no topic %s", topic);
    if (rt && rt != -ENOENT)
        return evb_err_set(rt, "topic %s: %s", topic, strerror(-rt));
    if (rd && rd != -ENOENT)
        return evb_err_set(rd, "topic %s: data: %s", topic, strerror(-rd));
    return 0;
}

int evb_topic_restore(evb_bus *bus, const char *topic)
{
    char ddir[PATH_MAX];
    evb_topic_config cfg;
    int rc = data_topic_dir(bus, topic, ddir, sizeof ddir);
    if (rc || (rc = evb_topic_config_read(ddir, &cfg)))
        return rc;
    if (cfg.durability == EVB_DURABILITY_NONE)
        return evb_err_set(-EBADMSG, "%s: topic.conf of a topic that is not durable", ddir);
    struct evb_restore rs;
    if ((rc = evb_restore_begin(&rs, ddir, topic, &cfg, max_frame_of(&cfg))))
        return rc;
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

EVB_EXPORT int evb_topic_info(evb_bus *bus, const char *topic, struct evb_topic_info *out)
{
    char dir[PATH_MAX];
    evb_err_clear();
    int rc = topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    rc = evb_topic_config_read(dir, &out->config);
    if (rc == -ENOENT) {
        /* Only its disk side left: rebuilt now, or damaged. */
        char why[512];
        if (evb_topic_damage(bus, topic, why, sizeof why) == 1) {
            /* The data directory's config is what the topic was: give it
             * to the caller too, so a damaged topic can still be shown. */
            char ddir[PATH_MAX];
            if (data_topic_dir(bus, topic, ddir, sizeof ddir) == 0 &&
                evb_topic_config_read(ddir, &out->config) == 0)
                snprintf(out->name, sizeof out->name, "%s", topic);
            else
                memset(out, 0, sizeof *out);
            return evb_err_set(-EBADMSG, "topic %s is damaged: %s", topic, why);
        }
        rc = evb_topic_config_read(dir, &out->config);
    }
    if (rc)
        return rc == -ENOENT ? evb_err_set(-ENOENT, "no topic %s", topic) : rc;
    snprintf(out->name, sizeof out->name, "%s", topic);
    return 0;
}

EVB_EXPORT int evb_partition_damage(evb_bus *bus, const char *topic, uint32_t partition,
                                    uint32_t flags, evb_damage *out)
{
    evb_err_clear();
    if (!bus || !out || (flags & ~EVB_DAMAGE_VERIFY))
        return -EINVAL;
    struct evb_topic_map *tm;
    int rc = evb_topic_map_open(bus, topic, &tm);
    if (rc)
        return rc;
    char pdir[PATH_MAX + 16];
    struct evb_seg_damage d = {.first_pos = UINT64_MAX};
    if (tm->cfg.durability == EVB_DURABILITY_NONE)
        rc = evb_err_set(-EINVAL, "topic %s is not durable", topic);
    else if (partition >= tm->nparts)
        rc = evb_err_set(-EINVAL, "topic %s has no partition %u", topic, partition);
    if (!rc)
        evb_part_dir(tm, partition, pdir, sizeof pdir);
    if (!rc && !(flags & EVB_DAMAGE_VERIFY)) {
        rc = evb_seg_damage_read(pdir, &d);
    } else if (!rc) {
        struct evb_ring_hdr *h = tm->rings[partition].hdr;
        struct evb_seg_geom g = {tm->cfg.segment_bytes, tm->cfg.ring_bytes,
                                 max_frame_of(&tm->cfg)};
        /* G1 (bus/durable/durable.h): relaxed; a start that retention
         * moves meanwhile makes the walk miss a segment (-ENOENT, tried
         * once more from the new start). F1: acquire, pairs with the
         * flusher's release store; the bytes below are in the files. */
        for (int tries = 0; tries < 2; tries++) {
            uint64_t start = atomic_load_explicit(&h->log_start_pos, memory_order_relaxed);
            uint64_t end = atomic_load_explicit(&h->flushed, memory_order_acquire);
            rc = evb_seg_verify(pdir, &g, start, end, &d);
            if (rc != -ENOENT)
                break;
        }
        if (rc)
            evb_err_prefix(rc, "topic %s: partition %u", topic, partition);
    }
    evb_topic_map_close(tm);
    if (!rc)
        *out = (evb_damage){.ranges = d.ranges, .bytes = d.bytes,
                            .first_position = d.first_pos, .checked_bytes = d.checked_bytes,
                            .mark = d.mark, .unchecked_cut_bytes = d.cut_bytes,
                            .unchecked_cut_position = d.cut_pos,
                            .skipped_offsets = d.skipped_offsets};
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append to NAMES the topics of PARENT (directories holding a topic.conf). */
static int collect_topics(const char *parent, char ***namesp, size_t *np, size_t *capp)
{
    DIR *d = opendir(parent);
    if (!d)
        return -errno;
    char **names = *namesp;
    size_t n = *np, cap = *capp;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        char conf[PATH_MAX];
        if (e->d_name[0] == '.' || evb_name_check(e->d_name, "topic"))
            continue;
        snprintf(conf, sizeof conf, "%s/%s/topic.conf", parent, e->d_name);
        if (access(conf, F_OK))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    *namesp = names;
    *np = n;
    *capp = cap;
    return rc;
}

EVB_EXPORT int evb_topic_list(evb_bus *bus, int (*fn)(const char *topic, void *arg), void *arg)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = collect_topics(bus->path, &names, &n, &cap);
    if (rc)
        return evb_err_set(rc, "%s: %s", bus->path, strerror(-rc));
    /* Durable topics whose tmpfs side is gone (a restore failed: listed, so
     * that evb_topic_damage() can say why). */
    int rd = collect_topics(bus->data, &names, &n, &cap);
    if (rd != -ENOENT && rd != -ENOTDIR && rd)
        rc = rd;
    evb_err_clear();
    if (!rc && n)
        qsort(names, n, sizeof *names, cmp_str);
    size_t visited = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && !strcmp(names[i], names[i - 1]))
            continue; /* in both directories */
        visited++;
        if (fn && fn(names[i], arg))
            rc = 1;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc < 0 ? rc : (int)visited;
}

/* A durable topic's directories in the data directory, where they exist,
 * are directories reached through no symlink: one planted there would
 * send the flusher's files, and directories it makes, elsewhere. Missing
 * ones are the flusher's to make (the same way). O_PATH: a reader that
 * may not list them still passes. */
static int data_dirs_check(const struct evb_topic_map *tm)
{
    char path[PATH_MAX + 16];
    for (uint32_t i = 0; i <= tm->cfg.partitions; i++) {
        if (i == 0)
            snprintf(path, sizeof path, "%s", tm->ddir);
        else
            snprintf(path, sizeof path, "%s/%u", tm->ddir, i - 1);
        int fd = evb_open_file(AT_FDCWD, path, O_PATH, 0, EVB_FILE_DIR);
        if (fd >= 0)
            close(fd);
        else if (fd == -EVB_EFTYPE)
            return fd;
        else if (fd == -ENOENT && i == 0)
            return 0;
    }
    return 0;
}

int evb_topic_map_open(evb_bus *bus, const char *topic, struct evb_topic_map **out)
{
    char dir[PATH_MAX];
    int rc = topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    evb_topic_config cfg;
    rc = evb_topic_config_read(dir, &cfg);
    if (rc == -ENOENT && !bus->foreign) {
        /* Restored by us, or by another process while ours failed. */
        evb_topic_restore(bus, topic);
        rc = evb_topic_config_read(dir, &cfg);
    }
    if (rc)
        return rc == -ENOENT ? evb_err_set(-ENOENT, "no topic %s", topic) : rc;
    struct evb_topic_map *tm = calloc(1, sizeof *tm + cfg.partitions * sizeof tm->rings[0]);
    if (!tm)
        return -ENOMEM;
    snprintf(tm->name, sizeof tm->name, "%s", topic);
    snprintf(tm->dir, sizeof tm->dir, "%s", dir);
    if (cfg.durability != EVB_DURABILITY_NONE)
        data_topic_dir(bus, topic, tm->ddir, sizeof tm->ddir);
    tm->cfg = cfg;
    tm->readonly = bus->foreign;
    if (tm->ddir[0] && (rc = data_dirs_check(tm))) {
        free(tm);
        return evb_err_prefix(rc, "topic %s", topic);
    }
    for (uint32_t i = 0; i < cfg.partitions; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%u.ring", dir, i);
        /* A caller the topic lets read but not write maps every ring
         * read-only; what it may do then is the opener's to decide. */
        rc = tm->readonly ? -EACCES : evb_ring_open(&tm->rings[i], path);
        if (rc == -EACCES && (i == 0 || tm->readonly)) {
            evb_err_clear();
            rc = evb_ring_open_ro(&tm->rings[i], path);
            tm->readonly = rc == 0;
        }
        /* Not "no such topic": the topic is there, its topic.conf names
         * a partition it does not have. */
        if (rc == -ENOENT) {
            rc = rings_match_conf(topic, dir, &cfg);
            if (!rc)
                rc = evb_err_set(-ENOENT, "topic %s: %s: deleted meanwhile", topic, path);
            tm->nparts = i;
            evb_topic_map_close(tm);
            return rc;
        }
        struct evb_ring *r = &tm->rings[i];
        bool durable = cfg.durability != EVB_DURABILITY_NONE;
        if (rc)
            ;
        else if (r->partition != i)
            rc = evb_err_set(-EBADMSG, "%s: ring of partition %u, expected %u", path,
                             r->partition, i);
        else if (r->capacity != cfg.ring_bytes)
            rc = evb_err_set(-EBADMSG, "%s: capacity %llu, topic.conf says ring_bytes %llu",
                             path, (unsigned long long)r->capacity,
                             (unsigned long long)cfg.ring_bytes);
        else if (r->durable != durable)
            rc = evb_err_set(-EBADMSG, "%s: a %sdurable ring, topic.conf says %sdurable", path,
                             r->durable ? "" : "non-", durable ? "" : "non-");
        if (rc) {
            if (tm->rings[i].base)
                evb_ring_close(&tm->rings[i]);
            tm->nparts = i;
            evb_topic_map_close(tm);
            return evb_err_prefix(rc, "topic %s", topic);
        }
        tm->rings[i].dead_ns = (uint64_t)bus->opts.dead_ms * 1000000ull;
        tm->rings[i].stall_ns = (uint64_t)bus->opts.stall_ms * 1000000ull;
        tm->nparts = i + 1;
    }
    /* A topic.conf that lost partitions would hide the others' events. */
    char extra[PATH_MAX + 32];
    struct stat st;
    snprintf(extra, sizeof extra, "%s/%u.ring", dir, cfg.partitions);
    if (fstatat(AT_FDCWD, extra, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        evb_topic_map_close(tm);
        return evb_err_set(-EBADMSG, "topic %s: %s/topic.conf says %u partitions, but %s "
                           "exists: topic.conf was changed after the topic was made", topic,
                           dir, cfg.partitions, extra);
    }
    *out = tm;
    return 0;
}

void evb_topic_map_close(struct evb_topic_map *tm)
{
    if (!tm)
        return;
    for (uint32_t i = 0; i < tm->nparts; i++)
        evb_ring_close(&tm->rings[i]);
    free(tm);
}
