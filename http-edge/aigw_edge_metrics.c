/*  aigw_edge_metrics: lock-free counters, rendered on demand.

    Names follow the OpenTelemetry semantic conventions for generative AI
    (the gen-ai metrics) in their Prometheus form where one fits:
    gen_ai.client.token.usage (histogram, gen_ai.token.type input/output),
    gen_ai.server.request.duration and gen_ai.server.time_to_first_token
    (seconds, with the conventions' advised bucket bounds), with the labels
    gen_ai_operation_name, gen_ai_system (gen_ai.system, which newer
    versions of the conventions call gen_ai.provider.name: the deployment's
    provider kind as aigw names it, e.g. openai, anthropic, gemini, bedrock,
    azure, openai_compatible), gen_ai_request_model and error_type. What the
    conventions do not cover is under aigw_: requests, cost, cache results,
    guardrail blocks, rate-limit rejections; every family also carries
    route, deployment and tenant.

    Each label value is interned once into a per-label table (at most
    max_label_values values, then "other"), and each series (a family's
    label values) into a per-family table. Both are read-mostly: lookups
    are lock-free (acquire loads of published entries); a new value or
    series is added under the table's mutex, which looks again first, so
    two threads adding one value at once make one entry, and an entry is
    published only once complete (release store). */
#include "aigw_edge_metrics.h"
#include "aigw_config.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_routes[AIGW_ROUTE_COUNT]
    = {"chat",  "embeddings", "models",       "ops",      "other",
       "admin", "messages",   "count_tokens", "responses"};
