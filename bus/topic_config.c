/*
 * topic_config.c - topic.conf, a topic's persisted config (every line in
 * topic_config_format.h): defaults, checks, writing it and reading it back
 * strictly, with the line, key and value named on every refusal. topic.c
 * decides where the file lives.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "frame.h"
#include "safe_open.h"
#include "topic_config_format.h"

/* A quarter of the ring, but within 32 bits, whole lines: a claim's and a
 * frame's length fields (the quarter of a 16 GiB ring would not fit). */
uint64_t evb_topic_max_run(uint64_t ring_bytes)
{
    uint64_t quarter = ring_bytes / 4;
    return quarter > UINT32_MAX ? (uint64_t)UINT32_MAX + 1 - EVB_FRAME_LINE : quarter;
}

/* The largest max_event_bytes a ring of RING_BYTES takes, as documented
 * (evbus.h): that run less a header and a key's padding, so the largest
 * frame (evb_frame_max) fits it. */
uint64_t evb_topic_max_event(uint64_t ring_bytes)
{
    return evb_topic_max_run(ring_bytes) - EVB_FRAME_HDR - EVB_FRAME_ALIGN;
}

void evb_topic_config_defaults(evb_topic_config *cfg)
{
    if (!cfg->partitions)
        cfg->partitions = 1;
    if (!cfg->ring_bytes)
        cfg->ring_bytes = 4u << 20;
    if (!cfg->max_event_bytes) {
        cfg->max_event_bytes = 64u << 10;
        if (cfg->max_event_bytes > evb_topic_max_event(cfg->ring_bytes))
            cfg->max_event_bytes = (uint32_t)evb_topic_max_event(cfg->ring_bytes);
    }
    if (!cfg->file_mode)
        cfg->file_mode = 0600;
    if (cfg->durability != EVB_DURABILITY_NONE) {
        if (!cfg->segment_bytes) {
            uint64_t k = (64ull << 20) / cfg->ring_bytes;
            cfg->segment_bytes = (k ? k : 1) * cfg->ring_bytes;
        }
        if (!cfg->flush_ms)
            cfg->flush_ms = 200;
    }
}

int evb_topic_config_check(const evb_topic_config *cfg)
{
    if (cfg->partitions < 1 || cfg->partitions > EVB_MAX_PARTITIONS)
        return evb_err_set(-EINVAL, "partitions %u: need 1..%d", cfg->partitions,
                           EVB_MAX_PARTITIONS);
    uint64_t rb = cfg->ring_bytes;
    if (rb < EVB_RING_MIN_CAPACITY || rb > EVB_RING_MAX_CAPACITY || (rb & (rb - 1)))
        return evb_err_set(-EINVAL, "ring bytes %llu: need a power of two in [%u, %llu]",
                           (unsigned long long)rb, EVB_RING_MIN_CAPACITY,
                           (unsigned long long)EVB_RING_MAX_CAPACITY);
    /* The key's padding included (shm/frame.h), so the bound stated is
     * the bound accepted. */
    uint64_t frame = evb_frame_max(cfg->max_event_bytes);
    if (!cfg->max_event_bytes || cfg->max_event_bytes > evb_topic_max_event(rb) ||
        frame > rb / 4)
        return evb_err_set(-EINVAL, "max event bytes %u: need 1..%llu for a %llu-byte ring",
                           cfg->max_event_bytes,
                           (unsigned long long)evb_topic_max_event(rb),
                           (unsigned long long)rb);
    if (cfg->file_mode & ~0777u)
        return evb_err_set(-EINVAL, "file mode %o: only permission bits", cfg->file_mode);
    if (cfg->durability > EVB_DURABILITY_SYNC)
        return evb_err_set(-EINVAL, "durability %u: need none, async or sync",
                           cfg->durability);
    if (cfg->flags & ~EVB_TOPIC_RETAIN_UNTIL_CONSUMED)
        return evb_err_set(-EINVAL, "topic flags 0x%x unknown", cfg->flags);
    if (cfg->numa_node > EVB_NUMA_NODE(EVB_NUMA_NODE_MAX))
        return evb_err_set(-EINVAL, "numa node %d: need 0..%d", EVB_NUMA_NODE_OF(cfg->numa_node),
                           EVB_NUMA_NODE_MAX);
    if (cfg->huge_pages > EVB_HUGE_PAGES_STRICT)
        return evb_err_set(-EINVAL, "huge pages %u: need 0, try (1) or strict (2)",
                           cfg->huge_pages);
    if (cfg->durability != EVB_DURABILITY_NONE &&
        (cfg->segment_bytes < rb || cfg->segment_bytes % rb ||
         cfg->segment_bytes > (1ull << 40)))
        return evb_err_set(-EINVAL, "segment bytes %llu: need a multiple of the ring's %llu",
                           (unsigned long long)cfg->segment_bytes, (unsigned long long)rb);
    return 0;
}

