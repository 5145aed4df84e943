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

struct evb_pstate {
    struct evb_pst_hdr *map;    /* NULL: not a stable producer */
    size_t bytes;
    int fd;                     /* holds the OFD lock */
};

/* Open (creating when new) and lock the state of stable id ID on TM: -EBUSY
 * while another handle holds it. Settles what a previous holder left (a
 * claim whose fate was open, a log not read yet) so that every entry's
 * committed == claimed == the next sequence for its partition. */
int evb_pstate_open(struct evb_pstate *ps, evb_bus *bus, struct evb_topic_map *tm,
                    uint32_t id);
/* Unlock and unmap; a no-op when not open. */
void evb_pstate_close(struct evb_pstate *ps);

#endif
