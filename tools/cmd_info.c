/*
 * cmd_info.c - evbus info: a topic's configuration and, per partition, its
 * tail and, for durable topics, how far the disk log has caught up and
 * what it holds.
 */
#include "cli.h"
#include "util.h"

#include <stdio.h>

static const char info_usage[] =
    "usage: evbus info TOPIC [--json] [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Print TOPIC's configuration and, per partition, the tail: the offset\n"
    "and position the next event will get. For a durable topic also, per\n"
    "partition: the flushed position (written to disk below it) and durable\n"
    "position (fdatasync'ed below it), where the retained log starts, the\n"
    "segment files and their size, fdatasyncs done, the torn bytes cut off\n"
    "when the ring was last rebuilt from disk (recovered_dropped), the\n"
    "flusher's pid and its last write error.\n"
    "\n"
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

static void print_disk(const struct evb_topic_info *ti, const struct evb_partition_stat *ps)
{
    printf("\n%-9s  %16s  %16s  %18s  %16s\n", "partition", "flushed position",
           "durable position", "log start position", "log start offset");
    for (uint32_t p = 0; p < info_parts(ti); p++)
        printf("%-9u  %16llu  %16llu  %18llu  %16llu\n", p,
               (unsigned long long)ps[p].flushed_position,
               (unsigned long long)ps[p].durable_position,
               (unsigned long long)ps[p].log_start_position,
               (unsigned long long)ps[p].log_start_offset);
    printf("\n%-9s  %8s  %12s  %10s  %17s  %11s  %s\n", "partition", "segments", "disk bytes",
           "fsyncs", "recovered_dropped", "flusher pid", "flush error");
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        char disk[32], pid[16];
        util_fmt_size(ps[p].disk_bytes, disk, sizeof(disk));
        snprintf(pid, sizeof(pid), "%u", ps[p].flusher_pid);
        printf("%-9u  %8u  %12s  %10llu  %17llu  %11s  %s\n", p, ps[p].segments, disk,
               (unsigned long long)ps[p].fsyncs,
               (unsigned long long)ps[p].recovered_dropped,
               ps[p].flusher_pid ? pid : "-",
               ps[p].flush_error ? evb_strerror(ps[p].flush_error) : "none");
    }
}

static void info_print_text(const cli *c, const struct evb_topic_info *ti,
                            const struct evb_partition_stat *ps)
{
    char ring[32], max[32];
    util_fmt_size(ti->config.ring_bytes, ring, sizeof(ring));
    util_fmt_size(ti->config.max_event_bytes, max, sizeof(max));
    printf("topic            %s\n", ti->name);
    printf("partitions       %u\n", ti->config.partitions);
    printf("ring bytes       %s per partition\n", ring);
    printf("max event bytes  %s\n", max);
    printf("file mode        %04o\n", ti->config.file_mode);
    print_durability(c, ti);
    printf("\n%-9s  %14s  %16s\n", "partition", "tail offset", "tail position");
    for (uint32_t p = 0; p < info_parts(ti); p++)
        printf("%-9u  %14llu  %16llu\n", p, (unsigned long long)ps[p].tail_offset,
               (unsigned long long)ps[p].tail_position);
    if (is_durable(ti))
        print_disk(ti, ps);
}

/* ---- JSON ------------------------------------------------------------ */

/* The durable counters of PS added to O; false when out of memory. */
static bool disk_json(json_t *o, const struct evb_partition_stat *ps)
{
    json_t *d = json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:i, s:I}",
                          "flushed_position", cli_json_u64(ps->flushed_position),
                          "durable_position", cli_json_u64(ps->durable_position),
                          "log_start_position", cli_json_u64(ps->log_start_position),
                          "log_start_offset", cli_json_u64(ps->log_start_offset),
                          "segments", (json_int_t)ps->segments,
                          "disk_bytes", cli_json_u64(ps->disk_bytes),
                          "fsyncs", cli_json_u64(ps->fsyncs),
                          "recovered_dropped", cli_json_u64(ps->recovered_dropped),
                          "flush_error", (int)ps->flush_error,
                          "flusher_pid", (json_int_t)ps->flusher_pid);
    if (d != NULL && ps->flush_error != 0 &&
        json_object_set_new(d, "flush_error_text", json_string(evb_strerror(ps->flush_error))) < 0) {
        json_decref(d);
        d = NULL;
    }
    return json_object_update_new(o, d) == 0;
}

static json_t *info_json(const cli *c, const struct evb_topic_info *ti,
                         const struct evb_partition_stat *ps)
{
    json_t *parts = json_array();
    for (uint32_t p = 0; parts != NULL && p < info_parts(ti); p++) {
        json_t *o = json_pack("{s:I, s:o, s:o}",
                              "partition", (json_int_t)p,
                              "tail_offset", cli_json_u64(ps[p].tail_offset),
                              "tail_position", cli_json_u64(ps[p].tail_position));
        if (o != NULL && is_durable(ti) && !disk_json(o, &ps[p])) {
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

/* ---- command --------------------------------------------------------- */

/* Read TOPIC's info and every partition's counters; returns 0 or an exit code. */
static int info_load(cli *c, const char *topic, struct evb_topic_info *ti,
                     struct evb_partition_stat *ps)
{
    int err = evb_topic_info(c->bus, topic, ti);
    if (err < 0)
        return cli_fail(c, err, "topic %s", topic);
    for (uint32_t p = 0; p < info_parts(ti); p++) {
        err = evb_partition_stat(c->bus, topic, p, &ps[p]);
        if (err < 0)
            return cli_fail(c, err, "topic %s partition %u", topic, p);
    }
    return 0;
}

int cmd_info(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "info", info_usage);
    int rc = cli_common_options(&c, argc, argv, true, 1, "TOPIC");
    if (rc != 0 || (rc = cli_open_bus(&c, CLI_BUS_EXISTING)) != 0)
        return rc;
    struct evb_topic_info ti;
    static struct evb_partition_stat ps[EVB_MAX_PARTITIONS];
    rc = info_load(&c, argv[optind], &ti, ps);
    if (rc == 0 && c.json)
        rc = cli_print_json(&c, info_json(&c, &ti, ps));
    else if (rc == 0)
        info_print_text(&c, &ti, ps);
    cli_close(&c);
    return rc;
}
