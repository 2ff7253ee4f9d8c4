/*  aigw_responses: the client side of POST /v1/responses (OpenAI's
    Responses API). A client speaks Responses to the gateway whatever the
    model's provider; the gateway's own format is OpenAI chat. This class
    turns a Responses request into an OpenAI chat request, and the chat
    answer (a chat.completion, or chat.completion.chunk SSE events) back
    into a Response object or the Responses event stream.

    The sibling of aigw_messages (the same job for /v1/messages). Pure
    functions and one small state object; no I/O, no logging. Nothing
    returned carries a credential. */
#ifndef AIGW_RESPONSES_H_INCLUDED
#define AIGW_RESPONSES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "aigw_adapter.h"

//  The limits below may be overridden at build time (-D).
//  Deepest JSON nesting accepted in a request, a response or a chunk.
#ifndef AIGW_RESPONSES_JSON_DEPTH_MAX
#define AIGW_RESPONSES_JSON_DEPTH_MAX 64
#endif
//  Largest partial SSE event the stream translator holds; past it, feed
//  fails (the upstream is not sending events).
#ifndef AIGW_RESPONSES_STREAM_PENDING_MAX
#define AIGW_RESPONSES_STREAM_PENDING_MAX (16u * 1024 * 1024)
#endif
//  Highest OpenAI tool_calls index (exclusive) one streamed answer may use.
#ifndef AIGW_RESPONSES_STREAM_TOOLS_MAX
#define AIGW_RESPONSES_STREAM_TOOLS_MAX 128
#endif
//  Room for the name of the offending field (OpenAI's "param").
#define AIGW_RESPONSES_PARAM_MAX 96

typedef struct _aigw_responses_stream_t aigw_responses_stream_t;

//  Responses request BODY (LEN bytes) as an OpenAI chat request. Returns a
//  new NUL-terminated buffer the caller owns, sets *OUT_LEN and *STREAM
//  (either may be NULL); or NULL with the offending field in PARAM
//  (PARAM_SIZE bytes, "" when the body as a whole) and OpenAI-style text
//  in ERR when the body is not a valid request or asks for what the
//  gateway cannot translate (built-in tools, stored items). A stream asks
//  for usage (stream_options.include_usage) so response.completed has it.
char *aigw_responses_request_to_openai (const char *body, size_t len, size_t *out_len, bool *stream,
                                        char *param, size_t param_size, char *err, size_t err_size);

//  The same for a follow-up turn whose previous_response_id the responses
//  stage has resolved: its "input" already holds the stored conversation,
//  so previous_response_id is accepted (a string, echoed in the answer)
//  instead of refused.
char *aigw_responses_followup_to_openai (const char *body, size_t len, size_t *out_len,
                                         bool *stream, char *param, size_t param_size, char *err,
                                         size_t err_size);

//  A resolved follow-up BODY (LEN bytes, see above; its input's first
//  HISTORY items are the stored conversation) for an upstream's own
//  /v1/responses: with KEEP_PREVIOUS (the deployment that answered the
//  previous turn, which keeps it) only this turn's items and
//  previous_response_id; else the whole conversation without
//  previous_response_id. A new buffer the caller owns, *OUT_LEN set; NULL
//  when BODY is not such a request or out of memory.
char *aigw_responses_previous_body (const char *body, size_t len, size_t history,
                                    bool keep_previous, size_t *out_len);

//  OpenAI chat.completion BODY (LEN bytes) as a Response object whose
//  "model" is MODEL (the body's when NULL), echoing the settings of the
//  Responses REQUEST (REQUEST_LEN bytes). Returns a new NUL-terminated
//  buffer the caller owns and sets *OUT_LEN, or NULL with a reason in ERR.
char *aigw_responses_response_from_openai (const char *request, size_t request_len,
                                           const char *body, size_t len, const char *model,
                                           size_t *out_len, char *err, size_t err_size);

//  Build the pass-through request of a Responses client to an upstream
//  that has /v1/responses itself (OpenAI): BODY with UP's model, to UP's
//  base URL + "/responses", with its bearer key. 0, or -1 with ERR.
int aigw_responses_passthrough (const aigw_upstream_t *up, const char *body, size_t len,
                                aigw_upstream_request_t *out, char *err, size_t err_size);

//  What whole Responses SSE events in DATA (LEN bytes) tell a pass-through:
//  sets *DONE when one ends the response (response.completed, .incomplete
//  or .failed), *FAILED on an error event, and adds the events to *EVENTS
//  (the next sequence number, for an error event of our own).
void aigw_responses_passthrough_scan (const char *data, size_t len, bool *done, bool *failed,
                                      long *events);

//  Append the Responses "error" event, SEQUENCE its number, with CODE and
//  MESSAGE to *OUT (a malloc'd buffer that starts NULL). 0, or -1 when out
//  of memory. For a pass-through stream that fails after its start.
int aigw_responses_error_event (long sequence, const char *code, const char *message, char **out,
                                size_t *out_len);

//  A translator for one streamed answer to the Responses REQUEST
//  (REQUEST_LEN bytes), its events naming MODEL. NULL when out of memory
//  or REQUEST is not a JSON object.
aigw_responses_stream_t *aigw_responses_stream_new (const char *request, size_t request_len,
                                                    const char *model);

//  Feed raw OpenAI SSE bytes (split anywhere). Appends complete Responses
//  events ("event: TYPE\ndata: {json}\n\n", each with its sequence_number)
//  to *OUT, a malloc'd NUL-terminated buffer that starts NULL and that the
//  caller owns, and advances *OUT_LEN. Returns 0, or -1 on a malformed
//  stream or when out of memory: an error event and response.failed are
//  appended then and the stream is done. An upstream error event becomes
//  the same pair (0). Once the stream is done, further bytes are ignored.
int aigw_responses_stream_feed (aigw_responses_stream_t *self, const char *data, size_t len,
                                char **out, size_t *out_len);

//  True once response.completed, .incomplete or .failed has been appended.
bool aigw_responses_stream_done (aigw_responses_stream_t *self);

//  Append an error event with CODE and MESSAGE and response.failed, and
//  mark the stream done; for the provider actor when the upstream dies
//  mid-stream. Appends nothing when the stream is done already. 0 or -1.
int aigw_responses_stream_error (aigw_responses_stream_t *self, const char *code,
                                 const char *message, char **out, size_t *out_len);

//  Destroy the translator; safe on NULL and twice, nulls the caller's pointer.
void aigw_responses_stream_destroy (aigw_responses_stream_t **self_p);

void aigw_responses_test (bool verbose);

#endif
