/*  aigw_anthropic: OpenAI Chat Completions <-> Anthropic Messages.

    Requests: system and developer messages join into the top-level
    "system"; user and assistant turns become content-block arrays, and
    consecutive turns of one role merge, as Anthropic requires alternation.
    Tool results (role "tool") are user turns of tool_result blocks, so they
    merge with each other and with a following user message.
    Responses and streams go the other way; see aigw_anthropic.h. */
#include "aigw_anthropic.h"
#include "aigw_adapter.h"
#include "aigw_fixture.h"
#include "aigw_json.h"
#include "aigw_openai.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Separator between system messages joined into one "system" string.
#define S_SYSTEM_SEPARATOR "\n\n"
//  Longest field path quoted in an error message.
#define S_PATH_MAX 64

struct _aigw_anthropic_stream_t {
    char *model;         //  model the chunks carry, NULL until known
    char *id;            //  chunk id, NULL until known
    json_int_t created;  //  Unix time the chunks carry
    bool started;        //  the role chunk has been sent
    bool done;           //  message_stop has been translated
    int next_tool;       //  OpenAI tool_calls index of the next tool_use
    int tool_of_block[AIGW_ANTHROPIC_STREAM_MAX_BLOCKS];  //  block -> tool index, -1 if none
    json_int_t input_tokens;                              //  prompt tokens from message_start
    json_int_t output_tokens;                             //  completion tokens, last reported
    json_int_t cached_tokens;   //  prompt tokens read from the cache, from message_start
    json_int_t written_tokens;  //  prompt tokens written to the cache, from message_start
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

//  The text of an OpenAI content value that may only hold text: a string,
//  or an array of {"type":"text","text"} parts, joined. Returns a new
//  string the caller owns, or NULL (with ERR naming PATH) when the value
//  has another shape. A JSON null gives "".
static char *
s_text_content (json_t *content, const char *path, char *err, size_t err_size)
{
    if (!content || json_is_null (content))
        return strdup ("");
    if (json_is_string (content))
        return strdup (json_string_value (content));
    if (!json_is_array (content))
        return s_fail (err, err_size, "%s: must be a string or an array of text parts", path);
    size_t total = 1, index;
    json_t *part;
    json_array_foreach (content, index, part) {
        json_t *text = json_object_get (part, "text");
        const char *type = json_string_value (json_object_get (part, "type"));
        if (!type || strcmp (type, "text") != 0 || !json_is_string (text))
            return s_fail (err, err_size, "%s[%zu]: only text parts are allowed here", path, index);
        total += json_string_length (text);
    }
    char *result = malloc (total);
    if (!result)
        return s_fail (err, err_size, "out of memory");
    size_t at = 0;
    json_array_foreach (content, index, part) {
        json_t *text = json_object_get (part, "text");
        memcpy (result + at, json_string_value (text), json_string_length (text));
        at += json_string_length (text);
    }
    result[at] = 0;
    return result;
}

//  Copy PART's cache_control mark (an OpenAI content part, message or
//  tool of the gateway's format, where /v1/messages put Anthropic's marks
//  and OpenAI-format clients may put their own) onto the Anthropic BLOCK.
//  Returns BLOCK.
static json_t *
s_mark (json_t *block, json_t *part)
{
    json_t *mark = json_object_get (part, "cache_control");
    if (block && json_is_object (mark))
        json_object_set (block, "cache_control", mark);
    return block;
}

//  Append a text block holding TEXT to BLOCKS, unless TEXT is empty
//  (Anthropic rejects empty text blocks).
static void
s_add_text_block (json_t *blocks, const char *text, size_t len)
{
    if (len)
        json_array_append_new (blocks,
                               json_pack ("{s:s, s:s%}", "type", "text", "text", text, len));
}

//  An Anthropic image block for an OpenAI image_url URL: data: URLs become
//  base64 sources, http(s) URLs url sources. NULL with ERR for anything else.
static json_t *
s_image_block (const char *url, const char *path, char *err, size_t err_size)
{
    if (strncmp (url, "data:", 5) == 0) {
        const char *media = url + 5;
        const char *marker = strstr (media, ";base64,");
        if (!marker || marker == media)
            return s_fail (err, err_size, "%s: data URL must be data:<type>;base64,<data>", path);
        return json_pack ("{s:s, s:{s:s, s:s%, s:s}}", "type", "image", "source", "type", "base64",
                          "media_type", media, (size_t) (marker - media), "data",
                          marker + strlen (";base64,"));
    }
    if (strncmp (url, "https://", 8) == 0 || strncmp (url, "http://", 7) == 0)
        return json_pack ("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url",
                          url);
    return s_fail (err, err_size, "%s: must be a data: or http(s) URL", path);
}

//  Append the blocks of a user message's CONTENT (string or parts array)
//  to BLOCKS. Returns 0, or -1 with ERR.
static int
s_user_blocks (json_t *blocks, json_t *content, const char *path, char *err, size_t err_size)
{
    if (json_is_string (content)) {
        s_add_text_block (blocks, json_string_value (content), json_string_length (content));
        return 0;
    }
    if (!json_is_array (content)) {
        s_fail (err, err_size, "%s: must be a string or an array of content parts", path);
        return -1;
    }
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        char where[S_PATH_MAX * 2];
        snprintf (where, sizeof where, "%s[%zu]", path, index);
        const char *type = json_string_value (json_object_get (part, "type"));
        if (type && strcmp (type, "text") == 0) {
            json_t *text = json_object_get (part, "text");
            if (!json_is_string (text)) {
                s_fail (err, err_size, "%s.text: must be a string", where);
                return -1;
            }
            s_add_text_block (blocks, json_string_value (text), json_string_length (text));
            if (json_string_length (text))
                s_mark (json_array_get (blocks, json_array_size (blocks) - 1), part);
        }
        else if (type && strcmp (type, "image_url") == 0) {
            json_t *image = json_object_get (part, "image_url");
            //  Older clients send the URL as a bare string.
            const char *url = json_is_string (image)
                                  ? json_string_value (image)
                                  : json_string_value (json_object_get (image, "url"));
            if (!url) {
                s_fail (err, err_size, "%s.image_url.url: must be a string", where);
                return -1;
            }
            json_t *block = s_mark (s_image_block (url, where, err, err_size), part);
            if (!block)
                return -1;
            json_array_append_new (blocks, block);
        }
        else {
            s_fail (err, err_size, "%s.type: unsupported content part \"%s\"", where,
                    type ? type : "(missing)");
            return -1;
        }
    }
    return 0;
}

//  Append the text blocks of a system message's CONTENT (a string or text
//  parts, checked already) to BLOCKS, each part's cache_control with it.
//  Returns true when any part is marked.
static bool
s_system_blocks (json_t *blocks, json_t *content)
{
    if (json_is_string (content)) {
        s_add_text_block (blocks, json_string_value (content), json_string_length (content));
        return false;
    }
    bool marked = false;
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        json_t *text = json_object_get (part, "text");
        if (!json_string_length (text))
            continue;
        s_add_text_block (blocks, json_string_value (text), json_string_length (text));
        s_mark (json_array_get (blocks, json_array_size (blocks) - 1), part);
        marked = marked || json_object_get (part, "cache_control");
    }
    return marked;
}

