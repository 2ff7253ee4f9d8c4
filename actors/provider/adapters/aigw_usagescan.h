/*  aigw_usagescan: token counts from the "usage" objects of an upstream's
    answer or stream events, in OpenAI's shape (prompt, completion and
    cached tokens) or Anthropic's (input, output, cache reads and writes),
    and OpenAI Responses' (input_tokens_details.cached_tokens).

    A usage object is read by a strict scanner when it keeps to the JSON
    the upstreams send there (integers, plain strings, literals, nested
    objects of the same); anything else (floats, arrays, escapes, non-ASCII
    text, malformed JSON) is left to Jansson, so the counts are always what
    a parse would give. The parse cost a fifth of the pipeline thread's
    JSON work on a plain request. */
#ifndef AIGW_USAGESCAN_H_INCLUDED
#define AIGW_USAGESCAN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Apply every usage object in BODY (LEN bytes), in order, to *IN, *OUT
//  and *CACHED: only the counts an object has are set (an Anthropic stream
//  tells input tokens at its start and output tokens at its end). Anthropic's
//  input_tokens leaves out cache reads and writes: they are added back, as
//  both are prompt tokens. A quoted "usage" inside a string is escaped, so
//  only keys are found.
void aigw_usagescan (const char *body, size_t len, int64_t *in, int64_t *out, int64_t *cached);

//  The same with Jansson alone: the reference the strict scanner is held
//  to (tests, fuzz_messages).
void aigw_usagescan_parsed (const char *body, size_t len, int64_t *in, int64_t *out,
                            int64_t *cached);

void aigw_usagescan_test (bool verbose);

#endif
