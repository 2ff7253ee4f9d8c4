/*  aigw_guardout: a guardrail policy on a model's answer, as the client
    will read it: an OpenAI chat completion, an Anthropic message or an
    OpenAI Response, whole or as its SSE stream.

    The texts are the answer's content, its tool calls' arguments, its
    reasoning and refusal (Anthropic's thinking): each is checked on its own (a choice's content,
    a tool call's arguments, a content block). A stream's texts go through
    aigw_policy_stream: each is held back by the policy's hold-back and
    released as it clears, redacted where the policy says, so a match
    split across chunks is still caught and the stream and the whole
    answer get the same verdict. Events without text pass at once; an
    event that ends a text (a block's stop, a finish reason, [DONE]) comes
    after that text's last release. A block ends the stream with an error
    event in the client's format naming the guardrail, rule and policy.
    A Responses stream repeats each whole text in its .done events and in
    response.completed: those carry what was released (redacted), and its
    events are numbered again (sequence_number) as the client reads them.
    An event is read as a client reads it (every data line; with no event
    line, its data's type names it); one that cannot be read is not sent,
    and text held back goes before an error event. */
#ifndef AIGW_GUARDOUT_H_INCLUDED
#define AIGW_GUARDOUT_H_INCLUDED

#include "aigw_policy.h"

#include <stdbool.h>
#include <stddef.h>

//  The answer's format: the client's.
typedef enum {
    AIGW_GUARDOUT_CHAT,      //  OpenAI chat completions
    AIGW_GUARDOUT_MESSAGES,  //  Anthropic Messages
    AIGW_GUARDOUT_RESPONSES  //  OpenAI Responses
} aigw_guardout_format_t;

//  Most texts one answer may hold (choices × tool calls, content blocks);
//  an answer with more is blocked.
#define AIGW_GUARDOUT_TEXTS_MAX 64
//  Longest SSE event held while it arrives, bytes.
#define AIGW_GUARDOUT_EVENT_MAX (8 * 1024 * 1024)

typedef struct _aigw_guardout_t aigw_guardout_t;

//  A check of one answer under POLICY (which must outlive it), or NULL
//  when out of memory.
aigw_guardout_t *aigw_guardout_new (aigw_policy_t *policy, aigw_guardout_format_t format);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_guardout_destroy (aigw_guardout_t **self_p);

//  Check a whole answer, *BODY (*LEN bytes of JSON, malloc'ed). A redact
//  replaces *BODY and *LEN. Returns 0 when it may go (allowed, flagged or
//  redacted), 1 when blocked (see aigw_guardout_blocked), -1 when the
//  answer could not be checked (not JSON, out of memory): the caller must
//  not send it.
int aigw_guardout_answer (aigw_guardout_t *self, char **body, size_t *len);

//  Feed LEN bytes of the answer's stream (any cut); LAST when it ends
//  here. *OUT (caller frees; NULL for nothing) gets what may go to the
//  client now. Returns 0; 1 when blocked: *OUT then ends with the error
//  event and nothing more may be sent; -1 when the stream could not be
//  checked (*OUT then holds an error event to end it with).
int aigw_guardout_stream (aigw_guardout_t *self, const char *data, size_t len, bool last,
                          char **out, size_t *out_len);

//  The hits so far as "out:ACTION:GUARDRAIL:RULE" entries, comma-
//  separated ("" for none).
const char *aigw_guardout_verdict (const aigw_guardout_t *self);

//  After a block: the guardrail that blocked (the error's code) and the
//  message (names, never the matched text). NULL before.
const char *aigw_guardout_blocked (const aigw_guardout_t *self, const char **message);

void aigw_guardout_test (bool verbose);

#endif
