/*  aigw_guardout: a guardrail policy on a model's answer. See
    aigw_guardout.h. */
#include "aigw_guardout.h"
#include "aigw_guardrail.h"
#include "aigw_text.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The texts of a chat choice besides its tool calls: channel -1 - i is
//  s_chat_texts[i] (content, reasoning some servers send, a refusal).
static const char *const s_chat_texts[] = {"content", "reasoning_content", "refusal"};
#define S_CHAT_TEXTS (sizeof s_chat_texts / sizeof s_chat_texts[0])

//  True when KEY is one of them.
static bool
s_chat_text (const char *key)
{
    for (size_t t = 0; t < S_CHAT_TEXTS; t++)
        if (strcmp (key, s_chat_texts[t]) == 0)
            return true;
    return false;
}

//  Longest verdict kept, bytes (names only).
#define S_VERDICT_MAX 512

//  One text of the answer: a choice's content or a tool call's arguments
//  (chat), a content block (messages).
typedef struct {
    int choice;  //  chat: the choice; messages: -1
    int index;   //  chat: the tool call, or -1 - i for s_chat_texts[i]; messages: the block
    const char *delta_type;        //  messages: text_delta, input_json_delta, thinking_delta
    aigw_policy_stream_t *stream;  //  its check
    json_t *event;                 //  responses: its last delta event, the released text's mould
    char *text;                    //  responses: all it released, for the events that repeat it
    size_t text_len, text_cap;
} s_channel_t;

struct _aigw_guardout_t {
    aigw_policy_t *policy;          //  the policy (held)
    aigw_guardout_format_t format;  //  the client's
    s_channel_t channels[AIGW_GUARDOUT_TEXTS_MAX];
    size_t channel_count;
    char *pending;  //  stream bytes of an event not whole yet
    size_t pending_len, pending_cap;
    json_t *template;  //  chat: the last chunk's id, object, created, model
    char verdict[S_VERDICT_MAX];
    bool blocked;            //  a block ended it
    bool failed;             //  it could not be checked
    long sequence;           //  responses: the next event's sequence_number
    const char *blocked_by;  //  the guardrail
    char message[400];       //  the block's message
    char *out;               //  what the current call releases
    size_t out_len, out_cap;
};

aigw_guardout_t *
aigw_guardout_new (aigw_policy_t *policy, aigw_guardout_format_t format)
{
    aigw_guardout_t *self = calloc (1, sizeof *self);
    if (self) {
        //  Held: the set may drop the policy while the answer streams.
        self->policy = aigw_policy_ref (policy);
        self->format = format;
    }
    return self;
}

void
aigw_guardout_destroy (aigw_guardout_t **self_p)
{
    aigw_guardout_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->channel_count; i++) {
        aigw_policy_stream_destroy (&self->channels[i].stream);
        json_decref (self->channels[i].event);
        free (self->channels[i].text);
    }
    json_decref (self->template);
    free (self->pending);
    free (self->out);
    aigw_policy_destroy (&self->policy);
    free (self);
    *self_p = NULL;
}

const char *
aigw_guardout_verdict (const aigw_guardout_t *self)
{
    return self->verdict;
}

const char *
aigw_guardout_blocked (const aigw_guardout_t *self, const char **message)
{
    if (message)
        *message = self->blocked ? self->message : NULL;
    return self->blocked ? self->blocked_by : NULL;
}

//  Note VERDICT's hits; on a block, remember who blocked.
static void
s_note (aigw_guardout_t *self, const aigw_policy_verdict_t *verdict)
{
    aigw_guardrail_verdict (verdict, "out:", self->verdict, sizeof self->verdict);
    const aigw_policy_hit_t *hit = aigw_guardrail_blocker (verdict);
    if (hit && !self->blocked) {
        self->blocked = true;
        self->blocked_by = hit->guardrail;
        aigw_guardrail_block_message (hit, aigw_policy_name (self->policy), "output", self->message,
                                      sizeof self->message);
    }
}

//  --------------------------------------------------------------------------
//  Whole answers

//  Check STRING (a JSON string node) as one text; redact it in place.
//  Returns 0, or -1 when it could not be checked.
static int
s_answer_text (aigw_guardout_t *self, json_t *string)
{
    if (!json_is_string (string) || json_string_length (string) == 0)
        return 0;
    aigw_policy_verdict_t verdict;
    if (aigw_policy_check_on (self->policy, AIGW_POLICY_OUTPUT, json_string_value (string),
                              json_string_length (string), &verdict))
        return -1;
    s_note (self, &verdict);
    int rc = 0;
    if (verdict.action == AIGW_POLICY_REDACT)
        rc = json_string_setn (string, verdict.text, verdict.text_len);
    aigw_policy_verdict_free (&verdict);
    return rc;
}

