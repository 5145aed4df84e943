/*
 * stat_loader.c - the known load of tests/cli/test_cli_stat_rate.sh: one
 * producer publishing 64-byte events to TOPIC at about RATE events/s for
 * SECONDS, that logs "<unix time> <events published>" every 2 ms, so the
 * test can tell how many it had published at any instant (the moments
 * `evbus stat --json` says its snapshots were taken).
 *
 * Paced by the clock, not by sleep accuracy: it publishes whatever the
 * schedule says is due, so a stalled process catches up and the count is
 * what matters, not the speed. Usage: stat_loader BUS TOPIC RATE SECONDS LOG
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "evbus.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: stat_loader BUS TOPIC RATE SECONDS LOG\n");
        return 2;
    }
    double rate = atof(argv[3]), secs = atof(argv[4]);
    FILE *log = fopen(argv[5], "w");
    evb_bus *bus;
    evb_producer *p;
    if (!log || rate <= 0 || secs <= 0 || evb_bus_open(&bus, argv[1], NULL) ||
        evb_producer_open(&p, bus, argv[2], NULL)) {
        fprintf(stderr, "stat_loader: cannot start: %s\n", evb_last_error());
        return 1;
    }
    char value[64] = "load";
    unsigned long long n = 0;
    double t0 = now(), last_log = 0;
    for (;;) {
        double t = now();
        if (t - t0 >= secs)
            break;
        unsigned long long due = (unsigned long long)((t - t0) * rate);
        for (; n < due; n++) {
            int rc = evb_publish(p, &(evb_msg){.value = value, .value_len = sizeof value});
            if (rc) {
                fprintf(stderr, "stat_loader: publish: %s\n", evb_strerror(rc));
                return 1;
            }
        }
        /* The count as of T: every event due by T is published. */
        if (t - last_log >= 0.002) {
            fprintf(log, "%.6f %llu\n", now(), n);
            last_log = t;
        }
        struct timespec nap = {0, 200000};
        nanosleep(&nap, NULL);
    }
    fprintf(log, "%.6f %llu\n", now(), n);
    fclose(log);
    evb_producer_close(p);
    evb_bus_close(bus);
    printf("%llu\n", n);
    return 0;
}
