/*  aigw_mock_provider: a local upstream over CivetWeb that speaks every
    provider's wire format: OpenAI, Anthropic Messages, Gemini, Bedrock
    Converse and Azure OpenAI (routes in aigw_mock_provider.h).

    One CivetWeb worker thread per connection runs s_begin_request, which
    answers every path itself (no document root, nothing served from disk).
    The hot path takes no lock but one: counters and per-route injection
    are atomics, the fail-rate draws use a per-thread generator, and each
    OpenAI answer is built in a buffer with room reserved in front for its
    headers, then sent with one mg_write. The one lock guards the ring of
    the last AIGW_MOCK_RING_SIZE requests (GET /mock/requests) for two
    pointer stores per request; the record itself is built before it.

    This file owns routing, credentials, pacing and injection; the other
    formats' request parsing and answer shapes live in aigw_mock_formats,
    so every format answers the same reply text as the OpenAI route.

    Test controls ride in the text of the last user message (or an
    embeddings input) so a test can drive them through the gateway:
        mock:latency=MS      delay before the first byte (overrides --latency-ms
                             and the route's latency)
        mock:status=CODE     answer CODE (400..599) in the format's error shape
        mock:chunks=N        stream exactly N content chunks
        mock:chunk_delay=MS  pause before each streamed content/finish chunk
        mock:hang            send nothing until the client goes away
        mock:die_after=N     send N content chunks, then drop the connection
                             (Bedrock: an exception frame first)
        mock:tool            with tools declared: call the first one
        mock:city=WORD       with mock:tool: the call's arguments name WORD as the city
        mock:cached=N        report N of the prompt tokens (at most all) as
                             read from a prompt cache, in the format's terms

    A request that carries prompt-cache marks (Anthropic cache_control,
    Bedrock cachePoint, OpenAI prompt_cache_key) and no mock:cached reports
    half its prompt tokens (rounded down) read from the cache and a quarter
    written to it (Anthropic and Bedrock), so tests can assert the numbers.
    count_tokens (Anthropic POST /v1/messages/count_tokens, Gemini POST
    /v1beta/models/M:countTokens, Bedrock POST /model/ID/count-tokens with
    a Converse request in input.converse) answers the prompt's word count.

    Per-route injection (--route NAME:..., POST /mock/config) adds latency,
    a share of failures with a chosen status and a share of 429s with
    Retry-After, on top of the global --latency-ms and --fail-rate. */
#include "aigw_mock_provider.h"
#include "aigw_json.h"
#include "aigw_mock_formats.h"
#include "aigw_log.h"

#include <civetweb.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

//  Asserts stay on in release builds (STYLE.md), whatever NDEBUG says
#undef NDEBUG
#include <assert.h>

//  Limits and defaults (the CLI overrides threads, latency and fail rate)
#define AIGW_MOCK_THREADS_DEFAULT    256                //  CivetWeb workers = connections in flight
#define AIGW_MOCK_THREADS_MAX        65536              //  upper bound accepted by --threads
#define AIGW_MOCK_LISTEN_BACKLOG     4096               //  kernel accept queue
#define AIGW_MOCK_KEEP_ALIVE_MS      30000              //  idle keep-alive connection lifetime
#define AIGW_MOCK_REQUEST_TIMEOUT_MS 30000              //  CivetWeb socket read/write timeout
#define AIGW_MOCK_BODY_MAX           (8 * 1024 * 1024)  //  request body cap (413 above)
#define AIGW_MOCK_RESPONSE_MAX       (64 * 1024 * 1024)  //  any built answer's cap
#define AIGW_MOCK_JSON_DEPTH_MAX     64                  //  nesting cap, checked before parsing
#define AIGW_MOCK_DELAY_MAX_MS       (10 * 60 * 1000)    //  cap on any sleep or hang
#define AIGW_MOCK_SLEEP_SLICE_MS     50                  //  sleeps wake this often to see stop
#define AIGW_MOCK_CHUNKS_MAX         100000              //  cap on mock:chunks and mock:die_after
#define AIGW_MOCK_BUF_INLINE         1024                //  stack storage per buffer before malloc
#define AIGW_MOCK_HEADER_ROOM        512                 //  bytes reserved in front for headers
#define AIGW_MOCK_ID_SPACE_BITS      24                  //  ids apart between two mocks
#define AIGW_MOCK_RETRY_AFTER_S      1                   //  Retry-After on a mock:status=429
#define AIGW_MOCK_EMBED_DIMS         64                  //  floats per embedding
#define AIGW_MOCK_MODEL_CREATED      1700000000          //  fixed "created" of the model list
#define AIGW_MOCK_STATUS_MIN         400                 //  mock:status accepts this ..
#define AIGW_MOCK_STATUS_MAX         599                 //  .. to this
#define AIGW_MOCK_STATUS_GONE        499                 //  access-log status when the client left
#define AIGW_MOCK_PORT_MAX           65535               //  highest TCP port
#define AIGW_MOCK_NUMBER_TEXT        32                  //  room for a number as text
#define AIGW_MOCK_ERROR_TEXT         256                 //  room for an error message
#define AIGW_MOCK_MS_PER_S           1000                //  milliseconds per second
#define AIGW_MOCK_NS_PER_MS          1000000L            //  nanoseconds per millisecond
#define AIGW_MOCK_SQRT_STEPS         32                  //  Newton steps for a unit vector
#define AIGW_MOCK_WAKE_INTERVAL_MS   10                  //  stop: pause between wake-up connects
#define AIGW_MOCK_WAKE_MAX_MS        5000                //  stop: give up waking after this long
#define AIGW_MOCK_RING_SIZE          64                  //  requests GET /mock/requests keeps
#define AIGW_MOCK_RECORD_BODY_MAX    (1024 * 1024)       //  larger bodies are recorded as null
#define AIGW_MOCK_REDACTED_MAX       512                 //  a redacted credential header, at most
#define AIGW_MOCK_REDACT_PREFIX      4                   //  characters of a credential shown
#define AIGW_MOCK_REDACT_SHOWN_MIN   12                  //  shorter credentials show none
#define AIGW_MOCK_REDACT_HASH_HEX    8                   //  hex digits of its SHA-256 shown
#define AIGW_MOCK_PPM                1000000             //  rates are kept in parts per million
#define AIGW_MOCK_RETRY_AFTER_MAX    3600                //  cap on an injected Retry-After
#define AIGW_MOCK_FAIL_STATUS        500  //  status of an injected failure by default
#define AIGW_MOCK_NAME_TEXT          256  //  room for a model or deployment name
#define AIGW_MOCK_QUERY_TEXT         256  //  room for one query parameter

//  Hash and generator constants (FNV-1a 64, splitmix64, xorshift64*)
#define AIGW_MOCK_FNV_OFFSET     0xcbf29ce484222325ULL
#define AIGW_MOCK_FNV_PRIME      0x100000001b3ULL
#define AIGW_MOCK_SPLITMIX_GAMMA 0x9e3779b97f4a7c15ULL
#define AIGW_MOCK_SPLITMIX_MUL1  0xbf58476d1ce4e5b9ULL
#define AIGW_MOCK_SPLITMIX_MUL2  0x94d049bb133111ebULL
#define AIGW_MOCK_XORSHIFT_MUL   0x2545f4914f6cdd1dULL
#define AIGW_MOCK_UNIT_SHIFT     11                          //  keep 53 bits for a double in [0,1)
#define AIGW_MOCK_UNIT_SCALE     (1.0 / 9007199254740992.0)  //  2^-53

#define AIGW_MOCK_FINGERPRINT  "fp_aigw_mock"  //  system_fingerprint we report
#define AIGW_MOCK_REPLY_PREFIX "Mock reply to: "

//  The models GET /v1/models lists
static const char *s_models[] = {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"};
#define AIGW_MOCK_MODEL_COUNT (sizeof s_models / sizeof s_models[0])

//  Request headers GET /mock/requests reports (lower case), when present
static const char *s_recorded_headers[]
    = {"authorization",        "x-api-key",         "api-key",
       "x-goog-api-key",       "anthropic-version", "x-amz-date",
       "x-amz-security-token", "content-type",      "accept",
       "traceparent"};
#define AIGW_MOCK_RECORDED_HEADERS (sizeof s_recorded_headers / sizeof s_recorded_headers[0])

//  One route's injected latency and failures. Each field is read on its
//  own by the hot path without a lock; a /mock/config change stores them
//  one by one, so a request racing it may see a mix of old and new.
typedef struct {
    atomic_int latency_ms;     //  delay before the first byte; -1: the server's
    atomic_int fail_ppm;       //  share answered fail_status, per million
    atomic_int fail_status;    //  status of an injected failure
    atomic_int rate429_ppm;    //  share answered 429, per million
    atomic_int retry_after_s;  //  Retry-After of an injected 429
} s_inject_t;

//  Injection settings as parsed from --route or POST /mock/config
typedef struct {
    int latency_ms;     //  -1: the server's default
    double fail_rate;   //  0..1
    int fail_status;    //  400..599
    double rate429;     //  0..1
    int retry_after_s;  //  0..AIGW_MOCK_RETRY_AFTER_MAX
} s_inject_settings_t;

//  One recorded request: one malloc holding the struct and its strings
typedef struct {
    uint64_t seq;                                     //  arrival order; the ring slot is seq % size
    int route;                                        //  aigw_mock_route_t
    const char *method;                               //  request method, in this block
    const char *path;                                 //  path as CivetWeb decoded it, in this block
    const char *query;                                //  query string or NULL, in this block
    const char *headers[AIGW_MOCK_RECORDED_HEADERS];  //  values or NULL, in this block
    const char *body;                                 //  body bytes or NULL (none, or too large)
    size_t body_len;                                  //  body length
} s_record_t;

struct _aigw_mock_t {
    struct mg_context *ctx;           //  CivetWeb server, NULL once stopped
    int port;                         //  port actually bound
    int latency_ms;                   //  default delay before the first byte
    double fail_rate;                 //  share of requests answered 500
    char *api_key;                    //  expected bearer key; NULL: any non-empty
    atomic_bool stopping;             //  set before mg_stop: sleeps and hangs end
    atomic_bool ctx_stopped;          //  set once mg_stop has returned
    atomic_uint_fast64_t requests;    //  /v1/* requests since start or reset
    atomic_uint_fast64_t chat;        //  chat completion requests
    atomic_uint_fast64_t stream;      //  of those, streamed
    atomic_uint_fast64_t embeddings;  //  embeddings requests
    atomic_int_fast64_t in_flight;    //  /v1/* requests being answered now
    atomic_uint_fast64_t next_id;     //  chatcmpl-mock-<N> counter, from a random start
    atomic_uint_fast64_t route_requests[AIGW_MOCK_ROUTE_COUNT];  //  requests per route
    s_inject_t inject[AIGW_MOCK_ROUTE_COUNT];                    //  per-route latency and failures
    _Atomic (s_record_t *) ring[AIGW_MOCK_RING_SIZE];  //  last requests; a slot owns its record
    atomic_uint_fast64_t ring_seq;                     //  sequence number of the next record
    pthread_mutex_t ring_lock;  //  one reader or clearer of the ring at a time
};

//  A growable byte buffer that starts on the stack. Never copy one after
//  s_buf_init: data may point into inline_store.
typedef struct {
    char *data;                               //  storage: inline_store or heap
    size_t size;                              //  bytes in use, from data
    size_t cap;                               //  bytes available at data
    size_t head;                              //  bytes reserved in front for headers
    bool failed;                              //  an append failed; contents are partial
    char inline_store[AIGW_MOCK_BUF_INLINE];  //  first storage, so small answers never malloc
} s_buf_t;

//  One request being answered, on the worker's stack
typedef struct {
    aigw_mock_t *self;           //  server the request came to
    struct mg_connection *conn;  //  CivetWeb connection, valid for this call
    bool chunked;                //  client speaks HTTP/1.1: stream chunked
    bool close;                  //  CivetWeb closes after this answer
    int latency_ms;              //  mock:latency, -1 if not given
    int status;                  //  mock:status, 0 if not given
    int chunks;                  //  mock:chunks, 0: one chunk per reply word
    int chunk_delay_ms;          //  mock:chunk_delay, 0 if not given
    int die_after;               //  mock:die_after, -1 if not given
    bool hang;                   //  mock:hang was given
    int cached;                  //  mock:cached, 0 if not given
    char tool_args[160];         //  mock:city: the tool call's arguments, "" if not given
    int route;                   //  aigw_mock_route_t: shapes errors
    int retry_after_s;           //  Retry-After of a 429
    bool json_stream;            //  Gemini stream without alt=sse: one JSON array
} s_request_t;

//  One error answer: status with an OpenAI-shaped body
typedef struct {
    int status;                          //  HTTP status
    const char *type;                    //  error.type
    const char *code;                    //  error.code, NULL: JSON null
    const char *param;                   //  error.param, NULL: JSON null
    char message[AIGW_MOCK_ERROR_TEXT];  //  error.message; never holds a secret
} s_error_t;

//  ---------------------------------------------------------------------
//  Buffers

//  Prepares an empty buffer with HEAD bytes reserved in front for headers.
static void
s_buf_init (s_buf_t *buf, size_t head)
{
    assert (head < AIGW_MOCK_BUF_INLINE);
    buf->data = buf->inline_store;
    buf->cap = sizeof buf->inline_store;
    buf->size = head;
    buf->head = head;
    buf->failed = false;
    buf->data[head] = 0;
}

//  Frees heap storage, if any. The buffer may be re-initialised after.
static void
s_buf_free (s_buf_t *buf)
{
    if (buf->data != buf->inline_store)
        free (buf->data);
    buf->data = buf->inline_store;
    buf->cap = sizeof buf->inline_store;
    buf->size = buf->head;
}

//  Empties the body (an empty string), keeping the head and any heap storage.
static void
s_buf_clear (s_buf_t *buf)
{
    buf->size = buf->head;
    buf->failed = false;
    buf->data[buf->size] = 0;
}

//  Makes room for NEED more bytes plus a terminating NUL. Returns 0, or -1
//  (and marks the buffer failed) when out of memory or over the cap.
static int
s_buf_reserve (s_buf_t *buf, size_t need)
{
    if (buf->failed)
        return -1;
    if (buf->size + need + 1 <= buf->cap)
        return 0;
    size_t want = buf->size + need + 1;
    if (want > AIGW_MOCK_RESPONSE_MAX) {
        buf->failed = true;
        return -1;
    }
    size_t cap = buf->cap * 2;
    while (cap < want)
        cap *= 2;
    char *data;
    if (buf->data == buf->inline_store) {
        data = malloc (cap);
        if (data)
            memcpy (data, buf->data, buf->size);
    }
    else
        data = realloc (buf->data, cap);
    if (!data) {
        buf->failed = true;
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

//  Appends LEN bytes. Failure is sticky and checked once, before sending.
static void
s_buf_add (s_buf_t *buf, const void *bytes, size_t len)
{
    if (s_buf_reserve (buf, len) == 0) {
        memcpy (buf->data + buf->size, bytes, len);
        buf->size += len;
        buf->data[buf->size] = 0;
    }
}

//  Appends a C string.
static void
s_buf_str (s_buf_t *buf, const char *text)
{
    s_buf_add (buf, text, strlen (text));
}

//  Appends printf-formatted text.
static void s_buf_printf (s_buf_t *buf, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_buf_printf (s_buf_t *buf, const char *format, ...)
{
    if (buf->failed)
        return;
    va_list args;
    va_start (args, format);
    size_t room = buf->cap - buf->size;
    int len = vsnprintf (buf->data + buf->size, room, format, args);
    va_end (args);
    if (len < 0) {
        buf->failed = true;
        return;
    }
    if ((size_t) len >= room) {
        if (s_buf_reserve (buf, (size_t) len) != 0)
            return;
        va_start (args, format);
        vsnprintf (buf->data + buf->size, buf->cap - buf->size, format, args);
        va_end (args);
    }
    buf->size += (size_t) len;
}

//  Appends TEXT (LEN bytes of UTF-8) as a quoted, escaped JSON string.
static void
s_buf_json (s_buf_t *buf, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    //  Worst case is six bytes per input byte, plus the quotes
    if (s_buf_reserve (buf, len * 6 + 2) != 0)
        return;
    char *out = buf->data + buf->size;
    *out++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char) c;
        }
        else if (c == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        }
        else if (c == '\r') {
            *out++ = '\\';
            *out++ = 'r';
        }
        else if (c == '\t') {
            *out++ = '\\';
            *out++ = 't';
        }
        else if (c < 0x20) {
            memcpy (out, "\\u00", 4);
            out += 4;
            *out++ = hex[c >> 4];
            *out++ = hex[c & 0xf];
        }
        else
            *out++ = (char) c;
    }
    *out++ = '"';
    buf->size = (size_t) (out - buf->data);
    buf->data[buf->size] = 0;
}

//  Appends a C string as a JSON string, or null when TEXT is NULL.
static void
s_buf_json_or_null (s_buf_t *buf, const char *text)
{
    if (text)
        s_buf_json (buf, text, strlen (text));
    else
        s_buf_str (buf, "null");
}

//  ---------------------------------------------------------------------
//  Time, sleeps, randomness and hashing

//  Monotonic clock in milliseconds.
static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * AIGW_MOCK_MS_PER_S + ts.tv_nsec / AIGW_MOCK_NS_PER_MS;
}

//  Sleeps MS milliseconds (capped at AIGW_MOCK_DELAY_MAX_MS) in short slices
//  so a stopping server is never held up. Returns 0, or -1 if stopping.
static int
s_sleep_ms (aigw_mock_t *self, int ms)
{
    if (ms > AIGW_MOCK_DELAY_MAX_MS)
        ms = AIGW_MOCK_DELAY_MAX_MS;
    int64_t deadline = s_now_ms () + ms;
    while (!atomic_load_explicit (&self->stopping, memory_order_relaxed)) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            return 0;
        if (left > AIGW_MOCK_SLEEP_SLICE_MS)
            left = AIGW_MOCK_SLEEP_SLICE_MS;
        struct timespec ts = {0, (long) left * AIGW_MOCK_NS_PER_MS};
        nanosleep (&ts, NULL);
    }
    return -1;
}

//  A uniform double in [0, 1) from a per-thread xorshift64* generator
//  seeded from the clock, so the fail-rate draw takes no lock.
static double
s_random_unit (void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        state = ((uint64_t) ts.tv_sec * AIGW_MOCK_NS_PER_MS * AIGW_MOCK_MS_PER_S
                 + (uint64_t) ts.tv_nsec)
                ^ (uint64_t) (uintptr_t) &state;
        if (state == 0)
            state = AIGW_MOCK_SPLITMIX_GAMMA;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t x = state * AIGW_MOCK_XORSHIFT_MUL;
    return (double) (x >> AIGW_MOCK_UNIT_SHIFT) * AIGW_MOCK_UNIT_SCALE;
}

