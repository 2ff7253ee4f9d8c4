/*  aigw_admin_cache: GET cache/stats and DELETE cache. The cache is held
    by its owners (a cache stage per process, each owning the partitions
    that hash to it), so the admin actor sends the request along a route
    that visits every owner in turn: one "cache" hop per owner, each with
    a shard that owner holds, the next hop's shard in env->cache_key and
    the rest in env->cache_control. Each owner adds its figures (or purges
    its entries) in the body; the last merges and answers (aigw_cache). */
#ifndef AIGW_ADMIN_CACHE_H_INCLUDED
#define AIGW_ADMIN_CACHE_H_INCLUDED

#include "aigw_stage.h"

//  Shards tried to find every cache owner: rendezvous hashing spreads them
//  evenly, so with up to AIGW_ROUTE_MAX owners one goes unfound with odds
//  below 1e-9.
#define AIGW_ADMIN_CACHE_PROBES 256

//  Ready ENV (an admin request at the last stage of its route) to visit
//  every cache owner that HOST's directory names (one hop with any shard
//  when there is none): the body {"op": OP, "tenant", "model",
//  "instances": {}} (TENANT, MODEL: NULL for every one), the route and the
//  shards. OP is "stats" or "purge". Returns 0, or -1 when the route has
//  no room or admin is not its last stage.
int aigw_admin_cache_envelope (aigw_host_t *host, aigw_envelope_t *env, const char *op,
                               const char *tenant, const char *model);

void aigw_admin_cache_test (bool verbose);

#endif
