/*  aigw_catalog: models, deployments and routers of one provider actor. */
#include "aigw_catalog.h"

#include <assert.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Default Bedrock region when neither the deployment nor AWS_REGION says.
#define AIGW_CATALOG_AWS_REGION "us-east-1"

struct _aigw_catalog_t {
    const aigw_config_t *config;      //  defaults and credentials
    aigw_router_settings_t settings;  //  every router's thresholds
    aigw_catalog_model_t **models;    //  served models, config first
    size_t count;                     //  entries in models
};

//  strdup that keeps NULL.
static char *
s_dup (const char *text)
{
    return text ? strdup (text) : NULL;
}

int
aigw_catalog_strategy (const char *name)
{
    static const char *const names[]
        = {"weighted", "least_latency", "least_in_flight", "lowest_cost"};
    if (!name)
        return AIGW_ROUTE_WEIGHTED;
    for (int i = 0; i < 4; i++)
        if (strcmp (name, names[i]) == 0)
            return i;
    return -1;
}

//  The router settings CONFIG asks for; defaults where it says nothing.
static void
s_settings (const aigw_config_t *config, aigw_router_settings_t *settings)
{
    aigw_router_settings_default (settings);
    aigw_breaker_settings_t *b = &settings->breaker;
    if (config->breaker_consecutive_failures > 0)
        b->consecutive_failures = (uint32_t) config->breaker_consecutive_failures;
    if (config->breaker_error_rate > 0)
        b->error_rate = config->breaker_error_rate;
    if (config->breaker_window_size > 0)
        b->window_size = (uint32_t) config->breaker_window_size;
    if (config->breaker_window_ms > 0)
        b->window_ms = config->breaker_window_ms;
    if (config->breaker_min_samples > 0)
        b->min_samples = (uint32_t) config->breaker_min_samples;
    if (config->breaker_cooldown_ms > 0)
        b->cooldown_ms = config->breaker_cooldown_ms;
    if (config->breaker_cooldown_max_ms > 0)
        b->cooldown_max_ms = config->breaker_cooldown_max_ms;
    if (b->cooldown_max_ms < b->cooldown_ms)
        b->cooldown_max_ms = b->cooldown_ms;
}

aigw_catalog_t *
aigw_catalog_new (const aigw_config_t *config)
{
    assert (config);
    aigw_catalog_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    s_settings (config, &self->settings);
    return self;
}

//  Free one model entry (its refs reached zero).
static void
s_model_free (aigw_catalog_model_t *m)
{
    for (size_t i = 0; i < m->deployment_count; i++) {
        aigw_catalog_deployment_t *d = &m->deployments[i];
        free (d->id);
        free (d->provider);
        free (d->base_url);
        free (d->model);
        aigw_config_string_free (&d->api_key);
        free (d->api_version);
        free (d->region);
        free (d->aws_key_id);
        aigw_config_string_free (&d->aws_secret);
        aigw_config_string_free (&d->aws_token);
    }
    free (m->deployments);
    for (size_t i = 0; i < m->fallback_count; i++)
        free (m->fallbacks[i]);
    free (m->fallbacks);
    aigw_router_destroy (&m->router);
    aigw_config_string_free (&m->signature);
    free (m->name);
    free (m->source);
    free (m);
}

aigw_catalog_model_t *
aigw_catalog_ref (aigw_catalog_model_t *model)
{
    if (model)
        model->refs++;
    return model;
}

void
aigw_catalog_unref (aigw_catalog_model_t **model_p)
{
    aigw_catalog_model_t *m = *model_p;
    if (!m)
        return;
    *model_p = NULL;
    assert (m->refs > 0);
    if (--m->refs == 0)
        s_model_free (m);
}

void
aigw_catalog_destroy (aigw_catalog_t **self_p)
{
    aigw_catalog_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        aigw_catalog_unref (&self->models[i]);
    free (self->models);
    free (self);
    *self_p = NULL;
}

