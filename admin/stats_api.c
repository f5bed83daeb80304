/* SPDX-License-Identifier: ISC */
/*
 * stats_api: the JSON statistics.  Queue sizes come from the census
 * (recent, not exact to the instant); event counts from lib/stats, as
 * totals since start and per minute for the last hour, oldest first;
 * the queue sizes of the last hour are the census's per-minute samples,
 * null for minutes without one, and the count of now for this minute.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "admin/census.h"
#include "admin/stats_api.h"
#include "lib/stats.h"

static json_t *
stats_api_time(int64_t secs)
{
    char text[32];
    time_t t = (time_t)secs;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

static json_t *
stats_api_queue(const struct census_count *cc)
{
    json_t *o = json_object();
    int st;

    for (st = 0; st < CENSUS_STATES; st++)
        json_object_set_new(o, queue_state_name((enum queue_state)st),
                            json_integer((json_int_t)cc->n[st]));
    json_object_set_new(o, "total", json_integer((json_int_t)cc->total));
    json_object_set_new(o, "bytes", json_integer((json_int_t)cc->bytes));
    json_object_set_new(o, "counted_at",
                        stats_api_time(cc->taken_us / 1000000));
    return o;
}

static json_t *
stats_api_counters(void)
{
    json_t *totals = json_object();
    json_t *minutes = json_object();
    uint64_t ring[STATS_MINUTES];
    int64_t end = 0;
    int c;
    int i;

    for (c = 0; c < STATS_NCOUNTERS; c++) {
        json_t *arr = json_array();

        json_object_set_new(totals, stats_counter_name(c),
                            json_integer((json_int_t)stats_total(c)));
        stats_minutes(c, ring, &end);
        for (i = 0; i < STATS_MINUTES; i++)
            json_array_append_new(arr, json_integer((json_int_t)ring[i]));
        json_object_set_new(minutes, stats_counter_name(c), arr);
    }
    json_object_set_new(minutes, "end", stats_api_time(end * 60));
    return json_pack("{s:o,s:o}", "totals", totals, "per_minute", minutes);
}

/* The per-minute samples, the current minute being the count now. */
static json_t *
stats_api_history(census_t *census, const struct census_count *now)
{
    struct census_count hist[CENSUS_MINUTES];
    json_t *o = json_object();
    int64_t end;
    int st;
    int i;

    census_history(census, hist, &end);
    hist[CENSUS_MINUTES - 1] = *now;
    for (st = 0; st < CENSUS_STATES; st++) {
        json_t *arr = json_array();

        for (i = 0; i < CENSUS_MINUTES; i++)
            json_array_append_new(arr, hist[i].taken_us
                                           ? json_integer((json_int_t)
                                                              hist[i].n[st])
                                           : json_null());
        json_object_set_new(o, queue_state_name((enum queue_state)st), arr);
    }
    json_object_set_new(o, "end", stats_api_time(end * 60));
    return o;
}

void
stats_api_pools(http_req_t *r, struct stats_api_pools *p)
{
    const struct http_hooks *hooks = http_req_hooks(r);
    config_t *cfg = config_current();
    long io = cfg ? (long)config_num(cfg, P_SMTPD_IO_THREADS) : 0;

    if (io <= 0)
        io = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN)
                                               : 1;
    p->smtpd_threads = io;
    p->smtpd_sessions = hooks->sessions ? hooks->sessions(hooks->arg) : 0;
    p->cleanup_threads = cfg ? (long)config_num(cfg, P_CLEANUP_THREADS) : 0;
    p->cleanup_busy = hooks->cleanup ? (long)cleanup_busy(hooks->cleanup) : 0;
    p->delivery_threads = cfg ? (long)config_num(cfg, P_DELIVERY_THREADS) : 0;
    p->delivery_busy = hooks->qmgr ? (long)qmgr_busy(hooks->qmgr) : 0;
    config_unref(&cfg);
}

void
stats_api_get(http_req_t *r)
{
    census_t *census = http_census(http_req_server(r));
    struct stats_api_pools p;
    struct census_count cc;
    json_t *o;

    census_get(census, &cc);
    stats_api_pools(r, &p);
    o = stats_api_counters();
    json_object_set_new(o, "version", json_string(PACKAGE_VERSION));
    json_object_set_new(o, "uptime", json_real(stats_uptime()));
    json_object_set_new(o, "queue", stats_api_queue(&cc));
    json_object_set_new(o, "queue_history", stats_api_history(census, &cc));
    json_object_set_new(
        o, "pools",
        json_pack("{s:{s:I,s:I},s:{s:I,s:I},s:{s:I,s:I}}", "smtpd", "threads",
                  (json_int_t)p.smtpd_threads, "busy",
                  (json_int_t)p.smtpd_sessions, "cleanup", "threads",
                  (json_int_t)p.cleanup_threads, "busy",
                  (json_int_t)p.cleanup_busy, "delivery", "threads",
                  (json_int_t)p.delivery_threads, "busy",
                  (json_int_t)p.delivery_busy));
    json_object_set_new(
        o, "connections",
        json_pack("{s:I,s:I}", "open", (json_int_t)p.smtpd_sessions, "total",
                  (json_int_t)stats_total(STATS_CONNECTIONS)));
    http_reply_json(r, MHD_HTTP_OK, o);
}

void
stats_api_ready(http_req_t *r)
{
    const struct http_hooks *hooks = http_req_hooks(r);
    char *why = NULL;
    int64_t when;

    if (hooks->ready != NULL && !hooks->ready(hooks->arg)) {
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready", NULL,
                         "the SMTP listeners are not all up");
        return;
    }
    if (hooks->store == NULL) {
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready", NULL,
                         "the queue is not open");
        return;
    }

    if (!store_healthy(hooks->store, &why)) {
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready", NULL,
                         "the queue cannot be written: %s", why);
        free(why);
        return;
    }

    /* A read that touches the database proves it answers. */
    store_next_due(hooks->store, &when);
    http_reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ready"));
}
