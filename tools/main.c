/*
 * main.c - the evbus command line: dispatch to subcommands, and what they
 * share (option parsing, error lines, signals); opening the bus is in
 * cli_bus.c.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_command commands[] = {
    { "create", "create a topic", cmd_create },
    { "list", "list the topics of a bus", cmd_list },
    { "info", "show a topic's configuration and partition tails", cmd_info },
    { "delete", "delete a topic", cmd_delete },
    { "pub", "publish events from arguments or stdin lines", cmd_pub },
    { "tail", "print events of a topic", cmd_tail },
    { "stat", "show counters, readers, lag and rates", cmd_stat },
    { "groups", "show consumer groups: members, owners, committed offsets, lag", cmd_groups },
    { "dump", "print the frames of a durable topic's segment files", cmd_dump },
    { "flushd", "write durable topics to disk until stopped", cmd_flushd },
    { "retain", "apply a durable topic's retention now", cmd_retain },
    { "dlq", "list a topic's dead-letter events, or put them back", cmd_dlq },
    { "bench", "measure publish and delivery rates and latency on this host", cmd_bench },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_main_help(FILE *out)
{
    fprintf(out,
            "usage: evbus [COMMON OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
            "\n"
            "A shared-memory event bus for one host.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "options of every command, accepted before or after it:\n"
            "  --bus NAME|PATH  the bus: a NAME lives in /dev/shm/evbus/NAME (root's)\n"
            "                   or /dev/shm/evbus-UID/NAME (another user's), a value\n"
            "                   with '/' is a directory; default $EVBUS_BUS, else\n"
            "                   \"default\". create, flushd and bench make a missing\n"
            "                   bus; other commands need it to exist (or its durable\n"
            "                   topics to be in the data directory)\n"
            "  --data-dir DIR   where durable topics keep their segment files;\n"
            "                   default $EVBUS_DATA_DIR, else /var/lib/evbus/BUS for\n"
            "                   root and $XDG_DATA_HOME/evbus/BUS (when set) or\n"
            "                   ~/.local/share/evbus/BUS otherwise, BUS being the\n"
            "                   last component of the bus path\n"
            "  --json           JSON output (list, info, stat, groups, tail, dump, dlq,\n"
            "                   bench)\n"
            "  --help           describe the command\n"
            "\n"
            "`evbus COMMAND --help` describes each command; `evbus --version` prints\n"
            "the version.\n"
            "\n"
            "exit status:\n"
            "  0  success\n"
            "  1  runtime failure (unknown topic, no permission, full /dev/shm, ...)\n"
            "  2  usage error (unknown command or option, bad number, missing argument)\n");
}

volatile sig_atomic_t cli_stop;

/* evb_bus_flushd() polls a `const volatile int *`; cmd_flushd hands it
 * &cli_stop, which is only right while the two types are the same. */
_Static_assert(_Generic(cli_stop, int: 1, default: 0),
               "sig_atomic_t is not int: give evb_bus_flushd() its own flag");

static void on_stop_signal(int sig)
{
    /* Which one: a command that ends early on it may exit 128 + SIG. */
    cli_stop = sig;
}

void cli_catch_signals(void)
{
    /* No SA_RESTART: a blocking wait should return early on Ctrl-C so the
     * command can leave (and commit) promptly. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A closed terminal ends a command the same clean way (its report,
     * its cleanup, exit 129), not by the default action, which left
     * bench's topic behind. */
    sigaction(SIGHUP, &sa, NULL);
}

/* The last line vreport wrote, and where its message starts (after
 * "evbus CMD: "): see cli_last_message(). */
static char last_line[1024];
static size_t last_at;

void cli_begin(cli *c, const char *cmd, const char *usage)
{
    *c = (cli){ .cmd = cmd, .usage = usage };
    last_line[0] = '\0';
    last_at = 0;
    /* getopt keeps state across calls; each subcommand parses afresh. 0,
     * not 1, makes glibc forget the rest of a `-abc` it was inside, which
     * points into an argv that may be gone (one process running many
     * command lines: tests/fuzz/fuzz_cli.c). */
    optind = 0;
    opterr = 0;
}

