/*  aigw_edge: CivetWeb start-up, the route table and the data-plane routes. */
#include "aigw_edge.h"
#include "aigw_cacheform.h"
#include "aigw_health.h"
#include "aigw_hex.h"
#include "aigw_json.h"
#include "aigw_edge_conn.h"
#include "aigw_edge_dashboard.h"
#include "aigw_edge_io.h"
#include "aigw_edge_metrics.h"
#include "aigw_edge_rstore.h"
#include "aigw_envelope.h"
#include "aigw_log.h"
#include "aigw_stage.h"
#include "aigw_stats.h"
#include "aigw_text.h"
#include "aigw_trace.h"

#include <civetweb.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/resource.h>

//  Extra wait past a request's deadline: the provider answers 504 itself at
//  the deadline, so the edge's own 504 is only the last resort.
#define AIGW_EDGE_GRACE_MS 2000
//  Longest client X-Request-ID we echo; longer ones are replaced.
#define AIGW_EDGE_REQUEST_ID_MAX 128
//  Deepest JSON nesting accepted (bounds the parsers' recursion).
#define AIGW_EDGE_JSON_DEPTH_MAX 64
//  How long /readyz waits for the database to answer a ping, seconds.
#define AIGW_EDGE_DB_PING_TIMEOUT_S "2"
//  How long /metrics waits for the broker's figures.
#define AIGW_EDGE_METRICS_WAIT_MS 1000
//  Buffer for response headers.
#define AIGW_EDGE_HEADERS_MAX 2048
//  Accepted connections waiting for a free thread; listen backlog.
#define AIGW_EDGE_CONNECTION_QUEUE "4096"
#define AIGW_EDGE_LISTEN_BACKLOG   "4096"
//  Idle keep-alive connections are closed after this long.
#define AIGW_EDGE_KEEP_ALIVE_MS "15000"
//  Longest request head (request line and headers), bytes: CivetWeb's
//  receive buffer. A longer head is refused (400), as is one with a
//  control byte or one not complete within server.read_timeout_ms.
#define AIGW_EDGE_HEAD_BYTES_MAX 16384
//  Most request headers. CivetWeb keeps the first MG_MAX_HEADERS and drops
//  the rest without a word; a full table may have hidden a Content-Length
//  or Transfer-Encoding, so it is refused (431).
#define AIGW_EDGE_HEADER_COUNT_MAX (MG_MAX_HEADERS - 1)
//  Longest strings taken from outside, bytes; longer ones are refused with
//  400 naming the field. No real one comes near, and the envelope codec
//  refuses strings past AIGW_ENVELOPE_MAX_STRING (a 500 otherwise).
#define AIGW_EDGE_MODEL_MAX      1024  //  "model" of a data-plane request
#define AIGW_EDGE_CREDENTIAL_MAX 8192  //  key or admin token (JWTs run long)
#define AIGW_EDGE_ADMIN_PATH_MAX 1024  //  path below /api/v1/admin/
#define AIGW_EDGE_QUERY_MAX      4096  //  query string, any route
#define AIGW_EDGE_METHOD_MAX     16    //  request method (CivetWeb knows ~15)
//  After a 413 the edge reads and drops up to this much more of the body,
//  for at most this long, before it closes (nginx's lingering close): a
//  client still sending would otherwise get a reset instead of the answer.
#define AIGW_EDGE_LINGER_BYTES (1024 * 1024)
#define AIGW_EDGE_LINGER_MS    2000
//  Bytes per read while lingering (handler stacks are 100 KiB).
#define AIGW_EDGE_LINGER_CHUNK 2048
//  Room for a request's JSON log line's members.
#define AIGW_EDGE_LOG_FIELDS_MAX 1536
//  Longest Content-Type copied from a pipeline answer into the head.
#define AIGW_EDGE_CONTENT_TYPE_MAX 128
//  Allow headers of the routes' 405 answers.
#define AIGW_EDGE_ALLOW_POST "POST"
#define AIGW_EDGE_ALLOW_GET  "GET, HEAD"

struct _aigw_edge_t {
    const aigw_config_t *config;  //  settings (shared, read-only)
    struct mg_context *ctx;       //  CivetWeb server
    aigw_edge_io_t *io;           //  the first I/O thread: broker questions, readiness
    aigw_edge_io_t *ios[AIGW_CONFIG_PIPELINES_MAX];  //  every I/O thread (pipeline)
    int io_count;                                    //  entries in ios
    atomic_uint next_io;                             //  the pipeline the next request goes to
    aigw_edge_metrics_t *metrics;                    //  request counts and latency
    aigw_trace_t *trace;                             //  span export, or NULL (tracing off)
    aigw_edge_dashboard_t *dashboard;                //  /dashboard and its sessions
    int port;                                        //  port bound
    atomic_bool started;                             //  mg_start returned: every thread is up
    bool cache_here;                                 //  the cache stage runs in this process
};

//  What one HTTP request carries through its handler.
typedef struct {
    struct mg_connection *conn;                  //  the client connection
    aigw_edge_t *edge;                           //  the edge
    char id[AIGW_EDGE_REQUEST_ID_MAX + 1];       //  X-Request-ID
    int route;                                   //  aigw_edge_route_t, for metrics
    int status;                                  //  status sent, for metrics
    bool headers_sent;                           //  whether the status line is out
    bool chunked;                                //  response uses chunked encoding
    bool head;                                   //  HEAD request: GET's status and headers, no body
    bool close;                                  //  close the connection after this answer
    const char *allow;                           //  Allow header of a 405 answer (static), or NULL
    aigw_envelope_t *record;                     //  the request's usage record, or NULL
    aigw_edge_io_t *io;                          //  the I/O thread the request went to
    bool keep;                                   //  record goes to the usage actor
    bool settle_only;                            //  record only carries the settle (models)
    bool traced;                                 //  record goes to the tracer
    char traceparent[AIGW_TRACEPARENT_LEN + 1];  //  the pipeline's, or ""
    char client_span[17];                        //  the client's span id, or ""
    int64_t started_us;                          //  when the handler took it (zclock_usecs)
    int64_t wall_us;                             //  the same, Unix us
    int64_t first_us;                            //  taken to the answer's first byte, us; -1 none
    size_t request_len;                          //  bytes of the request body read
    char *answer;                //  what the client got, kept for a tenant that stores content
    size_t answer_len;           //  bytes in answer, at most AIGW_CONTENT_MAX
    bool answer_cut;             //  the client got more than answer holds
    aigw_edge_rstore_t *rstore;  //  a /v1/responses answer to store, or NULL
    long events;                 //  SSE events relayed: the next Responses sequence_number
    int event_match;             //  chars of "event:" matched from a line start; -1 mid-line
} s_http_t;

//  Keep LEN bytes at DATA, part of the answer the client gets, in HTTP's
//  content: only for a tenant that stores prompts and answers (the first
//  reply said so), and only up to AIGW_CONTENT_MAX.
static void
s_content_add (s_http_t *http, const void *data, size_t len)
{
    if (!http->record || !http->record->store_content || !len)
        return;
    size_t room = AIGW_CONTENT_MAX - http->answer_len;
    if (len > room)
        http->answer_cut = true;
    size_t take = len < room ? len : room;
    if (!take)
        return;
    if (!http->answer && !(http->answer = malloc (AIGW_CONTENT_MAX)))
        return;
    memcpy (http->answer + http->answer_len, data, take);
    http->answer_len += take;
}

