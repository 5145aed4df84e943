/*
 * bench.h - what the parts of `evbus bench` share: the options of a run
 * (cmd_bench.c parses them), running one value size with producer and
 * consumer processes (bench_run.c), and the plot (bench_plot.c).
 */
#ifndef EVBUS_BENCH_H
#define EVBUS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "hist.h"

#define BENCH_MAX_SIZES 16
/* A ring has EVB_RING_PRODUCERS producer and EVB_RING_READERS reader
 * slots; a bench uses at most that many processes of each side. */
#define BENCH_MAX_PROCS 64
/* Bytes at the start of each value the bench uses: send time, producer
 * and sequence. */
#define BENCH_HEADER_BYTES 16

enum bench_reader { BENCH_SUBSCRIBER, BENCH_LOSSLESS, BENCH_CONSUMER, BENCH_GROUP, BENCH_QUEUE };
enum bench_path { BENCH_SINGLE, BENCH_BATCH, BENCH_CLAIM };

typedef struct bench_cfg {
    uint32_t producers, consumers, partitions;
    uint32_t reader;          /* enum bench_reader */
    uint32_t path;            /* enum bench_path */
    uint32_t batch;           /* events per evb_publish_batch */
    uint32_t durability;      /* enum evb_durability */
    uint64_t ring_bytes;
    uint64_t sizes[BENCH_MAX_SIZES];
    uint32_t nsizes;
    double duration_s;        /* timed length; 0 when events is given */
    uint64_t events;          /* timed events over all producers; 0: by duration */
    double warmup_s;
    double rate;              /* events/s over all producers; 0: as fast as they go */
    bool pin;                 /* --pin: one CPU per process */
    bool pin_auto;            /* --pin auto: those CPUs near the topic's node
                                 (evb_cpus_near) rather than the first ones */
    uint32_t numa_node;       /* evb_topic_config.numa_node of the topic */
    uint32_t huge_pages;      /* evb_topic_config.huge_pages of the topic */
    bool exclusive;           /* the one producer is EVB_PRODUCER_EXCLUSIVE */
    bool keep;
    bool progress;            /* a live line on stderr (a terminal) */
    const char *plot;         /* PNG path or NULL */
} bench_cfg;

/* Throughput sampled by the parent while a run goes. */
typedef struct bench_point {
    double t_s;               /* since the producers started */
    double in_eps, out_eps;   /* events/s published, delivered */
} bench_point;

typedef struct bench_result {
    uint64_t value_bytes;
    char topic[EVB_NAME_MAX + 1];
    char cpus[256];           /* where the processes ran (and, with
                                 --numa-node or --huge-pages, the ring) */
    /* The timed window: events and seconds, in (published) and out
     * (delivered, over all consumers). */
    uint64_t timed_in, timed_out;
    double window_in_s, window_out_s;
    /* Whole run, warm-up and drain included. */
    uint64_t published, delivered, lost, bad, redelivered;
    uint32_t fanout;          /* deliveries each event should get */
    bool interrupted;         /* Ctrl-C: stopped early */
    hist lat;                 /* publish-to-consume latency, ns, merged */
    bench_point *series;      /* malloc'd */
    size_t nseries;
} bench_result;

/* Run CFG once with values of VALUE_BYTES on C's bus into R (caller's
 * memory; R->series is malloc'd). Returns 0 or CLI_FAIL, reported. */
int bench_run(cli *c, const bench_cfg *cfg, uint64_t value_bytes, bench_result *r);

/* Draw R[0..N) into cfg->plot with gnuplot. Returns 0 or CLI_FAIL. */
int bench_plot(const cli *c, const bench_cfg *cfg, const bench_result *r, size_t n);

/* Whether gnuplot can be run (found in PATH). */
bool bench_have_gnuplot(void);

const char *bench_reader_name(uint32_t reader);
const char *bench_path_name(uint32_t path);

#endif /* EVBUS_BENCH_H */
