/*  aigw_respstore: stored Responses, their reads on the data path, GET and
    DELETE, the edge's stores and the prune. */
#include "aigw_respstore.h"
#include "aigw_json.h"
#include "aigw_log.h"
#include "aigw_pgconn.h"

#include <jansson.h>

//  Every statement names the tenant: another tenant's id is not there.
// clang-format off
#define S_LOAD_SQL                                                                     \
    "SELECT input_items::text, coalesce (response->'output', '[]')::text,"             \
    " coalesce (deployment, ''), coalesce (provider, '') FROM responses"               \
    " WHERE tenant_id = $1 AND id = $2 AND expires_at > now ()"
#define S_GET_SQL                                                                      \
    "SELECT response::text FROM responses"                                             \
    " WHERE tenant_id = $1 AND id = $2 AND expires_at > now ()"
#define S_ITEMS_SQL                                                                    \
    "SELECT input_items::text FROM responses"                                          \
    " WHERE tenant_id = $1 AND id = $2 AND expires_at > now ()"
#define S_DELETE_SQL                                                                   \
    "DELETE FROM responses WHERE tenant_id = $1 AND id = $2"                           \
    " RETURNING expires_at > now ()"
//  The conversation so far is the previous response's input items and
//  output (when it is still there), then this turn's own input.
#define S_STORE_SQL                                                                    \
    "INSERT INTO responses (tenant_id, id, key_id, model, deployment, provider,"       \
    " previous_response_id, input_items, response, created_at, expires_at)"          \
    " SELECT $1, $2, $3, $4, $5, $6, $7, coalesce ((SELECT p.input_items"              \
    " || coalesce (p.response->'output', '[]') FROM responses p WHERE p.tenant_id = $1" \
    " AND p.id = $7 AND p.expires_at > now ()), '[]'::jsonb) || $8::jsonb, $9::jsonb," \
    " coalesce (to_timestamp ($10::bigint), now ()),"                                  \
    " now () + make_interval (secs => $11::bigint)"                                    \
    " ON CONFLICT (tenant_id, id) DO NOTHING"
#define S_PRUNE_SQL                                                                    \
    "DELETE FROM responses WHERE ctid IN (SELECT ctid FROM responses"                  \
    " WHERE expires_at <= now () LIMIT $1)"
// clang-format on
//  Parameters of the longest statement (the store).
#define S_PARAMS_MAX 11

//  What an operation does.
typedef enum {
    S_OP_LOAD,    //  the previous response of a follow-up turn
    S_OP_GET,     //  GET /v1/responses/{id}
    S_OP_ITEMS,   //  GET /v1/responses/{id}/input_items
    S_OP_DELETE,  //  DELETE /v1/responses/{id}
    S_OP_STORE,   //  the edge's store
    S_OP_PRUNE    //  expired rows out
} s_op_kind_t;

//  One statement waiting for, or running on, the connection.
typedef struct s_op {
    struct s_op *next;                   //  the queue
    struct _self *owner;                 //  the stage
    s_op_kind_t kind;                    //  what it does
    aigw_job_t *job;                     //  the request (NULL for the prune)
    aigw_envelope_t *env;                //  its envelope
    char *params[S_PARAMS_MAX];          //  text parameters (NULL: SQL NULL)
    int nparams;                         //  used in params
    char id[AIGW_RESPSTORE_ID_MAX + 1];  //  the response id asked for
} s_op_t;

typedef struct _self {
    const aigw_config_t *config;  //  settings (shared, read-only)
    aigw_pgconn_t *db;            //  the connection, NULL without a database
    s_op_t *head;                 //  operations in arrival order; the head runs first
    s_op_t *tail;                 //  the last one
    size_t queued;                //  entries in the queue
    s_op_t *running;              //  the statement on the connection, or NULL
    int64_t prune_at;             //  when the next prune is due (ms)
    bool pruning;                 //  a prune is queued or running
} self_t;