static const char *
s_reason (int status)
{
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 409: return "Conflict";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

//  Use the client's X-Request-ID when it is short and printable, else make one.
static void
s_request_id (s_http_t *http)
{
    const char *given = mg_get_header (http->conn, "X-Request-ID");
    if (given && *given && strlen (given) <= AIGW_EDGE_REQUEST_ID_MAX) {
        bool clean = true;
        for (const char *c = given; *c && clean; c++)
            clean = *c > 32 && *c < 127 && *c != '"' && *c != '\\';
        if (clean) {
            snprintf (http->id, sizeof http->id, "%s", given);
            return;
        }
    }
    unsigned char random[12];
    aigw_hex_random_bytes (sizeof random, random);
    memcpy (http->id, "req_", 4);
    aigw_hex_encode (random, sizeof random, http->id + 4);
}

//  Start HTTP for one request on CONN: its request id, whether it is a
//  HEAD, and ROUTE (aigw_edge_route_t) for metrics. EDGE is borrowed.
static void
s_http_init (s_http_t *http, struct mg_connection *conn, aigw_edge_t *edge, int route)
{
    *http = (s_http_t){.conn = conn, .edge = edge, .route = route, .first_us = -1};
    const struct mg_request_info *ri = mg_get_request_info (conn);
    http->head = ri && ri->request_method && streq (ri->request_method, "HEAD");
    s_request_id (http);
}

//  Append printf output to HEAD (SIZE bytes, *USED of them filled), cutting
//  it short rather than overrunning; *USED never passes SIZE - 1.
static void
s_append (char *head, size_t size, size_t *used, const char *format, ...)
{
    if (*used >= size - 1)
        return;
    va_list args;
    va_start (args, format);
    int n = vsnprintf (head + *used, size - *used, format, args);
    va_end (args);
    if (n > 0)
        *used = *used + (size_t) n < size - 1 ? *used + (size_t) n : size - 1;
}

//  Append at most MAX bytes of TEXT to HEAD, as s_append would: the
//  headers every answer has are put together without printf's parsing
//  (a tenth of the handler's work on a plain request).
static void
s_put (char *head, size_t size, size_t *used, const char *text, size_t max)
{
    size_t room = size - 1 - (*used < size - 1 ? *used : size - 1);
    size_t len = strnlen (text, max < room ? max : room);
    memcpy (head + *used, text, len);
    *used += len;
    head[*used] = '\0';
}

//  Append VALUE in decimal.
static void
s_put_int (char *head, size_t size, size_t *used, long long value)
{
    char digits[24];
    char *at = digits + sizeof digits;
    unsigned long long magnitude
        = value < 0 ? 0ULL - (unsigned long long) value : (unsigned long long) value;
    *--at = '\0';
    do
        *--at = (char) ('0' + magnitude % 10);
    while ((magnitude /= 10) > 0);
    if (value < 0)
        *--at = '-';
    s_put (head, size, used, at, sizeof digits);
}

//  Append NAME, at most MAX bytes of VALUE, and CRLF: a header line.
static void
s_put_header (char *head, size_t size, size_t *used, const char *name, const char *value,
              size_t max)
{
    s_put (head, size, used, name, SIZE_MAX);
    s_put (head, size, used, value, max);
    s_put (head, size, used, "\r\n", 2);
}

//  Append NAME, VALUE and CRLF: a header line with a number.
static void
s_put_header_int (char *head, size_t size, size_t *used, const char *name, long long value)
{
    s_put (head, size, used, name, SIZE_MAX);
    s_put_int (head, size, used, value);
    s_put (head, size, used, "\r\n", 2);
}

//  True when ALLOW is a short list of method names ("GET, HEAD"): nothing
//  a header could be split with.
static bool
s_allow_valid (const char *allow)
{
    size_t len = strspn (allow, "ABCDEFGHIJKLMNOPQRSTUVWXYZ, ");
    return len > 0 && len < 64 && allow[len] == 0;
}

//  A reset in SECONDS from now as OpenAI writes it (Go's durations): 45s,
//  6m0s, 1h2m3s; 0s for a past one.
static void
s_duration (char *out, size_t size, int64_t seconds)
{
    long long s = seconds > 0 ? (long long) seconds : 0;
    if (s < 60)
        snprintf (out, size, "%llds", s);
    else if (s < 3600)
        snprintf (out, size, "%lldm%llds", s / 60, s % 60);
    else
        snprintf (out, size, "%lldh%lldm%llds", s / 3600, s / 60 % 60, s % 60);
}

//  Append ENV's rate-limit headers to HEAD (schemas/limits.md 5), NOW in
//  Unix seconds: OpenAI's x-ratelimit-*-requests from the request-counting
//  limit (rl_*: rpm, rpd or concurrency) and -tokens from the tpm limit
//  (rl_tokens_*, or rl_* when its kind is tpm), and X-RateLimit-* from the
//  one of the two with the least room left, as a fraction (ties: requests).
static void
s_ratelimit_headers (char *head, size_t size, size_t *n, const aigw_envelope_t *env, int64_t now)
{
    const char *kind = env->rl_kind ? env->rl_kind : "rpm";
    bool tpm = streq (kind, "tpm");
    bool requests = env->rl_limit >= 0 && !tpm && !streq (kind, "budget");
    int64_t limit = env->rl_tokens_limit, remaining = env->rl_tokens_remaining,
            reset = env->rl_tokens_reset;
    if (limit < 0 && tpm && env->rl_limit >= 0)
        limit = env->rl_limit, remaining = env->rl_remaining, reset = env->rl_reset;
    bool tokens = limit >= 0;
    //  Room left as a fraction; a limit of 0 has none.
    double room_requests = env->rl_limit > 0 ? (double) env->rl_remaining / env->rl_limit : 0;
    double room_tokens = limit > 0 ? (double) remaining / limit : 0;
    bool by_tokens = tokens && (!requests || room_tokens < room_requests);
    if (by_tokens || env->rl_limit >= 0) {
        s_put_header_int (head, size, n, "X-RateLimit-Limit: ", by_tokens ? limit : env->rl_limit);
        s_put_header_int (head, size, n,
                          "X-RateLimit-Remaining: ", by_tokens ? remaining : env->rl_remaining);
        s_put_header_int (head, size, n, "X-RateLimit-Reset: ", by_tokens ? reset : env->rl_reset);
    }
    char duration[32];
    if (requests) {
        s_duration (duration, sizeof duration, env->rl_reset - now);
        s_put_header_int (head, size, n, "x-ratelimit-limit-requests: ", env->rl_limit);
        s_put_header_int (head, size, n, "x-ratelimit-remaining-requests: ", env->rl_remaining);
        s_put_header (head, size, n, "x-ratelimit-reset-requests: ", duration, sizeof duration);
    }
    if (tokens) {
        s_duration (duration, sizeof duration, reset - now);
        s_put_header_int (head, size, n, "x-ratelimit-limit-tokens: ", limit);
        s_put_header_int (head, size, n, "x-ratelimit-remaining-tokens: ", remaining);
        s_put_header (head, size, n, "x-ratelimit-reset-tokens: ", duration, sizeof duration);
    }
}

//  True when TEXT may go in a header value as it is: printable ASCII.
static bool
s_header_safe (const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            return false;
    return true;
}

//  Write the status line and headers. ENV (may be NULL) adds the pipeline's
//  headers. LENGTH < 0 means a chunked body. On a HEAD the headers are the
//  same (Content-Length of the body a GET would get); the body writers
//  then send nothing.
static void
s_write_head (s_http_t *http, int status, const char *content_type, const aigw_envelope_t *env,
              long long length)
{
    char head[AIGW_EDGE_HEADERS_MAX];
    size_t n = 0;
    s_put (head, sizeof head, &n, "HTTP/1.1 ", SIZE_MAX);
    s_put_int (head, sizeof head, &n, status);
    s_put (head, sizeof head, &n, " ", 1);
    s_put (head, sizeof head, &n, s_reason (status), SIZE_MAX);
    s_put (head, sizeof head, &n, "\r\n", 2);
    s_put_header (head, sizeof head, &n, "Content-Type: ", content_type,
                  AIGW_EDGE_CONTENT_TYPE_MAX);
    s_put_header (head, sizeof head, &n, "X-Request-ID: ", http->id, SIZE_MAX);
    if (env && (env->rl_limit >= 0 || env->rl_tokens_limit >= 0))
        s_ratelimit_headers (head, sizeof head, &n, env, aigw_now_ms () / 1000);
    if (env && env->cache_status)
        s_put_header (head, sizeof head, &n, "X-Cache: ", env->cache_status, 16);
    //  A semantic hit says how close the prompt it answers was.
    if (env && env->cache_status && streq (env->cache_status, "SEMANTIC-HIT") && env->cache_control
        && strncmp (env->cache_control, "similarity=", 11) == 0
        && s_header_safe (env->cache_control))
        s_append (head, sizeof head, &n, "X-AIGW-Cache-Similarity: %.8s\r\n",
                  env->cache_control + 11);
    if (env && env->provider)
        s_put_header (head, sizeof head, &n, "X-AIGW-Provider: ", env->provider, 64);
    if (env && env->token_count)
        s_append (head, sizeof head, &n, "X-AIGW-Token-Count: %.16s\r\n", env->token_count);
    if (env && env->retry_after > 0)
        s_append (head, sizeof head, &n, "Retry-After: %d\r\n", env->retry_after);
    //  What the guardrails did, by name (a flag is only this); names come
    //  from policies, so anything but plain printable text is left out.
    if (env && env->verdict && !streq (env->verdict, "pass") && s_header_safe (env->verdict))
        s_append (head, sizeof head, &n, "X-AIGW-Guardrail: %.1100s\r\n", env->verdict);
    //  A stage's own 405 (admin) says which methods its path takes.
    const char *allow = env && env->allow && s_allow_valid (env->allow) ? env->allow : http->allow;
    if (status == 405 && allow)
        s_append (head, sizeof head, &n, "Allow: %s\r\n", allow);
    if (http->close) {
        //  RFC 9112 9.6: say so, then CivetWeb closes after this answer.
        s_append (head, sizeof head, &n, "Connection: close\r\n");
        mg_disable_connection_keep_alive (http->conn);
    }
    if (status == 204 || status == 304)
        s_append (head, sizeof head, &n, "\r\n");  //  RFC 9110 8.6: no Content-Length
    else if (length >= 0) {
        s_put_header_int (head, sizeof head, &n, "Content-Length: ", length);
        s_put (head, sizeof head, &n, "\r\n", 2);
    }
    else
        s_append (head, sizeof head, &n,
                  "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
    mg_write (http->conn, head, n);
    if (http->record) {
        http->first_us = zclock_usecs () - http->started_us;
        http->record->first_ms = http->first_us / 1000;
    }
    http->headers_sent = true;
    http->chunked = length < 0;
    http->status = status;
}

//  Write LEN bytes of body; nothing on a HEAD (RFC 9110 9.3.2). Returns
//  mg_write's result, or LEN for a HEAD.
static int
s_write_body (s_http_t *http, const void *data, size_t len)
{
    if (http->head || len == 0)
        return (int) len;
    return mg_write (http->conn, data, len);
}

//  The SPEC's error body, as a new string the caller frees.
static char *
s_error_body (const char *id, const char *type, const char *code, const char *param,
              const char *message)
{
    json_t *root
        = json_pack ("{s:{s:s,s:s,s:s?,s:s?,s:s}}", "error", "message", message ? message : "",
                     "type", type, "code", code, "param", param, "request_id", id);
    char *body = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return body;
}

//  Answer with an error (headers not yet sent). ENV may add headers.
static void
s_send_error (s_http_t *http, int status, const char *type, const char *code, const char *param,
              const char *message, const aigw_envelope_t *env)
{
    char *body = s_error_body (http->id, type, code, param, message);
    size_t len = body ? strlen (body) : 0;
    if (http->record) {
        aigw_envelope_set (&http->record->err_type, type);
        aigw_envelope_set (&http->record->err_code, code);
    }
    s_write_head (http, status, "application/json", env, (long long) len);
    s_write_body (http, body, len);
    s_content_add (http, body, len);
    free (body);
}

//  Error type for a broker-made error status.
static void
s_send_broker_error (s_http_t *http, int status, const char *text)
{
    if (status == 504)
        s_send_error (http, 504, "timeout_error", "deadline_exceeded", NULL, text, NULL);
    else
        s_send_error (http, status, "service_unavailable", "stage_unavailable", NULL, text, NULL);
}

//  Count the events in LEN relayed bytes of a stream (the lines that start
//  with "event:"), wherever the chunks cut them.
static void
s_count_events (s_http_t *http, const char *data, size_t len)
{
    static const char field[] = "event:";
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n')
            http->event_match = 0;
        else if (http->event_match >= 0 && data[i] == field[http->event_match]) {
            if (++http->event_match == (int) sizeof field - 1) {
                http->events++;
                http->event_match = -1;
            }
        }
        else
            http->event_match = -1;
    }
}

//  Mid-stream failure: one SSE error event in the client's format (a
//  chat error, Anthropic's error event, a Responses error event numbered
//  after those relayed), then the end of the stream.
static void
s_stream_error (s_http_t *http, const char *type, const char *code, const char *message)
{
    if (http->head)
        return;  //  a HEAD's answer has no body, so no event
    char *body = NULL;
    if (http->route == AIGW_ROUTE_MESSAGES) {
        //  Anthropic's own types: timeout_error is one, the others are api_error.
        json_t *root
            = json_pack ("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                         streq (type, "timeout_error") ? type : "api_error", "message", message);
        body = root ? json_dumps (root, JSON_COMPACT) : NULL;
        json_decref (root);
    }
    else if (http->route == AIGW_ROUTE_RESPONSES) {
        json_t *root
            = json_pack ("{s:s,s:I,s:s,s:s,s:n}", "type", "error", "sequence_number",
                         (json_int_t) http->events, "code", code, "message", message, "param");
        body = root ? json_dumps (root, JSON_COMPACT) : NULL;
        json_decref (root);
    }
    else
        body = s_error_body (http->id, type, code, NULL, message);
    bool named = http->route == AIGW_ROUTE_MESSAGES || http->route == AIGW_ROUTE_RESPONSES;
    char *event
        = zsys_sprintf ("%sdata: %s\n\n", named ? "event: error\n" : "", body ? body : "{}");
    mg_send_chunk (http->conn, event, strlen (event));
    s_content_add (http, event, strlen (event));
    mg_send_chunk (http->conn, "", 0);
    zstr_free (&event);
    free (body);
}

//  Refuse (400, naming FIELD) a string VALUE from outside that is longer
//  than MAX bytes. Returns 0 when it fits, -1 after answering.
static int
s_check_length (s_http_t *http, const char *field, const char *value, size_t max)
{
    size_t len = value ? strlen (value) : 0;
    if (len <= max)
        return 0;
    char message[192];
    snprintf (message, sizeof message,
              "Invalid '%s': string too long. Expected a string with maximum length %zu, "
              "but got a string with length %zu.",
              field, max, len);
    s_send_error (http, 400, "invalid_request_error", "string_above_max_length", field, message,
                  NULL);
    return -1;
}

//  Answer 413: the body is over the configured cap. The connection closes
//  after the answer (CivetWeb would otherwise read and drop all the rest
//  first, however long), once a bounded linger has let a client that is
//  still sending read the answer. Each read there waits at most
//  server.read_timeout_ms, as any body read does.
static void
s_send_too_large (s_http_t *http)
{
    http->close = true;
    s_send_error (http, 413, "invalid_request_error", "request_too_large", NULL,
                  "The request body is over the configured limit.", NULL);
    char sink[AIGW_EDGE_LINGER_CHUNK];
    size_t dropped = 0;
    int64_t deadline = zclock_mono () + AIGW_EDGE_LINGER_MS;
    while (dropped < AIGW_EDGE_LINGER_BYTES && zclock_mono () < deadline) {
        int n = mg_read (http->conn, sink, sizeof sink);
        if (n <= 0)
            break;  //  all of it, the client left, or it went quiet
        dropped += (size_t) n;
    }
}

//  Whether the request announces a body (Content-Length > 0, or chunked).
static bool
s_has_body (struct mg_connection *conn)
{
    return mg_get_request_info (conn)->content_length > 0
           || mg_get_header (conn, "Transfer-Encoding") != NULL;
}

//  Read the whole body, up to the configured cap. Returns a buffer the
//  caller frees (*LEN bytes), or NULL after answering: 413 past the cap (at
//  once when Content-Length says so), 400 for a body that ends early or
//  malformed chunked framing, 408 when the client sends nothing more for
//  server.read_timeout_ms. After any of those the connection closes: where
//  the next request would start is unknown.
//  CivetWeb 1.15 decodes chunked bodies inside mg_read and only says -1
//  when the framing is wrong; it refuses chunk extensions ("1a;x=y"), and
//  the size a chunk announces is not visible, so a chunked body over the
//  cap is refused once cap + 1 bytes of it have arrived.
static char *
s_read_body (s_http_t *http, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info (http->conn);
    size_t cap = http->edge->config->max_body_bytes;
    bool chunked = mg_get_header (http->conn, "Transfer-Encoding") != NULL;
    //  Without Content-Length or chunked framing there is no body (RFC 9112 6.3).
    long long expected = chunked ? -1 : ri->content_length > 0 ? ri->content_length : 0;
    if (expected > (long long) cap) {
        s_send_too_large (http);
        return NULL;
    }
    size_t size = expected >= 0 ? (size_t) expected + 1 : 4096;
    if (size > cap + 1)
        size = cap + 1;
    char *body = malloc (size);
    size_t used = 0;
    while (body) {
        if (used == size) {
            if (size == cap + 1) {
                free (body);
                s_send_too_large (http);
                return NULL;
            }
            size = size * 2 > cap + 1 ? cap + 1 : size * 2;
            char *bigger = realloc (body, size);
            if (!bigger)
                break;
            body = bigger;
        }
        int64_t started = zclock_mono ();
        int n = mg_read (http->conn, body + used, size - used);
        if (n > 0) {
            used += (size_t) n;
            continue;
        }
        if (n == 0 && (chunked || used == (size_t) expected)) {
            *len = used;
            return body;  //  the whole body
        }
        //  Cut short. mg_read gives 0 when a Content-Length body stalls
        //  past the read timeout, and -1 for a closed connection, a chunked
        //  body that stalls, or malformed chunked framing.
        free (body);
        http->close = true;
        int timeout_ms = http->edge->config->read_timeout_ms;
        if (n == 0 || zclock_mono () - started + 1 >= timeout_ms) {
            char message[128];
            snprintf (message, sizeof message,
                      "The client sent no more of the request body for %d ms.", timeout_ms);
            s_send_error (http, 408, "invalid_request_error", "request_timeout", NULL, message,
                          NULL);
        }
        else if (chunked)
            s_send_error (http, 400, "invalid_request_error", "invalid_chunked_body", NULL,
                          "The chunked request body is malformed or ends early: each chunk "
                          "is a hexadecimal size, CRLF, that many bytes and CRLF, and the "
                          "last chunk has size 0. Chunk extensions are not supported.",
                          NULL);
        else
            s_send_error (http, 400, "invalid_request_error", "incomplete_body", NULL,
                          "The request body ended before its Content-Length.", NULL);
        return NULL;
    }
    free (body);
    http->close = true;
    s_send_error (http, 500, "server_error", "out_of_memory", NULL,
                  "No memory for the request body.", NULL);
    return NULL;
}

//  Check the request JSON; fills MODEL and STREAM, and ROOT (when not
//  NULL) with the body parsed, the caller's. Answers 400 and returns -1
//  when it is not acceptable.
static int
s_validate (s_http_t *http, int kind, const char *body, size_t len, char **model, bool *stream,
            json_t **root_p)
{
    if (!aigw_json_depth_ok (body, len, AIGW_EDGE_JSON_DEPTH_MAX)) {
        s_send_error (http, 400, "invalid_request_error", "invalid_json", NULL,
                      "The request body nests too deeply.", NULL);
        return -1;
    }
    json_error_t error;
    json_t *root = json_loadb (body, len, 0, &error);
    if (!json_is_object (root)) {
        char message[256];
        if (root)
            snprintf (message, sizeof message, "The request body must be a JSON object.");
        else
            snprintf (message, sizeof message,
                      "The request body is not valid JSON: %.120s (line %d, column %d).",
                      error.text, error.line, error.column);
        json_decref (root);
        s_send_error (http, 400, "invalid_request_error", "invalid_json", NULL, message, NULL);
        return -1;
    }
    const char *missing = NULL, *invalid = NULL;
    json_t *value = json_object_get (root, "model");
    if (!value)
        missing = "model";
    else if (!json_is_string (value) || json_string_length (value) == 0)
        invalid = "model";
    else if (kind == AIGW_KIND_CHAT || kind == AIGW_KIND_MESSAGES
             || kind == AIGW_KIND_COUNT_TOKENS) {
        json_t *messages = json_object_get (root, "messages");
        if (!messages)
            missing = "messages";
        else if (!json_is_array (messages) || json_array_size (messages) == 0)
            invalid = "messages";
    }
    else if (kind == AIGW_KIND_EMBEDDINGS || kind == AIGW_KIND_RESPONSES) {
        json_t *input = json_object_get (root, "input");
        if (!input)
            missing = "input";
        else if (!json_is_string (input) && !json_is_array (input))
            invalid = "input";
    }
    json_t *flag = json_object_get (root, "stream");
    if (!missing && !invalid && flag && !json_is_boolean (flag) && !json_is_null (flag))
        invalid = "stream";
    if (missing || invalid) {
        char message[128];
        snprintf (message, sizeof message,
                  missing ? "Missing required field '%s'." : "Invalid value for field '%s'.",
                  missing ? missing : invalid);
        json_decref (root);
        s_send_error (http, 400, "invalid_request_error",
                      missing ? "missing_field" : "invalid_field", missing ? missing : invalid,
                      message, NULL);
        return -1;
    }
    *stream
        = json_is_true (flag)
          && (kind == AIGW_KIND_CHAT || kind == AIGW_KIND_MESSAGES || kind == AIGW_KIND_RESPONSES);
    int rc = s_check_length (http, "model", json_string_value (value), AIGW_EDGE_MODEL_MAX);
    if (rc == 0)
        *model = strdup (json_string_value (value));
    if (rc == 0 && root_p)
        *root_p = root;
    else
        json_decref (root);
    return rc;
}

//  The credential from Authorization: Bearer, or x-api-key (borrowed from
//  CivetWeb, valid during the request); NULL when neither is there.
static const char *
s_credential (struct mg_connection *conn)
{
    const char *auth = mg_get_header (conn, "Authorization");
    if (auth && strncasecmp (auth, "Bearer ", 7) == 0) {
        auth += 7;
        while (*auth == ' ')
            auth++;
        return auth;
    }
    return mg_get_header (conn, "x-api-key");
}

//  Refuse (400) a credential over AIGW_EDGE_CREDENTIAL_MAX, naming the
//  header it came in. Returns 0 when it fits, -1 after answering.
static int
s_check_credential (s_http_t *http)
{
    const char *auth = mg_get_header (http->conn, "Authorization");
    bool bearer = auth && strncasecmp (auth, "Bearer ", 7) == 0;
    return s_check_length (http, bearer ? "Authorization" : "x-api-key", s_credential (http->conn),
                           AIGW_EDGE_CREDENTIAL_MAX);
}

//  Keep in RECORD what ENV, one message of the answer, tells about the
//  request: who asked (auth's fields), who answered, tokens and cost; and,
//  for a tenant that stores content, the copy of the request body auth
//  made, which RECORD takes from ENV.
static void
s_usage_note (aigw_envelope_t *record, aigw_envelope_t *env)
{
    if (env->store_content)
        record->store_content = true;
    if (env->content_request && !record->content_request) {
        record->content_request = env->content_request;
        env->content_request = NULL;
    }
    struct {
        char **to;
        const char *from;
    } fields[] = {{&record->key_id, env->key_id},
                  {&record->key_name, env->key_name},
                  {&record->tenant, env->tenant},
                  {&record->tenant_id, env->tenant_id},
                  {&record->principal_type, env->principal_type},
                  {&record->provider, env->provider},
                  {&record->provider_kind, env->provider_kind},
                  {&record->cache_status, env->cache_status},
                  {&record->reservation, env->reservation}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].from && !*fields[i].to)
            aigw_envelope_set (fields[i].to, fields[i].from);
    if (env->tokens_in)
        record->tokens_in = env->tokens_in;
    if (env->tokens_out)
        record->tokens_out = env->tokens_out;
    if (env->tokens_cached)
        record->tokens_cached = env->tokens_cached;
    if (env->cost_nusd)
        record->cost_nusd = env->cost_nusd;
    if (env->attempts)
        record->attempts = env->attempts;
    if (env->err_type && !record->err_type) {
        aigw_envelope_set (&record->err_type, env->err_type);
        aigw_envelope_set (&record->err_code, env->err_code);
    }
    //  The stages it went through and their times, its attempts upstream
    //  and the guardrail's verdict: for spans, and per-stage times.
    if (!record->route_len && env->route_len) {
        for (int i = 0; i < env->route_len; i++)
            aigw_envelope_set (&record->route[i], env->route[i]);
        record->route_len = env->route_len;
    }
    for (int i = 0; i < 2 * AIGW_ROUTE_MAX; i++)
        if (env->stage_us[i])
            record->stage_us[i] = env->stage_us[i];
    if (env->upstream)
        aigw_envelope_set (&record->upstream, env->upstream);
    //  The latest: the answer's check adds to it as the stream goes.
    if (env->verdict)
        aigw_envelope_set (&record->verdict, env->verdict);
}

//  A new record id: a random (version 4) UUID.
static void
s_usage_uuid (char *out, size_t size)
{
    uint8_t b[16];
    aigw_hex_random_bytes (sizeof b, b);
    b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
    snprintf (out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
              b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
              b[13], b[14], b[15]);
}

//  Start HTTP's usage record: a data-plane request of KIND. Every one has
//  a record (the metrics read it); it is kept when usage is on and there
//  is a database to keep it in.
static void
s_usage_start (s_http_t *http, int kind)
{
    const aigw_config_t *config = http->edge->config;
    if (kind != AIGW_KIND_CHAT && kind != AIGW_KIND_MESSAGES && kind != AIGW_KIND_EMBEDDINGS
        && kind != AIGW_KIND_RESPONSES)
        return;
    //  The trace context travels whether or not this process exports:
    //  with tracing off the client's own goes upstream unchanged.
    const char *client = mg_get_header (http->conn, "traceparent");
    http->traced
        = aigw_trace_begin (http->edge->trace, client, http->traceparent, http->client_span);
    if (!http->edge->trace && !aigw_text_traceparent (client, NULL, NULL, NULL))
        http->traceparent[0] = 0;
    else if (!http->edge->trace)
        snprintf (http->traceparent, sizeof http->traceparent, "%s", client);
    //  Every answer feeds the metrics; the usage actor keeps records only
    //  with a database.
    http->keep = config->usage_enabled && config->database_url && *config->database_url;
    aigw_envelope_t *record = aigw_envelope_new ();
    char uuid[40];
    if (http->keep) {
        s_usage_uuid (uuid, sizeof uuid);
        aigw_envelope_set (&record->record_id, uuid);
    }
    aigw_envelope_set (&record->id, http->id);
    record->kind = (uint8_t) kind;
    http->wall_us = aigw_now_us ();
    record->started_ms = http->wall_us / 1000;
    if (*http->traceparent)
        aigw_envelope_set (&record->traceparent, http->traceparent);
    http->record = record;
}

//  Length of the valid UTF-8 character at P (LEFT bytes on), or 0 for a
//  byte that starts none (a NUL counts as none: jsonb refuses it).
static size_t
s_utf8_char (const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : (c & 0xf0) == 0xe0 ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n || n > left)
        return 0;
    uint32_t cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

//  LEN bytes at DATA as a JSON value for a usage record's content: parsed
//  JSON when AS_JSON and they parse, else a string, each byte that is not
//  valid UTF-8 (a character cut at the cap) made '?'. New reference.
static json_t *
s_content_value (const char *data, size_t len, bool as_json)
{
    if (!data)
        return json_null ();
    if (as_json) {
        json_t *value = json_loadb (data, len, JSON_DECODE_ANY, NULL);
        if (value)
            return value;
    }
    char *text = malloc (len + 1);
    if (!text)
        return json_null ();
    for (size_t at = 0; at < len;) {
        size_t n = s_utf8_char ((const unsigned char *) data + at, len - at);
        if (n)
            memcpy (text + at, data + at, n);
        else
            text[at] = '?', n = 1;
        at += n;
    }
    json_t *value = json_stringn (text, len);
    free (text);
    return value ? value : json_null ();
}

//  Put HTTP's content document into RECORD's body, for a tenant that
//  stores prompts and answers: {"request", "response", "truncated"}. The
//  request is auth's copy (whole when as long as the body read); a
//  stream's response is the text of its events.
static void
s_content_finish (s_http_t *http, aigw_envelope_t *record)
{
    const char *request = record->content_request;
    size_t request_len = request ? strlen (request) : 0;
    bool request_cut = request && request_len < http->request_len;
    json_t *doc = json_object ();
    json_object_set_new (doc, "request", s_content_value (request, request_len, !request_cut));
    json_object_set_new (
        doc, "response",
        s_content_value (http->answer, http->answer_len, !record->stream && !http->answer_cut));
    json_object_set_new (doc, "truncated", json_boolean (request_cut || http->answer_cut));
    char *text = json_dumps (doc, JSON_COMPACT);
    json_decref (doc);
    if (text)
        aigw_envelope_take_body (record, text, strlen (text));
    aigw_envelope_set (&record->content_request, NULL);
}

//  One JSON log line for the answered request (log_format: json).
static void
s_log_request (s_http_t *http, const aigw_envelope_t *r, const char *method, const char *path)
{
    char fields[AIGW_EDGE_LOG_FIELDS_MAX];
    size_t n = 0;
    const struct {
        const char *key;
        const char *value;
    } strings[]
        = {{"request_id", r->id},       {"method", method},          {"path", path},
           {"model", r->model},         {"deployment", r->provider}, {"provider", r->provider_kind},
           {"tenant", r->tenant},       {"key_name", r->key_name},   {"cache", r->cache_status},
           {"error_type", r->err_type}, {"error_code", r->err_code}, {"guardrail", r->verdict}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (!strings[i].value)
            continue;
        n += (size_t) snprintf (fields + n, sizeof fields - n, "%s\"%s\":", n ? "," : "",
                                strings[i].key);
        if (n >= sizeof fields || aigw_log_escape (fields, sizeof fields, &n, strings[i].value))
            return;
    }
    char trace_id[33] = "";
    aigw_text_traceparent (r->traceparent, trace_id, NULL, NULL);
    n += (size_t) snprintf (fields + n, sizeof fields - n,
                            ",\"status\":%d,\"stream\":%s,\"latency_ms\":%lld,\"ttft_ms\":%lld,"
                            "\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                            "\"cost_usd\":%.9f,\"attempts\":%u%s%s%s",
                            r->status, r->stream ? "true" : "false", (long long) r->latency_ms,
                            (long long) r->first_ms, (long long) r->tokens_in,
                            (long long) r->tokens_out, (double) r->cost_nusd / 1e9, r->attempts,
                            *trace_id ? ",\"trace_id\":\"" : "", trace_id, *trace_id ? "\"" : "");
    if (n >= sizeof fields)
        return;
    aigw_log_event (AIGW_LOG_INFO, "request", fields);
}

//  Count HTTP's finished RECORD in the per-model metrics. The model asked
//  for is a label only once auth knew the caller and a model was found:
//  anyone could otherwise fill the label's values with made-up names.
static void
s_metrics_answer (s_http_t *http, const aigw_envelope_t *record)
{
    bool known
        = record->key_id && !(record->err_code && streq (record->err_code, "model_not_found"));
    aigw_edge_metrics_answer_t answer
        = {.route = http->route,
           .status = record->status,
           .stream = record->stream,
           .model = known ? record->model : NULL,
           .deployment = record->provider,
           .system = record->provider_kind,
           .tenant = record->tenant,
           .error_type = record->err_type,
           .error_code = record->err_code,
           .cache = record->cache_status,
           .tokens_in = record->tokens_in,
           .tokens_out = record->tokens_out,
           .cost_nusd = record->cost_nusd,
           .latency_us = zclock_usecs () - http->started_us,
           .first_us = http->first_us >= 0 ? http->first_us : record->first_ms * 1000,
           .verdict = record->verdict};
    aigw_edge_metrics_answer (http->edge->metrics, &answer);
}

//  The answer is out (or the client left): finish HTTP's usage record and
//  hand it to IO, which sends it to the usage actor when it is kept, and
//  the rate-limit owner its settle when the request reserved (limits.md
//  3). The client's answer never waits for either.
static void
s_usage_send (s_http_t *http, aigw_edge_io_t *io, const char *model, bool stream)
{
    aigw_envelope_t *record = http->record;
    http->record = NULL;
    if (!record) {
        free (http->answer);
        http->answer = NULL;
        return;
    }
    record->status = http->status ? http->status : 400;
    if (http->settle_only) {
        free (http->answer);
        http->answer = NULL;
        aigw_envelope_set (&record->model, model);
        aigw_edge_io_usage (io, &record, false);
        return;
    }
    bool settle = record->reservation != NULL;
    int64_t record_us = zclock_usecs () - http->started_us;
    record->latency_ms = record_us / 1000;
    record->status = http->status ? http->status : 400;
    record->stream = stream;
    aigw_envelope_set (&record->model, model);
    if (record->store_content)
        s_content_finish (http, record);
    free (http->answer);
    http->answer = NULL;
    if (record->first_ms < 0)
        record->first_ms = record->latency_ms;
    s_metrics_answer (http, record);
    const struct mg_request_info *ri = mg_get_request_info (http->conn);
    if (aigw_log_json ())
        s_log_request (http, record, ri->request_method, ri->local_uri);
    if (http->traced) {
        aigw_envelope_t *copy = http->keep || settle ? aigw_envelope_dup (record) : record;
        if (!http->keep && !settle)
            record = NULL;
        aigw_trace_end (http->edge->trace, &copy, http->client_span, http->wall_us,
                        http->wall_us + record_us, ri->request_method, ri->local_uri);
    }
    if ((http->keep || settle) && record)
        aigw_edge_io_usage (io, &record, http->keep);
    aigw_envelope_destroy (&record);
}

//  The answer's last message is here: settle its reservation now, before
//  the client has the last byte, so the client's next request cannot
//  reach the owner first and meet a reservation already given back. The
//  record then settles no more (a second settle would change nothing).
static void
s_settle_early (s_http_t *http, int status)
{
    http->record->status = status;
    aigw_edge_io_settle (http->io, http->record);
    aigw_envelope_set (&http->record->reservation, NULL);
}

//  Relay the pipeline's answer to the client until its last message.
static void
s_relay (s_http_t *http, aigw_slot_t *slot, int64_t deadline_ms)
{
    while (true) {
        aigw_client_event_t *event = aigw_slot_wait (slot, deadline_ms + AIGW_EDGE_GRACE_MS);
        if (!event) {
            const char *message = "The pipeline did not answer within the request deadline.";
            if (http->headers_sent) {
                s_stream_error (http, "timeout_error", "deadline_exceeded", message);
                return;
            }
            s_send_error (http, 504, "timeout_error", "deadline_exceeded", NULL, message, NULL);
            return;
        }
        if (event->type == AIGW_BP_CLIENT_ERROR) {
            const char *text = event->text ? event->text : "The pipeline failed.";
            if (http->headers_sent)
                s_stream_error (http,
                                event->status == 504 ? "timeout_error" : "service_unavailable",
                                "stage_unavailable", text);
            else
                s_send_broker_error (http, event->status, text);
            aigw_client_event_destroy (&event);
            return;
        }
        //  A stage in this process hands the envelope itself; one elsewhere
        //  sends it encoded.
        char err[128] = "";
        aigw_envelope_t *env = event->env;
        event->env = NULL;
        if (!env)
            env = aigw_envelope_decode (zframe_data (event->envelope),
                                        zframe_size (event->envelope), err, sizeof err);
        bool last = event->last;
        aigw_client_event_destroy (&event);
        if (env && !http->record && env->reservation) {
            //  A request with no usage record (GET /v1/models) still
            //  settles what the rate-limit owner reserved for it.
            http->record = aigw_envelope_new ();
            aigw_envelope_set (&http->record->id, http->id);
            http->record->kind = env->kind;
            http->settle_only = true;
        }
        if (env && http->record)
            s_usage_note (http->record, env);
        if (env && last && http->record && http->record->reservation)
            s_settle_early (http, env->status);
        if (!env) {
            aigw_error ("bad envelope from the pipeline: %s", err);
            if (http->headers_sent)
                s_stream_error (http, "server_error", "bad_envelope", "Internal error.");
            else
                s_send_error (http, 500, "server_error", "bad_envelope", NULL, "Internal error.",
                              NULL);
            return;
        }
        if (!http->headers_sent) {
            if (env->status >= 400)
                s_send_error (http, env->status, env->err_type ? env->err_type : "error",
                              env->err_code ? env->err_code : "error", env->err_param,
                              env->err_message, env);
            else if (last)
                s_write_head (http, env->status ? env->status : 200,
                              env->content_type ? env->content_type : "application/json", env,
                              (long long) env->body_len);
            else
                s_write_head (http, env->status ? env->status : 200,
                              env->content_type ? env->content_type : "text/event-stream", env, -1);
            if (env->status >= 400) {
                aigw_envelope_destroy (&env);
                return;
            }
        }
        //  A stored Response is committed before its end reaches the client
        //  (aigw_edge_rstore.h), so the client's next turn finds it.
        if (http->rstore)
            aigw_edge_rstore_feed (http->rstore, http->io, env, last, http->id,
                                   http->edge->config->responses_store_wait_ms);
        int rc = 0;
        if (!http->head)
            s_content_add (http, env->body, env->body_len);
        if (http->head)
            ;  //  HEAD: the headers only (SPEC)
        else if (http->chunked) {
            if (env->body_len)
                rc = mg_send_chunk (http->conn, env->body, env->body_len);
            if (http->route == AIGW_ROUTE_RESPONSES)
                s_count_events (http, env->body, env->body_len);
            if (last && rc >= 0)
                rc = mg_send_chunk (http->conn, "", 0);
        }
        else if (env->body_len)
            rc = mg_write (http->conn, env->body, env->body_len);
        aigw_envelope_destroy (&env);
        if (last || rc < 0)
            return;  //  done, or the client went away
    }
}

//  Send ENV into the pipeline (its first stage, auth) and relay the answer
//  to the client until its last message or the deadline. Takes *ENV_P.
static void
s_dispatch (s_http_t *http, aigw_envelope_t **env_p)
{
    int64_t deadline = (*env_p)->deadline_ms;
    //  The socket this thread has just read the request from.
    aigw_edge_t *edge = http->edge;
    aigw_edge_io_t *io = edge->ios[atomic_fetch_add (&edge->next_io, 1) % edge->io_count];
    http->io = io;
    aigw_slot_t *slot = aigw_edge_io_request (io, env_p, aigw_edge_conn_fd ());
    s_relay (http, slot, deadline);
    aigw_slot_destroy (&slot);
}

//  The prefix of a stored response's path.
#define AIGW_EDGE_RESPONSES_PREFIX "/v1/responses/"
#define AIGW_EDGE_ALLOW_STORED     "GET, HEAD, DELETE"

//  GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items:
//  the caller's tenant's stored responses, answered by the responses
//  stage after auth. Without a database nothing is stored: 404.
static int
s_handle_stored (struct mg_connection *conn, aigw_edge_t *edge, int64_t started)
{
    const struct mg_request_info *ri = mg_get_request_info (conn);
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_RESPONSES);
    http.allow = AIGW_EDGE_ALLOW_STORED;
    const char *path = ri->local_uri + strlen (AIGW_EDGE_RESPONSES_PREFIX);
    const char *method = http.head ? "GET" : ri->request_method;
    bool database = edge->config->database_url && *edge->config->database_url;
    if (!streq (method, "GET") && !streq (method, "DELETE"))
        s_send_error (&http, 405, "invalid_request_error", "method_not_allowed", NULL,
                      "Method not allowed on this path.", NULL);
    else if (s_check_length (&http, "path", path, AIGW_EDGE_ADMIN_PATH_MAX) != 0
             || s_check_credential (&http) != 0) {
        //  Answered inside.
    }
    else if (!database)
        s_send_error (&http, 404, "invalid_request_error", "not_found", NULL,
                      "No stored response: this gateway keeps none without a database.", NULL);
    else {
        aigw_envelope_t *env = aigw_envelope_new ();
        aigw_envelope_set (&env->id, http.id);
        env->kind = AIGW_KIND_RESPONSES;
        env->deadline_ms = aigw_now_ms () + edge->config->request_timeout_ms;
        aigw_envelope_set (&env->credential, s_credential (conn));
        aigw_envelope_set (&env->method, method);
        aigw_envelope_set (&env->path, path);
        aigw_envelope_set (&env->query, ri->query_string);
        aigw_envelope_set (&env->route[0], "auth");
        aigw_envelope_set (&env->route[1], "responses");
        env->route_len = 2;
        s_dispatch (&http, &env);
    }
    aigw_edge_metrics_record (edge->metrics, http.route, http.status, zclock_usecs () - started);
    return http.status ? http.status : 400;
}

