/*  aigw_messages: Anthropic Messages (client side) <-> OpenAI chat (inside).

    Requests: "system" becomes a leading system message; each user turn's
    tool_result blocks become role "tool" messages placed before the rest of
    that turn (OpenAI wants tool messages right after the assistant's
    tool_calls), and images inside a tool_result move to that rest, since an
    OpenAI tool message holds text only. Assistant text blocks join into one
    content string and tool_use blocks become tool_calls.

    Answers go the other way; the stream translator keeps one Anthropic
    content block open at a time and closes it when another kind starts.
    See aigw_messages.h for the contracts. */
#include "aigw_messages.h"
#include "aigw_adapter.h"
#include "aigw_hex.h"
#include "aigw_json.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Longest field path quoted in an error message.
#define S_PATH_MAX 96
//  Separator between system text blocks joined into one system message.
#define S_SYSTEM_SEPARATOR "\n\n"
//  Separator between the text blocks of one tool_result.
#define S_TOOL_RESULT_SEPARATOR "\n"
//  Prefix of a tool message whose tool_result had is_error true.
#define S_TOOL_ERROR_PREFIX "Error: "
//  Random bytes in a generated message or tool id (hex-encoded after a prefix).
#define S_ID_RANDOM_BYTES 12

//  Kind of the content block a stream has open.
typedef enum {
    S_BLOCK_NONE,  //  no block open
    S_BLOCK_TEXT,  //  a text block
    S_BLOCK_TOOL   //  a tool_use block
} s_block_t;

struct _aigw_messages_stream_t {
    char *model;         //  model message_start names, NULL until known
    char *id;            //  message id, NULL until known
    char *pending;       //  bytes of an SSE event not yet complete
    size_t pending_len;  //  bytes in pending
    size_t line_start;   //  start of the first pending line not yet ended
    bool started;        //  message_start has been appended
    bool done;           //  message_stop or an error event has been appended
    s_block_t open;      //  kind of the open content block
    int next_block;      //  Anthropic index the next block will take
    int open_tool;       //  OpenAI tool_calls index of the open tool block
    char *open_tool_id;  //  id of the open tool block, NULL when none
    int next_tool;       //  one past the highest OpenAI tool index seen
    bool any_tool;       //  a tool_use block has been sent
    bool tool_seen[AIGW_MESSAGES_STREAM_TOOLS_MAX];  //  OpenAI tool indices given a block
    const char *stop_reason;        //  Anthropic stop_reason once finish_reason came, or NULL
    bool usage_seen;                //  a usage chunk has come
    json_int_t input_tokens;        //  uncached prompt tokens from the usage chunk
    json_int_t cache_read_tokens;   //  cached prompt tokens from the usage chunk
    json_int_t cache_write_tokens;  //  prompt tokens written to the cache, from the usage chunk
    json_int_t output_tokens;       //  completion tokens from the usage chunk
};

//  Write a printf-style reason to ERR when there is room; returns NULL so
//  that callers can `return s_fail (...)`.
static void *
s_fail (char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_size, format, args);
        va_end (args);
    }
    return NULL;
}

//  As s_fail, for functions that return 0 or -1.
static int
s_failed (char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_size, format, args);
        va_end (args);
    }
    return -1;
}

//  Parse BODY (LEN bytes) as a JSON object no deeper than the cap. Returns
//  a new reference the caller owns, or NULL with ERR.
static json_t *
s_load_object (const char *body, size_t len, char *err, size_t err_size)
{
    if (!body)
        return s_fail (err, err_size, "body: missing");
    if (!aigw_json_depth_ok (body, len, AIGW_MESSAGES_JSON_DEPTH_MAX))
        return s_fail (err, err_size, "body: nested deeper than %d levels",
                       AIGW_MESSAGES_JSON_DEPTH_MAX);
    json_error_t error;
    json_t *root = json_loadb (body, len, 0, &error);
    if (!root)
        return s_fail (err, err_size, "body: not valid JSON (%s)", error.text);
    if (!json_is_object (root)) {
        json_decref (root);
        return s_fail (err, err_size, "body: must be a JSON object");
    }
    return root;
}

//  The Anthropic message id for an OpenAI completion id: "msg_" and the
//  part after the first '-' ("chatcmpl-X" gives "msg_X"), or a generated
//  id when OPENAI_ID is NULL or empty. A new string the caller owns, or NULL.
static char *
s_message_id (const char *openai_id)
{
    if (!openai_id || !*openai_id)
        return aigw_hex_id ("msg_", S_ID_RANDOM_BYTES);
    const char *dash = strchr (openai_id, '-');
    const char *suffix = dash && dash[1] ? dash + 1 : openai_id;
    char *id = malloc (strlen ("msg_") + strlen (suffix) + 1);
    if (id)
        sprintf (id, "msg_%s", suffix);
    return id;
}

//  Anthropic stop_reason for an OpenAI finish_reason; NULL gives NULL.
//  OpenAI does not say which stop sequence matched, so "stop" is end_turn.
static const char *
s_stop_reason (const char *finish_reason)
{
    if (!finish_reason)
        return NULL;
    if (strcmp (finish_reason, "length") == 0)
        return "max_tokens";
    if (strcmp (finish_reason, "tool_calls") == 0 || strcmp (finish_reason, "function_call") == 0)
        return "tool_use";
    if (strcmp (finish_reason, "content_filter") == 0)
        return "refusal";
    return "end_turn";  //  stop, and reasons yet to come
}

//  --------------------------------------------------------------------------
//  Requests: Anthropic -> OpenAI

//  Join the text of VALUE at PATH: a string, or an array of text blocks
//  joined with SEPARATOR. A new string the caller owns, or NULL with ERR.
static char *
s_join_text (json_t *value, const char *path, const char *separator, char *err, size_t err_size)
{
    if (json_is_string (value))
        return strdup (json_string_value (value));
    if (!json_is_array (value))
        return s_fail (err, err_size, "%s: must be a string or an array of text blocks", path);
    char *joined = NULL;
    size_t joined_len = 0, index;
    json_t *block;
    json_array_foreach (value, index, block) {
        const char *type = json_string_value (json_object_get (block, "type"));
        json_t *text = json_object_get (block, "text");
        if (!type || strcmp (type, "text") != 0) {
            free (joined);
            return s_fail (err, err_size, "%s[%zu].type: must be \"text\"", path, index);
        }
        if (!json_is_string (text)) {
            free (joined);
            return s_fail (err, err_size, "%s[%zu].text: must be a string", path, index);
        }
        if ((index && aigw_adapter_append (&joined, &joined_len, separator, strlen (separator)))
            || aigw_adapter_append (&joined, &joined_len, json_string_value (text),
                                    json_string_length (text))) {
            free (joined);
            return s_fail (err, err_size, "out of memory");
        }
    }
    return joined ? joined : strdup ("");
}

//  Copy BLOCK's cache_control mark, if any, onto PART (an OpenAI content
//  part, message or tool): the gateway's format keeps Anthropic's marks
//  where they stood, for the Anthropic and Bedrock adapters. Returns PART.
static json_t *
s_mark (json_t *part, json_t *block)
{
    json_t *mark = json_object_get (block, "cache_control");
    if (part && json_is_object (mark))
        json_object_set (part, "cache_control", mark);
    return part;
}

//  True when any block of the array VALUE carries a cache_control mark.
static bool
s_marked (json_t *value)
{
    size_t index;
    json_t *block;
    json_array_foreach (value, index, block) {
        if (json_is_object (json_object_get (block, "cache_control")))
            return true;
    }
    return false;
}

