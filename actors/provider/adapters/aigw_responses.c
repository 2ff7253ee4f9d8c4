/*  aigw_responses: OpenAI Responses (client side) <-> OpenAI chat (inside).

    Requests: "instructions" becomes a leading system message, a string
    "input" one user message; input items map one to one onto chat
    messages (developer and system both become system), except that
    consecutive function_call items, and the assistant message before
    them, join into one assistant message with tool_calls (parallel calls
    are one chat turn). Anything with no chat form (built-in tools, stored
    items, prompt templates) is refused with the field named, never
    dropped silently: the client would get an answer to another question.
    Reasoning items from an earlier turn are dropped, as aigw_messages
    drops thinking blocks.

    Answers go the other way. The stream translator keeps the Response it
    is building (every output item, whole), so response.completed carries
    the same object a non-streamed call would have answered.
    See aigw_responses.h for the contracts. */
#include "aigw_responses.h"
#include "aigw_adapter.h"
#include "aigw_hex.h"
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

//  Longest field path quoted in an error.
#define S_PATH_MAX AIGW_RESPONSES_PARAM_MAX
//  Random bytes in a generated id (hex-encoded after a prefix).
#define S_ID_RANDOM_BYTES 24
//  Separator between the text parts of one system message or tool output.
#define S_TEXT_SEPARATOR "\n"

//  Why a request was refused: the field, and the text.
typedef struct {
    char *param;        //  offending field, "" for the body
    size_t param_size;  //  bytes at param
    char *err;          //  OpenAI-style text
    size_t err_size;    //  bytes at err
    bool previous_ok;   //  the responses stage resolved previous_response_id
} s_why_t;

//  One streamed tool call, by its OpenAI tool_calls index.
typedef struct {
    bool seen;        //  a delta for this index came
    int output;       //  its output_index
    char *item_id;    //  "fc_..."
    char *call_id;    //  the upstream's call id, or a generated one
    char *name;       //  function name
    char *arguments;  //  arguments so far
    size_t args_len;  //  bytes in arguments
    bool done;        //  its output_item.done went out
} s_call_t;

struct _aigw_responses_stream_t {
    json_t *response;    //  the Response being built (status, output, usage)
    char *pending;       //  bytes of an SSE event not yet complete
    size_t pending_len;  //  bytes in pending
    long sequence;       //  the next event's sequence_number
    bool started;        //  response.created and .in_progress went out
    bool done;           //  a terminal event went out
    int text_output;     //  output_index of the open message item, -1 = none
    char *text_id;       //  its item id
    char *text;          //  its text so far
    size_t text_len;     //  bytes in text
    const char *finish;  //  the chat finish_reason once it came, or NULL
    json_t *usage;       //  Responses usage once the usage chunk came, or NULL
    s_call_t calls[AIGW_RESPONSES_STREAM_TOOLS_MAX];  //  tool calls by OpenAI index
};

//  --------------------------------------------------------------------------
//  Helpers

//  Refuse: PARAM (printf-style from the start of FORMAT's arguments is not
//  needed: PARAM is given whole) and the text. Returns -1.
static int
s_bad (s_why_t *why, const char *param, const char *format, ...)
{
    if (why->param && why->param_size)
        snprintf (why->param, why->param_size, "%s", param ? param : "");
    if (why->err && why->err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (why->err, why->err_size, format, args);
        va_end (args);
    }
    return -1;
}

//  Write a field path, printf-style, into OUT (SIZE bytes); a path too
//  long for it is cut (it only names the field in an error).
static void
s_path (char *out, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (out, size, format, args);
    va_end (args);
}

//  Parse BODY (LEN bytes) as a JSON object no deeper than the cap; NULL
//  with WHY.
static json_t *
s_load_object (const char *body, size_t len, s_why_t *why)
{
    if (!body || !aigw_json_depth_ok (body, len, AIGW_RESPONSES_JSON_DEPTH_MAX)) {
        s_bad (why, "", "The request body nests deeper than %d levels.",
               AIGW_RESPONSES_JSON_DEPTH_MAX);
        return NULL;
    }
    json_error_t error;
    json_t *root = json_loadb (body, len, 0, &error);
    if (!json_is_object (root)) {
        json_decref (root);
        s_bad (why, "", "The request body must be a JSON object.");
        return NULL;
    }
    return root;
}

//  True when VALUE is absent or JSON null.
static bool
s_absent (json_t *value)
{
    return !value || json_is_null (value);
}

//  --------------------------------------------------------------------------
//  Requests: Responses -> chat

//  Append TEXT to the JSON string *JOINED (NULL: none yet) with the
//  separator between. 0 or -1.
static int
s_join (json_t **joined, const char *text, size_t len)
{
    if (!*joined) {
        *joined = json_stringn (text, len);
        return *joined ? 0 : -1;
    }
    size_t old = json_string_length (*joined);
    char *both = malloc (old + strlen (S_TEXT_SEPARATOR) + len + 1);
    if (!both)
        return -1;
    memcpy (both, json_string_value (*joined), old);
    memcpy (both + old, S_TEXT_SEPARATOR, strlen (S_TEXT_SEPARATOR));
    memcpy (both + old + strlen (S_TEXT_SEPARATOR), text, len);
    int rc = json_string_setn (*joined, both, old + strlen (S_TEXT_SEPARATOR) + len);
    free (both);
    return rc;
}

//  The chat part for the Responses content PART at PATH: input_text and
//  output_text become text, input_image image_url, input_file a file with
//  its data. A new reference, or NULL with WHY.
static json_t *
s_part (json_t *part, const char *path, s_why_t *why)
{
    char field[S_PATH_MAX];
    const char *type = json_string_value (json_object_get (part, "type"));
    if (!json_is_object (part) || !type) {
        s_path (field, sizeof field, "%s.type", path);
        s_bad (why, json_is_object (part) ? field : path,
               "Each content part must be an object with a 'type'.");
        return NULL;
    }
    if (!strcmp (type, "input_text") || !strcmp (type, "output_text")) {
        json_t *text = json_object_get (part, "text");
        s_path (field, sizeof field, "%s.text", path);
        if (!json_is_string (text)) {
            s_bad (why, field, "Invalid type for '%s': expected a string.", field);
            return NULL;
        }
        return json_pack ("{s:s, s:O}", "type", "text", "text", text);
    }
    if (!strcmp (type, "refusal")) {
        json_t *text = json_object_get (part, "refusal");
        s_path (field, sizeof field, "%s.refusal", path);
        if (!json_is_string (text)) {
            s_bad (why, field, "Invalid type for '%s': expected a string.", field);
            return NULL;
        }
        return json_pack ("{s:s, s:O}", "type", "text", "text", text);
    }
    if (!strcmp (type, "input_image")) {
        json_t *url = json_object_get (part, "image_url");
        json_t *detail = json_object_get (part, "detail");
        if (!s_absent (json_object_get (part, "file_id"))) {
            s_path (field, sizeof field, "%s.file_id", path);
            s_bad (why, field,
                   "Images by file_id are not supported by this gateway: send "
                   "image_url (a URL or a data: URL).");
            return NULL;
        }
        s_path (field, sizeof field, "%s.image_url", path);
        if (!json_is_string (url)) {
            s_bad (why, field, "Missing or invalid '%s': expected a URL string.", field);
            return NULL;
        }
        json_t *image = json_pack ("{s:O}", "url", url);
        if (image && json_is_string (detail))
            json_object_set (image, "detail", detail);
        return json_pack ("{s:s, s:o}", "type", "image_url", "image_url", image);
    }
    if (!strcmp (type, "input_file")) {
        json_t *data = json_object_get (part, "file_data");
        json_t *name = json_object_get (part, "filename");
        s_path (field, sizeof field, "%s.file_data", path);
        if (!json_is_string (data)) {
            s_bad (why, field, "Files are supported as file_data (a data: URL) only.");
            return NULL;
        }
        json_t *file = json_pack ("{s:O}", "file_data", data);
        if (file && json_is_string (name))
            json_object_set (file, "filename", name);
        return json_pack ("{s:s, s:o}", "type", "file", "file", file);
    }
    s_path (field, sizeof field, "%s.type", path);
    s_bad (why, field,
           "Invalid value: '%.40s'. Supported values are: 'input_text', 'input_image', "
           "'input_file', 'output_text' and 'refusal'.",
           type);
    return NULL;
}