//  FNV-1a 64 of LEN bytes.
static uint64_t
s_hash (const char *text, size_t len)
{
    uint64_t hash = AIGW_MOCK_FNV_OFFSET;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char) text[i];
        hash *= AIGW_MOCK_FNV_PRIME;
    }
    return hash;
}

//  splitmix64 finaliser: spreads one 64-bit value into another.
static uint64_t
s_mix (uint64_t x)
{
    x += AIGW_MOCK_SPLITMIX_GAMMA;
    x = (x ^ (x >> 30)) * AIGW_MOCK_SPLITMIX_MUL1;
    x = (x ^ (x >> 27)) * AIGW_MOCK_SPLITMIX_MUL2;
    return x ^ (x >> 31);
}

//  Square root by Newton's method (keeps the mock free of libm).
static double
s_sqrt (double value)
{
    if (value <= 0)
        return 0;
    double root = value > 1 ? value : 1;
    for (int i = 0; i < AIGW_MOCK_SQRT_STEPS; i++)
        root = (root + value / root) / 2;
    return root;
}

//  Fills VECTOR with a unit-length embedding of TEXT's words: a bag of
//  words (ASCII letters and digits, lowercased), each hashed to one of the
//  dimensions with a sign (feature hashing), so texts that share most words
//  land close and unrelated ones near 0, as a real model's paraphrases do
//  (the semantic cache's tests need that). The same text always gives the
//  same vector; a text without a word falls back to a hash of the whole.
static void
s_embed (const char *text, size_t len, float vector[AIGW_MOCK_EMBED_DIMS])
{
    double values[AIGW_MOCK_EMBED_DIMS] = {0};
    double sum = 0;
    size_t at = 0;
    while (at < len) {
        char word[AIGW_MOCK_NUMBER_TEXT * 2];
        size_t n = 0;
        while (at < len && !isalnum ((unsigned char) text[at]))
            at++;
        while (at < len && isalnum ((unsigned char) text[at])) {
            if (n < sizeof word)
                word[n++] = (char) tolower ((unsigned char) text[at]);
            at++;
        }
        if (n == 0)
            break;
        uint64_t x = s_mix (s_hash (word, n));
        values[x % AIGW_MOCK_EMBED_DIMS] += (x >> 63) ? -1.0 : 1.0;
    }
    for (int i = 0; i < AIGW_MOCK_EMBED_DIMS; i++)
        sum += values[i] * values[i];
    if (sum == 0) {
        uint64_t hash = s_hash (text, len);
        for (int i = 0; i < AIGW_MOCK_EMBED_DIMS; i++) {
            uint64_t x = s_mix (hash + (uint64_t) i * AIGW_MOCK_SPLITMIX_GAMMA);
            values[i] = (double) (x >> AIGW_MOCK_UNIT_SHIFT) * AIGW_MOCK_UNIT_SCALE * 2 - 1;
            sum += values[i] * values[i];
        }
    }
    double norm = s_sqrt (sum);
    for (int i = 0; i < AIGW_MOCK_EMBED_DIMS; i++)
        vector[i] = (float) (norm > 0 ? values[i] / norm : 0);
}

//  Appends LEN bytes as standard base64 (with padding).
static void
s_buf_base64 (s_buf_t *buf, const unsigned char *bytes, size_t len)
{
    static const char alphabet[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        uint32_t triple = (uint32_t) bytes[i] << 16;
        if (i + 1 < len)
            triple |= (uint32_t) bytes[i + 1] << 8;
        if (i + 2 < len)
            triple |= bytes[i + 2];
        char quad[4] = {alphabet[(triple >> 18) & 63], alphabet[(triple >> 12) & 63],
                        i + 1 < len ? alphabet[(triple >> 6) & 63] : '=',
                        i + 2 < len ? alphabet[triple & 63] : '='};
        s_buf_add (buf, quad, sizeof quad);
    }
}

//  ---------------------------------------------------------------------
//  Text: words, tokens and test controls

//  Finds the next whitespace-separated word in TEXT[0..LEN) from *POS.
//  Returns true with its START and END, and moves *POS past it.
static bool
s_next_word (const char *text, size_t len, size_t *pos, size_t *start, size_t *end)
{
    size_t at = *pos;
    while (at < len && isspace ((unsigned char) text[at]))
        at++;
    if (at >= len)
        return false;
    *start = at;
    while (at < len && !isspace ((unsigned char) text[at]))
        at++;
    *end = at;
    *pos = at;
    return true;
}

//  Counts words: our deterministic stand-in for tokens.
static size_t
s_count_words (const char *text, size_t len)
{
    size_t pos = 0, start, end, count = 0;
    while (s_next_word (text, len, &pos, &start, &end))
        count++;
    return count;
}

//  Reads a decimal number at TEXT, clamped to MAX. Returns it, or -1 if
//  TEXT does not start with a digit.
static int
s_parse_digits (const char *text, int max)
{
    if (!isdigit ((unsigned char) *text))
        return -1;
    long long value = 0;
    for (; isdigit ((unsigned char) *text); text++)
        if (value <= max)
            value = value * 10 + (*text - '0');
    return value > max ? max : (int) value;
}

