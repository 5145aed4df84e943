/*
 * bench_throughput.c - one producer process -> one consumer process.
 *
 * Measures, in the same run and on the same pinned cores:
 *   evbus    a private bus in a temp dir under /dev/shm, one 1-partition
 *            topic per run; the producer uses evb_publish_batch (batch),
 *            evb_publish (single) or evb_claim/evb_commit (claim), block_ms
 *            -1; the consumer is an EVB_SUBSCRIBER_LOSSLESS with
 *            EVB_IDLE_SPIN reading through evb_consumer_poll;
 *   ring     a minimal fixed-slot SPSC ring in MAP_SHARED anonymous memory
 *            (slots of exactly the value size, head and tail on separate
 *            128-byte lines, acquire/release, no headers), publishing head
 *            and tail per event ("spsc-ring") or per --batch events, the
 *            consumer releasing per available run of at most 256, as
 *            evb_consumer_poll does ("spsc-ring-b");
 *   memcpy   one thread copying value-sized chunks into a ring-sized buffer;
 *   huge     with --huge-pages, each evbus path again on a topic whose ring
 *            is in huge pages (EVB_HUGE_PAGES_STRICT: a run that gets none
 *            fails rather than measure normal pages), interleaved with the
 *            normal one and reported as per-run ratios to it. The bus must
 *            then be on a tmpfs mounted huge=advise (--shm-dir).
 *
 * With --producers N (evbus paths), N producer processes share the
 * producer CPU and publish into the one partition, each its own sequence;
 * the consumer's rate is of all of them (N -> 1).
 *
 * Every value carries its sequence number (word 0) and an end flag and its
 * producer's index (word 1: flag | index << 32); the rest is a fixed pseudo-random pattern whose 64-bit word sum is
 * known, so the consumer reads every byte, checks the sum and checks that
 * sequence numbers arrive in order with none missing. Throughput is taken
 * on the consumer between the first timed event (after a warm-up of at
 * least two ring laps) and the end event.
 *
 * Results: median/min/max over --runs runs, events/s and MB/s (value bytes,
 * 10^6), evbus as ratios to the bare ring (events/s) and memcpy (MB/s).
 */
#include "bench_util.h"

#include <getopt.h>

enum impl {
    IMPL_MEMCPY,
    IMPL_RING,
    IMPL_RING_BATCH,
    IMPL_EVB_BATCH,
    IMPL_EVB_SINGLE,
    IMPL_EVB_CLAIM,
    IMPL_EVB_BATCH_HUGE, /* the three above, rings in huge pages */
    IMPL_EVB_SINGLE_HUGE,
    IMPL_EVB_CLAIM_HUGE,
    IMPL_COUNT
};
#define IMPL_HUGE_SHIFT (IMPL_EVB_BATCH_HUGE - IMPL_EVB_BATCH)
#define IMPLS_PLAIN ((1u << IMPL_EVB_BATCH_HUGE) - 1) /* "all": no huge pages */

static const char *const impl_name[IMPL_COUNT] = {
    "memcpy", "spsc-ring", "spsc-ring-b", "evbus-batch", "evbus-single", "evbus-claim",
    "evbus-batch-hp", "evbus-single-hp", "evbus-claim-hp",
};

#define MAX_SIZES 8
#define MAX_RUNS 64
#define MAX_PRODUCERS 8
#define FLAG_END 1u
#define PRODUCER_SHIFT 32

typedef struct config {
    size_t sizes[MAX_SIZES];
    int nsizes;
    unsigned impls;       /* bit mask of enum impl */
    int batch;
    uint64_t events;      /* timed events per run; 0: use duration */
    uint64_t duration_ms;
    uint64_t memcpy_ms;
    int runs;
    int prod_cpu, cons_cpu;
    uint64_t ring_bytes;
    uint32_t max_event_bytes;
    int json;
    int dedup;            /* --dedup: stable producer id, EVB_CONSUMER_DEDUP reader */
    int exclusive;        /* --exclusive: EVB_PRODUCER_EXCLUSIVE */
    int read_next;        /* --read next: evb_consumer_next(-1) per event */
    int idle_pauses;      /* --idle-pauses: pause instructions per empty look */
    int producers;        /* --producers: evbus producer processes */
    const char *shm_dir;
} config;

/* Control block shared by the parent and its two children. */
typedef struct ctl {
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t cons_ready;
    _Alignas(BENCH_CACHELINE) uint64_t t0, t1; /* consumer clock at first timed / end event */
    uint64_t timed_events;  /* events after the first timed one, end included */
    uint64_t received;
    uint64_t bad_seq, bad_sum, bad_len, lost;
    int cons_err, prod_err;
    char cons_msg[256], prod_msg[256];
} ctl;

/* What the consumer checks against, identical for all implementations. */
typedef struct cons_state {
    size_t size;
    uint64_t pattern_sum; /* sum of words 2.. of the value */
    uint64_t warm;        /* sequence number of the first timed event */
    uint64_t expect[MAX_PRODUCERS]; /* next sequence number of each producer */
    uint64_t t0, t1, timed;
    uint64_t received, bad_seq, bad_sum, bad_len, lost;
    int producers, ends;  /* producers to hear from; end events seen */
    int done;
} cons_state;

