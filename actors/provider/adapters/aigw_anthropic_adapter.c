/*  aigw_anthropic_adapter: the Anthropic Messages API behind the gateway's
    OpenAI format. aigw_anthropic translates bodies and the data of each
    stream event; this file builds the upstream request and splits the
    upstream's Server-Sent Events ("event: NAME\ndata: {json}\n\n", as the
    WHATWG event-stream format defines it) into those events. */
#include "aigw_anthropic_adapter.h"
#include "aigw_adapter.h"
#include "aigw_anthropic.h"
#include "aigw_fixture.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Longest event name kept; a longer one is no Anthropic event.
#define S_EVENT_NAME_MAX 64
//  Path of the Messages endpoint below the base URL.
#define S_MESSAGES_PATH "/v1/messages"

//  Event names whose data the translator takes. Others (ping, and types
//  Anthropic may add) are skipped, as its streaming guide asks.
static const char *s_events[] = {"message_start",
                                 "content_block_start",
                                 "content_block_delta",
                                 "content_block_stop",
                                 "message_delta",
                                 "message_stop",
                                 "error"};

//  One streamed answer: the SSE framing state and the event translator.
struct _aigw_adapter_stream_t {
    aigw_anthropic_stream_t *translator;  //  Anthropic event data -> OpenAI chunks
    char *line;                           //  bytes of the current line, its end not seen yet
    size_t line_len;                      //  bytes in line
    char *data;                           //  data lines of the current event, each ending '\n'
    size_t data_len;                      //  bytes in data
    char event[S_EVENT_NAME_MAX];         //  the current event's name, "" when it has none
    bool event_long;                      //  the name did not fit in event: an unknown event
    bool after_cr;                        //  the last line ended in CR: a next LF belongs to it
    bool failed;                          //  malformed stream or error event: no more input taken
};

//  --------------------------------------------------------------------------
//  Request, answer, error body

//  BODY (LEN bytes, JSON) with "stream" set to true when STREAM, else
//  removed: a new string the caller owns, with its length in *OUT_LEN, or
//  NULL when out of memory or BODY is not an object.
static char *
s_with_stream (const char *body, size_t len, bool stream, size_t *out_len)
{
    json_t *root = json_loadb (body, len, 0, NULL);
    char *result = NULL;
    if (json_is_object (root)) {
        if (stream)
            json_object_set_new (root, "stream", json_true ());
        else
            json_object_del (root, "stream");
        result = json_dumps (root, JSON_COMPACT);
    }
    json_decref (root);
    if (result)
        *out_len = strlen (result);
    return result;
}

//  Build the Messages request for a chat BODY; 1 for any other KIND. The
//  adapter's STREAM decides "stream", whatever the client's body said.
static int
s_request (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body, size_t len,
           aigw_upstream_request_t *out, char *err, size_t err_size)
{
    if (kind != AIGW_KIND_CHAT)
        return 1;
    const char *base = up->base_url ? up->base_url : aigw_adapter_default_base_url ("anthropic");
    if (!base
        || (size_t) snprintf (out->url, sizeof out->url, "%s%s", base, S_MESSAGES_PATH)
               >= sizeof out->url) {
        snprintf (err, err_size, "The upstream URL is too long.");
        return -1;
    }
    size_t translated_len = 0;
    char *translated
        = aigw_anthropic_request_from_openai (body, len, up->model, &translated_len, err, err_size);
    if (!translated)
        return -1;
    out->body = s_with_stream (translated, translated_len, stream, &out->body_len);
    free (translated);
    if (!out->body || aigw_upstream_request_header (out, "Content-Type", "application/json")
        || (up->api_key && *up->api_key
            && aigw_upstream_request_header (out, "x-api-key", up->api_key))
        || aigw_upstream_request_header (out, "anthropic-version", AIGW_ANTHROPIC_API_VERSION)) {
        aigw_upstream_request_reset (out);
        snprintf (err, err_size, "Out of memory building the upstream request.");
        return -1;
    }
    return 0;
}

//  A 2xx Messages answer as an OpenAI chat.completion; the caller owns it.
static char *
s_response (aigw_kind_t kind, const char *body, size_t len, const char *model, size_t *out_len,
            char *err, size_t err_size)
{
    if (kind != AIGW_KIND_CHAT) {
        snprintf (err, err_size, "Anthropic answers chat requests only.");
        return NULL;
    }
    return aigw_anthropic_response_to_openai (body, len, model, out_len, err, err_size);
}

