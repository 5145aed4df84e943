/*
 * cmd_tail.c - evbus tail: print the events of a topic.
 *
 * Without --name the reader is a lossless subscriber, so tail never loses
 * an event it set out to print (it slows producers instead; --lossy picks
 * a plain subscriber for watching a busy topic). With --name it is a named
 * consumer whose cursor is committed after each write of output (64 KiB
 * of lines, or less when caught up), so a later tail with the same name
 * resumes after what was printed, replaying at most one write if killed.
 * With --group it is a member of that consumer group, committing the same
 * way on the partitions the group gives it; with --queue too, a member of
 * a queue group, acknowledging each event once its line was written (ack
 * on print).
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char tail_usage[] =
    "usage: evbus tail TOPIC [OPTIONS]\n"
    "\n"
    "Print events as `<partition>:<offset> <value>`, escaping \\n, \\t, \\\\ and\n"
    "other unprintable bytes as \\xHH. Stops when nothing more is ready,\n"
    "or follows with -f until Ctrl-C.\n"
    "\n"
    "  --from WHERE     earliest, latest, committed or an OFFSET; default\n"
    "                   committed with --name, latest with -f, else earliest\n"
    "                   (with --group: for a new group only)\n"
    "  --from-time TIME the first event published at or after TIME:\n"
    "                   2026-11-24T21:00:00Z (RFC 3339: optional .fraction,\n"
    "                   Z or +hh:mm), @UNIX_SECONDS[.fraction], or -30s, -5m,\n"
    "                   -2h, -1d for that long ago\n"
    "  --strict         with --from OFFSET or --from-time: fail when it is\n"
    "                   older than what the topic holds (the ring, or a\n"
    "                   durable topic's retained log) instead of starting\n"
    "                   at the oldest event held\n"
    "  --name NAME      read as the named consumer NAME, committing its\n"
    "                   cursor after each write of output: every 64 KiB of\n"
    "                   lines, whenever nothing more is ready, and at exit\n"
    "                   (so a killed tail prints again at most one write)\n"
    "  --group NAME     join the consumer group NAME: its members split the\n"
    "                   partitions (one owner each, rebalanced as members\n"
    "                   come, go or die) and commit as --name does; the\n"
    "                   partitions gained and lost are noted on stderr;\n"
    "                   without -f it also waits out a silent (stopped)\n"
    "                   member's lease for the events it holds\n"
    "  --queue          with --group: the group is a queue group: members take\n"
    "                   single events from any partition, each acknowledged\n"
    "                   once its line is written (never nacked or rejected:\n"
    "                   that is the API's); events a killed tail had\n"
    "                   not written go to another member (--ack-wait MS, at\n"
    "                   most --max-deliveries N times, then to TOPIC.dlq)\n"
    "  --ack-wait MS    a new queue group's ack wait (default 30000)\n"
    "  --max-deliveries N  a new queue group's limit, 1..254 or none (default\n"
    "                   5); an existing group keeps its own (a note on\n"
    "                   stderr says so when they differ)\n"
    "  --partition P    read partition P only (default: all)\n"
    "  -f, --follow     wait for new events until interrupted\n"
    "  --count N        stop after N events\n"
    "  --lossy          read as a subscriber that never slows producers\n"
    "                   (and may lose events when lapped)\n"
    "  --skip-damage    a durable topic whose segment files are damaged:\n"
    "                   go on at the next intact event and report what was\n"
    "                   skipped on stderr, instead of stopping there with an\n"
    "                   error naming the partition, file and position;\n"
    "                   intact events whose offsets went back below one\n"
    "                   already printed are damage too: skipped and\n"
    "                   reported, no offset is printed twice\n"
    "  --dedup          drop republished copies of events from restartable\n"
    "                   producers (`evbus pub --producer-id`): an event whose\n"
    "                   sequence is not above the highest seen from its\n"
    "                   producer in its partition; with --name or --group\n"
    "                   the table is kept with the cursor. Not with --queue:\n"
    "                   queue members take a partition's events out of order,\n"
    "                   so a sequence seen is no mark of what came before.\n"
    "                   The count dropped goes to stderr at exit\n"
    "  --json           one JSON object per event with every field; the value\n"
    "                   (and key) as \"value\" when UTF-8 text, else base64 in\n"
    "                   \"value_b64\"\n"
    CLI_BUS_HELP
    "\n"
    "Lost events (lapped subscribers) are reported on stderr. A durable topic\n"
    "is read from its segment files where the ring no longer holds the events.\n";

/* How long to wait for in-flight claims before deciding nothing more is
 * ready, and the slice a follower sleeps between checks for Ctrl-C. */
