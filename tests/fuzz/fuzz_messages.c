/*  fuzz_messages: libFuzzer target for the /v1/messages translators.

    Feeds every input to the request and response translators and to the
    stream translator (whole, then split at a point the input's first byte
    picks, which must give the same output), to the OpenAI adapter's
    model swap, which must read back as a parser's set would, and to the
    usage scanner, which must count as Jansson does. Any input must be refused
    cleanly or translated; ASan and UBSan catch the rest. Not part of the
    CMake build; from the repository root:

        clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=all -Iactors/provider/adapters -Icore -Ischemas \
            tests/fuzz/fuzz_messages.c actors/provider/adapters/aigw_messages.c \
            actors/provider/adapters/aigw_adapter.c actors/provider/adapters/aigw_anthropic.c \
            core/aigw_json.c $(pkg-config --cflags --libs jansson) -o /tmp/fuzz_messages
        cp -r tests/fixtures/messages /tmp/fuzz_messages_corpus
        /tmp/fuzz_messages -max_len=8192 -max_total_time=60 /tmp/fuzz_messages_corpus

    The fixtures seed all three input kinds. */
#include "aigw_messages.h"
#include "aigw_json.h"
#include "aigw_openai.h"
#include "aigw_usagescan.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  The stream output for DATA (LEN bytes) fed in two pieces split at SPLIT;
//  the caller frees it. *RC gets the first failure.
static char *
s_stream (const char *data, size_t len, size_t split, int *rc)
{
    aigw_messages_stream_t *stream = aigw_messages_stream_new ("m", "msg_1");
    assert (stream);
    char *out = NULL;
    size_t out_len = 0;
    *rc = aigw_messages_stream_feed (stream, data, split, &out, &out_len);
    int second = aigw_messages_stream_feed (stream, data + split, len - split, &out, &out_len);
    *rc = *rc ? *rc : second;
    assert (out_len == (out ? strlen (out) : 0));
    aigw_messages_stream_destroy (&stream);
    return out;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    char err[256];
    size_t len = 0;
    bool streamed;
    char *out = aigw_messages_request_to_openai (text, size, &len, &streamed, err, sizeof err);
    assert (!out || len == strlen (out));
    free (out);
    out = aigw_messages_response_from_openai (text, size, NULL, &len, err, sizeof err);
    assert (!out || len == strlen (out));
    free (out);
    int whole_rc, split_rc;
    char *whole = s_stream (text, size, 0, &whole_rc);
    char *split = s_stream (text, size, size ? data[0] % (size + 1) : 0, &split_rc);
    assert (whole_rc == split_rc);
    assert ((!whole && !split) || (whole && split && strcmp (whole, split) == 0));
    free (whole);
    free (split);
    //  Token counts: the strict scanner and Jansson agree on the input, and
    //  on the input as a usage object.
    int64_t fast[3] = {-1, -1, -1}, slow[3] = {-1, -1, -1};
    aigw_usagescan (text, size, &fast[0], &fast[1], &fast[2]);
    aigw_usagescan_parsed (text, size, &slow[0], &slow[1], &slow[2]);
    assert (memcmp (fast, slow, sizeof fast) == 0);
    char *wrapped = malloc (size + 9);
    assert (wrapped);
    memcpy (wrapped, "{\"usage\":", 9);
    memcpy (wrapped + 9, text, size);
    aigw_usagescan (wrapped, size + 9, &fast[0], &fast[1], &fast[2]);
    aigw_usagescan_parsed (wrapped, size + 9, &slow[0], &slow[1], &slow[2]);
    assert (memcmp (fast, slow, sizeof fast) == 0);
    free (wrapped);
    //  The model swapped in place reads back as the parser's way would
    //  have it, for every object a parser accepts.
    if (!aigw_json_depth_ok (text, size, 64))
        return 0;
    json_t *want = json_loadb (text, size, 0, NULL);
    if (json_is_object (want)) {
        json_object_set_new (want, "model", json_string ("m\"1"));
        out = aigw_openai_with_model (text, size, "m\"1", &len);
        assert (out && len == strlen (out));
        json_t *got = json_loadb (out, len, 0, NULL);
        assert (got && json_equal (got, want));
        json_decref (got);
        free (out);
    }
    json_decref (want);
    return 0;
}
