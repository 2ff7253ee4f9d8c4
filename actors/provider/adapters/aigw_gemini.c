/*  aigw_gemini: OpenAI Chat Completions and Embeddings <-> Google Gemini.

    Requests: system and developer messages join into systemInstruction;
    user turns stay "user", assistant turns become "model"; assistant
    tool_calls become functionCall parts and role "tool" messages become
    functionResponse parts of a "user" turn, named after the call they
    answer. Consecutive turns of one role merge. tools, tool_choice and the
    sampling fields map onto tools, toolConfig and generationConfig.
    Answers and stream events go the other way. The upstream URL, headers
    and the SSE framing of streams are aigw_gemini_adapter's. */
#include "aigw_gemini.h"
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
#include <strings.h>
#include <time.h>

//  Separator between system messages joined into one instruction.
#define S_SYSTEM_SEPARATOR "\n\n"
//  Longest field path quoted in an error message.
#define S_PATH_MAX 64
//  MIME type of an http(s) image whose extension says nothing.
#define S_DEFAULT_IMAGE_MIME "image/jpeg"
//  Size of a generated tool call id: "call_", 8 hex digits, an index, NUL.
#define S_CALL_ID_SIZE 32
//  Size of a generated or prefixed completion id, NUL included.
#define S_ID_SIZE 128
//  Size of a stream error's reason, NUL included.
#define S_WHY_SIZE 512
//  FNV-1a offset basis and prime (32-bit), for ids made from content.
#define S_FNV_BASIS 2166136261u
#define S_FNV_PRIME 16777619u

struct _aigw_gemini_stream_t {
    char *model;                //  model the chunks carry
    char *id;                   //  id the chunks carry
    json_int_t created;         //  Unix time the chunks carry
    bool started;               //  the role chunk has been sent
    bool done;                  //  [DONE] sent (after finishReason or an error)
    size_t calls;               //  tool calls translated so far
    json_int_t prompt_tokens;   //  last usageMetadata.promptTokenCount
    json_int_t output_tokens;   //  last candidatesTokenCount (thoughts included)
    json_int_t thought_tokens;  //  last thoughtsTokenCount
    json_int_t total_tokens;    //  last totalTokenCount, -1 when not reported
    json_int_t cached_tokens;   //  last cachedContentTokenCount
};

//  Write a printf-style reason to ERR when there is room. Returns -1 so
//  that callers can `return s_fail (...)`.
static int
s_fail (char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_size, format, args);
        va_end (args);
    }
    return -1;
}

//  Parse BODY (LEN bytes, capped) as JSON. Returns a new reference the
//  caller owns, or NULL with ERR.
static json_t *
s_load (const char *body, size_t len, char *err, size_t err_size)
{
    if (!body)
        len = 0;
    if (len > AIGW_GEMINI_BODY_MAX) {
        s_fail (err, err_size, "body: larger than %u bytes", AIGW_GEMINI_BODY_MAX);
        return NULL;
    }
    json_error_t error;
    json_t *root = json_loadb (body ? body : "", len, 0, &error);
    if (!root)
        s_fail (err, err_size, "body: not valid JSON (%s)", error.text);
    return root;
}

//  Serialise ROOT compactly into a new buffer the caller owns, setting
//  *OUT_LEN; steals ROOT. NULL with ERR on allocation failure.
static char *
s_dump (json_t *root, size_t *out_len, char *err, size_t err_size)
{
    char *result = aigw_json_dump (root, out_len);
    if (!result)
        s_fail (err, err_size, "out of memory");
    return result;
}

//  True when FIELD of OBJECT is absent or JSON null.
static bool
s_absent (json_t *object, const char *field)
{
    json_t *value = json_object_get (object, field);
    return !value || json_is_null (value);
}

//  32-bit FNV-1a of LEN bytes of DATA, continuing from HASH.
static uint32_t
s_fnv1a (uint32_t hash, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char) data[i];
        hash *= S_FNV_PRIME;
    }
    return hash;
}

//  Write into ID a tool call id for the INDEXth call of an answer, naming
//  NAME with ARGUMENTS: "call_" + a hash of both + the index, so it is the
//  same every time and unique within one answer.
static void
s_call_id (char id[S_CALL_ID_SIZE], const char *name, const char *arguments, size_t index)
{
    uint32_t hash = s_fnv1a (S_FNV_BASIS, name, strlen (name) + 1);
    hash = s_fnv1a (hash, arguments, strlen (arguments));
    snprintf (id, S_CALL_ID_SIZE, "call_%08x%zu", hash, index);
}

//  --------------------------------------------------------------------------
//  Requests

//  The text of an OpenAI content value that may only hold text: a string,
//  or an array of {"type":"text","text"} parts, joined; JSON null gives "".
//  Returns a new string the caller owns, or NULL with ERR naming PATH.
static char *
s_text_content (json_t *content, const char *path, char *err, size_t err_size)
{
    if (!content || json_is_null (content))
        return strdup ("");
    if (json_is_string (content))
        return strndup (json_string_value (content), json_string_length (content));
    if (!json_is_array (content)) {
        s_fail (err, err_size, "%s: must be a string or an array of text parts", path);
        return NULL;
    }
    char *text = NULL;
    size_t text_len = 0, index;
    json_t *part;
    json_array_foreach (content, index, part) {
        json_t *piece = json_object_get (part, "text");
        const char *type = json_string_value (json_object_get (part, "type"));
        if (!type || strcmp (type, "text") != 0 || !json_is_string (piece)) {
            free (text);
            s_fail (err, err_size, "%s[%zu]: only text parts are allowed here", path, index);
            return NULL;
        }
        if (aigw_adapter_append (&text, &text_len, json_string_value (piece),
                                 json_string_length (piece))) {
            free (text);
            s_fail (err, err_size, "out of memory");
            return NULL;
        }
    }
    return text ? text : strdup ("");
}

//  Append a {"text"} part holding LEN bytes of TEXT to PARTS, unless it is
//  empty (Gemini rejects empty text parts).
static void
s_add_text_part (json_t *parts, const char *text, size_t len)
{
    if (len)
        json_array_append_new (parts, json_pack ("{s:s%}", "text", text, len));
}

//  The MIME type of an image at URL, guessed from the extension of its
//  path (query and fragment ignored); S_DEFAULT_IMAGE_MIME when unknown.
static const char *
s_image_mime (const char *url)
{
    static const struct {
        const char *extension;  //  lower case, with the dot
        const char *mime;       //  its MIME type
    } types[] = {{".png", "image/png"},   {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
                 {".webp", "image/webp"}, {".gif", "image/gif"},  {".heic", "image/heic"},
                 {".heif", "image/heif"}};
    size_t end = strcspn (url, "?#");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen (types[i].extension);
        if (end > n && strncasecmp (url + end - n, types[i].extension, n) == 0)
            return types[i].mime;
    }
    return S_DEFAULT_IMAGE_MIME;
}

//  A Gemini part for an OpenAI image URL: a data: URL becomes inlineData,
//  an http(s) URL fileData. NULL with ERR naming PATH for anything else.
static json_t *
s_image_part (const char *url, const char *path, char *err, size_t err_size)
{
    if (strncmp (url, "data:", 5) == 0) {
        const char *mime = url + 5;
        const char *marker = strstr (mime, ";base64,");
        if (!marker || marker == mime || !marker[strlen (";base64,")]) {
            s_fail (err, err_size, "%s: data URL must be data:<type>;base64,<data>", path);
            return NULL;
        }
        return json_pack ("{s:{s:s%, s:s}}", "inlineData", "mimeType", mime,
                          (size_t) (marker - mime), "data", marker + strlen (";base64,"));
    }
    if (strncmp (url, "https://", 8) == 0 || strncmp (url, "http://", 7) == 0)
        return json_pack ("{s:{s:s, s:s}}", "fileData", "mimeType", s_image_mime (url), "fileUri",
                          url);
    s_fail (err, err_size, "%s: must be a data: or http(s) URL", path);
    return NULL;
}

//  Append the parts of a user message's CONTENT (a string or an array of
//  text and image_url parts) to PARTS. Returns 0, or -1 with ERR.
static int
s_user_parts (json_t *parts, json_t *content, const char *path, char *err, size_t err_size)
{
    if (json_is_string (content)) {
        s_add_text_part (parts, json_string_value (content), json_string_length (content));
        return 0;
    }
    if (!json_is_array (content))
        return s_fail (err, err_size, "%s: must be a string or an array of content parts", path);
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        char where[S_PATH_MAX * 2];
        snprintf (where, sizeof where, "%s[%zu]", path, index);
        const char *type = json_string_value (json_object_get (part, "type"));
        if (type && strcmp (type, "text") == 0) {
            json_t *text = json_object_get (part, "text");
            if (!json_is_string (text))
                return s_fail (err, err_size, "%s.text: must be a string", where);
            s_add_text_part (parts, json_string_value (text), json_string_length (text));
        }
        else if (type && strcmp (type, "image_url") == 0) {
            json_t *image = json_object_get (part, "image_url");
            //  Older clients send the URL as a bare string.
            const char *url = json_is_string (image)
                                  ? json_string_value (image)
                                  : json_string_value (json_object_get (image, "url"));
            if (!url)
                return s_fail (err, err_size, "%s.image_url.url: must be a string", where);
            json_t *image_part = s_image_part (url, where, err, err_size);
            if (!image_part)
                return -1;
            json_array_append_new (parts, image_part);
        }
        else
            return s_fail (err, err_size, "%s.type: unsupported content part \"%s\"", where,
                           type ? type : "(missing)");
    }
    return 0;
}

