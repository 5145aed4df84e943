/*
 * cmd_info.c - evbus info: a topic's configuration and, per partition, its
 * tail and, for durable topics, how far the disk log has caught up and
 * what it holds.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char info_usage[] =
    "usage: evbus info TOPIC [--verify] [--json] [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Print TOPIC's configuration and, per partition, the tail: the offset\n"
    "and position the next event will get. For a durable topic also, per\n"
    "partition: the flushed position (written to disk below it) and durable\n"
    "position (fdatasync'ed below it), where the retained log starts, the\n"
    "segment files and their size, fdatasyncs done, the torn bytes cut off\n"
    "when the ring was last rebuilt from disk (recovered_dropped), the log\n"
    "bytes retention's cap removed before a named consumer had committed\n"
    "past them (retention_unconsumed: events it never read), the\n"
    "flusher's pid and its last write error, and the damage the last rebuild\n"
    "found below the log end and kept (it walks the newest segment only).\n"
    "\n"
    "A topic the library will not open (evbus list marks it damaged and says\n"
    "why) shows what is left: the reason, its configuration (for a durable\n"
    "topic whose tmpfs side is gone, as its data directory records it) and\n"
    "each partition's segment files walked: events, and where and why the\n"
    "valid frames stop. The exit status is then 1, as it is for a topic whose\n"
    "last rebuild from disk found damage and kept it (list marks it damaged\n"
    "too): that one is shown in full, then the reason.\n"
    "\n"
    "The exit status is 1 too when a partition's last flush failed (flush\n"
    "error not none: a full or removed data directory, a segment replaced\n"
    "under the flusher): nothing published since becomes durable until a\n"
    "flusher succeeds again, and stderr names the partition and the error.\n"
    "\n"
    "  --verify         durable topics: walk every segment file now, read\n"
    "                   only, checking every frame as a reader does, and\n"
    "                   report each partition's damaged ranges; exit 1 when\n"
    "                   there are any (read past them with tail --skip-damage).\n"
    "                   Each segment's index (.idx) is checked against its\n"
    "                   frames too: a bad one is a hint that seeks check and\n"
    "                   walk past (slower, no event lost); it is named, and\n"
    "                   the exit status is 1 as well (remove the file)\n"
    "  --json           one JSON object\n"
    CLI_BUS_HELP;

/* Partitions to show: the config's count, bounded by the array we fill,
 * in case a newer library allows more than this build knows of. */
static uint32_t info_parts(const struct evb_topic_info *ti)
{
    uint32_t n = ti->config.partitions;
    return n < EVB_MAX_PARTITIONS ? n : EVB_MAX_PARTITIONS;
}

static bool is_durable(const struct evb_topic_info *ti)
{
    return ti->config.durability != EVB_DURABILITY_NONE;
}

/* ---- text ------------------------------------------------------------ */

/* "1 GiB per partition, 7d, until consumed (cap 10 GiB)" or "keep everything". */
static void fmt_retention(const evb_topic_config *cfg, char *out, size_t cap)
{
    char num[32];
    size_t n = 0;
    out[0] = '\0';
    if (cfg->retain_bytes) {
        util_fmt_size(cfg->retain_bytes, num, sizeof(num));
        n += (size_t)snprintf(out + n, cap - n, "%s per partition", num);
    }
    if (cfg->retain_ms && n < cap) {
        util_fmt_duration_ms(cfg->retain_ms, num, sizeof(num));
        n += (size_t)snprintf(out + n, cap - n, "%s%s old", n ? ", " : "", num);
    }
    if ((cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED) && n < cap) {
        n += (size_t)snprintf(out + n, cap - n, "%suntil consumed", n ? ", " : "");
        if (cfg->retain_cap_bytes && n < cap) {
            util_fmt_size(cfg->retain_cap_bytes, num, sizeof(num));
            snprintf(out + n, cap - n, " (cap %s)", num);
        }
    }
    if (out[0] == '\0')
        snprintf(out, cap, "keep everything");
}

