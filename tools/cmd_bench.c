/*
 * cmd_bench.c - evbus bench: measure publish and delivery rates and
 * publish-to-consume latency on this host, on a private topic. This file
 * reads the options and prints the results (table, JSON); bench_run.c runs
 * the processes, bench_plot.c draws, hist.c keeps the latencies.
 */
#include "bench.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char bench_usage[] =
    "usage: evbus bench [OPTIONS]\n"
    "\n"
    "Measure this host: producer processes publish to a private topic\n"
    "(bench-PID-SIZE, created on the bus and deleted at the end) and consumer\n"
    "processes read it. Prints events/s and MB/s published (in) and delivered\n"
    "(out) over the timed window, publish-to-consume latency percentiles, and\n"
    "the events lost; with a live progress line on a terminal.\n"
    "\n"
    "  --producers N      producer processes, 1..64 (default 1)\n"
    "  --consumers N      consumer processes, 0..64 (default 1)\n"
    "  --reader KIND      what the consumers are (default lossless):\n"
    "                     subscriber  lossy: never slows producers, counts what\n"
    "                                 it loses when lapped\n"
    "                     lossless    a subscriber producers wait for\n"
    "                     consumer    a named consumer each (committing every 4096)\n"
    "                     group       members of one partition group (each event\n"
    "                                 goes to one member; commits every 4096)\n"
    "                     queue       members of one queue group (each event goes\n"
    "                                 to one member and is acknowledged)\n"
    "  --partitions P     partitions of the topic, 1..256 (default 1); producers\n"
    "                     spread events round-robin\n"
    "  --value-bytes LIST value size, or sizes run one after the other, comma\n"
    "                     separated: 64,1K,64K (default 64). Each at least 16\n"
    "                     (send time and sequence) and at most ring/4 - 64\n"
    "  --duration S       timed seconds per size, fractions allowed (default 5)\n"
    "  --events N         instead: N timed events per size over all producers\n"
    "  --warmup S         seconds of publishing before the timed window, not\n"
    "                     counted (default 0.5)\n"
    "  --durability MODE  none (ring only, default), async (written to disk,\n"
    "                     fdatasync every 200 ms) or sync (every publish call\n"
    "                     waits for its fdatasync: EVB_MSG_SYNC)\n"
    "  --path PATH        how producers publish (default batch): single\n"
    "                     (evb_publish), batch (evb_publish_batch of --batch),\n"
    "                     claim (evb_claim, fill the value in place, evb_commit)\n"
    "  --batch N          events per batch, 1..4096 (default 32)\n"
    "  --ring-bytes SIZE  ring per partition, a power of two, 64K..16G (default\n"
    "                     8M, as perf/bench_throughput)\n"
    ;

/* The rest of the help: ISO C promises string literals of 4095 bytes, and
 * -Wpedantic holds us to it, so the text is two and joined at run time. */
static const char bench_usage_rest[] =
    "  --exclusive        the one producer is EVB_PRODUCER_EXCLUSIVE\n"
    "  --pin [auto]       pin each process to one CPU: producers to the first\n"
    "                     CPUs this process may use, consumers to the next ones\n"
    "                     (shared when more processes than CPUs); auto: CPUs\n"
    "                     of the topic's NUMA node, a core each first\n"
    "  --numa-node N, --huge-pages[=strict]\n"
    "                     as evbus create's, for the topic\n"
    "  --rate EV/S        publish at this rate over all producers instead of as\n"
    "                     fast as possible, 1..1e9 (100000 or 1e5). Latency is\n"
    "                     timed from when each event was due, not when it was\n"
    "                     sent, so a stall shows in the latency of every event\n"
    "                     behind it (with --path batch an event waits for its\n"
    "                     batch to be due: --path single times each event alone)\n"
    "  --json             print one JSON object (fields in README.md, \"evbus\n"
    "                     bench\") instead of the table; on a failure too, with\n"
    "                     its \"error\" (not on a bad option, exit 2)\n"
    "  --plot FILE.png    draw latency by percentile and throughput over time\n"
    "                     with gnuplot (Debian: gnuplot-nox), one line per size\n"
    "  --keep             keep the topic(s) after the run\n"
    CLI_BUS_HELP
    "\n"
    "Latency is from a CLOCK_MONOTONIC time the producer writes into the value\n"
    "to the consumer's clock when the event is handed to it. Every value is\n"
    "checked (a checksum of all its bytes). The bus is created when missing.\n"
    "Exit 1 when a check fails: a damaged value, or a lossless reader that\n"
    "did not get every event. Ctrl-C or SIGTERM ends it early: what ran is\n"
    "reported (interrupted), the topic removed, exit 130 (SIGTERM 143, SIGHUP 129).\n";

