/*
 * cmd_groups.c - evbus groups: the consumer groups of a topic (or of every
 * topic): members with pid and command name, the partitions each owns,
 * and per partition the owner, committed cursor and lag.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char groups_usage[] =
    "usage: evbus groups [TOPIC] [--json] [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Show the consumer groups of TOPIC, or of every topic: each member's\n"
    "pid, command name, partitions owned, events delivered, commits and\n"
    "how long it has been silent (a member silent past its lease, or whose\n"
    "process died, is expelled by the others and its partitions taken\n"
    "over); per partition the owner's pid, the epoch (changes of owner),\n"
    "the committed offset, the lag (events published and not committed)\n"
    "and commits refused because the committer no longer owned it. For a\n"
    "queue group (evbus tail --group NAME --queue): its ack wait and\n"
    "delivery limit; its dead-letter refusals: tries to move an event past\n"
    "max deliveries that the dead-letter topic refused (full, too small;\n"
    "the event is tried again each ack wait, holding the floor meanwhile,\n"
    "and the members go on), with the last one's reason; each member's\n"
    "events in flight; and per partition the floor\n"
    "(the log position every event below which is acknowledged), the\n"
    "backlog nobody took yet (log bytes), events in flight, acked, nacked,\n"
    "redelivered, dead-lettered, and dlq_due: events past max deliveries\n"
    "whose dead-letter record is not written yet (it stays up while the\n"
    "dead-letter topic refuses them); a partition whose queue its members\n"
    "call damaged is marked DAMAGED, its floor, backlog, events in flight\n"
    "and dlq_due shown as - (the exit status is then 1, and the message says\n"
    "what was found). A group file or dedup table that does not read, and\n"
    "a topic whose groups you may not read, are said on stderr, exit 1.\n"
    "\n"
    "  --json           one JSON object per group\n"
    CLI_BUS_HELP;

typedef struct groups {
    cli c;
    const char *topic;     /* the topic being shown */
    int rc;
    uint32_t shown;
} groups;

static json_t *member_json(const evb_group_member_stat *m)
{
    return json_pack("{s:o, s:I, s:s, s:I, s:b, s:o, s:I, s:o, s:o, s:I}",
                     "member_id", cli_json_u64(m->member_id), "pid", (json_int_t)m->pid,
                     "comm", m->comm, "partitions", (json_int_t)m->partitions,
                     "alive", m->alive != 0, "silent_ms", cli_json_u64(m->silent_ms),
                     "lease_ms", (json_int_t)m->lease_ms,
                     "delivered", cli_json_u64(m->delivered),
                     "commits", cli_json_u64(m->commits), "in_flight", (json_int_t)m->in_flight);
}

static json_t *opt_u64(uint64_t v)
{
    return v == UINT64_MAX ? json_null() : cli_json_u64(v);
}

static json_t *queue_part_json(uint32_t p, const evb_group_partition_stat *s)
{
    /* A damaged queue's cursors and slots say nothing reliable: null. */
    bool d = s->damaged != 0;
    return json_pack("{s:I, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "partition",
                     (json_int_t)p, "damaged", d,
                     "floor_position", d ? json_null() : opt_u64(s->committed_position),
                     "backlog_bytes", d ? json_null() : cli_json_u64(s->backlog_bytes),
                     "in_flight", d ? json_null() : json_integer(s->in_flight),
                     "acked", cli_json_u64(s->acked),
                     "nacked", cli_json_u64(s->nacked),
                     "redelivered", cli_json_u64(s->redelivered),
                     "dead_lettered", cli_json_u64(s->dead_lettered),
                     "dlq_due", d ? json_null() : json_integer(s->dlq_due));
}

static json_t *part_json(uint32_t p, const evb_group_partition_stat *s)
{
    return json_pack("{s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "partition",
                     (json_int_t)p, "rejected", cli_json_u64(s->rejected),
                     "owner_id", cli_json_u64(s->owner_id), "owner_pid",
                     (json_int_t)s->owner_pid, "epoch", cli_json_u64(s->epoch),
                     "committed_offset", opt_u64(s->committed_offset),
                     "committed_position", opt_u64(s->committed_position),
                     "lag_events", cli_json_u64(s->lag_events),
                     "fenced_commits", cli_json_u64(s->fenced));
}