static void print_durability(const cli *c, const struct evb_topic_info *ti)
{
    const evb_topic_config *cfg = &ti->config;
    char seg[32], flush[32], keep[160];
    if (!is_durable(ti)) {
        printf("durability       none\n");
        return;
    }
    util_fmt_size(cfg->segment_bytes, seg, sizeof(seg));
    util_fmt_duration_ms(cfg->flush_ms, flush, sizeof(flush));
    fmt_retention(cfg, keep, sizeof(keep));
    if (cfg->durability == EVB_DURABILITY_ASYNC)
        printf("durability       async, fdatasync every %s\n", flush);
    else
        printf("durability       %s\n", cli_durability_name(cfg->durability));
    printf("segment bytes    %s\n", seg);
    printf("retention        %s\n", keep);
    printf("data dir         %s/%s\n", evb_bus_data_dir(c->bus), ti->name);
}

/* "none" or "2 ranges, 1.5 KiB from position 70000". */
static void fmt_damage(const evb_damage *d, char *out, size_t cap)
{
    char size[32];
    if (!d->ranges) {
        snprintf(out, cap, "none");
        return;
    }
    util_fmt_size(d->bytes, size, sizeof(size));
    snprintf(out, cap, "%llu range%s, %s from position %llu", (unsigned long long)d->ranges,
             d->ranges == 1 ? "" : "s", size, (unsigned long long)d->first_position);
}

static const char *mark_name(uint32_t m)
{
    static const char *const names[] = {"ok", "missing", "invalid", "not a regular file"};
    return m < sizeof(names) / sizeof(names[0]) ? names[m] : "invalid";
}

/* Whether warn_mark() warns about D: info then exits 1, as for damage. */
static bool mark_warns(const evb_damage *d)
{
    return d->mark != EVB_MARK_OK || d->unchecked_cut_bytes;
}

/* A bad mark, or bytes cut without one: said on stderr, whatever else. */
static void warn_mark(const struct evb_topic_info *ti, uint32_t p, const evb_damage *d)
{
    if (!mark_warns(d))
        return;
    if (d->unchecked_cut_position == UINT64_MAX) {
        /* The flusher's finding while live: no rebuild, no log end. */
        fprintf(stderr, "evbus info: topic %s partition %u: durable mark %s: it cannot be "
                "written; a rebuild would find the log end without it\n", ti->name, p,
                mark_name(d->mark));
        return;
    }
    char cut[32];
    util_fmt_size(d->unchecked_cut_bytes, cut, sizeof(cut));
    fprintf(stderr, "evbus info: topic %s partition %u: durable mark %s: log end checked "
            "without it; %s cut as a torn tail from position %llu (may have been synced "
            "events)\n", ti->name, p, mark_name(d->mark), cut,
            (unsigned long long)d->unchecked_cut_position);
    if (d->skipped_offsets)
        fprintf(stderr, "evbus info: topic %s partition %u: %llu offsets skipped after that "
                "cut, so none it may have held is handed out again\n", ti->name, p,
                (unsigned long long)d->skipped_offsets);
}

