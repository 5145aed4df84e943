/*
 * cmd_stat.c - evbus stat: counters of topics, partitions and readers,
 * once or redrawn every few seconds with rates from the deltas.
 *
 * Each round takes a snapshot of everything it shows; rates compare it
 * with the previous round's snapshot, matching partitions by topic and
 * index and readers by (kind, pid, name).
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char stat_usage[] =
    "usage: evbus stat [TOPIC] [--json | --prometheus] [--watch SECONDS]\n"
    "                  [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Show, for TOPIC or every topic, per partition: the tail offset and\n"
    "position, events published and aborted (dead or stalled producers),\n"
    "producer and reader slots; per producer: id, pid, command, events and\n"
    "bytes published, back-pressure (publishes that found the ring full);\n"
    "per reader: kind, name, pid, next offset, lag in events, bytes and\n"
    "seconds, events delivered and lost, * on the slowest one that holds\n"
    "producers back; named consumers no process has open (closed) with the\n"
    "lag of their commits. For durable topics also the\n"
    "disk lag: log bytes not yet fdatasync'ed (unsynced = tail - durable\n"
    "position; JSON adds unflushed_bytes = tail - flushed position, and\n"
    "retention_unconsumed: log bytes retention's cap removed before a named\n"
    "consumer had committed past them). Per consumer group one line: members,\n"
    "lag and events its members rejected to the dead-letter topic (a queue\n"
    "group: backlog, events in flight, redelivered, dead-lettered, events\n"
    "past max deliveries due for the dead-letter topic and the tries it\n"
    "refused); evbus groups shows each in full.\n"
    "A topic with a dead-letter topic TOPIC.dlq gets a line with the events\n"
    "in it and how many were resubmitted (evbus dlq; `unknown` and why when\n"
    "its resubmit state is damaged).\n"
    "\n"
    "A topic that cannot be read (damaged: evbus list says why; a topic.conf\n"
    "that names other rings; no permission) is shown with the reason in place\n"
    "of its counters, and the others as usual; so is a group whose file cannot\n"
    "be read or whose dedup table (.gdup) is damaged (`unreadable` and why),\n"
    "and a named consumer whose cursor file cannot be read or whose dedup\n"
    "table (.dup) is damaged (DAMAGED and why, its lag unknown); a ring whose\n"
    "tail word is damaged makes its topic unreadable. A topic that reads\n"
    "but whose last rebuild kept damage on disk (readers stop there unless\n"
    "they skip it) is shown with its counters and DAMAGED on disk and why; one\n"
    "whose flusher failed (a full or read-only disk, an I/O error: nothing\n"
    "more becomes durable until a flusher succeeds) with FLUSH FAILED and why\n"
    "(JSON flush_error and flush_error_text per partition).\n"
    "The exit status is then 1 (for --watch: when the last round had one).\n"
    "\n"
    "  --watch SECONDS  redraw every SECONDS, at least 0.05 (fractions\n"
    "                   allowed, up to 86400), with events/s rates, until\n"
    "                   Ctrl-C\n"
    "  --json           one JSON object per round\n"
    "  --prometheus     the Prometheus text exposition format (for a scrape or\n"
    "                   node-exporter's textfile collector): evbus_partition_*\n"
    "                   (evbus_partition_flush_failed: 1 while its flusher fails),\n"
    "                   evbus_reader_*, evbus_group_*, evbus_dlq_* metrics\n"
    CLI_BUS_HELP;

enum { OPT_WATCH = CLI_OPT_FIRST, OPT_PROMETHEUS };

/* --watch bounds, seconds. Below 0.05 s a redraw is faster than a terminal
 * or a reader can use and only burns a core (thousands of snapshots a
 * second); a day keeps the nap's arithmetic well inside time_t. */
#define STAT_WATCH_MIN_S 0.05
#define STAT_WATCH_MAX_S 86400.0

typedef struct part_snap {
    struct evb_partition_stat ps;
    uint32_t nreaders;
    struct evb_reader_stat *readers;
    uint32_t nproducers;
    evb_producer_stat *producers;
    uint32_t nnamed;    /* named consumers, open or closed (cursor files) */
    evb_named_consumer_stat *named;
    /* ps.flush_error's text (the flusher's own words, evb_partition_damage,
     * or the code's); "" when there is none. */
    char flush_text[256];
} part_snap;

typedef struct topic_snap {
    struct evb_topic_info ti;
    uint32_t nparts;
    part_snap *parts;
    /* A topic that could not be read (damaged, a topic.conf that names
     * other rings, no permission): why, shown in its place; NULL when it
     * was read. */
    char *error;
    bool damaged;       /* error was -EBADMSG */
    /* A topic that reads but whose last rebuild kept damage on disk
     * (evb_topic_damage: readers stop there unless they skip it): why;
     * NULL when there is none. */
    char *damage;
    /* Its dead-letter topic <name>.dlq, when there is one: events in it
     * (offsets it ever gave, junk included), and how many of them were
     * resubmitted, or why that is not known (dlq_state_error). */
    bool has_dlq;
    uint64_t dlq_events, dlq_resubmitted;
    char *dlq_state_error;
} topic_snap;

typedef struct snapshot {
    topic_snap *topics;
    size_t n;
    double when;        /* util_now() when taken */
    double wall;        /* the same moment, seconds since the epoch */
} snapshot;

/* What one round shows next to the previous round, for rates. */
typedef struct stat_round {
    const snapshot *cur;
    const snapshot *prev;  /* NULL on the first round */
    double dt;
} stat_round;

static void snap_free(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        for (uint32_t p = 0; p < s->topics[i].nparts; p++) {
            free(s->topics[i].parts[p].readers);
            free(s->topics[i].parts[p].producers);
            free(s->topics[i].parts[p].named);
        }
        free(s->topics[i].parts);
        free(s->topics[i].error);
        free(s->topics[i].damage);
        free(s->topics[i].dlq_state_error);
    }
    free(s->topics);
    *s = (snapshot){ 0 };
}

/* Load one partition's counters and readers. Returns 0 or -errno. */
static int snap_part(evb_bus *bus, const char *topic, uint32_t p, part_snap *ps)
{
    struct evb_reader_stat rs[EVB_RING_READERS];
    int rc = evb_partition_stat(bus, topic, p, &ps->ps);
    if (rc < 0)
        return rc;
    int n = evb_reader_list(bus, topic, p, rs, EVB_RING_READERS);
    if (n < 0)
        return n;
    ps->nreaders = n < EVB_RING_READERS ? (uint32_t)n : EVB_RING_READERS;
    if (ps->nreaders > 0) {
        ps->readers = malloc(ps->nreaders * sizeof(*rs));
        if (ps->readers == NULL)
            return -ENOMEM;
        memcpy(ps->readers, rs, ps->nreaders * sizeof(*rs));
    }
    evb_producer_stat pr[EVB_RING_PRODUCERS];
    n = evb_producer_list(bus, topic, p, pr, EVB_RING_PRODUCERS);
    if (n < 0)
        return n;
    ps->nproducers = n < EVB_RING_PRODUCERS ? (uint32_t)n : EVB_RING_PRODUCERS;
    if (ps->nproducers > 0) {
        ps->producers = malloc(ps->nproducers * sizeof(*pr));
        if (ps->producers == NULL)
            return -ENOMEM;
        memcpy(ps->producers, pr, ps->nproducers * sizeof(*pr));
    }
    /* A failed flusher's words. */
    evb_damage d;
    if (ps->ps.flush_error)
        snprintf(ps->flush_text, sizeof(ps->flush_text), "%s",
                 evb_partition_damage(bus, topic, p, 0, &d) == 0 && d.flush_error[0]
                     ? d.flush_error : evb_strerror(ps->ps.flush_error));
    /* Named consumers come and go between the two calls: what the second
     * finds, up to what the first counted. */
    n = evb_named_consumer_list(bus, topic, p, NULL, 0);
    if (n <= 0)
        return n;
    if ((ps->named = calloc((size_t)n, sizeof(*ps->named))) == NULL)
        return -ENOMEM;
    int m = evb_named_consumer_list(bus, topic, p, ps->named, (uint32_t)n);
    if (m < 0)
        return m;
    ps->nnamed = m < n ? (uint32_t)m : (uint32_t)n;
    return 0;
}

/* Drop what TS holds of its partitions, keeping its name. */
static void snap_topic_clear(topic_snap *ts)
{
    for (uint32_t p = 0; p < ts->nparts; p++) {
        free(ts->parts[p].readers);
        free(ts->parts[p].producers);
        free(ts->parts[p].named);
    }
    free(ts->parts);
    ts->parts = NULL;
    ts->nparts = 0;
}