static void s_pump (self_t *self);

static void
s_op_destroy (s_op_t **op_p)
{
    s_op_t *op = *op_p;
    if (!op)
        return;
    for (int i = 0; i < op->nparams; i++)
        free (op->params[i]);
    aigw_envelope_destroy (&op->env);
    free (op);
    *op_p = NULL;
}

//  Answer OP's request with ENV as it stands and free OP.
static void
s_op_answer (s_op_t **op_p)
{
    s_op_t *op = *op_p;
    if (op->job)
        aigw_stage_pass (&op->job, &op->env);
    s_op_destroy (op_p);
}

//  Answer OP with an error and free it.
static void
s_op_error (s_op_t **op_p, int status, const char *type, const char *code, const char *param,
            const char *message)
{
    s_op_t *op = *op_p;
    if (op->env)
        aigw_envelope_set_error (op->env, status, type, code, param, message);
    s_op_answer (op_p);
}

//  The not-found answer for OP, in OpenAI's words.
static void
s_op_missing (s_op_t **op_p)
{
    s_op_t *op = *op_p;
    char message[AIGW_RESPSTORE_ID_MAX + 64];
    if (op->kind == S_OP_LOAD) {
        snprintf (message, sizeof message, "Previous response with id '%s' not found.", op->id);
        s_op_error (op_p, 404, "invalid_request_error", "previous_response_not_found",
                    "previous_response_id", message);
    }
    else {
        snprintf (message, sizeof message, "Response with id '%s' not found.", op->id);
        s_op_error (op_p, 404, "invalid_request_error", "not_found", NULL, message);
    }
}

//  Answer OP with the JSON text BODY (taken) and status 200.
static void
s_op_json (s_op_t **op_p, char *body, size_t len)
{
    s_op_t *op = *op_p;
    op->env->status = 200;
    op->env->last = true;
    aigw_envelope_set (&op->env->content_type, "application/json");
    aigw_envelope_take_body (op->env, body, len);
    s_op_answer (op_p);
}

//  A follow-up's previous response is here: rewrite the request and pass
//  it on.
static void
s_loaded (s_op_t **op_p, PGresult *result)
{
    s_op_t *op = *op_p;
    aigw_envelope_t *env = op->env;
    size_t len = 0, history = 0;
    char *body = aigw_respstore_followup (env->body, env->body_len, PQgetvalue (result, 0, 0),
                                          PQgetvalue (result, 0, 1), &len, &history);
    if (!body) {
        s_op_error (op_p, 400, "invalid_request_error", "invalid_request", "input",
                    "The stored conversation cannot be joined to this request's input.");
        return;
    }
    aigw_envelope_take_body (env, body, len);
    //  An openai deployment ran the previous turn through its own
    //  /v1/responses and keeps it: the provider may send it there again.
    const char *provider = PQgetvalue (result, 0, 3);
    const char *deployment = streq (provider, "openai") ? PQgetvalue (result, 0, 2) : "";
    char *previous = zsys_sprintf ("%s\t%zu\t%s", op->id, history, deployment);
    aigw_envelope_set (&env->previous, previous);
    zstr_free (&previous);
    s_op_answer (op_p);
}

//  GET .../input_items: the stored items as OpenAI's list, in ORDER.
static void
s_items (s_op_t **op_p, const char *text)
{
    s_op_t *op = *op_p;
    json_t *items = json_loads (text, 0, NULL);
    const char *query = op->env->query ? op->env->query : "";
    bool asc = strstr (query, "order=asc") != NULL;
    json_t *data = json_array ();
    size_t count = json_array_size (items);
    for (size_t i = 0; data && i < count; i++)
        json_array_append (data, json_array_get (items, asc ? i : count - 1 - i));
    json_t *list = json_pack ("{s:s, s:o, s:b}", "object", "list", "data", data, "has_more", 0);
    json_t *first = json_object_get (json_array_get (data, 0), "id");
    json_t *last = json_object_get (json_array_get (data, count ? count - 1 : 0), "id");
    if (list) {
        json_object_set (list, "first_id", json_is_string (first) ? first : json_null ());
        json_object_set (list, "last_id", json_is_string (last) ? last : json_null ());
    }
    size_t len = 0;
    char *body = list ? aigw_json_dump (list, &len) : NULL;  //  steals list
    json_decref (items);
    if (!body)
        s_op_error (op_p, 500, "server_error", "internal_error", NULL, "Out of memory.");
    else
        s_op_json (op_p, body, len);
}

