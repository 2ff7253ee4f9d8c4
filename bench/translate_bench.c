/*  translate_bench: what the Anthropic translation costs per request,
    in-process (no sockets), beside the floor of just parsing and
    re-serialising the same JSON with Jansson, in the same run.

    Measured, on two realistic bodies (a ~2 KB chat: system prompt, three
    user turns with two assistant answers between them, one tool; and a
    ~20 KB one of the same shape with longer turns):
      - OpenAI -> Anthropic request   (aigw_anthropic_request_from_openai)
      - Anthropic -> OpenAI response  (aigw_anthropic_response_to_openai)
      - a streamed answer of N events through aigw_anthropic_stream_feed
        (message_start, a text block of N-5 deltas, message_delta,
        message_stop), per stream and per event
    and for each, json_loads + json_dumps (JSON_COMPACT) of the same input
    (for a stream: of every event), the floor any JSON-to-JSON translation
    pays.

    Each figure is the median over BENCH_BATCHES batches of ns per call, in
    this thread's CPU time (so time preempted on a shared machine is left
    out), and the calls/s of one core that median gives; batches of the
    operation and of its floor alternate. Timings are printed, never
    asserted.
    Usage: aigw_bench_translate [calls per batch, default 2000] */
#include "aigw_anthropic.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Asserts stay on in release builds (STYLE.md): a failed translation here
//  is a broken benchmark, not input to answer.
#undef NDEBUG
#include <assert.h>

//  Calls per batch when none are given (a 20 KB stream batch is divided).
#define BENCH_CALLS_DEFAULT 2000
//  Batches per figure; the median is reported.
#define BENCH_BATCHES 11
//  Target sizes of the two request bodies, bytes.
#define BENCH_SMALL_BYTES 2048
#define BENCH_LARGE_BYTES 20480
//  Events in the two streamed answers.
#define BENCH_STREAM_SHORT 50
#define BENCH_STREAM_LONG  500
//  Events around the text deltas: message_start, content_block_start,
//  content_block_stop, message_delta, message_stop.
#define BENCH_STREAM_FRAMING 5
//  Room for an error message from the translator.
#define BENCH_ERR_MAX 256
//  Nanoseconds per second.
#define BENCH_NS_PER_S 1000000000.0

//  Filler prose for message bodies: English-looking, with the punctuation
//  and a quote that JSON escaping sees in real chats.
static const char s_prose[]
    = "The quarterly report shows revenue up 12% on last year, driven by the "
      "\"enterprise\" tier; churn fell to 2.1%. Summarise the risks, then list "
      "three actions with owners and dates.\n";

//  A string of about LEN bytes of prose. Caller owns it.
static char *
s_text (size_t len)
{
    char *text = malloc (len + 1);
    assert (text);
    size_t prose = strlen (s_prose);
    for (size_t at = 0; at < len; at++)
        text[at] = s_prose[at % prose];
    text[len] = 0;
    return text;
}

//  An OpenAI chat request of about TARGET bytes: a system prompt, three
//  user turns with two assistant answers between them, one tool
//  definition, the usual sampling settings. Caller owns the result.
static char *
s_openai_request (size_t target, size_t *len)
{
    //  The fixed parts (tool, settings, keys) come to ~900 bytes; the six
    //  messages share the rest.
    size_t turn = target > 1200 ? (target - 900) / 6 : 50;
    char *system = s_text (turn), *text = s_text (turn);
    json_t *tool = json_pack (
        "{s:s, s:{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:[s,s], s:s}}, s:[s]}}}", "type",
        "function", "function", "name", "get_sales_figures", "description",
        "Fetch quarterly sales figures for one region from the finance warehouse.", "parameters",
        "type", "object", "properties", "region", "type", "string", "description",
        "Sales region code, for example EMEA or APAC.", "unit", "type", "string", "enum", "usd",
        "eur", "description", "Currency of the figures.", "required", "region");
    json_t *root = json_pack (
        "{s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}],"
        " s:[o], s:s, s:i, s:f, s:f, s:[s], s:s}",
        "model", "gpt-4o", "messages", "role", "system", "content", system, "role", "user",
        "content", text, "role", "assistant", "content", text, "role", "user", "content", text,
        "role", "assistant", "content", text, "role", "user", "content", text, "tools", tool,
        "tool_choice", "auto", "max_tokens", 1024, "temperature", 0.7, "top_p", 0.95, "stop",
        "\n\nUser:", "user", "bench-user-42");
    assert (root);
    free (system);
    free (text);
    char *body = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    assert (body);
    *len = strlen (body);
    return body;
}

//  An Anthropic message response of about TARGET bytes: a text block and a
//  tool_use block, stop_reason tool_use, usage. Caller owns the result.
static char *
s_anthropic_response (size_t target, size_t *len)
{
    char *text = s_text (target > 600 ? target - 500 : 100);
    json_t *root = json_pack (
        "{s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s, s:s, s:{s:s, s:s}}], s:s, s:s, s:n,"
        " s:{s:i, s:i}}",
        "id", "msg_01XFDUDYJgAACzvnptvVoYEL", "type", "message", "role", "assistant", "content",
        "type", "text", "text", text, "type", "tool_use", "id", "toolu_01A09q90qw90lq917835lq9",
        "name", "get_sales_figures", "input", "region", "EMEA", "unit", "usd", "model",
        "claude-sonnet-4-5", "stop_reason", "tool_use", "stop_sequence", "usage", "input_tokens",
        472, "output_tokens", 389);
    assert (root);
    free (text);
    char *body = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    assert (body);
    *len = strlen (body);
    return body;
}

