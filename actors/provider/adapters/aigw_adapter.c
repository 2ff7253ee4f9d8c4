/*  aigw_adapter: the provider name table and the helpers every adapter
    shares (request headers, output buffers, the OpenAI error event). */
#include "aigw_adapter.h"
#include "aigw_json.h"
#include "aigw_config.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  Adapters are declared weak so a build missing one (a work in progress)
//  still links: its provider is then unknown.
extern const aigw_adapter_t aigw_adapter_openai __attribute__ ((weak));
extern const aigw_adapter_t aigw_adapter_azure __attribute__ ((weak));
extern const aigw_adapter_t aigw_adapter_anthropic __attribute__ ((weak));
extern const aigw_adapter_t aigw_adapter_gemini __attribute__ ((weak));
extern const aigw_adapter_t aigw_adapter_bedrock __attribute__ ((weak));

//  One provider name and what serves it.
typedef struct {
    const char *name;               //  as written in config and the admin API
    const aigw_adapter_t *adapter;  //  its wire format
    const char *base_url;           //  default base URL, NULL = the deployment must give one
} s_provider_t;

static const s_provider_t s_providers[] = {
    {"openai", &aigw_adapter_openai, AIGW_DEFAULT_OPENAI_BASE_URL},
    {"azure", &aigw_adapter_azure, NULL},
    {"anthropic", &aigw_adapter_anthropic, AIGW_DEFAULT_ANTHROPIC_BASE_URL},
    {"gemini", &aigw_adapter_gemini, AIGW_DEFAULT_GEMINI_BASE_URL},
    {"bedrock", &aigw_adapter_bedrock, NULL},
    //  OpenAI-compatible servers: the OpenAI format at another base URL.
    {"openai_compatible", &aigw_adapter_openai, NULL},
    {"vllm", &aigw_adapter_openai, "http://127.0.0.1:8000/v1"},
    {"ollama", &aigw_adapter_openai, "http://127.0.0.1:11434/v1"},
    {"groq", &aigw_adapter_openai, "https://api.groq.com/openai/v1"},
    {"mistral", &aigw_adapter_openai, "https://api.mistral.ai/v1"},
    {"deepseek", &aigw_adapter_openai, "https://api.deepseek.com/v1"},
    {"together", &aigw_adapter_openai, "https://api.together.xyz/v1"},
    {"openrouter", &aigw_adapter_openai, "https://openrouter.ai/api/v1"},
};

static const s_provider_t *
s_provider (const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof s_providers / sizeof s_providers[0]; i++)
        if (strcmp (s_providers[i].name, name) == 0)
            return &s_providers[i];
    return NULL;
}

const aigw_adapter_t *
aigw_adapter_find (const char *provider)
{
    const s_provider_t *p = s_provider (provider);
    //  A weak adapter that is not linked has address NULL.
    return p && p->adapter && p->adapter->name ? p->adapter : NULL;
}

const char *
aigw_adapter_default_base_url (const char *provider)
{
    const s_provider_t *p = s_provider (provider);
    return p ? p->base_url : NULL;
}

bool
aigw_adapter_known (const char *provider)
{
    return aigw_adapter_find (provider) != NULL;
}

//  --------------------------------------------------------------------------
//  Config: the providers.* settings and what a deployment's provider must
//  be. The one global state of this file: rows registered before main.

#define S_HOST_CONNECTIONS_MAX 100000  //  providers.max_host_connections
#define S_REGION_MAX           64      //  longest AWS region name

//  A provider that has an adapter in this build. The message lists the
//  names that do, in table order.
static int
s_check_provider (const char *value, char *problem, size_t problem_size)
{
    if (aigw_adapter_known (value))
        return 0;
    size_t used = (size_t) snprintf (problem, problem_size, "unknown provider");
    const char *lead = ", expected one of ";
    for (size_t i = 0; i < sizeof s_providers / sizeof s_providers[0] && used < problem_size; i++)
        if (aigw_adapter_known (s_providers[i].name)) {
            used += (size_t) snprintf (problem + used, problem_size - used, "%s%s", lead,
                                       s_providers[i].name);
            lead = ", ";
        }
    return -1;
}

