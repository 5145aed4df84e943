/*
 * util.c - number parsing, escaping, UTF-8 and base64 for the evbus tool.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int util_parse_u64(const char *text, uint64_t *out)
{
    /* strtoull accepts leading blanks, a sign (and wraps "-1" to 2^64-1)
     * and stops at junk; a number on a command line must be digits only. */
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

/* Multiplier for a size suffix, or 0 when SUFFIX is not one. */
static uint64_t size_multiplier(const char *suffix)
{
    static const struct { const char *a, *b; uint64_t mult; } units[] = {
        { "", "", 1 },
        { "k", "kib", UINT64_C(1) << 10 },
        { "m", "mib", UINT64_C(1) << 20 },
        { "g", "gib", UINT64_C(1) << 30 },
        { "t", "tib", UINT64_C(1) << 40 },
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(suffix, units[i].a) == 0 || strcasecmp(suffix, units[i].b) == 0)
            return units[i].mult;
    return 0;
}

int util_parse_size(const char *text, uint64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    size_t digits = strspn(text, "0123456789");
    uint64_t mult = size_multiplier(text + digits);
    if (mult == 0)
        return -EINVAL;
    return util_parse_scaled(text, digits, mult, out);
}

int util_parse_scaled(const char *text, size_t digits, uint64_t mult, uint64_t *out)
{
    /* Parse the digits alone so the suffix does not count as junk. */
    char num[32];
    if (digits >= sizeof(num))
        return -ERANGE;
    memcpy(num, text, digits);
    num[digits] = '\0';
    uint64_t v;
    int rc = util_parse_u64(num, &v);
    if (rc < 0)
        return rc;
    if (v > UINT64_MAX / mult)
        return -ERANGE;
    *out = v * mult;
    return 0;
}

int util_parse_seconds(const char *text, double min, double max, double *out)
{
    if (text == NULL || !(isdigit((unsigned char)text[0]) || text[0] == '.'))
        return -EINVAL;
    /* Decimal only: strtod also takes hex floats ("0x1"), which no one
     * means by a number of seconds. */
    if (strpbrk(text, "xXpP"))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int util_buf_reserve(util_buf *b, size_t n)
{
    if (b->cap - b->len > n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int util_buf_append(util_buf *b, const void *p, size_t n)
{
    int rc = util_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void util_buf_free(util_buf *b)
{
    free(b->data);
    *b = (util_buf){ 0 };
}

/*
 * Length of the well-formed UTF-8 sequence at S (at most N bytes), or 0
 * when S does not start one. Follows RFC 3629's table so overlong forms
 * and UTF-16 surrogates are refused.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

bool util_utf8_text(const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < n) {
        if (s[i] == 0)
            return false;
        size_t len = utf8_seq_len(s + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

/* The C escape for control byte C, or 0 when it has none we use. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    case '\\': return '\\';
    default: return 0;
    }
}

int util_escape(util_buf *b, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = p;
    /* Worst case every byte becomes \xHH: reserve once, then write. */
    if (n > (SIZE_MAX - 1) / 4)
        return -ENOMEM;
    int rc = util_buf_reserve(b, 4 * n);
    if (rc < 0)
        return rc;
    char *o = b->data + b->len;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        char e = short_escape(c);
        size_t len = (c >= 0x20 && c != 0x7f && e == 0) ? utf8_seq_len(s + i, n - i) : 0;
        if (e != 0) {
            *o++ = '\\';
            *o++ = e;
            i++;
        } else if (len > 0) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
            i++;
        }
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

int util_json_string(util_buf *b, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = p;
    /* Worst case every byte becomes \u00XX, plus the quotes. */
    if (n > (SIZE_MAX - 3) / 6)
        return -ENOMEM;
    int rc = util_buf_reserve(b, 6 * n + 2);
    if (rc < 0)
        return rc;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        char e = c == '"' ? '"' : short_escape(c);
        if (e != 0) {
            *o++ = '\\';
            *o++ = e;
        } else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o += 4;
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;  /* UTF-8 bytes go through as they are */
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

int util_base64(util_buf *b, const void *p, size_t n)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    if (n > SIZE_MAX / 2)
        return -ENOMEM;
    int rc = util_buf_reserve(b, (n + 2) / 3 * 4);
    if (rc < 0)
        return rc;
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = abc[v & 63];
    }
    if (i < n) {
        /* One or two bytes left: encode them and pad to four characters. */
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

void util_fmt_size(uint64_t v, char *out, size_t cap)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB" };
    size_t u = 0;
    while (u + 1 < sizeof(units) / sizeof(units[0]) && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    snprintf(out, cap, "%llu %s", (unsigned long long)v, units[u]);
}

double util_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