//  Most seconds X-AIGW-Cache-TTL may say (the cache holds an entry no
//  longer than its cache.max_ttl_s).
#define AIGW_EDGE_CACHE_TTL_MAX 31536000

//  The request's cache directives into OUT (SIZE bytes) for the cache
//  stage: "no-cache" and "no-store" from Cache-Control (other directives
//  are not the gateway's), "ttl=N" from X-AIGW-Cache-TTL. Returns 0, or -1
//  when the TTL is not a number of seconds (answered 400).
static int
s_cache_directives (s_http_t *http, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    const char *control = mg_get_header (http->conn, "Cache-Control");
    while (control && *control) {
        control += strspn (control, " \t,");
        size_t len = strcspn (control, ",");
        size_t word = len;
        while (word && (control[word - 1] == ' ' || control[word - 1] == '\t'))
            word--;
        if (word == 8
            && (strncasecmp (control, "no-cache", 8) == 0
                || strncasecmp (control, "no-store", 8) == 0)) {
            char directive[9];
            for (int i = 0; i < 8; i++)
                directive[i] = (char) tolower ((unsigned char) control[i]);
            directive[8] = 0;
            if (!strstr (out, directive))
                s_append (out, size, &n, "%s%s", n ? "," : "", directive);
        }
        control += len;
    }
    const char *ttl = mg_get_header (http->conn, "X-AIGW-Cache-TTL");
    if (ttl) {
        char *end = NULL;
        errno = 0;
        long long seconds = strtoll (ttl, &end, 10);
        if (!*ttl || *end || errno || seconds < 1 || seconds > AIGW_EDGE_CACHE_TTL_MAX) {
            s_send_error (http, 400, "invalid_request_error", "invalid_header", "X-AIGW-Cache-TTL",
                          "X-AIGW-Cache-TTL must be a whole number of seconds from 1 to "
                          "31536000.",
                          NULL);
            return -1;
        }
        s_append (out, size, &n, "%sttl=%lld", n ? "," : "", seconds);
    }
    return 0;
}

