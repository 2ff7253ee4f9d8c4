/*  fuzz_detect: libFuzzer target for the guardrail's detectors
    (actors/guardrail/aigw_detect, aigw_inject, aigw_patterns).

    Scans every input whole with the default set and a small policy list:
    matches must lie inside the text, in order of start, each non-empty
    and no longer than the hold-back allows; redaction must fit. Then
    scans it again as a stream, in chunks of a size the first byte picks,
    through the sliding window the header describes, and must find the
    same matches at the same offsets: a stream's verdict is the whole
    text's. CMake builds it (fuzz.detect, seeded with tests/fixtures/
    guardrail). */
#include "aigw_detect.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Most matches compared between the whole scan and the stream.
#define S_MATCHES_MAX 256

//  One match as compared.
typedef struct {
    const char *rule;  //  rule name
    size_t start;      //  stream offset
    size_t end;        //  stream offset
} s_seen_t;

static aigw_detect_t *s_engine;

static int
s_cmp (const void *a, const void *b)
{
    const s_seen_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp (x->rule, y->rule);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_engine) {
        static aigw_patterns_entry_t entries[]
            = {{"internal", "internal-[0-9]{4}", false, true}, {"acme", "acme corp", true, true}};
        aigw_detect_config_t config
            = {.detectors = AIGW_DETECT_DEFAULT, .patterns = entries, .pattern_count = 2};
        char err[200];
        s_engine = aigw_detect_new (&config, err, sizeof err);
        assert (s_engine);
    }
    if (size < 1)
        return 0;
    size_t chunk = 8 + data[0] % 249;
    const char *text = (const char *) data + 1;
    size_t len = size - 1;
    aigw_detect_result_t result;
    assert (aigw_detect_scan (s_engine, text, len, NULL, &result) == 0);
    static s_seen_t whole[S_MATCHES_MAX], stream[S_MATCHES_MAX];
    size_t whole_count = 0, stream_count = 0;
    for (size_t m = 0; m < result.count; m++) {
        const aigw_detect_match_t *match = &result.matches[m];
        assert (match->start < match->end && match->end <= len);
        assert (m == 0 || result.matches[m - 1].start <= match->start);
        assert (match->score > 0 && match->score <= 1);
        if (whole_count < S_MATCHES_MAX)
            whole[whole_count++] = (s_seen_t){match->rule, match->start, match->end};
    }
    assert (result.injection_score >= 0 && result.injection_score <= 1);
    char *out = malloc (len * 2 + 64);
    assert (aigw_detect_redact (text, len, &result, out, len * 2 + 64) >= 0);
    free (out);
    if (result.count >= S_MATCHES_MAX)
        return 0;

    //  The same text as a stream.
    size_t released = 0, arrived = 0, seen_end = 0;
    while (true) {
        arrived = arrived + chunk < len ? arrived + chunk : len;
        bool more = arrived < len;
        size_t base = released > AIGW_DETECT_CONTEXT ? released - AIGW_DETECT_CONTEXT : 0;
        aigw_detect_window_t win = {released - base, seen_end > base ? seen_end - base : 0, more};
        assert (aigw_detect_scan (s_engine, text + base, arrived - base, &win, &result) == 0);
        for (size_t m = 0; m < result.count && stream_count < S_MATCHES_MAX; m++)
            stream[stream_count++]
                = (s_seen_t){result.matches[m].rule, base + result.matches[m].start,
                             base + result.matches[m].end};
        assert (base + result.release >= released && base + result.release <= arrived);
        released = base + result.release;
        seen_end = arrived;
        if (!more)
            break;
    }
    qsort (whole, whole_count, sizeof *whole, s_cmp);
    qsort (stream, stream_count, sizeof *stream, s_cmp);
    bool same = whole_count == stream_count;
    for (size_t m = 0; same && m < whole_count; m++)
        same = s_cmp (&whole[m], &stream[m]) == 0;
    if (!same) {
        //  Say what differs, for the artifact's reader.
        fprintf (stderr, "chunk %zu: whole %zu matches, stream %zu\n", chunk, whole_count,
                 stream_count);
        for (size_t m = 0; m < whole_count || m < stream_count; m++)
            fprintf (stderr, "  %-20s %zu-%zu | %-20s %zu-%zu\n",
                     m < whole_count ? whole[m].rule : "", m < whole_count ? whole[m].start : 0,
                     m < whole_count ? whole[m].end : 0, m < stream_count ? stream[m].rule : "",
                     m < stream_count ? stream[m].start : 0, m < stream_count ? stream[m].end : 0);
        abort ();
    }
    return 0;
}
