/*  aigw_guardset: the guardrail policies one thread uses, kept live.

    It holds the config's policies (guardrail.policies), the built-in
    `default` (aigw_policy), and, when the config names a database, the
    database's policies (table guardrail_policies, schemas/sql/010), read
    by an aigw_dbwatch on channel aigw_guardrails: a change made through
    the admin API reaches every guardset within a NOTIFY and one query.
    A new snapshot recompiles only the policies whose definition changed
    (a compiled engine is costly); a database policy that does not compile
    is logged and, if an earlier version compiled, that version keeps
    serving; the rest are unaffected.

    Names: a config policy cannot be overridden (a database row of the same
    name is ignored, logged); a database `default` overrides the built-in
    one. Bindings ({"bindings": {"keys", "tenants", "models"}} in a
    definition, config or database) map a key id, a tenant id or a model
    name to one policy; the database keeps them exclusive, and a config
    binding wins over a database one. aigw_guardset_resolve picks, in
    order: the key's policy, the tenant's, the model's, then the fallback:
    guardrail.default_policy when set ("none": no policy), else the
    operator's own `default` (config or database) when there is one, else
    none. The built-in default applies to traffic only when
    guardrail.default_policy names `default` and the operator has none.

    Single-threaded: a guardset, its policies and its connection belong to
    one actor (the engines keep scratch). */
#ifndef AIGW_GUARDSET_H_INCLUDED
#define AIGW_GUARDSET_H_INCLUDED

#include "aigw_config.h"
#include "aigw_policy.h"

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

//  The NOTIFY channel of schemas/sql/010_guardrail_policies.sql.
#define AIGW_GUARDSET_CHANNEL "aigw_guardrails"
//  The database's policies, as the watcher reads them: name, definition,
//  owning tenant ("" for a global policy).
#define AIGW_GUARDSET_SQL                                                                   \
    "SELECT name, definition::text, COALESCE (tenant_id::text, '') FROM guardrail_policies" \
    " ORDER BY name"
//  Used when the config leaves database.statement_timeout_ms at 0.
#define AIGW_GUARDSET_QUERY_TIMEOUT_MS 5000
//  Longest name of a database policy (the table's CHECK).
#define AIGW_GUARDSET_NAME_MAX 128
//  Most entries in each bindings list, and the longest entry, bytes.
#define AIGW_GUARDSET_BINDINGS_MAX    1000
#define AIGW_GUARDSET_BINDING_LEN_MAX 600
//  Longest description, bytes.
#define AIGW_GUARDSET_DESCRIPTION_MAX 1000

typedef struct _aigw_guardset_t aigw_guardset_t;

//  Where a policy comes from.
typedef enum {
    AIGW_GUARDSET_NONE = 0,  //  no such policy
    AIGW_GUARDSET_CONFIG,    //  guardrail.policies
    AIGW_GUARDSET_BUILTIN,   //  the built-in default
    AIGW_GUARDSET_DATABASE   //  guardrail_policies
} aigw_guardset_source_t;

//  Compile the config's policies and the built-in default now; watch the
//  database's when CONFIG names one (the first snapshot comes through
//  aigw_guardset_process). Returns NULL with the reason in ERR. Caller
//  owns it; CONFIG must outlive it.
aigw_guardset_t *aigw_guardset_new (const aigw_config_t *config, char *err, size_t err_size);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_guardset_destroy (aigw_guardset_t **self_p);

//  Fill ITEMS with what to poll (at most MAX): 0 or 1 item, the database
//  connection. Ask again before every poll.
int aigw_guardset_pollitems (aigw_guardset_t *self, zmq_pollitem_t *items, int max);

//  Milliseconds until aigw_guardset_process is due even if nothing is
//  ready; -1 for none.
int aigw_guardset_timeout (aigw_guardset_t *self);

//  Make progress with the COUNT items aigw_guardset_pollitems gave (their
//  revents set; COUNT 0 when it gave none, or on a timeout). Applies a new
//  snapshot when one arrived.
void aigw_guardset_process (aigw_guardset_t *self, zmq_pollitem_t *items, int count);

//  The policy named NAME, or NULL. Owned by the guardset: valid until the
//  next aigw_guardset_process.
aigw_policy_t *aigw_guardset_find (aigw_guardset_t *self, const char *name);

//  The tenant id that owns the policy named NAME (a database policy a
//  tenant's principal made), or NULL: a global, config or built-in policy,
//  or none. Valid until the next aigw_guardset_process.
const char *aigw_guardset_tenant (aigw_guardset_t *self, const char *name);

//  Where the policy named NAME comes from (AIGW_GUARDSET_NONE: none).
aigw_guardset_source_t aigw_guardset_source (aigw_guardset_t *self, const char *name);

//  The policy for a request (see above); any argument may be NULL. NULL
//  when no policy applies. Valid until the next aigw_guardset_process.
aigw_policy_t *aigw_guardset_resolve (aigw_guardset_t *self, const char *key_id,
                                      const char *tenant_id, const char *model);

//  The name of the config policy that binds VALUE in KIND ("keys",
//  "tenants" or "models"), or NULL.
const char *aigw_guardset_config_binding (aigw_guardset_t *self, const char *kind,
                                          const char *value);

//  Bumps on every applied change of the database's policies.
uint64_t aigw_guardset_version (aigw_guardset_t *self);

//  True when NAME may name a database policy: 1 to AIGW_GUARDSET_NAME_MAX
//  of A-Z a-z 0-9 . _ -, a letter or digit first, not "none".
bool aigw_guardset_name_valid (const char *name);

//  Compile the definition DEFINITION (JSON text) of policy NAME, as the
//  guardset does. NULL with the reason in ERR ("NAME: FIELD: problem",
//  never a pattern's text). Caller owns the result.
aigw_policy_t *aigw_guardset_compile (const char *name, const char *definition, char *err,
                                      size_t err_size);

//  The config's check of guardrail.default_policy (aigw_config_check_fn).
int aigw_guardset_default_check (const char *value, char *problem, size_t problem_size);

void aigw_guardset_test (bool verbose);

#endif
