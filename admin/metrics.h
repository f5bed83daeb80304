/* SPDX-License-Identifier: ISC */
/*
 * metrics: GET /metrics, the counters, gauges and histograms in the
 * Prometheus text exposition format (version 0.0.4).
 */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include "admin/http.h"
#include "lib/buf.h"

/* GET /metrics */
void metrics_get(http_req_t *r);

#endif
