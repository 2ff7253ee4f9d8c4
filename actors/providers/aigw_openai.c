/*  aigw_openai: OpenAI wire-format helpers. */
#include "aigw_openai.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
aigw_openai_path (aigw_kind_t kind)
{
    switch (kind) {
    case AIGW_KIND_CHAT:
        return "/chat/completions";
    case AIGW_KIND_EMBEDDINGS:
        return "/embeddings";
    case AIGW_KIND_MODELS:
        return "/models";
    default:
        return NULL;
    }
}

size_t
aigw_openai_sse_event_end (const char *data, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (data[i] != '\n')
            continue;
        if (data[i + 1] == '\n')
            return i + 2;
        if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

bool
aigw_openai_sse_is_done (const char *event, size_t len)
{
    static const char done[] = "data: [DONE]";
    size_t n = sizeof done - 1;
    return len >= n && memcmp (event, done, n) == 0
           && (len == n || event[n] == '\r' || event[n] == '\n');
}

char *
aigw_openai_error_message (const char *body, size_t len)
{
    json_t *root = json_loadb (body ? body : "", len, 0, NULL);
    json_t *message = json_object_get (json_object_get (root, "error"), "message");
    char *result = json_is_string (message) ? strdup (json_string_value (message)) : NULL;
    json_decref (root);
    return result;
}

char *
aigw_openai_with_model (const char *body, size_t len, const char *model, size_t *out_len)
{
    json_t *root = json_loadb (body ? body : "", len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return NULL;
    }
    json_object_set_new (root, "model", json_string (model));
    char *result = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    if (result)
        *out_len = strlen (result);
    return result;
}

void
aigw_openai_test (bool verbose)
{
    const char *stream = "data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
    size_t len = strlen (stream);
    //  Fed one byte at a time, events are found exactly at their ends.
    size_t ends[3], found = 0, start = 0;
    for (size_t upto = 1; upto <= len; upto++) {
        size_t end = aigw_openai_sse_event_end (stream + start, upto - start);
        if (end) {
            ends[found++] = start + end;
            start += end;
        }
    }
    assert (found == 3);
    assert (ends[0] == 15 && ends[1] == 32 && ends[2] == len);
    assert (!aigw_openai_sse_is_done (stream, ends[0]));
    assert (aigw_openai_sse_is_done (stream + ends[1], len - ends[1]));
    assert (aigw_openai_sse_event_end ("data: x\n", 8) == 0);

    char *message = aigw_openai_error_message ("{\"error\":{\"message\":\"bad\"}}", 27);
    assert (message && strcmp (message, "bad") == 0);
    free (message);
    assert (aigw_openai_error_message ("oops", 4) == NULL);

    size_t out_len = 0;
    char *body = aigw_openai_with_model ("{\"model\":\"a\",\"x\":1}", 19, "b", &out_len);
    assert (body && strstr (body, "\"model\":\"b\"") && out_len == strlen (body));
    free (body);
    assert (aigw_openai_path (AIGW_KIND_CHAT));
    if (verbose)
        printf ("openai: ok\n");
}
