/*
 * durability.c - bus/'s side of durable topics: the per-bus registry of
 * flushers (one per durable topic, refcounted by the producers that use
 * it), describing a mapped topic to bus/durable, and the public entry
 * points whose work is bus/durable's: evb_bus_flushd, evb_topic_retain,
 * evb_dump_segment, evb_segment_list. Flushing, segments and dumps live in bus/durable.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "group.h"
#include "placement.h"
#include "topic_config_format.h"

/* One durable topic's flusher in this bus handle. */
struct evb_flusher {
    struct evb_flusher *next;
    unsigned refs;             /* under bus->lock */
    struct evb_topic_map *tm;  /* the flusher's own mapping */
    struct evb_flush *flush;
};

/* Named consumers' and groups' lowest commit: what retention keeps when
 * a topic is kept until consumed. */
static uint64_t min_committed(void *arg, uint32_t part)
{
    uint64_t a = evb_consumers_min_committed(arg, part);
    uint64_t b = evb_groups_min_committed(arg, part);
    return a < b ? a : b;
}

static struct evb_durable_topic describe(struct evb_topic_map *tm)
{
    return (struct evb_durable_topic){
        .dir = tm->ddir,
        .cfg = &tm->cfg,
        .nparts = tm->nparts,
        .rings = tm->rings,
        .min_committed = min_committed,
        .min_committed_arg = tm,
    };
}

/*
 * Before anything of ours writes TM's segments: a topic.conf an older
 * build wrote (version 1, frames padded to 8 bytes) says version 2 first,
 * so that build refuses the log rather than take our line-padded frames
 * for damage (topic_config_format.h). A rebuild marks it already (topic.c,
 * evb_topic_restore), but only where its caller may write the data
 * directory: a reader's rebuild leaves it, and the first writer marks it
 * here, or writes nothing. Another process marking it meanwhile is as
 * good as our own mark.
 */
static int conf_current(const struct evb_topic_map *tm)
{
    evb_topic_config c;
    unsigned v;
    int rc = evb_topic_config_read_version(tm->ddir, &c, &v);
    if (rc || v >= EVB_CONF_VERSION)
        return rc;
    rc = evb_topic_config_upgrade(tm->ddir, &tm->cfg);
    if (rc && !evb_topic_config_read_version(tm->ddir, &c, &v) && v >= EVB_CONF_VERSION)
        rc = 0;
    return rc ? evb_err_prefix(rc, "topic %s: marking topic.conf version %u before "
                               "writing line-padded frames", tm->name, EVB_CONF_VERSION)
              : 0;
}

int evb_flusher_get(evb_bus *bus, struct evb_topic_map *tm, struct evb_flusher **out)
{
    pthread_mutex_lock(&bus->lock);
    /* Tests cancel the thread here: the map and start below open files. */
    EVB_CRASH_POINT("flusher.get");
    for (struct evb_flusher *f = bus->flushers; f; f = f->next) {
        if (!strcmp(f->tm->ddir, tm->ddir)) {
            f->refs++;
            pthread_mutex_unlock(&bus->lock);
            *out = f;
            return 0;
        }
    }
    struct evb_flusher *fl = calloc(1, sizeof *fl);
    if (!fl) {
        pthread_mutex_unlock(&bus->lock);
        return -ENOMEM;
    }
    int rc = evb_topic_map_open(bus, tm->name, &fl->tm);
    if (!rc && (rc = conf_current(fl->tm)))
        evb_topic_map_close(fl->tm);
    if (rc) {
        free(fl);
        pthread_mutex_unlock(&bus->lock);
        return rc;
    }
    struct evb_durable_topic dt = describe(fl->tm);
    /* A topic on a node: its flusher too (nothing to do on one node). */
    cpu_set_t cpus;
    int node = EVB_NUMA_NODE_OF(fl->tm->cfg.numa_node);
    if (node >= 0 && evb_place_node_cpus(node, &cpus) == 1)
        dt.cpus = &cpus;
    if ((rc = evb_flush_start(&dt, &fl->flush))) {
        evb_topic_map_close(fl->tm);
        free(fl);
        pthread_mutex_unlock(&bus->lock);
        return rc;
    }
    fl->refs = 1;
    fl->next = bus->flushers;
    bus->flushers = fl;
    pthread_mutex_unlock(&bus->lock);
    *out = fl;
    return 0;
}

struct evb_flush *evb_flusher_flush(const struct evb_flusher *fl)
{
    return fl->flush;
}

void evb_flusher_put(evb_bus *bus, struct evb_flusher *fl)
{
    if (!fl)
        return;
    pthread_mutex_lock(&bus->lock);
    if (--fl->refs) {
        pthread_mutex_unlock(&bus->lock);
        return;
    }
    for (struct evb_flusher **pp = &bus->flushers; *pp; pp = &(*pp)->next) {
        if (*pp == fl) {
            *pp = fl->next;
            break;
        }
    }
    pthread_mutex_unlock(&bus->lock);
    evb_flush_stop(fl->flush);
    /* The flusher's last pass wrote what came since its last retention:
     * apply it now, or a topic stays over its limits until the next
     * producer. */
    evb_retain_now(fl->tm, 0);
    evb_topic_map_close(fl->tm);
    free(fl);
}

