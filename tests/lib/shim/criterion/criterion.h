/*
 * criterion.h (shim) - the part of Criterion's API the tests use (Test,
 * TestSuite, cr_assert*, cr_expect*, cr_skip_test), for builds in which
 * Criterion's runner cannot start: under ThreadSanitizer its BoxFort arena
 * wants a fixed address in the range TSan reserves (tests/meson.build).
 * Only the tsan_* executables put this directory on their include path, so
 * the same test files compile against it; tests/lib/t_unit.c is the runner.
 */
#ifndef EVB_T_UNIT_SHIM_H
#define EVB_T_UNIT_SHIM_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h> /* Criterion's header brings it too */
#include <string.h>

#define EVB_T_UNIT_SHIM 1

/* Suite and test options, set with designated initialisers as in
 * Criterion; t_end only ends the list the macros pass on. */
struct t_unit_opts {
    void (*init)(void);
    void (*fini)(void);
    double timeout; /* seconds, 0: none */
    bool disabled;
    const char *description;
    int t_end;
};

struct t_unit_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    struct t_unit_opts opts;
};

struct t_unit_suite {
    const char *name;
    struct t_unit_opts opts;
};

void t_unit_add_test(const struct t_unit_test *t);
void t_unit_add_suite(const struct t_unit_suite *s);

/* A failed check. FATAL ends the test (after the suite's fini), else it
 * goes on and fails at its end. A and B are the operands' values as text
 * (NULL for a plain condition); FMT is the test's own message, followed by
 * its arguments and one spare "" the macros add, which vfprintf ignores. */
void t_unit_fail(bool fatal, const char *file, int line, const char *expr, const char *a,
                 const char *b, const char *fmt, ...);
_Noreturn void t_unit_skip(const char *fmt, ...);

/* An operand's value as text, by type; integers and pointers are all the
 * tests compare. */
struct t_unit_val {
    char s[64];
};
struct t_unit_val t_unit_val_s(long long v);
struct t_unit_val t_unit_val_u(unsigned long long v);
struct t_unit_val t_unit_val_f(long double v);
struct t_unit_val t_unit_val_p(const volatile void *v);
#define T_UNIT_VAL(x) _Generic((x), \
    char: t_unit_val_s, signed char: t_unit_val_s, short: t_unit_val_s, \
    int: t_unit_val_s, long: t_unit_val_s, long long: t_unit_val_s, \
    _Bool: t_unit_val_u, unsigned char: t_unit_val_u, unsigned short: t_unit_val_u, \
    unsigned: t_unit_val_u, unsigned long: t_unit_val_u, unsigned long long: t_unit_val_u, \
    float: t_unit_val_f, double: t_unit_val_f, long double: t_unit_val_f, \
    default: t_unit_val_p)(x)

#define T_UNIT_CAT_(a, b) a##b
#define T_UNIT_ID_(suite, name, what) T_UNIT_CAT_(t_unit_##what##_##suite##_, name)

#define Test(...) T_UNIT_TEST_(__VA_ARGS__, .t_end = 0)
#define T_UNIT_TEST_(suite, name, ...)                                                 \
    static void T_UNIT_ID_(suite, name, fn)(void);                                     \
    __attribute__((constructor)) static void T_UNIT_ID_(suite, name, reg)(void)        \
    {                                                                                  \
        static const struct t_unit_test t = {#suite, #name, T_UNIT_ID_(suite, name, fn), \
                                             {__VA_ARGS__}};                           \
        t_unit_add_test(&t);                                                           \
    }                                                                                  \
    static void T_UNIT_ID_(suite, name, fn)(void)