//  Append an assistant message's text and tool_use blocks to BLOCKS, the
//  text one block per part when a part is marked, each with its mark, and
//  a call's mark on its tool_use. Returns 0, or -1 with ERR.
static int
s_assistant_blocks (json_t *blocks, json_t *message, const char *path, char *err, size_t err_size)
{
    char where[S_PATH_MAX * 2];
    snprintf (where, sizeof where, "%s.content", path);
    json_t *content = json_object_get (message, "content");
    char *text = s_text_content (content, where, err, err_size);
    if (!text)
        return -1;
    bool marked = false;
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part)
        marked = marked || json_object_get (part, "cache_control");
    if (marked)
        s_system_blocks (blocks, content);  //  text parts, checked above
    else
        s_add_text_block (blocks, text, strlen (text));
    free (text);

    json_t *calls = json_object_get (message, "tool_calls");
    if (!calls || json_is_null (calls))
        return 0;
    if (!json_is_array (calls)) {
        s_fail (err, err_size, "%s.tool_calls: must be an array", path);
        return -1;
    }
    json_t *call;
    json_array_foreach (calls, index, call) {
        snprintf (where, sizeof where, "%s.tool_calls[%zu]", path, index);
        json_t *function = json_object_get (call, "function");
        const char *id = json_string_value (json_object_get (call, "id"));
        const char *name = json_string_value (json_object_get (function, "name"));
        json_t *arguments = json_object_get (function, "arguments");
        if (!id || !*id) {
            s_fail (err, err_size, "%s.id: must be a non-empty string", where);
            return -1;
        }
        if (!name || !*name) {
            s_fail (err, err_size, "%s.function.name: must be a non-empty string", where);
            return -1;
        }
        json_t *input = NULL;
        if (json_is_string (arguments) && json_string_length (arguments) == 0)
            input = json_object ();
        else if (json_is_string (arguments))
            input = json_loadb (json_string_value (arguments), json_string_length (arguments), 0,
                                NULL);
        if (!json_is_object (input)) {
            json_decref (input);
            s_fail (err, err_size, "%s.function.arguments: must be a string holding a JSON object",
                    where);
            return -1;
        }
        json_array_append_new (blocks,
                               s_mark (json_pack ("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                                  id, "name", name, "input", input),
                                       call));
    }
    return 0;
}

//  Append a tool message's tool_result block to BLOCKS. 0, or -1 with ERR.
static int
s_tool_blocks (json_t *blocks, json_t *message, const char *path, char *err, size_t err_size)
{
    const char *id = json_string_value (json_object_get (message, "tool_call_id"));
    if (!id || !*id) {
        s_fail (err, err_size, "%s.tool_call_id: must be a non-empty string", path);
        return -1;
    }
    char where[S_PATH_MAX + 32];
    snprintf (where, sizeof where, "%s.content", path);
    char *text = s_text_content (json_object_get (message, "content"), where, err, err_size);
    if (!text)
        return -1;
    json_t *content = json_object_get (message, "content");
    json_array_append_new (blocks,
                           s_mark (json_pack ("{s:s, s:s, s:s}", "type", "tool_result",
                                              "tool_use_id", id, "content", text),
                                   json_array_get (content, json_array_size (content) - 1)));
    free (text);
    return 0;
}

//  Append SYSTEM_TEXT to the joined system prompt *SYSTEM (a string the
//  caller frees). Returns 0, or -1 on allocation failure.
static int
s_join_system (char **system, const char *text)
{
    if (!*text)
        return 0;
    size_t have = *system ? strlen (*system) : 0;
    size_t gap = have ? strlen (S_SYSTEM_SEPARATOR) : 0;
    char *joined = realloc (*system, have + gap + strlen (text) + 1);
    if (!joined)
        return -1;
    memcpy (joined + have, S_SYSTEM_SEPARATOR, gap);
    strcpy (joined + have + gap, text);
    *system = joined;
    return 0;
}

//  Translate the "messages" array into Anthropic MESSAGES (appended) and a
//  joined *SYSTEM prompt (caller frees), and the same prompt as text blocks
//  appended to SYSTEM_BLOCKS, each part's cache_control mark kept; *MARKED
//  says whether any part had one. Returns 0, or -1 with ERR.
static int
s_translate_messages (json_t *source, json_t *messages, char **system, json_t *system_blocks,
                      bool *marked, char *err, size_t err_size)
{
    if (!json_is_array (source) || json_array_size (source) == 0) {
        s_fail (err, err_size, "messages: must be a non-empty array");
        return -1;
    }
    size_t index;
    json_t *message;
    json_array_foreach (source, index, message) {
        char path[S_PATH_MAX];
        snprintf (path, sizeof path, "messages[%zu]", index);
        const char *role = json_string_value (json_object_get (message, "role"));
        if (!json_is_object (message) || !role) {
            s_fail (err, err_size, "%s.role: missing; each message needs a role", path);
            return -1;
        }
        if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0) {
            char where[S_PATH_MAX + 16];
            snprintf (where, sizeof where, "%s.content", path);
            char *text
                = s_text_content (json_object_get (message, "content"), where, err, err_size);
            int rc = text ? s_join_system (system, text) : -1;
            if (text && rc)
                s_fail (err, err_size, "out of memory");
            free (text);
            if (rc)
                return -1;
            if (s_system_blocks (system_blocks, json_object_get (message, "content")))
                *marked = true;
            continue;
        }
        const char *turn_role;
        json_t *blocks = json_array ();
        int rc;
        if (strcmp (role, "user") == 0) {
            char where[S_PATH_MAX + 16];
            snprintf (where, sizeof where, "%s.content", path);
            turn_role = "user";
            rc = s_user_blocks (blocks, json_object_get (message, "content"), where, err, err_size);
        }
        else if (strcmp (role, "assistant") == 0) {
            turn_role = "assistant";
            rc = s_assistant_blocks (blocks, message, path, err, err_size);
        }
        else if (strcmp (role, "tool") == 0) {
            turn_role = "user";
            rc = s_tool_blocks (blocks, message, path, err, err_size);
        }
        else {
            json_decref (blocks);
            s_fail (err, err_size, "%s.role: unsupported role \"%s\"", path, role);
            return -1;
        }
        if (rc) {
            json_decref (blocks);
            return -1;
        }
        //  A turn with nothing to say is dropped; one that follows a turn of
        //  the same role joins it, since Anthropic requires alternation.
        json_t *last = json_array_get (messages, json_array_size (messages) - 1);
        const char *last_role = json_string_value (json_object_get (last, "role"));
        if (json_array_size (blocks) == 0)
            json_decref (blocks);
        else if (last_role && strcmp (last_role, turn_role) == 0) {
            json_array_extend (json_object_get (last, "content"), blocks);
            json_decref (blocks);
        }
        else
            json_array_append_new (messages,
                                   json_pack ("{s:s, s:o}", "role", turn_role, "content", blocks));
    }
    if (json_array_size (messages) == 0) {
        s_fail (err, err_size, "messages: no user or assistant message with content");
        return -1;
    }
    return 0;
}

