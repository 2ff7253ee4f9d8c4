/*  aigw_openai: the OpenAI wire format, as the provider actor needs it:
    endpoint paths, request headers, Server-Sent Events framing and error
    bodies. Pure functions; no I/O. */
#ifndef AIGW_OPENAI_H_INCLUDED
#define AIGW_OPENAI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "aigw_envelope.h"

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
char *aigw_openai_with_model (const char *body, size_t len, const char *model,
                              size_t *out_len);

void aigw_openai_test (bool verbose);

#endif
