/*
 * util.h - helpers of the evbus tool that know nothing of the bus: strict
 * number parsing, a growable byte buffer, text escaping, UTF-8 checking
 * and base64 (util.c); durations and wall-clock times (util_time.c).
 */
#ifndef EVBUS_UTIL_H
#define EVBUS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parse TEXT as a decimal unsigned integer, all of it: no sign, no
 * whitespace, no trailing characters, no overflow. Returns 0 or -EINVAL
 * (not a number) or -ERANGE (does not fit 64 bits).
 */
int util_parse_u64(const char *text, uint64_t *out);

/*
 * As util_parse_u64(), then an optional binary suffix: K, M, G, T (also
 * KiB, MiB, GiB, TiB, case-insensitive) multiply by 2^10, 2^20, 2^30, 2^40.
 */
int util_parse_size(const char *text, uint64_t *out);
/* The leading DIGITS characters of TEXT as a number times MULT:
 * -EINVAL, -ERANGE on overflow. (Sizes and durations share it.) */
int util_parse_scaled(const char *text, size_t digits, uint64_t mult, uint64_t *out);

/* Parse a number of seconds from MIN to MAX ("2", "0.5"; no sign, no
 * exponent needed). Returns 0 or -EINVAL. */
int util_parse_seconds(const char *text, double min, double max, double *out);

/* A growable byte buffer; zero-initialise. */
typedef struct util_buf {
    char *data;
    size_t len;
    size_t cap;
} util_buf;

/* Make room for N more bytes. Returns 0 or -ENOMEM. */
int util_buf_reserve(util_buf *b, size_t n);
/* Append N bytes. Returns 0 or -ENOMEM. */
int util_buf_append(util_buf *b, const void *p, size_t n);
void util_buf_free(util_buf *b);

/*
 * Append P[0..N) to B as one line of readable text: \n, \r, \t and \\ as
 * C escapes, valid UTF-8 as is, any other byte below 0x20, 0x7f or not
 * part of valid UTF-8 as \xHH. Returns 0 or -ENOMEM.
 */
int util_escape(util_buf *b, const void *p, size_t n);

/* True when P[0..N) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing past U+10FFFF) and holds no NUL byte. */
bool util_utf8_text(const void *p, size_t n);

/* Append P[0..N), which must be valid UTF-8 (util_utf8_text), to B as a
 * quoted JSON string. Returns 0 or -ENOMEM. */
int util_json_string(util_buf *b, const void *p, size_t n);

/* Append the base64 (RFC 4648, padded) of P[0..N) to B, NUL-terminated
 * but the NUL not counted in b->len. Returns 0 or -ENOMEM. */
int util_base64(util_buf *b, const void *p, size_t n);

/* Write V into OUT as "4 MiB" when it is a whole number of KiB, MiB or
 * GiB, else as "V B". */
void util_fmt_size(uint64_t v, char *out, size_t cap);

/* Monotonic clock in seconds. */
double util_now(void);

/*
 * Parse TEXT as a duration in milliseconds: digits, then a unit ms, s, m,
 * h or d ("30s", "7d"). Without NEED_UNIT, bare digits are milliseconds.
 * Returns 0, -EINVAL or -ERANGE (does not fit 64 bits of ms).
 */
int util_parse_duration_ms(const char *text, bool need_unit, uint64_t *out);

/* Write MS with the largest unit that divides it ("7d", "90s", "250ms"). */
void util_fmt_duration_ms(uint64_t ms, char *out, size_t cap);

/*
 * Parse TEXT as a wall-clock time in nanoseconds since the epoch:
 *   2026-11-24T21:00:00Z          RFC 3339: optional .fraction, Z or +hh:mm
 *                                 or -hh:mm ('t', 'z' and ' ' accepted)
 *   @1795640400.5                 Unix seconds, optional fraction
 *   -30s, -5m, -2h, -1d           that long before NOW_NS (units as
 *                                 util_parse_duration_ms, unit required)
 * Returns 0, -EINVAL (none of these forms, or no such date) or -ERANGE
 * (before 1970 or after 2554, which 64 bits of ns cannot hold).
 */
int util_parse_time_ns(const char *text, uint64_t now_ns, uint64_t *out);

/* Write NS since the epoch as UTC RFC 3339 with nanoseconds,
 * "2026-11-24T21:00:00.000000000Z" (31 bytes with the NUL). */
void util_fmt_time_ns(uint64_t ns, char *out, size_t cap);

/* CLOCK_REALTIME in nanoseconds: the clock of evb_event.timestamp_ns. */
uint64_t util_realtime_ns(void);

#endif /* EVBUS_UTIL_H */
