/*  aigw_guardset: the policies one thread uses. See aigw_guardset.h. */
#include "aigw_guardset.h"

#include <jansson.h>

struct _aigw_guardset_t {
    aigw_policies_t *policies;  //  the config's, and the built-in default
    zhashx_t *keys;             //  key id -> policy name (bindings)
    zhashx_t *tenants;          //  tenant id -> policy name
    zhashx_t *models;           //  model -> policy name
    char *fallback;             //  the operator's default, or NULL
};

void
aigw_guardset_destroy (aigw_guardset_t **self_p)
{
    aigw_guardset_t *self = *self_p;
    if (!self)
        return;
    aigw_policies_destroy (&self->policies);
    zhashx_destroy (&self->keys);
    zhashx_destroy (&self->tenants);
    zhashx_destroy (&self->models);
    free (self->fallback);
    free (self);
    *self_p = NULL;
}

//  Bind each name of LIST to POLICY in MAP.
static void
s_bind (zhashx_t *map, json_t *list, const char *policy)
{
    size_t i;
    json_t *name;
    json_array_foreach (list, i, name) {
        if (json_is_string (name))
            zhashx_insert (map, json_string_value (name), (void *) policy);
    }
}

aigw_guardset_t *
aigw_guardset_new (const aigw_config_t *config, char *err, size_t err_size)
{
    aigw_guardset_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->policies = aigw_policies_new (config->guardrail_policies, err, err_size);
    self->keys = zhashx_new ();
    self->tenants = zhashx_new ();
    self->models = zhashx_new ();
    if (!self->policies || !self->keys || !self->tenants || !self->models) {
        aigw_guardset_destroy (&self);
        return NULL;
    }
    json_t *all
        = config->guardrail_policies ? json_loads (config->guardrail_policies, 0, NULL) : NULL;
    const char *name;
    json_t *policy;
    json_object_foreach (all, name, policy) {
        //  The names live as long as the compiled policies.
        aigw_policy_t *compiled = aigw_policies_find (self->policies, name);
        const char *kept = compiled ? aigw_policy_name (compiled) : NULL;
        json_t *bindings = json_object_get (policy, "bindings");
        if (kept) {
            s_bind (self->keys, json_object_get (bindings, "keys"), kept);
            s_bind (self->tenants, json_object_get (bindings, "tenants"), kept);
            s_bind (self->models, json_object_get (bindings, "models"), kept);
        }
        if (strcmp (name, "default") == 0)
            self->fallback = strdup (name);
    }
    json_decref (all);
    return self;
}

int
aigw_guardset_pollitems (aigw_guardset_t *self, zmq_pollitem_t *items, int max)
{
    (void) self, (void) items, (void) max;
    return 0;
}

int
aigw_guardset_timeout (aigw_guardset_t *self)
{
    (void) self;
    return -1;
}

void
aigw_guardset_process (aigw_guardset_t *self, zmq_pollitem_t *items, int count)
{
    (void) self, (void) items, (void) count;
}

aigw_policy_t *
aigw_guardset_find (aigw_guardset_t *self, const char *name)
{
    return aigw_policies_find (self->policies, name);
}

aigw_policy_t *
aigw_guardset_resolve (aigw_guardset_t *self, const char *key_id, const char *tenant_id,
                       const char *model)
{
    const char *name = key_id ? zhashx_lookup (self->keys, key_id) : NULL;
    if (!name && tenant_id)
        name = zhashx_lookup (self->tenants, tenant_id);
    if (!name && model)
        name = zhashx_lookup (self->models, model);
    if (!name)
        name = self->fallback;
    return name ? aigw_policies_find (self->policies, name) : NULL;
}

void
aigw_guardset_test (bool verbose)
{
    char err[256];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    aigw_guardset_t *self = aigw_guardset_new (config, err, sizeof err);
    assert (self);
    //  The built-in default is there to find, but applies to nothing.
    assert (aigw_guardset_find (self, "default"));
    assert (!aigw_guardset_resolve (self, "k", "t", "m"));
    aigw_guardset_destroy (&self);
    config->guardrail_policies
        = strdup ("{\"team\": {\"bindings\": {\"tenants\": [\"t1\"], \"keys\": [\"k2\"]},"
                  " \"guardrails\": [{\"detector\": \"pii\", \"action\": \"flag\"}]},"
                  " \"gpt\": {\"bindings\": {\"models\": [\"gpt-4o\"]},"
                  " \"guardrails\": [{\"detector\": \"pii\", \"action\": \"block\"}]},"
                  " \"default\": {\"guardrails\": [{\"detector\": \"secrets\", \"action\": "
                  "\"block\"}]}}");
    self = aigw_guardset_new (config, err, sizeof err);
    assert (self);
    assert (streq (aigw_policy_name (aigw_guardset_resolve (self, "k2", "t9", "gpt-4o")), "team"));
    assert (streq (aigw_policy_name (aigw_guardset_resolve (self, "k1", "t1", "gpt-4o")), "team"));
    assert (streq (aigw_policy_name (aigw_guardset_resolve (self, "k1", "t2", "gpt-4o")), "gpt"));
    assert (streq (aigw_policy_name (aigw_guardset_resolve (self, NULL, NULL, "x")), "default"));
    aigw_guardset_destroy (&self);
    aigw_guardset_destroy (&self);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("guardset: ok\n");
}
