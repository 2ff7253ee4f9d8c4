/*  aigw_router: deployment choice, health figures and retry policy for one
    model (see the header). */
#include "aigw_router.h"
#include "aigw_config.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Bounds of the router's settings and of each deployment's.
#define S_ATTEMPTS_MAX 10                   //  router.max_attempts
#define S_WEIGHT_MAX   1000000              //  deployments[].weight
#define S_PRIORITY_MAX 1000                 //  deployments[].priority tiers
#define S_TPM_MAX      ((int64_t) 1 << 40)  //  deployments[].tpm
#define S_PRICE_MAX    1000000              //  USD per million tokens

//  The config keeps ids the router can hold, NUL included.
_Static_assert(AIGW_CONFIG_ID_MAX + 1 == AIGW_ROUTER_ID_MAX, "deployment id sizes differ");

//  The routing strategies a model or router.strategy may name.
static int
s_check_strategy (const char *value, char *problem, size_t problem_size)
{
    static const char *strategies[]
        = {"weighted", "least_latency", "least_in_flight", "lowest_cost"};
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++)
        if (strcmp (value, strategies[i]) == 0)
            return 0;
    snprintf (problem, problem_size,
              "expected weighted, least_latency, least_in_flight or lowest_cost");
    return -1;
}

//  router: how the provider actor picks, retries and falls back.
static const aigw_config_keyword_t s_router_keywords[] = {
    AIGW_CONFIG_KW_STRING ("strategy", aigw_config_t, router_strategy, s_check_strategy,
                           AIGW_DEFAULT_ROUTER_STRATEGY),
    AIGW_CONFIG_KW_NUMBER ("max_attempts", AIGW_CONFIG_INT, aigw_config_t, router_max_attempts, 1,
                           S_ATTEMPTS_MAX, AIGW_DEFAULT_ROUTER_MAX_ATTEMPTS),
    AIGW_CONFIG_KW_NUMBER ("retry_base_ms", AIGW_CONFIG_INT64, aigw_config_t, router_retry_base_ms,
                           0, AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_ROUTER_RETRY_BASE_MS),
    AIGW_CONFIG_KW_NUMBER ("retry_cap_ms", AIGW_CONFIG_INT64, aigw_config_t, router_retry_cap_ms, 0,
                           AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_ROUTER_RETRY_CAP_MS,
                           .not_below = "retry_base_ms"),
    AIGW_CONFIG_KW_NUMBER ("first_token_timeout_ms", AIGW_CONFIG_INT64, aigw_config_t,
                           first_token_timeout_ms, AIGW_CONFIG_TIMEOUT_MS_MIN,
                           AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_FIRST_TOKEN_TIMEOUT_MS),
    AIGW_CONFIG_KW_NUMBER ("report_ms", AIGW_CONFIG_INT64, aigw_config_t, router_report_ms,
                           AIGW_CONFIG_TIMEOUT_MS_MIN, AIGW_CONFIG_TIMEOUT_MS_MAX,
                           AIGW_DEFAULT_REPORT_MS),
    AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("router", s_router_keywords)

//  A model's own strategy (models[].strategy).
static const aigw_config_keyword_t s_model_keywords[]
    = {AIGW_CONFIG_KW_STRING ("strategy", aigw_config_model_t, strategy, s_check_strategy, NULL),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("models[]", s_model_keywords)

//  What the router weighs in each deployment (models[].deployments[]).
static const aigw_config_keyword_t s_deployment_keywords[]
    = {AIGW_CONFIG_KW_STRING ("id", aigw_config_deployment_t, id, NULL, NULL),
       AIGW_CONFIG_KW_NUMBER ("weight", AIGW_CONFIG_INT64, aigw_config_deployment_t, weight, 0,
                              S_WEIGHT_MAX, 1),
       AIGW_CONFIG_KW_NUMBER ("priority", AIGW_CONFIG_INT64, aigw_config_deployment_t, priority, 0,
                              S_PRIORITY_MAX, 0),
       AIGW_CONFIG_KW_NUMBER ("rpm", AIGW_CONFIG_INT64, aigw_config_deployment_t, rpm, 0,
                              AIGW_CONFIG_RPM_MAX, 0),
       AIGW_CONFIG_KW_NUMBER ("tpm", AIGW_CONFIG_INT64, aigw_config_deployment_t, tpm, 0, S_TPM_MAX,
                              0),
       AIGW_CONFIG_KW_REAL ("price_in", aigw_config_deployment_t, price_in, 0, S_PRICE_MAX, 0),
       AIGW_CONFIG_KW_REAL ("price_out", aigw_config_deployment_t, price_out, 0, S_PRICE_MAX, 0),
       //  Unset (-1): cached prompt tokens cost price_in.
       AIGW_CONFIG_KW_REAL ("price_cached_in", aigw_config_deployment_t, price_cached_in, 0,
                            S_PRICE_MAX, -1),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("models[].deployments[]", s_deployment_keywords)

//  One finished request, as the health figures see it.
typedef struct {
    int64_t at;          //  when it was reported, ms
    int64_t latency_ms;  //  total latency, ms
    int64_t ttfb_ms;     //  time to first token, ms; < 0 if none
    bool success;        //  true if it succeeded
} s_sample_t;

//  One deployment.
struct _aigw_deployment_t {
    char id[AIGW_ROUTER_ID_MAX];              //  unique id
    char provider[AIGW_ROUTER_ID_MAX];        //  provider name
    uint32_t weight;                          //  weighted-strategy share
    uint32_t priority;                        //  tier, 0 first
    double price_in;                          //  per million input tokens
    double price_out;                         //  per million output tokens
    aigw_breaker_t *breaker;                  //  its circuit breaker
    const aigw_router_settings_t *settings;   //  the owning router's settings
    s_sample_t samples[AIGW_ROUTER_SAMPLES];  //  ring of recent outcomes
    uint32_t sample_head;                     //  next slot to write
    uint32_t sample_count;                    //  slots filled
    double ewma_ms;                           //  latency EWMA of successes, < 0 if none yet
    uint32_t in_flight;                       //  picks not yet recorded or abandoned
    char last_error[AIGW_ROUTER_ERROR_MAX];   //  last failure, sanitised
    uint64_t requests;                        //  outcomes recorded since start
    uint64_t failures;                        //  of which failed
};

//  The router of one model.
struct _aigw_router_t {
    char model[AIGW_ROUTER_ID_MAX];                               //  model name clients ask for
    aigw_router_settings_t settings;                              //  thresholds (a copy)
    aigw_deployment_t *deployments[AIGW_ROUTER_DEPLOYMENTS_MAX];  //  in config order
    size_t size;                                                  //  deployments in use
};

void
aigw_router_settings_default (aigw_router_settings_t *settings)
{
    assert (settings);
    aigw_breaker_settings_default (&settings->breaker);
    settings->stats_window_ms = AIGW_ROUTER_STATS_WINDOW_MS;
    settings->ewma_alpha = AIGW_ROUTER_EWMA_ALPHA;
    settings->degraded_error_rate = AIGW_ROUTER_DEGRADED_ERROR;
    settings->degraded_p95_ms = AIGW_ROUTER_DEGRADED_P95_MS;
    settings->degraded_min_samples = AIGW_ROUTER_DEGRADED_MIN;
}

//  True if S is a non-empty string that fits an id buffer.
static bool
s_name_ok (const char *s)
{
    return s && *s && strlen (s) < AIGW_ROUTER_ID_MAX;
}

aigw_router_t *
aigw_router_new (const char *model, const aigw_router_settings_t *settings)
{
    aigw_router_settings_t defaults;
    if (!settings) {
        aigw_router_settings_default (&defaults);
        settings = &defaults;
    }
    if (!s_name_ok (model) || settings->stats_window_ms < 0
        || !(settings->ewma_alpha > 0 && settings->ewma_alpha <= 1)
        || settings->degraded_error_rate < 0 || settings->degraded_p95_ms < 0)
        return NULL;
    //  Validate breaker settings once, up front.
    aigw_breaker_t *probe = aigw_breaker_new (&settings->breaker);
    if (!probe)
        return NULL;
    aigw_breaker_destroy (&probe);
    aigw_router_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->model, sizeof self->model, "%s", model);
    self->settings = *settings;
    return self;
}

void
aigw_router_destroy (aigw_router_t **self_p)
{
    assert (self_p);
    aigw_router_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++) {
        aigw_breaker_destroy (&self->deployments[i]->breaker);
        free (self->deployments[i]);
    }
    free (self);
    *self_p = NULL;
}

int
aigw_router_add (aigw_router_t *self, const aigw_deployment_def_t *def)
{
    assert (self);
    assert (def);
    if (!s_name_ok (def->id) || !s_name_ok (def->provider)
        || self->size >= AIGW_ROUTER_DEPLOYMENTS_MAX || !(def->price_in >= 0)
        || !(def->price_out >= 0) || aigw_router_lookup (self, def->id))
        return -1;
    aigw_deployment_t *d = calloc (1, sizeof *d);
    if (!d)
        return -1;
    d->breaker = aigw_breaker_new (&self->settings.breaker);
    if (!d->breaker) {
        free (d);
        return -1;
    }
    snprintf (d->id, sizeof d->id, "%s", def->id);
    snprintf (d->provider, sizeof d->provider, "%s", def->provider);
    d->weight = def->weight;
    d->priority = def->priority;
    d->price_in = def->price_in;
    d->price_out = def->price_out;
    d->settings = &self->settings;
    d->ewma_ms = -1;
    self->deployments[self->size++] = d;
    return 0;
}

size_t
aigw_router_size (const aigw_router_t *self)
{
    assert (self);
    return self->size;
}

aigw_deployment_t *
aigw_router_lookup (aigw_router_t *self, const char *id)
{
    assert (self);
    for (size_t i = 0; id && i < self->size; i++)
        if (strcmp (self->deployments[i]->id, id) == 0)
            return self->deployments[i];
    return NULL;
}

uint64_t
aigw_router_random (uint64_t *state)
{
    assert (state);
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

//  Uniform integer in [0, BOUND) for BOUND > 0 (rejection: no modulo bias).
static uint64_t
s_uniform (uint64_t *rng, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = aigw_router_random (rng);
    while (r >= limit);
    return r % bound;
}

//  True if ID is among the COUNT ids in EXCLUDE.
static bool
s_excluded (const char *id, const char *const *exclude, size_t count)
{
    for (size_t i = 0; exclude && i < count; i++)
        if (exclude[i] && strcmp (exclude[i], id) == 0)
            return true;
    return false;
}

//  Among the COUNT candidates, those whose KEY is least (within a relative
//  epsilon) tie; pick one of them uniformly. KEY[i] is the candidate's score.
static size_t
s_pick_min (const double *key, size_t count, uint64_t *rng)
{
    double best = key[0];
    for (size_t i = 1; i < count; i++)
        if (key[i] < best)
            best = key[i];
    size_t ties[AIGW_ROUTER_DEPLOYMENTS_MAX];
    size_t nties = 0;
    for (size_t i = 0; i < count; i++)
        if (key[i] <= best + fabs (best) * 1e-9)
            ties[nties++] = i;
    return ties[nties == 1 ? 0 : s_uniform (rng, nties)];
}

//  Choose one of the COUNT candidates in CAND by STRATEGY.
static aigw_deployment_t *
s_choose (aigw_deployment_t **cand, size_t count, aigw_route_strategy_t strategy, uint64_t *rng)
{
    double key[AIGW_ROUTER_DEPLOYMENTS_MAX];
    switch (strategy) {
        case AIGW_ROUTE_LEAST_LATENCY:
            //  Untried ones first (key -1), so every deployment gets measured.
            for (size_t i = 0; i < count; i++)
                key[i] = cand[i]->ewma_ms < 0 ? -1 : cand[i]->ewma_ms;
            return cand[s_pick_min (key, count, rng)];
        case AIGW_ROUTE_LEAST_IN_FLIGHT:
            for (size_t i = 0; i < count; i++)
                key[i] = cand[i]->in_flight;
            return cand[s_pick_min (key, count, rng)];
        case AIGW_ROUTE_LOWEST_COST:
            for (size_t i = 0; i < count; i++)
                key[i] = cand[i]->price_in + cand[i]->price_out;
            return cand[s_pick_min (key, count, rng)];
        case AIGW_ROUTE_WEIGHTED:
        default: {
            uint64_t total = 0;
            for (size_t i = 0; i < count; i++)
                total += cand[i]->weight;
            if (total == 0)  //  all zero: share equally
                return cand[s_uniform (rng, count)];
            uint64_t r = s_uniform (rng, total);
            for (size_t i = 0; i < count; i++) {
                if (r < cand[i]->weight)
                    return cand[i];
                r -= cand[i]->weight;
            }
            return cand[count - 1];  //  not reached
        }
    }
}

aigw_deployment_t *
aigw_router_pick (aigw_router_t *self, aigw_route_strategy_t strategy, int64_t now,
                  const char *const *exclude, size_t exclude_count, uint64_t *rng)
{
    assert (self);
    assert (rng);
    //  Walk tiers in ascending priority: TIER is the one being tried,
    //  NEXT the lowest priority above it seen on the way.
    bool have_tier = self->size > 0;
    uint32_t tier = UINT32_MAX;
    for (size_t i = 0; i < self->size; i++)
        if (self->deployments[i]->priority < tier)
            tier = self->deployments[i]->priority;
    while (have_tier) {
        aigw_deployment_t *cand[AIGW_ROUTER_DEPLOYMENTS_MAX];
        size_t count = 0;
        bool have_next = false;
        uint32_t next = UINT32_MAX;
        for (size_t i = 0; i < self->size; i++) {
            aigw_deployment_t *d = self->deployments[i];
            if (d->priority > tier && d->priority <= next) {
                next = d->priority;
                have_next = true;
            }
            if (d->priority == tier && !s_excluded (d->id, exclude, exclude_count)
                && aigw_breaker_available (d->breaker, now))
                cand[count++] = d;
        }
        if (count > 0) {
            aigw_deployment_t *d = s_choose (cand, count, strategy, rng);
            bool allowed = aigw_breaker_allow (d->breaker, now);
            assert (allowed);  //  available a moment ago, same NOW
            (void) allowed;
            d->in_flight++;
            return d;
        }
        have_tier = have_next;
        tier = next;
    }
    return NULL;
}

//  Copy ERROR into DEST (SIZE bytes): truncated, control characters turned
//  into spaces, and words that look like credentials replaced, so that an
//  upstream error echoing a key never reaches the health page.
static void
s_sanitise_error (char *dest, size_t size, const char *error)
{
    static const char *const secret_prefixes[]
        = {"sk-", "sk_", "key-", "pk-", "AKIA", "ghp_", "xox", "eyJ", NULL};
    size_t out = 0;
    const char *p = error;
    bool redact_next = false;
    while (*p && out + 1 < size) {
        if (isspace ((unsigned char) *p) || iscntrl ((unsigned char) *p)) {
            if (out > 0 && dest[out - 1] != ' ')
                dest[out++] = ' ';
            p++;
            continue;
        }
        //  One word: up to the next space.
        size_t len = 0;
        while (p[len] && !isspace ((unsigned char) p[len]) && !iscntrl ((unsigned char) p[len]))
            len++;
        bool secret = redact_next || len >= 40;
        for (int i = 0; !secret && secret_prefixes[i]; i++) {
            //  The prefix may follow punctuation, e.g. key="sk-...".
            const char *hit = strstr (p, secret_prefixes[i]);
            if (hit && hit < p + len)
                secret = true;
        }
        redact_next = (len == 6 && strncasecmp (p, "Bearer", 6) == 0)
                      || (len == 5 && strncasecmp (p, "Basic", 5) == 0);
        const char *word = secret ? "[redacted]" : p;
        size_t wlen = secret ? strlen ("[redacted]") : len;
        for (size_t i = 0; i < wlen && out + 1 < size; i++)
            dest[out++] = word[i];
        p += len;
    }
    dest[out] = '\0';
}

void
aigw_router_record (aigw_router_t *self, aigw_deployment_t *d, int64_t now, bool success,
                    int64_t latency_ms, int64_t ttfb_ms, const char *error)
{
    assert (self);
    assert (d);
    if (d->in_flight > 0)
        d->in_flight--;
    aigw_breaker_record (d->breaker, now, success);
    d->requests++;
    if (!success)
        d->failures++;
    if (latency_ms < 0)
        latency_ms = 0;
    d->samples[d->sample_head]
        = (s_sample_t){.at = now, .latency_ms = latency_ms, .ttfb_ms = ttfb_ms, .success = success};
    d->sample_head = (d->sample_head + 1) % AIGW_ROUTER_SAMPLES;
    if (d->sample_count < AIGW_ROUTER_SAMPLES)
        d->sample_count++;
    if (success) {
        double alpha = self->settings.ewma_alpha;
        d->ewma_ms = d->ewma_ms < 0 ? (double) latency_ms
                                    : alpha * (double) latency_ms + (1 - alpha) * d->ewma_ms;
    }
    else
        s_sanitise_error (d->last_error, sizeof d->last_error, error && *error ? error : "failed");
}

void
aigw_router_abandon (aigw_router_t *self, aigw_deployment_t *d)
{
    assert (self);
    assert (d);
    if (d->in_flight > 0)
        d->in_flight--;
}

const char *
aigw_deployment_id (const aigw_deployment_t *self)
{
    assert (self);
    return self->id;
}

uint32_t
aigw_deployment_in_flight (const aigw_deployment_t *self)
{
    assert (self);
    return self->in_flight;
}

aigw_breaker_state_t
aigw_deployment_circuit (const aigw_deployment_t *self)
{
    assert (self);
    return aigw_breaker_state (self->breaker);
}

double
aigw_deployment_ewma_ms (const aigw_deployment_t *self)
{
    assert (self);
    return self->ewma_ms;
}

const char *
aigw_deployment_last_error (const aigw_deployment_t *self)
{
    assert (self);
    return self->last_error;
}

//  True if sample S is within the stats window at NOW.
static bool
s_in_window (const aigw_deployment_t *self, const s_sample_t *s, int64_t now)
{
    int64_t window = self->settings->stats_window_ms;
    return window == 0 || now - s->at <= window;
}

//  qsort order for int64_t.
static int
s_cmp_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

int64_t
aigw_deployment_percentile (const aigw_deployment_t *self, int64_t now, double pct, bool ttft)
{
    assert (self);
    int64_t values[AIGW_ROUTER_SAMPLES];
    size_t n = 0;
    for (uint32_t i = 0; i < self->sample_count; i++) {
        const s_sample_t *s = &self->samples[i];
        if (!s->success || !s_in_window (self, s, now))
            continue;
        if (ttft && s->ttfb_ms < 0)
            continue;
        values[n++] = ttft ? s->ttfb_ms : s->latency_ms;
    }
    return aigw_router_nearest_rank (values, n, pct);
}

int64_t
aigw_router_nearest_rank (int64_t *values, size_t count, double pct)
{
    if (count == 0)
        return -1;
    qsort (values, count, sizeof values[0], s_cmp_int64);
    //  Nearest rank: the smallest value with at least PCT% at or below it.
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    size_t rank = (size_t) ceil (pct / 100.0 * (double) count);
    return values[rank == 0 ? 0 : rank - 1];
}

//  Outcomes in the window at NOW; FAILED gets the failures.
static uint32_t
s_outcomes (const aigw_deployment_t *self, int64_t now, uint32_t *failed)
{
    uint32_t total = 0;
    *failed = 0;
    for (uint32_t i = 0; i < self->sample_count; i++) {
        const s_sample_t *s = &self->samples[i];
        if (!s_in_window (self, s, now))
            continue;
        total++;
        if (!s->success)
            (*failed)++;
    }
    return total;
}

double
aigw_deployment_error_rate (const aigw_deployment_t *self, int64_t now)
{
    assert (self);
    uint32_t failed;
    uint32_t total = s_outcomes (self, now, &failed);
    return total ? (double) failed / total : 0.0;
}

aigw_health_t
aigw_deployment_health (const aigw_deployment_t *self, int64_t now)
{
    assert (self);
    const aigw_router_settings_t *s = self->settings;
    aigw_breaker_state_t circuit = aigw_breaker_state (self->breaker);
    if (circuit == AIGW_BREAKER_OPEN)
        return AIGW_HEALTH_DOWN;
    if (circuit == AIGW_BREAKER_HALF_OPEN)
        return AIGW_HEALTH_DEGRADED;
    uint32_t failed;
    uint32_t total = s_outcomes (self, now, &failed);
    if (total > 0 && total >= s->degraded_min_samples
        && (double) failed / total >= s->degraded_error_rate)
        return AIGW_HEALTH_DEGRADED;
    int64_t p95 = aigw_deployment_percentile (self, now, 95, false);
    if (p95 >= 0 && p95 >= s->degraded_p95_ms)
        return AIGW_HEALTH_DEGRADED;
    return AIGW_HEALTH_HEALTHY;
}

const char *
aigw_health_name (aigw_health_t health)
{
    switch (health) {
        case AIGW_HEALTH_HEALTHY: return "healthy";
        case AIGW_HEALTH_DEGRADED: return "degraded";
        case AIGW_HEALTH_DOWN: return "down";
    }
    return "unknown";
}

//  A percentile as JSON: the number, or null when unknown.
static json_t *
s_ms_json (int64_t ms)
{
    return ms < 0 ? json_null () : json_integer (ms);
}

json_t *
aigw_router_health_json (const aigw_router_t *self, int64_t now)
{
    assert (self);
    json_t *list = json_array ();
    if (!list)
        return NULL;
    for (size_t i = 0; i < self->size; i++) {
        const aigw_deployment_t *d = self->deployments[i];
        json_t *item
            = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:o, s:o}, s:{s:o, s:o}, s:f, s:I, s:s}",
                         "id", d->id, "model", self->model, "provider", d->provider, "status",
                         aigw_health_name (aigw_deployment_health (d, now)), "circuit",
                         aigw_breaker_state_name (aigw_breaker_state (d->breaker)), "latency_ms",
                         "p50", s_ms_json (aigw_deployment_percentile (d, now, 50, false)), "p95",
                         s_ms_json (aigw_deployment_percentile (d, now, 95, false)), "ttft_ms",
                         "p50", s_ms_json (aigw_deployment_percentile (d, now, 50, true)), "p95",
                         s_ms_json (aigw_deployment_percentile (d, now, 95, true)), "error_rate",
                         aigw_deployment_error_rate (d, now), "in_flight",
                         (json_int_t) d->in_flight, "last_error", d->last_error);
        if (!item || json_array_append_new (list, item) != 0) {
            json_decref (list);
            return NULL;
        }
    }
    return list;
}