//  POST /v1/chat/completions, POST /v1/messages, POST /v1/responses,
//  POST /v1/embeddings, GET /v1/models, POST /v1/messages/count_tokens.
static int
s_handle_v1 (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    const struct mg_request_info *ri = mg_get_request_info (conn);
    int64_t started = zclock_usecs ();
    if (ri->local_uri
        && !strncmp (ri->local_uri, AIGW_EDGE_RESPONSES_PREFIX, strlen (AIGW_EDGE_RESPONSES_PREFIX))
        && ri->local_uri[strlen (AIGW_EDGE_RESPONSES_PREFIX)])
        return s_handle_stored (conn, edge, started);
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OTHER);
    http.started_us = started;

    const char *uri = ri->local_uri ? ri->local_uri : "";
    const char *method = ri->request_method;
    int kind = AIGW_KIND_NONE;
    if (streq (uri, "/v1/chat/completions"))
        kind = AIGW_KIND_CHAT, http.route = AIGW_ROUTE_CHAT;
    else if (streq (uri, "/v1/messages"))
        kind = AIGW_KIND_MESSAGES, http.route = AIGW_ROUTE_MESSAGES;
    else if (streq (uri, "/v1/responses"))
        kind = AIGW_KIND_RESPONSES, http.route = AIGW_ROUTE_RESPONSES;
    else if (streq (uri, "/v1/embeddings"))
        kind = AIGW_KIND_EMBEDDINGS, http.route = AIGW_ROUTE_EMBEDDINGS;
    else if (streq (uri, "/v1/models"))
        kind = AIGW_KIND_MODELS, http.route = AIGW_ROUTE_MODELS;
    else if (streq (uri, "/v1/messages/count_tokens"))
        kind = AIGW_KIND_COUNT_TOKENS, http.route = AIGW_ROUTE_COUNT_TOKENS;
    //  GET routes answer HEAD too; s_relay then sends the headers only.
    bool allowed = kind == AIGW_KIND_MODELS ? streq (method, "GET") || streq (method, "HEAD")
                                            : streq (method, "POST");
    http.allow = kind == AIGW_KIND_MODELS ? AIGW_EDGE_ALLOW_GET : AIGW_EDGE_ALLOW_POST;
    if (allowed)
        s_usage_start (&http, kind);

    char *body = NULL, *model = NULL;
    size_t body_len = 0;
    bool stream = false;
    char directives[64];
    //  The body parsed, for the cache's reading when the cache runs here.
    json_t *root = NULL;
    bool cacheable = edge->cache_here
                     && (kind == AIGW_KIND_CHAT || kind == AIGW_KIND_MESSAGES
                         || kind == AIGW_KIND_EMBEDDINGS || kind == AIGW_KIND_RESPONSES);
    if (kind == AIGW_KIND_NONE)
        s_send_error (&http, 404, "invalid_request_error", "not_found", NULL, "Unknown path.",
                      NULL);
    else if (!allowed)
        s_send_error (&http, 405, "invalid_request_error", "method_not_allowed", NULL,
                      "Method not allowed on this path.", NULL);
    else if (s_check_credential (&http) != 0) {
        //  Answered inside.
    }
    else if (kind != AIGW_KIND_MODELS
             && (!(body = s_read_body (&http, &body_len))
                 || s_validate (&http, kind, body, body_len, &model, &stream,
                                cacheable ? &root : NULL)
                        != 0)) {
        //  Answered inside.
    }
    else if (s_cache_directives (&http, directives, sizeof directives) != 0) {
        //  Answered inside.
    }
    else {
        aigw_envelope_t *env = aigw_envelope_new ();
        aigw_envelope_set (&env->id, http.id);
        http.request_len = body_len;
        env->kind = (uint8_t) kind;
        env->deadline_ms = aigw_now_ms () + edge->config->request_timeout_ms;
        env->stream = stream;
        aigw_envelope_set (&env->credential, s_credential (conn));
        aigw_envelope_set (&env->model, model);
        if (*http.traceparent)
            aigw_envelope_set (&env->traceparent, http.traceparent);
        if (*directives)
            aigw_envelope_set (&env->cache_control, directives);
        const char *chat_route[] = {"auth", "ratelimit", "guardrail", "cache", "provider"};
        const char *models_route[] = {"auth", "ratelimit", "provider"};
        const char **route = kind == AIGW_KIND_MODELS ? models_route : chat_route;
        env->route_len = kind == AIGW_KIND_MODELS ? 3 : 5;
        //  count_tokens: auth (the key must be allowed the model), then the
        //  provider. No rate limit: it generates nothing, is not billed, and
        //  clients call it dozens of times before a single message (Anthropic
        //  limits it apart from messages too); no guardrail or cache either.
        const char *count_route[] = {"auth", "provider"};
        if (kind == AIGW_KIND_COUNT_TOKENS)
            route = count_route, env->route_len = 2;
        //  The semantic cache's vectors from a model of the router: a
        //  provider hop before the cache fetches the vector (aigw_provider),
        //  so the cache stage never calls out itself.
        const char *embed_route[]
            = {"auth", "ratelimit", "guardrail", "provider", "cache", "provider"};
        const aigw_config_t *config = edge->config;
        if ((kind == AIGW_KIND_CHAT || kind == AIGW_KIND_MESSAGES) && config->cache_enabled
            && config->cache_semantic_enabled && config->cache_semantic_model
            && *config->cache_semantic_model && !aigw_list_has (directives, "no-store")) {
            route = embed_route, env->route_len = 6;
            aigw_envelope_set (&env->cache_embed, config->cache_semantic_model);
        }
        for (int i = 0; i < env->route_len; i++)
            aigw_envelope_set (&env->route[i], route[i]);
        //  Stored Responses (aigw_edge_rstore.h): a follow-up turn goes
        //  through the responses stage before the cache, which then sees the
        //  whole conversation; its answer's end waits for its store.
        if (kind == AIGW_KIND_RESPONSES && edge->config->database_url
            && *edge->config->database_url)
            http.rstore = aigw_edge_rstore_new (body, body_len);
        if (aigw_edge_rstore_previous (http.rstore)) {
            for (int i = env->route_len; i > 3; i--)
                aigw_envelope_set (&env->route[i], route[i - 1]);
            aigw_envelope_set (&env->route[3], "responses");
            env->route_len++;
        }
        //  An Anthropic client (its SDK always sends anthropic-version) gets
        //  the models list in Anthropic's shape.
        if (kind == AIGW_KIND_MODELS && mg_get_header (conn, "anthropic-version"))
            aigw_envelope_set (&env->path, "anthropic");
        if (body) {
            aigw_envelope_take_body (env, body, body_len);
            body = NULL;
        }
        //  The cache's reading of the body, made in this thread rather than
        //  the pipeline's, which every request shares.
        if (root)
            aigw_cacheform_prepare (env, root);
        root = NULL;
        s_dispatch (&http, &env);
    }
    s_usage_send (&http, edge->ios[atomic_load (&edge->next_io) % edge->io_count], model, stream);
    aigw_edge_rstore_destroy (&http.rstore);
    json_decref (root);
    free (body);
    free (model);
    aigw_edge_metrics_record (edge->metrics, http.route, http.status, zclock_usecs () - started);
    return http.status ? http.status : 400;
}

