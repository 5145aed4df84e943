/*
 * t_hostile.h - for the tests of files planted in a bus or data directory
 * (issue 9, defects 4 and 14): replace a file with a FIFO, a symlink to
 * something outside or a directory, run the operation that opens it in a
 * child with a deadline (a hang fails the test instead of hanging it), and
 * check the symlink's target was left alone.
 */
#ifndef EVB_T_HOSTILE_H
#define EVB_T_HOSTILE_H

#include <stdbool.h>

enum t_plant {
    T_PLANT_FIFO,
    T_PLANT_SYMLINK, /* to t_outside(): an empty file, or a directory */
    T_PLANT_DIR,
};

/* Replace whatever is at PATH (file or directory tree) with HOW. A symlink
 * points at an empty regular file outside, or at an empty directory when
 * TO_DIR. */
void t_plant(const char *path, enum t_plant how, bool to_dir);

/* The word evb_open_file() uses for what HOW leaves at a path. */
const char *t_plant_word(enum t_plant how);

/* The outside file or directory symlinks point at is as t_plant() made
 * it: an empty file (nothing wrote through the link) or an empty
 * directory (nothing was created in it). */
bool t_outside_untouched(void);

/* Run FN(ARG) in a child for at most TIMEOUT_MS. Returns what FN returned
 * (0..255; FN returns -rc for a negative errno), or -1 when the child had
 * to be killed at the deadline. */
int t_bounded(int (*fn)(void *arg), void *arg, int timeout_ms);

/* Remove the outside file and directory (suite .fini). */
void t_hostile_cleanup(void);

#endif