__attribute__((format(printf, 2, 0)))
static void vreport(const cli *c, const char *fmt, va_list ap)
{
    /* Build the whole line first so it reaches stderr in one write. */
    char *line = last_line;
    int n = snprintf(line, sizeof(last_line), "evbus %s: ", c->cmd);
    if (n < 0 || (size_t)n >= sizeof(last_line))
        n = 0;
    last_at = (size_t)n;
    vsnprintf(line + n, sizeof(last_line) - (size_t)n, fmt, ap);
    /* Names come from the user and may hold newlines; the message must
     * stay one line for scripts that read stderr. */
    for (char *p = line; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    fprintf(stderr, "%s\n", line);
}

const char *cli_last_message(void)
{
    return last_line + last_at;
}

int cli_usage_error(const cli *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli_error(c, "%s (see evbus %s --help)", msg, c->cmd);
    return CLI_USAGE;
}

int cli_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

/* Format CTX, then report it with RC's words and, when WITH_DETAIL, the
 * library's detail. */
__attribute__((format(printf, 4, 0)))
static int vfail(const cli *c, int rc, bool with_detail, const char *fmt, va_list ap)
{
    char ctx[512];
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    /* The library's detail says what it saw; its code says what kind of
     * failure it is. Both fit on one line. */
    const char *detail = with_detail ? evb_last_error() : NULL;
    if (detail != NULL && detail[0] != '\0')
        return cli_error(c, "%s: %s (%s)", ctx, evb_strerror(rc), detail);
    return cli_error(c, "%s: %s", ctx, evb_strerror(rc));
}

int cli_fail(const cli *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = vfail(c, rc, true, fmt, ap);
    va_end(ap);
    return code;
}

int cli_fail_hot(const cli *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = vfail(c, rc, false, fmt, ap);
    va_end(ap);
    return code;
}

/* A word on the command line that reads as an option: "--name" or "-x"
 * with a letter, not "-" (stdin), "--" or a negative number. */
static bool looks_like_option(const char *w)
{
    if (w[0] != '-')
        return false;
    const char *n = w[1] == '-' ? w + 2 : w + 1;
    return (*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z');
}

/*
 * getopt takes the word after an option that needs a value as its value,
 * whatever it is: `--key --verbose v` published with key "--verbose", and
 * `--partitions --bus B` complained about "--bus". A value given as its
 * own word that reads as an option is taken for a forgotten value, for
 * every command here; the "=" form (--key=--verbose) says it is meant.
 * Returns 0 or a CLI_PARSE_EXIT code, reported.
 */
static int check_value_word(const cli *c, int opt, int argc, char **argv,
                            const struct option *longopts)
{
    if (!optarg || !looks_like_option(optarg))
        return 0;
    bool own_word = false;
    for (int i = 1; i < argc && !own_word; i++)
        own_word = argv[i] == optarg;
    if (!own_word)
        return 0;
    const char *name = NULL;
    for (const struct option *o = longopts; o->name; o++)
        if (!o->flag && o->val == opt)
            name = o->name;
    if (!name)
        return CLI_PARSE_EXIT(cli_usage_error(c, "option -%c needs a value (write -%c%s to "
                                              "use '%s' as one)", opt, opt, optarg,
                                              optarg));
    return CLI_PARSE_EXIT(cli_usage_error(c, "option '--%s' needs a value (write --%s=%s "
                                          "to use '%s' as one)", name, name, optarg,
                                          optarg));
}

int cli_getopt(cli *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    /* A leading ':' makes getopt tell a missing argument (':') apart from
     * an unknown option ('?'). */
    char spec[64];
    snprintf(spec, sizeof(spec), ":%s", shortopts);
    for (;;) {
        int opt = getopt_long(argc, argv, spec, longopts, NULL);
        /* GNU getopt moves operands (the topic) behind the options it has
         * seen, so the offending option sits just before optind now, not
         * where it was before the call. */
        const char *seen = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        int bad = opt > 0 && opt != '?' && opt != ':'
                      ? check_value_word(c, opt, argc, argv, longopts) : 0;
        if (bad)
            return bad;
        switch (opt) {
        case CLI_OPT_BUS:
            /* An empty name would silently mean the default bus. */
            if (!*optarg)
                return CLI_PARSE_EXIT(cli_usage_error(c, "--bus: empty name"));
            c->bus_name = optarg;
            continue;
        case CLI_OPT_DATA_DIR:
            c->data_dir = optarg;
            continue;
        case CLI_OPT_JSON:
            c->json = true;
            continue;
        case CLI_OPT_HELP:
            fputs(c->usage, stdout);
            return CLI_PARSE_EXIT(CLI_HELP_SHOWN);
        case ':':
            return CLI_PARSE_EXIT(cli_usage_error(c, "option '%s' needs a value", seen));
        case '?':
            if (optopt > 0 && optopt < 128)
                return CLI_PARSE_EXIT(cli_usage_error(c, "unknown option -%c", optopt));
            return CLI_PARSE_EXIT(cli_usage_error(c, "unknown option %s", seen));
        default:
            return opt;
        }
    }
}

int cli_common_options(cli *c, int argc, char **argv, bool with_json, int nargs,
                       const char *what)
{
    static const struct option plain[] = { CLI_COMMON_LONGOPTS, { 0 } };
    static const struct option json[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { 0 },
    };
    int opt = cli_getopt(c, argc, argv, "", with_json ? json : plain);
    if (CLI_PARSE_IS_EXIT(opt))
        return CLI_PARSE_CODE(opt);
    return cli_want_args(c, argc, argv, what, nargs);
}

int cli_want_args(const cli *c, int argc, char **argv, const char *what, int n)
{
    int have = argc - optind;
    if (have < n)
        return cli_usage_error(c, "missing %s", what);
    if (have > n)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind + n]);
    return 0;
}