//  The successful in-window samples' latencies (or TTFTs) as a JSON array.
static json_t *
s_samples_json (const aigw_deployment_t *d, int64_t now, bool ttft)
{
    json_t *list = json_array ();
    for (uint32_t i = 0; list && i < d->sample_count; i++) {
        const s_sample_t *s = &d->samples[i];
        if (!s->success || !s_in_window (d, s, now) || (ttft && s->ttfb_ms < 0))
            continue;
        json_array_append_new (list, json_integer (ttft ? s->ttfb_ms : s->latency_ms));
    }
    return list;
}

json_t *
aigw_router_report_json (const aigw_router_t *self, int64_t now)
{
    assert (self);
    json_t *list = aigw_router_health_json (self, now);
    for (size_t i = 0; list && i < self->size; i++) {
        const aigw_deployment_t *d = self->deployments[i];
        json_t *item = json_array_get (list, i);
        uint32_t failed;
        uint32_t total = s_outcomes (d, now, &failed);
        json_object_set_new (item, "window_total", json_integer (total));
        json_object_set_new (item, "window_failed", json_integer (failed));
        json_object_set_new (item, "requests_total", json_integer ((json_int_t) d->requests));
        json_object_set_new (item, "failures_total", json_integer ((json_int_t) d->failures));
        json_object_set_new (item, "latency_samples", s_samples_json (d, now, false));
        json_object_set_new (item, "ttft_samples", s_samples_json (d, now, true));
    }
    return list;
}