//  Applies every mock:NAME[=VALUE] control found in TEXT to REQ. Unknown
//  names and malformed values are ignored: the text is a prompt after all.
static void
s_controls_parse (const char *text, s_request_t *req)
{
    static const char marker[] = "mock:";
    const char *at = text;
    while ((at = strstr (at, marker)) != NULL) {
        at += sizeof marker - 1;
        size_t name_len = strspn (at, "abcdefghijklmnopqrstuvwxyz_");
        const char *after = at + name_len;
        int value = *after == '=' ? s_parse_digits (after + 1, AIGW_MOCK_DELAY_MAX_MS) : -1;
#define S_IS(name) (name_len == sizeof (name) - 1 && memcmp (at, name, name_len) == 0)
        if (S_IS ("latency") && value >= 0)
            req->latency_ms = value;
        else if (S_IS ("status") && value >= AIGW_MOCK_STATUS_MIN && value <= AIGW_MOCK_STATUS_MAX)
            req->status = value;
        else if (S_IS ("chunks") && value > 0)
            req->chunks = value < AIGW_MOCK_CHUNKS_MAX ? value : AIGW_MOCK_CHUNKS_MAX;
        else if (S_IS ("chunk_delay") && value >= 0)
            req->chunk_delay_ms = value;
        else if (S_IS ("die_after") && value >= 0)
            req->die_after = value < AIGW_MOCK_CHUNKS_MAX ? value : AIGW_MOCK_CHUNKS_MAX;
        else if (S_IS ("hang"))
            req->hang = true;
        else if (S_IS ("cached") && value >= 0)
            req->cached = value;
        else if (S_IS ("city") && *after == '=') {
            //  The tool call's city: a word of letters, digits and -_. (a
            //  secret, say, for the guardrails' tests of argument deltas).
            size_t len = strspn (after + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789-_.");
            if (len > 0 && len <= 100)
                snprintf (req->tool_args, sizeof req->tool_args,
                          "{\"city\":\"%.*s\",\"unit\":\"celsius\"}", (int) len, after + 1);
        }
#undef S_IS
        at = after;
    }
}

//  Appends the text of one message's CONTENT to OUT: a string as is, an
//  array of parts as its "text" parts joined by single spaces. Anything
//  else adds nothing.
static void
s_content_text (json_t *content, s_buf_t *out)
{
    if (json_is_string (content)) {
        s_buf_add (out, json_string_value (content), json_string_length (content));
        return;
    }
    if (!json_is_array (content))
        return;
    size_t index;
    json_t *part;
    bool first = true;
    json_array_foreach (content, index, part) {
        const char *type = json_string_value (json_object_get (part, "type"));
        json_t *text = json_object_get (part, "text");
        if (type && strcmp (type, "text") == 0 && json_is_string (text)) {
            if (!first)
                s_buf_add (out, " ", 1);
            s_buf_add (out, json_string_value (text), json_string_length (text));
            first = false;
        }
    }
}

//  Word count of one message's CONTENT (string or text parts).
static size_t
s_content_words (json_t *content)
{
    if (json_is_string (content))
        return s_count_words (json_string_value (content), json_string_length (content));
    size_t index, words = 0;
    json_t *part;
    if (json_is_array (content))
        json_array_foreach (content, index, part) {
            json_t *text = json_object_get (part, "text");
            if (json_is_string (text))
                words += s_count_words (json_string_value (text), json_string_length (text));
        }
    return words;
}

//  ---------------------------------------------------------------------
//  Answers

//  Reason phrase for STATUS.
static const char *
s_reason (int status)
{
    const char *text = mg_get_response_code_text (NULL, status);
    return text ? text : "Unknown";
}

//  Writes LEN bytes in one mg_write. Returns 0, or -1 if the client is gone.
static int
s_write (s_request_t *req, const char *bytes, size_t len)
{
    return mg_write (req->conn, bytes, len) == (int) len ? 0 : -1;
}

//  Sends BODY (built after its reserved head) as a complete answer with
//  STATUS, CONTENT_TYPE and EXTRA header lines (each ending in CRLF, or
//  NULL), headers and body in one write. Returns 0, or -1 if the client is
//  gone. A body that failed to build is answered with a 500.
static int
s_send (s_request_t *req, int status, const char *content_type, const char *extra, s_buf_t *body)
{
    static const char oom[] = "{\"error\":{\"message\":\"mock: answer too large\","
                              "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    const char *payload = body->data + body->head;
    size_t payload_len = body->size - body->head;
    if (body->failed) {
        status = 500;
        content_type = "application/json";
        extra = NULL;
        payload = oom;
        payload_len = sizeof oom - 1;
    }
    char header[AIGW_MOCK_HEADER_ROOM];
    int header_len = snprintf (header, sizeof header,
                               "HTTP/1.1 %d %s\r\n"
                               "Content-Type: %s\r\n"
                               "Content-Length: %zu\r\n"
                               "%s%s\r\n",
                               status, s_reason (status), content_type, payload_len,
                               extra ? extra : "", req->close ? "Connection: close\r\n" : "");
    //  Our own headers only: a longer line is a programming error
    assert (header_len > 0 && (size_t) header_len < sizeof header);
    if (payload == body->data + body->head && (size_t) header_len <= body->head) {
        char *start = body->data + body->head - header_len;
        memcpy (start, header, (size_t) header_len);
        return s_write (req, start, (size_t) header_len + payload_len);
    }
    //  The fallback body is static: two writes, the rare path
    if (s_write (req, header, (size_t) header_len) != 0)
        return -1;
    return s_write (req, payload, payload_len);
}

//  Sends ERROR in the request's route's shape: OpenAI's (and Azure's)
//  {"error":{"message","type","param","code"}}, else as aigw_mock_formats
//  shapes it. A 429 carries Retry-After. Returns 0 or -1.
static int
s_send_error (s_request_t *req, const s_error_t *error)
{
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    char extra[AIGW_MOCK_ERROR_TEXT] = "";
    if (error->status == 429)
        snprintf (extra, sizeof extra, "Retry-After: %d\r\n", req->retry_after_s);
    if (req->route != AIGW_MOCK_ROUTE_OPENAI && req->route != AIGW_MOCK_ROUTE_AZURE) {
        char *json = aigw_mock_error_body (req->route, error->status, error->message);
        if (json)
            s_buf_str (&body, json);
        else
            body.failed = true;
        free (json);
        if (req->route == AIGW_MOCK_ROUTE_BEDROCK) {
            size_t used = strlen (extra);
            snprintf (extra + used, sizeof extra - used, "x-amzn-ErrorType: %s\r\n",
                      aigw_mock_bedrock_error_type (error->status));
        }
        int rc = s_send (req, error->status, "application/json", extra, &body);
        s_buf_free (&body);
        return rc;
    }
    s_buf_str (&body, "{\"error\":{\"message\":");
    s_buf_json_or_null (&body, error->message);
    s_buf_str (&body, ",\"type\":");
    s_buf_json_or_null (&body, error->type);
    s_buf_str (&body, ",\"param\":");
    s_buf_json_or_null (&body, error->param);
    s_buf_str (&body, ",\"code\":");
    s_buf_json_or_null (&body, error->code);
    s_buf_str (&body, "}}");
    int rc = s_send (req, error->status, "application/json", extra, &body);
    s_buf_free (&body);
    return rc;
}

//  Fills ERROR. MESSAGE is a printf format; never pass a secret to it.
static void s_error_set (s_error_t *error, int status, const char *type, const char *code,
                         const char *param, const char *format, ...)
    __attribute__ ((format (printf, 6, 7)));

static void
s_error_set (s_error_t *error, int status, const char *type, const char *code, const char *param,
             const char *format, ...)
{
    error->status = status;
    error->type = type;
    error->code = code;
    error->param = param;
    va_list args;
    va_start (args, format);
    vsnprintf (error->message, sizeof error->message, format, args);
    va_end (args);
}

//  The error a mock:status=CODE asks for, typed the way OpenAI types it.
static void
s_error_for_status (s_error_t *error, int status)
{
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = NULL;
    if (status == 401)
        code = "invalid_api_key";
    else if (status == 403)
        type = "permission_error";
    else if (status == 404)
        code = "model_not_found";
    else if (status == 429) {
        type = "requests";
        code = "rate_limit_exceeded";
    }
    s_error_set (error, status, type, code, NULL, "mock: status %d requested (mock:status)",
                 status);
}

//  Holds the connection, sending nothing, until the client goes away, the
//  server stops or AIGW_MOCK_DELAY_MAX_MS pass. CivetWeb does not expose a
//  connection's socket, so we find it by its address pair and poll it for a
//  hang-up; we never read from it nor close it.
static void
s_hang (s_request_t *req)
{
    aigw_mock_t *self = req->self;
    const struct mg_request_info *info = mg_get_request_info (req->conn);
    int fd = -1;
    DIR *dir = opendir ("/proc/self/fd");
    if (dir) {
        struct dirent *entry;
        while (fd < 0 && (entry = readdir (dir)) != NULL) {
            if (!isdigit ((unsigned char) entry->d_name[0]))
                continue;
            int candidate = atoi (entry->d_name);
            struct sockaddr_storage peer, local;
            socklen_t peer_len = sizeof peer, local_len = sizeof local;
            if (candidate == dirfd (dir)
                || getpeername (candidate, (struct sockaddr *) &peer, &peer_len) != 0
                || getsockname (candidate, (struct sockaddr *) &local, &local_len) != 0
                || peer.ss_family != AF_INET || local.ss_family != AF_INET)
                continue;
            struct sockaddr_in *peer4 = (struct sockaddr_in *) &peer;
            struct sockaddr_in *local4 = (struct sockaddr_in *) &local;
            if (ntohs (peer4->sin_port) == info->remote_port
                && ntohs (local4->sin_port) == self->port)
                fd = candidate;
        }
        closedir (dir);
    }
    int64_t deadline = s_now_ms () + AIGW_MOCK_DELAY_MAX_MS;
    while (!atomic_load_explicit (&self->stopping, memory_order_relaxed)
           && s_now_ms () < deadline) {
        if (fd < 0) {
            s_sleep_ms (self, AIGW_MOCK_SLEEP_SLICE_MS);
            continue;
        }
        struct pollfd item = {fd, POLLIN | POLLRDHUP, 0};
        int ready = poll (&item, 1, AIGW_MOCK_SLEEP_SLICE_MS);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        if (item.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
            break;
        //  Readable without a hang-up: the client sent more. Peek to tell
        //  an orderly close from data, and back off so we do not spin.
        char byte;
        if (recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            break;
        s_sleep_ms (self, AIGW_MOCK_SLEEP_SLICE_MS);
    }
    mg_disable_connection_keep_alive (req->conn);
}

//  Reads the whole request body into BODY. Returns 0; -1 if the read
//  failed; -2 if the body is over AIGW_MOCK_BODY_MAX.
static int
s_read_body (struct mg_connection *conn, s_buf_t *body)
{
    const size_t step = AIGW_MOCK_BUF_INLINE / 2;
    while (true) {
        if (body->size - body->head > AIGW_MOCK_BODY_MAX)
            return -2;
        if (s_buf_reserve (body, step) != 0)
            return -1;
        int got = mg_read (conn, body->data + body->size, body->cap - body->size - 1);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        body->size += (size_t) got;
    }
    body->data[body->size] = 0;
    return 0;
}

//  Parses BODY as a JSON object. Returns it (caller owns it), or NULL with
//  ERROR set to the 400 to answer.
static json_t *
s_parse_object (s_buf_t *body, s_error_t *error)
{
    const char *text = body->data + body->head;
    size_t len = body->size - body->head;
    if (!aigw_json_depth_ok (text, len, AIGW_MOCK_JSON_DEPTH_MAX)) {
        s_error_set (error, 400, "invalid_request_error", NULL, NULL,
                     "JSON nests deeper than %d levels", AIGW_MOCK_JSON_DEPTH_MAX);
        return NULL;
    }
    json_error_t parse_error;
    json_t *root = json_loadb (text, len, 0, &parse_error);
    if (!root) {
        s_error_set (error, 400, "invalid_request_error", NULL, NULL,
                     "We could not parse the JSON body of your request: %s "
                     "(line %d, column %d)",
                     parse_error.text, parse_error.line, parse_error.column);
        return NULL;
    }
    if (!json_is_object (root)) {
        s_error_set (error, 400, "invalid_request_error", NULL, NULL,
                     "The request body must be a JSON object");
        json_decref (root);
        return NULL;
    }
    return root;
}

//  Checks the bearer key. Returns 0, or -1 with ERROR set to the 401.
static int
s_check_auth (s_request_t *req, s_error_t *error)
{
    const char *header = mg_get_header (req->conn, "Authorization");
    static const char scheme[] = "Bearer ";
    const char *key = NULL;
    if (header && strncasecmp (header, scheme, sizeof scheme - 1) == 0) {
        key = header + sizeof scheme - 1;
        while (*key == ' ')
            key++;
    }
    if (!key || !*key) {
        s_error_set (error, 401, "invalid_request_error", "invalid_api_key", NULL,
                     "You didn't provide an API key. Send it in the Authorization "
                     "header as 'Bearer YOUR_KEY'.");
        return -1;
    }
    if (req->self->api_key && strcmp (key, req->self->api_key) != 0) {
        s_error_set (error, 401, "invalid_request_error", "invalid_api_key", NULL,
                     "Incorrect API key provided.");
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  POST /v1/chat/completions

//  What one chat completion will say, shared by the plain and streamed forms
typedef struct {
    json_t *root;                        //  parsed request; owned
    const char *model;                   //  request model, echoed; in root
    bool stream;                         //  stream: true
    bool include_usage;                  //  stream_options.include_usage
    int max_tokens;                      //  max_tokens/max_completion_tokens, 0: none
    size_t prompt_tokens;                //  words across every message
    size_t completion_tokens;            //  words in content
    size_t cached_tokens;                //  of prompt_tokens, "read from a cache" (mock:cached)
    const char *finish_reason;           //  "stop" or "length"
    char id[AIGW_MOCK_NUMBER_TEXT * 2];  //  chatcmpl-mock-<N>
    long long created;                   //  Unix seconds
    const char *default_model;           //  model when the body names none (Azure), or NULL
    aigw_mock_ask_t tools;               //  tool to call or tool result to answer
} s_chat_t;

//  Validates the chat request in ROOT into CHAT and the controls of its
//  last user message into REQ; appends that message's text to USER_TEXT.
//  Returns 0, or -1 with ERROR set to the 400 to answer.
static int
s_chat_parse (s_chat_t *chat, s_request_t *req, s_buf_t *user_text, s_error_t *error)
{
    json_t *root = chat->root;
    json_t *model = json_object_get (root, "model");
    if (json_is_string (model) && json_string_length (model) > 0)
        chat->model = json_string_value (model);
    else if (chat->default_model)
        chat->model = chat->default_model;
    else {
        s_error_set (error, 400, "invalid_request_error", "missing_required_parameter", "model",
                     "you must provide a model parameter");
        return -1;
    }
    json_t *messages = json_object_get (root, "messages");
    if (!json_is_array (messages) || json_array_size (messages) == 0) {
        s_error_set (error, 400, "invalid_request_error", "missing_required_parameter", "messages",
                     "Missing required parameter: 'messages'.");
        return -1;
    }
    json_t *stream = json_object_get (root, "stream");
    if (stream && !json_is_boolean (stream) && !json_is_null (stream)) {
        s_error_set (error, 400, "invalid_request_error", "invalid_type", "stream",
                     "Invalid type for 'stream': expected a boolean.");
        return -1;
    }
    chat->stream = json_is_true (stream);
    json_t *options = json_object_get (root, "stream_options");
    chat->include_usage = json_is_true (json_object_get (options, "include_usage"));
    const char *limit_names[] = {"max_tokens", "max_completion_tokens"};
    for (size_t i = 0; i < sizeof limit_names / sizeof limit_names[0]; i++) {
        json_t *limit = json_object_get (root, limit_names[i]);
        if (!limit || json_is_null (limit))
            continue;
        if (!json_is_integer (limit) || json_integer_value (limit) < 1) {
            s_error_set (error, 400, "invalid_request_error", "invalid_value", limit_names[i],
                         "Invalid '%s': expected an integer of at least 1.", limit_names[i]);
            return -1;
        }
        json_int_t value = json_integer_value (limit);
        chat->max_tokens = value > INT_MAX ? INT_MAX : (int) value;
    }
    size_t index;
    json_t *message, *last_user = NULL;
    json_array_foreach (messages, index, message) {
        if (!json_is_object (message) || !json_is_string (json_object_get (message, "role"))) {
            s_error_set (error, 400, "invalid_request_error", "invalid_type", "messages",
                         "Invalid 'messages[%zu]': expected an object with a role.", index);
            return -1;
        }
        json_t *content = json_object_get (message, "content");
        chat->prompt_tokens += s_content_words (content);
        if (strcmp (json_string_value (json_object_get (message, "role")), "user") == 0)
            last_user = content;
    }
    if (last_user) {
        s_content_text (last_user, user_text);
        s_controls_parse (user_text->data + user_text->head, req);
    }
    chat->cached_tokens
        = (size_t) req->cached < chat->prompt_tokens ? (size_t) req->cached : chat->prompt_tokens;
    if (!req->cached && json_is_string (json_object_get (root, "prompt_cache_key")))
        chat->cached_tokens = chat->prompt_tokens / 2;
    aigw_mock_openai_tools (root, user_text->data + user_text->head, &chat->tools);
    return 0;
}

//  Builds the reply CONTENT: PREFIX and the LEN bytes of TEXT ("Mock reply
//  to: <user text>" or "tool said: <result>"), or with mock:chunks its words
//  cycled to exactly that many, then cut to max_tokens words.
static void
s_chat_content (s_chat_t *chat, s_request_t *req, const char *prefix, const char *user_text,
                size_t user_len, s_buf_t *content)
{
    s_buf_str (content, prefix);
    s_buf_add (content, user_text, user_len);
    if (req->chunks > 0 && !content->failed) {
        //  Cycle the words of the natural reply (always at least three)
        s_buf_t natural;
        s_buf_init (&natural, 0);
        s_buf_add (&natural, content->data + content->head, content->size - content->head);
        s_buf_clear (content);
        const char *text = natural.data;
        size_t pos = 0, start, end;
        for (int i = 0; i < req->chunks && !content->failed; i++) {
            if (!s_next_word (text, natural.size, &pos, &start, &end)) {
                pos = 0;
                s_next_word (text, natural.size, &pos, &start, &end);
            }
            if (i > 0)
                s_buf_add (content, " ", 1);
            s_buf_add (content, text + start, end - start);
        }
        if (natural.failed)
            content->failed = true;
        s_buf_free (&natural);
    }
    const char *text = content->data + content->head;
    size_t len = content->size - content->head;
    size_t pos = 0, start, end, words = 0;
    chat->finish_reason = "stop";
    while (s_next_word (text, len, &pos, &start, &end)) {
        if (chat->max_tokens > 0 && words == (size_t) chat->max_tokens) {
            //  Cut after the last allowed word and its trailing space
            size_t cut = start;
            while (cut > 0 && isspace ((unsigned char) text[cut - 1]))
                cut--;
            content->size = content->head + cut;
            content->data[content->size] = 0;
            chat->finish_reason = "length";
            break;
        }
        words++;
    }
    chat->completion_tokens = words;
}

//  Appends "usage":{...} for CHAT.
static void
s_chat_usage (s_buf_t *buf, s_chat_t *chat)
{
    s_buf_printf (buf,
                  "\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,"
                  "\"total_tokens\":%zu",
                  chat->prompt_tokens, chat->completion_tokens,
                  chat->prompt_tokens + chat->completion_tokens);
    if (chat->cached_tokens)
        s_buf_printf (buf, ",\"prompt_tokens_details\":{\"cached_tokens\":%zu}",
                      chat->cached_tokens);
    s_buf_printf (buf, "}");
}

//  Appends the fields every chat answer and chunk starts with.
static void
s_chat_preamble (s_buf_t *buf, s_chat_t *chat, const char *object)
{
    s_buf_printf (buf, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", chat->id,
                  object, chat->created);
    s_buf_json (buf, chat->model, strlen (chat->model));
    s_buf_str (buf, ",\"system_fingerprint\":\"" AIGW_MOCK_FINGERPRINT "\",");
}

//  Sends BODY (built after its reserved head) as a 200 of CONTENT_TYPE;
//  with mock:die_after, promises the whole length, sends half and drops the
//  connection. Returns 0 or -1.
static int
s_send_plain (s_request_t *req, const char *content_type, s_buf_t *body)
{
    if (req->die_after < 0 || body->failed)
        return s_send (req, 200, content_type, NULL, body);
    size_t body_len = body->size - body->head;
    char header[AIGW_MOCK_HEADER_ROOM];
    int header_len = snprintf (header, sizeof header,
                               "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                               "Content-Length: %zu\r\n\r\n",
                               content_type, body_len);
    mg_disable_connection_keep_alive (req->conn);
    return s_write (req, header, (size_t) header_len) == 0
               ? s_write (req, body->data + body->head, body_len / 2)
               : -1;
}

//  Answers the whole chat.completion at once. Returns 0 or -1.
static int
s_chat_send_plain (s_request_t *req, s_chat_t *chat, s_buf_t *content)
{
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    s_chat_preamble (&body, chat, "chat.completion");
    s_buf_str (&body, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                      "\"content\":");
    s_buf_json (&body, content->data + content->head, content->size - content->head);
    s_buf_printf (&body, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"%s\"}],",
                  chat->finish_reason);
    s_chat_usage (&body, chat);
    s_buf_str (&body, "}");
    int rc = s_send_plain (req, "application/json", &body);
    s_buf_free (&body);
    return rc;
}

//  Sends one SSE event held in EVENT (after its reserved head) as one
//  write: the response headers first when FIRST, the chunk framing when
//  chunked, and the stream's end when LAST. Returns 0 or -1.
static int
s_chat_send_event (s_request_t *req, s_buf_t *event, const char *content_type, bool first,
                   bool last)
{
    if (event->failed)
        return -1;
    size_t payload_len = event->size - event->head;
    char prefix[AIGW_MOCK_HEADER_ROOM];
    int prefix_len = 0;
    if (first)
        prefix_len
            = snprintf (prefix, sizeof prefix,
                        "HTTP/1.1 200 OK\r\n"
                        "Content-Type: %s\r\n"
                        "Cache-Control: no-cache\r\n"
                        "%s\r\n",
                        content_type,
                        req->chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    if (req->chunked) {
        prefix_len += snprintf (prefix + prefix_len, sizeof prefix - (size_t) prefix_len, "%zx\r\n",
                                payload_len);
        s_buf_str (event, last ? "\r\n0\r\n\r\n" : "\r\n");
        if (event->failed)
            return -1;
    }
    assert (prefix_len >= 0 && (size_t) prefix_len <= event->head);
    char *start = event->data + event->head - prefix_len;
    memcpy (start, prefix, (size_t) prefix_len);
    return s_write (req, start, (size_t) (event->size - event->head) + (size_t) prefix_len);
}

//  Content type of an SSE stream
static const char s_sse_type[] = "text/event-stream";

//  Streams the completion as chat.completion.chunk events: the role, one
//  chunk per word (the word with the whitespace after it), the finish
//  reason, the usage if asked, then [DONE]. Returns 0 or -1.
static int
s_chat_send_stream (s_request_t *req, s_chat_t *chat, s_buf_t *content)
{
    if (!req->chunked)
        mg_disable_connection_keep_alive (req->conn);
    const char *usage_null = chat->include_usage ? ",\"usage\":null" : "";
    s_buf_t event;
    s_buf_init (&event, AIGW_MOCK_HEADER_ROOM);
    s_buf_str (&event, "data: ");
    s_chat_preamble (&event, chat, "chat.completion.chunk");
    s_buf_printf (&event,
                  "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                  "\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
                  "\"finish_reason\":null}]%s}\n\n",
                  usage_null);
    int rc = s_chat_send_event (req, &event, s_sse_type, true, false);

    const char *text = content->data + content->head;
    size_t len = content->size - content->head;
    size_t pos = 0, start, end, sent = 0;
    bool more = s_next_word (text, len, &pos, &start, &end);
    start = 0;  //  the first chunk also carries any leading space
    while (rc == 0 && more) {
        if (req->die_after >= 0 && sent == (size_t) req->die_after) {
            mg_disable_connection_keep_alive (req->conn);
            s_buf_free (&event);
            return -1;
        }
        size_t next_start, next_end;
        size_t next_pos = pos;
        more = s_next_word (text, len, &next_pos, &next_start, &next_end);
        size_t piece_end = more ? next_start : len;
        if (req->chunk_delay_ms > 0 && s_sleep_ms (req->self, req->chunk_delay_ms) != 0)
            rc = -1;
        s_buf_clear (&event);
        s_buf_str (&event, "data: ");
        s_chat_preamble (&event, chat, "chat.completion.chunk");
        s_buf_str (&event, "\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        s_buf_json (&event, text + start, piece_end - start);
        s_buf_printf (&event, "},\"logprobs\":null,\"finish_reason\":null}]%s}\n\n", usage_null);
        if (rc == 0)
            rc = s_chat_send_event (req, &event, s_sse_type, false, false);
        sent++;
        start = next_start;
        pos = next_pos;
    }
    if (rc == 0 && req->die_after >= 0) {
        //  Fewer chunks than asked: die before the finish reason
        mg_disable_connection_keep_alive (req->conn);
        s_buf_free (&event);
        return -1;
    }
    if (rc == 0 && req->chunk_delay_ms > 0 && s_sleep_ms (req->self, req->chunk_delay_ms) != 0)
        rc = -1;
    if (rc == 0) {
        s_buf_clear (&event);
        s_buf_str (&event, "data: ");
        s_chat_preamble (&event, chat, "chat.completion.chunk");
        s_buf_printf (&event,
                      "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                      "\"finish_reason\":\"%s\"}]%s}\n\n",
                      chat->finish_reason, usage_null);
        if (chat->include_usage) {
            s_buf_str (&event, "data: ");
            s_chat_preamble (&event, chat, "chat.completion.chunk");
            s_buf_str (&event, "\"choices\":[],");
            s_chat_usage (&event, chat);
            s_buf_str (&event, "}\n\n");
        }
        s_buf_str (&event, "data: [DONE]\n\n");
        rc = s_chat_send_event (req, &event, s_sse_type, false, true);
    }
    if (rc != 0)
        mg_disable_connection_keep_alive (req->conn);
    s_buf_free (&event);
    return rc;
}

//  Sends REPLY as ROUTE's stream frames, paced and cut as the OpenAI
//  stream is: mock:chunk_delay before each content frame and the first
//  tail frame; mock:die_after=N drops the connection after N content
//  frames (or before the tail), Bedrock sending an exception frame first.
//  Returns 0 or -1.
static int
s_send_frames (s_request_t *req, int route, const aigw_mock_reply_t *reply)
{
    aigw_mock_frames_t *frames = aigw_mock_frames_new (route, reply);
    if (!frames) {
        s_error_t error;
        s_error_set (&error, 500, "server_error", NULL, NULL, "mock: out of memory");
        return s_send_error (req, &error);
    }
    if (!req->chunked)
        mg_disable_connection_keep_alive (req->conn);
    const char *content_type
        = route == AIGW_MOCK_ROUTE_BEDROCK ? "application/vnd.amazon.eventstream" : s_sse_type;
    s_buf_t event;
    s_buf_init (&event, AIGW_MOCK_HEADER_ROOM);
    size_t count = aigw_mock_frames_size (frames), sent = 0;
    bool started = false, tail = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        size_t len;
        int kind;
        const unsigned char *frame = aigw_mock_frames_get (frames, i, &len, &kind);
        bool paced = kind == AIGW_MOCK_FRAME_CONTENT || (kind == AIGW_MOCK_FRAME_TAIL && !tail);
        if (paced && req->die_after >= 0
            && (kind != AIGW_MOCK_FRAME_CONTENT || sent == (size_t) req->die_after)) {
            unsigned char *exception = NULL;
            size_t exception_len = 0;
            if (route == AIGW_MOCK_ROUTE_BEDROCK
                && aigw_mock_bedrock_exception ("internalServerException",
                                                "mock: stream cut (mock:die_after)", &exception,
                                                &exception_len)
                       == 0) {
                s_buf_clear (&event);
                s_buf_add (&event, exception, exception_len);
                s_chat_send_event (req, &event, content_type, !started, false);
            }
            free (exception);
            rc = -1;
            break;
        }
        if (paced && req->chunk_delay_ms > 0 && s_sleep_ms (req->self, req->chunk_delay_ms) != 0)
            rc = -1;
        tail = tail || kind == AIGW_MOCK_FRAME_TAIL;
        s_buf_clear (&event);
        s_buf_add (&event, frame, len);
        if (rc == 0)
            rc = s_chat_send_event (req, &event, content_type, !started, i + 1 == count);
        started = true;
        sent += kind == AIGW_MOCK_FRAME_CONTENT;
    }
    if (rc != 0)
        mg_disable_connection_keep_alive (req->conn);
    s_buf_free (&event);
    aigw_mock_frames_destroy (&frames);
    return rc;
}

//  Appends Gemini's SSE stream for REPLY to BODY as the JSON array
//  streamGenerateContent answers without alt=sse: each event's data.
static void
s_gemini_array (const aigw_mock_reply_t *reply, s_buf_t *body)
{
    static const char data[] = "data: ";
    aigw_mock_frames_t *frames = aigw_mock_frames_new (AIGW_MOCK_ROUTE_GEMINI, reply);
    if (!frames) {
        body->failed = true;
        return;
    }
    s_buf_str (body, "[");
    for (size_t i = 0; i < aigw_mock_frames_size (frames); i++) {
        size_t len;
        int kind;
        const char *frame = (const char *) aigw_mock_frames_get (frames, i, &len, &kind);
        //  Every Gemini frame is "data: JSON\r\n\r\n"
        size_t skip = sizeof data - 1, trail = 4;
        if (len > skip + trail) {
            s_buf_str (body, i ? "," : "");
            s_buf_add (body, frame + skip, len - skip - trail);
        }
    }
    s_buf_str (body, "]");
    aigw_mock_frames_destroy (&frames);
}

//  Answers REPLY in ROUTE's format, streamed when STREAM. Returns 0 or -1.
static int
s_send_reply (s_request_t *req, int route, const aigw_mock_reply_t *reply, bool stream)
{
    if (stream && !req->json_stream)
        return s_send_frames (req, route, reply);
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    if (stream)
        s_gemini_array (reply, &body);
    else {
        size_t len = 0;
        char *json = aigw_mock_reply_body (route, reply, &len);
        if (json)
            s_buf_add (&body, json, len);
        else
            body.failed = true;
        free (json);
    }
    int rc = s_send_plain (req, "application/json", &body);
    s_buf_free (&body);
    return rc;
}

//  Next answer number, for ids.
static unsigned long long
s_next_id (aigw_mock_t *self)
{
    return (unsigned long long) atomic_fetch_add_explicit (&self->next_id, 1, memory_order_relaxed)
           + 1;
}

//  Builds CONTENT for a chat CHAT asks: a tool result's answer, or the
//  reply to USER_TEXT (LEN bytes). A tool call needs no content: it sets
//  the finish reason and token count only.
static void
s_chat_answer_text (s_chat_t *chat, s_request_t *req, const char *user_text, size_t len,
                    s_buf_t *content)
{
    if (chat->tools.tool_name) {
        chat->finish_reason = "tool_calls";
        chat->completion_tokens = AIGW_MOCK_TOOL_TOKENS;
    }
    else if (chat->tools.tool_result)
        s_chat_content (chat, req, AIGW_MOCK_TOOL_SAID, chat->tools.tool_result,
                        strlen (chat->tools.tool_result), content);
    else
        s_chat_content (chat, req, AIGW_MOCK_REPLY_PREFIX, user_text, len, content);
}

//  True with a share of PPM per million.
static bool
s_draw (int ppm)
{
    return ppm > 0 && s_random_unit () * AIGW_MOCK_PPM < ppm;
}

//  Holds the reply per the request's controls and its route's injection:
//  latency, hang, forced status, injected 429 and failure. Returns 1 if the
//  request is answered (or abandoned) already, 0 to go on and answer it.
static int
s_before_answer (s_request_t *req, s_error_t *error)
{
    aigw_mock_t *self = req->self;
    s_inject_t *inject = &self->inject[req->route];
    int latency = req->latency_ms;
    if (latency < 0)
        latency = atomic_load_explicit (&inject->latency_ms, memory_order_relaxed);
    if (latency < 0)
        latency = self->latency_ms;
    if (latency > 0 && s_sleep_ms (self, latency) != 0) {
        mg_disable_connection_keep_alive (req->conn);
        return 1;
    }
    if (error->status) {
        s_send_error (req, error);
        return 1;
    }
    if (req->hang) {
        s_hang (req);
        return 1;
    }
    if (req->status) {
        s_error_for_status (error, req->status);
        s_send_error (req, error);
        return 1;
    }
    if (s_draw (atomic_load_explicit (&inject->rate429_ppm, memory_order_relaxed))) {
        req->retry_after_s = atomic_load_explicit (&inject->retry_after_s, memory_order_relaxed);
        s_error_set (error, 429, "requests", "rate_limit_exceeded", NULL,
                     "mock: injected rate limit (route %s)", aigw_mock_route_name (req->route));
        s_send_error (req, error);
        return 1;
    }
    if (s_draw (atomic_load_explicit (&inject->fail_ppm, memory_order_relaxed))) {
        int status = atomic_load_explicit (&inject->fail_status, memory_order_relaxed);
        s_error_for_status (error, status);
        snprintf (error->message, sizeof error->message, "mock failure (route %s)",
                  aigw_mock_route_name (req->route));
        s_send_error (req, error);
        return 1;
    }
    if (self->fail_rate > 0 && s_random_unit () < self->fail_rate) {
        s_error_set (error, 500, "server_error", NULL, NULL, "mock failure");
        s_send_error (req, error);
        return 1;
    }
    return 0;
}

//  Answers POST /v1/chat/completions (Azure: .../chat/completions, where
//  the body may leave the model to DEFAULT_MODEL, the deployment).
//  Returns the status for the log.
static int
s_handle_chat (s_request_t *req, s_buf_t *body, s_error_t *error, const char *default_model)
{
    aigw_mock_t *self = req->self;
    atomic_fetch_add_explicit (&self->chat, 1, memory_order_relaxed);
    s_chat_t chat = {.created = (long long) time (NULL), .default_model = default_model};
    s_buf_t user_text;
    s_buf_init (&user_text, 0);
    if (!error->status) {
        chat.root = s_parse_object (body, error);
        if (chat.root && s_chat_parse (&chat, req, &user_text, error) == 0 && chat.stream)
            atomic_fetch_add_explicit (&self->stream, 1, memory_order_relaxed);
    }
    int status = 200;
    if (s_before_answer (req, error))
        status = error->status ? error->status : AIGW_MOCK_STATUS_GONE;
    else {
        unsigned long long number = s_next_id (self);
        snprintf (chat.id, sizeof chat.id, "chatcmpl-mock-%llu", number);
        s_buf_t content;
        s_buf_init (&content, 0);
        s_chat_answer_text (&chat, req, user_text.data + user_text.head,
                            user_text.size - user_text.head, &content);
        if (chat.tools.tool_name) {
            //  Tool calls take the formats module's (slower) encoder
            char tool_id[AIGW_MOCK_NUMBER_TEXT * 2];
            snprintf (tool_id, sizeof tool_id, "call_mock_%llu", number);
            aigw_mock_reply_t reply = {
                .id = chat.id,
                .model = chat.model,
                .created = chat.created,
                .text = "",
                .tool_name = chat.tools.tool_name,
                .tool_id = tool_id,
                .tool_args = req->tool_args[0] ? req->tool_args : NULL,
                .finish = chat.finish_reason,
                .prompt_tokens = chat.prompt_tokens,
                .completion_tokens = chat.completion_tokens,
                .cached_tokens = chat.cached_tokens,
                .include_usage = chat.include_usage,
            };
            s_send_reply (req, AIGW_MOCK_ROUTE_OPENAI, &reply, chat.stream);
        }
        else if (chat.stream)
            s_chat_send_stream (req, &chat, &content);
        else
            s_chat_send_plain (req, &chat, &content);
        s_buf_free (&content);
    }
    s_buf_free (&user_text);
    aigw_mock_ask_free (&chat.tools);
    json_decref (chat.root);
    return status;
}

//  True when BODY carries prompt-cache marks in ROUTE's terms: Anthropic's
//  cache_control, Bedrock's cachePoint blocks.
static bool
s_cache_marked (int route, const s_buf_t *body)
{
    const char *mark = route == AIGW_MOCK_ROUTE_ANTHROPIC ? "\"cache_control\""
                       : route == AIGW_MOCK_ROUTE_BEDROCK ? "\"cachePoint\""
                                                          : NULL;
    size_t len = body->size - body->head;
    return mark && len && memmem (body->data + body->head, len, mark, strlen (mark)) != NULL;
}

//  Checks a Bedrock CountTokens body: input.converse holds a Converse
//  request of the members ConverseTokensRequest takes. Returns the
//  request, or NULL with ERR.
static json_t *
s_bedrock_count_input (json_t *root, char *err, size_t err_size)
{
    static const char *members[]
        = {"messages", "system", "toolConfig", "additionalModelRequestFields"};
    json_t *input = json_object_get (root, "input");
    json_t *converse = json_object_get (input, "converse");
    if (!json_is_object (converse) || json_object_size (input) != 1) {
        snprintf (err, err_size, "input: must hold exactly one member, converse");
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach (converse, key, value) {
        size_t i = 0;
        while (i < sizeof members / sizeof members[0] && strcmp (key, members[i]) != 0)
            i++;
        if (i == sizeof members / sizeof members[0]) {
            snprintf (err, err_size, "input.converse.%.64s: not a member of ConverseTokensRequest",
                      key);
            return NULL;
        }
    }
    return converse;
}

//  Answers a count_tokens request in ROUTE's terms (Anthropic's
//  {"input_tokens"}, Gemini's {"totalTokens"}, Bedrock's {"inputTokens"}):
//  the words of the prompt, as a chat answer would count them. Returns the
//  status for the log.
static int
s_handle_count_tokens (s_request_t *req, s_buf_t *body, s_error_t *error, const char *model)
{
    json_t *root = error->status ? NULL : s_parse_object (body, error);
    //  Gemini wraps the request it counts in generateContentRequest,
    //  Bedrock in input.converse.
    json_t *inner = json_object_get (root, "generateContentRequest");
    aigw_mock_ask_t ask = {0};
    char err[AIGW_MOCK_ERROR_TEXT];
    bool bedrock = req->route == AIGW_MOCK_ROUTE_BEDROCK;
    if (root && req->route == AIGW_MOCK_ROUTE_ANTHROPIC && !json_object_get (root, "max_tokens"))
        json_object_set_new (root, "max_tokens", json_integer (1));
    if (root && bedrock && !(inner = s_bedrock_count_input (root, err, sizeof err)))
        s_error_set (error, 400, "invalid_request_error", NULL, NULL, "%s", err);
    else if (root
             && aigw_mock_ask_parse (req->route, json_is_object (inner) ? inner : root, model,
                                     false, &ask, err, sizeof err)
                    != 0)
        s_error_set (error, 400, "invalid_request_error", NULL, NULL, "%s", err);
    else if (root)
        s_controls_parse (ask.user_text, req);
    int status = 200;
    if (s_before_answer (req, error))
        status = error->status ? error->status : AIGW_MOCK_STATUS_GONE;
    else {
        s_buf_t answer;
        s_buf_init (&answer, AIGW_MOCK_HEADER_ROOM);
        s_buf_printf (&answer,
                      req->route == AIGW_MOCK_ROUTE_GEMINI ? "{\"totalTokens\":%zu}"
                      : bedrock                            ? "{\"inputTokens\":%zu}"
                                                           : "{\"input_tokens\":%zu}",
                      ask.prompt_tokens);
        s_send (req, 200, "application/json", NULL, &answer);
        s_buf_free (&answer);
    }
    aigw_mock_ask_free (&ask);
    json_decref (root);
    return status;
}

//  Answers an Anthropic, Gemini, Bedrock or Responses chat: MODEL and
//  STREAM come from the path for Gemini and Bedrock. Returns the status for the log.
static int
s_handle_format_chat (s_request_t *req, s_buf_t *body, s_error_t *error, const char *model,
                      bool stream)
{
    aigw_mock_t *self = req->self;
    atomic_fetch_add_explicit (&self->chat, 1, memory_order_relaxed);
    s_chat_t chat = {.created = (long long) time (NULL)};
    if (!error->status) {
        chat.root = s_parse_object (body, error);
        char err[AIGW_MOCK_ERROR_TEXT];
        if (chat.root
            && aigw_mock_ask_parse (req->route, chat.root, model, stream, &chat.tools, err,
                                    sizeof err)
                   != 0)
            s_error_set (error, 400, "invalid_request_error", NULL, NULL, "%s", err);
        else if (chat.root) {
            s_controls_parse (chat.tools.user_text, req);
            if (chat.tools.stream)
                atomic_fetch_add_explicit (&self->stream, 1, memory_order_relaxed);
        }
    }
    int status = 200;
    if (s_before_answer (req, error))
        status = error->status ? error->status : AIGW_MOCK_STATUS_GONE;
    else {
        unsigned long long number = s_next_id (self);
        //  Ids look like each provider's, in aigw_mock_route_t order
        static const char *id_prefixes[AIGW_MOCK_ROUTE_COUNT]
            = {"chatcmpl-mock-", "msg_mock_", "mock-", "mock-", "chatcmpl-mock-", "resp_mock_"};
        static const char *tool_prefixes[AIGW_MOCK_ROUTE_COUNT] = {
            "call_mock_", "toolu_mock_", "call_mock_", "tooluse_mock_", "call_mock_", "call_mock_"};
        char tool_id[AIGW_MOCK_NUMBER_TEXT * 2];
        snprintf (chat.id, sizeof chat.id, "%s%llu", id_prefixes[req->route], number);
        snprintf (tool_id, sizeof tool_id, "%s%llu", tool_prefixes[req->route], number);
        chat.max_tokens = chat.tools.max_tokens;
        chat.prompt_tokens = chat.tools.prompt_tokens;
        chat.cached_tokens
            = (size_t) req->cached < chat.prompt_tokens ? (size_t) req->cached : chat.prompt_tokens;
        size_t written = 0;
        if (!req->cached && s_cache_marked (req->route, body)) {
            chat.cached_tokens = chat.prompt_tokens / 2;
            written = chat.prompt_tokens / 4;
        }
        s_buf_t content;
        s_buf_init (&content, 0);
        s_chat_answer_text (&chat, req, chat.tools.user_text, strlen (chat.tools.user_text),
                            &content);
        aigw_mock_reply_t reply = {
            .id = chat.id,
            .model = chat.tools.model,
            .created = chat.created,
            .text = content.data + content.head,
            .text_len = content.size - content.head,
            .tool_name = chat.tools.tool_name,
            .tool_id = tool_id,
            .tool_args = req->tool_args[0] ? req->tool_args : NULL,
            .finish = chat.finish_reason,
            .prompt_tokens = chat.prompt_tokens,
            .completion_tokens = chat.completion_tokens,
            .cached_tokens = chat.cached_tokens,
            .cache_write_tokens = written,
        };
        if (content.failed) {
            s_error_set (error, 500, "server_error", NULL, NULL, "mock: answer too large");
            s_send_error (req, error);
            status = 500;
        }
        else
            s_send_reply (req, req->route, &reply, chat.tools.stream);
        s_buf_free (&content);
    }
    aigw_mock_ask_free (&chat.tools);
    json_decref (chat.root);
    return status;
}

//  ---------------------------------------------------------------------
//  POST /v1/embeddings, GET /v1/models

//  Appends the bytes an embeddings INPUT item stands for to TEXT: a string
//  as is, a token array as its compact JSON. Returns its token count, or -1
//  if ITEM is neither.
static long
s_embed_item_text (json_t *item, s_buf_t *text)
{
    s_buf_clear (text);
    if (json_is_string (item)) {
        s_buf_add (text, json_string_value (item), json_string_length (item));
        return (long) s_count_words (json_string_value (item), json_string_length (item));
    }
    if (!json_is_array (item) || json_array_size (item) == 0)
        return -1;
    size_t index;
    json_t *token;
    json_array_foreach (item, index, token)
        if (!json_is_integer (token))
            return -1;
    char *dump = json_dumps (item, JSON_COMPACT);
    if (!dump)
        return -1;
    s_buf_str (text, dump);
    free (dump);
    return (long) json_array_size (item);
}

//  Answers POST /v1/embeddings (Azure: .../embeddings, where the body may
//  leave the model to DEFAULT_MODEL, the deployment). Returns the status.
static int
s_handle_embeddings (s_request_t *req, s_buf_t *body, s_error_t *error, const char *default_model)
{
    aigw_mock_t *self = req->self;
    atomic_fetch_add_explicit (&self->embeddings, 1, memory_order_relaxed);
    json_t *root = NULL, *inputs = NULL;
    const char *model = NULL;
    bool base64 = false;
    if (!error->status)
        root = s_parse_object (body, error);
    if (root) {
        json_t *input = json_object_get (root, "input");
        model = json_string_value (json_object_get (root, "model"));
        if ((!model || !*model) && default_model)
            model = default_model;
        const char *format = json_string_value (json_object_get (root, "encoding_format"));
        base64 = format && strcmp (format, "base64") == 0;
        //  A single string or token array is a one-item list
        bool single = json_is_string (input)
                      || (json_is_array (input) && json_array_size (input) > 0
                          && json_is_integer (json_array_get (input, 0)));
        inputs = single ? json_pack ("[O]", input) : json_incref (input);
        if (!model || !*model)
            s_error_set (error, 400, "invalid_request_error", "missing_required_parameter", "model",
                         "you must provide a model parameter");
        else if (!json_is_array (inputs) || json_array_size (inputs) == 0)
            s_error_set (error, 400, "invalid_request_error", "missing_required_parameter", "input",
                         "Missing required parameter: 'input'.");
        else if (format && !base64 && strcmp (format, "float") != 0)
            s_error_set (error, 400, "invalid_request_error", "invalid_value", "encoding_format",
                         "encoding_format must be 'float' or 'base64'.");
        size_t index;
        json_t *item;
        if (!error->status)
            json_array_foreach (inputs, index, item)
                if (json_is_string (item))
                    s_controls_parse (json_string_value (item), req);
    }
    int status = 200;
    s_buf_t text;
    s_buf_init (&text, 0);
    if (s_before_answer (req, error))
        status = error->status ? error->status : AIGW_MOCK_STATUS_GONE;
    else {
        s_buf_t answer;
        s_buf_init (&answer, AIGW_MOCK_HEADER_ROOM);
        s_buf_str (&answer, "{\"object\":\"list\",\"data\":[");
        size_t index, tokens = 0;
        json_t *item;
        json_array_foreach (inputs, index, item) {
            long count = s_embed_item_text (item, &text);
            if (count < 0) {
                s_error_set (error, 400, "invalid_request_error", "invalid_type", "input",
                             "Invalid 'input[%zu]': expected a string or token array.", index);
                break;
            }
            tokens += (size_t) count;
            float vector[AIGW_MOCK_EMBED_DIMS];
            s_embed (text.data, text.size, vector);
            s_buf_printf (&answer, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":",
                          index ? "," : "", index);
            if (base64) {
                //  Little-endian float32s, as OpenAI encodes them
                unsigned char bytes[sizeof vector];
                memcpy (bytes, vector, sizeof vector);
                s_buf_str (&answer, "\"");
                s_buf_base64 (&answer, bytes, sizeof bytes);
                s_buf_str (&answer, "\"");
            }
            else
                for (int i = 0; i < AIGW_MOCK_EMBED_DIMS; i++)
                    s_buf_printf (&answer, "%c%.9g", i ? ',' : '[', (double) vector[i]);
            s_buf_str (&answer, base64 ? "}" : "]}");
        }
        s_buf_str (&answer, "],\"model\":");
        s_buf_json (&answer, model, strlen (model));
        s_buf_printf (&answer, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", tokens,
                      tokens);
        if (error->status) {
            status = error->status;
            s_send_error (req, error);
        }
        else
            s_send (req, 200, "application/json", NULL, &answer);
        s_buf_free (&answer);
    }
    s_buf_free (&text);
    json_decref (inputs);
    json_decref (root);
    return status;
}

//  Answers Gemini's :embedContent, or :batchEmbedContents when BATCH.
//  Returns the status for the log.
static int
s_handle_gemini_embed (s_request_t *req, s_buf_t *body, s_error_t *error, bool batch)
{
    aigw_mock_t *self = req->self;
    atomic_fetch_add_explicit (&self->embeddings, 1, memory_order_relaxed);
    json_t *root = NULL, *texts = NULL;
    if (!error->status)
        root = s_parse_object (body, error);
    if (root) {
        char err[AIGW_MOCK_ERROR_TEXT];
        texts = aigw_mock_gemini_embed_texts (root, batch, err, sizeof err);
        if (!texts)
            s_error_set (error, 400, "invalid_request_error", NULL, NULL, "%s", err);
        size_t index;
        json_t *text;
        json_array_foreach (texts, index, text)
            s_controls_parse (json_string_value (text), req);
    }
    int status = 200;
    if (s_before_answer (req, error))
        status = error->status ? error->status : AIGW_MOCK_STATUS_GONE;
    else {
        size_t count = json_array_size (texts);
        float *vectors = calloc (count, sizeof (float) * AIGW_MOCK_EMBED_DIMS);
        size_t index;
        json_t *text;
        if (vectors)
            json_array_foreach (texts, index, text)
                s_embed (json_string_value (text), json_string_length (text),
                         vectors + index * AIGW_MOCK_EMBED_DIMS);
        char *json = vectors
                         ? aigw_mock_gemini_embed_body (vectors, count, AIGW_MOCK_EMBED_DIMS, batch)
                         : NULL;
        s_buf_t answer;
        s_buf_init (&answer, AIGW_MOCK_HEADER_ROOM);
        if (json)
            s_buf_str (&answer, json);
        else
            answer.failed = true;
        s_send (req, 200, "application/json", NULL, &answer);
        s_buf_free (&answer);
        free (json);
        free (vectors);
    }
    json_decref (texts);
    json_decref (root);
    return status;
}

//  Appends one model object.
static void
s_model_object (s_buf_t *buf, const char *id)
{
    s_buf_str (buf, "{\"id\":");
    s_buf_json (buf, id, strlen (id));
    s_buf_printf (buf, ",\"object\":\"model\",\"created\":%d,\"owned_by\":\"aigw-mock\"}",
                  AIGW_MOCK_MODEL_CREATED);
}

//  Answers GET /v1/models and GET /v1/models/ID. Returns the status.
static int
s_handle_models (s_request_t *req, const char *id, s_error_t *error)
{
    if (s_before_answer (req, error))
        return error->status ? error->status : AIGW_MOCK_STATUS_GONE;
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    int status = 200;
    if (id) {
        size_t i = 0;
        while (i < AIGW_MOCK_MODEL_COUNT && strcmp (s_models[i], id) != 0)
            i++;
        if (i < AIGW_MOCK_MODEL_COUNT)
            s_model_object (&body, s_models[i]);
        else {
            s_error_set (error, 404, "invalid_request_error", "model_not_found", "model",
                         "The model '%.64s' does not exist", id);
            status = 404;
        }
    }
    else {
        s_buf_str (&body, "{\"object\":\"list\",\"data\":[");
        for (size_t i = 0; i < AIGW_MOCK_MODEL_COUNT; i++) {
            if (i)
                s_buf_str (&body, ",");
            s_model_object (&body, s_models[i]);
        }
        s_buf_str (&body, "]}");
    }
    if (status == 200)
        s_send (req, status, "application/json", NULL, &body);
    else
        s_send_error (req, error);
    s_buf_free (&body);
    return status;
}

//  ---------------------------------------------------------------------
//  Per-route injection

static int s_parse_int (const char *value, long min, long max, int *out);

//  The settings that inject nothing.
static s_inject_settings_t
s_inject_none (void)
{
    return (s_inject_settings_t){-1, 0, AIGW_MOCK_FAIL_STATUS, 0, AIGW_MOCK_RETRY_AFTER_S};
}

//  Stores SETTINGS as ROUTE's injection on SELF.
static void
s_inject_store (aigw_mock_t *self, int route, const s_inject_settings_t *settings)
{
    s_inject_t *inject = &self->inject[route];
    atomic_store (&inject->latency_ms, settings->latency_ms);
    atomic_store (&inject->fail_ppm, (int) (settings->fail_rate * AIGW_MOCK_PPM + 0.5));
    atomic_store (&inject->fail_status, settings->fail_status);
    atomic_store (&inject->rate429_ppm, (int) (settings->rate429 * AIGW_MOCK_PPM + 0.5));
    atomic_store (&inject->retry_after_s, settings->retry_after_s);
}

//  Parses TEXT, all of it, as a share from 0 to 1. Returns 0 or -1.
static int
s_parse_share (const char *text, double *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || *end || !(value >= 0) || !(value <= 1))
        return -1;
    *out = value;
    return 0;
}

//  Parses a --route SPEC, "NAME[:latency=MS,fail=RATE,status=CODE,
//  rate429=RATE,retry_after=S]", into *ROUTE and SETTINGS (what it leaves
//  out injects nothing). Returns 0, or -1 with ERR saying why.
static int
s_route_spec_parse (const char *spec, int *route, s_inject_settings_t *settings, char *err,
                    size_t err_size)
{
    const char *colon = strchr (spec, ':');
    int name_len = (int) (colon ? (size_t) (colon - spec) : strlen (spec));
    *route = aigw_mock_route_lookup (spec, (size_t) name_len);
    *settings = s_inject_none ();
    if (*route < 0) {
        snprintf (err, err_size,
                  "unknown route '%.*s' (expected openai, anthropic, gemini, bedrock or azure)",
                  name_len, spec);
        return -1;
    }
    if (!colon)
        return 0;
    char copy[AIGW_MOCK_ERROR_TEXT];
    if (strlen (colon + 1) >= sizeof copy) {
        snprintf (err, err_size, "route settings too long");
        return -1;
    }
    strcpy (copy, colon + 1);
    char *saved = NULL;
    for (char *item = strtok_r (copy, ",", &saved); item; item = strtok_r (NULL, ",", &saved)) {
        char *value = strchr (item, '=');
        if (value)
            *value++ = 0;
        int rc = -1;
        char expected[AIGW_MOCK_NUMBER_TEXT * 2] = "a share from 0 to 1";
        if (strcmp (item, "latency") == 0) {
            rc = s_parse_int (value, 0, AIGW_MOCK_DELAY_MAX_MS, &settings->latency_ms);
            snprintf (expected, sizeof expected, "milliseconds from 0 to %d",
                      AIGW_MOCK_DELAY_MAX_MS);
        }
        else if (strcmp (item, "fail") == 0)
            rc = s_parse_share (value, &settings->fail_rate);
        else if (strcmp (item, "status") == 0) {
            rc = s_parse_int (value, AIGW_MOCK_STATUS_MIN, AIGW_MOCK_STATUS_MAX,
                              &settings->fail_status);
            snprintf (expected, sizeof expected, "an HTTP status from %d to %d",
                      AIGW_MOCK_STATUS_MIN, AIGW_MOCK_STATUS_MAX);
        }
        else if (strcmp (item, "rate429") == 0)
            rc = s_parse_share (value, &settings->rate429);
        else if (strcmp (item, "retry_after") == 0) {
            rc = s_parse_int (value, 0, AIGW_MOCK_RETRY_AFTER_MAX, &settings->retry_after_s);
            snprintf (expected, sizeof expected, "seconds from 0 to %d", AIGW_MOCK_RETRY_AFTER_MAX);
        }
        else {
            snprintf (err, err_size,
                      "unknown setting '%.64s' (expected latency, fail, status, rate429, "
                      "retry_after)",
                      item);
            return -1;
        }
        if (rc != 0) {
            snprintf (err, err_size, "bad value '%.64s' for %s: expected %s", value ? value : "",
                      item, expected);
            return -1;
        }
    }
    return 0;
}

//  Parses a POST /mock/config body ROOT into *ROUTE and SETTINGS (fields
//  left out inject nothing). Returns 0, or -1 with ERR saying why.
static int
s_config_parse (json_t *root, int *route, s_inject_settings_t *settings, char *err, size_t err_size)
{
    *route = -1;
    *settings = s_inject_none ();
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value) {
        bool ok;
        if (strcmp (key, "route") == 0) {
            const char *name = json_string_value (value);
            *route = name ? aigw_mock_route_lookup (name, strlen (name)) : -1;
            ok = *route >= 0;
        }
        else if (strcmp (key, "latency_ms") == 0) {
            ok = json_is_null (value)
                 || (json_is_integer (value) && json_integer_value (value) >= 0
                     && json_integer_value (value) <= AIGW_MOCK_DELAY_MAX_MS);
            settings->latency_ms
                = ok && !json_is_null (value) ? (int) json_integer_value (value) : -1;
        }
        else if (strcmp (key, "fail_rate") == 0 || strcmp (key, "rate429") == 0) {
            double share = json_number_value (value);
            ok = json_is_number (value) && share >= 0 && share <= 1;
            *(key[0] == 'f' ? &settings->fail_rate : &settings->rate429) = share;
        }
        else if (strcmp (key, "fail_status") == 0) {
            ok = json_is_integer (value) && json_integer_value (value) >= AIGW_MOCK_STATUS_MIN
                 && json_integer_value (value) <= AIGW_MOCK_STATUS_MAX;
            settings->fail_status = ok ? (int) json_integer_value (value) : 0;
        }
        else if (strcmp (key, "retry_after_s") == 0) {
            ok = json_is_integer (value) && json_integer_value (value) >= 0
                 && json_integer_value (value) <= AIGW_MOCK_RETRY_AFTER_MAX;
            settings->retry_after_s = ok ? (int) json_integer_value (value) : 0;
        }
        else {
            snprintf (err, err_size,
                      "unknown field '%.64s' (expected route, latency_ms, fail_rate, "
                      "fail_status, rate429, retry_after_s)",
                      key);
            return -1;
        }
        if (!ok) {
            snprintf (err, err_size, "invalid '%.64s'", key);
            return -1;
        }
    }
    if (*route < 0) {
        snprintf (err, err_size,
                  "'route' is required: openai, anthropic, gemini, bedrock or "
                  "azure");
        return -1;
    }
    return 0;
}

//  Appends every route's injection as a JSON object keyed by route.
static void
s_inject_json (aigw_mock_t *self, s_buf_t *buf)
{
    s_buf_str (buf, "{");
    for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++) {
        s_inject_t *inject = &self->inject[route];
        int latency = atomic_load (&inject->latency_ms);
        char latency_text[AIGW_MOCK_NUMBER_TEXT] = "null";
        if (latency >= 0)
            snprintf (latency_text, sizeof latency_text, "%d", latency);
        s_buf_printf (buf,
                      "%s\"%s\":{\"latency_ms\":%s,\"fail_rate\":%g,\"fail_status\":%d,"
                      "\"rate429\":%g,\"retry_after_s\":%d}",
                      route ? "," : "", aigw_mock_route_name (route), latency_text,
                      (double) atomic_load (&inject->fail_ppm) / AIGW_MOCK_PPM,
                      atomic_load (&inject->fail_status),
                      (double) atomic_load (&inject->rate429_ppm) / AIGW_MOCK_PPM,
                      atomic_load (&inject->retry_after_s));
    }
    s_buf_str (buf, "}");
}

//  ---------------------------------------------------------------------
//  The ring of recorded requests

//  Copies LEN bytes of TEXT to *AT as a C string and moves *AT past it.
//  Returns the copy, or NULL when TEXT is NULL.
static const char *
s_pack (char **at, const char *text, size_t len)
{
    if (!text)
        return NULL;
    char *copy = *at;
    memcpy (copy, text, len);
    copy[len] = 0;
    *at += len + 1;
    return copy;
}

//  --------------------------------------------------------------------------
//  Credentials in /mock/requests: redacted, as gateways show keys in their
//  logs, yet enough for a test to tell which key came (a short prefix, the
//  length and the start of its SHA-256, which tests recompute):
//      Bearer sk-u...[40 chars, sha256:1a2b3c4d]

//  Headers whose value is a credential.
static const char *s_credential_headers[]
    = {"authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token"};

//  Append the redacted form of LEN bytes of SECRET to OUT (SIZE, used
//  *AT). Returns 0, or -1 when it does not fit.
static int
s_redact_append (char *out, size_t size, size_t *at, const char *secret, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest (secret, len, digest, &digest_len, EVP_sha256 (), NULL) != 1)
        return -1;
    int shown = len >= AIGW_MOCK_REDACT_SHOWN_MIN ? AIGW_MOCK_REDACT_PREFIX : 0;
    int n = snprintf (out + *at, size - *at, "%.*s...[%zu chars, sha256:", shown, secret, len);
    if (n < 0 || (size_t) n >= size - *at)
        return -1;
    *at += (size_t) n;
    for (int i = 0; i < AIGW_MOCK_REDACT_HASH_HEX / 2; i++) {
        n = snprintf (out + *at, size - *at, "%02x", digest[i]);
        if (n < 0 || (size_t) n >= size - *at)
            return -1;
        *at += (size_t) n;
    }
    n = snprintf (out + *at, size - *at, "]");
    if (n < 0 || (size_t) n >= size - *at)
        return -1;
    *at += (size_t) n;
    return 0;
}

//  Append LEN bytes of TEXT as they are.
static int
s_plain_append (char *out, size_t size, size_t *at, const char *text, size_t len)
{
    if (len >= size - *at)
        return -1;
    memcpy (out + *at, text, len);
    *at += len;
    out[*at] = 0;
    return 0;
}

//  The value of header NAME as /mock/requests shows it, into OUT: VALUE
//  itself unless NAME holds a credential. An Authorization keeps its
//  scheme; an AWS signature keeps its scope and signed headers, its
//  access key id and signature redacted.
static const char *
s_redact (const char *name, const char *value, char *out, size_t size)
{
    bool credential = false;
    for (size_t i = 0; i < sizeof s_credential_headers / sizeof s_credential_headers[0]; i++)
        credential = credential || strcasecmp (name, s_credential_headers[i]) == 0;
    if (!value || !credential)
        return value;
    size_t at = 0;
    out[0] = 0;
    const char *rest = value;
    if (strcasecmp (name, "authorization") == 0) {
        const char *space = strchr (value, ' ');
        if (space && strncmp (value, "AWS4-", 5) == 0) {
            //  Credential=AKID/scope, SignedHeaders=..., Signature=HEX
            const char *key = strstr (value, "Credential=");
            const char *slash = key ? strchr (key, '/') : NULL;
            const char *sig = strstr (value, "Signature=");
            if (key && slash && sig && sig > slash) {
                key += strlen ("Credential=");
                sig += strlen ("Signature=");
                if (s_plain_append (out, size, &at, value, (size_t) (key - value)) == 0
                    && s_redact_append (out, size, &at, key, (size_t) (slash - key)) == 0
                    && s_plain_append (out, size, &at, slash, (size_t) (sig - slash)) == 0
                    && s_redact_append (out, size, &at, sig, strlen (sig)) == 0)
                    return out;
                at = 0;
            }
        }
        else if (space) {
            //  "Bearer KEY": the scheme stays.
            if (s_plain_append (out, size, &at, value, (size_t) (space - value) + 1))
                return "[redacted]";
            rest = space + 1;
        }
    }
    if (s_redact_append (out, size, &at, rest, strlen (rest)))
        return "[redacted]";
    return out;
}

//  Records the request (route, method, path, query, the headers tests
//  check, BODY) in the ring, dropping the oldest. Out of memory, it records
//  nothing. Lock-free: a record is owned by exactly one slot, reader or
//  freeing writer at any time, swapped in and out atomically.
static void
s_record (s_request_t *req, s_buf_t *body)
{
    const struct mg_request_info *info = mg_get_request_info (req->conn);
    const char *method = info->request_method ? info->request_method : "";
    const char *path = info->local_uri ? info->local_uri : "";
    const char *query = info->query_string;
    size_t body_len = body->size - body->head;
    bool keep_body = body_len > 0 && body_len <= AIGW_MOCK_RECORD_BODY_MAX && !body->failed;
    const char *values[AIGW_MOCK_RECORDED_HEADERS];
    char redacted[AIGW_MOCK_RECORDED_HEADERS][AIGW_MOCK_REDACTED_MAX];
    size_t total = sizeof (s_record_t) + strlen (method) + strlen (path) + 2
                   + (query ? strlen (query) + 1 : 0) + (keep_body ? body_len + 1 : 0);
    for (size_t i = 0; i < AIGW_MOCK_RECORDED_HEADERS; i++) {
        values[i]
            = s_redact (s_recorded_headers[i], mg_get_header (req->conn, s_recorded_headers[i]),
                        redacted[i], sizeof redacted[i]);
        total += values[i] ? strlen (values[i]) + 1 : 0;
    }
    s_record_t *record = malloc (total);
    if (!record)
        return;
    char *at = (char *) (record + 1);
    record->route = req->route;
    record->method = s_pack (&at, method, strlen (method));
    record->path = s_pack (&at, path, strlen (path));
    record->query = s_pack (&at, query, query ? strlen (query) : 0);
    for (size_t i = 0; i < AIGW_MOCK_RECORDED_HEADERS; i++)
        record->headers[i] = s_pack (&at, values[i], values[i] ? strlen (values[i]) : 0);
    record->body = keep_body ? s_pack (&at, body->data + body->head, body_len) : NULL;
    record->body_len = keep_body ? body_len : 0;

    aigw_mock_t *self = req->self;
    record->seq = atomic_fetch_add_explicit (&self->ring_seq, 1, memory_order_relaxed);
    free (atomic_exchange (&self->ring[record->seq % AIGW_MOCK_RING_SIZE], record));
}

//  Empties the ring.
static void
s_ring_clear (aigw_mock_t *self)
{
    pthread_mutex_lock (&self->ring_lock);
    for (size_t i = 0; i < AIGW_MOCK_RING_SIZE; i++)
        free (atomic_exchange (&self->ring[i], NULL));
    pthread_mutex_unlock (&self->ring_lock);
}

//  qsort order of two s_record_t pointers: by arrival.
static int
s_record_compare (const void *a, const void *b)
{
    const s_record_t *left = *(s_record_t *const *) a;
    const s_record_t *right = *(s_record_t *const *) b;
    return left->seq < right->seq ? -1 : left->seq > right->seq;
}

//  The ring as a JSON array, oldest first: a new string, or NULL when out
//  of memory. Takes every record out of its slot while it reads, then puts
//  each back unless a newer one took the slot meanwhile.
static char *
s_ring_json (aigw_mock_t *self)
{
    json_t *list = json_array ();
    s_record_t *taken[AIGW_MOCK_RING_SIZE], *sorted[AIGW_MOCK_RING_SIZE];
    size_t count = 0;
    pthread_mutex_lock (&self->ring_lock);
    for (size_t i = 0; i < AIGW_MOCK_RING_SIZE; i++) {
        taken[i] = atomic_exchange (&self->ring[i], NULL);
        if (taken[i])
            sorted[count++] = taken[i];
    }
    qsort (sorted, count, sizeof sorted[0], s_record_compare);
    for (size_t i = 0; list && i < count; i++) {
        s_record_t *record = sorted[i];
        json_t *headers = json_object ();
        for (size_t h = 0; h < AIGW_MOCK_RECORDED_HEADERS; h++)
            if (record->headers[h])
                json_object_set_new (headers, s_recorded_headers[h],
                                     json_string (record->headers[h]));
        json_t *body = NULL;
        if (record->body
            && aigw_json_depth_ok (record->body, record->body_len, AIGW_MOCK_JSON_DEPTH_MAX))
            body = json_loadb (record->body, record->body_len, 0, NULL);
        json_array_append_new (list, json_pack ("{s:s,s:s,s:s,s:s?,s:o*,s:o?}", "route",
                                                aigw_mock_route_name (record->route), "method",
                                                record->method, "path", record->path, "query",
                                                record->query, "headers", headers, "body", body));
    }
    for (size_t i = 0; i < AIGW_MOCK_RING_SIZE; i++) {
        s_record_t *empty = NULL;
        if (taken[i] && !atomic_compare_exchange_strong (&self->ring[i], &empty, taken[i]))
            free (taken[i]);
    }
    pthread_mutex_unlock (&self->ring_lock);
    char *text = list ? json_dumps (list, JSON_COMPACT) : NULL;
    json_decref (list);
    return text;
}

//  ---------------------------------------------------------------------
//  Routing

//  Sends TEXT (a new JSON string, taken; NULL: out of memory) as a 200.
static int
s_send_json_text (s_request_t *req, char *text)
{
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    if (text)
        s_buf_str (&body, text);
    else
        body.failed = true;
    free (text);
    int rc = s_send (req, 200, "application/json", NULL, &body);
    s_buf_free (&body);
    return rc;
}

//  Answers GET|POST|DELETE /mock/config. Returns the status.
static int
s_handle_config (s_request_t *req, const char *method)
{
    aigw_mock_t *self = req->self;
    s_error_t error = {0};
    if (strcmp (method, "DELETE") == 0) {
        s_inject_settings_t none = s_inject_none ();
        for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++)
            s_inject_store (self, route, &none);
    }
    else if (strcmp (method, "POST") == 0) {
        s_buf_t body;
        s_buf_init (&body, 0);
        json_t *root = NULL;
        int rc = s_read_body (req->conn, &body);
        if (rc != 0) {
            mg_disable_connection_keep_alive (req->conn);
            req->close = true;
            s_error_set (&error, 413, "invalid_request_error", NULL, NULL,
                         "Request body unreadable or over %d bytes", AIGW_MOCK_BODY_MAX);
        }
        else
            root = s_parse_object (&body, &error);
        int route;
        s_inject_settings_t settings;
        char err[AIGW_MOCK_ERROR_TEXT];
        if (root && s_config_parse (root, &route, &settings, err, sizeof err) != 0)
            s_error_set (&error, 400, "invalid_request_error", NULL, NULL, "%s", err);
        else if (root)
            s_inject_store (self, route, &settings);
        json_decref (root);
        s_buf_free (&body);
        if (error.status) {
            s_send_error (req, &error);
            return error.status;
        }
    }
    else if (strcmp (method, "GET") != 0) {
        s_error_set (&error, 405, "invalid_request_error", NULL, NULL,
                     "Use GET, POST or DELETE on /mock/config");
        s_send_error (req, &error);
        return 405;
    }
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    s_inject_json (self, &body);
    s_send (req, 200, "application/json", NULL, &body);
    s_buf_free (&body);
    return 200;
}

//  Answers GET /mock/stats, POST /mock/reset, GET /mock/requests and
//  /mock/config. Returns the status.
static int
s_handle_mock (s_request_t *req, const char *method, const char *path)
{
    aigw_mock_t *self = req->self;
    s_error_t error = {0};
    if (strcmp (path, "/mock/config") == 0)
        return s_handle_config (req, method);
    if (strcmp (path, "/mock/requests") == 0 && strcmp (method, "GET") == 0) {
        s_send_json_text (req, s_ring_json (self));
        return 200;
    }
    if (strcmp (path, "/mock/reset") == 0 && strcmp (method, "POST") == 0) {
        atomic_store (&self->requests, 0);
        atomic_store (&self->chat, 0);
        atomic_store (&self->stream, 0);
        atomic_store (&self->embeddings, 0);
        for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++)
            atomic_store (&self->route_requests[route], 0);
        s_ring_clear (self);
    }
    else if (strcmp (path, "/mock/stats") != 0 || strcmp (method, "GET") != 0) {
        s_error_set (&error, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%.16s %.128s)",
                     method, path);
        s_send_error (req, &error);
        return 404;
    }
    s_buf_t body;
    s_buf_init (&body, AIGW_MOCK_HEADER_ROOM);
    s_buf_printf (&body,
                  "{\"requests\":%llu,\"chat\":%llu,\"stream\":%llu,\"embeddings\":%llu,"
                  "\"in_flight\":%lld,\"routes\":{",
                  (unsigned long long) atomic_load (&self->requests),
                  (unsigned long long) atomic_load (&self->chat),
                  (unsigned long long) atomic_load (&self->stream),
                  (unsigned long long) atomic_load (&self->embeddings),
                  (long long) atomic_load (&self->in_flight));
    for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++)
        s_buf_printf (&body, "%s\"%s\":%llu", route ? "," : "", aigw_mock_route_name (route),
                      (unsigned long long) atomic_load (&self->route_requests[route]));
    s_buf_str (&body, "}}");
    s_send (req, 200, "application/json", NULL, &body);
    s_buf_free (&body);
    return 200;
}