//  Translate tools, tool_choice and parallel_tool_calls into TARGET.
//  Returns 0, or -1 with ERR.
static int
s_translate_tools (json_t *source, json_t *target, char *err, size_t err_size)
{
    json_t *tools = json_object_get (source, "tools");
    if (tools && !json_is_null (tools)) {
        if (!json_is_array (tools)) {
            s_fail (err, err_size, "tools: must be an array");
            return -1;
        }
        json_t *result = json_array ();
        size_t index;
        json_t *tool;
        json_array_foreach (tools, index, tool) {
            json_t *function = json_object_get (tool, "function");
            const char *type = json_string_value (json_object_get (tool, "type"));
            const char *name = json_string_value (json_object_get (function, "name"));
            json_t *description = json_object_get (function, "description");
            json_t *parameters = json_object_get (function, "parameters");
            if (!type || strcmp (type, "function") != 0 || !name || !*name) {
                json_decref (result);
                s_fail (err, err_size,
                        "tools[%zu]: must be {\"type\":\"function\","
                        "\"function\":{\"name\":...}}",
                        index);
                return -1;
            }
            if (parameters && !json_is_object (parameters)) {
                json_decref (result);
                s_fail (err, err_size, "tools[%zu].function.parameters: must be an object", index);
                return -1;
            }
            json_t *entry = json_pack ("{s:s}", "name", name);
            if (json_is_string (description))
                json_object_set (entry, "description", description);
            json_object_set_new (entry, "input_schema",
                                 parameters
                                     ? json_deep_copy (parameters)
                                     : json_pack ("{s:s, s:{}}", "type", "object", "properties"));
            json_array_append_new (result, s_mark (entry, tool));
        }
        if (json_array_size (result))
            json_object_set_new (target, "tools", result);
        else
            json_decref (result);
    }
    json_t *choice = json_object_get (source, "tool_choice");
    json_t *mapped = NULL;
    if (json_is_string (choice)) {
        const char *value = json_string_value (choice);
        const char *type = strcmp (value, "auto") == 0       ? "auto"
                           : strcmp (value, "required") == 0 ? "any"
                           : strcmp (value, "none") == 0     ? "none"
                                                             : NULL;
        if (!type) {
            s_fail (err, err_size, "tool_choice: must be auto, required, none or a function");
            return -1;
        }
        mapped = json_pack ("{s:s}", "type", type);
    }
    else if (json_is_object (choice)) {
        const char *name
            = json_string_value (json_object_get (json_object_get (choice, "function"), "name"));
        if (!name || !*name) {
            s_fail (err, err_size, "tool_choice.function.name: must be a non-empty string");
            return -1;
        }
        mapped = json_pack ("{s:s, s:s}", "type", "tool", "name", name);
    }
    else if (choice && !json_is_null (choice)) {
        s_fail (err, err_size, "tool_choice: must be a string or an object");
        return -1;
    }
    if (json_is_false (json_object_get (source, "parallel_tool_calls"))
        && json_object_get (target, "tools")) {
        if (!mapped)
            mapped = json_pack ("{s:s}", "type", "auto");
        if (strcmp (json_string_value (json_object_get (mapped, "type")), "none") != 0)
            json_object_set_new (mapped, "disable_parallel_tool_use", json_true ());
    }
    //  Anthropic rejects a tool_choice without tools; OpenAI ignores it.
    if (mapped && json_object_get (target, "tools"))
        json_object_set_new (target, "tool_choice", mapped);
    else
        json_decref (mapped);
    return 0;
}

//  Copy the sampling and limit fields of SOURCE into TARGET. 0, or -1 with ERR.
static int
s_translate_options (json_t *source, json_t *target, char *err, size_t err_size)
{
    json_int_t max_tokens = AIGW_ANTHROPIC_DEFAULT_MAX_TOKENS;
    const char *limit_name = "max_tokens";
    json_t *limit = json_object_get (source, limit_name);
    if (!limit || json_is_null (limit)) {
        limit_name = "max_completion_tokens";
        limit = json_object_get (source, limit_name);
    }
    if (limit && !json_is_null (limit)) {
        if (!json_is_integer (limit) || json_integer_value (limit) < 1) {
            s_fail (err, err_size, "%s: must be a positive integer", limit_name);
            return -1;
        }
        max_tokens = json_integer_value (limit);
    }
    json_object_set_new (target, "max_tokens", json_integer (max_tokens));

    static const char *numbers[] = {"temperature", "top_p"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        json_t *value = json_object_get (source, numbers[i]);
        if (!value || json_is_null (value))
            continue;
        if (!json_is_number (value)) {
            s_fail (err, err_size, "%s: must be a number", numbers[i]);
            return -1;
        }
        json_object_set (target, numbers[i], value);
    }
    json_t *stop = json_object_get (source, "stop");
    if (json_is_string (stop))
        json_object_set_new (target, "stop_sequences", json_pack ("[O]", stop));
    else if (json_is_array (stop)) {
        size_t index;
        json_t *sequence;
        json_array_foreach (stop, index, sequence) {
            if (!json_is_string (sequence)) {
                s_fail (err, err_size, "stop[%zu]: must be a string", index);
                return -1;
            }
        }
        if (json_array_size (stop))
            json_object_set (target, "stop_sequences", stop);
    }
    else if (stop && !json_is_null (stop)) {
        s_fail (err, err_size, "stop: must be a string or an array of strings");
        return -1;
    }
    json_t *stream = json_object_get (source, "stream");
    if (stream && !json_is_null (stream) && !json_is_boolean (stream)) {
        s_fail (err, err_size, "stream: must be a boolean");
        return -1;
    }
    if (json_is_true (stream))
        json_object_set_new (target, "stream", json_true ());
    return 0;
}

char *
aigw_anthropic_request_from_openai (const char *body, size_t len, const char *upstream_model,
                                    size_t *out_len, char *err, size_t err_size)
{
    json_error_t error;
    json_t *source = json_loadb (body ? body : "", body ? len : 0, 0, &error);
    if (!source)
        return s_fail (err, err_size, "body: not valid JSON (%s)", error.text);
    if (!json_is_object (source)) {
        json_decref (source);
        return s_fail (err, err_size, "body: must be a JSON object");
    }
    const char *model = upstream_model;
    if (!model)
        model = json_string_value (json_object_get (source, "model"));
    if (!model || !*model) {
        json_decref (source);
        return s_fail (err, err_size, "model: must be a non-empty string");
    }
    json_t *target = json_pack ("{s:s}", "model", model);
    json_t *messages = json_array ();
    json_t *system_blocks = json_array ();
    bool marked = false;
    char *system = NULL;
    int rc = (target && messages && system_blocks) ? 0 : -1;
    if (rc == 0)
        rc = s_translate_messages (json_object_get (source, "messages"), messages, &system,
                                   system_blocks, &marked, err, err_size);
    if (rc == 0)
        rc = s_translate_options (source, target, err, err_size);
    if (rc == 0)
        rc = s_translate_tools (source, target, err, err_size);
    //  A marked system prompt goes as blocks, so the marks reach Anthropic.
    if (rc == 0 && marked)
        json_object_set (target, "system", system_blocks);
    else if (rc == 0 && system)
        json_object_set_new (target, "system", json_string (system));
    json_decref (system_blocks);
    if (rc == 0)
        json_object_set (target, "messages", messages);
    free (system);
    json_decref (messages);
    json_decref (source);
    if (rc) {
        json_decref (target);
        return NULL;
    }
    char *result = aigw_json_dump (target, out_len);
    return result ? result : s_fail (err, err_size, "out of memory");
}