static void print_disk(const struct evb_topic_info *ti, const struct evb_partition_stat *ps,
                       const evb_damage *dmg)
{
    printf("\n%-9s  %16s  %16s  %18s  %16s\n", "partition", "flushed position",
           "durable position", "log start position", "log start offset");
    for (uint32_t p = 0; p < info_parts(ti); p++)
        printf("%-9u  %16llu  %16llu  %18llu  %16llu\n", p,
               (unsigned long long)ps[p].flushed_position,
               (unsigned long long)ps[p].durable_position,
               (unsigned long long)ps[p].log_start_position,
               (unsigned long long)ps[p].log_start_offset);
    printf("\n%-9s  %8s  %12s  %10s  %17s  %20s  %11s  %s\n", "partition", "segments",
           "disk bytes", "fsyncs", "recovered_dropped", "retention_unconsumed", "flusher pid",
           "flush error");
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        char disk[32], pid[16];
        util_fmt_size(ps[p].disk_bytes, disk, sizeof(disk));
        snprintf(pid, sizeof(pid), "%u", ps[p].flusher_pid);
        printf("%-9u  %8u  %12s  %10llu  %17llu  %20llu  %11s  %s\n", p, ps[p].segments, disk,
               (unsigned long long)ps[p].fsyncs,
               (unsigned long long)ps[p].recovered_dropped,
               (unsigned long long)ps[p].retention_unconsumed,
               ps[p].flusher_pid ? pid : "-",
               !ps[p].flush_error ? "none"
               : dmg[p].flush_error[0] ? dmg[p].flush_error /* the flusher's own words */
                                       : evb_strerror(ps[p].flush_error));
    }
    printf("\n%-9s  %s\n", "partition", "damaged at recovery (kept on disk)");
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        char d[96];
        fmt_damage(&dmg[p], d, sizeof(d));
        printf("%-9u  %s\n", p, d);
        if (dmg[p].mark != EVB_MARK_OK && dmg[p].unchecked_cut_position == UINT64_MAX)
            printf("%-9u  durable mark %s: it cannot be written (found live; no rebuild has "
                   "checked the log end without it)\n", p, mark_name(dmg[p].mark));
        else if (dmg[p].mark != EVB_MARK_OK && !dmg[p].unchecked_cut_bytes)
            printf("%-9u  durable mark %s; nothing cut as a torn tail without it (the log "
                   "ended at position %llu)\n", p, mark_name(dmg[p].mark),
                   (unsigned long long)dmg[p].unchecked_cut_position);
        else if (dmg[p].mark != EVB_MARK_OK || dmg[p].unchecked_cut_bytes)
            printf("%-9u  durable mark %s; %llu bytes cut as a torn tail without it, from "
                   "position %llu; %llu offsets skipped after it (never reused)\n", p,
                   mark_name(dmg[p].mark), (unsigned long long)dmg[p].unchecked_cut_bytes,
                   (unsigned long long)dmg[p].unchecked_cut_position,
                   (unsigned long long)dmg[p].skipped_offsets);
        if (dmg[p].reset_commits || dmg[p].reset_left)
            printf("%-9u  %llu reader commits past the log end set back to it by a rebuild "
                   "(events read before they were durable were lost; the new events at "
                   "their offsets are read); %llu reader files left unchecked\n", p,
                   (unsigned long long)dmg[p].reset_commits,
                   (unsigned long long)dmg[p].reset_left);
        warn_mark(ti, p, &dmg[p]);
    }
}

static void print_config(const cli *c, const struct evb_topic_info *ti)
{
    char ring[32], max[32];
    util_fmt_size(ti->config.ring_bytes, ring, sizeof(ring));
    util_fmt_size(ti->config.max_event_bytes, max, sizeof(max));
    printf("topic            %s\n", ti->name);
    printf("partitions       %u\n", ti->config.partitions);
    printf("ring bytes       %s per partition\n", ring);
    printf("max event bytes  %s\n", max);
    printf("file mode        %04o\n", ti->config.file_mode);
    if (ti->config.numa_node)
        printf("numa node        %d\n", EVB_NUMA_NODE_OF(ti->config.numa_node));
    if (ti->config.huge_pages)
        printf("huge pages       %s\n", cli_huge_pages_name(ti->config.huge_pages));
    print_durability(c, ti);
}

static void info_print_text(const cli *c, const struct evb_topic_info *ti,
                            const struct evb_partition_stat *ps, const evb_damage *dmg)
{
    print_config(c, ti);
    printf("\n%-9s  %14s  %16s\n", "partition", "tail offset", "tail position");
    for (uint32_t p = 0; p < info_parts(ti); p++)
        printf("%-9u  %14llu  %16llu\n", p, (unsigned long long)ps[p].tail_offset,
               (unsigned long long)ps[p].tail_position);
    if (is_durable(ti))
        print_disk(ti, ps, dmg);
}

/* ---- JSON ------------------------------------------------------------ */