/* Load TS's dead-letter topic, if it has one. A DLQ that cannot be read
 * is left out (it is a topic of its own, shown with its reason); a state
 * file that cannot be read makes the resubmitted count unknown, never 0.
 * Returns 0 or -ENOMEM. */
static int snap_dlq(evb_bus *bus, topic_snap *ts)
{
    char dlq[EVB_NAME_MAX + 16];
    struct evb_topic_info di;
    size_t len = strlen(ts->ti.name), sl = strlen(EVB_DLQ_SUFFIX);
    if (len >= sl && strcmp(ts->ti.name + len - sl, EVB_DLQ_SUFFIX) == 0)
        return 0; /* a DLQ has no DLQ of its own */
    snprintf(dlq, sizeof(dlq), "%s%s", ts->ti.name, EVB_DLQ_SUFFIX);
    if (evb_topic_info(bus, dlq, &di) < 0)
        return 0;
    uint64_t events = 0;
    for (uint32_t p = 0; p < di.config.partitions; p++) {
        struct evb_partition_stat ps;
        if (evb_partition_stat(bus, dlq, p, &ps) < 0)
            return 0;
        events += ps.tail_offset;
    }
    ts->has_dlq = true;
    ts->dlq_events = events;
    int rc = evb_dlq_resubmitted_count(bus, ts->ti.name, &ts->dlq_resubmitted);
    if (rc < 0) {
        const char *detail = evb_last_error();
        if ((ts->dlq_state_error = strdup(detail[0] ? detail : evb_strerror(rc))) == NULL)
            return -ENOMEM;
    }
    return 0;
}

/*
 * Load TOPIC into the next slot of S. A topic that does not read (error
 * RC other than -ENOENT, gone, or -ENOMEM) takes its slot with the reason
 * instead of its counters, so one damaged topic does not hide the rest.
 * Returns 0 or -errno.
 */
static int snap_topic(evb_bus *bus, const char *topic, snapshot *s)
{
    topic_snap *grown = realloc(s->topics, (s->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    s->topics = grown;
    topic_snap *ts = &s->topics[s->n];
    *ts = (topic_snap){ 0 };
    int rc = evb_topic_info(bus, topic, &ts->ti);
    uint32_t np = rc < 0 ? 0 : ts->ti.config.partitions;
    snprintf(ts->ti.name, sizeof(ts->ti.name), "%s", topic);
    if (np > 0 && (ts->parts = calloc(np, sizeof(*ts->parts))) == NULL)
        return -ENOMEM;
    s->n++;  /* from here snap_free() owns it */
    for (; rc == 0 && ts->nparts < np; ts->nparts++)
        rc = snap_part(bus, topic, ts->nparts, &ts->parts[ts->nparts]);
    char note[1024];
    if (rc == 0 && ts->ti.config.durability != EVB_DURABILITY_NONE &&
        evb_topic_damage(bus, topic, note, sizeof(note)) == 1 &&
        (ts->damage = strdup(note)) == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        return snap_dlq(bus, ts);
    snap_topic_clear(ts);
    if (rc == -ENOENT || rc == -ENOMEM) {
        s->n--;
        return rc;
    }
    const char *detail = evb_last_error();
    char why[1024];
    snprintf(why, sizeof(why), "%s%s%s%s", evb_strerror(rc), detail[0] ? " (" : "", detail,
             detail[0] ? ")" : "");
    ts->damaged = rc == -EBADMSG;
    if ((ts->error = strdup(why)) == NULL)
        return -ENOMEM;
    return 0;
}

typedef struct names {
    char **v;
    size_t n;
    int err;
} names;

static int collect_name(const char *topic, void *arg)
{
    names *nm = arg;
    char **grown = realloc(nm->v, (nm->n + 1) * sizeof(*grown));
    char *copy = grown ? strdup(topic) : NULL;
    if (grown)
        nm->v = grown;
    if (copy == NULL) {
        nm->err = -ENOMEM;
        return 1;
    }
    nm->v[nm->n++] = copy;
    return 0;
}

/* Snapshot TOPIC, or every topic when NULL. Returns 0 or an exit code. */
static int snap_take(cli *c, const char *topic, snapshot *s)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    *s = (snapshot){ .when = util_now(),
                     .wall = (double)now.tv_sec + (double)now.tv_nsec / 1e9 };
    if (topic != NULL) {
        int rc = snap_topic(c->bus, topic, s);
        return rc < 0 ? cli_fail(c, rc, "topic %s", topic) : 0;
    }
    names nm = { 0 };
    int rc = evb_topic_list(c->bus, collect_name, &nm);
    if (rc >= 0 && nm.err < 0)
        rc = nm.err;
    int exit = rc < 0 ? cli_fail(c, rc, "listing topics of %s", evb_bus_path(c->bus)) : 0;
    for (size_t i = 0; exit == 0 && i < nm.n; i++) {
        rc = snap_topic(c->bus, nm.v[i], s);
        /* A topic deleted since the listing is simply gone. */
        if (rc < 0 && rc != -ENOENT)
            exit = cli_fail(c, rc, "topic %s", nm.v[i]);
    }
    for (size_t i = 0; i < nm.n; i++)
        free(nm.v[i]);
    free(nm.v);
    return exit;
}

/* ---- rates ----------------------------------------------------------- */

static const part_snap *prev_part(const stat_round *r, const char *topic, uint32_t p)
{
    for (size_t i = 0; r->prev != NULL && i < r->prev->n; i++) {
        const topic_snap *ts = &r->prev->topics[i];
        if (strcmp(ts->ti.name, topic) == 0)
            return p < ts->nparts ? &ts->parts[p] : NULL;
    }
    return NULL;
}

static const struct evb_reader_stat *prev_reader(const part_snap *pp, const struct evb_reader_stat *rs)
{
    for (uint32_t i = 0; pp != NULL && i < pp->nreaders; i++) {
        const struct evb_reader_stat *o = &pp->readers[i];
        if (o->kind == rs->kind && o->pid == rs->pid && strcmp(o->name, rs->name) == 0)
            return o;
    }
    return NULL;
}

/* Log bytes below the tail not yet at POS (flushed or durable). The two
 * are read at different moments, so POS may have passed the tail read
 * before it: that is no lag. */
static uint64_t disk_lag(const struct evb_partition_stat *s, uint64_t pos)
{
    return s->tail_position > pos ? s->tail_position - pos : 0;
}

static bool is_durable(const topic_snap *ts)
{
    return ts->ti.config.durability != EVB_DURABILITY_NONE;
}

/* Events per second between two counter values, NAN when unknown. */
static double rate(const stat_round *r, const void *prev, uint64_t before, uint64_t now)
{
    if (prev == NULL || r->dt <= 0 || now < before)
        return NAN;
    return (double)(now - before) / r->dt;
}

/* A reader's lag in seconds: the age of the next event it reads, from its
 * timestamp; when that frame could not be read, its lag in events over
 * the partition's publish rate (NAN when neither is known). */
static double lag_seconds(const stat_round *r, const part_snap *ps, const part_snap *pp,
                          const struct evb_reader_stat *rs)
{
    if (rs->lag_events == 0)
        return 0;
    if (rs->next_timestamp_ns != 0) {
        double age = r->cur->wall - (double)rs->next_timestamp_ns / 1e9;
        return age > 0 ? age : 0;
    }
    double rt = rate(r, pp, pp ? pp->ps.tail_offset : 0, ps->ps.tail_offset);
    return isnan(rt) || rt <= 0 ? NAN : (double)rs->lag_events / rt;
}

/* A named consumer that no process has open: its readers' list misses
 * it, its cursor file does not. */
static bool named_closed(const evb_named_consumer_stat *nc)
{
    return nc->pid == 0 && nc->error == 0;
}

/* A named consumer whose cursor file cannot be read: listed by name with
 * why, its commit and lag unknown (never shown as 0). */
static bool named_damaged(const evb_named_consumer_stat *nc)
{
    return nc->error != 0;
}

/* Damaged in either file: its cursor file (nothing known of it), or its
 * dedup table (its open with dedup refused; its commit and lag known). */
static bool named_bad(const evb_named_consumer_stat *nc)
{
    return named_damaged(nc) || nc->dedup_damaged;
}

static const char *named_why(const evb_named_consumer_stat *nc)
{
    if (!nc->error && nc->dedup_damaged)
        return "dedup table damaged";
    return nc->error == -EBADMSG ? "cursor file damaged" : evb_strerror(nc->error);
}

/* ---- text ------------------------------------------------------------ */

static const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case EVB_SUBSCRIBER: return "subscriber";
    case EVB_SUBSCRIBER_LOSSLESS: return "lossless";
    case EVB_CONSUMER: return "consumer";
    default: return "unknown";
    }
}

