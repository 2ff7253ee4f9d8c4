/*  aigw_models: model documents checked, filled, shown; pure functions. */
#include "aigw_models.h"
#include "aigw_adapter.h"
#include "aigw_text.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#ifndef streq
#define streq(s1, s2) (!strcmp ((s1), (s2)))
#endif

//  Longest member name shown in param or a message; longer or unprintable
//  ones are not echoed.
#define S_MEMBER_SHOWN_MAX 32
//  Room for one JSON path ("deployments[15].api_key_env").
#define S_PATH_MAX 96

//  Every database model, as provider processes read it: the only statement
//  that selects api_key.
const char AIGW_MODELS_SQL[]
    = "SELECT json_strip_nulls (json_build_object ('id', m.id, 'name', m.name,"
      " 'strategy', m.strategy, 'fallbacks', m.fallbacks, 'deployments',"
      " COALESCE ((SELECT json_agg (json_build_object ('id', d.id, 'provider', d.provider,"
      " 'model', d.upstream_model, 'base_url', d.base_url, 'api_key', d.api_key,"
      " 'api_key_env', d.api_key_env, 'api_version', d.api_version, 'region', d.region,"
      " 'weight', d.weight, 'priority', d.priority, 'rpm', d.rpm, 'tpm', d.tpm,"
      " 'price_in', d.price_in, 'price_out', d.price_out, 'price_cached_in', d.price_cached_in)"
      " ORDER BY d.position)"
      " FROM model_deployments d WHERE d.model_id = m.id), '[]'::json)))::text"
      " FROM models m ORDER BY m.created_at, m.id";

static const char *const s_strategies[]
    = {"weighted", "least_latency", "least_in_flight", "lowest_cost", NULL};
static const char *const s_model_members[]
    = {"id", "name", "strategy", "fallbacks", "deployments", NULL};
static const char *const s_deployment_members[]
    = {"id",          "provider",  "model",           "base_url", "api_key", "api_key_env",
       "api_version", "region",    "weight",          "priority", "rpm",     "tpm",
       "price_in",    "price_out", "price_cached_in", NULL};

//  Where a refusal is written: the caller's buffers (either may be NULL).
typedef struct {
    char *param;        //  JSON path of the offending field
    size_t param_size;  //  its size
    char *err;          //  human message
    size_t err_size;    //  its size
} s_out_t;

//  Write PARAM and a printf-style message into OUT. Returns -1.
static int __attribute__ ((format (printf, 3, 4)))
s_refuse (s_out_t *out, const char *param, const char *format, ...)
{
    if (out->param && out->param_size)
        snprintf (out->param, out->param_size, "%s", param ? param : "");
    if (out->err && out->err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (out->err, out->err_size, format, args);
        va_end (args);
    }
    return -1;
}

//  "PREFIX.FIELD", or FIELD alone when PREFIX is empty, into PATH (cut
//  short if it does not fit: it only names a field in an error).
static const char *
s_path (char path[S_PATH_MAX], const char *prefix, const char *field)
{
    if (snprintf (path, S_PATH_MAX, "%s%s%s", prefix, *prefix ? "." : "", field) < 0)
        path[0] = '\0';
    return path;
}

//  True when valid UTF-8 TEXT holds a control character: C0, DEL or C1.
static bool
s_has_control (const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p < 0x20 || *p == 0x7F || (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F))
            return true;
    return false;
}

//  True when TEXT is 1..MAX bytes of printable ASCII without spaces.
static bool
s_token_ok (const char *text, size_t max)
{
    size_t len = strlen (text);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (text[i] < '!' || text[i] > '~')
            return false;
    return true;
}

//  True when TEXT is a model name: 1..AIGW_MODELS_NAME_MAX characters, no
//  control character.
static bool
s_name_ok (const char *text)
{
    size_t chars = aigw_text_utf8_length (text, strlen (text));
    return chars >= 1 && chars <= AIGW_MODELS_NAME_MAX && !s_has_control (text);
}

//  True when TEXT matches [A-Z_][A-Z0-9_]{0,127}.
static bool
s_env_ok (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > AIGW_MODELS_ENV_MAX || (text[0] >= '0' && text[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

//  True when TEXT is http:// or https:// and a non-empty rest with no
//  space or control byte, AIGW_MODELS_URL_MAX bytes at most.
static bool
s_url_ok (const char *text)
{
    size_t len = strlen (text);
    const char *rest = strncmp (text, "http://", 7) == 0    ? text + 7
                       : strncmp (text, "https://", 8) == 0 ? text + 8
                                                            : NULL;
    if (!rest || !*rest || len > AIGW_MODELS_URL_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *) rest; *p; p++)
        if (*p <= ' ' || *p == 0x7F)
            return false;
    return true;
}

//  Refuse the first member of OBJ not in MEMBERS; PREFIX is the object's
//  own path ("" at the top). Returns 0 or -1.
static int
s_check_members (json_t *obj, const char *const *members, const char *prefix, s_out_t *out)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        size_t i;
        for (i = 0; members[i]; i++)
            if (strcmp (key, members[i]) == 0)
                break;
        if (members[i])
            continue;
        //  The name may hold anything: echo it only when short and plain.
        bool shown = strlen (key) <= S_MEMBER_SHOWN_MAX && s_token_ok (key, S_MEMBER_SHOWN_MAX);
        char path[S_PATH_MAX];
        if (shown)
            return s_refuse (out, s_path (path, prefix, key), "Unknown field '%s'.", key);
        return s_refuse (out, prefix, "Unknown field in %s.", *prefix ? prefix : "the model");
    }
    return 0;
}