int evb_flush_orphans(struct evb_topic_map *tm)
{
    struct evb_durable_topic dt = describe(tm);
    int rc = conf_current(tm);
    if (rc)
        return rc;
    rc = evb_flush_orphans_of(&dt);
    /* Whoever opens the topic applies the retention nobody else is
     * applying: segments that aged past retain_ms while no producer lived
     * go now, not when one comes back. */
    evb_retain_idle(&dt, 0);
    return rc;
}

int evb_retain_now(struct evb_topic_map *tm, int wait_ms)
{
    struct evb_durable_topic dt = describe(tm);
    return evb_retain_idle(&dt, wait_ms);
}

EVB_EXPORT int evb_topic_retain(evb_bus *bus, const char *topic)
{
    EVB_NO_CANCEL;
    if (!bus)
        return -EINVAL;
    evb_err_clear();
    struct evb_topic_map *tm;
    int rc = evb_topic_map_open(bus, topic, &tm);
    if (rc)
        return rc;
    if (!tm->ddir[0])
        rc = evb_err_set(-EINVAL, "topic %s: not durable, it has no segments", topic);
    else if (tm->readonly) /* retention removes segments: a writer's to do */
        rc = evb_err_set(-EACCES, "topic %s: you may read it, not apply its retention", topic);
    else if ((rc = evb_retain_now(tm, 100)) < 0)
        evb_err_prefix(rc, "topic %s", topic);
    evb_topic_map_close(tm);
    return rc;
}

/* ---- evbus flushd ---- */

static int flushd_list(void *ctx, int (*seen)(const char *topic, void *arg), void *arg)
{
    return evb_topic_list(ctx, seen, arg);
}

static void *flushd_get(void *ctx, const char *topic)
{
    struct evb_topic_map *tm;
    struct evb_flusher *fl = NULL;
    if (evb_topic_map_open(ctx, topic, &tm))
        return NULL;
    if (tm->ddir[0])
        evb_flusher_get(ctx, tm, &fl);
    evb_topic_map_close(tm);
    return fl;
}

static void flushd_put(void *ctx, void *fl)
{
    evb_flusher_put(ctx, fl);
}

static bool flushd_stale(void *ctx, void *fl)
{
    (void)ctx;
    const struct evb_topic_map *tm = ((const struct evb_flusher *)fl)->tm;
    for (uint32_t i = 0; i < tm->nparts; i++)
        if (evb_flush_error_load(&tm->rings[i]) == -ESTALE)
            return true;
    return false;
}

EVB_EXPORT int evb_bus_flushd(evb_bus *bus, const volatile int *stop)
{
    EVB_NO_CANCEL;
    if (!bus || !stop)
        return -EINVAL;
    static const struct evb_flushd_ops ops = {flushd_list, flushd_get, flushd_put,
                                              flushd_stale};
    return evb_flushd_run(&ops, bus, stop);
}

/* ---- evbus dump ---- */

EVB_EXPORT int evb_dump_segment(const char *path, int (*fn)(const evb_dump_frame *, void *),
                                void *arg)
{
    EVB_NO_CANCEL;
    char dir[PATH_MAX];
    uint64_t base = 0;
    evb_topic_config cfg;
    evb_err_clear();
    if (!path || !fn)
        return -EINVAL;
    int rc = evb_dump_parse_path(path, dir, sizeof dir, &base);
    if (rc)
        return rc;
    /* "<data>/<topic>/<p>/<base>.log": the config is two levels up. */
    char conf[PATH_MAX + 8];
    snprintf(conf, sizeof conf, "%s/..", dir);
    if ((rc = evb_topic_config_read(conf, &cfg)))
        return rc;
    if (cfg.durability == EVB_DURABILITY_NONE)
        return evb_err_set(-EBADMSG, "%s: the topic is not durable", conf);
    if (base % cfg.segment_bytes)
        return evb_err_set(-EBADMSG, "%s: base is not a multiple of %llu", path,
                           (unsigned long long)cfg.segment_bytes);
    return evb_dump_walk(dir, base, &cfg, fn, arg);
}

EVB_EXPORT int evb_segment_list(evb_bus *bus, const char *topic, uint32_t partition,
                                char ***paths, size_t *n)
{
    EVB_NO_CANCEL;
    if (!bus || !paths || !n)
        return -EINVAL;
    *paths = NULL;
    *n = 0;
    struct evb_topic_map *tm;
    int rc = evb_topic_map_open(bus, topic, &tm);
    if (rc)
        return rc;
    if (!tm->ddir[0] || partition >= tm->nparts) {
        rc = evb_err_set(-EINVAL, "topic %s: %s", topic,
                         tm->ddir[0] ? "no such partition" : "not durable");
        evb_topic_map_close(tm);
        return rc;
    }
    /* Without its topic.conf in the data directory no segment there can be
     * walked (evb_dump_segment reads it): say so rather than list files a
     * dump would then skip one by one, or an empty partition. */
    evb_topic_config cfg;
    if ((rc = evb_topic_config_read(tm->ddir, &cfg))) {
        if (rc == -ENOENT)
            evb_err_set(rc, "topic %s: no topic.conf in its data directory %s", topic,
                        tm->ddir);
        evb_topic_map_close(tm);
        return rc;
    }
    char pdir[PATH_MAX + 16];
    evb_part_dir(tm, partition, pdir, sizeof pdir);
    evb_topic_map_close(tm);
    return evb_dump_paths(pdir, paths, n);
}
