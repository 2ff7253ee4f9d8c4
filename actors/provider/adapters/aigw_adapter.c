/*  aigw_adapter: the provider name table and the helpers every adapter
    shares (request headers, output buffers, the OpenAI error event). */
#include "aigw_adapter.h"

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
    {"openai", &aigw_adapter_openai, "https://api.openai.com/v1"},
    {"azure", &aigw_adapter_azure, NULL},
    {"anthropic", &aigw_adapter_anthropic, "https://api.anthropic.com"},
    {"gemini", &aigw_adapter_gemini, "https://generativelanguage.googleapis.com"},
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
aigw_adapter_append_error_event (char **out, size_t *out_len, const char *type, const char *code,
                                 const char *message)
{
    json_t *event = json_pack (
        "{s:{s:s,s:s,s:s}}", "error", "message", message ? message : "The upstream failed.", "type",
        type ? type : "upstream_error", "code", code ? code : "upstream_error");
    char *text = event ? json_dumps (event, JSON_COMPACT) : NULL;
    json_decref (event);
    if (!text)
        return -1;
    int rc = aigw_adapter_append (out, out_len, "data: ", 6);
    if (rc == 0)
        rc = aigw_adapter_append (out, out_len, text, strlen (text));
    if (rc == 0)
        rc = aigw_adapter_append (out, out_len, "\n\n", 2);
    free (text);
    return rc;
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
    if (verbose)
        printf ("adapter: ok\n");
}