//  Read optional string member KEY of OBJ into *VALUE (NULL when absent or
//  null). PATH names it. Returns 0, or -1 when it is not a string.
static int
s_opt_string (json_t *obj, const char *key, const char *path, const char **value, s_out_t *out)
{
    json_t *member = json_object_get (obj, key);
    *value = NULL;
    if (!member || json_is_null (member))
        return 0;
    if (!json_is_string (member))
        return s_refuse (out, path, "'%s' must be a string.", path);
    *value = json_string_value (member);
    return 0;
}

//  Read optional integer member KEY of OBJ into *VALUE (DEFAULT_VALUE when
//  absent or null), in MIN..MAX. Returns 0 or -1.
static int
s_opt_int (json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
           int64_t default_value, int64_t *value, s_out_t *out)
{
    json_t *member = json_object_get (obj, key);
    *value = default_value;
    if (!member || json_is_null (member))
        return 0;
    if (!json_is_integer (member) || json_integer_value (member) < min
        || json_integer_value (member) > max) {
        if (max == INT64_MAX)
            return s_refuse (out, path, "'%s' must be an integer of at least %lld.", path,
                             (long long) min);
        return s_refuse (out, path, "'%s' must be an integer from %lld to %lld.", path,
                         (long long) min, (long long) max);
    }
    *value = json_integer_value (member);
    return 0;
}

//  Copy TEXT (may be NULL) into *TARGET. Returns 0, or -1 out of memory.
static int
s_dup (char **target, const char *text, s_out_t *out)
{
    if (!text)
        return 0;
    *target = strdup (text);
    return *target ? 0 : s_refuse (out, "", "Out of memory.");
}

static int
s_check_name (json_t *value, aigw_config_model_t *model, s_out_t *out)
{
    if (!json_is_string (value) || !s_name_ok (json_string_value (value)))
        return s_refuse (out, "name",
                         "'name' must be a string of 1 to %d characters, with no control "
                         "characters.",
                         AIGW_MODELS_NAME_MAX);
    return s_dup (&model->name, json_string_value (value), out);
}

static int
s_check_strategy (json_t *value, aigw_config_model_t *model, s_out_t *out)
{
    if (!value || json_is_null (value))
        return 0;
    for (int i = 0; json_is_string (value) && s_strategies[i]; i++)
        if (strcmp (json_string_value (value), s_strategies[i]) == 0)
            return s_dup (&model->strategy, s_strategies[i], out);
    return s_refuse (out, "strategy",
                     "'strategy' must be one of weighted, least_latency, least_in_flight, "
                     "lowest_cost, or null.");
}

//  Fallbacks VALUE (absent or null: none). NAME is the model's own name,
//  or NULL when unknown here.
static int
s_check_fallbacks (json_t *value, const char *name, aigw_config_model_t *model, s_out_t *out)
{
    if (!value || json_is_null (value))
        return 0;
    if (!json_is_array (value) || json_array_size (value) > AIGW_CONFIG_MAX_FALLBACKS)
        return s_refuse (out, "fallbacks",
                         "'fallbacks' must be an array of at most %d model names.",
                         AIGW_CONFIG_MAX_FALLBACKS);
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item) {
        char path[S_PATH_MAX];
        snprintf (path, sizeof path, "fallbacks[%zu]", index);
        if (!json_is_string (item) || !s_name_ok (json_string_value (item)))
            return s_refuse (out, path,
                             "'%s' must be a model name of 1 to %d characters, with no "
                             "control characters.",
                             path, AIGW_MODELS_NAME_MAX);
        const char *text = json_string_value (item);
        if (name && strcmp (text, name) == 0)
            return s_refuse (out, path, "'%s' names the model itself.", path);
        for (size_t j = 0; j < index; j++)
            if (strcmp (text, json_string_value (json_array_get (value, j))) == 0)
                return s_refuse (out, path, "'%s' repeats fallbacks[%zu].", path, j);
        if (s_dup (&model->fallbacks[model->fallback_count], text, out))
            return -1;
        model->fallback_count++;
    }
    return 0;
}

