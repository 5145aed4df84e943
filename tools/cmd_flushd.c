/*
 * cmd_flushd.c - the disk's upkeep: evbus flushd (be the flusher of every
 * durable topic of a bus until SIGINT or SIGTERM, then write and sync what
 * is committed) and evbus retain (apply a topic's retention now).
 *
 * The work is the library's (evb_bus_flushd, evb_topic_retain); this file
 * wires the stop signals to the flag flushd polls and reports.
 */
#include "cli.h"

#include <stdio.h>

static const char flushd_usage[] =
    "usage: evbus flushd [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Write the events of every durable topic of the bus to their segment\n"
    "files and fdatasync them per each topic's durability, picking up topics\n"
    "created meanwhile within a second, until SIGINT or SIGTERM; then write\n"
    "and sync what was committed and exit 0. Producers flush on their own\n"
    "without it; run it to keep one process in charge of the disk.\n"
    "\n"
    CLI_BUS_HELP;

int cmd_flushd(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "flushd", flushd_usage);
    int rc = cli_common_options(&c, argc, argv, false, 0, "");
    if (rc != 0)
        return rc;
    /* Catch the signals before saying we run: a stop sent right after the
     * start line must drain, not kill. */
    cli_catch_signals();
    if ((rc = cli_open_bus(&c, CLI_BUS_CREATE)) != 0)
        return rc;
    printf("flushing durable topics of %s (data %s); Ctrl-C to stop\n", evb_bus_path(c.bus),
           evb_bus_data_dir(c.bus));
    /* Nobody reading the line (stdout closed) is no reason not to flush;
     * main() reports an output error at the end. */
    fflush(stdout);
    /* cli_stop is an int (main.c asserts it), set by the handler. */
    int err = evb_bus_flushd(c.bus, &cli_stop);
    rc = err < 0 ? cli_fail(&c, err, "flushing %s", evb_bus_path(c.bus)) : CLI_OK;
    cli_close(&c);
    return rc;
}

static const char retain_usage[] =
    "usage: evbus retain TOPIC [--bus NAME|PATH] [--data-dir DIR]\n"
    "\n"
    "Apply the retention of durable TOPIC now (--retain-bytes, --retain-ms,\n"
    "--retain-until-consumed): old segments go as its configuration says.\n"
    "It is applied anyway by a running flusher every second, and by every\n"
    "producer or consumer that opens the topic; this is for a topic nobody\n"
    "uses (from cron, say). Partitions a running flusher holds are left to\n"
    "it.\n"
    "\n"
    CLI_BUS_HELP;

int cmd_retain(int argc, char **argv)
{
    cli c;
    cli_begin(&c, "retain", retain_usage);
    int rc = cli_common_options(&c, argc, argv, false, 1, "TOPIC");
    if (rc != 0 || (rc = cli_open_bus(&c, CLI_BUS_EXISTING)) != 0)
        return rc;
    const char *topic = argv[optind];
    int n = evb_topic_retain(c.bus, topic);
    if (n < 0) {
        rc = cli_fail(&c, n, "topic %s", topic);
    } else {
        if (n > 0)
            printf("%d partition%s of %s left to its running flusher\n", n, n == 1 ? "" : "s",
                   topic);
        rc = CLI_OK;
    }
    cli_close(&c);
    return rc;
}
