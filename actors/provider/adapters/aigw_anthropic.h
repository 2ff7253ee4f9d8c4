/*  aigw_anthropic: translation between the OpenAI Chat Completions wire
    format (what clients send the gateway) and the Anthropic Messages API
    (what the upstream speaks): requests, whole responses, and a streaming
    translator that turns Anthropic SSE events into OpenAI chunk events.
    Pure functions and one small state object; no I/O. */
#ifndef AIGW_ANTHROPIC_H_INCLUDED
#define AIGW_ANTHROPIC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  max_tokens sent upstream when the client gave none: Anthropic requires it.
#define AIGW_ANTHROPIC_DEFAULT_MAX_TOKENS 4096
//  Most content blocks one streamed message may open; past it, feed fails.
#define AIGW_ANTHROPIC_STREAM_MAX_BLOCKS 1024

typedef struct _aigw_anthropic_stream_t aigw_anthropic_stream_t;

//  OpenAI chat request BODY (LEN bytes) as an Anthropic Messages request,
//  with "model" set to UPSTREAM_MODEL (or kept from the body when NULL).
//  Returns a new NUL-terminated buffer the caller owns and sets *OUT_LEN,
//  or NULL with a message naming the offending field in ERR (ERR_SIZE
//  bytes, may be NULL) when the input is not a valid chat request.
char *aigw_anthropic_request_from_openai (const char *body, size_t len, const char *upstream_model,
                                          size_t *out_len, char *err, size_t err_size);

//  Anthropic message response BODY (LEN bytes) as an OpenAI chat.completion
//  whose "model" is MODEL (or the upstream's when NULL). Returns a new
//  NUL-terminated buffer the caller owns and sets *OUT_LEN, or NULL with a
//  reason in ERR (an Anthropic error body gives its message there).
char *aigw_anthropic_response_to_openai (const char *body, size_t len, const char *model,
                                         size_t *out_len, char *err, size_t err_size);

//  A translator for one streamed response. MODEL and ID are what the chunks
//  carry; either may be NULL to take the upstream's from message_start.
//  Returns NULL on allocation failure. The caller owns it.
aigw_anthropic_stream_t *aigw_anthropic_stream_new (const char *model, const char *id);

//  Destroy the translator; safe on NULL and twice, nulls the caller's pointer.
void aigw_anthropic_stream_destroy (aigw_anthropic_stream_t **self_p);

//  Feed the JSON data of one Anthropic SSE event (EVENT_DATA, LEN bytes).
//  Appends zero or more complete OpenAI SSE events ("data: {...}\n\n", a
//  final "data: [DONE]\n\n" on message_stop, an OpenAI-shaped error event
//  on an error event) to *OUT, a malloc'd NUL-terminated buffer that starts
//  NULL and that the caller owns and frees, and advances *OUT_LEN. The chunk
//  that carries finish_reason also carries "usage". Returns 0, or -1 when
//  the event is not valid JSON of a known shape (*OUT is left as it was).
int aigw_anthropic_stream_feed (aigw_anthropic_stream_t *self, const char *event_data, size_t len,
                                char **out, size_t *out_len);

//  True once message_stop has been translated.
bool aigw_anthropic_stream_done (aigw_anthropic_stream_t *self);

void aigw_anthropic_test (bool verbose);

#endif
