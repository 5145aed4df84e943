/*
 * cli.h - what the evbus subcommands share: exit codes, the common option
 * set (--bus, --json, --help), error reporting and the command table.
 *
 * The tool uses only the public API in evbus.h; nothing here reaches into
 * bus/ or shm/ internals.
 */
#ifndef EVBUS_CLI_H
#define EVBUS_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "evbus.h"

/* Exit codes, documented in `evbus --help`. */
enum {
    CLI_OK = 0,      /* the command did what was asked */
    CLI_FAIL = 1,    /* runtime failure: unknown topic, no permission, ... */
    CLI_USAGE = 2,   /* bad command line: unknown option, bad number */
    /* Internal: --help was printed. Non-zero so option parsers stop the
     * command; main() turns it into CLI_OK. */
    CLI_HELP_SHOWN = 100,
};

/* Long-option values shared by every subcommand; subcommands number their
 * own options from CLI_OPT_FIRST so the two sets never collide. */
enum {
    CLI_OPT_BUS = 0x100,
    CLI_OPT_DATA_DIR,
    CLI_OPT_HELP,
    CLI_OPT_JSON,
    CLI_OPT_FIRST,
};

/* State of one invocation of a subcommand. */
typedef struct cli {
    const char *cmd;       /* subcommand name, for "evbus <cmd>: ..." */
    const char *usage;     /* the subcommand's --help text */
    const char *bus_name;  /* --bus, or NULL for the library's default */
    const char *data_dir;  /* --data-dir, or NULL for the library's default */
    uint32_t bus_mode;     /* a bus this command creates: evb_bus_options.mode */
    bool json;             /* --json given */
    evb_bus *bus;          /* opened by cli_open_bus() */
} cli;

/* One subcommand: NAME, a one-line SUMMARY for `evbus --help`, and RUN,
 * which gets argv with argv[0] == NAME and returns an exit code. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

int cmd_create(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_groups(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_flushd(int argc, char **argv);
int cmd_retain(int argc, char **argv);
int cmd_dlq(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/*
 * Parse the next option of ARGV with getopt_long over LONGOPTS (which must
 * hold the common entries, see CLI_COMMON_LONGOPTS). Handles --bus,
 * --data-dir, --json and --help itself and returns the next option the
 * caller must handle, -1 at the end of the options, or a negative exit code
 * minus one (see CLI_PARSE_EXIT) when the command should stop: after --help
 * or on a usage error, which it has already reported.
 */
