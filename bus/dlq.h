/*
 * dlq.h - dead-letter topics inside bus/: what a consumer handle keeps to
 * reject cheaply (a producer on <topic>.dlq, opened on first use) and the
 * one append every reject goes through, for consumers (dlq.c) and queue
 * groups (max_deliveries) alike. Formats: dlq_format.h.
 */
#ifndef EVB_DLQ_H
#define EVB_DLQ_H

#include "bus_internal.h"

/* A producer on one DLQ, kept by whoever rejects. */
struct evb_dlq_writer;

/* What evb_dlq_append() refuses before it writes anything: -EINVAL for a
 * reason too long, an ORIGIN that is a DLQ, an event with a length and
 * no bytes or with no delivery; else 0. */
int evb_dlq_args(const struct evb_topic_map *origin, const evb_event *ev, const char *reason,
                 uint32_t deliveries);
/* How long a reject waits for room in a full DLQ's ring. Bounded: a DLQ
 * whose gating reader is the rejecting thread itself would wait for ever.
 * A queue group's dead letter (max_deliveries) waits only briefly: the
 * member has other events to hand out, and the refused one comes back
 * after ack_wait. */
#define EVB_DLQ_BLOCK_MS 1000
#define EVB_DLQ_QUEUE_BLOCK_MS 10
/*
 * Append EV, read from ORIGIN (the topic's map), to <origin>.dlq through
 * *W (opened, and the DLQ created, on first use; close with
 * evb_dlq_writer_close), with REASON (NUL-terminated, <= EVB_DLQ_REASON_MAX
 * bytes, NULL for ""), DELIVERIES (>= 1) and REJECTER (a consumer or group
 * name, "" or NULL for none), waiting up to BLOCK_MS for room (the
 * producer's block_ms). Returns once the DLQ event is committed, and on a
 * SYNC topic on disk. 0 or -errno as evb_consumer_reject().
 */
int evb_dlq_append(struct evb_dlq_writer **w, evb_bus *bus, const struct evb_topic_map *origin,
                   const evb_event *ev, const char *reason, uint32_t deliveries,
                   const char *rejecter, int32_t block_ms);
void evb_dlq_writer_close(struct evb_dlq_writer *w);

/* 1 when TOPIC names a dead-letter topic (ends in EVB_DLQ_SUFFIX). */
bool evb_dlq_is_dlq(const char *topic);
/* -EINVAL, said: DLQ has PARTS partitions, not the one that lets an
 * offset name one record (dlq list, resubmit and the resubmit state all
 * count in offsets of partition 0). */
int evb_dlq_parts_refused(const char *dlq, uint32_t parts);
/* <topic>.dlq into OUT (EVB_NAME_MAX + 1 bytes): 0 or -ENAMETOOLONG. */
int evb_dlq_name(const char *topic, char *out);
/* The config of the DLQ of a topic configured as ORIGIN, into CFG: 0, or
 * -EMSGSIZE when no ring holds its largest event as a record. */
int evb_dlq_config(const evb_topic_config *origin, evb_topic_config *cfg);

/* producer.c: set the application type of P's open claim (evb_claim
 * writes 0), for a resubmit that claims first to learn the position.
 * 0 or -EINVAL (no claim open). */
int evb_claim_set_type(evb_producer *p, uint16_t type);
/* producer.c: P's block_ms from now on (evb_producer_options). */
void evb_producer_set_block_ms(evb_producer *p, int32_t block_ms);

#endif