/* CFG as topic.conf text into PATH, a file that must not exist yet. */
static int conf_write(const char *path, const evb_topic_config *cfg)
{
    /* What fopen(path, "wx") would do, minus following a symlink. */
    int fd = evb_open_file(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0666,
                           EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        return evb_err_set(-e, "%s: %s", path, strerror(e));
    }
    fprintf(f, "%s\npartitions %u\nring_bytes %llu\nmax_event_bytes %u\nfile_mode %o\n",
            EVB_CONF_HEADER, cfg->partitions, (unsigned long long)cfg->ring_bytes,
            cfg->max_event_bytes, cfg->file_mode);
    if (cfg->durability != EVB_DURABILITY_NONE)
        fprintf(f, "durability %u\nsegment_bytes %llu\nretain_bytes %llu\nretain_ms %llu\n"
                "retain_cap_bytes %llu\nflags %u\nflush_ms %u\n", cfg->durability,
                (unsigned long long)cfg->segment_bytes, (unsigned long long)cfg->retain_bytes,
                (unsigned long long)cfg->retain_ms, (unsigned long long)cfg->retain_cap_bytes,
                cfg->flags, cfg->flush_ms);
    /* Placement keys only when set: a file without them reads as no node
     * and normal pages, which is what every older file means. */
    if (cfg->numa_node)
        fprintf(f, "numa_node %d\n", EVB_NUMA_NODE_OF(cfg->numa_node));
    if (cfg->huge_pages)
        fprintf(f, "huge_pages %u\n", cfg->huge_pages);
    /* On disk before the directory holding it is renamed into place and
     * synced (bus/topic.c): after a power cut, a topic.conf whose name
     * survived with no bytes (delayed allocation) left the whole topic
     * impossible to rebuild (found by tests/durable/test_power_loss.sh). */
    if (fflush(f) || ferror(f) || fdatasync(fileno(f))) {
        int e = errno;
        fclose(f);
        return evb_err_set(-e, "%s: %s", path, strerror(e));
    }
    fclose(f);
    return 0;
}

int evb_topic_config_write(const char *dir, const evb_topic_config *cfg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    return conf_write(path, cfg);
}

int evb_topic_config_upgrade(const char *dir, const evb_topic_config *cfg)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    (void)unlink(tmp); /* an earlier upgrade's, cut short */
    int rc = conf_write(tmp, cfg);
    int fd = rc ? -1 : evb_open_file(AT_FDCWD, tmp, O_RDONLY, 0, EVB_FILE_REG);
    if (!rc && fd < 0)
        rc = evb_open_fail(fd, tmp);
    /* The mode the topic's files have (bus/topic.c, config_mode). */
    if (!rc && fchmod(fd, cfg->file_mode & 0444) < 0)
        rc = evb_err_set(-errno, "%s: fchmod: %s", tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (!rc && rename(tmp, path) < 0)
        rc = evb_err_set(-errno, "%s: rename: %s", tmp, strerror(errno));
    if (rc) {
        (void)unlink(tmp);
        return rc;
    }
    /* The rename on disk too (the directory's entry). */
    int dfd = evb_open_file(AT_FDCWD, dir, O_RDONLY, 0, EVB_FILE_DIR);
    if (dfd < 0)
        return evb_open_fail(dfd, dir);
    rc = fsync(dfd) < 0 ? evb_err_set(-errno, "%s: fsync: %s", dir, strerror(errno)) : 0;
    close(dfd);
    return rc;
}

