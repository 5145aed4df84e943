/*
 * fuzz_dump_json.c - libFuzzer target: `evbus dump --json` (tools/
 * cmd_dump.c, jansson) over a hostile segment file of a durable topic,
 * checked against the library's own walk of the same file
 * (evb_dump_segment).
 *
 * Input: u8 flags, then the segment's bytes: bit 0 zero-pads them to the
 * segment size (64 KiB, the size the bus writes), bit 1 adds --values.
 * The fixture is one durable topic made at start (64 KiB ring and
 * segments, frames up to 4 KiB); the input is its partition 0's first
 * segment.
 *
 * What must hold: dump exits 0 or 1 (1 only with a message, when the
 * library refused the file); on 0 it prints one line per frame the
 * library reports, each a JSON object with the documented fields
 * (segment, kind, position; data: offset, bytes, time, producer_id,
 * producer_seq, value_bytes, crc32c, ok, key or key_b64, and value or
 * value_b64 with --values; pad: offset, bytes, events; end: why,
 * trailing_bytes) whose values are the library's, key and value bytes
 * included.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "evbus.h"
#include "segment.h"

#define SEG (64u << 10)
#define MAX_FRAMES (SEG / 8 + 2)

static char seg_path[PATH_MAX];
static int out_fd = -1;
static FILE *quiet;

/* What the library reported for one frame; key and value by FNV-1a hash. */
struct want {
    evb_dump_frame f;
    uint64_t key_hash, value_hash;
};
static struct want want[MAX_FRAMES];
static size_t nwant;

static uint64_t fnv(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int collect(const evb_dump_frame *f, void *arg)
{
    (void)arg;
    FUZZ_CHECK(nwant < MAX_FRAMES, "more than %u frames in one segment", MAX_FRAMES);
    struct want *w = &want[nwant++];
    w->f = *f;
    w->key_hash = fnv(f->key, f->key_len);
    w->value_hash = fnv(f->value, f->value_len);
    w->f.key = w->f.value = NULL;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char bdir[256], ddir[256], pdir[300];
    snprintf(bdir, sizeof bdir, "%s/bus", fuzz_scratch());
    snprintf(ddir, sizeof ddir, "%s/data", fuzz_scratch());
    evb_bus_options bo = {.data_dir = ddir};
    evb_bus *bus;
    evb_topic_config tc = {.partitions = 1, .ring_bytes = SEG, .max_event_bytes = 4000,
                           .durability = EVB_DURABILITY_ASYNC, .segment_bytes = SEG};
    FUZZ_CHECK(evb_bus_open(&bus, bdir, &bo) == 0 && evb_topic_create(bus, "t", &tc) == 0,
               "fixture: %s", evb_last_error());
    evb_bus_close(bus);
    snprintf(pdir, sizeof pdir, "%s/t/0", ddir);
    evb_seg_path(seg_path, sizeof seg_path, pdir, 0, "log");
    out_fd = memfd_create("fuzz-dump-out", MFD_CLOEXEC);
    FUZZ_CHECK(out_fd >= 0, "memfd");
    quiet = fopen("/dev/null", "w");
    FUZZ_CHECK(quiet, "/dev/null");
    return 0;
}

/* Run `evbus dump --json [--values] SEG_PATH` with stdout in out_fd. */
static int run_dump(bool values)
{
    char *argv[] = {"evbus", "dump", "--json", seg_path, values ? "--values" : NULL, NULL};
    fflush(stdout);
    FUZZ_CHECK(ftruncate(out_fd, 0) == 0, "ftruncate");
    lseek(out_fd, 0, SEEK_SET);
    int saved = dup(1);
    dup2(out_fd, 1);
    /* The CLI's messages (stdio) to nowhere; fd 2 stays the sanitizers'. */
    FILE *saved_err = stderr;
    stderr = quiet;
    int rc = evb_cli_main(values ? 5 : 4, argv);
    stderr = saved_err;
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode standard base64 (with '=' padding) into OUT; its length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 4)
        return -1;
    long k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = s[i + j] == '=' && i + 4 == n && j >= 2 ? 0 : b64_val(s[i + j]);
            if (v[j] < 0)
                return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        out[k++] = (uint8_t)(w >> 16);
        if (s[i + 2] != '=')
            out[k++] = (uint8_t)(w >> 8);
        if (s[i + 3] != '=')
            out[k++] = (uint8_t)w;
    }
    return k;
}

/* FIELD of O is WANT: an integer, or null when WANT is past INT64_MAX
 * (cli_json_u64), never a negative count. */
static void check_u64(json_t *o, const char *field, uint64_t want)
{
    json_t *v = json_object_get(o, field);
    bool ok = want > (uint64_t)INT64_MAX
                  ? json_is_null(v)
                  : json_is_integer(v) && json_integer_value(v) == (json_int_t)want;
    if (!ok) {
        char *text = json_dumps(o, JSON_COMPACT);
        FUZZ_CHECK(0, "field %s is not %llu in %.300s", field, (unsigned long long)want, text);
    }
}

