/*  aigw_openai: OpenAI wire-format helpers. */
#include "aigw_openai.h"
#include "aigw_adapter.h"
#include "aigw_json.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
aigw_openai_path (aigw_kind_t kind)
{
    switch (kind) {
        case AIGW_KIND_CHAT: return "/chat/completions";
        case AIGW_KIND_EMBEDDINGS: return "/embeddings";
        case AIGW_KIND_MODELS: return "/models";
        default: return NULL;
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
    return aigw_json_error_message (body, len);
}

//  BODY with the LEN bytes at AT replaced by WITH (WITH_LEN bytes), into a
//  new NUL-terminated string of *OUT_LEN bytes.
static char *
s_splice (const char *body, size_t len, size_t at, size_t cut, const char *with, size_t with_len,
          size_t *out_len)
{
    size_t size = len - cut + with_len;
    char *out = malloc (size + 1);
    if (!out)
        return NULL;
    memcpy (out, body, at);
    memcpy (out + at, with, with_len);
    memcpy (out + at + with_len, body + at + cut, len - at - cut);
    out[size] = '\0';
    *out_len = size;
    return out;
}

char *
aigw_openai_with_model (const char *body, size_t len, const char *model, size_t *out_len)
{
    //  The model's value swapped in place: no parse and dump of the whole
    //  body (two thirds of the provider's JSON work on a plain request).
    //  An object with the key twice, or one the quick scan cannot read,
    //  takes the parser's way, and so does one with a NUL byte (Jansson
    //  reads it as the end).
    size_t at = 0, size = 0;
    int members = body && !memchr (body, '\0', len)
                      ? aigw_json_member (body, len, "model", &at, &size)
                      : -1;
    if (members == 0 || members == 1) {
        size_t quoted_len = 0;
        char *quoted = aigw_json_quote (model, strlen (model), &quoted_len);
        char *out = NULL;
        if (quoted && members == 1)
            out = s_splice (body, len, at, size, quoted, quoted_len, out_len);
        else if (quoted) {
            //  No model yet: the first member.
            size_t open = aigw_json_space (body, len, 0) + 1;  //  past '{'
            size_t after = aigw_json_space (body, len, open);
            bool empty = after < len && body[after] == '}';
            size_t member_len = quoted_len + 8 + (empty ? 0 : 1);  //  "model":
            char *member = malloc (member_len + 1);
            if (member) {
                snprintf (member, member_len + 1, "\"model\":%s%s", quoted, empty ? "" : ",");
                out = s_splice (body, len, open, 0, member, member_len, out_len);
            }
            free (member);
        }
        free (quoted);
        return out;
    }
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

//  --------------------------------------------------------------------------
//  The OpenAI adapter, also serving OpenAI-compatible servers

//  Stream state: bytes of a partial event, and whether [DONE] passed.
struct _aigw_adapter_stream_t {
    char *pending;       //  bytes not yet forming a whole event
    size_t pending_len;  //  bytes in pending
    bool done;           //  [DONE] seen
};

//  An assistant message's CONTENT of text parts alone, joined into one
//  string (a new reference), as the gateway sends an unmarked turn: not
//  every OpenAI-compatible server takes parts there. NULL otherwise.
static json_t *
s_assistant_text (json_t *content)
{
    if (!json_is_array (content))
        return NULL;
    char *text = NULL;
    size_t len = 0, index;
    json_t *part;
    json_array_foreach (content, index, part) {
        const char *type = json_string_value (json_object_get (part, "type"));
        json_t *piece = json_object_get (part, "text");
        if (!type || strcmp (type, "text") != 0 || !json_is_string (piece)
            || aigw_adapter_append (&text, &len, json_string_value (piece),
                                    json_string_length (piece))) {
            free (text);
            return NULL;
        }
    }
    json_t *joined = json_stringn (text ? text : "", len);
    free (text);
    return joined;
}

//  BODY (*LEN bytes, NUL-terminated, malloc'd) without the cache_control
//  marks the gateway's format may carry on messages, their content parts,
//  tool calls and tools (Anthropic's prompt caching; OpenAI caches by
//  itself and refuses fields it does not know). Cheap when there is none.
static void
s_strip_cache_control (char **body, size_t *len)
{
    if (!memmem (*body, *len, "\"cache_control\"", 15))
        return;
    json_t *root = json_loadb (*body, *len, 0, NULL);
    const char *lists[] = {"messages", "tools"};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        size_t index, part_index;
        json_t *item, *part;
        json_array_foreach (json_object_get (root, lists[l]), index, item) {
            json_object_del (item, "cache_control");
            json_array_foreach (json_object_get (item, "content"), part_index, part)
                json_object_del (part, "cache_control");
            json_array_foreach (json_object_get (item, "tool_calls"), part_index, part)
                json_object_del (part, "cache_control");
            const char *role = json_string_value (json_object_get (item, "role"));
            json_t *joined = role && strcmp (role, "assistant") == 0
                                 ? s_assistant_text (json_object_get (item, "content"))
                                 : NULL;
            if (joined)
                json_object_set_new (item, "content", joined);
        }
    }
    char *stripped = json_is_object (root) ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    if (stripped) {
        free (*body);
        *body = stripped;
        *len = strlen (stripped);
    }
}

//  Fill OUT with URL, headers and BODY (model replaced by UP->model).
//  Shared with the Azure adapter, which passes its own URL and key header.
int
aigw_openai_build (const aigw_upstream_t *up, const char *url, const char *key_header,
                   const char *key_value, const char *body, size_t len,
                   aigw_upstream_request_t *out, char *err, size_t err_size)
{
    if (strlen (url) >= sizeof out->url) {
        snprintf (err, err_size, "The upstream URL is too long.");
        return -1;
    }
    snprintf (out->url, sizeof out->url, "%s", url);
    out->body = up->model ? aigw_openai_with_model (body, len, up->model, &out->body_len) : NULL;
    if (!out->body) {
        if (!(out->body = malloc (len + 1)))
            return -1;
        memcpy (out->body, body, len);
        out->body[len] = '\0';
        out->body_len = len;
    }
    s_strip_cache_control (&out->body, &out->body_len);
    if (aigw_upstream_request_header (out, "Content-Type", "application/json"))
        return -1;
    if (key_value && *key_value && aigw_upstream_request_header (out, key_header, key_value))
        return -1;
    return 0;
}

static int
s_openai_request (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body,
                  size_t len, aigw_upstream_request_t *out, char *err, size_t err_size)
{
    const char *path = aigw_openai_path (kind);
    if (!path || kind == AIGW_KIND_MODELS)
        return 1;
    const char *base = up->base_url ? up->base_url : aigw_adapter_default_base_url ("openai");
    char url[AIGW_ADAPTER_URL_MAX];
    if ((size_t) snprintf (url, sizeof url, "%s%s", base, path) >= sizeof url) {
        snprintf (err, err_size, "The upstream URL is too long.");
        return -1;
    }
    char bearer[1024] = "";
    if (up->api_key && *up->api_key)
        snprintf (bearer, sizeof bearer, "Bearer %s", up->api_key);
    int rc = aigw_openai_build (up, url, "Authorization", bearer, body, len, out, err, err_size);
    explicit_bzero (bearer, sizeof bearer);
    return rc;
}

//  A 2xx OpenAI answer needs no translation: copied as it came.
char *
aigw_openai_response (aigw_kind_t kind, const char *body, size_t len, const char *model,
                      size_t *out_len, char *err, size_t err_size)
{
    char *copy = malloc (len + 1);
    if (!copy)
        return NULL;
    memcpy (copy, body, len);
    copy[len] = '\0';
    *out_len = len;
    return copy;
}

aigw_adapter_stream_t *
aigw_openai_stream_new (const char *model, const char *id)
{
    return calloc (1, sizeof (aigw_adapter_stream_t));
}

//  Pass whole SSE events through; a partial one waits for its end.
int
aigw_openai_stream_feed (aigw_adapter_stream_t *self, const char *data, size_t len, char **out,
                         size_t *out_len, char *err, size_t err_size)
{
    if (aigw_adapter_append (&self->pending, &self->pending_len, data, len))
        return -1;
    size_t used = 0, end;
    while ((end = aigw_openai_sse_event_end (self->pending + used, self->pending_len - used))) {
        if (aigw_openai_sse_is_done (self->pending + used, end))
            self->done = true;
        used += end;
    }
    if (used && aigw_adapter_append (out, out_len, self->pending, used))
        return -1;
    memmove (self->pending, self->pending + used, self->pending_len - used);
    self->pending_len -= used;
    if (self->pending_len > AIGW_OPENAI_SSE_EVENT_MAX) {
        snprintf (err, err_size, "An upstream stream event is over %d bytes.",
                  AIGW_OPENAI_SSE_EVENT_MAX);
        aigw_adapter_append_error (out, out_len, "upstream_error", err);
        return -1;
    }
    return 0;
}

bool
aigw_openai_stream_done (aigw_adapter_stream_t *self)
{
    return self->done;
}

void
aigw_openai_stream_destroy (aigw_adapter_stream_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->pending);
    free (*self_p);
    *self_p = NULL;
}