//  The statement of the operation running ended.
static void
s_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    s_op_t *op = arg;
    self_t *self = op->owner;
    self->running = NULL;
    if (op->kind == S_OP_PRUNE)
        self->pruning = false;
    bool ok = status == AIGW_PGCONN_OK && result
              && (PQresultStatus (result) == PGRES_TUPLES_OK
                  || PQresultStatus (result) == PGRES_COMMAND_OK);
    if (!ok) {
        const char *why = status != AIGW_PGCONN_OK ? "the connection broke or timed out"
                          : result                 ? PQresultErrorMessage (result)
                                                   : "no result";
        aigw_warn ("responses: a statement failed: %s", why);
        if (op->job)
            s_op_error (&op, 503, "service_unavailable", "responses_unavailable", NULL,
                        "Stored responses are unavailable: the database did not answer.");
        else
            s_op_destroy (&op);
    }
    else if (op->kind == S_OP_PRUNE) {
        const char *rows = PQcmdTuples (result);
        if (rows && *rows && strcmp (rows, "0"))
            aigw_debug ("responses: %s expired responses deleted", rows);
        s_op_destroy (&op);
    }
    else if (op->kind == S_OP_STORE) {
        op->env->status = 204;
        op->env->last = true;
        aigw_envelope_take_body (op->env, NULL, 0);
        s_op_answer (&op);
    }
    else if (PQntuples (result) < 1
             || (op->kind == S_OP_DELETE && strcmp (PQgetvalue (result, 0, 0), "t")))
        s_op_missing (&op);
    else if (op->kind == S_OP_LOAD)
        s_loaded (&op, result);
    else if (op->kind == S_OP_GET) {
        char *body = strdup (PQgetvalue (result, 0, 0));
        if (body)
            s_op_json (&op, body, strlen (body));
        else
            s_op_error (&op, 500, "server_error", "internal_error", NULL, "Out of memory.");
    }
    else if (op->kind == S_OP_ITEMS)
        s_items (&op, PQgetvalue (result, 0, 0));
    else {
        char *body
            = zsys_sprintf ("{\"id\":\"%s\",\"object\":\"response\",\"deleted\":true}", op->id);
        s_op_json (&op, body, strlen (body));
    }
    if (result)
        PQclear (result);
    s_pump (self);
}

static const char *
s_sql (s_op_kind_t kind)
{
    switch (kind) {
        case S_OP_LOAD: return S_LOAD_SQL;
        case S_OP_GET: return S_GET_SQL;
        case S_OP_ITEMS: return S_ITEMS_SQL;
        case S_OP_DELETE: return S_DELETE_SQL;
        case S_OP_STORE: return S_STORE_SQL;
        default: return S_PRUNE_SQL;
    }
}

