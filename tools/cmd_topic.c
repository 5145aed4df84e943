/*
 * cmd_topic.c - evbus create, list, info, delete: topic administration.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- create ---------------------------------------------------------- */

static const char create_usage[] =
    "usage: evbus create TOPIC [OPTIONS]\n"
    "\n"
    "Create TOPIC. Its ring memory is reserved now, so a full /dev/shm fails\n"
    "here rather than later.\n"
    "\n"
    "  --partitions N         partitions, 1..256 (default 1)\n"
    "  --ring-bytes B         ring size per partition, a power of two >= 64K\n"
    "                         (default 4M)\n"
    "  --max-event-bytes B    largest key + value, at most ring-bytes/4\n"
    "                         (default 64K)\n"
    "  --mode OCTAL           permission bits of the ring files (default 0660)\n"
    "  --bus NAME|PATH        the bus (default $EVBUS_BUS, else \"default\")\n"
    "\n"
    "B takes a suffix K, M or G (KiB, MiB, GiB).\n";

enum { OPT_PARTITIONS = CLI_OPT_FIRST, OPT_RING_BYTES, OPT_MAX_EVENT, OPT_MODE };

static int parse_mode(const cli *c, const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 8);
    if (text[0] < '0' || text[0] > '7' || *end != '\0' || errno != 0 || v > 07777)
        return cli_usage_error(c, "--mode '%s': not an octal mode", text);
    *out = (uint32_t)v;
    return 0;
}

/* Fill CFG from create's options; returns 0 or an exit code. */
static int create_options(cli *c, int argc, char **argv, struct evb_topic_config *cfg)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "partitions", required_argument, NULL, OPT_PARTITIONS },
        { "ring-bytes", required_argument, NULL, OPT_RING_BYTES },
        { "max-event-bytes", required_argument, NULL, OPT_MAX_EVENT },
        { "mode", required_argument, NULL, OPT_MODE },
        { 0 },
    };
    int opt;
    uint64_t v;
    while ((opt = cli_getopt(c, argc, argv, "", longopts)) != -1) {
        int rc = 0;
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_PARTITIONS) {
            rc = cli_opt_u64(c, "--partitions", optarg, 1, EVB_MAX_PARTITIONS, &v);
            cfg->partitions = (uint32_t)v;
        } else if (opt == OPT_RING_BYTES) {
            rc = cli_opt_size(c, "--ring-bytes", optarg, 1, UINT64_MAX, &v);
            cfg->ring_bytes = v;
        } else if (opt == OPT_MAX_EVENT) {
            rc = cli_opt_size(c, "--max-event-bytes", optarg, 1, UINT32_MAX, &v);
            cfg->max_event_bytes = (uint32_t)v;
        } else if (opt == OPT_MODE) {
            rc = parse_mode(c, optarg, &cfg->file_mode);
        }
        if (rc != 0)
            return rc;
    }
    return cli_want_args(c, argc, argv, "TOPIC", 1);
}

int cmd_create(int argc, char **argv)
{
    cli c;
    struct evb_topic_config cfg = { 0 };
    cli_begin(&c, "create", create_usage);
    int rc = create_options(&c, argc, argv, &cfg);
    if (rc != 0)
        return rc;
    const char *topic = argv[optind];
    if ((rc = cli_open_bus(&c)) != 0)
        return rc;
    int err = evb_topic_create(c.bus, topic, &cfg);
    rc = err < 0 ? cli_fail(&c, err, "topic %s", topic) : CLI_OK;
    cli_close(&c);
    return rc;
}

/* ---- list ------------------------------------------------------------ */

static const char list_usage[] =
    "usage: evbus list [--json] [--bus NAME|PATH]\n"
    "\n"
    "Print the topics of the bus, one per line in name order; with --json,\n"
    "one JSON array of names.\n";

static int list_print(const char *topic, void *arg)
{
    (void)arg;
    puts(topic);
    return 0;
}

static int list_collect(const char *topic, void *arg)
{
    /* A failed append leaves the name out; cmd_list notices by count. */
    json_array_append_new(arg, json_string(topic));
    return 0;
}

/* Parse options that are only the common ones; returns 0 or an exit code. */
static int common_options(cli *c, int argc, char **argv, bool with_json, int nargs,
                          const char *what)
{
    static const struct option plain[] = { CLI_COMMON_LONGOPTS, { 0 } };
    static const struct option json[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { 0 },
    };
    int opt = cli_getopt(c, argc, argv, "", with_json ? json : plain);
    if (CLI_PARSE_IS_EXIT(opt))
        return CLI_PARSE_CODE(opt);
    return cli_want_args(c, argc, argv, what, nargs);
}

