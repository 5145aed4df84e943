/*
 * fuzz_cli.c - libFuzzer target: the evbus command line (tools/), its
 * option parsing and every command, through evb_cli_main() (tools/main.c
 * built without its main()), several command lines per input on one bus.
 *
 * Input: up to 4 command lines separated by '\n'; the words of a line are
 * separated by ' ' ("" is an empty word), argv[0] "evbus" is put in front.
 * Before a line runs, the target keeps it to this input's scratch
 * directories (the runs are root: nothing may reach a real path):
 *   - the value of --bus and --data-dir (and of any abbreviation getopt
 *     would take for them, --b, --data...) becomes a directory under the
 *     input's scratch directory named after it ('/' and '.' replaced);
 *   - any other word with '/' is put under the scratch directory, ".."
 *     replaced; the working directory is the scratch directory;
 *   - a number above 4 MiB (digits, perhaps a size suffix) becomes 1M, so
 *     rings and segments stay small;
 *   - EVBUS_BUS and EVBUS_DATA_DIR name scratch directories, stdin is
 *     /dev/null, and a timer sets the CLI's stop flag every 20 ms, which
 *     ends tail -f, stat and flushd.
 *
 * What must hold: exit code 0, 1 or 2 (or 130 from a bench the stop
 * timer cut short, as Ctrl-C would), nothing crashes; a non-zero exit
 * comes with at least one line on stderr and every line there starts with
 * "evbus"; with --json and exit 0, every line on stdout is JSON.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_LINES 4
#define MAX_WORDS 32
#define WORD_BYTES 300

static char data_root[128];
static timer_t stop_timer;
static int out_fd = -1;
static int home_fd = -1; /* the working directory at start */
static FILE *err_mem;
static char *err_text;
static size_t err_len;

static void on_timer(int sig)
{
    (void)sig;
    /* As Ctrl-C would: `evbus bench` then exits 128 + SIGINT. */
    cli_stop = SIGINT;
}

