/*
 * util.h - helpers of the evbus tool that know nothing of the bus: strict
 * number parsing, a growable byte buffer, text escaping, UTF-8 checking
 * and base64.
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
 * As util_parse_u64(), then an optional binary suffix: K, M, G (also
 * KiB, MiB, GiB, case-insensitive) multiply by 2^10, 2^20, 2^30.
 */
int util_parse_size(const char *text, uint64_t *out);

/* Parse a positive, finite number of seconds ("2", "0.5"). Returns 0 or
 * -EINVAL. */
int util_parse_seconds(const char *text, double *out);

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

#endif /* EVBUS_UTIL_H */
