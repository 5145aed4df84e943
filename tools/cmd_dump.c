/*
 * cmd_dump.c - evbus dump: the frames of a durable topic's segment files,
 * one line each, and where and why each file's valid log ends.
 *
 * The walk is the library's (evb_dump_segment); this file only chooses the
 * files and prints. Nothing is modified, so it is safe on a live topic.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char dump_usage[] =
    "usage: evbus dump SEGMENT_FILE|TOPIC [OPTIONS]\n"
    "\n"
    "Print every frame of a segment file of a durable topic, or of each\n"
    "segment file of TOPIC's partition, oldest first. An argument with '/'\n"
    "or ending in .log is a file (<data>/<topic>/<partition>/<base>.log);\n"
    "anything else names a topic. Each file starts with a `segment PATH`\n"
    "line; then a line per frame:\n"
    "\n"
    "  pos=P offset=O data time=T producer=ID/SEQ [type=N] [key=K] size=B\n"
    "      crc=0xC ok [value=V]\n"
    "  pos=P offset=O pad bytes=B voids=N     (N events voided; O is the next)\n"
    "  pos=P end why=\"W\" trailing_bytes=B\n"
    "  not walked: WHY    (a damaged topic's file the walk refuses; see below)\n"
    "\n"
    "T is UTC with nanoseconds; K and V are escaped as tail escapes values.\n"
    "The end line says where the valid log stops and why (end of file, zero\n"
    "bytes, bad checksum, stale stamp, bad length, event too large), and how\n"
    "many bytes after it up to the last non-zero one are there: past the\n"
    "log's durable end a torn tail, which recovery cuts; below it damage,\n"
    "which recovery keeps\n"
    "(`evbus info --verify TOPIC` counts it, `tail --skip-damage` reads past).\n"
    "A TOPIC the library will not open (evbus list marks it damaged) is dumped\n"
    "from the files in its data directory, each on its own; then the reason is\n"
    "said on stderr and the exit status is 1. So is it for a TOPIC whose last\n"
    "rebuild kept damage on disk (evbus info and stat say DAMAGED).\n"
    "\n"
    "  --values         print each event's value too\n"
    "  --json           one JSON object per frame, each with \"segment\"\n"
    "\n"
    "With a TOPIC only (a SEGMENT_FILE is read on its own):\n"
    "\n"
    "  --partition N    TOPIC's partition (default 0)\n"
    CLI_BUS_HELP;

enum { OPT_PARTITION = CLI_OPT_FIRST, OPT_VALUES };

typedef struct dump {
    cli c;
    const char *target;    /* the argument: a file or a topic */
    uint32_t partition;
    bool has_partition;
    bool values;
    const char *file;      /* the segment being walked */
    bool file_named;       /* its `segment PATH` line is out */
    bool stop;             /* output failed: leave at once */
    int rc;                /* exit code when output failed */
    util_buf out;
    util_buf b64;
} dump;

/* Parse dump's options into D; returns 0 or an exit code. */
static int dump_options(dump *d, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "json", no_argument, NULL, CLI_OPT_JSON },
        { "partition", required_argument, NULL, OPT_PARTITION },
        { "values", no_argument, NULL, OPT_VALUES },
        { 0 },
    };
    int opt;
    uint64_t v;
    while ((opt = cli_getopt(&d->c, argc, argv, "", longopts)) != -1) {
        if (CLI_PARSE_IS_EXIT(opt))
            return CLI_PARSE_CODE(opt);
        if (opt == OPT_VALUES) {
            d->values = true;
        } else if (opt == OPT_PARTITION) {
            int rc = cli_opt_u64(&d->c, "--partition", optarg, 0, EVB_MAX_PARTITIONS - 1, &v);
            if (rc != 0)
                return rc;
            d->partition = (uint32_t)v;
            d->has_partition = true;
        }
    }
    int rc = cli_want_args(&d->c, argc, argv, "SEGMENT_FILE or TOPIC", 1);
    d->target = argv[optind];
    return rc;
}

/* A segment path rather than a topic name (which has neither). */
static bool is_file(const char *arg)
{
    size_t n = strlen(arg);
    return strchr(arg, '/') != NULL || (n >= 4 && strcmp(arg + n - 4, ".log") == 0);
}

/* ---- text ------------------------------------------------------------ */

