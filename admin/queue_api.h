/* SPDX-License-Identifier: ISC */
/*
 * queue_api: the queue under /api/v1: listing with filters and cursor
 * pagination, one message's envelope, headers and content, and the
 * postsuper-style changes (delete, hold, release, requeue) on one
 * message or on every message a filter matches, and flush.
 */
#ifndef TERN_QUEUE_API_H
#define TERN_QUEUE_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "admin/filter.h"
#include "admin/http.h"
#include "queue/store.h"

/* Records one page may read while looking for matches; a sparse filter
 * gets a cursor back before it has a full page. */
#define QUEUE_API_SCAN_MAX 20000
#define QUEUE_API_LIMIT_DEFAULT 100
#define QUEUE_API_LIMIT_MAX 1000

/* One page of the listing: messages after the queue ID `after` (NULL for
 * the first page) that f matches, at most limit of them.  Returns a new
 * object {"messages": [...], "next_cursor": ID or null}. */
json_t *queue_api_page(store_t *store, filter_t *f, const char *after,
                       size_t limit, int64_t now_us);

/* One message as the listing shows it; a new object. */
json_t *queue_api_message_json(const envelope_t *env);

/*
 * The steps that decode a request, before the store is touched; each
 * answers r when it refuses.
 */

/* Take one query argument of a listing into f: 0 (limit and cursor are
 * left for the next two), or -1 after answering 400. */
int queue_api_query_arg(http_req_t *r, filter_t *f, const char *name,
                        const char *value);

/* A listing's limit from s (NULL if absent: the default), a whole
 * number from 1 to QUEUE_API_LIMIT_MAX: 0, or -1 after answering 400. */
int queue_api_limit(http_req_t *r, const char *s, size_t *limit);

/* Check a listing's cursor (NULL or "" for the first page, else a queue
 * ID): 0, or -1 after answering 400. */
int queue_api_cursor(http_req_t *r, const char *cursor);

/* The filter a bulk change's body gives (criteria, or "all": true): a
 * new filter the caller frees, or NULL after answering 400. */
filter_t *queue_api_body_filter(http_req_t *r);

/* The domain a flush's body names, in *domain (owned by the body), or
 * NULL for every deferred message: 0, or -1 after answering 400. */
int queue_api_flush_domain(http_req_t *r, const char **domain);

/* GET /api/v1/queue */
void queue_api_list(http_req_t *r);

/* GET /api/v1/queue/{id} */
void queue_api_show(http_req_t *r);

/* GET /api/v1/queue/{id}/message */
void queue_api_message(http_req_t *r);

/* DELETE /api/v1/queue/{id} */
void queue_api_delete(http_req_t *r);

/* POST /api/v1/queue/{id}/hold, release, requeue */
void queue_api_change(http_req_t *r);

/* POST /api/v1/queue/delete, hold, release, requeue */
void queue_api_bulk(http_req_t *r);

/* POST /api/v1/flush */
void queue_api_flush(http_req_t *r);

#endif