static void print_text(const groups *g, const char *name, const evb_group_summary *sum,
                       const evb_group_member_stat *ms, uint32_t nm,
                       const evb_group_partition_stat *ps)
{
    bool queue = sum->kind == EVB_QUEUE_MEMBER;
    printf("%s/%s: %s group, %u member%s, %u partitions, generation %llu, %llu expelled",
           g->topic, name, queue ? "queue" : "partition", sum->members,
           sum->members == 1 ? "" : "s", sum->partitions, (unsigned long long)sum->generation,
           (unsigned long long)sum->expelled);
    if (queue) {
        char md[16];
        snprintf(md, sizeof md, sum->max_deliveries ? "%u" : "none", sum->max_deliveries);
        printf(", ack wait %u ms, max deliveries %s, %u in flight at most per partition, "
               "%llu dead-letter refusals", sum->ack_wait_ms, md, sum->max_in_flight,
               (unsigned long long)sum->dlq_refusals);
        if (sum->dlq_refusal_error)
            printf(" (last: %s)", evb_strerror(sum->dlq_refusal_error));
        putchar('\n');
    }
    else
        printf(", %llu handovers\n", (unsigned long long)sum->handovers);
    for (uint32_t k = 0; k < nm; k++) {
        const evb_group_member_stat *m = &ms[k];
        if (queue)
            printf("  member %-6llu pid %-7u %-15s in flight %-6u delivered %-10llu "
                   "silent %llu ms%s\n", (unsigned long long)m->member_id, m->pid,
                   m->comm[0] ? m->comm : "?", m->in_flight, (unsigned long long)m->delivered,
                   (unsigned long long)m->silent_ms, m->alive ? "" : " (dead: to be expelled)");
        else
            printf("  member %-6llu pid %-7u %-15s owns %-4u delivered %-10llu commits %-8llu "
                   "silent %llu ms%s\n", (unsigned long long)m->member_id, m->pid,
                   m->comm[0] ? m->comm : "?", m->partitions, (unsigned long long)m->delivered,
                   (unsigned long long)m->commits, (unsigned long long)m->silent_ms,
                   m->alive ? "" : " (dead: to be expelled)");
    }
    if (queue) {
        printf("  %-9s %-14s %-12s %-9s %-10s %-8s %-11s %-13s %s\n", "partition", "floor",
               "backlog", "in_flight", "acked", "nacked", "redelivered", "dead_lettered",
               "dlq_due");
        for (uint32_t p = 0; p < sum->partitions; p++) {
            const evb_group_partition_stat *s = &ps[p];
            char floor[24], backlog[24], in_flight[16], due[16];
            /* A damaged queue's cursors and slots say nothing reliable:
             * only its counters are shown. */
            if (s->committed_position == UINT64_MAX || s->damaged)
                snprintf(floor, sizeof floor, "-");
            else
                snprintf(floor, sizeof floor, "%llu", (unsigned long long)s->committed_position);
            snprintf(backlog, sizeof backlog, s->damaged ? "-" : "%llu",
                     (unsigned long long)s->backlog_bytes);
            snprintf(in_flight, sizeof in_flight, s->damaged ? "-" : "%u", s->in_flight);
            snprintf(due, sizeof due, s->damaged ? "-" : "%u", s->dlq_due);
            printf("  %-9u %-14s %-12s %-9s %-10llu %-8llu %-11llu %-13llu %s%s\n", p, floor,
                   backlog, in_flight, (unsigned long long)s->acked,
                   (unsigned long long)s->nacked, (unsigned long long)s->redelivered,
                   (unsigned long long)s->dead_lettered, due, s->damaged ? "  DAMAGED" : "");
        }
        return;
    }
    printf("  %-9s %-9s %-7s %-20s %-12s %-8s %s\n", "partition", "owner", "epoch",
           "committed", "lag", "fenced", "rejected");
    for (uint32_t p = 0; p < sum->partitions; p++) {
        const evb_group_partition_stat *s = &ps[p];
        char owner[24], committed[24];
        if (s->owner_pid)
            snprintf(owner, sizeof owner, "%u", s->owner_pid);
        else
            snprintf(owner, sizeof owner, "%s", s->owner_id ? "(gone)" : "-");
        if (s->committed_offset != UINT64_MAX)
            snprintf(committed, sizeof committed, "%llu",
                     (unsigned long long)s->committed_offset);
        else
            snprintf(committed, sizeof committed, "%s",
                     s->committed_position == UINT64_MAX ? "-" : "(offset unknown)");
        printf("  %-9u %-9s %-7llu %-20s %-12llu %-8llu %llu\n", p, owner,
               (unsigned long long)s->epoch, committed, (unsigned long long)s->lag_events,
               (unsigned long long)s->fenced, (unsigned long long)s->rejected);
    }
}