static int text_append(util_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int text_append(util_buf *b, const char *fmt, ...)
{
    char s[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s, sizeof(s), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    return util_buf_append(b, s, (size_t)n < sizeof(s) ? (size_t)n : sizeof(s) - 1);
}

static int text_data(dump *d, const evb_dump_frame *f)
{
    char when[48];
    util_fmt_time_ns(f->timestamp_ns, when, sizeof(when));
    int rc = text_append(&d->out, "pos=%llu offset=%llu data time=%s producer=%u/%llu",
                         (unsigned long long)f->position, (unsigned long long)f->offset,
                         when, f->producer_id, (unsigned long long)f->producer_seq);
    if (rc == 0 && f->type != 0)
        rc = text_append(&d->out, " type=%u", (unsigned)f->type);
    if (rc == 0 && f->key_len > 0) {
        rc = util_buf_append(&d->out, " key=", 5);
        rc = rc < 0 ? rc : util_escape(&d->out, f->key, f->key_len);
    }
    if (rc == 0)
        rc = text_append(&d->out, " size=%u crc=0x%08x ok", f->value_len, f->crc32c);
    if (rc == 0 && d->values) {
        rc = util_buf_append(&d->out, " value=", 7);
        rc = rc < 0 ? rc : util_escape(&d->out, f->value, f->value_len);
    }
    return rc;
}

static int text_frame(dump *d, const evb_dump_frame *f)
{
    int rc;
    switch (f->kind) {
    case EVB_DUMP_DATA:
        rc = text_data(d, f);
        break;
    case EVB_DUMP_PAD:
        rc = text_append(&d->out, "pos=%llu offset=%llu pad bytes=%u voids=%u",
                         (unsigned long long)f->position, (unsigned long long)f->offset,
                         f->bytes, f->events);
        break;
    case EVB_DUMP_END:
        rc = text_append(&d->out, "pos=%llu end why=\"%s\" trailing_bytes=%llu",
                         (unsigned long long)f->position, f->why ? f->why : "?",
                         (unsigned long long)f->trailing_bytes);
        break;
    default:
        rc = text_append(&d->out, "pos=%llu unknown kind=%u", (unsigned long long)f->position,
                         f->kind);
        break;
    }
    return rc < 0 ? rc : util_buf_append(&d->out, "\n", 1);
}

/* ---- JSON ------------------------------------------------------------ */

/* Set FIELD of O to the bytes as text when UTF-8, else FIELD_b64. */
static int json_bytes(dump *d, json_t *o, const char *field, const void *p, size_t n)
{
    char name[32];
    if (util_utf8_text(p, n))
        return json_object_set_new(o, field, json_stringn(p, n));
    d->b64.len = 0;
    if (util_base64(&d->b64, p, n) < 0)
        return -1;
    snprintf(name, sizeof(name), "%s_b64", field);
    return json_object_set_new(o, name, json_stringn(d->b64.data, d->b64.len));
}

static json_t *json_data(dump *d, const evb_dump_frame *f)
{
    char when[48];
    util_fmt_time_ns(f->timestamp_ns, when, sizeof(when));
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:o, s:s, s:I, s:o, s:I, s:I, s:I, s:b}",
                          "segment", d->file, "kind", "data",
                          "position", cli_json_u64(f->position),
                          "offset", cli_json_u64(f->offset),
                          "bytes", (json_int_t)f->bytes,
                          "timestamp_ns", cli_json_u64(f->timestamp_ns),
                          "time", when,
                          "producer_id", (json_int_t)f->producer_id,
                          "producer_seq", cli_json_u64(f->producer_seq),
                          "type", (json_int_t)f->type,
                          "value_bytes", (json_int_t)f->value_len,
                          "crc32c", (json_int_t)f->crc32c,
                          "ok", 1);
    int rc = o == NULL ? -1
             : f->key_len == 0 ? json_object_set_new(o, "key", json_null())
                               : json_bytes(d, o, "key", f->key, f->key_len);
    if (rc == 0 && d->values)
        rc = json_bytes(d, o, "value", f->value, f->value_len);
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *json_frame(dump *d, const evb_dump_frame *f)
{
    switch (f->kind) {
    case EVB_DUMP_DATA:
        return json_data(d, f);
    case EVB_DUMP_PAD:
        return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I}", "segment", d->file, "kind", "pad",
                         "position", cli_json_u64(f->position),
                         "offset", cli_json_u64(f->offset),
                         "bytes", (json_int_t)f->bytes, "events", (json_int_t)f->events);
    case EVB_DUMP_END:
        return json_pack("{s:s, s:s, s:o, s:s, s:o}", "segment", d->file, "kind", "end",
                         "position", cli_json_u64(f->position),
                         "why", f->why ? f->why : "?",
                         "trailing_bytes", cli_json_u64(f->trailing_bytes));
    default:
        return json_pack("{s:s, s:s, s:o, s:I}", "segment", d->file, "kind", "unknown",
                         "position", cli_json_u64(f->position), "kind_code",
                         (json_int_t)f->kind);
    }
}