const aigw_adapter_t aigw_adapter_openai = {
    .name = "openai",
    .request = s_openai_request,
    AIGW_OPENAI_ANSWER_MEMBERS,
};

int
aigw_openai_append_chunk (char **out, size_t *out_len, const char *id, json_int_t created,
                          const char *model, json_t *delta, const char *finish, json_t *usage)
{
    json_t *chunk
        = json_pack ("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}]}", "id", id, "object",
                     "chat.completion.chunk", "created", created, "model", model, "choices",
                     "index", 0, "delta", delta, "logprobs", "finish_reason", finish);
    if (chunk && usage)
        json_object_set_new (chunk, "usage", usage);
    else
        json_decref (usage);
    return aigw_adapter_append_event (out, out_len, chunk);
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
    //  The swap in place and the parser's way agree, whatever the shape:
    //  the model first, last, missing, twice, escaped, among nested values.
    const char *bodies[] = {
        "{\"model\":\"a\",\"x\":1}",
        " { \"x\" : [1, {\"model\": \"n\"}] , \"model\" : \"a\" } ",
        "{\"x\":\"\\\"model\\\":1\",\"y\":{\"a\":[\"}\",\"]\"]},\"z\":true}",
        "{}",
        " {\n} ",
        "{\"model\":null,\"stream\":false}",
        "{\"model\":\"a\",\"model\":\"c\"}",
        "{\"mod\\u0065l\":\"a\"}",
        "{\"model\":{\"deep\":[1,2,{\"model\":3}]},\"n\":-1.5e3}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"h\u00e9llo \\\" }\"}]}",
    };
    const char *models[] = {"b", "we\"ird\\name\n", "gpt-4o-mini"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
            json_t *want = json_loadb (bodies[i], strlen (bodies[i]), 0, NULL);
            assert (json_is_object (want));
            json_object_set_new (want, "model", json_string (models[m]));
            body = aigw_openai_with_model (bodies[i], strlen (bodies[i]), models[m], &out_len);
            assert (body && out_len == strlen (body));
            json_t *got = json_loadb (body, out_len, JSON_REJECT_DUPLICATES, NULL);
            assert (got && json_equal (got, want));
            json_decref (got);
            json_decref (want);
            free (body);
        }
    assert (aigw_openai_path (AIGW_KIND_CHAT));

    //  A chunk: one choice, usage only when given, the event framed.
    char *chunk = NULL;
    size_t chunk_len = 0;
    assert (aigw_openai_append_chunk (&chunk, &chunk_len, "c1", 7, "m",
                                      json_pack ("{s:s}", "content", "hi"), "stop",
                                      json_pack ("{s:i}", "total_tokens", 3))
            == 0);
    assert (chunk_len == strlen (chunk) && strncmp (chunk, "data: {", 7) == 0);
    assert (strstr (chunk, "\"finish_reason\":\"stop\"") && strstr (chunk, "\"usage\""));
    assert (strcmp (chunk + chunk_len - 2, "\n\n") == 0);
    assert (aigw_openai_append_chunk (&chunk, &chunk_len, NULL, 7, "m", json_object (), NULL, NULL)
            == -1);
    free (chunk);

    //  The adapter: URL, key header, model swapped, streams passed through.
    aigw_upstream_t up = {.base_url = "http://h/v1", .model = "up", .api_key = "sk-1"};
    aigw_upstream_request_t req = {0};
    char err[128] = "";
    const char *chat = "{\"model\":\"mine\",\"messages\":[]}";
    assert (aigw_adapter_openai.request (&up, AIGW_KIND_CHAT, false, chat, strlen (chat), &req, err,
                                         sizeof err)
            == 0);
    assert (strcmp (req.url, "http://h/v1/chat/completions") == 0);
    assert (strstr (req.body, "\"model\":\"up\""));
    assert (strcmp (req.headers[1], "Authorization: Bearer sk-1") == 0);
    aigw_upstream_request_reset (&req);
    assert (aigw_adapter_openai.request (&up, AIGW_KIND_MESSAGES, false, chat, strlen (chat), &req,
                                         err, sizeof err)
            == 1);
    aigw_upstream_request_reset (&req);
    aigw_adapter_stream_t *st = aigw_adapter_openai.stream_new ("m", "id");
    char *sse = NULL;
    size_t sse_len = 0;
    for (size_t i = 0; i < len; i++)
        assert (aigw_adapter_openai.stream_feed (st, stream + i, 1, &sse, &sse_len, err, sizeof err)
                == 0);
    assert (sse_len == len && memcmp (sse, stream, len) == 0);
    assert (aigw_adapter_openai.stream_done (st));
    free (sse);
    aigw_adapter_openai.stream_destroy (&st);
    //  An event that never ends is refused past the cap, with an error event.
    st = aigw_adapter_openai.stream_new ("m", "id");
    char *big = malloc (AIGW_OPENAI_SSE_EVENT_MAX + 1);
    assert (big);
    memset (big, 'x', AIGW_OPENAI_SSE_EVENT_MAX + 1);
    sse = NULL;
    sse_len = 0;
    assert (aigw_adapter_openai.stream_feed (st, big, AIGW_OPENAI_SSE_EVENT_MAX + 1, &sse, &sse_len,
                                             err, sizeof err)
            == -1);
    assert (sse && strstr (sse, "\"error\"") && strstr (err, "over"));
    free (sse);
    free (big);
    aigw_adapter_openai.stream_destroy (&st);
    assert (st == NULL);
    if (verbose)
        printf ("openai: ok\n");
}
