/*  aigw_bedrock: AWS Bedrock building blocks for the provider actor.
    - SigV4 request signing (HMAC-SHA256 over a canonical request);
    - translation between OpenAI chat and Bedrock Converse / ConverseStream.
    Pure functions and small objects; no I/O. Nothing here logs, and no
    error text ever carries a credential. */
#ifndef AIGW_BEDROCK_H_INCLUDED
#define AIGW_BEDROCK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

//  Size of an x-amz-date value, YYYYMMDDTHHMMSSZ plus its NUL.
#define AIGW_BEDROCK_AMZ_DATE_SIZE 17
//  Size of a hex SHA-256 plus its NUL.
#define AIGW_BEDROCK_SHA256_HEX_SIZE 65
//  Largest Authorization header value we produce, NUL included.
#define AIGW_BEDROCK_AUTHORIZATION_MAX 1024
//  Largest request path we build for a model, NUL included.
#define AIGW_BEDROCK_PATH_MAX 512

//  --------------------------------------------------------------------
//  SigV4

typedef struct {
    const char *access_key_id;      //  AKID; public part of the key pair
    const char *secret_access_key;  //  secret; never logged or echoed
    const char *session_token;      //  STS session token, or NULL
} aigw_bedrock_creds_t;

typedef struct {
    const char *name;   //  header name (any case)
    const char *value;  //  header value, trimmed when signed
} aigw_bedrock_header_t;

typedef struct {
    const char *region;                    //  e.g. "us-east-1"
    const char *service;                   //  e.g. "bedrock"
    const char *method;                    //  "GET", "POST", ...
    const char *host;                      //  Host value: bedrock-runtime.REGION.amazonaws.com
    const char *path;                      //  path as sent on the wire (already URI-encoded once)
    const char *query;                     //  query string without '?', or NULL
    const void *payload;                   //  request body, or NULL
    size_t payload_len;                    //  body length in bytes
    const char *amz_date;                  //  YYYYMMDDTHHMMSSZ (UTC)
    const aigw_bedrock_header_t *headers;  //  extra headers to sign, or NULL
    size_t header_count;                   //  entries in headers
    bool sign_content_sha256;              //  also sign an x-amz-content-sha256 header
} aigw_bedrock_request_t;

typedef struct {
    char authorization[AIGW_BEDROCK_AUTHORIZATION_MAX];  //  Authorization value
    char amz_date[AIGW_BEDROCK_AMZ_DATE_SIZE];           //  X-Amz-Date value
    char content_sha256[AIGW_BEDROCK_SHA256_HEX_SIZE];   //  hex SHA-256 of the payload
    char signature[AIGW_BEDROCK_SHA256_HEX_SIZE];        //  hex signature alone
} aigw_bedrock_signature_t;

//  Sign REQUEST with CREDS per AWS Signature Version 4. Fills OUT; the
//  request must then carry Host, X-Amz-Date, every extra header, and
//  X-Amz-Content-Sha256 / X-Amz-Security-Token as asked. Returns 0, or -1
//  on malformed input (missing field, bad date, too many headers).
int aigw_bedrock_sign (const aigw_bedrock_creds_t *creds, const aigw_bedrock_request_t *request,
                       aigw_bedrock_signature_t *out);

//  Format WHEN (UTC) as an x-amz-date into BUF. Returns 0 or -1.
int aigw_bedrock_amz_date (time_t when, char buf[AIGW_BEDROCK_AMZ_DATE_SIZE]);

//  The Converse (or ConverseStream when STREAM) path for MODEL_ID, the id
//  URI-encoded once as the wire needs it, into BUF. Returns 0, or -1 when
//  it does not fit or the id is empty.
int aigw_bedrock_converse_path (const char *model_id, bool stream, char *buf, size_t size);

//  The CountTokens path for MODEL_ID into BUF, as aigw_bedrock_converse_path.
int aigw_bedrock_count_path (const char *model_id, char *buf, size_t size);

//  --------------------------------------------------------------------
//  Converse translation

//  OpenAI chat request BODY -> Bedrock Converse request JSON, a new string
//  the caller owns (length in *OUT_LEN), or NULL with ERR filled.
char *aigw_bedrock_request_from_openai (const char *body, size_t len, size_t *out_len, char *err,
                                        size_t err_size);

//  OpenAI chat request BODY -> Bedrock CountTokens request JSON
//  ({"input":{"converse":{messages, system, toolConfig}}}), a new string
//  the caller owns, or NULL with ERR filled.
char *aigw_bedrock_count_from_openai (const char *body, size_t len, size_t *out_len, char *err,
                                      size_t err_size);

//  Bedrock Converse response BODY -> OpenAI chat.completion JSON with the
//  given MODEL, ID and CREATED, a new string the caller owns, or NULL with
//  ERR filled.
char *aigw_bedrock_response_to_openai (const char *body, size_t len, const char *model,
                                       const char *id, long created, size_t *out_len, char *err,
                                       size_t err_size);

//  ConverseStream -> OpenAI SSE translator.
typedef struct _aigw_bedrock_stream_t aigw_bedrock_stream_t;

//  New translator naming MODEL, ID and CREATED in every chunk; when
//  INCLUDE_USAGE, a usage chunk precedes [DONE]. NULL when out of memory.
aigw_bedrock_stream_t *aigw_bedrock_stream_new (const char *model, const char *id, long created,
                                                bool include_usage);

//  Destroy the translator; safe on NULL and twice; nulls the caller's pointer.
void aigw_bedrock_stream_destroy (aigw_bedrock_stream_t **self_p);

//  Feed raw event-stream bytes from the HTTP body; complete events are
//  translated into SSE output. Returns 0, or -1 on a framing error, a
//  malformed event or an exception from Bedrock: an OpenAI-style error
//  event and [DONE] are then queued, and ERR says why.
int aigw_bedrock_stream_feed (aigw_bedrock_stream_t *self, const void *data, size_t len, char *err,
                              size_t err_size);

//  Translate one already-unframed event (EVENT_TYPE, JSON PAYLOAD).
//  Returns 0 or -1 as _feed.
int aigw_bedrock_stream_event (aigw_bedrock_stream_t *self, const char *event_type,
                               const char *payload, size_t len, char *err, size_t err_size);

//  SSE text produced so far, as a new string the caller owns (length in
//  *LEN), or NULL when there is none.
char *aigw_bedrock_stream_take (aigw_bedrock_stream_t *self, size_t *len);

//  True once [DONE] has been queued.
bool aigw_bedrock_stream_done (aigw_bedrock_stream_t *self);

//  End of the HTTP body: queue [DONE] if not yet sent. Returns 0 when the
//  stream had ended properly, -1 (with ERR) when it was cut short.
int aigw_bedrock_stream_finish (aigw_bedrock_stream_t *self, char *err, size_t err_size);

void aigw_bedrock_test (bool verbose);

#endif
