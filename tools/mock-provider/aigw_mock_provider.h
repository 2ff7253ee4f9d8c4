/*  aigw_mock_provider: a local upstream for demos, tests and benchmarks
    that speaks every provider's wire format (the one fake in aigw's test
    suite: no real provider is reachable from CI). Serves, over CivetWeb, on
    127.0.0.1 only:
      openai     POST /v1/chat/completions (stream and not), POST /v1/embeddings,
                 GET /v1/models, GET /v1/models/ID
                 needs `Authorization: Bearer KEY`
      anthropic  POST /v1/messages (stream: message_start, content_block_start,
                 ping, content_block_delta..., content_block_stop,
                 message_delta, message_stop)
                 needs x-api-key (else 401) and anthropic-version (else 400)
      gemini     POST /v1beta/models/M:generateContent,
                 :streamGenerateContent (SSE with alt=sse, else one JSON
                 array of the same responses), :embedContent,
                 :batchEmbedContents
                 needs x-goog-api-key or ?key= (else 403)
      bedrock    POST /model/ID/converse, /model/ID/converse-stream
                 (application/vnd.amazon.eventstream); ID is URL-decoded
                 needs `Authorization: AWS4-HMAC-SHA256 Credential=...` and
                 X-Amz-Date (else 403); the signature is not checked
      azure      POST /openai/deployments/D/chat/completions and /embeddings
                 (OpenAI shapes; the body's model defaults to D)
                 needs api-key (else 401) and ?api-version= (else 404)
      responses  POST /v1/responses (OpenAI Responses; stream: response.created,
                 .in_progress, output_item.added, content_part.added,
                 output_text.delta..., the .done events, response.completed;
                 a tool call streams function_call_arguments.delta events)
                 needs `Authorization: Bearer KEY`
    KEY may be any non-empty key, or exactly $AIGW_MOCK_API_KEY when that is
    set (for Bearer, x-api-key, x-goog-api-key and api-key alike). Errors
    come in each format's documented shape; every 429 carries Retry-After.
    Test endpoints:
      GET  /mock/stats     {"requests","chat","stream","embeddings","in_flight",
                            "routes":{NAME: requests}}
      POST /mock/reset     zeroes the counters (not in_flight), empties the ring
      GET  /mock/requests  the last 64 requests, oldest first: [{"route","method",
                           "path","query","headers":{...},"body"}]
      GET|POST|DELETE /mock/config   per-route injection: POST {"route",
                           "latency_ms","fail_rate","fail_status","rate429",
                           "retry_after_s"} sets one route (fields left out
                           inject nothing), DELETE clears every route

    A chat reply is "Mock reply to: <last user message text>" in every
    format, streamed one word per chunk; tokens are counted as words. With
    tools declared and "mock:tool" in the last user message, the answer is a
    call of the first tool with {"city":"Paris","unit":"celsius"} (streamed
    in two argument deltas; Gemini in one event). A request ending in a tool
    result is answered "tool said: <result text>" (Gemini: the response's
    JSON). Controls in the text of the last user message (or of an
    embeddings input) steer one request:
        mock:latency=MS      delay the first byte (overrides the server's)
        mock:status=CODE     answer CODE (400..599) with the format's error body;
                             a 429 carries Retry-After: 1
        mock:chunks=N        exactly N content chunks (words repeated)
        mock:chunk_delay=MS  pause before each streamed content/finish chunk
        mock:hang            send nothing until the client goes away (max 10 min)
        mock:die_after=N     stream N content chunks, then drop the connection
                             (Bedrock: after an exception frame; not streamed:
                             half the promised body) */
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
aigw_mock_t *aigw_mock_new_threads (int port, int latency_ms, double fail_rate, int threads);

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
//  [--threads N] [--route NAME:SETTINGS]...`: prints "mock-provider listening on 127.0.0.1:PORT", runs
//  in the foreground until SIGINT or SIGTERM. Returns the exit code (2 for
//  bad flags).
int aigw_mock_provider_main (int argc, char **argv);

//  Selftest.
void aigw_mock_test (bool verbose);

#endif