//  CONTENT at PATH (a string or an array of parts) as chat content: a
//  string stays one; parts become chat parts, or one string when TEXT_ONLY
//  (system and assistant turns, tool outputs). A new reference, or NULL
//  with WHY.
static json_t *
s_content (json_t *content, const char *path, bool text_only, s_why_t *why)
{
    if (json_is_string (content))
        return json_incref (content);
    if (!json_is_array (content)) {
        s_bad (why, path, "Invalid type for '%s': expected a string or an array of content parts.",
               path);
        return NULL;
    }
    json_t *parts = json_array ();
    json_t *joined = NULL;
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        char where[S_PATH_MAX];
        s_path (where, sizeof where, "%s[%zu]", path, index);
        json_t *chat = s_part (part, where, why);
        if (!chat)
            goto failed;
        json_t *text = json_object_get (chat, "text");
        if (text_only && !json_is_string (text)) {
            json_decref (chat);
            s_bad (why, where, "Only text parts may appear here.");
            goto failed;
        }
        if (text_only
            && s_join (&joined, json_string_value (text), json_string_length (text)) != 0) {
            json_decref (chat);
            s_bad (why, "", "Out of memory.");
            goto failed;
        }
        if (text_only)
            json_decref (chat);
        else
            json_array_append_new (parts, chat);
    }
    if (text_only) {
        json_decref (parts);
        return joined ? joined : json_string ("");
    }
    return parts;
failed:
    json_decref (parts);
    json_decref (joined);
    return NULL;
}

//  A required string FIELD of ITEM at PATH, or NULL with WHY.
static json_t *
s_need_string (json_t *item, const char *field, const char *path, s_why_t *why)
{
    json_t *value = json_object_get (item, field);
    if (json_is_string (value) && (json_string_length (value) || !strcmp (field, "arguments")))
        return value;
    char where[S_PATH_MAX];
    s_path (where, sizeof where, "%s.%s", path, field);
    s_bad (why, where,
           value ? "Invalid value for '%s': expected a non-empty string."
                 : "Missing required parameter: '%s'.",
           where);
    return NULL;
}

//  Translate the input item ITEM at PATH into MESSAGES. *OPEN is the last
//  assistant message function calls may join (NULL: none). 0, or -1 with WHY.
static int
s_item (json_t *item, const char *path, json_t *messages, json_t **open, s_why_t *why)
{
    char where[S_PATH_MAX];
    if (!json_is_object (item))
        return s_bad (why, path, "Invalid type for '%s': expected an object.", path);
    json_t *type_value = json_object_get (item, "type");
    const char *type = json_string_value (type_value);
    //  An item without a type but with a role is a message (EasyInputMessage).
    if (!type_value && json_object_get (item, "role"))
        type = "message";
    s_path (where, sizeof where, "%s.type", path);
    if (!type)
        return s_bad (why, where, "Missing required parameter: '%s'.", where);
    if (!strcmp (type, "message")) {
        const char *role = json_string_value (json_object_get (item, "role"));
        s_path (where, sizeof where, "%s.role", path);
        if (!role
            || (strcmp (role, "user") && strcmp (role, "assistant") && strcmp (role, "system")
                && strcmp (role, "developer")))
            return s_bad (why, where,
                          "Invalid value for '%s': supported values are 'user', 'assistant', "
                          "'system' and 'developer'.",
                          where);
        bool user = !strcmp (role, "user");
        bool assistant = !strcmp (role, "assistant");
        s_path (where, sizeof where, "%s.content", path);
        json_t *content = s_content (json_object_get (item, "content"), where, !user, why);
        if (!content)
            return -1;
        json_t *message = json_pack ("{s:s, s:o}", "role",
                                     user        ? "user"
                                     : assistant ? "assistant"
                                                 : "system",
                                     "content", content);
        if (!message || json_array_append_new (messages, message))
            return s_bad (why, "", "Out of memory.");
        *open = assistant ? message : NULL;
        return 0;
    }
    if (!strcmp (type, "function_call")) {
        json_t *call_id = s_need_string (item, "call_id", path, why);
        json_t *name = call_id ? s_need_string (item, "name", path, why) : NULL;
        json_t *arguments = name ? s_need_string (item, "arguments", path, why) : NULL;
        if (!arguments)
            return -1;
        json_t *call = json_pack ("{s:O, s:s, s:{s:O, s:O}}", "id", call_id, "type", "function",
                                  "function", "name", name, "arguments", arguments);
        if (!*open) {
            *open = json_pack ("{s:s, s:n}", "role", "assistant", "content");
            if (!*open || json_array_append_new (messages, *open)) {
                json_decref (call);
                return s_bad (why, "", "Out of memory.");
            }
        }
        json_t *calls = json_object_get (*open, "tool_calls");
        if (!calls) {
            calls = json_array ();
            json_object_set_new (*open, "tool_calls", calls);
        }
        if (!call || json_array_append_new (calls, call))
            return s_bad (why, "", "Out of memory.");
        return 0;
    }
    if (!strcmp (type, "function_call_output")) {
        json_t *call_id = s_need_string (item, "call_id", path, why);
        if (!call_id)
            return -1;
        json_t *output = json_object_get (item, "output");
        s_path (where, sizeof where, "%s.output", path);
        if (!output)
            return s_bad (why, where, "Missing required parameter: '%s'.", where);
        json_t *content = s_content (output, where, true, why);
        if (!content)
            return -1;
        json_t *message = json_pack ("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", call_id,
                                     "content", content);
        if (!message || json_array_append_new (messages, message))
            return s_bad (why, "", "Out of memory.");
        *open = NULL;
        return 0;
    }
    if (!strcmp (type, "reasoning"))
        return 0;  //  no chat form; the model reasons again
    if (!strcmp (type, "item_reference"))
        return s_bad (why, where,
                      "Item references are not supported: this gateway keeps no stored items. "
                      "Send the items themselves.");
    return s_bad (why, where,
                  "Invalid value: '%.40s'. Supported values are: 'message', 'function_call', "
                  "'function_call_output' and 'reasoning'.",
                  type);
}

//  Translate "instructions" and "input" of SOURCE into MESSAGES. 0, or -1.
static int
s_messages (json_t *source, json_t *messages, s_why_t *why)
{
    json_t *instructions = json_object_get (source, "instructions");
    if (!s_absent (instructions) && !json_is_string (instructions))
        return s_bad (why, "instructions", "Invalid type for 'instructions': expected a string.");
    if (json_string_length (instructions)
        && json_array_append_new (
            messages, json_pack ("{s:s, s:O}", "role", "system", "content", instructions)))
        return s_bad (why, "", "Out of memory.");
    json_t *input = json_object_get (source, "input");
    if (json_is_string (input)) {
        if (json_array_append_new (messages,
                                   json_pack ("{s:s, s:O}", "role", "user", "content", input)))
            return s_bad (why, "", "Out of memory.");
        return 0;
    }
    if (!json_is_array (input) || json_array_size (input) == 0)
        return s_bad (why, "input",
                      input ? "Invalid 'input': expected a string or a non-empty array of items."
                            : "Missing required parameter: 'input'.");
    json_t *open = NULL;
    size_t index;
    json_t *item;
    json_array_foreach (input, index, item) {
        char path[S_PATH_MAX];
        s_path (path, sizeof path, "input[%zu]", index);
        if (s_item (item, path, messages, &open, why))
            return -1;
    }
    if (json_array_size (messages) == 0)
        return s_bad (why, "input", "The input has no message to answer.");
    return 0;
}

//  Translate "tools" and "tool_choice" of SOURCE into TARGET. 0, or -1.
static int
s_tools (json_t *source, json_t *target, s_why_t *why)
{
    json_t *tools = json_object_get (source, "tools");
    if (!s_absent (tools) && !json_is_array (tools))
        return s_bad (why, "tools", "Invalid type for 'tools': expected an array.");
    json_t *chat = json_array ();
    size_t index;
    json_t *tool;
    json_array_foreach (tools, index, tool) {
        char path[S_PATH_MAX], where[S_PATH_MAX];
        s_path (path, sizeof path, "tools[%zu]", index);
        const char *type = json_string_value (json_object_get (tool, "type"));
        s_path (where, sizeof where, "%s.type", path);
        if (!type || strcmp (type, "function")) {
            json_decref (chat);
            return s_bad (why, where,
                          "Only function tools are supported by this gateway (got '%.40s').",
                          type ? type : "");
        }
        json_t *name = s_need_string (tool, "name", path, why);
        if (!name) {
            json_decref (chat);
            return -1;
        }
        json_t *function = json_pack ("{s:O}", "name", name);
        static const char *const copied[] = {"description", "parameters", "strict"};
        for (size_t i = 0; function && i < sizeof copied / sizeof copied[0]; i++) {
            json_t *value = json_object_get (tool, copied[i]);
            if (!s_absent (value))
                json_object_set (function, copied[i], value);
        }
        json_array_append_new (chat,
                               json_pack ("{s:s, s:o}", "type", "function", "function", function));
    }
    if (json_array_size (chat))
        json_object_set (target, "tools", chat);
    json_decref (chat);
    json_t *choice = json_object_get (source, "tool_choice");
    if (s_absent (choice))
        return 0;
    const char *mode = json_string_value (choice);
    if (mode && (!strcmp (mode, "auto") || !strcmp (mode, "none") || !strcmp (mode, "required"))) {
        json_object_set (target, "tool_choice", choice);
        return 0;
    }
    const char *type = json_string_value (json_object_get (choice, "type"));
    json_t *name = json_object_get (choice, "name");
    if (type && !strcmp (type, "function") && json_is_string (name)) {
        json_object_set_new (
            target, "tool_choice",
            json_pack ("{s:s, s:{s:O}}", "type", "function", "function", "name", name));
        return 0;
    }
    return s_bad (why, "tool_choice",
                  "Invalid 'tool_choice': expected 'auto', 'none', 'required' or "
                  "{\"type\": \"function\", \"name\": ...}.");
}

