/*  aigw_usagescan: token counts from an answer's usage objects. */
#include "aigw_usagescan.h"
#include "aigw_json.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Deepest nesting the strict scanner follows; deeper goes to Jansson.
#define S_DEPTH_MAX 8

//  What a key held, last occurrence first (a parser keeps the last).
typedef enum { S_NONE, S_INT, S_OBJECT, S_OTHER } s_kind_t;

typedef struct {
    s_kind_t kind;
    int64_t value;  //  S_INT's
} s_val_t;

//  The fields of one usage object the counts come from.
typedef struct {
    s_val_t prompt;          //  prompt_tokens
    s_val_t completion;      //  completion_tokens
    s_val_t input;           //  input_tokens
    s_val_t output;          //  output_tokens
    s_val_t cache_read;      //  cache_read_input_tokens
    s_val_t cache_creation;  //  cache_creation_input_tokens
    s_val_t prompt_details;  //  prompt_tokens_details (kind only)
    s_val_t prompt_cached;   //  prompt_tokens_details.cached_tokens
    s_val_t input_details;   //  input_tokens_details (kind only)
    s_val_t input_cached;    //  input_tokens_details.cached_tokens
} s_usage_t;

//  Which object the scanner is in.
typedef enum { S_TOP, S_PROMPT_DETAILS, S_INPUT_DETAILS, S_IGNORED } s_where_t;

//  A + B + C as int64 with wrap-around (as the sum of two's complement
//  values would be), not undefined on overflow.
static int64_t
s_sum (int64_t a, int64_t b, int64_t c)
{
    return (int64_t) ((uint64_t) a + (uint64_t) b + (uint64_t) c);
}

//  Apply U's counts (s_usage_t filled by either reader).
static void
s_apply (const s_usage_t *u, int64_t *in, int64_t *out, int64_t *cached)
{
    if (u->prompt.kind == S_INT)
        *in = u->prompt.value;
    if (u->completion.kind == S_INT)
        *out = u->completion.value;
    if (u->prompt_details.kind == S_OBJECT && u->prompt_cached.kind == S_INT)
        *cached = u->prompt_cached.value;
    if (u->input.kind == S_INT) {
        *in = s_sum (u->input.value, u->cache_read.kind == S_INT ? u->cache_read.value : 0,
                     u->cache_creation.kind == S_INT ? u->cache_creation.value : 0);
        if (u->cache_read.kind == S_INT)
            *cached = u->cache_read.value;
    }
    if (u->output.kind == S_INT)
        *out = u->output.value;
    //  OpenAI Responses: input_tokens counts the cached ones too.
    if (u->input_details.kind == S_OBJECT && u->input_cached.kind == S_INT)
        *cached = u->input_cached.value;
}

//  --------------------------------------------------------------------------
//  Jansson's reading

static s_val_t
s_val (json_t *value)
{
    s_val_t v = {S_NONE, 0};
    if (json_is_integer (value))
        v.kind = S_INT, v.value = json_integer_value (value);
    else if (json_is_object (value))
        v.kind = S_OBJECT;
    else if (value)
        v.kind = S_OTHER;
    return v;
}

static void
s_parsed (json_t *usage, s_usage_t *u)
{
    memset (u, 0, sizeof *u);
    u->prompt = s_val (json_object_get (usage, "prompt_tokens"));
    u->completion = s_val (json_object_get (usage, "completion_tokens"));
    u->input = s_val (json_object_get (usage, "input_tokens"));
    u->output = s_val (json_object_get (usage, "output_tokens"));
    u->cache_read = s_val (json_object_get (usage, "cache_read_input_tokens"));
    u->cache_creation = s_val (json_object_get (usage, "cache_creation_input_tokens"));
    json_t *details = json_object_get (usage, "prompt_tokens_details");
    u->prompt_details = s_val (details);
    u->prompt_cached = s_val (json_object_get (details, "cached_tokens"));
    details = json_object_get (usage, "input_tokens_details");
    u->input_details = s_val (details);
    u->input_cached = s_val (json_object_get (details, "cached_tokens"));
}

//  --------------------------------------------------------------------------
//  The strict scanner

//  Past the string whose quote is at T[I], or 0 when it holds an escape, a
//  control byte or a byte past ASCII (Jansson decides those), or does not
//  end.
static size_t
s_string (const char *t, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char) t[i];
        if (c == '"')
            return i + 1;
        if (c == '\\' || c < 0x20 || c >= 0x80)
            return 0;
    }
    return 0;
}

