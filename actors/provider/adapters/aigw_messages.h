/*  aigw_messages: the client side of POST /v1/messages. A client speaks the
    Anthropic Messages API to the gateway whatever the model's provider;
    the gateway's own format is OpenAI chat. This class turns the client's
    Anthropic request into an OpenAI chat request, and the OpenAI answer
    (a chat.completion, or chat.completion.chunk SSE events) back into an
    Anthropic message or Anthropic SSE events.

    It is the mirror of aigw_anthropic, which translates the other way for
    the Anthropic upstream. Pure functions and one small state object; no
    I/O, no logging. Nothing returned carries a credential. */
#ifndef AIGW_MESSAGES_H_INCLUDED
#define AIGW_MESSAGES_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aigw_envelope.h"

//  The limits below may be overridden at build time (-D).
//  Deepest JSON nesting accepted in a request, a response or a chunk.
#ifndef AIGW_MESSAGES_JSON_DEPTH_MAX
#define AIGW_MESSAGES_JSON_DEPTH_MAX 64
#endif
//  Largest partial SSE event the stream translator holds; past it, feed
//  fails (the upstream is not sending events).
#ifndef AIGW_MESSAGES_STREAM_PENDING_MAX
#define AIGW_MESSAGES_STREAM_PENDING_MAX (16u * 1024 * 1024)
#endif
//  Highest OpenAI tool_calls index (exclusive) one streamed answer may use.
#ifndef AIGW_MESSAGES_STREAM_TOOLS_MAX
#define AIGW_MESSAGES_STREAM_TOOLS_MAX 256
#endif

typedef struct _aigw_messages_stream_t aigw_messages_stream_t;

//  A chat request of KIND (AIGW_KIND_CHAT: an OpenAI body; MESSAGES: an
//  Anthropic one) in the gateway's chat form, a new JSON object the caller
//  owns, or NULL when BODY (LEN bytes) is not one.
json_t *aigw_messages_chat_form (aigw_kind_t kind, const char *body, size_t len);

//  The text the response cache compares and embeds, one choice for the
//  cache stage (aigw_cacheform) and the provider's embeddings call for it:
//  the last user message of ROOT (a request in the chat form) when its
//  content is plain text. Plain-text contents of ROOT's messages (a
//  string, or text parts and nothing else, joined by newlines) become
//  strings first, so an OpenAI and an Anthropic client's alike read the
//  same. Returns a new string the caller frees (its length in *LEN), or
//  NULL; with TAKE that message's content becomes null (the cache keeps its
//  place in the partition).
char *aigw_messages_cache_text (json_t *root, bool take, size_t *len);

//  Anthropic Messages request BODY (LEN bytes) as an OpenAI chat request.
//  Returns a new NUL-terminated buffer the caller owns, sets *OUT_LEN and
//  *STREAM (either may be NULL); or NULL with "field: problem" in ERR
//  (ERR_SIZE bytes, may be NULL) when the body is not a valid request.
//  Fields with no OpenAI form (top_k, thinking, ...) are dropped; thinking
//  blocks in assistant turns are dropped too. cache_control marks stay on
//  the parts, tool messages and tools they stood on (system blocks become
//  text parts then), for the adapters that carry them on.
char *aigw_messages_request_to_openai (const char *body, size_t len, size_t *out_len, bool *stream,
                                       char *err, size_t err_size);

//  OpenAI chat.completion BODY (LEN bytes) as an Anthropic message whose
//  "model" is MODEL (the body's when NULL). Returns a new NUL-terminated
//  buffer the caller owns and sets *OUT_LEN, or NULL with a reason in ERR
//  (an OpenAI error body gives its message there). Tool call arguments that
//  are not a JSON object become the input {"_raw": "<arguments as sent>"},
//  so nothing the model said is lost; empty arguments become {}.
char *aigw_messages_response_from_openai (const char *body, size_t len, const char *model,
                                          size_t *out_len, char *err, size_t err_size);

//  Anthropic error JSON {"type":"error","error":{"type":TYPE,"message":
//  MESSAGE}}: a new buffer the caller owns, *OUT_LEN set (may be NULL), or
//  NULL when out of memory. TYPE NULL means "api_error".
char *aigw_messages_error_body (const char *type, const char *message, size_t *out_len);

//  A translator for one streamed answer. MODEL and ID are what message_start
//  carries; when NULL they come from the first chunk (id "chatcmpl-X"
//  becomes "msg_X") or, failing that, are generated. NULL when out of memory.
aigw_messages_stream_t *aigw_messages_stream_new (const char *model, const char *id);

//  Feed raw OpenAI SSE bytes (split anywhere). Appends complete Anthropic
//  SSE events ("event: NAME\ndata: {json}\n\n") to *OUT, a malloc'd
//  NUL-terminated buffer that starts NULL and that the caller owns, and
//  advances *OUT_LEN. Returns 0, or -1 on a malformed stream or when out of
//  memory: an Anthropic error event is appended then and the stream is
//  done. An upstream error event becomes an Anthropic error event (0). Once
//  the stream is done, further bytes are ignored.
int aigw_messages_stream_feed (aigw_messages_stream_t *self, const char *data, size_t len,
                               char **out, size_t *out_len);

//  True once message_stop or an error event has been appended.
bool aigw_messages_stream_done (aigw_messages_stream_t *self);

//  Append an Anthropic error event of TYPE (NULL: "api_error") and MESSAGE
//  and mark the stream done; for the provider actor when the upstream dies
//  mid-stream. Appends nothing when the stream is done already. Returns 0,
//  or -1 when out of memory.
int aigw_messages_stream_error (aigw_messages_stream_t *self, const char *type, const char *message,
                                char **out, size_t *out_len);

//  Destroy the translator; safe on NULL and twice, nulls the caller's pointer.
void aigw_messages_stream_destroy (aigw_messages_stream_t **self_p);

void aigw_messages_test (bool verbose);

#endif