static int opt_number_error(const cli *c, const char *opt, const char *text, int rc,
                            uint64_t min, uint64_t max)
{
    if (rc == -ERANGE)
        return cli_usage_error(c, "%s '%s': too large", opt, text);
    if (rc < 0)
        return cli_usage_error(c, "%s '%s': not a non-negative number", opt, text);
    return cli_usage_error(c, "%s '%s': out of range %llu..%llu", opt, text,
                           (unsigned long long)min, (unsigned long long)max);
}

int cli_opt_u64(const cli *c, const char *opt, const char *text, uint64_t min,
                uint64_t max, uint64_t *out)
{
    int rc = util_parse_u64(text, out);
    if (rc < 0 || *out < min || *out > max)
        return opt_number_error(c, opt, text, rc, min, max);
    return 0;
}

int cli_opt_size(const cli *c, const char *opt, const char *text, uint64_t min,
                 uint64_t max, uint64_t *out)
{
    int rc = util_parse_size(text, out);
    if (rc == -EINVAL)
        return cli_usage_error(c, "%s '%s': not a size (digits, then K, M, G or T in any case if any)",
                               opt, text);
    if (rc < 0 || *out < min || *out > max)
        return opt_number_error(c, opt, text, rc, min, max);
    return 0;
}

int cli_opt_huge_pages(const cli *c, const char *text, uint32_t *out)
{
    if (!text || !strcmp(text, "try"))
        *out = EVB_HUGE_PAGES_TRY;
    else if (!strcmp(text, "strict"))
        *out = EVB_HUGE_PAGES_STRICT;
    else
        return cli_usage_error(c, "--huge-pages=%s: not try or strict", text);
    return 0;
}

int cli_print_json(const cli *c, json_t *j)
{
    if (j == NULL)
        return cli_error(c, "building JSON output: out of memory");
    int rc = json_dumpf(j, stdout, JSON_COMPACT);
    json_decref(j);
    if (rc < 0)
        return cli_error(c, "writing JSON output failed");
    putchar('\n');
    return 0;
}

