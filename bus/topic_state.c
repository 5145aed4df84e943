/*
 * topic_state.c - what a topic is found to be: damaged or not (a
 * topic.conf that does not match its rings, damage its last rebuild kept),
 * its info and each partition's damage report, and the listing of every
 * topic. Making, removing and restoring topics is topic.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"


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
int evb_topic_rings_match(const char *topic, const char *dir, const evb_topic_config *cfg)
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
    if (cfg->durability == EVB_DURABILITY_NONE || evb_data_topic_dir(bus, topic, ddir, sizeof ddir))
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
    EVB_NO_CANCEL;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    evb_err_clear();
    if (reason && cap)
        reason[0] = '\0';
    int rc = evb_topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    if (access(path, F_OK) == 0) {
        /* In tmpfs: damaged when its topic.conf does not read or does not
         * match its rings, or when its rebuild found damage it kept. */
        evb_topic_config cfg;
        rc = evb_topic_config_read(dir, &cfg);
        if (!rc)
            rc = evb_topic_rings_match(topic, dir, &cfg);
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
    if (evb_restore_later(rc))
        return rc; /* not damage; the detail stays */
    evb_err_clear();
    return 1;
}

EVB_EXPORT int evb_topic_info(evb_bus *bus, const char *topic, struct evb_topic_info *out)
{
    EVB_NO_CANCEL;
    char dir[PATH_MAX];
    evb_err_clear();
    int rc = evb_topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    rc = evb_topic_config_read(dir, &out->config);
    if (rc == -ENOENT) {
        /* Only its disk side left: rebuilt now, or damaged. */
        char why[512];
        int d = evb_topic_damage(bus, topic, why, sizeof why);
        if (d == 1 || evb_restore_later(d)) {
            /* The data directory's config is what the topic was: give it
             * to the caller too, so a damaged topic can still be shown. */
            char ddir[PATH_MAX];
            if (evb_data_topic_dir(bus, topic, ddir, sizeof ddir) == 0 &&
                evb_topic_config_read(ddir, &out->config) == 0)
                snprintf(out->name, sizeof out->name, "%s", topic);
            else
                memset(out, 0, sizeof *out);
            if (d != 1) /* intact, not rebuilt yet: the detail says why */
                return evb_err_set(d, "%s", why);
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
    EVB_NO_CANCEL;
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
        struct evb_seg_geom g = evb_seg_geom_of(tm->cfg.segment_bytes, tm->cfg.ring_bytes,
                                                tm->cfg.max_event_bytes);
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
    char text[sizeof out->flush_error] = "";
    if (!rc) {
        /* E1 (bus/durable/durable.h): relaxed; a report read once, the
         * text matched against the code it was written with. */
        int e = atomic_load_explicit(&tm->rings[partition].hdr->flush_error,
                                     memory_order_relaxed);
        if (evb_flush_error_text(pdir, e, text, sizeof text) != 0)
            evb_flush_error_guess(pdir, e, text, sizeof text);
    }
    evb_topic_map_close(tm);
    if (!rc)
        *out = (evb_damage){.ranges = d.ranges, .bytes = d.bytes,
                            .first_position = d.first_pos, .checked_bytes = d.checked_bytes,
                            .mark = d.mark, .unchecked_cut_bytes = d.cut_bytes,
                            .unchecked_cut_position = d.cut_pos,
                            .skipped_offsets = d.skipped_offsets,
                            .reset_commits = d.reset_commits, .reset_left = d.reset_left,
                            .bad_indexes = d.bad_indexes,
                            .first_bad_index = d.bad_index_base};
    if (!rc)
        snprintf(out->flush_error, sizeof out->flush_error, "%s", text);
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
        /* Not a topic: no config, or not a directory. A topic this caller
         * may not look into (EACCES) is listed, so that what shows the
         * list says it cannot be read rather than leave it out. */
        if (access(conf, F_OK) && (errno == ENOENT || errno == ENOTDIR))
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
    EVB_NO_CANCEL;
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