//  Translate "text.format" of SOURCE into TARGET's response_format. 0, or -1.
static int
s_text_format (json_t *source, json_t *target, s_why_t *why)
{
    json_t *text = json_object_get (source, "text");
    if (s_absent (text))
        return 0;
    if (!json_is_object (text))
        return s_bad (why, "text", "Invalid type for 'text': expected an object.");
    const char *key;
    json_t *value;
    json_object_foreach (text, key, value) {
        if (strcmp (key, "format") && strcmp (key, "verbosity")) {
            char where[S_PATH_MAX];
            s_path (where, sizeof where, "text.%.40s", key);
            return s_bad (why, where, "Unknown parameter: '%s'.", where);
        }
    }
    json_t *format = json_object_get (text, "format");
    if (s_absent (format))
        return 0;
    const char *type = json_string_value (json_object_get (format, "type"));
    if (!json_is_object (format) || !type)
        return s_bad (why, "text.format.type", "Missing required parameter: 'text.format.type'.");
    if (!strcmp (type, "text"))
        return 0;
    if (!strcmp (type, "json_object")) {
        json_object_set_new (target, "response_format", json_pack ("{s:s}", "type", "json_object"));
        return 0;
    }
    if (strcmp (type, "json_schema"))
        return s_bad (why, "text.format.type",
                      "Invalid value: '%.40s'. Supported values are: 'text', 'json_object' and "
                      "'json_schema'.",
                      type);
    json_t *name = json_object_get (format, "name");
    json_t *schema = json_object_get (format, "schema");
    if (!json_is_string (name) || !json_string_length (name))
        return s_bad (why, "text.format.name", "Missing required parameter: 'text.format.name'.");
    if (!json_is_object (schema))
        return s_bad (why, "text.format.schema",
                      "Missing required parameter: 'text.format.schema' (an object).");
    json_t *spec = json_pack ("{s:O, s:O}", "name", name, "schema", schema);
    static const char *const copied[] = {"strict", "description"};
    for (size_t i = 0; spec && i < sizeof copied / sizeof copied[0]; i++) {
        json_t *v = json_object_get (format, copied[i]);
        if (!s_absent (v))
            json_object_set (spec, copied[i], v);
    }
    json_object_set_new (target, "response_format",
                         json_pack ("{s:s, s:o}", "type", "json_schema", "json_schema", spec));
    return 0;
}

//  The top-level fields a Responses request may carry, and what happens to
//  each in translation. Anything else is refused by name.
typedef enum {
    S_FIELD_USED,     //  read by the translation
    S_FIELD_DROPPED,  //  accepted; no chat form, harmless to leave out
    S_FIELD_NULL      //  accepted only absent, null or false
} s_field_use_t;

static const struct {
    const char *name;   //  field
    s_field_use_t use;  //  what happens to it
} s_fields[] = {
    {"model", S_FIELD_USED},
    {"input", S_FIELD_USED},
    {"instructions", S_FIELD_USED},
    {"tools", S_FIELD_USED},
    {"tool_choice", S_FIELD_USED},
    {"text", S_FIELD_USED},
    {"max_output_tokens", S_FIELD_USED},
    {"temperature", S_FIELD_USED},
    {"top_p", S_FIELD_USED},
    {"stream", S_FIELD_USED},
    {"user", S_FIELD_USED},
    {"parallel_tool_calls", S_FIELD_USED},
    {"metadata", S_FIELD_DROPPED},        //  echoed in the answer
    {"store", S_FIELD_DROPPED},           //  the edge and the responses stage keep it
    {"stream_options", S_FIELD_DROPPED},  //  include_obfuscation only
    {"include", S_FIELD_DROPPED},         //  extra output data the chat form has not
    {"reasoning", S_FIELD_DROPPED},       //  providers differ; the model's default
    {"truncation", S_FIELD_DROPPED},      //  the gateway never truncates
    {"service_tier", S_FIELD_DROPPED},
    {"safety_identifier", S_FIELD_DROPPED},
    {"prompt_cache_key", S_FIELD_DROPPED},
    {"top_logprobs", S_FIELD_DROPPED},
    {"max_tool_calls", S_FIELD_DROPPED},
    {"previous_response_id", S_FIELD_NULL},  //  the responses stage resolves it
    {"background", S_FIELD_NULL},            //  needs stored responses
    {"conversation", S_FIELD_NULL},          //  needs stored conversations
    {"prompt", S_FIELD_NULL},                //  needs stored prompt templates
};

//  Check every top-level field of SOURCE is one we know, of a usable type,
//  and copy the scalar options into TARGET, setting *STREAM. 0, or -1.
static int
s_options (json_t *source, json_t *target, bool *stream, s_why_t *why)
{
    const char *key;
    json_t *value;
    json_object_foreach (source, key, value) {
        size_t i = 0;
        size_t count = sizeof s_fields / sizeof s_fields[0];
        while (i < count && strcmp (s_fields[i].name, key))
            i++;
        if (i == count)
            return s_bad (why, key, "Unknown parameter: '%.60s'.", key);
        if (!strcmp (key, "previous_response_id") && why->previous_ok) {
            if (!json_is_string (value))
                return s_bad (why, key, "Invalid type for '%s': expected a string.", key);
            continue;  //  input already holds the conversation (echoed)
        }
        if (!strcmp (key, "previous_response_id") && !s_absent (value))
            return s_bad (why, key,
                          "'%s' needs stored responses, which this gateway keeps only with a "
                          "database. Send the whole conversation in 'input'.",
                          key);
        if (s_fields[i].use == S_FIELD_NULL && !s_absent (value) && !json_is_false (value))
            return s_bad (why, key,
                          "'%s' is not supported by this gateway yet: it keeps no stored "
                          "responses. Send the whole conversation in 'input'.",
                          key);
    }
    json_t *flag = json_object_get (source, "stream");
    if (!s_absent (flag) && !json_is_boolean (flag))
        return s_bad (why, "stream", "Invalid type for 'stream': expected a boolean.");
    *stream = json_is_true (flag);
    if (*stream) {
        json_object_set_new (target, "stream", json_true ());
        json_object_set_new (target, "stream_options", json_pack ("{s:b}", "include_usage", 1));
    }
    json_t *limit = json_object_get (source, "max_output_tokens");
    if (!s_absent (limit)) {
        if (!json_is_integer (limit) || json_integer_value (limit) < 1)
            return s_bad (why, "max_output_tokens",
                          "Invalid 'max_output_tokens': expected an integer of at least 1.");
        json_object_set (target, "max_tokens", limit);
    }
    static const struct {
        const char *name;  //  field
        double max;        //  highest value allowed
    } numbers[] = {{"temperature", 2}, {"top_p", 1}};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        json_t *v = json_object_get (source, numbers[i].name);
        if (s_absent (v))
            continue;
        if (!json_is_number (v) || json_number_value (v) < 0
            || json_number_value (v) > numbers[i].max)
            return s_bad (why, numbers[i].name, "Invalid '%s': expected a number from 0 to %g.",
                          numbers[i].name, numbers[i].max);
        json_object_set (target, numbers[i].name, v);
    }
    json_t *user = json_object_get (source, "user");
    if (!s_absent (user) && !json_is_string (user))
        return s_bad (why, "user", "Invalid type for 'user': expected a string.");
    if (json_is_string (user))
        json_object_set (target, "user", user);
    json_t *metadata = json_object_get (source, "metadata");
    if (!s_absent (metadata) && !json_is_object (metadata))
        return s_bad (why, "metadata", "Invalid type for 'metadata': expected an object.");
    json_t *store = json_object_get (source, "store");
    if (!s_absent (store) && !json_is_boolean (store))
        return s_bad (why, "store", "Invalid type for 'store': expected a boolean.");
    return 0;
}