//  The config's default base URL and key for PROVIDER.
static void
s_provider_defaults (const aigw_config_t *c, const char *provider, const char **base_url,
                     const char **api_key)
{
    *base_url = NULL;
    *api_key = NULL;
    if (strcmp (provider, "openai") == 0)
        *base_url = c->openai_base_url, *api_key = c->openai_api_key;
    else if (strcmp (provider, "anthropic") == 0)
        *base_url = c->anthropic_base_url, *api_key = c->anthropic_api_key;
    else if (strcmp (provider, "gemini") == 0)
        *base_url = c->gemini_base_url, *api_key = c->gemini_api_key;
    else if (strcmp (provider, "azure") == 0)
        *base_url = c->azure_base_url, *api_key = c->azure_api_key;
    else if (strcmp (provider, "bedrock") == 0)
        *base_url = c->bedrock_base_url;
    if (!*base_url)
        *base_url = aigw_adapter_default_base_url (provider);
}

//  Resolve one configured deployment into D. Returns 0, or -1 with ERR.
static int
s_resolve (const aigw_config_t *c, const char *model_name, const aigw_config_deployment_t *conf,
           aigw_catalog_deployment_t *d, char *err, size_t err_size)
{
    const aigw_adapter_t *adapter = aigw_adapter_find (conf->provider);
    if (!adapter) {
        snprintf (err, err_size, "model %s: unknown provider", model_name);
        return -1;
    }
    const char *base_url, *api_key;
    s_provider_defaults (c, conf->provider, &base_url, &api_key);
    if (conf->base_url)
        base_url = conf->base_url;
    if (conf->api_key)
        api_key = conf->api_key;
    else if (conf->api_key_env)
        api_key = getenv (conf->api_key_env);
    d->adapter = adapter;
    d->id = strdup (conf->id);
    d->provider = strdup (conf->provider);
    d->model = strdup (conf->model ? conf->model : model_name);
    d->base_url = s_dup (base_url);
    d->api_key = api_key && *api_key ? strdup (api_key) : NULL;
    d->api_version = s_dup (conf->api_version ? conf->api_version : c->azure_api_version);
    d->region = s_dup (conf->region    ? conf->region
                       : c->aws_region ? c->aws_region
                                       : AIGW_CATALOG_AWS_REGION);
    d->aws_key_id = s_dup (c->aws_access_key_id);
    d->aws_secret = s_dup (c->aws_secret_access_key);
    d->aws_token = s_dup (c->aws_session_token);
    d->price_in = conf->price_in;
    d->price_out = conf->price_out;
    d->price_cached_in = conf->price_cached_in >= 0 ? conf->price_cached_in : conf->price_in;
    d->rpm = conf->rpm;
    d->tpm = conf->tpm;
    d->key_unreadable = conf->key_unreadable;
    if (!d->id || !d->provider || !d->model) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    size_t len = d->base_url ? strlen (d->base_url) : 0;
    while (len > 0 && d->base_url[len - 1] == '/')
        d->base_url[--len] = '\0';
    d->up = (aigw_upstream_t){.base_url = d->base_url,
                              .model = d->model,
                              .api_key = d->api_key,
                              .api_version = d->api_version,
                              .region = d->region,
                              .aws_access_key_id = d->aws_key_id,
                              .aws_secret_access_key = d->aws_secret,
                              .aws_session_token = d->aws_token};
    return 0;
}

//  Append "text|" to the signature buffer (NULL as "-").
static void
s_sign (char **sig, size_t *len, const char *text)
{
    const char *t = text ? text : "-";
    aigw_adapter_append (sig, len, t, strlen (t));
    aigw_adapter_append (sig, len, "|", 1);
}