static json_t *damage_json(const evb_damage *d, bool verify)
{
    json_t *o = json_pack("{s:o, s:o}", "ranges", cli_json_u64(d->ranges),
                          "bytes", cli_json_u64(d->bytes));
    if (o != NULL && d->ranges &&
        json_object_set_new(o, "first_position", cli_json_u64(d->first_position)) < 0) {
        json_decref(o);
        o = NULL;
    }
    if (o != NULL && !verify &&
        (json_object_set_new(o, "mark", json_string(mark_name(d->mark))) < 0 ||
         json_object_set_new(o, "unchecked_cut_bytes", cli_json_u64(d->unchecked_cut_bytes)) < 0 ||
         json_object_set_new(o, "unchecked_cut_position",
                             cli_json_u64(d->unchecked_cut_position)) < 0 ||
         json_object_set_new(o, "skipped_offsets", cli_json_u64(d->skipped_offsets)) < 0 ||
         json_object_set_new(o, "reset_commits", cli_json_u64(d->reset_commits)) < 0 ||
         json_object_set_new(o, "reset_left", cli_json_u64(d->reset_left)) < 0)) {
        json_decref(o);
        o = NULL;
    }
    if (o != NULL && verify &&
        (json_object_set_new(o, "checked_bytes", cli_json_u64(d->checked_bytes)) < 0 ||
         json_object_set_new(o, "bad_indexes", cli_json_u64(d->bad_indexes)) < 0 ||
         (d->bad_indexes &&
          json_object_set_new(o, "first_bad_index", cli_json_u64(d->first_bad_index)) < 0))) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* The durable counters of PS added to O; false when out of memory. */
static bool disk_json(json_t *o, const struct evb_partition_stat *ps, const evb_damage *dmg)
{
    json_t *d = json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:i, s:I}",
                          "flushed_position", cli_json_u64(ps->flushed_position),
                          "durable_position", cli_json_u64(ps->durable_position),
                          "log_start_position", cli_json_u64(ps->log_start_position),
                          "log_start_offset", cli_json_u64(ps->log_start_offset),
                          "segments", (json_int_t)ps->segments,
                          "disk_bytes", cli_json_u64(ps->disk_bytes),
                          "fsyncs", cli_json_u64(ps->fsyncs),
                          "recovered_dropped", cli_json_u64(ps->recovered_dropped),
                          "retention_unconsumed", cli_json_u64(ps->retention_unconsumed),
                          "flush_error", (int)ps->flush_error,
                          "flusher_pid", (json_int_t)ps->flusher_pid);
    if (d != NULL && ps->flush_error != 0 &&
        json_object_set_new(d, "flush_error_text",
                            cli_json_text(dmg->flush_error[0] ? dmg->flush_error
                                                            : evb_strerror(ps->flush_error))) < 0) {
        json_decref(d);
        d = NULL;
    }
    if (d != NULL && json_object_set_new(d, "damage_at_recovery", damage_json(dmg, false)) < 0) {
        json_decref(d);
        d = NULL;
    }
    return json_object_update_new(o, d) == 0;
}

static json_t *info_json(const cli *c, const struct evb_topic_info *ti,
                         const struct evb_partition_stat *ps, const evb_damage *dmg,
                         const evb_damage *ver)
{
    json_t *parts = json_array();
    for (uint32_t p = 0; parts != NULL && p < info_parts(ti); p++) {
        json_t *o = json_pack("{s:I, s:o, s:o}",
                              "partition", (json_int_t)p,
                              "tail_offset", cli_json_u64(ps[p].tail_offset),
                              "tail_position", cli_json_u64(ps[p].tail_position));
        if (o != NULL && is_durable(ti) && !disk_json(o, &ps[p], &dmg[p])) {
            json_decref(o);
            o = NULL;
        }
        if (o != NULL && ver != NULL &&
            json_object_set_new(o, "verify", damage_json(&ver[p], true)) < 0) {
            json_decref(o);
            o = NULL;
        }
        /* A NULL makes the append fail: the pack below then does too. */
        if (json_array_append_new(parts, o) < 0) {
            json_decref(parts);
            parts = NULL;
        }
    }
    json_t *j = json_pack("{s:s, s:o, s:o}", "name", ti->name,
                          "config", cli_config_json(&ti->config), "partitions", parts);
    if (j != NULL && is_durable(ti) &&
        json_object_set_new(j, "data_dir", json_sprintf("%s/%s", evb_bus_data_dir(c->bus),
                                                        ti->name)) < 0) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* ---- a damaged topic ------------------------------------------------- */

/* One segment walked, as a JSON object. */
static json_t *seg_json(const cli_seg_summary *s)
{
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o}", "path", s->path,
                     "base_position", cli_json_u64(s->base),
                     "file_bytes", cli_json_u64(s->file_bytes),
                     "events", cli_json_u64(s->events),
                     "valid_to_position", cli_json_u64(s->end_position),
                     "why", s->why, "trailing_bytes", cli_json_u64(s->trailing_bytes));
}

