/*
 * ring_helpers.c - see ring_helpers.h. Plain stores into the mapping are
 * fine here: each test is one thread building a state before it calls the
 * code under test (which supplies the ordering it needs). The exception is
 * a frame's claim fields, which a padder thread may be writing too.
 */
#include "ring_helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include "frame.h"
#include "t_helpers.h"

void tr_fini(void)
{
    t_bus_cleanup();
}

const char *tr_ring(struct evb_ring *r, const struct evb_ring_init *init)
{
    static char path[512];
    static int n;
    struct evb_ring_init dflt = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600};
    snprintf(path, sizeof path, "%s/ring.%d", t_bus_dir(), n++);
    int rc = evb_ring_create(path, init ? init : &dflt);
    cr_assert_eq(rc, 0, "create %s: %d %s", path, rc, evb_err_get());
    rc = evb_ring_open(r, path);
    cr_assert_eq(rc, 0, "open %s: %d %s", path, rc, evb_err_get());
    r->dead_ns = TR_DEAD_NS;
    r->stall_ns = TR_STALL_NS;
    return path;
}

static int report_self(void *arg)
{
    struct t_shared *sh = arg;
    atomic_store_explicit(&sh->val[0], evb_proc_self(), memory_order_release);
    return 0;
}

uint64_t tr_owner_dead(void)
{
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(report_self, sh);
    cr_assert_eq(t_wait_exit(pid, 5000), 0);
    uint64_t owner = atomic_load_explicit(&sh->val[0], memory_order_acquire);
    cr_assert_eq(owner >> 32, (uint64_t)pid);
    cr_assert_eq(evb_proc_alive(owner), 0, "reaped child %d reads as alive", pid);
    return owner;
}

uint64_t tr_owner_live(void)
{
    int pid = getppid();
    uint64_t start = evb_proc_start(pid);
    uint64_t owner = (uint64_t)(uint32_t)pid << 32 | (uint32_t)start;
    if (!(uint32_t)start)
        owner |= 1;
    cr_assert(evb_proc_alive(owner), "parent %d reads as dead", pid);
    return owner;
}

uint64_t tr_owner_reused(void)
{
    uint64_t owner = tr_owner_live() ^ 0x5a5a;
    cr_assert_eq(evb_proc_alive(owner), 0);
    return owner;
}

void tr_frame(struct evb_ring *r, uint64_t pos, uint64_t offset, uint32_t len,
              uint32_t claim_len, uint16_t claim_events)
{
    struct evb_frame *f = evb_ring_frame(r, pos);
    cr_assert_geq(len, EVB_FRAME_HDR);
    cr_assert_leq((pos & r->mask) + evb_align_frame(len), r->capacity);
    /* The three fields a padder may write at the same time, as the
     * library's producers write them (frame.h). */
    evb_frame_set_claim(f, offset, claim_len, claim_events);
    f->timestamp_ns = 1000 + offset;
    f->producer_seq = offset;
    f->len = len;
    f->producer_id = 9;
    f->key_len = 0;
    f->crc32c = 0;
    f->type = 1;
    f->flags = 0;
    uint8_t *b = (uint8_t *)f;
    for (uint32_t i = EVB_FRAME_HDR; i < len; i++)
        b[i] = (uint8_t)(offset + i);
}

void tr_stamp(struct evb_ring *r, uint64_t pos, uint64_t stamp)
{
    atomic_store_explicit(&evb_ring_frame(r, pos)->stamp, stamp, memory_order_release);
}

uint64_t tr_stamp_at(struct evb_ring *r, uint64_t pos)
{
    return atomic_load_explicit(&evb_ring_frame(r, pos)->stamp, memory_order_acquire);
}

void tr_set_tail(struct evb_ring *r, uint64_t pos, uint64_t offset)
{
    atomic_store_explicit(&r->hdr->tail.pos, pos, memory_order_release);
    atomic_store_explicit(&r->hdr->tail.offset, offset, memory_order_release);
}

void tr_fill(struct evb_ring *r, const struct evb_ring_claim *c)
{
    uint32_t each = c->len / c->events;
    cr_assert_eq(each % EVB_FRAME_ALIGN, 0);
    for (uint32_t i = 0; i < c->events; i++)
        tr_frame(r, c->data_pos + (uint64_t)i * each, c->offset + i, each,
                 i ? 0 : c->len, (uint16_t)(i ? 0 : c->events));
}

int tr_publish(struct evb_ring_producer *p, uint32_t len, struct evb_ring_claim *c)
{
    int rc = evb_ring_claim(p, len, 1, c);
    if (rc)
        return rc;
    tr_fill(p->r, c);
    return evb_ring_commit(p, c);
}

void tr_intent(struct evb_ring *r, uint32_t slot, uint64_t owner, uint64_t pos,
               uint64_t offset, uint32_t pad, uint32_t len, uint32_t events)
{
    struct evb_producer_slot *s = &r->pslots[slot];
    atomic_store_explicit(&s->intent_seq, 2, memory_order_relaxed);
    atomic_store_explicit(&s->intent_pos, pos, memory_order_relaxed);
    atomic_store_explicit(&s->intent_offset, offset, memory_order_relaxed);
    atomic_store_explicit(&s->intent_pad, pad, memory_order_relaxed);
    atomic_store_explicit(&s->intent_len, len, memory_order_relaxed);
    atomic_store_explicit(&s->intent_events, events, memory_order_relaxed);
    atomic_store_explicit(&s->pending, pos, memory_order_relaxed);
    atomic_store_explicit(&s->owner, owner, memory_order_release);
}

int tr_read_wait(struct evb_ring_reader *rd, struct evb_frame_view *v, int timeout_ms)
{
    uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int rc = evb_ring_read(rd, v);
        if (rc != -EAGAIN || t_now_ms() >= end)
            return rc;
        sched_yield();
    }
}