//  Append an assistant message's text and functionCall parts to PARTS,
//  recording each call's id -> name in NAMES. Returns 0, or -1 with ERR.
static int
s_assistant_parts (json_t *parts, json_t *message, json_t *names, const char *path, char *err,
                   size_t err_size)
{
    char where[S_PATH_MAX * 2];
    snprintf (where, sizeof where, "%s.content", path);
    char *text = s_text_content (json_object_get (message, "content"), where, err, err_size);
    if (!text)
        return -1;
    s_add_text_part (parts, text, strlen (text));
    free (text);

    json_t *calls = json_object_get (message, "tool_calls");
    if (!calls || json_is_null (calls))
        return 0;
    if (!json_is_array (calls))
        return s_fail (err, err_size, "%s.tool_calls: must be an array", path);
    size_t index;
    json_t *call;
    json_array_foreach (calls, index, call) {
        snprintf (where, sizeof where, "%s.tool_calls[%zu]", path, index);
        json_t *function = json_object_get (call, "function");
        const char *id = json_string_value (json_object_get (call, "id"));
        const char *name = json_string_value (json_object_get (function, "name"));
        json_t *arguments = json_object_get (function, "arguments");
        if (!id || !*id)
            return s_fail (err, err_size, "%s.id: must be a non-empty string", where);
        if (!name || !*name)
            return s_fail (err, err_size, "%s.function.name: must be a non-empty string", where);
        json_t *args = NULL;
        if (json_is_string (arguments) && json_string_length (arguments) == 0)
            args = json_object ();
        else if (json_is_string (arguments))
            args = json_loadb (json_string_value (arguments), json_string_length (arguments), 0,
                               NULL);
        if (!json_is_object (args)) {
            json_decref (args);
            return s_fail (err, err_size,
                           "%s.function.arguments: must be a string holding a JSON object", where);
        }
        json_array_append_new (
            parts, json_pack ("{s:{s:s, s:o}}", "functionCall", "name", name, "args", args));
        json_object_set_new (names, id, json_string (name));
    }
    return 0;
}

//  Append a tool message's functionResponse part to PARTS; its name is the
//  one NAMES holds for its tool_call_id. Returns 0, or -1 with ERR.
static int
s_tool_parts (json_t *parts, json_t *message, json_t *names, const char *path, char *err,
              size_t err_size)
{
    const char *id = json_string_value (json_object_get (message, "tool_call_id"));
    if (!id || !*id)
        return s_fail (err, err_size, "%s.tool_call_id: must be a non-empty string", path);
    const char *name = json_string_value (json_object_get (names, id));
    if (!name)
        return s_fail (err, err_size, "%s.tool_call_id: matches no earlier tool call", path);
    char where[S_PATH_MAX + 32];
    snprintf (where, sizeof where, "%s.content", path);
    char *text = s_text_content (json_object_get (message, "content"), where, err, err_size);
    if (!text)
        return -1;
    //  A result that is a JSON object goes as that object, else as text.
    json_t *content = json_loads (text, 0, NULL);
    if (!json_is_object (content)) {
        json_decref (content);
        content = json_string (text);
    }
    free (text);
    json_array_append_new (parts, json_pack ("{s:{s:s, s:{s:o}}}", "functionResponse", "name", name,
                                             "response", "content", content));
    return 0;
}

//  Append TEXT to the joined system instruction *SYSTEM (caller frees).
//  Returns 0, or -1 on allocation failure.
static int
s_join_system (char **system, size_t *system_len, const char *text)
{
    if (!*text)
        return 0;
    if (*system_len
        && aigw_adapter_append (system, system_len, S_SYSTEM_SEPARATOR,
                                strlen (S_SYSTEM_SEPARATOR)))
        return -1;
    return aigw_adapter_append (system, system_len, text, strlen (text));
}

//  Append a turn of ROLE holding PARTS (stolen) to CONTENTS, joining the
//  last turn when it has the same role; a turn without parts is dropped.
static void
s_add_turn (json_t *contents, const char *role, json_t *parts)
{
    json_t *last = json_array_get (contents, json_array_size (contents) - 1);
    const char *last_role = json_string_value (json_object_get (last, "role"));
    if (json_array_size (parts) == 0)
        json_decref (parts);
    else if (last_role && strcmp (last_role, role) == 0) {
        json_array_extend (json_object_get (last, "parts"), parts);
        json_decref (parts);
    }
    else
        json_array_append_new (contents, json_pack ("{s:s, s:o}", "role", role, "parts", parts));
}

//  Translate the "messages" array SOURCE into TARGET's contents and
//  systemInstruction. Returns 0, or -1 with ERR.
static int
s_translate_messages (json_t *source, json_t *target, char *err, size_t err_size)
{
    if (!json_is_array (source) || json_array_size (source) == 0)
        return s_fail (err, err_size, "messages: must be a non-empty array");
    json_t *contents = json_array ();
    json_t *names = json_object ();  //  tool_call id -> function name
    char *system = NULL;
    size_t system_len = 0;
    int rc = contents && names ? 0 : s_fail (err, err_size, "out of memory");
    size_t index;
    json_t *message;
    json_array_foreach (source, index, message) {
        if (rc)
            break;
        char path[S_PATH_MAX], where[S_PATH_MAX + 16];
        snprintf (path, sizeof path, "messages[%zu]", index);
        snprintf (where, sizeof where, "%s.content", path);
        const char *role = json_string_value (json_object_get (message, "role"));
        if (!role) {
            rc = s_fail (err, err_size, "%s.role: missing; each message needs a role", path);
            break;
        }
        json_t *content = json_object_get (message, "content");
        if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0) {
            char *text = s_text_content (content, where, err, err_size);
            rc = text ? s_join_system (&system, &system_len, text) : -1;
            if (text && rc)
                s_fail (err, err_size, "out of memory");
            free (text);
            continue;
        }
        json_t *parts = json_array ();
        const char *turn_role = "user";
        if (strcmp (role, "user") == 0)
            rc = s_user_parts (parts, content, where, err, err_size);
        else if (strcmp (role, "assistant") == 0) {
            turn_role = "model";
            rc = s_assistant_parts (parts, message, names, path, err, err_size);
        }
        else if (strcmp (role, "tool") == 0)
            rc = s_tool_parts (parts, message, names, path, err, err_size);
        else
            rc = s_fail (err, err_size, "%s.role: unsupported role \"%s\"", path, role);
        if (rc)
            json_decref (parts);
        else
            s_add_turn (contents, turn_role, parts);
    }
    if (rc == 0 && json_array_size (contents) == 0)
        rc = s_fail (err, err_size, "messages: no user or assistant message with content");
    if (rc == 0) {
        json_object_set (target, "contents", contents);
        if (system)
            json_object_set_new (target, "systemInstruction",
                                 json_pack ("{s:[{s:s%}]}", "parts", "text", system, system_len));
    }
    free (system);
    json_decref (names);
    json_decref (contents);
    return rc;
}

