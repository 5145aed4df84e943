/*
 * cmd_pub.c - evbus pub: publish events from the arguments or, without
 * any, one per line of stdin.
 *
 * Lines are copied into one arena and published with evb_publish_batch in
 * chunks, so a large stream costs one claim per chunk and partition run
 * rather than one per line. A chunk goes out when full or when the input
 * pauses for the linger (`tail -f app.log | evbus pub logs` must not sit on
 * a line until 255 more arrive). The producer waits on back-pressure
 * (block_ms = -1): a pipe into `evbus pub` must not drop lines.
 *
 * On a durable topic exit 0 also means "on disk": pub ends with one
 * evb_producer_sync bounded by --sync-timeout, and on a sync topic syncs
 * whenever stdin pauses too, so a flusher that cannot write stops a
 * stream rather than being found out at the next reboot.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char pub_usage[] =
    "usage: evbus pub TOPIC [OPTIONS] [VALUE...]\n"
    "\n"
    "Publish each VALUE as one event; with no VALUE, publish each line of\n"
    "stdin (without its newline). Waits while the ring is full. Prints\n"
    "nothing on success unless --verbose.\n"
    "\n"
    "  --key K          key of every event, at most 65535 bytes; its hash picks\n"
    "                   the partition\n"
    "                   (default none: each batch goes to the next partition\n"
    "                   in turn; a batch is the VALUEs, or up to 256 lines\n"
    "                   of stdin read before a pause of --linger-ms)\n"
    "  --partition P    publish to partition P\n"
    "  --type T         application event type, 0..65535 (default 0)\n"
    "  --linger-ms N    stdin: publish the lines read so far once N ms pass\n"
    "                   without the batch filling up, 0..60000 (default 5;\n"
    "                   0 publishes whenever no more input is waiting)\n"
    "  --sync-timeout S durable topics: before exiting, wait up to S seconds\n"
    "                   (fractions allowed, 0..86400; default 30) for the\n"
    "                   events to be fdatasync'ed; a sync topic also waits\n"
    "                   whenever stdin pauses. Exit 1 if they are not on disk\n"
    "                   by then or the flusher reports an error. 0: do not\n"
    "                   wait, fail only on a flush error already reported\n"
    "  -v, --verbose    print the count and rate to stderr at the end\n"
    "  --producer-id N  publish as the restartable producer N, 2147483648..\n"
    "                   4294967295 (0x80000000 and up): its sequences go on\n"
    "                   from run to run and survive a crash and a rebuild from\n"
    "                   disk; one process at a time may use it\n"
    "  --seq S          with --producer-id and --partition (or --key): give\n"
    "                   the events sequences S, S+1, ... (0..2^63-1); below the\n"
    "                   partition's next sequence that republishes events that\n"
    "                   may already be there, which `evbus tail --dedup` then\n"
    "                   drops; at or above it the sequence jumps there (gaps\n"
    "                   are allowed) and never comes back down, so an S near\n"
    "                   2^63 uses up the id in that partition for good: new\n"
    "                   events past 2^63-1 are refused, only republishes\n"
    "                   below work. Take a new id for a new numbering\n"
    "  --last-seq       with --producer-id: print `PARTITION SEQ` (or\n"
    "                   `PARTITION none`) for each partition (only P's with\n"
    "                   --partition P), the last sequence of the producer the\n"
    "                   topic holds, and publish nothing\n"
    CLI_BUS_HELP
    "\n"
    "Use `--` before values that start with '-'.\n";

/* Messages per evb_publish_batch call, and a byte bound so a chunk of
 * long lines does not grow the arena without limit. */
#define PUB_CHUNK 256
#define PUB_CHUNK_BYTES (4u << 20)

/* How long a line read from stdin may wait for more to share its batch,
 * by default and at most; and how much stdin is read at once. */
#define PUB_LINGER_MS 5
#define PUB_LINGER_MAX_MS 60000
#define PUB_READ_BYTES (64u << 10)