//  The body of both translations below; PREVIOUS_OK: the request's
//  previous_response_id is resolved (its input holds the conversation).
static char *
s_request_to_openai (const char *body, size_t len, size_t *out_len, bool *stream, char *param,
                     size_t param_size, char *err, size_t err_size, bool previous_ok)
{
    s_why_t why = {param, param_size, err, err_size, previous_ok};
    bool streamed = false;
    if (stream)
        *stream = false;
    json_t *source = s_load_object (body, len, &why);
    if (!source)
        return NULL;
    json_t *model = json_object_get (source, "model");
    json_t *target = json_pack ("{s:O, s:[]}", "model", model ? model : json_null (), "messages");
    int rc = target ? 0 : s_bad (&why, "", "Out of memory.");
    if (rc == 0 && (!json_is_string (model) || !json_string_length (model)))
        rc = s_bad (&why, "model", "Missing required parameter: 'model'.");
    if (rc == 0)
        rc = s_options (source, target, &streamed, &why);
    if (rc == 0)
        rc = s_messages (source, json_object_get (target, "messages"), &why);
    if (rc == 0)
        rc = s_tools (source, target, &why);
    json_t *parallel = json_object_get (source, "parallel_tool_calls");
    if (rc == 0 && !s_absent (parallel) && !json_is_boolean (parallel))
        rc = s_bad (&why, "parallel_tool_calls",
                    "Invalid type for 'parallel_tool_calls': expected a boolean.");
    //  Chat servers refuse parallel_tool_calls without tools.
    if (rc == 0 && json_is_boolean (parallel) && json_object_get (target, "tools"))
        json_object_set (target, "parallel_tool_calls", parallel);
    if (rc == 0)
        rc = s_text_format (source, target, &why);
    json_decref (source);
    if (rc) {
        json_decref (target);
        return NULL;
    }
    if (stream)
        *stream = streamed;
    char *result = aigw_json_dump (target, out_len);
    if (!result)
        s_bad (&why, "", "Out of memory.");
    return result;
}

char *
aigw_responses_request_to_openai (const char *body, size_t len, size_t *out_len, bool *stream,
                                  char *param, size_t param_size, char *err, size_t err_size)
{
    return s_request_to_openai (body, len, out_len, stream, param, param_size, err, err_size,
                                false);
}

char *
aigw_responses_followup_to_openai (const char *body, size_t len, size_t *out_len, bool *stream,
                                   char *param, size_t param_size, char *err, size_t err_size)
{
    return s_request_to_openai (body, len, out_len, stream, param, param_size, err, err_size, true);
}

char *
aigw_responses_previous_body (const char *body, size_t len, size_t history, bool keep_previous,
                              size_t *out_len)
{
    json_t *root = json_loadb (body, len, 0, NULL);
    json_t *input = json_object_get (root, "input");
    char *out = NULL;
    if (json_is_object (root) && json_is_array (input) && history <= json_array_size (input)) {
        if (keep_previous) {
            //  The upstream keeps the conversation: only this turn's items.
            json_t *own = json_array ();
            for (size_t i = history; own && i < json_array_size (input); i++)
                json_array_append (own, json_array_get (input, i));
            if (own)
                json_object_set_new (root, "input", own);
        }
        else
            json_object_del (root, "previous_response_id");
        out = aigw_json_dump (root, out_len);  //  steals root
        root = NULL;
    }
    json_decref (root);
    return out;
}

//  --------------------------------------------------------------------------
//  Answers: chat -> Responses

//  The Response skeleton for REQUEST (may be NULL): a new id, the model,
//  status in_progress, no output, and the request's settings echoed as
//  OpenAI echoes them (their defaults when not sent). A new reference.
static json_t *
s_response_new (json_t *request, const char *model)
{
    char *id = aigw_hex_id ("resp_", S_ID_RANDOM_BYTES);
    json_t *response
        = id ? json_pack ("{s:s, s:s, s:I, s:s, s:n, s:n, s:n, s:n, s:s, s:[], s:b, "
                          "s:n, s:{s:n, s:n}, s:b, s:f, s:{s:{s:s}}, s:s, s:[], "
                          "s:f, s:s, s:n, s:n, s:{}}",
                          "id", id, "object", "response", "created_at", (json_int_t) time (NULL),
                          "status", "in_progress", "error", "incomplete_details", "instructions",
                          "max_output_tokens", "model", model ? model : "", "output",
                          "parallel_tool_calls", 1, "previous_response_id", "reasoning", "effort",
                          "summary", "store", 1, "temperature", 1.0, "text", "format", "type",
                          "text", "tool_choice", "auto", "tools", "top_p", 1.0, "truncation",
                          "disabled", "usage", "user", "metadata")
             : NULL;
    free (id);
    if (!response)
        return NULL;
    //  What the client set, echoed over the defaults.
    static const char *const echoed[] = {"instructions",
                                         "max_output_tokens",
                                         "previous_response_id",
                                         "parallel_tool_calls",
                                         "store",
                                         "temperature",
                                         "text",
                                         "tool_choice",
                                         "tools",
                                         "top_p",
                                         "user",
                                         "metadata"};
    for (size_t i = 0; i < sizeof echoed / sizeof echoed[0]; i++) {
        json_t *value = json_object_get (request, echoed[i]);
        if (!s_absent (value))
            json_object_set_new (response, echoed[i], json_deep_copy (value));
    }
    return response;
}

//  Responses usage for a chat USAGE object (NULL gives zeros). A new reference.
static json_t *
s_usage (json_t *usage)
{
    json_int_t in = json_integer_value (json_object_get (usage, "prompt_tokens"));
    json_int_t out = json_integer_value (json_object_get (usage, "completion_tokens"));
    json_int_t cached = json_integer_value (
        json_object_get (json_object_get (usage, "prompt_tokens_details"), "cached_tokens"));
    json_int_t reasoning = json_integer_value (
        json_object_get (json_object_get (usage, "completion_tokens_details"), "reasoning_tokens"));
    return json_pack ("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}", "input_tokens", in,
                      "input_tokens_details", "cached_tokens", cached > in ? in : cached,
                      "output_tokens", out, "output_tokens_details", "reasoning_tokens", reasoning,
                      "total_tokens", in + out);
}

//  Set RESPONSE's status from the chat FINISH reason (NULL: completed):
//  a length or content-filter stop leaves it incomplete, saying why.
static void
s_status (json_t *response, const char *finish)
{
    const char *reason = !finish                              ? NULL
                         : !strcmp (finish, "length")         ? "max_output_tokens"
                         : !strcmp (finish, "content_filter") ? "content_filter"
                                                              : NULL;
    json_object_set_new (response, "status", json_string (reason ? "incomplete" : "completed"));
    json_object_set_new (response, "incomplete_details",
                         reason ? json_pack ("{s:s}", "reason", reason) : json_null ());
}

//  A message output item with one part: output_text TEXT, or a refusal. A
//  new reference, or NULL.
static json_t *
s_message_item (const char *id, const char *text, size_t len, bool refusal, const char *status)
{
    json_t *part = refusal ? json_pack ("{s:s, s:s%}", "type", "refusal", "refusal", text, len)
                           : json_pack ("{s:s, s:s%, s:[], s:[]}", "type", "output_text", "text",
                                        text, len, "annotations", "logprobs");
    return json_pack ("{s:s, s:s, s:s, s:s, s:[o]}", "id", id, "type", "message", "status", status,
                      "role", "assistant", "content", part);
}

//  A function_call output item. A new reference, or NULL.
static json_t *
s_call_item (const char *id, const char *call_id, const char *name, const char *arguments,
             size_t len, const char *status)
{
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s%}", "id", id, "type", "function_call",
                      "status", status, "call_id", call_id, "name", name, "arguments",
                      arguments ? arguments : "", arguments ? len : 0);
}

//  The text of a chat message CONTENT: a string, or its text parts
//  joined. A new reference (a string), or NULL.
static json_t *
s_chat_text (json_t *content)
{
    if (json_is_string (content))
        return json_incref (content);
    json_t *joined = NULL;
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        json_t *text = json_object_get (part, "text");
        if (json_is_string (text)) {
            if (!joined)
                joined = json_string ("");
            size_t old = json_string_length (joined);
            char *both = malloc (old + json_string_length (text) + 1);
            if (!both)
                break;
            memcpy (both, json_string_value (joined), old);
            memcpy (both + old, json_string_value (text), json_string_length (text));
            json_string_setn (joined, both, old + json_string_length (text));
            free (both);
        }
    }
    return joined;
}