//  Statuses counted one by one; anything else counts as "other".
static const int s_codes[] = {200, 400, 401, 403, 404, 405, 413, 429, 500, 502, 503, 504};
#define AIGW_CODE_COUNT ((int) (sizeof s_codes / sizeof s_codes[0]) + 1)
//  Histogram bucket bounds, in microseconds.
static const int64_t s_bounds[]
    = {100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
       100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
#define AIGW_BUCKET_COUNT ((int) (sizeof s_bounds / sizeof s_bounds[0]))

//  The conventions' advised bounds: tokens, request seconds, first-token seconds.
static const double s_token_bounds[]
    = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
static const double s_duration_bounds[]
    = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double s_ttft_bounds[]
    = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
#define S_COUNT(a) ((int) (sizeof (a) / sizeof (a)[0]))

//  Longest label value kept, bytes (a longer model name is cut, at a UTF-8
//  character boundary).
#define S_VALUE_MAX 128
//  Series per family; past it a new series counts in the all-"other" one.
#define S_SERIES_MAX 8192
//  Slots of a family's series table: twice the most series, a power of two.
#define S_SERIES_SLOTS 16384

//  The labels a family may have.
typedef enum {
    D_ROUTE,
    D_MODEL,
    D_DEPLOYMENT,
    D_SYSTEM,
    D_TENANT,
    D_STATUS_CLASS,
    D_ERROR_TYPE,
    D_TOKEN_TYPE,
    D_CACHE,
    D_CODE,
    D_DIRECTION,
    D_GUARDRAIL,
    D_RULE,
    D_ACTION,
    D_COUNT
} s_dim_t;
static const char *s_dim_names[D_COUNT] = {"route",      "gen_ai_request_model",
                                           "deployment", "gen_ai_system",
                                           "tenant",     "status_class",
                                           "error_type", "gen_ai_token_type",
                                           "cache",      "code",
                                           "direction",  "guardrail",
                                           "rule",       "action"};

//  Labels whose values come from outside (names, codes) keep at most
//  max_label_values; the others have a few values aigw itself writes
//  (route, status class, token type, cache result) and keep up to
//  S_FIXED_VALUES, whatever the setting.
static const bool s_dim_open[D_COUNT]
    = {[D_MODEL] = true,      [D_DEPLOYMENT] = true, [D_SYSTEM] = true, [D_TENANT] = true,
       [D_ERROR_TYPE] = true, [D_CODE] = true,       [D_RULE] = true};
#define S_FIXED_VALUES 16

//  One interned label value. Index 0 of every label is "other".
typedef struct {
    uint64_t hash;   //  of text
    uint16_t index;  //  1..max
    char *text;      //  the value
    char *escaped;   //  as printed inside quotes
} s_value_t;

//  A label's values: open addressing, slots published with release.
typedef struct {
    _Atomic (s_value_t *) *slots;  //  the table
    size_t mask;                   //  slots - 1
    atomic_int count;              //  values added (under lock; read without it)
    s_value_t **by_index;          //  index -> value (entries published before their slot)
    pthread_mutex_t lock;          //  held to add
} s_values_t;

//  One series: its label indexes, then its numbers.
typedef struct {
    uint64_t hash;            //  of key
    uint16_t key[D_COUNT];    //  value index per label (unused labels 0)
    atomic_ullong numbers[];  //  counter: [0]; histogram: buckets, +Inf, then sum
} s_series_t;

typedef enum { F_COUNTER, F_HISTOGRAM } s_kind_t;

//  One family of series.
typedef struct {
    const char *name;               //  metric name
    const char *help;               //  HELP text
    s_kind_t kind;                  //  counter or histogram
    const double *bounds;           //  histogram bounds (printed units)
    int bound_count;                //  entries in bounds
    double scale;                   //  observed units per printed unit
    bool operation;                 //  add gen_ai_operation_name (from the route)
    uint32_t dims;                  //  bit per s_dim_t it carries
    _Atomic (s_series_t *) *slots;  //  the series table
    int count;                      //  series added (under lock)
    pthread_mutex_t lock;           //  held to add
} s_family_t;

typedef enum {
    F_REQUESTS,
    F_COST,
    F_TOKENS,
    F_DURATION,
    F_TTFT,
    F_CACHE,
    F_GUARDRAIL,
    F_RATELIMIT,
    F_GUARD_HITS,
    F_COUNT
} s_family_id_t;

#define B(d) (1u << (d))
//  The labels every data-plane family carries.
#define S_WHO (B (D_ROUTE) | B (D_MODEL) | B (D_DEPLOYMENT) | B (D_SYSTEM) | B (D_TENANT))

static const s_family_t s_family_defs[F_COUNT] = {
    [F_REQUESTS]
    = {"aigw_requests_total", "Data-plane requests answered, by status class and error type.",
       F_COUNTER, NULL, 0, 1, false, S_WHO | B (D_STATUS_CLASS) | B (D_ERROR_TYPE)},
    [F_COST] = {"aigw_cost_usd_total",
                "Cost of the answers in USD, from the deployment's prices per million tokens.",
                F_COUNTER, NULL, 0, 1e9, false, S_WHO},
    [F_TOKENS]
    = {"gen_ai_client_token_usage", "Tokens per answer, by token type (input, output).",
       F_HISTOGRAM, s_token_bounds, S_COUNT (s_token_bounds), 1, true, S_WHO | B (D_TOKEN_TYPE)},
    [F_DURATION]
    = {"gen_ai_server_request_duration_seconds",
       "Time from the request to the last byte of its answer.", F_HISTOGRAM, s_duration_bounds,
       S_COUNT (s_duration_bounds), 1e6, true, S_WHO | B (D_ERROR_TYPE)},
    [F_TTFT] = {"gen_ai_server_time_to_first_token_seconds",
                "Time from a streamed request to the first byte of its answer.", F_HISTOGRAM,
                s_ttft_bounds, S_COUNT (s_ttft_bounds), 1e6, true, S_WHO},
    [F_CACHE] = {"aigw_cache_requests_total", "Cache results (HIT, MISS, BYPASS).", F_COUNTER, NULL,
                 0, 1, false, B (D_ROUTE) | B (D_MODEL) | B (D_TENANT) | B (D_CACHE)},
    [F_GUARDRAIL]
    = {"aigw_guardrail_blocks_total", "Requests a guardrail refused, by rule code.", F_COUNTER,
       NULL, 0, 1, false, B (D_ROUTE) | B (D_MODEL) | B (D_TENANT) | B (D_CODE)},
    [F_RATELIMIT]
    = {"aigw_ratelimit_rejections_total", "Requests answered 429 (rate limited), by error code.",
       F_COUNTER, NULL, 0, 1, false, B (D_ROUTE) | B (D_MODEL) | B (D_TENANT) | B (D_CODE)},
    [F_GUARD_HITS]
    = {"aigw_guardrail_triggers_total",
       "Requests a guardrail rule triggered on, by direction (input, output) and action "
       "(block, redact, flag).",
       F_COUNTER, NULL, 0, 1, false,
       B (D_ROUTE) | B (D_MODEL) | B (D_TENANT) | B (D_DIRECTION) | B (D_GUARDRAIL) | B (D_RULE)
           | B (D_ACTION)},
};

struct _aigw_edge_metrics_t {
    atomic_ullong requests[AIGW_ROUTE_COUNT][AIGW_CODE_COUNT];       //  by route, status
    atomic_ullong buckets[AIGW_ROUTE_COUNT][AIGW_BUCKET_COUNT + 1];  //  +Inf last
    atomic_ullong sum_us[AIGW_ROUTE_COUNT];                          //  total time per route
    int max_values;                                                  //  values kept per label
    s_values_t values[D_COUNT];                                      //  per label
    s_family_t families[F_COUNT];                                    //  per-answer figures
};

//  ---------------------------------------------------------------------
//  Label values

static uint64_t
s_hash (const void *data, size_t len)
{
    //  FNV-1a
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *) data)[i]) * 1099511628211ULL;
    return h;
}