json_t *cli_json_u64(uint64_t v)
{
    /* JSON integers here are signed 64-bit: a value past INT64_MAX (a
     * "none" sentinel such as a ring-end pad's offset, or hostile bytes
     * in a segment) would print as a negative count. */
    if (v > (uint64_t)INT64_MAX)
        return json_null();
    return json_integer((json_int_t)v);
}

json_t *cli_json_errno(int err)
{
    return err ? json_string(evb_strerror(err)) : json_null();
}

json_t *cli_json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL || s == NULL)
        return j;
    /* Not UTF-8 (a path's raw bytes, cut mid-character): every byte past
     * ASCII as '?', rather than no string at all, which would drop the
     * object it belongs to. */
    size_t n = strlen(s);
    char *t = malloc(n + 1);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        t[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_string(t);
    free(t);
    return j;
}

const char *cli_durability_name(uint32_t durability)
{
    switch (durability) {
    case EVB_DURABILITY_NONE: return "none";
    case EVB_DURABILITY_ASYNC: return "async";
    case EVB_DURABILITY_SYNC: return "sync";
    default: return "unknown";
    }
}

const char *cli_huge_pages_name(uint32_t huge_pages)
{
    switch (huge_pages) {
    case 0: return "off";
    case EVB_HUGE_PAGES_TRY: return "try";
    case EVB_HUGE_PAGES_STRICT: return "strict";
    default: return "unknown";
    }
}