/* FIELD holds N bytes hashing to HASH: as text, or base64 in FIELD_b64;
 * with NULL_OK, JSON null for none. */
static void check_bytes(json_t *o, const char *field, uint32_t n, uint64_t hash, bool null_ok)
{
    static uint8_t buf[SEG];
    char b64[32];
    snprintf(b64, sizeof b64, "%s_b64", field);
    json_t *t = json_object_get(o, field), *b = json_object_get(o, b64);
    if (null_ok && n == 0) {
        FUZZ_CHECK(json_is_null(t) && !b, "%s of no bytes is not null", field);
        return;
    }
    FUZZ_CHECK(!t != !b, "%s: both or neither of text and base64", field);
    if (t) {
        FUZZ_CHECK(json_is_string(t), "%s not a string", field);
        FUZZ_CHECK(json_string_length(t) == n && fnv(json_string_value(t), n) == hash,
                   "%s text is not the %u bytes", field, n);
    } else {
        FUZZ_CHECK(json_is_string(b), "%s not a string", b64);
        long k = b64_decode(json_string_value(b), json_string_length(b), buf);
        FUZZ_CHECK(k == (long)n && fnv(buf, n) == hash, "%s is not the %u bytes", b64, n);
    }
}

static void check_line(json_t *o, const struct want *w, bool values)
{
    static const char *kinds[] = {"?", "data", "pad", "end"};
    const evb_dump_frame *f = &w->f;
    FUZZ_CHECK(json_is_object(o), "a line is not an object");
    json_t *seg = json_object_get(o, "segment"), *kind = json_object_get(o, "kind");
    FUZZ_CHECK(json_is_string(seg) && !strcmp(json_string_value(seg), seg_path),
               "segment field");
    FUZZ_CHECK(f->kind >= 1 && f->kind <= 3, "library kind %u", f->kind);
    FUZZ_CHECK(json_is_string(kind) && !strcmp(json_string_value(kind), kinds[f->kind]),
               "kind field, want %s", kinds[f->kind]);
    check_u64(o, "position", f->position);
    switch (f->kind) {
    case EVB_DUMP_DATA:
        check_u64(o, "offset", f->offset);
        check_u64(o, "bytes", f->bytes);
        check_u64(o, "timestamp_ns", f->timestamp_ns);
        check_u64(o, "producer_id", f->producer_id);
        check_u64(o, "producer_seq", f->producer_seq);
        check_u64(o, "type", f->type);
        check_u64(o, "value_bytes", f->value_len);
        check_u64(o, "crc32c", f->crc32c);
        FUZZ_CHECK(json_is_string(json_object_get(o, "time")), "time");
        FUZZ_CHECK(json_is_true(json_object_get(o, "ok")), "ok");
        check_bytes(o, "key", f->key_len, w->key_hash, true);
        if (values)
            check_bytes(o, "value", f->value_len, w->value_hash, false);
        break;
    case EVB_DUMP_PAD:
        check_u64(o, "offset", f->offset);
        check_u64(o, "bytes", f->bytes);
        check_u64(o, "events", f->events);
        break;
    default: {
        json_t *why = json_object_get(o, "why");
        FUZZ_CHECK(json_is_string(why) && f->why && !strcmp(json_string_value(why), f->why),
                   "why");
        check_u64(o, "trailing_bytes", f->trailing_bytes);
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    static uint8_t image[SEG];
    size_t n;
    const uint8_t *p = fuzz_bytes(&in, SEG, &n);
    memset(image, 0, sizeof image);
    memcpy(image, p, n);
    fuzz_write(seg_path, image, flags & 1 ? SEG : n);

    nwant = 0;
    int lib = evb_dump_segment(seg_path, collect, NULL);
    bool values = flags & 2;
    int rc = run_dump(values);
    FUZZ_CHECK(rc == (lib == 0 ? 0 : 1), "dump exit %d, the library's walk %d", rc, lib);
    if (rc)
        return 0;
    off_t len = lseek(out_fd, 0, SEEK_END);
    char *out = malloc((size_t)len + 1);
    FUZZ_CHECK(pread(out_fd, out, (size_t)len, 0) == len, "read back stdout");
    out[len] = '\0';
    size_t lines = 0;
    for (char *s = out, *nl; *s; s = nl + 1, lines++) {
        nl = strchr(s, '\n');
        FUZZ_CHECK(nl, "output ends without a newline");
        *nl = '\0';
        FUZZ_CHECK(lines < nwant, "more lines than the library's %zu frames", nwant);
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        FUZZ_CHECK(j, "line %zu is not JSON (%s): %.200s", lines, e.text, s);
        check_line(j, &want[lines], values);
        json_decref(j);
    }
    FUZZ_CHECK(lines == nwant, "%zu lines for the library's %zu frames", lines, nwant);
    free(out);
    return 0;
}
