/*  aigw_cacheform: request keys and answers in the client's shape. */
#include "aigw_cacheform.h"
#include "aigw_adapter.h"
#include "aigw_hex.h"
#include "aigw_messages.h"
#include "aigw_openai.h"
#include "aigw_responses.h"

#include <assert.h>
#include <czmq.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Version of the key derivation: a change here must not meet old keys.
#define S_KEY_VERSION "aigw-cache-2"

//  SHA-256, fetched once: EVP_sha256 () makes every EVP_DigestInit_ex
//  look the algorithm up again (a fifth of a hash's cost on short input).
static EVP_MD *s_sha256;
static pthread_once_t s_sha256_once = PTHREAD_ONCE_INIT;
static void
s_sha256_fetch (void)
{
    s_sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
    assert (s_sha256);
}

//  Hex SHA-256 of the NUL-separated PARTS (COUNT of them, LENS bytes each).
static void
s_hash (const char *const *parts, const size_t *lens, size_t count,
        char out[AIGW_CACHE_KEY_LEN + 1])
{
    unsigned char digest[32];
    unsigned int len = 0;
    pthread_once (&s_sha256_once, s_sha256_fetch);
    //  The parts and their NULs in one buffer, hashed in one call: each
    //  EVP call costs hundreds of instructions of its own.
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += lens[i] + 1;
    char small[1024];
    char *buffer = total <= sizeof small ? small : malloc (total);
    assert (buffer);
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy (buffer + at, parts[i], lens[i]);
        at += lens[i];
        buffer[at++] = '\0';
    }
    int rc = EVP_Digest (buffer, total, digest, &len, s_sha256, NULL);
    assert (rc == 1);
    if (buffer != small)
        free (buffer);
    aigw_hex_encode (digest, sizeof digest, out);
}

const char *
aigw_cacheform_embedder (const aigw_config_t *config)
{
    if (!config->cache_semantic_enabled)
        return "";
    const char *model = config->cache_semantic_model;
    return model && *model ? model : "local";
}

//  What a reading takes from the body alone: its canonical form (the
//  partition's input) and the last user text.
typedef struct {
    char *canonical;  //  compact, sorted keys, stream flags and the text left out
    char *text;       //  the last user message's text, or NULL
    size_t text_len;  //  bytes in text
    bool chat;        //  a chat kind, kept as an OpenAI chat.completion
} s_body_t;

static void
s_body_reset (s_body_t *self)
{
    free (self->canonical);
    free (self->text);
    memset (self, 0, sizeof *self);
}

