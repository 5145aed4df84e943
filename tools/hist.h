/*
 * hist.h - a small HDR-style log-linear histogram of latencies in ns for
 * `evbus bench`: exact below 128 ns, then 64 sub-buckets per power of two
 * (at most 1/64 = 1.6% relative error), up to 2^64 - 1. Fixed size and
 * without pointers, so a consumer process can fill one in shared memory
 * and the parent can merge them.
 */
#ifndef EVBUS_HIST_H
#define EVBUS_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
/* 2 * HIST_SUB exact values, then HIST_SUB per power of two from 2^7 to 2^63. */
#define HIST_BUCKETS (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct hist {
    uint64_t count;
    uint64_t min;              /* UINT64_MAX when empty */
    uint64_t max;
    double sum;                /* for the mean; a double so it never wraps */
    uint64_t bucket[HIST_BUCKETS];
} hist;

void hist_init(hist *h);

/* Bucket of V, and the lowest and highest value bucket I holds. */
uint32_t hist_index(uint64_t v);
uint64_t hist_low(uint32_t i);
uint64_t hist_high(uint32_t i);

static inline void hist_add(hist *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* Add every sample of SRC to DST. */
void hist_merge(hist *dst, const hist *src);

/* The value at percentile P (0..100): the highest value of the bucket
 * holding the sample of that rank, never above the maximum seen (as
 * HdrHistogram's getValueAtPercentile). 0 when empty. */
uint64_t hist_percentile(const hist *h, double p);

#endif /* EVBUS_HIST_H */
