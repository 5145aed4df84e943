/*
 * cmd_topic.c - evbus create, list, delete: topic administration (info,
 * which has grown the most, is in cmd_info.c).
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- create ---------------------------------------------------------- */

static const char create_usage[] =
    "usage: evbus create TOPIC [OPTIONS]\n"
    "\n"
    "Create TOPIC. Its ring memory is reserved now, so a full /dev/shm fails\n"
    "here rather than later.\n"
    "\n"
    "  --partitions N         partitions, 1..256 (default 1)\n"
    "  --ring-bytes B         ring size per partition, a power of two, 64K..16G\n"
    "                         (default 4M)\n"
    "  --max-event-bytes B    largest key + value, at most ring-bytes/4 - 64\n"
    "                         (a frame's header is 56 bytes); default 64K,\n"
    "                         less in rings under 512K\n"
    "  --mode OCTAL           who may use the topic: 0600 its owner (default),\n"
    "                         0640 its group reads, 0660 its group also\n"
    "                         publishes (0644, 0664: every user reads); a bus\n"
    "                         this makes gets the same mode\n"
    "  --numa-node N          put the rings' memory on NUMA node N (and a durable\n"
    "                         topic's flusher on its CPUs); a node this machine\n"
    "                         lacks is refused. On one node: accepted, no effect\n"
    "  --huge-pages[=strict]  back the rings with huge pages where the bus's\n"
    "                         tmpfs allows them (mounted huge=advise); else\n"
    "                         normal pages, said on stderr. =strict: fail instead\n"
    "\n"
    "Durable topics also write their events to segment files under the data\n"
    "directory, survive a reboot and let readers go back further than the ring:\n"
    "\n"
    "  --durability D         none (default), async (fdatasync every flush-ms)\n"
    "                         or sync (fdatasync as soon as written)\n"
    "  --segment-bytes B      bytes per segment file, a multiple of ring-bytes\n"
    "                         (default: the multiple nearest 64M)\n"
    "  --retain-bytes B       per partition, drop the oldest segments beyond B\n"
    "                         (default 0: no limit)\n"
    "  --retain-ms T          drop segments older than T (default 0: no limit)\n"
    "  --retain-until-consumed\n"
    "                         keep segments a named consumer has not committed\n"
    "                         past, whatever the limits above say\n"
    "  --retain-cap-bytes B   with --retain-until-consumed: per partition, drop\n"
    "                         old segments beyond B even when not consumed\n"
    "  --flush-ms T           async: fdatasync interval (default 200ms)\n"
    "\n"
    CLI_BUS_HELP
    "\n"
    "A size B is bytes, or digits then K, M, G or T in any case (KiB, MiB,\n"
    "GiB, TiB; 64k = 64K = 64KiB). A time T is milliseconds, or digits then\n"
    "ms, s, m, h or d (10s, 5m, 2h, 7d).\n";

enum {
    OPT_PARTITIONS = CLI_OPT_FIRST,
    OPT_RING_BYTES,
    OPT_MAX_EVENT,
    OPT_MODE,
    OPT_DURABILITY,
    OPT_SEGMENT_BYTES,
    OPT_RETAIN_BYTES,
    OPT_RETAIN_MS,
    OPT_RETAIN_CONSUMED,
    OPT_RETAIN_CAP,
    OPT_FLUSH_MS,
    OPT_NUMA_NODE,
    OPT_HUGE_PAGES,
};

/* Bytes a frame adds to its event: the 56-byte header and up to 8 of
 * padding that puts the value on an 8-byte boundary. An event of
 * max_event_bytes plus this must fit in a quarter of the ring (the
 * library's check). evbus.h does not export it; test_cli_usage.sh pins
 * the bound this gives to what the library accepts. */
#define CREATE_FRAME_OVERHEAD 64u
#define CREATE_RING_DEFAULT (4u << 20)

/*
 * --mode: permission bits only, not 0 (which the library reads as
 * "default"), read-write for the owner (without which the topic's own
 * creator could not publish to it), and only what the library takes: read
 * or read-write for the group, read for others.
 */
