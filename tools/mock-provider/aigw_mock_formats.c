/*  aigw_mock_formats: request parsing and answer shaping for the mock's
    Anthropic, Gemini, Bedrock and OpenAI tool-call answers. See the header.

    Answers are built with Jansson (these routes are not the benchmark's
    hot path; the plain OpenAI route keeps its hand-written encoder), and
    Bedrock frames with aigw_eventstream_encode. */
#include "aigw_mock_formats.h"
#include "aigw_eventstream.h"
#include "aigw_json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Asserts stay on in release builds (STYLE.md), whatever NDEBUG says
#undef NDEBUG
#include <assert.h>

#define S_FRAMES_INITIAL      16         //  frame slots allocated first
#define S_GEMINI_MODEL_PREFIX "models/"  //  Gemini may name a model with this prefix

//  The routes' names, in aigw_mock_route_t order
static const char *s_route_names[AIGW_MOCK_ROUTE_COUNT]
    = {"openai", "anthropic", "gemini", "bedrock", "azure", "responses"};

//  One stream frame
typedef struct {
    unsigned char *data;  //  owned bytes
    size_t len;           //  byte count
    int kind;             //  aigw_mock_frame_kind_t
} s_frame_t;

struct _aigw_mock_frames_t {
    s_frame_t *items;  //  frames in sending order
    size_t count;      //  frames in use
    size_t cap;        //  slots allocated
    bool failed;       //  an append ran out of memory
    long sequence;     //  Responses: the next event's sequence_number
};

//  One message of a chat request, seen the same way in every format
typedef struct {
    bool user;          //  role user (Gemini: user or function)
    json_t *text;       //  its text parts joined (a JSON string we own)
    char *tool_result;  //  owned: a tool result's text, or NULL
} s_message_t;

//  ---------------------------------------------------------------------
//  Routes and small helpers

//  See the header.
const char *
aigw_mock_route_name (int route)
{
    return route >= 0 && route < AIGW_MOCK_ROUTE_COUNT ? s_route_names[route] : "?";
}

//  See the header.
int
aigw_mock_route_lookup (const char *name, size_t len)
{
    for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++)
        if (strlen (s_route_names[route]) == len && memcmp (s_route_names[route], name, len) == 0)
            return route;
    return -1;
}

//  Counts whitespace-separated words in LEN bytes of TEXT: the mock's tokens.
static size_t
s_words (const char *text, size_t len)
{
    size_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < len; i++) {
        bool space = isspace ((unsigned char) text[i]) != 0;
        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    return words;
}

//  Word count of a JSON string, 0 for anything else.
static size_t
s_json_words (json_t *string)
{
    return json_is_string (string)
               ? s_words (json_string_value (string), json_string_length (string))
               : 0;
}

//  Fills ERR with a printf-formatted message; returns -1 for the caller.
static int s_fail (char *err, size_t err_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (char *err, size_t err_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
    return -1;
}

//  Appends string PIECE to the JSON string *JOINED (NULL: start one), a
//  single space between pieces. Returns 0 or -1 when out of memory.
static int
s_join (json_t **joined, const char *piece, size_t len)
{
    if (!*joined) {
        *joined = json_stringn (piece, len);
        return *joined ? 0 : -1;
    }
    size_t old = json_string_length (*joined);
    char *both = malloc (old + 1 + len + 1);
    if (!both)
        return -1;
    memcpy (both, json_string_value (*joined), old);
    both[old] = ' ';
    memcpy (both + old + 1, piece, len);
    int rc = json_string_setn (*joined, both, old + 1 + len);
    free (both);
    return rc;
}

//  Text of a tool result's CONTENT: a string as is; an array of blocks as
//  their "text" joined, with {"json":X} blocks (Bedrock) as X's JSON. A
//  new string, or NULL when there is none.
static char *
s_result_text (json_t *content)
{
    if (json_is_string (content))
        return strdup (json_string_value (content));
    if (!json_is_array (content))
        return content ? json_dumps (content, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_t *joined = NULL;
    size_t index;
    json_t *block;
    json_array_foreach (content, index, block) {
        json_t *text = json_object_get (block, "text");
        json_t *value = json_object_get (block, "json");
        if (json_is_string (text))
            s_join (&joined, json_string_value (text), json_string_length (text));
        else if (value) {
            char *dump = json_dumps (value, JSON_COMPACT);
            if (dump)
                s_join (&joined, dump, strlen (dump));
            free (dump);
        }
    }
    char *result = joined ? strdup (json_string_value (joined)) : strdup ("");
    json_decref (joined);
    return result;
}

//  ---------------------------------------------------------------------
//  Requests

//  Reads one Anthropic message ITEM into MESSAGE. Returns 0 or -1.
static int
s_anthropic_message (json_t *item, s_message_t *message)
{
    const char *role = json_string_value (json_object_get (item, "role"));
    json_t *content = json_object_get (item, "content");
    if (!role || (!json_is_string (content) && !json_is_array (content)))
        return -1;
    message->user = strcmp (role, "user") == 0;
    if (json_is_string (content))
        return s_join (&message->text, json_string_value (content), json_string_length (content));
    size_t index;
    json_t *block;
    json_array_foreach (content, index, block) {
        const char *type = json_string_value (json_object_get (block, "type"));
        json_t *text = json_object_get (block, "text");
        if (type && strcmp (type, "text") == 0 && json_is_string (text))
            s_join (&message->text, json_string_value (text), json_string_length (text));
        else if (type && strcmp (type, "tool_result") == 0) {
            free (message->tool_result);
            message->tool_result = s_result_text (json_object_get (block, "content"));
        }
    }
    return 0;
}

//  Reads one Gemini content ITEM into MESSAGE. Returns 0 or -1.
static int
s_gemini_message (json_t *item, s_message_t *message)
{
    const char *role = json_string_value (json_object_get (item, "role"));
    json_t *parts = json_object_get (item, "parts");
    if (!json_is_array (parts))
        return -1;
    //  A content without a role is the user's, as in a one-turn request
    message->user = !role || strcmp (role, "model") != 0;
    size_t index;
    json_t *part;
    json_array_foreach (parts, index, part) {
        json_t *text = json_object_get (part, "text");
        json_t *response = json_object_get (part, "functionResponse");
        if (json_is_string (text))
            s_join (&message->text, json_string_value (text), json_string_length (text));
        else if (json_is_object (response)) {
            free (message->tool_result);
            json_t *value = json_object_get (response, "response");
            message->tool_result
                = value ? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY) : strdup ("null");
        }
    }
    return 0;
}

//  Reads one Bedrock Converse message ITEM into MESSAGE. Returns 0 or -1.
static int
s_bedrock_message (json_t *item, s_message_t *message)
{
    const char *role = json_string_value (json_object_get (item, "role"));
    json_t *content = json_object_get (item, "content");
    if (!role || !json_is_array (content))
        return -1;
    message->user = strcmp (role, "user") == 0;
    size_t index;
    json_t *block;
    json_array_foreach (content, index, block) {
        json_t *text = json_object_get (block, "text");
        json_t *result = json_object_get (block, "toolResult");
        if (json_is_string (text))
            s_join (&message->text, json_string_value (text), json_string_length (text));
        else if (json_is_object (result)) {
            free (message->tool_result);
            message->tool_result = s_result_text (json_object_get (result, "content"));
        }
    }
    return 0;
}

//  Reads one Responses input ITEM into MESSAGE: a message's text parts, or
//  a function call's output as a tool result. Returns 0 or -1.
static int
s_responses_message (json_t *item, s_message_t *message)
{
    const char *type = json_string_value (json_object_get (item, "type"));
    const char *role = json_string_value (json_object_get (item, "role"));
    if (type && strcmp (type, "function_call_output") == 0) {
        json_t *output = json_object_get (item, "output");
        if (!json_is_string (json_object_get (item, "call_id")) || !output)
            return -1;
        message->user = true;
        message->tool_result = s_result_text (output);
        return 0;
    }
    if (type && strcmp (type, "message") != 0)
        return 0;  //  function_call, reasoning: nothing the reply reads
    json_t *content = json_object_get (item, "content");
    if (!role || (!json_is_string (content) && !json_is_array (content)))
        return -1;
    message->user = strcmp (role, "user") == 0;
    if (json_is_string (content))
        return s_join (&message->text, json_string_value (content), json_string_length (content));
    size_t index;
    json_t *part;
    json_array_foreach (content, index, part) {
        json_t *text = json_object_get (part, "text");
        if (json_is_string (text))
            s_join (&message->text, json_string_value (text), json_string_length (text));
    }
    return 0;
}

//  Name of the first tool ROOT declares in ROUTE's format, or NULL.
static const char *
s_first_tool (int route, json_t *root)
{
    json_t *tools = json_object_get (root, "tools");
    json_t *first = json_array_get (tools, 0);
    switch (route) {
        case AIGW_MOCK_ROUTE_ANTHROPIC:
        case AIGW_MOCK_ROUTE_RESPONSES: return json_string_value (json_object_get (first, "name"));
        case AIGW_MOCK_ROUTE_GEMINI: {
            //  tools: [{functionDeclarations: [...]}, ...]: the first declaration
            size_t index;
            json_t *tool;
            json_array_foreach (tools, index, tool) {
                json_t *declaration
                    = json_array_get (json_object_get (tool, "functionDeclarations"), 0);
                const char *name = json_string_value (json_object_get (declaration, "name"));
                if (name)
                    return name;
            }
            return NULL;
        }
        case AIGW_MOCK_ROUTE_BEDROCK: {
            json_t *tool = json_array_get (
                json_object_get (json_object_get (root, "toolConfig"), "tools"), 0);
            return json_string_value (json_object_get (json_object_get (tool, "toolSpec"), "name"));
        }
        default:
            return json_string_value (
                json_object_get (json_object_get (first, "function"), "name"));
    }
}

//  Decides between a tool call, a tool result's answer and plain text.
//  FINAL_RESULT is the final message's tool result (NULL: none), FINAL_TEXT
//  that message's user text. Takes ownership of FINAL_RESULT.
static void
s_decide_tools (int route, json_t *root, char *final_result, const char *final_text,
                aigw_mock_ask_t *ask)
{
    const char *tool = s_first_tool (route, root);
    const char *asking = final_result ? final_text : ask->user_text;
    if (tool && asking && strstr (asking, AIGW_MOCK_TOOL_CONTROL)) {
        ask->tool_name = strdup (tool);
        free (final_result);
    }
    else
        ask->tool_result = final_result;
}

//  Reads the system text of ROOT in ROUTE's format: its word count.
static size_t
s_system_words (int route, json_t *root)
{
    json_t *system = NULL;
    if (route == AIGW_MOCK_ROUTE_GEMINI)
        system = json_object_get (json_object_get (root, "systemInstruction"), "parts");
    else if (route == AIGW_MOCK_ROUTE_RESPONSES)
        system = json_object_get (root, "instructions");
    else
        system = json_object_get (root, "system");
    if (json_is_string (system))
        return s_json_words (system);
    size_t index, words = 0;
    json_t *block;
    json_array_foreach (system, index, block)
        words += s_json_words (json_object_get (block, "text"));
    return words;
}

//  Reads an integer limit VALUE (NULL: none) into *OUT. Returns 0, or -1
//  when it is there but not an integer of at least 1.
static int
s_limit (json_t *value, int *out)
{
    if (!value || json_is_null (value))
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < 1)
        return -1;
    json_int_t number = json_integer_value (value);
    *out = number > INT32_MAX ? INT32_MAX : (int) number;
    return 0;
}