//  Translate tools and tool_choice of SOURCE into TARGET's tools and
//  toolConfig. Returns 0, or -1 with ERR.
static int
s_translate_tools (json_t *source, json_t *target, char *err, size_t err_size)
{
    json_t *tools = json_object_get (source, "tools");
    json_t *declarations = json_array ();
    if (!declarations)
        return s_fail (err, err_size, "out of memory");
    if (tools && !json_is_null (tools) && !json_is_array (tools)) {
        json_decref (declarations);
        return s_fail (err, err_size, "tools: must be an array");
    }
    size_t index;
    json_t *tool;
    json_array_foreach (tools, index, tool) {
        json_t *function = json_object_get (tool, "function");
        const char *type = json_string_value (json_object_get (tool, "type"));
        const char *name = json_string_value (json_object_get (function, "name"));
        json_t *description = json_object_get (function, "description");
        json_t *parameters = json_object_get (function, "parameters");
        if (!type || strcmp (type, "function") != 0 || !name || !*name) {
            json_decref (declarations);
            return s_fail (err, err_size,
                           "tools[%zu]: must be {\"type\":\"function\",\"function\":"
                           "{\"name\":...}}",
                           index);
        }
        if (parameters && !json_is_null (parameters) && !json_is_object (parameters)) {
            json_decref (declarations);
            return s_fail (err, err_size, "tools[%zu].function.parameters: must be an object",
                           index);
        }
        json_t *entry = json_pack ("{s:s}", "name", name);
        if (json_is_string (description))
            json_object_set (entry, "description", description);
        if (json_is_object (parameters))
            json_object_set (entry, "parameters", parameters);
        json_array_append_new (declarations, entry);
    }
    json_t *choice = json_object_get (source, "tool_choice");
    json_t *config = NULL;
    if (json_is_string (choice)) {
        const char *value = json_string_value (choice);
        const char *mode = strcmp (value, "auto") == 0       ? "AUTO"
                           : strcmp (value, "none") == 0     ? "NONE"
                           : strcmp (value, "required") == 0 ? "ANY"
                                                             : NULL;
        if (mode)
            config = json_pack ("{s:s}", "mode", mode);
    }
    else if (json_is_object (choice)) {
        const char *name
            = json_string_value (json_object_get (json_object_get (choice, "function"), "name"));
        if (name && *name)
            config = json_pack ("{s:s, s:[s]}", "mode", "ANY", "allowedFunctionNames", name);
    }
    else if (!choice || json_is_null (choice))
        config = json_null ();
    if (!config) {
        json_decref (declarations);
        return s_fail (err, err_size,
                       "tool_choice: must be auto, none, required or "
                       "{\"type\":\"function\",\"function\":{\"name\":...}}");
    }
    //  OpenAI ignores a tool_choice without tools; so does this translation.
    if (json_array_size (declarations)) {
        json_object_set_new (target, "tools",
                             json_pack ("[{s:O}]", "functionDeclarations", declarations));
        if (json_is_object (config))
            json_object_set_new (target, "toolConfig",
                                 json_pack ("{s:O}", "functionCallingConfig", config));
    }
    json_decref (config);
    json_decref (declarations);
    return 0;
}

//  Copy FIELD of SOURCE, when it is a number, into CONFIG as NAME.
//  Returns 0, or -1 with ERR when it is present with another type.
static int
s_copy_number (json_t *source, const char *field, json_t *config, const char *name, char *err,
               size_t err_size)
{
    json_t *value = json_object_get (source, field);
    if (!value || json_is_null (value))
        return 0;
    if (!json_is_number (value))
        return s_fail (err, err_size, "%s: must be a number", field);
    json_object_set (config, name, value);
    return 0;
}

//  Copy FIELD of SOURCE, when it is a positive integer, into CONFIG as
//  NAME. Returns 0, or -1 with ERR when it is present with another value.
static int
s_copy_count (json_t *source, const char *field, json_t *config, const char *name, char *err,
              size_t err_size)
{
    json_t *value = json_object_get (source, field);
    if (!value || json_is_null (value))
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < 1
        || json_integer_value (value) > INT32_MAX)
        return s_fail (err, err_size, "%s: must be a positive integer", field);
    json_object_set (config, name, value);
    return 0;
}

//  The generationConfig fields of CONFIG from SOURCE's sampling, limit,
//  stop and response_format fields. Returns 0, or -1 with ERR.
static int
s_translate_config (json_t *source, json_t *config, char *err, size_t err_size)
{
    if (s_copy_number (source, "temperature", config, "temperature", err, err_size)
        || s_copy_number (source, "top_p", config, "topP", err, err_size)
        || s_copy_number (source, "presence_penalty", config, "presencePenalty", err, err_size)
        || s_copy_number (source, "frequency_penalty", config, "frequencyPenalty", err, err_size))
        return -1;
    const char *limit = s_absent (source, "max_tokens") ? "max_completion_tokens" : "max_tokens";
    if (s_copy_count (source, limit, config, "maxOutputTokens", err, err_size)
        || s_copy_count (source, "n", config, "candidateCount", err, err_size))
        return -1;
    json_t *seed = json_object_get (source, "seed");
    if (json_is_integer (seed))
        json_object_set (config, "seed", seed);
    else if (seed && !json_is_null (seed))
        return s_fail (err, err_size, "seed: must be an integer");

    json_t *stop = json_object_get (source, "stop");
    if (json_is_string (stop)) {
        if (json_string_length (stop))
            json_object_set_new (config, "stopSequences", json_pack ("[O]", stop));
    }
    else if (json_is_array (stop)) {
        size_t index;
        json_t *sequence;
        json_array_foreach (stop, index, sequence)
            if (!json_is_string (sequence))
                return s_fail (err, err_size, "stop[%zu]: must be a string", index);
        if (json_array_size (stop))
            json_object_set (config, "stopSequences", stop);
    }
    else if (stop && !json_is_null (stop))
        return s_fail (err, err_size, "stop: must be a string or an array of strings");

    json_t *format = json_object_get (source, "response_format");
    if (!format || json_is_null (format))
        return 0;
    const char *type = json_string_value (json_object_get (format, "type"));
    if (type && strcmp (type, "text") == 0)
        return 0;
    if (type && strcmp (type, "json_object") == 0) {
        json_object_set_new (config, "responseMimeType", json_string ("application/json"));
        return 0;
    }
    if (type && strcmp (type, "json_schema") == 0) {
        json_t *schema = json_object_get (json_object_get (format, "json_schema"), "schema");
        if (!json_is_object (schema))
            return s_fail (err, err_size,
                           "response_format.json_schema.schema: must be an "
                           "object");
        json_object_set_new (config, "responseMimeType", json_string ("application/json"));
        json_object_set (config, "responseSchema", schema);
        return 0;
    }
    return s_fail (err, err_size,
                   "response_format.type: must be text, json_object or "
                   "json_schema");
}

//  The Gemini generateContent body for the OpenAI chat request SOURCE, a
//  new reference the caller owns, or NULL with ERR.
static json_t *
s_chat_body (json_t *source, char *err, size_t err_size)
{
    json_t *target = json_object ();
    json_t *config = json_object ();
    int rc = target && config ? 0 : s_fail (err, err_size, "out of memory");
    if (rc == 0)
        rc = s_translate_messages (json_object_get (source, "messages"), target, err, err_size);
    if (rc == 0)
        rc = s_translate_tools (source, target, err, err_size);
    if (rc == 0)
        rc = s_translate_config (source, config, err, err_size);
    if (rc == 0 && json_object_size (config))
        json_object_set (target, "generationConfig", config);
    json_decref (config);
    if (rc) {
        json_decref (target);
        return NULL;
    }
    return target;
}

//  The Gemini batchEmbedContents body for the OpenAI embeddings request
//  SOURCE and upstream MODEL, a new reference the caller owns, or NULL
//  with ERR.
static json_t *
s_embed_body (json_t *source, const char *model, char *err, size_t err_size)
{
    json_t *input = json_object_get (source, "input");
    json_t *texts = json_is_string (input) ? json_pack ("[O]", input) : json_incref (input);
    if (!json_is_array (texts) || json_array_size (texts) == 0) {
        json_decref (texts);
        s_fail (err, err_size, "input: must be a string or a non-empty array of strings");
        return NULL;
    }
    json_t *dimensions = json_object_get (source, "dimensions");
    if (dimensions && !json_is_null (dimensions)
        && (!json_is_integer (dimensions) || json_integer_value (dimensions) < 1)) {
        json_decref (texts);
        s_fail (err, err_size, "dimensions: must be a positive integer");
        return NULL;
    }
    char name[AIGW_ADAPTER_URL_MAX];
    snprintf (name, sizeof name, "%s%s", AIGW_GEMINI_MODEL_PREFIX, model);
    json_t *requests = json_array ();
    size_t index;
    json_t *text;
    json_array_foreach (texts, index, text) {
        if (!json_is_string (text)) {
            if (json_is_integer (text) || json_is_array (text))
                s_fail (err, err_size, "input: Gemini embeddings take text input");
            else
                s_fail (err, err_size, "input[%zu]: must be a string", index);
            json_decref (requests);
            json_decref (texts);
            return NULL;
        }
        json_t *request
            = json_pack ("{s:s, s:{s:[{s:O}]}}", "model", name, "content", "parts", "text", text);
        if (json_is_integer (dimensions))
            json_object_set (request, "outputDimensionality", dimensions);
        json_array_append_new (requests, request);
    }
    json_decref (texts);
    return json_pack ("{s:o}", "requests", requests);
}

//  Parse BODY as a JSON object: a new reference the caller owns, or NULL
//  with ERR.
static json_t *
s_load_object (const char *body, size_t len, char *err, size_t err_size)
{
    json_t *root = s_load (body, len, err, err_size);
    if (root && !json_is_object (root)) {
        json_decref (root);
        s_fail (err, err_size, "body: must be a JSON object");
        return NULL;
    }
    return root;
}

//  --------------------------------------------------------------------------
//  Answers