int cmd_list(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "list", list_usage);
    int rc = common_options(&c, argc, argv, true, 0, "");
    if (rc != 0 || (rc = cli_open_bus(&c)) != 0)
        return rc;
    json_t *names = c.json ? json_array() : NULL;
    if (c.json && names == NULL) {
        cli_close(&c);
        return cli_error(&c, "out of memory");
    }
    int n = evb_topic_list(c.bus, c.json ? list_collect : list_print, names);
    if (n < 0)
        rc = cli_fail(&c, n, "listing topics of %s", evb_bus_path(c.bus));
    else if (c.json && json_array_size(names) != (size_t)n)
        rc = cli_error(&c, "out of memory");
    else if (c.json)
        rc = cli_print_json(&c, json_incref(names));
    json_decref(names);
    cli_close(&c);
    return rc;
}

/* ---- info ------------------------------------------------------------ */

static const char info_usage[] =
    "usage: evbus info TOPIC [--json] [--bus NAME|PATH]\n"
    "\n"
    "Print TOPIC's configuration and, per partition, the tail: the offset\n"
    "and position the next event will get.\n";

/* Partitions to show: the config's count, bounded by the array we fill,
 * in case a newer library allows more than this build knows of. */
static uint32_t info_parts(const struct evb_topic_info *ti)
{
    uint32_t n = ti->config.partitions;
    return n < EVB_MAX_PARTITIONS ? n : EVB_MAX_PARTITIONS;
}

static void info_print_text(const struct evb_topic_info *ti, const struct evb_partition_stat *ps)
{
    char ring[32], max[32];
    util_fmt_size(ti->config.ring_bytes, ring, sizeof(ring));
    util_fmt_size(ti->config.max_event_bytes, max, sizeof(max));
    printf("topic            %s\n", ti->name);
    printf("partitions       %u\n", ti->config.partitions);
    printf("ring bytes       %s per partition\n", ring);
    printf("max event bytes  %s\n", max);
    printf("file mode        %04o\n", ti->config.file_mode);
    printf("\n%-9s  %14s  %16s\n", "partition", "tail offset", "tail position");
    for (uint32_t p = 0; p < info_parts(ti); p++)
        printf("%-9u  %14llu  %16llu\n", p, (unsigned long long)ps[p].tail_offset,
               (unsigned long long)ps[p].tail_position);
}

static json_t *info_json(const struct evb_topic_info *ti, const struct evb_partition_stat *ps)
{
    json_t *parts = json_array();
    for (uint32_t p = 0; parts != NULL && p < info_parts(ti); p++)
        json_array_append_new(parts, json_pack("{s:I, s:o, s:o}",
                                               "partition", (json_int_t)p,
                                               "tail_offset", cli_json_u64(ps[p].tail_offset),
                                               "tail_position", cli_json_u64(ps[p].tail_position)));
    return json_pack("{s:s, s:o, s:o}", "name", ti->name,
                     "config", cli_config_json(&ti->config), "partitions", parts);
}

/* Read TOPIC's info and every partition's counters; returns 0 or an exit code. */
static int info_load(cli *c, const char *topic, struct evb_topic_info *ti, struct evb_partition_stat *ps)
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
    int rc = common_options(&c, argc, argv, true, 1, "TOPIC");
    if (rc != 0 || (rc = cli_open_bus(&c)) != 0)
        return rc;
    struct evb_topic_info ti;
    static struct evb_partition_stat ps[EVB_MAX_PARTITIONS];
    rc = info_load(&c, argv[optind], &ti, ps);
    if (rc == 0 && c.json)
        rc = cli_print_json(&c, info_json(&ti, ps));
    else if (rc == 0)
        info_print_text(&ti, ps);
    cli_close(&c);
    return rc;
}

/* ---- delete ---------------------------------------------------------- */

static const char delete_usage[] =
    "usage: evbus delete TOPIC [--bus NAME|PATH]\n"
    "\n"
    "Delete TOPIC. Processes that have it open keep using the old memory\n"
    "until they close it.\n";

int cmd_delete(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "delete", delete_usage);
    int rc = common_options(&c, argc, argv, false, 1, "TOPIC");
    if (rc != 0 || (rc = cli_open_bus(&c)) != 0)
        return rc;
    const char *topic = argv[optind];
    int err = evb_topic_delete(c.bus, topic);
    rc = err < 0 ? cli_fail(&c, err, "topic %s", topic) : CLI_OK;
    cli_close(&c);
    return rc;
}
