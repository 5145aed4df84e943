/*
 * fuzz_ring.c - libFuzzer target: the ring protocol (shm/) over a ring
 * image of hostile bytes. The image is opened as map.c opens a ring file
 * (evb_ring_validate), then a reader of the chosen kind attaches, seeks
 * and drains it, holes are timed and padded at once (dead and stall
 * times of 1 ns), and a producer claims and commits one frame.
 *
 * Input: 16 control bytes (below), then the image in pieces:
 *   1024 bytes  ring header
 *   512 bytes   producer slots 0..3
 *   512 bytes   reader slots 0..3
 *   the rest    data, from data offset 0 (cut at the capacity)
 * Everything else of the file is zero (the other slots are free). The
 * file is capacity + 20 KiB long, capacity the header's when it is a
 * power of two in [64 KiB, 256 KiB] and 64 KiB otherwise, so a header
 * that lies about the size is refused like one of a real file. The
 * mapping has no-access pages on both sides: a read out of the file
 * faults.
 *
 * What must hold: the calls return 0 or their documented errors, every
 * delivered event lies inside the mapping (or the reader's copy) with
 * lengths within max_frame, and it all ends within a bounded number of
 * calls.
 */
#include "fuzz.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "evbus.h"
#include "frame.h"
#include "ring.h"

#define CTRL_BYTES 16u
#define HDR_PART 1024u
#define SLOTS_PART 512u

struct guarded {
    uint8_t *region;
    size_t region_bytes;
    uint8_t *image;
};

/* BYTES of zeroed shared memory with an inaccessible page either side. */
static struct guarded map_guarded(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct guarded g = {.region_bytes = bytes + 2 * page};
    g.region = mmap(NULL, g.region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    FUZZ_CHECK(g.region != MAP_FAILED, "mmap %zu", g.region_bytes);
    mprotect(g.region, page, PROT_NONE);
    mprotect(g.region + page + bytes, page, PROT_NONE);
    g.image = g.region + page;
    return g;
}

static bool in_range(const void *p, size_t n, const void *lo, size_t lo_n)
{
    const uint8_t *a = p, *b = lo;
    return a >= b && n <= lo_n && (size_t)(a - b) <= lo_n - n;
}

static uint64_t sum;

static void check_view(const struct evb_ring *r, const struct evb_ring_reader *rd,
                       const struct evb_frame_view *v)
{
    size_t n = (size_t)v->key_len + v->value_len;
    FUZZ_CHECK(n + EVB_FRAME_HDR <= r->max_frame, "event of %zu bytes, max frame %u", n,
               r->max_frame);
    bool in_ring = in_range(v->key, v->key_len, r->data, r->capacity) &&
                   in_range(v->value, v->value_len, r->data, r->capacity);
    bool in_copy = rd->buf && in_range(v->key, v->key_len, rd->buf, r->max_frame) &&
                   in_range(v->value, v->value_len, rd->buf, r->max_frame);
    FUZZ_CHECK(in_ring || in_copy, "event bytes outside the ring and the copy");
    for (uint32_t i = 0; i < v->key_len; i++)
        sum += v->key[i];
    for (uint32_t i = 0; i < v->value_len; i++)
        sum += v->value[i];
}

static void check_rc(int rc, const char *what)
{
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG || rc == -ESTALE || rc == -EINVAL,
               "%s: %d (%s)", what, rc, evb_last_error());
}

/* Seek as control byte MODE says; the value words come from the input. */
static int seek(struct evb_ring_reader *rd, uint8_t mode, uint64_t a, uint64_t b)
{
    switch (mode % 6) {
    case 0: return 0;
    case 1: return evb_ring_reader_seek_oldest(rd);
    case 2: return evb_ring_reader_seek_offset(rd, a);
    case 3: return evb_ring_reader_seek_pos(rd, a & ~7ull, b);
    case 4: return evb_ring_reader_seek(rd, a, b, false);
    default: evb_ring_reader_skip_before(rd, a); return evb_ring_reader_seek_oldest(rd);
    }
}

static void drain(struct evb_ring *r, struct evb_ring_reader *rd)
{
    /* Each call moves at least 8 bytes or stops: a bound on the calls. */
    uint64_t limit = r->capacity / 8 + 64;
    int idle = 0;
    for (uint64_t i = 0; i < limit && idle < 4; i++) {
        struct evb_frame_view v;
        int rc = evb_ring_read(rd, &v);
        check_rc(rc, "evb_ring_read");
        if (rc == 0) {
            check_view(r, rd, &v);
            idle = 0;
            if (i % 16 == 0)
                evb_ring_reader_release(rd);
            continue;
        }
        if (rc != -EAGAIN)
            return;
        int st = evb_ring_reader_ready(rd);
        FUZZ_CHECK(st >= 0 && st <= 2, "reader_ready %d", st);
        idle++;
    }
}