static int parse_mode(const cli *c, const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 8);
    if (text[0] < '0' || text[0] > '7' || *end != '\0' || errno != 0)
        return cli_usage_error(c, "--mode '%s': not an octal mode", text);
    if (v == 0 || v > 0777)
        return cli_usage_error(c, "--mode '%s': permission bits 1..0777 only", text);
    if ((v & 0600) != 0600)
        return cli_usage_error(c, "--mode '%s': the owner needs read and write (0600)",
                               text);
    /* The library's rule (evbus.h, file_mode), said here as a usage error
     * before a bus is made for it. */
    if ((v & ~0664ul) || (v & 0060) == 0020)
        return cli_usage_error(c, "--mode '%s': one of 0600, 0640, 0660, 0644, 0664", text);
    *out = (uint32_t)v;
    return 0;
}

/* --max-event-bytes against the ring it goes into; returns 0 or an exit
 * code. A ring size the library will refuse is left for it to report. */
static int check_max_event(const cli *c, const struct evb_topic_config *cfg)
{
    uint64_t ring = cfg->ring_bytes ? cfg->ring_bytes : CREATE_RING_DEFAULT;
    if (cfg->max_event_bytes == 0 || ring < CLI_RING_MIN || (ring & (ring - 1)) != 0)
        return 0;
    /* The quarter ring is a multiple of 8, so this is the largest event
     * whose frame, however its key and value split, still fits in it. */
    uint64_t most = ring / 4 - CREATE_FRAME_OVERHEAD;
    if (cfg->max_event_bytes <= most)
        return 0;
    char size[32];
    util_fmt_size(ring, size, sizeof(size));
    return cli_usage_error(c, "--max-event-bytes %u: at most %llu (ring-bytes/4 - 64) "
                           "for a %s ring", cfg->max_event_bytes,
                           (unsigned long long)most, size);
}

static int parse_durability(const cli *c, const char *text, uint32_t *out)
{
    for (uint32_t d = EVB_DURABILITY_NONE; d <= EVB_DURABILITY_SYNC; d++) {
        if (strcmp(text, cli_durability_name(d)) == 0) {
            *out = d;
            return 0;
        }
    }
    return cli_usage_error(c, "--durability '%s': not none, async or sync", text);
}

/* A duration option: milliseconds or a unit (10s, 5m, 2h, 7d). */
static int parse_ms(const cli *c, const char *opt, const char *text, uint64_t min,
                    uint64_t max, uint64_t *out)
{
    int rc = util_parse_duration_ms(text, false, out);
    if (rc == -ERANGE || (rc == 0 && *out > max))
        return cli_usage_error(c, "%s '%s': too long", opt, text);
    if (rc < 0)
        return cli_usage_error(c, "%s '%s': not a duration (ms, or a unit: 10s, 5m, 2h, 7d)",
                               opt, text);
    if (*out < min)
        return cli_usage_error(c, "%s '%s': at least %llu ms", opt, text,
                               (unsigned long long)min);
    return 0;
}

/* Handle one of create's durability options; returns 0 or an exit code. */
static int create_durable_option(cli *c, int opt, struct evb_topic_config *cfg)
{
    uint64_t v;
    int rc = 0;
    switch (opt) {
    case OPT_DURABILITY:
        return parse_durability(c, optarg, &cfg->durability);
    case OPT_SEGMENT_BYTES:
        rc = cli_opt_size(c, "--segment-bytes", optarg, 1, UINT64_MAX, &cfg->segment_bytes);
        break;
    case OPT_RETAIN_BYTES:
        rc = cli_opt_size(c, "--retain-bytes", optarg, 0, UINT64_MAX, &cfg->retain_bytes);
        break;
    case OPT_RETAIN_MS:
        rc = parse_ms(c, "--retain-ms", optarg, 0, UINT64_MAX, &cfg->retain_ms);
        break;
    case OPT_RETAIN_CONSUMED:
        cfg->flags |= EVB_TOPIC_RETAIN_UNTIL_CONSUMED;
        break;
    case OPT_RETAIN_CAP:
        rc = cli_opt_size(c, "--retain-cap-bytes", optarg, 0, UINT64_MAX,
                          &cfg->retain_cap_bytes);
        break;
    case OPT_FLUSH_MS:
        rc = parse_ms(c, "--flush-ms", optarg, 1, UINT32_MAX, &v);
        cfg->flush_ms = (uint32_t)v;
        break;
    default:
        break;
    }
    return rc;
}

/* The retention and flush options mean nothing for a topic that is not
 * durable (the library would drop them silently): say so instead. */