#define TAIL_SETTLE_MS 50
#define TAIL_FOLLOW_SLICE_MS 200

enum {
    OPT_FROM = CLI_OPT_FIRST,
    OPT_FROM_TIME,
    OPT_STRICT,
    OPT_NAME,
    OPT_GROUP,
    OPT_QUEUE,
    OPT_ACK_WAIT,
    OPT_MAX_DELIVERIES,
    OPT_PARTITION,
    OPT_FOLLOW,
    OPT_COUNT,
    OPT_LOSSY,
    OPT_SKIP_DAMAGE,
    OPT_DEDUP,
};

typedef struct tail {
    cli c;
    const char *topic;
    evb_consumer_options co;
    const char *from_opt;  /* "--from" or "--from-time" once given */
    bool strict;
    bool follow;
    bool lossy;
    bool group;            /* --group: co.name is the group's */
    bool queue;            /* --queue: and a queue group */
    /* Queue members: the events printed and not written yet, to ack once
     * they are. */
    evb_event *unacked;
    size_t n_unacked, cap_unacked;
    bool has_count;
    uint64_t count;
    uint64_t printed;
    uint64_t dropped_seen; /* --dedup: duplicates dropped at the last commit */
    bool stop;             /* output or commit failed: leave at once */
    uint32_t nparts;       /* the topic's partitions */
    uint64_t settle_first; /* --group without -f: mono ms of the first look at others' */
    uint64_t settle_until; /* partitions, and until when to wait for a silent member */
    int settle_rc;         /* the exit code of a group whose state could not be read */
    evb_consumer *cons;
    util_buf out;          /* lines printed but not yet written */
    util_buf b64;          /* scratch for base64 */
} tail;

/* One start per command line: --from and --from-time exclude each other. */
static int from_once(tail *t, const char *opt)
{
    if (t->from_opt != NULL && strcmp(t->from_opt, opt) != 0)
        return cli_usage_error(&t->c, "--from and --from-time exclude each other");
    t->from_opt = opt;
    return 0;
}

/* --from: a keyword or an offset; returns 0 or an exit code. */
static int parse_from(tail *t, const char *text)
{
    static const struct { const char *word; uint32_t start; } words[] = {
        { "earliest", EVB_START_EARLIEST },
        { "latest", EVB_START_LATEST },
        { "committed", EVB_START_COMMITTED },
    };
    int rc = from_once(t, "--from");
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(text, words[i].word) == 0) {
            t->co.start = words[i].start;
            return 0;
        }
    }
    t->co.start = EVB_START_OFFSET;
    rc = util_parse_u64(text, &t->co.start_value);
    if (rc == -ERANGE)
        return cli_usage_error(&t->c, "--from '%s': offset too large", text);
    if (rc < 0)
        return cli_usage_error(&t->c, "--from '%s': not earliest, latest, committed "
                               "or an offset", text);
    return 0;
}

/* --from-time: a wall-clock time for EVB_START_TIME; returns 0 or an exit code. */
static int parse_from_time(tail *t, const char *text)
{
    int rc = from_once(t, "--from-time");
    if (rc != 0)
        return rc;
    t->co.start = EVB_START_TIME;
    rc = util_parse_time_ns(text, util_realtime_ns(), &t->co.start_value);
    if (rc == -ERANGE)
        return cli_usage_error(&t->c, "--from-time '%s': before 1970 or too far ahead", text);
    if (rc < 0)
        return cli_usage_error(&t->c, "--from-time '%s': not a time like "
                               "2026-11-24T21:00:00Z, @1795640400 or -5m", text);
    return 0;
}