//  One deployment DEP at INDEX into D.
static int
s_check_deployment (json_t *dep, size_t index, aigw_config_deployment_t *d, s_out_t *out)
{
    char prefix[S_PATH_MAX], path[S_PATH_MAX];
    snprintf (prefix, sizeof prefix, "deployments[%zu]", index);
    if (!json_is_object (dep))
        return s_refuse (out, prefix, "'%s' must be an object.", prefix);
    if (s_check_members (dep, s_deployment_members, prefix, out))
        return -1;
    const char *text;

    s_path (path, prefix, "id");
    if (s_opt_string (dep, "id", path, &text, out))
        return -1;
    if (text && (strlen (text) == 0 || strlen (text) > AIGW_MODELS_ID_MAX || s_has_control (text)))
        return s_refuse (out, path, "'%s' must be 1 to %d bytes, with no control characters.", path,
                         AIGW_MODELS_ID_MAX);
    if (s_dup (&d->id, text, out))
        return -1;

    s_path (path, prefix, "provider");
    if (s_opt_string (dep, "provider", path, &text, out))
        return -1;
    if (!text)
        return s_refuse (out, path, "'%s' is required.", path);
    if (!aigw_adapter_known (text))
        return s_refuse (out, path, "'%s' is not a provider this build knows.", path);
    if (s_dup (&d->provider, text, out))
        return -1;

    s_path (path, prefix, "model");
    if (s_opt_string (dep, "model", path, &text, out))
        return -1;
    if (!text)
        return s_refuse (out, path, "'%s' is required.", path);
    size_t chars = aigw_text_utf8_length (text, strlen (text));
    if (chars == 0 || chars > AIGW_MODELS_UPSTREAM_MAX || s_has_control (text))
        return s_refuse (out, path, "'%s' must be 1 to %d characters, with no control characters.",
                         path, AIGW_MODELS_UPSTREAM_MAX);
    if (s_dup (&d->model, text, out))
        return -1;

    s_path (path, prefix, "base_url");
    if (s_opt_string (dep, "base_url", path, &text, out))
        return -1;
    if (text && !s_url_ok (text))
        return s_refuse (out, path,
                         "'%s' must be an http:// or https:// URL of at most %d bytes, "
                         "with no spaces.",
                         path, AIGW_MODELS_URL_MAX);
    //  Bedrock derives its URL from the region.
    if (!text && !aigw_adapter_default_base_url (d->provider)
        && strcmp (d->provider, "bedrock") != 0)
        return s_refuse (out, path, "'%s' is required for provider %s.", path, d->provider);
    if (s_dup (&d->base_url, text, out))
        return -1;

    //  A secret: never quoted, whatever is wrong with it.
    s_path (path, prefix, "api_key");
    if (s_opt_string (dep, "api_key", path, &text, out))
        return -1;
    if (text
        && (strlen (text) == 0 || strlen (text) > AIGW_MODELS_API_KEY_MAX || s_has_control (text)))
        return s_refuse (out, path, "'%s' must be 1 to %d bytes, with no control characters.", path,
                         AIGW_MODELS_API_KEY_MAX);
    if (s_dup (&d->api_key, text, out))
        return -1;

    s_path (path, prefix, "api_key_env");
    if (s_opt_string (dep, "api_key_env", path, &text, out))
        return -1;
    if (text && !s_env_ok (text))
        return s_refuse (
            out, path, "'%s' must be an environment variable name: [A-Z_][A-Z0-9_]{0,127}.", path);
    if (s_dup (&d->api_key_env, text, out))
        return -1;

    static const char *const tokens[] = {"api_version", "region"};
    char **targets[] = {&d->api_version, &d->region};
    for (int i = 0; i < 2; i++) {
        s_path (path, prefix, tokens[i]);
        if (s_opt_string (dep, tokens[i], path, &text, out))
            return -1;
        if (text && !s_token_ok (text, AIGW_MODELS_TOKEN_MAX))
            return s_refuse (out, path,
                             "'%s' must be 1 to %d printable ASCII characters, no spaces.", path,
                             AIGW_MODELS_TOKEN_MAX);
        if (s_dup (targets[i], text, out))
            return -1;
    }

    if (s_opt_int (dep, "weight", s_path (path, prefix, "weight"), 0, AIGW_MODELS_WEIGHT_MAX, 1,
                   &d->weight, out)
        || s_opt_int (dep, "priority", s_path (path, prefix, "priority"), 0,
                      AIGW_MODELS_PRIORITY_MAX, 0, &d->priority, out)
        || s_opt_int (dep, "rpm", s_path (path, prefix, "rpm"), 0, INT64_MAX, 0, &d->rpm, out)
        || s_opt_int (dep, "tpm", s_path (path, prefix, "tpm"), 0, INT64_MAX, 0, &d->tpm, out))
        return -1;

    //  price_cached_in left out (or null) is -1: cached tokens cost price_in.
    static const char *const prices[] = {"price_in", "price_out", "price_cached_in"};
    double *amounts[] = {&d->price_in, &d->price_out, &d->price_cached_in};
    for (int i = 0; i < 3; i++) {
        json_t *member = json_object_get (dep, prices[i]);
        *amounts[i] = i == 2 ? -1 : 0;
        if (!member || json_is_null (member))
            continue;
        double amount = json_is_number (member) ? json_number_value (member) : -1;
        s_path (path, prefix, prices[i]);
        if (!json_is_number (member) || !isfinite (amount) || amount < 0
            || amount > AIGW_MODELS_PRICE_MAX)
            return s_refuse (out, path,
                             "'%s' must be a number from 0 to %.0f (USD per million "
                             "tokens).",
                             path, AIGW_MODELS_PRICE_MAX);
        *amounts[i] = amount;
    }
    return 0;
}

