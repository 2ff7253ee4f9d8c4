/*  aigw_actors: stage table. */
#include "aigw_actors.h"
#include "aigw_admin.h"
#include "aigw_auth.h"
#include "aigw_cache.h"
#include "aigw_guardrail.h"
#include "aigw_provider.h"
#include "aigw_ratelimit.h"
#include "aigw_respstore.h"
#include "aigw_usage.h"

static const aigw_stage_def_t *const s_defs[]
    = {&aigw_auth_stage,  &aigw_ratelimit_stage, &aigw_guardrail_stage,
       &aigw_cache_stage, &aigw_provider_stage,  &aigw_admin_stage,
       &aigw_usage_stage, &aigw_respstore_stage, NULL};

const aigw_stage_def_t *
aigw_stage_find (const char *name)
{
    for (size_t i = 0; s_defs[i]; i++)
        if (streq (name, s_defs[i]->name))
            return s_defs[i];
    return NULL;
}

const aigw_stage_def_t *const *
aigw_stage_defs (void)
{
    return s_defs;
}