static int tail_option(tail *t, int opt)
{
    uint64_t v;
    int rc = 0;
    switch (opt) {
    case OPT_FROM: return parse_from(t, optarg);
    case OPT_FROM_TIME: return parse_from_time(t, optarg);
    case OPT_STRICT: t->strict = true; return 0;
    case OPT_NAME:
    case OPT_GROUP:
        if (t->co.name != NULL)
            return cli_usage_error(&t->c, "--name and --group exclude each other");
        t->co.name = optarg;
        t->group = opt == OPT_GROUP;
        return 0;
    case 'f':
    case OPT_FOLLOW: t->follow = true; return 0;
    case OPT_LOSSY: t->lossy = true; return 0;
    case OPT_SKIP_DAMAGE: t->co.flags |= EVB_CONSUMER_SKIP_DAMAGE; return 0;
    case OPT_DEDUP: t->co.flags |= EVB_CONSUMER_DEDUP; return 0;
    case OPT_QUEUE: t->queue = true; return 0;
    case OPT_ACK_WAIT:
        rc = cli_opt_u64(&t->c, "--ack-wait", optarg, 1, 86400000, &v);
        t->co.ack_wait_ms = (uint32_t)v;
        return rc;
    case OPT_MAX_DELIVERIES:
        if (strcmp(optarg, "none") == 0) {
            t->co.max_deliveries = EVB_NO_MAX_DELIVERIES;
            return 0;
        }
        rc = cli_opt_u64(&t->c, "--max-deliveries", optarg, 1, 254, &v);
        t->co.max_deliveries = (uint32_t)v;
        return rc;
    case OPT_PARTITION:
        rc = cli_opt_u64(&t->c, "--partition", optarg, 0, EVB_MAX_PARTITIONS - 1, &v);
        t->co.partition = (int32_t)v;
        t->co.only_partition = 1;
        return rc;
    case OPT_COUNT:
        rc = cli_opt_u64(&t->c, "--count", optarg, 0, UINT64_MAX, &t->count);
        t->has_count = true;
        return rc;
    default:
        return 0;
    }
}

