/*  aigw_mock_provider: a local OpenAI-format upstream for demos, tests and
    benchmarks (the one fake in aigw's test suite: no real provider is
    reachable from CI). Serves, over CivetWeb, on 127.0.0.1 only:
        POST /v1/chat/completions   (stream and not)
        POST /v1/embeddings
        GET  /v1/models, GET /v1/models/ID
        GET  /mock/stats            {"requests","chat","stream","embeddings","in_flight"}
        POST /mock/reset            zeroes the counters (not in_flight)
    with injected latency and failures. Every /v1 path needs
    `Authorization: Bearer KEY`: any non-empty KEY, or exactly
    $AIGW_MOCK_API_KEY when that is set.

    A chat reply is "Mock reply to: <last user message text>", streamed one
    word per chunk; tokens are counted as words. Controls in the text of the
    last user message (or of an embeddings input) steer one request:
        mock:latency=MS      delay the first byte (overrides the server's)
        mock:status=CODE     answer CODE (400..599) with an OpenAI error body;
                             a 429 carries Retry-After: 1
        mock:chunks=N        exactly N content chunks (words repeated)
        mock:chunk_delay=MS  pause before each streamed content/finish chunk
        mock:hang            send nothing until the client goes away (max 10 min)
        mock:die_after=N     stream N content chunks, then drop the connection
                             (not streamed: half the promised body) */
#ifndef AIGW_MOCK_PROVIDER_H_INCLUDED
#define AIGW_MOCK_PROVIDER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _aigw_mock_t aigw_mock_t;

//  Start on 127.0.0.1:PORT (0: an ephemeral port). LATENCY_MS delays the
//  first byte of every answer; FAIL_RATE (0..1) answers that share of
//  requests with a 500. Returns NULL if the port cannot be bound.
aigw_mock_t *aigw_mock_new (int port, int latency_ms, double fail_rate);

//  Like aigw_mock_new, with THREADS CivetWeb worker threads: each holds one
//  connection for its whole life, so THREADS caps connections in flight.
aigw_mock_t *aigw_mock_new_threads (int port, int latency_ms, double fail_rate,
                                    int threads);

//  Sets one route's injected latency and failures from SPEC, as --route
//  takes it: "NAME:latency=MS,fail=RATE,status=CODE,rate429=RATE,
//  retry_after=S" (NAME alone clears the route). Returns 0, or -1 with ERR
//  saying why.
int aigw_mock_set_route (aigw_mock_t *self, const char *spec, char *err, size_t err_size);

//  Port actually bound.
int aigw_mock_port (aigw_mock_t *self);

//  Stop and free; safe on NULL and twice.
void aigw_mock_destroy (aigw_mock_t **self_p);

//  `aigw mock-provider --port N [--latency-ms N] [--fail-rate F]
//  [--threads N]`: prints "mock-provider listening on 127.0.0.1:PORT", runs
//  in the foreground until SIGINT or SIGTERM. Returns the exit code (2 for
//  bad flags).
int aigw_mock_provider_main (int argc, char **argv);

//  Selftest.
void aigw_mock_test (bool verbose);

#endif
