/*
 * cmd_pub.c - evbus pub: publish events from the arguments or, without
 * any, one per line of stdin.
 *
 * Lines are copied into one arena and published with evb_publish_batch in
 * chunks, so a large stream costs one claim per chunk and partition run
 * rather than one per line. The producer waits on back-pressure
 * (block_ms = -1): a pipe into `evbus pub` must not drop lines.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char pub_usage[] =
    "usage: evbus pub TOPIC [OPTIONS] [VALUE...]\n"
    "\n"
    "Publish each VALUE as one event; with no VALUE, publish each line of\n"
    "stdin (without its newline). Waits while the ring is full. Prints\n"
    "nothing on success unless --verbose.\n"
    "\n"
    "  --key K          key of every event (default none: round-robin)\n"
    "  --partition P    publish to partition P (default: by key hash)\n"
    "  --type T         application event type, 0..65535 (default 0)\n"
    "  -v, --verbose    print the count and rate to stderr at the end\n"
    CLI_BUS_HELP
    "\n"
    "Use `--` before values that start with '-'.\n";

/* Messages per evb_publish_batch call, and a byte bound so a chunk of
 * long lines does not grow the arena without limit. */
#define PUB_CHUNK 256
#define PUB_CHUNK_BYTES (4u << 20)

enum { OPT_KEY = CLI_OPT_FIRST, OPT_PARTITION, OPT_TYPE, OPT_VERBOSE };

typedef struct pub {
    cli c;
    const char *topic;
    const char *unit;         /* "line" or "value", for error messages */
    evb_producer *prod;
    evb_msg tmpl;             /* key, partition and type of every event */
    uint32_t max_event;       /* the topic's max_event_bytes */
    uint32_t partitions;
    bool verbose;
    bool has_partition;
    evb_msg msgs[PUB_CHUNK];
    size_t offs[PUB_CHUNK];   /* value offsets in arena; it may move */
    size_t n;
    uint64_t first;           /* number (from 1) of msgs[0]'s input */
    uint64_t published;
    util_buf arena;
} pub;

/* Parse pub's options into P; returns 0 or an exit code. */
static int pub_options(pub *p, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "key", required_argument, NULL, OPT_KEY },
        { "partition", required_argument, NULL, OPT_PARTITION },
        { "type", required_argument, NULL, OPT_TYPE },
        { "verbose", no_argument, NULL, OPT_VERBOSE },
        { 0 },
    };
    p->tmpl.partition = EVB_PARTITION_ANY;
    int opt;
    uint64_t v;
    while ((opt = cli_getopt(&p->c, argc, argv, "v", longopts)) != -1) {
        int rc = 0;
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_KEY) {
            p->tmpl.key = optarg;
            p->tmpl.key_len = (uint32_t)strlen(optarg);
        } else if (opt == OPT_PARTITION) {
            rc = cli_opt_u64(&p->c, "--partition", optarg, 0, EVB_MAX_PARTITIONS - 1, &v);
            p->tmpl.partition = (int32_t)v;
            p->has_partition = true;
        } else if (opt == OPT_TYPE) {
            rc = cli_opt_u64(&p->c, "--type", optarg, 0, UINT16_MAX, &v);
            p->tmpl.type = (uint16_t)v;
        } else if (opt == 'v' || opt == OPT_VERBOSE) {
            p->verbose = true;
        }
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_error(&p->c, "missing TOPIC");
    p->topic = argv[optind++];
    return 0;
}

/* Look the topic up and open the producer; returns 0 or an exit code. */
static int pub_open(pub *p)
{
    struct evb_topic_info ti;
    int err = evb_topic_info(p->c.bus, p->topic, &ti);
    if (err < 0)
        return cli_fail(&p->c, err, "topic %s", p->topic);
    p->max_event = ti.config.max_event_bytes;
    p->partitions = ti.config.partitions;
    if (p->has_partition && (uint32_t)p->tmpl.partition >= p->partitions)
        return cli_usage_error(&p->c, "--partition %d: topic %s has %u partition%s",
                               p->tmpl.partition, p->topic, p->partitions,
                               p->partitions == 1 ? "" : "s");
    evb_producer_options po = { .block_ms = -1 };
    err = evb_producer_open(&p->prod, p->c.bus, p->topic, &po);
    if (err < 0)
        return cli_fail(&p->c, err, "topic %s: opening producer", p->topic);
    return 0;
}

