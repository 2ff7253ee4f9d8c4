/*  aigw_guardrail: the input guardrail stage.

    Checks every text the model will see (system prompt, messages and
    their parts, tool calls' arguments, tool results, tool definitions;
    embedding inputs) against the config's length cap and regex deny-list,
    then against the guardrail policy that applies to the request
    (aigw_guardset: bound to its key, tenant or model, or the fallback).
    A block answers 400 guardrail_error whose code names the guardrail and
    whose message names the rule, the policy and the direction, never the
    matched text; a redact rewrites the texts in the body before the cache
    and the provider see it; a flag passes. The verdict goes into the
    envelope (gv), and the policy's name (gp) when it also checks answers:
    the edge checks the answer under it (aigw_guard_out).

    A policy with a webhook guardrail (aigw_policy.h) sends the texts, as
    the built-in detectors left them, to the webhook once those passed
    them (aigw_webhook.h holds the contract): the stage takes the request
    and answers when the webhook does, from its own loop, within the
    guardrail's timeout and the request's deadline. A refusal adds
    ACTION:webhook:RULE to the verdict (a block is 400 with code webhook;
    a redact sends the answer's texts on); a failure passes with
    flag:webhook:error (fail open) or answers 503 guardrail_unavailable
    with block:webhook:error (fail closed). A client that leaves aborts the
    call (the stage's cancel). Other requests are checked at once, as
    before. */
#ifndef AIGW_GUARDRAIL_H_INCLUDED
#define AIGW_GUARDRAIL_H_INCLUDED

#include "aigw_guardset.h"
#include "aigw_policy.h"
#include "aigw_stage.h"

extern const aigw_stage_def_t aigw_guardrail_stage;

//  Append VERDICT's hits to OUT (SIZE bytes, NUL-terminated, may hold
//  entries already) as comma-separated PREFIX ACTION:GUARDRAIL:RULE
//  entries, each rule once; whole entries only.
void aigw_guardrail_verdict (const aigw_policy_verdict_t *verdict, const char *prefix, char *out,
                             size_t size);

//  VERDICT's first hit that blocks, or NULL.
const aigw_policy_hit_t *aigw_guardrail_blocker (const aigw_policy_verdict_t *verdict);

//  The message of a block by HIT under POLICY in DIRECTION ("input" or
//  "output"): names, never the matched text.
void aigw_guardrail_block_message (const aigw_policy_hit_t *hit, const char *policy,
                                   const char *direction, char *out, size_t size);

void aigw_guardrail_test (bool verbose);

#endif