//  An OpenAI image_url part for the Anthropic image BLOCK at PATH, or NULL
//  with ERR.
static json_t *
s_image_part (json_t *block, const char *path, char *err, size_t err_size)
{
    json_t *source = json_object_get (block, "source");
    const char *type = json_string_value (json_object_get (source, "type"));
    if (!json_is_object (source) || !type)
        return s_fail (err, err_size, "%s.source: must be an object with a type", path);
    if (strcmp (type, "url") == 0) {
        const char *url = json_string_value (json_object_get (source, "url"));
        if (!url || !*url)
            return s_fail (err, err_size, "%s.source.url: must be a non-empty string", path);
        return json_pack ("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
    }
    if (strcmp (type, "base64") != 0)
        return s_fail (err, err_size, "%s.source.type: must be \"base64\" or \"url\"", path);
    const char *media = json_string_value (json_object_get (source, "media_type"));
    const char *data = json_string_value (json_object_get (source, "data"));
    if (!media || !*media)
        return s_fail (err, err_size, "%s.source.media_type: must be a non-empty string", path);
    if (!data)
        return s_fail (err, err_size, "%s.source.data: must be a string", path);
    char *url = NULL;
    if (asprintf (&url, "data:%s;base64,%s", media, data) < 0)
        return s_fail (err, err_size, "out of memory");
    json_t *part = json_pack ("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
    free (url);
    return part ? part : s_fail (err, err_size, "out of memory");
}

//  An OpenAI part for the Anthropic document BLOCK at PATH: a base64 source
//  becomes a file part with a data: URL, a text source a text part. NULL
//  with ERR for anything else (OpenAI file parts take no URLs).
static json_t *
s_document_part (json_t *block, const char *path, char *err, size_t err_size)
{
    json_t *source = json_object_get (block, "source");
    const char *type = json_string_value (json_object_get (source, "type"));
    const char *data = json_string_value (json_object_get (source, "data"));
    if (!type || !data)
        return s_fail (err, err_size, "%s.source: must be a base64 or text source with data", path);
    if (strcmp (type, "text") == 0)
        return json_pack ("{s:s, s:s}", "type", "text", "text", data);
    const char *media = json_string_value (json_object_get (source, "media_type"));
    if (strcmp (type, "base64") != 0 || !media || !*media)
        return s_fail (err, err_size, "%s.source: only base64 and text sources are supported",
                       path);
    const char *title = json_string_value (json_object_get (block, "title"));
    char *url = NULL;
    if (asprintf (&url, "data:%s;base64,%s", media, data) < 0)
        return s_fail (err, err_size, "out of memory");
    json_t *part = json_pack ("{s:s, s:{s:s, s:s}}", "type", "file", "file", "filename",
                              title && *title ? title : "document", "file_data", url);
    free (url);
    return part ? part : s_fail (err, err_size, "out of memory");
}

//  Append the role "tool" message for the tool_result BLOCK at PATH to
//  MESSAGES; images in its content go to PARTS (the rest of the user turn).
//  Returns 0, or -1 with ERR.
static int
s_tool_result (json_t *block, const char *path, json_t *messages, json_t *parts, char *err,
               size_t err_size)
{
    const char *id = json_string_value (json_object_get (block, "tool_use_id"));
    if (!id || !*id)
        return s_failed (err, err_size, "%s.tool_use_id: must be a non-empty string", path);
    json_t *is_error = json_object_get (block, "is_error");
    if (is_error && !json_is_boolean (is_error) && !json_is_null (is_error))
        return s_failed (err, err_size, "%s.is_error: must be a boolean", path);
    char *text = NULL;
    size_t text_len = 0;
    int rc = 0;
    if (json_is_true (is_error)
        && aigw_adapter_append (&text, &text_len, S_TOOL_ERROR_PREFIX,
                                strlen (S_TOOL_ERROR_PREFIX)))
        rc = s_failed (err, err_size, "out of memory");
    json_t *content = json_object_get (block, "content");
    if (rc == 0 && json_is_string (content)) {
        if (aigw_adapter_append (&text, &text_len, json_string_value (content),
                                 json_string_length (content)))
            rc = s_failed (err, err_size, "out of memory");
    }
    else if (json_is_array (content)) {
        size_t index, texts = 0;
        json_t *item;
        json_array_foreach (content, index, item) {
            if (rc)
                break;
            char where[S_PATH_MAX];
            if (snprintf (where, sizeof where, "%s.content[%zu]", path, index) < 0)
                where[0] = '\0';
            const char *type = json_string_value (json_object_get (item, "type"));
            json_t *piece = json_object_get (item, "text");
            if (type && strcmp (type, "text") == 0 && json_is_string (piece)) {
                if (texts++)
                    rc = aigw_adapter_append (&text, &text_len, S_TOOL_RESULT_SEPARATOR,
                                              strlen (S_TOOL_RESULT_SEPARATOR));
                rc = rc ? rc
                        : aigw_adapter_append (&text, &text_len, json_string_value (piece),
                                               json_string_length (piece));
                if (rc)
                    s_failed (err, err_size, "out of memory");
            }
            else if (type && strcmp (type, "image") == 0) {
                json_t *part = s_image_part (item, where, err, err_size);
                rc = part ? json_array_append_new (parts, part) : -1;
            }
            else if (type && strcmp (type, "text") == 0)
                rc = s_failed (err, err_size, "%s.text: must be a string", where);
            else
                rc = s_failed (err, err_size, "%s.type: unknown block type \"%s\"", where,
                               type ? type : "(missing)");
        }
    }
    else if (rc == 0 && content && !json_is_null (content))
        rc = s_failed (err, err_size, "%s.content: must be a string or an array of blocks", path);
    if (rc == 0 && !text)
        text = strdup ("");
    json_t *message = rc == 0 && text ? json_pack ("{s:s, s:s, s:s%}", "role", "tool",
                                                   "tool_call_id", id, "content", text, text_len)
                                      : NULL;
    //  A marked result keeps its mark on a text part.
    if (message && json_is_object (json_object_get (block, "cache_control")))
        json_object_set_new (message, "content",
                             json_pack ("[o]", s_mark (json_pack ("{s:s, s:s%}", "type", "text",
                                                                  "text", text, text_len),
                                                       block)));
    free (text);
    if (rc == 0 && !message)
        return s_failed (err, err_size, "out of memory");
    if (rc)
        return -1;
    json_array_append_new (messages, message);
    return 0;
}

//  Append the OpenAI messages for the user CONTENT at PATH to MESSAGES:
//  tool messages first, then one user message with the other blocks.
//  Returns 0, or -1 with ERR.
static int
s_user_turn (json_t *content, const char *path, json_t *messages, char *err, size_t err_size)
{
    if (json_is_string (content)) {
        json_array_append_new (messages,
                               json_pack ("{s:s, s:O}", "role", "user", "content", content));
        return 0;
    }
    if (!json_is_array (content))
        return s_failed (err, err_size, "%s: must be a string or an array of blocks", path);
    json_t *parts = json_array ();
    size_t index;
    json_t *block;
    json_array_foreach (content, index, block) {
        char where[S_PATH_MAX];
        if (snprintf (where, sizeof where, "%s[%zu]", path, index) < 0)
            where[0] = '\0';
        const char *type = json_string_value (json_object_get (block, "type"));
        json_t *part = NULL;
        int rc = 0;
        if (!json_is_object (block) || !type)
            rc = s_failed (err, err_size, "%s.type: missing; each block needs a type", where);
        else if (strcmp (type, "text") == 0) {
            json_t *text = json_object_get (block, "text");
            if (!json_is_string (text))
                rc = s_failed (err, err_size, "%s.text: must be a string", where);
            else
                part = s_mark (json_pack ("{s:s, s:O}", "type", "text", "text", text), block);
        }
        else if (strcmp (type, "image") == 0)
            rc = (part = s_mark (s_image_part (block, where, err, err_size), block)) ? 0 : -1;
        else if (strcmp (type, "document") == 0)
            rc = (part = s_mark (s_document_part (block, where, err, err_size), block)) ? 0 : -1;
        else if (strcmp (type, "tool_result") == 0)
            rc = s_tool_result (block, where, messages, parts, err, err_size);
        else if (strcmp (type, "tool_use") == 0)
            rc = s_failed (err, err_size, "%s.type: tool_use belongs in an assistant turn", where);
        else
            rc = s_failed (err, err_size, "%s.type: unknown block type \"%s\"", where, type);
        if (part)
            json_array_append_new (parts, part);
        if (rc) {
            json_decref (parts);
            return -1;
        }
    }
    //  A lone text part goes as a plain string, which every server accepts.
    json_t *first = json_array_get (parts, 0);
    const char *first_type = json_string_value (json_object_get (first, "type"));
    if (json_array_size (parts) == 1 && strcmp (first_type, "text") == 0
        && !json_object_get (first, "cache_control"))
        json_array_append_new (messages, json_pack ("{s:s, s:O}", "role", "user", "content",
                                                    json_object_get (first, "text")));
    else if (json_array_size (parts))
        json_array_append_new (messages,
                               json_pack ("{s:s, s:O}", "role", "user", "content", parts));
    json_decref (parts);
    return 0;
}

//  Append the OpenAI assistant message for CONTENT at PATH to MESSAGES:
//  text blocks joined (text parts, each with its mark, when any block is
//  marked), tool_use blocks as tool_calls (a mark on the call), thinking
//  dropped. A turn left with nothing is dropped. Returns 0, or -1 with ERR.
static int
s_assistant_turn (json_t *content, const char *path, json_t *messages, char *err, size_t err_size)
{
    if (json_is_string (content)) {
        json_array_append_new (messages,
                               json_pack ("{s:s, s:O}", "role", "assistant", "content", content));
        return 0;
    }
    if (!json_is_array (content))
        return s_failed (err, err_size, "%s: must be a string or an array of blocks", path);
    char *text = NULL;
    size_t text_len = 0, index;
    json_t *calls = json_array ();
    json_t *parts = s_marked (content) ? json_array () : NULL;
    json_t *block;
    int rc = 0;
    json_array_foreach (content, index, block) {
        char where[S_PATH_MAX];
        if (snprintf (where, sizeof where, "%s[%zu]", path, index) < 0)
            where[0] = '\0';
        const char *type = json_string_value (json_object_get (block, "type"));
        if (!json_is_object (block) || !type)
            rc = s_failed (err, err_size, "%s.type: missing; each block needs a type", where);
        else if (strcmp (type, "text") == 0) {
            json_t *piece = json_object_get (block, "text");
            if (!json_is_string (piece))
                rc = s_failed (err, err_size, "%s.text: must be a string", where);
            else if (aigw_adapter_append (&text, &text_len, json_string_value (piece),
                                          json_string_length (piece)))
                rc = s_failed (err, err_size, "out of memory");
            else if (parts)
                json_array_append_new (
                    parts, s_mark (json_pack ("{s:s, s:O}", "type", "text", "text", piece), block));
        }
        else if (strcmp (type, "tool_use") == 0) {
            const char *id = json_string_value (json_object_get (block, "id"));
            const char *name = json_string_value (json_object_get (block, "name"));
            json_t *input = json_object_get (block, "input");
            char *arguments = NULL;
            if (!id || !*id)
                rc = s_failed (err, err_size, "%s.id: must be a non-empty string", where);
            else if (!name || !*name)
                rc = s_failed (err, err_size, "%s.name: must be a non-empty string", where);
            else if (!json_is_object (input))
                rc = s_failed (err, err_size, "%s.input: must be an object", where);
            else if (!(arguments = json_dumps (input, JSON_COMPACT)))
                rc = s_failed (err, err_size, "out of memory");
            else
                json_array_append_new (
                    calls,
                    s_mark (json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function",
                                       "function", "name", name, "arguments", arguments),
                            block));
            free (arguments);
        }
        else if (strcmp (type, "thinking") == 0 || strcmp (type, "redacted_thinking") == 0)
            ;  //  no OpenAI form; other models cannot use it
        else if (strcmp (type, "tool_result") == 0 || strcmp (type, "image") == 0
                 || strcmp (type, "document") == 0)
            rc = s_failed (err, err_size, "%s.type: %s belongs in a user turn", where, type);
        else
            rc = s_failed (err, err_size, "%s.type: unknown block type \"%s\"", where, type);
        if (rc)
            break;
    }
    if (rc == 0 && (text_len || json_array_size (calls))) {
        json_t *message = json_pack ("{s:s, s:o}", "role", "assistant", "content",
                                     parts && text_len ? json_incref (parts)
                                     : text_len        ? json_stringn (text, text_len)
                                                       : json_null ());
        if (json_array_size (calls))
            json_object_set (message, "tool_calls", calls);
        json_array_append_new (messages, message);
    }
    free (text);
    json_decref (calls);
    json_decref (parts);
    return rc;
}

//  Translate "system" and "messages" of SOURCE into MESSAGES. 0, or -1 with ERR.
static int
s_translate_messages (json_t *source, json_t *messages, char *err, size_t err_size)
{
    json_t *system = json_object_get (source, "system");
    if (json_is_array (system) && s_marked (system)) {
        //  Marked system blocks stay blocks (text parts), each with its mark.
        char *text = s_join_text (system, "system", S_SYSTEM_SEPARATOR, err, err_size);
        if (!text)
            return -1;
        free (text);
        json_t *parts = json_array ();
        size_t index;
        json_t *block;
        json_array_foreach (system, index, block) {
            json_array_append_new (parts, s_mark (json_pack ("{s:s, s:O}", "type", "text", "text",
                                                             json_object_get (block, "text")),
                                                  block));
        }
        json_array_append_new (messages,
                               json_pack ("{s:s, s:o}", "role", "system", "content", parts));
    }
    else if (system && !json_is_null (system)) {
        char *text = s_join_text (system, "system", S_SYSTEM_SEPARATOR, err, err_size);
        if (!text)
            return -1;
        if (*text)
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:s}", "role", "system", "content", text));
        free (text);
    }
    size_t system_count = json_array_size (messages);
    json_t *turns = json_object_get (source, "messages");
    if (!json_is_array (turns) || json_array_size (turns) == 0)
        return s_failed (err, err_size, "messages: must be a non-empty array");
    size_t index;
    json_t *turn;
    json_array_foreach (turns, index, turn) {
        char path[S_PATH_MAX];
        snprintf (path, sizeof path, "messages[%zu]", index);
        if (!json_is_object (turn))
            return s_failed (err, err_size, "%s: must be an object", path);
        const char *role = json_string_value (json_object_get (turn, "role"));
        json_t *content = json_object_get (turn, "content");
        char where[S_PATH_MAX + 16];
        if (snprintf (where, sizeof where, "%s.content", path) < 0)
            where[0] = '\0';
        int rc;
        if (!role)
            rc = s_failed (err, err_size, "%s.role: missing; must be user or assistant", path);
        else if (strcmp (role, "user") == 0)
            rc = s_user_turn (content, where, messages, err, err_size);
        else if (strcmp (role, "assistant") == 0)
            rc = s_assistant_turn (content, where, messages, err, err_size);
        else
            rc = s_failed (err, err_size, "%s.role: must be user or assistant, not \"%s\"", path,
                           role);
        if (rc)
            return -1;
    }
    if (json_array_size (messages) == system_count)
        return s_failed (err, err_size, "messages: no message has any content");
    return 0;
}

//  Copy the limit, sampling and stream fields of SOURCE into TARGET,
//  setting *STREAM. 0, or -1 with ERR.
static int
s_translate_options (json_t *source, json_t *target, bool *stream, char *err, size_t err_size)
{
    json_t *limit = json_object_get (source, "max_tokens");
    if (!json_is_integer (limit) || json_integer_value (limit) < 1)
        return s_failed (err, err_size, "max_tokens: must be a positive integer");
    json_object_set (target, "max_tokens", limit);

    static const char *numbers[] = {"temperature", "top_p"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        json_t *value = json_object_get (source, numbers[i]);
        if (!value || json_is_null (value))
            continue;
        if (!json_is_number (value))
            return s_failed (err, err_size, "%s: must be a number", numbers[i]);
        json_object_set (target, numbers[i], value);
    }
    json_t *stops = json_object_get (source, "stop_sequences");
    if (stops && !json_is_null (stops)) {
        if (!json_is_array (stops))
            return s_failed (err, err_size, "stop_sequences: must be an array of strings");
        size_t index;
        json_t *stop;
        json_array_foreach (stops, index, stop) {
            if (!json_is_string (stop))
                return s_failed (err, err_size, "stop_sequences[%zu]: must be a string", index);
        }
        if (json_array_size (stops))
            json_object_set (target, "stop", stops);
    }
    json_t *streamed = json_object_get (source, "stream");
    if (streamed && !json_is_null (streamed) && !json_is_boolean (streamed))
        return s_failed (err, err_size, "stream: must be a boolean");
    if (json_is_true (streamed)) {
        json_object_set_new (target, "stream", json_true ());
        json_object_set_new (target, "stream_options", json_pack ("{s:b}", "include_usage", 1));
    }
    if (stream)
        *stream = json_is_true (streamed);
    json_t *metadata = json_object_get (source, "metadata");
    if (metadata && !json_is_null (metadata) && !json_is_object (metadata))
        return s_failed (err, err_size, "metadata: must be an object");
    json_t *user = json_object_get (metadata, "user_id");
    if (user && !json_is_null (user) && !json_is_string (user))
        return s_failed (err, err_size, "metadata.user_id: must be a string");
    if (json_is_string (user))
        json_object_set (target, "user", user);
    return 0;
}

