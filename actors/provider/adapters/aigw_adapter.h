/*  aigw_adapter: what the provider actor needs from one upstream wire
    format. The gateway's own format is OpenAI's: a chat or embeddings
    request arrives (after any client-side translation) as an OpenAI body,
    and every answer leaves the adapter as an OpenAI body or as OpenAI SSE
    events. Each provider file under actors/provider/adapters/ exports one
    aigw_adapter_t; aigw_adapter_find maps a provider name to it.

    Adapters are pure: no I/O, no logging, no global state. Nothing they
    return (errors included) may carry a credential. */
#ifndef AIGW_ADAPTER_H_INCLUDED
#define AIGW_ADAPTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aigw_envelope.h"

//  Provider defaults of the config (providers.*, registered by aigw_adapter.c).
#define AIGW_DEFAULT_OPENAI_BASE_URL      "https://api.openai.com/v1"
#define AIGW_DEFAULT_ANTHROPIC_BASE_URL   "https://api.anthropic.com"
#define AIGW_DEFAULT_GEMINI_BASE_URL      "https://generativelanguage.googleapis.com"
#define AIGW_DEFAULT_CONNECT_TIMEOUT_MS   5000
#define AIGW_DEFAULT_MAX_HOST_CONNECTIONS 256

//  Headers one upstream request may carry.
#define AIGW_ADAPTER_HEADERS_MAX 12
//  Largest URL an adapter builds, NUL included.
#define AIGW_ADAPTER_URL_MAX 2048

//  One deployment's upstream settings, as the adapter needs them. Strings
//  belong to the caller and outlive the call.
typedef struct {
    const char *base_url;               //  no trailing slash; NULL = the provider's default
    const char *model;                  //  upstream model, Azure deployment or Bedrock model id
    const char *api_key;                //  secret, or NULL when none is configured
    const char *api_version;            //  Azure api-version, NULL = adapter default
    const char *region;                 //  Bedrock region, NULL = adapter default
    const char *aws_access_key_id;      //  Bedrock: SigV4 key id
    const char *aws_secret_access_key;  //  Bedrock: SigV4 secret
    const char *aws_session_token;      //  Bedrock: STS token, or NULL
    int64_t now_s;                      //  Unix time for request signing
} aigw_upstream_t;

//  An upstream request as built by an adapter. The caller frees it with
//  aigw_upstream_request_reset, which also wipes header values (they may
//  hold secrets).
typedef struct {
    char url[AIGW_ADAPTER_URL_MAX];           //  full URL
    char *headers[AIGW_ADAPTER_HEADERS_MAX];  //  "Name: value", malloc'd
    size_t header_count;                      //  entries used in headers
    char *body;                               //  request body, malloc'd
    size_t body_len;                          //  bytes in body
} aigw_upstream_request_t;

//  A translator of one streamed answer: raw upstream body bytes in, OpenAI
//  SSE events ("data: {...}\n\n", ending with "data: [DONE]\n\n") out.
typedef struct _aigw_adapter_stream_t aigw_adapter_stream_t;

