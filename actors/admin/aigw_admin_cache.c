/*  aigw_admin_cache: the admin's cache requests, to every cache owner. */
#include "aigw_admin_cache.h"

#include <jansson.h>

int
aigw_admin_cache_envelope (aigw_host_t *host, aigw_envelope_t *env, const char *op,
                           const char *tenant, const char *model)
{
    if (env->hop + 1 != env->route_len || env->route_len >= AIGW_ROUTE_MAX)
        return -1;
    //  One shard per owner, found by probing: the owners' ids are the
    //  directory's, and a probe's owner is the one a request would reach.
    size_t room = AIGW_ROUTE_MAX - env->route_len;
    char shards[AIGW_ROUTE_MAX][16];
    const char *owners[AIGW_ROUTE_MAX];
    size_t found = 0;
    for (int i = 0; i < AIGW_ADMIN_CACHE_PROBES && found < room; i++) {
        char shard[16];
        snprintf (shard, sizeof shard, "admin-%d", i);
        const char *owner = aigw_host_shard_owner (host, "cache", shard);
        if (!owner)
            break;
        bool seen = false;
        for (size_t k = 0; k < found && !seen; k++)
            seen = streq (owners[k], owner);
        if (!seen) {
            owners[found] = owner;
            memcpy (shards[found++], shard, sizeof shard);
        }
    }
    if (found == 0) {
        snprintf (shards[0], sizeof shards[0], "admin-0");
        found = 1;
    }
    json_t *body = json_pack ("{s:s,s:s?,s:s?,s:{}}", "op", op, "tenant", tenant, "model", model,
                              "instances");
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    if (!text)
        return -1;
    aigw_envelope_take_body (env, text, strlen (text));
    char rest[AIGW_ROUTE_MAX * 17] = "";
    size_t n = 0;
    for (size_t k = 1; k < found; k++)
        n += (size_t) snprintf (rest + n, sizeof rest - n, "%s%s", k > 1 ? "," : "", shards[k]);
    if (aigw_envelope_set (&env->cache_key, shards[0])
        || aigw_envelope_set (&env->cache_control, n ? rest : NULL))
        return -1;
    for (size_t k = 0; k < found; k++)
        if (!(env->route[env->route_len++] = strdup ("cache")))
            return -1;
    return 0;
}

void
aigw_admin_cache_test (bool verbose)
{
    //  Without a directory: one hop, any shard.
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_ADMIN;
    aigw_envelope_set (&env->route[0], "auth");
    aigw_envelope_set (&env->route[1], "admin");
    env->route_len = 2;
    env->hop = 1;
    assert (aigw_admin_cache_envelope (NULL, env, "purge", "t1", NULL) == 0);
    assert (env->route_len == 3 && streq (env->route[2], "cache"));
    assert (streq (env->cache_key, "admin-0") && !env->cache_control);
    json_t *body = json_loadb (env->body, env->body_len, 0, NULL);
    assert (streq (json_string_value (json_object_get (body, "op")), "purge"));
    assert (streq (json_string_value (json_object_get (body, "tenant")), "t1"));
    assert (json_is_null (json_object_get (body, "model")) || !json_object_get (body, "model"));
    json_decref (body);
    //  Not at the last stage: refused.
    env->hop = 0;
    assert (aigw_admin_cache_envelope (NULL, env, "stats", NULL, NULL) == -1);
    aigw_envelope_destroy (&env);
    if (verbose)
        printf ("admin_cache: ok\n");
}
