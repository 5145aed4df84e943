/*
 * bench_rebalance.c - how long a partition group takes to give a dead
 * member's partitions to the others: 3 member processes on a 12-partition
 * topic own 4 each; one is SIGKILLed, and the time until the other two
 * report 6 each is measured; the dead one is started again and the group
 * waits for 4/4/4 before the next kill. Prints p50 and max over the kills.
 *
 *   bench_rebalance [--kills N] [--lease-ms MS]
 */
#include "bench_util.h"

#include <getopt.h>

#define PARTS 12
#define MEMBERS 3

struct board {
    _Atomic uint32_t owned[MEMBERS];
    _Atomic uint32_t stop;
};

static const char *g_dir;
static uint32_t g_lease;

static int member(struct board *b, int me)
{
    evb_bus *bus;
    if (evb_bus_open(&bus, g_dir, NULL))
        return 1;
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g", .lease_ms = g_lease};
    evb_consumer *c;
    if (evb_consumer_open(&c, bus, "t", &co)) {
        fprintf(stderr, "member: %s\n", evb_last_error());
        return 1;
    }
    while (!atomic_load(&b->stop)) {
        evb_event ev;
        evb_consumer_next(c, &ev, 5);
        atomic_store(&b->owned[me], (uint32_t)evb_consumer_assignment(c, NULL, 0));
    }
    evb_consumer_close(c);
    evb_bus_close(bus);
    return 0;
}

static pid_t start(struct board *b, int me)
{
    atomic_store(&b->owned[me], 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(member(b, me));
    return pid;
}

static bool wait_split(struct board *b, const uint32_t *want, uint64_t limit_ns)
{
    uint64_t end = now_ns() + limit_ns;
    while (now_ns() < end) {
        bool ok = true;
        for (int m = 0; m < MEMBERS; m++)
            ok = ok && atomic_load(&b->owned[m]) == want[m];
        if (ok)
            return true;
        sleep_ns(100000);
    }
    return false;
}

int main(int argc, char **argv)
{
    int kills = 20;
    g_lease = 0;
    static const struct option opts[] = {
        {"kills", required_argument, NULL, 'k'},
        {"lease-ms", required_argument, NULL, 'l'},
        {0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'k')
            kills = atoi(optarg);
        else if (o == 'l')
            g_lease = (uint32_t)atoi(optarg);
        else
            return 2;
    }
    if (kills < 1)
        return 2;
    char dir[] = "/dev/shm/evbus-bench-rebalance-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    g_dir = dir;
    evb_bus *bus;
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = 1 << 20};
    if (evb_bus_open(&bus, dir, NULL) || evb_topic_create(bus, "t", &tc))
        return 1;
    struct board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid[MEMBERS];
    for (int m = 0; m < MEMBERS; m++)
        pid[m] = start(b, m);
    const uint32_t even[MEMBERS] = {4, 4, 4};
    if (!wait_split(b, even, 10000000000ull)) {
        fprintf(stderr, "no 4/4/4 split\n");
        return 1;
    }
    double *ms = calloc((size_t)kills, sizeof *ms);
    printf("# bench_rebalance: %d SIGKILLs of one of %d members on %d partitions, lease %u ms"
           "\n# kill  victim  ms_until_6_6\n", kills, MEMBERS, PARTS,
           g_lease ? g_lease : EVB_GROUP_LEASE_MS);
    for (int k = 0; k < kills; k++) {
        int v = k % MEMBERS;
        uint32_t want[MEMBERS] = {6, 6, 6};
        want[v] = 0;
        uint64_t t0 = now_ns();
        kill(pid[v], SIGKILL);
        atomic_store(&b->owned[v], 0);
        if (!wait_split(b, want, 10000000000ull)) {
            fprintf(stderr, "kill %d: no 6/6 split within 10 s\n", k);
            return 1;
        }
        ms[k] = (double)(now_ns() - t0) / 1e6;
        printf("%6d  %6d  %8.1f\n", k, v, ms[k]);
        waitpid(pid[v], NULL, 0);
        pid[v] = start(b, v);
        if (!wait_split(b, even, 10000000000ull)) {
            fprintf(stderr, "kill %d: no 4/4/4 split after the restart\n", k);
            return 1;
        }
    }
    stat3 s = stat3_of(ms, kills);
    printf("rebalance after SIGKILL: p50 %.1f ms, max %.1f ms, min %.1f ms over %d kills\n",
           s.med, s.max, s.min, kills);
    atomic_store(&b->stop, 1);
    for (int m = 0; m < MEMBERS; m++)
        waitpid(pid[m], NULL, 0);
    evb_bus_close(bus);
    rm_rf(dir);
    return 0;
}
