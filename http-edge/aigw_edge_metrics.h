/*  aigw_edge_metrics: the edge's request counts and latency histogram, in
    Prometheus text format. Recorded from every handler thread with atomic
    adds, no lock. */
#ifndef AIGW_EDGE_METRICS_H_INCLUDED
#define AIGW_EDGE_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    AIGW_ROUTE_CHAT = 0,
    AIGW_ROUTE_EMBEDDINGS = 1,
    AIGW_ROUTE_MODELS = 2,
    AIGW_ROUTE_OPS = 3,       //  healthz, readyz, metrics
    AIGW_ROUTE_OTHER = 4,     //  unknown paths
    AIGW_ROUTE_ADMIN = 5,     //  /api/v1/admin/...
    AIGW_ROUTE_MESSAGES = 6,  //  /v1/messages (Anthropic format)
    AIGW_ROUTE_COUNT = 7
} aigw_edge_route_t;

typedef struct _aigw_edge_metrics_t aigw_edge_metrics_t;

aigw_edge_metrics_t *aigw_edge_metrics_new (void);
void aigw_edge_metrics_destroy (aigw_edge_metrics_t **self_p);

//  Count one answered request on ROUTE with STATUS, taking MICROS.
void aigw_edge_metrics_record (aigw_edge_metrics_t *self, int route, int status, int64_t micros);

//  Prometheus text of everything recorded; caller frees it.
char *aigw_edge_metrics_text (aigw_edge_metrics_t *self);

void aigw_edge_metrics_test (bool verbose);

#endif