//  OpenAI finish_reason for a Gemini finishReason; HAS_CALLS wins.
static const char *
s_finish_reason (const char *reason, bool has_calls)
{
    static const char *filtered[]
        = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};
    if (has_calls)
        return "tool_calls";
    if (!reason)
        return "stop";
    if (strcmp (reason, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < sizeof filtered / sizeof filtered[0]; i++)
        if (strcmp (reason, filtered[i]) == 0)
            return "content_filter";
    return "stop";  //  STOP, OTHER and reasons yet to come
}

//  OpenAI usage for Gemini token counts. Thought tokens are output tokens
//  in OpenAI's count (reasoning_tokens); TOTAL < 0 means "not reported".
//  CACHED (cachedContentTokenCount, among the prompt tokens) goes to
//  prompt_tokens_details.cached_tokens when there are any.
static json_t *
s_usage (json_int_t prompt, json_int_t output, json_int_t thoughts, json_int_t total,
         json_int_t cached)
{
    json_int_t completion = output + thoughts;
    json_t *usage
        = json_pack ("{s:I, s:I, s:I}", "prompt_tokens", prompt, "completion_tokens", completion,
                     "total_tokens", total >= 0 ? total : prompt + completion);
    if (usage && thoughts > 0)
        json_object_set_new (usage, "completion_tokens_details",
                             json_pack ("{s:I}", "reasoning_tokens", thoughts));
    if (usage && cached > 0)
        json_object_set_new (usage, "prompt_tokens_details",
                             json_pack ("{s:I}", "cached_tokens", cached));
    return usage;
}

//  OpenAI usage for a Gemini usageMetadata object (zeros when absent).
static json_t *
s_usage_of (json_t *metadata)
{
    json_t *total = json_object_get (metadata, "totalTokenCount");
    return s_usage (json_integer_value (json_object_get (metadata, "promptTokenCount")),
                    json_integer_value (json_object_get (metadata, "candidatesTokenCount")),
                    json_integer_value (json_object_get (metadata, "thoughtsTokenCount")),
                    json_is_integer (total) ? json_integer_value (total) : -1,
                    json_integer_value (json_object_get (metadata, "cachedContentTokenCount")));
}

//  Translate the parts of one candidate's CONTENT: append its answer text
//  to *TEXT (a malloc'd buffer) and its calls to CALLS, numbering ids from
//  *NEXT_CALL (advanced). Thought summaries are left out. Returns 0, or -1
//  with ERR naming PATH.
static int
s_translate_parts (json_t *content, char **text, size_t *text_len, json_t *calls, size_t *next_call,
                   const char *path, char *err, size_t err_size)
{
    json_t *parts = json_object_get (content, "parts");
    if (parts && !json_is_array (parts))
        return s_fail (err, err_size, "%s.content.parts: must be an array", path);
    size_t index;
    json_t *part;
    json_array_foreach (parts, index, part) {
        json_t *piece = json_object_get (part, "text");
        json_t *call = json_object_get (part, "functionCall");
        if (json_is_string (piece) && !json_is_true (json_object_get (part, "thought"))) {
            if (aigw_adapter_append (text, text_len, json_string_value (piece),
                                     json_string_length (piece)))
                return s_fail (err, err_size, "out of memory");
        }
        else if (call) {
            const char *name = json_string_value (json_object_get (call, "name"));
            json_t *args = json_object_get (call, "args");
            if (!name || !*name || (args && !json_is_object (args)))
                return s_fail (err, err_size,
                               "%s.content.parts[%zu].functionCall: needs a "
                               "name and an args object",
                               path, index);
            if (*next_call >= AIGW_GEMINI_TOOL_CALLS_MAX)
                return s_fail (err, err_size, "%s: more than %d tool calls", path,
                               AIGW_GEMINI_TOOL_CALLS_MAX);
            char *arguments = args ? json_dumps (args, JSON_COMPACT) : strdup ("{}");
            if (!arguments)
                return s_fail (err, err_size, "out of memory");
            char id[S_CALL_ID_SIZE];
            s_call_id (id, name, arguments, (*next_call)++);
            json_array_append_new (calls, json_pack ("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type",
                                                     "function", "function", "name", name,
                                                     "arguments", arguments));
            free (arguments);
        }
        //  executableCode, inlineData and other parts have no chat form.
    }
    return 0;
}

//  The OpenAI choice for CANDIDATE, the INDEXth, a new reference the
//  caller owns, or NULL with ERR. Tool call ids count from *NEXT_CALL.
static json_t *
s_choice (json_t *candidate, size_t index, size_t *next_call, char *err, size_t err_size)
{
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "candidates[%zu]", index);
    if (!json_is_object (candidate)) {
        s_fail (err, err_size, "%s: must be an object", path);
        return NULL;
    }
    char *text = NULL;
    size_t text_len = 0;
    json_t *calls = json_array ();
    int rc = calls ? s_translate_parts (json_object_get (candidate, "content"), &text, &text_len,
                                        calls, next_call, path, err, err_size)
                   : s_fail (err, err_size, "out of memory");
    json_t *choice = NULL;
    if (rc == 0) {
        bool has_calls = json_array_size (calls) > 0;
        json_t *message = json_pack (
            "{s:s, s:o}", "role", "assistant", "content",
            text_len || !has_calls ? json_stringn (text ? text : "", text_len) : json_null ());
        if (message && has_calls)
            json_object_set (message, "tool_calls", calls);
        json_t *position = json_object_get (candidate, "index");
        const char *reason = json_string_value (json_object_get (candidate, "finishReason"));
        choice = json_pack (
            "{s:I, s:o, s:n, s:s}", "index",
            json_is_integer (position) ? json_integer_value (position) : (json_int_t) index,
            "message", message, "logprobs", "finish_reason", s_finish_reason (reason, has_calls));
        if (!choice)
            s_fail (err, err_size, "out of memory");
    }
    free (text);
    json_decref (calls);
    return choice;
}

//  Write into ID "chatcmpl-" + the Gemini responseId of ROOT, or a made-up
//  one from a hash of the answer and the time when it has none.
static void
s_completion_id (char id[S_ID_SIZE], json_t *root, const char *body, size_t len)
{
    const char *response_id = json_string_value (json_object_get (root, "responseId"));
    if (response_id && *response_id && aigw_adapter_url_safe (response_id))
        snprintf (id, S_ID_SIZE, "chatcmpl-%s", response_id);
    else
        snprintf (id, S_ID_SIZE, "chatcmpl-%08x%08llx", s_fnv1a (S_FNV_BASIS, body, len),
                  (unsigned long long) time (NULL));
}

//  The message of a Gemini error body ROOT ({"error":{...}} or that in an
//  array), or NULL.
static const char *
s_error_of (json_t *root)
{
    if (json_is_array (root))
        root = json_array_get (root, 0);
    return json_string_value (json_object_get (json_object_get (root, "error"), "message"));
}

//  The OpenAI chat.completion for the Gemini answer ROOT, or NULL with ERR.
static json_t *
s_chat_answer (json_t *root, const char *body, size_t len, const char *model, char *err,
               size_t err_size)
{
    json_t *candidates = json_object_get (root, "candidates");
    json_t *feedback = json_object_get (root, "promptFeedback");
    json_t *choices = json_array ();
    if (!choices) {
        s_fail (err, err_size, "out of memory");
        return NULL;
    }
    if (candidates && !json_is_null (candidates) && !json_is_array (candidates)) {
        json_decref (choices);
        s_fail (err, err_size, "candidates: must be an array");
        return NULL;
    }
    size_t next_call = 0, index;
    json_t *candidate;
    json_array_foreach (candidates, index, candidate) {
        if (index >= AIGW_GEMINI_CHOICES_MAX)
            break;
        json_t *choice = s_choice (candidate, index, &next_call, err, err_size);
        if (!choice) {
            json_decref (choices);
            return NULL;
        }
        json_array_append_new (choices, choice);
    }
    if (json_array_size (choices) == 0) {
        //  A blocked prompt has no candidates, only the reason.
        if (!json_is_string (json_object_get (feedback, "blockReason"))) {
            json_decref (choices);
            s_fail (err, err_size, "candidates: the Gemini answer has none");
            return NULL;
        }
        json_array_append_new (choices, json_pack ("{s:i, s:{s:s, s:s}, s:n, s:s}", "index", 0,
                                                   "message", "role", "assistant", "content", "",
                                                   "logprobs", "finish_reason", "content_filter"));
    }
    char id[S_ID_SIZE];
    s_completion_id (id, root, body, len);
    if (!model)
        model = json_string_value (json_object_get (root, "modelVersion"));
    json_t *answer = json_pack ("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", id, "object",
                                "chat.completion", "created", (json_int_t) time (NULL), "model",
                                model ? model : "gemini", "choices", choices, "usage",
                                s_usage_of (json_object_get (root, "usageMetadata")));
    if (!answer)
        s_fail (err, err_size, "out of memory");
    return answer;
}

