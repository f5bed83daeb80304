/* SPDX-License-Identifier: ISC */
/*
 * queue_id: names for queued messages.  An ID is the arrival time in
 * microseconds since the epoch, written as QUEUE_ID_LEN base-62 digits
 * (0-9, A-Z, a-z, in ASCII order), so IDs sort bytewise by arrival and
 * contain only characters that Postfix log parsers accept as a queue ID.
 * The generator never hands out the same value twice: when two IDs fall
 * in one microsecond the second takes the next microsecond, and at start
 * it begins past the last ID the queue recorded, so IDs stay unique
 * across restarts even when the clock steps back.
 */
#ifndef TERN_QUEUE_ID_H
#define TERN_QUEUE_ID_H

#include <stdint.h>

#define QUEUE_ID_LEN 10
#define QUEUE_ID_SIZE (QUEUE_ID_LEN + 1)

/* Make every later ID greater than last (an ID's time, 0 for none). */
void queue_id_floor(uint64_t last_us);

/* Write a new unique ID into out (NUL-terminated); thread-safe. */
void queue_id_new(char out[QUEUE_ID_SIZE]);

/* Encode us as an ID into out. */
void queue_id_encode(uint64_t us, char out[QUEUE_ID_SIZE]);

/* Decode an ID into microseconds; returns 0 if id is not a valid ID. */
int queue_id_decode(const char *id, uint64_t *us);

/* Nonzero if id is exactly QUEUE_ID_LEN base-62 digits. */
int queue_id_valid(const char *id);

#endif
