/*
 * cmd_dlq.c - evbus dlq: list a topic's dead-letter events and put them
 * back on the topic. Decoding the records and the exactly-once resubmit
 * are the library's (evb_dlq_decode, evb_dlq_resubmit); this file parses
 * the command line and prints.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char dlq_usage[] =
    "usage: evbus dlq list TOPIC [--from OFFSET] [--limit N] [--json]\n"
    "       evbus dlq resubmit TOPIC (--offset OFFSET | --all) [--settle] [--json]\n"
    "\n"
    "Events a consumer rejected (evb_consumer_reject) wait in TOPIC.dlq with\n"
    "the reason, where they came from and how often they were delivered.\n"
    "\n"
    "list prints one line per dead-letter event:\n"
    "  OFFSET from P:O deliveries=N at TIME by=CONSUMER STATUS key=KEY reason=REASON\n"
    "OFFSET is the event's offset in TOPIC.dlq, P:O the partition and offset it\n"
    "had in TOPIC, TIME when it was rejected, STATUS `pending` or `resubmitted`\n"
    "(`unknown` for every event when TOPIC.dlq's resubmit.state is damaged:\n"
    "stderr says why, and resubmit refuses; removing that file forgets what\n"
    "was resubmitted, so --all would publish every event again);\n"
    "KEY and REASON escaped as tail escapes values (KEY `-` when none). A\n"
    "record of an event an earlier listed record already holds (a reader\n"
    "killed while rejecting it rejected it again: the way into the DLQ is at\n"
    "least once) has `duplicate-of=OFFSET` after STATUS (JSON: duplicate_of).\n"
    "  --from OFFSET    start at this dead-letter offset (default: the oldest)\n"
    "  --limit N        print at most N events\n"
    "  --json           one JSON object per event with every field of the\n"
    "                   record, the original value included (\"value\" when\n"
    "                   UTF-8 text, else base64 in \"value_b64\"; key and\n"
    "                   reason likewise)\n"
    "\n"
    "resubmit publishes dead-letter events again on TOPIC, with their key,\n"
    "value and type, in the partition they came from (by key hash when TOPIC\n"
    "no longer has it), as new events: they are processed out of their\n"
    "original order. Each is published once, also when the command is killed\n"
    "and run again: a rerun says `already` for those done before. It prints\n"
    "`resubmitted OFFSET -> P:O` or `already OFFSET` per event (with --all,\n"
    "`duplicate OFFSET of FIRST` for a second record of one event: not\n"
    "published, counted in the last line); an event\n"
    "that is not a dead-letter record of TOPIC is skipped, said on stderr,\n"
    "and makes the exit status 1.\n"
    "  --offset OFFSET  the dead-letter event at OFFSET only\n"
    "  --all            every dead-letter event held when the command starts\n"
    "  --settle         after a killed resubmit whose claim TOPIC no longer\n"
    "                   holds (its ring lapped, or retention removed it), the\n"
    "                   command cannot tell whether that event went out and\n"
    "                   refuses to go on; look for it in TOPIC, then give\n"
    "                   --settle to count it as published (it is never\n"
    "                   published twice; at worst it is not at all)\n"
    "  --json           one JSON object per event\n"
    CLI_BUS_HELP
    "\n"
    "Another resubmit of the same topic running at the same time is refused.\n";

/* How long list waits for in-flight rejects before deciding it is done. */
#define DLQ_SETTLE_MS 50

enum {
    OPT_FROM = CLI_OPT_FIRST,
    OPT_LIMIT,
    OPT_OFFSET,
    OPT_ALL,
    OPT_SETTLE,
};

typedef struct dlq_cmd {
    cli c;
    const char *action;
    const char *topic;
    char dlq[EVB_NAME_MAX + 16];
    bool has_from, has_limit, has_offset, all, settle;
    uint64_t from, limit, offset;
    uint64_t published, already, skipped, duplicates;
    util_buf out;
    util_buf tmp;
    struct seen *seen; /* list: the origin events of the records so far */
    size_t seen_cap, seen_n;
} dlq_cmd;

/* ---- repeats ----
 *
 * Two records of one origin event (its partition, offset, position and
 * publish time all equal): a reader killed between its reject and its
 * commit or ack rejected it again. list marks the later ones, as
 * evb_dlq_resubmit(EVB_RESUBMIT_ALL) skips them. */