//  See the header.
int
aigw_mock_ask_parse (int route, json_t *root, const char *model, bool stream, aigw_mock_ask_t *ask,
                     char *err, size_t err_size)
{
    json_t *messages;
    const char *list_name;
    int (*read_message) (json_t *, s_message_t *);
    if (route == AIGW_MOCK_ROUTE_ANTHROPIC) {
        ask->model = json_string_value (json_object_get (root, "model"));
        if (!ask->model || !*ask->model)
            return s_fail (err, err_size, "model: Field required");
        json_t *flag = json_object_get (root, "stream");
        if (flag && !json_is_boolean (flag))
            return s_fail (err, err_size, "stream: Input should be a valid boolean");
        ask->stream = json_is_true (flag);
        json_t *limit = json_object_get (root, "max_tokens");
        if (!limit)
            return s_fail (err, err_size, "max_tokens: Field required");
        if (s_limit (limit, &ask->max_tokens) != 0)
            return s_fail (err, err_size, "max_tokens: Input should be a positive integer");
        list_name = "messages";
        read_message = s_anthropic_message;
    }
    else if (route == AIGW_MOCK_ROUTE_GEMINI) {
        ask->model = model;
        ask->stream = stream;
        json_t *config = json_object_get (root, "generationConfig");
        if (s_limit (json_object_get (config, "maxOutputTokens"), &ask->max_tokens) != 0)
            return s_fail (err, err_size, "Invalid value at 'generation_config.max_output_tokens'");
        list_name = "contents";
        read_message = s_gemini_message;
    }
    else if (route == AIGW_MOCK_ROUTE_BEDROCK) {
        ask->model = model;
        ask->stream = stream;
        json_t *config = json_object_get (root, "inferenceConfig");
        if (s_limit (json_object_get (config, "maxTokens"), &ask->max_tokens) != 0)
            return s_fail (err, err_size,
                           "inferenceConfig.maxTokens: must be an integer of at least 1");
        list_name = "messages";
        read_message = s_bedrock_message;
    }
    else if (route == AIGW_MOCK_ROUTE_RESPONSES) {
        ask->model = json_string_value (json_object_get (root, "model"));
        if (!ask->model || !*ask->model)
            return s_fail (err, err_size, "Missing required parameter: 'model'.");
        json_t *flag = json_object_get (root, "stream");
        if (flag && !json_is_boolean (flag) && !json_is_null (flag))
            return s_fail (err, err_size, "Invalid type for 'stream': expected a boolean.");
        ask->stream = json_is_true (flag);
        if (s_limit (json_object_get (root, "max_output_tokens"), &ask->max_tokens) != 0)
            return s_fail (err, err_size, "Invalid 'max_output_tokens': expected an integer.");
        //  A string input is one user message.
        json_t *input = json_object_get (root, "input");
        if (json_is_string (input))
            json_object_set_new (root, "input",
                                 json_pack ("[{s:s,s:O}]", "role", "user", "content", input));
        list_name = "input";
        read_message = s_responses_message;
    }
    else
        return s_fail (err, err_size, "route %s has no chat parser", aigw_mock_route_name (route));

    messages = json_object_get (root, list_name);
    if (!json_is_array (messages) || json_array_size (messages) == 0)
        return s_fail (err, err_size, "%s: at least one message is required", list_name);
    ask->prompt_tokens = s_system_words (route, root);
    json_t *user_text = NULL;
    char *final_result = NULL;
    json_t *final_text = NULL;
    size_t index;
    json_t *item;
    int rc = 0;
    json_array_foreach (messages, index, item) {
        s_message_t message = {0};
        if (!json_is_object (item) || read_message (item, &message) != 0) {
            json_decref (message.text);
            free (message.tool_result);
            rc = s_fail (err, err_size, "%s.%zu: malformed message", list_name, index);
            break;
        }
        ask->prompt_tokens += s_json_words (message.text);
        if (message.tool_result)
            ask->prompt_tokens += s_words (message.tool_result, strlen (message.tool_result));
        if (message.user && message.text) {
            json_decref (user_text);
            user_text = json_incref (message.text);
        }
        if (index + 1 == json_array_size (messages)) {
            final_result = message.tool_result;
            message.tool_result = NULL;
            final_text = message.user ? json_incref (message.text) : NULL;
        }
        json_decref (message.text);
        free (message.tool_result);
    }
    ask->user_text = strdup (user_text ? json_string_value (user_text) : "");
    if (rc == 0 && ask->user_text)
        s_decide_tools (route, root, final_result, final_text ? json_string_value (final_text) : "",
                        ask);
    else
        free (final_result);
    json_decref (user_text);
    json_decref (final_text);
    if (rc == 0 && !ask->user_text)
        rc = s_fail (err, err_size, "out of memory");
    return rc;
}

//  See the header.
void
aigw_mock_openai_tools (json_t *root, const char *user_text, aigw_mock_ask_t *ask)
{
    json_t *messages = json_object_get (root, "messages");
    json_t *final = json_array_get (messages, json_array_size (messages) - 1);
    const char *role = json_string_value (json_object_get (final, "role"));
    char *final_result = NULL;
    if (role && strcmp (role, "tool") == 0)
        final_result = s_result_text (json_object_get (final, "content"));
    if (!final_result && !json_object_get (root, "tools"))
        return;
    free (ask->user_text);
    ask->user_text = strdup (user_text ? user_text : "");
    s_decide_tools (AIGW_MOCK_ROUTE_OPENAI, root, final_result, "", ask);
}

//  See the header.
void
aigw_mock_ask_free (aigw_mock_ask_t *ask)
{
    free (ask->user_text);
    free (ask->tool_name);
    free (ask->tool_result);
    ask->user_text = ask->tool_name = ask->tool_result = NULL;
}

//  ---------------------------------------------------------------------
//  Answers