//  Value of the request's header NAME when present and non-empty, else NULL.
static const char *
s_header (s_request_t *req, const char *name)
{
    const char *value = mg_get_header (req->conn, name);
    return value && *value ? value : NULL;
}

//  True when the query string has parameter NAME (copied into OUT).
static bool
s_query (s_request_t *req, const char *name, char *out, size_t size)
{
    const char *query = mg_get_request_info (req->conn)->query_string;
    return query && mg_get_var (query, strlen (query), name, out, size) >= 0;
}

//  True when KEY is acceptable: the pinned key if one is set, else any.
static bool
s_key_ok (s_request_t *req, const char *key)
{
    return !req->self->api_key || strcmp (key, req->self->api_key) == 0;
}

//  Checks the credentials the request's route asks for. Returns 0, or -1
//  with ERROR set to the answer (status and message in the route's terms).
static int
s_check_route_auth (s_request_t *req, s_error_t *error)
{
    char value[AIGW_MOCK_QUERY_TEXT];
    const char *key;
    switch (req->route) {
        case AIGW_MOCK_ROUTE_ANTHROPIC:
            key = s_header (req, "x-api-key");
            if (!key || !s_key_ok (req, key)) {
                s_error_set (error, 401, "authentication_error", NULL, NULL,
                             key ? "invalid x-api-key" : "x-api-key header is required");
                return -1;
            }
            if (!s_header (req, "anthropic-version")) {
                s_error_set (error, 400, "invalid_request_error", NULL, NULL,
                             "anthropic-version: header is required");
                return -1;
            }
            return 0;
        case AIGW_MOCK_ROUTE_GEMINI:
            key = s_header (req, "x-goog-api-key");
            if (!key && s_query (req, "key", value, sizeof value) && *value)
                key = value;
            if (!key) {
                s_error_set (error, 403, "permission_error", NULL, NULL,
                             "Method doesn't allow unregistered callers (callers without "
                             "established identity). Please use API Key or other form of API "
                             "consumer identity to call this API.");
                return -1;
            }
            if (!s_key_ok (req, key)) {
                s_error_set (error, 400, "invalid_request_error", NULL, NULL,
                             "API key not valid. Please pass a valid API key.");
                return -1;
            }
            return 0;
        case AIGW_MOCK_ROUTE_BEDROCK: {
            static const char scheme[] = "AWS4-HMAC-SHA256 Credential=";
            key = s_header (req, "Authorization");
            if (!key || strncmp (key, scheme, sizeof scheme - 1) != 0
                || !s_header (req, "X-Amz-Date")) {
                s_error_set (error, 403, "permission_error", NULL, NULL,
                             "Missing Authentication Token: send a SigV4 Authorization "
                             "header and X-Amz-Date");
                return -1;
            }
            return 0;
        }
        case AIGW_MOCK_ROUTE_AZURE:
            key = s_header (req, "api-key");
            if (!key || !s_key_ok (req, key)) {
                s_error_set (error, 401, "invalid_request_error", "401", NULL,
                             key ? "Access denied due to invalid subscription key or wrong "
                                   "API endpoint."
                                 : "Access denied due to missing subscription key. Make sure "
                                   "to include subscription key when making requests to an "
                                   "API.");
                return -1;
            }
            if (!s_query (req, "api-version", value, sizeof value) || !*value) {
                s_error_set (error, 404, "invalid_request_error", "404", NULL,
                             "Resource not found (api-version query parameter missing)");
                return -1;
            }
            return 0;
        default: return s_check_auth (req, error);
    }
}

