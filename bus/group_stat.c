/*
 * group_stat.c - what `evbus groups` shows: a topic's groups, and one
 * group's members and partitions, read from its file without joining.
 * Everything read is another process's word: checked, never trusted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "dedup.h"
#include "group.h"
#include "group_format.h"
#include "safe_open.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

EVB_EXPORT int evb_group_list(evb_bus *bus, const char *topic,
                              int (*fn)(const char *group, void *arg), void *arg)
{
    EVB_NO_CANCEL;
    if (!bus || !topic)
        return evb_err_set(-EINVAL, "evb_group_list: %s is NULL", !bus ? "bus" : "topic");
    evb_err_clear();
    struct evb_topic_map *tm;
    int rc = evb_topic_map_open(bus, topic, &tm);
    if (rc)
        return rc;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/consumers", tm->ddir[0] ? tm->ddir : tm->dir);
    evb_topic_map_close(tm);
    DIR *d;
    if ((rc = evb_open_dir(dir, &d)) < 0)
        return rc == -ENOENT ? 0 : rc;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || len - 4 > EVB_NAME_MAX || strcmp(de->d_name + len - 4, ".grp"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strndup(de->d_name, len - 4))) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n)
        qsort(names, n, sizeof *names, cmp_str);
    size_t visited = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        visited++;
        if (fn && fn(names[i], arg))
            rc = 1;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc < 0 ? rc : (int)visited;
}

EVB_EXPORT int evb_group_stat(evb_bus *bus, const char *topic, const char *group,
                              evb_group_summary *out, evb_group_member_stat *members,
                              uint32_t mcap, evb_group_partition_stat *parts, uint32_t pcap)
{
    EVB_NO_CANCEL;
    if (!bus || !topic || !out || (mcap && !members) || (pcap && !parts))
        return evb_err_set(-EINVAL, "evb_group_stat: bus, topic, out, or an array with a "
                           "capacity is NULL");
    evb_err_clear();
    /* Partitions 0 says "nothing filled in" after any error (evbus.h). */
    memset(out, 0, sizeof *out);
    int rc = evb_name_check(group, "group");
    if (rc)
        return rc;
    struct evb_topic_map *tm;
    if ((rc = evb_topic_map_open(bus, topic, &tm)))
        return rc;
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/consumers/%s.grp", tm->ddir[0] ? tm->ddir : tm->dir,
             group);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0) {
        evb_topic_map_close(tm);
        return fd == -ENOENT ? evb_err_set(-ENOENT, "topic %s has no group %s", topic, group)
                             : fd;
    }
    struct evb_grp_file *f;
    size_t bytes;
    rc = evb_group_map(fd, path, tm->nparts, PROT_READ, &f, &bytes);
    close(fd);
    if (rc) {
        evb_topic_map_close(tm);
        return rc;
    }
    memset(out, 0, sizeof *out);
    out->partitions = tm->nparts;
    /* J3, J5: acquire the generation, then relaxed counters. */
    out->generation = atomic_load_explicit(&f->h.generation, memory_order_acquire);
    out->expelled = atomic_load_explicit(&f->h.expelled, memory_order_relaxed);
    out->handovers = atomic_load_explicit(&f->h.handovers, memory_order_relaxed);
    out->dlq_refusals = atomic_load_explicit(&f->h.dlq_refusals, memory_order_relaxed);
    /* Relaxed: a hint beside the count. Shared memory: only an errno-like
     * value is passed on. */
    int32_t e = atomic_load_explicit(&f->h.dlq_refusal_error, memory_order_relaxed);
    out->dlq_refusal_error = e < 0 && e > -4096 ? e : 0;
    bool queue = f->h.kind == EVB_GRP_KIND_QUEUE;
    out->kind = queue ? EVB_QUEUE_MEMBER : EVB_GROUP_MEMBER;
    if (queue) {
        out->ack_wait_ms = f->h.ack_wait_ms;
        out->max_deliveries = f->h.max_deliveries;
        out->max_in_flight = f->h.window;
    }
    uint64_t now = evb_mono_ns() / 1000000u;
    uint32_t pid_of_id[EVB_GRP_MEMBERS];
    uint64_t ids[EVB_GRP_MEMBERS];
    uint32_t nm = 0;
    for (uint32_t s = 0; s < EVB_GRP_MEMBERS; s++) {
        const struct evb_grp_member *m = &f->m[s];
        /* J6: acquire; the slot's words as its holder wrote them. */
        uint64_t proc = atomic_load_explicit(&m->proc, memory_order_acquire);
        if (!proc)
            continue;
        /* J2: acquire, the id behind the slot. */
        uint64_t id = atomic_load_explicit(&m->id, memory_order_acquire);
        ids[nm] = id;
        pid_of_id[nm] = (uint32_t)(proc >> 32);
        if (nm < mcap) {
            evb_group_member_stat *ms = &members[nm];
            memset(ms, 0, sizeof *ms);
            ms->member_id = id;
            ms->pid = (uint32_t)(proc >> 32);
            ms->alive = evb_proc_alive(proc) ? 1 : 0;
            memcpy(ms->comm, m->comm, sizeof ms->comm);
            ms->comm[sizeof ms->comm - 1] = 0;
            for (size_t k = 0; k < sizeof ms->comm; k++)
                if (ms->comm[k] && (ms->comm[k] < 0x20 || ms->comm[k] > 0x7e))
                    ms->comm[k] = '?'; /* a name is shown, so shown safely */
            /* J5: relaxed numbers. */
            uint64_t beat = atomic_load_explicit(&m->heartbeat_ms, memory_order_relaxed);
            ms->silent_ms = beat <= now ? now - beat : 0;
            ms->lease_ms = atomic_load_explicit(&m->lease_ms, memory_order_relaxed);
            ms->partitions = atomic_load_explicit(&m->owned, memory_order_relaxed);
            ms->delivered = atomic_load_explicit(&m->delivered, memory_order_relaxed);
            ms->commits = atomic_load_explicit(&m->commits, memory_order_relaxed);
        }
        nm++;
    }
    out->members = nm;
    /* The incarnation seen now: only a rebuild during this look makes
     * the checks below -ESTALE (J7, acquire). */
    struct evb_group g = {.f = f, .nparts = tm->nparts, .topic = topic,
                          .incarnation = atomic_load_explicit(&f->h.incarnation,
                                                              memory_order_acquire)};
    snprintf(g.name, sizeof g.name, "%s", group);
    /* A queue its running members call damaged is not shown as a healthy
     * one: the call fails, so the caller's exit status and readable gauge
     * say so, but with every partition filled in and the damaged ones
     * marked. The message is the first damaged partition's. */
    char first[512] = "";
    uint32_t ndamaged = 0;
    bool damaged[EVB_MAX_PARTITIONS] = {false};
    for (uint32_t p = 0; queue && p < tm->nparts; p++) {
        int bad = evb_queue_check(&g, p, &tm->rings[p]);
        if (bad >= 0)
            continue;
        if (!ndamaged++) {
            rc = bad;
            snprintf(first, sizeof first, "%s", evb_last_error());
        }
        damaged[p] = true;
    }
    for (uint32_t k = 0; queue && k < nm && k < mcap; k++)
        for (uint32_t p = 0; p < tm->nparts; p++)
            members[k].in_flight += evb_queue_in_flight(&g, p, (uint32_t)ids[k]);
    for (uint32_t p = 0; p < tm->nparts; p++) {
        /* J4: acquire; the pair of one CAS is re-checked below. */
        uint64_t owner = atomic_load_explicit(&f->p[p].owner, memory_order_acquire);
        uint64_t epoch = atomic_load_explicit(&f->p[p].epoch, memory_order_acquire);
        uint32_t opid = 0;
        for (uint32_t k = 0; k < nm && owner; k++)
            if (ids[k] == owner)
                opid = pid_of_id[k];
        if (p >= pcap)
            continue;
        evb_group_partition_stat *ps = &parts[p];
        memset(ps, 0, sizeof *ps);
        ps->damaged = damaged[p];
        ps->owner_id = owner;
        ps->owner_pid = opid;
        ps->epoch = epoch;
        /* J5: relaxed counter. */
        ps->fenced = atomic_load_explicit(&f->p[p].fenced, memory_order_relaxed);
        ps->rejected = atomic_load_explicit(&f->p[p].rejected, memory_order_relaxed);
        uint64_t pos, off, t, toff;
        evb_ring_load_tail(&tm->rings[p], &t, &toff);
        if (queue) {
            struct evb_queue_head *q = evb_queue_head(f, tm->nparts, p);
            uint64_t fp, fs;
            ps->committed_offset = UINT64_MAX;
            ps->committed_position =
                evb_queue_floor(&g, p, &pos, &off) ? pos : UINT64_MAX;
            ps->backlog_bytes =
                evb_queue_fetch(&g, p, &fp, &fs) && t > fp ? t - fp : 0;
            ps->in_flight = evb_queue_in_flight(&g, p, 0);
            ps->dlq_due = evb_queue_dlq_due(&g, p);
            /* V3 (queue.c): relaxed counters. */
            ps->acked = atomic_load_explicit(&q->acked, memory_order_relaxed);
            ps->nacked = atomic_load_explicit(&q->nacked, memory_order_relaxed);
            ps->redelivered = atomic_load_explicit(&q->redelivered, memory_order_relaxed);
            ps->dead_lettered = atomic_load_explicit(&q->dead_lettered, memory_order_relaxed);
        } else if (evb_group_cursor(&g, p, &pos, &off)) {
            /* A commit made before its offset was known: position 0 and
             * the tail tell it anyway. */
            if (off == EVB_FRAME_NO_OFFSET && pos == 0)
                off = 0;
            else if (off == EVB_FRAME_NO_OFFSET && pos == t)
                off = toff;
            ps->committed_position = pos;
            ps->committed_offset = off == EVB_FRAME_NO_OFFSET ? UINT64_MAX : off;
            ps->lag_events = off != EVB_FRAME_NO_OFFSET && toff > off ? toff - off : 0;
        } else {
            ps->committed_position = UINT64_MAX;
            ps->committed_offset = UINT64_MAX;
            ps->lag_events = toff;
        }
    }
    munmap(f, bytes);
    /* Its dedup table, if it has one: damaged, every member's open is
     * refused, as for a group file that does not read. */
    char why[256];
    int bad = evb_dedup_file_verify(tm, group, true, UINT32_MAX, why, sizeof why);
    evb_topic_map_close(tm);
    if (bad) {
        memset(out, 0, sizeof *out); /* partitions 0: nothing filled in (evbus.h) */
        return evb_err_set(bad, "group %s of topic %s: dedup table damaged: %s; remove it to "
                           "start the tables empty (duplicates of events before are then "
                           "delivered again)", group, topic, why);
    }
    if (ndamaged > 1)
        return evb_err_set(rc, "%u partitions damaged; the first: %s", ndamaged, first);
    if (ndamaged)
        return evb_err_set(rc, "%s", first);
    return (int)nm;
}