//  Translate tools and tool_choice of SOURCE into TARGET. 0, or -1 with ERR.
static int
s_translate_tools (json_t *source, json_t *target, char *err, size_t err_size)
{
    json_t *tools = json_object_get (source, "tools");
    if (tools && !json_is_null (tools)) {
        if (!json_is_array (tools))
            return s_failed (err, err_size, "tools: must be an array");
        json_t *result = json_array ();
        size_t index;
        json_t *tool;
        json_array_foreach (tools, index, tool) {
            const char *type = json_string_value (json_object_get (tool, "type"));
            const char *name = json_string_value (json_object_get (tool, "name"));
            json_t *description = json_object_get (tool, "description");
            json_t *schema = json_object_get (tool, "input_schema");
            int rc = 0;
            if (!json_is_object (tool))
                rc = s_failed (err, err_size, "tools[%zu]: must be an object", index);
            else if (type && strcmp (type, "custom") != 0)
                rc = s_failed (err, err_size,
                               "tools[%zu].type: server tool \"%s\" is not available here", index,
                               type);
            else if (!name || !*name)
                rc = s_failed (err, err_size, "tools[%zu].name: must be a non-empty string", index);
            else if (description && !json_is_null (description) && !json_is_string (description))
                rc = s_failed (err, err_size, "tools[%zu].description: must be a string", index);
            else if (schema && !json_is_object (schema))
                rc = s_failed (err, err_size, "tools[%zu].input_schema: must be an object", index);
            if (rc) {
                json_decref (result);
                return -1;
            }
            json_t *function = json_pack ("{s:s}", "name", name);
            if (json_is_string (description))
                json_object_set (function, "description", description);
            json_object_set_new (function, "parameters",
                                 schema
                                     ? json_deep_copy (schema)
                                     : json_pack ("{s:s, s:{}}", "type", "object", "properties"));
            json_array_append_new (
                result,
                s_mark (json_pack ("{s:s, s:o}", "type", "function", "function", function), tool));
        }
        if (json_array_size (result))
            json_object_set_new (target, "tools", result);
        else
            json_decref (result);
    }
    json_t *choice = json_object_get (source, "tool_choice");
    if (!choice || json_is_null (choice))
        return 0;
    const char *type = json_string_value (json_object_get (choice, "type"));
    if (!json_is_object (choice) || !type)
        return s_failed (err, err_size, "tool_choice: must be an object with a type");
    json_t *mapped;
    if (strcmp (type, "auto") == 0)
        mapped = json_string ("auto");
    else if (strcmp (type, "any") == 0)
        mapped = json_string ("required");
    else if (strcmp (type, "none") == 0)
        mapped = json_string ("none");
    else if (strcmp (type, "tool") == 0) {
        const char *name = json_string_value (json_object_get (choice, "name"));
        if (!name || !*name)
            return s_failed (err, err_size, "tool_choice.name: must be a non-empty string");
        mapped = json_pack ("{s:s, s:{s:s}}", "type", "function", "function", "name", name);
    }
    else
        return s_failed (err, err_size, "tool_choice.type: must be auto, any, tool or none");
    json_t *parallel = json_object_get (choice, "disable_parallel_tool_use");
    if (parallel && !json_is_null (parallel) && !json_is_boolean (parallel)) {
        json_decref (mapped);
        return s_failed (err, err_size, "tool_choice.disable_parallel_tool_use: must be a boolean");
    }
    //  OpenAI rejects tool_choice and parallel_tool_calls without tools.
    if (json_object_get (target, "tools")) {
        json_object_set_new (target, "tool_choice", mapped);
        if (json_is_true (parallel))
            json_object_set_new (target, "parallel_tool_calls", json_false ());
    }
    else
        json_decref (mapped);
    return 0;
}

char *
aigw_messages_request_to_openai (const char *body, size_t len, size_t *out_len, bool *stream,
                                 char *err, size_t err_size)
{
    if (stream)
        *stream = false;
    json_t *source = s_load_object (body, len, err, err_size);
    if (!source)
        return NULL;
    json_t *model = json_object_get (source, "model");
    if (!json_is_string (model) || json_string_length (model) == 0) {
        json_decref (source);
        return s_fail (err, err_size, "model: must be a non-empty string");
    }
    //  "messages" goes in first, so that it follows "model" in the output.
    json_t *target = json_pack ("{s:O, s:[]}", "model", model, "messages");
    json_t *messages = json_object_get (target, "messages");
    int rc = target && messages ? 0 : s_failed (err, err_size, "out of memory");
    //  Check max_tokens before the messages, so that its error comes first.
    if (rc == 0)
        rc = s_translate_options (source, target, stream, err, err_size);
    if (rc == 0)
        rc = s_translate_messages (source, messages, err, err_size);
    if (rc == 0)
        rc = s_translate_tools (source, target, err, err_size);
    json_decref (source);
    if (rc) {
        json_decref (target);
        if (stream)
            *stream = false;
        return NULL;
    }
    char *result = aigw_json_dump (target, out_len);
    return result ? result : s_fail (err, err_size, "out of memory");
}

//  --------------------------------------------------------------------------
//  Responses: OpenAI -> Anthropic

//  The Anthropic tool input for OpenAI ARGUMENTS (LEN bytes, may be NULL):
//  the parsed object; {} when empty; {"_raw": ARGUMENTS} when they are not
//  a JSON object. A new reference, or NULL when out of memory.
static json_t *
s_tool_input (const char *arguments, size_t len)
{
    size_t at = 0;
    while (arguments && at < len && strchr (" \t\r\n", arguments[at]))
        at++;
    if (!arguments || at == len)
        return json_object ();
    json_t *input = NULL;
    if (aigw_json_depth_ok (arguments, len, AIGW_MESSAGES_JSON_DEPTH_MAX))
        input = json_loadb (arguments, len, 0, NULL);
    if (json_is_object (input))
        return input;
    json_decref (input);
    return json_pack ("{s:s%}", "_raw", arguments, len);
}

//  Anthropic usage for an OpenAI usage's counts. Cached prompt tokens go
//  to cache_read_input_tokens and cache writes (the gateway's
//  cache_creation_input_tokens, among the prompt tokens) to
//  cache_creation_input_tokens, as Anthropic's input_tokens leaves both
//  out. A new reference or NULL.
static json_t *
s_usage (json_int_t prompt, json_int_t cached, json_int_t written, json_int_t completion,
         bool with_input)
{
    json_t *usage = with_input ? json_pack ("{s:I}", "input_tokens", prompt - cached - written)
                               : json_object ();
    if (usage && with_input && cached > 0)
        json_object_set_new (usage, "cache_read_input_tokens", json_integer (cached));
    if (usage && with_input && written > 0)
        json_object_set_new (usage, "cache_creation_input_tokens", json_integer (written));
    if (usage)
        json_object_set_new (usage, "output_tokens", json_integer (completion));
    return usage;
}

//  Read an OpenAI USAGE object's counts into the outputs; cached tokens
//  and cache writes together are capped at the prompt tokens.
static void
s_read_usage (json_t *usage, json_int_t *prompt, json_int_t *cached, json_int_t *written,
              json_int_t *completion)
{
    *prompt = json_integer_value (json_object_get (usage, "prompt_tokens"));
    *completion = json_integer_value (json_object_get (usage, "completion_tokens"));
    *cached = json_integer_value (
        json_object_get (json_object_get (usage, "prompt_tokens_details"), "cached_tokens"));
    *written = json_integer_value (json_object_get (usage, "cache_creation_input_tokens"));
    if (*prompt < 0)
        *prompt = 0;
    if (*completion < 0)
        *completion = 0;
    if (*cached < 0 || *cached > *prompt)
        *cached = *cached < 0 ? 0 : *prompt;
    if (*written < 0 || *written > *prompt - *cached)
        *written = *written < 0 ? 0 : *prompt - *cached;
}

//  The text of an OpenAI message CONTENT: a string, or text parts joined.
//  Appends to *TEXT (malloc'd, *TEXT_LEN bytes). 0, or -1 when out of memory.
static int
s_message_text (json_t *content, char **text, size_t *text_len)
{
    if (json_is_string (content))
        return aigw_adapter_append (text, text_len, json_string_value (content),
                                    json_string_length (content));
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        json_t *piece = json_object_get (part, "text");
        if (json_is_string (piece)
            && aigw_adapter_append (text, text_len, json_string_value (piece),
                                    json_string_length (piece)))
            return -1;
    }
    return 0;
}

//  An Anthropic tool_use block for OpenAI CALL at PATH, or NULL with ERR.
//  A call without an id gets a generated one.
static json_t *
s_tool_use_block (json_t *call, const char *path, char *err, size_t err_size)
{
    json_t *function = json_object_get (call, "function");
    const char *name = json_string_value (json_object_get (function, "name"));
    json_t *arguments = json_object_get (function, "arguments");
    if (!name || !*name)
        return s_fail (err, err_size, "%s.function.name: must be a non-empty string", path);
    if (arguments && !json_is_string (arguments) && !json_is_null (arguments))
        return s_fail (err, err_size, "%s.function.arguments: must be a string", path);
    const char *given = json_string_value (json_object_get (call, "id"));
    char *id = given && *given ? strdup (given) : aigw_hex_id ("toolu_", S_ID_RANDOM_BYTES);
    json_t *input = s_tool_input (json_string_value (arguments), json_string_length (arguments));
    json_t *block = id && input ? json_pack ("{s:s, s:s, s:s, s:O}", "type", "tool_use", "id", id,
                                             "name", name, "input", input)
                                : NULL;
    free (id);
    json_decref (input);
    return block ? block : s_fail (err, err_size, "out of memory");
}

char *
aigw_messages_response_from_openai (const char *body, size_t len, const char *model,
                                    size_t *out_len, char *err, size_t err_size)
{
    json_t *source = s_load_object (body, len, err, err_size);
    if (!source)
        return NULL;
    json_t *error = json_object_get (source, "error");
    if (error && !json_is_null (error)) {
        const char *message = json_is_string (error)
                                  ? json_string_value (error)
                                  : json_string_value (json_object_get (error, "message"));
        s_fail (err, err_size, "upstream error: %s", message ? message : "(no message)");
        json_decref (source);
        return NULL;
    }
    json_t *choice = json_array_get (json_object_get (source, "choices"), 0);
    json_t *message = json_object_get (choice, "message");
    if (!json_is_object (choice)) {
        json_decref (source);
        return s_fail (err, err_size, "choices: must be a non-empty array");
    }
    if (!json_is_object (message)) {
        json_decref (source);
        return s_fail (err, err_size, "choices[0].message: must be an object");
    }
    json_t *calls = json_object_get (message, "tool_calls");
    if (calls && !json_is_null (calls) && !json_is_array (calls)) {
        json_decref (source);
        return s_fail (err, err_size, "choices[0].message.tool_calls: must be an array");
    }
    json_t *content = json_array ();
    char *text = NULL;
    size_t text_len = 0;
    int rc = content ? s_message_text (json_object_get (message, "content"), &text, &text_len) : -1;
    //  A refusal is what the model said when it said nothing else.
    if (rc == 0 && text_len == 0)
        rc = s_message_text (json_object_get (message, "refusal"), &text, &text_len);
    if (rc)
        s_failed (err, err_size, "out of memory");
    if (rc == 0 && text_len)
        json_array_append_new (content,
                               json_pack ("{s:s, s:s%}", "type", "text", "text", text, text_len));
    size_t index;
    json_t *call;
    json_array_foreach (calls, index, call) {
        if (rc)
            break;
        char path[S_PATH_MAX];
        snprintf (path, sizeof path, "choices[0].message.tool_calls[%zu]", index);
        json_t *block = s_tool_use_block (call, path, err, err_size);
        rc = block ? json_array_append_new (content, block) : -1;
    }
    //  The legacy function_call, from servers that still send it.
    json_t *legacy = json_object_get (message, "function_call");
    if (rc == 0 && json_is_object (legacy)) {
        json_t *wrapped = json_pack ("{s:O}", "function", legacy);
        json_t *block
            = s_tool_use_block (wrapped, "choices[0].message.function_call", err, err_size);
        json_decref (wrapped);
        rc = block ? json_array_append_new (content, block) : -1;
    }
    json_t *target = NULL;
    if (rc == 0) {
        const char *stop
            = s_stop_reason (json_string_value (json_object_get (choice, "finish_reason")));
        bool has_tools = json_array_size (content) > (text_len ? 1u : 0u);
        if (!stop)
            stop = has_tools ? "tool_use" : "end_turn";
        if (!model)
            model = json_string_value (json_object_get (source, "model"));
        json_int_t prompt, cached, written, completion;
        s_read_usage (json_object_get (source, "usage"), &prompt, &cached, &written, &completion);
        char *id = s_message_id (json_string_value (json_object_get (source, "id")));
        if (id)
            target = json_pack ("{s:s, s:s, s:s, s:s, s:O, s:s, s:n, s:o}", "id", id, "type",
                                "message", "role", "assistant", "model", model ? model : "",
                                "content", content, "stop_reason", stop, "stop_sequence", "usage",
                                s_usage (prompt, cached, written, completion, true));
        free (id);
        if (!target)
            s_failed (err, err_size, "out of memory");
    }
    free (text);
    json_decref (content);
    json_decref (source);
    if (!target)
        return NULL;
    char *result = aigw_json_dump (target, out_len);
    return result ? result : s_fail (err, err_size, "out of memory");
}