/* --sync-timeout: default and largest, seconds. Long enough for a slow
 * disk to write a whole ring; bounded so a stuck flusher is reported. */
#define PUB_SYNC_TIMEOUT_S 30.0
#define PUB_SYNC_TIMEOUT_MAX_S 86400.0

enum { OPT_KEY = CLI_OPT_FIRST, OPT_PARTITION, OPT_TYPE, OPT_VERBOSE, OPT_LINGER,
       OPT_SYNC_TIMEOUT, OPT_PRODUCER_ID, OPT_SEQ, OPT_LAST_SEQ };

typedef struct pub {
    cli c;
    const char *topic;
    const char *unit;         /* "line" or "value", for error messages */
    evb_producer *prod;
    evb_msg tmpl;             /* key, partition and type of every event */
    uint32_t max_event;       /* the topic's max_event_bytes */
    uint32_t partitions;
    uint32_t durability;      /* enum evb_durability */
    double sync_timeout;      /* --sync-timeout, seconds */
    bool verbose;
    bool has_partition;
    uint32_t producer_id;     /* --producer-id, 0 when not given */
    bool has_seq;             /* --seq: next_seq is the next event's */
    uint64_t next_seq;
    bool last_seq;            /* --last-seq */
    evb_msg msgs[PUB_CHUNK];
    size_t offs[PUB_CHUNK];   /* value offsets in arena; it may move */
    size_t n;
    uint64_t first;           /* number (from 1) of msgs[0]'s input */
    uint64_t published;
    util_buf arena;
    uint64_t linger_ms;       /* --linger-ms */
    double flush_by;          /* util_now() by which msgs[0] goes out */
    util_buf in;              /* stdin read but not yet split into lines */
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
        { "linger-ms", required_argument, NULL, OPT_LINGER },
        { "sync-timeout", required_argument, NULL, OPT_SYNC_TIMEOUT },
        { "producer-id", required_argument, NULL, OPT_PRODUCER_ID },
        { "seq", required_argument, NULL, OPT_SEQ },
        { "last-seq", no_argument, NULL, OPT_LAST_SEQ },
        { 0 },
    };
    p->tmpl.partition = EVB_PARTITION_ANY;
    p->linger_ms = PUB_LINGER_MS;
    p->sync_timeout = PUB_SYNC_TIMEOUT_S;
    int opt;
    uint64_t v;
    while ((opt = cli_getopt(&p->c, argc, argv, "v", longopts)) != -1) {
        int rc = 0;
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_KEY) {
            p->tmpl.key = optarg;
            if (strlen(optarg) > EVB_MAX_KEY_BYTES)
                return cli_usage_error(&p->c, "--key of %zu bytes: keys are at most %u bytes",
                                       strlen(optarg), EVB_MAX_KEY_BYTES);
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
        } else if (opt == OPT_LINGER) {
            rc = cli_opt_u64(&p->c, "--linger-ms", optarg, 0, PUB_LINGER_MAX_MS,
                             &p->linger_ms);
        } else if (opt == OPT_PRODUCER_ID) {
            rc = cli_opt_u64(&p->c, "--producer-id", optarg, EVB_PRODUCER_ID_STABLE,
                             UINT32_MAX, &v);
            p->producer_id = (uint32_t)v;
        } else if (opt == OPT_SEQ) {
            rc = cli_opt_u64(&p->c, "--seq", optarg, 0, EVB_SEQ_LIMIT - 1, &p->next_seq);
            p->has_seq = true;
        } else if (opt == OPT_LAST_SEQ) {
            p->last_seq = true;
        } else if (opt == OPT_SYNC_TIMEOUT &&
                   util_parse_seconds(optarg, 0, PUB_SYNC_TIMEOUT_MAX_S, &p->sync_timeout) < 0) {
            return cli_usage_error(&p->c, "--sync-timeout '%s': not a number of seconds "
                                   "from 0 to %.0f", optarg, PUB_SYNC_TIMEOUT_MAX_S);
        }
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_error(&p->c, "missing TOPIC");
    p->topic = argv[optind++];
    if ((p->has_seq || p->last_seq) && !p->producer_id)
        return cli_usage_error(&p->c, "%s needs --producer-id",
                               p->has_seq ? "--seq" : "--last-seq");
    /* Sequences count per partition: a run of them must stay in one. */
    if (p->has_seq && !p->has_partition && !p->tmpl.key_len)
        return cli_usage_error(&p->c, "--seq needs --partition or --key");
    if (p->last_seq && (p->has_seq || optind < argc))
        return cli_usage_error(&p->c, "--last-seq publishes nothing: no --seq or VALUE");
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
    p->durability = ti.config.durability;
    if (p->has_partition && (uint32_t)p->tmpl.partition >= p->partitions)
        return cli_usage_error(&p->c, "--partition %d: topic %s has %u partition%s",
                               p->tmpl.partition, p->topic, p->partitions,
                               p->partitions == 1 ? "" : "s");
    evb_producer_options po = { .block_ms = -1, .producer_id = p->producer_id };
    err = evb_producer_open(&p->prod, p->c.bus, p->topic, &po);
    if (err < 0)
        return cli_fail(&p->c, err, "topic %s: opening producer", p->topic);
    return 0;
}