//  The definition of CONF as a string: equal strings, equal models. The
//  key enters as its SHA-256, never in clear.
static char *
s_signature (const aigw_config_model_t *conf, const char *source)
{
    char *sig = NULL;
    size_t len = 0;
    char number[192];
    s_sign (&sig, &len, source);
    s_sign (&sig, &len, conf->name);
    s_sign (&sig, &len, conf->strategy);
    for (int i = 0; i < conf->fallback_count; i++)
        s_sign (&sig, &len, conf->fallbacks[i]);
    for (int i = 0; i < conf->deployment_count; i++) {
        const aigw_config_deployment_t *d = &conf->deployments[i];
        s_sign (&sig, &len, d->id);
        s_sign (&sig, &len, d->provider);
        s_sign (&sig, &len, d->model);
        s_sign (&sig, &len, d->base_url);
        s_sign (&sig, &len, d->api_key_env);
        s_sign (&sig, &len, d->api_version);
        s_sign (&sig, &len, d->region);
        s_sign (&sig, &len, d->key_unreadable ? "unreadable" : NULL);
        unsigned char digest[SHA256_DIGEST_LENGTH] = {0};
        if (d->api_key)
            SHA256 ((const unsigned char *) d->api_key, strlen (d->api_key), digest);
        for (int j = 0; j < 8; j++) {
            snprintf (number, sizeof number, "%02x", digest[j]);
            s_sign (&sig, &len, number);
        }
        snprintf (number, sizeof number, "%lld/%lld/%lld/%lld/%.17g/%.17g/%.17g",
                  (long long) d->weight, (long long) d->priority, (long long) d->rpm,
                  (long long) d->tpm, d->price_in, d->price_out, d->price_cached_in);
        s_sign (&sig, &len, number);
    }
    return sig;
}

//  Build a model entry from CONF, or NULL with ERR.
static aigw_catalog_model_t *
s_model_new (aigw_catalog_t *self, const aigw_config_model_t *conf, const char *source, char *err,
             size_t err_size)
{
    //  The short form before the loader filled deployments: one deployment.
    aigw_config_deployment_t single = {0};
    const aigw_config_deployment_t *confs = conf->deployments;
    int count = conf->deployment_count;
    char single_id[AIGW_ROUTER_ID_MAX];
    if (count == 0) {
        snprintf (single_id, sizeof single_id, "%.100s/0", conf->name);
        single.id = single_id;
        single.provider = conf->provider;
        single.model = conf->upstream_model;
        single.weight = 1;
        single.price_cached_in = -1;
        confs = &single;
        count = 1;
    }
    int strategy
        = aigw_catalog_strategy (conf->strategy ? conf->strategy : self->config->router_strategy);
    if (!conf->name || strategy < 0 || !confs[0].provider) {
        snprintf (err, err_size, "model %s: invalid definition",
                  conf->name ? conf->name : "(unnamed)");
        return NULL;
    }
    aigw_catalog_model_t *m = calloc (1, sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->name = strdup (conf->name);
    m->source = strdup (source);
    m->strategy = (aigw_route_strategy_t) strategy;
    m->router = aigw_router_new (conf->name, &self->settings);
    m->deployments = calloc ((size_t) count, sizeof *m->deployments);
    m->fallbacks = calloc ((size_t) conf->fallback_count + 1, sizeof *m->fallbacks);
    m->signature = s_signature (conf, source);
    bool ok = m->name && m->source && m->router && m->deployments && m->fallbacks && m->signature;
    for (int i = 0; ok && i < conf->fallback_count; i++)
        ok = (m->fallbacks[m->fallback_count++] = strdup (conf->fallbacks[i])) != NULL;
    for (int i = 0; ok && i < count; i++) {
        aigw_catalog_deployment_t *d = &m->deployments[i];
        m->deployment_count++;
        ok = s_resolve (self->config, conf->name, &confs[i], d, err, err_size) == 0;
        aigw_deployment_def_t def = {.id = d->id,
                                     .provider = d->provider,
                                     .weight = (uint32_t) confs[i].weight,
                                     .priority = (uint32_t) confs[i].priority,
                                     .price_in = confs[i].price_in,
                                     .price_out = confs[i].price_out};
        if (ok && aigw_router_add (m->router, &def) != 0) {
            snprintf (err, err_size, "model %s: deployment %s is invalid or repeated", conf->name,
                      d->id);
            ok = false;
        }
        if (ok)
            d->route = aigw_router_lookup (m->router, d->id);
    }
    if (!ok) {
        s_model_free (m);
        return NULL;
    }
    return m;
}

//  The current entry whose signature is SIG, or NULL.
static aigw_catalog_model_t *
s_find_same (aigw_catalog_t *self, const char *sig)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->models[i]->signature, sig) == 0)
            return self->models[i];
    return NULL;
}

