/*  aigw_policy: a named set of guardrails with an action each, compiled
    once into one detector engine (aigw_detect), and the verdict it gives
    a text.

    A policy, as the config's guardrail.policies holds it (a mapping from
    the policy's name to this object):
        {"guardrails": [{"detector": "pii" | "secrets" | "prompt_injection"
                                     | "patterns" | "size",
                         "action": "block" | "redact" | "flag",
                         "rules": ["email", ...],       (pii, secrets,
                                                         prompt_injection:
                                                         only these rules)
                         "patterns": [{"name", "regex" | "keyword",
                                       "caseless"}],    (patterns)
                         "max_chars", "max_tokens"}]}   (size)
    The built-in `default` (pii: redact, secrets: block, prompt_injection:
    block) applies unless the config names a policy `default`.

    A verdict's action is the strongest of its triggered guardrails
    (block > redact > flag > allow); its text has every triggered match
    replaced by its placeholder, whatever the action, so a verdict never
    carries a matched secret. */
#ifndef AIGW_POLICY_H_INCLUDED
#define AIGW_POLICY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Longest policy name, bytes.
#define AIGW_POLICY_NAME_MAX 200
//  Most guardrails one policy holds.
#define AIGW_POLICY_GUARDRAILS_MAX 64
//  Most policies the config holds.
#define AIGW_POLICY_MAX 256

//  Actions, weakest first: a verdict takes the strongest.
typedef enum {
    AIGW_POLICY_ALLOW = 0,
    AIGW_POLICY_FLAG,
    AIGW_POLICY_REDACT,
    AIGW_POLICY_BLOCK
} aigw_policy_action_t;

//  One triggered guardrail: the strings are static or the policy's.
typedef struct {
    const char *guardrail;        //  detector name: "pii", "secrets", ...
    const char *rule;             //  rule within it
    aigw_policy_action_t action;  //  what this match asks for
    size_t start;                 //  first byte in the text
    size_t end;                   //  past the last byte
} aigw_policy_hit_t;

//  What a policy made of a text.
typedef struct {
    aigw_policy_action_t action;  //  the strongest triggered action
    const aigw_policy_hit_t
        *hits;        //  triggered, in order of start (the policy's, until its next check)
    size_t count;     //  entries in hits
    char *text;       //  the text with every hit redacted; caller frees
    size_t text_len;  //  its length
} aigw_policy_verdict_t;

typedef struct _aigw_policy_t aigw_policy_t;
typedef struct _aigw_policies_t aigw_policies_t;

//  Compile the policy NAME from its JSON object (see above). Returns NULL
//  with the reason in ERR (never a pattern's text). Caller owns it; one
//  per thread (the engine keeps scratch).
aigw_policy_t *aigw_policy_new (const char *name, const char *json, char *err, size_t err_size);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_policy_destroy (aigw_policy_t **self_p);

//  The policy's name.
const char *aigw_policy_name (const aigw_policy_t *self);

//  Check LEN bytes of TEXT. Returns 0 with VERDICT filled (free its text
//  with aigw_policy_verdict_free), or -1 when out of memory or a backend
//  failed.
int aigw_policy_check (aigw_policy_t *self, const char *text, size_t len,
                       aigw_policy_verdict_t *verdict);

//  Free what a verdict owns; safe twice.
void aigw_policy_verdict_free (aigw_policy_verdict_t *verdict);

//  An action's name: "allow", "flag", "redact" or "block".
const char *aigw_policy_action_name (aigw_policy_action_t action);

//  Every policy of CONFIG_JSON (guardrail.policies as JSON text, NULL for
//  none), plus the built-in default unless it names one. NULL with the
//  reason in ERR. Caller owns it; one per thread.
aigw_policies_t *aigw_policies_new (const char *config_json, char *err, size_t err_size);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_policies_destroy (aigw_policies_t **self_p);

//  The policy named NAME, or NULL.
aigw_policy_t *aigw_policies_find (aigw_policies_t *self, const char *name);

//  The config's check of guardrail.policies (aigw_config_check_fn): every
//  policy compiles. Returns 0, or -1 with PROBLEM written.
int aigw_policies_config_check (const char *value, char *problem, size_t problem_size);

void aigw_policy_test (bool verbose);

#endif