//  Copies the path segment at PATH up to STOP (or its end) into OUT,
//  URL-decoded. Returns the byte after it, or NULL when empty or too long.
static const char *
s_segment (const char *path, char stop, char *out, size_t size)
{
    const char *end = strchr (path, stop);
    size_t len = end ? (size_t) (end - path) : strlen (path);
    if (len == 0 || len >= size)
        return NULL;
    if (mg_url_decode (path, (int) len, out, (int) size, 0) <= 0)
        return NULL;
    return path + len;
}

//  Routes an Anthropic, Gemini, Bedrock or Azure request. Returns the
//  status, or 0 when no handler takes the path.
static int
s_route_format (s_request_t *req, bool post, const char *path, s_buf_t *body, s_error_t *error)
{
    char name[AIGW_MOCK_NAME_TEXT];
    const char *rest;
    static const char gemini_prefix[] = "/v1beta/models/";
    static const char bedrock_prefix[] = "/model/";
    static const char azure_prefix[] = "/openai/deployments/";
    if (!post)
        return 0;
    switch (req->route) {
        case AIGW_MOCK_ROUTE_ANTHROPIC:
            if (strcmp (path, "/v1/messages/count_tokens") == 0)
                return s_handle_count_tokens (req, body, error, NULL);
            return s_handle_format_chat (req, body, error, NULL, false);
        case AIGW_MOCK_ROUTE_RESPONSES: return s_handle_format_chat (req, body, error, NULL, false);
        case AIGW_MOCK_ROUTE_GEMINI:
            if (strncmp (path, gemini_prefix, sizeof gemini_prefix - 1) != 0)
                return 0;
            rest = s_segment (path + sizeof gemini_prefix - 1, ':', name, sizeof name);
            if (!rest || *rest != ':')
                return 0;
            rest++;
            if (strcmp (rest, "generateContent") == 0)
                return s_handle_format_chat (req, body, error, name, false);
            if (strcmp (rest, "streamGenerateContent") == 0) {
                char alt[AIGW_MOCK_NUMBER_TEXT];
                req->json_stream
                    = !s_query (req, "alt", alt, sizeof alt) || strcmp (alt, "sse") != 0;
                return s_handle_format_chat (req, body, error, name, true);
            }
            if (strcmp (rest, "countTokens") == 0)
                return s_handle_count_tokens (req, body, error, name);
            if (strcmp (rest, "embedContent") == 0)
                return s_handle_gemini_embed (req, body, error, false);
            if (strcmp (rest, "batchEmbedContents") == 0)
                return s_handle_gemini_embed (req, body, error, true);
            return 0;
        case AIGW_MOCK_ROUTE_BEDROCK:
            if (strncmp (path, bedrock_prefix, sizeof bedrock_prefix - 1) != 0)
                return 0;
            rest = s_segment (path + sizeof bedrock_prefix - 1, '/', name, sizeof name);
            if (rest && strcmp (rest, "/converse") == 0)
                return s_handle_format_chat (req, body, error, name, false);
            if (rest && strcmp (rest, "/converse-stream") == 0)
                return s_handle_format_chat (req, body, error, name, true);
            if (rest && strcmp (rest, "/count-tokens") == 0)
                return s_handle_count_tokens (req, body, error, name);
            return 0;
        case AIGW_MOCK_ROUTE_AZURE:
            if (strncmp (path, azure_prefix, sizeof azure_prefix - 1) != 0)
                return 0;
            rest = s_segment (path + sizeof azure_prefix - 1, '/', name, sizeof name);
            if (rest && strcmp (rest, "/chat/completions") == 0) {
                //  s_handle_chat with the deployment as the default model
                return s_handle_chat (req, body, error, name);
            }
            if (rest && strcmp (rest, "/embeddings") == 0)
                return s_handle_embeddings (req, body, error, name);
            return 0;
        default: return 0;
    }
}

