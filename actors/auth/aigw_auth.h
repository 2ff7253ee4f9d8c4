/*  aigw_auth: the auth stage. Resolves the presented credential to a
    principal (type, key id, tenant, role, permissions, models, limits,
    expiry) and clears the credential so it travels no further.

    Sources, in order: the master key; keys listed in the config file; API
    keys in PostgreSQL, looked up asynchronously by the SHA-256 of the
    secret and cached in memory. Every auth instance LISTENs on aigw_keys,
    so a change or revocation drops the cached entry within a second.
    Unknown keys are remembered briefly in a bounded negative cache. While
    the database is down, cached keys keep working for a grace period and
    unknown ones get 503, not 401.

    Data-plane requests also need the `inference` permission (`models:read`
    for /v1/models) and a model the key may use: 403 otherwise, 404 for a
    model nobody serves. */
#ifndef AIGW_AUTH_H_INCLUDED
#define AIGW_AUTH_H_INCLUDED

#include "aigw_stage.h"

//  The stage, for the host (aigw_stage.h).
extern const aigw_stage_def_t aigw_auth_stage;

//  Permissions of a built-in role, comma-separated, or NULL if unknown.
const char *aigw_auth_role_permissions (const char *role);

//  True when the comma-separated PERMISSIONS grant PERMISSION ("*" grants all).
bool aigw_auth_permits (const char *permissions, const char *permission);

//  Benchmark hook (bench/auth_bench.c): decide ITERATIONS requests whose
//  key is in the cache, as the actor does (hash, lookup, permission and
//  model checks, principal copied into the envelope). Returns ns each.
double aigw_auth_bench_cached (int iterations);

void aigw_auth_test (bool verbose);

#endif