//  An AWS region name: lower-case letters, digits and '-' (it becomes part
//  of a host name, so nothing else may pass).
static int
s_check_region (const char *value, char *problem, size_t problem_size)
{
    size_t len = strlen (value);
    bool valid = len <= S_REGION_MAX;
    for (size_t i = 0; valid && i < len; i++)
        valid = (value[i] >= 'a' && value[i] <= 'z') || (value[i] >= '0' && value[i] <= '9')
                || value[i] == '-';
    if (valid)
        return 0;
    snprintf (problem, problem_size, "expected an AWS region such as us-east-1");
    return -1;
}

static const aigw_config_keyword_t s_providers_keywords[]
    = {AIGW_CONFIG_KW_NUMBER ("connect_timeout_ms", AIGW_CONFIG_INT64, aigw_config_t,
                              connect_timeout_ms, AIGW_CONFIG_TIMEOUT_MS_MIN,
                              AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_CONNECT_TIMEOUT_MS),
       AIGW_CONFIG_KW_NUMBER ("max_host_connections", AIGW_CONFIG_INT, aigw_config_t,
                              max_host_connections, 1, S_HOST_CONNECTIONS_MAX,
                              AIGW_DEFAULT_MAX_HOST_CONNECTIONS),
       AIGW_CONFIG_KW_END};

//  providers.NAME of a provider with a default endpoint: its base_url and
//  api_key, each with its environment variable.
#define S_ENDPOINT_KEYWORDS(table, url_field, key_field, url_default, url_env, key_env)          \
    static const aigw_config_keyword_t table[] = {                                               \
        AIGW_CONFIG_KW_STRING ("base_url", aigw_config_t, url_field, aigw_config_check_url,      \
                               url_default, .env = url_env),                                     \
        AIGW_CONFIG_KW_STRING ("api_key", aigw_config_t, key_field, NULL, NULL, .env = key_env), \
        AIGW_CONFIG_KW_END}

S_ENDPOINT_KEYWORDS (s_openai_keywords, openai_base_url, openai_api_key,
                     AIGW_DEFAULT_OPENAI_BASE_URL, "OPENAI_BASE_URL", "OPENAI_API_KEY");
S_ENDPOINT_KEYWORDS (s_anthropic_keywords, anthropic_base_url, anthropic_api_key,
                     AIGW_DEFAULT_ANTHROPIC_BASE_URL, "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY");
S_ENDPOINT_KEYWORDS (s_gemini_keywords, gemini_base_url, gemini_api_key,
                     AIGW_DEFAULT_GEMINI_BASE_URL, "GEMINI_BASE_URL", "GEMINI_API_KEY");

static const aigw_config_keyword_t s_azure_keywords[]
    = {AIGW_CONFIG_KW_STRING ("base_url", aigw_config_t, azure_base_url, aigw_config_check_url,
                              NULL, .env = "AZURE_OPENAI_ENDPOINT"),
       AIGW_CONFIG_KW_STRING ("api_key", aigw_config_t, azure_api_key, NULL, NULL,
                              .env = "AZURE_OPENAI_API_KEY"),
       AIGW_CONFIG_KW_STRING ("api_version", aigw_config_t, azure_api_version, NULL, NULL,
                              .env = "AZURE_OPENAI_API_VERSION"),
       AIGW_CONFIG_KW_END};

static const aigw_config_keyword_t s_bedrock_keywords[]
    = {AIGW_CONFIG_KW_STRING ("base_url", aigw_config_t, bedrock_base_url, aigw_config_check_url,
                              NULL, .env = "BEDROCK_BASE_URL"),
       AIGW_CONFIG_KW_STRING ("region", aigw_config_t, aws_region, s_check_region, NULL,
                              .env = "AWS_REGION"),
       AIGW_CONFIG_KW_STRING ("access_key_id", aigw_config_t, aws_access_key_id, NULL, NULL,
                              .env = "AWS_ACCESS_KEY_ID"),
       AIGW_CONFIG_KW_STRING ("secret_access_key", aigw_config_t, aws_secret_access_key, NULL, NULL,
                              .env = "AWS_SECRET_ACCESS_KEY"),
       AIGW_CONFIG_KW_STRING ("session_token", aigw_config_t, aws_session_token, NULL, NULL,
                              .env = "AWS_SESSION_TOKEN"),
       AIGW_CONFIG_KW_END};