static void data_root_remove(void)
{
    fuzz_rmtree(data_root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Durable topics preallocate segments: on disk, not in /dev/shm. */
    snprintf(data_root, sizeof data_root, "/tmp/evb-fuzz-cli.%d", (int)getpid());
    fuzz_rmtree(data_root);
    if (mkdir(data_root, 0700) < 0)
        abort();
    atexit(data_root_remove);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0)
        abort();
    close(null);
    /* A real-time signal: libFuzzer owns SIGALRM (-timeout) and SIGUSR1/2. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN + 1;
    if (timer_create(CLOCK_MONOTONIC, &sev, &stop_timer) < 0)
        abort();
    home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home_fd < 0)
        abort();
    out_fd = memfd_create("fuzz-cli-out", MFD_CLOEXEC);
    if (out_fd < 0)
        abort();
    setenv("HOME", fuzz_scratch(), 1);
    unsetenv("XDG_DATA_HOME");
    return 0;
}

static void arm(bool on)
{
    struct itimerspec it = {0};
    if (on)
        it.it_value.tv_nsec = it.it_interval.tv_nsec = 20 * 1000 * 1000;
    timer_settime(stop_timer, 0, &it, NULL);
}

/* Whether WORD is --NAME or an abbreviation getopt_long may take for it,
 * with or without "=value"; *VALUE gets what follows '=' or NULL. */
static bool names_option(const char *word, const char *name, const char **value)
{
    if (strncmp(word, "--", 2) != 0 || !word[2])
        return false;
    const char *w = word + 2, *eq = strchr(w, '=');
    size_t n = eq ? (size_t)(eq - w) : strlen(w);
    if (!n || n > strlen(name) || strncmp(w, name, n) != 0)
        return false;
    *value = eq ? eq + 1 : NULL;
    return true;
}

/* A directory for an option value V under ROOT: "<root>/<tag>-<v>", with
 * '/' and '.' replaced; "" stays "" (the CLI refuses an empty --bus). */
static void scratch_value(char *out, size_t cap, const char *root, const char *tag,
                          const char *v)
{
    if (!*v) {
        out[0] = '\0';
        return;
    }
    int n = snprintf(out, cap, "%s/%s-", root, tag);
    for (size_t i = 0; v[i] && (size_t)n + 1 < cap && i < 40; i++)
        out[n++] = v[i] == '/' || v[i] == '.' ? '_' : v[i];
    out[n] = '\0';
}

/* Digits with at most a one-letter suffix, above 4 MiB: rings, segments
 * and partition counts stay small. */
static bool big_number(const char *w)
{
    size_t i = 0;
    unsigned long long v = 0;
    for (; w[i] >= '0' && w[i] <= '9'; i++)
        v = v > ULLONG_MAX / 16 ? ULLONG_MAX / 16 : v * 10 + (unsigned)(w[i] - '0');
    if (!i || (w[i] && w[i + 1]))
        return false;
    if (w[i])
        v = v > ULLONG_MAX >> 41 ? ULLONG_MAX : v << 10;
    return v > (4ull << 20);
}

struct line {
    int argc;
    char *argv[MAX_WORDS + 2];
    char words[MAX_WORDS + 1][WORD_BYTES];
    bool json;
};

static void keep_word(struct line *l, int i, const char *dir, const char *data)
{
    char *w = l->words[i], tmp[WORD_BYTES];
    const char *value;
    static bool value_next_bus, value_next_data;
    if (i == 1)
        value_next_bus = value_next_data = false;
    if (value_next_bus || value_next_data) {
        snprintf(tmp, sizeof tmp, "%s", w);
        scratch_value(w, WORD_BYTES, value_next_bus ? dir : data, "b", tmp);
        value_next_bus = value_next_data = false;
        return;
    }
    bool bus = names_option(w, "bus", &value);
    if (!bus && !names_option(w, "data-dir", &value)) {
        if (strchr(w, '/')) {
            snprintf(tmp, sizeof tmp, "%s/%s", dir, w);
            for (char *p = tmp; (p = strstr(p, "..")) != NULL;)
                p[0] = p[1] = '_';
            snprintf(w, WORD_BYTES, "%s", tmp);
        } else if (big_number(w)) {
            snprintf(w, WORD_BYTES, "1M");
        }
        return;
    }
    if (!value) {
        value_next_bus = bus;
        value_next_data = !bus;
        return;
    }
    char v[WORD_BYTES];
    scratch_value(v, sizeof v, bus ? dir : data, "b", value);
    *strchr(w, '=') = '\0';
    snprintf(tmp, sizeof tmp, "%s=%s", w, v);
    snprintf(w, WORD_BYTES, "%s", tmp);
}

/* Split TEXT (N bytes, one line) into L's words. */
static void split(struct line *l, const uint8_t *text, size_t n, const char *dir,
                  const char *data)
{
    l->argc = 1;
    snprintf(l->words[0], WORD_BYTES, "evbus");
    l->json = false;
    size_t i = 0;
    while (i < n && l->argc <= MAX_WORDS) {
        while (i < n && text[i] == ' ')
            i++;
        if (i == n)
            break;
        char *w = l->words[l->argc];
        size_t k = 0;
        for (; i < n && text[i] != ' '; i++)
            if (k < WORD_BYTES - 1 && text[i])
                w[k++] = (char)text[i];
        w[k] = '\0';
        if (!strcmp(w, "\"\""))
            w[0] = '\0';
        l->json |= !strcmp(w, "--json");
        keep_word(l, l->argc, dir, data);
        l->argc++;
    }
    for (int k = 0; k < l->argc; k++)
        l->argv[k] = l->words[k];
    l->argv[l->argc] = NULL;
}

/* Whether a word of L is one after which stdout need not be JSON (help
 * text) or a --json need not be an option (a value or an operand). */
static bool json_expected(const struct line *l)
{
    if (!l->json)
        return false;
    for (int i = 1; i < l->argc; i++) {
        const char *w = l->argv[i];
        if (!strcmp(w, "--") || !strcmp(w, "help") || !strcmp(w, "-h") ||
            !strncmp(w, "--h", 3) || !strcmp(w, "--version"))
            return false;
        /* An option's value that happens to be "--json". */
        if (!strcmp(w, "--json") && i > 1 && l->argv[i - 1][0] == '-' &&
            !strchr(l->argv[i - 1], '=') && strcmp(l->argv[i - 1], "--json") &&
            strcmp(l->argv[i - 1], "--values") && strcmp(l->argv[i - 1], "-f") &&
            strcmp(l->argv[i - 1], "-v"))
            return false;
    }
    return true;
}

/* Whether L may run `evbus bench`, the one command that exits 128 + SIG
 * when stopped (common options may come before it: any word will do). */
static bool runs_bench(const struct line *l)
{
    for (int i = 1; i < l->argc; i++)
        if (!strcmp(l->argv[i], "bench"))
            return true;
    return false;
}

static void check_output(const struct line *l, int rc, bool stopped)
{
    bool interrupted = stopped && runs_bench(l) && rc == 128 + SIGINT;
    FUZZ_CHECK(rc == CLI_OK || rc == CLI_FAIL || rc == CLI_USAGE || interrupted,
               "exit code %d", rc);
    /* `evbus` alone prints the help to stderr. */
    if (rc != 0 && l->argc > 1) {
        FUZZ_CHECK(err_len > 0, "exit %d with nothing on stderr", rc);
        for (size_t at = 0; at < err_len;) {
            FUZZ_CHECK(!strncmp(err_text + at, "evbus", 5), "stderr line: %.80s",
                       err_text + at);
            const char *nl = memchr(err_text + at, '\n', err_len - at);
            at = nl ? (size_t)(nl - err_text) + 1 : err_len;
        }
    }
    if (rc != 0 || !json_expected(l))
        return;
    off_t n = lseek(out_fd, 0, SEEK_END);
    if (n <= 0)
        return;
    char *out = malloc((size_t)n + 1);
    FUZZ_CHECK(pread(out_fd, out, (size_t)n, 0) == n, "read back stdout");
    out[n] = '\0';
    for (char *s = out, *nl; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        FUZZ_CHECK(nl, "stdout ends without a newline: %.80s", s);
        *nl = '\0';
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        FUZZ_CHECK(j, "not JSON (%s): %.200s", e.text, s);
        json_decref(j);
    }
    free(out);
}

static int run(struct line *l)
{
    /* stdout (stdio and write(2)) into the memfd; stderr's stdio stream
     * into memory, leaving fd 2 to the sanitizers' reports. */
    fflush(stdout);
    FUZZ_CHECK(ftruncate(out_fd, 0) == 0, "ftruncate");
    int saved_out = dup(1);
    dup2(out_fd, 1);
    lseek(out_fd, 0, SEEK_SET);
    FILE *saved_err = stderr;
    free(err_text);
    err_text = NULL;
    err_len = 0;
    err_mem = open_memstream(&err_text, &err_len);
    stderr = err_mem;
    cli_stop = 0;
    arm(true);
    int rc = evb_cli_main(l->argc, l->argv);
    arm(false);
    fflush(stdout);
    dup2(saved_out, 1);
    close(saved_out);
    stderr = saved_err;
    fclose(err_mem);
    return rc;
}

/* FUZZ_CLI_VERBOSE=1: each command line as run, its exit code and output
 * (to see what a corpus input does). */
static void show(const struct line *l, int rc)
{
    for (int i = 0; i < l->argc; i++)
        fprintf(stderr, "%s'%s'", i ? " " : "", l->argv[i]);
    fprintf(stderr, "\n  exit %d\n  stderr: %.*s", rc, (int)err_len, err_text ? err_text : "");
    char buf[2048];
    ssize_t n = pread(out_fd, buf, sizeof buf, 0);
    fprintf(stderr, "\n  stdout: %.*s\n", n > 0 ? (int)n : 0, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir(0);
    static unsigned n;
    char ddir[256];
    snprintf(ddir, sizeof ddir, "%s/%u", data_root, n++);
    fuzz_rmtree(ddir);
    mkdir(ddir, 0700);
    char bus[PATH_MAX], dd[PATH_MAX];
    snprintf(bus, sizeof bus, "%s/bus", dir);
    snprintf(dd, sizeof dd, "%s/data", ddir);
    setenv("EVBUS_BUS", bus, 1);
    setenv("EVBUS_DATA_DIR", dd, 1);
    if (chdir(dir) < 0)
        abort();
    static struct line l;
    for (int k = 0; k < MAX_LINES && size; k++) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t len = nl ? (size_t)(nl - data) : size;
        split(&l, data, len, dir, ddir);
        int rc = run(&l);
        if (getenv("FUZZ_CLI_VERBOSE"))
            show(&l, rc);
        check_output(&l, rc, cli_stop != 0);
        data += len + (nl != NULL);
        size -= len + (nl != NULL);
    }
    /* Back where libFuzzer writes its crash files and reads the corpus. */
    if (fchdir(home_fd) < 0)
        abort();
    fuzz_rmtree(ddir);
    return 0;
}
