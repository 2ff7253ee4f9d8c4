/*  aigw_trace: trace context and OTLP/HTTP span export. See aigw_trace.h.

    Span names and attributes follow the OpenTelemetry semantic conventions
    for GenAI (gen_ai.*) and HTTP (http.*, url.*, server.*) where one
    fits; aigw's own are under aigw.*. OTLP/JSON writes trace and span ids
    as hex and 64-bit integers as strings. */
#include "aigw_trace.h"
#include "aigw_hex.h"
#include "aigw_log.h"
#include "aigw_stats.h"
#include "aigw_text.h"

#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

//  A batch's HTTP deadline, and the connect deadline within it.
#define S_POST_TIMEOUT_MS    5000
#define S_CONNECT_TIMEOUT_MS 2000
//  At stop, what waits gets this long to leave.
#define S_STOP_TIMEOUT_MS 2000
//  Most requests in one POST.
#define S_BATCH_MAX 512
//  A failing collector is logged at most this often.
#define S_LOG_EVERY_MS 60000

//  OTLP span kinds and status codes.
#define S_KIND_INTERNAL 1
#define S_KIND_SERVER   2
#define S_KIND_CLIENT   3
#define S_STATUS_ERROR  2

#define S_EQ(a, b) (strcmp ((a), (b)) == 0)

static aigw_config_check_fn s_check_endpoint;