//  The reply's finish reason in ROUTE's terms.
static const char *
s_finish (int route, const aigw_mock_reply_t *reply)
{
    bool length = strcmp (reply->finish, "length") == 0;
    bool tool = reply->tool_name != NULL;
    switch (route) {
        case AIGW_MOCK_ROUTE_ANTHROPIC:
        case AIGW_MOCK_ROUTE_BEDROCK: return tool ? "tool_use" : length ? "max_tokens" : "end_turn";
        case AIGW_MOCK_ROUTE_GEMINI: return length ? "MAX_TOKENS" : "STOP";
        default: return tool ? "tool_calls" : reply->finish;
    }
}

//  The tool call's arguments as JSON text (mock:city changes the city).
static const char *
s_args (const aigw_mock_reply_t *reply)
{
    return reply->tool_args ? reply->tool_args : AIGW_MOCK_TOOL_ARGUMENTS;
}

//  The tool call's arguments as a new JSON object (NULL when out of memory).
static json_t *
s_tool_arguments (const aigw_mock_reply_t *reply)
{
    return json_loads (s_args (reply), 0, NULL);
}

//  Usage object in ROUTE's terms. Cached prompt tokens (mock:cached) are
//  among the prompt tokens for OpenAI and Gemini, beside them (input
//  tokens are the uncached rest) for Anthropic and Bedrock; so are cache
//  writes, which only Anthropic and Bedrock report.
static json_t *
s_usage (int route, const aigw_mock_reply_t *reply)
{
    size_t in = reply->prompt_tokens, out = reply->completion_tokens;
    json_int_t cached = (json_int_t) (reply->cached_tokens < in ? reply->cached_tokens : in);
    json_int_t written
        = (json_int_t) (reply->cache_write_tokens < in - (size_t) cached ? reply->cache_write_tokens
                                                                         : in - (size_t) cached);
    json_t *usage;
    switch (route) {
        case AIGW_MOCK_ROUTE_ANTHROPIC:
            usage = json_pack ("{s:I,s:I}", "input_tokens", (json_int_t) in - cached - written,
                               "output_tokens", (json_int_t) out);
            if (usage && cached)
                json_object_set_new (usage, "cache_read_input_tokens", json_integer (cached));
            if (usage && written)
                json_object_set_new (usage, "cache_creation_input_tokens", json_integer (written));
            return usage;
        case AIGW_MOCK_ROUTE_GEMINI:
            usage = json_pack ("{s:I,s:I,s:I}", "promptTokenCount", (json_int_t) in,
                               "candidatesTokenCount", (json_int_t) out, "totalTokenCount",
                               (json_int_t) (in + out));
            if (usage && cached)
                json_object_set_new (usage, "cachedContentTokenCount", json_integer (cached));
            return usage;
        case AIGW_MOCK_ROUTE_BEDROCK:
            usage = json_pack ("{s:I,s:I,s:I}", "inputTokens", (json_int_t) in - cached - written,
                               "outputTokens", (json_int_t) out, "totalTokens",
                               (json_int_t) (in + out));
            if (usage && cached)
                json_object_set_new (usage, "cacheReadInputTokens", json_integer (cached));
            if (usage && written)
                json_object_set_new (usage, "cacheWriteInputTokens", json_integer (written));
            return usage;
        case AIGW_MOCK_ROUTE_RESPONSES:
            return json_pack ("{s:I,s:{s:I},s:I,s:{s:i},s:I}", "input_tokens", (json_int_t) in,
                              "input_tokens_details", "cached_tokens", cached, "output_tokens",
                              (json_int_t) out, "output_tokens_details", "reasoning_tokens", 0,
                              "total_tokens", (json_int_t) (in + out));
        default:
            usage
                = json_pack ("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t) in, "completion_tokens",
                             (json_int_t) out, "total_tokens", (json_int_t) (in + out));
            if (usage && cached)
                json_object_set_new (usage, "prompt_tokens_details",
                                     json_pack ("{s:I}", "cached_tokens", cached));
            return usage;
    }
}

//  The reply's content in ROUTE's terms: Anthropic content blocks, Gemini
//  parts, Bedrock content blocks.
static json_t *
s_content (int route, const aigw_mock_reply_t *reply)
{
    if (reply->tool_name) {
        json_t *args = s_tool_arguments (reply);
        if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
            return json_pack ("[{s:s,s:s,s:s,s:o}]", "type", "tool_use", "id", reply->tool_id,
                              "name", reply->tool_name, "input", args);
        if (route == AIGW_MOCK_ROUTE_GEMINI)
            return json_pack ("[{s:{s:s,s:o}}]", "functionCall", "name", reply->tool_name, "args",
                              args);
        return json_pack ("[{s:{s:s,s:s,s:o}}]", "toolUse", "toolUseId", reply->tool_id, "name",
                          reply->tool_name, "input", args);
    }
    if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
        return json_pack ("[{s:s,s:s%}]", "type", "text", "text", reply->text, reply->text_len);
    return json_pack ("[{s:s%}]", "text", reply->text, reply->text_len);
}

//  The OpenAI chat.completion (or chunk) fields every answer starts with.
static json_t *
s_openai_object (const aigw_mock_reply_t *reply, const char *object, json_t *choices)
{
    return json_pack ("{s:s,s:s,s:I,s:s,s:s,s:o}", "id", reply->id, "object", object, "created",
                      (json_int_t) reply->created, "model", reply->model, "system_fingerprint",
                      "fp_aigw_mock", "choices", choices);
}

//  The OpenAI tool_calls array, with ARGUMENTS as the arguments string.
static json_t *
s_openai_tool_calls (const aigw_mock_reply_t *reply, const char *arguments, bool with_index)
{
    json_t *call = json_pack ("{s:s,s:s,s:{s:s,s:s}}", "id", reply->tool_id, "type", "function",
                              "function", "name", reply->tool_name, "arguments", arguments);
    if (call && with_index)
        json_object_set_new (call, "index", json_integer (0));
    return json_pack ("[o]", call);
}

//  A Responses item id: PREFIX and the part of the response id after its
//  own "resp_" (the mock's ids are unique per answer). A new string or NULL.
static char *
s_responses_item_id (const aigw_mock_reply_t *reply, const char *prefix)
{
    const char *suffix = strncmp (reply->id, "resp_", 5) == 0 ? reply->id + 5 : reply->id;
    char *id = NULL;
    return asprintf (&id, "%s%s", prefix, suffix) < 0 ? NULL : id;
}

//  The Responses output item of REPLY, whole (STATUS "completed") or as it
//  starts a stream ("in_progress": no text, no arguments yet).
static json_t *
s_responses_item (const aigw_mock_reply_t *reply, const char *status)
{
    bool whole = strcmp (status, "in_progress") != 0;
    json_t *item;
    if (reply->tool_name) {
        char *id = s_responses_item_id (reply, "fc_");
        item = id ? json_pack ("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call",
                               "status", status, "call_id", reply->tool_id, "name",
                               reply->tool_name, "arguments", whole ? s_args (reply) : "")
                  : NULL;
        free (id);
        return item;
    }
    char *id = s_responses_item_id (reply, "msg_");
    json_t *content = whole ? json_pack ("[{s:s,s:s%,s:[],s:[]}]", "type", "output_text", "text",
                                         reply->text, reply->text_len, "annotations", "logprobs")
                            : json_array ();
    item = id ? json_pack ("{s:s,s:s,s:s,s:s,s:o}", "id", id, "type", "message", "status", status,
                           "role", "assistant", "content", content)
              : NULL;
    free (id);
    return item;
}

//  The Response object of REPLY: STATUS "in_progress" (no output, no usage,
//  as a stream starts) or its final status from the finish reason.
static json_t *
s_responses_object (const aigw_mock_reply_t *reply, bool final)
{
    bool length = strcmp (reply->finish, "length") == 0;
    const char *status = !final ? "in_progress" : length ? "incomplete" : "completed";
    json_t *root = json_pack (
        "{s:s,s:s,s:I,s:s,s:n,s:n,s:s,s:[],s:b,s:n,s:s,s:{s:{s:s}},s:s,s:[],s:n,s:{}}", "id",
        reply->id, "object", "response", "created_at", (json_int_t) reply->created, "status",
        status, "error", "instructions", "model", reply->model, "output", "parallel_tool_calls", 1,
        "previous_response_id", "truncation", "disabled", "text", "format", "type", "text",
        "tool_choice", "auto", "tools", "usage", "metadata");
    if (!root || !final)
        return root;
    json_object_set_new (root, "incomplete_details",
                         length ? json_pack ("{s:s}", "reason", "max_output_tokens")
                                : json_null ());
    json_array_append_new (json_object_get (root, "output"),
                           s_responses_item (reply, length ? "incomplete" : "completed"));
    json_object_set_new (root, "usage", s_usage (AIGW_MOCK_ROUTE_RESPONSES, reply));
    return root;
}

