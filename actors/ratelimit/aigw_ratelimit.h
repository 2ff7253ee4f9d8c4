/*  aigw_ratelimit: the rate-limit stage. Requests per minute per key, in
    memory, as a sliding window (two fixed windows, the older weighted by how
    much of it still overlaps the last minute). The broker shards by key id,
    so each key has one owner among the ratelimit workers. Sets the
    X-RateLimit-* figures on every request; 429 with Retry-After past it. */
#ifndef AIGW_RATELIMIT_H_INCLUDED
#define AIGW_RATELIMIT_H_INCLUDED

#include "aigw_stage.h"

extern const aigw_stage_def_t aigw_ratelimit_stage;

void aigw_ratelimit_test (bool verbose);

#endif