static void fmt_rate(double v, char *out, size_t cap)
{
    if (isnan(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.1f", v);
}

static const evb_producer_stat *prev_producer(const part_snap *pp, const evb_producer_stat *ps)
{
    for (uint32_t i = 0; pp != NULL && i < pp->nproducers; i++)
        if (pp->producers[i].pid == ps->pid && pp->producers[i].producer_id == ps->producer_id)
            return &pp->producers[i];
    return NULL;
}

static void print_producers(const stat_round *r, const part_snap *ps, const part_snap *pp)
{
    if (ps->nproducers > 0)
        printf("        %-10s %8s %12s %14s %12s %10s  %s\n", "producer", "pid", "published",
               "bytes", "backpressure", "ev/s", "command");
    for (uint32_t i = 0; i < ps->nproducers; i++) {
        const evb_producer_stat *s = &ps->producers[i];
        const evb_producer_stat *o = prev_producer(pp, s);
        char rt[32], id[16];
        fmt_rate(rate(r, o, o ? o->published : 0, s->published), rt, sizeof(rt));
        snprintf(id, sizeof(id), "%u", s->producer_id);
        printf("        %-10s %8u %12llu %14llu %12llu %10s  %s\n", id, s->pid,
               (unsigned long long)s->published, (unsigned long long)s->published_bytes,
               (unsigned long long)s->backpressure, rt, s->comm[0] ? s->comm : "?");
    }
}

static void print_readers(const stat_round *r, const part_snap *ps, const part_snap *pp)
{
    uint32_t closed = 0;
    for (uint32_t i = 0; i < ps->nnamed; i++)
        closed += named_closed(&ps->named[i]) || named_damaged(&ps->named[i]);
    if (ps->nreaders > 0 || closed > 0)
        printf("        %-10s %8s %12s %10s %12s %8s %12s %10s %10s  %s\n", "reader", "pid",
               "offset", "lag_events", "lag_bytes", "lag_s", "delivered", "lost", "ev/s",
               "name (* gates producers)");
    for (uint32_t i = 0; i < ps->nreaders; i++) {
        const struct evb_reader_stat *rs = &ps->readers[i];
        const struct evb_reader_stat *o = prev_reader(pp, rs);
        char rt[32], lag[32];
        fmt_rate(rate(r, o, o ? o->delivered : 0, rs->delivered), rt, sizeof(rt));
        fmt_rate(lag_seconds(r, ps, pp, rs), lag, sizeof(lag));
        printf("        %-10s %8u %12llu %10llu %12llu %8s %12llu %10llu %10s  %s%s\n",
               kind_name(rs->kind), rs->pid, (unsigned long long)rs->offset,
               (unsigned long long)rs->lag_events, (unsigned long long)rs->lag_bytes, lag,
               (unsigned long long)rs->delivered, (unsigned long long)rs->lost, rt,
               rs->name[0] ? rs->name : "-", rs->gating ? " *" : "");
    }
    for (uint32_t i = 0; i < ps->nnamed; i++) {
        const evb_named_consumer_stat *nc = &ps->named[i];
        if (named_damaged(nc)) {
            printf("        %-10s %8s %12s %10s %12s %8s %12s %10s %10s  %s (%s: consumers/%s.cur)\n",
                   "DAMAGED", "-", "-", "-", "-", "-", "-", "-", "-", nc->name, named_why(nc),
                   nc->name);
            continue;
        }
        if (nc->dedup_damaged)
            printf("        %-10s %8s %12s %10s %12s %8s %12s %10s %10s  %s (%s: consumers/%s.dup)\n",
                   "DAMAGED", "-", "-", "-", "-", "-", "-", "-", "-", nc->name, named_why(nc),
                   nc->name);
        if (!named_closed(nc))
            continue;
        char off[32];
        if (nc->committed_offset == UINT64_MAX)
            snprintf(off, sizeof(off), "-");
        else
            snprintf(off, sizeof(off), "%llu", (unsigned long long)nc->committed_offset);
        printf("        %-10s %8s %12s %10llu %12llu %8s %12s %10s %10s  %s\n", "closed",
               "-", off, (unsigned long long)nc->lag_events, (unsigned long long)nc->lag_bytes,
               "-", "-", "-", "-", nc->name);
    }
}

/* The bus of this command, for the groups of each topic (read live, not
 * part of the snapshot: their counters are their own). */
static evb_bus *stat_bus;

/* One group's summary line's numbers: for a partition group the events
 * not committed, for a queue the bytes nobody took and the events in
 * flight. -errno when the group cannot be read. */
typedef struct group_line {
    evb_group_summary sum;
    uint64_t lag_events, backlog_bytes, in_flight, redelivered, dead_lettered, rejected, dlq_due;
} group_line;

static int group_line_of(const char *topic, const char *group, group_line *g)
{
    memset(g, 0, sizeof(*g));
    evb_group_partition_stat *ps = calloc(EVB_MAX_PARTITIONS, sizeof(*ps));
    if (ps == NULL)
        return -ENOMEM;
    int n = evb_group_stat(stat_bus, topic, group, &g->sum, NULL, 0, ps, EVB_MAX_PARTITIONS);
    for (uint32_t p = 0; n >= 0 && p < g->sum.partitions; p++) {
        g->lag_events += ps[p].lag_events;
        g->backlog_bytes += ps[p].backlog_bytes;
        g->in_flight += ps[p].in_flight;
        g->redelivered += ps[p].redelivered;
        g->dead_lettered += ps[p].dead_lettered;
        g->dlq_due += ps[p].dlq_due;
        g->rejected += ps[p].rejected;
    }
    free(ps);
    return n < 0 ? n : 0;
}

/* Group files a round could not read: shown in place, and the exit status
 * says so, as for a topic (evbus groups does the same). */
static struct {
    size_t n;
    char first[2 * EVB_NAME_MAX + 2]; /* topic/group */
    char why[1024];
} bad_groups;

static void note_bad_group(const char *topic, const char *group)
{
    if (bad_groups.n++ == 0) {
        snprintf(bad_groups.first, sizeof(bad_groups.first), "%s/%s", topic, group);
        snprintf(bad_groups.why, sizeof(bad_groups.why), "%s", evb_last_error());
    }
}

static int print_group(const char *group, void *arg)
{
    const char *topic = arg;
    group_line g;
    int rc = group_line_of(topic, group, &g);
    if (rc < 0) {
        /* Partitions filled in: read, and a queue found damaged. */
        printf("  group %s: %s: %s\n", group, g.sum.partitions ? "damaged" : "unreadable",
               evb_last_error());
        note_bad_group(topic, group);
        return 0;
    }
    if (g.sum.kind == EVB_QUEUE_MEMBER)
        printf("  group %s: queue, %u member%s, backlog %llu bytes, %llu in flight, "
               "%llu redelivered, %llu dead-lettered, %llu due for the dead-letter topic "
               "(%llu refusals%s%s) (evbus groups %s)\n", group, g.sum.members,
               g.sum.members == 1 ? "" : "s", (unsigned long long)g.backlog_bytes,
               (unsigned long long)g.in_flight, (unsigned long long)g.redelivered,
               (unsigned long long)g.dead_lettered, (unsigned long long)g.dlq_due,
               (unsigned long long)g.sum.dlq_refusals,
               g.sum.dlq_refusal_error ? ", last: " : "",
               g.sum.dlq_refusal_error ? evb_strerror(g.sum.dlq_refusal_error) : "", topic);
    else
        printf("  group %s: %u member%s, lag %llu events, %llu rejected, %llu expelled "
               "(evbus groups %s)\n", group, g.sum.members, g.sum.members == 1 ? "" : "s",
               (unsigned long long)g.lag_events, (unsigned long long)g.rejected,
               (unsigned long long)g.sum.expelled, topic);
    return 0;
}

static int group_json(const char *group, void *arg)
{
    json_t *a = ((void **)arg)[0];
    const char *topic = ((void **)arg)[1];
    group_line g;
    if (group_line_of(topic, group, &g) < 0) {
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", group, "error",
                                           evb_last_error()));
        note_bad_group(topic, group);
        return 0;
    }
    bool queue = g.sum.kind == EVB_QUEUE_MEMBER;
    json_t *o = json_pack("{s:s, s:s, s:I, s:o}", "name", group, "kind",
                          queue ? "queue" : "partition", "members", (json_int_t)g.sum.members,
                          "expelled", cli_json_u64(g.sum.expelled));
    if (queue)
        json_object_update_new(o, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "backlog_bytes",
                                            cli_json_u64(g.backlog_bytes), "in_flight",
                                            cli_json_u64(g.in_flight), "redelivered",
                                            cli_json_u64(g.redelivered), "dead_lettered",
                                            cli_json_u64(g.dead_lettered), "dlq_due",
                                            cli_json_u64(g.dlq_due), "dlq_refusals",
                                            cli_json_u64(g.sum.dlq_refusals)));
    if (queue)
        json_object_set_new(o, "dlq_refusal_error", cli_json_errno(g.sum.dlq_refusal_error));
    else
        json_object_update_new(o, json_pack("{s:o, s:o}", "lag_events",
                                            cli_json_u64(g.lag_events), "rejected",
                                            cli_json_u64(g.rejected)));
    json_array_append_new(a, o);
    return 0;
}