struct seen {
    uint64_t offset, position, ts_ns, dlq_offset;
    uint32_t partition, used;
};

static size_t seen_slot(const struct seen *t, size_t cap, const struct seen *k)
{
    uint64_t h = k->position * 0x9e3779b97f4a7c15ull ^
                 (k->offset + k->partition) * 0xc2b2ae3d27d4eb4full ^
                 k->ts_ns * 0x165667b19e3779f9ull;
    size_t j = (size_t)(h ^ (h >> 29)) & (cap - 1);
    while (t[j].used && !(t[j].partition == k->partition && t[j].offset == k->offset &&
                          t[j].position == k->position && t[j].ts_ns == k->ts_ns))
        j = (j + 1) & (cap - 1);
    return j;
}

/* The DLQ offset of an earlier record of R's origin event in *FIRST and
 * 1; 0 when R is the first (remembered); -ENOMEM. */
static int seen_add(dlq_cmd *d, const struct evb_dlq_record *r, uint64_t dlq_offset,
                    uint64_t *first)
{
    if (2 * (d->seen_n + 1) > d->seen_cap) {
        size_t cap = d->seen_cap ? 2 * d->seen_cap : 1024;
        struct seen *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < d->seen_cap; i++)
            if (d->seen[i].used)
                t[seen_slot(t, cap, &d->seen[i])] = d->seen[i];
        free(d->seen);
        d->seen = t;
        d->seen_cap = cap;
    }
    struct seen k = {.offset = r->origin_offset, .position = r->origin_position,
                     .ts_ns = r->origin_timestamp_ns, .dlq_offset = dlq_offset,
                     .partition = r->origin_partition, .used = 1};
    size_t j = seen_slot(d->seen, d->seen_cap, &k);
    if (d->seen[j].used) {
        *first = d->seen[j].dlq_offset;
        return 1;
    }
    d->seen[j] = k;
    d->seen_n++;
    return 0;
}

