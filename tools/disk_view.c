/*
 * disk_view.c - what info and dump can still show of a damaged durable
 * topic, one the library will not open: its segment files, found by name
 * in the data directory, and each file's walk (evb_dump_segment) summed up.
 * Reading frames and the checks on them stay the library's.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "<20 digits>.log", the name of a segment file. */
static bool segment_name(const char *name)
{
    size_t digits = strspn(name, "0123456789");
    return digits == 20 && strcmp(name + digits, ".log") == 0;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_disk_segments(const cli *c, const char *topic, uint32_t partition, char ***paths,
                      size_t *n)
{
    char dir[PATH_MAX];
    *paths = NULL;
    *n = 0;
    int len = snprintf(dir, sizeof(dir), "%s/%s/%u", evb_bus_data_dir(c->bus), topic,
                       partition);
    if (len < 0 || (size_t)len >= sizeof(dir))
        return -ENAMETOOLONG;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    char **v = NULL;
    size_t cnt = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!segment_name(e->d_name))
            continue;
        char **grown = realloc(v, (cnt + 1) * sizeof(*v));
        char *p = NULL;
        if (grown != NULL) {
            v = grown;
            if (asprintf(&p, "%s/%s", dir, e->d_name) < 0)
                p = NULL;
        }
        if (p == NULL) {
            rc = -ENOMEM;
            break;
        }
        v[cnt++] = p;
    }
    closedir(d);
    if (rc < 0) {
        cli_free_paths(v, cnt);
        return rc;
    }
    /* Fixed-width names: name order is base order, oldest first. */
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_path);
    *paths = v;
    *n = cnt;
    return 0;
}

void cli_free_paths(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static int count_frame(const evb_dump_frame *f, void *arg)
{
    cli_seg_summary *s = arg;
    if (f->kind == EVB_DUMP_DATA) {
        s->events++;
    } else if (f->kind == EVB_DUMP_END) {
        s->end_position = f->position;
        s->trailing_bytes = f->trailing_bytes;
        snprintf(s->why, sizeof(s->why), "%s", f->why != NULL ? f->why : "?");
    }
    return 0;
}

int cli_disk_summarise(const char *path, cli_seg_summary *s)
{
    *s = (cli_seg_summary){ .path = path };
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    s->file_bytes = (uint64_t)st.st_size;
    const char *name = strrchr(path, '/');
    s->base = strtoull(name != NULL ? name + 1 : path, NULL, 10);
    return evb_dump_segment(path, count_frame, s);
}
