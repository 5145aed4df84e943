/*
 * error.c - version, error words and the per-thread error detail.
 */
#include <errno.h>
#include <string.h>

#include "bus_internal.h"

EVB_EXPORT const char *evb_version(void)
{
    return "0.1.0";
}

EVB_EXPORT const char *evb_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case -EAGAIN: return "would block: ring full or nothing to read yet";
    case -ETIMEDOUT: return "timed out";
    case -EMSGSIZE: return "event larger than the topic's max_event_bytes";
    case -ENOENT: return "not found (no such topic, bus, file or event)";
    case -EEXIST: return "topic already exists";
    case -EBADMSG: return "corrupt ring, frame or file";
    case -EPROTO: return "ring or file format not readable by this build";
    case -EACCES: return "permission denied";
    case -ENOSPC: return "no space left (tmpfs for a ring, or the disk for a durable topic)";
    case -EINVAL: return "invalid argument";
    case -ENOMEM: return "out of memory";
    case -EBUSY: return "held by a live handle of this process or another (a slot, a flush lock), or no free slot";
    case -ECANCELED: return "claim padded after the producer stalled: event not published";
    case -ENAMETOOLONG: return "name too long";
    case -ERANGE: return "older than the retained log";
    case -EIO: return "disk write or fdatasync failed";
    case -EMEDIUMTYPE: return "wrong kind of file in the bus or data directory (fifo, symlink, directory...)";
    case -EOPNOTSUPP: return "not supported on this system";
    default: return strerror(err < 0 ? -err : err);
    }
}

EVB_EXPORT const char *evb_last_error(void)
{
    return evb_err_get();
}

EVB_EXPORT void evb_clear_error(void)
{
    evb_err_clear();
}