/* Parse tail's options into T; returns 0 or an exit code. */
static int tail_options(tail *t, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "from", required_argument, NULL, OPT_FROM },
        { "from-time", required_argument, NULL, OPT_FROM_TIME },
        { "strict", no_argument, NULL, OPT_STRICT },
        { "name", required_argument, NULL, OPT_NAME },
        { "group", required_argument, NULL, OPT_GROUP },
        { "queue", no_argument, NULL, OPT_QUEUE },
        { "ack-wait", required_argument, NULL, OPT_ACK_WAIT },
        { "max-deliveries", required_argument, NULL, OPT_MAX_DELIVERIES },
        { "partition", required_argument, NULL, OPT_PARTITION },
        { "follow", no_argument, NULL, OPT_FOLLOW },
        { "count", required_argument, NULL, OPT_COUNT },
        { "lossy", no_argument, NULL, OPT_LOSSY },
        { "skip-damage", no_argument, NULL, OPT_SKIP_DAMAGE },
        { "dedup", no_argument, NULL, OPT_DEDUP },
        { 0 },
    };
    t->co.partition = -1;
    int opt;
    while ((opt = cli_getopt(&t->c, argc, argv, "f", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        int rc = tail_option(t, opt);
        if (rc != 0)
            return rc;
    }
    if (t->co.name != NULL && t->lossy)
        return cli_usage_error(&t->c, "--lossy and --%s exclude each other",
                               t->group ? "group" : "name");
    if (t->queue && !t->group)
        return cli_usage_error(&t->c, "--queue needs --group NAME");
    if (t->queue && (t->co.flags & EVB_CONSUMER_DEDUP))
        return cli_usage_error(&t->c, "--dedup and --queue exclude each other: queue "
                               "members take a partition's events out of order (use "
                               "--group without --queue)");
    if ((t->co.ack_wait_ms || t->co.max_deliveries) && !t->queue)
        return cli_usage_error(&t->c, "--ack-wait and --max-deliveries are for --queue");
    if (t->queue && t->co.start == EVB_START_COMMITTED)
        return cli_usage_error(&t->c, "--from committed: a queue group has no committed "
                               "cursor (it starts new groups only)");
    if (t->group && t->co.only_partition)
        return cli_usage_error(&t->c, "--partition and --group exclude each other: the "
                               "group gives its members their partitions");
    /* Only a named consumer has a committed position; the library would
     * refuse it at open, as a runtime failure. */
    if (t->co.start == EVB_START_COMMITTED && t->co.name == NULL)
        return cli_usage_error(&t->c, "--from committed needs --name or --group");
    /* Strictness is about an offset or time that may be gone; for the
     * keywords it would mean nothing (and EVB_START_DEFAULT cannot carry it). */
    if (t->strict && t->co.start != EVB_START_OFFSET && t->co.start != EVB_START_TIME)
        return cli_usage_error(&t->c, "--strict needs --from OFFSET or --from-time");
    if (t->strict)
        t->co.start |= EVB_SEEK_STRICT;
    int rc = cli_want_args(&t->c, argc, argv, "TOPIC", 1);
    t->topic = argv[optind];
    return rc;
}

static int tail_flush(tail *t);

/* Group members: say which partitions came and went; before partitions
 * go to another member, write and commit what was printed from them. */
static void tail_rebalance(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n,
                           void *arg)
{
    tail *t = arg;
    (void)c;
    if (what == EVB_PARTITIONS_REVOKED && !t->stop)
        tail_flush(t);
    fprintf(stderr, "evbus tail: group %s: %s partition%s", t->co.name,
            what == EVB_PARTITIONS_ASSIGNED  ? "assigned"
            : what == EVB_PARTITIONS_REVOKED ? "handing over"
                                             : "lost (taken over; what was printed from them "
                                               "and not committed is delivered again)",
            n == 1 ? "" : "s");
    for (uint32_t k = 0; k < n; k++)
        fprintf(stderr, "%s%u", k ? "," : " ", parts[k]);
    fputc('\n', stderr);
}

/* Choose the reader kind and start, then open it; returns 0 or an exit code. */
static int tail_open(tail *t)
{
    struct evb_topic_info ti;
    int err = evb_topic_info(t->c.bus, t->topic, &ti);
    if (err < 0)
        return cli_fail(&t->c, err, "topic %s", t->topic);
    t->nparts = ti.config.partitions;
    if (t->co.partition >= 0 && (uint32_t)t->co.partition >= ti.config.partitions)
        return cli_usage_error(&t->c, "--partition %d: topic %s has %u partition%s",
                               t->co.partition, t->topic, ti.config.partitions,
                               ti.config.partitions == 1 ? "" : "s");
    if (t->queue) {
        t->co.kind = EVB_QUEUE_MEMBER;
    } else if (t->group) {
        t->co.kind = EVB_GROUP_MEMBER;
        t->co.on_rebalance = tail_rebalance;
        t->co.rebalance_arg = t;
    } else if (t->co.name != NULL)
        t->co.kind = EVB_CONSUMER;
    else
        t->co.kind = t->lossy ? EVB_SUBSCRIBER : EVB_SUBSCRIBER_LOSSLESS;
    /* A one-shot tail of a subscriber starting at the tail would print
     * nothing; reading what the ring holds is what a person means. */
    if (t->from_opt == NULL && t->co.name == NULL)
        t->co.start = t->follow ? EVB_START_LATEST : EVB_START_EARLIEST;
    err = evb_consumer_open(&t->cons, t->c.bus, t->topic, &t->co);
    if (err == 0 && t->queue && (t->co.ack_wait_ms || t->co.max_deliveries)) {
        /* The group's parameters are its creator's: say when they are not
         * the ones asked for. */
        evb_group_summary sum;
        uint32_t md = t->co.max_deliveries == EVB_NO_MAX_DELIVERIES ? 0 : t->co.max_deliveries;
        if (evb_group_stat(t->c.bus, t->topic, t->co.name, &sum, NULL, 0, NULL, 0) >= 0 &&
            ((t->co.ack_wait_ms && sum.ack_wait_ms != t->co.ack_wait_ms) ||
             (t->co.max_deliveries && sum.max_deliveries != md)))
            fprintf(stderr, "evbus tail: group %s exists with ack wait %u ms and max "
                    "deliveries %u%s; those apply, not the ones given\n", t->co.name,
                    sum.ack_wait_ms, sum.max_deliveries,
                    sum.max_deliveries ? "" : " (no limit)");
    }
    if (err < 0) {
        t->cons = NULL;
        if (t->co.name != NULL)
        {
            int rc = cli_fail(&t->c, err, "topic %s: %s %s", t->topic,
                              t->group ? "group" : "consumer", t->co.name);
            /* A name the library refused is a wrong command line, as in
             * create: exit 2. */
            return err == -EINVAL || err == -ENAMETOOLONG ? CLI_USAGE : rc;
        }
        /* A reader the topic lets read, not write, of a ring-only topic:
         * the lossless default needs write access, --lossy does not. */
        if (err == -EACCES && !t->lossy)
            return cli_fail(&t->c, err, "topic %s: opening reader (--lossy reads without "
                            "write access)", t->topic);
        return cli_fail(&t->c, err, "topic %s: opening reader", t->topic);
    }
    return 0;
}

static int tail_text(tail *t, const evb_event *ev)
{
    char head[48];
    int n = snprintf(head, sizeof(head), "%u:%llu ", ev->partition,
                     (unsigned long long)ev->offset);
    if (util_buf_append(&t->out, head, (size_t)n) < 0 ||
        util_escape(&t->out, ev->value, ev->value_len) < 0 ||
        util_buf_append(&t->out, "\n", 1) < 0)
        return -ENOMEM;
    return 0;
}

/* Append `,"FIELD":"text"` or, when the bytes are not text,
 * `,"FIELD_b64":"base64"`. */
static int json_bytes(tail *t, const char *field, const void *p, size_t n)
{
    char name[32];
    bool text = util_utf8_text(p, n);
    int len = snprintf(name, sizeof(name), ",\"%s%s\":", field, text ? "" : "_b64");
    if (util_buf_append(&t->out, name, (size_t)len) < 0)
        return -ENOMEM;
    if (text)
        return util_json_string(&t->out, p, n);
    t->b64.len = 0;
    if (util_base64(&t->b64, p, n) < 0)
        return -ENOMEM;
    return util_json_string(&t->out, t->b64.data, t->b64.len);
}

/*
 * One event as a JSON object. Written by hand rather than through jansson:
 * this runs per event, and building and freeing a json_t tree cost ten
 * times the rest of tail.
 */
static int tail_json(tail *t, const evb_event *ev)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "{\"partition\":%u,\"offset\":%llu,\"position\":%llu,"
                     "\"timestamp_ns\":%llu,\"producer_id\":%u,\"producer_seq\":%llu,"
                     "\"type\":%u,\"flags\":%u,\"lost_events\":%llu,\"lost_bytes\":%llu,"
                     "\"deliveries\":%u",
                     ev->partition, (unsigned long long)ev->offset,
                     (unsigned long long)ev->position, (unsigned long long)ev->timestamp_ns,
                     ev->producer_id, (unsigned long long)ev->producer_seq,
                     (unsigned)ev->type, (unsigned)ev->flags,
                     (unsigned long long)ev->lost_events, (unsigned long long)ev->lost_bytes,
                     ev->deliveries);
    if (util_buf_append(&t->out, head, (size_t)n) < 0)
        return -ENOMEM;
    int rc = ev->key_len == 0 ? util_buf_append(&t->out, ",\"key\":null", 11)
                              : json_bytes(t, "key", ev->key, ev->key_len);
    if (rc == 0)
        rc = json_bytes(t, "value", ev->value, ev->value_len);
    return rc < 0 ? rc : util_buf_append(&t->out, "}\n", 2);
}