/* The keys of topic.conf (topic_config_format.h): the evb_topic_config
 * field each fills, its width, base and largest value that fits. */
struct conf_key {
    const char *name;
    size_t off;
    size_t size;
    int base;
    uint64_t max;
    bool durable_only; /* written only for durable topics (see the writer) */
};

#define CONF_KEY(field, base, max)                                               \
    {#field, offsetof(evb_topic_config, field),                                 \
     sizeof(((evb_topic_config *)0)->field), base, max, false}
#define CONF_DKEY(field, base, max)                                              \
    {#field, offsetof(evb_topic_config, field),                                 \
     sizeof(((evb_topic_config *)0)->field), base, max, true}

static const struct conf_key conf_keys[] = {
    CONF_KEY(partitions, 10, UINT32_MAX),
    CONF_KEY(ring_bytes, 10, UINT64_MAX),
    CONF_KEY(max_event_bytes, 10, UINT32_MAX),
    CONF_KEY(file_mode, 8, 0777),
    CONF_KEY(durability, 10, UINT32_MAX),
    CONF_DKEY(segment_bytes, 10, UINT64_MAX),
    CONF_DKEY(retain_bytes, 10, UINT64_MAX),
    CONF_DKEY(retain_ms, 10, UINT64_MAX),
    CONF_DKEY(retain_cap_bytes, 10, UINT64_MAX),
    CONF_DKEY(flags, 10, UINT32_MAX),
    CONF_DKEY(flush_ms, 10, UINT32_MAX),
    /* The node itself, not the field's node + 1 (conf_line adds the 1). */
    CONF_KEY(numa_node, 10, EVB_NUMA_NODE_MAX),
    CONF_KEY(huge_pages, 10, EVB_HUGE_PAGES_STRICT),
};
#define CONF_NKEYS (sizeof conf_keys / sizeof conf_keys[0])
static_assert(CONF_NKEYS <= 32, "conf_line tracks keys seen in a 32-bit mask");

/* The version line: "evbus-topic 1" or "evbus-topic 2" (VERSION gets the
 * number). Another number is another build's file (-EPROTO); anything
 * else is not a topic.conf (-EBADMSG). */
static int conf_header(const char *path, const char *line, unsigned *version)
{
    size_t n = strlen(EVB_CONF_NAME);
    const char *v = line + n + 1;
    if (strncmp(line, EVB_CONF_NAME " ", n + 1) || !*v || strspn(v, "0123456789") != strlen(v))
        return evb_err_set(-EBADMSG, "%s: first line '%.40s', expected '%s'", path, line,
                           EVB_CONF_HEADER);
    if (strcmp(v, "1") && strcmp(v, EVB_CONF_STR(EVB_CONF_VERSION)))
        return evb_err_set(-EPROTO, "%s: version %.20s, this build reads 1 to %d", path, v,
                           EVB_CONF_VERSION);
    *version = (unsigned)(v[0] - '0');
    return 0;
}

