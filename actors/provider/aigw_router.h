/*  aigw_router: picks the deployment that serves one request for a model,
    keeps each deployment's health figures, and holds the retry policy.
    Pure policy, single-threaded: every call takes NOW (ms) and, where
    randomness is needed, an RNG state from the caller, so tests run on a
    fake clock and a fixed seed. The provider actor owns one router per
    model and maps a deployment's id to its provider settings (upstream
    model, base URL, credentials), which never enter this class.

    Pick: the best (lowest number) priority tier that has a deployment whose
    breaker admits a request and that the caller has not excluded (already
    tried); within it, by strategy. NULL when nothing is left: answer 503.
    Every non-NULL pick must be followed by exactly one aigw_router_record
    (or aigw_router_abandon when the request was never sent). */
#ifndef AIGW_ROUTER_H_INCLUDED
#define AIGW_ROUTER_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aigw_breaker.h"

//  Defaults, each overridable through aigw_router_settings_t.
#define AIGW_ROUTER_STATS_WINDOW_MS 60000  //  latency samples older than this are dropped
#define AIGW_ROUTER_EWMA_ALPHA      0.2    //  weight of the newest latency in the EWMA
#define AIGW_ROUTER_DEGRADED_ERROR  0.1    //  error rate at which a deployment is degraded
#define AIGW_ROUTER_DEGRADED_P95_MS 10000  //  p95 latency at which it is degraded
#define AIGW_ROUTER_DEGRADED_MIN    5      //  fewest samples before the error rate counts
//  Fixed sizes.
#define AIGW_ROUTER_SAMPLES           256   //  latency ring per deployment
#define AIGW_ROUTER_DEPLOYMENTS_MAX   64    //  deployments per model
#define AIGW_ROUTER_ERROR_MAX         256   //  bytes kept of the last error, with its NUL
#define AIGW_ROUTER_ID_MAX            128   //  bytes of an id, model or provider name
#define AIGW_ROUTER_RETRY_AFTER_MAX_S 3600  //  larger Retry-After values are clamped

typedef enum {
    AIGW_ROUTE_WEIGHTED = 0,     //  weighted random by weight
    AIGW_ROUTE_LEAST_LATENCY,    //  lowest latency EWMA, untried first
    AIGW_ROUTE_LEAST_IN_FLIGHT,  //  fewest requests outstanding
    AIGW_ROUTE_LOWEST_COST       //  lowest price_in + price_out
} aigw_route_strategy_t;

typedef enum { AIGW_HEALTH_HEALTHY = 0, AIGW_HEALTH_DEGRADED, AIGW_HEALTH_DOWN } aigw_health_t;

//  How an upstream attempt failed below HTTP.
typedef enum {
    AIGW_TRANSPORT_OK = 0,   //  an HTTP status came back
    AIGW_TRANSPORT_TIMEOUT,  //  connect or read timed out
    AIGW_TRANSPORT_CONNECT,  //  could not connect (refused, DNS, TLS)
    AIGW_TRANSPORT_IO        //  connection broke mid-exchange
} aigw_transport_error_t;

typedef struct {
    aigw_breaker_settings_t breaker;  //  every deployment's breaker
    int64_t stats_window_ms;          //  age limit of latency samples
    double ewma_alpha;                //  EWMA weight of the newest sample (0..1]
    double degraded_error_rate;       //  error rate at or above which: degraded
    int64_t degraded_p95_ms;          //  p95 latency at or above which: degraded
    uint32_t degraded_min_samples;    //  fewest outcomes before the error rate counts
} aigw_router_settings_t;

//  One deployment as configured.
typedef struct {
    const char *id;        //  unique id, e.g. "openai-east"
    const char *provider;  //  provider name, e.g. "openai"
    uint32_t weight;       //  share for the weighted strategy (0 = only if all 0)
    uint32_t priority;     //  tier, 0 first
    double price_in;       //  price per million input tokens
    double price_out;      //  price per million output tokens
} aigw_deployment_def_t;

typedef struct _aigw_router_t aigw_router_t;
typedef struct _aigw_deployment_t aigw_deployment_t;

//  Fill SETTINGS with the defaults.
void aigw_router_settings_default (aigw_router_settings_t *settings);

//  Create an empty router for MODEL. SETTINGS is copied; NULL means
//  defaults. NULL on bad settings, a bad model name or out of memory.
aigw_router_t *aigw_router_new (const char *model, const aigw_router_settings_t *settings);

//  Destroy the router and its deployments; nulls the caller's pointer.
void aigw_router_destroy (aigw_router_t **self_p);

//  Add a deployment (DEF's strings are copied). 0, or -1 on a missing or
//  too-long id or provider, a duplicate id, a negative price or a full table.
int aigw_router_add (aigw_router_t *self, const aigw_deployment_def_t *def);