/* Output is written with write(2), not stdio: a stop signal that lands
 * while a pipe is full must end the command. stdio retries a short write
 * and blocks again; here every short write or EINTR looks at cli_stop. */
#define TAIL_OUT_HIGH (64u * 1024u) /* write once this much is pending */

/* Write out every pending line. 0 done; 1 stopped (the reader went away,
 * or a stop signal came while the output blocked: not our failure); or an
 * exit code. What is not written is dropped: nothing after it is committed. */
static int tail_write(tail *t)
{
    size_t done = 0;
    int rc = 0;
    while (done < t->out.len) {
        ssize_t n = write(STDOUT_FILENO, t->out.data + done, t->out.len - done);
        if (n > 0) {
            done += (size_t)n;
            if (done < t->out.len && cli_stop) {
                rc = 1;
                break;
            }
            continue;
        }
        if (n < 0 && errno == EINTR && !cli_stop)
            continue;
        if (n < 0 && errno != EPIPE && errno != EINTR)
            rc = cli_error(&t->c, "writing output: %s", strerror(errno));
        else
            rc = 1;
        break;
    }
    t->out.len = 0;
    if (rc)
        t->stop = true;
    return rc;
}


/* Print one event; returns 0 or an exit code. */
static int tail_print(tail *t, const evb_event *ev)
{
    if ((t->co.flags & EVB_CONSUMER_SKIP_DAMAGE) && ev->lost_bytes > 0)
        /* Offsets may not tell how many events a damaged range held. */
        fprintf(stderr, "evbus tail: lost %llu events before %u:%llu (%llu log bytes "
                "skipped: damage, or no longer retained)\n",
                (unsigned long long)ev->lost_events, ev->partition,
                (unsigned long long)ev->offset, (unsigned long long)ev->lost_bytes);
    else if (ev->lost_events > 0)
        fprintf(stderr, "evbus tail: lost %llu events before %u:%llu\n",
                (unsigned long long)ev->lost_events, ev->partition,
                (unsigned long long)ev->offset);
    else if (ev->lost_bytes > 0)
        /* A queue group keeps positions, not offsets: it knows how much
         * log went by, not how many events that was. Silence would read
         * as "nothing lost". */
        fprintf(stderr, "evbus tail: lost %llu log bytes (events unknown) before %u:%llu\n",
                (unsigned long long)ev->lost_bytes, ev->partition,
                (unsigned long long)ev->offset);
    int rc = t->c.json ? tail_json(t, ev) : tail_text(t, ev);
    if (rc < 0)
        return cli_error(&t->c, "out of memory");
    t->printed++;
    if (t->queue) {
        if (t->n_unacked == t->cap_unacked) {
            size_t cap = t->cap_unacked ? 2 * t->cap_unacked : 256;
            evb_event *u = realloc(t->unacked, cap * sizeof *u);
            if (!u)
                return cli_error(&t->c, "out of memory");
            t->unacked = u;
            t->cap_unacked = cap;
        }
        t->unacked[t->n_unacked++] = *ev;
    }
    /* Commit with every write, not only once caught up: a tail killed
     * under load then replays at most one write's worth. */
    if (t->out.len >= TAIL_OUT_HIGH)
        return tail_flush(t);
    return 0;
}

