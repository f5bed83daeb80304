/* SPDX-License-Identifier: ISC */
/*
 * store: the queue on disk, one RocksDB database opened once by ternd.
 * queue/README describes the column families and keys.
 *
 * Every change is a store_batch applied atomically.  Batches go through
 * one commit queue: a committer thread takes every batch that is waiting,
 * writes them as one RocksDB write batch with a synced WAL, and then runs
 * each batch's completion.  Concurrent commits therefore share one fsync;
 * nobody waits on purpose for more work to arrive.  When a completion
 * runs with status 0 the change is on disk.
 */
#ifndef TERN_STORE_H
#define TERN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "queue/envelope.h"

typedef struct store store_t;
typedef struct store_batch store_batch_t;

/* Completion of an asynchronous commit, called on the committer thread:
 * status 0 when durable, -1 on failure with err saying why. */
typedef void (*store_done_fn)(void *arg, int status, const char *err);

/* Open (creating if needed) the queue database in dir and start the
 * committer.  Returns NULL with *err set (caller frees) on failure. */
store_t *store_open(const char *dir, char **err);

/* Stop the committer after it has written what is queued, close the
 * database, free *sp and set it to NULL; accepts NULL. */
void store_close(store_t **sp);

/* A new empty batch. */
store_batch_t *store_batch_new(void);

/* Free a batch that was not committed; accepts NULL. */
void store_batch_free(store_batch_t **bp);

/* Add a new message: its envelope, its content, and a sched key at
 * env->next_us if the state is incoming or deferred. */
void store_batch_enqueue(store_batch_t *b, envelope_t *env,
                         const char *body, size_t len);

/* What a commit says when a condition of store_batch_expect failed. */
#define STORE_CONFLICT "the message changed meanwhile"

/* Make b conditional: it is written only if, at that moment, the
 * envelope of id is in state with its sched key at sched_us and no
 * earlier batch of the same write changes it; otherwise nothing of b is
 * written and the commit fails with STORE_CONFLICT.  For read, decide,
 * write sequences that another thread may overtake. */
void store_batch_expect(store_batch_t *b, const char *id,
                        enum queue_state state, int64_t sched_us);

/* Rewrite a message's envelope and move its sched key: the key at
 * env->sched_us (if any) is deleted, and a key at next_us is written
 * when next_us > 0.  env->sched_us is updated to match. */
void store_batch_update(store_batch_t *b, envelope_t *env, int64_t next_us);

/* Remove a message entirely: envelope, content and sched key. */
void store_batch_remove(store_batch_t *b, const envelope_t *env);

/* Move an undecodable record aside: the raw bytes go to the corrupt
 * family under id, and the envelope and the sched key at sched_us (if
 * nonzero) are deleted.  The content stays for inspection. */
void store_batch_corrupt(store_batch_t *b, const char *id, const char *raw,
                         size_t len, int64_t sched_us);

/* Delete the sched key (sched_us, id) alone: for a key whose message is
 * gone or no longer scheduled. */
void store_batch_unschedule(store_batch_t *b, const char *id,
                            int64_t sched_us);

/* Commit b and wait until it is durable.  Takes ownership of b.
 * Returns 0, or -1 with *err set (caller frees). */
int store_commit(store_t *s, store_batch_t *b, char **err);

/* Commit b in the background; done(arg, ...) is called once when it is
 * durable or has failed.  Takes ownership of b. */
void store_commit_async(store_t *s, store_batch_t *b, store_done_fn done,
                        void *arg);

/* Read a message's envelope.  Returns 1 and sets *envp (caller frees),
 * 0 if there is no such message, -1 on a read error, -2 if the record
 * does not decode; then *raw (caller frees, may be NULL) holds its bytes
 * and *err says why.  raw and err may be NULL. */
int store_get_envelope(store_t *s, const char *id, envelope_t **envp,
                       buf_t *raw, char **err);

/* Read a message's content into out (appended).  Returns 1, 0 if
 * missing, -1 on error. */
int store_get_body(store_t *s, const char *id, buf_t *out);

/* Call fn for each sched entry due at or before now_us, in time order,
 * at most max of them; fn returns nonzero to stop early.  Returns how
 * many entries were visited. */
size_t store_scan_due(store_t *s, int64_t now_us, size_t max,
                      int (*fn)(void *arg, const char *id, int64_t sched_us),
                      void *arg);

/* Time of the earliest sched entry; returns 0 if there is none. */
int store_next_due(store_t *s, int64_t *when_us);

/* Call fn for every envelope record, from a consistent snapshot, in ID
 * order; decode failures are passed with env NULL and the raw bytes.
 * fn returns nonzero to stop. */
void store_foreach(store_t *s,
                   int (*fn)(void *arg, const char *id, envelope_t *env,
                             const char *raw, size_t rawlen),
                   void *arg);

/* Call fn for the envelope records whose IDs sort after `after` (NULL
 * or "" for the first), in ID order, from one consistent snapshot, at
 * most max of them; decode failures are passed as by store_foreach.  fn
 * returns nonzero to stop after its record.  Returns 1 if records remain
 * past the last one visited, 0 at the end of the queue. */
int store_page(store_t *s, const char *after, size_t max,
               int (*fn)(void *arg, const char *id, envelope_t *env,
                         const char *raw, size_t rawlen),
               void *arg);

/* Call fn with the raw bytes of every envelope record of one snapshot,
 * in ID order, without decoding them (for counting); fn returns nonzero
 * to stop. */
void store_foreach_raw(store_t *s,
                       int (*fn)(void *arg, const char *key, size_t klen,
                                 const char *val, size_t vlen),
                       void *arg);

/* 1 while the database takes writes.  After a failed write the store
 * reopens it (at once, then every second while that fails); until then
 * it returns 0 with *why (caller frees; why may be NULL) saying what
 * went wrong, every commit fails, and reads go to the database opened
 * read-only (they find nothing if that failed too). */
int store_healthy(store_t *s, char **why);

/* The greatest queue ID ever committed (its time), 0 if none. */
uint64_t store_last_id_us(store_t *s);

#endif