//  Answers a provider request on any route: reads the body, records it,
//  checks the route's credentials, routes. Returns the status for the log.
static int
s_handle_api (s_request_t *req, const char *method, const char *path)
{
    aigw_mock_t *self = req->self;
    atomic_fetch_add_explicit (&self->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&self->route_requests[req->route], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&self->in_flight, 1, memory_order_relaxed);
    bool post = strcmp (method, "POST") == 0;
    bool get = strcmp (method, "GET") == 0;
    s_error_t error = {0};
    s_buf_t body;
    s_buf_init (&body, 0);
    if (post) {
        int rc = s_read_body (req->conn, &body);
        if (rc == -2) {
            req->close = true;
            mg_disable_connection_keep_alive (req->conn);
            s_error_set (&error, 413, "invalid_request_error", "request_too_large", NULL,
                         "Request body is over %d bytes", AIGW_MOCK_BODY_MAX);
        }
        else if (rc != 0) {
            mg_disable_connection_keep_alive (req->conn);
            s_buf_free (&body);
            atomic_fetch_sub_explicit (&self->in_flight, 1, memory_order_relaxed);
            return AIGW_MOCK_STATUS_GONE;
        }
    }
    s_record (req, &body);
    if (!error.status && s_check_route_auth (req, &error) != 0 && error.status == 401)
        //  CivetWeb closes the connection after any 401
        req->close = true;

    static const char models_prefix[] = "/v1/models/";
    int status = 0;
    if (req->route != AIGW_MOCK_ROUTE_OPENAI)
        status = s_route_format (req, post, path, &body, &error);
    else if (post && strcmp (path, "/v1/chat/completions") == 0)
        status = s_handle_chat (req, &body, &error, NULL);
    else if (post && strcmp (path, "/v1/embeddings") == 0)
        status = s_handle_embeddings (req, &body, &error, NULL);
    else if (get && strcmp (path, "/v1/models") == 0)
        status = s_handle_models (req, NULL, &error);
    else if (get && strncmp (path, models_prefix, sizeof models_prefix - 1) == 0
             && path[sizeof models_prefix - 1])
        status = s_handle_models (req, path + sizeof models_prefix - 1, &error);
    if (status == 0) {
        if (!error.status)
            s_error_set (&error, 404, "invalid_request_error", NULL, NULL,
                         "Invalid URL (%.16s %.128s)", method, path);
        s_before_answer (req, &error);
        status = error.status;
    }
    s_buf_free (&body);
    atomic_fetch_sub_explicit (&self->in_flight, 1, memory_order_relaxed);
    return status;
}

//  The route a path belongs to, or -1 when none does.
static int
s_route_of (const char *path)
{
    if (strcmp (path, "/v1/messages") == 0 || strcmp (path, "/v1/messages/count_tokens") == 0)
        return AIGW_MOCK_ROUTE_ANTHROPIC;
    if (strcmp (path, "/v1/responses") == 0)
        return AIGW_MOCK_ROUTE_RESPONSES;
    if (strncmp (path, "/v1/", 4) == 0)
        return AIGW_MOCK_ROUTE_OPENAI;
    if (strncmp (path, "/v1beta/", 8) == 0)
        return AIGW_MOCK_ROUTE_GEMINI;
    if (strncmp (path, "/model/", 7) == 0)
        return AIGW_MOCK_ROUTE_BEDROCK;
    if (strncmp (path, "/openai/", 8) == 0)
        return AIGW_MOCK_ROUTE_AZURE;
    return -1;
}

//  CivetWeb's begin_request: answers every request itself. Returns the
//  status for CivetWeb's access log (non-zero: handled).
static int
s_begin_request (struct mg_connection *conn)
{
    const struct mg_request_info *info = mg_get_request_info (conn);
    s_request_t req = {
        .self = (aigw_mock_t *) info->user_data,
        .conn = conn,
        .chunked = !info->http_version || strcmp (info->http_version, "1.0") != 0,
        .latency_ms = -1,
        .die_after = -1,
        .route = AIGW_MOCK_ROUTE_OPENAI,
        .retry_after_s = AIGW_MOCK_RETRY_AFTER_S,
    };
    if (!req.chunked) {
        //  HTTP/1.0 keeps the connection only when asked to
        const char *connection = mg_get_header (conn, "Connection");
        req.close = !connection || strcasecmp (connection, "keep-alive") != 0;
    }
    const char *path = info->local_uri ? info->local_uri : "";
    const char *method = info->request_method;
    int route = s_route_of (path);
    if (route >= 0) {
        req.route = route;
        return s_handle_api (&req, method, path);
    }
    if (strncmp (path, "/mock/", 6) == 0)
        return s_handle_mock (&req, method, path);
    s_error_t error;
    s_error_set (&error, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%.16s %.128s)",
                 method, path);
    s_send_error (&req, &error);
    return 404;
}

//  CivetWeb's log_message: to our log, as a warning.
static int
s_log_message (const struct mg_connection *conn, const char *message)
{
    aigw_warn ("mock-provider: civetweb: %s", message);
    return 1;
}

//  ---------------------------------------------------------------------
//  Public API

//  Raises the open-file limit to its hard maximum: each connection in
//  flight is a descriptor. Failure is logged, not fatal.
static void
s_raise_nofile (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
            aigw_warn ("mock-provider: cannot raise RLIMIT_NOFILE: %s", strerror (errno));
    }
}

//  Like aigw_mock_new, with THREADS CivetWeb workers (each holds one
//  connection for its whole life). Returns NULL if the port cannot be bound.
//  Sets the process-wide default thread stack around mg_start (a thread
//  created elsewhere at that instant gets the small stack too) and raises
//  RLIMIT_NOFILE for the whole process.
aigw_mock_t *
aigw_mock_new_threads (int port, int latency_ms, double fail_rate, int threads)
{
    if (port < 0 || port > AIGW_MOCK_PORT_MAX || latency_ms < 0 || !(fail_rate >= 0)
        || !(fail_rate <= 1) || threads < 1 || threads > AIGW_MOCK_THREADS_MAX) {
        aigw_error ("mock-provider: invalid settings");
        return NULL;
    }
    aigw_mock_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->latency_ms = latency_ms < AIGW_MOCK_DELAY_MAX_MS ? latency_ms : AIGW_MOCK_DELAY_MAX_MS;
    self->fail_rate = fail_rate;
    const char *key = getenv ("AIGW_MOCK_API_KEY");
    if (key && *key && !(self->api_key = strdup (key))) {
        free (self);
        return NULL;
    }
    //  Ids unique across mocks too: a gateway keeps a pass-through
    //  Response under the upstream's own id, so two mocks behind one
    //  gateway must not both answer resp_mock_1.
    uint32_t start = 0;
    if (RAND_bytes ((unsigned char *) &start, sizeof start) != 1)
        start = (uint32_t) getpid ();
    atomic_init (&self->next_id, (uint_fast64_t) start << AIGW_MOCK_ID_SPACE_BITS);
    pthread_mutex_init (&self->ring_lock, NULL);
    s_inject_settings_t none = s_inject_none ();
    for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++)
        s_inject_store (self, route, &none);
    mg_init_library (0);
    //  Nothing optional is needed (no TLS, no files, no IPv6): we listen on
    //  127.0.0.1 only. Log what this build has, for support.
    aigw_debug ("mock-provider: civetweb %s, features tls=%u websocket=%u ipv6=%u", mg_version (),
                mg_check_feature (MG_FEATURES_TLS) != 0,
                mg_check_feature (MG_FEATURES_WEBSOCKET) != 0,
                mg_check_feature (MG_FEATURES_IPV6) != 0);
    s_raise_nofile ();

    char ports[AIGW_MOCK_NUMBER_TEXT], thread_count[AIGW_MOCK_NUMBER_TEXT];
    char backlog[AIGW_MOCK_NUMBER_TEXT], keep_alive[AIGW_MOCK_NUMBER_TEXT];
    char timeout[AIGW_MOCK_NUMBER_TEXT];
    snprintf (ports, sizeof ports, "127.0.0.1:%d", port);
    snprintf (thread_count, sizeof thread_count, "%d", threads);
    snprintf (backlog, sizeof backlog, "%d", AIGW_MOCK_LISTEN_BACKLOG);
    snprintf (keep_alive, sizeof keep_alive, "%d", AIGW_MOCK_KEEP_ALIVE_MS);
    snprintf (timeout, sizeof timeout, "%d", AIGW_MOCK_REQUEST_TIMEOUT_MS);
    const char *options[] = {
        "listening_ports",
        ports,
        "num_threads",
        thread_count,
        "connection_queue",
        thread_count,
        "listen_backlog",
        backlog,
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        keep_alive,
        "request_timeout_ms",
        timeout,
        "tcp_nodelay",
        "1",
        "enable_directory_listing",
        "no",
        NULL,
    };
    struct mg_callbacks callbacks = {
        .begin_request = s_begin_request,
        .log_message = s_log_message,
    };
    //  Debian's CivetWeb gives each worker a fixed 100 KiB stack: handlers
    //  keep their buffers small (AIGW_MOCK_BUF_INLINE) and spill to the heap.
    self->ctx = mg_start (&callbacks, self, options);
    struct mg_server_port bound;
    if (!self->ctx || mg_get_server_ports (self->ctx, 1, &bound) != 1) {
        aigw_error ("mock-provider: cannot listen on 127.0.0.1:%d", port);
        aigw_mock_destroy (&self);
        return NULL;
    }
    self->port = bound.port;
    return self;
}