//  Check an Anthropic tool_use input (an object) as the text a stream
//  gives it: its compact JSON. A redaction is parsed back.
static int
s_answer_input (aigw_guardout_t *self, json_t *block)
{
    json_t *input = json_object_get (block, "input");
    if (!input)
        return 0;
    char *text = json_dumps (input, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return -1;
    aigw_policy_verdict_t verdict;
    int rc = aigw_policy_check_on (self->policy, AIGW_POLICY_OUTPUT, text, strlen (text), &verdict);
    free (text);
    if (rc)
        return -1;
    s_note (self, &verdict);
    if (verdict.action == AIGW_POLICY_REDACT) {
        json_t *redacted = json_loadb (verdict.text, verdict.text_len, JSON_DECODE_ANY, NULL);
        //  A placeholder across JSON syntax cannot be sent: fail closed.
        rc = redacted ? json_object_set_new (block, "input", redacted) : -1;
    }
    aigw_policy_verdict_free (&verdict);
    return rc;
}

int
aigw_guardout_answer (aigw_guardout_t *self, char **body, size_t *len)
{
    json_t *root = json_loadb (*body, *len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    int rc = 0;
    size_t i, j;
    json_t *item, *call;
    if (self->format == AIGW_GUARDOUT_CHAT) {
        json_array_foreach (json_object_get (root, "choices"), i, item) {
            json_t *message = json_object_get (item, "message");
            for (size_t t = 0; t < S_CHAT_TEXTS && !rc; t++)
                rc = s_answer_text (self, json_object_get (message, s_chat_texts[t]));
            json_array_foreach (json_object_get (message, "tool_calls"), j, call) {
                if (!rc)
                    rc = s_answer_text (
                        self, json_object_get (json_object_get (call, "function"), "arguments"));
            }
        }
    }
    else if (self->format == AIGW_GUARDOUT_RESPONSES) {
        json_array_foreach (json_object_get (root, "output"), i, item) {
            if (!rc)
                rc = s_answer_text (self, json_object_get (item, "arguments"));
            json_array_foreach (json_object_get (item, "content"), j, call) {
                if (!rc)
                    rc = s_answer_text (self, json_object_get (call, "text"));
            }
        }
    }
    else {
        json_array_foreach (json_object_get (root, "content"), i, item) {
            if (rc)
                break;
            const char *type = json_string_value (json_object_get (item, "type"));
            if (type && strcmp (type, "tool_use") == 0)
                rc = s_answer_input (self, item);
            else {
                rc = s_answer_text (self, json_object_get (item, "text"));
                if (!rc)
                    rc = s_answer_text (self, json_object_get (item, "thinking"));
            }
        }
    }
    if (!rc && !self->blocked && strstr (self->verdict, "out:redact:")) {
        char *text = json_dumps (root, JSON_COMPACT);
        if (text) {
            free (*body);
            *body = text;
            *len = strlen (text);
        }
        else
            rc = -1;
    }
    json_decref (root);
    if (rc)
        return -1;
    return self->blocked ? 1 : 0;
}

//  --------------------------------------------------------------------------
//  Streams

//  Append LEN bytes of DATA to the call's output. Returns 0, or -1.
static int
s_emit (aigw_guardout_t *self, const char *data, size_t len)
{
    return aigw_text_append (&self->out, &self->out_len, &self->out_cap, data, len);
}

//  Emit ROOT (taken) as one SSE event: "event: NAME" first for messages.
static int
s_emit_json (aigw_guardout_t *self, const char *name, json_t *root)
{
    //  Responses events are numbered in the order the client reads them.
    if (root && self->format == AIGW_GUARDOUT_RESPONSES)
        json_object_set_new (root, "sequence_number", json_integer (self->sequence++));
    char *text = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    if (!text)
        return -1;
    int rc = 0;
    if (name)
        rc = s_emit (self, "event: ", 7) || s_emit (self, name, strlen (name))
             || s_emit (self, "\n", 1);
    rc = rc || s_emit (self, "data: ", 6) || s_emit (self, text, strlen (text))
         || s_emit (self, "\n\n", 2);
    free (text);
    return rc ? -1 : 0;
}

//  The error event that ends a blocked or failed stream.
static int
s_emit_error (aigw_guardout_t *self, const char *type, const char *code, const char *message)
{
    if (self->format == AIGW_GUARDOUT_MESSAGES)
        return s_emit_json (self, "error",
                            json_pack ("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type,
                                       "message", message));
    if (self->format == AIGW_GUARDOUT_RESPONSES)
        return s_emit_json (self, "error",
                            json_pack ("{s:s,s:s,s:s,s:n}", "type", "error", "code", code,
                                       "message", message, "param"));
    return s_emit_json (self, NULL,
                        json_pack ("{s:{s:s,s:s,s:s,s:n}}", "error", "message", message, "type",
                                   type, "code", code, "param"));
}

//  The channel of CHOICE and INDEX, made when new. NULL past the cap or
//  out of memory.
static s_channel_t *
s_channel (aigw_guardout_t *self, int choice, int index, const char *delta_type)
{
    for (size_t i = 0; i < self->channel_count; i++)
        if (self->channels[i].choice == choice && self->channels[i].index == index)
            return &self->channels[i];
    if (self->channel_count == AIGW_GUARDOUT_TEXTS_MAX)
        return NULL;
    s_channel_t *c = &self->channels[self->channel_count];
    c->stream = aigw_policy_stream_new (self->policy, AIGW_POLICY_OUTPUT);
    if (!c->stream)
        return NULL;
    c->choice = choice;
    c->index = index;
    c->delta_type = delta_type;
    self->channel_count++;
    return c;
}

//  An event carrying RELEASED text of channel C.
static int
s_emit_text (aigw_guardout_t *self, const s_channel_t *c, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    json_t *value = json_stringn (text, len);
    if (!value)
        return -1;
    if (self->format == AIGW_GUARDOUT_RESPONSES) {
        s_channel_t *own = (s_channel_t *) c;
        if (aigw_text_append (&own->text, &own->text_len, &own->text_cap, text, len)) {
            json_decref (value);
            return -1;
        }
        json_t *event = json_deep_copy (c->event);
        if (!event) {
            json_decref (value);
            return -1;
        }
        json_object_set_new (event, "delta", value);
        //  The name outlives the event, which the emit takes.
        char name[64];
        snprintf (name, sizeof name, "%s", json_string_value (json_object_get (event, "type")));
        return s_emit_json (self, name, event);
    }
    if (self->format == AIGW_GUARDOUT_MESSAGES) {
        const char *member = strcmp (c->delta_type, "input_json_delta") == 0 ? "partial_json"
                             : strcmp (c->delta_type, "thinking_delta") == 0 ? "thinking"
                                                                             : "text";
        return s_emit_json (self, "content_block_delta",
                            json_pack ("{s:s,s:i,s:{s:s,s:o}}", "type", "content_block_delta",
                                       "index", c->index, "delta", "type", c->delta_type, member,
                                       value));
    }
    json_t *delta = c->index < 0 ? json_pack ("{s:o}", s_chat_texts[-1 - c->index], value)
                                 : json_pack ("{s:[{s:i,s:{s:o}}]}", "tool_calls", "index",
                                              c->index, "function", "arguments", value);
    json_t *chunk = self->template ? json_deep_copy (self->template) : json_object ();
    if (!chunk || !delta) {
        json_decref (chunk);
        json_decref (delta);
        return -1;
    }
    json_object_set_new (
        chunk, "choices",
        json_pack ("[{s:i,s:o,s:n}]", "index", c->choice, "delta", delta, "finish_reason"));
    return s_emit_json (self, NULL, chunk);
}

//  Feed channel C with LEN bytes of TEXT (MORE: it goes on) and emit what
//  it releases. Returns 0, 1 when blocked, -1 on failure.
static int
s_feed (aigw_guardout_t *self, s_channel_t *c, const char *text, size_t len, bool more)
{
    char *out = NULL;
    size_t out_len = 0;
    aigw_policy_verdict_t verdict;
    if (aigw_policy_stream_feed (c->stream, text, len, more, &out, &out_len, &verdict))
        return -1;
    s_note (self, &verdict);
    int rc = self->blocked ? 1 : s_emit_text (self, c, out, out_len);
    free (out);
    return rc;
}

//  End every channel of CHOICE (-1: every channel): its held text goes.
static int
s_flush (aigw_guardout_t *self, int choice, int index)
{
    for (size_t i = 0; i < self->channel_count; i++) {
        s_channel_t *c = &self->channels[i];
        if ((choice >= 0 && c->choice != choice) || (index >= 0 && c->index != index))
            continue;
        int rc = s_feed (self, c, "", 0, false);
        if (rc)
            return rc;
    }
    return 0;
}

//  True when DELTA still says something once its texts are out: a role, a
//  refusal, a tool call's id or name.
static bool
s_delta_says (json_t *delta)
{
    json_t *calls = json_object_get (delta, "tool_calls");
    size_t i;
    json_t *call;
    json_array_foreach (calls, i, call) {
        if (json_object_get (call, "id") || json_object_get (call, "type")
            || json_object_get (json_object_get (call, "function"), "name"))
            return true;
    }
    const char *key;
    json_t *value;
    json_object_foreach (delta, key, value) {
        if (strcmp (key, "tool_calls") && !s_chat_text (key) && !json_is_null (value))
            return true;
    }
    return false;
}

//  One chat chunk (DATA: its JSON).
static int
s_chat_event (aigw_guardout_t *self, const char *event, size_t len, const char *data,
              size_t data_len)
{
    json_t *root = json_loadb (data, data_len, 0, NULL);
    json_t *choices = json_object_get (root, "choices");
    if (!root)
        return -1;  //  unreadable: it cannot be checked, so it cannot go
    if (!json_is_array (choices) || json_array_size (choices) == 0) {
        //  Usage, errors: no text. An error ends the stream: what is
        //  held back goes before it.
        int rc = json_object_get (root, "error") ? s_flush (self, -1, -1) : 0;
        json_decref (root);
        return rc ? rc : s_emit (self, event, len);
    }
    //  The envelope of the chunks this one makes.
    json_decref (self->template);
    self->template = json_deep_copy (root);
    json_object_del (self->template, "choices");
    json_object_del (self->template, "usage");
    int rc = 0;
    size_t i;
    json_t *choice;
    json_array_foreach (choices, i, choice) {
        int number = (int) json_integer_value (json_object_get (choice, "index"));
        json_t *delta = json_object_get (choice, "delta");
        json_t *finish = json_object_get (choice, "finish_reason");
        bool finishing = finish && !json_is_null (finish);
        //  What the delta says besides its texts goes first.
        if (s_delta_says (delta)) {
            json_t *head = json_deep_copy (self->template);
            json_t *copy = json_deep_copy (delta);
            for (size_t t = 0; t < S_CHAT_TEXTS; t++)
                json_object_del (copy, s_chat_texts[t]);
            size_t j;
            json_t *call;
            json_array_foreach (json_object_get (copy, "tool_calls"), j, call) {
                json_t *function = json_object_get (call, "function");
                if (json_object_get (function, "arguments"))
                    json_object_set_new (function, "arguments", json_string (""));
            }
            json_object_set_new (
                head, "choices",
                json_pack ("[{s:i,s:o,s:n}]", "index", number, "delta", copy, "finish_reason"));
            rc = s_emit_json (self, NULL, head);
        }
        //  The texts of a choice: its content, reasoning and refusal.
        for (size_t t = 0; t < S_CHAT_TEXTS && !rc; t++) {
            json_t *text = json_object_get (delta, s_chat_texts[t]);
            if (!json_is_string (text) || json_string_length (text) == 0)
                continue;
            s_channel_t *c = s_channel (self, number, -1 - (int) t, NULL);
            rc = c ? s_feed (self, c, json_string_value (text), json_string_length (text), true)
                   : -1;
        }
        size_t j;
        json_t *call;
        json_array_foreach (json_object_get (delta, "tool_calls"), j, call) {
            json_t *args = json_object_get (json_object_get (call, "function"), "arguments");
            if (rc || !json_is_string (args) || json_string_length (args) == 0)
                continue;
            s_channel_t *c = s_channel (
                self, number, (int) json_integer_value (json_object_get (call, "index")), NULL);
            rc = c ? s_feed (self, c, json_string_value (args), json_string_length (args), true)
                   : -1;
        }
        if (!rc && finishing) {
            rc = s_flush (self, number, -1);
            if (!rc) {
                json_t *tail = json_deep_copy (self->template);
                json_object_set_new (tail, "choices",
                                     json_pack ("[{s:i,s:{},s:O}]", "index", number, "delta",
                                                "finish_reason", finish));
                json_t *usage = json_object_get (root, "usage");
                if (usage)
                    json_object_set (tail, "usage", usage);
                rc = s_emit_json (self, NULL, tail);
            }
        }
        if (rc)
            break;
    }
    json_decref (root);
    return rc;
}

//  One messages event named NAME (DATA: its JSON).
static int
s_messages_event (aigw_guardout_t *self, const char *event, size_t len, const char *name,
                  const char *data, size_t data_len)
{
    if (strcmp (name, "content_block_delta") == 0) {
        json_t *root = json_loadb (data, data_len, 0, NULL);
        if (!root)
            return -1;  //  unreadable: it cannot be checked, so it cannot go
        json_t *delta = json_object_get (root, "delta");
        const char *type = json_string_value (json_object_get (delta, "type"));
        const char *delta_type = NULL;
        json_t *text = NULL;
        if (type && strcmp (type, "text_delta") == 0)
            delta_type = "text_delta", text = json_object_get (delta, "text");
        else if (type && strcmp (type, "input_json_delta") == 0)
            delta_type = "input_json_delta", text = json_object_get (delta, "partial_json");
        else if (type && strcmp (type, "thinking_delta") == 0)
            delta_type = "thinking_delta", text = json_object_get (delta, "thinking");
        int rc;
        if (!json_is_string (text))
            rc = s_emit (self, event, len);  //  a signature, say: no text
        else {
            int index = (int) json_integer_value (json_object_get (root, "index"));
            s_channel_t *c = s_channel (self, -1, index, delta_type);
            rc = c ? s_feed (self, c, json_string_value (text), json_string_length (text), true)
                   : -1;
        }
        json_decref (root);
        return rc;
    }
    int rc = 0;
    if (strcmp (name, "content_block_stop") == 0) {
        json_t *root = json_loadb (data, data_len, 0, NULL);
        rc = s_flush (self, -1, (int) json_integer_value (json_object_get (root, "index")));
        json_decref (root);
    }
    else if (strcmp (name, "message_delta") == 0 || strcmp (name, "message_stop") == 0
             || strcmp (name, "error") == 0)
        rc = s_flush (self, -1, -1);
    return rc ? rc : s_emit (self, event, len);
}

//  The text channel C released, as a new JSON string (for the events that
//  repeat a whole text); NULL when C is unknown (nothing was checked).
static json_t *
s_released (const s_channel_t *c)
{
    return c ? json_stringn (c->text ? c->text : "", c->text_len) : NULL;
}

//  The channel of OUTPUT and CONTENT, or NULL.
static s_channel_t *
s_channel_find (aigw_guardout_t *self, int output, int content)
{
    for (size_t i = 0; i < self->channel_count; i++)
        if (self->channels[i].choice == output && self->channels[i].index == content)
            return &self->channels[i];
    return NULL;
}

//  Put the released texts into ITEM (output item OUTPUT): a message's
//  output_text parts, a function call's arguments.
static void
s_item_texts (aigw_guardout_t *self, json_t *item, int output)
{
    if (json_object_get (item, "arguments")) {
        json_t *text = s_released (s_channel_find (self, output, -1));
        if (text)
            json_object_set_new (item, "arguments", text);
    }
    size_t i;
    json_t *part;
    json_array_foreach (json_object_get (item, "content"), i, part) {
        json_t *text = s_released (s_channel_find (self, output, (int) i));
        if (text && json_object_get (part, "text"))
            json_object_set_new (part, "text", text);
        else
            json_decref (text);
    }
}

//  One Responses event named NAME (DATA: its JSON). Every event is
//  renumbered; text deltas go through their channel; the events that
//  repeat a whole text get what was released instead.
static int
s_responses_event (aigw_guardout_t *self, const char *name, const char *data, size_t data_len)
{
    json_t *root = json_loadb (data, data_len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    int output = (int) json_integer_value (json_object_get (root, "output_index"));
    int content = (int) json_integer_value (json_object_get (root, "content_index"));
    int rc = 0;
    bool text_delta = strcmp (name, "response.output_text.delta") == 0;
    bool args_delta = strcmp (name, "response.function_call_arguments.delta") == 0;
    if (text_delta || args_delta) {
        json_t *delta = json_object_get (root, "delta");
        s_channel_t *c = s_channel (self, output, args_delta ? -1 : content, NULL);
        if (!c || !json_is_string (delta))
            rc = -1;
        else {
            json_decref (c->event);
            c->event = json_incref (root);
            rc = s_feed (self, c, json_string_value (delta), json_string_length (delta), true);
        }
        json_decref (root);
        return rc;
    }
    bool text_done = strcmp (name, "response.output_text.done") == 0;
    bool args_done = strcmp (name, "response.function_call_arguments.done") == 0;
    if (text_done || args_done) {
        rc = s_flush (self, output, args_done ? -1 : content);
        json_t *text = s_released (s_channel_find (self, output, args_done ? -1 : content));
        if (text)
            json_object_set_new (root, args_done ? "arguments" : "text", text);
    }
    else if (strcmp (name, "response.content_part.done") == 0) {
        json_t *part = json_object_get (root, "part");
        json_t *text = s_released (s_channel_find (self, output, content));
        if (text && json_object_get (part, "text"))
            json_object_set_new (part, "text", text);
        else
            json_decref (text);
    }
    else if (strcmp (name, "response.output_item.done") == 0)
        s_item_texts (self, json_object_get (root, "item"), output);
    else if (strcmp (name, "error") == 0)
        rc = s_flush (self, -1, -1);
    else if (strcmp (name, "response.completed") == 0 || strcmp (name, "response.incomplete") == 0
             || strcmp (name, "response.failed") == 0) {
        rc = s_flush (self, -1, -1);
        size_t i;
        json_t *item;
        json_array_foreach (json_object_get (json_object_get (root, "response"), "output"), i,
                            item) {
            s_item_texts (self, item, (int) i);
        }
    }
    if (rc) {
        json_decref (root);
        return rc;
    }
    return s_emit_json (self, name, root);
}

//  One whole SSE event (EVENT, LEN bytes with its blank line).
static int
s_event (aigw_guardout_t *self, const char *event, size_t len)
{
    char name[64] = "";
    //  Its data: every data line, joined by newlines, as a client reads it.
    char *data = NULL;
    size_t data_len = 0, data_cap = 0;
    bool has_data = false;
    const char *line = event, *end = event + len;
    while (line < end) {
        const char *eol = memchr (line, '\n', (size_t) (end - line));
        size_t n = eol ? (size_t) (eol - line) : (size_t) (end - line);
        if (n && line[n - 1] == '\r')
            n--;
        if (n > 6 && memcmp (line, "event:", 6) == 0) {
            const char *v = line + 6 + (line[6] == ' ');
            size_t vn = n - (size_t) (v - line);
            snprintf (name, sizeof name, "%.*s", (int) (vn < 63 ? vn : 63), v);
        }
        else if (n >= 5 && memcmp (line, "data:", 5) == 0) {
            const char *v = line + 5 + (n > 5 && line[5] == ' ');
            if ((has_data && aigw_text_append (&data, &data_len, &data_cap, "\n", 1))
                || aigw_text_append (&data, &data_len, &data_cap, v, n - (size_t) (v - line))) {
                free (data);
                return -1;
            }
            has_data = true;
        }
        line = eol ? eol + 1 : end;
    }
    if (!has_data)
        return s_emit (self, event, len);
    //  No event line: the name is the data's type (Messages, Responses).
    if (!*name && self->format != AIGW_GUARDOUT_CHAT) {
        json_t *root = json_loadb (data, data_len, 0, NULL);
        const char *type = json_string_value (json_object_get (root, "type"));
        snprintf (name, sizeof name, "%s", type ? type : "");
        json_decref (root);
    }
    int rc;
    if (self->format == AIGW_GUARDOUT_MESSAGES)
        rc = s_messages_event (self, event, len, name, data, data_len);
    else if (self->format == AIGW_GUARDOUT_RESPONSES)
        rc = s_responses_event (self, name, data, data_len);
    else if (data_len == 6 && memcmp (data, "[DONE]", 6) == 0) {
        rc = s_flush (self, -1, -1);
        rc = rc ? rc : s_emit (self, event, len);
    }
    else
        rc = s_chat_event (self, event, len, data, data_len);
    free (data);
    return rc;
}

//  Where the first whole event in DATA (LEN bytes) ends, 0 for none.
static size_t
s_event_end (const char *data, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (data[i] == '\n'
            && (data[i + 1] == '\n' || (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')))
            return i + (data[i + 1] == '\n' ? 2 : 3);
    return 0;
}

int
aigw_guardout_stream (aigw_guardout_t *self, const char *data, size_t len, bool last, char **out,
                      size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (self->blocked || self->failed)
        return self->blocked ? 1 : -1;
    self->out_len = 0;
    int rc = 0;
    if (self->pending_len + len > AIGW_GUARDOUT_EVENT_MAX
        || aigw_text_append (&self->pending, &self->pending_len, &self->pending_cap, data, len))
        rc = -1;
    size_t at = 0, end;
    while (!rc && (end = s_event_end (self->pending + at, self->pending_len - at))) {
        rc = s_event (self, self->pending + at, end);
        at += end;
    }
    memmove (self->pending, self->pending + at, self->pending_len - at);
    self->pending_len -= at;
    if (!rc && last) {
        //  Whatever is left goes: held text, then a last event cut short.
        //  A last event cut short of its blank line is an event still.
        if (self->pending_len) {
            rc = aigw_text_append (&self->pending, &self->pending_len, &self->pending_cap, "\n\n",
                                   2);
            rc = rc ? rc : s_event (self, self->pending, self->pending_len);
            self->pending_len = 0;
        }
        rc = rc ? rc : s_flush (self, -1, -1);
    }
    if (rc == 1 || self->blocked) {
        s_emit_error (self, "guardrail_error", self->blocked_by, self->message);
        rc = 1;
    }
    else if (rc < 0) {
        self->failed = true;
        s_emit_error (self, "server_error", "guardrail_failed",
                      "The guardrails could not check the answer.");
    }
    if (self->out_len) {
        *out = self->out;
        *out_len = self->out_len;
        self->out = NULL;
        self->out_len = self->out_cap = 0;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Feed STREAM to a new check in pieces of CUT bytes; returns what the
//  client gets (static) and sets *RC to the last call's result.
static const char *
s_test_stream (aigw_policy_t *policy, aigw_guardout_format_t format, const char *stream, size_t cut,
               int *rc)
{
    static char got[16384];
    got[0] = 0;
    aigw_guardout_t *self = aigw_guardout_new (policy, format);
    size_t total = strlen (stream), at = 0;
    *rc = 0;
    while (at < total && *rc == 0) {
        size_t n = total - at < cut ? total - at : cut;
        char *out;
        size_t out_len;
        *rc = aigw_guardout_stream (self, stream + at, n, at + n == total, &out, &out_len);
        if (out)
            strncat (got, out, out_len);
        free (out);
        at += n;
    }
    aigw_guardout_destroy (&self);
    return got;
}

//  The text a client reads from a chat stream: every content delta.
static void
s_test_text (const char *stream, char *text, size_t size, const char *member)
{
    text[0] = 0;
    const char *at = stream;
    char key[32];
    snprintf (key, sizeof key, "\"%s\":\"", member);
    while ((at = strstr (at, key))) {
        at += strlen (key);
        const char *end = at;
        while (*end && !(*end == '"' && end[-1] != '\\'))
            end++;
        strncat (text, at,
                 (size_t) (end - at) < size - strlen (text) - 1 ? (size_t) (end - at) : 0);
        at = end;
    }
}

void
aigw_guardout_test (bool verbose)
{
    char err[256];
    aigw_policy_t *policy = aigw_policy_new (
        "team",
        "{\"guardrails\": [{\"detector\": \"pii\", \"action\": \"redact\"},"
        " {\"detector\": \"secrets\", \"action\": \"block\"},"
        " {\"detector\": \"patterns\", \"action\": \"flag\", \"on\": \"output\", \"patterns\":"
        " [{\"name\": \"proj\", \"keyword\": \"bluebird\", \"caseless\": true}]}]}",
        err, sizeof err);
    assert (policy);

    //  Whole answers: redact in content and tool arguments, flag, block.
    aigw_guardout_t *self = aigw_guardout_new (policy, AIGW_GUARDOUT_CHAT);
    char *body = strdup ("{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":\"Mail alice@example.com about Bluebird\","
                         "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{"
                         "\"name\":\"f\",\"arguments\":\"{\\\"to\\\":\\\"bob@example.org\\\"}\"}}"
                         "]}}]}");
    size_t len = strlen (body);
    assert (aigw_guardout_answer (self, &body, &len) == 0);
    assert (strstr (body, "Mail [EMAIL] about Bluebird") && !strstr (body, "example"));
    assert (strstr (body, "{\\\"to\\\":\\\"[EMAIL]\\\"}"));
    if (verbose)
        fprintf (stderr, "%s\n", aigw_guardout_verdict (self));
    assert (strcmp (aigw_guardout_verdict (self), "out:redact:pii:email,out:flag:patterns:proj")
            == 0);
    assert (!aigw_guardout_blocked (self, NULL));
    free (body);
    aigw_guardout_destroy (&self);
    self = aigw_guardout_new (policy, AIGW_GUARDOUT_MESSAGES);
    body = strdup ("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
                   "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"key\":"
                   "\"sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ-abcdefAA\"}}]}");
    len = strlen (body);
    assert (aigw_guardout_answer (self, &body, &len) == 1);
    const char *message;
    assert (strcmp (aigw_guardout_blocked (self, &message), "secrets") == 0);
    assert (strstr (message, "anthropic_key") && strstr (message, "\"team\"")
            && strstr (message, "output") && !strstr (message, "sk-ant"));
    free (body);
    aigw_guardout_destroy (&self);
    self = aigw_guardout_new (policy, AIGW_GUARDOUT_CHAT);
    body = strdup ("not json");
    len = strlen (body);
    assert (aigw_guardout_answer (self, &body, &len) == -1);
    free (body);
    aigw_guardout_destroy (&self);

    //  A chat stream: an email split across chunks is redacted at every cut.
    const char *chat
        = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"
          "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":"
          "null}]}\n\n"
          "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"
          "[{\"index\":0,\"delta\":{\"content\":\"Write to ali\"},\"finish_reason\":null}]}\n\n"
          "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"
          "[{\"index\":0,\"delta\":{\"content\":\"ce@exam\"},\"finish_reason\":null}]}\n\n"
          "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"
          "[{\"index\":0,\"delta\":{\"content\":\"ple.com today.\"},\"finish_reason\":null}]}\n\n"
          "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"
          "[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
          "data: [DONE]\n\n";
    size_t cuts[] = {1, 5, 64, 100000};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int rc;
        const char *got = s_test_stream (policy, AIGW_GUARDOUT_CHAT, chat, cuts[c], &rc);
        assert (rc == 0);
        char text[512];
        s_test_text (got, text, sizeof text, "content");
        assert (strcmp (text, "Write to [EMAIL] today.") == 0);
        assert (strstr (got, "\"role\":\"assistant\""));
        assert (strstr (got, "\"finish_reason\":\"stop\""));
        //  The finish comes after the last text, [DONE] last.
        assert (strstr (got, "today.") < strstr (got, "\"finish_reason\":\"stop\""));
        assert (strcmp (got + strlen (got) - 14, "data: [DONE]\n\n") == 0);
    }

    //  A secret split across tool-call argument deltas blocks the stream:
    //  the key never reaches the client, the error event names the rule.
    const char *tools
        = "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
          "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"save\",\"arguments\":"
          "\"\"}}]},\"finish_reason\":null}]}\n\n"
          "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
          "\"function\":{\"arguments\":\"{\\\"key\\\":\\\"sk-proj-abcdefghij\"}}]},"
          "\"finish_reason\":null}]}\n\n"
          "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
          "\"function\":{\"arguments\":\"klmnopqrstuvwxyz0123456789ABCD\\\"}\"}}]},"
          "\"finish_reason\":null}]}\n\n"
          "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
          "\"tool_calls\"}]}\n\n"
          "data: [DONE]\n\n";
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int rc;
        const char *got = s_test_stream (policy, AIGW_GUARDOUT_CHAT, tools, cuts[c], &rc);
        assert (rc == 1);
        assert (!strstr (got, "sk-proj") && !strstr (got, "abcdefghij"));
        assert (strstr (got, "\"name\":\"save\""));
        assert (strstr (got, "\"type\":\"guardrail_error\"") && strstr (got, "openai_key"));
        assert (!strstr (got, "[DONE]"));
    }

    //  An Anthropic stream: the block stop waits for its text.
    const char *messages
        = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
          "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
          "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
          "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
          "\"delta\":{\"type\":\"text_delta\",\"text\":\"Call +1 415 55\"}}\n\n"
          "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
          "\"delta\":{\"type\":\"text_delta\",\"text\":\"5 0100 now\"}}\n\n"
          "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
          "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
          "\"end_turn\"}}\n\n"
          "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int rc;
        const char *got = s_test_stream (policy, AIGW_GUARDOUT_MESSAGES, messages, cuts[c], &rc);
        assert (rc == 0);
        char text[512];
        s_test_text (got, text, sizeof text, "text");
        assert (strcmp (text, "Call [PHONE] now") == 0);
        assert (strstr (got, "now") < strstr (got, "event: content_block_stop"));
        assert (strstr (got, "event: message_stop"));
    }
    int rc;
    const char *got = s_test_stream (
        policy, AIGW_GUARDOUT_MESSAGES,
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"AKIAIOSFODNN7EXAMPLE\"}}\n\n",
        7, &rc);
    assert (rc == 1 && strstr (got, "event: error\ndata: {\"type\":\"error\"")
            && !strstr (
                got, "AKIA"));  //  A Responses stream: deltas redacted, the events that repeat the
    //  text carry the redacted text, every event numbered again.
    const char *responses
        = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
          "\"response\":{\"id\":\"resp_1\",\"output\":[]}}\n\n"
          "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
          "\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"
          "\"delta\":\"mail fr\",\"logprobs\":[]}\n\n"
          "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
          "\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"
          "\"delta\":\"ed@example.com now\",\"logprobs\":[]}\n\n"
          "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\","
          "\"sequence_number\":3,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"
          "\"text\":\"mail fred@example.com now\"}\n\n"
          "event: response.content_part.done\ndata: {\"type\":\"response.content_part.done\","
          "\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"
          "\"part\":{\"type\":\"output_text\",\"text\":\"mail fred@example.com now\"}}\n\n"
          "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\","
          "\"sequence_number\":5,\"output_index\":0,\"item\":{\"type\":\"message\",\"content\":"
          "[{\"type\":\"output_text\",\"text\":\"mail fred@example.com now\"}]}}\n\n"
          "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":6,"
          "\"response\":{\"id\":\"resp_1\",\"output\":[{\"type\":\"message\",\"content\":"
          "[{\"type\":\"output_text\",\"text\":\"mail fred@example.com now\"}]}]}}\n\n";
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        got = s_test_stream (policy, AIGW_GUARDOUT_RESPONSES, responses, cuts[c], &rc);
        assert (rc == 0);
        assert (!strstr (got, "fred@") && strstr (got, "\"text\":\"mail [EMAIL] now\""));
        assert (strstr (got, "event: response.completed"));
        //  Numbered from 0 with no gap: the last is the count less one.
        int events = 0;
        for (const char *at = got; (at = strstr (at, "\"sequence_number\":")); at++)
            events++;
        char last[32];
        snprintf (last, sizeof last, "\"sequence_number\":%d", events - 1);
        assert (strstr (got, last) && !strstr (got, "\"sequence_number\":7"));
    }
    got = s_test_stream (policy, AIGW_GUARDOUT_RESPONSES,
                         "event: response.output_text.delta\ndata: {\"type\":"
                         "\"response.output_text.delta\",\"sequence_number\":1,\"output_index\":0,"
                         "\"content_index\":0,\"delta\":\"AKIAIOSFODNN7EXAMPLE\"}\n\n",
                         5, &rc);
    assert (rc == 1 && strstr (got, "event: error\ndata: {\"type\":\"error\"")
            && !strstr (got, "AKIA"));
    //  Framing a client still reads: an event's data on two lines, events
    //  with no event line (the name is the data's type), a last event
    //  without its blank line; an unreadable chunk is refused; an error
    //  event comes after the text held before it.
    got = s_test_stream (policy, AIGW_GUARDOUT_CHAT,
                         "data: {\"choices\":[{\"index\":0,\"delta\":\ndata: {\"content\":"
                         "\"key AKIAIOSFODNN7EXAMPLE\"}}]}\n\n",
                         1000, &rc);
    assert (rc == 1 && !strstr (got, "AKIA"));
    got = s_test_stream (policy, AIGW_GUARDOUT_RESPONSES,
                         "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,"
                         "\"content_index\":0,\"delta\":\"AKIAIOSFODNN7EXAMPLE\"}\n\n",
                         1000, &rc);
    assert (rc == 1 && !strstr (got, "AKIA"));
    got = s_test_stream (policy, AIGW_GUARDOUT_CHAT,
                         "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                         "\"mail zoe@example.com\"}}]}",
                         1000, &rc);
    assert (rc == 0 && !strstr (got, "zoe@") && strstr (got, "[EMAIL]"));
    got = s_test_stream (policy, AIGW_GUARDOUT_CHAT, "data: {not json\n\n", 1000, &rc);
    assert (rc == -1 && strstr (got, "guardrail_failed"));
    got = s_test_stream (policy, AIGW_GUARDOUT_CHAT,
                         "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                         "\"held words\"}}]}\n\ndata: {\"error\":{\"message\":\"upstream "
                         "failed\"}}\n\n",
                         1000, &rc);
    assert (rc == 0 && strstr (got, "held words") < strstr (got, "upstream failed"));

    //  A refusal and a reasoning text are checked as content is.
    got = s_test_stream (policy, AIGW_GUARDOUT_CHAT,
                         "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":"
                         "\"the user is ann@example.com\"}}]}\n\ndata: {\"choices\":[{\"index\":0,"
                         "\"delta\":{\"refusal\":\"no, bob@example.com\"}}]}\n\ndata: [DONE]\n\n",
                         7, &rc);
    assert (rc == 0 && !strchr (got, '@'));
    assert (strstr (got, "\"reasoning_content\":\"the user is [EMAIL]\""));
    assert (strstr (got, "\"refusal\":\"no, [EMAIL]\""));

    //  A redaction inside JSON text keeps it JSON: a password's value
    //  stops at a backslash escaping the quote after it.
    {
        aigw_policy_t *mask = aigw_policy_new (
            "mask", "{\"guardrails\": [{\"detector\": \"secrets\", \"action\": \"redact\"}]}", err,
            sizeof err);
        assert (mask);
        self = aigw_guardout_new (mask, AIGW_GUARDOUT_CHAT);
        body = strdup ("{\"choices\":[{\"index\":0,\"message\":{\"tool_calls\":[{\"id\":\"t\","
                       "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                       "\"{\\\"note\\\":\\\"password=Abcdef12\\\\\\\" more\\\"}\"}}]}}]}");
        len = strlen (body);
        assert (aigw_guardout_answer (self, &body, &len) == 0);
        json_t *root = json_loads (body, 0, NULL);
        const char *args = json_string_value (json_object_get (
            json_object_get (
                json_array_get (
                    json_object_get (
                        json_object_get (json_array_get (json_object_get (root, "choices"), 0),
                                         "message"),
                        "tool_calls"),
                    0),
                "function"),
            "arguments"));
        json_t *parsed = args ? json_loads (args, 0, NULL) : NULL;
        if (verbose)
            printf ("  arguments: %s\n", args ? args : "?");
        assert (parsed && strstr (args, "[SECRET]") && !strstr (args, "Abcdef12"));
        json_decref (parsed);
        json_decref (root);
        free (body);
        aigw_guardout_destroy (&self);
        aigw_policy_destroy (&mask);
    }

    self = aigw_guardout_new (policy, AIGW_GUARDOUT_RESPONSES);
    body = strdup ("{\"id\":\"resp_2\",\"object\":\"response\",\"output\":[{\"type\":\"message\","
                   "\"content\":[{\"type\":\"output_text\",\"text\":\"to gil@example.com\"}]},"
                   "{\"type\":\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}]}");
    len = strlen (body);
    assert (aigw_guardout_answer (self, &body, &len) == 0);
    assert (strstr (body, "to [EMAIL]") && !strstr (body, "gil@"));
    free (body);
    aigw_guardout_destroy (&self);
    aigw_policy_destroy (&policy);
    if (verbose)
        printf ("guardout: ok\n");
}
