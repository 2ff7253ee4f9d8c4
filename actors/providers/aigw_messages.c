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
#include "aigw_json.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
    S_BLOCK_NONE,               //  no block open
    S_BLOCK_TEXT,               //  a text block
    S_BLOCK_TOOL                //  a tool_use block
} s_block_t;

struct _aigw_messages_stream_t {
    char *model;                //  model message_start names, NULL until known
    char *id;                   //  message id, NULL until known
    char *pending;              //  bytes of an SSE event not yet complete
    size_t pending_len;         //  bytes in pending
    size_t line_start;          //  start of the first pending line not yet ended
    bool started;               //  message_start has been appended
    bool done;                  //  message_stop or an error event has been appended
    s_block_t open;             //  kind of the open content block
    int next_block;             //  Anthropic index the next block will take
    int open_tool;              //  OpenAI tool_calls index of the open tool block
    char *open_tool_id;         //  id of the open tool block, NULL when none
    int next_tool;              //  one past the highest OpenAI tool index seen
    bool any_tool;              //  a tool_use block has been sent
    bool tool_seen[AIGW_MESSAGES_STREAM_TOOLS_MAX]; //  OpenAI tool indices given a block
    const char *stop_reason;    //  Anthropic stop_reason once finish_reason came, or NULL
    bool usage_seen;            //  a usage chunk has come
    json_int_t input_tokens;    //  uncached prompt tokens from the usage chunk
    json_int_t cache_read_tokens; //  cached prompt tokens from the usage chunk
    json_int_t output_tokens;   //  completion tokens from the usage chunk
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

//  Serialise ROOT compactly into a new buffer the caller owns, setting
//  *OUT_LEN (may be NULL); steals ROOT. NULL on allocation failure.
static char *
s_dump (json_t *root, size_t *out_len)
{
    char *result = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    if (result && out_len)
        *out_len = strlen (result);
    return result;
}

//  A new id "PREFIX<hex>" the caller owns, random enough to be unique; NULL
//  when out of memory.
static char *
s_new_id (const char *prefix)
{
    unsigned char bytes[S_ID_RANDOM_BYTES];
    if (getrandom (bytes, sizeof bytes, GRND_NONBLOCK) != (ssize_t) sizeof bytes) {
        //  No entropy yet: time and a counter still give distinct ids.
        static unsigned counter;
        uint64_t seed = (uint64_t) time (NULL) ^ ((uint64_t) ++counter << 32);
        for (size_t i = 0; i < sizeof bytes; i++)
            bytes[i] = (unsigned char) (seed >> ((i % 8) * 8)) ^ (unsigned char) (i * 31);
    }
    size_t prefix_len = strlen (prefix);
    char *id = malloc (prefix_len + 2 * sizeof bytes + 1);
    if (!id)
        return NULL;
    memcpy (id, prefix, prefix_len);
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf (id + prefix_len + 2 * i, 3, "%02x", bytes[i]);
    return id;
}

//  The Anthropic message id for an OpenAI completion id: "msg_" and the
//  part after the first '-' ("chatcmpl-X" gives "msg_X"), or a generated
//  id when OPENAI_ID is NULL or empty. A new string the caller owns, or NULL.
static char *
s_message_id (const char *openai_id)
{
    if (!openai_id || !*openai_id)
        return s_new_id ("msg_");
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
    return "end_turn";          //  stop, and reasons yet to come
}

//  --------------------------------------------------------------------------
//  Requests: Anthropic -> OpenAI

//  Join the text of VALUE at PATH: a string, or an array of text blocks
//  joined with SEPARATOR. A new string the caller owns, or NULL with ERR.
static char *
s_join_text (json_t *value, const char *path, const char *separator, char *err,
             size_t err_size)
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
        return s_fail (err, err_size, "%s.source: must be a base64 or text source with data",
                       path);
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
            snprintf (where, sizeof where, "%s.content[%zu]", path, index);
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
        rc = s_failed (err, err_size, "%s.content: must be a string or an array of blocks",
                       path);
    if (rc == 0 && !text)
        text = strdup ("");
    json_t *message = rc == 0 && text ? json_pack ("{s:s, s:s, s:s}", "role", "tool",
                                                   "tool_call_id", id, "content", text)
                                      : NULL;
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
        snprintf (where, sizeof where, "%s[%zu]", path, index);
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
                part = json_pack ("{s:s, s:O}", "type", "text", "text", text);
        }
        else if (strcmp (type, "image") == 0)
            rc = (part = s_image_part (block, where, err, err_size)) ? 0 : -1;
        else if (strcmp (type, "document") == 0)
            rc = (part = s_document_part (block, where, err, err_size)) ? 0 : -1;
        else if (strcmp (type, "tool_result") == 0)
            rc = s_tool_result (block, where, messages, parts, err, err_size);
        else if (strcmp (type, "tool_use") == 0)
            rc = s_failed (err, err_size, "%s.type: tool_use belongs in an assistant turn",
                           where);
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
    if (json_array_size (parts) == 1 && strcmp (first_type, "text") == 0)
        json_array_append_new (messages, json_pack ("{s:s, s:O}", "role", "user", "content",
                                                    json_object_get (first, "text")));
    else if (json_array_size (parts))
        json_array_append_new (messages,
                               json_pack ("{s:s, s:O}", "role", "user", "content", parts));
    json_decref (parts);
    return 0;
}