//  A model's provider, in the short form (models[].provider).
static const aigw_config_keyword_t s_model_keywords[]
    = {AIGW_CONFIG_KW_STRING ("provider", aigw_config_model_t, provider, s_check_provider, NULL),
       AIGW_CONFIG_KW_END};

//  Where and how each deployment reaches its upstream (models[].deployments[]).
static const aigw_config_keyword_t s_deployment_keywords[] = {
    AIGW_CONFIG_KW_STRING ("provider", aigw_config_deployment_t, provider, s_check_provider, NULL),
    AIGW_CONFIG_KW_STRING ("model", aigw_config_deployment_t, model, NULL, NULL),
    AIGW_CONFIG_KW_STRING ("base_url", aigw_config_deployment_t, base_url, aigw_config_check_url,
                           NULL),
    AIGW_CONFIG_KW_STRING ("api_key", aigw_config_deployment_t, api_key, NULL, NULL),
    AIGW_CONFIG_KW_STRING ("api_key_env", aigw_config_deployment_t, api_key_env,
                           aigw_config_check_env_name, NULL),
    AIGW_CONFIG_KW_STRING ("api_version", aigw_config_deployment_t, api_version, NULL, NULL),
    AIGW_CONFIG_KW_STRING ("region", aigw_config_deployment_t, region, s_check_region, NULL),
    AIGW_CONFIG_KW_END};

//  aigw_config_deployment_fn: every deployment has a base URL (its own, the
//  provider's default, providers.azure.base_url for azure, the region's for
//  bedrock).
static int
s_check_base_url (const aigw_config_t *config, const aigw_config_deployment_t *deployment,
                  char *problem, size_t problem_size)
{
    const char *provider = deployment->provider;
    if (deployment->base_url || aigw_adapter_default_base_url (provider)
        || strcmp (provider, "bedrock") == 0)
        return 0;
    bool azure = strcmp (provider, "azure") == 0;
    if (azure && config->azure_base_url)
        return 0;
    if (azure)
        snprintf (problem, problem_size,
                  "needs base_url (set it here, in providers.azure.base_url "
                  "or AZURE_OPENAI_ENDPOINT)");
    else
        snprintf (problem, problem_size, "needs base_url (provider %s has no default)", provider);
    return -1;
}

static void __attribute__ ((constructor)) s_config_keywords (void)
{
    aigw_config_register ("providers", s_providers_keywords);
    aigw_config_register ("providers.openai", s_openai_keywords);
    aigw_config_register ("providers.anthropic", s_anthropic_keywords);
    aigw_config_register ("providers.gemini", s_gemini_keywords);
    aigw_config_register ("providers.azure", s_azure_keywords);
    aigw_config_register ("providers.bedrock", s_bedrock_keywords);
    aigw_config_register ("models[]", s_model_keywords);
    aigw_config_register ("models[].deployments[]", s_deployment_keywords);
    aigw_config_register_deployment_check (s_check_base_url);
}

int
aigw_upstream_request_header (aigw_upstream_request_t *out, const char *name, const char *value)
{
    if (out->header_count >= AIGW_ADAPTER_HEADERS_MAX || !name || !value)
        return -1;
    size_t size = strlen (name) + strlen (value) + 3;
    char *line = malloc (size);
    if (!line)
        return -1;
    snprintf (line, size, "%s: %s", name, value);
    out->headers[out->header_count++] = line;
    return 0;
}

void
aigw_upstream_request_reset (aigw_upstream_request_t *out)
{
    for (size_t i = 0; i < out->header_count; i++) {
        //  Authorization and api-key values are secrets.
        explicit_bzero (out->headers[i], strlen (out->headers[i]));
        free (out->headers[i]);
    }
    free (out->body);
    memset (out, 0, sizeof *out);
}

int
aigw_adapter_append (char **out, size_t *out_len, const char *data, size_t len)
{
    char *grown = realloc (*out, *out_len + len + 1);
    if (!grown)
        return -1;
    memcpy (grown + *out_len, data, len);
    *out_len += len;
    grown[*out_len] = '\0';
    *out = grown;
    return 0;
}