//  See the header.
char *
aigw_mock_reply_body (int route, const aigw_mock_reply_t *reply, size_t *len)
{
    json_t *root = NULL;
    const char *finish = s_finish (route, reply);
    if (route == AIGW_MOCK_ROUTE_RESPONSES)
        root = s_responses_object (reply, true);
    else if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
        root = json_pack ("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", reply->id, "type", "message",
                          "role", "assistant", "model", reply->model, "content",
                          s_content (route, reply), "stop_reason", finish, "stop_sequence", "usage",
                          s_usage (route, reply));
    else if (route == AIGW_MOCK_ROUTE_GEMINI)
        root = json_pack ("{s:[{s:{s:o,s:s},s:s,s:i}],s:o,s:s,s:s}", "candidates", "content",
                          "parts", s_content (route, reply), "role", "model", "finishReason",
                          finish, "index", 0, "usageMetadata", s_usage (route, reply),
                          "modelVersion", reply->model, "responseId", reply->id);
    else if (route == AIGW_MOCK_ROUTE_BEDROCK)
        root = json_pack ("{s:{s:{s:s,s:o}},s:s,s:o,s:{s:i}}", "output", "message", "role",
                          "assistant", "content", s_content (route, reply), "stopReason", finish,
                          "usage", s_usage (route, reply), "metrics", "latencyMs", 0);
    else {
        json_t *message;
        if (reply->tool_name)
            message = json_pack ("{s:s,s:n,s:o,s:n}", "role", "assistant", "content", "tool_calls",
                                 s_openai_tool_calls (reply, s_args (reply), false), "refusal");
        else
            message = json_pack ("{s:s,s:s%,s:n}", "role", "assistant", "content", reply->text,
                                 reply->text_len, "refusal");
        root = s_openai_object (reply, "chat.completion",
                                json_pack ("[{s:i,s:o,s:n,s:s}]", "index", 0, "message", message,
                                           "logprobs", "finish_reason", finish));
        if (root)
            json_object_set_new (root, "usage", s_usage (route, reply));
    }
    return aigw_json_dump (root, len);
}

//  ---------------------------------------------------------------------
//  Stream frames

//  Appends a frame of KIND holding DATA (taken; NULL marks SELF failed).
static void
s_frames_take (aigw_mock_frames_t *self, int kind, unsigned char *data, size_t len)
{
    if (!data || self->failed) {
        free (data);
        self->failed = true;
        return;
    }
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : S_FRAMES_INITIAL;
        s_frame_t *items = realloc (self->items, cap * sizeof *items);
        if (!items) {
            free (data);
            self->failed = true;
            return;
        }
        self->items = items;
        self->cap = cap;
    }
    self->items[self->count++] = (s_frame_t){data, len, kind};
}

//  Appends an SSE event of KIND: "event: NAME\n" (when NAME) then
//  "data: JSON\n\n", or with CRLF line ends when CRLF (Gemini). Steals DATA.
static void
s_frames_sse (aigw_mock_frames_t *self, int kind, const char *name, json_t *data, bool crlf)
{
    char *json = aigw_json_dump (data, NULL);
    if (!json) {
        s_frames_take (self, kind, NULL, 0);
        return;
    }
    const char *end = crlf ? "\r\n" : "\n";
    size_t size = strlen (json) + (name ? strlen (name) : 0) + 32;
    char *event = malloc (size);
    int len = -1;
    if (event && name)
        len = snprintf (event, size, "event: %s%sdata: %s%s%s", name, end, json, end, end);
    else if (event)
        len = snprintf (event, size, "data: %s%s%s", json, end, end);
    free (json);
    s_frames_take (self, kind, (unsigned char *) event, len > 0 ? (size_t) len : 0);
}

//  Appends the Responses event TYPE of KIND: DATA (stolen) with "type"
//  and the next "sequence_number" added.
static void
s_frames_responses (aigw_mock_frames_t *self, int kind, const char *type, json_t *data)
{
    if (data) {
        json_object_set_new (data, "type", json_string (type));
        json_object_set_new (data, "sequence_number", json_integer (self->sequence++));
    }
    s_frames_sse (self, kind, type, data, false);
}

//  Appends raw SSE TEXT of KIND.
static void
s_frames_text (aigw_mock_frames_t *self, int kind, const char *text)
{
    s_frames_take (self, kind, (unsigned char *) strdup (text), strlen (text));
}

//  Appends a Bedrock event message of KIND named EVENT with payload DATA
//  (stolen).
static void
s_frames_bedrock (aigw_mock_frames_t *self, int kind, const char *event, json_t *data)
{
    size_t json_len = 0;
    char *json = aigw_json_dump (data, &json_len);
    unsigned char *frame = NULL;
    size_t frame_len = 0;
    aigw_eventstream_header_t headers[] = {
        {":event-type", event},
        {":content-type", "application/json"},
        {":message-type", "event"},
    };
    if (json
        && aigw_eventstream_encode (headers, sizeof headers / sizeof headers[0], json, json_len,
                                    &frame, &frame_len)
               != 0)
        frame = NULL;
    free (json);
    s_frames_take (self, kind, frame, frame_len);
}

//  Splits the reply text the way the OpenAI route streams it: one word
//  and the whitespace after it per piece, the first piece also carrying
//  any leading whitespace. Calls EMIT for each piece.
static void
s_pieces (const aigw_mock_reply_t *reply, aigw_mock_frames_t *frames, int route,
          void (*emit) (aigw_mock_frames_t *, int, const aigw_mock_reply_t *, const char *, size_t))
{
    const char *text = reply->text;
    size_t len = reply->text_len, at = 0, start = 0;
    while (at < len && isspace ((unsigned char) text[at]))
        at++;
    while (at < len) {
        //  Past this word and the whitespace after it
        while (at < len && !isspace ((unsigned char) text[at]))
            at++;
        while (at < len && isspace ((unsigned char) text[at]))
            at++;
        emit (frames, route, reply, text + start, at - start);
        start = at;
    }
}

//  Emits one text piece as a content frame in ROUTE's format.
static void
s_emit_text (aigw_mock_frames_t *self, int route, const aigw_mock_reply_t *reply, const char *piece,
             size_t len)
{
    int kind = AIGW_MOCK_FRAME_CONTENT;
    if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
        s_frames_sse (self, kind, "content_block_delta",
                      json_pack ("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index",
                                 0, "delta", "type", "text_delta", "text", piece, len),
                      false);
    else if (route == AIGW_MOCK_ROUTE_GEMINI)
        s_frames_sse (self, kind, NULL,
                      json_pack ("{s:[{s:{s:[{s:s%}],s:s},s:i}],s:s,s:s}", "candidates", "content",
                                 "parts", "text", piece, len, "role", "model", "index", 0,
                                 "modelVersion", reply->model, "responseId", reply->id),
                      true);
    else if (route == AIGW_MOCK_ROUTE_BEDROCK)
        s_frames_bedrock (
            self, kind, "contentBlockDelta",
            json_pack ("{s:i,s:{s:s%}}", "contentBlockIndex", 0, "delta", "text", piece, len));
    else if (route == AIGW_MOCK_ROUTE_RESPONSES) {
        char *id = s_responses_item_id (reply, "msg_");
        s_frames_responses (self, kind, "response.output_text.delta",
                            id ? json_pack ("{s:s,s:i,s:i,s:s%,s:[]}", "item_id", id,
                                            "output_index", 0, "content_index", 0, "delta", piece,
                                            len, "logprobs")
                               : NULL);
        free (id);
    }
    else {
        json_t *chunk
            = s_openai_object (reply, "chat.completion.chunk",
                               json_pack ("[{s:i,s:{s:s%},s:n,s:n}]", "index", 0, "delta",
                                          "content", piece, len, "logprobs", "finish_reason"));
        s_frames_sse (self, kind, NULL, chunk, false);
    }
}