//  Start the next operation when the connection is idle; answer those
//  whose deadline passed while they waited.
static void
s_pump (self_t *self)
{
    int64_t now = aigw_now_ms ();
    while (self->head && !self->running) {
        s_op_t *op = self->head;
        bool late = op->env && op->env->deadline_ms && op->env->deadline_ms <= now;
        if (!late && (!self->db || aigw_pgconn_state (self->db) != AIGW_PGCONN_IDLE))
            break;
        self->head = op->next;
        if (!self->head)
            self->tail = NULL;
        self->queued--;
        op->next = NULL;
        if (late) {
            s_op_error (&op, 503, "service_unavailable", "responses_unavailable", NULL,
                        "Stored responses are unavailable: the database did not answer in time.");
            continue;
        }
        int64_t deadline = op->env && op->env->deadline_ms
                               ? op->env->deadline_ms
                               : now
                                     + (self->config->db_statement_timeout_ms > 0
                                            ? self->config->db_statement_timeout_ms
                                            : 30000);
        self->running = op;
        if (aigw_pgconn_send (self->db, s_sql (op->kind), op->nparams,
                              (const char *const *) op->params, deadline, s_done, op, now)
            != 0) {
            self->running = NULL;
            if (op->job)
                s_op_error (&op, 503, "service_unavailable", "responses_unavailable", NULL,
                            "Stored responses are unavailable: the database did not answer.");
            else
                s_op_destroy (&op);
        }
    }
    //  Stale ones behind a slow head still get their answer in time.
    for (s_op_t **at = &self->head; *at;) {
        s_op_t *op = *at;
        if (op->env && op->env->deadline_ms && op->env->deadline_ms <= now) {
            *at = op->next;
            if (self->tail == op)
                self->tail = NULL;
            self->queued--;
            s_op_error (&op, 503, "service_unavailable", "responses_unavailable", NULL,
                        "Stored responses are unavailable: the database did not answer in time.");
            continue;
        }
        self->tail = op;
        at = &op->next;
    }
}

//  Queue OP (taken).
static void
s_queue (self_t *self, s_op_t *op)
{
    if (self->tail)
        self->tail->next = op;
    else
        self->head = op;
    self->tail = op;
    self->queued++;
    s_pump (self);
}

//  A new operation for JOB and ENV (both taken) with PARAMS.
static s_op_t *
s_op_new (self_t *self, s_op_kind_t kind, aigw_job_t *job, aigw_envelope_t *env,
          const char *const *params, int nparams)
{
    s_op_t *op = calloc (1, sizeof *op);
    assert (op);
    op->owner = self;
    op->kind = kind;
    op->job = job;
    op->env = env;
    op->nparams = nparams;
    for (int i = 0; i < nparams; i++)
        op->params[i] = params[i] ? strdup (params[i]) : NULL;
    return op;
}

//  True when ID is a usable response id: printable, no slash or quote.
static bool
s_id_ok (const char *id)
{
    size_t len = id ? strlen (id) : 0;
    if (!len || len > AIGW_RESPSTORE_ID_MAX)
        return false;
    for (const char *c = id; *c; c++)
        if (*c <= 32 || *c >= 127 || *c == '/' || *c == '"' || *c == '\\')
            return false;
    return true;
}

