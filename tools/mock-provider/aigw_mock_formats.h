/*  aigw_mock_formats: the wire formats `aigw mock-provider` speaks beside
    OpenAI's own: Anthropic Messages, Gemini generateContent, Bedrock
    Converse / ConverseStream, OpenAI Responses, and OpenAI tool calls
    (Azure OpenAI is OpenAI's shapes under other paths).

    Pure functions and small objects, no I/O: the mock reads a request,
    asks this module what the request says (aigw_mock_ask_parse), builds
    the reply text itself (so every format answers what the OpenAI route
    would), then has this module shape the answer: one JSON body
    (aigw_mock_reply_body), a list of stream frames (aigw_mock_frames_new)
    or an error body (aigw_mock_error_body). Every string returned is new
    and the caller frees it with free(). */
#ifndef AIGW_MOCK_FORMATS_H_INCLUDED
#define AIGW_MOCK_FORMATS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  The routes the mock serves, one per wire format
typedef enum {
    AIGW_MOCK_ROUTE_OPENAI,     //  /v1/chat/completions, /v1/embeddings, /v1/models
    AIGW_MOCK_ROUTE_ANTHROPIC,  //  /v1/messages
    AIGW_MOCK_ROUTE_GEMINI,     //  /v1beta/models/{model}:{method}
    AIGW_MOCK_ROUTE_BEDROCK,    //  /model/{modelId}/converse[-stream]
    AIGW_MOCK_ROUTE_AZURE,      //  /openai/deployments/{deployment}/...
    AIGW_MOCK_ROUTE_RESPONSES,  //  /v1/responses (OpenAI Responses)
    AIGW_MOCK_ROUTE_COUNT       //  number of routes
} aigw_mock_route_t;

//  The tool call every format answers "mock:tool" with
#define AIGW_MOCK_TOOL_ARGUMENTS "{\"city\":\"Paris\",\"unit\":\"celsius\"}"
//  Where a streamed tool call splits its arguments (two deltas)
#define AIGW_MOCK_TOOL_SPLIT 15
//  Completion tokens a tool call reports (one per argument delta)
#define AIGW_MOCK_TOOL_TOKENS 2
//  What a reply to a tool result starts with
#define AIGW_MOCK_TOOL_SAID "tool said: "
//  The word in the last user message that asks for a tool call
#define AIGW_MOCK_TOOL_CONTROL "mock:tool"

//  What one chat request says, in any format
typedef struct {
    const char *model;     //  model, borrowed from the request or path
    bool stream;           //  the request asks for a stream
    int max_tokens;        //  cap on reply words, 0: none
    size_t prompt_tokens;  //  words across every message and system text
    char *user_text;       //  owned: text of the last user message, never NULL
    char *tool_name;       //  owned: tool to call (mock:tool asked), or NULL
    char *tool_result;     //  owned: tool result to answer, or NULL
} aigw_mock_ask_t;

//  One answer to shape, in OpenAI's terms
typedef struct {
    const char *id;             //  message or completion id
    const char *model;          //  model echoed back
    long long created;          //  Unix seconds
    const char *text;           //  reply text (ignored for a tool call)
    size_t text_len;            //  bytes of text
    const char *tool_name;      //  non-NULL: answer a call of this tool
    const char *tool_id;        //  the tool call's id
    const char *tool_args;      //  its arguments (JSON text); NULL: AIGW_MOCK_TOOL_ARGUMENTS
    const char *finish;         //  "stop", "length" or "tool_calls"
    size_t prompt_tokens;       //  usage: input tokens
    size_t completion_tokens;   //  usage: output tokens
    size_t cached_tokens;       //  usage: of prompt_tokens, read from a prompt cache
    size_t cache_write_tokens;  //  usage: of prompt_tokens, written to a prompt cache
    bool include_usage;         //  OpenAI stream: send a usage chunk
} aigw_mock_reply_t;

