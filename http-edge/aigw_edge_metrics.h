/*  aigw_edge_metrics: the edge's figures in Prometheus text format: request
    counts and latency per route (every HTTP answer), and per data-plane
    answer the requests, tokens, cost, latency, time to first token, cache
    results, guardrail blocks and rate-limit rejections by route, model,
    deployment, provider and tenant. Recorded from every handler thread
    with atomic adds, no lock on the request path.

    Label sets are bounded: each label keeps at most metrics.max_label_values
    distinct values; past that, a new value is counted as "other". */
#ifndef AIGW_EDGE_METRICS_H_INCLUDED
#define AIGW_EDGE_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    AIGW_ROUTE_CHAT = 0,
    AIGW_ROUTE_EMBEDDINGS = 1,
    AIGW_ROUTE_MODELS = 2,
    AIGW_ROUTE_OPS = 3,           //  healthz, readyz, metrics
    AIGW_ROUTE_OTHER = 4,         //  unknown paths
    AIGW_ROUTE_ADMIN = 5,         //  /api/v1/admin/...
    AIGW_ROUTE_MESSAGES = 6,      //  /v1/messages (Anthropic format)
    AIGW_ROUTE_COUNT_TOKENS = 7,  //  /v1/messages/count_tokens
    AIGW_ROUTE_RESPONSES = 8,     //  /v1/responses (OpenAI Responses)
    AIGW_ROUTE_COUNT = 9
} aigw_edge_route_t;

//  metrics.max_label_values: its default and bounds.
#define AIGW_EDGE_METRICS_DEFAULT_LABEL_VALUES 100
#define AIGW_EDGE_METRICS_MAX_LABEL_VALUES     1000

//  One answered data-plane request, as the edge knows it when it is done.
//  Strings are borrowed for the call; NULL is "" (e.g. no deployment).
typedef struct {
    int route;               //  aigw_edge_route_t
    int status;              //  status sent
    bool stream;             //  a streamed answer
    const char *model;       //  model asked for
    const char *deployment;  //  deployment that answered
    const char *system;      //  its provider kind (openai, anthropic, ...)
    const char *tenant;      //  tenant of the caller
    const char *error_type;  //  error type of an error answer
    const char *error_code;  //  its code
    const char *cache;       //  HIT, MISS, BYPASS, or NULL
    int64_t tokens_in;       //  prompt tokens
    int64_t tokens_out;      //  completion tokens
    int64_t cost_nusd;       //  cost, nano-USD
    int64_t latency_us;      //  to the last byte
    int64_t first_us;        //  to the first byte, < 0 unknown
    const char *verdict;     //  the guardrails' verdict (envelope gv), or NULL
} aigw_edge_metrics_answer_t;

typedef struct _aigw_edge_metrics_t aigw_edge_metrics_t;

//  New figures, each label keeping at most MAX_LABEL_VALUES values (bounded
//  to 1..AIGW_EDGE_METRICS_MAX_LABEL_VALUES).
aigw_edge_metrics_t *aigw_edge_metrics_new (int max_label_values);
void aigw_edge_metrics_destroy (aigw_edge_metrics_t **self_p);

//  Count one answered request on ROUTE with STATUS, taking MICROS.
void aigw_edge_metrics_record (aigw_edge_metrics_t *self, int route, int status, int64_t micros);

//  Count one answered data-plane request in the per-model figures.
void aigw_edge_metrics_answer (aigw_edge_metrics_t *self, const aigw_edge_metrics_answer_t *answer);

//  Prometheus text of everything recorded; caller frees it.
char *aigw_edge_metrics_text (aigw_edge_metrics_t *self);

void aigw_edge_metrics_test (bool verbose);

#endif
