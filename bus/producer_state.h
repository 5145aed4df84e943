/*
 * producer_state.h - a stable producer id's state file on a topic
 * (producer_state.c; format: producer_state_format.h). producer.c opens it
 * for a producer with a stable id and updates its entries around claims.
 */
#ifndef EVB_PRODUCER_STATE_H
#define EVB_PRODUCER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "producer_state_format.h"

struct evb_topic_map;
typedef struct evb_bus evb_bus;

/* One partition's state, as the holder last stored it. */
struct evb_pst_vals {
    uint64_t claimed;
    uint64_t committed;
    uint64_t pending_pos;
    uint64_t pending_seq;
};

struct evb_pstate {
    struct evb_pst_hdr *map;    /* NULL: not a stable producer */
    size_t bytes;
    int fd;                     /* holds the OFD lock */
    uint32_t id;
    struct evb_pst_vals *v;     /* per partition: the record cur names */
    uint32_t *gen;              /* and its gen */
};

/* Open (creating when new) and lock the state of stable id ID on TM: -EBUSY
 * while another handle holds it. Settles what a previous holder left (a
 * claim whose fate was open, a log not read yet) so that every entry's
 * committed == claimed == the next sequence for its partition. */
int evb_pstate_open(struct evb_pstate *ps, evb_bus *bus, struct evb_topic_map *tm,
                    uint32_t id);
/* Store V as partition PART's state: the holder's only way to write it.
 * A kill midway leaves the previous state (N1, producer_state.c). */
void evb_pstate_put(struct evb_pstate *ps, uint32_t part, const struct evb_pst_vals *v);
/* Unlock and unmap; a no-op when not open. */
void evb_pstate_close(struct evb_pstate *ps);

#endif
