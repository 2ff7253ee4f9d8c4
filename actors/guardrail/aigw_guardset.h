/*  aigw_guardset: the guardrail policies one thread uses, and which one
    applies to a request.

    The config's policies (guardrail.policies) and the built-in default.
    A policy is bound to keys, tenants and models by its "bindings"; a
    request gets the policy bound to its key, else to its tenant, else to
    its model, else the fallback: guardrail.default_policy when set (a
    policy's name, or "none"), else the operator's own policy named
    default, else none. The built-in default applies to traffic only when
    default_policy names it. */
#ifndef AIGW_GUARDSET_H_INCLUDED
#define AIGW_GUARDSET_H_INCLUDED

#include "aigw_config.h"
#include "aigw_policy.h"

#include <czmq.h>

typedef struct _aigw_guardset_t aigw_guardset_t;

//  Compile CONFIG's policies. NULL with the reason in ERR. One per thread.
aigw_guardset_t *aigw_guardset_new (const aigw_config_t *config, char *err, size_t err_size);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_guardset_destroy (aigw_guardset_t **self_p);

//  Poll loop share: items to poll (0 or 1), ms until due (-1: none), and
//  the work after a poll.
int aigw_guardset_pollitems (aigw_guardset_t *self, zmq_pollitem_t *items, int max);
int aigw_guardset_timeout (aigw_guardset_t *self);
void aigw_guardset_process (aigw_guardset_t *self, zmq_pollitem_t *items, int count);

//  The policy named NAME, or NULL.
aigw_policy_t *aigw_guardset_find (aigw_guardset_t *self, const char *name);

//  The policy for a request of KEY_ID, TENANT_ID and MODEL (any may be
//  NULL), or NULL when none applies.
aigw_policy_t *aigw_guardset_resolve (aigw_guardset_t *self, const char *key_id,
                                      const char *tenant_id, const char *model);

void aigw_guardset_test (bool verbose);

#endif
