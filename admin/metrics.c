/* SPDX-License-Identifier: ISC */
/*
 * metrics: Prometheus text format.  Every family has its HELP and TYPE
 * lines; names follow Prometheus's conventions (tern_ prefix, _total
 * for counters, base units: seconds and bytes).  Counters are the
 * lib/stats totals since start; queue gauges come from the census.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <stdio.h>

#include "admin/census.h"
#include "admin/metrics.h"
#include "admin/stats_api.h"
#include "lib/stats.h"

static void
metrics_head(buf_t *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_counter(buf_t *b, const char *name, const char *help,
                enum stats_counter c)
{
    metrics_head(b, name, "counter", help);
    buf_printf(b, "%s %llu\n", name, (unsigned long long)stats_total(c));
}

static void
metrics_gauge(buf_t *b, const char *name, const char *help, long long v)
{
    metrics_head(b, name, "gauge", help);
    buf_printf(b, "%s %lld\n", name, v);
}

static void
metrics_histogram(buf_t *b, const char *name, const char *help,
                  enum stats_hist h)
{
    struct stats_hist_view v;
    int i;

    stats_hist_get(h, &v);
    metrics_head(b, name, "histogram", help);
    for (i = 0; i < STATS_HIST_BUCKETS; i++)
        buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, v.bounds[i],
                   (unsigned long long)v.cum[i]);
    buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
               (unsigned long long)v.count);
    buf_printf(b, "%s_sum %.6f\n", name, v.sum);
    buf_printf(b, "%s_count %llu\n", name, (unsigned long long)v.count);
}

static void
metrics_queue(buf_t *b, const struct census_count *cc)
{
    int st;

    metrics_head(b, "tern_queue_messages", "gauge",
                 "Messages in the queue, by queue state.");
    for (st = 0; st < CENSUS_STATES; st++)
        buf_printf(b, "tern_queue_messages{state=\"%s\"} %llu\n",
                   queue_state_name((enum queue_state)st),
                   (unsigned long long)cc->n[st]);
    metrics_gauge(b, "tern_queue_bytes", "Bytes of the messages queued.",
                  (long long)cc->bytes);
}

static void
metrics_pools(buf_t *b, const struct stats_api_pools *p)
{
    metrics_head(b, "tern_pool_threads", "gauge",
                 "Worker threads of each pool.");
    buf_printf(b, "tern_pool_threads{pool=\"smtpd\"} %ld\n", p->smtpd_threads);
    buf_printf(b, "tern_pool_threads{pool=\"cleanup\"} %ld\n",
               p->cleanup_threads);
    buf_printf(b, "tern_pool_threads{pool=\"delivery\"} %ld\n",
               p->delivery_threads);
    metrics_head(b, "tern_pool_busy", "gauge",
                 "Work items under way or waiting, per pool.");
    buf_printf(b, "tern_pool_busy{pool=\"cleanup\"} %ld\n", p->cleanup_busy);
    buf_printf(b, "tern_pool_busy{pool=\"delivery\"} %ld\n", p->delivery_busy);
    metrics_gauge(b, "tern_smtpd_sessions", "SMTP sessions open now.",
                  p->smtpd_sessions);
}

void
metrics_get(http_req_t *r)
{
    store_t *store = http_req_hooks(r)->store;
    struct stats_api_pools p;
    struct census_count cc;
    buf_t b;
    size_t len;

    census_get(http_census(http_req_server(r)), &cc);
    stats_api_pools(r, &p);
    buf_init(&b);
    metrics_head(&b, "tern_build_info", "gauge",
                 "Always 1; the version is in the label.");
    buf_printf(&b, "tern_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    metrics_head(&b, "tern_uptime_seconds", "gauge",
                 "Seconds since ternd started.");
    buf_printf(&b, "tern_uptime_seconds %.3f\n", stats_uptime());
    metrics_counter(&b, "tern_messages_received_total",
                    "Messages received over SMTP and queued.",
                    STATS_RECEIVED);
    metrics_counter(&b, "tern_recipients_delivered_total",
                    "Recipients delivered.", STATS_DELIVERED);
    metrics_counter(&b, "tern_recipients_deferred_total",
                    "Delivery attempts deferred, per recipient.",
                    STATS_DEFERRED);
    metrics_counter(&b, "tern_recipients_bounced_total",
                    "Recipients bounced or expired.", STATS_BOUNCED);
    metrics_counter(&b, "tern_smtpd_rejects_total",
                    "SMTP commands rejected by policy.", STATS_REJECTED);
    metrics_counter(&b, "tern_smtpd_connections_total",
                    "SMTP connections accepted.", STATS_CONNECTIONS);
    metrics_queue(&b, &cc);
    metrics_gauge(&b, "tern_queue_writable",
                  "1 while the queue database takes writes, 0 after a "
                  "failed write until it is reopened.",
                  (long long)(store != NULL && store_healthy(store, NULL)));
    metrics_pools(&b, &p);
    metrics_histogram(&b, "tern_delivery_delay_seconds",
                      "Time from arrival to delivery, per recipient.",
                      STATS_HIST_DELIVERY_DELAY);
    metrics_histogram(&b, "tern_acceptance_latency_seconds",
                      "Time from the start of cleanup to the 250 reply.",
                      STATS_HIST_ACCEPT_LATENCY);
    len = b.len;
    http_reply_raw(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                   buf_steal(&b), len);
}