static int dlq_options(dlq_cmd *d, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "from", required_argument, NULL, OPT_FROM },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "offset", required_argument, NULL, OPT_OFFSET },
        { "all", no_argument, NULL, OPT_ALL },
        { "settle", no_argument, NULL, OPT_SETTLE },
        { 0 },
    };
    int opt, rc = 0;
    while ((opt = cli_getopt(&d->c, argc, argv, "", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        switch (opt) {
        case OPT_FROM:
            d->has_from = true;
            rc = cli_opt_u64(&d->c, "--from", optarg, 0, INT64_MAX, &d->from);
            break;
        case OPT_LIMIT:
            d->has_limit = true;
            rc = cli_opt_u64(&d->c, "--limit", optarg, 0, UINT64_MAX, &d->limit);
            break;
        case OPT_OFFSET:
            d->has_offset = true;
            rc = cli_opt_u64(&d->c, "--offset", optarg, 0, INT64_MAX, &d->offset);
            break;
        case OPT_ALL: d->all = true; break;
        case OPT_SETTLE: d->settle = true; break;
        default: break;
        }
        if (rc)
            return rc;
    }
    if (argc - optind < 1)
        return cli_usage_error(&d->c, "missing list or resubmit");
    d->action = argv[optind++];
    bool list = strcmp(d->action, "list") == 0;
    if (!list && strcmp(d->action, "resubmit") != 0)
        return cli_usage_error(&d->c, "unknown action '%s': list or resubmit", d->action);
    if ((rc = cli_want_args(&d->c, argc, argv, "TOPIC", 1)))
        return rc;
    d->topic = argv[optind];
    if (list && (d->has_offset || d->all || d->settle))
        return cli_usage_error(&d->c, "--offset, --all and --settle are for resubmit");
    if (!list && (d->has_from || d->has_limit))
        return cli_usage_error(&d->c, "--from and --limit are for list");
    if (!list && d->has_offset == d->all)
        return cli_usage_error(&d->c, "resubmit needs --offset OFFSET or --all, not %s",
                               d->all ? "both" : "neither");
    snprintf(d->dlq, sizeof d->dlq, "%s%s", d->topic, EVB_DLQ_SUFFIX);
    return 0;
}

/* ---- list ------------------------------------------------------------ */

/* Append `,"FIELD":"text"` or, when the bytes are not text,
 * `,"FIELD_b64":"base64"` to the JSON object O. */
static int json_bytes(dlq_cmd *d, json_t *o, const char *field, const void *p, size_t n)
{
    char name[32];
    if (util_utf8_text(p, n)) {
        snprintf(name, sizeof name, "%s", field);
        return json_object_set_new(o, name, json_stringn(p, n));
    }
    snprintf(name, sizeof name, "%s_b64", field);
    d->tmp.len = 0;
    if (util_base64(&d->tmp, p, n) < 0)
        return -1;
    return json_object_set_new(o, name, json_stringn(d->tmp.data, d->tmp.len));
}

/* DONE: 1 resubmitted, 0 pending, < 0 unknown (the state is damaged). */
/* DUP: 1 when the record repeats the one at DUP_OF. */
static int list_json(dlq_cmd *d, const evb_event *ev, const struct evb_dlq_record *r,
                     int done, int dup, uint64_t dup_of)
{
    json_t *o = json_pack("{s:o, s:s, s:I, s:o, s:o, s:o, s:o, s:I, s:s, s:I, s:I, s:o, "
                          "s:I, s:I, s:o}",
                          "offset", cli_json_u64(ev->offset),
                          "origin_topic", r->origin_topic,
                          "origin_partition", (json_int_t)r->origin_partition,
                          "origin_offset", cli_json_u64(r->origin_offset),
                          "origin_position", cli_json_u64(r->origin_position),
                          "origin_timestamp_ns", cli_json_u64(r->origin_timestamp_ns),
                          "reject_time_ns", cli_json_u64(r->reject_time_ns),
                          "deliveries", (json_int_t)r->deliveries,
                          "rejecter", r->rejecter,
                          "rejecter_pid", (json_int_t)r->rejecter_pid,
                          "producer_id", (json_int_t)r->producer_id,
                          "producer_seq", cli_json_u64(r->producer_seq),
                          "type", (json_int_t)r->type,
                          "flags", (json_int_t)r->flags,
                          "resubmitted", done < 0 ? json_null() : json_boolean(done));
    if (o == NULL)
        return cli_error(&d->c, "building JSON output: out of memory");
    if (json_bytes(d, o, "reason", r->reason, r->reason_len) < 0 ||
        (r->key_len ? json_bytes(d, o, "key", r->key, r->key_len)
                    : json_object_set_new(o, "key", json_null())) < 0 ||
        json_bytes(d, o, "value", r->value, r->value_len) < 0 ||
        json_object_set_new(o, "duplicate_of", dup ? cli_json_u64(dup_of) : json_null()) < 0) {
        json_decref(o);
        return cli_error(&d->c, "building JSON output: out of memory");
    }
    return cli_print_json(&d->c, o);
}

static int list_text(dlq_cmd *d, const evb_event *ev, const struct evb_dlq_record *r,
                     int done, int dup, uint64_t dup_of)
{
    char when[40], head[320], dups[48] = "";
    util_fmt_time_ns(r->reject_time_ns, when, sizeof when);
    if (dup)
        snprintf(dups, sizeof dups, " duplicate-of=%llu", (unsigned long long)dup_of);
    int n = snprintf(head, sizeof head, "%llu from %u:%llu deliveries=%u at %s by=%s %s%s key=",
                     (unsigned long long)ev->offset, r->origin_partition,
                     (unsigned long long)r->origin_offset, r->deliveries, when,
                     r->rejecter[0] ? r->rejecter : "-",
                     done < 0 ? "unknown" : done ? "resubmitted" : "pending", dups);
    d->out.len = 0;
    if (util_buf_append(&d->out, head, (size_t)n) < 0 ||
        (r->key_len ? util_escape(&d->out, r->key, r->key_len)
                    : util_buf_append(&d->out, "-", 1)) < 0 ||
        util_buf_append(&d->out, " reason=", 8) < 0 ||
        util_escape(&d->out, r->reason, r->reason_len) < 0 ||
        util_buf_append(&d->out, "\n", 1) < 0)
        return cli_error(&d->c, "out of memory");
    fwrite(d->out.data, 1, d->out.len, stdout);
    return 0;
}

static int dlq_list(dlq_cmd *d)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER,
                               .start = d->has_from ? EVB_START_OFFSET : EVB_START_EARLIEST,
                               .start_value = d->from};
    evb_consumer *cons;
    struct evb_topic_info ti;
    int err = evb_topic_info(d->c.bus, d->dlq, &ti);
    if (err == 0 && ti.config.partitions != 1)
        return cli_error(&d->c, "dead-letter topic %s: %u partitions; a dead-letter topic has "
                         "one, so that an offset names one record (made by hand?)", d->dlq,
                         ti.config.partitions);
    err = evb_consumer_open(&cons, d->c.bus, d->dlq, &co);
    if (err < 0)
        return cli_fail(&d->c, err, "topic %s: dead-letter topic %s", d->topic, d->dlq);
    int rc = 0;
    bool bad = false;
    int state_err = 0;
    uint64_t printed = 0;
    /* The next offset the list owes: a DLQ's offsets are dense, so any
     * gap before an event (a ring-only DLQ that lapped, before the list
     * or while it ran) is records no longer held. */
    uint64_t expect = d->has_from ? d->from : 0;
    while (rc == 0 && !cli_stop && !(d->has_limit && printed >= d->limit)) {
        evb_event ev;
        err = evb_consumer_next(cons, &ev, DLQ_SETTLE_MS);
        if (err == -ETIMEDOUT || err == -EINTR) {
            uint64_t lag = 0;
            if (cli_stop || evb_consumer_lag(cons, &lag) < 0 || lag == 0)
                break;
            continue;
        }
        if (err < 0) {
            rc = cli_fail(&d->c, err, "dead-letter topic %s: reading", d->dlq);
            break;
        }
        if (ev.offset > expect) {
            /* A ring-only DLQ that lapped: records overwritten, which the
             * exit status says too (a list with holes is not the DLQ). */
            fprintf(stderr, "evbus dlq: lost %llu dead-letter events before offset %llu "
                    "(no longer held: the dead-letter topic's ring went round)\n",
                    (unsigned long long)(ev.offset - expect), (unsigned long long)ev.offset);
            bad = true;
        }
        expect = ev.offset + 1;
        struct evb_dlq_record r;
        err = evb_dlq_decode(&ev, &r);
        if (err < 0) {
            /* Say so and go on: one bad record hides no others. */
            cli_fail(&d->c, err, "dead-letter topic %s: offset %llu", d->dlq,
                     (unsigned long long)ev.offset);
            bad = true;
            continue;
        }
        /*
         * A state file that cannot be read leaves each record's state
         * unknown, never "pending": pending is what resubmit --all would
         * publish, so a wrong one invites a duplicate. The records are
         * still listed, as `nats stream view` or a Kafka console consumer
         * show messages whatever a consumer's bookkeeping says: the
         * events themselves are intact and are what an operator needs to
         * decide what to do about the state. One line on stderr names
         * the file, the exit status is 1 so no script takes the list for
         * complete, and once the file is found damaged no later record
         * is judged by it either.
         */
        int done = state_err ? state_err
                             : evb_dlq_resubmitted(d->c.bus, d->topic, ev.offset);
        if (done < 0 && !state_err) {
            state_err = done;
            fprintf(stderr, "evbus dlq: %s: %s; state shown as unknown from dead-letter "
                    "offset %llu on\n", d->topic, evb_last_error()[0] ? evb_last_error()
                    : evb_strerror(done), (unsigned long long)ev.offset);
        }
        uint64_t dup_of = 0;
        int dup = seen_add(d, &r, ev.offset, &dup_of);
        if (dup < 0) {
            rc = cli_error(&d->c, "out of memory");
            break;
        }
        rc = d->c.json ? list_json(d, &ev, &r, done, dup, dup_of)
                       : list_text(d, &ev, &r, done, dup, dup_of);
        printed++;
    }
    evb_consumer_close(cons);
    free(d->seen);
    d->seen = NULL;
    return rc ? rc : bad || state_err ? CLI_FAIL : CLI_OK;
}