//  The data of the COUNT events of one streamed Anthropic answer, as an
//  array of strings the caller frees with s_events_free.
static char **
s_stream_events (size_t count)
{
    assert (count > BENCH_STREAM_FRAMING);
    char **events = calloc (count, sizeof *events);
    assert (events);
    size_t at = 0;
    events[at++] = strdup (
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},"
        "\"content\":[],\"stop_reason\":null}}");
    events[at++] = strdup ("{\"type\":\"content_block_start\",\"index\":0,"
                           "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    //  Deltas of a few words each, as Anthropic sends them.
    static const char *words[]
        = {"Revenue grew", " 12% on",       " last year,", " driven by", " the \\\"enterprise\\\"",
           " tier; churn", " fell to 2.1%."};
    size_t word_count = sizeof words / sizeof words[0];
    while (at < count - 3) {
        char event[BENCH_ERR_MAX];
        snprintf (event, sizeof event,
                  "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                  "\"text_delta\",\"text\":\"%s\"}}",
                  words[at % word_count]);
        events[at++] = strdup (event);
    }
    events[at++] = strdup ("{\"type\":\"content_block_stop\",\"index\":0}");
    events[at++] = strdup ("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                           "\"end_turn\",\"stop_sequence\":null},\"usage\":"
                           "{\"output_tokens\":389}}");
    events[at++] = strdup ("{\"type\":\"message_stop\"}");
    assert (at == count);
    for (size_t i = 0; i < count; i++)
        assert (events[i]);
    return events;
}

//  Frees what s_stream_events returned.
static void
s_events_free (char **events, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (events[i]);
    free (events);
}

//  What one timed call works on.
typedef struct {
    const char *body;    //  the input, for single-body cases
    size_t len;          //  bytes in body
    char **events;       //  the stream's events, for stream cases
    size_t *event_lens;  //  bytes of each event
    size_t event_count;  //  entries in events
} s_case_t;

//  One call of the operation under test on CASE; returns output bytes.
typedef size_t (s_call_fn) (s_case_t *c);

//  OpenAI -> Anthropic request.
static size_t
s_call_request (s_case_t *c)
{
    size_t out_len = 0;
    char err[BENCH_ERR_MAX];
    char *out = aigw_anthropic_request_from_openai (c->body, c->len, "claude-sonnet-4-5", &out_len,
                                                    err, sizeof err);
    if (!out)
        fprintf (stderr, "translate_bench: request: %s\n", err);
    assert (out);
    free (out);
    return out_len;
}

//  Anthropic -> OpenAI response.
static size_t
s_call_response (s_case_t *c)
{
    size_t out_len = 0;
    char err[BENCH_ERR_MAX];
    char *out
        = aigw_anthropic_response_to_openai (c->body, c->len, "gpt-4o", &out_len, err, sizeof err);
    if (!out)
        fprintf (stderr, "translate_bench: response: %s\n", err);
    assert (out);
    free (out);
    return out_len;
}

//  The floor: parse the body and serialise it back, compact.
static size_t
s_call_roundtrip (s_case_t *c)
{
    json_t *root = json_loadb (c->body, c->len, 0, NULL);
    assert (root);
    char *out = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    assert (out);
    size_t out_len = strlen (out);
    free (out);
    return out_len;
}

//  One whole streamed answer through a new translator, its output held in
//  one growing buffer as the provider holds it.
static size_t
s_call_stream (s_case_t *c)
{
    aigw_anthropic_stream_t *stream = aigw_anthropic_stream_new ("gpt-4o", "chatcmpl-bench");
    assert (stream);
    char *out = NULL;
    size_t out_len = 0;
    for (size_t i = 0; i < c->event_count; i++) {
        int rc
            = aigw_anthropic_stream_feed (stream, c->events[i], c->event_lens[i], &out, &out_len);
        assert (rc == 0);
    }
    assert (aigw_anthropic_stream_done (stream));
    aigw_anthropic_stream_destroy (&stream);
    free (out);
    return out_len;
}

//  The floor of a stream: parse and re-serialise every event.
static size_t
s_call_stream_roundtrip (s_case_t *c)
{
    size_t total = 0;
    for (size_t i = 0; i < c->event_count; i++) {
        json_t *root = json_loadb (c->events[i], c->event_lens[i], 0, NULL);
        assert (root);
        char *out = json_dumps (root, JSON_COMPACT);
        json_decref (root);
        assert (out);
        total += strlen (out);
        free (out);
    }
    return total;
}

//  This thread's CPU time in ns: on a shared machine, time spent preempted
//  does not count against the code under test (cache misses still do).
static double
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec * BENCH_NS_PER_S + (double) ts.tv_nsec;
}

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