static int show_group(const char *name, void *arg)
{
    groups *g = arg;
    evb_group_summary sum;
    evb_group_member_stat ms[64];
    evb_group_partition_stat *ps = calloc(EVB_MAX_PARTITIONS, sizeof *ps);
    if (!ps) {
        g->rc = cli_error(&g->c, "out of memory");
        return 1;
    }
    int n = evb_group_stat(g->c.bus, g->topic, name, &sum, ms, 64, ps, EVB_MAX_PARTITIONS);
    if (n < 0) {
        g->rc = cli_fail(&g->c, n, "topic %s: group %s", g->topic, name);
        /* A queue with damaged partitions comes filled in all the same
         * (partitions not 0): shown, those marked, the exit status set. */
        if (!sum.partitions) {
            free(ps);
            return 0;
        }
        n = (int)sum.members;
    }
    uint32_t nm = (uint32_t)n < 64 ? (uint32_t)n : 64;
    g->shown++;
    if (g->c.json) {
        json_t *jm = json_array(), *jp = json_array();
        for (uint32_t k = 0; k < nm; k++)
            json_array_append_new(jm, member_json(&ms[k]));
        bool queue = sum.kind == EVB_QUEUE_MEMBER;
        for (uint32_t p = 0; p < sum.partitions; p++)
            json_array_append_new(jp, queue ? queue_part_json(p, &ps[p]) : part_json(p, &ps[p]));
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "topic",
                              g->topic, "group", name, "kind", queue ? "queue" : "partition",
                              "partitions",
                              (json_int_t)sum.partitions, "generation",
                              cli_json_u64(sum.generation), "expelled",
                              cli_json_u64(sum.expelled), "handovers",
                              cli_json_u64(sum.handovers), "members", jm, "partition_state",
                              jp);
        if (queue) {
            json_object_update_new(o, json_pack("{s:I, s:I, s:I, s:o}", "ack_wait_ms",
                                                (json_int_t)sum.ack_wait_ms, "max_deliveries",
                                                (json_int_t)sum.max_deliveries, "max_in_flight",
                                                (json_int_t)sum.max_in_flight, "dlq_refusals",
                                                cli_json_u64(sum.dlq_refusals)));
            json_object_set_new(o, "dlq_refusal_error", cli_json_errno(sum.dlq_refusal_error));
        }
        char *text = json_dumps(o, JSON_COMPACT);
        if (text)
            puts(text);
        free(text);
        json_decref(o);
    } else {
        print_text(g, name, &sum, ms, nm, ps);
    }
    free(ps);
    return 0;
}

static int show_topic(const char *topic, void *arg)
{
    groups *g = arg;
    g->topic = topic;
    int n = evb_group_list(g->c.bus, topic, show_group, g);
    if (n < 0)
        g->rc = cli_fail(&g->c, n, "topic %s: listing groups", topic);
    return 0;
}

int cmd_groups(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { 0 },
    };
    static groups g;
    memset(&g, 0, sizeof g);
    cli_begin(&g.c, "groups", groups_usage);
    int opt;
    while ((opt = cli_getopt(&g.c, argc, argv, "", longopts)) != -1)
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
    if (argc - optind > 1)
        return cli_usage_error(&g.c, "one TOPIC at most");
    const char *topic = optind < argc ? argv[optind] : NULL;
    int rc = cli_open_bus(&g.c, CLI_BUS_EXISTING);
    if (rc)
        return rc;
    if (topic) {
        struct evb_topic_info ti;
        int err = evb_topic_info(g.c.bus, topic, &ti);
        if (err < 0)
            rc = cli_fail(&g.c, err, "topic %s", topic);
        else
            show_topic(topic, &g);
    } else {
        int err = evb_topic_list(g.c.bus, show_topic, &g);
        if (err < 0)
            rc = cli_fail(&g.c, err, "listing topics");
    }
    if (!rc && !g.rc && !g.shown && !g.c.json)
        printf("no consumer groups%s%s\n", topic ? " on topic " : "", topic ? topic : "");
    cli_close(&g.c);
    return rc ? rc : g.rc;
}