static int
s_check_deployments (json_t *value, aigw_config_model_t *model, s_out_t *out)
{
    if (!json_is_array (value) || json_array_size (value) == 0
        || json_array_size (value) > AIGW_CONFIG_MAX_DEPLOYMENTS)
        return s_refuse (out, "deployments",
                         "'deployments' must be an array of 1 to %d deployments.",
                         AIGW_CONFIG_MAX_DEPLOYMENTS);
    size_t index;
    json_t *dep;
    json_array_foreach (value, index, dep) {
        aigw_config_deployment_t *d = &model->deployments[index];
        model->deployment_count = (int) index + 1;
        if (s_check_deployment (dep, index, d, out))
            return -1;
        for (size_t j = 0; d->id && j < index; j++)
            if (model->deployments[j].id && strcmp (model->deployments[j].id, d->id) == 0) {
                char path[S_PATH_MAX];
                snprintf (path, sizeof path, "deployments[%zu].id", index);
                return s_refuse (out, path, "'%s' repeats deployments[%zu].id.", path, j);
            }
    }
    return 0;
}

//  A top-level "id": checked, not kept.
static int
s_check_id (json_t *doc, s_out_t *out)
{
    const char *id;
    if (s_opt_string (doc, "id", "id", &id, out))
        return -1;
    if (id && (strlen (id) == 0 || strlen (id) > AIGW_MODELS_ID_MAX || s_has_control (id)))
        return s_refuse (out, "id", "'id' must be 1 to %d bytes, with no control characters.",
                         AIGW_MODELS_ID_MAX);
    return 0;
}

int
aigw_models_from_json (json_t *doc, aigw_config_model_t *out, char *param, size_t param_size,
                       char *err, size_t err_size)
{
    assert (out);
    s_out_t refusal = {param, param_size, err, err_size};
    memset (out, 0, sizeof *out);
    if (param && param_size)
        param[0] = 0;
    int rc = 0;
    if (!json_is_object (doc))
        rc = s_refuse (&refusal, "", "A model must be a JSON object.");
    else if (s_check_members (doc, s_model_members, "", &refusal) || s_check_id (doc, &refusal))
        rc = -1;
    else if (!json_object_get (doc, "name"))
        rc = s_refuse (&refusal, "name", "'name' is required.");
    else if (s_check_name (json_object_get (doc, "name"), out, &refusal)
             || s_check_strategy (json_object_get (doc, "strategy"), out, &refusal)
             || s_check_fallbacks (json_object_get (doc, "fallbacks"), out->name, out, &refusal))
        rc = -1;
    else if (!json_object_get (doc, "deployments"))
        rc = s_refuse (&refusal, "deployments", "'deployments' is required.");
    else if (s_check_deployments (json_object_get (doc, "deployments"), out, &refusal)
             || s_dup (&out->provider, out->deployments[0].provider, &refusal)
             || s_dup (&out->upstream_model, out->deployments[0].model, &refusal))
        rc = -1;
    if (rc)
        aigw_config_model_reset (out);
    return rc;
}

int
aigw_models_check_patch (json_t *doc, char *param, size_t param_size, char *err, size_t err_size)
{
    s_out_t refusal = {param, param_size, err, err_size};
    if (param && param_size)
        param[0] = 0;
    static const char *const members[] = {"name", "strategy", "fallbacks", "deployments", NULL};
    if (!json_is_object (doc))
        return s_refuse (&refusal, "", "A model change must be a JSON object.");
    if (s_check_members (doc, members, "", &refusal))
        return -1;
    if (json_object_size (doc) == 0)
        return s_refuse (&refusal, "",
                         "Nothing to change: send name, strategy, fallbacks or deployments.");
    aigw_config_model_t model;
    memset (&model, 0, sizeof model);
    json_t *name = json_object_get (doc, "name");
    json_t *deployments = json_object_get (doc, "deployments");
    int rc = 0;
    if ((name && s_check_name (name, &model, &refusal))
        || s_check_strategy (json_object_get (doc, "strategy"), &model, &refusal)
        || s_check_fallbacks (json_object_get (doc, "fallbacks"), model.name, &model, &refusal)
        || (deployments && s_check_deployments (deployments, &model, &refusal)))
        rc = -1;
    aigw_config_model_reset (&model);
    return rc;
}