//  Append the OpenAI assistant message for CONTENT at PATH to MESSAGES:
//  text blocks joined, tool_use blocks as tool_calls, thinking dropped. A
//  turn left with nothing is dropped. Returns 0, or -1 with ERR.
static int
s_assistant_turn (json_t *content, const char *path, json_t *messages, char *err,
                  size_t err_size)
{
    if (json_is_string (content)) {
        json_array_append_new (messages, json_pack ("{s:s, s:O}", "role", "assistant",
                                                    "content", content));
        return 0;
    }
    if (!json_is_array (content))
        return s_failed (err, err_size, "%s: must be a string or an array of blocks", path);
    char *text = NULL;
    size_t text_len = 0, index;
    json_t *calls = json_array ();
    json_t *block;
    int rc = 0;
    json_array_foreach (content, index, block) {
        char where[S_PATH_MAX];
        snprintf (where, sizeof where, "%s[%zu]", path, index);
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
                json_array_append_new (calls, json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", id,
                                                         "type", "function", "function",
                                                         "name", name, "arguments",
                                                         arguments));
            free (arguments);
        }
        else if (strcmp (type, "thinking") == 0 || strcmp (type, "redacted_thinking") == 0)
            ;                   //  no OpenAI form; other models cannot use it
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
                                     text_len ? json_stringn (text, text_len) : json_null ());
        if (json_array_size (calls))
            json_object_set (message, "tool_calls", calls);
        json_array_append_new (messages, message);
    }
    free (text);
    json_decref (calls);
    return rc;
}

//  Translate "system" and "messages" of SOURCE into MESSAGES. 0, or -1 with ERR.
static int
s_translate_messages (json_t *source, json_t *messages, char *err, size_t err_size)
{
    json_t *system = json_object_get (source, "system");
    if (system && !json_is_null (system)) {
        char *text = s_join_text (system, "system", S_SYSTEM_SEPARATOR, err, err_size);
        if (!text)
            return -1;
        if (*text)
            json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "system",
                                                        "content", text));
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
        snprintf (where, sizeof where, "%s.content", path);
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
s_translate_options (json_t *source, json_t *target, bool *stream, char *err,
                     size_t err_size)
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
                               "tools[%zu].type: server tool \"%s\" is not available here",
                               index, type);
            else if (!name || !*name)
                rc = s_failed (err, err_size, "tools[%zu].name: must be a non-empty string",
                               index);
            else if (description && !json_is_null (description)
                     && !json_is_string (description))
                rc = s_failed (err, err_size, "tools[%zu].description: must be a string", index);
            else if (schema && !json_is_object (schema))
                rc = s_failed (err, err_size, "tools[%zu].input_schema: must be an object",
                               index);
            if (rc) {
                json_decref (result);
                return -1;
            }
            json_t *function = json_pack ("{s:s}", "name", name);
            if (json_is_string (description))
                json_object_set (function, "description", description);
            json_object_set_new (function, "parameters",
                                 schema ? json_deep_copy (schema)
                                        : json_pack ("{s:s, s:{}}", "type", "object",
                                                     "properties"));
            json_array_append_new (result,
                                   json_pack ("{s:s, s:o}", "type", "function", "function",
                                              function));
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
    char *result = s_dump (target, out_len);
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

//  Anthropic usage for an OpenAI USAGE object (NULL gives zeros). Cached
//  prompt tokens go to cache_read_input_tokens, as Anthropic's
//  input_tokens leaves them out. A new reference or NULL.
static json_t *
s_usage (json_int_t prompt, json_int_t cached, json_int_t completion, bool with_input)
{
    json_t *usage = with_input ? json_pack ("{s:I}", "input_tokens", prompt - cached)
                               : json_object ();
    if (usage && with_input && cached > 0)
        json_object_set_new (usage, "cache_read_input_tokens", json_integer (cached));
    if (usage)
        json_object_set_new (usage, "output_tokens", json_integer (completion));
    return usage;
}