//  TEXT escaped for a quoted label value (backslash, quote, newline).
static char *
s_escape (const char *text)
{
    char *out = malloc (2 * strlen (text) + 1), *o = out;
    assert (out);
    for (const char *c = text; *c; c++) {
        if (*c == '\\' || *c == '"')
            *o++ = '\\', *o++ = *c;
        else if (*c == '\n')
            *o++ = '\\', *o++ = 'n';
        else
            *o++ = *c;
    }
    *o = 0;
    return out;
}

static int
s_values_init (s_values_t *v, int max)
{
    size_t slots = 16;
    while (slots < 4 * (size_t) max)
        slots *= 2;
    v->slots = calloc (slots, sizeof *v->slots);
    v->by_index = calloc ((size_t) max + 1, sizeof *v->by_index);
    v->mask = slots - 1;
    pthread_mutex_init (&v->lock, NULL);
    return v->slots && v->by_index ? 0 : -1;
}

static void
s_values_free (s_values_t *v)
{
    for (size_t i = 0; v->slots && i <= v->mask; i++) {
        s_value_t *e = atomic_load (&v->slots[i]);
        if (e) {
            free (e->text);
            free (e->escaped);
            free (e);
        }
    }
    free (v->slots);
    free (v->by_index);
    pthread_mutex_destroy (&v->lock);
}

