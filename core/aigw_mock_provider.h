/*  aigw_mock_provider: a local OpenAI-format upstream for demos, tests and
    benchmarks (the one fake in aigw's test suite: no real provider is
    reachable from CI). Serves, over CivetWeb:
        POST /v1/chat/completions   (stream and not)
        POST /v1/embeddings
        GET  /v1/models
    with injected latency and failures. */
#ifndef AIGW_MOCK_PROVIDER_H_INCLUDED
#define AIGW_MOCK_PROVIDER_H_INCLUDED

#include <stdbool.h>

typedef struct _aigw_mock_t aigw_mock_t;

//  Start on 127.0.0.1:PORT (0: an ephemeral port). LATENCY_MS delays the
//  first byte of every answer; FAIL_RATE (0..1) answers that share of
//  requests with a 500. Returns NULL if the port cannot be bound.
aigw_mock_t *aigw_mock_new (int port, int latency_ms, double fail_rate);

//  Port actually bound.
int aigw_mock_port (aigw_mock_t *self);

//  Stop and free; safe on NULL and twice.
void aigw_mock_destroy (aigw_mock_t **self_p);

//  `aigw mock-provider --port N [--latency-ms N] [--fail-rate F]`: runs in
//  the foreground until SIGINT or SIGTERM. Returns the process exit code.
int aigw_mock_provider_main (int argc, char **argv);

void aigw_mock_test (bool verbose);

#endif