static int create_check_durable(const cli *c, const struct evb_topic_config *cfg)
{
    const char *given = cfg->segment_bytes ? "--segment-bytes"
                        : cfg->retain_bytes ? "--retain-bytes"
                        : cfg->retain_ms ? "--retain-ms"
                        : cfg->flags ? "--retain-until-consumed"
                        : cfg->retain_cap_bytes ? "--retain-cap-bytes"
                        : cfg->flush_ms ? "--flush-ms"
                                        : NULL;
    if (cfg->durability == EVB_DURABILITY_NONE && given != NULL)
        return cli_usage_error(c, "%s needs --durability async or sync", given);
    if (cfg->retain_cap_bytes && !(cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED))
        return cli_usage_error(c, "--retain-cap-bytes needs --retain-until-consumed");
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
        { "durability", required_argument, NULL, OPT_DURABILITY },
        { "segment-bytes", required_argument, NULL, OPT_SEGMENT_BYTES },
        { "retain-bytes", required_argument, NULL, OPT_RETAIN_BYTES },
        { "retain-ms", required_argument, NULL, OPT_RETAIN_MS },
        { "retain-until-consumed", no_argument, NULL, OPT_RETAIN_CONSUMED },
        { "retain-cap-bytes", required_argument, NULL, OPT_RETAIN_CAP },
        { "flush-ms", required_argument, NULL, OPT_FLUSH_MS },
        { "numa-node", required_argument, NULL, OPT_NUMA_NODE },
        { "huge-pages", optional_argument, NULL, OPT_HUGE_PAGES },
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
            rc = cli_opt_size(c, "--ring-bytes", optarg, CLI_RING_MIN, CLI_RING_MAX, &v);
            cfg->ring_bytes = v;
        } else if (opt == OPT_MAX_EVENT) {
            rc = cli_opt_size(c, "--max-event-bytes", optarg, 1, UINT32_MAX, &v);
            cfg->max_event_bytes = (uint32_t)v;
        } else if (opt == OPT_MODE) {
            rc = parse_mode(c, optarg, &cfg->file_mode);
        } else if (opt == OPT_NUMA_NODE) {
            rc = cli_opt_u64(c, "--numa-node", optarg, 0, 1023, &v);
            cfg->numa_node = EVB_NUMA_NODE(v);
        } else if (opt == OPT_HUGE_PAGES) {
            rc = cli_opt_huge_pages(c, optarg, &cfg->huge_pages);
        } else {
            rc = create_durable_option(c, opt, cfg);
        }
        if (rc != 0)
            return rc;
    }
    int rc = create_check_durable(c, cfg);
    if (rc == 0)
        rc = check_max_event(c, cfg);
    return rc != 0 ? rc : cli_want_args(c, argc, argv, "TOPIC", 1);
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
    /* A bus made for this topic is shared as the topic is. */
    c.bus_mode = cfg.file_mode;
    if ((rc = cli_open_bus(&c, CLI_BUS_CREATE)) != 0)
        return rc;
    int err = evb_topic_create(c.bus, topic, &cfg);
    rc = err < 0 ? cli_fail(&c, err, "topic %s", topic) : CLI_OK;
    /* Huge pages asked for and not given is no error, but said: a
     * person who asked wants to know (every ring is made alike, so the
     * first tells). */
    struct evb_partition_memory pm;
    if (!err && cfg.huge_pages == EVB_HUGE_PAGES_TRY &&
        !evb_partition_memory(c.bus, topic, 0, &pm) && !pm.huge_bytes)
        fprintf(stderr, "evbus create: topic %s: no huge pages here (the bus's tmpfs must be "
                "mounted huge=advise), normal pages used\n", topic);
    /* A name that leaves no room for ".dlq" is no error either, but its
     * events can never be dead-lettered: said now, not at the first
     * reject or at a queue's max deliveries (a cold attack's queue found
     * out there). */
    size_t len = strlen(topic);
    if (!err && len + 4 > EVB_NAME_MAX && !(len > 4 && !strcmp(topic + len - 4, ".dlq")))
        fprintf(stderr, "evbus create: topic %s: a name of %zu bytes leaves no room for its "
                "dead-letter topic %s.dlq (at most %d): rejects and a queue group's max "
                "deliveries cannot move events there\n", topic, len, topic, EVB_NAME_MAX);
    /* -EINVAL is a value the library refused (a ring size that is not a
     * power of two, a segment size that is not a multiple of it, a bad
     * name): the command line was wrong, as with a bad number. */
    if (err == -EINVAL || err == -ENAMETOOLONG)
        rc = CLI_USAGE;
    cli_close(&c);
    return rc;
}