int
aigw_adapter_append_sse (char **out, size_t *out_len, const char *name, json_t *data)
{
    size_t len = 0;
    char *text = aigw_json_dump (data, &len);
    if (!text)
        return -1;
    int rc = 0;
    if (name) {
        rc = aigw_adapter_append (out, out_len, "event: ", 7);
        rc = rc ? rc : aigw_adapter_append (out, out_len, name, strlen (name));
        rc = rc ? rc : aigw_adapter_append (out, out_len, "\n", 1);
    }
    rc = rc ? rc : aigw_adapter_append (out, out_len, "data: ", 6);
    rc = rc ? rc : aigw_adapter_append (out, out_len, text, len);
    rc = rc ? rc : aigw_adapter_append (out, out_len, "\n\n", 2);
    free (text);
    return rc;
}

int
aigw_adapter_append_event (char **out, size_t *out_len, json_t *event)
{
    return aigw_adapter_append_sse (out, out_len, NULL, event);
}

bool
aigw_adapter_url_safe (const char *text)
{
    if (!text || !*text)
        return false;
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

int
aigw_adapter_append_error_event (char **out, size_t *out_len, const char *type, const char *code,
                                 const char *message)
{
    return aigw_adapter_append_event (out, out_len,
                                      json_pack ("{s:{s:s,s:s,s:s}}", "error", "message",
                                                 message ? message : "The upstream failed.", "type",
                                                 type ? type : "upstream_error", "code",
                                                 code ? code : "upstream_error"));
}

int
aigw_adapter_append_error (char **out, size_t *out_len, const char *type, const char *message)
{
    if (aigw_adapter_append_error_event (out, out_len, type, "upstream_error", message))
        return -1;
    return aigw_adapter_append (out, out_len, "data: [DONE]\n\n", 14);
}

void
aigw_adapter_test (bool verbose)
{
    //  providers.* reach the config with their defaults.
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    assert (strcmp (config->openai_base_url, AIGW_DEFAULT_OPENAI_BASE_URL) == 0);
    assert (strcmp (config->anthropic_base_url, AIGW_DEFAULT_ANTHROPIC_BASE_URL) == 0);
    assert (strcmp (config->gemini_base_url, AIGW_DEFAULT_GEMINI_BASE_URL) == 0);
    assert (config->connect_timeout_ms == AIGW_DEFAULT_CONNECT_TIMEOUT_MS);
    assert (config->max_host_connections == AIGW_DEFAULT_MAX_HOST_CONNECTIONS);
    aigw_config_destroy (&config);

    assert (aigw_adapter_known ("openai"));
    assert (aigw_adapter_find ("vllm") == aigw_adapter_find ("openai"));
    assert (!aigw_adapter_known ("OpenAI"));
    assert (!aigw_adapter_known (NULL));
    assert (!aigw_adapter_known ("mystery"));
    assert (aigw_adapter_default_base_url ("azure") == NULL);
    assert (strcmp (aigw_adapter_default_base_url ("groq"), "https://api.groq.com/openai/v1") == 0);

    aigw_upstream_request_t req = {0};
    assert (aigw_upstream_request_header (&req, "Authorization", "Bearer s") == 0);
    assert (strcmp (req.headers[0], "Authorization: Bearer s") == 0);
    for (int i = 1; i < AIGW_ADAPTER_HEADERS_MAX; i++)
        assert (aigw_upstream_request_header (&req, "X", "y") == 0);
    assert (aigw_upstream_request_header (&req, "X", "y") == -1);
    aigw_upstream_request_reset (&req);
    assert (req.header_count == 0 && req.body == NULL);

    char *out = NULL;
    size_t len = 0;
    assert (aigw_adapter_append (&out, &len, "ab", 2) == 0);
    assert (aigw_adapter_append_error (&out, &len, "upstream_error", "it \"broke\"") == 0);
    assert (strlen (out) == len);
    assert (strstr (out, "ab"
                         "data: {\"error\":{\"message\":\"it \\\"broke\\\"\""));
    assert (len > 16 && strcmp (out + len - 16, "\n\ndata: [DONE]\n\n") == 0);
    free (out);

    assert (aigw_adapter_url_safe ("gemini-2.0_flash"));
    assert (!aigw_adapter_url_safe ("a/b") && !aigw_adapter_url_safe ("a?b"));
    assert (!aigw_adapter_url_safe ("") && !aigw_adapter_url_safe (NULL));
    if (verbose)
        printf ("adapter: ok\n");
}