//  The message of an Anthropic error body ({"type":"error","error":
//  {"type","message"}}), a new string the caller owns, or NULL.
static char *
s_error_message (const char *body, size_t len)
{
    json_t *root = json_loadb (body ? body : "", body ? len : 0, 0, NULL);
    json_t *message = json_object_get (json_object_get (root, "error"), "message");
    char *result = json_is_string (message) ? strdup (json_string_value (message)) : NULL;
    json_decref (root);
    return result;
}

//  --------------------------------------------------------------------------
//  Stream

//  A translator naming MODEL and ID (either NULL: the upstream's) in its
//  chunks; the caller owns it. NULL when out of memory.
static aigw_adapter_stream_t *
s_stream_new (const char *model, const char *id)
{
    aigw_adapter_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->translator = aigw_anthropic_stream_new (model, id);
    if (!self->translator) {
        free (self);
        return NULL;
    }
    return self;
}

//  Destroy; safe on NULL, nulls the caller's pointer.
static void
s_stream_destroy (aigw_adapter_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aigw_adapter_stream_t *self = *self_p;
    aigw_anthropic_stream_destroy (&self->translator);
    free (self->line);
    free (self->data);
    free (self);
    *self_p = NULL;
}

//  True once message_stop has been translated and [DONE] emitted.
static bool
s_stream_done (aigw_adapter_stream_t *self)
{
    return aigw_anthropic_stream_done (self->translator);
}

//  Mark SELF failed, say WHY in ERR, and append an OpenAI error event and
//  [DONE] to *OUT. Returns -1.
static int
s_stream_fail (aigw_adapter_stream_t *self, const char *why, char **out, size_t *out_len, char *err,
               size_t err_size)
{
    self->failed = true;
    snprintf (err, err_size, "%s", why);
    aigw_adapter_append_error (out, out_len, "upstream_error", why);
    return -1;
}

//  True when NAME is an event whose data the translator takes.
static bool
s_event_wanted (const char *name)
{
    for (size_t i = 0; i < sizeof s_events / sizeof s_events[0]; i++)
        if (strcmp (s_events[i], name) == 0)
            return true;
    return false;
}

//  A blank line ended an event: translate its data when it is one we take.
//  An Anthropic error event gives the translator's error event, then
//  [DONE], and -1 with the upstream's message in ERR.
static int
s_stream_dispatch (aigw_adapter_stream_t *self, char **out, size_t *out_len, char *err,
                   size_t err_size)
{
    //  No data line: nothing to dispatch (the event-stream rules).
    bool has_data = self->data_len > 0;
    bool named = self->event[0] || self->event_long;
    bool wanted = has_data && (!named || (!self->event_long && s_event_wanted (self->event)));
    //  After message_stop the answer is whole; trailing events are dropped.
    if (!wanted || aigw_anthropic_stream_done (self->translator)) {
        self->event[0] = '\0';
        self->event_long = false;
        self->data_len = 0;
        return 0;
    }
    self->data_len--;  //  the '\n' after the last data line
    json_t *event = json_loadb (self->data, self->data_len, 0, NULL);
    const char *type = json_string_value (json_object_get (event, "type"));
    bool upstream_error = type && strcmp (type, "error") == 0;
    int rc = 0;
    if (aigw_anthropic_stream_feed (self->translator, self->data, self->data_len, out, out_len))
        rc = s_stream_fail (self, "The upstream sent a malformed stream event.", out, out_len, err,
                            err_size);
    else if (upstream_error) {
        //  The translator has appended the OpenAI error event already.
        self->failed = true;
        json_t *error = json_object_get (event, "error");
        const char *kind = json_string_value (json_object_get (error, "type"));
        const char *message = json_string_value (json_object_get (error, "message"));
        snprintf (err, err_size, "The upstream sent an error event (%s): %s",
                  kind ? kind : "api_error", message ? message : "no message");
        aigw_adapter_append (out, out_len, "data: [DONE]\n\n", 14);
        rc = -1;
    }
    json_decref (event);
    self->event[0] = '\0';
    self->event_long = false;
    self->data_len = 0;
    return rc;
}