int
aigw_catalog_load (aigw_catalog_t *self, const aigw_config_model_t *extra, size_t extra_count,
                   const char *extra_source, char *err, size_t err_size)
{
    const aigw_config_t *c = self->config;
    size_t total = (size_t) c->model_count + extra_count;
    aigw_catalog_model_t **models = calloc (total + 1, sizeof *models);
    if (!models)
        return -1;
    size_t count = 0;
    int skipped = 0;
    for (size_t i = 0; i < total; i++) {
        bool from_config = i < (size_t) c->model_count;
        const aigw_config_model_t *conf
            = from_config ? &c->models[i] : &extra[i - (size_t) c->model_count];
        const char *source = from_config ? "config" : extra_source;
        bool taken = false;
        for (size_t j = 0; j < count && !taken; j++)
            taken = conf->name && strcmp (models[j]->name, conf->name) == 0;
        if (taken)
            continue;
        char *sig = s_signature (conf, source);
        aigw_catalog_model_t *m = sig ? s_find_same (self, sig) : NULL;
        aigw_config_string_free (&sig);
        if (m)
            m = aigw_catalog_ref (m);
        else
            m = s_model_new (self, conf, source, err, err_size);
        if (m)
            models[count++] = m;
        else
            skipped++;
    }
    for (size_t i = 0; i < self->count; i++)
        aigw_catalog_unref (&self->models[i]);
    free (self->models);
    self->models = models;
    self->count = count;
    return skipped;
}

aigw_catalog_model_t *
aigw_catalog_get (aigw_catalog_t *self, const char *name)
{
    for (size_t i = 0; name && i < self->count; i++)
        if (strcmp (self->models[i]->name, name) == 0)
            return self->models[i];
    return NULL;
}

size_t
aigw_catalog_size (aigw_catalog_t *self)
{
    return self->count;
}

aigw_catalog_model_t *
aigw_catalog_at (aigw_catalog_t *self, size_t index)
{
    return index < self->count ? self->models[index] : NULL;
}

aigw_catalog_deployment_t *
aigw_catalog_deployment (aigw_catalog_model_t *model, const aigw_deployment_t *route)
{
    for (size_t i = 0; i < model->deployment_count; i++)
        if (model->deployments[i].route == route)
            return &model->deployments[i];
    return NULL;
}

bool
aigw_catalog_admit (aigw_catalog_deployment_t *d, int64_t now)
{
    if (d->rpm <= 0)
        return true;
    if (now - d->minute_start >= 60000) {
        d->minute_start = now;
        d->minute_requests = 0;
    }
    if (d->minute_requests >= d->rpm)
        return false;
    d->minute_requests++;
    return true;
}

json_t *
aigw_catalog_report (aigw_catalog_t *self, int64_t now)
{
    json_t *all = json_array ();
    for (size_t i = 0; all && i < self->count; i++) {
        json_t *one = aigw_router_report_json (self->models[i]->router, now);
        if (one)
            json_array_extend (all, one);
        json_decref (one);
    }
    return all;
}