/*
 * Push printed lines out, then commit a named consumer: only what reached
 * the output counts as consumed. Returns 0, or an exit code; a closed pipe
 * (`| head`) ends the command quietly and without committing.
 */
static int tail_flush(tail *t)
{
    int rc = tail_write(t);
    if (rc)
        return rc == 1 ? CLI_OK : rc;
    if (t->queue) {
        /* Written: acknowledge each. One that went to another member
         * meanwhile (ack wait passed) is printed there too. */
        for (size_t k = 0; k < t->n_unacked; k++) {
            int err = evb_consumer_ack(t->cons, &t->unacked[k]);
            if (err < 0 && err != -ESTALE) {
                t->stop = true;
                return cli_fail_hot(&t->c, err, "topic %s: acknowledging in group %s",
                                    t->topic, t->co.name);
            }
        }
        t->n_unacked = 0;
        return 0;
    }
    if (t->co.name == NULL)
        return 0;
    int err = evb_consumer_commit(t->cons);
    if (err == -ESTALE && t->group)
        /* A partition went to another member before this commit: what
         * was printed from it is printed again there (at-least-once). The
         * member goes on with what it still owns. */
        return 0;
    if (err < 0) {
        t->stop = true;
        return cli_fail_hot(&t->c, err, "topic %s: committing %s %s", t->topic,
                            t->group ? "group" : "consumer", t->co.name);
    }
    return 0;
}

static bool tail_done(const tail *t)
{
    return cli_stop || (t->has_count && t->printed >= t->count);
}

/*
 * Without -f, tail stops once nothing more is ready. A reader that timed
 * out below the tail waits at a claim not yet committed: a slow producer,
 * a hole the library pads within dead_ms (stall_ms for a stalled live
 * producer), or damage it reports as an error after that. Stopping there
 * would end with exit 0 and events silently unprinted, so keep waiting.
 */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * A group member without -f that has printed its own partitions: events
 * may still wait on partitions a silent member holds (stopped, or dead and
 * not yet expelled). Those come to us once its lease runs out, so wait
 * that long (the reads meanwhile keep our membership ticking and take
 * them over); past it, say who holds what rather than exit as if nothing
 * were left. A member that is consuming its share is left to it.
 */
