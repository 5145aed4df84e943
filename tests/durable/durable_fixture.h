/*
 * durable_fixture.h - what the tests of durable topics through the public
 * API share (test_retention.c, test_flush_round.c, test_lost_log.c): a bus
 * with a private data directory per test, a small durable topic, events
 * that carry their sequence and a checksum, and reading them back in
 * order. Segment files built by hand are seg_helpers.h's.
 */
#ifndef EVB_DURABLE_FIXTURE_H
#define EVB_DURABLE_FIXTURE_H

#include <stdint.h>

#include "t_helpers.h"

#define DF_VLEN 64u /* bytes of every event's value */

extern evb_bus *df_bus; /* opened by df_setup, closed by df_teardown */

/* Suite .init/.fini: the bus of t_bus_dir() over t_data_dir(), then both
 * removed. */
void df_setup(void);
void df_teardown(void);

/* One partition, 64 KiB ring, 128 KiB segments (about 1000 events each),
 * events up to 4 KiB, with DURABILITY; callers change what they need. */
evb_topic_config df_config(uint32_t durability);
/* evb_topic_create, asserting success. */
void df_create(const char *topic, const evb_topic_config *tc);

/* Publish to partition 0 through P one event whose value carries SEQ. */
void df_publish_on(evb_producer *p, uint64_t seq);
/* Open a producer (blocking without limit), publish N events with
 * sequences FROM.., wait until they are durable, close. */
void df_publish(const char *topic, uint64_t from, uint64_t n);

/* In a forked child (no Criterion asserts there): open the bus of
 * t_bus_dir() over t_data_dir() and a producer on TOPIC that waits
 * without limit, and publish one event with EVB_MSG_SYNC to partition 0,
 * so that this process runs the partition's flusher. The producer, or
 * NULL when any step failed. */
evb_producer *df_child_flusher(const char *topic);
/* A child process whose producer's flusher holds TOPIC's partitions (it
 * publishes one sync event, sequence 0 of writer 1, to be sure), until
 * df_stop_flusher(). Fork it before this process starts threads. */
pid_t df_start_flusher(const char *topic);
void df_stop_flusher(pid_t pid);

/* Make partition 0's next segment (after the first, of TC's size) a
 * hard link to a file of ours, which the flusher refuses to write
 * through: its switch to that segment fails the partition. */
void df_link_next_segment(const char *topic, const evb_topic_config *tc);

/* From now on a read (pread) of a file whose name ends in SUFFIX fails
 * with EIO, in every thread of this process (the library is linked in
 * statically; durable_fixture.c has the pread); NULL: none fails again.
 * Returns how many failed since the last call. */
unsigned df_fail_reads(const char *suffix);

/* From now on count the bytes read (pread) from files whose name ends in
 * SUFFIX, in every thread (NULL: stop); returns the bytes counted since
 * the last call. */
uint64_t df_count_reads(const char *suffix);

/* evb_partition_stat of partition 0, asserting success. */
struct evb_partition_stat df_stat(const char *topic);

/* The next event of C within a second: it must have OFFSET, an intact
 * value and the sequence OFFSET (df_publish's events from 0 on). */
evb_event df_next(evb_consumer *c, uint64_t offset);
/* df_next for N events from offset FROM on. */
void df_read(evb_consumer *c, uint64_t from, uint64_t n);

#endif
