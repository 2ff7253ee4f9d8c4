/*  aigw_cache: the exact-match response cache stage. In memory, keyed by
    SHA-256 of tenant, model and the canonical request (JSON with sorted keys,
    stream fields left out); entries live for a TTL and the oldest go first
    past a memory cap. The broker shards by cache key, so each entry has one
    owner. Non-streaming requests only; streams are marked BYPASS.

    Stores arrive as one-way messages from the provider: an envelope that is
    already answered (status 200) and carries its cache key. */
#ifndef AIGW_CACHE_H_INCLUDED
#define AIGW_CACHE_H_INCLUDED

#include "aigw_stage.h"

#define AIGW_CACHE_KEY_LEN 64

extern const aigw_stage_def_t aigw_cache_stage;

//  Write the hex cache key of ENV's request into OUT. Returns 0, or -1 when
//  the body is not JSON.
int aigw_cache_key (const aigw_envelope_t *env, char out[AIGW_CACHE_KEY_LEN + 1]);

void aigw_cache_test (bool verbose);

#endif