static void print_topic(const stat_round *r, const topic_snap *ts)
{
    if (ts->error != NULL) {
        printf("topic %s: %s, not shown: %s\n", ts->ti.name,
               ts->damaged ? "DAMAGED" : "unreadable", ts->error);
        return;
    }
    char ring[32], max[32];
    util_fmt_size(ts->ti.config.ring_bytes, ring, sizeof(ring));
    util_fmt_size(ts->ti.config.max_event_bytes, max, sizeof(max));
    bool durable = is_durable(ts);
    printf("topic %s: %u partition%s, ring %s, max event %s%s%s\n", ts->ti.name, ts->nparts,
           ts->nparts == 1 ? "" : "s", ring, max, durable ? ", durability " : "",
           durable ? cli_durability_name(ts->ti.config.durability) : "");
    if (ts->damage != NULL)
        printf("  DAMAGED on disk: %s\n", ts->damage);
    for (uint32_t p = 0; p < ts->nparts; p++)
        if (ts->parts[p].ps.flush_error)
            printf("  FLUSH FAILED: partition %u: %s (durable up to position %llu)\n", p,
                   ts->parts[p].flush_text,
                   (unsigned long long)ts->parts[p].ps.durable_position);
    printf("  %4s %12s %14s %12s %8s %6s %7s %4s %7s %10s%s\n", "part", "tail_offset",
           "tail_position", "published", "aborted", "dead", "stalled", "prod",
           "readers", "ev/s", durable ? "     unsynced" : "");
    for (uint32_t p = 0; p < ts->nparts; p++) {
        const struct evb_partition_stat *s = &ts->parts[p].ps;
        const part_snap *pp = prev_part(r, ts->ti.name, p);
        char rt[32];
        fmt_rate(rate(r, pp, pp ? pp->ps.tail_offset : 0, s->tail_offset), rt, sizeof(rt));
        printf("  %4u %12llu %14llu %12llu %8llu %6llu %7llu %4u %7u %10s", p,
               (unsigned long long)s->tail_offset, (unsigned long long)s->tail_position,
               (unsigned long long)s->published, (unsigned long long)s->aborted,
               (unsigned long long)s->padded_dead, (unsigned long long)s->padded_stalled,
               s->producers, s->readers, rt);
        if (durable)
            printf(" %12llu", (unsigned long long)disk_lag(s, s->durable_position));
        putchar('\n');
        print_producers(r, &ts->parts[p], pp);
        print_readers(r, &ts->parts[p], pp);
    }
    if (ts->has_dlq && ts->dlq_state_error)
        printf("  dead-letter topic %s%s: %llu events, resubmitted unknown: %s\n",
               ts->ti.name, EVB_DLQ_SUFFIX, (unsigned long long)ts->dlq_events,
               ts->dlq_state_error);
    else if (ts->has_dlq)
        printf("  dead-letter topic %s%s: %llu events, %llu resubmitted (evbus dlq list %s)\n",
               ts->ti.name, EVB_DLQ_SUFFIX, (unsigned long long)ts->dlq_events,
               (unsigned long long)ts->dlq_resubmitted, ts->ti.name);
    evb_group_list(stat_bus, ts->ti.name, print_group, (void *)ts->ti.name);
}

/* ---- JSON ------------------------------------------------------------ */

/* Add "events_per_sec" to O when the rate is known. */
static void json_rate(json_t *o, double v)
{
    if (!isnan(v))
        json_object_set_new(o, "events_per_sec", json_real(v));
}

static json_t *readers_json(const stat_round *r, const part_snap *ps, const part_snap *pp)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < ps->nreaders; i++) {
        const struct evb_reader_stat *rs = &ps->readers[i];
        const struct evb_reader_stat *o = prev_reader(pp, rs);
        json_t *j = json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}",
                              "kind", kind_name(rs->kind), "name", rs->name,
                              "pid", (json_int_t)rs->pid,
                              "offset", cli_json_u64(rs->offset),
                              "position", cli_json_u64(rs->position),
                              "lag_bytes", cli_json_u64(rs->lag_bytes),
                              "delivered", cli_json_u64(rs->delivered),
                              "lost", cli_json_u64(rs->lost));
        if (j != NULL) {
            double lag = lag_seconds(r, ps, pp, rs);
            json_rate(j, rate(r, o, o ? o->delivered : 0, rs->delivered));
            json_object_set_new(j, "lag_events", cli_json_u64(rs->lag_events));
            json_object_set_new(j, "lag_seconds", isnan(lag) ? json_null() : json_real(lag));
            json_object_set_new(j, "gating", json_boolean(rs->gating));
        }
        json_array_append_new(a, j);
    }
    return a;
}

/* Named consumers that no process has open, with their commits' lag. */
static json_t *closed_json(const part_snap *ps)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < ps->nnamed; i++) {
        const evb_named_consumer_stat *nc = &ps->named[i];
        if (named_damaged(nc)) {
            /* Unknown, not 0: a 0 lag reads as caught up. */
            json_array_append_new(a, json_pack("{s:s, s:n, s:n, s:n, s:b, s:s}", "name",
                                               nc->name, "committed_offset", "lag_events",
                                               "lag_bytes", "damaged", 1, "error",
                                               named_why(nc)));
            continue;
        }
        if (!named_closed(nc) && !nc->dedup_damaged)
            continue;
        bool none = nc->committed_offset == UINT64_MAX;
        json_t *o = json_pack("{s:s, s:o, s:o, s:o}", "name", nc->name, "committed_offset",
                              none ? json_null() : cli_json_u64(nc->committed_offset),
                              "lag_events", cli_json_u64(nc->lag_events), "lag_bytes",
                              cli_json_u64(nc->lag_bytes));
        /* Its commit known, its dedup table not usable: said beside it. */
        if (o && nc->dedup_damaged)
            json_object_update_new(o, json_pack("{s:b, s:s}", "damaged", 1, "error",
                                                named_why(nc)));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *producers_json(const stat_round *r, const part_snap *ps, const part_snap *pp)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < ps->nproducers; i++) {
        const evb_producer_stat *s = &ps->producers[i];
        const evb_producer_stat *o = prev_producer(pp, s);
        json_t *j = json_pack("{s:I, s:I, s:s, s:o, s:o, s:o}", "pid", (json_int_t)s->pid,
                              "producer_id", (json_int_t)s->producer_id, "comm", s->comm,
                              "published", cli_json_u64(s->published),
                              "published_bytes", cli_json_u64(s->published_bytes),
                              "backpressure", cli_json_u64(s->backpressure));
        if (j != NULL)
            json_rate(j, rate(r, o, o ? o->published : 0, s->published));
        json_array_append_new(a, j);
    }
    return a;
}