//  The admin API prefix; what follows it travels as env->path.
#define AIGW_EDGE_ADMIN_PREFIX "/api/v1/admin/"

//  /api/v1/admin/...: authenticated by auth, answered by the admin actor.
static int
s_handle_admin (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    const struct mg_request_info *ri = mg_get_request_info (conn);
    int64_t started = zclock_usecs ();
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_ADMIN);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    const char *path = strncmp (uri, AIGW_EDGE_ADMIN_PREFIX, strlen (AIGW_EDGE_ADMIN_PREFIX))
                           ? ""
                           : uri + strlen (AIGW_EDGE_ADMIN_PREFIX);
    //  A HEAD travels as the GET it mirrors; s_relay sends its headers only.
    const char *method = http.head ? "GET" : ri->request_method;
    size_t body_len = 0;
    char *body = NULL;
    //  The dashboard's calls carry a session cookie instead of a key.
    char *session_credential = NULL;
    int refused = 0;
    const char *refused_code = NULL, *refused_message = NULL;
    aigw_dashboard_verdict_t session = AIGW_DASHBOARD_NONE;
    if (!s_credential (conn))
        session
            = aigw_edge_dashboard_credential (edge->dashboard, conn, method, &session_credential,
                                              &refused, &refused_code, &refused_message);
    if (s_check_length (&http, "path", path, AIGW_EDGE_ADMIN_PATH_MAX) != 0
        || s_check_credential (&http) != 0) {
        //  Answered inside.
    }
    else if (session == AIGW_DASHBOARD_REFUSED)
        s_send_error (&http, refused, refused == 401 ? "authentication_error" : "permission_error",
                      refused_code, NULL, refused_message, NULL);
    else if (s_has_body (conn) && !(body = s_read_body (&http, &body_len))) {
        //  Answered inside.
    }
    else if (body && !aigw_json_depth_ok (body, body_len, AIGW_EDGE_JSON_DEPTH_MAX))
        s_send_error (&http, 400, "invalid_request_error", "invalid_json", NULL,
                      "The request body nests too deeply.", NULL);
    else {
        aigw_envelope_t *env = aigw_envelope_new ();
        aigw_envelope_set (&env->id, http.id);
        env->kind = AIGW_KIND_ADMIN;
        env->deadline_ms = aigw_now_ms () + edge->config->request_timeout_ms;
        aigw_envelope_set (&env->credential,
                           session_credential ? session_credential : s_credential (conn));
        aigw_envelope_set (&env->method, method);
        aigw_envelope_set (&env->path, path);
        aigw_envelope_set (&env->query, ri->query_string);
        aigw_envelope_set (&env->route[0], "auth");
        aigw_envelope_set (&env->route[1], "admin");
        env->route_len = 2;
        if (body) {
            aigw_envelope_take_body (env, body, body_len);
            body = NULL;
        }
        s_dispatch (&http, &env);
    }
    free (body);
    if (session_credential) {
        OPENSSL_cleanse (session_credential, strlen (session_credential));
        free (session_credential);
    }
    aigw_edge_metrics_record (edge->metrics, http.route, http.status, zclock_usecs () - started);
    return http.status ? http.status : 400;
}