//  Append to OUTPUT the function_call item of chat tool CALL. 0 or -1.
static int
s_output_call (json_t *output, json_t *call, const char *status)
{
    json_t *function = json_object_get (call, "function");
    const char *name = json_string_value (json_object_get (function, "name"));
    json_t *arguments = json_object_get (function, "arguments");
    const char *call_id = json_string_value (json_object_get (call, "id"));
    if (!name)
        return -1;
    char *item_id = aigw_hex_id ("fc_", S_ID_RANDOM_BYTES);
    char *made = call_id && *call_id ? NULL : aigw_hex_id ("call_", S_ID_RANDOM_BYTES);
    json_t *item
        = item_id && (made || call_id)
              ? s_call_item (item_id, made ? made : call_id, name, json_string_value (arguments),
                             json_string_length (arguments), status)
              : NULL;
    free (item_id);
    free (made);
    return item ? json_array_append_new (output, item) : -1;
}

char *
aigw_responses_response_from_openai (const char *request, size_t request_len, const char *body,
                                     size_t len, const char *model, size_t *out_len, char *err,
                                     size_t err_size)
{
    s_why_t why = {NULL, 0, err, err_size, false};
    json_t *source = s_load_object (body, len, &why);
    if (!source)
        return NULL;
    json_t *choice = json_array_get (json_object_get (source, "choices"), 0);
    json_t *message = json_object_get (choice, "message");
    if (!json_is_object (message)) {
        json_decref (source);
        s_bad (&why, "", "choices[0].message: missing");
        return NULL;
    }
    json_t *req = request ? json_loadb (request, request_len, 0, NULL) : NULL;
    if (!model)
        model = json_string_value (json_object_get (source, "model"));
    json_t *response = s_response_new (req, model);
    json_decref (req);
    const char *finish = json_string_value (json_object_get (choice, "finish_reason"));
    const char *item_status = finish && !strcmp (finish, "length") ? "incomplete" : "completed";
    json_t *output = json_object_get (response, "output");
    int rc = response ? 0 : -1;
    json_t *text = s_chat_text (json_object_get (message, "content"));
    json_t *refusal = json_object_get (message, "refusal");
    if (rc == 0 && (json_string_length (text) || json_string_length (refusal))) {
        char *id = aigw_hex_id ("msg_", S_ID_RANDOM_BYTES);
        bool refused = !json_string_length (text);
        json_t *said = refused ? refusal : text;
        json_t *item = id ? s_message_item (id, json_string_value (said), json_string_length (said),
                                            refused, item_status)
                          : NULL;
        free (id);
        rc = item ? json_array_append_new (output, item) : -1;
    }
    json_decref (text);
    size_t index;
    json_t *call;
    json_array_foreach (json_object_get (message, "tool_calls"), index, call) {
        if (rc == 0)
            rc = s_output_call (output, call, "completed");
    }
    json_t *legacy = json_object_get (message, "function_call");
    if (rc == 0 && json_is_object (legacy)) {
        json_t *wrapped = json_pack ("{s:O}", "function", legacy);
        rc = wrapped ? s_output_call (output, wrapped, "completed") : -1;
        json_decref (wrapped);
    }
    if (rc == 0) {
        s_status (response, finish);
        json_object_set_new (response, "usage", s_usage (json_object_get (source, "usage")));
    }
    json_decref (source);
    if (rc) {
        json_decref (response);
        s_bad (&why, "", "the answer could not be translated (a tool call without a name?)");
        return NULL;
    }
    char *result = aigw_json_dump (response, out_len);
    if (!result)
        s_bad (&why, "", "out of memory");
    return result;
}

//  --------------------------------------------------------------------------
//  Pass-through