//  One whole line (without its end) is in self->line: a blank line ends
//  the event, ':' opens a comment, else it is "field: value".
static int
s_stream_line (aigw_adapter_stream_t *self, char **out, size_t *out_len, char *err, size_t err_size)
{
    if (self->line_len == 0)
        return s_stream_dispatch (self, out, out_len, err, err_size);
    const char *line = self->line;
    if (line[0] == ':')
        return 0;
    const char *colon = memchr (line, ':', self->line_len);
    size_t field_len = colon ? (size_t) (colon - line) : self->line_len;
    const char *value = colon ? colon + 1 : line + self->line_len;
    size_t value_len = (size_t) (line + self->line_len - value);
    if (value_len && *value == ' ') {
        value++;
        value_len--;
    }
    if (field_len == 5 && memcmp (line, "event", 5) == 0) {
        self->event_long = value_len >= sizeof self->event;
        if (self->event_long)
            self->event[0] = '\0';
        else {
            memcpy (self->event, value, value_len);
            self->event[value_len] = '\0';
        }
    }
    else if (field_len == 4 && memcmp (line, "data", 4) == 0) {
        if (aigw_adapter_append (&self->data, &self->data_len, value, value_len)
            || aigw_adapter_append (&self->data, &self->data_len, "\n", 1))
            return s_stream_fail (self, "Out of memory reading the upstream stream.", out, out_len,
                                  err, err_size);
    }
    //  id, retry and unknown fields do not matter here.
    return 0;
}

//  Feed raw body bytes, split anywhere; lines end in LF, CRLF or CR.
//  Appends the translated events to *OUT. 0, or -1 with ERR (and an error
//  event and [DONE] in *OUT) on an error event, a malformed or oversized
//  event, or any feed after a failure.
static int
s_stream_feed (aigw_adapter_stream_t *self, const char *data, size_t len, char **out,
               size_t *out_len, char *err, size_t err_size)
{
    if (self->failed) {
        snprintf (err, err_size, "The upstream stream has already failed.");
        return -1;
    }
    size_t at = 0;
    while (at < len) {
        if (self->after_cr) {
            self->after_cr = false;
            if (data[at] == '\n') {
                at++;
                continue;
            }
        }
        size_t end = at;
        while (end < len && data[end] != '\n' && data[end] != '\r')
            end++;
        if (end > at) {
            if (self->line_len + self->data_len + (end - at) > AIGW_ANTHROPIC_SSE_EVENT_MAX)
                return s_stream_fail (self, "An upstream stream event is too large.", out, out_len,
                                      err, err_size);
            if (aigw_adapter_append (&self->line, &self->line_len, data + at, end - at))
                return s_stream_fail (self, "Out of memory reading the upstream stream.", out,
                                      out_len, err, err_size);
        }
        if (end == len)
            break;
        self->after_cr = data[end] == '\r';
        at = end + 1;
        int rc = s_stream_line (self, out, out_len, err, err_size);
        self->line_len = 0;
        if (rc)
            return -1;
    }
    return 0;
}

const aigw_adapter_t aigw_adapter_anthropic = {
    .name = "anthropic",
    .request = s_request,
    .response = s_response,
    .error_message = s_error_message,
    .stream_new = s_stream_new,
    .stream_feed = s_stream_feed,
    .stream_done = s_stream_done,
    .stream_destroy = s_stream_destroy,
};

//  --------------------------------------------------------------------------
//  Selftest

//  The fixtures are tests/fixtures/anthropic/* (embedded by the build,
//  aigw_fixture.h). The stream's events, each as compact JSON the way the
//  upstream sends one: loaded when the selftest starts, freed when it ends.
#define S_FX_EVENTS_MAX 32
static char *s_fx_stream_events[S_FX_EVENTS_MAX];
static size_t s_fx_event_count;
#define S_FX_EVENT_COUNT s_fx_event_count

//  The fixture tests/fixtures/anthropic/NAME, asserting it is there.
static const char *
s_fx (const char *name)
{
    char path[128];
    snprintf (path, sizeof path, "anthropic/%s", name);
    const char *text = aigw_fixture (path, NULL);
    assert (text);
    return text;
}