/* Walk partition P's segment files from the data directory: a text row per
 * file, or their JSON objects appended to SEGS. Returns 0 or -errno. */
static int damaged_partition(const cli *c, const char *topic, uint32_t p, json_t *segs)
{
    char **paths;
    size_t n;
    int err = cli_disk_segments(c, topic, p, &paths, &n);
    for (size_t i = 0; err == 0 && i < n; i++) {
        cli_seg_summary s;
        err = cli_disk_summarise(paths[i], &s);
        if (err < 0 && segs != NULL) {
            /* A file that does not walk (cut short, say) is one row; the
             * next file may still walk. */
            json_t *o = json_pack("{s:s, s:o, s:o, s:s}", "path", s.path,
                                  "base_position", cli_json_u64(s.base),
                                  "file_bytes", cli_json_u64(s.file_bytes),
                                  "error", evb_last_error()[0] ? evb_last_error()
                                                               : evb_strerror(err));
            err = json_array_append_new(segs, o) < 0 ? -ENOMEM : 0;
        } else if (err == 0 && segs != NULL) {
            err = json_array_append_new(segs, seg_json(&s)) < 0 ? -ENOMEM : 0;
        } else if (err == 0) {
            char size[32];
            util_fmt_size(s.file_bytes, size, sizeof(size));
            printf("%-9u  %20llu  %10s  %8llu  %17llu  %s, %llu bytes after\n", p,
                   (unsigned long long)s.base, size, (unsigned long long)s.events,
                   (unsigned long long)s.end_position, s.why,
                   (unsigned long long)s.trailing_bytes);
        } else {
            char size[32];
            util_fmt_size(s.file_bytes, size, sizeof(size));
            printf("%-9u  %20llu  %10s  not walked: %s\n", p, (unsigned long long)s.base,
                   size, evb_last_error()[0] ? evb_last_error() : evb_strerror(err));
            err = 0;
        }
    }
    if (n == 0 && err == 0 && segs == NULL)
        printf("%-9u  no segment files\n", p);
    cli_free_paths(paths, n);
    return err;
}

/*
 * Show what is left of a topic the library will not open: the reason WHY,
 * the configuration TI when known (the data directory's, or a tmpfs
 * topic.conf that disagrees with its rings), and for a durable topic each
 * partition's segment files walked. Returns CLI_FAIL after saying on
 * stderr that the topic is damaged (or another exit code).
 */
static int info_damaged(cli *c, const char *topic, const struct evb_topic_info *ti, int err,
                        const char *why)
{
    bool known = ti->name[0] != '\0';
    uint32_t parts = known && is_durable(ti) ? info_parts(ti) : 0;
    if (c->json) {
        json_t *a = json_array();
        for (uint32_t p = 0; a != NULL && p < parts; p++) {
            json_t *segs = json_array();
            json_t *o = json_pack("{s:I, s:o}", "partition", (json_int_t)p, "segments", segs);
            int e = o != NULL ? damaged_partition(c, topic, p, segs) : -ENOMEM;
            if (o != NULL && e < 0 && e != -ENOMEM &&
                json_object_set_new(o, "error", json_string(evb_strerror(e))) < 0)
                e = -ENOMEM;
            if (e == -ENOMEM || json_array_append_new(a, o) < 0) {
                json_decref(a);
                a = NULL;
            }
        }
        json_t *j = json_pack("{s:s, s:s, s:o}", "name", topic, "damaged", why,
                              "partitions", a);
        if (j != NULL && known &&
            json_object_set_new(j, "config", cli_config_json(&ti->config)) < 0) {
            json_decref(j);
            j = NULL;
        }
        int rc = cli_print_json(c, j);
        if (rc != 0)
            return rc;
    } else {
        if (known)
            print_config(c, ti);
        else
            printf("topic            %s\n", topic);
        printf("damaged          %s\n", why);
        if (parts > 0)
            printf("\n%-9s  %20s  %10s  %8s  %17s  %s\n", "partition", "segment base",
                   "file bytes", "events", "valid to position", "then");
        for (uint32_t p = 0; p < parts; p++) {
            int e = damaged_partition(c, topic, p, NULL);
            if (e < 0)
                printf("%-9u  %s/%s/%u: %s\n", p, evb_bus_data_dir(c->bus), topic, p,
                       evb_strerror(e));
        }
    }
    return cli_error(c, "topic %s: %s (%s)", topic, evb_strerror(err), why);
}

