/*  aigw_cacheform: what the cache reads of a request and how it answers
    from what it keeps.

    A chat request, from an OpenAI client (/v1/chat/completions) or an
    Anthropic one (/v1/messages), is read in the gateway's form (the
    OpenAI chat request the provider would build). Its last user message
    is the text a lookup compares; everything else (system prompt, earlier
    turns, tools, sampling, response format, max tokens, the model and
    the tenant) is hashed into the partition key, so two requests share
    an answer only when all of that is equal. The stream flags are left
    out: a streamed and a plain request for the same thing share one.
    The answer is kept once, as an OpenAI chat.completion, and rendered
    in the asking client's shape: JSON, OpenAI chunks, or Anthropic
    Messages events, in one write (pacing off).

    Other kinds (/v1/responses, /v1/embeddings) are keyed on their own
    body and answered with the body kept, not streamed. */
#ifndef AIGW_CACHEFORM_H_INCLUDED
#define AIGW_CACHEFORM_H_INCLUDED

#include "aigw_config.h"
#include "aigw_envelope.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  Hex SHA-256: partition and exact keys.
#define AIGW_CACHE_KEY_LEN 64
//  Largest answer (stored form) the cache keeps or assembles from a stream.
#define AIGW_CACHEFORM_ANSWER_MAX (4 * 1024 * 1024)

//  A request as the cache sees it.
typedef struct {
    char partition[AIGW_CACHE_KEY_LEN + 1];  //  tenant, model, all but the last user text
    char exact[AIGW_CACHE_KEY_LEN + 1];      //  partition and the last user text
    char *text;                              //  the last user message's text, or NULL
    size_t text_len;                         //  bytes in text
    bool chat;                               //  kept as an OpenAI chat.completion
} aigw_cacheform_request_t;

//  Who makes the semantic cache's vectors under CONFIG: the router's
//  embeddings model (cache.semantic.model), "local" (the built-in
//  embedder), or "" when the cache is not semantic. A static string or
//  CONFIG's.
const char *aigw_cacheform_embedder (const aigw_config_t *config);

//  Read ENV's request (env->body, kind, tenant, model) into OUT; EMBEDDER
//  (aigw_cacheform_embedder) goes into the partition too, so vectors of
//  two embedders never meet in one. Returns 0, or -1 when the body is not
//  a request the cache can key (OUT is then empty). Free OUT with
//  aigw_cacheform_request_reset.
int aigw_cacheform_request (const aigw_envelope_t *env, const char *embedder,
                            aigw_cacheform_request_t *out);

//  Free what OUT holds; safe twice.
void aigw_cacheform_request_reset (aigw_cacheform_request_t *out);

//  ENV's reading (as aigw_cacheform_request), made once and kept on ENV
//  (its memo) for aigw_cacheform_request_take later in this process.
//  NULL when the body is not a request the cache can key.
const aigw_cacheform_request_t *aigw_cacheform_request_keep (aigw_envelope_t *env,
                                                             const char *embedder);

//  Read ENV's body ahead (its canonical form and text; the keys wait for
//  the tenant) and keep it on ENV, where the body is parsed anyway: the
//  edge's handler thread, so the pipeline's thread does not. ROOT is the
//  body parsed (taken; NULL: parse it here). Thread-safe on distinct ENVs.
void aigw_cacheform_prepare (aigw_envelope_t *env, json_t *root);

//  As aigw_cacheform_request, taking the reading kept on ENV when it is
//  one of what ENV holds now (same body, kind, tenant, model, EMBEDDER).
int aigw_cacheform_request_take (aigw_envelope_t *env, const char *embedder,
                                 aigw_cacheform_request_t *out);

//  Assemble OpenAI chat SSE (LEN bytes: chunks, a usage chunk, [DONE]) into
//  one chat.completion. Returns a NUL-terminated buffer the caller owns
//  and sets *OUT_LEN, or NULL when the stream is incomplete (no finish
//  reason), carries an error, has several choices, or is malformed.
char *aigw_cacheform_assemble (const char *sse, size_t len, size_t *out_len);

//  The client's answer from ANSWER (LEN bytes, an OpenAI chat.completion)
//  for the request REQUEST (REQUEST_LEN bytes) of KIND (CHAT or MESSAGES),
//  streamed or not; an Anthropic answer names MODEL (NULL: the answer's).
//  *CONTENT_TYPE is set to a static string. Returns a buffer the caller
//  owns and sets *OUT_LEN, or NULL when ANSWER cannot be rendered.
char *aigw_cacheform_render (aigw_kind_t kind, bool stream, const char *request, size_t request_len,
                             const char *model, const char *answer, size_t len, size_t *out_len,
                             const char **content_type);

void aigw_cacheform_test (bool verbose);

#endif