//  Kinds of stream frame, so the mock can pace and cut a stream
typedef enum {
    AIGW_MOCK_FRAME_HEAD,     //  before any content
    AIGW_MOCK_FRAME_CONTENT,  //  one piece of reply text or tool arguments
    AIGW_MOCK_FRAME_TAIL      //  finish, usage, end of stream
} aigw_mock_frame_kind_t;

typedef struct _aigw_mock_frames_t aigw_mock_frames_t;

//  The route's name ("openai", "anthropic", ...), or "?" when out of range.
const char *aigw_mock_route_name (int route);

//  The route named NAME (LEN bytes), or -1.
int aigw_mock_route_lookup (const char *name, size_t len);

//  Reads chat request ROOT in ROUTE's format (Anthropic, Gemini, Bedrock or
//  Responses)
//  into ASK; MODEL and STREAM come from the path for Gemini and Bedrock
//  (NULL / ignored otherwise). Returns 0, or -1 with ERR set to a message
//  for a 400. ASK must be zeroed first; free it with aigw_mock_ask_free
//  whatever this returns.
int aigw_mock_ask_parse (int route, json_t *root, const char *model, bool stream,
                         aigw_mock_ask_t *ask, char *err, size_t err_size);

//  Reads OpenAI request ROOT's tools and tool results into ASK->tool_name
//  and ASK->tool_result, given the last user message's text USER_TEXT.
void aigw_mock_openai_tools (json_t *root, const char *user_text, aigw_mock_ask_t *ask);

//  Frees what ASK owns; safe twice.
void aigw_mock_ask_free (aigw_mock_ask_t *ask);

//  The whole (not streamed) answer to REPLY in ROUTE's format, a new
//  string (length in *LEN), or NULL when out of memory.
char *aigw_mock_reply_body (int route, const aigw_mock_reply_t *reply, size_t *len);

//  The streamed answer to REPLY in ROUTE's format as frames, ready to send
//  one by one: SSE events, or Bedrock event-stream messages. Text streams
//  one word (with the whitespace after it) per content frame, as the
//  OpenAI route does. NULL when out of memory.
aigw_mock_frames_t *aigw_mock_frames_new (int route, const aigw_mock_reply_t *reply);

//  Destroys the frames; safe on NULL and twice; nulls the caller's pointer.
void aigw_mock_frames_destroy (aigw_mock_frames_t **self_p);

//  Number of frames.
size_t aigw_mock_frames_size (aigw_mock_frames_t *self);

//  Frame INDEX: its bytes (owned by SELF), length in *LEN, kind in *KIND.
const unsigned char *aigw_mock_frames_get (aigw_mock_frames_t *self, size_t index, size_t *len,
                                           int *kind);

//  The error body for STATUS with MESSAGE in ROUTE's documented shape
//  (Anthropic, Gemini, Bedrock; OpenAI and Azure are the mock's own), a
//  new string, or NULL when out of memory.
char *aigw_mock_error_body (int route, int status, const char *message);

//  Bedrock's error type for STATUS (x-amzn-ErrorType, exception frames).
const char *aigw_mock_bedrock_error_type (int status);

//  A Bedrock event-stream exception message of TYPE with MESSAGE, in a new
//  buffer *OUT (caller frees) of *LEN bytes. Returns 0 or -1.
int aigw_mock_bedrock_exception (const char *type, const char *message, unsigned char **out,
                                 size_t *len);

//  Reads a Gemini embedContent (BATCH false) or batchEmbedContents request
//  ROOT: returns a new array of the texts to embed (caller decrefs), or
//  NULL with ERR set to a message for a 400.
json_t *aigw_mock_gemini_embed_texts (json_t *root, bool batch, char *err, size_t err_size);

//  The Gemini embeddings answer for COUNT vectors of DIMS floats each (row
//  after row in VECTORS): {"embedding":{"values"}} or, when BATCH,
//  {"embeddings":[...]}. A new string, or NULL when out of memory.
char *aigw_mock_gemini_embed_body (const float *vectors, size_t count, size_t dims, bool batch);

//  Selftest of the encoders and parsers.
void aigw_mock_formats_test (bool verbose);

#endif
