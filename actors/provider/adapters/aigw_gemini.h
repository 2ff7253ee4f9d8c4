/*  aigw_gemini: translation between the OpenAI Chat Completions and
    Embeddings wire formats (what clients send the gateway) and Google
    Gemini (generateContent, batchEmbedContents and their answers), plus a
    streaming translator that turns the JSON of each streamed Gemini event
    into OpenAI chunk events. Pure functions and one small state object; no
    I/O, no logging. aigw_gemini_adapter builds the upstream request around
    these bodies and splits the upstream's SSE into events. */
#ifndef AIGW_GEMINI_H_INCLUDED
#define AIGW_GEMINI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Largest request or response body the translator parses, in bytes.
#define AIGW_GEMINI_BODY_MAX (32u * 1024 * 1024)
//  Most tool calls one answer (or one stream) may carry.
#define AIGW_GEMINI_TOOL_CALLS_MAX 1024
//  Most candidates translated into choices from one answer.
#define AIGW_GEMINI_CHOICES_MAX 16
//  Prefix of a Gemini model's resource name ("models/gemini-2.0-flash").
#define AIGW_GEMINI_MODEL_PREFIX "models/"

typedef struct _aigw_gemini_stream_t aigw_gemini_stream_t;

//  OpenAI chat request BODY (LEN bytes) as a Gemini generateContent body.
//  Returns a new NUL-terminated buffer the caller owns and sets *OUT_LEN,
//  or NULL with a message naming the offending field in ERR (ERR_SIZE
//  bytes, may be NULL) when the input is not a valid chat request.
char *aigw_gemini_request_from_openai (const char *body, size_t len, size_t *out_len, char *err,
                                       size_t err_size);

//  OpenAI embeddings request BODY as a Gemini batchEmbedContents body for
//  the upstream MODEL (without the "models/" prefix). Returns as
//  aigw_gemini_request_from_openai.
char *aigw_gemini_embeddings_from_openai (const char *body, size_t len, const char *model,
                                          size_t *out_len, char *err, size_t err_size);

//  Gemini generateContent answer BODY as an OpenAI chat.completion whose
//  "model" is MODEL (or the upstream's modelVersion when NULL). Returns a
//  new buffer the caller owns and sets *OUT_LEN, or NULL with a reason in
//  ERR (a Gemini error body gives its message there).
char *aigw_gemini_response_to_openai (const char *body, size_t len, const char *model,
                                      size_t *out_len, char *err, size_t err_size);

//  Gemini batchEmbedContents answer BODY as an OpenAI embeddings list
//  naming MODEL. Returns as aigw_gemini_response_to_openai.
char *aigw_gemini_embeddings_to_openai (const char *body, size_t len, const char *model,
                                        size_t *out_len, char *err, size_t err_size);

//  A translator for one streamed answer whose chunks name MODEL and ID
//  (made up when NULL). Returns NULL on allocation failure. The caller
//  owns it.
aigw_gemini_stream_t *aigw_gemini_stream_new (const char *model, const char *id);

//  Destroy the translator; safe on NULL and twice, nulls the caller's pointer.
void aigw_gemini_stream_destroy (aigw_gemini_stream_t **self_p);

//  Feed the JSON data of one streamed Gemini event (EVENT_DATA, LEN
//  bytes). Appends zero or more complete OpenAI SSE events to *OUT, a
//  malloc'd NUL-terminated buffer that starts NULL and that the caller
//  owns, and advances *OUT_LEN; the event with finishReason (or a blocked
//  prompt) adds the usage chunk and [DONE]. Events after that are ignored.
//  Returns 0, or -1 with ERR on a malformed event or an upstream error
//  event: an OpenAI-shaped error event and [DONE] are then appended.
int aigw_gemini_stream_feed (aigw_gemini_stream_t *self, const char *event_data, size_t len,
                             char **out, size_t *out_len, char *err, size_t err_size);

//  True once [DONE] has been appended (after the answer or a failure).
bool aigw_gemini_stream_done (aigw_gemini_stream_t *self);

void aigw_gemini_test (bool verbose);

#endif