#define TestSuite(...) T_UNIT_SUITE_(__VA_ARGS__, .t_end = 0)
#define T_UNIT_SUITE_(suite, ...)                                                      \
    __attribute__((constructor)) static void t_unit_suite_##suite(void)                \
    {                                                                                  \
        static const struct t_unit_suite s = {#suite, {__VA_ARGS__}};                  \
        t_unit_add_suite(&s);                                                          \
    }                                                                                  \
    struct t_unit_suite_##suite##_unused

/* Each operand is evaluated once, into a copy of its value's type (the
 * comma drops qualifiers and decays arrays, as the comparison would). Sign-compare stays quiet here as
 * it does for a literal operand: the Criterion build of the same test
 * checks the real expression. */
#define T_UNIT_CMP_(fatal, op, a, b, ...)                                              \
    do {                                                                               \
        _Pragma("GCC diagnostic push")                                                 \
        _Pragma("GCC diagnostic ignored \"-Wsign-compare\"")                           \
        __typeof__((void)0, (a)) t_unit_a_ = (a);                                           \
        __typeof__((void)0, (b)) t_unit_b_ = (b);                                           \
        if (!(t_unit_a_ op t_unit_b_))                                                 \
            t_unit_fail(fatal, __FILE__, __LINE__, #a " " #op " " #b,                  \
                        T_UNIT_VAL(t_unit_a_).s, T_UNIT_VAL(t_unit_b_).s, __VA_ARGS__); \
        _Pragma("GCC diagnostic pop")                                                  \
    } while (0)
#define T_UNIT_BOOL_(fatal, cond, ...)                                                 \
    do {                                                                               \
        if (!(cond))                                                                   \
            t_unit_fail(fatal, __FILE__, __LINE__, #cond, NULL, NULL, __VA_ARGS__);    \
    } while (0)
#define T_UNIT_STR_(fatal, op, a, b, ...)                                              \
    do {                                                                               \
        const char *t_unit_a_ = (a), *t_unit_b_ = (b);                                 \
        if (!(strcmp(t_unit_a_, t_unit_b_) op 0))                                      \
            t_unit_fail(fatal, __FILE__, __LINE__, #a " " #op " " #b, t_unit_a_,       \
                        t_unit_b_, __VA_ARGS__);                                       \
    } while (0)

#define cr_assert(...) T_UNIT_BOOL_(true, __VA_ARGS__, "")
#define cr_expect(...) T_UNIT_BOOL_(false, __VA_ARGS__, "")
#define cr_assert_not(...) T_UNIT_NOT_(true, __VA_ARGS__, "")
#define cr_expect_not(...) T_UNIT_NOT_(false, __VA_ARGS__, "")
#define T_UNIT_NOT_(fatal, c, ...) T_UNIT_BOOL_(fatal, !(c), __VA_ARGS__)
#define cr_assert_null(...) T_UNIT_NULL_(true, ==, __VA_ARGS__, "")
#define cr_expect_null(...) T_UNIT_NULL_(false, ==, __VA_ARGS__, "")
#define cr_assert_not_null(...) T_UNIT_NULL_(true, !=, __VA_ARGS__, "")
#define cr_expect_not_null(...) T_UNIT_NULL_(false, !=, __VA_ARGS__, "")
#define T_UNIT_NULL_(fatal, op, p, ...) \
    T_UNIT_BOOL_(fatal, (const volatile void *)(p) op NULL, __VA_ARGS__)

#define cr_assert_eq(...) T_UNIT_CMP_(true, ==, __VA_ARGS__, "")
#define cr_assert_neq(...) T_UNIT_CMP_(true, !=, __VA_ARGS__, "")
#define cr_assert_lt(...) T_UNIT_CMP_(true, <, __VA_ARGS__, "")
#define cr_assert_leq(...) T_UNIT_CMP_(true, <=, __VA_ARGS__, "")
#define cr_assert_gt(...) T_UNIT_CMP_(true, >, __VA_ARGS__, "")
#define cr_assert_geq(...) T_UNIT_CMP_(true, >=, __VA_ARGS__, "")
#define cr_expect_eq(...) T_UNIT_CMP_(false, ==, __VA_ARGS__, "")
#define cr_expect_neq(...) T_UNIT_CMP_(false, !=, __VA_ARGS__, "")
#define cr_expect_lt(...) T_UNIT_CMP_(false, <, __VA_ARGS__, "")
#define cr_expect_leq(...) T_UNIT_CMP_(false, <=, __VA_ARGS__, "")
#define cr_expect_gt(...) T_UNIT_CMP_(false, >, __VA_ARGS__, "")
#define cr_expect_geq(...) T_UNIT_CMP_(false, >=, __VA_ARGS__, "")
#define cr_assert_str_eq(...) T_UNIT_STR_(true, ==, __VA_ARGS__, "")
#define cr_assert_str_neq(...) T_UNIT_STR_(true, !=, __VA_ARGS__, "")
#define cr_expect_str_eq(...) T_UNIT_STR_(false, ==, __VA_ARGS__, "")
#define cr_expect_str_neq(...) T_UNIT_STR_(false, !=, __VA_ARGS__, "")
/* A line for the log, as Criterion's --verbose prints it. */
#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
/* A skip needs its reason (STYLE 2.9: a missing capability is a skip). */
#define cr_skip_test(...) t_unit_skip(__VA_ARGS__)

#endif
