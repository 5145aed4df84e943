/*
 * t_unit.c - the runner behind the Criterion shim (shim/criterion/criterion.h).
 * main() runs each registered test in a child of its own, as Criterion
 * does: a fresh process per test, init, body, fini, a timeout. A failed
 * check, a crash, a timeout or a ThreadSanitizer report (exit 66) fails
 * the test. Exit code: 0 when none failed, 77 when all were skipped, else 1.
 * Arguments, if any, select the tests whose "suite::name" contains one.
 */
#include <criterion/criterion.h>

#ifndef EVB_T_UNIT_SHIM
#error "t_unit.c is built only against tests/lib/shim/criterion/criterion.h"
#endif

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_UNIT_SKIPPED 77
#define T_UNIT_TSAN_REPORT 66 /* TSan's default exitcode */
/* The shim runs only in sanitizer builds, which run several times slower
 * than the builds the tests' own timeouts were chosen for. */
#define T_UNIT_SLOWDOWN 4

static const struct t_unit_test *tests[256];
static unsigned n_tests;
static const struct t_unit_suite *suites[16];
static unsigned n_suites;

void t_unit_add_test(const struct t_unit_test *t)
{
    if (n_tests == sizeof tests / sizeof tests[0]) {
        fprintf(stderr, "t_unit: more than %u tests\n", n_tests);
        abort();
    }
    tests[n_tests++] = t;
}

void t_unit_add_suite(const struct t_unit_suite *s)
{
    if (n_suites == sizeof suites / sizeof suites[0]) {
        fprintf(stderr, "t_unit: more than %u suites\n", n_suites);
        abort();
    }
    suites[n_suites++] = s;
}

static const struct t_unit_opts no_opts;

static const struct t_unit_opts *suite_opts(const char *name)
{
    for (unsigned i = 0; i < n_suites; i++)
        if (!strcmp(suites[i]->name, name))
            return &suites[i]->opts;
    return &no_opts;
}

/* The test running in this (child) process. */
static const struct t_unit_test *cur;
static const struct t_unit_opts *cur_suite;
/* Relaxed: any thread of the test may set it; the test's main thread
 * reads it after the body, which joined those threads. */
static _Atomic bool cur_failed;
static bool in_fini;

static _Noreturn void end_test(int code)
{
    /* fini runs after a fatal check as after the body, as in Criterion;
     * a check failing inside fini ends the test without running it again. */
    if (!in_fini) {
        in_fini = true;
        if (cur->opts.fini)
            cur->opts.fini();
        if (cur_suite->fini)
            cur_suite->fini();
    }
    fflush(NULL);
    /* exit, not _exit: TSan's exit hook turns a reported race into 66. */
    exit(code);
}

void t_unit_fail(bool fatal, const char *file, int line, const char *expr, const char *a,
                 const char *b, const char *fmt, ...)
{
    flockfile(stderr);
    fprintf(stderr, "%s:%d: %s::%s: %s failed: %s", file, line, cur->suite, cur->name,
            fatal ? "assertion" : "expectation", expr);
    if (a)
        fprintf(stderr, " (%s vs %s)", a, b);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    funlockfile(stderr);
    atomic_store_explicit(&cur_failed, true, memory_order_relaxed);
    if (fatal)
        end_test(1);
}

void t_unit_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s::%s: skipped: ", cur->suite, cur->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    end_test(T_UNIT_SKIPPED);
}

struct t_unit_val t_unit_val_s(long long v)
{
    struct t_unit_val r;
    snprintf(r.s, sizeof r.s, "%lld", v);
    return r;
}

struct t_unit_val t_unit_val_u(unsigned long long v)
{
    struct t_unit_val r;
    snprintf(r.s, sizeof r.s, "%llu (0x%llx)", v, v);
    return r;
}

struct t_unit_val t_unit_val_f(long double v)
{
    struct t_unit_val r;
    snprintf(r.s, sizeof r.s, "%Lg", v);
    return r;
}

struct t_unit_val t_unit_val_p(const volatile void *v)
{
    struct t_unit_val r;
    snprintf(r.s, sizeof r.s, "%p", (const void *)v);
    return r;
}

static _Noreturn void run_child(const struct t_unit_test *t)
{
    /* A runner killed by meson's timeout takes the test with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    cur = t;
    cur_suite = suite_opts(t->suite);
    double timeout = t->opts.timeout > 0 ? t->opts.timeout : cur_suite->timeout;
    if (timeout > 0)
        alarm((unsigned)(timeout * T_UNIT_SLOWDOWN) + 1);
    if (cur_suite->init)
        cur_suite->init();
    if (t->opts.init)
        t->opts.init();
    t->fn();
    end_test(atomic_load_explicit(&cur_failed, memory_order_relaxed) ? 1 : 0);
}

static int by_name(const void *x, const void *y)
{
    const struct t_unit_test *a = *(const struct t_unit_test *const *)x;
    const struct t_unit_test *b = *(const struct t_unit_test *const *)y;
    int c = strcmp(a->suite, b->suite);
    return c ? c : strcmp(a->name, b->name);
}

static bool selected(const struct t_unit_test *t, int argc, char **argv)
{
    if (argc < 2)
        return true;
    char full[256];
    snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
    for (int i = 1; i < argc; i++)
        if (strstr(full, argv[i]))
            return true;
    return false;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run T in a child; print its verdict; return 0 passed, 1 failed, 2 skipped. */
static int run_one(const struct t_unit_test *t)
{
    double t0 = now_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("t_unit: fork");
        return 1;
    }
    if (pid == 0)
        run_child(t);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            perror("t_unit: waitpid");
            return 1;
        }
    char why[96] = "";
    int verdict = 1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        verdict = 0;
    else if (WIFEXITED(st) && WEXITSTATUS(st) == T_UNIT_SKIPPED)
        verdict = 2;
    else if (WIFEXITED(st) && WEXITSTATUS(st) == T_UNIT_TSAN_REPORT)
        snprintf(why, sizeof why, ": ThreadSanitizer report (exit %d)", T_UNIT_TSAN_REPORT);
    else if (WIFEXITED(st))
        snprintf(why, sizeof why, ": exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
        snprintf(why, sizeof why, ": timed out");
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof why, ": killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    static const char *const tag[] = {"PASS", "FAIL", "SKIP"};
    printf("[%s] %s::%s (%.2f s)%s\n", tag[verdict], t->suite, t->name, now_s() - t0, why);
    return verdict;
}

int main(int argc, char **argv)
{
    /* One verdict line per test, in order with the tests' own stderr. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(tests, n_tests, sizeof tests[0], by_name);
    unsigned counts[3] = {0, 0, 0}, run = 0;
    for (unsigned i = 0; i < n_tests; i++) {
        const struct t_unit_test *t = tests[i];
        if (!selected(t, argc, argv))
            continue;
        if (t->opts.disabled) {
            printf("[SKIP] %s::%s: disabled\n", t->suite, t->name);
            counts[2]++;
            run++;
            continue;
        }
        counts[run_one(t)]++;
        run++;
    }
    printf("Synthesis: Tested: %u | Passing: %u | Failing: %u | Skipped: %u\n", run,
           counts[0], counts[1], counts[2]);
    if (!run) {
        fprintf(stderr, "t_unit: no test selected\n");
        return 1;
    }
    if (counts[1])
        return 1;
    return counts[2] == run ? T_UNIT_SKIPPED : 0;
}
