/*
 * map.c - create, map and validate ring files. Creation reserves the
 * file's memory up front so a full tmpfs fails here with -ENOSPC instead of
 * a SIGBUS on some later write. Opening never trusts the header: every
 * field is checked against the file's real size before anything uses it.
 * A caller that may only read maps the ring read-only.
 */
#include "ring.h"

/* A ThreadSanitizer build (GCC says so one way, clang the other). */
#if defined(__SANITIZE_THREAD__)
#define EVB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVB_TSAN 1
#endif
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "safe_open.h"

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

int evb_ring_create(const char *path, const struct evb_ring_init *init)
{
    uint64_t capacity = init->capacity;
    uint32_t max_frame = init->max_frame;
    uint32_t mode = init->mode;
    if (!is_pow2(capacity) || capacity < EVB_RING_MIN_CAPACITY ||
        capacity > EVB_RING_MAX_CAPACITY)
        return evb_err_set(-EINVAL, "ring bytes %llu: need a power of two in [%u, %llu]",
                           (unsigned long long)capacity, EVB_RING_MIN_CAPACITY,
                           (unsigned long long)EVB_RING_MAX_CAPACITY);
    if (max_frame < EVB_FRAME_HDR + EVB_FRAME_ALIGN || max_frame > capacity / 4 ||
        max_frame % EVB_FRAME_ALIGN)
        return evb_err_set(-EINVAL, "max frame %u: need an aligned size <= ring/4",
                           max_frame);
    if (init->base_pos % EVB_FRAME_ALIGN)
        return evb_err_set(-EINVAL, "ring base %llu is not aligned",
                           (unsigned long long)init->base_pos);

    uint64_t bytes = EVB_RING_DATA_OFFSET + capacity;
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL, mode, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    /* fchmod: the umask must not narrow the mode the topic asked for. */
    (void)fchmod(fd, mode);

    /* Sized, mapped, placed, then reserved: the pages are allocated by
     * the reservation (or by PLACE), after any policy PLACE set. */
    int rc = ftruncate(fd, (off_t)bytes) ? errno : 0;
    if (rc) {
        evb_err_set(-rc, "%s: ftruncate to %llu bytes: %s", path, (unsigned long long)bytes,
                    strerror(rc));
        goto fail_unlink;
    }
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = errno;
        evb_err_set(-rc, "%s: mmap: %s", path, strerror(rc));
        goto fail_unlink;
    }
    if (init->place && (rc = -init->place(base, bytes, init->place_arg))) {
        evb_err_prefix(-rc, "%s", path);
        goto fail_unmap;
    }
    if ((rc = posix_fallocate(fd, 0, (off_t)bytes))) {
        evb_err_set(-rc, "%s: cannot reserve %llu bytes: %s", path,
                    (unsigned long long)bytes, strerror(rc));
        goto fail_unmap;
    }
    struct evb_ring_hdr *hdr = base;
    hdr->format = EVB_RING_FORMAT_WORD;
    hdr->capacity = capacity;
    hdr->max_frame_bytes = max_frame;
    hdr->partition = init->partition;
    hdr->created_ns = init->created_ns ? init->created_ns : evb_real_ns();
    hdr->base_pos = init->base_pos;
    hdr->base_offset = init->base_offset;
    hdr->flags = init->flags;
    /* Relaxed: published with the header by the magic's release. */
    atomic_store_explicit(&hdr->tail.pos, init->base_pos, memory_order_relaxed);
    atomic_store_explicit(&hdr->tail.offset, init->base_offset, memory_order_relaxed);
    atomic_store_explicit(&hdr->flushed, init->base_pos, memory_order_relaxed);
    atomic_store_explicit(&hdr->durable, init->base_pos, memory_order_relaxed);
    atomic_store_explicit(&hdr->log_start_pos, init->log_start_pos, memory_order_relaxed);
    atomic_store_explicit(&hdr->log_start_offset, init->log_start_offset,
                          memory_order_relaxed);
    atomic_store_explicit(&hdr->recovered_dropped, init->dropped, memory_order_relaxed);
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s =
            (void *)((uint8_t *)base + EVB_PRODUCER_SLOTS_OFFSET + i * EVB_LINE);
        /* Relaxed: published by the magic's release (M1) too. */
        atomic_store_explicit(&s->pending, EVB_POS_NONE, memory_order_relaxed);
    }
    /* M1: everything above before magic; pairs with the acquire load
     * in evb_ring_validate(), so an opener that sees the magic sees a
     * finished header. */
    atomic_store_explicit(&hdr->magic, EVB_RING_MAGIC, memory_order_release);
    munmap(base, bytes);
    close(fd);
    return 0;

fail_unmap:
    munmap(base, bytes);
fail_unlink:
    unlink(path);
    close(fd);
    return -rc;
}