/* One "key value" line into CFG; SEEN marks the keys already given. */
static int conf_line(const char *path, int lineno, char *line, evb_topic_config *cfg,
                     uint32_t *seen)
{
    static const char blank[] = " \t";
    char *key = line + strspn(line, blank);
    size_t kl = strcspn(key, blank);
    char *val = key + kl + strspn(key + kl, blank);
    size_t vl = strcspn(val, blank);
    char *rest = val + vl + strspn(val + vl, blank);
    if (!kl || !vl || *rest || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != kl)
        return evb_err_set(-EBADMSG, "%s:%d: '%.60s': expected 'key value'", path, lineno,
                           line);
    key[kl] = '\0';
    val[vl] = '\0';
    uint32_t k = 0;
    while (k < CONF_NKEYS && strcmp(key, conf_keys[k].name))
        k++;
    if (k == CONF_NKEYS)
        return 0; /* a key of a later build: see topic_config_format.h */
    const struct conf_key *ck = &conf_keys[k];
    if (*seen & (1u << k))
        return evb_err_set(-EBADMSG, "%s:%d: %s given twice", path, lineno, key);
    *seen |= 1u << k;
    const char *digits = ck->base == 8 ? "01234567" : "0123456789";
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, ck->base);
    if (strspn(val, digits) != vl || errno || *end)
        return evb_err_set(-EBADMSG, "%s:%d: %s '%.24s': not a%s number%s", path, lineno, key,
                           val, ck->base == 8 ? "n octal" : "", errno ? " that fits" : "");
    if (v > ck->max)
        return evb_err_set(-EBADMSG, ck->base == 8 ? "%s:%d: %s %s: above %llo"
                                                   : "%s:%d: %s %s: above %llu",
                           path, lineno, key, val, (unsigned long long)ck->max);
    if (ck->off == offsetof(evb_topic_config, numa_node))
        v = EVB_NUMA_NODE(v);
    if (ck->size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy((char *)cfg + ck->off, &v32, sizeof v32);
    } else {
        uint64_t v64 = v;
        memcpy((char *)cfg + ck->off, &v64, sizeof v64);
    }
    return 0;
}

/* Read a line of F into LINE (EVB_CONF_LINE_MAX + 1 bytes), newline
 * dropped. Returns its length, EVB_CONF_LINE_MAX when it has more bytes
 * than that allows before the newline (the rest is left unread), -1 at
 * the end of the file. *NUL_AT: index of its first NUL byte, or -1. */
static long conf_getline(FILE *f, char *line, long *nul_at)
{
    long n = 0;
    int c = EOF;
    *nul_at = -1;
    while (n < EVB_CONF_LINE_MAX && (c = getc(f)) != EOF && c != '\n') {
        if (!c && *nul_at < 0)
            *nul_at = n;
        line[n++] = (char)c;
    }
    line[n] = '\0';
    return n == 0 && c == EOF ? -1 : n;
}

int evb_topic_config_read(const char *dir, evb_topic_config *cfg)
{
    return evb_topic_config_read_version(dir, cfg, NULL);
}

int evb_topic_config_read_version(const char *dir, evb_topic_config *cfg, unsigned *version)
{
    unsigned v = 0;
    char path[PATH_MAX], line[EVB_CONF_LINE_MAX + 1];
    snprintf(path, sizeof path, "%s/topic.conf", dir);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int e = errno;
        close(fd);
        return evb_err_set(-e, "%s: %s", path, strerror(e));
    }
    memset(cfg, 0, sizeof *cfg);
    int rc = 0, lineno = 0;
    uint32_t seen = 0;
    long n, nul;
    while (!rc && (n = conf_getline(f, line, &nul)) >= 0) {
        lineno++;
        if (nul >= 0)
            rc = evb_err_set(-EBADMSG, "%s:%d: NUL byte at column %ld", path, lineno, nul + 1);
        else if (n == EVB_CONF_LINE_MAX)
            rc = evb_err_set(-EBADMSG, "%s:%d: line longer than %d bytes", path, lineno,
                             EVB_CONF_LINE_MAX - 1);
        else
            rc = lineno == 1 ? conf_header(path, line, &v)
                             : conf_line(path, lineno, line, cfg, &seen);
    }
    if (!rc && ferror(f))
        rc = evb_err_set(-EIO, "%s: read error", path);
    fclose(f);
    if (!rc && lineno == 0)
        rc = evb_err_set(-EBADMSG, "%s: empty", path);
    /* The writer gives the durable keys only with a durability; one
     * without it (a durability line lost or mangled) is not a file this
     * bus wrote, and reading it as an in-memory topic would drop the log. */
    for (uint32_t k = 0; !rc && cfg->durability == EVB_DURABILITY_NONE && k < CONF_NKEYS; k++)
        if (conf_keys[k].durable_only && (seen & (1u << k)))
            rc = evb_err_set(-EBADMSG, "%s: %s given for a topic that is not durable", path,
                             conf_keys[k].name);
    if (!rc && evb_topic_config_check(cfg))
        rc = evb_err_prefix(-EBADMSG, "%s", path);
    if (version)
        *version = v;
    return rc;
}

