/*  aigw_limits: the `limits` object of a key or a tenant (schemas/limits.md
    1a): its one validator, the tenant-admin's ceilings, and the compiler
    to the `lm` text auth writes into every data-plane request (4a).

    One class for every reader: the admin API checks request bodies with
    it, the config loader checks the file's limits with it (through the
    hook aigw_config_register_limits_check), and auth compiles what the
    database or the file holds, once per key or tenant version. */
#ifndef AIGW_LIMITS_H_INCLUDED
#define AIGW_LIMITS_H_INCLUDED

#include "aigw_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Largest count a limit takes (rpm, rpd, tpm, concurrency): the
//  api_keys columns are 32-bit integers.
#define AIGW_LIMITS_COUNT_MAX 2147483647LL
//  Largest budget in USD: its nano-USD must fit in 63 bits.
#define AIGW_LIMITS_USD_MAX 9000000000.0
//  Decimals a budget's usd may have.
#define AIGW_LIMITS_USD_DECIMALS 6
//  Longest Nd period, in days (ten years).
#define AIGW_LIMITS_PERIOD_DAYS_MAX 3660
//  Most models one limits object names, and the longest model name.
#define AIGW_LIMITS_MODELS_MAX     256
#define AIGW_LIMITS_MODEL_NAME_MAX 200
//  Sizes of an error's field path and message.
#define AIGW_LIMITS_PARAM_MAX   256
#define AIGW_LIMITS_MESSAGE_MAX 256

//  A refusal: the offending field's path ("limits.models.gpt-4o.rpm") and
//  a message that never quotes more than a field name.
typedef struct {
    char param[AIGW_LIMITS_PARAM_MAX];      //  field path
    char message[AIGW_LIMITS_MESSAGE_MAX];  //  human text
} aigw_limits_error_t;

//  Values folded into a key's level for each kind it leaves unset
//  (ratelimit.default, ratelimit.default_rpm); 0 = none.
typedef struct {
    int64_t rpm;          //  requests per minute
    int64_t rpd;          //  requests per UTC day
    int64_t tpm;          //  tokens per minute
    int64_t concurrency;  //  requests in flight
} aigw_limits_defaults_t;

//  The defaults the config sets (ratelimit.default, else
//  ratelimit.default_rpm for rpm) into OUT.
void aigw_limits_defaults (const aigw_config_t *config, aigw_limits_defaults_t *out);

//  One level's limits, compiled.
typedef struct _aigw_limits_t aigw_limits_t;

//  Check LIMITS (any JSON value: it must be an object or null) as limits.md
//  1a says: known members, integers >= 1, a budget {usd, period, reset},
//  per-model limits one level deep. FIELD names it in errors ("limits").
//  Returns 0, or -1 with ERR filled.
int aigw_limits_check (json_t *limits, const char *field, aigw_limits_error_t *err);

//  A copy of LIMITS (checked) without its null members, at every level; an
//  empty object for null. Caller owns it; NULL on allocation failure.
json_t *aigw_limits_clean (json_t *limits);

//  Check that every value LIMITS (checked, clean) sets is within CEILING's
//  (a tenant's limits, checked; NULL = none): a count within the ceiling's
//  of the same kind, a model's within the ceiling's for that model and its
//  top level, a budget within a ceiling budget of the same period. Returns
//  0, or -1 with ERR naming the first value above (FIELD its prefix).
int aigw_limits_within (json_t *limits, json_t *ceiling, const char *field,
                        aigw_limits_error_t *err);

//  Compile LIMITS (JSON text of an object, or NULL / "" for none) with
//  DEFAULTS folded into the top level (NULL: none). Returns the compiled
//  limits, or NULL with ERR filled when the text is not valid limits.
aigw_limits_t *aigw_limits_new (const char *text, const aigw_limits_defaults_t *defaults,
                                aigw_limits_error_t *err);

//  Destroy; safe on NULL and twice.
void aigw_limits_destroy (aigw_limits_t **self_p);

//  The top level as lm limits ("rpm:100,usd:5000000000/month"), "" when
//  none. Owned by SELF.
const char *aigw_limits_level (const aigw_limits_t *self);

//  The limits for MODEL as lm limits, or NULL when it has none. Owned by
//  SELF.
const char *aigw_limits_model (const aigw_limits_t *self, const char *model);

//  The top level's requests per minute, 0 when none.
int64_t aigw_limits_rpm (const aigw_limits_t *self);

//  The lm text for a request for MODEL (may be NULL) of a key with KEY's
//  limits and a tenant with TENANT's (either may be NULL): "k=...;t=...;
//  km=...;tm=...", empty levels left out. Returns a string the caller
//  frees, or NULL when no limit applies.
char *aigw_limits_lm (const aigw_limits_t *key, const aigw_limits_t *tenant, const char *model);

//  Most limits aigw_limits_lm_report writes: the rate-limit owner's
//  AIGW_RL_LIMITS_MAX (an lm with more is malformed to it).
#define AIGW_LIMITS_REPORT_MAX 64

//  The lm text for GET rate-limits (limits.md 7): KEY's and TENANT's top
//  levels, then "km:MODEL=..." and "tm:MODEL=..." for each model they
//  limit, sorted, as many as fit in AIGW_LIMITS_REPORT_MAX limits. Returns
//  a string the caller frees, or NULL when no limit applies.
char *aigw_limits_lm_report (const aigw_limits_t *key, const aigw_limits_t *tenant);

//  aigw_config_check_fn for the config file's limits (JSON text): the same
//  checks, the problem naming the member.
int aigw_limits_config_check (const char *text, char *problem, size_t problem_size);

void aigw_limits_test (bool verbose);

#endif
