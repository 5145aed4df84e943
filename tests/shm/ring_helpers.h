/*
 * ring_helpers.h - building ring states by hand for the shm/ unit tests
 * (tests/shm/test_*.c): a ring file in a private directory with short
 * dead/stall times, owner words of dead, live and pid-reused processes,
 * and frames written straight into the mapping. The tests then poke the
 * protocol with exactly the state they name, never with timing.
 */
#ifndef EVB_T_RING_HELPERS_H
#define EVB_T_RING_HELPERS_H

#include <stdint.h>

#include "err.h"
#include "ring.h"

#define TR_CAP (64u << 10)
#define TR_MAX_FRAME 4096u
#define TR_DEAD_NS (40ull * 1000 * 1000)      /* readers re-time holes every 10 ms */
/* Tests build a state in one thread, then call the code under test;
 * acquire/release is all they need from each other's processes. */
#define TR_LD(obj) atomic_load_explicit(&(obj), memory_order_acquire)
#define TR_ST(obj, v) atomic_store_explicit(&(obj), (v), memory_order_release)

#define TR_STALL_NS (3600ull * 1000000000ull) /* never, unless a test lowers it */

/* Suite .fini: remove the private directory. */
void tr_fini(void);

/* Create and open a ring at a fresh path with INIT (NULL: 64 KiB, frames up
 * to 4 KiB, base 0), then set its dead/stall times to TR_DEAD_NS and
 * TR_STALL_NS. Returns the path. */
const char *tr_ring(struct evb_ring *r, const struct evb_ring_init *init);

/* Owner words. Dead: a child we forked and reaped. Live: our parent (the
 * test runner), another process. Reused: our parent's pid with another
 * start time, as if the pid had been recycled. */
uint64_t tr_owner_dead(void);
uint64_t tr_owner_live(void);
uint64_t tr_owner_reused(void);

/* Write a data frame header of LEN bytes (payload bytes patterned from
 * OFFSET) at POS, without its stamp. CLAIM_LEN/CLAIM_EVENTS as a claim's
 * first frame carries them (0 in later frames of a batch). */
void tr_frame(struct evb_ring *r, uint64_t pos, uint64_t offset, uint32_t len,
              uint32_t claim_len, uint16_t claim_events);
/* Store STAMP (e.g. pos | EVB_STAMP_DATA, or a stale word) at POS. */
void tr_stamp(struct evb_ring *r, uint64_t pos, uint64_t stamp);
uint64_t tr_stamp_at(struct evb_ring *r, uint64_t pos);
/* Move the tail by hand, as a claim's CAS would. */
void tr_set_tail(struct evb_ring *r, uint64_t pos, uint64_t offset);

/* Fill claim C with EVENTS equal frames (C->len / events bytes each), so
 * it is ready to commit. */
void tr_fill(struct evb_ring *r, const struct evb_ring_claim *c);
/* Claim, fill and commit one event of LEN (aligned) bytes; returns the
 * claim's code, or the commit's. */
int tr_publish(struct evb_ring_producer *p, uint32_t len, struct evb_ring_claim *c);

/* A producer slot written by hand: OWNER claimed [POS, POS + PAD + LEN)
 * for EVENTS events from OFFSET, pending and not committed. */
void tr_intent(struct evb_ring *r, uint32_t slot, uint64_t owner, uint64_t pos,
               uint64_t offset, uint32_t pad, uint32_t len, uint32_t events);

/* Read until an event arrives, a code other than -EAGAIN, or TIMEOUT_MS. */
int tr_read_wait(struct evb_ring_reader *rd, struct evb_frame_view *v, int timeout_ms);

#endif