//  Number of deployments.
size_t aigw_router_size (const aigw_router_t *self);

//  Deployment by id, NULL if none. The router owns it.
aigw_deployment_t *aigw_router_lookup (aigw_router_t *self, const char *id);

//  Pick a deployment (see the header comment). EXCLUDE lists EXCLUDE_COUNT
//  ids to skip (may be NULL). RNG is the caller's random state. Counts the
//  pick as in flight and, for a half-open breaker, takes its probe slot.
//  The router owns the result; NULL means none is left.
aigw_deployment_t *aigw_router_pick (aigw_router_t *self, aigw_route_strategy_t strategy,
                                     int64_t now, const char *const *exclude, size_t exclude_count,
                                     uint64_t *rng);

//  Report the outcome of a picked request: SUCCESS, total LATENCY_MS, time to
//  first token TTFB_MS (< 0 if none), and on failure a short ERROR (may be
//  NULL; kept truncated, control characters and credential-like words
//  replaced). Feeds the breaker and the health figures; ends the in-flight.
void aigw_router_record (aigw_router_t *self, aigw_deployment_t *deployment, int64_t now,
                         bool success, int64_t latency_ms, int64_t ttfb_ms, const char *error);

//  End an in-flight pick that was never sent; records no outcome.
void aigw_router_abandon (aigw_router_t *self, aigw_deployment_t *deployment);

//  Read-only views of one deployment.
const char *aigw_deployment_id (const aigw_deployment_t *self);
uint32_t aigw_deployment_in_flight (const aigw_deployment_t *self);
aigw_breaker_state_t aigw_deployment_circuit (const aigw_deployment_t *self);
//  Latency EWMA in ms, < 0 if never measured.
double aigw_deployment_ewma_ms (const aigw_deployment_t *self);
//  PCT (0..100) percentile of latency (or of time to first token when TTFT)
//  over the samples in the window at NOW; -1 when there are none.
int64_t aigw_deployment_percentile (const aigw_deployment_t *self, int64_t now, double pct,
                                    bool ttft);
//  The nearest-rank PCT (0..100) percentile of COUNT VALUES, which it sorts
//  in place; -1 when COUNT is 0. Shared with the merged health document.
int64_t aigw_router_nearest_rank (int64_t *values, size_t count, double pct);
//  Error rate over the window at NOW.
double aigw_deployment_error_rate (const aigw_deployment_t *self, int64_t now);
//  Derived status: down when the circuit is open, degraded when half-open
//  or the error rate or p95 is over its threshold, else healthy.
aigw_health_t aigw_deployment_health (const aigw_deployment_t *self, int64_t now);
//  Last error reported, "" if none. Owned by the deployment.
const char *aigw_deployment_last_error (const aigw_deployment_t *self);
//  "healthy", "degraded" or "down".
const char *aigw_health_name (aigw_health_t health);

//  The health document for GET /api/v1/admin/router/health: a JSON array
//  with one object per deployment {"id","model","provider","status",
//  "circuit","latency_ms":{"p50","p95"},"ttft_ms":{"p50","p95"},
//  "error_rate","in_flight","last_error"}; unknown percentiles are null.
//  Caller owns the result; NULL when out of memory.
json_t *aigw_router_health_json (const aigw_router_t *self, int64_t now);

//  What a provider process reports to the broker for merging: the health
//  document plus, per deployment, "window_total" and "window_failed"
//  outcomes in the window, "requests_total" and "failures_total" since
//  start, and the in-window "latency_samples" and "ttft_samples" (ms) of
//  successes. Caller owns the result; NULL when out of memory.
json_t *aigw_router_report_json (const aigw_router_t *self, int64_t now);

//  Retry policy. True for 5xx, 429 and any transport error; false for
//  other statuses (the client's own 4xx is never retried).
bool aigw_router_retryable (int http_status, aigw_transport_error_t transport);

//  Delay before retry ATTEMPT (0 = first retry): full jitter, uniform in
//  [0, min(CAP_MS, BASE_MS * 2^ATTEMPT)], but at least RETRY_AFTER_S seconds
//  when that is >= 0 (clamped to AIGW_ROUTER_RETRY_AFTER_MAX_S).
int64_t aigw_router_backoff_ms (unsigned attempt, int64_t base_ms, int64_t cap_ms,
                                int64_t retry_after_s, uint64_t *rng);

//  True if waiting DELAY_MS from NOW still leaves time before DEADLINE.
bool aigw_router_fits_deadline (int64_t now, int64_t deadline, int64_t delay_ms);

//  Next 64 random bits from STATE (splitmix64); any seed works.
uint64_t aigw_router_random (uint64_t *state);

void aigw_router_test (bool verbose);

#endif