static json_t *part_json(const stat_round *r, const topic_snap *ts, uint32_t p)
{
    const struct evb_partition_stat *s = &ts->parts[p].ps;
    const part_snap *pp = prev_part(r, ts->ti.name, p);
    json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o}",
                          "partition", (json_int_t)p,
                          "tail_offset", cli_json_u64(s->tail_offset),
                          "tail_position", cli_json_u64(s->tail_position),
                          "capacity", cli_json_u64(s->capacity),
                          "published", cli_json_u64(s->published),
                          "aborted", cli_json_u64(s->aborted),
                          "padded_dead", cli_json_u64(s->padded_dead),
                          "padded_stalled", cli_json_u64(s->padded_stalled),
                          "reaped_readers", cli_json_u64(s->reaped_readers),
                          "producer_slots", (json_int_t)s->producers,
                          "reader_slots", (json_int_t)s->readers,
                          "readers", readers_json(r, &ts->parts[p], pp));
    if (o != NULL) {
        json_object_set_new(o, "producers", producers_json(r, &ts->parts[p], pp));
        json_object_set_new(o, "closed_consumers", closed_json(&ts->parts[p]));
    }
    if (o != NULL)
        json_rate(o, rate(r, pp, pp ? pp->ps.tail_offset : 0, s->tail_offset));
    /* "flush_error": the flusher's -errno, 0 when fine; with
     * "flush_error_text": its words, null when fine. */
    if (o != NULL && is_durable(ts) &&
        json_object_update_new(o, json_pack("{s:i, s:o}", "flush_error", (int)s->flush_error,
                                            "flush_error_text",
                                            s->flush_error
                                                ? cli_json_text(ts->parts[p].flush_text)
                                                : json_null())) < 0) {
        json_decref(o);
        o = NULL;
    }
    if (o != NULL && is_durable(ts) &&
        json_object_update_new(o, json_pack("{s:o, s:o, s:o, s:o, s:o}",
                                            "flushed_position", cli_json_u64(s->flushed_position),
                                            "durable_position", cli_json_u64(s->durable_position),
                                            "unflushed_bytes",
                                            cli_json_u64(disk_lag(s, s->flushed_position)),
                                            "unsynced_bytes",
                                            cli_json_u64(disk_lag(s, s->durable_position)),
                                            "retention_unconsumed",
                                            cli_json_u64(s->retention_unconsumed))) < 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *round_json(const stat_round *r)
{
    json_t *topics = json_array();
    for (size_t i = 0; topics != NULL && i < r->cur->n; i++) {
        const topic_snap *ts = &r->cur->topics[i];
        if (ts->error != NULL) {
            json_array_append_new(topics, json_pack("{s:s, s:b, s:o}", "name", ts->ti.name,
                                                    "damaged", ts->damaged,
                                                    "error", cli_json_text(ts->error)));
            continue;
        }
        json_t *parts = json_array();
        for (uint32_t p = 0; parts != NULL && p < ts->nparts; p++)
            json_array_append_new(parts, part_json(r, ts, p));
        json_t *groups = json_array();
        void *ga[2] = {groups, (void *)ts->ti.name};
        evb_group_list(stat_bus, ts->ti.name, group_json, ga);
        json_t *o = json_pack("{s:s, s:o, s:o, s:o}", "name", ts->ti.name, "config",
                              cli_config_json(&ts->ti.config), "partitions", parts, "groups",
                              groups);
        /* "dlq": null when the topic has no dead-letter topic; in it
         * "resubmitted": null, with "state_error", when not known. */
        char dn[EVB_NAME_MAX + 16];
        snprintf(dn, sizeof(dn), "%s%s", ts->ti.name, EVB_DLQ_SUFFIX);
        json_t *dlq = !ts->has_dlq ? json_null()
                      : json_pack("{s:s, s:o, s:o}", "name", dn,
                                  "events", cli_json_u64(ts->dlq_events),
                                  "resubmitted", ts->dlq_state_error
                                                     ? json_null()
                                                     : cli_json_u64(ts->dlq_resubmitted));
        if (dlq != NULL && ts->dlq_state_error)
            json_object_set_new(dlq, "state_error", cli_json_text(ts->dlq_state_error));
        json_object_set_new(o, "dlq", dlq);
        /* "damage": null, or why its last rebuild kept damage on disk. */
        json_object_set_new(o, "damage",
                            ts->damage ? cli_json_text(ts->damage) : json_null());
        json_array_append_new(topics, o);
    }
    /* "time": when the snapshot was taken (seconds since the epoch), so
     * two rounds give a rate over their own interval. */
    return json_pack("{s:f, s:f, s:o}", "time", r->cur->wall, "interval_s", r->dt, "topics",
                     topics);
}

/* ---- Prometheus ------------------------------------------------------ */

/*
 * The text exposition format: every family's samples together, after its
 * # HELP and # TYPE lines, so each metric below is one pass over the
 * snapshot. Names follow Prometheus conventions (base units, counters end
 * in _total); values are the raw integers, never rates (the scraper
 * derives those).
 */

/* A label value in quotes, with \, " and newline escaped. */
static void prom_label(const char *name, const char *v, bool first)
{
    printf("%s%s=\"", first ? "" : ",", name);
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", stdout);
        else if (*v == '"')
            fputs("\\\"", stdout);
        else if (*v == '\n')
            fputs("\\n", stdout);
        else
            putchar(*v);
    }
    putchar('"');
}