int
aigw_responses_passthrough (const aigw_upstream_t *up, const char *body, size_t len,
                            aigw_upstream_request_t *out, char *err, size_t err_size)
{
    const char *base = up->base_url ? up->base_url : aigw_adapter_default_base_url ("openai");
    char url[AIGW_ADAPTER_URL_MAX];
    if ((size_t) snprintf (url, sizeof url, "%s/responses", base) >= sizeof url) {
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

void
aigw_responses_passthrough_scan (const char *data, size_t len, bool *done, bool *failed,
                                 long *events)
{
    static const char *const ends[]
        = {"event: response.completed", "event: response.incomplete", "event: response.failed"};
    size_t at = 0, end;
    while ((end = aigw_openai_sse_event_end (data + at, len - at))) {
        const char *event = data + at;
        for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
            if (end > strlen (ends[i]) && !memcmp (event, ends[i], strlen (ends[i]))
                && (event[strlen (ends[i])] == '\n' || event[strlen (ends[i])] == '\r'))
                *done = true;
        if (end > 13 && !memcmp (event, "event: error", 12)
            && (event[12] == '\n' || event[12] == '\r'))
            *failed = true;
        (*events)++;
        at += end;
    }
}

//  Append "event: TYPE\ndata: {...}\n\n" for EVENT (stolen), its "type"
//  and "sequence_number" set first. 0, or -1 when out of memory.
static int
s_emit (long *sequence, const char *type, json_t *event, char **out, size_t *out_len)
{
    if (!event)
        return -1;
    json_t *framed
        = json_pack ("{s:s, s:I}", "type", type, "sequence_number", (json_int_t) (*sequence)++);
    if (!framed || json_object_update (framed, event)) {
        json_decref (framed);
        json_decref (event);
        return -1;
    }
    json_decref (event);
    return aigw_adapter_append_sse (out, out_len, type, framed);
}

int
aigw_responses_error_event (long sequence, const char *code, const char *message, char **out,
                            size_t *out_len)
{
    return s_emit (&sequence, "error",
                   json_pack ("{s:s, s:s, s:n}", "code", code ? code : "upstream_error", "message",
                              message ? message : "The upstream failed.", "param"),
                   out, out_len);
}

//  --------------------------------------------------------------------------
//  Streams: chat chunks -> Responses events

aigw_responses_stream_t *
aigw_responses_stream_new (const char *request, size_t request_len, const char *model)
{
    json_t *req = request ? json_loadb (request, request_len, 0, NULL) : NULL;
    if (!json_is_object (req)) {
        json_decref (req);
        return NULL;
    }
    aigw_responses_stream_t *self = calloc (1, sizeof *self);
    if (self) {
        self->response = s_response_new (req, model);
        self->text_output = -1;
    }
    json_decref (req);
    if (self && !self->response)
        aigw_responses_stream_destroy (&self);
    return self;
}

void
aigw_responses_stream_destroy (aigw_responses_stream_t **self_p)
{
    assert (self_p);
    aigw_responses_stream_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->response);
    json_decref (self->usage);
    free (self->pending);
    free (self->text_id);
    free (self->text);
    for (size_t i = 0; i < AIGW_RESPONSES_STREAM_TOOLS_MAX; i++) {
        free (self->calls[i].item_id);
        free (self->calls[i].call_id);
        free (self->calls[i].name);
        free (self->calls[i].arguments);
    }
    free (self);
    *self_p = NULL;
}

bool
aigw_responses_stream_done (aigw_responses_stream_t *self)
{
    assert (self);
    return self->done;
}

//  Emit EVENT (stolen) as TYPE.
static int
s_event (aigw_responses_stream_t *self, const char *type, json_t *event, char **out,
         size_t *out_len)
{
    return s_emit (&self->sequence, type, event, out, out_len);
}

//  A copy of the Response as it stands, for an event. A new reference.
static json_t *
s_snapshot (aigw_responses_stream_t *self)
{
    return json_deep_copy (self->response);
}

//  Send response.created and response.in_progress unless they went. 0 or -1.
static int
s_start (aigw_responses_stream_t *self, char **out, size_t *out_len)
{
    if (self->started)
        return 0;
    self->started = true;
    if (s_event (self, "response.created", json_pack ("{s:o}", "response", s_snapshot (self)), out,
                 out_len))
        return -1;
    return s_event (self, "response.in_progress",
                    json_pack ("{s:o}", "response", s_snapshot (self)), out, out_len);
}

//  The output array and its next index.
static json_t *
s_output (aigw_responses_stream_t *self)
{
    return json_object_get (self->response, "output");
}

//  Close the open message item: text done, part done, item done. 0 or -1.
static int
s_text_close (aigw_responses_stream_t *self, const char *status, char **out, size_t *out_len)
{
    if (self->text_output < 0)
        return 0;
    int index = self->text_output;
    self->text_output = -1;
    const char *text = self->text ? self->text : "";
    json_t *item = s_message_item (self->text_id, text, self->text_len, false, status);
    json_t *part = json_deep_copy (json_array_get (json_object_get (item, "content"), 0));
    int rc = item && part ? 0 : -1;
    rc = rc ? rc
            : s_event (self, "response.output_text.done",
                       json_pack ("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", self->text_id,
                                  "output_index", index, "content_index", 0, "text", text,
                                  self->text_len, "logprobs"),
                       out, out_len);
    rc = rc ? rc
            : s_event (self, "response.content_part.done",
                       json_pack ("{s:s, s:i, s:i, s:O}", "item_id", self->text_id, "output_index",
                                  index, "content_index", 0, "part", part),
                       out, out_len);
    json_decref (part);
    if (rc == 0)
        json_array_set (s_output (self), (size_t) index, item);
    rc = rc ? rc
            : s_event (self, "response.output_item.done",
                       json_pack ("{s:i, s:O}", "output_index", index, "item", item), out, out_len);
    json_decref (item);
    free (self->text_id);
    free (self->text);
    self->text_id = self->text = NULL;
    self->text_len = 0;
    return rc;
}

//  Stream TEXT (LEN bytes) as output_text deltas, opening a message item
//  when none is open. 0 or -1.
static int
s_text (aigw_responses_stream_t *self, const char *text, size_t len, char **out, size_t *out_len)
{
    if (len == 0)
        return 0;
    if (self->text_output < 0) {
        self->text_id = aigw_hex_id ("msg_", S_ID_RANDOM_BYTES);
        if (!self->text_id)
            return -1;
        self->text_output = (int) json_array_size (s_output (self));
        json_t *item
            = json_pack ("{s:s, s:s, s:s, s:s, s:[]}", "id", self->text_id, "type", "message",
                         "status", "in_progress", "role", "assistant", "content");
        if (!item || json_array_append (s_output (self), item)) {
            json_decref (item);
            return -1;
        }
        if (s_event (self, "response.output_item.added",
                     json_pack ("{s:i, s:o}", "output_index", self->text_output, "item", item), out,
                     out_len)
            || s_event (self, "response.content_part.added",
                        json_pack ("{s:s, s:i, s:i, s:{s:s, s:s, s:[], s:[]}}", "item_id",
                                   self->text_id, "output_index", self->text_output,
                                   "content_index", 0, "part", "type", "output_text", "text", "",
                                   "annotations", "logprobs"),
                        out, out_len))
            return -1;
    }
    if (aigw_adapter_append (&self->text, &self->text_len, text, len))
        return -1;
    return s_event (self, "response.output_text.delta",
                    json_pack ("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", self->text_id,
                               "output_index", self->text_output, "content_index", 0, "delta", text,
                               len, "logprobs"),
                    out, out_len);
}

//  Close tool call CALL: arguments done, item done. 0 or -1.
static int
s_call_close (aigw_responses_stream_t *self, s_call_t *call, char **out, size_t *out_len)
{
    if (!call->seen || call->done)
        return 0;
    call->done = true;
    const char *arguments = call->arguments ? call->arguments : "";
    json_t *item = s_call_item (call->item_id, call->call_id, call->name, arguments, call->args_len,
                                "completed");
    if (!item)
        return -1;
    json_array_set (s_output (self), (size_t) call->output, item);
    int rc = s_event (self, "response.function_call_arguments.done",
                      json_pack ("{s:s, s:i, s:s, s:s%}", "item_id", call->item_id, "output_index",
                                 call->output, "name", call->name, "arguments", arguments,
                                 call->args_len),
                      out, out_len);
    rc = rc ? rc
            : s_event (self, "response.output_item.done",
                       json_pack ("{s:i, s:O}", "output_index", call->output, "item", item), out,
                       out_len);
    json_decref (item);
    return rc;
}

//  Stream one chat tool_calls delta CALL_DELTA. 0, or -1 with *WHY.
static int
s_tool (aigw_responses_stream_t *self, json_t *delta, int *last, char **out, size_t *out_len,
        const char **why)
{
    json_t *function = json_object_get (delta, "function");
    json_t *arguments = json_object_get (function, "arguments");
    json_t *index_value = json_object_get (delta, "index");
    const char *id = json_string_value (json_object_get (delta, "id"));
    const char *name = json_string_value (json_object_get (function, "name"));
    if (!json_is_object (delta)
        || (arguments && !json_is_string (arguments) && !json_is_null (arguments))) {
        *why = "malformed tool call delta";
        return -1;
    }
    int index = json_is_integer (index_value) ? (int) json_integer_value (index_value)
                : *last >= 0 && !id           ? *last
                                              : *last + 1;
    if (index < 0 || index >= AIGW_RESPONSES_STREAM_TOOLS_MAX) {
        *why = "tool call index out of range";
        return -1;
    }
    s_call_t *call = &self->calls[index];
    if (call->done) {
        *why = "tool call arguments arrived after the call ended";
        return -1;
    }
    *last = index;
    if (!call->seen) {
        if (!name || !*name) {
            *why = "the first delta of a tool call has no function name";
            return -1;
        }
        //  One output item at a time, as OpenAI sends them.
        if (s_text_close (self, "completed", out, out_len))
            return -1;
        for (int i = 0; i < AIGW_RESPONSES_STREAM_TOOLS_MAX; i++)
            if (s_call_close (self, &self->calls[i], out, out_len))
                return -1;
        call->seen = true;
        call->item_id = aigw_hex_id ("fc_", S_ID_RANDOM_BYTES);
        call->call_id = id && *id ? strdup (id) : aigw_hex_id ("call_", S_ID_RANDOM_BYTES);
        call->name = strdup (name);
        call->output = (int) json_array_size (s_output (self));
        json_t *item
            = call->item_id && call->call_id && call->name
                  ? s_call_item (call->item_id, call->call_id, call->name, "", 0, "in_progress")
                  : NULL;
        if (!item || json_array_append (s_output (self), item)) {
            json_decref (item);
            return -1;
        }
        if (s_event (self, "response.output_item.added",
                     json_pack ("{s:i, s:o}", "output_index", call->output, "item", item), out,
                     out_len))
            return -1;
    }
    if (!json_string_length (arguments))
        return 0;
    if (aigw_adapter_append (&call->arguments, &call->args_len, json_string_value (arguments),
                             json_string_length (arguments)))
        return -1;
    return s_event (self, "response.function_call_arguments.delta",
                    json_pack ("{s:s, s:i, s:s%}", "item_id", call->item_id, "output_index",
                               call->output, "delta", json_string_value (arguments),
                               json_string_length (arguments)),
                    out, out_len);
}

//  End the response: close every open item, then response.completed (or
//  .incomplete after a length stop) with the whole Response. 0 or -1.
static int
s_finish (aigw_responses_stream_t *self, char **out, size_t *out_len)
{
    if (s_start (self, out, out_len))
        return -1;
    const char *item_status
        = self->finish && !strcmp (self->finish, "length") ? "incomplete" : "completed";
    if (s_text_close (self, item_status, out, out_len))
        return -1;
    for (int i = 0; i < AIGW_RESPONSES_STREAM_TOOLS_MAX; i++)
        if (s_call_close (self, &self->calls[i], out, out_len))
            return -1;
    s_status (self->response, self->finish);
    json_object_set_new (self->response, "usage",
                         self->usage ? json_incref (self->usage) : s_usage (NULL));
    self->done = true;
    const char *type
        = strcmp (json_string_value (json_object_get (self->response, "status")), "incomplete")
              ? "response.completed"
              : "response.incomplete";
    return s_event (self, type, json_pack ("{s:o}", "response", s_snapshot (self)), out, out_len);
}

int
aigw_responses_stream_error (aigw_responses_stream_t *self, const char *code, const char *message,
                             char **out, size_t *out_len)
{
    assert (self);
    if (self->done)
        return 0;
    self->done = true;
    if (!message)
        message = "The upstream failed.";
    if (!code)
        code = "upstream_error";
    int rc = aigw_responses_error_event (self->sequence++, code, message, out, out_len);
    if (!self->started)
        return rc;
    json_object_set_new (self->response, "status", json_string ("failed"));
    json_object_set_new (self->response, "error",
                         json_pack ("{s:s, s:s}", "code", code, "message", message));
    return rc ? rc
              : s_event (self, "response.failed",
                         json_pack ("{s:o}", "response", s_snapshot (self)), out, out_len);
}

//  Translate one parsed chat CHUNK. 0, or -1 with *WHY.
static int
s_chunk (aigw_responses_stream_t *self, json_t *chunk, int *last, char **out, size_t *out_len,
         const char **why)
{
    *why = "out of memory";
    json_t *error = json_object_get (chunk, "error");
    if (error && !json_is_null (error)) {
        const char *message = json_is_string (error)
                                  ? json_string_value (error)
                                  : json_string_value (json_object_get (error, "message"));
        if (s_start (self, out, out_len))
            return -1;
        return aigw_responses_stream_error (self, "upstream_error", message, out, out_len);
    }
    json_t *choices = json_object_get (chunk, "choices");
    json_t *usage = json_object_get (chunk, "usage");
    if ((choices && !json_is_array (choices))
        || (usage && !json_is_null (usage) && !json_is_object (usage))) {
        *why = "malformed chunk: choices must be an array, usage an object";
        return -1;
    }
    if (s_start (self, out, out_len))
        return -1;
    json_t *choice = json_array_get (choices, 0);
    json_t *delta = json_object_get (choice, "delta");
    json_t *content = json_object_get (delta, "content");
    json_t *refusal = json_object_get (delta, "refusal");
    json_t *calls = json_object_get (delta, "tool_calls");
    json_t *finish = json_object_get (choice, "finish_reason");
    if ((choice && !json_is_object (choice)) || (delta && !json_is_object (delta))
        || (content && !json_is_null (content) && !json_is_string (content))
        || (calls && !json_is_null (calls) && !json_is_array (calls))
        || (finish && !json_is_null (finish) && !json_is_string (finish))) {
        *why = "malformed chunk: unexpected choice or delta shape";
        return -1;
    }
    if (json_string_length (content) && self->text_output < 0) {
        //  Text after a tool call: the calls so far are complete.
        for (int i = 0; i < AIGW_RESPONSES_STREAM_TOOLS_MAX; i++)
            if (s_call_close (self, &self->calls[i], out, out_len))
                return -1;
    }
    if (s_text (self, json_string_value (content), json_string_length (content), out, out_len)
        || (json_is_string (refusal)
            && s_text (self, json_string_value (refusal), json_string_length (refusal), out,
                       out_len)))
        return -1;
    size_t index;
    json_t *call;
    json_array_foreach (calls, index, call) {
        if (s_tool (self, call, last, out, out_len, why))
            return -1;
    }
    *why = "out of memory";
    if (json_is_string (finish)) {
        static const char *const known[]
            = {"stop", "length", "tool_calls", "content_filter", "function_call"};
        self->finish = "stop";
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcmp (json_string_value (finish), known[i]))
                self->finish = known[i];
    }
    if (json_is_object (usage)) {
        json_decref (self->usage);
        self->usage = s_usage (usage);
    }
    //  The usage chunk follows the finish chunk; both here ends the
    //  response, and [DONE] ends it when the server sends no usage.
    if (self->finish && self->usage)
        return s_finish (self, out, out_len);
    return 0;
}