/* --last-seq: one line per partition; returns 0 or an exit code. */
static int pub_last_seq(pub *p)
{
    for (uint32_t i = 0; i < p->partitions; i++) {
        if (p->has_partition && i != (uint32_t)p->tmpl.partition)
            continue;
        uint64_t seq;
        int err = evb_producer_last_seq(p->prod, i, &seq);
        if (err == -ENOENT)
            printf("%u none\n", i);
        else if (err < 0)
            return cli_fail(&p->c, err, "topic %s: partition %u", p->topic, i);
        else
            printf("%u %llu\n", i, (unsigned long long)seq);
    }
    return fflush(stdout) == 0 ? 0 : cli_error(&p->c, "writing stdout: %s", strerror(errno));
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
            /* With the detail: a publish leaves one only when its slow
             * path fails (damage found at a limit refresh, a flusher's
             * error), and nothing before it in this command failed, so
             * what is there is this failure's. */
            return cli_fail(&p->c, err, "%s %llu (%u bytes)", p->unit,
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

/*
 * Wait, up to --sync-timeout, until every event published so far is on
 * disk; returns 0 or an exit code. A topic that is not durable returns at
 * once. With --sync-timeout 0 only an error the flusher already reported
 * fails: not being synced yet is what the user asked to accept.
 */
static int pub_sync(pub *p)
{
    if (p->durability == EVB_DURABILITY_NONE || p->published == 0)
        return 0;
    int32_t ms = (int32_t)(p->sync_timeout * 1e3 + 0.5);
    int err = evb_producer_sync(p->prod, ms);
    if (err == 0 || (err == -ETIMEDOUT && ms == 0))
        return 0;
    const char *s = p->published == 1 ? "" : "s";
    /* A sync's timeout leaves its detail too: the stopped process that
     * holds the durable position up, by pid, when it can tell. */
    if (err == -ETIMEDOUT && *evb_last_error())
        return cli_error(&p->c, "topic %s: %llu event%s published but not on disk after %g s "
                         "(--sync-timeout): %s", p->topic, (unsigned long long)p->published, s,
                         p->sync_timeout, evb_last_error());
    if (err == -ETIMEDOUT)
        return cli_error(&p->c, "topic %s: %llu event%s published but not on disk after %g s "
                         "(--sync-timeout); evbus info %s shows its flusher", p->topic,
                         (unsigned long long)p->published, s, p->sync_timeout, p->topic);
    /* The sync leaves the flusher's own words (the file and why) as the
     * detail; nothing earlier in pub failed, so a detail is this one. */
    const char *why = *evb_last_error() ? evb_last_error() : evb_strerror(err);
    return cli_error(&p->c, "topic %s: %llu event%s published but not on disk: %s (evbus info "
                     "%s shows the flusher)", p->topic, (unsigned long long)p->published, s,
                     why, p->topic);
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
    if (p->n == 0)
        p->flush_by = util_now() + (double)p->linger_ms / 1e3;
    p->offs[p->n] = p->arena.len;
    if (util_buf_append(&p->arena, value, len) < 0)
        return cli_error(&p->c, "out of memory");
    evb_msg *m = &p->msgs[p->n++];
    *m = p->tmpl;
    m->value_len = (uint32_t)len;
    if (p->has_seq) {
        if (p->next_seq >= EVB_SEQ_LIMIT)
            return cli_error(&p->c, "%s %llu: --seq ran past %llu, the last sequence there "
                             "is; nothing from it on was published", p->unit,
                             (unsigned long long)(p->first + p->n - 1),
                             (unsigned long long)(EVB_SEQ_LIMIT - 1));
        m->flags |= EVB_MSG_SEQ;
        m->seq = p->next_seq++;
    }
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

/*
 * Before a read that may block: when lines are waiting to be published,
 * give more input until their linger is over to join them, then publish
 * them. Returns 0 or an exit code.
 */
static int pub_await_input(pub *p)
{
    while (p->n > 0) {
        double left = p->flush_by - util_now();
        struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
        int r = left > 0 ? poll(&pfd, 1, (int)(left * 1e3) + 1) : 0;
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return cli_error(&p->c, "waiting for stdin: %s", strerror(errno));
        if (r == 0) {
            /* A sync topic's events are on disk before pub waits for
             * more: a stream that pauses must not hide a failed flush. */
            int rc = pub_flush(p);
            if (rc == 0 && p->durability == EVB_DURABILITY_SYNC)
                rc = pub_sync(p);
            return rc;
        }
    }
    return 0;
}

/* Publish the whole lines in p->in and keep the partial one; returns 0 or
 * an exit code. At EOF the partial line is a line too. */
static int pub_lines(pub *p, bool eof)
{
    size_t pos = 0;
    int rc = 0;
    char *nl;
    while (rc == 0 && (nl = memchr(p->in.data + pos, '\n', p->in.len - pos)) != NULL) {
        size_t end = (size_t)(nl - p->in.data);
        rc = pub_add(p, p->in.data + pos, end - pos);
        pos = end + 1;
    }
    if (rc == 0 && eof && pos < p->in.len) {
        rc = pub_add(p, p->in.data + pos, p->in.len - pos);
        pos = p->in.len;
    }
    memmove(p->in.data, p->in.data + pos, p->in.len - pos);
    p->in.len -= pos;
    return rc;
}

/* Lines come in with read(2), not stdio, so pub can tell input that has
 * paused from input still arriving (see pub_await_input). */
static int pub_from_stdin(pub *p)
{
    p->unit = "line";
    int rc = 0;
    for (bool eof = false; rc == 0 && !eof;) {
        if ((rc = pub_await_input(p)) != 0)
            break;
        if (util_buf_reserve(&p->in, PUB_READ_BYTES) < 0)
            return cli_error(&p->c, "out of memory");
        ssize_t got = read(STDIN_FILENO, p->in.data + p->in.len, PUB_READ_BYTES);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return cli_error(&p->c, "reading stdin: %s", strerror(errno));
        p->in.len += (size_t)got;
        eof = got == 0;
        rc = pub_lines(p, eof);
    }
    return rc == 0 ? pub_flush(p) : rc;
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
    if (rc == 0 && p.last_seq)
        rc = pub_last_seq(&p);
    else if (rc == 0)
        rc = optind < argc ? pub_from_args(&p, argc, argv) : pub_from_stdin(&p);
    if (rc == 0)
        rc = pub_sync(&p);
    /* The report says the events went out: not after a failure, whose
     * one line says how far pub got. */
    if (rc == 0 && p.verbose)
        pub_report(&p, util_now() - start);
    evb_producer_close(p.prod);
    util_buf_free(&p.arena);
    util_buf_free(&p.in);
    cli_close(&p.c);
    return rc;
}