static void prom_head(const char *name, const char *type, const char *help)
{
    printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_part_labels(const char *topic, uint32_t p)
{
    char n[16];
    snprintf(n, sizeof(n), "%u", p);
    prom_label("topic", topic, true);
    prom_label("partition", n, false);
}

/* What one partition metric reads out of a partition's snapshot. */
typedef uint64_t (*part_get)(const part_snap *ps);
#define PART_FIELD(f)                                                              \
    static uint64_t pg_##f(const part_snap *ps) { return ps->ps.f; }
PART_FIELD(published)
PART_FIELD(aborted)
PART_FIELD(padded_dead)
PART_FIELD(padded_stalled)
PART_FIELD(reaped_readers)
PART_FIELD(tail_offset)
PART_FIELD(tail_position)
PART_FIELD(capacity)
PART_FIELD(producers)
PART_FIELD(readers)
PART_FIELD(flushed_position)
PART_FIELD(durable_position)
PART_FIELD(fsyncs)
PART_FIELD(retention_unconsumed)
PART_FIELD(segments)
PART_FIELD(disk_bytes)
static uint64_t pg_flush_failed(const part_snap *ps)
{
    return ps->ps.flush_error != 0;
}
static uint64_t pg_unflushed(const part_snap *ps)
{
    return disk_lag(&ps->ps, ps->ps.flushed_position);
}
static uint64_t pg_unsynced(const part_snap *ps)
{
    return disk_lag(&ps->ps, ps->ps.durable_position);
}

static const struct prom_part_metric {
    const char *name, *type, *help;
    part_get get;
    bool durable; /* only durable topics have it */
} prom_part_metrics[] = {
    { "evbus_partition_published_events_total", "counter",
      "Events published to the partition since its ring was made", pg_published, false },
    { "evbus_partition_aborted_events_total", "counter",
      "Events of claims padded (aborted, or of dead or stalled producers)", pg_aborted, false },
    { "evbus_partition_padded_dead_claims_total", "counter",
      "Holes of dead producers padded", pg_padded_dead, false },
    { "evbus_partition_padded_stalled_claims_total", "counter",
      "Claims of stalled producers padded", pg_padded_stalled, false },
    { "evbus_partition_reaped_readers_total", "counter",
      "Dead readers whose slots were freed", pg_reaped_readers, false },
    { "evbus_partition_tail_offset", "gauge",
      "Next offset the partition will assign", pg_tail_offset, false },
    { "evbus_partition_tail_position_bytes", "gauge",
      "Next log position the partition will claim", pg_tail_position, false },
    { "evbus_partition_ring_capacity_bytes", "gauge",
      "Bytes of the partition's ring", pg_capacity, false },
    { "evbus_partition_producers", "gauge",
      "Producer slots in use by live processes", pg_producers, false },
    { "evbus_partition_readers", "gauge",
      "Reader slots in use by live processes", pg_readers, false },
    { "evbus_partition_flushed_position_bytes", "gauge",
      "Log positions below this are written to disk", pg_flushed_position, true },
    { "evbus_partition_durable_position_bytes", "gauge",
      "Log positions below this are fdatasync'ed", pg_durable_position, true },
    { "evbus_partition_unflushed_bytes", "gauge",
      "Log bytes below the tail not yet written to disk", pg_unflushed, true },
    { "evbus_partition_unsynced_bytes", "gauge",
      "Log bytes below the tail not yet fdatasync'ed", pg_unsynced, true },
    { "evbus_partition_fsyncs_total", "counter",
      "fdatasyncs of the partition's log completed", pg_fsyncs, true },
    { "evbus_partition_retention_unconsumed_bytes_total", "counter",
      "Log bytes retention removed before a named consumer committed past them",
      pg_retention_unconsumed, true },
    { "evbus_partition_flush_failed", "gauge",
      "1 while the partition's flusher fails (evbus stat says why): nothing more becomes "
      "durable", pg_flush_failed, true },
    { "evbus_partition_segments", "gauge",
      "Segment files of the partition's log", pg_segments, true },
    { "evbus_partition_disk_bytes", "gauge",
      "Disk space the partition's log segments take", pg_disk_bytes, true },
};

/* What one reader metric reads out of a reader's snapshot. */
typedef uint64_t (*reader_get)(const struct evb_reader_stat *rs);
#define READER_FIELD(f)                                                            \
    static uint64_t rg_##f(const struct evb_reader_stat *rs) { return rs->f; }
READER_FIELD(offset)
READER_FIELD(position)
READER_FIELD(lag_bytes)
READER_FIELD(delivered)
READER_FIELD(lost)
READER_FIELD(lag_events)
READER_FIELD(gating)

static const struct prom_reader_metric {
    const char *name, *type, *help;
    reader_get get;
} prom_reader_metrics[] = {
    { "evbus_reader_offset", "gauge", "Next offset the reader will read", rg_offset },
    { "evbus_reader_position_bytes", "gauge", "Next log position the reader will read",
      rg_position },
    { "evbus_reader_lag_bytes", "gauge", "Log bytes between the reader and the tail",
      rg_lag_bytes },
    { "evbus_reader_delivered_events_total", "counter",
      "Events handed to the reader's application", rg_delivered },
    { "evbus_reader_lost_events_total", "counter", "Events the reader lost to lapping",
      rg_lost },
    { "evbus_reader_lag_events", "gauge", "Events between the reader and the tail",
      rg_lag_events },
    { "evbus_reader_gating", "gauge",
      "1 for the slowest reader holding producers back (lossless and named readers)",
      rg_gating },
};

static void prom_reader_labels(const char *topic, uint32_t p, const part_snap *ps, uint32_t i);

/* Lag in seconds: a float, unlike the rest; absent when not known. */
static void prom_reader_lag_seconds(const stat_round *r)
{
    const snapshot *s = r->cur;
    bool head = false;
    for (size_t i = 0; i < s->n; i++) {
        const topic_snap *ts = &s->topics[i];
        for (uint32_t p = 0; ts->error == NULL && p < ts->nparts; p++)
            for (uint32_t k = 0; k < ts->parts[p].nreaders; k++) {
                double lag = lag_seconds(r, &ts->parts[p], prev_part(r, ts->ti.name, p),
                                         &ts->parts[p].readers[k]);
                if (isnan(lag))
                    continue;
                if (!head)
                    prom_head("evbus_reader_lag_seconds", "gauge",
                              "Age of the next event the reader will read");
                head = true;
                printf("evbus_reader_lag_seconds{");
                prom_reader_labels(ts->ti.name, p, &ts->parts[p], k);
                printf("} %.6f\n", lag);
            }
    }
}

/* Named consumers by their cursor files, open or closed: one series per
 * consumer whether a process has it open or not. */
static void prom_named(const snapshot *s)
{
    bool rhead = false;
    for (size_t i = 0; i < s->n; i++) {
        const topic_snap *ts = &s->topics[i];
        for (uint32_t p = 0; ts->error == NULL && p < ts->nparts; p++)
            for (uint32_t k = 0; k < ts->parts[p].nnamed; k++) {
                if (!rhead)
                    prom_head("evbus_consumer_readable", "gauge",
                              "1 when the named consumer's cursor file (and dedup table, "
                              "if any) could be read, 0 when damaged or unreadable (evbus "
                              "stat says why)");
                rhead = true;
                printf("evbus_consumer_readable{");
                prom_part_labels(ts->ti.name, p);
                prom_label("consumer", ts->parts[p].named[k].name, false);
                printf("} %d\n", !named_bad(&ts->parts[p].named[k]));
            }
    }
    static const char *const names[] = { "evbus_consumer_open", "evbus_consumer_lag_events",
                                         "evbus_consumer_lag_bytes",
                                         "evbus_consumer_committed_offset" };
    static const char *const helps[] = {
        "1 while a process has the named consumer open",
        "Events published after the named consumer's commit",
        "Log bytes published after the named consumer's commit",
        "Offset of the named consumer's commit (absent when nothing is committed)" };
    for (int m = 0; m < 4; m++) {
        bool head = false;
        for (size_t i = 0; i < s->n; i++) {
            const topic_snap *ts = &s->topics[i];
            for (uint32_t p = 0; ts->error == NULL && p < ts->nparts; p++)
                for (uint32_t k = 0; k < ts->parts[p].nnamed; k++) {
                    const evb_named_consumer_stat *nc = &ts->parts[p].named[k];
                    /* A damaged cursor file: evbus_consumer_readable 0 and
                     * no lag sample (unknown, not 0). */
                    if (named_damaged(nc) ||
                        (m == 3 && nc->committed_offset == UINT64_MAX))
                        continue;
                    uint64_t v = m == 0 ? !named_closed(nc) : m == 1 ? nc->lag_events
                                 : m == 2 ? nc->lag_bytes : nc->committed_offset;
                    if (!head)
                        prom_head(names[m], "gauge", helps[m]);
                    head = true;
                    printf("%s{", names[m]);
                    prom_part_labels(ts->ti.name, p);
                    prom_label("consumer", nc->name, false);
                    printf("} %llu\n", (unsigned long long)v);
                }
        }
    }
}

/* The labels of reader I of PS: two readers of one process with the same
 * kind and name (two subscribers, say) get "#2", "#3" after the name, so
 * every series has labels of its own. */
static void prom_reader_labels(const char *topic, uint32_t p, const part_snap *ps, uint32_t i)
{
    const struct evb_reader_stat *rs = &ps->readers[i];
    unsigned same = 1;
    for (uint32_t k = 0; k < i; k++) {
        const struct evb_reader_stat *o = &ps->readers[k];
        same += o->kind == rs->kind && o->pid == rs->pid && strcmp(o->name, rs->name) == 0;
    }
    char name[EVB_NAME_MAX + 16], pid[16];
    if (same > 1)
        snprintf(name, sizeof(name), "%s#%u", rs->name, same);
    else
        snprintf(name, sizeof(name), "%s", rs->name);
    snprintf(pid, sizeof(pid), "%u", rs->pid);
    prom_part_labels(topic, p);
    prom_label("kind", kind_name(rs->kind), false);
    prom_label("reader", name, false);
    prom_label("pid", pid, false);
}

/* What one producer metric reads out of a producer's snapshot. */
typedef uint64_t (*producer_get)(const evb_producer_stat *ps);
static uint64_t prg_published(const evb_producer_stat *s) { return s->published; }
static uint64_t prg_bytes(const evb_producer_stat *s) { return s->published_bytes; }
static uint64_t prg_backpressure(const evb_producer_stat *s) { return s->backpressure; }

static const struct prom_producer_metric {
    const char *name, *type, *help;
    producer_get get;
} prom_producer_metrics[] = {
    { "evbus_producer_published_events_total", "counter",
      "Events the producer committed to the partition since it attached", prg_published },
    { "evbus_producer_published_bytes_total", "counter",
      "Ring bytes of those events (frame headers and alignment included)", prg_bytes },
    { "evbus_producer_backpressure_waits_total", "counter",
      "Publishes that found the ring full, held by a reader or the flusher",
      prg_backpressure },
};

static void prom_producers(const snapshot *s)
{
    for (size_t m = 0; m < sizeof(prom_producer_metrics) / sizeof(prom_producer_metrics[0]);
         m++) {
        const struct prom_producer_metric *pm = &prom_producer_metrics[m];
        bool head = false;
        for (size_t i = 0; i < s->n; i++) {
            const topic_snap *ts = &s->topics[i];
            for (uint32_t p = 0; ts->error == NULL && p < ts->nparts; p++)
                for (uint32_t k = 0; k < ts->parts[p].nproducers; k++) {
                    const evb_producer_stat *ps = &ts->parts[p].producers[k];
                    char pid[16], id[16];
                    snprintf(pid, sizeof(pid), "%u", ps->pid);
                    snprintf(id, sizeof(id), "%u", ps->producer_id);
                    if (!head)
                        prom_head(pm->name, pm->type, pm->help);
                    head = true;
                    printf("%s{", pm->name);
                    prom_part_labels(ts->ti.name, p);
                    prom_label("producer_id", id, false);
                    prom_label("pid", pid, false);
                    prom_label("comm", ps->comm, false);
                    printf("} %llu\n", (unsigned long long)pm->get(ps));
                }
        }
    }
}

/* A topic's groups, read once per round for the Prometheus output (the
 * text and JSON outputs read each as they print it). */
typedef struct prom_group {
    char name[EVB_NAME_MAX + 1];
    int rc;              /* group_line_of()'s result */
    group_line g;
} prom_group;

typedef struct prom_groups {
    const char *topic;
    prom_group *v;
    size_t n;
    int err;
} prom_groups;

static int prom_collect_group(const char *group, void *arg)
{
    prom_groups *gs = arg;
    prom_group *grown = realloc(gs->v, (gs->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        gs->err = -ENOMEM;
        return 1;
    }
    gs->v = grown;
    prom_group *pg = &gs->v[gs->n++];
    snprintf(pg->name, sizeof(pg->name), "%s", group);
    pg->rc = group_line_of(gs->topic, group, &pg->g);
    /* Shown as evbus_group_readable 0; the exit status says so too, as
     * the text and JSON outputs do. */
    if (pg->rc < 0)
        note_bad_group(gs->topic, group);
    return 0;
}

/* What one group metric reads; KIND: 0 every group, else only groups of
 * that evb_reader_kind (a partition group has no backlog, a queue no lag
 * in events). */
typedef uint64_t (*group_get)(const group_line *g);
#define GROUP_FIELD(f)                                                             \
    static uint64_t gg_##f(const group_line *g) { return g->f; }
GROUP_FIELD(lag_events)
GROUP_FIELD(rejected)
GROUP_FIELD(backlog_bytes)
GROUP_FIELD(in_flight)
GROUP_FIELD(redelivered)
GROUP_FIELD(dead_lettered)
GROUP_FIELD(dlq_due)
static uint64_t gg_members(const group_line *g) { return g->sum.members; }
static uint64_t gg_expelled(const group_line *g) { return g->sum.expelled; }
static uint64_t gg_dlq_refusals(const group_line *g) { return g->sum.dlq_refusals; }

static const struct prom_group_metric {
    const char *name, *type, *help;
    group_get get;
    uint32_t kind;
} prom_group_metrics[] = {
    { "evbus_group_members", "gauge", "Members present in the group", gg_members, 0 },
    { "evbus_group_expelled_members_total", "counter",
      "Members expelled: dead, or silent past their lease", gg_expelled, 0 },
    { "evbus_group_lag_events", "gauge", "Published events the group has not committed",
      gg_lag_events, EVB_GROUP_MEMBER },
    { "evbus_group_rejected_events_total", "counter",
      "Events the group's members rejected to the dead-letter topic", gg_rejected,
      EVB_GROUP_MEMBER },
    { "evbus_group_backlog_bytes", "gauge", "Log bytes published and not taken yet",
      gg_backlog_bytes, EVB_QUEUE_MEMBER },
    { "evbus_group_in_flight_events", "gauge", "Events delivered and not acknowledged",
      gg_in_flight, EVB_QUEUE_MEMBER },
    { "evbus_group_redelivered_events_total", "counter", "Events delivered again",
      gg_redelivered, EVB_QUEUE_MEMBER },
    { "evbus_group_dead_lettered_events_total", "counter",
      "Events moved to the dead-letter topic", gg_dead_lettered, EVB_QUEUE_MEMBER },
    { "evbus_group_dlq_due_events", "gauge",
      "Events past max_deliveries whose dead-letter record is not written yet",
      gg_dlq_due, EVB_QUEUE_MEMBER },
    { "evbus_group_dlq_refusals_total", "counter",
      "Tries to dead-letter an event past max_deliveries that the dead-letter topic "
      "refused (each tried again every ack_wait)", gg_dlq_refusals, EVB_QUEUE_MEMBER },
};

static void prom_group_labels(const char *topic, const prom_group *pg)
{
    prom_label("topic", topic, true);
    prom_label("group", pg->name, false);
    prom_label("kind", pg->g.sum.kind == EVB_QUEUE_MEMBER ? "queue" : "partition", false);
}

static void prom_topics(const snapshot *s)
{
    prom_head("evbus_topic_readable", "gauge",
              "1 when the topic's counters could be read, 0 when it is damaged or "
              "unreadable (evbus stat says why)");
    for (size_t i = 0; i < s->n; i++) {
        printf("evbus_topic_readable{");
        prom_label("topic", s->topics[i].ti.name, true);
        printf("} %d\n", s->topics[i].error == NULL);
    }
    prom_head("evbus_topic_damaged", "gauge",
              "1 when the topic is damaged: unreadable, or readable with damage its last "
              "rebuild kept on disk (evbus stat says why)");
    for (size_t i = 0; i < s->n; i++) {
        printf("evbus_topic_damaged{");
        prom_label("topic", s->topics[i].ti.name, true);
        printf("} %d\n", s->topics[i].damaged || s->topics[i].damage != NULL);
    }
}

static void prom_parts(const snapshot *s)
{
    for (size_t m = 0; m < sizeof(prom_part_metrics) / sizeof(prom_part_metrics[0]); m++) {
        const struct prom_part_metric *pm = &prom_part_metrics[m];
        bool head = false;
        for (size_t i = 0; i < s->n; i++) {
            const topic_snap *ts = &s->topics[i];
            if (ts->error != NULL || (pm->durable && !is_durable(ts)))
                continue;
            for (uint32_t p = 0; p < ts->nparts; p++) {
                if (!head)
                    prom_head(pm->name, pm->type, pm->help);
                head = true;
                printf("%s{", pm->name);
                prom_part_labels(ts->ti.name, p);
                printf("} %llu\n", (unsigned long long)pm->get(&ts->parts[p]));
            }
        }
    }
}

static void prom_readers(const snapshot *s)
{
    for (size_t m = 0; m < sizeof(prom_reader_metrics) / sizeof(prom_reader_metrics[0]); m++) {
        const struct prom_reader_metric *rm = &prom_reader_metrics[m];
        bool head = false;
        for (size_t i = 0; i < s->n; i++) {
            const topic_snap *ts = &s->topics[i];
            for (uint32_t p = 0; ts->error == NULL && p < ts->nparts; p++)
                for (uint32_t k = 0; k < ts->parts[p].nreaders; k++) {
                    if (!head)
                        prom_head(rm->name, rm->type, rm->help);
                    head = true;
                    printf("%s{", rm->name);
                    prom_reader_labels(ts->ti.name, p, &ts->parts[p], k);
                    printf("} %llu\n",
                           (unsigned long long)rm->get(&ts->parts[p].readers[k]));
                }
        }
    }
}

static void prom_groups_print(const snapshot *s, const prom_groups *gs)
{
    bool head = false;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < gs[i].n; k++) {
            if (!head)
                prom_head("evbus_group_readable", "gauge",
                          "1 when the group's state could be read, 0 when not "
                          "(evbus groups says why)");
            head = true;
            printf("evbus_group_readable{");
            prom_label("topic", s->topics[i].ti.name, true);
            prom_label("group", gs[i].v[k].name, false);
            printf("} %d\n", gs[i].v[k].rc == 0);
        }
    for (size_t m = 0; m < sizeof(prom_group_metrics) / sizeof(prom_group_metrics[0]); m++) {
        const struct prom_group_metric *gm = &prom_group_metrics[m];
        head = false;
        for (size_t i = 0; i < s->n; i++)
            for (size_t k = 0; k < gs[i].n; k++) {
                const prom_group *pg = &gs[i].v[k];
                if (pg->rc != 0 || (gm->kind != 0 && pg->g.sum.kind != gm->kind))
                    continue;
                if (!head)
                    prom_head(gm->name, gm->type, gm->help);
                head = true;
                printf("%s{", gm->name);
                prom_group_labels(s->topics[i].ti.name, pg);
                printf("} %llu\n", (unsigned long long)gm->get(&pg->g));
            }
    }
}

static void prom_dlqs(const snapshot *s)
{
    bool head = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->topics[i].has_dlq)
            continue;
        if (!head)
            prom_head("evbus_dlq_events_total", "counter",
                      "Events put in the topic's dead-letter topic");
        head = true;
        printf("evbus_dlq_events_total{");
        prom_label("topic", s->topics[i].ti.name, true);
        printf("} %llu\n", (unsigned long long)s->topics[i].dlq_events);
    }
    head = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->topics[i].has_dlq || s->topics[i].dlq_state_error != NULL)
            continue;
        if (!head)
            prom_head("evbus_dlq_resubmitted_events_total", "counter",
                      "Events of the dead-letter topic resubmitted (absent when its "
                      "resubmit state is damaged)");
        head = true;
        printf("evbus_dlq_resubmitted_events_total{");
        prom_label("topic", s->topics[i].ti.name, true);
        printf("} %llu\n", (unsigned long long)s->topics[i].dlq_resubmitted);
    }
}

