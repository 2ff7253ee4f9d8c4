/*  aigw_gemini_adapter: Google Gemini behind the gateway's OpenAI format.
    aigw_gemini translates bodies, answers and the data of each stream
    event; this file builds the upstream request and splits the upstream's
    Server-Sent Events ("data: {json}\n\n", as the WHATWG event-stream
    format defines it) into those events. */
#include "aigw_gemini_adapter.h"
#include "aigw_adapter.h"
#include "aigw_gemini.h"
#include "aigw_openai.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  API version segment of every Gemini path.
#define S_API_PATH "/v1beta/models/"
//  Characters a model name may hold: it is pasted into the URL's path.
#define S_MODEL_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

//  One streamed answer: the SSE framing state and the event translator.
struct _aigw_adapter_stream_t {
    aigw_gemini_stream_t *translator;  //  Gemini event data -> OpenAI chunks
    char *pending;                     //  bytes not yet forming a whole SSE event
    size_t pending_len;                //  bytes in pending
    size_t scanned;                    //  bytes of pending already searched for an event end
    bool failed;                       //  the framing failed: error event and [DONE] sent
};

//  --------------------------------------------------------------------------
//  Request, answer, error body

//  True when MODEL is a non-empty run of letters, digits, '-', '_' and '.'.
static bool
s_model_valid (const char *model)
{
    return model && *model && strspn (model, S_MODEL_CHARS) == strlen (model);
}