char *
aigw_messages_error_body (const char *type, const char *message, size_t *out_len)
{
    return aigw_json_dump (json_pack ("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                                      type ? type : "api_error", "message", message ? message : ""),
                           out_len);
}

//  --------------------------------------------------------------------------
//  Streams: OpenAI SSE chunks -> Anthropic SSE events

aigw_messages_stream_t *
aigw_messages_stream_new (const char *model, const char *id)
{
    aigw_messages_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->model = model ? strdup (model) : NULL;
    self->id = id ? strdup (id) : NULL;
    self->open_tool = -1;
    if ((model && !self->model) || (id && !self->id))
        aigw_messages_stream_destroy (&self);
    return self;
}

void
aigw_messages_stream_destroy (aigw_messages_stream_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        aigw_messages_stream_t *self = *self_p;
        free (self->model);
        free (self->id);
        free (self->pending);
        free (self->open_tool_id);
        free (self);
        *self_p = NULL;
    }
}

bool
aigw_messages_stream_done (aigw_messages_stream_t *self)
{
    assert (self);
    return self->done;
}

//  Append the SSE event "event: NAME\ndata: DATA\n\n" to *OUT; steals
//  DATA. 0, or -1 when out of memory.
static int
s_emit (char **out, size_t *out_len, const char *name, json_t *data)
{
    return aigw_adapter_append_sse (out, out_len, name, data);
}

//  Append an Anthropic error event to *OUT. 0, or -1 when out of memory.
static int
s_emit_error (char **out, size_t *out_len, const char *type, const char *message)
{
    return s_emit (out, out_len, "error",
                   json_pack ("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                              type ? type : "api_error", "message",
                              message ? message : "The upstream failed."));
}

//  Fail the stream: append an error event saying MESSAGE and mark it done.
//  Returns -1.
static int
s_stream_fail (aigw_messages_stream_t *self, const char *message, char **out, size_t *out_len)
{
    self->done = true;
    s_emit_error (out, out_len, "api_error", message);
    return -1;
}

//  Append message_start unless it has gone, taking the id and model from
//  CHUNK (may be NULL) when the stream was not given them. 0 or -1.
static int
s_stream_start (aigw_messages_stream_t *self, json_t *chunk, char **out, size_t *out_len)
{
    if (self->started)
        return 0;
    if (!self->id)
        self->id = s_message_id (json_string_value (json_object_get (chunk, "id")));
    const char *model = json_string_value (json_object_get (chunk, "model"));
    if (!self->model && model)
        self->model = strdup (model);
    if (!self->id)
        return -1;
    self->started = true;
    return s_emit (out, out_len, "message_start",
                   json_pack ("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}", "type",
                              "message_start", "message", "id", self->id, "type", "message", "role",
                              "assistant", "model", self->model ? self->model : "", "content",
                              "stop_reason", "stop_sequence", "usage", "input_tokens", 0,
                              "output_tokens", 0));
}

//  Close the open content block, if any. 0 or -1.
static int
s_block_close (aigw_messages_stream_t *self, char **out, size_t *out_len)
{
    if (self->open == S_BLOCK_NONE)
        return 0;
    self->open = S_BLOCK_NONE;
    self->open_tool = -1;
    free (self->open_tool_id);
    self->open_tool_id = NULL;
    return s_emit (
        out, out_len, "content_block_stop",
        json_pack ("{s:s, s:i}", "type", "content_block_stop", "index", self->next_block - 1));
}

//  Open a new content block described by BLOCK (stolen) of KIND, closing
//  the open one. 0 or -1.
static int
s_block_open (aigw_messages_stream_t *self, s_block_t kind, json_t *block, char **out,
              size_t *out_len)
{
    if (s_block_close (self, out, out_len)) {
        json_decref (block);
        return -1;
    }
    self->open = kind;
    return s_emit (out, out_len, "content_block_start",
                   json_pack ("{s:s, s:i, s:o}", "type", "content_block_start", "index",
                              self->next_block++, "content_block", block));
}

//  Append a delta to the open block: TYPE is text_delta or
//  input_json_delta, FIELD its payload key. 0 or -1.
static int
s_block_delta (aigw_messages_stream_t *self, const char *type, const char *field, const char *text,
               size_t len, char **out, size_t *out_len)
{
    return s_emit (out, out_len, "content_block_delta",
                   json_pack ("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index",
                              self->next_block - 1, "delta", "type", type, field, text, len));
}

//  Stream TEXT (LEN bytes) as text_delta events, opening a text block when
//  none is open. 0 or -1.
static int
s_stream_text (aigw_messages_stream_t *self, const char *text, size_t len, char **out,
               size_t *out_len)
{
    if (len == 0)
        return 0;
    if (self->open != S_BLOCK_TEXT
        && s_block_open (self, S_BLOCK_TEXT, json_pack ("{s:s, s:s}", "type", "text", "text", ""),
                         out, out_len))
        return -1;
    return s_block_delta (self, "text_delta", "text", text, len, out, out_len);
}

//  An id for a tool call the server sent without one: "toolu_", the
//  message id's suffix and the block index, so that the same input always
//  gives the same events. A new string the caller owns, or NULL.
static char *
s_stream_tool_id (aigw_messages_stream_t *self)
{
    const char *suffix = strncmp (self->id, "msg_", 4) == 0 ? self->id + 4 : self->id;
    char *id = NULL;
    if (asprintf (&id, "toolu_%s_%d", suffix, self->next_block) < 0)
        return NULL;
    return id;
}

