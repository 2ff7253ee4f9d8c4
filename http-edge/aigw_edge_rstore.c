/*  aigw_edge_rstore: a Responses answer handed to the responses stage
    before its end reaches the client. */
#include "aigw_edge_rstore.h"
#include "aigw_log.h"
#include "aigw_stage.h"

#include <jansson.h>

//  Room past the store's own wait for the answer to come back.
#define S_REPLY_GRACE_MS 500

struct _aigw_edge_rstore_t {
    bool store;          //  the answer is kept (the client did not send store: false)
    bool previous;       //  the request names a previous_response_id
    bool done;           //  the answer's end was seen (stored or not)
    char *input;         //  the request's "input" as JSON text
    char *previous_id;   //  the request's previous_response_id as JSON text, or NULL
    char *pending;       //  a stream's bytes after its last whole event
    size_t pending_len;  //  bytes in pending
    //  The principal and deployment, from the answer's parts (a stream's
    //  later chunks may leave them out).
    char *tenant_id;      //  auth's tenant id
    char *key_id;         //  auth's key id
    char *model;          //  the model the client asked for
    char *provider;       //  the deployment that answered
    char *provider_kind;  //  its provider
};

aigw_edge_rstore_t *
aigw_edge_rstore_new (const char *body, size_t len)
{
    json_t *root = json_loadb (body, len, 0, NULL);
    json_t *previous = json_object_get (root, "previous_response_id");
    aigw_edge_rstore_t *self = NULL;
    bool store = !json_is_false (json_object_get (root, "store"));
    bool named = previous && !json_is_null (previous);
    if (json_is_object (root) && (store || named) && (self = calloc (1, sizeof *self))) {
        self->store = store;
        self->previous = named;
        self->input = json_dumps (json_object_get (root, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
        //  The store links to it whatever the upstream's answer echoes.
        if (json_is_string (previous))
            self->previous_id = json_dumps (previous, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!self->input)
            self->store = false;
    }
    json_decref (root);
    return self;
}

void
aigw_edge_rstore_destroy (aigw_edge_rstore_t **self_p)
{
    aigw_edge_rstore_t *self = *self_p;
    if (!self)
        return;
    free (self->input);
    free (self->previous_id);
    free (self->pending);
    free (self->tenant_id);
    free (self->key_id);
    free (self->model);
    free (self->provider);
    free (self->provider_kind);
    free (self);
    *self_p = NULL;
}

bool
aigw_edge_rstore_previous (const aigw_edge_rstore_t *self)
{
    return self && self->previous;
}

//  Keep VALUE in *FIELD when set.
static void
s_note (char **field, const char *value)
{
    if (value && (!*field || strcmp (*field, value))) {
        free (*field);
        *field = strdup (value);
    }
}

aigw_envelope_t *
aigw_edge_rstore_request (aigw_edge_rstore_t *self, const aigw_envelope_t *answer,
                          const char *response, size_t len)
{
    s_note (&self->tenant_id, answer->tenant_id);
    s_note (&self->key_id, answer->key_id);
    s_note (&self->model, answer->model);
    s_note (&self->provider, answer->provider);
    s_note (&self->provider_kind, answer->provider_kind);
    aigw_envelope_t *env = aigw_envelope_new ();
    size_t input_len = strlen (self->input);
    const char *previous = self->previous_id ? self->previous_id : "null";
    size_t size = input_len + strlen (previous) + len + 64;
    char *body = malloc (size);
    if (!body) {
        aigw_envelope_destroy (&env);
        return NULL;
    }
    int used = snprintf (body, size,
                         "{\"input\":%s,\"previous_response_id\":%s,\"response\":", self->input,
                         previous);
    memcpy (body + used, response, len);
    used += (int) len;
    body[used++] = '}';
    body[used] = 0;
    env->kind = AIGW_KIND_RESPONSES;
    aigw_envelope_set (&env->method, "PUT");
    aigw_envelope_set (&env->route[0], "responses");
    env->route_len = 1;
    aigw_envelope_set (&env->tenant_id, self->tenant_id);
    aigw_envelope_set (&env->key_id, self->key_id);
    aigw_envelope_set (&env->model, self->model);
    aigw_envelope_set (&env->provider, self->provider);
    aigw_envelope_set (&env->provider_kind, self->provider_kind);
    aigw_envelope_take_body (env, body, (size_t) used);
    return env;
}

//  The Response object of a whole stream event EVENT (LEN bytes) that
//  ends the answer (response.completed or .incomplete), as new JSON text
//  with *OUT_LEN; NULL for any other event.
static char *
s_event_response (const char *event, size_t len, size_t *out_len)
{
    //  Most events are deltas: look for the name before parsing anything.
    const char *names[] = {"response.completed", "response.incomplete"};
    bool ends = false;
    for (size_t i = 0; i < 2 && !ends; i++)
        ends = memmem (event, len, names[i], strlen (names[i])) != NULL;
    if (!ends)
        return NULL;
    const char *data = memmem (event, len, "data:", 5);
    if (!data)
        return NULL;
    data += 5;
    json_t *root = json_loadb (data, len - (size_t) (data - event), JSON_DISABLE_EOF_CHECK, NULL);
    const char *type = json_string_value (json_object_get (root, "type"));
    json_t *response = json_object_get (root, "response");
    char *text = NULL;
    if (type && (streq (type, names[0]) || streq (type, names[1])) && json_is_object (response)) {
        text = json_dumps (response, JSON_COMPACT);
        *out_len = text ? strlen (text) : 0;
    }
    json_decref (root);
    return text;
}

//  The answer's end is RESPONSE (LEN bytes): store it, waiting at most
//  WAIT_MS.
static void
s_store (aigw_edge_rstore_t *self, aigw_edge_io_t *io, const aigw_envelope_t *answer,
         const char *response, size_t len, const char *request_id, int64_t wait_ms)
{
    self->done = true;
    aigw_envelope_t *env = aigw_edge_rstore_request (self, answer, response, len);
    if (!env)
        return;
    int64_t deadline = aigw_now_ms () + wait_ms;
    aigw_envelope_set (&env->id, request_id);
    env->deadline_ms = deadline;
    aigw_slot_t *slot = aigw_edge_io_request (io, &env, -1);
    aigw_client_event_t *event = aigw_slot_wait (slot, deadline + S_REPLY_GRACE_MS);
    int status = 0;
    if (event && event->type == AIGW_BP_CLIENT_REPLY) {
        if (event->env)
            status = event->env->status;
        else if (event->envelope) {
            char err[128];
            aigw_envelope_t *reply = aigw_envelope_decode (
                zframe_data (event->envelope), zframe_size (event->envelope), err, sizeof err);
            status = reply ? reply->status : 0;
            aigw_envelope_destroy (&reply);
        }
    }
    else if (event)
        status = event->status;
    if (status != 204)
        aigw_warn ("responses: request %s: its answer went out unstored (%d)", request_id, status);
    aigw_client_event_destroy (&event);
    aigw_slot_destroy (&slot);
}

void
aigw_edge_rstore_feed (aigw_edge_rstore_t *self, aigw_edge_io_t *io, const aigw_envelope_t *answer,
                       bool last, const char *request_id, int64_t wait_ms)
{
    if (!self || !self->store || self->done)
        return;
    s_note (&self->tenant_id, answer->tenant_id);
    s_note (&self->key_id, answer->key_id);
    s_note (&self->model, answer->model);
    s_note (&self->provider, answer->provider);
    s_note (&self->provider_kind, answer->provider_kind);
    if (answer->status >= 400) {
        self->done = true;  //  a failed request keeps nothing
        return;
    }
    bool stream = !last || answer->seq > 0
                  || (answer->content_type && strstr (answer->content_type, "event-stream"));
    if (!stream) {
        //  A Response object; only a completed or incomplete one is kept.
        json_t *root = json_loadb (answer->body, answer->body_len, 0, NULL);
        const char *object = json_string_value (json_object_get (root, "object"));
        bool response = object && streq (object, "response");
        json_decref (root);
        self->done = true;
        if (response)
            s_store (self, io, answer, answer->body, answer->body_len, request_id, wait_ms);
        return;
    }
    if (self->pending_len + answer->body_len > AIGW_EDGE_RSTORE_PENDING_MAX) {
        self->done = true;
        return;
    }
    char *grown = realloc (self->pending, self->pending_len + answer->body_len + 1);
    if (!grown) {
        self->done = true;
        return;
    }
    self->pending = grown;
    if (answer->body_len)  //  a last message may carry no body at all
        memcpy (self->pending + self->pending_len, answer->body, answer->body_len);
    self->pending_len += answer->body_len;
    self->pending[self->pending_len] = 0;
    //  Whole events: each ends with a blank line.
    size_t at = 0;
    const char *end;
    while ((end = memmem (self->pending + at, self->pending_len - at, "\n\n", 2))) {
        size_t event_len = (size_t) (end - (self->pending + at));
        size_t len = 0;
        char *response = s_event_response (self->pending + at, event_len, &len);
        at += event_len + 2;
        if (response) {
            s_store (self, io, answer, response, len, request_id, wait_ms);
            free (response);
            break;
        }
    }
    memmove (self->pending, self->pending + at, self->pending_len - at);
    self->pending_len -= at;
    if (last)
        self->done = true;
}

//  ---------------------------------------------------------------------
//  Selftest

void
aigw_edge_rstore_test (bool verbose)
{
    (void) verbose;
    const char *off = "{\"model\":\"m\",\"input\":\"x\",\"store\":false}";
    assert (!aigw_edge_rstore_new (off, strlen (off)));
    const char *body = "{\"model\":\"m\",\"input\":\"hi\"}";
    aigw_edge_rstore_t *self = aigw_edge_rstore_new (body, strlen (body));
    assert (self && !aigw_edge_rstore_previous (self));
    aigw_envelope_t *answer = aigw_envelope_new ();
    aigw_envelope_set (&answer->tenant_id, "t1");
    aigw_envelope_set (&answer->model, "m");
    const char *response = "{\"id\":\"resp_1\",\"object\":\"response\"}";
    aigw_envelope_t *env = aigw_edge_rstore_request (self, answer, response, strlen (response));
    assert (env && env->kind == AIGW_KIND_RESPONSES && streq (env->method, "PUT"));
    assert (env->route_len == 1 && streq (env->route[0], "responses"));
    assert (streq (env->tenant_id, "t1") && streq (env->model, "m"));
    assert (streq (env->body, "{\"input\":\"hi\",\"previous_response_id\":null,\"response\":{"
                              "\"id\":\"resp_1\",\"object\":"
                              "\"response\"}}"));
    aigw_envelope_destroy (&env);
    aigw_envelope_destroy (&answer);
    aigw_edge_rstore_destroy (&self);
    aigw_edge_rstore_destroy (&self);
    //  A follow-up that keeps nothing still goes through the stage.
    const char *next = "{\"model\":\"m\",\"input\":\"x\",\"store\":false,"
                       "\"previous_response_id\":\"resp_1\"}";
    self = aigw_edge_rstore_new (next, strlen (next));
    assert (self && aigw_edge_rstore_previous (self));
    aigw_edge_rstore_destroy (&self);
    //  The end of a stream, split anywhere; deltas are never parsed.
    const char *event = "event: response.completed\ndata: {\"type\":\"response.completed\","
                        "\"response\":{\"id\":\"resp_2\"}}";
    size_t len = 0;
    char *text = s_event_response (event, strlen (event), &len);
    assert (text && streq (text, "{\"id\":\"resp_2\"}") && len == strlen (text));
    free (text);
    const char *delta = "event: response.output_text.delta\ndata: {\"delta\":\"x\"}";
    assert (!s_event_response (delta, strlen (delta), &len));
}
