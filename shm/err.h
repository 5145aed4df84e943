/*
 * err.h - per-thread detail for cold-path failures (evb_last_error()).
 * The origin sets the message with its code; callers prefix context.
 */
#ifndef EVB_ERR_H
#define EVB_ERR_H

/* Set the detail; returns CODE so a failure site reads
 * `return evb_err_set(-EBADMSG, "frame length %u > max %u", ...)`. */
int evb_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current detail with "context: ". Returns CODE. */
int evb_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void evb_err_clear(void);
const char *evb_err_get(void);

#endif
