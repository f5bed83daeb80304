/* SPDX-License-Identifier: ISC */
/*
 * stats_api: GET /api/v1/stats (what the status page polls) and
 * GET /readyz.
 */
#ifndef TERN_STATS_API_H
#define TERN_STATS_API_H

#include "admin/http.h"

/* The pools: threads configured and busy now. */
struct stats_api_pools {
    long smtpd_threads;
    long smtpd_sessions;
    long cleanup_threads;
    long cleanup_busy;
    long delivery_threads;
    long delivery_busy;
};

/* Fill *p from the hooks and the current config. */
void stats_api_pools(http_req_t *r, struct stats_api_pools *p);

/* GET /api/v1/stats */
void stats_api_get(http_req_t *r);

/* GET /readyz */
void stats_api_ready(http_req_t *r);

#endif
