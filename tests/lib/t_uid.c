/*
 * t_uid.c - see t_uid.h. Forking and waiting are t_helpers.c's.
 */
#include "t_uid.h"

#include <criterion/criterion.h>
#include <grp.h>
#include <unistd.h>

#include "t_helpers.h"

void t_need_root(const char *why)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to %s (CI runs it as root)", why);
}

struct as_user {
    uid_t uid;
    gid_t gid;
    int (*fn)(void *arg);
    void *arg;
};

/* In the child: groups first, while we still may change them. */
static int run_as(void *arg)
{
    struct as_user *a = arg;
    if (setgroups(1, &a->gid) || setresgid(a->gid, a->gid, a->gid) ||
        setresuid(a->uid, a->uid, a->uid))
        _exit(120);
    return a->fn(a->arg);
}

pid_t t_spawn_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg)
{
    /* The child gets its own copy of this at fork: a local is enough. */
    struct as_user a = {uid, gid, fn, arg};
    return t_spawn(run_as, &a);
}