int evb_ring_validate(struct evb_ring *r, const void *base, size_t bytes)
{
    const struct evb_ring_hdr *hdr = base;
    if (bytes < EVB_RING_DATA_OFFSET)
        return evb_err_set(-EBADMSG, "file of %zu bytes is smaller than a ring header",
                           bytes);
    /* M1: acquire pairs with the creator's release: the fields read
     * below are the finished ones. */
    uint64_t magic = atomic_load_explicit(&hdr->magic, memory_order_acquire);
    if (magic != EVB_RING_MAGIC)
        return evb_err_set(-EBADMSG, "ring magic 0x%llx, expected 0x%llx",
                           (unsigned long long)magic, (unsigned long long)EVB_RING_MAGIC);
    uint64_t format = hdr->format;
    if (format != EVB_RING_FORMAT_WORD)
        return evb_err_set(-EPROTO, "ring format 0x%llx (version %u), this build reads "
                           "0x%llx (version %u)", (unsigned long long)format,
                           (unsigned)(format >> 48), (unsigned long long)EVB_RING_FORMAT_WORD,
                           EVB_RING_VERSION);
    uint64_t cap = hdr->capacity;
    uint32_t max_frame = hdr->max_frame_bytes;
    if (!is_pow2(cap) || cap < EVB_RING_MIN_CAPACITY || cap > EVB_RING_MAX_CAPACITY ||
        cap != bytes - EVB_RING_DATA_OFFSET)
        return evb_err_set(-EBADMSG, "ring capacity %llu does not fit a file of %zu bytes",
                           (unsigned long long)cap, bytes);
    if (max_frame < EVB_FRAME_HDR + EVB_FRAME_ALIGN || max_frame > cap / 4 ||
        max_frame % EVB_FRAME_ALIGN)
        return evb_err_set(-EBADMSG, "ring max frame %u invalid for capacity %llu",
                           max_frame, (unsigned long long)cap);
    r->base = (uint8_t *)base;
    r->map_bytes = bytes;
    r->hdr = (struct evb_ring_hdr *)base;
    r->pslots = (struct evb_producer_slot *)(r->base + EVB_PRODUCER_SLOTS_OFFSET);
    r->rslots = (struct evb_reader_slot *)(r->base + EVB_READER_SLOTS_OFFSET);
    r->data = r->base + EVB_RING_DATA_OFFSET;
    r->rdata = r->data;
    r->capacity = cap;
    r->mask = cap - 1;
    r->max_frame = max_frame;
    r->max_event = max_frame - EVB_FRAME_HDR;
    r->partition = hdr->partition;
    uint64_t base_pos = hdr->base_pos;
    uint32_t flags = hdr->flags;
    if (base_pos % EVB_FRAME_ALIGN || (flags & ~EVB_RING_F_DURABLE))
        return evb_err_set(-EBADMSG, "ring base %llu or flags 0x%x invalid",
                           (unsigned long long)base_pos, flags);
    r->base_pos = base_pos;
    r->durable = flags & EVB_RING_F_DURABLE;
    r->incarnation = evb_ring_incarnation(hdr->created_ns, base_pos);
    return 0;
}

static int ring_open(struct evb_ring *r, const char *path, bool ro)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->dead_ns = 200ull * 1000 * 1000;
    r->stall_ns = 5000ull * 1000 * 1000;
    int fd = evb_open_file(AT_FDCWD, path, ro ? O_RDONLY : O_RDWR, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return evb_err_set(-e, "%s: %s", path, strerror(e));
    }
    if (st.st_size < (off_t)EVB_RING_DATA_OFFSET) {
        close(fd);
        return evb_err_set(-EBADMSG, "%s: %lld bytes is too small for a ring", path,
                           (long long)st.st_size);
    }
    size_t bytes = (size_t)st.st_size;
    void *base = mmap(NULL, bytes, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int e = errno;
        close(fd);
        return evb_err_set(-e, "%s: mmap: %s", path, strerror(e));
    }
    int rc = evb_ring_validate(r, base, bytes);
    r->readonly = ro;
    if (rc) {
        munmap(base, bytes);
        close(fd);
        return evb_err_prefix(rc, "%s", path);
    }
    r->fd = fd;
    return 0;
}

int evb_ring_open(struct evb_ring *r, const char *path)
{
    return ring_open(r, path, false);
}

int evb_ring_open_ro(struct evb_ring *r, const char *path)
{
    return ring_open(r, path, true);
}

int evb_ring_map_view(struct evb_ring *r)
{
    if (r->readonly) {
        r->view = r->base;
        return 0;
    }
    void *v = mmap(NULL, r->map_bytes, PROT_READ, MAP_SHARED, r->fd, 0);
    if (v == MAP_FAILED)
        return evb_err_set(-errno, "partition %u: mmap: %s", r->partition, strerror(errno));
    r->view = v;
#ifdef EVB_TSAN
    /* ThreadSanitizer knows memory by virtual address: through a second
     * mapping it would take the producers' stores and this reader's loads
     * for unrelated bytes and check nothing between them. Its builds read
     * through the writable mapping (the read-only hand-out is tested by
     * the ordinary builds, tests/bus/test_readonly.c). */
    return 0;
#endif
    r->rdata = r->view + EVB_RING_DATA_OFFSET;
    return 0;
}

void evb_ring_close(struct evb_ring *r)
{
    if (r->view && r->view != r->base)
        munmap(r->view, r->map_bytes);
    r->view = NULL;
    r->rdata = r->data;
    if (r->base)
        munmap(r->base, r->map_bytes);
    if (r->fd >= 0)
        close(r->fd);
    r->base = NULL;
    r->fd = -1;
}
