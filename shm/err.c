/*
 * err.c - the per-thread error detail behind evb_last_error(). Only cold
 * paths write it; the hot path returns bare codes and formats nothing.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char evb_err_buf[512];

int evb_err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(evb_err_buf, sizeof evb_err_buf, fmt, ap);
    va_end(ap);
    return code;
}

int evb_err_prefix(int code, const char *fmt, ...)
{
    char head[256], old[sizeof evb_err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, evb_err_buf, sizeof old);
    if (old[0])
        snprintf(evb_err_buf, sizeof evb_err_buf, "%s: %s", head, old);
    else
        snprintf(evb_err_buf, sizeof evb_err_buf, "%s", head);
    return code;
}

void evb_err_clear(void)
{
    evb_err_buf[0] = '\0';
}

const char *evb_err_get(void)
{
    return evb_err_buf;
}