void
aigw_catalog_test (bool verbose)
{
    aigw_config_t *config = calloc (1, sizeof *config);
    assert (config);
    config->openai_base_url = "http://up/v1/";
    config->openai_api_key = "sk-config";
    config->model_count = 2;
    //  A short-form model, and a long-form one with a fallback.
    config->models[0]
        = (aigw_config_model_t){.name = "a", .provider = "openai", .upstream_model = "gpt-a"};
    aigw_config_model_t *b = &config->models[1];
    b->name = "b";
    b->strategy = "least_latency";
    b->fallbacks[0] = "a";
    b->fallback_count = 1;
    b->deployment_count = 2;
    b->deployments[0] = (aigw_config_deployment_t){
        .id = "b-1", .provider = "openai", .model = "gpt-b", .weight = 1};
    b->deployments[1] = (aigw_config_deployment_t){.id = "b-2",
                                                   .provider = "azure",
                                                   .model = "prod",
                                                   .base_url = "http://az",
                                                   .api_key = "az-key",
                                                   .priority = 1};
    aigw_catalog_t *catalog = aigw_catalog_new (config);
    char err[256] = "";
    assert (aigw_catalog_load (catalog, NULL, 0, "database", err, sizeof err) == 0);
    assert (aigw_catalog_size (catalog) == 2);
    aigw_catalog_model_t *a = aigw_catalog_get (catalog, "a");
    assert (a && a->deployment_count == 1 && strcmp (a->deployments[0].id, "a/0") == 0);
    assert (strcmp (a->deployments[0].up.base_url, "http://up/v1") == 0);
    assert (strcmp (a->deployments[0].up.api_key, "sk-config") == 0);
    assert (strcmp (a->deployments[0].up.model, "gpt-a") == 0);
    aigw_catalog_model_t *mb = aigw_catalog_get (catalog, "b");
    assert (mb && mb->strategy == AIGW_ROUTE_LEAST_LATENCY && mb->fallback_count == 1);
    assert (strcmp (mb->deployments[1].up.api_key, "az-key") == 0);
    assert (aigw_catalog_deployment (mb, mb->deployments[1].route) == &mb->deployments[1]);

    //  A holder keeps an entry alive across a reload that changes it; an
    //  unchanged model keeps its entry.
    aigw_catalog_model_t *held = aigw_catalog_ref (mb);
    aigw_config_model_t extra = {.name = "c", .provider = "openai", .upstream_model = "c"};
    b->deployments[0].weight = 5;
    assert (aigw_catalog_load (catalog, &extra, 1, "database", err, sizeof err) == 0);
    assert (aigw_catalog_size (catalog) == 3);
    assert (aigw_catalog_get (catalog, "a") == a);
    assert (aigw_catalog_get (catalog, "b") != held);
    assert (strcmp (aigw_catalog_get (catalog, "c")->source, "database") == 0);
    assert (held->refs == 1 && strcmp (held->name, "b") == 0);
    aigw_catalog_unref (&held);
    assert (held == NULL);

    //  A database model may not take a config model's name; a bad one is
    //  skipped and named.
    aigw_config_model_t clash = {.name = "a", .provider = "openai"};
    aigw_config_model_t bad = {.name = "d", .provider = "mystery"};
    aigw_config_model_t two[2] = {clash, bad};
    assert (aigw_catalog_load (catalog, two, 2, "database", err, sizeof err) == 1);
    assert (strstr (err, "model d"));
    assert (aigw_catalog_size (catalog) == 2);
    assert (strcmp (aigw_catalog_get (catalog, "a")->source, "config") == 0);

    json_t *report = aigw_catalog_report (catalog, 1000);
    assert (json_array_size (report) == 3);
    assert (json_is_array (json_object_get (json_array_get (report, 0), "latency_samples")));
    json_decref (report);
    //  RPM capacity: two a minute, then refused until the minute turns.
    aigw_catalog_deployment_t capped = {.rpm = 2};
    assert (aigw_catalog_admit (&capped, 1000) && aigw_catalog_admit (&capped, 2000));
    assert (!aigw_catalog_admit (&capped, 3000));
    assert (aigw_catalog_admit (&capped, 61000));
    aigw_catalog_deployment_t free_ = {.rpm = 0};
    for (int i = 0; i < 100; i++)
        assert (aigw_catalog_admit (&free_, i));
    assert (aigw_catalog_strategy (NULL) == AIGW_ROUTE_WEIGHTED);
    assert (aigw_catalog_strategy ("lowest_cost") == AIGW_ROUTE_LOWEST_COST);
    assert (aigw_catalog_strategy ("fastest") == -1);
    aigw_catalog_destroy (&catalog);
    aigw_catalog_destroy (&catalog);
    free (config);
    if (verbose)
        printf ("catalog: ok\n");
}
