/*
 * bench_replay.c - a consumer reading a durable topic back from its
 * segments (EVB_START_EARLIEST, the ring far smaller than the log), page
 * cache warm, against the kernel's own copy of the same bytes: pread of
 * the segment files in 256 KiB pieces, every word summed. The consumer
 * sums every value's words too, so both do the same work per byte; the
 * ratio replay ÷ pread is what evbus's reader costs above the copy any
 * reader of a file (not a mapping) pays.
 *
 *   bench_replay [--size B] [--events N] [--runs R] [--data-root DIR]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <evbus.h>

#include "bench_util.h"
#include "durable_util.h"

#define PIECE (256u << 10)

static int make_log(evb_bus *bus, uint32_t size, uint64_t events)
{
    /* The smallest ring: all but its last 64 KiB is read from disk. */
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .durability = EVB_DURABILITY_ASYNC, .segment_bytes = 64 << 20};
    int rc = evb_topic_create(bus, "t", &tc);
    evb_producer *p;
    if (rc || (rc = evb_producer_open(&p, bus, "t", &(evb_producer_options){.block_ms = -1})))
        return rc;
    uint8_t *v = malloc(size);
    if (!v)
        return -ENOMEM;
    for (uint64_t i = 0; i < events && !rc; i++) {
        fill_pattern(v, size, i);
        rc = evb_publish(p, &(evb_msg){.value = v, .value_len = size, .partition = 0});
    }
    if (!rc)
        rc = evb_producer_sync(p, 60000);
    free(v);
    evb_producer_close(p);
    return rc;
}

/* Read every event from the earliest: seconds, and the sum in *SUM. */
static double replay(evb_bus *bus, uint64_t events, uint64_t *sum)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    if (evb_consumer_open(&c, bus, "t", &co))
        return -1;
    evb_event ev;
    uint64_t got = 0, s = 0, t0 = now_ns();
    while (got < events && evb_consumer_next(c, &ev, 1000) == 0) {
        s += sum64(ev.value, ev.value_len & ~7u);
        got++;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    evb_consumer_close(c);
    *sum = s;
    return got == events ? secs : -1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* pread the partition's segment files in order, BYTES in all: seconds. */
static double copy_bound(uint64_t bytes, uint64_t *sum)
{
    char dir[4200], path[4500];
    snprintf(dir, sizeof dir, "%s/t/0", du_data_dir);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        return -1;
    uint8_t *buf = aligned_alloc(64, PIECE);
    uint64_t left = bytes, s = 0, t0 = now_ns();
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && !strcmp(names[i]->d_name + len - 4, ".log") && left) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            int fd = open(path, O_RDONLY);
            for (off_t off = 0; fd >= 0 && left;) {
                ssize_t got = pread(fd, buf, left < PIECE ? left : PIECE, off);
                if (got <= 0)
                    break;
                s += sum64(buf, (size_t)got & ~(size_t)7);
                off += got;
                left -= (uint64_t)got;
            }
            if (fd >= 0)
                close(fd);
        }
        free(names[i]);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    free(names);
    free(buf);
    *sum = s;
    return left ? -1 : secs;
}

int main(int argc, char **argv)
{
    uint32_t size = 200, runs = 5;
    uint64_t events = 1000000;
    const char *root = "/var/tmp";
    static const struct option lo[] = {
        {"size", required_argument, 0, 's'}, {"events", required_argument, 0, 'n'},
        {"runs", required_argument, 0, 'r'}, {"data-root", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    for (int o; (o = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        switch (o) {
        case 's': size = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'n': events = strtoull(optarg, NULL, 0); break;
        case 'r': runs = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'd': root = optarg; break;
        default:
            fprintf(stderr, "usage: bench_replay [--size B (8..65536, default 200)] "
                            "[--events N] [--runs R] [--data-root DIR (default /var/tmp)]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (size < 8 || size > 65536 || !events || !runs || runs > 100) {
        fprintf(stderr, "bench_replay: --size 8..65536, --events and --runs (1..100) > 0\n");
        return 2;
    }
    print_env_header(stdout, "bench_replay");
    print_cmdline(stdout, argc, argv);
    if (du_dirs_make(root))
        return 1;
    evb_bus *bus;
    int rc = evb_bus_open(&bus, du_bus_dir, &(evb_bus_options){.data_dir = du_data_dir});
    if (rc || (rc = make_log(bus, size, events))) {
        fprintf(stderr, "bench_replay: %s: %s\n", evb_strerror(rc), evb_last_error());
        du_cleanup();
        return 1;
    }
    /* A keyless frame: the 56-byte header and the value, padded to whole
     * 64-byte lines (ring_format.h). */
    uint64_t frame = (56 + (uint64_t)size + 63) & ~63ull;
    printf("# %" PRIu64 " events of %u B (frames of %" PRIu64 " B) from disk, page cache "
           "warm\n# run  replay_Mev/s  replay_GB/s  pread_GB/s  replay/pread\n",
           events, size, frame);
    double ratio[100];
    uint64_t s1, s2;
    replay(bus, events, &s1); /* warm the page cache and the reader */
    for (uint32_t r = 0; r < runs; r++) {
        double a = replay(bus, events, &s1), b = copy_bound(events * frame, &s2);
        if (a <= 0 || b <= 0) {
            fprintf(stderr, "bench_replay: a read came up short\n");
            evb_bus_close(bus);
            du_cleanup();
            return 1;
        }
        double gb = (double)(events * frame) / 1e9;
        ratio[r] = (gb / a) / (gb / b);
        printf("%5u  %12.2f  %11.2f  %10.2f  %12.3f\n", r + 1, events / a / 1e6, gb / a,
               gb / b, ratio[r]);
    }
    stat3 st = stat3_of(ratio, (int)runs);
    printf("# replay ÷ pread, median of %u: %.3f [%.3f..%.3f]\n", runs, st.med, st.min,
           st.max);
    evb_bus_close(bus);
    du_cleanup();
    return 0;
}