//  The OpenAI embeddings list for the Gemini answer ROOT, or NULL with ERR.
static json_t *
s_embed_answer (json_t *root, const char *model, char *err, size_t err_size)
{
    json_t *embeddings = json_object_get (root, "embeddings");
    if (!json_is_array (embeddings)) {
        s_fail (err, err_size, "embeddings: must be an array");
        return NULL;
    }
    json_t *data = json_array ();
    size_t index;
    json_t *embedding;
    json_array_foreach (embeddings, index, embedding) {
        json_t *values = json_object_get (embedding, "values");
        if (!json_is_array (values)) {
            json_decref (data);
            s_fail (err, err_size, "embeddings[%zu].values: must be an array", index);
            return NULL;
        }
        json_array_append_new (data, json_pack ("{s:s, s:I, s:O}", "object", "embedding", "index",
                                                (json_int_t) index, "embedding", values));
    }
    json_t *answer
        = json_pack ("{s:s, s:o, s:s, s:{s:i, s:i}}", "object", "list", "data", data, "model",
                     model ? model : "gemini", "usage", "prompt_tokens", 0, "total_tokens", 0);
    if (!answer)
        s_fail (err, err_size, "out of memory");
    return answer;
}

//  Parse a Gemini answer BODY: a new reference to its object the caller
//  owns, or NULL with ERR (an error body gives its message there).
static json_t *
s_load_answer (const char *body, size_t len, char *err, size_t err_size)
{
    json_t *root = s_load (body, len, err, err_size);
    const char *message = s_error_of (root);
    if (message || (root && !json_is_object (root))) {
        if (message)
            s_fail (err, err_size, "upstream error: %s", message);
        else
            s_fail (err, err_size, "body: must be a JSON object");
        json_decref (root);
        return NULL;
    }
    return root;
}

//  --------------------------------------------------------------------------
//  The four body translations

//  Which translation s_translate makes.
typedef enum {
    S_CHAT_REQUEST,   //  OpenAI chat request -> generateContent body
    S_EMBED_REQUEST,  //  OpenAI embeddings request -> batchEmbedContents body
    S_CHAT_ANSWER,    //  generateContent answer -> OpenAI chat.completion
    S_EMBED_ANSWER,   //  batchEmbedContents answer -> OpenAI embeddings list
} s_job_t;

//  BODY translated as JOB asks, with MODEL (the upstream model for an
//  embeddings request, the model to name in an answer): a new buffer the
//  caller owns (length in *OUT_LEN), or NULL with ERR.
static char *
s_translate (s_job_t job, const char *body, size_t len, const char *model, size_t *out_len,
             char *err, size_t err_size)
{
    bool answer = job == S_CHAT_ANSWER || job == S_EMBED_ANSWER;
    json_t *root = answer ? s_load_answer (body, len, err, err_size)
                          : s_load_object (body, len, err, err_size);
    json_t *result = !root                    ? NULL
                     : job == S_CHAT_REQUEST  ? s_chat_body (root, err, err_size)
                     : job == S_EMBED_REQUEST ? s_embed_body (root, model, err, err_size)
                     : job == S_CHAT_ANSWER ? s_chat_answer (root, body, len, model, err, err_size)
                                            : s_embed_answer (root, model, err, err_size);
    json_decref (root);
    return result ? s_dump (result, out_len, err, err_size) : NULL;
}

char *
aigw_gemini_request_from_openai (const char *body, size_t len, size_t *out_len, char *err,
                                 size_t err_size)
{
    return s_translate (S_CHAT_REQUEST, body, len, NULL, out_len, err, err_size);
}

char *
aigw_gemini_embeddings_from_openai (const char *body, size_t len, const char *model,
                                    size_t *out_len, char *err, size_t err_size)
{
    return s_translate (S_EMBED_REQUEST, body, len, model, out_len, err, err_size);
}

char *
aigw_gemini_response_to_openai (const char *body, size_t len, const char *model, size_t *out_len,
                                char *err, size_t err_size)
{
    return s_translate (S_CHAT_ANSWER, body, len, model, out_len, err, err_size);
}

char *
aigw_gemini_embeddings_to_openai (const char *body, size_t len, const char *model, size_t *out_len,
                                  char *err, size_t err_size)
{
    return s_translate (S_EMBED_ANSWER, body, len, model, out_len, err, err_size);
}

//  --------------------------------------------------------------------------
//  Streams

aigw_gemini_stream_t *
aigw_gemini_stream_new (const char *model, const char *id)
{
    aigw_gemini_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->created = (json_int_t) time (NULL);
    self->total_tokens = -1;
    char made_up[S_ID_SIZE];
    if (!id) {
        snprintf (made_up, sizeof made_up, "chatcmpl-%08x%08llx",
                  s_fnv1a (S_FNV_BASIS, (const char *) &self, sizeof self),
                  (unsigned long long) self->created);
        id = made_up;
    }
    self->model = strdup (model ? model : "gemini");
    self->id = strdup (id);
    if (!self->model || !self->id)
        aigw_gemini_stream_destroy (&self);
    return self;
}

void
aigw_gemini_stream_destroy (aigw_gemini_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aigw_gemini_stream_t *self = *self_p;
    free (self->model);
    free (self->id);
    free (self);
    *self_p = NULL;
}

bool
aigw_gemini_stream_done (aigw_gemini_stream_t *self)
{
    return self && self->done;
}

//  Append one chunk event with DELTA (stolen), FINISH (or null) and USAGE
//  (stolen, or NULL for none) to *OUT. Returns 0, or -1 when out of memory.
static int
s_stream_chunk (aigw_gemini_stream_t *self, json_t *delta, const char *finish, json_t *usage,
                char **out, size_t *out_len)
{
    return aigw_openai_append_chunk (out, out_len, self->id, self->created, self->model, delta,
                                     finish, usage);
}

//  End the stream with an error event of TYPE and MESSAGE and [DONE].
//  Returns -1 with ERR (which says WHY).
static int
s_stream_fail (aigw_gemini_stream_t *self, const char *type, const char *message, const char *why,
               char **out, size_t *out_len, char *err, size_t err_size)
{
    self->done = true;
    aigw_adapter_append_error (out, out_len, type, message);
    return s_fail (err, err_size, "%s", why);
}

//  Translate one Gemini stream event (the parsed JSON EVENT) into chunks
//  appended to *OUT. Returns 0, or -1 with ERR.
static int
s_stream_event (aigw_gemini_stream_t *self, json_t *event, char **out, size_t *out_len, char *err,
                size_t err_size)
{
    const char *message = s_error_of (event);
    if (message || json_object_get (event, "error")) {
        const char *status
            = json_string_value (json_object_get (json_object_get (event, "error"), "status"));
        char why[S_WHY_SIZE];
        snprintf (why, sizeof why, "upstream error: %s", message ? message : "(no message)");
        return s_stream_fail (self, status ? status : "upstream_error",
                              message ? message : "The upstream failed.", why, out, out_len, err,
                              err_size);
    }
    if (!json_is_object (event))
        return s_stream_fail (self, "upstream_error", "The upstream sent a malformed stream.",
                              "stream: an event is not a JSON object", out, out_len, err, err_size);
    json_t *candidate = json_array_get (json_object_get (event, "candidates"), 0);
    char *text = NULL;
    size_t text_len = 0, first_call = self->calls;
    json_t *calls = json_array ();
    if (!calls)
        return s_fail (err, err_size, "out of memory");
    int rc = s_translate_parts (json_object_get (candidate, "content"), &text, &text_len, calls,
                                &self->calls, "candidates[0]", err, err_size);
    if (rc) {
        char why[S_WHY_SIZE];
        snprintf (why, sizeof why, "stream: %s", err && err_size ? err : "bad event");
        free (text);
        json_decref (calls);
        return s_stream_fail (self, "upstream_error", "The upstream sent a malformed stream.", why,
                              out, out_len, err, err_size);
    }
    json_t *metadata = json_object_get (event, "usageMetadata");
    if (json_is_object (metadata)) {
        json_t *total = json_object_get (metadata, "totalTokenCount");
        self->prompt_tokens = json_integer_value (json_object_get (metadata, "promptTokenCount"));
        self->output_tokens
            = json_integer_value (json_object_get (metadata, "candidatesTokenCount"));
        self->thought_tokens
            = json_integer_value (json_object_get (metadata, "thoughtsTokenCount"));
        self->total_tokens = json_is_integer (total) ? json_integer_value (total) : -1;
        self->cached_tokens
            = json_integer_value (json_object_get (metadata, "cachedContentTokenCount"));
    }
    if (!self->started) {
        self->started = true;
        rc = s_stream_chunk (self, json_pack ("{s:s, s:s}", "role", "assistant", "content", ""),
                             NULL, NULL, out, out_len);
    }
    if (rc == 0 && text_len)
        rc = s_stream_chunk (self, json_pack ("{s:s%}", "content", text, text_len), NULL, NULL, out,
                             out_len);
    if (rc == 0 && json_array_size (calls)) {
        //  OpenAI's index is the call's position in the whole answer.
        size_t index;
        json_t *call;
        json_array_foreach (calls, index, call)
            json_object_set_new (call, "index", json_integer ((json_int_t) (first_call + index)));
        rc = s_stream_chunk (self, json_pack ("{s:O}", "tool_calls", calls), NULL, NULL, out,
                             out_len);
    }
    free (text);
    json_decref (calls);
    const char *reason = json_string_value (json_object_get (candidate, "finishReason"));
    bool blocked = !candidate
                   && json_is_string (
                       json_object_get (json_object_get (event, "promptFeedback"), "blockReason"));
    if (rc == 0 && (reason || blocked)) {
        const char *finish = blocked ? "content_filter" : s_finish_reason (reason, self->calls > 0);
        rc = s_stream_chunk (self, json_object (), finish,
                             s_usage (self->prompt_tokens, self->output_tokens,
                                      self->thought_tokens, self->total_tokens,
                                      self->cached_tokens),
                             out, out_len);
        if (rc == 0)
            rc = aigw_adapter_append (out, out_len, "data: [DONE]\n\n", 14);
        self->done = true;
    }
    return rc ? s_fail (err, err_size, "out of memory") : 0;
}

