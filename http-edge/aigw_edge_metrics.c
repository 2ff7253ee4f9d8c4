/*  aigw_edge_metrics: lock-free counters, rendered on demand. */
#include "aigw_edge_metrics.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_routes[AIGW_ROUTE_COUNT]
    = {"chat", "embeddings", "models", "ops", "other", "admin", "messages"};
//  Statuses counted one by one; anything else counts as "other".
static const int s_codes[] = {200, 400, 401, 403, 404, 405, 413, 429, 500, 502, 503, 504};
#define AIGW_CODE_COUNT ((int) (sizeof s_codes / sizeof s_codes[0]) + 1)
//  Histogram bucket bounds, in microseconds.
static const int64_t s_bounds[]
    = {100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
       100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
#define AIGW_BUCKET_COUNT ((int) (sizeof s_bounds / sizeof s_bounds[0]))
//  Room for the rendered text.
#define AIGW_METRICS_TEXT_MAX 32768

struct _aigw_edge_metrics_t {
    atomic_ullong requests[AIGW_ROUTE_COUNT][AIGW_CODE_COUNT];       //  by route, status
    atomic_ullong buckets[AIGW_ROUTE_COUNT][AIGW_BUCKET_COUNT + 1];  //  +Inf last
    atomic_ullong sum_us[AIGW_ROUTE_COUNT];                          //  total time per route
};

aigw_edge_metrics_t *
aigw_edge_metrics_new (void)
{
    return calloc (1, sizeof (aigw_edge_metrics_t));
}

void
aigw_edge_metrics_destroy (aigw_edge_metrics_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

void
aigw_edge_metrics_record (aigw_edge_metrics_t *self, int route, int status, int64_t micros)
{
    if (route < 0 || route >= AIGW_ROUTE_COUNT)
        route = AIGW_ROUTE_OTHER;
    int code = AIGW_CODE_COUNT - 1;
    for (int i = 0; i < AIGW_CODE_COUNT - 1; i++)
        if (s_codes[i] == status)
            code = i;
    atomic_fetch_add_explicit (&self->requests[route][code], 1, memory_order_relaxed);
    int bucket = AIGW_BUCKET_COUNT;
    for (int i = 0; i < AIGW_BUCKET_COUNT; i++)
        if (micros <= s_bounds[i]) {
            bucket = i;
            break;
        }
    atomic_fetch_add_explicit (&self->buckets[route][bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&self->sum_us[route], micros > 0 ? micros : 0, memory_order_relaxed);
}

char *
aigw_edge_metrics_text (aigw_edge_metrics_t *self)
{
    char *text = malloc (AIGW_METRICS_TEXT_MAX);
    size_t n = 0, cap = AIGW_METRICS_TEXT_MAX;
#define EMIT(...)                                           \
    do {                                                    \
        if (n < cap)                                        \
            n += snprintf (text + n, cap - n, __VA_ARGS__); \
    } while (0)
    EMIT ("# HELP aigw_http_requests_total HTTP requests answered by the edge.\n"
          "# TYPE aigw_http_requests_total counter\n");
    for (int r = 0; r < AIGW_ROUTE_COUNT; r++)
        for (int c = 0; c < AIGW_CODE_COUNT; c++) {
            unsigned long long count = atomic_load (&self->requests[r][c]);
            if (!count)
                continue;
            if (c < AIGW_CODE_COUNT - 1)
                EMIT ("aigw_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n", s_routes[r],
                      s_codes[c], count);
            else
                EMIT ("aigw_http_requests_total{route=\"%s\",code=\"other\"} %llu\n", s_routes[r],
                      count);
        }
    EMIT ("# HELP aigw_http_request_duration_seconds Time from request to last byte.\n"
          "# TYPE aigw_http_request_duration_seconds histogram\n");
    for (int r = 0; r < AIGW_ROUTE_COUNT; r++) {
        unsigned long long cumulative = 0;
        for (int b = 0; b <= AIGW_BUCKET_COUNT; b++) {
            cumulative += atomic_load (&self->buckets[r][b]);
            if (b < AIGW_BUCKET_COUNT)
                EMIT ("aigw_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                      "%llu\n",
                      s_routes[r], s_bounds[b] / 1e6, cumulative);
            else
                EMIT ("aigw_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
                      " %llu\n",
                      s_routes[r], cumulative);
        }
        EMIT ("aigw_http_request_duration_seconds_sum{route=\"%s\"} %g\n", s_routes[r],
              atomic_load (&self->sum_us[r]) / 1e6);
        EMIT ("aigw_http_request_duration_seconds_count{route=\"%s\"} %llu\n", s_routes[r],
              cumulative);
    }
#undef EMIT
    if (n >= cap)
        text[cap - 1] = 0;
    return text;
}

void
aigw_edge_metrics_test (bool verbose)
{
    aigw_edge_metrics_t *self = aigw_edge_metrics_new ();
    aigw_edge_metrics_record (self, AIGW_ROUTE_CHAT, 200, 300);
    aigw_edge_metrics_record (self, AIGW_ROUTE_CHAT, 200, 2000000);
    aigw_edge_metrics_record (self, AIGW_ROUTE_CHAT, 418, 10);
    char *text = aigw_edge_metrics_text (self);
    assert (strstr (text, "aigw_http_requests_total{route=\"chat\",code=\"200\"} 2\n"));
    assert (strstr (text, "aigw_http_requests_total{route=\"chat\",code=\"other\"} 1\n"));
    assert (strstr (text, "route=\"chat\",le=\"0.0005\"} 2\n"));
    assert (strstr (text, "route=\"chat\",le=\"+Inf\"} 3\n"));
    assert (strstr (text, "aigw_http_request_duration_seconds_count{route=\"chat\"} 3\n"));
    free (text);
    aigw_edge_metrics_destroy (&self);
    aigw_edge_metrics_destroy (&self);
    if (verbose)
        printf ("edge metrics: ok\n");
}