enum { OPT_PRODUCERS = CLI_OPT_FIRST, OPT_CONSUMERS, OPT_READER, OPT_PARTITIONS, OPT_VALUE,
       OPT_DURATION, OPT_EVENTS, OPT_WARMUP, OPT_DURABILITY, OPT_PATH, OPT_BATCH, OPT_RING,
       OPT_PIN, OPT_RATE, OPT_PLOT, OPT_KEEP, OPT_NUMA_NODE, OPT_HUGE_PAGES,
       OPT_EXCLUSIVE };

static const char *const reader_names[] = { "subscriber", "lossless", "consumer", "group",
                                            "queue" };
static const char *const path_names[] = { "single", "batch", "claim" };
static const char *const durability_names[] = { "none", "async", "sync" };

const char *bench_reader_name(uint32_t reader)
{
    return reader < 5 ? reader_names[reader] : "?";
}

const char *bench_path_name(uint32_t path)
{
    return path < 3 ? path_names[path] : "?";
}

static int pick(const cli *c, const char *opt, const char *text, const char *const *names,
                uint32_t n, uint32_t *out)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    for (uint32_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 names[i]);
    return cli_usage_error(c, "%s '%s': not one of %s", opt, text, list);
}

static int parse_sizes(const cli *c, const char *text, bench_cfg *cfg)
{
    char buf[512];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return cli_usage_error(c, "--value-bytes: list too long");
    cfg->nsizes = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (cfg->nsizes == BENCH_MAX_SIZES)
            return cli_usage_error(c, "--value-bytes: at most %d sizes", BENCH_MAX_SIZES);
        int rc = cli_opt_size(c, "--value-bytes", t, BENCH_HEADER_BYTES, 1u << 30,
                              &cfg->sizes[cfg->nsizes]);
        if (rc)
            return rc;
        cfg->nsizes++;
    }
    if (cfg->nsizes == 0 || text[0] == ',' || text[strlen(text) - 1] == ',' ||
        strstr(text, ",,"))
        return cli_usage_error(c, "--value-bytes '%s': not a comma separated list of sizes",
                               text);
    return 0;
}

static int seconds(const cli *c, const char *opt, const char *text, double min, double *out)
{
    if (util_parse_seconds(text, min, 86400, out) < 0)
        return cli_usage_error(c, "%s '%s': not a number of seconds from %g to 86400", opt,
                               text, min);
    return 0;
}

/* Most events/s --rate takes over all producers. */
#define RATE_MAX 1e9

/* --rate EV/S: a decimal number (100000, 1e5, 2.5e5) from 1 to RATE_MAX.
 * One that reads as a number but lies outside (1e30, 0.5) is said to be
 * out of range, with the range, not "not a number". */