static bool tail_group_settled(tail *t)
{
    evb_group_partition_stat *ps = calloc(t->nparts ? t->nparts : 1, sizeof *ps);
    evb_group_member_stat *ms = NULL;
    evb_group_summary sum;
    int m = ps ? evb_group_stat(t->c.bus, t->topic, t->co.name, &sum, NULL, 0, NULL, 0)
               : -ENOMEM;
    /* Every member, so that a holder's own lease is the one waited out;
     * looked at again if more joined meanwhile. */
    uint32_t cap = 0;
    while (m >= 0 && (!ms || (uint32_t)m > cap)) {
        cap = (uint32_t)m + 8;
        free(ms);
        ms = calloc(cap, sizeof *ms);
        m = ms ? evb_group_stat(t->c.bus, t->topic, t->co.name, &sum, ms, cap, ps, t->nparts)
               : -ENOMEM;
    }
    if (m < 0) {
        /* Not "nothing left": a damaged queue, or a group file this build
         * cannot read, may hold events nobody will deliver. Said once,
         * and the exit status says so. */
        if (!t->settle_rc)
            t->settle_rc = cli_fail(&t->c, m, "group %s: what other members hold cannot be "
                                    "told", t->co.name);
        free(ps);
        free(ms);
        return true;
    }
    uint32_t self = (uint32_t)getpid(), held = 0, holder = 0;
    uint64_t events = 0, bytes = 0, wait_ms = 0, silent = 0, due = 0;
    for (uint32_t p = 0; p < t->nparts; p++)
        due += ps[p].dlq_due;
    /* A queue's events past max deliveries that the dead-letter topic
     * refuses stay in the queue for ever: not "nothing left". Said once,
     * and the exit status says so. */
    if (due && sum.dlq_refusals && !t->settle_rc) {
        fprintf(stderr, "evbus tail: group %s: %llu event%s past max deliveries wait%s for "
                "the dead-letter topic %s.dlq, which refused %s %llu time%s (last: %s); "
                "evbus groups %s shows them\n", t->co.name, (unsigned long long)due,
                due == 1 ? "" : "s", due == 1 ? "s" : "", t->topic, due == 1 ? "it" : "them",
                (unsigned long long)sum.dlq_refusals, sum.dlq_refusals == 1 ? "" : "s",
                sum.dlq_refusal_error ? evb_strerror(sum.dlq_refusal_error) : "unknown",
                t->topic);
        t->settle_rc = CLI_FAIL;
    }
    for (uint32_t p = 0; p < t->nparts; p++) {
        if (ps[p].owner_pid == self || (!ps[p].lag_events && !ps[p].backlog_bytes))
            continue;
        const evb_group_member_stat *o = NULL;
        for (int k = 0; k < m; k++)
            if (ms[k].member_id == ps[p].owner_id)
                o = &ms[k];
        /* A member that gave a sign of life since our first look is at
         * work: its share is its to print. */
        if (o && o->alive && t->settle_first && o->silent_ms + 20 < mono_ms() - t->settle_first)
            continue;
        /* Silent, dead, or gone without a slot: ours within its lease. */
        uint64_t lease = o ? o->lease_ms : EVB_GROUP_LEASE_MS;
        uint64_t left = o && o->silent_ms < lease ? lease - o->silent_ms : 0;
        if (left + 500 > wait_ms)
            wait_ms = left + 500;
        held++;
        events += ps[p].lag_events;
        bytes += ps[p].backlog_bytes;
        if (o) {
            holder = o->pid;
            silent = o->silent_ms;
        }
    }
    free(ps);
    free(ms);
    if (!held)
        return true;
    uint64_t now = mono_ms();
    if (!t->settle_until) {
        t->settle_first = now;
        t->settle_until = now + wait_ms;
    }
    if (now < t->settle_until)
        return false;
    if (holder)
        fprintf(stderr, "evbus tail: group %s: %u partition%s with %llu %s left to member "
                "pid %u, silent %llu ms (stopped?); not waiting longer\n", t->co.name, held,
                held == 1 ? "" : "s", (unsigned long long)(events ? events : bytes),
                events ? "events" : "log bytes", holder, (unsigned long long)silent);
    else
        fprintf(stderr, "evbus tail: group %s: %u partition%s with %llu %s not taken over "
                "yet; not waiting longer\n", t->co.name, held, held == 1 ? "" : "s",
                (unsigned long long)(events ? events : bytes), events ? "events" : "log bytes");
    return true;
}