static const aigw_config_keyword_t s_trace_settings[]
    = {AIGW_CONFIG_KW_STRING ("endpoint", aigw_config_t, tracing_endpoint, s_check_endpoint, NULL,
                              .env = "OTEL_EXPORTER_OTLP_ENDPOINT"),
       AIGW_CONFIG_KW_STRING ("service_name", aigw_config_t, tracing_service_name, NULL,
                              AIGW_TRACE_DEFAULT_SERVICE, .env = "OTEL_SERVICE_NAME"),
       AIGW_CONFIG_KW_REAL ("sample_ratio", aigw_config_t, tracing_sample_ratio, 0, 1, 1),
       AIGW_CONFIG_KW_NUMBER ("queue_max", AIGW_CONFIG_INT, aigw_config_t, tracing_queue_max, 1,
                              1000000, AIGW_TRACE_DEFAULT_QUEUE_MAX),
       AIGW_CONFIG_KW_NUMBER ("batch_ms", AIGW_CONFIG_INT64, aigw_config_t, tracing_batch_ms, 10,
                              60000, AIGW_TRACE_DEFAULT_BATCH_MS),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("tracing", s_trace_settings)

//  An OTLP/HTTP endpoint: empty (off) or an http(s) URL.
static int
s_check_endpoint (const char *value, char *problem, size_t problem_size)
{
    if (!*value || strncmp (value, "http://", 7) == 0 || strncmp (value, "https://", 8) == 0)
        return 0;
    snprintf (problem, problem_size, "expected an http:// or https:// URL");
    return -1;
}

//  One finished request waiting for export.
typedef struct _s_item_t {
    aigw_envelope_t *record;  //  its usage record (route: its stages)
    char parent[17];          //  the client's span id, or ""
    int64_t start_us, end_us;
    char method[8];
    char path[48];
    struct _s_item_t *next;
} s_item_t;

struct _aigw_trace_t {
    char *url;                   //  where batches go: ENDPOINT/v1/traces
    char *service;               //  service.name
    double ratio;                //  sample ratio
    int queue_max;               //  items waiting, at most
    int64_t batch_ms;            //  how often a batch leaves
    _Atomic (s_item_t *) stack;  //  items, newest first (handlers push)
    atomic_int queued;           //  items in stack
    aigw_stat_t *exported;       //  requests sent to the collector
    aigw_stat_t *dropped;        //  requests not queued: full
    aigw_stat_t *lost;           //  requests whose batch failed
    pthread_t thread;
    pthread_mutex_t mutex;  //  only for the stop signal: handlers never take it
    pthread_cond_t cond;
    bool stop;
    int64_t logged_at;  //  thread only: last failure logged, ms
};

static bool
s_hex (const char *text, size_t len)
{
    bool nonzero = false;
    for (size_t i = 0; i < len; i++) {
        if (aigw_hex_digit (text[i]) < 0 || (text[i] >= 'A' && text[i] <= 'F'))
            return false;
        nonzero = nonzero || text[i] != '0';
    }
    return nonzero;
}

bool
aigw_trace_begin (aigw_trace_t *self, const char *client, char *tp, char *parent)
{
    char trace_id[33], span_id[17];
    int flags;
    bool sampled;
    parent[0] = 0;
    if (aigw_text_traceparent (client, trace_id, parent, &flags))
        sampled = (flags & 1) != 0;
    else {
        aigw_hex_random (16, trace_id);
        unsigned char dice[4];
        aigw_hex_random_bytes (sizeof dice, dice);
        uint32_t roll = (uint32_t) dice[0] << 24 | (uint32_t) dice[1] << 16
                        | (uint32_t) dice[2] << 8 | dice[3];
        sampled = self && (double) roll / 4294967296.0 < self->ratio;
        flags = sampled ? 1 : 0;
    }
    aigw_hex_random (8, span_id);
    snprintf (tp, AIGW_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", trace_id, span_id, flags & 0xff);
    return self && sampled;
}

void
aigw_trace_end (aigw_trace_t *self, aigw_envelope_t **record_p, const char *parent,
                int64_t start_us, int64_t end_us, const char *method, const char *path)
{
    if (!self || !*record_p)
        return;
    if (atomic_fetch_add (&self->queued, 1) >= self->queue_max) {
        atomic_fetch_sub (&self->queued, 1);
        aigw_stat_add (self->dropped, 1);
        aigw_envelope_destroy (record_p);
        return;
    }
    s_item_t *item = calloc (1, sizeof *item);
    assert (item);
    item->record = *record_p;
    *record_p = NULL;
    snprintf (item->parent, sizeof item->parent, "%s", parent ? parent : "");
    item->start_us = start_us;
    item->end_us = end_us;
    snprintf (item->method, sizeof item->method, "%s", method ? method : "");
    snprintf (item->path, sizeof item->path, "%s", path ? path : "");
    item->next = atomic_load (&self->stack);
    while (!atomic_compare_exchange_weak (&self->stack, &item->next, item))
        ;
}

//  ---------------------------------------------------------------------
//  Formatting, on the tracer's thread

static void
s_attr_str (json_t *attrs, const char *key, const char *value)
{
    if (value && *value)
        json_array_append_new (
            attrs, json_pack ("{s:s, s:{s:s}}", "key", key, "value", "stringValue", value));
}

static void
s_attr_int (json_t *attrs, const char *key, int64_t value)
{
    char text[24];
    snprintf (text, sizeof text, "%" PRId64, value);
    json_array_append_new (attrs,
                           json_pack ("{s:s, s:{s:s}}", "key", key, "value", "intValue", text));
}

static void
s_attr_double (json_t *attrs, const char *key, double value)
{
    json_array_append_new (attrs,
                           json_pack ("{s:s, s:{s:f}}", "key", key, "value", "doubleValue", value));
}

//  A span object; ATTRS taken.
static json_t *
s_span (const char *trace_id, const char *span_id, const char *parent, const char *name, int kind,
        int64_t start_us, int64_t end_us, json_t *attrs, bool error, const char *message)
{
    char start[24], end[24];
    snprintf (start, sizeof start, "%" PRId64 "000", start_us);
    snprintf (end, sizeof end, "%" PRId64 "000", end_us > start_us ? end_us : start_us);
    json_t *span = json_pack ("{s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "traceId", trace_id, "spanId",
                              span_id, "name", name, "kind", kind, "startTimeUnixNano", start,
                              "endTimeUnixNano", end, "attributes", attrs);
    if (parent && *parent)
        json_object_set_new (span, "parentSpanId", json_string (parent));
    if (error)
        json_object_set_new (
            span, "status",
            json_pack ("{s:i, s:s}", "code", S_STATUS_ERROR, "message", message ? message : ""));
    return span;
}

static const char *
s_operation (int kind)
{
    return kind == AIGW_KIND_EMBEDDINGS ? "embeddings"
           : kind == AIGW_KIND_MODELS   ? "models"
                                        : "chat";
}

//  Append ITEM's spans to SPANS.
static void
s_item_spans (const s_item_t *item, json_t *spans)
{
    const aigw_envelope_t *r = item->record;
    char trace_id[33], root[17];
    if (!aigw_text_traceparent (r->traceparent, trace_id, root, NULL))
        return;
    const char *operation = s_operation (r->kind);
    const char *model = r->model ? r->model : "";
    char name[160];
    snprintf (name, sizeof name, "%s %.120s", operation, model);

    json_t *attrs = json_array ();
    s_attr_str (attrs, "gen_ai.operation.name", operation);
    s_attr_str (attrs, "gen_ai.system", r->provider_kind);
    s_attr_str (attrs, "gen_ai.request.model", r->model);
    if (r->tokens_in || r->tokens_out) {
        s_attr_int (attrs, "gen_ai.usage.input_tokens", r->tokens_in);
        s_attr_int (attrs, "gen_ai.usage.output_tokens", r->tokens_out);
    }
    s_attr_str (attrs, "http.request.method", item->method);
    s_attr_str (attrs, "url.path", item->path);
    s_attr_int (attrs, "http.response.status_code", r->status);
    s_attr_str (attrs, "error.type", r->status >= 400 ? r->err_type : NULL);
    s_attr_str (attrs, "aigw.request_id", r->id);
    s_attr_str (attrs, "aigw.tenant", r->tenant);
    s_attr_str (attrs, "aigw.key_name", r->key_name);
    s_attr_str (attrs, "aigw.deployment", r->provider);
    s_attr_str (attrs, "aigw.cache", r->cache_status);
    s_attr_str (attrs, "aigw.guardrail", r->verdict);
    if (r->stream)
        s_attr_str (attrs, "aigw.stream", "true");
    if (r->cost_nusd)
        s_attr_double (attrs, "aigw.cost_usd", (double) r->cost_nusd / 1e9);
    if (r->first_ms >= 0 && r->stream)
        s_attr_int (attrs, "aigw.ttft_ms", r->first_ms);
    //  A server span is an error on 5xx only (HTTP conventions).
    json_array_append_new (spans, s_span (trace_id, root, item->parent, name, S_KIND_SERVER,
                                          item->start_us, item->end_us, attrs, r->status >= 500,
                                          r->err_code));

    char provider_span[17] = "";
    for (int hop = 0; hop < r->route_len && hop < AIGW_ROUTE_MAX; hop++) {
        int64_t start = r->stage_us[2 * hop], spent = r->stage_us[2 * hop + 1];
        const char *stage = r->route[hop];
        if (!start || !stage || strcmp (stage, "usage") == 0)
            continue;
        char span_id[17];
        aigw_hex_random (8, span_id);
        if (strcmp (stage, "provider") == 0)
            memcpy (provider_span, span_id, sizeof span_id);
        json_t *sattrs = json_array ();
        s_attr_str (sattrs, "aigw.stage", stage);
        char sname[64];
        snprintf (sname, sizeof sname, "aigw.%.40s", stage);
        json_array_append_new (spans,
                               s_span (trace_id, span_id, root, sname, S_KIND_INTERNAL, start,
                                       start + (spent > 0 ? spent : 0), sattrs, false, NULL));
    }

    //  Upstream attempts: "start dur status span deployment model" by tabs.
    const char *line = r->upstream;
    while (line && *line) {
        const char *eol = strchr (line, '\n');
        size_t len = eol ? (size_t) (eol - line) : strlen (line);
        char buf[600];
        if (len < sizeof buf) {
            memcpy (buf, line, len);
            buf[len] = 0;
            char *fields[6];
            int count = 0;
            char *save = NULL;
            for (char *f = strtok_r (buf, "\t", &save); f && count < 6;
                 f = strtok_r (NULL, "\t", &save))
                fields[count++] = f;
            int64_t start = 0, spent = 0, status = 0;
            if (count == 6 && sscanf (fields[0], "%" SCNd64, &start) == 1
                && sscanf (fields[1], "%" SCNd64, &spent) == 1
                && sscanf (fields[2], "%" SCNd64, &status) == 1 && strlen (fields[3]) == 16
                && s_hex (fields[3], 16)) {
                json_t *uattrs = json_array ();
                s_attr_str (uattrs, "gen_ai.operation.name", operation);
                s_attr_str (uattrs, "gen_ai.request.model", fields[5]);
                s_attr_str (uattrs, "aigw.deployment", fields[4]);
                if (status)
                    s_attr_int (uattrs, "http.response.status_code", status);
                else
                    s_attr_str (uattrs, "error.type", "no_response");
                char uname[160];
                snprintf (uname, sizeof uname, "%s %.120s", operation, fields[5]);
                json_array_append_new (spans, s_span (trace_id, fields[3],
                                                      *provider_span ? provider_span : root, uname,
                                                      S_KIND_CLIENT, start, start + spent, uattrs,
                                                      status == 0 || status >= 400, NULL));
            }
        }
        line = eol ? eol + 1 : NULL;
    }
}

//  The OTLP/JSON request for ITEMS (a list through next); caller frees.
static char *
s_format (aigw_trace_t *self, s_item_t *items, int *count)
{
    json_t *spans = json_array ();
    *count = 0;
    for (s_item_t *item = items; item; item = item->next, (*count)++)
        s_item_spans (item, spans);
    json_t *root
        = json_pack ("{s:[{s:{s:[{s:s, s:{s:s}}]}, s:[{s:{s:s}, s:o}]}]}", "resourceSpans",
                     "resource", "attributes", "key", "service.name", "value", "stringValue",
                     self->service, "scopeSpans", "scope", "name", "aigw", "spans", spans);
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text;
}

static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    (void) arg;
    return size * count;
}

//  POST BODY to the collector. Returns 0 on a 2xx.
static int
s_post (aigw_trace_t *self, CURL *curl, const char *body, long timeout_ms)
{
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, self->url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS,
                      timeout_ms < S_CONNECT_TIMEOUT_MS ? timeout_ms : S_CONNECT_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (headers);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        return 0;
    struct timeval tv;
    gettimeofday (&tv, NULL);
    int64_t now = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
    if (now - self->logged_at >= S_LOG_EVERY_MS) {
        aigw_warn ("tracing: the collector did not take a batch (%s, HTTP %ld); its spans are "
                   "lost",
                   rc == CURLE_OK ? "answered" : curl_easy_strerror (rc), status);
        self->logged_at = now;
    }
    return -1;
}

//  Send everything queued now, in batches. Returns how many items went.
static void
s_flush (aigw_trace_t *self, CURL *curl, long timeout_ms)
{
    s_item_t *stack = atomic_exchange (&self->stack, NULL);
    //  Oldest first.
    s_item_t *list = NULL;
    while (stack) {
        s_item_t *next = stack->next;
        stack->next = list;
        list = stack;
        stack = next;
    }
    while (list) {
        s_item_t *batch = list, *tail = list;
        int n = 1;
        while (tail->next && n < S_BATCH_MAX) {
            tail = tail->next;
            n++;
        }
        list = tail->next;
        tail->next = NULL;
        int count;
        char *body = s_format (self, batch, &count);
        bool sent = body && s_post (self, curl, body, timeout_ms) == 0;
        free (body);
        aigw_stat_add (sent ? self->exported : self->lost, count);
        while (batch) {
            s_item_t *next = batch->next;
            aigw_envelope_destroy (&batch->record);
            free (batch);
            batch = next;
        }
        atomic_fetch_sub (&self->queued, count);
    }
}

static void *
s_thread (void *arg)
{
    aigw_trace_t *self = (aigw_trace_t *) arg;
    CURL *curl = curl_easy_init ();
    pthread_mutex_lock (&self->mutex);
    while (!self->stop) {
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_sec += self->batch_ms / 1000;
        until.tv_nsec += (self->batch_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait (&self->cond, &self->mutex, &until);
        if (self->stop)
            break;
        pthread_mutex_unlock (&self->mutex);
        if (curl)
            s_flush (self, curl, S_POST_TIMEOUT_MS);
        pthread_mutex_lock (&self->mutex);
    }
    pthread_mutex_unlock (&self->mutex);
    if (curl)
        s_flush (self, curl, S_STOP_TIMEOUT_MS);
    curl_easy_cleanup (curl);
    return NULL;
}

aigw_trace_t *
aigw_trace_new (const aigw_config_t *config)
{
    const char *endpoint = config->tracing_endpoint;
    if (!endpoint || !*endpoint)
        return NULL;
    aigw_trace_t *self = calloc (1, sizeof *self);
    assert (self);
    //  The generic variable names the collector's base; the signal's path
    //  follows it (OTLP exporter specification).
    size_t len = strlen (endpoint);
    while (len && endpoint[len - 1] == '/')
        len--;
    bool full = len >= 10 && strncmp (endpoint + len - 10, "/v1/traces", 10) == 0;
    self->url = malloc (len + 12);
    assert (self->url);
    snprintf (self->url, len + 12, "%.*s%s", (int) len, endpoint, full ? "" : "/v1/traces");
    self->service = strdup (config->tracing_service_name && *config->tracing_service_name
                                ? config->tracing_service_name
                                : AIGW_TRACE_DEFAULT_SERVICE);
    self->ratio = config->tracing_sample_ratio;
    self->queue_max
        = config->tracing_queue_max > 0 ? config->tracing_queue_max : AIGW_TRACE_DEFAULT_QUEUE_MAX;
    self->batch_ms
        = config->tracing_batch_ms > 0 ? config->tracing_batch_ms : AIGW_TRACE_DEFAULT_BATCH_MS;
    static const char help[]
        = "Requests whose spans were exported, not queued (queue full) or lost "
          "(the collector failed)";
    self->exported = aigw_stats_counter ("aigw_trace_requests_total", "result=\"exported\"", help);
    self->dropped = aigw_stats_counter ("aigw_trace_requests_total", "result=\"dropped\"", help);
    self->lost = aigw_stats_counter ("aigw_trace_requests_total", "result=\"lost\"", help);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    if (pthread_create (&self->thread, NULL, s_thread, self) != 0) {
        aigw_error ("tracing: cannot start the exporter thread");
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->cond);
        free (self->url);
        free (self->service);
        free (self);
        return NULL;
    }
    aigw_info ("tracing: spans go to %s as %s", self->url, self->service);
    return self;
}

void
aigw_trace_destroy (aigw_trace_t **self_p)
{
    aigw_trace_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->stop = true;
    pthread_cond_signal (&self->cond);
    pthread_mutex_unlock (&self->mutex);
    pthread_join (self->thread, NULL);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->cond);
    free (self->url);
    free (self->service);
    free (self);
    *self_p = NULL;
}