//  Emits the tool call's arguments as two or more content frames.
static void
s_emit_tool (aigw_mock_frames_t *self, int route, const aigw_mock_reply_t *reply)
{
    const char *args = s_args (reply);
    size_t total = strlen (args);
    size_t cuts[] = {0, AIGW_MOCK_TOOL_SPLIT, total};
    int kind = AIGW_MOCK_FRAME_CONTENT;
    if (route == AIGW_MOCK_ROUTE_GEMINI) {
        //  Gemini sends the whole functionCall in one event
        s_frames_sse (self, kind, NULL,
                      json_pack ("{s:[{s:{s:o,s:s},s:i}],s:s,s:s}", "candidates", "content",
                                 "parts", s_content (route, reply), "role", "model", "index", 0,
                                 "modelVersion", reply->model, "responseId", reply->id),
                      true);
        return;
    }
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        const char *piece = args + cuts[i];
        size_t len = cuts[i + 1] - cuts[i];
        if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
            s_frames_sse (self, kind, "content_block_delta",
                          json_pack ("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta",
                                     "index", 0, "delta", "type", "input_json_delta",
                                     "partial_json", piece, len),
                          false);
        else if (route == AIGW_MOCK_ROUTE_BEDROCK)
            s_frames_bedrock (self, kind, "contentBlockDelta",
                              json_pack ("{s:i,s:{s:{s:s%}}}", "contentBlockIndex", 0, "delta",
                                         "toolUse", "input", piece, len));
        else if (route == AIGW_MOCK_ROUTE_RESPONSES) {
            char *id = s_responses_item_id (reply, "fc_");
            s_frames_responses (self, kind, "response.function_call_arguments.delta",
                                id ? json_pack ("{s:s,s:i,s:s%}", "item_id", id, "output_index", 0,
                                                "delta", piece, len)
                                   : NULL);
            free (id);
        }
        else {
            json_t *call
                = json_pack ("{s:i,s:{s:s%}}", "index", 0, "function", "arguments", piece, len);
            json_t *chunk
                = s_openai_object (reply, "chat.completion.chunk",
                                   json_pack ("[{s:i,s:{s:[o]},s:n,s:n}]", "index", 0, "delta",
                                              "tool_calls", call, "logprobs", "finish_reason"));
            s_frames_sse (self, kind, NULL, chunk, false);
        }
    }
}

//  Anthropic: message_start, content_block_start, ping, deltas,
//  content_block_stop, message_delta, message_stop.
static void
s_stream_anthropic (aigw_mock_frames_t *self, const aigw_mock_reply_t *reply)
{
    int route = AIGW_MOCK_ROUTE_ANTHROPIC;
    //  Input tokens (and cache reads) at the start, output at the end.
    json_t *usage = s_usage (route, reply);
    if (usage)
        json_object_set_new (usage, "output_tokens", json_integer (1));
    s_frames_sse (self, AIGW_MOCK_FRAME_HEAD, "message_start",
                  json_pack ("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start",
                             "message", "id", reply->id, "type", "message", "role", "assistant",
                             "model", reply->model, "content", "stop_reason", "stop_sequence",
                             "usage", usage),
                  false);
    json_t *block = reply->tool_name ? json_pack ("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id",
                                                  reply->tool_id, "name", reply->tool_name, "input")
                                     : json_pack ("{s:s,s:s}", "type", "text", "text", "");
    s_frames_sse (self, AIGW_MOCK_FRAME_HEAD, "content_block_start",
                  json_pack ("{s:s,s:i,s:o}", "type", "content_block_start", "index", 0,
                             "content_block", block),
                  false);
    s_frames_sse (self, AIGW_MOCK_FRAME_HEAD, "ping", json_pack ("{s:s}", "type", "ping"), false);
    if (reply->tool_name)
        s_emit_tool (self, route, reply);
    else
        s_pieces (reply, self, route, s_emit_text);
    s_frames_sse (self, AIGW_MOCK_FRAME_TAIL, "content_block_stop",
                  json_pack ("{s:s,s:i}", "type", "content_block_stop", "index", 0), false);
    s_frames_sse (self, AIGW_MOCK_FRAME_TAIL, "message_delta",
                  json_pack ("{s:s,s:{s:s,s:n},s:{s:I}}", "type", "message_delta", "delta",
                             "stop_reason", s_finish (route, reply), "stop_sequence", "usage",
                             "output_tokens", (json_int_t) reply->completion_tokens),
                  false);
    s_frames_sse (self, AIGW_MOCK_FRAME_TAIL, "message_stop",
                  json_pack ("{s:s}", "type", "message_stop"), false);
}

//  Gemini: one GenerateContentResponse per piece, then a last one with
//  finishReason and usageMetadata.
static void
s_stream_gemini (aigw_mock_frames_t *self, const aigw_mock_reply_t *reply)
{
    int route = AIGW_MOCK_ROUTE_GEMINI;
    if (reply->tool_name)
        s_emit_tool (self, route, reply);
    else
        s_pieces (reply, self, route, s_emit_text);
    s_frames_sse (self, AIGW_MOCK_FRAME_TAIL, NULL,
                  json_pack ("{s:[{s:{s:[{s:s}],s:s},s:s,s:i}],s:o,s:s,s:s}", "candidates",
                             "content", "parts", "text", "", "role", "model", "finishReason",
                             s_finish (route, reply), "index", 0, "usageMetadata",
                             s_usage (route, reply), "modelVersion", reply->model, "responseId",
                             reply->id),
                  true);
}

//  Bedrock: messageStart, [contentBlockStart], contentBlockDelta...,
//  contentBlockStop, messageStop, metadata.
static void
s_stream_bedrock (aigw_mock_frames_t *self, const aigw_mock_reply_t *reply)
{
    int route = AIGW_MOCK_ROUTE_BEDROCK;
    s_frames_bedrock (self, AIGW_MOCK_FRAME_HEAD, "messageStart",
                      json_pack ("{s:s}", "role", "assistant"));
    if (reply->tool_name) {
        s_frames_bedrock (self, AIGW_MOCK_FRAME_HEAD, "contentBlockStart",
                          json_pack ("{s:i,s:{s:{s:s,s:s}}}", "contentBlockIndex", 0, "start",
                                     "toolUse", "toolUseId", reply->tool_id, "name",
                                     reply->tool_name));
        s_emit_tool (self, route, reply);
    }
    else
        s_pieces (reply, self, route, s_emit_text);
    s_frames_bedrock (self, AIGW_MOCK_FRAME_TAIL, "contentBlockStop",
                      json_pack ("{s:i}", "contentBlockIndex", 0));
    s_frames_bedrock (self, AIGW_MOCK_FRAME_TAIL, "messageStop",
                      json_pack ("{s:s}", "stopReason", s_finish (route, reply)));
    s_frames_bedrock (
        self, AIGW_MOCK_FRAME_TAIL, "metadata",
        json_pack ("{s:o,s:{s:i}}", "usage", s_usage (route, reply), "metrics", "latencyMs", 0));
}

//  OpenAI (tool calls; text too): role chunk, deltas, finish, usage, [DONE].
static void
s_stream_openai (aigw_mock_frames_t *self, const aigw_mock_reply_t *reply)
{
    int route = AIGW_MOCK_ROUTE_OPENAI;
    json_t *delta
        = reply->tool_name
              ? json_pack ("{s:s,s:n,s:o}", "role", "assistant", "content", "tool_calls",
                           s_openai_tool_calls (reply, "", true))
              : json_pack ("{s:s,s:s,s:n}", "role", "assistant", "content", "", "refusal");
    json_t *chunk = s_openai_object (
        reply, "chat.completion.chunk",
        json_pack ("[{s:i,s:o,s:n,s:n}]", "index", 0, "delta", delta, "logprobs", "finish_reason"));
    s_frames_sse (self, AIGW_MOCK_FRAME_HEAD, NULL, chunk, false);
    if (reply->tool_name)
        s_emit_tool (self, route, reply);
    else
        s_pieces (reply, self, route, s_emit_text);
    chunk = s_openai_object (reply, "chat.completion.chunk",
                             json_pack ("[{s:i,s:{},s:n,s:s}]", "index", 0, "delta", "logprobs",
                                        "finish_reason", s_finish (route, reply)));
    s_frames_sse (self, AIGW_MOCK_FRAME_TAIL, NULL, chunk, false);
    if (reply->include_usage) {
        chunk = s_openai_object (reply, "chat.completion.chunk", json_array ());
        if (chunk)
            json_object_set_new (chunk, "usage", s_usage (route, reply));
        s_frames_sse (self, AIGW_MOCK_FRAME_TAIL, NULL, chunk, false);
    }
    s_frames_text (self, AIGW_MOCK_FRAME_TAIL, "data: [DONE]\n\n");
}