static bool tail_at_end(tail *t)
{
    uint64_t lag = 0;
    if (evb_consumer_lag(t->cons, &lag) == 0 && lag)
        return false;
    return !t->group || tail_group_settled(t);
}

/* Damage that ended a partition's disk log (--skip-damage) has no event
 * after it to carry the loss: say it once nothing more is ready. */
static void tail_note_skipped(tail *t)
{
    uint64_t events = 0, bytes = 0;
    if (!(t->co.flags & EVB_CONSUMER_SKIP_DAMAGE) ||
        evb_consumer_skipped(t->cons, -1, &events, &bytes) < 0 || (events == 0 && bytes == 0))
        return;
    fprintf(stderr, "evbus tail: lost %llu events at the end of the log (%llu log bytes "
            "skipped: damage)\n", (unsigned long long)events, (unsigned long long)bytes);
}

/* --dedup with --name or --group: whether duplicates were dropped since
 * the last look. They are consumed as printed events are, so they need a
 * commit too, even when nothing printed follows them: else the lag stays
 * and every run reads the same copies again. */
static bool tail_dropped_more(tail *t)
{
    uint64_t dropped = 0;
    if (!(t->co.flags & EVB_CONSUMER_DEDUP) || !t->co.name ||
        evb_consumer_dedup_stat(t->cons, -1, &dropped, NULL) < 0 || dropped == t->dropped_seen)
        return false;
    t->dropped_seen = dropped;
    return true;
}

/* Read and print until done; returns an exit code. */
static int tail_loop(tail *t)
{
    evb_event ev;
    bool caught_up = false;  /* without -f: nothing more is coming now */
    bool pending = false;    /* printed since the last flush */
    int rc = 0;
    while (rc == 0 && !caught_up && !t->stop && !tail_done(t)) {
        int r = evb_consumer_next(t->cons, &ev, 0);
        if (r == -EAGAIN || r == -ETIMEDOUT) {
            /* Nothing ready: show what we have before waiting, and
             * commit past copies dropped meanwhile. */
            pending |= tail_dropped_more(t);
            if (pending && (rc = tail_flush(t)) != 0)
                break;
            pending = false;
            r = evb_consumer_next(t->cons, &ev,
                                  t->follow ? TAIL_FOLLOW_SLICE_MS : TAIL_SETTLE_MS);
            if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR) {
                tail_note_skipped(t);
                caught_up = !t->follow && tail_at_end(t);
                continue;
            }
        }
        if (r < 0) {
            /* Corruption is sticky and its origin left the detail (which
             * partition, what was found where): worth the words. */
            rc = r == -EBADMSG ? cli_fail(&t->c, r, "topic %s: reading", t->topic)
                               : cli_fail_hot(&t->c, r, "topic %s: reading", t->topic);
            break;
        }
        rc = tail_print(t, &ev);
        pending = true;
    }
    /* Commit what was printed, even after a read error: it was delivered;
     * and what was dropped as a copy. */
    pending |= tail_dropped_more(t);
    if (pending && !t->stop) {
        int frc = tail_flush(t);
        rc = rc != 0 ? rc : frc;
    }
    return rc != 0 ? rc : t->settle_rc;
}

int cmd_tail(int argc, char **argv)
{
    static tail t;
    memset(&t, 0, sizeof(t));
    cli_begin(&t.c, "tail", tail_usage);
    int rc = tail_options(&t, argc, argv);
    if (rc != 0 || (rc = cli_open_bus(&t.c, CLI_BUS_EXISTING)) != 0)
        return rc;
    cli_catch_signals();
    rc = tail_open(&t);
    if (rc == 0 && !(t.has_count && t.count == 0))
        rc = tail_loop(&t);
    uint64_t dropped = 0;
    if (t.cons && (t.co.flags & EVB_CONSUMER_DEDUP) &&
        evb_consumer_dedup_stat(t.cons, -1, &dropped, NULL) == 0 && dropped)
        fprintf(stderr, "evbus tail: %llu duplicate%s dropped\n", (unsigned long long)dropped,
                dropped == 1 ? "" : "s");
    evb_consumer_close(t.cons);
    util_buf_free(&t.out);
    free(t.unacked);
    util_buf_free(&t.b64);
    cli_close(&t.c);
    return rc;
}
