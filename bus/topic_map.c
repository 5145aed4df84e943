/*
 * topic_map.c - a topic opened for use: its topic.conf read (the topic
 * restored first when only its disk side is left) and every partition's
 * ring mapped, each checked against the config. What the rings hold is
 * shm/'s; making topics is topic.c's.
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
#include "safe_open.h"

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
    int rc = evb_topic_dir(bus, topic, dir, sizeof dir);
    if (rc)
        return rc;
    evb_topic_config cfg;
    rc = evb_topic_config_read(dir, &cfg);
    if (rc == -ENOENT && !bus->foreign) {
        /* Restored by us, or by another process while ours failed. */
        char why[512];
        int rr = evb_topic_restore(bus, topic);
        snprintf(why, sizeof why, "%s", evb_last_error());
        rc = evb_topic_config_read(dir, &cfg);
        /* Still not there: why our rebuild failed is why there is no
         * topic (a flush lock held, no room in tmpfs, damage), unless
         * there is nothing to rebuild it from. */
        if (rc == -ENOENT && rr < 0 && rr != -ENOENT)
            return evb_err_set(rr, "%s", why);
    }
    if (rc)
        return rc == -ENOENT ? evb_err_set(-ENOENT, "no topic %s", topic) : rc;
    struct evb_topic_map *tm = calloc(1, sizeof *tm + cfg.partitions * sizeof tm->rings[0]);
    if (!tm)
        return -ENOMEM;
    snprintf(tm->name, sizeof tm->name, "%s", topic);
    snprintf(tm->dir, sizeof tm->dir, "%s", dir);
    if (cfg.durability != EVB_DURABILITY_NONE)
        evb_data_topic_dir(bus, topic, tm->ddir, sizeof tm->ddir);
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
            rc = evb_topic_rings_match(topic, dir, &cfg);
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
        else if (r->max_frame != evb_topic_max_frame(&cfg))
            rc = evb_err_set(-EBADMSG, "%s: frames of up to %u bytes, topic.conf's "
                             "max_event_bytes %u makes them %u", path, r->max_frame,
                             cfg.max_event_bytes, evb_topic_max_frame(&cfg));
        else
            /* Readers hand out no event larger than the topic takes, even
             * from a frame the line padding leaves room for (frame.h). */
            r->max_event = cfg.max_event_bytes;
        if (rc == -EPROTO) {
            /* Another build's ring: say what to do (README, "Rings made
             * by builds before"). A copy: evb_err_set formats from it. */
            char was[512];
            snprintf(was, sizeof was, "%s", evb_err_get());
            evb_err_set(rc, "%s; if an older build made it, %s", was,
                        durable ? "stop its processes and remove the bus directory: the "
                                  "next open rebuilds the topic from its segments"
                                : "delete the topic and create it again");
        }
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
