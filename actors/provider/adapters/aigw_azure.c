/*  aigw_azure: Azure OpenAI. The OpenAI wire format, but the deployment is
    in the path, the API version in the query and the key in an api-key
    header: {base}/openai/deployments/{deployment}/{chat/completions |
    embeddings}?api-version=V. */
#include "aigw_adapter.h"
#include "aigw_openai.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  api-version used when the deployment names none (a GA version).
#define AIGW_AZURE_API_VERSION "2024-10-21"

//  True when TEXT is safe as one URL path segment or query value.
static bool
s_url_safe (const char *text)
{
    if (!text || !*text)
        return false;
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

static int
s_request (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body, size_t len,
           aigw_upstream_request_t *out, char *err, size_t err_size)
{
    const char *path = kind == AIGW_KIND_CHAT         ? "chat/completions"
                       : kind == AIGW_KIND_EMBEDDINGS ? "embeddings"
                                                      : NULL;
    if (!path)
        return 1;
    const char *version = up->api_version ? up->api_version : AIGW_AZURE_API_VERSION;
    if (!up->base_url || !s_url_safe (up->model) || !s_url_safe (version)) {
        snprintf (err, err_size,
                  "The Azure deployment needs a base URL, a deployment name "
                  "and an api-version of letters, digits, '-', '_' or '.'.");
        return -1;
    }
    char url[AIGW_ADAPTER_URL_MAX];
    if ((size_t) snprintf (url, sizeof url, "%s/openai/deployments/%s/%s?api-version=%s",
                           up->base_url, up->model, path, version)
        >= sizeof url) {
        snprintf (err, err_size, "The upstream URL is too long.");
        return -1;
    }
    //  Azure takes the deployment from the path: the client's model name
    //  stays out of the body.
    aigw_upstream_t same = *up;
    same.model = NULL;
    if (aigw_openai_build (&same, url, "api-key", up->api_key, body, len, out, err, err_size))
        return -1;
    json_t *root = json_loadb (out->body, out->body_len, 0, NULL);
    if (json_is_object (root) && json_object_get (root, "model")) {
        json_object_del (root, "model");
        char *text = json_dumps (root, JSON_COMPACT);
        if (text) {
            free (out->body);
            out->body = text;
            out->body_len = strlen (text);
        }
    }
    json_decref (root);
    return 0;
}

const aigw_adapter_t aigw_adapter_azure = {
    .name = "azure",
    .request = s_request,
    //  Answers, errors and streams are OpenAI's.
    .response = aigw_openai_response,
    .error_message = aigw_openai_error_message,
    .stream_new = aigw_openai_stream_new,
    .stream_feed = aigw_openai_stream_feed,
    .stream_done = aigw_openai_stream_done,
    .stream_destroy = aigw_openai_stream_destroy,
};

void
aigw_azure_test (bool verbose)
{
    aigw_upstream_t up
        = {.base_url = "https://x.openai.azure.com", .model = "gpt4o-prod", .api_key = "k1"};
    aigw_upstream_request_t req = {0};
    char err[256] = "";
    const char *body = "{\"model\":\"gpt-4o\",\"input\":\"hi\"}";
    assert (aigw_adapter_azure.request (&up, AIGW_KIND_EMBEDDINGS, false, body, strlen (body), &req,
                                        err, sizeof err)
            == 0);
    assert (strcmp (req.url, "https://x.openai.azure.com/openai/deployments/gpt4o-prod/"
                             "embeddings?api-version=" AIGW_AZURE_API_VERSION)
            == 0);
    assert (strcmp (req.headers[1], "api-key: k1") == 0);
    assert (strcmp (req.body, "{\"input\":\"hi\"}") == 0);
    aigw_upstream_request_reset (&req);
    up.model = "../admin";
    assert (aigw_adapter_azure.request (&up, AIGW_KIND_CHAT, false, body, strlen (body), &req, err,
                                        sizeof err)
            == -1);
    assert (!strstr (err, "k1"));
    aigw_upstream_request_reset (&req);
    up.model = "d";
    assert (aigw_adapter_azure.request (&up, AIGW_KIND_MESSAGES, false, body, strlen (body), &req,
                                        err, sizeof err)
            == 1);
    aigw_upstream_request_reset (&req);
    if (verbose)
        printf ("azure: ok\n");
}