/* ---- walking --------------------------------------------------------- */

/* Write what D->out holds; false (and D->stop) when output failed. */
static bool dump_write(dump *d)
{
    if (fwrite(d->out.data, 1, d->out.len, stdout) == d->out.len)
        return true;
    /* The reader went away (`| head`): stop quietly. */
    d->stop = true;
    if (errno != EPIPE)
        d->rc = cli_error(&d->c, "writing output: %s", strerror(errno));
    return false;
}

/* Append F's line to D->out, after the file's name before its first
 * frame (so a file the library refuses prints nothing on stdout). */
static int frame_line(dump *d, const evb_dump_frame *f)
{
    if (!d->c.json && !d->file_named) {
        d->file_named = true;
        if (util_buf_append(&d->out, "segment ", 8) < 0 ||
            util_escape(&d->out, d->file, strlen(d->file)) < 0 ||
            util_buf_append(&d->out, "\n", 1) < 0)
            return -ENOMEM;
    }
    if (!d->c.json)
        return text_frame(d, f);
    json_t *j = json_frame(d, f);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL)
        return -ENOMEM;
    int rc = util_buf_append(&d->out, s, strlen(s));
    free(s);
    return rc < 0 ? rc : util_buf_append(&d->out, "\n", 1);
}

/* evb_dump_segment's callback: one frame out; non-zero stops the walk. */
static int dump_frame(const evb_dump_frame *f, void *arg)
{
    dump *d = arg;
    d->out.len = 0;
    if (frame_line(d, f) < 0) {
        d->stop = true;
        d->rc = cli_error(&d->c, "out of memory");
        return 1;
    }
    return dump_write(d) ? 0 : 1;
}

/* Dump one file; returns 0 or an exit code. GONE_OK: a file that retention
 * removed since it was listed is skipped. */
static int dump_file(dump *d, const char *path, bool gone_ok)
{
    d->file = path;
    d->file_named = false;
    int err = evb_dump_segment(path, dump_frame, d);
    if (d->stop)
        return d->rc;
    if (err == -ENOENT && gone_ok)
        return 0;
    /* evb_strerror's words for -ENOENT speak of topics and buses; here
     * it is the file or its topic's config that is missing. */
    if (err == -ENOENT)
        return cli_error(&d->c, "%s: no such file, or no durable topic's topic.conf two "
                         "directories up (%s)", path, evb_last_error());
    if (err < 0)
        return cli_fail(&d->c, err, "%s", path);
    return 0;
}

/* A damaged topic's file that does not walk (cut short, say), said in
 * its place so the files after it still show. Returns 0 or an exit code. */
static int dump_unwalked(dump *d, const char *path, int err)
{
    const char *why = evb_last_error()[0] ? evb_last_error() : evb_strerror(err);
    d->out.len = 0;
    int bad = 0;
    if (d->c.json) {
        json_t *j = json_pack("{s:s, s:s}", "segment", path, "error", why);
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        bad = text == NULL || util_buf_append(&d->out, text, strlen(text)) < 0 ||
              util_buf_append(&d->out, "\n", 1) < 0;
        free(text);
    } else {
        bad = util_buf_append(&d->out, "segment ", 8) < 0 ||
              util_escape(&d->out, path, strlen(path)) < 0 ||
              util_buf_append(&d->out, "\nnot walked: ", 13) < 0 ||
              util_escape(&d->out, why, strlen(why)) < 0 ||
              util_buf_append(&d->out, "\n", 1) < 0;
    }
    if (bad)
        return cli_error(&d->c, "out of memory");
    return dump_write(d) ? 0 : d->rc;
}

/* Dump the files of a topic the library will not open, found by name in
 * its data directory: each file still walks on its own. Ends with the
 * reason WHY on stderr and exit code 1. */
