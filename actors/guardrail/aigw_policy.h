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

    Each guardrail may also say "on": "input", "output" or "both" (the
    default); the built-in default checks injection on input only. A
    policy may carry "description" and "bindings": {"tenants", "keys",
    "models"}, lists of the ids and model names it applies to
    (aigw_guardset resolves them), and "holdback": the bytes a streamed
    answer is held back (16 to 65536; default 144, the longest match a
    built-in rule makes across spaces plus a lookahead, or a bounded
    pattern list's width: a shorter one gives the first token sooner;
    words are still held whole, and an open PEM block until its end, so
    only a match with spaces longer than it can get out in part).

    A webhook guardrail asks a service of the operator's own:
        {"detector": "webhook", "action": "block" | "redact" | "flag",
         "on": "input" (the default, and the only one for now),
         "url": "http(s)://host/path",
         "timeout_ms": 1 to 10000 (default 1000),
         "fail": "open" | "closed" (default closed),
         "headers": {"Name": "value"}}
    A header value may hold ${NAME} references, resolved from the
    environment when the policy compiles (unset: the policy does not
    compile); resolved values are never logged. The policy's checks here
    do not call it: the guardrail stage does (aigw_guardrail.h says the
    call's contract), and a policy holds at most one.

    A verdict's action is the strongest of its triggered guardrails
    (block > redact > flag > allow); its text has every match that asks
    for redact or block replaced by its placeholder, so it never carries
    a secret a guardrail blocks. A flagged match stays: flag changes
    nothing in what is sent. */
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

//  A webhook guardrail: longest URL, bytes; the longest timeout and the
//  default one, ms; most headers.
#define AIGW_POLICY_WEBHOOK_URL_MAX         2048
#define AIGW_POLICY_WEBHOOK_TIMEOUT_MAX     10000
#define AIGW_POLICY_WEBHOOK_TIMEOUT_DEFAULT 1000
#define AIGW_POLICY_WEBHOOK_HEADERS_MAX     16

//  Actions, weakest first: a verdict takes the strongest.
typedef enum {
    AIGW_POLICY_ALLOW = 0,
    AIGW_POLICY_FLAG,
    AIGW_POLICY_REDACT,
    AIGW_POLICY_BLOCK
} aigw_policy_action_t;

//  Directions a guardrail applies to ("on": input, output or both).
#define AIGW_POLICY_INPUT  1
#define AIGW_POLICY_OUTPUT 2
#define AIGW_POLICY_BOTH   3

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

//  A policy's webhook guardrail; the strings are the policy's.
typedef struct {
    const char *url;              //  where to POST
    aigw_policy_action_t action;  //  what a refusal asks for
    int timeout_ms;               //  longest wait for the answer
    bool fail_open;               //  an error passes (flagged) instead of failing
    const char *const *headers;   //  "Name: value" lines, resolved; NULL-terminated
} aigw_policy_webhook_t;

typedef struct _aigw_policy_t aigw_policy_t;
typedef struct _aigw_policies_t aigw_policies_t;
typedef struct _aigw_policy_stream_t aigw_policy_stream_t;

//  Compile the policy NAME from its JSON object (see above). Returns NULL
//  with the reason in ERR (never a pattern's text). Caller owns it; one
//  per thread (the engine keeps scratch).
aigw_policy_t *aigw_policy_new (const char *name, const char *json, char *err, size_t err_size);

//  Drop the caller's hold (nulls its pointer; safe twice): the last one
//  destroys it.
void aigw_policy_destroy (aigw_policy_t **self_p);

//  One more hold on SELF (returned), for a check that outlives the set's
//  next reload; drop it with aigw_policy_destroy. Holds may be dropped
//  from any thread, but the policy is used by one at a time.
aigw_policy_t *aigw_policy_ref (aigw_policy_t *self);

//  The policy's name.
const char *aigw_policy_name (const aigw_policy_t *self);

//  Check LEN bytes of TEXT. Returns 0 with VERDICT filled (free its text
//  with aigw_policy_verdict_free), or -1 when out of memory or a backend
//  failed.
int aigw_policy_check (aigw_policy_t *self, const char *text, size_t len,
                       aigw_policy_verdict_t *verdict);

//  The same for the guardrails that apply ON (AIGW_POLICY_INPUT or
//  _OUTPUT); aigw_policy_check is every guardrail's verdict.
int aigw_policy_check_on (aigw_policy_t *self, unsigned on, const char *text, size_t len,
                          aigw_policy_verdict_t *verdict);

//  SELF's webhook guardrail (on input), or NULL. Valid while SELF is.
const aigw_policy_webhook_t *aigw_policy_webhook (const aigw_policy_t *self);

//  True when a guardrail of SELF applies ON.
bool aigw_policy_watches (const aigw_policy_t *self, unsigned on);

//  A text checked as it streams (a model's answer): the policy's
//  guardrails that apply ON, over windows (aigw_detect.h), so a match
//  split across pieces is still found. POLICY must outlive the stream.
//  NULL when out of memory.
aigw_policy_stream_t *aigw_policy_stream_new (aigw_policy_t *policy, unsigned on);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_policy_stream_destroy (aigw_policy_stream_t **self_p);

//  Feed LEN more bytes of the text; MORE when it goes on. *OUT (caller
//  frees; NULL when nothing) gets the text that may now be released, with
//  redact matches replaced by their placeholders; the rest is held back
//  (the longest match plus a lookahead, and never a word cut in two).
//  VERDICT gets the strongest action so far and the hits found by this
//  feed (offsets in the whole text; its text is NULL). Once the action is
//  block nothing more is released. The whole text fed in pieces gives the
//  verdict aigw_policy_check_on gives it in one. Returns 0, or -1 when out
//  of memory or a backend failed.
int aigw_policy_stream_feed (aigw_policy_stream_t *self, const char *text, size_t len, bool more,
                             char **out, size_t *out_len, aigw_policy_verdict_t *verdict);

//  The strongest action the stream has met.
aigw_policy_action_t aigw_policy_stream_action (const aigw_policy_stream_t *self);

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