static uint64_t warmup_events(const config *cf, size_t size)
{
    uint64_t w = 2 * cf->ring_bytes / size;
    return w < 1024 ? 1024 : w;
}

/* The consumer's work per value: read every byte, check order and sum. */
static inline void consume_value(cons_state *s, const void *v, size_t len)
{
    if (len != s->size) {
        s->bad_len++;
        s->done = 1;
        return;
    }
    uint64_t sum = sum64(v, len);
    uint64_t seq = load64(v);
    uint64_t flag = load64((const char *)v + 8);
    uint64_t who = flag >> PRODUCER_SHIFT;
    if (sum != s->pattern_sum + seq + flag)
        s->bad_sum++;
    if (who >= (uint64_t)s->producers) {
        s->bad_seq++;
        return;
    }
    if (seq != s->expect[who])
        s->bad_seq++;
    s->expect[who] = seq + 1;
    s->received++;
    /* Timed from the first producer's first timed event. */
    if (seq == s->warm && !s->t0)
        s->t0 = now_ns();
    if (flag & FLAG_END) {
        s->t1 = now_ns();
        s->timed += seq >= s->warm ? seq - s->warm : 0;
        if (++s->ends == s->producers)
            s->done = 1;
    }
}

static void cons_report(ctl *c, const cons_state *s)
{
    c->t0 = s->t0;
    c->t1 = s->t1;
    c->timed_events = s->timed;
    c->received = s->received;
    c->bad_seq = s->bad_seq;
    c->bad_sum = s->bad_sum;
    c->bad_len = s->bad_len;
    c->lost = s->lost;
}

/* Producer pacing shared by all implementations: warm-up, then either a
 * fixed count or a duration; returns the number of events to put in the
 * next chunk (0: send the end event now). */
typedef struct pacer {
    const config *cf;
    uint64_t warm, seq, t_start, t_stop, last_timed;
    int chunk;
} pacer;

static void pacer_init(pacer *p, const config *cf, size_t size, int chunk)
{
    memset(p, 0, sizeof(*p));
    p->cf = cf;
    p->warm = warmup_events(cf, size);
    p->chunk = chunk;
    /* timed events are warm .. last_timed; the end event is last_timed */
    p->last_timed = cf->events ? p->warm + cf->events - 1 : UINT64_MAX;
}

static uint64_t pacer_next(pacer *p)
{
    uint64_t k = (uint64_t)p->chunk;
    if (p->seq < p->warm) {
        uint64_t left = p->warm - p->seq;
        return left < k ? left : k;
    }
    if (p->t_start == 0) {
        p->t_start = now_ns();
        p->t_stop = p->t_start + p->cf->duration_ms * 1000000u;
    }
    if (p->cf->events) {
        uint64_t left = p->last_timed - p->seq; /* the end event is extra */
        return left < k ? left : k;
    }
    return now_ns() >= p->t_stop ? 0 : k;
}

/* ---- bare SPSC ring ------------------------------------------------ */

typedef struct spsc {
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t head; /* next slot to write */
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t tail; /* next slot to read */
} spsc;

static int ring_producer(const config *cf, size_t size, spsc *r, unsigned char *slots,
                         uint64_t nslots, int batched)
{
    unsigned char *src = aligned_alloc(64, size);
    if (!src)
        return 1;
    fill_pattern(src + 16, size - 16, 1);
    pacer pc;
    /* a batch never exceeds half the ring: unpublished slots must not be
     * all the producer waits for */
    int chunk = batched ? cf->batch : 32;
    if ((uint64_t)chunk > nslots / 2)
        chunk = (int)(nslots / 2);
    pacer_init(&pc, cf, size, chunk);
    uint64_t head = 0, cached_tail = 0, idx = 0;
    for (;;) {
        uint64_t k = pacer_next(&pc);
        int last = (k == 0);
        if (last)
            k = 1;
        for (uint64_t i = 0; i < k; i++) {
            while (head - cached_tail >= nslots) {
                /* acquire: the consumer is done reading the slot we reuse */
                cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
                if (head - cached_tail >= nslots)
                    cpu_relax();
            }
            store64(src, pc.seq);
            store64(src + 8, last ? FLAG_END : 0);
            memcpy(slots + idx * size, src, size);
            if (++idx == nslots)
                idx = 0;
            head++;
            pc.seq++;
            /* release: the slot's bytes are visible before the new head */
            if (!batched)
                atomic_store_explicit(&r->head, head, memory_order_release);
        }
        if (batched) /* release, as above, once per batch */
            atomic_store_explicit(&r->head, head, memory_order_release);
        if (last)
            break;
    }
    free(src);
    return 0;
}

/* A reader that found nothing new: --idle-pauses pause instructions (1 by
 * default, what a busy-spinning reader of any library does) before it
 * looks again. Every look at the word a producer is about to write takes
 * that line from the producer; more pauses, fewer thefts, later reads. */
