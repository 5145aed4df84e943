/*
 * util_time.c - durations ("30s", "7d") and wall-clock times (RFC 3339,
 * "@unix seconds", "-5m") for the evbus tool, parsed and printed in UTC
 * without the C library's time zone state, so TZ never changes a result.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_SEC UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)

static const struct {
    const char *suffix;
    uint64_t ms;
} duration_units[] = {
    { "ms", 1 },
    { "s", 1000 },
    { "m", 60 * 1000 },
    { "h", 60 * 60 * 1000 },
    { "d", 24 * 60 * 60 * 1000 },
};

#define N_DURATION_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

int util_parse_duration_ms(const char *text, bool need_unit, uint64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    size_t digits = strspn(text, "0123456789");
    const char *suffix = text + digits;
    uint64_t mult = 0;
    if (suffix[0] == '\0' && !need_unit)
        mult = 1;
    for (size_t i = 0; mult == 0 && i < N_DURATION_UNITS; i++)
        if (strcmp(suffix, duration_units[i].suffix) == 0)
            mult = duration_units[i].ms;
    if (mult == 0)
        return -EINVAL;
    return util_parse_scaled(text, digits, mult, out);
}

void util_fmt_duration_ms(uint64_t ms, char *out, size_t cap)
{
    /* The largest unit that divides it, so "7d" prints as it was given. */
    size_t u = N_DURATION_UNITS;
    while (--u > 0 && (ms == 0 || ms % duration_units[u].ms != 0))
        ;
    snprintf(out, cap, "%llu%s", (unsigned long long)(ms / duration_units[u].ms),
             duration_units[u].suffix);
}

/* Read exactly N digits at *P into *OUT and advance; false if not there. */
static bool take_digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool take_char(const char **p, const char *set)
{
    if (**p == '\0' || strchr(set, **p) == NULL)
        return false;
    (*p)++;
    return true;
}

/* ".123" at *P: up to nine digits as nanoseconds, further ones dropped. */
static bool take_fraction(const char **p, uint64_t *ns)
{
    *ns = 0;
    if (**p != '.')
        return true;
    (*p)++;
    if (!isdigit((unsigned char)**p))
        return false;
    uint64_t scale = NS_PER_SEC;
    for (; isdigit((unsigned char)**p); (*p)++) {
        scale /= 10;
        *ns += (uint64_t)(**p - '0') * scale;
    }
    return true;
}

/* Days from 1970-01-01 to Y-M-D of the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Seconds since the epoch (may be negative) plus nanoseconds, into *OUT. */
static int to_epoch_ns(int64_t secs, uint64_t frac_ns, uint64_t *out)
{
    if (secs < 0)
        return -ERANGE;
    if ((uint64_t)secs > (UINT64_MAX - frac_ns) / NS_PER_SEC)
        return -ERANGE;
    *out = (uint64_t)secs * NS_PER_SEC + frac_ns;
    return 0;
}

/* YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm), as RFC 3339 section 5.6. */
static int parse_rfc3339(const char *p, uint64_t *out)
{
    unsigned y, mo, d, h, mi, s, oh = 0, om = 0;
    uint64_t frac;
    if (!take_digits(&p, 4, &y) || !take_char(&p, "-") || !take_digits(&p, 2, &mo) ||
        !take_char(&p, "-") || !take_digits(&p, 2, &d) || !take_char(&p, "Tt ") ||
        !take_digits(&p, 2, &h) || !take_char(&p, ":") || !take_digits(&p, 2, &mi) ||
        !take_char(&p, ":") || !take_digits(&p, 2, &s) || !take_fraction(&p, &frac))
        return -EINVAL;
    int sign = 0;
    if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!take_digits(&p, 2, &oh) || !take_char(&p, ":") || !take_digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return -EINVAL;
    } else if (!take_char(&p, "Zz")) {
        return -EINVAL;
    }
    /* Second 60 is a leap second; it reads as the next second's start. */
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || s > 60)
        return -EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    secs -= sign * (int64_t)(oh * 3600 + om * 60);
    return to_epoch_ns(secs, frac, out);
}

/* @SECONDS[.frac] since the epoch. */
static int parse_unix(const char *p, uint64_t *out)
{
    size_t digits = strspn(p, "0123456789");
    char num[32];
    uint64_t secs, frac;
    if (digits == 0)
        return -EINVAL;
    if (digits >= sizeof(num))
        return -ERANGE;
    memcpy(num, p, digits);
    num[digits] = '\0';
    p += digits;
    int rc = util_parse_u64(num, &secs);
    if (rc < 0)
        return rc;
    if (!take_fraction(&p, &frac) || *p != '\0')
        return -EINVAL;
    if (secs > INT64_MAX)
        return -ERANGE;
    return to_epoch_ns((int64_t)secs, frac, out);
}

int util_parse_time_ns(const char *text, uint64_t now_ns, uint64_t *out)
{
    if (text == NULL)
        return -EINVAL;
    if (text[0] == '@')
        return parse_unix(text + 1, out);
    if (text[0] == '-') {
        uint64_t ms;
        int rc = util_parse_duration_ms(text + 1, true, &ms);
        if (rc < 0)
            return rc;
        if (ms > now_ns / NS_PER_MS)
            return -ERANGE;
        *out = now_ns - ms * NS_PER_MS;
        return 0;
    }
    return parse_rfc3339(text, out);
}

void util_fmt_time_ns(uint64_t ns, char *out, size_t cap)
{
    time_t secs = (time_t)(ns / NS_PER_SEC);
    struct tm tm;
    char day[32];
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, cap, "@%llu", (unsigned long long)(ns / NS_PER_SEC));
        return;
    }
    snprintf(out, cap, "%s.%09uZ", day, (unsigned)(ns % NS_PER_SEC));
}

uint64_t util_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}
