/* SPDX-License-Identifier: ISC */
/*
 * queue_id: the generator and codec of queue IDs.
 *
 * An ID is a time in microseconds since the epoch written as QUEUE_ID_LEN
 * base-62 digits, most significant first, with the digits in ASCII order,
 * so that comparing two IDs bytewise compares their times.  Ten digits
 * reach 62^10 microseconds, about 26,000 years.
 *
 * The generator keeps the last value it handed out in one atomic word.
 * A new ID takes the current time, or the last value plus one when the
 * clock has not moved past it, and publishes it with a compare-and-swap;
 * every ID is therefore greater than every ID handed out before it, in
 * any thread, and no two are equal.  queue_id_floor() raises the last
 * value, so that after a restart IDs continue past what the queue
 * recorded even if the clock was set back.  All functions are
 * thread-safe and never block.
 */
#include "autoconf.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "queue/queue_id.h"

static const char queue_id_digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* 62^10: the first time that does not fit in QUEUE_ID_LEN digits. */
#define QUEUE_ID_LIMIT 839299365868340224ULL

static _Atomic uint64_t queue_id_last;

/* Value of one base-62 digit, or -1. */
static int
queue_id_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

static uint64_t
queue_id_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        msg_fatal("clock_gettime: %m");
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Raise the generator so that every later ID is greater than last_us. */
void
queue_id_floor(uint64_t last_us)
{
    uint64_t cur = atomic_load(&queue_id_last);

    while (cur < last_us &&
           !atomic_compare_exchange_weak(&queue_id_last, &cur, last_us))
        ;
}

/* Hand out a new ID, greater than any handed out before. */
void
queue_id_new(char out[QUEUE_ID_SIZE])
{
    uint64_t cur = atomic_load(&queue_id_last);
    uint64_t now = queue_id_now();
    uint64_t next;

    /* A failed exchange reloads cur; the clock is read once, since a
     * value computed from cur + 1 is just as good. */
    do {
        next = now > cur ? now : cur + 1;
    } while (!atomic_compare_exchange_weak(&queue_id_last, &cur, next));
    queue_id_encode(next, out);
}

/* Write us as QUEUE_ID_LEN base-62 digits. */
void
queue_id_encode(uint64_t us, char out[QUEUE_ID_SIZE])
{
    int i;

    if (us >= QUEUE_ID_LIMIT)
        msg_panic("queue ID time %llu out of range", (unsigned long long)us);
    for (i = QUEUE_ID_LEN - 1; i >= 0; i--) {
        out[i] = queue_id_digits[us % 62];
        us /= 62;
    }
    out[QUEUE_ID_LEN] = '\0';
}

/* Read an ID back into microseconds; 1 on success, 0 if malformed. */
int
queue_id_decode(const char *id, uint64_t *us)
{
    uint64_t v = 0;
    int i;
    int d;

    if (id == NULL)
        return 0;
    for (i = 0; i < QUEUE_ID_LEN; i++) {
        if ((d = queue_id_digit(id[i])) < 0)
            return 0;
        v = v * 62 + (uint64_t)d;
    }
    if (id[QUEUE_ID_LEN] != '\0')
        return 0;
    if (us != NULL)
        *us = v;
    return 1;
}

/* Nonzero if id is exactly QUEUE_ID_LEN base-62 digits. */
int
queue_id_valid(const char *id)
{
    return queue_id_decode(id, NULL);
}