//  The integer at T[I] as JSON writes one (-?(0|[1-9][0-9]*), not followed
//  by a fraction or an exponent) into *VALUE; past it, or 0 when it is not
//  one or does not fit in 64 bits.
static size_t
s_integer (const char *t, size_t len, size_t i, int64_t *value)
{
    bool negative = i < len && t[i] == '-';
    if (negative)
        i++;
    if (i >= len || t[i] < '0' || t[i] > '9')
        return 0;
    uint64_t magnitude = 0;
    size_t start = i;
    for (; i < len && t[i] >= '0' && t[i] <= '9'; i++) {
        if (magnitude > (UINT64_MAX - 9) / 10)
            return 0;
        magnitude = magnitude * 10 + (uint64_t) (t[i] - '0');
    }
    if ((t[start] == '0' && i - start > 1) || i >= len || t[i] == '.' || t[i] == 'e' || t[i] == 'E')
        return 0;
    if (negative ? magnitude > (uint64_t) INT64_MAX + 1 : magnitude > (uint64_t) INT64_MAX)
        return 0;
    *value = negative ? (int64_t) (0 - magnitude) : (int64_t) magnitude;
    return i;
}

//  The slot of KEY (LEN bytes) in U for an object at WHERE, or NULL.
static s_val_t *
s_slot (s_usage_t *u, s_where_t where, const char *key, size_t len)
{
#define S_IS(name) (len == sizeof name - 1 && memcmp (key, name, len) == 0)
    if (where == S_TOP) {
        if (S_IS ("prompt_tokens"))
            return &u->prompt;
        if (S_IS ("completion_tokens"))
            return &u->completion;
        if (S_IS ("input_tokens"))
            return &u->input;
        if (S_IS ("output_tokens"))
            return &u->output;
        if (S_IS ("cache_read_input_tokens"))
            return &u->cache_read;
        if (S_IS ("cache_creation_input_tokens"))
            return &u->cache_creation;
        if (S_IS ("prompt_tokens_details"))
            return &u->prompt_details;
        if (S_IS ("input_tokens_details"))
            return &u->input_details;
    }
    else if (where == S_PROMPT_DETAILS && S_IS ("cached_tokens"))
        return &u->prompt_cached;
    else if (where == S_INPUT_DETAILS && S_IS ("cached_tokens"))
        return &u->input_cached;
    return NULL;
#undef S_IS
}

//  Scan the object whose brace is at T[I], at WHERE, into U. Past it, or 0
//  when it leaves the strict subset.
static size_t
s_object (const char *t, size_t len, size_t i, s_where_t where, int depth, s_usage_t *u)
{
    if (depth > S_DEPTH_MAX)
        return 0;
    i = aigw_json_space (t, len, i + 1);
    if (i < len && t[i] == '}')
        return i + 1;
    while (i < len && t[i] == '"') {
        size_t key_end = s_string (t, len, i);
        if (!key_end)
            return 0;
        s_val_t *slot = s_slot (u, where, t + i + 1, key_end - i - 2);
        i = aigw_json_space (t, len, key_end);
        if (i >= len || t[i] != ':')
            return 0;
        i = aigw_json_space (t, len, i + 1);
        if (i >= len)
            return 0;
        s_val_t v = {S_OTHER, 0};
        char c = t[i];
        if (c == '{') {
            //  A details object again replaces the one before, as a parser's
            //  last occurrence would.
            s_where_t inner = S_IGNORED;
            if (slot == &u->prompt_details) {
                inner = S_PROMPT_DETAILS;
                u->prompt_cached.kind = S_NONE;
            }
            else if (slot == &u->input_details) {
                inner = S_INPUT_DETAILS;
                u->input_cached.kind = S_NONE;
            }
            i = s_object (t, len, i, inner, depth + 1, u);
            v.kind = S_OBJECT;
        }
        else if (c == '"')
            i = s_string (t, len, i);
        else if (c == '-' || (c >= '0' && c <= '9')) {
            i = s_integer (t, len, i, &v.value);
            v.kind = S_INT;
        }
        else if (c == 't' && len - i >= 4 && memcmp (t + i, "true", 4) == 0)
            i += 4;
        else if (c == 'f' && len - i >= 5 && memcmp (t + i, "false", 5) == 0)
            i += 5;
        else if (c == 'n' && len - i >= 4 && memcmp (t + i, "null", 4) == 0)
            i += 4;
        else
            return 0;
        if (!i)
            return 0;
        if (slot) {
            *slot = v;
            //  A details key that is no object has no cached tokens.
            if (slot == &u->prompt_details && v.kind != S_OBJECT)
                u->prompt_cached.kind = S_NONE;
            if (slot == &u->input_details && v.kind != S_OBJECT)
                u->input_cached.kind = S_NONE;
        }
        i = aigw_json_space (t, len, i);
        if (i < len && t[i] == '}')
            return i + 1;
        if (i >= len || t[i] != ',')
            return 0;
        i = aigw_json_space (t, len, i + 1);
    }
    return 0;
}

//  --------------------------------------------------------------------------