int cli_getopt(cli *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* The long options every subcommand accepts; put these first in its table. */
#define CLI_COMMON_LONGOPTS                                    \
    { "bus", required_argument, NULL, CLI_OPT_BUS },           \
    { "data-dir", required_argument, NULL, CLI_OPT_DATA_DIR }, \
    { "help", no_argument, NULL, CLI_OPT_HELP }

/* The lines of a usage text that describe the common options. */
#define CLI_BUS_HELP                                                          \
    "  --bus NAME|PATH  the bus (default $EVBUS_BUS, else \"default\")\n"     \
    "  --data-dir DIR   durable topics' segment files (default\n"             \
    "                   $EVBUS_DATA_DIR, else one named after the bus; see\n" \
    "                   evbus --help)\n"

/* cli_getopt() returns CLI_PARSE_EXIT(code) to say "exit with CODE". */
#define CLI_PARSE_EXIT(code) (-2 - (code))
#define CLI_PARSE_IS_EXIT(r) ((r) <= -2)
#define CLI_PARSE_CODE(r) (-2 - (r))

/* The whole command line: what main() runs, callable on its own (the CLI
 * fuzz target). Returns the exit code. */
int evb_cli_main(int argc, char **argv);

/* Reset getopt before a subcommand parses its own argv. */
void cli_begin(cli *c, const char *cmd, const char *usage);

/* Report a usage error as one line and return CLI_USAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Report a runtime failure: "evbus <cmd>: <context>: <strerror(rc)>", plus
 * the library's detail when it left one. Returns CLI_FAIL.
 */
int cli_fail(const cli *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As cli_fail() without evb_last_error(): for hot-path calls (publish,
 * next), which leave no detail, so whatever is there is stale. */
int cli_fail_hot(const cli *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Report a runtime failure that has no library code. Returns CLI_FAIL. */
int cli_error(const cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message of the last line the three above (or cli_usage_error)
 * wrote since cli_begin(), without "evbus CMD: "; "" if none: for a
 * command that also says why it failed in its JSON (bench). */
const char *cli_last_message(void);

/* Whether a command may create the bus it opens (see cli_bus.c). */
enum cli_bus_open {
    CLI_BUS_CREATE,    /* create, flushd, bench: make the bus when missing */
    CLI_BUS_EXISTING,  /* the rest: a missing bus is an error */
};

/* Open the bus named by --bus (or the default), with --data-dir as its
 * data directory; HOW says whether a missing one may be created. Returns 0
 * or CLI_FAIL, after reporting. */
int cli_open_bus(cli *c, enum cli_bus_open how);

/* Close what cli_open_bus() opened. */
void cli_close(cli *c);

/* Parse options that are only the common ones (and --json when
 * WITH_JSON), then ask for NARGS arguments named WHAT as cli_want_args();
 * returns 0 or an exit code. */
int cli_common_options(cli *c, int argc, char **argv, bool with_json, int nargs,
                       const char *what);

/* Ask for exactly N positional arguments after the options; returns 0 or
 * reports and returns CLI_USAGE. WHAT names them for the message. */
int cli_want_args(const cli *c, int argc, char **argv, const char *what, int n);

/* Parse option text as a number in [MIN, MAX] for option OPT; returns 0
 * or reports a usage error and returns CLI_USAGE. */
int cli_opt_u64(const cli *c, const char *opt, const char *text, uint64_t min,
                uint64_t max, uint64_t *out);
int cli_opt_size(const cli *c, const char *opt, const char *text, uint64_t min,
                 uint64_t max, uint64_t *out);

/* --ring-bytes's range, for create and bench alike: the library's
 * (EVB_RING_MIN_CAPACITY, EVB_RING_MAX_CAPACITY in shm/ring_format.h,
 * which evbus.h does not export), said as a usage error before a bus is
 * made for a ring it would refuse. create's --help says "64K..16G". */
#define CLI_RING_MIN (64ull << 10)
#define CLI_RING_MAX (16ull << 30)

/* --huge-pages[=try|strict] (TEXT is its optarg, NULL when bare) into
 * EVB_HUGE_PAGES_*; returns 0 or reports a usage error and returns
 * CLI_USAGE. create and bench take the same. */
int cli_opt_huge_pages(const cli *c, const char *text, uint32_t *out);

/* Print J as one compact JSON line on stdout and drop the reference.
 * Returns 0 or CLI_FAIL (out of memory, reported). */
int cli_print_json(const cli *c, json_t *j);

/* JSON integer from a counter or position; null for a value above
 * INT64_MAX, which JSON's signed integers here cannot hold (a "none"
 * sentinel, or hostile bytes read from a file). */
json_t *cli_json_u64(uint64_t v);
/* A -errno's words (evb_strerror) as a JSON string; null for 0. */
json_t *cli_json_errno(int err);
/* S as a JSON string: bytes that are not UTF-8 become '?' (json_string
 * alone gives NULL for them, which drops whatever holds it). */
json_t *cli_json_text(const char *s);

/* A topic's configuration as a JSON object (shared by info and stat);
 * the durability fields only for durable topics. */
json_t *cli_config_json(const struct evb_topic_config *cfg);

/* "none", "async" or "sync" for an enum evb_durability, "unknown" for a
 * value this build does not know. */
const char *cli_durability_name(uint32_t durability);
/* "off", "try" or "strict": evb_topic_config.huge_pages in words. */
const char *cli_huge_pages_name(uint32_t huge_pages);

/* ---- a damaged topic's files (disk_view.c) ---- */

/* The segment files of TOPIC's PARTITION in the bus's data directory,
 * oldest first, found by name, for a topic the library will not open (its
 * evb_segment_list() then fails). Free with cli_free_paths(). Returns 0 or
 * -errno (-ENOENT: no such partition directory). */
int cli_disk_segments(const cli *c, const char *topic, uint32_t partition, char ***paths,
                      size_t *n);
void cli_free_paths(char **paths, size_t n);

/* One segment file walked: its events and where and why the valid frames
 * stop (evb_dump_segment's END record). */
typedef struct cli_seg_summary {
    const char *path;
    uint64_t base;           /* position of its first byte, from its name */
    uint64_t file_bytes;     /* the file's size */
    uint64_t events;
    uint64_t end_position;   /* where the valid frames stop */
    uint64_t trailing_bytes; /* after that, up to the last non-zero byte */
    char why[48];            /* why they stop: "end of file", "bad checksum", ... */
} cli_seg_summary;

/* Walk the segment file PATH into S. Returns 0 or evb_dump_segment()'s
 * -errno (or stat's). */
int cli_disk_summarise(const char *path, cli_seg_summary *s);

/* Set by SIGINT/SIGTERM once cli_catch_signals() ran, to the signal's
 * number (0: none came); long-running commands poll it and leave cleanly. An int, as sig_atomic_t is on the
 * platforms we build for (main.c asserts it), so evb_bus_flushd() can
 * watch it directly. */
extern volatile sig_atomic_t cli_stop;
void cli_catch_signals(void);

#endif /* EVBUS_CLI_H */
