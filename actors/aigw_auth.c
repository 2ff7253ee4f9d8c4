/*  aigw_auth: the auth stage (keys from the config file for now; the
    control-plane issue adds PostgreSQL-backed keys and tokens). */
#include "aigw_auth.h"
#include "aigw_log.h"

#include <openssl/crypto.h>

//  One known key, indexed by the hex of its hash.
typedef struct {
    unsigned char sha256[32];   //  hash of the secret
    char *key_id;               //  stable id shown downstream ("cfg:NAME")
    const char *name;           //  key name (config-owned)
    const char *tenant;         //  tenant (config-owned)
    const char *role;           //  role (config-owned)
    int64_t rpm;                //  requests per minute, 0 = default
} s_key_t;

//  Private state.
typedef struct {
    const aigw_config_t *config; //  settings (shared, read-only)
    zhashx_t *keys;             //  hex(sha256) -> s_key_t
    s_key_t master;             //  the master key, when configured
    bool has_master;            //  whether master is set
} s_auth_t;

static void
s_hex (const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = 0;
}

static void
s_key_free (void **item)
{
    s_key_t *key = (s_key_t *) *item;
    if (key) {
        free (key->key_id);
        free (key);
        *item = NULL;
    }
}

static void
s_auth_destroy (void **state_p)
{
    s_auth_t *self = (s_auth_t *) *state_p;
    if (!self)
        return;
    zhashx_destroy (&self->keys);
    free (self->master.key_id);
    free (self);
    *state_p = NULL;
}

static void *
s_auth_new (const aigw_config_t *config)
{
    s_auth_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->keys = zhashx_new ();
    zhashx_set_destructor (self->keys, s_key_free);
    for (int i = 0; i < config->key_count; i++) {
        const aigw_config_key_t *ck = &config->keys[i];
        s_key_t *key = calloc (1, sizeof *key);
        memcpy (key->sha256, ck->sha256, 32);
        key->key_id = zsys_sprintf ("cfg:%s", ck->name);
        key->name = ck->name;
        key->tenant = ck->tenant;
        key->role = ck->role;
        key->rpm = ck->rpm;
        char hex[65];
        s_hex (ck->sha256, 32, hex);
        zhashx_update (self->keys, hex, key);
    }
    if (config->master_key && *config->master_key) {
        self->has_master = true;
        memcpy (self->master.sha256, config->master_sha256, 32);
        self->master.key_id = strdup ("master");
        self->master.name = "master";
        self->master.tenant = "*";
        self->master.role = "admin";
        self->master.rpm = config->master_rpm;
    }
    return self;
}

//  The key presented, or NULL. The hash lookup reveals only the hash, never
//  the secret; the final comparison is constant-time anyway.
static const s_key_t *
s_auth_lookup (s_auth_t *self, const char *credential)
{
    unsigned char digest[32];
    aigw_config_hash_secret (credential, digest);
    if (self->has_master && CRYPTO_memcmp (digest, self->master.sha256, 32) == 0)
        return &self->master;
    char hex[65];
    s_hex (digest, 32, hex);
    const s_key_t *key = (const s_key_t *) zhashx_lookup (self->keys, hex);
    if (key && CRYPTO_memcmp (digest, key->sha256, 32) == 0)
        return key;
    return NULL;
}

static void
s_auth_handle (void *state, aigw_envelope_t *env)
{
    s_auth_t *self = (s_auth_t *) state;
    const s_key_t *key = NULL;
    if (env->credential && *env->credential)
        key = s_auth_lookup (self, env->credential);
    //  The secret stops here, whatever the verdict.
    if (env->credential) {
        OPENSSL_cleanse (env->credential, strlen (env->credential));
        aigw_envelope_set (&env->credential, NULL);
    }
    if (!key) {
        aigw_envelope_set_error (env, 401, "authentication_error", "invalid_api_key",
                                 NULL,
                                 "Invalid API key. Pass a valid key as "
                                 "'Authorization: Bearer KEY' or 'x-api-key: KEY'.");
        return;
    }
    aigw_envelope_set (&env->key_id, key->key_id);
    aigw_envelope_set (&env->key_name, key->name);
    aigw_envelope_set (&env->tenant, key->tenant);
    aigw_envelope_set (&env->role, key->role);
    env->rpm = key->rpm;
    if ((env->kind == AIGW_KIND_CHAT || env->kind == AIGW_KIND_EMBEDDINGS)
        && !aigw_config_model (self->config, env->model)) {
        char message[256];
        snprintf (message, sizeof message, "The model '%.160s' does not exist.",
                  env->model ? env->model : "");
        aigw_envelope_set_error (env, 404, "invalid_request_error", "model_not_found",
                                 "model", message);
    }
}

const aigw_stage_def_t aigw_auth_stage = {
    .name = "auth",
    .replay_safe = true,
    .state_new = s_auth_new,
    .state_destroy = s_auth_destroy,
    .handle = s_auth_handle,
    .tick = NULL,
};

void
aigw_auth_test (bool verbose)
{
    char err[AIGW_CONFIG_ERR_MAX];
    setenv ("AIGW_MASTER_KEY", "sk-master-test", 1);
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    unsetenv ("AIGW_MASTER_KEY");
    void *state = s_auth_new (config);
    assert (state);

    //  Master key resolves, credential is cleared.
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->model, "gpt-4o-mini");
    aigw_envelope_set (&env->credential, "sk-master-test");
    s_auth_handle (state, env);
    assert (env->status == 0);
    assert (streq (env->key_id, "master"));
    assert (streq (env->role, "admin"));
    assert (env->credential == NULL);

    //  Unknown model after a good key: 404.
    aigw_envelope_set (&env->credential, "sk-master-test");
    aigw_envelope_set (&env->model, "no-such-model");
    s_auth_handle (state, env);
    assert (env->status == 404);
    assert (streq (env->err_code, "model_not_found"));
    aigw_envelope_destroy (&env);

    //  Wrong and missing keys: 401, and the secret never reaches the message.
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->credential, "sk-master-tesT");
    s_auth_handle (state, env);
    assert (env->status == 401);
    assert (!strstr (env->err_message, "sk-master"));
    assert (env->credential == NULL);
    aigw_envelope_destroy (&env);
    env = aigw_envelope_new ();
    s_auth_handle (state, env);
    assert (env->status == 401);
    aigw_envelope_destroy (&env);

    s_auth_destroy (&state);
    s_auth_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("auth: ok\n");
}
