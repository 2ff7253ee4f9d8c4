/*  aigw_actors: stage table. */
#include "aigw_actors.h"
#include "aigw_admin.h"
#include "aigw_auth.h"
#include "aigw_cache.h"
#include "aigw_guardrail.h"
#include "aigw_provider.h"
#include "aigw_ratelimit.h"

const aigw_stage_def_t *
aigw_stage_find (const char *name)
{
    const aigw_stage_def_t *defs[]
        = {&aigw_auth_stage,     &aigw_ratelimit_stage, &aigw_guardrail_stage,
           &aigw_cache_stage,    &aigw_provider_stage,  &aigw_admin_stage};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (streq (name, defs[i]->name))
            return defs[i];
    return NULL;
}