//  Read an OpenAI USAGE object's counts into the three outputs; cached
//  tokens are capped at the prompt tokens.
static void
s_read_usage (json_t *usage, json_int_t *prompt, json_int_t *cached, json_int_t *completion)
{
    *prompt = json_integer_value (json_object_get (usage, "prompt_tokens"));
    *completion = json_integer_value (json_object_get (usage, "completion_tokens"));
    *cached = json_integer_value (
        json_object_get (json_object_get (usage, "prompt_tokens_details"), "cached_tokens"));
    if (*prompt < 0)
        *prompt = 0;
    if (*completion < 0)
        *completion = 0;
    if (*cached < 0 || *cached > *prompt)
        *cached = *cached < 0 ? 0 : *prompt;
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
    char *id = given && *given ? strdup (given) : s_new_id ("toolu_");
    json_t *input = s_tool_input (json_string_value (arguments), json_string_length (arguments));
    json_t *block = id && input ? json_pack ("{s:s, s:s, s:s, s:O}", "type", "tool_use", "id",
                                             id, "name", name, "input", input)
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
    int rc = content ? s_message_text (json_object_get (message, "content"), &text, &text_len)
                     : -1;
    //  A refusal is what the model said when it said nothing else.
    if (rc == 0 && text_len == 0)
        rc = s_message_text (json_object_get (message, "refusal"), &text, &text_len);
    if (rc)
        s_failed (err, err_size, "out of memory");
    if (rc == 0 && text_len)
        json_array_append_new (content, json_pack ("{s:s, s:s%}", "type", "text", "text", text,
                                                   text_len));
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
        json_t *block = s_tool_use_block (wrapped, "choices[0].message.function_call", err,
                                          err_size);
        json_decref (wrapped);
        rc = block ? json_array_append_new (content, block) : -1;
    }
    json_t *target = NULL;
    if (rc == 0) {
        const char *stop =
            s_stop_reason (json_string_value (json_object_get (choice, "finish_reason")));
        bool has_tools = json_array_size (content) > (text_len ? 1u : 0u);
        if (!stop)
            stop = has_tools ? "tool_use" : "end_turn";
        if (!model)
            model = json_string_value (json_object_get (source, "model"));
        json_int_t prompt, cached, completion;
        s_read_usage (json_object_get (source, "usage"), &prompt, &cached, &completion);
        char *id = s_message_id (json_string_value (json_object_get (source, "id")));
        if (id)
            target = json_pack ("{s:s, s:s, s:s, s:s, s:O, s:s, s:n, s:o}", "id", id, "type",
                                "message", "role", "assistant", "model", model ? model : "",
                                "content", content, "stop_reason", stop, "stop_sequence",
                                "usage", s_usage (prompt, cached, completion, true));
        free (id);
        if (!target)
            s_failed (err, err_size, "out of memory");
    }
    free (text);
    json_decref (content);
    json_decref (source);
    if (!target)
        return NULL;
    char *result = s_dump (target, out_len);
    return result ? result : s_fail (err, err_size, "out of memory");
}

char *
aigw_messages_error_body (const char *type, const char *message, size_t *out_len)
{
    return s_dump (json_pack ("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
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
    char *json = s_dump (data, NULL);
    if (!json)
        return -1;
    int rc = aigw_adapter_append (out, out_len, "event: ", 7);
    rc = rc ? rc : aigw_adapter_append (out, out_len, name, strlen (name));
    rc = rc ? rc : aigw_adapter_append (out, out_len, "\ndata: ", 7);
    rc = rc ? rc : aigw_adapter_append (out, out_len, json, strlen (json));
    rc = rc ? rc : aigw_adapter_append (out, out_len, "\n\n", 2);
    free (json);
    return rc;
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
                   json_pack ("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}",
                              "type", "message_start", "message", "id", self->id, "type",
                              "message", "role", "assistant", "model",
                              self->model ? self->model : "", "content", "stop_reason",
                              "stop_sequence", "usage", "input_tokens", 0, "output_tokens",
                              0));
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
    return s_emit (out, out_len, "content_block_stop",
                   json_pack ("{s:s, s:i}", "type", "content_block_stop", "index",
                              self->next_block - 1));
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
s_block_delta (aigw_messages_stream_t *self, const char *type, const char *field,
               const char *text, size_t len, char **out, size_t *out_len)
{
    return s_emit (out, out_len, "content_block_delta",
                   json_pack ("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta",
                              "index", self->next_block - 1, "delta", "type", type, field,
                              text, len));
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
        index = self->open_tool;    //  servers that leave out the index
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
        char *block_id = id ? strdup (id) : s_new_id ("toolu_");
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
        && s_block_delta (self, "input_json_delta", "partial_json",
                          json_string_value (arguments), json_string_length (arguments), out,
                          out_len)) {
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
    json_t *usage = s_usage (self->input_tokens + self->cache_read_tokens,
                             self->cache_read_tokens, self->output_tokens, self->usage_seen);
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
    if ((choices && !json_is_array (choices)) || (usage && !json_is_null (usage)
                                                  && !json_is_object (usage))) {
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
        json_int_t prompt, cached, completion;
        s_read_usage (usage, &prompt, &cached, &completion);
        self->input_tokens = prompt - cached;
        self->cache_read_tokens = cached;
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
        return 0;               //  a comment or keep-alive
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
aigw_messages_stream_feed (aigw_messages_stream_t *self, const char *data, size_t len,
                           char **out, size_t *out_len)
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
aigw_messages_stream_error (aigw_messages_stream_t *self, const char *type,
                            const char *message, char **out, size_t *out_len)
{
    assert (self);
    assert (out && out_len);
    if (self->done)
        return 0;
    self->done = true;
    return s_emit_error (out, out_len, type, message);
}

void
aigw_messages_test (bool verbose)
{
}