//  The edge's store: ENV's body is {"input": ..., "previous_response_id":
//  ..., "response": {...}}.
static s_op_t *
s_store_op (self_t *self, aigw_job_t *job, aigw_envelope_t *env, const char *tenant)
{
    json_t *root = json_loadb (env->body, env->body_len, 0, NULL);
    json_t *response = json_object_get (root, "response");
    json_t *id = json_object_get (response, "id");
    //  The request's own, whatever the upstream's answer echoes.
    json_t *previous = json_object_get (root, "previous_response_id");
    json_t *created = json_object_get (response, "created_at");
    char *input = json_dumps (json_object_get (root, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
    char *items = input ? aigw_respstore_items (input) : NULL;
    char *text = json_is_object (response) ? json_dumps (response, JSON_COMPACT) : NULL;
    s_op_t *op = NULL;
    if (items && text && json_is_string (id) && s_id_ok (json_string_value (id))) {
        char created_s[32], ttl[32];
        snprintf (created_s, sizeof created_s, "%lld",
                  (long long) (json_is_integer (created) ? json_integer_value (created) : 0));
        snprintf (ttl, sizeof ttl, "%lld", (long long) self->config->responses_ttl_s);
        const char *params[S_PARAMS_MAX]
            = {tenant,
               json_string_value (id),
               env->key_id,
               env->model ? env->model : "",
               env->provider,
               env->provider_kind,
               json_is_string (previous) ? json_string_value (previous) : NULL,
               items,
               text,
               json_is_integer (created) ? created_s : NULL,
               ttl};
        op = s_op_new (self, S_OP_STORE, job, env, params, S_PARAMS_MAX);
        snprintf (op->id, sizeof op->id, "%s", json_string_value (id));
    }
    free (input);
    free (items);
    free (text);
    json_decref (root);
    return op;
}

static void
s_stage_take (void *state, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = state;
    const char *tenant = env->tenant_id ? env->tenant_id : "";
    const char *method = env->method ? env->method : "POST";
    s_op_t *op = NULL;
    if (env->kind != AIGW_KIND_RESPONSES) {
        aigw_envelope_set_error (env, 404, "invalid_request_error", "unknown_endpoint", NULL,
                                 "The responses stage does not serve this endpoint.");
        aigw_stage_pass (&job, &env);
        return;
    }
    if (streq (method, "PUT")) {
        op = s_store_op (self, job, env, tenant);
        if (!op) {
            aigw_warn ("responses: a store without a usable response, not kept");
            aigw_envelope_set_error (env, 400, "invalid_request_error", "invalid_request", NULL,
                                     "Not a response to store.");
            aigw_stage_pass (&job, &env);
            return;
        }
    }
    else if (streq (method, "POST")) {
        json_t *root = json_loadb (env->body, env->body_len, 0, NULL);
        json_t *previous = json_object_get (root, "previous_response_id");
        char id[AIGW_RESPSTORE_ID_MAX + 1] = "";
        bool ok = json_is_string (previous) && s_id_ok (json_string_value (previous));
        if (ok)
            snprintf (id, sizeof id, "%s", json_string_value (previous));
        bool absent = !previous || json_is_null (previous);
        json_decref (root);
        if (absent) {
            aigw_stage_pass (&job, &env);  //  nothing to resolve
            return;
        }
        if (!ok) {
            aigw_envelope_set_error (env, 400, "invalid_request_error", "invalid_value",
                                     "previous_response_id",
                                     "Invalid 'previous_response_id': expected a response id.");
            aigw_stage_pass (&job, &env);
            return;
        }
        const char *params[] = {tenant, id};
        op = s_op_new (self, S_OP_LOAD, job, env, params, 2);
        snprintf (op->id, sizeof op->id, "%s", id);
    }
    else {
        //  GET ID, GET ID/input_items, DELETE ID.
        char id[AIGW_RESPSTORE_ID_MAX + 1] = "";
        const char *path = env->path ? env->path : "";
        const char *slash = strchr (path, '/');
        size_t len = slash ? (size_t) (slash - path) : strlen (path);
        if (len <= AIGW_RESPSTORE_ID_MAX)
            snprintf (id, sizeof id, "%.*s", (int) len, path);
        s_op_kind_t kind = !slash && streq (method, "DELETE") ? S_OP_DELETE
                           : !slash && streq (method, "GET")  ? S_OP_GET
                           : slash && streq (slash, "/input_items") && streq (method, "GET")
                               ? S_OP_ITEMS
                               : S_OP_PRUNE;
        if (kind == S_OP_PRUNE || !s_id_ok (id)) {
            aigw_envelope_set_error (env, 404, "invalid_request_error", "not_found", NULL,
                                     "Unknown path.");
            aigw_stage_pass (&job, &env);
            return;
        }
        const char *params[] = {tenant, id};
        op = s_op_new (self, kind, job, env, params, 2);
        snprintf (op->id, sizeof op->id, "%s", id);
    }
    if (!self->db) {
        //  Nothing is stored without a database.
        if (op->kind == S_OP_STORE) {
            op->env->status = 204;
            op->env->last = true;
            aigw_envelope_take_body (op->env, NULL, 0);
            s_op_answer (&op);
        }
        else
            s_op_missing (&op);
        return;
    }
    if (self->queued >= AIGW_RESPSTORE_QUEUE_MAX) {
        s_op_error (&op, 503, "service_unavailable", "responses_busy", NULL,
                    "Too many stored-response operations are waiting.");
        return;
    }
    s_queue (self, op);
}

//  ---------------------------------------------------------------------
//  Items

//  ITEM as a plain Responses item any provider's translation takes (a new
//  reference), or NULL to leave it out (reasoning: no other provider can
//  read it, and the model reasons again).
static json_t *
s_plain_item (json_t *item)
{
    const char *type = json_string_value (json_object_get (item, "type"));
    if (!json_is_object (item))
        return NULL;
    if (type && streq (type, "reasoning"))
        return NULL;
    if (type && streq (type, "function_call"))
        return json_pack ("{s:s, s:O?, s:O?, s:O?}", "type", "function_call", "call_id",
                          json_object_get (item, "call_id"), "name", json_object_get (item, "name"),
                          "arguments", json_object_get (item, "arguments"));
    if (type && streq (type, "function_call_output"))
        return json_pack ("{s:s, s:O?, s:O?}", "type", "function_call_output", "call_id",
                          json_object_get (item, "call_id"), "output",
                          json_object_get (item, "output"));
    if ((!type || streq (type, "message")) && json_object_get (item, "role")) {
        json_t *content = json_object_get (item, "content");
        json_t *parts = content;
        if (json_is_array (content)) {
            parts = json_array ();
            size_t i;
            json_t *part;
            json_array_foreach (content, i, part) {
                const char *ptype = json_string_value (json_object_get (part, "type"));
                if (ptype && streq (ptype, "output_text"))
                    json_array_append_new (parts,
                                           json_pack ("{s:s, s:O?}", "type", "output_text", "text",
                                                      json_object_get (part, "text")));
                else if (ptype && streq (ptype, "refusal"))
                    json_array_append_new (parts,
                                           json_pack ("{s:s, s:O?}", "type", "output_text", "text",
                                                      json_object_get (part, "refusal")));
                else
                    json_array_append (parts, part);
            }
        }
        else
            json_incref (parts);
        return json_pack ("{s:s, s:O, s:o?}", "type", "message", "role",
                          json_object_get (item, "role"), "content", parts);
    }
    return json_incref (item);
}

//  Append ITEMS (a JSON array) to TARGET as plain items. 0, or -1.
static int
s_append_plain (json_t *target, json_t *items)
{
    if (!json_is_array (items))
        return -1;
    size_t i;
    json_t *item;
    json_array_foreach (items, i, item) {
        json_t *plain = s_plain_item (item);
        if (plain && json_array_append_new (target, plain))
            return -1;
    }
    return 0;
}

//  INPUT (a string or an array) as a new array of items, or NULL.
static json_t *
s_input_items (json_t *input)
{
    if (json_is_string (input))
        return json_pack ("[{s:s, s:s, s:[{s:s, s:O}]}]", "type", "message", "role", "user",
                          "content", "type", "input_text", "text", input);
    if (json_is_array (input))
        return json_incref (input);
    return NULL;
}

char *
aigw_respstore_items (const char *input_json)
{
    json_t *input = json_loads (input_json, JSON_DECODE_ANY, NULL);
    json_t *items = s_input_items (input);
    char *text = items ? json_dumps (items, JSON_COMPACT) : NULL;
    json_decref (items);
    json_decref (input);
    return text;
}

char *
aigw_respstore_followup (const char *body, size_t len, const char *input_items, const char *output,
                         size_t *out_len, size_t *history)
{
    json_t *root = json_loadb (body, len, 0, NULL);
    json_t *stored = json_loads (input_items, 0, NULL);
    json_t *out = json_loads (output, 0, NULL);
    json_t *own = s_input_items (json_object_get (root, "input"));
    json_t *items = json_array ();
    char *text = NULL;
    if (json_is_object (root) && own && items && s_append_plain (items, stored) == 0
        && s_append_plain (items, out) == 0) {
        *history = json_array_size (items);
        json_array_extend (items, own);
        json_object_set (root, "input", items);
        text = aigw_json_dump (root, out_len);  //  steals root
        root = NULL;
    }
    json_decref (items);
    json_decref (own);
    json_decref (out);
    json_decref (stored);
    json_decref (root);
    return text;
}

//  ---------------------------------------------------------------------
//  Stage

static void
s_db_up (void *arg)
{
    s_pump ((self_t *) arg);
}

static void *
s_stage_new (aigw_host_t *host, const aigw_config_t *config)
{
    (void) host;
    self_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = config;
    self->prune_at = aigw_now_ms () + config->responses_prune_s * 1000;
    if (config->database_url && *config->database_url) {
        aigw_pgconn_settings_t settings
            = {.name = "responses",
               .application_name = "aigw-responses",
               .connect_timeout_ms
               = config->db_connect_timeout_ms > 0 ? config->db_connect_timeout_ms : 3000,
               .statement_timeout_ms = config->db_statement_timeout_ms,
               .backoff_min_ms = 100,
               .backoff_max_ms = 2000};
        aigw_pgconn_events_t events = {s_db_up, NULL, NULL, self};
        self->db = aigw_pgconn_new (config->database_url, &settings, &events);
        if (!self->db)
            aigw_error ("responses: the database URL cannot be used; nothing is stored");
        else
            aigw_pgconn_connect (self->db, aigw_now_ms ());
    }
    return self;
}

static void
s_stage_destroy (void **state_p)
{
    self_t *self = *state_p;
    if (!self)
        return;
    //  The running statement's callback gets CANCELLED and answers it.
    aigw_pgconn_destroy (&self->db);
    while (self->head) {
        s_op_t *op = self->head;
        self->head = op->next;
        s_op_error (&op, 503, "service_unavailable", "responses_unavailable", NULL,
                    "The responses stage is stopping.");
    }
    free (self);
    *state_p = NULL;
}

static int
s_stage_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    self_t *self = state;
    return max >= 1 && aigw_pgconn_pollitem (self->db, &items[0]) ? 1 : 0;
}

static int
s_stage_timeout (void *state)
{
    self_t *self = state;
    if (!self->db)
        return -1;
    int64_t now = aigw_now_ms ();
    int64_t due = self->prune_at - now;
    int t = aigw_pgconn_timeout (self->db, now);
    if (t >= 0 && t < due)
        due = t;
    //  A waiting operation is answered at its deadline.
    for (s_op_t *op = self->head; op; op = op->next)
        if (op->env && op->env->deadline_ms && op->env->deadline_ms - now < due)
            due = op->env->deadline_ms - now;
    return due < 0 ? 0 : due > INT_MAX ? INT_MAX : (int) due;
}

static void
s_stage_process (void *state, zmq_pollitem_t *items, int count)
{
    self_t *self = state;
    if (!self->db)
        return;
    int64_t now = aigw_now_ms ();
    aigw_pgconn_process (self->db, count ? items[0].revents : 0, now);
    if (now >= self->prune_at && !self->pruning) {
        self->pruning = true;
        self->prune_at = now + self->config->responses_prune_s * 1000;
        char rows[32];
        snprintf (rows, sizeof rows, "%d", AIGW_RESPSTORE_PRUNE_ROWS);
        const char *params[] = {rows};
        s_queue (self, s_op_new (self, S_OP_PRUNE, NULL, NULL, params, 1));
    }
    s_pump (self);
}

const aigw_stage_def_t aigw_respstore_stage = {
    .name = "responses",
    .replay_safe = true,
    .state_new = s_stage_new,
    .state_destroy = s_stage_destroy,
    .take = s_stage_take,
    .pollitems = s_stage_pollitems,
    .timeout = s_stage_timeout,
    .process = s_stage_process,
};

//  responses: how long stored responses live (the keywords live beside
//  their use).
static const aigw_config_keyword_t s_respstore_keywords[]
    = {AIGW_CONFIG_KW_NUMBER ("ttl_s", AIGW_CONFIG_INT64, aigw_config_t, responses_ttl_s, 1,
                              (int64_t) 3650 * 24 * 3600, AIGW_RESPSTORE_DEFAULT_TTL_S),
       AIGW_CONFIG_KW_NUMBER ("prune_s", AIGW_CONFIG_INT64, aigw_config_t, responses_prune_s, 1,
                              86400, AIGW_RESPSTORE_DEFAULT_PRUNE_S),
       AIGW_CONFIG_KW_NUMBER ("store_wait_ms", AIGW_CONFIG_INT64, aigw_config_t,
                              responses_store_wait_ms, 10, 60000,
                              AIGW_RESPSTORE_DEFAULT_STORE_WAIT_MS),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("responses", s_respstore_keywords)

//  ---------------------------------------------------------------------
//  Selftest: the items (the database paths run in the integration suite).

void
aigw_respstore_test (bool verbose)
{
    (void) verbose;
    char *items = aigw_respstore_items ("\"hi\"");
    assert (items);
    assert (streq (items, "[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
                          "\"input_text\",\"text\":\"hi\"}]}]"));
    free (items);
    assert (!aigw_respstore_items ("42"));
    const char *stored = "[{\"type\":\"message\",\"role\":\"user\",\"content\":\"weather?\"}]";
    const char *output
        = "[{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[]},"
          "{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"completed\","
          "\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{}\"},"
          "{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\","
          "\"content\":[{\"type\":\"output_text\",\"text\":\"ok\",\"annotations\":[]}]}]";
    const char *body = "{\"model\":\"m\",\"previous_response_id\":\"resp_1\",\"input\":"
                       "[{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":"
                       "\"18C\"}]}";
    size_t len = 0, history = 0;
    char *out = aigw_respstore_followup (body, strlen (body), stored, output, &len, &history);
    assert (out && len == strlen (out));
    assert (history == 3);
    json_t *root = json_loads (out, 0, NULL);
    json_t *input = json_object_get (root, "input");
    assert (json_array_size (input) == 4);
    assert (streq (json_string_value (json_object_get (json_array_get (input, 1), "type")),
                   "function_call"));
    assert (!json_object_get (json_array_get (input, 1), "id"));
    json_t *text = json_array_get (json_object_get (json_array_get (input, 2), "content"), 0);
    assert (!json_object_get (text, "annotations"));
    assert (streq (json_string_value (json_object_get (text, "text")), "ok"));
    assert (streq (json_string_value (json_object_get (root, "previous_response_id")), "resp_1"));
    json_decref (root);
    free (out);
    //  A bare string turn after the history.
    const char *plain = "{\"model\":\"m\",\"input\":\"and tomorrow?\"}";
    out = aigw_respstore_followup (plain, strlen (plain), stored, "[]", &len, &history);
    assert (out && history == 1 && strstr (out, "and tomorrow?"));
    free (out);
    //  Not arrays, not an object: refused.
    assert (!aigw_respstore_followup (plain, strlen (plain), "{}", "[]", &len, &history));
    assert (!aigw_respstore_followup ("[]", 2, stored, "[]", &len, &history));
    assert (s_id_ok ("resp_abc") && !s_id_ok ("") && !s_id_ok ("a/b") && !s_id_ok ("a b"));
}