typedef struct {
    const char *name;  //  provider name as configured, e.g. "gemini"
    //  Build the request for an OpenAI-format BODY of KIND (AIGW_KIND_CHAT
    //  or AIGW_KIND_EMBEDDINGS), streamed when STREAM. Returns 0; 1 when the
    //  provider has no such endpoint (the caller answers 400); -1 with ERR
    //  when the body cannot be translated (the client's fault: 400).
    int (*request) (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body,
                    size_t len, aigw_upstream_request_t *out, char *err, size_t err_size);
    //  A 2xx upstream BODY as an OpenAI body of KIND whose "model" is MODEL:
    //  a new buffer the caller owns, or NULL with ERR.
    char *(*response) (aigw_kind_t kind, const char *body, size_t len, const char *model,
                       size_t *out_len, char *err, size_t err_size);
    //  The human message inside an upstream error BODY, a new string the
    //  caller owns, or NULL.
    char *(*error_message) (const char *body, size_t len);
    //  A stream translator naming MODEL and ID in its chunks; NULL when out
    //  of memory.
    aigw_adapter_stream_t *(*stream_new) (const char *model, const char *id);
    //  Feed raw body bytes; append complete OpenAI SSE events to *OUT (a
    //  malloc'd buffer that starts NULL; *OUT_LEN advances). Returns 0, or
    //  -1 with ERR on a malformed stream or an upstream error event (an
    //  OpenAI-shaped error event and [DONE] are then appended).
    int (*stream_feed) (aigw_adapter_stream_t *self, const char *data, size_t len, char **out,
                        size_t *out_len, char *err, size_t err_size);
    //  True once the upstream said the answer is complete ([DONE] emitted).
    bool (*stream_done) (aigw_adapter_stream_t *self);
    //  Destroy; safe on NULL, nulls the pointer.
    void (*stream_destroy) (aigw_adapter_stream_t **self_p);
} aigw_adapter_t;

//  The adapters, one per file.
extern const aigw_adapter_t aigw_adapter_openai;  //  aigw_openai.c; also OpenAI-compatible servers
extern const aigw_adapter_t aigw_adapter_azure;   //  aigw_azure.c
extern const aigw_adapter_t aigw_adapter_anthropic;  //  aigw_anthropic_adapter.c
extern const aigw_adapter_t aigw_adapter_gemini;     //  aigw_gemini_adapter.c
extern const aigw_adapter_t aigw_adapter_bedrock;    //  aigw_bedrock_adapter.c

//  The adapter for a configured provider name, or NULL. OpenAI-compatible
//  names (openai_compatible, vllm, ollama, groq, mistral, deepseek, together,
//  openrouter) all map to the OpenAI adapter.
const aigw_adapter_t *aigw_adapter_find (const char *provider);

//  The default base URL of a provider name, or NULL when it has none (the
//  deployment must give one: azure, openai_compatible).
const char *aigw_adapter_default_base_url (const char *provider);

//  True for a name aigw_adapter_find knows.
bool aigw_adapter_known (const char *provider);

//  Add a header "NAME: VALUE" to OUT. Returns 0, or -1 when full or out of
//  memory.
int aigw_upstream_request_header (aigw_upstream_request_t *out, const char *name,
                                  const char *value);

//  Free what OUT holds and zero it; header values are wiped first.
void aigw_upstream_request_reset (aigw_upstream_request_t *out);

//  Append LEN bytes to the malloc'd buffer *OUT of *OUT_LEN bytes, keeping
//  it NUL-terminated. Returns 0, or -1 when out of memory.
int aigw_adapter_append (char **out, size_t *out_len, const char *data, size_t len);

//  Append one SSE event "data: <EVENT as compact JSON>\n\n"; steals EVENT
//  (NULL allowed: out of memory upstream). Returns 0, or -1 when out of
//  memory (*OUT is then as it was, or longer by a partial event).
int aigw_adapter_append_event (char **out, size_t *out_len, json_t *event);

//  Append the SSE event "event: NAME\ndata: DATA\n\n" (no event line when
//  NAME is NULL) to *OUT; steals DATA. 0, or -1 when out of memory.
int aigw_adapter_append_sse (char **out, size_t *out_len, const char *name, json_t *data);

//  True when TEXT is a non-empty run of letters, digits, '-', '_' and '.':
//  safe to paste into a URL as one path segment or query value.
bool aigw_adapter_url_safe (const char *text);

//  Append one OpenAI-shaped SSE error event, data: {"error": {"message",
//  "type", "code"}} (NULL TYPE or CODE: "upstream_error"). Returns 0 or -1.
int aigw_adapter_append_error_event (char **out, size_t *out_len, const char *type,
                                     const char *code, const char *message);

//  Append one OpenAI-shaped SSE error event and [DONE]. Returns 0 or -1.
int aigw_adapter_append_error (char **out, size_t *out_len, const char *type, const char *message);

void aigw_adapter_test (bool verbose);

#endif