static void idle(const config *cf)
{
    for (int i = 0; i < cf->idle_pauses; i++)
        cpu_relax();
}

static int ring_consumer(const config *cf, size_t size, spsc *r, const unsigned char *slots,
                         uint64_t nslots, uint64_t pattern_sum, ctl *c, int batched)
{
    cons_state s = { .size = size, .pattern_sum = pattern_sum, .warm = warmup_events(cf, size),
                     .producers = 1 };
    uint64_t tail = 0, cached_head = 0, idx = 0;
    atomic_store_explicit(&c->cons_ready, 1, memory_order_release);
    while (!s.done) {
        while (cached_head == tail) {
            /* acquire: pairs with the producer's release of head */
            cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (cached_head == tail)
                idle(cf);
        }
        uint64_t n = batched ? cached_head - tail : 1;
        if (n > 256)
            n = 256;
        for (uint64_t i = 0; i < n && !s.done; i++) {
            consume_value(&s, slots + idx * size, size);
            if (++idx == nslots)
                idx = 0;
            tail++;
        }
        /* release: our reads of the slots happen before the producer reuses them */
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    cons_report(c, &s);
    return 0;
}

/* ---- evbus --------------------------------------------------------- */

static int evb_producer_main(const config *cf, size_t size, enum impl mode, const char *bus_path,
                             const char *topic, uint64_t who, ctl *c)
{
    uint64_t tag = who << PRODUCER_SHIFT;
    evb_bus *bus = NULL;
    evb_producer *p = NULL;
    int rc = evb_bus_open(&bus, bus_path, NULL);
    if (rc < 0)
        return bench_fail(c->prod_msg, "evb_bus_open", rc);
    evb_producer_options po = { .block_ms = -1,
                                .producer_id = cf->dedup ? EVB_PRODUCER_ID_STABLE : 0,
                                .flags = cf->exclusive ? EVB_PRODUCER_EXCLUSIVE : 0 };
    rc = evb_producer_open(&p, bus, topic, &po);
    if (rc < 0)
        return bench_fail(c->prod_msg, "evb_producer_open", rc);

    int batch = mode == IMPL_EVB_BATCH ? cf->batch : 1;
    unsigned char *bufs = aligned_alloc(64, (size_t)batch * size);
    evb_msg *msgs = calloc((size_t)batch, sizeof(*msgs));
    if (!bufs || !msgs)
        return bench_fail(c->prod_msg, "alloc", -ENOMEM);
    for (int i = 0; i < batch; i++) {
        fill_pattern(bufs + (size_t)i * size + 16, size - 16, 1);
        msgs[i].value = bufs + (size_t)i * size;
        msgs[i].value_len = (uint32_t)size;
        msgs[i].partition = 0;
    }
    pacer pc;
    pacer_init(&pc, cf, size, mode == IMPL_EVB_BATCH ? cf->batch : 32);
    int err = 0;
    for (;;) {
        uint64_t k = pacer_next(&pc);
        int last = (k == 0);
        if (last)
            k = 1;
        if (mode == IMPL_EVB_BATCH) {
            for (uint64_t i = 0; i < k; i++) {
                store64(bufs + i * size, pc.seq + i);
                store64(bufs + i * size + 8, tag | (last ? FLAG_END : 0));
            }
            size_t done = 0;
            while (done < k) {
                rc = evb_publish_batch(p, msgs + done, (size_t)k - done);
                if (rc < 0) {
                    err = bench_fail(c->prod_msg, "evb_publish_batch", rc);
                    break;
                }
                done += (size_t)rc;
            }
            pc.seq += k;
        } else {
            for (uint64_t i = 0; i < k && !err; i++) {
                store64(bufs, pc.seq);
                store64(bufs + 8, tag | (last ? FLAG_END : 0));
                if (mode == IMPL_EVB_SINGLE) {
                    rc = evb_publish(p, &msgs[0]);
                    if (rc < 0)
                        err = bench_fail(c->prod_msg, "evb_publish", rc);
                } else {
                    struct evb_claim cl;
                    rc = evb_claim(p, 0, NULL, 0, (uint32_t)size, &cl);
                    if (rc < 0) {
                        err = bench_fail(c->prod_msg, "evb_claim", rc);
                        break;
                    }
                    memcpy(cl.value, bufs, size);
                    rc = evb_commit(p, &cl);
                    if (rc < 0)
                        err = bench_fail(c->prod_msg, "evb_commit", rc);
                }
                pc.seq++;
            }
        }
        if (err || last)
            break;
    }
    free(bufs);
    free(msgs);
    evb_producer_close(p);
    evb_bus_close(bus);
    return err;
}


static int on_event(const evb_event *ev, void *arg)
{
    cons_state *s = arg;
    if (ev->lost_events)
        s->lost += ev->lost_events;
    consume_value(s, ev->value, ev->value_len);
    return s->done;
}

static int evb_consumer_main(const config *cf, size_t size, const char *bus_path,
                             const char *topic, uint64_t pattern_sum, ctl *c)
{
    evb_bus *bus = NULL;
    evb_consumer *cons = NULL;
    int rc = evb_bus_open(&bus, bus_path, NULL);
    if (rc < 0)
        return bench_fail(c->cons_msg, "evb_bus_open", rc);
    evb_consumer_options co = {
        .kind = EVB_SUBSCRIBER_LOSSLESS,
        .start = EVB_START_DEFAULT,
        .idle = EVB_IDLE_SPIN,
        .partition = -1,
        .flags = cf->dedup ? EVB_CONSUMER_DEDUP : 0,
    };
    rc = evb_consumer_open(&cons, bus, topic, &co);
    if (rc < 0)
        return bench_fail(c->cons_msg, "evb_consumer_open", rc);
    cons_state s = { .size = size, .pattern_sum = pattern_sum, .warm = warmup_events(cf, size),
                     .producers = cf->producers };
    atomic_store_explicit(&c->cons_ready, 1, memory_order_release);
    int err = 0;
    while (!s.done && cf->read_next) {
        evb_event ev;
        rc = evb_consumer_next(cons, &ev, -1);
        if (rc < 0) {
            err = bench_fail(c->cons_msg, "evb_consumer_next", rc);
            break;
        }
        on_event(&ev, &s);
    }
    while (!s.done) {
        rc = evb_consumer_poll(cons, on_event, &s, 256);
        if (rc < 0) {
            err = bench_fail(c->cons_msg, "evb_consumer_poll", rc);
            break;
        }
        if (rc == 0)
            idle(cf);
    }
    cons_report(c, &s);
    evb_consumer_close(cons);
    evb_bus_close(bus);
    return err;
}

/* ---- one run ------------------------------------------------------- */

typedef struct run_result {
    int ok;
    double events_per_s;
    char why[600];
} run_result;

static run_result run_pair(const config *cf, size_t size, enum impl impl, evb_bus *bus,
                           const char *bus_path, int run_no)
{
    run_result res = { 0, 0, "" };
    bool huge = impl >= IMPL_EVB_BATCH_HUGE;
    enum impl mode = huge ? (enum impl)(impl - IMPL_HUGE_SHIFT) : impl;
    ctl *c = shared_alloc(sizeof(ctl));
    unsigned char *pattern = malloc(size);
    fill_pattern(pattern + 16, size - 16, 1);
    memset(pattern, 0, 16);
    uint64_t pattern_sum = sum64(pattern, size);
    free(pattern);

    char topic[EVB_NAME_MAX + 1];
    snprintf(topic, sizeof(topic), "tp-%zu-%s-%d", size, impl_name[impl], run_no);
    spsc *r = NULL;
    unsigned char *slots = NULL;
    uint64_t nslots = cf->ring_bytes / size;
    int is_ring = impl == IMPL_RING || impl == IMPL_RING_BATCH;
    if (is_ring) {
        r = shared_alloc(sizeof(spsc));
        slots = shared_alloc(nslots * size);
    } else {
        evb_topic_config tc = {
            .partitions = 1,
            .max_event_bytes = cf->max_event_bytes,
            .ring_bytes = cf->ring_bytes,
            .huge_pages = huge ? EVB_HUGE_PAGES_STRICT : 0,
        };
        int rc = evb_topic_create(bus, topic, &tc);
        if (rc < 0) {
            snprintf(res.why, sizeof(res.why), "evb_topic_create(%s): %s %s", topic,
                     evb_strerror(rc), evb_last_error());
            munmap(c, sizeof(ctl));
            return res;
        }
    }

    uint64_t budget = cf->events ? 120000000000ull : cf->duration_ms * 1000000u + 30000000000ull;
    fflush(NULL);
    pid_t cons = fork();
    if (cons == 0) {
        int e = pin_to_cpu(cf->cons_cpu) ? 1
              : is_ring ? ring_consumer(cf, size, r, slots, nslots, pattern_sum, c,
                                        impl == IMPL_RING_BATCH)
                                  : evb_consumer_main(cf, size, bus_path, topic, pattern_sum, c);
        c->cons_err = e;
        _exit(e);
    }
    pid_t prod[MAX_PRODUCERS];
    int nprod = is_ring ? 1 : cf->producers, forked = 0;
    int cs = 0, ps = 0;
    if (cons < 0 || wait_flag(&c->cons_ready, 1, 10000000000ull) != 0) {
        snprintf(res.why, sizeof(res.why), "consumer did not start: %s", c->cons_msg);
        if (cons > 0)
            kill(cons, SIGKILL);
    } else {
        for (; forked < nprod; forked++) {
            prod[forked] = fork();
            if (prod[forked] < 0)
                break;
            if (prod[forked] == 0) {
                int e = pin_to_cpu(cf->prod_cpu) ? 1
                      : is_ring ? ring_producer(cf, size, r, slots, nslots,
                                                impl == IMPL_RING_BATCH)
                                : evb_producer_main(cf, size, mode, bus_path, topic,
                                                    (uint64_t)forked, c);
                c->prod_err = e;
                _exit(e);
            }
        }
    }
    uint64_t deadline = now_ns() + budget;
    for (int i = 0; i < forked; i++) {
        int st = wait_child(prod[i], deadline);
        if (st && !ps)
            ps = st;
    }
    if ((ps != 0 || forked < nprod) && cons > 0)
        kill(cons, SIGKILL); /* a dead producer would leave it spinning */
    if (cons > 0)
        cs = wait_child(cons, deadline);

    if (ps != 0 || cs != 0 || forked < nprod) {
        snprintf(res.why, sizeof(res.why), "producer status %d%s%s, consumer status %d%s%s", ps,
                 c->prod_msg[0] ? ": " : "", c->prod_msg, cs, c->cons_msg[0] ? ": " : "",
                 c->cons_msg);
    } else if (c->bad_seq || c->bad_sum || c->bad_len || c->lost) {
        snprintf(res.why, sizeof(res.why),
                 "verification failed: %" PRIu64 " out-of-order, %" PRIu64 " bad checksums, %" PRIu64
                 " bad lengths, %" PRIu64 " lost, %" PRIu64 " received",
                 c->bad_seq, c->bad_sum, c->bad_len, c->lost, c->received);
    } else if (c->t1 <= c->t0 || c->timed_events == 0) {
        snprintf(res.why, sizeof(res.why), "no timed events");
    } else {
        res.ok = 1;
        res.events_per_s = (double)c->timed_events / ((double)(c->t1 - c->t0) / 1e9);
    }
    if (is_ring) {
        munmap(r, sizeof(spsc));
        munmap(slots, nslots * size);
    } else {
        int rc = evb_topic_delete(bus, topic);
        if (rc < 0 && res.ok) {
            res.ok = 0;
            snprintf(res.why, sizeof(res.why), "evb_topic_delete(%s): %s", topic, evb_strerror(rc));
        }
    }
    munmap(c, sizeof(ctl));
    return res;
}

/* ---- main ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_throughput [options]\n"
            "  --size LIST        value sizes, comma separated (default 64,1K,64K); multiples of 8, >= 16\n"
            "  --impl LIST        any of memcpy,ring,ringb,batch,single,claim (default all)\n"
            "  --batch N          events per evb_publish_batch (default 32)\n"
            "  --duration-ms MS   timed length of each run (default 1000)\n"
            "  --events N         timed events per run instead of a duration\n"
            "  --memcpy-ms MS     length of each memcpy run (default 300)\n"
            "  --runs N           runs per result (default 5)\n"
            "  --producer-cpu N   (default 0)\n"
            "  --consumer-cpu N   (default 1)\n"
            "  --ring-bytes SIZE  ring size of topic and bare ring (default 8M)\n"
            "  --max-event-bytes SIZE  topic max_event_bytes (default max(64K, largest size))\n"
            "  --shm-dir DIR      where the temporary bus is made (default /dev/shm)\n"
            "  --json             also print one JSON line per result\n"
            "  --producers N      evbus: N producer processes on the producer cpu, one\n"
            "                     partition, each value checked in its producer's order\n"
            "                     (default 1; the bare rings stay 1 -> 1; not with\n"
            "                     --exclusive or --dedup, whose producer is the only one)\n"
            "  --exclusive        evbus: the producer is the topic's only one\n"
            "                     (EVB_PRODUCER_EXCLUSIVE: no atomic RMW per claim)\n"
            "  --read poll|next   evbus reader: evb_consumer_poll (max 256) in a loop that\n"
            "                     pauses once when it returns 0 (default), or\n"
            "                     evb_consumer_next(-1) per event (the library's own spin)\n"
            "  --idle-pauses N    pause instructions a poll reader (evbus poll, and the bare\n"
            "                     rings' readers alike) spins after finding nothing new\n"
            "                     (default 1; 0..100000)\n"
            "  --dedup            evbus: the producer has a stable id and the consumer\n"
            "                     drops duplicates (EVB_CONSUMER_DEDUP); the filter's cost\n"
            "  --huge-pages       each evbus path also with its ring in huge pages, runs\n"
            "                     interleaved, ratios huge/normal per run; needs --shm-dir\n"
            "                     on a tmpfs mounted huge=advise\n");
}

static int parse_impls(const char *s, unsigned *out)
{
    unsigned m = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "memcpy"))
            m |= 1u << IMPL_MEMCPY;
        else if (!strcmp(t, "ring"))
            m |= 1u << IMPL_RING;
        else if (!strcmp(t, "ringb"))
            m |= 1u << IMPL_RING_BATCH;
        else if (!strcmp(t, "batch"))
            m |= 1u << IMPL_EVB_BATCH;
        else if (!strcmp(t, "single"))
            m |= 1u << IMPL_EVB_SINGLE;
        else if (!strcmp(t, "claim"))
            m |= 1u << IMPL_EVB_CLAIM;
        else if (!strcmp(t, "all"))
            m |= IMPLS_PLAIN;
        else
            return -1;
    }
    *out = m;
    return m ? 0 : -1;
}

static int parse_sizes(const char *s, config *cf)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    cf->nsizes = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t v = parse_size(t);
        if (v < 16 || v % 8 || v > (1u << 24) || cf->nsizes == MAX_SIZES)
            return -1;
        cf->sizes[cf->nsizes++] = (size_t)v;
    }
    return cf->nsizes ? 0 : -1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_cmdline(stdout, argc, argv);
    config cf = {
        .impls = IMPLS_PLAIN,
        .batch = 32,
        .duration_ms = 1000,
        .memcpy_ms = 300,
        .runs = 5,
        .prod_cpu = 0,
        .cons_cpu = 1,
        .ring_bytes = 8u << 20,
        .shm_dir = "/dev/shm",
        .producers = 1,
        .idle_pauses = 1,
    };
    parse_sizes("64,1024,65536", &cf);
    uint64_t max_event = 0;
    int huge = 0;
    static const struct option opts[] = {
        { "size", required_argument, 0, 's' },
        { "impl", required_argument, 0, 'i' },
        { "batch", required_argument, 0, 'b' },
        { "duration-ms", required_argument, 0, 'd' },
        { "events", required_argument, 0, 'n' },
        { "memcpy-ms", required_argument, 0, 'm' },
        { "runs", required_argument, 0, 'r' },
        { "producer-cpu", required_argument, 0, 'P' },
        { "consumer-cpu", required_argument, 0, 'C' },
        { "ring-bytes", required_argument, 0, 'R' },
        { "max-event-bytes", required_argument, 0, 'E' },
        { "shm-dir", required_argument, 0, 'D' },
        { "json", no_argument, 0, 'j' },
        { "dedup", no_argument, 0, 'u' },
        { "huge-pages", no_argument, 0, 'H' },
        { "exclusive", no_argument, 0, 'X' },
        { "read", required_argument, 0, 'N' },
        { "idle-pauses", required_argument, 0, 'I' },
        { "producers", required_argument, 0, 'p' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            if (parse_sizes(optarg, &cf)) {
                fprintf(stderr, "bad --size %s\n", optarg);
                return 2;
            }
            break;
        case 'i':
            if (parse_impls(optarg, &cf.impls)) {
                fprintf(stderr, "bad --impl %s\n", optarg);
                return 2;
            }
            break;
        case 'b': cf.batch = atoi(optarg); break;
        case 'd': cf.duration_ms = strtoull(optarg, NULL, 0); break;
        case 'n': cf.events = parse_size(optarg); break;
        case 'm': cf.memcpy_ms = strtoull(optarg, NULL, 0); break;
        case 'r': cf.runs = atoi(optarg); break;
        case 'P': cf.prod_cpu = atoi(optarg); break;
        case 'C': cf.cons_cpu = atoi(optarg); break;
        case 'R': cf.ring_bytes = parse_size(optarg); break;
        case 'E': max_event = parse_size(optarg); break;
        case 'D': cf.shm_dir = optarg; break;
        case 'j': cf.json = 1; break;
        case 'u': cf.dedup = 1; break;
        case 'H': huge = 1; break;
        case 'X': cf.exclusive = 1; break;
        case 'p': cf.producers = atoi(optarg); break;
        case 'I': cf.idle_pauses = atoi(optarg); break;
        case 'N':
            if (strcmp(optarg, "poll") && strcmp(optarg, "next")) {
                fprintf(stderr, "bad --read %s (poll or next)\n", optarg);
                return 2;
            }
            cf.read_next = !strcmp(optarg, "next");
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (huge) /* the huge twin of every evbus path asked for */
        cf.impls |= (cf.impls >> IMPL_EVB_BATCH & 7u) << IMPL_EVB_BATCH_HUGE;
    if (cf.batch < 1 || cf.batch > 4096 || cf.runs < 1 || cf.runs > MAX_RUNS ||
        cf.ring_bytes < (64u << 10) || (cf.ring_bytes & (cf.ring_bytes - 1)) ||
        (!cf.events && !cf.duration_ms) || cf.idle_pauses < 0 || cf.idle_pauses > 100000 ||
        cf.producers < 1 || cf.producers > MAX_PRODUCERS ||
        (cf.producers > 1 && (cf.exclusive || cf.dedup))) {
        fprintf(stderr, "bad arguments\n");
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < cf.nsizes; i++) {
        if (cf.sizes[i] > max_event)
            max_event = cf.sizes[i];
        if (cf.ring_bytes / cf.sizes[i] < 4) {
            fprintf(stderr, "--ring-bytes too small for size %zu\n", cf.sizes[i]);
            return 2;
        }
    }
    if (max_event < (64u << 10)) {
        /* default 64 KiB, but within a small ring's limit (ring/4 less
         * frame overhead) when the sizes allow */
        uint64_t cap = cf.ring_bytes / 4 - 256;
        max_event = (64u << 10) < cap ? (64u << 10) : max_event > cap ? max_event : cap;
    }
    cf.max_event_bytes = (uint32_t)max_event;

    print_env_header(stdout, "bench_throughput");
    printf("# %d producer%s on cpu %d, consumer cpu %d: %s; ring %" PRIu64 " B; batch %d; %s %" PRIu64
           "%s per run; %d runs; warm-up >= 2 ring laps\n",
           cf.producers, cf.producers > 1 ? "s (evbus)" : "", cf.prod_cpu, cf.cons_cpu,
           topology_name(cf.prod_cpu, cf.cons_cpu), cf.ring_bytes,
           cf.batch, cf.events ? "events" : "duration", cf.events ? cf.events : cf.duration_ms,
           cf.events ? "" : " ms", cf.runs);
    fflush(stdout);

    char bus_path[4096];
    if (bench_bus_dir(bus_path, sizeof(bus_path), cf.shm_dir))
        return 1;
    evb_bus *bus = NULL;
    unsigned need_bus = cf.impls & ~((1u << IMPL_MEMCPY) | (1u << IMPL_RING) |
                                     (1u << IMPL_RING_BATCH));
    if (need_bus) {
        int rc = evb_bus_open(&bus, bus_path, NULL);
        if (rc < 0) {
            fprintf(stderr, "evb_bus_open(%s): %s %s\n", bus_path, evb_strerror(rc),
                    evb_last_error());
            rm_rf(bus_path);
            return 1;
        }
    }

    static double val[MAX_SIZES][IMPL_COUNT][MAX_RUNS]; /* events/s, or B/s for memcpy */
    static int has[MAX_SIZES][IMPL_COUNT][MAX_RUNS];
    static double probe[MAX_SIZES][MAX_RUNS];
    int failures = 0;
    cpu_set_t orig;
    sched_getaffinity(0, sizeof(orig), &orig);

    /* Runs are interleaved (run 1 of every implementation, then run 2, ...)
     * so that drift on a shared machine hits all of them alike, and each
     * run starts with a cache-line probe that records how far apart the
     * two vCPUs are right now. */
    for (int si = 0; si < cf.nsizes; si++) {
        size_t size = cf.sizes[si];
        for (int run = 0; run < cf.runs; run++) {
            probe[si][run] = cacheline_probe_ns(cf.prod_cpu, cf.cons_cpu, 20000);
            fprintf(stderr, "  size %zu run %d cache-line RTT probe %.0f ns\n", size, run + 1,
                    probe[si][run]);
            for (int k = 0; k < IMPL_COUNT; k++) {
                /* The normal paths, then their huge twins; every other
                 * run the twins first, so neither group always leads. */
                int im = k;
                if (run % 2 && k >= IMPL_EVB_BATCH)
                    im = k < IMPL_EVB_BATCH_HUGE ? k + IMPL_HUGE_SHIFT : k - IMPL_HUGE_SHIFT;
                if (!(cf.impls & (1u << im)))
                    continue;
                if (im == IMPL_MEMCPY) {
                    pin_to_cpu(cf.prod_cpu);
                    double bps = memcpy_bps(size, cf.ring_bytes, cf.memcpy_ms);
                    sched_setaffinity(0, sizeof(orig), &orig);
                    val[si][im][run] = bps;
                    has[si][im][run] = 1;
                    fprintf(stderr, "  size %zu run %d %-12s %.3f GB/s\n", size, run + 1,
                            impl_name[im], bps / 1e9);
                    continue;
                }
                run_result rr = run_pair(&cf, size, (enum impl)im, bus, bus_path, run);
                if (!rr.ok) {
                    failures++;
                    printf("# FAIL size %zu %s run %d: %s\n", size, impl_name[im], run + 1, rr.why);
                    fflush(stdout);
                    continue;
                }
                val[si][im][run] = rr.events_per_s;
                has[si][im][run] = 1;
                fprintf(stderr, "  size %zu run %d %-12s %.3f Mev/s %.1f MB/s\n", size, run + 1,
                        impl_name[im], rr.events_per_s / 1e6, rr.events_per_s * (double)size / 1e6);
            }
        }
    }

    char *jbuf = NULL;
    size_t jlen = 0;
    FILE *js = open_memstream(&jbuf, &jlen);
    printf("\n%-7s %-15s %4s  %-28s %-24s %7s %7s %7s\n", "size", "impl", "runs",
           "Mevents/s med [min..max]", "MB/s med [min..max]", "/ring", "/ringB", "/memcpy");
    for (int si = 0; si < cf.nsizes; si++) {
        size_t size = cf.sizes[si];
        for (int im = 0; im < IMPL_COUNT; im++) {
            if (!(cf.impls & (1u << im)))
                continue;
            /* events/s of the OK runs, and paired per-run ratios */
            double ev_v[MAX_RUNS], q_v[3][MAX_RUNS];
            int n = 0, nq[3] = { 0, 0, 0 };
            static const int base[3] = { IMPL_RING, IMPL_RING_BATCH, IMPL_MEMCPY };
            for (int r = 0; r < cf.runs; r++) {
                if (!has[si][im][r])
                    continue;
                double ev = im == IMPL_MEMCPY ? val[si][im][r] / (double)size : val[si][im][r];
                ev_v[n++] = ev;
                for (int k = 0; k < 3; k++) {
                    int bi = base[k];
                    if (!has[si][bi][r] || im == IMPL_MEMCPY)
                        continue;
                    if (k < 2 && im < IMPL_EVB_BATCH)
                        continue; /* ring vs ring: not a result */
                    double b = bi == IMPL_MEMCPY ? val[si][bi][r] / (double)size : val[si][bi][r];
                    q_v[k][nq[k]++] = ev / b;
                }
            }
            stat3 ev = stat3_of(ev_v, n);
            stat3 mb = { ev.med * (double)size / 1e6, ev.min * (double)size / 1e6,
                         ev.max * (double)size / 1e6, n };
            stat3 q[3];
            char rs[3][16];
            for (int k = 0; k < 3; k++) {
                q[k] = stat3_of(q_v[k], nq[k]);
                if (nq[k])
                    snprintf(rs[k], sizeof(rs[k]), "%.3f", q[k].med);
                else
                    snprintf(rs[k], sizeof(rs[k]), "-");
            }
            char evs[64], mbs[64];
            snprintf(evs, sizeof(evs), "%.3f [%.3f..%.3f]", ev.med / 1e6, ev.min / 1e6,
                     ev.max / 1e6);
            snprintf(mbs, sizeof(mbs), "%.0f [%.0f..%.0f]", mb.med, mb.min, mb.max);
            if (!n) {
                snprintf(evs, sizeof(evs), "FAILED");
                mbs[0] = 0;
            }
            printf("%-7zu %-15s %4d  %-28s %-24s %7s %7s %7s\n", size, impl_name[im], n, evs, mbs,
                   rs[0], rs[1], rs[2]);
            if (im >= IMPL_EVB_BATCH_HUGE && (cf.impls & (1u << (im - IMPL_HUGE_SHIFT)))) {
                /* Huge over normal, paired within each run. */
                double hv[MAX_RUNS];
                int nh = 0;
                for (int r = 0; r < cf.runs; r++)
                    if (has[si][im][r] && has[si][im - IMPL_HUGE_SHIFT][r])
                        hv[nh++] = val[si][im][r] / val[si][im - IMPL_HUGE_SHIFT][r];
                stat3 h = stat3_of(hv, nh);
                if (nh)
                    printf("%-7zu %-15s %4d  huge/normal per run: median %.3f [%.3f..%.3f]\n",
                           size, impl_name[im], nh, h.med, h.min, h.max);
            }
            if (!n || !js)
                continue;
            int b = (im == IMPL_EVB_BATCH || im == IMPL_EVB_BATCH_HUGE || im == IMPL_RING_BATCH)
                        ? cf.batch : 1;
            fprintf(js,
                    "{\"bench\":\"throughput\",\"impl\":\"%s\",\"size\":%zu,\"batch\":%d,"
                    "\"runs\":%d,\"producer_cpu\":%d,\"consumer_cpu\":%d,\"topology\":\"%s\","
                    "\"ring_bytes\":%" PRIu64 ","
                    "\"events_per_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g},"
                    "\"mb_per_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}",
                    impl_name[im], size, b, n, cf.prod_cpu, cf.cons_cpu,
                    topology_name(cf.prod_cpu, cf.cons_cpu), cf.ring_bytes, ev.med, ev.min,
                    ev.max, mb.med, mb.min, mb.max);
            static const char *const qn[3] = { "ratio_events_vs_ring",
                                               "ratio_events_vs_ring_batched",
                                               "ratio_mb_vs_memcpy" };
            for (int k = 0; k < 3; k++)
                if (nq[k])
                    fprintf(js, ",\"%s\":{\"median\":%.4f,\"min\":%.4f,\"max\":%.4f}", qn[k],
                            q[k].med, q[k].min, q[k].max);
            fprintf(js, ",\"events_per_s_runs\":[");
            for (int r = 0; r < n; r++)
                fprintf(js, "%s%.6g", r ? "," : "", ev_v[r]);
            fprintf(js, "]}\n");
        }
        double pv[MAX_RUNS];
        int np = 0;
        for (int r = 0; r < cf.runs; r++)
            if (probe[si][r] > 0)
                pv[np++] = probe[si][r];
        stat3 ps = stat3_of(pv, np);
        printf("%-7zu cache-line RTT probe per run: median %.0f ns [%.0f..%.0f]\n", size, ps.med,
               ps.min, ps.max);
        if (js)
            fprintf(js, "{\"bench\":\"throughput\",\"probe\":\"cacheline_rtt_ns\",\"size\":%zu,"
                        "\"median\":%.0f,\"min\":%.0f,\"max\":%.0f}\n", size, ps.med, ps.min, ps.max);
    }
    printf("# /ring, /ringB, /memcpy: median over runs of the per-run ratio (evbus events/s over "
           "the bare SPSC ring's\n#   in the same run, per-event and batched hand-off; MB/s over "
           "single-thread memcpy MB/s)\n");
    if (js) {
        fclose(js);
        if (cf.json && jbuf)
            fputs(jbuf, stdout);
        free(jbuf);
    }
    if (failures)
        printf("# %d run(s) FAILED\n", failures);
    evb_bus_close(bus);
    rm_rf(bus_path);
    return failures ? 1 : 0;
}