/* Publish the pending chunk; returns 0 or an exit code. */
static int pub_flush(pub *p)
{
    for (size_t i = 0; i < p->n; i++)
        p->msgs[i].value = p->arena.data + p->offs[i];
    size_t done = 0;
    while (done < p->n) {
        /* A short count means a later partition run failed; calling again
         * from there either publishes it or returns its error code. */
        int r = evb_publish_batch(p->prod, p->msgs + done, p->n - done);
        if (r <= 0) {
            int err = r < 0 ? r : -EIO;
            const evb_msg *m = &p->msgs[done];
            return cli_fail_hot(&p->c, err, "%s %llu (%u bytes)", p->unit,
                            (unsigned long long)(p->first + done),
                            m->key_len + m->value_len);
        }
        done += (size_t)r;
        p->published += (uint64_t)r;
    }
    p->first += p->n;
    p->n = 0;
    p->arena.len = 0;
    return 0;
}

/* Queue one value, publishing the chunk when it is full; returns 0 or an
 * exit code. */
static int pub_add(pub *p, const char *value, size_t len)
{
    uint64_t size = (uint64_t)p->tmpl.key_len + len;
    if (size > p->max_event) {
        /* Publish what came before, so the stream stops exactly here. */
        int rc = pub_flush(p);
        if (rc != 0)
            return rc;
        return cli_error(&p->c, "%s %llu: event of %llu bytes is larger than the topic's max_event_bytes %u",
                        p->unit, (unsigned long long)p->first, (unsigned long long)size,
                        p->max_event);
    }
    p->offs[p->n] = p->arena.len;
    if (util_buf_append(&p->arena, value, len) < 0)
        return cli_error(&p->c, "out of memory");
    evb_msg *m = &p->msgs[p->n++];
    *m = p->tmpl;
    m->value_len = (uint32_t)len;
    if (p->n == PUB_CHUNK || p->arena.len >= PUB_CHUNK_BYTES)
        return pub_flush(p);
    return 0;
}

static int pub_from_args(pub *p, int argc, char **argv)
{
    p->unit = "value";
    for (int i = optind; i < argc; i++) {
        int rc = pub_add(p, argv[i], strlen(argv[i]));
        if (rc != 0)
            return rc;
    }
    return pub_flush(p);
}

static int pub_from_stdin(pub *p)
{
    p->unit = "line";
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            len--;
        rc = pub_add(p, line, (size_t)len);
    }
    if (rc == 0 && ferror(stdin))
        rc = cli_error(&p->c, "reading stdin: %s", strerror(errno));
    free(line);
    if (rc == 0)
        rc = pub_flush(p);
    return rc;
}

static void pub_report(const pub *p, double secs)
{
    double rate = secs > 0 ? (double)p->published / secs : 0;
    fprintf(stderr, "evbus pub: %llu events to %s in %.3f s (%.0f events/s)\n",
            (unsigned long long)p->published, p->topic, secs, rate);
}

int cmd_pub(int argc, char **argv)
{
    static pub p;   /* large (the chunk arrays); static keeps it off the stack */
    memset(&p, 0, sizeof(p));
    cli_begin(&p.c, "pub", pub_usage);
    int rc = pub_options(&p, argc, argv);
    if (rc != 0 || (rc = cli_open_bus(&p.c, CLI_BUS_EXISTING)) != 0)
        return rc;
    p.first = 1;
    double start = util_now();
    rc = pub_open(&p);
    if (rc == 0)
        rc = optind < argc ? pub_from_args(&p, argc, argv) : pub_from_stdin(&p);
    if (p.verbose && p.prod != NULL)
        pub_report(&p, util_now() - start);
    evb_producer_close(p.prod);
    util_buf_free(&p.arena);
    cli_close(&p.c);
    return rc;
}