//  Load the events of anthropic_stream_events.json (a JSON array).
static void
s_fx_load_events (void)
{
    json_t *array = json_loads (s_fx ("anthropic_stream_events.json"), 0, NULL);
    assert (json_is_array (array) && json_array_size (array) <= S_FX_EVENTS_MAX);
    s_fx_event_count = json_array_size (array);
    for (size_t i = 0; i < s_fx_event_count; i++) {
        s_fx_stream_events[i] = json_dumps (json_array_get (array, i), JSON_COMPACT);
        assert (s_fx_stream_events[i]);
    }
    json_decref (array);
}

//  The fixture NAME as compact JSON on one line (an SSE data line holds it);
//  the caller frees it.
static char *
s_fx_compact (const char *name)
{
    json_t *root = json_loads (s_fx (name), 0, NULL);
    assert (root);
    char *text = json_dumps (root, JSON_COMPACT);
    assert (text);
    json_decref (root);
    return text;
}

//  openai_request_text.json with "stream":true; the caller frees it.
static char *
s_fx_request_text (void)
{
    json_t *request = json_loads (s_fx ("openai_request_text.json"), 0, NULL);
    assert (json_is_object (request));
    json_object_set_new (request, "stream", json_true ());
    char *text = json_dumps (request, JSON_COMPACT);
    assert (text);
    json_decref (request);
    return text;
}

//  A key that must never show in an error.
#define S_TEST_KEY "sk-ant-test-secret"

//  Append TEXT to the test buffer *BUF of *LEN bytes.
static void
s_test_add (char **buf, size_t *len, const char *text)
{
    assert (aigw_adapter_append (buf, len, text, strlen (text)) == 0);
}

//  The fixture events as Anthropic sends them, lines ending in EOL. With
//  EXTRAS: comments, an id field, an unknown event with data that is not
//  JSON, "data:" without its space, and each event's JSON over two data
//  lines (split at its first comma, where a newline is JSON whitespace).
//  The first LIMIT events only. Caller frees.
static char *
s_test_sse (const char *eol, bool extras, size_t limit)
{
    char *sse = NULL;
    size_t len = 0;
    for (size_t i = 0; i < limit && i < S_FX_EVENT_COUNT; i++) {
        const char *event = s_fx_stream_events[i];
        json_t *root = json_loads (event, 0, NULL);
        assert (root);
        if (extras) {
            s_test_add (&sse, &len, ": keep-alive");
            s_test_add (&sse, &len, eol);
            s_test_add (&sse, &len, "id: 7");
            s_test_add (&sse, &len, eol);
        }
        s_test_add (&sse, &len, "event: ");
        s_test_add (&sse, &len, json_string_value (json_object_get (root, "type")));
        s_test_add (&sse, &len, eol);
        json_decref (root);
        const char *comma = extras ? strchr (event, ',') : NULL;
        if (comma) {
            s_test_add (&sse, &len, "data:");
            assert (aigw_adapter_append (&sse, &len, event, (size_t) (comma - event + 1)) == 0);
            s_test_add (&sse, &len, eol);
            s_test_add (&sse, &len, "data: ");
            s_test_add (&sse, &len, comma + 1);
        }
        else {
            s_test_add (&sse, &len, "data: ");
            s_test_add (&sse, &len, event);
        }
        s_test_add (&sse, &len, eol);
        s_test_add (&sse, &len, eol);
        if (extras && i == 0) {
            s_test_add (&sse, &len, "event: future_event");
            s_test_add (&sse, &len, eol);
            s_test_add (&sse, &len, "data: {not json");
            s_test_add (&sse, &len, eol);
            s_test_add (&sse, &len, eol);
        }
    }
    return sse;
}

//  Remove the digits after each "created": in TEXT, in place, so outputs
//  made in different seconds compare equal.
static void
s_test_normalize (char *text)
{
    static const char key[] = "\"created\":";
    char *at = text;
    while (at && (at = strstr (at, key))) {
        at += sizeof key - 1;
        char *digits = at;
        while (*digits >= '0' && *digits <= '9')
            digits++;
        memmove (at, digits, strlen (digits) + 1);
    }
}

