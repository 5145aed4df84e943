/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz share: the entry
 * points libFuzzer calls (fuzz_main.c stands in for libFuzzer in the
 * ordinary build, replaying the committed corpus), a private scratch
 * directory per process, and a checked abort for broken invariants.
 * The targets themselves say which parser they drive and how the input
 * maps onto the file or words it parses.
 */
#ifndef EVB_FUZZ_H
#define EVB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A directory of this process's own under /dev/shm (tmpfs: the targets
 * write files on every input), created on first use and removed at exit. */
const char *fuzz_scratch(void);
/* A fresh empty directory under the scratch one; the previous one the
 * same SLOT handed out is removed first. */
const char *fuzz_fresh_dir(int slot);
/* Write N bytes of P to PATH (created 0600, truncated). False when PATH
 * cannot be opened for writing (the input made it a directory); a failed
 * write aborts, as it is the harness's failure, not the parser's. */
#include <stdbool.h>
bool fuzz_write(const char *path, const void *p, size_t n);
/* Remove PATH and everything below it. */
void fuzz_rmtree(const char *path);
/* The read cursor over an input: bytes and little-endian words, zero once
 * the input is used up, so every input means something. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};
uint8_t fuzz_u8(struct fuzz_in *in);
uint16_t fuzz_u16(struct fuzz_in *in);
uint64_t fuzz_u64(struct fuzz_in *in);
/* Copy up to N bytes into DST, zeroing what the input cannot fill. */
void fuzz_take(struct fuzz_in *in, void *dst, size_t n);
/* Up to WANT bytes (fewer at the end of the input); *GOT says how many. */
const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t want, size_t *got);

/* A broken invariant of the code under test: print and abort, so both
 * libFuzzer and the corpus replay report it as a crash. */
#define FUZZ_CHECK(cond, ...)                                                \
    do {                                                                     \
        if (!(cond))                                                         \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);               \
    } while (0)
__attribute__((noreturn, format(printf, 4, 5)))
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...);

#endif /* EVB_FUZZ_H */