//  /dashboard...: the pages and the sign-in (aigw_edge_dashboard).
static int
s_handle_dashboard (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OTHER);
    int status = aigw_edge_dashboard_serve (edge->dashboard, conn, http.id, http.head);
    aigw_edge_metrics_record (edge->metrics, http.route, status, 0);
    return status;
}

//  The ops routes answer GET and HEAD. Returns 0 for those; otherwise
//  answers 405 (recording it) and returns -1.
static int
s_check_get (s_http_t *http)
{
    const char *method = mg_get_request_info (http->conn)->request_method;
    if (streq (method, "GET") || streq (method, "HEAD"))
        return 0;
    http->allow = AIGW_EDGE_ALLOW_GET;
    s_send_error (http, 405, "invalid_request_error", "method_not_allowed", NULL,
                  "Method not allowed on this path.", NULL);
    aigw_edge_metrics_record (http->edge->metrics, http->route, http->status, 0);
    return -1;
}

//  GET /healthz: the process serves.
static int
s_handle_healthz (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OPS);
    if (s_check_get (&http) != 0)
        return http.status;
    static const char body[] = "{\"status\":\"ok\"}";
    s_write_head (&http, 200, "application/json", NULL, sizeof body - 1);
    s_write_body (&http, body, sizeof body - 1);
    aigw_edge_metrics_record (edge->metrics, http.route, 200, 0);
    return 200;
}

