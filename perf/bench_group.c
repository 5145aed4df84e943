/*
 * bench_group.c - what group membership costs a reader: the same events
 * read by a named consumer (the baseline) and by the only member of a
 * partition group, in alternating rounds of one process, from a topic
 * filled beforehand (so only the read path is measured, no producer).
 * Prints events/s of each, per round, and the median of the ratios.
 *
 *   bench_group [--runs N] [--events N] [--value BYTES] [--partitions P]
 */
#include "bench_util.h"

static double read_all(evb_bus *bus, uint32_t kind, const char *name, uint64_t n)
{
    evb_consumer_options co = {.kind = kind, .name = name, .start = EVB_START_EARLIEST,
                               .idle = EVB_IDLE_SPIN};
    evb_consumer *c;
    int rc = evb_consumer_open(&c, bus, "g", &co);
    if (rc) {
        fprintf(stderr, "open %s: %s (%s)\n", name, evb_strerror(rc), evb_last_error());
        exit(1);
    }
    evb_event ev;
    uint64_t sum = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = evb_consumer_next(c, &ev, 1000))) {
            fprintf(stderr, "%s: next: %s after %llu\n", name, evb_strerror(rc),
                    (unsigned long long)i);
            exit(1);
        }
        sum += load64(ev.value);
    }
    uint64_t t1 = now_ns();
    if (sum == 42)
        puts(""); /* keep the loads */
    evb_consumer_close(c);
    return (double)n * 1e9 / (double)(t1 - t0);
}

int main(int argc, char **argv)
{
    struct prefill_opts po = {.runs = 7, .events = 400000, .value = 64, .parts = 4};
    if (prefill_parse(argc, argv, &po, NULL, NULL, 0))
        return 2;
    int runs = po.runs;
    uint64_t events = po.events;
    char dir[] = "/dev/shm/evbus-bench-group-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    evb_bus *bus;
    evb_bus_options bo = {.data_dir = po.data_dir};
    if (evb_bus_open(&bus, dir, &bo) || prefill_topic(bus, "g", &po))
        return 1;
    printf("# bench_group: %llu events of %u B in %u partitions, %d rounds\n",
           (unsigned long long)events, po.value, po.parts, runs);
    printf("# round  named_ev_s  member_ev_s  ratio\n");
    double *ratio = calloc((size_t)runs, sizeof *ratio);
    double *named = calloc((size_t)runs, sizeof *named);
    double *member = calloc((size_t)runs, sizeof *member);
    for (int r = 0; r < runs; r++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "c%d", r);
        snprintf(n2, sizeof n2, "g%d", r);
        /* Alternate which goes first, so drift does not favour one. */
        if (r & 1) {
            member[r] = read_all(bus, EVB_GROUP_MEMBER, n2, events);
            named[r] = read_all(bus, EVB_CONSUMER, n1, events);
        } else {
            named[r] = read_all(bus, EVB_CONSUMER, n1, events);
            member[r] = read_all(bus, EVB_GROUP_MEMBER, n2, events);
        }
        ratio[r] = member[r] / named[r];
        printf("%7d  %10.0f  %11.0f  %.3f\n", r, named[r], member[r], ratio[r]);
    }
    stat3 sn = stat3_of(named, runs), sm = stat3_of(member, runs), sr = stat3_of(ratio, runs);
    printf("named consumer: median %.0f ev/s (min %.0f, max %.0f)\n", sn.med, sn.min, sn.max);
    printf("group member:   median %.0f ev/s (min %.0f, max %.0f)\n", sm.med, sm.min, sm.max);
    printf("member/named:   median ratio %.3f (min %.3f, max %.3f)\n", sr.med, sr.min, sr.max);
    evb_bus_close(bus);
    rm_rf(dir);
    if (po.data_dir)
        rm_rf(po.data_dir);
    return 0;
}