//  Feed SSE (LEN bytes) to a new adapter stream, cut at SPLIT (0 for
//  whole) or in single bytes when BYTES; assert every feed returns RC_WANT
//  until one fails. Returns the normalised output (caller frees) and sets
//  *DONE.
static char *
s_test_feed (const char *sse, size_t len, size_t split, bool bytes, int rc_want, bool *done)
{
    aigw_adapter_stream_t *stream = aigw_adapter_anthropic.stream_new ("gpt-4o", "chatcmpl-t");
    assert (stream);
    char *out = NULL;
    size_t out_len = 0;
    char err[256] = "";
    int rc = 0;
    if (bytes)
        for (size_t i = 0; i < len && rc == 0; i++)
            rc = aigw_adapter_anthropic.stream_feed (stream, sse + i, 1, &out, &out_len, err,
                                                     sizeof err);
    else {
        rc = aigw_adapter_anthropic.stream_feed (stream, sse, split, &out, &out_len, err,
                                                 sizeof err);
        if (rc == 0)
            rc = aigw_adapter_anthropic.stream_feed (stream, sse + split, len - split, &out,
                                                     &out_len, err, sizeof err);
    }
    assert (rc == rc_want);
    assert (!out || strlen (out) == out_len);
    *done = aigw_adapter_anthropic.stream_done (stream);
    aigw_adapter_anthropic.stream_destroy (&stream);
    assert (stream == NULL);
    aigw_adapter_anthropic.stream_destroy (&stream);
    if (out)
        s_test_normalize (out);
    return out;
}

//  Count the occurrences of NEEDLE in TEXT.
static size_t
s_test_count (const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *at = text; (at = strstr (at, needle)); at += strlen (needle))
        count++;
    return count;
}

//  SSE of every framing variant, fed whole, byte by byte and cut at every
//  point, gives WANT and a done stream.
static void
s_test_framings (const char *want)
{
    const char *eols[] = {"\n", "\r\n", "\r"};
    for (size_t e = 0; e < sizeof eols / sizeof eols[0]; e++)
        for (int extras = 0; extras < 2; extras++) {
            char *sse = s_test_sse (eols[e], extras, S_FX_EVENT_COUNT);
            size_t len = strlen (sse);
            bool done = false;
            char *out = s_test_feed (sse, len, len, false, 0, &done);
            assert (done && out && strcmp (out, want) == 0);
            free (out);
            out = s_test_feed (sse, len, 0, true, 0, &done);
            assert (done && out && strcmp (out, want) == 0);
            free (out);
            for (size_t split = 0; split <= len; split++) {
                out = s_test_feed (sse, len, split, false, 0, &done);
                assert (done && out && strcmp (out, want) == 0);
                free (out);
            }
            free (sse);
        }
}

