/*  aigw_webhook: the webhook guardrail's HTTP client, and its contract.

    One client per stage instance (one thread): a curl multi handle whose
    sockets sit in one epoll set, driven from the owner's poll loop through
    aigw_webhook_pollitems / _timeout / _process, as the provider stage
    drives its upstream calls. A call never blocks the loop; its result
    comes to a callback from aigw_webhook_process.

    The contract, as the guardrail stage speaks it (docs/troubleshooting.md
    shows it too). The gateway POSTs, with Content-Type application/json
    and the guardrail's headers:
        {"text": "every text joined, as the policy's detectors see them",
         "texts": ["each text the model will see", ...],
         "direction": "input", "policy": "NAME", "model": "MODEL",
         "tenant_id": "ID" | null, "request_id": "ID"}
    and reads a 2xx answer:
        {"allowed": true | false,
         "action": "block" | "redact" | "flag",     (optional)
         "rule": "name",                            (optional: 1 to 64 of
                                                     A-Z a-z 0-9 _ . -)
         "texts": ["replacement for each text"]}    (optional; as many as
                                                     were sent)
    Other members are ignored. Anything else (not JSON, no boolean
    allowed, an unknown action, a bad rule, texts of the wrong count or
    type, a body over AIGW_WEBHOOK_ANSWER_MAX) is an unreadable answer,
    which the stage treats as it treats a timeout, a refused connection
    or a non-2xx status: per the guardrail's "fail". */
#ifndef AIGW_WEBHOOK_H_INCLUDED
#define AIGW_WEBHOOK_H_INCLUDED

#include "aigw_policy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

//  Largest answer read, bytes (replacement texts are as long as the
//  request's).
#define AIGW_WEBHOOK_ANSWER_MAX (16 * 1024 * 1024)
//  Longest rule name in an answer, bytes.
#define AIGW_WEBHOOK_RULE_MAX 64
//  The rule a refusal names when the answer names none.
#define AIGW_WEBHOOK_RULE_DEFAULT "denied"
//  Most sockets one pass of aigw_webhook_process acts on.
#define AIGW_WEBHOOK_EPOLL_BATCH 64

typedef struct _aigw_webhook_t aigw_webhook_t;
typedef struct _aigw_webhook_call_t aigw_webhook_call_t;

//  How a call ended.
typedef enum {
    AIGW_WEBHOOK_ANSWERED = 0,  //  a 2xx status; the body is the answer
    AIGW_WEBHOOK_STATUS,        //  another status
    AIGW_WEBHOOK_TIMEOUT,       //  no whole answer within the call's time
    AIGW_WEBHOOK_FAILED         //  no connection, a broken one, a body too large
} aigw_webhook_outcome_t;

//  A call's result, valid during the callback only.
typedef struct {
    aigw_webhook_outcome_t outcome;  //  how it ended
    int status;                      //  HTTP status, 0 when none came
    const char *body;                //  the answer's bytes (NUL-terminated)
    size_t body_len;                 //  their length
    const char *reason;              //  why it failed, for the log (no URL, no header)
} aigw_webhook_result_t;

//  A call is over: RESULT says how; ARG is the caller's. The call is freed
//  after it returns.
typedef void (aigw_webhook_done_fn) (void *arg, const aigw_webhook_result_t *result);

//  An answer, read.
typedef struct {
    bool allowed;                          //  the text may go on
    bool has_action;                       //  the answer named an action
    aigw_policy_action_t action;           //  that action
    char rule[AIGW_WEBHOOK_RULE_MAX + 1];  //  the rule, or the default
    json_t *texts;                         //  replacements (an array of strings), or NULL
} aigw_webhook_answer_t;

//  A client with no call. NULL when out of memory. Caller owns it.
aigw_webhook_t *aigw_webhook_new (void);

//  Destroy, dropping every call without its callback; safe twice, nulls
//  the caller's pointer.
void aigw_webhook_destroy (aigw_webhook_t **self_p);

//  POST BODY (LEN bytes, copied) to URL with HEADERS ("Name: value" lines,
//  NULL-terminated, may be NULL; copied), giving up after TIMEOUT_MS (at
//  least 1). DONE gets the result from a later aigw_webhook_process, once.
//  Returns the call (the client's, until DONE or aigw_webhook_cancel), or
//  NULL when it could not start.
aigw_webhook_call_t *aigw_webhook_post (aigw_webhook_t *self, const char *url,
                                        const char *const *headers, const char *body, size_t len,
                                        long timeout_ms, aigw_webhook_done_fn *done, void *arg);

//  Abort *CALL_P now, without its callback; nulls it. Never call it from
//  that call's own callback.
void aigw_webhook_cancel (aigw_webhook_t *self, aigw_webhook_call_t **call_p);

//  Calls under way.
size_t aigw_webhook_active (aigw_webhook_t *self);

//  Fill ITEMS with what to poll (at most MAX): 0 or 1 item, the epoll set
//  of the calls' sockets.
int aigw_webhook_pollitems (aigw_webhook_t *self, zmq_pollitem_t *items, int max);

//  Milliseconds until aigw_webhook_process is due even if nothing is
//  ready; -1 for none.
int aigw_webhook_timeout (aigw_webhook_t *self);

//  Make progress with the COUNT items aigw_webhook_pollitems gave (COUNT 0
//  on a timeout), and call back every call that ended.
void aigw_webhook_process (aigw_webhook_t *self, zmq_pollitem_t *items, int count);

//  Read an answer of LEN bytes to a call that sent TEXTS texts (see above).
//  Returns 0 with ANSWER filled (free it with aigw_webhook_answer_free),
//  or -1 with the reason in ERR (never the answer's text).
int aigw_webhook_parse (const char *body, size_t len, size_t texts, aigw_webhook_answer_t *answer,
                        char *err, size_t err_size);

//  Free what ANSWER holds; safe twice.
void aigw_webhook_answer_free (aigw_webhook_answer_t *answer);

void aigw_webhook_test (bool verbose);

#endif