//  Starts with the default number of workers. See the header.
aigw_mock_t *
aigw_mock_new (int port, int latency_ms, double fail_rate)
{
    return aigw_mock_new_threads (port, latency_ms, fail_rate, AIGW_MOCK_THREADS_DEFAULT);
}

//  Port actually bound (the ephemeral one when started on port 0).
int
aigw_mock_port (aigw_mock_t *self)
{
    assert (self);
    return self->port;
}

//  Runs beside mg_stop. CivetWeb's master thread polls its listening socket
//  up to two seconds at a time before it sees the stop flag; a connection
//  wakes it at once. Connects every few ms until ARG's ctx_stopped is set.
static void *
s_stop_waker (void *arg)
{
    aigw_mock_t *self = (aigw_mock_t *) arg;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons (self->port)};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int64_t give_up = s_now_ms () + AIGW_MOCK_WAKE_MAX_MS;
    while (!atomic_load (&self->ctx_stopped) && s_now_ms () < give_up) {
        int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            int rc = connect (fd, (struct sockaddr *) &address, sizeof address);
            close (fd);
            if (rc != 0)
                break;  //  refused: the listener is gone already
        }
        struct timespec pause = {0, AIGW_MOCK_WAKE_INTERVAL_MS * AIGW_MOCK_NS_PER_MS};
        nanosleep (&pause, NULL);
    }
    return NULL;
}

//  Stops the server and frees it; safe on NULL and twice.
void
aigw_mock_destroy (aigw_mock_t **self_p)
{
    assert (self_p);
    aigw_mock_t *self = *self_p;
    if (!self)
        return;
    //  Wake every sleeping or hanging handler and CivetWeb's master thread,
    //  then join the workers
    atomic_store (&self->stopping, true);
    if (self->ctx) {
        pthread_t waker;
        bool waking = pthread_create (&waker, NULL, s_stop_waker, self) == 0;
        mg_stop (self->ctx);
        atomic_store (&self->ctx_stopped, true);
        if (waking)
            pthread_join (waker, NULL);
    }
    mg_exit_library ();
    s_ring_clear (self);
    pthread_mutex_destroy (&self->ring_lock);
    free (self->api_key);
    free (self);
    *self_p = NULL;
}

//  Sets one route's injection from a --route SPEC. See the header.
int
aigw_mock_set_route (aigw_mock_t *self, const char *spec, char *err, size_t err_size)
{
    assert (self && spec);
    int route;
    s_inject_settings_t settings;
    if (s_route_spec_parse (spec, &route, &settings, err, err_size) != 0)
        return -1;
    s_inject_store (self, route, &settings);
    return 0;
}

//  Parses VALUE as a whole integer in [MIN, MAX]. Returns 0 or -1.
static int
s_parse_int (const char *value, long min, long max, int *out)
{
    if (!value || !*value)
        return -1;
    char *end;
    errno = 0;
    long number = strtol (value, &end, 10);
    if (errno || *end || number < min || number > max)
        return -1;
    *out = (int) number;
    return 0;
}

//  Prints the command's usage to STREAM.
static void
s_usage (FILE *stream)
{
    fprintf (stream,
             "usage: aigw mock-provider --port N [--latency-ms N] [--fail-rate F] "
             "[--threads N]\n"
             "                          [--route NAME:SETTINGS]...\n"
             "  --port N        listen on 127.0.0.1:N (0: any free port)\n"
             "  --latency-ms N  delay the first byte of every answer by N ms\n"
             "  --fail-rate F   answer this share (0..1) of requests with a 500\n"
             "  --threads N     worker threads = connections in flight (default %d)\n"
             "  --route NAME:latency=MS,fail=RATE,status=CODE,rate429=RATE,retry_after=S\n"
             "                  inject on one route (openai, anthropic, gemini, bedrock,\n"
             "                  azure): latency (overrides --latency-ms), a share FAIL of\n"
             "                  answers with STATUS (default 500), a share RATE429 of 429s\n"
             "                  with Retry-After: S (default 1); repeatable\n"
             "routes: OpenAI /v1/chat/completions, /v1/embeddings, /v1/models;\n"
             "  Anthropic POST /v1/messages, /v1/messages/count_tokens; Gemini POST\n"
             "  /v1beta/models/M:generateContent, :countTokens,\n"
             "  :streamGenerateContent?alt=sse, :embedContent, :batchEmbedContents;\n"
             "  Bedrock POST /model/ID/converse, /converse-stream, /count-tokens; Azure POST\n"
             "  /openai/deployments/D/chat/completions|embeddings?api-version=V\n"
             "test endpoints: GET /mock/stats, POST /mock/reset, GET /mock/requests,\n"
             "  GET|POST|DELETE /mock/config (per-route injection at run time)\n"
             "environment: AIGW_MOCK_API_KEY, when set, is the only key accepted\n",
             AIGW_MOCK_THREADS_DEFAULT);
}

//  `aigw mock-provider`: parses the flags (exit 2 on a bad one), serves
//  until SIGINT or SIGTERM, returns the exit code.
int
aigw_mock_provider_main (int argc, char **argv)
{
    int port = -1, latency_ms = 0, threads = AIGW_MOCK_THREADS_DEFAULT;
    double fail_rate = 0;
    //  --route settings, stored once the server is up (the last per route wins)
    s_inject_settings_t routes[AIGW_MOCK_ROUTE_COUNT];
    bool route_set[AIGW_MOCK_ROUTE_COUNT] = {false};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "-h") == 0 || strcmp (arg, "--help") == 0) {
            s_usage (stdout);
            return 0;
        }
        //  Accept both "--name value" and "--name=value"
        const char *equals = strchr (arg, '=');
        size_t name_len = equals ? (size_t) (equals - arg) : strlen (arg);
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        bool consumed = !equals;
#define S_IS(name) (name_len == strlen (name) && strncmp (arg, name, name_len) == 0)
        int rc = 0;
        char range[AIGW_MOCK_NUMBER_TEXT * 2];
        if (S_IS ("--port")) {
            rc = s_parse_int (value, 0, AIGW_MOCK_PORT_MAX, &port);
            snprintf (range, sizeof range, "a port from 0 to %d", AIGW_MOCK_PORT_MAX);
        }
        else if (S_IS ("--latency-ms")) {
            rc = s_parse_int (value, 0, AIGW_MOCK_DELAY_MAX_MS, &latency_ms);
            snprintf (range, sizeof range, "0 to %d ms", AIGW_MOCK_DELAY_MAX_MS);
        }
        else if (S_IS ("--threads")) {
            rc = s_parse_int (value, 1, AIGW_MOCK_THREADS_MAX, &threads);
            snprintf (range, sizeof range, "1 to %d", AIGW_MOCK_THREADS_MAX);
        }
        else if (S_IS ("--route")) {
            int route;
            s_inject_settings_t settings;
            char err[AIGW_MOCK_ERROR_TEXT];
            if (!value || s_route_spec_parse (value, &route, &settings, err, sizeof err) != 0) {
                fprintf (stderr, "mock-provider: bad --route '%s': %s\n", value ? value : "",
                         value ? err : "expected NAME:SETTINGS");
                s_usage (stderr);
                return 2;
            }
            routes[route] = settings;
            route_set[route] = true;
        }
        else if (S_IS ("--fail-rate")) {
            char *end = NULL;
            errno = 0;
            fail_rate = value && *value ? strtod (value, &end) : -1;
            rc = (!end || *end || errno || !(fail_rate >= 0) || !(fail_rate <= 1)) ? -1 : 0;
            snprintf (range, sizeof range, "a share from 0 to 1");
        }
        else {
            fprintf (stderr, "mock-provider: unknown option '%s'\n", arg);
            s_usage (stderr);
            return 2;
        }
#undef S_IS
        if (rc != 0) {
            fprintf (stderr, "mock-provider: bad value '%s' for %.*s: expected %s\n",
                     value ? value : "", (int) name_len, arg, range);
            return 2;
        }
        if (consumed)
            i++;
    }
    if (port < 0) {
        fprintf (stderr, "mock-provider: --port is required\n");
        s_usage (stderr);
        return 2;
    }
    aigw_log_set_ident ("mock-provider");
    //  Block the stop signals in every thread (workers inherit the mask) and
    //  take them synchronously below; a dropped client must not kill us
    sigset_t stop_signals;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGINT);
    sigaddset (&stop_signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);
    signal (SIGPIPE, SIG_IGN);

    aigw_mock_t *mock = aigw_mock_new_threads (port, latency_ms, fail_rate, threads);
    if (!mock) {
        fprintf (stderr, "mock-provider: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    for (int route = 0; route < AIGW_MOCK_ROUTE_COUNT; route++)
        if (route_set[route])
            s_inject_store (mock, route, &routes[route]);
    printf ("mock-provider listening on 127.0.0.1:%d\n", aigw_mock_port (mock));
    fflush (stdout);
    aigw_info ("mock-provider: %d threads, latency %d ms, fail rate %g%s", threads, latency_ms,
               fail_rate, mock->api_key ? ", fixed API key" : "");
    int signal_number = 0;
    while (sigwait (&stop_signals, &signal_number) != 0)
        ;
    aigw_info ("mock-provider: stopping on signal %d", signal_number);
    aigw_mock_destroy (&mock);
    return 0;
}

//  ---------------------------------------------------------------------
//  Selftest: the public API over HTTP, with libcurl as the client

#include <curl/curl.h>

#define S_TEST_TIMEOUT_MS      5000   //  any one test call
#define S_TEST_HANG_TIMEOUT_MS 10000  //  the call a stop must cut short
#define S_TEST_GIVE_UP_MS      300    //  a client giving up on a hang
#define S_TEST_STOP_MAX_MS     2000   //  a stop with a request hanging
#define S_TEST_TEXT            256    //  room for a URL or header line
#define S_TEST_THREADS         16     //  workers for the main test mock

//  One answer, as the test client saw it
typedef struct {
    CURLcode rc;          //  transfer result
    long status;          //  HTTP status, 0 if none
    char *body;           //  body, NUL-terminated; s_reply_free frees
    size_t size;          //  body bytes
    char *headers;        //  response header block, NUL-terminated
    size_t headers_size;  //  header bytes
    int64_t elapsed_ms;   //  wall time of the call
} s_reply_t;

//  True if A is set and equals B.
static bool
s_test_streq (const char *a, const char *b)
{
    return a && strcmp (a, b) == 0;
}

//  What a libcurl callback collects
typedef struct {
    char *text;  //  malloc'd, NUL-terminated; NULL until data
    size_t len;  //  bytes collected
} s_test_sink_t;

//  libcurl write callback: appends to the s_test_sink_t at ARG.
static size_t
s_test_collect (char *data, size_t size, size_t count, void *arg)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    size_t more = size * count;
    char *grown = realloc (sink->text, sink->len + more + 1);
    assert (grown);
    memcpy (grown + sink->len, data, more);
    sink->len += more;
    grown[sink->len] = 0;
    sink->text = grown;
    return more;
}

//  Calls METHOD PATH on MOCK with BODY (NULL: none) and bearer KEY (NULL:
//  no Authorization header). Caller frees the reply with s_reply_free.
static s_reply_t
s_test_call (aigw_mock_t *mock, const char *method, const char *path, const char *body,
             const char *key, long timeout_ms)
{
    s_reply_t reply = {0};
    s_test_sink_t out = {NULL, 0}, head = {NULL, 0};
    char url[S_TEST_TEXT], auth[S_TEST_TEXT];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", aigw_mock_port (mock), path);
    CURL *curl = curl_easy_init ();
    assert (curl);
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (key) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", key);
        headers = curl_slist_append (headers, auth);
    }
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_test_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_test_collect);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    int64_t start = s_now_ms ();
    reply.rc = curl_easy_perform (curl);
    reply.elapsed_ms = s_now_ms () - start;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    reply.body = out.text ? out.text : strdup ("");
    reply.size = out.len;
    reply.headers = head.text ? head.text : strdup ("");
    reply.headers_size = head.len;
    return reply;
}

//  POSTs BODY to /v1/chat/completions on MOCK with bearer KEY.
static s_reply_t
s_test_chat (aigw_mock_t *mock, const char *body, const char *key)
{
    return s_test_call (mock, "POST", "/v1/chat/completions", body, key, S_TEST_TIMEOUT_MS);
}

//  Frees what a reply holds.
static void
s_reply_free (s_reply_t *reply)
{
    free (reply->body);
    free (reply->headers);
    reply->body = reply->headers = NULL;
}

//  Parses a reply body as JSON; asserts it parses. Caller owns the result.
static json_t *
s_test_json (const s_reply_t *reply)
{
    json_error_t error;
    json_t *root = json_loads (reply->body, 0, &error);
    if (!root)
        fprintf (stderr, "not JSON: %s\n", reply->body);
    assert (root);
    return root;
}

//  Asserts REPLY is an OpenAI error with STATUS (and TYPE, unless NULL).
static void
s_test_error (const s_reply_t *reply, long status, const char *type)
{
    assert (reply->rc == CURLE_OK);
    assert (reply->status == status);
    json_t *root = s_test_json (reply);
    json_t *error = json_object_get (root, "error");
    assert (json_is_string (json_object_get (error, "message")));
    assert (json_object_get (error, "param"));
    assert (json_object_get (error, "code"));
    if (type)
        assert (s_test_streq (json_string_value (json_object_get (error, "type")), type));
    json_decref (root);
}

