/*
 * bench_plot.c - `evbus bench --plot FILE.png`: the latency percentile
 * distribution (HdrHistogram's plot: x = 1/(1-p) on a log axis, labelled
 * as percentiles) and throughput over time, one line per value size, drawn
 * by gnuplot from data files in a temporary directory. gnuplot is a
 * separate program (Debian: gnuplot-nox); nothing links against it.
 */
#include "bench.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

bool bench_have_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    char dir[4096];
    for (const char *p = path; *p != '\0';) {
        size_t n = strcspn(p, ":");
        int w = snprintf(dir, sizeof(dir), "%.*s/gnuplot", (int)n, n ? p : ".");
        if (w > 0 && (size_t)w < sizeof(dir) && access(dir, X_OK) == 0)
            return true;
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

/* Write PATH as a gnuplot single-quoted string ('' is a quote inside). */
static void put_quoted(FILE *f, const char *path)
{
    fputc('\'', f);
    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '\'')
            fputc('\'', f);
        fputc(*p, f);
    }
    fputc('\'', f);
}

/* Percentiles at x = 1/(1-p) = 10^(k/10), up to what the samples can
 * tell (x <= count), then the maximum; latency in µs. */
static int write_latency(const char *path, const hist *h)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    fprintf(f, "# x=1/(1-p)  percentile  latency_us\n");
    /* 10^(1/10): ten points per decade of x */
    for (double x = 1; h->count > 0 && x <= (double)h->count; x *= 1.2589254117941673) {
        double p = 100.0 * (1.0 - 1.0 / x);
        double us = (double)hist_percentile(h, p) / 1e3;
        fprintf(f, "%.6g %.6f %.6g\n", x, p, us > 1e-3 ? us : 1e-3);
    }
    if (h->count > 0)
        fprintf(f, "%.6g 100 %.6g\n", (double)h->count, (double)h->max / 1e3);
    return fclose(f) == 0 ? 0 : -errno;
}

static int write_series(const char *path, const bench_result *r)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    fprintf(f, "# time_s  in_events_per_s  out_events_per_s\n");
    for (size_t i = 0; i < r->nseries; i++)
        fprintf(f, "%.3f %.6g %.6g\n", r->series[i].t_s, r->series[i].in_eps,
                r->series[i].out_eps);
    return fclose(f) == 0 ? 0 : -errno;
}

static void size_name(uint64_t v, char *out, size_t cap)
{
    if (v >= 1024 && v % 1048576 == 0)
        snprintf(out, cap, "%llu MiB", (unsigned long long)(v / 1048576));
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(out, cap, "%llu KiB", (unsigned long long)(v / 1024));
    else
        snprintf(out, cap, "%llu B", (unsigned long long)v);
}

static int write_script(const char *path, const char *dir, const bench_cfg *cfg,
                        const bench_result *r, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    fprintf(f, "set encoding utf8\n"
               "set terminal pngcairo size 1000,1000 font 'sans,10'\n"
               "set output ");
    put_quoted(f, cfg->plot);
    fprintf(f, "\nset multiplot layout 2,1 title 'evbus bench: %u producer%s, %u consumer%s "
               "(%s), %u partition%s, path %s, durability %s%s'\n",
            cfg->producers, cfg->producers == 1 ? "" : "s", cfg->consumers,
            cfg->consumers == 1 ? "" : "s", bench_reader_name(cfg->reader), cfg->partitions,
            cfg->partitions == 1 ? "" : "s", bench_path_name(cfg->path),
            cli_durability_name(cfg->durability), cfg->rate > 0 ? ", rate limited" : "");
    fprintf(f, "set grid\nset key top left\n"
               "set title 'publish-to-consume latency by percentile'\n"
               "set logscale x\nset logscale y\n"
               "set autoscale xfix\n"
               "set xlabel 'percentile'\nset ylabel 'latency (µs, log scale)'\n"
               /* A tic label is a format: %%%% here is %% there, one '%' drawn. */
               "set xtics ('0%%%%' 1, '50%%%%' 2, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, "
               "'99.99%%%%' 10000, '99.999%%%%' 100000, '99.9999%%%%' 1000000, "
               "'99.99999%%%%' 10000000)\n"
               "plot ");
    for (size_t i = 0; i < n; i++) {
        char s[32];
        size_name(r[i].value_bytes, s, sizeof(s));
        fprintf(f, "%s'%s/lat-%zu.dat' using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc %zu "
                   "title '%s'", i ? ", " : "", dir, i, i + 1, s);
    }
    /* Sizes of a sweep differ by orders of magnitude in events/s: a log
     * axis keeps the small ones off the floor. */
    fprintf(f, "\nunset logscale\nset autoscale x\nset xrange [0:*]\n%s"
               "set xtics autofreq\nset format y '%%.1s %%c'\n",
            n > 1 ? "set logscale y\n" : "set yrange [0:*]\n");
    fprintf(f,
               "set title 'throughput over time (solid: delivered, dashed: published; "
               "the timed window starts after %.2f s of warm-up)'\n"
               "set xlabel 'time (s)'\nset ylabel 'events/s%s'\n"
               "plot ", cfg->warmup_s, n > 1 ? " (log scale)" : "");
    for (size_t i = 0; i < n; i++) {
        char s[32];
        size_name(r[i].value_bytes, s, sizeof(s));
        fprintf(f, "%s'%s/series-%zu.dat' using 1:3 with lines lw 2 lc %zu title '%s out', "
                   "'' using 1:2 with lines lw 1 dt 2 lc %zu title '%s in'",
                i ? ", " : "", dir, i, i + 1, s, i + 1, s);
    }
    fprintf(f, "\nunset multiplot\n");
    return fclose(f) == 0 ? 0 : -errno;
}

static void remove_dir(const char *dir, size_t n)
{
    char p[4200];
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/lat-%zu.dat", dir, i);
        unlink(p);
        snprintf(p, sizeof(p), "%s/series-%zu.dat", dir, i);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/plot.gp", dir);
    unlink(p);
    rmdir(dir);
}

int bench_plot(const cli *c, const bench_cfg *cfg, const bench_result *r, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], p[4200];
    snprintf(dir, sizeof(dir), "%s/evbus-plot-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return cli_fail(c, -errno, "--plot: making a temporary directory in %s",
                        tmp && tmp[0] ? tmp : "/tmp");
    int err = 0;
    for (size_t i = 0; i < n && err == 0; i++) {
        snprintf(p, sizeof(p), "%s/lat-%zu.dat", dir, i);
        err = write_latency(p, &r[i].lat);
        snprintf(p, sizeof(p), "%s/series-%zu.dat", dir, i);
        if (err == 0)
            err = write_series(p, &r[i]);
    }
    snprintf(p, sizeof(p), "%s/plot.gp", dir);
    if (err == 0)
        err = write_script(p, dir, cfg, r, n);
    if (err != 0) {
        remove_dir(dir, n);
        return cli_fail(c, err, "--plot: writing gnuplot's input in %s", dir);
    }
    char *argv[] = { "gnuplot", p, NULL };
    pid_t pid;
    fflush(NULL);
    err = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    int st = 0;
    if (err == 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    remove_dir(dir, n);
    if (err != 0)
        return cli_fail(c, -err, "--plot: running gnuplot (Debian: apt-get install gnuplot-nox)");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return cli_error(c, "--plot: gnuplot failed (status %d) drawing %s", st, cfg->plot);
    struct stat sb;
    if (stat(cfg->plot, &sb) != 0 || sb.st_size == 0)
        return cli_error(c, "--plot: gnuplot left no image at %s", cfg->plot);
    return 0;
}
