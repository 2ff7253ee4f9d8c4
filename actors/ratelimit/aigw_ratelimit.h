/*  aigw_ratelimit: the rate-limit stage (schemas/limits.md). Sharded by
    tenant, so one worker owns every counter of a tenant and its keys and
    checks all the limits of a request in one step (aigw_rlengine): it
    reserves, or answers 429 with Retry-After; the edge's settle replaces
    the reservation with the real use. With a database the owner snapshots
    its counters (ratelimit_state) and reads a tenant's back, and its
    budgets' spend from usage_rollups, before it answers the tenant's first
    request. It also answers GET rate-limits for the admin actor. */
#ifndef AIGW_RATELIMIT_H_INCLUDED
#define AIGW_RATELIMIT_H_INCLUDED

#include "aigw_stage.h"

extern const aigw_stage_def_t aigw_ratelimit_stage;

void aigw_ratelimit_test (bool verbose);

#endif