/* ---- command --------------------------------------------------------- */

/* Read TOPIC's info and every partition's counters and recorded damage;
 * returns 0 or an exit code. */
static int info_load(cli *c, const char *topic, struct evb_topic_info *ti,
                     struct evb_partition_stat *ps, evb_damage *dmg)
{
    static char why[1024];
    int err = evb_topic_info(c->bus, topic, ti);
    if (err == -EBADMSG) {
        snprintf(why, sizeof(why), "%s", evb_last_error());
        return info_damaged(c, topic, ti, err, why);
    }
    if (err < 0)
        return cli_fail(c, err, "topic %s", topic);
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        err = evb_partition_stat(c->bus, topic, p, &ps[p]);
        if (err == -EBADMSG) {
            snprintf(why, sizeof(why), "%s", evb_last_error());
            return info_damaged(c, topic, ti, err, why);
        }
        if (err < 0)
            return cli_fail(c, err, "topic %s partition %u", topic, p);
        dmg[p] = (evb_damage){.first_position = UINT64_MAX};
        if (is_durable(ti) && (err = evb_partition_damage(c->bus, topic, p, 0, &dmg[p])) < 0)
            return cli_fail(c, err, "topic %s partition %u: damage report", topic, p);
    }
    return 0;
}

/* --verify: walk every partition's log; returns 0, 1 (damage found or a
 * walk failed) or an exit code, text lines printed as it goes. */
static int info_verify(cli *c, const struct evb_topic_info *ti, evb_damage *ver)
{
    /* Asked of a topic with no disk log: a wrong command line, not a
     * failure of the bus. */
    if (!is_durable(ti))
        return cli_usage_error(c, "--verify: topic %s is not durable (it has no disk log)",
                               ti->name);
    int rc = 0;
    bool damaged = false, bad_index = false;
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        int err = evb_partition_damage(c->bus, ti->name, p, EVB_DAMAGE_VERIFY, &ver[p]);
        if (err < 0)
            return cli_fail(c, err, "topic %s partition %u: verify", ti->name, p);
        char checked[32], d[96];
        util_fmt_size(ver[p].checked_bytes, checked, sizeof(checked));
        fmt_damage(&ver[p], d, sizeof(d));
        if (!c->json && ver[p].ranges)
            printf("partition %u: %s checked, damaged: %s\n", p, checked, d);
        else if (!c->json)
            printf("partition %u: %s checked, no damage\n", p, checked);
        if (ver[p].ranges)
            rc = 1;
        if (!c->json && ver[p].bad_indexes)
            printf("partition %u: %llu segment index%s contradict%s the frames, the first "
                   "%020llu.idx: not log damage (seeks check an index and walk the frames "
                   "instead); remove it\n", p, (unsigned long long)ver[p].bad_indexes,
                   ver[p].bad_indexes == 1 ? "" : "es", ver[p].bad_indexes == 1 ? "s" : "",
                   (unsigned long long)ver[p].first_bad_index);
        if (ver[p].bad_indexes)
            rc = 1;
        damaged = damaged || ver[p].ranges;
        bad_index = bad_index || ver[p].bad_indexes;
    }
    /* Exit 1 says why on stderr, one line (a cold attack found a bad
     * index alone exiting 1 with nothing there). */
    if (damaged)
        fprintf(stderr, "evbus info: topic %s: damaged log; readers stop there, tail "
                "--skip-damage reads past it\n", ti->name);
    else if (bad_index)
        fprintf(stderr, "evbus info: topic %s: a segment index contradicts its frames (not "
                "log damage, no event lost): remove the .idx file named above\n", ti->name);
    return rc;
}

