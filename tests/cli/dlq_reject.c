/*
 * dlq_reject.c - the consumer side of tests/cli/test_cli_dlq.sh: a named
 * consumer that reads TOPIC until caught up, rejects every event whose
 * value starts with "bad" (reason "no good: <value>") and commits; one
 * starting with "badtwice" it rejects twice, as a reader killed after its
 * reject and before its commit would after its restart. The
 * CLI has no reject of its own (a consumer decides what it cannot
 * process), so the test plays that consumer with the public API only.
 *
 * With a fourth argument group:NAME it reads as a member of partition
 * group NAME instead, and with queue:NAME as a member of queue group NAME
 * (acknowledging what it does not reject, and committing nothing).
 *
 * Usage: dlq_reject BUS DATA_DIR TOPIC [group:NAME|queue:NAME]; prints
 * "<read> <rejected>".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "evbus.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: dlq_reject BUS DATA_DIR TOPIC [group:NAME|queue:NAME]\n");
        return 2;
    }
    evb_bus *bus;
    evb_bus_options bo = {.data_dir = argv[2]};
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "handler"};
    bool queue = false;
    if (argc == 5 && strncmp(argv[4], "group:", 6) == 0) {
        co.kind = EVB_GROUP_MEMBER;
        co.name = argv[4] + 6;
    } else if (argc == 5 && strncmp(argv[4], "queue:", 6) == 0) {
        co.kind = EVB_QUEUE_MEMBER;
        co.name = argv[4] + 6;
        queue = true;
    } else if (argc == 5) {
        fprintf(stderr, "dlq_reject: '%s': group:NAME or queue:NAME\n", argv[4]);
        return 2;
    }
    int rc = evb_bus_open(&bus, argv[1], &bo);
    if (rc == 0 && (rc = evb_consumer_open(&c, bus, argv[3], &co)) != 0)
        evb_bus_close(bus);
    if (rc) {
        fprintf(stderr, "dlq_reject: %s (%s)\n", evb_strerror(rc), evb_last_error());
        return 1;
    }
    unsigned long read = 0, rejected = 0;
    evb_event ev;
    while ((rc = evb_consumer_next(c, &ev, 200)) == 0) {
        read++;
        if (ev.value_len < 3 || memcmp(ev.value, "bad", 3) != 0) {
            if (queue && (rc = evb_consumer_ack(c, &ev)) != 0)
                break;
            continue;
        }
        char why[128];
        snprintf(why, sizeof why, "no good: %.*s", (int)(ev.value_len < 100 ? ev.value_len : 100),
                 (const char *)ev.value);
        if ((rc = evb_consumer_reject(c, &ev, why)) != 0)
            break;
        if (ev.value_len >= 8 && memcmp(ev.value, "badtwice", 8) == 0 &&
            (rc = evb_consumer_reject(c, &ev, why)) != 0)
            break;
        rejected++;
    }
    if (rc == -ETIMEDOUT)
        rc = queue ? 0 : evb_consumer_commit(c);
    if (rc)
        fprintf(stderr, "dlq_reject: %s (%s)\n", evb_strerror(rc), evb_last_error());
    printf("%lu %lu\n", read, rejected);
    evb_consumer_close(c);
    evb_bus_close(bus);
    return rc ? 1 : 0;
}
