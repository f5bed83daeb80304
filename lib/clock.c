/* SPDX-License-Identifier: ISC */
/*
 * clock: wall-clock and monotonic time in the units tern counts in.
 */
#include "autoconf.h"

#include <sys/time.h>
#include <time.h>

#include "lib/clock.h"

int64_t
clock_wall_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t
clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}