//  OpenAI Responses: response.created, .in_progress, output_item.added,
//  [content_part.added], deltas, the matching .done events,
//  output_item.done, response.completed (or .incomplete) with usage.
static void
s_stream_responses (aigw_mock_frames_t *self, const aigw_mock_reply_t *reply)
{
    int route = AIGW_MOCK_ROUTE_RESPONSES, head = AIGW_MOCK_FRAME_HEAD, tail = AIGW_MOCK_FRAME_TAIL;
    s_frames_responses (self, head, "response.created",
                        json_pack ("{s:o}", "response", s_responses_object (reply, false)));
    s_frames_responses (self, head, "response.in_progress",
                        json_pack ("{s:o}", "response", s_responses_object (reply, false)));
    s_frames_responses (self, head, "response.output_item.added",
                        json_pack ("{s:i,s:o}", "output_index", 0, "item",
                                   s_responses_item (reply, "in_progress")));
    json_t *final = s_responses_object (reply, true);
    json_t *item = json_array_get (json_object_get (final, "output"), 0);
    const char *item_id = json_string_value (json_object_get (item, "id"));
    if (reply->tool_name) {
        s_emit_tool (self, route, reply);
        s_frames_responses (self, tail, "response.function_call_arguments.done",
                            json_pack ("{s:s?,s:i,s:s,s:s}", "item_id", item_id, "output_index", 0,
                                       "name", reply->tool_name, "arguments", s_args (reply)));
    }
    else {
        json_t *part = json_array_get (json_object_get (item, "content"), 0);
        s_frames_responses (self, head, "response.content_part.added",
                            json_pack ("{s:s?,s:i,s:i,s:{s:s,s:s,s:[],s:[]}}", "item_id", item_id,
                                       "output_index", 0, "content_index", 0, "part", "type",
                                       "output_text", "text", "", "annotations", "logprobs"));
        s_pieces (reply, self, route, s_emit_text);
        s_frames_responses (self, tail, "response.output_text.done",
                            json_pack ("{s:s?,s:i,s:i,s:s%,s:[]}", "item_id", item_id,
                                       "output_index", 0, "content_index", 0, "text", reply->text,
                                       reply->text_len, "logprobs"));
        s_frames_responses (self, tail, "response.content_part.done",
                            json_pack ("{s:s?,s:i,s:i,s:O?}", "item_id", item_id, "output_index", 0,
                                       "content_index", 0, "part", part));
    }
    s_frames_responses (self, tail, "response.output_item.done",
                        json_pack ("{s:i,s:O?}", "output_index", 0, "item", item));
    const char *status = json_string_value (json_object_get (final, "status"));
    s_frames_responses (self, tail,
                        status && strcmp (status, "incomplete") == 0 ? "response.incomplete"
                                                                     : "response.completed",
                        json_pack ("{s:o?}", "response", final));
}

//  See the header.
aigw_mock_frames_t *
aigw_mock_frames_new (int route, const aigw_mock_reply_t *reply)
{
    aigw_mock_frames_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
        s_stream_anthropic (self, reply);
    else if (route == AIGW_MOCK_ROUTE_GEMINI)
        s_stream_gemini (self, reply);
    else if (route == AIGW_MOCK_ROUTE_BEDROCK)
        s_stream_bedrock (self, reply);
    else if (route == AIGW_MOCK_ROUTE_RESPONSES)
        s_stream_responses (self, reply);
    else
        s_stream_openai (self, reply);
    if (self->failed)
        aigw_mock_frames_destroy (&self);
    return self;
}

//  See the header.
void
aigw_mock_frames_destroy (aigw_mock_frames_t **self_p)
{
    assert (self_p);
    aigw_mock_frames_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->items[i].data);
    free (self->items);
    free (self);
    *self_p = NULL;
}

//  See the header.
size_t
aigw_mock_frames_size (aigw_mock_frames_t *self)
{
    assert (self);
    return self->count;
}

//  See the header.
const unsigned char *
aigw_mock_frames_get (aigw_mock_frames_t *self, size_t index, size_t *len, int *kind)
{
    assert (self && index < self->count);
    *len = self->items[index].len;
    *kind = self->items[index].kind;
    return self->items[index].data;
}

//  ---------------------------------------------------------------------
//  Errors

