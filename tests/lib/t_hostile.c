/*
 * t_hostile.c - planting FIFOs, symlinks and directories where evbus
 * expects its files, and running what opens them under a deadline. The
 * tests that use it say which file and which operation.
 */
#include "t_hostile.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t_helpers.h"

static char outside_dir[128]; /* holds the targets, outside every bus */
static char outside_file[160];
static char outside_empty[160];

static void outside_make(void)
{
    if (outside_dir[0])
        return;
    const char *tmp = getenv("TMPDIR");
    snprintf(outside_dir, sizeof outside_dir, "%s/evb-outside-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(outside_dir))
        abort();
    snprintf(outside_file, sizeof outside_file, "%s/target", outside_dir);
    snprintf(outside_empty, sizeof outside_empty, "%s/empty", outside_dir);
    int fd = open(outside_file, O_CREAT | O_WRONLY | O_EXCL, 0600);
    if (fd < 0 || mkdir(outside_empty, 0700) < 0)
        abort();
    close(fd);
}

void t_plant(const char *path, enum t_plant how, bool to_dir)
{
    outside_make();
    t_rmtree(path);
    int rc = 0;
    switch (how) {
    case T_PLANT_FIFO:
        rc = mkfifo(path, 0600);
        break;
    case T_PLANT_SYMLINK:
        rc = symlink(to_dir ? outside_empty : outside_file, path);
        break;
    case T_PLANT_DIR:
        rc = mkdir(path, 0700);
        break;
    }
    if (rc < 0) {
        perror(path);
        abort();
    }
}

const char *t_plant_word(enum t_plant how)
{
    return how == T_PLANT_FIFO ? "fifo" : how == T_PLANT_SYMLINK ? "symlink" : "directory";
}

bool t_outside_untouched(void)
{
    struct stat st;
    if (stat(outside_file, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 0)
        return false;
    DIR *d = opendir(outside_empty);
    if (!d)
        return false;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n == 0;
}

int t_bounded(int (*fn)(void *arg), void *arg, int timeout_ms)
{
    pid_t pid = t_spawn(fn, arg);
    if (pid < 0)
        abort();
    return t_wait_exit(pid, timeout_ms);
}

void t_hostile_cleanup(void)
{
    if (outside_dir[0])
        t_rmtree(outside_dir);
    outside_dir[0] = '\0';
}