/* One round in the exposition format. Returns 0 or an exit code. */
static int prom_round(const cli *c, const stat_round *r)
{
    const snapshot *s = r->cur;
    prom_groups *gs = calloc(s->n ? s->n : 1, sizeof(*gs));
    if (gs == NULL)
        return cli_fail(c, -ENOMEM, "stat");
    int err = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->topics[i].error != NULL)
            continue;
        gs[i].topic = s->topics[i].ti.name;
        evb_group_list(stat_bus, gs[i].topic, prom_collect_group, &gs[i]);
        if (gs[i].err < 0)
            err = gs[i].err;
    }
    if (err == 0) {
        prom_topics(s);
        prom_parts(s);
        prom_producers(s);
        prom_readers(s);
        prom_reader_lag_seconds(r);
        prom_named(s);
        prom_groups_print(s, gs);
        prom_dlqs(s);
    }
    for (size_t i = 0; i < s->n; i++)
        free(gs[i].v);
    free(gs);
    return err == 0 ? 0 : cli_fail(c, err, "listing groups");
}

/* ---- command --------------------------------------------------------- */

static bool prometheus; /* --prometheus */

static int show(cli *c, const stat_round *r, bool redraw)
{
    if (prometheus)
        return prom_round(c, r);
    if (c->json)
        return cli_print_json(c, round_json(r));
    /* Home the cursor and clear, so --watch reads like top(1). */
    if (redraw && isatty(STDOUT_FILENO))
        fputs("\033[H\033[J", stdout);
    if (r->cur->n == 0)
        printf("no topics in %s\n", evb_bus_path(c->bus));
    for (size_t i = 0; i < r->cur->n; i++)
        print_topic(r, &r->cur->topics[i]);
    return 0;
}

