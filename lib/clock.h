/* SPDX-License-Identifier: ISC */
/*
 * clock: the two clocks tern reads.  Wall-clock time is what the queue
 * stores (arrival, next attempt, queue IDs); the monotonic clock is for
 * timeouts and durations, which a step of the wall clock must not move.
 */
#ifndef TERN_CLOCK_H
#define TERN_CLOCK_H

#include <stdint.h>

/* Microseconds since the epoch. */
int64_t clock_wall_us(void);

/* Microseconds on the monotonic clock. */
int64_t clock_mono_us(void);

/* Milliseconds on the monotonic clock. */
int64_t clock_mono_ms(void);

#endif