//  ns per call of FN on CASE over one batch of CALLS calls.
static double
s_batch (s_call_fn *fn, s_case_t *c, int calls)
{
    double start = s_now_ns ();
    for (int i = 0; i < calls; i++)
        fn (c);
    return (s_now_ns () - start) / calls;
}

//  Median ns per call of FN and of FLOOR on CASE over BENCH_BATCHES
//  batches of CALLS calls each, after one warm-up batch of each. Batches
//  alternate between the two so that both see the same machine.
static void
s_measure (s_call_fn *fn, s_call_fn *floor, s_case_t *c, int calls, double *ns, double *floor_ns,
           size_t *out_bytes)
{
    double mine[BENCH_BATCHES], theirs[BENCH_BATCHES];
    for (int i = 0; i < calls; i++) {
        *out_bytes = fn (c);
        floor (c);
    }
    for (int batch = 0; batch < BENCH_BATCHES; batch++) {
        mine[batch] = s_batch (fn, c, calls);
        theirs[batch] = s_batch (floor, c, calls);
    }
    qsort (mine, BENCH_BATCHES, sizeof mine[0], s_compare_double);
    qsort (theirs, BENCH_BATCHES, sizeof theirs[0], s_compare_double);
    *ns = mine[BENCH_BATCHES / 2];
    *floor_ns = theirs[BENCH_BATCHES / 2];
}

//  Print one row: the operation, its ns per call and calls/s, the floor's,
//  and the ratio. PER: a divisor for a per-item figure (events), 0 = none.
static void
s_row (const char *name, size_t in_bytes, size_t out_bytes, double ns, double floor_ns, size_t per)
{
    printf ("%-44s %7zu %7zu %10.0f %10.0f %11.0f %6.2fx", name, in_bytes, out_bytes, ns, floor_ns,
            BENCH_NS_PER_S / ns, ns / floor_ns);
    if (per)
        printf ("  (%.0f ns/event, floor %.0f)", ns / (double) per, floor_ns / (double) per);
    printf ("\n");
}

int
main (int argc, char **argv)
{
    int calls = argc > 1 ? atoi (argv[1]) : BENCH_CALLS_DEFAULT;
    if (calls <= 0) {
        fprintf (stderr, "usage: aigw_bench_translate [calls per batch]\n");
        return 2;
    }
    printf ("thread CPU time, median of %d batches of %d calls (fewer for larger inputs); "
            "in/out in bytes\n",
            BENCH_BATCHES, calls);
    printf ("%-44s %7s %7s %10s %10s %11s %7s\n", "operation", "in", "out", "ns/call", "floor ns",
            "calls/s", "vs floor");

    const size_t sizes[] = {BENCH_SMALL_BYTES, BENCH_LARGE_BYTES};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        //  Larger bodies get proportionally fewer calls per batch.
        int n = (int) (calls * BENCH_SMALL_BYTES / sizes[s]);
        n = n > 0 ? n : 1;
        s_case_t c = {0};
        char *request = s_openai_request (sizes[s], &c.len);
        c.body = request;
        double ns, floor_ns;
        size_t out;
        s_measure (s_call_request, s_call_roundtrip, &c, n, &ns, &floor_ns, &out);
        char name[BENCH_ERR_MAX];
        snprintf (name, sizeof name, "request OpenAI->Anthropic, ~%zu KB", sizes[s] / 1024);
        s_row (name, c.len, out, ns, floor_ns, 0);
        free (request);

        char *response = s_anthropic_response (sizes[s], &c.len);
        c.body = response;
        s_measure (s_call_response, s_call_roundtrip, &c, n, &ns, &floor_ns, &out);
        snprintf (name, sizeof name, "response Anthropic->OpenAI, ~%zu KB", sizes[s] / 1024);
        s_row (name, c.len, out, ns, floor_ns, 0);
        free (response);
    }

    const size_t lengths[] = {BENCH_STREAM_SHORT, BENCH_STREAM_LONG};
    for (size_t s = 0; s < sizeof lengths / sizeof lengths[0]; s++) {
        s_case_t c = {0};
        c.event_count = lengths[s];
        c.events = s_stream_events (c.event_count);
        c.event_lens = calloc (c.event_count, sizeof *c.event_lens);
        assert (c.event_lens);
        size_t in_bytes = 0;
        for (size_t i = 0; i < c.event_count; i++)
            in_bytes += c.event_lens[i] = strlen (c.events[i]);
        int n = (int) ((size_t) calls * 10 / c.event_count);
        n = n > 0 ? n : 1;
        double ns, floor_ns;
        size_t out;
        s_measure (s_call_stream, s_call_stream_roundtrip, &c, n, &ns, &floor_ns, &out);
        char name[BENCH_ERR_MAX];
        snprintf (name, sizeof name, "stream Anthropic->OpenAI, %zu events", c.event_count);
        s_row (name, in_bytes, out, ns, floor_ns, c.event_count);
        s_events_free (c.events, c.event_count);
        free (c.event_lens);
    }
    return 0;
}