//  Anthropic's error type for STATUS.
static const char *
s_anthropic_error_type (int status)
{
    switch (status) {
        case 400: return "invalid_request_error";
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 529: return "overloaded_error";
        default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

//  Google's canonical status name for HTTP STATUS.
static const char *
s_google_status (int status)
{
    switch (status) {
        case 400: return "INVALID_ARGUMENT";
        case 401: return "UNAUTHENTICATED";
        case 403: return "PERMISSION_DENIED";
        case 404: return "NOT_FOUND";
        case 409: return "ABORTED";
        case 429: return "RESOURCE_EXHAUSTED";
        case 499: return "CANCELLED";
        case 501: return "UNIMPLEMENTED";
        case 503: return "UNAVAILABLE";
        case 504: return "DEADLINE_EXCEEDED";
        default: return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

//  See the header.
const char *
aigw_mock_bedrock_error_type (int status)
{
    switch (status) {
        case 400: return "ValidationException";
        case 403: return "AccessDeniedException";
        case 404: return "ResourceNotFoundException";
        case 408: return "ModelTimeoutException";
        case 424: return "ModelErrorException";
        case 429: return "ThrottlingException";
        case 503: return "ServiceUnavailableException";
        default: return status >= 500 ? "InternalServerException" : "ValidationException";
    }
}

//  See the header.
char *
aigw_mock_error_body (int route, int status, const char *message)
{
    json_t *root;
    if (route == AIGW_MOCK_ROUTE_ANTHROPIC)
        root = json_pack ("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                          s_anthropic_error_type (status), "message", message);
    else if (route == AIGW_MOCK_ROUTE_GEMINI)
        root = json_pack ("{s:{s:i,s:s,s:s}}", "error", "code", status, "message", message,
                          "status", s_google_status (status));
    else if (route == AIGW_MOCK_ROUTE_BEDROCK)
        root = json_pack ("{s:s}", "message", message);
    else
        root
            = json_pack ("{s:{s:s,s:s,s:n,s:n}}", "error", "message", message, "type",
                         status >= 500 ? "server_error" : "invalid_request_error", "param", "code");
    return aigw_json_dump (root, NULL);
}

//  See the header.
int
aigw_mock_bedrock_exception (const char *type, const char *message, unsigned char **out,
                             size_t *len)
{
    char *json = aigw_json_dump (json_pack ("{s:s}", "message", message), NULL);
    if (!json)
        return -1;
    aigw_eventstream_header_t headers[] = {
        {":exception-type", type},
        {":content-type", "application/json"},
        {":message-type", "exception"},
    };
    int rc = aigw_eventstream_encode (headers, sizeof headers / sizeof headers[0], json,
                                      strlen (json), out, len);
    free (json);
    return rc;
}

//  ---------------------------------------------------------------------
//  Gemini embeddings

//  The text of one Gemini embed request ITEM ({content:{parts:[{text}]}}),
//  appended to TEXTS. Returns 0 or -1.
static int
s_gemini_embed_item (json_t *item, json_t *texts)
{
    json_t *parts = json_object_get (json_object_get (item, "content"), "parts");
    if (!json_is_array (parts) || json_array_size (parts) == 0)
        return -1;
    json_t *joined = NULL;
    size_t index;
    json_t *part;
    json_array_foreach (parts, index, part) {
        json_t *text = json_object_get (part, "text");
        if (!json_is_string (text)) {
            json_decref (joined);
            return -1;
        }
        s_join (&joined, json_string_value (text), json_string_length (text));
    }
    return json_array_append_new (texts, joined);
}

//  See the header.
json_t *
aigw_mock_gemini_embed_texts (json_t *root, bool batch, char *err, size_t err_size)
{
    json_t *texts = json_array ();
    if (!texts)
        return NULL;
    if (!batch) {
        if (s_gemini_embed_item (root, texts) == 0)
            return texts;
        json_decref (texts);
        s_fail (err, err_size, "* EmbedContentRequest.content: contents must have parts");
        return NULL;
    }
    json_t *requests = json_object_get (root, "requests");
    size_t index;
    json_t *item;
    if (!json_is_array (requests) || json_array_size (requests) == 0) {
        json_decref (texts);
        s_fail (err, err_size, "* BatchEmbedContentsRequest.requests: at least one required");
        return NULL;
    }
    json_array_foreach (requests, index, item)
        if (s_gemini_embed_item (item, texts) != 0) {
            json_decref (texts);
            s_fail (err, err_size,
                    "* BatchEmbedContentsRequest.requests[%zu].content: "
                    "contents must have text parts",
                    index);
            return NULL;
        }
    return texts;
}

//  See the header.
char *
aigw_mock_gemini_embed_body (const float *vectors, size_t count, size_t dims, bool batch)
{
    json_t *list = json_array ();
    for (size_t i = 0; list && i < count; i++) {
        json_t *values = json_array ();
        for (size_t j = 0; values && j < dims; j++)
            json_array_append_new (values, json_real (vectors[i * dims + j]));
        json_array_append_new (list, json_pack ("{s:o}", "values", values));
    }
    json_t *root = batch ? json_pack ("{s:o}", "embeddings", list)
                         : json_pack ("{s:O}", "embedding", json_array_get (list, 0));
    if (!batch)
        json_decref (list);
    return aigw_json_dump (root, NULL);
}

//  ---------------------------------------------------------------------
//  Selftest

//  Parses TEXT; asserts it parses. Caller owns the result.
static json_t *
s_test_load (const char *text)
{
    json_error_t error;
    json_t *root = json_loads (text, 0, &error);
    if (!root)
        fprintf (stderr, "not JSON (%s): %s\n", error.text, text);
    assert (root);
    return root;
}

//  True if A is set and equals B.
static bool
s_test_streq (const char *a, const char *b)
{
    return a && strcmp (a, b) == 0;
}

//  See the header.
void
aigw_mock_formats_test (bool verbose)
{
    char err[256];
    //  Route names
    assert (aigw_mock_route_lookup ("gemini", 6) == AIGW_MOCK_ROUTE_GEMINI);
    assert (aigw_mock_route_lookup ("gem", 3) == -1);
    assert (s_test_streq (aigw_mock_route_name (AIGW_MOCK_ROUTE_AZURE), "azure"));
    assert (s_test_streq (aigw_mock_route_name (99), "?"));

    //  Anthropic: system, string and block content, last user text
    json_t *root = s_test_load (
        "{\"model\":\"claude\",\"max_tokens\":5,\"stream\":true,\"system\":\"be brief\","
        "\"messages\":[{\"role\":\"user\",\"content\":\"first one\"},"
        "{\"role\":\"assistant\",\"content\":\"ok\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"},"
        "{\"type\":\"image\",\"source\":{}},{\"type\":\"text\",\"text\":\"there\"}]}]}");
    aigw_mock_ask_t ask = {0};
    assert (
        aigw_mock_ask_parse (AIGW_MOCK_ROUTE_ANTHROPIC, root, NULL, false, &ask, err, sizeof err)
        == 0);
    assert (s_test_streq (ask.model, "claude"));
    assert (ask.stream && ask.max_tokens == 5);
    assert (s_test_streq (ask.user_text, "hello there"));
    assert (ask.prompt_tokens == 2 + 2 + 1 + 2);
    assert (!ask.tool_name && !ask.tool_result);
    aigw_mock_ask_free (&ask);
    aigw_mock_ask_free (&ask);
    json_decref (root);

    //  Anthropic: missing max_tokens is a 400
    root = s_test_load ("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    memset (&ask, 0, sizeof ask);
    assert (
        aigw_mock_ask_parse (AIGW_MOCK_ROUTE_ANTHROPIC, root, NULL, false, &ask, err, sizeof err)
        == -1);
    assert (strstr (err, "max_tokens"));
    aigw_mock_ask_free (&ask);
    json_decref (root);

    //  Anthropic tools: mock:tool calls the first tool; a tool_result after
    //  it is answered
    root = s_test_load ("{\"model\":\"c\",\"max_tokens\":9,\"tools\":[{\"name\":\"weather\"},"
                        "{\"name\":\"other\"}],\"messages\":[{\"role\":\"user\","
                        "\"content\":\"weather? mock:tool\"}]}");
    memset (&ask, 0, sizeof ask);
    assert (
        aigw_mock_ask_parse (AIGW_MOCK_ROUTE_ANTHROPIC, root, NULL, false, &ask, err, sizeof err)
        == 0);
    assert (s_test_streq (ask.tool_name, "weather") && !ask.tool_result);
    aigw_mock_ask_free (&ask);
    json_decref (root);
    root = s_test_load (
        "{\"model\":\"c\",\"max_tokens\":9,\"tools\":[{\"name\":\"weather\"}],\"messages\":["
        "{\"role\":\"user\",\"content\":\"weather? mock:tool\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\","
        "\"name\":\"weather\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"sunny 21C\"}]}]}]}");
    memset (&ask, 0, sizeof ask);
    assert (
        aigw_mock_ask_parse (AIGW_MOCK_ROUTE_ANTHROPIC, root, NULL, false, &ask, err, sizeof err)
        == 0);
    assert (!ask.tool_name && s_test_streq (ask.tool_result, "sunny 21C"));
    assert (s_test_streq (ask.user_text, "weather? mock:tool"));
    aigw_mock_ask_free (&ask);
    json_decref (root);

    //  Gemini: contents, functionResponse as JSON, tools
    root = s_test_load (
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"sys\"}]},"
        "\"generationConfig\":{\"maxOutputTokens\":7},"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\"}]}],"
        "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi mock:tool\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\"}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\","
        "\"response\":{\"temp\":21}}}]}]}");
    memset (&ask, 0, sizeof ask);
    assert (
        aigw_mock_ask_parse (AIGW_MOCK_ROUTE_GEMINI, root, "gemini-x", true, &ask, err, sizeof err)
        == 0);
    assert (s_test_streq (ask.model, "gemini-x") && ask.stream && ask.max_tokens == 7);
    assert (s_test_streq (ask.tool_result, "{\"temp\":21}") && !ask.tool_name);
    assert (s_test_streq (ask.user_text, "hi mock:tool"));
    aigw_mock_ask_free (&ask);
    json_decref (root);

    //  Bedrock: toolConfig, toolResult with json content
    root = s_test_load (
        "{\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"wx\"}}]},"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"go mock:tool\"}]}]}");
    memset (&ask, 0, sizeof ask);
    assert (aigw_mock_ask_parse (AIGW_MOCK_ROUTE_BEDROCK, root, "m", false, &ask, err, sizeof err)
            == 0);
    assert (s_test_streq (ask.tool_name, "wx"));
    aigw_mock_ask_free (&ask);
    json_decref (root);
    root = s_test_load (
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"a\","
        "\"content\":[{\"json\":{\"t\":1}}]}}]}]}");
    memset (&ask, 0, sizeof ask);
    assert (aigw_mock_ask_parse (AIGW_MOCK_ROUTE_BEDROCK, root, "m", false, &ask, err, sizeof err)
            == 0);
    assert (s_test_streq (ask.tool_result, "{\"t\":1}"));
    aigw_mock_ask_free (&ask);
    json_decref (root);
    root = s_test_load ("{\"messages\":[{\"role\":\"user\",\"content\":\"not blocks\"}]}");
    memset (&ask, 0, sizeof ask);
    assert (aigw_mock_ask_parse (AIGW_MOCK_ROUTE_BEDROCK, root, "m", false, &ask, err, sizeof err)
            == -1);
    aigw_mock_ask_free (&ask);
    json_decref (root);

    //  OpenAI: tool role result, and a tool call
    root = s_test_load ("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"mock:tool\"},"
                        "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"42\"}]}");
    memset (&ask, 0, sizeof ask);
    aigw_mock_openai_tools (root, "mock:tool", &ask);
    assert (s_test_streq (ask.tool_result, "42") && !ask.tool_name);
    aigw_mock_ask_free (&ask);
    json_decref (root);
    root = s_test_load ("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"mock:tool\"}]}");
    aigw_mock_openai_tools (root, "mock:tool", &ask);
    assert (s_test_streq (ask.tool_name, "f") && !ask.tool_result);
    aigw_mock_ask_free (&ask);
    json_decref (root);

    //  Answers: one per format, text and tool call
    aigw_mock_reply_t reply = {
        .id = "id-1",
        .model = "m",
        .created = 1,
        .text = "Mock reply to: hi",
        .text_len = 17,
        .tool_id = "call-1",
        .finish = "stop",
        .prompt_tokens = 1,
        .completion_tokens = 4,
    };
    size_t len = 0;
    char *body = aigw_mock_reply_body (AIGW_MOCK_ROUTE_ANTHROPIC, &reply, &len);
    root = s_test_load (body);
    assert (len == strlen (body));
    assert (s_test_streq (json_string_value (json_object_get (root, "stop_reason")), "end_turn"));
    assert (s_test_streq (json_string_value (json_object_get (
                              json_array_get (json_object_get (root, "content"), 0), "text")),
                          "Mock reply to: hi"));
    assert (json_integer_value (json_object_get (json_object_get (root, "usage"), "output_tokens"))
            == 4);
    assert (!json_object_get (json_object_get (root, "usage"), "cache_read_input_tokens"));
    json_decref (root);
    free (body);
    //  mock:cached: Anthropic's input tokens are the uncached rest
    reply.prompt_tokens = 5;
    reply.cached_tokens = 3;
    body = aigw_mock_reply_body (AIGW_MOCK_ROUTE_ANTHROPIC, &reply, &len);
    root = s_test_load (body);
    json_t *cached_usage = json_object_get (root, "usage");
    assert (json_integer_value (json_object_get (cached_usage, "input_tokens")) == 2);
    assert (json_integer_value (json_object_get (cached_usage, "cache_read_input_tokens")) == 3);
    json_decref (root);
    free (body);
    body = aigw_mock_reply_body (AIGW_MOCK_ROUTE_OPENAI, &reply, &len);
    root = s_test_load (body);
    cached_usage = json_object_get (root, "usage");
    assert (json_integer_value (json_object_get (cached_usage, "prompt_tokens")) == 5);
    assert (json_integer_value (json_object_get (
                json_object_get (cached_usage, "prompt_tokens_details"), "cached_tokens"))
            == 3);
    json_decref (root);
    free (body);
    reply.prompt_tokens = 1;
    reply.cached_tokens = 0;
    body = aigw_mock_reply_body (AIGW_MOCK_ROUTE_GEMINI, &reply, &len);
    root = s_test_load (body);
    json_t *candidate = json_array_get (json_object_get (root, "candidates"), 0);
    assert (s_test_streq (json_string_value (json_object_get (candidate, "finishReason")), "STOP"));
    assert (json_integer_value (
                json_object_get (json_object_get (root, "usageMetadata"), "totalTokenCount"))
            == 5);
    json_decref (root);
    free (body);
    reply.tool_name = "wx";
    body = aigw_mock_reply_body (AIGW_MOCK_ROUTE_BEDROCK, &reply, &len);
    root = s_test_load (body);
    assert (s_test_streq (json_string_value (json_object_get (root, "stopReason")), "tool_use"));
    json_t *use = json_object_get (
        json_array_get (
            json_object_get (json_object_get (json_object_get (root, "output"), "message"),
                             "content"),
            0),
        "toolUse");
    assert (s_test_streq (json_string_value (json_object_get (use, "name")), "wx"));
    assert (s_test_streq (
        json_string_value (json_object_get (json_object_get (use, "input"), "city")), "Paris"));
    json_decref (root);
    free (body);
    body = aigw_mock_reply_body (AIGW_MOCK_ROUTE_OPENAI, &reply, &len);
    root = s_test_load (body);
    json_t *choice = json_array_get (json_object_get (root, "choices"), 0);
    assert (
        s_test_streq (json_string_value (json_object_get (choice, "finish_reason")), "tool_calls"));
    json_t *call
        = json_array_get (json_object_get (json_object_get (choice, "message"), "tool_calls"), 0);
    assert (s_test_streq (
        json_string_value (json_object_get (json_object_get (call, "function"), "arguments")),
        AIGW_MOCK_TOOL_ARGUMENTS));
    json_decref (root);
    free (body);

    //  Streams: Anthropic text, event names in order
    reply.tool_name = NULL;
    aigw_mock_frames_t *frames = aigw_mock_frames_new (AIGW_MOCK_ROUTE_ANTHROPIC, &reply);
    assert (frames);
    const char *names[] = {"message_start",       "content_block_start", "ping",
                           "content_block_delta", "content_block_delta", "content_block_delta",
                           "content_block_delta", "content_block_stop",  "message_delta",
                           "message_stop"};
    assert (aigw_mock_frames_size (frames) == sizeof names / sizeof names[0]);
    size_t text_pieces = 0;
    for (size_t i = 0; i < aigw_mock_frames_size (frames); i++) {
        int kind;
        const char *frame = (const char *) aigw_mock_frames_get (frames, i, &len, &kind);
        char expect[64];
        snprintf (expect, sizeof expect, "event: %s\ndata: {", names[i]);
        assert (strncmp (frame, expect, strlen (expect)) == 0);
        assert (len > 2 && frame[len - 1] == '\n' && frame[len - 2] == '\n');
        text_pieces += kind == AIGW_MOCK_FRAME_CONTENT;
    }
    assert (text_pieces == 4);
    aigw_mock_frames_destroy (&frames);
    aigw_mock_frames_destroy (&frames);

    //  Bedrock tool stream: frames parse back, input split in two deltas
    reply.tool_name = "wx";
    frames = aigw_mock_frames_new (AIGW_MOCK_ROUTE_BEDROCK, &reply);
    assert (frames);
    aigw_eventstream_t *parser = aigw_eventstream_new (0);
    assert (parser);
    for (size_t i = 0; i < aigw_mock_frames_size (frames); i++) {
        int kind;
        const unsigned char *frame = aigw_mock_frames_get (frames, i, &len, &kind);
        assert (aigw_eventstream_feed (parser, frame, len) == 0);
    }
    const char *events[]
        = {"messageStart",     "contentBlockStart", "contentBlockDelta", "contentBlockDelta",
           "contentBlockStop", "messageStop",       "metadata"};
    char input[128] = "";
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        aigw_eventstream_message_t message;
        assert (aigw_eventstream_next (parser, &message) == 1);
        assert (s_test_streq (message.event_type, events[i]));
        assert (s_test_streq (message.message_type, "event"));
        json_t *payload = json_loadb ((const char *) message.payload, message.payload_len, 0, NULL);
        assert (payload);
        const char *piece = json_string_value (json_object_get (
            json_object_get (json_object_get (payload, "delta"), "toolUse"), "input"));
        if (piece)
            strncat (input, piece, sizeof input - strlen (input) - 1);
        json_decref (payload);
    }
    assert (s_test_streq (input, AIGW_MOCK_TOOL_ARGUMENTS));
    assert (aigw_eventstream_pending (parser) == 0);
    aigw_eventstream_destroy (&parser);
    aigw_mock_frames_destroy (&frames);

    //  Gemini stream: CRLF framing, last event has finishReason and usage
    reply.tool_name = NULL;
    frames = aigw_mock_frames_new (AIGW_MOCK_ROUTE_GEMINI, &reply);
    assert (frames && aigw_mock_frames_size (frames) == 5);
    int kind;
    const char *last = (const char *) aigw_mock_frames_get (frames, 4, &len, &kind);
    assert (kind == AIGW_MOCK_FRAME_TAIL);
    assert (strncmp (last, "data: {", 7) == 0 && strstr (last, "\r\n\r\n"));
    assert (strstr (last, "\"finishReason\":\"STOP\"") && strstr (last, "usageMetadata"));
    aigw_mock_frames_destroy (&frames);

    //  OpenAI tool stream: arguments in two deltas, [DONE] last
    reply.tool_name = "f";
    reply.include_usage = true;
    frames = aigw_mock_frames_new (AIGW_MOCK_ROUTE_OPENAI, &reply);
    assert (frames && aigw_mock_frames_size (frames) == 1 + 2 + 1 + 1 + 1);
    last = (const char *) aigw_mock_frames_get (frames, 5, &len, &kind);
    assert (s_test_streq (last, "data: [DONE]\n\n"));
    last = (const char *) aigw_mock_frames_get (frames, 1, &len, &kind);
    assert (kind == AIGW_MOCK_FRAME_CONTENT && strstr (last, "\"arguments\":\"{\\\"city\\\""));
    aigw_mock_frames_destroy (&frames);

    //  Errors in each shape
    body = aigw_mock_error_body (AIGW_MOCK_ROUTE_ANTHROPIC, 429, "slow down");
    assert (s_test_streq (body, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                                "\"message\":\"slow down\"}}"));
    free (body);
    body = aigw_mock_error_body (AIGW_MOCK_ROUTE_GEMINI, 403, "no key");
    assert (s_test_streq (body, "{\"error\":{\"code\":403,\"message\":\"no key\","
                                "\"status\":\"PERMISSION_DENIED\"}}"));
    free (body);
    body = aigw_mock_error_body (AIGW_MOCK_ROUTE_BEDROCK, 500, "boom");
    assert (s_test_streq (body, "{\"message\":\"boom\"}"));
    free (body);
    assert (s_test_streq (aigw_mock_bedrock_error_type (429), "ThrottlingException"));
    unsigned char *frame = NULL;
    assert (aigw_mock_bedrock_exception ("internalServerException", "cut", &frame, &len) == 0);
    parser = aigw_eventstream_new (0);
    assert (aigw_eventstream_feed (parser, frame, len) == 0);
    aigw_eventstream_message_t message;
    assert (aigw_eventstream_next (parser, &message) == 1);
    assert (s_test_streq (message.message_type, "exception"));
    assert (s_test_streq (message.exception_type, "internalServerException"));
    aigw_eventstream_destroy (&parser);
    free (frame);

    //  Gemini embeddings: single and batch
    root = s_test_load ("{\"content\":{\"parts\":[{\"text\":\"a\"},{\"text\":\"b\"}]}}");
    json_t *texts = aigw_mock_gemini_embed_texts (root, false, err, sizeof err);
    assert (json_array_size (texts) == 1);
    assert (s_test_streq (json_string_value (json_array_get (texts, 0)), "a b"));
    json_decref (texts);
    assert (!aigw_mock_gemini_embed_texts (root, true, err, sizeof err));
    json_decref (root);
    float vectors[4] = {0.5f, 0.25f, 1, 0};
    body = aigw_mock_gemini_embed_body (vectors, 2, 2, true);
    root = s_test_load (body);
    assert (json_array_size (json_object_get (root, "embeddings")) == 2);
    json_decref (root);
    free (body);
    body = aigw_mock_gemini_embed_body (vectors, 1, 2, false);
    assert (s_test_streq (body, "{\"embedding\":{\"values\":[0.5,0.25]}}"));
    free (body);
    if (verbose)
        printf ("mock_formats: ok\n");
}