//  The generateContent, streamGenerateContent or batchEmbedContents request
//  for an OpenAI BODY of KIND. Returns 0, 1 for a kind Gemini does not
//  serve, or -1 with ERR (never holding the key).
static int
s_request (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body, size_t len,
           aigw_upstream_request_t *out, char *err, size_t err_size)
{
    const char *method = kind == AIGW_KIND_EMBEDDINGS ? ":batchEmbedContents"
                         : kind != AIGW_KIND_CHAT     ? NULL
                         : stream                     ? ":streamGenerateContent?alt=sse"
                                                      : ":generateContent";
    if (!method)
        return 1;
    const char *model = up->model;
    size_t prefix = strlen (AIGW_GEMINI_MODEL_PREFIX);
    if (model && strncmp (model, AIGW_GEMINI_MODEL_PREFIX, prefix) == 0)
        model += prefix;
    if (!s_model_valid (model)) {
        snprintf (err, err_size,
                  "model: the Gemini model name must be letters, digits, "
                  "'-', '_' or '.'");
        return -1;
    }
    const char *base = up->base_url ? up->base_url : aigw_adapter_default_base_url ("gemini");
    if (!base) {
        snprintf (err, err_size, "The Gemini deployment needs a base URL.");
        return -1;
    }
    if ((size_t) snprintf (out->url, sizeof out->url, "%s%s%s%s", base, S_API_PATH, model, method)
        >= sizeof out->url) {
        snprintf (err, err_size, "The upstream URL is too long.");
        return -1;
    }
    out->body = kind == AIGW_KIND_CHAT
                    ? aigw_gemini_request_from_openai (body, len, &out->body_len, err, err_size)
                    : aigw_gemini_embeddings_from_openai (body, len, model, &out->body_len, err,
                                                          err_size);
    if (!out->body)
        return -1;
    if (aigw_upstream_request_header (out, "Content-Type", "application/json")
        || (up->api_key && *up->api_key
            && aigw_upstream_request_header (out, "x-goog-api-key", up->api_key))) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

//  A 2xx Gemini BODY of KIND as an OpenAI body naming MODEL, a new buffer
//  the caller owns, or NULL with ERR.
static char *
s_response (aigw_kind_t kind, const char *body, size_t len, const char *model, size_t *out_len,
            char *err, size_t err_size)
{
    if (kind == AIGW_KIND_CHAT)
        return aigw_gemini_response_to_openai (body, len, model, out_len, err, err_size);
    if (kind == AIGW_KIND_EMBEDDINGS)
        return aigw_gemini_embeddings_to_openai (body, len, model, out_len, err, err_size);
    snprintf (err, err_size, "Gemini has no endpoint of this kind");
    return NULL;
}

//  The message of a Gemini error body ({"error":{"code","message",
//  "status"}}, alone or first in an array), a new string the caller owns,
//  or NULL.
static char *
s_error_message (const char *body, size_t len)
{
    if (!body || len > AIGW_GEMINI_BODY_MAX)
        return NULL;
    json_t *root = json_loadb (body, len, 0, NULL);
    json_t *first = json_is_array (root) ? json_array_get (root, 0) : root;
    json_t *message = json_object_get (json_object_get (first, "error"), "message");
    char *result = json_is_string (message) ? strdup (json_string_value (message)) : NULL;
    json_decref (root);
    return result;
}

//  --------------------------------------------------------------------------
//  Stream

static void s_stream_destroy (aigw_adapter_stream_t **self_p);

//  A translator whose chunks name MODEL and ID (made up when NULL); the
//  caller owns it. NULL when out of memory.
static aigw_adapter_stream_t *
s_stream_new (const char *model, const char *id)
{
    aigw_adapter_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->translator = aigw_gemini_stream_new (model, id);
    if (!self->translator)
        s_stream_destroy (&self);
    return self;
}

//  Destroy; safe on NULL and twice, nulls the caller's pointer.
static void
s_stream_destroy (aigw_adapter_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aigw_adapter_stream_t *self = *self_p;
    aigw_gemini_stream_destroy (&self->translator);
    free (self->pending);
    free (self);
    *self_p = NULL;
}

//  True once [DONE] has been appended: the answer ended, or it failed.
static bool
s_stream_done (aigw_adapter_stream_t *self)
{
    return self && (self->failed || aigw_gemini_stream_done (self->translator));
}

//  Mark SELF failed, say WHY in ERR, and append an OpenAI error event with
//  MESSAGE and [DONE] to *OUT. Returns -1.
static int
s_stream_fail (aigw_adapter_stream_t *self, const char *message, const char *why, char **out,
               size_t *out_len, char *err, size_t err_size)
{
    self->failed = true;
    aigw_adapter_append_error (out, out_len, "upstream_error", message);
    snprintf (err, err_size, "%s", why);
    return -1;
}

//  The data: lines of the SSE event EVENT (LEN bytes), joined, into *DATA
//  (a new buffer the caller frees). Returns 1, 0 when the event has no data
//  (a comment, say), or -1 when out of memory.
static int
s_event_data (const char *event, size_t len, char **data, size_t *data_len)
{
    bool empty = true;
    while (len) {
        const char *newline = memchr (event, '\n', len);
        size_t line_len = newline ? (size_t) (newline - event) : len;
        size_t next = newline ? line_len + 1 : len;
        if (line_len && event[line_len - 1] == '\r')
            line_len--;
        if (line_len >= 5 && memcmp (event, "data:", 5) == 0) {
            const char *value = event + 5;
            size_t value_len = line_len - 5;
            if (value_len && *value == ' ') {
                value++;
                value_len--;
            }
            //  Several data lines of one event join with newlines.
            if ((!empty && aigw_adapter_append (data, data_len, "\n", 1))
                || aigw_adapter_append (data, data_len, value, value_len))
                return -1;
            empty = false;
        }
        event += next;
        len -= next;
    }
    return empty ? 0 : 1;
}

//  Take LEN raw bytes of the SSE body, split anywhere, and append the
//  chunks of every whole event to *OUT. Returns 0, or -1 with ERR after
//  appending an error event and [DONE].
static int
s_stream_feed (aigw_adapter_stream_t *self, const char *data, size_t len, char **out,
               size_t *out_len, char *err, size_t err_size)
{
    //  Gemini has no end marker: after the finishReason event, bytes are ignored.
    if (s_stream_done (self))
        return 0;
    if (len && aigw_adapter_append (&self->pending, &self->pending_len, data, len)) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    size_t used = 0;
    int rc = 0;
    while (rc == 0 && !s_stream_done (self)) {
        //  Resume the search where the last one stopped, less the bytes an
        //  event end may straddle.
        size_t from = self->scanned > used + 2 ? self->scanned - 2 : used;
        size_t end = aigw_openai_sse_event_end (self->pending + from, self->pending_len - from);
        if (!end) {
            self->scanned = self->pending_len;
            break;
        }
        end += from;
        char *event = NULL;
        size_t event_len = 0;
        int got = s_event_data (self->pending + used, end - used, &event, &event_len);
        used = end;
        self->scanned = used;
        if (got > 0)
            rc = aigw_gemini_stream_feed (self->translator, event, event_len, out, out_len, err,
                                          err_size);
        else if (got < 0)
            rc = s_stream_fail (self, "The upstream sent a malformed stream.",
                                "stream: out of memory reading an event", out, out_len, err,
                                err_size);
        free (event);
    }
    if (s_stream_done (self)) {
        self->pending_len = self->scanned = 0;
        return rc;
    }
    if (used)
        memmove (self->pending, self->pending + used, self->pending_len - used);
    self->pending_len -= used;
    self->scanned -= used;
    if (self->pending_len > AIGW_GEMINI_STREAM_EVENT_MAX)
        return s_stream_fail (self, "The upstream sent an oversized event.",
                              "stream: an event is larger than the cap", out, out_len, err,
                              err_size);
    return rc;
}

const aigw_adapter_t aigw_adapter_gemini = {
    .name = "gemini",
    .request = s_request,
    .response = s_response,
    .error_message = s_error_message,
    .stream_new = s_stream_new,
    .stream_feed = s_stream_feed,
    .stream_done = s_stream_done,
    .stream_destroy = s_stream_destroy,
};

//  --------------------------------------------------------------------------
//  Selftest. Translation is aigw_gemini's to test; here, what the adapter
//  adds: URLs, headers, the key's whereabouts, error bodies and framing.

//  A secret that must never reach a URL or an error.
#define S_TEST_KEY "AIzaTEST-secret-key-0042"

//  The upstream every request test uses.
static const aigw_upstream_t s_test_up = {.model = "gemini-2.0-flash", .api_key = S_TEST_KEY};

//  Build the request for the OpenAI BODY of KIND on UP, asserting success,
//  the URL and HEADERS headers; returns the request, which the caller resets.
static aigw_upstream_request_t
s_test_request (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body,
                const char *url, size_t headers)
{
    aigw_upstream_request_t req = {0};
    char err[256] = "";
    int rc = aigw_adapter_gemini.request (up, kind, stream, body, strlen (body), &req, err,
                                          sizeof err);
    if (rc)
        fprintf (stderr, "gemini_adapter: unexpected error: %s\n", err);
    assert (rc == 0);
    assert (strcmp (req.url, url) == 0);
    assert (req.header_count == headers);
    assert (strcmp (req.headers[0], "Content-Type: application/json") == 0);
    if (headers > 1)
        assert (strcmp (req.headers[1], "x-goog-api-key: " S_TEST_KEY) == 0);
    assert (req.body && req.body_len == strlen (req.body));
    return req;
}

//  TEXT with the value of each "created" field zeroed in place, so that
//  streams made in different seconds compare equal.
static void
s_test_uncreate (char *text)
{
    for (char *at = text; (at = strstr (at, "\"created\":"));) {
        at += strlen ("\"created\":");
        memset (at, '0', strspn (at, "0123456789"));
    }
}

//  Feed SSE (LEN bytes) to a new adapter stream in pieces of at most STEP
//  bytes, after a first piece of FIRST bytes. Returns the output with
//  "created" zeroed, which the caller frees; *RC is the first nonzero feed
//  result, or 0.
static char *
s_test_stream (const char *sse, size_t len, size_t first, size_t step, int *rc, char *err,
               size_t err_size)
{
    aigw_adapter_stream_t *self = aigw_adapter_gemini.stream_new ("my-gemini", "chatcmpl-test");
    assert (self && !aigw_adapter_gemini.stream_done (self));
    char *out = NULL;
    size_t out_len = 0, at = 0, piece = first < len ? first : len;
    *rc = 0;
    do {
        int feed = aigw_adapter_gemini.stream_feed (self, sse + at, piece, &out, &out_len, err,
                                                    err_size);
        if (feed && !*rc)
            *rc = feed;
        at += piece;
        piece = step < len - at ? step : len - at;
    } while (at < len);
    assert (!out || out_len == strlen (out));
    if (*rc == 0 && out)
        assert (aigw_adapter_gemini.stream_done (self)
                == (strstr (out, "data: [DONE]\n\n") != NULL));
    aigw_adapter_gemini.stream_destroy (&self);
    aigw_adapter_gemini.stream_destroy (&self);
    assert (!self);
    if (!out)
        out = strdup ("");
    s_test_uncreate (out);
    return out;
}

//  Run SSE whole, byte by byte and split once at every point: all must
//  give the same output and feed result RC_WANT. Returns the output, which
//  the caller frees.
static char *
s_test_framings (const char *sse, int rc_want)
{
    size_t len = strlen (sse);
    char err[256] = "";
    int rc;
    char *whole = s_test_stream (sse, len, len, len, &rc, err, sizeof err);
    assert (rc == rc_want);
    for (size_t split = 0; split <= len; split++) {
        char *two = s_test_stream (sse, len, split, len, &rc, err, sizeof err);
        assert (rc == rc_want && strcmp (two, whole) == 0);
        free (two);
    }
    char *bytes = s_test_stream (sse, len, 1, 1, &rc, err, sizeof err);
    assert (rc == rc_want && strcmp (bytes, whole) == 0);
    free (bytes);
    return whole;
}

void
aigw_gemini_adapter_test (bool verbose)
{
    assert (aigw_adapter_find ("gemini") == &aigw_adapter_gemini);
    assert (strcmp (aigw_adapter_gemini.name, "gemini") == 0);
    const char *base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash";
    const char *hello = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char url[512], err[256] = "";

    //  Requests: the method in the URL, the key in its header only.
    snprintf (url, sizeof url, "%s:generateContent", base);
    aigw_upstream_request_t req = s_test_request (&s_test_up, AIGW_KIND_CHAT, false, hello, url, 2);
    assert (strstr (req.body, "\"contents\"") && !strstr (req.url, S_TEST_KEY));
    aigw_upstream_request_reset (&req);
    snprintf (url, sizeof url, "%s:streamGenerateContent?alt=sse", base);
    req = s_test_request (&s_test_up, AIGW_KIND_CHAT, true, hello, url, 2);
    aigw_upstream_request_reset (&req);
    snprintf (url, sizeof url, "%s:batchEmbedContents", base);
    req = s_test_request (&s_test_up, AIGW_KIND_EMBEDDINGS, false, "{\"input\":\"hi\"}", url, 2);
    aigw_upstream_request_reset (&req);
    //  A "models/" prefix is dropped from the URL, kept in the body; a base URL is used.
    aigw_upstream_t embed_up = s_test_up;
    embed_up.model = "models/gemini-embedding-001";
    embed_up.base_url = "http://127.0.0.1:9";
    req = s_test_request (&embed_up, AIGW_KIND_EMBEDDINGS, false, "{\"input\":\"hi\"}",
                          "http://127.0.0.1:9/v1beta/models/gemini-embedding-001"
                          ":batchEmbedContents",
                          2);
    assert (strstr (req.body, "\"model\":\"models/gemini-embedding-001\""));
    aigw_upstream_request_reset (&req);
    //  No key, no key header; other kinds have no endpoint.
    aigw_upstream_t keyless = {.model = "m", .base_url = "http://h"};
    req = s_test_request (&keyless, AIGW_KIND_CHAT, false, hello,
                          "http://h/v1beta/models/m:generateContent", 1);
    aigw_upstream_request_reset (&req);
    assert (aigw_adapter_gemini.request (&s_test_up, AIGW_KIND_MODELS, false, hello, strlen (hello),
                                         &req, err, sizeof err)
            == 1);
    aigw_upstream_request_reset (&req);
    //  Model names that would bend the URL, and bodies the translator
    //  refuses, fail with a reason; the key is in no URL or error.
    static const char *bad_models[] = {"gemini/../x", "m?key=1", "a b", "", "models/", NULL};
    for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++) {
        aigw_upstream_t up = s_test_up;
        up.model = bad_models[i];
        assert (aigw_adapter_gemini.request (&up, AIGW_KIND_CHAT, false, hello, strlen (hello),
                                             &req, err, sizeof err)
                == -1);
        assert (strstr (err, "model") && !strstr (err, S_TEST_KEY));
        assert (!strstr (req.url, S_TEST_KEY));
        aigw_upstream_request_reset (&req);
    }
    assert (aigw_adapter_gemini.request (&s_test_up, AIGW_KIND_CHAT, false, "[1]", 3, &req, err,
                                         sizeof err)
            == -1);
    assert (strstr (err, "body") && !strstr (err, S_TEST_KEY));
    aigw_upstream_request_reset (&req);
    assert (aigw_adapter_gemini.request (&s_test_up, AIGW_KIND_CHAT, false, hello,
                                         (size_t) AIGW_GEMINI_BODY_MAX + 1, &req, err, sizeof err)
            == -1);
    assert (strstr (err, "body"));
    aigw_upstream_request_reset (&req);

    //  Answers go to the translator of their kind.
    size_t len = 0;
    const char *text = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},"
                       "\"finishReason\":\"STOP\"}]}";
    char *out = aigw_adapter_gemini.response (AIGW_KIND_CHAT, text, strlen (text), "m", &len, err,
                                              sizeof err);
    assert (out && strstr (out, "\"chat.completion\"") && strstr (out, "\"ok\""));
    free (out);
    const char *vectors = "{\"embeddings\":[{\"values\":[0.5]}]}";
    out = aigw_adapter_gemini.response (AIGW_KIND_EMBEDDINGS, vectors, strlen (vectors), "m", &len,
                                        err, sizeof err);
    assert (out && strstr (out, "\"embedding\":[0.5]"));
    free (out);
    assert (!aigw_adapter_gemini.response (AIGW_KIND_MODELS, text, strlen (text), "m", &len, err,
                                           sizeof err));

    //  Error bodies, plain and in an array.
    const char *plain = "{\"error\":{\"code\":400,\"message\":\"API key not valid.\","
                        "\"status\":\"INVALID_ARGUMENT\"}}";
    char *message = aigw_adapter_gemini.error_message (plain, strlen (plain));
    assert (message && strcmp (message, "API key not valid.") == 0);
    free (message);
    const char *listed = "[{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted."
                         "\",\"status\":\"RESOURCE_EXHAUSTED\"}}]";
    message = aigw_adapter_gemini.error_message (listed, strlen (listed));
    assert (message && strcmp (message, "Resource has been exhausted.") == 0);
    free (message);
    assert (!aigw_adapter_gemini.error_message ("oops", 4));
    assert (!aigw_adapter_gemini.error_message ("{\"error\":{\"message\":3}}", 23));
    assert (!aigw_adapter_gemini.error_message ("[]", 2));
    assert (!aigw_adapter_gemini.error_message (NULL, 0));

    //  Streams: LF and CRLF ends, comments, event lines, a data field split
    //  over two lines; whole, byte by byte and at every split point alike.
    const char *sse = ": keep-alive\n\nevent: message\r\ndata: {\"candidates\":[{\"content\":"
                      "{\"parts\":[{\"text\":\"A\"}]}}]}\r\n\r\ndata: {\"candidates\":\n"
                      "data: [{\"content\":{\"parts\":[{\"text\":\"B\"}]},\"finishReason\":"
                      "\"MAX_TOKENS\"}]}\n\ndata: {not json}\n\ndata: {\"x\":";
    char *whole = s_test_framings (sse, 0);
    assert (strstr (whole, "\"content\":\"A\"") && strstr (whole, "\"content\":\"B\""));
    assert (strstr (whole, "\"finish_reason\":\"length\""));
    //  Bytes after the finish are ignored: [DONE] comes once, at the end.
    const char *done = strstr (whole, "data: [DONE]\n\n");
    assert (done && strcmp (done, "data: [DONE]\n\n") == 0);
    free (whole);
    //  A malformed event or an upstream error ends the stream with an
    //  error event and [DONE].
    whole = s_test_framings ("data: {not json}\n\n", -1);
    assert (strstr (whole, "\"error\"") && strstr (whole, "data: [DONE]\n\n"));
    free (whole);
    whole = s_test_framings ("data: {\"error\":{\"code\":503,\"message\":\"Overloaded.\","
                             "\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
                             -1);
    assert (strstr (whole, "\"type\":\"UNAVAILABLE\"") && strstr (whole, "Overloaded."));
    free (whole);
    //  An event that never ends is refused past the cap.
    aigw_adapter_stream_t *stream = aigw_adapter_gemini.stream_new (NULL, NULL);
    assert (stream && !aigw_adapter_gemini.stream_done (stream));
    char *filler = malloc (AIGW_GEMINI_STREAM_EVENT_MAX + 1);
    assert (filler);
    memset (filler, 'x', AIGW_GEMINI_STREAM_EVENT_MAX + 1);
    out = NULL;
    len = 0;
    assert (aigw_adapter_gemini.stream_feed (stream, "data: ", 6, &out, &len, err, sizeof err)
            == 0);
    assert (aigw_adapter_gemini.stream_feed (stream, filler, AIGW_GEMINI_STREAM_EVENT_MAX + 1, &out,
                                             &len, err, sizeof err)
            == -1);
    assert (aigw_adapter_gemini.stream_done (stream) && strstr (out, "data: [DONE]\n\n"));
    assert (
        aigw_adapter_gemini.stream_feed (stream, "data: {}\n\n", 10, &out, &len, err, sizeof err)
        == 0);
    free (filler);
    free (out);
    aigw_adapter_gemini.stream_destroy (&stream);
    //  Any byte of the stream overwritten: no crash, no leak.
    size_t sse_len = strlen (sse);
    char *copy = strdup (sse);
    assert (copy);
    for (size_t at = 0; at < sse_len; at++) {
        static const char junk[] = "\n\r:{\"";
        copy[at] = junk[at % (sizeof junk - 1)];
        int rc;
        free (s_test_stream (copy, sse_len, at, 5, &rc, err, sizeof err));
        copy[at] = sse[at];
    }
    free (copy);
    if (verbose)
        printf ("gemini_adapter: ok\n");
}