//  OpenAI finish_reason for an Anthropic stop_reason (NULL stays NULL).
static const char *
s_finish_reason (const char *stop_reason)
{
    if (!stop_reason)
        return NULL;
    if (strcmp (stop_reason, "max_tokens") == 0)
        return "length";
    if (strcmp (stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp (stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop";  //  end_turn, stop_sequence, pause_turn, future ones
}

//  OpenAI usage object for counts; Anthropic's input_tokens leaves out
//  cached prompt tokens, which OpenAI counts in prompt_tokens. CACHED (cache
//  reads) goes to prompt_tokens_details.cached_tokens and WRITTEN (cache
//  writes) to cache_creation_input_tokens, when there are any.
static json_t *
s_usage (json_int_t prompt, json_int_t completion, json_int_t cached, json_int_t written)
{
    json_t *usage = json_pack ("{s:I, s:I, s:I}", "prompt_tokens", prompt, "completion_tokens",
                               completion, "total_tokens", prompt + completion);
    if (usage && cached > 0)
        json_object_set_new (usage, "prompt_tokens_details",
                             json_pack ("{s:I}", "cached_tokens", cached));
    if (usage && written > 0)
        json_object_set_new (usage, "cache_creation_input_tokens", json_integer (written));
    return usage;
}

//  Prompt tokens in an Anthropic usage object, cache reads and writes included.
static json_int_t
s_prompt_tokens (json_t *usage)
{
    return json_integer_value (json_object_get (usage, "input_tokens"))
           + json_integer_value (json_object_get (usage, "cache_creation_input_tokens"))
           + json_integer_value (json_object_get (usage, "cache_read_input_tokens"));
}

//  The message of an Anthropic error body, or NULL.
static const char *
s_error_message (json_t *root)
{
    return json_string_value (json_object_get (json_object_get (root, "error"), "message"));
}

char *
aigw_anthropic_response_to_openai (const char *body, size_t len, const char *model, size_t *out_len,
                                   char *err, size_t err_size)
{
    json_error_t error;
    json_t *source = json_loadb (body ? body : "", body ? len : 0, 0, &error);
    if (!source)
        return s_fail (err, err_size, "body: not valid JSON (%s)", error.text);
    const char *type = json_string_value (json_object_get (source, "type"));
    json_t *content = json_object_get (source, "content");
    const char *id = json_string_value (json_object_get (source, "id"));
    if (!model)
        model = json_string_value (json_object_get (source, "model"));
    if (type && strcmp (type, "error") == 0) {
        const char *message = s_error_message (source);
        s_fail (err, err_size, "upstream error: %s", message ? message : "(no message)");
        json_decref (source);
        return NULL;
    }
    if (!type || strcmp (type, "message") != 0 || !json_is_array (content) || !id || !model) {
        json_decref (source);
        return s_fail (err, err_size, "body: not an Anthropic message (type, id, model, content)");
    }
    //  Join the text blocks; tool_use blocks become tool_calls.
    size_t text_len = 0, index;
    json_t *block;
    json_array_foreach (content, index, block) {
        const char *block_type = json_string_value (json_object_get (block, "type"));
        if (block_type && strcmp (block_type, "text") == 0)
            text_len += json_string_length (json_object_get (block, "text"));
    }
    char *text = malloc (text_len + 1);
    json_t *calls = json_array ();
    int rc = text && calls ? 0 : -1;
    size_t at = 0;
    json_array_foreach (content, index, block) {
        if (rc)
            break;
        const char *block_type = json_string_value (json_object_get (block, "type"));
        json_t *piece = json_object_get (block, "text");
        if (block_type && strcmp (block_type, "text") == 0 && json_is_string (piece)) {
            memcpy (text + at, json_string_value (piece), json_string_length (piece));
            at += json_string_length (piece);
        }
        else if (block_type && strcmp (block_type, "tool_use") == 0) {
            const char *call_id = json_string_value (json_object_get (block, "id"));
            const char *name = json_string_value (json_object_get (block, "name"));
            json_t *input = json_object_get (block, "input");
            char *arguments = json_is_object (input) ? json_dumps (input, JSON_COMPACT) : NULL;
            if (!call_id || !name || !arguments) {
                s_fail (err, err_size, "content[%zu]: tool_use needs id, name and input", index);
                rc = -1;
            }
            else
                json_array_append_new (calls, json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", call_id,
                                                         "type", "function", "function", "name",
                                                         name, "arguments", arguments));
            free (arguments);
        }
        //  thinking and other block kinds have no Chat Completions form.
    }
    json_t *target = NULL;
    if (rc == 0) {
        text[at] = 0;
        json_t *message = json_pack ("{s:s}", "role", "assistant");
        bool has_calls = json_array_size (calls) > 0;
        json_object_set_new (message, "content",
                             at || !has_calls ? json_stringn (text, at) : json_null ());
        if (has_calls)
            json_object_set (message, "tool_calls", calls);
        const char *finish
            = s_finish_reason (json_string_value (json_object_get (source, "stop_reason")));
        json_t *usage = json_object_get (source, "usage");
        target = json_pack (
            "{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}], s:o}", "id", id, "object",
            "chat.completion", "created", (json_int_t) time (NULL), "model", model, "choices",
            "index", 0, "message", message, "logprobs", "finish_reason", finish, "usage",
            s_usage (s_prompt_tokens (usage),
                     json_integer_value (json_object_get (usage, "output_tokens")),
                     json_integer_value (json_object_get (usage, "cache_read_input_tokens")),
                     json_integer_value (json_object_get (usage, "cache_creation_input_tokens"))));
        if (!target)
            s_fail (err, err_size, "out of memory");
    }
    free (text);
    json_decref (calls);
    json_decref (source);
    if (!target)
        return NULL;
    char *result = aigw_json_dump (target, out_len);
    return result ? result : s_fail (err, err_size, "out of memory");
}

aigw_anthropic_stream_t *
aigw_anthropic_stream_new (const char *model, const char *id)
{
    aigw_anthropic_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->model = model ? strdup (model) : NULL;
    self->id = id ? strdup (id) : NULL;
    if ((model && !self->model) || (id && !self->id)) {
        aigw_anthropic_stream_destroy (&self);
        return NULL;
    }
    self->created = (json_int_t) time (NULL);
    for (size_t i = 0; i < AIGW_ANTHROPIC_STREAM_MAX_BLOCKS; i++)
        self->tool_of_block[i] = -1;
    return self;
}

void
aigw_anthropic_stream_destroy (aigw_anthropic_stream_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        aigw_anthropic_stream_t *self = *self_p;
        free (self->model);
        free (self->id);
        free (self);
        *self_p = NULL;
    }
}

bool
aigw_anthropic_stream_done (aigw_anthropic_stream_t *self)
{
    assert (self);
    return self->done;
}

//  Append a chat.completion.chunk with DELTA (stolen), FINISH (may be NULL)
//  and, when USAGE is non-NULL, a usage object (stolen).
static int
s_append_chunk (aigw_anthropic_stream_t *self, char **out, size_t *out_len, json_t *delta,
                const char *finish, json_t *usage)
{
    return aigw_openai_append_chunk (out, out_len, self->id ? self->id : "chatcmpl-anthropic",
                                     self->created, self->model ? self->model : "", delta, finish,
                                     usage);
}

//  Send the first chunk (role assistant) unless it has gone already.
static int
s_start (aigw_anthropic_stream_t *self, char **out, size_t *out_len)
{
    if (self->started)
        return 0;
    self->started = true;
    return s_append_chunk (self, out, out_len,
                           json_pack ("{s:s, s:s}", "role", "assistant", "content", ""), NULL,
                           NULL);
}

//  The stream's content block index in EVENT, or -1 when absent or past
//  the cap.
static int
s_block_index (json_t *event)
{
    json_t *index = json_object_get (event, "index");
    if (!json_is_integer (index) || json_integer_value (index) < 0
        || json_integer_value (index) >= AIGW_ANTHROPIC_STREAM_MAX_BLOCKS)
        return -1;
    return (int) json_integer_value (index);
}

//  Translate one parsed EVENT of TYPE into NEW (a buffer of NEW_LEN bytes).
//  0, or -1 when the event is malformed.
static int
s_stream_event (aigw_anthropic_stream_t *self, json_t *event, const char *type, char **new,
                size_t *new_len)
{
    if (strcmp (type, "message_start") == 0) {
        json_t *message = json_object_get (event, "message");
        if (!json_is_object (message))
            return -1;
        const char *id = json_string_value (json_object_get (message, "id"));
        const char *model = json_string_value (json_object_get (message, "model"));
        if (!self->id && id)
            self->id = strdup (id);
        if (!self->model && model)
            self->model = strdup (model);
        json_t *usage = json_object_get (message, "usage");
        self->input_tokens = s_prompt_tokens (usage);
        self->cached_tokens
            = json_integer_value (json_object_get (usage, "cache_read_input_tokens"));
        self->written_tokens
            = json_integer_value (json_object_get (usage, "cache_creation_input_tokens"));
        self->output_tokens = json_integer_value (json_object_get (usage, "output_tokens"));
        return s_start (self, new, new_len);
    }
    if (strcmp (type, "content_block_start") == 0) {
        int index = s_block_index (event);
        json_t *block = json_object_get (event, "content_block");
        const char *kind = json_string_value (json_object_get (block, "type"));
        if (index < 0 || !kind || s_start (self, new, new_len))
            return -1;
        if (strcmp (kind, "tool_use") == 0) {
            const char *id = json_string_value (json_object_get (block, "id"));
            const char *name = json_string_value (json_object_get (block, "name"));
            if (!id || !name)
                return -1;
            self->tool_of_block[index] = self->next_tool++;
            return s_append_chunk (self, new, new_len,
                                   json_pack ("{s:[{s:i, s:s, s:s, s:{s:s, s:s}}]}", "tool_calls",
                                              "index", self->tool_of_block[index], "id", id, "type",
                                              "function", "function", "name", name, "arguments",
                                              ""),
                                   NULL, NULL);
        }
        json_t *text = json_object_get (block, "text");
        if (strcmp (kind, "text") == 0 && json_string_length (text))
            return s_append_chunk (self, new, new_len, json_pack ("{s:O}", "content", text), NULL,
                                   NULL);
        return 0;
    }
    if (strcmp (type, "content_block_delta") == 0) {
        int index = s_block_index (event);
        json_t *delta = json_object_get (event, "delta");
        const char *kind = json_string_value (json_object_get (delta, "type"));
        if (index < 0 || !kind || s_start (self, new, new_len))
            return -1;
        if (strcmp (kind, "text_delta") == 0) {
            json_t *text = json_object_get (delta, "text");
            if (!json_is_string (text))
                return -1;
            return s_append_chunk (self, new, new_len, json_pack ("{s:O}", "content", text), NULL,
                                   NULL);
        }
        if (strcmp (kind, "input_json_delta") == 0) {
            json_t *partial = json_object_get (delta, "partial_json");
            if (!json_is_string (partial) || self->tool_of_block[index] < 0)
                return -1;
            if (json_string_length (partial) == 0)
                return 0;
            return s_append_chunk (self, new, new_len,
                                   json_pack ("{s:[{s:i, s:{s:O}}]}", "tool_calls", "index",
                                              self->tool_of_block[index], "function", "arguments",
                                              partial),
                                   NULL, NULL);
        }
        return 0;  //  thinking, signature, citations: no OpenAI form
    }
    if (strcmp (type, "message_delta") == 0) {
        json_t *delta = json_object_get (event, "delta");
        json_t *usage = json_object_get (event, "usage");
        if (json_is_integer (json_object_get (usage, "output_tokens")))
            self->output_tokens = json_integer_value (json_object_get (usage, "output_tokens"));
        const char *stop = json_string_value (json_object_get (delta, "stop_reason"));
        if (!stop)
            return 0;
        if (s_start (self, new, new_len))
            return -1;
        return s_append_chunk (self, new, new_len, json_object (), s_finish_reason (stop),
                               s_usage (self->input_tokens, self->output_tokens,
                                        self->cached_tokens, self->written_tokens));
    }
    if (strcmp (type, "message_stop") == 0) {
        self->done = true;
        return aigw_adapter_append (new, new_len, "data: [DONE]\n\n", 14);
    }
    if (strcmp (type, "error") == 0) {
        json_t *error = json_object_get (event, "error");
        const char *message = json_string_value (json_object_get (error, "message"));
        const char *kind = json_string_value (json_object_get (error, "type"));
        return aigw_adapter_append_event (new, new_len,
                                          json_pack ("{s:{s:s, s:s, s:n, s:n}}", "error", "message",
                                                     message ? message : "upstream error", "type",
                                                     kind ? kind : "api_error", "param", "code"));
    }
    return 0;  //  ping, content_block_stop, and event types yet to come
}

int
aigw_anthropic_stream_feed (aigw_anthropic_stream_t *self, const char *event_data, size_t len,
                            char **out, size_t *out_len)
{
    assert (self);
    assert (out && out_len);
    json_t *event = json_loadb (event_data ? event_data : "", event_data ? len : 0, 0, NULL);
    const char *type = json_string_value (json_object_get (event, "type"));
    char *new = NULL;
    size_t new_len = 0;
    //  A rejected event leaves the translator as it found it.
    bool started = self->started;
    int next_tool = self->next_tool;
    int rc = type ? s_stream_event (self, event, type, &new, &new_len) : -1;
    if (rc) {
        self->started = started;
        self->next_tool = next_tool;
    }
    json_decref (event);
    if (rc == 0 && new) {
        if (!*out)
            *out_len = 0;  //  the buffer starts here, whatever *OUT_LEN held
        rc = aigw_adapter_append (out, out_len, new, new_len);
    }
    free (new);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest. The fixtures are tests/fixtures/anthropic/*.json (embedded by
//  the build, aigw_fixture.h); they follow the examples in each provider's
//  public API reference.

//  Most events in the stream fixture.
#define S_FX_EVENTS_MAX 32

//  The fixture tests/fixtures/anthropic/NAME, asserting it is there.
static const char *
s_fx (const char *name)
{
    return aigw_fixture_in ("anthropic", name);
}

//  The events of anthropic_stream_events.json (a JSON array), each as
//  compact JSON the way the upstream sends one, into EVENTS; returns how
//  many. The caller frees each.
static size_t
s_fx_events (char **events, size_t max)
{
    json_t *array = json_loads (s_fx ("anthropic_stream_events.json"), 0, NULL);
    assert (json_is_array (array) && json_array_size (array) <= max);
    size_t count = json_array_size (array);
    for (size_t i = 0; i < count; i++) {
        events[i] = json_dumps (json_array_get (array, i), JSON_COMPACT);
        assert (events[i]);
    }
    json_decref (array);
    return count;
}

//  Parse a translated request or response, asserting it is a JSON object.
static json_t *
s_test_parse (char *text, size_t len)
{
    assert (text && len == strlen (text));
    json_t *root = json_loadb (text, len, 0, NULL);
    assert (json_is_object (root));
    free (text);
    return root;
}

//  Translate REQUEST, asserting success; the caller owns the result.
static json_t *
s_test_request (const char *request, const char *model)
{
    char err[256] = "";
    size_t len = 0;
    char *out = aigw_anthropic_request_from_openai (request, strlen (request), model, &len, err,
                                                    sizeof err);
    if (!out)
        fprintf (stderr, "anthropic: unexpected error: %s\n", err);
    return s_test_parse (out, len);
}

//  Assert REQUEST is rejected with an error that mentions FIELD.
static void
s_test_bad_request (const char *request, const char *field)
{
    char err[256] = "";
    size_t len = 0;
    char *out = aigw_anthropic_request_from_openai (request, strlen (request), "m", &len, err,
                                                    sizeof err);
    if (out || !strstr (err, field))
        fprintf (stderr, "anthropic: %s gave \"%s\", wanted %s\n", request, err, field);
    assert (!out && strstr (err, field));
}

//  String at PATH-like lookups, kept short for the asserts below.
static const char *
s_str (json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  Translate RESPONSE with MODEL, asserting success.
static json_t *
s_test_response (const char *response, const char *model)
{
    char err[256] = "";
    size_t len = 0;
    char *out = aigw_anthropic_response_to_openai (response, strlen (response), model, &len, err,
                                                   sizeof err);
    if (!out)
        fprintf (stderr, "anthropic: unexpected error: %s\n", err);
    return s_test_parse (out, len);
}

//  Split an OpenAI SSE buffer into an array of parsed chunks; [DONE]
//  becomes the string "[DONE]".
static json_t *
s_test_events (const char *stream)
{
    json_t *events = json_array ();
    const char *at = stream;
    while (*at) {
        assert (strncmp (at, "data: ", 6) == 0);
        const char *end = strstr (at, "\n\n");
        assert (end);
        const char *data = at + 6;
        if ((size_t) (end - data) == 6 && memcmp (data, "[DONE]", 6) == 0)
            json_array_append_new (events, json_string ("[DONE]"));
        else {
            json_t *chunk = json_loadb (data, (size_t) (end - data), 0, NULL);
            assert (json_is_object (chunk));
            json_array_append_new (events, chunk);
        }
        at = end + 2;
    }
    return events;
}

void
aigw_anthropic_test (bool verbose)
{
    //  Plain text, the upstream model replacing the client's.
    json_t *request = s_test_request (s_fx ("openai_request_text.json"), "claude-sonnet-4-5");
    assert (strcmp (s_str (request, "model"), "claude-sonnet-4-5") == 0);
    assert (json_integer_value (json_object_get (request, "max_tokens"))
            == AIGW_ANTHROPIC_DEFAULT_MAX_TOKENS);
    assert (!json_object_get (request, "system") && !json_object_get (request, "stream"));
    json_t *messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 1);
    json_t *block = json_array_get (json_object_get (json_array_get (messages, 0), "content"), 0);
    assert (strcmp (s_str (block, "type"), "text") == 0);
    assert (strcmp (s_str (block, "text"), "Hello, Claude") == 0);
    json_decref (request);

    //  System and developer messages join; consecutive user turns merge.
    request = s_test_request (s_fx ("openai_request_multiturn.json"), NULL);
    assert (strcmp (s_str (request, "model"), "gpt-4o") == 0);
    assert (strcmp (s_str (request, "system"), "You are terse.\n\nAnswer in English.") == 0);
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 3);
    json_t *first = json_array_get (messages, 0);
    assert (strcmp (s_str (first, "role"), "user") == 0);
    assert (json_array_size (json_object_get (first, "content")) == 2);
    assert (strcmp (s_str (json_array_get (messages, 1), "role"), "assistant") == 0);
    assert (strcmp (s_str (json_array_get (messages, 2), "role"), "user") == 0);
    assert (json_integer_value (json_object_get (request, "max_tokens")) == 512);
    assert (json_real_value (json_object_get (request, "temperature")) == 0.5);
    assert (json_real_value (json_object_get (request, "top_p")) == 0.9);
    json_t *stops = json_object_get (request, "stop_sequences");
    assert (json_array_size (stops) == 1);
    assert (strcmp (json_string_value (json_array_get (stops, 0)), "\n\nHuman:") == 0);
    assert (json_is_true (json_object_get (request, "stream")));
    json_decref (request);

    //  Marks on an assistant turn: a block per text part, each with its
    //  own mark, and a marked call's tool_use.
    request = s_test_request (
        "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
        "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\","
        "\"cache_control\":{\"type\":\"ephemeral\"}}],\"tool_calls\":[{\"id\":\"t1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"},\"cache_control\":"
        "{\"type\":\"ephemeral\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":"
        "\"r\"}]}",
        "m");
    json_t *said
        = json_object_get (json_array_get (json_object_get (request, "messages"), 1), "content");
    assert (json_array_size (said) == 3);
    assert (strcmp (s_str (json_array_get (said, 0), "text"), "a") == 0);
    assert (!json_object_get (json_array_get (said, 0), "cache_control"));
    assert (strcmp (s_str (json_object_get (json_array_get (said, 1), "cache_control"), "type"),
                    "ephemeral")
            == 0);
    assert (strcmp (s_str (json_array_get (said, 2), "type"), "tool_use") == 0);
    assert (json_object_get (json_array_get (said, 2), "cache_control"));
    json_decref (request);

    //  Tools, tool calls and tool results.
    request = s_test_request (s_fx ("openai_request_tools.json"), "claude-sonnet-4-5");
    messages = json_object_get (request, "messages");
    assert (json_array_size (messages) == 3);
    json_t *assistant = json_object_get (json_array_get (messages, 1), "content");
    assert (json_array_size (assistant) == 2);
    block = json_array_get (assistant, 1);
    assert (strcmp (s_str (block, "type"), "tool_use") == 0);
    assert (strcmp (s_str (block, "id"), "toolu_02") == 0);
    assert (strcmp (s_str (block, "name"), "get_weather") == 0);
    assert (strcmp (s_str (json_object_get (block, "input"), "city"), "Rome") == 0);
    json_t *results = json_array_get (messages, 2);
    assert (strcmp (s_str (results, "role"), "user") == 0);
    results = json_object_get (results, "content");
    assert (json_array_size (results) == 3);
    block = json_array_get (results, 0);
    assert (strcmp (s_str (block, "type"), "tool_result") == 0);
    assert (strcmp (s_str (block, "tool_use_id"), "toolu_01") == 0);
    assert (strcmp (s_str (block, "content"), "18C, cloudy") == 0);
    assert (strcmp (s_str (json_array_get (results, 1), "content"), "25C, sunny") == 0);
    assert (strcmp (s_str (json_array_get (results, 2), "text"), "Which is warmer?") == 0);
    json_t *tools = json_object_get (request, "tools");
    assert (json_array_size (tools) == 2);
    json_t *tool = json_array_get (tools, 0);
    assert (strcmp (s_str (tool, "name"), "get_weather") == 0);
    assert (strcmp (s_str (tool, "description"), "Current weather for a city") == 0);
    assert (json_array_size (json_object_get (json_object_get (tool, "input_schema"), "required"))
            == 1);
    tool = json_array_get (tools, 1);
    assert (!json_object_get (tool, "description"));
    assert (strcmp (s_str (json_object_get (tool, "input_schema"), "type"), "object") == 0);
    json_t *choice = json_object_get (request, "tool_choice");
    assert (strcmp (s_str (choice, "type"), "tool") == 0);
    assert (strcmp (s_str (choice, "name"), "get_weather") == 0);
    assert (json_is_true (json_object_get (choice, "disable_parallel_tool_use")));
    assert (json_array_size (json_object_get (request, "stop_sequences")) == 2);
    assert (json_integer_value (json_object_get (request, "max_tokens")) == 1024);
    json_decref (request);

    //  Images by data: URL and by https URL; tool_choice without tools dropped.
    request = s_test_request (s_fx ("openai_request_images.json"), "claude-sonnet-4-5");
    json_t *content
        = json_object_get (json_array_get (json_object_get (request, "messages"), 0), "content");
    assert (json_array_size (content) == 3);
    json_t *source = json_object_get (json_array_get (content, 1), "source");
    assert (strcmp (s_str (json_array_get (content, 1), "type"), "image") == 0);
    assert (strcmp (s_str (source, "type"), "base64") == 0);
    assert (strcmp (s_str (source, "media_type"), "image/png") == 0);
    assert (strcmp (s_str (source, "data"), "iVBORw0KGgo=") == 0);
    source = json_object_get (json_array_get (content, 2), "source");
    assert (strcmp (s_str (source, "type"), "url") == 0);
    assert (strcmp (s_str (source, "url"), "https://example.com/cat.jpg") == 0);
    assert (!json_object_get (request, "tool_choice"));
    json_decref (request);

    //  tool_choice strings, with tools present.
    request
        = s_test_request ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                          "\"tool_choice\":\"required\"}",
                          NULL);
    assert (strcmp (s_str (json_object_get (request, "tool_choice"), "type"), "any") == 0);
    json_decref (request);

    //  Malformed requests give clean errors that name the field.
    s_test_bad_request ("not json", "body");
    s_test_bad_request ("[1,2]", "body");
    s_test_bad_request ("{\"messages\":[]}", "messages");
    s_test_bad_request ("{\"messages\":{\"role\":\"user\"}}", "messages");
    s_test_bad_request ("{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role");
    s_test_bad_request ("{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
                        "messages[0].role");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":7}]}",
                        "messages[0].content");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]}",
                        "messages[0].content[0].type");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                        "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
                        "messages[0].content[0]");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                        "\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
                        "data URL");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                        "\"assistant\",\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
                        "\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}",
                        "messages[1].tool_calls[0].function.arguments");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                        "\"assistant\",\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
                        "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                        "function.arguments");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                        "\"assistant\",\"tool_calls\":[{\"type\":\"function\","
                        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
                        "tool_calls[0].id");
    s_test_bad_request ("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                        "messages[0].tool_call_id");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-1}",
                        "max_tokens");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":5}",
                        "stop");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",1]}",
                        "stop[1]");
    s_test_bad_request (
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
        "temperature");
    s_test_bad_request ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}",
                        "tools[0]");
    s_test_bad_request (
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"maybe\"}",
        "tool_choice");
    s_test_bad_request ("{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "messages");
    char err[128];
    size_t len = 0;
    assert (!aigw_anthropic_request_from_openai ("{\"messages\":[]}", 15, "m", &len, NULL, 0));
    const char *no_model = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    assert (!aigw_anthropic_request_from_openai (no_model, strlen (no_model), NULL, &len, err,
                                                 sizeof err));
    assert (strstr (err, "model"));

    //  Responses: text blocks joined, usage and finish reasons mapped.
    json_t *response = s_test_response (s_fx ("anthropic_response_text.json"), "my-model");
    assert (strcmp (s_str (response, "id"), "msg_01XFDUDYJgAACzvnptvVoYEL") == 0);
    assert (strcmp (s_str (response, "object"), "chat.completion") == 0);
    assert (strcmp (s_str (response, "model"), "my-model") == 0);
    assert (json_integer_value (json_object_get (response, "created")) > 0);
    json_t *choice0 = json_array_get (json_object_get (response, "choices"), 0);
    json_t *message = json_object_get (choice0, "message");
    assert (strcmp (s_str (message, "role"), "assistant") == 0);
    assert (strcmp (s_str (message, "content"), "Hello, world!") == 0);
    assert (!json_object_get (message, "tool_calls"));
    assert (strcmp (s_str (choice0, "finish_reason"), "stop") == 0);
    json_t *usage = json_object_get (response, "usage");
    assert (json_integer_value (json_object_get (usage, "prompt_tokens")) == 12);
    assert (json_integer_value (json_object_get (usage, "completion_tokens")) == 6);
    assert (json_integer_value (json_object_get (usage, "total_tokens")) == 18);
    json_decref (response);

    response = s_test_response (s_fx ("anthropic_response_tool_use.json"), NULL);
    assert (strcmp (s_str (response, "model"), "claude-sonnet-4-5") == 0);
    choice0 = json_array_get (json_object_get (response, "choices"), 0);
    message = json_object_get (choice0, "message");
    assert (strcmp (s_str (message, "content"), "Let me check.") == 0);
    assert (strcmp (s_str (choice0, "finish_reason"), "tool_calls") == 0);
    json_t *call = json_array_get (json_object_get (message, "tool_calls"), 0);
    assert (strcmp (s_str (call, "id"), "toolu_01A09q90qw90lq917835lq9") == 0);
    assert (strcmp (s_str (call, "type"), "function") == 0);
    json_t *function = json_object_get (call, "function");
    assert (strcmp (s_str (function, "name"), "get_weather") == 0);
    const char *arguments = s_str (function, "arguments");
    json_t *input = json_loads (arguments, 0, NULL);
    assert (strcmp (s_str (input, "city"), "San Francisco") == 0);
    json_decref (input);
    assert (
        json_integer_value (json_object_get (json_object_get (response, "usage"), "total_tokens"))
        == 561);
    json_decref (response);

    static const struct {
        const char *stop_reason;    //  Anthropic's
        const char *finish_reason;  //  OpenAI's
    } reasons[] = {{"end_turn", "stop"},
                   {"stop_sequence", "stop"},
                   {"max_tokens", "length"},
                   {"tool_use", "tool_calls"},
                   {"refusal", "content_filter"}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char body[256];
        snprintf (body, sizeof body,
                  "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\","
                  "\"content\":[],\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":1,"
                  "\"output_tokens\":0}}",
                  reasons[i].stop_reason);
        response = s_test_response (body, NULL);
        choice0 = json_array_get (json_object_get (response, "choices"), 0);
        assert (strcmp (s_str (choice0, "finish_reason"), reasons[i].finish_reason) == 0);
        assert (strcmp (s_str (json_object_get (choice0, "message"), "content"), "") == 0);
        json_decref (response);
    }
    assert (!aigw_anthropic_response_to_openai ("nope", 4, "m", &len, err, sizeof err));
    assert (strstr (err, "JSON"));
    const char *stream_error = s_fx ("anthropic_stream_error.json");
    assert (!aigw_anthropic_response_to_openai (stream_error, strlen (stream_error), "m", &len, err,
                                                sizeof err));
    assert (strstr (err, "Overloaded"));
    const char *bad_call = "{\"id\":\"m\",\"type\":\"message\",\"model\":\"c\",\"content\":"
                           "[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":3}]}";
    assert (!aigw_anthropic_response_to_openai (bad_call, strlen (bad_call), NULL, &len, err,
                                                sizeof err));
    assert (strstr (err, "content[0]"));

    //  A full stream: text, then a tool call whose arguments arrive in parts.
    aigw_anthropic_stream_t *stream = aigw_anthropic_stream_new ("gpt-4o", NULL);
    assert (stream);
    char *out = NULL;
    size_t out_len = 0;
    char *fx_events[S_FX_EVENTS_MAX];
    size_t count = s_fx_events (fx_events, S_FX_EVENTS_MAX);
    for (size_t i = 0; i < count; i++) {
        const char *event = fx_events[i];
        assert (!aigw_anthropic_stream_done (stream));
        assert (aigw_anthropic_stream_feed (stream, event, strlen (event), &out, &out_len) == 0);
        free (fx_events[i]);
    }
    assert (aigw_anthropic_stream_done (stream));
    assert (out && out_len == strlen (out));
    json_t *events = s_test_events (out);
    //  role, 2 text, tool start, 2 argument parts (the empty one is dropped),
    //  finish, [DONE].
    assert (json_array_size (events) == 8);
    json_t *chunk = json_array_get (events, 0);
    assert (strcmp (s_str (chunk, "object"), "chat.completion.chunk") == 0);
    assert (strcmp (s_str (chunk, "id"), "msg_014p7gG3wDgGV9EUtLvnow3U") == 0);
    assert (strcmp (s_str (chunk, "model"), "gpt-4o") == 0);
    json_t *delta
        = json_object_get (json_array_get (json_object_get (chunk, "choices"), 0), "delta");
    assert (strcmp (s_str (delta, "role"), "assistant") == 0);
    char text[64] = "", args[64] = "";
    const char *finish = NULL;
    size_t index;
    json_array_foreach (events, index, chunk) {
        if (json_is_string (chunk))
            continue;
        json_t *choice = json_array_get (json_object_get (chunk, "choices"), 0);
        delta = json_object_get (choice, "delta");
        if (s_str (delta, "content"))
            strncat (text, s_str (delta, "content"), sizeof text - strlen (text) - 1);
        json_t *calls = json_object_get (delta, "tool_calls");
        if (calls) {
            call = json_array_get (calls, 0);
            assert (json_integer_value (json_object_get (call, "index")) == 0);
            function = json_object_get (call, "function");
            if (s_str (call, "id")) {
                assert (strcmp (s_str (call, "id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6") == 0);
                assert (strcmp (s_str (function, "name"), "get_weather") == 0);
            }
            strncat (args, s_str (function, "arguments"), sizeof args - strlen (args) - 1);
        }
        if (s_str (choice, "finish_reason")) {
            assert (!finish);
            finish = s_str (choice, "finish_reason");
            usage = json_object_get (chunk, "usage");
            assert (json_integer_value (json_object_get (usage, "prompt_tokens")) == 472);
            assert (json_integer_value (json_object_get (usage, "completion_tokens")) == 89);
            assert (json_integer_value (json_object_get (usage, "total_tokens")) == 561);
        }
    }
    assert (strcmp (text, "Okay, let's check.") == 0);
    assert (strcmp (args, "{\"location\": \"San Francisco\"}") == 0);
    assert (finish && strcmp (finish, "tool_calls") == 0);
    assert (strcmp (json_string_value (json_array_get (events, 7)), "[DONE]") == 0);
    json_decref (events);
    free (out);
    aigw_anthropic_stream_destroy (&stream);
    aigw_anthropic_stream_destroy (&stream);
    assert (!stream);

    //  An error event becomes an OpenAI error event; bad events fail cleanly.
    stream = aigw_anthropic_stream_new (NULL, "chatcmpl-1");
    out = NULL;
    out_len = 0;
    assert (aigw_anthropic_stream_feed (stream, "nope", 4, &out, &out_len) == -1);
    assert (aigw_anthropic_stream_feed (stream, "{}", 2, &out, &out_len) == -1);
    const char *stray = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"input_json_delta\",\"partial_json\":\"{\"}}";
    assert (aigw_anthropic_stream_feed (stream, stray, strlen (stray), &out, &out_len) == -1);
    const char *far = "{\"type\":\"content_block_start\",\"index\":99999,\"content_block\":"
                      "{\"type\":\"text\",\"text\":\"\"}}";
    assert (aigw_anthropic_stream_feed (stream, far, strlen (far), &out, &out_len) == -1);
    const char *nameless = "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                           "{\"type\":\"tool_use\",\"id\":\"t\"}}";
    assert (aigw_anthropic_stream_feed (stream, nameless, strlen (nameless), &out, &out_len) == -1);
    assert (out == NULL && out_len == 0);
    assert (aigw_anthropic_stream_feed (stream, stream_error, strlen (stream_error), &out, &out_len)
            == 0);
    events = s_test_events (out);
    assert (json_array_size (events) == 1);
    json_t *error = json_object_get (json_array_get (events, 0), "error");
    assert (strcmp (s_str (error, "message"), "Overloaded") == 0);
    assert (strcmp (s_str (error, "type"), "overloaded_error") == 0);
    json_decref (events);
    free (out);
    //  Content without message_start still opens with the role chunk.
    out = NULL;
    out_len = 0;
    const char *hello = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"text_delta\",\"text\":\"hi\"}}";
    assert (aigw_anthropic_stream_feed (stream, hello, strlen (hello), &out, &out_len) == 0);
    events = s_test_events (out);
    assert (json_array_size (events) == 2);
    assert (strcmp (s_str (json_array_get (events, 0), "id"), "chatcmpl-1") == 0);
    json_decref (events);
    free (out);
    aigw_anthropic_stream_destroy (&stream);

    if (verbose)
        printf ("anthropic: ok\n");
}