bool
aigw_router_retryable (int http_status, aigw_transport_error_t transport)
{
    if (transport != AIGW_TRANSPORT_OK)
        return true;
    return http_status == 429 || (http_status >= 500 && http_status <= 599);
}

int64_t
aigw_router_backoff_ms (unsigned attempt, int64_t base_ms, int64_t cap_ms, int64_t retry_after_s,
                        uint64_t *rng)
{
    assert (rng);
    if (base_ms < 0)
        base_ms = 0;
    if (cap_ms < 0)
        cap_ms = 0;
    //  base * 2^attempt, saturating at the cap without overflow.
    int64_t ceiling = base_ms;
    for (unsigned i = 0; i < attempt && ceiling > 0 && ceiling < cap_ms; i++)
        ceiling = ceiling > INT64_MAX / 2 ? INT64_MAX : ceiling * 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    int64_t delay = (int64_t) s_uniform (rng, (uint64_t) ceiling + 1);
    if (retry_after_s >= 0) {
        if (retry_after_s > AIGW_ROUTER_RETRY_AFTER_MAX_S)
            retry_after_s = AIGW_ROUTER_RETRY_AFTER_MAX_S;
        if (delay < retry_after_s * 1000)
            delay = retry_after_s * 1000;
    }
    return delay;
}