static int dump_damaged(dump *d, int err, const char *why)
{
    char **paths;
    size_t n;
    int rc = 0, e = cli_disk_segments(&d->c, d->target, d->partition, &paths, &n);
    if (e < 0)
        return cli_error(&d->c, "topic %s: %s (%s); its partition %u's files: %s", d->target,
                         evb_strerror(err), why, d->partition, strerror(-e));
    for (size_t i = 0; rc == 0 && !d->stop && i < n; i++) {
        d->file = paths[i];
        d->file_named = false;
        e = evb_dump_segment(paths[i], dump_frame, d);
        rc = d->stop ? d->rc : e < 0 && e != -ENOENT ? dump_unwalked(d, paths[i], e) : 0;
    }
    cli_free_paths(paths, n);
    return rc != 0 || d->stop ? rc
                              : cli_error(&d->c, "topic %s: %s (%s)", d->target,
                                          evb_strerror(err), why);
}

/* The library's reason for the last failure, copied to BUF before later
 * calls replace it. */
static const char *keep_why(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", evb_last_error());
    return buf;
}

/* Dump every segment of the topic's partition; returns 0 or an exit code. */
static int dump_topic(dump *d)
{
    int rc = cli_open_bus(&d->c, CLI_BUS_EXISTING);
    if (rc != 0)
        return rc;
    struct evb_topic_info ti;
    char **paths = NULL;
    size_t n = 0;
    static char why[1024];
    int err = evb_topic_info(d->c.bus, d->target, &ti), damaged = 0;
    /* Damaged with its configuration known: its files may still walk. */
    if (err == -EBADMSG && ti.name[0] != '\0') {
        keep_why(why, sizeof(why));
        damaged = err;
        err = 0;
    }
    if (err < 0)
        rc = cli_fail(&d->c, err, "topic %s", d->target);
    else if (d->partition >= ti.config.partitions)
        rc = cli_usage_error(&d->c, "--partition %u: topic %s has %u partition%s",
                             d->partition, d->target, ti.config.partitions,
                             ti.config.partitions == 1 ? "" : "s");
    else if (ti.config.durability == EVB_DURABILITY_NONE)
        rc = cli_error(&d->c, "topic %s is not durable: it has no segment files", d->target);
    else if (damaged)
        rc = dump_damaged(d, damaged, why);
    else if ((err = evb_segment_list(d->c.bus, d->target, d->partition, &paths, &n)) ==
             -EBADMSG)
        rc = dump_damaged(d, err, keep_why(why, sizeof(why)));
    else if (err == -ENOENT)
        /* The topic exists (info said so): what is missing is on disk, its
         * topic.conf or partition directory, which the library names. */
        rc = cli_error(&d->c, "%s", evb_last_error());
    else if (err < 0)
        rc = cli_fail(&d->c, err, "topic %s partition %u", d->target, d->partition);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && !d->stop)
            rc = dump_file(d, paths[i], true);
        free(paths[i]);
    }
    free(paths);
    /* Damage its last rebuild kept (what info and stat call DAMAGED):
     * the end line that stops below the durable end is that, and the
     * exit status says so, as theirs do (a cold attack found dump
     * exiting 0 with nothing to tell the damage from a torn tail). */
    if (rc == 0 && !d->stop && evb_topic_damage(d->c.bus, d->target, why, sizeof(why)) == 1)
        rc = cli_error(&d->c, "topic %s: damaged: %s", d->target, why);
    cli_close(&d->c);
    return rc;
}

int cmd_dump(int argc, char **argv)
{
    static dump d;
    memset(&d, 0, sizeof(d));
    cli_begin(&d.c, "dump", dump_usage);
    int rc = dump_options(&d, argc, argv);
    /* A segment file is read on its own (its topic.conf is two directories
     * up): options that pick a topic would be ignored, so refuse them. */
    const char *topic_only = d.has_partition ? "--partition"
                             : d.c.bus_name != NULL ? "--bus"
                             : d.c.data_dir != NULL ? "--data-dir"
                                                    : NULL;
    if (rc == 0 && is_file(d.target) && topic_only != NULL)
        rc = cli_usage_error(&d.c, "%s is for a TOPIC; %s is a segment file", topic_only,
                             d.target);
    else if (rc == 0)
        rc = is_file(d.target) ? dump_file(&d, d.target, false) : dump_topic(&d);
    util_buf_free(&d.out);
    util_buf_free(&d.b64);
    return rc;
}