/* list's verdict, evb_topic_damage(), is info's exit status too: a topic
 * the library opens but whose last rebuild kept damage was shown in full;
 * now its one line says why it is damaged. Returns 0 or an exit code. */
static int info_damage_status(cli *c, const char *topic)
{
    char why[1024];
    int d = evb_topic_damage(c->bus, topic, why, sizeof(why));
    if (d < 0)
        return cli_fail(c, d, "topic %s: damage check", topic);
    if (d == 1)
        return cli_error(c, "topic %s: damaged: %s", topic, why);
    return 0;
}

/* A partition whose last flush failed is not durable from there on: a
 * check run from cron must not take it for healthy. 1 (said on stderr,
 * each partition) or 0. */
static int info_flush_status(const struct evb_topic_info *ti, const struct evb_partition_stat *ps,
                             const evb_damage *dmg)
{
    int rc = 0;
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        if (!ps[p].flush_error)
            continue;
        fprintf(stderr, "evbus info: topic %s partition %u: the last flush failed (%s); "
                "nothing published since becomes durable until a flusher succeeds\n",
                ti->name, p,
                dmg[p].flush_error[0] ? dmg[p].flush_error : evb_strerror(ps[p].flush_error));
        rc = 1;
    }
    return rc;
}

enum { OPT_VERIFY = CLI_OPT_FIRST };

/* Parse info's options; *VERIFY set by --verify. Returns 0 or an exit code. */
static int info_options(cli *c, int argc, char **argv, bool *verify)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "verify", no_argument, NULL, OPT_VERIFY },
        { 0 },
    };
    int opt;
    while ((opt = cli_getopt(c, argc, argv, "", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_VERIFY)
            *verify = true;
    }
    return cli_want_args(c, argc, argv, "TOPIC", 1);
}

int cmd_info(int argc, char **argv)
{
    cli c;
    bool verify = false;
    cli_begin(&c, "info", info_usage);
    int rc = info_options(&c, argc, argv, &verify);
    if (rc != 0 || (rc = cli_open_bus(&c, CLI_BUS_EXISTING)) != 0)
        return rc;
    struct evb_topic_info ti;
    static struct evb_partition_stat ps[EVB_MAX_PARTITIONS];
    static evb_damage dmg[EVB_MAX_PARTITIONS], ver[EVB_MAX_PARTITIONS];
    rc = info_load(&c, argv[optind], &ti, ps, dmg);
    if (rc == 0 && verify) {
        rc = info_verify(&c, &ti, ver);
        if (c.json && rc <= 1) {
            int jr = cli_print_json(&c, info_json(&c, &ti, ps, dmg, ver));
            rc = jr ? jr : rc;
        }
    } else if (rc == 0 && c.json) {
        for (uint32_t p = 0; p < info_parts(&ti); p++)
            warn_mark(&ti, p, &dmg[p]);
        rc = cli_print_json(&c, info_json(&c, &ti, ps, dmg, NULL));
    } else if (rc == 0) {
        info_print_text(&c, &ti, ps, dmg);
    }
    if (rc == 0)
        rc = info_damage_status(&c, ti.name);
    if (rc == 0)
        rc = info_flush_status(&ti, ps, dmg);
    /* The text and the JSON warned on stderr about a bad mark (--verify
     * reports the walk only): a caller must not take that for fine. */
    for (uint32_t p = 0; rc == 0 && !verify && p < info_parts(&ti); p++)
        if (mark_warns(&dmg[p]))
            rc = 1;
    cli_close(&c);
    return rc;
}
