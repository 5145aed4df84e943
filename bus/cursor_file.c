/*
 * cursor_file.c - named consumers' committed cursors:
 *
 *   <topic>/consumers/<name>.cur   struct cur_file, mapped shared
 *
 * (For durable topics the cursor file lives in the data directory, beside
 * the log it points into, and survives a reboot with it.) This file owns
 * creating, checking, owning, loading and storing it; consumer.c decides
 * when to commit and where a consumer starts.
 */
#include "cursor_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"

#define EVB_CUR_MAGIC 0x3152554342564545ull /* "EEVBCUR1" */

/* One partition's committed cursor. A seqlock (odd while written) keeps a
 * reader from pairing a position with another commit's offset. */
struct cur_entry {
    _Atomic uint64_t seq;
    _Atomic uint64_t pos;     /* EVB_POS_NONE: never committed */
    _Atomic uint64_t offset;
    uint64_t pad_;
};

struct cur_file {
    _Atomic uint64_t magic;   /* stored last at creation */
    uint32_t partitions;
    uint32_t pad_;
    _Atomic uint64_t owner;   /* pid << 32 | start time of the open handle */
    uint64_t pad2_;
    struct cur_entry e[];
};

static size_t cur_size(uint32_t parts)
{
    return sizeof(struct cur_file) + parts * sizeof(struct cur_entry);
}

int evb_cursor_file_open(struct evb_cursor_file *cf, const struct evb_topic_map *tm,
                         const char *name)
{
    char path[PATH_MAX + 128];
    const char *top = tm->ddir[0] ? tm->ddir : tm->dir;
    snprintf(path, sizeof path, "%s/consumers", top);
    if (tm->ddir[0])
        evb_mkdirs(path); /* topics made before consumers/ existed */
    snprintf(path, sizeof path, "%s/consumers/%s.cur", top, name);
    size_t bytes = cur_size(tm->nparts);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, tm->cfg.file_mode);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 || (st.st_size < (off_t)bytes &&
                               (rc = posix_fallocate(fd, 0, (off_t)bytes)))) {
        rc = evb_err_set(rc ? -rc : -errno, "%s: cannot size cursor file", path);
        close(fd);
        return rc;
    }
    struct cur_file *f = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (f == MAP_FAILED)
        return evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
    uint64_t magic = atomic_load_explicit(&f->magic, memory_order_acquire);
    if (magic == 0) {
        /* New file: racing creators write identical values. */
        f->partitions = tm->nparts;
        for (uint32_t i = 0; i < tm->nparts; i++)
            atomic_store_explicit(&f->e[i].pos, EVB_POS_NONE, memory_order_relaxed);
        atomic_store_explicit(&f->magic, EVB_CUR_MAGIC, memory_order_release);
    } else if (magic != EVB_CUR_MAGIC || f->partitions != tm->nparts) {
        munmap(f, bytes);
        return evb_err_set(-EBADMSG, "%s: not a cursor file for %u partitions", path,
                           tm->nparts);
    }
    uint64_t self = evb_proc_self();
    for (;;) {
        uint64_t o = atomic_load_explicit(&f->owner, memory_order_acquire);
        if (o && o != self && evb_proc_alive(o)) {
            munmap(f, bytes);
            return evb_err_set(-EBUSY, "consumer %s of topic %s is open in process %u",
                               name, tm->name, (unsigned)(o >> 32));
        }
        if (atomic_compare_exchange_strong_explicit(&f->owner, &o, self, memory_order_acq_rel,
                                                    memory_order_relaxed))
            break;
    }
    cf->map = f;
    cf->bytes = bytes;
    return 0;
}

void evb_cursor_file_close(struct evb_cursor_file *cf)
{
    if (!cf->map)
        return;
    uint64_t self = evb_proc_self();
    atomic_compare_exchange_strong_explicit(&cf->map->owner, &self, 0,
                                            memory_order_acq_rel, memory_order_relaxed);
    munmap(cf->map, cf->bytes);
    cf->map = NULL;
}

static bool cur_load(const struct cur_file *f, uint32_t part, uint64_t *pos, uint64_t *off)
{
    const struct cur_entry *e = &f->e[part];
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        *pos = atomic_load_explicit(&e->pos, memory_order_relaxed);
        *off = atomic_load_explicit(&e->offset, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (!(s1 & 1) && atomic_load_explicit(&e->seq, memory_order_relaxed) == s1)
            return *pos != EVB_POS_NONE;
    }
    /* A writer died mid-commit: the position alone is still a boundary. */
    *pos = atomic_load_explicit(&e->pos, memory_order_relaxed);
    return *pos != EVB_POS_NONE;
}

bool evb_cursor_file_load(const struct evb_cursor_file *cf, uint32_t part, uint64_t *pos,
                          uint64_t *off)
{
    return cur_load(cf->map, part, pos, off);
}

void evb_cursor_file_store(struct evb_cursor_file *cf, uint32_t part, uint64_t pos,
                           uint64_t off)
{
    struct cur_entry *e = &cf->map->e[part];
    uint64_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->pos, pos, memory_order_relaxed);
    atomic_store_explicit(&e->offset, off, memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}

uint64_t evb_consumers_min_committed(struct evb_topic_map *tm, uint32_t part)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/consumers", tm->ddir[0] ? tm->ddir : tm->dir);
    uint64_t min = UINT64_MAX;
    DIR *d = opendir(dir);
    if (!d)
        return min;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".cur"))
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        size_t bytes = cur_size(tm->nparts);
        struct stat st;
        const struct cur_file *f = MAP_FAILED;
        if (fstat(fd, &st) == 0 && st.st_size >= (off_t)bytes)
            f = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (f == MAP_FAILED)
            continue;
        uint64_t pos, off;
        if (atomic_load_explicit(&f->magic, memory_order_acquire) == EVB_CUR_MAGIC &&
            f->partitions == tm->nparts && part < tm->nparts &&
            cur_load(f, part, &pos, &off) && pos < min)
            min = pos;
        munmap((void *)f, bytes);
    }
    closedir(d);
    return min;
}