//  One deployment as the API shows it; NAME/INDEX when it has no id.
static json_t *
s_deployment_json (const aigw_config_deployment_t *d, const char *name, int index)
{
    char *id = NULL;
    if (!d->id) {
        size_t size = strlen (name ? name : "") + 24;
        id = malloc (size);
        if (!id)
            return NULL;
        snprintf (id, size, "%s/%d", name ? name : "", index);
    }
    json_t *item = json_pack (
        "{s:s,s:s?,s:s?,s:s?,s:s?,s:b,s:s?,s:s?,s:I,s:I,s:I,s:I,s:f,s:f,s:o}", "id",
        d->id ? d->id : id, "provider", d->provider, "model", d->model, "base_url", d->base_url,
        "api_key_env", d->api_key_env, "api_key_set", d->api_key != NULL, "api_version",
        d->api_version, "region", d->region, "weight", (json_int_t) d->weight, "priority",
        (json_int_t) d->priority, "rpm", (json_int_t) d->rpm, "tpm", (json_int_t) d->tpm,
        "price_in", d->price_in, "price_out", d->price_out, "price_cached_in",
        d->price_cached_in >= 0 ? json_real (d->price_cached_in) : json_null ());
    free (id);
    return item;
}

json_t *
aigw_models_to_json (const aigw_config_model_t *model, const char *id, const char *source)
{
    assert (model);
    json_t *deployments = json_array ();
    json_t *fallbacks = json_array ();
    if (!deployments || !fallbacks) {
        json_decref (deployments);
        json_decref (fallbacks);
        return NULL;
    }
    int count = model->deployment_count;
    //  The short form: one deployment, from provider and upstream_model.
    aigw_config_deployment_t short_form = {.provider = model->provider,
                                           .model = model->upstream_model,
                                           .weight = 1,
                                           .price_cached_in = -1};
    const aigw_config_deployment_t *list = model->deployments;
    if (count == 0 && (model->provider || model->upstream_model)) {
        list = &short_form;
        count = 1;
    }
    for (int i = 0; i < count && i < AIGW_CONFIG_MAX_DEPLOYMENTS; i++)
        json_array_append_new (deployments, s_deployment_json (&list[i], model->name, i));
    for (int i = 0; i < model->fallback_count && i < AIGW_CONFIG_MAX_FALLBACKS; i++)
        json_array_append_new (fallbacks, json_string (model->fallbacks[i]));
    if (json_array_size (deployments) != (size_t) count
        || json_array_size (fallbacks) != (size_t) model->fallback_count) {
        json_decref (deployments);
        json_decref (fallbacks);
        return NULL;
    }
    return json_pack ("{s:s?,s:s?,s:s?,s:s?,s:o,s:o}", "id", id, "name", model->name, "source",
                      source, "strategy", model->strategy, "fallbacks", fallbacks, "deployments",
                      deployments);
}

void
aigw_models_key_aad (const char *deployment_id, char *out, size_t size)
{
    assert (deployment_id && out && size > 0);
    snprintf (out, size, "model_deployments.api_key:%.*s", AIGW_MODELS_ID_MAX, deployment_id);
    for (char *p = strchr (out, ':') + 1; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char) (*p - 'A' + 'a');
}

//  ---------------------------------------------------------------------
//  Selftest

//  Run from_json on TEXT; expect failure with PARAM (NULL: expect success).
static void
s_expect (bool verbose, const char *text, const char *param)
{
    json_error_t error;
    json_t *doc = json_loads (text, 0, &error);
    if (!doc) {
        fprintf (stderr, "selftest document does not parse: %s: %s\n", error.text, text);
        assert (false);
    }
    aigw_config_model_t model;
    char got[S_PATH_MAX] = "unset", err[256] = "";
    int rc = aigw_models_from_json (doc, &model, got, sizeof got, err, sizeof err);
    if (verbose)
        printf ("  %s -> %d %s %s\n", text, rc, got, err);
    if (param) {
        if (rc != -1 || strcmp (got, param) != 0) {
            fprintf (stderr, "expected refusal at '%s', got %d at '%s' (%s): %s\n", param, rc, got,
                     err, text);
            assert (false);
        }
        assert (*err);
        assert (!strstr (err, "sk-secret"));
        //  Refused: OUT is empty.
        assert (!model.name && model.deployment_count == 0 && !model.deployments[0].provider);
    }
    else {
        if (rc != 0) {
            fprintf (stderr, "expected success, got '%s' (%s): %s\n", got, err, text);
            assert (false);
        }
        aigw_config_model_reset (&model);
    }
    json_decref (doc);
}

//  Same as s_expect for aigw_models_check_patch.
static void
s_expect_patch (const char *text, const char *param)
{
    json_t *doc = json_loads (text, 0, NULL);
    assert (doc);
    char got[S_PATH_MAX] = "unset", err[256] = "";
    int rc = aigw_models_check_patch (doc, got, sizeof got, err, sizeof err);
    if (param ? rc != -1 || strcmp (got, param) != 0 : rc != 0) {
        fprintf (stderr, "patch: expected '%s', got %d '%s' (%s): %s\n", param ? param : "ok", rc,
                 got, err, text);
        assert (false);
    }
    json_decref (doc);
}

