/*
 * topic_config_format.h - the text of topic.conf, a topic's persisted
 * evb_topic_config (topic.c writes it once, at creation, and reads it at
 * every open; for durable topics a copy in the data directory is the
 * topic's identity on disk and survives a reboot).
 *
 *   evbus-topic 2              <- first line: name and version
 *   partitions 4               <- then "key value", one per line
 *   ring_bytes 4194304
 *   max_event_bytes 65536
 *   file_mode 660
 *   durability 1               <- the rest only for durable topics
 *   segment_bytes 67108864
 *   retain_bytes 0
 *   retain_ms 0
 *   retain_cap_bytes 0
 *   flags 0
 *   flush_ms 200
 *   numa_node 1                <- placement, any topic, only when set
 *   huge_pages 1
 *
 * Keys (each an evb_topic_config field of the same name; values are
 * unsigned decimal numbers, file_mode octal; see evbus.h for meanings):
 *
 *   key               type  range checked at read
 *   partitions        u32   1..EVB_MAX_PARTITIONS
 *   ring_bytes        u64   power of two in [EVB_RING_MIN_CAPACITY,
 *                           EVB_RING_MAX_CAPACITY]
 *   max_event_bytes   u32   1..ring_bytes/4 - frame header - 8
 *   file_mode         u32   octal, permission bits only (<= 777)
 *   durability        u32   0 none, 1 async, 2 sync
 *   segment_bytes     u64   durable: a multiple of ring_bytes, <= 2^40
 *   retain_bytes      u64   0: no limit
 *   retain_ms         u64   0: no limit
 *   retain_cap_bytes  u64   0: no limit
 *   flags             u32   EVB_TOPIC_RETAIN_UNTIL_CONSUMED only
 *   flush_ms          u32   any
 *   numa_node         u32   0..EVB_NUMA_NODE_MAX, the node itself (the
 *                           struct field holds it plus one); absent: none
 *   huge_pages        u32   0..2 (EVB_HUGE_PAGES_*); absent: 0
 *
 * Reading is strict; each refusal names the file, line, key and value:
 *   first line not "evbus-topic <n>"          -EBADMSG  (not a topic.conf)
 *   "evbus-topic <n>" with n not 1 or 2       -EPROTO   (another build's)
 *   a line not "key value", a value that is not a number of the key's
 *   base or does not fit its type, a key given twice, a line longer
 *   than EVB_CONF_LINE_MAX with its newline (so 255 bytes before it),
 *   a NUL byte in a line (its own message), or a config that fails the
 *   range checks                              -EBADMSG
 * A well-formed key this build does not know is skipped, value unread:
 * a later build may add a key that older builds can safely ignore under
 * version 1; a key they must understand needs a new version line.
 *
 * Version history:
 *   1  the keys above; every topic.conf ever written carries this line,
 *      so there are no unversioned files to accept. numa_node and
 *      huge_pages came later under the same version: both only say where
 *      and how the rings' memory is allocated, never what it holds, so a
 *      build that skips them (see above) reads the topic correctly, and a
 *      file without them means no node and normal pages. A key that
 *      changes what the bytes mean must bump the version instead.
 *   2  the same keys; the topic's rings and segments may hold data frames
 *      padded to 64-byte lines (ring version 6), which a build that reads
 *      only version 1 would take for damage (and, without a durable mark,
 *      cut the log at). Written by every build of ring version 6 on, and
 *      written over a version 1 file in the data directory when such a
 *      build rebuilds the topic from its segments (bus/topic.c), so an
 *      older build refuses the topic rather than read it. Both read.
 */
#ifndef EVB_TOPIC_CONFIG_FORMAT_H
#define EVB_TOPIC_CONFIG_FORMAT_H

#define EVB_CONF_NAME "evbus-topic"
#define EVB_CONF_VERSION 2
#define EVB_CONF_STR_(x) #x
#define EVB_CONF_STR(x) EVB_CONF_STR_(x)
/* The first line, "evbus-topic 2". */
#define EVB_CONF_HEADER EVB_CONF_NAME " " EVB_CONF_STR(EVB_CONF_VERSION)
#define EVB_CONF_LINE_MAX 256 /* bytes of a line, its newline included */
/* The highest NUMA node numa_node may name (Linux allows 1024 nodes). */
#define EVB_NUMA_NODE_MAX 1023

#endif /* EVB_TOPIC_CONFIG_FORMAT_H */