//  Read KIND's BODY (LEN bytes) into OUT. ROOT, when not NULL, is BODY
//  parsed already, taken. Returns 0, or -1 when the cache cannot key it.
static int
s_body_read (int kind, const char *body, size_t len, json_t *root, s_body_t *out)
{
    memset (out, 0, sizeof *out);
    bool chat = kind == AIGW_KIND_CHAT || kind == AIGW_KIND_MESSAGES;
    if (kind == AIGW_KIND_MESSAGES) {
        //  Read in the gateway's form, as the provider would build it.
        json_decref (root);
        root = aigw_messages_chat_form ((aigw_kind_t) kind, body, len);
    }
    else if (!root)
        root = json_loadb (body ? body : "", len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    json_object_del (root, "stream");
    json_object_del (root, "stream_options");
    //  The last user message's text is what a lookup compares; its place in
    //  the partition is a null.
    if (chat)
        out->text = aigw_messages_cache_text (root, true, &out->text_len);
    out->canonical = json_dumps (root, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref (root);
    if (!out->canonical) {
        s_body_reset (out);
        return -1;
    }
    out->chat = chat;
    return 0;
}

//  OUT's keys from BODY and ENV's tenant, model and kind; OUT's text is
//  BODY's (not copied: OUT does not own it here).
static void
s_body_keys (const s_body_t *body, const aigw_envelope_t *env, const char *embedder,
             aigw_cacheform_request_t *out)
{
    const char *tenant = env->tenant_id ? env->tenant_id : env->tenant ? env->tenant : "";
    const char *model = env->model ? env->model : "";
    //  Chat answers are kept in one form whatever the client; other kinds
    //  in their own.
    char family[8];
    snprintf (family, sizeof family, "%d", body->chat ? AIGW_KIND_CHAT : env->kind);
    //  A cache that is not semantic keys as it did before embedders had
    //  names: its entries stay warm across that change.
    embedder = embedder ? embedder : "";
    const char *parts[] = {S_KEY_VERSION, tenant, model, family, body->canonical, embedder};
    size_t lens[] = {strlen (S_KEY_VERSION), strlen (tenant),          strlen (model),
                     strlen (family),        strlen (body->canonical), strlen (embedder)};
    s_hash (parts, lens, *embedder ? 6 : 5, out->partition);
    const char *exact[] = {out->partition, body->text ? body->text : ""};
    size_t exact_lens[] = {AIGW_CACHE_KEY_LEN, body->text_len};
    s_hash (exact, exact_lens, 2, out->exact);
    out->chat = body->chat;
}

int
aigw_cacheform_request (const aigw_envelope_t *env, const char *embedder,
                        aigw_cacheform_request_t *out)
{
    memset (out, 0, sizeof *out);
    s_body_t body;
    if (s_body_read (env->kind, env->body, env->body_len, NULL, &body) != 0)
        return -1;
    s_body_keys (&body, env, embedder, out);
    out->text = body.text;
    out->text_len = body.text_len;
    body.text = NULL;
    s_body_reset (&body);
    return 0;
}

void
aigw_cacheform_request_reset (aigw_cacheform_request_t *out)
{
    free (out->text);
    memset (out, 0, sizeof *out);
}

//  A reading kept on the envelope: the body's part, made once, and the
//  keys for the tenant, model and embedder they were last made for.
typedef struct {
    s_body_t body;                 //  the body's part
    int rc;                        //  what s_body_read returned
    const char *body_at;           //  the body it read (compared, never used)
    size_t body_len;               //  its bytes
    int kind;                      //  the envelope's kind then
    bool keyed;                    //  req holds keys for the three below
    aigw_cacheform_request_t req;  //  the keys (text not owned: body's)
    char *tenant;                  //  tenant_id (or tenant) they were made for
    char *model;                   //  model
    char *embedder;                //  embedder
} s_memo_t;

static void
s_memo_free (void *arg)
{
    s_memo_t *memo = (s_memo_t *) arg;
    s_body_reset (&memo->body);
    free (memo->tenant);
    free (memo->model);
    free (memo->embedder);
    free (memo);
}

static bool
s_same (const char *a, const char *b)
{
    return strcmp (a ? a : "", b ? b : "") == 0;
}

//  ENV's memo when it read what ENV holds now, else NULL.
static s_memo_t *
s_memo (aigw_envelope_t *env)
{
    s_memo_t *memo = env->memo_free == s_memo_free ? (s_memo_t *) env->memo : NULL;
    if (memo && memo->body_at == env->body && memo->body_len == env->body_len
        && memo->kind == env->kind)
        return memo;
    return NULL;
}

//  A new memo of ENV's body (ROOT: it parsed, taken, or NULL), kept on ENV.
static s_memo_t *
s_memo_new (aigw_envelope_t *env, json_t *root)
{
    s_memo_t *memo = (s_memo_t *) calloc (1, sizeof *memo);
    assert (memo);
    memo->rc = s_body_read (env->kind, env->body, env->body_len, root, &memo->body);
    memo->body_at = env->body;
    memo->body_len = env->body_len;
    memo->kind = env->kind;
    aigw_envelope_set_memo (env, memo, s_memo_free);
    return memo;
}

void
aigw_cacheform_prepare (aigw_envelope_t *env, json_t *root)
{
    if (s_memo (env))
        json_decref (root);
    else
        s_memo_new (env, root);
}

const aigw_cacheform_request_t *
aigw_cacheform_request_keep (aigw_envelope_t *env, const char *embedder)
{
    s_memo_t *memo = s_memo (env);
    if (!memo)
        memo = s_memo_new (env, NULL);
    if (memo->rc != 0)
        return NULL;
    const char *tenant = env->tenant_id ? env->tenant_id : env->tenant;
    if (!memo->keyed || !s_same (memo->tenant, tenant) || !s_same (memo->model, env->model)
        || !s_same (memo->embedder, embedder)) {
        s_body_keys (&memo->body, env, embedder, &memo->req);
        memo->req.text = memo->body.text;
        memo->req.text_len = memo->body.text_len;
        free (memo->tenant);
        free (memo->model);
        free (memo->embedder);
        memo->tenant = tenant ? strdup (tenant) : NULL;
        memo->model = env->model ? strdup (env->model) : NULL;
        memo->embedder = embedder ? strdup (embedder) : NULL;
        memo->keyed = true;
    }
    return &memo->req;
}

int
aigw_cacheform_request_take (aigw_envelope_t *env, const char *embedder,
                             aigw_cacheform_request_t *out)
{
    //  Nothing kept (a request from another process): read it here, with
    //  no memo made only to be taken.
    if (!s_memo (env))
        return aigw_cacheform_request (env, embedder, out);
    memset (out, 0, sizeof *out);
    if (!aigw_cacheform_request_keep (env, embedder)) {
        aigw_envelope_set_memo (env, NULL, NULL);
        return -1;
    }
    s_memo_t *memo = (s_memo_t *) env->memo;
    *out = memo->req;
    memo->body.text = NULL;  //  now OUT's
    aigw_envelope_set_memo (env, NULL, NULL);
    return 0;
}

//  Append the string of FIELD in FROM (if any) to FIELD in INTO.
static void
s_concat (json_t *into, json_t *from, const char *field)
{
    json_t *more = json_object_get (from, field);
    if (!json_is_string (more))
        return;
    json_t *have = json_object_get (into, field);
    if (!json_is_string (have)) {
        json_object_set (into, field, more);
        return;
    }
    size_t a = json_string_length (have), b = json_string_length (more);
    char *joined = malloc (a + b + 1);
    if (!joined)
        return;
    memcpy (joined, json_string_value (have), a);
    memcpy (joined + a, json_string_value (more), b);
    json_object_set_new (into, field, json_stringn (joined, a + b));
    free (joined);
}

//  Fold the tool-call deltas DELTAS into CALLS (an array by index).
static int
s_fold_tool_calls (json_t *calls, json_t *deltas)
{
    size_t i;
    json_t *delta;
    json_array_foreach (deltas, i, delta) {
        json_t *index = json_object_get (delta, "index");
        json_int_t at = json_is_integer (index) ? json_integer_value (index) : -1;
        if (at < 0 || at > 1024 || (size_t) at > json_array_size (calls))
            return -1;
        if ((size_t) at == json_array_size (calls))
            json_array_append_new (calls, json_pack ("{s:s,s:{s:s,s:s}}", "type", "function",
                                                     "function", "name", "", "arguments", ""));
        json_t *call = json_array_get (calls, (size_t) at);
        json_t *id = json_object_get (delta, "id");
        if (json_is_string (id))
            json_object_set (call, "id", id);
        json_t *function = json_object_get (delta, "function");
        s_concat (json_object_get (call, "function"), function, "name");
        s_concat (json_object_get (call, "function"), function, "arguments");
    }
    return 0;
}

char *
aigw_cacheform_assemble (const char *sse, size_t len, size_t *out_len)
{
    json_t *message = json_pack ("{s:s,s:n}", "role", "assistant", "content");
    json_t *calls = json_array ();
    json_t *id = NULL, *created = NULL, *model = NULL, *usage = NULL;
    char *finish = NULL;
    bool bad = false;
    size_t at = 0, end;
    while (!bad && (end = aigw_openai_sse_event_end (sse + at, len - at))) {
        const char *event = sse + at;
        at += end;
        if (aigw_openai_sse_is_done (event, end))
            break;
        const char *data = memmem (event, end, "data:", 5);
        if (!data)
            continue;
        data += 5;
        json_t *chunk
            = json_loadb (data, end - (size_t) (data - event), JSON_DISABLE_EOF_CHECK, NULL);
        json_t *choices = json_object_get (chunk, "choices");
        if (!json_is_object (chunk) || json_object_get (chunk, "error")
            || json_array_size (choices) > 1) {
            bad = true;
            json_decref (chunk);
            break;
        }
        if (!id && json_is_string (json_object_get (chunk, "id")))
            id = json_incref (json_object_get (chunk, "id"));
        if (!created && json_is_integer (json_object_get (chunk, "created")))
            created = json_incref (json_object_get (chunk, "created"));
        if (!model && json_is_string (json_object_get (chunk, "model")))
            model = json_incref (json_object_get (chunk, "model"));
        if (json_is_object (json_object_get (chunk, "usage"))) {
            json_decref (usage);
            usage = json_incref (json_object_get (chunk, "usage"));
        }
        json_t *choice = json_array_get (choices, 0);
        json_t *index = json_object_get (choice, "index");
        if (choice && json_integer_value (index) != 0)
            bad = true;
        json_t *delta = json_object_get (choice, "delta");
        s_concat (message, delta, "content");
        s_concat (message, delta, "refusal");
        if (json_is_array (json_object_get (delta, "tool_calls"))
            && s_fold_tool_calls (calls, json_object_get (delta, "tool_calls")))
            bad = true;
        const char *reason = json_string_value (json_object_get (choice, "finish_reason"));
        if (reason) {
            free (finish);
            finish = strdup (reason);
        }
        json_decref (chunk);
    }
    char *text = NULL;
    if (!bad && finish && id) {
        if (json_array_size (calls))
            json_object_set (message, "tool_calls", calls);
        json_t *root
            = json_pack ("{s:O,s:s,s:O?,s:O?,s:[{s:i,s:O,s:n,s:s}]}", "id", id, "object",
                         "chat.completion", "created", created, "model", model, "choices", "index",
                         0, "message", message, "logprobs", "finish_reason", finish);
        if (root && usage)
            json_object_set (root, "usage", usage);
        text = root ? json_dumps (root, JSON_COMPACT) : NULL;
        json_decref (root);
    }
    json_decref (message);
    json_decref (calls);
    json_decref (id);
    json_decref (created);
    json_decref (model);
    json_decref (usage);
    free (finish);
    if (text && out_len)
        *out_len = strlen (text);
    return text;
}

//  OpenAI chat SSE for the chat.completion ROOT: a role chunk, the text,
//  each tool call whole, the finish, a usage-only chunk when WITH_USAGE,
//  and [DONE]. Returns 0 or -1.
static int
s_chunks (json_t *root, bool with_usage, char **out, size_t *out_len)
{
    const char *id = json_string_value (json_object_get (root, "id"));
    const char *model = json_string_value (json_object_get (root, "model"));
    json_int_t created = json_integer_value (json_object_get (root, "created"));
    json_t *choice = json_array_get (json_object_get (root, "choices"), 0);
    json_t *message = json_object_get (choice, "message");
    const char *finish = json_string_value (json_object_get (choice, "finish_reason"));
    if (!id || !model || !json_is_object (message))
        return -1;
    int rc = aigw_openai_append_chunk (out, out_len, id, created, model,
                                       json_pack ("{s:s,s:s}", "role", "assistant", "content", ""),
                                       NULL, NULL);
    json_t *content = json_object_get (message, "content");
    if (!rc && json_is_string (content) && json_string_length (content))
        rc = aigw_openai_append_chunk (out, out_len, id, created, model,
                                       json_pack ("{s:O}", "content", content), NULL, NULL);
    size_t i;
    json_t *call;
    json_array_foreach (json_object_get (message, "tool_calls"), i, call) {
        if (rc)
            break;
        json_t *delta = json_deep_copy (call);
        json_object_set_new (delta, "index", json_integer ((json_int_t) i));
        rc = aigw_openai_append_chunk (out, out_len, id, created, model,
                                       json_pack ("{s:[o]}", "tool_calls", delta), NULL, NULL);
    }
    if (!rc)
        rc = aigw_openai_append_chunk (out, out_len, id, created, model, json_object (),
                                       finish ? finish : "stop", NULL);
    json_t *usage = json_object_get (root, "usage");
    if (!rc && with_usage && json_is_object (usage)) {
        json_t *chunk
            = json_pack ("{s:s,s:s,s:I,s:s,s:[],s:O}", "id", id, "object", "chat.completion.chunk",
                         "created", created, "model", model, "choices", "usage", usage);
        rc = aigw_adapter_append_event (out, out_len, chunk);
    }
    if (!rc)
        rc = aigw_adapter_append (out, out_len, "data: [DONE]\n\n", 14);
    return rc;
}

char *
aigw_cacheform_render (aigw_kind_t kind, bool stream, const char *request, size_t request_len,
                       const char *model, const char *answer, size_t len, size_t *out_len,
                       const char **content_type)
{
    *content_type = stream ? "text/event-stream" : "application/json";
    if (kind == AIGW_KIND_MESSAGES && !stream)
        return aigw_messages_response_from_openai (answer, len, model, out_len, NULL, 0);
    if (!stream) {
        char *copy = malloc (len + 1);
        if (copy) {
            memcpy (copy, answer, len);
            copy[len] = 0;
            *out_len = len;
        }
        return copy;
    }
    json_t *root = json_loadb (answer, len, 0, NULL);
    bool with_usage = kind == AIGW_KIND_MESSAGES;
    if (!with_usage) {
        json_t *req = json_loadb (request ? request : "", request_len, 0, NULL);
        with_usage = json_is_true (
            json_object_get (json_object_get (req, "stream_options"), "include_usage"));
        json_decref (req);
    }
    char *chunks = NULL;
    size_t chunks_len = 0;
    int rc = json_is_object (root) ? s_chunks (root, with_usage, &chunks, &chunks_len) : -1;
    json_decref (root);
    if (rc || kind != AIGW_KIND_MESSAGES) {
        if (rc)
            free (chunks), chunks = NULL;
        *out_len = chunks ? chunks_len : 0;
        return chunks;
    }
    //  Anthropic's events, by the translator the provider streams with.
    aigw_messages_stream_t *translator = aigw_messages_stream_new (model, NULL);
    char *events = NULL;
    size_t events_len = 0;
    rc = translator
             ? aigw_messages_stream_feed (translator, chunks, chunks_len, &events, &events_len)
             : -1;
    if (!rc && !aigw_messages_stream_done (translator))
        rc = -1;
    aigw_messages_stream_destroy (&translator);
    free (chunks);
    if (rc) {
        free (events);
        return NULL;
    }
    *out_len = events_len;
    return events;
}

//  Selftest helpers.
static aigw_envelope_t *
s_test_env (aigw_kind_t kind, const char *tenant, const char *body)
{
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = kind;
    aigw_envelope_set (&env->tenant_id, tenant);
    aigw_envelope_set (&env->model, "m");
    aigw_envelope_set_body (env, body, strlen (body));
    return env;
}

static void
s_test_key (aigw_kind_t kind, const char *tenant, const char *body, aigw_cacheform_request_t *out)
{
    aigw_envelope_t *env = s_test_env (kind, tenant, body);
    assert (aigw_cacheform_request (env, NULL, out) == 0);
    aigw_envelope_destroy (&env);
}

void
aigw_cacheform_test (bool verbose)
{
    aigw_cacheform_request_t a, b, c, d, e, f, g, h, i;
    //  Key order, stream flags and text parts do not move the keys.
    s_test_key (AIGW_KIND_CHAT, "t1",
                "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi there\"}]}",
                &a);
    s_test_key (AIGW_KIND_CHAT, "t1",
                "{\"messages\":[{\"content\":[{\"type\":\"text\",\"text\":\"hi there\"}],"
                "\"role\":\"user\"}],\"stream\":true,\"model\":\"m\",\"max_tokens\":9}",
                &b);
    assert (streq (a.partition, b.partition) && streq (a.exact, b.exact));
    assert (a.chat && a.text && streq (a.text, "hi there"));
    //  An Anthropic client's request for the same thing keys alike.
    s_test_key (AIGW_KIND_MESSAGES, "t1",
                "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi there\"}]}",
                &c);
    if (verbose)
        printf ("cacheform: messages %s, chat %s\n", c.partition, a.partition);
    assert (streq (a.exact, c.exact));
    //  Another tenant, another system prompt, another temperature: other
    //  partitions; another last message: the same partition, another key.
    s_test_key (AIGW_KIND_CHAT, "t2",
                "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi there\"}]}",
                &d);
    assert (!streq (a.partition, d.partition));
    s_test_key (AIGW_KIND_CHAT, "t1",
                "{\"model\":\"m\",\"max_tokens\":9,\"temperature\":0.5,\"messages\":[{\"role\":"
                "\"user\",\"content\":\"hi there\"}]}",
                &e);
    assert (!streq (a.partition, e.partition));
    s_test_key (AIGW_KIND_CHAT, "t1",
                "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                "\"content\":\"hello there\"}]}",
                &f);
    assert (streq (a.partition, f.partition) && !streq (a.exact, f.exact));
    //  The derivation is pinned: SHA-256 over the NUL-ended parts, as
    //  computed apart (a change must bump S_KEY_VERSION).
    aigw_cacheform_request_t pinned;
    s_test_key (AIGW_KIND_CHAT, "t1",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &pinned);
    assert (streq (pinned.partition,
                   "3c8421d6bb018272e4359d8649b6f308540408690b63629c03e32f2d6babd33a"));
    assert (
        streq (pinned.exact, "27e417a233e1a25ab25db2758f806ab652633ece5e67d4c4189871e053ffa988"));
    aigw_cacheform_request_reset (&pinned);
    //  Another embedder, another partition: its vectors never meet ours.
    aigw_envelope_t *env = s_test_env (AIGW_KIND_CHAT, "t1",
                                       "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
                                       "\"user\",\"content\":\"hi there\"}]}");
    assert (aigw_cacheform_request (env, "local", &g) == 0);
    assert (aigw_cacheform_request (env, "text-embedding-3-small", &h) == 0);
    assert (aigw_cacheform_request (env, "", &i) == 0);
    assert (!streq (a.partition, g.partition) && !streq (g.partition, h.partition));
    assert (streq (a.partition, i.partition));
    //  A reading kept on the envelope serves the take, for what the
    //  envelope holds now: its keys made again for another embedder, the
    //  whole of it again after a new body; a copy of the envelope does not
    //  carry it.
    const aigw_cacheform_request_t *kept = aigw_cacheform_request_keep (env, "local");
    assert (kept && streq (kept->partition, g.partition) && env->memo);
    assert (aigw_cacheform_request_keep (env, "local") == kept);
    aigw_envelope_t *copy = aigw_envelope_dup (env);
    assert (copy && !copy->memo);
    aigw_envelope_destroy (&copy);
    aigw_cacheform_request_t taken;
    assert (aigw_cacheform_request_take (env, "", &taken) == 0);
    assert (streq (taken.partition, i.partition) && streq (taken.exact, i.exact) && !env->memo);
    aigw_cacheform_request_reset (&taken);
    assert (aigw_cacheform_request_keep (env, "local") && env->memo);
    assert (aigw_cacheform_request_take (env, "local", &taken) == 0);
    assert (streq (taken.partition, g.partition) && streq (taken.exact, g.exact));
    assert (taken.text && streq (taken.text, "hi there") && !env->memo);
    aigw_cacheform_request_reset (&taken);
    assert (aigw_cacheform_request_keep (env, "local"));
    const char *other = "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
                        "\"user\",\"content\":\"hello there\"}]}";
    aigw_envelope_set_body (env, other, strlen (other));
    assert (!env->memo);
    assert (aigw_cacheform_request_keep (env, "local"));
    assert (aigw_cacheform_request_take (env, "local", &taken) == 0);
    assert (!streq (taken.exact, g.exact) && streq (taken.partition, g.partition));
    aigw_cacheform_request_reset (&taken);
    assert (aigw_cacheform_request_keep (env, "local"));
    aigw_envelope_destroy (&env);
    //  Read ahead from the body parsed (the edge's), before auth names the
    //  tenant: the keys are the tenant's all the same.
    const char *ahead = "{\"model\":\"m\",\"max_tokens\":9,\"stream\":true,\"messages\":[{"
                        "\"role\":\"user\",\"content\":\"hi there\"}]}";
    env = s_test_env (AIGW_KIND_CHAT, NULL, ahead);
    aigw_cacheform_prepare (env, json_loads (ahead, 0, NULL));
    assert (env->memo);
    aigw_envelope_set (&env->tenant_id, "t1");
    assert (aigw_cacheform_request_take (env, "local", &taken) == 0);
    assert (streq (taken.partition, g.partition) && streq (taken.exact, g.exact));
    assert (taken.text && streq (taken.text, "hi there"));
    aigw_cacheform_request_reset (&taken);
    aigw_cacheform_prepare (env, NULL);  //  parsed here
    assert (env->memo && aigw_cacheform_request_keep (env, "local"));
    aigw_envelope_destroy (&env);
    char err[256] = "";
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (streq (aigw_cacheform_embedder (config), ""));
    config->cache_semantic_enabled = true;
    assert (streq (aigw_cacheform_embedder (config), "local"));
    config->cache_semantic_model = strdup ("text-embedding-3-small");
    assert (streq (aigw_cacheform_embedder (config), "text-embedding-3-small"));
    aigw_config_destroy (&config);
    aigw_cacheform_request_reset (&g);
    aigw_cacheform_request_reset (&h);
    aigw_cacheform_request_reset (&i);
    aigw_cacheform_request_reset (&a);
    aigw_cacheform_request_reset (&a);
    aigw_cacheform_request_reset (&b);
    aigw_cacheform_request_reset (&c);
    aigw_cacheform_request_reset (&d);
    aigw_cacheform_request_reset (&e);
    aigw_cacheform_request_reset (&f);
    aigw_envelope_t *bad = s_test_env (AIGW_KIND_CHAT, "t1", "nope");
    assert (aigw_cacheform_request (bad, NULL, &a) == -1 && !a.text);
    aigw_envelope_destroy (&bad);

    //  A stream assembles into one completion, tool calls included.
    const char *sse
        = "data: {\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,"
          "\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n"
          "data: {\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,"
          "\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"call1\","
          "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"
          "data: {\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,"
          "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},"
          "\"finish_reason\":\"tool_calls\"}]}\n\n"
          "data: {\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[],\"usage\":"
          "{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
          "data: [DONE]\n\n";
    size_t len = 0;
    char *whole = aigw_cacheform_assemble (sse, strlen (sse), &len);
    assert (whole);
    json_t *root = json_loads (whole, 0, NULL);
    json_t *message
        = json_object_get (json_array_get (json_object_get (root, "choices"), 0), "message");
    assert (streq (json_string_value (json_object_get (message, "content")), "Hello"));
    json_t *call = json_array_get (json_object_get (message, "tool_calls"), 0);
    assert (streq (json_string_value (json_object_get (call, "id")), "call1"));
    assert (streq (
        json_string_value (json_object_get (json_object_get (call, "function"), "arguments")),
        "{\"a\":1}"));
    assert (json_integer_value (json_object_get (json_object_get (root, "usage"), "total_tokens"))
            == 5);
    json_decref (root);
    //  Cut short, or an error: nothing to keep.
    assert (!aigw_cacheform_assemble (sse, 120, &len));
    const char *failed = "data: {\"error\":{\"message\":\"x\"}}\n\n";
    assert (!aigw_cacheform_assemble (failed, strlen (failed), &len));

    //  Rendered for each client.
    const char *type = NULL;
    char *out = aigw_cacheform_render (AIGW_KIND_CHAT, false, NULL, 0, NULL, whole, strlen (whole),
                                       &len, &type);
    assert (out && len == strlen (whole) && streq (type, "application/json"));
    free (out);
    out = aigw_cacheform_render (AIGW_KIND_CHAT, true, "{}", 2, NULL, whole, strlen (whole), &len,
                                 &type);
    assert (out && streq (type, "text/event-stream"));
    assert (strstr (out, "\"content\":\"Hello\"") && strstr (out, "data: [DONE]"));
    assert (!strstr (out, "\"usage\""));
    size_t again_len = 0;
    char *again = aigw_cacheform_assemble (out, len, &again_len);
    assert (again && strstr (again, "\"Hello\"") && strstr (again, "call1"));
    free (again);
    free (out);
    out = aigw_cacheform_render (AIGW_KIND_MESSAGES, true, NULL, 0, "m", whole, strlen (whole),
                                 &len, &type);
    assert (out && strstr (out, "event: message_start") && strstr (out, "event: message_stop"));
    assert (strstr (out, "\"text\":\"Hello\"") || strstr (out, "Hello"));
    free (out);
    out = aigw_cacheform_render (AIGW_KIND_MESSAGES, false, NULL, 0, "m", whole, strlen (whole),
                                 &len, &type);
    assert (out && strstr (out, "\"type\":\"message\""));
    free (out);
    free (whole);
    if (verbose)
        printf ("cacheform: ok\n");
}