/* Sleep SECS unless Ctrl-C comes first. */
static void nap(double secs)
{
    struct timespec ts = { .tv_sec = (time_t)secs };
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    /* nanosleep returns early with EINTR on a signal; that ends the wait. */
    nanosleep(&ts, NULL);
}

/* Named consumers of S whose cursor file could not be read, each once
 * (the file is the topic's, listed in every partition); *FIRST_TOPIC and
 * *FIRST the first of them. */
static size_t snap_bad_cursors(const snapshot *s, const topic_snap **first_topic,
                               const evb_named_consumer_stat **first)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const topic_snap *ts = &s->topics[i];
        if (ts->error != NULL || ts->nparts == 0)
            continue;
        for (uint32_t k = 0; k < ts->parts[0].nnamed; k++)
            if (named_bad(&ts->parts[0].named[k]) && n++ == 0) {
                *first_topic = ts;
                *first = &ts->parts[0].named[k];
            }
    }
    return n;
}

/* TS's first partition whose flusher failed, or NULL. */
static const part_snap *flush_failed(const topic_snap *ts)
{
    for (uint32_t p = 0; p < ts->nparts; p++)
        if (ts->parts[p].ps.flush_error)
            return &ts->parts[p];
    return NULL;
}

/* Topics that did not read, read with damage kept on disk, or have a
 * flusher that failed: how many, and the first in *FIRST. */
static size_t snap_unreadable(const snapshot *s, const topic_snap **first)
{
    size_t n = 0;
    for (size_t i = s->n; i-- > 0;)
        if (s->topics[i].error != NULL || s->topics[i].damage != NULL ||
            flush_failed(&s->topics[i])) {
            *first = &s->topics[i];
            n++;
        }
    return n;
}

static int stat_run(cli *c, const char *topic, double watch)
{
    snapshot snaps[2] = { 0 };
    int cur = 0, rc = 0;
    stat_bus = c->bus;
    size_t bad = 0, gbad = 0, cbad = 0;
    char first[EVB_NAME_MAX + 1] = "", why[1024] = "";
    char cfirst[2 * EVB_NAME_MAX + 2] = "", cwhy[128] = "";
    char gfirst[sizeof(bad_groups.first)] = "", gwhy[sizeof(bad_groups.why)] = "";
    for (int n = 0; rc == 0 && !cli_stop; n++) {
        rc = snap_take(c, topic, &snaps[cur]);
        if (rc != 0)
            break;
        const snapshot *prev = n > 0 ? &snaps[!cur] : NULL;
        stat_round r = { &snaps[cur], prev, prev ? snaps[cur].when - prev->when : 0 };
        const topic_snap *ts = NULL;
        bad = snap_unreadable(&snaps[cur], &ts);
        if (ts != NULL) {
            const part_snap *ff = flush_failed(ts);
            snprintf(first, sizeof(first), "%s", ts->ti.name);
            if (ts->error || ts->damage)
                snprintf(why, sizeof(why), "%s", ts->error ? ts->error : ts->damage);
            else
                snprintf(why, sizeof(why), "partition %u: its flusher failed: %s",
                         (unsigned)(ff - ts->parts), ff->flush_text);
        }
        const evb_named_consumer_stat *nc = NULL;
        cbad = snap_bad_cursors(&snaps[cur], &ts, &nc);
        if (nc != NULL) {
            snprintf(cfirst, sizeof(cfirst), "%s/%s", ts->ti.name, nc->name);
            snprintf(cwhy, sizeof(cwhy), "%s", named_why(nc));
        }
        bad_groups.n = 0;
        rc = show(c, &r, watch > 0);
        gbad = bad_groups.n;
        snprintf(gfirst, sizeof(gfirst), "%s", bad_groups.first);
        snprintf(gwhy, sizeof(gwhy), "%s", bad_groups.why);
        /* Output that cannot be written ends a watch; main() reports it. */
        if (watch <= 0 || fflush(stdout) != 0 || ferror(stdout))
            break;
        nap(watch);
        cur = !cur;
        snap_free(&snaps[cur]);
    }
    snap_free(&snaps[0]);
    snap_free(&snaps[1]);
    /* The rest was shown; the exit status still says not all of it. */
    if (rc == 0 && bad == 1)
        rc = cli_error(c, "topic %s: %s", first, why);
    else if (rc == 0 && bad > 1)
        rc = cli_error(c, "%zu topics could not be read, are damaged or failed to flush "
                       "(%s, ...): each shown with the reason", bad, first);
    else if (rc == 0 && gbad == 1)
        rc = cli_error(c, "group %s: %s", gfirst, gwhy);
    else if (rc == 0 && gbad > 1)
        rc = cli_error(c, "%zu group files could not be read (%s, ...): each shown as "
                       "unreadable with the reason", gbad, gfirst);
    else if (rc == 0 && cbad == 1)
        rc = cli_error(c, "consumer %s: %s", cfirst, cwhy);
    else if (rc == 0 && cbad > 1)
        rc = cli_error(c, "%zu named consumers' cursor files or dedup tables could not be "
                       "read (%s, ...): each shown as DAMAGED with the reason", cbad, cfirst);
    return rc;
}

int cmd_stat(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "watch", required_argument, NULL, OPT_WATCH },
        { "prometheus", no_argument, NULL, OPT_PROMETHEUS },
        { 0 },
    };
    cli c;
    double watch = 0;
    int opt;
    cli_begin(&c, "stat", stat_usage);
    while ((opt = cli_getopt(&c, argc, argv, "", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_PROMETHEUS)
            prometheus = true;
        if (opt == OPT_WATCH &&
            util_parse_seconds(optarg, STAT_WATCH_MIN_S, STAT_WATCH_MAX_S, &watch) < 0)
            return cli_usage_error(&c, "--watch '%s': not a number of seconds from %.2f to %.0f",
                                   optarg, STAT_WATCH_MIN_S, STAT_WATCH_MAX_S);
    }
    if (argc - optind > 1)
        return cli_usage_error(&c, "unexpected argument '%s'", argv[optind + 1]);
    if (prometheus && c.json)
        return cli_usage_error(&c, "--json and --prometheus: choose one");
    const char *topic = optind < argc ? argv[optind] : NULL;
    int rc = cli_open_bus(&c, CLI_BUS_EXISTING);
    if (rc != 0)
        return rc;
    cli_catch_signals();
    rc = stat_run(&c, topic, watch);
    cli_close(&c);
    return rc;
}