/* ---- resubmit -------------------------------------------------------- */

static int on_report(const evb_resubmit_report *r, void *arg)
{
    dlq_cmd *d = arg;
    if (r->status == EVB_RESUBMIT_SKIPPED) {
        d->skipped++;
        fprintf(stderr, "evbus dlq: skipped dead-letter offset %llu: not a record of %s (%s)\n",
                (unsigned long long)r->dlq_offset, d->topic, evb_strerror(r->error));
        return cli_stop != 0;
    }
    if (r->status == EVB_RESUBMIT_DUPLICATE) {
        d->duplicates++;
        if (d->c.json)
            cli_print_json(&d->c, json_pack("{s:o, s:s, s:o}", "offset",
                                             cli_json_u64(r->dlq_offset), "status", "duplicate",
                                             "duplicate_of", cli_json_u64(r->offset)));
        else
            printf("duplicate %llu of %llu\n", (unsigned long long)r->dlq_offset,
                   (unsigned long long)r->offset);
        fflush(stdout);
        return cli_stop != 0;
    }
    bool pub = r->status == EVB_RESUBMIT_PUBLISHED;
    if (pub)
        d->published++;
    else
        d->already++;
    if (d->c.json) {
        json_t *o = pub ? json_pack("{s:o, s:s, s:I, s:o, s:o}", "offset",
                                    cli_json_u64(r->dlq_offset), "status", "resubmitted",
                                    "partition", (json_int_t)r->partition, "new_offset",
                                    cli_json_u64(r->offset), "new_position",
                                    cli_json_u64(r->position))
                        : json_pack("{s:o, s:s}", "offset", cli_json_u64(r->dlq_offset),
                                    "status", "already");
        cli_print_json(&d->c, o);
    } else if (pub) {
        printf("resubmitted %llu -> %u:%llu\n", (unsigned long long)r->dlq_offset,
               r->partition, (unsigned long long)r->offset);
    } else {
        printf("already %llu\n", (unsigned long long)r->dlq_offset);
    }
    /* Lines reach a pipe as they happen: a person watching a long
     * resubmit, or a script that kills it, sees what went out. */
    fflush(stdout);
    return cli_stop != 0;
}