/* ---- list ------------------------------------------------------------ */

static const char list_usage[] =
    "usage: evbus list [--json] [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Print the topics of the bus, one per line in name order; with --json,\n"
    "one JSON array of names. A durable topic that cannot be rebuilt from its\n"
    "data directory is printed as 'NAME<tab>damaged: REASON'; one that is\n"
    "intact but cannot be rebuilt now (a process of the bus from before a\n"
    "reboot holds its flush lock, or tmpfs has no room for its rings) as\n"
    "'NAME<tab>not rebuilt: REASON', and the exit status is then 1.\n"
    "\n"
    CLI_BUS_HELP;

/* What list_print needs: the bus, and whether a topic was not rebuilt. */
struct list_state {
    evb_bus *bus;
    bool later;
};

static int list_print(const char *topic, void *arg)
{
    struct list_state *ls = arg;
    char why[512];
    int d = evb_topic_damage(ls->bus, topic, why, sizeof why);
    if (d == 1) {
        printf("%s\tdamaged: %s\n", topic, why);
    } else if (d == -EBUSY || d == -ENOSPC) {
        /* Intact, not rebuilt now: its events cannot be read or written,
         * which a script must not take for fine. */
        printf("%s\tnot rebuilt: %s\n", topic, why);
        ls->later = true;
    } else {
        puts(topic);
    }
    return 0;
}

static int list_collect(const char *topic, void *arg)
{
    /* A failed append leaves the name out; cmd_list notices by count. */
    json_array_append_new(arg, json_string(topic));
    return 0;
}

int cmd_list(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "list", list_usage);
    int rc = cli_common_options(&c, argc, argv, true, 0, "");
    if (rc != 0 || (rc = cli_open_bus(&c, CLI_BUS_EXISTING)) != 0)
        return rc;
    json_t *names = c.json ? json_array() : NULL;
    if (c.json && names == NULL) {
        cli_close(&c);
        return cli_error(&c, "out of memory");
    }
    struct list_state ls = { .bus = c.bus };
    int n = evb_topic_list(c.bus, c.json ? list_collect : list_print,
                           c.json ? (void *)names : (void *)&ls);
    if (n < 0)
        rc = cli_fail(&c, n, "listing topics of %s", evb_bus_path(c.bus));
    else if (ls.later)
        rc = CLI_FAIL;
    else if (c.json && json_array_size(names) != (size_t)n)
        rc = cli_error(&c, "out of memory");
    else if (c.json)
        rc = cli_print_json(&c, json_incref(names));
    json_decref(names);
    cli_close(&c);
    return rc;
}

/* ---- delete ---------------------------------------------------------- */

static const char delete_usage[] =
    "usage: evbus delete TOPIC [--force] [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Delete TOPIC, and for a durable topic its segment files too. Processes\n"
    "that have it open keep using the old memory until they close it. A\n"
    "damaged durable topic (see list) keeps its data unless --force. Only\n"
    "the topic's owner, the owner of the bus (or data) directory, or root\n"
    "may delete it; group members who may write it may not.\n"
    "\n"
    "  --force          remove a damaged topic's data too; never while a\n"
    "                   process holds a partition's flush lock (named)\n"
    CLI_BUS_HELP;

int cmd_delete(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "delete", delete_usage);
    enum { OPT_FORCE = CLI_OPT_FIRST };
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "force", no_argument, NULL, OPT_FORCE },
        { 0 },
    };
    uint32_t flags = 0;
    int opt;
    while ((opt = cli_getopt(&c, argc, argv, "", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_FORCE)
            flags |= EVB_DELETE_FORCE;
    }
    int rc = cli_want_args(&c, argc, argv, "TOPIC", 1);
    if (rc != 0 || (rc = cli_open_bus(&c, CLI_BUS_EXISTING)) != 0)
        return rc;
    const char *topic = argv[optind];
    int err = evb_topic_remove(c.bus, topic, flags);
    rc = err < 0 ? cli_fail(&c, err, "topic %s", topic) : CLI_OK;
    cli_close(&c);
    return rc;
}
