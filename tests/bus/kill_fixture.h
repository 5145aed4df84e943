/*
 * kill_fixture.h - the bus of the tests that kill processes at crash
 * points and then go on with the survivors (test_dlq.c, test_leftovers.c,
 * test_queue_kill.c):
 * over t_bus_dir() and t_data_dir(), with dead_ms 100 so that a killed
 * process's claims are padded and its holds let go within a test. The
 * suite opens it before each test and removes both directories after; a
 * child opens a handle of its own with the same options.
 *
 * Definitions, not only declarations (each test program is one file):
 * include it once, in that file.
 */
#ifndef EVB_KILL_FIXTURE_H
#define EVB_KILL_FIXTURE_H

#include <criterion/criterion.h>

#include "t_helpers.h"

/* The test's handle, opened by kf_setup(). */
static evb_bus *bus;

/* A new handle on the test's bus, with the fixture's options: 0 or
 * evb_bus_open()'s error. */
static int kf_bus_open(evb_bus **out)
{
    evb_bus_options o = {.dead_ms = 100, .data_dir = t_data_dir()};
    return evb_bus_open(out, t_bus_dir(), &o);
}

/* Suite .init and .fini. */
static void kf_setup(void)
{
    cr_assert_eq(kf_bus_open(&bus), 0);
}

static void kf_teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

#endif