//  Each usage object of BODY, read by the scanner (STRICT) or Jansson.
static void
s_scan (const char *body, size_t len, int64_t *in, int64_t *out, int64_t *cached, bool strict)
{
    static const char needle[] = "\"usage\"";
    const char *end = body + len;
    const char *at = body;
    while (at < end && (at = memmem (at, (size_t) (end - at), needle, sizeof needle - 1)) != NULL) {
        at += sizeof needle - 1;
        while (at < end && (*at == ' ' || *at == ':' || *at == '\n' || *at == '\t' || *at == '\r'))
            at++;
        if (at >= end || *at != '{')
            continue;  //  "usage": null, say
        s_usage_t u;
        memset (&u, 0, sizeof u);
        if (strict && s_object (at, (size_t) (end - at), 0, S_TOP, 1, &u)) {
            s_apply (&u, in, out, cached);
            continue;
        }
        json_t *usage = json_loadb (at, (size_t) (end - at), JSON_DISABLE_EOF_CHECK, NULL);
        if (json_is_object (usage)) {
            s_parsed (usage, &u);
            s_apply (&u, in, out, cached);
        }
        json_decref (usage);
    }
}

void
aigw_usagescan (const char *body, size_t len, int64_t *in, int64_t *out, int64_t *cached)
{
    if (body)
        s_scan (body, len, in, out, cached, true);
}

void
aigw_usagescan_parsed (const char *body, size_t len, int64_t *in, int64_t *out, int64_t *cached)
{
    if (body)
        s_scan (body, len, in, out, cached, false);
}

//  --------------------------------------------------------------------------
//  Selftest

//  Both readers on TEXT give IN, OUT and CACHED (-1: left as it was).
static void
s_test (const char *text, int64_t in, int64_t out, int64_t cached)
{
    int64_t a[3] = {-1, -1, -1}, b[3] = {-1, -1, -1};
    aigw_usagescan (text, strlen (text), &a[0], &a[1], &a[2]);
    aigw_usagescan_parsed (text, strlen (text), &b[0], &b[1], &b[2]);
    if (a[0] != in || a[1] != out || a[2] != cached || memcmp (a, b, sizeof a) != 0)
        printf ("\n    %s: %lld %lld %lld / %lld %lld %lld", text, (long long) a[0],
                (long long) a[1], (long long) a[2], (long long) b[0], (long long) b[1],
                (long long) b[2]);
    assert (a[0] == in && a[1] == out && a[2] == cached);
    assert (memcmp (a, b, sizeof a) == 0);
}

void
aigw_usagescan_test (bool verbose)
{
    //  OpenAI, with details beside; Anthropic with cache reads and writes;
    //  a stream's two objects; Responses.
    s_test ("{\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14,"
            "\"prompt_tokens_details\":{\"cached_tokens\":5,\"audio_tokens\":0},"
            "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
            12, 2, 5);
    s_test ("{\"usage\": {\"input_tokens\": 10, \"cache_creation_input_tokens\": 3, "
            "\"cache_read_input_tokens\": 4, \"output_tokens\": 7, \"service_tier\": \"standard\", "
            "\"cache_creation\": {\"ephemeral_5m_input_tokens\": 3}, \"server_tool_use\": null}}",
            17, 7, 4);
    s_test ("event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":9,"
            "\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":"
            "30}}\n\n",
            9, 30, -1);
    s_test ("{\"usage\":{\"input_tokens\":20,\"input_tokens_details\":{\"cached_tokens\":8},"
            "\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":1}}}",
            20, 3, 8);
    //  Left to Jansson, with the same outcome: a float, an array, an escape,
    //  non-ASCII text, a duplicate, malformed text, a number too big.
    s_test ("{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":2}}", -1, 2, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":3,\"x\":[1,2],\"completion_tokens\":2}}", 3, 2, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":3,\"note\":\"a\\\"b\",\"completion_tokens\":2}}", 3, 2,
            -1);
    s_test ("{\"usage\":{\"prompt_tokens\":3,\"note\":\"caf\xc3\xa9\"}}", 3, -1, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":3,\"prompt_tokens\":4}}", 4, -1, -1);
    s_test ("{\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":2},"
            "\"prompt_tokens_details\":{}}}",
            -1, -1, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":3,", -1, -1, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":99999999999999999999}}", -1, -1, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":012}}", -1, -1, -1);
    s_test ("{\"usage\":{\"prompt_tokens\":-0,\"completion_tokens\":-9223372036854775808}}", 0,
            INT64_MIN, -1);
    s_test ("{\"usage\":null,\"x\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":5}\"}", -1, -1, -1);
    //  Sums wrap as two's complement values would, never undefined.
    s_test ("{\"usage\":{\"input_tokens\":9223372036854775807,\"cache_read_input_tokens\":1}}",
            INT64_MIN, -1, 1);
    aigw_usagescan (NULL, 5, NULL, NULL, NULL);
    if (verbose)
        printf ("usagescan: ok\n");
}
