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