//  GET /readyz: every stage has a live worker and the broker answers.
static int
s_handle_readyz (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OPS);
    if (s_check_get (&http) != 0)
        return http.status;
    char detail[512];
    //  Threads serve while mg_start is still creating the rest of them.
    bool ready
        = aigw_edge_io_ready (edge->io, detail, sizeof detail) && atomic_load (&edge->started);
    //  PQping answers whether the server accepts connections, without
    //  logging in; libpq bounds it by connect_timeout.
    const char *database = "null";
    if (edge->config->database_url && *edge->config->database_url) {
        const char *keys[] = {"dbname", "connect_timeout", NULL};
        const char *values[] = {edge->config->database_url, AIGW_EDGE_DB_PING_TIMEOUT_S, NULL};
        bool up = PQpingParams (keys, values, 1) == PQPING_OK;
        database = up ? "true" : "false";
        ready = ready && up;
    }
    char *body = zsys_sprintf ("{\"status\":\"%s\",\"pipeline\":%s,\"database\":%s}",
                               ready ? "ready" : "not_ready", detail, database);
    s_write_head (&http, ready ? 200 : 503, "application/json", NULL, (long long) strlen (body));
    s_write_body (&http, body, strlen (body));
    zstr_free (&body);
    aigw_edge_metrics_record (edge->metrics, http.route, http.status, 0);
    return http.status;
}

//  GET /metrics: the edge's own figures, the broker's per stage, and the
//  router's per deployment.
static int
s_handle_metrics (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OPS);
    if (s_check_get (&http) != 0)
        return http.status;
    char *own = aigw_edge_metrics_text (edge->metrics);
    //  Figures of stages in this process (the usage actor's in `aigw run`).
    char *process = aigw_stats_text ();
    //  Both questions go to the broker at once, under one deadline: the
    //  stages' figures, and every provider process's report for the
    //  per-deployment ones.
    int64_t deadline = aigw_now_ms () + AIGW_EDGE_METRICS_WAIT_MS;
    aigw_slot_t *slot = aigw_edge_io_metrics (edge->io);
    aigw_slot_t *reports_slot = aigw_edge_io_reports (edge->io, "provider", deadline);
    aigw_client_event_t *event = aigw_slot_wait (slot, deadline);
    aigw_client_event_t *reports = aigw_slot_wait (reports_slot, deadline);
    aigw_slot_destroy (&slot);
    aigw_slot_destroy (&reports_slot);
    const char *stages
        = event && event->type == AIGW_BP_CLIENT_METRICS && event->text ? event->text : "";
    char *deployments = NULL;
    if (reports && reports->type == AIGW_BP_CLIENT_REPORTS && reports->text) {
        json_t *doc = aigw_health_merge (reports->text, strlen (reports->text));
        deployments = aigw_health_prometheus (doc);
        json_decref (doc);
    }
    const char *routed = deployments ? deployments : "";
    size_t own_len = strlen (own), stages_len = strlen (stages), routed_len = strlen (routed);
    size_t process_len = strlen (process);
    s_write_head (&http, 200, "text/plain; version=0.0.4", NULL,
                  (long long) (own_len + process_len + stages_len + routed_len));
    s_write_body (&http, own, own_len);
    s_write_body (&http, process, process_len);
    s_write_body (&http, stages, stages_len);
    s_write_body (&http, routed, routed_len);
    free (own);
    free (process);
    free (deployments);
    aigw_client_event_destroy (&event);
    aigw_client_event_destroy (&reports);
    aigw_edge_metrics_record (edge->metrics, http.route, 200, 0);
    return 200;
}

//  Every other path.
static int
s_handle_other (struct mg_connection *conn, void *cbdata)
{
    aigw_edge_t *edge = (aigw_edge_t *) cbdata;
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OTHER);
    s_send_error (&http, 404, "invalid_request_error", "not_found", NULL, "Unknown path.", NULL);
    aigw_edge_metrics_record (edge->metrics, http.route, 404, 0);
    return 404;
}

//  True when VALUE is a Content-Length: one or more digits, then nothing
//  but the trailing blanks a field value may have (RFC 9110 8.6; no sign,
//  no list). CivetWeb strtoll()s it, and so takes "5abc" or "+5" for 5.
static bool
s_is_length (const char *value)
{
    size_t digits = strspn (value, "0123456789");
    return digits > 0 && value[digits + strspn (value + digits, " \t")] == 0;
}

//  Every request, before its route's handler (CivetWeb's begin_request):
//  refuse framing that two HTTP parsers could read differently (RFC 9112
//  6.1 and 6.3) or a header table CivetWeb may have cut short, closing the
//  connection since where the next request starts is unknown; and refuse
//  an over-long method or query string. Returns 0 to go on to the route,
//  else the status it answered.
static int
s_begin_request (struct mg_connection *conn)
{
    aigw_edge_t *edge = (aigw_edge_t *) mg_get_user_data (mg_get_context (conn));
    const struct mg_request_info *ri = mg_get_request_info (conn);
    int lengths = 0, codings = 0;
    const char *length = NULL, *coding = NULL;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name;
        if (strcasecmp (name, "Content-Length") == 0)
            lengths++, length = ri->http_headers[i].value;
        else if (strcasecmp (name, "Transfer-Encoding") == 0)
            codings++, coding = ri->http_headers[i].value;
    }
    int status = 400;
    const char *code = NULL, *message = NULL;
    char text[160];
    if (ri->num_headers > AIGW_EDGE_HEADER_COUNT_MAX) {
        status = 431, code = "too_many_headers";
        snprintf (text, sizeof text, "The request has more than %d headers.",
                  AIGW_EDGE_HEADER_COUNT_MAX);
        message = text;
    }
    else if (lengths > 1 || codings > 1 || (lengths && codings)) {
        code = "ambiguous_framing";
        message = "The request has more than one Content-Length or Transfer-Encoding "
                  "header, or both: its body length is ambiguous (RFC 9112 6.3).";
    }
    else if (length && !s_is_length (length)) {
        code = "invalid_content_length";
        message = "The Content-Length header is not a non-negative decimal integer.";
    }
    else if (coding && strcasecmp (coding, "chunked") != 0) {
        status = 501, code = "unsupported_transfer_encoding";
        message = "The only Transfer-Encoding accepted is chunked.";
    }
    else if (coding && ri->http_version && streq (ri->http_version, "1.0")) {
        code = "ambiguous_framing";
        message = "HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1).";
    }
    const char *method = ri->request_method ? ri->request_method : "";
    const char *query = ri->query_string ? ri->query_string : "";
    bool too_long = strlen (method) > AIGW_EDGE_METHOD_MAX || strlen (query) > AIGW_EDGE_QUERY_MAX;
    if (!code && !too_long)
        return 0;
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OTHER);
    if (code) {
        http.close = true;
        s_send_error (&http, status, "invalid_request_error", code, NULL, message, NULL);
    }
    else if (s_check_length (&http, "method", method, AIGW_EDGE_METHOD_MAX) == 0)
        s_check_length (&http, "query", query, AIGW_EDGE_QUERY_MAX);
    aigw_edge_metrics_record (edge->metrics, http.route, http.status, 0);
    return http.status;
}