bool
aigw_router_fits_deadline (int64_t now, int64_t deadline, int64_t delay_ms)
{
    if (delay_ms < 0)
        delay_ms = 0;
    return now < deadline && delay_ms < deadline - now;
}

//  Selftest helper: add a deployment.
static void
s_test_add (aigw_router_t *router, const char *id, uint32_t weight, uint32_t priority,
            double price_in, double price_out)
{
    aigw_deployment_def_t def = {.id = id,
                                 .provider = "openai",
                                 .weight = weight,
                                 .priority = priority,
                                 .price_in = price_in,
                                 .price_out = price_out};
    int rc = aigw_router_add (router, &def);
    assert (rc == 0);
}

//  Selftest helper: pick with no exclusions and return the id, or NULL.
static const char *
s_test_pick (aigw_router_t *router, aigw_route_strategy_t strategy, int64_t now, uint64_t *rng)
{
    aigw_deployment_t *d = aigw_router_pick (router, strategy, now, NULL, 0, rng);
    return d ? aigw_deployment_id (d) : NULL;
}

//  Selftest: public API only, fake clock, fixed seed.
void
aigw_router_test (bool verbose)
{
    //  The router's settings reach the config with their defaults.
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    assert (strcmp (config->router_strategy, AIGW_DEFAULT_ROUTER_STRATEGY) == 0);
    assert (config->router_max_attempts == AIGW_DEFAULT_ROUTER_MAX_ATTEMPTS);
    assert (config->router_retry_base_ms == AIGW_DEFAULT_ROUTER_RETRY_BASE_MS);
    assert (config->router_retry_cap_ms == AIGW_DEFAULT_ROUTER_RETRY_CAP_MS);
    assert (config->first_token_timeout_ms == AIGW_DEFAULT_FIRST_TOKEN_TIMEOUT_MS);
    assert (config->router_report_ms == AIGW_DEFAULT_REPORT_MS);
    assert (config->models[0].deployments[0].weight == 1);
    aigw_config_destroy (&config);

    uint64_t rng = 42;
    int64_t now = 5000000;
    aigw_router_settings_t settings;
    aigw_router_settings_default (&settings);
    settings.breaker.consecutive_failures = 2;
    settings.breaker.cooldown_ms = 1000;
    settings.degraded_error_rate = 0.25;
    settings.degraded_min_samples = 4;
    settings.degraded_p95_ms = 5000;

    //  Construction and bad input.
    assert (aigw_router_new ("", NULL) == NULL);
    aigw_router_settings_t bad = settings;
    bad.ewma_alpha = 0;
    assert (aigw_router_new ("gpt-4o", &bad) == NULL);
    bad = settings;
    bad.breaker.window_size = 0;
    assert (aigw_router_new ("gpt-4o", &bad) == NULL);
    aigw_router_t *router = aigw_router_new ("gpt-4o", &settings);
    assert (router);
    assert (s_test_pick (router, AIGW_ROUTE_WEIGHTED, now, &rng) == NULL);  //  empty
    s_test_add (router, "a", 3, 0, 2.5, 10);
    s_test_add (router, "b", 1, 0, 5, 15);
    s_test_add (router, "c", 1, 1, 0.15, 0.6);
    aigw_deployment_def_t dup = {.id = "a", .provider = "openai", .weight = 1};
    assert (aigw_router_add (router, &dup) == -1);
    aigw_deployment_def_t noprov = {.id = "z", .weight = 1};
    assert (aigw_router_add (router, &noprov) == -1);
    aigw_deployment_def_t negative = {.id = "z", .provider = "x", .price_in = -1};
    assert (aigw_router_add (router, &negative) == -1);
    assert (aigw_router_size (router) == 3);
    aigw_deployment_t *a = aigw_router_lookup (router, "a");
    aigw_deployment_t *b = aigw_router_lookup (router, "b");
    aigw_deployment_t *c = aigw_router_lookup (router, "c");
    assert (a && b && c && !aigw_router_lookup (router, "nope"));

    //  Weighted: priority 0 only, about 3:1 over 10,000 picks.
    int hits_a = 0, hits_b = 0, hits_c = 0;
    for (int i = 0; i < 10000; i++) {
        aigw_deployment_t *d = aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng);
        assert (d);
        hits_a += d == a;
        hits_b += d == b;
        hits_c += d == c;
        aigw_router_abandon (router, d);
    }
    assert (hits_c == 0);
    assert (hits_a + hits_b == 10000);
    double ratio = (double) hits_a / hits_b;
    assert (ratio > 2.7 && ratio < 3.3);
    assert (aigw_deployment_in_flight (a) == 0 && aigw_deployment_in_flight (b) == 0);

    //  Excluded deployments are skipped; excluding the whole tier falls to the next.
    const char *ex_a[] = {"a"};
    for (int i = 0; i < 50; i++) {
        aigw_deployment_t *d = aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, ex_a, 1, &rng);
        assert (d == b);
        aigw_router_abandon (router, d);
    }
    const char *ex_ab[] = {"a", "b"};
    aigw_deployment_t *d = aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, ex_ab, 2, &rng);
    assert (d == c);
    aigw_router_abandon (router, d);
    const char *ex_all[] = {"a", "b", "c"};
    assert (!aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, ex_all, 3, &rng));

    //  Least in flight: three outstanding on a, so b until it has three too;
    //  then ties split at random.
    const char *ex_b[] = {"b"};
    for (int i = 0; i < 3; i++)
        assert (aigw_router_pick (router, AIGW_ROUTE_LEAST_IN_FLIGHT, now, ex_b, 1, &rng) == a);
    assert (aigw_deployment_in_flight (a) == 3);
    assert (aigw_router_pick (router, AIGW_ROUTE_LEAST_IN_FLIGHT, now, NULL, 0, &rng) == b);
    assert (aigw_router_pick (router, AIGW_ROUTE_LEAST_IN_FLIGHT, now, NULL, 0, &rng) == b);
    assert (aigw_router_pick (router, AIGW_ROUTE_LEAST_IN_FLIGHT, now, NULL, 0, &rng) == b);
    //  3 and 3: both get chosen over many tied picks.
    int tie_a = 0, tie_b = 0;
    for (int i = 0; i < 200; i++) {
        d = aigw_router_pick (router, AIGW_ROUTE_LEAST_IN_FLIGHT, now, NULL, 0, &rng);
        tie_a += d == a;
        tie_b += d == b;
        aigw_router_abandon (router, d);
    }
    assert (tie_a > 50 && tie_b > 50);
    while (aigw_deployment_in_flight (a))
        aigw_router_abandon (router, a);
    while (aigw_deployment_in_flight (b))
        aigw_router_abandon (router, b);

    //  Lowest cost within the tier: a (12.5) beats b (20); c is cheaper but tier 1.
    for (int i = 0; i < 20; i++) {
        d = aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng);
        assert (d == a);
        aigw_router_abandon (router, d);
    }

    //  Least latency: untried first, then the lowest EWMA.
    d = aigw_router_pick (router, AIGW_ROUTE_LEAST_LATENCY, now, NULL, 0, &rng);
    assert (d == a || d == b);  //  both untried
    aigw_router_record (router, a, now, true, 300, 100, NULL);
    if (d == b)
        aigw_router_abandon (router, b);
    assert (aigw_deployment_ewma_ms (a) == 300);
    assert (aigw_deployment_ewma_ms (b) < 0);
    d = aigw_router_pick (router, AIGW_ROUTE_LEAST_LATENCY, now, NULL, 0, &rng);
    assert (d == b);  //  untried beats measured
    aigw_router_record (router, b, now, true, 200, 50, NULL);
    d = aigw_router_pick (router, AIGW_ROUTE_LEAST_LATENCY, now, NULL, 0, &rng);
    assert (d == b);
    aigw_router_record (router, b, now, true, 1200, 50, NULL);  //  EWMA 0.2: 400
    assert (fabs (aigw_deployment_ewma_ms (b) - 400) < 1e-9);
    d = aigw_router_pick (router, AIGW_ROUTE_LEAST_LATENCY, now, NULL, 0, &rng);
    assert (d == a);
    aigw_router_abandon (router, d);
    //  Failures don't move the EWMA.
    assert (aigw_deployment_in_flight (a) == 0);

    //  Breakers: a fails twice -> open -> all picks go to b; b too -> tier 1.
    assert (aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng) == a);
    aigw_router_record (router, a, now, false, 30000, -1,
                        "upstream 500: Authorization: Bearer abc.def key=sk-live-123\n");
    assert (aigw_deployment_ewma_ms (a) == 300);
    assert (strstr (aigw_deployment_last_error (a), "upstream 500"));
    assert (!strstr (aigw_deployment_last_error (a), "abc.def"));
    assert (!strstr (aigw_deployment_last_error (a), "sk-live"));
    assert (!strchr (aigw_deployment_last_error (a), '\n'));
    assert (aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng) == a);
    aigw_router_record (router, a, now, false, 10, -1, NULL);
    assert (strcmp (aigw_deployment_last_error (a), "failed") == 0);
    assert (aigw_deployment_circuit (a) == AIGW_BREAKER_OPEN);
    assert (aigw_deployment_health (a, now) == AIGW_HEALTH_DOWN);
    for (int i = 0; i < 20; i++) {
        d = aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng);
        assert (d == b);
        aigw_router_abandon (router, d);
    }
    for (int i = 0; i < 2; i++) {
        assert (aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng) == b);
        aigw_router_record (router, b, now, false, 10, -1, "timeout");
    }
    assert (aigw_deployment_circuit (b) == AIGW_BREAKER_OPEN);
    assert (strcmp (s_test_pick (router, AIGW_ROUTE_WEIGHTED, now, &rng), "c") == 0);
    aigw_router_abandon (router, c);
    //  All open: NULL (the caller answers 503).
    for (int i = 0; i < 2; i++) {
        assert (aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng) == c);
        aigw_router_record (router, c, now, false, 10, -1, "connect refused");
    }
    assert (s_test_pick (router, AIGW_ROUTE_WEIGHTED, now, &rng) == NULL);
    assert (s_test_pick (router, AIGW_ROUTE_LEAST_LATENCY, now, &rng) == NULL);

    //  After the cooldown: one probe per deployment, tier 0 first.
    now += 1000;
    d = aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng);
    assert (d == a);
    assert (aigw_deployment_circuit (a) == AIGW_BREAKER_HALF_OPEN);
    assert (aigw_deployment_health (a, now) == AIGW_HEALTH_DEGRADED);
    assert (aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng) == b);
    assert (aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng) == c);
    assert (aigw_router_pick (router, AIGW_ROUTE_LOWEST_COST, now, NULL, 0, &rng) == NULL);
    aigw_router_record (router, a, now, true, 100, 40, NULL);
    aigw_router_record (router, b, now, false, 10, -1, "503");
    aigw_router_record (router, c, now, true, 100, 40, NULL);
    assert (aigw_deployment_circuit (a) == AIGW_BREAKER_CLOSED);
    assert (aigw_deployment_circuit (b) == AIGW_BREAKER_OPEN);
    assert (aigw_deployment_circuit (c) == AIGW_BREAKER_CLOSED);
    assert (aigw_deployment_in_flight (a) == 0 && aigw_deployment_in_flight (b) == 0
            && aigw_deployment_in_flight (c) == 0);
    aigw_router_destroy (&router);
    aigw_router_destroy (&router);
    assert (router == NULL);

    //  Stats: percentiles on known data, window ageing, status transitions.
    router = aigw_router_new ("m", &settings);
    s_test_add (router, "s", 1, 0, 0, 0);
    aigw_deployment_t *s = aigw_router_lookup (router, "s");
    assert (aigw_deployment_percentile (s, now, 50, false) == -1);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_HEALTHY);
    for (int i = 1; i <= 100; i++) {
        assert (aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng) == s);
        aigw_router_record (router, s, now, true, i * 10, i % 2 ? i : -1, NULL);
    }
    assert (aigw_deployment_percentile (s, now, 50, false) == 500);
    assert (aigw_deployment_percentile (s, now, 95, false) == 950);
    assert (aigw_deployment_percentile (s, now, 100, false) == 1000);
    assert (aigw_deployment_percentile (s, now, 0, false) == 10);
    //  TTFT only from the 50 samples that had one: 1, 3, ..., 99.
    assert (aigw_deployment_percentile (s, now, 50, true) == 49);
    assert (aigw_deployment_percentile (s, now, 95, true) == 95);
    assert (aigw_deployment_error_rate (s, now) == 0.0);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_HEALTHY);
    //  Slow responses push p95 over 5 s: degraded.
    for (int i = 0; i < 10; i++) {
        assert (aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng) == s);
        aigw_router_record (router, s, now, true, 8000, 500, NULL);
    }
    assert (aigw_deployment_percentile (s, now, 95, false) == 8000);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_DEGRADED);
    //  They age out of the window: healthy again, no figures.
    now += settings.stats_window_ms + 1;
    assert (aigw_deployment_percentile (s, now, 95, false) == -1);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_HEALTHY);
    //  Error rate 1 in 3 with 3 samples: below the minimum; 4th sample counts.
    aigw_router_record (router, s, now, true, 10, 5, NULL);
    aigw_router_record (router, s, now, false, 10, -1, "x");
    aigw_router_record (router, s, now, true, 10, 5, NULL);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_HEALTHY);
    aigw_router_record (router, s, now, true, 10, 5, NULL);
    assert (fabs (aigw_deployment_error_rate (s, now) - 0.25) < 1e-9);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_DEGRADED);
    //  The ring keeps the last AIGW_ROUTER_SAMPLES outcomes only.
    for (int i = 0; i < AIGW_ROUTER_SAMPLES; i++)
        aigw_router_record (router, s, now, true, 7, 3, NULL);
    assert (aigw_deployment_error_rate (s, now) == 0.0);
    assert (aigw_deployment_percentile (s, now, 50, false) == 7);
    assert (aigw_deployment_health (s, now) == AIGW_HEALTH_HEALTHY);
    aigw_router_destroy (&router);

    //  Health JSON.
    router = aigw_router_new ("gpt-4o", &settings);
    s_test_add (router, "east", 1, 0, 1, 2);
    s_test_add (router, "west", 1, 0, 1, 2);
    aigw_deployment_t *east = aigw_router_lookup (router, "east");
    assert (aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, ex_all, 0, &rng));
    aigw_router_abandon (router, aigw_router_lookup (router, "west"));
    aigw_router_abandon (router, east);
    aigw_router_record (router, east, now, true, 120, 30, NULL);
    aigw_router_record (router, east, now, false, 5, -1, "HTTP 502 from upstream");
    aigw_router_record (router, east, now, false, 5, -1, "HTTP 502 from upstream");
    assert (aigw_router_pick (router, AIGW_ROUTE_WEIGHTED, now, NULL, 0, &rng)
            == aigw_router_lookup (router, "west"));
    json_t *health = aigw_router_health_json (router, now);
    assert (health && json_is_array (health) && json_array_size (health) == 2);
    json_t *h = json_array_get (health, 0);
    assert (strcmp (json_string_value (json_object_get (h, "id")), "east") == 0);
    assert (strcmp (json_string_value (json_object_get (h, "model")), "gpt-4o") == 0);
    assert (strcmp (json_string_value (json_object_get (h, "provider")), "openai") == 0);
    assert (strcmp (json_string_value (json_object_get (h, "status")), "down") == 0);
    assert (strcmp (json_string_value (json_object_get (h, "circuit")), "open") == 0);
    assert (json_integer_value (json_object_get (json_object_get (h, "latency_ms"), "p50")) == 120);
    assert (json_integer_value (json_object_get (json_object_get (h, "latency_ms"), "p95")) == 120);
    assert (json_integer_value (json_object_get (json_object_get (h, "ttft_ms"), "p50")) == 30);
    assert (json_is_integer (json_object_get (json_object_get (h, "ttft_ms"), "p95")));
    assert (fabs (json_real_value (json_object_get (h, "error_rate")) - 2.0 / 3) < 1e-9);
    assert (json_integer_value (json_object_get (h, "in_flight")) == 0);
    assert (strcmp (json_string_value (json_object_get (h, "last_error")), "HTTP 502 from upstream")
            == 0);
    h = json_array_get (health, 1);
    assert (strcmp (json_string_value (json_object_get (h, "status")), "healthy") == 0);
    assert (strcmp (json_string_value (json_object_get (h, "circuit")), "closed") == 0);
    assert (json_is_null (json_object_get (json_object_get (h, "latency_ms"), "p50")));
    assert (json_is_null (json_object_get (json_object_get (h, "ttft_ms"), "p95")));
    assert (json_integer_value (json_object_get (h, "in_flight")) == 1);
    assert (strcmp (json_string_value (json_object_get (h, "last_error")), "") == 0);
    char *text = json_dumps (health, JSON_COMPACT);
    assert (text && strstr (text, "\"latency_ms\":{"));
    if (verbose)
        printf ("\n%s\n", text);
    free (text);
    json_decref (health);
    aigw_router_destroy (&router);

    //  Retry classification.
    assert (aigw_router_retryable (500, AIGW_TRANSPORT_OK));
    assert (aigw_router_retryable (502, AIGW_TRANSPORT_OK));
    assert (aigw_router_retryable (503, AIGW_TRANSPORT_OK));
    assert (aigw_router_retryable (429, AIGW_TRANSPORT_OK));
    assert (!aigw_router_retryable (400, AIGW_TRANSPORT_OK));
    assert (!aigw_router_retryable (401, AIGW_TRANSPORT_OK));
    assert (!aigw_router_retryable (404, AIGW_TRANSPORT_OK));
    assert (!aigw_router_retryable (422, AIGW_TRANSPORT_OK));
    assert (!aigw_router_retryable (200, AIGW_TRANSPORT_OK));
    assert (aigw_router_retryable (0, AIGW_TRANSPORT_TIMEOUT));
    assert (aigw_router_retryable (0, AIGW_TRANSPORT_CONNECT));
    assert (aigw_router_retryable (0, AIGW_TRANSPORT_IO));

    //  Backoff: full jitter within [0, min(cap, base * 2^attempt)].
    for (unsigned attempt = 0; attempt < 70; attempt++) {
        int64_t ceiling = attempt < 20 ? 100LL << attempt : 2000;
        if (ceiling > 2000)
            ceiling = 2000;
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 500; i++) {
            int64_t ms = aigw_router_backoff_ms (attempt, 100, 2000, -1, &rng);
            assert (ms >= 0 && ms <= ceiling);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        assert (lo < ceiling / 4 + 1 && hi > ceiling * 3 / 4);  //  spread, not fixed
    }
    assert (aigw_router_backoff_ms (UINT32_MAX, 100, 2000, -1, &rng) <= 2000);
    assert (aigw_router_backoff_ms (5, 0, 2000, -1, &rng) == 0);
    //  Retry-After honoured (as a floor), and clamped.
    for (int i = 0; i < 100; i++) {
        int64_t ms = aigw_router_backoff_ms (0, 100, 2000, 3, &rng);
        assert (ms == 3000);
        ms = aigw_router_backoff_ms (4, 100, 2000, 1, &rng);
        assert (ms >= 1000 && ms <= 1600);
    }
    assert (aigw_router_backoff_ms (0, 100, 2000, INT64_MAX, &rng)
            == AIGW_ROUTER_RETRY_AFTER_MAX_S * 1000LL);
    //  Deadline.
    assert (aigw_router_fits_deadline (1000, 5000, 3999));
    assert (!aigw_router_fits_deadline (1000, 5000, 4000));
    assert (!aigw_router_fits_deadline (6000, 5000, 0));
    assert (aigw_router_fits_deadline (1000, 5000, -5));

    //  Same seed, same sequence.
    uint64_t r1 = 7, r2 = 7;
    assert (aigw_router_random (&r1) == aigw_router_random (&r2));
    if (verbose)
        printf ("(router ok) ");
}