int
aigw_gemini_stream_feed (aigw_gemini_stream_t *self, const char *event_data, size_t len, char **out,
                         size_t *out_len, char *err, size_t err_size)
{
    assert (self);
    //  Gemini has no end marker: after the finishReason event, events are ignored.
    if (self->done)
        return 0;
    json_t *event = json_loadb (event_data ? event_data : "", event_data ? len : 0, 0, NULL);
    int rc
        = event ? s_stream_event (self, event, out, out_len, err, err_size)
                : s_stream_fail (self, "upstream_error", "The upstream sent a malformed stream.",
                                 "stream: an event is not valid JSON", out, out_len, err, err_size);
    json_decref (event);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest. The fixtures are tests/fixtures/gemini/*, embedded by the
//  build (tests/aigw_fixture.h). They follow the shapes in each provider's
//  public API reference.

//  The text of fixture NAME.
#define S_FX(name) aigw_fixture_in ("gemini", name)

//  Every fixture, by file name in tests/fixtures/gemini.
static const char *const s_fixtures[] = {
    "gemini_error.json",
    "gemini_error_array.json",
    "gemini_request_embeddings.json",
    "gemini_request_images.json",
    "gemini_request_multiturn.json",
    "gemini_request_tools.json",
    "gemini_response_blocked.json",
    "gemini_response_embeddings.json",
    "gemini_response_function_call.json",
    "gemini_response_text.json",
    "gemini_stream_error.sse",
    "gemini_stream_text.sse",
    "gemini_stream_tool_call.sse",
    "openai_request_embeddings.json",
    "openai_request_images.json",
    "openai_request_multiturn.json",
    "openai_request_tools.json",
    "openai_response_blocked.json",
    "openai_response_embeddings.json",
    "openai_response_function_call.json",
    "openai_response_text.json",
    "openai_stream_error.json",
    "openai_stream_text.json",
    "openai_stream_tool_call.json",
};

//  Mangled variants of each fixture the selftest runs through everything.
#define S_TEST_MUTATIONS 200

//  Compare GOT with WANT field by field; PATH names where. In WANT, a
//  string ending in '*' matches any string with that prefix and "created"
//  matches any integer. Returns true when they match, else prints the first
//  difference.
static bool
s_test_same (json_t *got, json_t *want, const char *path)
{
    char where[512];
    if (json_is_object (want)) {
        if (!json_is_object (got) || json_object_size (got) != json_object_size (want)) {
            fprintf (stderr, "gemini: %s: fields differ\n", path);
            return false;
        }
        const char *key;
        json_t *value;
        json_object_foreach (want, key, value) {
            snprintf (where, sizeof where, "%s.%s", path, key);
            json_t *other = json_object_get (got, key);
            if (strcmp (key, "created") == 0 && json_is_integer (other))
                continue;
            if (!other || !s_test_same (other, value, where)) {
                if (!other)
                    fprintf (stderr, "gemini: %s: missing\n", where);
                return false;
            }
        }
        return true;
    }
    if (json_is_array (want)) {
        if (!json_is_array (got) || json_array_size (got) != json_array_size (want)) {
            fprintf (stderr, "gemini: %s: array sizes differ\n", path);
            return false;
        }
        for (size_t i = 0; i < json_array_size (want); i++) {
            snprintf (where, sizeof where, "%s[%zu]", path, i);
            if (!s_test_same (json_array_get (got, i), json_array_get (want, i), where))
                return false;
        }
        return true;
    }
    const char *pattern = json_string_value (want);
    size_t pattern_len = json_string_length (want);
    if (pattern && pattern_len && pattern[pattern_len - 1] == '*' && json_is_string (got)
        && strncmp (json_string_value (got), pattern, pattern_len - 1) == 0)
        return true;
    if (json_equal (got, want))
        return true;
    char *a = json_dumps (got, JSON_ENCODE_ANY), *b = json_dumps (want, JSON_ENCODE_ANY);
    fprintf (stderr, "gemini: %s: got %s, want %s\n", path, a ? a : "?", b ? b : "?");
    free (a);
    free (b);
    return false;
}

//  Assert TEXT parses and matches the JSON text WANT field by field.
static void
s_test_match (const char *text, size_t len, const char *want_text)
{
    assert (text && len == strlen (text));
    json_t *got = json_loadb (text, len, 0, NULL);
    json_t *want = json_loads (want_text, 0, NULL);
    assert (got && want);
    assert (s_test_same (got, want, "$"));
    json_decref (got);
    json_decref (want);
}

//  Translate the OpenAI BODY of KIND (chat, or embeddings for MODEL),
//  asserting success, and match it against WANT.
static void
s_test_request (aigw_kind_t kind, const char *body, const char *model, const char *want)
{
    char err[256] = "";
    size_t len = 0;
    char *out = kind == AIGW_KIND_CHAT
                    ? aigw_gemini_request_from_openai (body, strlen (body), &len, err, sizeof err)
                    : aigw_gemini_embeddings_from_openai (body, strlen (body), model, &len, err,
                                                          sizeof err);
    if (!out)
        fprintf (stderr, "gemini: unexpected error: %s\n", err);
    s_test_match (out, len, want);
    free (out);
}

//  Assert the request BODY of KIND is rejected with an error naming FIELD.
static void
s_test_bad_request (aigw_kind_t kind, const char *body, const char *field)
{
    char err[256] = "";
    size_t len = 0;
    char *out = kind == AIGW_KIND_CHAT
                    ? aigw_gemini_request_from_openai (body, strlen (body), &len, err, sizeof err)
                    : aigw_gemini_embeddings_from_openai (body, strlen (body), "m", &len, err,
                                                          sizeof err);
    if (out || !strstr (err, field))
        fprintf (stderr, "gemini: %s gave \"%s\", wanted %s\n", body, err, field);
    assert (!out && strstr (err, field));
}

//  Translate the Gemini answer BODY of KIND for MODEL, asserting success,
//  and match it against WANT.
static void
s_test_response (aigw_kind_t kind, const char *body, const char *model, const char *want)
{
    char err[256] = "";
    size_t len = 0;
    char *out
        = kind == AIGW_KIND_CHAT
              ? aigw_gemini_response_to_openai (body, strlen (body), model, &len, err, sizeof err)
              : aigw_gemini_embeddings_to_openai (body, strlen (body), model, &len, err,
                                                  sizeof err);
    if (!out)
        fprintf (stderr, "gemini: unexpected error: %s\n", err);
    s_test_match (out, len, want);
    free (out);
}

//  Feed the data of each "data: " line of SSE (one line per event, as the
//  fixtures are written) to a new translator. Returns the output, which
//  the caller frees; *RC is the first nonzero feed result, or 0.
static char *
s_test_stream (const char *sse, int *rc, char *err, size_t err_size)
{
    aigw_gemini_stream_t *self = aigw_gemini_stream_new ("my-gemini", "chatcmpl-test");
    assert (self && !aigw_gemini_stream_done (self));
    char *out = NULL;
    size_t out_len = 0;
    *rc = 0;
    for (const char *line = sse; *line;) {
        size_t line_len = strcspn (line, "\r\n");
        if (line_len > 6 && strncmp (line, "data: ", 6) == 0) {
            int feed = aigw_gemini_stream_feed (self, line + 6, line_len - 6, &out, &out_len, err,
                                                err_size);
            if (feed && !*rc)
                *rc = feed;
        }
        line += line_len;
        line += strspn (line, "\r\n");
    }
    assert (!out || out_len == strlen (out));
    assert (aigw_gemini_stream_done (self) == (out && strstr (out, "data: [DONE]\n\n")));
    aigw_gemini_stream_destroy (&self);
    aigw_gemini_stream_destroy (&self);
    assert (!self);
    return out ? out : strdup ("");
}

//  The events of an OpenAI SSE buffer as a JSON array, "created" removed
//  and [DONE] as the string "[DONE]"; the caller owns it.
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
            json_object_del (chunk, "created");
            json_array_append_new (events, chunk);
        }
        at = end + 2;
    }
    return events;
}

//  Translate the events of STREAM and match them against WANT, with feed
//  result RC_WANT and, when ERR_WANT, an error saying so.
static void
s_test_stream_all (const char *stream, const char *want, int rc_want, const char *err_want)
{
    char err[256] = "";
    int rc;
    char *out = s_test_stream (stream, &rc, err, sizeof err);
    assert (rc == rc_want);
    if (err_want)
        assert (strstr (err, err_want));
    json_t *expected = json_loads (want, 0, NULL);
    assert (expected);
    size_t index;
    json_t *chunk;
    json_array_foreach (expected, index, chunk)
        json_object_del (chunk, "created");
    json_t *events = s_test_events (out);
    assert (s_test_same (events, expected, "stream"));
    json_decref (expected);
    json_decref (events);
    free (out);
}

//  Run every entry point on MUTATIONS variants of each fixture, each with a
//  few bytes overwritten (a fixed pseudo-random sequence): nothing may crash
//  or leak, whatever the result.
static void
s_test_mutations (size_t mutations)
{
    static const char junk[] = "{}[]\",:0-9eE\\ \n\rxnull";
    uint32_t seed = S_FNV_BASIS;
    for (size_t i = 0; i < sizeof s_fixtures / sizeof s_fixtures[0]; i++) {
        size_t len = strlen (S_FX (s_fixtures[i]));
        char *copy = malloc (len + 1);
        assert (copy);
        for (size_t round = 0; round < mutations; round++) {
            memcpy (copy, S_FX (s_fixtures[i]), len + 1);
            for (int flip = 0; flip < 3; flip++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % len;
                copy[at] = junk[(seed >> 4) % (sizeof junk - 1)];
            }
            char err[256];
            size_t out_len = 0;
            free (aigw_gemini_request_from_openai (copy, len, &out_len, err, sizeof err));
            free (aigw_gemini_embeddings_from_openai (copy, len, "m", &out_len, err, sizeof err));
            free (aigw_gemini_response_to_openai (copy, len, round & 1 ? "m" : NULL, &out_len, err,
                                                  sizeof err));
            free (aigw_gemini_embeddings_to_openai (copy, len, NULL, &out_len, err, sizeof err));
            int rc;
            free (s_test_stream (copy, &rc, err, sizeof err));
            //  The whole text as one event too, as a stream that is not SSE.
            aigw_gemini_stream_t *stream = aigw_gemini_stream_new (NULL, NULL);
            char *out = NULL;
            aigw_gemini_stream_feed (stream, copy, len, &out, &out_len, err, sizeof err);
            free (out);
            aigw_gemini_stream_destroy (&stream);
        }
        free (copy);
    }
}

void
aigw_gemini_test (bool verbose)
{
    //  Requests: every fixture, field by field.
    s_test_request (AIGW_KIND_CHAT, S_FX ("openai_request_multiturn.json"), "gemini-2.0-flash",
                    S_FX ("gemini_request_multiturn.json"));
    s_test_request (AIGW_KIND_CHAT, S_FX ("openai_request_tools.json"), "gemini-2.0-flash",
                    S_FX ("gemini_request_tools.json"));
    s_test_request (AIGW_KIND_CHAT, S_FX ("openai_request_images.json"), "gemini-2.0-flash",
                    S_FX ("gemini_request_images.json"));
    s_test_request (AIGW_KIND_EMBEDDINGS, S_FX ("openai_request_embeddings.json"),
                    "gemini-embedding-001", S_FX ("gemini_request_embeddings.json"));

    //  Small cases: one string to embed, plain text, tool_choice modes.
    s_test_request (AIGW_KIND_EMBEDDINGS, "{\"input\":\"hi\"}", "gemini-2.0-flash",
                    "{\"requests\":[{\"model\":\"models/gemini-2.0-flash\",\"content\":"
                    "{\"parts\":[{\"text\":\"hi\"}]}}]}");
    static const struct {
        const char *choice;  //  OpenAI tool_choice
        const char *config;  //  Gemini toolConfig
    } choices[] = {
        {"\"auto\"", "{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}"},
        {"\"none\"", "{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"},
        {"\"required\"", "{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"},
    };
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        char body[512];
        snprintf (body, sizeof body,
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":%s,"
                  "\"temperature\":1,\"stop\":[]}",
                  choices[i].choice);
        char want[512];
        snprintf (want, sizeof want,
                  "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"tools\":"
                  "[{\"functionDeclarations\":[{\"name\":\"f\"}]}],\"toolConfig\":%s,"
                  "\"generationConfig\":{\"temperature\":1}}",
                  choices[i].config);
        s_test_request (AIGW_KIND_CHAT, body, "gemini-2.0-flash", want);
    }
    //  A JSON schema, penalties and a seed; tool_choice without tools dropped.
    const char *schema = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                         "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                         "{\"name\":\"s\",\"schema\":{\"type\":\"object\"}}},"
                         "\"presence_penalty\":0.5,\"frequency_penalty\":-1,\"seed\":7,"
                         "\"tool_choice\":\"required\",\"stop\":\"\",\"max_tokens\":null,"
                         "\"max_completion_tokens\":9}";
    s_test_request (AIGW_KIND_CHAT, schema, "gemini-2.0-flash",
                    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
                    "\"generationConfig\":{\"responseMimeType\":\"application/json\","
                    "\"responseSchema\":{\"type\":\"object\"},\"presencePenalty\":0.5,"
                    "\"frequencyPenalty\":-1,\"seed\":7,\"maxOutputTokens\":9}}");
    //  Bad requests name the field.
    static const struct {
        const char *body;   //  OpenAI chat request
        const char *field;  //  what the error must name
    } bad[] = {
        {"not json", "body"},
        {"[1,2]", "body"},
        {"{}", "messages"},
        {"{\"messages\":[]}", "messages"},
        {"{\"messages\":{\"role\":\"user\"}}", "messages"},
        {"{\"messages\":[7]}", "messages[0].role"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "messages"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":5}]}", "messages[0].content"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":7}]}", "messages[0].content"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]}",
         "messages[0].content[0].type"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}",
         "messages[0].content[0].text"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
         "messages[0].content[0].image_url.url"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"ftp://x/y.png\"}}]}]}",
         "messages[0].content[0]"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"data:image/png,abc\"}}]}]}",
         "data URL"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\",\"function\":"
         "{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}",
         "messages[0].tool_calls[0].function.arguments"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\",\"function\":"
         "{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
         "messages[0].tool_calls[0].function.arguments"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\",\"function\":"
         "{\"name\":\"f\",\"arguments\":{}}}]}]}",
         "messages[0].tool_calls[0].function.arguments"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\","
         "\"arguments\":\"{}\"}}]}]}",
         "messages[0].tool_calls[0].id"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\"}]}]}",
         "messages[0].tool_calls[0].function.name"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}", "messages[0].tool_calls"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].tool_call_id"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":"
         "{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"b\","
         "\"content\":\"x\"}]}",
         "messages[1].tool_call_id"},
        {"{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"x\"},"
         "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\","
         "\"arguments\":\"{}\"}}]}]}",
         "messages[0].tool_call_id"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":1.5}",
         "max_completion_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}", "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":5}", "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",1]}", "stop[1]"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
         "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":[]}", "top_p"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", "tools"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}", "tools[0]"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"parameters\":3}}]}",
         "tools[0].function.parameters"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"maybe\"}",
         "tool_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":{}}",
         "tool_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
         "{\"type\":\"xml\"}}",
         "response_format.type"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"s\"}", "seed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_test_bad_request (AIGW_KIND_CHAT, bad[i].body, bad[i].field);
    s_test_bad_request (AIGW_KIND_EMBEDDINGS, "{\"input\":[1,2,3]}",
                        "Gemini embeddings take text input");
    s_test_bad_request (AIGW_KIND_EMBEDDINGS, "{\"input\":[[1,2],[3]]}",
                        "Gemini embeddings take text input");
    s_test_bad_request (AIGW_KIND_EMBEDDINGS, "{\"input\":[]}", "input");
    s_test_bad_request (AIGW_KIND_EMBEDDINGS, "{\"input\":[\"a\",{}]}", "input[1]");
    s_test_bad_request (AIGW_KIND_EMBEDDINGS, "{}", "input");
    s_test_bad_request (AIGW_KIND_EMBEDDINGS, "{\"input\":\"a\",\"dimensions\":-3}", "dimensions");
    //  Oversized bodies are refused before they are parsed.
    const char *hello = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char err[256] = "";
    size_t len = 0;
    assert (!aigw_gemini_request_from_openai (hello, (size_t) AIGW_GEMINI_BODY_MAX + 1, &len, err,
                                              sizeof err));
    assert (strstr (err, "body"));

    //  Answers: every fixture, field by field.
    s_test_response (AIGW_KIND_CHAT, S_FX ("gemini_response_text.json"), "my-gemini",
                     S_FX ("openai_response_text.json"));
    s_test_response (AIGW_KIND_CHAT, S_FX ("gemini_response_function_call.json"),
                     "gemini-2.0-flash", S_FX ("openai_response_function_call.json"));
    s_test_response (AIGW_KIND_CHAT, S_FX ("gemini_response_blocked.json"), "my-gemini",
                     S_FX ("openai_response_blocked.json"));
    s_test_response (AIGW_KIND_EMBEDDINGS, S_FX ("gemini_response_embeddings.json"),
                     "text-embedding-3-small", S_FX ("openai_response_embeddings.json"));
    //  Tool call ids: deterministic, and distinct within one answer.
    const char *calls = S_FX ("gemini_response_function_call.json");
    char *one = aigw_gemini_response_to_openai (calls, strlen (calls), "m", &len, err, sizeof err);
    char *two = aigw_gemini_response_to_openai (calls, strlen (calls), "m", &len, err, sizeof err);
    json_t *a = json_loads (one, 0, NULL), *b = json_loads (two, 0, NULL);
    json_t *a_calls = json_object_get (
        json_object_get (json_array_get (json_object_get (a, "choices"), 0), "message"),
        "tool_calls");
    json_t *b_calls = json_object_get (
        json_object_get (json_array_get (json_object_get (b, "choices"), 0), "message"),
        "tool_calls");
    assert (json_equal (a_calls, b_calls));
    const char *id0 = json_string_value (json_object_get (json_array_get (a_calls, 0), "id"));
    const char *id1 = json_string_value (json_object_get (json_array_get (a_calls, 1), "id"));
    assert (id0 && id1 && strcmp (id0, id1) != 0);
    json_decref (a);
    json_decref (b);
    free (one);
    free (two);
    //  Finish reasons, text beside a call, and thought parts left out.
    static const struct {
        const char *reason;  //  Gemini finishReason
        const char *finish;  //  OpenAI finish_reason
    } reasons[] = {{"STOP", "stop"},
                   {"MAX_TOKENS", "length"},
                   {"SAFETY", "content_filter"},
                   {"RECITATION", "content_filter"},
                   {"BLOCKLIST", "content_filter"},
                   {"PROHIBITED_CONTENT", "content_filter"},
                   {"SPII", "content_filter"},
                   {"IMAGE_SAFETY", "content_filter"},
                   {"OTHER", "stop"}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char body[256], want[512];
        snprintf (body, sizeof body,
                  "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hm\",\"thought\":true},"
                  "{\"text\":\"ok\"}]},\"finishReason\":\"%s\"}],\"responseId\":\"r\"}",
                  reasons[i].reason);
        snprintf (want, sizeof want,
                  "{\"id\":\"chatcmpl-r\",\"object\":\"chat.completion\",\"created\":0,"
                  "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                  "\"content\":\"ok\"},\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":"
                  "{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}",
                  reasons[i].finish);
        s_test_response (AIGW_KIND_CHAT, body, "m", want);
    }
    s_test_response (AIGW_KIND_CHAT,
                     "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Sure.\"},"
                     "{\"functionCall\":{\"name\":\"f\"}}]},\"finishReason\":\"STOP\"}],"
                     "\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4,"
                     "\"thoughtsTokenCount\":5,\"totalTokenCount\":12}}",
                     "m",
                     "{\"id\":\"chatcmpl-*\",\"object\":\"chat.completion\",\"created\":0,"
                     "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                     "\"assistant\",\"content\":\"Sure.\",\"tool_calls\":[{\"id\":\"call_*\","
                     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                     "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":"
                     "{\"prompt_tokens\":3,\"completion_tokens\":9,\"total_tokens\":12,"
                     "\"completion_tokens_details\":{\"reasoning_tokens\":5}}}");
    //  Bad answers fail with a reason; upstream errors give their message.
    static const struct {
        const char *body;    //  Gemini answer
        const char *reason;  //  what the error must say
    } bad_answers[] = {
        {"nope", "JSON"},
        {"[]", "body"},
        {"{}", "candidates"},
        {"{\"candidates\":{}}", "candidates"},
        {"{\"candidates\":[7]}", "candidates[0]"},
        {"{\"candidates\":[{\"content\":{\"parts\":{}}}]}", "candidates[0].content.parts"},
        {"{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}",
         "candidates[0].content.parts[0].functionCall"},
        {"{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\","
         "\"args\":[]}}]}}]}",
         "functionCall"},
        {"{\"error\":{\"code\":400,\"message\":\"Bad thing\",\"status\":\"INVALID_ARGUMENT\"}}",
         "Bad thing"},
    };
    for (size_t i = 0; i < sizeof bad_answers / sizeof bad_answers[0]; i++) {
        const char *body = bad_answers[i].body;
        char *out
            = aigw_gemini_response_to_openai (body, strlen (body), "m", &len, err, sizeof err);
        if (out || !strstr (err, bad_answers[i].reason))
            fprintf (stderr, "gemini: %s gave \"%s\"\n", body, err);
        assert (!out && strstr (err, bad_answers[i].reason));
    }
    assert (!aigw_gemini_embeddings_to_openai ("{}", 2, "m", &len, err, sizeof err));
    assert (strstr (err, "embeddings"));
    const char *no_values = "{\"embeddings\":[{\"values\":1}]}";
    assert (!aigw_gemini_embeddings_to_openai (no_values, strlen (no_values), "m", &len, err,
                                               sizeof err));
    assert (strstr (err, "embeddings[0].values"));

    //  Error bodies, plain and in an array, give their message.
    assert (!aigw_gemini_response_to_openai (S_FX ("gemini_error.json"),
                                             strlen (S_FX ("gemini_error.json")), "m", &len, err,
                                             sizeof err));
    assert (strstr (err, "API key not valid. Please pass a valid API key."));
    assert (!aigw_gemini_embeddings_to_openai (S_FX ("gemini_error_array.json"),
                                               strlen (S_FX ("gemini_error_array.json")), "m", &len,
                                               err, sizeof err));
    assert (strstr (err, "Resource has been exhausted (e.g. check quota)."));

    //  Streams: each fixture's events, fed one by one.
    s_test_stream_all (S_FX ("gemini_stream_text.sse"), S_FX ("openai_stream_text.json"), 0, NULL);
    s_test_stream_all (S_FX ("gemini_stream_tool_call.sse"), S_FX ("openai_stream_tool_call.json"),
                       0, NULL);
    s_test_stream_all (S_FX ("gemini_stream_error.sse"), S_FX ("openai_stream_error.json"), -1,
                       "The model is overloaded");
    //  Events after the finish are ignored.
    const char *extra = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}]},"
                        "\"finishReason\":\"MAX_TOKENS\"}]}\ndata: {not json}\n";
    int rc;
    char *out = s_test_stream (extra, &rc, err, sizeof err);
    assert (rc == 0);
    json_t *events = s_test_events (out);
    assert (json_array_size (events) == 4);
    json_t *finish = json_array_get (json_object_get (json_array_get (events, 2), "choices"), 0);
    assert (strcmp (json_string_value (json_object_get (finish, "finish_reason")), "length") == 0);
    json_decref (events);
    free (out);
    //  Malformed events end the stream with an error event and [DONE].
    static const char *broken[] = {"data: {not json}\n\n", "data: [1]\n\n",
                                   "data: {\"candidates\":[{\"content\":{\"parts\":[{\""
                                   "functionCall\":{}}]}}]}\n\n"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        err[0] = 0;
        out = s_test_stream (broken[i], &rc, err, sizeof err);
        assert (rc == -1 && strstr (err, "stream"));
        events = s_test_events (out);
        json_t *last = json_array_get (events, json_array_size (events) - 2);
        assert (json_object_get (last, "error"));
        assert (strcmp (json_string_value (json_array_get (events, json_array_size (events) - 1)),
                        "[DONE]")
                == 0);
        json_decref (events);
        free (out);
    }
    //  A blocked prompt ends the stream with content_filter.
    const char *blocked = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\n\n";
    out = s_test_stream (blocked, &rc, err, sizeof err);
    assert (rc == 0 && strstr (out, "\"finish_reason\":\"content_filter\""));
    assert (strstr (out, "data: [DONE]\n\n"));
    free (out);
    //  Mangled fixtures, through every entry point.
    s_test_mutations (S_TEST_MUTATIONS);
    if (verbose)
        printf ("gemini: ok\n");
}
