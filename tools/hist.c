/*
 * hist.c - the log-linear latency histogram of hist.h. A value below
 * 2 * HIST_SUB is its own bucket; above, its top HIST_SUB_BITS + 1 bits
 * pick one of HIST_SUB buckets of its power of two, so every bucket is at
 * most 1/HIST_SUB of its values wide.
 */
#include "hist.h"

#include <string.h>

void hist_init(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

uint32_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (uint32_t)v;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);   /* >= HIST_SUB_BITS + 1 */
    uint32_t shift = msb - HIST_SUB_BITS;                  /* >= 1 */
    uint32_t mant = (uint32_t)(v >> shift);                /* HIST_SUB .. 2*HIST_SUB-1 */
    return 2 * HIST_SUB + (shift - 1) * HIST_SUB + (mant - HIST_SUB);
}

uint64_t hist_low(uint32_t i)
{
    if (i < 2 * HIST_SUB)
        return i;
    uint32_t shift = (i - 2 * HIST_SUB) / HIST_SUB + 1;
    uint64_t mant = HIST_SUB + (i - 2 * HIST_SUB) % HIST_SUB;
    return mant << shift;
}

uint64_t hist_high(uint32_t i)
{
    if (i < 2 * HIST_SUB)
        return i;
    uint32_t shift = (i - 2 * HIST_SUB) / HIST_SUB + 1;
    return hist_low(i) + ((1ull << shift) - 1);
}

void hist_merge(hist *dst, const hist *src)
{
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_percentile(const hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    /* The rank of the sample asked for, from 1; percentile 0 is the first. */
    double want = (p / 100.0) * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