static int dlq_resubmit(dlq_cmd *d)
{
    uint32_t flags = (d->all ? EVB_RESUBMIT_ALL : 0) | (d->settle ? EVB_RESUBMIT_SETTLE : 0);
    int rc = evb_dlq_resubmit(d->c.bus, d->topic, d->offset, flags, on_report, d);
    if (rc < 0) {
        if (d->has_offset)
            return cli_fail(&d->c, rc, "topic %s: resubmitting dead-letter offset %llu",
                            d->topic, (unsigned long long)d->offset);
        return cli_fail(&d->c, rc, "topic %s: resubmitting (%llu published before this)",
                        d->topic, (unsigned long long)d->published);
    }
    if (!d->c.json && d->duplicates)
        fprintf(stderr, "evbus dlq: %llu resubmitted to %s, %llu already were, %llu "
                "duplicates skipped (second records of one event)\n",
                (unsigned long long)d->published, d->topic, (unsigned long long)d->already,
                (unsigned long long)d->duplicates);
    else if (!d->c.json)
        fprintf(stderr, "evbus dlq: %llu resubmitted to %s, %llu already were\n",
                (unsigned long long)d->published, d->topic, (unsigned long long)d->already);
    if (d->skipped)
        return cli_error(&d->c, "topic %s: %llu dead-letter events skipped: not records of it",
                         d->topic, (unsigned long long)d->skipped);
    return CLI_OK;
}

int cmd_dlq(int argc, char **argv)
{
    static dlq_cmd d;
    memset(&d, 0, sizeof d);
    cli_begin(&d.c, "dlq", dlq_usage);
    int rc = dlq_options(&d, argc, argv);
    if (rc != 0 || (rc = cli_open_bus(&d.c, CLI_BUS_EXISTING)) != 0)
        return rc;
    cli_catch_signals();
    rc = strcmp(d.action, "list") == 0 ? dlq_list(&d) : dlq_resubmit(&d);
    util_buf_free(&d.out);
    util_buf_free(&d.tmp);
    cli_close(&d.c);
    return rc;
}