//  Reads the counter NAME from GET /mock/stats.
static long long
s_test_stat (aigw_mock_t *mock, const char *name)
{
    s_reply_t reply = s_test_call (mock, "GET", "/mock/stats", NULL, NULL, S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    json_t *root = s_test_json (&reply);
    json_t *value = json_object_get (root, name);
    assert (json_is_integer (value));
    long long count = json_integer_value (value);
    json_decref (root);
    s_reply_free (&reply);
    return count;
}

//  Splits an SSE body into its data payloads; checks it ends in [DONE]
//  when DONE. Returns the number of chunk objects put in CHUNKS (a new
//  JSON array the caller owns); CONTENT gets the joined deltas.
static size_t
s_test_stream (const s_reply_t *reply, bool done, json_t **chunks, s_buf_t *content)
{
    *chunks = json_array ();
    const char *at = reply->body;
    bool saw_done = false;
    while (*at) {
        const char *end = strstr (at, "\n\n");
        assert (end);
        assert (strncmp (at, "data: ", 6) == 0);
        const char *data = at + 6;
        assert (!saw_done);
        if (strncmp (data, "[DONE]", 6) == 0)
            saw_done = true;
        else {
            json_error_t error;
            json_t *chunk = json_loadb (data, (size_t) (end - data), 0, &error);
            assert (chunk);
            json_t *choice = json_array_get (json_object_get (chunk, "choices"), 0);
            json_t *piece = json_object_get (json_object_get (choice, "delta"), "content");
            if (json_is_string (piece))
                s_buf_add (content, json_string_value (piece), json_string_length (piece));
            json_array_append_new (*chunks, chunk);
        }
        at = end + 2;
    }
    assert (saw_done == done);
    return json_array_size (*chunks);
}

//  The mock s_test_hang_client calls, and the key it sends
static aigw_mock_t *s_test_hang_mock;
static const char *s_test_hang_key;

//  Test thread: a chat that hangs, given up after ten seconds.
static void *
s_test_hang_client (void *arg)
{
    s_reply_t *reply = (s_reply_t *) arg;
    *reply = s_test_call (s_test_hang_mock, "POST", "/v1/chat/completions",
                          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                          "\"content\":\"mock:hang\"}]}",
                          s_test_hang_key, S_TEST_HANG_TIMEOUT_MS);
    return NULL;
}

//  Selftest: starts mocks on ephemeral ports and drives every endpoint and
//  control over HTTP. Asserts on failure.
void
aigw_mock_test (bool verbose)
{
    //  If the environment pins a key, the mock under test requires it
    const char *env_key = getenv ("AIGW_MOCK_API_KEY");
    const char *key = env_key && *env_key ? env_key : "sk-mock-test";
    curl_global_init (CURL_GLOBAL_DEFAULT);

    aigw_mock_t *mock = aigw_mock_new_threads (0, 0, 0.0, S_TEST_THREADS);
    assert (mock);
    assert (aigw_mock_port (mock) > 0);
    if (verbose)
        printf ("listening on %d\n", aigw_mock_port (mock));

    //  Models
    s_reply_t reply = s_test_call (mock, "GET", "/v1/models", NULL, key, S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    assert (strstr (reply.headers, "Content-Length:"));
    json_t *root = s_test_json (&reply);
    assert (s_test_streq (json_string_value (json_object_get (root, "object")), "list"));
    json_t *data = json_object_get (root, "data");
    assert (json_array_size (data) == AIGW_MOCK_MODEL_COUNT);
    for (size_t i = 0; i < AIGW_MOCK_MODEL_COUNT; i++) {
        json_t *model = json_array_get (data, i);
        assert (s_test_streq (json_string_value (json_object_get (model, "id")), s_models[i]));
        assert (s_test_streq (json_string_value (json_object_get (model, "object")), "model"));
        assert (json_is_integer (json_object_get (model, "created")));
        assert (
            s_test_streq (json_string_value (json_object_get (model, "owned_by")), "aigw-mock"));
    }
    json_decref (root);
    s_reply_free (&reply);
    reply = s_test_call (mock, "GET", "/v1/models/gpt-4o", NULL, key, S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    s_reply_free (&reply);
    reply = s_test_call (mock, "GET", "/v1/models/nope", NULL, key, S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 404, "invalid_request_error");
    s_reply_free (&reply);

    //  Chat, not streamed
    const char *chat_body = "{\"model\":\"gpt-4o-mini\",\"messages\":["
                            "{\"role\":\"system\",\"content\":\"be brief\"},"
                            "{\"role\":\"user\",\"content\":\"hello there \\\"world\\\"\"}]}";
    reply = s_test_chat (mock, chat_body, key);
    assert (reply.status == 200);
    root = s_test_json (&reply);
    assert (strncmp (json_string_value (json_object_get (root, "id")), "chatcmpl-mock-", 14) == 0);
    assert (s_test_streq (json_string_value (json_object_get (root, "object")), "chat.completion"));
    assert (json_is_integer (json_object_get (root, "created")));
    assert (s_test_streq (json_string_value (json_object_get (root, "model")), "gpt-4o-mini"));
    json_t *choice = json_array_get (json_object_get (root, "choices"), 0);
    json_t *message = json_object_get (choice, "message");
    assert (s_test_streq (json_string_value (json_object_get (message, "role")), "assistant"));
    const char *expected = "Mock reply to: hello there \"world\"";
    assert (s_test_streq (json_string_value (json_object_get (message, "content")), expected));
    assert (s_test_streq (json_string_value (json_object_get (choice, "finish_reason")), "stop"));
    json_t *usage = json_object_get (root, "usage");
    assert (json_integer_value (json_object_get (usage, "prompt_tokens")) == 5);
    assert (json_integer_value (json_object_get (usage, "completion_tokens")) == 6);
    assert (json_integer_value (json_object_get (usage, "total_tokens")) == 11);
    json_decref (root);
    s_reply_free (&reply);

    //  Content parts; max_tokens cuts the reply
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\","
                         "\"content\":[{\"type\":\"text\",\"text\":\"part one\"},"
                         "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
                         "{\"type\":\"text\",\"text\":\"part two\"}]}]}",
                         key);
    assert (reply.status == 200);
    root = s_test_json (&reply);
    choice = json_array_get (json_object_get (root, "choices"), 0);
    message = json_object_get (choice, "message");
    assert (s_test_streq (json_string_value (json_object_get (message, "content")),
                          "Mock reply to: part"));
    assert (s_test_streq (json_string_value (json_object_get (choice, "finish_reason")), "length"));
    json_decref (root);
    s_reply_free (&reply);

    //  Streamed: role first, a chunk per word, finish, usage, [DONE]
    const char *stream_body = "{\"model\":\"gpt-4o-mini\",\"stream\":true,"
                              "\"stream_options\":{\"include_usage\":true},\"messages\":["
                              "{\"role\":\"system\",\"content\":\"be brief\"},"
                              "{\"role\":\"user\",\"content\":\"hello there \\\"world\\\"\"}]}";
    reply = s_test_chat (mock, stream_body, key);
    assert (reply.rc == CURLE_OK && reply.status == 200);
    assert (strstr (reply.headers, "text/event-stream"));
    json_t *chunks;
    s_buf_t content;
    s_buf_init (&content, 0);
    size_t count = s_test_stream (&reply, true, &chunks, &content);
    assert (s_test_streq (content.data, expected));
    assert (count == 1 + 6 + 1 + 1);
    json_t *first = json_array_get (chunks, 0);
    assert (s_test_streq (json_string_value (json_object_get (first, "object")),
                          "chat.completion.chunk"));
    json_t *delta
        = json_object_get (json_array_get (json_object_get (first, "choices"), 0), "delta");
    assert (s_test_streq (json_string_value (json_object_get (delta, "role")), "assistant"));
    json_t *finish = json_array_get (json_object_get (json_array_get (chunks, 7), "choices"), 0);
    assert (s_test_streq (json_string_value (json_object_get (finish, "finish_reason")), "stop"));
    json_t *last = json_array_get (chunks, 8);
    assert (json_array_size (json_object_get (last, "choices")) == 0);
    usage = json_object_get (last, "usage");
    assert (json_integer_value (json_object_get (usage, "total_tokens")) == 11);
    json_decref (chunks);
    s_buf_free (&content);
    s_reply_free (&reply);

    //  mock:chunks=N streams exactly N content chunks
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                         "\"content\":\"mock:chunks=11\"}]}",
                         key);
    assert (reply.status == 200);
    s_buf_init (&content, 0);
    count = s_test_stream (&reply, true, &chunks, &content);
    assert (count == 1 + 11 + 1);
    assert (s_count_words (content.data, content.size) == 11);
    json_decref (chunks);
    s_buf_free (&content);
    s_reply_free (&reply);

    //  mock:die_after=N: N content chunks, then the connection drops
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                         "\"content\":\"please mock:die_after=2 now\"}]}",
                         key);
    assert (reply.rc != CURLE_OK);
    s_buf_init (&content, 0);
    count = s_test_stream (&reply, false, &chunks, &content);
    assert (count == 1 + 2);
    assert (s_test_streq (content.data, "Mock reply "));
    json_decref (chunks);
    s_buf_free (&content);
    s_reply_free (&reply);

    //  Embeddings: deterministic unit vectors, float and base64 forms
    reply = s_test_call (mock, "POST", "/v1/embeddings",
                         "{\"model\":\"text-embedding-3-small\",\"input\":[\"alpha\",\"beta\"]}",
                         key, S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    root = s_test_json (&reply);
    assert (s_test_streq (json_string_value (json_object_get (root, "object")), "list"));
    data = json_object_get (root, "data");
    assert (json_array_size (data) == 2);
    json_t *vector0 = json_object_get (json_array_get (data, 0), "embedding");
    json_t *vector1 = json_object_get (json_array_get (data, 1), "embedding");
    assert (json_array_size (vector0) == AIGW_MOCK_EMBED_DIMS);
    assert (!json_equal (vector0, vector1));
    assert (json_integer_value (json_object_get (json_array_get (data, 1), "index")) == 1);
    assert (s_test_streq (json_string_value (json_object_get (json_array_get (data, 0), "object")),
                          "embedding"));
    assert (json_integer_value (json_object_get (json_object_get (root, "usage"), "prompt_tokens"))
            == 2);
    double norm = 0;
    for (size_t i = 0; i < AIGW_MOCK_EMBED_DIMS; i++) {
        double value = json_number_value (json_array_get (vector0, i));
        norm += value * value;
    }
    assert (norm > 0.999 && norm < 1.001);
    //  A bag of words: a paraphrase lands close, another question apart
    {
        const char *texts[] = {"How do I turn on the kitchen lights?",
                               "Please, how do I turn on the kitchen lights",
                               "What is the capital city of France?"};
        float bags[3][AIGW_MOCK_EMBED_DIMS];
        for (int t = 0; t < 3; t++)
            s_embed (texts[t], strlen (texts[t]), bags[t]);
        double near = 0, far = 0;
        for (int i = 0; i < AIGW_MOCK_EMBED_DIMS; i++) {
            near += (double) bags[0][i] * bags[1][i];
            far += (double) bags[0][i] * bags[2][i];
        }
        if (verbose)
            printf ("mock: bag of words: paraphrase %.3f, other %.3f\n", near, far);
        assert (near > 0.85 && far < 0.5);
    }
    s_reply_t again = s_test_call (mock, "POST", "/v1/embeddings",
                                   "{\"model\":\"e\",\"input\":\"alpha\"}", key, S_TEST_TIMEOUT_MS);
    json_t *root2 = s_test_json (&again);
    assert (
        json_equal (vector0, json_object_get (json_array_get (json_object_get (root2, "data"), 0),
                                              "embedding")));
    json_decref (root2);
    s_reply_free (&again);
    again = s_test_call (mock, "POST", "/v1/embeddings",
                         "{\"model\":\"e\",\"input\":\"alpha\",\"encoding_format\":\"base64\"}",
                         key, S_TEST_TIMEOUT_MS);
    root2 = s_test_json (&again);
    const char *encoded = json_string_value (
        json_object_get (json_array_get (json_object_get (root2, "data"), 0), "embedding"));
    float floats[AIGW_MOCK_EMBED_DIMS];
    for (size_t i = 0; i < AIGW_MOCK_EMBED_DIMS; i++)
        floats[i] = (float) json_number_value (json_array_get (vector0, i));
    s_buf_t expect64;
    s_buf_init (&expect64, 0);
    s_buf_base64 (&expect64, (const unsigned char *) floats, sizeof floats);
    assert (s_test_streq (encoded, expect64.data));
    s_buf_free (&expect64);
    json_decref (root2);
    s_reply_free (&again);
    json_decref (root);
    s_reply_free (&reply);

    //  401 without a key, or with an empty one
    reply = s_test_call (mock, "GET", "/v1/models", NULL, NULL, S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 401, "invalid_request_error");
    s_reply_free (&reply);
    reply = s_test_chat (mock, chat_body, "");
    s_test_error (&reply, 401, "invalid_request_error");
    s_reply_free (&reply);

    //  400: bad JSON, missing fields, too deep
    reply = s_test_chat (mock, "{\"model\":", key);
    s_test_error (&reply, 400, "invalid_request_error");
    s_reply_free (&reply);
    reply = s_test_chat (mock, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", key);
    s_test_error (&reply, 400, "invalid_request_error");
    s_reply_free (&reply);
    reply = s_test_chat (mock, "{\"model\":\"m\"}", key);
    s_test_error (&reply, 400, "invalid_request_error");
    assert (strstr (reply.body, "\"param\":\"messages\""));
    s_reply_free (&reply);
    char deep[AIGW_MOCK_JSON_DEPTH_MAX * 2 + 8];
    memset (deep, '[', AIGW_MOCK_JSON_DEPTH_MAX + 1);
    memset (deep + AIGW_MOCK_JSON_DEPTH_MAX + 1, ']', AIGW_MOCK_JSON_DEPTH_MAX + 1);
    deep[AIGW_MOCK_JSON_DEPTH_MAX * 2 + 2] = 0;
    reply = s_test_call (mock, "POST", "/v1/embeddings", deep, key, S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 400, "invalid_request_error");
    s_reply_free (&reply);

    //  404: unknown paths, inside and outside /v1
    reply = s_test_call (mock, "GET", "/v1/nope", NULL, key, S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 404, "invalid_request_error");
    s_reply_free (&reply);
    reply = s_test_call (mock, "GET", "/elsewhere", NULL, NULL, S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 404, NULL);
    s_reply_free (&reply);

    //  mock:status=CODE, with Retry-After on a 429
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"mock:status=503\"}]}",
                         key);
    s_test_error (&reply, 503, "server_error");
    s_reply_free (&reply);
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                         "\"content\":\"mock:status=429\"}]}",
                         key);
    s_test_error (&reply, 429, NULL);
    assert (strcasestr (reply.headers, "Retry-After: 1"));
    s_reply_free (&reply);

    //  mock:latency=MS delays the answer at least that long
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"mock:latency=200\"}]}",
                         key);
    assert (reply.status == 200);
    assert (reply.elapsed_ms >= 200);
    s_reply_free (&reply);

    //  mock:hang answers nothing; the handler ends when the client leaves
    reply = s_test_call (mock, "POST", "/v1/chat/completions",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"mock:hang\"}]}",
                         key, S_TEST_GIVE_UP_MS);
    assert (reply.rc == CURLE_OPERATION_TIMEDOUT);
    assert (reply.size == 0);
    s_reply_free (&reply);
    int64_t give_up = s_now_ms () + S_TEST_TIMEOUT_MS;
    while (s_test_stat (mock, "in_flight") > 0 && s_now_ms () < give_up)
        s_sleep_ms (mock, AIGW_MOCK_SLEEP_SLICE_MS);
    assert (s_test_stat (mock, "in_flight") == 0);

    //  mock:chunk_delay=MS pauses before each content and finish chunk
    reply = s_test_chat (mock,
                         "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":"
                         "\"user\",\"content\":\"mock:chunk_delay=30 x\"}]}",
                         key);
    assert (reply.rc == CURLE_OK && reply.status == 200);
    assert (reply.elapsed_ms >= 6 * 30);
    s_reply_free (&reply);

    //  Stats count what reached the upstream; reset zeroes them
    reply = s_test_call (mock, "POST", "/mock/reset", "", NULL, S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    s_reply_free (&reply);
    assert (s_test_stat (mock, "requests") == 0);
    reply = s_test_chat (mock, chat_body, key);
    s_reply_free (&reply);
    reply = s_test_chat (mock, stream_body, key);
    s_reply_free (&reply);
    reply = s_test_call (mock, "POST", "/v1/embeddings", "{\"model\":\"e\",\"input\":\"alpha\"}",
                         key, S_TEST_TIMEOUT_MS);
    s_reply_free (&reply);
    reply = s_test_call (mock, "GET", "/v1/models", NULL, key, S_TEST_TIMEOUT_MS);
    s_reply_free (&reply);
    assert (s_test_stat (mock, "requests") == 4);
    assert (s_test_stat (mock, "chat") == 2);
    assert (s_test_stat (mock, "stream") == 1);
    assert (s_test_stat (mock, "embeddings") == 1);

    //  Per-route injection: --route specs, then /mock/config at run time
    char err[AIGW_MOCK_ERROR_TEXT];
    assert (aigw_mock_set_route (mock, "nope:fail=1", err, sizeof err) == -1);
    assert (strstr (err, "unknown route"));
    assert (aigw_mock_set_route (mock, "openai:fail=1.5", err, sizeof err) == -1);
    assert (aigw_mock_set_route (mock, "openai:retry_after=99999", err, sizeof err) == -1);
    assert (aigw_mock_set_route (mock, "openai:rate429=1,retry_after=3", err, sizeof err) == 0);
    reply = s_test_chat (mock, chat_body, key);
    s_test_error (&reply, 429, NULL);
    assert (strcasestr (reply.headers, "Retry-After: 3"));
    s_reply_free (&reply);
    assert (aigw_mock_set_route (mock, "openai:fail=1,status=502", err, sizeof err) == 0);
    reply = s_test_chat (mock, chat_body, key);
    s_test_error (&reply, 502, "server_error");
    s_reply_free (&reply);
    reply = s_test_call (mock, "DELETE", "/mock/config", NULL, NULL, S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    s_reply_free (&reply);
    reply = s_test_chat (mock, chat_body, key);
    assert (reply.status == 200);
    s_reply_free (&reply);
    reply = s_test_call (mock, "POST", "/mock/config",
                         "{\"route\":\"openai\",\"fail_rate\":1,\"fail_status\":503}", NULL,
                         S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    s_reply_free (&reply);
    reply = s_test_chat (mock, chat_body, key);
    s_test_error (&reply, 503, NULL);
    s_reply_free (&reply);
    reply = s_test_call (mock, "POST", "/mock/config", "{\"route\":\"openai\",\"x\":1}", NULL,
                         S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 400, "invalid_request_error");
    s_reply_free (&reply);
    assert (aigw_mock_set_route (mock, "openai", err, sizeof err) == 0);

    //  The ring records what was sent, and reset empties it
    reply = s_test_call (mock, "GET", "/mock/requests", NULL, NULL, S_TEST_TIMEOUT_MS);
    root = s_test_json (&reply);
    assert (json_array_size (root) > 0);
    json_t *newest = json_array_get (root, json_array_size (root) - 1);
    assert (s_test_streq (json_string_value (json_object_get (newest, "route")), "openai"));
    assert (json_is_object (json_object_get (newest, "body")));
    assert (strncmp (json_string_value (
                         json_object_get (json_object_get (newest, "headers"), "authorization")),
                     "Bearer ", 7)
            == 0);
    //  ... with its credentials redacted
    assert (!strstr (reply.body, key));
    json_decref (root);
    s_reply_free (&reply);
    char shown[AIGW_MOCK_REDACTED_MAX];
    const char *bearer = s_redact ("Authorization", "Bearer sk-mock-test-key", shown, sizeof shown);
    assert (strncmp (bearer, "Bearer sk-m...[16 chars, sha256:", 32) == 0 && strlen (bearer) == 41
            && bearer[40] == ']' && !strstr (bearer, "test-key"));
    assert (strcmp (s_redact ("x-api-key", "short", shown, sizeof shown), shown) == 0
            && strncmp (shown, "...[5 chars, sha256:", 20) == 0);
    assert (strcmp (s_redact ("content-type", "application/json", shown, sizeof shown),
                    "application/json")
            == 0);
    assert (!s_redact ("api-key", NULL, shown, sizeof shown));
    const char *aws
        = s_redact ("authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE123/20240101/us-east-1/"
                    "bedrock/aws4_request, SignedHeaders=host;x-amz-date, "
                    "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    shown, sizeof shown);
    assert (strncmp (aws, "AWS4-HMAC-SHA256 Credential=AKID...[14 chars, sha256:", 53) == 0
            && strstr (aws, "]/20240101/us-east-1/bedrock/aws4_request, "
                            "SignedHeaders=host;x-amz-date, Signature=0123...[64 chars, sha256:")
            && !strstr (aws, "AKIDEXAMPLE") && !strstr (aws, "0123456789abcdef"));
    reply = s_test_call (mock, "POST", "/mock/reset", "", NULL, S_TEST_TIMEOUT_MS);
    s_reply_free (&reply);
    reply = s_test_call (mock, "GET", "/mock/requests", NULL, NULL, S_TEST_TIMEOUT_MS);
    assert (s_test_streq (reply.body, "[]"));
    s_reply_free (&reply);

    aigw_mock_destroy (&mock);
    assert (mock == NULL);
    aigw_mock_destroy (&mock);

    //  Flags: fail rate 1.0 fails everything, latency delays everything
    mock = aigw_mock_new_threads (0, 100, 1.0, 4);
    assert (mock);
    reply = s_test_chat (mock, chat_body, key);
    s_test_error (&reply, 500, "server_error");
    assert (strstr (reply.body, "mock failure"));
    assert (reply.elapsed_ms >= 100);
    s_reply_free (&reply);
    aigw_mock_destroy (&mock);

    //  A pinned key (AIGW_MOCK_API_KEY) is the only one accepted
    char *saved = env_key ? strdup (env_key) : NULL;
    setenv ("AIGW_MOCK_API_KEY", "sk-pinned", 1);
    mock = aigw_mock_new (0, 0, 0.0);
    if (saved)
        setenv ("AIGW_MOCK_API_KEY", saved, 1);
    else
        unsetenv ("AIGW_MOCK_API_KEY");
    free (saved);
    assert (mock);
    reply = s_test_call (mock, "GET", "/v1/models", NULL, "sk-other", S_TEST_TIMEOUT_MS);
    s_test_error (&reply, 401, NULL);
    assert (!strstr (reply.body, "sk-other"));
    s_reply_free (&reply);
    reply = s_test_call (mock, "GET", "/v1/models", NULL, "sk-pinned", S_TEST_TIMEOUT_MS);
    assert (reply.status == 200);
    s_reply_free (&reply);
    aigw_mock_destroy (&mock);

    //  Stopping does not wait for a hanging request
    {
        s_test_hang_key = key;
        s_test_hang_mock = aigw_mock_new_threads (0, 0, 0.0, 4);
        assert (s_test_hang_mock);
        pthread_t client;
        s_reply_t hung = {0};
        int rc = pthread_create (&client, NULL, s_test_hang_client, &hung);
        assert (rc == 0);
        give_up = s_now_ms () + S_TEST_TIMEOUT_MS;
        while (s_test_stat (s_test_hang_mock, "in_flight") == 0 && s_now_ms () < give_up)
            s_sleep_ms (s_test_hang_mock, AIGW_MOCK_SLEEP_SLICE_MS);
        int64_t start = s_now_ms ();
        aigw_mock_destroy (&s_test_hang_mock);
        assert (s_now_ms () - start < S_TEST_STOP_MAX_MS);
        pthread_join (client, NULL);
        assert (hung.rc != CURLE_OK && hung.rc != CURLE_OPERATION_TIMEDOUT);
        s_reply_free (&hung);
    }

    //  A port in use cannot be bound twice
    mock = aigw_mock_new_threads (0, 0, 0.0, 2);
    assert (mock);
    aigw_mock_t *clash = aigw_mock_new_threads (aigw_mock_port (mock), 0, 0.0, 2);
    assert (clash == NULL);
    aigw_mock_destroy (&mock);
    aigw_mock_destroy (&mock);

    curl_global_cleanup ();
}