//  Stream one OpenAI tool_calls delta CALL. The first delta of an index
//  opens a tool_use block (it must name the function); later ones add
//  input_json_delta events. A delta for a call whose block has closed is
//  malformed: Anthropic blocks cannot interleave. Returns 0, or -1 with
//  *WHY set.
static int
s_stream_tool (aigw_messages_stream_t *self, json_t *call, char **out, size_t *out_len,
               const char **why)
{
    json_t *function = json_object_get (call, "function");
    json_t *arguments = json_object_get (function, "arguments");
    const char *id = json_string_value (json_object_get (call, "id"));
    const char *name = json_string_value (json_object_get (function, "name"));
    json_t *index_value = json_object_get (call, "index");
    if (!json_is_object (call) || (function && !json_is_object (function))
        || (arguments && !json_is_string (arguments) && !json_is_null (arguments))) {
        *why = "malformed tool call delta";
        return -1;
    }
    if (id && !*id)
        id = NULL;
    int index;
    if (json_is_integer (index_value)) {
        if (json_integer_value (index_value) < 0
            || json_integer_value (index_value) >= AIGW_MESSAGES_STREAM_TOOLS_MAX) {
            *why = "tool call index out of range";
            return -1;
        }
        index = (int) json_integer_value (index_value);
    }
    else if (index_value && !json_is_null (index_value)) {
        *why = "tool call index must be an integer";
        return -1;
    }
    else if (self->open == S_BLOCK_TOOL && !id)
        index = self->open_tool;  //  servers that leave out the index
    else
        index = self->next_tool < AIGW_MESSAGES_STREAM_TOOLS_MAX ? self->next_tool : -1;
    if (index < 0) {
        *why = "too many tool calls";
        return -1;
    }
    //  Some servers reuse one index for every call, telling them by id.
    bool same = self->open == S_BLOCK_TOOL && index == self->open_tool
                && (!id || strcmp (id, self->open_tool_id) == 0);
    if (!same) {
        if (self->tool_seen[index] && !(self->open == S_BLOCK_TOOL && index == self->open_tool)) {
            *why = "tool call arguments arrived after another block began";
            return -1;
        }
        if (!name || !*name) {
            *why = "the first delta of a tool call has no function name";
            return -1;
        }
        char *block_id = id ? strdup (id) : s_stream_tool_id (self);
        json_t *block = block_id ? json_pack ("{s:s, s:s, s:s, s:{}}", "type", "tool_use", "id",
                                              block_id, "name", name, "input")
                                 : NULL;
        if (!block || s_block_open (self, S_BLOCK_TOOL, block, out, out_len)) {
            free (block_id);
            *why = "out of memory";
            return -1;
        }
        self->open_tool = index;
        self->open_tool_id = block_id;
        self->tool_seen[index] = true;
        self->any_tool = true;
        if (index >= self->next_tool)
            self->next_tool = index + 1;
    }
    if (json_string_length (arguments)
        && s_block_delta (self, "input_json_delta", "partial_json", json_string_value (arguments),
                          json_string_length (arguments), out, out_len)) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

//  End the message: close the open block, then message_delta and
//  message_stop. 0 or -1.
static int
s_stream_finish (aigw_messages_stream_t *self, char **out, size_t *out_len)
{
    if (s_stream_start (self, NULL, out, out_len) || s_block_close (self, out, out_len))
        return -1;
    const char *stop = self->stop_reason ? self->stop_reason
                       : self->any_tool  ? "tool_use"
                                         : "end_turn";
    json_t *usage = s_usage (
        self->input_tokens + self->cache_read_tokens + self->cache_write_tokens,
        self->cache_read_tokens, self->cache_write_tokens, self->output_tokens, self->usage_seen);
    self->done = true;
    if (s_emit (out, out_len, "message_delta",
                json_pack ("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta",
                           "stop_reason", stop, "stop_sequence", "usage", usage)))
        return -1;
    return s_emit (out, out_len, "message_stop", json_pack ("{s:s}", "type", "message_stop"));
}

//  Translate one parsed OpenAI CHUNK. Returns 0, or -1 with *WHY set.
static int
s_stream_chunk (aigw_messages_stream_t *self, json_t *chunk, char **out, size_t *out_len,
                const char **why)
{
    *why = "out of memory";
    json_t *error = json_object_get (chunk, "error");
    if (error && !json_is_null (error)) {
        const char *message = json_is_string (error)
                                  ? json_string_value (error)
                                  : json_string_value (json_object_get (error, "message"));
        self->done = true;
        return s_emit_error (out, out_len, "api_error", message);
    }
    json_t *choices = json_object_get (chunk, "choices");
    json_t *usage = json_object_get (chunk, "usage");
    if ((choices && !json_is_array (choices))
        || (usage && !json_is_null (usage) && !json_is_object (usage))) {
        *why = "malformed chunk: choices must be an array, usage an object";
        return -1;
    }
    if (s_stream_start (self, chunk, out, out_len))
        return -1;
    //  Only the first choice: Anthropic answers have one.
    json_t *choice = json_array_get (choices, 0);
    json_t *delta = json_object_get (choice, "delta");
    json_t *content = json_object_get (delta, "content");
    json_t *refusal = json_object_get (delta, "refusal");
    json_t *calls = json_object_get (delta, "tool_calls");
    json_t *legacy = json_object_get (delta, "function_call");
    json_t *finish = json_object_get (choice, "finish_reason");
    if ((choice && !json_is_object (choice)) || (delta && !json_is_object (delta))
        || (content && !json_is_null (content) && !json_is_string (content))
        || (refusal && !json_is_null (refusal) && !json_is_string (refusal))
        || (calls && !json_is_null (calls) && !json_is_array (calls))
        || (finish && !json_is_null (finish) && !json_is_string (finish))) {
        *why = "malformed chunk: unexpected choice or delta shape";
        return -1;
    }
    if (s_stream_text (self, json_string_value (content), json_string_length (content), out,
                       out_len)
        || s_stream_text (self, json_string_value (refusal), json_string_length (refusal), out,
                          out_len))
        return -1;
    size_t index;
    json_t *call;
    json_array_foreach (calls, index, call) {
        if (s_stream_tool (self, call, out, out_len, why))
            return -1;
    }
    if (json_is_object (legacy)) {
        json_t *wrapped = json_pack ("{s:i, s:O}", "index", 0, "function", legacy);
        int rc = wrapped ? s_stream_tool (self, wrapped, out, out_len, why) : -1;
        json_decref (wrapped);
        if (rc)
            return -1;
    }
    *why = "out of memory";
    if (json_is_string (finish)) {
        self->stop_reason = s_stop_reason (json_string_value (finish));
        if (s_block_close (self, out, out_len))
            return -1;
    }
    if (json_is_object (usage)) {
        json_int_t prompt, cached, written, completion;
        s_read_usage (usage, &prompt, &cached, &written, &completion);
        self->input_tokens = prompt - cached - written;
        self->cache_read_tokens = cached;
        self->cache_write_tokens = written;
        self->output_tokens = completion;
        self->usage_seen = true;
    }
    //  The usage chunk follows the finish chunk; whichever comes last ends
    //  the message, and [DONE] ends it when the server sends no usage.
    if (self->stop_reason && self->usage_seen)
        return s_stream_finish (self, out, out_len);
    return 0;
}

//  Translate one complete SSE EVENT (LEN bytes, blank line included): its
//  data lines joined, comments and other fields ignored. 0, or -1 with the
//  stream failed.
static int
s_stream_event (aigw_messages_stream_t *self, const char *event, size_t len, char **out,
                size_t *out_len)
{
    char *data = NULL;
    size_t data_len = 0;
    bool has_data = false, error_event = false;
    size_t at = 0;
    while (at < len) {
        const char *line = event + at;
        const char *newline = memchr (line, '\n', len - at);
        size_t line_len = newline ? (size_t) (newline - line) : len - at;
        at += line_len + (newline ? 1 : 0);
        if (line_len && line[line_len - 1] == '\r')
            line_len--;
        if (line_len == 0 || line[0] == ':')
            continue;
        const char *colon = memchr (line, ':', line_len);
        size_t name_len = colon ? (size_t) (colon - line) : line_len;
        const char *value = colon ? colon + 1 : line + line_len;
        size_t value_len = (size_t) (line + line_len - value);
        if (value_len && *value == ' ') {
            value++;
            value_len--;
        }
        if (name_len == 4 && memcmp (line, "data", 4) == 0) {
            if ((has_data && aigw_adapter_append (&data, &data_len, "\n", 1))
                || aigw_adapter_append (&data, &data_len, value, value_len)) {
                free (data);
                return s_stream_fail (self, "out of memory", out, out_len);
            }
            has_data = true;
        }
        else if (name_len == 5 && memcmp (line, "event", 5) == 0)
            error_event = value_len == 5 && memcmp (value, "error", 5) == 0;
    }
    if (!has_data) {
        free (data);
        return 0;  //  a comment or keep-alive
    }
    int rc = 0;
    if (data_len == 6 && memcmp (data, "[DONE]", 6) == 0) {
        if (s_stream_finish (self, out, out_len))
            rc = s_stream_fail (self, "out of memory", out, out_len);
        free (data);
        return rc;
    }
    json_t *chunk = NULL;
    if (aigw_json_depth_ok (data, data_len, AIGW_MESSAGES_JSON_DEPTH_MAX))
        chunk = json_loadb (data, data_len, 0, NULL);
    free (data);
    const char *why = "malformed chunk: not a JSON object";
    if (json_is_object (chunk) && error_event && !json_object_get (chunk, "error")) {
        //  "event: error" with a bare {"message": ...}.
        self->done = true;
        rc = s_emit_error (out, out_len, "api_error",
                           json_string_value (json_object_get (chunk, "message")));
    }
    else if (json_is_object (chunk))
        rc = s_stream_chunk (self, chunk, out, out_len, &why);
    else
        rc = -1;
    json_decref (chunk);
    return rc ? s_stream_fail (self, why, out, out_len) : 0;
}

int
aigw_messages_stream_feed (aigw_messages_stream_t *self, const char *data, size_t len, char **out,
                           size_t *out_len)
{
    assert (self);
    assert (out && out_len);
    if (self->done || len == 0)
        return 0;
    if (!data || aigw_adapter_append (&self->pending, &self->pending_len, data, len))
        return s_stream_fail (self, data ? "out of memory" : "no data", out, out_len);
    //  An event ends at an empty line ("\n" or "\r\n"); lines before
    //  line_start have been seen to be non-empty already.
    size_t used = 0, at = self->line_start;
    int rc = 0;
    while (rc == 0 && !self->done && at < self->pending_len) {
        char *newline = memchr (self->pending + at, '\n', self->pending_len - at);
        if (!newline)
            break;
        size_t end = (size_t) (newline - self->pending);
        bool empty = end == at || (end == at + 1 && self->pending[at] == '\r');
        at = end + 1;
        if (empty) {
            rc = s_stream_event (self, self->pending + used, at - used, out, out_len);
            used = at;
        }
    }
    if (self->done) {
        free (self->pending);
        self->pending = NULL;
        self->pending_len = self->line_start = 0;
        return rc;
    }
    memmove (self->pending, self->pending + used, self->pending_len - used);
    self->pending_len -= used;
    self->line_start = at - used;
    if (self->pending_len > AIGW_MESSAGES_STREAM_PENDING_MAX)
        return s_stream_fail (self, "an upstream event exceeds the size limit", out, out_len);
    return rc;
}

int
aigw_messages_stream_error (aigw_messages_stream_t *self, const char *type, const char *message,
                            char **out, size_t *out_len)
{
    assert (self);
    assert (out && out_len);
    if (self->done)
        return 0;
    self->done = true;
    return s_emit_error (out, out_len, type, message);
}

//  --------------------------------------------------------------------------
//  The cache's text

json_t *
aigw_messages_chat_form (aigw_kind_t kind, const char *body, size_t len)
{
    body = body ? body : "";
    json_t *root = NULL;
    if (kind == AIGW_KIND_CHAT)
        root = json_loadb (body, len, 0, NULL);
    else if (kind == AIGW_KIND_MESSAGES) {
        size_t openai_len = 0;
        char *openai = aigw_messages_request_to_openai (body, len, &openai_len, NULL, NULL, 0);
        root = openai ? json_loadb (openai, openai_len, 0, NULL) : NULL;
        free (openai);
    }
    if (root && !json_is_object (root)) {
        json_decref (root);
        root = NULL;
    }
    return root;
}

//  CONTENT as one string when it is one (a string, or parts that are all
//  plain text with nothing else on them, joined by newlines): a new string
//  the caller frees, or NULL.
static char *
s_plain_text (json_t *content)
{
    if (json_is_string (content))
        return strdup (json_string_value (content));
    if (!json_is_array (content) || json_array_size (content) == 0)
        return NULL;
    size_t total = 0, i;
    json_t *part;
    json_array_foreach (content, i, part) {
        const char *type = json_string_value (json_object_get (part, "type"));
        json_t *text = json_object_get (part, "text");
        if (!type || strcmp (type, "text") || !json_is_string (text)
            || json_object_size (part) != 2)
            return NULL;
        total += json_string_length (text) + 1;
    }
    char *joined = malloc (total + 1);
    if (!joined)
        return NULL;
    size_t at = 0;
    json_array_foreach (content, i, part) {
        json_t *text = json_object_get (part, "text");
        if (i)
            joined[at++] = '\n';
        memcpy (joined + at, json_string_value (text), json_string_length (text));
        at += json_string_length (text);
    }
    joined[at] = 0;
    return joined;
}

char *
aigw_messages_cache_text (json_t *root, bool take, size_t *len)
{
    *len = 0;
    json_t *messages = json_object_get (root, "messages");
    size_t i;
    json_t *message;
    json_array_foreach (messages, i, message) {
        json_t *content = json_object_get (message, "content");
        if (!json_is_array (content))
            continue;
        char *text = s_plain_text (content);
        if (text)
            json_object_set_new (message, "content", json_string (text));
        free (text);
    }
    for (i = json_array_size (messages); i-- > 0;) {
        message = json_array_get (messages, i);
        const char *role = json_string_value (json_object_get (message, "role"));
        if (!role || strcmp (role, "user"))
            continue;
        json_t *content = json_object_get (message, "content");
        if (!json_is_string (content))
            return NULL;
        char *text = malloc (json_string_length (content) + 1);
        if (!text)
            return NULL;
        memcpy (text, json_string_value (content), json_string_length (content) + 1);
        *len = json_string_length (content);
        if (take)
            json_object_set_new (message, "content", json_null ());
        return text;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Selftest. The fixtures are tests/fixtures/messages/* (embedded by the
//  build, aigw_fixture.h, byte for byte); they follow the examples in each
//  provider's public API reference.

#include "aigw_anthropic.h"
#include "aigw_fixture.h"

//  The fixture tests/fixtures/messages/NAME, asserting it is there.
static const char *
s_fx (const char *name)
{
    return aigw_fixture_in ("messages", name);
}

//  String member KEY of OBJECT, or NULL; kept short for the asserts below.
static const char *
s_str (json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  True when member KEY of OBJECT is the string VALUE.
static bool
s_is (json_t *object, const char *key, const char *value)
{
    const char *have = s_str (object, key);
    return have && strcmp (have, value) == 0;
}

//  Parse TEXT (LEN bytes, which must be its length), free it, and return
//  the JSON object it holds.
static json_t *
s_test_parse (char *text, size_t len)
{
    assert (text && len == strlen (text));
    json_t *root = json_loadb (text, len, 0, NULL);
    assert (json_is_object (root));
    free (text);
    return root;
}

//  Translate the Anthropic REQUEST, asserting success and that *STREAM is
//  WANT_STREAM; the caller owns the OpenAI request.
static json_t *
s_test_request (const char *request, bool want_stream)
{
    char err[256] = "";
    size_t len = 0;
    bool stream = !want_stream;
    char *out = aigw_messages_request_to_openai (request, strlen (request), &len, &stream, err,
                                                 sizeof err);
    if (!out)
        fprintf (stderr, "messages: unexpected error: %s\n", err);
    assert (stream == want_stream);
    return s_test_parse (out, len);
}

//  Assert the Anthropic REQUEST is rejected with an error starting FIELD.
static void
s_test_bad_request (const char *request, const char *field)
{
    char err[256] = "";
    size_t len = 0;
    bool stream = true;
    char *out = aigw_messages_request_to_openai (request, strlen (request), &len, &stream, err,
                                                 sizeof err);
    if (out || strncmp (err, field, strlen (field)) != 0)
        fprintf (stderr, "messages: %s gave \"%s\", wanted %s\n", request, err, field);
    assert (!out && strncmp (err, field, strlen (field)) == 0 && !stream);
}

//  A minimal valid request with EXTRA members spliced in, into BUFFER.
static const char *
s_test_with (char *buffer, size_t size, const char *messages, const char *extra)
{
    snprintf (buffer, size, "{\"model\":\"m\",\"max_tokens\":10,\"messages\":%s%s%s}",
              messages ? messages : "[{\"role\":\"user\",\"content\":\"x\"}]", extra ? "," : "",
              extra ? extra : "");
    return buffer;
}

//  Translate the OpenAI RESPONSE with MODEL, asserting success.
static json_t *
s_test_response (const char *response, const char *model)
{
    char err[256] = "";
    size_t len = 0;
    char *out = aigw_messages_response_from_openai (response, strlen (response), model, &len, err,
                                                    sizeof err);
    if (!out)
        fprintf (stderr, "messages: unexpected error: %s\n", err);
    return s_test_parse (out, len);
}

//  The Anthropic request that aigw_anthropic builds from our OpenAI
//  translation of REQUEST: the round trip.
static json_t *
s_test_round_trip (const char *request)
{
    char err[256] = "";
    size_t len = 0, back_len = 0;
    char *openai
        = aigw_messages_request_to_openai (request, strlen (request), &len, NULL, err, sizeof err);
    assert (openai);
    char *back = aigw_anthropic_request_from_openai (openai, len, NULL, &back_len, err, sizeof err);
    if (!back)
        fprintf (stderr, "messages: round trip failed: %s\n", err);
    free (openai);
    return s_test_parse (back, back_len);
}

//  Feed SSE (LEN bytes) to a new stream in pieces of STEP bytes (0: whole),
//  or split once at SPLIT when STEP is SIZE_MAX. Returns the output, which
//  the caller frees; *RC gets the first non-zero feed result, *DONE the
//  final state.
static char *
s_test_feed (const char *sse, size_t len, size_t step, size_t split, const char *model,
             const char *id, int *rc, bool *done)
{
    aigw_messages_stream_t *stream = aigw_messages_stream_new (model, id);
    assert (stream);
    char *out = NULL;
    size_t out_len = 0;
    *rc = 0;
    if (step == SIZE_MAX) {
        int first = aigw_messages_stream_feed (stream, sse, split, &out, &out_len);
        int second = aigw_messages_stream_feed (stream, sse + split, len - split, &out, &out_len);
        *rc = first ? first : second;
    }
    else
        for (size_t at = 0; at < len; at += step ? step : len) {
            size_t piece = step && len - at > step ? step : len - at;
            int result = aigw_messages_stream_feed (stream, sse + at, piece, &out, &out_len);
            *rc = *rc ? *rc : result;
        }
    assert (out_len == (out ? strlen (out) : 0));
    *done = aigw_messages_stream_done (stream);
    aigw_messages_stream_destroy (&stream);
    aigw_messages_stream_destroy (&stream);
    assert (!stream);
    return out ? out : strdup ("");
}

//  Translate SSE whole, byte by byte and split at every point, asserting
//  identical output and results; returns the output, *RC and *DONE.
static char *
s_test_stream (const char *sse, const char *model, const char *id, int *rc, bool *done)
{
    size_t len = strlen (sse);
    char *whole = s_test_feed (sse, len, 0, 0, model, id, rc, done);
    int other_rc;
    bool other_done;
    char *bytes = s_test_feed (sse, len, 1, 0, model, id, &other_rc, &other_done);
    assert (strcmp (whole, bytes) == 0 && other_rc == *rc && other_done == *done);
    free (bytes);
    for (size_t split = 0; split <= len; split++) {
        char *halves = s_test_feed (sse, len, SIZE_MAX, split, model, id, &other_rc, &other_done);
        assert (strcmp (whole, halves) == 0 && other_rc == *rc && other_done == *done);
        free (halves);
    }
    return whole;
}

//  Split Anthropic SSE output into an array of parsed data objects,
//  asserting each event is "event: NAME\ndata: JSON\n\n" with data.type NAME.
static json_t *
s_test_events (const char *sse)
{
    json_t *events = json_array ();
    const char *at = sse;
    while (*at) {
        assert (strncmp (at, "event: ", 7) == 0);
        const char *name = at + 7;
        const char *newline = strchr (name, '\n');
        assert (newline && strncmp (newline + 1, "data: ", 6) == 0);
        const char *data = newline + 7;
        const char *end = strstr (data, "\n\n");
        assert (end && !memchr (data, '\n', (size_t) (end - data)));
        json_t *event = json_loadb (data, (size_t) (end - data), 0, NULL);
        assert (json_is_object (event));
        const char *type = s_str (event, "type");
        assert (type && strlen (type) == (size_t) (newline - name)
                && strncmp (type, name, strlen (type)) == 0);
        json_array_append_new (events, event);
        at = end + 2;
    }
    return events;
}

//  The event types of EVENTS joined with spaces, into BUFFER.
static const char *
s_test_types (json_t *events, char *buffer, size_t size)
{
    size_t index, at = 0;
    json_t *event;
    buffer[0] = 0;
    json_array_foreach (events, index, event) {
        int written
            = snprintf (buffer + at, size - at, "%s%s", index ? " " : "", s_str (event, "type"));
        assert (written > 0 && (size_t) written < size - at);
        at += (size_t) written;
    }
    return buffer;
}

//  Feed BYTES (LEN) to a new stream in one piece, for inputs that must
//  simply not crash; returns the feed result and frees everything.
static int
s_test_survive (const char *bytes, size_t len)
{
    aigw_messages_stream_t *stream = aigw_messages_stream_new (NULL, NULL);
    char *out = NULL;
    size_t out_len = 0;
    int rc = aigw_messages_stream_feed (stream, bytes, len, &out, &out_len);
    assert (out_len == (out ? strlen (out) : 0));
    free (out);
    aigw_messages_stream_destroy (&stream);
    return rc;
}

void
aigw_messages_test (bool verbose)
{
    const char *fx_anthropic_request_images = s_fx ("anthropic_request_images.json");
    const char *fx_anthropic_request_multiturn = s_fx ("anthropic_request_multiturn.json");
    const char *fx_anthropic_request_tools = s_fx ("anthropic_request_tools.json");
    const char *fx_openai_response_text = s_fx ("openai_response_text.json");
    const char *fx_openai_response_tool_calls = s_fx ("openai_response_tool_calls.json");
    const char *fx_openai_stream_error = s_fx ("openai_stream_error.sse");
    const char *fx_openai_stream_text = s_fx ("openai_stream_text.sse");
    const char *fx_openai_stream_tools = s_fx ("openai_stream_tools.sse");

    //  System blocks, turns, thinking dropped, sampling, stop, stream, user.
    json_t *request = s_test_request (fx_anthropic_request_multiturn, true);
    assert (s_is (request, "model", "gpt-4o"));
    assert (json_integer_value (json_object_get (request, "max_tokens")) == 1024);
    assert (json_real_value (json_object_get (request, "temperature")) == 0.5);
    assert (json_real_value (json_object_get (request, "top_p")) == 0.9);
    json_t *stop = json_object_get (request, "stop");
    assert (json_array_size (stop) == 2);
    assert (strcmp (json_string_value (json_array_get (stop, 0)), "\n\nHuman:") == 0);
    assert (json_is_true (json_object_get (request, "stream")));
    assert (json_is_true (
        json_object_get (json_object_get (request, "stream_options"), "include_usage")));
    assert (s_is (request, "user", "user-1234"));
    assert (!json_object_get (request, "top_k") && !json_object_get (request, "thinking")
            && !json_object_get (request, "metadata") && !json_object_get (request, "system")
            && !json_object_get (request, "stop_sequences"));
    json_t *messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 4);
    json_t *message = json_array_get (messages, 0);
    assert (s_is (message, "role", "system"));
    //  A marked system prompt stays text parts, the mark on its own part.
    json_t *system_parts = json_object_get (message, "content");
    assert (json_array_size (system_parts) == 2);
    assert (s_is (json_array_get (system_parts, 0), "text", "You are a terse assistant."));
    assert (!json_object_get (json_array_get (system_parts, 0), "cache_control"));
    assert (s_is (json_object_get (json_array_get (system_parts, 1), "cache_control"), "type",
                  "ephemeral"));
    message = json_array_get (messages, 1);
    assert (s_is (message, "role", "user") && s_is (message, "content", "Hello there."));
    message = json_array_get (messages, 2);
    assert (s_is (message, "role", "assistant") && s_is (message, "content", "Hi, I'm here."));
    assert (!json_object_get (message, "tool_calls"));
    message = json_array_get (messages, 3);
    json_t *parts = json_object_get (message, "content");
    assert (s_is (message, "role", "user") && json_array_size (parts) == 2);
    assert (s_is (json_array_get (parts, 0), "type", "text"));
    assert (s_is (json_array_get (parts, 1), "text", " in plain English?"));
    json_decref (request);

    //  Marks on assistant blocks: its text as parts, each with its own
    //  mark; a marked tool_use's mark on its call.
    request = s_test_request (
        "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":"
        "\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":"
        "\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{},\"cache_control\":{\"type\":"
        "\"ephemeral\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"t1\",\"content\":\"r\"}]}]}",
        false);
    message = json_array_get (json_object_get (request, "messages"), 1);
    parts = json_object_get (message, "content");
    assert (s_is (message, "role", "assistant") && json_array_size (parts) == 2);
    assert (s_is (json_array_get (parts, 0), "text", "a"));
    assert (!json_object_get (json_array_get (parts, 0), "cache_control"));
    assert (
        s_is (json_object_get (json_array_get (parts, 1), "cache_control"), "type", "ephemeral"));
    assert (s_is (json_object_get (json_array_get (json_object_get (message, "tool_calls"), 0),
                                   "cache_control"),
                  "type", "ephemeral"));
    json_decref (request);

    //  Tools, tool_choice, tool_use and tool_result (results first, errors
    //  prefixed, text blocks joined), a plain string system.
    request = s_test_request (fx_anthropic_request_tools, false);
    assert (!json_object_get (request, "stream") && !json_object_get (request, "stream_options"));
    json_t *tools = json_object_get (request, "tools");
    assert (json_array_size (tools) == 2);
    json_t *function = json_object_get (json_array_get (tools, 0), "function");
    assert (s_is (json_array_get (tools, 0), "type", "function"));
    assert (s_is (function, "name", "get_weather"));
    assert (s_is (function, "description", "Current weather for a city"));
    assert (json_array_size (json_object_get (json_object_get (function, "parameters"), "required"))
            == 1);
    function = json_object_get (json_array_get (tools, 1), "function");
    assert (s_is (function, "name", "get_time") && !json_object_get (function, "description"));
    json_t *choice = json_object_get (request, "tool_choice");
    assert (s_is (choice, "type", "function"));
    assert (s_is (json_object_get (choice, "function"), "name", "get_weather"));
    assert (json_is_false (json_object_get (request, "parallel_tool_calls")));
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 6);
    assert (s_is (json_array_get (messages, 0), "content", "Use the tools."));
    message = json_array_get (messages, 2);
    assert (s_is (message, "role", "assistant") && s_is (message, "content", "Let me check both."));
    json_t *calls = json_object_get (message, "tool_calls");
    assert (json_array_size (calls) == 2);
    json_t *call = json_array_get (calls, 1);
    assert (s_is (call, "id", "toolu_02") && s_is (call, "type", "function"));
    function = json_object_get (call, "function");
    assert (s_is (function, "name", "get_weather"));
    assert (s_is (function, "arguments", "{\"city\":\"Rome\"}"));
    message = json_array_get (messages, 3);
    assert (s_is (message, "role", "tool") && s_is (message, "tool_call_id", "toolu_01"));
    assert (s_is (message, "content", "18C, cloudy"));
    message = json_array_get (messages, 4);
    assert (s_is (message, "role", "tool") && s_is (message, "tool_call_id", "toolu_02"));
    assert (s_is (message, "content", "Error: service down\nretry later"));
    message = json_array_get (messages, 5);
    assert (s_is (message, "role", "user") && s_is (message, "content", "Which is warmer?"));
    json_decref (request);

    //  Images by base64 and by URL.
    request = s_test_request (fx_anthropic_request_images, false);
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 3);
    parts = json_object_get (json_array_get (messages, 0), "content");
    assert (json_array_size (parts) == 3);
    assert (s_is (json_array_get (parts, 0), "type", "image_url"));
    assert (s_is (json_object_get (json_array_get (parts, 0), "image_url"), "url",
                  "data:image/png;base64,iVBORw0KGgo="));
    assert (s_is (json_object_get (json_array_get (parts, 1), "image_url"), "url",
                  "https://example.com/cat.jpg"));
    assert (s_is (json_array_get (parts, 2), "text", "Compare these images."));
    json_decref (request);

    //  Smaller shapes: an image inside a tool_result moves to the user
    //  message after it; documents; tool_choice variants; no tools, no choice.
    char body[1024];
    request = s_test_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\""
                     ":\"t1\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"url\","
                     "\"url\":\"https://x/y.png\"}}]},{\"type\":\"document\",\"title\":\"a.pdf\","
                     "\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\","
                     "\"data\":\"JVBE\"}}]}]",
                     "\"tools\":[{\"name\":\"f\"}],\"tool_choice\":{\"type\":\"any\"}"),
        false);
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 2);
    assert (s_is (json_array_get (messages, 0), "content", ""));
    parts = json_object_get (json_array_get (messages, 1), "content");
    assert (json_array_size (parts) == 2);
    assert (
        s_is (json_object_get (json_array_get (parts, 0), "image_url"), "url", "https://x/y.png"));
    assert (s_is (json_object_get (json_array_get (parts, 1), "file"), "file_data",
                  "data:application/pdf;base64,JVBE"));
    assert (s_is (request, "tool_choice", "required"));
    assert (s_is (
        json_object_get (
            json_object_get (json_array_get (json_object_get (request, "tools"), 0), "function"),
            "parameters"),
        "type", "object"));
    json_decref (request);
    static const struct {
        const char *anthropic;  //  tool_choice type
        const char *openai;     //  tool_choice string
    } choices[] = {{"auto", "auto"}, {"any", "required"}, {"none", "none"}};
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        char extra[128];
        snprintf (extra, sizeof extra,
                  "\"tools\":[{\"name\":\"f\",\"input_schema\":{}}],"
                  "\"tool_choice\":{\"type\":\"%s\"}",
                  choices[i].anthropic);
        request = s_test_request (s_test_with (body, sizeof body, NULL, extra), false);
        assert (s_is (request, "tool_choice", choices[i].openai));
        assert (!json_object_get (request, "parallel_tool_calls"));
        json_decref (request);
    }
    request = s_test_request (s_test_with (body, sizeof body, NULL,
                                           "\"tool_choice\":{\"type\":\"any\"},\"stream\":false"),
                              false);
    assert (!json_object_get (request, "tool_choice") && !json_object_get (request, "tools"));
    json_decref (request);

    //  Bad requests: NULL, and an error naming the field.
    s_test_bad_request ("not json", "body");
    s_test_bad_request ("[1,2]", "body");
    s_test_bad_request ("{\"max_tokens\":1,\"messages\":[]}", "model");
    s_test_bad_request ("{\"model\":7,\"max_tokens\":1}", "model");
    s_test_bad_request ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        "max_tokens");
    const char *limits[] = {"0", "-3", "1.5", "\"10\"", "null"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char limit[128];
        snprintf (limit, sizeof limit,
                  "{\"model\":\"m\",\"max_tokens\":%s,\"messages\":[{\"role\":\"user\","
                  "\"content\":\"x\"}]}",
                  limits[i]);
        s_test_bad_request (limit, "max_tokens");
    }
    s_test_bad_request ("{\"model\":\"m\",\"max_tokens\":1}", "messages");
    s_test_bad_request (s_test_with (body, sizeof body, "[]", NULL), "messages");
    s_test_bad_request (s_test_with (body, sizeof body, "{}", NULL), "messages");
    s_test_bad_request (s_test_with (body, sizeof body, "[7]", NULL), "messages[0]");
    s_test_bad_request (s_test_with (body, sizeof body, "[{\"content\":\"x\"}]", NULL),
                        "messages[0].role");
    s_test_bad_request (
        s_test_with (body, sizeof body, "[{\"role\":\"system\",\"content\":\"x\"}]", NULL),
        "messages[0].role");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":7}]",
                     NULL),
        "messages[1].content");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\""
                     ":\"b\"},{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]",
                     NULL),
        "messages[2].content[0].type: unknown block type");
    s_test_bad_request (s_test_with (body, sizeof body,
                                     "[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]", NULL),
                        "messages[0].content[0].type");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":5}]}]", NULL),
        "messages[0].content[0].text");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
                     "{\"type\":\"file\"}}]}]",
                     NULL),
        "messages[0].content[0].source.type");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
                     "{\"type\":\"base64\",\"data\":\"x\"}}]}]",
                     NULL),
        "messages[0].content[0].source.media_type");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\","
                     "\"name\":\"f\",\"input\":{}}]}]",
                     NULL),
        "messages[0].content[0].type");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":"
                     "\"x\"}]}]",
                     NULL),
        "messages[0].content[0].tool_use_id");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\""
                     ":\"t\",\"content\":[{\"type\":\"video\"}]}]}]",
                     NULL),
        "messages[0].content[0].content[0].type");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\""
                     ":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":[1]}]}]",
                     NULL),
        "messages[1].content[0].input");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\""
                     ":[{\"type\":\"tool_use\",\"name\":\"f\",\"input\":{}}]}]",
                     NULL),
        "messages[1].content[0].id");
    s_test_bad_request (
        s_test_with (body, sizeof body,
                     "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\""
                     ":[{\"type\":\"image\"}]}]",
                     NULL),
        "messages[1].content[0].type");
    s_test_bad_request (
        s_test_with (body, sizeof body, "[{\"role\":\"user\",\"content\":[]}]", NULL),
        "messages: no message");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"system\":5"), "system");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"system\":[{\"type\":\"image\"}]"),
                        "system[0].type");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"temperature\":\"hot\""),
                        "temperature");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"top_p\":[]"), "top_p");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"stop_sequences\":\"END\""),
                        "stop_sequences");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"stop_sequences\":[\"a\",1]"),
                        "stop_sequences[1]");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"stream\":\"yes\""), "stream");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"metadata\":{\"user_id\":1}"),
                        "metadata.user_id");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"tools\":{}"), "tools");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"tools\":[{}]"), "tools[0].name");
    s_test_bad_request (s_test_with (body, sizeof body, NULL,
                                     "\"tools\":[{\"name\":\"f\"},{\"name\":\"g\","
                                     "\"input_schema\":1}]"),
                        "tools[1].input_schema");
    s_test_bad_request (
        s_test_with (body, sizeof body, NULL,
                     "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]"),
        "tools[0].type");
    s_test_bad_request (s_test_with (body, sizeof body, NULL, "\"tool_choice\":\"auto\""),
                        "tool_choice");
    s_test_bad_request (
        s_test_with (body, sizeof body, NULL, "\"tool_choice\":{\"type\":\"maybe\"}"),
        "tool_choice.type");
    s_test_bad_request (
        s_test_with (body, sizeof body, NULL, "\"tool_choice\":{\"type\":\"tool\"}"),
        "tool_choice.name");
    char deep[AIGW_MESSAGES_JSON_DEPTH_MAX * 2 + 64];
    int at = snprintf (deep, sizeof deep, "{\"model\":\"m\",\"x\":");
    for (int i = 0; i < AIGW_MESSAGES_JSON_DEPTH_MAX; i++)
        deep[at++] = '[';
    for (int i = 0; i < AIGW_MESSAGES_JSON_DEPTH_MAX; i++)
        deep[at++] = ']';
    snprintf (deep + at, sizeof deep - (size_t) at, "}");
    s_test_bad_request (deep, "body");
    size_t len = 0;
    assert (!aigw_messages_request_to_openai (NULL, 0, &len, NULL, NULL, 0));
    assert (!aigw_messages_request_to_openai ("{}", 2, NULL, NULL, NULL, 0));

    //  Round trip through aigw_anthropic: what the client said survives.
    request = s_test_round_trip (fx_anthropic_request_multiturn);
    json_t *original = json_loads (fx_anthropic_request_multiturn, 0, NULL);
    //  The system blocks come back as they went, cache_control included.
    assert (json_equal (json_object_get (request, "system"), json_object_get (original, "system")));
    static const char *kept[]
        = {"model", "max_tokens", "temperature", "top_p", "stop_sequences", "stream"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        assert (
            json_equal (json_object_get (request, kept[i]), json_object_get (original, kept[i])));
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 3);
    assert (s_is (json_array_get (json_object_get (json_array_get (messages, 0), "content"), 0),
                  "text", "Hello there."));
    assert (s_is (json_array_get (messages, 1), "role", "assistant"));
    assert (s_is (json_array_get (json_object_get (json_array_get (messages, 1), "content"), 0),
                  "text", "Hi, I'm here."));
    assert (json_equal (
        json_object_get (json_array_get (messages, 2), "content"),
        json_object_get (json_array_get (json_object_get (original, "messages"), 2), "content")));
    json_decref (original);
    json_decref (request);

    request = s_test_round_trip (fx_anthropic_request_tools);
    original = json_loads (fx_anthropic_request_tools, 0, NULL);
    assert (s_is (request, "system", "Use the tools."));
    assert (json_equal (json_object_get (request, "tools"), json_object_get (original, "tools")));
    assert (json_equal (json_object_get (request, "tool_choice"),
                        json_object_get (original, "tool_choice")));
    messages = json_object_get (request, "messages");
    json_t *original_messages = json_object_get (original, "messages");
    assert (json_array_size (messages) == 3);
    assert (json_equal (json_object_get (json_array_get (messages, 1), "content"),
                        json_object_get (json_array_get (original_messages, 1), "content")));
    json_t *results = json_object_get (json_array_get (messages, 2), "content");
    assert (json_array_size (results) == 3);
    assert (s_is (json_array_get (results, 0), "tool_use_id", "toolu_01"));
    assert (s_is (json_array_get (results, 0), "content", "18C, cloudy"));
    assert (s_is (json_array_get (results, 1), "tool_use_id", "toolu_02"));
    assert (s_is (json_array_get (results, 1), "content", "Error: service down\nretry later"));
    assert (s_is (json_array_get (results, 2), "text", "Which is warmer?"));
    json_decref (original);
    json_decref (request);

    request = s_test_round_trip (fx_anthropic_request_images);
    original = json_loads (fx_anthropic_request_images, 0, NULL);
    messages = json_object_get (request, "messages");
    original_messages = json_object_get (original, "messages");
    assert (json_array_size (messages) == 3);
    assert (json_equal (json_object_get (json_array_get (messages, 0), "content"),
                        json_object_get (json_array_get (original_messages, 0), "content")));
    assert (json_integer_value (json_object_get (request, "max_tokens")) == 300);
    json_decref (original);
    json_decref (request);

    //  Responses: text, id, model, stop reason, usage.
    json_t *response = s_test_response (fx_openai_response_text, "claude-via-gpt");
    assert (s_is (response, "id", "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT"));
    assert (s_is (response, "type", "message") && s_is (response, "role", "assistant"));
    assert (s_is (response, "model", "claude-via-gpt"));
    json_t *content = json_object_get (response, "content");
    assert (json_array_size (content) == 1);
    assert (s_is (json_array_get (content, 0), "type", "text"));
    assert (s_is (json_array_get (content, 0), "text", "Hello! How can I assist you today?"));
    assert (s_is (response, "stop_reason", "end_turn"));
    assert (json_is_null (json_object_get (response, "stop_sequence")));
    json_t *usage = json_object_get (response, "usage");
    assert (json_integer_value (json_object_get (usage, "input_tokens")) == 19);
    assert (json_integer_value (json_object_get (usage, "output_tokens")) == 10);
    assert (!json_object_get (usage, "cache_read_input_tokens"));
    json_decref (response);

    //  Tool calls: parsed inputs, empty arguments as {}, cached tokens.
    response = s_test_response (fx_openai_response_tool_calls, NULL);
    assert (s_is (response, "id", "msg_abc123") && s_is (response, "model", "gpt-4o-mini"));
    content = json_object_get (response, "content");
    assert (json_array_size (content) == 2);
    json_t *block = json_array_get (content, 0);
    assert (s_is (block, "type", "tool_use") && s_is (block, "id", "call_abc123"));
    assert (s_is (block, "name", "get_weather"));
    assert (s_is (json_object_get (block, "input"), "city", "Boston"));
    block = json_array_get (content, 1);
    assert (s_is (block, "name", "get_time"));
    assert (json_is_object (json_object_get (block, "input"))
            && json_object_size (json_object_get (block, "input")) == 0);
    assert (s_is (response, "stop_reason", "tool_use"));
    usage = json_object_get (response, "usage");
    assert (json_integer_value (json_object_get (usage, "input_tokens")) == 18);
    assert (json_integer_value (json_object_get (usage, "cache_read_input_tokens")) == 64);
    assert (json_integer_value (json_object_get (usage, "output_tokens")) == 17);
    json_decref (response);

    //  And back to OpenAI through aigw_anthropic: the calls survive.
    char err[256];
    char *text = aigw_messages_response_from_openai (fx_openai_response_tool_calls,
                                                     strlen (fx_openai_response_tool_calls), NULL,
                                                     &len, err, sizeof err);
    size_t back_len = 0;
    char *back = aigw_anthropic_response_to_openai (text, len, NULL, &back_len, err, sizeof err);
    free (text);
    response = s_test_parse (back, back_len);
    choice = json_array_get (json_object_get (response, "choices"), 0);
    assert (s_is (choice, "finish_reason", "tool_calls"));
    calls = json_object_get (json_object_get (choice, "message"), "tool_calls");
    assert (json_array_size (calls) == 2);
    assert (s_is (json_array_get (calls, 0), "id", "call_abc123"));
    assert (s_is (json_object_get (json_array_get (calls, 0), "function"), "arguments",
                  "{\"city\":\"Boston\"}"));
    json_decref (response);

    //  Unparsable or non-object arguments are kept raw; finish reasons map.
    response = s_test_response (
        "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"ok\",\"tool_calls\":[{"
        "\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}},{\"id\":\"c2\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"[1]\"}}]}}]}",
        "m");
    assert (strncmp (s_str (response, "id"), "msg_", 4) == 0
            && strlen (s_str (response, "id")) > 4);
    content = json_object_get (response, "content");
    assert (json_array_size (content) == 3 && s_is (json_array_get (content, 0), "text", "ok"));
    block = json_array_get (content, 1);
    assert (strncmp (s_str (block, "id"), "toolu_", 6) == 0);
    assert (s_is (json_object_get (block, "input"), "_raw", "{not json"));
    assert (s_is (json_object_get (json_array_get (content, 2), "input"), "_raw", "[1]"));
    assert (s_is (response, "stop_reason", "tool_use"));
    usage = json_object_get (response, "usage");
    assert (json_integer_value (json_object_get (usage, "input_tokens")) == 0);
    json_decref (response);
    static const struct {
        const char *finish;  //  OpenAI finish_reason
        const char *stop;    //  Anthropic stop_reason
    } reasons[] = {{"stop", "end_turn"},
                   {"length", "max_tokens"},
                   {"tool_calls", "tool_use"},
                   {"function_call", "tool_use"},
                   {"content_filter", "refusal"}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        snprintf (body, sizeof body,
                  "{\"id\":\"chatcmpl-1\",\"model\":\"g\",\"choices\":[{\"message\":{"
                  "\"content\":null,\"refusal\":\"no\"},\"finish_reason\":\"%s\"}]}",
                  reasons[i].finish);
        response = s_test_response (body, NULL);
        assert (s_is (response, "stop_reason", reasons[i].stop));
        assert (s_is (json_array_get (json_object_get (response, "content"), 0), "text", "no"));
        json_decref (response);
    }
    static const struct {
        const char *body;   //  a bad OpenAI response
        const char *field;  //  what the error must start with
    } bad_responses[] = {
        {"nope", "body"},
        {"[]", "body"},
        {"{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}",
         "upstream error: Rate limit reached"},
        {"{\"id\":\"x\",\"choices\":[]}", "choices"},
        {"{\"id\":\"x\",\"choices\":[{}]}", "choices[0].message"},
        {"{\"id\":\"x\",\"choices\":[{\"message\":{\"tool_calls\":{}}}]}",
         "choices[0].message.tool_calls"},
        {"{\"id\":\"x\",\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{}}]}}]}",
         "choices[0].message.tool_calls[0].function.name"},
    };
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses[0]; i++) {
        const char *bad = bad_responses[i].body;
        err[0] = 0;
        assert (
            !aigw_messages_response_from_openai (bad, strlen (bad), "m", &len, err, sizeof err));
        assert (strncmp (err, bad_responses[i].field, strlen (bad_responses[i].field)) == 0);
    }

    //  The error body.
    text = aigw_messages_error_body ("invalid_request_error", "max_tokens: \"bad\"", &len);
    json_t *error = s_test_parse (text, len);
    assert (s_is (error, "type", "error"));
    assert (s_is (json_object_get (error, "error"), "type", "invalid_request_error"));
    assert (s_is (json_object_get (error, "error"), "message", "max_tokens: \"bad\""));
    json_decref (error);
    text = aigw_messages_error_body (NULL, NULL, NULL);
    error = s_test_parse (text, strlen (text));
    assert (s_is (json_object_get (error, "error"), "type", "api_error"));
    json_decref (error);

    //  A text stream: the whole of it, byte by byte and split anywhere agree.
    int rc;
    bool done;
    char types[512];
    char *sse = s_test_stream (fx_openai_stream_text, "claude-via-gpt", NULL, &rc, &done);
    assert (rc == 0 && done);
    json_t *events = s_test_events (sse);
    assert (strcmp (s_test_types (events, types, sizeof types),
                    "message_start content_block_start content_block_delta "
                    "content_block_delta content_block_stop message_delta message_stop")
            == 0);
    json_t *start = json_object_get (json_array_get (events, 0), "message");
    assert (s_is (start, "id", "msg_123") && s_is (start, "model", "claude-via-gpt"));
    assert (s_is (start, "type", "message") && s_is (start, "role", "assistant"));
    assert (json_is_array (json_object_get (start, "content"))
            && json_array_size (json_object_get (start, "content")) == 0);
    assert (json_is_null (json_object_get (start, "stop_reason")));
    usage = json_object_get (start, "usage");
    assert (json_integer_value (json_object_get (usage, "input_tokens")) == 0
            && json_is_integer (json_object_get (usage, "output_tokens")));
    json_t *event = json_array_get (events, 1);
    assert (json_integer_value (json_object_get (event, "index")) == 0);
    assert (s_is (json_object_get (event, "content_block"), "type", "text"));
    assert (s_is (json_object_get (event, "content_block"), "text", ""));
    json_t *delta = json_object_get (json_array_get (events, 2), "delta");
    assert (s_is (delta, "type", "text_delta") && s_is (delta, "text", "Hello"));
    delta = json_object_get (json_array_get (events, 3), "delta");
    assert (s_is (delta, "text", " there, \"friend\" \303\251"));
    assert (json_integer_value (json_object_get (json_array_get (events, 4), "index")) == 0);
    event = json_array_get (events, 5);
    assert (s_is (json_object_get (event, "delta"), "stop_reason", "end_turn"));
    assert (json_is_null (json_object_get (json_object_get (event, "delta"), "stop_sequence")));
    usage = json_object_get (event, "usage");
    assert (json_integer_value (json_object_get (usage, "input_tokens")) == 9);
    assert (json_integer_value (json_object_get (usage, "output_tokens")) == 12);
    json_decref (events);
    free (sse);

    //  A tool stream: text, then two tool_use blocks whose partial_json
    //  joins to the arguments; id and model from the chunks.
    sse = s_test_stream (fx_openai_stream_tools, NULL, NULL, &rc, &done);
    assert (rc == 0 && done);
    events = s_test_events (sse);
    assert (strcmp (s_test_types (events, types, sizeof types),
                    "message_start content_block_start content_block_delta content_block_stop "
                    "content_block_start content_block_delta content_block_delta "
                    "content_block_delta content_block_stop content_block_start "
                    "content_block_delta content_block_stop message_delta message_stop")
            == 0);
    start = json_object_get (json_array_get (events, 0), "message");
    assert (s_is (start, "id", "msg_123") && s_is (start, "model", "gpt-4o-mini"));
    char arguments[2][64] = {"", ""};
    size_t index;
    json_array_foreach (events, index, event) {
        json_t *block_index = json_object_get (event, "index");
        if (s_is (event, "type", "content_block_start")) {
            block = json_object_get (event, "content_block");
            json_int_t expected = json_integer_value (block_index);
            assert (expected >= 0 && expected <= 2);
            if (expected == 0)
                assert (s_is (block, "type", "text"));
            else {
                assert (s_is (block, "type", "tool_use"));
                assert (s_is (block, "id", expected == 1 ? "call_1" : "call_2"));
                assert (s_is (block, "name", expected == 1 ? "get_weather" : "get_time"));
                assert (json_object_size (json_object_get (block, "input")) == 0);
            }
        }
        delta = json_object_get (event, "delta");
        if (s_is (delta, "type", "input_json_delta")) {
            json_int_t which = json_integer_value (block_index) - 1;
            assert (which == 0 || which == 1);
            strncat (arguments[which], s_str (delta, "partial_json"),
                     sizeof arguments[which] - strlen (arguments[which]) - 1);
        }
    }
    json_t *input = json_loads (arguments[0], 0, NULL);
    assert (json_object_size (input) == 1 && s_is (input, "city", "Paris"));
    json_decref (input);
    assert (strcmp (arguments[1], "{}") == 0);
    event = json_array_get (events, 12);
    assert (s_is (json_object_get (event, "delta"), "stop_reason", "tool_use"));
    usage = json_object_get (event, "usage");
    assert (json_integer_value (json_object_get (usage, "input_tokens")) == 20);
    assert (json_integer_value (json_object_get (usage, "cache_read_input_tokens")) == 100);
    assert (json_integer_value (json_object_get (usage, "output_tokens")) == 30);
    json_decref (events);
    free (sse);

    //  An upstream error event ends the stream with an Anthropic error.
    sse = s_test_stream (fx_openai_stream_error, "m", "msg_given", &rc, &done);
    assert (rc == 0 && done);
    events = s_test_events (sse);
    assert (strcmp (s_test_types (events, types, sizeof types),
                    "message_start content_block_start content_block_delta error")
            == 0);
    assert (s_is (json_object_get (json_array_get (events, 0), "message"), "id", "msg_given"));
    error = json_object_get (json_array_get (events, 3), "error");
    assert (s_is (error, "type", "api_error"));
    assert (s_is (error, "message", "The server had an error while processing your request."));
    json_decref (events);
    free (sse);

    //  [DONE] without a usage chunk still ends the message; bytes after the
    //  end are ignored.
    const char *short_stream = "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"},"
                               "\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\ndata: {\"x\":";
    sse = s_test_stream (short_stream, "m", "msg_1", &rc, &done);
    assert (rc == 0 && done);
    events = s_test_events (sse);
    assert (strcmp (s_test_types (events, types, sizeof types),
                    "message_start content_block_start content_block_delta content_block_stop "
                    "message_delta message_stop")
            == 0);
    event = json_array_get (events, 4);
    assert (s_is (json_object_get (event, "delta"), "stop_reason", "max_tokens"));
    usage = json_object_get (event, "usage");
    assert (!json_object_get (usage, "input_tokens")
            && json_integer_value (json_object_get (usage, "output_tokens")) == 0);
    json_decref (events);
    free (sse);

    //  A tool call without an id (some servers) gets one made from the
    //  message id, the same on every run.
    sse = s_test_stream ("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":"
                         "{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n",
                         "m", "msg_7", &rc, &done);
    assert (rc == 0 && !done);
    events = s_test_events (sse);
    block = json_object_get (json_array_get (events, 1), "content_block");
    assert (s_is (block, "id", "toolu_7_0") && s_is (block, "name", "f"));
    json_decref (events);
    free (sse);

    //  Malformed streams fail with an Anthropic error event appended.
    static const char *malformed[] = {
        "data: nope\n\n",
        "data: [1]\n\n",
        "data: {\"choices\":{}}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":5}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1,\"id\":\"a\","
        "\"function\":{\"name\":\"f\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":99999,\"id\":\"a\","
        "\"function\":{\"name\":\"f\"}}]}}]}\n\n",
        //  Arguments for call 0 after call 1 began: blocks cannot interleave.
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\","
        "\"function\":{\"name\":\"f\"}},{\"index\":1,\"id\":\"b\",\"function\":{"
        "\"name\":\"g\"}},{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        sse = s_test_stream (malformed[i], "m", "msg_1", &rc, &done);
        if (rc != -1)
            fprintf (stderr, "messages: malformed stream %zu gave %d\n", i, rc);
        assert (rc == -1 && done);
        events = s_test_events (sse);
        event = json_array_get (events, json_array_size (events) - 1);
        assert (s_is (event, "type", "error"));
        assert (s_is (json_object_get (event, "error"), "type", "api_error"));
        json_decref (events);
        free (sse);
    }

    //  A partial event past the cap fails; the caller's own error marks the
    //  stream done, once.
    aigw_messages_stream_t *stream = aigw_messages_stream_new ("m", "msg_1");
    char *out = NULL;
    size_t out_len = 0;
    char *flood = malloc (AIGW_MESSAGES_STREAM_PENDING_MAX / 4);
    assert (flood);
    memset (flood, 'a', AIGW_MESSAGES_STREAM_PENDING_MAX / 4);
    memcpy (flood, "data: ", 6);
    for (int i = 0; i < 4; i++)
        assert (aigw_messages_stream_feed (stream, flood, AIGW_MESSAGES_STREAM_PENDING_MAX / 4,
                                           &out, &out_len)
                == 0);
    assert (!aigw_messages_stream_done (stream) && out == NULL);
    assert (aigw_messages_stream_feed (stream, "a", 1, &out, &out_len) == -1);
    assert (aigw_messages_stream_done (stream) && strstr (out, "event: error\n"));
    free (flood);
    free (out);
    aigw_messages_stream_destroy (&stream);
    stream = aigw_messages_stream_new (NULL, NULL);
    out = NULL;
    out_len = 0;
    assert (aigw_messages_stream_error (stream, "overloaded_error", "upstream went away", &out,
                                        &out_len)
            == 0);
    assert (aigw_messages_stream_done (stream));
    assert (aigw_messages_stream_error (stream, NULL, "again", &out, &out_len) == 0);
    assert (aigw_messages_stream_feed (stream, "data: [DONE]\n\n", 14, &out, &out_len) == 0);
    events = s_test_events (out);
    assert (json_array_size (events) == 1);
    error = json_object_get (json_array_get (events, 0), "error");
    assert (s_is (error, "type", "overloaded_error")
            && s_is (error, "message", "upstream went away"));
    json_decref (events);
    free (out);
    aigw_messages_stream_destroy (&stream);

    //  No crash on damaged input: every prefix of a stream, and the stream
    //  and a request with each byte replaced by a troublesome one.
    size_t sse_len = strlen (fx_openai_stream_tools);
    char *damaged = malloc (sse_len + 1);
    assert (damaged);
    for (size_t i = 0; i <= sse_len; i++)
        assert (s_test_survive (fx_openai_stream_tools, i) == 0);
    static const char troublesome[] = {'"', '{', '\n', '0', ':'};
    for (size_t t = 0; t < sizeof troublesome; t++)
        for (size_t i = 0; i < sse_len; i++) {
            memcpy (damaged, fx_openai_stream_tools, sse_len + 1);
            damaged[i] = troublesome[t];
            s_test_survive (damaged, sse_len);
        }
    free (damaged);
    size_t request_len = strlen (fx_anthropic_request_tools);
    damaged = malloc (request_len + 1);
    assert (damaged);
    for (size_t t = 0; t < sizeof troublesome; t++)
        for (size_t i = 0; i < request_len; i++) {
            memcpy (damaged, fx_anthropic_request_tools, request_len + 1);
            damaged[i] = troublesome[t];
            err[0] = 0;
            char *result = aigw_messages_request_to_openai (damaged, request_len, &len, NULL, err,
                                                            sizeof err);
            assert (result ? len == strlen (result) : strchr (err, ':') != NULL);
            free (result);
            result = aigw_messages_response_from_openai (damaged, request_len, NULL, &len, err,
                                                         sizeof err);
            free (result);
        }
    free (damaged);

    //  The cache's text: the last user message, plain, from either client
    const char *anthropic = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":"
                            "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                            "{\"type\":\"text\",\"text\":\"b\"}]}]}";
    json_t *form = aigw_messages_chat_form (AIGW_KIND_MESSAGES, anthropic, strlen (anthropic));
    assert (form);
    size_t text_len = 0;
    char *cache_text = aigw_messages_cache_text (form, true, &text_len);
    assert (cache_text && strcmp (cache_text, "a\nb") == 0 && text_len == 3);
    assert (json_is_null (
        json_object_get (json_array_get (json_object_get (form, "messages"), 0), "content")));
    free (cache_text);
    json_decref (form);
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                       "{\"role\":\"assistant\",\"content\":\"yo\"}]}";
    form = aigw_messages_chat_form (AIGW_KIND_CHAT, chat, strlen (chat));
    cache_text = aigw_messages_cache_text (form, false, &text_len);
    assert (cache_text && strcmp (cache_text, "hi") == 0 && text_len == 2);
    free (cache_text);
    json_decref (form);
    const char *image = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                        "\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}";
    form = aigw_messages_chat_form (AIGW_KIND_CHAT, image, strlen (image));
    assert (!aigw_messages_cache_text (form, false, &text_len) && text_len == 0);
    json_decref (form);
    assert (!aigw_messages_chat_form (AIGW_KIND_CHAT, "[1]", 3));

    if (verbose)
        printf ("messages: ok\n");
}
