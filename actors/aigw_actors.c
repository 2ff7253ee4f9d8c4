/*  aigw_actors: actor table. */
#include "aigw_actors.h"
#include "aigw_admin.h"
#include "aigw_auth.h"
#include "aigw_cache.h"
#include "aigw_guardrail.h"
#include "aigw_provider.h"
#include "aigw_ratelimit.h"

const char *aigw_actor_names[] = {"auth",     "ratelimit", "guardrail", "cache",
                                  "provider", "admin",     NULL};

zactor_t *
aigw_actor_start (const char *name, aigw_stage_args_t *args)
{
    args->def = NULL;
    if (streq (name, "provider"))
        return zactor_new (aigw_provider_actor, args);
    if (streq (name, "auth"))
        return zactor_new (aigw_auth_actor, args);
    if (streq (name, "admin"))
        return zactor_new (aigw_admin_actor, args);
    const aigw_stage_def_t *defs[]
        = {&aigw_ratelimit_stage, &aigw_guardrail_stage, &aigw_cache_stage};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (streq (name, defs[i]->name)) {
            args->def = defs[i];
            return zactor_new (aigw_stage_actor, args);
        }
    return NULL;
}
