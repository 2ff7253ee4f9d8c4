/*  fuzz_envelope: libFuzzer target for the envelope codec.

    Feeds every input to aigw_envelope_decode. Any input must be refused
    cleanly or accepted, and an accepted envelope must encode and decode back
    to the same values. ASan and UBSan catch the rest. Not part of the CMake
    build; from the repository root:

        clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=all -Ischemas \
            tests/fuzz/fuzz_envelope.c schemas/aigw_envelope.c \
            $(pkg-config --cflags --libs msgpack) -o /tmp/fuzz_envelope
        mkdir -p /tmp/fuzz_envelope_corpus
        printf '\x81\xa1v\x01' > /tmp/fuzz_envelope_corpus/empty
        /tmp/fuzz_envelope -max_len=4096 -max_total_time=60 /tmp/fuzz_envelope_corpus

    The seed is the smallest valid envelope, {"v": 1}; libFuzzer's comparison
    tracing finds the other wire keys from there. */
#include "aigw_envelope.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  True when strings A and B are both NULL or equal.
static bool
s_string_equal (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

//  Assert that envelopes A and B carry the same values.
static void
s_assert_equal (const aigw_envelope_t *a, const aigw_envelope_t *b)
{
    assert (s_string_equal (a->id, b->id));
    assert (a->kind == b->kind);
    assert (a->deadline_ms == b->deadline_ms);
    assert (a->stream == b->stream);
    assert (s_string_equal (a->credential, b->credential));
    assert (s_string_equal (a->model, b->model));
    assert (a->route_len == b->route_len);
    for (size_t i = 0; i < a->route_len; i++)
        assert (s_string_equal (a->route[i], b->route[i]));
    assert (a->hop == b->hop);
    assert (s_string_equal (a->key_id, b->key_id));
    assert (s_string_equal (a->key_name, b->key_name));
    assert (s_string_equal (a->tenant, b->tenant));
    assert (s_string_equal (a->role, b->role));
    assert (a->rpm == b->rpm);
    assert (a->rl_limit == b->rl_limit);
    assert (a->rl_remaining == b->rl_remaining);
    assert (a->rl_reset == b->rl_reset);
    assert (s_string_equal (a->cache_key, b->cache_key));
    assert (s_string_equal (a->cache_status, b->cache_status));
    assert (s_string_equal (a->provider, b->provider));
    assert (a->body_len == b->body_len);
    assert (a->body_len == 0 || memcmp (a->body, b->body, a->body_len) == 0);
    assert (a->status == b->status);
    assert (s_string_equal (a->content_type, b->content_type));
    assert (a->seq == b->seq);
    assert (a->last == b->last);
    assert (a->retry_after == b->retry_after);
    assert (s_string_equal (a->err_type, b->err_type));
    assert (s_string_equal (a->err_code, b->err_code));
    assert (s_string_equal (a->err_message, b->err_message));
    assert (s_string_equal (a->err_param, b->err_param));
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  libFuzzer's entry point: DATA belongs to the fuzzer. Returns 0.
    char err[128];
    aigw_envelope_t *env = aigw_envelope_decode (data, size, err, sizeof err);
    if (!env) {
        assert (err[0] != 0);
        return 0;
    }
    assert (env->route_len <= AIGW_ROUTE_MAX);
    assert (env->hop <= env->route_len);
    size_t again_size;
    char *again = aigw_envelope_encode (env, &again_size);
    assert (again);
    assert (again_size <= size);  //  unknown keys dropped, shortest forms
    aigw_envelope_t *copy = aigw_envelope_decode (again, again_size, err, sizeof err);
    assert (copy);
    s_assert_equal (env, copy);
    free (again);
    aigw_envelope_destroy (&copy);
    aigw_envelope_destroy (&env);
    return 0;
}