//  The last OpenAI tool index a delta used, across feeds (servers that
//  leave the index out continue the open call).
static int
s_last_call (aigw_responses_stream_t *self)
{
    int last = -1;
    for (int i = 0; i < AIGW_RESPONSES_STREAM_TOOLS_MAX; i++)
        if (self->calls[i].seen && !self->calls[i].done)
            last = i;
    return last;
}

//  Translate one complete SSE EVENT (LEN bytes). 0, or -1 with the stream
//  failed.
static int
s_sse_event (aigw_responses_stream_t *self, const char *event, size_t len, char **out,
             size_t *out_len)
{
    char *data = NULL;
    size_t data_len = 0;
    bool has_data = false;
    size_t at = 0;
    while (at < len) {
        const char *line = event + at;
        const char *newline = memchr (line, '\n', len - at);
        size_t line_len = newline ? (size_t) (newline - line) : len - at;
        at += line_len + (newline ? 1 : 0);
        if (line_len && line[line_len - 1] == '\r')
            line_len--;
        if (line_len < 5 || memcmp (line, "data:", 5))
            continue;
        const char *value = line + 5;
        size_t value_len = line_len - 5;
        if (value_len && *value == ' ')
            value++, value_len--;
        if ((has_data && aigw_adapter_append (&data, &data_len, "\n", 1))
            || aigw_adapter_append (&data, &data_len, value, value_len)) {
            free (data);
            return aigw_responses_stream_error (self, "server_error", "out of memory", out,
                                                out_len),
                   -1;
        }
        has_data = true;
    }
    if (!has_data)
        return 0;
    int rc = 0;
    if (data_len == 6 && !memcmp (data, "[DONE]", 6)) {
        free (data);
        if (!self->finish)
            self->finish = "stop";
        if (s_finish (self, out, out_len))
            return aigw_responses_stream_error (self, "server_error", "out of memory", out,
                                                out_len),
                   -1;
        return 0;
    }
    json_t *chunk = NULL;
    if (aigw_json_depth_ok (data, data_len, AIGW_RESPONSES_JSON_DEPTH_MAX))
        chunk = json_loadb (data, data_len, 0, NULL);
    free (data);
    const char *why = "malformed chunk: not a JSON object";
    int last = s_last_call (self);
    rc = json_is_object (chunk) ? s_chunk (self, chunk, &last, out, out_len, &why) : -1;
    json_decref (chunk);
    if (rc) {
        aigw_responses_stream_error (self, "upstream_bad_stream", why, out, out_len);
        return -1;
    }
    return 0;
}

