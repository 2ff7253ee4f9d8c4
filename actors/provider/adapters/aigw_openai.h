/*  aigw_openai: the OpenAI wire format, as the provider actor needs it:
    endpoint paths, request headers, Server-Sent Events framing and error
    bodies. Pure functions; no I/O. */
#ifndef AIGW_OPENAI_H_INCLUDED
#define AIGW_OPENAI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "aigw_adapter.h"
#include "aigw_envelope.h"

//  Largest SSE event a stream may hold unfinished; past it the stream fails.
#define AIGW_OPENAI_SSE_EVENT_MAX (16 * 1024 * 1024)

//  Path below the base URL for a request kind, or NULL if the provider has
//  no such endpoint.
const char *aigw_openai_path (aigw_kind_t kind);

//  Find the end of the first complete SSE event in DATA (LEN bytes): the
//  index just past its blank line ("\n\n" or "\r\n\r\n"), or 0 when no
//  event is complete yet.
size_t aigw_openai_sse_event_end (const char *data, size_t len);

//  True when the event (as split above) is the stream's `data: [DONE]`.
bool aigw_openai_sse_is_done (const char *event, size_t len);

//  The error message inside an OpenAI error body ({"error":{"message"}}),
//  as a new string the caller owns, or NULL.
char *aigw_openai_error_message (const char *body, size_t len);

//  Body with its "model" replaced by MODEL: a new buffer the caller owns,
//  or NULL when the body is not a JSON object.
char *aigw_openai_with_model (const char *body, size_t len, const char *model, size_t *out_len);

//  The adapter's request builder, shared with Azure: URL as given, KEY_HEADER
//  set to KEY_VALUE when that is non-empty, BODY's model set to UP->model.
int aigw_openai_build (const aigw_upstream_t *up, const char *url, const char *key_header,
                       const char *key_value, const char *body, size_t len,
                       aigw_upstream_request_t *out, char *err, size_t err_size);

//  The OpenAI adapter's answer and stream functions (see aigw_adapter_t),
//  shared with Azure: answers are copied as they came and SSE events are
//  passed through whole.
char *aigw_openai_response (aigw_kind_t kind, const char *body, size_t len, const char *model,
                            size_t *out_len, char *err, size_t err_size);
aigw_adapter_stream_t *aigw_openai_stream_new (const char *model, const char *id);
int aigw_openai_stream_feed (aigw_adapter_stream_t *self, const char *data, size_t len, char **out,
                             size_t *out_len, char *err, size_t err_size);
bool aigw_openai_stream_done (aigw_adapter_stream_t *self);
void aigw_openai_stream_destroy (aigw_adapter_stream_t **self_p);

void aigw_openai_test (bool verbose);

#endif