void
aigw_trace_counts (aigw_trace_t *self, uint64_t *exported, uint64_t *dropped, uint64_t *lost)
{
    *exported = self ? (uint64_t) aigw_stat_value (self->exported) : 0;
    *dropped = self ? (uint64_t) aigw_stat_value (self->dropped) : 0;
    *lost = self ? (uint64_t) aigw_stat_value (self->lost) : 0;
}

//  ---------------------------------------------------------------------
//  Selftest

void
aigw_trace_test (bool verbose)
{
    (void) verbose;
    char tp[AIGW_TRACEPARENT_LEN + 1], parent[17];
    int flags;
    const char *given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    //  Off (NULL tracer): context still flows, nothing is exported.
    assert (!aigw_trace_begin (NULL, given, tp, parent));
    assert (strncmp (tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    assert (strcmp (tp + 36, "00f067aa0ba902b7-01") != 0 && S_EQ (parent, "00f067aa0ba902b7"));
    assert (!aigw_trace_begin (NULL, "garbage", tp, parent)
            && aigw_text_traceparent (tp, NULL, NULL, &flags));
    assert (*parent == 0 && flags == 0);

    //  On: a client's unsampled flag is kept; a span set formats as OTLP.
    char err[256];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    free (config->tracing_endpoint);
    config->tracing_endpoint = strdup ("http://127.0.0.1:9/");
    aigw_trace_t *self = aigw_trace_new (config);
    assert (self && S_EQ (self->url, "http://127.0.0.1:9/v1/traces"));
    assert (!aigw_trace_begin (self, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", tp,
                               parent));
    assert (aigw_trace_begin (self, given, tp, parent));
    aigw_envelope_t *r = aigw_envelope_new ();
    aigw_envelope_set (&r->traceparent, tp);
    aigw_envelope_set (&r->model, "gpt-4o-mini");
    aigw_envelope_set (&r->route[0], "auth");
    aigw_envelope_set (&r->route[1], "provider");
    r->route_len = 2;
    r->kind = AIGW_KIND_CHAT;
    r->status = 200;
    r->tokens_in = 7;
    r->stage_us[0] = 1000;
    r->stage_us[1] = 5;
    r->stage_us[2] = 1010;
    r->stage_us[3] = 900;
    aigw_envelope_set (&r->upstream, "1020\t850\t200\t0123456789abcdef\tdep-a\tgpt-4o-mini\n"
                                     "bad line\n");
    s_item_t item = {.record = r, .start_us = 990, .end_us = 2000};
    snprintf (item.parent, sizeof item.parent, "%s", parent);
    int count;
    char *text = s_format (self, &item, &count);
    assert (text && count == 1);
    json_t *root = json_loads (text, 0, NULL);
    json_t *spans = json_object_get (
        json_array_get (
            json_object_get (json_array_get (json_object_get (root, "resourceSpans"), 0),
                             "scopeSpans"),
            0),
        "spans");
    assert (json_array_size (spans) == 4);  //  request, auth, provider, one attempt
    json_t *server = json_array_get (spans, 0);
    assert (S_EQ (json_string_value (json_object_get (server, "name")), "chat gpt-4o-mini"));
    assert (
        S_EQ (json_string_value (json_object_get (server, "parentSpanId")), "00f067aa0ba902b7"));
    assert (S_EQ (json_string_value (json_object_get (server, "startTimeUnixNano")), "990000"));
    json_t *attempt = json_array_get (spans, 3);
    assert (S_EQ (json_string_value (json_object_get (attempt, "spanId")), "0123456789abcdef"));
    assert (S_EQ (json_string_value (json_object_get (attempt, "parentSpanId")),
                  json_string_value (json_object_get (json_array_get (spans, 2), "spanId"))));
    assert (json_integer_value (json_object_get (attempt, "kind")) == S_KIND_CLIENT);
    json_decref (root);
    free (text);

    //  Queue bound: past queue_max a request is dropped, not queued.
    self->queue_max = 1;
    aigw_envelope_t *a = aigw_envelope_dup (r), *b = aigw_envelope_dup (r);
    aigw_trace_end (self, &a, "", 1, 2, "POST", "/v1/chat/completions");
    aigw_trace_end (self, &b, "", 1, 2, "POST", "/v1/chat/completions");
    assert (!a && !b);
    uint64_t exported, dropped, lost;
    aigw_trace_counts (self, &exported, &dropped, &lost);
    assert (dropped >= 1);
    aigw_envelope_destroy (&r);
    //  Nothing listens on port 9: the batch is lost, counted, at stop.
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (AIGW_LOG_ERROR);
    aigw_trace_destroy (&self);
    aigw_log_set_level (level);
    assert (self == NULL);
    aigw_config_destroy (&config);
}