int
aigw_responses_stream_feed (aigw_responses_stream_t *self, const char *data, size_t len, char **out,
                            size_t *out_len)
{
    assert (self);
    assert (out && out_len);
    if (self->done || len == 0)
        return 0;
    if (!data || aigw_adapter_append (&self->pending, &self->pending_len, data, len)) {
        aigw_responses_stream_error (self, "server_error", "out of memory", out, out_len);
        return -1;
    }
    size_t used = 0, end;
    int rc = 0;
    while (rc == 0 && !self->done
           && (end = aigw_openai_sse_event_end (self->pending + used, self->pending_len - used))) {
        rc = s_sse_event (self, self->pending + used, end, out, out_len);
        used += end;
    }
    memmove (self->pending, self->pending + used, self->pending_len - used);
    self->pending_len -= used;
    if (rc == 0 && self->pending_len > AIGW_RESPONSES_STREAM_PENDING_MAX) {
        aigw_responses_stream_error (self, "upstream_bad_stream",
                                     "An upstream stream event is too large.", out, out_len);
        rc = -1;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Translate BODY and expect it refused naming PARAM.
static void
s_test_refused (const char *body, const char *param)
{
    char got[AIGW_RESPONSES_PARAM_MAX] = "?", err[256] = "";
    char *out = aigw_responses_request_to_openai (body, strlen (body), NULL, NULL, got, sizeof got,
                                                  err, sizeof err);
    if (out || strcmp (got, param))
        fprintf (stderr, "refused %s: got param '%s' (%s)\n", body, got, err);
    assert (!out);
    assert (!strcmp (got, param));
    assert (*err);
}

//  The events of a translated stream, as a JSON array of their data.
static json_t *
s_test_events (const char *text)
{
    json_t *list = json_array ();
    const char *at = text;
    while ((at = strstr (at, "data: "))) {
        at += 6;
        const char *end = strstr (at, "\n\n");
        assert (end);
        json_array_append_new (list, json_loadb (at, (size_t) (end - at), 0, NULL));
        at = end;
    }
    return list;
}

void
aigw_responses_test (bool verbose)
{
    if (verbose)
        printf (" * aigw_responses: ");
    char param[AIGW_RESPONSES_PARAM_MAX], err[256];
    size_t len = 0;
    bool stream = true;

    //  A string input with instructions: a system and a user message.
    const char *plain = "{\"model\":\"m\",\"input\":\"hi\",\"instructions\":\"be brief\","
                        "\"max_output_tokens\":50,\"temperature\":0.5,\"metadata\":{\"a\":\"b\"}}";
    char *out = aigw_responses_request_to_openai (plain, strlen (plain), &len, &stream, param,
                                                  sizeof param, err, sizeof err);
    assert (out && !stream && len == strlen (out));
    json_t *chat = json_loads (out, 0, NULL);
    free (out);
    json_t *messages = json_object_get (chat, "messages");
    assert (json_array_size (messages) == 2);
    assert (!strcmp (json_string_value (json_object_get (json_array_get (messages, 0), "role")),
                     "system"));
    assert (!strcmp (json_string_value (json_object_get (json_array_get (messages, 1), "content")),
                     "hi"));
    assert (json_integer_value (json_object_get (chat, "max_tokens")) == 50);
    assert (json_real_value (json_object_get (chat, "temperature")) == 0.5);
    assert (!json_object_get (chat, "metadata"));
    json_decref (chat);

    //  Items: parts, a function call joining the assistant turn, its output,
    //  function tools, a forced tool, a JSON schema; a stream asks for usage.
    const char *items
        = "{\"model\":\"m\",\"stream\":true,\"input\":["
          "{\"role\":\"developer\",\"content\":\"dev\"},"
          "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\","
          "\"text\":\"look\"},{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,"
          "AA==\",\"detail\":\"low\"}]},"
          "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
          "\"text\":\"calling\"}]},"
          "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
          "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"g\",\"arguments\":\"{}\"},"
          "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
          "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"sunny\"}],"
          "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\"},"
          "\"strict\":true}],\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},"
          "\"parallel_tool_calls\":false,"
          "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"s\",\"schema\":{\"type\":"
          "\"object\"},\"strict\":true}}}";
    out = aigw_responses_request_to_openai (items, strlen (items), &len, &stream, param,
                                            sizeof param, err, sizeof err);
    if (!out)
        fprintf (stderr, "%s: %s\n", param, err);
    assert (out && stream);
    chat = json_loads (out, 0, NULL);
    free (out);
    messages = json_object_get (chat, "messages");
    assert (json_array_size (messages) == 4);
    json_t *user = json_array_get (messages, 1);
    assert (json_array_size (json_object_get (user, "content")) == 2);
    json_t *assistant = json_array_get (messages, 2);
    assert (!strcmp (json_string_value (json_object_get (assistant, "content")), "calling"));
    assert (json_array_size (json_object_get (assistant, "tool_calls")) == 2);
    json_t *tool = json_array_get (messages, 3);
    assert (!strcmp (json_string_value (json_object_get (tool, "role")), "tool"));
    assert (!strcmp (json_string_value (json_object_get (tool, "tool_call_id")), "c1"));
    assert (
        json_is_true (json_object_get (json_object_get (chat, "stream_options"), "include_usage")));
    assert (json_is_false (json_object_get (chat, "parallel_tool_calls")));
    assert (
        !strcmp (json_string_value (json_object_get (
                     json_object_get (json_object_get (chat, "tool_choice"), "function"), "name")),
                 "f"));
    assert (json_object_get (json_object_get (chat, "response_format"), "json_schema"));
    json_decref (chat);

    //  Refusals name the field.
    s_test_refused ("{\"model\":\"m\"}", "input");
    s_test_refused ("{\"model\":\"m\",\"input\":[{\"type\":\"computer_call\"}]}", "input[0].type");
    s_test_refused ("{\"model\":\"m\",\"input\":\"x\",\"bogus\":1}", "bogus");
    s_test_refused ("{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
                    "previous_response_id");
    s_test_refused ("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}",
                    "tools[0].type");
    s_test_refused ("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"input_audio\"}]}]}",
                    "input[0].content[0].type");
    s_test_refused ("{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\"}]}",
                    "input[0].call_id");
    s_test_refused ("{\"model\":\"m\",\"input\":\"x\",\"temperature\":3}", "temperature");
    s_test_refused ("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":"
                    "\"json_schema\",\"name\":\"s\"}}}",
                    "text.format.schema");
    s_test_refused ("{\"model\":\"m\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                    "input[0].role");

    //  An answer: text and a tool call, usage, the settings echoed.
    const char *answer
        = "{\"id\":\"chatcmpl-1\",\"model\":\"up\",\"choices\":[{\"index\":0,\"message\":"
          "{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"id\":\"call_9\","
          "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
          "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":7,"
          "\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":2}}}";
    out = aigw_responses_response_from_openai (plain, strlen (plain), answer, strlen (answer), "m",
                                               &len, err, sizeof err);
    assert (out);
    json_t *response = json_loads (out, 0, NULL);
    free (out);
    assert (!strncmp (json_string_value (json_object_get (response, "id")), "resp_", 5));
    assert (!strcmp (json_string_value (json_object_get (response, "status")), "completed"));
    assert (!strcmp (json_string_value (json_object_get (response, "model")), "m"));
    assert (!strcmp (json_string_value (json_object_get (response, "instructions")), "be brief"));
    json_t *output = json_object_get (response, "output");
    assert (json_array_size (output) == 2);
    assert (!strcmp (
        json_string_value (json_object_get (
            json_array_get (json_object_get (json_array_get (output, 0), "content"), 0), "text")),
        "Hello"));
    assert (!strcmp (json_string_value (json_object_get (json_array_get (output, 1), "call_id")),
                     "call_9"));
    json_t *usage = json_object_get (response, "usage");
    assert (json_integer_value (json_object_get (usage, "total_tokens")) == 10);
    assert (json_integer_value (
                json_object_get (json_object_get (usage, "input_tokens_details"), "cached_tokens"))
            == 2);
    json_decref (response);

    //  A length stop is incomplete, saying why.
    const char *cut = "{\"choices\":[{\"message\":{\"content\":\"Hel\"},\"finish_reason\":"
                      "\"length\"}]}";
    out = aigw_responses_response_from_openai (NULL, 0, cut, strlen (cut), "m", &len, err,
                                               sizeof err);
    response = json_loads (out, 0, NULL);
    free (out);
    assert (!strcmp (json_string_value (json_object_get (response, "status")), "incomplete"));
    assert (!strcmp (json_string_value (json_object_get (
                         json_object_get (response, "incomplete_details"), "reason")),
                     "max_output_tokens"));
    json_decref (response);

    //  A stream, fed one byte at a time: text, then a tool call, finish,
    //  usage. Sequence numbers count up from 0; the last event carries the
    //  whole Response.
    const char *chunks
        = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
          "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
          "{\"arguments\":\":1}\"}}]}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
          "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n"
          "data: [DONE]\n\n";
    aigw_responses_stream_t *translator = aigw_responses_stream_new (plain, strlen (plain), "m");
    assert (translator);
    char *events = NULL;
    size_t events_len = 0;
    for (size_t i = 0; chunks[i]; i++)
        assert (aigw_responses_stream_feed (translator, chunks + i, 1, &events, &events_len) == 0);
    assert (aigw_responses_stream_done (translator));
    aigw_responses_stream_destroy (&translator);
    aigw_responses_stream_destroy (&translator);
    json_t *list = s_test_events (events);
    static const char *const expected[] = {"response.created",
                                           "response.in_progress",
                                           "response.output_item.added",
                                           "response.content_part.added",
                                           "response.output_text.delta",
                                           "response.output_text.delta",
                                           "response.output_text.done",
                                           "response.content_part.done",
                                           "response.output_item.done",
                                           "response.output_item.added",
                                           "response.function_call_arguments.delta",
                                           "response.function_call_arguments.delta",
                                           "response.function_call_arguments.done",
                                           "response.output_item.done",
                                           "response.completed"};
    size_t count = sizeof expected / sizeof expected[0];
    if (json_array_size (list) != count)
        fprintf (stderr, "%s\n", events);
    assert (json_array_size (list) == count);
    for (size_t i = 0; i < count; i++) {
        json_t *event = json_array_get (list, i);
        assert (!strcmp (json_string_value (json_object_get (event, "type")), expected[i]));
        assert (json_integer_value (json_object_get (event, "sequence_number")) == (json_int_t) i);
    }
    assert (strstr (events, "event: response.completed\ndata: "));
    response = json_object_get (json_array_get (list, count - 1), "response");
    output = json_object_get (response, "output");
    assert (json_array_size (output) == 2);
    assert (!strcmp (json_string_value (json_object_get (json_array_get (output, 1), "arguments")),
                     "{\"a\":1}"));
    assert (
        json_integer_value (json_object_get (json_object_get (response, "usage"), "output_tokens"))
        == 2);
    json_decref (list);
    free (events);

    //  An upstream error mid-stream: an error event, then response.failed.
    translator = aigw_responses_stream_new (plain, strlen (plain), "m");
    events = NULL;
    events_len = 0;
    const char *failing = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
                          "data: {\"error\":{\"message\":\"boom\"}}\n\n";
    assert (aigw_responses_stream_feed (translator, failing, strlen (failing), &events, &events_len)
            == 0);
    assert (aigw_responses_stream_done (translator));
    assert (strstr (events, "event: error\n") && strstr (events, "event: response.failed\n"));
    assert (strstr (events, "boom"));
    aigw_responses_stream_destroy (&translator);
    free (events);

    //  Pass-through: the terminal events and error events are seen.
    bool done = false, failed = false;
    long seen = 0;
    const char *upstream = "event: response.created\ndata: {}\n\n"
                           "event: response.completed\ndata: {}\n\n";
    aigw_responses_passthrough_scan (upstream, strlen (upstream), &done, &failed, &seen);
    assert (done && !failed && seen == 2);
    if (verbose)
        printf ("OK\n");
}
