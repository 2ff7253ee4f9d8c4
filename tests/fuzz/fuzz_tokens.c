/*  fuzz_tokens: libFuzzer target for the token estimate (core/aigw_tokens).

    Feeds every input to the text estimate and, as a request body, to the
    estimate of each format. Any input must give a count, never a crash,
    a hang or a negative figure, and the text never more than a few tokens
    a byte (the emoji rate). CMake builds it (fuzz.tokens, seeded
    with tests/fixtures/tokens). */
#include "aigw_tokens.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

//  Most tokens one byte can cost: an emoji's four bytes cost about two.
#define S_TOKENS_PER_BYTE_MAX 2

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    int64_t tokens = aigw_tokens_text (text, size);
    assert (tokens >= 0 && tokens <= (int64_t) size * S_TOKENS_PER_BYTE_MAX + 1);
    static const aigw_tokens_format_t formats[]
        = {AIGW_TOKENS_CHAT, AIGW_TOKENS_EMBEDDINGS, AIGW_TOKENS_MESSAGES};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        int64_t prompt = -1, completion = -1;
        int rc = aigw_tokens_estimate (formats[i], text, size, 4096, &prompt, &completion);
        assert (rc == 0 || rc == -1);
        assert (prompt >= 0 && completion >= 0);
        if (rc == -1)
            assert (prompt == 0 && completion == 0);
    }
    return 0;
}