void
aigw_anthropic_adapter_test (bool verbose)
{
    const aigw_adapter_t *adapter = aigw_adapter_find ("anthropic");
    assert (adapter == &aigw_adapter_anthropic);
    assert (strcmp (adapter->name, "anthropic") == 0);

    //  Requests: default base URL, headers, the adapter's stream flag wins.
    aigw_upstream_t up = {.model = "claude-sonnet-4-5", .api_key = S_TEST_KEY};
    aigw_upstream_request_t req = {0};
    char err[256] = "";
    s_fx_load_events ();
    char *s_fx_stream_error = s_fx_compact ("anthropic_stream_error.json");
    char *body = s_fx_request_text ();
    assert (
        adapter->request (&up, AIGW_KIND_CHAT, false, body, strlen (body), &req, err, sizeof err)
        == 0);
    assert (strcmp (req.url, "https://api.anthropic.com/v1/messages") == 0);
    assert (req.header_count == 3);
    assert (strcmp (req.headers[0], "Content-Type: application/json") == 0);
    assert (strcmp (req.headers[1], "x-api-key: " S_TEST_KEY) == 0);
    assert (strcmp (req.headers[2], "anthropic-version: 2023-06-01") == 0);
    json_t *sent = json_loadb (req.body, req.body_len, 0, NULL);
    assert (sent && strlen (req.body) == req.body_len);
    assert (strcmp (json_string_value (json_object_get (sent, "model")), "claude-sonnet-4-5") == 0);
    assert (!json_object_get (sent, "stream"));
    assert (json_integer_value (json_object_get (sent, "max_tokens"))
            == AIGW_ANTHROPIC_DEFAULT_MAX_TOKENS);
    json_t *content
        = json_object_get (json_array_get (json_object_get (sent, "messages"), 0), "content");
    assert (json_is_string (content) || json_is_array (content));
    json_decref (sent);
    aigw_upstream_request_reset (&req);

    //  Streaming although the client's body does not ask; own base URL; no key.
    const char *plain = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"Hi\"}]}";
    up.base_url = "http://127.0.0.1:9100/anthropic";
    up.api_key = NULL;
    assert (
        adapter->request (&up, AIGW_KIND_CHAT, true, plain, strlen (plain), &req, err, sizeof err)
        == 0);
    assert (strcmp (req.url, "http://127.0.0.1:9100/anthropic/v1/messages") == 0);
    assert (req.header_count == 2);
    assert (strcmp (req.headers[1], "anthropic-version: " AIGW_ANTHROPIC_API_VERSION) == 0);
    sent = json_loadb (req.body, req.body_len, 0, NULL);
    assert (json_is_true (json_object_get (sent, "stream")));
    json_decref (sent);
    aigw_upstream_request_reset (&req);

    //  No embeddings at Anthropic; a bad body is the client's error.
    up.api_key = S_TEST_KEY;
    assert (adapter->request (&up, AIGW_KIND_EMBEDDINGS, false, plain, strlen (plain), &req, err,
                              sizeof err)
            == 1);
    assert (adapter->request (&up, AIGW_KIND_MODELS, false, plain, strlen (plain), &req, err,
                              sizeof err)
            == 1);
    aigw_upstream_request_reset (&req);
    const char *bad = "{\"model\":\"gpt-4o\",\"messages\":7}";
    err[0] = '\0';
    assert (adapter->request (&up, AIGW_KIND_CHAT, false, bad, strlen (bad), &req, err, sizeof err)
            == -1);
    assert (*err && strstr (err, "messages") && !strstr (err, S_TEST_KEY));
    aigw_upstream_request_reset (&req);
    assert (adapter->request (&up, AIGW_KIND_CHAT, false, "[", 1, &req, err, sizeof err) == -1);
    aigw_upstream_request_reset (&req);

    //  Answers and error bodies.
    const char *answer = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
                         "\"content\":[{\"type\":\"text\",\"text\":\"Hello\"}],\"model\":"
                         "\"claude-sonnet-4-5\",\"stop_reason\":\"end_turn\",\"usage\":"
                         "{\"input_tokens\":3,\"output_tokens\":1}}";
    size_t answer_len = 0;
    char *openai = adapter->response (AIGW_KIND_CHAT, answer, strlen (answer), "gpt-4o",
                                      &answer_len, err, sizeof err);
    assert (openai && answer_len == strlen (openai));
    assert (strstr (openai, "\"chat.completion\"") && strstr (openai, "\"model\":\"gpt-4o\"")
            && strstr (openai, "\"content\":\"Hello\""));
    free (openai);
    assert (!adapter->response (AIGW_KIND_CHAT, "{", 1, "m", &answer_len, err, sizeof err));
    char *message = adapter->error_message (s_fx_stream_error, strlen (s_fx_stream_error));
    assert (message && strcmp (message, "Overloaded") == 0);
    free (message);
    assert (!adapter->error_message ("<html>", 6));
    assert (!adapter->error_message ("{\"error\":\"x\"}", 13));

    //  Streams: the translator fed each event's data directly is the
    //  reference; every framing and every cut must give the same.
    aigw_anthropic_stream_t *direct = aigw_anthropic_stream_new ("gpt-4o", "chatcmpl-t");
    char *want = NULL;
    size_t want_len = 0;
    for (size_t i = 0; i < S_FX_EVENT_COUNT; i++)
        assert (aigw_anthropic_stream_feed (direct, s_fx_stream_events[i],
                                            strlen (s_fx_stream_events[i]), &want, &want_len)
                == 0);
    assert (aigw_anthropic_stream_done (direct));
    aigw_anthropic_stream_destroy (&direct);
    s_test_normalize (want);
    assert (strstr (want, "\"content\":\"Okay, let\"") && strstr (want, "get_weather")
            && strstr (want, "\"finish_reason\":\"tool_calls\""));
    assert (strlen (want) > 14 && strcmp (want + strlen (want) - 14, "data: [DONE]\n\n") == 0);
    s_test_framings (want);

    //  A truncated stream (no message_stop, or cut inside it) is not done.
    char *sse = s_test_sse ("\n", false, S_FX_EVENT_COUNT - 1);
    bool done = true;
    char *out = s_test_feed (sse, strlen (sse), 0, true, 0, &done);
    assert (!done && out && !strstr (out, "[DONE]"));
    free (out);
    free (sse);
    sse = s_test_sse ("\n", false, S_FX_EVENT_COUNT);
    size_t cut = strlen (sse) - 1;  //  the blank line's LF is missing
    out = s_test_feed (sse, cut, 0, true, 0, &done);
    assert (!done && out && !strstr (out, "[DONE]"));
    free (out);
    free (sse);

    //  An upstream error event: one OpenAI error event, [DONE], -1 with the
    //  message, whole and byte by byte; later feeds are refused.
    char *failing = s_test_sse ("\r\n", false, 2);
    size_t failing_len = strlen (failing);
    assert (aigw_adapter_append (&failing, &failing_len, "event: error\r\ndata: ", 20) == 0);
    s_test_add (&failing, &failing_len, s_fx_stream_error);
    s_test_add (&failing, &failing_len,
                "\r\n\r\nevent: message_stop\r\ndata: "
                "{\"type\":\"message_stop\"}\r\n\r\n");
    for (int bytes = 0; bytes < 2; bytes++) {
        out = s_test_feed (failing, failing_len, failing_len, bytes, -1, &done);
        assert (!done && out);
        assert (s_test_count (out, "\"error\"") == 1);
        assert (s_test_count (out, "data: [DONE]\n\n") == 1);
        assert (strstr (out, "\"message\":\"Overloaded\"")
                && strstr (out, "\"type\":\"overloaded_error\""));
        assert (strcmp (out + strlen (out) - 14, "data: [DONE]\n\n") == 0);
        free (out);
    }
    aigw_adapter_stream_t *stream = adapter->stream_new (NULL, NULL);
    out = NULL;
    size_t out_len = 0;
    err[0] = '\0';
    assert (adapter->stream_feed (stream, failing, failing_len, &out, &out_len, err, sizeof err)
            == -1);
    assert (strstr (err, "Overloaded"));
    size_t had = out_len;
    assert (adapter->stream_feed (stream, "\n", 1, &out, &out_len, err, sizeof err) == -1);
    assert (out_len == had);
    free (out);
    adapter->stream_destroy (&stream);
    free (failing);

    //  A known event with malformed data: an error event, [DONE], -1.
    const char *broken = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\"}"
                         "\n\n";
    out = s_test_feed (broken, strlen (broken), 0, true, -1, &done);
    assert (!done && out && s_test_count (out, "\"error\"") == 1
            && strstr (out, "data: [DONE]\n\n"));
    free (out);

    //  An event past the cap fails without holding more.
    stream = adapter->stream_new ("m", "id");
    char *chunk = malloc (1024 * 1024);
    assert (chunk);
    memset (chunk, 'x', 1024 * 1024);
    out = NULL;
    out_len = 0;
    int rc = adapter->stream_feed (stream, "event: message_start\ndata: ", 27, &out, &out_len, err,
                                   sizeof err);
    size_t fed = 0;
    while (rc == 0 && fed <= AIGW_ANTHROPIC_SSE_EVENT_MAX) {
        rc = adapter->stream_feed (stream, chunk, 1024 * 1024, &out, &out_len, err, sizeof err);
        fed += 1024 * 1024;
    }
    assert (rc == -1 && fed <= AIGW_ANTHROPIC_SSE_EVENT_MAX + 1024 * 1024);
    assert (out && strstr (out, "too large") && strstr (out, "data: [DONE]\n\n"));
    assert (!adapter->stream_done (stream));
    free (chunk);
    free (out);
    adapter->stream_destroy (&stream);
    free (want);
    free (body);
    free (s_fx_stream_error);
    for (size_t i = 0; i < s_fx_event_count; i++)
        free (s_fx_stream_events[i]);
    s_fx_event_count = 0;
    if (verbose)
        printf ("anthropic_adapter: ok\n");
}