static int parse_rate(const cli *c, const char *text, double *out)
{
    char *end = NULL;
    double v = 0;
    errno = 0;
    /* Decimal only, as --duration: strtod also takes hex, inf and nan. */
    if ((isdigit((unsigned char)text[0]) || text[0] == '.') && !strpbrk(text, "xXpP"))
        v = strtod(text, &end);
    if (end == NULL || end == text || *end != '\0')
        return cli_usage_error(c, "--rate '%s': not a number of events/s", text);
    if (errno == ERANGE || !(v >= 1 && v <= RATE_MAX))
        return cli_usage_error(c, "--rate '%s': out of range 1..%.0f events/s", text, RATE_MAX);
    *out = v;
    return 0;
}

/* Parse bench's options into CFG; returns 0 or an exit code. */
static int bench_options(cli *c, bench_cfg *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "producers", required_argument, NULL, OPT_PRODUCERS },
        { "consumers", required_argument, NULL, OPT_CONSUMERS },
        { "reader", required_argument, NULL, OPT_READER },
        { "partitions", required_argument, NULL, OPT_PARTITIONS },
        { "value-bytes", required_argument, NULL, OPT_VALUE },
        { "duration", required_argument, NULL, OPT_DURATION },
        { "events", required_argument, NULL, OPT_EVENTS },
        { "warmup", required_argument, NULL, OPT_WARMUP },
        { "durability", required_argument, NULL, OPT_DURABILITY },
        { "path", required_argument, NULL, OPT_PATH },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "ring-bytes", required_argument, NULL, OPT_RING },
        { "pin", optional_argument, NULL, OPT_PIN },
        { "numa-node", required_argument, NULL, OPT_NUMA_NODE },
        { "huge-pages", optional_argument, NULL, OPT_HUGE_PAGES },
        { "rate", required_argument, NULL, OPT_RATE },
        { "plot", required_argument, NULL, OPT_PLOT },
        { "keep", no_argument, NULL, OPT_KEEP },
        { "exclusive", no_argument, NULL, OPT_EXCLUSIVE },
        { 0 },
    };
    *cfg = (bench_cfg){ .producers = 1, .consumers = 1, .partitions = 1,
                        .reader = BENCH_LOSSLESS, .path = BENCH_BATCH, .batch = 32,
                        .ring_bytes = 8u << 20, .sizes = { 64 }, .nsizes = 1,
                        .duration_s = 5, .warmup_s = 0.5 };
    bool has_duration = false;
    uint64_t v;
    int opt;
    while ((opt = cli_getopt(c, argc, argv, "", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        int rc = 0;
        switch (opt) {
        case OPT_PRODUCERS:
            rc = cli_opt_u64(c, "--producers", optarg, 1, BENCH_MAX_PROCS, &v);
            cfg->producers = (uint32_t)v;
            break;
        case OPT_CONSUMERS:
            rc = cli_opt_u64(c, "--consumers", optarg, 0, BENCH_MAX_PROCS, &v);
            cfg->consumers = (uint32_t)v;
            break;
        case OPT_PARTITIONS:
            rc = cli_opt_u64(c, "--partitions", optarg, 1, EVB_MAX_PARTITIONS, &v);
            cfg->partitions = (uint32_t)v;
            break;
        case OPT_BATCH:
            rc = cli_opt_u64(c, "--batch", optarg, 1, 4096, &v);
            cfg->batch = (uint32_t)v;
            break;
        case OPT_EVENTS:
            rc = cli_opt_u64(c, "--events", optarg, 1, UINT64_MAX / 2, &cfg->events);
            break;
        case OPT_RATE:
            rc = parse_rate(c, optarg, &cfg->rate);
            break;
        case OPT_RING:
            rc = cli_opt_size(c, "--ring-bytes", optarg, CLI_RING_MIN, CLI_RING_MAX,
                              &cfg->ring_bytes);
            if (!rc && (cfg->ring_bytes & (cfg->ring_bytes - 1)))
                rc = cli_usage_error(c, "--ring-bytes '%s': not a power of two", optarg);
            break;
        case OPT_READER:
            rc = pick(c, "--reader", optarg, reader_names, 5, &cfg->reader);
            break;
        case OPT_PATH:
            rc = pick(c, "--path", optarg, path_names, 3, &cfg->path);
            break;
        case OPT_DURABILITY:
            rc = pick(c, "--durability", optarg, durability_names, 3, &cfg->durability);
            break;
        case OPT_VALUE:
            rc = parse_sizes(c, optarg, cfg);
            break;
        case OPT_DURATION:
            rc = seconds(c, "--duration", optarg, 0.01, &cfg->duration_s);
            has_duration = true;
            break;
        case OPT_WARMUP:
            rc = seconds(c, "--warmup", optarg, 0, &cfg->warmup_s);
            break;
        case OPT_PIN:
            /* "--pin auto" as well as "--pin=auto": bench takes no
             * operand, so a following "auto" can only be the pin's. */
            if (!optarg && optind < argc && !strcmp(argv[optind], "auto"))
                optarg = argv[optind++];
            cfg->pin = true;
            if (optarg && strcmp(optarg, "auto"))
                rc = cli_usage_error(c, "--pin %s: the only value is auto", optarg);
            cfg->pin_auto = optarg != NULL;
            break;
        case OPT_NUMA_NODE: {
            uint64_t v;
            rc = cli_opt_u64(c, "--numa-node", optarg, 0, 1023, &v);
            cfg->numa_node = EVB_NUMA_NODE(v);
            break;
        }
        case OPT_HUGE_PAGES:
            rc = cli_opt_huge_pages(c, optarg, &cfg->huge_pages);
            break;
        case OPT_PLOT:
            if (!optarg[0])
                rc = cli_usage_error(c, "--plot: empty file name");
            cfg->plot = optarg;
            break;
        case OPT_KEEP:
            cfg->keep = true;
            break;
        case OPT_EXCLUSIVE:
            cfg->exclusive = true;
            break;
        default:
            rc = cli_usage_error(c, "unknown option");
        }
        if (rc)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if (has_duration && cfg->events)
        return cli_usage_error(c, "--duration and --events: give one");
    if (cfg->events)
        cfg->duration_s = 0;
    for (uint32_t i = 0; i < cfg->nsizes; i++)
        if (cfg->sizes[i] > cfg->ring_bytes / 4 - 64)
            return cli_usage_error(c, "--value-bytes %" PRIu64 ": larger than a ring of %" PRIu64
                                   " bytes takes (ring/4 - 64); raise --ring-bytes",
                                   cfg->sizes[i], cfg->ring_bytes);
    if (cfg->batch != 32 && cfg->path != BENCH_BATCH)
        return cli_usage_error(c, "--batch needs --path batch");
    if (cfg->exclusive && cfg->producers != 1)
        return cli_usage_error(c, "--exclusive: one producer is the topic's only one; "
                               "give --producers 1");
    return 0;
}

/* ---- output ------------------------------------------------------------- */

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static void fmt_us(uint64_t ns, char *out, size_t cap)
{
    double v = us(ns);
    snprintf(out, cap, v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
}

static void fmt_eps(double v, char *out, size_t cap)
{
    if (v >= 1e6)
        snprintf(out, cap, "%.3f M", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, cap, "%.2f k", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

static double rate_of(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

/* Whether R's counts are what its reader kind promises. */
static const char *check_counts(const bench_cfg *cfg, const bench_result *r)
{
    if (r->bad)
        return "values failed their checksum";
    uint64_t expected = r->published * r->fanout;
    switch (cfg->reader) {
    case BENCH_SUBSCRIBER:
        return r->delivered + r->lost < expected ? "events neither delivered nor reported lost"
                                                 : NULL;
    case BENCH_GROUP:
    case BENCH_QUEUE:
        return r->delivered - r->redelivered < expected ? "events not delivered" : NULL;
    default:
        return r->delivered != expected || r->lost ? "a lossless reader did not get every event"
                                                   : NULL;
    }
}

static void print_header(const bench_cfg *cfg, const bench_result *r)
{
    char ring[32];
    util_fmt_size(cfg->ring_bytes, ring, sizeof(ring));
    printf("evbus bench: %u producer%s, %u consumer%s (%s), %u partition%s, path %s",
           cfg->producers, cfg->producers == 1 ? "" : "s", cfg->consumers,
           cfg->consumers == 1 ? "" : "s", bench_reader_name(cfg->reader), cfg->partitions,
           cfg->partitions == 1 ? "" : "s", bench_path_name(cfg->path));
    if (cfg->path == BENCH_BATCH)
        printf(" of %u", cfg->batch);
    printf(", durability %s, ring %s\n", cli_durability_name(cfg->durability), ring);
    if (cfg->events)
        printf("  %" PRIu64 " timed events", cfg->events);
    else
        printf("  %.2f s timed", cfg->duration_s);
    printf(" after %.2f s warm-up; ", cfg->warmup_s);
    if (cfg->rate > 0)
        printf("rate %.0f events/s; ", cfg->rate);
    else
        printf("as fast as possible; ");
    printf("%s\n\n", r->cpus);
    /* The unit on a line of its own: "µs" is two bytes in one column,
     * which printf's widths would count as two. */
    printf("%57s%s\n", "", "latency (µs)");
    printf("%-10s %11s %9s %11s %9s  %8s %8s %8s %8s %8s %8s\n", "value", "in ev/s", "in MB/s",
           "out ev/s", "out MB/s", "p50", "p90", "p99", "p99.9", "max", "lost");
}

static void print_row(const bench_result *r)
{
    char size[32], ein[32], eout[32], l[5][16];
    util_fmt_size(r->value_bytes, size, sizeof(size));
    double in = rate_of(r->timed_in, r->window_in_s);
    double out = rate_of(r->timed_out, r->window_out_s);
    fmt_eps(in, ein, sizeof(ein));
    fmt_eps(out, eout, sizeof(eout));
    static const double pct[4] = { 50, 90, 99, 99.9 };
    for (int i = 0; i < 4; i++)
        fmt_us(hist_percentile(&r->lat, pct[i]), l[i], sizeof(l[i]));
    fmt_us(r->lat.count ? r->lat.max : 0, l[4], sizeof(l[4]));
    printf("%-10s %11s %9.1f %11s %9.1f  %8s %8s %8s %8s %8s %8" PRIu64 "\n", size, ein,
           in * (double)r->value_bytes / 1e6, eout, out * (double)r->value_bytes / 1e6, l[0],
           l[1], l[2], l[3], l[4], r->lost);
}

static void print_counts(const bench_result *r)
{
    char size[32];
    util_fmt_size(r->value_bytes, size, sizeof(size));
    printf("%-10s published %" PRIu64 ", delivered %" PRIu64 " (%u cop%s each), lost %" PRIu64
           ", redelivered %" PRIu64 ", bad %" PRIu64 ", latency samples %" PRIu64 "%s\n",
           size, r->published, r->delivered, r->fanout, r->fanout == 1 ? "y" : "ies", r->lost,
           r->redelivered, r->bad, r->lat.count, r->interrupted ? " (interrupted)" : "");
}

static json_t *side_json(uint64_t n, double s, uint64_t bytes)
{
    double eps = rate_of(n, s);
    return json_pack("{s:o, s:f, s:f, s:f}", "events", cli_json_u64(n), "seconds", s,
                     "events_per_s", eps, "mb_per_s", eps * (double)bytes / 1e6);
}

static json_t *result_json(const bench_cfg *cfg, const bench_result *r)
{
    const hist *h = &r->lat;
    json_t *lat = json_pack("{s:o, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                            "samples", cli_json_u64(h->count),
                            "min", h->count ? us(h->min) : 0.0,
                            "mean", h->count ? h->sum / (double)h->count / 1e3 : 0.0,
                            "p50", us(hist_percentile(h, 50)), "p90", us(hist_percentile(h, 90)),
                            "p99", us(hist_percentile(h, 99)),
                            "p999", us(hist_percentile(h, 99.9)),
                            "max", h->count ? us(h->max) : 0.0);
    json_t *series = json_array();
    for (size_t i = 0; series && i < r->nseries; i++)
        json_array_append_new(series, json_pack("{s:f, s:f, s:f}", "t", r->series[i].t_s,
                                                "in", r->series[i].in_eps,
                                                "out", r->series[i].out_eps));
    const char *why = check_counts(cfg, r);
    return json_pack("{s:o, s:s, s:b, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:b, "
                     "s:o, s:o, s:o}",
                     "value_bytes", cli_json_u64(r->value_bytes), "topic", r->topic,
                     "kept", cfg->keep,
                     "in", side_json(r->timed_in, r->window_in_s, r->value_bytes),
                     "out", side_json(r->timed_out, r->window_out_s, r->value_bytes),
                     "published", cli_json_u64(r->published),
                     "delivered", cli_json_u64(r->delivered),
                     "fanout", (json_int_t)r->fanout,
                     "expected", cli_json_u64(r->published * r->fanout),
                     "lost", cli_json_u64(r->lost), "redelivered", cli_json_u64(r->redelivered),
                     "bad", cli_json_u64(r->bad),
                     "check", why ? json_string(why) : json_null(),
                     "interrupted", r->interrupted,
                     "latency_us", lat, "series", series, "cpus", json_string(r->cpus));
}

static json_t *config_json(const bench_cfg *cfg)
{
    return json_pack("{s:I, s:I, s:s, s:I, s:s, s:I, s:s, s:I, s:o, s:o, s:f, s:o, s:b, s:b, s:b}",
                     "producers", (json_int_t)cfg->producers,
                     "consumers", (json_int_t)cfg->consumers,
                     "reader", bench_reader_name(cfg->reader),
                     "partitions", (json_int_t)cfg->partitions,
                     "path", bench_path_name(cfg->path), "batch", (json_int_t)cfg->batch,
                     "durability", cli_durability_name(cfg->durability),
                     "ring_bytes", (json_int_t)cfg->ring_bytes,
                     "duration_s", cfg->events ? json_null() : json_real(cfg->duration_s),
                     "events", cfg->events ? cli_json_u64(cfg->events) : json_null(),
                     "warmup_s", cfg->warmup_s,
                     "rate", cfg->rate > 0 ? json_real(cfg->rate) : json_null(),
                     "pin", cfg->pin, "pin_auto", cfg->pin_auto,
                     "exclusive", cfg->exclusive);
}

/* --json's object, on every exit but a usage error (exit 2), so that a
 * script reading stdout always gets one: the runs that finished, and
 * "error", null when the exit status RC is 0, else the line stderr got
 * and, when the run of one size failed (FAILED), what its processes had
 * counted by then. Returns 0 or CLI_FAIL (reported). */
static int print_json(cli *c, const bench_cfg *cfg, const bench_result *res, uint32_t done,
                      const bench_result *failed, int rc)
{
    json_t *all = json_array();
    for (uint32_t i = 0; all && i < done; i++)
        json_array_append_new(all, result_json(cfg, &res[i]));
    json_t *error = json_null();
    if (rc != 0 && failed)
        error = json_pack("{s:o, s:o, s:s, s:o, s:o}", "message",
                          cli_json_text(cli_last_message()),
                          "value_bytes", cli_json_u64(failed->value_bytes),
                          "topic", failed->topic, "published", cli_json_u64(failed->published),
                          "delivered", cli_json_u64(failed->delivered));
    else if (rc != 0)
        error = json_pack("{s:o}", "message", cli_json_text(cli_last_message()));
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o}", "command", "bench",
                          "bus", c->bus ? cli_json_text(evb_bus_path(c->bus)) : json_null(),
                          "config", config_json(cfg), "results", all, "error", error);
    return cli_print_json(c, o);
}

int cmd_bench(int argc, char **argv)
{
    cli c;
    bench_cfg cfg;
    static char usage[sizeof bench_usage + sizeof bench_usage_rest];
    snprintf(usage, sizeof usage, "%s%s", bench_usage, bench_usage_rest);
    cli_begin(&c, "bench", usage);
    int rc = bench_options(&c, &cfg, argc, argv);
    if (rc)
        return rc;
    if (cfg.plot && !bench_have_gnuplot())
        rc = cli_error(&c, "--plot: gnuplot not found in PATH (Debian: apt-get install "
                       "gnuplot-nox)");
    if (!rc && cfg.plot) {
        /* Its directory must take the file: found out now, not after the
         * whole run. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", cfg.plot);
        char *slash = strrchr(dir, '/');
        const char *d = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
        if (access(d, W_OK | X_OK) != 0)
            rc = cli_error(&c, "--plot %s: cannot write in directory %s: %s", cfg.plot, d,
                           strerror(errno));
    }
    cfg.progress = fileno(stderr) >= 0 && isatty(fileno(stderr));
    if (!rc)
        rc = cli_open_bus(&c, CLI_BUS_CREATE);
    bench_result *res = NULL;
    if (!rc && (res = calloc(cfg.nsizes, sizeof(*res))) == NULL)
        rc = cli_error(&c, "out of memory");
    if (rc) {
        if (c.json)
            print_json(&c, &cfg, NULL, 0, NULL, rc);
        cli_close(&c);
        return rc;
    }
    cli_catch_signals();
    uint32_t done = 0;
    for (; done < cfg.nsizes && !cli_stop; done++) {
        if ((rc = bench_run(&c, &cfg, cfg.sizes[done], &res[done])) != 0)
            break;
        if (!c.json && done == 0)
            print_header(&cfg, &res[0]);
        if (!c.json) {
            print_row(&res[done]);
            fflush(stdout);
        }
    }
    /* The size whose run failed, if one did: its counts so far. */
    const bench_result *failed = rc != 0 ? &res[done] : NULL;
    const char *why = NULL;
    if (done > 0 && !c.json) {
        printf("\n");
        for (uint32_t i = 0; i < done; i++)
            print_counts(&res[i]);
        if (cfg.keep)
            for (uint32_t i = 0; i < done; i++)
                printf("kept topic %s\n", res[i].topic);
    }
    for (uint32_t i = 0; i < done && !why; i++)
        why = check_counts(&cfg, &res[i]);
    if (rc == 0 && done == 0)
        rc = cli_error(&c, "interrupted before a run finished");
    if (rc == 0 && why)
        rc = cli_error(&c, "check failed: %s", why);
    if (rc == 0 && done > 0 && cfg.plot)
        rc = bench_plot(&c, &cfg, res, done);
    /* Cut short by Ctrl-C or SIGTERM: what ran is reported and cleaned up
     * above, and the status still tells a script (`bench ... || fail`)
     * that the run was not the one asked for, as a shell does: 128 + SIG. */
    if (cli_stop && rc == 0)
        cli_error(&c, "interrupted by %s: the report covers what ran",
                  cli_stop == SIGTERM ? "SIGTERM" : cli_stop == SIGHUP ? "SIGHUP" : "SIGINT");
    if (cli_stop && (rc == 0 || done == 0))
        rc = 128 + cli_stop;
    if (c.json && print_json(&c, &cfg, res, done, failed, rc) != 0 && rc == 0)
        rc = CLI_FAIL;
    for (uint32_t i = 0; i < cfg.nsizes; i++)
        free(res[i].series);
    free(res);
    cli_close(&c);
    return rc;
}
