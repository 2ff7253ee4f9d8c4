/*  aigw_cache: the response cache stage. In memory, per partition
    (aigw_cacheform: tenant, model and everything in the request but its
    last user message); an exact match first, then, with cache.semantic
    on, the nearest earlier prompts of the same partition whose cosine
    passes the threshold and whose words pass aigw_verify. Entries live for
    a TTL (cache.ttl_s, or the request's X-AIGW-Cache-TTL up to
    cache.max_ttl_s) and the least recently used go first past a memory
    cap. The owner of an entry is the owner of its partition (the shard
    key), so one owner sees every neighbour a lookup needs.

    The vectors come from the built-in embedder, or, with
    cache.semantic.model, from the envelope (cache_vector), where the
    provider's hop before this one put that model's vector; without one
    (the call failed) the request gets an exact lookup only and its answer
    no semantic entry. The embedder's name is part of the partition key.

    A lookup that misses remembers the request (its keys, text and
    vector) under its request id; the answer then arrives as a one-way
    message from the provider (an answered envelope with that id and its
    partition as cache_key: the whole body, or a stream's OpenAI chunks,
    which are assembled here) and is kept. A hit answers in the client's
    shape, streamed (one write) when the client asked for a stream.

    env->cache_control carries the request's directives: no-cache (no
    lookup, still stored), no-store (neither), ttl=N, and off (auth: the
    key or its tenant opted out). Admin requests (cache/stats, DELETE
    cache) visit every cache owner in turn along their route and are
    answered by the last (aigw_admin_cache).

    With a database and cache.persist, entries are written to
    cache_entries (schemas/sql/015) in batches from the stage's loop, and
    a lookup of a partition the stage has not read since it started (or
    since the partition moved to it) waits for that partition's rows,
    newest first up to the memory cap, at most AIGW_CACHE_LOAD_MS. */
#ifndef AIGW_CACHE_H_INCLUDED
#define AIGW_CACHE_H_INCLUDED

#include "aigw_cacheform.h"
#include "aigw_stage.h"

//  Neighbours a semantic lookup looks at, best first, before giving up.
#define AIGW_CACHE_SEMANTIC_K 8
//  Most requests waiting for their answer to be stored, per cache stage.
#define AIGW_CACHE_PENDING_MAX 65536
//  Most (tenant, model) rows of figures a cache stage keeps; past it
//  they add up under tenant and model "other".
#define AIGW_CACHE_STATS_ROWS_MAX 4096

extern const aigw_stage_def_t aigw_cache_stage;

void aigw_cache_test (bool verbose);

#endif