//  The index of TEXT in label V, adding it while fewer than MAX are kept;
//  0 ("other") past that.
static uint16_t
s_value_index (s_values_t *v, int max, const char *text)
{
    char cut[S_VALUE_MAX + 1];
    size_t len = strlen (text);
    if (len > S_VALUE_MAX) {
        len = S_VALUE_MAX;
        while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
            len--;  //  not inside a UTF-8 character
        memcpy (cut, text, len);
        cut[len] = 0;
        text = cut;
    }
    uint64_t hash = s_hash (text, len);
    for (int pass = 0; pass < 2; pass++) {
        //  Pass 0 without the lock; pass 1 with it, looking again first.
        size_t i = hash & v->mask;
        while (true) {
            s_value_t *e = atomic_load_explicit (&v->slots[i], memory_order_acquire);
            if (!e)
                break;
            if (e->hash == hash && strcmp (e->text, text) == 0) {
                if (pass)
                    pthread_mutex_unlock (&v->lock);
                return e->index;
            }
            i = (i + 1) & v->mask;
        }
        if (pass) {
            uint16_t index = 0;
            if (atomic_load (&v->count) < max) {
                //  Slots are four times the most values: a free one is here.
                s_value_t *e = calloc (1, sizeof *e);
                assert (e);
                e->hash = hash;
                e->index = index = (uint16_t) (atomic_load (&v->count) + 1);
                atomic_store (&v->count, index);
                e->text = strdup (text);
                e->escaped = s_escape (text);
                assert (e->text && e->escaped);
                v->by_index[index] = e;
                atomic_store_explicit (&v->slots[i], e, memory_order_release);
            }
            pthread_mutex_unlock (&v->lock);
            return index;
        }
        if (atomic_load (&v->count) >= max)
            return 0;  //  full: a new value is "other", no lock
        pthread_mutex_lock (&v->lock);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Series

static size_t
s_series_numbers (const s_family_t *f)
{
    return f->kind == F_COUNTER ? 1 : (size_t) f->bound_count + 2;
}

//  The series of F with label indexes KEY, made when new; past
//  S_SERIES_MAX series the all-"other" one.
static s_series_t *
s_series (s_family_t *f, const uint16_t key[D_COUNT])
{
    uint64_t hash = s_hash (key, sizeof (uint16_t) * D_COUNT);
    for (int pass = 0; pass < 2; pass++) {
        size_t i = hash & (S_SERIES_SLOTS - 1);
        while (true) {
            s_series_t *s = atomic_load_explicit (&f->slots[i], memory_order_acquire);
            if (!s)
                break;
            if (s->hash == hash && memcmp (s->key, key, sizeof s->key) == 0) {
                if (pass)
                    pthread_mutex_unlock (&f->lock);
                return s;
            }
            i = (i + 1) & (S_SERIES_SLOTS - 1);
        }
        if (pass) {
            static const uint16_t other[D_COUNT] = {0};
            bool is_other = memcmp (key, other, sizeof other) == 0;
            s_series_t *s = NULL;
            //  The all-"other" series may pass the bound by one.
            if (f->count < S_SERIES_MAX || is_other) {
                s = calloc (1, sizeof *s + s_series_numbers (f) * sizeof (atomic_ullong));
                assert (s);
                s->hash = hash;
                memcpy (s->key, key, sizeof s->key);
                f->count++;
                atomic_store_explicit (&f->slots[i], s, memory_order_release);
            }
            pthread_mutex_unlock (&f->lock);
            return s ? s : s_series (f, other);
        }
        pthread_mutex_lock (&f->lock);
    }
    return NULL;
}

//  The index of TEXT (NULL: "") in label D.
static uint16_t
s_index (aigw_edge_metrics_t *self, int d, const char *text)
{
    return s_value_index (&self->values[d], s_dim_open[d] ? self->max_values : S_FIXED_VALUES,
                          text ? text : "");
}

//  Count VALUE in family ID's series for the label value indexes INDEX
//  (per label; only the family's labels are used).
static void
s_note (aigw_edge_metrics_t *self, s_family_id_t id, const uint16_t index[D_COUNT], int64_t value)
{
    s_family_t *f = &self->families[id];
    uint16_t key[D_COUNT] = {0};
    for (int d = 0; d < D_COUNT; d++)
        if (f->dims & B (d))
            key[d] = index[d];
    s_series_t *s = s_series (f, key);
    if (f->kind == F_COUNTER) {
        atomic_fetch_add_explicit (&s->numbers[0], (unsigned long long) value,
                                   memory_order_relaxed);
        return;
    }
    int bucket = f->bound_count;
    for (int i = 0; i < f->bound_count; i++)
        if ((double) value <= f->bounds[i] * f->scale) {
            bucket = i;
            break;
        }
    atomic_fetch_add_explicit (&s->numbers[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&s->numbers[f->bound_count + 1],
                               (unsigned long long) (value > 0 ? value : 0), memory_order_relaxed);
}

//  ---------------------------------------------------------------------
//  Class

aigw_edge_metrics_t *
aigw_edge_metrics_new (int max_label_values)
{
    aigw_edge_metrics_t *self = calloc (1, sizeof (aigw_edge_metrics_t));
    if (!self)
        return NULL;
    if (max_label_values < 1)
        max_label_values = 1;
    if (max_label_values > AIGW_EDGE_METRICS_MAX_LABEL_VALUES)
        max_label_values = AIGW_EDGE_METRICS_MAX_LABEL_VALUES;
    self->max_values = max_label_values;
    int rc = 0;
    for (int d = 0; d < D_COUNT; d++)
        rc |= s_values_init (&self->values[d], s_dim_open[d] ? max_label_values : S_FIXED_VALUES);
    for (int i = 0; i < F_COUNT; i++) {
        self->families[i] = s_family_defs[i];
        self->families[i].slots = calloc (S_SERIES_SLOTS, sizeof (s_series_t *));
        pthread_mutex_init (&self->families[i].lock, NULL);
        rc |= self->families[i].slots ? 0 : -1;
    }
    if (rc)
        aigw_edge_metrics_destroy (&self);
    return self;
}

void
aigw_edge_metrics_destroy (aigw_edge_metrics_t **self_p)
{
    aigw_edge_metrics_t *self = *self_p;
    if (self) {
        for (int d = 0; d < D_COUNT; d++)
            s_values_free (&self->values[d]);
        for (int i = 0; i < F_COUNT; i++) {
            s_family_t *f = &self->families[i];
            for (size_t j = 0; f->slots && j < S_SERIES_SLOTS; j++)
                free (atomic_load (&f->slots[j]));
            free (f->slots);
            pthread_mutex_destroy (&f->lock);
        }
        free (self);
    }
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

void
aigw_edge_metrics_answer (aigw_edge_metrics_t *self, const aigw_edge_metrics_answer_t *a)
{
    int route = a->route >= 0 && a->route < AIGW_ROUTE_COUNT ? a->route : AIGW_ROUTE_OTHER;
    static const char *classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    const char *texts[D_COUNT] = {
        [D_ROUTE] = s_routes[route],
        [D_MODEL] = a->model,
        [D_DEPLOYMENT] = a->deployment,
        [D_SYSTEM] = a->system,
        [D_TENANT] = a->tenant,
        [D_STATUS_CLASS]
        = a->status >= 100 && a->status < 600 ? classes[a->status / 100 - 1] : "other",
        [D_ERROR_TYPE] = a->status >= 400 ? (a->error_type ? a->error_type : "error") : "",
        [D_CACHE] = a->cache,
        [D_CODE] = a->error_code,
    };
    //  Each label's value is looked up once, for every family.
    uint16_t index[D_COUNT];
    for (int d = 0; d < D_COUNT; d++)
        index[d] = d == D_TOKEN_TYPE || d >= D_DIRECTION ? 0 : s_index (self, d, texts[d]);
    s_note (self, F_REQUESTS, index, 1);
    s_note (self, F_DURATION, index, a->latency_us > 0 ? a->latency_us : 0);
    if (a->stream && a->status < 400 && a->first_us >= 0)
        s_note (self, F_TTFT, index, a->first_us);
    if (a->cost_nusd > 0)
        s_note (self, F_COST, index, a->cost_nusd);
    if (a->tokens_in > 0) {
        index[D_TOKEN_TYPE] = s_index (self, D_TOKEN_TYPE, "input");
        s_note (self, F_TOKENS, index, a->tokens_in);
    }
    if (a->tokens_out > 0) {
        index[D_TOKEN_TYPE] = s_index (self, D_TOKEN_TYPE, "output");
        s_note (self, F_TOKENS, index, a->tokens_out);
    }
    if (a->cache && *a->cache)
        s_note (self, F_CACHE, index, 1);
    if (a->error_type && strcmp (a->error_type, "guardrail_error") == 0)
        s_note (self, F_GUARDRAIL, index, 1);
    if (a->status == 429)
        s_note (self, F_RATELIMIT, index, 1);
    //  The verdict's entries: [out:]ACTION:GUARDRAIL:RULE, comma-separated.
    const char *entry = a->verdict && strcmp (a->verdict, "pass") ? a->verdict : NULL;
    while (entry && *entry) {
        const char *end = strchr (entry, ',');
        size_t len = end ? (size_t) (end - entry) : strlen (entry);
        char copy[256];
        if (len < sizeof copy) {
            memcpy (copy, entry, len);
            copy[len] = 0;
            char *at = copy;
            const char *direction = "input";
            if (strncmp (at, "out:", 4) == 0) {
                direction = "output";
                at += 4;
            }
            char *guardrail = strchr (at, ':');
            char *rule = guardrail ? strchr (guardrail + 1, ':') : NULL;
            if (rule) {
                *guardrail++ = 0;
                *rule++ = 0;
                index[D_DIRECTION] = s_index (self, D_DIRECTION, direction);
                index[D_ACTION] = s_index (self, D_ACTION, at);
                index[D_GUARDRAIL] = s_index (self, D_GUARDRAIL, guardrail);
                index[D_RULE] = s_index (self, D_RULE, rule);
                s_note (self, F_GUARD_HITS, index, 1);
            }
        }
        entry = end ? end + 1 : NULL;
    }
}

//  ---------------------------------------------------------------------
//  Text

//  The label pairs of series S of family F, with EXTRA (a pair, or "")
//  last; the route's operation name for the gen_ai families.
static void
s_labels (FILE *out, aigw_edge_metrics_t *self, const s_family_t *f, const s_series_t *s,
          const char *extra)
{
    fputc ('{', out);
    bool first = true;
    if (f->operation) {
        const s_value_t *route = self->values[D_ROUTE].by_index[s->key[D_ROUTE]];
        const char *op = !route                                    ? "other"
                         : strcmp (route->text, "embeddings") == 0 ? "embeddings"
                                                                   : "chat";
        fprintf (out, "gen_ai_operation_name=\"%s\"", op);
        first = false;
    }
    for (int d = 0; d < D_COUNT; d++) {
        if (!(f->dims & B (d)))
            continue;
        const s_value_t *v = self->values[d].by_index[s->key[d]];
        fprintf (out, "%s%s=\"%s\"", first ? "" : ",", s_dim_names[d], v ? v->escaped : "other");
        first = false;
    }
    if (*extra)
        fprintf (out, "%s%s", first ? "" : ",", extra);
    fputs ("} ", out);
}

static void
s_family_text (FILE *out, aigw_edge_metrics_t *self, const s_family_t *f)
{
    fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
             f->kind == F_COUNTER ? "counter" : "histogram");
    for (size_t i = 0; i < S_SERIES_SLOTS; i++) {
        const s_series_t *s = atomic_load_explicit (&f->slots[i], memory_order_acquire);
        if (!s)
            continue;
        if (f->kind == F_COUNTER) {
            fputs (f->name, out);
            s_labels (out, self, f, s, "");
            unsigned long long n = atomic_load (&s->numbers[0]);
            if (f->scale == 1e9)  //  nano-units, printed exact
                fprintf (out, "%llu.%09llu\n", n / 1000000000ULL, n % 1000000000ULL);
            else
                fprintf (out, "%llu\n", n);
            continue;
        }
        unsigned long long cumulative = 0;
        char le[48];
        for (int b = 0; b <= f->bound_count; b++) {
            cumulative += atomic_load (&s->numbers[b]);
            if (b < f->bound_count)
                snprintf (le, sizeof le, "le=\"%g\"", f->bounds[b]);
            else
                snprintf (le, sizeof le, "le=\"+Inf\"");
            fprintf (out, "%s_bucket", f->name);
            s_labels (out, self, f, s, le);
            fprintf (out, "%llu\n", cumulative);
        }
        unsigned long long sum = atomic_load (&s->numbers[f->bound_count + 1]);
        fprintf (out, "%s_sum", f->name);
        s_labels (out, self, f, s, "");
        if (f->scale == 1)
            fprintf (out, "%llu\n", sum);
        else
            fprintf (out, "%.9g\n", (double) sum / f->scale);
        fprintf (out, "%s_count", f->name);
        s_labels (out, self, f, s, "");
        fprintf (out, "%llu\n", cumulative);
    }
}

char *
aigw_edge_metrics_text (aigw_edge_metrics_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return strdup ("");
    fprintf (out, "# HELP aigw_http_requests_total HTTP requests answered by the edge.\n"
                  "# TYPE aigw_http_requests_total counter\n");
    for (int r = 0; r < AIGW_ROUTE_COUNT; r++)
        for (int c = 0; c < AIGW_CODE_COUNT; c++) {
            unsigned long long count = atomic_load (&self->requests[r][c]);
            if (!count)
                continue;
            if (c < AIGW_CODE_COUNT - 1)
                fprintf (out, "aigw_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                         s_routes[r], s_codes[c], count);
            else
                fprintf (out, "aigw_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                         s_routes[r], count);
        }
    fprintf (out, "# HELP aigw_http_request_duration_seconds Time from request to last byte.\n"
                  "# TYPE aigw_http_request_duration_seconds histogram\n");
    for (int r = 0; r < AIGW_ROUTE_COUNT; r++) {
        unsigned long long cumulative = 0;
        for (int b = 0; b <= AIGW_BUCKET_COUNT; b++) {
            cumulative += atomic_load (&self->buckets[r][b]);
            if (b < AIGW_BUCKET_COUNT)
                fprintf (out,
                         "aigw_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                         "%llu\n",
                         s_routes[r], s_bounds[b] / 1e6, cumulative);
            else
                fprintf (out,
                         "aigw_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
                         " %llu\n",
                         s_routes[r], cumulative);
        }
        fprintf (out, "aigw_http_request_duration_seconds_sum{route=\"%s\"} %g\n", s_routes[r],
                 atomic_load (&self->sum_us[r]) / 1e6);
        fprintf (out, "aigw_http_request_duration_seconds_count{route=\"%s\"} %llu\n", s_routes[r],
                 cumulative);
    }
    for (int i = 0; i < F_COUNT; i++)
        s_family_text (out, self, &self->families[i]);
    fclose (out);
    return text;
}

//  metrics: the bound on label values (the keyword lives beside its use).
static const aigw_config_keyword_t s_metrics_keywords[]
    = {AIGW_CONFIG_KW_NUMBER ("max_label_values", AIGW_CONFIG_INT, aigw_config_t,
                              metrics_max_label_values, 1, AIGW_EDGE_METRICS_MAX_LABEL_VALUES,
                              AIGW_EDGE_METRICS_DEFAULT_LABEL_VALUES),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("metrics", s_metrics_keywords)

//  ---------------------------------------------------------------------
//  Selftest

typedef struct {
    aigw_edge_metrics_t *self;  //  shared
    int thread;                 //  which one
} s_racer_t;

//  Many threads adding the same new values at once.
static void *
s_race (void *arg)
{
    s_racer_t *r = arg;
    for (int i = 0; i < 200; i++) {
        char model[32];
        snprintf (model, sizeof model, "race-%d", i % 50);
        aigw_edge_metrics_answer_t a = {.route = AIGW_ROUTE_CHAT,
                                        .status = 200,
                                        .model = model,
                                        .tenant = "racers",
                                        .tokens_in = 1,
                                        .first_us = -1};
        aigw_edge_metrics_answer (r->self, &a);
    }
    return NULL;
}

void
aigw_edge_metrics_test (bool verbose)
{
    aigw_edge_metrics_t *self = aigw_edge_metrics_new (3);
    aigw_edge_metrics_record (self, AIGW_ROUTE_CHAT, 200, 300);
    aigw_edge_metrics_record (self, AIGW_ROUTE_CHAT, 200, 2000000);
    aigw_edge_metrics_record (self, AIGW_ROUTE_CHAT, 418, 10);
    aigw_edge_metrics_answer_t ok = {.route = AIGW_ROUTE_CHAT,
                                     .status = 200,
                                     .stream = true,
                                     .model = "gpt-4o",
                                     .deployment = "oai-1",
                                     .system = "openai",
                                     .tenant = "acme",
                                     .cache = "MISS",
                                     .tokens_in = 12,
                                     .tokens_out = 30,
                                     .cost_nusd = 1500000123,
                                     .latency_us = 150000,
                                     .first_us = 7000,
                                     .verdict = "redact:pii:email,out:block:secrets:jwt"};
    aigw_edge_metrics_answer (self, &ok);
    ok.stream = false;
    ok.cost_nusd = 1;
    aigw_edge_metrics_answer (self, &ok);
    aigw_edge_metrics_answer_t limited = {.route = AIGW_ROUTE_MESSAGES,
                                          .status = 429,
                                          .model = "gpt-4o",
                                          .tenant = "acme",
                                          .error_type = "rate_limit_error",
                                          .error_code = "rpm",
                                          .latency_us = 500,
                                          .first_us = -1};
    aigw_edge_metrics_answer (self, &limited);
    aigw_edge_metrics_answer_t blocked = {.route = AIGW_ROUTE_CHAT,
                                          .status = 400,
                                          .model = "a \"quoted\\\" model\n",
                                          .tenant = "acme",
                                          .error_type = "guardrail_error",
                                          .error_code = "deny_list",
                                          .first_us = -1};
    aigw_edge_metrics_answer (self, &blocked);
    //  Three models are kept (gpt-4o, the quoted one, "third"); the rest
    //  are "other".
    const char *more[] = {"third", "fourth", "fifth"};
    for (int i = 0; i < 3; i++) {
        blocked.model = more[i];
        aigw_edge_metrics_answer (self, &blocked);
    }
    char *text = aigw_edge_metrics_text (self);
    if (verbose)
        printf ("%s", text);
    assert (strstr (text, "aigw_guardrail_triggers_total{route=\"chat\",gen_ai_request_model="
                          "\"gpt-4o\",tenant=\"acme\",direction=\"input\",guardrail=\"pii\","
                          "rule=\"email\",action=\"redact\"} 2\n"));
    assert (strstr (text, "direction=\"output\",guardrail=\"secrets\",rule=\"jwt\","
                          "action=\"block\"} 2\n"));
    assert (strstr (text, "aigw_http_requests_total{route=\"chat\",code=\"200\"} 2\n"));
    assert (strstr (text, "aigw_http_requests_total{route=\"chat\",code=\"other\"} 1\n"));
    assert (strstr (text, "route=\"chat\",le=\"0.0005\"} 2\n"));
    assert (strstr (text, "route=\"chat\",le=\"+Inf\"} 3\n"));
    assert (strstr (text, "aigw_http_request_duration_seconds_count{route=\"chat\"} 3\n"));
    const char *who = "route=\"chat\",gen_ai_request_model=\"gpt-4o\",deployment=\"oai-1\","
                      "gen_ai_system=\"openai\",tenant=\"acme\"";
    char want[512];
    snprintf (want, sizeof want, "aigw_requests_total{%s,status_class=\"2xx\",error_type=\"\"} 2\n",
              who);
    assert (strstr (text, want));
    snprintf (want, sizeof want, "aigw_cost_usd_total{%s} 1.500000124\n", who);
    assert (strstr (text, want));
    snprintf (want, sizeof want,
              "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",%s,"
              "gen_ai_token_type=\"output\"} 60\n",
              who);
    assert (strstr (text, want));
    snprintf (want, sizeof want,
              "gen_ai_client_token_usage_bucket{gen_ai_operation_name=\"chat\",%s,"
              "gen_ai_token_type=\"input\",le=\"16\"} 2\n",
              who);
    assert (strstr (text, want));
    //  Only the streamed answer has a first token.
    snprintf (want, sizeof want,
              "gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name=\"chat\",%s} "
              "1\n",
              who);
    assert (strstr (text, want));
    snprintf (want, sizeof want,
              "gen_ai_server_time_to_first_token_seconds_bucket{gen_ai_operation_name=\"chat\",%s,"
              "le=\"0.005\"} 0\n",
              who);
    assert (strstr (text, want));
    snprintf (want, sizeof want,
              "gen_ai_server_request_duration_seconds_sum{gen_ai_operation_name=\"chat\",%s,"
              "error_type=\"\"} 0.3\n",
              who);
    assert (strstr (text, want));
    assert (strstr (text,
                    "aigw_cache_requests_total{route=\"chat\",gen_ai_request_model=\"gpt-4o\","
                    "tenant=\"acme\",cache=\"MISS\"} 2\n"));
    assert (strstr (text, "aigw_ratelimit_rejections_total{route=\"messages\","
                          "gen_ai_request_model=\"gpt-4o\",tenant=\"acme\","
                          "code=\"rpm\"} 1\n"));
    assert (strstr (text, "aigw_guardrail_blocks_total{route=\"chat\","
                          "gen_ai_request_model=\"a \\\"quoted\\\\\\\" model\\n\",tenant=\"acme\","
                          "code=\"deny_list\"} 1\n"));
    assert (strstr (text,
                    "aigw_guardrail_blocks_total{route=\"chat\","
                    "gen_ai_request_model=\"other\",tenant=\"acme\",code=\"deny_list\"} 2\n"));
    free (text);
    aigw_edge_metrics_destroy (&self);
    aigw_edge_metrics_destroy (&self);

    //  One value per label: the labels aigw writes itself keep theirs.
    self = aigw_edge_metrics_new (1);
    aigw_edge_metrics_answer_t one = {.route = AIGW_ROUTE_EMBEDDINGS,
                                      .status = 200,
                                      .model = "a",
                                      .tokens_in = 3,
                                      .tokens_out = 4,
                                      .first_us = -1};
    aigw_edge_metrics_answer (self, &one);
    one.model = "b";
    one.route = AIGW_ROUTE_CHAT;
    aigw_edge_metrics_answer (self, &one);
    text = aigw_edge_metrics_text (self);
    assert (strstr (text, "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"embeddings\","
                          "route=\"embeddings\",gen_ai_request_model=\"a\",deployment=\"\","
                          "gen_ai_system=\"\",tenant=\"\",gen_ai_token_type=\"output\"} 4\n"));
    assert (strstr (text, "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\","
                          "route=\"chat\",gen_ai_request_model=\"other\",deployment=\"\","
                          "gen_ai_system=\"\",tenant=\"\",gen_ai_token_type=\"output\"} 4\n"));
    free (text);
    aigw_edge_metrics_destroy (&self);

    //  Threads adding the same new values at once make one entry each.
    self = aigw_edge_metrics_new (AIGW_EDGE_METRICS_DEFAULT_LABEL_VALUES);
    pthread_t threads[8];
    s_racer_t racers[8];
    for (int i = 0; i < 8; i++) {
        racers[i] = (s_racer_t){self, i};
        assert (pthread_create (&threads[i], NULL, s_race, &racers[i]) == 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join (threads[i], NULL);
    assert (atomic_load (&self->values[D_MODEL].count) == 50);
    text = aigw_edge_metrics_text (self);
    for (int i = 0; i < 50; i++) {
        snprintf (want, sizeof want,
                  "aigw_requests_total{route=\"chat\",gen_ai_request_model=\"race-%d\","
                  "deployment=\"\",gen_ai_system=\"\",tenant=\"racers\",status_class=\"2xx\","
                  "error_type=\"\"} 32\n",
                  i);
        assert (strstr (text, want));
    }
    free (text);
    aigw_edge_metrics_destroy (&self);
    if (verbose)
        printf ("edge metrics: ok\n");
}
