/*
 * t_uid.h - running part of a test as another user: the skip when the
 * test cannot change uids, and a child process that drops to a given uid
 * and gid before it runs its block. What the block checks is the test's.
 */
#ifndef EVB_T_UID_H
#define EVB_T_UID_H

#include <sys/types.h>

#define T_NOBODY 65534 /* uid nobody, gid nogroup */

/* Skip the test (cr_skip_test) unless it runs as root; WHY says what root
 * is needed for. */
void t_need_root(const char *why);

/* t_spawn, but the child first becomes UID with GID as its only group
 * (supplementary groups too), then runs fn(arg); it exits 120 when it
 * cannot drop to them, so a test never runs the block as root by
 * mistake. Needs root. */
pid_t t_spawn_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg);

#endif
