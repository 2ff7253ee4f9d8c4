/*  aigw_trace: W3C trace context at the edge, and spans exported to an
    OpenTelemetry collector over OTLP/HTTP (JSON), batched by one thread
    of its own.

    Each traced request makes one SERVER span (the request), a child per
    stage it went through (the runtime's times in env->stage_us) and a
    CLIENT child per upstream attempt (env->upstream, whose span ids the
    provider sent upstream in traceparent). The edge builds nothing on the
    request's path but a copy of the finished request's usage record: the
    thread formats and sends. The queue is bounded; past it requests are
    not traced (counted), and a collector that fails loses its batch
    (counted, logged): tracing never blocks or slows an answer. */
#ifndef AIGW_TRACE_H_INCLUDED
#define AIGW_TRACE_H_INCLUDED

#include "aigw_config.h"
#include "aigw_envelope.h"

#include <stdbool.h>
#include <stdint.h>

//  Settings' defaults (deploy/aigw.example.yaml).
#define AIGW_TRACE_DEFAULT_SERVICE   "aigw"
#define AIGW_TRACE_DEFAULT_QUEUE_MAX 20000
#define AIGW_TRACE_DEFAULT_BATCH_MS  1000

typedef struct _aigw_trace_t aigw_trace_t;

//  A tracer for CONFIG's collector, its thread started; NULL when no
//  endpoint is set (tracing off).
aigw_trace_t *aigw_trace_new (const aigw_config_t *config);

//  Send what waits (a short deadline), stop the thread, free. Safe on NULL.
void aigw_trace_destroy (aigw_trace_t **self_p);

//  The request's trace context from the client's traceparent header
//  CLIENT (NULL or invalid: a new trace). Writes the traceparent the
//  pipeline carries (the trace id, a new span id for the request's span)
//  into TP (AIGW_TRACEPARENT_LEN + 1 bytes) and the client's span id, or
//  "", into PARENT (17 bytes). Returns true when the request's spans are
//  to be exported: the client's sampled flag, else the sample ratio.
bool aigw_trace_begin (aigw_trace_t *self, const char *client, char *tp, char *parent);

//  The request is answered: queue RECORD (taken; a usage record, its
//  route the request's stages) for export, with the client's span id
//  PARENT ("" for none), the request's start and end in Unix us, its
//  METHOD and PATH.
void aigw_trace_end (aigw_trace_t *self, aigw_envelope_t **record_p, const char *parent,
                     int64_t start_us, int64_t end_us, const char *method, const char *path);

//  Requests traced and exported, dropped (queue full), and lost (the
//  collector failed), for metrics and tests.
void aigw_trace_counts (aigw_trace_t *self, uint64_t *exported, uint64_t *dropped, uint64_t *lost);

void aigw_trace_test (bool verbose);

#endif
