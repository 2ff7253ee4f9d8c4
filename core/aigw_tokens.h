/*  aigw_tokens: how many tokens a request will cost, before it is sent:
    the prompt's tokens, estimated from its text, and the completion's
    ceiling. The rate-limit owner reserves by it (schemas/limits.md 3);
    the real use settles the difference afterwards, so the estimate must
    be close and SHOULD err high, never wildly low. */
#ifndef AIGW_TOKENS_H_INCLUDED
#define AIGW_TOKENS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Request formats the estimator reads.
typedef enum {
    AIGW_TOKENS_CHAT = 1,        //  OpenAI chat completions
    AIGW_TOKENS_EMBEDDINGS = 2,  //  OpenAI embeddings
    AIGW_TOKENS_MESSAGES = 4,    //  Anthropic messages
    AIGW_TOKENS_RESPONSES = 8    //  OpenAI Responses (instructions and input items)
} aigw_tokens_format_t;

//  Estimated tokens of LEN bytes of UTF-8 TEXT.
int64_t aigw_tokens_text (const char *text, size_t len);

//  Estimate the request BODY (LEN bytes of JSON) of FORMAT: its prompt
//  tokens (every message's text, system prompt, tool definitions, plus
//  the format's per-message overhead) into *PROMPT, and its completion
//  ceiling into *COMPLETION: max_tokens / max_completion_tokens /
//  max_output_tokens, else DEFAULT_MAX (0 for embeddings). Returns 0, or
//  -1 when BODY is not a JSON object (both set to 0).
int aigw_tokens_estimate (aigw_tokens_format_t format, const char *body, size_t len,
                          int64_t default_max, int64_t *prompt, int64_t *completion);

void aigw_tokens_test (bool verbose);

#endif