//  True when CivetWeb 1.15 knows METHOD (its request parser refuses the
//  rest, with a bare 400).
static bool
s_known_method (const char *method)
{
    static const char *known[]
        = {"GET",   "POST",     "PUT",   "DELETE", "HEAD",   "OPTIONS",   "CONNECT",
           "PATCH", "PROPFIND", "MKCOL", "LOCK",   "UNLOCK", "PROPPATCH", "REPORT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (streq (method, known[i]))
            return true;
    return false;
}

//  An error CivetWeb found itself, before any handler (CivetWeb's
//  http_error): a request head it could not read or parse, or framing it
//  refuses. Answered in the SPEC's JSON shape with a request id, and the
//  connection closed. The texts are ours: CivetWeb's may carry client bytes
//  (not always UTF-8) and say too little. Returns 0: answered.
static int
s_http_error (struct mg_connection *conn, int status, const char *errmsg)
{
    aigw_edge_t *edge = (aigw_edge_t *) mg_get_user_data (mg_get_context (conn));
    const struct mg_request_info *ri = mg_get_request_info (conn);
    s_http_t http;
    s_http_init (&http, conn, edge, AIGW_ROUTE_OTHER);
    http.close = true;
    const char *type = "invalid_request_error", *code = "bad_request";
    char message[256];
    snprintf (message, sizeof message, "%s.", s_reason (status));
    const char *coding = mg_get_header (conn, "Transfer-Encoding");
    if (status == 411) {
        //  CivetWeb's answer to a Content-Length that is no number (-5).
        status = 400, code = "invalid_content_length";
        snprintf (message, sizeof message,
                  "The Content-Length header is not a non-negative decimal integer.");
    }
    else if (status == 400 && errmsg && streq (errmsg, "Malformed message")) {
        //  One text for three causes CivetWeb does not tell apart.
        code = "malformed_request";
        snprintf (message, sizeof message,
                  "The request head is malformed: a control byte in it, over %d bytes, "
                  "or not complete within %d ms.",
                  AIGW_EDGE_HEAD_BYTES_MAX, edge->config->read_timeout_ms);
    }
    else if (status == 400 && coding && strcasecmp (coding, "chunked") != 0
             && strcasecmp (coding, "identity") != 0) {
        status = 501, code = "unsupported_transfer_encoding";
        snprintf (message, sizeof message, "The only Transfer-Encoding accepted is chunked.");
    }
    else if (status == 400 && ri->request_method && ri->num_headers == 0
             && !s_known_method (ri->request_method)) {
        //  CivetWeb refuses a method it does not know before the headers.
        status = 501, code = "method_not_implemented";
        snprintf (message, sizeof message, "The request method is not one this server knows.");
    }
    else if (status == 400) {
        code = "bad_request";
        snprintf (message, sizeof message, "The request line or a header is malformed.");
    }
    else if (status == 505)
        code = "http_version_not_supported";
    else if (status >= 500)
        type = "server_error", code = "server_error";
    s_send_error (&http, status, type, code, NULL, message, NULL);
    aigw_edge_metrics_record (edge->metrics, http.route, http.status, 0);
    return 0;
}

//  Keep CivetWeb's own messages out of stderr unless debugging.
static int
s_log_message (const struct mg_connection *conn, const char *message)
{
    aigw_debug ("civetweb: %s", message);
    return 1;
}

aigw_edge_t *
aigw_edge_new (const aigw_config_t *config, const char *broker_endpoint, const char *stages,
               bool owns_shards, char *err, size_t err_size)
{
    aigw_edge_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->metrics = aigw_edge_metrics_new (config->metrics_max_label_values);
    self->trace = aigw_trace_new (config);
    //  With stages, one pipeline per I/O thread (server.pipelines); several
    //  own no key alone, the directory says which owns it.
    int pipelines = stages && *stages && config->pipelines > 1 ? config->pipelines : 1;
    for (int i = 0; i < pipelines; i++) {
        self->ios[i] = aigw_edge_io_new (config, broker_endpoint, stages,
                                         owns_shards && pipelines == 1, err, err_size);
        if (!self->ios[i])
            break;
        self->io_count++;
    }
    self->io = self->ios[0];
    self->cache_here = config->cache_enabled && stages && aigw_list_has (stages, "cache");
    self->dashboard = aigw_edge_dashboard_new (config, self->io);
    if (self->io_count < pipelines || !self->dashboard) {
        aigw_edge_destroy (&self);
        return NULL;
    }
    //  Every connection holds a thread and a descriptor for its life: main
    //  raised the descriptor limit to its hard limit.
    char ports[300], threads[16], head_bytes[16], read_timeout[16];
    snprintf (ports, sizeof ports, "%s:%d", config->host, config->port);
    snprintf (threads, sizeof threads, "%d", config->edge_threads);
    snprintf (head_bytes, sizeof head_bytes, "%d", AIGW_EDGE_HEAD_BYTES_MAX);
    //  How long a client may take over its request head and each read of
    //  its body (and a blocked write may wait).
    snprintf (read_timeout, sizeof read_timeout, "%d", config->read_timeout_ms);
    const char *options[] = {"listening_ports",
                             ports,
                             "num_threads",
                             threads,
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             AIGW_EDGE_KEEP_ALIVE_MS,
                             "tcp_nodelay",
                             "1",
                             "connection_queue",
                             AIGW_EDGE_CONNECTION_QUEUE,
                             "listen_backlog",
                             AIGW_EDGE_LISTEN_BACKLOG,
                             "enable_auth_domain_check",
                             "no",
                             "max_request_size",
                             head_bytes,
                             "request_timeout_ms",
                             read_timeout,
                             NULL};
    struct mg_callbacks callbacks = {0};
    callbacks.log_message = s_log_message;
    callbacks.begin_request = s_begin_request;
    callbacks.http_error = s_http_error;
    //  Debian's CivetWeb creates every worker here, each with a fixed 100 KiB
    //  stack: handlers keep frames small and JSON nesting is capped.
    self->ctx = mg_start (&callbacks, self, options);
    if (!self->ctx) {
        snprintf (err, err_size, "cannot listen on %s (in use, or not allowed)", ports);
        aigw_edge_destroy (&self);
        return NULL;
    }
    struct mg_server_port bound[4];
    int count = mg_get_server_ports (self->ctx, 4, bound);
    self->port = count > 0 ? bound[0].port : config->port;
    mg_set_request_handler (self->ctx, "/v1/", s_handle_v1, self);
    mg_set_request_handler (self->ctx, "/api/v1/admin/", s_handle_admin, self);
    mg_set_request_handler (self->ctx, "/healthz$", s_handle_healthz, self);
    mg_set_request_handler (self->ctx, "/readyz$", s_handle_readyz, self);
    mg_set_request_handler (self->ctx, "/metrics$", s_handle_metrics, self);
    mg_set_request_handler (self->ctx, "/dashboard", s_handle_dashboard, self);
    mg_set_request_handler (self->ctx, "/", s_handle_other, self);
    atomic_store (&self->started, true);
    return self;
}

int
aigw_edge_port (aigw_edge_t *self)
{
    return self->port;
}

void
aigw_edge_destroy (aigw_edge_t **self_p)
{
    aigw_edge_t *self = *self_p;
    if (!self)
        return;
    if (self->ctx)
        mg_stop (self->ctx);
    for (int i = 0; i < self->io_count; i++)
        aigw_edge_io_destroy (&self->ios[i]);
    self->io = NULL;
    aigw_edge_dashboard_destroy (&self->dashboard);
    //  After the handlers stopped: none adds to it any more.
    aigw_trace_destroy (&self->trace);
    aigw_edge_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

void
aigw_edge_test (bool verbose)
{
    char *body = s_error_body ("req_1", "t", "c", NULL, "m \"quoted\"");
    assert (body && strstr (body, "\"request_id\":\"req_1\""));
    assert (strstr (body, "\"param\":null"));
    assert (strstr (body, "m \\\"quoted\\\""));
    free (body);
    assert (streq (s_reason (429), "Too Many Requests"));
    assert (streq (s_reason (431), "Request Header Fields Too Large"));
    //  A head that would overflow its buffer is cut short, never overrun.
    char head[16];
    size_t used = 0;
    s_append (head, sizeof head, &used, "%s", "0123456789");
    assert (used == 10 && streq (head, "0123456789"));
    s_append (head, sizeof head, &used, "%s", "abcdefghij");
    assert (used == sizeof head - 1 && streq (head, "0123456789abcde"));
    s_append (head, sizeof head, &used, "%s", "more");
    assert (used == sizeof head - 1);
    //  Rate-limit headers (limits.md 5): OpenAI's durations, requests from
    //  rl_*, tokens from rl_tokens_*, X-RateLimit-* from the tighter.
    char text[32];
    s_duration (text, sizeof text, 1);
    assert (streq (text, "1s"));
    s_duration (text, sizeof text, 360);
    assert (streq (text, "6m0s"));
    s_duration (text, sizeof text, 3723);
    assert (streq (text, "1h2m3s"));
    s_duration (text, sizeof text, -5);
    assert (streq (text, "0s"));
    char headers[1024];
    aigw_envelope_t *env = aigw_envelope_new ();
    env->rl_limit = 100;
    env->rl_remaining = 40;
    env->rl_reset = 1000060;
    used = 0;
    s_ratelimit_headers (headers, sizeof headers, &used, env, 1000000);
    assert (strstr (headers, "X-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 40\r\n"
                             "X-RateLimit-Reset: 1000060\r\n"));
    assert (strstr (headers, "x-ratelimit-limit-requests: 100\r\n"
                             "x-ratelimit-remaining-requests: 40\r\n"
                             "x-ratelimit-reset-requests: 1m0s\r\n"));
    assert (!strstr (headers, "-tokens"));
    //  A tpm limit with less room: X-RateLimit-* are its figures.
    env->rl_tokens_limit = 10000;
    env->rl_tokens_remaining = 1000;
    env->rl_tokens_reset = 1000006;
    used = 0;
    s_ratelimit_headers (headers, sizeof headers, &used, env, 1000000);
    assert (strstr (headers, "X-RateLimit-Limit: 10000\r\nX-RateLimit-Remaining: 1000\r\n"
                             "X-RateLimit-Reset: 1000006\r\n"));
    assert (strstr (headers, "x-ratelimit-limit-requests: 100\r\n"));
    assert (strstr (headers, "x-ratelimit-limit-tokens: 10000\r\n"
                             "x-ratelimit-remaining-tokens: 1000\r\n"
                             "x-ratelimit-reset-tokens: 6s\r\n"));
    //  More room in tokens: X-RateLimit-* stay the requests'.
    env->rl_tokens_remaining = 9000;
    used = 0;
    s_ratelimit_headers (headers, sizeof headers, &used, env, 1000000);
    assert (strstr (headers, "X-RateLimit-Limit: 100\r\n"));
    //  The binding limit is tpm and the tokens' own fields are not set:
    //  rl_* are token figures, and no request headers are made up.
    aigw_envelope_set (&env->rl_kind, "tpm");
    env->rl_tokens_limit = -1;
    env->rl_limit = 5000;
    env->rl_remaining = 0;
    used = 0;
    s_ratelimit_headers (headers, sizeof headers, &used, env, 1000000);
    assert (
        strstr (headers, "x-ratelimit-limit-tokens: 5000\r\nx-ratelimit-remaining-tokens: 0\r\n"));
    assert (strstr (headers, "X-RateLimit-Limit: 5000\r\n"));
    assert (!strstr (headers, "-requests"));
    //  concurrency is a request-counting kind.
    aigw_envelope_set (&env->rl_kind, "concurrency");
    env->rl_limit = 3;
    used = 0;
    s_ratelimit_headers (headers, sizeof headers, &used, env, 1000000);
    assert (strstr (headers, "x-ratelimit-limit-requests: 3\r\n"));
    aigw_envelope_destroy (&env);
    assert (s_is_length ("0") && s_is_length ("1234"));
    assert (!s_is_length ("") && !s_is_length ("-5") && !s_is_length ("5abc")
            && !s_is_length ("5, 5") && !s_is_length (" 5") && !s_is_length ("+5")
            && !s_is_length ("5 5"));
    assert (s_is_length ("5 \t"));
    assert (s_known_method ("PROPFIND") && !s_known_method ("BREW"));
    aigw_edge_metrics_test (verbose);
    if (verbose)
        printf ("edge: ok\n");
}