json_t *cli_config_json(const struct evb_topic_config *cfg)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:s}",
                          "partitions", (json_int_t)cfg->partitions,
                          "ring_bytes", (json_int_t)cfg->ring_bytes,
                          "max_event_bytes", (json_int_t)cfg->max_event_bytes,
                          "file_mode", (json_int_t)cfg->file_mode,
                          "durability", cli_durability_name(cfg->durability));
    /* Placement only when asked for, as topic.conf has it. */
    if (o && cfg->numa_node &&
        json_object_set_new(o, "numa_node", json_integer(EVB_NUMA_NODE_OF(cfg->numa_node))) < 0)
        o = (json_decref(o), NULL);
    if (o && cfg->huge_pages &&
        json_object_set_new(o, "huge_pages", json_string(cli_huge_pages_name(cfg->huge_pages))) < 0)
        o = (json_decref(o), NULL);
    if (o == NULL || cfg->durability == EVB_DURABILITY_NONE)
        return o;
    /* json_object_update_new consumes the second object, also on failure. */
    if (json_object_update_new(o, json_pack("{s:o, s:o, s:o, s:o, s:b, s:I}",
                                            "segment_bytes", cli_json_u64(cfg->segment_bytes),
                                            "retain_bytes", cli_json_u64(cfg->retain_bytes),
                                            "retain_ms", cli_json_u64(cfg->retain_ms),
                                            "retain_cap_bytes", cli_json_u64(cfg->retain_cap_bytes),
                                            "retain_until_consumed",
                                            (cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED) != 0,
                                            "flush_ms", (json_int_t)cfg->flush_ms)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Run one subcommand, then make sure what it printed reached stdout:
 * a full disk or a closed pipe must not look like success. */
static int run_command(const cli_command *cmd, int argc, char **argv)
{
    int rc = cmd->run(argc, argv);
    if (rc == CLI_HELP_SHOWN)
        rc = CLI_OK;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int err = errno;
        /* A reader that went away (`| head`) is not our failure. */
        if (err == EPIPE)
            return rc;
        fprintf(stderr, "evbus %s: writing output: %s\n", cmd->name, strerror(err));
        return rc == CLI_OK ? CLI_FAIL : rc;
    }
    return rc;
}

/*
 * How many words of ARGV, from ARGV[0], make one option of every command
 * (--bus, --data-dir, --json, --help): 2 for an option and its value, 1
 * for a flag or --opt=value, 0 when ARGV[0] is not one of them.
 */
static int common_option_words(const char *arg)
{
    static const struct { const char *name; bool has_value; } opts[] = {
        { "--bus", true }, { "--data-dir", true }, { "--json", false }, { "--help", false },
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        size_t n = strlen(opts[i].name);
        if (strncmp(arg, opts[i].name, n) != 0)
            continue;
        if (arg[n] == '\0')
            return opts[i].has_value ? 2 : 1;
        if (arg[n] == '=' && opts[i].has_value)
            return 1;
    }
    return 0;
}

/*
 * Run CMD with the common options that came before it (ARGV[1..first-1])
 * moved to just after its name, where its own parser reads them. They go
 * before its arguments, so a `--` among those still ends the options, and
 * an option repeated after the command wins as getopt keeps the last.
 */
static int run_with_leading(const cli_command *cmd, int argc, char **argv, int first)
{
    char **args = malloc(sizeof(*args) * (size_t)(argc + 1));
    if (args == NULL) {
        fprintf(stderr, "evbus %s: out of memory\n", cmd->name);
        return CLI_FAIL;
    }
    int n = 0;
    args[n++] = argv[first];
    for (int i = 1; i < first; i++)
        args[n++] = argv[i];
    for (int i = first + 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    int rc = run_command(cmd, n, args);
    free(args);
    return rc;
}

/* `evbus`, `evbus --help`, `evbus help [CMD]` and `evbus --version`;
 * returns an exit code, or -1 when ARGV[1] is none of them. */
static int run_top_level(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0) {
        printf("evbus %s\n", evb_version());
        return CLI_OK;
    }
    if (strcmp(name, "help") != 0 && strcmp(name, "-h") != 0)
        return -1;
    /* `evbus help CMD` is `evbus CMD --help`. */
    if (strcmp(name, "help") == 0 && argc > 2) {
        char *help_argv[] = { argv[2], "--help", NULL };
        for (size_t i = 0; i < N_COMMANDS; i++)
            if (strcmp(argv[2], commands[i].name) == 0)
                return run_command(&commands[i], 2, help_argv);
        fprintf(stderr, "evbus: unknown command '%s' (see evbus --help)\n", argv[2]);
        return CLI_USAGE;
    }
    print_main_help(stdout);
    return CLI_OK;
}

int evb_cli_main(int argc, char **argv)
{
    /* A closed pipe shows up as EPIPE on write, which the commands check,
     * instead of killing the process before a named consumer commits. */
    signal(SIGPIPE, SIG_IGN);
    int rc = run_top_level(argc, argv);
    if (rc >= 0)
        return rc;
    /* `evbus --bus X create t`: --help lists the common options as every
     * command's, so they may come before the command as well as after. */
    int first = 1;
    bool help = false;
    while (first < argc) {
        int words = common_option_words(argv[first]);
        if (words == 0)
            break;
        if (first + words > argc) {
            fprintf(stderr, "evbus: option %s needs a value (see evbus --help)\n",
                    argv[first]);
            return CLI_USAGE;
        }
        help = help || strcmp(argv[first], "--help") == 0;
        first += words;
    }
    if (first == argc) {
        if (help) {
            print_main_help(stdout);
            return CLI_OK;
        }
        fprintf(stderr, "evbus: missing COMMAND (see evbus --help)\n");
        return CLI_USAGE;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[first], commands[i].name) == 0)
            return run_with_leading(&commands[i], argc, argv, first);
    fprintf(stderr, "evbus: unknown command '%s' (see evbus --help)\n", argv[first]);
    return CLI_USAGE;
}

/* tests/fuzz/fuzz_cli.c builds this file with EVB_CLI_NO_MAIN and calls
 * evb_cli_main() once per input, in one process. */
#ifndef EVB_CLI_NO_MAIN
int main(int argc, char **argv)
{
    return evb_cli_main(argc, argv);
}
#endif