void
aigw_models_doc_destroy (json_t *doc)
{
    size_t index;
    json_t *dep;
    json_array_foreach (json_object_get (doc, "deployments"), index, dep) {
        json_t *key = json_object_get (dep, "api_key");
        if (json_is_string (key))
            OPENSSL_cleanse ((char *) json_string_value (key), json_string_length (key));
    }
    json_decref (doc);
}

void
aigw_models_test (bool verbose)
{
    //  One valid deployment, spliced into the cases below.
#define D0 "{\"provider\": \"openai\", \"model\": \"gpt-4o\"}"
    //  Accepted documents.
    s_expect (verbose, "{\"name\": \"m\", \"deployments\": [" D0 "]}", NULL);
    s_expect (verbose,
              "{\"id\": \"5b1d3c2e-0000-4000-8000-000000000001\","
              " \"name\": \"漢字 🚀 'x' \\\"y\\\"\","
              " \"strategy\": \"lowest_cost\", \"fallbacks\": [\"a\", \"b\"],"
              " \"deployments\": [{\"id\": \"d1\", \"provider\": \"azure\", \"model\": \"dep\","
              " \"base_url\": \"https://x.openai.azure.com\", \"api_key\": \"sk-secret-1\","
              " \"api_version\": \"2024-10-21\", \"weight\": 0, \"priority\": 1000,"
              " \"rpm\": 0, \"tpm\": 9000000000, \"price_in\": 0.15, \"price_out\": 1},"
              " {\"provider\": \"openai\", \"model\": \"o\", \"region\": "
              "\"eu-west-1\", \"api_key_env\": \"_AWS_KEY_2\"}, " D0 "]}",
              NULL);
    //  Bedrock needs no base_url: it derives one from the region.
    if (aigw_adapter_known ("bedrock"))
        s_expect (verbose,
                  "{\"name\": \"m\", \"deployments\": [{\"provider\": \"bedrock\", "
                  "\"model\": \"anthropic.claude\", \"region\": \"eu-west-1\"}]}",
                  NULL);
    s_expect (verbose,
              "{\"name\": \"m\", \"strategy\": null, \"fallbacks\": null, \"deployments\":"
              " [{\"provider\": \"openai\", \"model\": \"x\", \"base_url\": null, \"weight\": null,"
              " \"price_in\": null}]}",
              NULL);
    s_expect (verbose,
              "{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai_compatible\", "
              "\"model\": \"x\", \"base_url\": \"http://127.0.0.1:9/v1\"}]}",
              NULL);
    //  Refused, with the path of the offending field.
    const char *cases[][2] = {
        {"[]", ""},
        {"{\"deployments\": [" D0 "]}", "name"},
        {"{\"name\": \"\", \"deployments\": [" D0 "]}", "name"},
        {"{\"name\": 7, \"deployments\": [" D0 "]}", "name"},
        {"{\"name\": \"tab\\there\", \"deployments\": [" D0 "]}", "name"},
        {"{\"name\": \"c1\\u0085\", \"deployments\": [" D0 "]}", "name"},
        {"{\"name\": \"del\\u007f\", \"deployments\": [" D0 "]}", "name"},
        {"{\"name\": \"m\"}", "deployments"},
        {"{\"name\": \"m\", \"deployments\": []}", "deployments"},
        {"{\"name\": \"m\", \"deployments\": {}}", "deployments"},
        {"{\"name\": \"m\", \"colour\": 1, \"deployments\": [" D0 "]}", "colour"},
        {"{\"name\": \"m\", \"id\": 5, \"deployments\": [" D0 "]}", "id"},
        {"{\"name\": \"m\", \"strategy\": \"random\", \"deployments\": [" D0 "]}", "strategy"},
        {"{\"name\": \"m\", \"strategy\": 1, \"deployments\": [" D0 "]}", "strategy"},
        {"{\"name\": \"m\", \"fallbacks\": \"a\", \"deployments\": [" D0 "]}", "fallbacks"},
        {"{\"name\": \"m\", \"fallbacks\": [\"a\", \"m\"], \"deployments\": [" D0 "]}",
         "fallbacks[1]"},
        {"{\"name\": \"m\", \"fallbacks\": [\"a\", \"b\", \"a\"], \"deployments\": [" D0 "]}",
         "fallbacks[2]"},
        {"{\"name\": \"m\", \"fallbacks\": [\"\"], \"deployments\": [" D0 "]}", "fallbacks[0]"},
        {"{\"name\": \"m\", \"fallbacks\": [1,2,3,4,5,6,7,8,9], \"deployments\": [" D0 "]}",
         "fallbacks"},
        {"{\"name\": \"m\", \"deployments\": [" D0 ", 5]}", "deployments[1]"},
        {"{\"name\": \"m\", \"deployments\": [" D0 ", {\"model\": \"x\"}]}",
         "deployments[1].provider"},
        {"{\"name\": \"m\", \"deployments\": [" D0 ", {\"provider\": \"nope\", \"model\": \"x\"}]}",
         "deployments[1].provider"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\"}]}",
         "deployments[0].model"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"\"}]}",
         "deployments[0].model"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"colour\": 1}]}",
         "deployments[0].colour"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"base_url\": \"ftp://x\"}]}",
         "deployments[0].base_url"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"base_url\": \"https://\"}]}",
         "deployments[0].base_url"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"base_url\": \"https://a b\"}]}",
         "deployments[0].base_url"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"azure\", \"model\": \"x\"}]}",
         "deployments[0].base_url"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai_compatible\", \"model\": "
         "\"x\"}]}",
         "deployments[0].base_url"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"api_key\": \"sk-secret\\n\"}]}",
         "deployments[0].api_key"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"api_key\": 5}]}",
         "deployments[0].api_key"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"api_key_env\": \"lower\"}]}",
         "deployments[0].api_key_env"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"api_key_env\": \"9KEY\"}]}",
         "deployments[0].api_key_env"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"api_version\": \"a b\"}]}",
         "deployments[0].api_version"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"region\": \"\"}]}",
         "deployments[0].region"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"weight\": -1}]}",
         "deployments[0].weight"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"weight\": 1000001}]}",
         "deployments[0].weight"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"weight\": 1.5}]}",
         "deployments[0].weight"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"priority\": 1001}]}",
         "deployments[0].priority"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"rpm\": -1}]}",
         "deployments[0].rpm"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"tpm\": \"5\"}]}",
         "deployments[0].tpm"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"price_in\": -0.01}]}",
         "deployments[0].price_in"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"price_out\": \"1\"}]}",
         "deployments[0].price_out"},
        {"{\"name\": \"m\", \"deployments\": [{\"provider\": \"openai\", \"model\": \"x\", "
         "\"price_out\": 1e10}]}",
         "deployments[0].price_out"},
        {"{\"name\": \"m\", \"deployments\": [{\"id\": \"a\", \"provider\": \"openai\", "
         "\"model\": \"x\"}, {\"id\": \"a\", \"provider\": \"openai\", \"model\": \"y\"}]}",
         "deployments[1].id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect (verbose, cases[i][0], cases[i][1]);

    //  Names: 128 characters pass, 129 do not, whatever their bytes.
    char doc[2048], name[600];
    name[0] = 0;
    for (int i = 0; i < 128; i++)
        strcat (name, "漢");
    snprintf (doc, sizeof doc, "{\"name\": \"%s\", \"deployments\": [" D0 "]}", name);
    s_expect (verbose, doc, NULL);
    strcat (name, "x");
    snprintf (doc, sizeof doc, "{\"name\": \"%s\", \"deployments\": [" D0 "]}", name);
    s_expect (verbose, doc, "name");
    //  More than AIGW_CONFIG_MAX_DEPLOYMENTS deployments.
    char *p = doc + sprintf (doc, "{\"name\": \"m\", \"deployments\": [");
    for (int i = 0; i <= AIGW_CONFIG_MAX_DEPLOYMENTS; i++)
        p += sprintf (p, "%s" D0, i ? "," : "");
    strcpy (p, "]}");
    s_expect (verbose, doc, "deployments");

    //  Filled: strings copied, defaults applied, the short form mirrored.
    const char *full
        = "{\"id\": \"m-id\", \"name\": \"fast\", \"strategy\": \"least_latency\", "
          "\"fallbacks\": [\"slow\"], \"deployments\": [{\"id\": \"d-1\", \"provider\": "
          "\"azure\", \"model\": \"dep\", \"base_url\": \"https://a.example\", \"api_key\": "
          "\"sk-secret-42\", \"api_version\": \"2024-10-21\", \"weight\": 3, \"priority\": 2, "
          "\"rpm\": 60, \"tpm\": 1000, \"price_in\": 0.5, \"price_out\": 1.5}, {\"provider\": "
          "\"openai\", \"model\": \"gpt-4o\", \"api_key_env\": \"MY_KEY\"}]}";
    json_t *input = json_loads (full, 0, NULL);
    assert (input);
    aigw_config_model_t model;
    char param[S_PATH_MAX], err[256];
    assert (aigw_models_from_json (input, &model, param, sizeof param, err, sizeof err) == 0);
    assert (streq (model.name, "fast") && streq (model.strategy, "least_latency"));
    assert (model.fallback_count == 1 && streq (model.fallbacks[0], "slow"));
    assert (model.deployment_count == 2);
    assert (streq (model.provider, "azure") && streq (model.upstream_model, "dep"));
    aigw_config_deployment_t *d = &model.deployments[0];
    assert (streq (d->id, "d-1") && streq (d->api_key, "sk-secret-42") && d->weight == 3
            && d->priority == 2 && d->rpm == 60 && d->tpm == 1000 && d->price_in == 0.5
            && d->price_out == 1.5 && streq (d->api_version, "2024-10-21") && !d->region);
    d = &model.deployments[1];
    assert (!d->id && !d->base_url && !d->api_key && streq (d->api_key_env, "MY_KEY")
            && d->weight == 1 && d->priority == 0 && d->rpm == 0 && d->price_in == 0);

    //  The API view: the id and source given, never the secret.
    json_t *view = aigw_models_to_json (&model, "m-id", "database");
    assert (view);
    char *text = json_dumps (view, JSON_COMPACT);
    assert (text && !strstr (text, "sk-secret-42") && !strstr (text, "\"api_key\""));
    free (text);
    assert (streq (json_string_value (json_object_get (view, "id")), "m-id"));
    assert (streq (json_string_value (json_object_get (view, "source")), "database"));
    json_t *deps = json_object_get (view, "deployments");
    assert (json_array_size (deps) == 2);
    assert (json_is_true (json_object_get (json_array_get (deps, 0), "api_key_set")));
    assert (json_is_false (json_object_get (json_array_get (deps, 1), "api_key_set")));
    assert (streq (json_string_value (json_object_get (json_array_get (deps, 1), "id")), "fast/1"));
    assert (json_is_null (json_object_get (json_array_get (deps, 1), "base_url")));

    //  Round trip: the view, less what only the view holds, reads back the
    //  same (the secret aside, which the view never carries).
    json_t *again = json_deep_copy (view);
    json_object_del (again, "source");
    size_t index;
    json_t *dep;
    json_array_foreach (json_object_get (again, "deployments"), index, dep)
        json_object_del (dep, "api_key_set");
    aigw_config_model_t second;
    assert (aigw_models_from_json (again, &second, param, sizeof param, err, sizeof err) == 0);
    assert (!second.deployments[0].api_key);
    json_t *view2 = aigw_models_to_json (&second, "m-id", "database");
    json_object_set_new (json_array_get (json_object_get (view2, "deployments"), 0), "api_key_set",
                         json_true ());
    assert (json_equal (view, view2));
    json_decref (view2);
    json_decref (again);
    aigw_config_model_reset (&second);
    json_decref (view);

    //  Reset frees and zeroes; twice is safe.
    aigw_config_model_reset (&model);
    assert (!model.name && model.deployment_count == 0 && !model.deployments[0].api_key);
    aigw_config_model_reset (&model);
    json_decref (input);

    //  The short form of a config model shows one deployment.
    aigw_config_model_t config_model
        = {.name = "gpt-4o-mini", .provider = "openai", .upstream_model = "gpt-4o-mini"};
    view = aigw_models_to_json (&config_model, "config:gpt-4o-mini", "config");
    deps = json_object_get (view, "deployments");
    assert (json_array_size (deps) == 1);
    assert (streq (json_string_value (json_object_get (json_array_get (deps, 0), "id")),
                   "gpt-4o-mini/0"));
    assert (json_integer_value (json_object_get (json_array_get (deps, 0), "weight")) == 1);
    assert (json_is_null (json_object_get (view, "strategy")));
    assert (json_array_size (json_object_get (view, "fallbacks")) == 0);
    json_decref (view);

    //  PATCH bodies: any field alone, each checked the same way.
    s_expect_patch ("{\"name\": \"n\"}", NULL);
    s_expect_patch ("{\"strategy\": null}", NULL);
    s_expect_patch ("{\"fallbacks\": null}", NULL);
    s_expect_patch ("{\"deployments\": [{\"id\": \"x\", \"provider\": \"openai\", \"model\": "
                    "\"m\"}]}",
                    NULL);
    s_expect_patch ("{}", "");
    s_expect_patch ("[1]", "");
    s_expect_patch ("{\"id\": \"x\"}", "id");
    s_expect_patch ("{\"name\": null}", "name");
    s_expect_patch ("{\"name\": \"n\", \"fallbacks\": [\"n\"]}", "fallbacks[0]");
    s_expect_patch ("{\"fallbacks\": [\"n\", \"n\"]}", "fallbacks[1]");
    s_expect_patch ("{\"deployments\": null}", "deployments");
    s_expect_patch ("{\"deployments\": [{\"provider\": \"openai\", \"model\": \"m\", "
                    "\"weight\": -2}]}",
                    "deployments[0].weight");

    //  The provider processes' statement: no parameters, the secret in it.
    assert (strstr (AIGW_MODELS_SQL, "d.api_key") && !strstr (AIGW_MODELS_SQL, "$1"));
    assert (streq (AIGW_MODELS_CHANNEL, "aigw_models"));

    //  A deployment's associated data: its id, whatever its case.
    char aad[AIGW_MODELS_AAD_MAX], upper[AIGW_MODELS_AAD_MAX];
    aigw_models_key_aad ("0e5c7a1e-aaaa-4bbb-8ccc-0123456789ab", aad, sizeof aad);
    aigw_models_key_aad ("0E5C7A1E-AAAA-4BBB-8CCC-0123456789AB", upper, sizeof upper);
    assert (streq (aad, "model_deployments.api_key:0e5c7a1e-aaaa-4bbb-8ccc-0123456789ab")
            && streq (aad, upper));
#undef D0
    if (verbose)
        printf ("models: ok\n");
}
