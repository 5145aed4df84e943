/*
 * arch.h - what the ring needs from the CPU: a spin-wait hint, a 16-byte
 * compare-and-swap on shared memory, and the false-sharing distance. x86-64
 * and little-endian aarch64 only: anything else stops the build here. The
 * ring's byte layout is fixed by ring_format.h, not by this file.
 */
#ifndef EVB_ARCH_H
#define EVB_ARCH_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "evbus supports x86-64 and aarch64 only (shm/arch.h)"
#endif
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "evbus rings are little-endian; big-endian aarch64 is not supported"
#endif

/*
 * The 16-byte CAS must be a native instruction sequence, never a call into
 * libatomic: libatomic falls back to a lock table private to each process,
 * which would not exclude a producer in another process mapping the same
 * ring. We use the __sync builtin at 16 bytes, which the compiler expands
 * itself when __GCC_HAVE_SYNC_COMPARE_AND_SWAP_16 is defined (checked
 * below), with the flags from meson.build:
 *   x86-64   -mcx16: lock cmpxchg16b, a full barrier.
 *   aarch64  -mno-outline-atomics: an ldxp/stlxp loop followed by dmb ish
 *            (a full barrier), valid on every ARMv8.0 core. Debian's GCC
 *            otherwise defaults to -moutline-atomics, which turns the CAS
 *            into a call to libgcc's __aarch64_cas16_sync (lock-free, but a
 *            call in the claim path). Built with -march=armv8.1-a or later
 *            (LSE), the same builtin becomes one inline caspal.
 * On aarch64 the macro is defined even when the expansion is that outline
 * call, so no #if can see the difference: tools/cross-aarch64.sh checks
 * the built library holds no __aarch64_cas16 or __atomic call.
 * __atomic_compare_exchange_n is not used: GCC 12 sends every 16-byte
 * __atomic operation to libatomic on both architectures, and its
 * __atomic_always_lock_free(16) is false, so there is nothing to
 * static_assert about 16 bytes beyond the size.
 */
#if !defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16)
#if defined(__x86_64__)
#error "build with -mcx16: the ring tail needs an inline cmpxchg16b"
#else
#error "this compiler has no inline 16-byte compare-and-swap"
#endif
#endif

__extension__ typedef unsigned __int128 evb_u128;
static_assert(sizeof(evb_u128) == 16, "the tail pair is 16 bytes");

/*
 * Compare the 16 bytes at WORD (16-byte aligned; the first 8 bytes are LO,
 * little endian) with (OLD_LO, OLD_HI) and, if equal, store (NEW_LO,
 * NEW_HI); true when the store happened. A full barrier on both
 * architectures, success or not: the callers' ordering edges (claim.c, C1)
 * rely on that.
 */
static inline bool evb_cas128(void *word, uint64_t old_lo, uint64_t old_hi,
                              uint64_t new_lo, uint64_t new_hi)
{
    evb_u128 o = (evb_u128)old_hi << 64 | old_lo;
    evb_u128 n = (evb_u128)new_hi << 64 | new_lo;
    /* The one deliberate full-barrier atomic of the library: clang's
     * -Watomic-implicit-seq-cst (an error in clang builds) is off here. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Watomic-implicit-seq-cst"
#endif
    return __sync_bool_compare_and_swap((evb_u128 *)word, o, n);
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
}

/*
 * Store (LO, HI) to the 16 bytes at WORD (16-byte aligned) as one
 * single-copy-atomic store, for a word only the caller writes (an
 * exclusive producer's tail, claim.c X3): no reader can see half of it.
 * x86-64 processors that have AVX carry out an aligned MOVDQA atomically
 * (Intel SDM vol. 3A 9.1.1; AMD APM vol. 2 7.3.2), and TSO keeps it after
 * every earlier store: a release. ATOMIC16 false (no AVX), aarch64 and
 * TSan builds (which cannot see inside asm) use the CAS, a loop that
 * succeeds at once when nobody else writes the word.
 */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVB_TSAN_CLANG 1
#endif
#endif
#ifndef EVB_TSAN_CLANG
#define EVB_TSAN_CLANG 0
#endif
/* 1 where evb_store128 can be one plain store (given ATOMIC16). */
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !EVB_TSAN_CLANG
#define EVB_STORE128_PLAIN 1
#else
#define EVB_STORE128_PLAIN 0
#endif

static inline void evb_store128(void *word, uint64_t lo, uint64_t hi, bool atomic16)
{
#if EVB_STORE128_PLAIN
    if (atomic16) {
        typedef long long v2di __attribute__((vector_size(16)));
        v2di v = {(long long)lo, (long long)hi};
        __asm__ __volatile__("movdqa %1, %0" : "=m"(*(v2di *)word) : "x"(v) : "memory");
        return;
    }
#endif
    (void)atomic16;
    for (;;) {
        /* Relaxed snapshot for the CAS's expected value: the CAS is the
         * store, and a full barrier. */
        uint64_t olo = __atomic_load_n((uint64_t *)word, __ATOMIC_RELAXED);
        uint64_t ohi = __atomic_load_n((uint64_t *)word + 1, __ATOMIC_RELAXED);
        if (evb_cas128(word, olo, ohi, lo, hi))
            return;
    }
}

/* Whether evb_store128 may take the single-store path on this CPU. */
static inline bool evb_atomic16_store_ok(void)
{
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx");
#else
    return false;
#endif
}

/*
 * The spin-wait hint for loops that poll shared memory.
 *   x86-64: pause. It keeps the loop from flooding the memory pipeline
 *     with speculative loads and lets the sibling hyperthread run; the spin
 *     counts in bus/ were tuned with it.
 *   aarch64: isb rather than yield. Most ARM cores retire yield as a plain
 *     nop, so a yield loop re-reads the contended line as fast as it can;
 *     isb drains the pipeline, which costs a short fixed delay per turn,
 *     closer to what pause gives and to what those spin counts assume.
 */
static inline void evb_cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("isb" ::: "memory");
#endif
}

/*
 * The distance that keeps two independently written words from false
 * sharing. x86-64 lines are 64 bytes, but the adjacent-line prefetcher
 * pulls them in 128-byte pairs; aarch64 cores use 64 (Cortex, Neoverse) or
 * 128 bytes (Apple, some server parts). 128 covers both, and it is what
 * ring_format.h's fixed EVB_LINE is checked against.
 */
#define EVB_CACHE_LINE 128u

#endif