/* One claim of one frame, committed; -EAGAIN retried after an unblock. */
static void produce(struct evb_ring *r, uint32_t value_len)
{
    struct evb_ring_producer p;
    int rc = evb_ring_producer_attach(&p, r, 7);
    FUZZ_CHECK(rc == 0 || rc == -EBUSY || rc == -EBADMSG, "producer_attach %d", rc);
    if (rc)
        return;
    /* What the library's producers claim: the frame padded to its line. */
    if (evb_frame_len(0, value_len) > r->max_frame)
        value_len = 0;
    uint32_t len = (uint32_t)evb_frame_bytes(0, value_len);
    struct evb_ring_claim c;
    for (int tries = 0; tries < 3; tries++) {
        rc = evb_ring_claim(&p, len, 1, &c);
        FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG, "claim %d (%s)", rc,
                   evb_last_error());
        if (rc != -EAGAIN)
            break;
        evb_ring_producer_unblock(&p);
    }
    if (rc == 0) {
        struct evb_frame *f = evb_ring_frame(r, c.data_pos);
        evb_frame_init(f, &(struct evb_frame_fields){
                              .offset = c.offset, .value_len = value_len,
                              .claim_len = c.len, .claim_events = 1});
        rc = evb_ring_commit(&p, &c);
        FUZZ_CHECK(rc == 0 || rc == -ECANCELED, "commit %d", rc);
    }
    evb_ring_producer_detach(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t ctrl[CTRL_BYTES];
    fuzz_take(&in, ctrl, CTRL_BYTES);
    uint64_t a = 0, b = 0;
    memcpy(&a, ctrl + 4, 6);
    memcpy(&b, ctrl + 10, 6);

    uint8_t hdr[HDR_PART];
    fuzz_take(&in, hdr, HDR_PART);
    uint64_t cap;
    memcpy(&cap, hdr + 16, sizeof cap);
    if (cap < (64u << 10) || cap > (256u << 10) || (cap & (cap - 1)))
        cap = 64u << 10;
    size_t bytes = EVB_RING_DATA_OFFSET + cap;
    struct guarded g = map_guarded(bytes);
    memcpy(g.image, hdr, HDR_PART);
    /* Unless ctrl[2] bit 1 keeps the image's own, the format word is this
     * build's: a ring format change (EVB_RING_VERSION) would otherwise
     * turn every seed into one refused at the door, and the protocol
     * behind it would go unfuzzed until the seeds were made again. */
    if (!(ctrl[2] & 2)) {
        uint64_t fw = EVB_RING_FORMAT_WORD;
        memcpy(g.image + offsetof(struct evb_ring_hdr, format), &fw, sizeof fw);
    }
    size_t got;
    const uint8_t *p = fuzz_bytes(&in, SLOTS_PART, &got);
    memcpy(g.image + EVB_PRODUCER_SLOTS_OFFSET, p, got);
    p = fuzz_bytes(&in, SLOTS_PART, &got);
    memcpy(g.image + EVB_READER_SLOTS_OFFSET, p, got);
    p = fuzz_bytes(&in, cap, &got);
    memcpy(g.image + EVB_RING_DATA_OFFSET, p, got);

    struct evb_ring r;
    memset(&r, 0, sizeof r);
    r.fd = -1;
    int rc = evb_ring_validate(&r, g.image, bytes);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO, "validate %d", rc);
    if (rc == 0) {
        r.dead_ns = 1;
        r.stall_ns = 1;
        uint64_t pos, off;
        check_rc(evb_ring_oldest(&r, &pos, &off), "evb_ring_oldest");
        struct evb_ring_reader rd;
        uint32_t kind = ctrl[0] % 3;
        /* At the tail, as consumer.c attaches; the seek moves it. */
        rc = evb_ring_reader_attach(&rd, &r, kind, "fz", EVB_POS_NONE, 0);
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EBUSY || rc == -EINVAL,
                   "reader_attach %d", rc);
        if (rc == 0) {
            check_rc(seek(&rd, ctrl[1], a, b), "seek");
            drain(&r, &rd);
            if (ctrl[2] & 1) {
                produce(&r, ctrl[3]);
                drain(&r, &rd);
            }
            evb_ring_reader_detach(&rd);
        }
        evb_ring_reap_readers(&r);
        evb_ring_reap_producers(&r);
    }
    munmap(g.region, g.region_bytes);
    return 0;
}
